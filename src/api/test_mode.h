/* test_mode.h - `environd serve --test-mode`: a server that misbehaves on purpose, for
 * users who test their own workers against it (README: "Test your worker against environd
 * in CI"). Off unless the flag is given (no environment variable turns it on).
 *
 * Routes (API key): POST/GET/DELETE /v1/environd/test/faults installs, shows and clears
 * the fault rules (test_faults.h); POST /v1/environd/test/reset deletes every tenant's
 * data. Without the flag these routes answer 404 like any unknown route. The test routes
 * themselves never fault. */
#ifndef ENVIROND_API_TEST_MODE_H
#define ENVIROND_API_TEST_MODE_H

#include "api/call.h"

struct test_mode;

struct test_mode *test_mode_new(void);
void test_mode_free(struct test_mode *t);

/* True when the matched route is a test-mode route and the server runs without the flag:
 * the dispatcher answers 404 before it looks at credentials. */
int test_mode_hides(const struct call *c);

/* Called once a request matched a route, before its credentials are checked. Returns 1
 * when the request was taken over (answered with a fault, dropped, or suspended for a
 * delay: dispatch runs again on resume and sees test_mode_resumed()), 0 to go on. */
int test_mode_intercept(struct call *c);
/* True (once) when this dispatch is the resume of a delayed request: go on with it. */
int test_mode_resumed(struct call *c);
/* After the handler: drops the connection of a drop_after request once it is answered. */
void test_mode_after(struct call *c);

enum err test_faults_post(struct call *c);
enum err test_faults_get(struct call *c);
enum err test_faults_delete(struct call *c);
enum err test_reset(struct call *c);

#endif
