/* test_clock.c - unit tests of the time seam (src/common/clock.c).
 *
 * clock_format writes SPEC §1's one timestamp form (UTC, 6 fractional digits, 'Z');
 * clock_parse reads any RFC 3339 timestamp a client may echo back (expected_last_heartbeat
 * is compared by value) and refuses everything else. Known values were computed
 * independently (Python's calendar.timegm). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/clock.h"

#define US(s) ((int64_t)(s) * 1000000)

/* 2026-11-28T15:34:17Z */
#define SPEC_SECS INT64_C(1795880057)

static void check_format(int line, int64_t us, const char *want)
{
	char out[CLOCK_TS_LEN + 1];
	memset(out, 'x', sizeof(out));
	clock_format(us, out);
	if (strcmp(out, want) != 0)
		fail_msg("line %d: %lld formats as %s, want %s", line, (long long)us, out, want);
	assert_int_equal(CLOCK_TS_LEN, strlen(out));
}
#define assert_format(us, want) check_format(__LINE__, us, want)

static void check_parse(int line, const char *text, int64_t want)
{
	int64_t got = 0x5a5a;
	if (clock_parse(text, strlen(text), &got) != 0)
		fail_msg("line %d: \"%s\" refused", line, text);
	if (got != want)
		fail_msg("line %d: \"%s\" parses as %lld, want %lld", line, text, (long long)got, (long long)want);
}
#define assert_parse(text, want) check_parse(__LINE__, text, want)

static void check_refused(int line, const char *text)
{
	int64_t got = 0x5a5a;
	if (clock_parse(text, strlen(text), &got) != -1)
		fail_msg("line %d: \"%s\" accepted as %lld", line, text, (long long)got);
}
#define assert_refused(text) check_refused(__LINE__, text)

static void test_format_known(void **state)
{
	assert_format(0, "1970-01-01T00:00:00.000000Z");
	assert_format(1, "1970-01-01T00:00:00.000001Z");
	assert_format(10, "1970-01-01T00:00:00.000010Z");
	assert_format(1000, "1970-01-01T00:00:00.001000Z");
	assert_format(999999, "1970-01-01T00:00:00.999999Z");
	assert_format(US(1), "1970-01-01T00:00:01.000000Z");
	assert_format(US(946684800), "2000-01-01T00:00:00.000000Z");
	assert_format(US(951782400), "2000-02-29T00:00:00.000000Z");
	assert_format(US(1709210096) + 789012, "2024-02-29T12:34:56.789012Z");
	assert_format(US(SPEC_SECS) + 123456, "2026-11-28T15:34:17.123456Z");
	assert_format(US(INT64_C(253402300799)) + 999999, "9999-12-31T23:59:59.999999Z");
	/* Before the epoch the microseconds still count up within the second. */
	assert_format(-1, "1969-12-31T23:59:59.999999Z");
	assert_format(-US(1), "1969-12-31T23:59:59.000000Z");
	assert_format(-US(1) - 1, "1969-12-31T23:59:58.999999Z");
}

static void test_parse_variants(void **state)
{
	const int64_t base = US(SPEC_SECS);
	assert_parse("2026-11-28T15:34:17.123456Z", base + 123456);
	assert_parse("2026-11-28T15:34:17.123456z", base + 123456);
	assert_parse("2026-11-28t15:34:17.123456Z", base + 123456);
	assert_parse("2026-11-28T15:34:17Z", base);
	assert_parse("2026-11-28T15:34:17+00:00", base);
	assert_parse("2026-11-28T15:34:17-00:00", base);
	/* Offsets: local time minus the offset is UTC. */
	assert_parse("2026-11-28T21:04:17.5+05:30", base + 500000);
	assert_parse("2026-11-28T07:34:17-08:00", base);
	assert_parse("2026-11-29T05:34:17+14:00", base);
	assert_parse("2026-11-28T10:04:17.000001-05:30", base + 1);
	/* Across midnight and the year. */
	assert_parse("2027-01-01T00:30:00+01:00", US(INT64_C(1798759800)));
	assert_parse("1970-01-01T00:00:00Z", 0);
	assert_parse("1969-12-31T23:59:59.999999Z", -1);
	assert_parse("1970-01-01T01:00:00+01:00", 0);
}

static void test_parse_fraction_digits(void **state)
{
	const int64_t base = US(SPEC_SECS);
	const struct {
		const char *frac;
		int64_t us;
	} cases[] = {
		{"", 0},
		{".1", 100000},
		{".12", 120000},
		{".123", 123000},
		{".1234", 123400},
		{".12345", 123450},
		{".123456", 123456},
		{".1234567", 123456}, /* beyond µs: truncated */
		{".12345678", 123456},
		{".123456789", 123456},
		{".999999999", 999999},
		{".000000", 0},
		{".000001", 1},
		{".0", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "2026-11-28T15:34:17%sZ", cases[i].frac);
		check_parse(__LINE__, text, base + cases[i].us);
		snprintf(text, sizeof(text), "2026-11-28T16:34:17%s+01:00", cases[i].frac);
		check_parse(__LINE__, text, base + cases[i].us);
	}
	assert_refused("2026-11-28T15:34:17.1234567890Z"); /* 10 digits */
	assert_refused("2026-11-28T15:34:17.Z");
	assert_refused("2026-11-28T15:34:17.+01:00");
	assert_refused("2026-11-28T15:34:17.12a456Z");
	assert_refused("2026-11-28T15:34:17,123456Z");
}

static void test_parse_calendar(void **state)
{
	assert_parse("2024-02-29T12:34:56.789012Z", US(1709210096) + 789012);
	assert_parse("2000-02-29T00:00:00Z", US(951782400));
	assert_refused("2023-02-29T00:00:00Z");
	assert_refused("1900-02-29T00:00:00Z"); /* divisible by 100, not by 400 */
	assert_refused("2100-02-29T00:00:00Z");
	assert_refused("2024-02-30T00:00:00Z");
	assert_refused("2026-13-01T00:00:00Z");
	assert_refused("2026-00-01T00:00:00Z");
	assert_refused("2026-01-00T00:00:00Z");
	assert_refused("2026-01-32T00:00:00Z");
	assert_refused("2026-04-31T00:00:00Z");
	assert_refused("2026-11-28T24:00:00Z");
	assert_refused("2026-11-28T23:60:00Z");
	assert_refused("2026-11-28T23:59:61Z");
	assert_parse("2026-12-31T23:59:59Z", US(INT64_C(1798761599)));
	/* A leap second is read as the last second of its minute. */
	assert_parse("2016-12-31T23:59:60Z", US(INT64_C(1483228799)));
	assert_parse("9999-12-31T23:59:59.999999Z", US(INT64_C(253402300799)) + 999999);
}

static void test_parse_refused(void **state)
{
	assert_refused("");
	assert_refused("NO_HEARTBEAT");
	assert_refused("null");
	assert_refused("2026-11-28");
	assert_refused("2026-11-28T15:34:17");         /* no zone */
	assert_refused("2026-11-28T15:34:17.123456");  /* no zone */
	assert_refused("2026-11-28T15:34:17.123456Z "); /* trailing garbage */
	assert_refused("2026-11-28T15:34:17.123456ZZ");
	assert_refused("2026-11-28T15:34:17Zjunk");
	assert_refused(" 2026-11-28T15:34:17Z");
	assert_refused("2026-11-28T15:34:17+05:30x");
	assert_refused("2026-11-28T15:34:17+0530");
	assert_refused("2026-11-28T15:34:17+05");
	assert_refused("2026-11-28T15:34:17+5:30");
	assert_refused("2026-11-28T15:34:17+24:00");
	assert_refused("2026-11-28T15:34:17+05:60");
	assert_refused("2026-11-28T15:34:17+aa:00");
	assert_refused("2026-11-28X15:34:17Z");
	assert_refused("2026/11/28T15:34:17Z");
	assert_refused("2026-11-28T15-34-17Z");
	assert_refused("20261128T153417Z");
	assert_refused("2026-1-28T15:34:17Z");
	assert_refused("2026-11-28T5:34:17Z");
	assert_refused("+2026-11-28T15:34:17Z");
	assert_refused("2026-11-28T15:34:1Z");
	assert_refused("2026-11-2aT15:34:17Z");

	/* Only `len` bytes are read: a valid prefix with the zone cut off is refused, and
	 * bytes after `len` are never looked at. */
	const char *full = "2026-11-28T15:34:17.123456Z";
	int64_t got = 0;
	assert_int_equal(-1, clock_parse(full, strlen(full) - 1, &got));
	assert_int_equal(0, clock_parse("2026-11-28T15:34:17Zgarbage", 20, &got));
	assert_int_equal(US(SPEC_SECS), got);
}

static void test_round_trip(void **state)
{
	const int64_t values[] = {0, 1, 999999, 1000000, US(SPEC_SECS) + 123456, US(1709210096) + 789012,
				  US(INT64_C(253402300799)) + 999999, -1, -US(86400) * 365};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char text[CLOCK_TS_LEN + 1];
		int64_t back = 0;
		clock_format(values[i], text);
		assert_int_equal(0, clock_parse(text, strlen(text), &back));
		assert_int_equal(values[i], back);
	}
	/* And across the whole range 1970–9999 with a fixed-seed generator. */
	uint64_t x = 88172645463325252u;
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t v = (int64_t)(x % (uint64_t)(US(INT64_C(253402300800))));
		char text[CLOCK_TS_LEN + 1];
		int64_t back = 0;
		clock_format(v, text);
		if (clock_parse(text, strlen(text), &back) != 0 || back != v)
			fail_msg("%lld → %s → %lld", (long long)v, text, (long long)back);
	}
}

static void test_fake_clock(void **state)
{
	int64_t wall = INT64_C(1795880057123456), mono = 42;
	clock_set_fake(&wall, &mono);
	assert_int_equal(INT64_C(1795880057123456), clock_wall_us());
	assert_int_equal(42, clock_mono_us());
	/* The caller moves the clock by changing its storage. */
	wall += 1000;
	mono += 7;
	assert_int_equal(INT64_C(1795880057124456), clock_wall_us());
	assert_int_equal(49, clock_mono_us());
	wall = 0;
	assert_int_equal(0, clock_wall_us());

	/* Back to the real clocks. */
	clock_set_fake(NULL, NULL);
	int64_t real = clock_wall_us();
	assert_true(real > US(INT64_C(1700000000))); /* after 2023-11 */
	assert_true(real < US(INT64_C(4102444800))); /* before 2100 */
	int64_t m1 = clock_mono_us(), m2 = clock_mono_us();
	assert_true(m1 > 0);
	assert_true(m2 >= m1);
	assert_int_not_equal(49, m1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_known),
		cmocka_unit_test(test_parse_variants),
		cmocka_unit_test(test_parse_fraction_digits),
		cmocka_unit_test(test_parse_calendar),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fake_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
