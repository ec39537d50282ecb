/* db_sqlite.c - the SQLite driver of db.h: group commit on one writer thread and its
 * connection, and a read-only connection per reading thread.
 *
 * Jobs queue for the writer thread, which runs everything waiting in one transaction, each
 * job inside its own SAVEPOINT, commits once (one fsync for the whole group), then tells
 * each job's submitter: a job submitted with submit() has its done() called there, on the
 * writer thread, and nobody waited for it; a job run with run() wakes its caller. A job
 * that fails is rolled back alone; a group that SQLite rolls back fails every job in it.
 * A write nested in a job runs in a savepoint of its own, so that its failure undoes its
 * writes and nothing else of the job. Reads run on the calling thread, on a read-only
 * connection of its own (WAL lets them proceed while a group writes), inside one read
 * transaction, so they never wait behind a group's fsync. */
#include "store/db_sqlite.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define STMT_CACHE 192
#define BATCH_MAX 256

struct sstmt {
	struct db_stmt base;
	sqlite3_stmt *st;
	const char *sql; /* static string: compared by address */
	sqlite3 *db;
};

/* One connection and its prepared statements. Used by one thread at a time. */
struct sconn {
	sqlite3 *db;
	struct sstmt cache[STMT_CACHE];
	size_t cached;
	struct sconn *next; /* the driver's list of reader connections */
};

struct sjob {
	db_job_fn fn;
	void *arg;
	enum err rc;
	db_done_fn on_done; /* submitted: called after the commit, then the job is freed */
	int done;
	pthread_cond_t cond; /* run(): its caller sleeps here until its group ends */
	struct sjob *next;
};

struct sdb {
	struct db base;
	struct sconn writer;
	char *path;
	pthread_key_t reader_key;
	pthread_mutex_t readers_lock;
	struct sconn *readers;

	pthread_mutex_t lock; /* guards the queue and `stopping` */
	pthread_cond_t work;  /* a job was queued, or stopping */
	struct sjob *head, *tail;
	int stopping;
	pthread_t thread;
	int started;
	struct sjob *group_tail; /* the last job of the group running (writer thread only) */
	atomic_ullong commits;
};

static const struct db_ops sqlite_db_ops;

/* The connection of the job running on this thread, and the result of its last failed
 * step (for fail()). */
static __thread struct sconn *current;
static __thread int last_rc;
static __thread int on_writer; /* this is the writer thread */

static struct sconn *conn_of(struct sdb *d) { return current ? current : &d->writer; }

static struct db_stmt *s_stmt(struct db *base, const char *sql)
{
	struct sconn *c = conn_of((struct sdb *)base);
	for (size_t i = 0; i < c->cached; i++) {
		if (c->cache[i].sql == sql) {
			sqlite3_reset(c->cache[i].st);
			sqlite3_clear_bindings(c->cache[i].st);
			return &c->cache[i].base;
		}
	}
	if (c->cached == STMT_CACHE) {
		/* Never expected (the SQL is a fixed set). */
		log_event(LOG_ERROR, "store_stmt_cache_full", NULL);
		return NULL;
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(c->db, sql, (int)db_sql_unlocked_len(sql), SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
	    SQLITE_OK) {
		log_event(LOG_ERROR, "store_prepare_failed", "error", sqlite3_errmsg(c->db), NULL);
		return NULL;
	}
	struct sstmt *s = &c->cache[c->cached++];
	s->base.ops = &sqlite_db_ops;
	s->st = st;
	s->sql = sql;
	s->db = c->db;
	return &s->base;
}

static enum err map_rc(sqlite3 *db, int rc)
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
		log_event(LOG_WARN, "store_unavailable", "error", sqlite3_errmsg(db), NULL);
		return ERR_UNAVAILABLE;
	case SQLITE_NOMEM:
		return ERR_NOMEM;
	default:
		log_event(LOG_ERROR, "store_error", "error", sqlite3_errmsg(db), NULL);
		return ERR_INTERNAL;
	}
}

static enum err s_fail(struct db *base)
{
	enum err e = map_rc(conn_of((struct sdb *)base)->db, last_rc);
	return e ? e : ERR_INTERNAL;
}

#define SST(x) ((struct sstmt *)(x))

static void s_bind_text(struct db_stmt *st, int i, const char *text)
{
	if (text)
		sqlite3_bind_text(SST(st)->st, i, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(SST(st)->st, i);
}

static void s_bind_i64(struct db_stmt *st, int i, int64_t v) { sqlite3_bind_int64(SST(st)->st, i, v); }

static void s_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
	sqlite3_bind_blob64(SST(st)->st, i, p, n, SQLITE_TRANSIENT);
}

static int s_step(struct db_stmt *st)
{
	int rc = sqlite3_step(SST(st)->st);
	if (rc == SQLITE_ROW)
		return DB_ROW;
	if (rc == SQLITE_DONE)
		return DB_DONE;
	last_rc = rc;
	return DB_FAIL;
}

static void s_reset(struct db_stmt *st) { sqlite3_reset(SST(st)->st); }
static int64_t s_changes(struct db_stmt *st) { return sqlite3_changes64(SST(st)->db); }

static enum db_type s_col_type(struct db_stmt *st, int i)
{
	switch (sqlite3_column_type(SST(st)->st, i)) {
	case SQLITE_NULL:
		return DB_NULL;
	case SQLITE_INTEGER:
		return DB_INT;
	case SQLITE_TEXT:
		return DB_TEXT;
	default:
		return DB_OTHER;
	}
}

static int64_t s_col_i64(struct db_stmt *st, int i) { return sqlite3_column_int64(SST(st)->st, i); }
static const char *s_col_text(struct db_stmt *st, int i) { return (const char *)sqlite3_column_text(SST(st)->st, i); }
static size_t s_col_bytes(struct db_stmt *st, int i) { return (size_t)sqlite3_column_bytes(SST(st)->st, i); }

static int s_col_blob(struct db_stmt *st, int i, void *out, size_t n)
{
	const void *p = sqlite3_column_blob(SST(st)->st, i);
	if (!p || (size_t)sqlite3_column_bytes(SST(st)->st, i) != n)
		return 0;
	memcpy(out, p, n);
	return 1;
}

static int exec_on(struct sconn *c, const char *sql)
{
	struct sconn *saved = current;
	current = c;
	struct db_stmt *st = s_stmt(NULL, sql);
	int rc = st ? sqlite3_step(SST(st)->st) : SQLITE_ERROR;
	if (st)
		sqlite3_reset(SST(st)->st);
	current = saved;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Reset every cached statement. A SELECT that stepped to a row and was left there keeps
 * its read transaction open; with another process writing (`environd key create`), the
 * next BEGIN IMMEDIATE would then fail at once on the stale snapshot. */
static void reset_all(struct sconn *c)
{
	for (size_t i = 0; i < c->cached; i++)
		sqlite3_reset(c->cache[i].st);
}

/* Run one group: everything queued now, in one transaction, one savepoint per job. A job
 * submitted by a job of the group joins it at its end. */
static void run_group_jobs(struct sdb *d, struct sjob *jobs);

static void run_group(struct sdb *d, struct sjob *jobs)
{
	for (d->group_tail = jobs; d->group_tail->next;)
		d->group_tail = d->group_tail->next;
	run_group_jobs(d, jobs);
	d->group_tail = NULL;
}

static void run_group_jobs(struct sdb *d, struct sjob *jobs)
{
	struct sconn *w = &d->writer;
	reset_all(w);
	int rc = exec_on(w, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK) {
		enum err e = map_rc(w->db, rc);
		for (struct sjob *j = jobs; j; j = j->next)
			j->rc = e ? e : ERR_UNAVAILABLE;
		return;
	}
	for (struct sjob *j = jobs; j; j = j->next) {
		if (exec_on(w, "SAVEPOINT job") != SQLITE_OK) {
			j->rc = ERR_UNAVAILABLE;
			continue;
		}
		j->rc = j->fn(j->arg);
		reset_all(w);
		if (j->rc != ERR_OK)
			exec_on(w, "ROLLBACK TO job");
		exec_on(w, "RELEASE job");
		if (sqlite3_get_autocommit(w->db)) {
			/* SQLite rolled the whole transaction back (I/O error, disk full, out of
			 * memory): nothing of this group is on disk, so nobody may be told otherwise. */
			log_event(LOG_ERROR, "store_group_aborted", "error", sqlite3_errmsg(w->db), NULL);
			for (struct sjob *k = jobs; k; k = k->next)
				k->rc = ERR_UNAVAILABLE;
			return;
		}
	}
	rc = exec_on(w, "COMMIT");
	if (rc != SQLITE_OK) {
		log_event(LOG_ERROR, "store_commit_failed", "error", sqlite3_errmsg(w->db), NULL);
		exec_on(w, "ROLLBACK");
		for (struct sjob *j = jobs; j; j = j->next)
			j->rc = ERR_UNAVAILABLE;
		return;
	}
	atomic_fetch_add(&d->commits, 1);
}

/* Detach the next group (up to BATCH_MAX queued jobs) from the queue. Lock held. */
static struct sjob *take_group(struct sdb *d)
{
	struct sjob *group = d->head, *last = d->head;
	size_t n = 1;
	while (last->next && n < BATCH_MAX) {
		last = last->next;
		n++;
	}
	d->head = last->next;
	if (!d->head)
		d->tail = NULL;
	last->next = NULL;
	return group;
}

/* A write inside a job: its own savepoint, so that its failure undoes only its writes. */
static enum err run_nested(struct sdb *d, db_job_fn fn, void *arg)
{
	struct sconn *w = &d->writer;
	if (exec_on(w, "SAVEPOINT nested") != SQLITE_OK)
		return ERR_UNAVAILABLE;
	enum err rc = fn(arg);
	if (rc != ERR_OK) {
		reset_all(w);
		exec_on(w, "ROLLBACK TO nested");
	}
	exec_on(w, "RELEASE nested");
	return rc;
}

/* After a group: tell each job's submitter (done(), or wake the caller of run()), then
 * free the submitted jobs. Lock not held. */
static void group_done(struct sdb *d, struct sjob *group)
{
	for (struct sjob *j = group; j; j = j->next)
		if (j->on_done)
			j->on_done(j->arg, j->rc);
	pthread_mutex_lock(&d->lock);
	for (struct sjob *j = group; j;) {
		struct sjob *next = j->next;
		if (j->on_done) {
			free(j);
		} else {
			j->done = 1;
			pthread_cond_signal(&j->cond); /* under the lock: its caller cannot have left yet */
		}
		j = next;
	}
	pthread_mutex_unlock(&d->lock);
}

/* The writer thread: take everything queued (up to BATCH_MAX jobs), run it as one group,
 * then answer each job; until stopping with nothing left. */
static void *writer_main(void *arg)
{
	struct sdb *d = arg;
	on_writer = 1;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		while (!d->head && !d->stopping)
			pthread_cond_wait(&d->work, &d->lock);
		if (!d->head)
			break;
		struct sjob *group = take_group(d);
		pthread_mutex_unlock(&d->lock);

		current = &d->writer;
		run_group(d, group);
		current = NULL;
		group_done(d, group);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Queue a job for the writer. Lock not held. ERR_UNAVAILABLE once closing. */
static enum err enqueue(struct sdb *d, struct sjob *job)
{
	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		pthread_mutex_unlock(&d->lock);
		return ERR_UNAVAILABLE;
	}
	if (d->tail)
		d->tail->next = job;
	else
		d->head = job;
	d->tail = job;
	if (d->head == job)
		pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->lock);
	return ERR_OK;
}

static enum err s_run(struct db *base, db_job_fn fn, void *arg)
{
	struct sdb *d = (struct sdb *)base;
	if (current == &d->writer)
		return run_nested(d, fn, arg); /* nested in a write job of this thread */
	struct sjob job = {.fn = fn, .arg = arg, .rc = ERR_OK, .on_done = NULL, .done = 0, .next = NULL};
	pthread_cond_init(&job.cond, NULL);
	if (on_writer) {
		/* From a done() callback: a group of its own, at once (queueing would wait for
		 * this very thread). */
		current = &d->writer;
		run_group(d, &job);
		current = NULL;
		group_done(d, &job);
		pthread_cond_destroy(&job.cond);
		return job.rc;
	}
	enum err rc = enqueue(d, &job);
	if (rc == ERR_OK) {
		pthread_mutex_lock(&d->lock);
		while (!job.done)
			pthread_cond_wait(&job.cond, &d->lock);
		pthread_mutex_unlock(&d->lock);
		rc = job.rc;
	}
	pthread_cond_destroy(&job.cond);
	return rc;
}

static uint64_t s_commits(struct db *base) { return atomic_load(&((struct sdb *)base)->commits); }

static enum err s_submit(struct db *base, db_job_fn fn, void *arg, db_done_fn on_done)
{
	struct sdb *d = (struct sdb *)base;
	struct sjob *job = calloc(1, sizeof(*job));
	if (!job)
		return ERR_NOMEM;
	job->fn = fn;
	job->arg = arg;
	job->on_done = on_done;
	if (current == &d->writer && d->group_tail) {
		/* From a job of the running group: it joins that group, after the others. */
		d->group_tail->next = job;
		d->group_tail = job;
		return ERR_OK;
	}
	enum err rc = enqueue(d, job);
	if (rc)
		free(job);
	return rc;
}

/* This thread's reader connection, opened on first use. */
static struct sconn *reader(struct sdb *d)
{
	struct sconn *c = pthread_getspecific(d->reader_key);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (sqlite3_open_v2(d->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(c->db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK) {
		log_event(LOG_ERROR, "store_reader_open_failed", "error", c->db ? sqlite3_errmsg(c->db) : "?", NULL);
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, 5000);
	pthread_mutex_lock(&d->readers_lock);
	c->next = d->readers;
	d->readers = c;
	pthread_mutex_unlock(&d->readers_lock);
	pthread_setspecific(d->reader_key, c);
	return c;
}

static enum err s_read(struct db *base, db_job_fn fn, void *arg)
{
	struct sdb *d = (struct sdb *)base;
	if (current)
		return fn(arg); /* already inside a job on this thread */
	struct sconn *c = reader(d);
	if (!c)
		return ERR_UNAVAILABLE;
	enum err rc;
	int brc = exec_on(c, "BEGIN");
	current = c;
	if (brc != SQLITE_OK) {
		rc = map_rc(c->db, brc);
		if (!rc)
			rc = ERR_UNAVAILABLE;
	} else {
		rc = fn(arg);
		reset_all(c);
		exec_on(c, "COMMIT");
	}
	current = NULL;
	return rc;
}

static void conn_close(struct sconn *c)
{
	for (size_t i = 0; i < c->cached; i++)
		sqlite3_finalize(c->cache[i].st);
	c->cached = 0;
	sqlite3_close(c->db);
	c->db = NULL;
}

static void s_close(struct db *base)
{
	struct sdb *d = (struct sdb *)base;
	pthread_mutex_lock(&d->lock);
	d->stopping = 1; /* new writes are refused; what is queued still runs */
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->lock);
	if (d->started)
		pthread_join(d->thread, NULL);
	pthread_mutex_lock(&d->readers_lock);
	struct sconn *c = d->readers;
	d->readers = NULL;
	pthread_mutex_unlock(&d->readers_lock);
	while (c) {
		struct sconn *next = c->next;
		conn_close(c);
		free(c);
		c = next;
	}
	conn_close(&d->writer);
	pthread_key_delete(d->reader_key);
	pthread_mutex_destroy(&d->readers_lock);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->work);
	free(d->path);
	free(d);
}

static const struct db_ops sqlite_db_ops = {
	.name = "sqlite",
	.run = s_run,
	.submit = s_submit,
	.commits = s_commits,
	.read = s_read,
	.stmt = s_stmt,
	.fail = s_fail,
	.close = s_close,
	.bind_text = s_bind_text,
	.bind_i64 = s_bind_i64,
	.bind_blob = s_bind_blob,
	.step = s_step,
	.reset = s_reset,
	.changes = s_changes,
	.col_type = s_col_type,
	.col_i64 = s_col_i64,
	.col_text = s_col_text,
	.col_bytes = s_col_bytes,
	.col_blob = s_col_blob,
};

struct db *db_sqlite_open(const char *path, sqlite3 **writer, struct errbuf *eb)
{
	struct sdb *d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		errf(eb, ERR_NOMEM, "store: out of memory");
		return NULL;
	}
	d->base.ops = &sqlite_db_ops;
	pthread_mutex_init(&d->readers_lock, NULL);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->work, NULL);
	if (pthread_key_create(&d->reader_key, NULL)) {
		errf(eb, ERR_NOMEM, "store: out of memory");
		pthread_mutex_destroy(&d->readers_lock);
		pthread_mutex_destroy(&d->lock);
		pthread_cond_destroy(&d->work);
		free(d->path);
		free(d);
		return NULL;
	}
	int opened = sqlite3_open_v2(path, &d->writer.db,
				     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (opened == SQLITE_OK && sqlite3_db_readonly(d->writer.db, "main") == 1) {
		errf(eb, ERR_UNAVAILABLE, "store: %s opens only read-only; the store must be writable", path);
		goto fail;
	}
	if (opened != SQLITE_OK) {
		errf(eb, ERR_UNAVAILABLE, "store: cannot open %s: %s", path,
		     d->writer.db ? sqlite3_errmsg(d->writer.db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(d->writer.db, 5000);
	char *msg = NULL;
	/* WAL + synchronous=FULL: a commit is on disk before anyone is told it happened. */
	if (sqlite3_exec(d->writer.db,
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;"
			 " PRAGMA temp_store = MEMORY;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		errf(eb, ERR_UNAVAILABLE, "store: cannot configure %s: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, writer_main, d)) {
		errf(eb, ERR_UNAVAILABLE, "store: cannot start the writer thread");
		goto fail;
	}
	d->started = 1;
	*writer = d->writer.db;
	return &d->base;
fail:
	s_close(&d->base);
	return NULL;
}
