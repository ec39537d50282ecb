/* waiters.c - parked long polls and streams (see waiters.h). */
#include "wait/waiters.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

#define BUCKETS 1024
/* Far longer than a poll's read-claim-park window (milliseconds), so dropping an idle entry
 * can never make a poll miss a wake-up that bumped the dropped entry's sequence. */
#define WAITERS_IDLE_US (120 * 1000000LL)

/* Per-environment state: one per environment polled or woken lately. An entry with no
 * waiters that nobody touched for WAITERS_IDLE_US is dropped by waiters_collect(), so
 * deleted and idle environments do not accumulate. */
struct waiter_env {
	char env_id[WAITER_KEY_MAX];
	uint64_t seq;
	int64_t touched_mono;
	struct waiter *head, *tail;
	struct waiter_env *next_in_bucket;
};

struct waiters {
	pthread_mutex_t lock;
	pthread_cond_t timer;
	struct waiter_env *buckets[BUCKETS];
	struct waiter **heap;
	size_t count, max;
	size_t kind_count[2], kind_max[2];
	struct waiter_hooks hooks;
	int interrupted;
	int closed; /* after waiters_wake_all: nobody parks any more */
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Find or create the entry for env_id; NULL only when out of memory. Lock held. */
static struct waiter_env *env_entry(struct waiters *w, const char *env_id, int create)
{
	uint32_t b = hash(env_id) % BUCKETS;
	for (struct waiter_env *e = w->buckets[b]; e; e = e->next_in_bucket) {
		if (strcmp(e->env_id, env_id) == 0) {
			e->touched_mono = clock_mono_us();
			return e;
		}
	}
	if (!create)
		return NULL;
	struct waiter_env *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->touched_mono = clock_mono_us();
	snprintf(e->env_id, sizeof(e->env_id), "%s", env_id);
	e->next_in_bucket = w->buckets[b];
	w->buckets[b] = e;
	return e;
}

struct waiters *waiters_new(size_t max_polls, size_t max_streams, const struct waiter_hooks *hooks)
{
	struct waiters *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	size_t max_parked = max_polls + max_streams;
	w->kind_max[WAITER_POLL] = max_polls;
	w->kind_max[WAITER_STREAM] = max_streams;
	w->hooks = *hooks;
	w->heap = calloc(max_parked ? max_parked : 1, sizeof(*w->heap));
	if (!w->heap) {
		free(w);
		return NULL;
	}
	w->max = max_parked;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->timer, &attr);
	pthread_condattr_destroy(&attr);
	return w;
}

void waiters_free(struct waiters *w)
{
	if (!w)
		return;
	for (size_t b = 0; b < BUCKETS; b++) {
		struct waiter_env *e = w->buckets[b];
		while (e) {
			struct waiter_env *next = e->next_in_bucket;
			free(e);
			e = next;
		}
	}
	free(w->heap);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->timer);
	free(w);
}

/* --- min-heap on wake_mono ------------------------------------------------------------- */

static void heap_swap(struct waiters *w, size_t a, size_t b)
{
	struct waiter *t = w->heap[a];
	w->heap[a] = w->heap[b];
	w->heap[b] = t;
	w->heap[a]->heap_index = a;
	w->heap[b]->heap_index = b;
}

static void heap_up(struct waiters *w, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (w->heap[parent]->wake_mono <= w->heap[i]->wake_mono)
			break;
		heap_swap(w, parent, i);
		i = parent;
	}
}

static void heap_down(struct waiters *w, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < w->count && w->heap[l]->wake_mono < w->heap[m]->wake_mono)
			m = l;
		if (r < w->count && w->heap[r]->wake_mono < w->heap[m]->wake_mono)
			m = r;
		if (m == i)
			return;
		heap_swap(w, i, m);
		i = m;
	}
}

static void heap_remove(struct waiters *w, size_t i)
{
	w->count--;
	if (i != w->count) {
		w->heap[i] = w->heap[w->count];
		w->heap[i]->heap_index = i;
		heap_down(w, i);
		heap_up(w, i);
	}
}

/* Take a parked waiter out of both structures and resume its request (or hand it to
 * take). Lock held. */
static void unpark_to(struct waiters *w, struct waiter *wt, void (*take)(void *req, void *arg), void *arg)
{
	struct waiter_env *e = wt->env;
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		e->head = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	else
		e->tail = wt->prev;
	wt->prev = wt->next = NULL;
	heap_remove(w, wt->heap_index);
	w->kind_count[wt->kind]--;
	wt->parked = 0;
	if (take)
		take(wt->req, arg);
	else
		w->hooks.resume(wt->req);
}

static void unpark(struct waiters *w, struct waiter *wt) { unpark_to(w, wt, NULL, NULL); }

uint64_t waiters_seq(struct waiters *w, const char *env_id)
{
	pthread_mutex_lock(&w->lock);
	struct waiter_env *e = env_entry(w, env_id, 0);
	uint64_t seq = e ? e->seq : 0;
	pthread_mutex_unlock(&w->lock);
	return seq;
}

int waiters_park(struct waiters *w, struct waiter *wt, uint64_t seen_seq)
{
	pthread_mutex_lock(&w->lock);
	struct waiter_env *e = env_entry(w, wt->env_id, 1);
	int rc = 0;
	if (!e || w->count >= w->max || w->kind_count[wt->kind] >= w->kind_max[wt->kind] || w->closed) {
		rc = -1;
	} else if (e->seq != seen_seq) {
		rc = 1;
	} else {
		wt->env = e;
		wt->prev = e->tail;
		wt->next = NULL;
		if (e->tail)
			e->tail->next = wt;
		else
			e->head = wt;
		e->tail = wt;
		wt->heap_index = w->count;
		w->heap[w->count++] = wt;
		heap_up(w, wt->heap_index);
		wt->parked = 1;
		w->kind_count[wt->kind]++;
		w->hooks.suspend(wt->req);
		if (w->heap[0] == wt)
			pthread_cond_signal(&w->timer); /* the timer may be sleeping past this deadline */
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void waiters_wake(struct waiters *w, const char *env_id, size_t n)
{
	pthread_mutex_lock(&w->lock);
	struct waiter_env *e = env_entry(w, env_id, 1);
	if (e) {
		e->seq++;
		for (size_t woken = 0; e->head && (n == 0 || woken < n); woken++)
			unpark(w, e->head);
	}
	pthread_mutex_unlock(&w->lock);
}

size_t waiters_wake_with(struct waiters *w, const char *env_id, size_t n, void (*take)(void *req, void *arg),
			 void *arg)
{
	size_t taken = 0;
	pthread_mutex_lock(&w->lock);
	struct waiter_env *e = n ? env_entry(w, env_id, 1) : NULL;
	if (e) {
		e->seq++;
		for (; e->head && taken < n; taken++)
			unpark_to(w, e->head, take, arg);
	}
	pthread_mutex_unlock(&w->lock);
	return taken;
}

size_t waiters_expire(struct waiters *w, int64_t now_mono)
{
	size_t n = 0;
	pthread_mutex_lock(&w->lock);
	while (w->count && w->heap[0]->wake_mono <= now_mono) {
		unpark(w, w->heap[0]);
		n++;
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}

void waiters_wake_every(struct waiters *w)
{
	pthread_mutex_lock(&w->lock);
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct waiter_env *e = w->buckets[b]; e; e = e->next_in_bucket)
			e->seq++;
	while (w->count)
		unpark(w, w->heap[0]);
	pthread_mutex_unlock(&w->lock);
}

void waiters_wake_all(struct waiters *w)
{
	pthread_mutex_lock(&w->lock);
	w->closed = 1;
	while (w->count)
		unpark(w, w->heap[0]);
	pthread_mutex_unlock(&w->lock);
}

int64_t waiters_sleep(struct waiters *w, int64_t until_mono)
{
	pthread_mutex_lock(&w->lock);
	int64_t next = w->count ? w->heap[0]->wake_mono : INT64_MAX;
	if (next < until_mono)
		until_mono = next;
	if (!w->interrupted && until_mono > clock_mono_us()) {
		/* The condition variable runs on the real monotonic clock (see waiters_new). */
		struct timespec now_ts;
		clock_gettime(CLOCK_MONOTONIC, &now_ts);
		int64_t wait_us = until_mono - clock_mono_us();
		int64_t ns = now_ts.tv_nsec + (wait_us % 1000000) * 1000;
		struct timespec ts = {now_ts.tv_sec + (time_t)(wait_us / 1000000) + (time_t)(ns / 1000000000),
				      (long)(ns % 1000000000)};
		pthread_cond_timedwait(&w->timer, &w->lock, &ts);
	}
	w->interrupted = 0;
	next = w->count ? w->heap[0]->wake_mono : INT64_MAX;
	pthread_mutex_unlock(&w->lock);
	return next;
}

void waiters_interrupt(struct waiters *w)
{
	pthread_mutex_lock(&w->lock);
	w->interrupted = 1;
	pthread_cond_signal(&w->timer);
	pthread_mutex_unlock(&w->lock);
}

size_t waiters_collect(struct waiters *w, int64_t now_mono)
{
	size_t dropped = 0;
	pthread_mutex_lock(&w->lock);
	for (size_t b = 0; b < BUCKETS; b++) {
		struct waiter_env **link = &w->buckets[b];
		while (*link) {
			struct waiter_env *e = *link;
			if (!e->head && now_mono - e->touched_mono > WAITERS_IDLE_US) {
				*link = e->next_in_bucket;
				free(e);
				dropped++;
			} else {
				link = &e->next_in_bucket;
			}
		}
	}
	pthread_mutex_unlock(&w->lock);
	return dropped;
}

size_t waiters_count(struct waiters *w)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->count;
	pthread_mutex_unlock(&w->lock);
	return n;
}

size_t waiters_count_kind(struct waiters *w, enum waiter_kind kind)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->kind_count[kind];
	pthread_mutex_unlock(&w->lock);
	return n;
}
