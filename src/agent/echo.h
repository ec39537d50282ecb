/* echo.h - the echo agent's decisions, as pure functions of a session's transcript.
 *
 * The echo agent (model `environd-echo`) is no model: it turns the text of a user message
 * into one `bash` tool use, and once the worker has answered it, reports what the command
 * printed. It proves the loop producer -> server -> agent -> worker -> agent -> producer
 * without a language model, so it must never sound like one.
 *
 * echo_plan() reads the events of a session (oldest first, as `GET .../events?order=asc`
 * returns them) and says what the next turn does; the echo_*_event() functions build the
 * agent events the runner posts. Nothing here does I/O. */
#ifndef ENVIROND_AGENT_ECHO_H
#define ENVIROND_AGENT_ECHO_H

#include <jansson.h>
#include <stddef.h>

#define ECHO_MODEL "environd-echo"
/* The most of one tool's output an agent.message quotes, in bytes. */
#define ECHO_QUOTE_MAX (32u * 1024u)
/* The longest command it will run: a message longer than this is refused, not cut. */
#define ECHO_COMMAND_MAX (64u * 1024u)

enum echo_action {
	ECHO_NOTHING,      /* no input waits for an answer: end the turn idle, end_turn */
	ECHO_RUN_COMMAND,  /* post one bash tool use for `text`, then idle requires_action */
	ECHO_REPORT,       /* post an agent.message of `text`, then idle end_turn */
	ECHO_AWAIT,        /* tool uses are still unanswered: idle requires_action on `pending` */
};

/* A turn's plan. Owned: echo_plan_free() releases text and pending. */
struct echo_plan {
	enum echo_action action;
	char *text;        /* the command (RUN_COMMAND) or the message (REPORT); else NULL */
	json_t *pending;   /* AWAIT: the array of unanswered tool use ids; else NULL */
};

/* Decide the next turn from the transcript (a JSON array of events, oldest first).
 * Returns 0, or -1 when memory ran out (*plan is then empty). */
int echo_plan(const json_t *events, struct echo_plan *plan);
void echo_plan_free(struct echo_plan *plan);

/* The events the runner posts; each returns a new reference, NULL when memory ran out. */
json_t *echo_running_event(void);
json_t *echo_tool_use_event(const char *command);
json_t *echo_message_event(const char *text);
json_t *echo_idle_end_turn_event(void);
/* ids: an array of tool use event ids (borrowed). */
json_t *echo_idle_requires_action_event(const json_t *ids);

#endif
