/* reply.h - JSON replies and the error envelope of SPEC §1.
 *
 * Every reply carries request-id and, when set, anthropic-workspace-id. Error replies use
 * {"type":"error","error":{"type":T,"message":M,"details":{"error_code":C,…}},"request_id":R};
 * details appear only when there is a code. */
#ifndef ENVIROND_HTTP_REPLY_H
#define ENVIROND_HTTP_REPLY_H

#include "common/buf.h"
#include "common/err.h"
#include "http/server.h"

/* Queue `body` (taken over, freed here) as the reply with the given status. */
void reply_json(struct http_request *r, int status, struct buf *body);
/* Queue a plain-text reply (metrics, health). */
void reply_text(struct http_request *r, int status, const char *content_type, struct buf *body);
/* Queue an error reply. `message` may be NULL or empty for the error's default text.
 * `details_extra`, if not NULL, is serialized JSON members (without braces) appended to
 * details after error_code, e.g. "\"current_state\":{…}". `allow` fills the Allow header
 * of a 405. */
void reply_error(struct http_request *r, enum err e, const char *message, const char *details_extra,
		 const char *allow);

#endif
