/* session_stream.c - GET /v1/sessions/{id}/events/stream: a session's live events as
 * Server-Sent Events.
 *
 * The reply's headers go out at once with an opening comment. The stream then lives in
 * the HTTP layer's content callback: it sends the events committed after it opened
 * (frames `id:`, `event:`, `data:`, with the same ids as the list), and when there is
 * nothing to send it parks in wait/ under the session's key, its connection suspended (no
 * thread held), until an append wakes it or its keepalive is due. Each wake-up checks
 * whether the client went away and ends the stream if so. A deleted session's stream
 * sends session.deleted and ends. The SDK lists the history itself and de-duplicates by
 * id, so the stream carries live events only; a client that reconnects with
 * Last-Event-ID gets the events after that one first. */
#include "api/sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define STREAM_BATCH 64
#define STREAM_BUF_MAX (16 * 1024 * 1024)

/* One open stream; owned by the HTTP reply (freed by stream_free when it is done). */
struct event_stream {
	struct app *app;
	struct http_request *req;
	struct waiter waiter;
	char session_id[ID_MAX];
	int64_t seq;              /* last event sent */
	struct buf out;           /* bytes not yet handed to the connection */
	size_t out_off;
	int opened;
	int ending;               /* send what is buffered, then end */
	int64_t keepalive_mono;   /* next keepalive comment */
};

static void stream_free(void *cls)
{
	struct event_stream *s = cls;
	buf_free(&s->out);
	free(s);
}

static void frame(struct event_stream *s, const json_t *ev)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	const char *type = json_string_value(json_object_get(ev, "type"));
	char *data = json_dumps(ev, JSON_COMPACT);
	if (!id || !type || !data) {
		free(data);
		s->out.failed = 2;
		return;
	}
	buf_printf(&s->out, "id: %s\nevent: %s\ndata: %s\n\n", id, type, data);
	free(data);
	if (strcmp(type, "session.deleted") == 0)
		s->ending = 1;
}

/* Read what was appended since s->seq into s->out. Returns -1 when the stream must end. */
static int fill(struct event_stream *s)
{
	struct event_page p;
	int deleted = 0;
	enum err rc = s->app->store->ops->session_events_since(s->app->store, s->session_id, s->seq, STREAM_BATCH, &p,
								&deleted);
	if (rc)
		return rc == ERR_NOT_FOUND ? -1 : 0; /* a store hiccup: try again at the next wake */
	size_t i;
	json_t *ev;
	json_array_foreach(p.items, i, ev) frame(s, ev);
	if (json_array_size(p.items))
		s->seq = p.last_seq;
	int more = p.more;
	event_page_clear(&p);
	if (s->out.failed)
		return -1;
	if (deleted && !more)
		s->ending = 1;
	return 0;
}

static long drain(struct event_stream *s, char *buf, size_t max)
{
	size_t left = s->out.len - s->out_off;
	size_t n = left < max ? left : max;
	memcpy(buf, s->out.data + s->out_off, n);
	s->out_off += n;
	if (s->out_off == s->out.len) {
		buf_reset(&s->out);
		s->out_off = 0;
	}
	return (long)n;
}

static long stream_next(void *cls, char *buf, size_t max)
{
	struct event_stream *s = cls;
	if (s->out.len > s->out_off)
		return drain(s, buf, max);
	if (s->ending || atomic_load(&s->app->stopping))
		return -1;
	if (!s->opened) {
		s->opened = 1;
		buf_puts(&s->out, ": stream open\n\n");
		return drain(s, buf, max);
	}
	if (http_peer_closed(s->req))
		return -1; /* the client went away: release the stream now */
	for (int attempt = 0; attempt < 100; attempt++) {
		uint64_t seen = waiters_seq(s->app->waiters, s->waiter.env_id);
		if (fill(s) < 0)
			return -1;
		if (s->out.len)
			return drain(s, buf, max);
		if (s->ending)
			return -1;
		int64_t now = clock_mono_us();
		if (now >= s->keepalive_mono) {
			s->keepalive_mono = now + s->app->stream_keepalive_us;
			buf_puts(&s->out, ": keepalive\n\n");
			return drain(s, buf, max);
		}
		s->waiter.wake_mono = s->keepalive_mono;
		int parked = waiters_park(s->app->waiters, &s->waiter, seen);
		if (parked == 0)
			return 0; /* suspended until an append or the keepalive */
		if (parked < 0)
			return -1;
	}
	return -1;
}

enum err session_events_stream(struct call *c)
{
	const char *last = http_header(c->req, "Last-Event-ID");
	if (last && *last && !ids_valid("sevt_", last))
		return errf(&c->eb, ERR_INVALID, "Last-Event-ID: \"%.64s\" is not an event id (sevt_…)", last);
	struct session_scope sc;
	enum err rc = sessions_scope(c, c->match.params[0], &sc);
	if (rc)
		return rc;
	int64_t seq = 0;
	rc = c->app->store->ops->session_last_seq(c->app->store, &sc, c->match.params[0], last && *last ? last : NULL,
						  &seq);
	if (rc == ERR_INVALID)
		return errf(&c->eb, rc, "Last-Event-ID: %.64s is not an event of session %.64s", last, c->match.params[0]);
	if (rc == ERR_NOT_FOUND)
		return errf(&c->eb, rc, "session %.64s not found", c->match.params[0]);
	if (rc)
		return errf(&c->eb, rc, "%s", err_default_message(rc));
	if (waiters_count_kind(c->app->waiters, WAITER_STREAM) >= c->app->max_held_streams)
		return errf(&c->eb, ERR_TOO_MANY, "too many event streams are held (the limit is %zu); retry later",
			    c->app->max_held_streams);
	struct event_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return errf(&c->eb, ERR_NOMEM, "out of memory");
	s->app = c->app;
	s->req = c->req;
	s->seq = seq;
	snprintf(s->session_id, sizeof(s->session_id), "%.39s", c->match.params[0]);
	buf_init(&s->out, STREAM_BUF_MAX);
	s->waiter.req = c->req;
	s->waiter.kind = WAITER_STREAM;
	sessions_stream_key(s->session_id, s->waiter.env_id);
	s->keepalive_mono = clock_mono_us() + c->app->stream_keepalive_us;
	if (http_reply_stream(c->req, 200, "text/event-stream", stream_next, s, stream_free))
		return errf(&c->eb, ERR_NOMEM, "cannot open the stream");
	return ERR_OK;
}
