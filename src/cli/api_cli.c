/* api_cli.c - the producer commands' client set-up and error reports (see api_cli.h). */
#include "cli/api_cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "client/credential.h"

int api_cli_open(const char *prog, const char *key_file, const char *key_flag, const char *url_flag,
		 struct client *c)
{
	char err[4300];
	char *api_key = NULL;
	if (credential_resolve(key_file, key_flag, "ENVIROND_API_KEY", "api-key-file", &api_key, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	static const char *const url_vars[] = {"ANTHROPIC_BASE_URL", NULL};
	const char *base_url = credential_base_url(url_flag, url_vars, 1);
	int bad = client_global_init() || client_init(c, base_url, api_key);
	credential_free(api_key);
	if (bad) {
		fprintf(stderr, "%s: cannot set up the HTTP client\n", prog);
		return 1;
	}
	return 0;
}

void api_cli_report(const char *prog, const char *what, const struct client *c, const struct client_reply *r)
{
	if (r->status == 0)
		fprintf(stderr, "%s: %s failed: cannot reach %s: %s\n", prog, what, c->base_url, r->message);
	else if (r->status >= 200 && r->status < 300)
		fprintf(stderr, "%s: %s failed: the server's reply is not what the API returns\n", prog, what);
	else
		fprintf(stderr, "%s: %s failed: HTTP %d%s%s: %s\n", prog, what, r->status, r->error_type[0] ? " " : "",
			r->error_type, r->message);
}

json_t *api_cli_call(const char *prog, const char *what, struct client *c, const char *method, const char *path,
		     const json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body && !text) {
		fprintf(stderr, "%s: %s failed: out of memory\n", prog, what);
		return NULL;
	}
	struct client_reply r;
	client_request(c, method, path, text, NULL, API_CLI_TIMEOUT_MS, &r);
	free(text);
	json_t *out = NULL;
	if (r.status >= 200 && r.status < 300 && json_is_object(r.body))
		out = json_incref(r.body);
	else
		api_cli_report(prog, what, c, &r);
	client_reply_free(&r);
	return out;
}
