/* server.h - the HTTP layer: libmicrohttpd glue, one struct per request.
 *
 * The server reads a bounded body, then calls the dispatch function once per request (and
 * once more after every resume of a suspended request). Dispatch must either queue a
 * reply (reply.h) or suspend the request with http_suspend(). When the request ends,
 * `done` runs with whether the reply reached the client, then the request is freed. */
#ifndef ENVIROND_HTTP_SERVER_H
#define ENVIROND_HTTP_SERVER_H

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

struct MHD_Connection;

/* One request. Owned by the server; freed after `done`. `ctx` belongs to the dispatcher,
 * which releases it through ctx_free (called before the request is freed). */
struct http_request {
	struct MHD_Connection *conn;
	const char *method;  /* owned by libmicrohttpd, valid for the request's life */
	const char *path;    /* percent-decoded path */
	char request_id[ID_MAX];
	struct buf body;
	int body_too_large;
	size_t discarded;    /* bytes of an oversized body thrown away */
	int bad_framing;     /* two Content-Lengths, or Content-Length with chunked */
	int replied;
	int suspended;
	int status;          /* status of the queued reply */
	int64_t started_mono;
	char workspace_echo[65]; /* anthropic-workspace-id to echo, "" for none */
	void *ctx;
	void (*ctx_free)(void *ctx);
};

typedef void (*http_dispatch_fn)(void *app, struct http_request *r);
typedef void (*http_done_fn)(void *app, struct http_request *r, int reached_client);

struct http_config {
	const char *listen;          /* "host:port"; port 0 picks a free one */
	unsigned threads;            /* thread pool size */
	unsigned connection_limit;
	unsigned connection_timeout_s;
	size_t connection_memory;    /* per-connection memory limit (headers, pool) */
	/* TLS (HTTPS) when both are set: PEM texts, borrowed, checked by tls_files_load(),
	 * valid until http_server_stop(). NULL for plain HTTP. */
	const char *tls_cert_pem;
	const char *tls_key_pem;
};

struct http_server;

/* Start listening. *port receives the bound port. Returns 0, or -1 with a message in why. */
int http_server_start(const struct http_config *cfg, http_dispatch_fn dispatch, http_done_fn done, void *app,
		      struct http_server **out, int *port, char *why, size_t why_len);
/* Check a "host:port" listen address without binding. Returns 0, or -1 with why. */
int http_listen_check(const char *listen, char *why, size_t why_len);
/* Stop accepting new connections (the listening socket stays open until stop). */
void http_server_quiesce(struct http_server *s);
void http_server_stop(struct http_server *s);

/* Suspend a request until http_resume(); no thread is held meanwhile. */
void http_suspend(struct http_request *r);
/* Resume a suspended request from any thread; dispatch runs again for it. */
void http_resume(struct http_request *r);

/* True when the client has closed its side of the connection (checked without reading). */
int http_peer_closed(struct http_request *r);

/* A request header (case-insensitive name) or query argument; NULL when absent. */
const char *http_header(struct http_request *r, const char *name);
const char *http_query(struct http_request *r, const char *name);

#endif
