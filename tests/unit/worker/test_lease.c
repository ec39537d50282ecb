/* test_lease.c - unit tests of the worker's lease decisions (src/worker/lease.c) and of
 * the other pure pieces of the worker: work item parsing and poll backoff.
 *
 * lease_judge() is fed the replies SPEC §3.1 T7-T12 allows (and a few it does not: a
 * proxy's page, a 200 without the fields) and must say what the worker does next. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "worker/worker_int.h"

static struct client_reply reply(int status, const char *json)
{
	struct client_reply r;
	memset(&r, 0, sizeof(r));
	r.status = status;
	r.retry_after_s = -1;
	if (json) {
		json_error_t err;
		r.body = json_loads(json, JSON_DECODE_ANY, &err);
		if (!r.body)
			r.bad_body = 1;
	}
	return r;
}

static void judge(int status, const char *json, struct beat *b)
{
	struct client_reply r = reply(status, json);
	lease_judge(&r, b);
	client_reply_free(&r);
}

static void test_renewed(void **state)
{
	struct beat b;
	judge(200, "{\"type\":\"work_heartbeat\",\"last_heartbeat\":\"2026-11-28T15:34:17.123456Z\","
		   "\"lease_extended\":true,\"state\":\"active\",\"ttl_seconds\":30}", &b);
	assert_int_equal(b.renewed, 1);
	assert_int_equal(b.transient, 0);
	assert_int_equal(b.verdict, LEASE_HELD);
	assert_string_equal(b.last_heartbeat, "2026-11-28T15:34:17.123456Z");
	assert_int_equal(b.ttl_s, 30);
	assert_string_equal(b.state, "active");
}

/* T10: a stopping item's lease is still renewed, and the child must go. */
static void test_stopping(void **state)
{
	struct beat b;
	judge(200, "{\"last_heartbeat\":\"2026-11-28T15:34:17.123456Z\",\"lease_extended\":true,"
		   "\"state\":\"stopping\",\"ttl_seconds\":90}", &b);
	assert_int_equal(b.renewed, 1);
	assert_int_equal(b.verdict, LEASE_STOPPING);
}

/* T11: stopped, nothing renewed; the item needs no stop from us. */
static void test_stopped(void **state)
{
	struct beat b;
	judge(200, "{\"last_heartbeat\":\"\",\"lease_extended\":false,\"state\":\"stopped\",\"ttl_seconds\":0}", &b);
	assert_int_equal(b.renewed, 0);
	assert_int_equal(b.verdict, LEASE_STOPPED);
}

static void test_not_extended_is_lost(void **state)
{
	struct beat b;
	judge(200, "{\"last_heartbeat\":\"2026-11-28T15:34:17.123456Z\",\"lease_extended\":false,"
		   "\"state\":\"active\",\"ttl_seconds\":0}", &b);
	assert_int_equal(b.renewed, 0);
	assert_int_equal(b.verdict, LEASE_LOST);
}

static void test_precondition_is_lost(void **state)
{
	struct beat b;
	judge(412, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"x\","
		   "\"details\":{\"error_code\":\"heartbeat_precondition_failed\"}}}", &b);
	assert_int_equal(b.verdict, LEASE_LOST);
	assert_int_equal(b.transient, 0);
	/* T12 without a timestamp: the item is queued again. */
	judge(409, NULL, &b);
	assert_int_equal(b.verdict, LEASE_LOST);
}

static void test_transient(void **state)
{
	static const int statuses[] = {0, 408, 429, 500, 502, 503, 529};
	struct beat b;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		judge(statuses[i], NULL, &b);
		assert_int_equal(b.transient, 1);
		assert_int_equal(b.verdict, LEASE_HELD);
	}
	/* A 200 that is not a heartbeat reply is no answer at all. */
	judge(200, "<html>proxy</html>", &b);
	assert_int_equal(b.transient, 1);
	judge(200, "{\"state\":\"active\"}", &b);
	assert_int_equal(b.transient, 1);
	judge(200, "null", &b);
	assert_int_equal(b.transient, 1);
	judge(200, "{\"last_heartbeat\":1,\"lease_extended\":true,\"state\":\"active\",\"ttl_seconds\":9}", &b);
	assert_int_equal(b.transient, 1);
}

static void test_rejected(void **state)
{
	static const int statuses[] = {400, 401, 403, 404};
	struct beat b;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		judge(statuses[i], "{\"type\":\"error\",\"error\":{\"type\":\"x\",\"message\":\"m\"}}", &b);
		assert_int_equal(b.transient, 0);
		assert_int_equal(b.verdict, LEASE_REJECTED);
	}
}

static void test_odd_ttl(void **state)
{
	struct beat b;
	judge(200, "{\"last_heartbeat\":\"t\",\"lease_extended\":true,\"state\":\"active\",\"ttl_seconds\":-5}", &b);
	assert_int_equal(b.renewed, 1);
	assert_int_equal(b.ttl_s, LEASE_TTL_DEFAULT_S);
}

static void test_interval(void **state)
{
	assert_int_equal(lease_interval_s(5, 90), 5);
	assert_int_equal(lease_interval_s(30, 90), 30);
	assert_int_equal(lease_interval_s(30, 10), 3);
	assert_int_equal(lease_interval_s(5, 10), 3);
	assert_int_equal(lease_interval_s(5, 1), 1);
	assert_int_equal(lease_interval_s(0, 90), 1);
}

static void test_item_parse(void **state)
{
	struct item it;
	char err[256];
	json_error_t jerr;
	json_t *body = json_loads("{\"id\":\"work_1\",\"data\":{\"type\":\"session\",\"id\":\"sesn_1\"},"
				  "\"secret\":\"abc_-\"}", 0, &jerr);
	assert_int_equal(item_parse(body, &it, err, sizeof(err)), 0);
	assert_string_equal(it.id, "work_1");
	assert_string_equal(it.session_id, "sesn_1");
	assert_string_equal(it.secret, "abc_-");
	assert_int_equal(it.kind, ITEM_SESSION);
	item_free(&it);
	json_decref(body);

	body = json_loads("{\"id\":\"work_2\",\"data\":{\"type\":\"healthcheck\",\"id\":\"hc_1\"},\"secret\":null}",
			  0, &jerr);
	assert_int_equal(item_parse(body, &it, err, sizeof(err)), 0);
	assert_null(it.secret);
	assert_int_equal(it.kind, ITEM_HEALTHCHECK);
	item_free(&it);
	json_decref(body);

	static const char *const bad[] = {
		"{}",
		"{\"id\":\"\",\"data\":{\"type\":\"session\",\"id\":\"s\"}}",
		"{\"id\":\"work 1\",\"data\":{\"type\":\"session\",\"id\":\"s\"}}",
		"{\"id\":\"work_1\"}",
		"{\"id\":\"work_1\",\"data\":{\"type\":\"session\",\"id\":\"s\\n\"}}",
		"{\"id\":\"work_1\",\"data\":{\"type\":\"session\",\"id\":\"s\"},\"secret\":5}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = json_loads(bad[i], 0, &jerr);
		assert_non_null(body);
		assert_int_equal(item_parse(body, &it, err, sizeof(err)), -1);
		assert_true(strlen(err) > 0);
		json_decref(body);
	}
}

static void test_backoff(void **state)
{
	for (int attempt = 0; attempt < 40; attempt++) {
		int64_t full = attempt < 6 ? (INT64_C(1000000) << attempt) : INT64_C(60000000);
		if (full > 60000000)
			full = 60000000;
		for (int i = 0; i < 50; i++) {
			int64_t us = worker_backoff_us(attempt, -1);
			assert_true(us <= full);
			assert_true(us >= full - full / 4);
		}
	}
	/* retry-after raises the wait, but never past the cap. */
	assert_true(worker_backoff_us(0, 7) >= 7000000);
	assert_true(worker_backoff_us(0, 3600) <= 60000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renewed),
		cmocka_unit_test(test_stopping),
		cmocka_unit_test(test_stopped),
		cmocka_unit_test(test_not_extended_is_lost),
		cmocka_unit_test(test_precondition_is_lost),
		cmocka_unit_test(test_transient),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_odd_ttl),
		cmocka_unit_test(test_interval),
		cmocka_unit_test(test_item_parse),
		cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
