/* err.c - the single mapping of enum err to HTTP status, error type and error code. */
#include "common/err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct err_row {
	int status;
	const char *type;
	const char *code;
	int no_retry;
	const char *message;
};

static const struct err_row rows[ERR__COUNT] = {
	[ERR_OK] = {200, NULL, NULL, 0, "ok"},
	[ERR_INVALID] = {400, "invalid_request_error", NULL, 0, "invalid request"},
	[ERR_INVALID_METADATA] = {400, "invalid_request_error", "invalid_metadata", 0, "metadata: invalid"},
	[ERR_CONFIG_TYPE_CHANGE] = {400, "invalid_request_error", "invalid_config_type_change", 0,
				    "config.type: an environment's config type cannot be changed"},
	[ERR_ENV_ARCHIVED] = {400, "invalid_request_error", "environment_archived", 0,
			      "environment is archived"},
	[ERR_UNAUTHENTICATED] = {401, "authentication_error", NULL, 0, "invalid credentials"},
	[ERR_FORBIDDEN] = {403, "permission_error", NULL, 0, "this credential may not do that"},
	[ERR_NOT_FOUND] = {404, "not_found_error", NULL, 0, "not found"},
	[ERR_METHOD] = {405, "invalid_request_error", NULL, 0, "method not allowed"},
	[ERR_CONFLICT] = {409, "invalid_request_error", NULL, 1, "conflict"},
	[ERR_NAME_TAKEN] = {409, "invalid_request_error", "environment_name_taken", 1,
			    "name: an environment with this name already exists"},
	[ERR_HAS_LIVE_WORK] = {409, "invalid_request_error", "environment_has_live_work", 1,
			       "environment has live work"},
	[ERR_WORK_STOPPED] = {409, "invalid_request_error", "work_stopped", 1, "work item is already stopped"},
	[ERR_HEARTBEAT_PRECONDITION] = {412, "invalid_request_error", "heartbeat_precondition_failed", 0,
					"expected_last_heartbeat does not match"},
	[ERR_TURN_LOST] = {412, "invalid_request_error", "turn_lost", 0, "this agent turn is no longer held"},
	[ERR_TOO_MANY] = {429, "rate_limit_error", NULL, 0, "too many requests"},
	[ERR_TOO_LARGE] = {413, "request_too_large", NULL, 0, "request body is larger than 1 MiB"},
	[ERR_NOMEM] = {503, "overloaded_error", NULL, 0, "out of memory"},
	[ERR_UNAVAILABLE] = {503, "overloaded_error", NULL, 0, "service unavailable"},
	[ERR_INTERNAL] = {500, "api_error", NULL, 0, "internal error"},
};

static const struct err_row *row(enum err e)
{
	if ((int)e < 0 || e >= ERR__COUNT)
		e = ERR_INTERNAL;
	return &rows[e];
}

int err_status(enum err e) { return row(e)->status; }
const char *err_type(enum err e) { return row(e)->type; }
const char *err_code(enum err e) { return row(e)->code; }
int err_no_retry(enum err e) { return row(e)->no_retry; }
const char *err_default_message(enum err e) { return row(e)->message; }

enum err errf(struct errbuf *eb, enum err e, const char *fmt, ...)
{
	if (eb) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(eb->message, sizeof(eb->message), fmt, ap);
		va_end(ap);
	}
	return e;
}
