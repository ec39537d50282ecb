/* runner.c - the echo runner's slots, polls, heartbeats and signals (see runner.h).
 *
 * Each slot thread polls with its own client and serves the turn it gets; its heartbeat
 * thread renews that turn's lease every third of the lease, and on 412 sets the slot's
 * cancel flag, which aborts the slot's request in flight and makes it drop the turn.
 * Signals are taken by one thread with sigwait(), so no handler runs inside libcurl. */
#include "agent/runner_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

void agent_deadline(int64_t delay_us, struct timespec *ts)
{
	if (delay_us < 0)
		delay_us = 0;
	clock_gettime(CLOCK_MONOTONIC, ts);
	int64_t ns = (int64_t)ts->tv_nsec + (delay_us % 1000000) * 1000;
	ts->tv_sec += (time_t)(delay_us / 1000000 + ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
}

int agent_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	if (pthread_condattr_init(&attr))
		return -1;
	int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) || pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc ? -1 : 0;
}

int64_t agent_backoff_us(int attempt, int retry_after_s)
{
	int64_t us = 250000LL << (attempt < 5 ? attempt : 5);
	uint64_t jitter = 0;
	if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) != (ssize_t)sizeof(jitter))
		jitter = (uint64_t)clock_mono_us() * 6364136223846793005ULL;
	us -= (int64_t)(jitter % ((uint64_t)us / 4 + 1));
	if (retry_after_s > 0 && (int64_t)retry_after_s * 1000000 > us)
		us = (int64_t)(retry_after_s < 60 ? retry_after_s : 60) * 1000000;
	return us;
}

int agent_slot_sleep(struct agent_slot *s, int64_t delay_us)
{
	struct timespec ts;
	agent_deadline(delay_us, &ts);
	pthread_mutex_lock(&s->mu);
	while (!atomic_load(&s->cancel) && pthread_cond_timedwait(&s->cond, &s->mu, &ts) == 0)
		;
	pthread_mutex_unlock(&s->mu);
	return atomic_load(&s->cancel);
}

void agent_slot_set_lease(struct agent_slot *s, const json_t *reply)
{
	int64_t len = RUNNER_DEFAULT_LEASE_US;
	const char *at = client_json_str(reply, "lease_expires_at");
	int64_t wall;
	if (at && clock_parse(at, strlen(at), &wall) == 0) {
		/* Wall time is the server's; only the length is carried over to the monotonic
		 * clock, so a clock step here cannot stretch the lease. */
		len = wall - clock_wall_us();
		if (len < 0)
			len = 0;
	}
	pthread_mutex_lock(&s->mu);
	s->lease_len_us = len;
	s->lease_end_mono_us = clock_mono_us() + len;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

/* Beat the held turn every third of its lease until it ends, is lost, or the slot quits. */
static void *beat_loop(void *arg)
{
	struct agent_slot *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->quit) {
		if (!s->turn_id[0] || atomic_load(&s->cancel)) {
			pthread_cond_wait(&s->cond, &s->mu);
			continue;
		}
		int64_t interval = s->lease_len_us / 3;
		if (interval < 100000)
			interval = 100000;
		if (interval > 10000000)
			interval = 10000000;
		struct timespec ts;
		agent_deadline(interval, &ts);
		char turn_id[TURN_ID_MAX + 1];
		memcpy(turn_id, s->turn_id, sizeof(turn_id));
		int waited = 0;
		while (!s->quit && strcmp(s->turn_id, turn_id) == 0 && waited != ETIMEDOUT)
			waited = pthread_cond_timedwait(&s->cond, &s->mu, &ts);
		if (s->quit || strcmp(s->turn_id, turn_id) != 0)
			continue;
		pthread_mutex_unlock(&s->mu);

		struct buf path;
		buf_init(&path, 512);
		buf_puts(&path, "/v1/environd/agent/turns/");
		client_put_escaped(&path, turn_id);
		buf_puts(&path, "/heartbeat");
		struct client_reply r;
		client_request(&s->beat_client, "POST", path.data, NULL, NULL, RUNNER_REQUEST_TIMEOUT_MS, &r);
		buf_free(&path);
		int lost = r.status == 412 || r.status == 404 || r.status == 401 || r.status == 403;
		if (r.status == 200)
			agent_slot_set_lease(s, r.body);
		else if (lost)
			log_event(LOG_WARN, "turn_lost", "turn_id", turn_id, "error", r.message, "error_code",
				  r.error_code, NULL);
		else
			log_event(LOG_WARN, "heartbeat_failed", "turn_id", turn_id, "error", r.message, NULL);
		client_reply_free(&r);

		pthread_mutex_lock(&s->mu);
		/* A lease that ran out while beats failed is as good as lost. */
		if (lost || (s->turn_id[0] && clock_mono_us() > s->lease_end_mono_us)) {
			if (strcmp(s->turn_id, turn_id) == 0) {
				atomic_store(&s->cancel, 1);
				pthread_cond_broadcast(&s->cond);
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void hold_turn(struct agent_slot *s, const char *turn_id)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->turn_id, sizeof(s->turn_id), "%s", turn_id ? turn_id : "");
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

static void *slot_loop(void *arg)
{
	struct agent_slot *s = arg;
	struct runner *r = s->r;
	struct buf path;
	buf_init(&path, 1024);
	buf_puts(&path, "/v1/environd/agent/turns/poll?block_ms=");
	buf_put_i64(&path, r->cfg->once ? 0 : RUNNER_POLL_BLOCK_MS);
	buf_puts(&path, "&model=");
	client_put_escaped(&path, r->cfg->model);
	int failures = 0;
	while (!atomic_load(&r->draining) && !atomic_load(&r->refused)) {
		struct client_reply rep;
		/* The poll itself is never canceled: a turn the server handed out in a reply we
		 * dropped would sit unserved until its lease ran out. */
		client_request(&s->client, "GET", path.data, NULL, NULL, RUNNER_POLL_BLOCK_MS + RUNNER_REQUEST_TIMEOUT_MS,
			       &rep);
		if (rep.status == 200 && !rep.bad_body && json_is_object(rep.body)) {
			failures = 0;
			const char *turn_id = client_json_str(rep.body, "id");
			atomic_store(&s->cancel, atomic_load(&r->aborting));
			agent_slot_set_lease(s, rep.body);
			hold_turn(s, turn_id);
			/* Only a held turn's requests are canceled (lost turn, stopping now). */
			s->client.cancel = &s->cancel;
			turn_serve(s, rep.body);
			s->client.cancel = NULL;
			hold_turn(s, NULL);
		} else if (rep.status == 200 && !rep.bad_body) {
			failures = 0;
			if (r->cfg->once) {
				client_reply_free(&rep);
				break;
			}
		} else if (client_is_transient(&rep)) {
			log_event(LOG_WARN, "poll_failed", "error", rep.message, NULL);
			int retry_after = rep.retry_after_s;
			client_reply_free(&rep);
			atomic_store(&s->cancel, atomic_load(&r->draining));
			agent_slot_sleep(s, agent_backoff_us(failures++, retry_after));
			continue;
		} else {
			char status[16];
			snprintf(status, sizeof(status), "%d", rep.status);
			log_event(LOG_ERROR, "poll_refused", "status", status, "error", rep.message, "error_code",
				  rep.error_code, NULL);
			atomic_store(&r->refused, 1);
		}
		client_reply_free(&rep);
	}
	buf_free(&path);
	pthread_mutex_lock(&s->mu);
	s->quit = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
}

/* Wake every slot's sleeps (and, when aborting, cancel their requests). */
static void wake_slots(struct runner *r, int cancel)
{
	for (int i = 0; i < r->cfg->concurrency; i++) {
		struct agent_slot *s = &r->slots[i];
		pthread_mutex_lock(&s->mu);
		if (cancel || !s->turn_id[0])
			atomic_store(&s->cancel, 1);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->mu);
	}
}

static void *signal_loop(void *arg)
{
	struct runner *r = arg;
	sigset_t set;
	stop_signals(&set);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		const char *name = sigabbrev_np(sig);
		if (sig != SIGQUIT && !atomic_load(&r->draining)) {
			atomic_store(&r->draining, 1);
			log_event(LOG_INFO, "draining", "signal", name ? name : "?", NULL);
			wake_slots(r, 0);
		} else if (atomic_load(&r->aborting)) {
			log_event(LOG_WARN, "exiting_now", "signal", name ? name : "?", NULL);
			_exit(1);
		} else {
			atomic_store(&r->draining, 1);
			atomic_store(&r->aborting, 1);
			log_event(LOG_WARN, "stopping_now", "signal", name ? name : "?", NULL);
			wake_slots(r, 1);
		}
	}
}

int runner_run(const struct runner_config *cfg)
{
	struct runner r = {.cfg = cfg};
	sigset_t set;
	stop_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (client_global_init()) {
		log_event(LOG_ERROR, "start_failed", "reason", "cannot set up libcurl", NULL);
		return 1;
	}
	r.slots = calloc((size_t)cfg->concurrency, sizeof(*r.slots));
	if (!r.slots)
		return 1;
	pthread_t sig_thread;
	int rc = 1, started = 0;
	if (pthread_create(&sig_thread, NULL, signal_loop, &r))
		goto out;
	char n[16];
	snprintf(n, sizeof(n), "%d", cfg->concurrency);
	log_event(LOG_INFO, "agent_started", "model", cfg->model, "concurrency", n, NULL);
	for (; started < cfg->concurrency; started++) {
		struct agent_slot *s = &r.slots[started];
		s->r = &r;
		s->index = started;
		if (client_init(&s->client, cfg->base_url, cfg->agent_key) ||
		    client_init(&s->beat_client, cfg->base_url, cfg->agent_key) || pthread_mutex_init(&s->mu, NULL) ||
		    agent_cond_init(&s->cond)) {
			log_event(LOG_ERROR, "start_failed", "reason", "out of memory", NULL);
			break;
		}
		if (pthread_create(&s->beat_thread, NULL, beat_loop, s))
			break;
		if (pthread_create(&s->thread, NULL, slot_loop, s)) {
			s->quit = 1;
			pthread_cond_broadcast(&s->cond);
			pthread_join(s->beat_thread, NULL);
			break;
		}
	}
	if (started < cfg->concurrency)
		atomic_store(&r.refused, 1);
	for (int i = 0; i < started; i++) {
		pthread_join(r.slots[i].thread, NULL);
		pthread_join(r.slots[i].beat_thread, NULL);
	}
	rc = atomic_load(&r.refused) ? 1 : 0;
	log_event(LOG_INFO, "agent_stopped", NULL);
	pthread_cancel(sig_thread);
	pthread_join(sig_thread, NULL);
out:
	for (int i = 0; i < cfg->concurrency; i++) {
		client_free(&r.slots[i].client);
		client_free(&r.slots[i].beat_client);
	}
	free(r.slots);
	return rc;
}
