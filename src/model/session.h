/* session.h - the session and event invariants, as pure functions of (state, events, now).
 *
 * A session's state is what decides which events may come next: its status, which tool
 * uses are still unanswered, which ones its last requires_action idle listed, whether it
 * awaits an agent turn and which turn (if any) is live. Clients (users, workers) post
 * user.* events; the agent side posts agent.* and session.* events while it holds a turn
 * (the agent extension). Each function validates a whole batch and either refuses it
 * (nothing changes, the message names events[i] and the field) or returns the events to
 * store, in their stored shape, and the state after them. No I/O. */
#ifndef ENVIROND_MODEL_SESSION_H
#define ENVIROND_MODEL_SESSION_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ids.h"

#define SESSION_EVENTS_MAX 100       /* events in one post */
#define SESSION_BLOCKS_MAX 100       /* content blocks in one event */
#define SESSION_TEXT_MAX (256 * 1024) /* characters of one text block */

/* Stored as these numbers (pinned). */
enum session_status { SESSION_IDLE = 0, SESSION_RUNNING = 1, SESSION_RESCHEDULING = 2, SESSION_TERMINATED = 3 };

/* A session's state. `pending` maps each unanswered tool use's event id to
 * {"name":…,"custom":bool}; `required` is the array of ids the last requires_action idle
 * listed that are not answered yet. Both are owned (session_state_clear releases them). */
struct session_state {
	enum session_status status;
	int awaiting_turn;         /* input arrived that no claimed turn has taken yet */
	char turn_id[ID_MAX];      /* the live turn, "" when none */
	int64_t turn_expires_at;   /* wall µs */
	json_t *pending;
	json_t *required;
};

/* Fresh state of a new session (idle, nothing pending). 0, or -1 out of memory. */
int session_state_init(struct session_state *st);
void session_state_clear(struct session_state *st);
/* Deep copy; 0, or -1 out of memory. */
int session_state_copy(struct session_state *dst, const struct session_state *src);

const char *session_status_name(enum session_status s);

/* Does the session need a worker (a live work item)? While it awaits or runs a turn, or
 * while a tool use that a worker runs (agent.tool_use) is unanswered. Never once terminated. */
int session_needs_worker(const struct session_state *st);

/* Was the tool use with this id ever recorded in the session (answered or not)? Asked of
 * the store for tool results that are not pending, to tell a duplicate from a stranger. */
typedef int (*session_tool_use_known_fn)(void *ctx, const char *tool_use_id, int custom);

/* Validate and apply client events (`events`: the body's array). ids[i] is the id the i-th
 * event gets if stored. On success *stored is a new array of the events to store, in order
 * (a duplicate tool result is left out: it changes nothing), and *next the new state
 * (initialised here; the caller clears it). `initial` is set for a create's
 * initial_events, where only user.message is allowed. */
enum err session_client_events(const struct session_state *st, const json_t *events, const char (*ids)[ID_MAX],
			       int64_t now, int initial, session_tool_use_known_fn known, void *known_ctx,
			       struct session_state *next, json_t **stored, struct errbuf *eb);

/* Validate and apply events of the agent side, posted under the live turn (the caller has
 * checked that the turn is held). `agent` is the session's agent snapshot (for its tools).
 * *turn_ended is set when the batch ends the turn (session.status_idle or
 * session.status_terminated). Same ownership as session_client_events. */
enum err session_agent_events(const struct session_state *st, const json_t *agent, const json_t *events,
			      const char (*ids)[ID_MAX], int64_t now, struct session_state *next, json_t **stored,
			      int *turn_ended, struct errbuf *eb);

/* The event a deletion appends (session.deleted). New reference. */
json_t *session_deleted_event(const char *id, int64_t now);

/* Client event types, to check a types[] filter against (NULL-terminated). */
extern const char *const session_event_types[];

#endif
