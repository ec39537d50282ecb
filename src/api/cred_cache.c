/* cred_cache.c - recently resolved environment keys (see cred_cache.h).
 *
 * Sharded open hash tables keyed by the credential's hash; a shard that fills up is
 * emptied whole (cheap, and the next lookups just go to the store). */
#include "api/cred_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/secret.h"

#define SHARDS 16

struct entry {
	int used;
	uint64_t epoch;
	int64_t stored_mono;
	struct credential cred;
};

struct shard {
	pthread_mutex_t lock;
	struct entry *slots;
	size_t cap, count;
};

struct cred_cache {
	struct shard shards[SHARDS];
	_Atomic uint64_t clears; /* a lookup that began before a clear must not store its answer */
};

/* The hash is hex SHA-256: its leading digits are already uniform. */
static uint64_t key_of(const char *hash)
{
	uint64_t k = 0;
	for (int i = 0; i < 16 && hash[i]; i++)
		k = k << 4 | (uint64_t)((hash[i] >= 'a' ? hash[i] - 'a' + 10 : hash[i] - '0') & 15);
	return k;
}

struct cred_cache *cred_cache_new(size_t max_entries)
{
	struct cred_cache *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return NULL;
	size_t per = max_entries / SHARDS < 16 ? 16 : max_entries / SHARDS;
	for (int i = 0; i < SHARDS; i++) {
		pthread_mutex_init(&cc->shards[i].lock, NULL);
		cc->shards[i].cap = per * 2; /* load factor at most one half */
		if (!(cc->shards[i].slots = calloc(cc->shards[i].cap, sizeof(struct entry)))) {
			cred_cache_free(cc);
			return NULL;
		}
	}
	return cc;
}

void cred_cache_free(struct cred_cache *cc)
{
	if (!cc)
		return;
	for (int i = 0; i < SHARDS; i++) {
		free(cc->shards[i].slots);
		pthread_mutex_destroy(&cc->shards[i].lock);
	}
	free(cc);
}

static struct shard *shard_of(struct cred_cache *cc, uint64_t k) { return &cc->shards[k % SHARDS]; }

/* The slot holding hash, or the empty slot where it would go. Shard lock held. */
static struct entry *find(struct shard *sh, uint64_t k, const char *hash)
{
	size_t i = (size_t)(k / SHARDS) % sh->cap;
	for (;;) {
		struct entry *e = &sh->slots[i];
		/* The hash of a presented credential: compared in constant time, as the store does. */
		if (!e->used || (strlen(hash) == SECRET_HASH_HEX && secret_equal(e->cred.hash, hash, SECRET_HASH_HEX)))
			return e;
		i = (i + 1) % sh->cap;
	}
}

int cred_cache_get(struct cred_cache *cc, const char *hash, uint64_t epoch, int64_t now_mono, struct credential *out)
{
	uint64_t k = key_of(hash);
	struct shard *sh = shard_of(cc, k);
	pthread_mutex_lock(&sh->lock);
	struct entry *e = find(sh, k, hash);
	int hit = e->used && e->epoch == epoch && now_mono - e->stored_mono < CRED_CACHE_TTL_US;
	if (hit)
		*out = e->cred;
	pthread_mutex_unlock(&sh->lock);
	return hit;
}

uint64_t cred_cache_clears(struct cred_cache *cc) { return atomic_load(&cc->clears); }

void cred_cache_put(struct cred_cache *cc, const struct credential *cred, uint64_t epoch, uint64_t clears,
		    int64_t now_mono)
{
	if (cred->kind != CRED_ENV_KEY || strlen(cred->hash) != SECRET_HASH_HEX)
		return;
	uint64_t k = key_of(cred->hash);
	struct shard *sh = shard_of(cc, k);
	pthread_mutex_lock(&sh->lock);
	if (atomic_load(&cc->clears) != clears) {
		pthread_mutex_unlock(&sh->lock);
		return;
	}
	if (sh->count * 2 >= sh->cap) {
		memset(sh->slots, 0, sh->cap * sizeof(*sh->slots));
		sh->count = 0;
	}
	struct entry *e = find(sh, k, cred->hash);
	if (!e->used)
		sh->count++;
	e->used = 1;
	e->epoch = epoch;
	e->stored_mono = now_mono;
	e->cred = *cred;
	pthread_mutex_unlock(&sh->lock);
}

void cred_cache_clear(struct cred_cache *cc)
{
	atomic_fetch_add(&cc->clears, 1);
	for (int i = 0; i < SHARDS; i++) {
		struct shard *sh = &cc->shards[i];
		pthread_mutex_lock(&sh->lock);
		memset(sh->slots, 0, sh->cap * sizeof(*sh->slots));
		sh->count = 0;
		pthread_mutex_unlock(&sh->lock);
	}
}
