/* sqlite_int.h - internals shared by the SQLite backend's files (not for other modules).
 *
 * Writes run on one writer connection. A caller queues a job (a function and its context);
 * the first caller that finds no group running leads: it runs every job that is waiting in
 * one transaction, each inside its own SAVEPOINT, and commits once (one fsync for the whole
 * group), then wakes the callers it served. A job that fails is rolled back alone. A caller
 * is answered only after the commit, so whatever it was told is durable.
 *
 * Reads run on the calling thread, on a read-only connection of that thread's own (WAL
 * lets them proceed while a group writes), inside one read transaction, so they never
 * wait behind a group's fsync. Job code does not know which kind it runs on: it reaches
 * its connection through sqlite_stmt() and sqlite_db(). */
#ifndef ENVIROND_STORE_SQLITE_INT_H
#define ENVIROND_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <sys/types.h>

#include "store/store.h"

#define SQLITE_STMT_CACHE 192
#define SQLITE_BATCH_MAX 256

struct sqlite_job;

/* One connection and its prepared statements. Used by one thread at a time. */
struct sqlite_conn {
	sqlite3 *db;
	struct {
		const char *sql; /* static string: compared by address */
		sqlite3_stmt *stmt;
	} cache[SQLITE_STMT_CACHE];
	size_t cached;
	struct sqlite_conn *next; /* the store's list of reader connections */
};

struct sqlite_store {
	struct store base;
	struct sqlite_conn writer; /* the group leader's; also used while opening */
	char *path;
	unsigned char cursor_key[CURSOR_KEY_LEN];
	pthread_key_t reader_key;  /* this thread's reader connection */
	pthread_mutex_t readers_lock;
	struct sqlite_conn *readers;

	pthread_mutex_t lock;     /* guards the queue and `leading` */
	pthread_cond_t idle;      /* signalled when a group ends (for stop) */
	int leading;              /* a caller is running a group now */
	struct sqlite_job *head, *tail;
	int stopping;
	int started;
	int64_t last_queue_seq; /* the leader's only: FIFO order of fresh items */
};

typedef enum err (*sqlite_job_fn)(struct sqlite_store *s, void *ctx);

/* Run fn(s, ctx) as a write inside the next group transaction; returns its result
 * once the group has committed (or ERR_UNAVAILABLE if the commit failed). */
enum err sqlite_run(struct sqlite_store *s, sqlite_job_fn fn, void *ctx);

/* Run fn(s, ctx) as a read on this thread's read-only connection, in one read
 * transaction. fn must not write. */
enum err sqlite_read(struct sqlite_store *s, sqlite_job_fn fn, void *ctx);

/* The connection the current job runs on. */
sqlite3 *sqlite_db(struct sqlite_store *s);

/* Close every reader connection (store close, after all callers are gone). */
void sqlite_readers_close(struct sqlite_store *s);

/* A cached prepared statement for a static SQL string, reset and with bindings cleared.
 * Only inside a job (write or read). NULL on failure. */
sqlite3_stmt *sqlite_stmt(struct sqlite_store *s, const char *sql);

/* Map a SQLite result code to our error (constraint → conflict, busy → unavailable, ...). */
enum err sqlite_err(struct sqlite_store *s, int rc);

/* Bind helpers: text (NULL binds SQL NULL), 64-bit integer. */
void sqlite_bind_text(sqlite3_stmt *st, int i, const char *text);
void sqlite_bind_i64(sqlite3_stmt *st, int i, int64_t v);
/* Bind the keyset condition "(? OR created_at < ? OR (created_at = ? AND id < ?))" at
 * `first`..first+3: everything when after is NULL, else the rows after the cursor. */
void sqlite_bind_after(sqlite3_stmt *st, int first, const struct cursor *after);
/* Room for more items in a page's array: *cap doubles (from 16) and *items moves with it.
 * ERR_NOMEM leaves both as they were (the caller still owns and frees *items). */
enum err sqlite_grow(void **items, size_t *cap, size_t size);
/* Column text copied into out (cap bytes, truncated, NUL-terminated). */
void sqlite_col_text(sqlite3_stmt *st, int i, char *out, size_t cap);

/* The store's files (sqlite_file.c). sqlite_files_check: every existing file of the store
 * at `path` (database, -wal, -shm) opens for writing and is made 0600, else an error
 * naming it. sqlite_files_private sets a umask under which SQLite creates them 0600 and
 * returns the old one for sqlite_files_restore; check runs before SQLite opens the store.
 * sqlite_files_probe commits one write on the writer connection (refusing a store that
 * cannot be written) and makes the files it created 0600. */
enum err sqlite_files_check(const char *path, struct errbuf *eb);
mode_t sqlite_files_private(void);
void sqlite_files_restore(mode_t old);
enum err sqlite_files_probe(struct sqlite_store *s, struct errbuf *eb);

/* Set up / tear down the write queue (stop waits for a running group to end). */
int sqlite_exec_start(struct sqlite_store *s);
void sqlite_exec_stop(struct sqlite_store *s);

/* Ops of the per-concern files, gathered into one table by store_sqlite.c. */
enum err sqlite_env_create(struct store *s, const struct tenant *t, const struct env_fields *f, int64_t now,
			   struct environment *out);
enum err sqlite_env_get(struct store *s, const struct tenant *t, const char *id, struct environment *out);
enum err sqlite_env_update(struct store *s, const struct tenant *t, const char *id, const json_t *body,
			   int64_t now, struct environment *out, struct errbuf *eb);
enum err sqlite_env_archive(struct store *s, const struct tenant *t, const char *id, int64_t now,
			    struct environment *out);
enum err sqlite_env_delete(struct store *s, const struct tenant *t, const char *id);
enum err sqlite_env_list(struct store *s, const struct tenant *t, int include_archived,
			 const struct cursor *after, size_t limit, struct env_page *out);
enum err sqlite_env_key_create(struct store *s, const char *env_id, const char *name, const char *hash,
			       int64_t now, struct env_key *out);
enum err sqlite_env_key_list(struct store *s, const char *env_id, const struct cursor *after, size_t limit,
			     struct env_key_page *out);
enum err sqlite_env_key_revoke(struct store *s, const char *env_id, const char *key_id);

enum err sqlite_work_enqueue(struct store *s, const char *env_id, const char *data_type, const char *data_id,
			     const json_t *metadata, int64_t now, struct work_item *out, int *created);
enum err sqlite_work_claim(struct store *s, const char *env_id, const struct work_claim *c, int64_t now,
			   struct work_item *out);
enum err sqlite_work_undeliver(struct store *s, const char *work_id, const char *token_hash);
enum err sqlite_work_get(struct store *s, const char *env_id, const char *work_id, struct work_item *out);
enum err sqlite_work_event(struct store *s, const char *env_id, const char *work_id, enum work_event ev,
			   const struct work_input *in, const char *session_hash, int64_t now, struct work_item *out,
			   struct work_event_out *res);
enum err sqlite_work_update_metadata(struct store *s, const char *env_id, const char *work_id,
				     const json_t *patch, struct work_item *out, struct errbuf *eb);
enum err sqlite_work_list(struct store *s, const char *env_id, const struct cursor *after, size_t limit,
			  struct work_page *out);
enum err sqlite_work_stats(struct store *s, const char *env_id, struct work_stats *out);
enum err sqlite_work_next_reclaim(struct store *s, const char *env_id, int64_t reclaim_us, int64_t *at);
enum err sqlite_leases_expire(struct store *s, int64_t now, size_t max, char (*env_ids)[ID_MAX],
			      size_t *n_envs, size_t *n_expired);
enum err sqlite_next_lease_expiry(struct store *s, int64_t *at);

/* Inside a write job: make sure the session has a live work item (enqueue one when it has
 * none; *created tells), or move its live item towards stopped (queued → stopped,
 * starting/active → stopping) through model/work.c. */
enum err sqlite_work_session_ensure(struct sqlite_store *s, const char *env_id, const char *session_id,
				    int64_t now, int *created);
enum err sqlite_work_session_stop(struct sqlite_store *s, const char *env_id, const char *session_id,
				  int64_t now);
/* Inside a write job, after a session's work item stopped: if the session still needs a
 * worker, enqueue a fresh item (same transaction). *requeued tells. */
enum err sqlite_session_item_stopped(struct sqlite_store *s, const char *env_id, const char *session_id,
				     int64_t now, int *requeued);

enum err sqlite_agent_key_create(struct store *s, const struct agent_key *k, const char *hash);
enum err sqlite_agent_create(struct store *s, const struct tenant *t, const json_t *config, int64_t now,
			     struct agent_rec *out);
enum err sqlite_agent_get(struct store *s, const struct tenant *t, const char *id, int64_t version,
			  struct agent_rec *out);
enum err sqlite_agent_update(struct store *s, const struct tenant *t, const char *id, const json_t *body,
			     int64_t now, struct agent_rec *out, struct errbuf *eb);
enum err sqlite_agent_archive(struct store *s, const struct tenant *t, const char *id, int64_t now,
			      struct agent_rec *out);
enum err sqlite_agent_list(struct store *s, const struct tenant *t, int include_archived,
			   const struct cursor *after, size_t limit, struct agent_page *out);
enum err sqlite_agent_versions(struct store *s, const struct tenant *t, const char *id, const struct cursor *after,
			       size_t limit, struct agent_page *out);
/* Inside a job: load an agent version (0 = latest) of org/workspace. */
enum err sqlite_agent_load(struct sqlite_store *s, const char *org, const char *workspace, const char *id,
			   int64_t version, struct agent_rec *out);

enum err sqlite_session_create(struct store *s, const struct tenant *t, const struct session_new *n, int64_t now,
			       struct session_rec *out, struct session_wake *wake, struct errbuf *eb);
enum err sqlite_session_get(struct store *s, const struct session_scope *sc, const char *id,
			    struct session_rec *out);
enum err sqlite_session_list(struct store *s, const struct session_scope *sc, int include_archived,
			     const char *agent_id, const struct cursor *after, size_t limit, struct session_page *out);
enum err sqlite_session_update(struct store *s, const struct session_scope *sc, const char *id, const json_t *body,
			       int64_t now, struct session_rec *out, struct errbuf *eb);
enum err sqlite_session_close(struct store *s, const struct session_scope *sc, const char *id, int deleting,
			      int64_t now, struct session_rec *out, struct session_wake *wake);
enum err sqlite_session_post(struct store *s, const struct session_scope *sc, const char *id, const json_t *events,
			     int64_t now, json_t **stored, struct session_wake *wake, struct errbuf *eb);
enum err sqlite_session_events(struct store *s, const struct session_scope *sc, const char *id,
			       const struct event_query *q, struct event_page *out);
enum err sqlite_session_last_seq(struct store *s, const struct session_scope *sc, const char *id,
				 const char *after_event_id, int64_t *seq);
enum err sqlite_session_events_since(struct store *s, const char *id, int64_t after_seq, size_t max,
				     struct event_page *out, int *deleted);
enum err sqlite_turn_claim(struct store *s, const struct session_scope *sc, const char *const *models, int64_t now,
			   int64_t lease_us, struct agent_turn *out);
enum err sqlite_turn_heartbeat(struct store *s, const struct session_scope *sc, const char *turn_id, int64_t now,
			       int64_t lease_us, int64_t *expires_at);
enum err sqlite_turn_post(struct store *s, const struct session_scope *sc, const char *turn_id, const json_t *events,
			  int64_t now, json_t **stored, struct session_wake *wake, struct errbuf *eb);
enum err sqlite_turns_expire(struct store *s, int64_t now, size_t max, char (*orgs)[TENANT_NAME_MAX + 1],
			     size_t *n_orgs, size_t *n_expired);
/* sqlite_reset.c */
enum err sqlite_reset_all(struct store *s, struct store_reset *out);

#endif
