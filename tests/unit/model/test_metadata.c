/* test_metadata.c - unit tests of metadata validation and merge-patch (src/model/metadata.c).
 *
 * The limits of SPEC §2 at their edges (16/17 keys, 64/65-character keys, 512/513-character
 * values, counted in Unicode characters), the one message that names every problem, both
 * deletion rules of metadata_patch, its `changed` flag, and that a refused patch leaves the
 * base object exactly as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model/metadata.h"
#include "repeat.h"

#define E_ACUTE "\xc3\xa9"      /* é, 2 bytes */
#define EURO "\xe2\x82\xac"     /* €, 3 bytes */
#define GRINNING "\xf0\x9f\x98\x80" /* 😀, 4 bytes */

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	if (!v)
		fail_msg("test JSON does not parse (%s): %s", e.text, text);
	return v;
}

/* An object of n keys "k0".."k<n-1>", each with value "v". */
static json_t *keys(size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++) {
		char k[32];
		snprintf(k, sizeof(k), "k%zu", i);
		json_object_set_new(o, k, json_string("v"));
	}
	return o;
}

static void expect_valid(json_t *obj)
{
	struct errbuf eb = {{0}};
	enum err rc = metadata_validate(obj, &eb);
	if (rc != ERR_OK)
		print_error("unexpected refusal: %s\n", eb.message);
	json_decref(obj);
	assert_int_equal(ERR_OK, rc);
}

/* Validation must fail with exactly `message`. Takes obj's reference. */
static void expect_invalid(json_t *obj, const char *message)
{
	struct errbuf eb = {{0}};
	enum err rc = metadata_validate(obj, &eb);
	json_decref(obj);
	assert_int_equal(ERR_INVALID_METADATA, rc);
	assert_string_equal(message, eb.message);
}

/* ---- utf8_chars --------------------------------------------------------------------- */

static void test_utf8_chars(void **state)
{
	assert_int_equal(0, utf8_chars("", 0));
	assert_int_equal(3, utf8_chars("abc", 3));
	assert_int_equal(1, utf8_chars(E_ACUTE, 2));
	assert_int_equal(1, utf8_chars(EURO, 3));
	assert_int_equal(1, utf8_chars(GRINNING, 4));
	assert_int_equal(4, utf8_chars("a" E_ACUTE EURO GRINNING, 10));
	/* Only `len` bytes count, and an embedded NUL is a character. */
	assert_int_equal(2, utf8_chars("abc", 2));
	assert_int_equal(3, utf8_chars("a\0b", 3));
	char *s = repeat(GRINNING, 1000);
	assert_int_equal(1000, utf8_chars(s, strlen(s)));
	free(s);
}

/* ---- metadata_validate -------------------------------------------------------------- */

static void test_validate_key_count(void **state)
{
	expect_valid(json_object());
	expect_valid(keys(1));
	expect_valid(keys(16));
	expect_invalid(keys(17), "metadata: has 17 keys, at most 16 are allowed");
	expect_invalid(keys(40), "metadata: has 40 keys, at most 16 are allowed");
}

static void test_validate_key_length(void **state)
{
	const char *units[] = {"k", E_ACUTE, EURO, GRINNING};
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		char *k64 = repeat(units[u], 64), *k65 = repeat(units[u], 65), *shown = repeat(units[u], 24);
		char want[256];
		expect_valid(json_pack("{s:s}", k64, "v"));
		snprintf(want, sizeof(want), "metadata: key \"%s\xe2\x80\xa6\" is longer than 64 characters", shown);
		expect_invalid(json_pack("{s:s}", k65, "v"), want);
		free(k64);
		free(k65);
		free(shown);
	}
	/* A key of exactly 24 characters is shown whole. */
	expect_valid(json_pack("{s:s}", "abcdefghijklmnopqrstuvwx", "v"));
	expect_invalid(json_pack("{s:s}", "", "v"), "metadata: keys must not be empty");
}

static void test_validate_values(void **state)
{
	const char *units[] = {"v", E_ACUTE, GRINNING};
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		char *v512 = repeat(units[u], 512), *v513 = repeat(units[u], 513);
		expect_valid(json_pack("{s:s}", "k", v512));
		expect_invalid(json_pack("{s:s}", "k", v513), "metadata: value of key \"k\" is longer than 512 characters");
		free(v512);
		free(v513);
	}
	expect_valid(json_pack("{s:s}", "k", ""));
	expect_invalid(parse("{\"k\":1}"), "metadata: value of key \"k\" must be a string");
	expect_invalid(parse("{\"k\":1.5}"), "metadata: value of key \"k\" must be a string");
	expect_invalid(parse("{\"k\":null}"), "metadata: value of key \"k\" must be a string");
	expect_invalid(parse("{\"k\":true}"), "metadata: value of key \"k\" must be a string");
	expect_invalid(parse("{\"k\":[\"v\"]}"), "metadata: value of key \"k\" must be a string");
	expect_invalid(parse("{\"k\":{}}"), "metadata: value of key \"k\" must be a string");
}

static void test_validate_not_object(void **state)
{
	const char *texts[] = {"[]", "\"x\"", "1", "null", "true"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		expect_invalid(parse(texts[i]), "metadata: must be an object of strings");
	/* No errbuf: still refused. */
	json_t *v = parse("[]");
	assert_int_equal(ERR_INVALID_METADATA, metadata_validate(v, NULL));
	json_decref(v);
	v = keys(17);
	assert_int_equal(ERR_INVALID_METADATA, metadata_validate(v, NULL));
	json_decref(v);
}

/* Every problem is named, in one message. */
static void test_validate_all_problems(void **state)
{
	json_t *obj = keys(15);
	char *long_key = repeat("x", 65), *long_value = repeat("y", 513);
	json_object_set_new(obj, long_key, json_string("v"));
	json_object_set_new(obj, "num", json_integer(3));
	json_object_set_new(obj, "big", json_string(long_value));
	json_object_set_new(obj, "", json_string("v"));
	free(long_key);
	free(long_value);

	struct errbuf eb = {{0}};
	assert_int_equal(ERR_INVALID_METADATA, metadata_validate(obj, &eb));
	json_decref(obj);
	const char *want[] = {
		"has 19 keys, at most 16 are allowed",
		"key \"xxxxxxxxxxxxxxxxxxxxxxxx\xe2\x80\xa6\" is longer than 64 characters",
		"value of key \"num\" must be a string",
		"value of key \"big\" is longer than 512 characters",
		"keys must not be empty",
	};
	assert_int_equal(0, strncmp(eb.message, "metadata: ", 10));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(eb.message, want[i]))
			fail_msg("\"%s\" is not named in: %s", want[i], eb.message);
	}
	/* Five problems, four separators. */
	size_t seps = 0;
	for (const char *p = eb.message; (p = strstr(p, "; ")); p += 2)
		seps++;
	assert_int_equal(4, seps);

	/* A key with two problems names both. */
	char *k65 = repeat("q", 65);
	obj = json_pack("{s:i}", k65, 1);
	free(k65);
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(ERR_INVALID_METADATA, metadata_validate(obj, &eb));
	json_decref(obj);
	assert_string_equal("metadata: key \"qqqqqqqqqqqqqqqqqqqqqqqq\xe2\x80\xa6\" is longer than 64 characters; "
			    "value of key \"qqqqqqqqqqqqqqqqqqqqqqqq\xe2\x80\xa6\" must be a string",
			    eb.message);
}

/* ---- metadata_patch ----------------------------------------------------------------- */

/* Patch base_text with patch_text; expect ERR_OK, `changed` and the result `want_text`. */
static void patch_ok(const char *base_text, const char *patch_text, enum metadata_delete_rule rule, int want_changed,
		     const char *want_text)
{
	json_t *base = parse(base_text), *patch = parse(patch_text), *want = parse(want_text);
	struct errbuf eb = {{0}};
	int changed = 0x5a;
	enum err rc = metadata_patch(base, patch, rule, &changed, &eb);
	if (rc != ERR_OK || changed != want_changed || !json_equal(want, base)) {
		char *got = json_dumps(base, JSON_COMPACT | JSON_SORT_KEYS);
		print_error("patch %s onto %s (rule %d): rc %d (%s), changed %d, result %s; want changed %d, %s\n",
			    patch_text, base_text, rule, rc, eb.message, changed, got, want_changed, want_text);
		free(got);
		fail();
	}
	json_decref(base);
	json_decref(patch);
	json_decref(want);
}

/* The patch must be refused with ERR_INVALID_METADATA, a message containing `reason`,
 * changed = 0 and the base untouched. Takes patch's reference. */
static void patch_err(json_t *base, json_t *patch, enum metadata_delete_rule rule, const char *reason)
{
	json_t *before = json_deep_copy(base);
	struct errbuf eb = {{0}};
	int changed = 0x5a;
	enum err rc = metadata_patch(base, patch, rule, &changed, &eb);
	json_decref(patch);
	assert_int_equal(ERR_INVALID_METADATA, rc);
	assert_int_equal(0, changed);
	assert_true(json_equal(before, base));
	assert_int_equal(0, strncmp("metadata: ", eb.message, 10));
	if (!strstr(eb.message, reason))
		fail_msg("\"%s\" not in \"%s\"", reason, eb.message);
	json_decref(before);
}

static void test_patch_null_or_empty(void **state)
{
	const enum metadata_delete_rule r = METADATA_DELETE_NULL_OR_EMPTY;
	patch_ok("{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}", "{\"a\":\"x\",\"b\":null,\"c\":\"\",\"d\":\"4\"}", r, 1,
		 "{\"a\":\"x\",\"d\":\"4\"}");
	patch_ok("{}", "{\"a\":\"1\"}", r, 1, "{\"a\":\"1\"}");
	patch_ok("{\"a\":\"1\"}", "{\"a\":null}", r, 1, "{}");
	patch_ok("{\"a\":\"1\"}", "{\"a\":\"\"}", r, 1, "{}");
	/* No effective change. */
	patch_ok("{\"a\":\"1\"}", "{}", r, 0, "{\"a\":\"1\"}");
	patch_ok("{\"a\":\"1\"}", "{\"a\":\"1\"}", r, 0, "{\"a\":\"1\"}");
	patch_ok("{\"a\":\"1\"}", "{\"b\":null,\"c\":\"\"}", r, 0, "{\"a\":\"1\"}");
	patch_ok("{}", "{\"b\":\"\"}", r, 0, "{}");
	/* A long key that is deleted is never in the result, so it is fine. */
	char *k65 = repeat("x", 65);
	json_t *base = parse("{\"a\":\"1\"}"), *patch = json_pack("{s:n}", k65);
	int changed = 0x5a;
	assert_int_equal(ERR_OK, metadata_patch(base, patch, r, &changed, NULL));
	assert_int_equal(0, changed);
	json_decref(base);
	json_decref(patch);
	free(k65);
}

static void test_patch_null_only(void **state)
{
	const enum metadata_delete_rule r = METADATA_DELETE_NULL;
	patch_ok("{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}", "{\"a\":\"x\",\"b\":null,\"c\":\"\",\"d\":\"4\"}", r, 1,
		 "{\"a\":\"x\",\"c\":\"\",\"d\":\"4\"}");
	patch_ok("{}", "{\"b\":\"\"}", r, 1, "{\"b\":\"\"}");
	patch_ok("{\"b\":\"\"}", "{\"b\":\"\"}", r, 0, "{\"b\":\"\"}");
	patch_ok("{\"b\":\"\"}", "{\"b\":null}", r, 1, "{}");
	patch_ok("{\"a\":\"1\"}", "{\"z\":null}", r, 0, "{\"a\":\"1\"}");
}

static void test_patch_limits(void **state)
{
	const enum metadata_delete_rule rules[] = {METADATA_DELETE_NULL_OR_EMPTY, METADATA_DELETE_NULL};
	for (size_t i = 0; i < 2; i++) {
		/* 16 keys, then one more is refused, but a swap is fine. */
		json_t *base = keys(15);
		json_t *patch = json_pack("{s:s}", "k15", "v");
		int changed = 0;
		assert_int_equal(ERR_OK, metadata_patch(base, patch, rules[i], &changed, NULL));
		assert_int_equal(1, changed);
		assert_int_equal(16, json_object_size(base));
		json_decref(patch);
		patch_err(base, json_pack("{s:s}", "k16", "v"), rules[i], "has 17 keys, at most 16 are allowed");
		patch = json_pack("{s:n,s:s}", "k0", "k16", "v");
		assert_int_equal(ERR_OK, metadata_patch(base, patch, rules[i], &changed, NULL));
		assert_int_equal(1, changed);
		assert_int_equal(16, json_object_size(base));
		assert_null(json_object_get(base, "k0"));
		assert_string_equal("v", json_string_value(json_object_get(base, "k16")));
		json_decref(patch);

		/* Bad values and keys. */
		char *v513 = repeat("v", 513), *k65 = repeat("k", 65);
		patch_err(base, json_pack("{s:s}", "k1", v513), rules[i], "value of key \"k1\" is longer than 512");
		patch_err(base, json_pack("{s:s,s:s}", "k0", "v", "k1", v513), rules[i], "512");
		patch_err(base, json_pack("{s:s}", k65, "v"), rules[i], "longer than 64");
		patch_err(base, json_pack("{s:s}", "", "v"), rules[i], "keys must not be empty");
		patch_err(base, json_pack("{s:n,s:i}", "k1", "k2", 5), rules[i],
			  "value of key \"k2\" must be a string or null");
		patch_err(base, json_pack("{s:b}", "k1", 1), rules[i], "string or null");
		patch_err(base, json_pack("{s:[]}", "k1"), rules[i], "string or null");
		patch_err(base, json_pack("{s:{}}", "k1"), rules[i], "string or null");
		patch_err(base, json_array(), rules[i], "must be an object");
		patch_err(base, json_string("x"), rules[i], "must be an object");
		patch_err(base, json_null(), rules[i], "must be an object");
		free(v513);
		free(k65);
		assert_int_equal(16, json_object_size(base));
		json_decref(base);
	}
}

/* The patch itself is only read. */
static void test_patch_leaves_patch_alone(void **state)
{
	json_t *base = parse("{\"a\":\"1\",\"b\":\"2\"}");
	json_t *patch = parse("{\"a\":\"x\",\"b\":null,\"c\":\"\"}");
	json_t *copy = json_deep_copy(patch);
	int changed = 0;
	assert_int_equal(ERR_OK, metadata_patch(base, patch, METADATA_DELETE_NULL_OR_EMPTY, &changed, NULL));
	assert_int_equal(1, changed);
	assert_true(json_equal(copy, patch));
	json_decref(patch);
	json_decref(copy);
	/* The result outlives the patch. */
	assert_string_equal("x", json_string_value(json_object_get(base, "a")));
	assert_int_equal(1, json_object_size(base));
	json_decref(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_chars),
		cmocka_unit_test(test_validate_key_count),
		cmocka_unit_test(test_validate_key_length),
		cmocka_unit_test(test_validate_values),
		cmocka_unit_test(test_validate_not_object),
		cmocka_unit_test(test_validate_all_problems),
		cmocka_unit_test(test_patch_null_or_empty),
		cmocka_unit_test(test_patch_null_only),
		cmocka_unit_test(test_patch_limits),
		cmocka_unit_test(test_patch_leaves_patch_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
