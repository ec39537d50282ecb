/* test_utf8.c - unit tests of UTF-8 well-formedness (src/common/utf8.c): every boundary
 * of Unicode's table of well-formed byte sequences, both sides, and cut sequences. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/utf8.h"

static int ok(const char *s) { return utf8_valid(s, strlen(s)); }

static void test_well_formed(void **state)
{
	assert_true(utf8_valid("", 0));
	assert_true(ok("env_abc"));
	assert_true(ok("\x7f"));
	assert_true(ok("\xc2\x80"));             /* U+0080, the first two-byte form */
	assert_true(ok("\xdf\xbf"));             /* U+07FF */
	assert_true(ok("\xe0\xa0\x80"));         /* U+0800, the first three-byte form */
	assert_true(ok("\xed\x9f\xbf"));         /* U+D7FF, just below the surrogates */
	assert_true(ok("\xee\x80\x80"));         /* U+E000, just above them */
	assert_true(ok("\xef\xbf\xbf"));         /* U+FFFF */
	assert_true(ok("\xf0\x90\x80\x80"));     /* U+10000, the first four-byte form */
	assert_true(ok("\xf4\x8f\xbf\xbf"));     /* U+10FFFF, the last code point */
	assert_true(ok("a\xc3\xa9z\xf0\x9f\x9a\x80")); /* mixed */
	/* A NUL inside counts as a character: the length decides, not the terminator. */
	assert_true(utf8_valid("a\0b", 3));
}

static void test_ill_formed(void **state)
{
	assert_false(ok("\x80"));                /* a continuation byte alone */
	assert_false(ok("\xbf"));
	assert_false(ok("\xc0\xaf"));            /* overlong '/' */
	assert_false(ok("\xc1\xbf"));
	assert_false(ok("\xe0\x9f\xbf"));        /* overlong three-byte */
	assert_false(ok("\xed\xa0\x80"));        /* U+D800, a surrogate */
	assert_false(ok("\xed\xbf\xbf"));        /* U+DFFF */
	assert_false(ok("\xf0\x8f\xbf\xbf"));    /* overlong four-byte */
	assert_false(ok("\xf4\x90\x80\x80"));    /* U+110000 */
	assert_false(ok("\xf5\x80\x80\x80"));
	assert_false(ok("\xff"));
	assert_false(ok("\xfe"));
	assert_false(ok("\xc3\x28"));            /* a second byte that is not a continuation */
	assert_false(ok("\xe2\x82\x28"));        /* a third one */
	assert_false(ok("\xf0\x9f\x9a\x28"));    /* a fourth one */
	/* Sequences cut short, also by the length given. */
	assert_false(ok("\xc3"));
	assert_false(ok("\xe2\x82"));
	assert_false(ok("\xf0\x9f\x9a"));
	assert_false(utf8_valid("\xc3\xa9", 1));
	assert_false(utf8_valid("a\xf0\x9f\x9a\x80", 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_well_formed),
		cmocka_unit_test(test_ill_formed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
