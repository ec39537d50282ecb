/* cursor.h - opaque keyset cursors for newest-first lists.
 *
 * A cursor names the last row of a page (created_at, id) and is bound by an HMAC to the
 * list it came from (kind + scope, e.g. "work" + the environment id) under a server key.
 * Text form: "page_" + base64url(created_at(8, big-endian) | id | mac(16)). A cursor that
 * was altered, or that belongs to another list, fails to decode: a 400, never a skip. */
#ifndef ENVIROND_MODEL_CURSOR_H
#define ENVIROND_MODEL_CURSOR_H

#include <stdint.h>

#include "common/err.h"
#include "common/ids.h"

#define CURSOR_KEY_LEN 32
#define CURSOR_TEXT_MAX 128

struct cursor {
	int64_t created_at;
	char id[ID_MAX];
};

void cursor_encode(const unsigned char key[CURSOR_KEY_LEN], const char *kind, const char *scope,
		   const struct cursor *c, char out[CURSOR_TEXT_MAX]);

/* ERR_INVALID naming `page` when text is not a cursor of this kind and scope. */
enum err cursor_decode(const unsigned char key[CURSOR_KEY_LEN], const char *kind, const char *scope,
		       const char *text, struct cursor *out, struct errbuf *eb);

#endif
