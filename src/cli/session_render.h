/* session_render.h - one line of text per session event, for `environd session watch`:
 * the type and a short rendering (message text, tool name and command, tool result text,
 * stop reason). Control characters are shown escaped, so an event is always one line. */
#ifndef ENVIROND_CLI_SESSION_RENDER_H
#define ENVIROND_CLI_SESSION_RENDER_H

#include <jansson.h>

#include "common/buf.h"

/* The most of an event's text one line shows, in bytes (before escaping). */
#define RENDER_TEXT_MAX 240

/* Append the line for ev (without a newline) to out. */
void session_render(const json_t *ev, struct buf *out);

/* What a watcher does after ev: go on, or stop because the session ended (terminated or
 * deleted) or, with until_idle, went idle waiting on no one (any stop reason but
 * requires_action). */
enum watch_next { WATCH_GO_ON, WATCH_ENDED, WATCH_IDLE };
enum watch_next session_watch_next(const json_t *ev, int until_idle);

#endif
