/* benchlib.h - what the load generators in bench/ share: the clock, fatal errors,
 * bounded formatting, option parsing, and the per-item timing table that turns into
 * one result line. loadgen.c (environd) and anchor_beanstalkd.c (beanstalkd) both
 * report through bench_report(), so their figures mean exactly the same thing.
 */
#ifndef BENCHLIB_H
#define BENCHLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_ITEMS_MAX 50000000u

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/* User + system CPU time this process has used, in seconds. */
double bench_cpu_seconds(void);

/* Prints "PROGRAM: message" to stderr and exits 1. */
void bench_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void bench_set_program(const char *name);

/* snprintf that exits instead of truncating: every buffer in bench/ is bounded. */
void bench_format(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

long bench_parse_long(const char *name, const char *s, long min, long max);
double bench_parse_double(const char *name, const char *s, double min, double max);

/* One record per enqueued item, indexed by its sequence number; 0 = not yet. */
struct bench_item {
	int64_t enq_start; /* enqueue (put) request written */
	int64_t enq_done;  /* enqueue answered */
	int64_t poll_done; /* a worker's poll (reserve) answered with this item */
	int64_t stop_done; /* the item's last call (stop, delete) answered */
};

/* Grows on demand up to BENCH_ITEMS_MAX records; owns its array (bench_items_free). */
struct bench_items {
	struct bench_item *v;
	size_t cap;
};

struct bench_item *bench_item_at(struct bench_items *t, uint64_t seq);
void bench_items_free(struct bench_items *t);

/* Where a closed-loop run stands; both generators keep one. */
struct bench_progress {
	uint64_t enqueued;  /* enqueue requests issued = next sequence number */
	uint64_t delivered; /* items received by a poll (reserve) */
	uint64_t completed; /* items whose last call was answered */
	uint64_t empty_polls;
	bool enqueue_closed; /* the item limit was reached: no more enqueues */
	int64_t t_start, t_warm, t_last_done;
};

/* The run-length options every generator takes: --items and --seconds are exclusive (5 s
 * when neither is given), --warmup is below --items, --hold-ms below --block-ms (0 = no
 * hold), and --timeout defaults to seconds + 30 (or 300 with --items). Exits on a conflict. */
void bench_check_run_options(long items, double *seconds, long warmup, long hold_ms, long block_ms, double *timeout);

/* The closed loop's time bounds, from p->t_start: the hard --timeout, and when enqueueing
 * stops (--seconds; never with --items). */
struct bench_bounds {
	double timeout;
	int64_t deadline, enqueue_until;
};
void bench_bounds_init(struct bench_bounds *b, const struct bench_progress *p, double seconds, double timeout);

/* Called on each turn of the loop: exits past the deadline (saying how far the run got),
 * closes enqueueing past --seconds. */
void bench_bounds_check(const struct bench_bounds *b, struct bench_progress *p, int64_t now);

/* After the loop: summarises records[0, count), the generator's CPU since cpu_start, and
 * prints the result line. `no_wake`: the items were not enqueued by this run, so the wake
 * and enqueue figures are not reported (nan). */
void bench_finish(const struct bench_items *records, uint64_t count, const struct bench_progress *p, long warmup,
		  double cpu_start, bool no_wake, const char *system, long workers, uint64_t connects, bool json);

/* A worker's producer is free again: should it write one of the `*pending` enqueues its
 * cycles asked for while it was busy? Drops those that may no longer be enqueued. */
bool bench_take_pending(struct bench_progress *p, unsigned *pending, long items_limit);

/* --hold-ms: is the enqueue scheduled at *at (0 = none) due at `now`? If so, clears it and
 * returns true; if not yet, lowers *until to it. */
bool bench_hold_due(int64_t *at, int64_t now, int64_t *until);

/* May another item be enqueued? Closes enqueueing once `items_limit` (0 = none) were issued. */
bool bench_may_enqueue(struct bench_progress *p, long items_limit);

struct bench_result {
	uint64_t items;
	double seconds, items_per_s;
	double wake_p50, wake_p99, after_p50, after_p99, enqueue_p50, enqueue_p99, cycle_p50;
	double client_cpu_pct; /* the generator's own CPU use over the run: near 100 = it is the bottleneck */
	long warmup;           /* completed items actually left out (0 when too few completed) */
};

/* Where the figures start: after the first `warmup` completed items, or, when no more than
 * that many completed (a very slow run), at the start, with a warning on stderr, so that a
 * slow system still gets figures rather than none. Sets res->warmup. Exits if none completed. */
int64_t bench_measure_from(const struct bench_progress *p, long warmup, struct bench_result *res);

/* Figures over the items that completed after t_from, up to t_last (both monotonic ns). */
void bench_summarize(const struct bench_items *t, uint64_t count, int64_t t_from, int64_t t_last,
		     struct bench_result *res);

/* Prints one line (key=value, or one JSON object). */
void bench_report(const char *system, long workers, const struct bench_result *res, uint64_t empty_polls,
		  uint64_t connects, bool json);

#endif
