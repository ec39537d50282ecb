/* test_seen.c - unit tests of the recently-polling workers table (src/api/seen.c).
 *
 * Counting per environment within the window; one environment's ids bounded by
 * SEEN_PER_ENV_MAX (its own oldest go first); and the global bound: when the table is
 * full, ids sent to one environment never push out another, smaller environment's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/seen.h"

#define SEC 1000000LL

static void touch_n(struct seen *s, const char *env, const char *prefix, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++) {
		char id[64];
		snprintf(id, sizeof(id), "%s-%zu", prefix, i);
		seen_touch(s, env, id, now);
	}
}

static void test_counts_per_environment(void **state)
{
	struct seen *s = seen_new(1000);
	assert_non_null(s);
	touch_n(s, "env_a", "w", 3, 1 * SEC);
	touch_n(s, "env_a", "w", 3, 2 * SEC); /* the same three again */
	touch_n(s, "env_b", "w", 2, 2 * SEC);
	assert_int_equal(3, seen_count(s, "env_a", 3 * SEC));
	assert_int_equal(2, seen_count(s, "env_b", 3 * SEC));
	assert_int_equal(0, seen_count(s, "env_c", 3 * SEC));
	/* Out of the window. */
	assert_int_equal(0, seen_count(s, "env_a", 2 * SEC + SEEN_WINDOW_US));
	seen_free(s);
}

static void test_per_environment_bound(void **state)
{
	struct seen *s = seen_new(100000);
	touch_n(s, "env_a", "old", SEEN_PER_ENV_MAX, 1 * SEC);
	touch_n(s, "env_a", "new", 10, 2 * SEC);
	assert_int_equal(SEEN_PER_ENV_MAX, seen_count(s, "env_a", 3 * SEC));
	/* The newest ids are the ones kept. */
	touch_n(s, "env_a", "new", 10, 3 * SEC);
	assert_int_equal(SEEN_PER_ENV_MAX, seen_count(s, "env_a", 3 * SEC));
	seen_free(s);
}

/* Tenant A floods many environments until the whole table is full; B's few workers are
 * still counted, and a new environment of B gets room. */
static void test_global_bound_does_not_starve(void **state)
{
	struct seen *s = seen_new(4 * SEEN_PER_ENV_MAX);
	touch_n(s, "env_b", "b", 5, 1 * SEC);
	for (int e = 0; e < 8; e++) {
		char env[32];
		snprintf(env, sizeof(env), "env_a%d", e);
		touch_n(s, env, "a", SEEN_PER_ENV_MAX, 2 * SEC);
	}
	assert_int_equal(5, seen_count(s, "env_b", 3 * SEC));
	touch_n(s, "env_b2", "b", 3, 3 * SEC);
	assert_int_equal(3, seen_count(s, "env_b2", 3 * SEC));
	assert_int_equal(5, seen_count(s, "env_b", 3 * SEC));
	/* Stale entries make room before live ones are dropped. */
	touch_n(s, "env_c", "c", 7, 2 * SEC + SEEN_WINDOW_US);
	assert_int_equal(7, seen_count(s, "env_c", 2 * SEC + SEEN_WINDOW_US));
	seen_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_per_environment),
		cmocka_unit_test(test_per_environment_bound),
		cmocka_unit_test(test_global_bound_does_not_starve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
