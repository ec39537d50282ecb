/* work.h - the work item state machine of SPEC §3.1 (T1–T20) as a pure function.
 *
 * work_transition() takes the lease-relevant fields of one item, an event and the current
 * wall time, and either refuses (returning the error the API must answer) or rewrites the
 * fields in place and says what the caller has to do about it (persist, mint a new secret,
 * put the item at the head of the queue, ...). It performs no I/O and reads no clock: the
 * stores load a row, call this, and persist what it decided. */
#ifndef ENVIROND_MODEL_WORK_H
#define ENVIROND_MODEL_WORK_H

#include <stdint.h>

#include "common/err.h"

/* States are stored as these numbers (and the store's SQL names some of them as
 * literals): the values are pinned and never renumbered; a new state takes the next one.
 * A stored number outside them is a damaged row, refused when read (work_state_name()). */
enum work_state {
	WORK_QUEUED = 0,
	WORK_STARTING = 1,
	WORK_ACTIVE = 2,
	WORK_STOPPING = 3,
	WORK_STOPPED = 4,
	WORK_STATE__COUNT = 5
};

enum work_event {
	WORK_EV_POLL,          /* T2/T3: a poller wants this item */
	WORK_EV_ACK,           /* T4/T5/T6 */
	WORK_EV_HEARTBEAT,     /* T7–T12 */
	WORK_EV_STOP,          /* T13–T17 */
	WORK_EV_LEASE_EXPIRE,  /* T18/T19: the sweeper found lease_expires_at <= now */
	WORK_EV_METADATA,      /* T20 */
	WORK_EV_UNDELIVER,     /* a delivery's answer never reached its poller: undo it */
	WORK_EVENT__COUNT
};

/* How a heartbeat states what it expects the stored heartbeat to be. */
enum work_expect {
	WORK_EXPECT_OMITTED,   /* no expected_last_heartbeat parameter */
	WORK_EXPECT_NONE,      /* expected_last_heartbeat=NO_HEARTBEAT */
	WORK_EXPECT_TIMESTAMP  /* an RFC 3339 value, parsed into expected_us */
};

#define WORK_TTL_DEFAULT_S 90
#define WORK_TTL_MIN_S 10
#define WORK_TTL_MAX_S 600
#define WORK_RECLAIM_DEFAULT_MS 5000

/* The fields of an item the state machine reads and writes. Times are wall µs since the
 * epoch, as lease time (clock_lease_us(): a running server's wall clock that cannot jump);
 * 0 means null / none. */
struct work_lease {
	enum work_state state;
	int64_t delivered_at;        /* last delivery by poll while queued; 0 = not delivered */
	int32_t delivery_count;      /* deliveries so far (T2 and T3 each add one) */
	int64_t acknowledged_at;
	int64_t started_at;
	int64_t latest_heartbeat_at; /* the stored heartbeat; T18 clears it */
	int64_t stop_requested_at;
	int64_t stopped_at;
	int64_t lease_expires_at;    /* 0 = no lease */
	int32_t ttl_seconds;         /* TTL of the current lease, 0 without one */
	/* Deliveries since the item last entered the queue (enqueue, T18). More than one means
	 * a replaced delivery's holder may still act on the item. */
	int32_t cycle_deliveries;
	int ack_proven;              /* the ack (T4) came with the acked delivery's session token */
};

/* Parameters of the event; only the ones of the event at hand are read. */
struct work_input {
	int64_t reclaim_older_than_us; /* POLL: delivered at least this long ago = reclaimable */
	enum work_expect expect;       /* HEARTBEAT */
	int64_t expected_us;           /* HEARTBEAT, when expect == WORK_EXPECT_TIMESTAMP */
	int32_t desired_ttl_seconds;   /* HEARTBEAT: 0 = default; else clamped to 10–600 */
	int force;                     /* STOP */
	/* ACK: the request carries the current delivery's session token (the store checked
	 * it). An ack with the environment key says nothing about which delivery it is for. */
	int delivery_proven;
};

/* What the caller must do after a transition, and what the reply says. */
struct work_outcome {
	int changed;          /* the lease fields changed: persist them */
	int new_delivery;     /* POLL: mint a new secret; the previous one dies */
	int requeue_at_head;  /* LEASE_EXPIRE (T18): the item goes back to the head of the queue */
	int left_queue;       /* the item is no longer queued (ack, stop of a queued item) */
	int delivery_undone;  /* UNDELIVER: the undone delivery's secret dies (no delivery holds one) */
	/* HEARTBEAT replies (also filled on a 412 refusal, for current_state). */
	int lease_extended;
	int32_t ttl_seconds;
};

/* Apply `ev` at wall time `now_us` to `w`. On ERR_OK, `w` holds the new fields and `out`
 * says what changed. On a refusal `w` is untouched and the return value is the API error:
 * ERR_CONFLICT (409), ERR_WORK_STOPPED (409, stop of a stopped item) or
 * ERR_HEARTBEAT_PRECONDITION (412; `out` then describes current_state). ERR_INVALID is
 * returned for an event that does not apply (e.g. POLL of an item that is not claimable,
 * LEASE_EXPIRE of an item whose lease has not expired). ERR_INTERNAL means `w->state` or
 * `ev` is out of range (a corrupt row or a bug), never a client's fault.
 *
 * `in` may be NULL: it then reads as a zero-initialised struct work_input. `out` may be
 * NULL when the caller needs no outcome. `out` is zeroed on every call; on a refusal
 * other than ERR_HEARTBEAT_PRECONDITION it stays all zero.
 *
 * Details the table of SPEC §3.1 leaves open:
 * - POLL (T2/T3) keeps the item queued; it only stamps delivered_at and counts.
 * - ACK (T4) keeps delivered_at (when the acknowledged delivery happened); T18 clears it.
 *   The first lease is WORK_TTL_DEFAULT_S whatever a later heartbeat asks for.
 * - ACK of a starting/active item (T5) is an idempotent retry only when it cannot come from
 *   another delivery's holder: the item was delivered once in this queue cycle, or the
 *   retry and the ack both carry the (current) delivery's session token. Otherwise it is
 *   ERR_CONFLICT: after a reclaim (T3) two pollers may each hold a delivery, and an ack
 *   with the environment key cannot say whose it is, so only the first ack wins.
 * - HEARTBEAT compares `expect` against latest_heartbeat_at (0 = none): OMITTED always
 *   matches, NONE matches only 0, TIMESTAMP only a stored value equal to expected_us (so a
 *   TIMESTAMP never matches an item without a heartbeat, e.g. one in `starting`). A
 *   successful heartbeat sets `out->lease_extended` and `out->ttl_seconds` (the clamped
 *   TTL of the new lease). It does not look at lease_expires_at: a lease that ran out but
 *   was not yet swept is renewed; a store that wants T18 first runs LEASE_EXPIRE first.
 *   The TTL requested in T10 (stopping) is honoured like any other.
 * - On a 412, `out->lease_extended` is 0 and `out->ttl_seconds` is what is left of the
 *   current lease in whole seconds, rounded up (work_lease_remaining_s()).
 * - STOP of a queued item (T13) leaves stop_requested_at as it was (0); only force-stops
 *   (T16) fill a missing stop_requested_at. T14 leaves the lease and the secret alone: the
 *   worker still heartbeats while it winds down.
 * - Every entry into `stopped` (T13, T15, T16, T19) sets stopped_at and clears the lease and
 *   ttl_seconds. The session token is not revoked: only a new delivery replaces it.
 * - LEASE_EXPIRE (T18) also clears delivered_at, cycle_deliveries and ack_proven, so the
 *   item counts as fresh in stats and the next POLL is a T2 (delivery_count and
 *   stop_requested_at are kept). It does not
 *   revoke the secret: SPEC §3.1 lets it live until the next delivery.
 * - METADATA (T20) always succeeds with `changed` 0: the store patches the metadata.
 * - UNDELIVER (not in the table: the poll's answer could not be written, so nobody holds
 *   the delivery) applies only to a queued item that was delivered: delivered_at goes
 *   back to 0, so the next poll is a T2 and the item counts as fresh in stats, and
 *   `delivery_undone` tells the store to drop the delivery's secret. delivery_count and
 *   cycle_deliveries are kept: the counts stay upper bounds of who may have seen the item.
 *   Any other state, or a queued item never delivered, is ERR_INVALID (the item moved on:
 *   acked, stopped or expired, and there is nothing to undo).
 */
enum err work_transition(struct work_lease *w, enum work_event ev, const struct work_input *in,
			 int64_t now_us, struct work_outcome *out);

/* Clamp a requested TTL (0 = default) into 10–600 seconds. */
int32_t work_clamp_ttl(int32_t desired_ttl_seconds);

/* Whole seconds left on `w`'s lease at `now_us`, rounded up; 0 without a lease or when it
 * has run out. This is the `ttl_seconds` of a 412's current_state. */
int32_t work_lease_remaining_s(const struct work_lease *w, int64_t now_us);

/* "queued", "starting", ...; NULL for an out-of-range value. */
const char *work_state_name(enum work_state s);
/* Parse a state name; returns -1 for an unknown one. */
int work_state_parse(const char *name);

#endif
