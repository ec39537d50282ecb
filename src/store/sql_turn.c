/* sql_turn.c - agent turns on SQLite (the agent extension): claim the oldest session
 * awaiting a turn, heartbeat and post under the turn's lease, and return the sessions of
 * expired turns to awaiting. The turn lives in the session row (turn_id, turn_expires_at). */
#include "store/sql_session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Take the turn of one session: only while it still awaits one. Under concurrent claims
 * (PostgreSQL) this waits for a claim holding the row and then finds it taken; 0 changes. */
static enum err take_turn(struct sql_store *s, const struct agent_turn *t, int *taken)
{
	struct db_stmt *st = sql_stmt(s, "UPDATE sessions SET awaiting_turn = 0, turn_id = ?, turn_expires_at = ?"
					  " WHERE id = ? AND awaiting_turn = 1 AND turn_id = '' AND deleted_at = 0"
					  " AND archived_at = 0 AND status != 3");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, t->id);
	db_bind_i64(st, 2, t->lease_expires_at);
	db_bind_text(st, 3, t->session_id);
	int rc = db_step(st);
	if (rc != DB_DONE)
		return sql_err(s, rc);
	*taken = db_changes(st) == 1;
	return ERR_OK;
}

static enum err claim_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	/* Oldest awaiting session in scope whose model is allowed; models are matched in C so
	 * that one static statement serves any list. A candidate another claim took since the
	 * query read it is passed over for the next one. */
	struct db_stmt *st = sql_stmt(s, "SELECT id, model_id, agent FROM sessions WHERE org = ? AND awaiting_turn = 1"
					  " AND turn_id = '' AND deleted_at = 0 AND archived_at = 0 AND status != 3"
					  " AND (? = '' OR workspace = ?) ORDER BY awaiting_since, id");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, c->sc->org);
	db_bind_text(st, 2, c->sc->workspace);
	db_bind_text(st, 3, c->sc->workspace);
	int rc = DB_DONE;
	struct agent_turn *t = c->turn;
	int found = 0;
	enum err err = ERR_OK;
	ids_new_at("turn_", c->now, t->id);
	t->lease_expires_at = c->now + c->lease_us;
	while (!found && !err && (rc = db_step(st)) == DB_ROW) {
		const char *model = db_col_text(st, 1);
		int ok = c->models == NULL;
		for (size_t i = 0; !ok && c->models[i]; i++)
			ok = model && strcmp(model, c->models[i]) == 0;
		if (!ok)
			continue;
		db_col_copy(st, 0, t->session_id, sizeof(t->session_id));
		t->agent = json_loads(db_col_text(st, 2), 0, NULL);
		if (!t->agent) {
			err = ERR_INTERNAL;
			break;
		}
		err = take_turn(s, t, &found);
		if (!found) {
			json_decref(t->agent);
			t->agent = NULL;
		}
	}
	if (!err && !found && rc != DB_DONE)
		err = sql_err(s, rc);
	db_reset(st);
	if (err)
		return err;
	return found ? ERR_OK : ERR_NOT_FOUND;
}

enum err sql_turn_claim(struct store *base, const struct session_scope *sc, const char *const *models, int64_t now,
			   int64_t lease_us, struct agent_turn *out)
{
	memset(out, 0, sizeof(*out));
	struct sess_ctx c = {.sc = sc, .models = models, .now = now, .lease_us = lease_us, .turn = out};
	enum err rc = sql_run((struct sql_store *)base, claim_job, &c);
	if (rc) {
		agent_turn_clear(out);
		memset(out, 0, sizeof(*out)); /* zeroed, not only owning nothing (store.h) */
	}
	return rc;
}

/* The session holding turn_id in scope, if the turn is still held (not expired). */
static enum err load_turn(struct sql_store *s, struct sess_ctx *c, const char *turn_id, struct session_rec *r,
			  struct session_row *x)
{
	struct db_stmt *st = sql_stmt(s, "SELECT id FROM sessions WHERE turn_id = ? AND org = ?"
					  " AND (? = '' OR workspace = ?) AND deleted_at = 0 AND archived_at = 0");
	if (!st)
		return ERR_INTERNAL;
	db_bind_text(st, 1, turn_id);
	db_bind_text(st, 2, c->sc->org);
	db_bind_text(st, 3, c->sc->workspace);
	db_bind_text(st, 4, c->sc->workspace);
	int rc = db_step(st);
	if (rc != DB_ROW) {
		db_reset(st);
		return rc == DB_DONE ? ERR_TURN_LOST : sql_err(s, rc);
	}
	char id[ID_MAX];
	db_col_copy(st, 0, id, sizeof(id));
	db_reset(st);
	enum err err = sql_session_load(s, c->sc, id, r, x);
	if (err)
		return err;
	/* Read again under the row's lock: the turn may have been swept (or another claimed). */
	if (strcmp(r->state.turn_id, turn_id) != 0 || r->state.turn_expires_at <= c->now ||
	    r->state.status == SESSION_TERMINATED) {
		session_rec_clear(r);
		return ERR_TURN_LOST; /* expired: the sweeper returns it to awaiting */
	}
	return ERR_OK;
}

static enum err turn_beat_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec r;
	struct session_row x;
	enum err rc = load_turn(s, c, c->id, &r, &x);
	if (rc)
		return rc;
	session_rec_clear(&r);
	c->seq = c->now + c->lease_us;
	struct db_stmt *st = sql_stmt(s, "UPDATE sessions SET turn_expires_at = ? WHERE turn_id = ?");
	if (!st)
		return ERR_INTERNAL;
	db_bind_i64(st, 1, c->seq);
	db_bind_text(st, 2, c->id);
	int src = db_step(st);
	return src == DB_DONE ? ERR_OK : sql_err(s, src);
}

enum err sql_turn_heartbeat(struct store *base, const struct session_scope *sc, const char *turn_id, int64_t now,
			       int64_t lease_us, int64_t *expires_at)
{
	struct sess_ctx c = {.sc = sc, .id = turn_id, .now = now, .lease_us = lease_us};
	enum err rc = sql_run((struct sql_store *)base, turn_beat_job, &c);
	*expires_at = rc ? 0 : c.seq;
	return rc;
}

static enum err turn_post_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec r;
	struct session_row x;
	enum err rc = load_turn(s, c, c->id, &r, &x);
	if (rc == ERR_TURN_LOST)
		return errf(c->eb, rc, "turn %.64s is no longer held (expired, ended, or its session closed)", c->id);
	if (rc)
		return rc;
	char(*ids)[ID_MAX] = sql_session_new_ids(json_array_size(c->json), c->now);
	if (!ids) {
		session_rec_clear(&r);
		return ERR_NOMEM;
	}
	struct session_state next;
	json_t *stored = NULL;
	int ended = 0;
	rc = session_agent_events(&r.state, r.agent, c->json, (const char(*)[ID_MAX])ids, c->now, &next, &stored, &ended,
				  c->eb);
	free(ids);
	if (!rc) {
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

enum err sql_turn_post(struct store *base, const struct session_scope *sc, const char *turn_id, const json_t *events,
			  int64_t now, json_t **stored, struct session_wake *wake, struct errbuf *eb)
{
	memset(wake, 0, sizeof(*wake));
	*stored = NULL;
	struct sess_ctx c = {.sc = sc, .id = turn_id, .json = events, .now = now, .wake = wake, .eb = eb};
	return sql_session_run_batch((struct sql_store *)base, turn_post_job, &c, stored);
}

enum err sql_next_turn_expiry(struct store *base, int64_t *at)
{
	return sql_read_i64((struct sql_store *)base,
			    "SELECT COALESCE(MIN(turn_expires_at), 0) FROM sessions WHERE turn_id != ''", at);
}

static enum err turns_expire_job(struct sql_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	c->n_orgs = c->n_expired = 0;
	/* A session locked by a verb in flight (a heartbeat extending its turn) is left for the
	 * next sweep; the rows taken stay locked until the commit. */
	struct db_stmt *st = sql_stmt(s, "SELECT id, org FROM sessions WHERE turn_id != '' AND turn_expires_at <= ?"
					  " ORDER BY turn_expires_at LIMIT ? FOR UPDATE SKIP LOCKED");
	if (!st)
		return ERR_INTERNAL;
	db_bind_i64(st, 1, c->now);
	db_bind_i64(st, 2, (int64_t)c->max);
	char(*ids)[ID_MAX] = calloc(c->max ? c->max : 1, ID_MAX);
	if (!ids)
		return ERR_NOMEM;
	size_t n = 0;
	int rc;
	while (n < c->max && (rc = db_step(st)) == DB_ROW) {
		db_col_copy(st, 0, ids[n], ID_MAX);
		char org[TENANT_NAME_MAX + 1];
		db_col_copy(st, 1, org, sizeof(org));
		size_t j = 0;
		while (j < c->n_orgs && strcmp(c->orgs[j], org) != 0)
			j++;
		if (j == c->n_orgs)
			snprintf(c->orgs[c->n_orgs++], TENANT_NAME_MAX + 1, "%s", org);
		n++;
	}
	db_reset(st);
	enum err err = ERR_OK;
	for (size_t i = 0; i < n && !err; i++) {
		/* The turn is lost; the session awaits another one (it keeps its place in line). */
		st = sql_stmt(s, "UPDATE sessions SET turn_id = '', turn_expires_at = 0,"
				    " awaiting_turn = CASE WHEN status = 3 THEN 0 ELSE 1 END WHERE id = ?");
		if (!st) {
			err = ERR_INTERNAL;
			break;
		}
		db_bind_text(st, 1, ids[i]);
		int src = db_step(st);
		if (src != DB_DONE)
			err = sql_err(s, src);
		else
			c->n_expired++;
	}
	free(ids);
	return err;
}

enum err sql_turns_expire(struct store *base, int64_t now, size_t max, char (*orgs)[TENANT_NAME_MAX + 1],
			     size_t *n_orgs, size_t *n_expired)
{
	struct sess_ctx c = {.now = now, .max = max, .orgs = orgs};
	enum err rc = sql_run((struct sql_store *)base, turns_expire_job, &c);
	*n_orgs = rc ? 0 : c.n_orgs;
	*n_expired = rc ? 0 : c.n_expired;
	return rc;
}
