/* call.c - helpers every route handler shares: query parameters read strictly, paging,
 * replies within a budget, and the environment named by the path (see call.h). */
#include "api/call.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "http/reply.h"
#include "model/fields.h"

int call_query_uint(struct call *c, const char *name, int empty_is_absent, long long *out)
{
	const char *v = NULL;
	size_t len = 0;
	/* libmicrohttpd percent-decodes the value; the length it reports is the decoded one,
	 * so a %00 inside shows up as a value longer than its C string. */
	if (MHD_lookup_connection_value_n(c->req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v, &len) != MHD_YES ||
	    !v)
		return 1;
	if (len == 0 && empty_is_absent)
		return 1;
	if (len == 0 || len > 18 || strlen(v) != len || strspn(v, "0123456789") != len)
		return -1; /* digits only: no sign, space, exponent or NUL slips through */
	long long n = 0;
	for (size_t i = 0; i < len; i++)
		n = n * 10 + (v[i] - '0');
	*out = n;
	return 0;
}

void call_reply(struct call *c, int status, struct buf *body)
{
	if (body->failed) {
		buf_free(body);
		reply_error(c->req, body->failed == 2 ? ERR_NOMEM : ERR_INTERNAL, "reply too large", NULL, NULL);
		return;
	}
	reply_json(c->req, status, body);
}

void call_next_page(struct call *c, struct jsonw *w, const char *kind, const char *scope, int more,
		    int64_t last_created_at, const char *last_id)
{
	jsonw_key(w, "next_page");
	if (!more) {
		jsonw_null(w);
		return;
	}
	struct cursor last = {.created_at = last_created_at};
	snprintf(last.id, sizeof(last.id), "%s", last_id);
	char text[CURSOR_TEXT_MAX];
	cursor_encode(c->app->cursor_key, kind, scope, &last, text);
	jsonw_str(w, text);
}

enum err call_page_params(struct call *c, const char *kind, const char *scope, size_t *limit,
			  struct cursor *after, int *has_after)
{
	*limit = 20;
	*has_after = 0;
	long long v = 0;
	int has = call_query_uint(c, "limit", 0, &v);
	if (has < 0 || (has == 0 && (v < 1 || v > 100))) {
		const char *l = http_query(c->req, "limit");
		return errf(&c->eb, ERR_INVALID, "limit: must be an integer from 1 to 100 (digits only), got \"%.40s\"",
			    l ? l : "");
	}
	if (has == 0)
		*limit = (size_t)v;
	const char *page = http_query(c->req, "page");
	if (page && *page) {
		enum err rc = cursor_decode(c->app->cursor_key, kind, scope, page, after, &c->eb);
		if (rc)
			return rc;
		*has_after = 1;
	}
	return ERR_OK;
}

void call_list_begin(struct call_list *l, size_t budget)
{
	/* The buffer's own maximum sits above the budget, so the one item a page always
	 * admits is written in full even when it alone is larger than the budget. */
	buf_init(&l->body, budget + CALL_LIST_ITEM_MAX);
	l->budget = budget;
	l->shown = 0;
	l->cut = 0;
	jsonw_init(&l->w, &l->body);
	jsonw_obj_open(&l->w);
	jsonw_key(&l->w, "data");
	jsonw_arr_open(&l->w);
}

int call_list_admit(struct call_list *l, size_t mark)
{
	if (l->body.failed == 2)
		return 0; /* out of memory: the reply fails as a whole */
	if (l->shown == 0 || (!l->body.failed && l->body.len <= l->budget)) {
		l->shown++;
		return 1;
	}
	/* Over the budget: take the item back out; the page ends before it. An item was
	 * shown before it, so whatever follows in the array needs a comma. */
	l->body.len = mark;
	l->body.data[mark] = '\0';
	l->body.failed = 0;
	l->w.need_comma[l->w.depth] = 1;
	l->cut = 1;
	return 0;
}

enum err call_env_credential(struct call *c)
{
	if (c->cred.kind != CRED_API_KEY && strcmp(c->match.params[0], c->cred.environment_id) != 0)
		return errf(&c->eb, ERR_FORBIDDEN, "this credential belongs to another environment");
	return ERR_OK;
}

enum err call_store_failed(struct call *c, enum err rc, const char *what)
{
	if (!c->eb.message[0])
		errf(&c->eb, rc, "%s", what);
	return rc;
}

enum err call_events_body(struct call *c, const json_t **events)
{
	static const char *const f[] = {"events", NULL};
	*events = NULL;
	enum err rc = fields_only(c->body, "", f, &c->eb);
	if (rc)
		return rc;
	*events = json_object_get(c->body, "events");
	if (!*events)
		return errf(&c->eb, ERR_INVALID, "events: required, an array of events");
	return ERR_OK;
}
