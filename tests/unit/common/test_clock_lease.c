/* test_clock_lease.c - lease time and the test clock (src/common/clock.c).
 *
 * Lease time is wall time anchored once and then moved by the monotonic clock only, so a
 * step of the wall clock never moves it; the test clock's advance moves wall, monotonic
 * and lease time together, its wall step moves wall time alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/clock.h"

#define S(s) ((int64_t)(s) * 1000000)

static void test_lease_follows_monotonic_not_wall(void **state)
{
	int64_t wall = S(1795880057), mono = S(1000);
	clock_set_fake(&wall, &mono);
	assert_int_equal(wall, clock_lease_us()); /* anchored at the first reading */
	mono += S(5);
	wall += S(5);
	assert_int_equal(S(1795880057) + S(5), clock_lease_us());
	wall += S(3600); /* the wall clock steps an hour ahead */
	assert_int_equal(S(1795880057) + S(5), clock_lease_us());
	wall -= S(7200); /* and two hours back */
	mono += S(1);
	assert_int_equal(S(1795880057) + S(6), clock_lease_us());
	/* A new anchor (a restart) takes the wall clock as it is now. */
	clock_lease_anchor();
	assert_int_equal(wall, clock_lease_us());
	clock_set_fake(NULL, NULL);
}

static void test_reanchored_after_fake(void **state)
{
	int64_t wall = S(100), mono = S(7);
	clock_set_fake(&wall, &mono);
	assert_int_equal(S(100), clock_lease_us());
	int64_t wall2 = S(5000), mono2 = S(9);
	clock_set_fake(&wall2, &mono2);
	assert_int_equal(S(5000), clock_lease_us());
	clock_set_fake(NULL, NULL);
}

static void test_test_clock_offsets(void **state)
{
	clock_lease_anchor();
	int64_t wall0 = clock_wall_us(), mono0 = clock_mono_us(), lease0 = clock_lease_us();
	clock_test_advance(S(90));
	int64_t wall1 = clock_wall_us(), mono1 = clock_mono_us(), lease1 = clock_lease_us();
	/* Real time passes too, but far less than a minute. */
	assert_true(wall1 - wall0 >= S(90) && wall1 - wall0 < S(150));
	assert_true(mono1 - mono0 >= S(90) && mono1 - mono0 < S(150));
	assert_true(lease1 - lease0 >= S(90) && lease1 - lease0 < S(150));
	clock_test_step_wall(-S(3600));
	int64_t wall2 = clock_wall_us(), mono2 = clock_mono_us(), lease2 = clock_lease_us();
	assert_true(wall1 - wall2 > S(3500));
	assert_true(mono2 >= mono1 && mono2 - mono1 < S(60));
	assert_true(lease2 >= lease1 && lease2 - lease1 < S(60));
	int64_t adv, step;
	clock_test_offsets(&adv, &step);
	assert_int_equal(S(90), adv);
	assert_int_equal(-S(3600), step);
	clock_test_advance(-S(90));
	clock_test_step_wall(S(3600));
	clock_test_offsets(&adv, &step);
	assert_int_equal(0, adv);
	assert_int_equal(0, step);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease_follows_monotonic_not_wall),
		cmocka_unit_test(test_reanchored_after_fake),
		cmocka_unit_test(test_test_clock_offsets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
