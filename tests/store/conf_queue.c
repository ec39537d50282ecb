/* conf_queue.c - the queue: claim order (reclaimable first, fresh ones FIFO), reclaim
 * (T3), the environment key checked inside the claim, undelivery, stats, list pages,
 * next_reclaim, and lease expiry (T18/T19) driven by the fake clock alone. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECLAIM US(5)
#define EXPIRE_MAX 16


/* Claim and return the item's id ("" when nothing was claimable). */
static void claim_id(struct conf_fx *f, int64_t reclaim, int64_t now, char id[ID_MAX], char *tok)
{
	struct work_item w;
	enum err rc = w_claim(f->c, &f->t, f->env, NULL, reclaim, now, &w, tok);
	if (rc == ERR_NOT_FOUND) {
		assert_true(all_zero(&w, sizeof(w)));
		id[0] = '\0';
		return;
	}
	assert_int_equal(ERR_OK, rc);
	snprintf(id, ID_MAX, "%s", w.id);
	work_item_clear(&w);
}

static struct work_item get(struct conf_fx *f, const char *id)
{
	struct work_item w;
	assert_int_equal(ERR_OK, w_get(f->c, &f->t, f->env, id, &w));
	return w;
}

static void expire(struct conf *c, int64_t now, size_t max, size_t want_expired, size_t *n_envs,
		   char (*envs)[ID_MAX])
{
	size_t n_expired = 99;
	*n_envs = 99;
	assert_int_equal(ERR_OK, l_expire(c, now, max, envs, n_envs, &n_expired));
	assert_int_equal(want_expired, n_expired);
}

static void test_claim_order(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "order");
	char ids[4][ID_MAX], got[ID_MAX];
	for (int i = 0; i < 4; i++)
		w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), ids[i]);
	/* Fresh items: first in, first out. */
	int64_t d0 = conf_tick(f.c, 1000);
	claim_id(&f, RECLAIM, d0, got, NULL);
	assert_string_equal(ids[0], got);
	claim_id(&f, RECLAIM, conf_tick(f.c, 1000), got, NULL);
	assert_string_equal(ids[1], got);
	/* Once ids[0]'s delivery is old enough, it comes before the fresh ones (T3). */
	claim_id(&f, RECLAIM, d0 + RECLAIM - 1, got, NULL);
	assert_string_equal(ids[2], got);
	claim_id(&f, RECLAIM, d0 + RECLAIM, got, NULL);
	assert_string_equal(ids[0], got);
	struct work_item w = get(&f, ids[0]);
	assert_int_equal(2, w.lease.delivery_count);
	assert_int_equal(d0 + RECLAIM, w.lease.delivered_at);
	work_item_clear(&w);
	/* Oldest delivery first among reclaimable ones; reclaim_older_than 0 takes any. */
	claim_id(&f, 0, d0 + RECLAIM + 1, got, NULL);
	assert_string_equal(ids[1], got);
	claim_id(&f, RECLAIM, d0 + RECLAIM + 2, got, NULL);
	assert_string_equal(ids[3], got);
	claim_id(&f, US(3600), d0 + RECLAIM + 3, got, NULL);
	assert_string_equal("", got);
}

static void test_claim_key_checked(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "ckey");
	char id[ID_MAX], env2[ID_MAX], h[SECRET_HASH_HEX + 1], h2[SECRET_HASH_HEX + 1];
	conf_env_id(f.c, &f.t, conf_tick(f.c, 1000), env2);
	conf_hash("envd_env_claim", h);
	conf_hash("envd_env_claim_other", h2);
	struct env_key k, k2;
	assert_int_equal(ERR_OK, k_create(f.c, &f.t, f.env, "k", h, conf_tick(f.c, 1000), &k));
	assert_int_equal(ERR_OK, k_create(f.c, &f.t, env2, "k2", h2, conf_tick(f.c, 1000), &k2));
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), id);
	struct work_item w;
	/* Another environment's key claims nothing here. */
	DIRTY(w);
	assert_int_equal(ERR_UNAUTHENTICATED, w_claim(f.c, &f.t, f.env, h2, 0, conf_tick(f.c, 1000), &w, NULL));
	assert_true(all_zero(&w, sizeof(w)));
	/* A revoked key: refused inside the claim, the item untouched. */
	assert_int_equal(ERR_OK, k_revoke(f.c, &f.t, f.env, k.id));
	DIRTY(w);
	assert_int_equal(ERR_UNAUTHENTICATED, w_claim(f.c, &f.t, f.env, h, 0, conf_tick(f.c, 1000), &w, NULL));
	assert_true(all_zero(&w, sizeof(w)));
	w = get(&f, id);
	assert_int_equal(0, w.lease.delivered_at);
	work_item_clear(&w);
	char h3[SECRET_HASH_HEX + 1];
	conf_hash("envd_env_claim_new", h3);
	assert_int_equal(ERR_OK, k_create(f.c, &f.t, f.env, "k3", h3, conf_tick(f.c, 1000), &k));
	assert_int_equal(ERR_OK, w_claim(f.c, &f.t, f.env, h3, 0, conf_tick(f.c, 1000), &w, NULL));
	assert_string_equal(id, w.id);
	work_item_clear(&w);
}

static void test_undeliver(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "undo");
	char id[ID_MAX], next[ID_MAX], got[ID_MAX], tok[SECRET_HASH_HEX + 1], tok2[SECRET_HASH_HEX + 1];
	char wrong[SECRET_HASH_HEX + 1];
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), id);
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), next);
	claim_id(&f, RECLAIM, conf_tick(f.c, 1000), got, tok);
	assert_string_equal(id, got);
	/* The token hash must match. */
	conf_token(wrong);
	assert_int_equal(ERR_NOT_FOUND, w_undeliver(f.c, &f.t, f.env, id, wrong));
	assert_int_equal(ERR_NOT_FOUND, w_undeliver(f.c, &f.t, f.env, next, tok));
	assert_int_equal(ERR_OK, w_undeliver(f.c, &f.t, f.env, id, tok));
	/* Undone: never delivered as far as the queue knows; the token is dead. */
	struct work_item w = get(&f, id);
	assert_int_equal(WORK_QUEUED, w.lease.state);
	assert_int_equal(0, w.lease.delivered_at);
	work_item_clear(&w);
	struct credential cr;
	assert_int_equal(ERR_UNAUTHENTICATED, f.c->s->ops->credential_find(f.c->s, CRED_SESSION, tok, f.c->now, &cr));
	struct work_stats st;
	assert_int_equal(ERR_OK, w_stats(f.c, &f.t, f.env, &st));
	assert_int_equal(2, st.depth);
	assert_int_equal(0, st.pending);
	/* Once only. */
	assert_int_equal(ERR_NOT_FOUND, w_undeliver(f.c, &f.t, f.env, id, tok));
	/* It is the next one out, fresh, at once. */
	claim_id(&f, US(3600), conf_tick(f.c, 1), got, tok);
	assert_string_equal(id, got);
	/* A replaced delivery cannot be undone: the new holder keeps it. */
	claim_id(&f, RECLAIM, conf_tick(f.c, RECLAIM), got, tok2);
	assert_string_equal(id, got);
	assert_int_equal(ERR_NOT_FOUND, w_undeliver(f.c, &f.t, f.env, id, tok));
	w = get(&f, id);
	assert_int_equal(f.c->now, w.lease.delivered_at);
	work_item_clear(&w);
	/* Nor an acknowledged one. */
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, id, conf_tick(f.c, 1), NULL));
	assert_int_equal(ERR_NOT_FOUND, w_undeliver(f.c, &f.t, f.env, id, tok2));
	w = get(&f, id);
	assert_int_equal(WORK_STARTING, w.lease.state);
	work_item_clear(&w);
	assert_int_equal(ERR_OK, f.c->s->ops->credential_find(f.c->s, CRED_SESSION, tok2, f.c->now, &cr));
}

static void test_stats_and_reclaim_at(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "stats");
	struct work_stats st;
	int64_t at = -1;
	DIRTY(st);
	assert_int_equal(ERR_OK, w_stats(f.c, &f.t, f.env, &st));
	assert_true(all_zero(&st, sizeof(st)));
	assert_int_equal(ERR_OK, w_next_reclaim(f.c, &f.t, f.env, RECLAIM, &at));
	assert_int_equal(0, at);
	char ids[4][ID_MAX], got[ID_MAX];
	int64_t first = conf_tick(f.c, 1000);
	w_enqueue_ok(f.c, &f.t, f.env, first, ids[0]);
	for (int i = 1; i < 4; i++)
		w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), ids[i]);
	int64_t d0 = conf_tick(f.c, 1000);
	claim_id(&f, RECLAIM, d0, got, NULL);
	claim_id(&f, RECLAIM, conf_tick(f.c, 1000), got, NULL);
	/* depth = queued and never delivered; pending = delivered, not acked; oldest over both. */
	assert_int_equal(ERR_OK, w_stats(f.c, &f.t, f.env, &st));
	assert_int_equal(2, st.depth);
	assert_int_equal(2, st.pending);
	assert_int_equal(first, st.oldest_queued_at);
	assert_int_equal(ERR_OK, w_next_reclaim(f.c, &f.t, f.env, RECLAIM, &at));
	assert_int_equal(d0 + RECLAIM, at);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, ids[0], conf_tick(f.c, 1000), NULL));
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, ids[2], 0, conf_tick(f.c, 1000), NULL));
	assert_int_equal(ERR_OK, w_stats(f.c, &f.t, f.env, &st));
	assert_int_equal(1, st.depth);
	assert_int_equal(1, st.pending);
	assert_int_equal(first + 1000, st.oldest_queued_at);
	assert_int_equal(ERR_OK, w_next_reclaim(f.c, &f.t, f.env, RECLAIM, &at));
	assert_int_equal(d0 + 1000 + RECLAIM, at);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, ids[1], conf_tick(f.c, 1000), NULL));
	assert_int_equal(ERR_OK, w_next_reclaim(f.c, &f.t, f.env, RECLAIM, &at));
	assert_int_equal(0, at);
	/* Another environment's queue is its own. */
	char env2[ID_MAX];
	conf_env_id(f.c, &f.t, conf_tick(f.c, 1000), env2);
	assert_int_equal(ERR_OK, w_stats(f.c, &f.t, env2, &st));
	assert_true(all_zero(&st, sizeof(st)));
}

static void test_list_pages(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "wlist");
	char ids[7][ID_MAX];
	for (int i = 0; i < 7; i++)
		w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), ids[i]);
	/* Every state is listed. */
	assert_int_equal(WORK_STOPPED, w_stop(f.c, &f.t, f.env, ids[3], 0, conf_tick(f.c, 1000), NULL));
	for (size_t limit = 1; limit <= 8; limit++) {
		struct cursor after, *cur = NULL;
		size_t seen = 0;
		for (int pages = 0; pages < 20; pages++) {
			struct work_page p;
			assert_int_equal(ERR_OK, w_list(f.c, &f.t, f.env, cur, limit, &p));
			assert_true(p.count <= limit);
			for (size_t i = 0; i < p.count; i++) {
				/* Newest first, each once. */
				assert_true(seen < 7);
				assert_string_equal(ids[6 - seen], p.items[i].id);
				seen++;
			}
			int more = p.more;
			assert_int_equal(more, seen < 7);
			if (p.count) {
				after.created_at = p.items[p.count - 1].created_at;
				snprintf(after.id, sizeof(after.id), "%s", p.items[p.count - 1].id);
				cur = &after;
			}
			work_page_clear(&p);
			if (!more)
				break;
		}
		assert_int_equal(7, seen);
	}
}

/* T18: the lease runs out at exactly lease_expires_at; the item goes back to the head of
 * the queue, its ack, start and heartbeat cleared, and is claimable at once. */
static void test_lease_expiry_requeues_at_head(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "exp");
	char a[ID_MAX], b[ID_MAX], late[ID_MAX], got[ID_MAX], tok[SECRET_HASH_HEX + 1];
	/* b is older than a and still in the queue, never delivered, when a's lease runs out. */
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), b);
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), a);
	claim_id(&f, RECLAIM, conf_tick(f.c, 1000), got, tok);
	assert_string_equal(b, got);
	claim_id(&f, RECLAIM, conf_tick(f.c, 1000), got, NULL);
	assert_string_equal(a, got);
	assert_int_equal(ERR_OK, w_undeliver(f.c, &f.t, f.env, b, tok));
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, a, conf_tick(f.c, 1000), NULL));
	int64_t beat = conf_tick(f.c, 1000);
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, a, WORK_EXPECT_NONE, 0, 20, beat, NULL, NULL));
	int64_t expiry = beat + US(20);
	int64_t next = -1;
	assert_int_equal(ERR_OK, f.c->s->ops->next_lease_expiry(f.c->s, &next));
	assert_int_equal(expiry, next);
	/* An item enqueued after a's delivery still comes after a once a is back. */
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), late);

	char envs[EXPIRE_MAX][ID_MAX];
	size_t n_envs;
	expire(f.c, expiry - 1, EXPIRE_MAX, 0, &n_envs, envs);
	assert_int_equal(0, n_envs);
	struct work_item w = get(&f, a);
	assert_int_equal(WORK_ACTIVE, w.lease.state);
	work_item_clear(&w);
	expire(f.c, expiry, EXPIRE_MAX, 1, &n_envs, envs);
	assert_int_equal(1, n_envs);
	assert_string_equal(f.env, envs[0]);
	w = get(&f, a);
	assert_int_equal(WORK_QUEUED, w.lease.state);
	assert_int_equal(0, w.lease.delivered_at);
	assert_int_equal(0, w.lease.acknowledged_at);
	assert_int_equal(0, w.lease.started_at);
	assert_int_equal(0, w.lease.latest_heartbeat_at);
	assert_int_equal(0, w.lease.lease_expires_at);
	assert_int_equal(1, w.lease.delivery_count);
	work_item_clear(&w);
	assert_int_equal(ERR_OK, f.c->s->ops->next_lease_expiry(f.c->s, &next));
	assert_int_equal(0, next);
	int64_t t = expiry + US(1000);
	expire(f.c, t, EXPIRE_MAX, 0, &n_envs, envs);
	/* The old holder's heartbeat: 412, so it lets go; depth counts it again. */
	enum err rc;
	assert_int_equal(-1, w_beat(f.c, &f.t, f.env, a, WORK_EXPECT_TIMESTAMP, beat, 0, ++t, NULL, &rc));
	assert_int_equal(ERR_HEARTBEAT_PRECONDITION, rc);
	struct work_stats st;
	assert_int_equal(ERR_OK, w_stats(f.c, &f.t, f.env, &st));
	assert_int_equal(3, st.depth);
	assert_int_equal(0, st.pending);
	/* Head of the queue: before b (older, never delivered) and late (younger). */
	claim_id(&f, RECLAIM, ++t, got, NULL);
	assert_string_equal(a, got);
	claim_id(&f, RECLAIM, ++t, got, NULL);
	assert_string_equal(b, got);
	claim_id(&f, RECLAIM, ++t, got, NULL);
	assert_string_equal(late, got);
	/* The new holder's NO_HEARTBEAT succeeds (after its ack). */
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, a, ++t, NULL));
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, a, WORK_EXPECT_NONE, 0, 0, ++t, NULL, NULL));
}

/* T19: a stopping item whose lease runs out is stopped (and goes to no queue). */
static void test_lease_expiry_stopping(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "exp19");
	char id[ID_MAX], got[ID_MAX];
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), id);
	claim_id(&f, RECLAIM, conf_tick(f.c, 1000), got, NULL);
	int64_t acked = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, id, acked, NULL));
	int64_t asked = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STOPPING, w_stop(f.c, &f.t, f.env, id, 0, asked, NULL));
	char envs[EXPIRE_MAX][ID_MAX];
	size_t n_envs;
	int64_t end = acked + US(WORK_TTL_DEFAULT_S);
	expire(f.c, end, EXPIRE_MAX, 1, &n_envs, envs);
	assert_int_equal(0, n_envs);
	struct work_item w = get(&f, id);
	assert_int_equal(WORK_STOPPED, w.lease.state);
	assert_int_equal(end, w.lease.stopped_at);
	assert_int_equal(asked, w.lease.stop_requested_at);
	assert_int_equal(0, w.lease.lease_expires_at);
	work_item_clear(&w);
	claim_id(&f, 0, end + 1, got, NULL);
	assert_string_equal("", got);
}

/* The sweeper's batches: at most `max` a call, earliest first; next_lease_expiry tracks
 * the earliest one left across environments. */
static void test_lease_expiry_batches(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "batch");
	char env2[ID_MAX];
	conf_env_id(f.c, &f.t, conf_tick(f.c, 1000), env2);
	char ids[3][ID_MAX], got[ID_MAX];
	int64_t acked[3];
	for (int i = 0; i < 3; i++) {
		const char *env = i == 1 ? env2 : f.env;
		w_enqueue_ok(f.c, &f.t, env, conf_tick(f.c, 1000), ids[i]);
		struct work_item w;
		assert_int_equal(ERR_OK, w_claim(f.c, &f.t, env, NULL, RECLAIM, conf_tick(f.c, 1000), &w, NULL));
		assert_string_equal(ids[i], w.id);
		work_item_clear(&w);
		acked[i] = conf_tick(f.c, 1000);
		assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, env, ids[i], acked[i], NULL));
	}
	int64_t next;
	assert_int_equal(ERR_OK, f.c->s->ops->next_lease_expiry(f.c->s, &next));
	assert_int_equal(acked[0] + US(WORK_TTL_DEFAULT_S), next);
	char envs[EXPIRE_MAX][ID_MAX];
	size_t n_envs;
	int64_t all = acked[2] + US(WORK_TTL_DEFAULT_S);
	expire(f.c, all, 2, 2, &n_envs, envs);
	assert_int_equal(2, n_envs);
	assert_string_not_equal(envs[0], envs[1]);
	assert_int_equal(ERR_OK, f.c->s->ops->next_lease_expiry(f.c->s, &next));
	assert_int_equal(acked[2] + US(WORK_TTL_DEFAULT_S), next);
	expire(f.c, all, 2, 1, &n_envs, envs);
	assert_int_equal(1, n_envs);
	assert_string_equal(f.env, envs[0]);
	assert_int_equal(ERR_OK, f.c->s->ops->next_lease_expiry(f.c->s, &next));
	assert_int_equal(0, next);
	claim_id(&f, RECLAIM, all + 1, got, NULL);
	assert_string_equal(ids[0], got);
}

/* An event on an item whose lease ran out but was not swept sees it as the sweeper would
 * have left it (T18 first), and says it went back to the queue. */
static void test_event_after_lease_ran_out(void **state)
{
	struct conf_fx f;
	conf_fx_init(&f, state, "late");
	char id[ID_MAX], got[ID_MAX];
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), id);
	claim_id(&f, RECLAIM, conf_tick(f.c, 1000), got, NULL);
	int64_t acked = conf_tick(f.c, 1000);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, id, acked, NULL));
	int64_t beat = conf_tick(f.c, 1000);
	assert_int_equal(WORK_ACTIVE, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_NONE, 0, 10, beat, NULL, NULL));
	struct work_event_out res;
	enum err rc;
	assert_int_equal(-1, w_beat(f.c, &f.t, f.env, id, WORK_EXPECT_TIMESTAMP, beat, 0, beat + US(10), &res, &rc));
	assert_int_equal(ERR_HEARTBEAT_PRECONDITION, rc);
	assert_int_equal(1, res.requeued);
	assert_int_equal(WORK_QUEUED, res.beat.state);
	/* The requeue was kept although the event was refused. */
	struct work_item w = get(&f, id);
	assert_int_equal(WORK_QUEUED, w.lease.state);
	assert_int_equal(0, w.lease.latest_heartbeat_at);
	work_item_clear(&w);
	int64_t next;
	assert_int_equal(ERR_OK, f.c->s->ops->next_lease_expiry(f.c->s, &next));
	assert_int_equal(0, next);
	claim_id(&f, RECLAIM, beat + US(11), got, NULL);
	assert_string_equal(id, got);
}

int conf_group_queue(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_claim_order),
		CONF_TEST(test_claim_key_checked),
		CONF_TEST(test_undeliver),
		CONF_TEST(test_stats_and_reclaim_at),
		CONF_TEST(test_list_pages),
		CONF_TEST(test_lease_expiry_requeues_at_head),
		CONF_TEST(test_lease_expiry_stopping),
		CONF_TEST(test_lease_expiry_batches),
		CONF_TEST(test_event_after_lease_ran_out),
	};
	return cmocka_run_group_tests_name("store conformance: queue and leases", tests, NULL, NULL);
}
