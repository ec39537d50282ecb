/* secret.h - randomness, hashing and comparison for credentials and cursors.
 *
 * Credentials are stored only as SHA-256 hashes (hex) and compared in constant time.
 * Random bytes come from getrandom(2). */
#ifndef ENVIROND_SECRET_H
#define ENVIROND_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define SECRET_HASH_HEX 64

/* Fill buf with n cryptographically random bytes. Returns 0, or -1 if the kernel refused. */
int secret_random(void *buf, size_t n);
/* out = lowercase hex SHA-256 of data, NUL-terminated. */
void secret_sha256_hex(const void *data, size_t len, char out[SECRET_HASH_HEX + 1]);
/* out = HMAC-SHA256(key, data). */
void secret_hmac(const void *key, size_t key_len, const void *data, size_t len, unsigned char out[32]);
/* Constant-time equality of two equal-length byte strings. */
int secret_equal(const void *a, const void *b, size_t len);

/* base64url without padding. out must hold b64url_len(n) + 1 bytes; returns the length. */
size_t b64url_len(size_t n);
size_t b64url_encode(const void *data, size_t n, char *out);
/* Decode base64url without padding into out (capacity cap). Returns the decoded length,
 * or -1 for an invalid character, a bad length or not enough room. */
long b64url_decode(const char *text, size_t len, unsigned char *out, size_t cap);

#endif
