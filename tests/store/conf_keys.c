/* conf_keys.c - API keys, agent keys, and credential_find for every kind: found with its
 * tenant, unknown or revoked = ERR_UNAUTHENTICATED with the output zeroed; the store's
 * ping, cursor key and what survives a reopen. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void api_key(struct api_key *k, const char *id, const char *org, const char *workspace, int64_t at)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", id);
	snprintf(k->name, sizeof(k->name), "name of %s", id);
	tenant_set(&k->tenant, org, "acct-1", workspace);
	k->created_at = at;
}

static void test_api_keys(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	int64_t n = -1;
	assert_int_equal(ERR_OK, s->ops->api_key_count(s, &n));
	assert_int_equal(0, n);
	struct api_key a, b;
	char ha[SECRET_HASH_HEX + 1], hb[SECRET_HASH_HEX + 1];
	conf_hash("envd_api_a", ha);
	conf_hash("envd_api_b", hb);
	api_key(&a, "apikey_a", "org-a", "", conf_tick(c, 1000));
	api_key(&b, "apikey_b", "org-b", "ws-b", conf_tick(c, 1000));
	assert_int_equal(ERR_OK, s->ops->api_key_create(s, &b, hb));
	assert_int_equal(ERR_OK, s->ops->api_key_create(s, &a, ha));
	/* A hash or an id used twice is a conflict, never a second key. */
	struct api_key dup;
	api_key(&dup, "apikey_c", "org-c", "", c->now);
	assert_int_equal(ERR_CONFLICT, s->ops->api_key_create(s, &dup, ha));
	assert_int_equal(ERR_CONFLICT, s->ops->api_key_create(s, &a, "0000"));
	assert_int_equal(ERR_OK, s->ops->api_key_count(s, &n));
	assert_int_equal(2, n);

	struct api_key *list = NULL;
	size_t count = 0;
	assert_int_equal(ERR_OK, s->ops->api_key_list(s, &list, &count));
	assert_int_equal(2, count);
	/* Oldest first, every field back as written (never the hash). */
	assert_string_equal("apikey_a", list[0].id);
	assert_string_equal("name of apikey_a", list[0].name);
	assert_string_equal("org-a", list[0].tenant.org);
	assert_string_equal("acct-1", list[0].tenant.account);
	assert_string_equal("", list[0].tenant.workspace);
	assert_int_equal(a.created_at, list[0].created_at);
	assert_string_equal("apikey_b", list[1].id);
	assert_string_equal("ws-b", list[1].tenant.workspace);
	free(list);

	assert_int_equal(ERR_OK, s->ops->api_key_revoke(s, "apikey_a"));
	assert_int_equal(ERR_NOT_FOUND, s->ops->api_key_revoke(s, "apikey_a"));
	assert_int_equal(ERR_NOT_FOUND, s->ops->api_key_revoke(s, "apikey_none"));
	assert_int_equal(ERR_OK, s->ops->api_key_count(s, &n));
	assert_int_equal(1, n);
}

static void test_credential_api_key(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct api_key k;
	char h[SECRET_HASH_HEX + 1], other[SECRET_HASH_HEX + 1];
	conf_hash("envd_api_cred", h);
	conf_hash("envd_api_unknown", other);
	api_key(&k, "apikey_cred", "org-x", "ws-x", c->now);
	assert_int_equal(ERR_OK, s->ops->api_key_create(s, &k, h));

	struct credential cr;
	DIRTY(cr);
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_API_KEY, h, conf_tick(c, 1), &cr));
	assert_int_equal(CRED_API_KEY, cr.kind);
	assert_string_equal("apikey_cred", cr.key_id);
	assert_string_equal("org-x", cr.tenant.org);
	assert_string_equal("acct-1", cr.tenant.account);
	assert_string_equal("ws-x", cr.tenant.workspace);
	assert_string_equal("", cr.environment_id);

	DIRTY(cr);
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_API_KEY, other, c->now, &cr));
	assert_true(all_zero(&cr, sizeof(cr)));
	/* The right hash under another kind is no credential either. */
	DIRTY(cr);
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_ENV_KEY, h, c->now, &cr));
	assert_true(all_zero(&cr, sizeof(cr)));
	DIRTY(cr);
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_AGENT, h, c->now, &cr));
	assert_true(all_zero(&cr, sizeof(cr)));

	assert_int_equal(ERR_OK, s->ops->api_key_revoke(s, "apikey_cred"));
	DIRTY(cr);
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_API_KEY, h, c->now, &cr));
	assert_true(all_zero(&cr, sizeof(cr)));
}

static void test_credential_env_key(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant t;
	conf_tenant(c, "keys", &t);
	snprintf(t.account, sizeof(t.account), "creator");
	char env[ID_MAX];
	conf_env_id(c, &t, conf_tick(c, 1000), env);
	char h[SECRET_HASH_HEX + 1];
	conf_hash("envd_env_one", h);
	struct env_key k;
	assert_int_equal(ERR_OK, k_create(c, &t, env, "worker", h, conf_tick(c, 1000), &k));

	struct credential cr;
	DIRTY(cr);
	int64_t first_use = conf_tick(c, 1000);
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_ENV_KEY, h, first_use, &cr));
	assert_int_equal(CRED_ENV_KEY, cr.kind);
	assert_string_equal(k.id, cr.key_id);
	assert_string_equal(env, cr.environment_id);
	/* The tenant of the environment: its org, workspace and creating account. */
	assert_string_equal(t.org, cr.tenant.org);
	assert_string_equal("ws", cr.tenant.workspace);
	assert_string_equal("creator", cr.tenant.account);

	/* last_used_at: set by the first use, then refreshed at most once a minute. */
	struct env_key_page p;
	assert_int_equal(ERR_OK, k_list(c, &t, env, NULL, 10, &p));
	assert_int_equal(1, p.count);
	assert_int_equal(first_use, p.items[0].last_used_at);
	env_key_page_clear(&p);
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_ENV_KEY, h, first_use + US(59), &cr));
	assert_int_equal(ERR_OK, k_list(c, &t, env, NULL, 10, &p));
	assert_int_equal(first_use, p.items[0].last_used_at);
	env_key_page_clear(&p);
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_ENV_KEY, h, first_use + US(61), &cr));
	assert_int_equal(ERR_OK, k_list(c, &t, env, NULL, 10, &p));
	assert_int_equal(first_use + US(61), p.items[0].last_used_at);
	env_key_page_clear(&p);

	/* Revoked: unknown at once. */
	assert_int_equal(ERR_OK, k_revoke(c, &t, env, k.id));
	DIRTY(cr);
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_ENV_KEY, h, first_use + US(62), &cr));
	assert_true(all_zero(&cr, sizeof(cr)));
}

static void test_credential_session(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct tenant t;
	conf_tenant(c, "sess", &t);
	char env[ID_MAX], id[ID_MAX];
	conf_env_id(c, &t, conf_tick(c, 1000), env);
	w_enqueue_ok(c, &t, env, conf_tick(c, 1000), id);
	struct work_item w;
	char tok1[SECRET_HASH_HEX + 1], tok2[SECRET_HASH_HEX + 1];
	int64_t t1 = conf_tick(c, 1000);
	assert_int_equal(ERR_OK, w_claim(c, &t, env, NULL, US(5), t1, &w, tok1));
	work_item_clear(&w);

	struct credential cr;
	DIRTY(cr);
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_SESSION, tok1, t1, &cr));
	assert_int_equal(CRED_SESSION, cr.kind);
	assert_string_equal(id, cr.work_id);
	assert_string_equal(env, cr.environment_id);
	assert_string_equal(t.org, cr.tenant.org);
	assert_string_equal(t.workspace, cr.tenant.workspace);
	assert_string_equal(t.account, cr.tenant.account);

	/* A redelivery (T3) replaces the token: the old one is dead, the new one works. */
	assert_int_equal(ERR_OK, w_claim(c, &t, env, NULL, US(5), t1 + US(5), &w, tok2));
	assert_string_equal(id, w.id);
	work_item_clear(&w);
	DIRTY(cr);
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_SESSION, tok1, t1 + US(5), &cr));
	assert_true(all_zero(&cr, sizeof(cr)));
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_SESSION, tok2, t1 + US(5), &cr));
	assert_string_equal(id, cr.work_id);

	/* It outlives the item's stop (the worker heartbeats and stops with it). */
	assert_int_equal(WORK_STARTING, w_ack(c, &t, env, id, t1 + US(6), NULL));
	assert_int_equal(WORK_STOPPED, w_stop(c, &t, env, id, 1, t1 + US(7), NULL));
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_SESSION, tok2, t1 + US(8), &cr));
	assert_string_equal(id, cr.work_id);
}

static void test_credential_agent_key(void **state)
{
	struct conf *c = *state;
	struct store *s = c->s;
	struct agent_key k;
	memset(&k, 0, sizeof(k));
	snprintf(k.id, sizeof(k.id), "agentkey_one");
	snprintf(k.name, sizeof(k.name), "runner");
	tenant_set(&k.tenant, "org-agents", "acct-2", "");
	snprintf(k.models, sizeof(k.models), "model-a,model-b");
	k.created_at = c->now;
	char h[SECRET_HASH_HEX + 1];
	conf_hash("envd_agt_one", h);
	assert_int_equal(ERR_OK, s->ops->agent_key_create(s, &k, h));
	snprintf(k.id, sizeof(k.id), "agentkey_two");
	assert_int_equal(ERR_CONFLICT, s->ops->agent_key_create(s, &k, h));

	struct credential cr;
	DIRTY(cr);
	assert_int_equal(ERR_OK, s->ops->credential_find(s, CRED_AGENT, h, c->now, &cr));
	assert_int_equal(CRED_AGENT, cr.kind);
	assert_string_equal("agentkey_one", cr.key_id);
	assert_string_equal("org-agents", cr.tenant.org);
	assert_string_equal("acct-2", cr.tenant.account);
	assert_string_equal("", cr.tenant.workspace);
	assert_string_equal("model-a,model-b", cr.agent_models);
	DIRTY(cr);
	assert_int_equal(ERR_UNAUTHENTICATED, s->ops->credential_find(s, CRED_API_KEY, h, c->now, &cr));
	assert_true(all_zero(&cr, sizeof(cr)));
}

static void test_ping_cursor_key_reopen(void **state)
{
	struct conf *c = *state;
	assert_int_equal(ERR_OK, c->s->ops->ping(c->s));
	unsigned char k1[CURSOR_KEY_LEN], k2[CURSOR_KEY_LEN], zero[CURSOR_KEY_LEN] = {0};
	c->s->ops->cursor_key(c->s, k1);
	assert_memory_not_equal(zero, k1, CURSOR_KEY_LEN);
	struct tenant t;
	conf_tenant(c, "reopen", &t);
	struct environment e;
	conf_env(c, &t, 1, 0, "kept", conf_tick(c, 1000), &e);
	/* What was answered is there after a restart, and cursors stay valid. */
	conf_reopen(c);
	assert_int_equal(ERR_OK, c->s->ops->ping(c->s));
	c->s->ops->cursor_key(c->s, k2);
	assert_memory_equal(k1, k2, CURSOR_KEY_LEN);
	struct environment got;
	assert_int_equal(ERR_OK, c->s->ops->env_get(c->s, &t, e.id, &got));
	assert_string_equal("kept", got.f.name);
	environment_clear(&got);
	environment_clear(&e);
}

int conf_group_keys(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_api_keys),
		CONF_TEST(test_credential_api_key),
		CONF_TEST(test_credential_env_key),
		CONF_TEST(test_credential_session),
		CONF_TEST(test_credential_agent_key),
		CONF_TEST(test_ping_cursor_key_reopen),
	};
	return cmocka_run_group_tests_name("store conformance: keys and credentials", tests, NULL, NULL);
}
