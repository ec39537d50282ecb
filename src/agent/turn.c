/* turn.c - one turn of the echo agent: read the session's events, post what the echo
 * agent decides, end the turn idle (see runner.h).
 *
 * A POST whose reply never arrived may or may not have been stored, so it is never sent
 * again as is: the turn starts over from the transcript instead, and echo_plan() sees
 * what was already posted and goes on from there. Refusals other than 412 are logged and
 * the turn is dropped; the server hands it out again once its lease runs out. */
#include "agent/runner_int.h"

#include <stdio.h>
#include <string.h>

#include "agent/echo.h"
#include "client/session_paths.h"
#include "common/buf.h"
#include "common/log.h"

/* Retries of one request before the turn gives up on it. */
#define CALL_ATTEMPTS 8
/* Times a turn starts over after a POST whose outcome is unknown. */
#define TURN_CYCLES 5
/* A transcript longer than this many pages of 1000 events is not read. */
#define TRANSCRIPT_MAX_PAGES 100

/* CALL_REPLAN: the server refused a post as not fitting the transcript (400), which can
 * change under a turn: a worker may answer a tool use before the requires_action that
 * lists it is posted. Reading the transcript again tells what to post instead. */
enum call_result { CALL_OK, CALL_LOST, CALL_UNKNOWN, CALL_REPLAN, CALL_FAILED };

struct turn {
	struct agent_slot *s;
	const char *id;
	const char *session_id;
	char path[TURN_ID_MAX + 64];
};

/* One request with retries. GETs are retried on every transient failure; POSTs only when
 * the server answered (429, 5xx), as those were not applied. *r holds the last reply. */
static enum call_result call(struct turn *t, const char *method, const char *path, const char *body,
			     struct client_reply *r)
{
	int is_post = strcmp(method, "POST") == 0;
	for (int attempt = 0;; attempt++) {
		client_request(&t->s->client, method, path, body, NULL, RUNNER_REQUEST_TIMEOUT_MS, r);
		if (r->status >= 200 && r->status < 300 && !r->bad_body)
			return CALL_OK;
		if (r->canceled || atomic_load(&t->s->cancel) ||
		    (r->status == 412 && strcmp(r->error_code, "turn_lost") == 0))
			return CALL_LOST;
		if (is_post && r->status == 400) {
			log_event(LOG_INFO, "turn_replan", "turn_id", t->id, "session_id", t->session_id, "error", r->message,
				  NULL);
			return CALL_REPLAN;
		}
		if (!client_is_transient(r) || attempt + 1 >= CALL_ATTEMPTS) {
			log_event(LOG_ERROR, "turn_request_failed", "turn_id", t->id, "session_id", t->session_id,
				  "method", method, "path", path, "error", r->message, "error_code", r->error_code, NULL);
			return CALL_FAILED;
		}
		if (is_post && r->status == 0)
			return CALL_UNKNOWN;
		log_event(LOG_WARN, "turn_request_retry", "turn_id", t->id, "method", method, "error", r->message, NULL);
		int retry_after = r->retry_after_s;
		client_reply_free(r);
		if (agent_slot_sleep(t->s, agent_backoff_us(attempt, retry_after)))
			return CALL_LOST;
	}
}

/* Post events (a JSON array, borrowed) to the turn; on success *stored is the reply's
 * `data` (a new reference) when stored is not NULL. */
static enum call_result post_events(struct turn *t, json_t *events, json_t **stored)
{
	json_t *body = json_pack("{s:O}", "events", events);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return CALL_FAILED;
	struct client_reply r;
	enum call_result res = call(t, "POST", t->path, text, &r);
	free(text);
	if (res == CALL_OK && stored) {
		json_t *data = json_object_get(r.body, "data");
		*stored = json_is_array(data) ? json_incref(data) : NULL;
		if (!*stored)
			res = CALL_UNKNOWN;
	}
	client_reply_free(&r);
	return res;
}

/* Read the whole transcript, oldest first, into *events (a new array). */
static enum call_result read_transcript(struct turn *t, json_t **events)
{
	*events = json_array();
	if (!*events)
		return CALL_FAILED;
	char *page = NULL;
	enum call_result res = CALL_OK;
	for (int n = 0; res == CALL_OK; n++) {
		if (n >= TRANSCRIPT_MAX_PAGES) {
			log_event(LOG_ERROR, "transcript_too_long", "session_id", t->session_id, NULL);
			res = CALL_FAILED;
			break;
		}
		struct buf path;
		buf_init(&path, 4096);
		session_events_page_path(&path, t->session_id, page);
		free(page);
		page = NULL;
		struct client_reply r;
		res = path.failed ? CALL_FAILED : call(t, "GET", path.data, NULL, &r);
		buf_free(&path);
		if (res != CALL_OK)
			break;
		json_t *data = json_object_get(r.body, "data");
		const char *next = client_json_str(r.body, "next_page");
		if (!json_is_array(data) || json_array_extend(*events, data)) {
			res = CALL_FAILED;
		} else if (next && *next && json_array_size(data) > 0) {
			page = strdup(next);
			if (!page)
				res = CALL_FAILED;
		} else {
			client_reply_free(&r);
			break;
		}
		client_reply_free(&r);
	}
	free(page);
	if (res != CALL_OK) {
		json_decref(*events);
		*events = NULL;
	}
	return res;
}

static const char *action_name(enum echo_action a)
{
	switch (a) {
	case ECHO_RUN_COMMAND: return "run_command";
	case ECHO_REPORT: return "report";
	case ECHO_AWAIT: return "await";
	default: return "nothing";
	}
}

/* Post one batch built from events (stolen; NULL means out of memory). */
static enum call_result post_new(struct turn *t, json_t *events, json_t **stored)
{
	if (!events)
		return CALL_FAILED;
	enum call_result res = post_events(t, events, stored);
	json_decref(events);
	return res;
}

/* Read, decide and post once. */
static enum call_result cycle(struct turn *t)
{
	json_t *events;
	enum call_result res = read_transcript(t, &events);
	if (res != CALL_OK)
		return res;
	struct echo_plan plan;
	int oom = echo_plan(events, &plan);
	json_decref(events);
	if (oom)
		return CALL_FAILED;
	log_event(LOG_DEBUG, "turn_plan", "turn_id", t->id, "action", action_name(plan.action), NULL);
	switch (plan.action) {
	case ECHO_RUN_COMMAND: {
		json_t *stored = NULL;
		res = post_new(t, json_pack("[o]", echo_tool_use_event(plan.text)), &stored);
		if (res != CALL_OK)
			break;
		const char *id = client_json_str(json_array_get(stored, 0), "id");
		json_t *ids = id ? json_pack("[s]", id) : NULL;
		json_decref(stored);
		if (!ids) {
			/* Stored, but the id is unknown: the next cycle finds it in the transcript. */
			res = CALL_UNKNOWN;
			break;
		}
		res = post_new(t, json_pack("[o]", echo_idle_requires_action_event(ids)), NULL);
		json_decref(ids);
		break;
	}
	case ECHO_AWAIT:
		res = post_new(t, json_pack("[o]", echo_idle_requires_action_event(plan.pending)), NULL);
		break;
	case ECHO_REPORT:
		res = post_new(t, json_pack("[oo]", echo_message_event(plan.text), echo_idle_end_turn_event()), NULL);
		break;
	case ECHO_NOTHING:
		res = post_new(t, json_pack("[o]", echo_idle_end_turn_event()), NULL);
		break;
	}
	if (res == CALL_OK)
		log_event(LOG_INFO, "turn_done", "turn_id", t->id, "session_id", t->session_id, "action",
			  action_name(plan.action), NULL);
	echo_plan_free(&plan);
	return res;
}

int turn_serve(struct agent_slot *s, const json_t *turn_json)
{
	struct turn t = {
		.s = s,
		.id = client_json_str(turn_json, "id"),
		.session_id = client_json_str(turn_json, "session_id"),
	};
	if (!t.id || !t.session_id || strlen(t.id) > TURN_ID_MAX) {
		log_event(LOG_ERROR, "bad_turn", "reason", "the poll's reply holds no usable id or session_id", NULL);
		return -1;
	}
	struct buf path;
	buf_init(&path, sizeof(t.path) - 1);
	buf_puts(&path, "/v1/environd/agent/turns/");
	client_put_escaped(&path, t.id);
	buf_puts(&path, "/events");
	if (path.failed) {
		buf_free(&path);
		return -1;
	}
	memcpy(t.path, path.data, path.len + 1);
	buf_free(&path);
	log_event(LOG_INFO, "turn_start", "turn_id", t.id, "session_id", t.session_id, NULL);

	enum call_result res = post_new(&t, json_pack("[o]", echo_running_event()), NULL);
	for (int n = 0; n < TURN_CYCLES && (res == CALL_OK || res == CALL_UNKNOWN || res == CALL_REPLAN); n++) {
		res = cycle(&t);
		if (res == CALL_OK)
			return 0;
		if (res == CALL_UNKNOWN)
			log_event(LOG_WARN, "turn_retry", "turn_id", t.id, "reason", "a post's outcome is unknown", NULL);
	}
	if (res == CALL_REPLAN)
		res = CALL_FAILED; /* refused on every reading of the transcript */
	log_event(res == CALL_LOST ? LOG_WARN : LOG_ERROR, "turn_dropped", "turn_id", t.id, "session_id", t.session_id,
		  "reason", res == CALL_LOST ? "the turn is no longer held" : "the server refused it", NULL);
	return -1;
}
