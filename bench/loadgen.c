/* loadgen.c - load generator for environd's self-hosted work queue.
 *
 * It creates a self_hosted environment and an environment key, then runs N workers
 * through the full item cycle against a running server (enqueue -> long poll receives
 * the item -> ack -> heartbeat NO_HEARTBEAT -> force stop) and prints one result line:
 * items/s and the p50/p99 of the poll's wake-up latency after an enqueue.
 *
 * Cost model: one thread, one epoll set, non-blocking sockets, and one persistent
 * keep-alive connection per role of each worker (its poll, its item calls, its producer).
 * Requests are written by hand into each connection's fixed buffer; responses are framed
 * by Content-Length and the item's ids are pulled out of the body with a substring scanner
 * (http1.c). Nothing is allocated per request, so the generator's CPU per request is about
 * what the kernel's loopback TCP costs: it has to stay far below the server's for the
 * ratios to measure the server (`--static` measures its ceiling against a static server).
 *
 * Held long polls cost nothing while they wait: they are idle sockets that epoll does not
 * report. A worker starts a cycle by holding a poll and asking its producer for one enqueue,
 * so at most N items are live at once (closed loop). Any held poll may receive any item;
 * items are matched back to their enqueue by the session id in data.id, which encodes a
 * sequence number.
 *
 * Figures (all from CLOCK_MONOTONIC, taken when the loop reads the response):
 *   wake       = poll answered - enqueue request written.
 *   after_201  = poll answered - enqueue answered (signed: the server may answer the poll
 *                before the producer reads its own 201).
 *   enqueue    = the enqueue's own round trip.
 *   cycle      = poll answered -> stop answered (ack + heartbeat + stop round trips).
 *
 * Other modes, on the same connections and parser:
 *   --hold-ms H   wake-up: the enqueue is written H ms after the poll, so the poll is
 *                 surely held when the item arrives (run it with one worker);
 *   --env-id/--env-key  use an existing environment whose queue was filled beforehand
 *                 (bench/run's depth figures): items this run did not enqueue are accepted,
 *                 FIFO hands them out first, and the wake figures are not reported;
 *   --held N      N connections each holding polls in a loop: how late each answer comes
 *                 after block_ms, errors, and (--rss-pid) the server's peak RSS;
 *   --static PATH closed-loop GETs of PATH on --workers connections: the generator's own
 *                 ceiling in requests/s per CPU second, against a static server (nginx).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "benchlib.h"
#include "http1.h"

#define BETA_HEADER "anthropic-beta: managed-agents-2026-04-01\r\n"
#define ID_MAX 128
#define KEY_MAX 256
#define WORKERS_MAX 1024
#define HELD_MAX 60000

/* ---- options ------------------------------------------------------------- */

struct options {
	const char *url;
	const char *api_key;
	const char *env_id;  /* an existing, pre-filled environment */
	const char *env_key; /* and its environment key */
	const char *static_path;
	long workers;
	long items;     /* 0 = run for `seconds` */
	double seconds; /* 0 = run for `items` */
	long warmup;    /* completed items left out of every figure */
	long block_ms;
	long hold_ms;   /* wake-up mode: enqueue this long after the poll was written */
	long held;      /* held-polls mode: this many connections */
	long rss_pid;
	double timeout; /* hard bound on the whole run, seconds */
	bool json;
	bool keep_env;
};

static const char usage_text[] =
	"usage: loadgen [OPTIONS]\n"
	"Drive environd's work queue: enqueue -> poll -> ack -> heartbeat -> stop.\n"
	"\n"
	"  --url URL[,URL...] server base URL, http://A.B.C.D:PORT; several: a fleet's nodes,\n"
	"                     worker i on the i-th, modulo (env ENVIROND_URL;\n"
	"                     default http://127.0.0.1:8080)\n"
	"  --api-key KEY      API key (env ENVIROND_API_KEY)\n"
	"  --workers N        concurrent workers (connections with --static), 1-1024 (default 1)\n"
	"  --items M          stop after M items\n"
	"  --seconds S        stop enqueuing after S seconds (default 5 when --items is absent)\n"
	"  --warmup K         leave the first K completed items out of the figures (default 0)\n"
	"  --block-ms B       poll block_ms, 1-999 (default 999)\n"
	"  --hold-ms H        enqueue H ms after each poll is written (wake-up latency of a held poll)\n"
	"  --env-id ID        use this existing environment (its queue may be pre-filled)...\n"
	"  --env-key KEY      ...with this environment key; it is not deleted at the end\n"
	"  --held N           hold N polls (N connections) for --seconds; report lateness and errors\n"
	"  --rss-pid PID      with --held: sample this process's VmRSS every 100 ms, report the peak\n"
	"  --static PATH      closed-loop GET PATH on --workers connections (the generator's ceiling)\n"
	"  --timeout S        hard limit on the whole run (default: seconds + 30, or 300)\n"
	"  --keep-env         do not delete the benchmark environment at the end\n"
	"  --json             print the result as one JSON object\n"
	"  --help             this text\n"
	"\n"
	"Pin it with taskset from outside, on a different CPU from the server.\n";

static void parse_options(int argc, char **argv, struct options *o)
{
	enum { O_URL = 256, O_KEY, O_WORKERS, O_ITEMS, O_SECONDS, O_WARMUP, O_BLOCK, O_HOLD, O_ENV_ID,
	       O_ENV_KEY, O_HELD, O_RSS, O_STATIC, O_TIMEOUT, O_KEEP, O_JSON, O_HELP };
	static const struct option longopts[] = {
		{"url", required_argument, NULL, O_URL},
		{"api-key", required_argument, NULL, O_KEY},
		{"workers", required_argument, NULL, O_WORKERS},
		{"items", required_argument, NULL, O_ITEMS},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"block-ms", required_argument, NULL, O_BLOCK},
		{"hold-ms", required_argument, NULL, O_HOLD},
		{"env-id", required_argument, NULL, O_ENV_ID},
		{"env-key", required_argument, NULL, O_ENV_KEY},
		{"held", required_argument, NULL, O_HELD},
		{"rss-pid", required_argument, NULL, O_RSS},
		{"static", required_argument, NULL, O_STATIC},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"keep-env", no_argument, NULL, O_KEEP},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	o->url = getenv("ENVIROND_URL");
	o->api_key = getenv("ENVIROND_API_KEY");
	o->workers = 1;
	o->block_ms = 999;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_URL: o->url = optarg; break;
		case O_KEY: o->api_key = optarg; break;
		case O_WORKERS: o->workers = bench_parse_long("--workers", optarg, 1, WORKERS_MAX); break;
		case O_ITEMS: o->items = bench_parse_long("--items", optarg, 1, BENCH_ITEMS_MAX); break;
		case O_SECONDS: o->seconds = bench_parse_double("--seconds", optarg, 0.1, 3600); break;
		case O_WARMUP: o->warmup = bench_parse_long("--warmup", optarg, 0, BENCH_ITEMS_MAX); break;
		case O_BLOCK: o->block_ms = bench_parse_long("--block-ms", optarg, 1, 999); break;
		case O_HOLD: o->hold_ms = bench_parse_long("--hold-ms", optarg, 1, 500); break;
		case O_ENV_ID: o->env_id = optarg; break;
		case O_ENV_KEY: o->env_key = optarg; break;
		case O_HELD: o->held = bench_parse_long("--held", optarg, 1, HELD_MAX); break;
		case O_RSS: o->rss_pid = bench_parse_long("--rss-pid", optarg, 1, 1L << 30); break;
		case O_STATIC: o->static_path = optarg; break;
		case O_TIMEOUT: o->timeout = bench_parse_double("--timeout", optarg, 1, 7200); break;
		case O_KEEP: o->keep_env = true; break;
		case O_JSON: o->json = true; break;
		case O_HELP: fputs(usage_text, stdout); exit(0);
		default: fputs(usage_text, stderr); exit(2);
		}
	}
	if (optind < argc)
		bench_die("unexpected argument '%s' (see --help)", argv[optind]);
	if (!o->url || !*o->url)
		o->url = "http://127.0.0.1:8080";
	if (o->static_path && (o->static_path[0] != '/' || strcspn(o->static_path, " \r\n") != strlen(o->static_path) ||
			       strlen(o->static_path) > 512))
		bench_die("--static: expected an absolute path without spaces, got '%s'", o->static_path);
	if (!o->static_path && (!o->api_key || !*o->api_key))
		bench_die("no API key: pass --api-key or set ENVIROND_API_KEY");
	if (!o->env_id != !o->env_key)
		bench_die("--env-id and --env-key go together");
	if (o->env_id && (strlen(o->env_id) >= ID_MAX || strcspn(o->env_id, "/?# \r\n") != strlen(o->env_id)))
		bench_die("--env-id: not an environment id: '%s'", o->env_id);
	if (o->env_key && (strlen(o->env_key) >= KEY_MAX || strcspn(o->env_key, " \r\n") != strlen(o->env_key)))
		bench_die("--env-key: not a key");
	if (o->api_key && (strlen(o->api_key) >= KEY_MAX || strcspn(o->api_key, " \r\n") != strlen(o->api_key)))
		bench_die("--api-key: not a key");
	if ((o->held || o->static_path) && o->items)
		bench_die("--held and --static run for --seconds, not --items");
	bench_check_run_options(o->items, &o->seconds, o->warmup, o->hold_ms, o->block_ms, &o->timeout);
}

/* ---- the run --------------------------------------------------------------- */

enum kind { K_POLL, K_ACK, K_HEARTBEAT, K_STOP, K_ENQUEUE, K_STATIC };

static const char *const kind_names[] = {
	[K_POLL] = "poll", [K_ACK] = "ack", [K_HEARTBEAT] = "heartbeat",
	[K_STOP] = "stop", [K_ENQUEUE] = "enqueue", [K_STATIC] = "GET",
};

struct worker {
	struct h1_conn poll, act, prod;
	long index;
	char work_id[ID_MAX];
	uint64_t deliv;            /* the delivery (record index) its item calls are about */
	unsigned pending_enqueues; /* cycles started while the producer was busy */
	int64_t enqueue_at;        /* --hold-ms: when to write the enqueue; 0 = none due */
};

#define NODES_MAX 16

struct run {
	const struct options *opt;
	struct sockaddr_in addr;    /* the first node: set-up calls, held polls, --static */
	char host_port[96];
	struct sockaddr_in nodes[NODES_MAX]; /* --url A,B,C: worker i talks to node i mod n */
	int n_nodes;
	int epfd;
	char env_id[ID_MAX];
	char env_path[256];     /* /v1/environments/{id} */
	char run_tag[32];       /* bench<hex>: session ids are sesn_<run_tag>_<seq> */
	char env_headers[512];  /* Host, environment key, beta */
	char api_headers[512];  /* Host, API key, beta, content type */
	struct worker *workers;
	struct bench_items items;    /* by enqueue sequence number */
	struct bench_items delivery; /* by delivery, for pre-filled queues */
	struct bench_progress p;
	bool prefilled;
	uint64_t foreign;       /* deliveries of items this run did not enqueue */
	uint64_t polls_held;    /* polls outstanding */
	uint64_t connects;
};

static bool may_enqueue(struct run *r) { return bench_may_enqueue(&r->p, r->opt->items); }

static void conn_open_to(struct run *r, struct h1_conn *c, void *owner, const struct sockaddr_in *addr)
{
	h1_connect(c, addr);
	c->owner = owner;
	r->connects++;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		bench_die("epoll_ctl: %s", strerror(errno));
}

static void conn_open(struct run *r, struct h1_conn *c, void *owner) { conn_open_to(r, c, owner, &r->addr); }

/* Writes the request built in c->out; arms EPOLLOUT if the socket is full. */
static void conn_submit(struct run *r, struct h1_conn *c, enum kind kind)
{
	if (c->busy)
		bench_die("internal: two requests outstanding on one connection");
	c->kind = (int)kind;
	c->busy = true;
	if (!h1_flush(c)) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
		c->want_out = true;
		if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
			bench_die("epoll_ctl: %s", strerror(errno));
	}
}

static void die_status(const struct h1_conn *c, int expected)
{
	int line = (int)strcspn(c->out, "\r");
	fprintf(stderr, "loadgen: %s %.*s: expected HTTP %d, got %d: %.400s\n", kind_names[c->kind], line, c->out,
		expected, c->status, h1_body(c));
	exit(1);
}

static void die_body(const struct h1_conn *c, const char *what)
{
	int line = (int)strcspn(c->out, "\r");
	fprintf(stderr, "loadgen: %s %.*s: %s: %.400s\n", kind_names[c->kind], line, c->out, what, h1_body(c));
	exit(1);
}

#define ENQUEUE_BODY_HEAD "{\"data\":{\"type\":\"session\",\"id\":\"sesn_"
#define ENQUEUE_BODY_TAIL "\"}}"

static void start_enqueue(struct run *r, struct worker *w)
{
	struct h1_conn *c = &w->prod;
	uint64_t seq = r->p.enqueued++;
	char digits[24];
	size_t nd = 0;
	for (uint64_t v = seq;; v /= 10) {
		digits[sizeof(digits) - 1 - nd++] = (char)('0' + v % 10);
		if (v < 10)
			break;
	}
	size_t tag_len = strlen(r->run_tag);
	size_t body_len = sizeof(ENQUEUE_BODY_HEAD) - 1 + tag_len + 1 + nd + sizeof(ENQUEUE_BODY_TAIL) - 1;
	h1_set_request(c, "POST ", r->env_path, "/work HTTP/1.1\r\n", r->api_headers, "Content-Length: ", NULL);
	h1_append_u64(c, body_len);
	h1_append(c, "\r\n\r\n" ENQUEUE_BODY_HEAD, 4 + sizeof(ENQUEUE_BODY_HEAD) - 1);
	h1_append(c, r->run_tag, tag_len);
	h1_append(c, "_", 1);
	h1_append(c, digits + sizeof(digits) - nd, nd);
	h1_append(c, ENQUEUE_BODY_TAIL, sizeof(ENQUEUE_BODY_TAIL) - 1);
	c->seq = seq;
	bench_item_at(&r->items, seq)->enq_start = bench_now_ns();
	conn_submit(r, c, K_ENQUEUE);
}

static void start_poll(struct run *r, struct worker *w)
{
	struct h1_conn *c = &w->poll;
	h1_set_request(c, "GET ", r->env_path, "/work/poll?block_ms=", NULL);
	h1_append_u64(c, (uint64_t)r->opt->block_ms);
	h1_append(c, " HTTP/1.1\r\n", 11);
	h1_append(c, r->env_headers, strlen(r->env_headers));
	h1_append(c, "Anthropic-Worker-ID: ", 21);
	h1_append(c, r->run_tag, strlen(r->run_tag));
	h1_append(c, "-w", 2);
	h1_append_u64(c, (uint64_t)w->index);
	h1_append(c, "\r\n\r\n", 4);
	r->polls_held++;
	conn_submit(r, c, K_POLL);
}

static void start_item_call(struct run *r, struct worker *w, enum kind kind)
{
	struct h1_conn *c = &w->act;
	switch (kind) {
	case K_ACK:
		h1_set_request(c, "POST ", r->env_path, "/work/", w->work_id, "/ack HTTP/1.1\r\n", r->env_headers,
			       "Content-Length: 0\r\n\r\n", NULL);
		break;
	case K_HEARTBEAT:
		h1_set_request(c, "POST ", r->env_path, "/work/", w->work_id,
			       "/heartbeat?expected_last_heartbeat=NO_HEARTBEAT HTTP/1.1\r\n", r->env_headers,
			       "Content-Length: 0\r\n\r\n", NULL);
		break;
	case K_STOP:
		h1_set_request(c, "POST ", r->env_path, "/work/", w->work_id, "/stop HTTP/1.1\r\n", r->env_headers,
			       "content-type: application/json\r\nContent-Length: 14\r\n\r\n{\"force\":true}", NULL);
		break;
	default:
		bench_die("internal: bad item call");
	}
	conn_submit(r, c, kind);
}

/* After enqueueing closed, is a poll still needed to collect an item already enqueued? */
static bool poll_needed(const struct run *r)
{
	if (!r->p.enqueue_closed)
		return true;
	if (r->prefilled)
		return false;
	return r->p.enqueued > r->p.delivered + r->polls_held;
}

/* Enqueues now, or as soon as the worker's producer is free. */
static void enqueue_now(struct run *r, struct worker *w)
{
	if (!may_enqueue(r))
		return;
	if (w->prod.busy)
		w->pending_enqueues++;
	else
		start_enqueue(r, w);
}

/* A cycle: hold a poll, and have this worker's producer enqueue one item (at once, or
 * --hold-ms later so that the poll is surely held when the item arrives). */
static void begin_cycle(struct run *r, struct worker *w)
{
	if (poll_needed(r))
		start_poll(r, w);
	if (!may_enqueue(r))
		return;
	if (r->opt->hold_ms)
		w->enqueue_at = bench_now_ns() + r->opt->hold_ms * 1000000;
	else
		enqueue_now(r, w);
}

/* Parses "sesn_<run_tag>_<seq>"; false for a session this run did not enqueue. */
static bool parse_session(const struct run *r, const char *sid, uint64_t *seq)
{
	size_t tag_len = strlen(r->run_tag);
	if (strncmp(sid, "sesn_", 5) != 0 || strncmp(sid + 5, r->run_tag, tag_len) != 0 || sid[5 + tag_len] != '_')
		return false;
	const char *d = sid + 5 + tag_len + 1;
	uint64_t v = 0;
	if (!*d)
		return false;
	for (; *d; d++) {
		if (*d < '0' || *d > '9' || v > UINT64_MAX / 10 - 10)
			return false;
		v = v * 10 + (uint64_t)(*d - '0');
	}
	*seq = v;
	return true;
}

static void on_poll(struct run *r, struct worker *w, struct h1_conn *c, int64_t t)
{
	r->polls_held--;
	if (c->status != 200)
		die_status(c, 200);
	const char *body = h1_body(c);
	if (c->body_len == 4 && memcmp(body, "null", 4) == 0) {
		r->p.empty_polls++;
		if (poll_needed(r))
			start_poll(r, w);
		return;
	}
	char sid[ID_MAX];
	if (!h1_has(body, c->body_len, "\"type\":\"work\"") || !h1_has(body, c->body_len, "\"secret\":\""))
		die_body(c, "not a work item with a secret");
	if (!h1_scan_string(body, c->body_len, "\"id\":\"work_", w->work_id, sizeof(w->work_id)) ||
	    !h1_scan_string(body, c->body_len, "\"id\":\"sesn_", sid, sizeof(sid)))
		die_body(c, "no work id or session id");
	uint64_t seq;
	bool own = parse_session(r, sid, &seq);
	if (own && seq >= r->p.enqueued)
		die_body(c, "delivered a session this run has not enqueued yet");
	if (!own && !r->prefilled)
		die_body(c, "delivered a session this run did not enqueue");
	if (!own)
		r->foreign++;
	if (own) {
		struct bench_item *it = bench_item_at(&r->items, seq);
		if (it->poll_done)
			die_body(c, "delivered twice (a redelivery, though every delivery here is acked at once)");
		it->poll_done = t;
	}
	uint64_t d = r->p.delivered++;
	if (r->prefilled) {
		bench_item_at(&r->delivery, d)->poll_done = t;
		w->deliv = d;
	} else {
		w->deliv = seq;
	}
	start_item_call(r, w, K_ACK);
}

static void on_item_call(struct run *r, struct worker *w, struct h1_conn *c, int64_t t)
{
	if (c->status != 200)
		die_status(c, 200);
	const char *body = h1_body(c);
	switch (c->kind) {
	case K_ACK:
		if (!h1_has(body, c->body_len, "\"state\":\"starting\""))
			die_body(c, "expected \"state\":\"starting\"");
		start_item_call(r, w, K_HEARTBEAT);
		return;
	case K_HEARTBEAT:
		if (!h1_has(body, c->body_len, "\"type\":\"work_heartbeat\"") ||
		    !h1_has(body, c->body_len, "\"state\":\"active\"") ||
		    !h1_has(body, c->body_len, "\"lease_extended\":true"))
			die_body(c, "expected a work_heartbeat, state active, lease_extended true");
		start_item_call(r, w, K_STOP);
		return;
	case K_STOP:
		if (!h1_has(body, c->body_len, "\"state\":\"stopped\""))
			die_body(c, "expected \"state\":\"stopped\"");
		bench_item_at(r->prefilled ? &r->delivery : &r->items, w->deliv)->stop_done = t;
		r->p.completed++;
		r->p.t_last_done = t;
		if (r->p.completed == (uint64_t)r->opt->warmup)
			r->p.t_warm = t;
		begin_cycle(r, w);
		return;
	default:
		bench_die("internal: bad item call");
	}
}

static void on_enqueue(struct run *r, struct worker *w, struct h1_conn *c, int64_t t)
{
	if (c->status != 201)
		die_status(c, 201);
	if (!h1_has(h1_body(c), c->body_len, "\"state\":\"queued\""))
		die_body(c, "expected \"state\":\"queued\"");
	bench_item_at(&r->items, c->seq)->enq_done = t;
	if (bench_take_pending(&r->p, &w->pending_enqueues, r->opt->items))
		start_enqueue(r, w);
}

/* ---- the event loop, shared by every mode ------------------------------------- */

typedef void (*response_fn)(struct run *r, struct h1_conn *c, int64_t t);
typedef void (*closed_fn)(struct run *r, struct h1_conn *c);

static void on_cycle_response(struct run *r, struct h1_conn *c, int64_t t)
{
	struct worker *w = c->owner;
	switch (c->kind) {
	case K_POLL: on_poll(r, w, c, t); break;
	case K_ENQUEUE: on_enqueue(r, w, c, t); break;
	default: on_item_call(r, w, c, t); break;
	}
}

/* Handles what epoll reported on one connection: the rest of a request to write, and
 * every complete response that arrived. */
static void conn_ready(struct run *r, struct h1_conn *c, uint32_t events, response_fn on_response, closed_fn on_closed)
{
	if ((events & EPOLLOUT) && c->want_out && h1_flush(c)) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		c->want_out = false;
		if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
			bench_die("epoll_ctl: %s", strerror(errno));
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		int rc = h1_read(c);
		if (rc == 0)
			return;
		bool closing = rc < 0;
		if (rc > 0) {
			/* A response that closes the connection is still handled first: its status
			 * says why. */
			int64_t t = bench_now_ns();
			if (!c->busy)
				bench_die("a response nobody asked for: HTTP %d %.200s", c->status, h1_body(c));
			c->busy = false;
			on_response(r, c, t);
			closing = c->closing;
			h1_consume(c);
		}
		if (closing) {
			if (on_closed) {
				on_closed(r, c);
				return;
			}
			bench_die("the server closed a keep-alive connection (%s outstanding: %.*s)",
				  c->busy ? kind_names[c->kind] : "nothing", (int)strcspn(c->out, "\r"), c->out);
		}
	}
}

/* Waits at most until `until_ns` for events and handles them. */
static void loop_once(struct run *r, int64_t until_ns, response_fn on_response, closed_fn on_closed)
{
	struct epoll_event events[256];
	int64_t wait_ns = until_ns - bench_now_ns();
	int wait_ms = wait_ns <= 0 ? 0 : wait_ns > 100000000 ? 100 : (int)((wait_ns + 999999) / 1000000);
	int n = epoll_wait(r->epfd, events, (int)(sizeof(events) / sizeof(events[0])), wait_ms);
	if (n < 0 && errno != EINTR)
		bench_die("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++)
		conn_ready(r, events[i].data.ptr, events[i].events, on_response, on_closed);
}

static void run_cycles(struct run *r)
{
	const struct options *o = r->opt;
	struct bench_bounds bounds;
	bench_bounds_init(&bounds, &r->p, o->seconds, o->timeout);
	for (long i = 0; i < o->workers; i++)
		begin_cycle(r, &r->workers[i]);
	for (;;) {
		int64_t t = bench_now_ns();
		bench_bounds_check(&bounds, &r->p, t);
		if (r->p.enqueue_closed) {
			if (!r->prefilled && r->p.completed == r->p.enqueued)
				return;
			if (r->prefilled && r->p.completed == r->p.delivered) {
				bool quiet = true;
				for (long i = 0; i < o->workers; i++)
					quiet = quiet && !r->workers[i].prod.busy;
				if (quiet)
					return;
			}
		}
		int64_t until = t + 100000000;
		if (o->hold_ms) {
			for (long i = 0; i < o->workers; i++) {
				struct worker *w = &r->workers[i];
				if (bench_hold_due(&w->enqueue_at, t, &until))
					enqueue_now(r, w);
			}
		}
		loop_once(r, until, on_cycle_response, NULL);
	}
}

/* ---- set-up and tear-down ------------------------------------------------------- */

static void setup_headers(struct run *r, const char *env_key)
{
	bench_format(r->env_headers, sizeof(r->env_headers), "Host: %s\r\nAuthorization: Bearer %s\r\n" BETA_HEADER,
		     r->host_port, env_key);
}

/* Creates the environment and its key (unless --env-id gave them). */
static void setup(struct run *r)
{
	const struct options *o = r->opt;
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		bench_die("getrandom failed");
	bench_format(r->run_tag, sizeof(r->run_tag), "bench%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		     rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	bench_format(r->api_headers, sizeof(r->api_headers),
		     "Host: %s\r\nx-api-key: %s\r\n" BETA_HEADER "content-type: application/json\r\n", r->host_port,
		     o->api_key);
	if (o->env_id) {
		bench_format(r->env_id, sizeof(r->env_id), "%s", o->env_id);
		bench_format(r->env_path, sizeof(r->env_path), "/v1/environments/%s", r->env_id);
		setup_headers(r, o->env_key);
		return;
	}
	static struct h1_conn c;
	char body[128], len[16];
	bench_format(body, sizeof(body), "{\"name\":\"bench-%s\",\"config\":{\"type\":\"self_hosted\"}}", r->run_tag + 5);
	bench_format(len, sizeof(len), "%zu", strlen(body));
	h1_set_request(&c, "POST /v1/environments HTTP/1.1\r\n", r->api_headers, "Content-Length: ", len,
		       "\r\nConnection: close\r\n\r\n", body, NULL);
	c.kind = K_STATIC;
	if (h1_call_blocking(&r->addr, &c) != 200)
		die_status(&c, 200);
	if (!h1_scan_string(h1_body(&c), c.body_len, "\"id\":\"env_", r->env_id, sizeof(r->env_id)))
		die_body(&c, "create environment: no id");
	h1_close(&c);
	bench_format(r->env_path, sizeof(r->env_path), "/v1/environments/%s", r->env_id);

	h1_set_request(&c, "POST ", r->env_path, "/keys HTTP/1.1\r\n", r->api_headers,
		       "Content-Length: 16\r\nConnection: close\r\n\r\n{\"name\":\"bench\"}", NULL);
	if (h1_call_blocking(&r->addr, &c) != 200)
		die_status(&c, 200);
	char key[KEY_MAX];
	if (!h1_scan_string(h1_body(&c), c.body_len, "\"key\":\"envd_env_", key, sizeof(key)))
		die_body(&c, "create environment key: no envd_env_ key");
	h1_close(&c);
	setup_headers(r, key);
}

static void teardown(struct run *r)
{
	if (r->opt->keep_env || r->opt->env_id || r->opt->static_path)
		return;
	static struct h1_conn c;
	h1_set_request(&c, "DELETE ", r->env_path, " HTTP/1.1\r\n", r->api_headers, "Connection: close\r\n\r\n", NULL);
	c.kind = K_STATIC;
	if (h1_call_blocking(&r->addr, &c) != 200)
		die_status(&c, 200);
	h1_close(&c);
}

static void open_workers(struct run *r)
{
	r->workers = calloc((size_t)r->opt->workers, sizeof(*r->workers));
	if (!r->workers)
		bench_die("out of memory for workers");
	for (long i = 0; i < r->opt->workers; i++) {
		struct worker *w = &r->workers[i];
		w->index = i;
		const struct sockaddr_in *node = &r->nodes[i % r->n_nodes];
		conn_open_to(r, &w->poll, w, node);
		if (r->opt->static_path)
			continue;
		conn_open_to(r, &w->act, w, node);
		conn_open_to(r, &w->prod, w, node);
	}
}

static void close_workers(struct run *r)
{
	for (long i = 0; i < r->opt->workers; i++) {
		struct worker *w = &r->workers[i];
		h1_close(&w->poll);
		if (!r->opt->static_path) {
			h1_close(&w->act);
			h1_close(&w->prod);
		}
	}
	free(r->workers);
	r->workers = NULL;
}

/* ---- --static: the generator's own ceiling ------------------------------------- */

static uint64_t static_done;
static bool static_closed;

static void static_send(struct run *r, struct h1_conn *c)
{
	h1_set_request(c, "GET ", r->opt->static_path, " HTTP/1.1\r\nHost: ", r->host_port, "\r\n\r\n", NULL);
	conn_submit(r, c, K_STATIC);
}

static void on_static_response(struct run *r, struct h1_conn *c, int64_t t)
{
	(void)t;
	char id[ID_MAX];
	if (c->status != 200)
		die_status(c, 200);
	/* The same scan a poll's answer gets, so the per-response work is the cycle's. */
	if (!h1_scan_string(h1_body(c), c->body_len, "\"id\":\"work_", id, sizeof(id)))
		die_body(c, "the static reply should be work-item shaped (\"id\":\"work_...\")");
	static_done++;
	if (!static_closed)
		static_send(r, c);
}

static void run_static(struct run *r)
{
	const struct options *o = r->opt;
	double cpu0 = bench_cpu_seconds();
	int64_t t0 = bench_now_ns(), until = t0 + (int64_t)(o->seconds * 1e9);
	for (long i = 0; i < o->workers; i++)
		static_send(r, &r->workers[i].poll);
	for (;;) {
		int64_t t = bench_now_ns();
		if (t >= until)
			static_closed = true;
		if (static_closed) {
			bool idle = true;
			for (long i = 0; i < o->workers; i++)
				idle = idle && !r->workers[i].poll.busy;
			if (idle)
				break;
		}
		if (t >= t0 + (int64_t)(o->timeout * 1e9))
			bench_die("timed out after %.0f s", o->timeout);
		loop_once(r, until, on_static_response, NULL);
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9, cpu = bench_cpu_seconds() - cpu0;
	printf(o->json ? "{\"system\":\"static\",\"connections\":%ld,\"requests\":%" PRIu64
			 ",\"seconds\":%.3f,\"rps\":%.0f,\"client_cpu_pct\":%.0f,\"rps_per_cpu\":%.0f}\n"
		       : "system=static connections=%ld requests=%" PRIu64
			 " seconds=%.3f rps=%.0f client_cpu_pct=%.0f rps_per_cpu=%.0f\n",
	       o->workers, static_done, secs, (double)static_done / secs, 100.0 * cpu / secs,
	       cpu > 0 ? (double)static_done / cpu : 0.0);
}

/* ---- --held: many held polls ----------------------------------------------------- */

struct held_state {
	struct h1_conn *conns;
	bool *answered;   /* per connection: has it had an answer yet? */
	int64_t *late_ns; /* each answer's lateness after block_ms, grown by doubling */
	size_t n_late, cap_late;
	uint64_t answers, errors, late_50ms;
	uint64_t reconnects;   /* connections closed after an answer */
	uint64_t never_served; /* connections closed before their first answer */
	bool closed;
};
static struct held_state held;

static long rss_kib(long pid)
{
	char path[64], line[256];
	bench_format(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kib = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void held_send(struct run *r, struct h1_conn *c)
{
	h1_set_request(c, "GET ", r->env_path, "/work/poll?block_ms=", NULL);
	h1_append_u64(c, (uint64_t)r->opt->block_ms);
	h1_append(c, " HTTP/1.1\r\n", 11);
	h1_append(c, r->env_headers, strlen(r->env_headers));
	h1_append(c, "Anthropic-Worker-ID: held-", 26);
	h1_append_u64(c, (uint64_t)(c - held.conns));
	h1_append(c, "\r\n\r\n", 4);
	c->seq = (uint64_t)bench_now_ns();
	conn_submit(r, c, K_POLL);
}

static void on_held_response(struct run *r, struct h1_conn *c, int64_t t)
{
	held.answers++;
	held.answered[c - held.conns] = true;
	if (c->status != 200 || c->body_len != 4 || memcmp(h1_body(c), "null", 4) != 0) {
		if (held.errors++ < 5)
			fprintf(stderr, "loadgen: held poll answered HTTP %d: %.200s\n", c->status, h1_body(c));
	} else {
		int64_t late = t - (int64_t)c->seq - r->opt->block_ms * 1000000;
		if (late > 50000000)
			held.late_50ms++;
		if (held.n_late == held.cap_late) {
			size_t cap = held.cap_late ? held.cap_late * 2 : 65536;
			int64_t *v = realloc(held.late_ns, cap * sizeof(*v));
			if (!v)
				bench_die("out of memory for %zu answers", cap);
			held.late_ns = v;
			held.cap_late = cap;
		}
		held.late_ns[held.n_late++] = late;
	}
	if (!held.closed)
		held_send(r, c);
}

/* A closed connection is counted and reopened, so that N polls stay held. One closed before
 * any answer is counted apart (`never_served`): that is what a connection the kernel
 * accepted into a full listen queue looks like (it is reset when the queue overflows). */
static void on_held_closed(struct run *r, struct h1_conn *c)
{
	bool served = held.answered[c - held.conns];
	if (held.reconnects + held.never_served < 5)
		fprintf(stderr, "loadgen: the server closed a held poll's connection %s\n",
			!served ? "before answering on it" : c->busy ? "with a poll unanswered" : "after answering");
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	h1_close(c);
	if (served)
		held.reconnects++;
	else
		held.never_served++;
	conn_open(r, c, NULL);
	if (!held.closed)
		held_send(r, c);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void run_held(struct run *r)
{
	const struct options *o = r->opt;
	long n = o->held, rss_idle = o->rss_pid ? rss_kib(o->rss_pid) : -1, rss_peak = rss_idle;
	held.conns = calloc((size_t)n, sizeof(*held.conns));
	held.answered = calloc((size_t)n, sizeof(*held.answered));
	if (!held.conns || !held.answered)
		bench_die("out of memory for %ld connections", n);
	int64_t t0 = bench_now_ns(), deadline = t0 + (int64_t)(o->timeout * 1e9);
	/* Opened in batches of 250 with 20 ms between them, handling answers meanwhile (a poll
	 * answered while the rest connect is polled again at once): a connect completes in the
	 * kernel before the server accepts it, so opening them all at once would overflow the
	 * server's listen queue while it is busy. */
	for (long i = 0; i < n; i++) {
		conn_open(r, &held.conns[i], NULL);
		held_send(r, &held.conns[i]);
		if (i % 250 == 249)
			for (int64_t pause = bench_now_ns() + 20000000; bench_now_ns() < pause;)
				loop_once(r, pause, on_held_response, on_held_closed);
		if (bench_now_ns() >= deadline)
			bench_die("timed out opening %ld connections (%ld open)", n, i + 1);
	}
	double cpu0 = bench_cpu_seconds();
	int64_t t_all = bench_now_ns(), until = t_all + (int64_t)(o->seconds * 1e9), next_rss = t_all;
	uint64_t answers_at_start = held.answers, answers_at_end = 0;
	size_t late_from = held.n_late;
	long rss_held = -1;
	for (;;) {
		int64_t t = bench_now_ns();
		if (t >= deadline)
			bench_die("timed out");
		if (o->rss_pid && t >= next_rss) {
			long kib = rss_kib(o->rss_pid);
			if (kib < 0)
				bench_die("the server (pid %ld) is gone", o->rss_pid);
			if (kib > rss_peak)
				rss_peak = kib;
			rss_held = kib;
			next_rss = t + 100000000;
		}
		if (t >= until) {
			answers_at_end = held.answers; /* the drain below is not part of the steady rate */
			break;
		}
		loop_once(r, next_rss < until ? next_rss : until, on_held_response, on_held_closed);
	}
	/* Every outstanding poll is answered (null after block_ms) before the figures are taken. */
	held.closed = true;
	int64_t drain_until = bench_now_ns() + (o->block_ms + 5000) * 1000000;
	for (;;) {
		bool busy = false;
		for (long i = 0; i < n && !busy; i++)
			busy = held.conns[i].busy;
		if (!busy)
			break;
		if (bench_now_ns() >= drain_until) {
			uint64_t missing = 0;
			for (long i = 0; i < n; i++)
				missing += held.conns[i].busy;
			held.errors += missing; /* unanswered polls are errors */
			fprintf(stderr, "loadgen: %" PRIu64 " held polls were not answered within block_ms + 5 s\n", missing);
			break;
		}
		loop_once(r, drain_until, on_held_response, on_held_closed);
	}
	double secs = (double)(until - t_all) / 1e9;
	double cpu_pct = 100.0 * (bench_cpu_seconds() - cpu0) / ((double)(bench_now_ns() - t_all) / 1e9);
	size_t k = held.n_late - late_from;
	int64_t *v = held.late_ns + late_from;
	qsort(v, k, sizeof(*v), cmp_i64);
	double p50 = k ? (double)v[(k - 1) / 2] / 1e6 : NAN, p99 = k ? (double)v[(size_t)((double)(k - 1) * 0.99)] / 1e6 : NAN,
	       max = k ? (double)v[k - 1] / 1e6 : NAN, min = k ? (double)v[0] / 1e6 : NAN;
	printf(o->json ? "{\"system\":\"held\",\"held\":%ld,\"answers\":%" PRIu64 ",\"answers_per_s\":%.0f,"
			 "\"errors\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"never_served\":%" PRIu64 ",\"late_50ms\":%" PRIu64 ",\"late_min_ms\":%.1f,\"late_p50_ms\":%.1f,"
			 "\"late_p99_ms\":%.1f,\"late_max_ms\":%.1f,\"rss_idle_kib\":%ld,\"rss_peak_kib\":%ld,"
			 "\"rss_held_kib\":%ld,\"open_s\":%.2f,\"client_cpu_pct\":%.0f}\n"
		       : "system=held held=%ld answers=%" PRIu64 " answers_per_s=%.0f errors=%" PRIu64
			 " closed=%" PRIu64 " never_served=%" PRIu64 " late_50ms=%" PRIu64 " late_min_ms=%.1f late_p50_ms=%.1f late_p99_ms=%.1f late_max_ms=%.1f"
			 " rss_idle_kib=%ld rss_peak_kib=%ld rss_held_kib=%ld open_s=%.2f client_cpu_pct=%.0f\n",
	       n, held.answers, (double)(answers_at_end - answers_at_start) / secs, held.errors, held.reconnects, held.never_served, held.late_50ms, min, p50,
	       p99, max, rss_idle, rss_peak, rss_held, (double)(t_all - t0) / 1e9, cpu_pct);
	for (long i = 0; i < n; i++)
		h1_close(&held.conns[i]);
	free(held.conns);
	free(held.answered);
	free(held.late_ns);
}

int main(int argc, char **argv)
{
	bench_set_program("loadgen");
	struct options opt;
	parse_options(argc, argv, &opt);
	struct run r = {.opt = &opt, .prefilled = opt.env_id != NULL};
	/* --url A,B,C: a fleet's nodes. Set-up goes to the first; worker i and its producer
	 * to the i-th, modulo (so an item may be enqueued on one node and polled on another). */
	char urls[1024], scratch[96];
	bench_format(urls, sizeof(urls), "%s", opt.url);
	for (char *save = NULL, *u = strtok_r(urls, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		if (r.n_nodes == NODES_MAX)
			bench_die("--url: at most %d nodes", NODES_MAX);
		h1_parse_url(u, &r.nodes[r.n_nodes], r.n_nodes ? scratch : r.host_port,
			     r.n_nodes ? sizeof(scratch) : sizeof(r.host_port));
		r.n_nodes++;
	}
	if (!r.n_nodes)
		bench_die("--url: no URL");
	r.addr = r.nodes[0];
	r.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r.epfd < 0)
		bench_die("epoll_create1: %s", strerror(errno));
	if (opt.static_path) {
		open_workers(&r);
		run_static(&r);
		close_workers(&r);
		return 0;
	}
	setup(&r);
	if (opt.held) {
		run_held(&r);
		teardown(&r);
		return 0;
	}
	open_workers(&r);
	double cpu_start = bench_cpu_seconds();
	r.p.t_start = bench_now_ns();
	run_cycles(&r);
	/* On a pre-filled queue the items handed out were enqueued before the run: their
	 * records are by delivery, and their wake-up is not this run's. */
	if (r.prefilled)
		bench_finish(&r.delivery, r.p.delivered, &r.p, opt.warmup, cpu_start, true, "environd", opt.workers,
			     r.connects, opt.json);
	else
		bench_finish(&r.items, r.p.enqueued, &r.p, opt.warmup, cpu_start, false, "environd", opt.workers,
			     r.connects, opt.json);
	close_workers(&r);
	teardown(&r);
	bench_items_free(&r.items);
	bench_items_free(&r.delivery);
	close(r.epfd);
	return 0;
}
