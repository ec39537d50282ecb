/* sqlite_work.c - work items on SQLite: enqueue, claim, events, lists, stats, leases.
 *
 * Queue order: fresh items carry an increasing queue_seq; an item whose lease expired
 * (T18) goes back to the head with queue_seq = created_at - 2^62, so re-queued items come
 * before fresh ones and keep their age order among themselves. */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/metadata.h"

#define WORK_COLUMNS                                                                                  \
	"id, environment_id, data_type, data_id, state, metadata, created_at, acknowledged_at, started_at," \
	" latest_heartbeat_at, stop_requested_at, stopped_at, delivered_at, delivery_count,"               \
	" lease_expires_at, ttl_seconds, cycle_deliveries, ack_proven"
#define HEAD_OFFSET (1LL << 62)

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
static enum err read_work(sqlite3_stmt *st, struct work_item *w)
{
	memset(w, 0, sizeof(*w));
	sqlite_col_text(st, 0, w->id, sizeof(w->id));
	sqlite_col_text(st, 1, w->environment_id, sizeof(w->environment_id));
	sqlite_col_text(st, 2, w->data_type, sizeof(w->data_type));
	sqlite_col_text(st, 3, w->data_id, sizeof(w->data_id));
	struct work_lease *l = &w->lease;
	int state = sqlite3_column_int(st, 4);
	if (!work_state_name((enum work_state)state))
		return corrupt_row(w, "unknown state");
	l->state = (enum work_state)state;
	if (strcmp(w->data_type, "session") != 0 && strcmp(w->data_type, "healthcheck") != 0)
		return corrupt_row(w, "unknown data type");
	const char *meta = (const char *)sqlite3_column_text(st, 5);
	if (!meta)
		return sqlite3_column_type(st, 5) == SQLITE_NULL ? corrupt_row(w, "metadata is null") : ERR_NOMEM;
	json_error_t jerr;
	w->metadata = json_loads(meta, 0, &jerr);
	if (!w->metadata)
		return json_error_code(&jerr) == json_error_out_of_memory ? ERR_NOMEM : corrupt_row(w, "metadata is not JSON");
	if (!json_is_object(w->metadata))
		return corrupt_row(w, "metadata is not an object");
	w->created_at = sqlite3_column_int64(st, 6);
	l->acknowledged_at = sqlite3_column_int64(st, 7);
	l->started_at = sqlite3_column_int64(st, 8);
	l->latest_heartbeat_at = sqlite3_column_int64(st, 9);
	l->stop_requested_at = sqlite3_column_int64(st, 10);
	l->stopped_at = sqlite3_column_int64(st, 11);
	l->delivered_at = sqlite3_column_int64(st, 12);
	l->delivery_count = sqlite3_column_int(st, 13);
	l->lease_expires_at = sqlite3_column_int64(st, 14);
	l->ttl_seconds = sqlite3_column_int(st, 15);
	l->cycle_deliveries = sqlite3_column_int(st, 16);
	l->ack_proven = sqlite3_column_int(st, 17) != 0;
	return ERR_OK;
}

/* Load one item of env inside a job; ERR_NOT_FOUND when absent or under another env. */
static enum err load_work(struct sqlite_store *s, const char *env_id, const char *work_id, struct work_item *out)
{
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE id = ? AND environment_id = ?");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, work_id);
	sqlite_bind_text(st, 2, env_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return ERR_NOT_FOUND;
	if (rc != SQLITE_ROW)
		return sqlite_err(s, rc);
	return read_work(st, out);
}

/* Persist the lease fields the model decided, plus the queue position and the token. */
static enum err write_lease(struct sqlite_store *s, const struct work_item *w, int requeue_at_head,
			    enum token_update token, const char *token_hash)
{
	sqlite3_stmt *st = sqlite_stmt(
		s, "UPDATE work SET state = ?, acknowledged_at = ?, started_at = ?, latest_heartbeat_at = ?,"
		   " stop_requested_at = ?, stopped_at = ?, delivered_at = ?, delivery_count = ?,"
		   " lease_expires_at = ?, ttl_seconds = ?, cycle_deliveries = ?, ack_proven = ?,"
		   " queue_seq = CASE WHEN ? THEN created_at - ? ELSE queue_seq END,"
		   " token_hash = CASE ? WHEN 0 THEN token_hash ELSE ? END"
		   " WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	const struct work_lease *l = &w->lease;
	sqlite_bind_i64(st, 1, l->state);
	sqlite_bind_i64(st, 2, l->acknowledged_at);
	sqlite_bind_i64(st, 3, l->started_at);
	sqlite_bind_i64(st, 4, l->latest_heartbeat_at);
	sqlite_bind_i64(st, 5, l->stop_requested_at);
	sqlite_bind_i64(st, 6, l->stopped_at);
	sqlite_bind_i64(st, 7, l->delivered_at);
	sqlite_bind_i64(st, 8, l->delivery_count);
	sqlite_bind_i64(st, 9, l->lease_expires_at);
	sqlite_bind_i64(st, 10, l->ttl_seconds);
	sqlite_bind_i64(st, 11, l->cycle_deliveries);
	sqlite_bind_i64(st, 12, l->ack_proven);
	sqlite_bind_i64(st, 13, requeue_at_head);
	sqlite_bind_i64(st, 14, HEAD_OFFSET);
	sqlite_bind_i64(st, 15, token);
	sqlite_bind_text(st, 16, token_hash);
	sqlite_bind_text(st, 17, w->id);
	int rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? ERR_OK : sqlite_err(s, rc);
}

/* Apply an event with the model and persist the outcome. Returns a store error; the
 * model's refusal, if any, goes to *refusal (so what was persisted before stays). */
static enum err apply(struct sqlite_store *s, struct work_item *w, enum work_event ev, const struct work_input *in,
		      int64_t now, struct work_outcome *o, enum err *refusal, const char *token_hash)
{
	*refusal = work_transition(&w->lease, ev, in, now, o);
	if (*refusal || !o->changed)
		return ERR_OK;
	enum token_update token = o->new_delivery ? TOKEN_SET : TOKEN_KEEP;
	return write_lease(s, w, o->requeue_at_head, token, token_hash);
}

/* T18/T19 first when the lease of a held item has run out, so that a late heartbeat
 * sees the item as the sweeper would have left it. */
static enum err expire_if_due(struct sqlite_store *s, struct work_item *w, int64_t now, int *requeued)
{
	if (!w->lease.lease_expires_at || w->lease.lease_expires_at > now)
		return ERR_OK;
	struct work_outcome o;
	enum err refusal;
	enum err rc = apply(s, w, WORK_EV_LEASE_EXPIRE, NULL, now, &o, &refusal, NULL);
	if (rc == ERR_OK && !refusal && o.requeue_at_head)
		*requeued = 1;
	return rc;
}

struct work_ctx {
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
};

/* Outputs are released when a verb fails, even if its job had filled them before the
 * group's commit failed: callers own an output only on ERR_OK. */
static enum err finish_work(struct work_item *out, enum err rc)
{
	if (rc)
		work_item_clear(out);
	return rc;
}

static enum err enqueue_job(struct sqlite_store *s, void *arg)
{
	struct work_ctx *c = arg;
	sqlite3_stmt *st;
	int rc;
	if (strcmp(c->data_type, "session") == 0) {
		st = sqlite_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ? AND data_id = ?"
				    " AND data_type = 'session' AND state != 4");
		if (!st)
			return ERR_INTERNAL;
		sqlite_bind_text(st, 1, c->env_id);
		sqlite_bind_text(st, 2, c->data_id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			c->created = 0;
			return read_work(st, c->out);
		}
		if (rc != SQLITE_DONE)
			return sqlite_err(s, rc);
	}
	if (!s->last_queue_seq) {
		if (!(st = sqlite_stmt(s, "SELECT IFNULL(MAX(queue_seq), 0) FROM work")))
			return ERR_INTERNAL;
		if (sqlite3_step(st) == SQLITE_ROW)
			s->last_queue_seq = sqlite3_column_int64(st, 0);
	}
	int64_t seq = c->now > s->last_queue_seq ? c->now : s->last_queue_seq + 1;
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
	st = sqlite_stmt(s, "INSERT INTO work(id, environment_id, data_type, data_id, state, metadata, created_at,"
			    " acknowledged_at, started_at, latest_heartbeat_at, stop_requested_at, stopped_at,"
			    " delivered_at, delivery_count, lease_expires_at, ttl_seconds, queue_seq, token_hash)"
			    " VALUES(?, ?, ?, ?, 0, ?, ?, 0, 0, 0, 0, 0, 0, 0, 0, 0, ?, NULL)");
	enum err err = ERR_INTERNAL;
	if (st) {
		sqlite_bind_text(st, 1, w->id);
		sqlite_bind_text(st, 2, c->env_id);
		sqlite_bind_text(st, 3, c->data_type);
		sqlite_bind_text(st, 4, c->data_id);
		sqlite_bind_text(st, 5, meta);
		sqlite_bind_i64(st, 6, c->now);
		sqlite_bind_i64(st, 7, seq);
		rc = sqlite3_step(st);
		err = rc == SQLITE_DONE ? ERR_OK : sqlite_err(s, rc);
	}
	free(meta);
	if (err) {
		work_item_clear(w);
		return err;
	}
	s->last_queue_seq = seq;
	c->created = 1;
	return ERR_OK;
}

enum err sqlite_work_enqueue(struct store *base, const char *env_id, const char *data_type, const char *data_id,
			     const json_t *metadata, int64_t now, struct work_item *out, int *created)
{
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.env_id = env_id, .data_type = data_type, .data_id = data_id, .json = metadata,
			     .now = now, .out = out};
	enum err rc = sqlite_run((struct sqlite_store *)base, enqueue_job, &c);
	*created = rc ? 0 : c.created;
	return finish_work(out, rc);
}

/* A credential check inside a job: ERR_OK when `sql` (a static string binding two texts)
 * finds a row, ERR_UNAUTHENTICATED when it finds none. */
static enum err credential_current(struct sqlite_store *s, const char *sql, const char *first, const char *second)
{
	sqlite3_stmt *st = sqlite_stmt(s, sql);
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, first);
	sqlite_bind_text(st, 2, second);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return ERR_OK;
	return rc == SQLITE_DONE ? ERR_UNAUTHENTICATED : sqlite_err(s, rc);
}

/* Is this environment key still one of the environment's? */
static enum err key_current(struct sqlite_store *s, const char *env_id, const char *hash)
{
	return credential_current(s, "SELECT 1 FROM env_keys WHERE hash = ? AND environment_id = ?", hash, env_id);
}

static enum err claim_job(struct sqlite_store *s, void *arg)
{
	struct work_ctx *c = arg;
	if (c->claim->key_hash[0]) {
		enum err err = key_current(s, c->env_id, c->claim->key_hash);
		if (err)
			return err;
	}
	/* Reclaimable items first (oldest delivery first), then fresh ones in FIFO order. */
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ? AND state = 0"
					  " AND delivered_at > 0 AND delivered_at <= ? ORDER BY delivered_at, queue_seq LIMIT 1");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, c->env_id);
	sqlite_bind_i64(st, 2, c->now - c->claim->reclaim_older_than_us);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		st = sqlite_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ? AND state = 0"
				    " AND delivered_at = 0 ORDER BY queue_seq LIMIT 1");
		if (!st)
			return ERR_INTERNAL;
		sqlite_bind_text(st, 1, c->env_id);
		rc = sqlite3_step(st);
	}
	if (rc == SQLITE_DONE)
		return ERR_NOT_FOUND;
	if (rc != SQLITE_ROW)
		return sqlite_err(s, rc);
	enum err err = read_work(st, c->out);
	if (err)
		return err;
	struct work_input in = {.reclaim_older_than_us = c->claim->reclaim_older_than_us};
	struct work_outcome o;
	err = apply(s, c->out, WORK_EV_POLL, &in, c->now, &o, &c->refusal, c->claim->token_hash);
	if (!err && c->refusal)
		err = ERR_INTERNAL; /* the query and the model disagree: never hand it out */
	if (err)
		work_item_clear(c->out);
	return err;
}

enum err sqlite_work_claim(struct store *base, const char *env_id, const struct work_claim *claim, int64_t now,
			   struct work_item *out)
{
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.env_id = env_id, .claim = claim, .now = now, .out = out};
	return finish_work(out, sqlite_run((struct sqlite_store *)base, claim_job, &c));
}

static enum err undeliver_job(struct sqlite_store *s, void *arg)
{
	struct work_ctx *c = arg;
	sqlite3_stmt *st = sqlite_stmt(s, "UPDATE work SET delivered_at = 0, token_hash = NULL"
					  " WHERE id = ? AND token_hash = ? AND state = 0");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, c->work_id);
	sqlite_bind_text(st, 2, c->data_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return sqlite_err(s, rc);
	return sqlite3_changes(sqlite_db(s)) ? ERR_OK : ERR_NOT_FOUND;
}

enum err sqlite_work_undeliver(struct store *base, const char *work_id, const char *token_hash)
{
	struct work_ctx c = {.work_id = work_id, .data_id = token_hash};
	return sqlite_run((struct sqlite_store *)base, undeliver_job, &c);
}

static enum err get_job(struct sqlite_store *s, void *arg)
{
	struct work_ctx *c = arg;
	return load_work(s, c->env_id, c->work_id, c->out);
}

enum err sqlite_work_get(struct store *base, const char *env_id, const char *work_id, struct work_item *out)
{
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.env_id = env_id, .work_id = work_id, .out = out};
	return finish_work(out, sqlite_read((struct sqlite_store *)base, get_job, &c));
}

/* Does the item still carry this session token? Only a redelivery replaces it: the token
 * outlives its item's stop (a stopped item cannot change through it). */
static enum err token_current(struct sqlite_store *s, const char *work_id, const char *hash)
{
	return credential_current(s, "SELECT 1 FROM work WHERE id = ? AND token_hash = ?", work_id, hash);
}

static enum err event_job(struct sqlite_store *s, void *arg)
{
	struct work_ctx *c = arg;
	struct work_item *w = c->out;
	enum err err = c->session_hash ? token_current(s, c->work_id, c->session_hash) : ERR_OK;
	if (err || (err = load_work(s, c->env_id, c->work_id, w)))
		return err;
	struct work_outcome o;
	if (!(err = expire_if_due(s, w, c->now, &c->res->requeued)))
		err = apply(s, w, c->ev, c->in, c->now, &o, &c->refusal, NULL);
	if (!err && !c->refusal && o.changed && w->lease.state == WORK_STOPPED && strcmp(w->data_type, "session") == 0) {
		/* A session that still needs a worker gets a fresh item in this transaction. */
		int again = 0;
		err = sqlite_session_item_stopped(s, w->environment_id, w->data_id, c->now, &again);
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

enum err sqlite_work_event(struct store *base, const char *env_id, const char *work_id, enum work_event ev,
			   const struct work_input *in, const char *session_hash, int64_t now, struct work_item *out,
			   struct work_event_out *res)
{
	memset(res, 0, sizeof(*res));
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.env_id = env_id, .work_id = work_id, .ev = ev, .in = in, .now = now, .out = out,
			     .res = res, .session_hash = session_hash};
	enum err rc = sqlite_run((struct sqlite_store *)base, event_job, &c);
	if (rc != ERR_OK || c.refusal) {
		work_item_clear(out); /* also when the group's commit failed after the job ran */
		if (rc != ERR_OK)
			res->requeued = 0;
		return rc != ERR_OK ? rc : c.refusal;
	}
	return rc;
}

static enum err metadata_job(struct sqlite_store *s, void *arg)
{
	struct work_ctx *c = arg;
	enum err err = load_work(s, c->env_id, c->work_id, c->out);
	if (err)
		return err;
	int changed = 0;
	if ((err = metadata_patch(c->out->metadata, c->json, METADATA_DELETE_NULL, &changed, c->eb)))
		goto fail;
	if (!changed)
		return ERR_OK;
	char *meta = json_dumps(c->out->metadata, JSON_COMPACT);
	sqlite3_stmt *st = sqlite_stmt(s, "UPDATE work SET metadata = ? WHERE id = ?");
	if (!meta || !st) {
		free(meta);
		err = meta ? ERR_INTERNAL : ERR_NOMEM;
		goto fail;
	}
	sqlite_bind_text(st, 1, meta);
	sqlite_bind_text(st, 2, c->work_id);
	int rc = sqlite3_step(st);
	free(meta);
	if (rc == SQLITE_DONE)
		return ERR_OK;
	err = sqlite_err(s, rc);
fail:
	work_item_clear(c->out);
	return err;
}

enum err sqlite_work_update_metadata(struct store *base, const char *env_id, const char *work_id,
				     const json_t *patch, struct work_item *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct work_ctx c = {.env_id = env_id, .work_id = work_id, .json = patch, .out = out, .eb = eb};
	return finish_work(out, sqlite_run((struct sqlite_store *)base, metadata_job, &c));
}

struct page_ctx {
	const char *env_id;
	const struct cursor *after;
	size_t limit;
	struct work_page *out;
};

static enum err list_job(struct sqlite_store *s, void *arg)
{
	struct page_ctx *c = arg;
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ?"
					  " AND (? OR created_at < ? OR (created_at = ? AND id < ?))"
					  " ORDER BY created_at DESC, id DESC LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, c->env_id);
	sqlite_bind_after(st, 2, c->after);
	sqlite_bind_i64(st, 6, (int64_t)c->limit + 1);
	size_t cap = 0;
	int rc;
	struct work_page *page = c->out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (page->count == c->limit) {
			page->more = 1;
			break;
		}
		if (page->count == cap && sqlite_grow((void **)&page->items, &cap, sizeof(*page->items)))
			return ERR_NOMEM;
		enum err err = read_work(st, &page->items[page->count]);
		if (err)
			return err;
		page->count++;
	}
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ERR_OK : sqlite_err(s, rc);
}

enum err sqlite_work_list(struct store *base, const char *env_id, const struct cursor *after, size_t limit,
			  struct work_page *out)
{
	memset(out, 0, sizeof(*out));
	struct page_ctx c = {env_id, after, limit, out};
	enum err rc = sqlite_read((struct sqlite_store *)base, list_job, &c);
	if (rc)
		work_page_clear(out);
	return rc;
}

struct stats_ctx {
	const char *env_id;
	int64_t reclaim_us;
	int64_t at;
	struct work_stats *out;
};

static enum err stats_job(struct sqlite_store *s, void *arg)
{
	struct stats_ctx *c = arg;
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT IFNULL(SUM(delivered_at = 0), 0), IFNULL(SUM(delivered_at > 0), 0),"
					  " IFNULL(MIN(created_at), 0) FROM work WHERE environment_id = ? AND state = 0");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, c->env_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return sqlite_err(s, rc);
	c->out->depth = sqlite3_column_int64(st, 0);
	c->out->pending = sqlite3_column_int64(st, 1);
	c->out->oldest_queued_at = sqlite3_column_int64(st, 2);
	return ERR_OK;
}

enum err sqlite_work_stats(struct store *base, const char *env_id, struct work_stats *out)
{
	struct stats_ctx c = {.env_id = env_id, .out = out};
	enum err rc = sqlite_read((struct sqlite_store *)base, stats_job, &c);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

static enum err next_reclaim_job(struct sqlite_store *s, void *arg)
{
	struct stats_ctx *c = arg;
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT IFNULL(MIN(delivered_at), 0) FROM work"
					  " WHERE environment_id = ? AND state = 0 AND delivered_at > 0");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, c->env_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return sqlite_err(s, rc);
	int64_t oldest = sqlite3_column_int64(st, 0);
	c->at = oldest ? oldest + c->reclaim_us : 0;
	return ERR_OK;
}

enum err sqlite_work_next_reclaim(struct store *base, const char *env_id, int64_t reclaim_us, int64_t *at)
{
	struct stats_ctx c = {.env_id = env_id, .reclaim_us = reclaim_us};
	enum err rc = sqlite_read((struct sqlite_store *)base, next_reclaim_job, &c);
	*at = rc ? 0 : c.at;
	return rc;
}

struct expire_ctx {
	int64_t now;
	size_t max;
	char (*env_ids)[ID_MAX];
	size_t n_envs;
	size_t n_expired;
};

static enum err expire_job(struct sqlite_store *s, void *arg)
{
	struct expire_ctx *c = arg;
	c->n_envs = c->n_expired = 0;
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE lease_expires_at > 0"
					  " AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_i64(st, 1, c->now);
	sqlite_bind_i64(st, 2, (int64_t)c->max);
	/* Read the batch first: updating rows while stepping the same query is not safe. */
	struct work_item *batch = calloc(c->max ? c->max : 1, sizeof(*batch));
	if (!batch)
		return ERR_NOMEM;
	size_t n = 0;
	int rc;
	enum err err = ERR_OK;
	while (n < c->max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = read_work(st, &batch[n]);
		if (err == ERR_INTERNAL) {
			/* A corrupt row (logged) must not keep every other lease from expiring. */
			err = ERR_OK;
			continue;
		}
		if (err)
			break;
		n++;
	}
	sqlite3_reset(st);
	for (size_t i = 0; i < n && !err; i++) {
		struct work_outcome o;
		enum err refusal;
		err = apply(s, &batch[i], WORK_EV_LEASE_EXPIRE, NULL, c->now, &o, &refusal, NULL);
		if (err || refusal)
			continue;
		c->n_expired++;
		if (!o.requeue_at_head && batch[i].lease.state == WORK_STOPPED &&
		    strcmp(batch[i].data_type, "session") == 0) {
			int again = 0;
			err = sqlite_session_item_stopped(s, batch[i].environment_id, batch[i].data_id, c->now, &again);
			if (err || !again)
				continue;
		} else if (!o.requeue_at_head) {
			continue;
		}
		size_t j = 0;
		while (j < c->n_envs && strcmp(c->env_ids[j], batch[i].environment_id) != 0)
			j++;
		if (j == c->n_envs)
			snprintf(c->env_ids[c->n_envs++], ID_MAX, "%s", batch[i].environment_id);
	}
	for (size_t i = 0; i < n; i++)
		work_item_clear(&batch[i]);
	free(batch);
	return err;
}

enum err sqlite_leases_expire(struct store *base, int64_t now, size_t max, char (*env_ids)[ID_MAX],
			      size_t *n_envs, size_t *n_expired)
{
	struct expire_ctx c = {.now = now, .max = max, .env_ids = env_ids};
	enum err rc = sqlite_run((struct sqlite_store *)base, expire_job, &c);
	*n_envs = rc ? 0 : c.n_envs;
	*n_expired = rc ? 0 : c.n_expired;
	return rc;
}

static enum err next_expiry_job(struct sqlite_store *s, void *arg)
{
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT IFNULL(MIN(lease_expires_at), 0) FROM work WHERE lease_expires_at > 0");
	if (!st)
		return ERR_INTERNAL;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return sqlite_err(s, rc);
	*(int64_t *)arg = sqlite3_column_int64(st, 0);
	return ERR_OK;
}

enum err sqlite_next_lease_expiry(struct store *base, int64_t *at)
{
	enum err rc = sqlite_read((struct sqlite_store *)base, next_expiry_job, at);
	if (rc)
		*at = 0;
	return rc;
}

enum err sqlite_work_session_ensure(struct sqlite_store *s, const char *env_id, const char *session_id,
				    int64_t now, int *created)
{
	struct work_item w;
	json_t *meta = json_object();
	if (!meta)
		return ERR_NOMEM;
	struct work_ctx c = {.env_id = env_id, .data_type = "session", .data_id = session_id, .json = meta,
			     .now = now, .out = &w};
	enum err rc = enqueue_job(s, &c);
	json_decref(meta);
	*created = rc ? 0 : c.created;
	if (!rc)
		work_item_clear(&w);
	return rc;
}

enum err sqlite_work_session_stop(struct sqlite_store *s, const char *env_id, const char *session_id, int64_t now)
{
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE environment_id = ? AND data_id = ?"
					  " AND data_type = 'session' AND state != 4");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, env_id);
	sqlite_bind_text(st, 2, session_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return ERR_OK;
	if (rc != SQLITE_ROW)
		return sqlite_err(s, rc);
	struct work_item w;
	enum err err = read_work(st, &w);
	sqlite3_reset(st);
	if (err)
		return err;
	if (w.lease.state != WORK_STOPPING) {
		struct work_input in = {.force = 0};
		struct work_outcome o;
		enum err refusal;
		err = apply(s, &w, WORK_EV_STOP, &in, now, &o, &refusal, NULL);
	}
	work_item_clear(&w);
	return err;
}
