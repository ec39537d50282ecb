/* http1.c - the load generator's minimal HTTP/1.1 client (see http1.h). */
#include "http1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchlib.h"

void h1_parse_url(const char *url, struct sockaddr_in *addr, char *host_port, size_t host_port_max)
{
	static const char scheme[] = "http://";
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		bench_die("--url: only http://A.B.C.D:PORT is supported, got '%s'", url);
	const char *hp = url + sizeof(scheme) - 1;
	size_t n = strcspn(hp, "/");
	if (hp[n] && strcmp(hp + n, "/") != 0)
		bench_die("--url: no path is supported after the port, got '%s'", url);
	if (n == 0 || n >= host_port_max)
		bench_die("--url: bad host:port in '%s'", url);
	memcpy(host_port, hp, n);
	host_port[n] = '\0';
	char host[64];
	const char *colon = strrchr(host_port, ':');
	if (!colon || (size_t)(colon - host_port) >= sizeof(host))
		bench_die("--url: expected http://A.B.C.D:PORT, got '%s'", url);
	memcpy(host, host_port, (size_t)(colon - host_port));
	host[colon - host_port] = '\0';
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_port = htons((uint16_t)bench_parse_long("--url port", colon + 1, 1, 65535));
	if (strcmp(host, "localhost") == 0)
		bench_format(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &addr->sin_addr) != 1)
		bench_die("--url: '%s' is not an IPv4 address", host);
}

void h1_connect(struct h1_conn *c, const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bench_die("socket: %s", strerror(errno));
	int rc;
	do
		rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	while (rc != 0 && errno == EINTR);
	if (rc != 0)
		bench_die("connect to port %u: %s", ntohs(addr->sin_port), strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		bench_die("fcntl O_NONBLOCK: %s", strerror(errno));
	c->fd = fd;
	c->busy = c->want_out = c->closing = false;
	c->out_off = c->in_len = c->head_len = c->body_len = 0;
	c->status = 0;
	c->in[0] = '\0';
}

void h1_close(struct h1_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void h1_append(struct h1_conn *c, const char *s, size_t len)
{
	if (len > sizeof(c->out) - c->out_len)
		bench_die("internal: a request is longer than %d bytes", H1_OUT_MAX);
	memcpy(c->out + c->out_len, s, len);
	c->out_len += len;
}

void h1_append_u64(struct h1_conn *c, uint64_t v)
{
	char digits[20];
	size_t n = 0;
	do {
		digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	h1_append(c, digits + sizeof(digits) - n, n);
}

void h1_set_request(struct h1_conn *c, const char *first, ...)
{
	va_list ap;
	c->out_len = c->out_off = 0;
	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *))
		h1_append(c, s, strlen(s));
	va_end(ap);
}

bool h1_flush(struct h1_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		bench_die("send: %s", n < 0 ? strerror(errno) : "wrote nothing");
	}
	return true;
}

/* Case-insensitive: does the header line [line, end) have this name? Returns its value. */
static const char *header_value(const char *line, const char *end, const char *name)
{
	size_t n = strlen(name);
	if ((size_t)(end - line) <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	const char *v = line + n + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	return v;
}

/* Parses the status line and headers of c->in[0, head_end). */
static void parse_head(struct h1_conn *c, size_t head_end)
{
	const char *p = c->in, *end = c->in + head_end;
	if (head_end < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || p[9] < '1' || p[9] > '5' ||
	    p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		bench_die("malformed status line: %.60s", p);
	c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	bool have_length = false;
	c->closing = false;
	const char *line = memchr(p, '\n', (size_t)(end - p));
	while (line && ++line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			break;
		const char *stop = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
		const char *v;
		if ((v = header_value(line, stop, "content-length"))) {
			size_t len = 0;
			if (v == stop)
				bench_die("empty Content-Length");
			for (; v < stop; v++) {
				if (*v < '0' || *v > '9' || len > H1_IN_MAX)
					bench_die("bad or oversized Content-Length: %.*s", (int)(stop - line), line);
				len = len * 10 + (size_t)(*v - '0');
			}
			c->body_len = len;
			have_length = true;
		} else if (header_value(line, stop, "transfer-encoding")) {
			bench_die("the server sent a Transfer-Encoding body; only Content-Length is read");
		} else if ((v = header_value(line, stop, "connection")) && (size_t)(stop - v) >= 5 &&
			   strncasecmp(v, "close", 5) == 0) {
			c->closing = true;
		}
		line = eol;
	}
	if (!have_length) {
		if (c->status == 204 || c->status == 304)
			c->body_len = 0;
		else
			bench_die("HTTP %d response without Content-Length", c->status);
	}
	if (c->body_len > H1_IN_MAX - head_end)
		bench_die("response of %zu + %zu bytes exceeds the %d-byte buffer", head_end, c->body_len, H1_IN_MAX);
	c->head_len = head_end;
}

int h1_read(struct h1_conn *c)
{
	for (;;) {
		if (c->head_len && c->in_len >= c->head_len + c->body_len) {
			char *after = c->in + c->head_len + c->body_len;
			c->in[c->in_len] = '\0';
			/* NUL-terminate the body for the scanners; h1_consume puts the byte back. */
			c->in[H1_IN_MAX] = *after;
			*after = '\0';
			return 1;
		}
		if (!c->head_len && c->in_len >= 4) {
			char *blank = memmem(c->in, c->in_len, "\r\n\r\n", 4);
			if (blank) {
				parse_head(c, (size_t)(blank - c->in) + 4);
				continue;
			}
		}
		if (c->in_len == H1_IN_MAX)
			bench_die("response head longer than %d bytes", H1_IN_MAX);
		ssize_t n = recv(c->fd, c->in + c->in_len, H1_IN_MAX - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == ECONNRESET)
			return -1;
		bench_die("recv: %s", strerror(errno));
	}
}

void h1_consume(struct h1_conn *c)
{
	size_t used = c->head_len + c->body_len;
	c->in[used] = c->in[H1_IN_MAX]; /* the byte h1_read borrowed */
	if (c->in_len > used)
		memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	c->head_len = c->body_len = 0;
	c->in[c->in_len] = '\0';
}

int h1_call_blocking(const struct sockaddr_in *addr, struct h1_conn *c)
{
	h1_connect(c, addr);
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
		bench_die("fcntl: %s", strerror(errno));
	struct timeval tv = {.tv_sec = 30};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!h1_flush(c))
		bench_die("send timed out");
	int rc;
	while ((rc = h1_read(c)) == 0)
		;
	if (rc < 0)
		bench_die("the server closed the connection (or 30 s passed) before answering: %.200s", c->out);
	return c->status;
}

size_t h1_scan_string(const char *body, size_t len, const char *key_prefix, char *out, size_t out_max)
{
	const char *value_at = strstr(key_prefix, ":\"");
	if (!value_at)
		return 0;
	size_t skip = (size_t)(value_at - key_prefix) + 2;
	const char *p = memmem(body, len, key_prefix, strlen(key_prefix));
	if (!p)
		return 0;
	const char *v = p + skip, *end = body + len;
	size_t n = 0;
	while (v + n < end && v[n] != '"') {
		if (v[n] == '\\' || (unsigned char)v[n] < 0x20 || n + 1 >= out_max)
			return 0;
		n++;
	}
	if (v + n >= end)
		return 0;
	memcpy(out, v, n);
	out[n] = '\0';
	return n;
}

bool h1_has(const char *body, size_t len, const char *text)
{
	return memmem(body, len, text, strlen(text)) != NULL;
}
