/* sql_agent.c - agents (every version a row; `latest` marks the newest) and agent keys
 * on SQLite. Configurations are validated and merged by model/agent.c. */
#include "store/sql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/agent.h"

#define AGENT_COLUMNS "id, version, config, archived_at, created_at, updated_at"

static enum err read_agent(struct db_stmt *st, struct agent_rec *a)
{
	memset(a, 0, sizeof(*a));
	db_col_copy(st, 0, a->id, sizeof(a->id));
	a->version = db_col_i64(st, 1);
	const char *cfg = db_col_text(st, 2);
	a->config = cfg ? json_loads(cfg, 0, NULL) : NULL;
	a->archived_at = db_col_i64(st, 3);
	a->created_at = db_col_i64(st, 4);
	a->updated_at = db_col_i64(st, 5);
	return a->config ? ERR_OK : ERR_INTERNAL;
}

enum err sql_agent_load(struct sql_store *s, const char *org, const char *workspace, const char *id,
			   int64_t version, struct agent_rec *out)
{
	struct db_stmt *st = sql_stmt(s, "SELECT " AGENT_COLUMNS " FROM agents WHERE id = ? AND org = ?"
					  " AND workspace = ? AND (CASE WHEN ? = 0 THEN latest = 1 ELSE version = ? END)");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, org);
	db_bind_text(st, 3, workspace);
	db_bind_i64(st, 4, version);
	db_bind_i64(st, 5, version);
	int rc = db_step(st);
	if (rc == DB_DONE)
		return ERR_NOT_FOUND;
	if (rc != DB_ROW)
		return sql_err(s, rc);
	return read_agent(st, out);
}

static enum err insert_version(struct sql_store *s, const struct tenant *t, const struct agent_rec *a)
{
	char *cfg = json_dumps(a->config, JSON_COMPACT);
	struct db_stmt *st = sql_stmt(s, "INSERT INTO agents(id, version, latest, org, workspace, config, archived_at,"
					  " created_at, updated_at) VALUES(?, ?, 1, ?, ?, ?, ?, ?, ?)");
	if (!cfg || !st) {
		free(cfg);
		return cfg ? ERR_INTERNAL : ERR_NOMEM;
	}
	db_bind_text(st, 1, a->id);
	db_bind_i64(st, 2, a->version);
	db_bind_text(st, 3, t->org);
	db_bind_text(st, 4, t->workspace);
	db_bind_text(st, 5, cfg);
	db_bind_i64(st, 6, a->archived_at);
	db_bind_i64(st, 7, a->created_at);
	db_bind_i64(st, 8, a->updated_at);
	int rc = db_step(st);
	free(cfg);
	return rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

struct agent_ctx {
	const struct tenant *t;
	const char *id;
	int64_t version;
	const json_t *json;
	int64_t now;
	struct agent_rec *out;
	struct errbuf *eb;
	int include_archived;
	const struct cursor *after;
	size_t limit;
	struct agent_page *page;
	const struct agent_key *key;
	const char *hash;
};

static enum err create_job(struct sql_store *s, void *arg)
{
	struct agent_ctx *c = arg;
	struct agent_rec *a = c->out;
	memset(a, 0, sizeof(*a));
	ids_new_at("agent_", c->now, a->id);
	a->version = 1;
	a->created_at = a->updated_at = c->now;
	a->config = json_deep_copy(c->json);
	if (!a->config)
		return ERR_NOMEM;
	enum err rc = insert_version(s, c->t, a);
	if (rc)
		agent_rec_clear(a);
	return rc;
}

static enum err finish_agent(struct agent_rec *out, enum err rc)
{
	if (rc)
		agent_rec_clear(out);
	return rc;
}

enum err sql_agent_create(struct store *base, const struct tenant *t, const json_t *config, int64_t now,
			     struct agent_rec *out)
{
	memset(out, 0, sizeof(*out));
	struct agent_ctx c = {.t = t, .json = config, .now = now, .out = out};
	return finish_agent(out, sql_run((struct sql_store *)base, create_job, &c));
}

static enum err get_job(struct sql_store *s, void *arg)
{
	struct agent_ctx *c = arg;
	return sql_agent_load(s, c->t->org, c->t->workspace, c->id, c->version, c->out);
}

enum err sql_agent_get(struct store *base, const struct tenant *t, const char *id, int64_t version,
			  struct agent_rec *out)
{
	memset(out, 0, sizeof(*out));
	struct agent_ctx c = {.t = t, .id = id, .version = version, .out = out};
	return finish_agent(out, sql_read((struct sql_store *)base, get_job, &c));
}

/* Writers of one agent take turns on its first version's row, which never changes: the
 * latest version's row would not do, since a writer that waited on it would find it
 * superseded (no longer latest) and miss the version that replaced it. */
static enum err lock_agent(struct sql_store *s, const char *id)
{
	struct db_stmt *st = sql_stmt(s, "SELECT 1 FROM agents WHERE id = ? AND version = 1 FOR UPDATE");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, id);
	int rc = db_step(st);
	db_reset(st);
	return rc == DB_ROW || rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

static enum err update_job(struct sql_store *s, void *arg)
{
	struct agent_ctx *c = arg;
	struct agent_rec *a = c->out;
	enum err rc = lock_agent(s, c->id);
	if (!rc)
		rc = sql_agent_load(s, c->t->org, c->t->workspace, c->id, 0, a);
	if (rc)
		return rc;
	json_t *merged = NULL;
	int changed = 0;
	int64_t expected = 0;
	if (a->archived_at) {
		rc = errf(c->eb, ERR_INVALID, "agent %.64s is archived: it cannot be updated", c->id);
		goto out;
	}
	if ((rc = agent_update(a->config, c->json, &merged, &changed, &expected, c->eb)))
		goto out;
	if (expected && expected != a->version) {
		rc = errf(c->eb, ERR_CONFLICT, "version: the agent is at version %lld, not %lld",
			  (long long)a->version, (long long)expected);
		goto out;
	}
	if (!changed) {
		json_decref(merged);
		return ERR_OK; /* no effective change: no new version */
	}
	struct db_stmt *st = sql_stmt(s, "UPDATE agents SET latest = 0 WHERE id = ?");
	if (!st) {
		rc = ERR_INTERNAL;
		goto out;
	}
	db_bind_text(st, 1, a->id);
	int src = db_step(st);
	if (src != DB_DONE) {
		rc = sql_err(s, src);
		goto out;
	}
	json_decref(a->config);
	a->config = merged;
	merged = NULL;
	a->version++;
	a->updated_at = c->now;
	rc = insert_version(s, c->t, a);
out:
	json_decref(merged);
	if (rc)
		agent_rec_clear(a);
	return rc;
}

enum err sql_agent_update(struct store *base, const struct tenant *t, const char *id, const json_t *body,
			     int64_t now, struct agent_rec *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct agent_ctx c = {.t = t, .id = id, .json = body, .now = now, .out = out, .eb = eb};
	return finish_agent(out, sql_run((struct sql_store *)base, update_job, &c));
}

static enum err archive_job(struct sql_store *s, void *arg)
{
	struct agent_ctx *c = arg;
	enum err rc = lock_agent(s, c->id);
	if (!rc)
		rc = sql_agent_load(s, c->t->org, c->t->workspace, c->id, 0, c->out);
	if (rc || c->out->archived_at)
		return rc;
	struct db_stmt *st = sql_stmt(s, "UPDATE agents SET archived_at = ?, updated_at = ? WHERE id = ? AND latest = 1");
	if (!st)
		return ERR_INTERNAL;
	db_bind_i64(st, 1, c->now);
	db_bind_i64(st, 2, c->now);
	db_bind_text(st, 3, c->id);
	int src = db_step(st);
	if (src != DB_DONE)
		return sql_err(s, src);
	c->out->archived_at = c->out->updated_at = c->now;
	return ERR_OK;
}

enum err sql_agent_archive(struct store *base, const struct tenant *t, const char *id, int64_t now,
			      struct agent_rec *out)
{
	memset(out, 0, sizeof(*out));
	struct agent_ctx c = {.t = t, .id = id, .now = now, .out = out};
	return finish_agent(out, sql_run((struct sql_store *)base, archive_job, &c));
}

static enum err collect(struct sql_store *s, struct db_stmt *st, struct agent_ctx *c)
{
	size_t cap = 0;
	int rc;
	struct agent_page *page = c->page;
	while ((rc = db_step(st)) == DB_ROW) {
		if (page->count == c->limit) {
			page->more = 1;
			break;
		}
		if (page->count == cap && sql_grow((void **)&page->items, &cap, sizeof(*page->items)))
			return ERR_NOMEM;
		enum err err = read_agent(st, &page->items[page->count]);
		page->count++;
		if (err)
			return err;
	}
	return rc == DB_ROW || rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

static enum err list_job(struct sql_store *s, void *arg)
{
	struct agent_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "SELECT " AGENT_COLUMNS " FROM agents WHERE org = ? AND workspace = ?"
					  " AND latest = 1 AND (? OR archived_at = 0)"
					  " AND (? OR created_at < ? OR (created_at = ? AND id < ?))"
					  " ORDER BY created_at DESC, id DESC LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->t->org);
	db_bind_text(st, 2, c->t->workspace);
	db_bind_i64(st, 3, c->include_archived);
	sql_bind_after(st, 4, c->after);
	db_bind_i64(st, 8, (int64_t)c->limit + 1);
	return collect(s, st, c);
}

enum err sql_agent_list(struct store *base, const struct tenant *t, int include_archived,
			   const struct cursor *after, size_t limit, struct agent_page *out)
{
	memset(out, 0, sizeof(*out));
	struct agent_ctx c = {.t = t, .include_archived = include_archived, .after = after, .limit = limit, .page = out};
	enum err rc = sql_read((struct sql_store *)base, list_job, &c);
	if (rc)
		agent_page_clear(out);
	return rc;
}

static enum err versions_job(struct sql_store *s, void *arg)
{
	struct agent_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "SELECT " AGENT_COLUMNS " FROM agents WHERE id = ? AND org = ?"
					  " AND workspace = ? AND (? OR version < ?) ORDER BY version DESC LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->id);
	db_bind_text(st, 2, c->t->org);
	db_bind_text(st, 3, c->t->workspace);
	db_bind_i64(st, 4, c->after == NULL);
	db_bind_i64(st, 5, c->after ? c->after->created_at : 0);
	db_bind_i64(st, 6, (int64_t)c->limit + 1);
	enum err rc = collect(s, st, c);
	if (!rc && c->page->count == 0 && !c->after) {
		/* No rows at all: the agent does not exist for this tenant. */
		return ERR_NOT_FOUND;
	}
	return rc;
}

enum err sql_agent_versions(struct store *base, const struct tenant *t, const char *id, const struct cursor *after,
			       size_t limit, struct agent_page *out)
{
	memset(out, 0, sizeof(*out));
	struct agent_ctx c = {.t = t, .id = id, .after = after, .limit = limit, .page = out};
	enum err rc = sql_read((struct sql_store *)base, versions_job, &c);
	if (rc)
		agent_page_clear(out);
	return rc;
}

static enum err key_job(struct sql_store *s, void *arg)
{
	struct agent_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "INSERT INTO agent_keys(id, hash, name, org, account, workspace, models,"
					  " created_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->key->id);
	db_bind_text(st, 2, c->hash);
	db_bind_text(st, 3, c->key->name);
	db_bind_text(st, 4, c->key->tenant.org);
	db_bind_text(st, 5, c->key->tenant.account);
	db_bind_text(st, 6, c->key->tenant.workspace);
	db_bind_text(st, 7, c->key->models);
	db_bind_i64(st, 8, c->key->created_at);
	return sql_err(s, db_step(st));
}

enum err sql_agent_key_create(struct store *base, const struct agent_key *k, const char *hash)
{
	struct agent_ctx c = {.key = k, .hash = hash};
	return sql_run((struct sql_store *)base, key_job, &c);
}
