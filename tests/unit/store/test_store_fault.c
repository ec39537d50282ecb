/* test_store_fault.c - unit tests of the fault seam (src/store/store_fault.c).
 *
 * A failed verb leaves every output defined: zeroed, owning nothing, as store.h promises
 * of every backend, so a caller that reads an output after an error reads no garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/store.h"

static int closed;
static void inner_close(struct store *s) { closed++; }
/* With every = 1 no verb reaches the inner store: only close does. */
static const struct store_ops inner_ops = {.version = STORE_OPS_VERSION, .close = inner_close};
static struct store inner = {.ops = &inner_ops};

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

#define DIRTY(x) memset(&(x), 0xAA, sizeof(x))

static void test_outputs_zeroed_on_fault(void **state)
{
	struct store *s;
	assert_int_equal(ERR_OK, store_fault_wrap(&inner, 1, &s));
	const struct tenant t = {"o", "a", "w"};
	struct work_item w;
	struct work_event_out res;
	struct work_input in = {0};
	DIRTY(w);
	DIRTY(res);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->work_event(s, &t, "env", "work", WORK_EV_HEARTBEAT, &in, NULL, 0, &w, &res, NULL));
	assert_true(all_zero(&w, sizeof(w)));
	assert_true(all_zero(&res, sizeof(res)));

	struct environment e;
	DIRTY(e);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->env_get(s, &t, "env", &e));
	assert_true(all_zero(&e, sizeof(e)));

	struct env_page page;
	DIRTY(page);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->env_list(s, &t, 0, NULL, 20, &page));
	assert_true(all_zero(&page, sizeof(page)));

	struct work_claim claim = {0};
	DIRTY(w);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->work_claim(s, &t, "env", &claim, 0, &w, NULL));
	assert_true(all_zero(&w, sizeof(w)));

	int created;
	struct work_wake wake;
	DIRTY(w);
	DIRTY(created);
	DIRTY(wake);
	assert_int_equal(ERR_UNAVAILABLE,
			 s->ops->work_enqueue(s, &t, "env", "session", "s", NULL, 0, &w, &created, &wake, NULL));
	assert_true(all_zero(&w, sizeof(w)));
	assert_true(all_zero(&wake, sizeof(wake)));
	assert_int_equal(0, created);
	DIRTY(wake);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->work_undeliver(s, "work", "h", 0, &wake));
	assert_true(all_zero(&wake, sizeof(wake)));
	DIRTY(wake);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->env_key_revoke(s, &t, "env", "k", &wake, NULL));
	assert_true(all_zero(&wake, sizeof(wake)));
	DIRTY(wake);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->env_delete(s, &t, "env", &wake));
	assert_true(all_zero(&wake, sizeof(wake)));

	struct credential cred;
	DIRTY(cred);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->credential_find(s, CRED_API_KEY, "h", 0, &cred));
	assert_true(all_zero(&cred, sizeof(cred)));

	struct work_stats st;
	int64_t at;
	size_t n_envs, n_expired;
	struct work_wake ids[1];
	DIRTY(st);
	DIRTY(at);
	DIRTY(n_envs);
	DIRTY(n_expired);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->work_stats(s, &t, "env", &st, NULL));
	assert_true(all_zero(&st, sizeof(st)));
	assert_int_equal(ERR_UNAVAILABLE, s->ops->work_next_reclaim(s, &t, "env", 0, &at, NULL));
	assert_int_equal(0, at);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->leases_expire(s, 0, 1, ids, &n_envs, &n_expired));
	assert_int_equal(0, n_envs);
	assert_int_equal(0, n_expired);

	struct api_key *keys;
	size_t count;
	DIRTY(keys);
	DIRTY(count);
	assert_int_equal(ERR_UNAVAILABLE, s->ops->api_key_list(s, &keys, &count));
	assert_null(keys);
	assert_int_equal(0, count);

	s->ops->close(s);
	assert_int_equal(1, closed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outputs_zeroed_on_fault),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
