/* waiters.h - held long polls, per environment, with their deadlines.
 *
 * A poll that found nothing parks here: its request is suspended (no thread held) and
 * queued FIFO under its environment, and its wake time (deadline, or the moment an item
 * becomes reclaimable) goes into a min-heap. waiters_wake() resumes the oldest waiters of
 * an environment when work arrives; waiters_expire() resumes those whose time came. A
 * resumed request is dispatched again and retries its claim.
 *
 * Lost wake-ups are impossible: every wake bumps the environment's sequence number, a
 * poll reads it before trying to claim, and waiters_park() refuses to park (returns 1)
 * when it moved in between, so the poll retries instead of sleeping through the enqueue.
 * All functions are thread-safe. */
#ifndef ENVIROND_WAIT_WAITERS_H
#define ENVIROND_WAIT_WAITERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"
#include "http/server.h"

struct waiter_env;

/* One parked poll. Owned by the request that parks it; it must be unparked (woken or
 * expired) before the request is freed, which holds because a suspended request cannot end. */
struct waiter {
	struct http_request *req;
	char env_id[ID_MAX];
	int64_t wake_mono;       /* when the timer resumes it */
	size_t heap_index;       /* position in the heap while parked */
	int parked;
	struct waiter *prev, *next;
	struct waiter_env *env;
};

struct waiters;

struct waiters *waiters_new(size_t max_parked);
void waiters_free(struct waiters *w);

/* The environment's wake sequence number, to be read before a claim attempt. */
uint64_t waiters_seq(struct waiters *w, const char *env_id);

/* Park `wt` (env_id, req and wake_mono filled in) and suspend its request. Returns 0 when
 * parked, 1 when a wake happened since `seen_seq` (retry the claim now), -1 when the
 * limit of parked polls is reached (answer now). */
int waiters_park(struct waiters *w, struct waiter *wt, uint64_t seen_seq);

/* Resume up to n of the oldest waiters of env_id (all when n is 0) and bump its sequence. */
void waiters_wake(struct waiters *w, const char *env_id, size_t n);

/* Resume every waiter whose wake time is <= now_mono. Returns how many. */
size_t waiters_expire(struct waiters *w, int64_t now_mono);

/* Resume everyone and refuse further parking (shutdown). */
void waiters_wake_all(struct waiters *w);

/* Block until `until_mono`, or until a waiter with an earlier wake time parks, or until
 * waiters_interrupt(). Returns the earliest parked wake time (INT64_MAX when none). */
int64_t waiters_sleep(struct waiters *w, int64_t until_mono);
void waiters_interrupt(struct waiters *w);

size_t waiters_count(struct waiters *w);

/* Drop the state of environments with no waiters that were not polled or woken for two
 * minutes (deleted or idle ones). Returns how many were dropped. */
size_t waiters_collect(struct waiters *w, int64_t now_mono);

#endif
