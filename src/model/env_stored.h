/* env_stored.h - checks of an environment's fields as read back from storage.
 *
 * The store writes only fields that env_parse_create / env_apply_update produced, so a
 * stored row that fails these checks was damaged or edited behind the server's back (or
 * written by another build). The rest of the server trusts a loaded environment's shape
 * (env_is_self_hosted, the update merge and the encoder read it unchecked), so the
 * loader rejects such a row instead of handing it on. Pure: no I/O. */
#ifndef ENVIROND_MODEL_ENV_STORED_H
#define ENVIROND_MODEL_ENV_STORED_H

#include <jansson.h>

/* NULL when `config` is a complete config of a type this build knows, else a short static
 * reason naming the first problem ("config.networking.type is unknown"). */
const char *env_stored_config_problem(const json_t *config);

/* NULL when `metadata` is an object of strings, else a short static reason. */
const char *env_stored_metadata_problem(const json_t *metadata);

#endif
