/* test_after_commit.c - unit tests of src/api/after_commit.c: effects are recorded only on
 * a thread that records, kept in order with what they name, and a list that cannot grow
 * says so (its owner then looks again at everything) instead of losing one silently. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/after_commit.h"

static void test_not_recording(void **state)
{
	assert_int_equal(0, after_commit_record(AFTER_WAKE, "env_1", 1, 0));
}

static void test_records_in_order(void **state)
{
	struct after_commit ac = {0};
	after_commit_record_into(&ac);
	assert_int_equal(1, after_commit_record(AFTER_WAKE, "env_1", 2, 0));
	assert_int_equal(1, after_commit_record(AFTER_FORGET_CREDENTIALS, NULL, 0, 0));
	assert_int_equal(1, after_commit_record(AFTER_LEASE_DUE, NULL, 0, 12345));
	assert_int_equal(1, after_commit_record(AFTER_WAKE_HERE, "env_2", 0, 0));
	after_commit_record_into(NULL);
	assert_int_equal(0, after_commit_record(AFTER_WAKE, "env_3", 1, 0)); /* stopped */
	assert_int_equal(4, ac.n);
	assert_int_equal(AFTER_WAKE, ac.list[0].kind);
	assert_string_equal("env_1", ac.list[0].key);
	assert_int_equal(2, ac.list[0].n);
	assert_int_equal(AFTER_FORGET_CREDENTIALS, ac.list[1].kind);
	assert_int_equal(AFTER_LEASE_DUE, ac.list[2].kind);
	assert_int_equal(12345, ac.list[2].at);
	assert_string_equal("env_2", ac.list[3].key);
	assert_int_equal(0, ac.overflow);
	after_commit_clear(&ac);
	assert_int_equal(0, ac.n);
	assert_null(ac.list);
}

static void test_overflow_is_said(void **state)
{
	struct after_commit ac = {0};
	after_commit_record_into(&ac);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(1, after_commit_record(AFTER_WAKE, "env_1", 1, 0));
	after_commit_record_into(NULL);
	assert_int_equal(1, ac.overflow);
	assert_true(ac.n <= 4096);
	after_commit_clear(&ac);
	assert_int_equal(0, ac.overflow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_recording),
		cmocka_unit_test(test_records_in_order),
		cmocka_unit_test(test_overflow_is_said),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
