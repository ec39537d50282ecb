/* test_clock.c - the test clock route (see test_clock.h). */
#include "api/test_clock.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "model/fields.h"

/* A move of at most a year either way: enough for any lease, small enough that no sum of
 * moves a test makes overflows µs. */
#define MOVE_MAX_MS (366LL * 24 * 3600 * 1000)

/* Read an optional integer field in ms; *present says whether it was there. */
static enum err read_ms(struct call *c, const char *name, long long min, long long *out, int *present)
{
	json_t *v = json_object_get(c->body, name);
	*present = v && !json_is_null(v);
	*out = 0;
	if (!*present)
		return ERR_OK;
	if (!json_is_integer(v))
		return fields_type_error(name, "an integer (milliseconds)", v, &c->eb);
	json_int_t n = json_integer_value(v);
	if (n < min || n > MOVE_MAX_MS)
		return errf(&c->eb, ERR_INVALID, "%s: must be from %lld to %lld", name, min, MOVE_MAX_MS);
	*out = (long long)n;
	return ERR_OK;
}

enum err test_clock_move(struct call *c)
{
	if (!c->app->test_clock)
		return errf(&c->eb, ERR_NOT_FOUND, "no route for %.8s %.200s", c->req->method, c->req->path);
	static const char *const keys[] = {"advance_ms", "step_wall_ms", NULL};
	enum err rc = fields_only(c->body, "", keys, &c->eb);
	if (rc)
		return rc;
	long long advance = 0, step = 0;
	int has_advance, has_step;
	if ((rc = read_ms(c, "advance_ms", 0, &advance, &has_advance)) ||
	    (rc = read_ms(c, "step_wall_ms", -MOVE_MAX_MS, &step, &has_step)))
		return rc;
	if (!has_advance && !has_step)
		return errf(&c->eb, ERR_INVALID, "body: give advance_ms and/or step_wall_ms");
	clock_test_advance(advance * 1000);
	clock_test_step_wall(step * 1000);
	char adv_text[24], step_text[24];
	snprintf(adv_text, sizeof(adv_text), "%lld", advance);
	snprintf(step_text, sizeof(step_text), "%lld", step);
	log_event(LOG_WARN, "test_clock_moved", "advance_ms", adv_text, "step_wall_ms", step_text, NULL);
	/* What the sweeper would do on its next pass, done now so that a test sees the
	 * outcome of the move in its next request: leases that ran out are expired, held
	 * polls whose deadline passed are resumed, and the sweeper recomputes its sleep. */
	app_sweep_leases(c->app);
	waiters_expire(c->app->waiters, clock_mono_us());
	app_sweep_soon(c->app);

	int64_t adv_us, step_us;
	clock_test_offsets(&adv_us, &step_us);
	struct buf body;
	buf_init(&body, 1024);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	jsonw_obj_open(&jw);
	jsonw_key(&jw, "type");
	jsonw_str(&jw, "test_clock");
	jsonw_key(&jw, "wall");
	jsonw_ts(&jw, clock_wall_us());
	jsonw_key(&jw, "lease_now");
	jsonw_ts(&jw, clock_lease_us());
	jsonw_key(&jw, "advanced_ms");
	jsonw_i64(&jw, adv_us / 1000);
	jsonw_key(&jw, "wall_step_ms");
	jsonw_i64(&jw, step_us / 1000);
	jsonw_obj_close(&jw);
	call_reply(c, 200, &body);
	return ERR_OK;
}
