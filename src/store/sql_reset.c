/* sql_reset.c - the test-mode reset verb: every tenant's data goes, credentials of the
 * operator (API keys, agent keys) and the server's settings stay. */
#include "store/sql_int.h"

#include <stddef.h>
#include <string.h>

/* What goes, in an order that never leaves a row pointing at a deleted parent, and the
 * counter of struct store_reset that receives how many rows of it were deleted. */
static const struct {
	const char *sql;
	size_t counter; /* offsetof into struct store_reset */
} deletes[] = {
	{"DELETE FROM session_events", offsetof(struct store_reset, events)},
	{"DELETE FROM sessions", offsetof(struct store_reset, sessions)},
	{"DELETE FROM agents", offsetof(struct store_reset, agents)},
	{"DELETE FROM work", offsetof(struct store_reset, work)},
	{"DELETE FROM env_keys", offsetof(struct store_reset, env_keys)},
	{"DELETE FROM environments", offsetof(struct store_reset, environments)},
};

static enum err reset_job(struct sql_store *s, void *arg)
{
	struct store_reset *out = arg;
	for (size_t i = 0; i < sizeof(deletes) / sizeof(deletes[0]); i++) {
		struct db_stmt *st = sql_stmt(s, deletes[i].sql);
		if (!st)
			return ERR_INTERNAL;
		int rc = db_step(st);
		if (rc != DB_DONE)
			return sql_err(s, rc);
		*(int64_t *)((char *)out + deletes[i].counter) = db_changes(st);
	}
	return ERR_OK;
}

enum err sql_reset_all(struct store *base, struct store_reset *out)
{
	memset(out, 0, sizeof(*out));
	enum err rc = sql_run((struct sql_store *)base, reset_job, out);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}
