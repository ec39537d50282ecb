/* store.h - the persistence interface: one versioned table of domain verbs.
 *
 * Every verb is one atomic transaction. Verbs that change an item decide nothing
 * themselves: environment merges come from model/environment.c and work transitions from
 * model/work.c (every change of a work item's state, undoing a delivery included); the
 * store loads, calls the model, and persists what it decided.
 *
 * A verb that acts on an environment's work or keys takes the caller's tenant and checks,
 * in its own transaction, what the API would otherwise check in an earlier one: the
 * environment is visible to the tenant (else ERR_NOT_FOUND), self_hosted (else
 * ERR_INVALID) and, for verbs that add work or a session, not archived (ERR_ENV_ARCHIVED;
 * ERR_INVALID for a session). The verbs that write in an environment (work_enqueue,
 * work_claim, work_event, work_update_metadata, env_key_create, env_key_revoke,
 * session_create) load its row with " FOR SHARE" and env_update/env_archive/env_delete
 * with " FOR UPDATE", so that on a backend that runs them concurrently an archive or a
 * delete and a write in the environment are serialized: the write commits first (and a
 * delete takes what it wrote along) or it sees the archive or the delete. Such a refusal
 * comes with its client message in `eb` (the route's wording, naming the environment);
 * any other error (an item not found, a model refusal, a store failure) leaves `eb` as
 * it was, for the caller to word.
 *
 * Verbs never wake anything: a verb whose commit lets held polls make progress says so in
 * a struct work_wake (or struct session_wake), and the caller wakes from that. A backend
 * fills `struct store_ops` and callers call through it (`s->ops->verb(s, …)`). Verbs are
 * safe to call from any thread. Output structs are owned by the caller and released with
 * the matching *_clear function; on any error every output is left defined (zeroed, owning
 * nothing), so a caller may read or clear it whatever the verb returned.
 *
 * store.c holds what does not depend on a backend (store_open, the *_clear functions).
 * The verbs are written once (sql_*.c) against the SQL interface of db.h; a backend is a
 * driver of it plus its schema: store_sqlite.c on db_sqlite.c (one file, one writer, group
 * commit), store_pg.c on db_pg.c (a fleet of nodes on one PostgreSQL). store_fault.c
 * wraps any backend to make its verbs fail on purpose, for tests. */
#ifndef ENVIROND_STORE_H
#define ENVIROND_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ids.h"
#include "common/secret.h"
#include "model/cursor.h"
#include "model/environment.h"
#include "model/session.h"
#include "model/work.h"

#define STORE_OPS_VERSION 4
#define TENANT_NAME_MAX 64

/* Who is asking, for environment visibility (SPEC §4). */
struct tenant {
	char org[TENANT_NAME_MAX + 1];
	char account[TENANT_NAME_MAX + 1];
	char workspace[TENANT_NAME_MAX + 1];
};

enum cred_kind { CRED_API_KEY, CRED_ENV_KEY, CRED_SESSION, CRED_AGENT };

#define AGENT_MODELS_MAX 1024 /* comma-separated model ids an agent key may serve */

/* A resolved credential. For an API key, `workspace` is "" when the key spans every
 * workspace of its organization. Environment keys and session tokens carry the tenant of
 * their environment (its org, workspace and creating account). */
struct credential {
	enum cred_kind kind;
	char key_id[ID_MAX];          /* API key or environment key id */
	struct tenant tenant;
	char environment_id[ID_MAX];  /* env key, session */
	char work_id[ID_MAX];         /* session */
	char hash[SECRET_HASH_HEX + 1]; /* the presented credential's hash */
	char agent_models[AGENT_MODELS_MAX + 1]; /* agent key: allowed model ids, comma-separated; "" = any */
};

struct api_key {
	char id[ID_MAX];
	char name[TENANT_NAME_MAX + 1];
	struct tenant tenant; /* workspace "" = any workspace of the org */
	int64_t created_at;
};

struct env_key {
	char id[ID_MAX];
	char environment_id[ID_MAX];
	char name[257];
	int64_t created_at;
	int64_t last_used_at;
};

struct work_item {
	char id[ID_MAX];
	char environment_id[ID_MAX];
	char data_type[16];   /* "session" | "healthcheck" */
	char data_id[257];
	json_t *metadata;     /* owned */
	int64_t created_at;
	struct work_lease lease;
};

struct work_stats {
	int64_t depth;
	int64_t pending;
	int64_t oldest_queued_at; /* 0 = null */
};

/* A page of a newest-first list. `items` is an array of the list's element type, `count`
 * rows, `more` set when another page follows (the caller makes the cursor from the last
 * row). A page of environments also ends early, with `more` set, once its rows hold more
 * than STORE_PAGE_BYTES of stored text; it always holds at least one row. */
#define STORE_PAGE_BYTES (2 * 1024 * 1024)
struct env_page {
	struct environment *items;
	size_t count;
	int more;
};
struct env_key_page {
	struct env_key *items;
	size_t count;
	int more;
};
struct work_page {
	struct work_item *items;
	size_t count;
	int more;
};

/* Parameters of a claim (poll). */
struct work_claim {
	int64_t reclaim_older_than_us;
	/* The hash of the environment key polling, checked in the claim's own transaction
	 * (ERR_UNAUTHENTICATED once revoked); "" when the caller holds no environment key. */
	char key_hash[SECRET_HASH_HEX + 1];
	char token_hash[SECRET_HASH_HEX + 1]; /* hash of the session token minted for this delivery */
};

/* What a verb's commit means for the polls held on one environment; all zero = nothing.
 * `claimable` items became claimable there (wake that many held polls); `recheck` asks
 * every held poll of the environment to claim again, because its outcome may have changed
 * for all of them (a key was revoked, the environment was deleted). */
struct work_wake {
	char environment_id[ID_MAX];
	size_t claimable;
	int recheck;
	int published; /* the other processes of a fleet heard it from the commit itself */
};

/* Heartbeat result for the reply (and for the 412's current_state). */
struct work_beat {
	enum work_state state;
	int64_t last_heartbeat;   /* 0 = none */
	int lease_extended;
	int32_t ttl_seconds;
};

/* What a work event reports besides the item. Filled on success and on the model's
 * refusal of the event (what happened on the way was committed); zeroed on any other
 * error. */
struct work_event_out {
	struct work_beat beat; /* HEARTBEAT: the reply (also on ERR_HEARTBEAT_PRECONDITION) */
	int requeued;          /* an item became claimable: the lease had run out and the item
				* went back to the queue first (T18), whatever became of the event
				* itself, or the event stopped a session's item and the session,
				* still needing a worker, got a fresh one */
	enum work_state state; /* the item's state after the event, or when it was refused */
	struct work_wake wake; /* set with requeued: one item claimable in the environment */
};

/* --- agents and sessions (SPEC §6) ------------------------------------------------------ */

/* An agent at one version: `config` is model/agent.h's normalized configuration (owned). */
struct agent_rec {
	char id[ID_MAX];
	int64_t version;
	json_t *config;
	int64_t archived_at, created_at, updated_at;
};
struct agent_page {
	struct agent_rec *items;
	size_t count;
	int more;
};

/* An operator-issued agent key (the agent extension). `models` as in struct credential. */
struct agent_key {
	char id[ID_MAX];
	char name[TENANT_NAME_MAX + 1];
	struct tenant tenant; /* workspace "" = any workspace of the org */
	char models[AGENT_MODELS_MAX + 1];
	int64_t created_at;
};

/* Which sessions a caller reaches: those of `org`, of `workspace` unless it is "", of
 * `environment_id` unless it is "". */
struct session_scope {
	const char *org;
	const char *workspace;
	const char *environment_id;
};

/* A session. Owned fields are released by session_rec_clear. */
struct session_rec {
	char id[ID_MAX];
	char environment_id[ID_MAX];
	json_t *agent;     /* the agent snapshot (owned) */
	json_t *metadata;  /* owned */
	json_t *title;     /* string or null (owned) */
	struct session_state state;
	int64_t archived_at, created_at, updated_at;
};
struct session_page {
	struct session_rec *items;
	size_t count;
	int more;
};

/* What a session verb asks its caller to wake once it has committed. */
struct session_wake {
	int events;             /* events were appended to the session: wake its streams */
	int work_enqueued;      /* a work item was enqueued in environment_id: wake its polls */
	int turn_wanted;        /* the session now awaits an agent turn: wake org's turn polls */
	char session_id[ID_MAX];
	char environment_id[ID_MAX];
	char org[TENANT_NAME_MAX + 1];
};

/* A page of events: `items` is a JSON array of stored event objects (owned); `last_seq`
 * and `last_id` name the final row for the cursor. */
struct event_page {
	json_t *items;
	int more;
	int64_t last_seq;
	char last_id[ID_MAX];
};
/* Which events a list returns: after seq `after_seq` (ascending) or before it
 * (descending; 0 = from the newest); `types` ",a,b," or NULL for all. */
struct event_query {
	int64_t after_seq;
	int descending;
	const char *types;
	size_t limit;
};

struct session_new {
	const char *environment_id;
	const char *agent_id;
	int64_t agent_version;     /* 0 = latest */
	const json_t *title;       /* string, null or NULL (absent) */
	const json_t *metadata;    /* validated object or NULL */
	const json_t *initial_events; /* array or NULL */
};

/* A claimed agent turn. `agent` is owned (agent_turn_clear). */
struct agent_turn {
	char id[ID_MAX];
	char session_id[ID_MAX];
	json_t *agent;
	int64_t lease_expires_at;
};

/* A worker seen polling an environment (workers_polling in a fleet): its id's hash, never
 * the id, and the lease time of the sighting. */
struct worker_seen {
	char environment_id[ID_MAX];
	char worker[17]; /* 16 hex digits */
	int64_t seen_at;
};

/* What a reset deleted: rows per table. */
struct store_reset {
	int64_t environments, env_keys, work, agents, sessions, events;
};

struct store;

typedef void (*store_wake_fn)(void *arg, const char *key, size_t n);
typedef enum err (*store_job_fn)(void *arg);
typedef void (*store_done_fn)(void *arg, enum err rc);
/* The wake key of a revocation: every process forgets the credentials it cached. */
#define STORE_KEY_CREDENTIALS "credentials!"

struct store_ops {
	int version; /* STORE_OPS_VERSION */
	void (*close)(struct store *s);
	enum err (*ping)(struct store *s);
	/* Run fn(arg) as a write in the store's next commit group, without the caller waiting:
	 * the verbs it calls join the group's transaction (each in a savepoint of its own),
	 * and done(arg, rc) runs after the group's commit, on the store's writer thread, with
	 * fn's result, or ERR_UNAVAILABLE when the group did not commit (nothing of it was
	 * kept). Called from such an fn, the new one joins the same group, after the others.
	 * Returns 0 when queued (done will run), 1 when this store has no writer of its own
	 * (PostgreSQL: run fn inline), -1 when it refuses (closing, out of memory). */
	int (*defer)(struct store *s, store_job_fn fn, void *arg, store_done_fn done);
	/* Write transactions this process committed (SQLite: commit groups, one fsync each). */
	uint64_t (*commits)(struct store *s);
	/* The server-wide key that binds cursors (created on first open). */
	void (*cursor_key)(struct store *s, unsigned char out[CURSOR_KEY_LEN]);
	/* Wake-ups between the processes that share the store (a fleet on PostgreSQL; SQLite
	 * has one, and these do nothing). subscribe: from now on, what other processes publish
	 * reaches fn(arg, key, n), and key NULL means "look again at everything" (sent after a
	 * lost notification connection); fn NULL stops the deliveries (it returns once none
	 * is running). publish: after a commit, wake `key` elsewhere (n as
	 * waiters_wake's). Neither ever blocks on the database. */
	enum err (*subscribe)(struct store *s, store_wake_fn fn, void *arg);
	void (*publish)(struct store *s, const char *key, size_t n);
	/* 0 and an epoch while every other process's wakes reach this one (always, for a
	 * single process); the epoch moves whenever some may have been missed. -1 while they
	 * may be missed now. What a process caches on the strength of those wakes (held-poll
	 * hints, credentials) is valid only within one epoch. */
	int (*wake_epoch)(struct store *s, uint64_t *epoch);
	/* Should this process run the lease and turn sweeps now? Always for a single process;
	 * in a fleet, one node at a time (another takes over within a second when it dies). */
	int (*sweeps)(struct store *s);

	/* API keys (operator side). */
	enum err (*api_key_count)(struct store *s, int64_t *count);
	enum err (*api_key_create)(struct store *s, const struct api_key *k, const char *hash);
	enum err (*api_key_list)(struct store *s, struct api_key **out, size_t *count);
	enum err (*api_key_revoke)(struct store *s, const char *id);

	/* Resolve a credential by the hash of its text; ERR_UNAUTHENTICATED when unknown. */
	enum err (*credential_find)(struct store *s, enum cred_kind kind, const char *hash, int64_t now,
				    struct credential *out);

	/* Environments, as seen by tenant t. Another tenant's environment is ERR_NOT_FOUND. */
	enum err (*env_create)(struct store *s, const struct tenant *t, const struct env_fields *f, int64_t now,
			       struct environment *out);
	enum err (*env_get)(struct store *s, const struct tenant *t, const char *id, struct environment *out);
	enum err (*env_update)(struct store *s, const struct tenant *t, const char *id, const json_t *body,
			       int64_t now, struct environment *out, struct errbuf *eb);
	enum err (*env_archive)(struct store *s, const struct tenant *t, const char *id, int64_t now,
				struct environment *out);
	/* Delete the environment with its work and keys, in one transaction (ERR_HAS_LIVE_WORK
	 * while an item is starting, active or stopping). *wake: every poll held on it must
	 * claim again (and finds its key gone). */
	enum err (*env_delete)(struct store *s, const struct tenant *t, const char *id, struct work_wake *wake);
	enum err (*env_list)(struct store *s, const struct tenant *t, int include_archived,
			     const struct cursor *after, size_t limit, struct env_page *out);

	/* Environment keys of a self_hosted environment `env_id` visible to t (checked in the
	 * verb's transaction; see the top of this file). */
	enum err (*env_key_create)(struct store *s, const struct tenant *t, const char *env_id, const char *name,
				   const char *hash, int64_t now, struct env_key *out, struct errbuf *eb);
	enum err (*env_key_list)(struct store *s, const struct tenant *t, const char *env_id,
				 const struct cursor *after, size_t limit, struct env_key_page *out, struct errbuf *eb);
	/* ERR_NOT_FOUND (unworded) when the environment has no such key. *wake: the polls held
	 * with it must claim again (and answer 401). */
	enum err (*env_key_revoke)(struct store *s, const struct tenant *t, const char *env_id, const char *key_id,
				   struct work_wake *wake, struct errbuf *eb);

	/* Work (SPEC §3), in environment env_id as seen by t: every verb checks the environment
	 * in its own transaction (visible, self_hosted; work_enqueue also not archived) and
	 * words its refusal in eb. An environment key or session token caller passes its
	 * credential's tenant (that of its environment); that the credential belongs to env_id
	 * is the caller's check. ERR_NOT_FOUND left unworded means no such item in env_id. */
	/* *wake: the new item is claimable (when *created). */
	enum err (*work_enqueue)(struct store *s, const struct tenant *t, const char *env_id, const char *data_type,
				 const char *data_id, const json_t *metadata, int64_t now, struct work_item *out,
				 int *created, struct work_wake *wake, struct errbuf *eb);
	/* ERR_NOT_FOUND (unworded) when nothing is claimable; ERR_UNAUTHENTICATED when the
	 * polling environment key (c->key_hash) was revoked. */
	enum err (*work_claim)(struct store *s, const struct tenant *t, const char *env_id, const struct work_claim *c,
			       int64_t now, struct work_item *out, struct errbuf *eb);
	/* Undo a delivery whose answer never reached the poller: the item still carries the
	 * delivery's token (token_hash) and is still queued; model/work.c's WORK_EV_UNDELIVER
	 * decides. ERR_NOT_FOUND when there is nothing to undo (the item moved on or is gone).
	 * No environment check: the undone delivery was made in a checked claim. *wake: the
	 * item is claimable again. */
	enum err (*work_undeliver)(struct store *s, const char *work_id, const char *token_hash, int64_t now,
				   struct work_wake *wake);
	enum err (*work_get)(struct store *s, const struct tenant *t, const char *env_id, const char *work_id,
			     struct work_item *out, struct errbuf *eb);
	/* Apply one state machine event to an item; ev is ACK, HEARTBEAT or STOP. When the
	 * caller holds a session token, session_hash is its hash and must still be the item's
	 * (checked in the same transaction; ERR_UNAUTHENTICATED otherwise), else NULL. The
	 * model's refusal is returned unworded (res->state tells the item's state). */
	enum err (*work_event)(struct store *s, const struct tenant *t, const char *env_id, const char *work_id,
			       enum work_event ev, const struct work_input *in, const char *session_hash, int64_t now,
			       struct work_item *out, struct work_event_out *res, struct errbuf *eb);
	/* A NULL patch changes nothing and answers the item. */
	enum err (*work_update_metadata)(struct store *s, const struct tenant *t, const char *env_id,
					 const char *work_id, const json_t *patch, struct work_item *out,
					 struct errbuf *eb);
	enum err (*work_list)(struct store *s, const struct tenant *t, const char *env_id, const struct cursor *after,
			      size_t limit, struct work_page *out, struct errbuf *eb);
	enum err (*work_stats)(struct store *s, const struct tenant *t, const char *env_id, struct work_stats *out,
			       struct errbuf *eb);
	/* The (lease) time at which the oldest delivered-but-unacked item of env becomes
	 * reclaimable under `reclaim_us`; 0 when there is none. */
	enum err (*work_next_reclaim)(struct store *s, const struct tenant *t, const char *env_id, int64_t reclaim_us,
				      int64_t *at, struct errbuf *eb);
	/* Expire up to `max` leases with lease_expires_at <= now (T18/T19). For each
	 * environment that got items back in the queue, one entry of wakes (room for `max`)
	 * says how many; *n_wakes receives the number of entries, *n_expired that of items. */
	enum err (*leases_expire)(struct store *s, int64_t now, size_t max, struct work_wake *wakes,
				  size_t *n_wakes, size_t *n_expired);
	/* Earliest lease expiry in the store (0 = none), so the sweeper can sleep until then. */
	enum err (*next_lease_expiry)(struct store *s, int64_t *at);

	/* Agent keys (operator side). */
	enum err (*agent_key_create)(struct store *s, const struct agent_key *k, const char *hash);

	/* Agents of tenant t (org + workspace). version 0 = the latest. */
	enum err (*agent_create)(struct store *s, const struct tenant *t, const json_t *config, int64_t now,
				 struct agent_rec *out);
	enum err (*agent_get)(struct store *s, const struct tenant *t, const char *id, int64_t version,
			      struct agent_rec *out);
	/* Merge `body` (model/agent.c) into the latest version; a change makes a new version. */
	enum err (*agent_update)(struct store *s, const struct tenant *t, const char *id, const json_t *body,
				 int64_t now, struct agent_rec *out, struct errbuf *eb);
	enum err (*agent_archive)(struct store *s, const struct tenant *t, const char *id, int64_t now,
				  struct agent_rec *out);
	enum err (*agent_list)(struct store *s, const struct tenant *t, int include_archived,
			       const struct cursor *after, size_t limit, struct agent_page *out);
	/* Versions newest first; the cursor's created_at holds the version. */
	enum err (*agent_versions)(struct store *s, const struct tenant *t, const char *id,
				   const struct cursor *after, size_t limit, struct agent_page *out);

	/* Sessions. t is the creating tenant; reads and writes go through a scope.
	 * session_create checks n->environment_id in its transaction (visible to t,
	 * self_hosted, not archived; ERR_INVALID worded in eb, naming environment_id). */
	enum err (*session_create)(struct store *s, const struct tenant *t, const struct session_new *n, int64_t now,
				   struct session_rec *out, struct session_wake *wake, struct errbuf *eb);
	enum err (*session_get)(struct store *s, const struct session_scope *sc, const char *id,
				struct session_rec *out);
	enum err (*session_list)(struct store *s, const struct session_scope *sc, int include_archived,
				 const char *agent_id, const struct cursor *after, size_t limit,
				 struct session_page *out);
	/* title and metadata (patch). */
	enum err (*session_update)(struct store *s, const struct session_scope *sc, const char *id,
				   const json_t *body, int64_t now, struct session_rec *out, struct errbuf *eb);
	/* Archive (deleting = 0) or delete (1): the live work item goes to stopping; a
	 * deletion appends session.deleted for the streams, then the session is gone. */
	enum err (*session_close)(struct store *s, const struct session_scope *sc, const char *id, int deleting,
				  int64_t now, struct session_rec *out, struct session_wake *wake);
	/* Client events (model/session.c). *stored: the new events (owned array). */
	enum err (*session_post)(struct store *s, const struct session_scope *sc, const char *id,
				 const json_t *events, int64_t now, json_t **stored, struct session_wake *wake,
				 struct errbuf *eb);
	enum err (*session_events)(struct store *s, const struct session_scope *sc, const char *id,
				   const struct event_query *q, struct event_page *out);
	/* The seq of the session's newest event (0 when none), or with after_event_id, the seq
	 * of that event of the session (ERR_INVALID when it is not one). ERR_NOT_FOUND once
	 * the session is deleted. */
	enum err (*session_last_seq)(struct store *s, const struct session_scope *sc, const char *id,
				     const char *after_event_id, int64_t *seq);
	/* Events after `after_seq` up to `max`, for a stream; *deleted when the session is gone
	 * (its session.deleted event is still returned). */
	enum err (*session_events_since)(struct store *s, const char *id, int64_t after_seq, size_t max,
					 struct event_page *out, int *deleted);

	/* Agent turns (the agent extension). `models` NULL-terminated; NULL = any model. */
	enum err (*turn_claim)(struct store *s, const struct session_scope *sc, const char *const *models,
			       int64_t now, int64_t lease_us, struct agent_turn *out);
	enum err (*turn_heartbeat)(struct store *s, const struct session_scope *sc, const char *turn_id, int64_t now,
				   int64_t lease_us, int64_t *expires_at);
	enum err (*turn_post)(struct store *s, const struct session_scope *sc, const char *turn_id,
			      const json_t *events, int64_t now, json_t **stored, struct session_wake *wake,
			      struct errbuf *eb);
	/* Return expired turns to awaiting; the orgs whose turn polls to wake are appended to
	 * orgs (room for max). */
	enum err (*turns_expire)(struct store *s, int64_t now, size_t max, char (*orgs)[TENANT_NAME_MAX + 1],
				 size_t *n_orgs, size_t *n_expired);
	/* Earliest agent turn expiry in the store (0 = none), as next_lease_expiry. */
	enum err (*next_turn_expiry)(struct store *s, int64_t *at);

	/* Workers seen polling, written by every node of a fleet in batches: each row keeps its
	 * latest sighting; rows last seen before prune_before go. Counted per environment since
	 * a lease time. */
	enum err (*workers_seen)(struct store *s, const struct worker_seen *rows, size_t n, int64_t prune_before);
	enum err (*workers_polling)(struct store *s, const char *env_id, int64_t since, int64_t *count);

	/* Test mode only (`environd serve --test-mode`): delete every environment, environment
	 * key, work item, agent, session and event of every tenant in one transaction. API
	 * keys, agent keys and the server's settings stay. */
	enum err (*reset_all)(struct store *s, struct store_reset *out);
};

struct store {
	const struct store_ops *ops;
	/* Shared by several server processes (a fleet): what one process knows only in its
	 * memory (workers seen polling) must go through the store. */
	int fleet;
	/* ops->defer queues writes on a writer of the store's own (SQLite). */
	int defers;
};

/* Open the backend named by `url`: a postgres:// or postgresql:// URI for PostgreSQL
 * (with a pool of `pool` connections), any other text is the path of a SQLite file.
 * Runs migrations. */
enum err store_open(const char *url, size_t pool, struct store **out, struct errbuf *eb);
int store_is_postgres(const char *url);
/* Where the store is, for a log line: the path, or for PostgreSQL its host, port, database
 * and user, never its password. */
void store_describe(const char *url, char *out, size_t cap);
enum err store_sqlite_open(const char *path, struct store **out, struct errbuf *eb);
/* Wrap `inner` so that every `every`-th verb fails with ERR_UNAVAILABLE, its outputs
 * zeroed (a test seam: only `environd serve --test-store-fault-every N` uses it). The
 * wrapper owns inner: closing it closes both. */
enum err store_fault_wrap(struct store *inner, unsigned long every, struct store **out);

void work_item_clear(struct work_item *w);
void agent_rec_clear(struct agent_rec *a);
void agent_page_clear(struct agent_page *p);
void session_rec_clear(struct session_rec *r);
void session_page_clear(struct session_page *p);
void event_page_clear(struct event_page *p);
void agent_turn_clear(struct agent_turn *t);
void env_page_clear(struct env_page *p);
void env_key_page_clear(struct env_key_page *p);
void work_page_clear(struct work_page *p);

#endif
