/* session_watch.h - `environd session watch`: print a session's events as they happen.
 *
 * Each connection opens the SSE stream first and then lists the events already there (the
 * stream carries only events committed after it opened, so listing second leaves no gap);
 * after a dropped connection it reconnects with Last-Event-ID and lists again. An event id
 * is never printed twice. It returns when the session terminates or is deleted (or, with
 * until_idle, goes idle waiting on no one). */
#ifndef ENVIROND_CLI_SESSION_WATCH_H
#define ENVIROND_CLI_SESSION_WATCH_H

#include "client/client.h"

/* The longest a stream may stay silent (no event, no keepalive) before it is taken for
 * dead and reopened: the server sends a keepalive at least every 15 s. */
#define WATCH_SILENCE_S 45
#define WATCH_MAX_EVENT (4u << 20)

struct watch_options {
	int until_idle;
	int json;           /* print each event's JSON instead of a rendered line */
};

/* Returns the exit status: 0 when the session ended (or went idle with until_idle);
 * 1 when the server refused (unknown session, bad key) or the stream broke for good. */
int session_watch(struct client *c, const char *session_id, const struct watch_options *opt);

#endif
