/* test_test_faults.c - unit tests of test mode's fault rules (src/api/test_faults.c).
 *
 * Decisions repeat for a seed and differ between seeds; a rate of 0 never fires and 1
 * always does; the first rule that fires wins and later ones are not even tried; a count
 * caps the faults of its rule; only the named route (or "*") matches; a refused rule set
 * leaves the installed one as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/test_faults.h"

static int known(const char *method, const char *pattern)
{
	return strcmp(pattern, "/v1/environments") == 0 || strcmp(pattern, "/v1/environments/*/work/poll") == 0;
}

static struct test_faults *with(const char *json)
{
	struct test_faults *f = test_faults_new();
	assert_non_null(f);
	json_error_t jerr;
	json_t *body = json_loads(json, 0, &jerr);
	assert_non_null(body);
	struct errbuf eb = {{0}};
	enum err rc = test_faults_install(f, body, known, &eb);
	json_decref(body);
	if (rc)
		fail_msg("install: %s", eb.message);
	return f;
}

/* The decisions for n requests to GET /v1/environments as a string of 0 and 1. */
static void decisions(struct test_faults *f, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		struct test_fault t;
		test_faults_decide(f, "GET", "/v1/environments", &t);
		out[i] = t.kind == TEST_FAULT_NONE ? '0' : '1';
	}
	out[n] = '\0';
}

static void test_seed_repeats(void **state)
{
	static const char rule[] = "{\"seed\":%d,\"rules\":[{\"route\":\"GET /v1/environments\",\"fault\":\"drop\",\"rate\":0.5}]}";
	char json[256], a[65], b[65], c[65];
	snprintf(json, sizeof(json), rule, 42);
	struct test_faults *f = with(json);
	decisions(f, 64, a);
	test_faults_free(f);
	f = with(json);
	decisions(f, 64, b);
	test_faults_free(f);
	snprintf(json, sizeof(json), rule, 43);
	f = with(json);
	decisions(f, 64, c);
	test_faults_free(f);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_non_null(strchr(a, '0'));
	assert_non_null(strchr(a, '1'));
}

static void test_rates_order_and_count(void **state)
{
	struct test_faults *f = with("{\"rules\":["
				     "{\"route\":\"GET /v1/environments\",\"fault\":\"delay\",\"delay_ms\":5,\"rate\":0},"
				     "{\"route\":\"* /v1/environments\",\"fault\":\"status\",\"status\":503,\"retry_after\":9,\"count\":2},"
				     "{\"route\":\"*\",\"fault\":\"drop\"}]}");
	struct test_fault t;
	for (int i = 0; i < 2; i++) {
		test_faults_decide(f, "GET", "/v1/environments", &t);
		assert_int_equal(TEST_FAULT_STATUS, t.kind);
		assert_int_equal(503, t.status);
		assert_int_equal(9, t.retry_after);
		assert_int_equal(1, (int)t.rule);
	}
	/* Its count is spent: the catch-all rule fires now. */
	test_faults_decide(f, "POST", "/v1/environments", &t);
	assert_int_equal(TEST_FAULT_DROP, t.kind);
	assert_int_equal(2, (int)t.rule);
	/* Another route reaches only the catch-all. */
	test_faults_decide(f, "GET", "/v1/environments/*/work/poll", &t);
	assert_int_equal(TEST_FAULT_DROP, t.kind);
	struct buf out;
	buf_init(&out, 1 << 16);
	test_faults_encode(f, &out);
	buf_putc(&out, '\0');
	/* matched counts the requests a rule was tried on, fired its faults: rule 0 (rate 0)
	 * was tried on the two GETs before rule 1 fired, and fired on none. */
	json_t *shown = json_loads(out.data, 0, NULL);
	assert_non_null(shown);
	json_t *rules = json_object_get(shown, "rules");
	assert_int_equal(2, json_integer_value(json_object_get(json_array_get(rules, 0), "matched")));
	assert_int_equal(0, json_integer_value(json_object_get(json_array_get(rules, 0), "fired")));
	assert_int_equal(2, json_integer_value(json_object_get(json_array_get(rules, 1), "fired")));
	assert_int_equal(2, json_integer_value(json_object_get(json_array_get(rules, 2), "fired")));
	json_decref(shown);
	buf_free(&out);
	test_faults_free(f);
}

static void test_refused_set_keeps_installed(void **state)
{
	struct test_faults *f = with("{\"rules\":[{\"route\":\"*\",\"fault\":\"drop\"}]}");
	json_t *bad = json_loads("{\"rules\":[{\"route\":\"*\",\"fault\":\"drop\"},{\"route\":\"GET /nope\",\"fault\":\"drop\"}]}", 0,
				 NULL);
	struct errbuf eb = {{0}};
	assert_int_equal(ERR_INVALID, test_faults_install(f, bad, known, &eb));
	assert_non_null(strstr(eb.message, "rules[1].route"));
	json_decref(bad);
	struct test_fault t;
	test_faults_decide(f, "GET", "/v1/environments", &t);
	assert_int_equal(TEST_FAULT_DROP, t.kind);
	test_faults_clear(f);
	test_faults_decide(f, "GET", "/v1/environments", &t);
	assert_int_equal(TEST_FAULT_NONE, t.kind);
	test_faults_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_repeats),
		cmocka_unit_test(test_rates_order_and_count),
		cmocka_unit_test(test_refused_set_keeps_installed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
