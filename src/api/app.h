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
	int64_t sweep_interval_us;
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
 * in a fleet, on every other node. After the commit that made them worth waking. */
void app_wake(struct app *a, const char *key, size_t n);
/* A fleet: write the workers this node saw polling since the last time to the store, for
 * every node's stats (the sweeper does it every few seconds; the stats route first). */
void app_flush_seen(struct app *a);
/* A revocation's reply waits for this: in a fleet, until this node has read a revocation
 * notification newer than `heard` (read before the revocation committed), bounded to 1 s.
 * PostgreSQL sends one notification to every node at the commit, so by then the others
 * have it too: a client told "revoked" finds the key refused on every node. */
void app_revocation_heard(struct app *a, unsigned long long heard);

#endif
