/* worker.h - `environd worker`: claim work from a self-hosted environment and run each item
 * as a child process while holding its lease.
 *
 * The command line (cli/cmd_worker.c) fills a struct worker_config and calls worker_run(),
 * which returns only when the worker is done: drained after SIGTERM/SIGINT/SIGHUP, stopped now
 * after a second signal or SIGQUIT, out of queued work with --once, or refused by the
 * server. Nothing it started outlives it. */
#ifndef ENVIROND_WORKER_H
#define ENVIROND_WORKER_H

#define WORKER_MAX_CONCURRENCY 256
#define WORKER_DEFAULT_GRACE_S 10
/* Short enough that a stop asked for through the API reaches the child well inside 15 s. */
#define WORKER_DEFAULT_HEARTBEAT_S 5
#define WORKER_POLL_BLOCK_MS 999

/* Everything the worker needs; the strings are borrowed and must outlive worker_run(). */
struct worker_config {
	const char *base_url;
	const char *environment_key;   /* the worker's credential; never logged */
	const char *environment_id;
	const char *on_work;           /* run as /bin/sh -c ON_WORK */
	const char *workdir;           /* the children's working directory; NULL = ours */
	const char *worker_id;         /* Anthropic-Worker-ID */
	int concurrency;               /* 1..WORKER_MAX_CONCURRENCY children at most */
	int grace_s;                   /* SIGTERM, then SIGKILL after this many seconds */
	int heartbeat_interval_s;      /* upper bound; shortened to a third of short leases */
	int lease_ttl_s;               /* desired_ttl_seconds of each beat; 0 = server default */
	int once;                      /* exit once the queue is empty and nothing runs */
	int pass_environment_key;      /* give children ANTHROPIC_ENVIRONMENT_KEY */
};

/* Run the worker. Returns the process exit status: 0 after a drain, a forced stop or
 * --once; 1 when the server refused the worker (401/403/404/400), it could not start, or
 * an item it ran could not be stopped. */
int worker_run(const struct worker_config *cfg);

#endif
