/* conf_work.c - every work state transition of SPEC §3.1 reachable through the verbs
 * (enqueue, claim, work_event, update_metadata), what each writes, and the refusals with
 * their outputs zeroed. Lease expiry, ordering and undelivery: conf_queue.c. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECLAIM US(5)


/* Enqueue and claim one item: its id, the token hash of the delivery. */
static void delivered(struct conf_fx *f, char id[ID_MAX], char tok[SECRET_HASH_HEX + 1])
{
	w_enqueue_ok(f->c, &f->t, f->env, conf_tick(f->c, 1000), id);
	struct work_item w;
	assert_int_equal(ERR_OK, w_claim(f->c, &f->t, f->env, NULL, RECLAIM, conf_tick(f->c, 1000), &w, tok));
	assert_string_equal(id, w.id);
	work_item_clear(&w);
}

static struct work_item get(struct conf_fx *f, const char *id)
{
	struct work_item w;
	assert_int_equal(ERR_OK, w_get(f->c, &f->t, f->env, id, &w));
	return w;
}

static void test_enqueue(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "enq");
	json_t *meta = json_pack("{s:s}", "k", "v");
	struct work_item w, again;
	int created = -1;
	int64_t at = conf_tick(f.c, 1000);
	/* T1. */
	assert_int_equal(ERR_OK, w_enqueue(f.c, &f.t, f.env, "session", "sesn_a", meta, at, &w, &created));
	assert_int_equal(1, created);
	assert_true(strncmp(w.id, "work_", 5) == 0);
	assert_string_equal(f.env, w.environment_id);
	assert_string_equal("session", w.data_type);
	assert_string_equal("sesn_a", w.data_id);
	assert_true(json_equal(meta, w.metadata));
	assert_int_equal(at, w.created_at);
	assert_int_equal(WORK_QUEUED, w.lease.state);
	struct work_item stored = get(&f, w.id);
	assert_true(json_equal(meta, stored.metadata));
	assert_int_equal(at, stored.created_at);
	assert_int_equal(WORK_QUEUED, stored.lease.state);
	assert_int_equal(0, stored.lease.delivered_at);
	assert_int_equal(0, stored.lease.delivery_count);
	assert_int_equal(0, stored.lease.lease_expires_at);
	work_item_clear(&stored);

	/* At most one live item per session: the same one comes back, not created. */
	assert_int_equal(ERR_OK, w_enqueue(f.c, &f.t, f.env, "session", "sesn_a", NULL, conf_tick(f.c, 1), &again, &created));
	assert_int_equal(0, created);
	assert_string_equal(w.id, again.id);
	assert_true(json_equal(meta, again.metadata));
	work_item_clear(&again);
	/* Healthchecks are not deduplicated; a session in another environment is another. */
	assert_int_equal(ERR_OK, w_enqueue(f.c, &f.t, f.env, "healthcheck", "sesn_a", NULL, conf_tick(f.c, 1), &again, &created));
	assert_int_equal(1, created);
	work_item_clear(&again);
	assert_int_equal(ERR_OK, w_enqueue(f.c, &f.t, f.env, "healthcheck", "sesn_a", NULL, conf_tick(f.c, 1), &again, &created));
	assert_int_equal(1, created);
	work_item_clear(&again);
	char env2[ID_MAX];
	conf_env_id(f.c, &f.t, conf_tick(f.c, 1), env2);
	assert_int_equal(ERR_OK, w_enqueue(f.c, &f.t, env2, "session", "sesn_a", NULL, conf_tick(f.c, 1), &again, &created));
	assert_int_equal(1, created);
	assert_string_not_equal(w.id, again.id);
	work_item_clear(&again);
	/* Once stopped, the session may have a new item. */
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, w.id, 0, conf_tick(f.c, 1), NULL));
	assert_int_equal(ERR_OK, w_enqueue(f.c, &f.t, f.env, "session", "sesn_a", NULL, conf_tick(f.c, 1), &again, &created));
	assert_int_equal(1, created);
	assert_string_not_equal(w.id, again.id);
	work_item_clear(&again);
	work_item_clear(&w);
	json_decref(meta);
}

static void test_lifecycle(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "life");
	char id[ID_MAX], tok[SECRET_HASH_HEX + 1];
	delivered(&f, id, tok);
	struct work_item w = get(&f, id);
	/* T2: still queued, delivered once. */
	assert_int_equal(WORK_QUEUED, w.lease.state);
	assert_int_equal(f.c->now, w.lease.delivered_at);
	assert_int_equal(1, w.lease.delivery_count);
	work_item_clear(&w);

	/* T4: starting, lease = now + 90 s. */
	int64_t acked = conf_tick(f.c, 1000);
	struct work_event_out res;
	assert_int_equal(ERR_OK, w_event(f.c, &f.t, f.env, id, WORK_EV_ACK, NULL, NULL, acked, &w, &res));
	assert_int_equal(WORK_STARTING, w.lease.state);
	assert_int_equal(WORK_STARTING, res.state);
	assert_int_equal(0, res.requeued);
	work_item_clear(&w);
	w = get(&f, id);
	assert_int_equal(WORK_STARTING, w.lease.state);
	assert_int_equal(acked, w.lease.acknowledged_at);
	assert_int_equal(acked + US(WORK_TTL_DEFAULT_S), w.lease.lease_expires_at);
	assert_int_equal(WORK_TTL_DEFAULT_S, w.lease.ttl_seconds);
	assert_int_equal(0, w.lease.started_at);
	work_item_clear(&w);
	/* Out of the queue: nothing to claim. */
	DIRTY(w);
	assert_int_equal(ERR_NOT_FOUND, w_claim(f.c, &f.t, f.env, NULL, 0, conf_tick(f.c, US(60)), &w, NULL));
	assert_true(all_zero(&w, sizeof(w)));

	/* T7: starting → active with NO_HEARTBEAT; the TTL asked for is granted. */
	int64_t b1 = conf_tick(f.c, 1000);
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_NONE, 0, 30, b1, &res, NULL));
	assert_int_equal(WORK_ACTIVE, res.beat.state);
	assert_int_equal(b1, res.beat.last_heartbeat);
	assert_int_equal(1, res.beat.lease_extended);
	assert_int_equal(30, res.beat.ttl_seconds);
	w = get(&f, id);
	assert_int_equal(b1, w.lease.started_at);
	assert_int_equal(b1, w.lease.latest_heartbeat_at);
	assert_int_equal(b1 + US(30), w.lease.lease_expires_at);
	work_item_clear(&w);

	/* T8: expected = the stored heartbeat, and omitted. */
	int64_t b2 = conf_tick(f.c, US(10));
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_TIMESTAMP, b1, 0, b2, &res, NULL));
	assert_int_equal(b2, res.beat.last_heartbeat);
	assert_int_equal(WORK_TTL_DEFAULT_S, res.beat.ttl_seconds);
	int64_t b3 = conf_tick(f.c, US(10));
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_OMITTED, 0, 0, b3, &res, NULL));
	w = get(&f, id);
	assert_int_equal(b1, w.lease.started_at);
	assert_int_equal(b3, w.lease.latest_heartbeat_at);
	assert_int_equal(b3 + US(WORK_TTL_DEFAULT_S), w.lease.lease_expires_at);
	work_item_clear(&w);

	/* T14: stopping, stop_requested_at; the lease stays. */
	int64_t s1 = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPING, w_stop(f.c, &f.t, f.env, id, 0, s1, NULL));
	w = get(&f, id);
	assert_int_equal(s1, w.lease.stop_requested_at);
	assert_int_equal(b3 + US(WORK_TTL_DEFAULT_S), w.lease.lease_expires_at);
	work_item_clear(&w);
	/* T10: renewed with no comparison. */
	int64_t b4 = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPING, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_NONE, 0, 20, b4, &res, NULL));
	assert_int_equal(WORK_STOPPING, res.beat.state);
	assert_int_equal(1, res.beat.lease_extended);
	assert_int_equal(20, res.beat.ttl_seconds);
	/* T6: no ack while stopping. */
	enum err rc;
	assert_int_equal(-1, w_ack(f.c, &f.t, f.env, id, conf_tick(f.c, 1), &rc));
	assert_int_equal(ERR_CONFLICT, rc);
	/* T15: stopped, the lease gone. */
	int64_t s2 = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, id, 0, s2, NULL));
	w = get(&f, id);
	assert_int_equal(WORK_STOPPED, w.lease.state);
	assert_int_equal(s2, w.lease.stopped_at);
	assert_int_equal(s1, w.lease.stop_requested_at);
	assert_int_equal(0, w.lease.lease_expires_at);
	assert_int_equal(0, w.lease.ttl_seconds);
	work_item_clear(&w);
	/* T11: answered, nothing extended. */
	assert_int_equal(WORK_STOPPED, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_TIMESTAMP, 1, 0, conf_tick(f.c, 1), &res, NULL));
	assert_int_equal(WORK_STOPPED, res.beat.state);
	assert_int_equal(0, res.beat.lease_extended);
	assert_int_equal(0, res.beat.ttl_seconds);
	/* T17 and T6 on stopped: refused, outputs zeroed. */
	struct work_item out;
	struct work_input force = {.force = 1};
	DIRTY(out);
	DIRTY(res);
	assert_int_equal(ERR_WORK_STOPPED,
			 w_event(f.c, &f.t, f.env, id, WORK_EV_STOP, &force, NULL, conf_tick(f.c, 1), &out, &res));
	assert_true(all_zero(&out, sizeof(out)));
	assert_int_equal(0, res.requeued);
	assert_int_equal(-1, w_ack(f.c, &f.t, f.env, id, conf_tick(f.c, 1), &rc));
	assert_int_equal(ERR_CONFLICT, rc);
	w = get(&f, id);
	assert_int_equal(s2, w.lease.stopped_at);
	work_item_clear(&w);
}

/* T5: an ack retry is accepted when one delivery could have made it; after a reclaim
 * (two deliveries) only a retry proven by the acking delivery's token is. */
static void test_ack_retry(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "ack");
	char id[ID_MAX], tok[SECRET_HASH_HEX + 1];
	delivered(&f, id, tok);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, id, conf_tick(f.c, 1000), NULL));
	int64_t acked;
	struct work_item w = get(&f, id);
	acked = w.lease.acknowledged_at;
	work_item_clear(&w);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, id, conf_tick(f.c, 1000), NULL));
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_NONE, 0, 0, conf_tick(f.c, 1000), NULL, NULL));
	assert_int_equal(WORK_ACTIVE, w_ack(f.c, &f.t, f.env, id, conf_tick(f.c, 1000), NULL));
	w = get(&f, id);
	assert_int_equal(acked, w.lease.acknowledged_at); /* unchanged */
	work_item_clear(&w);

	/* Two deliveries of one item (T2, then T3 once reclaimable). */
	char id2[ID_MAX], tok_a[SECRET_HASH_HEX + 1], tok_b[SECRET_HASH_HEX + 1];
	delivered(&f, id2, tok_a);
	assert_int_equal(ERR_OK, w_claim(f.c, &f.t, f.env, NULL, RECLAIM, conf_tick(f.c, RECLAIM), &w, tok_b));
	assert_string_equal(id2, w.id);
	assert_int_equal(2, w.lease.delivery_count);
	work_item_clear(&w);
	/* The holder of the replaced delivery is no longer the item's. */
	struct work_event_out res;
	struct work_input proven = {.delivery_proven = 1};
	DIRTY(w);
	assert_int_equal(ERR_UNAUTHENTICATED,
			 w_event(f.c, &f.t, f.env, id2, WORK_EV_ACK, &proven, tok_a, conf_tick(f.c, 1), &w, &res));
	assert_true(all_zero(&w, sizeof(w)));
	assert_int_equal(ERR_OK, w_event(f.c, &f.t, f.env, id2, WORK_EV_ACK, &proven, tok_b, conf_tick(f.c, 1), &w, &res));
	assert_int_equal(WORK_STARTING, w.lease.state);
	work_item_clear(&w);
	/* A retry with the proven token holds; one with only the environment key cannot say
	 * whose it is and is refused. */
	assert_int_equal(ERR_OK, w_event(f.c, &f.t, f.env, id2, WORK_EV_ACK, &proven, tok_b, conf_tick(f.c, 1), &w, &res));
	work_item_clear(&w);
	DIRTY(w);
	assert_int_equal(ERR_CONFLICT, w_event(f.c, &f.t, f.env, id2, WORK_EV_ACK, NULL, NULL, conf_tick(f.c, 1), &w, &res));
	assert_true(all_zero(&w, sizeof(w)));
	assert_int_equal(WORK_STARTING, res.state);
}

static void test_heartbeat_refusals(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "beat");
	char id[ID_MAX], tok[SECRET_HASH_HEX + 1];
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), id);
	struct work_event_out res;
	struct work_item w;
	enum err rc;
	/* T12: a queued item: 409, or 412 when the caller believed it held a lease. */
	assert_int_equal(-1, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_OMITTED, 0, 0, conf_tick(f.c, 1), &res, &rc));
	assert_int_equal(ERR_CONFLICT, rc);
	assert_int_equal(-1, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_TIMESTAMP, CONF_T0, 0, conf_tick(f.c, 1), &res, &rc));
	assert_int_equal(ERR_HEARTBEAT_PRECONDITION, rc);
	assert_int_equal(WORK_QUEUED, res.beat.state);
	assert_int_equal(0, res.beat.lease_extended);

	struct work_item claimed;
	assert_int_equal(ERR_OK, w_claim(f.c, &f.t, f.env, NULL, RECLAIM, conf_tick(f.c, 1000), &claimed, tok));
	work_item_clear(&claimed);
	int64_t acked = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, id, acked, NULL));
	/* T9 from starting: a timestamp never matches an item without a heartbeat; the 412
	 * reports the state and what is left of the lease, rounded up. */
	int64_t at = conf_tick(f.c, US(30) + 1);
	DIRTY(w);
	assert_int_equal(ERR_HEARTBEAT_PRECONDITION,
			 w_event(f.c, &f.t, f.env, id, WORK_EV_HEARTBEAT,
				 &(struct work_input){.expect = WORK_EXPECT_TIMESTAMP, .expected_us = acked}, NULL, at, &w,
				 &res));
	assert_true(all_zero(&w, sizeof(w)));
	assert_int_equal(WORK_STARTING, res.beat.state);
	assert_int_equal(0, res.beat.lease_extended);
	assert_int_equal(WORK_TTL_DEFAULT_S - 30, res.beat.ttl_seconds);
	/* T9 from active: NO_HEARTBEAT once one exists, or another timestamp. */
	int64_t b1 = conf_tick(f.c, 1000);
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_NONE, 0, 0, b1, &res, NULL));
	assert_int_equal(-1, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_NONE, 0, 0, conf_tick(f.c, 1), &res, &rc));
	assert_int_equal(ERR_HEARTBEAT_PRECONDITION, rc);
	assert_int_equal(WORK_ACTIVE, res.beat.state);
	assert_int_equal(b1, res.beat.last_heartbeat);
	assert_int_equal(-1, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_TIMESTAMP, b1 - 1, 0, conf_tick(f.c, 1), &res, &rc));
	assert_int_equal(ERR_HEARTBEAT_PRECONDITION, rc);
	/* Refused beats changed nothing. */
	w = get(&f, id);
	assert_int_equal(b1, w.lease.latest_heartbeat_at);
	assert_int_equal(b1 + US(WORK_TTL_DEFAULT_S), w.lease.lease_expires_at);
	work_item_clear(&w);
}

static void test_ttl_clamp(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "ttl");
	char id[ID_MAX], tok[SECRET_HASH_HEX + 1];
	delivered(&f, id, tok);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, id, conf_tick(f.c, 1000), NULL));
	const int32_t asked[] = {1, 9, 10, 600, 601, 100000, 0};
	const int32_t granted[] = {10, 10, 10, 600, 600, 600, WORK_TTL_DEFAULT_S};
	for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
		struct work_event_out res;
		int64_t at = conf_tick(f.c, 1000);
		assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_OMITTED, 0, asked[i], at, &res, NULL));
		assert_int_equal(granted[i], res.beat.ttl_seconds);
		struct work_item w = get(&f, id);
		assert_int_equal(at + US(granted[i]), w.lease.lease_expires_at);
		assert_int_equal(granted[i], w.lease.ttl_seconds);
		work_item_clear(&w);
	}
}

static void test_stop_paths(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "stop");
	/* T13: a queued item stops at once (stop_requested_at stays null), out of the queue. */
	char q[ID_MAX];
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), q);
	int64_t at = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, q, 0, at, NULL));
	struct work_item w = get(&f, q);
	assert_int_equal(at, w.lease.stopped_at);
	assert_int_equal(0, w.lease.stop_requested_at);
	work_item_clear(&w);
	assert_int_equal(ERR_NOT_FOUND, w_claim(f.c, &f.t, f.env, NULL, 0, conf_tick(f.c, US(60)), &w, NULL));
	struct work_stats st;
	assert_int_equal(ERR_OK, w_stats(f.c, &f.t, f.env, &st));
	assert_int_equal(0, st.depth);
	assert_int_equal(0, st.pending);
	/* A delivered queued item too (force). */
	char d[ID_MAX], tok[SECRET_HASH_HEX + 1];
	delivered(&f, d, tok);
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, d, 1, conf_tick(f.c, 1000), NULL));

	/* T16 from active: stopped, stop_requested_at filled. */
	char a[ID_MAX];
	delivered(&f, a, tok);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, a, conf_tick(f.c, 1000), NULL));
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, a, WORK_EXPECT_NONE, 0, 0, conf_tick(f.c, 1000), NULL, NULL));
	at = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, a, 1, at, NULL));
	w = get(&f, a);
	assert_int_equal(at, w.lease.stop_requested_at);
	assert_int_equal(at, w.lease.stopped_at);
	assert_int_equal(0, w.lease.lease_expires_at);
	work_item_clear(&w);

	/* T16 from starting, and from stopping (which keeps its stop_requested_at). */
	char b[ID_MAX];
	delivered(&f, b, tok);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, b, conf_tick(f.c, 1000), NULL));
	int64_t asked = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPING, w_stop(f.c, &f.t, f.env, b, 0, asked, NULL));
	at = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, b, 1, at, NULL));
	w = get(&f, b);
	assert_int_equal(asked, w.lease.stop_requested_at);
	assert_int_equal(at, w.lease.stopped_at);
	work_item_clear(&w);
	char s[ID_MAX];
	delivered(&f, s, tok);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, s, conf_tick(f.c, 1000), NULL));
	at = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, s, 1, at, NULL));
	w = get(&f, s);
	assert_int_equal(at, w.lease.stop_requested_at);
	work_item_clear(&w);
}

/* A caller holding a session token acts only while it is the item's current one. */
static void test_session_token_checked(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "tok");
	char id[ID_MAX], tok[SECRET_HASH_HEX + 1], stranger[SECRET_HASH_HEX + 1];
	delivered(&f, id, tok);
	conf_token(stranger);
	struct work_item w;
	struct work_event_out res;
	DIRTY(w);
	DIRTY(res);
	assert_int_equal(ERR_UNAUTHENTICATED,
			 w_event(f.c, &f.t, f.env, id, WORK_EV_ACK, NULL, stranger, conf_tick(f.c, 1), &w, &res));
	assert_true(all_zero(&w, sizeof(w)));
	assert_true(all_zero(&res, sizeof(res)));
	w = get(&f, id);
	assert_int_equal(WORK_QUEUED, w.lease.state);
	work_item_clear(&w);
	/* Another item's token does not reach this one. */
	char other[ID_MAX], other_tok[SECRET_HASH_HEX + 1];
	delivered(&f, other, other_tok);
	assert_int_equal(ERR_UNAUTHENTICATED,
			 w_event(f.c, &f.t, f.env, id, WORK_EV_ACK, NULL, other_tok, conf_tick(f.c, 1), &w, &res));
	assert_int_equal(ERR_OK, w_event(f.c, &f.t, f.env, id, WORK_EV_ACK, NULL, tok, conf_tick(f.c, 1), &w, &res));
	assert_int_equal(WORK_STARTING, w.lease.state);
	work_item_clear(&w);
}

static void test_get_and_scope(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "get");
	char id[ID_MAX], env2[ID_MAX];
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), id);
	conf_env_id(f.c, &f.t, conf_tick(f.c, 1000), env2);
	/* A work id under another environment is not found, by every verb; nothing changes. */
	struct work_item w;
	struct work_event_out res;
	struct errbuf eb;
	DIRTY(w);
	assert_int_equal(ERR_NOT_FOUND, w_get(f.c, &f.t, env2, id, &w));
	assert_true(all_zero(&w, sizeof(w)));
	DIRTY(w);
	assert_int_equal(ERR_NOT_FOUND, w_get(f.c, &f.t, f.env, "work_000000000000000000000000", &w));
	assert_true(all_zero(&w, sizeof(w)));
	const enum work_event evs[] = {WORK_EV_ACK, WORK_EV_HEARTBEAT, WORK_EV_STOP};
	for (size_t i = 0; i < 3; i++) {
		DIRTY(w);
		DIRTY(res);
		assert_int_equal(ERR_NOT_FOUND, w_event(f.c, &f.t, env2, id, evs[i], NULL, NULL, conf_tick(f.c, 1), &w, &res));
		assert_true(all_zero(&w, sizeof(w)));
		assert_true(all_zero(&res, sizeof(res)));
	}
	json_t *patch = json_pack("{s:s}", "x", "y");
	DIRTY(w);
	assert_int_equal(ERR_NOT_FOUND, w_metadata(f.c, &f.t, env2, id, patch, &w, &eb));
	assert_true(all_zero(&w, sizeof(w)));
	json_decref(patch);
	struct work_page p;
	assert_int_equal(ERR_OK, w_list(f.c, &f.t, env2, NULL, 10, &p));
	assert_int_equal(0, p.count);
	work_page_clear(&p);
	assert_int_equal(ERR_NOT_FOUND, w_claim(f.c, &f.t, env2, NULL, 0, conf_tick(f.c, 1), &w, NULL));
	w = get(&f, id);
	assert_int_equal(WORK_QUEUED, w.lease.state);
	assert_int_equal(0, w.lease.delivered_at);
	assert_int_equal(0, json_object_size(w.metadata));
	work_item_clear(&w);
}

/* T20: metadata in any state; null deletes; a bad patch changes nothing. */
static void test_metadata(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "meta");
	char id[ID_MAX], tok[SECRET_HASH_HEX + 1];
	delivered(&f, id, tok);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, id, conf_tick(f.c, 1000), NULL));
	struct work_item w;
	struct errbuf eb;
	json_t *patch = json_pack("{s:s,s:s}", "a", "1", "b", "2");
	assert_int_equal(ERR_OK, w_metadata(f.c, &f.t, f.env, id, patch, &w, &eb));
	json_decref(patch);
	assert_string_equal("1", json_string_value(json_object_get(w.metadata, "a")));
	assert_int_equal(WORK_STARTING, w.lease.state);
	work_item_clear(&w);
	patch = json_pack("{s:n,s:s}", "a", "b", "3");
	assert_int_equal(ERR_OK, w_metadata(f.c, &f.t, f.env, id, patch, &w, &eb));
	json_decref(patch);
	work_item_clear(&w);
	w = get(&f, id);
	assert_null(json_object_get(w.metadata, "a"));
	assert_string_equal("3", json_string_value(json_object_get(w.metadata, "b")));
	assert_int_equal(1, json_object_size(w.metadata));
	work_item_clear(&w);

	patch = json_pack("{s:i}", "b", 5);
	DIRTY(w);
	eb.message[0] = '\0';
	assert_int_not_equal(ERR_OK, w_metadata(f.c, &f.t, f.env, id, patch, &w, &eb));
	json_decref(patch);
	assert_true(all_zero(&w, sizeof(w)));
	assert_non_null(strstr(eb.message, "b"));
	w = get(&f, id);
	assert_string_equal("3", json_string_value(json_object_get(w.metadata, "b")));
	work_item_clear(&w);

	/* Stopped items take metadata too. */
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, id, 1, conf_tick(f.c, 1000), NULL));
	patch = json_pack("{s:s}", "after", "stop");
	assert_int_equal(ERR_OK, w_metadata(f.c, &f.t, f.env, id, patch, &w, &eb));
	json_decref(patch);
	assert_int_equal(WORK_STOPPED, w.lease.state);
	assert_string_equal("stop", json_string_value(json_object_get(w.metadata, "after")));
	work_item_clear(&w);
}

/* Every work and key verb checks the environment in its own transaction: another org,
 * workspace or account (of an account-scoped environment) gets ERR_NOT_FOUND and an empty
 * output, a cloud environment ERR_INVALID, an archived one takes no new work. */
static void test_environment_checked(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "envcheck");
	struct environment acct_env, cloud;
	conf_env(f.c, &f.t, 1, 1, NULL, conf_tick(f.c, 1000), &acct_env);
	conf_env(f.c, &f.t, 0, 0, NULL, conf_tick(f.c, 1000), &cloud);
	char id[ID_MAX], key_hash[SECRET_HASH_HEX + 1];
	w_enqueue_ok(f.c, &f.t, acct_env.id, conf_tick(f.c, 1000), id);
	conf_hash("envd_env_checked", key_hash);
	struct env_key k;
	assert_int_equal(ERR_OK, k_create(f.c, &f.t, acct_env.id, "k", key_hash, conf_tick(f.c, 1000), &k));

	struct tenant strangers[3];
	tenant_set(&strangers[0], "org-elsewhere", f.t.account, f.t.workspace);
	tenant_set(&strangers[1], f.t.org, f.t.account, "ws-elsewhere");
	tenant_set(&strangers[2], f.t.org, "acct-elsewhere", f.t.workspace);
	for (size_t i = 0; i < 3; i++) {
		const struct tenant *x = &strangers[i];
		const char *env = acct_env.id;
		struct work_item w;
		struct work_event_out res;
		struct work_stats st;
		struct work_page wp;
		struct env_key_page kp;
		struct env_key nk;
		struct errbuf eb;
		int created = 7;
		int64_t at = 7;
		DIRTY(w);
		assert_int_equal(ERR_NOT_FOUND, w_enqueue(f.c, x, env, "healthcheck", "x", NULL, conf_tick(f.c, 1), &w, &created));
		assert_true(all_zero(&w, sizeof(w)));
		assert_int_equal(0, created);
		DIRTY(w);
		assert_int_equal(ERR_NOT_FOUND, w_claim(f.c, x, env, NULL, 0, conf_tick(f.c, 1), &w, NULL));
		assert_true(all_zero(&w, sizeof(w)));
		DIRTY(w);
		assert_int_equal(ERR_NOT_FOUND, w_get(f.c, x, env, id, &w));
		assert_true(all_zero(&w, sizeof(w)));
		DIRTY(w);
		DIRTY(res);
		assert_int_equal(ERR_NOT_FOUND, w_event(f.c, x, env, id, WORK_EV_ACK, NULL, NULL, conf_tick(f.c, 1), &w, &res));
		assert_true(all_zero(&w, sizeof(w)));
		assert_true(all_zero(&res, sizeof(res)));
		json_t *patch = json_pack("{s:s}", "x", "y");
		DIRTY(w);
		assert_int_equal(ERR_NOT_FOUND, w_metadata(f.c, x, env, id, patch, &w, &eb));
		assert_true(all_zero(&w, sizeof(w)));
		json_decref(patch);
		DIRTY(wp);
		assert_int_equal(ERR_NOT_FOUND, w_list(f.c, x, env, NULL, 10, &wp));
		assert_true(all_zero(&wp, sizeof(wp)));
		DIRTY(st);
		assert_int_equal(ERR_NOT_FOUND, w_stats(f.c, x, env, &st));
		assert_true(all_zero(&st, sizeof(st)));
		assert_int_equal(ERR_NOT_FOUND, w_next_reclaim(f.c, x, env, US(5), &at));
		assert_int_equal(0, at);
		DIRTY(nk);
		assert_int_equal(ERR_NOT_FOUND, k_create(f.c, x, env, "stolen", "0000", conf_tick(f.c, 1), &nk));
		assert_true(all_zero(&nk, sizeof(nk)));
		DIRTY(kp);
		assert_int_equal(ERR_NOT_FOUND, k_list(f.c, x, env, NULL, 10, &kp));
		assert_true(all_zero(&kp, sizeof(kp)));
		assert_int_equal(ERR_NOT_FOUND, k_revoke(f.c, x, env, k.id));
	}
	/* Nothing of the owner's moved. */
	struct work_item w;
	assert_int_equal(ERR_OK, w_get(f.c, &f.t, acct_env.id, id, &w));
	assert_int_equal(WORK_QUEUED, w.lease.state);
	assert_int_equal(0, w.lease.delivered_at);
	assert_int_equal(0, json_object_size(w.metadata));
	work_item_clear(&w);
	struct credential cr;
	assert_int_equal(ERR_OK, f.c->s->ops->credential_find(f.c->s, CRED_ENV_KEY, key_hash, f.c->now, &cr));

	/* Work exists only in self_hosted environments. */
	int created;
	assert_int_equal(ERR_INVALID, w_enqueue(f.c, &f.t, cloud.id, "healthcheck", "x", NULL, conf_tick(f.c, 1), &w, &created));
	assert_int_equal(ERR_INVALID, w_claim(f.c, &f.t, cloud.id, NULL, 0, conf_tick(f.c, 1), &w, NULL));
	/* An archived environment takes no new work; what it holds can still finish. */
	struct environment out;
	assert_int_equal(ERR_OK, f.c->s->ops->env_archive(f.c->s, &f.t, acct_env.id, conf_tick(f.c, 1000), &out));
	environment_clear(&out);
	assert_int_equal(ERR_ENV_ARCHIVED,
			 w_enqueue(f.c, &f.t, acct_env.id, "healthcheck", "late", NULL, conf_tick(f.c, 1), &w, &created));
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, acct_env.id, id, 0, conf_tick(f.c, 1), NULL));
	environment_clear(&acct_env);
	environment_clear(&cloud);
}

int conf_group_work(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_enqueue),	 CONF_TEST(test_lifecycle),	     CONF_TEST(test_ack_retry),
		CONF_TEST(test_heartbeat_refusals), CONF_TEST(test_ttl_clamp),	     CONF_TEST(test_stop_paths),
		CONF_TEST(test_session_token_checked), CONF_TEST(test_get_and_scope), CONF_TEST(test_metadata),
		CONF_TEST(test_environment_checked),
	};
	return cmocka_run_group_tests_name("store conformance: work state machine", tests, NULL, NULL);
}
