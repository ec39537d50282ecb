/* test_child.c - unit tests of the worker's child handling (src/worker/child.c): output
 * lines, the child's environment, and real /bin/sh children in their own process group,
 * including ones that ignore SIGTERM and ones that leave background processes behind.
 *
 * The process tests run real commands, so a few take a second (the grace period). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "worker/worker_int.h"

/* ---- lines ---- */

struct lines {
	char got[8][LINE_MAX_BYTES];
	int n;
};

static void collect(const char *line, void *arg)
{
	struct lines *l = arg;
	if (l->n < 8)
		snprintf(l->got[l->n], sizeof(l->got[0]), "%s", line);
	l->n++;
}

static void test_lines(void **state)
{
	static struct line_buf lb;
	static struct lines out;
	memset(&lb, 0, sizeof(lb));
	memset(&out, 0, sizeof(out));
	line_buf_feed(&lb, "one\ntw", 6, collect, &out);
	assert_int_equal(out.n, 1);
	line_buf_feed(&lb, "o\r\nthree", 8, collect, &out);
	assert_int_equal(out.n, 2);
	assert_string_equal(out.got[0], "one");
	assert_string_equal(out.got[1], "two");
	line_buf_flush(&lb, collect, &out);
	assert_int_equal(out.n, 3);
	assert_string_equal(out.got[2], "three");
	line_buf_flush(&lb, collect, &out);
	assert_int_equal(out.n, 3);
	/* An empty line is still a line. */
	line_buf_feed(&lb, "\n", 1, collect, &out);
	assert_int_equal(out.n, 4);
	assert_string_equal(out.got[3], "");
}

static void test_long_line(void **state)
{
	static struct line_buf lb;
	static struct lines out;
	memset(&lb, 0, sizeof(lb));
	memset(&out, 0, sizeof(out));
	static char big[LINE_MAX_BYTES * 2];
	memset(big, 'x', sizeof(big));
	line_buf_feed(&lb, big, sizeof(big), collect, &out);
	/* Pieces of LINE_MAX_BYTES - 1 bytes; the rest waits for its newline. */
	assert_int_equal(out.n, 2);
	assert_int_equal(strlen(out.got[0]), LINE_MAX_BYTES - 1);
	line_buf_feed(&lb, "\n", 1, collect, &out);
	assert_int_equal(out.n, 3);
	assert_int_equal(strlen(out.got[2]), 2);
}

/* A piece never ends in half a UTF-8 character: the rest starts the next piece. */
static void test_long_line_utf8(void **state)
{
	static struct line_buf lb;
	static struct lines out;
	memset(&lb, 0, sizeof(lb));
	memset(&out, 0, sizeof(out));
	static char big[LINE_MAX_BYTES + 8];
	/* "a" then euro signs (3 bytes each): the buffer fills inside one of them. */
	big[0] = 'a';
	for (size_t i = 1; i + 3 <= sizeof(big); i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);
	size_t len = 1 + (sizeof(big) - 1) / 3 * 3;
	line_buf_feed(&lb, big, len, collect, &out);
	line_buf_flush(&lb, collect, &out);
	assert_int_equal(out.n, 2);
	size_t first = strlen(out.got[0]);
	assert_true(first < LINE_MAX_BYTES);
	assert_int_equal((first - 1) % 3, 0);
	assert_int_equal(first + strlen(out.got[1]), len);
	assert_int_equal((unsigned char)out.got[1][0], 0xe2);
}

/* ---- environment ---- */

static const char *find(char **envp, const char *name)
{
	size_t n = strlen(name);
	const char *found = NULL;
	for (char **e = envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
			assert_null(found); /* each variable once */
			found = *e + n + 1;
		}
	return found;
}

/* Bounds on how long a run takes catch a hang, never slowness: a loaded machine may be
 * slow, and speed is measured in bench/, not here. */
#define HANG_GUARD_US 60000000

static struct worker_config config(void)
{
	struct worker_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.base_url = "http://127.0.0.1:9";
	cfg.environment_key = "envd_env_SECRET";
	cfg.environment_id = "env_1";
	cfg.grace_s = 1;
	cfg.concurrency = 1;
	return cfg;
}

static void test_env(void **state)
{
	char *parent[] = {"PATH=/bin", "ANTHROPIC_ENVIRONMENT_KEY=envd_env_SECRET", "ANTHROPIC_WORK_ID=stale",
			  "ANTHROPIC_WORK_IDX=keep", "HOME=/root", "ENVIROND_API_KEY=envd_api_ORG",
			  "ANTHROPIC_API_KEY=sk-x", "ANTHROPIC_AUTH_TOKEN=tok", "ENVIROND_API_KEY_FILE=/k", NULL};
	struct worker_config cfg = config();
	struct item it = {.id = "work_1", .session_id = "sesn_1", .type = "session", .secret = "c2Vj"};
	char **envp = child_env_build(parent, &cfg, &it, NULL);
	assert_non_null(envp);
	assert_string_equal(find(envp, "PATH"), "/bin");
	assert_string_equal(find(envp, "HOME"), "/root");
	assert_string_equal(find(envp, "ANTHROPIC_WORK_IDX"), "keep");
	assert_string_equal(find(envp, "ANTHROPIC_WORK_ID"), "work_1");
	assert_string_equal(find(envp, "ANTHROPIC_ENVIRONMENT_ID"), "env_1");
	assert_string_equal(find(envp, "ANTHROPIC_SESSION_ID"), "sesn_1");
	assert_string_equal(find(envp, "ANTHROPIC_WORK_SECRET"), "c2Vj");
	assert_string_equal(find(envp, "ANTHROPIC_BASE_URL"), "http://127.0.0.1:9");
	assert_null(find(envp, "ANTHROPIC_ENVIRONMENT_KEY"));
	/* The worker's other credentials never reach a command; look-alike names do. */
	assert_null(find(envp, "ENVIROND_API_KEY"));
	assert_null(find(envp, "ANTHROPIC_API_KEY"));
	assert_null(find(envp, "ANTHROPIC_AUTH_TOKEN"));
	assert_string_equal(find(envp, "ENVIROND_API_KEY_FILE"), "/k");
	for (char **e = envp; *e; e++)
		assert_null(strstr(*e, "envd_env_SECRET"));
	child_env_free(envp);

	/* --pass-environment-key, and an item without a secret. */
	it.secret = NULL;
	envp = child_env_build(parent, &cfg, &it, cfg.environment_key);
	assert_non_null(envp);
	assert_string_equal(find(envp, "ANTHROPIC_ENVIRONMENT_KEY"), "envd_env_SECRET");
	assert_null(find(envp, "ANTHROPIC_WORK_SECRET"));
	child_env_free(envp);
}

/* ---- processes ---- */

struct stop_after {
	int64_t at_us;         /* ask for a stop from this monotonic time; 0 = never */
	const char *reason;
	const char *ready;     /* and not before this file exists (the command is ready), if set */
};

static void stop_check(void *arg, struct child_order *o)
{
	struct stop_after *s = arg;
	int64_t now = clock_mono_us();
	if (s->at_us && s->ready && access(s->ready, F_OK) != 0) {
		o->why = NULL;
		o->check_by_us = now + 10000;
		return;
	}
	o->why = s->at_us && now >= s->at_us ? s->reason : NULL;
	o->check_by_us = s->at_us && !o->why ? s->at_us : 0;
}

/* A stdin for the next run(); NULL for none. */
static const char *stdin_data;

static int run_when_ready(const char *cmd, const char *ready, int grace_s, int64_t stop_in_us, int *status,
			  int64_t *took_us, pid_t *pgid)
{
	struct worker_config cfg = config();
	cfg.on_work = cmd;
	cfg.grace_s = grace_s;
	cfg.workdir = "/tmp";
	struct item it = {.id = "work_t", .session_id = "sesn_t", .type = "session", .secret = NULL};
	char *parent[] = {"PATH=/usr/bin:/bin", NULL};
	char **envp = child_env_build(parent, &cfg, &it, NULL);
	int wake[2];
	assert_int_equal(pipe2(wake, O_NONBLOCK | O_CLOEXEC), 0);
	struct child ch;
	char err[256];
	int64_t start = clock_mono_us();
	int rc = child_spawn(&ch, &cfg, cfg.workdir, envp, stdin_data, stdin_data ? strlen(stdin_data) : 0, it.id, err, sizeof(err));
	child_env_free(envp);
	if (rc == 0) {
		if (pgid)
			*pgid = ch.pid;
		struct stop_after stop = {stop_in_us ? start + stop_in_us : 0, "test", ready};
		child_supervise(&ch, grace_s, wake[0], stop_check, &stop);
		*status = ch.status;
	}
	*took_us = clock_mono_us() - start;
	close(wake[0]);
	close(wake[1]);
	return rc;
}

static int run(const char *cmd, int grace_s, int64_t stop_in_us, int *status, int64_t *took_us, pid_t *pgid)
{
	return run_when_ready(cmd, NULL, grace_s, stop_in_us, status, took_us, pgid);
}

/* Is any process of the group still running? Zombies do not count: an orphaned member is
 * reaped by init, whenever init gets to it. */
static int group_alive(pid_t pgid)
{
	DIR *proc = opendir("/proc");
	assert_non_null(proc);
	int alive = 0;
	struct dirent *de;
	while ((de = readdir(proc))) {
		char path[300], line[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f)) {
			/* pid (comm) state ppid pgrp ...; comm may hold spaces, so start after ')'. */
			char *p = strrchr(line, ')');
			char st;
			int ppid, pgrp;
			if (p && sscanf(p + 1, " %c %d %d", &st, &ppid, &pgrp) == 3 && pgrp == pgid && st != 'Z')
				alive = 1;
		}
		fclose(f);
	}
	closedir(proc);
	return alive;
}

/* Has every process of the group ended? A member that was sent SIGKILL still shows as
 * running until the kernel has scheduled its exit, which on a loaded machine takes a
 * moment: allow up to two seconds. */
static int group_ended(pid_t pgid)
{
	for (int i = 0; i < 100 && group_alive(pgid); i++)
		usleep(20000);
	return !group_alive(pgid);
}

static void test_exit_status(void **state)
{
	int status;
	int64_t took;
	pid_t pgid;
	assert_int_equal(run("test \"$PWD\" = /tmp && test \"$ANTHROPIC_SESSION_ID\" = sesn_t && exit 7", 1, 0,
			     &status, &took, &pgid), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
	assert_true(group_ended(pgid));
}

static void test_missing_command(void **state)
{
	int status;
	int64_t took;
	assert_int_equal(run("/nonexistent/command", 1, 0, &status, &took, NULL), 0);
	assert_int_equal(WEXITSTATUS(status), 127);
}

static void test_sigterm(void **state)
{
	int status;
	int64_t took;
	pid_t pgid;
	/* exec, so the shell itself is what SIGTERM ends. */
	assert_int_equal(run("exec sleep 30", 5, 200000, &status, &took, &pgid), 0);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	assert_true(took < HANG_GUARD_US);
	assert_true(group_ended(pgid));
}

static void test_sigkill_after_grace(void **state)
{
	int status;
	int64_t took;
	pid_t pgid;
	/* The stop waits for the trap to be set: a SIGTERM before it would simply end the shell. */
	char ready[] = "/tmp/environd-test-ready-XXXXXX";
	int fd = mkstemp(ready);
	assert_true(fd >= 0);
	close(fd);
	unlink(ready);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "trap '' TERM; : > %s; while :; do sleep 0.1; done", ready);
	assert_int_equal(run_when_ready(cmd, ready, 1, 100000, &status, &took, &pgid), 0);
	unlink(ready);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_true(took >= 1000000);
	assert_true(took < HANG_GUARD_US);
	assert_true(group_ended(pgid));
}

/* A shell that exits and leaves a background process holding its stdout: the leftover is
 * sent SIGTERM as the shell goes (well before the 10 s grace period would end it), and
 * supervise returns. */
static void test_leftovers(void **state)
{
	int status;
	int64_t took;
	pid_t pgid;
	assert_int_equal(run("sleep 30 & echo started", 10, 0, &status, &took, &pgid), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Well before the 10 s grace period would have ended it; the bound only catches a hang. */
	assert_true(took < 9000000);
	assert_true(group_ended(pgid));
}

/* The worker dies without cleaning up (kill -9): the keeper ends the command's whole
 * group, including what the shell started in the background. */
static void test_worker_death(void **state)
{
	int report[2];
	assert_int_equal(pipe(report), 0);
	pid_t worker = fork();
	assert_true(worker >= 0);
	if (worker == 0) {
		struct worker_config cfg = config();
		cfg.on_work = "sleep 30 & sleep 30";
		char *envp[] = {"PATH=/usr/bin:/bin", NULL};
		struct child ch;
		char err[256];
		pid_t pgid = child_spawn(&ch, &cfg, cfg.workdir, envp, NULL, 0, "work_t", err, sizeof(err)) == 0 ? ch.pid : -1;
		/* Let the shell start its background job before the "worker" dies. */
		usleep(200000);
		ssize_t n = write(report[1], &pgid, sizeof(pgid));
		_exit(n == sizeof(pgid) ? 0 : 1);
	}
	pid_t pgid = -1;
	assert_int_equal(read(report[0], &pgid, sizeof(pgid)), (ssize_t)sizeof(pgid));
	assert_true(pgid > 0);
	int status;
	assert_int_equal(waitpid(worker, &status, 0), worker);
	assert_true(group_ended(pgid));
	close(report[0]);
	close(report[1]);
}

static void test_bad_workdir(void **state)
{
	struct worker_config cfg = config();
	cfg.on_work = "true";
	cfg.workdir = "/nonexistent/dir";
	char *envp[] = {NULL};
	struct child ch;
	char err[256];
	assert_int_equal(child_spawn(&ch, &cfg, cfg.workdir, envp, NULL, 0, "work_t", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir"));
}

/* The keeper is a fresh exec of the process: it holds exactly the environment it was
 * given (not this process's), and none of this process's memory. */
static char memory_canary[64];

static int mem_holds(pid_t pid, const char *needle)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int mem = open(path, O_RDONLY);
	assert_non_null(maps);
	assert_true(mem >= 0);
	int found = 0;
	char line[512];
	size_t nlen = strlen(needle);
	static char chunk[1 << 20];
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		/* Huge mappings are a sanitizer's shadow memory, not data. */
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' || hi - lo > (256UL << 20))
			continue;
		for (unsigned long at = lo; at < hi && !found; at += sizeof(chunk) - nlen) {
			size_t want = hi - at < sizeof(chunk) ? hi - at : sizeof(chunk);
			ssize_t n = pread(mem, chunk, want, (off_t)at);
			if (n <= 0)
				break;
			found = memmem(chunk, (size_t)n, needle, nlen) != NULL;
			if ((size_t)n < sizeof(chunk))
				break;
		}
	}
	fclose(maps);
	close(mem);
	return found;
}

static void stop_now(void *arg, struct child_order *o)
{
	(void)arg;
	o->why = "test";
	o->kill_now = 0;
	o->check_by_us = 0;
}

static void test_keeper_fresh(void **state)
{
	if (geteuid() != 0)
		skip(); /* the keeper is non-dumpable: only root may read its environ and mem */
	snprintf(memory_canary, sizeof(memory_canary), "envd_env_%s", "MEMORYCANARY0123456789");
	struct worker_config cfg = config();
	cfg.on_work = "exec sleep 30";
	char *envp[] = {"PATH=/usr/bin:/bin", "ONLY=this", NULL};
	struct child ch;
	char err[256];
	assert_int_equal(child_spawn(&ch, &cfg, NULL, envp, NULL, 0, "work_t", err, sizeof(err)), 0);
	char path[64], env[256];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)ch.pid);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, env, sizeof(env));
	close(fd);
	static const char want[] = "PATH=/usr/bin:/bin\0ONLY=this";
	assert_int_equal(n, (ssize_t)sizeof(want));
	assert_memory_equal(env, want, sizeof(want));
	assert_true(mem_holds(getpid(), memory_canary)); /* the search finds what is there */
	assert_false(mem_holds(ch.pid, memory_canary));
	int wake[2];
	assert_int_equal(pipe2(wake, O_NONBLOCK | O_CLOEXEC), 0);
	child_supervise(&ch, 5, wake[0], stop_now, NULL);
	close(wake[0]);
	close(wake[1]);
}

/* The item's JSON reaches the command's stdin, then EOF; a large one too. */
static void test_stdin(void **state)
{
	int status;
	int64_t took;
	stdin_data = "{\"id\":\"work_t\"}";
	assert_int_equal(run("read -r line; test \"$line\" = '{\"id\":\"work_t\"}' && ! read -r more", 1, 0, &status,
			     &took, NULL), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	static char big[300000];
	memset(big, 'x', sizeof(big) - 1);
	stdin_data = big;
	assert_int_equal(run("test \"$(wc -c)\" = 299999", 1, 0, &status, &took, NULL), 0);
	stdin_data = NULL;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
	/* child_spawn starts its keeper as /proc/self/exe __keeper ..., which is this binary. */
	if (argc > 1 && strcmp(argv[1], "__keeper") == 0)
		return keeper_main(argc - 1, argv + 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_long_line_utf8),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_missing_command),
		cmocka_unit_test(test_sigterm),
		cmocka_unit_test(test_sigkill_after_grace),
		cmocka_unit_test(test_leftovers),
		cmocka_unit_test(test_worker_death),
		cmocka_unit_test(test_bad_workdir),
		cmocka_unit_test(test_keeper_fresh),
		cmocka_unit_test(test_stdin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
