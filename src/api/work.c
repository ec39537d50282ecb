/* work.c - the work routes of SPEC §3 and the enqueue extension of §5.
 *
 * Transitions are decided by model/work.c inside the store, and so is the environment
 * check (visible, self_hosted, not archived for new work), in the same transaction as the
 * verb; this file decodes parameters, checks which environment and item a credential
 * reaches, replies, and wakes the held polls the store names. */
#include "api/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/encode.h"
#include "api/poll_hint.h"
#include "api/work_wake.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secret.h"
#include "http/reply.h"
#include "model/fields.h"
#include "model/metadata.h"

#define REPLY_MAX (4 * 1024 * 1024)
#define DATA_ID_MAX 256

/* A session token reaches only its own item. */
static enum err own_item(struct call *c)
{
	if (c->cred.kind == CRED_SESSION && strcmp(c->cred.work_id, c->match.params[1]) != 0)
		return errf(&c->eb, ERR_FORBIDDEN, "this session token belongs to another work item");
	return ERR_OK;
}

/* A verb's refusal: the store words those about the environment; the rest are worded here. */
static enum err work_not_found(struct call *c, enum err rc)
{
	if (c->eb.message[0])
		return rc;
	if (rc == ERR_NOT_FOUND)
		return errf(&c->eb, rc, "work %.64s not found in environment %.64s", c->match.params[1],
			    c->match.params[0]);
	errf(&c->eb, rc, "%s", err_default_message(rc));
	return rc;
}


static void reply_work(struct call *c, int status, const struct work_item *w, const char *secret)
{
	struct buf body;
	buf_init(&body, REPLY_MAX);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	encode_work(&jw, w, secret);
	call_reply(c, status, &body);
}

/* --- enqueue (extension) ------------------------------------------------------------ */

enum err work_enqueue(struct call *c)
{
	static const char *const body_keys[] = {"data", "metadata", NULL};
	static const char *const data_keys[] = {"type", "id", NULL};
	enum err rc = fields_only(c->body, "", body_keys, &c->eb);
	if (rc)
		return rc;
	json_t *data = json_object_get(c->body, "data");
	if (!data)
		return errf(&c->eb, ERR_INVALID, "data: required, {\"type\":\"session\",\"id\":…}");
	if (!json_is_object(data))
		return fields_type_error("data", "an object", data, &c->eb);
	if ((rc = fields_only(data, "data", data_keys, &c->eb)))
		return rc;
	json_t *type = json_object_get(data, "type"), *id = json_object_get(data, "id");
	if (!json_is_string(type) || (strcmp(json_string_value(type), "session") != 0 &&
				      strcmp(json_string_value(type), "healthcheck") != 0))
		return errf(&c->eb, ERR_INVALID, "data.type: must be \"session\" or \"healthcheck\"");
	if (!json_is_string(id))
		return errf(&c->eb, ERR_INVALID, "data.id: required, a string");
	size_t id_len = json_string_length(id);
	if (id_len == 0 || id_len > DATA_ID_MAX || memchr(json_string_value(id), '\0', id_len))
		return errf(&c->eb, ERR_INVALID, "data.id: must be 1 to %d bytes", DATA_ID_MAX);
	json_t *metadata = json_object_get(c->body, "metadata");
	json_t *empty = NULL;
	if (metadata && !json_is_null(metadata)) {
		if ((rc = metadata_validate(metadata, &c->eb)))
			return rc;
	} else {
		metadata = empty = json_object();
	}
	if ((rc = call_env_credential(c)))
		goto out;
	struct work_item w;
	struct work_wake wake;
	int created = 0;
	rc = c->app->store->ops->work_enqueue(c->app->store, &c->tenant, c->match.params[0], json_string_value(type),
					      json_string_value(id), metadata, clock_lease_us(), &w, &created, &wake,
					      &c->eb);
	if (rc) {
		call_store_failed(c, rc, "could not enqueue the work item");
		goto out;
	}
	if (created)
		atomic_fetch_add(&c->app->metrics.work_enqueued, 1);
	work_wake_polls(c->app, &wake);
	reply_work(c, created ? 201 : 200, &w, NULL);
	work_item_clear(&w);
out:
	json_decref(empty);
	return rc;
}

/* --- poll ------------------------------------------------------------------------- */

/* The secret of a delivery: base64url of {"sessions_token":T,"api_base_url":U}. */
static char *make_secret(struct call *c, const char *token)
{
	struct buf json;
	buf_init(&json, 4096);
	struct jsonw w;
	jsonw_init(&w, &json);
	jsonw_obj_open(&w);
	jsonw_key(&w, "sessions_token");
	jsonw_str(&w, token);
	jsonw_key(&w, "api_base_url");
	jsonw_str(&w, c->app->public_url);
	jsonw_obj_close(&w);
	char *out = NULL;
	if (!json.failed && (out = malloc(b64url_len(json.len) + 1)))
		b64url_encode(json.data, json.len, out);
	buf_free(&json);
	return out;
}

static void reply_null(struct call *c)
{
	struct buf body;
	buf_init(&body, 16);
	buf_puts(&body, "null");
	call_reply(c, 200, &body);
}

/* The poll is answered (or failed); app_done() stops counting it once its reply is sent. */
static void poll_end(struct call *c) { c->polling = 0; }

/* Try to claim one item. Returns ERR_OK when it replied with one, ERR_NOT_FOUND when
 * nothing is claimable, or a store error. */
static enum err try_claim(struct call *c)
{
	char token[TOKEN_MAX];
	struct work_claim claim;
	ids_token(SESSION_TOKEN_PREFIX, token);
	secret_sha256_hex(token, strlen(token), claim.token_hash);
	claim.reclaim_older_than_us = c->poll_reclaim_us;
	/* The key is checked again inside the claim: a poll held across a revocation must
	 * not be handed an item through the revoked key. */
	snprintf(claim.key_hash, sizeof(claim.key_hash), "%s", c->cred.kind == CRED_ENV_KEY ? c->cred.hash : "");
	struct work_item w;
	enum err rc = c->app->store->ops->work_claim(c->app->store, &c->tenant, c->waiter.env_id, &claim,
						     clock_lease_us(), &w, &c->eb);
	if (rc)
		return rc;
	char *secret = make_secret(c, token);
	if (!secret) {
		struct work_wake wake;
		if (c->app->store->ops->work_undeliver(c->app->store, w.id, claim.token_hash, clock_lease_us(), &wake) ==
		    ERR_OK)
			work_wake_polls(c->app, &wake);
		work_item_clear(&w);
		return ERR_NOMEM;
	}
	snprintf(c->delivered_work_id, sizeof(c->delivered_work_id), "%s", w.id);
	memcpy(c->delivered_token_hash, claim.token_hash, sizeof(c->delivered_token_hash));
	atomic_fetch_add(&c->app->metrics.work_delivered, 1);
	poll_end(c);
	reply_work(c, 200, &w, secret);
	free(secret);
	work_item_clear(&w);
	return ERR_OK;
}

static enum err poll_start(struct call *c)
{
	long long block_ms = 0, reclaim_ms = WORK_RECLAIM_DEFAULT_MS;
	int has = call_query_uint(c, "block_ms", 1, &block_ms);
	if (has < 0 || (has == 0 && (block_ms < 1 || block_ms > 999)))
		return errf(&c->eb, ERR_INVALID, "block_ms: must be an integer from 1 to 999 (omit it to answer at once)");
	has = call_query_uint(c, "reclaim_older_than_ms", 1, &reclaim_ms);
	if (has < 0 || (has == 0 && (reclaim_ms < 0 || reclaim_ms > 86400000)))
		return errf(&c->eb, ERR_INVALID, "reclaim_older_than_ms: must be an integer from 0 to 86400000");
	/* The environment itself is checked by every claim, in the claim's transaction (a
	 * poll with the environment's own key may park on this node's hint instead: that key
	 * exists only while its environment does). */
	enum err rc = call_env_credential(c);
	if (rc)
		return rc;
	const char *worker = http_header(c->req, "Anthropic-Worker-ID");
	if (worker && *worker)
		seen_touch(c->app->seen, c->match.params[0], worker, clock_mono_us());
	snprintf(c->waiter.env_id, sizeof(c->waiter.env_id), "%.39s", c->match.params[0]);
	c->waiter.req = c->req;
	c->poll_reclaim_us = reclaim_ms * 1000;
	c->poll_deadline_mono = clock_mono_us() + block_ms * 1000;
	c->polling = 1;
	c->poll_counted = 1;
	atomic_fetch_add(&c->app->polls_active, 1);
	return ERR_OK;
}

enum err work_poll(struct call *c)
{
	enum err rc;
	if (!c->polling && (rc = poll_start(c)))
		return rc;
	if (http_peer_closed(c->req)) {
		/* The poller left while held: claiming now would deliver to nobody. It may have
		 * been woken for an item, so pass the wake on to the next waiter. */
		poll_end(c);
		app_wake_here(c->app, c->waiter.env_id, 1);
		reply_null(c);
		return ERR_OK;
	}
	struct store *s = c->app->store;
	/* A worker polling with its environment's own key may trust this node's hint that
	 * nothing is claimable (poll_hint.h); anyone else asks the store, which also checks
	 * that the caller may see the environment. */
	int hinted = c->cred.kind == CRED_ENV_KEY && strcmp(c->cred.environment_id, c->waiter.env_id) == 0;
	for (int attempt = 0; attempt < 100; attempt++) {
		uint64_t seq = waiters_seq(c->app->waiters, c->waiter.env_id), epoch = 0;
		int64_t oldest = 0, reclaim_at = 0;
		int trusted = hinted && s->ops->wake_epoch(s, &epoch) == 0;
		if (trusted && poll_hint_get(c->app->hints, c->waiter.env_id, seq, epoch, clock_mono_us(), &oldest) &&
		    (!oldest || oldest + c->poll_reclaim_us > clock_lease_us())) {
			rc = ERR_NOT_FOUND; /* as the store would answer, without asking it */
			reclaim_at = oldest ? oldest + c->poll_reclaim_us : 0;
		} else if (c->poll_here) {
			c->poll_needs_writer = 1; /* a claim: dispatch runs the poll again on the writer */
			return ERR_OK;
		} else {
			rc = try_claim(c);
			if (rc == ERR_NOT_FOUND) {
				/* When does the oldest unacked delivery become reclaimable? */
				if (s->ops->work_next_reclaim(s, &c->tenant, c->waiter.env_id, 0, &oldest, NULL) != ERR_OK)
					oldest = -1;
				else if (trusted)
					poll_hint_put(c->app->hints, c->waiter.env_id, seq, epoch, oldest, clock_mono_us());
				reclaim_at = oldest > 0 ? oldest + c->poll_reclaim_us : 0;
			}
		}
		if (rc == ERR_OK)
			return ERR_OK;
		if (rc == ERR_UNAUTHENTICATED) {
			poll_end(c);
			return errf(&c->eb, rc, "invalid credentials: this environment key was revoked");
		}
		if (c->eb.message[0]) {
			poll_end(c); /* the store refused the environment (not found, cloud) */
			return rc;
		}
		if (rc != ERR_NOT_FOUND) {
			/* Never a 4xx for a transient condition: the SDK would stop the whole fleet. */
			poll_end(c);
			return errf(&c->eb, rc == ERR_NOMEM ? ERR_NOMEM : ERR_UNAVAILABLE, "the work queue is unavailable, retry");
		}
		int64_t now = clock_mono_us();
		if (now >= c->poll_deadline_mono || c->app->stopping)
			break;
		/* Wake at the deadline, or when the oldest unacked delivery becomes reclaimable. */
		int64_t wake = c->poll_deadline_mono;
		if (reclaim_at) {
			int64_t in_us = reclaim_at - clock_lease_us();
			if (now + in_us < wake)
				wake = now + (in_us > 0 ? in_us : 0) + 1000;
		}
		c->waiter.wake_mono = wake;
		int parked = waiters_park(c->app->waiters, &c->waiter, seq);
		if (parked == 0)
			return ERR_OK; /* suspended: dispatch runs again when woken */
		if (parked < 0)
			break;
	}
	poll_end(c);
	reply_null(c);
	return ERR_OK;
}

/* --- ack, heartbeat, stop ------------------------------------------------------------ */

/* Apply an event. If the item's lease had run out, it went back to the queue on the way
 * (T18): the store says so, and a held poll is woken for it now rather than at the
 * sweeper's next pass. */
static enum err item_event(struct call *c, enum work_event ev, const struct work_input *in, struct work_item *w,
			   struct work_event_out *res_out)
{
	enum err rc = call_env_credential(c);
	if (!rc)
		rc = own_item(c);
	if (rc)
		return rc;
	struct work_event_out res = {0};
	const char *session_hash = c->cred.kind == CRED_SESSION ? c->cred.hash : NULL;
	rc = c->app->store->ops->work_event(c->app->store, &c->tenant, c->match.params[0], c->match.params[1], ev, in,
					     session_hash, clock_lease_us(), w, &res, &c->eb);
	work_wake_polls(c->app, &res.wake);
	if (rc == ERR_OK)
		app_lease_due(c->app, w->lease.lease_expires_at); /* an ack or heartbeat (re)granted it */
	if (res_out)
		*res_out = res;
	if (rc == ERR_UNAUTHENTICATED)
		errf(&c->eb, rc, "invalid credentials: this session token was replaced (the item was delivered again)");
	return rc;
}

enum err work_ack(struct call *c)
{
	struct work_item w;
	/* Only a session token says which delivery the ack is for (see model/work.h, T5). */
	struct work_input in = {.delivery_proven = c->cred.kind == CRED_SESSION};
	struct work_event_out res = {0};
	enum err rc = item_event(c, WORK_EV_ACK, &in, &w, &res);
	if (rc == ERR_CONFLICT && (res.state == WORK_STARTING || res.state == WORK_ACTIVE))
		return errf(&c->eb, rc,
			    "work %.64s was delivered more than once and is acknowledged already: this acknowledgement "
			    "may belong to a replaced delivery, so it is refused (only the first acknowledgement holds the item)",
			    c->match.params[1]);
	if (rc == ERR_CONFLICT)
		return errf(&c->eb, rc, "work %.64s is stopping or stopped and cannot be acknowledged", c->match.params[1]);
	if (rc)
		return work_not_found(c, rc);
	reply_work(c, 200, &w, NULL);
	work_item_clear(&w);
	return ERR_OK;
}

static void encode_beat(struct jsonw *jw, const struct work_beat *b, int precondition)
{
	jsonw_obj_open(jw);
	if (!precondition) {
		jsonw_key(jw, "type");
		jsonw_str(jw, "work_heartbeat");
	}
	jsonw_key(jw, "last_heartbeat");
	if (b->last_heartbeat)
		jsonw_ts(jw, b->last_heartbeat);
	else if (precondition)
		jsonw_null(jw);
	else
		jsonw_str(jw, "");
	jsonw_key(jw, "lease_extended");
	jsonw_bool(jw, b->lease_extended);
	jsonw_key(jw, "state");
	jsonw_str(jw, work_state_name(b->state));
	jsonw_key(jw, "ttl_seconds");
	jsonw_i64(jw, b->ttl_seconds);
	jsonw_obj_close(jw);
}

enum err work_heartbeat(struct call *c)
{
	struct work_input in = {0};
	long long ttl = 0;
	int has = call_query_uint(c, "desired_ttl_seconds", 1, &ttl);
	if (has < 0 || (has == 0 && ttl <= 0))
		return errf(&c->eb, ERR_INVALID, "desired_ttl_seconds: must be a positive integer (clamped to %d-%d)",
			    WORK_TTL_MIN_S, WORK_TTL_MAX_S);
	in.desired_ttl_seconds = has == 0 ? (ttl > WORK_TTL_MAX_S ? WORK_TTL_MAX_S : (int32_t)ttl) : 0;
	const char *expected = http_query(c->req, "expected_last_heartbeat");
	if (!expected || !*expected) {
		in.expect = WORK_EXPECT_OMITTED;
	} else if (strcmp(expected, "NO_HEARTBEAT") == 0) {
		in.expect = WORK_EXPECT_NONE;
	} else if (clock_parse(expected, strlen(expected), &in.expected_us) == 0) {
		in.expect = WORK_EXPECT_TIMESTAMP;
	} else {
		return errf(&c->eb, ERR_INVALID,
			    "expected_last_heartbeat: must be NO_HEARTBEAT or an RFC 3339 timestamp, got \"%.64s\"", expected);
	}
	struct work_item w;
	struct work_event_out res = {0};
	enum err rc = item_event(c, WORK_EV_HEARTBEAT, &in, &w, &res);
	const struct work_beat beat = res.beat;
	if (rc == ERR_HEARTBEAT_PRECONDITION) {
		struct buf details;
		buf_init(&details, 1024);
		buf_puts(&details, "\"current_state\":");
		struct jsonw jw;
		jsonw_init(&jw, &details);
		encode_beat(&jw, &beat, 1);
		errf(&c->eb, rc, "expected_last_heartbeat: does not match the work item's last heartbeat (state %s); the lease was lost",
		     work_state_name(beat.state));
		reply_error(c->req, rc, c->eb.message, details.failed ? NULL : details.data, NULL);
		buf_free(&details);
		return ERR_OK;
	}
	if (rc == ERR_CONFLICT)
		return errf(&c->eb, rc, "work %.64s is queued: acknowledge it before heartbeating", c->match.params[1]);
	if (rc)
		return work_not_found(c, rc);
	work_item_clear(&w);
	struct buf body;
	buf_init(&body, 1024);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	encode_beat(&jw, &beat, 0);
	call_reply(c, 200, &body);
	return ERR_OK;
}

enum err work_stop(struct call *c)
{
	static const char *const keys[] = {"force", NULL};
	struct work_input in = {0};
	if (c->body) {
		enum err rc = fields_only(c->body, "", keys, &c->eb);
		if (rc)
			return rc;
		json_t *force = json_object_get(c->body, "force");
		if (force && !json_is_null(force)) {
			if (!json_is_boolean(force))
				return fields_type_error("force", "a boolean", force, &c->eb);
			in.force = json_is_true(force);
		}
	}
	struct work_item w;
	enum err rc = item_event(c, WORK_EV_STOP, &in, &w, NULL);
	if (rc == ERR_WORK_STOPPED)
		return errf(&c->eb, rc, "work %.64s is already stopped", c->match.params[1]);
	if (rc)
		return work_not_found(c, rc);
	reply_work(c, 200, &w, NULL);
	work_item_clear(&w);
	return ERR_OK;
}

/* --- get, update, list, stats ---------------------------------------------------------- */

enum err work_get(struct call *c)
{
	enum err rc = call_env_credential(c);
	if (!rc)
		rc = own_item(c);
	if (rc)
		return rc;
	struct work_item w;
	rc = c->app->store->ops->work_get(c->app->store, &c->tenant, c->match.params[0], c->match.params[1], &w, &c->eb);
	if (rc)
		return work_not_found(c, rc);
	reply_work(c, 200, &w, NULL);
	work_item_clear(&w);
	return ERR_OK;
}

enum err work_update(struct call *c)
{
	static const char *const keys[] = {"metadata", NULL};
	enum err rc = fields_only(c->body, "", keys, &c->eb);
	if (!rc)
		rc = call_env_credential(c);
	if (rc)
		return rc;
	json_t *patch = json_object_get(c->body, "metadata");
	if (patch && json_is_null(patch))
		patch = NULL; /* omitted or null: the item unchanged */
	struct work_item w;
	rc = c->app->store->ops->work_update_metadata(c->app->store, &c->tenant, c->match.params[0], c->match.params[1],
						       patch, &w, &c->eb);
	if (rc)
		return work_not_found(c, rc);
	reply_work(c, 200, &w, NULL);
	work_item_clear(&w);
	return ERR_OK;
}

enum err work_list(struct call *c)
{
	enum err rc = call_env_credential(c);
	if (rc)
		return rc;
	size_t limit;
	struct cursor after;
	int has_after;
	if ((rc = call_page_params(c, "work", c->match.params[0], &limit, &after, &has_after)))
		return rc;
	struct work_page page;
	rc = c->app->store->ops->work_list(c->app->store, &c->tenant, c->match.params[0], has_after ? &after : NULL,
					   limit, &page, &c->eb);
	if (rc)
		return call_store_failed(c, rc, "could not list work");
	struct call_list l;
	call_list_begin(&l, CALL_LIST_BUDGET);
	for (size_t i = 0; i < page.count; i++) {
		size_t mark = l.body.len;
		encode_work(&l.w, &page.items[i], NULL);
		if (!call_list_admit(&l, mark))
			break;
	}
	jsonw_arr_close(&l.w);
	const struct work_item *last = l.shown ? &page.items[l.shown - 1] : NULL;
	call_next_page(c, &l.w, "work", c->match.params[0], last && (page.more || l.cut), last ? last->created_at : 0,
		       last ? last->id : "");
	jsonw_obj_close(&l.w);
	work_page_clear(&page);
	call_reply(c, 200, &l.body);
	return ERR_OK;
}

/* One server counts the workers it saw; a fleet's nodes count what all of them wrote to
 * the store (each writes its sightings every few seconds, and before it answers stats). */
static int64_t workers_polling(struct call *c)
{
	struct store *s = c->app->store;
	if (!s->fleet)
		return seen_count(c->app->seen, c->match.params[0], clock_mono_us());
	int64_t n = 0;
	app_flush_seen(c->app); /* this node's own sightings count at once */
	if (s->ops->workers_polling(s, c->match.params[0], clock_lease_us() - SEEN_WINDOW_US, &n))
		return seen_count(c->app->seen, c->match.params[0], clock_mono_us()); /* this node's, at least */
	return n;
}

enum err work_stats(struct call *c)
{
	enum err rc = call_env_credential(c);
	if (rc)
		return rc;
	struct work_stats st;
	rc = c->app->store->ops->work_stats(c->app->store, &c->tenant, c->match.params[0], &st, &c->eb);
	if (rc)
		return call_store_failed(c, rc, "could not read the queue's stats");
	struct buf body;
	buf_init(&body, 1024);
	struct jsonw jw;
	jsonw_init(&jw, &body);
	jsonw_obj_open(&jw);
	jsonw_key(&jw, "type");
	jsonw_str(&jw, "work_queue_stats");
	jsonw_key(&jw, "depth");
	jsonw_i64(&jw, st.depth);
	jsonw_key(&jw, "pending");
	jsonw_i64(&jw, st.pending);
	jsonw_key(&jw, "oldest_queued_at");
	jsonw_ts(&jw, st.oldest_queued_at);
	jsonw_key(&jw, "workers_polling");
	jsonw_i64(&jw, workers_polling(c));
	jsonw_obj_close(&jw);
	call_reply(c, 200, &body);
	return ERR_OK;
}
