/* guard.h - connection watchdog: the request-head deadline and lingering close.
 *
 * Head deadline (slowloris): libmicrohttpd's connection timeout is an idle timeout, reset
 * by every byte, so a client sending one header line every few seconds holds its
 * connection for ever. The guard tracks every connection: a new connection, or an idle
 * keep-alive connection from the moment its next request's first byte arrives (seen in the
 * kernel's byte count, TCP_INFO), must deliver a complete request head within the
 * deadline, or its socket is shut down and libmicrohttpd closes it. Under pressure (the
 * connections near the limit) the deadline shrinks to a short one: a client that cannot
 * send its head in a second while others wait for a slot is evicted first, and so is a
 * keep-alive connection idle for more than a second (as nginx reuses idle connections), and
 * a new connection that has not sent a byte in a quarter of a second.
 *
 * Lingering close: when the server answers before reading a body (413, 503, 400) the
 * connection is closed with the body's bytes unread, and closing a socket with unread
 * bytes makes the kernel send a reset that can destroy the answer before the client reads
 * it. The guard keeps such a socket open after libmicrohttpd lets go of it, half-closes it
 * (the answer is followed by FIN) and reads and discards what the client still sends, for
 * a bounded time and size, like nginx's lingering_close.
 *
 * All calls are thread-safe. The watchdog shuts sockets down, never closes one it does
 * not own, and forgets a connection (under its lock) before libmicrohttpd closes its
 * descriptor, so a reused descriptor number is never touched. */
#ifndef ENVIROND_HTTP_GUARD_H
#define ENVIROND_HTTP_GUARD_H

#include <stddef.h>
#include <stdint.h>

struct guard;
struct guard_conn;

struct guard_config {
	int64_t head_timeout_us;  /* a request head must complete within this */
	int64_t pressed_head_us;  /* ... within this while the connections are near the limit */
	size_t pressure_conns;    /* "near the limit": this many connections or more (0 = never) */
	int64_t linger_us;        /* lingering close lasts at most this long */
	uint64_t linger_bytes;    /* and reads at most this many bytes */
	size_t linger_max;        /* sockets lingering at once at most; more are closed at once */
};

struct guard_stats {
	uint64_t head_timeouts;  /* connections shut for a late request head */
	uint64_t lingered;       /* sockets drained after an early answer */
};

/* Start the watchdog thread. NULL when out of memory or threads. */
struct guard *guard_new(const struct guard_config *cfg);
/* Stop the thread and close every lingering socket. */
void guard_free(struct guard *g);

/* A connection was accepted on fd. NULL when out of memory (the connection is not watched). */
struct guard_conn *guard_open(struct guard *g, int fd);
/* libmicrohttpd is about to close the connection's descriptor. */
void guard_close(struct guard *g, struct guard_conn *c);
/* The request head is complete: the deadline stops. */
void guard_head_done(struct guard *g, struct guard_conn *c);
/* The request ended; the connection waits for the next request. */
void guard_request_done(struct guard *g, struct guard_conn *c);
/* The answer goes out before the body was read: drain the socket when it closes. */
void guard_linger(struct guard *g, struct guard_conn *c);

void guard_stats(struct guard *g, struct guard_stats *out);

#endif
