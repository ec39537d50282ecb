/* test_echo.c - unit tests of the echo agent's decisions (src/agent/echo.c): each
 * transcript, as the events list returns it, and the turn that must follow. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/echo.h"

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, 0, &err);
	if (!v)
		fail_msg("bad JSON in test: %s: %s", err.text, text);
	return v;
}

/* Plan the transcript given as JSON text. */
static void plan_of(const char *transcript, struct echo_plan *plan)
{
	json_t *events = parse(transcript);
	assert_int_equal(echo_plan(events, plan), 0);
	json_decref(events);
}

#define USER_MSG(id, text) "{\"id\":\"" id "\",\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"" text "\"}]}"
#define RUNNING(id) "{\"id\":\"" id "\",\"type\":\"session.status_running\"}"
#define TOOL_USE(id, cmd) "{\"id\":\"" id "\",\"type\":\"agent.tool_use\",\"name\":\"bash\",\"input\":{\"command\":\"" cmd "\"}}"
#define IDLE_RA(id, ids) "{\"id\":\"" id "\",\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"requires_action\",\"event_ids\":" ids "}}"
#define RESULT(id, use, err, text) "{\"id\":\"" id "\",\"type\":\"user.tool_result\",\"tool_use_id\":\"" use "\",\"is_error\":" err ",\"content\":[{\"type\":\"text\",\"text\":\"" text "\"}]}"
#define AGENT_MSG(id, text) "{\"id\":\"" id "\",\"type\":\"agent.message\",\"content\":[{\"type\":\"text\",\"text\":\"" text "\"}]}"
#define IDLE_END(id) "{\"id\":\"" id "\",\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"end_turn\"}}"

static void test_message_becomes_one_bash_tool_use(void **state)
{
	struct echo_plan p;
	plan_of("[" USER_MSG("e1", "echo hi > hello.txt") "]", &p);
	assert_int_equal(p.action, ECHO_RUN_COMMAND);
	assert_string_equal(p.text, "echo hi > hello.txt");
	json_t *ev = echo_tool_use_event(p.text);
	assert_string_equal(json_string_value(json_object_get(ev, "type")), "agent.tool_use");
	assert_string_equal(json_string_value(json_object_get(ev, "name")), "bash");
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "input"), "command")),
			    "echo hi > hello.txt");
	json_decref(ev);
	echo_plan_free(&p);
}

static void test_result_becomes_a_report_quoting_the_output(void **state)
{
	struct echo_plan p;
	plan_of("[" USER_MSG("e1", "ls") "," RUNNING("e2") "," TOOL_USE("e3", "ls") "," IDLE_RA("e4", "[\"e3\"]") ","
		RESULT("e5", "e3", "false", "a.txt\\nb.txt") "]", &p);
	assert_int_equal(p.action, ECHO_REPORT);
	assert_string_equal(p.text, "Ran `ls` (exit status 0):\na.txt\nb.txt");
	echo_plan_free(&p);
	/* A failed command says so and never invents an exit status. */
	plan_of("[" USER_MSG("e1", "false") "," TOOL_USE("e3", "false") "," IDLE_RA("e4", "[\"e3\"]") ","
		RESULT("e5", "e3", "true", "exit 1") "]", &p);
	assert_int_equal(p.action, ECHO_REPORT);
	assert_string_equal(p.text, "Ran `false` (it failed):\nexit 1");
	echo_plan_free(&p);
	/* No output at all. */
	plan_of("[" USER_MSG("e1", "true") "," TOOL_USE("e3", "true") "," RESULT("e5", "e3", "false", "") "]", &p);
	assert_string_equal(p.text, "Ran `true` (exit status 0):\n(no output)");
	echo_plan_free(&p);
}

static void test_second_turn_runs_the_new_message(void **state)
{
	struct echo_plan p;
	plan_of("[" USER_MSG("e1", "a") "," TOOL_USE("e3", "a") "," RESULT("e5", "e3", "false", "x") ","
		AGENT_MSG("e6", "Ran") "," IDLE_END("e7") "," USER_MSG("e8", "b") "]", &p);
	assert_int_equal(p.action, ECHO_RUN_COMMAND);
	assert_string_equal(p.text, "b");
	echo_plan_free(&p);
}

static void test_resumed_turns_post_nothing_twice(void **state)
{
	struct echo_plan p;
	/* The tool use was posted by a runner that died before going idle: wait on it. */
	plan_of("[" USER_MSG("e1", "a") "," RUNNING("e2") "," TOOL_USE("e3", "a") "]", &p);
	assert_int_equal(p.action, ECHO_AWAIT);
	assert_int_equal(json_array_size(p.pending), 1);
	assert_string_equal(json_string_value(json_array_get(p.pending, 0)), "e3");
	echo_plan_free(&p);
	/* The report was posted, the idle was not: only the idle is left. */
	plan_of("[" USER_MSG("e1", "a") "," TOOL_USE("e3", "a") "," RESULT("e5", "e3", "false", "x") ","
		AGENT_MSG("e6", "Ran") "]", &p);
	assert_int_equal(p.action, ECHO_NOTHING);
	echo_plan_free(&p);
}

static void test_only_unanswered_tool_uses_are_pending(void **state)
{
	struct echo_plan p;
	plan_of("[" USER_MSG("e1", "a") "," TOOL_USE("e3", "a") "," TOOL_USE("e4", "b") ","
		RESULT("e5", "e3", "false", "x") "]", &p);
	assert_int_equal(p.action, ECHO_AWAIT);
	assert_int_equal(json_array_size(p.pending), 1);
	assert_string_equal(json_string_value(json_array_get(p.pending, 0)), "e4");
	json_t *idle = echo_idle_requires_action_event(p.pending);
	json_t *reason = json_object_get(idle, "stop_reason");
	assert_string_equal(json_string_value(json_object_get(reason, "type")), "requires_action");
	assert_true(json_equal(json_object_get(reason, "event_ids"), p.pending));
	json_decref(idle);
	echo_plan_free(&p);
	/* Both answered: one report on both, in order. */
	plan_of("[" USER_MSG("e1", "a") "," TOOL_USE("e3", "a") "," TOOL_USE("e4", "b") ","
		RESULT("e6", "e4", "false", "y") "," RESULT("e5", "e3", "false", "x") "]", &p);
	assert_int_equal(p.action, ECHO_REPORT);
	assert_string_equal(p.text, "Ran `a` (exit status 0):\nx\n\nRan `b` (exit status 0):\ny");
	echo_plan_free(&p);
}

static void test_denied_confirmation_is_reported(void **state)
{
	struct echo_plan p;
	plan_of("[" USER_MSG("e1", "rm -rf /") "," TOOL_USE("e3", "rm -rf /") ","
		"{\"id\":\"e5\",\"type\":\"user.tool_confirmation\",\"tool_use_id\":\"e3\",\"result\":\"deny\","
		"\"deny_message\":\"no\"}]", &p);
	assert_int_equal(p.action, ECHO_REPORT);
	assert_string_equal(p.text, "Did not run `rm -rf /`: the tool use was denied: no.");
	echo_plan_free(&p);
	/* An allowed one still waits for the result. */
	plan_of("[" USER_MSG("e1", "ls") "," TOOL_USE("e3", "ls") ","
		"{\"id\":\"e5\",\"type\":\"user.tool_confirmation\",\"tool_use_id\":\"e3\",\"result\":\"allow\"}]", &p);
	assert_int_equal(p.action, ECHO_AWAIT);
	echo_plan_free(&p);
}

static void test_nothing_to_do(void **state)
{
	struct echo_plan p;
	plan_of("[]", &p);
	assert_int_equal(p.action, ECHO_NOTHING);
	plan_of("[" USER_MSG("e1", "a") ",{\"id\":\"e2\",\"type\":\"user.interrupt\"}]", &p);
	assert_int_equal(p.action, ECHO_NOTHING);
	/* A message without text is answered, not run. */
	plan_of("[" USER_MSG("e1", "  \\n") "]", &p);
	assert_int_equal(p.action, ECHO_REPORT);
	assert_string_equal(p.text, "Nothing to run: the message holds no command text.");
	echo_plan_free(&p);
	plan_of("[{\"id\":\"e1\",\"type\":\"user.message\",\"content\":[{\"type\":\"image\"}]}]", &p);
	assert_int_equal(p.action, ECHO_REPORT);
	echo_plan_free(&p);
}

static void test_long_inputs_are_bounded(void **state)
{
	/* A command over the maximum is refused whole. */
	size_t n = ECHO_COMMAND_MAX + 1;
	char *big = malloc(n + 1);
	memset(big, 'a', n);
	big[n] = '\0';
	json_t *events = json_pack("[{s:s,s:s,s:[{s:s,s:s}]}]", "id", "e1", "type", "user.message", "content", "type",
				   "text", "text", big);
	struct echo_plan p;
	assert_int_equal(echo_plan(events, &p), 0);
	assert_int_equal(p.action, ECHO_REPORT);
	assert_non_null(strstr(p.text, "at most"));
	echo_plan_free(&p);
	json_decref(events);
	/* A long output is cut on a character boundary: 'é' is two bytes. */
	size_t out_len = ECHO_QUOTE_MAX + 100;
	char *out = malloc(out_len + 1);
	out[0] = 'x';
	for (size_t i = 1; i + 1 < out_len; i += 2) {
		out[i] = (char)0xC3;
		out[i + 1] = (char)0xA9;
	}
	out[out_len - 1] = 'y';
	out[out_len] = '\0';
	events = json_pack("[{s:s,s:s,s:[{s:s,s:s}]},{s:s,s:s,s:s,s:{s:s}},{s:s,s:s,s:s,s:b,s:[{s:s,s:s}]}]", "id",
			   "e1", "type", "user.message", "content", "type", "text", "text", "cat f", "id", "e2", "type",
			   "agent.tool_use", "name", "bash", "input", "command", "cat f", "id", "e3", "type",
			   "user.tool_result", "tool_use_id", "e2", "is_error", 0, "content", "type", "text", "text", out);
	assert_non_null(events);
	assert_int_equal(echo_plan(events, &p), 0);
	assert_int_equal(p.action, ECHO_REPORT);
	assert_non_null(strstr(p.text, "(output cut:"));
	/* What is quoted is still valid UTF-8: jansson refuses the string otherwise. */
	json_t *msg = echo_message_event(p.text);
	assert_non_null(msg);
	json_decref(msg);
	echo_plan_free(&p);
	json_decref(events);
	free(out);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_becomes_one_bash_tool_use),
		cmocka_unit_test(test_result_becomes_a_report_quoting_the_output),
		cmocka_unit_test(test_second_turn_runs_the_new_message),
		cmocka_unit_test(test_resumed_turns_post_nothing_twice),
		cmocka_unit_test(test_only_unanswered_tool_uses_are_pending),
		cmocka_unit_test(test_denied_confirmation_is_reported),
		cmocka_unit_test(test_nothing_to_do),
		cmocka_unit_test(test_long_inputs_are_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
