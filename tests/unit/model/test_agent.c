/* test_agent.c - unit tests of agent configurations (src/model/agent.c): the normalized
 * shape a create body becomes, merge updates and when they change anything, the tools an
 * agent offers, and every refusal naming its field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "model/agent.h"
#include "repeat.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);
	if (!v)
		fail_msg("bad test JSON: %s", e.text);
	return v;
}

static json_t *create_ok(const char *body)
{
	json_t *b = parse(body), *cfg = NULL;
	struct errbuf eb = {{0}};
	if (agent_from_create(b, &cfg, &eb) != ERR_OK)
		fail_msg("create refused: %s", eb.message);
	json_decref(b);
	return cfg;
}

static void test_create_normalizes(void **state)
{
	json_t *cfg = create_ok("{\"name\":\"a\",\"model\":\"claude-sonnet-4-5\"}");
	json_t *want = parse("{\"name\":\"a\",\"model\":{\"id\":\"claude-sonnet-4-5\"},\"description\":null,\"system\":null,"
			     "\"tools\":[],\"skills\":[],\"mcp_servers\":[],\"multiagent\":null,"
			     "\"execution_identity\":null,\"metadata\":{}}");
	assert_true(json_equal(want, cfg));
	json_decref(want);
	json_decref(cfg);
	cfg = create_ok("{\"name\":\"a\",\"model\":{\"id\":\"m\",\"effort\":\"high\",\"speed\":\"fast\"},"
			"\"tools\":[{\"type\":\"agent_toolset_20260401\",\"configs\":[{\"name\":\"bash\",\"enabled\":false}]},"
			"{\"type\":\"custom\",\"name\":\"lookup\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\","
			"\"properties\":{\"q\":{\"type\":\"string\"}},\"required\":[\"q\"]}}],\"metadata\":{\"k\":\"v\"}}");
	assert_string_equal("m", agent_model_id(cfg));
	json_t *want_model = parse("{\"id\":\"m\",\"effort\":{\"type\":\"high\"},\"speed\":\"fast\"}");
	assert_true(json_equal(want_model, json_object_get(cfg, "model")));
	json_decref(want_model);
	assert_false(agent_has_toolset_tool(cfg, "bash")); /* disabled by its config */
	assert_true(agent_has_toolset_tool(cfg, "read"));  /* enabled by the default config */
	assert_false(agent_has_toolset_tool(cfg, "web_fetch"));
	assert_true(agent_has_custom_tool(cfg, "lookup"));
	assert_false(agent_has_custom_tool(cfg, "read"));
	json_t *ts = json_array_get(json_object_get(cfg, "tools"), 0);
	json_t *want_ts = parse("{\"type\":\"agent_toolset_20260401\",\"configs\":[{\"enabled\":false,\"name\":\"bash\","
				"\"permission_policy\":{\"type\":\"always_allow\"},\"type\":\"bash\"}],"
				"\"default_config\":{\"enabled\":true,\"permission_policy\":{\"type\":\"always_allow\"}}}");
	assert_true(json_equal(want_ts, ts));
	json_decref(want_ts);
	json_decref(cfg);
}

static void test_create_refusals_name_the_field(void **state)
{
	char *long_name = repeat("n", AGENT_NAME_MAX + 1);
	char body_long[512];
	snprintf(body_long, sizeof(body_long), "{\"name\":\"%s\",\"model\":\"m\"}", long_name);
	free(long_name);
	const struct {
		const char *body;
		const char *names;
	} cases[] = {
		{"{\"model\":\"m\"}", "name"},
		{"{\"name\":\"a\"}", "model"},
		{"{\"name\":\"\",\"model\":\"m\"}", "name"},
		{"{\"name\":\"a\",\"model\":{}}", "model.id"},
		{"{\"name\":\"a\",\"model\":{\"id\":\"m\",\"effort\":\"huge\"}}", "model.effort"},
		{"{\"name\":\"a\",\"model\":\"m\",\"skills\":[{\"type\":\"anthropic\",\"skill_id\":\"x\"}]}", "skills"},
		{"{\"name\":\"a\",\"model\":\"m\",\"mcp_servers\":[{\"type\":\"url\"}]}", "mcp_servers"},
		{"{\"name\":\"a\",\"model\":\"m\",\"multiagent\":{\"type\":\"coordinator\"}}", "multiagent"},
		{"{\"name\":\"a\",\"model\":\"m\",\"execution_identity\":{\"type\":\"aws_role\"}}", "execution_identity"},
		{"{\"name\":\"a\",\"model\":\"m\",\"tools\":[{\"type\":\"mcp_toolset\"}]}", "tools[0]"},
		{"{\"name\":\"a\",\"model\":\"m\",\"tools\":[{\"type\":\"agent_toolset_20260401\"},{\"type\":"
		 "\"agent_toolset_20260401\"}]}",
		 "tools[1]"},
		{"{\"name\":\"a\",\"model\":\"m\",\"tools\":[{\"type\":\"agent_toolset_20260401\",\"configs\":[{\"name\":"
		 "\"web_search\"}]}]}",
		 "tools[0].configs[0].name"},
		{"{\"name\":\"a\",\"model\":\"m\",\"tools\":[{\"type\":\"custom\",\"name\":\"has space\",\"description\":\"\","
		 "\"input_schema\":{\"type\":\"object\"}}]}",
		 "tools[0].name"},
		{"{\"name\":\"a\",\"model\":\"m\",\"tools\":[{\"type\":\"custom\",\"name\":\"x\",\"description\":\"\","
		 "\"input_schema\":{\"type\":\"array\"}}]}",
		 "tools[0].input_schema.type"},
		{"{\"name\":\"a\",\"model\":\"m\",\"tools\":[{\"type\":\"custom\",\"name\":\"x\",\"description\":\"\","
		 "\"input_schema\":{\"type\":\"object\"}},{\"type\":\"custom\",\"name\":\"x\",\"description\":\"\","
		 "\"input_schema\":{\"type\":\"object\"}}]}",
		 "tools[1].name"},
		{"{\"name\":\"a\",\"model\":\"m\",\"metadata\":{\"k\":1}}", "metadata"},
		{"{\"name\":\"a\",\"model\":\"m\",\"colour\":\"red\"}", "colour"},
		{body_long, "name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *b = parse(cases[i].body), *cfg = (json_t *)1;
		struct errbuf eb = {{0}};
		enum err rc = agent_from_create(b, &cfg, &eb);
		if (rc == ERR_OK)
			fail_msg("case %zu accepted", i);
		assert_null(cfg);
		if (!strstr(eb.message, cases[i].names))
			fail_msg("case %zu: \"%s\" does not name %s", i, eb.message, cases[i].names);
		json_decref(b);
	}
}

static void test_update_merges_and_detects_no_change(void **state)
{
	json_t *cur = create_ok("{\"name\":\"a\",\"model\":\"m\",\"metadata\":{\"k\":\"v\",\"x\":\"y\"}}");
	json_t *out;
	int changed;
	int64_t expected;
	struct errbuf eb = {{0}};
	json_t *b = parse("{\"name\":\"a\",\"model\":\"m\"}");
	assert_int_equal(ERR_OK, agent_update(cur, b, &out, &changed, &expected, &eb));
	assert_false(changed);
	assert_int_equal(0, expected);
	json_decref(out);
	json_decref(b);
	b = parse("{\"system\":\"s\",\"metadata\":{\"k\":null,\"n\":\"1\"},\"version\":3}");
	assert_int_equal(ERR_OK, agent_update(cur, b, &out, &changed, &expected, &eb));
	assert_true(changed);
	assert_int_equal(3, expected);
	assert_string_equal("s", json_string_value(json_object_get(out, "system")));
	json_t *want_meta = parse("{\"x\":\"y\",\"n\":\"1\"}");
	assert_true(json_equal(want_meta, json_object_get(out, "metadata")));
	json_decref(want_meta);
	assert_string_equal("a", json_string_value(json_object_get(out, "name"))); /* kept */
	assert_true(json_is_null(json_object_get(cur, "system"))); /* the input is not modified */
	json_decref(out);
	json_decref(b);
	static const char *const bad[] = {"{\"name\":null}", "{\"model\":null}", "{\"version\":0}",
					  "{\"skills\":[{\"type\":\"custom\"}]}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = parse(bad[i]);
		out = (json_t *)1;
		assert_int_equal(ERR_INVALID, agent_update(cur, b, &out, &changed, &expected, &eb));
		assert_null(out);
		json_decref(b);
	}
	json_decref(cur);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_normalizes),
		cmocka_unit_test(test_create_refusals_name_the_field),
		cmocka_unit_test(test_update_merges_and_detects_no_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
