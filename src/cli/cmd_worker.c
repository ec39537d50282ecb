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
#include "client/cliopt.h"
#include "client/client.h"
#include "client/credential.h"
#include "common/log.h"
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
	OPT_HELP,
	OPT__COUNT
};

static const struct cliopt options[OPT__COUNT] = {
	[OPT_ENVIRONMENT] = {"environment", "ENV_ID", "ANTHROPIC_ENVIRONMENT_ID",
			     "the self-hosted environment to take work from (required)"},
	[OPT_ON_WORK] = {"on-work", "CMD", NULL, "run each work item as /bin/sh -c CMD (required)"},
	[OPT_CONCURRENCY] = {"concurrency", "N", NULL, "run at most N items at once (default 1, max 256)"},
	[OPT_WORKDIR] = {"workdir", "DIR", NULL, "the commands' working directory (default: this one)"},
	[OPT_GRACE] = {"grace", "SECONDS", NULL,
		       "after SIGTERM, wait this long before SIGKILL (default 10)"},
	[OPT_WORKER_ID] = {"worker-id", "ID", NULL,
			   "Anthropic-Worker-ID to poll with (default: hostname + random suffix)"},
	[OPT_ONCE] = {"once", NULL, NULL, "run what is queued, then exit once the queue is empty"},
	[OPT_KEY_FILE] = {"environment-key-file", "PATH", "ANTHROPIC_ENVIRONMENT_KEY",
			  "read the environment key (envd_env_...) from PATH"},
	[OPT_PASS_KEY] = {"pass-environment-key", NULL, NULL,
			  "give the commands ANTHROPIC_ENVIRONMENT_KEY (removed by default)"},
	[OPT_BASE_URL] = {"base-url", "URL", "ANTHROPIC_BASE_URL, ENVIROND_URL",
			  "server URL (default " CLIENT_DEFAULT_URL ")"},
	[OPT_HEARTBEAT] = {"heartbeat-interval", "SECONDS", NULL,
			   "seconds between heartbeats, at most (default 5; 1-300)"},
	[OPT_LEASE_TTL] = {"lease-ttl", "SECONDS", NULL,
			   "ask for leases this long (10-600; default: the server's, 90)"},
	[OPT_LOG_FORMAT] = {"log-format", "text|json", NULL, "log line format (default text)"},
	[OPT_LOG_LEVEL] = {"log-level", "LEVEL", NULL, "error, warn, info (default) or debug"},
	[OPT_KEY_FLAG] = {"environment-key", "KEY", NULL,
			  "not accepted: use ANTHROPIC_ENVIRONMENT_KEY or --environment-key-file"},
	[OPT_HELP] = {"help", NULL, NULL, "show this help"},
};

static const char synopsis[] =
	"environd worker --environment ENV_ID --on-work CMD [--concurrency N] [--workdir DIR]\n"
	"                [--grace SECONDS] [--worker-id ID] [--once] [--log-format text|json]\n"
	"                [--pass-environment-key] [--heartbeat-interval S] [--lease-ttl S]\n\n"
	"The environment key comes from ANTHROPIC_ENVIRONMENT_KEY or --environment-key-file.\n"
	"Each command gets ANTHROPIC_WORK_ID, ANTHROPIC_ENVIRONMENT_ID, ANTHROPIC_SESSION_ID,\n"
	"ANTHROPIC_WORK_SECRET and ANTHROPIC_BASE_URL. SIGTERM/SIGINT drain (running items\n"
	"finish); a second signal or SIGQUIT stops them now.";

static int bad_number(const char *flag, const char *value, long min, long max)
{
	fprintf(stderr, "environd worker: --%s wants a whole number from %ld to %ld, got '%s'\n", flag, min, max,
		value);
	return 2;
}

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

int cmd_worker(int argc, char **argv)
{
	const char *values[OPT__COUNT] = {0};
	struct option longopts[CLIOPT_MAX + 1];
	cliopt_build(options, OPT__COUNT, longopts);
	int opt;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'h')
			opt = OPT_HELP;
		if (opt < 0 || opt >= OPT__COUNT) {
			/* Name the flag only: a mistyped flag's value may be a credential. */
			const char *arg = argv[optind - 1];
			size_t flag_len = strcspn(arg, "=");
			fprintf(stderr, "environd worker: unknown option or missing value: %.*s\n", (int)flag_len, arg);
			fprintf(stderr, "Run 'environd worker --help' for the options.\n");
			return 2;
		}
		if (opt == OPT_KEY_FLAG) {
			fprintf(stderr, "environd worker: the environment key is not taken from a flag (it would show "
					"in ps); set ANTHROPIC_ENVIRONMENT_KEY or use --environment-key-file PATH\n");
			return 2;
		}
		values[opt] = optarg ? optarg : "1";
	}
	if (values[OPT_HELP]) {
		cliopt_usage(stdout, synopsis, options, OPT__COUNT);
		return 0;
	}
	if (optind < argc) {
		fprintf(stderr, "environd worker: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	struct worker_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.environment_id = values[OPT_ENVIRONMENT] ? values[OPT_ENVIRONMENT] : getenv("ANTHROPIC_ENVIRONMENT_ID");
	cfg.on_work = values[OPT_ON_WORK];
	cfg.concurrency = 1;
	cfg.grace_s = WORKER_DEFAULT_GRACE_S;
	cfg.heartbeat_interval_s = WORKER_DEFAULT_HEARTBEAT_S;
	cfg.once = values[OPT_ONCE] != NULL;
	cfg.pass_environment_key = values[OPT_PASS_KEY] != NULL;
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
	long v;
	if (values[OPT_CONCURRENCY]) {
		if (cliopt_parse_long(values[OPT_CONCURRENCY], 1, WORKER_MAX_CONCURRENCY, &v))
			return bad_number("concurrency", values[OPT_CONCURRENCY], 1, WORKER_MAX_CONCURRENCY);
		cfg.concurrency = (int)v;
	}
	if (values[OPT_GRACE]) {
		if (cliopt_parse_long(values[OPT_GRACE], 0, 3600, &v))
			return bad_number("grace", values[OPT_GRACE], 0, 3600);
		cfg.grace_s = (int)v;
	}
	if (values[OPT_HEARTBEAT]) {
		if (cliopt_parse_long(values[OPT_HEARTBEAT], 1, 300, &v))
			return bad_number("heartbeat-interval", values[OPT_HEARTBEAT], 1, 300);
		cfg.heartbeat_interval_s = (int)v;
	}
	if (values[OPT_LEASE_TTL]) {
		if (cliopt_parse_long(values[OPT_LEASE_TTL], 10, 600, &v))
			return bad_number("lease-ttl", values[OPT_LEASE_TTL], 10, 600);
		cfg.lease_ttl_s = (int)v;
	}
	enum log_format format = LOG_FORMAT_TEXT;
	if (values[OPT_LOG_FORMAT]) {
		if (strcmp(values[OPT_LOG_FORMAT], "json") == 0) {
			format = LOG_FORMAT_JSON;
		} else if (strcmp(values[OPT_LOG_FORMAT], "text") != 0) {
			fprintf(stderr, "environd worker: --log-format is text or json\n");
			return 2;
		}
	}
	int level = LOG_INFO;
	if (values[OPT_LOG_LEVEL] && (level = log_level_parse(values[OPT_LOG_LEVEL])) < 0) {
		fprintf(stderr, "environd worker: --log-level is error, warn, info or debug\n");
		return 2;
	}
	log_setup((enum log_level)level, format);

	char worker_id[WORKER_ID_MAX + 1];
	if (values[OPT_WORKER_ID]) {
		if (check_id("--worker-id", values[OPT_WORKER_ID]))
			return 2;
		snprintf(worker_id, sizeof(worker_id), "%s", values[OPT_WORKER_ID]);
	} else {
		default_worker_id(worker_id, sizeof(worker_id));
	}
	cfg.worker_id = worker_id;

	char workdir[PATH_MAX];
	if (values[OPT_WORKDIR]) {
		struct stat st;
		/* Resolved now, so a relative path means the same for every child. */
		if (stat(values[OPT_WORKDIR], &st) != 0 || !S_ISDIR(st.st_mode) || access(values[OPT_WORKDIR], X_OK) != 0 ||
		    !realpath(values[OPT_WORKDIR], workdir)) {
			fprintf(stderr, "environd worker: --workdir %s is not a directory we can enter\n",
				values[OPT_WORKDIR]);
			return 2;
		}
		cfg.workdir = workdir;
	}

	static const char *const url_vars[] = {"ANTHROPIC_BASE_URL", "ENVIROND_URL", NULL};
	cfg.base_url = credential_base_url(values[OPT_BASE_URL], url_vars, 1);
	if (strncmp(cfg.base_url, "http://", 7) != 0 && strncmp(cfg.base_url, "https://", 8) != 0) {
		fprintf(stderr, "environd worker: the base URL must start with http:// or https://\n");
		return 2;
	}

	char err[4300];
	char *key = NULL;
	if (credential_resolve(values[OPT_KEY_FILE], NULL, "ANTHROPIC_ENVIRONMENT_KEY", "environment-key-file", &key,
			       err, sizeof(err))) {
		fprintf(stderr, "environd worker: %s\n", err);
		return 2;
	}
	cfg.environment_key = key;
	int status = worker_run(&cfg);
	credential_free(key);
	return status;
}
