/* clock.c - the one time seam (see clock.h). */
#include "common/clock.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

static const int64_t *fake_wall;
static const int64_t *fake_mono;

/* Offsets of the test clock (zero unless a test server moves them). Relaxed atomics: a
 * reading taken while a test moves the clock may see either side of the move, never a
 * torn value. */
static _Atomic int64_t advanced_us;
static _Atomic int64_t wall_step_us;

/* Lease time = monotonic + lease_delta, where lease_delta = wall - monotonic at the anchor. */
static _Atomic int64_t lease_delta;
static atomic_int lease_anchored;

void clock_set_fake(const int64_t *wall_us, const int64_t *mono_us)
{
	fake_wall = wall_us;
	fake_mono = mono_us;
	atomic_store(&lease_anchored, 0);
}

static int64_t read_clock(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_wall_us(void)
{
	if (fake_wall)
		return *fake_wall;
	return read_clock(CLOCK_REALTIME) + atomic_load_explicit(&advanced_us, memory_order_relaxed) +
	       atomic_load_explicit(&wall_step_us, memory_order_relaxed);
}

int64_t clock_mono_us(void)
{
	if (fake_mono)
		return *fake_mono;
	return read_clock(CLOCK_MONOTONIC) + atomic_load_explicit(&advanced_us, memory_order_relaxed);
}

void clock_lease_anchor(void)
{
	atomic_store(&lease_delta, clock_wall_us() - clock_mono_us());
	atomic_store(&lease_anchored, 1);
}

int64_t clock_lease_us(void)
{
	if (!atomic_load(&lease_anchored)) {
		/* First use: whichever thread comes first sets the anchor; the others keep it. */
		int64_t delta = clock_wall_us() - clock_mono_us();
		int expected = 0;
		if (atomic_compare_exchange_strong(&lease_anchored, &expected, 2)) {
			atomic_store(&lease_delta, delta);
			atomic_store(&lease_anchored, 1);
		}
		while (atomic_load(&lease_anchored) != 1)
			; /* another thread is between its two stores */
	}
	return clock_mono_us() + atomic_load(&lease_delta);
}

void clock_lease_follow(int64_t ref_us, int64_t mono_mid_us)
{
	int64_t raw_mid = mono_mid_us - atomic_load_explicit(&advanced_us, memory_order_relaxed);
	atomic_store(&lease_delta, ref_us - raw_mid);
	atomic_store(&lease_anchored, 1);
}

void clock_test_advance(int64_t us) { atomic_fetch_add(&advanced_us, us); }

void clock_test_step_wall(int64_t us) { atomic_fetch_add(&wall_step_us, us); }

void clock_test_offsets(int64_t *advanced, int64_t *wall_step)
{
	*advanced = atomic_load(&advanced_us);
	*wall_step = atomic_load(&wall_step_us);
}

void clock_format(int64_t wall_us, char out[CLOCK_TS_LEN + 1])
{
	time_t secs = (time_t)(wall_us / 1000000);
	long micros = (long)(wall_us % 1000000);
	if (micros < 0) {
		micros += 1000000;
		secs -= 1;
	}
	struct tm tm;
	gmtime_r(&secs, &tm);
	/* Written digit by digit: fixed width, no locale, and fast on the hot reply path. */
	int year = tm.tm_year + 1900;
	if (year < 0 || year > 9999)
		year = year < 0 ? 0 : 9999;
	const int fields[6] = {tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, 0};
	const char seps[5] = {'-', 'T', ':', ':', '.'};
	char *p = out;
	*p++ = (char)('0' + year / 1000);
	*p++ = (char)('0' + year / 100 % 10);
	*p++ = (char)('0' + year / 10 % 10);
	*p++ = (char)('0' + year % 10);
	*p++ = '-';
	for (int i = 0; i < 5; i++) {
		*p++ = (char)('0' + fields[i] / 10);
		*p++ = (char)('0' + fields[i] % 10);
		*p++ = seps[i];
	}
	for (long div = 100000; div; div /= 10)
		*p++ = (char)('0' + micros / div % 10);
	*p++ = 'Z';
	*p = '\0';
}

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int clock_parse(const char *s, size_t len, int64_t *wall_us)
{
	int y, mo, d, h, mi, se;
	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
		return -1;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return -1;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return -1;
	size_t i = 19;
	int64_t frac_us = 0;
	if (i < len && s[i] == '.') {
		i++;
		size_t start = i;
		int64_t scale = 100000;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			frac_us += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
		if (i == start || i - start > 9)
			return -1;
	}
	int64_t offset_s = 0;
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int oh, om;
		if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		offset_s = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
		i += 6;
	} else {
		return -1;
	}
	if (i != len)
		return -1;
	if (se == 60)
		se = 59; /* leap second: clamp, as most systems do */
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset_s;
	*wall_us = secs * 1000000 + frac_us;
	return 0;
}
