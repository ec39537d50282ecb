/* server.h - the HTTP layer: libmicrohttpd glue, one struct per request.
 *
 * The server reads a bounded body, then calls the dispatch function once per request (and
 * once more after every resume of a suspended request). Dispatch must either queue a
 * reply (reply.h) or suspend the request with http_suspend(). When the request ends,
 * `done` runs with whether the reply reached the client, then the request is freed. */
#ifndef ENVIROND_HTTP_SERVER_H
#define ENVIROND_HTTP_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/ids.h"

#define HTTP_BODY_MAX (1024 * 1024)
/* A body over HTTP_BODY_MAX whose size was not announced (chunked) is read and thrown away
 * so that its sender hears 413; past this many bytes the connection is dropped instead. */
#define HTTP_DISCARD_MAX (16 * 1024 * 1024)
/* GnuTLS priorities with TLS: TLS 1.3 and 1.2 only, GnuTLS's NORMAL cipher choice. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Descriptors kept free of connections: thread pool epoll and wake-up descriptors, the
 * store's files, the listening socket, lingering sockets. Without it, accept() fails with
 * EMFILE and libmicrohttpd retries it in a busy loop. */
#define HTTP_FD_RESERVE_BASE 64

struct MHD_Connection;
struct MHD_Response;
struct guard_conn;

/* One request. Owned by the server; freed after `done`. `ctx` belongs to the dispatcher,
 * which releases it through ctx_free (called before the request is freed). */
struct http_request {
	struct MHD_Connection *conn;
	struct guard_conn *guard; /* the connection's watchdog entry, NULL when unwatched */
	const char *method;  /* owned by libmicrohttpd, valid for the request's life */
	const char *path;    /* the raw path as sent (no query), never percent-decoded: an
			      * encoded "/" must not become a separator */
	char request_id[ID_MAX];
	struct buf body;
	size_t reserved;     /* bytes of the global body budget this request holds */
	int large;           /* it held a large body (memory is trimmed when it ends) */
	int started;         /* the head was checked (first call seen) */
	int body_too_large;
	int over_budget;     /* the global body budget could not take this body */
	size_t discarded;    /* bytes of an oversized body thrown away */
	int close_after;     /* reply with Connection: close (framing errors, early answers) */
	int replied;
	atomic_int suspended; /* set by http_suspend, cleared by the one http_resume */
	atomic_int deferral;  /* HTTP_DEFER_* bits while the request runs elsewhere */
	int deferred;         /* this dispatch deferred it (read by the connection's thread only) */
	struct MHD_Response *pending; /* a reply made while deferred, sent when resumed */
	int pending_status;
	int status;          /* status of the queued reply */
	int64_t started_mono;
	char workspace_echo[65]; /* anthropic-workspace-id to echo, "" for none */
	char retry_after[12];    /* retry-after of a 429/503, "" for the default "1" */
	int drop;            /* set by dispatch: close the connection, no reply (test mode) */
	void *ctx;
	void (*ctx_free)(void *ctx);
};

typedef void (*http_dispatch_fn)(void *app, struct http_request *r);
typedef void (*http_done_fn)(void *app, struct http_request *r, int reached_client);

struct http_config {
	const char *listen;          /* "host:port"; port 0 picks a free one */
	unsigned threads;            /* thread pool size */
	unsigned connection_limit;   /* lowered to fit the descriptor limit (RLIMIT_NOFILE) */
	unsigned per_ip_limit;       /* connections from one address at most; 0 = half the limit */
	unsigned connection_timeout_s;
	unsigned head_timeout_s;     /* a request head must arrive within this (slowloris) */
	size_t connection_memory;    /* per-connection memory limit (headers, pool) */
	size_t body_memory;          /* request bodies buffered at once, all connections, bytes */
	/* TLS (HTTPS) when both are set: PEM texts, borrowed, checked by tls_files_load(),
	 * valid until http_server_stop(). NULL for plain HTTP. */
	const char *tls_cert_pem;
	const char *tls_key_pem;
};

/* What the server runs with after clamping (for logs and tests). */
struct http_limits {
	unsigned connection_limit;
	unsigned per_ip_limit;
	unsigned long fd_limit;
};

struct http_server;

/* Start listening. *port receives the bound port. Returns 0, or -1 with a message in why. */
int http_server_start(const struct http_config *cfg, http_dispatch_fn dispatch, http_done_fn done, void *app,
		      struct http_server **out, int *port, char *why, size_t why_len);
/* The connection limits a config gets on this process: the connection limit lowered to the
 * descriptor limit minus a reserve for `threads`. Returns 0, or -1 with why when the
 * descriptor limit leaves too few connections. */
int http_limits_for(const struct http_config *cfg, struct http_limits *out, char *why, size_t why_len);
/* Check a "host:port" listen address without binding. Returns 0, or -1 with why. */
int http_listen_check(const char *listen, char *why, size_t why_len);
/* Stop accepting new connections (the listening socket stays open until stop). */
void http_server_quiesce(struct http_server *s);
void http_server_stop(struct http_server *s);

/* Suspend a request until http_resume(); no thread is held meanwhile. */
void http_suspend(struct http_request *r);
/* Resume a suspended request from any thread; dispatch runs again for it. A second resume
 * of the same suspension is refused (logged), never passed to libmicrohttpd. */
void http_resume(struct http_request *r);

/* A request run on another thread (the store's writer) while its connection waits,
 * suspended, without holding an HTTP thread:
 *   http_defer()      in dispatch: suspend the connection; from now on a reply (reply.h)
 *                     is kept, not sent, and http_suspend() only marks the request parked;
 *   http_defer_end()  on the other thread when done: resume the connection, which sends
 *                     the kept reply; or, when the request was parked meanwhile, leave it
 *                     suspended for whoever parked it, whose http_resume() may have come
 *                     early and is carried out now.
 * `failed` replaces the kept reply with a 503 (the write it described was not kept). */
#define HTTP_DEFER_RUNNING 1
#define HTTP_DEFER_PARKED 2
#define HTTP_DEFER_RESUME 4
void http_defer(struct http_request *r);
/* The same for a request suspended already (parked, and taken out of its waiters by the
 * caller, who now owns it). Refused (-1) while the run that parked it has not ended: the
 * caller resumes it instead (http_resume). The caller must be the thread that ends
 * deferred runs. 0 when deferred. */
int http_defer_parked(struct http_request *r);
void http_defer_end(struct http_request *r, int failed);
/* Queue a reply (from reply.c): sent now, or kept while the request is deferred. Takes
 * the caller's reference to resp. */
void http_queue_reply(struct http_request *r, int status, struct MHD_Response *resp);

/* True when the client has closed its side of the connection (checked without reading). */
int http_peer_closed(struct http_request *r);

/* Every value of a query argument that may repeat (`types[]=a&types[]=b`): fn is called
 * for each in order; it returns 0 to go on, nonzero to stop. */
void http_query_each(struct http_request *r, const char *name, int (*fn)(void *ctx, const char *value), void *ctx);

/* A streamed reply (Server-Sent Events). `next` is called whenever the connection can
 * take more bytes: it writes at most `max` bytes into buf and returns how many (> 0); or
 * returns 0 after suspending the request with http_suspend() (it is called again after
 * http_resume()); or returns -1 to end the stream. `cls` is released with free_cls when
 * the reply is done (the request is over by then). Headers are queued with the reply;
 * `next` should return something at once (a comment) so that they reach the client
 * without waiting for the first event. Returns 0, or -1 when the reply could not be
 * queued (free_cls has then been called). */
typedef long (*http_stream_fn)(void *cls, char *buf, size_t max);
int http_reply_stream(struct http_request *r, int status, const char *content_type, http_stream_fn next, void *cls,
		      void (*free_cls)(void *cls));

/* A request header (case-insensitive name) or query argument; NULL when absent. */
const char *http_header(struct http_request *r, const char *name);
const char *http_query(struct http_request *r, const char *name);

#endif
