/* store.h - the persistence interface: one versioned table of domain verbs.
 *
 * Every verb is one atomic transaction. Verbs that change an item decide nothing
 * themselves: environment merges come from model/environment.c and work transitions from
 * model/work.c; the store loads, calls the model, and persists what it decided. A backend
 * fills `struct store_ops` and callers call through it (`s->ops->verb(s, …)`). Verbs are
 * safe to call from any thread. Output structs are owned by the caller and released with
 * the matching *_clear function; on any error every output is left defined (zeroed, owning
 * nothing), so a caller may read or clear it whatever the verb returned.
 *
 * store.c holds what does not depend on a backend (store_open, the *_clear functions);
 * store_sqlite.c and the sqlite_*.c files are the SQLite backend; store_fault.c wraps any
 * backend to make its verbs fail on purpose, for tests. */
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
#include "model/work.h"

#define STORE_OPS_VERSION 1
#define TENANT_NAME_MAX 64

/* Who is asking, for environment visibility (SPEC §4). */
struct tenant {
	char org[TENANT_NAME_MAX + 1];
	char account[TENANT_NAME_MAX + 1];
	char workspace[TENANT_NAME_MAX + 1];
};

enum cred_kind { CRED_API_KEY, CRED_ENV_KEY, CRED_SESSION };

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

/* Heartbeat result for the reply (and for the 412's current_state). */
struct work_beat {
	enum work_state state;
	int64_t last_heartbeat;   /* 0 = none */
	int lease_extended;
	int32_t ttl_seconds;
};

/* What a work event reports besides the item. */
struct work_event_out {
	struct work_beat beat; /* HEARTBEAT: the reply (also on ERR_HEARTBEAT_PRECONDITION) */
	int requeued;          /* the lease had run out: the item went back to the queue first
				* (T18), whatever became of the event itself */
	enum work_state state; /* the item's state after the event, or when it was refused */
};

struct store;

struct store_ops {
	int version; /* STORE_OPS_VERSION */
	void (*close)(struct store *s);
	enum err (*ping)(struct store *s);
	/* The server-wide key that binds cursors (created on first open). */
	void (*cursor_key)(struct store *s, unsigned char out[CURSOR_KEY_LEN]);

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
	enum err (*env_delete)(struct store *s, const struct tenant *t, const char *id);
	enum err (*env_list)(struct store *s, const struct tenant *t, int include_archived,
			     const struct cursor *after, size_t limit, struct env_page *out);

	/* Environment keys of a self_hosted environment. */
	enum err (*env_key_create)(struct store *s, const char *env_id, const char *name, const char *hash,
				   int64_t now, struct env_key *out);
	enum err (*env_key_list)(struct store *s, const char *env_id, const struct cursor *after, size_t limit,
				 struct env_key_page *out);
	enum err (*env_key_revoke)(struct store *s, const char *env_id, const char *key_id);

	/* Work (SPEC §3). env_id has been checked by the caller (visible, self_hosted). */
	enum err (*work_enqueue)(struct store *s, const char *env_id, const char *data_type, const char *data_id,
				 const json_t *metadata, int64_t now, struct work_item *out, int *created);
	/* ERR_NOT_FOUND when nothing is claimable. */
	enum err (*work_claim)(struct store *s, const char *env_id, const struct work_claim *c, int64_t now,
			       struct work_item *out);
	/* Undo a delivery whose answer never reached the poller (matched by token hash). */
	enum err (*work_undeliver)(struct store *s, const char *work_id, const char *token_hash);
	enum err (*work_get)(struct store *s, const char *env_id, const char *work_id, struct work_item *out);
	/* Apply one state machine event to an item; ev is ACK, HEARTBEAT or STOP. When the
	 * caller holds a session token, session_hash is its hash and must still be the item's
	 * (checked in the same transaction; ERR_UNAUTHENTICATED otherwise), else NULL. */
	enum err (*work_event)(struct store *s, const char *env_id, const char *work_id, enum work_event ev,
			       const struct work_input *in, const char *session_hash, int64_t now,
			       struct work_item *out, struct work_event_out *res);
	enum err (*work_update_metadata)(struct store *s, const char *env_id, const char *work_id,
					 const json_t *patch, struct work_item *out, struct errbuf *eb);
	enum err (*work_list)(struct store *s, const char *env_id, const struct cursor *after, size_t limit,
			      struct work_page *out);
	enum err (*work_stats)(struct store *s, const char *env_id, struct work_stats *out);
	/* The (lease) time at which the oldest delivered-but-unacked item of env becomes
	 * reclaimable under `reclaim_us`; 0 when there is none. */
	enum err (*work_next_reclaim)(struct store *s, const char *env_id, int64_t reclaim_us, int64_t *at);
	/* Expire up to `max` leases with lease_expires_at <= now (T18/T19). The ids of the
	 * environments that got queued items back are appended to env_ids (each ID_MAX bytes,
	 * room for `max`); *n_envs receives their number, *n_expired the number of items. */
	enum err (*leases_expire)(struct store *s, int64_t now, size_t max, char (*env_ids)[ID_MAX],
				  size_t *n_envs, size_t *n_expired);
	/* Earliest lease expiry in the store (0 = none), so the sweeper can sleep until then. */
	enum err (*next_lease_expiry)(struct store *s, int64_t *at);
};

struct store {
	const struct store_ops *ops;
};

/* Open the backend named by `url` (a file path for SQLite). Runs migrations. */
enum err store_open(const char *url, struct store **out, struct errbuf *eb);
enum err store_sqlite_open(const char *path, struct store **out, struct errbuf *eb);
/* Wrap `inner` so that every `every`-th verb fails with ERR_UNAVAILABLE, its outputs
 * zeroed (a test seam: only `environd serve --test-store-fault-every N` uses it). The
 * wrapper owns inner: closing it closes both. */
enum err store_fault_wrap(struct store *inner, unsigned long every, struct store **out);

void work_item_clear(struct work_item *w);
void env_page_clear(struct env_page *p);
void env_key_page_clear(struct env_key_page *p);
void work_page_clear(struct work_page *p);

#endif
