/* loadgen.c - load generator for environd's self-hosted work queue.
 *
 * It creates a self_hosted environment and an environment key, then runs N workers
 * through the full item cycle against a running server (enqueue -> long poll receives
 * the item -> ack -> heartbeat NO_HEARTBEAT -> force stop) and prints one result line:
 * items/s and the p50/p99 of the poll's wake-up latency after an enqueue.
 *
 * Concurrency model: one thread, one libcurl multi handle driven through epoll
 * (curl_multi_socket_action), rather than one blocking thread per worker. The load
 * generator is meant to be pinned to a single CPU (taskset), and there one event loop is
 * cheaper and fairer than N threads: no context switch per request, no locks around the
 * shared per-item timing table, and every timestamp is taken by the same thread from the
 * same clock, so "enqueue answered" and "poll answered" are comparable. Held long polls
 * cost nothing while they wait: they are idle sockets that epoll does not report.
 *
 * Each worker owns three easy handles: its long poll (environment key +
 * Anthropic-Worker-ID), its item calls (ack, heartbeat, stop) and its producer (API key,
 * enqueue); libcurl keeps their connections alive and reuses them. A worker starts a
 * cycle by holding a poll and asking its producer for one enqueue, so at most N items
 * are live at once (closed loop). Any held poll may receive any item; items are matched
 * back to their enqueue by the session id in data.id, which encodes a sequence number.
 *
 * Figures (all from CLOCK_MONOTONIC, taken when the loop reads the completion):
 *   wake       = poll answered - enqueue request started: how long after a producer
 *                calls enqueue a held poll has the item (includes the enqueue's commit).
 *                The headline figure, because it is always positive.
 *   after_201  = poll answered - enqueue answered. Signed: the server often answers the
 *                poll a few microseconds before the producer reads its own 201.
 *   enqueue    = the enqueue request's own round trip.
 *   cycle      = poll answered -> stop answered (ack + heartbeat + stop round trips).
 * Bounded: --seconds or --items ends the enqueues, in-flight items drain, and a hard
 * --timeout stops everything.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "benchlib.h"

#define BETA_HEADER "anthropic-beta: managed-agents-2026-04-01"
#define RESPONSE_MAX 16384
#define URL_MAX 1024
#define BODY_MAX 256
#define ID_MAX 128
#define WORKERS_MAX 1024
#define URLS_MAX 16

/* ---- options ------------------------------------------------------------- */

struct options {
	const char *url;  /* the first of urls */
	const char *urls[URLS_MAX]; /* --url a,b,c: worker i talks to urls[i % n_urls] */
	size_t n_urls;
	const char *api_key;
	long workers;
	long items;     /* 0 = run for `seconds` */
	double seconds; /* 0 = run for `items` */
	long warmup;    /* completed items left out of every figure */
	long block_ms;
	double timeout; /* hard bound on the whole run, seconds */
	bool json;
	bool keep_env;
};

static const char usage_text[] =
	"usage: loadgen [OPTIONS]\n"
	"Drive environd's work queue: enqueue -> poll -> ack -> heartbeat -> stop.\n"
	"\n"
	"  --url URL[,URL...] server base URL (env ENVIROND_URL; default http://127.0.0.1:8080);\n"
	"                     several (a fleet's nodes): worker i and its producer use the i-th mod n\n"
	"  --api-key KEY      API key (env ENVIROND_API_KEY)\n"
	"  --workers N        concurrent workers, 1-1024 (default 1)\n"
	"  --items M          stop after M items\n"
	"  --seconds S        stop enqueuing after S seconds (default 5 when --items is absent)\n"
	"  --warmup K         leave the first K completed items out of the figures (default 0)\n"
	"  --block-ms B       poll block_ms, 1-999 (default 999)\n"
	"  --timeout S        hard limit on the whole run (default: seconds + 30, or 300)\n"
	"  --keep-env         do not delete the benchmark environment at the end\n"
	"  --json             print the result as one JSON object\n"
	"  --help             this text\n"
	"\n"
	"Pin it with taskset from outside, on a different CPU from the server.\n";

static void parse_options(int argc, char **argv, struct options *o)
{
	enum { O_URL = 256, O_KEY, O_WORKERS, O_ITEMS, O_SECONDS, O_WARMUP, O_BLOCK, O_TIMEOUT,
	       O_KEEP, O_JSON, O_HELP };
	static const struct option longopts[] = {
		{"url", required_argument, NULL, O_URL},
		{"api-key", required_argument, NULL, O_KEY},
		{"workers", required_argument, NULL, O_WORKERS},
		{"items", required_argument, NULL, O_ITEMS},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"block-ms", required_argument, NULL, O_BLOCK},
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
	static char urls[URLS_MAX][513];
	for (const char *p = o->url; *p;) {
		size_t len = strcspn(p, ",");
		if (o->n_urls == URLS_MAX)
			bench_die("--url: at most %d URLs", URLS_MAX);
		if (len == 0 || len >= sizeof(urls[0]))
			bench_die("--url: each URL must be 1 to %zu characters", sizeof(urls[0]) - 1);
		char *url = urls[o->n_urls];
		memcpy(url, p, len);
		url[len] = '\0';
		for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
			url[n - 1] = '\0';
		o->urls[o->n_urls++] = url;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!o->n_urls)
		bench_die("--url: no URL");
	o->url = o->urls[0];
	if (!o->api_key || !*o->api_key)
		bench_die("no API key: pass --api-key or set ENVIROND_API_KEY");
	if (o->items && o->seconds)
		bench_die("--items and --seconds are exclusive");
	if (!o->items && !o->seconds)
		o->seconds = 5;
	if (o->items && o->warmup >= o->items)
		bench_die("--warmup (%ld) must be smaller than --items (%ld)", o->warmup, o->items);
	if (!o->timeout)
		o->timeout = o->seconds ? o->seconds + 30 : 300;
}

/* ---- HTTP plumbing --------------------------------------------------------- */

/* A response body, bounded: more than RESPONSE_MAX bytes fails the transfer. */
struct response {
	size_t len;
	bool overflow;
	char data[RESPONSE_MAX + 1];
};

static size_t response_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct response *r = userdata;
	size_t n = size * nmemb;
	if (n > RESPONSE_MAX - r->len) {
		r->overflow = true;
		return 0;
	}
	memcpy(r->data + r->len, ptr, n);
	r->len += n;
	r->data[r->len] = '\0';
	return n;
}

static struct curl_slist *header_list(const char *first, ...)
{
	struct curl_slist *list = NULL;
	va_list ap;
	va_start(ap, first);
	for (const char *h = first; h; h = va_arg(ap, const char *)) {
		struct curl_slist *next = curl_slist_append(list, h);
		if (!next)
			bench_die("out of memory building headers");
		list = next;
	}
	va_end(ap);
	return list;
}

/* Sets up one request on `easy`. body NULL = GET; body "" = POST with no body. */
static void request_setup(CURL *easy, const char *url, struct curl_slist *headers, const char *body,
			  struct response *resp)
{
	resp->len = 0;
	resp->overflow = false;
	resp->data[0] = '\0';
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	if (body) {
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, response_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, resp);
}

static CURL *easy_new(void)
{
	CURL *easy = curl_easy_init();
	if (!easy)
		bench_die("curl_easy_init failed");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	/* No single request may outlive the longest poll by much. */
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
	return easy;
}

static void print_snippet(FILE *out, const struct response *resp)
{
	int n = resp->len > 400 ? 400 : (int)resp->len;
	fprintf(out, "%.*s%s", n, resp->data, resp->len > 400 ? "..." : "");
}

static void http_die_status(const char *what, const char *url, long status, long expected,
			    const struct response *resp)
{
	fprintf(stderr, "loadgen: %s %s: expected HTTP %ld, got %ld: ", what, url, expected, status);
	print_snippet(stderr, resp);
	fputc('\n', stderr);
	exit(1);
}

static json_t *parse_json(const char *what, const char *url, const struct response *resp)
{
	json_error_t err;
	json_t *v = json_loadb(resp->data, resp->len, JSON_DECODE_ANY, &err);
	if (!v) {
		fprintf(stderr, "loadgen: %s %s: response is not JSON (%s): ", what, url, err.text);
		print_snippet(stderr, resp);
		fputc('\n', stderr);
		exit(1);
	}
	return v;
}

static const char *json_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* One blocking request for setup and teardown; returns the parsed JSON body. */
static json_t *call_blocking(const char *what, const char *method, const char *url,
			     struct curl_slist *headers, const char *body, long expected)
{
	static struct response resp;
	CURL *easy = easy_new();
	request_setup(easy, url, headers, body, &resp);
	if (strcmp(method, "DELETE") == 0)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "DELETE");
	CURLcode rc = curl_easy_perform(easy);
	if (rc != CURLE_OK)
		bench_die("%s %s %s: %s%s", what, method, url, curl_easy_strerror(rc),
			  resp.overflow ? " (response too large)" : "");
	long status = 0;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(easy);
	if (status != expected)
		http_die_status(what, url, status, expected, &resp);
	return parse_json(what, url, &resp);
}

/* ---- the run --------------------------------------------------------------- */

enum xfer_kind { X_POLL, X_ACK, X_HEARTBEAT, X_STOP, X_ENQUEUE };

static const char *const kind_names[] = {
	[X_POLL] = "poll", [X_ACK] = "ack", [X_HEARTBEAT] = "heartbeat",
	[X_STOP] = "stop", [X_ENQUEUE] = "enqueue",
};

struct worker;

/* One easy handle and its connection; owned by its worker, freed at the end. */
struct xfer {
	CURL *easy;
	struct worker *owner;
	enum xfer_kind kind;
	bool busy;
	uint64_t seq; /* the item this request is about */
	char url[URL_MAX];
	char body[BODY_MAX];
	struct response resp;
};

struct worker {
	struct xfer poll, act, prod;
	struct curl_slist *poll_headers;
	const char *env_url; /* its node's URL + /v1/environments/{id} */
	char work_id[ID_MAX];
	unsigned pending_enqueues; /* cycles started while the producer was busy */
};

struct run {
	const struct options *opt;
	CURLM *multi;
	int epfd;         /* the sockets libcurl asked us to watch */
	int64_t timer_at; /* when libcurl wants CURL_SOCKET_TIMEOUT; INT64_MAX = never */
	char env_id[ID_MAX];
	char env_url[URL_MAX]; /* the first URL + /v1/environments/{id} */
	char node_env_urls[URLS_MAX][URL_MAX]; /* the same on every --url */
	char run_tag[32];      /* bench<hex>: session ids are sesn_<run_tag>_<seq> */
	struct curl_slist *env_headers_nobody, *env_headers_json, *api_headers_json;
	struct worker *workers;
	struct bench_items items;
	struct bench_progress p;
	uint64_t connects;  /* new TCP connections: at most 3 per worker while keep-alive holds */
};

static bool may_enqueue(struct run *r) { return bench_may_enqueue(&r->p, r->opt->items); }

static void xfer_submit(struct run *r, struct xfer *x)
{
	CURLMcode mc = curl_multi_add_handle(r->multi, x->easy);
	if (mc != CURLM_OK)
		bench_die("curl_multi_add_handle: %s", curl_multi_strerror(mc));
	x->busy = true;
}

static void start_enqueue(struct run *r, struct worker *w)
{
	struct xfer *x = &w->prod;
	uint64_t seq = r->p.enqueued++;
	x->kind = X_ENQUEUE;
	x->seq = seq;
	bench_format(x->url, sizeof(x->url), "%s/work", w->env_url);
	bench_format(x->body, sizeof(x->body), "{\"data\":{\"type\":\"session\",\"id\":\"sesn_%s_%" PRIu64 "\"}}",
		     r->run_tag, seq);
	request_setup(x->easy, x->url, r->api_headers_json, x->body, &x->resp);
	bench_item_at(&r->items, seq)->enq_start = bench_now_ns();
	xfer_submit(r, x);
}

static void start_poll(struct run *r, struct worker *w)
{
	struct xfer *x = &w->poll;
	x->kind = X_POLL;
	bench_format(x->url, sizeof(x->url), "%s/work/poll?block_ms=%ld", w->env_url, r->opt->block_ms);
	request_setup(x->easy, x->url, w->poll_headers, NULL, &x->resp);
	xfer_submit(r, x);
}

static void start_item_call(struct run *r, struct worker *w, enum xfer_kind kind)
{
	struct xfer *x = &w->act;
	const char *body = "";
	struct curl_slist *headers = r->env_headers_nobody;
	x->kind = kind;
	switch (kind) {
	case X_ACK:
		bench_format(x->url, sizeof(x->url), "%s/work/%s/ack", w->env_url, w->work_id);
		break;
	case X_HEARTBEAT:
		bench_format(x->url, sizeof(x->url), "%s/work/%s/heartbeat?expected_last_heartbeat=NO_HEARTBEAT",
			     w->env_url, w->work_id);
		break;
	case X_STOP:
		bench_format(x->url, sizeof(x->url), "%s/work/%s/stop", w->env_url, w->work_id);
		bench_format(x->body, sizeof(x->body), "{\"force\":true}");
		body = x->body;
		headers = r->env_headers_json;
		break;
	default:
		bench_die("internal: bad item call");
	}
	request_setup(x->easy, x->url, headers, body, &x->resp);
	xfer_submit(r, x);
}

/* A cycle: hold a poll, and have this worker's producer enqueue one item. */
static void begin_cycle(struct run *r, struct worker *w)
{
	start_poll(r, w);
	if (!may_enqueue(r))
		return;
	if (w->prod.busy)
		w->pending_enqueues++;
	else
		start_enqueue(r, w);
}

/* Parses "sesn_<run_tag>_<seq>"; returns false for anything else. */
static bool parse_session(const struct run *r, const char *sid, uint64_t *seq)
{
	size_t tag_len = strlen(r->run_tag);
	if (!sid || strncmp(sid, "sesn_", 5) != 0 || strncmp(sid + 5, r->run_tag, tag_len) != 0 ||
	    sid[5 + tag_len] != '_')
		return false;
	const char *digits = sid + 5 + tag_len + 1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(digits, &end, 10);
	if (errno || end == digits || *end)
		return false;
	*seq = v;
	return true;
}

static void expect_field(const struct xfer *x, json_t *v, const char *key, const char *want)
{
	const char *got = json_str(v, key);
	if (!got || strcmp(got, want) != 0) {
		fprintf(stderr, "loadgen: %s %s: expected \"%s\":\"%s\", got: ", kind_names[x->kind], x->url,
			key, want);
		print_snippet(stderr, &x->resp);
		fputc('\n', stderr);
		exit(1);
	}
}

static void on_poll(struct run *r, struct worker *w, struct xfer *x, int64_t t)
{
	json_t *v = parse_json("poll", x->url, &x->resp);
	if (json_is_null(v)) {
		json_decref(v);
		r->p.empty_polls++;
		start_poll(r, w);
		return;
	}
	expect_field(x, v, "type", "work");
	const char *id = json_str(v, "id");
	const char *sid = json_str(json_object_get(v, "data"), "id");
	uint64_t seq;
	if (!id || strlen(id) >= sizeof(w->work_id) || !json_is_string(json_object_get(v, "secret")))
		bench_die("poll %s: item without id or secret: %.400s", x->url, x->resp.data);
	if (!parse_session(r, sid, &seq) || seq >= r->p.enqueued)
		bench_die("poll %s: delivered a session this run did not enqueue: %.400s", x->url, x->resp.data);
	struct bench_item *it = bench_item_at(&r->items, seq);
	if (it->poll_done)
		bench_die("poll %s: session %s delivered twice (a redelivery, though every delivery here "
			  "is acked at once)", x->url, sid);
	it->poll_done = t;
	r->p.delivered++;
	bench_format(w->work_id, sizeof(w->work_id), "%s", id);
	w->act.seq = seq;
	json_decref(v);
	start_item_call(r, w, X_ACK);
}

static void on_item_call(struct run *r, struct worker *w, struct xfer *x, int64_t t)
{
	json_t *v = parse_json(kind_names[x->kind], x->url, &x->resp);
	switch (x->kind) {
	case X_ACK:
		expect_field(x, v, "state", "starting");
		json_decref(v);
		start_item_call(r, w, X_HEARTBEAT);
		return;
	case X_HEARTBEAT:
		expect_field(x, v, "type", "work_heartbeat");
		expect_field(x, v, "state", "active");
		if (!json_is_true(json_object_get(v, "lease_extended")))
			bench_die("heartbeat %s: lease_extended is not true: %.400s", x->url, x->resp.data);
		json_decref(v);
		start_item_call(r, w, X_STOP);
		return;
	case X_STOP:
		expect_field(x, v, "state", "stopped");
		json_decref(v);
		bench_item_at(&r->items, x->seq)->stop_done = t;
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

static void on_enqueue(struct run *r, struct worker *w, struct xfer *x, int64_t t)
{
	json_t *v = parse_json("enqueue", x->url, &x->resp);
	expect_field(x, v, "type", "work");
	expect_field(x, v, "state", "queued");
	json_decref(v);
	bench_item_at(&r->items, x->seq)->enq_done = t;
	while (w->pending_enqueues) {
		w->pending_enqueues--;
		if (may_enqueue(r)) {
			start_enqueue(r, w);
			break;
		}
	}
}

static void on_done(struct run *r, CURLMsg *msg)
{
	int64_t t = bench_now_ns();
	struct xfer *x = NULL;
	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
	curl_multi_remove_handle(r->multi, msg->easy_handle);
	x->busy = false;
	if (msg->data.result != CURLE_OK)
		bench_die("%s %s: %s%s", kind_names[x->kind], x->url, curl_easy_strerror(msg->data.result),
			  x->resp.overflow ? " (response too large)" : "");
	long status = 0, connects = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
	r->connects += (uint64_t)connects;
	long expected = x->kind == X_ENQUEUE ? 201 : 200;
	if (status != expected)
		http_die_status(kind_names[x->kind], x->url, status, expected, &x->resp);
	struct worker *w = x->owner;
	switch (x->kind) {
	case X_POLL: on_poll(r, w, x, t); break;
	case X_ENQUEUE: on_enqueue(r, w, x, t); break;
	default: on_item_call(r, w, x, t); break;
	}
}

static void xfer_init(struct xfer *x, struct worker *w)
{
	x->easy = easy_new();
	x->owner = w;
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
}

/* libcurl tells us which sockets to watch; epoll tells libcurl which are ready. This
 * touches only the sockets that have something to do, where curl_multi_poll() would scan
 * every connection (3 per worker) on each wake-up. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	(void)easy;
	struct run *r = userp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL); /* may already be closed: ignore */
		return 0;
	}
	struct epoll_event ev = {.data.fd = fd};
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(r->epfd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
		if (errno == EEXIST && epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
			return 0;
		if (errno == ENOENT && epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
			return 0;
		bench_die("epoll_ctl: %s", strerror(errno));
	}
	curl_multi_assign(r->multi, fd, r); /* any non-NULL marks "registered" */
	return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct run *r = userp;
	r->timer_at = timeout_ms < 0 ? INT64_MAX : bench_now_ns() + (int64_t)timeout_ms * 1000000;
	return 0;
}

static void socket_action(struct run *r, curl_socket_t fd, int flags)
{
	int running;
	CURLMcode mc = curl_multi_socket_action(r->multi, fd, flags, &running);
	if (mc != CURLM_OK)
		bench_die("curl_multi_socket_action: %s", curl_multi_strerror(mc));
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(r->multi, &left)))
		if (msg->msg == CURLMSG_DONE)
			on_done(r, msg);
}

static void run_loop(struct run *r)
{
	const struct options *o = r->opt;
	int64_t deadline = r->p.t_start + (int64_t)(o->timeout * 1e9);
	int64_t enqueue_until = o->seconds ? r->p.t_start + (int64_t)(o->seconds * 1e9) : INT64_MAX;
	struct epoll_event events[64];
	for (long i = 0; i < o->workers; i++)
		begin_cycle(r, &r->workers[i]);
	for (;;) {
		int64_t t = bench_now_ns();
		if (t >= deadline)
			bench_die("timed out after %.0f s: %" PRIu64 " items enqueued, %" PRIu64 " delivered, %" PRIu64
				  " done", o->timeout, r->p.enqueued, r->p.delivered, r->p.completed);
		if (t >= enqueue_until)
			r->p.enqueue_closed = true;
		if (r->p.enqueue_closed && r->p.completed == r->p.enqueued)
			return;
		if (t >= r->timer_at) {
			r->timer_at = INT64_MAX;
			socket_action(r, CURL_SOCKET_TIMEOUT, 0);
			continue;
		}
		int64_t wait_ns = r->timer_at - t;
		int wait_ms = wait_ns > 100000000 ? 100 : (int)((wait_ns + 999999) / 1000000);
		int n = epoll_wait(r->epfd, events, (int)(sizeof(events) / sizeof(events[0])), wait_ms);
		if (n < 0 && errno != EINTR)
			bench_die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			int flags = 0;
			if (events[i].events & (EPOLLIN | EPOLLHUP))
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & EPOLLERR)
				flags |= CURL_CSELECT_ERR;
			socket_action(r, events[i].data.fd, flags);
		}
	}
}

/* ---- setup and teardown ---------------------------------------------------- */

static void setup(struct run *r)
{
	const struct options *o = r->opt;
	char hdr_api[1024], url[URL_MAX], body[BODY_MAX];
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		bench_die("getrandom failed");
	bench_format(r->run_tag, sizeof(r->run_tag), "bench%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		     rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (strlen(o->api_key) > 512)
		bench_die("API key too long");
	bench_format(hdr_api, sizeof(hdr_api), "x-api-key: %s", o->api_key);
	r->api_headers_json = header_list(hdr_api, BETA_HEADER, "content-type: application/json", NULL);

	bench_format(url, sizeof(url), "%s/v1/environments", o->url);
	bench_format(body, sizeof(body), "{\"name\":\"bench-%s\",\"config\":{\"type\":\"self_hosted\"}}",
		     r->run_tag + 5);
	json_t *env = call_blocking("create environment", "POST", url, r->api_headers_json, body, 200);
	const char *env_id = json_str(env, "id");
	if (!env_id || strncmp(env_id, "env_", 4) != 0 || strlen(env_id) >= sizeof(r->env_id))
		bench_die("create environment: no usable id in the response");
	bench_format(r->env_id, sizeof(r->env_id), "%s", env_id);
	json_decref(env);
	bench_format(r->env_url, sizeof(r->env_url), "%s/v1/environments/%s", o->url, r->env_id);
	for (size_t i = 0; i < o->n_urls; i++)
		bench_format(r->node_env_urls[i], sizeof(r->node_env_urls[i]), "%s/v1/environments/%s", o->urls[i],
			     r->env_id);

	bench_format(url, sizeof(url), "%s/keys", r->env_url);
	json_t *key = call_blocking("create environment key", "POST", url, r->api_headers_json,
				    "{\"name\":\"bench\"}", 200);
	const char *env_key = json_str(key, "key");
	if (!env_key || strncmp(env_key, "envd_env_", 9) != 0)
		bench_die("create environment key: no envd_env_ key in the response");
	char hdr_env[1024];
	if (strlen(env_key) > 512)
		bench_die("create environment key: key too long");
	bench_format(hdr_env, sizeof(hdr_env), "Authorization: Bearer %s", env_key);
	json_decref(key);
	/* "Content-Type:" with no value stops libcurl adding its form default to a bodiless POST. */
	r->env_headers_nobody = header_list(hdr_env, BETA_HEADER, "Content-Type:", NULL);
	r->env_headers_json = header_list(hdr_env, BETA_HEADER, "content-type: application/json", NULL);

	r->workers = calloc((size_t)o->workers, sizeof(*r->workers));
	if (!r->workers)
		bench_die("out of memory for workers");
	for (long i = 0; i < o->workers; i++) {
		struct worker *w = &r->workers[i];
		char hdr_worker[128];
		bench_format(hdr_worker, sizeof(hdr_worker), "Anthropic-Worker-ID: %s-w%ld", r->run_tag, i);
		w->poll_headers = header_list(hdr_env, BETA_HEADER, hdr_worker, NULL);
		w->env_url = r->node_env_urls[(size_t)i % o->n_urls];
		xfer_init(&w->poll, w);
		xfer_init(&w->act, w);
		xfer_init(&w->prod, w);
	}
	r->multi = curl_multi_init();
	if (!r->multi)
		bench_die("curl_multi_init failed");
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		bench_die("epoll_create1: %s", strerror(errno));
	r->timer_at = INT64_MAX;
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
}

/* Drops the held polls (no item is left for them) and deletes the environment. */
static void teardown(struct run *r)
{
	for (long i = 0; i < r->opt->workers; i++) {
		struct worker *w = &r->workers[i];
		struct xfer *all[] = {&w->poll, &w->act, &w->prod};
		for (size_t k = 0; k < 3; k++) {
			if (all[k]->busy)
				curl_multi_remove_handle(r->multi, all[k]->easy);
			curl_easy_cleanup(all[k]->easy);
		}
		curl_slist_free_all(w->poll_headers);
	}
	curl_multi_cleanup(r->multi);
	close(r->epfd);
	if (!r->opt->keep_env) {
		json_t *v = call_blocking("delete environment", "DELETE", r->env_url, r->api_headers_json, NULL, 200);
		json_decref(v);
	}
	curl_slist_free_all(r->env_headers_nobody);
	curl_slist_free_all(r->env_headers_json);
	curl_slist_free_all(r->api_headers_json);
	free(r->workers);
}

int main(int argc, char **argv)
{
	bench_set_program("loadgen");
	struct options opt;
	parse_options(argc, argv, &opt);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		bench_die("curl_global_init failed");
	struct run r = {.opt = &opt};
	setup(&r);
	double cpu_start = bench_cpu_seconds();
	r.p.t_start = bench_now_ns();
	run_loop(&r);
	if (r.p.completed <= (uint64_t)opt.warmup)
		bench_die("only %" PRIu64 " items completed, not more than --warmup %ld", r.p.completed, opt.warmup);
	double cpu_used = bench_cpu_seconds() - cpu_start;
	double wall = (double)(bench_now_ns() - r.p.t_start) / 1e9;
	struct bench_result res;
	bench_summarize(&r.items, r.p.enqueued, opt.warmup ? r.p.t_warm : r.p.t_start, r.p.t_last_done, &res);
	res.client_cpu_pct = wall > 0 ? 100.0 * cpu_used / wall : 0;
	bench_report("environd", opt.workers, &res, r.p.empty_polls, r.connects, opt.json);
	teardown(&r);
	bench_items_free(&r.items);
	curl_global_cleanup();
	return 0;
}
