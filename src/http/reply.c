/* reply.c - JSON replies and the error envelope (see reply.h). */
#include "http/reply.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "common/log.h"

static void queue(struct http_request *r, int status, const char *content_type, struct buf *body,
		  enum err e, const char *allow)
{
	size_t len = 0;
	char *data = buf_steal(body, &len);
	if (!data) {
		status = 503;
		static const char oom[] = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
					  "\"message\":\"out of memory\"}}";
		data = strdup(oom);
		len = data ? strlen(data) : 0;
		content_type = "application/json";
	}
	struct MHD_Response *resp = data ? MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE) : NULL;
	if (!resp) {
		free(data);
		log_event(LOG_ERROR, "reply_failed", "request_id", r->request_id, NULL);
		r->replied = 1;
		return;
	}
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "request-id", r->request_id);
	if (r->workspace_echo[0])
		MHD_add_response_header(resp, "anthropic-workspace-id", r->workspace_echo);
	if (e != ERR_OK && err_no_retry(e))
		MHD_add_response_header(resp, "x-should-retry", "false");
	if (status == 429 || status == 503)
		MHD_add_response_header(resp, "retry-after", r->retry_after[0] ? r->retry_after : "1");
	if (allow)
		MHD_add_response_header(resp, "Allow", allow);
	/* libmicrohttpd closes the connection after a reply that says so. */
	if (r->close_after)
		MHD_add_response_header(resp, "Connection", "close");
	http_queue_reply(r, status, resp);
}

void reply_json(struct http_request *r, int status, struct buf *body)
{
	queue(r, status, "application/json", body, ERR_OK, NULL);
}

void reply_text(struct http_request *r, int status, const char *content_type, struct buf *body)
{
	queue(r, status, content_type, body, ERR_OK, NULL);
}

void reply_error(struct http_request *r, enum err e, const char *message, const char *details_extra,
		 const char *allow)
{
	struct buf body;
	buf_init(&body, 64 * 1024);
	struct jsonw w;
	jsonw_init(&w, &body);
	jsonw_obj_open(&w);
	jsonw_key(&w, "type");
	jsonw_str(&w, "error");
	jsonw_key(&w, "error");
	jsonw_obj_open(&w);
	jsonw_key(&w, "type");
	jsonw_str(&w, err_type(e));
	jsonw_key(&w, "message");
	jsonw_str(&w, message && *message ? message : err_default_message(e));
	const char *code = err_code(e);
	if (code) {
		jsonw_key(&w, "details");
		jsonw_obj_open(&w);
		jsonw_key(&w, "error_code");
		jsonw_str(&w, code);
		if (details_extra) {
			buf_putc(&body, ',');
			buf_puts(&body, details_extra);
		}
		jsonw_obj_close(&w);
	}
	jsonw_obj_close(&w);
	jsonw_key(&w, "request_id");
	jsonw_str(&w, r->request_id);
	jsonw_obj_close(&w);
	queue(r, err_status(e), "application/json", &body, e, allow);
}
