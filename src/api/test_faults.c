/* test_faults.c - the fault rules of test mode (see test_faults.h). */
#include "api/test_faults.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "model/fields.h"

#define METHOD_MAX 8
#define PATTERN_MAX 128
#define RETRY_AFTER_MAX 3600
#define DELAY_MS_MAX 60000

struct rule {
	char method[METHOD_MAX];   /* "*" = any */
	char pattern[PATTERN_MAX]; /* "*" = any */
	struct test_fault fault;
	double rate;
	int64_t count;             /* fires at most this many times; 0 = no limit */
	uint64_t prng;
	uint64_t matched, fired;
};

struct test_faults {
	pthread_mutex_t lock;
	struct rule rules[TEST_FAULTS_MAX];
	size_t n;
	int64_t seed;
};

struct test_faults *test_faults_new(void)
{
	struct test_faults *f = calloc(1, sizeof(*f));
	if (f)
		pthread_mutex_init(&f->lock, NULL);
	return f;
}

void test_faults_free(struct test_faults *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* splitmix64: a small PRNG whose whole state is one word, so a rule's sequence depends
 * only on its seed. */
static uint64_t next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double roll(uint64_t *state)
{
	return (double)(next(state) >> 11) * (1.0 / 9007199254740992.0);
}

static const char *const kind_names[] = {"none", "status", "drop", "drop_after", "delay"};

/* An optional integer field in [min, max]; *out keeps its value when absent. */
static enum err int_field(const json_t *obj, const char *key, const char *path, long long min, long long max,
			  long long *out, int *present, struct errbuf *eb)
{
	json_t *v = json_object_get(obj, key);
	*present = v != NULL;
	if (!v)
		return ERR_OK;
	if (!json_is_integer(v))
		return fields_type_error(path, "an integer", v, eb);
	long long n = json_integer_value(v);
	if (n < min || n > max)
		return errf(eb, ERR_INVALID, "%s: must be from %lld to %lld, got %lld", path, min, max, n);
	*out = n;
	return ERR_OK;
}

/* "*" or "METHOD PATTERN" naming a route of the table (METHOD may be "*"). */
static enum err parse_route(const json_t *v, const char *path, int (*route_known)(const char *, const char *),
			    struct rule *r, struct errbuf *eb)
{
	if (!json_is_string(v))
		return fields_type_error(path, "a string (\"METHOD /pattern\" or \"*\")", v, eb);
	const char *s = json_string_value(v);
	if (strcmp(s, "*") == 0) {
		snprintf(r->method, sizeof(r->method), "*");
		snprintf(r->pattern, sizeof(r->pattern), "*");
		return ERR_OK;
	}
	const char *space = strchr(s, ' ');
	size_t mlen = space ? (size_t)(space - s) : 0;
	if (!space || mlen == 0 || mlen >= METHOD_MAX || strlen(space + 1) >= PATTERN_MAX)
		return errf(eb, ERR_INVALID, "%s: expected \"*\" or \"METHOD /pattern\" (e.g. \"GET /v1/environments/*/work/poll\"), got \"%.200s\"",
			    path, s);
	memcpy(r->method, s, mlen);
	r->method[mlen] = '\0';
	snprintf(r->pattern, sizeof(r->pattern), "%s", space + 1);
	if (strcmp(r->method, "*") != 0 && strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0 &&
	    strcmp(r->method, "DELETE") != 0)
		return errf(eb, ERR_INVALID, "%s: method must be GET, POST, DELETE or *, got \"%s\"", path, r->method);
	if (strcmp(r->pattern, "*") != 0 && !route_known(r->method, r->pattern))
		return errf(eb, ERR_INVALID,
			    "%s: \"%.200s\" is not a route of this server that faults may name (test routes never fault)",
			    path, s);
	return ERR_OK;
}

static enum err parse_rule(const json_t *o, size_t i, int (*route_known)(const char *, const char *),
			   long long default_count, struct rule *r, struct errbuf *eb)
{
	char path[64], field[96];
	snprintf(path, sizeof(path), "rules[%zu]", i);
	if (!json_is_object(o))
		return fields_type_error(path, "an object", o, eb);
	static const char *const keys[] = {"route", "fault", "status", "retry_after", "delay_ms", "rate", "count", NULL};
	enum err rc = fields_only(o, path, keys, eb);
	if (rc)
		return rc;
	memset(r, 0, sizeof(*r));
	json_t *route = json_object_get(o, "route");
	snprintf(field, sizeof(field), "%s.route", path);
	if (!route)
		return errf(eb, ERR_INVALID, "%s: is required", field);
	if ((rc = parse_route(route, field, route_known, r, eb)))
		return rc;

	json_t *fault = json_object_get(o, "fault");
	snprintf(field, sizeof(field), "%s.fault", path);
	if (!fault)
		return errf(eb, ERR_INVALID, "%s: is required (status, drop, drop_after or delay)", field);
	if (!json_is_string(fault))
		return fields_type_error(field, "a string", fault, eb);
	const char *kind = json_string_value(fault);
	for (int k = TEST_FAULT_STATUS; k <= TEST_FAULT_DELAY; k++)
		if (strcmp(kind, kind_names[k]) == 0)
			r->fault.kind = (enum test_fault_kind)k;
	if (r->fault.kind == TEST_FAULT_NONE)
		return errf(eb, ERR_INVALID, "%s: must be status, drop, drop_after or delay, got \"%.100s\"", field, kind);

	long long status = 0, retry_after = 1, delay = 0, count = default_count;
	int has_status, has_retry, has_delay, has_count;
	snprintf(field, sizeof(field), "%s.status", path);
	if ((rc = int_field(o, "status", field, 0, 999, &status, &has_status, eb)))
		return rc;
	if (r->fault.kind == TEST_FAULT_STATUS && (!has_status || (status != 429 && status != 500 && status != 503)))
		return errf(eb, ERR_INVALID, "%s: a status fault needs status 429, 500 or 503", field);
	if (r->fault.kind != TEST_FAULT_STATUS && has_status)
		return errf(eb, ERR_INVALID, "%s: only a status fault takes a status", field);
	snprintf(field, sizeof(field), "%s.retry_after", path);
	if ((rc = int_field(o, "retry_after", field, 0, RETRY_AFTER_MAX, &retry_after, &has_retry, eb)))
		return rc;
	if (has_retry && status != 429 && status != 503)
		return errf(eb, ERR_INVALID, "%s: only a status fault of 429 or 503 takes retry_after (seconds)", field);
	snprintf(field, sizeof(field), "%s.delay_ms", path);
	if ((rc = int_field(o, "delay_ms", field, 1, DELAY_MS_MAX, &delay, &has_delay, eb)))
		return rc;
	if ((r->fault.kind == TEST_FAULT_DELAY) != has_delay)
		return errf(eb, ERR_INVALID, "%s: %s", field,
			    has_delay ? "only a delay fault takes delay_ms" : "a delay fault needs delay_ms (1 to 60000)");
	snprintf(field, sizeof(field), "%s.count", path);
	if ((rc = int_field(o, "count", field, 1, 1000000000LL, &count, &has_count, eb)))
		return rc;

	r->rate = 1.0;
	json_t *rate = json_object_get(o, "rate");
	snprintf(field, sizeof(field), "%s.rate", path);
	if (rate) {
		if (!json_is_number(rate))
			return fields_type_error(field, "a number from 0 to 1", rate, eb);
		r->rate = json_number_value(rate);
		if (!(r->rate >= 0.0 && r->rate <= 1.0))
			return errf(eb, ERR_INVALID, "%s: must be from 0 to 1", field);
	}
	r->fault.status = (int)status;
	r->fault.retry_after = (int)retry_after;
	r->fault.delay_ms = (int)delay;
	r->fault.rule = i;
	r->count = count;
	return ERR_OK;
}

enum err test_faults_install(struct test_faults *f, const json_t *body,
			     int (*route_known)(const char *method, const char *pattern), struct errbuf *eb)
{
	static const char *const keys[] = {"rules", "seed", "count", NULL};
	enum err rc = fields_only(body, "", keys, eb);
	if (rc)
		return rc;
	long long seed = 0, count = 0;
	int present;
	if ((rc = int_field(body, "seed", "seed", 0, INT64_MAX, &seed, &present, eb)) ||
	    (rc = int_field(body, "count", "count", 1, 1000000000LL, &count, &present, eb)))
		return rc;
	json_t *rules = json_object_get(body, "rules");
	if (!rules)
		return errf(eb, ERR_INVALID, "rules: is required (an array of up to %d rules)", TEST_FAULTS_MAX);
	if (!json_is_array(rules))
		return fields_type_error("rules", "an array", rules, eb);
	if (json_array_size(rules) > TEST_FAULTS_MAX)
		return errf(eb, ERR_INVALID, "rules: at most %d rules, got %zu", TEST_FAULTS_MAX, json_array_size(rules));
	struct rule *parsed = calloc(TEST_FAULTS_MAX, sizeof(*parsed));
	if (!parsed)
		return errf(eb, ERR_NOMEM, "out of memory");
	size_t n = json_array_size(rules);
	for (size_t i = 0; i < n; i++) {
		if ((rc = parse_rule(json_array_get(rules, i), i, route_known, count, &parsed[i], eb))) {
			free(parsed);
			return rc;
		}
		/* Distinct, seed-determined starting points, one per rule. */
		uint64_t state = (uint64_t)seed ^ ((uint64_t)(i + 1) * 0xd1b54a32d192ed03ULL);
		parsed[i].prng = next(&state);
	}
	pthread_mutex_lock(&f->lock);
	memcpy(f->rules, parsed, n * sizeof(*parsed));
	f->n = n;
	f->seed = seed;
	pthread_mutex_unlock(&f->lock);
	free(parsed);
	return ERR_OK;
}

void test_faults_clear(struct test_faults *f)
{
	pthread_mutex_lock(&f->lock);
	f->n = 0;
	f->seed = 0;
	memset(f->rules, 0, sizeof(f->rules));
	pthread_mutex_unlock(&f->lock);
}

static int matches(const struct rule *r, const char *method, const char *pattern)
{
	return (strcmp(r->method, "*") == 0 || strcmp(r->method, method) == 0) &&
	       (strcmp(r->pattern, "*") == 0 || strcmp(r->pattern, pattern) == 0);
}

void test_faults_decide(struct test_faults *f, const char *method, const char *pattern, struct test_fault *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		struct rule *r = &f->rules[i];
		if (!matches(r, method, pattern) || (r->count && (int64_t)r->fired >= r->count))
			continue;
		r->matched++;
		if (roll(&r->prng) < r->rate) {
			r->fired++;
			*out = r->fault;
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
}

void test_faults_encode(struct test_faults *f, struct buf *out)
{
	struct jsonw w;
	jsonw_init(&w, out);
	pthread_mutex_lock(&f->lock);
	jsonw_obj_open(&w);
	jsonw_key(&w, "type");
	jsonw_str(&w, "test_faults");
	jsonw_key(&w, "seed");
	jsonw_i64(&w, f->seed);
	jsonw_key(&w, "rules");
	jsonw_arr_open(&w);
	for (size_t i = 0; i < f->n; i++) {
		const struct rule *r = &f->rules[i];
		char route[METHOD_MAX + PATTERN_MAX + 2];
		if (strcmp(r->method, "*") == 0 && strcmp(r->pattern, "*") == 0)
			snprintf(route, sizeof(route), "*");
		else
			snprintf(route, sizeof(route), "%s %s", r->method, r->pattern);
		jsonw_obj_open(&w);
		jsonw_key(&w, "route");
		jsonw_str(&w, route);
		jsonw_key(&w, "fault");
		jsonw_str(&w, kind_names[r->fault.kind]);
		if (r->fault.kind == TEST_FAULT_STATUS) {
			jsonw_key(&w, "status");
			jsonw_i64(&w, r->fault.status);
			if (r->fault.status != 500) {
				jsonw_key(&w, "retry_after");
				jsonw_i64(&w, r->fault.retry_after);
			}
		}
		if (r->fault.kind == TEST_FAULT_DELAY) {
			jsonw_key(&w, "delay_ms");
			jsonw_i64(&w, r->fault.delay_ms);
		}
		char rate[32];
		int len = snprintf(rate, sizeof(rate), "%.15g", r->rate);
		jsonw_key(&w, "rate");
		jsonw_raw(&w, rate, (size_t)len);
		jsonw_key(&w, "count");
		if (r->count)
			jsonw_i64(&w, r->count);
		else
			jsonw_null(&w);
		jsonw_key(&w, "matched");
		jsonw_i64(&w, (int64_t)r->matched);
		jsonw_key(&w, "fired");
		jsonw_i64(&w, (int64_t)r->fired);
		jsonw_obj_close(&w);
	}
	jsonw_arr_close(&w);
	jsonw_obj_close(&w);
	pthread_mutex_unlock(&f->lock);
}
