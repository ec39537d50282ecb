/* anchor_redis.c - the Redis Streams anchor: the same closed-loop item cycle as loadgen.c,
 * spoken in RESP over raw sockets, so environd's items/s and wake-up latency can be
 * stated as a ratio to Redis measured on the same machine with the same pinning.
 *
 * Mapping of the cycle onto a stream with one consumer group:
 *   enqueue   = XADD <stream> MAXLEN ~ 100000 * s sesn_<seq>
 *   poll      = XREADGROUP GROUP g c<i> COUNT 1 BLOCK <block-ms> STREAMS <stream> >
 *               (the entry enters the consumer's pending list: the lease starts here)
 *   heartbeat = XCLAIM <stream> g c<i> 0 <id> JUSTID (resets the entry's idle time, which
 *               is what a consumer that keeps a message does to keep it from XAUTOCLAIM)
 *   stop      = XACK <stream> g <id>
 * Four round trips per item to environd's five. MAXLEN ~ trims acknowledged entries so a
 * long run does not grow the server; entries in flight are the newest and are never
 * trimmed. The stream (a fresh name per run) is deleted at the end.
 *
 * Like the beanstalkd anchor, one thread runs every connection from one poll(2) loop; each
 * worker has two connections: its reader and its producer. --hold-ms writes each XADD that
 * long after the worker's XREADGROUP, to time the wake-up of a held read as loadgen does.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "anchorlib.h"
#include "benchlib.h"

#define INBUF_MAX 4096
#define OUTBUF_MAX 512
#define STRS_MAX 8
#define DEPTH_MAX 8

static const char usage_text[] =
	"usage: anchor_redis --port P [OPTIONS]\n"
	"Drive a Redis stream through XADD -> XREADGROUP BLOCK -> XCLAIM JUSTID -> XACK.\n"
	"\n"
	"  --host ADDR        IPv4 address (default 127.0.0.1)\n"
	"  --port P           redis-server's port\n"
	"  --workers N        concurrent workers, 1-1024 (default 1)\n"
	"  --items M          stop after M items\n"
	"  --seconds S        stop adding after S seconds (default 5 when --items is absent)\n"
	"  --warmup K         leave the first K completed items out of the figures (default 0)\n"
	"  --block-ms B       XREADGROUP BLOCK, 1-999 (default 999)\n"
	"  --hold-ms H        XADD H ms after each XREADGROUP is written (wake-up of a held read)\n"
	"  --timeout S        hard limit on the whole run (default: seconds + 30, or 300)\n"
	"  --json             print the result as one JSON object\n";

/* ---- RESP ----------------------------------------------------------------------- */

/* What one reply held: its top-level type, its integer, and its bulk strings in order
 * (nested arrays flattened), pointing into the connection's buffer. */
struct reply {
	char type;  /* '+', '-', ':', '$', '*' */
	bool null;  /* $-1 or *-1 */
	long long integer;
	const char *line; /* the first line after the type byte, for errors */
	size_t line_len;
	size_t nstrs;
	const char *str[STRS_MAX];
	size_t len[STRS_MAX];
};

/* Parses one value at p (n bytes). Returns the bytes it spans, 0 when incomplete. */
static size_t resp_value(const char *p, size_t n, struct reply *r, int depth)
{
	if (depth > DEPTH_MAX)
		bench_die("reply nested deeper than %d", DEPTH_MAX);
	const char *eol = n ? memmem(p, n, "\r\n", 2) : NULL;
	if (!eol)
		return 0;
	size_t head = (size_t)(eol - p) + 2;
	char *end;
	if (depth == 0) {
		r->type = p[0];
		r->line = p + 1;
		r->line_len = (size_t)(eol - p) - 1;
	}
	switch (p[0]) {
	case '+':
	case '-':
		return head;
	case ':':
		if (depth == 0)
			r->integer = strtoll(p + 1, &end, 10);
		return head;
	case '$': {
		long long len = strtoll(p + 1, &end, 10);
		if (end != eol || len < -1 || len > INBUF_MAX)
			bench_die("bad bulk length: %.*s", (int)(eol - p), p);
		if (len < 0) {
			if (depth == 0)
				r->null = true;
			return head;
		}
		if (n < head + (size_t)len + 2)
			return 0;
		if (r->nstrs < STRS_MAX) {
			r->str[r->nstrs] = p + head;
			r->len[r->nstrs++] = (size_t)len;
		}
		return head + (size_t)len + 2;
	}
	case '*': {
		long long count = strtoll(p + 1, &end, 10);
		if (end != eol || count < -1 || count > 64)
			bench_die("bad array length: %.*s", (int)(eol - p), p);
		if (count < 0) {
			if (depth == 0)
				r->null = true;
			return head;
		}
		size_t used = head;
		for (long long i = 0; i < count; i++) {
			size_t k = resp_value(p + used, n - used, r, depth + 1);
			if (!k)
				return 0;
			used += k;
		}
		return used;
	}
	default:
		bench_die("not a RESP reply: %.*s", (int)(eol - p), p);
	}
}

/* ---- connections ------------------------------------------------------------ */

enum request { R_NONE, R_XADD, R_XREADGROUP, R_XCLAIM, R_XACK, R_SETUP };

static const char *const request_names[] = {
	[R_NONE] = "none", [R_XADD] = "XADD", [R_XREADGROUP] = "XREADGROUP",
	[R_XCLAIM] = "XCLAIM", [R_XACK] = "XACK", [R_SETUP] = "set-up",
};

struct worker;

/* One TCP connection with at most one request outstanding. */
struct conn {
	int fd;
	struct worker *owner;
	enum request pending;
	uint64_t seq;
	size_t out_len;
	char out[OUTBUF_MAX];
	size_t len;
	char in[INBUF_MAX];
};

struct worker {
	struct conn reader, producer;
	long index;
	char entry_id[64];
	uint64_t seq;
	unsigned pending_adds;
	int64_t add_at; /* --hold-ms: when to write the XADD; 0 = none due */
};

static void out_append(struct conn *c, const char *s, size_t n)
{
	if (n > sizeof(c->out) - c->out_len)
		bench_die("internal: a command is longer than %d bytes", OUTBUF_MAX);
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

static void out_number(struct conn *c, char type, size_t v)
{
	char text[24];
	int n = snprintf(text, sizeof(text), "%c%zu\r\n", type, v);
	out_append(c, text, (size_t)n);
}

/* Builds one command as a RESP array of bulk strings. */
static void command(struct conn *c, size_t argc, const char *const *argv)
{
	c->out_len = 0;
	out_number(c, '*', argc);
	for (size_t i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);
		out_number(c, '$', n);
		out_append(c, argv[i], n);
		out_append(c, "\r\n", 2);
	}
}

static void conn_send(struct conn *c, enum request req)
{
	if (c->pending != R_NONE)
		bench_die("internal: two requests outstanding on one connection");
	anchor_send(c->fd, c->out, c->out_len, request_names[req]);
	c->pending = req;
}

/* A blocking command for set-up and tear-down; dies unless the reply starts with `expect`. */
static void conn_call(struct conn *c, size_t argc, const char *const *argv, const char *expect)
{
	command(c, argc, argv);
	conn_send(c, R_SETUP);
	c->pending = R_NONE;
	struct reply r;
	size_t used;
	for (;;) {
		memset(&r, 0, sizeof(r));
		if ((used = resp_value(c->in, c->len, &r, 0)))
			break;
		if (!anchor_fill(c->fd, c->in, &c->len, sizeof(c->in), true))
			bench_die("redis-server closed the connection during set-up");
	}
	if (r.line_len + 1 < strlen(expect) || memcmp(c->in, expect, strlen(expect)) != 0)
		bench_die("%s: expected '%s', got '%c%.*s'", argv[0], expect, r.type, (int)r.line_len, r.line);
	anchor_consume(c->in, &c->len, used);
}

/* ---- the run --------------------------------------------------------------- */

struct run {
	const struct anchor_options *opt;
	struct worker *workers;
	char stream[64];
	struct bench_items items;
	struct bench_progress p;
	uint64_t reads_held;
};

static bool may_enqueue(struct run *r) { return bench_may_enqueue(&r->p, r->opt->items); }

static void send_xadd(struct run *r, struct worker *w)
{
	char value[48];
	uint64_t seq = r->p.enqueued++;
	bench_format(value, sizeof(value), "sesn_%" PRIu64, seq);
	const char *argv[] = {"XADD", r->stream, "MAXLEN", "~", "100000", "*", "s", value};
	command(&w->producer, 8, argv);
	w->producer.seq = seq;
	bench_item_at(&r->items, seq)->enq_start = bench_now_ns();
	conn_send(&w->producer, R_XADD);
}

static void send_read(struct run *r, struct worker *w)
{
	char consumer[32], block[16];
	bench_format(consumer, sizeof(consumer), "c%ld", w->index);
	bench_format(block, sizeof(block), "%ld", r->opt->block_ms);
	const char *argv[] = {"XREADGROUP", "GROUP", "g", consumer, "COUNT", "1", "BLOCK", block, "STREAMS", r->stream, ">"};
	command(&w->reader, 11, argv);
	r->reads_held++;
	conn_send(&w->reader, R_XREADGROUP);
}

static void send_entry_call(struct run *r, struct worker *w, enum request req)
{
	char consumer[32];
	bench_format(consumer, sizeof(consumer), "c%ld", w->index);
	if (req == R_XCLAIM) {
		const char *argv[] = {"XCLAIM", r->stream, "g", consumer, "0", w->entry_id, "JUSTID"};
		command(&w->reader, 7, argv);
	} else {
		const char *argv[] = {"XACK", r->stream, "g", w->entry_id};
		command(&w->reader, 4, argv);
	}
	conn_send(&w->reader, req);
}

static bool read_needed(const struct run *r)
{
	return !r->p.enqueue_closed || r->p.enqueued > r->p.delivered + r->reads_held;
}

/* Adds now, or as soon as the worker's producer is free. */
static void add_now(struct run *r, struct worker *w)
{
	if (!may_enqueue(r))
		return;
	if (w->producer.pending != R_NONE)
		w->pending_adds++;
	else
		send_xadd(r, w);
}

static void begin_cycle(struct run *r, struct worker *w)
{
	if (read_needed(r))
		send_read(r, w);
	if (!may_enqueue(r))
		return;
	if (r->opt->hold_ms)
		w->add_at = bench_now_ns() + r->opt->hold_ms * 1000000;
	else
		add_now(r, w);
}

static void expect_type(const struct conn *c, const struct reply *rp, char type)
{
	if (rp->type != type)
		bench_die("%s: unexpected reply '%c%.*s'", request_names[c->pending], rp->type, (int)rp->line_len, rp->line);
}

static void on_reply(struct run *r, struct conn *c, const struct reply *rp, int64_t t)
{
	struct worker *w = c->owner;
	switch (c->pending) {
	case R_XADD:
		expect_type(c, rp, '$');
		if (rp->null || rp->nstrs != 1)
			bench_die("XADD: no entry id in the reply");
		c->pending = R_NONE;
		bench_item_at(&r->items, c->seq)->enq_done = t;
		if (bench_take_pending(&r->p, &w->pending_adds, r->opt->items))
			send_xadd(r, w);
		return;
	case R_XREADGROUP: {
		expect_type(c, rp, '*');
		c->pending = R_NONE;
		r->reads_held--;
		if (rp->null) {
			r->p.empty_polls++;
			if (read_needed(r))
				send_read(r, w);
			return;
		}
		/* [[stream, [[id, [field, value]]]]] flattened: stream, id, field, value. */
		unsigned long long seq;
		char value[48];
		if (rp->nstrs != 4 || rp->len[1] >= sizeof(w->entry_id) || rp->len[3] >= sizeof(value))
			bench_die("XREADGROUP: unexpected reply shape (%zu strings)", rp->nstrs);
		memcpy(w->entry_id, rp->str[1], rp->len[1]);
		w->entry_id[rp->len[1]] = '\0';
		memcpy(value, rp->str[3], rp->len[3]);
		value[rp->len[3]] = '\0';
		if (sscanf(value, "sesn_%llu", &seq) != 1 || seq >= r->p.enqueued)
			bench_die("XREADGROUP: an entry this run did not add: %s", value);
		struct bench_item *it = bench_item_at(&r->items, seq);
		if (it->poll_done)
			bench_die("XREADGROUP: entry %s delivered twice", w->entry_id);
		it->poll_done = t;
		r->p.delivered++;
		w->seq = seq;
		send_entry_call(r, w, R_XCLAIM);
		return;
	}
	case R_XCLAIM:
		expect_type(c, rp, '*');
		if (rp->nstrs != 1 || rp->len[0] != strlen(w->entry_id) || memcmp(rp->str[0], w->entry_id, rp->len[0]) != 0)
			bench_die("XCLAIM: expected [%s] back", w->entry_id);
		c->pending = R_NONE;
		send_entry_call(r, w, R_XACK);
		return;
	case R_XACK:
		expect_type(c, rp, ':');
		if (rp->integer != 1)
			bench_die("XACK: expected 1, got %lld", rp->integer);
		c->pending = R_NONE;
		bench_item_at(&r->items, w->seq)->stop_done = t;
		r->p.completed++;
		r->p.t_last_done = t;
		if (r->p.completed == (uint64_t)r->opt->warmup)
			r->p.t_warm = t;
		begin_cycle(r, w);
		return;
	default:
		bench_die("unsolicited reply '%c%.*s'", rp->type, (int)rp->line_len, rp->line);
	}
}

static void run_loop(struct run *r, struct pollfd *fds, struct conn **conns, size_t nconns)
{
	const struct anchor_options *o = r->opt;
	struct bench_bounds bounds;
	bench_bounds_init(&bounds, &r->p, o->seconds, o->timeout);
	for (long i = 0; i < o->workers; i++)
		begin_cycle(r, &r->workers[i]);
	for (;;) {
		int64_t t = bench_now_ns();
		bench_bounds_check(&bounds, &r->p, t);
		if (r->p.enqueue_closed && r->p.completed == r->p.enqueued)
			return;
		int64_t until = t + 100000000;
		if (o->hold_ms) {
			for (long i = 0; i < o->workers; i++) {
				struct worker *w = &r->workers[i];
				if (bench_hold_due(&w->add_at, t, &until))
					add_now(r, w);
			}
		}
		int64_t wait_ns = until - bench_now_ns();
		int wait_ms = wait_ns <= 0 ? 0 : (int)((wait_ns + 999999) / 1000000);
		int n = poll(fds, nconns, wait_ms);
		if (n < 0 && errno != EINTR)
			bench_die("poll: %s", strerror(errno));
		for (size_t i = 0; n > 0 && i < nconns; i++) {
			if (!fds[i].revents)
				continue;
			struct conn *c = conns[i];
			if (!anchor_fill(c->fd, c->in, &c->len, sizeof(c->in), false))
				bench_die("redis-server closed a connection");
			int64_t now = bench_now_ns();
			for (;;) {
				struct reply rp;
				memset(&rp, 0, sizeof(rp));
				size_t used = resp_value(c->in, c->len, &rp, 0);
				if (!used)
					break;
				if (rp.type == '-')
					bench_die("%s: %.*s", request_names[c->pending], (int)rp.line_len, rp.line);
				on_reply(r, c, &rp, now);
				anchor_consume(c->in, &c->len, used);
			}
		}
	}
}

int main(int argc, char **argv)
{
	bench_set_program("anchor_redis");
	struct anchor_options opt;
	anchor_parse_options(argc, argv, usage_text, true, &opt);
	struct run r = {.opt = &opt};
	unsigned char rnd[6];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		bench_die("getrandom failed");
	bench_format(r.stream, sizeof(r.stream), "bench-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
		     rnd[4], rnd[5]);

	size_t nconns = (size_t)opt.workers * 2;
	r.workers = calloc((size_t)opt.workers, sizeof(*r.workers));
	struct pollfd *fds = calloc(nconns, sizeof(*fds));
	struct conn **conns = calloc(nconns, sizeof(*conns));
	if (!r.workers || !fds || !conns)
		bench_die("out of memory");
	for (long i = 0; i < opt.workers; i++) {
		struct worker *w = &r.workers[i];
		w->index = i;
		w->reader.owner = w->producer.owner = w;
		w->reader.fd = anchor_connect(&opt);
		w->producer.fd = anchor_connect(&opt);
		conns[2 * i] = &w->reader;
		conns[2 * i + 1] = &w->producer;
	}
	const char *create[] = {"XGROUP", "CREATE", r.stream, "g", "$", "MKSTREAM"};
	conn_call(&r.workers[0].producer, 6, create, "+OK");
	for (size_t i = 0; i < nconns; i++)
		fds[i] = (struct pollfd){.fd = conns[i]->fd, .events = POLLIN};

	double cpu_start = bench_cpu_seconds();
	r.p.t_start = bench_now_ns();
	run_loop(&r, fds, conns, nconns);
	bench_finish(&r.items, r.p.enqueued, &r.p, opt.warmup, cpu_start, false, "redis", opt.workers, nconns, opt.json);

	/* Reads still held block their connections: the stream is deleted on a fresh one. */
	struct conn *last = calloc(1, sizeof(*last));
	if (!last)
		bench_die("out of memory");
	last->fd = anchor_connect(&opt);
	const char *del[] = {"DEL", r.stream};
	conn_call(last, 2, del, ":1");
	close(last->fd);
	free(last);
	for (size_t i = 0; i < nconns; i++)
		close(conns[i]->fd);
	free(conns);
	free(fds);
	free(r.workers);
	bench_items_free(&r.items);
	return 0;
}
