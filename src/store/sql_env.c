/* sql_env.c - environments and environment keys, and the environment check of every verb
 * that acts in one (sql_env_require). */
#include "store/sql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/env_stored.h"

#define ENV_COLUMNS                                                                               \
	"id, org, workspace, account, name, description, config, metadata, scope_account, archived_at," \
	" created_at, updated_at"
/* Visibility of SPEC §4: same organization and workspace; account scope = creator only. */
#define ENV_VISIBLE "org = ? AND workspace = ? AND (scope_account = 0 OR account = ?)"

static void bind_tenant(struct db_stmt *st, int first, const struct tenant *t)
{
	db_bind_text(st, first, t->org);
	db_bind_text(st, first + 1, t->workspace);
	db_bind_text(st, first + 2, t->account);
}

/* A row this build cannot serve (config or metadata that is not the shape the server
 * writes, a scope it does not know) is reported, never guessed at: the request fails with
 * a 500 and the row stays as it is for an operator to look at. *e owns nothing after. */
static enum err corrupt_env(struct environment *e, const char *why)
{
	log_event(LOG_ERROR, "environment_row_invalid", "environment_id", e->id, "reason", why, NULL);
	environment_clear(e);
	memset(e, 0, sizeof(*e));
	return ERR_INTERNAL;
}

/* Parse column i as JSON into *out; ERR_NOMEM only when jansson ran out of memory, else
 * a damaged value names `what` in the log. */
static enum err col_json(struct db_stmt *st, int i, struct environment *e, const char *what, json_t **out)
{
	const char *text = db_col_text(st, i);
	if (!text) {
		if (db_col_type(st, i) != DB_NULL)
			return ERR_NOMEM;
		return corrupt_env(e, strcmp(what, "config") == 0 ? "config is null" : "metadata is null");
	}
	json_error_t jerr;
	*out = json_loads(text, 0, &jerr);
	if (*out)
		return ERR_OK;
	if (json_error_code(&jerr) == json_error_out_of_memory)
		return ERR_NOMEM;
	return corrupt_env(e, strcmp(what, "config") == 0 ? "config is not JSON" : "metadata is not JSON");
}

/* Decode one row of ENV_COLUMNS. On an error *e is zeroed and owns nothing. */
static enum err read_env(struct db_stmt *st, struct environment *e)
{
	memset(e, 0, sizeof(*e));
	db_col_copy(st, 0, e->id, sizeof(e->id));
	db_col_copy(st, 1, e->org, sizeof(e->org));
	db_col_copy(st, 2, e->workspace, sizeof(e->workspace));
	db_col_copy(st, 3, e->account, sizeof(e->account));
	if (db_col_type(st, 4) != DB_TEXT)
		return corrupt_env(e, "name is not text");
	if (db_col_type(st, 5) != DB_TEXT && db_col_type(st, 5) != DB_NULL)
		return corrupt_env(e, "description is not text or null");
	if (db_col_type(st, 8) != DB_INT)
		return corrupt_env(e, "scope_account is not an integer");
	int64_t scope = db_col_i64(st, 8);
	if (scope != 0 && scope != 1)
		return corrupt_env(e, "scope_account is neither 0 nor 1");
	e->f.scope_account = (int)scope;
	enum err rc = col_json(st, 6, e, "config", &e->f.config);
	if (rc == ERR_OK)
		rc = col_json(st, 7, e, "metadata", &e->f.metadata);
	if (rc) {
		environment_clear(e);
		memset(e, 0, sizeof(*e));
		return rc;
	}
	const char *why = env_stored_config_problem(e->f.config);
	if (!why)
		why = env_stored_metadata_problem(e->f.metadata);
	if (why)
		return corrupt_env(e, why);
	const char *name = db_col_text(st, 4);
	const char *description = db_col_text(st, 5);
	e->f.name = name ? strdup(name) : NULL;
	e->f.description = description ? strdup(description) : NULL;
	e->archived_at = db_col_i64(st, 9);
	e->created_at = db_col_i64(st, 10);
	e->updated_at = db_col_i64(st, 11);
	if (!e->f.name || (db_col_type(st, 5) == DB_TEXT && !e->f.description)) {
		environment_clear(e);
		memset(e, 0, sizeof(*e));
		return ERR_NOMEM;
	}
	return ERR_OK;
}

#define ENV_SELECT "SELECT " ENV_COLUMNS " FROM environments WHERE id = ? AND " ENV_VISIBLE

/* Load one visible environment inside a job, the row locked as `lock` says. */
static enum err load_env(struct sql_store *s, const struct tenant *t, const char *id, enum env_lock lock,
			 struct environment *out)
{
	struct db_stmt *st = sql_stmt(s, lock == ENV_LOCK_UPDATE  ? ENV_SELECT " FOR UPDATE"
					 : lock == ENV_LOCK_SHARE ? ENV_SELECT " FOR SHARE"
								  : ENV_SELECT);
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, id);
	bind_tenant(st, 2, t);
	int rc = db_step(st);
	if (rc == DB_DONE)
		return ERR_NOT_FOUND;
	if (rc != DB_ROW)
		return sql_err(s, rc);
	return read_env(st, out);
}

enum err sql_env_require(struct sql_store *s, const struct tenant *t, const char *env_id, enum env_need need,
			    enum env_lock lock, struct errbuf *eb)
{
	struct environment e;
	enum err rc = load_env(s, t, env_id, lock, &e);
	if (rc == ERR_NOT_FOUND)
		return need == ENV_FOR_SESSION
			       ? errf(eb, ERR_INVALID, "environment_id: environment %.64s not found", env_id)
			       : errf(eb, rc, "environment %.64s not found", env_id);
	if (rc)
		return rc;
	int self_hosted = env_is_self_hosted(&e.f), archived = e.archived_at != 0;
	environment_clear(&e);
	if (!self_hosted) {
		switch (need) {
		case ENV_FOR_KEYS:
			return errf(eb, ERR_INVALID,
				    "environment %.64s is not self_hosted: only self_hosted environments have keys", env_id);
		case ENV_FOR_SESSION:
			return errf(eb, ERR_INVALID,
				    "environment_id: %.64s is a cloud environment; environd runs sessions only in "
				    "self_hosted environments",
				    env_id);
		case ENV_FOR_WORK:
		case ENV_FOR_ENQUEUE:
			break;
		}
		return errf(eb, ERR_INVALID,
			    "environment %.64s is a cloud environment: work exists only in self_hosted environments", env_id);
	}
	if (archived && need == ENV_FOR_ENQUEUE)
		return errf(eb, ERR_ENV_ARCHIVED, "environment %.64s is archived: no new work may be enqueued", env_id);
	if (archived && need == ENV_FOR_SESSION)
		return errf(eb, ERR_INVALID, "environment_id: environment %.64s is archived", env_id);
	return ERR_OK;
}

enum err sql_env_lock_existing(struct sql_store *s, const char *env_id, int *exists)
{
	*exists = 0;
	struct db_stmt *st = sql_stmt(s, "SELECT 1 FROM environments WHERE id = ? FOR SHARE");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, env_id);
	int rc = db_step(st);
	if (rc == DB_ROW)
		*exists = 1;
	else if (rc != DB_DONE)
		return sql_err(s, rc);
	db_reset(st);
	return ERR_OK;
}

/* Write an environment's mutable fields. Name clashes become ERR_NAME_TAKEN. */
static enum err write_env(struct sql_store *s, const struct environment *e, int insert)
{
	char *config = json_dumps(e->f.config, JSON_COMPACT);
	char *metadata = json_dumps(e->f.metadata, JSON_COMPACT);
	enum err err = ERR_NOMEM;
	if (!config || !metadata)
		goto out;
	struct db_stmt *st =
		insert ? sql_stmt(s, "INSERT INTO environments(name, description, config, metadata, scope_account,"
					" archived_at, created_at, updated_at, id, org, workspace, account)"
					" VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		       : sql_stmt(s, "UPDATE environments SET name = ?, description = ?, config = ?, metadata = ?,"
					" scope_account = ?, archived_at = ?, created_at = ?, updated_at = ? WHERE id = ?");
	err = ERR_INTERNAL;
	if (!st)
		goto out;
	db_bind_text(st, 1, e->f.name);
	db_bind_text(st, 2, e->f.description);
	db_bind_text(st, 3, config);
	db_bind_text(st, 4, metadata);
	db_bind_i64(st, 5, e->f.scope_account);
	db_bind_i64(st, 6, e->archived_at);
	db_bind_i64(st, 7, e->created_at);
	db_bind_i64(st, 8, e->updated_at);
	db_bind_text(st, 9, e->id);
	if (insert) {
		db_bind_text(st, 10, e->org);
		db_bind_text(st, 11, e->workspace);
		db_bind_text(st, 12, e->account);
	}
	int rc = db_step(st);
	err = rc == DB_DONE ? ERR_OK : sql_err(s, rc);
	if (err == ERR_CONFLICT)
		err = ERR_NAME_TAKEN;
out:
	free(config);
	free(metadata);
	return err;
}

struct env_ctx {
	const struct tenant *t;
	const char *id;
	const struct env_fields *fields;
	const json_t *body;
	int64_t now;
	struct environment *out;
	struct errbuf *eb;
};

/* A verb's output is released when the verb fails, even if its job had filled it and the
 * group's commit failed afterwards: callers own an output only on ERR_OK. Jobs leave
 * `out` zeroed or complete, so clearing is always safe. */
static enum err finish_env(struct environment *out, enum err rc)
{
	if (rc) {
		environment_clear(out);
		memset(out, 0, sizeof(*out)); /* zeroed, not only owning nothing (store.h) */
	}
	return rc;
}

static enum err create_job(struct sql_store *s, void *arg)
{
	struct env_ctx *c = arg;
	struct environment *e = c->out;
	memset(e, 0, sizeof(*e));
	ids_new_at("env_", c->now, e->id);
	snprintf(e->org, sizeof(e->org), "%s", c->t->org);
	snprintf(e->workspace, sizeof(e->workspace), "%s", c->t->workspace);
	snprintf(e->account, sizeof(e->account), "%s", c->t->account);
	enum err rc = env_fields_copy(&e->f, c->fields);
	if (rc)
		return rc;
	e->created_at = e->updated_at = c->now;
	rc = write_env(s, e, 1);
	if (rc)
		environment_clear(e);
	return rc;
}

enum err sql_env_create(struct store *base, const struct tenant *t, const struct env_fields *f, int64_t now,
			   struct environment *out)
{
	memset(out, 0, sizeof(*out));
	struct env_ctx c = {.t = t, .fields = f, .now = now, .out = out};
	return finish_env(out, sql_run((struct sql_store *)base, create_job, &c));
}

static enum err get_job(struct sql_store *s, void *arg)
{
	struct env_ctx *c = arg;
	return load_env(s, c->t, c->id, ENV_LOCK_NONE, c->out);
}

enum err sql_env_get(struct store *base, const struct tenant *t, const char *id, struct environment *out)
{
	memset(out, 0, sizeof(*out));
	struct env_ctx c = {.t = t, .id = id, .out = out};
	return finish_env(out, sql_read((struct sql_store *)base, get_job, &c));
}

static enum err update_job(struct sql_store *s, void *arg)
{
	struct env_ctx *c = arg;
	/* Locked: an archive in between would otherwise be written over. */
	enum err rc = load_env(s, c->t, c->id, ENV_LOCK_UPDATE, c->out);
	if (rc)
		return rc;
	struct environment *e = c->out;
	int changed = 0;
	if (e->archived_at)
		rc = errf(c->eb, ERR_ENV_ARCHIVED, "environment %s is archived and cannot be updated", e->id);
	else
		rc = env_apply_update(&e->f, c->body, &changed, c->eb);
	if (rc == ERR_OK && changed) {
		e->updated_at = c->now > e->updated_at ? c->now : e->updated_at + 1;
		rc = write_env(s, e, 0);
		if (rc == ERR_NAME_TAKEN)
			errf(c->eb, rc, "name: an environment named \"%.200s\" already exists", e->f.name);
	}
	if (rc)
		environment_clear(e);
	return rc;
}

enum err sql_env_update(struct store *base, const struct tenant *t, const char *id, const json_t *body,
			   int64_t now, struct environment *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct env_ctx c = {.t = t, .id = id, .body = body, .now = now, .out = out, .eb = eb};
	return finish_env(out, sql_run((struct sql_store *)base, update_job, &c));
}

static enum err archive_job(struct sql_store *s, void *arg)
{
	struct env_ctx *c = arg;
	/* Locked: a write in the environment (FOR SHARE) finishes first or sees it archived. */
	enum err rc = load_env(s, c->t, c->id, ENV_LOCK_UPDATE, c->out);
	if (rc || c->out->archived_at)
		return rc;
	c->out->archived_at = c->now;
	c->out->updated_at = c->now > c->out->updated_at ? c->now : c->out->updated_at + 1;
	rc = write_env(s, c->out, 0);
	if (rc)
		environment_clear(c->out);
	return rc;
}

enum err sql_env_archive(struct store *base, const struct tenant *t, const char *id, int64_t now,
			    struct environment *out)
{
	memset(out, 0, sizeof(*out));
	struct env_ctx c = {.t = t, .id = id, .now = now, .out = out};
	return finish_env(out, sql_run((struct sql_store *)base, archive_job, &c));
}

static enum err step_done(struct sql_store *s, struct db_stmt *st)
{
	int rc = db_step(st);
	return rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

static enum err delete_job(struct sql_store *s, void *arg)
{
	struct env_ctx *c = arg;
	/* Locked: a write in the environment (FOR SHARE) either commits first, and its work
	 * or key is deleted below, or finds the environment gone. */
	struct environment e;
	enum err rc = load_env(s, c->t, c->id, ENV_LOCK_UPDATE, &e);
	if (rc)
		return rc;
	environment_clear(&e);
	/* Its items next: a claim or an event in flight on one (they do not lock the
	 * environment) commits first, so the check below sees the state it left. */
	struct db_stmt *st = sql_stmt(s, "SELECT id FROM work WHERE environment_id = ? FOR UPDATE");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->id);
	int step;
	while ((step = db_step(st)) == DB_ROW)
		;
	db_reset(st);
	if (step != DB_DONE)
		return sql_err(s, step);
	if (!(st = sql_stmt(s, "SELECT 1 FROM work WHERE environment_id = ? AND state IN (1, 2, 3) LIMIT 1")))
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->id);
	step = db_step(st);
	if (step == DB_ROW)
		return ERR_HAS_LIVE_WORK;
	if (step != DB_DONE)
		return sql_err(s, step);
	static const char *const deletes[] = {
		"DELETE FROM work WHERE environment_id = ?",
		"DELETE FROM env_keys WHERE environment_id = ?",
		"DELETE FROM environments WHERE id = ?",
	};
	for (size_t i = 0; i < 3; i++) {
		if (!(st = sql_stmt(s, deletes[i])))
			return ERR_INTERNAL;
		db_bind_text(st, 1, c->id);
		if ((rc = step_done(s, st)))
			return rc;
	}
	return sql_notify_credentials(s); /* its keys went with it */
}

enum err sql_env_delete(struct store *base, const struct tenant *t, const char *id, struct work_wake *wake)
{
	memset(wake, 0, sizeof(*wake));
	struct env_ctx c = {.t = t, .id = id};
	enum err rc = sql_run((struct sql_store *)base, delete_job, &c);
	if (rc == ERR_OK) {
		snprintf(wake->environment_id, sizeof(wake->environment_id), "%s", id);
		wake->recheck = 1;
	}
	return rc;
}

struct list_ctx {
	const struct tenant *t;
	const char *env_id;
	int include_archived;
	const struct cursor *after;
	size_t limit;
	void *out;
	struct errbuf *eb;
};

/* Grow an array of `size`-byte elements to hold one more. */
static void *grow(void **items, size_t count, size_t *cap, size_t size)
{
	if (count == *cap) {
		size_t n = *cap ? *cap * 2 : 16;
		void *p = realloc(*items, n * size);
		if (!p)
			return NULL;
		*items = p;
		*cap = n;
	}
	return (char *)*items + count * size;
}

static enum err list_job(struct sql_store *s, void *arg)
{
	struct list_ctx *c = arg;
	struct env_page *page = c->out;
	struct db_stmt *st = sql_stmt(
		s, "SELECT " ENV_COLUMNS " FROM environments WHERE " ENV_VISIBLE " AND (? OR archived_at = 0)"
		   " AND (? OR created_at < ? OR (created_at = ? AND id < ?))"
		   " ORDER BY created_at DESC, id DESC LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	bind_tenant(st, 1, c->t);
	db_bind_i64(st, 4, c->include_archived);
	sql_bind_after(st, 5, c->after);
	db_bind_i64(st, 9, (int64_t)c->limit + 1);
	size_t cap = 0, bytes = 0;
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		/* Stop at the page's byte budget too (but never before the first row): a page of
		 * large environments would otherwise hold limit × 1 MiB in memory at once. */
		size_t row = (size_t)db_col_bytes(st, 4) + (size_t)db_col_bytes(st, 5) +
			     (size_t)db_col_bytes(st, 6) + (size_t)db_col_bytes(st, 7);
		if (page->count == c->limit || (page->count && bytes + row > STORE_PAGE_BYTES)) {
			page->more = 1;
			break;
		}
		bytes += row;
		struct environment *e = grow((void **)&page->items, page->count, &cap, sizeof(*e));
		if (!e)
			return ERR_NOMEM;
		enum err err = read_env(st, e);
		if (err)
			return err;
		page->count++;
	}
	return rc == DB_ROW || rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

enum err sql_env_list(struct store *base, const struct tenant *t, int include_archived,
			 const struct cursor *after, size_t limit, struct env_page *out)
{
	memset(out, 0, sizeof(*out));
	struct list_ctx c = {.t = t, .include_archived = include_archived, .after = after, .limit = limit, .out = out};
	enum err rc = sql_read((struct sql_store *)base, list_job, &c);
	if (rc)
		env_page_clear(out);
	return rc;
}

/* --- environment keys ----------------------------------------------------------------- */

struct key_ctx {
	const struct tenant *t;
	const char *env_id;
	const char *key_id;
	const char *name;
	const char *hash;
	int64_t now;
	struct env_key *out;
	struct errbuf *eb;
};

static enum err key_create_job(struct sql_store *s, void *arg)
{
	struct key_ctx *c = arg;
	struct env_key *k = c->out;
	memset(k, 0, sizeof(*k));
	enum err rc = sql_env_require(s, c->t, c->env_id, ENV_FOR_KEYS, ENV_LOCK_SHARE, c->eb);
	if (rc)
		return rc;
	ids_new_at("envkey_", c->now, k->id);
	snprintf(k->environment_id, sizeof(k->environment_id), "%s", c->env_id);
	snprintf(k->name, sizeof(k->name), "%s", c->name);
	k->created_at = c->now;
	struct db_stmt *st = sql_stmt(s, "INSERT INTO env_keys(id, environment_id, name, hash, created_at, last_used_at)"
					  " VALUES(?, ?, ?, ?, ?, 0)");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, k->id);
	db_bind_text(st, 2, c->env_id);
	db_bind_text(st, 3, c->name);
	db_bind_text(st, 4, c->hash);
	db_bind_i64(st, 5, c->now);
	return step_done(s, st);
}

enum err sql_env_key_create(struct store *base, const struct tenant *t, const char *env_id, const char *name,
			       const char *hash, int64_t now, struct env_key *out, struct errbuf *eb)
{
	struct key_ctx c = {.t = t, .env_id = env_id, .name = name, .hash = hash, .now = now, .out = out, .eb = eb};
	enum err rc = sql_run((struct sql_store *)base, key_create_job, &c);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

static enum err key_list_job(struct sql_store *s, void *arg)
{
	struct list_ctx *c = arg;
	struct env_key_page *page = c->out;
	enum err err = sql_env_require(s, c->t, c->env_id, ENV_FOR_KEYS, ENV_LOCK_NONE, c->eb);
	if (err)
		return err;
	struct db_stmt *st = sql_stmt(s, "SELECT id, environment_id, name, created_at, last_used_at FROM env_keys"
					  " WHERE environment_id = ? AND (? OR created_at < ? OR (created_at = ? AND id < ?))"
					  " ORDER BY created_at DESC, id DESC LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->env_id);
	sql_bind_after(st, 2, c->after);
	db_bind_i64(st, 6, (int64_t)c->limit + 1);
	size_t cap = 0;
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		if (page->count == c->limit) {
			page->more = 1;
			break;
		}
		struct env_key *k = grow((void **)&page->items, page->count, &cap, sizeof(*k));
		if (!k)
			return ERR_NOMEM;
		db_col_copy(st, 0, k->id, sizeof(k->id));
		db_col_copy(st, 1, k->environment_id, sizeof(k->environment_id));
		db_col_copy(st, 2, k->name, sizeof(k->name));
		k->created_at = db_col_i64(st, 3);
		k->last_used_at = db_col_i64(st, 4);
		page->count++;
	}
	return rc == DB_ROW || rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

enum err sql_env_key_list(struct store *base, const struct tenant *t, const char *env_id,
			     const struct cursor *after, size_t limit, struct env_key_page *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct list_ctx c = {.t = t, .env_id = env_id, .after = after, .limit = limit, .out = out, .eb = eb};
	enum err rc = sql_read((struct sql_store *)base, key_list_job, &c);
	if (rc)
		env_key_page_clear(out);
	return rc;
}

static enum err key_revoke_job(struct sql_store *s, void *arg)
{
	struct key_ctx *c = arg;
	enum err rc = sql_env_require(s, c->t, c->env_id, ENV_FOR_KEYS, ENV_LOCK_SHARE, c->eb);
	if (rc)
		return rc;
	struct db_stmt *st = sql_stmt(s, "DELETE FROM env_keys WHERE id = ? AND environment_id = ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->key_id);
	db_bind_text(st, 2, c->env_id);
	rc = step_done(s, st);
	if (rc)
		return rc;
	return db_changes(st) ? sql_notify_credentials(s) : ERR_NOT_FOUND;
}

enum err sql_env_key_revoke(struct store *base, const struct tenant *t, const char *env_id, const char *key_id,
			       struct work_wake *wake, struct errbuf *eb)
{
	memset(wake, 0, sizeof(*wake));
	struct key_ctx c = {.t = t, .env_id = env_id, .key_id = key_id, .eb = eb};
	enum err rc = sql_run((struct sql_store *)base, key_revoke_job, &c);
	if (rc == ERR_OK) {
		snprintf(wake->environment_id, sizeof(wake->environment_id), "%s", env_id);
		wake->recheck = 1;
	}
	return rc;
}
