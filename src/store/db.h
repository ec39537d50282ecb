/* db.h - the SQL that every backend speaks: a driver runs jobs (write or read) on a
 * connection of its own choosing, and job code reaches that connection only through the
 * statements it asks for.
 *
 * The verbs of the store (sql_*.c) are written once against this interface. A driver
 * (db_sqlite.c, db_pg.c) decides how writes are made durable and isolated:
 *  - SQLite: one writer connection; jobs queued together run in one transaction, each in
 *    its own SAVEPOINT, with one fsync for the group. Reads run on a read-only
 *    connection per thread.
 *  - PostgreSQL: a pool of connections; each job is one READ COMMITTED transaction,
 *    retried whole on a serialization failure, a deadlock or a unique violation (so a
 *    job that reads, then inserts, sees the row a concurrent job committed first).
 *
 * SQL text is written once, in the dialect both accept, with `?` placeholders (the
 * PostgreSQL driver numbers them). Row locks are written the PostgreSQL way, as a final
 * " FOR UPDATE", " FOR UPDATE SKIP LOCKED" or " FOR SHARE": the SQLite driver drops the
 * clause (its writer is serial), and so does the PostgreSQL driver inside a read job.
 *
 * step() answers DB_ROW, DB_DONE or DB_FAIL; after DB_FAIL, db_fail() maps the
 * failure to an error (a constraint → ERR_CONFLICT, a lost connection or a full disk →
 * ERR_UNAVAILABLE, ...). A job returns ERR_OK to commit; anything else rolls its own
 * work back. A caller is answered only after the commit, so what it was told is durable. */
#ifndef ENVIROND_STORE_DB_H
#define ENVIROND_STORE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define DB_ROW 100
#define DB_DONE 101
#define DB_FAIL 1

enum db_type { DB_NULL, DB_INT, DB_TEXT, DB_OTHER };

struct db;
struct db_stmt;

typedef enum err (*db_job_fn)(void *arg);
typedef void (*db_done_fn)(void *arg, enum err rc);

struct db_ops {
	const char *name; /* "sqlite" | "postgres" */
	/* Run job(arg) as a write / as a read (which must not write). Inside a job of the
	 * same thread, both run the nested job in the enclosing one. */
	enum err (*run)(struct db *d, db_job_fn job, void *arg);
	/* Queue job(arg) as a write and return at once; done(arg, rc) runs after its group's
	 * commit, on the driver's writer thread, with the job's result or the group's failure.
	 * Submitted from a job of the group running, it joins that group, after its jobs.
	 * ERR_OK when queued (done will run), or an error (it will not). NULL for a driver
	 * without a writer of its own. */
	enum err (*submit)(struct db *d, db_job_fn job, void *arg, db_done_fn done);
	enum err (*read)(struct db *d, db_job_fn job, void *arg);
	/* A prepared statement for a static SQL string (compared by address), on the
	 * current job's connection; NULL on failure. */
	struct db_stmt *(*stmt)(struct db *d, const char *sql);
	/* Write transactions committed so far (SQLite: groups, each one fsync). */
	uint64_t (*commits)(struct db *d);
	/* The error of the last DB_FAIL on this thread. */
	enum err (*fail)(struct db *d);
	void (*close)(struct db *d);

	void (*bind_text)(struct db_stmt *st, int i, const char *text); /* NULL binds NULL */
	void (*bind_i64)(struct db_stmt *st, int i, int64_t v);
	void (*bind_blob)(struct db_stmt *st, int i, const void *p, size_t n);
	int (*step)(struct db_stmt *st);
	void (*reset)(struct db_stmt *st); /* done with its rows before the job ends */
	int64_t (*changes)(struct db_stmt *st); /* rows the last step's statement changed */
	enum db_type (*col_type)(struct db_stmt *st, int i);
	int64_t (*col_i64)(struct db_stmt *st, int i);
	const char *(*col_text)(struct db_stmt *st, int i); /* NULL for NULL */
	size_t (*col_bytes)(struct db_stmt *st, int i);
	/* A blob column into out (exactly n bytes); 0 when it has another length. */
	int (*col_blob)(struct db_stmt *st, int i, void *out, size_t n);
};

struct db {
	const struct db_ops *ops;
};

struct db_stmt {
	const struct db_ops *ops;
};

static inline void db_bind_text(struct db_stmt *st, int i, const char *t) { st->ops->bind_text(st, i, t); }
static inline void db_bind_i64(struct db_stmt *st, int i, int64_t v) { st->ops->bind_i64(st, i, v); }
static inline void db_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
	st->ops->bind_blob(st, i, p, n);
}
static inline int db_step(struct db_stmt *st) { return st->ops->step(st); }
static inline void db_reset(struct db_stmt *st) { st->ops->reset(st); }
static inline int64_t db_changes(struct db_stmt *st) { return st->ops->changes(st); }
static inline enum db_type db_col_type(struct db_stmt *st, int i) { return st->ops->col_type(st, i); }
static inline int64_t db_col_i64(struct db_stmt *st, int i) { return st->ops->col_i64(st, i); }
static inline int db_col_int(struct db_stmt *st, int i) { return (int)st->ops->col_i64(st, i); }
static inline const char *db_col_text(struct db_stmt *st, int i) { return st->ops->col_text(st, i); }
static inline size_t db_col_bytes(struct db_stmt *st, int i) { return st->ops->col_bytes(st, i); }
static inline int db_col_blob(struct db_stmt *st, int i, void *out, size_t n)
{
	return st->ops->col_blob(st, i, out, n);
}

/* Column text copied into out (cap bytes, truncated, NUL-terminated). */
void db_col_copy(struct db_stmt *st, int i, char *out, size_t cap);

/* The length of `sql` without a final row-lock clause (" FOR UPDATE [SKIP LOCKED]",
 * " FOR SHARE [SKIP LOCKED]"), for drivers that must not send it. */
size_t db_sql_unlocked_len(const char *sql);

#endif
