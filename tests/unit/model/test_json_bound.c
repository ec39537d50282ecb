/* test_json_bound.c - unit tests of the pre-parse bound on JSON bodies (src/model/json_bound.c).
 *
 * Values and depth are counted at their edges; brackets, commas and quotes inside strings
 * (escaped quotes included) do not count; object keys are not values; and the count never
 * falls below the number of nodes jansson builds for the same valid text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "model/json_bound.h"
#include "repeat.h"

static enum err check(const char *text, size_t depth, size_t values, struct errbuf *eb)
{
	struct json_bounds b = {depth, values};
	return json_bound_check(text, strlen(text), &b, eb);
}

/* Nodes jansson builds for text (every value, containers included). */
static size_t nodes(const json_t *v)
{
	size_t n = 1;
	const char *k;
	json_t *child;
	size_t i;
	if (json_is_object(v))
		json_object_foreach((json_t *)v, k, child) n += nodes(child);
	else if (json_is_array(v))
		json_array_foreach(v, i, child) n += nodes(child);
	return n;
}

/* The smallest value limit that text passes. */
static size_t counted(const char *text)
{
	struct errbuf eb;
	for (size_t limit = 0; limit < 100000; limit++)
		if (check(text, 64, limit, &eb) == ERR_OK)
			return limit;
	fail_msg("no limit admits %s", text);
	return 0;
}

static void test_values_edge(void **state)
{
	struct errbuf eb = {{0}};
	/* [{},{},{}] is 4 values. */
	assert_int_equal(ERR_OK, check("[{},{},{}]", 8, 4, &eb));
	assert_int_equal(ERR_INVALID, check("[{},{},{}]", 8, 3, &eb));
	assert_non_null(strstr(eb.message, "body: more than 3 JSON values"));
	assert_int_equal(4, counted("[{},{},{}]"));
	assert_int_equal(3, counted("{\"a\":1,\"b\":true}"));
	assert_int_equal(5, counted("[-1.5e+3, null, false, \"x\"]"));
	assert_int_equal(0, counted(""));
}

static void test_depth_edge(void **state)
{
	struct errbuf eb = {{0}};
	assert_int_equal(ERR_OK, check("[[[1]]]", 3, 100, &eb));
	assert_int_equal(ERR_INVALID, check("[[[1]]]", 2, 100, &eb));
	assert_non_null(strstr(eb.message, "body: JSON nested deeper than 2 levels"));
	assert_int_equal(ERR_OK, check("{\"a\":{\"b\":[]}}", 3, 100, &eb));
	assert_int_equal(ERR_INVALID, check("{\"a\":{\"b\":[{}]}}", 3, 100, &eb));
	/* Closing brackets bring the depth back down: siblings do not add up. */
	assert_int_equal(ERR_OK, check("[[1],[2],[3],[[4]]]", 3, 100, &eb));
	/* Deeper than the one-bit-per-level stack: refused, never overflowed. */
	char *deep = repeat("[", 1000);
	assert_int_equal(ERR_INVALID, check(deep, 1000, 100000, &eb));
	free(deep);
}

static void test_strings_do_not_count(void **state)
{
	assert_int_equal(1, counted("\"[{},{},{},[[[[ ,,,: {}\""));
	assert_int_equal(2, counted("[\"a\\\"[{},{}]\\\\\"]"));
	assert_int_equal(3, counted("{\"[{}]\":\"x\",\"k\\\"{\":1}"));
	struct errbuf eb = {{0}};
	assert_int_equal(ERR_OK, check("{\"a\":\"[[[[[[[[[[[[\"}", 1, 10, &eb));
}

/* A key after a comma is still a key inside nested objects and arrays. */
static void test_keys_after_nesting(void **state)
{
	assert_int_equal(6, counted("{\"a\":[1,{\"b\":2}],\"c\":3}"));
	assert_int_equal(5, counted("[{\"a\":1},{\"b\":2}]"));
}

/* For valid JSON the count is never below jansson's node count. */
static void test_never_undercounts(void **state)
{
	static const char *const samples[] = {
		"{}", "[]", "[{},{},[],[[]],{\"a\":{}}]", "{\"name\":\"x\",\"config\":{\"type\":\"cloud\",\"networking\":"
		"{\"type\":\"limited\",\"allowed_hosts\":[\"a.com\",\"b.com\"]}},\"metadata\":{\"k\":\"v\"}}",
		"[1,2.5,-3,1e9,true,false,null,\"s\"]", "{\"a\":[1,[2,[3,[4]]]],\"b\":\"]}\"}",
	};
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		json_t *v = json_loads(samples[i], JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		assert_true(counted(samples[i]) >= nodes(v));
		json_decref(v);
	}
}

/* The default bounds admit the largest legitimate body and refuse the amplifier. */
static void test_default_bounds(void **state)
{
	struct errbuf eb = {{0}};
	char *amp = repeat("{},", 350000);
	amp[strlen(amp) - 1] = ']';
	amp[0] = '[';
	assert_int_equal(ERR_INVALID, json_bound_check(amp, strlen(amp), &json_bounds_body, &eb));
	assert_non_null(strstr(eb.message, "10000"));
	free(amp);
	char *list = repeat("\"pkg\",", 7 * 256 + 256);
	list[strlen(list) - 1] = '\0';
	size_t len = strlen(list) + 64;
	char *body = malloc(len);
	assert_non_null(body);
	snprintf(body, len, "{\"config\":{\"packages\":[%s]}}", list);
	assert_int_equal(ERR_OK, json_bound_check(body, strlen(body), &json_bounds_body, &eb));
	free(list);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_edge),
		cmocka_unit_test(test_depth_edge),
		cmocka_unit_test(test_strings_do_not_count),
		cmocka_unit_test(test_keys_after_nesting),
		cmocka_unit_test(test_never_undercounts),
		cmocka_unit_test(test_default_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
