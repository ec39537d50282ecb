/* test_store_env_scope.c - the verbs of an environment's work and keys check the
 * environment themselves, and env_delete takes its work and keys along.
 *
 * Each verb is called on the SQLite store with an environment that is missing, another
 * tenant's, a cloud one, or archived: it refuses with the API's error and message, and
 * changes nothing. A delete leaves no row of the environment behind (counted in the file
 * itself), and the verbs that commit something that held polls care about say what to
 * wake. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "model/agent.h"
#include "store/store.h"
#include "store/sqlite_fixture.h"

#define S(s) ((int64_t)(s) * 1000000)
#define T0 S(1795880057)

static const struct tenant OWNER = {"org_s", "acct_s", "ws_s"};
static const struct tenant STRANGER = {"org_s", "acct_s", "ws_other"};

/* A new environment of OWNER: self_hosted or cloud. */
static void new_env(struct store *s, const char *name, int self_hosted, char id[ID_MAX])
{
	json_t *body = self_hosted ? json_pack("{s:s, s:{s:s}}", "name", name, "config", "type", "self_hosted")
				   : json_pack("{s:s}", "name", name);
	assert_non_null(body);
	struct env_fields f;
	struct errbuf eb;
	assert_int_equal(ERR_OK, env_parse_create(body, &f, &eb));
	json_decref(body);
	struct environment e;
	assert_int_equal(ERR_OK, s->ops->env_create(s, &OWNER, &f, T0, &e));
	env_fields_clear(&f);
	snprintf(id, ID_MAX, "%s", e.id);
	environment_clear(&e);
}

/* Rows of `table` whose environment is env_id, read from the file, not through the store. */
static int rows_of(struct fixture *f, const char *table, const char *column, const char *env_id)
{
	sqlite3 *db;
	assert_int_equal(SQLITE_OK, sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL));
	sqlite3_busy_timeout(db, 5000);
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE %s = ?", table, column);
	sqlite3_stmt *st;
	assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(db, sql, -1, &st, NULL));
	sqlite3_bind_text(st, 1, env_id, -1, SQLITE_STATIC);
	assert_int_equal(SQLITE_ROW, sqlite3_step(st));
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Every verb of env_id's work and keys, as tenant t, refuses with `want` and the message
 * `msg` (a prefix), and changes nothing. `enqueue_want` for the verbs that add work. */
static void expect_refused(struct fixture *f, const struct tenant *t, const char *env_id, enum err want,
			   enum err enqueue_want, const char *msg, const char *enqueue_msg, const char *key_msg)
{
	struct store *s = f->s;
	struct errbuf eb;
	struct work_item w;
	struct work_wake wake;
	int created = 1;
	json_t *meta = json_object();

	memset(&eb, 0, sizeof(eb));
	assert_int_equal(enqueue_want,
			 s->ops->work_enqueue(s, t, env_id, "session", "sesn_x", meta, T0, &w, &created, &wake, &eb));
	assert_string_equal(enqueue_msg, eb.message);
	assert_int_equal(0, created);
	assert_null(w.metadata);
	assert_string_equal("", wake.environment_id);

	struct work_claim claim = {.reclaim_older_than_us = S(5)};
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->work_claim(s, t, env_id, &claim, T0, &w, &eb));
	assert_string_equal(msg, eb.message);

	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->work_get(s, t, env_id, "work_none", &w, &eb));
	assert_string_equal(msg, eb.message);

	struct work_event_out res;
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->work_event(s, t, env_id, "work_none", WORK_EV_STOP, NULL, NULL, T0, &w, &res, &eb));
	assert_string_equal(msg, eb.message);
	assert_string_equal("", res.wake.environment_id);

	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->work_update_metadata(s, t, env_id, "work_none", meta, &w, &eb));
	assert_string_equal(msg, eb.message);

	struct work_page page;
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->work_list(s, t, env_id, NULL, 20, &page, &eb));
	assert_string_equal(msg, eb.message);
	assert_int_equal(0, page.count);

	struct work_stats st;
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->work_stats(s, t, env_id, &st, &eb));
	assert_string_equal(msg, eb.message);

	int64_t at = 7;
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->work_next_reclaim(s, t, env_id, S(5), &at, &eb));
	assert_int_equal(0, at);

	struct env_key k;
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->env_key_create(s, t, env_id, "k", "hash_x", T0, &k, &eb));
	assert_string_equal(key_msg, eb.message);
	struct env_key_page kp;
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->env_key_list(s, t, env_id, NULL, 20, &kp, &eb));
	assert_string_equal(key_msg, eb.message);
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(want, s->ops->env_key_revoke(s, t, env_id, "envkey_none", &wake, &eb));
	assert_string_equal(key_msg, eb.message);
	assert_string_equal("", wake.environment_id);

	json_decref(meta);
	assert_int_equal(0, rows_of(f, "work", "environment_id", env_id));
	assert_int_equal(0, rows_of(f, "env_keys", "environment_id", env_id));
}

static void test_missing_and_foreign(void **state)
{
	struct fixture *f = *state;
	char id[ID_MAX], msg[128];
	new_env(f->s, "mine", 1, id);
	snprintf(msg, sizeof(msg), "environment %s not found", id);
	/* Another workspace's caller: as if it did not exist. */
	expect_refused(f, &STRANGER, id, ERR_NOT_FOUND, ERR_NOT_FOUND, msg, msg, msg);
	expect_refused(f, &OWNER, "env_000000000000000000000000", ERR_NOT_FOUND, ERR_NOT_FOUND,
		       "environment env_000000000000000000000000 not found",
		       "environment env_000000000000000000000000 not found",
		       "environment env_000000000000000000000000 not found");
}

static void test_cloud(void **state)
{
	struct fixture *f = *state;
	char id[ID_MAX], msg[160], key_msg[160];
	new_env(f->s, "cloudy", 0, id);
	snprintf(msg, sizeof(msg), "environment %s is a cloud environment: work exists only in self_hosted environments", id);
	snprintf(key_msg, sizeof(key_msg), "environment %s is not self_hosted: only self_hosted environments have keys", id);
	expect_refused(f, &OWNER, id, ERR_INVALID, ERR_INVALID, msg, msg, key_msg);
}

/* Archived: no new work; everything else keeps answering (SPEC §2). */
static void test_archived(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->s;
	char id[ID_MAX];
	new_env(s, "old", 1, id);
	struct environment e;
	assert_int_equal(ERR_OK, s->ops->env_archive(s, &OWNER, id, T0 + S(1), &e));
	environment_clear(&e);
	struct errbuf eb = {{0}};
	struct work_item w;
	struct work_wake wake;
	int created = 1;
	json_t *meta = json_object();
	assert_int_equal(ERR_ENV_ARCHIVED,
			 s->ops->work_enqueue(s, &OWNER, id, "session", "sesn_a", meta, T0, &w, &created, &wake, &eb));
	char msg[160];
	snprintf(msg, sizeof(msg), "environment %s is archived: no new work may be enqueued", id);
	assert_string_equal(msg, eb.message);
	assert_int_equal(0, created);
	json_decref(meta);
	memset(&eb, 0, sizeof(eb));
	struct work_page page;
	assert_int_equal(ERR_OK, s->ops->work_list(s, &OWNER, id, NULL, 20, &page, &eb));
	assert_int_equal(0, page.count);
	work_page_clear(&page);
	struct env_key k;
	assert_int_equal(ERR_OK, s->ops->env_key_create(s, &OWNER, id, "k", "hash_archived", T0, &k, &eb));
	assert_int_equal(ERR_NOT_FOUND, s->ops->work_get(s, &OWNER, id, "work_none", &w, &eb));
	assert_string_equal("", eb.message); /* no such item: the caller words it */
}

/* A delete takes the environment's work and keys along, in its own transaction, and asks
 * every held poll of it to claim again; an item that is live blocks it. */
static void test_delete_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->s;
	char id[ID_MAX];
	new_env(s, "doomed", 1, id);
	struct errbuf eb = {{0}};
	struct work_item w;
	struct work_wake wake;
	int created;
	json_t *meta = json_object();
	char live[ID_MAX];
	for (int i = 0; i < 3; i++) {
		char session[32];
		snprintf(session, sizeof(session), "sesn_doomed_%d", i);
		assert_int_equal(ERR_OK, s->ops->work_enqueue(s, &OWNER, id, "session", session, meta, T0, &w, &created,
							      &wake, &eb));
		assert_int_equal(1, created);
		assert_string_equal(id, wake.environment_id);
		assert_int_equal(1, wake.claimable);
		assert_int_equal(0, wake.recheck);
		if (i == 0)
			snprintf(live, sizeof(live), "%s", w.id);
		work_item_clear(&w);
	}
	json_decref(meta);
	struct env_key k;
	assert_int_equal(ERR_OK, s->ops->env_key_create(s, &OWNER, id, "k1", "hash_d1", T0, &k, &eb));
	assert_int_equal(ERR_OK, s->ops->env_key_create(s, &OWNER, id, "k2", "hash_d2", T0, &k, &eb));
	/* One item live: the delete is refused and nothing goes. */
	struct work_claim claim = {.reclaim_older_than_us = S(5)};
	snprintf(claim.token_hash, sizeof(claim.token_hash), "%064d", 1);
	assert_int_equal(ERR_OK, s->ops->work_claim(s, &OWNER, id, &claim, T0, &w, &eb));
	assert_string_equal(live, w.id);
	work_item_clear(&w);
	struct work_event_out res;
	assert_int_equal(ERR_OK, s->ops->work_event(s, &OWNER, id, live, WORK_EV_ACK, NULL, NULL, T0, &w, &res, &eb));
	work_item_clear(&w);
	assert_int_equal(ERR_HAS_LIVE_WORK, s->ops->env_delete(s, &OWNER, id, &wake));
	assert_string_equal("", wake.environment_id);
	assert_int_equal(3, rows_of(f, "work", "environment_id", id));
	struct work_input force = {.force = 1};
	assert_int_equal(ERR_OK, s->ops->work_event(s, &OWNER, id, live, WORK_EV_STOP, &force, NULL, T0, &w, &res, &eb));
	work_item_clear(&w);
	/* Another tenant cannot delete it. */
	assert_int_equal(ERR_NOT_FOUND, s->ops->env_delete(s, &STRANGER, id, &wake));
	assert_int_equal(ERR_OK, s->ops->env_delete(s, &OWNER, id, &wake));
	assert_string_equal(id, wake.environment_id);
	assert_int_equal(1, wake.recheck);
	assert_int_equal(0, rows_of(f, "work", "environment_id", id));
	assert_int_equal(0, rows_of(f, "env_keys", "environment_id", id));
	assert_int_equal(0, rows_of(f, "environments", "id", id));
}

/* Revoking a key asks every held poll of its environment to claim again; a key of another
 * environment is not found there. */
static void test_revoke_wakes(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->s;
	char a[ID_MAX], b[ID_MAX];
	new_env(s, "revoke-a", 1, a);
	new_env(s, "revoke-b", 1, b);
	struct errbuf eb = {{0}};
	struct env_key k;
	assert_int_equal(ERR_OK, s->ops->env_key_create(s, &OWNER, a, "k", "hash_r", T0, &k, &eb));
	struct work_wake wake;
	assert_int_equal(ERR_NOT_FOUND, s->ops->env_key_revoke(s, &OWNER, b, k.id, &wake, &eb));
	assert_string_equal("", eb.message);
	assert_string_equal("", wake.environment_id);
	assert_int_equal(ERR_OK, s->ops->env_key_revoke(s, &OWNER, a, k.id, &wake, &eb));
	assert_string_equal(a, wake.environment_id);
	assert_int_equal(1, wake.recheck);
}

/* Undoing a delivery: the model's event, persisted like any other; only the delivery's
 * own token undoes it, and only while the item is still queued. */
static void test_undeliver(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->s;
	char id[ID_MAX];
	new_env(s, "undo", 1, id);
	struct errbuf eb = {{0}};
	struct work_item w;
	struct work_wake wake;
	int created;
	json_t *meta = json_object();
	assert_int_equal(ERR_OK, s->ops->work_enqueue(s, &OWNER, id, "session", "sesn_undo", meta, T0, &w, &created,
						      &wake, &eb));
	json_decref(meta);
	char item[ID_MAX];
	snprintf(item, sizeof(item), "%s", w.id);
	work_item_clear(&w);
	struct work_claim claim = {.reclaim_older_than_us = S(3600)};
	snprintf(claim.token_hash, sizeof(claim.token_hash), "%064d", 7);
	assert_int_equal(ERR_OK, s->ops->work_claim(s, &OWNER, id, &claim, T0, &w, &eb));
	work_item_clear(&w);
	/* Delivered, within the reclaim window: nothing to claim. */
	assert_int_equal(ERR_NOT_FOUND, s->ops->work_claim(s, &OWNER, id, &claim, T0 + 1, &w, &eb));
	char other[SECRET_HASH_HEX + 1];
	snprintf(other, sizeof(other), "%064d", 8);
	assert_int_equal(ERR_NOT_FOUND, s->ops->work_undeliver(s, item, other, T0 + 2, &wake));
	assert_string_equal("", wake.environment_id);
	struct credential cred;
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_SESSION, claim.token_hash, T0 + 2, &cred));
	assert_string_equal(item, cred.work_id);
	assert_int_equal(ERR_OK, s->ops->work_undeliver(s, item, claim.token_hash, T0 + 2, &wake));
	assert_string_equal(id, wake.environment_id);
	assert_int_equal(1, wake.claimable);
	/* The undone delivery's token died with it. */
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_SESSION, claim.token_hash, T0 + 2, &cred));
	/* Undone once: again is nothing to undo. The item is fresh: claimable at once. */
	assert_int_equal(ERR_NOT_FOUND, s->ops->work_undeliver(s, item, claim.token_hash, T0 + 3, &wake));
	struct work_stats st;
	assert_int_equal(ERR_OK, s->ops->work_stats(s, &OWNER, id, &st, &eb));
	assert_int_equal(1, st.depth);
	assert_int_equal(0, st.pending);
	snprintf(claim.token_hash, sizeof(claim.token_hash), "%064d", 9);
	assert_int_equal(ERR_OK, s->ops->work_claim(s, &OWNER, id, &claim, T0 + 4, &w, &eb));
	assert_string_equal(item, w.id);
	assert_int_equal(2, w.lease.delivery_count);
	work_item_clear(&w);
	/* Acked: the delivery cannot be undone any more. */
	struct work_event_out res;
	assert_int_equal(ERR_OK, s->ops->work_event(s, &OWNER, id, item, WORK_EV_ACK, NULL, NULL, T0 + 5, &w, &res, &eb));
	work_item_clear(&w);
	assert_int_equal(ERR_NOT_FOUND, s->ops->work_undeliver(s, item, claim.token_hash, T0 + 6, &wake));
	assert_int_equal(ERR_OK, s->ops->work_get(s, &OWNER, id, item, &w, &eb));
	assert_int_equal(WORK_STARTING, w.lease.state);
	work_item_clear(&w);
}

/* A session outlives its environment's deletion; a message posted to it afterwards leaves
 * no work item where no environment is. */
static void test_session_after_delete(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->s;
	char id[ID_MAX];
	new_env(s, "sessions", 1, id);
	struct errbuf eb = {{0}};
	json_t *body = json_pack("{s:s, s:s}", "name", "scope-agent", "model", "claude-sonnet-4-5");
	json_t *config = NULL;
	assert_int_equal(ERR_OK, agent_from_create(body, &config, &eb));
	json_decref(body);
	struct agent_rec a;
	assert_int_equal(ERR_OK, s->ops->agent_create(s, &OWNER, config, T0, &a));
	json_decref(config);
	json_t *events = json_pack("[{s:s, s:[{s:s, s:s}]}]", "type", "user.message", "content", "type", "text", "text", "hi");
	assert_non_null(events);
	struct session_new n = {.environment_id = id, .agent_id = a.id, .initial_events = events};
	struct session_rec r;
	struct session_wake wake;
	assert_int_equal(ERR_OK, s->ops->session_create(s, &OWNER, &n, T0, &r, &wake, &eb));
	assert_int_equal(1, wake.work_enqueued);
	assert_int_equal(1, rows_of(f, "work", "data_id", r.id));
	struct work_wake ww;
	assert_int_equal(ERR_OK, s->ops->env_delete(s, &OWNER, id, &ww));
	assert_int_equal(0, rows_of(f, "work", "data_id", r.id));
	const struct session_scope sc = {.org = OWNER.org, .workspace = OWNER.workspace, .environment_id = ""};
	json_t *stored = NULL;
	assert_int_equal(ERR_OK, s->ops->session_post(s, &sc, r.id, events, T0 + S(1), &stored, &wake, &eb));
	json_decref(stored);
	assert_int_equal(0, wake.work_enqueued);
	assert_int_equal(0, rows_of(f, "work", "data_id", r.id));
	assert_int_equal(0, rows_of(f, "work", "environment_id", id));
	json_decref(events);
	session_rec_clear(&r);
	agent_rec_clear(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_missing_and_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cloud, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archived, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_wakes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undeliver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_after_delete, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
