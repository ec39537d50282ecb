/* test_client.c - unit tests of the HTTP client (src/client/client.c) and of where the
 * client-side commands find their credentials (src/client/credential.c).
 *
 * A one-connection-at-a-time HTTP server on a thread answers each request with a canned
 * reply and keeps the request it got, so the tests see both sides of the wire. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/client.h"
#include "client/credential.h"
#include "common/clock.h"

/* ---- a canned HTTP server ---- */

struct canned {
	int listen_fd;
	int port;
	const char *reply;      /* whole response; NULL = accept, then say nothing */
	int hold_ms;            /* with reply NULL: how long to keep the silent connection */
	char request[8192];     /* what the last request looked like */
	pthread_t thread;
};

static void *serve_one(void *arg)
{
	struct canned *c = arg;
	int fd = accept(c->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	size_t len = 0;
	/* Read the head, then the body its Content-Length announces. */
	for (;;) {
		ssize_t n = read(fd, c->request + len, sizeof(c->request) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		c->request[len] = '\0';
		char *end = strstr(c->request, "\r\n\r\n");
		if (!end)
			continue;
		const char *cl = strcasestr(c->request, "content-length:");
		size_t want = (size_t)(end + 4 - c->request) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		if (len >= want)
			break;
	}
	if (c->reply) {
		ssize_t n = write(fd, c->reply, strlen(c->reply));
		(void)n;
	} else {
		/* Silent until the client gives up and closes, or hold_ms at most. */
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char drain[256];
		while (poll(&pfd, 1, c->hold_ms) > 0 && read(fd, drain, sizeof(drain)) > 0)
			;
	}
	close(fd);
	return NULL;
}

static void canned_start(struct canned *c, const char *reply)
{
	memset(c, 0, sizeof(*c));
	c->reply = reply;
	c->hold_ms = 30000;
	c->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->listen_fd >= 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(c->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(c->listen_fd, 4), 0);
	socklen_t alen = sizeof(addr);
	getsockname(c->listen_fd, (struct sockaddr *)&addr, &alen);
	c->port = ntohs(addr.sin_port);
	assert_int_equal(pthread_create(&c->thread, NULL, serve_one, c), 0);
}

static void canned_stop(struct canned *c)
{
	/* Wakes an accept() still waiting when the client never connected (a cancel). */
	shutdown(c->listen_fd, SHUT_RDWR);
	pthread_join(c->thread, NULL);
	close(c->listen_fd);
}

static int64_t last_request_us; /* how long the last request() took, server aside */

static int request(struct canned *srv, const char *reply, const char *method, const char *body,
		   long timeout_ms, struct client_reply *r)
{
	canned_start(srv, reply);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv->port);
	struct client c;
	assert_int_equal(client_init(&c, url, "envd_env_TESTKEY"), 0);
	const char *headers[] = {"Anthropic-Worker-ID: w-1", NULL};
	int64_t start = clock_mono_us();
	int rc = client_request(&c, method, "/v1/x?y=1", body, headers, timeout_ms, r);
	last_request_us = clock_mono_us() - start;
	client_free(&c);
	canned_stop(srv);
	return rc;
}

/* A whole HTTP response; the text lives until the next call. */
static const char *http_reply(const char *status, const char *extra_headers, const char *body)
{
	static char text[4096];
	snprintf(text, sizeof(text), "HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\n%s"
		 "Content-Length: %zu\r\n\r\n%s", status, extra_headers, strlen(body), body);
	return text;
}

static void test_ok_and_headers(void **state)
{
	static struct canned srv;
	struct client_reply r;
	assert_int_equal(request(&srv, http_reply("200 OK", "request-id: req_abc\r\n", "{\"id\":\"work_1\"}"), "POST",
				 "{\"force\":true}", 5000, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(client_json_str(r.body, "id"), "work_1");
	assert_string_equal(r.request_id, "req_abc");
	assert_false(client_is_transient(&r));
	client_reply_free(&r);
	assert_non_null(strstr(srv.request, "POST /v1/x?y=1 HTTP/1.1\r\n"));
	assert_non_null(strcasestr(srv.request, "\r\nanthropic-beta: managed-agents-2026-04-01\r\n"));
	assert_non_null(strcasestr(srv.request, "\r\nAuthorization: Bearer envd_env_TESTKEY\r\n"));
	assert_non_null(strcasestr(srv.request, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strcasestr(srv.request, "\r\nAnthropic-Worker-ID: w-1\r\n"));
	assert_non_null(strstr(srv.request, "\r\n\r\n{\"force\":true}"));
}

static void test_envelope(void **state)
{
	static struct canned srv;
	struct client_reply r;
	const char *body = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"lease lost\","
			   "\"details\":{\"error_code\":\"heartbeat_precondition_failed\"}},\"request_id\":\"req_1\"}";
	assert_int_equal(request(&srv, http_reply("412 Precondition Failed", "", body), "POST", NULL, 5000, &r), 0);
	assert_int_equal(r.status, 412);
	assert_string_equal(r.error_type, "invalid_request_error");
	assert_string_equal(r.error_code, "heartbeat_precondition_failed");
	assert_string_equal(r.message, "lease lost");
	assert_false(client_is_transient(&r));
	client_reply_free(&r);
	/* A POST without a body still says how long it is (none). */
	assert_non_null(strcasestr(srv.request, "\r\nContent-Length: 0\r\n"));
}

static void test_null_body(void **state)
{
	static struct canned srv;
	struct client_reply r;
	assert_int_equal(request(&srv, http_reply("200 OK", "", "null"), "GET", NULL, 5000, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(json_is_null(r.body));
	assert_false(r.bad_body);
	client_reply_free(&r);
	assert_non_null(strstr(srv.request, "GET /v1/x?y=1 HTTP/1.1\r\n"));
}

static void test_garbage_is_transient(void **state)
{
	static struct canned srv;
	struct client_reply r;
	assert_int_equal(request(&srv, http_reply("200 OK", "", "<html>proxy"), "GET", NULL, 5000, &r), 0);
	assert_int_equal(r.status, 200);
	assert_null(r.body);
	assert_true(r.bad_body);
	assert_non_null(strstr(r.message, "not JSON"));
	assert_true(client_is_transient(&r));
	client_reply_free(&r);
}

/* A refusal is a refusal whatever its body: a proxy's page on a 401/403/404 must not be
 * retried forever. A 5xx page stays worth another try. */
static void test_refusal_page_is_final(void **state)
{
	static const char *const final[] = {"401 Unauthorized", "403 Forbidden", "404 Not Found", "400 Bad Request"};
	for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
		static struct canned srv;
		struct client_reply r;
		assert_int_equal(request(&srv, http_reply(final[i], "", "<html>no"), "GET", NULL, 5000, &r), 0);
		assert_true(r.bad_body);
		assert_false(client_is_transient(&r));
		client_reply_free(&r);
	}
	static struct canned srv5;
	struct client_reply r;
	assert_int_equal(request(&srv5, http_reply("502 Bad Gateway", "", "<html>no"), "GET", NULL, 5000, &r), 0);
	assert_true(client_is_transient(&r));
	client_reply_free(&r);
}

static void test_retry_after(void **state)
{
	static struct canned srv;
	struct client_reply r;
	const char *body = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}";
	assert_int_equal(request(&srv, http_reply("429 Too Many Requests", "Retry-After: 7\r\n", body), "GET", NULL, 5000, &r),
			 0);
	assert_int_equal(r.status, 429);
	assert_int_equal(r.retry_after_s, 7);
	assert_true(client_is_transient(&r));
	client_reply_free(&r);
}

static void test_connection_refused(void **state)
{
	/* Nothing listens on port 1 (unlike a port just freed, no parallel test can take it). */
	struct client c;
	assert_int_equal(client_init(&c, "http://127.0.0.1:1", NULL), 0);
	struct client_reply r;
	assert_int_equal(client_request(&c, "GET", "/v1/x", NULL, NULL, 2000, &r), -1);
	assert_int_equal(r.status, 0);
	assert_true(strlen(r.message) > 0);
	assert_true(client_is_transient(&r));
	client_reply_free(&r);
	client_free(&c);
}

static void test_timeout(void **state)
{
	static struct canned srv;
	struct client_reply r;
	assert_int_equal(request(&srv, NULL, "GET", NULL, 300, &r), -1);
	assert_int_equal(r.status, 0);
	/* The server holds the connection for 30 s: only a timeout that did not fire takes that
	 * long. A hang guard, not a speed bound. */
	assert_true(last_request_us < 25000000);
	assert_true(client_is_transient(&r));
	client_reply_free(&r);
}

static void test_cancel(void **state)
{
	static struct canned srv;
	canned_start(&srv, NULL);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	struct client c;
	assert_int_equal(client_init(&c, url, NULL), 0);
	static atomic_int cancel;
	atomic_store(&cancel, 1);
	c.cancel = &cancel;
	struct client_reply r;
	int64_t start = clock_mono_us();
	assert_int_equal(client_request(&c, "GET", "/v1/x", NULL, NULL, 10000, &r), -1);
	assert_true(r.canceled);
	/* Canceled before it began; the request would otherwise wait its whole 10 s timeout
	 * on a server that never answers. */
	assert_true(clock_mono_us() - start < 9000000);
	client_reply_free(&r);
	client_free(&c);
	canned_stop(&srv);
}

static void test_escape(void **state)
{
	struct buf b;
	buf_init(&b, 256);
	client_put_escaped(&b, "2026-11-28T15:34:17.123456+01:00 a/b?c&d=é~_.");
	assert_string_equal(b.data, "2026-11-28T15%3A34%3A17.123456%2B01%3A00%20a%2Fb%3Fc%26d%3D%C3%A9~_.");
	buf_free(&b);
}

/* ---- credentials ---- */

static char *write_temp(const char *content)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/environd-cred-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	ssize_t n = write(fd, content, strlen(content));
	assert_int_equal(n, (ssize_t)strlen(content));
	close(fd);
	return path;
}

static void test_key_file(void **state)
{
	char err[512];
	char *key;
	char *path = write_temp("  envd_env_abc123 \n# comment\n");
	assert_int_equal(credential_read_file(path, &key, err, sizeof(err)), 0);
	assert_string_equal(key, "envd_env_abc123");
	credential_free(key);
	unlink(path);

	path = write_temp("\n\n");
	assert_int_equal(credential_read_file(path, &key, err, sizeof(err)), -1);
	assert_null(key);
	assert_non_null(strstr(err, "is empty"));
	unlink(path);

	path = write_temp("envd_env_a b\n");
	assert_int_equal(credential_read_file(path, &key, err, sizeof(err)), -1);
	assert_null(strstr(err, "envd_env_a"));
	unlink(path);

	static char big[CREDENTIAL_MAX + 10];
	memset(big, 'k', sizeof(big) - 1);
	path = write_temp(big);
	assert_int_equal(credential_read_file(path, &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than"));
	unlink(path);

	assert_int_equal(credential_read_file("/nonexistent/key", &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/key"));
	assert_int_equal(credential_read_file("/tmp", &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
}

static void test_resolve(void **state)
{
	char err[512];
	char *key;
	char *path = write_temp("from_file\n");
	setenv("TEST_KEY_VAR", "from_var", 1);
	assert_int_equal(credential_resolve(path, "from_flag", "TEST_KEY_VAR", "key-file", &key, err, sizeof(err)), 0);
	assert_string_equal(key, "from_file");
	credential_free(key);
	assert_int_equal(credential_resolve(NULL, "from_flag", "TEST_KEY_VAR", "key-file", &key, err, sizeof(err)), 0);
	assert_string_equal(key, "from_flag");
	credential_free(key);
	assert_int_equal(credential_resolve(NULL, NULL, "TEST_KEY_VAR", "key-file", &key, err, sizeof(err)), 0);
	assert_string_equal(key, "from_var");
	credential_free(key);
	unsetenv("TEST_KEY_VAR");
	assert_int_equal(credential_resolve(NULL, NULL, "TEST_KEY_VAR", "key-file", &key, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "TEST_KEY_VAR"));
	assert_non_null(strstr(err, "--key-file"));
	unlink(path);

	static const char *const vars[] = {"TEST_URL_A", "TEST_URL_B", NULL};
	unsetenv("TEST_URL_A");
	setenv("TEST_URL_B", "http://b", 1);
	assert_string_equal(credential_base_url(NULL, vars, 1), "http://b");
	assert_string_equal(credential_base_url("http://flag", vars, 1), "http://flag");
	unsetenv("TEST_URL_B");
	assert_string_equal(credential_base_url(NULL, vars, 1), CLIENT_DEFAULT_URL);
	assert_null(credential_base_url(NULL, vars, 0));
}

int main(void)
{
	client_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_and_headers),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_null_body),
		cmocka_unit_test(test_garbage_is_transient),
		cmocka_unit_test(test_refusal_page_is_final),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_resolve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
