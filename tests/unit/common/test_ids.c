/* test_ids.c - unit tests of time-ordered ids and random tokens (src/common/ids.c).
 *
 * SPEC §1: an id is a prefix and a 24-character base62 body whose leading characters grow
 * with time, so the text of ids sorts like their creation times. Tokens are a prefix and
 * 43 base62 characters. Random times come from a fixed-seed generator, so a failure
 * reproduces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/ids.h"

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* 62^9: the time part has 9 base62 digits. */
#define TIME_LIMIT INT64_C(13537086546263552)

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Du;
}

static int is_base62(const char *s, size_t n)
{
	return strspn(s, base62) >= n;
}

static void test_shape(void **state)
{
	const char *prefixes[] = {"env_", "work_", "envkey_", "req_", "hc_", ""};
	for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		char id[ID_MAX];
		memset(id, 'x', sizeof(id));
		ids_new_at(prefixes[p], INT64_C(1795880057123456), id);
		size_t plen = strlen(prefixes[p]);
		assert_int_equal(plen + ID_BODY_LEN, strlen(id));
		assert_int_equal(0, strncmp(id, prefixes[p], plen));
		assert_true(is_base62(id + plen, ID_BODY_LEN));
		assert_true(ids_valid(prefixes[p], id));

		ids_new(prefixes[p], id);
		assert_int_equal(plen + ID_BODY_LEN, strlen(id));
		assert_true(ids_valid(prefixes[p], id));
	}
}

/* The first 9 body characters are the time in base62, most significant first. */
static void test_time_part(void **state)
{
	const struct {
		int64_t t;
		const char *digits;
	} cases[] = {
		{0, "000000000"},
		{1, "000000001"},
		{9, "000000009"},
		{10, "00000000A"},
		{35, "00000000Z"},
		{36, "00000000a"},
		{61, "00000000z"},
		{62, "000000010"},
		{62 * 62, "000000100"},
		{TIME_LIMIT - 1, "zzzzzzzzz"},
		{-5, "000000000"}, /* before the epoch: clamped */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[ID_MAX];
		ids_new_at("env_", cases[i].t, id);
		assert_memory_equal(cases[i].digits, id + 4, 9);
	}
}

static void test_valid(void **state)
{
	assert_true(ids_valid("env_", "env_000000000000000000000000"));
	assert_true(ids_valid("env_", "env_zzzzzzzzzzzzzzzzzzzzzzzz"));
	assert_true(ids_valid("work_", "work_0Vx3kQp9aBcDeFgHiJkLmNoP"));
	assert_false(ids_valid("env_", "work_0Vx3kQp9aBcDeFgHiJkLmNo"));
	assert_false(ids_valid("env_", "ENV_0Vx3kQp9aBcDeFgHiJkLmNoP"));
	assert_false(ids_valid("env_", "env_0Vx3kQp9aBcDeFgHiJkLmNo"));   /* 23 */
	assert_false(ids_valid("env_", "env_0Vx3kQp9aBcDeFgHiJkLmNoPQ")); /* 25 */
	assert_false(ids_valid("env_", "env_0Vx3kQp9aBcDeFgHiJkLmN-P"));
	assert_false(ids_valid("env_", "env_0Vx3kQp9aBcDeFgHiJkLmN_P"));
	assert_false(ids_valid("env_", "env_0Vx3kQp9aBcDeFgHiJkLmN P"));
	assert_false(ids_valid("env_", "env_0Vx3kQp9aBcDeFgHiJkLmN\xc3\xa9"));
	assert_false(ids_valid("env_", "env_"));
	assert_false(ids_valid("env_", "env"));
	assert_false(ids_valid("env_", ""));
	/* A prefix is not matched by a longer one. */
	assert_false(ids_valid("env_", "envkey_0Vx3kQp9aBcDeFgHiJkLmNoP"));
	assert_false(ids_valid("envkey_", "env_0Vx3kQp9aBcDeFgHiJkLmNoP"));
}

/* Ids made at strictly increasing times sort strictly increasingly as strings. */
static void test_sort_by_time(void **state)
{
	const int64_t times[] = {0, 1, 61, 62, 63, 3843, 3844, INT64_C(1000000000000000), INT64_C(1795880057123455),
				 INT64_C(1795880057123456), INT64_C(1795880057123457), INT64_C(4102444800000000),
				 TIME_LIMIT - 1};
	char prev[ID_MAX] = "";
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		char id[ID_MAX];
		ids_new_at("work_", times[i], id);
		if (i > 0 && strcmp(prev, id) >= 0)
			fail_msg("%s (t=%lld) does not sort after %s", id, (long long)times[i], prev);
		memcpy(prev, id, sizeof(id));
	}
}

static void test_sort_random_times(void **state)
{
	for (int round = 0; round < 20000; round++) {
		int64_t a = (int64_t)(rng() % (uint64_t)TIME_LIMIT);
		int64_t b = (int64_t)(rng() % (uint64_t)TIME_LIMIT);
		/* Also pairs close together, where only the last time digits differ. */
		if (round % 2)
			b = a + (int64_t)(rng() % 1000);
		if (b >= TIME_LIMIT)
			b = TIME_LIMIT - 1;
		char ida[ID_MAX], idb[ID_MAX];
		ids_new_at("env_", a, ida);
		ids_new_at("env_", b, idb);
		int cmp = strcmp(ida, idb);
		if ((a < b && cmp >= 0) || (a > b && cmp <= 0))
			fail_msg("t=%lld → %s, t=%lld → %s", (long long)a, ida, (long long)b, idb);
	}
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

/* Ids of the same microsecond differ in their random part. */
static void test_same_time_distinct(void **state)
{
	enum { N = 2000 };
	static char ids[N][ID_MAX];
	for (int i = 0; i < N; i++)
		ids_new_at("env_", 12345, ids[i]);
	qsort(ids, N, ID_MAX, cmp_str);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
}

/* ids_new reads the wall clock through the seam. */
static void test_ids_new_uses_clock(void **state)
{
	int64_t wall = INT64_C(1795880057123456), mono = 1;
	char want[ID_MAX], got[ID_MAX];
	clock_set_fake(&wall, &mono);
	ids_new_at("req_", wall, want);
	ids_new("req_", got);
	assert_memory_equal(want, got, 4 + 9);
	wall += 62; /* the last time digit carries */
	ids_new("req_", got);
	assert_true(strcmp(got, want) > 0);
	clock_set_fake(NULL, NULL);
}

static void test_tokens(void **state)
{
	enum { N = 2000 };
	static char tokens[N][TOKEN_MAX];
	for (int i = 0; i < N; i++) {
		ids_token("envd_api_", tokens[i]);
		assert_int_equal(9 + TOKEN_BODY_LEN, strlen(tokens[i]));
		assert_int_equal(0, strncmp(tokens[i], "envd_api_", 9));
		assert_true(is_base62(tokens[i] + 9, TOKEN_BODY_LEN));
	}
	qsort(tokens, N, TOKEN_MAX, cmp_str);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(tokens[i - 1], tokens[i]);

	char bare[TOKEN_MAX];
	ids_token("", bare);
	assert_int_equal(TOKEN_BODY_LEN, strlen(bare));
	assert_true(is_base62(bare, TOKEN_BODY_LEN));

	/* Every base62 character shows up: the alphabet is used, not a subset of it. */
	int seen[256] = {0};
	for (int i = 0; i < N; i++)
		for (size_t j = 9; tokens[i][j]; j++)
			seen[(unsigned char)tokens[i][j]] = 1;
	for (size_t c = 0; c < sizeof(base62) - 1; c++)
		assert_true(seen[(unsigned char)base62[c]]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_time_part),
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_sort_by_time),
		cmocka_unit_test(test_sort_random_times),
		cmocka_unit_test(test_same_time_distinct),
		cmocka_unit_test(test_ids_new_uses_clock),
		cmocka_unit_test(test_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
