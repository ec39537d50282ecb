/* test_jsonw.c - unit tests of the JSON writer and its string escaper (src/common/jsonw.c).
 *
 * The escaper must turn any bytes into one valid JSON string: quotes, backslashes and
 * control characters escaped, valid UTF-8 kept byte for byte, and every byte of invalid
 * UTF-8 (stray continuation bytes, truncated sequences, overlong forms, surrogates, code
 * points past U+10FFFF) replaced by U+FFFD. Outputs are compared exactly and also parsed
 * back with jansson. The writer's only job beyond that is commas, checked on nested
 * objects and arrays. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "common/jsonw.h"

#define FFFD "\xef\xbf\xbd"

/* Escape `len` bytes of s; the caller frees the result. */
static char *escape(const char *s, size_t len)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	jsonw_escape(&b, s, len);
	assert_int_equal(0, b.failed);
	char *out = buf_steal(&b, NULL);
	assert_non_null(out);
	return out;
}

/* The escaped text must parse as a JSON string; returns it (caller decrefs). */
static json_t *parse_string(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!v || !json_is_string(v))
		fail_msg("escaper output is not a JSON string (%s): %s", v ? "not a string" : e.text, text);
	return v;
}

/* Escaping `in` (inlen bytes) gives exactly `want`, which parses to `decoded`. */
static void check_escape(int line, const char *in, size_t inlen, const char *want, const char *decoded,
			 size_t decoded_len)
{
	char *got = escape(in, inlen);
	if (strcmp(got, want) != 0)
		fail_msg("line %d: escaped as [%s], want [%s]", line, got, want);
	json_t *v = parse_string(got);
	if (json_string_length(v) != decoded_len || memcmp(json_string_value(v), decoded, decoded_len) != 0)
		fail_msg("line %d: [%s] decodes to [%s]", line, got, json_string_value(v));
	json_decref(v);
	free(got);
}
/* Literal input, and the decoded value is the input itself. */
#define assert_escape_same(lit, want) check_escape(__LINE__, lit, sizeof(lit) - 1, want, lit, sizeof(lit) - 1)
/* Literal input whose decoded value differs (replacements). */
#define assert_escape(lit, want, dec) check_escape(__LINE__, lit, sizeof(lit) - 1, want, dec, sizeof(dec) - 1)

static void test_escape_ascii(void **state)
{
	assert_escape_same("", "\"\"");
	assert_escape_same("plain text", "\"plain text\"");
	assert_escape_same("a\"b", "\"a\\\"b\"");
	assert_escape_same("a\\b", "\"a\\\\b\"");
	assert_escape_same("\"\\\"", "\"\\\"\\\\\\\"\"");
	assert_escape_same("/", "\"/\"");
	assert_escape_same("\x7f", "\"\x7f\"");
	assert_escape_same(" ~", "\" ~\"");
}

static void test_escape_control(void **state)
{
	assert_escape_same("\n", "\"\\n\"");
	assert_escape_same("\r", "\"\\r\"");
	assert_escape_same("\t", "\"\\t\"");
	assert_escape_same("\b", "\"\\u0008\"");
	assert_escape_same("\f", "\"\\u000c\"");
	assert_escape_same("\x01", "\"\\u0001\"");
	assert_escape_same("\x1f", "\"\\u001f\"");
	assert_escape_same("\x1b[0m", "\"\\u001b[0m\"");
	assert_escape_same("a\0b", "\"a\\u0000b\"");
	assert_escape_same("line1\nline2\ttab", "\"line1\\nline2\\ttab\"");
	/* All 32 control characters, each on its own. */
	for (int c = 0; c < 0x20; c++) {
		char in = (char)c, want[16];
		if (c == '\n')
			snprintf(want, sizeof(want), "\"\\n\"");
		else if (c == '\r')
			snprintf(want, sizeof(want), "\"\\r\"");
		else if (c == '\t')
			snprintf(want, sizeof(want), "\"\\t\"");
		else
			snprintf(want, sizeof(want), "\"\\u00%02x\"", c);
		check_escape(__LINE__, &in, 1, want, &in, 1);
	}
}

static void test_escape_valid_utf8(void **state)
{
	assert_escape_same("\xc3\xa9", "\"\xc3\xa9\"");                 /* é U+00E9 */
	assert_escape_same("\xc2\x80", "\"\xc2\x80\"");                 /* U+0080, smallest 2-byte */
	assert_escape_same("\xdf\xbf", "\"\xdf\xbf\"");                 /* U+07FF */
	assert_escape_same("\xe0\xa0\x80", "\"\xe0\xa0\x80\"");         /* U+0800, smallest 3-byte */
	assert_escape_same("\xe2\x82\xac", "\"\xe2\x82\xac\"");         /* € */
	assert_escape_same("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");         /* U+D7FF, just below surrogates */
	assert_escape_same("\xee\x80\x80", "\"\xee\x80\x80\"");         /* U+E000, just above */
	assert_escape_same("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");         /* U+FFFF */
	assert_escape_same("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\""); /* U+10000 */
	assert_escape_same("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""); /* 😀 */
	assert_escape_same("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
	assert_escape_same("caf\xc3\xa9 \"\xe2\x82\xac\"\n", "\"caf\xc3\xa9 \\\"\xe2\x82\xac\\\"\\n\"");
}

static void test_escape_invalid_utf8(void **state)
{
	/* Stray bytes. */
	assert_escape("\x80", "\"" FFFD "\"", FFFD);
	assert_escape("\xbf", "\"" FFFD "\"", FFFD);
	assert_escape("\xff", "\"" FFFD "\"", FFFD);
	assert_escape("\xfe", "\"" FFFD "\"", FFFD);
	assert_escape("\xc0", "\"" FFFD "\"", FFFD);
	assert_escape("\xf5\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"", FFFD FFFD FFFD FFFD);
	assert_escape("a\xffz", "\"a" FFFD "z\"", "a" FFFD "z");
	/* Truncated sequences, at the end and before other text. */
	assert_escape("\xc3", "\"" FFFD "\"", FFFD);
	assert_escape("\xe2\x82", "\"" FFFD FFFD "\"", FFFD FFFD);
	assert_escape("\xf0\x9f\x98", "\"" FFFD FFFD FFFD "\"", FFFD FFFD FFFD);
	assert_escape("\xe2\x82" "a", "\"" FFFD FFFD "a\"", FFFD FFFD "a");
	assert_escape("\xc3\"", "\"" FFFD "\\\"\"", FFFD "\"");
	assert_escape("\xc3\xc3\xa9", "\"" FFFD "\xc3\xa9\"", FFFD "\xc3\xa9");
	/* Overlong encodings: '/' as 2, 3 and 4 bytes, and NUL as 2 bytes. */
	assert_escape("\xc0\xaf", "\"" FFFD FFFD "\"", FFFD FFFD);
	assert_escape("\xc1\xbf", "\"" FFFD FFFD "\"", FFFD FFFD);
	assert_escape("\xc0\x80", "\"" FFFD FFFD "\"", FFFD FFFD);
	assert_escape("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\"", FFFD FFFD FFFD);
	assert_escape("\xe0\x9f\xbf", "\"" FFFD FFFD FFFD "\"", FFFD FFFD FFFD);
	assert_escape("\xf0\x80\x80\xaf", "\"" FFFD FFFD FFFD FFFD "\"", FFFD FFFD FFFD FFFD);
	assert_escape("\xf0\x8f\xbf\xbf", "\"" FFFD FFFD FFFD FFFD "\"", FFFD FFFD FFFD FFFD);
	/* Surrogates, encoded directly (CESU-8 style). */
	assert_escape("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"", FFFD FFFD FFFD);
	assert_escape("\xed\xbf\xbf", "\"" FFFD FFFD FFFD "\"", FFFD FFFD FFFD);
	assert_escape("\xed\xa0\xbd\xed\xb8\x80", "\"" FFFD FFFD FFFD FFFD FFFD FFFD "\"",
		      FFFD FFFD FFFD FFFD FFFD FFFD);
	/* Past U+10FFFF. */
	assert_escape("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"", FFFD FFFD FFFD FFFD);
}

/* Any bytes escape to a JSON string; when the bytes are valid UTF-8 (as jansson judges),
 * the string decodes back to exactly those bytes. */
static void test_escape_random_bytes(void **state)
{
	uint64_t x = 0x2545F4914F6CDD1Du;
	int valid_seen = 0, invalid_seen = 0;
	for (int round = 0; round < 20000; round++) {
		unsigned char in[48];
		size_t len = (size_t)(round % 48);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Mostly ASCII and well-formed sequences, sometimes any byte. */
			switch (x % 8) {
			case 0: in[i] = (unsigned char)(x >> 8); break;
			case 1: in[i] = (unsigned char)(x >> 8) & 0x1f; break;
			case 2:
				if (i + 2 < len) {
					in[i++] = 0xe2;
					in[i++] = 0x82;
					in[i] = 0xac;
					break;
				}
				/* fall through */
			default: in[i] = (unsigned char)(0x20 + (x >> 8) % 0x5f); break;
			}
		}
		char *out = escape((const char *)in, len);
		json_t *v = parse_string(out);
		json_t *check = json_stringn((const char *)in, len);
		if (check) {
			valid_seen++;
			assert_int_equal(len, json_string_length(v));
			assert_memory_equal(in, json_string_value(v), len);
			json_decref(check);
		} else {
			invalid_seen++;
		}
		json_decref(v);
		free(out);
	}
	assert_true(valid_seen > 1000);
	assert_true(invalid_seen > 1000);
}

/* Every 1- and 2-byte input, and every 3-byte input starting with E0 or ED: the output
 * parses, valid input round-trips, and invalid input turns into U+FFFD, never raw. */
static void test_escape_exhaustive_short(void **state)
{
	for (int a = 0; a < 256; a++) {
		for (int b = -1; b < 256; b++) {
			unsigned char in[2] = {(unsigned char)a, (unsigned char)b};
			size_t len = b < 0 ? 1 : 2;
			char *out = escape((const char *)in, len);
			json_t *v = parse_string(out);
			json_t *check = json_stringn((const char *)in, len);
			if (check) {
				assert_int_equal(len, json_string_length(v));
				assert_memory_equal(in, json_string_value(v), len);
				json_decref(check);
			} else {
				assert_non_null(strstr(out, FFFD));
			}
			json_decref(v);
			free(out);
		}
	}
	const unsigned char leads[] = {0xe0, 0xed, 0xf0, 0xf4};
	for (size_t l = 0; l < sizeof(leads); l++) {
		for (int b = 0x80; b < 0xc0; b++) {
			for (int c = 0x80; c < 0xc0; c++) {
				unsigned char in[4] = {leads[l], (unsigned char)b, (unsigned char)c, 0x80};
				size_t len = leads[l] >= 0xf0 ? 4 : 3;
				char *out = escape((const char *)in, len);
				json_t *v = parse_string(out);
				json_t *check = json_stringn((const char *)in, len);
				if (check) {
					assert_memory_equal(in, json_string_value(v), len);
					json_decref(check);
				} else {
					/* All bytes replaced, one U+FFFD each. */
					assert_int_equal(2 + 3 * len, strlen(out));
				}
				json_decref(v);
				free(out);
			}
		}
	}
}

/* ---- the writer --------------------------------------------------------------------- */

static char *write_sample(void (*fn)(struct jsonw *))
{
	struct buf b;
	struct jsonw w;
	buf_init(&b, 1 << 16);
	jsonw_init(&w, &b);
	fn(&w);
	assert_int_equal(0, b.failed);
	return buf_steal(&b, NULL);
}

static void nested(struct jsonw *w)
{
	jsonw_obj_open(w);
	jsonw_key(w, "a");
	jsonw_i64(w, 1);
	jsonw_key(w, "b");
	jsonw_arr_open(w);
	jsonw_i64(w, 1);
	jsonw_str(w, "x");
	jsonw_obj_open(w);
	jsonw_key(w, "c");
	jsonw_null(w);
	jsonw_key(w, "d");
	jsonw_arr_open(w);
	jsonw_arr_close(w);
	jsonw_obj_close(w);
	jsonw_arr_open(w);
	jsonw_arr_close(w);
	jsonw_obj_open(w);
	jsonw_obj_close(w);
	jsonw_bool(w, 0);
	jsonw_arr_close(w);
	jsonw_key(w, "e");
	jsonw_obj_open(w);
	jsonw_obj_close(w);
	jsonw_key(w, "f\"g");
	jsonw_bool(w, 1);
	jsonw_key(w, "h");
	jsonw_str_or_null(w, NULL);
	jsonw_key(w, "i");
	jsonw_str_or_null(w, "s");
	jsonw_key(w, "j");
	jsonw_i64(w, INT64_MIN);
	jsonw_key(w, "k");
	jsonw_strn(w, "abc", 2);
	jsonw_obj_close(w);
}

static void test_writer_commas(void **state)
{
	char *out = write_sample(nested);
	assert_string_equal("{\"a\":1,\"b\":[1,\"x\",{\"c\":null,\"d\":[]},[],{},false],\"e\":{},\"f\\\"g\":true,"
			    "\"h\":null,\"i\":\"s\",\"j\":-9223372036854775808,\"k\":\"ab\"}",
			    out);
	json_error_t e;
	json_t *v = json_loads(out, JSON_REJECT_DUPLICATES, &e);
	assert_non_null(v);
	assert_int_equal(8, json_object_size(v));
	json_decref(v);
	free(out);
}

static void top_array(struct jsonw *w)
{
	jsonw_arr_open(w);
	for (int i = 0; i < 3; i++) {
		jsonw_obj_open(w);
		jsonw_key(w, "i");
		jsonw_i64(w, i);
		jsonw_key(w, "ts");
		jsonw_ts(w, i == 0 ? 0 : INT64_C(1795880057123456));
		jsonw_key(w, "raw");
		jsonw_raw(w, "{\"m\":[1,2]}", 11);
		jsonw_obj_close(w);
	}
	jsonw_raw(w, "7", 1);
	jsonw_arr_close(w);
}

static void test_writer_values(void **state)
{
	char *out = write_sample(top_array);
	assert_string_equal("[{\"i\":0,\"ts\":null,\"raw\":{\"m\":[1,2]}},"
			    "{\"i\":1,\"ts\":\"2026-11-28T15:34:17.123456Z\",\"raw\":{\"m\":[1,2]}},"
			    "{\"i\":2,\"ts\":\"2026-11-28T15:34:17.123456Z\",\"raw\":{\"m\":[1,2]}},7]",
			    out);
	free(out);
}

static void test_writer_depth(void **state)
{
	struct buf b;
	struct jsonw w;
	/* JSONW_MAX_DEPTH - 1 levels are fine... */
	buf_init(&b, 4096);
	jsonw_init(&w, &b);
	for (int i = 0; i < JSONW_MAX_DEPTH - 1; i++)
		jsonw_arr_open(&w);
	for (int i = 0; i < JSONW_MAX_DEPTH - 1; i++)
		jsonw_arr_close(&w);
	assert_int_equal(0, b.failed);
	assert_int_equal(2 * (JSONW_MAX_DEPTH - 1), b.len);
	json_t *v = json_loads(b.data, 0, NULL);
	assert_non_null(v);
	json_decref(v);
	buf_free(&b);
	/* ...one more fails the buffer rather than writing past the comma stack. */
	buf_init(&b, 4096);
	jsonw_init(&w, &b);
	for (int i = 0; i < JSONW_MAX_DEPTH + 5; i++)
		jsonw_obj_open(&w);
	assert_int_equal(1, b.failed);
	assert_null(buf_steal(&b, NULL));
}

/* A writer on a full buffer fails the buffer; nothing is written past the maximum. */
static void test_writer_max(void **state)
{
	struct buf b;
	struct jsonw w;
	buf_init(&b, 16);
	jsonw_init(&w, &b);
	jsonw_obj_open(&w);
	jsonw_key(&w, "key");
	jsonw_str(&w, "a value that is too long");
	jsonw_obj_close(&w);
	assert_int_equal(1, b.failed);
	assert_true(b.len <= 16);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_ascii),
		cmocka_unit_test(test_escape_control),
		cmocka_unit_test(test_escape_valid_utf8),
		cmocka_unit_test(test_escape_invalid_utf8),
		cmocka_unit_test(test_escape_random_bytes),
		cmocka_unit_test(test_escape_exhaustive_short),
		cmocka_unit_test(test_writer_commas),
		cmocka_unit_test(test_writer_values),
		cmocka_unit_test(test_writer_depth),
		cmocka_unit_test(test_writer_max),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
