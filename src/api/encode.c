/* encode.c - response objects (see encode.h). */
#include "api/encode.h"

#include <stdlib.h>
#include <string.h>

void encode_json(struct jsonw *w, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text) {
		w->out->failed = 2;
		return;
	}
	jsonw_raw(w, text, strlen(text));
	free(text);
}

void encode_environment(struct jsonw *w, const struct environment *e)
{
	jsonw_obj_open(w);
	jsonw_key(w, "id");
	jsonw_str(w, e->id);
	jsonw_key(w, "type");
	jsonw_str(w, "environment");
	jsonw_key(w, "name");
	jsonw_str(w, e->f.name);
	jsonw_key(w, "description");
	jsonw_str_or_null(w, e->f.description);
	jsonw_key(w, "config");
	encode_json(w, e->f.config);
	jsonw_key(w, "metadata");
	encode_json(w, e->f.metadata);
	jsonw_key(w, "scope");
	jsonw_str(w, e->f.scope_account ? "account" : "organization");
	jsonw_key(w, "archived_at");
	jsonw_ts(w, e->archived_at);
	jsonw_key(w, "created_at");
	jsonw_ts(w, e->created_at);
	jsonw_key(w, "updated_at");
	jsonw_ts(w, e->updated_at);
	jsonw_obj_close(w);
}

void encode_work(struct jsonw *w, const struct work_item *item, const char *secret)
{
	const struct work_lease *l = &item->lease;
	jsonw_obj_open(w);
	jsonw_key(w, "id");
	jsonw_str(w, item->id);
	jsonw_key(w, "type");
	jsonw_str(w, "work");
	jsonw_key(w, "environment_id");
	jsonw_str(w, item->environment_id);
	jsonw_key(w, "data");
	jsonw_obj_open(w);
	jsonw_key(w, "type");
	jsonw_str(w, item->data_type);
	jsonw_key(w, "id");
	jsonw_str(w, item->data_id);
	jsonw_obj_close(w);
	jsonw_key(w, "state");
	jsonw_str(w, work_state_name(l->state));
	jsonw_key(w, "metadata");
	encode_json(w, item->metadata);
	jsonw_key(w, "secret");
	jsonw_str_or_null(w, secret);
	jsonw_key(w, "created_at");
	jsonw_ts(w, item->created_at);
	jsonw_key(w, "acknowledged_at");
	jsonw_ts(w, l->acknowledged_at);
	jsonw_key(w, "started_at");
	jsonw_ts(w, l->started_at);
	jsonw_key(w, "latest_heartbeat_at");
	jsonw_ts(w, l->latest_heartbeat_at);
	jsonw_key(w, "stop_requested_at");
	jsonw_ts(w, l->stop_requested_at);
	jsonw_key(w, "stopped_at");
	jsonw_ts(w, l->stopped_at);
	jsonw_obj_close(w);
}

void encode_env_key(struct jsonw *w, const struct env_key *k, const char *key)
{
	jsonw_obj_open(w);
	jsonw_key(w, "id");
	jsonw_str(w, k->id);
	jsonw_key(w, "type");
	jsonw_str(w, "environment_key");
	jsonw_key(w, "environment_id");
	jsonw_str(w, k->environment_id);
	jsonw_key(w, "name");
	jsonw_str(w, k->name);
	jsonw_key(w, "created_at");
	jsonw_ts(w, k->created_at);
	jsonw_key(w, "last_used_at");
	jsonw_ts(w, k->last_used_at);
	if (key) {
		jsonw_key(w, "key");
		jsonw_str(w, key);
	}
	jsonw_obj_close(w);
}
