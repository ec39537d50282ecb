/* metadata.c - metadata validation and merge-patch (see metadata.h). */
#include "model/metadata.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"

size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* Shorten a key for a message: at most 24 characters, then an ellipsis. */
static void short_key(const char *key, char out[100])
{
	size_t len = strlen(key), cut = 0, chars = 0;
	while (cut < len && chars < 24) {
		cut++;
		while (cut < len && ((unsigned char)key[cut] & 0xC0) == 0x80)
			cut++;
		chars++;
	}
	snprintf(out, 100, "%.*s%s", (int)cut, key, cut < len ? "…" : "");
}

enum err metadata_validate(const json_t *obj, struct errbuf *eb)
{
	if (!json_is_object(obj))
		return errf(eb, ERR_INVALID_METADATA, "metadata: must be an object of strings");
	struct buf msg;
	buf_init(&msg, sizeof(eb->message) - 1);
	int problems = 0;
	size_t keys = json_object_size(obj);
	if (keys > METADATA_MAX_KEYS) {
		buf_printf(&msg, "has %zu keys, at most %d are allowed", keys, METADATA_MAX_KEYS);
		problems++;
	}
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)obj, key, value)
	{
		char shown[100];
		short_key(key, shown);
		size_t klen = utf8_chars(key, strlen(key));
		const char *sep = problems ? "; " : "";
		if (klen == 0) {
			buf_printf(&msg, "%skeys must not be empty", sep);
			problems++;
		} else if (klen > METADATA_KEY_MAX) {
			buf_printf(&msg, "%skey \"%s\" is longer than %d characters", sep, shown, METADATA_KEY_MAX);
			problems++;
		}
		sep = problems ? "; " : "";
		if (!json_is_string(value)) {
			buf_printf(&msg, "%svalue of key \"%s\" must be a string", sep, shown);
			problems++;
		} else if (utf8_chars(json_string_value(value), json_string_length(value)) > METADATA_VALUE_MAX) {
			buf_printf(&msg, "%svalue of key \"%s\" is longer than %d characters", sep, shown,
				   METADATA_VALUE_MAX);
			problems++;
		}
	}
	enum err rc = ERR_OK;
	if (problems)
		rc = errf(eb, ERR_INVALID_METADATA, "metadata: %s", msg.data ? msg.data : "invalid");
	buf_free(&msg);
	return rc;
}

enum err metadata_patch(json_t *base, const json_t *patch, enum metadata_delete_rule rule, int *changed,
			struct errbuf *eb)
{
	*changed = 0;
	if (!json_is_object(patch))
		return errf(eb, ERR_INVALID_METADATA, "metadata: must be an object of strings or nulls");
	json_t *next = json_deep_copy(base);
	if (!next)
		return errf(eb, ERR_NOMEM, "out of memory");
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)patch, key, value)
	{
		int deletes = json_is_null(value) ||
			      (rule == METADATA_DELETE_NULL_OR_EMPTY && json_is_string(value) &&
			       json_string_length(value) == 0);
		if (deletes) {
			json_object_del(next, key);
		} else if (json_is_string(value)) {
			json_object_set(next, key, value);
		} else {
			char shown[100];
			short_key(key, shown);
			json_decref(next);
			return errf(eb, ERR_INVALID_METADATA, "metadata: value of key \"%s\" must be a string or null",
				    shown);
		}
	}
	enum err rc = metadata_validate(next, eb);
	if (rc == ERR_OK) {
		*changed = !json_equal(base, next);
		if (*changed) {
			json_object_clear(base);
			json_object_update(base, next);
		}
	}
	json_decref(next);
	return rc;
}
