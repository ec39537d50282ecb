/* framing.h - the request-head checks that decide whether a request can be read safely.
 *
 * libmicrohttpd 0.9.75 parses leniently: it takes two Content-Lengths, Content-Length next
 * to chunked, "Transfer-Encoding : chunked" (a name ending in a space) as an unknown
 * header, unknown transfer codings as a body of unknown length, and cuts header values at
 * a NUL. Each of these lets one peer see a different request than another (smuggling), so
 * the server runs this check on the raw header list before anything else and, on failure,
 * answers 400 and closes the connection without reading a byte more.
 *
 * A NUL inside a header value: libmicrohttpd 0.9.75 parses the request head in place (line
 * ends and colons overwritten with NUL bytes) and measures values with strlen, so
 * "x-api-key: K\0junk" arrives as "K" with a length that hides the rest. When the raw head
 * is given, each value must end where its line ends: only the NUL bytes the parser wrote
 * (its line end, and the blank line after the last header) may lie between a value's end
 * and the next header's name (or the head's end). A header outside the raw head (a folded,
 * copied line) is refused too.
 *
 * Pure: no I/O, no libmicrohttpd; the fuzzer drives it directly. */
#ifndef ENVIROND_HTTP_FRAMING_H
#define ENVIROND_HTTP_FRAMING_H

#include <stddef.h>
#include <stdint.h>

struct framing_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len; /* the value's real length: a NUL inside makes it longer than strlen */
};

struct framing {
	int has_length;           /* a Content-Length was given */
	uint64_t content_length;
	int chunked;              /* Transfer-Encoding: chunked */
	int expect_continue;      /* Expect: 100-continue */
	char why[160];            /* on failure: what was wrong, naming the header */
};

/* Check the request head: the headers in the order received and, when head is not NULL,
 * the raw head they point into (head_len bytes, request line to blank line). Returns 0 when the framing is unambiguous, -1 (why filled) when
 * the request must be refused and its connection closed. */
int framing_check(const struct framing_header *h, size_t n, const char *head, size_t head_len,
		  struct framing *out);

#endif
