/* item.c - the life of one claimed work item on a slot's thread: ack, heartbeat, run the
 * command, and stop the item when the command is over.
 *
 * Every way out leaves the item either stopped by us or with a lease that the server will
 * expire: a lost lease is never stopped (the item belongs to its new holder), and an item
 * whose ack failed was never ours (the server hands it out again). Every request about
 * the item carries its session token and none is sent past the lease's deadline, so a
 * worker that lost the item cannot touch it in the hands of the next one. */
#include "worker/worker_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "worker/run_as.h"
#include "worker/ticks.h"
#include "common/secret.h"

extern char **environ;

void item_free(struct item *it)
{
	free(it->id);
	free(it->session_id);
	free(it->type);
	if (it->secret) {
		memset(it->secret, 0, strlen(it->secret));
		free(it->secret);
	}
	if (it->token) {
		memset(it->token, 0, strlen(it->token));
		free(it->token);
	}
	if (it->json) {
		memset(it->json, 0, strlen(it->json));
		free(it->json);
	}
	memset(it, 0, sizeof(*it));
}

/* Ids go into URLs, logs and the child's environment: printable ASCII only. */
static int printable(const char *s, size_t max)
{
	size_t n = 0;
	for (; *s; s++, n++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || n >= max)
			return 0;
	return n > 0;
}

/* The session token inside a secret: base64url of {"sessions_token":T,...} (SPEC §3.1).
 * A new string, or NULL when the secret holds no usable token. */
static char *secret_token(const char *secret)
{
	size_t len = strlen(secret);
	size_t cap = len / 4 * 3 + 3;
	unsigned char *raw = malloc(cap + 1);
	if (!raw)
		return NULL;
	char *token = NULL;
	long n = b64url_decode(secret, len, raw, cap);
	if (n > 0) {
		json_error_t jerr;
		json_t *doc = json_loadb((const char *)raw, (size_t)n, 0, &jerr);
		const char *t = client_json_str(doc, "sessions_token");
		if (t && strncmp(t, "envd_req_", 9) == 0 && printable(t, 1024))
			token = strdup(t);
		json_decref(doc);
		memset(raw, 0, (size_t)n);
	}
	free(raw);
	return token;
}

int item_parse(const json_t *body, struct item *it, char *err, size_t errlen)
{
	memset(it, 0, sizeof(*it));
	const char *id = client_json_str(body, "id");
	json_t *data = json_is_object(body) ? json_object_get(body, "data") : NULL;
	const char *type = client_json_str(data, "type");
	const char *session_id = client_json_str(data, "id");
	json_t *secret = json_is_object(body) ? json_object_get(body, "secret") : NULL;
	if (!id || !printable(id, ITEM_ID_MAX)) {
		snprintf(err, errlen, "the poll reply has no usable work id");
		return -1;
	}
	if (!type || !session_id || !printable(session_id, ITEM_ID_MAX)) {
		snprintf(err, errlen, "work item %s has no usable data.type and data.id", id);
		return -1;
	}
	if (secret && !json_is_null(secret) && (!json_is_string(secret) || !printable(json_string_value(secret), 65536))) {
		snprintf(err, errlen, "work item %s has a secret that is not a printable string", id);
		return -1;
	}
	it->id = strdup(id);
	it->type = strdup(type);
	it->session_id = strdup(session_id);
	it->secret = json_is_string(secret) ? strdup(json_string_value(secret)) : NULL;
	it->token = it->secret ? secret_token(it->secret) : NULL;
	it->json = json_dumps(body, JSON_COMPACT);
	if (!it->id || !it->type || !it->session_id || (json_is_string(secret) && !it->secret) || !it->json) {
		item_free(it);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	it->kind = strcmp(type, "session") == 0       ? ITEM_SESSION
		   : strcmp(type, "healthcheck") == 0 ? ITEM_HEALTHCHECK
						      : ITEM_OTHER;
	return 0;
}

void item_path(struct buf *b, const struct worker *w, const char *work_id, const char *suffix)
{
	buf_puts(b, "/v1/environments/");
	client_put_escaped(b, w->cfg->environment_id);
	buf_puts(b, "/work/");
	client_put_escaped(b, work_id);
	buf_puts(b, suffix);
}

/* Sleep up to us, in short steps so that a "stop now" cuts it short. */
static void nap_unless_aborting(struct worker *w, int64_t us)
{
	int64_t until = clock_mono_us() + us;
	for (int64_t left = us; left > 0 && !atomic_load(&w->aborting); left = until - clock_mono_us()) {
		int64_t step = left < 100000 ? left : 100000;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Ack, retrying transient failures briefly: an item that is delivered but not acked goes
 * back to the queue on its own, so giving up is safe. Returns 0 once acked. */
static int item_ack(struct worker *w, struct client *c, const struct item *it)
{
	struct buf path;
	buf_init(&path, 4096);
	item_path(&path, w, it->id, "/ack");
	int rc = -1;
	for (int attempt = 0; attempt < 3 && !path.failed; attempt++) {
		struct client_reply r;
		client_request(c, "POST", path.data, NULL, NULL, REQUEST_TIMEOUT_MS, &r);
		char status[16];
		snprintf(status, sizeof(status), "%d", r.status);
		if (r.status == 200) {
			client_reply_free(&r);
			rc = 0;
			break;
		}
		/* A 409 means the item was stopped before we got to it (T6), a 401/403 that our
		 * session token was replaced (the item was delivered again): nothing to run and
		 * nothing to stop, an ordinary race rather than a failure. */
		int stopped = r.status == 409 || r.status == 401 || r.status == 403;
		int transient = !stopped && client_is_transient(&r);
		log_event(stopped ? LOG_INFO : transient ? LOG_WARN : LOG_ERROR, stopped ? "ack_refused" : "ack_failed",
			  "work_id", it->id, "status", status, "error", r.message, NULL);
		client_reply_free(&r);
		if (!transient || atomic_load(&w->aborting) || attempt == 2)
			break;
		nap_unless_aborting(w, worker_backoff_us(attempt, -1) / 4);
	}
	buf_free(&path);
	return rc;
}

int item_stop(struct worker *w, struct client *c, const struct item *it, int64_t deadline_us)
{
	struct buf path;
	buf_init(&path, 4096);
	item_path(&path, w, it->id, "/stop");
	int rc = -1;
	const char *why = path.failed ? "stop URL too long" : "the lease ran out before a stop got through";
	for (int attempt = 0; attempt < 5 && !path.failed; attempt++) {
		/* Past the deadline the item may be someone else's: nothing more is sent. */
		int64_t left_ms = (deadline_us - clock_mono_us()) / 1000;
		if (left_ms <= 0)
			break;
		int aborting = atomic_load(&w->aborting);
		long timeout_ms = aborting ? ABORT_STOP_TIMEOUT_MS : REQUEST_TIMEOUT_MS;
		if (timeout_ms > left_ms)
			timeout_ms = (long)left_ms;
		struct client_reply r;
		client_request(c, "POST", path.data, "{\"force\":true}", NULL, timeout_ms, &r);
		char status[16];
		snprintf(status, sizeof(status), "%d", r.status);
		/* 409: stopped already (T17). 401/403: our session token was replaced, because the
		 * item was handed to someone else: not ours to stop. */
		int already = r.status == 409 || r.status == 401 || r.status == 403;
		int done = r.status == 200 || already;
		int transient = !done && client_is_transient(&r);
		if (done)
			log_event(LOG_INFO, "item_stopped", "work_id", it->id, "already", already ? "true" : "false",
				  "status", status, NULL);
		else
			log_event(transient ? LOG_WARN : LOG_ERROR, "stop_failed", "work_id", it->id, "status", status,
				  "error", r.message, NULL);
		client_reply_free(&r);
		if (done)
			rc = 0;
		why = "the server did not take the stop";
		/* No pause after the last try, and none while stopping now. */
		if (done || !transient || aborting || attempt == 4)
			break;
		int64_t pause_us = worker_backoff_us(attempt, -1) / 2;
		if (clock_mono_us() + pause_us >= deadline_us)
			break;
		nap_unless_aborting(w, pause_us);
	}
	buf_free(&path);
	if (rc) {
		atomic_store(&w->stop_failed, 1);
		log_event(LOG_ERROR, "item_not_stopped", "work_id", it->id, "error", why, "reason",
			  "left to the server, which requeues it when its lease runs out", NULL);
	}
	return rc;
}

struct run_ctx {
	struct worker *w;
	struct lease *lease;
};

/* Why the child must end now, and how fast. */
static void stop_reason(void *arg, struct child_order *o)
{
	struct run_ctx *ctx = arg;
	int64_t deadline_us;
	enum lease_verdict v = lease_current(ctx->lease, &deadline_us);
	int64_t now = clock_mono_us();
	o->why = v != LEASE_HELD ? lease_verdict_name(v) : atomic_load(&ctx->w->aborting) ? "worker_stopping" : NULL;
	/* A lost lease past its deadline may already run elsewhere: no grace period. */
	o->kill_now = v == LEASE_LOST && now >= deadline_us;
	o->check_by_us = now < deadline_us ? deadline_us : 0;
}

/* Start the item's command: its environment (with environment_key when not NULL), its
 * directory, the item's JSON on its stdin. Returns 0, or -1 after logging why. */
static int start_command(struct slot *s, const char *environment_key, struct child *ch)
{
	struct worker *w = s->w;
	const struct item *it = &s->item;
	char err[512], dir[PATH_MAX];
	const char *workdir = w->cfg->workdir;
	if (w->cfg->run_as) {
		if (run_as_item_dir(w->cfg->run_as, w->cfg->workdir, it->id, dir, sizeof(dir), err, sizeof(err))) {
			log_event(LOG_ERROR, "child_failed", "work_id", it->id, "error", err, NULL);
			return -1;
		}
		workdir = dir;
	}
	char **envp = child_env_build(environ, w->cfg, it, environment_key);
	if (!envp || child_spawn(ch, w->cfg, workdir, envp, it->json, strlen(it->json), it->id, err, sizeof(err))) {
		log_event(LOG_ERROR, "child_failed", "work_id", it->id, "error", envp ? err : "out of memory", NULL);
		child_env_free(envp);
		return -1;
	}
	child_env_free(envp);
	char pid[24];
	snprintf(pid, sizeof(pid), "%d", (int)ch->pid);
	log_event(LOG_INFO, "child_start", "work_id", it->id, "session_id", it->session_id, "pid", pid, "lease",
		  w->cfg->lease == WORKER_LEASE_COMMAND ? "command" : "worker", NULL);
	return 0;
}

/* With --lease command nothing but the worker's own stop ends the command. */
static void stop_reason_command(void *arg, struct child_order *o)
{
	struct run_ctx *ctx = arg;
	o->why = atomic_load(&ctx->w->aborting) ? "worker_stopping" : NULL;
	o->kill_now = 0;
	o->check_by_us = 0;
}

/* --lease command: the command heartbeats and stops the item itself (it has the
 * environment key and the item); the worker sends nothing about the item while it runs
 * or after. Returns 0 once the command ran, -1 when it could not start (the item is then
 * still under the ack's lease, which is the worker's to stop). */
static int run_command_owned(struct slot *s)
{
	struct worker *w = s->w;
	const struct item *it = &s->item;
	if (atomic_load(&w->aborting)) {
		log_event(LOG_INFO, "not_started", "work_id", it->id, "reason", "worker_stopping", NULL);
		return -1;
	}
	struct child ch;
	if (start_command(s, w->cfg->environment_key, &ch))
		return -1;
	struct run_ctx ctx = {w, NULL};
	child_supervise(&ch, w->cfg->grace_s, s->wake[0], stop_reason_command, &ctx);
	log_event(LOG_INFO, "item_left", "work_id", it->id, "reason", "the command owns the lease", NULL);
	return 0;
}

/* Run a session item's command while the lease is held; returns the final verdict. */
static enum lease_verdict run_session(struct slot *s, struct lease *lease)
{
	struct worker *w = s->w;
	const struct item *it = &s->item;
	enum lease_verdict v = lease_wait_first(lease);
	if (v != LEASE_HELD || atomic_load(&w->aborting)) {
		log_event(LOG_INFO, "not_started", "work_id", it->id, "reason",
			  v != LEASE_HELD ? lease_verdict_name(v) : "worker_stopping", NULL);
		return v;
	}
	struct child ch;
	if (start_command(s, w->cfg->pass_environment_key ? w->cfg->environment_key : NULL, &ch))
		return lease_current(lease, NULL);
	struct run_ctx ctx = {w, lease};
	child_supervise(&ch, w->cfg->grace_s, s->wake[0], stop_reason, &ctx);
	return lease_current(lease, NULL);
}

static void run_item(struct slot *s)
{
	struct worker *w = s->w;
	const struct item *it = &s->item;
	log_event(LOG_INFO, "claim", "work_id", it->id, "type", it->type, "session_id", it->session_id, NULL);
	/* The item's own credential for everything about it. Without one (a server that sends
	 * no session token) the environment key stands in, and only the deadline protects the
	 * next holder. */
	const char *cred = it->token ? it->token : w->cfg->environment_key;
	if (!it->token)
		log_event(LOG_WARN, "no_session_token", "work_id", it->id, "error",
			  "the secret holds no session token; using the environment key", NULL);
	if (client_set_credential(&s->api, cred) || client_set_credential(&s->beat, cred)) {
		/* Not acked: the server hands it out again. */
		log_event(LOG_ERROR, "claim_failed", "work_id", it->id, "error", "out of memory", NULL);
		return;
	}
	int64_t acked_us = clock_mono_us();
	if (item_ack(w, &s->api, it))
		return;
	log_event(LOG_DEBUG, "ack", "work_id", it->id, NULL);

	struct lease_state st;
	lease_state_init(&st, acked_us);
	if (w->cfg->lease == WORKER_LEASE_COMMAND && it->kind != ITEM_OTHER) {
		if (run_command_owned(s) == 0)
			return;
		/* Not started: the ack's lease is still ours, and nobody else will end it. */
	} else if (it->kind == ITEM_HEALTHCHECK) {
		/* A healthcheck proves the worker can claim, ack and beat; there is no command. */
		lease_beat_once(w, &s->beat, it, &st);
	} else if (it->kind == ITEM_OTHER) {
		log_event(LOG_WARN, "unsupported_work", "work_id", it->id, "type", it->type, NULL);
	} else {
		struct lease lease;
		if (lease_start(&lease, w, &s->beat, it, s->wake[1], acked_us)) {
			log_event(LOG_ERROR, "lease_failed", "work_id", it->id, "error", "cannot start a thread", NULL);
		} else {
			run_session(s, &lease);
			/* The lease stays renewed until the child is gone; only then stop beating. */
			lease_end(&lease);
			st = lease.st;
		}
	}
	lease_check_deadline(&st, clock_mono_us());
	enum lease_verdict v = st.verdict;
	if (v == LEASE_LOST) {
		log_event(LOG_WARN, "item_released", "work_id", it->id, "reason", "lease lost; left to its new holder",
			  NULL);
		return;
	}
	if (v == LEASE_STOPPED) {
		log_event(LOG_INFO, "item_stopped", "work_id", it->id, "already", "true", NULL);
		return;
	}
	item_stop(w, &s->api, it, lease_deadline_us(&st));
}

void *item_thread(void *arg)
{
	struct slot *s = arg;
	struct worker *w = s->w;
	run_item(s);
	int64_t ms = (clock_mono_us() - s->claimed_us) / 1000;
	char took[24];
	snprintf(took, sizeof(took), "%lld", (long long)ms);
	log_event(LOG_INFO, "item_done", "work_id", s->item.id, "ms", took, NULL);
	item_free(&s->item);
	pthread_mutex_lock(&w->mu);
	s->done = 1;
	w->running--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}
