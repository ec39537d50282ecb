/* fuzz_request.c - libFuzzer target: whole raw requests through the real server.
 *
 * The server (libmicrohttpd, framing checks, routing, authentication, dispatch, handlers)
 * runs in this process on a loopback port over a store in a temporary directory. Each input
 * is written to a fresh connection as is, the write side is shut, and the reply is read to
 * its end. In the input, "@K" stands for a valid API key and "@E" for the id of an existing
 * self_hosted environment, so inputs reach authenticated routes.
 *
 * Checked besides memory errors (ASan/UBSan): every reply starts with a status line, and
 * the server keeps answering /healthz. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "api/app.h"
#include "cli/keys_cli.h"
#include "common/log.h"

static struct app app;
static char api_key[TOKEN_MAX];
static char env_id[64];
static char dir[] = "/tmp/fuzz_request.XXXXXX";

static int connect_server(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)app.port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send a request, read the reply to its end (or the timeout). Returns bytes read. */
static size_t exchange(const char *req, size_t len, char *reply, size_t cap)
{
	int fd = connect_server();
	if (fd < 0)
		abort(); /* the server stopped accepting */
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the server may close early (an early answer): fine */
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	size_t got = 0;
	for (;;) {
		/* Up to 2 s for the first byte; once an answer came, a 20 ms pause ends it (a
		 * keep-alive connection may stay open after its last answer). */
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, got ? 20 : 2000) <= 0)
			break;
		char scratch[4096];
		char *into = got < cap ? reply + got : scratch;
		size_t room = got < cap ? cap - got : sizeof(scratch);
		ssize_t n = recv(fd, into, room, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return got < cap ? got : cap;
}

/* Expand the @K and @E placeholders. */
static char *expand(const uint8_t *data, size_t size, size_t *out_len)
{
	size_t klen = strlen(api_key), elen = strlen(env_id);
	size_t cap = size * (klen > elen ? klen : elen) + 1;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '@' && i + 1 < size && (data[i + 1] == 'K' || data[i + 1] == 'E')) {
			const char *s = data[i + 1] == 'K' ? api_key : env_id;
			memcpy(out + o, s, strlen(s));
			o += strlen(s);
			i++;
		} else {
			out[o++] = (char)data[i];
		}
	}
	*out_len = o;
	return out;
}

static void create_environment(void)
{
	char req[1024];
	const char body[] = "{\"name\":\"fuzz\",\"config\":{\"type\":\"self_hosted\"}}";
	int n = snprintf(req, sizeof(req),
			 "POST /v1/environments HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\n"
			 "anthropic-beta: managed-agents-2026-04-01\r\ncontent-type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 api_key, strlen(body), body);
	char reply[4096];
	size_t got = exchange(req, (size_t)n, reply, sizeof(reply) - 1);
	reply[got] = '\0';
	const char *id = strstr(reply, "\"id\":\"");
	if (!id || sscanf(id + 6, "%63[A-Za-z0-9_]", env_id) != 1) {
		fprintf(stderr, "fuzz_request: cannot create an environment: %s\n", reply);
		abort();
	}
}

static void stop(void)
{
	app_stop(&app);
	app.store->ops->close(app.store);
	char path[256];
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		fprintf(stderr, "fuzz_request: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
	if (!mkdtemp(dir))
		abort();
	char db[256], why[512];
	snprintf(db, sizeof(db), "%s/fuzz.db", dir);
	struct store *store;
	struct errbuf eb = {{0}};
	if (store_open(db, 1, &store, &eb) ||
	    keys_cli_mint(store, "fuzz", "fuzz", "", "fuzz", api_key, why, sizeof(why)))
		abort();
	struct app_config cfg = {
		.http = {.listen = "127.0.0.1:0",
			 .threads = 2,
			 .connection_limit = 64,
			 .connection_timeout_s = 5,
			 .head_timeout_s = 5,
			 .connection_memory = 16 * 1024,
			 .body_memory = 8 * 1024 * 1024},
		.max_held_polls = 64,
		.sweep_interval_us = 200 * 1000,
	};
	if (app_start(&app, store, &cfg, why, sizeof(why))) {
		fprintf(stderr, "fuzz_request: %s\n", why);
		abort();
	}
	atexit(stop);
	create_environment();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned long runs;
	size_t len;
	char *req = expand(data, size, &len);
	if (!req)
		return 0;
	char reply[64];
	size_t got = exchange(req, len, reply, sizeof(reply));
	free(req);
	/* Whatever was sent, an answer is an HTTP status line (or nothing, when dropped). */
	if (got && (got < 9 || memcmp(reply, "HTTP/1.", 7) != 0)) {
		fprintf(stderr, "fuzz_request: reply without a status line: %.*s\n", (int)got, reply);
		abort();
	}
	if (++runs % 128 == 0) {
		static const char hz[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
		got = exchange(hz, sizeof(hz) - 1, reply, sizeof(reply));
		if (got < 12 || memcmp(reply + 9, "200", 3) != 0) {
			fprintf(stderr, "fuzz_request: /healthz stopped answering 200\n");
			abort();
		}
	}
	return 0;
}
