/* conformance_verbs.c - the one place the suite calls the work and environment-key verbs,
 * env_delete and leases_expire: their signatures are the ones expected to change (the
 * caller's tenant checked inside the verb's transaction, what to wake reported), and
 * only this file follows them. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


enum err w_enqueue(struct conf *c, const struct tenant *t, const char *env, const char *type, const char *data_id,
		   const json_t *metadata, int64_t now, struct work_item *out, int *created)
{
	json_t *empty = metadata ? NULL : json_object();
	struct work_wake wake;
	struct errbuf eb;
	enum err rc = c->s->ops->work_enqueue(c->s, t, env, type, data_id, metadata ? metadata : empty, now, out, created,
					      &wake, &eb);
	json_decref(empty);
	return rc;
}

void w_enqueue_ok(struct conf *c, const struct tenant *t, const char *env, int64_t now, char id[ID_MAX])
{
	char data_id[32];
	snprintf(data_id, sizeof(data_id), "hc-%u", ++c->seq);
	struct work_item w;
	int created = 0;
	assert_int_equal(ERR_OK, w_enqueue(c, t, env, "healthcheck", data_id, NULL, now, &w, &created));
	assert_int_equal(1, created);
	snprintf(id, ID_MAX, "%s", w.id);
	work_item_clear(&w);
}

enum err w_claim(struct conf *c, const struct tenant *t, const char *env, const char *key_hash,
		 int64_t reclaim_us, int64_t now, struct work_item *out, char *token_hash)
{
	struct work_claim claim;
	memset(&claim, 0, sizeof(claim));
	claim.reclaim_older_than_us = reclaim_us;
	snprintf(claim.key_hash, sizeof(claim.key_hash), "%s", key_hash ? key_hash : "");
	conf_token(claim.token_hash);
	if (token_hash)
		memcpy(token_hash, claim.token_hash, SECRET_HASH_HEX + 1);
	struct errbuf eb;
	return c->s->ops->work_claim(c->s, t, env, &claim, now, out, &eb);
}

enum err w_undeliver(struct conf *c, const struct tenant *t, const char *env, const char *work_id,
		     const char *token_hash)
{
	(void)t;
	(void)env;
	struct work_wake wake;
	return c->s->ops->work_undeliver(c->s, work_id, token_hash, c->now, &wake);
}

enum err w_get(struct conf *c, const struct tenant *t, const char *env, const char *work_id, struct work_item *out)
{
	struct errbuf eb;
	return c->s->ops->work_get(c->s, t, env, work_id, out, &eb);
}

enum err w_event(struct conf *c, const struct tenant *t, const char *env, const char *work_id, enum work_event ev,
		 const struct work_input *in, const char *session_hash, int64_t now, struct work_item *out,
		 struct work_event_out *res)
{
	struct errbuf eb;
	return c->s->ops->work_event(c->s, t, env, work_id, ev, in, session_hash, now, out, res, &eb);
}

enum err w_metadata(struct conf *c, const struct tenant *t, const char *env, const char *work_id, const json_t *patch,
		    struct work_item *out, struct errbuf *eb)
{
	return c->s->ops->work_update_metadata(c->s, t, env, work_id, patch, out, eb);
}

enum err w_list(struct conf *c, const struct tenant *t, const char *env, const struct cursor *after, size_t limit,
		struct work_page *out)
{
	struct errbuf eb;
	return c->s->ops->work_list(c->s, t, env, after, limit, out, &eb);
}

enum err w_stats(struct conf *c, const struct tenant *t, const char *env, struct work_stats *out)
{
	struct errbuf eb;
	return c->s->ops->work_stats(c->s, t, env, out, &eb);
}

enum err w_next_reclaim(struct conf *c, const struct tenant *t, const char *env, int64_t reclaim_us, int64_t *at)
{
	struct errbuf eb;
	return c->s->ops->work_next_reclaim(c->s, t, env, reclaim_us, at, &eb);
}

static int event_state(struct conf *c, const struct tenant *t, const char *env, const char *id, enum work_event ev,
		       const struct work_input *in, int64_t now, struct work_event_out *res_out, enum err *rc_out)
{
	struct work_item w;
	struct work_event_out res;
	enum err rc = w_event(c, t, env, id, ev, in, NULL, now, &w, &res);
	if (rc_out)
		*rc_out = rc;
	if (res_out)
		*res_out = res;
	int state = rc ? -1 : (int)w.lease.state;
	work_item_clear(&w);
	return state;
}

int w_ack(struct conf *c, const struct tenant *t, const char *env, const char *id, int64_t now, enum err *rc)
{
	return event_state(c, t, env, id, WORK_EV_ACK, NULL, now, NULL, rc);
}

int w_beat(struct conf *c, const struct tenant *t, const char *env, const char *id, enum work_expect expect,
	   int64_t expected_us, int32_t ttl, int64_t now, struct work_event_out *res, enum err *rc)
{
	struct work_input in = {.expect = expect, .expected_us = expected_us, .desired_ttl_seconds = ttl};
	return event_state(c, t, env, id, WORK_EV_HEARTBEAT, &in, now, res, rc);
}

int w_stop(struct conf *c, const struct tenant *t, const char *env, const char *id, int force, int64_t now,
	   enum err *rc)
{
	struct work_input in = {.force = force};
	return event_state(c, t, env, id, WORK_EV_STOP, &in, now, NULL, rc);
}

enum err k_create(struct conf *c, const struct tenant *t, const char *env, const char *name, const char *hash,
		  int64_t now, struct env_key *out)
{
	struct errbuf eb;
	return c->s->ops->env_key_create(c->s, t, env, name, hash, now, out, &eb);
}

enum err k_list(struct conf *c, const struct tenant *t, const char *env, const struct cursor *after, size_t limit,
		struct env_key_page *out)
{
	struct errbuf eb;
	return c->s->ops->env_key_list(c->s, t, env, after, limit, out, &eb);
}

enum err k_revoke(struct conf *c, const struct tenant *t, const char *env, const char *key_id)
{
	struct work_wake wake;
	struct errbuf eb;
	return c->s->ops->env_key_revoke(c->s, t, env, key_id, &wake, &eb);
}

enum err l_expire(struct conf *c, int64_t now, size_t max, char (*envs)[ID_MAX], size_t *n_envs, size_t *n_expired)
{
	struct work_wake *wakes = calloc(max ? max : 1, sizeof(*wakes));
	assert_non_null(wakes);
	enum err rc = c->s->ops->leases_expire(c->s, now, max, wakes, n_envs, n_expired);
	for (size_t i = 0; i < *n_envs; i++)
		snprintf(envs[i], ID_MAX, "%s", wakes[i].environment_id);
	free(wakes);
	return rc;
}

enum err e_delete(struct conf *c, const struct tenant *t, const char *env)
{
	struct work_wake wake;
	return c->s->ops->env_delete(c->s, t, env, &wake);
}
