/* conformance.h - the store conformance suite: what every backend of store.h must do,
 * run unchanged against SQLite and PostgreSQL.
 *
 * The store comes from ENVIROND_STORE_URL: a postgres:// or postgresql:// URL of a
 * server the suite may create databases on (each test gets a fresh database, dropped
 * after it), or unset for a fresh SQLite file in a temp directory per test. Time is
 * injected: every verb takes `now`, and the tests pass fixed, advancing fake times; no
 * test sleeps.
 *
 * Verbs whose signature is expected to change (work and environment-key verbs taking the
 * caller's tenant) are called only through the small helpers below, so that adapting the
 * suite is a change to conformance_verbs.c, not to every test. */
#ifndef ENVIROND_TESTS_STORE_CONFORMANCE_H
#define ENVIROND_TESTS_STORE_CONFORMANCE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/secret.h"
#include "store/store.h"

#define US(s) ((int64_t)(s) * 1000000)
/* The fake clock starts here (2026-11-28): far from 0, so a time of 0 ("none") is never
 * confused with a real one. */
#define CONF_T0 US(1795880057)

struct conf {
	struct store *s;
	char url[1024];     /* what store_open was given */
	char dbname[64];    /* PostgreSQL: the test's database, dropped on teardown */
	char dir[128];      /* SQLite: the test's temp directory */
	int postgres;
	size_t pool;
	int64_t now;        /* the fake clock; tests advance it */
	unsigned seq;       /* for unique names within the test */
};

/* cmocka setup / teardown: a fresh, empty store per test. */
int conf_setup(void **state);
int conf_teardown(void **state);
/* Close the store and open it again on the same database (what survives a restart). */
void conf_reopen(struct conf *c);

#define CONF_TEST(fn) cmocka_unit_test_setup_teardown(fn, conf_setup, conf_teardown)

/* The clock: advance by `us` and return the new time. */
int64_t conf_tick(struct conf *c, int64_t us);

/* A tenant of its own for this test: org "<prefix>-N", account "acct", workspace "ws". */
void conf_tenant(struct conf *c, const char *prefix, struct tenant *t);
void tenant_set(struct tenant *t, const char *org, const char *account, const char *workspace);

/* Create an environment of t (self_hosted or cloud; scope "account" when account_scope)
 * named `name` (NULL = a unique one) at `now`; asserts success. */
void conf_env(struct conf *c, const struct tenant *t, int self_hosted, int account_scope, const char *name,
	      int64_t now, struct environment *out);
/* Its id only (the environment is cleared). */
void conf_env_id(struct conf *c, const struct tenant *t, int64_t now, char id[ID_MAX]);

/* A test's tenant and one self_hosted environment of it. */
struct conf_fx {
	struct conf *c;
	struct tenant t;
	char env[ID_MAX];
};
void conf_fx_init(struct conf_fx *f, void **state, const char *prefix);

/* An agent of t named `name` serving `model`; asserts success; its id copied out. */
void conf_agent(struct conf *c, const struct tenant *t, const char *name, const char *model, int64_t now,
		char id[ID_MAX]);
/* [{"type":"user.message","content":[{"type":"text","text":text}]}] (new reference). */
json_t *conf_user_message(const char *text);
/* A session of `agent` in `env`, with a first message when `text`; asserts success. wake
 * may be NULL. */
void conf_session(struct conf *c, const struct tenant *t, const char *env, const char *agent, const char *text,
		  int64_t now, struct session_rec *out, struct session_wake *wake);

/* Run fn(ctx, me) on n threads (me = 0..n-1) that all start at once (a barrier). */
typedef void (*conf_thread_fn)(void *ctx, int me);
void conf_threads(int n, conf_thread_fn fn, void *ctx);

/* The SHA-256 hex of text (how every credential is stored). */
void conf_hash(const char *text, char out[SECRET_HASH_HEX + 1]);
/* A fresh token hash, unique within the process (thread-safe). */
void conf_token(char out[SECRET_HASH_HEX + 1]);

/* Every byte of p is zero: an output left defined after an error. */
int all_zero(const void *p, size_t n);
#define DIRTY(x) memset(&(x), 0xA5, sizeof(x))

/* --- the verbs whose signatures move (conformance_verbs.c) ------------------------- */

enum err w_enqueue(struct conf *c, const struct tenant *t, const char *env, const char *type, const char *data_id,
		   const json_t *metadata, int64_t now, struct work_item *out, int *created);
/* Enqueue a healthcheck item with a unique data id; asserts success; id copied out. */
void w_enqueue_ok(struct conf *c, const struct tenant *t, const char *env, int64_t now, char id[ID_MAX]);
/* Claim with a fresh token (its hash in token_hash, may be NULL), no key. */
enum err w_claim(struct conf *c, const struct tenant *t, const char *env, const char *key_hash,
		 int64_t reclaim_us, int64_t now, struct work_item *out, char *token_hash);
enum err w_undeliver(struct conf *c, const struct tenant *t, const char *env, const char *work_id,
		     const char *token_hash);
enum err w_get(struct conf *c, const struct tenant *t, const char *env, const char *work_id, struct work_item *out);
enum err w_event(struct conf *c, const struct tenant *t, const char *env, const char *work_id, enum work_event ev,
		 const struct work_input *in, const char *session_hash, int64_t now, struct work_item *out,
		 struct work_event_out *res);
enum err w_metadata(struct conf *c, const struct tenant *t, const char *env, const char *work_id, const json_t *patch,
		    struct work_item *out, struct errbuf *eb);
enum err w_list(struct conf *c, const struct tenant *t, const char *env, const struct cursor *after, size_t limit,
		struct work_page *out);
enum err w_stats(struct conf *c, const struct tenant *t, const char *env, struct work_stats *out);
enum err w_next_reclaim(struct conf *c, const struct tenant *t, const char *env, int64_t reclaim_us, int64_t *at);

/* Shorthands over w_event, the item's outputs released: the state after, or -1 on error
 * with *rc (may be NULL) set to it. */
int w_ack(struct conf *c, const struct tenant *t, const char *env, const char *id, int64_t now, enum err *rc);
int w_beat(struct conf *c, const struct tenant *t, const char *env, const char *id, enum work_expect expect,
	   int64_t expected_us, int32_t ttl, int64_t now, struct work_event_out *res, enum err *rc);
int w_stop(struct conf *c, const struct tenant *t, const char *env, const char *id, int force, int64_t now,
	   enum err *rc);

/* leases_expire: the environments that got items back in the queue as ids (room for max). */
enum err l_expire(struct conf *c, int64_t now, size_t max, char (*envs)[ID_MAX], size_t *n_envs, size_t *n_expired);
enum err e_delete(struct conf *c, const struct tenant *t, const char *env);

enum err k_create(struct conf *c, const struct tenant *t, const char *env, const char *name, const char *hash,
		  int64_t now, struct env_key *out);
enum err k_list(struct conf *c, const struct tenant *t, const char *env, const struct cursor *after, size_t limit,
		struct env_key_page *out);
enum err k_revoke(struct conf *c, const struct tenant *t, const char *env, const char *key_id);

/* The groups (one per file), each returning its number of failures. */
int conf_group_keys(void);
int conf_group_env(void);
int conf_group_work(void);
int conf_group_queue(void);
int conf_group_race(void);
int conf_group_race_session(void);
int conf_group_race_edit(void);
int conf_group_fleet(void);
int conf_group_agent(void);
int conf_group_session(void);

#endif
