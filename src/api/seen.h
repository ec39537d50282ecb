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

#define SEEN_WINDOW_US (30 * 1000000LL)
#define SEEN_WORKER_ID_MAX 128
#define SEEN_PER_ENV_MAX 4096
/* How often a node of a fleet tells the others that a worker still polls it: well inside
 * the window, so that a worker polling one node stays counted on every node. */
#define SEEN_SHARE_US (10 * 1000000LL)

struct seen;

/* A table of at most max_total worker ids. NULL when out of memory. */
struct seen *seen_new(size_t max_total);
void seen_free(struct seen *s);
/* Record a poll by worker_id (truncated to SEEN_WORKER_ID_MAX bytes) in env_id at now_mono.
 * Returns 1 when the other nodes of a fleet should hear of it (the id is new here, or was
 * last shared SEEN_SHARE_US ago or more), else 0. */
int seen_touch(struct seen *s, const char *env_id, const char *worker_id, int64_t now_mono);
/* Another node's report of such a poll: counted alike, and not shared again. */
void seen_touch_shared(struct seen *s, const char *env_id, const char *worker_id, int64_t now_mono);
/* Distinct workers of env_id seen in the window ending at now_mono. */
int64_t seen_count(struct seen *s, const char *env_id, int64_t now_mono);

#endif
