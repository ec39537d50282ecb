/* ticks.h - the worker's time and randomness: monotonic deadlines for condition waits,
 * retry backoff, and random numbers. A leaf: it includes nothing of the worker's, so
 * worker.c, item.c and lease.c can all use it without including each other. */
#ifndef ENVIROND_WORKER_TICKS_H
#define ENVIROND_WORKER_TICKS_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* An absolute CLOCK_MONOTONIC time delay_us from now, for pthread_cond_timedwait on a
 * condition variable set up with worker_cond_init(). */
void worker_deadline(int64_t delay_us, struct timespec *ts);
int worker_cond_init(pthread_cond_t *cond);
/* A uniformly random number in [0, bound). */
uint64_t worker_random(uint64_t bound);
/* Jittered exponential backoff for attempt (0-based): 1 s doubling up to 60 s, minus up
 * to a quarter at random, and never less than retry_after_s when the server gave one. */
int64_t worker_backoff_us(int attempt, int retry_after_s);

#endif
