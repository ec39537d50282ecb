/* sse.h - an incremental parser of a Server-Sent Events stream (the WHATWG "event stream"
 * format), fed whatever byte chunks the transport delivers.
 *
 * Lines end in CRLF, LF or CR, and a chunk may split any line, any CRLF and any UTF-8
 * sequence. Fields: `id` (the last event id, kept across events; one holding a NUL is
 * ignored), `event` (the type, "message" when absent), `data` (lines joined with '\n'),
 * `retry` (digits only: the reconnection delay); lines starting with ':' are comments.
 * A blank line dispatches the event, unless no data line came since the last one.
 *
 * Every buffer has a maximum: a line longer than the parser's max_line, or an event whose
 * data grows past max_data, fails the stream (sse_feed returns SSE_TOO_LONG) instead of
 * growing without bound. The parser owns its buffers; sse_free() releases them. */
#ifndef ENVIROND_SSE_H
#define ENVIROND_SSE_H

#include <stddef.h>

#include "common/buf.h"

/* Longest id kept, in bytes; a longer one fails the stream like an over-long line. */
#define SSE_ID_MAX 256
#define SSE_TYPE_MAX 128

/* One dispatched event. The strings are NUL-terminated and valid only during the callback;
 * data may hold NUL bytes only if the stream sent them (data_len counts every byte). */
struct sse_event {
	const char *id;      /* the last event id ("" when none was ever set) */
	const char *type;    /* "message" unless an `event` field named one */
	const char *data;
	size_t data_len;
};

/* Called for each event; a non-zero return stops the parser (sse_feed returns SSE_STOPPED
 * and ignores the rest of that chunk and any later one). */
typedef int (*sse_on_event)(const struct sse_event *ev, void *userdata);
/* Called for each comment line (the text after ':'), NULL to ignore comments. */
typedef void (*sse_on_comment)(const char *text, size_t len, void *userdata);

enum sse_result { SSE_OK = 0, SSE_STOPPED = 1, SSE_TOO_LONG = -1, SSE_NO_MEMORY = -2 };

struct sse_parser {
	sse_on_event on_event;
	sse_on_comment on_comment;
	void *userdata;
	struct buf line;          /* the line being read, without its terminator */
	struct buf data;          /* the data lines of the event being read */
	char type[SSE_TYPE_MAX + 1];
	char last_id[SSE_ID_MAX + 1];
	long retry_ms;            /* the last `retry` field, -1 when none */
	int saw_data;             /* a data line came since the last dispatch */
	int after_cr;             /* the previous byte ended a line with CR: skip a following LF */
	int at_start;             /* nothing read yet: a UTF-8 BOM is skipped here */
	int bom_matched;          /* how many BOM bytes were skipped so far */
	enum sse_result state;    /* sticky: once not SSE_OK, sse_feed does nothing */
};

/* Set up a parser whose lines are at most max_line bytes and whose events carry at most
 * max_data bytes of data. initial_id seeds the last event id (NULL = none), so a resumed
 * stream keeps reporting the id it resumed from until the server sends another. */
void sse_init(struct sse_parser *p, size_t max_line, size_t max_data, const char *initial_id,
	      sse_on_event on_event, sse_on_comment on_comment, void *userdata);
void sse_free(struct sse_parser *p);

/* Parse len more bytes. Returns SSE_OK, or the sticky state once the stream failed or a
 * callback stopped it. An event is dispatched only at its blank line: bytes of an event the
 * stream never finished are dropped at sse_free, as the format requires. */
enum sse_result sse_feed(struct sse_parser *p, const char *bytes, size_t len);

#endif
