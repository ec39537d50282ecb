/* test_faults.h - the fault rules of test mode (`environd serve --test-mode`): which
 * requests fail on purpose, how, and at what rate.
 *
 * A rule names a route of the route table as "METHOD PATTERN", the pattern as the table
 * writes it (a star for each id segment), "*" for the method or for every route; and a
 * fault: a status (429 or 503 with retry-after, 500), a dropped connection before the handler runs ("drop"), a dropped connection after
 * the handler ran and committed ("drop_after"), or a delay. Each rule fires at its rate
 * from its own PRNG, seeded from the rule set's seed and its position, so one seed gives
 * one sequence of decisions per rule. Rules are tried in order; the first that fires
 * wins. A rule with a count fires that many times at most. All functions are thread-safe.
 * No HTTP here: test_mode.c applies the decision. */
#ifndef ENVIROND_API_TEST_FAULTS_H
#define ENVIROND_API_TEST_FAULTS_H

#include <jansson.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define TEST_FAULTS_MAX 64

enum test_fault_kind { TEST_FAULT_NONE, TEST_FAULT_STATUS, TEST_FAULT_DROP, TEST_FAULT_DROP_AFTER, TEST_FAULT_DELAY };

/* What to do with one request. */
struct test_fault {
	enum test_fault_kind kind;
	int status;        /* TEST_FAULT_STATUS: 429, 500 or 503 */
	int retry_after;   /* seconds, for 429 and 503 */
	int delay_ms;      /* TEST_FAULT_DELAY */
	size_t rule;       /* the rule that fired */
};

struct test_faults;

struct test_faults *test_faults_new(void);
void test_faults_free(struct test_faults *f);

/* Replace the rules with those of `body` ({"rules":[…],"seed":N,"count":N}). `route_known`
 * says whether a method and pattern are a route faults may name. On error the rules are
 * unchanged and eb names the field. */
enum err test_faults_install(struct test_faults *f, const json_t *body,
			     int (*route_known)(const char *method, const char *pattern), struct errbuf *eb);
/* Remove every rule (and its counters). */
void test_faults_clear(struct test_faults *f);
/* Decide the fault of a request to `method` `pattern` (the matched route's). */
void test_faults_decide(struct test_faults *f, const char *method, const char *pattern, struct test_fault *out);
/* {"type":"test_faults","seed":N,"rules":[{…,"matched":N,"fired":N}]} into out. */
void test_faults_encode(struct test_faults *f, struct buf *out);

#endif
