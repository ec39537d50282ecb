/* test_fleet_caches.c - unit tests of what a node remembers so that an idle poll costs no
 * store round trip (src/api/cred_cache.c, src/api/poll_hint.c) and of the sightings a
 * fleet's node hands to the store (seen_take_dirty in src/api/seen.c).
 *
 * A cached credential or hint holds only within its wake epoch, its TTL and (hints) the
 * environment's wake sequence; a clear during a lookup keeps that lookup's answer out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "api/cred_cache.h"
#include "api/poll_hint.h"
#include "api/seen.h"

#define SEC 1000000LL

static struct credential env_key(const char *hash, const char *env)
{
	struct credential c;
	memset(&c, 0, sizeof(c));
	c.kind = CRED_ENV_KEY;
	snprintf(c.hash, sizeof(c.hash), "%s", hash);
	snprintf(c.environment_id, sizeof(c.environment_id), "%s", env);
	snprintf(c.key_id, sizeof(c.key_id), "envkey_1");
	return c;
}

static const char H1[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char H2[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

static void test_cred_cache_epoch_ttl_and_clear(void **state)
{
	struct cred_cache *cc = cred_cache_new(64);
	assert_non_null(cc);
	struct credential c = env_key(H1, "env_a"), out;
	cred_cache_put(cc, &c, 7, cred_cache_clears(cc), 10 * SEC);
	assert_true(cred_cache_get(cc, H1, 7, 11 * SEC, &out));
	assert_string_equal("env_a", out.environment_id);
	assert_false(cred_cache_get(cc, H2, 7, 11 * SEC, &out));          /* another key */
	assert_false(cred_cache_get(cc, H1, 8, 11 * SEC, &out));          /* another epoch */
	assert_false(cred_cache_get(cc, H1, 7, 10 * SEC + CRED_CACHE_TTL_US, &out)); /* too old */
	cred_cache_clear(cc);
	assert_false(cred_cache_get(cc, H1, 7, 11 * SEC, &out));
	cred_cache_free(cc);
}

static void test_cred_cache_keeps_out_an_answer_older_than_a_clear(void **state)
{
	struct cred_cache *cc = cred_cache_new(64);
	struct credential c = env_key(H1, "env_a"), out;
	uint64_t before = cred_cache_clears(cc); /* a lookup begins */
	cred_cache_clear(cc);                     /* a revocation lands meanwhile */
	cred_cache_put(cc, &c, 1, before, 1 * SEC);
	assert_false(cred_cache_get(cc, H1, 1, 1 * SEC, &out));
	cred_cache_free(cc);
}

static void test_cred_cache_only_environment_keys_and_bounded(void **state)
{
	struct cred_cache *cc = cred_cache_new(16);
	struct credential c = env_key(H1, "env_a"), out;
	c.kind = CRED_API_KEY;
	cred_cache_put(cc, &c, 1, cred_cache_clears(cc), 1 * SEC);
	assert_false(cred_cache_get(cc, H1, 1, 1 * SEC, &out));
	/* Far more keys than room: no failure, and the newest is found. */
	char hash[SECRET_HASH_HEX + 1];
	for (int i = 0; i < 5000; i++) {
		snprintf(hash, sizeof(hash), "%064x", i);
		struct credential k = env_key(hash, "env_a");
		cred_cache_put(cc, &k, 1, cred_cache_clears(cc), 1 * SEC);
	}
	assert_true(cred_cache_get(cc, hash, 1, 1 * SEC, &out));
	cred_cache_free(cc);
}

static void test_poll_hint_holds_only_for_its_sequence_epoch_and_ttl(void **state)
{
	struct poll_hint *h = poll_hint_new(64);
	assert_non_null(h);
	int64_t oldest = -1;
	assert_false(poll_hint_get(h, "env_a", 5, 1, 1 * SEC, &oldest));
	poll_hint_put(h, "env_a", 5, 1, 1234, 1 * SEC);
	assert_true(poll_hint_get(h, "env_a", 5, 1, 2 * SEC, &oldest));
	assert_int_equal(1234, oldest);
	assert_false(poll_hint_get(h, "env_a", 6, 1, 2 * SEC, &oldest)); /* a wake since */
	assert_false(poll_hint_get(h, "env_a", 5, 2, 2 * SEC, &oldest)); /* notifications missed */
	assert_false(poll_hint_get(h, "env_a", 5, 1, 1 * SEC + POLL_HINT_TTL_US, &oldest));
	assert_false(poll_hint_get(h, "env_b", 5, 1, 2 * SEC, &oldest));
	poll_hint_put(h, "env_a", 6, 1, 0, 3 * SEC);
	assert_true(poll_hint_get(h, "env_a", 6, 1, 3 * SEC, &oldest));
	assert_int_equal(0, oldest);
	poll_hint_free(h);
}

static void test_seen_hands_out_each_sighting_once(void **state)
{
	struct seen *s = seen_new(100);
	struct seen_row rows[8];
	seen_touch(s, "env_a", "w1", 1 * SEC);
	seen_touch(s, "env_a", "w2", 1 * SEC);
	seen_touch(s, "env_b", "w1", 2 * SEC);
	assert_int_equal(3, seen_take_dirty(s, rows, 8));
	assert_int_equal(0, seen_take_dirty(s, rows, 8));
	seen_touch(s, "env_a", "w1", 3 * SEC);
	assert_int_equal(1, seen_take_dirty(s, rows, 8));
	assert_string_equal("env_a", rows[0].env_id);
	assert_int_equal(3 * SEC, rows[0].last_mono);
	seen_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cred_cache_epoch_ttl_and_clear),
		cmocka_unit_test(test_cred_cache_keeps_out_an_answer_older_than_a_clear),
		cmocka_unit_test(test_cred_cache_only_environment_keys_and_bounded),
		cmocka_unit_test(test_poll_hint_holds_only_for_its_sequence_epoch_and_ttl),
		cmocka_unit_test(test_seen_hands_out_each_sighting_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
