/* utf8.h - is a byte string well-formed UTF-8? Text from a path or a query string reaches
 * the store as it came, and a store whose text is UTF-8 (PostgreSQL) refuses anything else. */
#ifndef ENVIROND_UTF8_H
#define ENVIROND_UTF8_H

#include <stddef.h>

/* True when s[0..len) is well-formed UTF-8: no overlong forms, no surrogates, no code
 * points past U+10FFFF, no sequence cut short. */
int utf8_valid(const char *s, size_t len);

#endif
