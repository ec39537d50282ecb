/* test_waiters.c - src/wait/waiters.c on the fake clock, with fake suspend/resume hooks:
 * the per-key wake sequence, parking (FIFO wake order, deadlines, the lost-wake-up rule,
 * the limits per kind: polls and streams) and the collection of idle entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/clock.h"
#include "wait/waiters.h"

static int64_t wall, mono;

/* A fake request: the hooks record what happened to it. */
struct fake_req {
	int suspended;
	int resumes;
	int order; /* resume order, 1-based */
};
static int resume_counter;

static void fake_suspend(void *req) { ((struct fake_req *)req)->suspended = 1; }
static void fake_resume(void *req)
{
	struct fake_req *r = req;
	assert_true(r->suspended); /* never resumed twice, never resumed unsuspended */
	r->suspended = 0;
	r->resumes++;
	r->order = ++resume_counter;
}
static const struct waiter_hooks hooks = {fake_suspend, fake_resume};

static int setup(void **state)
{
	wall = 1700000000LL * 1000000;
	mono = 1000000;
	resume_counter = 0;
	clock_set_fake(&wall, &mono);
	*state = waiters_new(4, 2, &hooks);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	waiters_free(*state);
	clock_set_fake(NULL, NULL);
	return 0;
}

static void test_wake_bumps_sequence(void **state)
{
	struct waiters *w = *state;
	assert_int_equal(0, waiters_seq(w, "env_a"));
	waiters_wake(w, "env_a", 1);
	assert_int_equal(1, waiters_seq(w, "env_a"));
	waiters_wake(w, "env_a", 0);
	assert_int_equal(2, waiters_seq(w, "env_a"));
	/* Environments are independent. */
	assert_int_equal(0, waiters_seq(w, "env_b"));
	assert_int_equal(0, waiters_count(w));
}

static void test_collect_drops_only_idle_entries(void **state)
{
	struct waiters *w = *state;
	waiters_wake(w, "env_old", 1);
	mono += 60 * 1000000LL;
	waiters_wake(w, "env_recent", 1);
	/* Nothing is idle for two minutes yet. */
	assert_int_equal(0, waiters_collect(w, mono));
	mono += 61 * 1000000LL;
	/* env_old was last touched 121 s ago, env_recent 61 s ago. */
	assert_int_equal(1, waiters_collect(w, mono));
	assert_int_equal(0, waiters_seq(w, "env_old"));
	assert_int_equal(1, waiters_seq(w, "env_recent"));
	/* Reading the sequence touched env_recent: it survives another 61 s. */
	mono += 61 * 1000000LL;
	assert_int_equal(0, waiters_collect(w, mono));
	mono += 121 * 1000000LL;
	assert_int_equal(1, waiters_collect(w, mono));
	assert_int_equal(0, waiters_collect(w, mono));
}

/* Real elapsed time: the sleep itself runs on the real monotonic clock. */
static int64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void test_sleep_returns_at_once_when_due(void **state)
{
	struct waiters *w = *state;
	/* A deadline already in the past: no wait, and no parked waiter to report. */
	assert_int_equal(INT64_MAX, waiters_sleep(w, mono - 1));
	/* A sleep sleeps... */
	int64_t t0 = real_us();
	assert_int_equal(INT64_MAX, waiters_sleep(w, mono + 50000));
	assert_true(real_us() - t0 >= 40000);
	/* ...unless interrupted: an interrupt before the sleep is not lost (30 s would be). */
	waiters_interrupt(w);
	t0 = real_us();
	assert_int_equal(INT64_MAX, waiters_sleep(w, mono + 30000000));
	assert_true(real_us() - t0 < 10000000);
}

static void park(struct waiters *w, struct waiter *wt, struct fake_req *r, const char *key, enum waiter_kind kind,
		 int64_t wake, int expect)
{
	memset(wt, 0, sizeof(*wt));
	wt->req = r;
	wt->kind = kind;
	wt->wake_mono = wake;
	snprintf(wt->env_id, sizeof(wt->env_id), "%s", key);
	assert_int_equal(expect, waiters_park(w, wt, waiters_seq(w, key)));
}

static void test_wake_resumes_oldest_first(void **state)
{
	struct waiters *w = *state;
	struct fake_req r[3] = {{0}};
	struct waiter wt[3];
	for (int i = 0; i < 3; i++)
		park(w, &wt[i], &r[i], "env_a", WAITER_POLL, mono + 1000000, 0);
	assert_true(r[0].suspended && r[1].suspended && r[2].suspended);
	assert_int_equal(3, waiters_count(w));
	waiters_wake(w, "env_a", 1);
	assert_int_equal(1, r[0].resumes);
	assert_int_equal(0, r[1].resumes);
	waiters_wake(w, "env_b", 0); /* another key wakes nobody here */
	assert_int_equal(0, r[1].resumes);
	waiters_wake(w, "env_a", 0);
	assert_int_equal(2, r[1].order);
	assert_int_equal(3, r[2].order);
	assert_int_equal(0, waiters_count(w));
}

/* wake_with hands the n oldest to its function, resumes none of them, and bumps the key's
 * sequence; n 0 takes nobody. */
static struct fake_req *taken[4];
static size_t n_taken;
static void take(void *req, void *arg)
{
	assert_ptr_equal(arg, &n_taken);
	taken[n_taken++] = req;
}

static void test_wake_with_hands_over_the_oldest(void **state)
{
	struct waiters *w = *state;
	struct fake_req r[3] = {{0}};
	struct waiter wt[3];
	for (int i = 0; i < 3; i++)
		park(w, &wt[i], &r[i], "env_a", WAITER_POLL, mono + 1000000, 0);
	n_taken = 0;
	uint64_t seq = waiters_seq(w, "env_a");
	assert_int_equal(0, waiters_wake_with(w, "env_a", 0, take, &n_taken));
	assert_int_equal(2, waiters_wake_with(w, "env_a", 2, take, &n_taken));
	assert_true(waiters_seq(w, "env_a") != seq);
	assert_int_equal(2, n_taken);
	assert_ptr_equal(&r[0], taken[0]);
	assert_ptr_equal(&r[1], taken[1]);
	assert_int_equal(0, r[0].resumes + r[1].resumes); /* taken, not resumed */
	assert_int_equal(1, waiters_count(w));
	assert_int_equal(1, waiters_wake_with(w, "env_a", 5, take, &n_taken));
	assert_ptr_equal(&r[2], taken[2]);
	assert_int_equal(0, waiters_count(w));
}

static void test_park_refuses_after_a_wake(void **state)
{
	struct waiters *w = *state;
	struct fake_req r = {0};
	struct waiter wt = {0};
	wt.req = &r;
	wt.wake_mono = mono + 1000;
	snprintf(wt.env_id, sizeof(wt.env_id), "stream:sesn_x");
	uint64_t seen = waiters_seq(w, wt.env_id);
	waiters_wake(w, wt.env_id, 0); /* an append between the read and the park */
	assert_int_equal(1, waiters_park(w, &wt, seen));
	assert_false(r.suspended);
	assert_int_equal(0, waiters_count(w));
}

static void test_expire_resumes_due_waiters_in_deadline_order(void **state)
{
	struct waiters *w = *state;
	struct fake_req r[3] = {{0}};
	struct waiter wt[3];
	park(w, &wt[0], &r[0], "env_a", WAITER_POLL, mono + 3000, 0);
	park(w, &wt[1], &r[1], "env_b", WAITER_POLL, mono + 1000, 0);
	park(w, &wt[2], &r[2], "stream:s", WAITER_STREAM, mono + 2000, 0);
	assert_int_equal(0, waiters_expire(w, mono + 999));
	assert_int_equal(2, waiters_expire(w, mono + 2000));
	assert_int_equal(1, r[1].order);
	assert_int_equal(2, r[2].order);
	assert_true(r[0].suspended);
	assert_int_equal(1, waiters_expire(w, mono + 5000));
	assert_int_equal(0, waiters_count(w));
}

static void test_limits_are_per_kind(void **state)
{
	struct waiters *w = *state; /* 4 polls, 2 streams */
	struct fake_req r[7] = {{0}};
	struct waiter wt[7];
	park(w, &wt[0], &r[0], "stream:a", WAITER_STREAM, mono + 1000, 0);
	park(w, &wt[1], &r[1], "stream:b", WAITER_STREAM, mono + 1000, 0);
	park(w, &wt[2], &r[2], "stream:c", WAITER_STREAM, mono + 1000, -1);
	assert_false(r[2].suspended);
	assert_int_equal(2, waiters_count_kind(w, WAITER_STREAM));
	for (int i = 3; i < 7; i++)
		park(w, &wt[i], &r[i], "env_a", WAITER_POLL, mono + 1000, 0);
	assert_int_equal(4, waiters_count_kind(w, WAITER_POLL));
	/* A stream that leaves frees its place for another. */
	waiters_wake(w, "stream:a", 0);
	park(w, &wt[2], &r[2], "stream:c", WAITER_STREAM, mono + 1000, 0);
	waiters_wake_all(w);
	for (int i = 1; i < 7; i++)
		assert_false(r[i].suspended);
	/* Closed: nobody parks any more. */
	park(w, &wt[0], &r[0], "env_a", WAITER_POLL, mono + 1000, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wake_bumps_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collect_drops_only_idle_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sleep_returns_at_once_when_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_resumes_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_with_hands_over_the_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_park_refuses_after_a_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_resumes_due_waiters_in_deadline_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_are_per_kind, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
