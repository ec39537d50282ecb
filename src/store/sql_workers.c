/* sql_workers.c - workers seen polling, as the nodes of a fleet share them: each node
 * writes its sightings in batches, and the stats count every node's. The one place where
 * the SQL differs by backend: PostgreSQL takes a batch as one statement (a JSON set of
 * rows), SQLite row by row (it runs in-process, and one server keeps its sightings in
 * memory anyway). */
#include "store/sql_int.h"

#include <stdlib.h>
#include <string.h>

struct seen_ctx {
	const struct worker_seen *rows;
	size_t n;
	int64_t prune_before;
	const char *env_id;
	int64_t since;
	int64_t count;
};

/* PostgreSQL: the whole batch in one statement, its rows as one JSON parameter (a fleet's
 * node writes hundreds at a time; one statement each would be one round trip each). */
static enum err seen_batch(struct sql_store *s, struct seen_ctx *c)
{
	json_t *rows = json_array();
	for (size_t i = 0; rows && i < c->n; i++) {
		json_t *r = json_pack("{s:s, s:s, s:I}", "environment_id", c->rows[i].environment_id, "worker",
				      c->rows[i].worker, "seen_at", (json_int_t)c->rows[i].seen_at);
		if (!r || json_array_append_new(rows, r)) {
			json_decref(rows);
			rows = NULL;
		}
	}
	char *text = rows ? json_dumps(rows, JSON_COMPACT) : NULL;
	json_decref(rows);
	if (!text)
		return ERR_NOMEM;
	struct db_stmt *st = sql_stmt(
		s, "INSERT INTO workers_seen(environment_id, worker, seen_at)"
		   " SELECT DISTINCT ON (environment_id, worker) environment_id, worker, seen_at"
		   " FROM json_to_recordset(CAST(? AS json)) AS r(environment_id text, worker text, seen_at bigint)"
		   " ORDER BY environment_id, worker, seen_at DESC"
		   " ON CONFLICT(environment_id, worker) DO UPDATE SET seen_at = CASE"
		   " WHEN excluded.seen_at > workers_seen.seen_at THEN excluded.seen_at ELSE workers_seen.seen_at END");
	enum err rc = st ? ERR_OK : ERR_INTERNAL;
	if (st) {
		db_bind_text(st, 1, text);
		rc = sql_err(s, db_step(st));
	}
	free(text);
	return rc;
}

static enum err seen_job(struct sql_store *s, void *arg)
{
	struct seen_ctx *c = arg;
	enum err rc = strcmp(s->db->ops->name, "postgres") == 0 && c->n ? seen_batch(s, c) : ERR_OK;
	if (rc)
		return rc;
	for (size_t i = 0; strcmp(s->db->ops->name, "postgres") != 0 && i < c->n; i++) {
		struct db_stmt *st = sql_stmt(
			s, "INSERT INTO workers_seen(environment_id, worker, seen_at) VALUES(?, ?, ?)"
			   " ON CONFLICT(environment_id, worker) DO UPDATE SET seen_at = CASE"
			   " WHEN excluded.seen_at > workers_seen.seen_at THEN excluded.seen_at ELSE workers_seen.seen_at END");
		if (!st)
			return ERR_INTERNAL;
		db_bind_text(st, 1, c->rows[i].environment_id);
		db_bind_text(st, 2, c->rows[i].worker);
		db_bind_i64(st, 3, c->rows[i].seen_at);
		if ((rc = sql_err(s, db_step(st))))
			return rc;
	}
	struct db_stmt *st = sql_stmt(s, "DELETE FROM workers_seen WHERE seen_at < ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_i64(st, 1, c->prune_before);
	return sql_err(s, db_step(st));
}

enum err sql_workers_seen(struct store *base, const struct worker_seen *rows, size_t n, int64_t prune_before)
{
	struct seen_ctx c = {.rows = rows, .n = n, .prune_before = prune_before};
	return sql_run((struct sql_store *)base, seen_job, &c);
}

static enum err polling_job(struct sql_store *s, void *arg)
{
	struct seen_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "SELECT COUNT(*) FROM workers_seen WHERE environment_id = ? AND seen_at > ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->env_id);
	db_bind_i64(st, 2, c->since);
	int rc = db_step(st);
	if (rc != DB_ROW)
		return rc == DB_DONE ? ERR_INTERNAL : sql_err(s, rc);
	c->count = db_col_i64(st, 0);
	return ERR_OK;
}

enum err sql_workers_polling(struct store *base, const char *env_id, int64_t since, int64_t *count)
{
	struct seen_ctx c = {.env_id = env_id, .since = since};
	enum err rc = sql_read((struct sql_store *)base, polling_job, &c);
	*count = rc ? 0 : c.count;
	return rc;
}
