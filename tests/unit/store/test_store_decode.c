/* test_store_decode.c - rows the SQLite store cannot read are errors, never crashes.
 *
 * A work row whose state this build does not know, or whose metadata is not a JSON object
 * (a damaged file, a hand edit, a newer schema), makes the verb that reads it fail with
 * ERR_INTERNAL (a 500) and owning nothing; the lease sweeper skips it and still expires
 * every other lease. */
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

#include "store/store.h"
#include "store/sqlite_fixture.h"

#define S(s) ((int64_t)(s) * 1000000)
#define T0 S(1795880057)

static const struct tenant TENANT = {"org_d", "acct_d", "ws_d"};
/* The id of the fixture's self_hosted environment (created by env_d()). */
static char ENV_D[ID_MAX];

/* Create the self_hosted environment the items go into, once per store. */
static const char *env_d(struct store *s)
{
	struct env_fields f;
	struct errbuf eb;
	json_t *body = json_pack("{s:s, s:{s:s}}", "name", "decode", "config", "type", "self_hosted");
	assert_non_null(body);
	assert_int_equal(ERR_OK, env_parse_create(body, &f, &eb));
	json_decref(body);
	struct environment e;
	enum err rc = s->ops->env_create(s, &TENANT, &f, T0, &e);
	env_fields_clear(&f);
	if (rc == ERR_NAME_TAKEN)
		return ENV_D;
	assert_int_equal(ERR_OK, rc);
	snprintf(ENV_D, sizeof(ENV_D), "%s", e.id);
	environment_clear(&e);
	return ENV_D;
}

/* Enqueue one item of the fixture's environment and return its id in `id`. */
static void enqueue(struct store *s, const char *session, char id[ID_MAX])
{
	json_t *meta = json_object();
	assert_non_null(meta);
	struct work_item w;
	struct work_wake wake;
	int created = 0;
	assert_int_equal(ERR_OK, s->ops->work_enqueue(s, &TENANT, env_d(s), "session", session, meta, T0, &w, &created,
						      &wake, NULL));
	assert_int_equal(1, wake.claimable);
	assert_string_equal(ENV_D, wake.environment_id);
	json_decref(meta);
	assert_int_equal(1, created);
	snprintf(id, ID_MAX, "%s", w.id);
	work_item_clear(&w);
}

/* Change a row behind the store's back, as a damaged file or a hand edit would. */
static void tamper(struct fixture *f, const char *sql, const char *id)
{
	sqlite3 *db;
	assert_int_equal(SQLITE_OK, sqlite3_open(f->path, &db));
	sqlite3_busy_timeout(db, 5000);
	sqlite3_stmt *st;
	assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(db, sql, -1, &st, NULL));
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(SQLITE_DONE, sqlite3_step(st));
	assert_int_equal(1, sqlite3_changes(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void expect_unreadable(struct store *s, const char *id)
{
	struct work_item w;
	assert_int_equal(ERR_INTERNAL, s->ops->work_get(s, &TENANT, ENV_D, id, &w, NULL));
	assert_null(w.metadata);
	struct work_page page;
	assert_int_equal(ERR_INTERNAL, s->ops->work_list(s, &TENANT, ENV_D, NULL, 20, &page, NULL));
	assert_int_equal(0, page.count);
	assert_null(page.items);
	struct work_event_out res;
	for (int ev = 0; ev < WORK_EVENT__COUNT; ev++) {
		struct work_input in = {0};
		assert_int_equal(ERR_INTERNAL,
				 s->ops->work_event(s, &TENANT, ENV_D, id, (enum work_event)ev, &in, NULL, T0 + S(1), &w,
						    &res, NULL));
		assert_null(w.metadata);
	}
}

static void test_unknown_state(void **state)
{
	struct fixture *f = *state;
	char id[ID_MAX];
	enqueue(f->s, "sesn_state", id);
	const char *bad[] = {"UPDATE work SET state = 5 WHERE id = ?", "UPDATE work SET state = -1 WHERE id = ?",
			     "UPDATE work SET state = 2147483647 WHERE id = ?",
			     /* 2^32 and 2^32 + 2 narrow to 0 (queued) and 2 (active) as a C int. */
			     "UPDATE work SET state = 4294967296 WHERE id = ?", "UPDATE work SET state = 4294967298 WHERE id = ?",
			     "UPDATE work SET state = 'queued' WHERE id = ?"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tamper(f, bad[i], id);
		expect_unreadable(f->s, id);
	}
}

static void test_bad_metadata_and_type(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {"UPDATE work SET metadata = '[1]' WHERE id = ?", "UPDATE work SET metadata = 'nope' WHERE id = ?",
			     "UPDATE work SET data_type = 'other' WHERE id = ?"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char id[ID_MAX], session[32];
		snprintf(session, sizeof(session), "sesn_meta_%zu", i);
		enqueue(f->s, session, id);
		tamper(f, bad[i], id);
		expect_unreadable(f->s, id);
	}
}

/* A session's status is stored as a number too: one this build does not know is a 500,
 * never read as another status. */
static void test_session_unknown_status(void **state)
{
	struct fixture *f = *state;
	const char *id = "sesn_decode";
	tamper(f,
	       "INSERT INTO sessions(id, org, workspace, account, environment_id, agent_id, agent, model_id, title,"
	       " metadata, status, awaiting_turn, awaiting_since, turn_id, turn_expires_at, pending, required, last_seq,"
	       " archived_at, deleted_at, created_at, updated_at) VALUES(?, 'org_d', 'ws_d', 'acct_d', 'env_none',"
	       " 'agent_x', '{}', 'm', 'null', '{}', 1, 0, 0, '', 0, '{}', '[]', 0, 0, 0, 1, 1)",
	       id);
	const struct session_scope sc = {.org = "org_d", .workspace = "", .environment_id = ""};
	struct session_rec r;
	assert_int_equal(ERR_OK, f->s->ops->session_get(f->s, &sc, id, &r));
	assert_int_equal(SESSION_RUNNING, r.state.status);
	session_rec_clear(&r);
	const char *bad[] = {"UPDATE sessions SET status = 4 WHERE id = ?", "UPDATE sessions SET status = -1 WHERE id = ?",
			     "UPDATE sessions SET status = 4294967296 WHERE id = ?",
			     "UPDATE sessions SET status = 'idle' WHERE id = ?"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tamper(f, bad[i], id);
		assert_int_equal(ERR_INTERNAL, f->s->ops->session_get(f->s, &sc, id, &r));
		assert_null(r.agent);
		assert_null(r.metadata);
	}
}

static void test_sweeper_skips_a_corrupt_row(void **state)
{
	struct fixture *f = *state;
	char bad[ID_MAX], good[ID_MAX];
	enqueue(f->s, "sesn_bad", bad);
	enqueue(f->s, "sesn_good", good);
	struct work_claim claim = {.reclaim_older_than_us = S(5)};
	struct work_item w;
	struct work_event_out res;
	for (int i = 0; i < 2; i++) {
		snprintf(claim.token_hash, sizeof(claim.token_hash), "%064d", i);
		assert_int_equal(ERR_OK, f->s->ops->work_claim(f->s, &TENANT, ENV_D, &claim, T0, &w, NULL));
		char id[ID_MAX];
		snprintf(id, sizeof(id), "%s", w.id);
		work_item_clear(&w);
		assert_int_equal(ERR_OK,
				 f->s->ops->work_event(f->s, &TENANT, ENV_D, id, WORK_EV_ACK, NULL, NULL, T0, &w, &res, NULL));
		work_item_clear(&w);
	}
	tamper(f, "UPDATE work SET state = 77 WHERE id = ?", bad);
	struct work_wake wakes[8];
	size_t n_wakes = 0, n_expired = 0;
	assert_int_equal(ERR_OK,
			 f->s->ops->leases_expire(f->s, T0 + S(WORK_TTL_DEFAULT_S), 8, wakes, &n_wakes, &n_expired));
	assert_int_equal(1, n_expired);
	/* The good item is claimable again in its environment: one wake names it. */
	assert_int_equal(1, n_wakes);
	assert_string_equal(ENV_D, wakes[0].environment_id);
	assert_int_equal(1, wakes[0].claimable);
	assert_int_equal(0, wakes[0].recheck);
	assert_int_equal(ERR_OK, f->s->ops->work_get(f->s, &TENANT, ENV_D, good, &w, NULL));
	assert_int_equal(WORK_QUEUED, w.lease.state);
	work_item_clear(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unknown_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_metadata_and_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_unknown_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweeper_skips_a_corrupt_row, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
