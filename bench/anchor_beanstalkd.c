/* anchor_beanstalkd.c - the beanstalkd anchor: the same closed-loop item cycle as
 * loadgen.c, spoken in beanstalkd's text protocol, so environd's items/s and wake-up
 * latency can be stated as a ratio to a mature work queue measured on the same machine
 * with the same pinning.
 *
 * Mapping of the cycle: enqueue = put, poll + ack = reserve-with-timeout (beanstalkd's
 * reserve already starts the lease), heartbeat = touch, stop = delete. That is four round
 * trips per item to environd's five; the README says so next to the ratio.
 *
 * Like loadgen, one thread runs every connection from one poll(2) loop, and each worker
 * has two connections: its reserver and its producer. The payload of each job is
 * "sesn_<seq>", which matches a reservation back to its put. Replies are read with a
 * bounded buffer per connection; requests are a few dozen bytes, written in one send.
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
static const char usage_text[] =
	"usage: anchor_beanstalkd --port P [OPTIONS]\n"
	"Drive beanstalkd through put -> reserve-with-timeout -> touch -> delete.\n"
	"\n"
	"  --host ADDR        IPv4 address (default 127.0.0.1)\n"
	"  --port P           beanstalkd's port\n"
	"  --workers N        concurrent workers, 1-1024 (default 1)\n"
	"  --items M          stop after M items\n"
	"  --seconds S        stop putting after S seconds (default 5 when --items is absent)\n"
	"  --warmup K         leave the first K completed items out of the figures (default 0)\n"
	"  --timeout S        hard limit on the whole run (default: seconds + 30, or 300)\n"
	"  --json             print the result as one JSON object\n";

/* ---- connections ------------------------------------------------------------ */

enum request { R_NONE, R_PUT, R_RESERVE, R_TOUCH, R_DELETE };

static const char *const request_names[] = {
	[R_NONE] = "none", [R_PUT] = "put", [R_RESERVE] = "reserve-with-timeout",
	[R_TOUCH] = "touch", [R_DELETE] = "delete",
};

struct worker;

/* One TCP connection with at most one request outstanding. */
struct conn {
	int fd;
	struct worker *owner;
	enum request pending;
	uint64_t seq; /* the job this request is about */
	size_t len;
	char in[INBUF_MAX];
};

struct worker {
	struct conn reserver, producer;
	uint64_t job_id;
	unsigned pending_puts;
};

static void conn_send(struct conn *c, enum request req, const char *text, size_t len)
{
	if (c->pending != R_NONE)
		bench_die("internal: two requests outstanding on one connection");
	anchor_send(c->fd, text, len, request_names[req]);
	c->pending = req;
}

/* One complete reply from the buffer: its first line (NUL-terminated, without CRLF) and,
 * for RESERVED, its body. Returns the bytes it spans, or 0 if it is not all here yet. */
static size_t conn_reply(struct conn *c, char *line, size_t line_max, char *body, size_t body_max)
{
	char *eol = memmem(c->in, c->len, "\r\n", 2);
	if (!eol)
		return 0;
	size_t line_len = (size_t)(eol - c->in);
	if (line_len >= line_max)
		bench_die("reply line too long");
	memcpy(line, c->in, line_len);
	line[line_len] = '\0';
	size_t used = line_len + 2;
	body[0] = '\0';
	unsigned long long id, bytes;
	if (sscanf(line, "RESERVED %llu %llu", &id, &bytes) == 2) {
		if (bytes >= body_max)
			bench_die("job body of %llu bytes is not one of ours", bytes);
		if (c->len < used + bytes + 2)
			return 0;
		memcpy(body, c->in + used, bytes);
		body[bytes] = '\0';
		used += bytes + 2;
	}
	return used;
}

/* A blocking request/reply for set-up. */
static void conn_call(struct conn *c, const char *text, const char *expect)
{
	char line[256], body[8];
	conn_send(c, R_NONE, text, strlen(text));
	c->pending = R_NONE;
	size_t used;
	while (!(used = conn_reply(c, line, sizeof(line), body, sizeof(body))))
		if (!anchor_fill(c->fd, c->in, &c->len, sizeof(c->in), true))
			bench_die("beanstalkd closed the connection during set-up");
	anchor_consume(c->in, &c->len, used);
	if (strcmp(line, expect) != 0)
		bench_die("%.*s: expected '%s', got '%s'", (int)strcspn(text, "\r"), text, expect, line);
}

/* ---- the run --------------------------------------------------------------- */

struct run {
	const struct anchor_options *opt;
	struct worker *workers;
	struct bench_items items;
	struct bench_progress p;
};

static bool may_enqueue(struct run *r) { return bench_may_enqueue(&r->p, r->opt->items); }

static void send_put(struct run *r, struct worker *w)
{
	char body[64], text[128];
	uint64_t seq = r->p.enqueued++;
	bench_format(body, sizeof(body), "sesn_%" PRIu64, seq);
	bench_format(text, sizeof(text), "put 0 0 60 %zu\r\n%s\r\n", strlen(body), body);
	w->producer.seq = seq;
	bench_item_at(&r->items, seq)->enq_start = bench_now_ns();
	conn_send(&w->producer, R_PUT, text, strlen(text));
}

static void send_reserve(struct worker *w)
{
	static const char text[] = "reserve-with-timeout 1\r\n";
	conn_send(&w->reserver, R_RESERVE, text, sizeof(text) - 1);
}

static void send_job_call(struct worker *w, enum request req)
{
	char text[64];
	bench_format(text, sizeof(text), "%s %" PRIu64 "\r\n", req == R_TOUCH ? "touch" : "delete", w->job_id);
	conn_send(&w->reserver, req, text, strlen(text));
}

static void begin_cycle(struct run *r, struct worker *w)
{
	send_reserve(w);
	if (!may_enqueue(r))
		return;
	if (w->producer.pending != R_NONE)
		w->pending_puts++;
	else
		send_put(r, w);
}

static void on_reply(struct run *r, struct conn *c, const char *line, const char *body, int64_t t)
{
	struct worker *w = c->owner;
	enum request req = c->pending;
	c->pending = R_NONE;
	unsigned long long id, bytes, seq;
	switch (req) {
	case R_PUT:
		if (sscanf(line, "INSERTED %llu", &id) != 1)
			bench_die("put: expected INSERTED, got '%s'", line);
		bench_item_at(&r->items, c->seq)->enq_done = t;
		if (bench_take_pending(&r->p, &w->pending_puts, r->opt->items))
			send_put(r, w);
		return;
	case R_RESERVE:
		if (strcmp(line, "TIMED_OUT") == 0) {
			r->p.empty_polls++;
			send_reserve(w);
			return;
		}
		if (sscanf(line, "RESERVED %llu %llu", &id, &bytes) != 2 || sscanf(body, "sesn_%llu", &seq) != 1 ||
		    seq >= r->p.enqueued)
			bench_die("reserve: unexpected reply '%s' '%s'", line, body);
		struct bench_item *it = bench_item_at(&r->items, seq);
		if (it->poll_done)
			bench_die("reserve: job %s reserved twice", body);
		it->poll_done = t;
		r->p.delivered++;
		w->job_id = id;
		c->seq = seq;
		send_job_call(w, R_TOUCH);
		return;
	case R_TOUCH:
		if (strcmp(line, "TOUCHED") != 0)
			bench_die("touch: expected TOUCHED, got '%s'", line);
		send_job_call(w, R_DELETE);
		return;
	case R_DELETE:
		if (strcmp(line, "DELETED") != 0)
			bench_die("delete: expected DELETED, got '%s'", line);
		bench_item_at(&r->items, c->seq)->stop_done = t;
		r->p.completed++;
		r->p.t_last_done = t;
		if (r->p.completed == (uint64_t)r->opt->warmup)
			r->p.t_warm = t;
		begin_cycle(r, w);
		return;
	default:
		bench_die("unsolicited reply '%s'", line);
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
		bench_bounds_check(&bounds, &r->p, bench_now_ns());
		if (r->p.enqueue_closed && r->p.completed == r->p.enqueued)
			return;
		int n = poll(fds, nconns, 100);
		if (n < 0 && errno != EINTR)
			bench_die("poll: %s", strerror(errno));
		for (size_t i = 0; n > 0 && i < nconns; i++) {
			if (!fds[i].revents)
				continue;
			struct conn *c = conns[i];
			if (!anchor_fill(c->fd, c->in, &c->len, sizeof(c->in), false))
				bench_die("beanstalkd closed a connection");
			int64_t now = bench_now_ns();
			char line[256], body[128];
			size_t used;
			while ((used = conn_reply(c, line, sizeof(line), body, sizeof(body)))) {
				anchor_consume(c->in, &c->len, used);
				on_reply(r, c, line, body, now);
			}
		}
	}
}

int main(int argc, char **argv)
{
	bench_set_program("anchor_beanstalkd");
	struct anchor_options opt;
	anchor_parse_options(argc, argv, usage_text, false, &opt);
	struct run r = {.opt = &opt};
	unsigned char rnd[6];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		bench_die("getrandom failed");
	char tube[64], use[128], watch[128];
	bench_format(tube, sizeof(tube), "bench-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
		     rnd[4], rnd[5]);
	bench_format(use, sizeof(use), "use %s\r\n", tube);
	bench_format(watch, sizeof(watch), "watch %s\r\n", tube);
	char using[128];
	bench_format(using, sizeof(using), "USING %s", tube);

	size_t nconns = (size_t)opt.workers * 2;
	r.workers = calloc((size_t)opt.workers, sizeof(*r.workers));
	struct pollfd *fds = calloc(nconns, sizeof(*fds));
	struct conn **conns = calloc(nconns, sizeof(*conns));
	if (!r.workers || !fds || !conns)
		bench_die("out of memory");
	for (long i = 0; i < opt.workers; i++) {
		struct worker *w = &r.workers[i];
		w->reserver.owner = w->producer.owner = w;
		w->reserver.fd = anchor_connect(&opt);
		w->producer.fd = anchor_connect(&opt);
		conn_call(&w->producer, use, using);
		conn_call(&w->reserver, watch, "WATCHING 2");
		conn_call(&w->reserver, "ignore default\r\n", "WATCHING 1");
		conns[2 * i] = &w->reserver;
		conns[2 * i + 1] = &w->producer;
	}
	for (size_t i = 0; i < nconns; i++)
		fds[i] = (struct pollfd){.fd = conns[i]->fd, .events = POLLIN};

	double cpu_start = bench_cpu_seconds();
	r.p.t_start = bench_now_ns();
	run_loop(&r, fds, conns, nconns);
	bench_finish(&r.items, r.p.enqueued, &r.p, opt.warmup, cpu_start, false, "beanstalkd", opt.workers, nconns,
		     opt.json);

	for (size_t i = 0; i < nconns; i++)
		close(conns[i]->fd);
	free(conns);
	free(fds);
	free(r.workers);
	bench_items_free(&r.items);
	return 0;
}
