/* test_lease.c - unit tests of the worker's lease decisions (src/worker/lease.c) and of
 * the other pure pieces of the worker: work item parsing and poll backoff.
 *
 * lease_judge() is fed the replies SPEC §3.1 T7-T12 allows (and a few it does not: a
 * proxy's page, a 200 without the fields) and must say what the worker does next. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "worker/ticks.h"
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
	static const int statuses[] = {400, 404};
	struct beat b;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		judge(statuses[i], "{\"type\":\"error\",\"error\":{\"type\":\"x\",\"message\":\"m\"}}", &b);
		assert_int_equal(b.transient, 0);
		assert_int_equal(b.verdict, LEASE_REJECTED);
	}
}

/* 401/403 on a beat: the session token was revoked (stopped, or delivered again). The
 * lease is over whatever the body says: kill the child, leave the item alone. */
static void test_revoked_is_lost(void **state)
{
	static const int statuses[] = {401, 403};
	struct beat b;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		judge(statuses[i], "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"m\"}}", &b);
		assert_int_equal(b.transient, 0);
		assert_int_equal(b.verdict, LEASE_LOST);
		judge(statuses[i], "<html>proxy</html>", &b);
		assert_int_equal(b.transient, 0);
		assert_int_equal(b.verdict, LEASE_LOST);
	}
}

#define TS1 "2026-11-28T15:34:17.123456Z"
#define TS2 "2026-11-28T15:34:22.654321Z"
#define S(x) INT64_C(x) * 1000000

static const char *precondition(const char *state, const char *last)
{
	static char body[512];
	snprintf(body, sizeof(body),
		 "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"x\","
		 "\"details\":{\"error_code\":\"heartbeat_precondition_failed\",\"current_state\":{"
		 "\"last_heartbeat\":%s,\"lease_extended\":false,\"state\":\"%s\",\"ttl_seconds\":10}}}}",
		 last, state);
	return body;
}

/* A 412 reads the heartbeat the server holds, when it could be ours to adopt. */
static void test_precondition_details(void **state)
{
	struct beat b;
	judge(412, precondition("active", "\"" TS2 "\""), &b);
	assert_int_equal(b.verdict, LEASE_LOST);
	assert_string_equal(b.adopt, TS2);
	judge(412, precondition("starting", "\"" TS2 "\""), &b);
	assert_string_equal(b.adopt, TS2);
	/* Queued again (T12), a heartbeat never recorded, or no timestamp: nothing to adopt. */
	judge(412, precondition("queued", "null"), &b);
	assert_string_equal(b.adopt, "");
	judge(412, precondition("active", "null"), &b);
	assert_string_equal(b.adopt, "");
	judge(412, precondition("active", "\"\""), &b);
	assert_string_equal(b.adopt, "");
	judge(412, precondition("stopping", "\"" TS2 "\""), &b);
	assert_string_equal(b.adopt, "");
}

static void apply(struct lease_state *st, int status, const char *json, int64_t sent, int64_t now, int *again)
{
	struct beat b;
	char expected[HEARTBEAT_TEXT_MAX];
	snprintf(expected, sizeof(expected), "%s", st->last_heartbeat);
	judge(status, json, &b);
	int a = lease_apply(st, &b, expected, sent, now);
	if (again)
		*again = a;
}

static const char *renewal(const char *last, const char *state, int ttl)
{
	static char body[256];
	snprintf(body, sizeof(body),
		 "{\"type\":\"work_heartbeat\",\"last_heartbeat\":\"%s\",\"lease_extended\":true,"
		 "\"state\":\"%s\",\"ttl_seconds\":%d}", last, state, ttl);
	return body;
}

/* One lost reply: the server applied the beat, the next one echoes the old value and gets
 * 412. Within the lease that heartbeat can only be ours: adopt it and beat again. */
static void test_adopt_within_lease(void **state)
{
	struct lease_state st;
	int again = -1;
	lease_state_init(&st, S(100));
	assert_string_equal(st.last_heartbeat, NO_HEARTBEAT);
	assert_true(lease_deadline_us(&st) == S(100) + S(LEASE_TTL_DEFAULT_S));
	apply(&st, 200, renewal(TS1, "active", 10), S(101), S(101), &again);
	assert_int_equal(again, 0);
	assert_int_equal(st.verdict, LEASE_HELD);
	assert_string_equal(st.last_heartbeat, TS1);
	assert_true(lease_deadline_us(&st) == S(111));
	/* The beat at 104 timed out (its reply lost); the one at 107 gets 412 naming TS2. */
	apply(&st, 0, NULL, S(104), S(107), &again);
	assert_int_equal(again, 0);
	apply(&st, 412, precondition("active", "\"" TS2 "\""), S(107), S(107), &again);
	assert_int_equal(again, 1);
	assert_int_equal(st.verdict, LEASE_HELD);
	assert_string_equal(st.last_heartbeat, TS2);
	/* The beat that echoes it renews the lease. */
	apply(&st, 200, renewal("2026-11-28T15:34:27.000000Z", "active", 10), S(107), S(107), &again);
	assert_int_equal(again, 0);
	assert_int_equal(st.verdict, LEASE_HELD);
	assert_int_equal(st.adoptions, 0);
	assert_true(lease_deadline_us(&st) == S(117));

	/* Adoption goes on while the lease lasts, but beats at once only twice in a row. */
	apply(&st, 412, precondition("active", "\"" TS1 "\""), S(108), S(108), &again);
	assert_int_equal(again, 1);
	apply(&st, 412, precondition("active", "\"" TS2 "\""), S(108), S(108), &again);
	assert_int_equal(again, 1);
	apply(&st, 412, precondition("active", "\"" TS1 "\""), S(108), S(108), &again);
	assert_int_equal(again, 0);
	assert_int_equal(st.verdict, LEASE_HELD);
	assert_string_equal(st.last_heartbeat, TS1);
}

/* Past the deadline a 412 is what a new holder causes: lost, even with a heartbeat named. */
static void test_no_adoption_after_deadline(void **state)
{
	struct lease_state st;
	lease_state_init(&st, S(100));
	apply(&st, 200, renewal(TS1, "active", 10), S(101), S(101), NULL);
	apply(&st, 412, precondition("active", "\"" TS2 "\""), S(109), S(111), NULL);
	assert_int_equal(st.verdict, LEASE_LOST);
	/* And a 412 with nothing to adopt is lost at any time. */
	lease_state_init(&st, S(100));
	apply(&st, 200, renewal(TS1, "active", 10), S(101), S(101), NULL);
	apply(&st, 412, precondition("queued", "null"), S(102), S(102), NULL);
	assert_int_equal(st.verdict, LEASE_LOST);
}

/* No renewal for a whole TTL: lost at the deadline, whatever the beats are doing. */
static void test_deadline_expiry(void **state)
{
	struct lease_state st;
	lease_state_init(&st, S(100));
	apply(&st, 200, renewal(TS1, "active", 10), S(101), S(101), NULL);
	assert_int_equal(lease_check_deadline(&st, S(110)), 0);
	assert_int_equal(st.verdict, LEASE_HELD);
	/* Failed beats change nothing until the deadline... */
	apply(&st, 503, NULL, S(104), S(105), NULL);
	apply(&st, 0, NULL, S(107), S(110), NULL);
	assert_int_equal(st.verdict, LEASE_HELD);
	/* ...and a beat cannot outlive it. */
	assert_int_equal(lease_beat_timeout_ms(&st, 3, S(110)), 1000);
	assert_int_equal(lease_beat_timeout_ms(&st, 3, S(101)), 6000);
	assert_int_equal(lease_beat_timeout_ms(&st, 3, S(111)), 0);
	assert_int_equal(lease_check_deadline(&st, S(111)), 1);
	assert_int_equal(st.verdict, LEASE_LOST);
	assert_int_equal(lease_check_deadline(&st, S(112)), 0);
	/* A transient failure that ends after the deadline loses it as well. */
	lease_state_init(&st, S(100));
	apply(&st, 200, renewal(TS1, "active", 10), S(101), S(101), NULL);
	apply(&st, 0, NULL, S(105), S(112), NULL);
	assert_int_equal(st.verdict, LEASE_LOST);
	/* The ack's own lease counts from the ack: 90 s. */
	lease_state_init(&st, S(100));
	assert_int_equal(lease_check_deadline(&st, S(189)), 0);
	assert_int_equal(lease_check_deadline(&st, S(190)), 1);
	assert_int_equal(st.verdict, LEASE_LOST);
	/* A stopping item's lease running out means stopped (T19), not someone else's. */
	lease_state_init(&st, S(100));
	apply(&st, 200, renewal(TS1, "stopping", 10), S(101), S(101), NULL);
	assert_int_equal(st.verdict, LEASE_STOPPING);
	assert_int_equal(lease_check_deadline(&st, S(111)), 1);
	assert_int_equal(st.verdict, LEASE_STOPPED);
}

/* 401 mid-lease: the token was revoked; lost, and later replies cannot revive it. */
static void test_revoked_mid_lease(void **state)
{
	struct lease_state st;
	lease_state_init(&st, S(100));
	apply(&st, 200, renewal(TS1, "active", 10), S(101), S(101), NULL);
	apply(&st, 401, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"m\"}}",
	      S(104), S(104), NULL);
	assert_int_equal(st.verdict, LEASE_LOST);
	apply(&st, 200, renewal(TS2, "stopping", 10), S(105), S(105), NULL);
	assert_int_equal(st.verdict, LEASE_LOST);
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
	assert_null(it.token); /* not a secret the server would send */
	assert_int_equal(it.kind, ITEM_SESSION);
	item_free(&it);
	json_decref(body);

	/* base64url of {"sessions_token":"envd_req_abc","api_base_url":"http://x"} */
	body = json_loads("{\"id\":\"work_3\",\"data\":{\"type\":\"session\",\"id\":\"s\"},\"secret\":"
			  "\"eyJzZXNzaW9uc190b2tlbiI6ImVudmRfcmVxX2FiYyIsImFwaV9iYXNlX3VybCI6Imh0dHA6Ly94In0\"}",
			  0, &jerr);
	assert_int_equal(item_parse(body, &it, err, sizeof(err)), 0);
	assert_string_equal(it.token, "envd_req_abc");
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
		cmocka_unit_test(test_revoked_is_lost),
		cmocka_unit_test(test_precondition_details),
		cmocka_unit_test(test_adopt_within_lease),
		cmocka_unit_test(test_no_adoption_after_deadline),
		cmocka_unit_test(test_deadline_expiry),
		cmocka_unit_test(test_revoked_mid_lease),
		cmocka_unit_test(test_odd_ttl),
		cmocka_unit_test(test_interval),
		cmocka_unit_test(test_item_parse),
		cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
