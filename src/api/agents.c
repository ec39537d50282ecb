/* agents.c - the agents routes (SPEC §6): create, get, list, update (a change makes a new
 * version), versions, archive. Validation and merging are model/agent.c's. API keys only. */
#include "api/sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/encode.h"
#include "common/clock.h"
#include "model/agent.h"

#define REPLY_MAX (8 * 1024 * 1024)

void encode_agent(struct jsonw *w, const struct agent_rec *a)
{
	static const char *const fields[] = {"name",	    "description", "model",	  "system",
					     "tools",	    "skills",	   "mcp_servers", "multiagent",
					     "execution_identity", "metadata", NULL};
	jsonw_obj_open(w);
	jsonw_key(w, "id");
	jsonw_str(w, a->id);
	jsonw_key(w, "type");
	jsonw_str(w, "agent");
	jsonw_key(w, "version");
	jsonw_i64(w, a->version);
	for (size_t i = 0; fields[i]; i++) {
		jsonw_key(w, fields[i]);
		const json_t *v = json_object_get(a->config, fields[i]);
		if (v)
			encode_json(w, v);
		else
			jsonw_null(w);
	}
	jsonw_key(w, "archived_at");
	jsonw_ts(w, a->archived_at);
	jsonw_key(w, "created_at");
	jsonw_ts(w, a->created_at);
	jsonw_key(w, "updated_at");
	jsonw_ts(w, a->updated_at);
	jsonw_obj_close(w);
}

static void reply_agent(struct call *c, const struct agent_rec *a)
{
	struct buf body;
	buf_init(&body, REPLY_MAX);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	encode_agent(&jw, a);
	call_reply(c, 200, &body);
}

static enum err not_found(struct call *c, enum err rc) { return sessions_store_error(c, rc, "agent"); }

enum err agents_create(struct call *c)
{
	json_t *cfg;
	enum err rc = agent_from_create(c->body, &cfg, &c->eb);
	if (rc)
		return rc;
	struct agent_rec a;
	rc = c->app->store->ops->agent_create(c->app->store, &c->tenant, cfg, clock_wall_us(), &a);
	json_decref(cfg);
	if (rc)
		return not_found(c, rc);
	reply_agent(c, &a);
	agent_rec_clear(&a);
	return ERR_OK;
}

/* ?version=N (a positive integer), 0 when absent. */
static enum err version_param(struct call *c, int64_t *version)
{
	*version = 0;
	const char *v = http_query(c->req, "version");
	if (!v || !*v)
		return ERR_OK;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (*end || n < 1 || strlen(v) > 12)
		return errf(&c->eb, ERR_INVALID, "version: must be a positive integer, got \"%.40s\"", v);
	*version = n;
	return ERR_OK;
}

enum err agents_get(struct call *c)
{
	int64_t version;
	enum err rc = version_param(c, &version);
	if (rc)
		return rc;
	struct agent_rec a;
	rc = c->app->store->ops->agent_get(c->app->store, &c->tenant, c->match.params[0], version, &a);
	if (rc == ERR_NOT_FOUND && version)
		return errf(&c->eb, rc, "agent %.64s has no version %lld", c->match.params[0], (long long)version);
	if (rc)
		return not_found(c, rc);
	reply_agent(c, &a);
	agent_rec_clear(&a);
	return ERR_OK;
}

enum err agents_update(struct call *c)
{
	struct agent_rec a;
	enum err rc = c->app->store->ops->agent_update(c->app->store, &c->tenant, c->match.params[0], c->body,
						       clock_wall_us(), &a, &c->eb);
	if (rc)
		return not_found(c, rc);
	reply_agent(c, &a);
	agent_rec_clear(&a);
	return ERR_OK;
}

enum err agents_archive(struct call *c)
{
	struct agent_rec a;
	enum err rc = c->app->store->ops->agent_archive(c->app->store, &c->tenant, c->match.params[0], clock_wall_us(), &a);
	if (rc)
		return not_found(c, rc);
	reply_agent(c, &a);
	agent_rec_clear(&a);
	return ERR_OK;
}

static void reply_page(struct call *c, const struct agent_page *p, const char *kind, const char *scope, int by_version)
{
	struct buf body;
	buf_init(&body, REPLY_MAX);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	jsonw_obj_open(&jw);
	jsonw_key(&jw, "data");
	jsonw_arr_open(&jw);
	for (size_t i = 0; i < p->count; i++)
		encode_agent(&jw, &p->items[i]);
	jsonw_arr_close(&jw);
	const struct agent_rec *last = p->count ? &p->items[p->count - 1] : NULL;
	call_next_page(c, &jw, kind, scope, p->more && last,
		       last ? (by_version ? last->version : last->created_at) : 0, last ? last->id : "");
	jsonw_obj_close(&jw);
	call_reply(c, 200, &body);
}

enum err agents_list(struct call *c)
{
	char scope[2 * TENANT_NAME_MAX + 4];
	snprintf(scope, sizeof(scope), "%s/%s", c->tenant.org, c->tenant.workspace);
	size_t limit;
	struct cursor after;
	int has_after;
	enum err rc = call_page_params(c, "agent", scope, &limit, &after, &has_after);
	if (rc)
		return rc;
	const char *ia = http_query(c->req, "include_archived");
	int include_archived = ia && strcmp(ia, "true") == 0;
	if (ia && !include_archived && strcmp(ia, "false") != 0)
		return errf(&c->eb, ERR_INVALID, "include_archived: must be true or false");
	struct agent_page p;
	rc = c->app->store->ops->agent_list(c->app->store, &c->tenant, include_archived, has_after ? &after : NULL,
					    limit, &p);
	if (rc)
		return not_found(c, rc);
	reply_page(c, &p, "agent", scope, 0);
	agent_page_clear(&p);
	return ERR_OK;
}

enum err agents_versions(struct call *c)
{
	char scope[2 * TENANT_NAME_MAX + ID_MAX + 4];
	snprintf(scope, sizeof(scope), "%s/%s/%.39s", c->tenant.org, c->tenant.workspace, c->match.params[0]);
	size_t limit;
	struct cursor after;
	int has_after;
	enum err rc = call_page_params(c, "agentv", scope, &limit, &after, &has_after);
	if (rc)
		return rc;
	struct agent_page p;
	rc = c->app->store->ops->agent_versions(c->app->store, &c->tenant, c->match.params[0],
						has_after ? &after : NULL, limit, &p);
	if (rc)
		return not_found(c, rc);
	reply_page(c, &p, "agentv", scope, 1);
	agent_page_clear(&p);
	return ERR_OK;
}
