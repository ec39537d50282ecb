/* app.h - the API application: what every handler can reach, and its lifecycle.
 *
 * app_start() opens nothing itself: it takes an open store, starts the HTTP server and
 * the sweeper thread (lease expiry + long-poll deadlines). app_stop() answers every held
 * poll, stops accepting, and joins the threads. */
#ifndef ENVIROND_API_APP_H
#define ENVIROND_API_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include "api/seen.h"
#include "http/server.h"
#include "model/cursor.h"
#include "store/store.h"
#include "wait/waiters.h"

struct test_mode;

struct app_config {
	struct http_config http;
	const char *public_url;   /* base URL put into work secrets; NULL = http(s)://<listen> */
	size_t max_held_polls;
	size_t max_workers_tracked; /* worker ids kept for workers_polling, all environments */
	size_t max_held_streams;       /* held event streams (SSE) */
	int64_t agent_turn_lease_us;   /* an agent turn's lease (agent extension) */
	int64_t stream_keepalive_us;   /* a held stream's keepalive comment interval */
	int64_t sweep_interval_us;
	int test_mode;                 /* serve the test-mode routes and inject faults (tests only) */
	int test_clock;           /* serve the test clock route (environd serve --test-clock) */
};

struct app_metrics {
	atomic_ullong requests;
	atomic_ullong responses_2xx, responses_4xx, responses_5xx;
	atomic_ullong work_enqueued, work_delivered, work_undelivered, leases_expired;
};

struct app {
	struct store *store;
	struct waiters *waiters;
	struct seen *seen;        /* worker ids seen polling, per environment */
	struct cred_cache *creds; /* environment keys resolved recently */
	struct poll_hint *hints;  /* environments where a claim just found nothing */
	atomic_ullong revocations_heard; /* a fleet: revocation notifications this node read */
	unsigned char cursor_key[CURSOR_KEY_LEN];
	char public_url[512];
	struct http_server *http;
	int port;
	pthread_t sweeper;
	atomic_int stopping;
	atomic_int polls_active; /* poll requests started and not yet ended (held ones included) */
	atomic_int deferred;     /* requests and undeliveries handed to the store's writer, not done */
	pthread_mutex_t flush_lock; /* one app_flush_seen() at a time */
	int64_t sweep_interval_us;
	_Atomic int64_t sweep_at; /* lease time of the sweeper's next pass (app.c) */
	int test_clock;          /* the test clock route is served (tests only) */
	struct app_metrics metrics;
	int64_t agent_turn_lease_us;
	int64_t stream_keepalive_us;
	size_t max_held_streams;
	struct test_mode *test_mode;   /* NULL unless --test-mode */
};

/* Start serving. Returns 0, or -1 with a message in why. */
int app_start(struct app *a, struct store *store, const struct app_config *cfg, char *why, size_t why_len);
void app_stop(struct app *a);

/* Expire every lease that ran out by lease time now (T18/T19) and wake the polls of the
 * environments that got items back. The sweeper calls it every sweep interval; the test
 * clock calls it at once after moving time. */
void app_sweep_leases(struct app *a);
/* Resume the held polls or streams waiting under key (n as waiters_wake's) on this node and,
 * in a fleet, on every other node. After the commit that made them worth waking: a
 * handler run inside a commit group (dispatch.c) has it recorded and done after the
 * group's commit (after_commit.h), as have the three below. */
void app_wake(struct app *a, const char *key, size_t n);
/* The same on this node only (the others heard it from the commit itself). */
void app_wake_here(struct app *a, const char *key, size_t n);
/* Every held poll and stream of this node looks again at what it waits for. */
void app_wake_every(struct app *a);
/* This node forgets every credential it cached (a revocation, a deleted environment). */
void app_forget_credentials(struct app *a);
/* A lease or agent turn granted or renewed runs out at `at` (lease time): the sweeper
 * passes then, not later (after the commit, as app_wake). */
void app_lease_due(struct app *a, int64_t at);
/* The sweeper passes at once (the test clock moved, a group was lost). */
void app_sweep_soon(struct app *a);
struct after_commit;
/* Replay what a request recorded while its group was not committed; when the group did
 * not commit (`committed` 0), forget every cached credential and wake every waiter instead. */
void app_after_commit(struct app *a, struct after_commit *ac, int committed);
/* A fleet: write the workers this node saw polling since the last time to the store, for
 * every node's stats (the sweeper does it every few seconds; the stats route first). */
void app_flush_seen(struct app *a);
/* A revocation's reply waits for this: in a fleet, until this node has read a revocation
 * notification newer than `heard` (read before the revocation committed), bounded to 1 s.
 * PostgreSQL sends one notification to every node at the commit, so by then the others
 * have it too: a client told "revoked" finds the key refused on every node. */
void app_revocation_heard(struct app *a, unsigned long long heard);

#endif
