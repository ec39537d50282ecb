/* test_buf.c - unit tests of the bounded growable buffer (src/common/buf.c).
 *
 * STYLE §5: every buffer has a maximum. Going over it sets `failed`, keeps what was
 * written before, and turns later appends into no-ops; buf_steal hands the bytes over
 * (or NULL after a failure) and leaves the buffer empty. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"

static void test_append_and_terminate(void **state)
{
	struct buf b;
	buf_init(&b, 1024);
	assert_null(b.data);
	assert_int_equal(0, b.len);
	assert_int_equal(0, b.failed);
	buf_puts(&b, "hello");
	buf_putc(&b, ' ');
	buf_append(&b, "world!!", 5);
	buf_append(&b, NULL, 0);
	assert_int_equal(11, b.len);
	assert_string_equal("hello world", b.data);
	buf_printf(&b, " %d-%s", 42, "x");
	assert_string_equal("hello world 42-x", b.data);
	assert_int_equal(16, b.len);
	/* Embedded NULs are bytes like any other. */
	buf_append(&b, "a\0b", 3);
	assert_int_equal(19, b.len);
	assert_memory_equal("hello world 42-xa\0b", b.data, 20);
	assert_int_equal(0, b.failed);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(0, b.len);
}

static void test_put_i64(void **state)
{
	const struct {
		int64_t v;
		const char *text;
	} cases[] = {{0, "0"}, {-1, "-1"}, {42, "42"}, {INT64_MAX, "9223372036854775807"},
		     {INT64_MIN, "-9223372036854775808"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b, 64);
		buf_put_i64(&b, cases[i].v);
		assert_string_equal(cases[i].text, b.data);
		assert_int_equal(strlen(cases[i].text), b.len);
		buf_free(&b);
	}
}

static void test_max_exact(void **state)
{
	struct buf b;
	buf_init(&b, 10);
	buf_puts(&b, "12345");
	buf_puts(&b, "67890"); /* exactly the maximum */
	assert_int_equal(0, b.failed);
	assert_int_equal(10, b.len);
	assert_string_equal("1234567890", b.data);
	buf_putc(&b, 'x'); /* one over */
	assert_int_equal(1, b.failed);
	assert_int_equal(10, b.len);
	assert_string_equal("1234567890", b.data);
	buf_free(&b);
}

static void test_max_failed_sticks(void **state)
{
	struct buf b;
	buf_init(&b, 10);
	buf_puts(&b, "12345");
	buf_puts(&b, "678901"); /* 11: refused whole, nothing of it written */
	assert_int_equal(1, b.failed);
	assert_int_equal(5, b.len);
	assert_string_equal("12345", b.data);
	/* Later appends, even ones that would fit, are no-ops. */
	buf_putc(&b, 'a');
	buf_puts(&b, "b");
	buf_append(&b, "c", 1);
	buf_printf(&b, "%d", 1);
	buf_put_i64(&b, 7);
	assert_int_equal(1, b.failed);
	assert_int_equal(5, b.len);
	assert_string_equal("12345", b.data);
	/* buf_reset starts over. */
	buf_reset(&b);
	assert_int_equal(0, b.failed);
	assert_int_equal(0, b.len);
	assert_string_equal("", b.data);
	buf_puts(&b, "abc");
	assert_string_equal("abc", b.data);
	buf_free(&b);
}

static void test_printf_over_max(void **state)
{
	struct buf b;
	buf_init(&b, 8);
	buf_printf(&b, "%s", "123456789");
	assert_int_equal(1, b.failed);
	assert_int_equal(0, b.len);
	buf_free(&b);

	/* A long formatted string grows the buffer past its first allocation. */
	char big[3000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 4096);
	buf_printf(&b, "<%s>", big);
	assert_int_equal(0, b.failed);
	assert_int_equal(3001, b.len);
	assert_int_equal('<', b.data[0]);
	assert_int_equal('>', b.data[3000]);
	assert_int_equal('\0', b.data[3001]);
	buf_free(&b);
}

/* Growing one byte at a time up to the maximum, then one more. */
static void test_growth(void **state)
{
	const size_t max = 10000;
	struct buf b;
	buf_init(&b, max);
	for (size_t i = 0; i < max; i++)
		buf_putc(&b, (char)('a' + i % 26));
	assert_int_equal(0, b.failed);
	assert_int_equal(max, b.len);
	assert_true(b.cap >= max + 1);
	assert_true(b.cap <= max + 1); /* never allocates past max + NUL */
	for (size_t i = 0; i < max; i++)
		assert_int_equal('a' + i % 26, b.data[i]);
	assert_int_equal('\0', b.data[max]);
	buf_putc(&b, 'z');
	assert_int_equal(1, b.failed);
	assert_int_equal(max, b.len);
	buf_free(&b);
}

/* Sizes near SIZE_MAX are refused, not wrapped around. */
static void test_huge_append(void **state)
{
	struct buf b;
	buf_init(&b, 100);
	buf_puts(&b, "ab");
	buf_append(&b, "x", SIZE_MAX);
	assert_int_equal(1, b.failed);
	assert_int_equal(2, b.len);
	buf_free(&b);

	/* len + extra is checked without overflow: one past the maximum fails, the maximum fits. */
	static char fill[100];
	memset(fill, 'f', sizeof(fill));
	buf_init(&b, 100);
	buf_puts(&b, "ab");
	buf_append(&b, fill, 99);
	assert_int_equal(1, b.failed);
	assert_int_equal(2, b.len);
	buf_reset(&b);
	buf_puts(&b, "ab");
	buf_append(&b, fill, 98);
	assert_int_equal(0, b.failed);
	assert_int_equal(100, b.len);
	buf_free(&b);
}

static void test_zero_max(void **state)
{
	struct buf b;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	assert_int_equal(0, b.failed);
	buf_putc(&b, 'x');
	assert_int_equal(1, b.failed);
	assert_int_equal(0, b.len);
	buf_free(&b);
}

static void test_steal(void **state)
{
	struct buf b;
	size_t len = 99;
	buf_init(&b, 100);
	buf_puts(&b, "payload");
	char *data = buf_steal(&b, &len);
	assert_string_equal("payload", data);
	assert_int_equal(7, len);
	assert_null(b.data);
	assert_int_equal(0, b.len);
	assert_int_equal(0, b.cap);
	free(data);
	/* The buffer is usable again afterwards. */
	buf_puts(&b, "again");
	assert_string_equal("again", b.data);
	data = buf_steal(&b, NULL);
	assert_string_equal("again", data);
	free(data);

	/* An empty buffer gives an empty string, not NULL. */
	buf_init(&b, 100);
	len = 99;
	data = buf_steal(&b, &len);
	assert_non_null(data);
	assert_string_equal("", data);
	assert_int_equal(0, len);
	free(data);

	/* A failed buffer gives NULL, length 0, and releases its bytes. */
	buf_init(&b, 4);
	buf_puts(&b, "abc");
	buf_puts(&b, "de");
	assert_int_equal(1, b.failed);
	len = 99;
	assert_null(buf_steal(&b, &len));
	assert_int_equal(0, len);
	assert_null(b.data);
	assert_int_equal(0, b.len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_terminate),
		cmocka_unit_test(test_put_i64),
		cmocka_unit_test(test_max_exact),
		cmocka_unit_test(test_max_failed_sticks),
		cmocka_unit_test(test_printf_over_max),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_huge_append),
		cmocka_unit_test(test_zero_max),
		cmocka_unit_test(test_steal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
