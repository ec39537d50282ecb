/* worker.h - `environd worker`: claim work from a self-hosted environment and run each item
 * as a child process, holding its lease (--lease worker) or leaving the lease to the child
 * (--lease command, the official CLI's contract). No credential of the worker's is within
 * the children's reach (protect.c, keeper.c).
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
/* Supplementary groups of a --run-as user we carry at most. */
#define WORKER_MAX_GROUPS 256

#include <sys/types.h>

/* Who holds an item's lease while its command runs. */
enum worker_lease {
	WORKER_LEASE_WORKER,   /* the worker heartbeats and stops the item (the default) */
	WORKER_LEASE_COMMAND,  /* the command does, as under the official CLI's --on-work */
};

/* The user the commands run as (--run-as), resolved once at startup. */
struct worker_run_as {
	char name[64];
	char home[256];
	uid_t uid;
	gid_t gid;
	gid_t groups[WORKER_MAX_GROUPS];
	int ngroups;
};

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
	enum worker_lease lease;
	const struct worker_run_as *run_as;  /* NULL: commands run as the worker's user */
};

/* Run the worker. Returns the process exit status: 0 after a drain, a forced stop or
 * --once; 1 when the server refused the worker (401/403/404/400), it could not start, or
 * an item it ran could not be stopped. */
int worker_run(const struct worker_config *cfg);

/* The worker's process, and its memory, are not for the commands it runs to read: no core
 * dumps, no /proc/PID/{environ,mem,...} or ptrace for processes of the same user. Call it
 * before any credential is read. Returns 0 or -1. */
int worker_protect_process(void);

/* Remove the named variables from the environment, overwriting their values in place
 * first: /proc/PID/environ shows the memory the process started with, not environ. */
void worker_scrub_environment(const char *const *names);

/* `environd __keeper ...`: the leader of one command's process group (keeper.c); argv[0]
 * is "__keeper". Started only by the worker; never returns. */
int keeper_main(int argc, char **argv);

#endif
