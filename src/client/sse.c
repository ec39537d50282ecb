/* sse.c - incremental Server-Sent Events parser (see sse.h). */
#include "client/sse.h"

#include <string.h>

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

void sse_init(struct sse_parser *p, size_t max_line, size_t max_data, const char *initial_id,
	      sse_on_event on_event, sse_on_comment on_comment, void *userdata)
{
	memset(p, 0, sizeof(*p));
	p->on_event = on_event;
	p->on_comment = on_comment;
	p->userdata = userdata;
	buf_init(&p->line, max_line);
	buf_init(&p->data, max_data);
	p->retry_ms = -1;
	p->at_start = 1;
	if (initial_id) {
		size_t n = strnlen(initial_id, SSE_ID_MAX);
		memcpy(p->last_id, initial_id, n);
		p->last_id[n] = '\0';
	}
}

void sse_free(struct sse_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->data);
}

/* A buffer's failure as a parser result: over its maximum, or out of memory. */
static enum sse_result buf_result(const struct buf *b)
{
	return b->failed == 2 ? SSE_NO_MEMORY : SSE_TOO_LONG;
}

static enum sse_result dispatch(struct sse_parser *p)
{
	if (!p->saw_data) {
		p->type[0] = '\0';
		return SSE_OK;
	}
	/* Every data line appended a '\n'; the last one is not part of the data. */
	size_t len = p->data.len;
	if (len > 0)
		p->data.data[--len] = '\0';
	struct sse_event ev = {
		.id = p->last_id,
		.type = p->type[0] ? p->type : "message",
		.data = p->data.data ? p->data.data : "",
		.data_len = len,
	};
	int stop = p->on_event(&ev, p->userdata);
	buf_reset(&p->data);
	p->type[0] = '\0';
	p->saw_data = 0;
	return stop ? SSE_STOPPED : SSE_OK;
}

/* Handle one complete line (without its terminator). */
static enum sse_result process_line(struct sse_parser *p, const char *line, size_t len)
{
	if (len == 0)
		return dispatch(p);
	if (line[0] == ':') {
		if (p->on_comment)
			p->on_comment(line + 1, len - 1, p->userdata);
		return SSE_OK;
	}
	const char *colon = memchr(line, ':', len);
	size_t name_len = colon ? (size_t)(colon - line) : len;
	const char *value = colon ? colon + 1 : line + len;
	size_t value_len = colon ? len - name_len - 1 : 0;
	if (value_len > 0 && value[0] == ' ') {
		value++;
		value_len--;
	}
#define FIELD_IS(name) (name_len == sizeof(name) - 1 && memcmp(line, name, name_len) == 0)
	if (FIELD_IS("data")) {
		buf_append(&p->data, value, value_len);
		buf_putc(&p->data, '\n');
		if (p->data.failed)
			return buf_result(&p->data);
		p->saw_data = 1;
	} else if (FIELD_IS("event")) {
		if (value_len > SSE_TYPE_MAX)
			return SSE_TOO_LONG;
		memcpy(p->type, value, value_len);
		p->type[value_len] = '\0';
	} else if (FIELD_IS("id")) {
		/* The format ignores an id holding NUL: it could not be sent back in a header. */
		if (memchr(value, '\0', value_len))
			return SSE_OK;
		if (value_len > SSE_ID_MAX)
			return SSE_TOO_LONG;
		memcpy(p->last_id, value, value_len);
		p->last_id[value_len] = '\0';
	} else if (FIELD_IS("retry")) {
		long ms = 0;
		size_t i = 0;
		for (; i < value_len && value[i] >= '0' && value[i] <= '9'; i++)
			if (ms < 86400000L)
				ms = ms * 10 + (value[i] - '0');
		if (i == value_len && value_len > 0)
			p->retry_ms = ms < 86400000L ? ms : 86400000L;
	}
#undef FIELD_IS
	/* Any other field is ignored, as the format requires. */
	return SSE_OK;
}

/* The line is complete: process it from the line buffer and empty the buffer. */
static enum sse_result end_line(struct sse_parser *p)
{
	enum sse_result r = process_line(p, p->line.data ? p->line.data : "", p->line.len);
	buf_reset(&p->line);
	return r;
}

enum sse_result sse_feed(struct sse_parser *p, const char *bytes, size_t len)
{
	size_t i = 0;
	/* The stream may start with a UTF-8 byte order mark, split across chunks or not. */
	while (p->state == SSE_OK && p->at_start && i < len) {
		if ((unsigned char)bytes[i] == bom[p->bom_matched]) {
			i++;
			if (++p->bom_matched == 3)
				p->at_start = 0;
		} else {
			/* Not a BOM after all: the bytes taken for one belong to the first line. */
			buf_append(&p->line, bom, (size_t)p->bom_matched);
			p->at_start = 0;
		}
	}
	while (p->state == SSE_OK && i < len) {
		if (p->after_cr) {
			p->after_cr = 0;
			if (bytes[i] == '\n') {
				i++;
				continue;
			}
		}
		size_t start = i;
		while (i < len && bytes[i] != '\n' && bytes[i] != '\r')
			i++;
		buf_append(&p->line, bytes + start, i - start);
		if (p->line.failed) {
			p->state = buf_result(&p->line);
			break;
		}
		if (i == len)
			break;
		p->after_cr = bytes[i] == '\r';
		i++;
		p->state = end_line(p);
	}
	return p->state;
}
