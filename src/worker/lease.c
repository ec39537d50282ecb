/* lease.c - keeps one work item's lease alive: heartbeat at once with NO_HEARTBEAT, then
 * every few seconds echoing the previous reply's last_heartbeat, and turn what the server
 * says into a verdict the runner acts on (SPEC §3.1 T7-T12).
 *
 * A lease is lost on a 412 (someone else holds it, or it went back to the queue), on a
 * reply with lease_extended:false, or when no beat has renewed it for a whole TTL (the
 * server has requeued it by then). A lost item is never stopped by this worker: it
 * belongs to its new holder. */
#include "worker/worker_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

static const char *const verdict_names[] = {
	[LEASE_HELD] = "held",
	[LEASE_STOPPING] = "stop_requested",
	[LEASE_STOPPED] = "stopped",
	[LEASE_LOST] = "lease_lost",
	[LEASE_REJECTED] = "heartbeat_rejected",
};

const char *lease_verdict_name(enum lease_verdict v) { return verdict_names[v]; }

int lease_interval_s(int interval_s, int ttl_s)
{
	int third = ttl_s / 3;
	int s = interval_s < third ? interval_s : third;
	return s < 1 ? 1 : s;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

void lease_judge(const struct client_reply *r, struct beat *b)
{
	memset(b, 0, sizeof(*b));
	b->verdict = LEASE_HELD;
	if (r->status == 200) {
		const char *state = client_json_str(r->body, "state");
		const char *last = client_json_str(r->body, "last_heartbeat");
		json_t *extended = json_is_object(r->body) ? json_object_get(r->body, "lease_extended") : NULL;
		json_t *ttl = json_is_object(r->body) ? json_object_get(r->body, "ttl_seconds") : NULL;
		/* A 200 without these fields is not a heartbeat reply (a proxy's page, a bug):
		 * treat it as no answer, and let the TTL decide. */
		if (!state || !last || !json_is_boolean(extended) || !json_is_integer(ttl) ||
		    strlen(last) >= sizeof(b->last_heartbeat)) {
			b->transient = 1;
			return;
		}
		copy_str(b->state, sizeof(b->state), state);
		copy_str(b->last_heartbeat, sizeof(b->last_heartbeat), last);
		json_int_t ttl_s = json_integer_value(ttl);
		if (strcmp(state, "stopped") == 0) {
			b->verdict = LEASE_STOPPED;
		} else if (!json_is_true(extended)) {
			b->verdict = LEASE_LOST;
		} else {
			b->renewed = 1;
			b->ttl_s = ttl_s > 0 && ttl_s <= 86400 ? (int)ttl_s : LEASE_TTL_DEFAULT_S;
			if (strcmp(state, "stopping") == 0)
				b->verdict = LEASE_STOPPING;
		}
		return;
	}
	/* 412: the stored heartbeat is not ours (T9/T12). 409: the item is queued again and
	 * our NO_HEARTBEAT found no lease to take (T12). Either way another holder may exist. */
	if (r->status == 412 || r->status == 409) {
		b->verdict = LEASE_LOST;
		return;
	}
	if (client_is_transient(r)) {
		b->transient = 1;
		return;
	}
	b->verdict = LEASE_REJECTED;
}

/* POST .../heartbeat?expected_last_heartbeat=X[&desired_ttl_seconds=N]. */
static void send_beat(struct worker *w, struct client *c, const struct item *it, const char *expected,
		      long timeout_ms, struct beat *b, struct client_reply *r)
{
	struct buf path;
	buf_init(&path, 4096);
	item_path(&path, w, it->id, "/heartbeat?expected_last_heartbeat=");
	client_put_escaped(&path, expected);
	if (w->cfg->lease_ttl_s > 0)
		buf_printf(&path, "&desired_ttl_seconds=%d", w->cfg->lease_ttl_s);
	if (path.failed) {
		memset(r, 0, sizeof(*r));
		snprintf(r->message, sizeof(r->message), "heartbeat URL too long");
	} else {
		client_request(c, "POST", path.data, NULL, NULL, timeout_ms, r);
	}
	buf_free(&path);
	lease_judge(r, b);
}

static void log_beat_problem(const struct item *it, const struct beat *b, const struct client_reply *r)
{
	char status[16];
	snprintf(status, sizeof(status), "%d", r->status);
	if (b->transient)
		log_event(LOG_WARN, "heartbeat_failed", "work_id", it->id, "status", status, "error", r->message,
			  NULL);
	else if (b->verdict == LEASE_LOST)
		log_event(LOG_WARN, "lease_lost", "work_id", it->id, "status", status, "state",
			  b->state[0] ? b->state : NULL, "error", r->status == 200 ? "lease not extended" : r->message,
			  "error_code", r->error_code, NULL);
	else if (b->verdict == LEASE_REJECTED)
		log_event(LOG_ERROR, "heartbeat_rejected", "work_id", it->id, "status", status, "error", r->message,
			  NULL);
	else if (b->verdict == LEASE_STOPPING || b->verdict == LEASE_STOPPED)
		log_event(LOG_INFO, "stop_requested", "work_id", it->id, "state", b->state, NULL);
}

enum lease_verdict lease_beat_once(struct worker *w, struct client *c, const struct item *it)
{
	struct beat b;
	struct client_reply r;
	send_beat(w, c, it, NO_HEARTBEAT, REQUEST_TIMEOUT_MS, &b, &r);
	log_beat_problem(it, &b, &r);
	client_reply_free(&r);
	/* A healthcheck that could not beat still holds the ack's lease: stopping it is right. */
	return b.transient ? LEASE_HELD : b.verdict;
}

static void set_verdict(struct lease *l, enum lease_verdict v)
{
	/* The first decisive verdict sticks: a lease that was lost stays lost even if a later
	 * reply says "stopping", and only HELD may be upgraded. */
	if (l->verdict == LEASE_HELD || (l->verdict == LEASE_STOPPING && v != LEASE_HELD))
		l->verdict = v;
}

static void *lease_thread(void *arg)
{
	struct lease *l = arg;
	const struct worker_config *cfg = l->w->cfg;
	pthread_mutex_lock(&l->mu);
	while (!l->ended) {
		char expected[HEARTBEAT_TEXT_MAX];
		copy_str(expected, sizeof(expected), l->last_heartbeat);
		int interval = lease_interval_s(cfg->heartbeat_interval_s, l->ttl_s);
		pthread_mutex_unlock(&l->mu);

		/* Each beat is cut off after one interval (two seconds at least, for a busy
		 * server), so a hung request cannot outlive the lease it is meant to renew. */
		int64_t sent_us = clock_mono_us();
		struct beat b;
		struct client_reply r;
		send_beat(l->w, l->client, l->item, expected, (interval < 2 ? 2L : (long)interval) * 1000, &b, &r);
		int canceled = r.canceled;

		pthread_mutex_lock(&l->mu);
		enum lease_verdict before = l->verdict;
		if (canceled || l->ended) {
			client_reply_free(&r);
			break;
		}
		if (b.renewed) {
			l->last_renewed_us = sent_us;
			l->ttl_s = b.ttl_s;
		}
		if (!b.transient) {
			/* A reply without a heartbeat (T11's "") leaves the one we echo unchanged. */
			copy_str(l->last_heartbeat, sizeof(l->last_heartbeat),
				 b.last_heartbeat[0] ? b.last_heartbeat : expected);
			set_verdict(l, b.verdict);
		} else if (clock_mono_us() - l->last_renewed_us >= (int64_t)l->ttl_s * 1000000) {
			/* By now the server has put the item back in the queue (T18). */
			set_verdict(l, LEASE_LOST);
			log_event(LOG_WARN, "lease_lost", "work_id", l->item->id, "error",
				  "no successful heartbeat for a whole lease", NULL);
		}
		/* Every failed beat is worth a line; a verdict only when it is new. */
		if (b.transient || b.verdict != before)
			log_beat_problem(l->item, &b, &r);
		if (b.renewed && b.verdict == LEASE_HELD)
			log_event(LOG_DEBUG, "heartbeat", "work_id", l->item->id, "last_heartbeat", b.last_heartbeat, NULL);
		client_reply_free(&r);
		int first = !l->answered && (!b.transient || l->verdict != LEASE_HELD);
		if (first)
			l->answered = 1;
		if (first || l->verdict != before) {
			pthread_cond_broadcast(&l->cond);
			ssize_t n = write(l->wake_fd, "v", 1);
			(void)n;
		}
		/* Only a held or stopping lease is worth renewing: a stopping item stays ours until
		 * it is stopped (T10), so the child may finish its shutdown. */
		if (l->verdict != LEASE_HELD && l->verdict != LEASE_STOPPING)
			break;

		interval = lease_interval_s(cfg->heartbeat_interval_s, l->ttl_s);
		int64_t next_us = sent_us + (int64_t)interval * 1000000;
		/* The deadline is a monotonic instant; converting once avoids drift from spurious
		 * wake-ups. */
		struct timespec ts;
		worker_deadline(next_us - clock_mono_us(), &ts);
		while (!l->ended) {
			int rc = pthread_cond_timedwait(&l->cond, &l->mu, &ts);
			if (rc == ETIMEDOUT)
				break;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int lease_start(struct lease *l, struct worker *w, struct client *client, const struct item *it,
		int wake_fd, int64_t acked_us)
{
	memset(l, 0, sizeof(*l));
	l->w = w;
	l->item = it;
	l->client = client;
	l->wake_fd = wake_fd;
	l->verdict = LEASE_HELD;
	l->ttl_s = LEASE_TTL_DEFAULT_S;
	l->last_renewed_us = acked_us;
	copy_str(l->last_heartbeat, sizeof(l->last_heartbeat), NO_HEARTBEAT);
	atomic_init(&l->cancel, 0);
	client->cancel = &l->cancel;
	if (pthread_mutex_init(&l->mu, NULL))
		return -1;
	if (worker_cond_init(&l->cond)) {
		pthread_mutex_destroy(&l->mu);
		return -1;
	}
	if (pthread_create(&l->thread, NULL, lease_thread, l)) {
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->mu);
		return -1;
	}
	l->started = 1;
	return 0;
}

enum lease_verdict lease_wait_first(struct lease *l)
{
	pthread_mutex_lock(&l->mu);
	/* Timed waits, so an abort (which does not touch this condition) is seen promptly. */
	while (!l->answered && !atomic_load(&l->w->aborting)) {
		struct timespec ts;
		worker_deadline(200000, &ts);
		pthread_cond_timedwait(&l->cond, &l->mu, &ts);
	}
	enum lease_verdict v = l->verdict;
	pthread_mutex_unlock(&l->mu);
	return v;
}

enum lease_verdict lease_current(struct lease *l)
{
	pthread_mutex_lock(&l->mu);
	enum lease_verdict v = l->verdict;
	pthread_mutex_unlock(&l->mu);
	return v;
}

void lease_end(struct lease *l)
{
	if (!l->started)
		return;
	pthread_mutex_lock(&l->mu);
	l->ended = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
	atomic_store(&l->cancel, 1);
	pthread_join(l->thread, NULL);
	l->client->cancel = NULL;
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
	l->started = 0;
}
