/* test_router.c - unit tests of route table matching (src/http/router.c).
 *
 * A small table shaped like the real one (rows carry extra fields, so the stride is not
 * sizeof(struct route)): literal segments beat "*" whatever the row order (SPEC §1: poll
 * and stats win over {work_id}), unknown paths and malformed ones are 404, a known path
 * with the wrong method is 405 with the path's methods in Allow, and the "*" segments come
 * back as parameters, in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http/router.h"

struct row {
	struct route r;
	int tag;
};

/* Wildcard rows come before the literal rows they compete with, to show order does not
 * matter; test_order_independent runs the same cases on the table reversed. */
static const struct row table[] = {
	{{"GET", "/v1/environments"}, 0},
	{{"POST", "/v1/environments"}, 1},
	{{"GET", "/v1/environments/*"}, 2},
	{{"POST", "/v1/environments/*"}, 3},
	{{"DELETE", "/v1/environments/*"}, 4},
	{{"GET", "/v1/environments/*/work/*"}, 5},
	{{"POST", "/v1/environments/*/work/*"}, 6},
	{{"GET", "/v1/environments/*/work/poll"}, 7},
	{{"GET", "/v1/environments/*/work/stats"}, 8},
	{{"POST", "/v1/environments/*/work/*/stop"}, 9},
	{{"POST", "/v1/environments/*/archive"}, 10},
	{{"GET", "/x/*/y"}, 11},
	{{"GET", "/x/y/*"}, 12},
	{{"GET", "/a/b/c/d/e/f/g/h"}, 13},
	{{"GET", "/a/*/*/*/*/*/*/*"}, 14},
	{{"GET", "/healthz"}, 15},
};
#define NROWS (sizeof(table) / sizeof(table[0]))

static struct row reversed[NROWS];
static const struct row *current = table;

static int setup(void **state)
{
	for (size_t i = 0; i < NROWS; i++)
		reversed[i] = table[NROWS - 1 - i];
	return 0;
}

static enum router_result match(const char *method, const char *path, struct route_match *m)
{
	memset(m, 0x5a, sizeof(*m));
	return router_match(current, NROWS, sizeof(struct row), method, path, m);
}

/* path must resolve to the row tagged `tag`, with the given parameters. */
static void check_found(int line, const char *method, const char *path, int tag, size_t nparams, const char *p0,
			const char *p1)
{
	struct route_match m;
	enum router_result rc = match(method, path, &m);
	if (rc != ROUTER_FOUND)
		fail_msg("line %d: %s %s: result %d, want found", line, method, path, rc);
	if (current[m.index].tag != tag)
		fail_msg("line %d: %s %s matched %s %s, want tag %d", line, method, path, current[m.index].r.method,
			 current[m.index].r.pattern, tag);
	assert_int_equal(nparams, m.nparams);
	if (nparams > 0)
		assert_string_equal(p0, m.params[0]);
	if (nparams > 1)
		assert_string_equal(p1, m.params[1]);
}
#define assert_found(method, path, tag, n, p0, p1) check_found(__LINE__, method, path, tag, n, p0, p1)

static void check_not_found(int line, const char *method, const char *path)
{
	struct route_match m;
	enum router_result rc = match(method, path, &m);
	if (rc != ROUTER_NOT_FOUND)
		fail_msg("line %d: %s \"%s\": result %d, want not found", line, method, path, rc);
	assert_int_equal(0, m.nparams);
}
#define assert_not_found(method, path) check_not_found(__LINE__, method, path)

static void check_not_allowed(int line, const char *method, const char *path, const char *allow)
{
	struct route_match m;
	enum router_result rc = match(method, path, &m);
	if (rc != ROUTER_METHOD_NOT_ALLOWED)
		fail_msg("line %d: %s %s: result %d, want 405", line, method, path, rc);
	if (strcmp(allow, m.allow) != 0)
		fail_msg("line %d: %s %s: Allow \"%s\", want \"%s\"", line, method, path, m.allow, allow);
}
#define assert_not_allowed(method, path, allow) check_not_allowed(__LINE__, method, path, allow)

static void found_cases(void)
{
	assert_found("GET", "/v1/environments", 0, 0, NULL, NULL);
	assert_found("POST", "/v1/environments", 1, 0, NULL, NULL);
	assert_found("GET", "/v1/environments/env_1", 2, 1, "env_1", NULL);
	assert_found("POST", "/v1/environments/env_1", 3, 1, "env_1", NULL);
	assert_found("DELETE", "/v1/environments/env_1", 4, 1, "env_1", NULL);
	assert_found("POST", "/v1/environments/env_1/archive", 10, 1, "env_1", NULL);
	assert_found("GET", "/healthz", 15, 0, NULL, NULL);
	/* Literal beats wildcard. */
	assert_found("GET", "/v1/environments/env_1/work/poll", 7, 1, "env_1", NULL);
	assert_found("GET", "/v1/environments/env_1/work/stats", 8, 1, "env_1", NULL);
	assert_found("GET", "/v1/environments/env_1/work/work_2", 5, 2, "env_1", "work_2");
	assert_found("POST", "/v1/environments/env_1/work/work_2", 6, 2, "env_1", "work_2");
	/* Only a whole segment is a literal: near misses are ids. */
	assert_found("GET", "/v1/environments/env_1/work/polls", 5, 2, "env_1", "polls");
	assert_found("GET", "/v1/environments/env_1/work/Poll", 5, 2, "env_1", "Poll");
	assert_found("GET", "/v1/environments/env_1/work/pol", 5, 2, "env_1", "pol");
	assert_found("POST", "/v1/environments/e/work/poll/stop", 9, 2, "e", "poll");
	/* A literal in an earlier position wins over one in a later position. */
	assert_found("GET", "/x/y/y", 12, 1, "y", NULL);
	assert_found("GET", "/x/z/y", 11, 1, "z", NULL);
	assert_found("GET", "/x/y/z", 12, 1, "z", NULL);
	/* The most segments a path may have; all literal beats all wildcards. */
	assert_found("GET", "/a/b/c/d/e/f/g/h", 13, 0, NULL, NULL);
	assert_found("GET", "/a/b/c/d/e/f/g/i", 14, ROUTER_MAX_PARAMS, "b", "c");
	/* The raw path is split first, then each segment decoded: "%2F" stays inside its
	 * parameter (SPEC §1), and a decoded literal still matches. */
	assert_found("GET", "/v1/environments/env%2F1", 2, 1, "env/1", NULL);
	assert_found("GET", "/v1/environments/env%2F1%2Fwork%2Fpoll", 2, 1, "env/1/work/poll", NULL);
	assert_found("GET", "/v1/environments/e%2fx/work/poll", 7, 1, "e/x", NULL);
	assert_found("GET", "/v1/%65nvironments/e", 2, 1, "e", NULL);
	assert_found("GET", "/v1/environments/a.b-c_d~", 2, 1, "a.b-c_d~", NULL);
	assert_found("GET", "/v1/environments/%F0%9F%9A%80%C3%A9", 2, 1, "\xF0\x9F\x9A\x80\xC3\xA9", NULL);
}

static void test_found(void **state)
{
	current = table;
	found_cases();
}

static void test_all_params(void **state)
{
	struct route_match m;
	current = table;
	assert_int_equal(ROUTER_FOUND, match("GET", "/a/1/2/3/4/5/6/7", &m));
	assert_int_equal(14, current[m.index].tag);
	/* Seven wildcards, but at most ROUTER_MAX_PARAMS are kept, the first ones. */
	assert_int_equal(ROUTER_MAX_PARAMS, m.nparams);
	for (size_t i = 0; i < ROUTER_MAX_PARAMS; i++) {
		char want[24];
		snprintf(want, sizeof(want), "%zu", i + 1);
		assert_string_equal(want, m.params[i]);
	}
}

static void test_long_segment(void **state)
{
	char path[600];
	current = table;
	/* ROUTER_PARAM_MAX - 1 characters fit, with the NUL. */
	memcpy(path, "/v1/environments/", 17);
	memset(path + 17, 'e', ROUTER_PARAM_MAX - 1);
	path[17 + ROUTER_PARAM_MAX - 1] = '\0';
	struct route_match m;
	assert_int_equal(ROUTER_FOUND, match("GET", path, &m));
	assert_int_equal(ROUTER_PARAM_MAX - 1, strlen(m.params[0]));
	/* One more does not. */
	path[17 + ROUTER_PARAM_MAX - 1] = 'e';
	path[17 + ROUTER_PARAM_MAX] = '\0';
	assert_not_found("GET", path);
}

static void not_found_cases(void)
{
	assert_not_found("GET", "/v2/environments");
	/* A NUL would cut an id short; a broken escape means nothing. */
	assert_not_found("GET", "/v1/environments/env_a%00x");
	assert_not_found("GET", "/v1/environments/env%2");
	assert_not_found("GET", "/v1/environments/env%zz");
	assert_not_found("GET", "/v1/environments/%");
	/* Bytes that are not UTF-8 name nothing; UTF-8 passes through to the handler. */
	assert_not_found("GET", "/v1/environments/%ff");
	assert_not_found("GET", "/v1/environments/env_%C0%AF");
	assert_not_found("GET", "/v1/environments/%ED%A0%80");
	assert_not_found("GET", "/v1/environments/%F4%90%80%80");
	assert_not_found("GET", "/v1/environments/env_%E2%82");
	assert_not_found("GET", "/v1/env");
	assert_not_found("GET", "/v1/Environments");
	assert_not_found("GET", "/v1");
	assert_not_found("GET", "/v1/environments/e/unknown");
	assert_not_found("GET", "/v1/environments/e/work");
	assert_not_found("GET", "/v1/environments/e/work/w/stop/more");
	assert_not_found("GET", "/healthz/x");
	assert_not_found("GET", "/x/z/z");
	/* Malformed paths. */
	assert_not_found("GET", "");
	assert_not_found("GET", "/");
	assert_not_found("GET", "v1/environments");
	assert_not_found("GET", "*");
	/* Empty segments. */
	assert_not_found("GET", "/v1/environments/");
	assert_not_found("GET", "//v1/environments");
	assert_not_found("GET", "/v1//environments");
	assert_not_found("GET", "/v1/environments//work/poll");
	assert_not_found("GET", "/v1/environments/e/work/");
	assert_not_found("POST", "/v1/environments/e/work//stop");
	/* Too many segments, even where a prefix would match. */
	assert_not_found("GET", "/a/b/c/d/e/f/g/h/i");
	assert_not_found("GET", "/a/b/c/d/e/f/g/h/");
	assert_not_found("GET", "/v1/environments/e/work/w/stop/a/b/c/d/e/f");
	/* Unknown paths are 404 whatever the method. */
	assert_not_found("PATCH", "/nowhere");
	assert_not_found("", "/nowhere");
}

static void test_not_found(void **state)
{
	current = table;
	not_found_cases();
}

static void not_allowed_cases(void)
{
	assert_not_allowed("PUT", "/v1/environments", "GET, POST");
	assert_not_allowed("DELETE", "/v1/environments", "GET, POST");
	assert_not_allowed("PATCH", "/v1/environments/env_1", "GET, POST, DELETE");
	assert_not_allowed("get", "/v1/environments/env_1", "GET, POST, DELETE");
	assert_not_allowed("", "/v1/environments/env_1", "GET, POST, DELETE");
	assert_not_allowed("GET", "/v1/environments/env_1/archive", "POST");
	/* The literal route decides: POST .../work/poll is not an update of item "poll". */
	assert_not_allowed("POST", "/v1/environments/env_1/work/poll", "GET");
	assert_not_allowed("DELETE", "/v1/environments/env_1/work/stats", "GET");
	assert_not_allowed("DELETE", "/v1/environments/env_1/work/w", "GET, POST");
	assert_not_allowed("GET", "/v1/environments/e/work/w/stop", "POST");
	assert_not_allowed("POST", "/healthz", "GET");
}

static void test_not_allowed(void **state)
{
	current = table;
	not_allowed_cases();
	/* No parameters are reported on a 405. */
	struct route_match m;
	assert_int_equal(ROUTER_METHOD_NOT_ALLOWED, match("PUT", "/v1/environments/env_1", &m));
	assert_int_equal(0, m.nparams);
}

/* Row order changes nothing but the order of the Allow list, which follows the table. */
static void test_order_independent(void **state)
{
	current = reversed;
	found_cases();
	not_found_cases();
	assert_not_allowed("PUT", "/v1/environments", "POST, GET");
	assert_not_allowed("PATCH", "/v1/environments/env_1", "DELETE, POST, GET");
	assert_not_allowed("POST", "/v1/environments/env_1/work/poll", "GET");
	current = table;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found),
		cmocka_unit_test(test_all_params),
		cmocka_unit_test(test_long_segment),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_not_allowed),
		cmocka_unit_test(test_order_independent),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
