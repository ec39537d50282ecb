/* jsonw.c - JSON writer (see jsonw.h). */
#include "common/jsonw.h"

#include <string.h>

#include "common/clock.h"

void jsonw_init(struct jsonw *w, struct buf *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
}

static void value_start(struct jsonw *w)
{
	if (w->need_comma[w->depth])
		buf_putc(w->out, ',');
	w->need_comma[w->depth] = 1;
}

static void open(struct jsonw *w, char c)
{
	value_start(w);
	buf_putc(w->out, c);
	if (w->depth + 1 < JSONW_MAX_DEPTH)
		w->depth++;
	else
		w->out->failed = 1;
	w->need_comma[w->depth] = 0;
}

static void close_(struct jsonw *w, char c)
{
	if (w->depth > 0)
		w->depth--;
	buf_putc(w->out, c);
}

void jsonw_obj_open(struct jsonw *w) { open(w, '{'); }
void jsonw_obj_close(struct jsonw *w) { close_(w, '}'); }
void jsonw_arr_open(struct jsonw *w) { open(w, '['); }
void jsonw_arr_close(struct jsonw *w) { close_(w, ']'); }

void jsonw_key(struct jsonw *w, const char *key)
{
	value_start(w);
	jsonw_escape(w->out, key, strlen(key));
	buf_putc(w->out, ':');
	w->need_comma[w->depth] = 0; /* the value that follows must not add a comma */
}

/* After a key, the value must not add a comma but must set one for what follows. */
static void value(struct jsonw *w) { value_start(w); }

void jsonw_str(struct jsonw *w, const char *s) { jsonw_strn(w, s, strlen(s)); }

void jsonw_strn(struct jsonw *w, const char *s, size_t len)
{
	value(w);
	jsonw_escape(w->out, s, len);
}

void jsonw_str_or_null(struct jsonw *w, const char *s)
{
	if (s)
		jsonw_str(w, s);
	else
		jsonw_null(w);
}

void jsonw_i64(struct jsonw *w, int64_t v)
{
	value(w);
	buf_put_i64(w->out, v);
}

void jsonw_bool(struct jsonw *w, int v)
{
	value(w);
	buf_puts(w->out, v ? "true" : "false");
}

void jsonw_null(struct jsonw *w)
{
	value(w);
	buf_puts(w->out, "null");
}

void jsonw_ts(struct jsonw *w, int64_t wall_us)
{
	if (!wall_us) {
		jsonw_null(w);
		return;
	}
	char ts[CLOCK_TS_LEN + 1];
	clock_format(wall_us, ts);
	value(w);
	buf_putc(w->out, '"');
	buf_append(w->out, ts, CLOCK_TS_LEN);
	buf_putc(w->out, '"');
}

void jsonw_raw(struct jsonw *w, const char *json, size_t len)
{
	value(w);
	buf_append(w->out, json, len);
}

/* Length of the valid UTF-8 sequence starting at s (1–4), or 0 if it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n;
	unsigned int cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

void jsonw_escape(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	buf_putc(out, '"');
	size_t i = 0, run = 0;
	while (i < len) {
		unsigned char c = p[i];
		size_t n = (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') ? 1 : 0;
		if (n) {
			i++;
			run++;
			continue;
		}
		buf_append(out, p + i - run, run);
		run = 0;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			buf_append(out, esc, 2);
			i++;
		} else if (c < 0x20) {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			switch (c) {
			case '\n': buf_append(out, "\\n", 2); break;
			case '\r': buf_append(out, "\\r", 2); break;
			case '\t': buf_append(out, "\\t", 2); break;
			default: buf_append(out, esc, 6); break;
			}
			i++;
		} else {
			size_t seq = utf8_seq(p + i, len - i);
			if (seq) {
				buf_append(out, p + i, seq);
				i += seq;
			} else {
				buf_append(out, "\xEF\xBF\xBD", 3);
				i++;
			}
		}
	}
	buf_append(out, p + i - run, run);
	buf_putc(out, '"');
}
