/* environment.h - the environment object: validation of create and update bodies, the
 * merge rules of SPEC §2, and the fully populated config of every response.
 *
 * An environment's mutable part is kept as a jansson object `struct env_fields` whose
 * members are always complete (config fully populated, metadata an object). The store
 * persists those members; api/ encodes them. Pure: no I/O, no clock. */
#ifndef ENVIROND_MODEL_ENVIRONMENT_H
#define ENVIROND_MODEL_ENVIRONMENT_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ids.h"

#define ENV_NAME_MAX 256
#define ENV_DESCRIPTION_MAX 2048
#define ENV_HOSTS_MAX 256
#define ENV_HOST_LEN_MAX 253
#define ENV_PACKAGES_MAX 256
#define ENV_PACKAGE_LEN_MAX 256

/* The caller-visible, mutable fields. Owns its references (env_fields_clear releases). */
struct env_fields {
	char *name;          /* malloc'd, never NULL once valid */
	char *description;   /* malloc'd, NULL = null */
	json_t *config;      /* fully populated config object */
	json_t *metadata;    /* object of strings */
	int scope_account;   /* 1 = scope "account", 0 = "organization" */
};

/* A stored environment. */
struct environment {
	char id[ID_MAX];
	char org[65];
	char workspace[65];
	char account[65];
	struct env_fields f;
	int64_t archived_at; /* wall µs, 0 = null */
	int64_t created_at;
	int64_t updated_at;
};

void env_fields_clear(struct env_fields *f);
void environment_clear(struct environment *e);
/* Deep copy; returns ERR_NOMEM on allocation failure. */
enum err env_fields_copy(struct env_fields *dst, const struct env_fields *src);

/* Validate a create body and fill `out` with the complete fields (defaults applied). */
enum err env_parse_create(const json_t *body, struct env_fields *out, struct errbuf *eb);

/* Validate an update body and merge it into `cur` in place. *changed says whether any
 * field's value changed. On error `cur` is unchanged. */
enum err env_apply_update(struct env_fields *cur, const json_t *body, int *changed, struct errbuf *eb);

/* 1 when the config is self_hosted. */
int env_is_self_hosted(const struct env_fields *f);

#endif
