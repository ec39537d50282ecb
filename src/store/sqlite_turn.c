/* sqlite_turn.c - agent turns on SQLite (the agent extension): claim the oldest session
 * awaiting a turn, heartbeat and post under the turn's lease, and return the sessions of
 * expired turns to awaiting. The turn lives in the session row (turn_id, turn_expires_at). */
#include "store/sqlite_session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum err claim_job(struct sqlite_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	/* Oldest awaiting session in scope whose model is allowed; models are matched in C so
	 * that one static statement serves any list. */
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT id, model_id, agent FROM sessions WHERE org = ? AND awaiting_turn = 1"
					  " AND turn_id = '' AND deleted_at = 0 AND archived_at = 0 AND status != 3"
					  " AND (? = '' OR workspace = ?) ORDER BY awaiting_since, id");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, c->sc->org);
	sqlite_bind_text(st, 2, c->sc->workspace);
	sqlite_bind_text(st, 3, c->sc->workspace);
	int rc;
	struct agent_turn *t = c->turn;
	int found = 0;
	while (!found && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *model = (const char *)sqlite3_column_text(st, 1);
		int ok = c->models == NULL;
		for (size_t i = 0; !ok && c->models[i]; i++)
			ok = model && strcmp(model, c->models[i]) == 0;
		if (!ok)
			continue;
		sqlite_col_text(st, 0, t->session_id, sizeof(t->session_id));
		t->agent = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
		found = 1;
	}
	sqlite3_reset(st);
	if (!found)
		return ERR_NOT_FOUND;
	if (!t->agent)
		return ERR_INTERNAL;
	ids_new_at("turn_", c->now, t->id);
	t->lease_expires_at = c->now + c->lease_us;
	st = sqlite_stmt(s, "UPDATE sessions SET awaiting_turn = 0, turn_id = ?, turn_expires_at = ? WHERE id = ?");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, t->id);
	sqlite_bind_i64(st, 2, t->lease_expires_at);
	sqlite_bind_text(st, 3, t->session_id);
	rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? ERR_OK : sqlite_err(s, rc);
}

enum err sqlite_turn_claim(struct store *base, const struct session_scope *sc, const char *const *models, int64_t now,
			   int64_t lease_us, struct agent_turn *out)
{
	memset(out, 0, sizeof(*out));
	struct sess_ctx c = {.sc = sc, .models = models, .now = now, .lease_us = lease_us, .turn = out};
	enum err rc = sqlite_run((struct sqlite_store *)base, claim_job, &c);
	if (rc)
		agent_turn_clear(out);
	return rc;
}

/* The session holding turn_id in scope, if the turn is still held (not expired). */
static enum err load_turn(struct sqlite_store *s, struct sess_ctx *c, const char *turn_id, struct session_rec *r,
			  struct session_row *x)
{
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT id FROM sessions WHERE turn_id = ? AND org = ?"
					  " AND (? = '' OR workspace = ?) AND deleted_at = 0 AND archived_at = 0");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_text(st, 1, turn_id);
	sqlite_bind_text(st, 2, c->sc->org);
	sqlite_bind_text(st, 3, c->sc->workspace);
	sqlite_bind_text(st, 4, c->sc->workspace);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? ERR_TURN_LOST : sqlite_err(s, rc);
	}
	char id[ID_MAX];
	sqlite_col_text(st, 0, id, sizeof(id));
	sqlite3_reset(st);
	enum err err = sqlite_session_load(s, c->sc, id, r, x);
	if (err)
		return err;
	if (r->state.turn_expires_at <= c->now || r->state.status == SESSION_TERMINATED) {
		session_rec_clear(r);
		return ERR_TURN_LOST; /* expired: the sweeper returns it to awaiting */
	}
	return ERR_OK;
}

static enum err turn_beat_job(struct sqlite_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec r;
	struct session_row x;
	enum err rc = load_turn(s, c, c->id, &r, &x);
	if (rc)
		return rc;
	session_rec_clear(&r);
	c->seq = c->now + c->lease_us;
	sqlite3_stmt *st = sqlite_stmt(s, "UPDATE sessions SET turn_expires_at = ? WHERE turn_id = ?");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_i64(st, 1, c->seq);
	sqlite_bind_text(st, 2, c->id);
	int src = sqlite3_step(st);
	return src == SQLITE_DONE ? ERR_OK : sqlite_err(s, src);
}

enum err sqlite_turn_heartbeat(struct store *base, const struct session_scope *sc, const char *turn_id, int64_t now,
			       int64_t lease_us, int64_t *expires_at)
{
	struct sess_ctx c = {.sc = sc, .id = turn_id, .now = now, .lease_us = lease_us};
	enum err rc = sqlite_run((struct sqlite_store *)base, turn_beat_job, &c);
	*expires_at = rc ? 0 : c.seq;
	return rc;
}

static enum err turn_post_job(struct sqlite_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	struct session_rec r;
	struct session_row x;
	enum err rc = load_turn(s, c, c->id, &r, &x);
	if (rc == ERR_TURN_LOST)
		return errf(c->eb, rc, "turn %.64s is no longer held (expired, ended, or its session closed)", c->id);
	if (rc)
		return rc;
	char(*ids)[ID_MAX] = sqlite_session_new_ids(json_array_size(c->json), c->now);
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
		rc = sqlite_session_commit(s, c, &r, &x, &next, stored);
		session_state_clear(&next);
	}
	if (!rc)
		c->stored = stored;
	else
		json_decref(stored);
	session_rec_clear(&r);
	return rc;
}

enum err sqlite_turn_post(struct store *base, const struct session_scope *sc, const char *turn_id, const json_t *events,
			  int64_t now, json_t **stored, struct session_wake *wake, struct errbuf *eb)
{
	memset(wake, 0, sizeof(*wake));
	*stored = NULL;
	struct sess_ctx c = {.sc = sc, .id = turn_id, .json = events, .now = now, .wake = wake, .eb = eb};
	return sqlite_session_run_batch((struct sqlite_store *)base, turn_post_job, &c, stored);
}

static enum err turns_expire_job(struct sqlite_store *s, void *arg)
{
	struct sess_ctx *c = arg;
	c->n_orgs = c->n_expired = 0;
	sqlite3_stmt *st = sqlite_stmt(s, "SELECT id, org FROM sessions WHERE turn_id != '' AND turn_expires_at <= ?"
					  " ORDER BY turn_expires_at LIMIT ?");
	if (!st)
		return ERR_INTERNAL;
	sqlite_bind_i64(st, 1, c->now);
	sqlite_bind_i64(st, 2, (int64_t)c->max);
	char(*ids)[ID_MAX] = calloc(c->max ? c->max : 1, ID_MAX);
	if (!ids)
		return ERR_NOMEM;
	size_t n = 0;
	int rc;
	while (n < c->max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite_col_text(st, 0, ids[n], ID_MAX);
		char org[TENANT_NAME_MAX + 1];
		sqlite_col_text(st, 1, org, sizeof(org));
		size_t j = 0;
		while (j < c->n_orgs && strcmp(c->orgs[j], org) != 0)
			j++;
		if (j == c->n_orgs)
			snprintf(c->orgs[c->n_orgs++], TENANT_NAME_MAX + 1, "%s", org);
		n++;
	}
	sqlite3_reset(st);
	enum err err = ERR_OK;
	for (size_t i = 0; i < n && !err; i++) {
		/* The turn is lost; the session awaits another one (it keeps its place in line). */
		st = sqlite_stmt(s, "UPDATE sessions SET turn_id = '', turn_expires_at = 0,"
				    " awaiting_turn = CASE WHEN status = 3 THEN 0 ELSE 1 END WHERE id = ?");
		if (!st) {
			err = ERR_INTERNAL;
			break;
		}
		sqlite_bind_text(st, 1, ids[i]);
		int src = sqlite3_step(st);
		if (src != SQLITE_DONE)
			err = sqlite_err(s, src);
		else
			c->n_expired++;
	}
	free(ids);
	return err;
}

enum err sqlite_turns_expire(struct store *base, int64_t now, size_t max, char (*orgs)[TENANT_NAME_MAX + 1],
			     size_t *n_orgs, size_t *n_expired)
{
	struct sess_ctx c = {.now = now, .max = max, .orgs = orgs};
	enum err rc = sqlite_run((struct sqlite_store *)base, turns_expire_job, &c);
	*n_orgs = rc ? 0 : c.n_orgs;
	*n_expired = rc ? 0 : c.n_expired;
	return rc;
}
