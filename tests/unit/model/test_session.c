/* test_session.c - unit tests of the session and event invariants (src/model/session.c):
 * which client and agent events a state accepts, what they store, and how the state moves
 * (awaiting a turn, unanswered tool uses, requires_action, terminated). A refused batch
 * leaves nothing: no stored events and no new state. Time is a number passed in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "model/session.h"
#include "repeat.h"

#define NOW INT64_C(1800000000000000)

static char ids[8][ID_MAX];

static json_t *agent_config(void)
{
	json_t *a = json_loads("{\"tools\":[{\"type\":\"agent_toolset_20260401\",\"configs\":[{\"name\":\"write\","
			       "\"type\":\"write\",\"enabled\":false,\"permission_policy\":{\"type\":\"always_allow\"}}],"
			       "\"default_config\":{\"enabled\":true,\"permission_policy\":{\"type\":\"always_allow\"}}},"
			       "{\"type\":\"custom\",\"name\":\"lookup\",\"description\":\"d\","
			       "\"input_schema\":{\"type\":\"object\"}}]}",
			       0, NULL);
	assert_non_null(a);
	return a;
}

static void set_ids(void)
{
	for (int i = 0; i < 8; i++)
		snprintf(ids[i], ID_MAX, "sevt_%024d", i + 1);
}

/* Apply client events given as JSON text; returns the error and leaves next/stored. */
static enum err client(const struct session_state *st, const char *events, struct session_state *next, json_t **stored,
		       struct errbuf *eb)
{
	json_t *ev = json_loads(events, 0, NULL);
	assert_non_null(ev);
	enum err rc = session_client_events(st, ev, (const char(*)[ID_MAX])ids, NOW, 0, NULL, NULL, next, stored, eb);
	json_decref(ev);
	return rc;
}

static enum err agent(const struct session_state *st, const char *events, struct session_state *next, json_t **stored,
		      int *ended, struct errbuf *eb)
{
	json_t *ev = json_loads(events, 0, NULL);
	json_t *cfg = agent_config();
	assert_non_null(ev);
	enum err rc = session_agent_events(st, cfg, ev, (const char(*)[ID_MAX])ids, NOW, next, stored, ended, eb);
	json_decref(ev);
	json_decref(cfg);
	return rc;
}

/* Move *st to next (st's old content released). */
static void advance(struct session_state *st, struct session_state *next)
{
	session_state_clear(st);
	*st = *next;
}

static void test_user_message_awaits_a_turn(void **state)
{
	set_ids();
	struct session_state st, next;
	assert_int_equal(0, session_state_init(&st));
	assert_false(session_needs_worker(&st));
	json_t *stored;
	struct errbuf eb = {{0}};
	assert_int_equal(ERR_OK, client(&st, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}]",
					&next, &stored, &eb));
	assert_true(next.awaiting_turn);
	assert_true(session_needs_worker(&next));
	assert_int_equal(1, json_array_size(stored));
	json_t *ev = json_array_get(stored, 0);
	assert_string_equal(ids[0], json_string_value(json_object_get(ev, "id")));
	assert_string_equal("user.message", json_string_value(json_object_get(ev, "type")));
	assert_string_equal("2027-01-15T08:00:00.000000Z", json_string_value(json_object_get(ev, "processed_at")));
	assert_false(st.awaiting_turn); /* the input state is untouched */
	json_decref(stored);
	session_state_clear(&next);
	session_state_clear(&st);
}

static void test_bad_client_events_are_refused_whole(void **state)
{
	set_ids();
	struct session_state st, next;
	assert_int_equal(0, session_state_init(&st));
	static const struct {
		const char *events;
		const char *names;
	} cases[] = {
		{"[]", "events"},
		{"[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]},{\"type\":\"agent.message\"}]",
		 "events[1].type"},
		{"[{\"type\":\"user.message\",\"content\":[]}]", "events[0].content"},
		{"[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":1}]}]", "events[0].content[0].text"},
		{"[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"extra\":1}]", "extra"},
		{"[{\"type\":\"user.tool_result\",\"tool_use_id\":\"sevt_unknown\"}]", "events[0].tool_use_id"},
		{"[{\"type\":\"user.custom_tool_result\",\"custom_tool_use_id\":\"sevt_unknown\"}]",
		 "events[0].custom_tool_use_id"},
		{"[{\"type\":\"user.tool_confirmation\",\"tool_use_id\":\"sevt_x\",\"result\":\"maybe\"}]", "events[0].result"},
		{"[{\"type\":\"session.deleted\"}]", "events[0].type"},
		{"[{\"type\":\"user.interrupt\",\"session_thread_id\":5}]", "events[0].session_thread_id"},
		{"[7]", "events[0]"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *stored = (json_t *)1;
		struct errbuf eb = {{0}};
		assert_int_equal(ERR_INVALID, client(&st, cases[i].events, &next, &stored, &eb));
		assert_null(stored);
		if (!strstr(eb.message, cases[i].names))
			fail_msg("case %zu: \"%s\" does not name %s", i, eb.message, cases[i].names);
	}
	char *big = repeat("x", SESSION_TEXT_MAX + 1);
	json_t *ev = json_pack("[{s:s,s:[{s:s,s:s}]}]", "type", "user.message", "content", "type", "text", "text", big);
	free(big);
	json_t *stored;
	struct errbuf eb = {{0}};
	assert_int_equal(ERR_INVALID, session_client_events(&st, ev, (const char(*)[ID_MAX])ids, NOW, 0, NULL, NULL, &next,
							    &stored, &eb));
	assert_non_null(strstr(eb.message, "longer than"));
	json_decref(ev);
	session_state_clear(&st);
}

/* user.message → turn: tool_use (pending) → requires_action → result → awaiting again. */
static void test_tool_use_cycle(void **state)
{
	set_ids();
	struct session_state st, next;
	json_t *stored;
	int ended;
	struct errbuf eb = {{0}};
	assert_int_equal(0, session_state_init(&st));
	assert_int_equal(ERR_OK, client(&st, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"go\"}]}]",
					&next, &stored, &eb));
	json_decref(stored);
	advance(&st, &next);
	st.awaiting_turn = 0; /* claimed */
	snprintf(st.turn_id, sizeof(st.turn_id), "turn_x");
	snprintf(ids[0], ID_MAX, "sevt_use1");
	snprintf(ids[1], ID_MAX, "sevt_use2");
	assert_int_equal(ERR_OK, agent(&st,
				       "[{\"type\":\"agent.tool_use\",\"name\":\"bash\",\"input\":{\"command\":\"ls\"}},"
				       "{\"type\":\"agent.custom_tool_use\",\"name\":\"lookup\",\"input\":{}}]",
				       &next, &stored, &ended, &eb));
	assert_false(ended);
	assert_int_equal(2, json_object_size(next.pending));
	json_decref(stored);
	advance(&st, &next);
	/* end_turn with tool uses unanswered: refused. */
	assert_int_equal(ERR_INVALID, agent(&st, "[{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"end_turn\"}}]",
					    &next, &stored, &ended, &eb));
	assert_non_null(strstr(eb.message, "stop_reason"));
	/* requires_action must list exactly the unanswered ones. */
	assert_int_equal(ERR_INVALID,
			 agent(&st,
			       "[{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"requires_action\","
			       "\"event_ids\":[\"sevt_use1\"]}}]",
			       &next, &stored, &ended, &eb));
	assert_non_null(strstr(eb.message, "event_ids"));
	assert_int_equal(ERR_INVALID,
			 agent(&st,
			       "[{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"requires_action\","
			       "\"event_ids\":[\"sevt_use1\",\"sevt_use1\"]}}]",
			       &next, &stored, &ended, &eb));
	set_ids();
	assert_int_equal(ERR_OK, agent(&st,
				       "[{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"requires_action\","
				       "\"event_ids\":[\"sevt_use2\",\"sevt_use1\"]}}]",
				       &next, &stored, &ended, &eb));
	assert_true(ended);
	assert_string_equal("", next.turn_id);
	assert_int_equal(SESSION_IDLE, next.status);
	assert_true(json_is_null(json_object_get(json_array_get(stored, 0), "stop_details")));
	json_decref(stored);
	advance(&st, &next);
	assert_true(session_needs_worker(&st)); /* an agent.tool_use is unanswered */
	/* A result for the custom tool use alone: one still required, no turn yet. */
	assert_int_equal(ERR_OK,
			 client(&st, "[{\"type\":\"user.custom_tool_result\",\"custom_tool_use_id\":\"sevt_use2\"}]",
				&next, &stored, &eb));
	assert_false(next.awaiting_turn);
	json_decref(stored);
	advance(&st, &next);
	/* A tool result naming the custom use as a plain tool use: refused. */
	assert_int_equal(ERR_INVALID, client(&st, "[{\"type\":\"user.tool_result\",\"tool_use_id\":\"sevt_use2\"}]", &next,
					     &stored, &eb));
	/* The last one answered: the session awaits the next turn. */
	assert_int_equal(ERR_OK,
			 client(&st,
				"[{\"type\":\"user.tool_result\",\"tool_use_id\":\"sevt_use1\",\"is_error\":true,"
				"\"content\":[{\"type\":\"text\",\"text\":\"no\"}]}]",
				&next, &stored, &eb));
	assert_true(next.awaiting_turn);
	assert_int_equal(0, json_object_size(next.pending));
	assert_true(json_is_true(json_object_get(json_array_get(stored, 0), "is_error")));
	json_decref(stored);
	advance(&st, &next);
	session_state_clear(&st);
}

static int known_yes(void *ctx, const char *id, int custom) { return 1; }

static void test_duplicate_result_changes_nothing(void **state)
{
	set_ids();
	struct session_state st, next;
	assert_int_equal(0, session_state_init(&st));
	json_t *ev = json_loads("[{\"type\":\"user.tool_result\",\"tool_use_id\":\"sevt_done\"}]", 0, NULL);
	json_t *stored;
	struct errbuf eb = {{0}};
	assert_int_equal(ERR_OK, session_client_events(&st, ev, (const char(*)[ID_MAX])ids, NOW, 0, known_yes, NULL, &next,
						       &stored, &eb));
	assert_int_equal(0, json_array_size(stored));
	assert_false(next.awaiting_turn);
	json_decref(stored);
	session_state_clear(&next);
	json_decref(ev);
	session_state_clear(&st);
}

static void test_agent_invariants(void **state)
{
	set_ids();
	struct session_state st, next;
	assert_int_equal(0, session_state_init(&st));
	snprintf(st.turn_id, sizeof(st.turn_id), "turn_x");
	json_t *stored;
	int ended;
	struct errbuf eb = {{0}};
	static const struct {
		const char *events;
		const char *names;
	} bad[] = {
		{"[{\"type\":\"agent.tool_use\",\"name\":\"write\",\"input\":{}}]", "events[0].name"}, /* disabled */
		{"[{\"type\":\"agent.tool_use\",\"name\":\"lookup\",\"input\":{}}]", "events[0].name"}, /* a custom one */
		{"[{\"type\":\"agent.custom_tool_use\",\"name\":\"bash\",\"input\":{}}]", "events[0].name"},
		{"[{\"type\":\"agent.tool_use\",\"name\":\"bash\",\"input\":[]}]", "events[0].input"},
		{"[{\"type\":\"agent.message\",\"content\":[{\"type\":\"image\"}]}]", "events[0].content[0].type"},
		{"[{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"requires_action\",\"event_ids\":[]}}]",
		 "stop_reason"},
		{"[{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"nap\"}}]", "events[0].stop_reason.type"},
		{"[{\"type\":\"session.status_idle\",\"stop_reason\":{\"type\":\"end_turn\"}},{\"type\":\"session.status_running\"}]",
		 "events[1]"},
		{"[{\"type\":\"user.message\",\"content\":[]}]", "events[0].type"},
		{"[{\"type\":\"session.error\",\"error\":{\"type\":\"unknown_error\"}}]", "events[0].error.message"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		stored = (json_t *)1;
		assert_int_equal(ERR_INVALID, agent(&st, bad[i].events, &next, &stored, &ended, &eb));
		assert_null(stored);
		assert_false(ended);
		if (!strstr(eb.message, bad[i].names))
			fail_msg("case %zu: \"%s\" does not name %s", i, eb.message, bad[i].names);
	}
	assert_int_equal(ERR_OK, agent(&st, "[{\"type\":\"session.status_running\"},{\"type\":\"session.status_terminated\"}]",
				       &next, &stored, &ended, &eb));
	assert_true(ended);
	assert_int_equal(SESSION_TERMINATED, next.status);
	assert_false(session_needs_worker(&next));
	json_decref(stored);
	advance(&st, &next);
	/* Terminated is final, for both sides. */
	assert_int_equal(ERR_INVALID, agent(&st, "[{\"type\":\"session.status_running\"}]", &next, &stored, &ended, &eb));
	assert_int_equal(ERR_INVALID, client(&st, "[{\"type\":\"user.message\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]",
					     &next, &stored, &eb));
	assert_non_null(strstr(eb.message, "terminated"));
	session_state_clear(&st);
}

static void test_confirmation_and_initial_events(void **state)
{
	set_ids();
	struct session_state st, next;
	assert_int_equal(0, session_state_init(&st));
	json_decref(st.pending);
	st.pending = json_loads("{\"sevt_u\":{\"name\":\"bash\",\"custom\":false}}", 0, NULL);
	json_t *stored;
	struct errbuf eb = {{0}};
	assert_int_equal(ERR_OK, client(&st,
					"[{\"type\":\"user.tool_confirmation\",\"tool_use_id\":\"sevt_u\",\"result\":\"deny\","
					"\"deny_message\":\"no\"}]",
					&next, &stored, &eb));
	assert_true(next.awaiting_turn);
	assert_int_equal(0, json_object_size(next.pending)); /* a denial answers the call */
	json_decref(stored);
	session_state_clear(&next);
	/* initial_events take user.message only. */
	json_t *ev = json_loads("[{\"type\":\"user.interrupt\"}]", 0, NULL);
	assert_int_equal(ERR_INVALID, session_client_events(&st, ev, (const char(*)[ID_MAX])ids, NOW, 1, NULL, NULL, &next,
							    &stored, &eb));
	assert_non_null(strstr(eb.message, "initial_events[0].type"));
	json_decref(ev);
	session_state_clear(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_message_awaits_a_turn),
		cmocka_unit_test(test_bad_client_events_are_refused_whole),
		cmocka_unit_test(test_tool_use_cycle),
		cmocka_unit_test(test_duplicate_result_changes_nothing),
		cmocka_unit_test(test_agent_invariants),
		cmocka_unit_test(test_confirmation_and_initial_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
