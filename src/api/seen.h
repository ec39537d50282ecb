/* seen.h - which workers polled an environment recently (stats' workers_polling).
 *
 * Worker ids are kept per environment: at most SEEN_PER_ENV_MAX of one environment (a new
 * id beyond that replaces that environment's least recently seen one), and at most
 * `max_total` over all environments. When the whole table is full, room is made by first
 * dropping entries older than the window, then the least recently seen id of the
 * environment that holds the most ids, so ids sent to one environment never push
 * another, smaller one's out. Memory is bounded whatever the clients send. Thread-safe. */
#ifndef ENVIROND_API_SEEN_H
#define ENVIROND_API_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"

#define SEEN_WINDOW_US (30 * 1000000LL)
#define SEEN_WORKER_ID_MAX 128
#define SEEN_PER_ENV_MAX 4096

struct seen;

/* A table of at most max_total worker ids. NULL when out of memory. */
struct seen *seen_new(size_t max_total);
void seen_free(struct seen *s);
/* Record a poll by worker_id (truncated to SEEN_WORKER_ID_MAX bytes) in env_id at now_mono. */
void seen_touch(struct seen *s, const char *env_id, const char *worker_id, int64_t now_mono);
/* Distinct workers of env_id seen in the window ending at now_mono. */
int64_t seen_count(struct seen *s, const char *env_id, int64_t now_mono);

/* A worker seen since the last take: for a fleet, where every node writes what it saw
 * to the store in batches and the stats count what all of them wrote. */
struct seen_row {
	char env_id[ID_MAX];
	uint64_t worker_hash; /* the id's 64-bit FNV-1a hash: the id itself never leaves */
	int64_t last_mono;
};
/* Up to max workers seen since their last take, each handed out once per sighting. */
size_t seen_take_dirty(struct seen *s, struct seen_row *out, size_t max);

#endif
