/* cmd_serve.c - `environd serve`: open the store, serve the API until SIGTERM/SIGINT. */
#include "cli/commands.h"

#include <pthread.h>
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
#include "store/sqlite_test_vfs.h"

enum { OPT_LISTEN, OPT_PORT_FILE, OPT_DB, OPT_PUBLIC_URL, OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_THREADS,
       OPT_MAX_CONNECTIONS, OPT_MAX_HELD_POLLS, OPT_TIMEOUT, OPT__COUNT };

static const struct cfg_option options[OPT__COUNT] = {
	[OPT_LISTEN] = {"--listen", "ENVIROND_LISTEN", CFG_STRING, "127.0.0.1:8080", 0, 0, "HOST:PORT",
			"address to listen on; port 0 picks a free port"},
	[OPT_PORT_FILE] = {"--port-file", "ENVIROND_PORT_FILE", CFG_STRING, NULL, 0, 0, "PATH",
			   "write the bound port here once listening"},
	[OPT_DB] = {"--db", "ENVIROND_DB", CFG_STRING, "./environd.db", 0, 0, "PATH", "SQLite database file"},
	[OPT_PUBLIC_URL] = {"--public-url", "ENVIROND_PUBLIC_URL", CFG_STRING, NULL, 0, 0, "URL",
			    "base URL workers reach this server at (put in work secrets); default http://LISTEN"},
	[OPT_LOG_LEVEL] = {"--log-level", "ENVIROND_LOG_LEVEL", CFG_STRING, "info", 0, 0, "LEVEL",
			   "error, warn, info or debug"},
	[OPT_LOG_FORMAT] = {"--log-format", "ENVIROND_LOG_FORMAT", CFG_STRING, "text", 0, 0, "FORMAT", "text or json"},
	[OPT_THREADS] = {"--threads", "ENVIROND_THREADS", CFG_INT, "32", 1, 256, "N",
			 "HTTP worker threads (a thread waits while its write is made durable)"},
	[OPT_MAX_CONNECTIONS] = {"--max-connections", "ENVIROND_MAX_CONNECTIONS", CFG_INT, "10000", 16, 1000000, "N",
				 "open connections at most"},
	[OPT_MAX_HELD_POLLS] = {"--max-held-polls", "ENVIROND_MAX_HELD_POLLS", CFG_INT, "8192", 1, 1000000, "N",
				"long polls held at once at most (more answer null at once)"},
	[OPT_TIMEOUT] = {"--connection-timeout", "ENVIROND_CONNECTION_TIMEOUT", CFG_INT, "60", 1, 3600, "SECONDS",
			 "close idle connections after this long"},
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
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	/* Block the stop signals in every thread (they inherit this mask); main waits for them. */
	sigset_t stop_set;
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

	/* Test seam: a storage layer that loses unsynced writes at a power cut and fails I/O on
	 * command (see sqlite_test_vfs.h). Never enabled by default. */
	const char *test_vfs = getenv("ENVIROND_TEST_VFS");
	if (test_vfs && *test_vfs && test_vfs_install(test_vfs, getenv("ENVIROND_TEST_VFS_CONTROL"), why, sizeof(why))) {
		fprintf(stderr, "environd serve: %s\n", why);
		return 2;
	}
	struct store *store;
	struct errbuf eb = {{0}};
	if (store_open(v.str[OPT_DB], &store, &eb)) {
		fprintf(stderr, "environd serve: %s\n", eb.message);
		return 1;
	}
	/* Test seam: make every Nth store call fail (see store_fault.c). */
	const char *fault_every = getenv("ENVIROND_TEST_STORE_FAULT_EVERY");
	if (fault_every && atol(fault_every) > 0) {
		struct store *faulty;
		if (store_fault_wrap(store, (unsigned long)atol(fault_every), &faulty)) {
			store->ops->close(store);
			return 1;
		}
		store = faulty;
		log_event(LOG_WARN, "store_fault_injection", "every", fault_every, NULL);
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
			 .threads = (unsigned)v.num[OPT_THREADS],
			 .connection_limit = (unsigned)v.num[OPT_MAX_CONNECTIONS],
			 .connection_timeout_s = (unsigned)v.num[OPT_TIMEOUT],
			 .connection_memory = 64 * 1024},
		.public_url = v.str[OPT_PUBLIC_URL],
		.max_held_polls = (size_t)v.num[OPT_MAX_HELD_POLLS],
		.sweep_interval_us = 200 * 1000,
	};
	static struct app app;
	if (app_start(&app, store, &cfg, why, sizeof(why))) {
		fprintf(stderr, "environd serve: %s\n", why);
		store->ops->close(store);
		return 1;
	}
	printf("environd: serving the Environments API on %s (store: %s)\n", app.public_url, v.str[OPT_DB]);
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
	log_event(LOG_INFO, "stopped", NULL);
	return 0;
}
