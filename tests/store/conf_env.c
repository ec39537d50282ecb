/* conf_env.c - environments (create, get, update, archive, delete, list with pagination
 * and include_archived), tenancy (another org, workspace or account sees ERR_NOT_FOUND,
 * never data) and environment keys. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *body(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	assert_non_null(j);
	return j;
}

static void test_env_create_get(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant t;
	conf_tenant(c, "envs", &t);
	json_t *b = body("{\"name\":\"alpha\",\"description\":\"first\",\"config\":{\"type\":\"self_hosted\"},"
			 "\"metadata\":{\"k\":\"v\"},\"scope\":\"account\"}");
	struct env_fields f;
	struct errbuf eb;
	assert_int_equal(ERR_OK, env_parse_create(b, &f, &eb));
	json_decref(b);
	int64_t at = conf_tick(c, 1000);
	struct environment e, got;
	assert_int_equal(ERR_OK, s->ops->env_create(s, &t, &f, at, &e));
	assert_true(strncmp(e.id, "env_", 4) == 0);
	assert_int_equal(at, e.created_at);
	assert_int_equal(at, e.updated_at);
	assert_int_equal(0, e.archived_at);

	assert_int_equal(ERR_OK, s->ops->env_get(s, &t, e.id, &got));
	assert_string_equal(e.id, got.id);
	assert_string_equal(t.org, got.org);
	assert_string_equal(t.workspace, got.workspace);
	assert_string_equal(t.account, got.account);
	assert_string_equal("alpha", got.f.name);
	assert_string_equal("first", got.f.description);
	assert_true(json_equal(f.config, got.f.config));
	assert_true(json_equal(f.metadata, got.f.metadata));
	assert_int_equal(1, got.f.scope_account);
	assert_int_equal(at, got.created_at);
	assert_int_equal(at, got.updated_at);
	assert_int_equal(0, got.archived_at);
	environment_clear(&got);

	/* A name is unique within org and workspace: the output of the refusal is empty. */
	DIRTY(got);
	assert_int_equal(ERR_NAME_TAKEN, s->ops->env_create(s, &t, &f, conf_tick(c, 1), &got));
	assert_true(all_zero(&got, sizeof(got)));
	struct tenant other_ws = t;
	snprintf(other_ws.workspace, sizeof(other_ws.workspace), "ws-2");
	assert_int_equal(ERR_OK, s->ops->env_create(s, &other_ws, &f, conf_tick(c, 1), &got));
	environment_clear(&got);

	DIRTY(got);
	assert_int_equal(ERR_NOT_FOUND, s->ops->env_get(s, &t, "env_000000000000000000000000", &got));
	assert_true(all_zero(&got, sizeof(got)));
	env_fields_clear(&f);
	environment_clear(&e);
}

static void test_env_update(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant t;
	conf_tenant(c, "upd", &t);
	struct environment e, out, taken;
	conf_env(c, &t, 1, 0, "one", conf_tick(c, 1000), &e);
	conf_env(c, &t, 1, 0, "two", conf_tick(c, 1000), &taken);
	struct errbuf eb;

	int64_t at = conf_tick(c, 1000);
	json_t *b = body("{\"name\":\"uno\",\"metadata\":{\"a\":\"1\",\"b\":\"2\"}}");
	assert_int_equal(ERR_OK, s->ops->env_update(s, &t, e.id, b, at, &out, &eb));
	json_decref(b);
	assert_string_equal("uno", out.f.name);
	assert_string_equal("1", json_string_value(json_object_get(out.f.metadata, "a")));
	assert_int_equal(at, out.updated_at);
	assert_int_equal(e.created_at, out.created_at);
	environment_clear(&out);

	/* null deletes a metadata key; an update that changes nothing keeps updated_at. */
	b = body("{\"metadata\":{\"a\":null}}");
	int64_t at2 = conf_tick(c, 1000);
	assert_int_equal(ERR_OK, s->ops->env_update(s, &t, e.id, b, at2, &out, &eb));
	json_decref(b);
	assert_null(json_object_get(out.f.metadata, "a"));
	assert_int_equal(at2, out.updated_at);
	environment_clear(&out);
	b = body("{\"name\":\"uno\"}");
	assert_int_equal(ERR_OK, s->ops->env_update(s, &t, e.id, b, conf_tick(c, 1000), &out, &eb));
	json_decref(b);
	assert_int_equal(at2, out.updated_at);
	environment_clear(&out);
	/* A change at a time not after updated_at still moves updated_at forward. */
	b = body("{\"description\":\"later\"}");
	assert_int_equal(ERR_OK, s->ops->env_update(s, &t, e.id, b, at2 - 5, &out, &eb));
	json_decref(b);
	assert_int_equal(at2 + 1, out.updated_at);
	environment_clear(&out);

	/* Refusals leave the output empty: a bad body, a taken name, another tenant. */
	b = body("{\"name\":\"\"}");
	DIRTY(out);
	eb.message[0] = '\0';
	assert_int_equal(ERR_INVALID, s->ops->env_update(s, &t, e.id, b, conf_tick(c, 1), &out, &eb));
	json_decref(b);
	assert_true(all_zero(&out, sizeof(out)));
	assert_non_null(strstr(eb.message, "name"));
	b = body("{\"name\":\"two\"}");
	DIRTY(out);
	assert_int_equal(ERR_NAME_TAKEN, s->ops->env_update(s, &t, e.id, b, conf_tick(c, 1), &out, &eb));
	json_decref(b);
	assert_true(all_zero(&out, sizeof(out)));
	struct environment got;
	assert_int_equal(ERR_OK, s->ops->env_get(s, &t, e.id, &got));
	assert_string_equal("uno", got.f.name);
	environment_clear(&got);

	/* An archived environment takes no update. */
	assert_int_equal(ERR_OK, s->ops->env_archive(s, &t, e.id, conf_tick(c, 1000), &out));
	environment_clear(&out);
	b = body("{\"description\":\"no\"}");
	DIRTY(out);
	assert_int_equal(ERR_ENV_ARCHIVED, s->ops->env_update(s, &t, e.id, b, conf_tick(c, 1), &out, &eb));
	json_decref(b);
	assert_true(all_zero(&out, sizeof(out)));
	environment_clear(&e);
	environment_clear(&taken);
}

static void test_env_archive(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant t;
	conf_tenant(c, "arch", &t);
	struct environment e, out;
	conf_env(c, &t, 1, 0, NULL, conf_tick(c, 1000), &e);
	int64_t at = conf_tick(c, 1000);
	assert_int_equal(ERR_OK, s->ops->env_archive(s, &t, e.id, at, &out));
	assert_int_equal(at, out.archived_at);
	assert_int_equal(at, out.updated_at);
	environment_clear(&out);
	/* Archiving again keeps the first archived_at. */
	assert_int_equal(ERR_OK, s->ops->env_archive(s, &t, e.id, conf_tick(c, 1000), &out));
	assert_int_equal(at, out.archived_at);
	environment_clear(&out);
	DIRTY(out);
	assert_int_equal(ERR_NOT_FOUND, s->ops->env_archive(s, &t, "env_000000000000000000000000", c->now, &out));
	assert_true(all_zero(&out, sizeof(out)));
	environment_clear(&e);
}

static void test_env_delete(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant t;
	conf_tenant(c, "del", &t);
	char env[ID_MAX], queued[ID_MAX], live[ID_MAX];
	conf_env_id(c, &t, conf_tick(c, 1000), env);
	char h[SECRET_HASH_HEX + 1];
	conf_hash("envd_env_del", h);
	struct env_key k;
	assert_int_equal(ERR_OK, k_create(c, &t, env, "k", h, conf_tick(c, 1000), &k));
	w_enqueue_ok(c, &t, env, conf_tick(c, 1000), live);
	w_enqueue_ok(c, &t, env, conf_tick(c, 1000), queued);
	struct work_item w;
	assert_int_equal(ERR_OK, w_claim(c, &t, env, NULL, US(5), conf_tick(c, 1000), &w, NULL));
	assert_string_equal(live, w.id);
	work_item_clear(&w);
	assert_int_equal(WORK_STARTING, w_ack(c, &t, env, live, conf_tick(c, 1000), NULL));

	/* Live work (starting, active, stopping) keeps the environment. */
	assert_int_equal(ERR_HAS_LIVE_WORK, e_delete(c, &t, env));
	assert_int_equal(WORK_STOPPING, w_stop(c, &t, env, live, 0, conf_tick(c, 1000), NULL));
	assert_int_equal(ERR_HAS_LIVE_WORK, e_delete(c, &t, env));
	assert_int_equal(WORK_STOPPED, w_stop(c, &t, env, live, 0, conf_tick(c, 1000), NULL));

	struct tenant other;
	conf_tenant(c, "del-other", &other);
	assert_int_equal(ERR_NOT_FOUND, e_delete(c, &other, env));
	/* Queued and stopped work, and the keys, go with it. */
	assert_int_equal(ERR_OK, e_delete(c, &t, env));
	struct environment e;
	assert_int_equal(ERR_NOT_FOUND, s->ops->env_get(s, &t, env, &e));
	assert_int_equal(ERR_NOT_FOUND, e_delete(c, &t, env));
	assert_int_equal(ERR_NOT_FOUND, w_get(c, &t, env, queued, &w));
	assert_int_equal(ERR_NOT_FOUND, w_get(c, &t, env, live, &w));
	struct credential cr;
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_ENV_KEY, h, c->now, &cr));
}

static void test_env_tenancy(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant owner, other_org, other_ws, other_acct;
	conf_tenant(c, "ten", &owner);
	other_org = owner;
	snprintf(other_org.org, sizeof(other_org.org), "x-%.40s", owner.org);
	other_ws = owner;
	snprintf(other_ws.workspace, sizeof(other_ws.workspace), "ws-x");
	other_acct = owner;
	snprintf(other_acct.account, sizeof(other_acct.account), "acct-x");
	struct environment org_env, acct_env, out;
	conf_env(c, &owner, 1, 0, "org-scoped", conf_tick(c, 1000), &org_env);
	conf_env(c, &owner, 1, 1, "acct-scoped", conf_tick(c, 1000), &acct_env);
	struct errbuf eb;
	json_t *b = body("{\"description\":\"stolen\"}");

	const struct tenant *strangers[] = {&other_org, &other_ws};
	for (size_t i = 0; i < 2; i++) {
		const struct tenant *x = strangers[i];
		const char *ids[] = {org_env.id, acct_env.id};
		for (size_t j = 0; j < 2; j++) {
			DIRTY(out);
			assert_int_equal(ERR_NOT_FOUND, s->ops->env_get(s, x, ids[j], &out));
			assert_true(all_zero(&out, sizeof(out)));
			DIRTY(out);
			assert_int_equal(ERR_NOT_FOUND, s->ops->env_update(s, x, ids[j], b, conf_tick(c, 1), &out, &eb));
			assert_true(all_zero(&out, sizeof(out)));
			DIRTY(out);
			assert_int_equal(ERR_NOT_FOUND, s->ops->env_archive(s, x, ids[j], conf_tick(c, 1), &out));
			assert_true(all_zero(&out, sizeof(out)));
			assert_int_equal(ERR_NOT_FOUND, e_delete(c, x, ids[j]));
		}
		struct env_page p;
		assert_int_equal(ERR_OK, s->ops->env_list(s, x, 1, NULL, 100, &p));
		assert_int_equal(0, p.count);
		env_page_clear(&p);
	}
	/* Another account of the organization sees organization-scoped ones only. */
	assert_int_equal(ERR_OK, s->ops->env_get(s, &other_acct, org_env.id, &out));
	environment_clear(&out);
	DIRTY(out);
	assert_int_equal(ERR_NOT_FOUND, s->ops->env_get(s, &other_acct, acct_env.id, &out));
	assert_true(all_zero(&out, sizeof(out)));
	assert_int_equal(ERR_NOT_FOUND, s->ops->env_update(s, &other_acct, acct_env.id, b, conf_tick(c, 1), &out, &eb));
	assert_int_equal(ERR_NOT_FOUND, s->ops->env_archive(s, &other_acct, acct_env.id, conf_tick(c, 1), &out));
	assert_int_equal(ERR_NOT_FOUND, e_delete(c, &other_acct, acct_env.id));
	struct env_page p;
	assert_int_equal(ERR_OK, s->ops->env_list(s, &other_acct, 1, NULL, 100, &p));
	assert_int_equal(1, p.count);
	assert_string_equal(org_env.id, p.items[0].id);
	env_page_clear(&p);
	/* Nothing of the owner's changed. */
	assert_int_equal(ERR_OK, s->ops->env_get(s, &owner, acct_env.id, &out));
	assert_null(out.f.description);
	assert_int_equal(0, out.archived_at);
	environment_clear(&out);
	json_decref(b);
	environment_clear(&org_env);
	environment_clear(&acct_env);
}

/* Page through env_list with `limit`, collecting ids newest first. */
static size_t list_all(struct conf *c, const struct tenant *t, int include_archived, size_t limit, char (*ids)[ID_MAX],
		       size_t cap)
{
	struct cursor after, *cur = NULL;
	size_t n = 0;
	for (int pages = 0; pages < 100; pages++) {
		struct env_page p;
		assert_int_equal(ERR_OK, c->s->ops->env_list(c->s, t, include_archived, cur, limit, &p));
		assert_true(p.count <= limit);
		for (size_t i = 0; i < p.count; i++) {
			assert_true(n < cap);
			snprintf(ids[n++], ID_MAX, "%s", p.items[i].id);
		}
		int more = p.more;
		if (p.count) {
			after.created_at = p.items[p.count - 1].created_at;
			snprintf(after.id, sizeof(after.id), "%s", p.items[p.count - 1].id);
			cur = &after;
		}
		/* `more` exactly when rows follow. */
		if (!more) {
			env_page_clear(&p);
			return n;
		}
		assert_int_equal(limit, p.count);
		env_page_clear(&p);
	}
	fail_msg("env_list never ended");
	return n;
}

static void test_env_list_pages(void **state)
{
	struct conf *c = *state;
	struct tenant t;
	conf_tenant(c, "list", &t);
	char made[7][ID_MAX];
	struct environment e;
	for (int i = 0; i < 7; i++) {
		/* Two pairs share a created_at: the id breaks the tie. */
		conf_env(c, &t, i % 2, 0, NULL, (i == 2 || i == 4) ? c->now : conf_tick(c, 1000), &e);
		snprintf(made[i], ID_MAX, "%s", e.id);
		environment_clear(&e);
	}
	struct environment out;
	assert_int_equal(ERR_OK, c->s->ops->env_archive(c->s, &t, made[3], conf_tick(c, 1000), &out));
	environment_clear(&out);

	char ids[16][ID_MAX];
	for (size_t limit = 1; limit <= 8; limit++) {
		size_t n = list_all(c, &t, 1, limit, ids, 16);
		assert_int_equal(7, n);
		/* Newest first: by created_at, then by id, each exactly once. */
		for (size_t i = 0; i < n; i++) {
			for (size_t j = i + 1; j < n; j++)
				assert_string_not_equal(ids[i], ids[j]);
		}
		assert_string_equal(made[6], ids[0]);
		assert_string_equal(made[0], ids[6]);
		n = list_all(c, &t, 0, limit, ids, 16);
		assert_int_equal(6, n);
		for (size_t i = 0; i < n; i++)
			assert_string_not_equal(made[3], ids[i]);
	}
	/* A page that ends exactly at the last row says there is no more. */
	struct env_page p;
	assert_int_equal(ERR_OK, c->s->ops->env_list(c->s, &t, 1, NULL, 7, &p));
	assert_int_equal(7, p.count);
	assert_int_equal(0, p.more);
	env_page_clear(&p);
	/* After the last row: an empty page. */
	struct cursor end = {.created_at = CONF_T0 - 1};
	snprintf(end.id, sizeof(end.id), "env_");
	assert_int_equal(ERR_OK, c->s->ops->env_list(c->s, &t, 1, &end, 5, &p));
	assert_int_equal(0, p.count);
	assert_int_equal(0, p.more);
	env_page_clear(&p);
}

static void test_env_keys(void **state)
{
	struct conf *c = *state;
	struct tenant t;
	conf_tenant(c, "ek", &t);
	char env[ID_MAX], env2[ID_MAX];
	conf_env_id(c, &t, conf_tick(c, 1000), env);
	conf_env_id(c, &t, conf_tick(c, 1000), env2);
	char made[5][ID_MAX];
	for (int i = 0; i < 5; i++) {
		char text[32], h[SECRET_HASH_HEX + 1], name[16];
		snprintf(text, sizeof(text), "envd_env_k%d", i);
		snprintf(name, sizeof(name), "key %d", i);
		conf_hash(text, h);
		struct env_key k;
		int64_t at = conf_tick(c, 1000);
		assert_int_equal(ERR_OK, k_create(c, &t, env, name, h, at, &k));
		assert_true(strncmp(k.id, "envkey_", 7) == 0);
		assert_string_equal(env, k.environment_id);
		assert_string_equal(name, k.name);
		assert_int_equal(at, k.created_at);
		assert_int_equal(0, k.last_used_at);
		snprintf(made[i], ID_MAX, "%s", k.id);
	}
	/* A hash is one key's: a second key with it is refused, its output empty. */
	char h0[SECRET_HASH_HEX + 1];
	conf_hash("envd_env_k0", h0);
	struct env_key k;
	DIRTY(k);
	assert_int_equal(ERR_CONFLICT, k_create(c, &t, env2, "dup", h0, conf_tick(c, 1), &k));
	assert_true(all_zero(&k, sizeof(k)));

	struct env_key_page p;
	assert_int_equal(ERR_OK, k_list(c, &t, env, NULL, 2, &p));
	assert_int_equal(2, p.count);
	assert_int_equal(1, p.more);
	assert_string_equal(made[4], p.items[0].id);
	assert_string_equal(made[3], p.items[1].id);
	struct cursor after = {.created_at = p.items[1].created_at};
	snprintf(after.id, sizeof(after.id), "%s", p.items[1].id);
	env_key_page_clear(&p);
	assert_int_equal(ERR_OK, k_list(c, &t, env, &after, 3, &p));
	assert_int_equal(3, p.count);
	assert_int_equal(0, p.more);
	assert_string_equal(made[2], p.items[0].id);
	assert_string_equal(made[0], p.items[2].id);
	env_key_page_clear(&p);
	assert_int_equal(ERR_OK, k_list(c, &t, env2, NULL, 10, &p));
	assert_int_equal(0, p.count);
	env_key_page_clear(&p);

	/* Revoke: only under its own environment, once. */
	assert_int_equal(ERR_NOT_FOUND, k_revoke(c, &t, env2, made[1]));
	assert_int_equal(ERR_OK, k_revoke(c, &t, env, made[1]));
	assert_int_equal(ERR_NOT_FOUND, k_revoke(c, &t, env, made[1]));
	assert_int_equal(ERR_OK, k_list(c, &t, env, NULL, 10, &p));
	assert_int_equal(4, p.count);
	for (size_t i = 0; i < p.count; i++)
		assert_string_not_equal(made[1], p.items[i].id);
	env_key_page_clear(&p);
}

int conf_group_env(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_env_create_get), CONF_TEST(test_env_update),	CONF_TEST(test_env_archive),
		CONF_TEST(test_env_delete),     CONF_TEST(test_env_tenancy),    CONF_TEST(test_env_list_pages),
		CONF_TEST(test_env_keys),
	};
	return cmocka_run_group_tests_name("store conformance: environments", tests, NULL, NULL);
}
