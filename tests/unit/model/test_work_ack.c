/* test_work_ack.c - which acks of a starting item the state machine accepts (T4/T5).
 *
 * After a reclaim (T3) the holder of the replaced delivery may still ack. An ack with the
 * environment key cannot say which delivery it is for, so once an item was delivered more
 * than once in its queue cycle only the first ack wins; a retry is accepted only when it
 * cannot be another holder's (one delivery, or the acking delivery's own session token). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "model/work.h"

#define S(s) ((int64_t)(s) * 1000000)
#define T0 S(1795880057)

static const struct work_input env_key = {.reclaim_older_than_us = S(5)};
static const struct work_input token = {.reclaim_older_than_us = S(5), .delivery_proven = 1};

static void deliver(struct work_lease *w, int64_t now)
{
	assert_int_equal(ERR_OK, work_transition(w, WORK_EV_POLL, &env_key, now, NULL));
}

static void test_one_delivery_retries_are_accepted(void **state)
{
	struct work_lease w = {.state = WORK_QUEUED};
	deliver(&w, T0);
	assert_int_equal(1, w.cycle_deliveries);
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &env_key, T0 + S(1), NULL));
	assert_int_equal(WORK_STARTING, w.state);
	assert_int_equal(0, w.ack_proven);
	/* The reply was lost and the same poller acks again, with either credential. */
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &env_key, T0 + S(2), NULL));
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &token, T0 + S(2), NULL));
	assert_int_equal(WORK_STARTING, w.state);
}

static void test_after_a_reclaim_only_the_first_env_key_ack_wins(void **state)
{
	struct work_lease w = {.state = WORK_QUEUED};
	deliver(&w, T0);          /* poller A */
	deliver(&w, T0 + S(5));   /* reclaimed by poller B */
	assert_int_equal(2, w.cycle_deliveries);
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &env_key, T0 + S(6), NULL));
	struct work_lease before = w;
	/* The other poller's ack: it cannot be told from a retry, so it is refused. */
	assert_int_equal(ERR_CONFLICT, work_transition(&w, WORK_EV_ACK, &env_key, T0 + S(6), NULL));
	assert_int_equal(ERR_CONFLICT, work_transition(&w, WORK_EV_ACK, &token, T0 + S(6), NULL));
	assert_memory_equal(&before, &w, sizeof(w));
	/* Active too. */
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_HEARTBEAT, NULL, T0 + S(7), NULL));
	assert_int_equal(WORK_ACTIVE, w.state);
	assert_int_equal(ERR_CONFLICT, work_transition(&w, WORK_EV_ACK, &env_key, T0 + S(8), NULL));
}

static void test_after_a_reclaim_a_token_ack_may_retry(void **state)
{
	struct work_lease w = {.state = WORK_QUEUED};
	deliver(&w, T0);
	deliver(&w, T0 + S(5));
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &token, T0 + S(6), NULL));
	assert_int_equal(1, w.ack_proven);
	/* The token is the current delivery's (the store checks that), and it acked. */
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &token, T0 + S(7), NULL));
	/* An env-key ack may be the replaced holder's. */
	assert_int_equal(ERR_CONFLICT, work_transition(&w, WORK_EV_ACK, &env_key, T0 + S(7), NULL));
}

static void test_lease_expiry_starts_a_new_cycle(void **state)
{
	struct work_lease w = {.state = WORK_QUEUED};
	deliver(&w, T0);
	deliver(&w, T0 + S(5));
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &token, T0 + S(6), NULL));
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_LEASE_EXPIRE, NULL, T0 + S(6 + WORK_TTL_DEFAULT_S), NULL));
	assert_int_equal(WORK_QUEUED, w.state);
	assert_int_equal(0, w.cycle_deliveries);
	assert_int_equal(0, w.ack_proven);
	assert_int_equal(2, w.delivery_count);
	deliver(&w, T0 + S(200));
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &env_key, T0 + S(201), NULL));
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, &env_key, T0 + S(202), NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_delivery_retries_are_accepted),
		cmocka_unit_test(test_after_a_reclaim_only_the_first_env_key_ack_wins),
		cmocka_unit_test(test_after_a_reclaim_a_token_ack_may_retry),
		cmocka_unit_test(test_lease_expiry_starts_a_new_cycle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
