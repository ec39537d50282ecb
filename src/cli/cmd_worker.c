/* cmd_worker.c - `environd worker`: the command line of the worker daemon (worker/).
 *
 * Reads the options, the environment key (ANTHROPIC_ENVIRONMENT_KEY or
 * --environment-key-file, never a flag value: flags show in `ps`), checks what can be
 * checked before talking to the server, and runs the worker. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "client/client.h"
#include "client/credential.h"
#include "common/cfg.h"
#include "common/log.h"
#include "worker/run_as.h"
#include "worker/ticks.h"
#include "worker/worker.h"
#include "worker/worker_int.h"

enum {
	OPT_ENVIRONMENT,
	OPT_ON_WORK,
	OPT_CONCURRENCY,
	OPT_WORKDIR,
	OPT_GRACE,
	OPT_WORKER_ID,
	OPT_ONCE,
	OPT_KEY_FILE,
	OPT_PASS_KEY,
	OPT_BASE_URL,
	OPT_HEARTBEAT,
	OPT_LEASE_TTL,
	OPT_LOG_FORMAT,
	OPT_LOG_LEVEL,
	OPT_KEY_FLAG,
	OPT_LEASE,
	OPT_RUN_AS,
	OPT__COUNT
};

static const struct cfg_option options[OPT__COUNT] = {
	[OPT_ENVIRONMENT] = {"--environment", "ANTHROPIC_ENVIRONMENT_ID", CFG_STRING, NULL, 0, 0, "ENV_ID",
			     "the self-hosted environment to take work from (required)"},
	[OPT_ON_WORK] = {"--on-work", NULL, CFG_STRING, NULL, 0, 0, "CMD",
			 "run each work item as /bin/sh -c CMD (required)"},
	[OPT_CONCURRENCY] = {"--concurrency", NULL, CFG_INT, "1", 1, WORKER_MAX_CONCURRENCY, "N",
			     "run at most N items at once"},
	[OPT_WORKDIR] = {"--workdir", NULL, CFG_STRING, NULL, 0, 0, "DIR",
			 "the commands' working directory (default: this one)"},
	[OPT_GRACE] = {"--grace", NULL, CFG_INT, "10", 0, 3600, "SECONDS",
		       "after SIGTERM, wait this long before SIGKILL"},
	[OPT_WORKER_ID] = {"--worker-id", NULL, CFG_STRING, NULL, 0, 0, "ID",
			   "Anthropic-Worker-ID to poll with (default: hostname + random suffix)"},
	[OPT_ONCE] = {"--once", NULL, CFG_BOOL, NULL, 0, 0, NULL, "run what is queued, exit once the queue is empty"},
	[OPT_KEY_FILE] = {"--environment-key-file", NULL, CFG_STRING, NULL, 0, 0, "PATH",
			  "read the environment key from PATH instead of ANTHROPIC_ENVIRONMENT_KEY"},
	[OPT_PASS_KEY] = {"--pass-environment-key", NULL, CFG_BOOL, NULL, 0, 0, NULL,
			  "give the commands ANTHROPIC_ENVIRONMENT_KEY (removed by default)"},
	[OPT_BASE_URL] = {"--base-url", "ANTHROPIC_BASE_URL", CFG_STRING, NULL, 0, 0, "URL",
			  "server URL (else ENVIROND_URL, else " CLIENT_DEFAULT_URL ")"},
	[OPT_HEARTBEAT] = {"--heartbeat-interval", NULL, CFG_INT, "5", 1, 300, "SECONDS",
			   "seconds between heartbeats, at most"},
	[OPT_LEASE_TTL] = {"--lease-ttl", NULL, CFG_INT, NULL, 10, 600, "SECONDS",
			   "ask for leases this long (default: the server's, 90)"},
	[OPT_LOG_FORMAT] = {"--log-format", NULL, CFG_STRING, "text", 0, 0, "text|json", "log line format"},
	[OPT_LOG_LEVEL] = {"--log-level", NULL, CFG_STRING, "info", 0, 0, "LEVEL", "error, warn, info or debug"},
	[OPT_KEY_FLAG] = {"--environment-key", NULL, CFG_STRING, NULL, 0, 0, "KEY",
			  "not accepted (flags show in ps): use the variable or --environment-key-file"},
	[OPT_LEASE] = {"--lease", NULL, CFG_STRING, "worker", 0, 0, "worker|command",
		       "who heartbeats and stops each item: the worker, or the command (as the official CLI's --on-work)"},
	[OPT_RUN_AS] = {"--run-as", NULL, CFG_STRING, NULL, 0, 0, "USER",
			"run the commands as USER (worker must be root), each in its own directory WORKDIR/WORK_ID"},
};

static const char usage[] =
	"usage: environd worker --environment ENV_ID --on-work CMD [--concurrency N] [--workdir DIR]\n"
	"                       [--grace SECONDS] [--worker-id ID] [--once] [--log-format text|json]\n"
	"                       [--pass-environment-key] [--heartbeat-interval S] [--lease-ttl S]\n"
	"                       [--lease worker|command] [--run-as USER]\n\n"
	"The environment key (envd_env_...) comes from ANTHROPIC_ENVIRONMENT_KEY or\n"
	"--environment-key-file. Each command gets ANTHROPIC_WORK_ID, ANTHROPIC_ENVIRONMENT_ID,\n"
	"ANTHROPIC_SESSION_ID, ANTHROPIC_WORK_SECRET and ANTHROPIC_BASE_URL, and never the\n"
	"worker's ENVIROND_API_KEY, ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN; the work item's JSON\n"
	"is on its stdin. With --lease command it also gets ANTHROPIC_ENVIRONMENT_KEY and must\n"
	"heartbeat and stop the item itself. SIGTERM, SIGINT or\n"
	"SIGHUP drains (running items finish); a second signal or SIGQUIT stops them now; a\n"
	"third exits at once.";

static int check_id(const char *what, const char *value)
{
	size_t n = strlen(value);
	if (n == 0 || n > WORKER_ID_MAX) {
		fprintf(stderr, "environd worker: %s must be 1 to %d characters\n", what, WORKER_ID_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)value[i] <= ' ' || (unsigned char)value[i] >= 0x7f) {
			fprintf(stderr, "environd worker: %s may hold only printable ASCII without spaces\n", what);
			return -1;
		}
	return 0;
}

/* hostname + "-" + 8 random hex digits: readable, and unique among workers on one host. */
static void default_worker_id(char *out, size_t len)
{
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof(host)) != 0 || !host[0])
		snprintf(host, sizeof(host), "worker");
	host[sizeof(host) - 1] = '\0';
	/* Keep the id printable and bounded whatever the host name holds. */
	for (char *p = host; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			*p = '_';
	if (strlen(host) > 64)
		host[64] = '\0';
	snprintf(out, len, "%s-%08llx", host, (unsigned long long)worker_random(1ULL << 32));
}

/* The worker's own credentials: read once, then gone from its environment (the commands
 * get only what child_env_build() gives them). */
static const char *const credential_vars[] = {
	"ANTHROPIC_ENVIRONMENT_KEY", "ENVIROND_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", NULL,
};

/* A key given as a flag is refused, but it is wiped from argv (/proc/PID/cmdline) first. */
static void wipe_flag_values(int argc, char **argv, const char *flag)
{
	size_t n = strlen(flag);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], flag) == 0 && i + 1 < argc)
			memset(argv[i + 1], 0, strlen(argv[i + 1]));
		else if (strncmp(argv[i], flag, n) == 0 && argv[i][n] == '=')
			memset(argv[i] + n + 1, 0, strlen(argv[i] + n + 1));
	}
}

int cmd_worker(int argc, char **argv)
{
	/* Before any credential is read: nothing of this process is for its commands. */
	if (worker_protect_process()) {
		fprintf(stderr, "environd worker: cannot make the process non-dumpable\n");
		return 1;
	}
	struct cfg_values v;
	char why[512];
	int rc = cfg_parse(options, OPT__COUNT, argc, argv, usage, &v, why, sizeof(why));
	if (rc)
		return rc > 0 ? 0 : (fprintf(stderr, "environd worker: %s\n", why), 2);
	if (v.str[OPT_KEY_FLAG]) {
		wipe_flag_values(argc, argv, "--environment-key");
		fprintf(stderr, "environd worker: the environment key is not taken from a flag (it would show "
				"in ps); set ANTHROPIC_ENVIRONMENT_KEY or use --environment-key-file PATH\n");
		return 2;
	}
	/* Not echoed: a stray argument may well be a key pasted in the wrong place. */
	if (v.npositional) {
		fprintf(stderr, "environd worker: takes no positional arguments (see --help)\n");
		return 2;
	}

	struct worker_config cfg = {
		.environment_id = v.str[OPT_ENVIRONMENT],
		.on_work = v.str[OPT_ON_WORK],
		.concurrency = (int)v.num[OPT_CONCURRENCY],
		.grace_s = (int)v.num[OPT_GRACE],
		.heartbeat_interval_s = (int)v.num[OPT_HEARTBEAT],
		.lease_ttl_s = v.str[OPT_LEASE_TTL] ? (int)v.num[OPT_LEASE_TTL] : 0,
		.once = v.num[OPT_ONCE] != 0,
		.pass_environment_key = v.num[OPT_PASS_KEY] != 0,
	};
	if (!cfg.environment_id || !*cfg.environment_id) {
		fprintf(stderr, "environd worker: --environment ENV_ID is required\n");
		return 2;
	}
	if (check_id("--environment", cfg.environment_id))
		return 2;
	if (!cfg.on_work || !*cfg.on_work) {
		fprintf(stderr, "environd worker: --on-work CMD is required\n");
		return 2;
	}
	if (strcmp(v.str[OPT_LEASE], "command") == 0) {
		cfg.lease = WORKER_LEASE_COMMAND;
	} else if (strcmp(v.str[OPT_LEASE], "worker") != 0) {
		fprintf(stderr, "environd worker: --lease is worker or command\n");
		return 2;
	}
	static struct worker_run_as run_as;
	if (v.str[OPT_RUN_AS]) {
		char err[512];
		if (run_as_resolve(v.str[OPT_RUN_AS], &run_as, err, sizeof(err))) {
			fprintf(stderr, "environd worker: %s\n", err);
			return 2;
		}
		cfg.run_as = &run_as;
	}
	enum log_format format = LOG_FORMAT_TEXT;
	if (strcmp(v.str[OPT_LOG_FORMAT], "json") == 0) {
		format = LOG_FORMAT_JSON;
	} else if (strcmp(v.str[OPT_LOG_FORMAT], "text") != 0) {
		fprintf(stderr, "environd worker: --log-format is text or json\n");
		return 2;
	}
	int level = log_level_parse(v.str[OPT_LOG_LEVEL]);
	if (level < 0) {
		fprintf(stderr, "environd worker: --log-level is error, warn, info or debug\n");
		return 2;
	}
	log_setup((enum log_level)level, format);

	char worker_id[WORKER_ID_MAX + 1];
	if (v.str[OPT_WORKER_ID]) {
		if (check_id("--worker-id", v.str[OPT_WORKER_ID]))
			return 2;
		snprintf(worker_id, sizeof(worker_id), "%s", v.str[OPT_WORKER_ID]);
	} else {
		default_worker_id(worker_id, sizeof(worker_id));
	}
	cfg.worker_id = worker_id;

	char workdir[PATH_MAX];
	const char *dir = v.str[OPT_WORKDIR];
	if (dir) {
		struct stat st;
		/* Resolved now, so a relative path means the same for every child. */
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, X_OK) != 0 || !realpath(dir, workdir)) {
			fprintf(stderr, "environd worker: --workdir %s is not a directory we can enter\n", dir);
			return 2;
		}
		cfg.workdir = workdir;
	}

	static const char *const url_vars[] = {"ENVIROND_URL", NULL};
	cfg.base_url = credential_base_url(v.str[OPT_BASE_URL], url_vars, 1);
	if (strncmp(cfg.base_url, "http://", 7) != 0 && strncmp(cfg.base_url, "https://", 8) != 0) {
		fprintf(stderr, "environd worker: the base URL must start with http:// or https://\n");
		return 2;
	}

	char err[4300];
	char *key = NULL;
	if (credential_resolve(v.str[OPT_KEY_FILE], NULL, "ANTHROPIC_ENVIRONMENT_KEY", "environment-key-file", &key,
			       err, sizeof(err))) {
		fprintf(stderr, "environd worker: %s\n", err);
		return 2;
	}
	cfg.environment_key = key;
	worker_scrub_environment(credential_vars);
	int status = worker_run(&cfg);
	credential_free(key);
	return status;
}
