/* test_waiters_guard.c - the lost-wake-up guard of src/wait/waiters.c.
 *
 * A poll reads its environment's wake sequence, tries to claim, finds nothing, and parks.
 * An item that arrives between the claim and the parking wakes nobody (nobody is parked
 * yet); the guard is that parking with a sequence that moved on refuses to park, so the
 * poll claims again at once instead of sleeping until its deadline with work queued.
 * The refusal happens before the request is touched, so no connection is needed: were the
 * guard gone, the waiter would park and suspend its (absent) request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "common/clock.h"
#include "wait/waiters.h"

static int64_t wall, mono;
static int suspended;

/* Parking suspends its request; the guard refuses before that, so these must not run. */
static void count_suspend(void *req) { suspended++; }
static void count_resume(void *req) {}
static const struct waiter_hooks hooks = {count_suspend, count_resume};

static int setup(void **state)
{
	wall = 1700000000LL * 1000000;
	mono = 1000000;
	clock_set_fake(&wall, &mono);
	suspended = 0;
	*state = waiters_new(16, 16, &hooks);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	waiters_free(*state);
	clock_set_fake(NULL, NULL);
	return 0;
}

static struct waiter waiter_for(const char *env_id)
{
	struct waiter wt = {.req = NULL, .wake_mono = mono + 999000};
	snprintf(wt.env_id, sizeof(wt.env_id), "%s", env_id);
	return wt;
}

/* A wake between reading the sequence and parking: the park is refused (retry the claim). */
static void test_wake_before_park_is_not_lost(void **state)
{
	struct waiters *w = *state;
	uint64_t seen = waiters_seq(w, "env_a");
	waiters_wake(w, "env_a", 1); /* an enqueue lands while the poll's claim found nothing */
	struct waiter wt = waiter_for("env_a");
	assert_int_equal(1, waiters_park(w, &wt, seen));
	assert_int_equal(0, waiters_count(w));
	assert_int_equal(0, wt.parked);
	assert_int_equal(0, suspended);
}

/* The same for a wake of every waiter (a lease expiry) and for several wakes in a row. */
static void test_any_number_of_wakes_is_seen(void **state)
{
	struct waiters *w = *state;
	uint64_t seen = waiters_seq(w, "env_b");
	waiters_wake(w, "env_b", 0);
	waiters_wake(w, "env_b", 1);
	struct waiter wt = waiter_for("env_b");
	assert_int_equal(1, waiters_park(w, &wt, seen));
	/* A fresh read of the sequence is what the retry parks with next time. */
	assert_int_equal(seen + 2, waiters_seq(w, "env_b"));
	assert_int_equal(0, waiters_count(w));
	assert_int_equal(0, suspended);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wake_before_park_is_not_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_any_number_of_wakes_is_seen, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
