/* sql_int.h - internals shared by the store's verbs (sql_*.c), written once in the SQL
 * of db.h for every backend; not for other modules.
 *
 * A verb runs its job with sql_run (a write: answered once committed) or sql_read (a
 * read); the job reaches its connection only through sql_stmt(). A backend (SQLite,
 * PostgreSQL) opens its driver, migrates its schema and fills the hooks below. */
#ifndef ENVIROND_STORE_SQL_INT_H
#define ENVIROND_STORE_SQL_INT_H

#include "store/db.h"
#include "store/store.h"

struct sql_store;

typedef enum err (*sql_job_fn)(struct sql_store *s, void *ctx);

struct sql_store {
	struct store base;
	struct db *db;
	unsigned char cursor_key[CURSOR_KEY_LEN];
	/* The queue position of a fresh item enqueued at `now` (inside a write job): larger
	 * than every position handed out before, in any process of the store. */
	enum err (*queue_seq)(struct sql_store *s, int64_t now, int64_t *seq);
	int64_t last_queue_seq; /* SQLite: the writer's own, under the group */
	/* Wake-ups between processes (store.h's subscribe/publish); NULL when the backend
	 * has a single process. */
	enum err (*subscribe)(struct sql_store *s, store_wake_fn fn, void *arg);
	void (*publish)(struct sql_store *s, const char *key, size_t n);
	int (*wake_epoch)(struct sql_store *s, uint64_t *epoch);
	int (*sweeps)(struct sql_store *s); /* NULL: always */
	/* Inside a write job: have the other processes (and this one too, with `everyone`)
	 * hear `key` (n as waiters_wake's) once this job's transaction commits, and never if
	 * it rolls back. NULL for a single process. */
	enum err (*notify)(struct sql_store *s, const char *key, size_t n, int everyone);
	/* The backend's own close (before the driver's). */
	void (*backend_close)(struct sql_store *s);
	void *backend;
};

/* Run fn(s, ctx) as a write; returns its result once committed (ERR_UNAVAILABLE if the
 * commit failed). */
enum err sql_run(struct sql_store *s, sql_job_fn fn, void *ctx);
/* Run fn(s, ctx) as a read (fn must not write). */
enum err sql_read(struct sql_store *s, sql_job_fn fn, void *ctx);

/* The first column of the one row `sql` (static, no parameters) answers, read in a read job
 * of its own; 0 on failure. */
enum err sql_read_i64(struct sql_store *s, const char *sql, int64_t *out);

/* A cached prepared statement for a static SQL string, reset and with bindings cleared.
 * Only inside a job. NULL on failure. */
static inline struct db_stmt *sql_stmt(struct sql_store *s, const char *sql) { return s->db->ops->stmt(s->db, sql); }

/* The error of a step's result: ERR_OK for DB_ROW and DB_DONE, else the driver's
 * mapping (constraint → conflict, busy or lost connection → unavailable, ...). */
enum err sql_err(struct sql_store *s, int rc);

/* Bind the keyset condition "(? OR created_at < ? OR (created_at = ? AND id < ?))" at
 * `first`..first+3: everything when after is NULL, else the rows after the cursor. */
void sql_bind_after(struct db_stmt *st, int first, const struct cursor *after);
/* Room for more items in a page's array: *cap doubles (from 16) and *items moves with it.
 * ERR_NOMEM leaves both as they were (the caller still owns and frees *items). */
enum err sql_grow(void **items, size_t *cap, size_t size);

/* Inside a write job: every process drops its cached credentials once the job commits
 * (a revocation). A single process's server clears its own. */
enum err sql_notify_credentials(struct sql_store *s);

/* What a verb needs of the environment it acts in (sql_env_require); the wording of a
 * refusal follows the routes that reach the verb. */
enum env_need {
	ENV_FOR_WORK,    /* visible and self_hosted: the work routes */
	ENV_FOR_ENQUEUE, /* visible, self_hosted and not archived: new work */
	ENV_FOR_KEYS,    /* visible and self_hosted: the key routes */
	ENV_FOR_SESSION, /* visible, self_hosted and not archived: a new session's environment_id */
};
/* How the environment row is read: unlocked (read jobs), " FOR SHARE" (a write in the
 * environment, which an archive or a delete must not pass), " FOR UPDATE" (archive,
 * delete, update of the environment itself). */
enum env_lock { ENV_LOCK_NONE, ENV_LOCK_SHARE, ENV_LOCK_UPDATE };

/* Inside a job: environment env_id is visible to t and what `need` says, or the refusal
 * (ERR_NOT_FOUND, ERR_INVALID, ERR_ENV_ARCHIVED) with its client message in eb. Store
 * failures are returned unworded. */
enum err sql_env_require(struct sql_store *s, const struct tenant *t, const char *env_id, enum env_need need,
			    enum env_lock lock, struct errbuf *eb);

/* Inside a write job, for work that follows a session (no tenant, no wording): does
 * environment env_id still exist (*exists)? Its row is read " FOR SHARE", so a delete of
 * it waits for the job, or the job sees it gone. */
enum err sql_env_lock_existing(struct sql_store *s, const char *env_id, int *exists);

/* Fill the verbs of the store into s (sql_store.c), load or create the cursor key. */
enum err sql_store_init(struct sql_store *s, struct errbuf *eb);

/* Ops of the per-concern files, gathered into one table by store_sqlite.c. */
enum err sql_env_create(struct store *s, const struct tenant *t, const struct env_fields *f, int64_t now,
			   struct environment *out);
enum err sql_env_get(struct store *s, const struct tenant *t, const char *id, struct environment *out);
enum err sql_env_update(struct store *s, const struct tenant *t, const char *id, const json_t *body,
			   int64_t now, struct environment *out, struct errbuf *eb);
enum err sql_env_archive(struct store *s, const struct tenant *t, const char *id, int64_t now,
			    struct environment *out);
enum err sql_env_delete(struct store *s, const struct tenant *t, const char *id, struct work_wake *wake);
enum err sql_env_list(struct store *s, const struct tenant *t, int include_archived,
			 const struct cursor *after, size_t limit, struct env_page *out);
enum err sql_env_key_create(struct store *s, const struct tenant *t, const char *env_id, const char *name,
			       const char *hash, int64_t now, struct env_key *out, struct errbuf *eb);
enum err sql_env_key_list(struct store *s, const struct tenant *t, const char *env_id,
			     const struct cursor *after, size_t limit, struct env_key_page *out, struct errbuf *eb);
enum err sql_env_key_revoke(struct store *s, const struct tenant *t, const char *env_id, const char *key_id,
			       struct work_wake *wake, struct errbuf *eb);

enum err sql_work_enqueue(struct store *s, const struct tenant *t, const char *env_id, const char *data_type,
			     const char *data_id, const json_t *metadata, int64_t now, struct work_item *out,
			     int *created, struct work_wake *wake, struct errbuf *eb);
enum err sql_work_claim(struct store *s, const struct tenant *t, const char *env_id, const struct work_claim *c,
			   int64_t now, struct work_item *out, struct errbuf *eb);
enum err sql_work_undeliver(struct store *s, const char *work_id, const char *token_hash, int64_t now,
			       struct work_wake *wake);
enum err sql_work_get(struct store *s, const struct tenant *t, const char *env_id, const char *work_id,
			 struct work_item *out, struct errbuf *eb);
enum err sql_work_event(struct store *s, const struct tenant *t, const char *env_id, const char *work_id,
			   enum work_event ev, const struct work_input *in, const char *session_hash, int64_t now,
			   struct work_item *out, struct work_event_out *res, struct errbuf *eb);
enum err sql_work_update_metadata(struct store *s, const struct tenant *t, const char *env_id,
				     const char *work_id, const json_t *patch, struct work_item *out,
				     struct errbuf *eb);
enum err sql_work_list(struct store *s, const struct tenant *t, const char *env_id, const struct cursor *after,
			  size_t limit, struct work_page *out, struct errbuf *eb);
enum err sql_work_stats(struct store *s, const struct tenant *t, const char *env_id, struct work_stats *out,
			   struct errbuf *eb);
enum err sql_work_next_reclaim(struct store *s, const struct tenant *t, const char *env_id, int64_t reclaim_us,
				  int64_t *at, struct errbuf *eb);
/* sql_lease.c */
enum err sql_leases_expire(struct store *s, int64_t now, size_t max, struct work_wake *wakes, size_t *n_wakes,
			      size_t *n_expired);
enum err sql_next_lease_expiry(struct store *s, int64_t *at);

/* Work rows, shared by sql_work.c and sql_lease.c: the columns sql_work_row() reads, in
 * its order; and sql_work_apply(), which runs an event through model/work.c and persists
 * the outcome (a store error, or the model's refusal in *refusal, what was persisted
 * before staying; a new delivery stores token_hash, an undone one none). */
#define WORK_COLUMNS                                                                                  \
	"id, environment_id, data_type, data_id, state, metadata, created_at, acknowledged_at, started_at," \
	" latest_heartbeat_at, stop_requested_at, stopped_at, delivered_at, delivery_count,"               \
	" lease_expires_at, ttl_seconds, cycle_deliveries, ack_proven"
enum err sql_work_row(struct db_stmt *st, struct work_item *w);
enum err sql_work_apply(struct sql_store *s, struct work_item *w, enum work_event ev, const struct work_input *in,
			int64_t now, struct work_outcome *o, enum err *refusal, const char *token_hash);

/* Inside a write job: make sure the session has a live work item (enqueue one when it has
 * none, unless its environment was deleted; *created tells), or move its live item
 * towards stopped (queued → stopped, starting/active → stopping) through model/work.c. */
enum err sql_work_session_ensure(struct sql_store *s, const char *env_id, const char *session_id,
				    int64_t now, int *created);
enum err sql_work_session_stop(struct sql_store *s, const char *env_id, const char *session_id,
				  int64_t now);
/* Inside a write job, after a session's work item stopped: if the session still needs a
 * worker, enqueue a fresh item (same transaction). *requeued tells. */
enum err sql_session_item_stopped(struct sql_store *s, const char *env_id, const char *session_id,
				     int64_t now, int *requeued);

enum err sql_agent_key_create(struct store *s, const struct agent_key *k, const char *hash);
enum err sql_agent_create(struct store *s, const struct tenant *t, const json_t *config, int64_t now,
			     struct agent_rec *out);
enum err sql_agent_get(struct store *s, const struct tenant *t, const char *id, int64_t version,
			  struct agent_rec *out);
enum err sql_agent_update(struct store *s, const struct tenant *t, const char *id, const json_t *body,
			     int64_t now, struct agent_rec *out, struct errbuf *eb);
enum err sql_agent_archive(struct store *s, const struct tenant *t, const char *id, int64_t now,
			      struct agent_rec *out);
enum err sql_agent_list(struct store *s, const struct tenant *t, int include_archived,
			   const struct cursor *after, size_t limit, struct agent_page *out);
enum err sql_agent_versions(struct store *s, const struct tenant *t, const char *id, const struct cursor *after,
			       size_t limit, struct agent_page *out);
/* Inside a job: load an agent version (0 = latest) of org/workspace. */
enum err sql_agent_load(struct sql_store *s, const char *org, const char *workspace, const char *id,
			   int64_t version, struct agent_rec *out);

enum err sql_session_create(struct store *s, const struct tenant *t, const struct session_new *n, int64_t now,
			       struct session_rec *out, struct session_wake *wake, struct errbuf *eb);
enum err sql_session_get(struct store *s, const struct session_scope *sc, const char *id,
			    struct session_rec *out);
enum err sql_session_list(struct store *s, const struct session_scope *sc, int include_archived,
			     const char *agent_id, const struct cursor *after, size_t limit, struct session_page *out);
enum err sql_session_update(struct store *s, const struct session_scope *sc, const char *id, const json_t *body,
			       int64_t now, struct session_rec *out, struct errbuf *eb);
enum err sql_session_close(struct store *s, const struct session_scope *sc, const char *id, int deleting,
			      int64_t now, struct session_rec *out, struct session_wake *wake);
enum err sql_session_post(struct store *s, const struct session_scope *sc, const char *id, const json_t *events,
			     int64_t now, json_t **stored, struct session_wake *wake, struct errbuf *eb);
enum err sql_session_events(struct store *s, const struct session_scope *sc, const char *id,
			       const struct event_query *q, struct event_page *out);
enum err sql_session_last_seq(struct store *s, const struct session_scope *sc, const char *id,
				 const char *after_event_id, int64_t *seq);
enum err sql_session_events_since(struct store *s, const char *id, int64_t after_seq, size_t max,
				     struct event_page *out, int *deleted);
enum err sql_turn_claim(struct store *s, const struct session_scope *sc, const char *const *models, int64_t now,
			   int64_t lease_us, struct agent_turn *out);
enum err sql_turn_heartbeat(struct store *s, const struct session_scope *sc, const char *turn_id, int64_t now,
			       int64_t lease_us, int64_t *expires_at);
enum err sql_turn_post(struct store *s, const struct session_scope *sc, const char *turn_id, const json_t *events,
			  int64_t now, json_t **stored, struct session_wake *wake, struct errbuf *eb);
enum err sql_next_turn_expiry(struct store *s, int64_t *at);
enum err sql_turns_expire(struct store *s, int64_t now, size_t max, char (*orgs)[TENANT_NAME_MAX + 1],
			     size_t *n_orgs, size_t *n_expired);
/* sql_workers.c */
enum err sql_workers_seen(struct store *s, const struct worker_seen *rows, size_t n, int64_t prune_before);
enum err sql_workers_polling(struct store *s, const char *env_id, int64_t since, int64_t *count);
/* sql_reset.c */
enum err sql_reset_all(struct store *s, struct store_reset *out);

#endif
