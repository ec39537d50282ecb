/* conf_race_session.c - session verbs racing from many threads (on PostgreSQL through a
 * pool of several connections): every awaiting session's turn goes to exactly one
 * claimer, and concurrent posts to one session all land, numbered without a gap. Threads
 * only record; the main thread asserts. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define THREADS 8
#define SESSIONS 40
#define POSTS 5

struct srace {
	struct conf *c;
	struct tenant t;
	struct session_scope sc;
	char env[ID_MAX];
	char agent[ID_MAX];
	char ids[SESSIONS][ID_MAX];
	int turns[THREADS];
	char got[THREADS][SESSIONS][ID_MAX];
	int extra[THREADS];
	int errors[THREADS];
	enum err last_error[THREADS];
};

static struct srace *srace_new(void **state, const char *prefix, int sessions, int64_t now)
{
	struct srace *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->c = *state;
	conf_tenant(r->c, prefix, &r->t);
	r->sc = (struct session_scope){r->t.org, r->t.workspace, ""};
	conf_env_id(r->c, &r->t, now, r->env);
	conf_agent(r->c, &r->t, "agent", "model-r", now, r->agent);
	for (int i = 0; i < sessions; i++) {
		struct session_rec s;
		conf_session(r->c, &r->t, r->env, r->agent, "go", now + i, &s, NULL);
		snprintf(r->ids[i], ID_MAX, "%s", s.id);
		session_rec_clear(&s);
	}
	return r;
}

static void run(struct srace *r, conf_thread_fn fn)
{
	conf_threads(THREADS, fn, r);
	for (int i = 0; i < THREADS; i++) {
		if (r->errors[i])
			fail_msg("thread %d: %d verbs failed (last with error %d)", i, r->errors[i], r->last_error[i]);
	}
}

static void claimer(void *arg, int me)
{
	struct srace *r = arg;
	for (int i = 0; i < SESSIONS * 2; i++) {
		struct agent_turn turn;
		enum err rc = r->c->s->ops->turn_claim(r->c->s, &r->sc, NULL, CONF_T0 + US(60) + i, US(600), &turn);
		if (rc == ERR_NOT_FOUND)
			break;
		if (rc) {
			r->errors[me]++;
			r->last_error[me] = rc;
			continue;
		}
		if (r->turns[me] < SESSIONS)
			snprintf(r->got[me][r->turns[me]++], ID_MAX, "%s", turn.session_id);
		else
			r->extra[me]++;
		agent_turn_clear(&turn);
	}
}

static int by_id(const void *a, const void *b) { return strcmp(a, b); }

static void test_concurrent_turn_claims(void **state)
{
	struct srace *r = srace_new(state, "turnrace", SESSIONS, CONF_T0);
	run(r, claimer);
	char (*all)[ID_MAX] = calloc((size_t)THREADS * SESSIONS, ID_MAX);
	assert_non_null(all);
	size_t n = 0;
	int extra = 0;
	for (int t = 0; t < THREADS; t++) {
		extra += r->extra[t];
		for (int i = 0; i < r->turns[t]; i++)
			memcpy(all[n++], r->got[t][i], ID_MAX);
	}
	qsort(all, n, ID_MAX, by_id);
	size_t twice = 0;
	for (size_t i = 1; i < n; i++)
		twice += strcmp(all[i - 1], all[i]) == 0;
	free(all);
	if (twice || extra || n != SESSIONS)
		fail_msg("%zu turns for %d awaiting sessions (%zu for a session already taken, %d more beyond)",
			 n + (size_t)extra, SESSIONS, twice, extra);
	free(r);
}

static void poster(void *arg, int me)
{
	struct srace *r = arg;
	for (int i = 0; i < POSTS; i++) {
		json_t *evs = conf_user_message("more");
		json_t *stored = NULL;
		struct session_wake wake;
		struct errbuf eb;
		enum err rc = r->c->s->ops->session_post(r->c->s, &r->sc, r->ids[0], evs, CONF_T0 + US(60) + i, &stored,
							 &wake, &eb);
		if (rc) {
			r->errors[me]++;
			r->last_error[me] = rc;
		}
		json_decref(stored);
		json_decref(evs);
	}
}

static void test_concurrent_posts_all_land(void **state)
{
	struct srace *r = srace_new(state, "postrace", 1, CONF_T0);
	run(r, poster);
	int64_t seq = 0;
	assert_int_equal(ERR_OK, r->c->s->ops->session_last_seq(r->c->s, &r->sc, r->ids[0], NULL, &seq));
	assert_int_equal(1 + THREADS * POSTS, seq);
	struct event_query q = {.after_seq = 0, .limit = 1000};
	struct event_page p;
	assert_int_equal(ERR_OK, r->c->s->ops->session_events(r->c->s, &r->sc, r->ids[0], &q, &p));
	assert_int_equal(1 + THREADS * POSTS, json_array_size(p.items));
	assert_int_equal(1 + THREADS * POSTS, p.last_seq);
	event_page_clear(&p);
	free(r);
}

int conf_group_race_session(void)
{
	const struct CMUnitTest tests[] = {
		CONF_TEST(test_concurrent_turn_claims),
		CONF_TEST(test_concurrent_posts_all_land),
	};
	return cmocka_run_group_tests_name("store conformance: session concurrency", tests, NULL, NULL);
}
