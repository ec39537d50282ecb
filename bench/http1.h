/* http1.h - the load generator's HTTP/1.1 client: one persistent keep-alive TCP connection
 * per struct h1_conn, at most one request outstanding on it, requests written by hand
 * into a fixed buffer and responses read into another. The parser knows exactly what the
 * benchmark needs and nothing more: the status line, Content-Length framing (chunked or
 * close-delimited bodies are refused) and whether the server announced "Connection: close".
 * Nothing here allocates after h1_connect: the cost of a request is the kernel's.
 */
#ifndef BENCH_HTTP1_H
#define BENCH_HTTP1_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H1_OUT_MAX 2048
#define H1_IN_MAX 8192

struct h1_conn {
	int fd;
	bool busy;          /* a request is outstanding */
	bool want_out;      /* the request is not all written: EPOLLOUT is armed */
	int kind;           /* the caller's label for the outstanding request */
	uint64_t seq;       /* the caller's item sequence number */
	void *owner;        /* the caller's */
	size_t out_len, out_off;
	size_t in_len;
	size_t head_len;    /* bytes up to and including the blank line; 0 = not parsed yet */
	size_t body_len;
	int status;
	bool closing;       /* the response said Connection: close */
	char out[H1_OUT_MAX];
	char in[H1_IN_MAX + 1]; /* NUL-terminated past what was read, for the scanners */
};

/* Parses "http://A.B.C.D:PORT" (an optional trailing path of "/" only). Exits on anything else. */
void h1_parse_url(const char *url, struct sockaddr_in *addr, char *host_port, size_t host_port_max);

/* Opens a connection (blocking connect, then non-blocking), TCP_NODELAY. */
void h1_connect(struct h1_conn *c, const struct sockaddr_in *addr);
void h1_close(struct h1_conn *c);

/* Builds the request in c->out from the pieces, in order (NULL-terminated list). Exits if
 * they do not fit: every request of the benchmark is a few hundred bytes. */
void h1_set_request(struct h1_conn *c, const char *first, ...) __attribute__((sentinel));

/* Appends `len` bytes / a decimal number to the request being built. */
void h1_append(struct h1_conn *c, const char *s, size_t len);
void h1_append_u64(struct h1_conn *c, uint64_t v);

/* Writes what it can of the request. Returns true when it is all written; false when the
 * socket is full (the caller arms EPOLLOUT and calls again when writable). Exits on error. */
bool h1_flush(struct h1_conn *c);

/* Reads what the socket has. Returns 1 when a whole response is buffered (status, body at
 * c->in + c->head_len of c->body_len bytes), 0 when more is needed, -1 when the peer closed
 * the connection. Exits on a malformed or oversized response. */
int h1_read(struct h1_conn *c);

/* Forgets the response just handled; keeps any bytes that followed it. */
void h1_consume(struct h1_conn *c);

static inline const char *h1_body(const struct h1_conn *c) { return c->in + c->head_len; }

/* One request on a fresh connection, waited for (for set-up and tear-down only). */
int h1_call_blocking(const struct sockaddr_in *addr, struct h1_conn *c);

/* Finds `"key":"<prefix>...` in body and copies the string value (prefix included) into
 * out. Returns its length, or 0 when absent, not a plain string, or longer than out_max - 1. */
size_t h1_scan_string(const char *body, size_t len, const char *key_prefix, char *out, size_t out_max);

/* Does the body contain this exact text? */
bool h1_has(const char *body, size_t len, const char *text);

#endif
