/* fields.h - strict checks of decoded JSON request bodies, with messages that name the
 * field by its path ("config.networking.allowed_hosts[3]"). */
#ifndef ENVIROND_MODEL_FIELDS_H
#define ENVIROND_MODEL_FIELDS_H

#include <jansson.h>

#include "common/err.h"

/* ERR_INVALID unless every key of obj is in the NULL-terminated list `allowed`. `path` names
 * the object ("" for the body itself). */
enum err fields_only(const json_t *obj, const char *path, const char *const allowed[], struct errbuf *eb);

/* ERR_INVALID naming `path` and the JSON type that was expected and found. */
enum err fields_type_error(const char *path, const char *expected, const json_t *found, struct errbuf *eb);

/* "object", "string", ... for messages. */
const char *fields_type_name(const json_t *v);

#endif
