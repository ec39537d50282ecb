/* sql_lease.c - the lease sweep (T18/T19): expire the leases that ran out, in batches, and
 * say which environments got items back; and the earliest expiry, for the sweeper's sleep.
 * The rows and transitions are sql_work.c's (sql_work_row, sql_work_apply). */
#include "store/sql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct expire_ctx {
	int64_t now;
	size_t max;
	struct work_wake *wakes;
	size_t n_wakes;
	size_t n_expired;
};

static enum err expire_job(struct sql_store *s, void *arg)
{
	struct expire_ctx *c = arg;
	c->n_wakes = c->n_expired = 0;
	/* An item locked by a verb in flight (a heartbeat renewing it) is left for the next
	 * sweep: that verb expires it itself if it must (expire_if_due). */
	struct db_stmt *st = sql_stmt(s, "SELECT " WORK_COLUMNS " FROM work WHERE lease_expires_at > 0"
					  " AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ? FOR UPDATE SKIP LOCKED");
	if (!st)
		return ERR_INTERNAL;
	db_bind_i64(st, 1, c->now);
	db_bind_i64(st, 2, (int64_t)c->max);
	/* Read the batch first: updating rows while stepping the same query is not safe. */
	struct work_item *batch = calloc(c->max ? c->max : 1, sizeof(*batch));
	if (!batch)
		return ERR_NOMEM;
	size_t n = 0;
	int rc;
	enum err err = ERR_OK;
	while (n < c->max && (rc = db_step(st)) == DB_ROW) {
		err = sql_work_row(st, &batch[n]);
		if (err == ERR_INTERNAL) {
			/* A corrupt row (logged) must not keep every other lease from expiring. */
			err = ERR_OK;
			continue;
		}
		if (err)
			break;
		n++;
	}
	db_reset(st);
	for (size_t i = 0; i < n && !err; i++) {
		struct work_outcome o;
		enum err refusal;
		err = sql_work_apply(s, &batch[i], WORK_EV_LEASE_EXPIRE, NULL, c->now, &o, &refusal, NULL);
		if (err || refusal)
			continue;
		c->n_expired++;
		if (!o.requeue_at_head && batch[i].lease.state == WORK_STOPPED &&
		    strcmp(batch[i].data_type, "session") == 0) {
			int again = 0;
			err = sql_session_item_stopped(s, batch[i].environment_id, batch[i].data_id, c->now, &again);
			if (err || !again)
				continue;
		} else if (!o.requeue_at_head) {
			continue;
		}
		/* An item is claimable again in its environment (T18, or a stopped session's
		 * fresh item). */
		size_t j = 0;
		while (j < c->n_wakes && strcmp(c->wakes[j].environment_id, batch[i].environment_id) != 0)
			j++;
		if (j == c->n_wakes) {
			memset(&c->wakes[j], 0, sizeof(c->wakes[j]));
			snprintf(c->wakes[j].environment_id, ID_MAX, "%s", batch[i].environment_id);
			c->n_wakes++;
		}
		c->wakes[j].claimable++;
	}
	for (size_t i = 0; i < n; i++)
		work_item_clear(&batch[i]);
	free(batch);
	return err;
}

enum err sql_leases_expire(struct store *base, int64_t now, size_t max, struct work_wake *wakes, size_t *n_wakes,
			      size_t *n_expired)
{
	struct expire_ctx c = {.now = now, .max = max, .wakes = wakes};
	enum err rc = sql_run((struct sql_store *)base, expire_job, &c);
	*n_wakes = rc ? 0 : c.n_wakes;
	*n_expired = rc ? 0 : c.n_expired;
	return rc;
}

enum err sql_next_lease_expiry(struct store *base, int64_t *at)
{
	return sql_read_i64((struct sql_store *)base,
			    "SELECT COALESCE(MIN(lease_expires_at), 0) FROM work WHERE lease_expires_at > 0", at);
}
