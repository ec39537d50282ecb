/* fuzz_body.c - libFuzzer target: request bodies through the pre-parse bound, the strict
 * JSON decoder and the environment and metadata validators, create and update alike.
 * Every input must end in an error or a valid environment, never a crash, leak or
 * undefined behaviour; and the bound never counts fewer values, or less depth, than the
 * decoder builds from the same bytes. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/environment.h"
#include "model/json_bound.h"
#include "model/metadata.h"

/* Values and depth of a decoded document. */
static size_t nodes(const json_t *v, size_t depth, size_t *max_depth)
{
	size_t n = 1, i;
	const char *k;
	json_t *child;
	if (json_is_object(v) || json_is_array(v)) {
		depth++;
		if (depth > *max_depth)
			*max_depth = depth;
	}
	if (json_is_object(v))
		json_object_foreach((json_t *)v, k, child) n += nodes(child, depth, max_depth);
	else if (json_is_array(v))
		json_array_foreach(v, i, child) n += nodes(child, depth, max_depth);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	struct errbuf eb;
	if (!body)
		return 0;
	/* The bound never under-counts what the decoder built: one value fewer, or one level
	 * shallower, than the decoded document must be refused. */
	size_t depth = 0, values = nodes(body, 0, &depth);
	if (depth < 64) {
		struct json_bounds fewer = {64, values - 1}, shallower = {depth - 1, (size_t)-1};
		if (json_bound_check((const char *)data, size, &fewer, &eb) == ERR_OK)
			__builtin_trap();
		if (depth > 0 && json_bound_check((const char *)data, size, &shallower, &eb) == ERR_OK)
			__builtin_trap();
	}
	struct env_fields f;
	if (env_parse_create(body, &f, &eb) == ERR_OK) {
		/* A created environment accepts the same body as an update without change. */
		int changed = 1;
		struct env_fields copy;
		if (env_fields_copy(&copy, &f) == ERR_OK) {
			if (env_apply_update(&copy, body, &changed, &eb) == ERR_OK && changed &&
			    !json_object_get(body, "metadata"))
				__builtin_trap();
			env_fields_clear(&copy);
		}
		env_fields_clear(&f);
	}
	/* The same body as an update of a default environment. */
	json_t *minimal = json_pack("{s:s}", "name", "base");
	if (env_parse_create(minimal, &f, &eb) == ERR_OK) {
		int changed;
		env_apply_update(&f, body, &changed, &eb);
		env_fields_clear(&f);
	}
	json_decref(minimal);
	json_t *meta = json_object_get(body, "metadata");
	if (meta) {
		metadata_validate(meta, &eb);
		json_t *base = json_object();
		int changed;
		metadata_patch(base, meta, METADATA_DELETE_NULL, &changed, &eb);
		json_decref(base);
	}
	json_decref(body);
	return 0;
}
