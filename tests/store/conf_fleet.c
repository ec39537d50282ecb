/* conf_fleet.c - what the processes sharing a store tell each other: workers seen polling
 * (every node's sightings counted together) and wake-ups (subscribe, publish, wake_epoch).
 * A single-process store (SQLite) takes the same calls and answers them as one process;
 * a shared one (PostgreSQL, fleet set) delivers one process's wakes to another's. Waits
 * are for a condition, bounded by a generous guard, never a guessed sleep. */
#include "conformance.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GUARD_S 10
#define KEYS_MAX 64

static void seen(struct worker_seen *w, const char *env, const char *worker, int64_t at)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->environment_id, sizeof(w->environment_id), "%s", env);
	snprintf(w->worker, sizeof(w->worker), "%s", worker);
	w->seen_at = at;
}

static int64_t polling(struct conf *c, const char *env, int64_t since)
{
	int64_t n = -1;
	assert_int_equal(ERR_OK, c->s->ops->workers_polling(c->s, env, since, &n));
	return n;
}

static void test_workers_seen(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	int64_t t1 = conf_tick(c, US(1)), t2 = conf_tick(c, US(10)), t3 = conf_tick(c, US(10));
	struct worker_seen rows[3];
	seen(&rows[0], "env_a", "00000000000000a1", t1);
	seen(&rows[1], "env_a", "00000000000000a2", t2);
	seen(&rows[2], "env_b", "00000000000000a1", t2);
	assert_int_equal(ERR_OK, s->ops->workers_seen(s, rows, 3, 0));
	/* Counted per environment, since a time (exclusive). */
	assert_int_equal(2, polling(c, "env_a", t1 - 1));
	assert_int_equal(1, polling(c, "env_a", t1));
	assert_int_equal(1, polling(c, "env_b", t1));
	assert_int_equal(0, polling(c, "env_c", 0));
	/* A worker is one row: a later sighting moves it forward, an older one (another node's
	 * batch arriving late) never moves it back. */
	assert_int_equal(0, polling(c, "env_a", t2));
	seen(&rows[0], "env_a", "00000000000000a1", t3);
	assert_int_equal(ERR_OK, s->ops->workers_seen(s, rows, 1, 0));
	assert_int_equal(1, polling(c, "env_a", t2));
	seen(&rows[0], "env_a", "00000000000000a1", t1);
	assert_int_equal(ERR_OK, s->ops->workers_seen(s, rows, 1, 0));
	assert_int_equal(1, polling(c, "env_a", t2));
	assert_int_equal(2, polling(c, "env_a", 0));
	/* Rows last seen before prune_before go. */
	assert_int_equal(ERR_OK, s->ops->workers_seen(s, NULL, 0, t3));
	assert_int_equal(1, polling(c, "env_a", 0));
	assert_int_equal(0, polling(c, "env_b", 0));
	int64_t n = -1;
	assert_int_equal(ERR_OK, s->ops->workers_polling(s, "env_a", t3, &n));
	assert_int_equal(0, n);
}

/* What a subscriber heard. */
struct heard {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char keys[KEYS_MAX][ID_MAX + 16];
	size_t n;
	int everything; /* a NULL key: look again at everything */
};

static void heard_init(struct heard *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
}

static void heard_free(struct heard *h)
{
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
}

static void on_wake(void *arg, const char *key, size_t n)
{
	struct heard *h = arg;
	(void)n;
	pthread_mutex_lock(&h->lock);
	if (!key)
		h->everything++;
	else if (h->n < KEYS_MAX)
		snprintf(h->keys[h->n++], sizeof(h->keys[0]), "%s", key);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static int has_key(struct heard *h, const char *key)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->keys[i], key) == 0)
			return 1;
	return 0;
}

/* Wait until `key` was heard; 0 when the guard ran out first. */
static int wait_key(struct heard *h, const char *key)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += GUARD_S;
	pthread_mutex_lock(&h->lock);
	int rc = 0;
	while (!has_key(h, key) && rc == 0)
		rc = pthread_cond_timedwait(&h->cond, &h->lock, &until);
	int found = has_key(h, key);
	pthread_mutex_unlock(&h->lock);
	return found;
}

/* Wait until every other process's wakes reach this one (wake_epoch 0). */
static int wait_epoch(struct store *s, uint64_t *epoch)
{
	for (int i = 0; i < GUARD_S * 100; i++) {
		if (s->ops->wake_epoch(s, epoch) == 0)
			return 1;
		struct timespec tick = {0, 10 * 1000 * 1000};
		nanosleep(&tick, NULL); /* polling a condition, bounded by the guard */
	}
	return 0;
}

static void test_wakes(void **state)
{
	struct conf *c = *state;
	struct heard mine;
	heard_init(&mine);
	assert_int_equal(ERR_OK, c->s->ops->subscribe(c->s, on_wake, &mine));
	uint64_t epoch;
	assert_true(wait_epoch(c->s, &epoch));
	if (!c->s->fleet) {
		/* One process: nothing is ever missed, publishing reaches no one else. */
		c->s->ops->publish(c->s, "env_x", 1);
		uint64_t again;
		assert_int_equal(0, c->s->ops->wake_epoch(c->s, &again));
		assert_int_equal(epoch, again);
		assert_int_equal(ERR_OK, c->s->ops->subscribe(c->s, NULL, NULL));
		heard_free(&mine);
		return;
	}
	/* Another process on the same store. */
	struct store *other;
	struct errbuf eb = {{0}};
	assert_int_equal(ERR_OK, store_open(c->url, 2, &other, &eb));
	struct heard theirs;
	heard_init(&theirs);
	assert_int_equal(ERR_OK, other->ops->subscribe(other, on_wake, &theirs));
	uint64_t other_epoch;
	assert_true(wait_epoch(other, &other_epoch));
	/* A publish reaches the other process; a revocation's own commit wakes every process
	 * to forget cached credentials. */
	c->s->ops->publish(c->s, "env_published", 1);
	assert_true(wait_key(&theirs, "env_published"));
	struct tenant t;
	conf_tenant(c, "wake", &t);
	char env[ID_MAX], h[SECRET_HASH_HEX + 1];
	conf_env_id(c, &t, conf_tick(c, 1000), env);
	conf_hash("envd_env_wake", h);
	struct env_key k;
	assert_int_equal(ERR_OK, k_create(c, &t, env, "k", h, conf_tick(c, 1000), &k));
	assert_int_equal(ERR_OK, k_revoke(c, &t, env, k.id));
	assert_true(wait_key(&theirs, STORE_KEY_CREDENTIALS));
	assert_true(wait_key(&mine, STORE_KEY_CREDENTIALS));
	/* Stopped: no more deliveries; a second subscription while one runs is refused. */
	assert_int_equal(ERR_INVALID, other->ops->subscribe(other, on_wake, &theirs));
	assert_int_equal(ERR_OK, other->ops->subscribe(other, NULL, NULL));
	assert_int_equal(ERR_OK, c->s->ops->subscribe(c->s, NULL, NULL));
	other->ops->close(other);
	heard_free(&theirs);
	heard_free(&mine);
}

int conf_group_fleet(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_workers_seen),
		CONF_TEST(test_wakes),
	};
	return cmocka_run_group_tests_name("store conformance: fleet", tests, NULL, NULL);
}
