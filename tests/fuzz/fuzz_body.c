/* fuzz_body.c - libFuzzer target: request bodies through the strict JSON decoder and the
 * environment and metadata validators, create and update alike. Every input must end in
 * an error or a valid environment, never a crash, leak or undefined behaviour. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/environment.h"
#include "model/metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!body)
		return 0;
	struct errbuf eb;
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
