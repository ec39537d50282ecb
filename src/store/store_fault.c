/* store_fault.c - a fault seam: a store that forwards to another one and makes every
 * Nth verb fail with ERR_UNAVAILABLE before it reaches the real store, its outputs zeroed
 * as every store verb leaves them on error. Tests run the server on it
 * (`environd serve --test-store-fault-every N`) to prove that every error path answers
 * with a clean envelope, keeps serving and leaks nothing. Only that flag enables it. */
#include "store/store.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct fault_store {
	struct store base;
	struct store *inner;
	unsigned long every;
	atomic_ulong calls;
};

static struct fault_store *F(struct store *s) { return (struct fault_store *)s; }

/* True when this call is the one that fails. */
static int trip(struct store *s)
{
	struct fault_store *f = F(s);
	return (atomic_fetch_add(&f->calls, 1) + 1) % f->every == 0;
}

#define INNER(s) (F(s)->inner)
#define FORWARD(s, verb, ...) (trip(s) ? ERR_UNAVAILABLE : INNER(s)->ops->verb(INNER(s), __VA_ARGS__))

/* Zero an output the way a failing verb leaves it; returns the fault. */
static enum err zeroed(void *out, size_t size)
{
	memset(out, 0, size);
	return ERR_UNAVAILABLE;
}

/* FORWARD for a verb with one output struct `out`. */
#define FORWARD_OUT(s, out, verb, ...) \
	(trip(s) ? zeroed((out), sizeof(*(out))) : INNER(s)->ops->verb(INNER(s), __VA_ARGS__))

/* FORWARD for a verb with two outputs. */
#define FORWARD_OUT2(s, a, b, verb, ...) \
	(trip(s) ? (memset((a), 0, sizeof(*(a))), zeroed((b), sizeof(*(b)))) \
		 : INNER(s)->ops->verb(INNER(s), __VA_ARGS__))

static void f_close(struct store *s)
{
	INNER(s)->ops->close(INNER(s));
	free(s);
}
static enum err f_ping(struct store *s) { return trip(s) ? ERR_UNAVAILABLE : INNER(s)->ops->ping(INNER(s)); }
static int f_defer(struct store *s, store_job_fn fn, void *arg, store_done_fn done)
{
	return INNER(s)->ops->defer(INNER(s), fn, arg, done);
}
static uint64_t f_commits(struct store *s) { return INNER(s)->ops->commits(INNER(s)); }
static enum err f_subscribe(struct store *s, store_wake_fn fn, void *arg)
{
	return INNER(s)->ops->subscribe(INNER(s), fn, arg);
}
static int f_wake_epoch(struct store *s, uint64_t *epoch) { return INNER(s)->ops->wake_epoch(INNER(s), epoch); }
static enum err f_workers_seen(struct store *s, const struct worker_seen *rows, size_t n, int64_t prune_before)
{
	return trip(s) ? ERR_UNAVAILABLE : INNER(s)->ops->workers_seen(INNER(s), rows, n, prune_before);
}
static enum err f_workers_polling(struct store *s, const char *env_id, int64_t since, int64_t *count)
{
	*count = 0;
	return trip(s) ? ERR_UNAVAILABLE : INNER(s)->ops->workers_polling(INNER(s), env_id, since, count);
}
static int f_sweeps(struct store *s) { return INNER(s)->ops->sweeps(INNER(s)); }
static void f_publish(struct store *s, const char *key, size_t n) { INNER(s)->ops->publish(INNER(s), key, n); }
static void f_cursor_key(struct store *s, unsigned char out[CURSOR_KEY_LEN]) { INNER(s)->ops->cursor_key(INNER(s), out); }
static enum err f_api_key_count(struct store *s, int64_t *n) { return FORWARD_OUT(s, n, api_key_count, n); }
static enum err f_api_key_create(struct store *s, const struct api_key *k, const char *h)
{
	return FORWARD(s, api_key_create, k, h);
}
static enum err f_api_key_list(struct store *s, struct api_key **o, size_t *n) {
	if (trip(s)) {
		*o = NULL;
		return zeroed(n, sizeof(*n));
	}
	return INNER(s)->ops->api_key_list(INNER(s), o, n);
}
static enum err f_api_key_revoke(struct store *s, const char *id) { return FORWARD(s, api_key_revoke, id); }
static enum err f_credential_find(struct store *s, enum cred_kind k, const char *h, int64_t now, struct credential *o)
{
	return FORWARD_OUT(s, o, credential_find, k, h, now, o);
}
static enum err f_env_create(struct store *s, const struct tenant *t, const struct env_fields *f, int64_t now,
			     struct environment *o)
{
	return FORWARD_OUT(s, o, env_create, t, f, now, o);
}
static enum err f_env_get(struct store *s, const struct tenant *t, const char *id, struct environment *o)
{
	return FORWARD_OUT(s, o, env_get, t, id, o);
}
static enum err f_env_update(struct store *s, const struct tenant *t, const char *id, const json_t *b, int64_t now,
			     struct environment *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, env_update, t, id, b, now, o, eb);
}
static enum err f_env_archive(struct store *s, const struct tenant *t, const char *id, int64_t now,
			      struct environment *o)
{
	return FORWARD_OUT(s, o, env_archive, t, id, now, o);
}
static enum err f_env_delete(struct store *s, const struct tenant *t, const char *id, struct work_wake *w)
{
	return FORWARD_OUT(s, w, env_delete, t, id, w);
}
static enum err f_env_list(struct store *s, const struct tenant *t, int ia, const struct cursor *a, size_t l,
			   struct env_page *o)
{
	return FORWARD_OUT(s, o, env_list, t, ia, a, l, o);
}
static enum err f_env_key_create(struct store *s, const struct tenant *t, const char *e, const char *n,
				 const char *h, int64_t now, struct env_key *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, env_key_create, t, e, n, h, now, o, eb);
}
static enum err f_env_key_list(struct store *s, const struct tenant *t, const char *e, const struct cursor *a,
			       size_t l, struct env_key_page *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, env_key_list, t, e, a, l, o, eb);
}
static enum err f_env_key_revoke(struct store *s, const struct tenant *t, const char *e, const char *k,
				 struct work_wake *w, struct errbuf *eb)
{
	return FORWARD_OUT(s, w, env_key_revoke, t, e, k, w, eb);
}
static enum err f_work_enqueue(struct store *s, const struct tenant *t, const char *e, const char *ty,
			       const char *d, const json_t *m, int64_t now, struct work_item *o, int *created,
			       struct work_wake *w, struct errbuf *eb)
{
	if (trip(s)) {
		*created = 0;
		memset(w, 0, sizeof(*w));
		return zeroed(o, sizeof(*o));
	}
	return INNER(s)->ops->work_enqueue(INNER(s), t, e, ty, d, m, now, o, created, w, eb);
}
static enum err f_work_claim(struct store *s, const struct tenant *t, const char *e, const struct work_claim *c,
			     int64_t now, struct work_item *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, work_claim, t, e, c, now, o, eb);
}
static enum err f_work_undeliver(struct store *s, const char *w, const char *h, int64_t now, struct work_wake *wk)
{
	return FORWARD_OUT(s, wk, work_undeliver, w, h, now, wk);
}
static enum err f_work_get(struct store *s, const struct tenant *t, const char *e, const char *w,
			   struct work_item *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, work_get, t, e, w, o, eb);
}
static enum err f_work_event(struct store *s, const struct tenant *t, const char *e, const char *w,
			     enum work_event ev, const struct work_input *in, const char *sh, int64_t now,
			     struct work_item *o, struct work_event_out *r, struct errbuf *eb)
{
	return FORWARD_OUT2(s, r, o, work_event, t, e, w, ev, in, sh, now, o, r, eb);
}
static enum err f_work_update_metadata(struct store *s, const struct tenant *t, const char *e, const char *w,
				       const json_t *p, struct work_item *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, work_update_metadata, t, e, w, p, o, eb);
}
static enum err f_work_list(struct store *s, const struct tenant *t, const char *e, const struct cursor *a,
			    size_t l, struct work_page *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, work_list, t, e, a, l, o, eb);
}
static enum err f_work_stats(struct store *s, const struct tenant *t, const char *e, struct work_stats *o,
			     struct errbuf *eb)
{
	return FORWARD_OUT(s, o, work_stats, t, e, o, eb);
}
static enum err f_work_next_reclaim(struct store *s, const struct tenant *t, const char *e, int64_t r, int64_t *at,
				    struct errbuf *eb)
{
	return FORWARD_OUT(s, at, work_next_reclaim, t, e, r, at, eb);
}
static enum err f_leases_expire(struct store *s, int64_t now, size_t max, struct work_wake *wakes, size_t *nw,
				size_t *nx)
{
	return FORWARD_OUT2(s, nw, nx, leases_expire, now, max, wakes, nw, nx);
}
static enum err f_next_lease_expiry(struct store *s, int64_t *at) { return FORWARD_OUT(s, at, next_lease_expiry, at); }
/* Agents, sessions and agent turns (SPEC §6). */
static enum err f_agent_key_create(struct store *s, const struct agent_key *k, const char *h)
{
	return FORWARD(s, agent_key_create, k, h);
}
static enum err f_agent_create(struct store *s, const struct tenant *t, const json_t *cfg, int64_t now,
			       struct agent_rec *o)
{
	return FORWARD_OUT(s, o, agent_create, t, cfg, now, o);
}
static enum err f_agent_get(struct store *s, const struct tenant *t, const char *id, int64_t v, struct agent_rec *o)
{
	return FORWARD_OUT(s, o, agent_get, t, id, v, o);
}
static enum err f_agent_update(struct store *s, const struct tenant *t, const char *id, const json_t *b, int64_t now,
			       struct agent_rec *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, agent_update, t, id, b, now, o, eb);
}
static enum err f_agent_archive(struct store *s, const struct tenant *t, const char *id, int64_t now,
				struct agent_rec *o)
{
	return FORWARD_OUT(s, o, agent_archive, t, id, now, o);
}
static enum err f_agent_list(struct store *s, const struct tenant *t, int ia, const struct cursor *a, size_t l,
			     struct agent_page *o)
{
	return FORWARD_OUT(s, o, agent_list, t, ia, a, l, o);
}
static enum err f_agent_versions(struct store *s, const struct tenant *t, const char *id, const struct cursor *a,
				 size_t l, struct agent_page *o)
{
	return FORWARD_OUT(s, o, agent_versions, t, id, a, l, o);
}
static enum err f_session_create(struct store *s, const struct tenant *t, const struct session_new *n, int64_t now,
				 struct session_rec *o, struct session_wake *w, struct errbuf *eb)
{
	return FORWARD_OUT2(s, o, w, session_create, t, n, now, o, w, eb);
}
static enum err f_session_get(struct store *s, const struct session_scope *sc, const char *id, struct session_rec *o)
{
	return FORWARD_OUT(s, o, session_get, sc, id, o);
}
static enum err f_session_list(struct store *s, const struct session_scope *sc, int ia, const char *ag,
			       const struct cursor *a, size_t l, struct session_page *o)
{
	return FORWARD_OUT(s, o, session_list, sc, ia, ag, a, l, o);
}
static enum err f_session_update(struct store *s, const struct session_scope *sc, const char *id, const json_t *b,
				 int64_t now, struct session_rec *o, struct errbuf *eb)
{
	return FORWARD_OUT(s, o, session_update, sc, id, b, now, o, eb);
}
static enum err f_session_close(struct store *s, const struct session_scope *sc, const char *id, int del, int64_t now,
				struct session_rec *o, struct session_wake *w)
{
	return FORWARD_OUT2(s, o, w, session_close, sc, id, del, now, o, w);
}
static enum err f_session_post(struct store *s, const struct session_scope *sc, const char *id, const json_t *ev,
			       int64_t now, json_t **st, struct session_wake *w, struct errbuf *eb)
{
	return FORWARD_OUT2(s, st, w, session_post, sc, id, ev, now, st, w, eb);
}
static enum err f_session_events(struct store *s, const struct session_scope *sc, const char *id,
				 const struct event_query *q, struct event_page *o)
{
	return FORWARD_OUT(s, o, session_events, sc, id, q, o);
}
static enum err f_session_last_seq(struct store *s, const struct session_scope *sc, const char *id, const char *after,
				   int64_t *seq)
{
	return FORWARD_OUT(s, seq, session_last_seq, sc, id, after, seq);
}
static enum err f_session_events_since(struct store *s, const char *id, int64_t after, size_t max,
				       struct event_page *o, int *deleted)
{
	return FORWARD_OUT2(s, o, deleted, session_events_since, id, after, max, o, deleted);
}
static enum err f_turn_claim(struct store *s, const struct session_scope *sc, const char *const *m, int64_t now,
			     int64_t lease, struct agent_turn *o)
{
	return FORWARD_OUT(s, o, turn_claim, sc, m, now, lease, o);
}
static enum err f_turn_heartbeat(struct store *s, const struct session_scope *sc, const char *id, int64_t now,
				 int64_t lease, int64_t *exp)
{
	return FORWARD_OUT(s, exp, turn_heartbeat, sc, id, now, lease, exp);
}
static enum err f_turn_post(struct store *s, const struct session_scope *sc, const char *id, const json_t *ev,
			    int64_t now, json_t **st, struct session_wake *w, struct errbuf *eb)
{
	return FORWARD_OUT2(s, st, w, turn_post, sc, id, ev, now, st, w, eb);
}
static enum err f_turns_expire(struct store *s, int64_t now, size_t max, char (*orgs)[TENANT_NAME_MAX + 1],
			       size_t *n_orgs, size_t *n_expired)
{
	return FORWARD_OUT2(s, n_orgs, n_expired, turns_expire, now, max, orgs, n_orgs, n_expired);
}

static enum err f_next_turn_expiry(struct store *s, int64_t *at) { return FORWARD_OUT(s, at, next_turn_expiry, at); }

static enum err f_reset_all(struct store *s, struct store_reset *o) { return FORWARD_OUT(s, o, reset_all, o); }

static const struct store_ops fault_ops = {
	.version = STORE_OPS_VERSION,
	.close = f_close,
	.ping = f_ping,
	.defer = f_defer,
	.commits = f_commits,
	.cursor_key = f_cursor_key,
	.subscribe = f_subscribe,
	.publish = f_publish,
	.workers_seen = f_workers_seen,
	.workers_polling = f_workers_polling,
	.wake_epoch = f_wake_epoch,
	.sweeps = f_sweeps,
	.api_key_count = f_api_key_count,
	.api_key_create = f_api_key_create,
	.api_key_list = f_api_key_list,
	.api_key_revoke = f_api_key_revoke,
	.credential_find = f_credential_find,
	.env_create = f_env_create,
	.env_get = f_env_get,
	.env_update = f_env_update,
	.env_archive = f_env_archive,
	.env_delete = f_env_delete,
	.env_list = f_env_list,
	.env_key_create = f_env_key_create,
	.env_key_list = f_env_key_list,
	.env_key_revoke = f_env_key_revoke,
	.work_enqueue = f_work_enqueue,
	.work_claim = f_work_claim,
	.work_undeliver = f_work_undeliver,
	.work_get = f_work_get,
	.work_event = f_work_event,
	.work_update_metadata = f_work_update_metadata,
	.work_list = f_work_list,
	.work_stats = f_work_stats,
	.work_next_reclaim = f_work_next_reclaim,
	.leases_expire = f_leases_expire,
	.next_lease_expiry = f_next_lease_expiry,
	.agent_key_create = f_agent_key_create,
	.agent_create = f_agent_create,
	.agent_get = f_agent_get,
	.agent_update = f_agent_update,
	.agent_archive = f_agent_archive,
	.agent_list = f_agent_list,
	.agent_versions = f_agent_versions,
	.session_create = f_session_create,
	.session_get = f_session_get,
	.session_list = f_session_list,
	.session_update = f_session_update,
	.session_close = f_session_close,
	.session_post = f_session_post,
	.session_events = f_session_events,
	.session_last_seq = f_session_last_seq,
	.session_events_since = f_session_events_since,
	.turn_claim = f_turn_claim,
	.turn_heartbeat = f_turn_heartbeat,
	.turn_post = f_turn_post,
	.turns_expire = f_turns_expire,
	.next_turn_expiry = f_next_turn_expiry,
	.reset_all = f_reset_all,
};

enum err store_fault_wrap(struct store *inner, unsigned long every, struct store **out)
{
	struct fault_store *f = calloc(1, sizeof(*f));
	if (!f)
		return ERR_NOMEM;
	f->base.ops = &fault_ops;
	f->base.fleet = inner->fleet;
	f->base.defers = inner->defers;
	f->inner = inner;
	f->every = every ? every : 1;
	*out = &f->base;
	return ERR_OK;
}
