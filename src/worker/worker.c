/* worker.c - the worker's main loop: long-poll the environment for work while a slot is
 * free, hand each item to a slot's thread, back off on transient failures, and on the way
 * out wait for every slot so that nothing it started outlives it (see worker_int.h for
 * the threads). */
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "worker/ticks.h"
#include "worker/worker_int.h"

void slot_wake(struct slot *s)
{
	ssize_t n = write(s->wake[1], "w", 1);
	(void)n;
}

/* ---- the loop ---- */

/* Sleep up to us, or until a drain begins. */
static void nap(struct worker *w, int64_t us)
{
	struct timespec ts;
	worker_deadline(us, &ts);
	pthread_mutex_lock(&w->mu);
	while (!atomic_load(&w->draining))
		if (pthread_cond_timedwait(&w->cond, &w->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&w->mu);
}

/* Join the threads of slots whose item is over; called with w->mu held. */
static void reap_slots(struct worker *w)
{
	for (int i = 0; i < w->cfg->concurrency; i++) {
		struct slot *s = &w->slots[i];
		if (s->busy && s->done) {
			pthread_join(s->thread, NULL);
			s->busy = s->done = 0;
		}
	}
}

/* Wait for a free slot (or a drain); returns it with w->mu released, or NULL. */
static struct slot *wait_for_slot(struct worker *w)
{
	struct slot *free_slot = NULL;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		reap_slots(w);
		if (atomic_load(&w->draining))
			break;
		for (int i = 0; i < w->cfg->concurrency && !free_slot; i++)
			if (!w->slots[i].busy)
				free_slot = &w->slots[i];
		if (free_slot)
			break;
		pthread_cond_wait(&w->cond, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return free_slot;
}

static int start_item(struct worker *w, struct slot *s, struct item *it)
{
	pthread_mutex_lock(&w->mu);
	s->item = *it;
	s->claimed_us = clock_mono_us();
	s->busy = 1;
	s->done = 0;
	w->running++;
	int rc = pthread_create(&s->thread, NULL, item_thread, s);
	if (rc) {
		s->busy = 0;
		w->running--;
		*it = s->item;
		memset(&s->item, 0, sizeof(s->item));
	}
	pthread_mutex_unlock(&w->mu);
	return rc ? -1 : 0;
}

/* Say why the server refused the worker, in terms an operator can act on. */
static void report_refusal(const struct worker *w, const struct client_reply *r)
{
	char status[16], why[768];
	snprintf(status, sizeof(status), "%d", r->status);
	const char *env = w->cfg->environment_id;
	if (r->status == 401)
		snprintf(why, sizeof(why),
			 "the environment key was not accepted (%s); check ANTHROPIC_ENVIRONMENT_KEY or "
			 "--environment-key-file",
			 r->message);
	else if (r->status == 403)
		snprintf(why, sizeof(why), "the environment key may not poll %s (%s)", env, r->message);
	else if (r->status == 404)
		snprintf(why, sizeof(why), "environment %s was not found (%s)", env, r->message);
	else
		snprintf(why, sizeof(why), "the server refused to poll %s (%s)", env, r->message);
	log_event(LOG_ERROR, "poll_refused", "status", status, "error_type", r->error_type, "error_code",
		  r->error_code, "request_id", r->request_id, "error", why, NULL);
}

/* Poll until draining, --once runs dry, or the server refuses us; returns the exit status. */
static int poll_loop(struct worker *w, struct client *poller)
{
	const struct worker_config *cfg = w->cfg;
	struct buf path, worker_header;
	buf_init(&path, 4096);
	buf_init(&worker_header, 512);
	buf_puts(&path, "/v1/environments/");
	client_put_escaped(&path, cfg->environment_id);
	buf_printf(&path, "/work/poll?block_ms=%d", WORKER_POLL_BLOCK_MS);
	buf_printf(&worker_header, "Anthropic-Worker-ID: %s", cfg->worker_id);
	const char *headers[] = {worker_header.data, NULL};
	int attempt = 0, status = 0, idle_logged = 0;
	if (path.failed || worker_header.failed) {
		log_event(LOG_ERROR, "startup_failed", "error", "environment or worker id too long", NULL);
		status = 1;
		goto out;
	}
	for (;;) {
		struct slot *s = wait_for_slot(w);
		if (!s)
			break;
		int64_t started = clock_mono_us();
		struct client_reply r;
		client_request(poller, "GET", path.data, NULL, headers, WORKER_POLL_BLOCK_MS + 15000L, &r);
		if (r.canceled || atomic_load(&w->draining)) {
			/* Claimed while draining: not acked, so the server hands it out again. */
			if (r.status == 200 && json_is_object(r.body))
				log_event(LOG_INFO, "unclaimed", "work_id", client_json_str(r.body, "id"), "reason",
					  "draining", NULL);
			client_reply_free(&r);
			break;
		}
		if (r.status == 200 && r.body && json_is_null(r.body)) {
			client_reply_free(&r);
			attempt = 0;
			if (!idle_logged)
				log_event(LOG_INFO, "idle", "environment_id", cfg->environment_id, NULL);
			idle_logged = 1;
			if (cfg->once) {
				pthread_mutex_lock(&w->mu);
				int idle = w->running == 0;
				pthread_mutex_unlock(&w->mu);
				if (idle) {
					log_event(LOG_INFO, "queue_empty", "environment_id", cfg->environment_id, NULL);
					break;
				}
			}
			/* A poll that came back early did not hold: pace the next one ourselves. */
			if (clock_mono_us() - started < WORKER_POLL_BLOCK_MS * 500)
				nap(w, 500000 + (int64_t)worker_random(500000));
			continue;
		}
		if (r.status == 200 && json_is_object(r.body)) {
			struct item it;
			char err[256];
			int parsed = item_parse(r.body, &it, err, sizeof(err));
			client_reply_free(&r);
			if (parsed == 0) {
				attempt = 0;
				idle_logged = 0;
				if (start_item(w, s, &it) == 0)
					continue;
				log_event(LOG_ERROR, "claim_failed", "work_id", it.id, "error", "cannot start a thread", NULL);
				item_free(&it);
			} else {
				log_event(LOG_ERROR, "bad_work_item", "error", err, NULL);
			}
		} else if (!client_is_transient(&r) && !(r.status >= 200 && r.status < 300)) {
			/* Including a 401/403/404 whose body is a proxy's page: the status says
			 * enough, and retrying it would go on forever. */
			report_refusal(w, &r);
			client_reply_free(&r);
			status = 1;
			break;
		} else {
			int64_t wait_us = worker_backoff_us(attempt++, r.retry_after_s);
			char code[16], ms[24];
			snprintf(code, sizeof(code), "%d", r.status);
			snprintf(ms, sizeof(ms), "%lld", (long long)(wait_us / 1000));
			log_event(LOG_WARN, "poll_failed", "status", code, "error",
				  r.status == 200 && !r.bad_body ? "the reply is neither an item nor null" : r.message,
				  "backoff_ms", ms, NULL);
			client_reply_free(&r);
			nap(w, wait_us);
			continue;
		}
		/* A bad item or a failed thread: pause briefly rather than spin on it. */
		nap(w, worker_backoff_us(attempt++, -1));
	}
out:
	buf_free(&path);
	buf_free(&worker_header);
	return status;
}

/* Children take fds 0-2 for granted; make sure they are open (to /dev/null if need be). */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return;
}

static void free_slots(struct worker *w, int n)
{
	for (int i = 0; i < n; i++) {
		struct slot *s = &w->slots[i];
		if (s->wake[0] >= 0)
			close(s->wake[0]);
		if (s->wake[1] >= 0)
			close(s->wake[1]);
		client_free(&s->api);
		client_free(&s->beat);
	}
	free(w->slots);
}

int worker_run(const struct worker_config *cfg)
{
	ensure_std_fds();
	if (client_global_init()) {
		log_event(LOG_ERROR, "startup_failed", "error", "libcurl did not initialize", NULL);
		return 1;
	}
	struct worker w;
	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	atomic_init(&w.draining, 0);
	atomic_init(&w.aborting, 0);
	atomic_init(&w.stop_failed, 0);
	if (pthread_mutex_init(&w.mu, NULL) || worker_cond_init(&w.cond)) {
		log_event(LOG_ERROR, "startup_failed", "error", "cannot set up locks", NULL);
		return 1;
	}
	w.slots = calloc((size_t)cfg->concurrency, sizeof(struct slot));
	int ready = 0, status;
	struct client poller;
	memset(&poller, 0, sizeof(poller));
	const char *why = "out of memory or file descriptors";
	if (!w.slots)
		goto fail;
	for (; ready < cfg->concurrency; ready++) {
		struct slot *s = &w.slots[ready];
		s->w = &w;
		s->index = ready;
		s->wake[0] = s->wake[1] = -1;
		if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) || client_init(&s->api, cfg->base_url, cfg->environment_key) ||
		    client_init(&s->beat, cfg->base_url, cfg->environment_key)) {
			ready++;
			goto fail;
		}
	}
	if (client_init(&poller, cfg->base_url, cfg->environment_key))
		goto fail;
	/* A drain aborts the poll in flight instead of waiting out its block_ms. */
	poller.cancel = &w.draining;
	if (signals_start(&w)) {
		why = "cannot start the signal thread";
		goto fail;
	}
	char concurrency[16];
	snprintf(concurrency, sizeof(concurrency), "%d", cfg->concurrency);
	log_event(LOG_INFO, "worker_start", "environment_id", cfg->environment_id, "worker_id", cfg->worker_id,
		  "base_url", cfg->base_url, "concurrency", concurrency, "once", cfg->once ? "true" : "false", NULL);

	status = poll_loop(&w, &poller);

	/* No new claims from here on; every running item ends on its own terms. */
	pthread_mutex_lock(&w.mu);
	atomic_store(&w.draining, 1);
	if (w.running > 0) {
		char running[16];
		snprintf(running, sizeof(running), "%d", w.running);
		log_event(LOG_INFO, "waiting_for_items", "running", running, NULL);
	}
	while (w.running > 0)
		pthread_cond_wait(&w.cond, &w.mu);
	reap_slots(&w);
	pthread_mutex_unlock(&w.mu);
	signals_stop();
	/* An item we could not stop runs on nowhere but stays active until its lease runs out:
	 * worth an exit status a supervisor notices. */
	if (atomic_load(&w.stop_failed) && status == 0) {
		log_event(LOG_ERROR, "stop_incomplete", "error", "some items could not be stopped", NULL);
		status = 1;
	}
	log_event(LOG_INFO, "worker_exit", "status", status ? "1" : "0", NULL);
	client_free(&poller);
	free_slots(&w, cfg->concurrency);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.mu);
	return status;
fail:
	log_event(LOG_ERROR, "startup_failed", "error", why, NULL);
	client_free(&poller);
	if (w.slots)
		free_slots(&w, ready);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.mu);
	return 1;
}
