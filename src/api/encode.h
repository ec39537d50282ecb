/* encode.h - the JSON shape of every object the API returns (SPEC §2, §3, §5). */
#ifndef ENVIROND_API_ENCODE_H
#define ENVIROND_API_ENCODE_H

#include "common/jsonw.h"
#include "store/store.h"

void encode_environment(struct jsonw *w, const struct environment *e);
/* `secret` is the poll's secret, or NULL for null. */
void encode_work(struct jsonw *w, const struct work_item *item, const char *secret);
/* `key` is the key text on the create response only, else NULL (omitted). */
void encode_env_key(struct jsonw *w, const struct env_key *k, const char *key);
/* A jansson value (config, metadata) as JSON. */
void encode_json(struct jsonw *w, const json_t *v);

#endif
