/* sql_session.c - sessions and their events on SQLite (agent turns: sql_turn.c).
 *
 * A session row carries its state (model/session.h) in columns: status, awaiting_turn,
 * turn_id and turn_expires_at, and the unanswered tool uses (`pending`) and the ids its
 * last requires_action idle listed (`required`) as JSON. Events are rows of their own,
 * numbered per session (`seq`); the stored body is the event exactly as the API shows
 * it. Every verb is one transaction that loads the state, asks model/session.c, and
 * persists the events, the new state and the work item the session needs. */
#include "store/sql_session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/agent.h"
#include "model/metadata.h"

#define SESSION_COLUMNS                                                                                   \
	"id, environment_id, agent, metadata, title, status, awaiting_turn, turn_id, turn_expires_at, pending," \
	" required, archived_at, created_at, updated_at, org, last_seq, deleted_at"

static enum err read_session(struct db_stmt *st, struct session_rec *r, struct session_row *x)
{
	memset(r, 0, sizeof(*r));
	db_col_copy(st, 0, r->id, sizeof(r->id));
	db_col_copy(st, 1, r->environment_id, sizeof(r->environment_id));
	r->agent = json_loads(db_col_text(st, 2), 0, NULL);
	r->metadata = json_loads(db_col_text(st, 3), 0, NULL);
	r->title = json_loads(db_col_text(st, 4), JSON_DECODE_ANY, NULL);
	/* Read whole: a stored 2^32 must not pass as 0 (idle) through a narrowing. */
	int64_t status = db_col_i64(st, 5);
	int status_known = db_col_type(st, 5) == DB_INT && status >= SESSION_IDLE && status <= SESSION_TERMINATED;
	r->state.status = status_known ? (enum session_status)status : SESSION_IDLE;
	r->state.awaiting_turn = db_col_int(st, 6);
	db_col_copy(st, 7, r->state.turn_id, sizeof(r->state.turn_id));
	r->state.turn_expires_at = db_col_i64(st, 8);
	r->state.pending = json_loads(db_col_text(st, 9), 0, NULL);
	r->state.required = json_loads(db_col_text(st, 10), 0, NULL);
	r->archived_at = db_col_i64(st, 11);
	r->created_at = db_col_i64(st, 12);
	r->updated_at = db_col_i64(st, 13);
	if (x) {
		db_col_copy(st, 14, x->org, sizeof(x->org));
		x->last_seq = db_col_i64(st, 15);
		x->deleted_at = db_col_i64(st, 16);
	}
	if (!r->agent || !r->metadata || !r->title || !r->state.pending || !r->state.required ||
	    !status_known) {
		if (!status_known)
			log_event(LOG_ERROR, "session_row_invalid", "session_id", r->id, "reason", "unknown status", NULL);
		session_rec_clear(r);
		return ERR_INTERNAL; /* a stored value we cannot read back is an error, never a guess */
	}
	return ERR_OK;
}

/* Load a session visible in scope (deleted ones are gone). */
enum err sql_session_load(struct sql_store *s, const struct session_scope *sc, const char *id,
			     struct session_rec *out, struct session_row *x)
{
	struct db_stmt *st = sql_stmt(s, "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ? AND deleted_at = 0"
					  " AND org = ? AND (? = '' OR workspace = ?) AND (? = '' OR environment_id = ?)");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, sc->org);
	db_bind_text(st, 3, sc->workspace);
	db_bind_text(st, 4, sc->workspace);
	db_bind_text(st, 5, sc->environment_id);
	db_bind_text(st, 6, sc->environment_id);
	int rc = db_step(st);
	if (rc == DB_DONE)
		return ERR_NOT_FOUND;
	if (rc != DB_ROW)
		return sql_err(s, rc);
	return read_session(st, out, x);
}

/* Persist the state columns (and updated_at). */
static enum err write_state(struct sql_store *s, const char *id, const struct session_state *st_, int64_t now,
			    int64_t last_seq, int became_awaiting)
{
	char *pending = json_dumps(st_->pending, JSON_COMPACT);
	char *required = json_dumps(st_->required, JSON_COMPACT);
	struct db_stmt *st = sql_stmt(
		s, "UPDATE sessions SET status = ?, awaiting_turn = ?, turn_id = ?, turn_expires_at = ?, pending = ?,"
		   " required = ?, last_seq = ?, updated_at = ?,"
		   " awaiting_since = CASE WHEN ? THEN ? ELSE awaiting_since END WHERE id = ?");
	enum err rc = ERR_INTERNAL;
	if (pending && required && st) {
		db_bind_i64(st, 1, st_->status);
		db_bind_i64(st, 2, st_->awaiting_turn);
		db_bind_text(st, 3, st_->turn_id);
		db_bind_i64(st, 4, st_->turn_expires_at);
		db_bind_text(st, 5, pending);
		db_bind_text(st, 6, required);
		db_bind_i64(st, 7, last_seq);
		db_bind_i64(st, 8, now);
		db_bind_i64(st, 9, became_awaiting);
		db_bind_i64(st, 10, now);
		db_bind_text(st, 11, id);
		int src = db_step(st);
		rc = src == DB_DONE ? ERR_OK : sql_err(s, src);
	} else if (!pending || !required) {
		rc = ERR_NOMEM;
	}
	free(pending);
	free(required);
	return rc;
}

/* Append events (an array of stored-shape objects) after seq *last_seq. */
static enum err append_events(struct sql_store *s, const char *session_id, const json_t *events,
			      int64_t *last_seq)
{
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev)
	{
		char *body = json_dumps(ev, JSON_COMPACT);
		struct db_stmt *st = sql_stmt(s, "INSERT INTO session_events(session_id, seq, id, type, tool_use_id, body)"
						  " VALUES(?, ?, ?, ?, ?, ?)");
		if (!body || !st) {
			free(body);
			return body ? ERR_INTERNAL : ERR_NOMEM;
		}
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *answered = json_string_value(json_object_get(ev, "tool_use_id"));
		if (!answered)
			answered = json_string_value(json_object_get(ev, "custom_tool_use_id"));
		db_bind_text(st, 1, session_id);
		db_bind_i64(st, 2, *last_seq + 1);
		db_bind_text(st, 3, json_string_value(json_object_get(ev, "id")));
		db_bind_text(st, 4, type);
		/* Results are indexed by the tool use they answer, to recognise duplicates. */
		db_bind_text(st, 5, type && strstr(type, "_result") ? answered : NULL);
		db_bind_text(st, 6, body);
		int rc = db_step(st);
		free(body);
		if (rc != DB_DONE)
			return sql_err(s, rc);
		(*last_seq)++;
	}
	return ERR_OK;
}

/* Make the work queue follow the session: a live item while it needs a worker. */
static enum err follow_work(struct sql_store *s, const struct session_rec *r, const struct session_state *next,
			   int64_t now, struct session_wake *wake)
{
	if (r->archived_at || !session_needs_worker(next))
		return ERR_OK;
	int created = 0;
	enum err rc = sql_work_session_ensure(s, r->environment_id, r->id, now, &created);
	if (!rc && created) {
		wake->work_enqueued = 1;
		snprintf(wake->environment_id, sizeof(wake->environment_id), "%s", r->environment_id);
	}
	return rc;
}

/* Fresh event ids for a batch of n events (each event that is stored takes the next
 * one); the caller frees. NULL when out of memory. */
char (*sql_session_new_ids(size_t n, int64_t now))[ID_MAX]
{
	char(*ids)[ID_MAX] = calloc(n ? n : 1, ID_MAX);
	for (size_t i = 0; ids && i < n; i++)
		ids_new_at("sevt_", now, ids[i]);
	return ids;
}

/* Tool results not pending: was the tool use recorded in this session at all? */
struct known_ctx {
	struct sql_store *s;
	const char *session_id;
};

static int tool_use_known(void *arg, const char *tool_use_id, int custom)
{
	struct known_ctx *k = arg;
	struct db_stmt *st = sql_stmt(k->s, "SELECT 1 FROM session_events WHERE session_id = ? AND id = ? AND type = ?");
	if (!st)
		return 0;
	db_bind_text(st, 1, k->session_id);
	db_bind_text(st, 2, tool_use_id);
	db_bind_text(st, 3, custom ? "agent.custom_tool_use" : "agent.tool_use");
	int found = db_step(st) == DB_ROW;
	db_reset(st);
	return found;
}


/* The agent snapshot a session carries: the configuration minus metadata, plus id, type
 * and version (BetaManagedAgentsSessionAgent). */
static json_t *snapshot(const struct agent_rec *a)
{
	json_t *snap = json_deep_copy(a->config);
	if (!snap)
		return NULL;
	json_object_del(snap, "metadata");
	json_object_set_new(snap, "id", json_string(a->id));
	json_object_set_new(snap, "type", json_string("agent"));
	json_object_set_new(snap, "version", json_integer(a->version));
	return snap;
}

static enum err create_job(struct sql_store *s, void *arg)
{
	struct sess_ctx c_ = *(struct sess_ctx *)arg, *c = &c_;
	struct session_rec *r = c->out;
	memset(r, 0, sizeof(*r));
	/* The environment takes a new session now, in this transaction (FOR SHARE: an archive
	 * or a delete of it waits for this job, or this job sees it). */
	enum err rc = sql_env_require(s, c->t, c->n->environment_id, ENV_FOR_SESSION, ENV_LOCK_SHARE, c->eb);
	if (rc)
		return rc;
	struct agent_rec a;
	rc = sql_agent_load(s, c->t->org, c->t->workspace, c->n->agent_id, c->n->agent_version, &a);
	if (rc == ERR_NOT_FOUND)
		return c->n->agent_version
			       ? errf(c->eb, ERR_INVALID, "agent: agent %.64s has no version %lld", c->n->agent_id,
				      (long long)c->n->agent_version)
			       : errf(c->eb, ERR_INVALID, "agent: agent %.64s not found", c->n->agent_id);
	if (rc)
		return rc;
	if (a.archived_at) {
		agent_rec_clear(&a);
		return errf(c->eb, ERR_INVALID, "agent: agent %.64s is archived", c->n->agent_id);
	}
	ids_new_at("sesn_", c->now, r->id);
	snprintf(r->environment_id, sizeof(r->environment_id), "%s", c->n->environment_id);
	r->agent = snapshot(&a);
	char model_id[AGENT_MODEL_MAX + 1];
	snprintf(model_id, sizeof(model_id), "%s", agent_model_id(a.config));
	agent_rec_clear(&a);
	r->metadata = c->n->metadata ? json_deep_copy(c->n->metadata) : json_object();
	r->title = c->n->title ? json_deep_copy(c->n->title) : json_null();
	r->created_at = r->updated_at = c->now;
	struct session_state fresh;
	if (!r->agent || !r->metadata || !r->title || session_state_init(&fresh)) {
		session_rec_clear(r);
		return ERR_NOMEM;
	}
	json_t *empty = json_array();
	const json_t *initial = c->n->initial_events ? c->n->initial_events : empty;
	char(*ids)[ID_MAX] = sql_session_new_ids(json_array_size(initial), c->now);
	json_t *stored = NULL;
	if (!ids || !empty) {
		rc = ERR_NOMEM;
	} else {
		rc = session_client_events(&fresh, initial, (const char(*)[ID_MAX])ids, c->now, 1, NULL, NULL,
					   &r->state, &stored, c->eb);
	}
	free(ids);
	json_decref(empty);
	session_state_clear(&fresh);
	if (rc) {
		session_rec_clear(r);
		return rc;
	}
	char *agent = json_dumps(r->agent, JSON_COMPACT);
	char *meta = json_dumps(r->metadata, JSON_COMPACT);
	char *title = json_dumps(r->title, JSON_ENCODE_ANY);
	struct db_stmt *st = sql_stmt(
		s, "INSERT INTO sessions(id, org, workspace, account, environment_id, agent_id, agent, model_id, title,"
		   " metadata, status, awaiting_turn, awaiting_since, turn_id, turn_expires_at, pending, required,"
		   " last_seq, archived_at, deleted_at, created_at, updated_at)"
		   " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, '', 0, '{}', '[]', 0, 0, 0, ?, ?)");
	if (!agent || !meta || !title || !st) {
		rc = st ? ERR_NOMEM : ERR_INTERNAL;
	} else {
		db_bind_text(st, 1, r->id);
		db_bind_text(st, 2, c->t->org);
		db_bind_text(st, 3, c->t->workspace);
		db_bind_text(st, 4, c->t->account);
		db_bind_text(st, 5, r->environment_id);
		db_bind_text(st, 6, c->n->agent_id);
		db_bind_text(st, 7, agent);
		db_bind_text(st, 8, model_id);
		db_bind_text(st, 9, title);
		db_bind_text(st, 10, meta);
		db_bind_i64(st, 11, c->now);
		db_bind_i64(st, 12, c->now);
		int src = db_step(st);
		rc = src == DB_DONE ? ERR_OK : sql_err(s, src);
	}
	free(agent);
	free(meta);
	free(title);
	int64_t last_seq = 0;
	if (!rc)
		rc = append_events(s, r->id, stored, &last_seq);
	if (!rc)
		rc = write_state(s, r->id, &r->state, c->now, last_seq, r->state.awaiting_turn);
	if (!rc)
		rc = follow_work(s, r, &r->state, c->now, c->wake);
	json_decref(stored);
	if (!rc) {
		snprintf(c->wake->session_id, sizeof(c->wake->session_id), "%s", r->id);
		snprintf(c->wake->org, sizeof(c->wake->org), "%s", c->t->org);
		c->wake->turn_wanted = r->state.awaiting_turn;
		c->wake->events = last_seq > 0;
	}
	if (rc)
		session_rec_clear(r);
	return rc;
}

static enum err finish_session(struct session_rec *out, struct session_wake *wake, enum err rc)
{
	if (rc) {
		session_rec_clear(out);
		if (wake)
			memset(wake, 0, sizeof(*wake));
	}
	return rc;
}

enum err sql_session_create(struct store *base, const struct tenant *t, const struct session_new *n, int64_t now,
			       struct session_rec *out, struct session_wake *wake, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	memset(wake, 0, sizeof(*wake));
	struct sess_ctx c = {.t = t, .n = n, .now = now, .out = out, .wake = wake, .eb = eb};
	return finish_session(out, wake, sql_run((struct sql_store *)base, create_job, &c));
}

static enum err get_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	return sql_session_load(s, c->sc, c->id, c->out, NULL);
}

enum err sql_session_get(struct store *base, const struct session_scope *sc, const char *id,
			    struct session_rec *out)
{
	memset(out, 0, sizeof(*out));
	struct sess_ctx c = {.sc = sc, .id = id, .out = out};
	return finish_session(out, NULL, sql_read((struct sql_store *)base, get_job, &c));
}

static enum err list_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "SELECT " SESSION_COLUMNS " FROM sessions WHERE org = ? AND deleted_at = 0"
					  " AND (? = '' OR workspace = ?) AND (? = '' OR environment_id = ?)"
					  " AND (? OR archived_at = 0) AND (? = '' OR agent_id = ?)"
					  " AND (? OR created_at < ? OR (created_at = ? AND id < ?))"
					  " ORDER BY created_at DESC, id DESC LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->sc->org);
	db_bind_text(st, 2, c->sc->workspace);
	db_bind_text(st, 3, c->sc->workspace);
	db_bind_text(st, 4, c->sc->environment_id);
	db_bind_text(st, 5, c->sc->environment_id);
	db_bind_i64(st, 6, c->flag);
	db_bind_text(st, 7, c->agent_id ? c->agent_id : "");
	db_bind_text(st, 8, c->agent_id ? c->agent_id : "");
	sql_bind_after(st, 9, c->after);
	db_bind_i64(st, 13, (int64_t)c->limit + 1);
	size_t cap = 0;
	int rc;
	struct session_page *page = c->page;
	while ((rc = db_step(st)) == DB_ROW) {
		if (page->count == c->limit) {
			page->more = 1;
			break;
		}
		if (page->count == cap && sql_grow((void **)&page->items, &cap, sizeof(*page->items)))
			return ERR_NOMEM;
		enum err err = read_session(st, &page->items[page->count], NULL);
		if (err)
			return err;
		page->count++;
	}
	return rc == DB_ROW || rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

enum err sql_session_list(struct store *base, const struct session_scope *sc, int include_archived,
			     const char *agent_id, const struct cursor *after, size_t limit, struct session_page *out)
{
	memset(out, 0, sizeof(*out));
	struct sess_ctx c = {.sc = sc, .flag = include_archived, .agent_id = agent_id, .after = after, .limit = limit,
			     .page = out};
	enum err rc = sql_read((struct sql_store *)base, list_job, &c);
	if (rc)
		session_page_clear(out);
	return rc;
}

static enum err update_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec *r = c->out;
	enum err rc = sql_session_load(s, c->sc, c->id, r, NULL);
	if (rc)
		return rc;
	int changed = 0;
	const json_t *title = json_object_get(c->json, "title");
	const json_t *meta = json_object_get(c->json, "metadata");
	if (r->archived_at) {
		rc = errf(c->eb, ERR_INVALID, "session %.64s is archived: it cannot be updated", c->id);
		goto out;
	}
	if (title && !json_equal(title, r->title)) {
		json_decref(r->title);
		r->title = json_deep_copy(title);
		changed = 1;
	}
	if (meta && !json_is_null(meta)) {
		int mchanged = 0;
		if ((rc = metadata_patch(r->metadata, meta, METADATA_DELETE_NULL, &mchanged, c->eb)))
			goto out;
		changed |= mchanged;
	}
	if (!changed)
		return ERR_OK;
	r->updated_at = c->now;
	char *t = json_dumps(r->title, JSON_ENCODE_ANY);
	char *m = json_dumps(r->metadata, JSON_COMPACT);
	struct db_stmt *st = sql_stmt(s, "UPDATE sessions SET title = ?, metadata = ?, updated_at = ? WHERE id = ?");
	if (!t || !m || !st) {
		rc = st ? ERR_NOMEM : ERR_INTERNAL;
	} else {
		db_bind_text(st, 1, t);
		db_bind_text(st, 2, m);
		db_bind_i64(st, 3, c->now);
		db_bind_text(st, 4, c->id);
		int src = db_step(st);
		rc = src == DB_DONE ? ERR_OK : sql_err(s, src);
	}
	free(t);
	free(m);
out:
	if (rc)
		session_rec_clear(r);
	return rc;
}

enum err sql_session_update(struct store *base, const struct session_scope *sc, const char *id, const json_t *body,
			       int64_t now, struct session_rec *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	struct sess_ctx c = {.sc = sc, .id = id, .json = body, .now = now, .out = out, .eb = eb};
	return finish_session(out, NULL, sql_run((struct sql_store *)base, update_job, &c));
}

static enum err close_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec *r = c->out;
	struct session_row x;
	enum err rc = sql_session_load(s, c->sc, c->id, r, &x);
	if (rc)
		return rc;
	if (!c->flag && r->archived_at)
		return ERR_OK; /* archiving again keeps the original archived_at */
	int64_t last_seq = x.last_seq;
	struct db_stmt *st;
	if (c->flag) {
		char id[ID_MAX];
		ids_new_at("sevt_", c->now, id);
		json_t *evs = json_pack("[o]", session_deleted_event(id, c->now));
		rc = evs ? append_events(s, r->id, evs, &last_seq) : ERR_NOMEM;
		json_decref(evs);
		st = sql_stmt(s, "UPDATE sessions SET deleted_at = ?, awaiting_turn = 0, turn_id = '', last_seq = ?,"
				    " updated_at = ? WHERE id = ?");
	} else {
		r->archived_at = r->updated_at = c->now;
		st = sql_stmt(s, "UPDATE sessions SET archived_at = ?, awaiting_turn = 0, turn_id = '', last_seq = ?,"
				    " updated_at = ? WHERE id = ?");
	}
	if (!rc && !st)
		rc = ERR_INTERNAL;
	if (!rc) {
		db_bind_i64(st, 1, c->now);
		db_bind_i64(st, 2, last_seq);
		db_bind_i64(st, 3, c->now);
		db_bind_text(st, 4, r->id);
		int src = db_step(st);
		rc = src == DB_DONE ? ERR_OK : sql_err(s, src);
	}
	/* The session is closed before its item stops, so the stop does not re-enqueue. */
	if (!rc)
		rc = sql_work_session_stop(s, r->environment_id, r->id, c->now);
	if (!rc) {
		c->wake->events = c->flag;
		snprintf(c->wake->session_id, sizeof(c->wake->session_id), "%s", r->id);
	}
	if (rc)
		session_rec_clear(r);
	return rc;
}

enum err sql_session_close(struct store *base, const struct session_scope *sc, const char *id, int deleting,
			      int64_t now, struct session_rec *out, struct session_wake *wake)
{
	memset(out, 0, sizeof(*out));
	memset(wake, 0, sizeof(*wake));
	struct sess_ctx c = {.sc = sc, .id = id, .flag = deleting, .now = now, .out = out, .wake = wake};
	return finish_session(out, wake, sql_run((struct sql_store *)base, close_job, &c));
}

/* Persist a batch the model accepted: events, state, work, and what to wake. */
enum err sql_session_commit(struct sql_store *s, struct sess_ctx *c, struct session_rec *r,
			     struct session_row *x, struct session_state *next, json_t *stored)
{
	int64_t last_seq = x->last_seq;
	int became_awaiting = next->awaiting_turn && !r->state.awaiting_turn;
	enum err rc = append_events(s, r->id, stored, &last_seq);
	if (!rc)
		rc = write_state(s, r->id, next, c->now, last_seq, became_awaiting);
	if (!rc)
		rc = follow_work(s, r, next, c->now, c->wake);
	/* Termination is final: the live item goes towards stopped, as on archive. */
	if (!rc && next->status == SESSION_TERMINATED && r->state.status != SESSION_TERMINATED)
		rc = sql_work_session_stop(s, r->environment_id, r->id, c->now);
	if (!rc) {
		c->wake->events = json_array_size(stored) > 0;
		c->wake->turn_wanted = next->awaiting_turn && !next->turn_id[0];
		snprintf(c->wake->session_id, sizeof(c->wake->session_id), "%s", r->id);
		snprintf(c->wake->org, sizeof(c->wake->org), "%s", x->org);
	}
	return rc;
}

/* Run a batch job; the caller owns *stored only on success (a commit that failed after
 * the job ran releases it, and what to wake). */
enum err sql_session_run_batch(struct sql_store *s, sql_job_fn job, struct sess_ctx *c, json_t **stored)
{
	enum err rc = sql_run(s, job, c);
	if (rc) {
		json_decref(c->stored);
		memset(c->wake, 0, sizeof(*c->wake));
		return rc;
	}
	*stored = c->stored;
	return ERR_OK;
}

static enum err post_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec r;
	struct session_row x;
	enum err rc = sql_session_load(s, c->sc, c->id, &r, &x);
	if (rc)
		return rc;
	if (r.archived_at) {
		session_rec_clear(&r);
		return errf(c->eb, ERR_INVALID, "session %.64s is archived: it takes no more events", c->id);
	}
	char(*ids)[ID_MAX] = sql_session_new_ids(json_array_size(c->json), c->now);
	if (!ids) {
		session_rec_clear(&r);
		return ERR_NOMEM;
	}
	struct session_state next;
	json_t *stored = NULL;
	struct known_ctx k = {s, r.id};
	rc = session_client_events(&r.state, c->json, (const char(*)[ID_MAX])ids, c->now, 0, tool_use_known, &k,
				   &next, &stored, c->eb);
	free(ids);
	if (!rc) {
		if (json_array_size(stored))
			rc = sql_session_commit(s, c, &r, &x, &next, stored);
		session_state_clear(&next);
	}
	if (!rc)
		c->stored = stored;
	else
		json_decref(stored);
	session_rec_clear(&r);
	return rc;
}

enum err sql_session_post(struct store *base, const struct session_scope *sc, const char *id, const json_t *events,
			     int64_t now, json_t **stored, struct session_wake *wake, struct errbuf *eb)
{
	memset(wake, 0, sizeof(*wake));
	*stored = NULL;
	struct sess_ctx c = {.sc = sc, .id = id, .json = events, .now = now, .wake = wake, .eb = eb};
	return sql_session_run_batch((struct sql_store *)base, post_job, &c, stored);
}

/* Read rows (seq, id, body) into page->items; stop after `limit` (more set). */
static enum err read_events(struct sql_store *s, struct db_stmt *st, size_t limit, struct event_page *page)
{
	page->items = json_array();
	if (!page->items)
		return ERR_NOMEM;
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		if (json_array_size(page->items) == limit) {
			page->more = 1;
			break;
		}
		page->last_seq = db_col_i64(st, 0);
		db_col_copy(st, 1, page->last_id, sizeof(page->last_id));
		json_t *ev = json_loads(db_col_text(st, 2), 0, NULL);
		if (!ev)
			return ERR_INTERNAL;
		json_array_append_new(page->items, ev);
	}
	db_reset(st);
	return rc == DB_ROW || rc == DB_DONE ? ERR_OK : sql_err(s, rc);
}

static enum err events_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec r;
	enum err rc = sql_session_load(s, c->sc, c->id, &r, NULL);
	if (rc)
		return rc;
	session_rec_clear(&r);
	const struct event_query *q = c->q;
	struct db_stmt *st =
		q->descending
			? sql_stmt(s, "SELECT seq, id, body FROM session_events WHERE session_id = ?"
					 " AND (? = 0 OR seq < ?) AND (? IS NULL OR instr(?, ',' || type || ',') > 0)"
					 " ORDER BY seq DESC LIMIT ?")
			: sql_stmt(s, "SELECT seq, id, body FROM session_events WHERE session_id = ?"
					 " AND (? = 0 OR seq > ?) AND (? IS NULL OR instr(?, ',' || type || ',') > 0)"
					 " ORDER BY seq LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->id);
	db_bind_i64(st, 2, q->after_seq);
	db_bind_i64(st, 3, q->after_seq);
	db_bind_text(st, 4, q->types);
	db_bind_text(st, 5, q->types);
	db_bind_i64(st, 6, (int64_t)q->limit + 1);
	return read_events(s, st, q->limit, c->events);
}

enum err sql_session_events(struct store *base, const struct session_scope *sc, const char *id,
			       const struct event_query *q, struct event_page *out)
{
	memset(out, 0, sizeof(*out));
	struct sess_ctx c = {.sc = sc, .id = id, .q = q, .events = out};
	enum err rc = sql_read((struct sql_store *)base, events_job, &c);
	if (rc)
		event_page_clear(out);
	return rc;
}

static enum err last_seq_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec r;
	struct session_row x;
	enum err rc = sql_session_load(s, c->sc, c->id, &r, &x);
	if (rc)
		return rc;
	session_rec_clear(&r);
	c->seq = x.last_seq;
	if (!c->event_id)
		return ERR_OK;
	struct db_stmt *st = sql_stmt(s, "SELECT seq FROM session_events WHERE session_id = ? AND id = ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->id);
	db_bind_text(st, 2, c->event_id);
	int src = db_step(st);
	if (src == DB_ROW)
		c->seq = db_col_i64(st, 0);
	db_reset(st);
	if (src == DB_DONE)
		return ERR_INVALID;
	return src == DB_ROW ? ERR_OK : sql_err(s, src);
}

enum err sql_session_last_seq(struct store *base, const struct session_scope *sc, const char *id,
				 const char *after_event_id, int64_t *seq)
{
	struct sess_ctx c = {.sc = sc, .id = id, .event_id = after_event_id};
	enum err rc = sql_read((struct sql_store *)base, last_seq_job, &c);
	*seq = rc ? 0 : c.seq;
	return rc;
}

static enum err since_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct db_stmt *st = sql_stmt(s, "SELECT deleted_at FROM sessions WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->id);
	int rc = db_step(st);
	if (rc == DB_DONE)
		return ERR_NOT_FOUND;
	if (rc != DB_ROW)
		return sql_err(s, rc);
	c->flag = db_col_i64(st, 0) != 0;
	db_reset(st);
	st = sql_stmt(s, "SELECT seq, id, body FROM session_events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->id);
	db_bind_i64(st, 2, c->seq);
	db_bind_i64(st, 3, (int64_t)c->limit + 1);
	return read_events(s, st, c->limit, c->events);
}

enum err sql_session_events_since(struct store *base, const char *id, int64_t after_seq, size_t max,
				     struct event_page *out, int *deleted)
{
	memset(out, 0, sizeof(*out));
	struct sess_ctx c = {.id = id, .seq = after_seq, .limit = max, .events = out};
	enum err rc = sql_read((struct sql_store *)base, since_job, &c);
	*deleted = rc ? 0 : c.flag;
	if (rc)
		event_page_clear(out);
	return rc;
}

enum err sql_session_item_stopped(struct sql_store *s, const char *env_id, const char *session_id, int64_t now,
				     int *requeued)
{
	*requeued = 0;
	struct db_stmt *st = sql_stmt(s, "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ? AND environment_id = ?"
					  " AND deleted_at = 0 AND archived_at = 0");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, session_id);
	db_bind_text(st, 2, env_id);
	int rc = db_step(st);
	if (rc == DB_DONE)
		return ERR_OK; /* not a session environd knows (an enqueued id), or closed */
	if (rc != DB_ROW)
		return sql_err(s, rc);
	struct session_rec r;
	enum err err = read_session(st, &r, NULL);
	db_reset(st);
	if (err)
		return err;
	if (session_needs_worker(&r.state))
		err = sql_work_session_ensure(s, env_id, session_id, now, requeued);
	session_rec_clear(&r);
	return err;
}
