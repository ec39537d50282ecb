/* cred_cache.h - environment keys this node resolved recently, so that a poll or a
 * heartbeat need not ask the store who is calling.
 *
 * Only environment keys are kept: they are revoked only through a server (or go with
 * their environment), and every revocation clears the cache of every node (in a fleet,
 * through a notification sent in the revocation's own transaction). An entry is used only
 * under the wake epoch it was stored in (store.h: a new epoch means notifications may have
 * been missed) and for at most CRED_CACHE_TTL_US. Bounded; thread-safe. */
#ifndef ENVIROND_API_CRED_CACHE_H
#define ENVIROND_API_CRED_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define CRED_CACHE_TTL_US (60 * 1000000LL)

struct cred_cache;

struct cred_cache *cred_cache_new(size_t max_entries);
void cred_cache_free(struct cred_cache *cc);
/* 1 and *out filled when hash (its hex SHA-256) is cached under epoch and fresh at now_mono. */
int cred_cache_get(struct cred_cache *cc, const char *hash, uint64_t epoch, int64_t now_mono, struct credential *out);
/* How many clears so far: read it before asking the store, and pass it to put, which
 * then stores nothing if a clear came in between (the answer may predate a revocation). */
uint64_t cred_cache_clears(struct cred_cache *cc);
/* Remember an environment key's credential (other kinds are ignored). */
void cred_cache_put(struct cred_cache *cc, const struct credential *cred, uint64_t epoch, uint64_t clears,
		    int64_t now_mono);
/* Forget everything (a revocation, here or elsewhere). */
void cred_cache_clear(struct cred_cache *cc);

#endif
