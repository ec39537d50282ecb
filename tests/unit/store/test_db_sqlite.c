/* test_db_sqlite.c - unit tests of the SQLite driver's writer (src/store/db_sqlite.c):
 * a submitted job runs inside a commit group without its submitter waiting, and its done()
 * runs only once what it wrote is committed (another connection reads it there); a write
 * nested in a job that fails undoes its own writes and nothing else; a job that fails is
 * rolled back alone and told so; run() and submit() share the groups; close runs what is
 * queued. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "store/db_sqlite.h"

struct fx {
	char path[64];
	struct db *db;
	sqlite3 *peek; /* a connection of its own: sees only what was committed */
};

static void fx_open(struct fx *f)
{
	snprintf(f->path, sizeof(f->path), "/tmp/environd-dbtest-XXXXXX");
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	unlink(f->path);
	sqlite3 *writer = NULL;
	struct errbuf eb;
	f->db = db_sqlite_open(f->path, &writer, &eb);
	assert_non_null(f->db);
	assert_int_equal(SQLITE_OK, sqlite3_exec(writer, "CREATE TABLE t (v INTEGER)", NULL, NULL, NULL));
	assert_int_equal(SQLITE_OK, sqlite3_open(f->path, &f->peek));
}

/* The store file and its WAL and shared-memory files. */
static void remove_files(const char *path)
{
	char side[80];
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

static void fx_close(struct fx *f)
{
	sqlite3_close(f->peek);
	f->db->ops->close(f->db);
	remove_files(f->path);
}

/* Rows with value v, as a reader that sees only commits counts them. */
static int committed(struct fx *f, int v)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(f->peek, "SELECT COUNT(*) FROM t WHERE v = ?", -1, &st, NULL));
	sqlite3_bind_int(st, 1, v);
	assert_int_equal(SQLITE_ROW, sqlite3_step(st));
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

struct job {
	struct fx *f;
	int value;
	enum err fail_with;  /* the job's own result */
	int nested_fails;    /* a nested write that fails (value + 1000, to be undone) */
	enum err done_rc;
	int seen_at_done;    /* rows of `value` committed when done ran */
	int nested_seen;     /* rows of value + 1000 committed when done ran */
	atomic_int done;
};

static enum err insert(struct db *d, int v)
{
	struct db_stmt *st = d->ops->stmt(d, "INSERT INTO t (v) VALUES (?)");
	if (!st)
		return ERR_INTERNAL;
	db_bind_i64(st, 1, v);
	return db_step(st) == DB_DONE ? ERR_OK : ERR_INTERNAL;
}

static enum err nested_job(void *arg)
{
	struct job *j = arg;
	enum err rc = insert(j->f->db, j->value + 1000);
	return rc ? rc : ERR_CONFLICT; /* wrote, then failed */
}

static enum err job_fn(void *arg)
{
	struct job *j = arg;
	enum err rc = insert(j->f->db, j->value);
	if (rc)
		return rc;
	if (j->nested_fails)
		assert_int_equal(ERR_CONFLICT, j->f->db->ops->run(j->f->db, nested_job, j));
	return j->fail_with;
}

static void job_done(void *arg, enum err rc)
{
	struct job *j = arg;
	j->done_rc = rc;
	j->seen_at_done = committed(j->f, j->value);
	j->nested_seen = committed(j->f, j->value + 1000);
	atomic_store(&j->done, 1);
}

static void wait_done(struct job *j)
{
	for (int i = 0; i < 5000 && !atomic_load(&j->done); i++)
		usleep(1000);
	assert_true(atomic_load(&j->done));
}

static void test_done_after_commit(void **state)
{
	struct fx f;
	fx_open(&f);
	struct job jobs[40];
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 40; i++) {
		jobs[i].f = &f;
		jobs[i].value = i + 1;
		assert_int_equal(ERR_OK, f.db->ops->submit(f.db, job_fn, &jobs[i], job_done));
	}
	for (int i = 0; i < 40; i++) {
		wait_done(&jobs[i]);
		assert_int_equal(ERR_OK, jobs[i].done_rc);
		assert_int_equal(1, jobs[i].seen_at_done); /* on disk before its submitter hears */
	}
	fx_close(&f);
}

static void test_failures_stay_alone(void **state)
{
	struct fx f;
	fx_open(&f);
	struct job ok = {.f = &f, .value = 1}, bad = {.f = &f, .value = 2, .fail_with = ERR_CONFLICT},
		   partly = {.f = &f, .value = 3, .nested_fails = 1};
	assert_int_equal(ERR_OK, f.db->ops->submit(f.db, job_fn, &ok, job_done));
	assert_int_equal(ERR_OK, f.db->ops->submit(f.db, job_fn, &bad, job_done));
	assert_int_equal(ERR_OK, f.db->ops->submit(f.db, job_fn, &partly, job_done));
	wait_done(&ok);
	wait_done(&bad);
	wait_done(&partly);
	assert_int_equal(ERR_OK, ok.done_rc);
	assert_int_equal(1, ok.seen_at_done);
	assert_int_equal(ERR_CONFLICT, bad.done_rc); /* told, and nothing of it kept */
	assert_int_equal(0, bad.seen_at_done);
	assert_int_equal(ERR_OK, partly.done_rc); /* its own write kept, the nested one undone */
	assert_int_equal(1, partly.seen_at_done);
	assert_int_equal(0, partly.nested_seen);
	fx_close(&f);
}

/* run() from another thread waits for its group and shares the writer with submit(). */
static void test_run_waits(void **state)
{
	struct fx f;
	fx_open(&f);
	struct job j = {.f = &f, .value = 7};
	assert_int_equal(ERR_OK, f.db->ops->run(f.db, job_fn, &j));
	assert_int_equal(1, committed(&f, 7));
	fx_close(&f);
}

/* Closing runs every job queued before it, then refuses new ones. */
static void test_close_runs_queued(void **state)
{
	struct fx f;
	fx_open(&f);
	struct job jobs[20];
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < 20; i++) {
		jobs[i].f = &f;
		jobs[i].value = 100 + i;
		assert_int_equal(ERR_OK, f.db->ops->submit(f.db, job_fn, &jobs[i], job_done));
	}
	f.db->ops->close(f.db);
	for (int i = 0; i < 20; i++) {
		assert_true(atomic_load(&jobs[i].done));
		assert_int_equal(ERR_OK, jobs[i].done_rc);
	}
	sqlite3 *check = NULL;
	assert_int_equal(SQLITE_OK, sqlite3_open(f.path, &check));
	sqlite3_stmt *st = NULL;
	assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(check, "SELECT COUNT(*) FROM t", -1, &st, NULL));
	assert_int_equal(SQLITE_ROW, sqlite3_step(st));
	assert_int_equal(20, sqlite3_column_int(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(check);
	sqlite3_close(f.peek);
	remove_files(f.path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_done_after_commit),
		cmocka_unit_test(test_failures_stay_alone),
		cmocka_unit_test(test_run_waits),
		cmocka_unit_test(test_close_runs_queued),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
