/* dispatch.c - the route table and the path of every request: route → beta header →
 * credentials → body (bounded, then decoded) → handler → reply. The helpers handlers
 * share live in call.c. */
#include "api/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/console.h"
#include "api/call.h"
#include "api/test_clock.h"
#include "api/sessions.h"
#include "api/test_mode.h"
#include "api/work_wake.h"
#include "common/clock.h"
#include "common/log.h"
#include "http/reply.h"
#include "model/fields.h"
#include "model/json_bound.h"

#define BETA "managed-agents-2026-04-01"

#define API AUTH_API
#define ENV AUTH_ENV
#define SES AUTH_SESSION
#define AGT AUTH_AGENT

/* Literal segments win over "*" (router.h), so the order here does not matter. */
static const struct api_route routes[] = {
	{{"GET", "/healthz"}, health_live, AUTH_NONE, BODY_NONE, 1},
	{{"GET", "/readyz"}, health_ready, AUTH_NONE, BODY_NONE, 1},
	{{"GET", "/metrics"}, health_metrics, AUTH_NONE, BODY_NONE, 1},
	{{"GET", "/console"}, console_get, AUTH_NONE, BODY_NONE, 1},
	{{"GET", "/console/*"}, console_get, AUTH_NONE, BODY_NONE, 1},
	{{"POST", "/v1/environments"}, env_create, API, BODY_REQUIRED, 0},
	{{"GET", "/v1/environments"}, env_list, API, BODY_NONE, 0},
	{{"GET", "/v1/environments/*"}, env_get, API, BODY_NONE, 0},
	{{"POST", "/v1/environments/*"}, env_update, API, BODY_REQUIRED, 0},
	{{"DELETE", "/v1/environments/*"}, env_delete, API, BODY_NONE, 0},
	{{"POST", "/v1/environments/*/archive"}, env_archive, API, BODY_EMPTY, 0},
	{{"POST", "/v1/environments/*/keys"}, env_key_create, API, BODY_OPTIONAL, 0},
	{{"GET", "/v1/environments/*/keys"}, env_key_list, API, BODY_NONE, 0},
	{{"DELETE", "/v1/environments/*/keys/*"}, env_key_revoke, API, BODY_NONE, 0},
	{{"POST", "/v1/environments/*/work"}, work_enqueue, API, BODY_REQUIRED, 0},
	{{"GET", "/v1/environments/*/work"}, work_list, ENV, BODY_NONE, 0},
	{{"GET", "/v1/environments/*/work/poll"}, work_poll, ENV, BODY_NONE, 0},
	{{"GET", "/v1/environments/*/work/stats"}, work_stats, API, BODY_NONE, 0},
	{{"GET", "/v1/environments/*/work/*"}, work_get, API | SES, BODY_NONE, 0},
	{{"POST", "/v1/environments/*/work/*"}, work_update, API, BODY_REQUIRED, 0},
	{{"POST", "/v1/environments/*/work/*/ack"}, work_ack, ENV | SES, BODY_EMPTY, 0},
	{{"POST", "/v1/environments/*/work/*/heartbeat"}, work_heartbeat, ENV | SES, BODY_EMPTY, 0},
	{{"POST", "/v1/environments/*/work/*/stop"}, work_stop, API | ENV | SES, BODY_OPTIONAL, 0},
	/* Agents and sessions (SPEC §6). */
	{{"POST", "/v1/agents"}, agents_create, API, BODY_REQUIRED, 0},
	{{"GET", "/v1/agents"}, agents_list, API, BODY_NONE, 0},
	{{"GET", "/v1/agents/*"}, agents_get, API, BODY_NONE, 0},
	{{"POST", "/v1/agents/*"}, agents_update, API, BODY_REQUIRED, 0},
	{{"POST", "/v1/agents/*/archive"}, agents_archive, API, BODY_OPTIONAL, 0},
	{{"GET", "/v1/agents/*/versions"}, agents_versions, API, BODY_NONE, 0},
	{{"POST", "/v1/sessions"}, sessions_create, API, BODY_REQUIRED, 0},
	{{"GET", "/v1/sessions"}, sessions_list, API, BODY_NONE, 0},
	{{"GET", "/v1/sessions/*"}, sessions_get, API | ENV | SES | AGT, BODY_NONE, 0},
	{{"POST", "/v1/sessions/*"}, sessions_update, API, BODY_REQUIRED, 0},
	{{"DELETE", "/v1/sessions/*"}, sessions_delete, API, BODY_NONE, 0},
	{{"POST", "/v1/sessions/*/archive"}, sessions_archive, API, BODY_OPTIONAL, 0},
	{{"GET", "/v1/sessions/*/events"}, session_events_list, API | ENV | SES | AGT, BODY_NONE, 0},
	{{"POST", "/v1/sessions/*/events"}, session_events_post, API | ENV | SES, BODY_REQUIRED, 0},
	{{"GET", "/v1/sessions/*/events/stream"}, session_events_stream, API | ENV | SES, BODY_NONE, 0},
	/* The agent extension (README: "The agent extension"). */
	{{"GET", "/v1/environd/agent/turns/poll"}, agent_turns_poll, AGT, BODY_NONE, 0},
	{{"POST", "/v1/environd/agent/turns/*/heartbeat"}, agent_turns_heartbeat, AGT, BODY_OPTIONAL, 0},
	{{"POST", "/v1/environd/agent/turns/*/events"}, agent_turns_events, AGT, BODY_REQUIRED, 0},
	/* Test mode (README: "Test your worker against environd in CI"): 404 without --test-mode. */
	{{"POST", "/v1/environd/test/faults"}, test_faults_post, API, BODY_REQUIRED, 0},
	{{"GET", "/v1/environd/test/faults"}, test_faults_get, API, BODY_NONE, 0},
	{{"DELETE", "/v1/environd/test/faults"}, test_faults_delete, API, BODY_NONE, 0},
	{{"POST", "/v1/environd/test/reset"}, test_reset, API, BODY_EMPTY, 0},
	/* Tests only: answers 404 unless the server runs with --test-clock. */
	{{"POST", "/v1/environd/test/clock"}, test_clock_move, API, BODY_REQUIRED, 0},
};

/* GET routes that are not pure reads (a poll claims work). HEAD must never change state,
 * so HEAD on these is refused with 405 instead of running the GET without its body. */
static const char *const changes_state[] = {"/v1/environments/*/work/poll"};

/* GET routes that write (they claim), besides every POST and DELETE. */
static const char *const writes_on_get[] = {"/v1/environments/*/work/poll", "/v1/environd/agent/turns/poll"};

static int route_writes(const struct api_route *route)
{
	if (strcmp(route->route.method, "GET") != 0)
		return 1;
	for (size_t i = 0; i < sizeof(writes_on_get) / sizeof(writes_on_get[0]); i++)
		if (strcmp(route->route.pattern, writes_on_get[i]) == 0)
			return 1;
	return 0;
}

static int head_refused(const struct api_route *route)
{
	for (size_t i = 0; i < sizeof(changes_state) / sizeof(changes_state[0]); i++)
		if (strcmp(route->route.pattern, changes_state[i]) == 0)
			return 1;
	return 0;
}

int api_route_faultable(const char *method, const char *pattern)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i].route;
		if ((strcmp(method, "*") == 0 || strcmp(method, r->method) == 0) && strcmp(pattern, r->pattern) == 0 &&
		    strncmp(pattern, "/v1/environd/test/", 18) != 0)
			return 1;
	}
	return 0;
}

static void call_free(void *p)
{
	struct call *c = p;
	json_decref(c->body);
	after_commit_clear(&c->effects);
	free(c);
}

/* True when the comma-separated anthropic-beta header contains our beta. */
static int has_beta(const char *header)
{
	if (!header)
		return 0;
	size_t want = strlen(BETA);
	const char *p = header;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',')
			end++;
		const char *trim = end;
		while (trim > p && (trim[-1] == ' ' || trim[-1] == '\t'))
			trim--;
		if ((size_t)(trim - p) == want && memcmp(p, BETA, want) == 0)
			return 1;
		p = end;
	}
	return 0;
}

/* A body of a BODY_EMPTY route is `{}` at most: a few bytes of whitespace around it. */
static const struct json_bounds empty_body_bounds = {4, 64};

/* Runs after authentication, so that a caller without a credential valid here cannot
 * make the server parse anything; and the raw bytes are bounded (values, depth) before
 * the parser allocates a node per value. */
static enum err decode_body(struct call *c)
{
	struct http_request *r = c->req;
	enum body_rule rule = c->route->body;
	if (r->body.len == 0) {
		if (rule == BODY_REQUIRED)
			return errf(&c->eb, ERR_INVALID, "body: a JSON object is required");
		return ERR_OK;
	}
	if (rule == BODY_NONE)
		return errf(&c->eb, ERR_INVALID, "body: %.8s %.200s takes no body", r->method, c->route->route.pattern);
	/* A BODY_EMPTY body small enough to parse cheaply is parsed, so that the message can
	 * name its first field; a larger one is refused by what the route allows. */
	enum err rc = json_bound_check(r->body.data, r->body.len, rule == BODY_EMPTY ? &empty_body_bounds : &json_bounds_body,
				       &c->eb);
	if (rc && rule == BODY_EMPTY)
		return errf(&c->eb, ERR_INVALID, "body: %.8s %.200s takes no fields (send none or {})", r->method,
			    c->route->route.pattern);
	if (rc)
		return rc;
	json_error_t jerr;
	c->body = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!c->body)
		return errf(&c->eb, ERR_INVALID, "body: invalid JSON at line %d, column %d: %s", jerr.line,
			    jerr.column, jerr.text);
	if (!json_is_object(c->body))
		return errf(&c->eb, ERR_INVALID, "body: expected a JSON object, got %s",
			    json_is_array(c->body) ? "an array" : json_is_string(c->body) ? "a string" : "a scalar");
	if (rule == BODY_EMPTY) {
		static const char *const none[] = {NULL};
		return fields_only(c->body, "", none, &c->eb);
	}
	return ERR_OK;
}

static void finish(struct call *c, enum err rc)
{
	if (rc != ERR_OK && !c->req->replied)
		reply_error(c->req, rc, c->eb.message, NULL, NULL);
	test_mode_after(c);
}

/* A matched request: beta header, credentials, body, handler. */
static void run_route(struct call *c)
{
	enum err rc = ERR_OK;
	if (!c->route->public) {
		if (!has_beta(http_header(c->req, "anthropic-beta")))
			rc = errf(&c->eb, ERR_INVALID, "anthropic-beta: header must include \"%s\"", BETA);
		else
			rc = auth_resolve(c, c->route->auth);
	}
	if (!rc)
		rc = decode_body(c);
	if (!rc)
		rc = c->route->handler(c);
	finish(c, rc);
}

/* A held poll (work or agent turn) was resumed: its handler tries again. */
static void retry_poll(struct call *c) { finish(c, c->route->handler(c)); }

/* --- writes run on the store's writer ------------------------------------------------
 *
 * With a store that has a writer of its own (SQLite), a request that writes does not hold
 * an HTTP thread while its write is made durable: its connection is suspended, and the
 * writer runs the whole request (credentials, handler, reply) inside its next commit
 * group, where the store verbs join the group's transaction. The reply is kept until the
 * group is on disk, and so are the wake-ups it caused (after_commit.h); then the
 * connection is resumed and sends it. A group that does not commit answers every request
 * in it with 503. */

static void deferred_done(void *arg, enum err rc);
static void hand_off_wakes(struct call *c);

static enum err deferred_run(void *arg)
{
	struct call *c = arg;
	after_commit_record_into(&c->effects);
	c->deferred_step(c);
	after_commit_record_into(NULL);
	hand_off_wakes(c);
	return ERR_OK;
}

/* A held work poll woken by a write of this group claims in this group, as the next job:
 * it sees the write, and its answer shares the write's commit (one fsync, not two). Any
 * other waiter is resumed as usual. Under the waiters' lock (waiters_wake_with). */
static void hand_off(void *req, void *arg)
{
	struct http_request *r = req;
	struct call *waker = arg;
	struct app *a = waker->app;
	struct call *c = r->ctx;
	atomic_fetch_add(&a->deferred, 1);
	if (!c || !c->polling || c->route->handler != work_poll || atomic_load(&a->stopping) ||
	    http_defer_parked(r) != 0) {
		/* Not a work poll (a stream, a turn poll), or stopping, or parked by a run of this
		 * very group: resumed as usual once the group is committed (or, if the list cannot
		 * grow, now: it looks again, and so does everyone after the commit). */
		atomic_fetch_sub(&a->deferred, 1);
		if (after_commit_add(&waker->effects, AFTER_RESUME, NULL, 0, 0, r) != 0)
			http_resume(r);
		return;
	}
	c->deferred_step = retry_poll;
	if (a->store->ops->defer(a->store, deferred_run, c, deferred_done) != 0) {
		/* Resumed as usual: it polls again through dispatch. */
		http_defer_end(r, 0);
		atomic_fetch_sub(&a->deferred, 1);
	}
}

static void hand_off_wakes(struct call *c)
{
	size_t n = c->effects.n; /* hand_off adds to the list (which may move): not those */
	for (size_t i = 0; i < n; i++) {
		struct after_commit_effect e = c->effects.list[i];
		if ((e.kind == AFTER_WAKE || e.kind == AFTER_WAKE_HERE) && e.n > 0)
			c->effects.list[i].handed = waiters_wake_with(c->app->waiters, e.key, e.n, hand_off, c);
	}
}

static void deferred_done(void *arg, enum err rc)
{
	struct call *c = arg;
	struct app *a = c->app;
	app_after_commit(a, &c->effects, rc == ERR_OK);
	after_commit_clear(&c->effects);
	if (rc != ERR_OK)
		c->delivered_work_id[0] = '\0'; /* that claim was not kept */
	http_defer_end(c->req, rc != ERR_OK); /* c may be gone from here on */
	atomic_fetch_sub(&a->deferred, 1);
}

/* Run step(c) here, or on the store's writer when the route writes. */
static void run_step(struct call *c, void (*step)(struct call *c))
{
	struct app *a = c->app;
	if (!a->store->defers || !route_writes(c->route)) {
		step(c);
		return;
	}
	if (c->route->handler == work_poll) {
		/* A work poll looks at this node's hint first, here: when nothing is claimable it
		 * parks or answers without the writer, and it goes there only to claim. */
		c->poll_here = 1;
		c->poll_needs_writer = 0;
		step(c);
		c->poll_here = 0;
		if (!c->poll_needs_writer)
			return;
		step = retry_poll;
	}
	/* Counted before stopping is read: app_stop() sees the count, or this sees stopping
	 * and runs the request in place. */
	atomic_fetch_add(&a->deferred, 1);
	if (atomic_load(&a->stopping)) {
		atomic_fetch_sub(&a->deferred, 1);
		step(c);
		return;
	}
	c->deferred_step = step;
	http_defer(c->req);
	if (a->store->ops->defer(a->store, deferred_run, c, deferred_done) != 0) {
		reply_error(c->req, ERR_UNAVAILABLE, "the store is not taking writes now, retry", NULL, NULL);
		http_defer_end(c->req, 0);
		atomic_fetch_sub(&a->deferred, 1);
	}
}

void app_dispatch(void *arg, struct http_request *r)
{
	struct app *a = arg;
	struct call *c = r->ctx;
	if (c && c->polling) {
		run_step(c, retry_poll);
		return;
	}
	if (c && test_mode_resumed(c)) {
		run_step(c, run_route); /* a delay injected by test mode is over */
		return;
	}
	atomic_fetch_add(&a->metrics.requests, 1);
	c = calloc(1, sizeof(*c));
	if (!c) {
		reply_error(r, ERR_NOMEM, NULL, NULL, NULL);
		return;
	}
	c->app = a;
	c->req = r;
	r->ctx = c;
	r->ctx_free = call_free;
	/* Framing errors and oversized bodies were answered by the server (server.c). HEAD runs
	 * the GET route of a pure read (libmicrohttpd leaves the body out); router.h. */
	enum router_result m = router_match(routes, sizeof(routes) / sizeof(routes[0]), sizeof(routes[0]), r->method,
					    r->path, &c->match);
	if (m == ROUTER_NOT_FOUND) {
		finish(c, errf(&c->eb, ERR_NOT_FOUND, "no route for %.8s %.200s", r->method, r->path));
		return;
	}
	if (m == ROUTER_METHOD_NOT_ALLOWED) {
		errf(&c->eb, ERR_METHOD, "method %.8s is not allowed on %.200s (allowed: %s)", r->method, r->path,
		     c->match.allow);
		reply_error(r, ERR_METHOD, c->eb.message, NULL, c->match.allow);
		return;
	}
	c->route = &routes[c->match.index];
	if (strcmp(r->method, "HEAD") == 0 && head_refused(c->route)) {
		errf(&c->eb, ERR_METHOD, "method HEAD is not allowed on %.200s: it would claim work (allowed: GET)",
		     r->path);
		reply_error(r, ERR_METHOD, c->eb.message, NULL, "GET");
		return;
	}
	if (test_mode_hides(c)) {
		finish(c, errf(&c->eb, ERR_NOT_FOUND, "no route for %.8s %.200s", r->method, r->path));
		return;
	}
	if (test_mode_intercept(c))
		return;
	run_step(c, run_route);
}

/* The poller never got its item: give it back at once, and tell another poller. */
struct undelivery {
	struct app *app;
	char work_id[ID_MAX];
	char token_hash[SECRET_HASH_HEX + 1];
	struct work_wake wake;
	enum err rc;
};

static enum err undeliver_run(void *arg)
{
	struct undelivery *u = arg;
	struct store *s = u->app->store;
	u->rc = s->ops->work_undeliver(s, u->work_id, u->token_hash, clock_lease_us(), &u->wake);
	return u->rc;
}

static void undeliver_done(void *arg, enum err rc)
{
	struct undelivery *u = arg;
	struct app *a = u->app;
	if (rc == ERR_OK) {
		atomic_fetch_add(&a->metrics.work_undelivered, 1);
		log_event(LOG_INFO, "work_undelivered", "work_id", u->work_id, NULL);
		work_wake_polls(a, &u->wake);
	}
	free(u);
	atomic_fetch_sub(&a->deferred, 1);
}

static void undeliver(struct app *a, struct call *c)
{
	struct undelivery *u = calloc(1, sizeof(*u));
	if (!u) {
		log_event(LOG_ERROR, "work_undeliver_failed", "work_id", c->delivered_work_id, "reason", "out of memory", NULL);
		return;
	}
	u->app = a;
	memcpy(u->work_id, c->delivered_work_id, sizeof(u->work_id));
	memcpy(u->token_hash, c->delivered_token_hash, sizeof(u->token_hash));
	atomic_fetch_add(&a->deferred, 1);
	/* Not on an HTTP thread's time while the store is writing, unless it is stopping. */
	if (!a->store->defers || atomic_load(&a->stopping) ||
	    a->store->ops->defer(a->store, undeliver_run, u, undeliver_done) != 0)
		undeliver_done(u, undeliver_run(u));
}

void app_done(void *arg, struct http_request *r, int reached_client)
{
	struct app *a = arg;
	struct call *c = r->ctx;
	if (r->status >= 500)
		atomic_fetch_add(&a->metrics.responses_5xx, 1);
	else if (r->status >= 400)
		atomic_fetch_add(&a->metrics.responses_4xx, 1);
	else if (r->status)
		atomic_fetch_add(&a->metrics.responses_2xx, 1);
	if (c && c->poll_counted)
		atomic_fetch_sub(&a->polls_active, 1);
	if (c && c->delivered_work_id[0] && !reached_client)
		undeliver(a, c);
	if (log_enabled(LOG_DEBUG)) {
		char status[8], micros[24];
		snprintf(status, sizeof(status), "%d", r->status);
		snprintf(micros, sizeof(micros), "%lld", (long long)(clock_mono_us() - r->started_mono));
		log_event(LOG_DEBUG, "request", "request_id", r->request_id, "method", r->method, "path", r->path,
			  "status", status, "us", micros, NULL);
	}
}
