/* after_commit.h - what a request run inside the store's commit group may do only once
 * that group is on disk: wake held polls and streams, forget cached credentials.
 *
 * The writer thread records into a request's list while it runs the request's handler
 * (after_commit_record_into); the wake functions of app.h ask after_commit_record() first
 * and do the work at once only when nothing records. After the commit, the list is
 * replayed in order; when the group failed, it is dropped (and the app looks again at
 * everything instead). Recording never fails: a list that cannot grow asks for
 * everything to be looked at again. */
#ifndef ENVIROND_API_AFTER_COMMIT_H
#define ENVIROND_API_AFTER_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#include "wait/waiters.h"

enum after_commit_kind {
	AFTER_WAKE,        /* waiters of key here and on the fleet's other nodes */
	AFTER_WAKE_HERE,   /* waiters of key on this node only */
	AFTER_WAKE_EVERY,  /* every waiter of this node */
	AFTER_FORGET_CREDENTIALS,
	AFTER_LEASE_DUE,   /* a lease or turn runs out at `at` (lease clock) */
	AFTER_RESUME,      /* resume `req`, a waiter taken out of the waiters inside the group */
};

struct after_commit_effect {
	enum after_commit_kind kind;
	size_t n;
	size_t handed; /* wakes: held polls already given the item inside the group */
	int64_t at;
	void *req;
	char key[WAITER_KEY_MAX];
};

struct after_commit {
	struct after_commit_effect *list;
	size_t n, cap;
	int overflow; /* an effect could not be kept: wake everything, forget every credential */
};

/* Record into ac from now on, on this thread (NULL: stop recording). */
void after_commit_record_into(struct after_commit *ac);
/* Record an effect when this thread records; returns 1 when recorded, 0 when the caller
 * must do it now. key may be NULL for the kinds that take none. */
int after_commit_record(enum after_commit_kind kind, const char *key, size_t n, int64_t at);
/* Add an effect to ac itself (whether this thread records or not). Returns 0, or -1 when
 * the list cannot grow (overflow is then set). */
int after_commit_add(struct after_commit *ac, enum after_commit_kind kind, const char *key, size_t n, int64_t at,
		     void *req);
/* Empty the list (keeps nothing allocated). */
void after_commit_clear(struct after_commit *ac);

#endif
