/* test_cursor.c - unit tests of the HMAC-bound keyset cursors (src/model/cursor.c).
 *
 * A cursor decodes to exactly what was encoded; any single-character alteration, a
 * cursor of another list (kind or scope) or server key, and text that is not a cursor at
 * all are refused with ERR_INVALID and a message naming `page` (SPEC §1: a 400, never a
 * crash or a skip). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "model/cursor.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static unsigned char key[CURSOR_KEY_LEN];
static unsigned char other_key[CURSOR_KEY_LEN];

static int setup(void **state)
{
	for (int i = 0; i < CURSOR_KEY_LEN; i++) {
		key[i] = (unsigned char)(i * 7 + 1);
		other_key[i] = key[i];
	}
	other_key[CURSOR_KEY_LEN - 1] ^= 1;
	return 0;
}

static struct cursor make(int64_t created_at, const char *id)
{
	struct cursor c;
	memset(&c, 0, sizeof(c));
	c.created_at = created_at;
	snprintf(c.id, sizeof(c.id), "%s", id);
	return c;
}

/* Decoding `text` must be refused. */
static void check_refused(int line, const unsigned char k[CURSOR_KEY_LEN], const char *kind, const char *scope,
			  const char *text)
{
	struct cursor out;
	struct errbuf eb;
	memset(&eb, 0, sizeof(eb));
	memset(&out, 0, sizeof(out));
	enum err rc = cursor_decode(k, kind, scope, text, &out, &eb);
	if (rc != ERR_INVALID || strncmp(eb.message, "page: ", 6) != 0)
		fail_msg("line %d: \"%s\" for %s/%s: rc %d, message \"%s\"", line, text, kind, scope, rc, eb.message);
}
#define assert_refused(k, kind, scope, text) check_refused(__LINE__, k, kind, scope, text)

static void test_round_trip(void **state)
{
	const int64_t times[] = {0, 1, 255, 256, INT64_C(1800000000000000), INT64_C(1795880057123456), INT64_MAX,
				 -1, INT64_MIN};
	const char *ids[] = {"env_0Vx3kQp9aBcDeFgHiJkLmNoP", "work_000000000000000000000000", "x",
			     "envkey_zzzzzzzzzzzzzzzzzzzzzzzz", "id with spaces and / slashes"};
	for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			struct cursor in = make(times[t], ids[i]), out;
			char text[CURSOR_TEXT_MAX], again[CURSOR_TEXT_MAX];
			struct errbuf eb = {{0}};
			cursor_encode(key, "environments", "org_1", &in, text);
			assert_int_equal(0, strncmp(text, "page_", 5));
			assert_true(strlen(text) < CURSOR_TEXT_MAX);
			/* page_ + base64url of (8 + id + 16) bytes, no padding. */
			size_t raw = 8 + strlen(ids[i]) + 16;
			assert_int_equal(5 + raw / 3 * 4 + (raw % 3 ? raw % 3 + 1 : 0), strlen(text));
			assert_int_equal(strlen(text) - 5, strspn(text + 5, b64url));
			/* The same input always gives the same text. */
			cursor_encode(key, "environments", "org_1", &in, again);
			assert_string_equal(text, again);

			memset(&out, 0x5a, sizeof(out));
			assert_int_equal(ERR_OK, cursor_decode(key, "environments", "org_1", text, &out, &eb));
			assert_int_equal(times[t], out.created_at);
			assert_string_equal(ids[i], out.id);
		}
	}
}

/* The longest id that fits still round-trips. */
static void test_longest_id(void **state)
{
	char id[ID_MAX];
	memset(id, 'Z', ID_MAX - 1);
	id[ID_MAX - 1] = '\0';
	struct cursor in = make(42, id), out;
	char text[CURSOR_TEXT_MAX];
	cursor_encode(key, "work", "env_1", &in, text);
	assert_int_equal(ERR_OK, cursor_decode(key, "work", "env_1", text, &out, NULL));
	assert_string_equal(id, out.id);
	assert_int_equal(42, out.created_at);
}

static void test_every_alteration_refused(void **state)
{
	const struct cursor inputs[] = {make(INT64_C(1795880057123456), "env_0Vx3kQp9aBcDeFgHiJkLmNoP"),
					make(7, "w"), make(0, "ab")};
	for (size_t n = 0; n < sizeof(inputs) / sizeof(inputs[0]); n++) {
		char text[CURSOR_TEXT_MAX];
		cursor_encode(key, "work", "env_abc", &inputs[n], text);
		size_t len = strlen(text);
		size_t tried = 0;
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t r = 0; r < sizeof(b64url) - 1; r++) {
				if (b64url[r] == text[pos])
					continue;
				char altered[CURSOR_TEXT_MAX];
				memcpy(altered, text, len + 1);
				altered[pos] = b64url[r];
				assert_refused(key, "work", "env_abc", altered);
				tried++;
			}
		}
		assert_int_equal(len * 63, tried);
		/* The original still decodes. */
		struct cursor out;
		assert_int_equal(ERR_OK, cursor_decode(key, "work", "env_abc", text, &out, NULL));
	}
}

static void test_other_list_refused(void **state)
{
	struct cursor in = make(INT64_C(1800000000000000), "work_0Vx3kQp9aBcDeFgHiJkLmNoP");
	char text[CURSOR_TEXT_MAX];
	cursor_encode(key, "work", "env_A", &in, text);
	assert_refused(key, "environments", "env_A", text);
	assert_refused(key, "work", "env_B", text);
	assert_refused(key, "work", "env_", text);
	assert_refused(key, "work", "env_AA", text);
	assert_refused(key, "work", "", text);
	assert_refused(key, "", "env_A", text);
	assert_refused(other_key, "work", "env_A", text);
	/* Kind and scope are separated: moving the boundary is another list. */
	cursor_encode(key, "ab", "c", &in, text);
	assert_refused(key, "a", "bc", text);
	assert_refused(key, "abc", "", text);
	struct cursor out;
	assert_int_equal(ERR_OK, cursor_decode(key, "ab", "c", text, &out, NULL));
}

static void test_garbage_refused(void **state)
{
	const char *texts[] = {
		"", "p", "page", "page_", "PAGE_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "pag_",
		"page_A", "page_AA", "page_AAAA", "page_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"page_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "page_AAAA=", "page_AAAA+/AA",
		"page_ AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "env_0Vx3kQp9aBcDeFgHiJkLmNoP", "null",
		"page_page_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		assert_refused(key, "work", "env_A", texts[i]);

	/* Over CURSOR_TEXT_MAX, and just under it but too long to be a cursor. */
	char long_text[600];
	memcpy(long_text, "page_", 5);
	memset(long_text + 5, 'A', sizeof(long_text) - 6);
	long_text[sizeof(long_text) - 1] = '\0';
	assert_refused(key, "work", "env_A", long_text);
	long_text[CURSOR_TEXT_MAX + 1] = '\0';
	assert_refused(key, "work", "env_A", long_text);
	long_text[CURSOR_TEXT_MAX] = '\0';
	assert_refused(key, "work", "env_A", long_text);
	long_text[100] = '\0';
	assert_refused(key, "work", "env_A", long_text);
}

/* A real cursor, cut short or with something added, is not a cursor. */
static void test_truncated_and_extended(void **state)
{
	struct cursor in = make(INT64_C(1795880057123456), "env_0Vx3kQp9aBcDeFgHiJkLmNoP");
	char text[CURSOR_TEXT_MAX];
	cursor_encode(key, "environments", "org", &in, text);
	size_t len = strlen(text);
	for (size_t cut = 0; cut < len; cut++) {
		char shorter[CURSOR_TEXT_MAX];
		memcpy(shorter, text, cut);
		shorter[cut] = '\0';
		assert_refused(key, "environments", "org", shorter);
	}
	for (size_t extra = 1; extra <= 8; extra++) {
		char longer[CURSOR_TEXT_MAX + 16];
		memcpy(longer, text, len);
		memset(longer + len, 'A', extra);
		longer[len + extra] = '\0';
		assert_refused(key, "environments", "org", longer);
	}
}

static void test_message_names_page(void **state)
{
	struct errbuf eb = {{0}};
	struct cursor out;
	assert_int_equal(ERR_INVALID, cursor_decode(key, "work", "s", "garbage", &out, &eb));
	assert_string_equal("page: not a cursor returned by this list", eb.message);

	struct cursor in = make(5, "work_x");
	char text[CURSOR_TEXT_MAX];
	cursor_encode(key, "work", "s", &in, text);
	memset(&eb, 0, sizeof(eb));
	assert_int_equal(ERR_INVALID, cursor_decode(key, "work", "t", text, &out, &eb));
	assert_string_equal("page: cursor was altered or belongs to another list", eb.message);
	/* No errbuf: still refused. */
	assert_int_equal(ERR_INVALID, cursor_decode(key, "work", "t", text, &out, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_longest_id),
		cmocka_unit_test(test_every_alteration_refused),
		cmocka_unit_test(test_other_list_refused),
		cmocka_unit_test(test_garbage_refused),
		cmocka_unit_test(test_truncated_and_extended),
		cmocka_unit_test(test_message_names_page),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
