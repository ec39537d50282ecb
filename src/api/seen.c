/* seen.c - recently polling workers (see seen.h). */
#include "api/seen.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/log.h"

struct seen_slot {
	char env_id[ID_MAX];
	char worker_id[SEEN_WORKER_ID_MAX + 1];
	int64_t last_mono; /* 0 = empty */
};

struct seen {
	pthread_mutex_t lock;
	struct seen_slot *slots;
	size_t n;
	int warned;
};

struct seen *seen_new(size_t slots)
{
	struct seen *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->slots = calloc(slots, sizeof(*s->slots));
	if (!s->slots) {
		free(s);
		return NULL;
	}
	s->n = slots;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void seen_free(struct seen *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->slots);
	free(s);
}

static uint64_t hash2(const char *a, const char *b, size_t blen)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (size_t i = 0; i < blen; i++)
		h = (h ^ (unsigned char)b[i]) * 1099511628211ULL;
	return h;
}

void seen_touch(struct seen *s, const char *env_id, const char *worker_id, int64_t now_mono)
{
	size_t wlen = strnlen(worker_id, SEEN_WORKER_ID_MAX);
	uint64_t h = hash2(env_id, worker_id, wlen);
	pthread_mutex_lock(&s->lock);
	struct seen_slot *reusable = NULL;
	/* Linear probing over a bounded run; the first stale or empty slot is reusable. */
	for (size_t i = 0; i < 64 && i < s->n; i++) {
		struct seen_slot *slot = &s->slots[(h + i) % s->n];
		int live = slot->last_mono && now_mono - slot->last_mono < SEEN_WINDOW_US;
		if (live && strcmp(slot->env_id, env_id) == 0 && strncmp(slot->worker_id, worker_id, wlen) == 0 &&
		    slot->worker_id[wlen] == '\0') {
			slot->last_mono = now_mono;
			pthread_mutex_unlock(&s->lock);
			return;
		}
		if (!live && !reusable)
			reusable = slot;
	}
	if (reusable) {
		snprintf(reusable->env_id, sizeof(reusable->env_id), "%s", env_id);
		memcpy(reusable->worker_id, worker_id, wlen);
		reusable->worker_id[wlen] = '\0';
		reusable->last_mono = now_mono;
	} else if (!s->warned) {
		s->warned = 1;
		log_event(LOG_WARN, "workers_table_full", NULL);
	}
	pthread_mutex_unlock(&s->lock);
}

int64_t seen_count(struct seen *s, const char *env_id, int64_t now_mono)
{
	int64_t n = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		struct seen_slot *slot = &s->slots[i];
		if (slot->last_mono && now_mono - slot->last_mono < SEEN_WINDOW_US && strcmp(slot->env_id, env_id) == 0)
			n++;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}
