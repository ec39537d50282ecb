/* fields.c - strict request body field checks (see fields.h). */
#include "model/fields.h"

#include <string.h>

const char *fields_type_name(const json_t *v)
{
	if (!v)
		return "nothing (the field is missing)";
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "value";
}

enum err fields_only(const json_t *obj, const char *path, const char *const allowed[], struct errbuf *eb)
{
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)obj, key, value)
	{
		int known = 0;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				known = 1;
		if (!known)
			return errf(eb, ERR_INVALID, "%s%s%.100s: unknown field", path, *path ? "." : "", key);
	}
	return ERR_OK;
}

enum err fields_type_error(const char *path, const char *expected, const json_t *found, struct errbuf *eb)
{
	return errf(eb, ERR_INVALID, "%s: expected %s, got %s", path, expected, fields_type_name(found));
}
