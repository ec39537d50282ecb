/* framing.c - request-head checks (see framing.h). */
#include "http/framing.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 token characters: a header name with anything else (a space before the colon,
 * a control byte) is read differently by different parsers. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int name_is(const struct framing_header *h, const char *name)
{
	return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* Headers that must appear at most once: framing, the target host and the credentials
 * (two credentials would let a proxy check one and this server use the other). */
static const char *const single[] = {"Content-Length", "Transfer-Encoding", "Host", "x-api-key", "Authorization"};
#define NSINGLE (sizeof(single) / sizeof(single[0]))

static int fail(struct framing *out, const char *fmt, const char *name, size_t name_len)
{
	int len = name_len > 64 ? 64 : (int)name_len;
	snprintf(out->why, sizeof(out->why), fmt, len, name);
	return -1;
}

static int value_is_token(const struct framing_header *h, const char *token)
{
	/* Optional whitespace around the value is already trimmed by the parser; compare whole. */
	return h->value_len == strlen(token) && strncasecmp(h->value, token, h->value_len) == 0;
}

static int in_head(const struct framing_header *h, const char *head, size_t head_len)
{
	const char *end = head + head_len;
	return h->name >= head && h->name_len <= (size_t)(end - h->name) && h->value >= head &&
	       h->value_len <= (size_t)(end - h->value);
}

/* Between a value's end and what follows there may be only the parser's NULs: at most a
 * CRLF (2) before the next header, plus the blank line (2 more) after the last one. */
static int layout_ok(const struct framing_header *h, size_t n, size_t i, const char *head, size_t head_len)
{
	const char *end = head + head_len;
	const char *from = h[i].value + h[i].value_len;
	const char *to = i + 1 < n ? h[i + 1].name : end;
	size_t most = i + 1 < n ? 2 : 4;
	if (to < from || (size_t)(to - from) > most)
		return 0;
	for (const char *p = from; p < to; p++)
		if (*p)
			return 0;
	return 1;
}

int framing_check(const struct framing_header *h, size_t n, const char *head, size_t head_len,
		  struct framing *out)
{
	memset(out, 0, sizeof(*out));
	unsigned seen[NSINGLE] = {0};
	for (size_t i = 0; head && i < n; i++)
		if (!in_head(&h[i], head, head_len))
			return fail(out, "request framing: header %.*s: folded header lines are not accepted", h[i].name,
				    h[i].name_len);
	for (size_t i = 0; i < n; i++) {
		if (h[i].name_len == 0)
			return fail(out, "request framing: empty header name%.*s", "", 0);
		for (size_t k = 0; k < h[i].name_len; k++)
			if (!is_tchar((unsigned char)h[i].name[k]))
				return fail(out, "request framing: header name \"%.*s\" contains a character not allowed in a name",
					    h[i].name, h[i].name_len);
		if (head && !layout_ok(h, n, i, head, head_len))
			return fail(out, "request framing: header %.*s: value contains a NUL byte",
				    h[i].name, h[i].name_len);
		for (size_t k = 0; k < h[i].value_len; k++) {
			unsigned char c = (unsigned char)h[i].value[k];
			if (c == '\0' || c == '\r' || c == '\n')
				return fail(out, "request framing: header %.*s: value contains a NUL, CR or LF byte",
					    h[i].name, h[i].name_len);
		}
		for (size_t s = 0; s < NSINGLE; s++)
			if (name_is(&h[i], single[s]) && ++seen[s] > 1)
				return fail(out, "request framing: header %.*s given more than once", h[i].name,
					    h[i].name_len);
		if (name_is(&h[i], "Content-Length")) {
			if (h[i].value_len == 0 || h[i].value_len > 19)
				return fail(out, "request framing: %.*s must be a decimal number below 10^19", h[i].name,
					    h[i].name_len);
			uint64_t v = 0;
			if (head && !layout_ok(h, n, i, head, head_len))
			return fail(out, "request framing: header %.*s: value contains a NUL byte",
				    h[i].name, h[i].name_len);
		for (size_t k = 0; k < h[i].value_len; k++) {
				char c = h[i].value[k];
				if (c < '0' || c > '9')
					return fail(out, "request framing: %.*s must be a decimal number below 10^19",
						    h[i].name, h[i].name_len);
				v = v * 10 + (uint64_t)(c - '0');
			}
			out->has_length = 1;
			out->content_length = v;
		} else if (name_is(&h[i], "Transfer-Encoding")) {
			if (!value_is_token(&h[i], "chunked"))
				return fail(out, "request framing: %.*s: only \"chunked\" is supported", h[i].name,
					    h[i].name_len);
			out->chunked = 1;
		} else if (name_is(&h[i], "Expect") && value_is_token(&h[i], "100-continue")) {
			out->expect_continue = 1;
		}
	}
	if (out->has_length && out->chunked) {
		snprintf(out->why, sizeof(out->why),
			 "request framing: Content-Length and Transfer-Encoding must not both be given");
		return -1;
	}
	return 0;
}
