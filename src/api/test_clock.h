/* test_clock.h - `POST /v1/environd/test/clock`, served only by `environd serve --test-clock`.
 *
 * Tests move the server's time instead of sleeping through a 90 s lease, a reclaim window
 * or the 30 s workers_polling horizon. The body is {"advance_ms":N} (wall and monotonic
 * time move forward together, and so does lease time) and/or {"step_wall_ms":±N} (the
 * wall clock alone steps, as a system clock step would: lease time must not follow).
 * The reply reports the clocks after the move. Without the flag the route answers 404 like
 * any unknown route. */
#ifndef ENVIROND_API_TEST_CLOCK_H
#define ENVIROND_API_TEST_CLOCK_H

#include "api/call.h"

enum err test_clock_move(struct call *c);

#endif
