/* store_sqlite.c - the embedded SQLite backend: opening, migrations, API keys and
 * credential lookup, and the ops table. Environments and work live in
 * sqlite_env.c and sqlite_work.c; the write and read paths in sqlite_exec.c. */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Versioned migrations: index i brings the schema from version i to i + 1. Never edit a
 * released entry; append a new one. */
static const char *const migrations[] = {
	"CREATE TABLE settings(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
	"CREATE TABLE api_keys(id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
	" org TEXT NOT NULL, account TEXT NOT NULL, workspace TEXT NOT NULL, created_at INTEGER NOT NULL);"
	"CREATE TABLE environments(id TEXT PRIMARY KEY, org TEXT NOT NULL, workspace TEXT NOT NULL,"
	" account TEXT NOT NULL, name TEXT NOT NULL, description TEXT, config TEXT NOT NULL,"
	" metadata TEXT NOT NULL, scope_account INTEGER NOT NULL, archived_at INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX environments_name ON environments(org, workspace, name);"
	"CREATE INDEX environments_list ON environments(org, workspace, created_at DESC, id DESC);"
	"CREATE TABLE env_keys(id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, name TEXT NOT NULL,"
	" hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL);"
	"CREATE INDEX env_keys_list ON env_keys(environment_id, created_at DESC, id DESC);"
	"CREATE TABLE work(id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, data_type TEXT NOT NULL,"
	" data_id TEXT NOT NULL, state INTEGER NOT NULL, metadata TEXT NOT NULL,"
	" created_at INTEGER NOT NULL, acknowledged_at INTEGER NOT NULL, started_at INTEGER NOT NULL,"
	" latest_heartbeat_at INTEGER NOT NULL, stop_requested_at INTEGER NOT NULL,"
	" stopped_at INTEGER NOT NULL, delivered_at INTEGER NOT NULL, delivery_count INTEGER NOT NULL,"
	" lease_expires_at INTEGER NOT NULL, ttl_seconds INTEGER NOT NULL, queue_seq INTEGER NOT NULL,"
	" token_hash TEXT);"
	"CREATE INDEX work_list ON work(environment_id, created_at DESC, id DESC);"
	"CREATE INDEX work_queue ON work(environment_id, delivered_at, queue_seq) WHERE state = 0;"
	"CREATE INDEX work_token ON work(token_hash) WHERE token_hash IS NOT NULL;"
	"CREATE INDEX work_lease ON work(lease_expires_at) WHERE lease_expires_at > 0;"
	"CREATE UNIQUE INDEX work_live_session ON work(environment_id, data_id)"
	" WHERE state != 4 AND data_type = 'session';",
	/* 2: agents, sessions and their events, agent keys (SPEC §6). */
	"CREATE TABLE agent_keys(id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
	" org TEXT NOT NULL, account TEXT NOT NULL, workspace TEXT NOT NULL, models TEXT NOT NULL,"
	" created_at INTEGER NOT NULL);"
	"CREATE TABLE agents(id TEXT NOT NULL, version INTEGER NOT NULL, latest INTEGER NOT NULL,"
	" org TEXT NOT NULL, workspace TEXT NOT NULL, config TEXT NOT NULL, archived_at INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY(id, version));"
	"CREATE INDEX agents_list ON agents(org, workspace, created_at DESC, id DESC) WHERE latest = 1;"
	"CREATE TABLE sessions(id TEXT PRIMARY KEY, org TEXT NOT NULL, workspace TEXT NOT NULL,"
	" account TEXT NOT NULL, environment_id TEXT NOT NULL, agent_id TEXT NOT NULL, agent TEXT NOT NULL,"
	" model_id TEXT NOT NULL, title TEXT NOT NULL, metadata TEXT NOT NULL, status INTEGER NOT NULL,"
	" awaiting_turn INTEGER NOT NULL, awaiting_since INTEGER NOT NULL, turn_id TEXT NOT NULL,"
	" turn_expires_at INTEGER NOT NULL, pending TEXT NOT NULL, required TEXT NOT NULL,"
	" last_seq INTEGER NOT NULL, archived_at INTEGER NOT NULL, deleted_at INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	"CREATE INDEX sessions_list ON sessions(org, workspace, created_at DESC, id DESC) WHERE deleted_at = 0;"
	"CREATE INDEX sessions_awaiting ON sessions(org, awaiting_since) WHERE awaiting_turn = 1 AND turn_id = ''"
	" AND deleted_at = 0 AND archived_at = 0;"
	"CREATE INDEX sessions_turn ON sessions(turn_expires_at) WHERE turn_id != '';"
	"CREATE TABLE session_events(session_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE,"
	" type TEXT NOT NULL, tool_use_id TEXT, body TEXT NOT NULL, PRIMARY KEY(session_id, seq));",
	/* 3: which delivery an ack belongs to (model/work.h): deliveries since the item last
	 * entered the queue, and whether the ack carried its delivery's session token. Items
	 * in flight at the upgrade count every delivery they had, so an ambiguous retry is
	 * refused rather than accepted. */
	"ALTER TABLE work ADD COLUMN cycle_deliveries INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE work ADD COLUMN ack_proven INTEGER NOT NULL DEFAULT 0;"
	"UPDATE work SET cycle_deliveries = delivery_count WHERE state != 4 AND (state != 0 OR delivered_at > 0);",
};

#define SCHEMA_VERSION (int)(sizeof(migrations) / sizeof(migrations[0]))

static enum err migrate(struct sqlite_store *s, struct errbuf *eb)
{
	sqlite3_stmt *st;
	int version = 0;
	if (sqlite3_prepare_v2(s->writer.db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return errf(eb, ERR_INTERNAL, "store: %s", sqlite3_errmsg(s->writer.db));
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SCHEMA_VERSION)
		return errf(eb, ERR_INTERNAL, "store: schema version %d is newer than this environd (%d)", version,
			    SCHEMA_VERSION);
	for (; version < SCHEMA_VERSION; version++) {
		char *msg = NULL;
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", version + 1);
		if (sqlite3_exec(s->writer.db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(s->writer.db, migrations[version], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(s->writer.db, bump, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(s->writer.db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			enum err rc = errf(eb, ERR_INTERNAL, "store: migration %d failed: %s", version + 1,
					   msg ? msg : sqlite3_errmsg(s->writer.db));
			sqlite3_free(msg);
			sqlite3_exec(s->writer.db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		log_event(LOG_INFO, "store_migrated", "schema_version", bump + strlen("PRAGMA user_version = "), NULL);
	}
	return ERR_OK;
}

/* The cursor key: random on first open, then read back. Runs before any caller arrives. */
static enum err load_cursor_key(struct sqlite_store *s, struct errbuf *eb)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->writer.db, "SELECT value FROM settings WHERE key = 'cursor_key'", -1, &st, NULL))
		return errf(eb, ERR_INTERNAL, "store: %s", sqlite3_errmsg(s->writer.db));
	int found = 0;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == CURSOR_KEY_LEN) {
		memcpy(s->cursor_key, sqlite3_column_blob(st, 0), CURSOR_KEY_LEN);
		found = 1;
	}
	sqlite3_finalize(st);
	if (found)
		return ERR_OK;
	if (secret_random(s->cursor_key, CURSOR_KEY_LEN))
		return errf(eb, ERR_INTERNAL, "store: no randomness for the cursor key");
	if (sqlite3_prepare_v2(s->writer.db, "INSERT OR IGNORE INTO settings(key, value) VALUES('cursor_key', ?)", -1,
			       &st, NULL))
		return errf(eb, ERR_INTERNAL, "store: %s", sqlite3_errmsg(s->writer.db));
	sqlite3_bind_blob(st, 1, s->cursor_key, CURSOR_KEY_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return errf(eb, ERR_INTERNAL, "store: %s", sqlite3_errmsg(s->writer.db));
	/* Another process may have raced us to it: read back whichever won. */
	if (sqlite3_prepare_v2(s->writer.db, "SELECT value FROM settings WHERE key = 'cursor_key'", -1, &st, NULL))
		return errf(eb, ERR_INTERNAL, "store: %s", sqlite3_errmsg(s->writer.db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == CURSOR_KEY_LEN)
		memcpy(s->cursor_key, sqlite3_column_blob(st, 0), CURSOR_KEY_LEN);
	sqlite3_finalize(st);
	return ERR_OK;
}

static void sqlite_close(struct store *base)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	sqlite_exec_stop(s);
	sqlite_readers_close(s);
	for (size_t i = 0; i < s->writer.cached; i++)
		sqlite3_finalize(s->writer.cache[i].stmt);
	sqlite3_close(s->writer.db);
	pthread_key_delete(s->reader_key);
	pthread_mutex_destroy(&s->readers_lock);
	free(s->path);
	free(s);
}

static enum err ping_job(struct sqlite_store *s, void *ctx)
{
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT 1");
	if (!st)
		return ERR_UNAVAILABLE;
	return sqlite3_step(st) == SQLITE_ROW ? ERR_OK : ERR_UNAVAILABLE;
}

static enum err sqlite_ping(struct store *base) { return sqlite_read((struct sqlite_store *)base, ping_job, NULL); }

static void sqlite_cursor_key(struct store *base, unsigned char out[CURSOR_KEY_LEN])
{
	memcpy(out, ((struct sqlite_store *)base)->cursor_key, CURSOR_KEY_LEN);
}

/* --- API keys ----------------------------------------------------------------------- */

static enum err count_job(struct sqlite_store *s, void *ctx)
{
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT COUNT(*) FROM api_keys");
	if (!st)
		return ERR_INTERNAL;
	if (sqlite3_step(st) != SQLITE_ROW)
		return sqlite_err(s, sqlite3_errcode(sqlite_db(s)));
	*(int64_t *)ctx = sqlite3_column_int64(st, 0);
	return ERR_OK;
}

static enum err sqlite_api_key_count(struct store *base, int64_t *count)
{
	enum err rc = sqlite_read((struct sqlite_store *)base, count_job, count);
	if (rc)
		*count = 0;
	return rc;
}

struct key_create_ctx {
	const struct api_key *k;
	const char *hash;
};

static enum err key_create_job(struct sqlite_store *s, void *arg)
{
	struct key_create_ctx *c = arg;
	sqlite3_stmt *st = sqlite_stmt(s, "INSERT INTO api_keys(id, hash, name, org, account, workspace, created_at)"
					  " VALUES(?, ?, ?, ?, ?, ?, ?)");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, c->k->id);
	sqlite_bind_text(st, 2, c->hash);
	sqlite_bind_text(st, 3, c->k->name);
	sqlite_bind_text(st, 4, c->k->tenant.org);
	sqlite_bind_text(st, 5, c->k->tenant.account);
	sqlite_bind_text(st, 6, c->k->tenant.workspace);
	sqlite_bind_i64(st, 7, c->k->created_at);
	return sqlite_err(s, sqlite3_step(st));
}

static enum err sqlite_api_key_create(struct store *base, const struct api_key *k, const char *hash)
{
	struct key_create_ctx c = {k, hash};
	return sqlite_run((struct sqlite_store *)base, key_create_job, &c);
}

struct key_list_ctx {
	struct api_key *items;
	size_t count;
};

static enum err key_list_job(struct sqlite_store *s, void *arg)
{
	struct key_list_ctx *c = arg;
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT id, name, org, account, workspace, created_at FROM api_keys"
					  " ORDER BY created_at, id");
	if (!st)
		return ERR_INTERNAL;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (c->count == cap && sqlite_grow((void **)&c->items, &cap, sizeof(*c->items)))
			return ERR_NOMEM;
		struct api_key *k = &c->items[c->count++];
		sqlite_col_text(st, 0, k->id, sizeof(k->id));
		sqlite_col_text(st, 1, k->name, sizeof(k->name));
		sqlite_col_text(st, 2, k->tenant.org, sizeof(k->tenant.org));
		sqlite_col_text(st, 3, k->tenant.account, sizeof(k->tenant.account));
		sqlite_col_text(st, 4, k->tenant.workspace, sizeof(k->tenant.workspace));
		k->created_at = sqlite3_column_int64(st, 5);
	}
	return sqlite_err(s, rc);
}

static enum err sqlite_api_key_list(struct store *base, struct api_key **out, size_t *count)
{
	struct key_list_ctx c = {NULL, 0};
	enum err rc = sqlite_read((struct sqlite_store *)base, key_list_job, &c);
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

static enum err key_revoke_job(struct sqlite_store *s, void *arg)
{
	sqlite3_stmt *st = sqlite_stmt(s, "DELETE FROM api_keys WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, arg);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return sqlite_err(s, rc);
	return sqlite3_changes(sqlite_db(s)) ? ERR_OK : ERR_NOT_FOUND;
}

static enum err sqlite_api_key_revoke(struct store *base, const char *id)
{
	return sqlite_run((struct sqlite_store *)base, key_revoke_job, (void *)id);
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
static int hash_matches(sqlite3_stmt *st, int col, const char *hash)
{
	const unsigned char *stored = sqlite3_column_text(st, col);
	return stored && sqlite3_column_bytes(st, col) == SECRET_HASH_HEX &&
	       secret_equal(stored, hash, SECRET_HASH_HEX);
}

static enum err cred_job(struct sqlite_store *s, void *arg)
{
	struct cred_ctx *c = arg;
	struct credential *o = c->out;
	memset(o, 0, sizeof(*o));
	o->kind = c->kind;
	sqlite3_stmt *st;
	int rc;
	switch (c->kind) {
	case CRED_API_KEY:
		st = sqlite_stmt(s, "SELECT id, org, account, workspace, hash FROM api_keys WHERE hash = ?");
		if (!st)
			return ERR_INTERNAL;
		sqlite_bind_text(st, 1, c->hash);
		if ((rc = sqlite3_step(st)) != SQLITE_ROW)
			return rc == SQLITE_DONE ? ERR_UNAUTHENTICATED : sqlite_err(s, rc);
		if (!hash_matches(st, 4, c->hash))
			return ERR_UNAUTHENTICATED;
		sqlite_col_text(st, 0, o->key_id, sizeof(o->key_id));
		sqlite_col_text(st, 1, o->tenant.org, sizeof(o->tenant.org));
		sqlite_col_text(st, 2, o->tenant.account, sizeof(o->tenant.account));
		sqlite_col_text(st, 3, o->tenant.workspace, sizeof(o->tenant.workspace));
		return ERR_OK;
	case CRED_ENV_KEY:
		st = sqlite_stmt(s, "SELECT k.id, k.environment_id, e.org, e.account, e.workspace, k.hash,"
				    " k.last_used_at FROM env_keys k JOIN environments e ON e.id = k.environment_id"
				    " WHERE k.hash = ?");
		if (!st)
			return ERR_INTERNAL;
		sqlite_bind_text(st, 1, c->hash);
		if ((rc = sqlite3_step(st)) != SQLITE_ROW)
			return rc == SQLITE_DONE ? ERR_UNAUTHENTICATED : sqlite_err(s, rc);
		if (!hash_matches(st, 5, c->hash))
			return ERR_UNAUTHENTICATED;
		sqlite_col_text(st, 0, o->key_id, sizeof(o->key_id));
		sqlite_col_text(st, 1, o->environment_id, sizeof(o->environment_id));
		sqlite_col_text(st, 2, o->tenant.org, sizeof(o->tenant.org));
		sqlite_col_text(st, 3, o->tenant.account, sizeof(o->tenant.account));
		sqlite_col_text(st, 4, o->tenant.workspace, sizeof(o->tenant.workspace));
		/* last_used_at is refreshed at most once a minute: every use would be a write. */
		c->touch = c->now - sqlite3_column_int64(st, 6) >= 60 * 1000000LL;
		return ERR_OK;
	case CRED_SESSION:
		st = sqlite_stmt(s, "SELECT w.id, w.environment_id, e.org, e.account, e.workspace, w.token_hash"
				    " FROM work w JOIN environments e ON e.id = w.environment_id"
				    " WHERE w.token_hash = ?");
		if (!st)
			return ERR_INTERNAL;
		sqlite_bind_text(st, 1, c->hash);
		if ((rc = sqlite3_step(st)) != SQLITE_ROW)
			return rc == SQLITE_DONE ? ERR_UNAUTHENTICATED : sqlite_err(s, rc);
		if (!hash_matches(st, 5, c->hash))
			return ERR_UNAUTHENTICATED;
		sqlite_col_text(st, 0, o->work_id, sizeof(o->work_id));
		sqlite_col_text(st, 1, o->environment_id, sizeof(o->environment_id));
		sqlite_col_text(st, 2, o->tenant.org, sizeof(o->tenant.org));
		sqlite_col_text(st, 3, o->tenant.account, sizeof(o->tenant.account));
		sqlite_col_text(st, 4, o->tenant.workspace, sizeof(o->tenant.workspace));
		return ERR_OK;
	case CRED_AGENT:
		st = sqlite_stmt(s, "SELECT id, org, account, workspace, hash, models FROM agent_keys WHERE hash = ?");
		if (!st)
			return ERR_INTERNAL;
		sqlite_bind_text(st, 1, c->hash);
		if ((rc = sqlite3_step(st)) != SQLITE_ROW)
			return rc == SQLITE_DONE ? ERR_UNAUTHENTICATED : sqlite_err(s, rc);
		if (!hash_matches(st, 4, c->hash))
			return ERR_UNAUTHENTICATED;
		sqlite_col_text(st, 0, o->key_id, sizeof(o->key_id));
		sqlite_col_text(st, 1, o->tenant.org, sizeof(o->tenant.org));
		sqlite_col_text(st, 2, o->tenant.account, sizeof(o->tenant.account));
		sqlite_col_text(st, 3, o->tenant.workspace, sizeof(o->tenant.workspace));
		sqlite_col_text(st, 5, o->agent_models, sizeof(o->agent_models));
		return ERR_OK;
	}
	return ERR_UNAUTHENTICATED;
}

static enum err touch_job(struct sqlite_store *s, void *arg)
{
	struct cred_ctx *c = arg;
	sqlite3_stmt *st = sqlite_stmt(s, "UPDATE env_keys SET last_used_at = ? WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_i64(st, 1, c->now);
	sqlite_bind_text(st, 2, c->out->key_id);
	int rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? ERR_OK : sqlite_err(s, rc);
}

static enum err sqlite_credential_find(struct store *base, enum cred_kind kind, const char *hash, int64_t now,
				       struct credential *out)
{
	struct cred_ctx c = {kind, hash, now, out, 0};
	enum err rc = sqlite_read((struct sqlite_store *)base, cred_job, &c);
	if (rc)
		memset(out, 0, sizeof(*out));
	if (rc == ERR_OK && c.touch) {
		/* Best effort: a failed refresh of last_used_at must not fail the request. */
		sqlite_run((struct sqlite_store *)base, touch_job, &c);
	}
	return rc;
}

static const struct store_ops sqlite_ops = {
	.version = STORE_OPS_VERSION,
	.close = sqlite_close,
	.ping = sqlite_ping,
	.cursor_key = sqlite_cursor_key,
	.api_key_count = sqlite_api_key_count,
	.api_key_create = sqlite_api_key_create,
	.api_key_list = sqlite_api_key_list,
	.api_key_revoke = sqlite_api_key_revoke,
	.credential_find = sqlite_credential_find,
	.env_create = sqlite_env_create,
	.env_get = sqlite_env_get,
	.env_update = sqlite_env_update,
	.env_archive = sqlite_env_archive,
	.env_delete = sqlite_env_delete,
	.env_list = sqlite_env_list,
	.env_key_create = sqlite_env_key_create,
	.env_key_list = sqlite_env_key_list,
	.env_key_revoke = sqlite_env_key_revoke,
	.work_enqueue = sqlite_work_enqueue,
	.work_claim = sqlite_work_claim,
	.work_undeliver = sqlite_work_undeliver,
	.work_get = sqlite_work_get,
	.work_event = sqlite_work_event,
	.work_update_metadata = sqlite_work_update_metadata,
	.work_list = sqlite_work_list,
	.work_stats = sqlite_work_stats,
	.work_next_reclaim = sqlite_work_next_reclaim,
	.leases_expire = sqlite_leases_expire,
	.next_lease_expiry = sqlite_next_lease_expiry,
	.agent_key_create = sqlite_agent_key_create,
	.agent_create = sqlite_agent_create,
	.agent_get = sqlite_agent_get,
	.agent_update = sqlite_agent_update,
	.agent_archive = sqlite_agent_archive,
	.agent_list = sqlite_agent_list,
	.agent_versions = sqlite_agent_versions,
	.session_create = sqlite_session_create,
	.session_get = sqlite_session_get,
	.session_list = sqlite_session_list,
	.session_update = sqlite_session_update,
	.session_close = sqlite_session_close,
	.session_post = sqlite_session_post,
	.session_events = sqlite_session_events,
	.session_last_seq = sqlite_session_last_seq,
	.session_events_since = sqlite_session_events_since,
	.turn_claim = sqlite_turn_claim,
	.turn_heartbeat = sqlite_turn_heartbeat,
	.turn_post = sqlite_turn_post,
	.turns_expire = sqlite_turns_expire,
	.reset_all = sqlite_reset_all,
};

enum err store_sqlite_open(const char *path, struct store **out, struct errbuf *eb)
{
	struct sqlite_store *s = calloc(1, sizeof(*s));
	if (!s)
		return errf(eb, ERR_NOMEM, "store: out of memory");
	s->base.ops = &sqlite_ops;
	s->path = strdup(path);
	pthread_mutex_init(&s->readers_lock, NULL);
	enum err rc = ERR_OK;
	mode_t old_umask = 0;
	int masked = 0;
	if (!s->path || pthread_key_create(&s->reader_key, NULL)) {
		free(s->path);
		free(s);
		return errf(eb, ERR_NOMEM, "store: out of memory");
	}
	if ((rc = sqlite_files_check(path, eb)))
		goto fail;
	/* Files SQLite creates from here on (database, -wal, -shm) are the owner's only. */
	old_umask = sqlite_files_private();
	masked = 1;
	int opened = sqlite3_open_v2(path, &s->writer.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				     NULL);
	if (opened == SQLITE_OK && sqlite3_db_readonly(s->writer.db, "main") == 1) {
		rc = errf(eb, ERR_UNAVAILABLE, "store: %s opens only read-only; the store must be writable", path);
		goto fail;
	}
	if (opened != SQLITE_OK) {
		rc = errf(eb, ERR_UNAVAILABLE, "store: cannot open %s: %s", path,
			  s->writer.db ? sqlite3_errmsg(s->writer.db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->writer.db, 5000);
	char *msg = NULL;
	/* WAL + synchronous=FULL: a commit is on disk before anyone is told it happened. */
	if (sqlite3_exec(s->writer.db,
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;"
			 " PRAGMA temp_store = MEMORY;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		rc = errf(eb, ERR_UNAVAILABLE, "store: cannot configure %s: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		goto fail;
	}
	rc = migrate(s, eb);
	if (!rc)
		rc = load_cursor_key(s, eb);
	if (!rc)
		rc = sqlite_files_probe(s, eb);
	sqlite_files_restore(old_umask);
	masked = 0;
	if (rc)
		goto fail;
	if (sqlite_exec_start(s)) {
		rc = errf(eb, ERR_INTERNAL, "store: cannot set up the write queue");
		goto fail;
	}
	*out = &s->base;
	return ERR_OK;
fail:
	if (masked)
		sqlite_files_restore(old_umask);
	sqlite3_close(s->writer.db);
	pthread_key_delete(s->reader_key);
	free(s->path);
	free(s);
	return rc;
}
