/* health.c - /healthz (the process answers), /readyz (the store answers) and /metrics
 * (Prometheus text). No credentials; nothing about any tenant. */
#include "api/call.h"

#include "http/reply.h"

enum err health_live(struct call *c)
{
	struct buf body;
	buf_init(&body, 64);
	buf_puts(&body, "{\"status\":\"ok\"}");
	call_reply(c, 200, &body);
	return ERR_OK;
}

enum err health_ready(struct call *c)
{
	enum err rc = c->app->store->ops->ping(c->app->store);
	if (rc)
		return errf(&c->eb, ERR_UNAVAILABLE, "store: not reachable");
	struct buf body;
	buf_init(&body, 64);
	buf_puts(&body, "{\"status\":\"ready\"}");
	call_reply(c, 200, &body);
	return ERR_OK;
}

static void counter(struct buf *b, const char *name, const char *help, unsigned long long v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

enum err health_metrics(struct call *c)
{
	struct app_metrics *m = &c->app->metrics;
	struct buf b;
	buf_init(&b, 64 * 1024);
	counter(&b, "environd_requests_total", "HTTP requests received.", atomic_load(&m->requests));
	buf_printf(&b, "# HELP environd_responses_total HTTP responses by status class.\n"
		       "# TYPE environd_responses_total counter\n"
		       "environd_responses_total{class=\"2xx\"} %llu\n"
		       "environd_responses_total{class=\"4xx\"} %llu\n"
		       "environd_responses_total{class=\"5xx\"} %llu\n",
		   atomic_load(&m->responses_2xx), atomic_load(&m->responses_4xx), atomic_load(&m->responses_5xx));
	counter(&b, "environd_work_enqueued_total", "Work items enqueued.", atomic_load(&m->work_enqueued));
	counter(&b, "environd_work_delivered_total", "Work deliveries by poll.", atomic_load(&m->work_delivered));
	counter(&b, "environd_work_undelivered_total", "Deliveries undone because the poller was gone.",
		atomic_load(&m->work_undelivered));
	counter(&b, "environd_leases_expired_total", "Leases that ran out (T18/T19).", atomic_load(&m->leases_expired));
	counter(&b, "environd_store_commits_total",
		"Write transactions committed (SQLite: commit groups, one fsync each).",
		(unsigned long long)c->app->store->ops->commits(c->app->store));
	buf_printf(&b, "# HELP environd_polls_held Long polls (work and agent turns) currently held.\n"
		       "# TYPE environd_polls_held gauge\nenvirond_polls_held %zu\n"
		       "# HELP environd_streams_held Session event streams currently parked.\n"
		       "# TYPE environd_streams_held gauge\nenvirond_streams_held %zu\n",
		   waiters_count_kind(c->app->waiters, WAITER_POLL), waiters_count_kind(c->app->waiters, WAITER_STREAM));
	reply_text(c->req, 200, "text/plain; version=0.0.4", &b);
	return ERR_OK;
}
