/* sql_store.c - the store's verbs that every backend shares: the job runners, pings,
 * the cursor key, API keys and credential lookup, and the ops table (the other verbs
 * live in sql_env.c, sql_work.c, sql_agent.c, sql_session.c, sql_turn.c). */
#include "store/sql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct trampoline {
	struct sql_store *s;
	sql_job_fn fn;
	void *ctx;
};

static enum err bounce(void *arg)
{
	struct trampoline *t = arg;
	return t->fn(t->s, t->ctx);
}

enum err sql_run(struct sql_store *s, sql_job_fn fn, void *ctx)
{
	struct trampoline t = {s, fn, ctx};
	return s->db->ops->run(s->db, bounce, &t);
}

enum err sql_read(struct sql_store *s, sql_job_fn fn, void *ctx)
{
	struct trampoline t = {s, fn, ctx};
	return s->db->ops->read(s->db, bounce, &t);
}

struct i64_read {
	const char *sql;
	int64_t *out;
};

static enum err i64_job(struct sql_store *s, void *arg)
{
	struct i64_read *r = arg;
	struct db_stmt *st = sql_stmt(s, r->sql);
	if (!st)
		return ERR_INTERNAL;
	int rc = db_step(st);
	if (rc != DB_ROW)
		return sql_err(s, rc);
	*r->out = db_col_i64(st, 0);
	return ERR_OK;
}

enum err sql_read_i64(struct sql_store *s, const char *sql, int64_t *out)
{
	struct i64_read r = {sql, out};
	enum err rc = sql_read(s, i64_job, &r);
	if (rc)
		*out = 0;
	return rc;
}

enum err sql_err(struct sql_store *s, int rc)
{
	if (rc == DB_ROW || rc == DB_DONE)
		return ERR_OK;
	return s->db->ops->fail(s->db);
}

void sql_bind_after(struct db_stmt *st, int first, const struct cursor *after)
{
	db_bind_i64(st, first, after == NULL);
	db_bind_i64(st, first + 1, after ? after->created_at : 0);
	db_bind_i64(st, first + 2, after ? after->created_at : 0);
	db_bind_text(st, first + 3, after ? after->id : "");
}

enum err sql_grow(void **items, size_t *cap, size_t size)
{
	size_t want = *cap ? *cap * 2 : 16;
	void *n = realloc(*items, want * size);
	if (!n)
		return ERR_NOMEM;
	*items = n;
	*cap = want;
	return ERR_OK;
}

static void sql_close(struct store *base)
{
	struct sql_store *s = (struct sql_store *)base;
	if (s->backend_close)
		s->backend_close(s);
	s->db->ops->close(s->db);
	free(s);
}

static enum err sql_subscribe(struct store *base, store_wake_fn fn, void *arg)
{
	struct sql_store *s = (struct sql_store *)base;
	return s->subscribe ? s->subscribe(s, fn, arg) : ERR_OK;
}

static int sql_wake_epoch(struct store *base, uint64_t *epoch)
{
	struct sql_store *s = (struct sql_store *)base;
	if (s->wake_epoch)
		return s->wake_epoch(s, epoch);
	*epoch = 0;
	return 0;
}

static int sql_sweeps(struct store *base)
{
	struct sql_store *s = (struct sql_store *)base;
	return s->sweeps ? s->sweeps(s) : 1;
}

enum err sql_notify_credentials(struct sql_store *s)
{
	return s->notify ? s->notify(s, STORE_KEY_CREDENTIALS, 0, 1) : ERR_OK;
}

static int sql_defer(struct store *base, store_job_fn fn, void *arg, store_done_fn done)
{
	struct sql_store *s = (struct sql_store *)base;
	if (!s->db->ops->submit)
		return 1;
	return s->db->ops->submit(s->db, fn, arg, done) == ERR_OK ? 0 : -1;
}

static uint64_t sql_commits(struct store *base)
{
	struct sql_store *s = (struct sql_store *)base;
	return s->db->ops->commits(s->db);
}

static void sql_publish(struct store *base, const char *key, size_t n)
{
	struct sql_store *s = (struct sql_store *)base;
	if (s->publish)
		s->publish(s, key, n);
}

static enum err ping_job(struct sql_store *s, void *ctx)
{
	struct db_stmt *st = sql_stmt(s, "SELECT 1");
	if (!st)
		return ERR_UNAVAILABLE;
	return db_step(st) == DB_ROW ? ERR_OK : ERR_UNAVAILABLE;
}

static enum err sql_ping(struct store *base) { return sql_read((struct sql_store *)base, ping_job, NULL); }

static void sql_cursor_key(struct store *base, unsigned char out[CURSOR_KEY_LEN])
{
	memcpy(out, ((struct sql_store *)base)->cursor_key, CURSOR_KEY_LEN);
}

/* --- API keys ----------------------------------------------------------------------- */

static enum err count_job(struct sql_store *s, void *ctx)
{
	struct db_stmt *st = sql_stmt(s, "SELECT COUNT(*) FROM api_keys");
	if (!st)
		return ERR_INTERNAL;
	int rc = db_step(st);
	if (rc != DB_ROW)
		return rc == DB_DONE ? ERR_INTERNAL : sql_err(s, rc);
	*(int64_t *)ctx = db_col_i64(st, 0);
	return ERR_OK;
}

static enum err sql_api_key_count(struct store *base, int64_t *count)
{
	enum err rc = sql_read((struct sql_store *)base, count_job, count);
	if (rc)
		*count = 0;
	return rc;
}

struct key_create_ctx {
	const struct api_key *k;
	const char *hash;
};

static enum err key_create_job(struct sql_store *s, void *arg)
{
	struct key_create_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "INSERT INTO api_keys(id, hash, name, org, account, workspace, created_at)"
					  " VALUES(?, ?, ?, ?, ?, ?, ?)");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->k->id);
	db_bind_text(st, 2, c->hash);
	db_bind_text(st, 3, c->k->name);
	db_bind_text(st, 4, c->k->tenant.org);
	db_bind_text(st, 5, c->k->tenant.account);
	db_bind_text(st, 6, c->k->tenant.workspace);
	db_bind_i64(st, 7, c->k->created_at);
	return sql_err(s, db_step(st));
}

static enum err sql_api_key_create(struct store *base, const struct api_key *k, const char *hash)
{
	struct key_create_ctx c = {k, hash};
	return sql_run((struct sql_store *)base, key_create_job, &c);
}

struct key_list_ctx {
	struct api_key *items;
	size_t count;
};

static enum err key_list_job(struct sql_store *s, void *arg)
{
	struct key_list_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "SELECT id, name, org, account, workspace, created_at FROM api_keys"
					  " ORDER BY created_at, id");
	if (!st)
		return ERR_INTERNAL;
	size_t cap = 0;
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		if (c->count == cap && sql_grow((void **)&c->items, &cap, sizeof(*c->items)))
			return ERR_NOMEM;
		struct api_key *k = &c->items[c->count++];
		db_col_copy(st, 0, k->id, sizeof(k->id));
		db_col_copy(st, 1, k->name, sizeof(k->name));
		db_col_copy(st, 2, k->tenant.org, sizeof(k->tenant.org));
		db_col_copy(st, 3, k->tenant.account, sizeof(k->tenant.account));
		db_col_copy(st, 4, k->tenant.workspace, sizeof(k->tenant.workspace));
		k->created_at = db_col_i64(st, 5);
	}
	return sql_err(s, rc);
}

static enum err sql_api_key_list(struct store *base, struct api_key **out, size_t *count)
{
	struct key_list_ctx c = {NULL, 0};
	enum err rc = sql_read((struct sql_store *)base, key_list_job, &c);
	if (rc) {
		free(c.items);
		*out = NULL;
		*count = 0;
		return rc;
	}
	*out = c.items;
	*count = c.count;
	return ERR_OK;
}

static enum err key_revoke_job(struct sql_store *s, void *arg)
{
	struct db_stmt *st = sql_stmt(s, "DELETE FROM api_keys WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, arg);
	int rc = db_step(st);
	if (rc != DB_DONE)
		return sql_err(s, rc);
	return db_changes(st) ? ERR_OK : ERR_NOT_FOUND;
}

static enum err sql_api_key_revoke(struct store *base, const char *id)
{
	return sql_run((struct sql_store *)base, key_revoke_job, (void *)id);
}

/* --- credentials -------------------------------------------------------------------- */

struct cred_ctx {
	enum cred_kind kind;
	const char *hash;
	int64_t now;
	struct credential *out;
	int touch; /* the environment key's last_used_at is due a refresh */
};

/* Compare the stored hash with the presented one in constant time: the index lookup
 * already matched, this keeps the comparison itself free of early exits. */
static int hash_matches(struct db_stmt *st, int col, const char *hash)
{
	const char *stored = db_col_text(st, col);
	return stored && db_col_bytes(st, col) == SECRET_HASH_HEX &&
	       secret_equal(stored, hash, SECRET_HASH_HEX);
}

static enum err cred_job(struct sql_store *s, void *arg)
{
	struct cred_ctx *c = arg;
	struct credential *o = c->out;
	memset(o, 0, sizeof(*o));
	o->kind = c->kind;
	struct db_stmt *st;
	int rc;
	switch (c->kind) {
	case CRED_API_KEY:
		st = sql_stmt(s, "SELECT id, org, account, workspace, hash FROM api_keys WHERE hash = ?");
		if (!st)
			return ERR_INTERNAL;
		db_bind_text(st, 1, c->hash);
		if ((rc = db_step(st)) != DB_ROW)
			return rc == DB_DONE ? ERR_UNAUTHENTICATED : sql_err(s, rc);
		if (!hash_matches(st, 4, c->hash))
			return ERR_UNAUTHENTICATED;
		db_col_copy(st, 0, o->key_id, sizeof(o->key_id));
		db_col_copy(st, 1, o->tenant.org, sizeof(o->tenant.org));
		db_col_copy(st, 2, o->tenant.account, sizeof(o->tenant.account));
		db_col_copy(st, 3, o->tenant.workspace, sizeof(o->tenant.workspace));
		return ERR_OK;
	case CRED_ENV_KEY:
		st = sql_stmt(s, "SELECT k.id, k.environment_id, e.org, e.account, e.workspace, k.hash,"
				    " k.last_used_at FROM env_keys k JOIN environments e ON e.id = k.environment_id"
				    " WHERE k.hash = ?");
		if (!st)
			return ERR_INTERNAL;
		db_bind_text(st, 1, c->hash);
		if ((rc = db_step(st)) != DB_ROW)
			return rc == DB_DONE ? ERR_UNAUTHENTICATED : sql_err(s, rc);
		if (!hash_matches(st, 5, c->hash))
			return ERR_UNAUTHENTICATED;
		db_col_copy(st, 0, o->key_id, sizeof(o->key_id));
		db_col_copy(st, 1, o->environment_id, sizeof(o->environment_id));
		db_col_copy(st, 2, o->tenant.org, sizeof(o->tenant.org));
		db_col_copy(st, 3, o->tenant.account, sizeof(o->tenant.account));
		db_col_copy(st, 4, o->tenant.workspace, sizeof(o->tenant.workspace));
		/* last_used_at is refreshed at most once a minute: every use would be a write. */
		c->touch = c->now - db_col_i64(st, 6) >= 60 * 1000000LL;
		return ERR_OK;
	case CRED_SESSION:
		st = sql_stmt(s, "SELECT w.id, w.environment_id, e.org, e.account, e.workspace, w.token_hash"
				    " FROM work w JOIN environments e ON e.id = w.environment_id"
				    " WHERE w.token_hash = ?");
		if (!st)
			return ERR_INTERNAL;
		db_bind_text(st, 1, c->hash);
		if ((rc = db_step(st)) != DB_ROW)
			return rc == DB_DONE ? ERR_UNAUTHENTICATED : sql_err(s, rc);
		if (!hash_matches(st, 5, c->hash))
			return ERR_UNAUTHENTICATED;
		db_col_copy(st, 0, o->work_id, sizeof(o->work_id));
		db_col_copy(st, 1, o->environment_id, sizeof(o->environment_id));
		db_col_copy(st, 2, o->tenant.org, sizeof(o->tenant.org));
		db_col_copy(st, 3, o->tenant.account, sizeof(o->tenant.account));
		db_col_copy(st, 4, o->tenant.workspace, sizeof(o->tenant.workspace));
		return ERR_OK;
	case CRED_AGENT:
		st = sql_stmt(s, "SELECT id, org, account, workspace, hash, models FROM agent_keys WHERE hash = ?");
		if (!st)
			return ERR_INTERNAL;
		db_bind_text(st, 1, c->hash);
		if ((rc = db_step(st)) != DB_ROW)
			return rc == DB_DONE ? ERR_UNAUTHENTICATED : sql_err(s, rc);
		if (!hash_matches(st, 4, c->hash))
			return ERR_UNAUTHENTICATED;
		db_col_copy(st, 0, o->key_id, sizeof(o->key_id));
		db_col_copy(st, 1, o->tenant.org, sizeof(o->tenant.org));
		db_col_copy(st, 2, o->tenant.account, sizeof(o->tenant.account));
		db_col_copy(st, 3, o->tenant.workspace, sizeof(o->tenant.workspace));
		db_col_copy(st, 5, o->agent_models, sizeof(o->agent_models));
		return ERR_OK;
	}
	return ERR_UNAUTHENTICATED;
}

static enum err touch_job(struct sql_store *s, void *arg)
{
	struct cred_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "UPDATE env_keys SET last_used_at = ? WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_i64(st, 1, c->now);
	db_bind_text(st, 2, c->out->key_id);
	int rc = db_step(st);
	return rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

static enum err sql_credential_find(struct store *base, enum cred_kind kind, const char *hash, int64_t now,
				       struct credential *out)
{
	struct cred_ctx c = {kind, hash, now, out, 0};
	enum err rc = sql_read((struct sql_store *)base, cred_job, &c);
	if (rc)
		memset(out, 0, sizeof(*out));
	if (rc == ERR_OK && c.touch) {
		/* Best effort: a failed refresh of last_used_at must not fail the request. */
		sql_run((struct sql_store *)base, touch_job, &c);
	}
	return rc;
}

static const struct store_ops sql_ops = {
	.version = STORE_OPS_VERSION,
	.close = sql_close,
	.ping = sql_ping,
	.defer = sql_defer,
	.commits = sql_commits,
	.cursor_key = sql_cursor_key,
	.subscribe = sql_subscribe,
	.publish = sql_publish,
	.workers_seen = sql_workers_seen,
	.workers_polling = sql_workers_polling,
	.wake_epoch = sql_wake_epoch,
	.sweeps = sql_sweeps,
	.api_key_count = sql_api_key_count,
	.api_key_create = sql_api_key_create,
	.api_key_list = sql_api_key_list,
	.api_key_revoke = sql_api_key_revoke,
	.credential_find = sql_credential_find,
	.env_create = sql_env_create,
	.env_get = sql_env_get,
	.env_update = sql_env_update,
	.env_archive = sql_env_archive,
	.env_delete = sql_env_delete,
	.env_list = sql_env_list,
	.env_key_create = sql_env_key_create,
	.env_key_list = sql_env_key_list,
	.env_key_revoke = sql_env_key_revoke,
	.work_enqueue = sql_work_enqueue,
	.work_claim = sql_work_claim,
	.work_undeliver = sql_work_undeliver,
	.work_get = sql_work_get,
	.work_event = sql_work_event,
	.work_update_metadata = sql_work_update_metadata,
	.work_list = sql_work_list,
	.work_stats = sql_work_stats,
	.work_next_reclaim = sql_work_next_reclaim,
	.leases_expire = sql_leases_expire,
	.next_lease_expiry = sql_next_lease_expiry,
	.agent_key_create = sql_agent_key_create,
	.agent_create = sql_agent_create,
	.agent_get = sql_agent_get,
	.agent_update = sql_agent_update,
	.agent_archive = sql_agent_archive,
	.agent_list = sql_agent_list,
	.agent_versions = sql_agent_versions,
	.session_create = sql_session_create,
	.session_get = sql_session_get,
	.session_list = sql_session_list,
	.session_update = sql_session_update,
	.session_close = sql_session_close,
	.session_post = sql_session_post,
	.session_events = sql_session_events,
	.session_last_seq = sql_session_last_seq,
	.session_events_since = sql_session_events_since,
	.turn_claim = sql_turn_claim,
	.turn_heartbeat = sql_turn_heartbeat,
	.turn_post = sql_turn_post,
	.turns_expire = sql_turns_expire,
	.next_turn_expiry = sql_next_turn_expiry,
	.reset_all = sql_reset_all,
};


/* The cursor key: random on first open, then read back (whichever process won a race to
 * create it). Runs before any caller arrives. */
static enum err cursor_key_job(struct sql_store *s, void *ctx)
{
	int *found = ctx;
	struct db_stmt *st = sql_stmt(s, "SELECT value FROM settings WHERE key = 'cursor_key'");
	if (!st)
		return ERR_INTERNAL;
	int rc = db_step(st);
	*found = rc == DB_ROW && db_col_blob(st, 0, s->cursor_key, CURSOR_KEY_LEN);
	db_reset(st);
	if (*found)
		return ERR_OK;
	if (rc != DB_ROW && rc != DB_DONE)
		return sql_err(s, rc);
	if (secret_random(s->cursor_key, CURSOR_KEY_LEN))
		return ERR_INTERNAL;
	st = sql_stmt(s, "INSERT INTO settings(key, value) VALUES('cursor_key', ?) ON CONFLICT DO NOTHING");
	if (!st)
		return ERR_INTERNAL;
	db_bind_blob(st, 1, s->cursor_key, CURSOR_KEY_LEN);
	return sql_err(s, db_step(st));
}

enum err sql_store_init(struct sql_store *s, struct errbuf *eb)
{
	s->base.ops = &sql_ops;
	int found = 0;
	enum err rc = sql_run(s, cursor_key_job, &found);
	if (!rc && !found)
		rc = sql_run(s, cursor_key_job, &found);
	if (rc || !found)
		return errf(eb, rc ? rc : ERR_INTERNAL, "store: cannot read or create the cursor key");
	return ERR_OK;
}
