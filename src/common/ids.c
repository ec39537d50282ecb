/* ids.c - time-ordered ids and random tokens (see ids.h). */
#include "common/ids.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/secret.h"

/* ASCII order, so that the text of ids sorts like their time. */
static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void random_base62(char *out, size_t n)
{
	unsigned char bytes[64];
	size_t filled = 0;
	while (filled < n) {
		if (secret_random(bytes, sizeof(bytes)) != 0)
			abort(); /* the kernel's CSPRNG is gone: nothing safe can be minted */
		for (size_t i = 0; i < sizeof(bytes) && filled < n; i++)
			if (bytes[i] < 248) /* 248 = 4 * 62: no modulo bias */
				out[filled++] = base62[bytes[i] % 62];
	}
}

void ids_new_at(const char *prefix, int64_t wall_us, char out[ID_MAX])
{
	size_t plen = strlen(prefix);
	if (plen > ID_MAX - ID_BODY_LEN - 1)
		plen = ID_MAX - ID_BODY_LEN - 1;
	memcpy(out, prefix, plen);
	char *body = out + plen;
	uint64_t t = wall_us > 0 ? (uint64_t)wall_us : 0;
	for (int i = 8; i >= 0; i--) {
		body[i] = base62[t % 62];
		t /= 62;
	}
	random_base62(body + 9, ID_BODY_LEN - 9);
	body[ID_BODY_LEN] = '\0';
}

void ids_new(const char *prefix, char out[ID_MAX]) { ids_new_at(prefix, clock_wall_us(), out); }

void ids_token(const char *prefix, char out[TOKEN_MAX])
{
	size_t plen = strlen(prefix);
	if (plen > TOKEN_MAX - TOKEN_BODY_LEN - 1)
		plen = TOKEN_MAX - TOKEN_BODY_LEN - 1;
	memcpy(out, prefix, plen);
	random_base62(out + plen, TOKEN_BODY_LEN);
	out[plen + TOKEN_BODY_LEN] = '\0';
}

int ids_valid(const char *prefix, const char *s)
{
	size_t plen = strlen(prefix);
	if (strncmp(s, prefix, plen) != 0)
		return 0;
	s += plen;
	size_t n = 0;
	for (; s[n]; n++)
		if (!strchr(base62, s[n]) || n >= ID_BODY_LEN)
			return 0;
	return n == ID_BODY_LEN;
}
