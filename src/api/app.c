/* app.c - the API application's lifecycle, its sweeper thread, and the wake-ups a write
 * causes (done at once, or after the commit of the group it runs in: after_commit.h).
 *
 * The sweeper does two timed jobs: it resumes held polls whose deadline (or reclaim
 * moment) came, and when the earliest lease or agent turn runs out it expires them in
 * small batches (T18/T19) and wakes the polls of environments that got items back, as
 * many as the store says. */
#include "api/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/after_commit.h"
#include "api/cred_cache.h"
#include "api/dispatch.h"
#include "api/poll_hint.h"
#include "api/sessions.h"
#include "api/test_mode.h"
#include "api/work_wake.h"
#include "common/clock.h"
#include "common/log.h"

#define EXPIRE_BATCH 128

void app_sweep_leases(struct app *a)
{
	struct work_wake wakes[EXPIRE_BATCH];
	for (int round = 0; round < 64; round++) {
		size_t n_wakes = 0, n_expired = 0;
		if (a->store->ops->leases_expire(a->store, clock_lease_us(), EXPIRE_BATCH, wakes, &n_wakes, &n_expired))
			return;
		atomic_fetch_add(&a->metrics.leases_expired, n_expired);
		for (size_t i = 0; i < n_wakes; i++) {
			log_event(LOG_INFO, "leases_expired", "environment_id", wakes[i].environment_id, NULL);
			work_wake_polls(a, &wakes[i]);
		}
		if (n_expired < EXPIRE_BATCH)
			return;
	}
}

void app_wake(struct app *a, const char *key, size_t n)
{
	if (after_commit_record(AFTER_WAKE, key, n, 0))
		return;
	waiters_wake(a->waiters, key, n);
	a->store->ops->publish(a->store, key, n);
}

void app_wake_here(struct app *a, const char *key, size_t n)
{
	if (!after_commit_record(AFTER_WAKE_HERE, key, n, 0))
		waiters_wake(a->waiters, key, n);
}

void app_wake_every(struct app *a)
{
	if (!after_commit_record(AFTER_WAKE_EVERY, NULL, 0, 0))
		waiters_wake_every(a->waiters);
}

void app_forget_credentials(struct app *a)
{
	if (!after_commit_record(AFTER_FORGET_CREDENTIALS, NULL, 0, 0))
		cred_cache_clear(a->creds);
}

/* A wake's waiters that were not handed the item inside the group (n 0: all of them). */
static void wake_rest(struct app *a, const struct after_commit_effect *e)
{
	if (e->n == 0)
		waiters_wake(a->waiters, e->key, 0);
	else if (e->n > e->handed)
		waiters_wake(a->waiters, e->key, e->n - e->handed);
}

void app_after_commit(struct app *a, struct after_commit *ac, int committed)
{
	/* Waiters taken out inside the group are this list's to resume, whatever happened. */
	for (size_t i = 0; i < ac->n; i++)
		if (ac->list[i].kind == AFTER_RESUME)
			http_resume(ac->list[i].req);
	if (!committed || ac->overflow) {
		/* Nothing of it was kept, or not all of its effects were: what this node cached
		 * (credentials, hints) may be wrong, and its waiters look again. */
		cred_cache_clear(a->creds);
		waiters_wake_every(a->waiters);
		app_sweep_soon(a);
		return;
	}
	for (size_t i = 0; i < ac->n; i++) {
		const struct after_commit_effect *e = &ac->list[i];
		switch (e->kind) {
		case AFTER_WAKE:
			wake_rest(a, e);
			a->store->ops->publish(a->store, e->key, e->n);
			break;
		case AFTER_WAKE_HERE:
			wake_rest(a, e);
			break;
		case AFTER_WAKE_EVERY:
			waiters_wake_every(a->waiters);
			break;
		case AFTER_FORGET_CREDENTIALS:
			cred_cache_clear(a->creds);
			break;
		case AFTER_LEASE_DUE:
			app_lease_due(a, e->at);
			break;
		case AFTER_RESUME:
			break;
		}
	}
}

void app_revocation_heard(struct app *a, unsigned long long heard)
{
	if (!a->store->fleet)
		return;
	for (int i = 0; i < 1000 && atomic_load(&a->revocations_heard) <= heard; i++)
		usleep(1000);
}

/* Another node's wake (key NULL: its notifications may have been lost, look again at
 * everything). */
static void fleet_wake(void *arg, const char *key, size_t n)
{
	struct app *a = arg;
	if (key && strcmp(key, STORE_KEY_CREDENTIALS) == 0) {
		cred_cache_clear(a->creds);
		atomic_fetch_add(&a->revocations_heard, 1);
	} else if (key) {
		waiters_wake(a->waiters, key, n);
	} else {
		cred_cache_clear(a->creds);
		waiters_wake_every(a->waiters);
	}
}

/* wait/ suspends and resumes requests through these. */
static void app_suspend(void *req) { http_suspend(req); }
static void app_resume(void *req) { http_resume(req); }

/* Agent turns whose lease ran out: their sessions await a turn again; wake the polls. */
static void sweep_turns(struct app *a)
{
	char orgs[EXPIRE_BATCH][TENANT_NAME_MAX + 1];
	for (int round = 0; round < 64; round++) {
		size_t n_orgs = 0, n_expired = 0;
		if (a->store->ops->turns_expire(a->store, clock_lease_us(), EXPIRE_BATCH, orgs, &n_orgs, &n_expired))
			return;
		for (size_t i = 0; i < n_orgs; i++) {
			log_event(LOG_INFO, "agent_turns_expired", "org", orgs[i], NULL);
			sessions_wake_turns(a, orgs[i]);
		}
		if (n_expired < EXPIRE_BATCH)
			return;
	}
}

#define SEEN_FLUSH_US (5 * 1000000LL)
#define SEEN_FLUSH_BATCH 512

void app_flush_seen(struct app *a)
{
	/* One flush at a time: a stats request that finds no sighting left to write must not
	 * count before the sweeper's flush, which took them, has committed them. */
	pthread_mutex_lock(&a->flush_lock);
	struct seen_row *rows = malloc(SEEN_FLUSH_BATCH * sizeof(*rows));
	struct worker_seen *out = malloc(SEEN_FLUSH_BATCH * sizeof(*out));
	for (int round = 0; rows && out && round < 256; round++) {
		size_t n = seen_take_dirty(a->seen, rows, SEEN_FLUSH_BATCH);
		if (!n)
			break;
		int64_t now_mono = clock_mono_us(), now_lease = clock_lease_us();
		for (size_t i = 0; i < n; i++) {
			memcpy(out[i].environment_id, rows[i].env_id, sizeof(out[i].environment_id));
			snprintf(out[i].worker, sizeof(out[i].worker), "%016llx", (unsigned long long)rows[i].worker_hash);
			out[i].seen_at = now_lease - (now_mono - rows[i].last_mono);
		}
		/* The store away: these sightings are dropped, the next ones will do. */
		if (a->store->ops->workers_seen(a->store, out, n, now_lease - SEEN_WINDOW_US) || n < SEEN_FLUSH_BATCH)
			break;
	}
	free(rows);
	free(out);
	pthread_mutex_unlock(&a->flush_lock);
}

/* The sweeper's next pass, in lease time: when the earliest lease or turn known to the
 * store runs out (a single process sees every grant: app_lease_due() brings it forward),
 * at most SWEEP_IDLE_US away; in a fleet, every sweep interval (leases are granted on
 * other nodes too). The due time is taken out before the store is read, and what a grant
 * put back meanwhile is kept: a grant committed before the read is in it, one after
 * comes through app_lease_due(). */
#define SWEEP_IDLE_US (60 * 1000000LL)

static void plan_sweep(struct app *a)
{
	int64_t now = clock_lease_us();
	int64_t at = now + (a->store->fleet ? a->sweep_interval_us : SWEEP_IDLE_US);
	atomic_store(&a->sweep_at, INT64_MAX);
	if (!a->store->fleet) {
		int64_t lease = 0, turn = 0;
		if (a->store->ops->next_lease_expiry(a->store, &lease) || a->store->ops->next_turn_expiry(a->store, &turn))
			at = now + a->sweep_interval_us; /* the store is away: try again soon */
		if (lease > 0 && lease < at)
			at = lease;
		if (turn > 0 && turn < at)
			at = turn;
	}
	app_lease_due(a, at);
}

void app_lease_due(struct app *a, int64_t at)
{
	if (at <= 0 || after_commit_record(AFTER_LEASE_DUE, NULL, 0, at))
		return;
	int64_t cur = atomic_load(&a->sweep_at);
	while (at < cur) {
		if (atomic_compare_exchange_weak(&a->sweep_at, &cur, at)) {
			waiters_interrupt(a->waiters); /* the sweeper sleeps longer than this */
			return;
		}
	}
}

void app_sweep_soon(struct app *a)
{
	atomic_store(&a->sweep_at, 0);
	waiters_interrupt(a->waiters);
}

static void *sweeper(void *arg)
{
	struct app *a = arg;
	int64_t next_collect = clock_mono_us() + 60 * 1000000LL, next_flush = 0;
	while (!atomic_load(&a->stopping)) {
		int64_t now = clock_mono_us();
		waiters_expire(a->waiters, now);
		if (clock_lease_us() >= atomic_load(&a->sweep_at)) {
			/* In a fleet one node sweeps for all (store.h, sweeps). */
			if (a->store->ops->sweeps(a->store)) {
				app_sweep_leases(a);
				sweep_turns(a);
			}
			plan_sweep(a);
		}
		if (a->store->fleet && now >= next_flush) {
			app_flush_seen(a);
			next_flush = now + SEEN_FLUSH_US;
		}
		if (now >= next_collect) {
			waiters_collect(a->waiters, now);
			next_collect = now + 60 * 1000000LL;
		}
		/* Lease time runs at the monotonic clock's pace (a test clock moving it interrupts
		 * this sleep). */
		int64_t in_us = atomic_load(&a->sweep_at) - clock_lease_us();
		int64_t until = now + (in_us < 0 ? 0 : in_us > SWEEP_IDLE_US ? SWEEP_IDLE_US : in_us);
		if (a->store->fleet && next_flush < until)
			until = next_flush;
		if (next_collect < until)
			until = next_collect;
		waiters_sleep(a->waiters, until);
	}
	return NULL;
}

int app_start(struct app *a, struct store *store, const struct app_config *cfg, char *why, size_t why_len)
{
	memset(a, 0, sizeof(*a));
	a->store = store;
	a->sweep_interval_us = cfg->sweep_interval_us;
	a->max_held_streams = cfg->max_held_streams ? cfg->max_held_streams : 4096;
	a->agent_turn_lease_us = cfg->agent_turn_lease_us ? cfg->agent_turn_lease_us : 30 * 1000000LL;
	a->stream_keepalive_us = cfg->stream_keepalive_us ? cfg->stream_keepalive_us : 15 * 1000000LL;
	a->test_clock = cfg->test_clock;
	pthread_mutex_init(&a->flush_lock, NULL);
	clock_lease_anchor();
	store->ops->cursor_key(store, a->cursor_key);
	static const struct waiter_hooks hooks = {app_suspend, app_resume};
	a->waiters = waiters_new(cfg->max_held_polls, a->max_held_streams, &hooks);
	a->seen = seen_new(cfg->max_workers_tracked);
	a->creds = cred_cache_new(65536);
	a->hints = poll_hint_new(65536);
	if (cfg->test_mode && !(a->test_mode = test_mode_new())) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	if (!a->waiters || !a->seen || !a->creds || !a->hints) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	/* Other nodes' wakes reach this node's held polls and streams (a fleet); before the
	 * first request, so that none parks unheard. */
	if (store->ops->subscribe(store, fleet_wake, a)) {
		snprintf(why, why_len, "cannot listen for other nodes' wake-ups");
		return -1;
	}
	if (http_server_start(&cfg->http, app_dispatch, app_done, a, &a->http, &a->port, why, why_len))
		return -1;
	if (cfg->public_url && *cfg->public_url) {
		snprintf(a->public_url, sizeof(a->public_url), "%s", cfg->public_url);
	} else {
		char host[256];
		snprintf(host, sizeof(host), "%s", cfg->http.listen);
		char *colon = strrchr(host, ':');
		if (colon)
			*colon = '\0';
		if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
			snprintf(host, sizeof(host), "127.0.0.1");
		const char *scheme = cfg->http.tls_cert_pem ? "https" : "http";
		snprintf(a->public_url, sizeof(a->public_url), "%s://%s:%d", scheme, host, a->port);
	}
	size_t len = strlen(a->public_url);
	while (len > 0 && a->public_url[len - 1] == '/')
		a->public_url[--len] = '\0';
	if (pthread_create(&a->sweeper, NULL, sweeper, a)) {
		snprintf(why, why_len, "cannot start the sweeper thread");
		http_server_stop(a->http);
		return -1;
	}
	return 0;
}

/* Wait until nothing this app handed to the store's writer is left. It always ends: the
 * writer runs every job queued before the store closes. */
static void app_deferred_drain(struct app *a)
{
	for (int i = 1; atomic_load(&a->deferred) > 0; i++) {
		if (i % 5000 == 0)
			log_event(LOG_WARN, "stop_waiting_for_store", "reason", "requests still wait for their commit", NULL);
		usleep(1000);
	}
}

void app_stop(struct app *a)
{
	/* Stop taking connections, answer every held poll, then stop the threads. */
	http_server_quiesce(a->http);
	atomic_store(&a->stopping, 1);
	waiters_interrupt(a->waiters);
	pthread_join(a->sweeper, NULL);
	waiters_wake_all(a->waiters);
	/* Requests on the store's writer end before their connections may close; from now on
	 * none is handed to it (dispatch.c runs them in place). */
	app_deferred_drain(a);
	/* Let the resumed polls send their null before the connections close (bounded). */
	for (int i = 0; i < 2000 && atomic_load(&a->polls_active) > 0; i++)
		usleep(1000);
	app_deferred_drain(a);
	http_server_stop(a->http);
	app_deferred_drain(a); /* undeliveries of the connections that closed */
	a->store->ops->subscribe(a->store, NULL, NULL); /* no more deliveries into the waiters */
	waiters_free(a->waiters);
	seen_free(a->seen);
	cred_cache_free(a->creds);
	poll_hint_free(a->hints);
	test_mode_free(a->test_mode);
	pthread_mutex_destroy(&a->flush_lock);
}
