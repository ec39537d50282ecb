/* poll_hint.c - the "nothing to claim here" hints of held polls (see poll_hint.h).
 * Sharded open hash tables keyed by environment id; a full shard is emptied whole. */
#include "api/poll_hint.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"

#define SHARDS 16

struct hint {
	char env_id[ID_MAX];
	uint64_t seq, epoch;
	int64_t oldest_delivered;
	int64_t stored_mono;
};

struct shard {
	pthread_mutex_t lock;
	struct hint *slots;
	size_t cap, count;
};

struct poll_hint {
	struct shard shards[SHARDS];
};

static uint64_t key_of(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct poll_hint *poll_hint_new(size_t max_entries)
{
	struct poll_hint *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	size_t per = max_entries / SHARDS < 16 ? 16 : max_entries / SHARDS;
	for (int i = 0; i < SHARDS; i++) {
		pthread_mutex_init(&h->shards[i].lock, NULL);
		h->shards[i].cap = per * 2;
		if (!(h->shards[i].slots = calloc(h->shards[i].cap, sizeof(struct hint)))) {
			poll_hint_free(h);
			return NULL;
		}
	}
	return h;
}

void poll_hint_free(struct poll_hint *h)
{
	if (!h)
		return;
	for (int i = 0; i < SHARDS; i++) {
		free(h->shards[i].slots);
		pthread_mutex_destroy(&h->shards[i].lock);
	}
	free(h);
}

static struct hint *find(struct shard *sh, uint64_t k, const char *env_id)
{
	size_t i = (size_t)(k / SHARDS) % sh->cap;
	for (;;) {
		struct hint *e = &sh->slots[i];
		if (!e->env_id[0] || strcmp(e->env_id, env_id) == 0)
			return e;
		i = (i + 1) % sh->cap;
	}
}

void poll_hint_put(struct poll_hint *h, const char *env_id, uint64_t seq, uint64_t epoch, int64_t oldest_delivered,
		   int64_t now_mono)
{
	if (!env_id[0] || strlen(env_id) >= ID_MAX)
		return;
	uint64_t k = key_of(env_id);
	struct shard *sh = &h->shards[k % SHARDS];
	pthread_mutex_lock(&sh->lock);
	if (sh->count * 2 >= sh->cap) {
		memset(sh->slots, 0, sh->cap * sizeof(*sh->slots));
		sh->count = 0;
	}
	struct hint *e = find(sh, k, env_id);
	if (!e->env_id[0]) {
		sh->count++;
		memcpy(e->env_id, env_id, strlen(env_id) + 1);
	}
	e->seq = seq;
	e->epoch = epoch;
	e->oldest_delivered = oldest_delivered;
	e->stored_mono = now_mono;
	pthread_mutex_unlock(&sh->lock);
}

int poll_hint_get(struct poll_hint *h, const char *env_id, uint64_t seq, uint64_t epoch, int64_t now_mono,
		  int64_t *oldest_delivered)
{
	if (!env_id[0] || strlen(env_id) >= ID_MAX)
		return 0;
	uint64_t k = key_of(env_id);
	struct shard *sh = &h->shards[k % SHARDS];
	pthread_mutex_lock(&sh->lock);
	struct hint *e = find(sh, k, env_id);
	int ok = e->env_id[0] && e->seq == seq && e->epoch == epoch && now_mono - e->stored_mono < POLL_HINT_TTL_US;
	if (ok)
		*oldest_delivered = e->oldest_delivered;
	pthread_mutex_unlock(&sh->lock);
	return ok;
}
