/* buf.h - a growable byte buffer with a hard maximum.
 *
 * Every append checks the maximum given at init; going over (or running out of memory)
 * sets buf.failed and makes later appends no-ops, so a caller can append a whole reply and
 * check once at the end. The buffer owns its bytes; buf_free() releases them and
 * buf_steal() hands them to the caller. The content is always NUL-terminated. */
#ifndef ENVIROND_BUF_H
#define ENVIROND_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
	int failed; /* 1 = exceeded max, 2 = out of memory */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Returns the data (caller frees) and leaves b empty; NULL if the buffer failed. */
char *buf_steal(struct buf *b, size_t *len);

void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_put_i64(struct buf *b, int64_t v);

#endif
