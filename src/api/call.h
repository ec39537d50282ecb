/* call.h - what a route handler gets, the handlers of each resource, and the helpers
 * they share (call.c).
 *
 * The dispatcher (dispatch.c) matches the route, checks the beta header, authenticates,
 * bounds and decodes the body, then calls the handler. A handler either queues a reply
 * itself and returns ERR_OK, or returns an error whose message it wrote into call->eb;
 * the dispatcher turns that into the SPEC envelope. */
#ifndef ENVIROND_API_CALL_H
#define ENVIROND_API_CALL_H

#include <jansson.h>

#include "api/after_commit.h"
#include "api/app.h"
#include "common/err.h"
#include "common/jsonw.h"
#include "http/router.h"
#include "store/store.h"

/* Which credentials a route accepts (SPEC §4). */
enum {
	AUTH_NONE = 0,
	AUTH_API = 1 << CRED_API_KEY,
	AUTH_ENV = 1 << CRED_ENV_KEY,
	AUTH_SESSION = 1 << CRED_SESSION,
	AUTH_AGENT = 1 << CRED_AGENT,
};

/* What a route does with a request body. BODY_NONE refuses any body; BODY_EMPTY takes
 * none or `{}` (an empty object: any field in it is an unknown field). */
enum body_rule { BODY_NONE, BODY_EMPTY, BODY_OPTIONAL, BODY_REQUIRED };

/* Per-request state of a call; owned by the request (freed with it). */
struct call {
	struct app *app;
	struct http_request *req;
	struct route_match match;
	const struct api_route *route;
	struct credential cred;
	struct tenant tenant;   /* resolved tenant (API keys: with the chosen workspace) */
	json_t *body;           /* decoded body, NULL when none */
	struct errbuf eb;
	/* Long-poll state (work poll only). */
	struct waiter waiter;
	int64_t poll_deadline_mono;
	int64_t poll_reclaim_us;
	int polling;
	int poll_counted;       /* counted in app->polls_active until the request ends */
	int poll_here;          /* tried on its HTTP thread first: may answer from the hint, never claims */
	int poll_needs_writer;  /* ...and found that it must claim: run it on the store's writer */
	/* A delivery made by this request, undone if the reply does not reach the client. */
	char delivered_work_id[ID_MAX];
	char delivered_token_hash[SECRET_HASH_HEX + 1];
	int test_fault;         /* a test-mode fault under way (test_mode.c) */
	/* Run on the store's writer (dispatch.c): what runs there, and what waits for its commit. */
	void (*deferred_step)(struct call *c);
	struct after_commit effects;
};

typedef enum err (*api_handler)(struct call *c);

struct api_route {
	struct route route; /* method + pattern; must stay first (router.h) */
	api_handler handler;
	unsigned auth;
	enum body_rule body;
	int public;          /* no beta header or credential needed */
};

/* environments.c */
enum err env_create(struct call *c);
enum err env_list(struct call *c);
enum err env_get(struct call *c);
enum err env_update(struct call *c);
enum err env_delete(struct call *c);
enum err env_archive(struct call *c);
/* keys.c */
enum err env_key_create(struct call *c);
enum err env_key_list(struct call *c);
enum err env_key_revoke(struct call *c);
/* work.c */
enum err work_enqueue(struct call *c);
enum err work_poll(struct call *c);
enum err work_ack(struct call *c);
enum err work_heartbeat(struct call *c);
enum err work_stop(struct call *c);
enum err work_get(struct call *c);
enum err work_update(struct call *c);
enum err work_list(struct call *c);
enum err work_stats(struct call *c);
/* health.c */
enum err health_live(struct call *c);
enum err health_ready(struct call *c);
enum err health_metrics(struct call *c);

/* Shared helpers (call.c). */

/* A query parameter as a decimal integer: digits only (no sign, space or exponent), at
 * most 18 of them, and no NUL hidden behind percent-encoding. Returns 1 when absent (or
 * empty, with empty_is_absent), 0 with *out set, -1 when the value is not such an integer. */
int call_query_uint(struct call *c, const char *name, int empty_is_absent, long long *out);
/* Parse ?limit= (default 20, 1–100) and ?page= into *limit and *after (has_after set). */
/* The body of the routes that post events: {"events": [...]} and nothing else. The array's
 * elements are checked by the model; *events is borrowed from c->body. */
enum err call_events_body(struct call *c, const json_t **events);

enum err call_page_params(struct call *c, const char *kind, const char *scope, size_t *limit,
			  struct cursor *after, int *has_after);
/* Write the "next_page" member of a list reply: a cursor naming the last row shown when
 * more rows follow (`more`), else null. */
void call_next_page(struct call *c, struct jsonw *w, const char *kind, const char *scope, int more,
		    int64_t last_created_at, const char *last_id);
/* Reply with a JSON buffer (status 200 unless given). */
void call_reply(struct call *c, int status, struct buf *body);
/* A worker credential (environment key, session token) reaches only the environment
 * named by the first path parameter (403 otherwise). Whether that environment is visible
 * and what it allows is checked by the store verb, in its own transaction. */
enum err call_env_credential(struct call *c);
/* A store verb's error: the message the store wrote into c->eb (its refusal about the
 * environment), else `what`. Returns rc. */
enum err call_store_failed(struct call *c, enum err rc, const char *what);

/* A list reply `{"data":[…],"next_page":…}` that stops at a byte budget: items are
 * encoded one by one, and the first one that takes the reply past `budget` is taken back
 * out, so the page ends early with a valid cursor instead of failing. The first item is
 * always admitted, however large (up to CALL_LIST_ITEM_MAX over the budget).
 *
 *     call_list_begin(&l, CALL_LIST_BUDGET);
 *     for (i…) { size_t mark = l.body.len; encode(&l.w, item); if (!call_list_admit(&l, mark)) break; }
 *     then close "data", write next_page (more rows follow when the store said so or l.cut),
 *     close the object and call_reply(c, 200, &l.body). */
#define CALL_LIST_BUDGET (4 * 1024 * 1024)
#define CALL_LIST_ITEM_MAX (8 * 1024 * 1024)
struct call_list {
	struct buf body;
	struct jsonw w;
	size_t budget;
	size_t shown; /* items admitted */
	int cut;      /* an item was taken back out: the page ended at the budget */
};
void call_list_begin(struct call_list *l, size_t budget);
/* Keep the item just encoded after byte `mark` (1), or take it back out (0): then stop. */
int call_list_admit(struct call_list *l, size_t mark);

#endif
