/* waiters.h - held long polls and streams, per key (an environment, a session, an
 * organization's turn queue), with their deadlines.
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
 * wait/ knows no HTTP library: parking suspends and waking resumes a request through the
 * hooks given to waiters_new(). All functions are thread-safe. */
#ifndef ENVIROND_WAIT_WAITERS_H
#define ENVIROND_WAIT_WAITERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"

#define WAITER_KEY_MAX 96

struct waiter_env;

/* How a parked request is suspended and resumed (the HTTP layer's, given by the app).
 * suspend runs under the waiters' lock; resume too, and may run on any thread. */
struct waiter_hooks {
	void (*suspend)(void *req);
	void (*resume)(void *req);
};

/* What a waiter holds: a poll (work or agent turn) or a stream. Each kind has its own
 * limit of parked waiters. */
enum waiter_kind { WAITER_POLL = 0, WAITER_STREAM = 1 };

/* One parked poll or stream. Owned by the request that parks it; it must be unparked
 * (woken or expired) before the request is freed, which holds because a suspended request
 * cannot end. */
struct waiter {
	void *req;               /* what the hooks suspend and resume */
	enum waiter_kind kind;
	char env_id[WAITER_KEY_MAX]; /* the key it waits under */
	int64_t wake_mono;       /* when the timer resumes it */
	size_t heap_index;       /* position in the heap while parked */
	int parked;
	struct waiter *prev, *next;
	struct waiter_env *env;
};

struct waiters;

/* At most max_polls parked polls and max_streams parked streams. */
struct waiters *waiters_new(size_t max_polls, size_t max_streams, const struct waiter_hooks *hooks);
void waiters_free(struct waiters *w);

/* The environment's wake sequence number, to be read before a claim attempt. */
uint64_t waiters_seq(struct waiters *w, const char *env_id);

/* Park `wt` (env_id, req, kind and wake_mono filled in) and suspend its request. Returns 0
 * when parked, 1 when a wake happened since `seen_seq` (retry the claim now), -1 when the
 * limit of parked waiters of its kind is reached (answer now). */
int waiters_park(struct waiters *w, struct waiter *wt, uint64_t seen_seq);

/* Resume up to n of the oldest waiters of env_id (all when n is 0) and bump its sequence. */
void waiters_wake(struct waiters *w, const char *env_id, size_t n);
/* The same for n >= 1, but each waiter taken out is given to take(req, arg) instead of
 * being resumed: from then on it is take's to resume. Called under the waiters' lock, as
 * the resume hook is. Returns how many were taken. */
size_t waiters_wake_with(struct waiters *w, const char *env_id, size_t n, void (*take)(void *req, void *arg),
			 void *arg);

/* Resume every waiter whose wake time is <= now_mono. Returns how many. */
size_t waiters_expire(struct waiters *w, int64_t now_mono);

/* Resume everyone and bump every key's sequence; parking goes on (a reset of all data:
 * each resumed request looks again at what it waits for). */
void waiters_wake_every(struct waiters *w);

/* Resume everyone and refuse further parking (shutdown). */
void waiters_wake_all(struct waiters *w);

/* Block until `until_mono`, or until a waiter with an earlier wake time parks, or until
 * waiters_interrupt(). Returns the earliest parked wake time (INT64_MAX when none). */
int64_t waiters_sleep(struct waiters *w, int64_t until_mono);
void waiters_interrupt(struct waiters *w);

size_t waiters_count(struct waiters *w);
size_t waiters_count_kind(struct waiters *w, enum waiter_kind kind);

/* Drop the state of environments with no waiters that were not polled or woken for two
 * minutes (deleted or idle ones). Returns how many were dropped. */
size_t waiters_collect(struct waiters *w, int64_t now_mono);

#endif
