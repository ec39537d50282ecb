/* work.c - the work item state machine of SPEC §3.1 (see work.h).
 *
 * One table maps (state, event) to a handler. A handler edits a copy of the item and
 * either returns ERR_OK, in which case work_transition() writes the copy back, or a
 * refusal, in which case the caller's item is never touched. Nothing here does I/O or
 * reads a clock; `now` always comes from the caller. */
#include "model/work.h"

#include <stddef.h>
#include <string.h>

#define US_PER_S INT64_C(1000000)

typedef enum err (*work_handler)(struct work_lease *w, const struct work_input *in, int64_t now,
				 struct work_outcome *out);

static const char *const state_names[WORK_STATE__COUNT] = {
	[WORK_QUEUED] = "queued",
	[WORK_STARTING] = "starting",
	[WORK_ACTIVE] = "active",
	[WORK_STOPPING] = "stopping",
	[WORK_STOPPED] = "stopped",
};

int32_t work_clamp_ttl(int32_t desired_ttl_seconds)
{
	if (desired_ttl_seconds == 0)
		return WORK_TTL_DEFAULT_S;
	if (desired_ttl_seconds < WORK_TTL_MIN_S)
		return WORK_TTL_MIN_S;
	if (desired_ttl_seconds > WORK_TTL_MAX_S)
		return WORK_TTL_MAX_S;
	return desired_ttl_seconds;
}

int32_t work_lease_remaining_s(const struct work_lease *w, int64_t now_us)
{
	if (w->lease_expires_at == 0 || w->lease_expires_at <= now_us)
		return 0;
	/* Both are positive here, so the difference cannot overflow. */
	int64_t left_us = w->lease_expires_at - now_us;
	int64_t secs = left_us / US_PER_S + (left_us % US_PER_S != 0);
	return secs > INT32_MAX ? INT32_MAX : (int32_t)secs;
}

const char *work_state_name(enum work_state s)
{
	if ((int)s < 0 || s >= WORK_STATE__COUNT)
		return NULL;
	return state_names[s];
}

int work_state_parse(const char *name)
{
	if (!name)
		return -1;
	for (int s = 0; s < WORK_STATE__COUNT; s++) {
		if (strcmp(name, state_names[s]) == 0)
			return s;
	}
	return -1;
}

static void grant_lease(struct work_lease *w, int32_t ttl_seconds, int64_t now)
{
	w->ttl_seconds = ttl_seconds;
	w->lease_expires_at = now + ttl_seconds * US_PER_S;
}

static void clear_lease(struct work_lease *w)
{
	w->lease_expires_at = 0;
	w->ttl_seconds = 0;
}

/* Every way into `stopped` (T13, T15, T16, T19) ends the lease. The session token lives
 * on (until a redelivery, which a stopped item never gets): the official SDK's worker
 * heartbeats and stops with it, and must see T11 and T17, not a 401. */
static void enter_stopped(struct work_lease *w, int64_t now, struct work_outcome *out)
{
	w->state = WORK_STOPPED;
	w->stopped_at = now;
	clear_lease(w);
	out->changed = 1;
}

static enum err refuse_invalid(struct work_lease *w, const struct work_input *in, int64_t now,
			       struct work_outcome *out)
{
	return ERR_INVALID;
}

static enum err refuse_conflict(struct work_lease *w, const struct work_input *in, int64_t now,
				struct work_outcome *out)
{
	return ERR_CONFLICT;
}

/* T2, T3. */
static enum err poll_queued(struct work_lease *w, const struct work_input *in, int64_t now,
			    struct work_outcome *out)
{
	if (w->delivered_at != 0 && now - w->delivered_at < in->reclaim_older_than_us)
		return ERR_INVALID;
	w->delivered_at = now;
	w->delivery_count++;
	w->cycle_deliveries++;
	out->changed = 1;
	out->new_delivery = 1;
	return ERR_OK;
}

/* T4. delivered_at is kept: it still says when the acknowledged delivery happened. */
static enum err ack_queued(struct work_lease *w, const struct work_input *in, int64_t now,
			   struct work_outcome *out)
{
	w->state = WORK_STARTING;
	w->acknowledged_at = now;
	w->ack_proven = in->delivery_proven != 0;
	grant_lease(w, WORK_TTL_DEFAULT_S, now);
	out->changed = 1;
	out->left_queue = 1;
	return ERR_OK;
}

/* T5, T20: accepted, and nothing the state machine owns changes. */
static enum err accept_unchanged(struct work_lease *w, const struct work_input *in, int64_t now,
				 struct work_outcome *out)
{
	return ERR_OK;
}

/* T5: a retry of the ack that made the item starting, unless it may be another holder's.
 * After a reclaim two pollers can each hold a delivery of the item; the first ack wins, and
 * a later one is refused unless it proves it is the winner's own retry. */
static enum err ack_held(struct work_lease *w, const struct work_input *in, int64_t now,
			 struct work_outcome *out)
{
	if (w->cycle_deliveries <= 1)
		return ERR_OK; /* one delivery, one possible holder */
	if (in->delivery_proven && w->ack_proven)
		return ERR_OK; /* the token is current, and it is the one that acked */
	return ERR_CONFLICT;
}

/* Does the heartbeat's expectation hold against the stored heartbeat (0 = none)? */
static int heartbeat_expected(const struct work_lease *w, const struct work_input *in)
{
	switch (in->expect) {
	case WORK_EXPECT_OMITTED:
		return 1;
	case WORK_EXPECT_NONE:
		return w->latest_heartbeat_at == 0;
	case WORK_EXPECT_TIMESTAMP:
		return w->latest_heartbeat_at != 0 && in->expected_us == w->latest_heartbeat_at;
	}
	return 0;
}

/* A 412 also reports the current state, with the lease as it stands. */
static enum err refuse_heartbeat(const struct work_lease *w, int64_t now, struct work_outcome *out)
{
	out->lease_extended = 0;
	out->ttl_seconds = work_lease_remaining_s(w, now);
	return ERR_HEARTBEAT_PRECONDITION;
}

static void renew_on_heartbeat(struct work_lease *w, const struct work_input *in, int64_t now,
			       struct work_outcome *out)
{
	w->latest_heartbeat_at = now;
	grant_lease(w, work_clamp_ttl(in->desired_ttl_seconds), now);
	out->changed = 1;
	out->lease_extended = 1;
	out->ttl_seconds = w->ttl_seconds;
}

/* Undo the delivery whose answer never reached its poller (see work.h). */
static enum err undeliver_queued(struct work_lease *w, const struct work_input *in, int64_t now,
				 struct work_outcome *out)
{
	if (w->delivered_at == 0)
		return ERR_INVALID;
	w->delivered_at = 0;
	out->changed = 1;
	out->delivery_undone = 1;
	return ERR_OK;
}

/* T12. A timestamp means the caller held a lease that T18 took away: tell it so. */
static enum err heartbeat_queued(struct work_lease *w, const struct work_input *in, int64_t now,
				 struct work_outcome *out)
{
	if (in->expect == WORK_EXPECT_TIMESTAMP)
		return refuse_heartbeat(w, now, out);
	return ERR_CONFLICT;
}

/* T7, T8, T9. */
static enum err heartbeat_held(struct work_lease *w, const struct work_input *in, int64_t now,
			       struct work_outcome *out)
{
	if (!heartbeat_expected(w, in))
		return refuse_heartbeat(w, now, out);
	if (w->state == WORK_STARTING) {
		w->state = WORK_ACTIVE;
		w->started_at = now;
	}
	renew_on_heartbeat(w, in, now, out);
	return ERR_OK;
}

/* T10: the worker keeps its lease while it winds down; no comparison. */
static enum err heartbeat_stopping(struct work_lease *w, const struct work_input *in, int64_t now,
				   struct work_outcome *out)
{
	renew_on_heartbeat(w, in, now, out);
	return ERR_OK;
}

/* T11: answered, so the worker learns it is over, but nothing is extended. */
static enum err heartbeat_stopped(struct work_lease *w, const struct work_input *in, int64_t now,
				  struct work_outcome *out)
{
	out->lease_extended = 0;
	out->ttl_seconds = 0;
	return ERR_OK;
}

/* T13 (any force). */
static enum err stop_queued(struct work_lease *w, const struct work_input *in, int64_t now,
			    struct work_outcome *out)
{
	enter_stopped(w, now, out);
	out->left_queue = 1;
	return ERR_OK;
}

/* T14, T16 from starting/active; T15, T16 from stopping. */
static enum err stop_held(struct work_lease *w, const struct work_input *in, int64_t now,
			  struct work_outcome *out)
{
	if (!in->force && w->state != WORK_STOPPING) {
		w->state = WORK_STOPPING;
		w->stop_requested_at = now;
		out->changed = 1;
		return ERR_OK;
	}
	if (w->stop_requested_at == 0) /* T16 from starting/active */
		w->stop_requested_at = now;
	enter_stopped(w, now, out);
	return ERR_OK;
}

/* T17. */
static enum err stop_stopped(struct work_lease *w, const struct work_input *in, int64_t now,
			     struct work_outcome *out)
{
	return ERR_WORK_STOPPED;
}

static int lease_ran_out(const struct work_lease *w, int64_t now)
{
	return w->lease_expires_at != 0 && w->lease_expires_at <= now;
}

/* T18: the item goes back to the head of the queue as if never delivered. */
static enum err expire_held(struct work_lease *w, const struct work_input *in, int64_t now,
			    struct work_outcome *out)
{
	if (!lease_ran_out(w, now))
		return ERR_INVALID;
	w->state = WORK_QUEUED;
	w->delivered_at = 0;
	w->acknowledged_at = 0;
	w->started_at = 0;
	w->latest_heartbeat_at = 0;
	w->cycle_deliveries = 0;
	w->ack_proven = 0;
	clear_lease(w);
	out->changed = 1;
	out->requeue_at_head = 1;
	return ERR_OK;
}

/* T19. */
static enum err expire_stopping(struct work_lease *w, const struct work_input *in, int64_t now,
				struct work_outcome *out)
{
	if (!lease_ran_out(w, now))
		return ERR_INVALID;
	enter_stopped(w, now, out);
	return ERR_OK;
}

static const work_handler transitions[WORK_STATE__COUNT][WORK_EVENT__COUNT] = {
	[WORK_QUEUED] = {
		[WORK_EV_POLL] = poll_queued,
		[WORK_EV_ACK] = ack_queued,
		[WORK_EV_HEARTBEAT] = heartbeat_queued,
		[WORK_EV_STOP] = stop_queued,
		[WORK_EV_LEASE_EXPIRE] = refuse_invalid,
		[WORK_EV_METADATA] = accept_unchanged,
		[WORK_EV_UNDELIVER] = undeliver_queued,
	},
	[WORK_STARTING] = {
		[WORK_EV_POLL] = refuse_invalid,
		[WORK_EV_ACK] = ack_held,
		[WORK_EV_HEARTBEAT] = heartbeat_held,
		[WORK_EV_STOP] = stop_held,
		[WORK_EV_LEASE_EXPIRE] = expire_held,
		[WORK_EV_METADATA] = accept_unchanged,
		[WORK_EV_UNDELIVER] = refuse_invalid,
	},
	[WORK_ACTIVE] = {
		[WORK_EV_POLL] = refuse_invalid,
		[WORK_EV_ACK] = ack_held,
		[WORK_EV_HEARTBEAT] = heartbeat_held,
		[WORK_EV_STOP] = stop_held,
		[WORK_EV_LEASE_EXPIRE] = expire_held,
		[WORK_EV_METADATA] = accept_unchanged,
		[WORK_EV_UNDELIVER] = refuse_invalid,
	},
	[WORK_STOPPING] = {
		[WORK_EV_POLL] = refuse_invalid,
		[WORK_EV_ACK] = refuse_conflict,
		[WORK_EV_HEARTBEAT] = heartbeat_stopping,
		[WORK_EV_STOP] = stop_held,
		[WORK_EV_LEASE_EXPIRE] = expire_stopping,
		[WORK_EV_METADATA] = accept_unchanged,
		[WORK_EV_UNDELIVER] = refuse_invalid,
	},
	[WORK_STOPPED] = {
		[WORK_EV_POLL] = refuse_invalid,
		[WORK_EV_ACK] = refuse_conflict,
		[WORK_EV_HEARTBEAT] = heartbeat_stopped,
		[WORK_EV_STOP] = stop_stopped,
		[WORK_EV_LEASE_EXPIRE] = refuse_invalid,
		[WORK_EV_METADATA] = accept_unchanged,
		[WORK_EV_UNDELIVER] = refuse_invalid,
	},
};

enum err work_transition(struct work_lease *w, enum work_event ev, const struct work_input *in,
			 int64_t now_us, struct work_outcome *out)
{
	static const struct work_input no_input;
	struct work_outcome scratch;

	if (!in)
		in = &no_input;
	if (!out)
		out = &scratch;
	memset(out, 0, sizeof(*out));
	if ((int)w->state < 0 || w->state >= WORK_STATE__COUNT || (int)ev < 0 ||
	    ev >= WORK_EVENT__COUNT)
		return ERR_INTERNAL;

	struct work_lease next = *w;
	enum err rc = transitions[w->state][ev](&next, in, now_us, out);
	if (rc == ERR_OK)
		*w = next;
	else if (rc != ERR_HEARTBEAT_PRECONDITION)
		memset(out, 0, sizeof(*out));
	return rc;
}
