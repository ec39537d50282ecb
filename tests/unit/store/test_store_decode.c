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

#define S(s) ((int64_t)(s) * 1000000)
#define T0 S(1795880057)

struct fixture {
	char dir[64];
	char path[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/environd-decode-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/environd.db", f->dir);
	struct errbuf eb;
	assert_int_equal(ERR_OK, store_open(f->path, 1, &f->s, &eb));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	f->s->ops->close(f->s);
	char p[160];
	const char *suffix[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Enqueue one item of env "env_d" and return its id in `id`. */
static void enqueue(struct store *s, const char *session, char id[ID_MAX])
{
	json_t *meta = json_object();
	assert_non_null(meta);
	struct work_item w;
	int created = 0;
	assert_int_equal(ERR_OK, s->ops->work_enqueue(s, "env_d", "session", session, meta, T0, &w, &created));
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
	assert_int_equal(ERR_INTERNAL, s->ops->work_get(s, "env_d", id, &w));
	assert_null(w.metadata);
	struct work_page page;
	assert_int_equal(ERR_INTERNAL, s->ops->work_list(s, "env_d", NULL, 20, &page));
	assert_int_equal(0, page.count);
	assert_null(page.items);
	struct work_event_out res;
	for (int ev = 0; ev < WORK_EVENT__COUNT; ev++) {
		struct work_input in = {0};
		assert_int_equal(ERR_INTERNAL,
				 s->ops->work_event(s, "env_d", id, (enum work_event)ev, &in, NULL, T0 + S(1), &w, &res));
		assert_null(w.metadata);
	}
}

static void test_unknown_state(void **state)
{
	struct fixture *f = *state;
	char id[ID_MAX];
	enqueue(f->s, "sesn_state", id);
	const char *bad[] = {"UPDATE work SET state = 5 WHERE id = ?", "UPDATE work SET state = -1 WHERE id = ?",
			     "UPDATE work SET state = 2147483647 WHERE id = ?"};
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
		assert_int_equal(ERR_OK, f->s->ops->work_claim(f->s, "env_d", &claim, T0, &w));
		char id[ID_MAX];
		snprintf(id, sizeof(id), "%s", w.id);
		work_item_clear(&w);
		assert_int_equal(ERR_OK, f->s->ops->work_event(f->s, "env_d", id, WORK_EV_ACK, NULL, NULL, T0, &w, &res));
		work_item_clear(&w);
	}
	tamper(f, "UPDATE work SET state = 77 WHERE id = ?", bad);
	char envs[8][ID_MAX];
	size_t n_envs = 0, n_expired = 0;
	assert_int_equal(ERR_OK, f->s->ops->leases_expire(f->s, T0 + S(WORK_TTL_DEFAULT_S), 8, envs, &n_envs, &n_expired));
	assert_int_equal(1, n_expired);
	assert_int_equal(ERR_OK, f->s->ops->work_get(f->s, "env_d", good, &w));
	assert_int_equal(WORK_QUEUED, w.lease.state);
	work_item_clear(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unknown_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_metadata_and_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweeper_skips_a_corrupt_row, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
