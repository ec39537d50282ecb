/* cursor.c - HMAC-bound keyset cursors (see cursor.h). */
#include "model/cursor.h"

#include <string.h>

#include "common/buf.h"
#include "common/secret.h"

#define MAC_LEN 16
#define PAYLOAD_MAX (8 + ID_MAX)

static void mac(const unsigned char key[CURSOR_KEY_LEN], const char *kind, const char *scope,
		const unsigned char *payload, size_t len, unsigned char out[32])
{
	struct buf msg;
	buf_init(&msg, 4096);
	buf_puts(&msg, kind);
	buf_putc(&msg, '\0');
	buf_puts(&msg, scope);
	buf_putc(&msg, '\0');
	buf_append(&msg, payload, len);
	secret_hmac(key, CURSOR_KEY_LEN, msg.data ? msg.data : "", msg.len, out);
	buf_free(&msg);
}

void cursor_encode(const unsigned char key[CURSOR_KEY_LEN], const char *kind, const char *scope,
		   const struct cursor *c, char out[CURSOR_TEXT_MAX])
{
	unsigned char raw[PAYLOAD_MAX + MAC_LEN];
	uint64_t t = (uint64_t)c->created_at;
	for (int i = 7; i >= 0; i--) {
		raw[i] = (unsigned char)(t & 0xff);
		t >>= 8;
	}
	size_t id_len = strnlen(c->id, ID_MAX - 1);
	memcpy(raw + 8, c->id, id_len);
	size_t len = 8 + id_len;
	unsigned char full[32];
	mac(key, kind, scope, raw, len, full);
	memcpy(raw + len, full, MAC_LEN);
	memcpy(out, "page_", 5);
	b64url_encode(raw, len + MAC_LEN, out + 5);
}

enum err cursor_decode(const unsigned char key[CURSOR_KEY_LEN], const char *kind, const char *scope,
		       const char *text, struct cursor *out, struct errbuf *eb)
{
	size_t len = strlen(text);
	unsigned char raw[PAYLOAD_MAX + MAC_LEN];
	if (len < 5 || len > CURSOR_TEXT_MAX || strncmp(text, "page_", 5) != 0)
		return errf(eb, ERR_INVALID, "page: not a cursor returned by this list");
	long n = b64url_decode(text + 5, len - 5, raw, sizeof(raw));
	if (n < 8 + 1 + MAC_LEN)
		return errf(eb, ERR_INVALID, "page: not a cursor returned by this list");
	size_t payload = (size_t)n - MAC_LEN;
	unsigned char full[32];
	mac(key, kind, scope, raw, payload, full);
	if (!secret_equal(full, raw + payload, MAC_LEN))
		return errf(eb, ERR_INVALID, "page: cursor was altered or belongs to another list");
	uint64_t t = 0;
	for (int i = 0; i < 8; i++)
		t = (t << 8) | raw[i];
	out->created_at = (int64_t)t;
	size_t id_len = payload - 8;
	if (id_len >= ID_MAX)
		return errf(eb, ERR_INVALID, "page: not a cursor returned by this list");
	memcpy(out->id, raw + 8, id_len);
	out->id[id_len] = '\0';
	return ERR_OK;
}
