/* test_waiters.c - the per-environment wake sequence and the collection of idle entries
 * (src/wait/waiters.c), on the fake clock. Parking needs a live connection and is covered
 * by the SDK suites (held_polls.test.js, work_queue.test.js). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "common/clock.h"
#include "wait/waiters.h"

static int64_t wall, mono;

static int setup(void **state)
{
	wall = 1700000000LL * 1000000;
	mono = 1000000;
	clock_set_fake(&wall, &mono);
	*state = waiters_new(16);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wake_bumps_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collect_drops_only_idle_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sleep_returns_at_once_when_due, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
