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
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchlib.h"

#define INBUF_MAX 4096
#define WORKERS_MAX 1024

struct options {
	const char *host;
	long port;
	long workers;
	long items;
	double seconds;
	long warmup;
	double timeout;
	bool json;
};

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

static void parse_options(int argc, char **argv, struct options *o)
{
	enum { O_HOST = 256, O_PORT, O_WORKERS, O_ITEMS, O_SECONDS, O_WARMUP, O_TIMEOUT, O_JSON, O_HELP };
	static const struct option longopts[] = {
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"workers", required_argument, NULL, O_WORKERS},
		{"items", required_argument, NULL, O_ITEMS},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->workers = 1;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_HOST: o->host = optarg; break;
		case O_PORT: o->port = bench_parse_long("--port", optarg, 1, 65535); break;
		case O_WORKERS: o->workers = bench_parse_long("--workers", optarg, 1, WORKERS_MAX); break;
		case O_ITEMS: o->items = bench_parse_long("--items", optarg, 1, BENCH_ITEMS_MAX); break;
		case O_SECONDS: o->seconds = bench_parse_double("--seconds", optarg, 0.1, 3600); break;
		case O_WARMUP: o->warmup = bench_parse_long("--warmup", optarg, 0, BENCH_ITEMS_MAX); break;
		case O_TIMEOUT: o->timeout = bench_parse_double("--timeout", optarg, 1, 7200); break;
		case O_JSON: o->json = true; break;
		case O_HELP: fputs(usage_text, stdout); exit(0);
		default: fputs(usage_text, stderr); exit(2);
		}
	}
	if (optind < argc)
		bench_die("unexpected argument '%s' (see --help)", argv[optind]);
	if (!o->port)
		bench_die("--port is required");
	if (o->items && o->seconds)
		bench_die("--items and --seconds are exclusive");
	if (!o->items && !o->seconds)
		o->seconds = 5;
	if (o->items && o->warmup >= o->items)
		bench_die("--warmup (%ld) must be smaller than --items (%ld)", o->warmup, o->items);
	if (!o->timeout)
		o->timeout = o->seconds ? o->seconds + 30 : 300;
}

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

static int connect_to(const struct options *o)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	if (inet_pton(AF_INET, o->host, &addr.sin_addr) != 1)
		bench_die("--host: not an IPv4 address: %s", o->host);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		bench_die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		bench_die("connect %s:%ld: %s", o->host, o->port, strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void conn_send(struct conn *c, enum request req, const char *text, size_t len)
{
	if (c->pending != R_NONE)
		bench_die("internal: two requests outstanding on one connection");
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bench_die("send %s: %s", request_names[req], strerror(errno));
		off += (size_t)n;
	}
	c->pending = req;
}

/* Reads what is available; false on EOF. */
static bool conn_fill(struct conn *c, bool wait)
{
	if (c->len == sizeof(c->in))
		bench_die("reply longer than %d bytes", INBUF_MAX);
	ssize_t n;
	do
		n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, wait ? 0 : MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return true;
	if (n < 0)
		bench_die("recv: %s", strerror(errno));
	if (n == 0)
		return false;
	c->len += (size_t)n;
	return true;
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

static void conn_consume(struct conn *c, size_t used)
{
	memmove(c->in, c->in + used, c->len - used);
	c->len -= used;
}

/* A blocking request/reply for set-up. */
static void conn_call(struct conn *c, const char *text, const char *expect)
{
	char line[256], body[8];
	conn_send(c, R_NONE, text, strlen(text));
	c->pending = R_NONE;
	size_t used;
	while (!(used = conn_reply(c, line, sizeof(line), body, sizeof(body))))
		if (!conn_fill(c, true))
			bench_die("beanstalkd closed the connection during set-up");
	conn_consume(c, used);
	if (strcmp(line, expect) != 0)
		bench_die("%.*s: expected '%s', got '%s'", (int)strcspn(text, "\r"), text, expect, line);
}

/* ---- the run --------------------------------------------------------------- */

struct run {
	const struct options *opt;
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
		while (w->pending_puts) {
			w->pending_puts--;
			if (may_enqueue(r)) {
				send_put(r, w);
				break;
			}
		}
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
	const struct options *o = r->opt;
	int64_t deadline = r->p.t_start + (int64_t)(o->timeout * 1e9);
	int64_t enqueue_until = o->seconds ? r->p.t_start + (int64_t)(o->seconds * 1e9) : INT64_MAX;
	for (long i = 0; i < o->workers; i++)
		begin_cycle(r, &r->workers[i]);
	for (;;) {
		int64_t t = bench_now_ns();
		if (t >= deadline)
			bench_die("timed out after %.0f s: %" PRIu64 " jobs put, %" PRIu64 " reserved, %" PRIu64
				  " deleted", o->timeout, r->p.enqueued, r->p.delivered, r->p.completed);
		if (t >= enqueue_until)
			r->p.enqueue_closed = true;
		if (r->p.enqueue_closed && r->p.completed == r->p.enqueued)
			return;
		int n = poll(fds, nconns, 100);
		if (n < 0 && errno != EINTR)
			bench_die("poll: %s", strerror(errno));
		for (size_t i = 0; n > 0 && i < nconns; i++) {
			if (!fds[i].revents)
				continue;
			struct conn *c = conns[i];
			if (!conn_fill(c, false))
				bench_die("beanstalkd closed a connection");
			int64_t now = bench_now_ns();
			char line[256], body[128];
			size_t used;
			while ((used = conn_reply(c, line, sizeof(line), body, sizeof(body)))) {
				conn_consume(c, used);
				on_reply(r, c, line, body, now);
			}
		}
	}
}

int main(int argc, char **argv)
{
	bench_set_program("anchor_beanstalkd");
	struct options opt;
	parse_options(argc, argv, &opt);
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
		w->reserver.fd = connect_to(&opt);
		w->producer.fd = connect_to(&opt);
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
	double cpu_used = bench_cpu_seconds() - cpu_start;
	double wall = (double)(bench_now_ns() - r.p.t_start) / 1e9;
	struct bench_result res;
	int64_t from = bench_measure_from(&r.p, opt.warmup, &res);
	bench_summarize(&r.items, r.p.enqueued, from, r.p.t_last_done, &res);
	res.client_cpu_pct = wall > 0 ? 100.0 * cpu_used / wall : 0;
	bench_report("beanstalkd", opt.workers, &res, r.p.empty_polls, nconns, opt.json);

	for (size_t i = 0; i < nconns; i++)
		close(conns[i]->fd);
	free(conns);
	free(fds);
	free(r.workers);
	bench_items_free(&r.items);
	return 0;
}
