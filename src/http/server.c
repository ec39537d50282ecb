/* server.c - libmicrohttpd glue: bounded bodies, framing checks, suspend/resume.
 *
 * libmicrohttpd 0.9.75 needs explicit limits to be fit for production: a connection limit
 * (its default silently drops connections past ~1020), a connection timeout, a memory
 * limit per connection and strict parsing. It accepts two Content-Length headers and
 * Content-Length together with chunked framing; both are rejected here. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "http/reply.h"

struct http_server {
	struct MHD_Daemon *daemon;
	http_dispatch_fn dispatch;
	http_done_fn done;
	void *app;
	int quiesced_fd; /* listening socket handed back by quiesce, -1 when none */
};

struct framing {
	int content_lengths;
	int chunked;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct framing *f = cls;
	if (strcasecmp(key, "Content-Length") == 0)
		f->content_lengths++;
	else if (strcasecmp(key, "Transfer-Encoding") == 0)
		f->chunked = 1;
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct http_server *s = cls;
	struct http_request *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO; /* out of memory: drop this connection, keep the server */
		r->conn = conn;
		r->method = method;
		r->path = url;
		r->started_mono = clock_mono_us();
		ids_new("req_", r->request_id);
		buf_init(&r->body, HTTP_BODY_MAX);
		*con_cls = r;
		struct framing f = {0, 0};
		MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
		r->bad_framing = f.content_lengths > 1 || (f.content_lengths && f.chunked);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl && !r->bad_framing) {
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			if (*end == '\0' && n > HTTP_BODY_MAX) {
				/* Answer before reading: nobody should have to upload a gigabyte to hear no. */
				r->body_too_large = 1;
				s->dispatch(s->app, r);
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->body_too_large && !r->replied && r->body.len + *upload_data_size <= HTTP_BODY_MAX) {
			buf_append(&r->body, upload_data, *upload_data_size);
		} else {
			r->body_too_large = 1;
			r->discarded += *upload_data_size;
			/* An endless body would hold the connection forever: stop listening. */
			if (r->discarded > HTTP_DISCARD_MAX) {
				log_event(LOG_WARN, "body_dropped", "request_id", r->request_id, "reason",
					  "body far over the 1 MiB limit; connection closed", NULL);
				return MHD_NO;
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->replied)
		return MHD_YES;
	if (r->body.failed == 1)
		r->body_too_large = 1;
	s->dispatch(s->app, r);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_request *r = *con_cls;
	if (!r)
		return;
	s->done(s->app, r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	if (r->ctx_free)
		r->ctx_free(r->ctx);
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

void http_suspend(struct http_request *r)
{
	r->suspended = 1;
	MHD_suspend_connection(r->conn);
}

void http_resume(struct http_request *r)
{
	r->suspended = 0;
	MHD_resume_connection(r->conn);
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

int http_server_start(const struct http_config *cfg, http_dispatch_fn dispatch, http_done_fn done, void *app,
		      struct http_server **out, int *port, char *why, size_t why_len)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (parse_listen(cfg->listen, &ss, &sslen, why, why_len))
		return -1;
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	s->dispatch = dispatch;
	s->done = done;
	s->app = app;
	s->quiesced_fd = -1;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ITC | MHD_USE_TURBO;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* TLS options go in through MHD_OPTION_ARRAY, so plain HTTP passes an empty list. */
	struct MHD_OptionItem tls_options[4] = {{MHD_OPTION_END, 0, NULL}};
	if (cfg->tls_cert_pem && cfg->tls_key_pem) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(why, why_len, "this libmicrohttpd was built without TLS (GnuTLS) support");
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
		MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, MHD_OPTION_CONNECTION_LIMIT, cfg->connection_limit,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		cfg->connection_memory, MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_LISTEN_BACKLOG_SIZE,
		(unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_ARRAY, tls_options,
		MHD_OPTION_END);
	if (!s->daemon) {
		if (flags & MHD_USE_TLS)
			snprintf(why, why_len, "cannot serve TLS on %s (address in use or not available, or GnuTLS "
					       "refused the --tls-cert/--tls-key pair)", cfg->listen);
		else
			snprintf(why, why_len, "cannot listen on %s (address in use or not available?)", cfg->listen);
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
	if (s->quiesced_fd >= 0)
		close(s->quiesced_fd);
	free(s);
}
