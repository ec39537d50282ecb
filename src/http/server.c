/* server.c - libmicrohttpd glue: request-head checks, bounded bodies, suspend/resume.
 *
 * libmicrohttpd 0.9.75 needs explicit limits to be fit for production: a connection limit
 * that fits the descriptor limit (its default silently drops connections past ~1020, and
 * running out of descriptors makes its accept loop spin), a per-address share, a memory
 * limit per connection and strict parsing. On top of it this file adds what it lacks: the
 * framing checks of framing.h on the raw header list, routing on the raw (undecoded) path,
 * a budget for the request bodies buffered by all connections together, and, through
 * guard.h, a deadline for request heads and lingering close after early answers. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "http/framing.h"
#include "http/guard.h"
#include "http/reply.h"

/* Request heads with more header lines than this are refused (the per-connection memory
 * limit bounds their bytes; this bounds the work of checking them). */
#define HEADERS_MAX 100
/* Lingering close: how long and how much is read after an early answer. */
#define LINGER_US (5 * 1000 * 1000)
#define LINGER_MAX 64
#define PRESSED_HEAD_US (1000 * 1000)
/* Give freed memory back to the system after a body this large is released. */
#define TRIM_AFTER (64 * 1024)
#define TRIM_INTERVAL_US (1000 * 1000)

struct http_server {
	struct MHD_Daemon *daemon;
	struct guard *guard;
	http_dispatch_fn dispatch;
	http_done_fn done;
	void *app;
	int quiesced_fd; /* listening socket handed back by quiesce, -1 when none */
	size_t body_budget;
	atomic_size_t body_used; /* bytes reserved by requests for their bodies */
	_Atomic int64_t last_trim_us;
	atomic_int large_active; /* requests that reserved a large body and have not ended */
};

/* ---- the global body budget ---- */

static int budget_take(struct http_server *s, struct http_request *r, size_t n)
{
	size_t used = atomic_load(&s->body_used);
	do {
		if (n > s->body_budget - used || used > s->body_budget)
			return -1;
	} while (!atomic_compare_exchange_weak(&s->body_used, &used, used + n));
	if (r->reserved < TRIM_AFTER && r->reserved + n >= TRIM_AFTER)
		atomic_fetch_add(&s->large_active, 1);
	r->reserved += n;
	return 0;
}

/* Free the body and give its bytes back. */
static void body_release(struct http_server *s, struct http_request *r)
{
	size_t held = r->reserved;
	buf_free(&r->body);
	if (!held)
		return;
	r->reserved = 0;
	atomic_fetch_sub(&s->body_used, held);
	if (held >= TRIM_AFTER)
		r->large = 1;
}

/* A request that had a large body has ended, its decoded body freed too. Large bodies
 * leave freed pages in malloc's arenas: give them back to the system when the last such
 * request ends (and at most once a second under a steady stream), so a burst of uploads
 * does not keep the process large for good. */
static void large_request_ended(struct http_server *s)
{
	int left = atomic_fetch_sub(&s->large_active, 1) - 1;
	int64_t now = clock_mono_us();
	int64_t last = atomic_load(&s->last_trim_us);
	if ((left == 0 || now - last >= TRIM_INTERVAL_US) && atomic_compare_exchange_strong(&s->last_trim_us, &last, now))
		malloc_trim(0);
}

static enum MHD_Result send_pending(struct http_request *r);

/* ---- the request head ---- */

struct header_list {
	struct framing_header h[HEADERS_MAX];
	size_t n;
	int too_many;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				      const char *value, size_t value_size)
{
	struct header_list *l = cls;
	if (l->n == HEADERS_MAX) {
		l->too_many = 1;
		return MHD_NO;
	}
	l->h[l->n++] = (struct framing_header){key, key_size, value ? value : "", value ? value_size : 0};
	return MHD_YES;
}

/* Answer before the body is read, and close: nothing the client sent after the head is
 * ever taken as a request. If a body may follow, the socket lingers so the client, still
 * sending, reads the answer instead of a reset. */
static void answer_early(struct http_server *s, struct http_request *r, enum err e, const char *message,
			 int body_follows)
{
	r->close_after = 1;
	if (body_follows)
		guard_linger(s->guard, r->guard);
	reply_error(r, e, message, NULL, NULL);
}

static void check_head(struct http_server *s, struct http_request *r)
{
	struct header_list *l = malloc(sizeof(*l));
	if (!l) {
		answer_early(s, r, ERR_NOMEM, NULL, 1);
		return;
	}
	l->n = 0;
	l->too_many = 0;
	MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, collect_header, l);
	/* The raw head runs from the method (the first byte of the request line) for the
	 * head's size; libmicrohttpd's header pointers point into it. */
	const union MHD_ConnectionInfo *hs = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	struct framing f;
	int bad = l->too_many ? -1
			      : framing_check(l->h, l->n, hs ? r->method : NULL, hs ? hs->header_size : 0, &f);
	if (l->too_many)
		snprintf(f.why, sizeof(f.why), "request framing: more than %d header lines", HEADERS_MAX);
	free(l);
	if (bad) {
		log_event(LOG_INFO, "bad_framing", "request_id", r->request_id, "reason", f.why, NULL);
		answer_early(s, r, ERR_INVALID, f.why, 1);
		return;
	}
	if (f.has_length && f.content_length > HTTP_BODY_MAX) {
		/* Answer before reading: nobody should have to upload a gigabyte to hear no. */
		r->body_too_large = 1;
		answer_early(s, r, ERR_TOO_LARGE, "body: larger than the 1 MiB limit", 1);
		return;
	}
	if (f.has_length && f.content_length > 0) {
		if (budget_take(s, r, (size_t)f.content_length)) {
			r->over_budget = 1;
			answer_early(s, r, ERR_UNAVAILABLE,
				     "server busy: too many request bodies being received at once; retry", 1);
			return;
		}
		buf_init(&r->body, HTTP_BODY_MAX);
	}
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	/* Called with the request line, before any decoding: keep the path exactly as sent. */
	struct http_request *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	size_t len = strcspn(uri, "?");
	char *path = malloc(len + 1);
	if (!path) {
		free(r);
		return NULL;
	}
	memcpy(path, uri, len);
	path[len] = '\0';
	r->path = path;
	buf_init(&r->body, HTTP_BODY_MAX);
	return r;
}

static void request_free(struct http_server *s, struct http_request *r)
{
	body_release(s, r);
	if (r->pending)
		MHD_destroy_response(r->pending);
	free((char *)r->path);
	free(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct http_server *s = cls;
	struct http_request *r = *con_cls;
	if (!r)
		return MHD_NO; /* out of memory when the request line came: drop this connection */
	if (!r->started) {
		r->started = 1;
		r->conn = conn;
		r->method = method;
		r->started_mono = clock_mono_us();
		ids_new("req_", r->request_id);
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->guard = ci ? ci->socket_context : NULL;
		guard_head_done(s->guard, r->guard);
		check_head(s, r);
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->replied)
			return MHD_YES;
		/* A chunked body announces no size: take budget as it arrives. */
		if (!r->body_too_large && !r->over_budget && r->body.len + n > r->reserved && r->body.len + n <= HTTP_BODY_MAX &&
		    budget_take(s, r, r->body.len + n - r->reserved))
			r->over_budget = 1;
		if (!r->body_too_large && !r->over_budget && r->body.len + n <= HTTP_BODY_MAX) {
			buf_append(&r->body, upload_data, n);
			return MHD_YES;
		}
		if (r->body.len + n > HTTP_BODY_MAX)
			r->body_too_large = 1;
		body_release(s, r);
		r->discarded += n;
		/* An endless body would hold the connection forever: stop listening. */
		if (r->discarded > HTTP_DISCARD_MAX) {
			log_event(LOG_WARN, "body_dropped", "request_id", r->request_id, "reason",
				  "body far over the 1 MiB limit; connection closed", NULL);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (r->pending) {
		body_release(s, r);
		return send_pending(r);
	}
	if (r->replied)
		return MHD_YES;
	if (r->body.failed == 1)
		r->body_too_large = 1;
	if (r->body_too_large || r->over_budget) {
		/* A chunked body that went over: it was read (and thrown away) to its end. */
		r->close_after = r->over_budget;
		reply_error(r, r->body_too_large ? ERR_TOO_LARGE : ERR_UNAVAILABLE,
			    r->body_too_large ? "body: larger than the 1 MiB limit"
					      : "server busy: too many request bodies being received at once; retry",
			    NULL, NULL);
		return MHD_YES;
	}
	s->dispatch(s->app, r);
	if (r->deferred) {
		/* Another thread runs it now, body and all; it is sent when resumed. */
		r->deferred = 0;
		return MHD_YES;
	}
	/* The body has been decoded (or is not needed by a resumed poll): do not hold it. */
	body_release(s, r);
	/* libmicrohttpd closes a connection whose handler says no, dropping any queued reply. */
	return r->drop ? MHD_NO : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context)
		guard_request_done(s->guard, ci->socket_context);
	struct http_request *r = *con_cls;
	if (!r)
		return;
	if (r->started)
		s->done(s->app, r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	if (r->ctx_free)
		r->ctx_free(r->ctx);
	body_release(s, r);
	if (r->large)
		large_request_ended(s);
	request_free(s, r);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci ? guard_open(s->guard, ci->connect_fd) : NULL;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		/* libmicrohttpd closes the descriptor right after this returns. */
		guard_close(s->guard, *socket_context);
		*socket_context = NULL;
	}
}

void http_suspend(struct http_request *r)
{
	atomic_store(&r->suspended, 1);
	/* Deferred: the connection is suspended already, and only its own thread may suspend
	 * it; http_defer_end() leaves it so. */
	if (atomic_fetch_or(&r->deferral, HTTP_DEFER_PARKED) & HTTP_DEFER_RUNNING)
		return;
	atomic_fetch_and(&r->deferral, ~HTTP_DEFER_PARKED);
	MHD_suspend_connection(r->conn);
}

void http_resume(struct http_request *r)
{
	/* Resuming a connection twice would run dispatch twice for one suspension. */
	if (!atomic_exchange(&r->suspended, 0)) {
		log_event(LOG_ERROR, "resume_not_suspended", "request_id", r->request_id, NULL);
		return;
	}
	/* Parked by a deferred run that has not ended: http_defer_end() resumes it. */
	if (atomic_fetch_or(&r->deferral, HTTP_DEFER_RESUME) & HTTP_DEFER_RUNNING)
		return;
	MHD_resume_connection(r->conn);
}

void http_defer(struct http_request *r)
{
	r->deferred = 1;
	atomic_store(&r->deferral, HTTP_DEFER_RUNNING);
	atomic_store(&r->suspended, 1);
	MHD_suspend_connection(r->conn);
}

int http_defer_parked(struct http_request *r)
{
	if (atomic_load(&r->deferral) & HTTP_DEFER_RUNNING)
		return -1;
	atomic_store(&r->deferral, HTTP_DEFER_RUNNING);
	return 0;
}

void http_defer_end(struct http_request *r, int failed)
{
	if (failed && r->pending) {
		MHD_destroy_response(r->pending);
		r->pending = NULL;
		r->replied = 0;
	}
	if (failed && !(atomic_load(&r->deferral) & HTTP_DEFER_PARKED))
		reply_error(r, ERR_UNAVAILABLE, "the store could not commit this request; nothing of it was kept, retry",
			    NULL, NULL);
	int was = atomic_fetch_and(&r->deferral, ~HTTP_DEFER_RUNNING);
	if (was & HTTP_DEFER_PARKED) {
		/* Parked: its waker resumes it (or asked to while this ran). */
		if (was & HTTP_DEFER_RESUME)
			MHD_resume_connection(r->conn);
		return;
	}
	atomic_store(&r->suspended, 0);
	MHD_resume_connection(r->conn);
}

void http_queue_reply(struct http_request *r, int status, struct MHD_Response *resp)
{
	r->status = status;
	r->replied = 1;
	if (atomic_load(&r->deferral) & HTTP_DEFER_RUNNING) {
		if (r->pending)
			MHD_destroy_response(r->pending);
		r->pending = resp;
		r->pending_status = status;
		return;
	}
	if (MHD_queue_response(r->conn, (unsigned)status, resp) != MHD_YES)
		log_event(LOG_WARN, "reply_not_queued", "request_id", r->request_id, NULL);
	MHD_destroy_response(resp);
}

/* A resumed deferred request: send what it replied. */
static enum MHD_Result send_pending(struct http_request *r)
{
	struct MHD_Response *resp = r->pending;
	r->pending = NULL;
	if (MHD_queue_response(r->conn, (unsigned)r->pending_status, resp) != MHD_YES)
		log_event(LOG_WARN, "reply_not_queued", "request_id", r->request_id, NULL);
	MHD_destroy_response(resp);
	return r->drop ? MHD_NO : MHD_YES;
}

int http_peer_closed(struct http_request *r)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!info)
		return 0;
	/* POLLRDHUP, not a peeked read of zero bytes: over TLS a client that closes cleanly
	 * sends close_notify before its FIN, so unread bytes sit in front of the end of file. */
	struct pollfd p = {.fd = info->connect_fd, .events = POLLRDHUP};
	if (poll(&p, 1, 0) != 1)
		return 0;
	return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

const char *http_header(struct http_request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query(struct http_request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_each {
	const char *name;
	int (*fn)(void *ctx, const char *value);
	void *ctx;
	int stopped;
};

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query_each *q = cls;
	if (q->stopped || strcmp(key, q->name) != 0)
		return MHD_YES;
	if (q->fn(q->ctx, value ? value : ""))
		q->stopped = 1;
	return q->stopped ? MHD_NO : MHD_YES;
}

void http_query_each(struct http_request *r, const char *name, int (*fn)(void *ctx, const char *value), void *ctx)
{
	struct query_each q = {name, fn, ctx, 0};
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, each_arg, &q);
}

/* --- streamed replies ------------------------------------------------------------------ */

struct stream_reply {
	http_stream_fn next;
	void *cls;
	void (*free_cls)(void *cls);
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_reply *s = cls;
	long n = s->next(s->cls, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return (ssize_t)n; /* 0: the producer suspended the connection until it has more */
}

static void stream_free(void *cls)
{
	struct stream_reply *s = cls;
	if (s->free_cls)
		s->free_cls(s->cls);
	free(s);
}

int http_reply_stream(struct http_request *r, int status, const char *content_type, http_stream_fn next, void *cls,
		      void (*free_cls)(void *cls))
{
	struct stream_reply *s = calloc(1, sizeof(*s));
	if (!s) {
		if (free_cls)
			free_cls(cls);
		return -1;
	}
	s->next = next;
	s->cls = cls;
	s->free_cls = free_cls;
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 2 * 1024, stream_read, s,
								      stream_free);
	if (!resp) {
		stream_free(s);
		return -1;
	}
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	MHD_add_response_header(resp, "request-id", r->request_id);
	if (r->workspace_echo[0])
		MHD_add_response_header(resp, "anthropic-workspace-id", r->workspace_echo);
	r->status = status;
	r->replied = 1;
	int rc = MHD_queue_response(r->conn, (unsigned)status, resp) == MHD_YES ? 0 : -1;
	MHD_destroy_response(resp); /* the connection keeps its own reference */
	return rc;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char *why, size_t why_len)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host)) {
		snprintf(why, why_len, "--listen: expected HOST:PORT, got \"%s\"", listen);
		return -1;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535) {
		snprintf(why, why_len, "--listen: port must be 0-65535, got \"%s\"", colon + 1);
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	size_t hl = strlen(host);
	if (host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1) {
			*len = sizeof(*a6);
			return 0;
		}
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			*len = sizeof(*a4);
			return 0;
		}
	}
	snprintf(why, why_len, "--listen: \"%s\" is not an IPv4 address or a [IPv6] address", host);
	return -1;
}

int http_listen_check(const char *listen, char *why, size_t why_len)
{
	struct sockaddr_storage ss;
	socklen_t len;
	return parse_listen(listen, &ss, &len, why, why_len);
}

int http_limits_for(const struct http_config *cfg, struct http_limits *out, char *why, size_t why_len)
{
	struct rlimit rl;
	unsigned long fds = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fds = (unsigned long)rl.rlim_cur;
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		fds = 1UL << 20;
	/* Two descriptors per pool thread (epoll, wake-up), the lingering sockets, and room for
	 * the store, logs and the listening socket. */
	unsigned long reserve = HTTP_FD_RESERVE_BASE + 2UL * cfg->threads + LINGER_MAX;
	unsigned long room = fds > reserve ? fds - reserve : 0;
	if (room < 16 || room < cfg->threads) {
		snprintf(why, why_len,
			 "the descriptor limit (ulimit -n %lu) leaves room for %lu connections with %u threads; "
			 "raise it to at least %lu",
			 fds, room, cfg->threads, reserve + (cfg->threads > 16 ? cfg->threads : 16));
		return -1;
	}
	out->fd_limit = fds;
	out->connection_limit = cfg->connection_limit < room ? cfg->connection_limit : (unsigned)room;
	unsigned share = out->connection_limit / 2;
	out->per_ip_limit = cfg->per_ip_limit ? cfg->per_ip_limit : (share < 16 ? 16 : share);
	if (out->per_ip_limit > out->connection_limit)
		out->per_ip_limit = out->connection_limit;
	return 0;
}

int http_server_start(const struct http_config *cfg, http_dispatch_fn dispatch, http_done_fn done, void *app,
		      struct http_server **out, int *port, char *why, size_t why_len)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct http_limits lim;
	if (parse_listen(cfg->listen, &ss, &sslen, why, why_len) || http_limits_for(cfg, &lim, why, why_len))
		return -1;
	if (lim.connection_limit < cfg->connection_limit) {
		char want[24], got[24], fds[24];
		snprintf(want, sizeof(want), "%u", cfg->connection_limit);
		snprintf(got, sizeof(got), "%u", lim.connection_limit);
		snprintf(fds, sizeof(fds), "%lu", lim.fd_limit);
		log_event(LOG_WARN, "connection_limit_lowered", "requested", want, "limit", got, "ulimit_n", fds, "reason",
			  "the descriptor limit must also hold the server's own files", NULL);
	}
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	s->dispatch = dispatch;
	s->done = done;
	s->app = app;
	s->quiesced_fd = -1;
	s->body_budget = cfg->body_memory;
	/* A fixed mmap threshold: large buffers (bodies, replies) are mapped and unmapped on
	 * free instead of raising the threshold and staying in the heap for good. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	/* Near the limit (90%), a request head gets one second: legitimate clients send theirs
	 * in milliseconds, and the slots of slow ones are what waiting clients need. */
	struct guard_config gc = {.head_timeout_us = (int64_t)cfg->head_timeout_s * 1000000,
				  .pressed_head_us = PRESSED_HEAD_US,
				  .pressure_conns = lim.connection_limit - lim.connection_limit / 10,
				  .linger_us = LINGER_US,
				  .linger_bytes = HTTP_DISCARD_MAX,
				  .linger_max = LINGER_MAX};
	s->guard = guard_new(&gc);
	if (!s->guard) {
		snprintf(why, why_len, "cannot start the connection watchdog");
		free(s);
		return -1;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ITC | MHD_USE_TURBO;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* TLS options go in through MHD_OPTION_ARRAY, so plain HTTP passes an empty list. */
	struct MHD_OptionItem tls_options[4] = {{MHD_OPTION_END, 0, NULL}};
	if (cfg->tls_cert_pem && cfg->tls_key_pem) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(why, why_len, "this libmicrohttpd was built without TLS (GnuTLS) support");
			guard_free(s->guard);
			free(s);
			return -1;
		}
		flags |= MHD_USE_TLS;
		tls_options[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert_pem};
		tls_options[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->tls_key_pem};
		tls_options[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES};
		tls_options[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	}
	s->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, MHD_OPTION_CONNECTION_LIMIT, lim.connection_limit,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, lim.per_ip_limit, MHD_OPTION_CONNECTION_TIMEOUT,
		cfg->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->connection_memory,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_ARRAY, tls_options, MHD_OPTION_END);
	if (!s->daemon) {
		if (flags & MHD_USE_TLS)
			snprintf(why, why_len, "cannot serve TLS on %s (address in use or not available, or GnuTLS "
					       "refused the --tls-cert/--tls-key pair)", cfg->listen);
		else
			snprintf(why, why_len, "cannot listen on %s (address in use or not available?)", cfg->listen);
		guard_free(s->guard);
		free(s);
		return -1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : 0;
	*out = s;
	return 0;
}

void http_server_quiesce(struct http_server *s)
{
	if (s->quiesced_fd < 0)
		s->quiesced_fd = MHD_quiesce_daemon(s->daemon);
}

void http_server_stop(struct http_server *s)
{
	MHD_stop_daemon(s->daemon);
	guard_free(s->guard);
	if (s->quiesced_fd >= 0)
		close(s->quiesced_fd);
	free(s);
}
