/* sql_work.c - work items: enqueue, claim, events, lists, stats, leases.
 *
 * Every verb of an environment's work checks the environment first, in its own job
 * (sql_env_require), and every change of an item's state goes through model/work.c and
 * write_lease. The SQL names some states by their stored numbers (model/work.h pins
 * them): queued 0, starting 1, active 2, stopping 3, stopped 4.
 *
 * Queue order: fresh items carry an increasing queue_seq; an item whose lease expired
 * (T18) goes back to the head with queue_seq = created_at - 2^62, so re-queued items come
 * before fresh ones and keep their age order among themselves. */
#include "store/sql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/metadata.h"

#define HEAD_OFFSET (1LL << 62)

_Static_assert(WORK_QUEUED == 0 && WORK_STARTING == 1 && WORK_ACTIVE == 2 && WORK_STOPPING == 3 &&
		       WORK_STOPPED == 4,
	       "the SQL of this file names work states by their stored numbers");

enum token_update { TOKEN_KEEP, TOKEN_SET };

/* A row this build cannot read (a state it does not know, metadata that is not a JSON
 * object) is reported, never guessed at: the request fails with a 500 and the row stays
 * as it is for an operator to look at. */
static enum err corrupt_row(struct work_item *w, const char *why)
{
	log_event(LOG_ERROR, "work_row_invalid", "work_id", w->id, "reason", why, NULL);
	work_item_clear(w);
	return ERR_INTERNAL;
}

/* Decode one row of WORK_COLUMNS. On an error *w owns nothing. */
enum err sql_work_row(struct db_stmt *st, struct work_item *w)
{
	memset(w, 0, sizeof(*w));
	db_col_copy(st, 0, w->id, sizeof(w->id));
	db_col_copy(st, 1, w->environment_id, sizeof(w->environment_id));
	db_col_copy(st, 2, w->data_type, sizeof(w->data_type));
	db_col_copy(st, 3, w->data_id, sizeof(w->data_id));
	struct work_lease *l = &w->lease;
	/* Read whole: a stored 2^32 must not pass as 0 (queued) through a narrowing. */
	int64_t state = db_col_i64(st, 4);
	if (db_col_type(st, 4) != DB_INT || state < 0 || state >= WORK_STATE__COUNT)
		return corrupt_row(w, "unknown state");
	l->state = (enum work_state)state;
	if (strcmp(w->data_type, "session") != 0 && strcmp(w->data_type, "healthcheck") != 0)
		return corrupt_row(w, "unknown data type");
	const char *meta = db_col_text(st, 5);
	if (!meta)
		return db_col_type(st, 5) == DB_NULL ? corrupt_row(w, "metadata is null") : ERR_NOMEM;
	json_error_t jerr;
	w->metadata = json_loads(meta, 0, &jerr);
	if (!w->metadata)
		return json_error_code(&jerr) == json_error_out_of_memory ? ERR_NOMEM : corrupt_row(w, "metadata is not JSON");
	if (!json_is_object(w->metadata))
		return corrupt_row(w, "metadata is not an object");
	w->created_at = db_col_i64(st, 6);
	l->acknowledged_at = db_col_i64(st, 7);
	l->started_at = db_col_i64(st, 8);
	l->latest_heartbeat_at = db_col_i64(st, 9);
	l->stop_requested_at = db_col_i64(st, 10);
	l->stopped_at = db_col_i64(st, 11);
	l->delivered_at = db_col_i64(st, 12);
	l->delivery_count = db_col_int(st, 13);
	l->lease_expires_at = db_col_i64(st, 14);
	l->ttl_seconds = db_col_int(st, 15);
	l->cycle_deliveries = db_col_int(st, 16);
	l->ack_proven = db_col_int(st, 17) != 0;
	return ERR_OK;
}

/* Load one item of env inside a job; ERR_NOT_FOUND when absent or under another env. In a
 * write job the row stays locked until the commit: the transition decided from it must not
 * be overwritten by a concurrent one decided from the same old row (a read drops the lock). */
static enum err load_work(struct sql_store *s, const char *env_id, const char *work_id, struct work_item *out)
{
	struct db_stmt *st = sql_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE id = ? AND environment_id = ?"
					  " FOR UPDATE");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, work_id);
	db_bind_text(st, 2, env_id);
	int rc = db_step(st);
	if (rc == DB_DONE)
		return ERR_NOT_FOUND;
	if (rc != DB_ROW)
		return sql_err(s, rc);
	return sql_work_row(st, out);
}

/* Persist the lease fields the model decided, plus the queue position and the token. */
static enum err write_lease(struct sql_store *s, const struct work_item *w, int requeue_at_head,
			    enum token_update token, const char *token_hash)
{
	struct db_stmt *st = sql_stmt(
		s, "UPDATE work SET state = ?, acknowledged_at = ?, started_at = ?, latest_heartbeat_at = ?,"
		   " stop_requested_at = ?, stopped_at = ?, delivered_at = ?, delivery_count = ?,"
		   " lease_expires_at = ?, ttl_seconds = ?, cycle_deliveries = ?, ack_proven = ?,"
		   " queue_seq = CASE WHEN ? THEN created_at - ? ELSE queue_seq END,"
		   " token_hash = CASE WHEN ? = 0 THEN token_hash ELSE ? END"
		   " WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	const struct work_lease *l = &w->lease;
	db_bind_i64(st, 1, l->state);
	db_bind_i64(st, 2, l->acknowledged_at);
	db_bind_i64(st, 3, l->started_at);
	db_bind_i64(st, 4, l->latest_heartbeat_at);
	db_bind_i64(st, 5, l->stop_requested_at);
	db_bind_i64(st, 6, l->stopped_at);
	db_bind_i64(st, 7, l->delivered_at);
	db_bind_i64(st, 8, l->delivery_count);
	db_bind_i64(st, 9, l->lease_expires_at);
	db_bind_i64(st, 10, l->ttl_seconds);
	db_bind_i64(st, 11, l->cycle_deliveries);
	db_bind_i64(st, 12, l->ack_proven);
	db_bind_i64(st, 13, requeue_at_head);
	db_bind_i64(st, 14, HEAD_OFFSET);
	db_bind_i64(st, 15, token);
	db_bind_text(st, 16, token_hash);
	db_bind_text(st, 17, w->id);
	int rc = db_step(st);
	return rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

/* Did the transition only renew the lease (a heartbeat of an active item)? */
static int only_renewed(const struct work_lease *a, const struct work_lease *b)
{
	return a->state == b->state && a->delivered_at == b->delivered_at && a->delivery_count == b->delivery_count &&
	       a->acknowledged_at == b->acknowledged_at && a->started_at == b->started_at &&
	       a->stop_requested_at == b->stop_requested_at && a->stopped_at == b->stopped_at &&
	       a->cycle_deliveries == b->cycle_deliveries && a->ack_proven == b->ack_proven;
}

/* A renewal writes what it changed and nothing else: no indexed column but the lease
 * expiry, so the database can update the row in place (PostgreSQL: a HOT update) and a
 * heartbeat stays one primary-key UPDATE. */
static enum err write_renewal(struct sql_store *s, const struct work_item *w)
{
	struct db_stmt *st = sql_stmt(s, "UPDATE work SET latest_heartbeat_at = ?, lease_expires_at = ?, ttl_seconds = ?"
					  " WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_i64(st, 1, w->lease.latest_heartbeat_at);
	db_bind_i64(st, 2, w->lease.lease_expires_at);
	db_bind_i64(st, 3, w->lease.ttl_seconds);
	db_bind_text(st, 4, w->id);
	return sql_err(s, db_step(st));
}

/* Apply an event with the model and persist the outcome. Returns a store error; the
 * model's refusal, if any, goes to *refusal (so what was persisted before stays). A new
 * delivery stores token_hash; an undone one stores none. */
enum err sql_work_apply(struct sql_store *s, struct work_item *w, enum work_event ev, const struct work_input *in,
			int64_t now, struct work_outcome *o, enum err *refusal, const char *token_hash)
{
	struct work_lease before = w->lease;
	*refusal = work_transition(&w->lease, ev, in, now, o);
	if (*refusal || !o->changed)
		return ERR_OK;
	if (only_renewed(&before, &w->lease))
		return write_renewal(s, w);
	if (o->new_delivery)
		return write_lease(s, w, o->requeue_at_head, TOKEN_SET, token_hash);
	if (o->delivery_undone)
		return write_lease(s, w, o->requeue_at_head, TOKEN_SET, NULL);
	return write_lease(s, w, o->requeue_at_head, TOKEN_KEEP, NULL);
}

/* One item became claimable in env_id. */
static void wake_one(struct work_wake *wake, const char *env_id)
{
	snprintf(wake->environment_id, sizeof(wake->environment_id), "%s", env_id);
	wake->claimable = 1;
	wake->recheck = 0;
}

/* T18/T19 first when the lease of a held item has run out, so that a late heartbeat
 * sees the item as the sweeper would have left it. */
static enum err expire_if_due(struct sql_store *s, struct work_item *w, int64_t now, int *requeued)
{
	if (!w->lease.lease_expires_at || w->lease.lease_expires_at > now)
		return ERR_OK;
	struct work_outcome o;
	enum err refusal;
	enum err rc = sql_work_apply(s, w, WORK_EV_LEASE_EXPIRE, NULL, now, &o, &refusal, NULL);
	if (rc == ERR_OK && !refusal && o.requeue_at_head)
		*requeued = 1;
	return rc;
}

struct work_ctx {
	const struct tenant *t;
	const char *env_id;
	const char *work_id;
	const char *data_type;
	const char *data_id;
	const json_t *json;
	const struct work_claim *claim;
	enum work_event ev;
	const struct work_input *in;
	int64_t now;
	struct work_item *out;
	struct work_event_out *res;
	const char *session_hash;
	struct errbuf *eb;
	int created;
	enum err refusal; /* the state machine's answer, kept apart from store failures */
	struct work_wake *wake;
};

/* Outputs are released when a verb fails, even if its job had filled them before the
 * group's commit failed: callers own an output only on ERR_OK. */
static enum err finish_work(struct work_item *out, enum err rc)
{
	if (rc) {
		work_item_clear(out);
		memset(out, 0, sizeof(*out)); /* zeroed, not only owning nothing (store.h) */
	}
	return rc;
}

static enum err enqueue_job(struct sql_store *s, void *arg)
{
	struct work_ctx *c = arg;
	struct db_stmt *st;
	int rc;
	if (strcmp(c->data_type, "session") == 0) {
		st = sql_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ? AND data_id = ?"
				    " AND data_type = 'session' AND state != 4");
		if (!st)
			return ERR_INTERNAL;
		db_bind_text(st, 1, c->env_id);
		db_bind_text(st, 2, c->data_id);
		rc = db_step(st);
		if (rc == DB_ROW) {
			c->created = 0;
			return sql_work_row(st, c->out);
		}
		if (rc != DB_DONE)
			return sql_err(s, rc);
	}
	int64_t seq;
	enum err qerr = s->queue_seq(s, c->now, &seq);
	if (qerr)
		return qerr;
	struct work_item *w = c->out;
	memset(w, 0, sizeof(*w));
	ids_new_at("work_", c->now, w->id);
	snprintf(w->environment_id, sizeof(w->environment_id), "%s", c->env_id);
	snprintf(w->data_type, sizeof(w->data_type), "%s", c->data_type);
	snprintf(w->data_id, sizeof(w->data_id), "%s", c->data_id);
	w->created_at = c->now;
	w->lease.state = WORK_QUEUED;
	w->metadata = json_deep_copy(c->json);
	char *meta = w->metadata ? json_dumps(w->metadata, JSON_COMPACT) : NULL;
	if (!meta) {
		work_item_clear(w);
		return ERR_NOMEM;
	}
	st = sql_stmt(s, "INSERT INTO work(id, environment_id, data_type, data_id, state, metadata, created_at,"
			    " acknowledged_at, started_at, latest_heartbeat_at, stop_requested_at, stopped_at,"
			    " delivered_at, delivery_count, lease_expires_at, ttl_seconds, queue_seq, token_hash)"
			    " VALUES(?, ?, ?, ?, 0, ?, ?, 0, 0, 0, 0, 0, 0, 0, 0, 0, ?, NULL)");
	enum err err = ERR_INTERNAL;
	if (st) {
		db_bind_text(st, 1, w->id);
		db_bind_text(st, 2, c->env_id);
		db_bind_text(st, 3, c->data_type);
		db_bind_text(st, 4, c->data_id);
		db_bind_text(st, 5, meta);
		db_bind_i64(st, 6, c->now);
		db_bind_i64(st, 7, seq);
		rc = db_step(st);
		err = rc == DB_DONE ? ERR_OK : sql_err(s, rc);
	}
	free(meta);
	if (err) {
		work_item_clear(w);
		return err;
	}
	c->created = 1;
	return ERR_OK;
}

/* The verb: the environment takes new work (FOR SHARE: an archive or a delete waits for
 * this job, or this job sees it), then the item goes in. */
static enum err enqueue_verb_job(struct sql_store *s, void *arg)
{
	struct work_ctx *c = arg;
	work_item_clear(c->out); /* a retried job starts afresh */
	enum err rc = sql_env_require(s, c->t, c->env_id, ENV_FOR_ENQUEUE, ENV_LOCK_SHARE, c->eb);
	if (!rc)
		rc = enqueue_job(s, c);
	/* A fleet's other nodes hear of the new item from the commit itself: their held polls
	 * wake without waiting for this node to publish after the reply. */
	if (!rc && c->created && s->notify)
		rc = s->notify(s, c->env_id, 1, 0);
	return rc;
}

enum err sql_work_enqueue(struct store *base, const struct tenant *t, const char *env_id, const char *data_type,
			     const char *data_id, const json_t *metadata, int64_t now, struct work_item *out,
			     int *created, struct work_wake *wake, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	memset(wake, 0, sizeof(*wake));
	struct work_ctx c = {.t = t, .env_id = env_id, .data_type = data_type, .data_id = data_id, .json = metadata,
			     .now = now, .out = out, .eb = eb};
	enum err rc = sql_run((struct sql_store *)base, enqueue_verb_job, &c);
	*created = rc ? 0 : c.created;
	if (*created) {
		wake_one(wake, env_id);
		wake->published = ((struct sql_store *)base)->notify != NULL;
	}
	return finish_work(out, rc);
}

/* A credential check inside a job: ERR_OK when `sql` (a static string binding two texts)
 * finds a row, ERR_UNAUTHENTICATED when it finds none. */
static enum err credential_current(struct sql_store *s, const char *sql, const char *first, const char *second)
{
	struct db_stmt *st = sql_stmt(s, sql);
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, first);
	db_bind_text(st, 2, second);
	int rc = db_step(st);
	if (rc == DB_ROW)
		return ERR_OK;
	return rc == DB_DONE ? ERR_UNAUTHENTICATED : sql_err(s, rc);
}

/* Is this environment key still one of the environment's? */
static enum err key_current(struct sql_store *s, const char *env_id, const char *hash)
{
	return credential_current(s, "SELECT 1 FROM env_keys WHERE hash = ? AND environment_id = ?", hash, env_id);
}

static enum err claim_job(struct sql_store *s, void *arg)
{
	struct work_ctx *c = arg;
	work_item_clear(c->out); /* a retried job starts afresh */
	/* The key first: a poll held across a revocation or a deletion answers 401. */
	if (c->claim->key_hash[0]) {
		enum err err = key_current(s, c->env_id, c->claim->key_hash);
		if (err)
			return err;
	}
	/* The environment is read, not locked: this verb works on existing items, whose own row
	 * locks order it with a delete (which deletes them) and which an archive leaves running.
	 * A lock on the environment's row would make every claim and heartbeat of an
	 * environment write to that one row. */
	enum err env = sql_env_require(s, c->t, c->env_id, ENV_FOR_WORK, ENV_LOCK_NONE, c->eb);
	if (env)
		return env;
	/* Reclaimable items first (oldest delivery first), then fresh ones in FIFO order. An
	 * item another claim holds locked is skipped, never waited for and handed out twice:
	 * once that claim commits, the item is no longer what this query asks for. */
	struct db_stmt *st = sql_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ? AND state = 0"
					  " AND delivered_at > 0 AND delivered_at <= ? ORDER BY delivered_at, queue_seq LIMIT 1"
					  " FOR UPDATE SKIP LOCKED");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->env_id);
	db_bind_i64(st, 2, c->now - c->claim->reclaim_older_than_us);
	int rc = db_step(st);
	if (rc == DB_DONE) {
		st = sql_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ? AND state = 0"
				    " AND delivered_at = 0 ORDER BY queue_seq LIMIT 1 FOR UPDATE SKIP LOCKED");
		if (!st)
			return ERR_INTERNAL;
		db_bind_text(st, 1, c->env_id);
		rc = db_step(st);
	}
	if (rc == DB_DONE)
		return ERR_NOT_FOUND;
	if (rc != DB_ROW)
		return sql_err(s, rc);
	enum err err = sql_work_row(st, c->out);
	if (err)
		return err;
	struct work_input in = {.reclaim_older_than_us = c->claim->reclaim_older_than_us};
	struct work_outcome o;
	err = sql_work_apply(s, c->out, WORK_EV_POLL, &in, c->now, &o, &c->refusal, c->claim->token_hash);
	if (!err && c->refusal)
		err = ERR_INTERNAL; /* the query and the model disagree: never hand it out */
	if (err)
		work_item_clear(c->out);
	return err;
}

enum err sql_work_claim(struct store *base, const struct tenant *t, const char *env_id,
			   const struct work_claim *claim, int64_t now, struct work_item *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.t = t, .env_id = env_id, .claim = claim, .now = now, .out = out, .eb = eb};
	return finish_work(out, sql_run((struct sql_store *)base, claim_job, &c));
}

/* The item that still carries the delivery's token, locked; the model decides whether the
 * delivery can be undone, and write_lease persists it like any other transition. */
static enum err undeliver_job(struct sql_store *s, void *arg)
{
	struct work_ctx *c = arg;
	struct work_item *w = c->out;
	work_item_clear(w); /* a retried job starts afresh */
	struct db_stmt *st = sql_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE id = ? AND token_hash = ? FOR UPDATE");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->work_id);
	db_bind_text(st, 2, c->data_id);
	int rc = db_step(st);
	if (rc == DB_DONE)
		return ERR_NOT_FOUND; /* redelivered since, or gone */
	if (rc != DB_ROW)
		return sql_err(s, rc);
	enum err err = sql_work_row(st, w);
	db_reset(st);
	if (err)
		return err;
	struct work_outcome o;
	err = sql_work_apply(s, w, WORK_EV_UNDELIVER, NULL, c->now, &o, &c->refusal, NULL);
	if (!err && c->refusal)
		err = ERR_NOT_FOUND; /* acked, stopped or expired since: nothing to undo */
	return err;
}

enum err sql_work_undeliver(struct store *base, const char *work_id, const char *token_hash, int64_t now,
			       struct work_wake *wake)
{
	memset(wake, 0, sizeof(*wake));
	struct work_item w;
	memset(&w, 0, sizeof(w));
	struct work_ctx c = {.work_id = work_id, .data_id = token_hash, .now = now, .out = &w};
	enum err rc = sql_run((struct sql_store *)base, undeliver_job, &c);
	if (rc == ERR_OK)
		wake_one(wake, w.environment_id);
	work_item_clear(&w);
	return rc;
}

static enum err get_job(struct sql_store *s, void *arg)
{
	struct work_ctx *c = arg;
	work_item_clear(c->out); /* a retried job starts afresh */
	enum err rc = sql_env_require(s, c->t, c->env_id, ENV_FOR_WORK, ENV_LOCK_NONE, c->eb);
	return rc ? rc : load_work(s, c->env_id, c->work_id, c->out);
}

enum err sql_work_get(struct store *base, const struct tenant *t, const char *env_id, const char *work_id,
			 struct work_item *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.t = t, .env_id = env_id, .work_id = work_id, .out = out, .eb = eb};
	return finish_work(out, sql_read((struct sql_store *)base, get_job, &c));
}

/* Does the item still carry this session token? Only a redelivery replaces it: the token
 * outlives its item's stop (a stopped item cannot change through it). */
static enum err token_current(struct sql_store *s, const char *work_id, const char *hash)
{
	return credential_current(s, "SELECT 1 FROM work WHERE id = ? AND token_hash = ?", work_id, hash);
}

static enum err event_job(struct sql_store *s, void *arg)
{
	struct work_ctx *c = arg;
	struct work_item *w = c->out;
	work_item_clear(w); /* a retried job starts afresh */
	memset(c->res, 0, sizeof(*c->res));
	c->refusal = ERR_OK;
	/* The environment is read, not locked: this verb works on existing items, whose own row
	 * locks order it with a delete (which deletes them) and which an archive leaves running.
	 * A lock on the environment's row would make every claim and heartbeat of an
	 * environment write to that one row. */
	enum err err = sql_env_require(s, c->t, c->env_id, ENV_FOR_WORK, ENV_LOCK_NONE, c->eb);
	if (err)
		return err;
	/* The row is locked first, so the token compared is the one the event applies to. */
	err = load_work(s, c->env_id, c->work_id, w);
	if (!err && c->session_hash && (err = token_current(s, c->work_id, c->session_hash)))
		work_item_clear(w);
	if (err)
		return err;
	struct work_outcome o;
	if (!(err = expire_if_due(s, w, c->now, &c->res->requeued)))
		err = sql_work_apply(s, w, c->ev, c->in, c->now, &o, &c->refusal, NULL);
	if (!err && !c->refusal && o.changed && w->lease.state == WORK_STOPPED && strcmp(w->data_type, "session") == 0) {
		/* A session that still needs a worker gets a fresh item in this transaction. */
		int again = 0;
		err = sql_session_item_stopped(s, w->environment_id, w->data_id, c->now, &again);
		if (again)
			c->res->requeued = 1;
	}
	if (err) {
		work_item_clear(w);
		return err;
	}
	c->res->state = w->lease.state;
	if (c->ev == WORK_EV_HEARTBEAT) {
		c->res->beat.state = w->lease.state;
		c->res->beat.last_heartbeat = w->lease.latest_heartbeat_at;
		c->res->beat.lease_extended = o.lease_extended;
		c->res->beat.ttl_seconds = o.ttl_seconds;
	}
	return ERR_OK;
}

enum err sql_work_event(struct store *base, const struct tenant *t, const char *env_id, const char *work_id,
			   enum work_event ev, const struct work_input *in, const char *session_hash, int64_t now,
			   struct work_item *out, struct work_event_out *res, struct errbuf *eb)
{
	memset(res, 0, sizeof(*res));
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.t = t, .env_id = env_id, .work_id = work_id, .ev = ev, .in = in, .now = now,
			     .out = out, .res = res, .session_hash = session_hash, .eb = eb};
	enum err rc = sql_run((struct sql_store *)base, event_job, &c);
	if (rc != ERR_OK) {
		finish_work(out, rc); /* also when the group's commit failed after the job ran */
		memset(res, 0, sizeof(*res));
		return rc;
	}
	/* Committed, even when the model refused the event itself: an expired lease's item
	 * went back to the queue on the way (T18). */
	if (res->requeued)
		wake_one(&res->wake, env_id);
	return finish_work(out, c.refusal);
}

static enum err metadata_job(struct sql_store *s, void *arg)
{
	struct work_ctx *c = arg;
	work_item_clear(c->out); /* a retried job starts afresh */
	enum err err = sql_env_require(s, c->t, c->env_id, ENV_FOR_WORK, ENV_LOCK_NONE, c->eb); /* as in claims */
	if (err || (err = load_work(s, c->env_id, c->work_id, c->out)))
		return err;
	if (!c->json)
		return ERR_OK; /* no patch: the item as it is */
	int changed = 0;
	if ((err = metadata_patch(c->out->metadata, c->json, METADATA_DELETE_NULL, &changed, c->eb)))
		goto fail;
	if (!changed)
		return ERR_OK;
	char *meta = json_dumps(c->out->metadata, JSON_COMPACT);
	struct db_stmt *st = sql_stmt(s, "UPDATE work SET metadata = ? WHERE id = ?");
	if (!meta || !st) {
		free(meta);
		err = meta ? ERR_INTERNAL : ERR_NOMEM;
		goto fail;
	}
	db_bind_text(st, 1, meta);
	db_bind_text(st, 2, c->work_id);
	int rc = db_step(st);
	free(meta);
	if (rc == DB_DONE)
		return ERR_OK;
	err = sql_err(s, rc);
fail:
	work_item_clear(c->out);
	return err;
}

enum err sql_work_update_metadata(struct store *base, const struct tenant *t, const char *env_id,
				     const char *work_id, const json_t *patch, struct work_item *out,
				     struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.t = t, .env_id = env_id, .work_id = work_id, .json = patch, .out = out, .eb = eb};
	return finish_work(out, sql_run((struct sql_store *)base, metadata_job, &c));
}

struct page_ctx {
	const struct tenant *t;
	const char *env_id;
	const struct cursor *after;
	size_t limit;
	struct work_page *out;
	struct errbuf *eb;
};

static enum err list_job(struct sql_store *s, void *arg)
{
	struct page_ctx *c = arg;
	enum err env = sql_env_require(s, c->t, c->env_id, ENV_FOR_WORK, ENV_LOCK_NONE, c->eb);
	if (env)
		return env;
	struct db_stmt *st = sql_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ?"
					  " AND (? OR created_at < ? OR (created_at = ? AND id < ?))"
					  " ORDER BY created_at DESC, id DESC LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->env_id);
	sql_bind_after(st, 2, c->after);
	db_bind_i64(st, 6, (int64_t)c->limit + 1);
	size_t cap = 0;
	int rc;
	struct work_page *page = c->out;
	while ((rc = db_step(st)) == DB_ROW) {
		if (page->count == c->limit) {
			page->more = 1;
			break;
		}
		if (page->count == cap && sql_grow((void **)&page->items, &cap, sizeof(*page->items)))
			return ERR_NOMEM;
		enum err err = sql_work_row(st, &page->items[page->count]);
		if (err)
			return err;
		page->count++;
	}
	return rc == DB_ROW || rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

enum err sql_work_list(struct store *base, const struct tenant *t, const char *env_id, const struct cursor *after,
			  size_t limit, struct work_page *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct page_ctx c = {.t = t, .env_id = env_id, .after = after, .limit = limit, .out = out, .eb = eb};
	enum err rc = sql_read((struct sql_store *)base, list_job, &c);
	if (rc)
		work_page_clear(out);
	return rc;
}

struct stats_ctx {
	const struct tenant *t;
	const char *env_id;
	int64_t reclaim_us;
	int64_t at;
	struct work_stats *out;
	struct errbuf *eb;
};

static enum err stats_job(struct sql_store *s, void *arg)
{
	struct stats_ctx *c = arg;
	enum err env = sql_env_require(s, c->t, c->env_id, ENV_FOR_WORK, ENV_LOCK_NONE, c->eb);
	if (env)
		return env;
	struct db_stmt *st = sql_stmt(s, "SELECT COUNT(*) FILTER (WHERE delivered_at = 0), COUNT(*) FILTER (WHERE delivered_at > 0),"
					  " COALESCE(MIN(created_at), 0) FROM work WHERE environment_id = ? AND state = 0");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->env_id);
	int rc = db_step(st);
	if (rc != DB_ROW)
		return sql_err(s, rc);
	c->out->depth = db_col_i64(st, 0);
	c->out->pending = db_col_i64(st, 1);
	c->out->oldest_queued_at = db_col_i64(st, 2);
	return ERR_OK;
}

enum err sql_work_stats(struct store *base, const struct tenant *t, const char *env_id, struct work_stats *out,
			   struct errbuf *eb)
{
	struct stats_ctx c = {.t = t, .env_id = env_id, .out = out, .eb = eb};
	enum err rc = sql_read((struct sql_store *)base, stats_job, &c);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

static enum err next_reclaim_job(struct sql_store *s, void *arg)
{
	struct stats_ctx *c = arg;
	enum err env = sql_env_require(s, c->t, c->env_id, ENV_FOR_WORK, ENV_LOCK_NONE, c->eb);
	if (env)
		return env;
	struct db_stmt *st = sql_stmt(s, "SELECT COALESCE(MIN(delivered_at), 0) FROM work"
					  " WHERE environment_id = ? AND state = 0 AND delivered_at > 0");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->env_id);
	int rc = db_step(st);
	if (rc != DB_ROW)
		return sql_err(s, rc);
	int64_t oldest = db_col_i64(st, 0);
	c->at = oldest ? oldest + c->reclaim_us : 0;
	return ERR_OK;
}

enum err sql_work_next_reclaim(struct store *base, const struct tenant *t, const char *env_id, int64_t reclaim_us,
				  int64_t *at, struct errbuf *eb)
{
	struct stats_ctx c = {.t = t, .env_id = env_id, .reclaim_us = reclaim_us, .eb = eb};
	enum err rc = sql_read((struct sql_store *)base, next_reclaim_job, &c);
	*at = rc ? 0 : c.at;
	return rc;
}

enum err sql_work_session_ensure(struct sql_store *s, const char *env_id, const char *session_id,
				    int64_t now, int *created)
{
	*created = 0;
	/* A session whose environment was deleted gets no item: no key of it is left to poll
	 * one, and the row would outlive its environment. The row lock (FOR SHARE) makes a
	 * delete wait for this job, which then takes the new item along. */
	int exists = 0;
	enum err rc = sql_env_lock_existing(s, env_id, &exists);
	if (rc || !exists)
		return rc;
	struct work_item w;
	json_t *meta = json_object();
	if (!meta)
		return ERR_NOMEM;
	struct work_ctx c = {.env_id = env_id, .data_type = "session", .data_id = session_id, .json = meta,
			     .now = now, .out = &w};
	rc = enqueue_job(s, &c);
	json_decref(meta);
	*created = rc ? 0 : c.created;
	if (!rc)
		work_item_clear(&w);
	return rc;
}

enum err sql_work_session_stop(struct sql_store *s, const char *env_id, const char *session_id, int64_t now)
{
	struct db_stmt *st = sql_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ? AND data_id = ?"
					  " AND data_type = 'session' AND state != 4 FOR UPDATE");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, env_id);
	db_bind_text(st, 2, session_id);
	int rc = db_step(st);
	if (rc == DB_DONE)
		return ERR_OK;
	if (rc != DB_ROW)
		return sql_err(s, rc);
	struct work_item w;
	enum err err = sql_work_row(st, &w);
	db_reset(st);
	if (err)
		return err;
	if (w.lease.state != WORK_STOPPING) {
		struct work_input in = {.force = 0};
		struct work_outcome o;
		enum err refusal;
		err = sql_work_apply(s, &w, WORK_EV_STOP, &in, now, &o, &refusal, NULL);
	}
	work_item_clear(&w);
	return err;
}
