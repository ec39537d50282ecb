/* conf_race_edit.c - concurrent edits of one object from many threads (on PostgreSQL
 * through a pool of several connections): no update is lost, none fails for having raced
 * another, and a turn heartbeat that succeeded is never undone by the sweeper. Threads
 * only record; the main thread asserts. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/metadata.h"

#define THREADS 8
#define EDITS 4
#define ENV_EDITS (METADATA_MAX_KEYS / THREADS) /* every key fits the limit */
#define TURNS 40
#define TURN_ROUNDS 3
#define LEASE US(30)

struct edit {
	struct conf *c;
	struct tenant t;
	struct session_scope sc;
	char id[ID_MAX];
	int errors[THREADS];
	enum err last_error[THREADS];
	/* the turn race */
	char turns[TURNS][ID_MAX];
	int beat_ok[TURNS];
	int64_t base;
};

static void run(struct edit *e, conf_thread_fn fn)
{
	conf_threads(THREADS, fn, e);
	for (int i = 0; i < THREADS; i++) {
		if (e->errors[i])
			fail_msg("thread %d: %d verbs failed (last with error %d)", i, e->errors[i], e->last_error[i]);
	}
}

static void failed(struct edit *e, int me, enum err rc)
{
	e->errors[me]++;
	e->last_error[me] = rc;
}

/* Each thread sets metadata keys of its own on one environment. */
static void env_editor(void *arg, int me)
{
	struct edit *e = arg;
	for (int i = 0; i < ENV_EDITS; i++) {
		char key[16];
		snprintf(key, sizeof(key), "t%d-%d", me, i);
		json_t *b = json_pack("{s:{s:s}}", "metadata", key, "set");
		struct environment out;
		struct errbuf eb;
		enum err rc = e->c->s->ops->env_update(e->c->s, &e->t, e->id, b, CONF_T0 + US(10) + i, &out, &eb);
		if (rc)
			failed(e, me, rc);
		else
			environment_clear(&out);
		json_decref(b);
	}
}

static void test_concurrent_env_updates_all_kept(void **state)
{
	struct edit *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->c = *state;
	conf_tenant(e->c, "envedit", &e->t);
	conf_env_id(e->c, &e->t, CONF_T0, e->id);
	run(e, env_editor);
	struct environment got;
	assert_int_equal(ERR_OK, e->c->s->ops->env_get(e->c->s, &e->t, e->id, &got));
	if (json_object_size(got.f.metadata) != THREADS * ENV_EDITS)
		fail_msg("%zu of %d metadata keys set concurrently were kept", json_object_size(got.f.metadata),
			 THREADS * ENV_EDITS);
	environment_clear(&got);
	free(e);
}

/* Each thread renames one agent: every rename is a new version, none lost or refused. */
static void agent_editor(void *arg, int me)
{
	struct edit *e = arg;
	for (int i = 0; i < EDITS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "name-%d-%d", me, i);
		json_t *b = json_pack("{s:s}", "name", name);
		struct agent_rec out;
		struct errbuf eb;
		enum err rc = e->c->s->ops->agent_update(e->c->s, &e->t, e->id, b, CONF_T0 + US(10) + i, &out, &eb);
		if (rc)
			failed(e, me, rc);
		else
			agent_rec_clear(&out);
		json_decref(b);
	}
}

static void test_concurrent_agent_updates_all_versions(void **state)
{
	struct edit *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->c = *state;
	conf_tenant(e->c, "agentedit", &e->t);
	conf_agent(e->c, &e->t, "start", "model-a", CONF_T0, e->id);
	run(e, agent_editor);
	struct agent_rec a;
	assert_int_equal(ERR_OK, e->c->s->ops->agent_get(e->c->s, &e->t, e->id, 0, &a));
	assert_int_equal(1 + THREADS * EDITS, a.version);
	agent_rec_clear(&a);
	struct agent_page p;
	assert_int_equal(ERR_OK, e->c->s->ops->agent_versions(e->c->s, &e->t, e->id, NULL, 100, &p));
	assert_int_equal(1 + THREADS * EDITS, p.count);
	agent_page_clear(&p);
	free(e);
}

/* Half the threads heartbeat every turn just before its lease runs out, the other half
 * sweep expired turns at the moment it would have run out. */
static void turn_racer(void *arg, int me)
{
	struct edit *e = arg;
	if (me % 2 == 0) {
		for (int i = me / 2; i < TURNS; i += THREADS / 2) {
			int64_t exp;
			enum err rc = e->c->s->ops->turn_heartbeat(e->c->s, &e->sc, e->turns[i], e->base + LEASE - 1, LEASE, &exp);
			if (rc == ERR_OK)
				__atomic_store_n(&e->beat_ok[i], 1, __ATOMIC_SEQ_CST);
			else if (rc != ERR_TURN_LOST)
				failed(e, me, rc);
		}
	} else {
		/* One batch takes every turn: a wide window between its read and its writes. */
		for (int i = 0; i < 8; i++) {
			char orgs[TURNS][TENANT_NAME_MAX + 1];
			size_t n_orgs, n_expired;
			enum err rc = e->c->s->ops->turns_expire(e->c->s, e->base + LEASE, TURNS, orgs, &n_orgs, &n_expired);
			if (rc)
				failed(e, me, rc);
		}
	}
}

static void test_turn_heartbeat_never_undone_by_sweep(void **state)
{
	struct edit *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->c = *state;
	/* Rounds of their own turns (a tenant each), each checked before the next. */
	for (int round = 0; round < TURN_ROUNDS; round++) {
		int64_t t0 = CONF_T0 + round * US(1000);
		conf_tenant(e->c, "turnbeat", &e->t);
		e->sc = (struct session_scope){e->t.org, e->t.workspace, ""};
		char env[ID_MAX], agent[ID_MAX];
		conf_env_id(e->c, &e->t, t0, env);
		conf_agent(e->c, &e->t, "agent", "model-a", t0, agent);
		e->base = t0 + US(1);
		memset(e->beat_ok, 0, sizeof(e->beat_ok));
		char sessions[TURNS][ID_MAX];
		for (int i = 0; i < TURNS; i++) {
			struct session_rec s;
			conf_session(e->c, &e->t, env, agent, "go", t0 + i, &s, NULL);
			snprintf(sessions[i], ID_MAX, "%s", s.id);
			session_rec_clear(&s);
			struct agent_turn turn;
			assert_int_equal(ERR_OK, e->c->s->ops->turn_claim(e->c->s, &e->sc, NULL, e->base, LEASE, &turn));
			snprintf(e->turns[i], ID_MAX, "%s", turn.id);
			agent_turn_clear(&turn);
		}
		run(e, turn_racer);
		/* A heartbeat that was answered OK extended the lease past the sweep's time: the
		 * turn must still be held. */
		for (int i = 0; i < TURNS; i++) {
			if (!e->beat_ok[i])
				continue;
			struct session_rec s;
			int found = 0;
			for (int j = 0; j < TURNS && !found; j++) {
				assert_int_equal(ERR_OK, e->c->s->ops->session_get(e->c->s, &e->sc, sessions[j], &s));
				found = strcmp(s.state.turn_id, e->turns[i]) == 0;
				session_rec_clear(&s);
			}
			if (!found)
				fail_msg("turn %s was extended by a heartbeat, then taken by the sweep", e->turns[i]);
		}
	}
	free(e);
}

int conf_group_race_edit(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_concurrent_env_updates_all_kept),
		CONF_TEST(test_concurrent_agent_updates_all_versions),
		CONF_TEST(test_turn_heartbeat_never_undone_by_sweep),
	};
	return cmocka_run_group_tests_name("store conformance: concurrent edits", tests, NULL, NULL);
}
