/* repeat.h - test helper: a string made of one unit repeated, for length limits.
 * Include after <cmocka.h>. */
#ifndef ENVIROND_TESTS_REPEAT_H
#define ENVIROND_TESTS_REPEAT_H

#include <stdlib.h>
#include <string.h>

/* `unit` repeated n times; the caller frees. */
static inline char *repeat(const char *unit, size_t n)
{
	size_t ulen = strlen(unit);
	char *s = malloc(ulen * n + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ulen, unit, ulen);
	s[ulen * n] = '\0';
	return s;
}

#endif
