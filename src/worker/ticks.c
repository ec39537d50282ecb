/* ticks.c - the worker's time and randomness (see ticks.h). */
#include "worker/ticks.h"

#include <sys/random.h>

#include "common/clock.h"

void worker_deadline(int64_t delay_us, struct timespec *ts)
{
	if (delay_us < 0)
		delay_us = 0;
	clock_gettime(CLOCK_MONOTONIC, ts);
	int64_t ns = (int64_t)ts->tv_nsec + (delay_us % 1000000) * 1000;
	ts->tv_sec += (time_t)(delay_us / 1000000 + ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
}

int worker_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	if (pthread_condattr_init(&attr))
		return -1;
	/* Deadlines are monotonic: a wall-clock step must not stretch or cut a wait. */
	int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) || pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc ? -1 : 0;
}

uint64_t worker_random(uint64_t bound)
{
	uint64_t v = 0;
	if (bound == 0)
		return 0;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint64_t)clock_mono_us() * 6364136223846793005ULL;
	return v % bound;
}

int64_t worker_backoff_us(int attempt, int retry_after_s)
{
	const int64_t base = 1000000, cap = 60000000;
	int64_t us = cap;
	if (attempt >= 0 && attempt < 6)
		us = base << attempt;
	if (us > cap)
		us = cap;
	/* Up to a quarter off at random, so a fleet that failed together does not retry
	 * together. */
	us -= (int64_t)worker_random((uint64_t)us / 4 + 1);
	if (retry_after_s > 0) {
		int64_t ra = (int64_t)retry_after_s * 1000000;
		if (ra > cap)
			ra = cap;
		if (ra > us)
			us = ra;
	}
	return us;
}
