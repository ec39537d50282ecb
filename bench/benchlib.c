/* benchlib.c - shared helpers of the bench/ load generators (see benchlib.h). */
#include "benchlib.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const char *program = "bench";

void bench_set_program(const char *name)
{
	program = name;
}

int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double bench_cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", program);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void bench_format(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		bench_die("internal: %zu-byte buffer too small for \"%.40s...\"", size, fmt);
}

long bench_parse_long(const char *name, const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		bench_die("%s: expected an integer in %ld..%ld, got '%s'", name, min, max, s);
	return v;
}

double bench_parse_double(const char *name, const char *s, double min, double max)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		bench_die("%s: expected a number in %g..%g, got '%s'", name, min, max, s);
	return v;
}

struct bench_item *bench_item_at(struct bench_items *t, uint64_t seq)
{
	if (seq >= BENCH_ITEMS_MAX)
		bench_die("more than %u items: run shorter", BENCH_ITEMS_MAX);
	if (seq >= t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap <= seq)
			cap *= 2;
		struct bench_item *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			bench_die("out of memory for %zu item records", cap);
		memset(v + t->cap, 0, (cap - t->cap) * sizeof(*v));
		t->v = v;
		t->cap = cap;
	}
	return &t->v[seq];
}

void bench_items_free(struct bench_items *t)
{
	free(t->v);
	t->v = NULL;
	t->cap = 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double pct_us(const int64_t *sorted, size_t n, double p)
{
	if (!n)
		return NAN;
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	return (double)sorted[rank - 1] / 1000.0;
}

void bench_summarize(const struct bench_items *t, uint64_t count, int64_t t_from, int64_t t_last,
		     struct bench_result *res)
{
	size_t n = 0;
	for (uint64_t s = 0; s < count; s++)
		if (t->v[s].stop_done > t_from)
			n++;
	size_t bytes = (n ? n : 1) * sizeof(int64_t);
	int64_t *wake = malloc(bytes), *after = malloc(bytes), *enq = malloc(bytes), *cyc = malloc(bytes);
	if (!wake || !after || !enq || !cyc)
		bench_die("out of memory for the summary");
	size_t k = 0;
	for (uint64_t s = 0; s < count && k < n; s++) {
		const struct bench_item *it = &t->v[s];
		if (it->stop_done <= t_from)
			continue;
		wake[k] = it->poll_done - it->enq_start;
		after[k] = it->poll_done - it->enq_done;
		enq[k] = it->enq_done - it->enq_start;
		cyc[k] = it->stop_done - it->poll_done;
		k++;
	}
	qsort(wake, k, sizeof(int64_t), cmp_i64);
	qsort(after, k, sizeof(int64_t), cmp_i64);
	qsort(enq, k, sizeof(int64_t), cmp_i64);
	qsort(cyc, k, sizeof(int64_t), cmp_i64);
	res->items = k;
	res->seconds = (double)(t_last - t_from) / 1e9;
	res->items_per_s = res->seconds > 0 ? (double)k / res->seconds : 0;
	res->wake_p50 = pct_us(wake, k, 50);
	res->wake_p99 = pct_us(wake, k, 99);
	res->after_p50 = pct_us(after, k, 50);
	res->after_p99 = pct_us(after, k, 99);
	res->enqueue_p50 = pct_us(enq, k, 50);
	res->enqueue_p99 = pct_us(enq, k, 99);
	res->cycle_p50 = pct_us(cyc, k, 50);
	free(wake);
	free(after);
	free(enq);
	free(cyc);
}

void bench_report(const char *system, long workers, const struct bench_result *res, uint64_t empty_polls,
		  uint64_t connects, bool json)
{
	const char *fmt = json
		? "{\"system\":\"%s\",\"workers\":%ld,\"items\":%" PRIu64 ",\"seconds\":%.3f,"
		  "\"items_per_s\":%.1f,\"wake_p50_us\":%.1f,\"wake_p99_us\":%.1f,\"after_201_p50_us\":%.1f,"
		  "\"after_201_p99_us\":%.1f,\"enqueue_p50_us\":%.1f,\"enqueue_p99_us\":%.1f,"
		  "\"cycle_p50_us\":%.1f,\"client_cpu_pct\":%.0f,\"empty_polls\":%" PRIu64 ",\"connects\":%" PRIu64
		  ",\"warmup\":%ld}\n"
		: "system=%s workers=%ld items=%" PRIu64 " seconds=%.3f items_per_s=%.1f wake_p50_us=%.1f "
		  "wake_p99_us=%.1f after_201_p50_us=%.1f after_201_p99_us=%.1f enqueue_p50_us=%.1f "
		  "enqueue_p99_us=%.1f cycle_p50_us=%.1f client_cpu_pct=%.0f empty_polls=%" PRIu64
		  " connects=%" PRIu64 " warmup=%ld\n";
	printf(fmt, system, workers, res->items, res->seconds, res->items_per_s, res->wake_p50, res->wake_p99,
	       res->after_p50, res->after_p99, res->enqueue_p50, res->enqueue_p99, res->cycle_p50,
	       res->client_cpu_pct, empty_polls, connects, res->warmup);
	fflush(stdout);
}

int64_t bench_measure_from(const struct bench_progress *p, long warmup, struct bench_result *res)
{
	if (!p->completed)
		bench_die("no item completed");
	if (warmup && p->completed > (uint64_t)warmup) {
		res->warmup = warmup;
		return p->t_warm;
	}
	if (warmup)
		fprintf(stderr, "%s: only %" PRIu64 " items completed, not more than --warmup %ld: the figures include them all\n",
			program, p->completed, warmup);
	res->warmup = 0;
	return p->t_start;
}

void bench_check_run_options(long items, double *seconds, long warmup, long hold_ms, long block_ms, double *timeout)
{
	if (items && *seconds)
		bench_die("--items and --seconds are exclusive");
	if (!items && !*seconds)
		*seconds = 5;
	if (items && warmup >= items)
		bench_die("--warmup (%ld) must be smaller than --items (%ld)", warmup, items);
	if (hold_ms && hold_ms >= block_ms)
		bench_die("--hold-ms must be shorter than --block-ms");
	if (!*timeout)
		*timeout = *seconds ? *seconds + 30 : 300;
}

void bench_bounds_init(struct bench_bounds *b, const struct bench_progress *p, double seconds, double timeout)
{
	b->timeout = timeout;
	b->deadline = p->t_start + (int64_t)(timeout * 1e9);
	b->enqueue_until = seconds ? p->t_start + (int64_t)(seconds * 1e9) : INT64_MAX;
}

void bench_bounds_check(const struct bench_bounds *b, struct bench_progress *p, int64_t now)
{
	if (now >= b->deadline)
		bench_die("timed out after %.0f s: %" PRIu64 " items enqueued, %" PRIu64 " delivered, %" PRIu64 " done",
			  b->timeout, p->enqueued, p->delivered, p->completed);
	if (now >= b->enqueue_until)
		p->enqueue_closed = true;
}

void bench_finish(const struct bench_items *records, uint64_t count, const struct bench_progress *p, long warmup,
		  double cpu_start, bool no_wake, const char *system, long workers, uint64_t connects, bool json)
{
	double cpu_used = bench_cpu_seconds() - cpu_start;
	double wall = (double)(bench_now_ns() - p->t_start) / 1e9;
	struct bench_result res;
	int64_t from = bench_measure_from(p, warmup, &res);
	bench_summarize(records, count, from, p->t_last_done, &res);
	if (no_wake)
		res.wake_p50 = res.wake_p99 = res.after_p50 = res.after_p99 = res.enqueue_p50 = res.enqueue_p99 = NAN;
	res.client_cpu_pct = wall > 0 ? 100.0 * cpu_used / wall : 0;
	bench_report(system, workers, &res, p->empty_polls, connects, json);
}

bool bench_take_pending(struct bench_progress *p, unsigned *pending, long items_limit)
{
	while (*pending) {
		(*pending)--;
		if (bench_may_enqueue(p, items_limit))
			return true;
	}
	return false;
}

bool bench_hold_due(int64_t *at, int64_t now, int64_t *until)
{
	if (!*at)
		return false;
	if (*at <= now) {
		*at = 0;
		return true;
	}
	if (*at < *until)
		*until = *at;
	return false;
}

bool bench_may_enqueue(struct bench_progress *p, long items_limit)
{
	if (p->enqueue_closed)
		return false;
	if (items_limit && p->enqueued >= (uint64_t)items_limit) {
		p->enqueue_closed = true;
		return false;
	}
	return true;
}
