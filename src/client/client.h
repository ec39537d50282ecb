/* client.h - the small HTTP client of the worker and the client-side commands.
 *
 * One struct client per thread: it owns a libcurl easy handle (kept between requests so
 * connections are reused), the base URL and the bearer credential. Every request sends
 * `anthropic-beta: managed-agents-2026-04-01` and `Authorization: Bearer KEY`, takes an
 * optional JSON body and a per-request timeout, and fills a struct client_reply with the
 * status, the parsed JSON body and the fields of SPEC's error envelope.
 *
 * Call client_global_init() once, before any thread is started. */
#ifndef ENVIROND_CLIENT_H
#define ENVIROND_CLIENT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "common/buf.h"

#define CLIENT_BETA "managed-agents-2026-04-01"
/* Replies larger than this are refused: the API caps bodies at 1 MiB and pages are small. */
#define CLIENT_MAX_REPLY (4u << 20)
#define CLIENT_DEFAULT_URL "http://127.0.0.1:8080"
/* A CA bundle larger than this is not one; the system's whole bundle is about 200 KiB. */
#define CLIENT_CA_FILE_MAX (4u << 20)

/* The --ca-file row of every command that talks to a server: one wording everywhere.
 * Pass its value to client_set_ca_file() before the first request. */
#define CLIENT_CA_FILE_OPTION                                                                                \
	{                                                                                                    \
		"--ca-file", "ENVIROND_CA_FILE", CFG_STRING, NULL, 0, 0, "PATH",                             \
			"for https:// servers, trust the CA certificates in PATH (PEM) instead of the system's"  \
	}

struct client {
	void *curl;                 /* CURL *, owned */
	char *base_url;             /* owned, no trailing '/' */
	char *credential;           /* owned; wiped before it is freed; never logged */
	const atomic_int *cancel;   /* optional: non-zero aborts the transfer in flight */
};

/* What one request produced. client_reply_free() releases body. */
struct client_reply {
	int status;                 /* HTTP status; 0 when no complete reply arrived */
	json_t *body;               /* parsed body (JSON null included); NULL if empty or not JSON */
	int bad_body;               /* a body arrived but is not JSON */
	int canceled;               /* the cancel flag aborted the transfer */
	/* The server's TLS certificate could not be verified (or the CA file not used): no
	 * retry helps until someone changes the certificate or --ca-file. */
	int tls_unverified;
	int retry_after_s;          /* `retry-after` in seconds, -1 when absent */
	char request_id[64];        /* `request-id` header, "" when absent */
	char error_type[64];        /* error.type of the envelope, "" when none */
	char error_code[64];        /* error.details.error_code, "" when none */
	/* A one-line description fit for a log or a terminal: the envelope's message, or
	 * what went wrong on the way (connection refused, timeout, a body that is not JSON). */
	char message[512];
};

/* Initialize libcurl; returns 0 or -1. Not thread-safe: call it before starting threads. */
int client_global_init(void);

/* Verify https:// servers against the CA certificates in the PEM file at path instead of
 * the system's trust store (NULL: the system's). The file is read and checked now, so a
 * missing or wrong file is an error at startup. Not thread-safe: call it before any
 * client exists. Returns 0, or -1 with a message in why naming the file and the reason.
 * There is deliberately no way to turn verification off. */
int client_set_ca_file(const char *path, char *why, size_t why_len);

/* Set up a client. base_url is copied with any trailing '/' removed; credential is copied
 * (NULL = send no Authorization header). Returns 0, or -1 on out of memory. */
int client_init(struct client *c, const char *base_url, const char *credential);
void client_free(struct client *c);
/* Replace the credential (copied; the old one is wiped; NULL = none). Connections stay
 * cached. Returns 0, or -1 on out of memory (the old credential is kept then). */
int client_set_credential(struct client *c, const char *credential);

/* Send one request. method is "GET", "POST" or "DELETE"; path starts with '/' and must
 * already be percent-encoded (see client_put_escaped); body_json is NULL or a JSON text
 * (a POST without one sends an empty body); extra_headers is NULL or a NULL-terminated
 * list of "Name: value" lines; timeout_ms bounds the whole transfer.
 * Returns 0 when an HTTP reply was read (whatever its status) and -1 otherwise; in both
 * cases *r is filled and must be released with client_reply_free(). */
int client_request(struct client *c, const char *method, const char *path, const char *body_json,
		   const char *const *extra_headers, long timeout_ms, struct client_reply *r);
void client_reply_free(struct client_reply *r);

/* True when retrying later may help: no reply (unless the server's TLS certificate failed
 * verification), 408, 409, 429, 5xx, or a 2xx whose body is not JSON. Everything else (a good 2xx aside) is a permanent answer, whatever its body. */
int client_is_transient(const struct client_reply *r);

/* Append s percent-encoded (everything but RFC 3986 unreserved characters), fit for a
 * path segment or a query value. */
void client_put_escaped(struct buf *b, const char *s);

/* A string member of a JSON object, or NULL when absent or not a string. */
const char *client_json_str(const json_t *obj, const char *key);

#endif
