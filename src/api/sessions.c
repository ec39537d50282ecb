/* sessions.c - the sessions routes (SPEC §6): create, get, list, update, archive, delete;
 * plus who reaches which session and the wake-ups that follow a session's commits.
 *
 * A session lives in a self_hosted environment. The store keeps its work item in step:
 * one live item while it needs a worker, stopped towards `stopping` when it is archived,
 * deleted or terminated. */
#include "api/sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/encode.h"
#include "common/clock.h"
#include "common/log.h"
#include "model/fields.h"
#include "model/metadata.h"

#define REPLY_MAX (8 * 1024 * 1024)
#define TITLE_MAX 512

void sessions_stream_key(const char *session_id, char out[WAITER_KEY_MAX])
{
	snprintf(out, WAITER_KEY_MAX, "stream:%.64s", session_id);
}

void sessions_turn_key(const char *org, char out[WAITER_KEY_MAX])
{
	snprintf(out, WAITER_KEY_MAX, "turns:%.64s", org);
}

void sessions_wake_turns(struct app *a, const char *org)
{
	char key[WAITER_KEY_MAX];
	sessions_turn_key(org, key);
	app_wake(a, key, 0);
}

void sessions_wake(struct app *a, const struct session_wake *w)
{
	if (w->events) {
		char key[WAITER_KEY_MAX];
		sessions_stream_key(w->session_id, key);
		app_wake(a, key, 0);
	}
	if (w->work_enqueued) {
		atomic_fetch_add(&a->metrics.work_enqueued, 1);
		app_wake(a, w->environment_id, 1);
	}
	if (w->turn_wanted && w->org[0])
		sessions_wake_turns(a, w->org);
}

enum err sessions_scope(struct call *c, const char *id, struct session_scope *sc)
{
	sc->org = c->tenant.org;
	sc->workspace = "";
	sc->environment_id = "";
	switch (c->cred.kind) {
	case CRED_API_KEY:
	case CRED_AGENT:
		sc->workspace = c->tenant.workspace;
		return ERR_OK;
	case CRED_ENV_KEY:
		sc->environment_id = c->cred.environment_id;
		return ERR_OK;
	case CRED_SESSION: {
		/* A session token reaches its own item's session, while its delivery is current
		 * (credential_find only finds the current token). */
		sc->environment_id = c->cred.environment_id;
		struct work_item w;
		enum err rc = c->app->store->ops->work_get(c->app->store, &c->tenant, c->cred.environment_id,
							   c->cred.work_id, &w, NULL);
		if (rc)
			return errf(&c->eb, rc == ERR_NOT_FOUND ? ERR_UNAUTHENTICATED : rc, "session token lookup failed");
		int own = strcmp(w.data_type, "session") == 0 && strcmp(w.data_id, id) == 0;
		work_item_clear(&w);
		if (!own)
			return errf(&c->eb, ERR_FORBIDDEN, "this session token belongs to another session");
		return ERR_OK;
	}
	}
	return errf(&c->eb, ERR_FORBIDDEN, "this credential cannot reach sessions");
}

void encode_session(struct jsonw *w, const struct session_rec *r, int64_t now)
{
	jsonw_obj_open(w);
	jsonw_key(w, "id");
	jsonw_str(w, r->id);
	jsonw_key(w, "type");
	jsonw_str(w, "session");
	jsonw_key(w, "agent");
	encode_json(w, r->agent);
	jsonw_key(w, "archived_at");
	jsonw_ts(w, r->archived_at);
	jsonw_key(w, "budget");
	jsonw_null(w);
	jsonw_key(w, "created_at");
	jsonw_ts(w, r->created_at);
	jsonw_key(w, "deployment_id");
	jsonw_null(w);
	jsonw_key(w, "environment_id");
	jsonw_str(w, r->environment_id);
	jsonw_key(w, "metadata");
	encode_json(w, r->metadata);
	jsonw_key(w, "outcome_evaluations");
	jsonw_raw(w, "[]", 2);
	jsonw_key(w, "resources");
	jsonw_raw(w, "[]", 2);
	jsonw_key(w, "stats");
	jsonw_obj_open(w);
	jsonw_key(w, "active_seconds");
	jsonw_i64(w, 0);
	jsonw_key(w, "duration_seconds");
	jsonw_i64(w, now > r->created_at ? (now - r->created_at) / 1000000 : 0);
	jsonw_obj_close(w);
	jsonw_key(w, "status");
	jsonw_str(w, session_status_name(r->state.status));
	jsonw_key(w, "title");
	encode_json(w, r->title);
	jsonw_key(w, "updated_at");
	jsonw_ts(w, r->updated_at);
	jsonw_key(w, "usage");
	jsonw_raw(w, "{\"active_seconds\":0,\"cache_creation\":{\"ephemeral_1h_input_tokens\":0,"
		     "\"ephemeral_5m_input_tokens\":0},\"cache_read_input_tokens\":0,\"input_tokens\":0,"
		     "\"output_tokens\":0}",
		  strlen("{\"active_seconds\":0,\"cache_creation\":{\"ephemeral_1h_input_tokens\":0,"
			 "\"ephemeral_5m_input_tokens\":0},\"cache_read_input_tokens\":0,\"input_tokens\":0,"
			 "\"output_tokens\":0}"));
	jsonw_key(w, "vault_ids");
	jsonw_raw(w, "[]", 2);
	jsonw_obj_close(w);
}

static void reply_session(struct call *c, const struct session_rec *r)
{
	struct buf body;
	buf_init(&body, REPLY_MAX);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	encode_session(&jw, r, clock_lease_us());
	call_reply(c, 200, &body);
}

enum err sessions_store_error(struct call *c, enum err rc, const char *what)
{
	if (rc == ERR_NOT_FOUND)
		return errf(&c->eb, rc, "%s %.64s not found", what, c->match.params[0]);
	if (!c->eb.message[0])
		errf(&c->eb, rc, "%s", err_default_message(rc));
	return rc;
}

static enum err not_found(struct call *c, enum err rc) { return sessions_store_error(c, rc, "session"); }

void sessions_reply_data(struct call *c, const json_t *events)
{
	struct buf body;
	buf_init(&body, 64 * 1024 * 1024);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	jsonw_obj_open(&jw);
	jsonw_key(&jw, "data");
	encode_json(&jw, events);
	jsonw_obj_close(&jw);
	call_reply(c, 200, &body);
}

/* Features environd cannot honour on a session: present and non-empty → 400. */
static enum err refuse_unsupported(struct call *c)
{
	static const struct {
		const char *field;
		const char *why;
	} rows[] = {
		{"resources", "environd mounts no repositories, files or memory stores"},
		{"vault_ids", "environd has no vaults"},
		{"budget", "environd enforces no budgets"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const json_t *v = json_object_get(c->body, rows[i].field);
		if (!v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
			continue;
		return errf(&c->eb, ERR_INVALID, "%s: not supported: %s", rows[i].field, rows[i].why);
	}
	return ERR_OK;
}

static enum err check_title(struct call *c, const json_t *title)
{
	if (!title || json_is_null(title))
		return ERR_OK;
	if (!json_is_string(title))
		return fields_type_error("title", "a string or null", title, &c->eb);
	if (utf8_chars(json_string_value(title), json_string_length(title)) > TITLE_MAX)
		return errf(&c->eb, ERR_INVALID, "title: longer than %d characters", TITLE_MAX);
	return ERR_OK;
}

/* agent: "agent_…" | {"type":"agent","id":…,"version"?:N}. */
static enum err parse_agent_ref(struct call *c, struct session_new *n)
{
	const json_t *a = json_object_get(c->body, "agent");
	if (!a)
		return errf(&c->eb, ERR_INVALID, "agent: required (an agent id or {\"type\":\"agent\",\"id\":…})");
	if (json_is_string(a)) {
		n->agent_id = json_string_value(a);
	} else if (json_is_object(a)) {
		const char *type = json_string_value(json_object_get(a, "type"));
		if (type && strcmp(type, "agent_with_overrides") == 0)
			return errf(&c->eb, ERR_INVALID, "agent.type: agent_with_overrides is not supported: create an "
					  "agent version with the configuration instead");
		if (!type || strcmp(type, "agent") != 0)
			return errf(&c->eb, ERR_INVALID, "agent.type: expected \"agent\"");
		static const char *const f[] = {"type", "id", "version", NULL};
		enum err rc = fields_only(a, "agent", f, &c->eb);
		if (rc)
			return rc;
		n->agent_id = json_string_value(json_object_get(a, "id"));
		if (!n->agent_id)
			return errf(&c->eb, ERR_INVALID, "agent.id: required, a string");
		const json_t *v = json_object_get(a, "version");
		if (v && !json_is_null(v)) {
			if (!json_is_integer(v) || json_integer_value(v) < 1)
				return errf(&c->eb, ERR_INVALID, "agent.version: expected a positive integer");
			n->agent_version = json_integer_value(v);
		}
	} else {
		return fields_type_error("agent", "an agent id or an object", a, &c->eb);
	}
	if (!*n->agent_id || strlen(n->agent_id) >= ID_MAX)
		return errf(&c->eb, ERR_INVALID, "agent: \"%.64s\" is not an agent id", n->agent_id);
	return ERR_OK;
}

enum err sessions_create(struct call *c)
{
	static const char *const f[] = {"agent",     "environment_id", "title",  "metadata", "initial_events",
					"resources", "vault_ids",      "budget", NULL};
	enum err rc = fields_only(c->body, "", f, &c->eb);
	if (rc || (rc = refuse_unsupported(c)))
		return rc;
	struct session_new n = {0};
	if ((rc = parse_agent_ref(c, &n)))
		return rc;
	const json_t *env_id = json_object_get(c->body, "environment_id");
	if (!json_is_string(env_id))
		return fields_type_error("environment_id", "a string", env_id, &c->eb);
	n.environment_id = json_string_value(env_id);
	n.title = json_object_get(c->body, "title");
	if ((rc = check_title(c, n.title)))
		return rc;
	n.metadata = json_object_get(c->body, "metadata");
	if (n.metadata && json_is_null(n.metadata))
		n.metadata = NULL;
	if (n.metadata && (!json_is_object(n.metadata) || (rc = metadata_validate(n.metadata, &c->eb))))
		return rc ? rc : fields_type_error("metadata", "an object", n.metadata, &c->eb);
	n.initial_events = json_object_get(c->body, "initial_events");
	if (n.initial_events && json_is_null(n.initial_events))
		n.initial_events = NULL;
	/* The environment (visible, self_hosted, not archived) is checked by session_create, in
	 * the transaction that creates the session. */
	struct session_rec r;
	struct session_wake wake;
	rc = c->app->store->ops->session_create(c->app->store, &c->tenant, &n, clock_lease_us(), &r, &wake, &c->eb);
	if (rc)
		return not_found(c, rc);
	sessions_wake(c->app, &wake);
	log_event(LOG_INFO, "session_created", "session_id", r.id, "environment_id", r.environment_id, NULL);
	reply_session(c, &r);
	session_rec_clear(&r);
	return ERR_OK;
}

enum err sessions_get(struct call *c)
{
	struct session_scope sc;
	enum err rc = sessions_scope(c, c->match.params[0], &sc);
	if (rc)
		return rc;
	struct session_rec r;
	if ((rc = c->app->store->ops->session_get(c->app->store, &sc, c->match.params[0], &r)))
		return not_found(c, rc);
	reply_session(c, &r);
	session_rec_clear(&r);
	return ERR_OK;
}

enum err sessions_list(struct call *c)
{
	struct session_scope sc;
	enum err rc = sessions_scope(c, "", &sc);
	if (rc)
		return rc;
	char scope[2 * TENANT_NAME_MAX + 4];
	snprintf(scope, sizeof(scope), "%s/%s", c->tenant.org, c->tenant.workspace);
	size_t limit;
	struct cursor after;
	int has_after;
	if ((rc = call_page_params(c, "sesn", scope, &limit, &after, &has_after)))
		return rc;
	const char *ia = http_query(c->req, "include_archived");
	int include_archived = ia && strcmp(ia, "true") == 0;
	if (ia && !include_archived && strcmp(ia, "false") != 0)
		return errf(&c->eb, ERR_INVALID, "include_archived: must be true or false");
	const char *agent_id = http_query(c->req, "agent_id");
	if (agent_id && (!*agent_id || strlen(agent_id) >= ID_MAX))
		return errf(&c->eb, ERR_INVALID, "agent_id: \"%.64s\" is not an agent id", agent_id);
	struct session_page p;
	if ((rc = c->app->store->ops->session_list(c->app->store, &sc, include_archived, agent_id,
						   has_after ? &after : NULL, limit, &p)))
		return not_found(c, rc);
	struct buf body;
	buf_init(&body, REPLY_MAX);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	jsonw_obj_open(&jw);
	jsonw_key(&jw, "data");
	jsonw_arr_open(&jw);
	int64_t now = clock_lease_us();
	for (size_t i = 0; i < p.count; i++)
		encode_session(&jw, &p.items[i], now);
	jsonw_arr_close(&jw);
	const struct session_rec *last = p.count ? &p.items[p.count - 1] : NULL;
	call_next_page(c, &jw, "sesn", scope, p.more && last, last ? last->created_at : 0, last ? last->id : "");
	jsonw_key(&jw, "prev_page");
	jsonw_null(&jw);
	jsonw_obj_close(&jw);
	call_reply(c, 200, &body);
	session_page_clear(&p);
	return ERR_OK;
}

enum err sessions_update(struct call *c)
{
	static const char *const f[] = {"title", "metadata", "agent", "vault_ids", "budget", NULL};
	enum err rc = fields_only(c->body, "", f, &c->eb);
	if (rc || (rc = refuse_unsupported(c)))
		return rc;
	if (json_object_get(c->body, "agent"))
		return errf(&c->eb, ERR_INVALID, "agent: not supported: a session keeps the agent version it was "
				  "created with");
	if ((rc = check_title(c, json_object_get(c->body, "title"))))
		return rc;
	const json_t *meta = json_object_get(c->body, "metadata");
	if (meta && !json_is_null(meta) && !json_is_object(meta))
		return fields_type_error("metadata", "an object", meta, &c->eb);
	struct session_scope sc;
	if ((rc = sessions_scope(c, c->match.params[0], &sc)))
		return rc;
	struct session_rec r;
	if ((rc = c->app->store->ops->session_update(c->app->store, &sc, c->match.params[0], c->body, clock_lease_us(),
						     &r, &c->eb)))
		return not_found(c, rc);
	reply_session(c, &r);
	session_rec_clear(&r);
	return ERR_OK;
}

static enum err close_session(struct call *c, int deleting)
{
	struct session_scope sc;
	enum err rc = sessions_scope(c, c->match.params[0], &sc);
	if (rc)
		return rc;
	struct session_rec r;
	struct session_wake wake;
	if ((rc = c->app->store->ops->session_close(c->app->store, &sc, c->match.params[0], deleting, clock_lease_us(), &r,
						    &wake)))
		return not_found(c, rc);
	sessions_wake(c->app, &wake);
	if (deleting) {
		struct buf body;
		buf_init(&body, 256);
		buf_puts(&body, "{\"id\":");
		jsonw_escape(&body, r.id, strlen(r.id));
		buf_puts(&body, ",\"type\":\"session_deleted\"}");
		call_reply(c, 200, &body);
	} else {
		reply_session(c, &r);
	}
	session_rec_clear(&r);
	return ERR_OK;
}

enum err sessions_archive(struct call *c) { return close_session(c, 0); }
enum err sessions_delete(struct call *c) { return close_session(c, 1); }
