/* runner_int.h - the echo runner's internals, shared by runner.c (slots, polling,
 * heartbeats, signals) and turn.c (one turn's requests). */
#ifndef ENVIROND_AGENT_RUNNER_INT_H
#define ENVIROND_AGENT_RUNNER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "agent/runner.h"
#include "client/client.h"

#define RUNNER_REQUEST_TIMEOUT_MS 10000L
/* A turn's lease when the poll's reply does not say (the server's default). */
#define RUNNER_DEFAULT_LEASE_US (30LL * 1000000)
#define TURN_ID_MAX 128

struct runner;

/* One slot: a thread serving one turn at a time, and its heartbeat thread.
 * `cancel` aborts the slot's request in flight; it is set when the turn is lost (412 on a
 * beat) or when the runner is stopping now. */
struct agent_slot {
	struct runner *r;
	int index;
	pthread_t thread, beat_thread;
	struct client client;       /* the slot thread's */
	struct client beat_client;  /* the heartbeat thread's */
	atomic_int cancel;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* Guarded by mu: the turn held ("" = none) and when its lease ends (monotonic µs). */
	char turn_id[TURN_ID_MAX + 1];
	int64_t lease_end_mono_us;
	int64_t lease_len_us;
	int quit;                   /* the beat thread ends */
};

struct runner {
	const struct runner_config *cfg;
	atomic_int draining;        /* take no new turn */
	atomic_int aborting;        /* drop held turns now */
	atomic_int refused;         /* the server refused the key or the route */
	atomic_int idle_exits;      /* --once: slots that found nothing */
	struct agent_slot *slots;
};

/* A monotonic deadline delay_us from now, for pthread_cond_timedwait on a condition
 * variable set up with agent_cond_init() (CLOCK_MONOTONIC: a wall-clock step must not
 * stretch or cut a wait). */
void agent_deadline(int64_t delay_us, struct timespec *ts);
int agent_cond_init(pthread_cond_t *cond);
/* The delay before retry number `attempt` (0-based): 250 ms doubling to 8 s, up to a quarter
 * off at random so runners that failed together do not retry together, and never less
 * than retry_after_s (capped at 60 s) when the server sent one. */
int64_t agent_backoff_us(int attempt, int retry_after_s);

/* Serve one turn (the poll reply `turn`) on slot s. The lease is held by the beat thread
 * meanwhile. Returns 0 when the turn ended, -1 when it was dropped (lost, refused, or
 * the runner is stopping). */
int turn_serve(struct agent_slot *s, const json_t *turn);

/* Sleep up to delay_us, returning early (non-zero) when the slot's cancel flag is set. */
int agent_slot_sleep(struct agent_slot *s, int64_t delay_us);

/* Record the lease a reply granted: lease_expires_at (RFC 3339) against the wall clock. */
void agent_slot_set_lease(struct agent_slot *s, const json_t *reply);

#endif
