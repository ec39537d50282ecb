/* session_paths.h - the request paths of a session's events, shared by the agent runner
 * and the session commands. */
#ifndef ENVIROND_SESSION_PATHS_H
#define ENVIROND_SESSION_PATHS_H

#include "common/buf.h"

/* The events list, oldest first, 1000 a page: `/v1/sessions/ID/events?order=asc&limit=1000`,
 * with `&page=PAGE` when page is not NULL. Appends to path; check path->failed. */
void session_events_page_path(struct buf *path, const char *session_id, const char *page);

#endif
