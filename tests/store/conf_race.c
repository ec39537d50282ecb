/* conf_race.c - verbs racing on one store from many threads (on PostgreSQL through a
 * pool of several connections): every item is delivered exactly once, a twice-delivered
 * item is acknowledged by exactly one of its holders, and a session gets one live item
 * however many enqueue it at once. Threads only record; the main thread asserts. */
#include "conformance.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 8
#define ITEMS 240
#define ROUNDS 40

struct race {
	struct conf *c;
	struct tenant t;
	char env[ID_MAX];
	pthread_barrier_t round; /* threads that race round by round */
	char (*ids)[ID_MAX];     /* ITEMS */
	int claimed[THREADS];    /* per thread */
	char (*got)[ID_MAX];     /* THREADS * ITEMS */
	int errors[THREADS];     /* verbs that failed other than as expected */
	int extra[THREADS];      /* claims beyond ITEMS by one thread: double deliveries */
	int wins[ITEMS];         /* per item: successful acks / created enqueues */
	char made[ROUNDS][THREADS][ID_MAX];
};

static struct race *race_new(void **state, const char *prefix)
{
	struct race *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->c = *state;
	conf_tenant(r->c, prefix, &r->t);
	conf_env_id(r->c, &r->t, conf_tick(r->c, 1000), r->env);
	r->ids = calloc(ITEMS, ID_MAX);
	r->got = calloc((size_t)THREADS * ITEMS, ID_MAX);
	assert_non_null(r->ids);
	assert_non_null(r->got);
	pthread_barrier_init(&r->round, NULL, THREADS);
	return r;
}

static void race_free(struct race *r)
{
	pthread_barrier_destroy(&r->round);
	free(r->ids);
	free(r->got);
	free(r);
}

static void run(struct race *r, conf_thread_fn fn)
{
	conf_threads(THREADS, fn, r);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(0, r->errors[i]);
}

/* Claim until the queue is empty; a delivery is never reclaimable within the test. */
static void claimer(void *arg, int me)
{
	struct race *r = arg;
	for (int i = 0; i < ITEMS * 2; i++) {
		struct work_item w;
		enum err rc = w_claim(r->c, &r->t, r->env, NULL, US(3600), CONF_T0 + US(60) + i, &w, NULL);
		if (rc == ERR_NOT_FOUND)
			break;
		if (rc) {
			r->errors[me]++;
			continue;
		}
		if (r->claimed[me] < ITEMS)
			snprintf(r->got[me * ITEMS + r->claimed[me]++], ID_MAX, "%s", w.id);
		else
			r->extra[me]++;
		work_item_clear(&w);
	}
}

static int by_id(const void *a, const void *b) { return strcmp(a, b); }

static void test_concurrent_claims_deliver_once(void **state)
{
	struct race *r = race_new(state, "claims");
	for (int i = 0; i < ITEMS; i++)
		w_enqueue_ok(r->c, &r->t, r->env, CONF_T0 + i, r->ids[i]);
	run(r, claimer);
	/* Every item delivered, none to two holders. */
	char (*all)[ID_MAX] = calloc((size_t)THREADS * ITEMS, ID_MAX);
	assert_non_null(all);
	size_t n = 0;
	int extra = 0;
	for (int t = 0; t < THREADS; t++) {
		extra += r->extra[t];
		for (int i = 0; i < r->claimed[t]; i++)
			memcpy(all[n++], r->got[t * ITEMS + i], ID_MAX);
	}
	qsort(all, n, ID_MAX, by_id);
	size_t twice = 0;
	for (size_t i = 1; i < n; i++)
		twice += strcmp(all[i - 1], all[i]) == 0;
	free(all);
	if (twice || extra || n != ITEMS)
		fail_msg("%zu deliveries of %d items (%zu to a second holder, %d more beyond)", n + (size_t)extra, ITEMS,
			 twice, extra);
	for (int i = 0; i < ITEMS; i++) {
		struct work_item w;
		assert_int_equal(ERR_OK, w_get(r->c, &r->t, r->env, r->ids[i], &w));
		assert_int_equal(1, w.lease.delivery_count);
		work_item_clear(&w);
	}
	struct work_stats st;
	assert_int_equal(ERR_OK, w_stats(r->c, &r->t, r->env, &st));
	assert_int_equal(0, st.depth);
	assert_int_equal(ITEMS, st.pending);
	race_free(r);
}

/* Every thread acknowledges every item with the environment key: each item was
 * delivered twice, so exactly one ack may hold it (model/work.h, T5). */
static void acker(void *arg, int me)
{
	struct race *r = arg;
	for (int i = 0; i < ROUNDS; i++) {
		pthread_barrier_wait(&r->round);
		enum err rc;
		int st = w_ack(r->c, &r->t, r->env, r->ids[i], CONF_T0 + US(120) + i, &rc);
		if (st == WORK_STARTING)
			__atomic_fetch_add(&r->wins[i], 1, __ATOMIC_SEQ_CST);
		else if (rc != ERR_CONFLICT)
			r->errors[me]++;
	}
}

static void test_concurrent_acks_one_wins(void **state)
{
	struct race *r = race_new(state, "acks");
	for (int i = 0; i < ROUNDS; i++)
		w_enqueue_ok(r->c, &r->t, r->env, CONF_T0 + i, r->ids[i]);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < ROUNDS; i++) {
			struct work_item w;
			/* First every item fresh, then each one reclaimed: two deliveries apiece. */
			int64_t reclaim = pass ? 0 : US(3600);
			assert_int_equal(ERR_OK, w_claim(r->c, &r->t, r->env, NULL, reclaim,
							 CONF_T0 + US(60) + pass * ROUNDS + i, &w, NULL));
			assert_string_equal(r->ids[i], w.id);
			work_item_clear(&w);
		}
	}
	run(r, acker);
	for (int i = 0; i < ROUNDS; i++) {
		if (r->wins[i] != 1)
			fail_msg("work %s: %d of %d concurrent acks held it", r->ids[i], r->wins[i], THREADS);
	}
	race_free(r);
}

static void enqueuer(void *arg, int me)
{
	struct race *r = arg;
	for (int i = 0; i < ROUNDS; i++) {
		char data_id[32];
		snprintf(data_id, sizeof(data_id), "sesn_race_%d", i);
		pthread_barrier_wait(&r->round);
		struct work_item w;
		int created = 0;
		enum err rc = w_enqueue(r->c, &r->t, r->env, "session", data_id, NULL, CONF_T0 + US(10) + i, &w, &created);
		if (rc) {
			r->errors[me]++;
			continue;
		}
		if (created)
			__atomic_fetch_add(&r->wins[i], 1, __ATOMIC_SEQ_CST);
		snprintf(r->made[i][me], ID_MAX, "%s", w.id);
		work_item_clear(&w);
	}
}

static void test_concurrent_enqueue_one_live_item(void **state)
{
	struct race *r = race_new(state, "enq");
	run(r, enqueuer);
	for (int i = 0; i < ROUNDS; i++) {
		if (r->wins[i] != 1)
			fail_msg("session %d: %d of %d concurrent enqueues created an item", i, r->wins[i], THREADS);
		for (int t = 1; t < THREADS; t++)
			assert_string_equal(r->made[i][0], r->made[i][t]);
	}
	struct work_stats st;
	assert_int_equal(ERR_OK, w_stats(r->c, &r->t, r->env, &st));
	assert_int_equal(ROUNDS, st.depth);
	race_free(r);
}

/* An enqueue that meets an archive of its environment being committed waits for it and
 * is refused: it checks the environment in its own transaction, under a row lock that the
 * archive's conflicts with. The archive is played by hand on a connection of the test's
 * own, which holds the environment's row FOR UPDATE while the enqueue runs. PostgreSQL
 * only: SQLite has one writer, which orders them by itself (tests/sdk/env_races.test.js
 * holds a SQLite archive in its fsync instead). */
struct enq_race {
	struct conf *c;
	const struct tenant *t;
	const char *env;
	int64_t now;
	enum err rc;
	int done;
};

static void *enq_racer(void *arg)
{
	struct enq_race *e = arg;
	struct work_item w;
	int created = 0;
	e->rc = w_enqueue(e->c, e->t, e->env, "healthcheck", "race-archive", NULL, e->now, &w, &created);
	if (e->rc == ERR_OK)
		work_item_clear(&w);
	__atomic_store_n(&e->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void pg_ok(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

/* Does another backend of this database wait for a lock? */
static int pg_lock_waiter(PGconn *pg)
{
	PGresult *r = PQexec(pg, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
				 " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()");
	int n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	return n > 0;
}

static void test_enqueue_waits_for_archive(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "enqarch");
	if (!f.c->postgres)
		skip();
	PGconn *pg = PQconnectdb(f.c->url);
	if (PQstatus(pg) != CONNECTION_OK)
		fail_msg("cannot connect to %s: %s", f.c->url, PQerrorMessage(pg));
	char sql[256];
	pg_ok(pg, "BEGIN");
	snprintf(sql, sizeof(sql), "SELECT id FROM environments WHERE id = '%s' FOR UPDATE", f.env);
	pg_ok(pg, sql);
	struct enq_race e = {.c = f.c, .t = &f.t, .env = f.env, .now = conf_tick(f.c, 1000)};
	pthread_t th;
	assert_int_equal(0, pthread_create(&th, NULL, enq_racer, &e));
	/* Bounded: the enqueue either queues behind the row lock or (wrongly) goes ahead. */
	int waiting = 0;
	for (int i = 0; i < 5000 && !waiting && !__atomic_load_n(&e.done, __ATOMIC_SEQ_CST); i++) {
		waiting = pg_lock_waiter(pg);
		if (!waiting)
			usleep(1000);
	}
	int went_ahead = __atomic_load_n(&e.done, __ATOMIC_SEQ_CST) && e.rc == ERR_OK;
	snprintf(sql, sizeof(sql), "UPDATE environments SET archived_at = %lld WHERE id = '%s'",
		 (long long)conf_tick(f.c, 1000), f.env);
	pg_ok(pg, sql);
	pg_ok(pg, "COMMIT");
	PQfinish(pg);
	pthread_join(th, NULL);
	if (went_ahead)
		fail_msg("the enqueue was let in while an archive of its environment held the environment's row");
	assert_true(waiting);
	if (e.rc == ERR_OK)
		fail_msg("an enqueue that waited for an archive of its environment was let in after it");
	struct work_stats st;
	assert_int_equal(ERR_OK, w_stats(f.c, &f.t, f.env, &st));
	assert_int_equal(0, st.depth);
}

/* Half the threads heartbeat every item just before its lease runs out, the other half
 * sweep expired leases at the moment it would have run out: a heartbeat that was answered
 * renewed the lease, and the sweep must not requeue the item after it. Each round races
 * its own items (the sweep takes them all in one batch: a wide window), from `first`. */
#define LEASE_S 30
#define LEASED 80
#define LEASE_ROUNDS 3
struct lease_race {
	struct race *r;
	int first;
	int64_t end; /* when every lease of the round runs out */
};

static void lease_racer(void *arg, int me)
{
	struct lease_race *l = arg;
	struct race *r = l->r;
	if (me % 2 == 0) {
		for (int i = l->first + me / 2; i < l->first + LEASED; i += THREADS / 2) {
			enum err rc;
			int st = w_beat(r->c, &r->t, r->env, r->ids[i], WORK_EXPECT_OMITTED, 0, LEASE_S, l->end - 1, NULL, &rc);
			if (st == WORK_ACTIVE)
				__atomic_store_n(&r->wins[i], 1, __ATOMIC_SEQ_CST);
			else if (rc != ERR_CONFLICT) /* already swept back to the queue: T12 */
				r->errors[me]++;
		}
	} else {
		char(*envs)[ID_MAX] = calloc(LEASED, ID_MAX);
		for (int i = 0; envs && i < 8; i++) {
			size_t n_envs, n_expired;
			if (l_expire(r->c, l->end, LEASED, envs, &n_envs, &n_expired))
				r->errors[me]++;
		}
		free(envs);
	}
}

static void test_heartbeat_never_undone_by_lease_sweep(void **state)
{
	struct race *r = race_new(state, "sweep");
	for (int round = 0; round < LEASE_ROUNDS; round++) {
		int64_t base = CONF_T0 + round * US(1000);
		struct lease_race l = {r, round * LEASED, base + US(100) + US(LEASE_S)};
		for (int i = l.first; i < l.first + LEASED; i++) {
			w_enqueue_ok(r->c, &r->t, r->env, base + i, r->ids[i]);
			struct work_item w;
			assert_int_equal(ERR_OK, w_claim(r->c, &r->t, r->env, NULL, US(3600), base + US(50) + i, &w, NULL));
			assert_string_equal(r->ids[i], w.id);
			work_item_clear(&w);
			assert_int_equal(WORK_STARTING, w_ack(r->c, &r->t, r->env, r->ids[i], base + US(60), NULL));
			/* Every lease of the round ends at the same time. */
			assert_int_equal(WORK_ACTIVE, w_beat(r->c, &r->t, r->env, r->ids[i], WORK_EXPECT_NONE, 0, LEASE_S,
							    base + US(100), NULL, NULL));
		}
		conf_threads(THREADS, lease_racer, &l);
		for (int i = 0; i < THREADS; i++)
			assert_int_equal(0, r->errors[i]);
		for (int i = l.first; i < l.first + LEASED; i++) {
			if (!r->wins[i])
				continue;
			struct work_item w;
			assert_int_equal(ERR_OK, w_get(r->c, &r->t, r->env, r->ids[i], &w));
			int now_state = w.lease.state;
			work_item_clear(&w);
			if (now_state != WORK_ACTIVE)
				fail_msg("work %s was renewed by a heartbeat, then requeued by the sweep (state %d)", r->ids[i],
					 now_state);
		}
		/* Out of the next round's way: what is still active stops. */
		for (int i = l.first; i < l.first + LEASED; i++)
			w_stop(r->c, &r->t, r->env, r->ids[i], 1, l.end + 1, NULL);
	}
	race_free(r);
}

int conf_group_race(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_concurrent_claims_deliver_once),
		CONF_TEST(test_concurrent_acks_one_wins),
		CONF_TEST(test_concurrent_enqueue_one_live_item),
		CONF_TEST(test_enqueue_waits_for_archive),
		CONF_TEST(test_heartbeat_never_undone_by_lease_sweep),
	};
	return cmocka_run_group_tests_name("store conformance: concurrency", tests, NULL, NULL);
}
