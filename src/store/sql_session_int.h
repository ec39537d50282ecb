/* sql_session_int.h - what the SQLite backend's session files share (sql_session.c,
 * sql_turn.c); not for other modules. */
#ifndef ENVIROND_STORE_SQLITE_SESSION_INT_H
#define ENVIROND_STORE_SQLITE_SESSION_INT_H

#include "store/sql_int.h"

/* Row extras that are not part of struct session_rec. */
struct session_row {
	char org[TENANT_NAME_MAX + 1];
	int64_t last_seq;
	int64_t deleted_at;
};

/* The context of every session job: each verb fills what it needs. */
struct sess_ctx {
	const struct tenant *t;
	const struct session_scope *sc;
	const struct session_new *n;
	const char *id;
	const json_t *json;
	int64_t now;
	int64_t lease_us;
	int flag;
	struct session_rec *out;
	struct session_wake *wake;
	struct errbuf *eb;
	json_t *stored;
	const struct cursor *after;
	size_t limit;
	const char *agent_id;
	const char *event_id;
	struct session_page *page;
	const struct event_query *q;
	struct event_page *events;
	int64_t seq;
	const char *const *models;
	struct agent_turn *turn;
	char (*orgs)[TENANT_NAME_MAX + 1];
	size_t max, n_orgs, n_expired;
};

/* Inside a job: load a session visible in scope (deleted ones are gone); x may be NULL. */
enum err sql_session_load(struct sql_store *s, const struct session_scope *sc, const char *id,
			     struct session_rec *out, struct session_row *x);
/* Inside a job: persist a batch the model accepted (events, state, the work item the
 * session needs) and fill c->wake. */
enum err sql_session_commit(struct sql_store *s, struct sess_ctx *c, struct session_rec *r,
			       struct session_row *x, struct session_state *next, json_t *stored);
/* Fresh event ids for a batch of n events; the caller frees. NULL when out of memory. */
char (*sql_session_new_ids(size_t n, int64_t now))[ID_MAX];
/* Run a batch job (c->stored, c->wake); the caller owns *stored only on success. */
enum err sql_session_run_batch(struct sql_store *s, sql_job_fn job, struct sess_ctx *c, json_t **stored);

#endif
