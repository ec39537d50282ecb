/* anchorlib.h - what the anchor clients (anchor_beanstalkd.c, anchor_redis.c) share: their
 * command line and their blocking-connect, non-blocking-read TCP connections. Both run the
 * same closed loop as loadgen and report through benchlib.
 */
#ifndef BENCH_ANCHORLIB_H
#define BENCH_ANCHORLIB_H

#include <stdbool.h>
#include <stddef.h>

#define ANCHOR_WORKERS_MAX 1024

struct anchor_options {
	const char *host;
	long port;
	long workers;
	long items;
	double seconds;
	long warmup;
	long block_ms; /* the blocking read's bound (wake options only) */
	long hold_ms;  /* write each enqueue this long after its worker's read (wake options only) */
	double timeout;
	bool json;
};

/* Parses --host --port --workers --items --seconds --warmup --timeout --json, and with
 * `wake` also --block-ms and --hold-ms; prints `usage` for --help. Exits on a bad value. */
void anchor_parse_options(int argc, char **argv, const char *usage, bool wake, struct anchor_options *o);

/* A connected TCP socket to host:port (IPv4) with TCP_NODELAY; exits on failure. */
int anchor_connect(const struct anchor_options *o);

/* Writes all of buf (a blocking socket); exits naming `what` on an error. */
void anchor_send(int fd, const char *buf, size_t len, const char *what);

/* Reads what the socket has into buf[*len, cap), waiting for it if `wait`. Returns false
 * when the peer closed the connection. Exits when the buffer is full or on an error. */
bool anchor_fill(int fd, char *buf, size_t *len, size_t cap, bool wait);

/* Drops the first `used` bytes of buf[0, *len). */
void anchor_consume(char *buf, size_t *len, size_t used);

#endif
