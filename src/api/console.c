/* console.c - serves the web console's embedded static files (console_files.h).
 *
 * Files are found by exact name in the table built into the binary, so no path from a
 * request ever reaches the file system. Every reply carries the headers that keep the
 * pages from being framed, sniffed or given a foreign script: the console handles an API
 * key, so its code may come from this server alone. */
#include "api/console.h"

#include <microhttpd.h>
#include <string.h>

#include "api/console_files.h"
#include "common/log.h"

/* No inline script or style, nothing from another origin, no framing, no plugins. */
#define CONSOLE_CSP                                                                                          \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* The embedded file called `name`, or NULL. */
static const struct console_file *console_find(const char *name)
{
	for (size_t i = 0; i < console_file_count; i++)
		if (strcmp(console_files[i].name, name) == 0)
			return &console_files[i];
	return NULL;
}

/* True when an If-None-Match header lists this ETag, weak or strong (a weak comparison is
 * what If-None-Match asks for), or is "*". Our tags are quoted hex, so one can only appear
 * inside the header as itself. */
static int etag_matches(const char *if_none_match, const char *etag)
{
	if (!if_none_match)
		return 0;
	while (*if_none_match == ' ' || *if_none_match == '\t')
		if_none_match++;
	return strcmp(if_none_match, "*") == 0 || strstr(if_none_match, etag) != NULL;
}

enum err console_get(struct call *c)
{
	struct http_request *r = c->req;
	const char *name = c->match.nparams ? c->match.params[0] : "index.html";
	const struct console_file *f = console_find(name);
	if (!f)
		return errf(&c->eb, ERR_NOT_FOUND, "console: no file named \"%.100s\"", name);
	int not_modified = etag_matches(http_header(r, "If-None-Match"), f->etag);
	/* The bytes are static for the life of the process: libmicrohttpd may send them as they are. */
	struct MHD_Response *resp = MHD_create_response_from_buffer(not_modified ? 0 : f->len, (void *)f->data,
								    MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return errf(&c->eb, ERR_NOMEM, "console: out of memory");
	MHD_add_response_header(resp, "Content-Type", f->content_type);
	MHD_add_response_header(resp, "request-id", r->request_id);
	/* Revalidate on every load, so an upgraded binary's console is used at once. */
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "ETag", f->etag);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_CSP);
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	int status = not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
	r->status = status;
	r->replied = 1;
	if (MHD_queue_response(r->conn, (unsigned)status, resp) != MHD_YES)
		log_event(LOG_WARN, "reply_not_queued", "request_id", r->request_id, NULL);
	MHD_destroy_response(resp);
	return ERR_OK;
}
