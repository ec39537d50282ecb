/* runner.h - `environd agent echo`: serve the turns of sessions whose agent's model is
 * `environd-echo`, over the agent extension of the API (SPEC-side: /v1/environd/agent/...).
 *
 * Each of `concurrency` slots polls for a turn, holds it (a heartbeat thread renews its
 * lease), reads the session's events, posts what the echo agent decides (agent/echo.h) and
 * ends the turn idle. A turn the server says is no longer held (412 turn_lost) is dropped
 * at once. Transient failures (no reply, 429, 5xx) are retried with backoff that honours
 * retry-after. The first SIGTERM, SIGINT or SIGHUP drains (no new turns; the ones held
 * finish); a second one, or SIGQUIT, drops the held turns now (the server hands them out
 * again when their leases run out). */
#ifndef ENVIROND_AGENT_RUNNER_H
#define ENVIROND_AGENT_RUNNER_H

#define RUNNER_MAX_CONCURRENCY 64
#define RUNNER_DEFAULT_CONCURRENCY 4
/* How long one poll waits on the server: also the most a drain waits for an idle slot. */
#define RUNNER_POLL_BLOCK_MS 3000

/* The strings are borrowed and must outlive runner_run(). */
struct runner_config {
	const char *base_url;
	const char *agent_key;   /* envd_agt_...; never logged */
	const char *model;       /* the model whose turns are taken */
	int concurrency;         /* 1..RUNNER_MAX_CONCURRENCY */
	int once;                /* exit once a poll finds no turn and nothing is held */
};

/* Run until drained, stopped, or refused. Returns the exit status: 0 after a drain, a
 * stop or --once; 1 when the server refused the key or the route (401/403/404). */
int runner_run(const struct runner_config *cfg);

#endif
