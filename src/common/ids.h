/* ids.h - object ids and credential tokens.
 *
 * An id is a prefix ("env_", "work_", "envkey_", "req_") and a 24-character base62 body:
 * 9 characters of the creation time in µs (so ids sort by creation) and 15 random ones.
 * A token is a prefix ("envd_api_", ...) and 43 base62 characters (~256 bits). */
#ifndef ENVIROND_IDS_H
#define ENVIROND_IDS_H

#include <stddef.h>
#include <stdint.h>

#define ID_BODY_LEN 24
#define ID_MAX 40 /* longest prefix + body + NUL */
#define TOKEN_BODY_LEN 43
#define TOKEN_MAX 64

/* Write prefix + body for time wall_us into out (ID_MAX bytes). */
void ids_new_at(const char *prefix, int64_t wall_us, char out[ID_MAX]);
void ids_new(const char *prefix, char out[ID_MAX]);
/* A fresh random credential: prefix + 43 base62 characters. */
void ids_token(const char *prefix, char out[TOKEN_MAX]);
/* True when s is prefix followed by exactly 24 base62 characters. */
int ids_valid(const char *prefix, const char *s);

#endif
