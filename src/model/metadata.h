/* metadata.h - validation and merge-patch of `metadata` objects (environments and work).
 *
 * Limits (SPEC §2): at most 16 keys, keys 1–64 characters, values strings of at most 512
 * characters. Characters are Unicode code points (input is valid UTF-8: jansson checks). */
#ifndef ENVIROND_MODEL_METADATA_H
#define ENVIROND_MODEL_METADATA_H

#include <jansson.h>

#include "common/err.h"

#define METADATA_MAX_KEYS 16
#define METADATA_KEY_MAX 64
#define METADATA_VALUE_MAX 512

enum metadata_delete_rule {
	METADATA_DELETE_NULL_OR_EMPTY, /* environments: null or "" deletes */
	METADATA_DELETE_NULL           /* work items: only null deletes */
};

/* Check a complete metadata object. On failure returns ERR_INVALID_METADATA with every
 * problem named in eb ("metadata: ..."). */
enum err metadata_validate(const json_t *obj, struct errbuf *eb);

/* Apply `patch` (an object of string|null) to `base` in place: a string upserts, a
 * deletion value (per rule) removes the key. The result is validated as a whole; on
 * failure base is left as it was. *changed is set when base's content changed. */
enum err metadata_patch(json_t *base, const json_t *patch, enum metadata_delete_rule rule, int *changed,
			struct errbuf *eb);

/* Number of Unicode code points in a valid UTF-8 string. */
size_t utf8_chars(const char *s, size_t len);

#endif
