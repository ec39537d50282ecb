/* agent_turns.c - the agent extension (not in the official API): how an agent runner,
 * holding an agent key, takes turns of sessions and posts the agent side's events.
 *
 *   GET  /v1/environd/agent/turns/poll?block_ms=0..30000[&model=ID…]
 *   POST /v1/environd/agent/turns/{turn_id}/heartbeat
 *   POST /v1/environd/agent/turns/{turn_id}/events   {"events":[…]}
 *
 * A poll claims the oldest session of the key's organization (and workspace) that awaits
 * a turn and whose agent's model is among the requested and allowed ones; it is held like
 * a work poll (suspended, parked in wait/ under the organization's turn key) and woken as
 * soon as a session starts awaiting a turn or a turn's lease runs out. A turn is held for
 * --agent-turn-lease-ms (30 s) past its claim or last heartbeat; once lost, its heartbeat
 * and posts answer 412 turn_lost. The invariants of what may be posted are
 * model/session.c's. */
#include "api/sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/encode.h"
#include "common/clock.h"
#include "common/log.h"
#include "http/reply.h"
#include "model/agent.h"

#define REPLY_MAX (8 * 1024 * 1024)
#define TURN_BLOCK_MAX_MS 30000
#define MODELS_MAX 32

struct model_list {
	const char *items[MODELS_MAX + 1];
	size_t count;
	char bad[80];
	int too_many;
	const char *allowed; /* the key's list, "" = any */
	int refused;
};

/* Is `model` in the comma-separated list? */
static int in_csv(const char *csv, const char *model)
{
	size_t n = strlen(model);
	for (const char *p = csv; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, model, n) == 0)
			return 1;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

static int add_model(void *ctx, const char *value)
{
	struct model_list *m = ctx;
	if (!*value || strlen(value) > AGENT_MODEL_MAX || strchr(value, ',')) {
		snprintf(m->bad, sizeof(m->bad), "%.64s", value);
		return 1;
	}
	if (m->allowed[0] && !in_csv(m->allowed, value)) {
		snprintf(m->bad, sizeof(m->bad), "%.64s", value);
		m->refused = 1;
		return 1;
	}
	if (m->count == MODELS_MAX) {
		m->too_many = 1;
		return 1;
	}
	m->items[m->count++] = value;
	return 0;
}

/* The models this poll may claim: NULL-terminated in m->items, or *any set. When the key
 * restricts models and the poll names none, its own list applies (split into storage). */
static enum err poll_models(struct call *c, struct model_list *m, char *storage, size_t cap, int *any)
{
	memset(m, 0, sizeof(*m));
	m->allowed = c->cred.agent_models;
	http_query_each(c->req, "model", add_model, m);
	if (m->refused)
		return errf(&c->eb, ERR_FORBIDDEN, "model: this agent key may not serve model \"%.64s\"", m->bad);
	if (m->bad[0])
		return errf(&c->eb, ERR_INVALID, "model: \"%.64s\" is not a model id (1-%d characters, no commas)", m->bad,
			    AGENT_MODEL_MAX);
	if (m->too_many)
		return errf(&c->eb, ERR_INVALID, "model: at most %d models in one poll", MODELS_MAX);
	*any = 0;
	if (m->count == 0) {
		if (!m->allowed[0]) {
			*any = 1;
			return ERR_OK;
		}
		snprintf(storage, cap, "%s", m->allowed);
		for (char *p = storage; p && *p && m->count < MODELS_MAX;) {
			m->items[m->count++] = p;
			p = strchr(p, ',');
			if (p)
				*p++ = '\0';
		}
	}
	m->items[m->count] = NULL;
	return ERR_OK;
}

static void reply_null(struct call *c)
{
	struct buf body;
	buf_init(&body, 16);
	buf_puts(&body, "null");
	call_reply(c, 200, &body);
}

static void poll_end(struct call *c)
{
	c->polling = 0;
}

static enum err turn_scope(struct call *c, struct session_scope *sc) { return sessions_scope(c, "", sc); }

enum err agent_turns_poll(struct call *c)
{
	struct model_list m;
	char storage[AGENT_MODELS_MAX + 1];
	int any = 0;
	enum err rc = poll_models(c, &m, storage, sizeof(storage), &any);
	if (rc)
		return rc;
	if (!c->polling) {
		long long block_ms = 0;
		const char *b = http_query(c->req, "block_ms");
		if (b && *b) {
			char *end;
			block_ms = strtoll(b, &end, 10);
			if (*end || strlen(b) > 6 || block_ms < 0 || block_ms > TURN_BLOCK_MAX_MS)
				return errf(&c->eb, ERR_INVALID, "block_ms: must be an integer from 0 to %d, got \"%.40s\"",
					    TURN_BLOCK_MAX_MS, b);
		}
		sessions_turn_key(c->tenant.org, c->waiter.env_id);
		c->waiter.req = c->req;
		c->waiter.kind = WAITER_POLL;
		c->poll_deadline_mono = clock_mono_us() + block_ms * 1000;
		c->polling = 1;
		c->poll_counted = 1;
		atomic_fetch_add(&c->app->polls_active, 1);
	}
	if (http_peer_closed(c->req)) {
		poll_end(c);
		app_wake_here(c->app, c->waiter.env_id, 0);
		reply_null(c);
		return ERR_OK;
	}
	struct session_scope sc;
	if ((rc = turn_scope(c, &sc))) {
		poll_end(c);
		return rc;
	}
	for (int attempt = 0; attempt < 100; attempt++) {
		uint64_t seq = waiters_seq(c->app->waiters, c->waiter.env_id);
		struct agent_turn t;
		rc = c->app->store->ops->turn_claim(c->app->store, &sc, any ? NULL : m.items, clock_lease_us(),
						    c->app->agent_turn_lease_us, &t);
		if (rc == ERR_OK) {
			poll_end(c);
			app_lease_due(c->app, t.lease_expires_at);
			struct buf body;
			buf_init(&body, REPLY_MAX);
			struct jsonw jw;
			jsonw_init(&jw, &body);
			jsonw_obj_open(&jw);
			jsonw_key(&jw, "type");
			jsonw_str(&jw, "agent_turn");
			jsonw_key(&jw, "id");
			jsonw_str(&jw, t.id);
			jsonw_key(&jw, "session_id");
			jsonw_str(&jw, t.session_id);
			jsonw_key(&jw, "agent");
			encode_json(&jw, t.agent);
			jsonw_key(&jw, "lease_expires_at");
			jsonw_ts(&jw, t.lease_expires_at);
			jsonw_obj_close(&jw);
			log_event(LOG_INFO, "agent_turn_claimed", "turn_id", t.id, "session_id", t.session_id, NULL);
			agent_turn_clear(&t);
			call_reply(c, 200, &body);
			return ERR_OK;
		}
		if (rc != ERR_NOT_FOUND) {
			poll_end(c);
			return errf(&c->eb, rc == ERR_NOMEM ? ERR_NOMEM : ERR_UNAVAILABLE, "the turn queue is unavailable, retry");
		}
		int64_t now = clock_mono_us();
		if (now >= c->poll_deadline_mono || atomic_load(&c->app->stopping))
			break;
		c->waiter.wake_mono = c->poll_deadline_mono;
		int parked = waiters_park(c->app->waiters, &c->waiter, seq);
		if (parked == 0)
			return ERR_OK;
		if (parked < 0)
			break;
	}
	poll_end(c);
	reply_null(c);
	return ERR_OK;
}

static enum err turn_lost(struct call *c, enum err rc)
{
	if (rc == ERR_TURN_LOST && !c->eb.message[0])
		return errf(&c->eb, rc, "turn %.64s is no longer held (expired, ended, or its session closed)",
			    c->match.params[0]);
	if (!c->eb.message[0])
		errf(&c->eb, rc, "%s", err_default_message(rc));
	return rc;
}

enum err agent_turns_heartbeat(struct call *c)
{
	if (c->body && json_object_size(c->body))
		return errf(&c->eb, ERR_INVALID, "body: this route takes no body");
	struct session_scope sc;
	enum err rc = turn_scope(c, &sc);
	if (rc)
		return rc;
	int64_t expires = 0;
	rc = c->app->store->ops->turn_heartbeat(c->app->store, &sc, c->match.params[0], clock_lease_us(),
						 c->app->agent_turn_lease_us, &expires);
	if (rc)
		return turn_lost(c, rc);
	app_lease_due(c->app, expires);
	struct buf body;
	buf_init(&body, 256);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	jsonw_obj_open(&jw);
	jsonw_key(&jw, "id");
	jsonw_str(&jw, c->match.params[0]);
	jsonw_key(&jw, "type");
	jsonw_str(&jw, "agent_turn_heartbeat");
	jsonw_key(&jw, "lease_expires_at");
	jsonw_ts(&jw, expires);
	jsonw_obj_close(&jw);
	call_reply(c, 200, &body);
	return ERR_OK;
}

enum err agent_turns_events(struct call *c)
{
	const json_t *events;
	enum err rc = call_events_body(c, &events);
	if (rc)
		return rc;
	struct session_scope sc;
	if ((rc = turn_scope(c, &sc)))
		return rc;
	json_t *stored = NULL;
	struct session_wake wake;
	rc = c->app->store->ops->turn_post(c->app->store, &sc, c->match.params[0], events, clock_lease_us(), &stored,
					   &wake, &c->eb);
	if (rc)
		return turn_lost(c, rc);
	sessions_wake(c->app, &wake);
	sessions_reply_data(c, stored);
	json_decref(stored);
	return ERR_OK;
}
