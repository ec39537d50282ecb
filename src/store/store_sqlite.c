/* store_sqlite.c - the embedded SQLite backend: its files, its schema and its
 * migrations, and the queue positions of its single writer. The verbs are the shared ones
 * (sql_*.c) on the SQLite driver (db_sqlite.c). */
#include "store/sql_int.h"
#include "store/db_sqlite.h"
#include "store/sqlite_file.h"

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
	/* 4: workers seen polling, as a fleet's nodes share them (one server keeps them in
	 * memory; the table keeps the store's verbs the same on every backend). */
	"CREATE TABLE workers_seen(environment_id TEXT NOT NULL, worker TEXT NOT NULL, seen_at INTEGER NOT NULL,"
	" PRIMARY KEY(environment_id, worker));"
	"CREATE INDEX workers_seen_at ON workers_seen(seen_at);",
};

#define SCHEMA_VERSION (int)(sizeof(migrations) / sizeof(migrations[0]))

static enum err migrate(sqlite3 *db, struct errbuf *eb)
{
	sqlite3_stmt *st;
	int version = 0;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return errf(eb, ERR_INTERNAL, "store: %s", sqlite3_errmsg(db));
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
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, migrations[version], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, bump, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			enum err rc = errf(eb, ERR_INTERNAL, "store: migration %d failed: %s", version + 1,
					   msg ? msg : sqlite3_errmsg(db));
			sqlite3_free(msg);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		log_event(LOG_INFO, "store_migrated", "schema_version", bump + strlen("PRAGMA user_version = "), NULL);
	}
	return ERR_OK;
}

/* One writer: positions come from memory, seeded from the store once. Fresh items are
 * ordered by their enqueue time, ties broken by arrival. */
static enum err queue_seq(struct sql_store *s, int64_t now, int64_t *seq)
{
	if (!s->last_queue_seq) {
		struct db_stmt *st = sql_stmt(s, "SELECT COALESCE(MAX(queue_seq), 0) FROM work");
		if (!st)
			return ERR_INTERNAL;
		int rc = db_step(st);
		if (rc != DB_ROW)
			return rc == DB_DONE ? ERR_INTERNAL : sql_err(s, rc);
		s->last_queue_seq = db_col_i64(st, 0);
	}
	*seq = now > s->last_queue_seq ? now : s->last_queue_seq + 1;
	s->last_queue_seq = *seq;
	return ERR_OK;
}

enum err store_sqlite_open(const char *path, struct store **out, struct errbuf *eb)
{
	enum err rc = sqlite_files_check(path, eb);
	if (rc)
		return rc;
	struct sql_store *s = calloc(1, sizeof(*s));
	if (!s)
		return errf(eb, ERR_NOMEM, "store: out of memory");
	/* Files SQLite creates from here on (database, -wal, -shm) are the owner's only. */
	mode_t old_umask = sqlite_files_private();
	sqlite3 *writer = NULL;
	s->db = db_sqlite_open(path, &writer, eb);
	if (!s->db) {
		sqlite_files_restore(old_umask);
		free(s);
		return ERR_UNAVAILABLE;
	}
	s->queue_seq = queue_seq;
	rc = migrate(writer, eb);
	if (!rc)
		rc = sql_store_init(s, eb);
	if (!rc)
		rc = sqlite_files_probe(writer, path, eb);
	sqlite_files_restore(old_umask);
	if (rc) {
		s->db->ops->close(s->db);
		free(s);
		return rc;
	}
	s->base.defers = 1;
	*out = &s->base;
	return ERR_OK;
}
