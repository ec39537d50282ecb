/* store_pg.c - the PostgreSQL backend: its schema and migrations, and the queue positions
 * that every node of a fleet shares. The verbs are the shared ones (sql_*.c) on the
 * PostgreSQL driver (db_pg.c).
 *
 * Nodes that start at once migrate one at a time: each takes a session advisory lock
 * before it reads the schema version, and the first applies what is missing. */
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/db_pg.h"
#include "store/pg_bus.h"
#include "store/sql_int.h"

#define MIGRATION_LOCK 0x656e7669726f6e64LL /* "environd" */

/* Versioned migrations: index i brings the schema from version i to i + 1. Never edit a
 * released entry; append a new one. The tables are those of the SQLite backend, with
 * 64-bit integers. */
static const char *const migrations[] = {
	"CREATE TABLE settings(key TEXT PRIMARY KEY, value BYTEA NOT NULL);"
	"CREATE TABLE api_keys(id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
	" org TEXT NOT NULL, account TEXT NOT NULL, workspace TEXT NOT NULL, created_at BIGINT NOT NULL);"
	"CREATE TABLE environments(id TEXT PRIMARY KEY, org TEXT NOT NULL, workspace TEXT NOT NULL,"
	" account TEXT NOT NULL, name TEXT NOT NULL, description TEXT, config TEXT NOT NULL,"
	" metadata TEXT NOT NULL, scope_account BIGINT NOT NULL, archived_at BIGINT NOT NULL,"
	" created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
	"CREATE UNIQUE INDEX environments_name ON environments(org, workspace, name);"
	"CREATE INDEX environments_list ON environments(org, workspace, created_at DESC, id DESC);"
	"CREATE TABLE env_keys(id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, name TEXT NOT NULL,"
	" hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, last_used_at BIGINT NOT NULL);"
	"CREATE INDEX env_keys_list ON env_keys(environment_id, created_at DESC, id DESC);"
	"CREATE TABLE work(id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, data_type TEXT NOT NULL,"
	" data_id TEXT NOT NULL, state BIGINT NOT NULL, metadata TEXT NOT NULL,"
	" created_at BIGINT NOT NULL, acknowledged_at BIGINT NOT NULL, started_at BIGINT NOT NULL,"
	" latest_heartbeat_at BIGINT NOT NULL, stop_requested_at BIGINT NOT NULL,"
	" stopped_at BIGINT NOT NULL, delivered_at BIGINT NOT NULL, delivery_count BIGINT NOT NULL,"
	" lease_expires_at BIGINT NOT NULL, ttl_seconds BIGINT NOT NULL, queue_seq BIGINT NOT NULL,"
	" token_hash TEXT, cycle_deliveries BIGINT NOT NULL DEFAULT 0, ack_proven BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX work_list ON work(environment_id, created_at DESC, id DESC);"
	"CREATE INDEX work_queue ON work(environment_id, delivered_at, queue_seq) WHERE state = 0;"
	"CREATE INDEX work_token ON work(token_hash) WHERE token_hash IS NOT NULL;"
	"CREATE INDEX work_lease ON work(lease_expires_at) WHERE lease_expires_at > 0;"
	"CREATE UNIQUE INDEX work_live_session ON work(environment_id, data_id)"
	" WHERE state != 4 AND data_type = 'session';"
	"CREATE SEQUENCE work_queue_seq;"
	"CREATE TABLE agent_keys(id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
	" org TEXT NOT NULL, account TEXT NOT NULL, workspace TEXT NOT NULL, models TEXT NOT NULL,"
	" created_at BIGINT NOT NULL);"
	"CREATE TABLE agents(id TEXT NOT NULL, version BIGINT NOT NULL, latest BIGINT NOT NULL,"
	" org TEXT NOT NULL, workspace TEXT NOT NULL, config TEXT NOT NULL, archived_at BIGINT NOT NULL,"
	" created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY(id, version));"
	"CREATE INDEX agents_list ON agents(org, workspace, created_at DESC, id DESC) WHERE latest = 1;"
	"CREATE TABLE sessions(id TEXT PRIMARY KEY, org TEXT NOT NULL, workspace TEXT NOT NULL,"
	" account TEXT NOT NULL, environment_id TEXT NOT NULL, agent_id TEXT NOT NULL, agent TEXT NOT NULL,"
	" model_id TEXT NOT NULL, title TEXT NOT NULL, metadata TEXT NOT NULL, status BIGINT NOT NULL,"
	" awaiting_turn BIGINT NOT NULL, awaiting_since BIGINT NOT NULL, turn_id TEXT NOT NULL,"
	" turn_expires_at BIGINT NOT NULL, pending TEXT NOT NULL, required TEXT NOT NULL,"
	" last_seq BIGINT NOT NULL, archived_at BIGINT NOT NULL, deleted_at BIGINT NOT NULL,"
	" created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
	"CREATE INDEX sessions_list ON sessions(org, workspace, created_at DESC, id DESC) WHERE deleted_at = 0;"
	"CREATE INDEX sessions_awaiting ON sessions(org, awaiting_since) WHERE awaiting_turn = 1 AND turn_id = ''"
	" AND deleted_at = 0 AND archived_at = 0;"
	"CREATE INDEX sessions_turn ON sessions(turn_expires_at) WHERE turn_id != '';"
	"CREATE TABLE session_events(session_id TEXT NOT NULL, seq BIGINT NOT NULL, id TEXT NOT NULL UNIQUE,"
	" type TEXT NOT NULL, tool_use_id TEXT, body TEXT NOT NULL, PRIMARY KEY(session_id, seq));"
	/* SQLite's instr(), which the shared SQL uses. */
	"CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER"
	" LANGUAGE sql IMMUTABLE STRICT AS 'SELECT strpos(haystack, needle)';",
	/* 2: workers seen polling, written by every node (workers_polling). */
	"CREATE TABLE workers_seen(environment_id TEXT NOT NULL, worker TEXT NOT NULL, seen_at BIGINT NOT NULL,"
	" PRIMARY KEY(environment_id, worker));"
	"CREATE INDEX workers_seen_at ON workers_seen(seen_at);",
};

#define SCHEMA_VERSION (int)(sizeof(migrations) / sizeof(migrations[0]))

static int simple(PGconn *pg, const char *sql, char *why, size_t why_len)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(why, why_len, "%s", PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

static enum err migrate(const char *url, struct errbuf *eb)
{
	PGconn *pg = db_pg_connect(url);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		enum err rc = errf(eb, ERR_UNAVAILABLE, "--db: cannot connect to PostgreSQL: %s",
				   pg ? db_pg_message(pg) : "out of memory");
		PQfinish(pg);
		return rc;
	}
	char why[512] = "";
	char sql[128];
	enum err rc = ERR_OK;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", MIGRATION_LOCK);
	if (!simple(pg, sql, why, sizeof(why)) ||
	    !simple(pg, "SET client_min_messages = warning;"
			" CREATE TABLE IF NOT EXISTS environd_schema(version BIGINT NOT NULL);"
			" INSERT INTO environd_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM environd_schema)",
		    why, sizeof(why))) {
		rc = errf(eb, ERR_UNAVAILABLE, "store: cannot prepare the schema: %s", why);
		goto out;
	}
	PGresult *r = PQexec(pg, "SELECT version FROM environd_schema");
	int version = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	if (version < 0) {
		rc = errf(eb, ERR_UNAVAILABLE, "store: cannot read the schema version");
		goto out;
	}
	if (version > SCHEMA_VERSION) {
		rc = errf(eb, ERR_INTERNAL, "store: schema version %d is newer than this environd (%d)", version,
			  SCHEMA_VERSION);
		goto out;
	}
	for (; version < SCHEMA_VERSION; version++) {
		char bump[96];
		snprintf(bump, sizeof(bump), "UPDATE environd_schema SET version = %d", version + 1);
		if (!simple(pg, "BEGIN", why, sizeof(why)) || !simple(pg, migrations[version], why, sizeof(why)) ||
		    !simple(pg, bump, why, sizeof(why)) || !simple(pg, "COMMIT", why, sizeof(why))) {
			rc = errf(eb, ERR_INTERNAL, "store: migration %d failed: %s", version + 1, why);
			simple(pg, "ROLLBACK", why, sizeof(why));
			goto out;
		}
		char v[16];
		snprintf(v, sizeof(v), "%d", version + 1);
		log_event(LOG_INFO, "store_migrated", "schema_version", v, NULL);
	}
out:
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", MIGRATION_LOCK);
	simple(pg, sql, why, sizeof(why));
	PQfinish(pg);
	return rc;
}

/* Every node draws from one sequence: positions are unique and increase across the fleet. */
static enum err queue_seq(struct sql_store *s, int64_t now, int64_t *seq)
{
	(void)now;
	struct db_stmt *st = sql_stmt(s, "SELECT nextval('work_queue_seq')");
	if (!st)
		return ERR_INTERNAL;
	int rc = db_step(st);
	if (rc != DB_ROW)
		return rc == DB_DONE ? ERR_INTERNAL : sql_err(s, rc);
	*seq = db_col_i64(st, 0);
	return ERR_OK;
}

/* What the backend keeps besides the driver: the URL for the bus's own connection. */
struct pg_backend {
	char *url;
	struct pg_bus *bus;
};

static enum err subscribe(struct sql_store *s, store_wake_fn fn, void *arg)
{
	struct pg_backend *b = s->backend;
	if (!fn) {
		pg_bus_stop(b->bus);
		b->bus = NULL;
		return ERR_OK;
	}
	if (b->bus)
		return ERR_INVALID;
	b->bus = pg_bus_start(b->url, fn, arg);
	return b->bus ? ERR_OK : ERR_NOMEM;
}

static void publish(struct sql_store *s, const char *key, size_t n)
{
	struct pg_backend *b = s->backend;
	pg_bus_publish(b->bus, key, n);
}

static int wake_epoch(struct sql_store *s, uint64_t *epoch)
{
	struct pg_backend *b = s->backend;
	if (!b->bus) {
		*epoch = 0;
		return -1;
	}
	return pg_bus_epoch(b->bus, epoch);
}

/* One node sweeps at a time: the one whose bus holds the sweeper's lock. A node without a
 * bus (environd key, tests of the store) sweeps when asked. */
static int sweeps(struct sql_store *s)
{
	struct pg_backend *b = s->backend;
	return b->bus ? pg_bus_leads(b->bus) : 1;
}

/* Transactional: PostgreSQL delivers it at the commit, to every listening node. This
 * node's bus skips what carries its own id; the id "-" is nobody's, so it hears that too. */
static enum err notify(struct sql_store *s, const char *key, size_t n, int everyone)
{
	struct pg_backend *b = s->backend;
	char payload[192];
	snprintf(payload, sizeof(payload), "%s\n%zu %s\n", everyone || !b->bus ? "-" : pg_bus_node(b->bus), n, key);
	struct db_stmt *st = sql_stmt(s, "SELECT pg_notify('environd', ?)");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, payload);
	return sql_err(s, db_step(st));
}

static void backend_close(struct sql_store *s)
{
	struct pg_backend *b = s->backend;
	pg_bus_stop(b->bus);
	free(b->url);
	free(b);
}

enum err store_pg_open(const char *url, size_t pool, struct store **out, struct errbuf *eb)
{
	enum err rc = migrate(url, eb);
	if (rc)
		return rc;
	struct sql_store *s = calloc(1, sizeof(*s));
	struct pg_backend *b = calloc(1, sizeof(*b));
	if (!s || !b || !(b->url = strdup(url))) {
		free(b);
		free(s);
		return errf(eb, ERR_NOMEM, "store: out of memory");
	}
	s->db = db_pg_open(url, pool, eb);
	if (!s->db) {
		free(b->url);
		free(b);
		free(s);
		return ERR_UNAVAILABLE;
	}
	s->backend = b;
	s->base.fleet = 1;
	s->queue_seq = queue_seq;
	s->subscribe = subscribe;
	s->publish = publish;
	s->wake_epoch = wake_epoch;
	s->sweeps = sweeps;
	s->notify = notify;
	s->backend_close = backend_close;
	if ((rc = sql_store_init(s, eb))) {
		backend_close(s);
		s->db->ops->close(s->db);
		free(s);
		return rc;
	}
	*out = &s->base;
	return ERR_OK;
}

void store_pg_describe(const char *url, char *out, size_t cap)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	const char *host = "", *port = "", *db = "", *user = "";
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			db = o->val;
		else if (!strcmp(o->keyword, "user"))
			user = o->val;
	}
	snprintf(out, cap, "postgresql host=%s port=%s dbname=%s user=%s", host[0] ? host : "(default)",
		 port[0] ? port : "(default)", db[0] ? db : "(default)", user[0] ? user : "(default)");
	PQconninfoFree(opts);
}
