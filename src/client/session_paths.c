/* session_paths.c - the request paths of a session's events (see session_paths.h). */
#include "client/session_paths.h"

#include "client/client.h"

void session_events_page_path(struct buf *path, const char *session_id, const char *page)
{
	buf_puts(path, "/v1/sessions/");
	client_put_escaped(path, session_id);
	buf_puts(path, "/events?order=asc&limit=1000");
	if (page) {
		buf_puts(path, "&page=");
		client_put_escaped(path, page);
	}
}
