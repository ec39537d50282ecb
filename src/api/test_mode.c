/* test_mode.c - applying injected faults to requests, and the test-mode routes (see
 * test_mode.h). */
#include "api/test_mode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/dispatch.h"
#include "api/test_faults.h"
#include "common/clock.h"
#include "common/log.h"
#include "http/reply.h"

/* Delayed requests park in the waiters under this key, which no environment id can be
 * (ids have no spaces), so no wake of an environment resumes them early. */
#define DELAY_KEY "test mode delay"

/* What c->test_fault holds while a fault is under way. */
enum { PENDING_NONE, PENDING_DELAY, PENDING_DROP_AFTER };

struct test_mode {
	struct test_faults *faults;
};

struct test_mode *test_mode_new(void)
{
	struct test_mode *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->faults = test_faults_new();
	if (!t->faults) {
		free(t);
		return NULL;
	}
	return t;
}

void test_mode_free(struct test_mode *t)
{
	if (!t)
		return;
	test_faults_free(t->faults);
	free(t);
}

static int is_test_mode_route(const struct api_route *r)
{
	return r->handler == test_faults_post || r->handler == test_faults_get || r->handler == test_faults_delete ||
	       r->handler == test_reset;
}

int test_mode_hides(const struct call *c)
{
	return !c->app->test_mode && is_test_mode_route(c->route);
}

/* Every route under /v1/environd/test/ (the clock's too) is exempt from faults: a test
 * must always be able to change or clear them. */
static int never_faulted(const struct api_route *r)
{
	static const char prefix[] = "/v1/environd/test/";
	return strncmp(r->route.pattern, prefix, sizeof(prefix) - 1) == 0;
}

static void log_fault(struct call *c, const char *what)
{
	log_event(LOG_INFO, "test_fault", "request_id", c->req->request_id, "method", c->req->method, "path",
		  c->req->path, "fault", what, NULL);
}

int test_mode_intercept(struct call *c)
{
	struct test_mode *t = c->app->test_mode;
	if (!t || never_faulted(c->route))
		return 0;
	struct test_fault f;
	test_faults_decide(t->faults, c->route->route.method, c->route->route.pattern, &f);
	struct http_request *r = c->req;
	switch (f.kind) {
	case TEST_FAULT_NONE:
		return 0;
	case TEST_FAULT_STATUS: {
		enum err e = f.status == 429 ? ERR_TOO_MANY : f.status == 500 ? ERR_INTERNAL : ERR_UNAVAILABLE;
		if (f.status != 500)
			snprintf(r->retry_after, sizeof(r->retry_after), "%d", f.retry_after);
		errf(&c->eb, e, "injected fault (environd test mode): rule %zu answers %d to %s %s", f.rule, f.status,
		     c->route->route.method, c->route->route.pattern);
		log_fault(c, "status");
		reply_error(r, e, c->eb.message, NULL, NULL);
		return 1;
	}
	case TEST_FAULT_DROP:
		log_fault(c, "drop");
		r->drop = 1; /* the server closes the connection: no reply, nothing ran */
		return 1;
	case TEST_FAULT_DROP_AFTER:
		log_fault(c, "drop_after");
		c->test_fault = PENDING_DROP_AFTER;
		return 0;
	case TEST_FAULT_DELAY: {
		/* Parked like a held poll: the sweeper resumes it when its time comes, and no
		 * thread waits meanwhile. */
		struct waiters *w = c->app->waiters;
		snprintf(c->waiter.env_id, sizeof(c->waiter.env_id), "%s", DELAY_KEY);
		c->waiter.req = r;
		c->waiter.kind = WAITER_POLL;
		c->waiter.wake_mono = clock_mono_us() + (int64_t)f.delay_ms * 1000;
		c->test_fault = PENDING_DELAY;
		uint64_t seq = waiters_seq(w, DELAY_KEY);
		if (waiters_park(w, &c->waiter, seq) != 0) {
			/* No room among held requests (or stopping): serve it undelayed. */
			c->test_fault = PENDING_NONE;
			return 0;
		}
		log_fault(c, "delay");
		return 1;
	}
	}
	return 0;
}

int test_mode_resumed(struct call *c)
{
	if (c->test_fault != PENDING_DELAY)
		return 0;
	c->test_fault = PENDING_NONE;
	return 1;
}

void test_mode_after(struct call *c)
{
	if (c->test_fault == PENDING_DROP_AFTER && c->req->replied)
		c->req->drop = 1;
}

enum err test_faults_post(struct call *c)
{
	enum err rc = test_faults_install(c->app->test_mode->faults, c->body, api_route_faultable, &c->eb);
	if (rc)
		return rc;
	log_event(LOG_WARN, "test_faults_installed", NULL);
	return test_faults_get(c);
}

enum err test_faults_get(struct call *c)
{
	struct buf body;
	buf_init(&body, 256 * 1024);
	test_faults_encode(c->app->test_mode->faults, &body);
	call_reply(c, 200, &body);
	return ERR_OK;
}

enum err test_faults_delete(struct call *c)
{
	test_faults_clear(c->app->test_mode->faults);
	log_event(LOG_WARN, "test_faults_cleared", NULL);
	return test_faults_get(c);
}

enum err test_reset(struct call *c)
{
	struct store *s = c->app->store;
	struct store_reset n;
	enum err rc = s->ops->reset_all(s, &n);
	if (rc)
		return errf(&c->eb, rc, "reset: the store could not delete the data; nothing was deleted");
	/* Held polls and streams look again at what they wait for: a work poll of a deleted
	 * environment answers 404, a stream of a deleted session ends. */
	app_wake_every(c->app);
	log_event(LOG_WARN, "test_reset", NULL);
	struct buf body;
	buf_init(&body, 1024);
	struct jsonw w;
	jsonw_init(&w, &body);
	jsonw_obj_open(&w);
	jsonw_key(&w, "type");
	jsonw_str(&w, "test_reset");
	jsonw_key(&w, "deleted");
	jsonw_obj_open(&w);
	static const char *const names[] = {"environments", "environment_keys", "work_items", "agents", "sessions",
					    "events"};
	const int64_t counts[] = {n.environments, n.env_keys, n.work, n.agents, n.sessions, n.events};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		jsonw_key(&w, names[i]);
		jsonw_i64(&w, counts[i]);
	}
	jsonw_obj_close(&w);
	jsonw_obj_close(&w);
	call_reply(c, 200, &body);
	return ERR_OK;
}
