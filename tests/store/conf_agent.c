/* conf_agent.c - agents: versions (a change makes one, no change does not), archive,
 * lists with pagination and include_archived, and tenancy. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/agent.h"

static json_t *config(const char *name, const char *model)
{
	json_t *b = json_pack("{s:s,s:s}", "name", name, "model", model);
	json_t *cfg = NULL;
	struct errbuf eb;
	assert_int_equal(ERR_OK, agent_from_create(b, &cfg, &eb));
	json_decref(b);
	return cfg;
}

static void agent_new(struct conf *c, const struct tenant *t, const char *name, int64_t now, struct agent_rec *out)
{
	json_t *cfg = config(name, "model-a");
	assert_int_equal(ERR_OK, c->s->ops->agent_create(c->s, t, cfg, now, out));
	json_decref(cfg);
}

static void test_agent_versions(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant t;
	conf_tenant(c, "agents", &t);
	struct agent_rec a, got;
	int64_t at = conf_tick(c, 1000);
	agent_new(c, &t, "first", at, &a);
	assert_true(strncmp(a.id, "agent_", 6) == 0);
	assert_int_equal(1, a.version);
	assert_int_equal(at, a.created_at);
	assert_int_equal(0, a.archived_at);
	assert_int_equal(ERR_OK, s->ops->agent_get(s, &t, a.id, 0, &got));
	assert_int_equal(1, got.version);
	assert_true(json_equal(a.config, got.config));
	agent_rec_clear(&got);

	struct errbuf eb;
	json_t *b = json_pack("{s:s}", "name", "second");
	int64_t at2 = conf_tick(c, 1000);
	assert_int_equal(ERR_OK, s->ops->agent_update(s, &t, a.id, b, at2, &got, &eb));
	assert_int_equal(2, got.version);
	assert_int_equal(at2, got.updated_at);
	assert_string_equal("second", json_string_value(json_object_get(got.config, "name")));
	agent_rec_clear(&got);
	/* The same body again changes nothing: no new version. */
	assert_int_equal(ERR_OK, s->ops->agent_update(s, &t, a.id, b, conf_tick(c, 1000), &got, &eb));
	assert_int_equal(2, got.version);
	agent_rec_clear(&got);
	json_decref(b);
	/* An update naming another version than the current one is a conflict. */
	b = json_pack("{s:s,s:i}", "name", "third", "version", 1);
	DIRTY(got);
	assert_int_equal(ERR_CONFLICT, s->ops->agent_update(s, &t, a.id, b, conf_tick(c, 1000), &got, &eb));
	assert_true(all_zero(&got, sizeof(got)));
	json_decref(b);

	/* Every version stays readable; the latest is version 0's answer. */
	assert_int_equal(ERR_OK, s->ops->agent_get(s, &t, a.id, 1, &got));
	assert_string_equal("first", json_string_value(json_object_get(got.config, "name")));
	agent_rec_clear(&got);
	assert_int_equal(ERR_OK, s->ops->agent_get(s, &t, a.id, 0, &got));
	assert_int_equal(2, got.version);
	agent_rec_clear(&got);
	DIRTY(got);
	assert_int_equal(ERR_NOT_FOUND, s->ops->agent_get(s, &t, a.id, 3, &got));
	assert_true(all_zero(&got, sizeof(got)));

	/* Versions newest first, paged by version. */
	b = json_pack("{s:s}", "name", "third");
	assert_int_equal(ERR_OK, s->ops->agent_update(s, &t, a.id, b, conf_tick(c, 1000), &got, &eb));
	agent_rec_clear(&got);
	json_decref(b);
	struct agent_page p;
	assert_int_equal(ERR_OK, s->ops->agent_versions(s, &t, a.id, NULL, 2, &p));
	assert_int_equal(2, p.count);
	assert_int_equal(1, p.more);
	assert_int_equal(3, p.items[0].version);
	assert_int_equal(2, p.items[1].version);
	struct cursor after = {.created_at = p.items[1].version};
	snprintf(after.id, sizeof(after.id), "%s", a.id);
	agent_page_clear(&p);
	assert_int_equal(ERR_OK, s->ops->agent_versions(s, &t, a.id, &after, 2, &p));
	assert_int_equal(1, p.count);
	assert_int_equal(0, p.more);
	assert_int_equal(1, p.items[0].version);
	agent_page_clear(&p);
	DIRTY(p);
	assert_int_equal(ERR_NOT_FOUND, s->ops->agent_versions(s, &t, "agent_000000000000000000000000", NULL, 2, &p));
	assert_true(all_zero(&p, sizeof(p)));

	/* Archived: kept, listed only on request, no longer updatable. */
	int64_t arch = conf_tick(c, 1000);
	assert_int_equal(ERR_OK, s->ops->agent_archive(s, &t, a.id, arch, &got));
	assert_int_equal(arch, got.archived_at);
	agent_rec_clear(&got);
	assert_int_equal(ERR_OK, s->ops->agent_archive(s, &t, a.id, conf_tick(c, 1000), &got));
	assert_int_equal(arch, got.archived_at);
	agent_rec_clear(&got);
	b = json_pack("{s:s}", "name", "fourth");
	DIRTY(got);
	assert_int_equal(ERR_INVALID, s->ops->agent_update(s, &t, a.id, b, conf_tick(c, 1000), &got, &eb));
	assert_true(all_zero(&got, sizeof(got)));
	json_decref(b);
	agent_rec_clear(&a);
}

static void test_agent_list_and_tenancy(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant t, other_org, other_ws;
	conf_tenant(c, "alist", &t);
	other_org = t;
	snprintf(other_org.org, sizeof(other_org.org), "x-%.40s", t.org);
	other_ws = t;
	snprintf(other_ws.workspace, sizeof(other_ws.workspace), "ws-x");
	char ids[5][ID_MAX];
	for (int i = 0; i < 5; i++) {
		struct agent_rec a;
		char name[16];
		snprintf(name, sizeof(name), "a%d", i);
		agent_new(c, &t, name, conf_tick(c, 1000), &a);
		snprintf(ids[i], ID_MAX, "%s", a.id);
		agent_rec_clear(&a);
	}
	struct agent_rec a;
	assert_int_equal(ERR_OK, s->ops->agent_archive(s, &t, ids[2], conf_tick(c, 1000), &a));
	agent_rec_clear(&a);
	/* An update makes a new version row: the list still shows each agent once. */
	struct errbuf eb;
	json_t *b = json_pack("{s:s}", "name", "renamed");
	assert_int_equal(ERR_OK, s->ops->agent_update(s, &t, ids[0], b, conf_tick(c, 1000), &a, &eb));
	agent_rec_clear(&a);
	json_decref(b);

	for (int archived = 0; archived < 2; archived++) {
		struct cursor after, *cur = NULL;
		int seen = 0;
		for (int pages = 0; pages < 10; pages++) {
			struct agent_page p;
			assert_int_equal(ERR_OK, s->ops->agent_list(s, &t, archived, cur, 2, &p));
			for (size_t i = 0; i < p.count; i++) {
				int want = 4 - seen;
				if (!archived && want <= 2)
					want--; /* ids[2] is archived */
				assert_string_equal(ids[want], p.items[i].id);
				seen++;
			}
			int more = p.more;
			if (p.count) {
				after.created_at = p.items[p.count - 1].created_at;
				snprintf(after.id, sizeof(after.id), "%s", p.items[p.count - 1].id);
				cur = &after;
			}
			agent_page_clear(&p);
			if (!more)
				break;
		}
		assert_int_equal(archived ? 5 : 4, seen);
	}

	const struct tenant *strangers[] = {&other_org, &other_ws};
	for (size_t i = 0; i < 2; i++) {
		const struct tenant *x = strangers[i];
		DIRTY(a);
		assert_int_equal(ERR_NOT_FOUND, s->ops->agent_get(s, x, ids[1], 0, &a));
		assert_true(all_zero(&a, sizeof(a)));
		b = json_pack("{s:s}", "name", "stolen");
		DIRTY(a);
		assert_int_equal(ERR_NOT_FOUND, s->ops->agent_update(s, x, ids[1], b, conf_tick(c, 1), &a, &eb));
		assert_true(all_zero(&a, sizeof(a)));
		json_decref(b);
		DIRTY(a);
		assert_int_equal(ERR_NOT_FOUND, s->ops->agent_archive(s, x, ids[1], conf_tick(c, 1), &a));
		assert_true(all_zero(&a, sizeof(a)));
		struct agent_page p;
		assert_int_equal(ERR_NOT_FOUND, s->ops->agent_versions(s, x, ids[1], NULL, 10, &p));
		assert_int_equal(ERR_OK, s->ops->agent_list(s, x, 1, NULL, 10, &p));
		assert_int_equal(0, p.count);
		agent_page_clear(&p);
	}
	assert_int_equal(ERR_OK, s->ops->agent_get(s, &t, ids[1], 0, &a));
	assert_string_equal("a1", json_string_value(json_object_get(a.config, "name")));
	assert_int_equal(0, a.archived_at);
	agent_rec_clear(&a);
}

int conf_group_agent(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_agent_versions),
		CONF_TEST(test_agent_list_and_tenancy),
	};
	return cmocka_run_group_tests_name("store conformance: agents", tests, NULL, NULL);
}
