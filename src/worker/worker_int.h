/* worker_int.h - the worker's internals, shared by its files and its unit tests.
 *
 * Threads: the main thread polls for work and hands each item to a free slot; each busy
 * slot runs one item on its own thread (ack, run the child, stop) and one lease thread
 * that heartbeats it; a signal thread turns SIGTERM/SIGINT/SIGHUP/SIGQUIT into the
 * `draining` and `aborting` flags.
 *
 * Credentials: the poller uses the environment key; everything about one item (ack,
 * heartbeat, stop) uses that delivery's session token from the poll's secret (SPEC §4).
 * A session token outlives its item's stop; only a redelivery replaces it, and from then
 * on the server refuses the old one (401), so a worker that lost the item cannot touch it
 * in the hands of its new holder. A slot's thread has reaped its child before it says it
 * is free, so there are never more children than slots.
 *
 * Lease modes: with WORKER_LEASE_WORKER a lease thread heartbeats the item while its
 * command runs and the slot's thread stops it afterwards; with WORKER_LEASE_COMMAND the
 * command owns the lease (it heartbeats and stops the item itself) and the worker sends
 * nothing about the item after the ack.
 *
 * What a command can reach: each runs under a keeper that is a fresh exec of this binary
 * (keeper.c), with the command's environment only; the worker and the keeper are
 * non-dumpable, and the worker's credentials are wiped from its own environment once
 * read (cmd_worker.c). */
#ifndef ENVIROND_WORKER_INT_H
#define ENVIROND_WORKER_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "client/client.h"
#include "worker/worker.h"

#define WORKER_ID_MAX 128
#define ITEM_ID_MAX 256
#define HEARTBEAT_TEXT_MAX 64
/* The lease an ack grants before the first beat names its own TTL (SPEC §3.1 T4). */
#define LEASE_TTL_DEFAULT_S 90
#define REQUEST_TIMEOUT_MS 10000L
/* While stopping now, each item gets one stop attempt of at most this long. */
#define ABORT_STOP_TIMEOUT_MS 2500L
#define NO_HEARTBEAT "NO_HEARTBEAT"

/* ---- one claimed work item ---- */

enum item_kind { ITEM_SESSION, ITEM_HEALTHCHECK, ITEM_OTHER };

/* The fields of a poll reply the worker acts on; all owned (item_free). secret is the
 * delivery's secret, handed to the child and never logged; token is the session token
 * inside it, which the worker's own requests about this item carry. */
struct item {
	char *id;
	char *session_id;   /* data.id */
	char *type;         /* data.type */
	char *secret;       /* may be NULL */
	char *token;        /* envd_req_...; NULL when the secret holds none */
	char *json;         /* the poll reply as the command's stdin gets it (holds the secret) */
	enum item_kind kind;
};

/* Read an item from a poll reply body. Returns 0, or -1 with a reason in err when the
 * reply is not an item the worker can act on (no id, an id that is not printable). A
 * secret that does not decode to a session token leaves token NULL. */
int item_parse(const json_t *body, struct item *it, char *err, size_t errlen);
void item_free(struct item *it);

/* ---- the lease (lease.c) ---- */

enum lease_verdict {
	LEASE_HELD,      /* beats succeed, or fail transiently while the lease may still be ours */
	LEASE_STOPPING,  /* the server asked for a stop: end the child, keep beating, stop the item */
	LEASE_STOPPED,   /* already stopped on the server: end the child; nothing left to stop */
	LEASE_LOST,      /* over (412, 401/403, deadline passed): end the child, leave the item */
	LEASE_REJECTED,  /* beats refused for good (400/404): end the child, try a stop */
};

const char *lease_verdict_name(enum lease_verdict v);

/* What one heartbeat reply means, decided from the reply alone. */
struct beat {
	int renewed;        /* a 200 that extended the lease */
	int transient;      /* no usable answer: retry while the TTL lasts */
	enum lease_verdict verdict;
	char last_heartbeat[HEARTBEAT_TEXT_MAX];  /* from a 200: the value to echo next */
	int ttl_s;          /* from a 200 that renewed: the lease's TTL */
	char state[16];     /* the item's state as the server reported it, "" if unknown */
	/* From a 412 on a starting/active item: the heartbeat the server holds. While our
	 * lease has not run out nobody else can have set it, so it is ours (a beat whose
	 * reply was lost) and the next beat echoes it. "" otherwise. */
	char adopt[HEARTBEAT_TEXT_MAX];
};

void lease_judge(const struct client_reply *r, struct beat *b);

/* What the worker knows of one lease; pure data, so the decisions can be tested. */
struct lease_state {
	enum lease_verdict verdict;
	char last_heartbeat[HEARTBEAT_TEXT_MAX];  /* the value the next beat echoes */
	int ttl_s;
	int64_t last_renewed_us;  /* monotonic: when the last renewing beat (or the ack) was sent */
	int adoptions;            /* 412s in a row answered by adopting the server's heartbeat */
};

/* A fresh lease: the ack's (SPEC §3.1 T4), sent at acked_us. */
void lease_state_init(struct lease_state *st, int64_t acked_us);
/* The hard deadline: last renewal + ttl. Past it the server may have handed the item on. */
int64_t lease_deadline_us(const struct lease_state *st);
/* Past the deadline a held lease is lost (T18) and a stopping one is stopped (T19).
 * Returns 1 when this changed the verdict. */
int lease_check_deadline(struct lease_state *st, int64_t now_us);
/* Take in one beat that echoed expected, was sent at sent_us and answered at now_us.
 * Returns 1 when the next beat should go at once (a heartbeat was just adopted). */
int lease_apply(struct lease_state *st, const struct beat *b, const char *expected, int64_t sent_us,
		int64_t now_us);
/* How long one beat may take: longer than the interval (a busy server is not a lost
 * lease), never past the deadline. 0 when the deadline has passed. */
long lease_beat_timeout_ms(const struct lease_state *st, int interval_s, int64_t now_us);

/* The time between beats: at most interval_s, and at most a third of the lease so two
 * beats can fail before it runs out; never below one second. */
int lease_interval_s(int interval_s, int ttl_s);

struct worker;

/* The heartbeat of one item on its own thread. The runner starts it after the ack, waits
 * for the first beat, reads the verdict whenever it is woken through wake_fd, and ends it
 * before it stops the item. */
struct lease {
	struct worker *w;
	const struct item *item;
	struct client *client;       /* borrowed from the slot; used only by the lease thread */
	int wake_fd;                 /* written when the verdict changes */
	pthread_t thread;
	int started;
	atomic_int cancel;           /* aborts a beat in flight once the run is over */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* Under mu. */
	int ended;
	int answered;                /* the first beat has been decided */
	struct lease_state st;
};

/* Start heartbeating it (at once, with NO_HEARTBEAT). acked_us is the monotonic time the
 * ack was sent: the ack's lease runs from then. Returns 0, or -1 if no thread could start. */
int lease_start(struct lease *l, struct worker *w, struct client *client, const struct item *it,
		int wake_fd, int64_t acked_us);
/* Block until the first beat is decided or the worker is aborting; the verdict. */
enum lease_verdict lease_wait_first(struct lease *l);
/* The verdict now (a deadline that has passed counts); *deadline_us gets the deadline. */
enum lease_verdict lease_current(struct lease *l, int64_t *deadline_us);
/* Stop beating and join the thread; l->st is final afterwards (deadline applied). */
void lease_end(struct lease *l);

/* One synchronous beat (healthcheck items), applied to st (set up from the ack). */
enum lease_verdict lease_beat_once(struct worker *w, struct client *c, const struct item *it,
				   struct lease_state *st);

/* ---- the child process group (child.c) ---- */

/* Small enough that a piece escaped for the log (up to 6 bytes a byte, \u00XX) still fits
 * common/log.c's 16 KiB line with room for the other fields; log.c drops longer lines. */
#define LINE_MAX_BYTES 2048

struct line_buf {
	char data[LINE_MAX_BYTES];
	size_t len;
};

/* Feed bytes; emit(line, arg) is called for each complete line (without '\n') and for each
 * piece of at most LINE_MAX_BYTES - 1 bytes of a longer one, cut between UTF-8 characters
 * where it can be. line_buf_flush emits what is left. */
void line_buf_feed(struct line_buf *lb, const char *data, size_t len,
		   void (*emit)(const char *line, void *arg), void *arg);
void line_buf_flush(struct line_buf *lb, void (*emit)(const char *line, void *arg), void *arg);

/* Build the child's environment from env (NULL-terminated "K=V" list): drop the worker's
 * credentials (ANTHROPIC_ENVIRONMENT_KEY, set again only when environment_key is given;
 * ENVIROND_API_KEY, ANTHROPIC_API_KEY and ANTHROPIC_AUTH_TOKEN always) and anything named
 * like the variables set here, then add the item's variables (and, with cfg->run_as,
 * that user's HOME, USER and LOGNAME). Returns a new
 * NULL-terminated array of new strings (child_env_free), or NULL on out of memory. */
char **child_env_build(char *const *env, const struct worker_config *cfg, const struct item *it,
		       const char *environment_key);
void child_env_free(char **envp);

/* ---- the keeper (keeper.c) ---- */

#define KEEPER_DEATH_SIGNAL SIGRTMAX
#define KEEPER_REPORT_FD 3
/* environd __keeper WORKER_PID WORKDIR UID GID GROUPS CMD: 7 words from "__keeper" on. */
#define KEEPER_ARGC 7
#define KEEPER_SUBCOMMAND "__keeper"

/* What went wrong before /bin/sh ran; written on the report pipe. */
enum keeper_stage {
	KEEPER_STAGE_EXEC = 1,  /* the keeper itself could not be started */
	KEEPER_STAGE_ARGS,
	KEEPER_STAGE_WORKDIR,
	KEEPER_STAGE_USER,
	KEEPER_STAGE_SHELL,
};
struct keeper_report {
	int stage;
	int err;
};

struct child {
	pid_t pid;            /* the keeper's, which is also the process group id */
	int pidfd;            /* -1 when the kernel has no pidfd_open */
	int out_fd, err_fd;   /* read ends; -1 after EOF */
	int in_fd;            /* write end of the command's stdin; -1 once all is written */
	const char *in_data;  /* borrowed: what stdin gets, then EOF */
	size_t in_len, in_off;
	struct line_buf out, err;
	const char *work_id;  /* borrowed, for the log */
	int leader_exited;    /* the keeper has exited (still a zombie, so its pgid stays ours) */
	int status;           /* its wait status (the shell's, mirrored), once leader_exited */
};

/* Start /bin/sh -c cfg->on_work in workdir (NULL: ours) under a keeper, in a new process
 * group, as cfg->run_as when set, with envp as its environment and stdin (stdin_len bytes,
 * borrowed until child_supervise returns) on its standard input. Returns 0, or -1 with a
 * reason in err (nothing is left running then). */
int child_spawn(struct child *ch, const struct worker_config *cfg, const char *workdir, char **envp,
		const char *stdin_data, size_t stdin_len, const char *work_id, char *err, size_t errlen);

/* What the runner wants of the child right now. */
struct child_order {
	const char *why;      /* NULL while the child may run on */
	int kill_now;         /* no grace period: SIGKILL the group at once */
	int64_t check_by_us;  /* monotonic: ask again by then even if nothing wakes us; 0 = no need */
};
typedef void (*child_stop_check)(void *arg, struct child_order *order);

/* Supervise the child until its whole process group is gone: copy its output to the log,
 * SIGTERM the group when should_stop() names a reason (SIGKILL when it says kill_now),
 * SIGKILL it grace_s later, and after the shell exits, end whatever it left behind in its
 * group. wake_fd is polled so a new reason is seen at once. Reaps the shell; closes the
 * pipes. */
void child_supervise(struct child *ch, int grace_s, int wake_fd, child_stop_check should_stop, void *arg);

/* "exit 0", "signal TERM", ... for the log. */
void child_describe_status(int status, char *out, size_t len);

/* ---- slots and the worker (worker.c, item.c) ---- */

struct slot {
	struct worker *w;
	int index;
	int wake[2];               /* self-pipe: [0] read by the runner, [1] written to wake it */
	struct client api;         /* ack and stop; used by the slot's thread only */
	struct client beat;        /* heartbeats; used by the lease thread only */
	pthread_t thread;
	/* Under w->mu. */
	int busy;                  /* a thread runs an item here */
	int done;                  /* that thread finished; the main thread joins it */
	/* Owned by the slot's thread while busy. */
	struct item item;
	int64_t claimed_us;
};

struct worker {
	const struct worker_config *cfg;
	atomic_int draining;       /* no new claims; running items finish */
	atomic_int aborting;       /* end running items now */
	atomic_int stop_failed;    /* an item could not be stopped: the exit status says so */
	pthread_mutex_t mu;
	pthread_cond_t cond;       /* a slot finished, or draining began */
	struct slot *slots;
	int running;               /* busy slots, under mu */
};

/* Wake a slot's runner (async-safe: one write to a non-blocking pipe). */
void slot_wake(struct slot *s);

/* The body of a slot's thread: ack, run, stop (item.c). */
void *item_thread(void *arg);

/* Force-stop the item (`{"force":true}`) with client c (which carries the item's session
 * token), retrying transient failures, but never sending anything at or after deadline_us
 * (the lease's end: past it the item may be someone else's). While aborting, one short
 * attempt. 200 is done; 401/403/409 mean already stopped or not ours, done as well.
 * Returns 0 when there is nothing left to stop, -1 when the stop failed. */
int item_stop(struct worker *w, struct client *c, const struct item *it, int64_t deadline_us);

/* Append "/v1/environments/ENV/work/ID" + suffix, escaped. */
void item_path(struct buf *b, const struct worker *w, const char *work_id, const char *suffix);

/* ---- signals (signals.c) ---- */

/* Block SIGTERM, SIGINT, SIGHUP and SIGQUIT in every thread and start a thread that turns
 * them into w->draining / w->aborting (a third signal ends the process). Returns 0 or -1. */
int signals_start(struct worker *w);
void signals_stop(void);

#endif
