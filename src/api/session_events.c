/* session_events.c - a session's events: list (paginated, either order, filtered by type)
 * and post (client events; their invariants are model/session.c's). */
#include "api/sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/encode.h"
#include "common/clock.h"

#define REPLY_MAX (64 * 1024 * 1024)
#define EVENTS_LIMIT_MAX 1000
#define TYPES_FILTER_MAX 512

static enum err not_found(struct call *c, enum err rc) { return sessions_store_error(c, rc, "session"); }

struct types_filter {
	char text[TYPES_FILTER_MAX];
	size_t count;
	const char *bad;
	char bad_copy[80];
};

static int add_type(void *ctx, const char *value)
{
	struct types_filter *t = ctx;
	int known = 0;
	for (size_t i = 0; session_event_types[i]; i++)
		if (strcmp(value, session_event_types[i]) == 0)
			known = 1;
	if (!known) {
		snprintf(t->bad_copy, sizeof(t->bad_copy), "%s", value);
		t->bad = t->bad_copy;
		return 1;
	}
	size_t len = strlen(t->text);
	if (len == 0)
		t->text[len++] = ',';
	snprintf(t->text + len, sizeof(t->text) - len, "%s,", value);
	t->count++;
	return 0;
}

enum err session_events_list(struct call *c)
{
	struct session_scope sc;
	enum err rc = sessions_scope(c, c->match.params[0], &sc);
	if (rc)
		return rc;
	struct event_query q = {.limit = 20};
	const char *l = http_query(c->req, "limit");
	if (l) {
		char *end;
		long long v = strtoll(l, &end, 10);
		if (!*l || *end || strlen(l) > 5 || v < 1 || v > EVENTS_LIMIT_MAX)
			return errf(&c->eb, ERR_INVALID, "limit: must be an integer from 1 to %d, got \"%.40s\"",
				    EVENTS_LIMIT_MAX, l);
		q.limit = (size_t)v;
	}
	const char *order = http_query(c->req, "order");
	if (order && *order) {
		if (strcmp(order, "desc") == 0)
			q.descending = 1;
		else if (strcmp(order, "asc") != 0)
			return errf(&c->eb, ERR_INVALID, "order: must be \"asc\" or \"desc\", got \"%.40s\"", order);
	}
	struct types_filter tf = {.text = ""};
	http_query_each(c->req, "types[]", add_type, &tf);
	if (!tf.bad)
		http_query_each(c->req, "types", add_type, &tf);
	if (tf.bad)
		return errf(&c->eb, ERR_INVALID, "types[]: \"%.64s\" is not a session event type", tf.bad);
	q.types = tf.count ? tf.text : NULL;
	const char *kind = q.descending ? "sevt_desc" : "sevt";
	const char *page = http_query(c->req, "page");
	if (page && *page) {
		struct cursor after;
		if ((rc = cursor_decode(c->app->cursor_key, kind, c->match.params[0], page, &after, &c->eb)))
			return rc;
		q.after_seq = after.created_at;
	}
	struct event_page p;
	if ((rc = c->app->store->ops->session_events(c->app->store, &sc, c->match.params[0], &q, &p)))
		return not_found(c, rc);
	struct buf body;
	buf_init(&body, REPLY_MAX);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	jsonw_obj_open(&jw);
	jsonw_key(&jw, "data");
	encode_json(&jw, p.items);
	call_next_page(c, &jw, kind, c->match.params[0], p.more, p.last_seq, p.last_id);
	jsonw_obj_close(&jw);
	call_reply(c, 200, &body);
	event_page_clear(&p);
	return ERR_OK;
}

enum err session_events_post(struct call *c)
{
	const json_t *events;
	enum err rc = call_events_body(c, &events);
	if (rc)
		return rc;
	if (c->cred.kind != CRED_API_KEY && json_is_array(events)) {
		/* Workers answer tool uses; talking to the agent is the API key holder's. */
		size_t i;
		json_t *ev;
		json_array_foreach(events, i, ev)
		{
			const char *type = json_string_value(json_object_get(ev, "type"));
			if (type && strcmp(type, "user.tool_result") != 0 && strcmp(type, "user.custom_tool_result") != 0)
				return errf(&c->eb, ERR_FORBIDDEN,
					    "events[%zu].type: this credential may post only user.tool_result and "
					    "user.custom_tool_result events",
					    i);
		}
	}
	struct session_scope sc;
	if ((rc = sessions_scope(c, c->match.params[0], &sc)))
		return rc;
	json_t *stored = NULL;
	struct session_wake wake;
	rc = c->app->store->ops->session_post(c->app->store, &sc, c->match.params[0], events, clock_lease_us(), &stored,
					      &wake, &c->eb);
	if (rc)
		return not_found(c, rc);
	sessions_wake(c->app, &wake);
	sessions_reply_data(c, stored);
	json_decref(stored);
	return ERR_OK;
}
