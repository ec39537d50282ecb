/* sessions.h - the agents, sessions, events and agent-turn routes (SPEC §6 and the agent
 * extension), and what they share: who reaches which session, the JSON shapes, and the
 * wake-ups that follow a commit. */
#ifndef ENVIROND_API_SESSIONS_H
#define ENVIROND_API_SESSIONS_H

#include "api/call.h"

/* agents.c */
enum err agents_create(struct call *c);
enum err agents_get(struct call *c);
enum err agents_list(struct call *c);
enum err agents_update(struct call *c);
enum err agents_archive(struct call *c);
enum err agents_versions(struct call *c);

/* sessions.c */
enum err sessions_create(struct call *c);
enum err sessions_get(struct call *c);
enum err sessions_list(struct call *c);
enum err sessions_update(struct call *c);
enum err sessions_archive(struct call *c);
enum err sessions_delete(struct call *c);

/* session_events.c */
enum err session_events_list(struct call *c);
enum err session_events_post(struct call *c);
/* session_stream.c */
enum err session_events_stream(struct call *c);

/* agent_turns.c */
enum err agent_turns_poll(struct call *c);
enum err agent_turns_heartbeat(struct call *c);
enum err agent_turns_events(struct call *c);

/* The sessions the caller's credential reaches, for the session named `id`: an API key,
 * its tenant's; an environment key, its environment's; a session token, its own item's
 * session only (403 otherwise); an agent key, its organization's (and workspace's). */
enum err sessions_scope(struct call *c, const char *id, struct session_scope *sc);

/* After a commit: wake the session's streams, the environment's polls and the turn polls
 * as `w` says. */
void sessions_wake(struct app *a, const struct session_wake *w);
/* Wake every held turn poll of an organization. */
void sessions_wake_turns(struct app *a, const char *org);

/* Reply {"data": events} (200). */
void sessions_reply_data(struct call *c, const json_t *events);
/* The message for a store error: ERR_NOT_FOUND names `what` and the id of the path. */
enum err sessions_store_error(struct call *c, enum err rc, const char *what);

/* JSON shapes. */
void encode_agent(struct jsonw *w, const struct agent_rec *a);
void encode_session(struct jsonw *w, const struct session_rec *r, int64_t now);

/* The waiter key of a session's streams and of an organization's turn polls. */
void sessions_stream_key(const char *session_id, char out[WAITER_KEY_MAX]);
void sessions_turn_key(const char *org, char out[WAITER_KEY_MAX]);

#endif
