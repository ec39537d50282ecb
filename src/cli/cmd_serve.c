/* cmd_serve.c - `environd serve`: open the store, serve the API until SIGTERM/SIGINT. */
#include "cli/commands.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/app.h"
#include "api/auth.h"
#include "cli/keys_cli.h"
#include "common/cfg.h"
#include "common/log.h"
#include "http/tls_files.h"
#include "store/sqlite_test_vfs.h"

enum { OPT_LISTEN, OPT_PORT_FILE, OPT_DB, OPT_PUBLIC_URL, OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_THREADS,
       OPT_MAX_CONNECTIONS, OPT_MAX_PER_IP, OPT_MAX_HELD_POLLS, OPT_TIMEOUT, OPT_HEAD_TIMEOUT, OPT_BODY_MEMORY,
       OPT_CONNECTION_MEMORY, OPT_MAX_WORKERS, OPT_TEST_FAULT, OPT_MAX_HELD_STREAMS, OPT_TURN_LEASE, OPT_KEEPALIVE,
       OPT_TEST_MODE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TEST_CLOCK,
       OPT_TEST_VFS, OPT_TEST_VFS_CONTROL, OPT_DB_POOL, OPT__COUNT };

static const struct cfg_option options[OPT__COUNT] = {
	[OPT_LISTEN] = {"--listen", "ENVIROND_LISTEN", CFG_STRING, "127.0.0.1:8080", 0, 0, "HOST:PORT",
			"address to listen on; port 0 picks a free port"},
	[OPT_PORT_FILE] = {"--port-file", "ENVIROND_PORT_FILE", CFG_STRING, NULL, 0, 0, "PATH",
			   "write the bound port here once listening"},
	[OPT_DB] = {"--db", "ENVIROND_DB", CFG_STRING, "./environd.db", 0, 0, "PATH|URL",
		    "SQLite database file, or a postgres:// URL (fleet mode: every node on one database)"},
	[OPT_DB_POOL] = {"--db-pool", "ENVIROND_DB_POOL", CFG_INT, "16", 1, 1000, "N",
			 "PostgreSQL: connections this node keeps to the database"},
	[OPT_PUBLIC_URL] = {"--public-url", "ENVIROND_PUBLIC_URL", CFG_STRING, NULL, 0, 0, "URL",
			    "base URL workers reach this server at (put in work secrets); default http://LISTEN, "
			    "https://LISTEN with --tls-cert"},
	[OPT_LOG_LEVEL] = {"--log-level", "ENVIROND_LOG_LEVEL", CFG_STRING, "info", 0, 0, "LEVEL",
			   "error, warn, info or debug"},
	[OPT_LOG_FORMAT] = {"--log-format", "ENVIROND_LOG_FORMAT", CFG_STRING, "text", 0, 0, "FORMAT", "text or json"},
	[OPT_THREADS] = {"--threads", "ENVIROND_THREADS", CFG_INT, "0", 0, 256, "N",
			 "HTTP worker threads; 0 = one per CPU (SQLite: writes wait on the store's writer, not on a "
			 "thread), 32 with PostgreSQL (a thread waits for its transaction)"},
	[OPT_MAX_CONNECTIONS] = {"--max-connections", "ENVIROND_MAX_CONNECTIONS", CFG_INT, "10000", 16, 1000000, "N",
				 "open connections at most (lowered to fit ulimit -n, with a reserve)"},
	[OPT_MAX_PER_IP] = {"--max-connections-per-ip", "ENVIROND_MAX_CONNECTIONS_PER_IP", CFG_INT, "0", 0, 1000000, "N",
			    "open connections from one client address at most; 0 = half of --max-connections"},
	[OPT_MAX_HELD_POLLS] = {"--max-held-polls", "ENVIROND_MAX_HELD_POLLS", CFG_INT, "8192", 1, 1000000, "N",
				"long polls held at once at most (more answer null at once)"},
	[OPT_TIMEOUT] = {"--connection-timeout", "ENVIROND_CONNECTION_TIMEOUT", CFG_INT, "60", 1, 3600, "SECONDS",
			 "close idle connections after this long"},
	[OPT_HEAD_TIMEOUT] = {"--header-timeout", "ENVIROND_HEADER_TIMEOUT", CFG_INT, "10", 1, 3600, "SECONDS",
			      "a request's headers must arrive within this long of its first byte"},
	[OPT_BODY_MEMORY] = {"--max-body-memory", "ENVIROND_MAX_BODY_MEMORY", CFG_INT, "64", 1, 65536, "MIB",
			     "request bodies buffered at once, all connections together (more get 503)"},
	[OPT_CONNECTION_MEMORY] = {"--connection-memory", "ENVIROND_CONNECTION_MEMORY", CFG_INT, "12", 4, 1024, "KIB",
				   "memory for one connection's request head and reply head"},
	[OPT_MAX_WORKERS] = {"--max-workers-tracked", "ENVIROND_MAX_WORKERS_TRACKED", CFG_INT, "65536", 2, 10000000, "N",
			     "worker ids remembered for workers_polling over all environments"},
	/* A test seam, deliberately without an environment variable: a stray variable in a
	 * production environment must never make a server fail on purpose. */
	[OPT_TEST_FAULT] = {"--test-store-fault-every", NULL, CFG_INT, "0", 0, 1000000, "N",
			    "testing only: make every Nth store call fail (0 = never)"},
	[OPT_MAX_HELD_STREAMS] = {"--max-held-streams", "ENVIROND_MAX_HELD_STREAMS", CFG_INT, "4096", 1, 1000000, "N",
				  "session event streams held at once at most (more are refused with 429)"},
	[OPT_TURN_LEASE] = {"--agent-turn-lease-ms", "ENVIROND_AGENT_TURN_LEASE_MS", CFG_INT, "30000", 100, 600000, "MS",
			    "lease of an agent turn (agent extension); a runner heartbeats within it"},
	[OPT_KEEPALIVE] = {"--stream-keepalive-ms", "ENVIROND_STREAM_KEEPALIVE_MS", CFG_INT, "15000", 100, 15000, "MS",
			   "keepalive comment interval of held event streams (a gone client is noticed then)"},
	/* A flag only, like the store fault seam: no environment variable may turn a
	 * production server into one that fails and forgets on request. */
	[OPT_TEST_MODE] = {"--test-mode", NULL, CFG_BOOL, "0", 0, 0, NULL,
			   "testing only: serve /v1/environd/test/faults (fault injection) and /v1/environd/test/reset"},
	[OPT_TLS_CERT] = {"--tls-cert", "ENVIROND_TLS_CERT", CFG_STRING, NULL, 0, 0, "PATH",
			  "serve HTTPS with this PEM certificate (a chain: the server's first); needs --tls-key"},
	[OPT_TLS_KEY] = {"--tls-key", "ENVIROND_TLS_KEY", CFG_STRING, NULL, 0, 0, "PATH",
			 "the certificate's PEM private key, unencrypted, mode 0600 (0640 warns); needs --tls-cert"},
	/* Also a flag only, for the same reason: a production server's clock is never movable. */
	[OPT_TEST_CLOCK] = {"--test-clock", NULL, CFG_BOOL, "false", 0, 0, NULL,
			    "testing only: serve POST /v1/environd/test/clock, which moves this server's time"},
	/* Flags only too: a storage layer that throws writes away must never be switched on by
	 * a stray variable. */
	[OPT_TEST_VFS] = {"--test-vfs", NULL, CFG_STRING, NULL, 0, 0, "powercut",
			  "testing only: run the store on a storage layer that loses unsynced writes at a power cut (SIGUSR2)"},
	[OPT_TEST_VFS_CONTROL] = {"--test-vfs-control", NULL, CFG_STRING, NULL, 0, 0, "PATH",
				  "testing only: the --test-vfs layer's fault rules, re-read when the file changes"},
};

/* Long polls and many workers need file descriptors: take all the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path); /* readers never see a half-written file */
}

int cmd_serve(int argc, char **argv)
{
	struct cfg_values v;
	char why[512];
	int rc = cfg_parse(options, OPT__COUNT, argc, argv, "usage: environd serve [OPTIONS]", &v, why, sizeof(why));
	if (rc)
		return rc > 0 ? 0 : (fprintf(stderr, "environd serve: %s\n", why), 2);
	if (v.npositional) {
		fprintf(stderr, "environd serve: unexpected argument \"%s\"\n", v.positional[0]);
		return 2;
	}
	int level = log_level_parse(v.str[OPT_LOG_LEVEL]);
	int json = !strcmp(v.str[OPT_LOG_FORMAT], "json");
	if (level < 0 || (!json && strcmp(v.str[OPT_LOG_FORMAT], "text"))) {
		fprintf(stderr, "environd serve: --log-level must be error|warn|info|debug and --log-format text|json\n");
		return 2;
	}
	log_setup((enum log_level)level, json ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT);
	/* Bad flags must not leave a fresh database file behind: check before opening. */
	if (http_listen_check(v.str[OPT_LISTEN], why, sizeof(why))) {
		fprintf(stderr, "environd serve: %s\n", why);
		return 2;
	}
	/* The TLS files too: a server that cannot do what it was asked starts not at all. The
	 * texts stay in memory (static: reachable) until the server has stopped. */
	const char *cert = v.str[OPT_TLS_CERT], *key = v.str[OPT_TLS_KEY];
	if (!cert != !key) {
		fprintf(stderr, "environd serve: %s is set but %s is not: TLS needs both the certificate and its key\n",
			cert ? "--tls-cert (ENVIROND_TLS_CERT)" : "--tls-key (ENVIROND_TLS_KEY)",
			cert ? "--tls-key (ENVIROND_TLS_KEY)" : "--tls-cert (ENVIROND_TLS_CERT)");
		return 2;
	}
	static struct tls_files tls;
	if (cert && tls_files_load(cert, key, &tls, why, sizeof(why))) {
		fprintf(stderr, "environd serve: %s\n", why);
		return 2;
	}
	raise_fd_limit();
	unsigned threads = (unsigned)v.num[OPT_THREADS];
	if (threads == 0) {
		/* The CPUs this process may run on (taskset, cgroup cpusets), not those online. */
		cpu_set_t set;
		int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
		threads = store_is_postgres(v.str[OPT_DB]) ? 32 : cpus < 2 ? 2 : cpus > 64 ? 64 : (unsigned)cpus;
	}
	struct http_config probe = {.threads = threads,
				    .connection_limit = (unsigned)v.num[OPT_MAX_CONNECTIONS]};
	struct http_limits lim;
	if (http_limits_for(&probe, &lim, why, sizeof(why))) {
		fprintf(stderr, "environd serve: %s\n", why);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Block the stop signals in every thread (they inherit this mask); main waits for them. */
	sigset_t stop_set;
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
	/* On SQLite every thread (they inherit it) runs as SCHED_BATCH: a thread that another
	 * wakes (the store's writer handed a job, an HTTP thread handed a finished reply) runs
	 * when the waker waits, instead of preempting it at once. Requests then pass between
	 * threads in batches (bigger commit groups, one switch for many replies) rather than one
	 * switch each. Not in a fleet, where no thread hands requests to a writer and the node
	 * must act on another node's notification (a revocation) the moment it arrives.
	 * Refused (some containers): nothing changes. */
	if (!store_is_postgres(v.str[OPT_DB])) {
		struct sched_param batch = {.sched_priority = 0};
		sched_setscheduler(0, SCHED_BATCH, &batch);
	}

	/* Test seam: a storage layer that loses unsynced writes at a power cut and fails I/O on
	 * command (see sqlite_test_vfs.h). Never enabled by default. */
	const char *test_vfs = v.str[OPT_TEST_VFS];
	if (!test_vfs && v.str[OPT_TEST_VFS_CONTROL]) {
		fprintf(stderr, "environd serve: --test-vfs-control needs --test-vfs powercut\n");
		return 2;
	}
	if (test_vfs && store_is_postgres(v.str[OPT_DB])) {
		fprintf(stderr, "environd serve: --test-vfs is a SQLite storage layer: it cannot apply to a PostgreSQL --db\n");
		return 2;
	}
	if (test_vfs && test_vfs_install(test_vfs, v.str[OPT_TEST_VFS_CONTROL], why, sizeof(why))) {
		fprintf(stderr, "environd serve: %s\n", why);
		return 2;
	}
	struct store *store;
	struct errbuf eb = {{0}};
	if (store_open(v.str[OPT_DB], (size_t)v.num[OPT_DB_POOL], &store, &eb)) {
		fprintf(stderr, "environd serve: %s\n", eb.message);
		return 1;
	}
	/* Test seam: make every Nth store call fail (see store_fault.c). */
	if (v.num[OPT_TEST_FAULT] > 0) {
		struct store *faulty;
		if (store_fault_wrap(store, (unsigned long)v.num[OPT_TEST_FAULT], &faulty)) {
			store->ops->close(store);
			return 1;
		}
		store = faulty;
		log_event(LOG_WARN, "store_fault_injection", "every", v.str[OPT_TEST_FAULT], NULL);
	}
	/* First start on an empty store: mint a key so the server is usable at once. */
	int64_t keys = 0;
	char minted[TOKEN_MAX] = "";
	if (store->ops->api_key_count(store, &keys) == ERR_OK && keys == 0 &&
	    keys_cli_mint(store, "default", "default", "", "initial", minted, why, sizeof(why))) {
		fprintf(stderr, "environd serve: cannot mint the first API key: %s\n", why);
		store->ops->close(store);
		return 1;
	}

	struct app_config cfg = {
		.http = {.listen = v.str[OPT_LISTEN],
			 .threads = threads,
			 .connection_limit = (unsigned)v.num[OPT_MAX_CONNECTIONS],
			 .per_ip_limit = (unsigned)v.num[OPT_MAX_PER_IP],
			 .connection_timeout_s = (unsigned)v.num[OPT_TIMEOUT],
			 .head_timeout_s = (unsigned)v.num[OPT_HEAD_TIMEOUT],
			 .connection_memory = (size_t)v.num[OPT_CONNECTION_MEMORY] * 1024,
			 .body_memory = (size_t)v.num[OPT_BODY_MEMORY] * 1024 * 1024,
			 .tls_cert_pem = tls.cert.data,
			 .tls_key_pem = tls.key.data},
		.public_url = v.str[OPT_PUBLIC_URL],
		.max_held_polls = (size_t)v.num[OPT_MAX_HELD_POLLS],
		.max_workers_tracked = (size_t)v.num[OPT_MAX_WORKERS],
		.sweep_interval_us = 200 * 1000,
		.max_held_streams = (size_t)v.num[OPT_MAX_HELD_STREAMS],
		.agent_turn_lease_us = v.num[OPT_TURN_LEASE] * 1000,
		.stream_keepalive_us = v.num[OPT_KEEPALIVE] * 1000,
		.test_mode = v.num[OPT_TEST_MODE] != 0,
		/* Test mode includes the test clock: a worker under test needs time to move too. */
		.test_clock = v.num[OPT_TEST_CLOCK] != 0 || v.num[OPT_TEST_MODE] != 0,
	};
	if (cfg.test_clock)
		log_event(LOG_WARN, "test_clock_enabled", "route", "POST /v1/environd/test/clock", NULL);
	static struct app app;
	if (app_start(&app, store, &cfg, why, sizeof(why))) {
		fprintf(stderr, "environd serve: %s\n", why);
		store->ops->close(store);
		return 1;
	}
	char where[512];
	store_describe(v.str[OPT_DB], where, sizeof(where));
	printf("environd: serving the Environments API on %s (store: %s)\n", app.public_url, where);
	if (cfg.test_mode) {
		printf("environd: *** TEST MODE IS ON *** requests fail on purpose when told to, and any API key"
		       " can delete all data (POST /v1/environd/test/faults, /v1/environd/test/reset)."
		       " Never run this on a server you care about.\n");
		log_event(LOG_WARN, "test_mode_enabled", "routes", "/v1/environd/test/faults /v1/environd/test/reset",
			  NULL);
	}
	if (minted[0])
		printf("environd: first start: API key (shown once, keep it): %s\n", minted);
	fflush(stdout);
	explicit_bzero(minted, sizeof(minted));
	if (v.str[OPT_PORT_FILE] && write_port_file(v.str[OPT_PORT_FILE], app.port)) {
		fprintf(stderr, "environd serve: cannot write --port-file %s\n", v.str[OPT_PORT_FILE]);
		app_stop(&app);
		store->ops->close(store);
		return 1;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", app.port);
	log_event(LOG_INFO, "listening", "url", app.public_url, "port", port, NULL);

	int sig = 0;
	sigwait(&stop_set, &sig);
	log_event(LOG_INFO, "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
	app_stop(&app);
	store->ops->close(store);
	tls_files_free(&tls);
	log_event(LOG_INFO, "stopped", NULL);
	return 0;
}
