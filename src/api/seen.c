/* seen.c - recently polling workers, per environment (see seen.h). */
#include "api/seen.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/log.h"

#define SEEN_BUCKETS 4096

struct seen_worker {
	uint64_t hash;
	int64_t last_mono;
	int dirty; /* seen since the last seen_take_dirty */
	char id[SEEN_WORKER_ID_MAX + 1];
};

/* One environment's ids; exists only while it holds at least one. */
struct seen_env {
	struct seen_env *next; /* bucket chain */
	char env_id[ID_MAX];
	size_t n, cap;
	struct seen_worker *workers;
};

struct seen {
	pthread_mutex_t lock;
	struct seen_env *buckets[SEEN_BUCKETS];
	size_t total, max_total;
	int64_t last_purge_mono; /* last full pass dropping stale entries */
	int warned;
};

/* A full pass over the table costs one look at every entry: while the table stays full of
 * live ids, it runs at most this often, and room is made from the largest environment. */
#define SEEN_PURGE_INTERVAL_US (1000000LL)

struct seen *seen_new(size_t max_total)
{
	struct seen *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->max_total = max_total ? max_total : 1;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void seen_free(struct seen *s)
{
	if (!s)
		return;
	for (size_t b = 0; b < SEEN_BUCKETS; b++) {
		for (struct seen_env *e = s->buckets[b], *next; e; e = next) {
			next = e->next;
			free(e->workers);
			free(e);
		}
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static uint64_t fnv(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

static struct seen_env **env_slot(struct seen *s, const char *env_id)
{
	struct seen_env **p = &s->buckets[fnv(env_id, strlen(env_id)) % SEEN_BUCKETS];
	while (*p && strcmp((*p)->env_id, env_id) != 0)
		p = &(*p)->next;
	return p;
}

/* Remove worker i of e (order does not matter); frees e when it empties. */
static void drop(struct seen *s, struct seen_env **slot, size_t i)
{
	struct seen_env *e = *slot;
	e->workers[i] = e->workers[--e->n];
	s->total--;
	if (e->n == 0) {
		*slot = e->next;
		free(e->workers);
		free(e);
	}
}

static size_t oldest(const struct seen_env *e)
{
	size_t o = 0;
	for (size_t i = 1; i < e->n; i++)
		if (e->workers[i].last_mono < e->workers[o].last_mono)
			o = i;
	return o;
}

/* The table is full: drop every stale entry (at most once per SEEN_PURGE_INTERVAL_US);
 * if that made no room, drop the least recently seen id of the environment holding the
 * most. `keep` is never freed (the caller holds it). */
static void make_room(struct seen *s, int64_t now_mono, const struct seen_env *keep)
{
	int purge = !s->last_purge_mono || now_mono - s->last_purge_mono >= SEEN_PURGE_INTERVAL_US;
	if (purge)
		s->last_purge_mono = now_mono;
	struct seen_env **largest = NULL;
	for (size_t b = 0; b < SEEN_BUCKETS; b++) {
		for (struct seen_env **p = &s->buckets[b]; *p;) {
			struct seen_env *e = *p;
			for (size_t i = 0; purge && i < e->n;) {
				if (now_mono - e->workers[i].last_mono >= SEEN_WINDOW_US && !(e == keep && e->n == 1))
					drop(s, p, i);
				else
					i++;
				if (*p != e)
					break; /* e emptied and was freed */
			}
			if (*p != e)
				continue;
			if (!largest || e->n > (*largest)->n)
				largest = p;
			p = &e->next;
		}
	}
	if (s->total < s->max_total || !largest)
		return;
	if (*largest == keep && keep->n == 1)
		return; /* nothing else to take from; cannot happen with max_total > 1 */
	drop(s, largest, oldest(*largest));
	if (!s->warned) {
		s->warned = 1;
		log_event(LOG_WARN, "workers_table_full", NULL);
	}
}

void seen_touch(struct seen *s, const char *env_id, const char *worker_id, int64_t now_mono)
{
	size_t wlen = strnlen(worker_id, SEEN_WORKER_ID_MAX);
	uint64_t h = fnv(worker_id, wlen);
	pthread_mutex_lock(&s->lock);
	struct seen_env **slot = env_slot(s, env_id), *e = *slot;
	if (!e) {
		if (!(e = calloc(1, sizeof(*e))))
			goto out;
		snprintf(e->env_id, sizeof(e->env_id), "%s", env_id);
		*slot = e;
	}
	size_t stale = e->n;
	for (size_t i = 0; i < e->n; i++) {
		struct seen_worker *w = &e->workers[i];
		if (w->hash == h && strncmp(w->id, worker_id, wlen) == 0 && w->id[wlen] == '\0') {
			w->last_mono = now_mono;
			w->dirty = 1;
			goto out;
		}
		if (stale == e->n && now_mono - w->last_mono >= SEEN_WINDOW_US)
			stale = i;
	}
	struct seen_worker *w;
	if (stale < e->n) {
		w = &e->workers[stale]; /* reuse one of this environment's stale entries */
	} else if (e->n >= SEEN_PER_ENV_MAX) {
		w = &e->workers[oldest(e)]; /* this environment's bound: replace its own oldest */
	} else {
		if (s->total >= s->max_total)
			make_room(s, now_mono, e);
		if (s->total >= s->max_total)
			goto out;
		if (e->n == e->cap) {
			size_t cap = e->cap ? e->cap * 2 : 4;
			struct seen_worker *grown = realloc(e->workers, cap * sizeof(*grown));
			if (!grown)
				goto out;
			e->workers = grown;
			e->cap = cap;
		}
		w = &e->workers[e->n++];
		s->total++;
	}
	w->hash = h;
	w->last_mono = now_mono;
	w->dirty = 1;
	memcpy(w->id, worker_id, wlen);
	w->id[wlen] = '\0';
out:
	if (e && e->n == 0) {
		/* Created above but nothing was added: do not leave an empty record behind. */
		struct seen_env **p = env_slot(s, env_id);
		*p = e->next;
		free(e->workers);
		free(e);
	}
	pthread_mutex_unlock(&s->lock);
}

int64_t seen_count(struct seen *s, const char *env_id, int64_t now_mono)
{
	int64_t n = 0;
	pthread_mutex_lock(&s->lock);
	struct seen_env *e = *env_slot(s, env_id);
	for (size_t i = 0; e && i < e->n; i++)
		if (now_mono - e->workers[i].last_mono < SEEN_WINDOW_US)
			n++;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t seen_take_dirty(struct seen *s, struct seen_row *out, size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t b = 0; b < SEEN_BUCKETS && n < max; b++) {
		for (struct seen_env *e = s->buckets[b]; e && n < max; e = e->next) {
			for (size_t i = 0; i < e->n && n < max; i++) {
				struct seen_worker *w = &e->workers[i];
				if (!w->dirty)
					continue;
				w->dirty = 0;
				memcpy(out[n].env_id, e->env_id, sizeof(out[n].env_id));
				out[n].worker_hash = w->hash;
				out[n].last_mono = w->last_mono;
				n++;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}
