/* test_session_cli.c - unit tests of the session commands: argument checks
 * (cli/cmd_session.c), one-line renderings (cli/session_render.c), and `session watch`
 * (cli/session_watch.c) against a scripted server that drops the stream part way and
 * replays an event on reconnection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/commands.h"
#include "cli/session_render.h"
#include "cli/session_watch.h"
#include "client/client.h"
#include "common/cfg.h"

/* ---- argument checks ---- */

static int check(int argc, char **argv)
{
	struct cfg_values v;
	memset(&v, 0, sizeof(v));
	/* The positional arguments and --agent, as cfg_parse would have found them. */
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--agent") && a + 1 < argc) {
			v.str[0] = argv[++a]; /* O_AGENT is the table's first row */
		} else if (strncmp(argv[a], "--", 2) != 0) {
			v.positional[v.npositional++] = argv[a];
		}
	}
	return session_check_args(argv[0], &v, argv, argc);
}

static void test_arguments(void **state)
{
	char *create_ok[] = {"create", "env_1", "--agent", "agent_1"};
	assert_int_equal(check(4, create_ok), 0);
	char *create_no_agent[] = {"create", "env_1"};
	assert_int_equal(check(2, create_no_agent), 2);
	char *create_no_env[] = {"create", "--agent", "agent_1"};
	assert_int_equal(check(3, create_no_env), 2);
	char *send_ok[] = {"send", "sesn_1", "echo hi"};
	assert_int_equal(check(3, send_ok), 0);
	char *send_no_text[] = {"send", "sesn_1"};
	assert_int_equal(check(2, send_no_text), 2);
	char *send_empty[] = {"send", "sesn_1", ""};
	assert_int_equal(check(3, send_empty), 2);
	char *send_agent[] = {"send", "sesn_1", "x", "--agent", "a"};
	assert_int_equal(check(5, send_agent), 2);
	char *watch_until[] = {"watch", "sesn_1", "--until-idle"};
	assert_int_equal(check(3, watch_until), 0);
	char *watch_message[] = {"watch", "sesn_1", "--message=x"};
	assert_int_equal(check(3, watch_message), 2);
	char *unknown[] = {"delete", "sesn_1"};
	assert_int_equal(check(2, unknown), 2);
	/* After "--", text that looks like an option is the message. */
	char *dashes[] = {"send", "sesn_1", "--", "--agent"};
	struct cfg_values v = {.npositional = 2, .positional = {"sesn_1", "--agent"}};
	assert_int_equal(session_check_args("send", &v, dashes, 4), 0);
}

/* ---- renderings ---- */

static void render_is(const char *event_json, const char *want)
{
	json_t *ev = json_loads(event_json, 0, NULL);
	assert_non_null(ev);
	struct buf line;
	buf_init(&line, 4096);
	session_render(ev, &line);
	assert_string_equal(line.data, want);
	buf_free(&line);
	json_decref(ev);
}

static void test_renderings(void **state)
{
	render_is("{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"echo hi\\nls\"}]}",
		  "user.message              echo hi\\nls");
	render_is("{\"type\":\"agent.tool_use\",\"name\":\"bash\",\"input\":{\"command\":\"ls -l\"}}",
		  "agent.tool_use            bash: ls -l");
	render_is("{\"type\":\"agent.tool_use\",\"name\":\"read\",\"input\":{\"path\":\"/a\"}}",
		  "agent.tool_use            read: {\"path\":\"/a\"}");
	render_is("{\"type\":\"user.tool_result\",\"is_error\":true,\"content\":[{\"type\":\"text\",\"text\":\"exit 1\"}]}",
		  "user.tool_result          (error) exit 1");
	render_is("{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"requires_action\",\"event_ids\":[\"a\",\"b\"]}}",
		  "session.status_idle       requires_action a,b");
	render_is("{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"end_turn\"}}",
		  "session.status_idle       end_turn");
	render_is("{\"type\":\"session.status_running\"}", "session.status_running");
	render_is("{\"type\":\"session.error\",\"error\":{\"type\":\"x\",\"message\":\"boom\\u0007\"}}",
		  "session.error             boom\\x07");
	/* Long text is cut, and marked. */
	char big[1200];
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	json_t *ev = json_pack("{s:s,s:[{s:s,s:s}]}", "type", "agent.message", "content", "type", "text", "text", big);
	struct buf line;
	buf_init(&line, 4096);
	session_render(ev, &line);
	assert_int_equal(line.len, 26 + RENDER_TEXT_MAX + 3);
	assert_string_equal(line.data + line.len - 3, "...");
	buf_free(&line);
	json_decref(ev);
}

static void test_watch_next(void **state)
{
	json_t *idle = json_loads("{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"end_turn\"}}", 0, NULL);
	json_t *ra = json_loads("{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"requires_action\"}}", 0, NULL);
	json_t *del = json_loads("{\"type\":\"session.deleted\"}", 0, NULL);
	json_t *term = json_loads("{\"type\":\"session.status_terminated\"}", 0, NULL);
	assert_int_equal(session_watch_next(idle, 0), WATCH_GO_ON);
	assert_int_equal(session_watch_next(idle, 1), WATCH_IDLE);
	assert_int_equal(session_watch_next(ra, 1), WATCH_GO_ON);
	assert_int_equal(session_watch_next(del, 0), WATCH_ENDED);
	assert_int_equal(session_watch_next(term, 0), WATCH_ENDED);
	json_decref(idle);
	json_decref(ra);
	json_decref(del);
	json_decref(term);
}

/* ---- watch against a scripted server ---- */

#define MAX_CONNS 6
/* Every wait of the scripted server is bounded: a client that connects and then says
 * nothing, or stops reading, is given up on after this long. */
#define SCRIPT_IO_TIMEOUT_S 10

/* What a connection past the script is answered: a refusal that ends the watch (a 4xx
 * other than 408/429 is final), so a client that reconnects more often than the script
 * foresaw (a failed allocation makes it retry) stops instead of waiting for a reply. */
#define SCRIPT_EXHAUSTED                                                                        \
	"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" \
	"{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"the script has no more replies\"}}"

/* Answers connection k with replies[k] and keeps its request head; connections past the
 * script are answered SCRIPT_EXHAUSTED and counted in `extra`, until script_stop. */
struct script {
	int listen_fd, port, nreplies, served, extra;
	const char *replies[MAX_CONNS];
	char requests[MAX_CONNS][4096];
	char spare[4096]; /* the request head of a connection past the script */
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct script *s = arg;
	for (int k = 0;; k++) {
		int fd = accept(s->listen_fd, NULL, NULL);
		if (fd < 0)
			return NULL; /* script_stop shut the listening socket */
		struct timeval bound = {.tv_sec = SCRIPT_IO_TIMEOUT_S};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof(bound));
		int scripted = k < s->nreplies;
		char *req = scripted ? s->requests[k] : s->spare;
		size_t cap = scripted ? sizeof(s->requests[k]) : sizeof(s->spare);
		size_t len = 0;
		req[0] = '\0';
		while (len < cap - 1) {
			ssize_t n = read(fd, req + len, cap - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			req[len] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		const char *reply = scripted ? s->replies[k] : SCRIPT_EXHAUSTED;
		/* MSG_NOSIGNAL: a client that already hung up must not end the test with SIGPIPE. */
		ssize_t w = send(fd, reply, strlen(reply), MSG_NOSIGNAL);
		(void)w;
		if (scripted)
			s->served = k + 1;
		else
			s->extra++;
		close(fd); /* a stream reply without a terminal event is a dropped connection */
	}
}

static void script_start(struct script *s)
{
	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(s->listen_fd, 8), 0);
	socklen_t alen = sizeof(addr);
	getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen);
	s->port = ntohs(addr.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void script_stop(struct script *s)
{
	shutdown(s->listen_fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	/* The watch made exactly the connections the script foresaw. */
	assert_int_equal(s->extra, 0);
}

#define JSON_REPLY(body) "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" body
#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
#define EV(id, type, rest) "{\"id\":\"" id "\",\"type\":\"" type "\"" rest "}"
#define FRAME(id, type, rest) "id: " id "\nevent: " type "\ndata: " EV(id, type, rest) "\n\n"

/* Run session_watch against s, its stdout captured into out. */
static int watch_into(struct script *s, int until_idle, char *out, size_t outlen)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	struct client c;
	assert_int_equal(client_init(&c, url, "sk-test"), 0);
	fflush(stdout);
	int saved = dup(1);
	FILE *tmp = tmpfile();
	dup2(fileno(tmp), 1);
	struct watch_options opt = {.until_idle = until_idle};
	int rc = session_watch(&c, "sesn_1", &opt);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	rewind(tmp);
	size_t n = fread(out, 1, outlen - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	client_free(&c);
	return rc;
}

#define HISTORY(events) JSON_REPLY("{\"data\":[" events "],\"next_page\":null}")

static void test_watch_reconnects_without_repeats(void **state)
{
	/* Each connection opens the stream, then lists the history (the server's stream holds
	 * only what is committed after it opened). */
	static struct script s = {
		.nreplies = 4,
		.replies = {
			/* The first stream sends one event and half of another, then drops. */
			SSE_HEAD ": keepalive\n\n" FRAME("e2", "session.status_running", "")
				"id: e3\nevent: agent.tool_use\ndata: {\"id\":\"e3\",",
			HISTORY(EV("e1", "user.message", ",\"content\":[{\"type\":\"text\",\"text\":\"ls\"}]")),
			/* The second replays e2 and e3, which the history also holds, and goes on. */
			SSE_HEAD FRAME("e2", "session.status_running", "")
				FRAME("e3", "agent.tool_use", ",\"name\":\"bash\",\"input\":{\"command\":\"ls\"}")
				FRAME("e4", "session.deleted", ""),
			HISTORY(EV("e1", "user.message", ",\"content\":[]") "," EV("e2", "session.status_running", "") ","
				EV("e3", "agent.tool_use", ",\"name\":\"bash\",\"input\":{\"command\":\"ls\"}")),
		},
	};
	script_start(&s);
	char out[4096];
	assert_int_equal(watch_into(&s, 0, out, sizeof(out)), 0);
	script_stop(&s);
	assert_string_equal(out, "user.message              ls\n"
				 "session.status_running\n"
				 "agent.tool_use            bash: ls\n"
				 "session.deleted\n");
	assert_non_null(strstr(s.requests[0], "GET /v1/sessions/sesn_1/events/stream "));
	assert_null(strcasestr(s.requests[0], "Last-Event-ID"));
	assert_non_null(strstr(s.requests[1], "GET /v1/sessions/sesn_1/events?order=asc"));
	assert_non_null(strstr(s.requests[2], "GET /v1/sessions/sesn_1/events/stream "));
	assert_non_null(strcasestr(s.requests[2], "\r\nLast-Event-ID: e2\r\n"));
	assert_non_null(strcasestr(s.requests[2], "\r\nanthropic-beta: managed-agents-2026-04-01\r\n"));
	assert_non_null(strcasestr(s.requests[2], "\r\nAuthorization: Bearer sk-test\r\n"));
}

static void test_watch_until_idle(void **state)
{
	/* An idle end_turn that is the newest event of the history ends the watch at once. */
	static struct script s = {
		.nreplies = 2,
		.replies = {SSE_HEAD, HISTORY(EV("e1", "session.status_idle", ",\"stop_reason\":{\"type\":\"end_turn\"}"))},
	};
	script_start(&s);
	char out[4096];
	assert_int_equal(watch_into(&s, 1, out, sizeof(out)), 0);
	script_stop(&s);
	assert_string_equal(out, "session.status_idle       end_turn\n");
	/* One followed by a new message waits for the next idle, on the stream. */
	static struct script t = {
		.nreplies = 2,
		.replies = {
			SSE_HEAD FRAME("e3", "session.status_idle", ",\"stop_reason\":{\"type\":\"requires_action\",\"event_ids\":[\"x\"]}")
				FRAME("e4", "session.status_idle", ",\"stop_reason\":{\"type\":\"end_turn\"}"),
			HISTORY(EV("e1", "session.status_idle", ",\"stop_reason\":{\"type\":\"end_turn\"}") ","
				EV("e2", "user.message", ",\"content\":[]")),
		},
	};
	script_start(&t);
	assert_int_equal(watch_into(&t, 1, out, sizeof(out)), 0);
	script_stop(&t);
	assert_int_equal(t.served, 2);
	assert_string_equal(out, "session.status_idle       end_turn\nuser.message\n"
				 "session.status_idle       requires_action x\nsession.status_idle       end_turn\n");
}

static void test_watch_refused(void **state)
{
	static struct script s = {
		.nreplies = 1,
		.replies = {"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
			    "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"no session sesn_1\"}}"},
	};
	script_start(&s);
	char out[256];
	assert_int_equal(watch_into(&s, 0, out, sizeof(out)), 1);
	script_stop(&s);
}

int main(void)
{
	client_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_renderings),
		cmocka_unit_test(test_watch_next),
		cmocka_unit_test(test_watch_reconnects_without_repeats),
		cmocka_unit_test(test_watch_until_idle),
		cmocka_unit_test(test_watch_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
