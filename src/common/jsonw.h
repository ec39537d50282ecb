/* jsonw.h - a small JSON writer on top of struct buf, used for every reply and log line.
 *
 * The writer tracks nothing but commas: jsonw_key() and the value functions insert a
 * comma when the previous token in the same container needs one. Strings are escaped by
 * one function (jsonw_escape) that emits valid JSON for any bytes it is given: invalid
 * UTF-8 is replaced by U+FFFD. */
#ifndef ENVIROND_JSONW_H
#define ENVIROND_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define JSONW_MAX_DEPTH 32

struct jsonw {
	struct buf *out;
	int depth;
	unsigned char need_comma[JSONW_MAX_DEPTH];
};

void jsonw_init(struct jsonw *w, struct buf *out);
void jsonw_obj_open(struct jsonw *w);
void jsonw_obj_close(struct jsonw *w);
void jsonw_arr_open(struct jsonw *w);
void jsonw_arr_close(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_str(struct jsonw *w, const char *s);
void jsonw_strn(struct jsonw *w, const char *s, size_t len);
void jsonw_str_or_null(struct jsonw *w, const char *s);
void jsonw_i64(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, int v);
void jsonw_null(struct jsonw *w);
/* A wall-µs timestamp in RFC 3339 form, or null when wall_us is 0. */
void jsonw_ts(struct jsonw *w, int64_t wall_us);
/* Splice already-serialized JSON (trusted, e.g. stored metadata) as one value. */
void jsonw_raw(struct jsonw *w, const char *json, size_t len);

/* Append `s` as a quoted JSON string to `out`. */
void jsonw_escape(struct buf *out, const char *s, size_t len);

#endif
