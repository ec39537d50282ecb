/* environments.c - the six environment routes of SPEC §2. */
#include "api/call.h"

#include <stdio.h>
#include <string.h>

#include "api/encode.h"
#include "api/work_wake.h"
#include "common/clock.h"
#include "common/jsonw.h"

#define REPLY_MAX (8 * 1024 * 1024)

static void reply_environment(struct call *c, const struct environment *e)
{
	struct buf body;
	buf_init(&body, REPLY_MAX);
	struct jsonw w;
	jsonw_init(&w, &body);
	encode_environment(&w, e);
	call_reply(c, 200, &body);
}

static enum err not_found(struct call *c, enum err rc)
{
	if (rc == ERR_NOT_FOUND)
		return errf(&c->eb, rc, "environment %.64s not found", c->match.params[0]);
	if (rc == ERR_HAS_LIVE_WORK)
		return errf(&c->eb, rc, "environment %.64s has work that is starting, active or stopping; stop it first",
			    c->match.params[0]);
	if (!c->eb.message[0])
		errf(&c->eb, rc, "%s", err_default_message(rc));
	return rc;
}

enum err env_create(struct call *c)
{
	struct env_fields f;
	enum err rc = env_parse_create(c->body, &f, &c->eb);
	if (rc)
		return rc;
	struct environment e;
	rc = c->app->store->ops->env_create(c->app->store, &c->tenant, &f, clock_wall_us(), &e);
	if (rc == ERR_NAME_TAKEN)
		errf(&c->eb, rc, "name: an environment named \"%.200s\" already exists in this workspace", f.name);
	env_fields_clear(&f);
	if (rc)
		return not_found(c, rc);
	reply_environment(c, &e);
	environment_clear(&e);
	return ERR_OK;
}

enum err env_get(struct call *c)
{
	struct environment e;
	enum err rc = c->app->store->ops->env_get(c->app->store, &c->tenant, c->match.params[0], &e);
	if (rc)
		return not_found(c, rc);
	reply_environment(c, &e);
	environment_clear(&e);
	return ERR_OK;
}

enum err env_update(struct call *c)
{
	struct environment e;
	enum err rc = c->app->store->ops->env_update(c->app->store, &c->tenant, c->match.params[0], c->body,
						     clock_wall_us(), &e, &c->eb);
	if (rc)
		return not_found(c, rc);
	reply_environment(c, &e);
	environment_clear(&e);
	return ERR_OK;
}

enum err env_archive(struct call *c)
{
	struct environment e;
	enum err rc = c->app->store->ops->env_archive(c->app->store, &c->tenant, c->match.params[0], clock_wall_us(), &e);
	if (rc)
		return not_found(c, rc);
	reply_environment(c, &e);
	environment_clear(&e);
	return ERR_OK;
}

enum err env_delete(struct call *c)
{
	struct work_wake wake;
	unsigned long long heard = atomic_load(&c->app->revocations_heard);
	enum err rc = c->app->store->ops->env_delete(c->app->store, &c->tenant, c->match.params[0], &wake);
	if (rc)
		return not_found(c, rc);
	/* Its keys are gone: no request of this node uses them from now on (other nodes hear
	 * of it from the delete's own commit). Polls held on the environment answer now
	 * (their claim finds the key gone). */
	app_forget_credentials(c->app);
	app_revocation_heard(c->app, heard);
	work_wake_polls(c->app, &wake);
	struct buf body;
	buf_init(&body, 4096);
	struct jsonw w;
	jsonw_init(&w, &body);
	jsonw_obj_open(&w);
	jsonw_key(&w, "id");
	jsonw_str(&w, c->match.params[0]);
	jsonw_key(&w, "type");
	jsonw_str(&w, "environment_deleted");
	jsonw_obj_close(&w);
	call_reply(c, 200, &body);
	return ERR_OK;
}

/* The list a cursor belongs to: the tenant's view plus the filter. */
static void list_scope(struct call *c, int include_archived, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s/%s/%d", c->tenant.org, c->tenant.workspace, c->tenant.account, include_archived);
}

static enum err parse_bool(struct call *c, const char *name, int *out)
{
	const char *v = http_query(c->req, name);
	*out = 0;
	if (!v || !*v)
		return ERR_OK;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
		return errf(&c->eb, ERR_INVALID, "%s: must be true or false, got \"%.40s\"", name, v);
	return ERR_OK;
}

enum err env_list(struct call *c)
{
	int include_archived;
	enum err rc = parse_bool(c, "include_archived", &include_archived);
	if (rc)
		return rc;
	char scope[300];
	list_scope(c, include_archived, scope, sizeof(scope));
	size_t limit;
	struct cursor after;
	int has_after;
	if ((rc = call_page_params(c, "environments", scope, &limit, &after, &has_after)))
		return rc;
	struct env_page page;
	rc = c->app->store->ops->env_list(c->app->store, &c->tenant, include_archived, has_after ? &after : NULL, limit,
					  &page);
	if (rc)
		return not_found(c, rc);
	struct call_list l;
	call_list_begin(&l, CALL_LIST_BUDGET);
	for (size_t i = 0; i < page.count; i++) {
		size_t mark = l.body.len;
		encode_environment(&l.w, &page.items[i]);
		if (!call_list_admit(&l, mark))
			break;
	}
	jsonw_arr_close(&l.w);
	const struct environment *last = l.shown ? &page.items[l.shown - 1] : NULL;
	call_next_page(c, &l.w, "environments", scope, last && (page.more || l.cut), last ? last->created_at : 0,
		       last ? last->id : "");
	jsonw_obj_close(&l.w);
	env_page_clear(&page);
	call_reply(c, 200, &l.body);
	return ERR_OK;
}
