/* sqlite_exec.c - the SQLite backend's write path (leader/follower group commit on one
 * writer connection) and read path (a read-only connection per thread); see sqlite_int.h. */
#include "store/sqlite_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* The connection of the job running on this thread: the writer while leading a group,
 * the thread's reader inside sqlite_read(). */
static __thread struct sqlite_conn *current;

sqlite3 *sqlite_db(struct sqlite_store *s) { return current ? current->db : s->writer.db; }

static struct sqlite_conn *conn_of(struct sqlite_store *s) { return current ? current : &s->writer; }

/* A job lives on its caller's stack; the caller sleeps on its own condition variable so
 * that finishing a group wakes exactly the callers in it, not every waiting thread. */
struct sqlite_job {
	sqlite_job_fn fn;
	void *ctx;
	enum err rc;
	int done;
	pthread_cond_t cond;
	struct sqlite_job *next;
};

sqlite3_stmt *sqlite_stmt(struct sqlite_store *s, const char *sql)
{
	struct sqlite_conn *c = conn_of(s);
	for (size_t i = 0; i < c->cached; i++) {
		if (c->cache[i].sql == sql) {
			sqlite3_reset(c->cache[i].stmt);
			sqlite3_clear_bindings(c->cache[i].stmt);
			return c->cache[i].stmt;
		}
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		log_event(LOG_ERROR, "store_prepare_failed", "error", sqlite3_errmsg(c->db), NULL);
		return NULL;
	}
	if (c->cached == SQLITE_STMT_CACHE) {
		/* Never expected (the SQL is a fixed set); keep working, just without caching. */
		log_event(LOG_ERROR, "store_stmt_cache_full", NULL);
		sqlite3_finalize(st);
		return NULL;
	}
	c->cache[c->cached].sql = sql;
	c->cache[c->cached].stmt = st;
	c->cached++;
	return st;
}

enum err sqlite_err(struct sqlite_store *s, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return ERR_OK;
	case SQLITE_CONSTRAINT:
		return ERR_CONFLICT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_READONLY: /* the store became read-only while serving: retry later, never a 500 */
	case SQLITE_CANTOPEN:
		log_event(LOG_WARN, "store_unavailable", "error", sqlite3_errmsg(sqlite_db(s)), NULL);
		return ERR_UNAVAILABLE;
	case SQLITE_NOMEM:
		return ERR_NOMEM;
	default:
		log_event(LOG_ERROR, "store_error", "error", sqlite3_errmsg(sqlite_db(s)), NULL);
		return ERR_INTERNAL;
	}
}

void sqlite_bind_text(sqlite3_stmt *st, int i, const char *text)
{
	if (text)
		sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

void sqlite_bind_i64(sqlite3_stmt *st, int i, int64_t v) { sqlite3_bind_int64(st, i, v); }

void sqlite_bind_after(sqlite3_stmt *st, int first, const struct cursor *after)
{
	sqlite3_bind_int64(st, first, after == NULL);
	sqlite3_bind_int64(st, first + 1, after ? after->created_at : 0);
	sqlite3_bind_int64(st, first + 2, after ? after->created_at : 0);
	sqlite3_bind_text(st, first + 3, after ? after->id : "", -1, SQLITE_TRANSIENT);
}

void sqlite_col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(out, t, n);
	out[n] = '\0';
}

static int exec(struct sqlite_store *s, const char *sql)
{
	sqlite3_stmt *st = sqlite_stmt(s, sql);
	if (!st)
		return SQLITE_ERROR;
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Reset every cached statement. A SELECT that stepped to a row and was left there keeps
 * its read transaction open; with another process writing (`environd key create`), the
 * next BEGIN IMMEDIATE would then fail at once on the stale snapshot. */
static void reset_all(struct sqlite_conn *c)
{
	for (size_t i = 0; i < c->cached; i++)
		sqlite3_reset(c->cache[i].stmt);
}

/* Run one group: everything queued now, in one transaction, one savepoint per job. */
static void run_group(struct sqlite_store *s, struct sqlite_job *jobs)
{
	reset_all(&s->writer);
	int rc = exec(s, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK) {
		enum err e = sqlite_err(s, rc);
		for (struct sqlite_job *j = jobs; j; j = j->next)
			j->rc = e ? e : ERR_UNAVAILABLE;
		return;
	}
	for (struct sqlite_job *j = jobs; j; j = j->next) {
		if (exec(s, "SAVEPOINT job") != SQLITE_OK) {
			j->rc = ERR_UNAVAILABLE;
			continue;
		}
		j->rc = j->fn(s, j->ctx);
		reset_all(&s->writer);
		if (j->rc != ERR_OK)
			exec(s, "ROLLBACK TO job");
		exec(s, "RELEASE job");
		if (sqlite3_get_autocommit(s->writer.db)) {
			/* SQLite rolled the whole transaction back (I/O error, disk full, out of
			 * memory): nothing of this group is on disk, so nobody may be told otherwise. */
			log_event(LOG_ERROR, "store_group_aborted", "error", sqlite3_errmsg(s->writer.db), NULL);
			for (struct sqlite_job *k = jobs; k; k = k->next)
				k->rc = ERR_UNAVAILABLE;
			return;
		}
	}
	rc = exec(s, "COMMIT");
	if (rc != SQLITE_OK) {
		log_event(LOG_ERROR, "store_commit_failed", "error", sqlite3_errmsg(sqlite_db(s)), NULL);
		exec(s, "ROLLBACK");
		for (struct sqlite_job *j = jobs; j; j = j->next)
			j->rc = ERR_UNAVAILABLE;
	}
}

/* Detach the next group (up to SQLITE_BATCH_MAX queued jobs) from the queue. Lock held. */
static struct sqlite_job *take_group(struct sqlite_store *s)
{
	struct sqlite_job *group = s->head, *last = s->head;
	size_t n = 1;
	while (last->next && n < SQLITE_BATCH_MAX) {
		last = last->next;
		n++;
	}
	s->head = last->next;
	if (!s->head)
		s->tail = NULL;
	last->next = NULL;
	return group;
}

/* Leader/follower group commit: the caller that finds no group running becomes the
 * leader and runs everything queued (its own job included) on the writer connection, on
 * its own thread; the others sleep on their job until a leader has committed it. No
 * thread is handed the work, so a lone writer pays no context switch. */
enum err sqlite_run(struct sqlite_store *s, sqlite_job_fn fn, void *ctx)
{
	struct sqlite_job job = {.fn = fn, .ctx = ctx, .rc = ERR_OK, .done = 0, .next = NULL};
	pthread_cond_init(&job.cond, NULL);
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		pthread_cond_destroy(&job.cond);
		return ERR_UNAVAILABLE;
	}
	if (s->tail)
		s->tail->next = &job;
	else
		s->head = &job;
	s->tail = &job;
	while (!job.done) {
		if (s->leading) {
			pthread_cond_wait(&job.cond, &s->lock);
			continue;
		}
		s->leading = 1;
		struct sqlite_job *group = take_group(s);
		pthread_mutex_unlock(&s->lock);

		struct sqlite_conn *saved = current;
		current = &s->writer;
		run_group(s, group);
		current = saved;

		pthread_mutex_lock(&s->lock);
		for (struct sqlite_job *j = group; j;) {
			struct sqlite_job *next = j->next;
			j->done = 1;
			pthread_cond_signal(&j->cond); /* under the lock: its caller cannot have left yet */
			j = next;
		}
		s->leading = 0;
		/* Whoever queued meanwhile: the oldest of them leads the next group. */
		if (s->head)
			pthread_cond_signal(&s->head->cond);
		pthread_cond_broadcast(&s->idle);
	}
	pthread_mutex_unlock(&s->lock);
	pthread_cond_destroy(&job.cond);
	return job.rc;
}

/* This thread's reader connection, opened on first use. */
static struct sqlite_conn *reader(struct sqlite_store *s)
{
	struct sqlite_conn *c = pthread_getspecific(s->reader_key);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(c->db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK) {
		log_event(LOG_ERROR, "store_reader_open_failed", "error", c->db ? sqlite3_errmsg(c->db) : "?", NULL);
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, 5000);
	pthread_mutex_lock(&s->readers_lock);
	c->next = s->readers;
	s->readers = c;
	pthread_mutex_unlock(&s->readers_lock);
	pthread_setspecific(s->reader_key, c);
	return c;
}

static int conn_exec(struct sqlite_conn *c, const char *sql)
{
	struct sqlite_conn *saved = current;
	current = c;
	sqlite3_stmt *st = sqlite_stmt(NULL, sql);
	int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	if (st)
		sqlite3_reset(st);
	current = saved;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

enum err sqlite_read(struct sqlite_store *s, sqlite_job_fn fn, void *ctx)
{
	if (current)
		return fn(s, ctx); /* already inside a job on this thread */
	struct sqlite_conn *c = reader(s);
	if (!c)
		return ERR_UNAVAILABLE;
	current = c;
	enum err rc;
	int brc = conn_exec(c, "BEGIN");
	if (brc != SQLITE_OK) {
		rc = sqlite_err(s, brc);
		if (!rc)
			rc = ERR_UNAVAILABLE;
	} else {
		rc = fn(s, ctx);
		reset_all(c);
		conn_exec(c, "COMMIT");
	}
	current = NULL;
	return rc;
}

void sqlite_readers_close(struct sqlite_store *s)
{
	pthread_mutex_lock(&s->readers_lock);
	struct sqlite_conn *c = s->readers;
	s->readers = NULL;
	pthread_mutex_unlock(&s->readers_lock);
	while (c) {
		struct sqlite_conn *next = c->next;
		for (size_t i = 0; i < c->cached; i++)
			sqlite3_finalize(c->cache[i].stmt);
		sqlite3_close(c->db);
		free(c);
		c = next;
	}
}

int sqlite_exec_start(struct sqlite_store *s)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	s->started = 1;
	return 0;
}

void sqlite_exec_stop(struct sqlite_store *s)
{
	if (!s->started)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1; /* new writes are refused; let the running group finish */
	while (s->leading || s->head)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	pthread_cond_destroy(&s->idle);
	s->started = 0;
}

enum err sqlite_grow(void **items, size_t *cap, size_t size)
{
	size_t want = *cap ? *cap * 2 : 16;
	void *n = realloc(*items, want * size);
	if (!n)
		return ERR_NOMEM;
	*items = n;
	*cap = want;
	return ERR_OK;
}
