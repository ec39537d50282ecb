/* lease.c - keeps one work item's lease alive: heartbeat at once with NO_HEARTBEAT, then
 * every few seconds echoing the previous reply's last_heartbeat, and turn what the server
 * says into a verdict the runner acts on (SPEC §3.1 T7-T12).
 *
 * The lease has a hard deadline: the last renewing beat's send time + its TTL. Only past
 * it can the server requeue the item (T18) and someone else hold it, so:
 * - before the deadline a 412 naming a heartbeat of a starting/active item is our own beat
 *   whose reply was lost: adopt it and beat again, rather than kill a healthy child;
 * - at the deadline the lease is lost, whatever else is going on: the runner SIGKILLs the
 *   group at once and never stops the item;
 * - a 412 that cannot be adopted, lease_extended:false, or a 401/403 (the session token
 *   was replaced: the item was handed on) also end it.
 * A lost item is never stopped by this worker: it belongs to its new holder, if any. */
#include "worker/worker_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ctype.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "worker/ticks.h"

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

/* A heartbeat value as the server writes them (an RFC 3339 time), not "" or NO_HEARTBEAT. */
static int is_timestamp(const char *s)
{
	return s && isdigit((unsigned char)s[0]) && strlen(s) < HEARTBEAT_TEXT_MAX && strchr(s, 'T');
}

/* 412 details: {"current_state":{"last_heartbeat":TS|null,"state":S,...}}. */
static void read_current_state(const struct client_reply *r, struct beat *b)
{
	json_t *err = json_is_object(r->body) ? json_object_get(r->body, "error") : NULL;
	json_t *details = json_is_object(err) ? json_object_get(err, "details") : NULL;
	json_t *cur = json_is_object(details) ? json_object_get(details, "current_state") : NULL;
	const char *state = client_json_str(cur, "state");
	const char *last = client_json_str(cur, "last_heartbeat");
	if (state)
		copy_str(b->state, sizeof(b->state), state);
	if (state && (strcmp(state, "starting") == 0 || strcmp(state, "active") == 0) && is_timestamp(last))
		copy_str(b->adopt, sizeof(b->adopt), last);
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
	/* 412: the stored heartbeat is not the one we echoed (T9/T12). 409: the item is
	 * queued again and our NO_HEARTBEAT found no lease to take (T12). 401/403: our session
	 * token was replaced, because the item was delivered again. Either way the
	 * lease is over, unless the 412 names a heartbeat we may adopt (lease_apply). */
	if (r->status == 412 || r->status == 409 || r->status == 401 || r->status == 403) {
		b->verdict = LEASE_LOST;
		if (r->status == 412)
			read_current_state(r, b);
		return;
	}
	if (client_is_transient(r)) {
		b->transient = 1;
		return;
	}
	b->verdict = LEASE_REJECTED;
}

/* ---- decisions ---- */

void lease_state_init(struct lease_state *st, int64_t acked_us)
{
	memset(st, 0, sizeof(*st));
	st->verdict = LEASE_HELD;
	st->ttl_s = LEASE_TTL_DEFAULT_S;
	st->last_renewed_us = acked_us;
	copy_str(st->last_heartbeat, sizeof(st->last_heartbeat), NO_HEARTBEAT);
}

int64_t lease_deadline_us(const struct lease_state *st)
{
	return st->last_renewed_us + (int64_t)st->ttl_s * 1000000;
}

static void set_verdict(struct lease_state *st, enum lease_verdict v)
{
	/* The first decisive verdict sticks: a lease that was lost stays lost even if a later
	 * reply says "stopping", and only HELD may be upgraded. */
	if (st->verdict == LEASE_HELD || (st->verdict == LEASE_STOPPING && v != LEASE_HELD))
		st->verdict = v;
}

int lease_check_deadline(struct lease_state *st, int64_t now_us)
{
	if (now_us < lease_deadline_us(st))
		return 0;
	if (st->verdict == LEASE_HELD) {
		st->verdict = LEASE_LOST;
		return 1;
	}
	/* A stopping item whose lease runs out is stopped by the server (T19): nobody else
	 * gets it, so the child keeps its grace period, and there is nothing left to stop. */
	if (st->verdict == LEASE_STOPPING) {
		st->verdict = LEASE_STOPPED;
		return 1;
	}
	return 0;
}

int lease_apply(struct lease_state *st, const struct beat *b, const char *expected, int64_t sent_us,
		int64_t now_us)
{
	int again = 0;
	if (b->renewed) {
		st->last_renewed_us = sent_us;
		st->ttl_s = b->ttl_s;
		st->adoptions = 0;
	}
	if (b->transient) {
		/* No answer: only the deadline decides. */
	} else if (b->verdict == LEASE_LOST && b->adopt[0] && now_us < lease_deadline_us(st) &&
		   (st->verdict == LEASE_HELD || st->verdict == LEASE_STOPPING)) {
		copy_str(st->last_heartbeat, sizeof(st->last_heartbeat), b->adopt);
		/* Once or twice at once; should it keep happening (the command beating its own
		 * item with the secret?), at the usual pace, still bounded by the deadline. */
		again = ++st->adoptions <= 2;
	} else {
		/* A reply without a heartbeat (T11's "") leaves the one we echo unchanged. */
		copy_str(st->last_heartbeat, sizeof(st->last_heartbeat),
			 b->last_heartbeat[0] ? b->last_heartbeat : expected);
		set_verdict(st, b->verdict);
	}
	lease_check_deadline(st, now_us);
	return again && (st->verdict == LEASE_HELD || st->verdict == LEASE_STOPPING);
}

long lease_beat_timeout_ms(const struct lease_state *st, int interval_s, int64_t now_us)
{
	int64_t left_ms = (lease_deadline_us(st) - now_us) / 1000;
	/* Twice the interval (two seconds at least, for a busy server): a slow reply is still
	 * an answer, and one that never comes is cut off before the lease it should renew. */
	int64_t ms = (int64_t)(interval_s < 1 ? 1 : interval_s) * 2000;
	if (ms > left_ms)
		ms = left_ms;
	return ms > 0 ? (long)ms : 0;
}

/* ---- beating ---- */

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

static void log_beat_problem(const struct item *it, const struct beat *b, const struct client_reply *r,
			     int adopted)
{
	char status[16];
	snprintf(status, sizeof(status), "%d", r->status);
	if (b->transient)
		log_event(LOG_WARN, "heartbeat_failed", "work_id", it->id, "status", status, "error", r->message,
			  NULL);
	else if (adopted)
		log_event(LOG_WARN, "heartbeat_adopted", "work_id", it->id, "status", status, "last_heartbeat",
			  b->adopt, "error", "a reply was lost; echoing the heartbeat the server holds", NULL);
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

enum lease_verdict lease_beat_once(struct worker *w, struct client *c, const struct item *it,
				   struct lease_state *st)
{
	struct beat b;
	struct client_reply r;
	int64_t sent_us = clock_mono_us();
	long timeout_ms = lease_beat_timeout_ms(st, REQUEST_TIMEOUT_MS / 2000, sent_us);
	if (timeout_ms <= 0) {
		lease_check_deadline(st, sent_us);
		return st->verdict;
	}
	send_beat(w, c, it, NO_HEARTBEAT, timeout_ms, &b, &r);
	log_beat_problem(it, &b, &r, b.adopt[0] != '\0');
	client_reply_free(&r);
	/* An adoptable 412 is our own beat: the healthcheck proved itself either way. A
	 * healthcheck that could not beat still holds the ack's lease: stopping it is right. */
	if (b.adopt[0])
		b.verdict = LEASE_HELD;
	lease_apply(st, &b, NO_HEARTBEAT, sent_us, clock_mono_us());
	return st->verdict;
}

/* Tell the runner: the verdict changed or the first beat was decided. Under l->mu. */
static void notify(struct lease *l)
{
	pthread_cond_broadcast(&l->cond);
	ssize_t n = write(l->wake_fd, "v", 1);
	(void)n;
}

static void log_expired(const struct lease *l)
{
	if (l->st.verdict == LEASE_LOST)
		log_event(LOG_WARN, "lease_lost", "work_id", l->item->id, "error",
			  "no heartbeat renewed the lease before it ran out", NULL);
	else
		log_event(LOG_INFO, "item_stopped", "work_id", l->item->id, "already", "true", "reason",
			  "the stopping item's lease ran out", NULL);
}

static int renewing(const struct lease_state *st)
{
	return st->verdict == LEASE_HELD || st->verdict == LEASE_STOPPING;
}

static void *lease_thread(void *arg)
{
	struct lease *l = arg;
	const struct worker_config *cfg = l->w->cfg;
	pthread_mutex_lock(&l->mu);
	while (!l->ended) {
		int64_t sent_us = clock_mono_us();
		int interval = lease_interval_s(cfg->heartbeat_interval_s, l->st.ttl_s);
		long timeout_ms = lease_beat_timeout_ms(&l->st, interval, sent_us);
		if (timeout_ms <= 0) {
			if (lease_check_deadline(&l->st, sent_us)) {
				log_expired(l);
				l->answered = 1;
				notify(l);
			}
			break;
		}
		char expected[HEARTBEAT_TEXT_MAX];
		copy_str(expected, sizeof(expected), l->st.last_heartbeat);
		pthread_mutex_unlock(&l->mu);

		struct beat b;
		struct client_reply r;
		send_beat(l->w, l->client, l->item, expected, timeout_ms, &b, &r);
		int canceled = r.canceled;

		pthread_mutex_lock(&l->mu);
		enum lease_verdict before = l->st.verdict;
		if (canceled || l->ended) {
			client_reply_free(&r);
			break;
		}
		int adoptions = l->st.adoptions;
		int again = lease_apply(&l->st, &b, expected, sent_us, clock_mono_us());
		int adopted = l->st.adoptions > adoptions;
		/* Every failed beat is worth a line; a verdict only when it is new. */
		if (b.transient || adopted || b.verdict != before)
			log_beat_problem(l->item, &b, &r, adopted);
		if (b.transient && l->st.verdict != before)
			log_expired(l);
		if (b.renewed && b.verdict == LEASE_HELD)
			log_event(LOG_DEBUG, "heartbeat", "work_id", l->item->id, "last_heartbeat", b.last_heartbeat, NULL);
		client_reply_free(&r);
		int first = !l->answered && ((!b.transient && !again) || l->st.verdict != LEASE_HELD);
		if (first)
			l->answered = 1;
		if (first || l->st.verdict != before)
			notify(l);
		/* Only a held or stopping lease is worth renewing: a stopping item stays ours until
		 * it is stopped (T10), so the child may finish its shutdown. */
		if (!renewing(&l->st))
			break;
		if (again)
			continue;

		interval = lease_interval_s(cfg->heartbeat_interval_s, l->st.ttl_s);
		int64_t next_us = sent_us + (int64_t)interval * 1000000;
		/* Wake at the deadline at the latest, to declare the lease lost right then. */
		if (next_us > lease_deadline_us(&l->st))
			next_us = lease_deadline_us(&l->st);
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
	lease_state_init(&l->st, acked_us);
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
	enum lease_verdict v = l->st.verdict;
	pthread_mutex_unlock(&l->mu);
	return v;
}

enum lease_verdict lease_current(struct lease *l, int64_t *deadline_us)
{
	pthread_mutex_lock(&l->mu);
	/* Checked here too: the lease thread may be stuck in a request, or have just woken
	 * from a SIGSTOP as we did; the deadline is not its to enforce alone. */
	if (lease_check_deadline(&l->st, clock_mono_us()))
		log_expired(l);
	enum lease_verdict v = l->st.verdict;
	if (deadline_us)
		*deadline_us = lease_deadline_us(&l->st);
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
	/* The child may have ended while we were stopped past the deadline, before anyone
	 * looked: the verdict must say so before the runner decides on a stop. */
	if (lease_check_deadline(&l->st, clock_mono_us()))
		log_expired(l);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
	l->started = 0;
}
