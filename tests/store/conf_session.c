/* conf_session.c - sessions (create, get, list, update, close, post, events, last_seq,
 * events_since), the work item that follows a session, agent turns (claim, heartbeat,
 * post, expire) and reset_all. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define LEASE US(30)
#define MAX_ORGS 8

struct fx {
	struct conf *c;
	struct tenant t;
	char env[ID_MAX];
	char agent[ID_MAX];
	struct session_scope sc; /* the tenant's org and workspace, any environment */
};

static void fx_init(struct fx *f, void **state, const char *prefix, const char *model)
{
	f->c = *state;
	conf_tenant(f->c, prefix, &f->t);
	conf_env_id(f->c, &f->t, conf_tick(f->c, 1000), f->env);
	conf_agent(f->c, &f->t, "agent", model, conf_tick(f->c, 1000), f->agent);
	f->sc = (struct session_scope){f->t.org, f->t.workspace, ""};
}

/* A session of the fixture's agent; with a first message when `text`. */
static void session_new(struct fx *f, const char *text, int64_t now, struct session_rec *out,
			struct session_wake *wake)
{
	conf_session(f->c, &f->t, f->env, f->agent, text, now, out, wake);
}

/* The live work item of a session (none: id ""), found by enqueueing it again. */
static int live_item(struct fx *f, const char *session_id, struct work_item *out)
{
	int created = 0;
	assert_int_equal(ERR_OK, w_enqueue(f->c, &f->t, f->env, "session", session_id, NULL, f->c->now, out, &created));
	return !created;
}

static void test_session_create_get(void **state)
{
	struct fx f;
	fx_init(&f, state, "sess", "model-a");
	struct session_rec r, got;
	struct session_wake wake;
	int64_t at = conf_tick(f.c, 1000);
	session_new(&f, "hello", at, &r, &wake);
	assert_true(strncmp(r.id, "sesn_", 5) == 0);
	assert_string_equal(f.env, r.environment_id);
	assert_int_equal(at, r.created_at);
	assert_string_equal(f.agent, json_string_value(json_object_get(r.agent, "id")));
	assert_int_equal(1, json_integer_value(json_object_get(r.agent, "version")));
	assert_true(json_is_null(r.title));
	assert_int_equal(0, json_object_size(r.metadata));
	/* A first message: the session awaits a turn and needs a worker, and says whom to wake. */
	assert_int_equal(1, r.state.awaiting_turn);
	assert_int_equal(1, wake.events);
	assert_int_equal(1, wake.work_enqueued);
	assert_int_equal(1, wake.turn_wanted);
	assert_string_equal(r.id, wake.session_id);
	assert_string_equal(f.env, wake.environment_id);
	assert_string_equal(f.t.org, wake.org);
	struct work_item w;
	assert_int_equal(1, live_item(&f, r.id, &w));
	assert_string_equal("session", w.data_type);
	assert_int_equal(WORK_QUEUED, w.lease.state);
	work_item_clear(&w);

	assert_int_equal(ERR_OK, f.c->s->ops->session_get(f.c->s, &f.sc, r.id, &got));
	assert_string_equal(r.id, got.id);
	assert_true(json_equal(r.agent, got.agent));
	assert_int_equal(1, got.state.awaiting_turn);
	session_rec_clear(&got);
	/* Scopes: another org, another workspace, another environment see nothing. */
	struct session_scope other_org = {"org-none", f.t.workspace, ""}, other_ws = {f.t.org, "ws-x", ""},
			     other_env = {f.t.org, "", "env_000000000000000000000000"};
	const struct session_scope *strangers[] = {&other_org, &other_ws, &other_env};
	for (size_t i = 0; i < 3; i++) {
		DIRTY(got);
		assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_get(f.c->s, strangers[i], r.id, &got));
		assert_true(all_zero(&got, sizeof(got)));
	}
	struct session_scope any_ws = {f.t.org, "", f.env};
	assert_int_equal(ERR_OK, f.c->s->ops->session_get(f.c->s, &any_ws, r.id, &got));
	session_rec_clear(&got);
	session_rec_clear(&r);

	/* Without a message: idle, no worker needed. */
	session_new(&f, NULL, conf_tick(f.c, 1000), &r, &wake);
	assert_int_equal(0, r.state.awaiting_turn);
	assert_int_equal(0, wake.work_enqueued);
	assert_int_equal(0, wake.events);
	assert_int_equal(0, live_item(&f, r.id, &w));
	work_item_clear(&w);
	session_rec_clear(&r);
}

static void test_session_create_refused(void **state)
{
	struct fx f;
	fx_init(&f, state, "srefuse", "model-a");
	struct session_rec r;
	struct session_wake wake;
	struct errbuf eb;
	struct session_new n = {.environment_id = f.env, .agent_id = "agent_000000000000000000000000"};
	DIRTY(r);
	DIRTY(wake);
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_create(f.c->s, &f.t, &n, conf_tick(f.c, 1), &r, &wake, &eb));
	assert_true(all_zero(&r, sizeof(r)));
	assert_true(all_zero(&wake, sizeof(wake)));
	assert_non_null(strstr(eb.message, "agent"));
	/* Another tenant's agent is not found for this one. */
	struct tenant other = f.t;
	snprintf(other.workspace, sizeof(other.workspace), "ws-x");
	n.agent_id = f.agent;
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_create(f.c->s, &other, &n, conf_tick(f.c, 1), &r, &wake, &eb));
	n.agent_version = 2;
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_create(f.c->s, &f.t, &n, conf_tick(f.c, 1), &r, &wake, &eb));
	n.agent_version = 0;
	/* Only user.message in initial_events: nothing is stored on a refusal. */
	json_t *bad = json_pack("[{s:s}]", "type", "user.interrupt");
	n.initial_events = bad;
	DIRTY(r);
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_create(f.c->s, &f.t, &n, conf_tick(f.c, 1), &r, &wake, &eb));
	assert_true(all_zero(&r, sizeof(r)));
	json_decref(bad);
	struct session_page p;
	assert_int_equal(ERR_OK, f.c->s->ops->session_list(f.c->s, &f.sc, 1, NULL, NULL, 10, &p));
	assert_int_equal(0, p.count);
	session_page_clear(&p);
	/* An archived agent starts no session. */
	struct agent_rec a;
	assert_int_equal(ERR_OK, f.c->s->ops->agent_archive(f.c->s, &f.t, f.agent, conf_tick(f.c, 1), &a));
	agent_rec_clear(&a);
	n.initial_events = NULL;
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_create(f.c->s, &f.t, &n, conf_tick(f.c, 1), &r, &wake, &eb));
}

static void test_session_list_update(void **state)
{
	struct fx f;
	fx_init(&f, state, "slist", "model-a");
	char ids[5][ID_MAX];
	for (int i = 0; i < 5; i++) {
		struct session_rec r;
		session_new(&f, NULL, conf_tick(f.c, 1000), &r, NULL);
		snprintf(ids[i], ID_MAX, "%s", r.id);
		session_rec_clear(&r);
	}
	struct session_rec r;
	struct session_wake wake;
	assert_int_equal(ERR_OK, f.c->s->ops->session_close(f.c->s, &f.sc, ids[1], 0, conf_tick(f.c, 1000), &r, &wake));
	session_rec_clear(&r);
	assert_int_equal(ERR_OK, f.c->s->ops->session_close(f.c->s, &f.sc, ids[3], 1, conf_tick(f.c, 1000), &r, &wake));
	session_rec_clear(&r);
	/* Newest first; archived on request; deleted never. */
	for (int archived = 0; archived < 2; archived++) {
		const char *want[] = {ids[4], ids[2], ids[1], ids[0]};
		size_t seen = 0;
		struct cursor after, *cur = NULL;
		for (int pages = 0; pages < 10; pages++) {
			struct session_page p;
			assert_int_equal(ERR_OK, f.c->s->ops->session_list(f.c->s, &f.sc, archived, NULL, cur, 1, &p));
			for (size_t i = 0; i < p.count; i++) {
				if (!archived && seen == 2)
					seen++; /* ids[1] is archived */
				assert_string_equal(want[seen], p.items[i].id);
				seen++;
			}
			int more = p.more;
			if (p.count) {
				after.created_at = p.items[p.count - 1].created_at;
				snprintf(after.id, sizeof(after.id), "%s", p.items[p.count - 1].id);
				cur = &after;
			}
			session_page_clear(&p);
			if (!more)
				break;
		}
		assert_int_equal(4, seen);
	}
	struct session_page p;
	assert_int_equal(ERR_OK, f.c->s->ops->session_list(f.c->s, &f.sc, 1, "agent_000000000000000000000000", NULL, 10, &p));
	assert_int_equal(0, p.count);
	session_page_clear(&p);
	assert_int_equal(ERR_OK, f.c->s->ops->session_list(f.c->s, &f.sc, 1, f.agent, NULL, 10, &p));
	assert_int_equal(4, p.count);
	session_page_clear(&p);
	struct session_scope other = {"org-none", "", ""};
	assert_int_equal(ERR_OK, f.c->s->ops->session_list(f.c->s, &other, 1, NULL, NULL, 10, &p));
	assert_int_equal(0, p.count);
	session_page_clear(&p);

	/* Update: title and a metadata patch; archived sessions take none. */
	struct errbuf eb;
	json_t *b = json_pack("{s:s,s:{s:s}}", "title", "T", "metadata", "k", "v");
	int64_t at = conf_tick(f.c, 1000);
	assert_int_equal(ERR_OK, f.c->s->ops->session_update(f.c->s, &f.sc, ids[0], b, at, &r, &eb));
	assert_string_equal("T", json_string_value(r.title));
	assert_string_equal("v", json_string_value(json_object_get(r.metadata, "k")));
	assert_int_equal(at, r.updated_at);
	session_rec_clear(&r);
	assert_int_equal(ERR_OK, f.c->s->ops->session_get(f.c->s, &f.sc, ids[0], &r));
	assert_string_equal("T", json_string_value(r.title));
	session_rec_clear(&r);
	DIRTY(r);
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_update(f.c->s, &f.sc, ids[1], b, conf_tick(f.c, 1), &r, &eb));
	assert_true(all_zero(&r, sizeof(r)));
	DIRTY(r);
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_update(f.c->s, &other, ids[0], b, conf_tick(f.c, 1), &r, &eb));
	assert_true(all_zero(&r, sizeof(r)));
	json_decref(b);
}

static void test_session_events(void **state)
{
	struct fx f;
	fx_init(&f, state, "sev", "model-a");
	struct session_rec r;
	session_new(&f, "one", conf_tick(f.c, 1000), &r, NULL);
	json_t *stored = NULL;
	struct session_wake wake;
	struct errbuf eb;
	for (int i = 0; i < 4; i++) {
		json_t *evs = conf_user_message("more");
		assert_int_equal(ERR_OK, f.c->s->ops->session_post(f.c->s, &f.sc, r.id, evs, conf_tick(f.c, 1000), &stored,
								 &wake, &eb));
		assert_int_equal(1, json_array_size(stored));
		assert_int_equal(1, wake.events);
		json_decref(stored);
		json_decref(evs);
	}
	/* A refused batch stores nothing. */
	json_t *bad = json_pack("[{s:s}]", "type", "user.nonsense");
	stored = (json_t *)1;
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_post(f.c->s, &f.sc, r.id, bad, conf_tick(f.c, 1), &stored,
								&wake, &eb));
	assert_null(stored);
	assert_true(all_zero(&wake, sizeof(wake)));
	json_decref(bad);

	int64_t seq = -1;
	assert_int_equal(ERR_OK, f.c->s->ops->session_last_seq(f.c->s, &f.sc, r.id, NULL, &seq));
	assert_int_equal(5, seq);
	/* Ascending pages. */
	struct event_query q = {.after_seq = 0, .limit = 2};
	struct event_page p;
	assert_int_equal(ERR_OK, f.c->s->ops->session_events(f.c->s, &f.sc, r.id, &q, &p));
	assert_int_equal(2, json_array_size(p.items));
	assert_int_equal(1, p.more);
	assert_int_equal(2, p.last_seq);
	char second[ID_MAX];
	snprintf(second, sizeof(second), "%s", p.last_id);
	assert_string_equal(second, json_string_value(json_object_get(json_array_get(p.items, 1), "id")));
	event_page_clear(&p);
	q.after_seq = 4;
	assert_int_equal(ERR_OK, f.c->s->ops->session_events(f.c->s, &f.sc, r.id, &q, &p));
	assert_int_equal(1, json_array_size(p.items));
	assert_int_equal(0, p.more);
	assert_int_equal(5, p.last_seq);
	event_page_clear(&p);
	/* Descending from the newest; a types filter. */
	q = (struct event_query){.after_seq = 0, .descending = 1, .limit = 3};
	assert_int_equal(ERR_OK, f.c->s->ops->session_events(f.c->s, &f.sc, r.id, &q, &p));
	assert_int_equal(3, json_array_size(p.items));
	assert_int_equal(1, p.more);
	assert_int_equal(3, p.last_seq);
	event_page_clear(&p);
	q = (struct event_query){.after_seq = 0, .types = ",user.interrupt,", .limit = 10};
	assert_int_equal(ERR_OK, f.c->s->ops->session_events(f.c->s, &f.sc, r.id, &q, &p));
	assert_int_equal(0, json_array_size(p.items));
	event_page_clear(&p);
	q.types = ",user.message,";
	assert_int_equal(ERR_OK, f.c->s->ops->session_events(f.c->s, &f.sc, r.id, &q, &p));
	assert_int_equal(5, json_array_size(p.items));
	event_page_clear(&p);
	struct session_scope other = {"org-none", "", ""};
	DIRTY(p);
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_events(f.c->s, &other, r.id, &q, &p));
	assert_true(all_zero(&p, sizeof(p)));

	/* last_seq of a given event; an event that is not the session's is invalid. */
	assert_int_equal(ERR_OK, f.c->s->ops->session_last_seq(f.c->s, &f.sc, r.id, second, &seq));
	assert_int_equal(2, seq);
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_last_seq(f.c->s, &f.sc, r.id, "sevt_000000000000000000000000", &seq));
	assert_int_equal(0, seq);
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_last_seq(f.c->s, &other, r.id, NULL, &seq));
	assert_int_equal(0, seq);

	/* events_since: what a stream reads. */
	int deleted = -1;
	assert_int_equal(ERR_OK, f.c->s->ops->session_events_since(f.c->s, r.id, 3, 10, &p, &deleted));
	assert_int_equal(2, json_array_size(p.items));
	assert_int_equal(5, p.last_seq);
	assert_int_equal(0, deleted);
	event_page_clear(&p);
	assert_int_equal(ERR_OK, f.c->s->ops->session_events_since(f.c->s, r.id, 0, 1, &p, &deleted));
	assert_int_equal(1, json_array_size(p.items));
	assert_int_equal(1, p.more);
	event_page_clear(&p);
	DIRTY(p);
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_events_since(f.c->s, "sesn_000000000000000000000000", 0, 10, &p, &deleted));
	assert_true(all_zero(&p, sizeof(p)));
	assert_int_equal(0, deleted);
	session_rec_clear(&r);
}

static void test_session_close(void **state)
{
	struct fx f;
	fx_init(&f, state, "sclose", "model-a");
	struct session_rec r, out;
	struct session_wake wake;
	session_new(&f, "work", conf_tick(f.c, 1000), &r, NULL);
	struct work_item w;
	assert_int_equal(1, live_item(&f, r.id, &w));
	char item[ID_MAX];
	snprintf(item, sizeof(item), "%s", w.id);
	work_item_clear(&w);
	/* Archive: the queued item stops; again keeps the first archived_at. */
	int64_t at = conf_tick(f.c, 1000);
	assert_int_equal(ERR_OK, f.c->s->ops->session_close(f.c->s, &f.sc, r.id, 0, at, &out, &wake));
	assert_int_equal(at, out.archived_at);
	session_rec_clear(&out);
	assert_int_equal(ERR_OK, w_get(f.c, &f.t, f.env, item, &w));
	assert_int_equal(WORK_STOPPED, w.lease.state);
	work_item_clear(&w);
	assert_int_equal(ERR_OK, f.c->s->ops->session_close(f.c->s, &f.sc, r.id, 0, conf_tick(f.c, 1000), &out, &wake));
	assert_int_equal(at, out.archived_at);
	session_rec_clear(&out);
	json_t *evs = conf_user_message("late"), *stored = NULL;
	struct errbuf eb;
	assert_int_equal(ERR_INVALID, f.c->s->ops->session_post(f.c->s, &f.sc, r.id, evs, conf_tick(f.c, 1), &stored, &wake, &eb));
	assert_null(stored);
	session_rec_clear(&r);

	/* Delete: a held item goes to stopping; session.deleted is the stream's last event. */
	session_new(&f, "work", conf_tick(f.c, 1000), &r, NULL);
	assert_int_equal(ERR_OK, w_claim(f.c, &f.t, f.env, NULL, US(5), conf_tick(f.c, 1000), &w, NULL));
	assert_string_equal(r.id, w.data_id);
	snprintf(item, sizeof(item), "%s", w.id);
	work_item_clear(&w);
	assert_int_equal(WORK_STARTING, w_ack(f.c, &f.t, f.env, item, conf_tick(f.c, 1000), NULL));
	struct session_scope other = {"org-none", "", ""};
	DIRTY(out);
	DIRTY(wake);
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_close(f.c->s, &other, r.id, 1, conf_tick(f.c, 1), &out, &wake));
	assert_true(all_zero(&out, sizeof(out)));
	assert_true(all_zero(&wake, sizeof(wake)));
	assert_int_equal(ERR_OK, f.c->s->ops->session_close(f.c->s, &f.sc, r.id, 1, conf_tick(f.c, 1000), &out, &wake));
	assert_int_equal(1, wake.events);
	session_rec_clear(&out);
	assert_int_equal(ERR_OK, w_get(f.c, &f.t, f.env, item, &w));
	assert_int_equal(WORK_STOPPING, w.lease.state);
	work_item_clear(&w);
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_get(f.c->s, &f.sc, r.id, &out));
	int64_t seq;
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_last_seq(f.c->s, &f.sc, r.id, NULL, &seq));
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->session_post(f.c->s, &f.sc, r.id, evs, conf_tick(f.c, 1), &stored, &wake, &eb));
	struct event_page p;
	int deleted = 0;
	assert_int_equal(ERR_OK, f.c->s->ops->session_events_since(f.c->s, r.id, 1, 10, &p, &deleted));
	assert_int_equal(1, deleted);
	assert_int_equal(1, json_array_size(p.items));
	assert_string_equal("session.deleted", json_string_value(json_object_get(json_array_get(p.items, 0), "type")));
	event_page_clear(&p);
	/* Stopping the item of a deleted session enqueues nothing new. */
	struct work_event_out res;
	assert_int_equal(ERR_OK, w_event(f.c, &f.t, f.env, item, WORK_EV_STOP, NULL, NULL, conf_tick(f.c, 1000), &w, &res));
	assert_int_equal(WORK_STOPPED, w.lease.state);
	assert_int_equal(0, res.requeued);
	work_item_clear(&w);
	json_decref(evs);
	session_rec_clear(&r);
}

/* A session's item that stops while the session still needs a worker is replaced by a
 * fresh one in the same transaction (and the caller is told to wake the polls). */
static void test_session_item_replaced(void **state)
{
	struct fx f;
	fx_init(&f, state, "srepl", "model-a");
	struct session_rec r;
	session_new(&f, "needs a worker", conf_tick(f.c, 1000), &r, NULL);
	struct work_item w;
	assert_int_equal(1, live_item(&f, r.id, &w));
	char first[ID_MAX];
	snprintf(first, sizeof(first), "%s", w.id);
	work_item_clear(&w);
	struct work_event_out res;
	struct work_input force = {.force = 1};
	assert_int_equal(ERR_OK, w_event(f.c, &f.t, f.env, first, WORK_EV_STOP, &force, NULL, conf_tick(f.c, 1000), &w, &res));
	assert_int_equal(WORK_STOPPED, w.lease.state);
	assert_int_equal(1, res.requeued);
	work_item_clear(&w);
	assert_int_equal(1, live_item(&f, r.id, &w));
	assert_string_not_equal(first, w.id);
	assert_int_equal(WORK_QUEUED, w.lease.state);
	work_item_clear(&w);
	session_rec_clear(&r);
}

static void test_turns(void **state)
{
	struct fx f;
	fx_init(&f, state, "turns", "model-t");
	struct session_rec r;
	session_new(&f, "hi", conf_tick(f.c, 1000), &r, NULL);
	struct agent_turn turn;
	const char *wrong[] = {"model-other", NULL}, *right[] = {"model-other", "model-t", NULL};
	/* Only allowed models, only in scope. */
	DIRTY(turn);
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->turn_claim(f.c->s, &f.sc, wrong, conf_tick(f.c, 1), LEASE, &turn));
	assert_true(all_zero(&turn, sizeof(turn)));
	struct session_scope other = {"org-none", "", ""};
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->turn_claim(f.c->s, &other, NULL, conf_tick(f.c, 1), LEASE, &turn));
	int64_t at = conf_tick(f.c, 1000);
	assert_int_equal(ERR_OK, f.c->s->ops->turn_claim(f.c->s, &f.sc, right, at, LEASE, &turn));
	assert_true(strncmp(turn.id, "turn_", 5) == 0);
	assert_string_equal(r.id, turn.session_id);
	assert_int_equal(at + LEASE, turn.lease_expires_at);
	assert_string_equal(f.agent, json_string_value(json_object_get(turn.agent, "id")));
	/* Taken: nobody else gets it. */
	struct agent_turn again;
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->turn_claim(f.c->s, &f.sc, NULL, conf_tick(f.c, 1), LEASE, &again));

	int64_t exp = -1, next = -1;
	assert_int_equal(ERR_OK, f.c->s->ops->next_turn_expiry(f.c->s, &next));
	assert_int_equal(at + LEASE, next);
	int64_t beat = conf_tick(f.c, 1000);
	assert_int_equal(ERR_OK, f.c->s->ops->turn_heartbeat(f.c->s, &f.sc, turn.id, beat, LEASE, &exp));
	assert_int_equal(beat + LEASE, exp);
	assert_int_equal(ERR_OK, f.c->s->ops->next_turn_expiry(f.c->s, &next));
	assert_int_equal(beat + LEASE, next);
	assert_int_equal(ERR_TURN_LOST, f.c->s->ops->turn_heartbeat(f.c->s, &other, turn.id, conf_tick(f.c, 1), LEASE, &exp));
	assert_int_equal(0, exp);

	/* Not expired before its time; then back to awaiting, and the turn is lost. */
	char orgs[MAX_ORGS][TENANT_NAME_MAX + 1];
	size_t n_orgs = 9, n_expired = 9;
	assert_int_equal(ERR_OK, f.c->s->ops->turns_expire(f.c->s, beat + LEASE - 1, MAX_ORGS, orgs, &n_orgs, &n_expired));
	assert_int_equal(0, n_expired);
	assert_int_equal(0, n_orgs);
	json_t *stored = NULL;
	struct session_wake wake;
	struct errbuf eb;
	json_t *evs = json_pack("[{s:s}]", "type", "session.status_running");
	assert_int_equal(ERR_TURN_LOST, f.c->s->ops->turn_post(f.c->s, &f.sc, turn.id, evs, beat + LEASE, &stored, &wake, &eb));
	assert_null(stored);
	assert_int_equal(ERR_OK, f.c->s->ops->turns_expire(f.c->s, beat + LEASE, MAX_ORGS, orgs, &n_orgs, &n_expired));
	assert_int_equal(1, n_expired);
	assert_int_equal(1, n_orgs);
	assert_string_equal(f.t.org, orgs[0]);
	assert_int_equal(ERR_TURN_LOST, f.c->s->ops->turn_heartbeat(f.c->s, &f.sc, turn.id, beat + LEASE + 1, LEASE, &exp));
	assert_int_equal(ERR_OK, f.c->s->ops->next_turn_expiry(f.c->s, &next));
	assert_int_equal(0, next);
	agent_turn_clear(&turn);

	/* The next turn runs the session and ends it; a post after the end is refused. */
	int64_t t2 = beat + LEASE + 2;
	assert_int_equal(ERR_OK, f.c->s->ops->turn_claim(f.c->s, &f.sc, NULL, t2, LEASE, &turn));
	assert_string_equal(r.id, turn.session_id);
	assert_int_equal(ERR_OK, f.c->s->ops->turn_post(f.c->s, &f.sc, turn.id, evs, t2 + 1, &stored, &wake, &eb));
	assert_int_equal(1, json_array_size(stored));
	json_decref(stored);
	json_decref(evs);
	struct session_rec got;
	assert_int_equal(ERR_OK, f.c->s->ops->session_get(f.c->s, &f.sc, r.id, &got));
	assert_int_equal(SESSION_RUNNING, got.state.status);
	session_rec_clear(&got);
	evs = json_pack("[{s:s,s:[{s:s,s:s}]},{s:s,s:{s:s}}]", "type", "agent.message", "content", "type", "text", "text",
			"done", "type", "session.status_idle", "stop_reason", "type", "end_turn");
	assert_int_equal(ERR_OK, f.c->s->ops->turn_post(f.c->s, &f.sc, turn.id, evs, t2 + 2, &stored, &wake, &eb));
	assert_int_equal(2, json_array_size(stored));
	assert_int_equal(1, wake.events);
	assert_int_equal(0, wake.turn_wanted);
	json_decref(stored);
	stored = NULL;
	assert_int_equal(ERR_TURN_LOST, f.c->s->ops->turn_post(f.c->s, &f.sc, turn.id, evs, t2 + 3, &stored, &wake, &eb));
	assert_null(stored);
	json_decref(evs);
	assert_int_equal(ERR_OK, f.c->s->ops->session_get(f.c->s, &f.sc, r.id, &got));
	assert_int_equal(SESSION_IDLE, got.state.status);
	assert_int_equal(0, got.state.awaiting_turn);
	assert_string_equal("", got.state.turn_id);
	session_rec_clear(&got);
	int64_t seq;
	assert_int_equal(ERR_OK, f.c->s->ops->session_last_seq(f.c->s, &f.sc, r.id, NULL, &seq));
	assert_int_equal(4, seq);
	agent_turn_clear(&turn);
	session_rec_clear(&r);
}

static void test_reset_all(void **state)
{
	struct fx f;
	fx_init(&f, state, "reset", "model-a");
	char h[SECRET_HASH_HEX + 1], ah[SECRET_HASH_HEX + 1];
	conf_hash("envd_env_reset", h);
	struct env_key k;
	assert_int_equal(ERR_OK, k_create(f.c, &f.t, f.env, "k", h, conf_tick(f.c, 1000), &k));
	struct api_key ak = {.created_at = f.c->now};
	snprintf(ak.id, sizeof(ak.id), "apikey_reset");
	tenant_set(&ak.tenant, f.t.org, "acct", "");
	conf_hash("envd_api_reset", ah);
	assert_int_equal(ERR_OK, f.c->s->ops->api_key_create(f.c->s, &ak, ah));
	struct session_rec r;
	session_new(&f, "x", conf_tick(f.c, 1000), &r, NULL); /* 1 session, 1 event, 1 item */
	session_rec_clear(&r);
	char id[ID_MAX];
	w_enqueue_ok(f.c, &f.t, f.env, conf_tick(f.c, 1000), id);

	struct store_reset out;
	DIRTY(out);
	assert_int_equal(ERR_OK, f.c->s->ops->reset_all(f.c->s, &out));
	assert_int_equal(1, out.environments);
	assert_int_equal(1, out.env_keys);
	assert_int_equal(2, out.work);
	assert_int_equal(1, out.agents);
	assert_int_equal(1, out.sessions);
	assert_int_equal(1, out.events);
	struct environment e;
	assert_int_equal(ERR_NOT_FOUND, f.c->s->ops->env_get(f.c->s, &f.t, f.env, &e));
	struct credential cr;
	assert_int_equal(ERR_UNAUTHENTICATED, f.c->s->ops->credential_find(f.c->s, CRED_ENV_KEY, h, f.c->now, &cr));
	/* Operator credentials stay. */
	assert_int_equal(ERR_OK, f.c->s->ops->credential_find(f.c->s, CRED_API_KEY, ah, f.c->now, &cr));
	assert_int_equal(ERR_OK, f.c->s->ops->reset_all(f.c->s, &out));
	assert_true(all_zero(&out, sizeof(out)));
}

int conf_group_session(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_session_create_get),  CONF_TEST(test_session_create_refused),
		CONF_TEST(test_session_list_update), CONF_TEST(test_session_events),
		CONF_TEST(test_session_close),	     CONF_TEST(test_session_item_replaced),
		CONF_TEST(test_turns),		     CONF_TEST(test_reset_all),
	};
	return cmocka_run_group_tests_name("store conformance: sessions and turns", tests, NULL, NULL);
}
