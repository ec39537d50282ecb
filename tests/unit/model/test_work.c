/* test_work.c - unit tests of the work item state machine (src/model/work.c).
 *
 * Every row T2–T20 of SPEC §3.1 has its own test that states the whole resulting item and
 * outcome, and test_every_pair walks all (state, event) pairs with each input variant and
 * checks the refusal contract (item untouched, outcome empty but for a 412). Time is a
 * number passed in: nothing sleeps and no clock is read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "model/work.h"

#define S(n) ((int64_t)(n) * 1000000)

/* A fixed timeline, well away from 0 so that "0 = none" is never a real time. */
#define T0 INT64_C(1800000000000000)
#define DELIVERED (T0 + S(1))
#define ACKED (T0 + S(2))
#define STARTED (T0 + S(3))
#define STOP_REQ (T0 + S(4))
#define STOPPED_AT (T0 + S(5))
#define ACTIVE_TTL 60
#define RECLAIM_DEFAULT_US ((int64_t)WORK_RECLAIM_DEFAULT_MS * 1000)

/* Items as the state machine leaves them in each state. memset first, so that padding is
 * defined and memcmp against a copy is meaningful. */
static void make_queued(struct work_lease *w)
{
	memset(w, 0, sizeof(*w));
	w->state = WORK_QUEUED;
}

static void make_delivered(struct work_lease *w)
{
	make_queued(w);
	w->delivered_at = DELIVERED;
	w->delivery_count = 1;
}

static void make_starting(struct work_lease *w)
{
	make_delivered(w);
	w->state = WORK_STARTING;
	w->acknowledged_at = ACKED;
	w->lease_expires_at = ACKED + S(WORK_TTL_DEFAULT_S);
	w->ttl_seconds = WORK_TTL_DEFAULT_S;
}

static void make_active(struct work_lease *w)
{
	make_starting(w);
	w->state = WORK_ACTIVE;
	w->started_at = STARTED;
	w->latest_heartbeat_at = STARTED;
	w->lease_expires_at = STARTED + S(ACTIVE_TTL);
	w->ttl_seconds = ACTIVE_TTL;
}

static void make_stopping(struct work_lease *w)
{
	make_active(w);
	w->state = WORK_STOPPING;
	w->stop_requested_at = STOP_REQ;
}

/* Stopping straight from starting (T14 before the first heartbeat). */
static void make_stopping_unstarted(struct work_lease *w)
{
	make_starting(w);
	w->state = WORK_STOPPING;
	w->stop_requested_at = STOP_REQ;
}

static void make_stopped(struct work_lease *w)
{
	make_stopping(w);
	w->state = WORK_STOPPED;
	w->stopped_at = STOPPED_AT;
	w->lease_expires_at = 0;
	w->ttl_seconds = 0;
}

static void (*const makers[WORK_STATE__COUNT])(struct work_lease *) = {
	[WORK_QUEUED] = make_delivered,
	[WORK_STARTING] = make_starting,
	[WORK_ACTIVE] = make_active,
	[WORK_STOPPING] = make_stopping,
	[WORK_STOPPED] = make_stopped,
};

/* Field by field, so a failure names the field. */
static void assert_item(const struct work_lease *want, const struct work_lease *got)
{
	assert_int_equal(want->state, got->state);
	assert_int_equal(want->delivered_at, got->delivered_at);
	assert_int_equal(want->delivery_count, got->delivery_count);
	assert_int_equal(want->acknowledged_at, got->acknowledged_at);
	assert_int_equal(want->started_at, got->started_at);
	assert_int_equal(want->latest_heartbeat_at, got->latest_heartbeat_at);
	assert_int_equal(want->stop_requested_at, got->stop_requested_at);
	assert_int_equal(want->stopped_at, got->stopped_at);
	assert_int_equal(want->lease_expires_at, got->lease_expires_at);
	assert_int_equal(want->ttl_seconds, got->ttl_seconds);
}

static void assert_outcome(const struct work_outcome *want, const struct work_outcome *got)
{
	assert_int_equal(want->changed, got->changed);
	assert_int_equal(want->new_delivery, got->new_delivery);
	assert_int_equal(want->requeue_at_head, got->requeue_at_head);
	assert_int_equal(want->left_queue, got->left_queue);
	assert_int_equal(want->delivery_undone, got->delivery_undone);
	assert_int_equal(want->lease_extended, got->lease_extended);
	assert_int_equal(want->ttl_seconds, got->ttl_seconds);
}

static const struct work_outcome no_outcome;

/* Run a transition that must be refused with `want_err`: the item is untouched byte for
 * byte. Returns the outcome (all zero unless the refusal is a 412). */
static struct work_outcome refused(const struct work_lease *w, enum work_event ev,
				   const struct work_input *in, int64_t now, enum err want_err)
{
	struct work_lease item, before;
	struct work_outcome out;
	memcpy(&item, w, sizeof(item));
	memcpy(&before, w, sizeof(before));
	memset(&out, 0x5a, sizeof(out)); /* must be overwritten */
	assert_int_equal(want_err, work_transition(&item, ev, in, now, &out));
	assert_memory_equal(&before, &item, sizeof(item));
	if (want_err != ERR_HEARTBEAT_PRECONDITION)
		assert_outcome(&no_outcome, &out);
	return out;
}

/* Run a transition that must succeed; returns the outcome and updates *w. */
static struct work_outcome accepted(struct work_lease *w, enum work_event ev,
				    const struct work_input *in, int64_t now)
{
	struct work_outcome out;
	memset(&out, 0x5a, sizeof(out));
	assert_int_equal(ERR_OK, work_transition(w, ev, in, now, &out));
	return out;
}

static struct work_input stop_input(int force)
{
	struct work_input in = {0};
	in.force = force;
	return in;
}

static struct work_input heartbeat_input(enum work_expect expect, int64_t expected_us,
					 int32_t desired_ttl_seconds)
{
	struct work_input in = {0};
	in.expect = expect;
	in.expected_us = expected_us;
	in.desired_ttl_seconds = desired_ttl_seconds;
	return in;
}

static struct work_input poll_input(int64_t reclaim_us)
{
	struct work_input in = {0};
	in.reclaim_older_than_us = reclaim_us;
	return in;
}

/* ---- helpers ------------------------------------------------------------------------ */

static void test_clamp_ttl(void **state)
{
	assert_int_equal(90, work_clamp_ttl(0));
	assert_int_equal(10, work_clamp_ttl(-5));
	assert_int_equal(10, work_clamp_ttl(1));
	assert_int_equal(10, work_clamp_ttl(9));
	assert_int_equal(10, work_clamp_ttl(10));
	assert_int_equal(11, work_clamp_ttl(11));
	assert_int_equal(90, work_clamp_ttl(90));
	assert_int_equal(600, work_clamp_ttl(600));
	assert_int_equal(600, work_clamp_ttl(601));
	assert_int_equal(600, work_clamp_ttl(INT32_MAX));
	assert_int_equal(10, work_clamp_ttl(INT32_MIN));
}

static void test_state_names(void **state)
{
	static const char *const names[] = {"queued", "starting", "active", "stopping", "stopped"};
	assert_int_equal(WORK_STATE__COUNT, sizeof(names) / sizeof(names[0]));
	for (int s = 0; s < WORK_STATE__COUNT; s++) {
		assert_string_equal(names[s], work_state_name((enum work_state)s));
		assert_int_equal(s, work_state_parse(names[s]));
	}
	assert_null(work_state_name(WORK_STATE__COUNT));
	assert_null(work_state_name((enum work_state)-1));
	assert_int_equal(-1, work_state_parse("Queued"));
	assert_int_equal(-1, work_state_parse("queued "));
	assert_int_equal(-1, work_state_parse(""));
	assert_int_equal(-1, work_state_parse("running"));
	assert_int_equal(-1, work_state_parse(NULL));
}

static void test_lease_remaining(void **state)
{
	struct work_lease w;
	make_active(&w); /* lease runs out at STARTED + 60 s */
	assert_int_equal(60, work_lease_remaining_s(&w, STARTED));
	assert_int_equal(60, work_lease_remaining_s(&w, STARTED + 1));
	assert_int_equal(59, work_lease_remaining_s(&w, STARTED + S(1)));
	assert_int_equal(1, work_lease_remaining_s(&w, STARTED + S(60) - 1));
	assert_int_equal(0, work_lease_remaining_s(&w, STARTED + S(60)));
	assert_int_equal(0, work_lease_remaining_s(&w, STARTED + S(61)));
	make_queued(&w);
	assert_int_equal(0, work_lease_remaining_s(&w, T0));
}

/* ---- POLL: T2, T3 ------------------------------------------------------------------- */

static void test_t2_poll_fresh(void **state)
{
	const int64_t reclaims[] = {0, RECLAIM_DEFAULT_US, S(86400)};
	for (size_t i = 0; i < sizeof(reclaims) / sizeof(reclaims[0]); i++) {
		struct work_lease w, want;
		make_queued(&w);
		want = w;
		struct work_input in = poll_input(reclaims[i]);
		struct work_outcome out = accepted(&w, WORK_EV_POLL, &in, T0);
		want.delivered_at = T0;
		want.delivery_count = 1;
		assert_item(&want, &w);
		assert_outcome(&(struct work_outcome){.changed = 1, .new_delivery = 1}, &out);
	}
}

static void test_t3_poll_reclaim(void **state)
{
	struct work_lease w, want;
	struct work_input in = poll_input(RECLAIM_DEFAULT_US);

	/* Exactly reclaim_older_than after the delivery: reclaimable. */
	make_delivered(&w);
	want = w;
	int64_t now = DELIVERED + RECLAIM_DEFAULT_US;
	struct work_outcome out = accepted(&w, WORK_EV_POLL, &in, now);
	want.delivered_at = now;
	want.delivery_count = 2;
	assert_item(&want, &w);
	assert_outcome(&(struct work_outcome){.changed = 1, .new_delivery = 1}, &out);

	/* And again, counting on. */
	now += S(3600);
	out = accepted(&w, WORK_EV_POLL, &in, now);
	want.delivered_at = now;
	want.delivery_count = 3;
	assert_item(&want, &w);
	assert_outcome(&(struct work_outcome){.changed = 1, .new_delivery = 1}, &out);

	/* reclaim_older_than_ms=0 reclaims at once, even at the same microsecond. */
	make_delivered(&w);
	want = w;
	in = poll_input(0);
	out = accepted(&w, WORK_EV_POLL, &in, DELIVERED);
	want.delivered_at = DELIVERED;
	want.delivery_count = 2;
	assert_item(&want, &w);
	assert_outcome(&(struct work_outcome){.changed = 1, .new_delivery = 1}, &out);
}

static void test_poll_not_claimable(void **state)
{
	struct work_lease w;
	struct work_input in = poll_input(RECLAIM_DEFAULT_US);

	/* Delivered too recently: one microsecond short, and a clock that went backwards. */
	make_delivered(&w);
	refused(&w, WORK_EV_POLL, &in, DELIVERED + RECLAIM_DEFAULT_US - 1, ERR_INVALID);
	refused(&w, WORK_EV_POLL, &in, DELIVERED, ERR_INVALID);
	refused(&w, WORK_EV_POLL, &in, DELIVERED - S(1), ERR_INVALID);

	/* Not queued at all. */
	for (int s = WORK_STARTING; s < WORK_STATE__COUNT; s++) {
		makers[s](&w);
		in = poll_input(0);
		refused(&w, WORK_EV_POLL, &in, T0 + S(1000), ERR_INVALID);
	}
}

/* ---- ACK: T4, T5, T6 ---------------------------------------------------------------- */

static void test_t4_ack_queued(void **state)
{
	void (*const from[])(struct work_lease *) = {make_queued, make_delivered};
	for (size_t i = 0; i < 2; i++) {
		struct work_lease w, want;
		from[i](&w);
		want = w;
		int64_t now = ACKED;
		struct work_outcome out = accepted(&w, WORK_EV_ACK, NULL, now);
		want.state = WORK_STARTING;
		want.acknowledged_at = now;
		want.lease_expires_at = now + S(90);
		want.ttl_seconds = 90;
		/* delivered_at and delivery_count are kept. */
		assert_item(&want, &w);
		assert_outcome(&(struct work_outcome){.changed = 1, .left_queue = 1}, &out);
	}
}

static void test_t5_ack_idempotent(void **state)
{
	const enum work_state states[] = {WORK_STARTING, WORK_ACTIVE};
	for (size_t i = 0; i < 2; i++) {
		struct work_lease w, before;
		makers[states[i]](&w);
		memcpy(&before, &w, sizeof(w));
		struct work_outcome out = accepted(&w, WORK_EV_ACK, NULL, T0 + S(30));
		assert_memory_equal(&before, &w, sizeof(w));
		assert_outcome(&no_outcome, &out);
	}
}

static void test_t6_ack_conflict(void **state)
{
	struct work_lease w;
	make_stopping(&w);
	refused(&w, WORK_EV_ACK, NULL, T0 + S(30), ERR_CONFLICT);
	make_stopping_unstarted(&w);
	refused(&w, WORK_EV_ACK, NULL, T0 + S(30), ERR_CONFLICT);
	make_stopped(&w);
	refused(&w, WORK_EV_ACK, NULL, T0 + S(30), ERR_CONFLICT);
}

/* ---- HEARTBEAT: T7–T12 -------------------------------------------------------------- */

static const struct {
	int32_t desired;
	int32_t granted;
} ttls[] = {{0, 90}, {1, 10}, {10, 10}, {45, 45}, {600, 600}, {601, 600}};

static void test_t7_first_heartbeat(void **state)
{
	const enum work_expect expects[] = {WORK_EXPECT_OMITTED, WORK_EXPECT_NONE};
	for (size_t e = 0; e < 2; e++) {
		for (size_t t = 0; t < sizeof(ttls) / sizeof(ttls[0]); t++) {
			struct work_lease w, want;
			make_starting(&w);
			want = w;
			int64_t now = STARTED;
			struct work_input in = heartbeat_input(expects[e], 0, ttls[t].desired);
			struct work_outcome out = accepted(&w, WORK_EV_HEARTBEAT, &in, now);
			want.state = WORK_ACTIVE;
			want.started_at = now;
			want.latest_heartbeat_at = now;
			want.lease_expires_at = now + S(ttls[t].granted);
			want.ttl_seconds = ttls[t].granted;
			assert_item(&want, &w);
			assert_outcome(&(struct work_outcome){.changed = 1,
							      .lease_extended = 1,
							      .ttl_seconds = ttls[t].granted},
				       &out);
		}
	}
}

/* T9 from starting: there is no stored heartbeat, so any timestamp is a mismatch. */
static void test_t9_starting_with_timestamp(void **state)
{
	struct work_lease w;
	make_starting(&w); /* lease runs out at ACKED + 90 s */
	const int64_t expected[] = {0, ACKED, STARTED};
	for (size_t i = 0; i < 3; i++) {
		struct work_input in = heartbeat_input(WORK_EXPECT_TIMESTAMP, expected[i], 30);
		struct work_outcome out =
			refused(&w, WORK_EV_HEARTBEAT, &in, ACKED + S(10), ERR_HEARTBEAT_PRECONDITION);
		assert_outcome(&(struct work_outcome){.lease_extended = 0, .ttl_seconds = 80}, &out);
	}
	/* The remaining seconds round up. */
	struct work_input in = heartbeat_input(WORK_EXPECT_TIMESTAMP, ACKED, 0);
	struct work_outcome out =
		refused(&w, WORK_EV_HEARTBEAT, &in, ACKED + S(10) + 1, ERR_HEARTBEAT_PRECONDITION);
	assert_outcome(&(struct work_outcome){.ttl_seconds = 80}, &out);
	out = refused(&w, WORK_EV_HEARTBEAT, &in, ACKED + S(90) - 1, ERR_HEARTBEAT_PRECONDITION);
	assert_outcome(&(struct work_outcome){.ttl_seconds = 1}, &out);
	/* A lease that already ran out (not yet swept) reports 0. */
	out = refused(&w, WORK_EV_HEARTBEAT, &in, ACKED + S(90), ERR_HEARTBEAT_PRECONDITION);
	assert_outcome(&no_outcome, &out);
}

static void test_t8_heartbeat_renews(void **state)
{
	const enum work_expect expects[] = {WORK_EXPECT_OMITTED, WORK_EXPECT_TIMESTAMP};
	for (size_t e = 0; e < 2; e++) {
		for (size_t t = 0; t < sizeof(ttls) / sizeof(ttls[0]); t++) {
			struct work_lease w, want;
			make_active(&w);
			want = w;
			int64_t now = STARTED + S(20) + 7;
			struct work_input in = heartbeat_input(expects[e], STARTED, ttls[t].desired);
			struct work_outcome out = accepted(&w, WORK_EV_HEARTBEAT, &in, now);
			want.latest_heartbeat_at = now;
			want.lease_expires_at = now + S(ttls[t].granted);
			want.ttl_seconds = ttls[t].granted;
			/* started_at and the state stay. */
			assert_item(&want, &w);
			assert_outcome(&(struct work_outcome){.changed = 1,
							      .lease_extended = 1,
							      .ttl_seconds = ttls[t].granted},
				       &out);

			/* The next beat must echo the new value, to the microsecond. */
			int64_t later = now + S(20);
			in = heartbeat_input(WORK_EXPECT_TIMESTAMP, now, 0);
			out = accepted(&w, WORK_EV_HEARTBEAT, &in, later);
			assert_int_equal(WORK_ACTIVE, w.state);
			assert_int_equal(later, w.latest_heartbeat_at);
			assert_int_equal(later + S(90), w.lease_expires_at);
			assert_int_equal(90, out.ttl_seconds);
		}
	}
}

static void test_t9_active_mismatch(void **state)
{
	struct work_lease w;
	make_active(&w); /* lease runs out at STARTED + 60 s */
	const int64_t now = STARTED + S(15);
	struct work_input bad[] = {
		heartbeat_input(WORK_EXPECT_NONE, 0, 0),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, STARTED - 1, 0),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, STARTED + 1, 0),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, 0, 0),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct work_outcome out =
			refused(&w, WORK_EV_HEARTBEAT, &bad[i], now, ERR_HEARTBEAT_PRECONDITION);
		assert_outcome(&(struct work_outcome){.lease_extended = 0, .ttl_seconds = 45}, &out);
	}
	struct work_outcome out =
		refused(&w, WORK_EV_HEARTBEAT, &bad[0], STARTED + S(61), ERR_HEARTBEAT_PRECONDITION);
	assert_outcome(&no_outcome, &out);
}

static void test_t10_heartbeat_stopping(void **state)
{
	void (*const from[])(struct work_lease *) = {make_stopping, make_stopping_unstarted};
	struct work_input ins[] = {
		heartbeat_input(WORK_EXPECT_OMITTED, 0, 0),
		heartbeat_input(WORK_EXPECT_NONE, 0, 0),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, STARTED, 0),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, STARTED + 1, 0),
		heartbeat_input(WORK_EXPECT_OMITTED, 0, 1000),
	};
	for (size_t f = 0; f < 2; f++) {
		for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
			struct work_lease w, want;
			from[f](&w);
			want = w;
			int64_t now = STOP_REQ + S(5);
			int32_t ttl = work_clamp_ttl(ins[i].desired_ttl_seconds);
			struct work_outcome out = accepted(&w, WORK_EV_HEARTBEAT, &ins[i], now);
			want.latest_heartbeat_at = now;
			want.lease_expires_at = now + S(ttl);
			want.ttl_seconds = ttl;
			/* Still stopping; started_at and stop_requested_at as they were. */
			assert_item(&want, &w);
			assert_outcome(&(struct work_outcome){.changed = 1,
							      .lease_extended = 1,
							      .ttl_seconds = ttl},
				       &out);
		}
	}
}

static void test_t11_heartbeat_stopped(void **state)
{
	struct work_input ins[] = {
		heartbeat_input(WORK_EXPECT_OMITTED, 0, 0),
		heartbeat_input(WORK_EXPECT_NONE, 0, 0),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, STARTED, 300),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, 1, 0),
	};
	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		struct work_lease w, before;
		make_stopped(&w);
		memcpy(&before, &w, sizeof(w));
		struct work_outcome out = accepted(&w, WORK_EV_HEARTBEAT, &ins[i], STOPPED_AT + S(1));
		assert_memory_equal(&before, &w, sizeof(w));
		assert_outcome(&(struct work_outcome){.changed = 0, .lease_extended = 0, .ttl_seconds = 0},
			       &out);
	}
}

static void test_t12_heartbeat_queued(void **state)
{
	void (*const from[])(struct work_lease *) = {make_queued, make_delivered};
	for (size_t f = 0; f < 2; f++) {
		struct work_lease w;
		from[f](&w);
		struct work_input in = heartbeat_input(WORK_EXPECT_OMITTED, 0, 0);
		refused(&w, WORK_EV_HEARTBEAT, &in, T0 + S(10), ERR_CONFLICT);
		in = heartbeat_input(WORK_EXPECT_NONE, 0, 30);
		refused(&w, WORK_EV_HEARTBEAT, &in, T0 + S(10), ERR_CONFLICT);
		/* A lost lease: 412 with no lease left. */
		in = heartbeat_input(WORK_EXPECT_TIMESTAMP, STARTED, 0);
		struct work_outcome out =
			refused(&w, WORK_EV_HEARTBEAT, &in, T0 + S(10), ERR_HEARTBEAT_PRECONDITION);
		assert_outcome(&(struct work_outcome){.lease_extended = 0, .ttl_seconds = 0}, &out);
	}
}

/* ---- STOP: T13–T17 ------------------------------------------------------------------ */

static void test_t13_stop_queued(void **state)
{
	void (*const from[])(struct work_lease *) = {make_queued, make_delivered};
	for (size_t f = 0; f < 2; f++) {
		for (int force = 0; force <= 1; force++) {
			struct work_lease w, want;
			from[f](&w);
			want = w;
			int64_t now = T0 + S(7);
			struct work_input in = stop_input(force);
			struct work_outcome out = accepted(&w, WORK_EV_STOP, &in, now);
			want.state = WORK_STOPPED;
			want.stopped_at = now;
			want.lease_expires_at = 0;
			want.ttl_seconds = 0;
			/* stop_requested_at stays null; delivery fields are kept. */
			assert_item(&want, &w);
			assert_outcome(&(struct work_outcome){.changed = 1,
							      .left_queue = 1},
				       &out);
		}
	}
}

static void test_t14_stop_graceful(void **state)
{
	const enum work_state states[] = {WORK_STARTING, WORK_ACTIVE};
	for (size_t i = 0; i < 2; i++) {
		struct work_lease w, want;
		makers[states[i]](&w);
		want = w;
		int64_t now = STOP_REQ;
		struct work_input in = stop_input(0);
		struct work_outcome out = accepted(&w, WORK_EV_STOP, &in, now);
		want.state = WORK_STOPPING;
		want.stop_requested_at = now;
		/* The lease and everything else are unchanged. */
		assert_item(&want, &w);
		assert_outcome(&(struct work_outcome){.changed = 1}, &out);
	}
}

static void test_t15_stop_stopping(void **state)
{
	void (*const from[])(struct work_lease *) = {make_stopping, make_stopping_unstarted};
	for (size_t f = 0; f < 2; f++) {
		struct work_lease w, want;
		from[f](&w);
		want = w;
		int64_t now = STOPPED_AT;
		struct work_input in = stop_input(0);
		struct work_outcome out = accepted(&w, WORK_EV_STOP, &in, now);
		want.state = WORK_STOPPED;
		want.stopped_at = now;
		want.lease_expires_at = 0;
		want.ttl_seconds = 0;
		/* stop_requested_at keeps the time of the first request. */
		assert_item(&want, &w);
		assert_outcome(&(struct work_outcome){.changed = 1}, &out);
	}
}

static void test_t16_stop_force(void **state)
{
	void (*const from[])(struct work_lease *) = {make_starting, make_active, make_stopping,
						     make_stopping_unstarted};
	for (size_t f = 0; f < sizeof(from) / sizeof(from[0]); f++) {
		struct work_lease w, want;
		from[f](&w);
		want = w;
		int64_t now = STOPPED_AT;
		struct work_input in = stop_input(1);
		struct work_outcome out = accepted(&w, WORK_EV_STOP, &in, now);
		want.state = WORK_STOPPED;
		if (want.stop_requested_at == 0)
			want.stop_requested_at = now; /* starting/active: set because it was null */
		else
			assert_int_equal(STOP_REQ, want.stop_requested_at); /* stopping: kept */
		want.stopped_at = now;
		want.lease_expires_at = 0;
		want.ttl_seconds = 0;
		assert_item(&want, &w);
		assert_outcome(&(struct work_outcome){.changed = 1}, &out);
	}
}

static void test_t17_stop_stopped(void **state)
{
	for (int force = 0; force <= 1; force++) {
		struct work_lease w;
		make_stopped(&w);
		struct work_input in = stop_input(force);
		refused(&w, WORK_EV_STOP, &in, STOPPED_AT + S(1), ERR_WORK_STOPPED);
	}
}

/* ---- LEASE_EXPIRE: T18, T19 --------------------------------------------------------- */

static void test_t18_lease_expires(void **state)
{
	const enum work_state states[] = {WORK_STARTING, WORK_ACTIVE};
	for (size_t i = 0; i < 2; i++) {
		for (int late = 0; late <= 1; late++) {
			struct work_lease w, want;
			makers[states[i]](&w);
			want = w;
			/* At the expiry microsecond, or long after it. */
			int64_t now = w.lease_expires_at + (late ? S(3600) : 0);
			struct work_outcome out = accepted(&w, WORK_EV_LEASE_EXPIRE, NULL, now);
			want.state = WORK_QUEUED;
			want.delivered_at = 0;
			want.acknowledged_at = 0;
			want.started_at = 0;
			want.latest_heartbeat_at = 0;
			want.lease_expires_at = 0;
			want.ttl_seconds = 0;
			/* delivery_count, stop_requested_at (0) and stopped_at (0) stay. */
			assert_item(&want, &w);
			assert_outcome(&(struct work_outcome){.changed = 1, .requeue_at_head = 1}, &out);
		}
	}
}

static void test_t19_lease_expires_stopping(void **state)
{
	void (*const from[])(struct work_lease *) = {make_stopping, make_stopping_unstarted};
	for (size_t f = 0; f < 2; f++) {
		struct work_lease w, want;
		from[f](&w);
		want = w;
		int64_t now = w.lease_expires_at;
		struct work_outcome out = accepted(&w, WORK_EV_LEASE_EXPIRE, NULL, now);
		want.state = WORK_STOPPED;
		want.stopped_at = now;
		want.lease_expires_at = 0;
		want.ttl_seconds = 0;
		assert_item(&want, &w);
		assert_outcome(&(struct work_outcome){.changed = 1}, &out);
	}
}

static void test_lease_expire_not_due(void **state)
{
	struct work_lease w;
	for (int s = WORK_STARTING; s <= WORK_STOPPING; s++) {
		makers[s](&w);
		refused(&w, WORK_EV_LEASE_EXPIRE, NULL, w.lease_expires_at - 1, ERR_INVALID);
		refused(&w, WORK_EV_LEASE_EXPIRE, NULL, T0, ERR_INVALID);
		/* No lease at all never expires. */
		w.lease_expires_at = 0;
		w.ttl_seconds = 0;
		refused(&w, WORK_EV_LEASE_EXPIRE, NULL, T0 + S(100000), ERR_INVALID);
	}
	make_queued(&w);
	refused(&w, WORK_EV_LEASE_EXPIRE, NULL, T0 + S(100000), ERR_INVALID);
	make_delivered(&w);
	refused(&w, WORK_EV_LEASE_EXPIRE, NULL, T0 + S(100000), ERR_INVALID);
	make_stopped(&w);
	refused(&w, WORK_EV_LEASE_EXPIRE, NULL, T0 + S(100000), ERR_INVALID);
}

/* ---- METADATA: T20 ------------------------------------------------------------------ */

static void test_t20_metadata(void **state)
{
	for (int s = 0; s < WORK_STATE__COUNT; s++) {
		struct work_lease w, before;
		makers[s](&w);
		memcpy(&before, &w, sizeof(w));
		struct work_outcome out = accepted(&w, WORK_EV_METADATA, NULL, T0 + S(50));
		assert_memory_equal(&before, &w, sizeof(w));
		assert_outcome(&no_outcome, &out);
	}
}

/* ---- UNDELIVER ---------------------------------------------------------------------- */

/* A delivered item goes back to the queue as fresh: delivered_at cleared, the secret
 * dropped, the counts kept. */
static void test_undeliver_delivered(void **state)
{
	struct work_lease w, want;
	make_delivered(&w);
	w.cycle_deliveries = 2; /* a reclaim's delivery: the counts are upper bounds, kept */
	w.delivery_count = 2;
	want = w;
	struct work_outcome out = accepted(&w, WORK_EV_UNDELIVER, NULL, DELIVERED + 10);
	want.delivered_at = 0;
	assert_item(&want, &w);
	assert_int_equal(2, w.cycle_deliveries);
	assert_int_equal(0, w.ack_proven);
	assert_outcome(&(struct work_outcome){.changed = 1, .delivery_undone = 1}, &out);

	/* The next poll is a T2 at once, whatever the reclaim window. */
	struct work_input in = poll_input(S(86400));
	out = accepted(&w, WORK_EV_POLL, &in, DELIVERED + 20);
	assert_int_equal(DELIVERED + 20, w.delivered_at);
	assert_int_equal(3, w.delivery_count);
	assert_outcome(&(struct work_outcome){.changed = 1, .new_delivery = 1}, &out);
}

/* Nothing to undo: never delivered, already undone, or the item moved on. */
static void test_undeliver_nothing_to_undo(void **state)
{
	struct work_lease w;
	make_queued(&w);
	refused(&w, WORK_EV_UNDELIVER, NULL, T0, ERR_INVALID);
	make_delivered(&w);
	accepted(&w, WORK_EV_UNDELIVER, NULL, DELIVERED + 1);
	refused(&w, WORK_EV_UNDELIVER, NULL, DELIVERED + 2, ERR_INVALID);
	for (int s = WORK_STARTING; s < WORK_STATE__COUNT; s++) {
		makers[s](&w);
		refused(&w, WORK_EV_UNDELIVER, NULL, T0 + S(10), ERR_INVALID);
	}
}

/* The pinned numbers of the stored states. */
static void test_state_values_pinned(void **state)
{
	assert_int_equal(0, WORK_QUEUED);
	assert_int_equal(1, WORK_STARTING);
	assert_int_equal(2, WORK_ACTIVE);
	assert_int_equal(3, WORK_STOPPING);
	assert_int_equal(4, WORK_STOPPED);
	assert_int_equal(5, WORK_STATE__COUNT);
}

/* ---- the whole table ---------------------------------------------------------------- */

/* Every (state, event) pair with every input variant: the answer is the one SPEC §3.1
 * gives, and a refusal leaves the item alone. `now` is chosen past every lease, so
 * LEASE_EXPIRE applies wherever a lease exists. */
static void test_every_pair(void **state)
{
	const int64_t now = T0 + S(100000);
	struct work_input variants[] = {
		{0},
		poll_input(RECLAIM_DEFAULT_US),
		poll_input(S(200000)), /* delivered too recently for this window */
		heartbeat_input(WORK_EXPECT_NONE, 0, 0),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, STARTED, 0),
		heartbeat_input(WORK_EXPECT_TIMESTAMP, STARTED + 1, 0),
		stop_input(1),
	};
	int seen[WORK_STATE__COUNT][WORK_EVENT__COUNT] = {{0}};

	for (int s = 0; s < WORK_STATE__COUNT; s++) {
		for (int ev = 0; ev < WORK_EVENT__COUNT; ev++) {
			for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
				const struct work_input *in = &variants[v];
				struct work_lease w, before;
				struct work_outcome out;
				makers[s](&w);
				memcpy(&before, &w, sizeof(w));
				memset(&out, 0x5a, sizeof(out));
				enum err want = ERR_OK;

				switch (ev) {
				case WORK_EV_POLL:
					if (s != WORK_QUEUED ||
					    now - DELIVERED < in->reclaim_older_than_us)
						want = ERR_INVALID;
					break;
				case WORK_EV_ACK:
					if (s == WORK_STOPPING || s == WORK_STOPPED)
						want = ERR_CONFLICT;
					break;
				case WORK_EV_HEARTBEAT:
					if (s == WORK_QUEUED)
						want = in->expect == WORK_EXPECT_TIMESTAMP
							       ? ERR_HEARTBEAT_PRECONDITION
							       : ERR_CONFLICT;
					else if (s == WORK_STARTING &&
						 in->expect == WORK_EXPECT_TIMESTAMP)
						want = ERR_HEARTBEAT_PRECONDITION;
					else if (s == WORK_ACTIVE &&
						 (in->expect == WORK_EXPECT_NONE ||
						  (in->expect == WORK_EXPECT_TIMESTAMP &&
						   in->expected_us != STARTED)))
						want = ERR_HEARTBEAT_PRECONDITION;
					break;
				case WORK_EV_STOP:
					if (s == WORK_STOPPED)
						want = ERR_WORK_STOPPED;
					break;
				case WORK_EV_LEASE_EXPIRE:
					if (s == WORK_QUEUED || s == WORK_STOPPED)
						want = ERR_INVALID;
					break;
				case WORK_EV_METADATA:
					break;
				case WORK_EV_UNDELIVER:
					if (s != WORK_QUEUED)
						want = ERR_INVALID;
					break;
				}

				enum err rc = work_transition(&w, (enum work_event)ev, in, now, &out);
				assert_int_equal(want, rc);
				seen[s][ev] = 1;
				if (rc != ERR_OK) {
					assert_memory_equal(&before, &w, sizeof(w));
					/* Even a 412 reports nothing: every lease ran out by now. */
					assert_outcome(&no_outcome, &out);
					continue;
				}
				/* Invariants of every accepted transition. */
				assert_true(out.changed == 0 || out.changed == 1);
				if (!out.changed)
					assert_memory_equal(&before, &w, sizeof(w));
				if (w.state == WORK_STOPPED) {
					assert_int_not_equal(0, w.stopped_at);
					assert_int_equal(0, w.lease_expires_at);
					assert_int_equal(0, w.ttl_seconds);
				}
				if (w.state == WORK_QUEUED) {
					assert_int_equal(0, w.lease_expires_at);
					assert_int_equal(0, w.acknowledged_at);
				}
				if (w.state == WORK_ACTIVE)
					assert_int_not_equal(0, w.latest_heartbeat_at);
				if (w.lease_expires_at != before.lease_expires_at && w.lease_expires_at != 0)
					assert_int_equal(now + S(w.ttl_seconds), w.lease_expires_at);
			}
		}
	}
	for (int s = 0; s < WORK_STATE__COUNT; s++)
		for (int ev = 0; ev < WORK_EVENT__COUNT; ev++)
			assert_true(seen[s][ev]);
}

static void test_null_input_and_output(void **state)
{
	struct work_lease w, want;

	/* NULL input reads as zeroes: POLL with a zero window, HEARTBEAT omitted, STOP soft. */
	make_delivered(&w);
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_POLL, NULL, DELIVERED, NULL));
	assert_int_equal(2, w.delivery_count);
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_ACK, NULL, ACKED, NULL));
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_HEARTBEAT, NULL, STARTED, NULL));
	want = w;
	assert_int_equal(WORK_ACTIVE, w.state);
	assert_int_equal(STARTED + S(90), w.lease_expires_at);
	assert_int_equal(ERR_OK, work_transition(&w, WORK_EV_STOP, NULL, STOP_REQ, NULL));
	want.state = WORK_STOPPING;
	want.stop_requested_at = STOP_REQ;
	assert_item(&want, &w);

	/* A refusal with no output still refuses. */
	make_stopped(&w);
	assert_int_equal(ERR_WORK_STOPPED, work_transition(&w, WORK_EV_STOP, NULL, T0, NULL));
	make_active(&w);
	struct work_input in = heartbeat_input(WORK_EXPECT_NONE, 0, 0);
	assert_int_equal(ERR_HEARTBEAT_PRECONDITION,
			 work_transition(&w, WORK_EV_HEARTBEAT, &in, STARTED + S(1), NULL));
}

static void test_out_of_range(void **state)
{
	struct work_lease w;
	make_active(&w);
	refused(&w, WORK_EVENT__COUNT, NULL, T0, ERR_INTERNAL);
	refused(&w, (enum work_event)-1, NULL, T0, ERR_INTERNAL);
	w.state = WORK_STATE__COUNT;
	refused(&w, WORK_EV_METADATA, NULL, T0, ERR_INTERNAL);
	w.state = (enum work_state)-1;
	refused(&w, WORK_EV_METADATA, NULL, T0, ERR_INTERNAL);
}

/* ---- stories ------------------------------------------------------------------------ */

/* SPEC §3.1: after T18 the old holder's heartbeat gets 412 and the new holder's
 * NO_HEARTBEAT succeeds; the two never hold one lease. */
static void test_lost_lease_story(void **state)
{
	struct work_lease w;
	struct work_outcome out;
	struct work_input in;
	int64_t now = T0;

	make_queued(&w);
	in = poll_input(RECLAIM_DEFAULT_US);
	out = accepted(&w, WORK_EV_POLL, &in, now);
	assert_true(out.new_delivery);
	out = accepted(&w, WORK_EV_ACK, NULL, now += S(1));
	in = heartbeat_input(WORK_EXPECT_NONE, 0, 10);
	out = accepted(&w, WORK_EV_HEARTBEAT, &in, now += S(1));
	const int64_t old_beat = w.latest_heartbeat_at;
	assert_int_equal(WORK_ACTIVE, w.state);

	/* The old holder goes quiet; the sweeper requeues the item at the head. */
	now = w.lease_expires_at;
	out = accepted(&w, WORK_EV_LEASE_EXPIRE, NULL, now);
	assert_true(out.requeue_at_head);
	assert_int_equal(WORK_QUEUED, w.state);

	/* A fresh delivery to the new holder, who acks and starts. */
	in = poll_input(RECLAIM_DEFAULT_US);
	out = accepted(&w, WORK_EV_POLL, &in, now += S(1));
	assert_int_equal(2, w.delivery_count);

	/* The old holder wakes up while the item is queued: 412, no lease. */
	in = heartbeat_input(WORK_EXPECT_TIMESTAMP, old_beat, 0);
	out = refused(&w, WORK_EV_HEARTBEAT, &in, now, ERR_HEARTBEAT_PRECONDITION);
	assert_int_equal(0, out.ttl_seconds);

	out = accepted(&w, WORK_EV_ACK, NULL, now += S(1));
	assert_int_equal(WORK_STARTING, w.state);
	/* ... and again while the new holder is starting: still 412. */
	out = refused(&w, WORK_EV_HEARTBEAT, &in, now, ERR_HEARTBEAT_PRECONDITION);
	assert_int_equal(90, out.ttl_seconds);

	in = heartbeat_input(WORK_EXPECT_NONE, 0, 0);
	out = accepted(&w, WORK_EV_HEARTBEAT, &in, now += S(1));
	assert_int_equal(WORK_ACTIVE, w.state);

	/* ... and once the new holder is active: 412 whatever it expects. */
	in = heartbeat_input(WORK_EXPECT_TIMESTAMP, old_beat, 0);
	refused(&w, WORK_EV_HEARTBEAT, &in, now, ERR_HEARTBEAT_PRECONDITION);
	in = heartbeat_input(WORK_EXPECT_NONE, 0, 0);
	refused(&w, WORK_EV_HEARTBEAT, &in, now, ERR_HEARTBEAT_PRECONDITION);

	/* The new holder finishes: graceful stop, a last beat, then the stop completes. */
	in = stop_input(0);
	accepted(&w, WORK_EV_STOP, &in, now += S(1));
	in = heartbeat_input(WORK_EXPECT_TIMESTAMP, w.latest_heartbeat_at, 0);
	out = accepted(&w, WORK_EV_HEARTBEAT, &in, now += S(1));
	assert_int_equal(WORK_STOPPING, w.state);
	assert_true(out.lease_extended);
	in = stop_input(0);
	out = accepted(&w, WORK_EV_STOP, &in, now += S(1));
	assert_int_equal(WORK_STOPPED, w.state);
	refused(&w, WORK_EV_STOP, &in, now, ERR_WORK_STOPPED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clamp_ttl),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_lease_remaining),
		cmocka_unit_test(test_t2_poll_fresh),
		cmocka_unit_test(test_t3_poll_reclaim),
		cmocka_unit_test(test_poll_not_claimable),
		cmocka_unit_test(test_t4_ack_queued),
		cmocka_unit_test(test_t5_ack_idempotent),
		cmocka_unit_test(test_t6_ack_conflict),
		cmocka_unit_test(test_t7_first_heartbeat),
		cmocka_unit_test(test_t9_starting_with_timestamp),
		cmocka_unit_test(test_t8_heartbeat_renews),
		cmocka_unit_test(test_t9_active_mismatch),
		cmocka_unit_test(test_t10_heartbeat_stopping),
		cmocka_unit_test(test_t11_heartbeat_stopped),
		cmocka_unit_test(test_t12_heartbeat_queued),
		cmocka_unit_test(test_t13_stop_queued),
		cmocka_unit_test(test_t14_stop_graceful),
		cmocka_unit_test(test_t15_stop_stopping),
		cmocka_unit_test(test_t16_stop_force),
		cmocka_unit_test(test_t17_stop_stopped),
		cmocka_unit_test(test_t18_lease_expires),
		cmocka_unit_test(test_t19_lease_expires_stopping),
		cmocka_unit_test(test_lease_expire_not_due),
		cmocka_unit_test(test_t20_metadata),
		cmocka_unit_test(test_undeliver_delivered),
		cmocka_unit_test(test_undeliver_nothing_to_undo),
		cmocka_unit_test(test_state_values_pinned),
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_null_input_and_output),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_lost_lease_story),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
