/* err.h - the one error type of environd, and its single mapping to the outside.
 *
 * Every fallible function returns enum err. ERR_OK is zero so `if (rc) goto out;` reads
 * naturally. err_status() / err_type() / err_code() are the only place an error becomes
 * an HTTP status, an `error.type` string and an optional `details.error_code`. */
#ifndef ENVIROND_ERR_H
#define ENVIROND_ERR_H

enum err {
	ERR_OK = 0,
	ERR_INVALID,               /* 400 invalid_request_error */
	ERR_INVALID_METADATA,      /* 400 + invalid_metadata */
	ERR_CONFIG_TYPE_CHANGE,    /* 400 + invalid_config_type_change */
	ERR_ENV_ARCHIVED,          /* 400 + environment_archived */
	ERR_UNAUTHENTICATED,       /* 401 authentication_error */
	ERR_FORBIDDEN,             /* 403 permission_error */
	ERR_NOT_FOUND,             /* 404 not_found_error */
	ERR_METHOD,                /* 405 invalid_request_error */
	ERR_CONFLICT,              /* 409 invalid_request_error */
	ERR_NAME_TAKEN,            /* 409 + environment_name_taken */
	ERR_HAS_LIVE_WORK,         /* 409 + environment_has_live_work */
	ERR_WORK_STOPPED,          /* 409 + work_stopped (stop on a stopped item) */
	ERR_HEARTBEAT_PRECONDITION,/* 412 + heartbeat_precondition_failed */
	ERR_TURN_LOST,             /* 412 + turn_lost (agent extension) */
	ERR_TOO_MANY,              /* 429 rate_limit_error (too many held streams) */
	ERR_TOO_LARGE,             /* 413 request_too_large */
	ERR_NOMEM,                 /* 503 overloaded_error (one request fails, the server lives) */
	ERR_UNAVAILABLE,           /* 503 overloaded_error */
	ERR_INTERNAL,              /* 500 api_error */
	ERR__COUNT
};

/* An error together with the message the client will read. Messages name the field and
 * the reason ("metadata: key \"x\" is longer than 64 characters"). */
#define ERR_MESSAGE_MAX 2048
struct errbuf {
	char message[ERR_MESSAGE_MAX];
};

/* Record a formatted message in eb (if eb is not NULL) and return e. */
enum err errf(struct errbuf *eb, enum err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* HTTP status for an error (200 for ERR_OK). */
int err_status(enum err e);
/* `error.type` of the envelope. */
const char *err_type(enum err e);
/* `details.error_code`, or NULL when the error has no code. */
const char *err_code(enum err e);
/* True for deterministic conflicts the client must not retry (x-should-retry: false). */
int err_no_retry(enum err e);
/* A short default message, used when a call site has nothing more precise. */
const char *err_default_message(enum err e);

#endif
