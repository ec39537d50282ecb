/* test_sse.c - unit tests of the Server-Sent Events parser (src/client/sse.c).
 *
 * Every stream is parsed whole, byte by byte, and split in two at every offset (and in
 * three at every pair of offsets for the short ones): the events must not depend on how
 * the transport cut the bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "client/sse.h"

/* What the callbacks saw, as text: "id|type|data\n" per event, "#text\n" per comment. */
struct seen {
	char log[8192];
	size_t len;
	int events;
	int stop_after; /* stop the parser after this many events; 0 = never */
};

static void record(struct seen *s, const char *fmt, const char *a, const char *b, const char *c, size_t clen)
{
	int n = snprintf(s->log + s->len, sizeof(s->log) - s->len, fmt, a, b, (int)clen, c);
	assert_true(n > 0 && (size_t)n < sizeof(s->log) - s->len);
	s->len += (size_t)n;
}

static int on_event(const struct sse_event *ev, void *userdata)
{
	struct seen *s = userdata;
	assert_int_equal(strlen(ev->data), ev->data_len);
	record(s, "%s|%s|%.*s\n", ev->id, ev->type, ev->data, ev->data_len);
	s->events++;
	return s->stop_after && s->events >= s->stop_after;
}

static void on_comment(const char *text, size_t len, void *userdata)
{
	record(userdata, "#%s%s%.*s\n", "", "", text, len);
}

/* Parse stream cut at the given offsets (ascending, nsplit of them); returns the result
 * of the last feed and leaves what was seen in *s. */
static enum sse_result parse_split(const char *stream, size_t len, const size_t *splits, int nsplit,
				   struct seen *s, const char *initial_id, size_t max_line, long *retry)
{
	struct sse_parser p;
	memset(s, 0, sizeof(*s) - sizeof(s->stop_after));
	sse_init(&p, max_line, 1024, initial_id, on_event, on_comment, s);
	enum sse_result r = SSE_OK;
	size_t at = 0;
	for (int k = 0; k <= nsplit; k++) {
		size_t end = k < nsplit ? splits[k] : len;
		r = sse_feed(&p, stream + at, end - at);
		at = end;
	}
	if (retry)
		*retry = p.retry_ms;
	sse_free(&p);
	return r;
}

/* Check that every way of cutting stream gives want (and the result want_r). */
static void check_all_splits(const char *stream, const char *want, enum sse_result want_r)
{
	size_t len = strlen(stream);
	struct seen s = {0};
	assert_int_equal(parse_split(stream, len, NULL, 0, &s, NULL, 1024, NULL), want_r);
	assert_string_equal(s.log, want);
	for (size_t a = 0; a <= len; a++) {
		size_t one[1] = {a};
		assert_int_equal(parse_split(stream, len, one, 1, &s, NULL, 1024, NULL), want_r);
		if (strcmp(s.log, want) != 0)
			fail_msg("split at %zu: got\n%s\nwant\n%s", a, s.log, want);
		if (len > 64)
			continue;
		for (size_t b = a; b <= len; b++) {
			size_t two[2] = {a, b};
			parse_split(stream, len, two, 2, &s, NULL, 1024, NULL);
			if (strcmp(s.log, want) != 0)
				fail_msg("split at %zu,%zu: got\n%s\nwant\n%s", a, b, s.log, want);
		}
	}
	/* Byte by byte. */
	size_t *every = malloc(len * sizeof(size_t) + 1);
	for (size_t i = 0; i < len; i++)
		every[i] = i;
	parse_split(stream, len, every, (int)len, &s, NULL, 1024, NULL);
	free(every);
	assert_string_equal(s.log, want);
}

static void test_frames_like_the_server_sends(void **state)
{
	check_all_splits("id: sevt_1\nevent: user.message\ndata: {\"a\":1}\n\n"
			 ": keepalive\n\n"
			 "id: sevt_2\nevent: agent.message\ndata: {\"b\":2}\n\n",
			 "sevt_1|user.message|{\"a\":1}\n# keepalive\nsevt_2|agent.message|{\"b\":2}\n", SSE_OK);
}

static void test_line_endings_crlf_cr_lf(void **state)
{
	const char *want = "1|t|x\n2|message|y\n3|message|z\n";
	check_all_splits("id: 1\r\nevent: t\r\ndata: x\r\n\r\nid: 2\rdata: y\r\rid: 3\ndata: z\n\n", want, SSE_OK);
	/* CR then LF is one line end, not a line end and an empty line. */
	check_all_splits("data: a\r\n\r\ndata: b\r\r", "|message|a\n|message|b\n", SSE_OK);
}

static void test_multiline_data_and_field_rules(void **state)
{
	/* Lines join with \n; one leading space is dropped, not two; no colon = empty value;
	 * unknown fields are ignored; `data` alone is an empty line of data. */
	check_all_splits("data:one\ndata:  two\ndata\nfoo: bar\n\n", "|message|one\n two\n\n", SSE_OK);
	/* No data since the last dispatch: nothing is dispatched, and the type resets. */
	check_all_splits("event: lost\n\ndata: x\n\n", "|message|x\n", SSE_OK);
	/* The id sticks to later events; an empty id clears it. */
	check_all_splits("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", "7|message|a\n7|message|b\n|message|c\n",
			 SSE_OK);
	/* An event the stream never finished is not dispatched. */
	check_all_splits("data: done\n\ndata: half", "|message|done\n", SSE_OK);
}

static void test_bom_is_skipped_once(void **state)
{
	check_all_splits("\xEF\xBB\xBF" "data: a\n\n", "|message|a\n", SSE_OK);
	/* A second BOM is part of the line: the field name is then not "data". */
	check_all_splits("\xEF\xBB\xBF\xEF\xBB\xBF" "data: a\n\ndata: b\n\n", "|message|b\n", SSE_OK);
	/* A partial BOM is content. */
	check_all_splits("\xEF\xBB" "x\ndata: b\n\n", "|message|b\n", SSE_OK);
	/* ... so a partial BOM makes the field name something other than "data". */
	check_all_splits("\xEF" "data: a\n\ndata: b\n\n", "|message|b\n", SSE_OK);
}

static void test_retry_and_initial_id(void **state)
{
	struct seen s = {0};
	long retry = 0;
	const char *stream = "retry: 2500\nretry: 12x\ndata: a\n\n";
	parse_split(stream, strlen(stream), NULL, 0, &s, "sevt_9", 1024, &retry);
	assert_int_equal(retry, 2500);
	assert_string_equal(s.log, "sevt_9|message|a\n");
}

static void test_limits_fail_the_stream(void **state)
{
	struct seen s = {0};
	char line[200];
	memset(line, 'x', sizeof(line));
	memcpy(line, "data: ", 6);
	line[sizeof(line) - 1] = '\n';
	/* 199 bytes of line against a 100-byte maximum. */
	assert_int_equal(parse_split(line, sizeof(line), NULL, 0, &s, NULL, 100, NULL), SSE_TOO_LONG);
	size_t cut[1] = {150};
	assert_int_equal(parse_split(line, sizeof(line), cut, 1, &s, NULL, 100, NULL), SSE_TOO_LONG);
	/* Many short data lines past the data maximum (1024). */
	struct sse_parser p;
	sse_init(&p, 1024, 1024, NULL, on_event, NULL, &s);
	enum sse_result r = SSE_OK;
	for (int i = 0; i < 200 && r == SSE_OK; i++)
		r = sse_feed(&p, "data: 0123456789\n", 17);
	assert_int_equal(r, SSE_TOO_LONG);
	/* Sticky: nothing more is parsed. */
	assert_int_equal(sse_feed(&p, "\n", 1), SSE_TOO_LONG);
	sse_free(&p);
	/* An over-long id or event type fails too. */
	char id[SSE_ID_MAX + 10];
	memset(id, 'i', sizeof(id));
	memcpy(id, "id: ", 4);
	id[sizeof(id) - 1] = '\n';
	assert_int_equal(parse_split(id, sizeof(id), NULL, 0, &s, NULL, 1024, NULL), SSE_TOO_LONG);
}

static void test_callback_stops_the_parser(void **state)
{
	struct seen s = {.stop_after = 1};
	const char *stream = "data: a\n\ndata: b\n\n";
	assert_int_equal(parse_split(stream, strlen(stream), NULL, 0, &s, NULL, 1024, NULL), SSE_STOPPED);
	assert_string_equal(s.log, "|message|a\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_like_the_server_sends),
		cmocka_unit_test(test_line_endings_crlf_cr_lf),
		cmocka_unit_test(test_multiline_data_and_field_rules),
		cmocka_unit_test(test_bom_is_skipped_once),
		cmocka_unit_test(test_retry_and_initial_id),
		cmocka_unit_test(test_limits_fail_the_stream),
		cmocka_unit_test(test_callback_stops_the_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
