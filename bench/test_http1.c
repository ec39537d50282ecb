/* test_http1.c - checks the load generator's HTTP/1.1 client (http1.c) against responses
 * written by hand into a socketpair: framing across partial reads, two responses in one
 * read, the body scanners, a closed peer, and the responses it must refuse (each refusal
 * exits the process, so those run in a child). `make -C bench check` runs it.
 */
#include "http1.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchlib.h"

static int failures;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "test_http1.c:%d: check failed: %s\n", __LINE__, #cond); \
			failures++;                                                      \
		}                                                                        \
	} while (0)

/* A connection whose peer is the returned descriptor. */
static int pair(struct h1_conn *c)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		bench_die("socketpair");
	memset(c, 0, sizeof(*c));
	c->fd = sv[0];
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	return sv[1];
}

static void put(int fd, const char *s)
{
	size_t n = strlen(s);
	if (write(fd, s, n) != (ssize_t)n)
		bench_die("write");
}

static void test_partial_reads(void)
{
	struct h1_conn c;
	int peer = pair(&c);
	CHECK(h1_read(&c) == 0);
	put(peer, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nconTent-LENGTH: 10");
	CHECK(h1_read(&c) == 0);
	put(peer, "\r\n\r\n{\"id\":");
	CHECK(h1_read(&c) == 0);
	put(peer, "\"x\"}");
	CHECK(h1_read(&c) == 1);
	CHECK(c.status == 201);
	CHECK(c.body_len == 10);
	CHECK(strcmp(h1_body(&c), "{\"id\":\"x\"}") == 0);
	CHECK(!c.closing);
	h1_consume(&c);
	CHECK(c.in_len == 0);
	CHECK(h1_read(&c) == 0);
	close(peer);
	CHECK(h1_read(&c) == -1);
	h1_close(&c);
}

static void test_two_in_one_read(void)
{
	struct h1_conn c;
	int peer = pair(&c);
	put(peer, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull"
		  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
	CHECK(h1_read(&c) == 1);
	CHECK(c.body_len == 4 && memcmp(h1_body(&c), "null", 4) == 0);
	/* The scanners see the body NUL-terminated, never the next response. */
	CHECK(strlen(h1_body(&c)) == 4);
	h1_consume(&c);
	CHECK(h1_read(&c) == 1);
	CHECK(c.status == 200 && c.body_len == 2 && strcmp(h1_body(&c), "{}") == 0);
	CHECK(c.closing);
	h1_consume(&c);
	CHECK(c.in_len == 0);
	close(peer);
	h1_close(&c);
}

static void test_scanners(void)
{
	static const char body[] = "{\"id\":\"work_8Dy0hA5lu8SwMkKczEywcRpn\",\"type\":\"work\",\"data\":{\"type\":\"session\","
				   "\"id\":\"sesn_bench1_42\"},\"secret\":\"abc\",\"bad\":\"a\\\"b\"}";
	char out[64];
	CHECK(h1_scan_string(body, sizeof(body) - 1, "\"id\":\"work_", out, sizeof(out)) == 29);
	CHECK(strcmp(out, "work_8Dy0hA5lu8SwMkKczEywcRpn") == 0);
	CHECK(h1_scan_string(body, sizeof(body) - 1, "\"id\":\"sesn_", out, sizeof(out)) == 14);
	CHECK(strcmp(out, "sesn_bench1_42") == 0);
	CHECK(h1_scan_string(body, sizeof(body) - 1, "\"id\":\"env_", out, sizeof(out)) == 0);
	CHECK(h1_scan_string(body, sizeof(body) - 1, "\"bad\":\"", out, sizeof(out)) == 0);  /* escaped */
	CHECK(h1_scan_string(body, sizeof(body) - 1, "\"id\":\"work_", out, 10) == 0);        /* too long */
	CHECK(h1_scan_string(body, 40, "\"id\":\"work_", out, sizeof(out)) == 29);
	CHECK(h1_scan_string(body, 30, "\"id\":\"work_", out, sizeof(out)) == 0);             /* cut off */
	CHECK(h1_has(body, sizeof(body) - 1, "\"type\":\"work\""));
	CHECK(!h1_has(body, sizeof(body) - 1, "\"state\":\"stopped\""));
}

static void test_request_building(void)
{
	struct h1_conn c;
	memset(&c, 0, sizeof(c));
	h1_set_request(&c, "GET ", "/x", " HTTP/1.1\r\n", NULL);
	h1_append_u64(&c, 0);
	h1_append(&c, ",", 1);
	h1_append_u64(&c, 1000);
	h1_append(&c, ",", 1);
	h1_append_u64(&c, UINT64_MAX);
	CHECK(c.out_len == strlen("GET /x HTTP/1.1\r\n0,1000,18446744073709551615"));
	CHECK(memcmp(c.out, "GET /x HTTP/1.1\r\n0,1000,18446744073709551615", c.out_len) == 0);
}

/* The response must make h1_read exit with status 1 (a refusal, not a crash or a hang). */
static void refused(const char *response, int line)
{
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		struct h1_conn c;
		int peer = pair(&c);
		put(peer, response);
		freopen("/dev/null", "w", stderr);
		alarm(5);
		h1_read(&c);
		_exit(0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) {
		fprintf(stderr, "test_http1.c:%d: response was not refused: %.60s\n", line, response);
		failures++;
	}
}

static void test_refusals(void)
{
	refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnull\r\n0\r\n\r\n", __LINE__);
	refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\nnull", __LINE__);
	refused("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\nnull", __LINE__);
	refused("HTTP/1.1 200 OK\r\nContent-Length: 4x\r\n\r\nnull", __LINE__);
	refused("HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n", __LINE__);
	refused("HTTP/1.1 200 OK\r\nContent-Length: 8190\r\n\r\n", __LINE__);
	refused("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", __LINE__);
	refused("SSH-2.0-OpenSSH\r\n\r\n", __LINE__);
}

int main(void)
{
	bench_set_program("test_http1");
	test_partial_reads();
	test_two_in_one_read();
	test_scanners();
	test_request_building();
	test_refusals();
	if (failures) {
		fprintf(stderr, "test_http1: %d check(s) failed\n", failures);
		return 1;
	}
	puts("test_http1: all checks passed");
	return 0;
}
