/* session.c - session and event invariants (see session.h). */
#include "model/session.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "model/agent.h"
#include "model/fields.h"
#include "model/metadata.h"

const char *const session_event_types[] = {
	"user.message",		 "user.interrupt",	   "user.tool_confirmation", "user.tool_result",
	"user.custom_tool_result", "agent.message",	   "agent.tool_use",	     "agent.custom_tool_use",
	"session.status_running",  "session.status_idle",   "session.status_terminated", "session.error",
	"session.deleted",	 NULL};

int session_state_init(struct session_state *st)
{
	memset(st, 0, sizeof(*st));
	st->status = SESSION_IDLE;
	st->pending = json_object();
	st->required = json_array();
	if (!st->pending || !st->required) {
		session_state_clear(st);
		return -1;
	}
	return 0;
}

void session_state_clear(struct session_state *st)
{
	json_decref(st->pending);
	json_decref(st->required);
	st->pending = st->required = NULL;
}

int session_state_copy(struct session_state *dst, const struct session_state *src)
{
	*dst = *src;
	dst->pending = json_deep_copy(src->pending);
	dst->required = json_deep_copy(src->required);
	if (!dst->pending || !dst->required) {
		session_state_clear(dst);
		return -1;
	}
	return 0;
}

const char *session_status_name(enum session_status s)
{
	switch (s) {
	case SESSION_IDLE: return "idle";
	case SESSION_RUNNING: return "running";
	case SESSION_RESCHEDULING: return "rescheduling";
	case SESSION_TERMINATED: return "terminated";
	}
	return "idle";
}

int session_needs_worker(const struct session_state *st)
{
	if (st->status == SESSION_TERMINATED)
		return 0;
	if (st->awaiting_turn || st->turn_id[0])
		return 1;
	const char *id;
	json_t *p;
	json_object_foreach(st->pending, id, p)
	{
		if (!json_is_true(json_object_get(p, "custom")))
			return 1;
	}
	return 0;
}

/* A new event object {id, type, …, processed_at}; the caller sets the middle. */
static json_t *new_event(const char *id, const char *type, int64_t now)
{
	char ts[CLOCK_TS_LEN + 1];
	clock_format(now, ts);
	return json_pack("{s:s,s:s,s:s}", "id", id, "type", type, "processed_at", ts);
}

json_t *session_deleted_event(const char *id, int64_t now) { return new_event(id, "session.deleted", now); }

/* Content blocks: an array of 1..SESSION_BLOCKS_MAX objects whose type is one of `types`;
 * text blocks are checked in full, others are kept as sent. Returns a copy in *out. */
static enum err check_blocks(const json_t *v, const char *path, const char *const types[], int may_be_empty,
			     json_t **out, struct errbuf *eb)
{
	if (!json_is_array(v))
		return fields_type_error(path, "an array of content blocks", v, eb);
	size_t n = json_array_size(v);
	if (n == 0 && !may_be_empty)
		return errf(eb, ERR_INVALID, "%s: must hold at least one content block", path);
	if (n > SESSION_BLOCKS_MAX)
		return errf(eb, ERR_INVALID, "%s: at most %d content blocks", path, SESSION_BLOCKS_MAX);
	size_t i;
	json_t *b;
	json_array_foreach(v, i, b)
	{
		char p[96];
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (!json_is_object(b))
			return fields_type_error(p, "an object", b, eb);
		const char *type = json_string_value(json_object_get(b, "type"));
		int ok = 0;
		for (size_t t = 0; type && types[t]; t++)
			if (strcmp(type, types[t]) == 0)
				ok = 1;
		if (!ok) {
			char list[160] = "";
			for (size_t t = 0; types[t]; t++) {
				size_t len = strlen(list);
				snprintf(list + len, sizeof(list) - len, "%s%s", t ? ", " : "", types[t]);
			}
			return errf(eb, ERR_INVALID, "%s.type: expected one of %s", p, list);
		}
		if (strcmp(type, "text") == 0) {
			static const char *const text_fields[] = {"type", "text", NULL};
			enum err rc = fields_only(b, p, text_fields, eb);
			if (rc)
				return rc;
			const json_t *text = json_object_get(b, "text");
			if (!json_is_string(text)) {
				char q[112];
				snprintf(q, sizeof(q), "%s.text", p);
				return fields_type_error(q, "a string", text, eb);
			}
			if (utf8_chars(json_string_value(text), json_string_length(text)) > SESSION_TEXT_MAX)
				return errf(eb, ERR_INVALID, "%s.text: longer than %d characters", p, SESSION_TEXT_MAX);
		}
	}
	*out = json_deep_copy(v);
	return *out ? ERR_OK : ERR_NOMEM;
}

static const char *const user_blocks[] = {"text", "image", "document", NULL};
static const char *const result_blocks[] = {"text", "image", "document", "search_result", NULL};
static const char *const agent_blocks[] = {"text", NULL};

static enum err event_fields(const json_t *ev, const char *path, const char *const allowed[], struct errbuf *eb)
{
	return fields_only(ev, path, allowed, eb);
}

static enum err required_string(const json_t *ev, const char *path, const char *field, size_t max, const char **out,
				struct errbuf *eb)
{
	const json_t *v = json_object_get(ev, field);
	char p[96];
	snprintf(p, sizeof(p), "%s.%s", path, field);
	if (!json_is_string(v))
		return fields_type_error(p, "a string", v, eb);
	if (json_string_length(v) == 0 || json_string_length(v) > max)
		return errf(eb, ERR_INVALID, "%s: must be 1-%zu characters", p, max);
	*out = json_string_value(v);
	return ERR_OK;
}

/* Remove id from the `required` array; when it empties, the requires_action idle it came
 * from is fully answered. Returns 1 when it was the last one. */
static int answer_required(struct session_state *st, const char *id)
{
	size_t n = json_array_size(st->required);
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(json_string_value(json_array_get(st->required, i)), id) == 0) {
			json_array_remove(st->required, i);
			return json_array_size(st->required) == 0;
		}
	}
	return 0;
}

/* A session awaits a turn; with a turn live, its runner sees the input in the events and
 * the flag makes one more turn follow it. */
static void want_turn(struct session_state *st) { st->awaiting_turn = 1; }

static enum err tool_result(struct session_state *next, const json_t *ev, const char *path, int custom,
			    const char *id, int64_t now, session_tool_use_known_fn known, void *known_ctx,
			    json_t **stored, struct errbuf *eb)
{
	const char *field = custom ? "custom_tool_use_id" : "tool_use_id";
	static const char *const f_plain[] = {"type", "tool_use_id", "content", "is_error", NULL};
	static const char *const f_custom[] = {"type", "custom_tool_use_id", "content", "is_error", NULL};
	enum err rc = event_fields(ev, path, custom ? f_custom : f_plain, eb);
	const char *use_id;
	if (rc || (rc = required_string(ev, path, field, ID_MAX - 1, &use_id, eb)))
		return rc;
	json_t *content = NULL;
	const json_t *c = json_object_get(ev, "content");
	char p[96];
	snprintf(p, sizeof(p), "%s.content", path);
	if (c && !json_is_null(c) && (rc = check_blocks(c, p, result_blocks, 1, &content, eb)))
		return rc;
	const json_t *is_error = json_object_get(ev, "is_error");
	if (is_error && !json_is_null(is_error) && !json_is_boolean(is_error)) {
		json_decref(content);
		snprintf(p, sizeof(p), "%s.is_error", path);
		return fields_type_error(p, "a boolean or null", is_error, eb);
	}
	const json_t *p_use = json_object_get(next->pending, use_id);
	if (!p_use || json_is_true(json_object_get(p_use, "custom")) != custom) {
		json_decref(content);
		if (!p_use && known && known(known_ctx, use_id, custom)) {
			*stored = NULL; /* a duplicate of a recorded answer: nothing changes */
			return ERR_OK;
		}
		return errf(eb, ERR_INVALID, "%s.%s: \"%.64s\" is not an unanswered %s of this session", path, field,
			    use_id, custom ? "agent.custom_tool_use" : "agent.tool_use");
	}
	json_t *out = new_event(id, custom ? "user.custom_tool_result" : "user.tool_result", now);
	if (!out) {
		json_decref(content);
		return ERR_NOMEM;
	}
	json_object_set_new(out, field, json_string(use_id));
	json_object_set_new(out, "content", content ? content : json_array());
	json_object_set_new(out, "is_error", json_boolean(json_is_true(is_error)));
	json_object_del(next->pending, use_id);
	if (answer_required(next, use_id) && !next->turn_id[0])
		want_turn(next);
	*stored = out;
	return ERR_OK;
}

enum err session_client_events(const struct session_state *st, const json_t *events, const char (*ids)[ID_MAX],
			       int64_t now, int initial, session_tool_use_known_fn known, void *known_ctx,
			       struct session_state *next, json_t **stored, struct errbuf *eb)
{
	*stored = NULL;
	const char *base = initial ? "initial_events" : "events";
	if (!json_is_array(events))
		return fields_type_error(base, "an array of events", events, eb);
	size_t n = json_array_size(events);
	if (n == 0 && !initial)
		return errf(eb, ERR_INVALID, "%s: must hold at least one event", base);
	if (n > SESSION_EVENTS_MAX)
		return errf(eb, ERR_INVALID, "%s: at most %d events in one request", base, SESSION_EVENTS_MAX);
	if (st->status == SESSION_TERMINATED && n)
		return errf(eb, ERR_INVALID, "%s: the session is terminated: it takes no more events", base);
	if (session_state_copy(next, st))
		return ERR_NOMEM;
	json_t *out = json_array();
	if (!out) {
		session_state_clear(next);
		return ERR_NOMEM;
	}
	enum err rc = ERR_OK;
	size_t i;
	json_t *ev;
	size_t used = 0;
	json_array_foreach(events, i, ev)
	{
		char path[48];
		snprintf(path, sizeof(path), "%s[%zu]", base, i);
		if (!json_is_object(ev)) {
			rc = fields_type_error(path, "an event object", ev, eb);
			break;
		}
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *id = ids[used];
		json_t *one = NULL;
		if (!type) {
			rc = errf(eb, ERR_INVALID, "%s.type: required, a string", path);
		} else if (initial && strcmp(type, "user.message") != 0) {
			rc = errf(eb, ERR_INVALID, "%s.type: initial_events take user.message only, got \"%.64s\"",
				  path, type);
		} else if (strcmp(type, "user.message") == 0) {
			static const char *const f[] = {"type", "content", NULL};
			json_t *content = NULL;
			char p[64];
			snprintf(p, sizeof(p), "%s.content", path);
			if (!(rc = event_fields(ev, path, f, eb)) &&
			    !(rc = check_blocks(json_object_get(ev, "content"), p, user_blocks, 0, &content, eb))) {
				one = new_event(id, type, now);
				if (one) {
					json_object_set_new(one, "content", content);
					want_turn(next);
				} else {
					json_decref(content);
				}
			}
		} else if (strcmp(type, "user.interrupt") == 0) {
			static const char *const f[] = {"type", "session_thread_id", NULL};
			const json_t *thread = json_object_get(ev, "session_thread_id");
			if (!(rc = event_fields(ev, path, f, eb))) {
				if (thread && !json_is_null(thread) &&
				    (!json_is_string(thread) || json_string_length(thread) > 256))
					rc = errf(eb, ERR_INVALID, "%s.session_thread_id: expected a string of at most 256 "
						  "characters or null", path);
				else if ((one = new_event(id, type, now)))
					json_object_set_new(one, "session_thread_id",
							    thread && !json_is_null(thread) ? json_deep_copy(thread)
											    : json_null());
			}
		} else if (strcmp(type, "user.tool_confirmation") == 0) {
			static const char *const f[] = {"type", "tool_use_id", "result", "deny_message", NULL};
			const char *use_id, *result = json_string_value(json_object_get(ev, "result"));
			const json_t *deny = json_object_get(ev, "deny_message");
			if ((rc = event_fields(ev, path, f, eb)) ||
			    (rc = required_string(ev, path, "tool_use_id", ID_MAX - 1, &use_id, eb))) {
			} else if (!result || (strcmp(result, "allow") != 0 && strcmp(result, "deny") != 0)) {
				rc = errf(eb, ERR_INVALID, "%s.result: expected \"allow\" or \"deny\"", path);
			} else if (deny && !json_is_null(deny) && (!json_is_string(deny) || json_string_length(deny) > 4096)) {
				rc = errf(eb, ERR_INVALID, "%s.deny_message: expected a string of at most 4096 bytes or null",
					  path);
			} else {
				const json_t *p_use = json_object_get(next->pending, use_id);
				if (!p_use || json_is_true(json_object_get(p_use, "custom"))) {
					rc = errf(eb, ERR_INVALID,
						  "%s.tool_use_id: \"%.64s\" is not an unanswered agent.tool_use of this session",
						  path, use_id);
				} else if ((one = new_event(id, type, now))) {
					json_object_set_new(one, "tool_use_id", json_string(use_id));
					json_object_set_new(one, "result", json_string(result));
					json_object_set_new(one, "deny_message",
							    deny && !json_is_null(deny) ? json_deep_copy(deny) : json_null());
					if (strcmp(result, "deny") == 0) {
						/* A denied call is never run: the denial is its answer. */
						json_object_del(next->pending, use_id);
						answer_required(next, use_id);
					}
					want_turn(next);
				}
			}
		} else if (strcmp(type, "user.tool_result") == 0 || strcmp(type, "user.custom_tool_result") == 0) {
			rc = tool_result(next, ev, path, strcmp(type, "user.custom_tool_result") == 0, id, now, known,
					 known_ctx, &one, eb);
			if (!rc && !one)
				continue; /* duplicate: stored nothing, used no id */
		} else {
			rc = errf(eb, ERR_INVALID,
				  "%s.type: \"%.64s\" is not an event a client may send (user.message, user.interrupt, "
				  "user.tool_confirmation, user.tool_result, user.custom_tool_result)",
				  path, type);
		}
		if (rc)
			break;
		if (!one) {
			rc = ERR_NOMEM;
			break;
		}
		json_array_append_new(out, one);
		used++;
	}
	if (rc) {
		json_decref(out);
		session_state_clear(next);
		return rc;
	}
	*stored = out;
	return ERR_OK;
}

/* Is the set of strings in `ids` exactly the keys of `pending`? */
static int same_set(const json_t *ids, const json_t *pending)
{
	if (json_array_size(ids) != json_object_size(pending))
		return 0;
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		if (!json_is_string(v) || !json_object_get(pending, json_string_value(v)))
			return 0;
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_array_get(ids, j), v))
				return 0;
	}
	return 1;
}

static enum err agent_one(struct session_state *next, const json_t *agent, const json_t *ev, const char *path,
			  const char *id, int64_t now, json_t **one, int *ended, struct errbuf *eb)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	enum err rc;
	if (!type)
		return errf(eb, ERR_INVALID, "%s.type: required, a string", path);
	if (strcmp(type, "session.status_running") == 0 || strcmp(type, "session.status_terminated") == 0) {
		static const char *const f[] = {"type", NULL};
		if ((rc = event_fields(ev, path, f, eb)))
			return rc;
		if (!(*one = new_event(id, type, now)))
			return ERR_NOMEM;
		if (type[15] == 'r') {
			next->status = SESSION_RUNNING;
		} else {
			next->status = SESSION_TERMINATED;
			next->awaiting_turn = 0;
			*ended = 1;
		}
		return ERR_OK;
	}
	if (strcmp(type, "agent.message") == 0) {
		static const char *const f[] = {"type", "content", NULL};
		json_t *content = NULL;
		char p[64];
		snprintf(p, sizeof(p), "%s.content", path);
		if ((rc = event_fields(ev, path, f, eb)) ||
		    (rc = check_blocks(json_object_get(ev, "content"), p, agent_blocks, 0, &content, eb)))
			return rc;
		if (!(*one = new_event(id, type, now))) {
			json_decref(content);
			return ERR_NOMEM;
		}
		json_object_set_new(*one, "content", content);
		return ERR_OK;
	}
	if (strcmp(type, "agent.tool_use") == 0 || strcmp(type, "agent.custom_tool_use") == 0) {
		int custom = type[6] == 'c';
		static const char *const f[] = {"type", "name", "input", NULL};
		const char *name;
		if ((rc = event_fields(ev, path, f, eb)) ||
		    (rc = required_string(ev, path, "name", AGENT_TOOL_NAME_MAX, &name, eb)))
			return rc;
		if (custom ? !agent_has_custom_tool(agent, name) : !agent_has_toolset_tool(agent, name))
			return errf(eb, ERR_INVALID, "%s.name: \"%.128s\" is not %s of this session's agent", path, name,
				    custom ? "a custom tool" : "an enabled tool of its agent_toolset_20260401");
		const json_t *input = json_object_get(ev, "input");
		if (!json_is_object(input)) {
			char p[64];
			snprintf(p, sizeof(p), "%s.input", path);
			return fields_type_error(p, "an object", input, eb);
		}
		if (!(*one = new_event(id, type, now)))
			return ERR_NOMEM;
		json_object_set_new(*one, "name", json_string(name));
		json_object_set_new(*one, "input", json_deep_copy(input));
		json_object_set_new(*one, "session_thread_id", json_null());
		json_object_set_new(next->pending, id, json_pack("{s:s,s:b}", "name", name, "custom", custom));
		return ERR_OK;
	}
	if (strcmp(type, "session.status_idle") == 0) {
		static const char *const f[] = {"type", "stop_reason", NULL};
		if ((rc = event_fields(ev, path, f, eb)))
			return rc;
		const json_t *sr = json_object_get(ev, "stop_reason");
		char p[64];
		snprintf(p, sizeof(p), "%s.stop_reason", path);
		if (!json_is_object(sr))
			return fields_type_error(p, "an object", sr, eb);
		const char *kind = json_string_value(json_object_get(sr, "type"));
		if (kind && strcmp(kind, "end_turn") == 0) {
			static const char *const f_end[] = {"type", NULL};
			if ((rc = fields_only(sr, p, f_end, eb)))
				return rc;
			if (json_object_size(next->pending))
				return errf(eb, ERR_INVALID,
					    "%s.type: end_turn while %zu tool use(s) are unanswered: use requires_action "
					    "listing them", p, json_object_size(next->pending));
			json_array_clear(next->required);
		} else if (kind && strcmp(kind, "requires_action") == 0) {
			static const char *const f_ra[] = {"type", "event_ids", NULL};
			if ((rc = fields_only(sr, p, f_ra, eb)))
				return rc;
			const json_t *ids = json_object_get(sr, "event_ids");
			if (!json_is_array(ids))
				return errf(eb, ERR_INVALID, "%s.event_ids: expected an array of event ids", p);
			if (json_object_size(next->pending) == 0)
				return errf(eb, ERR_INVALID, "%s.type: requires_action with no unanswered tool use", p);
			if (!same_set(ids, next->pending))
				return errf(eb, ERR_INVALID,
					    "%s.event_ids: must list exactly the %zu unanswered tool use event id(s), "
					    "each once", p, json_object_size(next->pending));
			json_decref(next->required);
			next->required = json_deep_copy(ids);
			if (!next->required)
				return ERR_NOMEM;
		} else {
			return errf(eb, ERR_INVALID, "%s.type: expected \"end_turn\" or \"requires_action\"", p);
		}
		if (!(*one = new_event(id, type, now)))
			return ERR_NOMEM;
		json_object_set_new(*one, "stop_reason", json_deep_copy(sr));
		json_object_set_new(*one, "stop_details", json_null());
		next->status = SESSION_IDLE;
		*ended = 1;
		return ERR_OK;
	}
	if (strcmp(type, "session.error") == 0) {
		static const char *const f[] = {"type", "error", NULL};
		if ((rc = event_fields(ev, path, f, eb)))
			return rc;
		const json_t *e = json_object_get(ev, "error");
		char p[64];
		snprintf(p, sizeof(p), "%s.error", path);
		if (!json_is_object(e))
			return fields_type_error(p, "an object", e, eb);
		const char *etype;
		const char *msg;
		if ((rc = required_string(e, p, "type", 64, &etype, eb)) ||
		    (rc = required_string(e, p, "message", 4096, &msg, eb)))
			return rc;
		if (!(*one = new_event(id, type, now)))
			return ERR_NOMEM;
		json_object_set_new(*one, "error", json_deep_copy(e));
		return ERR_OK;
	}
	return errf(eb, ERR_INVALID,
		    "%s.type: \"%.64s\" is not an agent-side event (session.status_running, agent.message, "
		    "agent.tool_use, agent.custom_tool_use, session.status_idle, session.status_terminated, "
		    "session.error)", path, type);
}

enum err session_agent_events(const struct session_state *st, const json_t *agent, const json_t *events,
			      const char (*ids)[ID_MAX], int64_t now, struct session_state *next, json_t **stored,
			      int *turn_ended, struct errbuf *eb)
{
	*stored = NULL;
	*turn_ended = 0;
	if (!json_is_array(events))
		return fields_type_error("events", "an array of events", events, eb);
	size_t n = json_array_size(events);
	if (n == 0)
		return errf(eb, ERR_INVALID, "events: must hold at least one event");
	if (n > SESSION_EVENTS_MAX)
		return errf(eb, ERR_INVALID, "events: at most %d events in one request", SESSION_EVENTS_MAX);
	if (st->status == SESSION_TERMINATED)
		return errf(eb, ERR_INVALID, "events: the session is terminated: it takes no more events");
	if (session_state_copy(next, st))
		return ERR_NOMEM;
	json_t *out = json_array();
	enum err rc = out ? ERR_OK : ERR_NOMEM;
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev)
	{
		if (rc)
			break;
		char path[32];
		snprintf(path, sizeof(path), "events[%zu]", i);
		if (*turn_ended) {
			rc = errf(eb, ERR_INVALID, "%s: comes after the event that ended the turn", path);
			break;
		}
		if (!json_is_object(ev)) {
			rc = fields_type_error(path, "an event object", ev, eb);
			break;
		}
		json_t *one = NULL;
		rc = agent_one(next, agent, ev, path, ids[i], now, &one, turn_ended, eb);
		if (!rc)
			json_array_append_new(out, one);
	}
	if (rc) {
		json_decref(out);
		session_state_clear(next);
		*turn_ended = 0;
		return rc;
	}
	if (*turn_ended)
		next->turn_id[0] = '\0';
	*stored = out;
	return ERR_OK;
}
