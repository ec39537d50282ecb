/* guard.c - request-head deadline and lingering close (see guard.h). */
#include "http/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

/* How often idle connections are checked for a new request's first byte, and how late a
 * deadline may be noticed: small next to any sensible head timeout. */
#define SCAN_INTERVAL_US (250 * 1000)
#define POLL_MS 100
/* Under pressure, a new connection that sent nothing for this long is evicted. */
#define SILENT_US (250 * 1000)

enum conn_state { CONN_HEAD, CONN_BUSY, CONN_IDLE };

struct guard_conn {
	struct guard_conn *prev, *next;
	int fd;
	enum conn_state state;
	int64_t since_us;       /* CONN_HEAD: when the head began; CONN_IDLE: when it went idle */
	uint64_t baseline;      /* CONN_IDLE: bytes received when the last request ended */
	int shut;               /* the watchdog shut it down already */
	int linger;             /* drain it when it closes */
	uint64_t requests;      /* requests ended on it */
	uint64_t eof_seen;      /* requests+1 when a scan found the peer gone while idle; 0 = not */
};

struct lingerer {
	int fd;
	int64_t deadline_us;
	uint64_t read;
};

struct guard {
	struct guard_config cfg;
	pthread_mutex_t lock;
	struct guard_conn head; /* sentinel of the connection list */
	size_t nconns;
	struct lingerer *lingering;
	size_t nlingering;
	atomic_int stop;
	pthread_t thread;
	atomic_ullong head_timeouts, lingered;
};

/* Bytes the kernel has received on the socket; 0 with *ok = 0 when it cannot say. */
static uint64_t bytes_received(int fd, int *ok)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	*ok = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	      len >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received);
	return *ok ? ti.tcpi_bytes_received : 0;
}

/* The client closed its side and nothing is left unread. */
static int peer_closed(int fd)
{
	char byte;
	return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Read and discard what is there; 1 when the socket is finished with. */
static int drain(struct lingerer *l, const struct guard_config *cfg, int64_t now)
{
	char scratch[16384];
	for (;;) {
		ssize_t n = recv(l->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n > 0) {
			l->read += (uint64_t)n;
			if (l->read > cfg->linger_bytes)
				return 1;
			continue;
		}
		if (n == 0)
			return 1; /* the client finished sending and closed: a clean close */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return now >= l->deadline_us;
		return 1;
	}
}

static void scan(struct guard *g, int64_t now)
{
	int64_t limit = g->cfg.head_timeout_us;
	int pressed = g->cfg.pressure_conns && g->nconns >= g->cfg.pressure_conns;
	if (pressed && g->cfg.pressed_head_us < limit)
		limit = g->cfg.pressed_head_us;
	for (struct guard_conn *c = g->head.next; c != &g->head; c = c->next) {
		if (c->shut)
			continue;
		if (c->state != CONN_BUSY && peer_closed(c->fd)) {
			/* libmicrohttpd (edge-triggered) can miss an end of stream that came with the
			 * last bytes and keep the socket until a timeout: wake it. Only when two scans
			 * in a row find it waiting after the same request, so a request read before
			 * the end of stream is never cut off. */
			if (c->eof_seen == c->requests + 1) {
				shutdown(c->fd, SHUT_RDWR);
				c->shut = 1;
				continue;
			}
			c->eof_seen = c->requests + 1;
		}
		if (c->state == CONN_IDLE && pressed && now - c->since_us > g->cfg.pressed_head_us) {
			/* Out of slots: an idle keep-alive connection is the cheapest to give back
			 * (its client reconnects when it has a request). */
			shutdown(c->fd, SHUT_RDWR);
			c->shut = 1;
			continue;
		}
		if (c->state == CONN_IDLE) {
			int ok;
			uint64_t got = bytes_received(c->fd, &ok);
			if (ok && got > c->baseline) {
				c->state = CONN_HEAD;
				c->since_us = now;
			}
		}
		int silent = 0;
		if (pressed && c->state == CONN_HEAD && c->requests == 0 && now - c->since_us > SILENT_US) {
			/* Out of slots, and a new connection has not sent a byte: clients send their
			 * request the moment they connect, so this one only holds a slot. */
			int ok;
			silent = bytes_received(c->fd, &ok) == 0 && ok;
		}
		if (c->state == CONN_HEAD && (silent || now - c->since_us > limit)) {
			/* Not close(): the descriptor is libmicrohttpd's. It sees end of stream and closes. */
			shutdown(c->fd, SHUT_RDWR);
			c->shut = 1;
			atomic_fetch_add(&g->head_timeouts, 1);
			log_event(LOG_INFO, "head_timeout", "reason", "request head not complete in time; connection closed",
				  NULL);
		}
	}
}

static void *watch(void *arg)
{
	struct guard *g = arg;
	struct pollfd *pfd = calloc(g->cfg.linger_max ? g->cfg.linger_max : 1, sizeof(*pfd));
	int64_t last_scan = 0;
	while (!atomic_load(&g->stop)) {
		pthread_mutex_lock(&g->lock);
		size_t n = pfd ? g->nlingering : 0;
		for (size_t i = 0; i < n; i++)
			pfd[i] = (struct pollfd){.fd = g->lingering[i].fd, .events = POLLIN};
		pthread_mutex_unlock(&g->lock);
		if (n)
			poll(pfd, n, POLL_MS);
		else
			usleep(POLL_MS * 1000);
		int64_t now = clock_mono_us();
		/* Only this thread removes lingerers, so the first n entries are stable. */
		size_t kept = 0;
		pthread_mutex_lock(&g->lock);
		for (size_t i = 0; i < g->nlingering; i++) {
			struct lingerer *l = &g->lingering[i];
			if (i < n && drain(l, &g->cfg, now)) {
				close(l->fd);
				continue;
			}
			g->lingering[kept++] = *l;
		}
		g->nlingering = kept;
		if (now - last_scan >= SCAN_INTERVAL_US) {
			scan(g, now);
			last_scan = now;
		}
		pthread_mutex_unlock(&g->lock);
	}
	free(pfd);
	return NULL;
}

struct guard *guard_new(const struct guard_config *cfg)
{
	struct guard *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->cfg = *cfg;
	g->head.next = g->head.prev = &g->head;
	g->lingering = calloc(cfg->linger_max ? cfg->linger_max : 1, sizeof(*g->lingering));
	if (!g->lingering || pthread_mutex_init(&g->lock, NULL)) {
		free(g->lingering);
		free(g);
		return NULL;
	}
	if (pthread_create(&g->thread, NULL, watch, g)) {
		pthread_mutex_destroy(&g->lock);
		free(g->lingering);
		free(g);
		return NULL;
	}
	return g;
}

void guard_free(struct guard *g)
{
	if (!g)
		return;
	atomic_store(&g->stop, 1);
	pthread_join(g->thread, NULL);
	for (size_t i = 0; i < g->nlingering; i++)
		close(g->lingering[i].fd);
	/* Connections still listed belong to a daemon that is gone: just forget them. */
	while (g->head.next != &g->head) {
		struct guard_conn *c = g->head.next;
		g->head.next = c->next;
		free(c);
	}
	pthread_mutex_destroy(&g->lock);
	free(g->lingering);
	free(g);
}

struct guard_conn *guard_open(struct guard *g, int fd)
{
	struct guard_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->state = CONN_HEAD; /* a new connection owes a request head from the start */
	c->since_us = clock_mono_us();
	pthread_mutex_lock(&g->lock);
	c->next = g->head.next;
	c->prev = &g->head;
	g->head.next->prev = c;
	g->head.next = c;
	g->nconns++;
	pthread_mutex_unlock(&g->lock);
	return c;
}

void guard_close(struct guard *g, struct guard_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	g->nconns--;
	if (c->linger && !c->shut && g->nlingering < g->cfg.linger_max) {
		int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		if (fd >= 0) {
			/* The answer is already in the send buffer: FIN after it, then drain. */
			shutdown(fd, SHUT_WR);
			g->lingering[g->nlingering++] =
				(struct lingerer){.fd = fd, .deadline_us = clock_mono_us() + g->cfg.linger_us};
			atomic_fetch_add(&g->lingered, 1);
		}
	}
	pthread_mutex_unlock(&g->lock);
	free(c);
}

void guard_head_done(struct guard *g, struct guard_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	c->state = CONN_BUSY;
	pthread_mutex_unlock(&g->lock);
}

void guard_request_done(struct guard *g, struct guard_conn *c)
{
	if (!c)
		return;
	int ok;
	uint64_t got = bytes_received(c->fd, &ok);
	pthread_mutex_lock(&g->lock);
	c->state = CONN_IDLE;
	c->since_us = clock_mono_us();
	c->baseline = got;
	c->requests++;
	pthread_mutex_unlock(&g->lock);
}

void guard_linger(struct guard *g, struct guard_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	c->linger = 1;
	pthread_mutex_unlock(&g->lock);
}

void guard_stats(struct guard *g, struct guard_stats *out)
{
	out->head_timeouts = atomic_load(&g->head_timeouts);
	out->lingered = atomic_load(&g->lingered);
}
