/* seen.h - which workers polled an environment recently (stats' workers_polling).
 *
 * A fixed-size open-addressed table of (environment, worker id) → last poll time, so its
 * memory is bounded whatever the clients send. An entry older than the window can be
 * reused; when the table is full of live entries a new worker is not counted (and a
 * warning is logged once). Thread-safe. */
#ifndef ENVIROND_API_SEEN_H
#define ENVIROND_API_SEEN_H

#include <stddef.h>
#include <stdint.h>

#define SEEN_WINDOW_US (30 * 1000000LL)
#define SEEN_WORKER_ID_MAX 128

struct seen;

struct seen *seen_new(size_t slots);
void seen_free(struct seen *s);
/* Record a poll by worker_id (truncated to SEEN_WORKER_ID_MAX bytes) in env_id at now_mono. */
void seen_touch(struct seen *s, const char *env_id, const char *worker_id, int64_t now_mono);
/* Distinct workers of env_id seen in the window ending at now_mono. */
int64_t seen_count(struct seen *s, const char *env_id, int64_t now_mono);

#endif
