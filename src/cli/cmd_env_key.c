/* cmd_env_key.c - `environd env-key create|list|revoke ENV_ID`: manage an environment's
 * keys over HTTP with an API key (SPEC §5, an extension of the official API).
 *
 * `create` prints only the new key on stdout, so `environd env-key create env_… > key`
 * makes a key file for `environd worker --environment-key-file`. Everything else a human
 * should read goes to stderr. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "client/client.h"
#include "client/credential.h"
#include "common/buf.h"
#include "common/cfg.h"

enum { OPT_NAME, OPT_API_KEY_FILE, OPT_API_KEY, OPT_BASE_URL, OPT_JSON, OPT_CA_FILE, OPT__COUNT };

static const struct cfg_option options[OPT__COUNT] = {
	[OPT_NAME] = {"--name", NULL, CFG_STRING, NULL, 0, 0, "NAME", "create: a name for the key (shown by list)"},
	[OPT_API_KEY_FILE] = {"--api-key-file", NULL, CFG_STRING, NULL, 0, 0, "PATH", "read the API key from PATH"},
	[OPT_API_KEY] = {"--api-key", "ENVIROND_API_KEY", CFG_STRING, NULL, 0, 0, "KEY",
			 "the API key (prefer the variable or a file: flags show in ps)"},
	[OPT_BASE_URL] = {"--base-url", "ENVIROND_URL", CFG_STRING, NULL, 0, 0, "URL",
			  "server URL (else ANTHROPIC_BASE_URL, else " CLIENT_DEFAULT_URL ")"},
	[OPT_JSON] = {"--json", NULL, CFG_BOOL, NULL, 0, 0, NULL, "list: print the keys as one JSON array"},
	[OPT_CA_FILE] = CLIENT_CA_FILE_OPTION,
};

static const char usage[] =
	"usage: environd env-key create ENV_ID [--name NAME]\n"
	"       environd env-key list ENV_ID [--json]\n"
	"       environd env-key revoke ENV_ID KEY_ID\n\n"
	"Manages an environment's keys over HTTP with an API key (ENVIROND_API_KEY or\n"
	"--api-key-file). create prints only the new key on stdout.";

#define REQUEST_TIMEOUT_MS 30000L

static void report_failure(const struct client *c, const char *what, const struct client_reply *r)
{
	if (r->status == 0)
		fprintf(stderr, "environd env-key: %s failed: cannot reach %s: %s\n", what, c->base_url, r->message);
	else
		fprintf(stderr, "environd env-key: %s failed: HTTP %d%s%s: %s\n", what, r->status,
			r->error_type[0] ? " " : "", r->error_type, r->message);
}

static int path_keys(struct buf *path, const char *env_id)
{
	buf_puts(path, "/v1/environments/");
	client_put_escaped(path, env_id);
	buf_puts(path, "/keys");
	return path->failed ? -1 : 0;
}

static int do_create(struct client *c, const char *env_id, const char *name)
{
	json_t *body = json_object();
	if (name && (!body || json_object_set_new(body, "name", json_string(name)))) {
		fprintf(stderr, "environd env-key: --name is not valid UTF-8\n");
		json_decref(body);
		return 2;
	}
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	struct buf path;
	buf_init(&path, 4096);
	int rc = 1;
	if (!text || path_keys(&path, env_id)) {
		fprintf(stderr, "environd env-key: the request is too large or memory ran out\n");
		goto out;
	}
	struct client_reply r;
	client_request(c, "POST", path.data, text, NULL, REQUEST_TIMEOUT_MS, &r);
	const char *key = client_json_str(r.body, "key");
	if (r.status >= 200 && r.status < 300 && key) {
		printf("%s\n", key);
		const char *id = client_json_str(r.body, "id");
		fprintf(stderr, "environd env-key: created %s for %s; the key is shown only once\n",
			id ? id : "a key", env_id);
		rc = 0;
	} else if (r.status >= 200 && r.status < 300) {
		fprintf(stderr, "environd env-key: create: the server's reply holds no key\n");
	} else {
		report_failure(c, "create", &r);
	}
	client_reply_free(&r);
out:
	free(text);
	buf_free(&path);
	return rc;
}

static void print_key_line(const json_t *k)
{
	const char *id = client_json_str(k, "id");
	const char *name = client_json_str(k, "name");
	const char *created = client_json_str(k, "created_at");
	const char *used = client_json_str(k, "last_used_at");
	printf("%s\t%s\t%s\t%s\n", id ? id : "-", name && *name ? name : "-", created ? created : "-",
	       used ? used : "never");
}

/* Walks every page: a fleet has few keys, and a partial list would mislead. */
static int do_list(struct client *c, const char *env_id, int as_json)
{
	char *cursor = NULL;
	json_t *all = as_json ? json_array() : NULL;
	int rc = 1;
	if (as_json && !all)
		return 1;
	for (int page = 0; page < 10000; page++) {
		struct buf path;
		buf_init(&path, 8192);
		path_keys(&path, env_id);
		buf_puts(&path, "?limit=100");
		if (cursor) {
			buf_puts(&path, "&page=");
			client_put_escaped(&path, cursor);
		}
		if (path.failed) {
			buf_free(&path);
			fprintf(stderr, "environd env-key: list: the page cursor is too long\n");
			goto out;
		}
		struct client_reply r;
		client_request(c, "GET", path.data, NULL, NULL, REQUEST_TIMEOUT_MS, &r);
		buf_free(&path);
		json_t *data = json_is_object(r.body) ? json_object_get(r.body, "data") : NULL;
		if (r.status != 200 || !json_is_array(data)) {
			if (r.status == 200)
				fprintf(stderr, "environd env-key: list: the server's reply has no data list\n");
			else
				report_failure(c, "list", &r);
			client_reply_free(&r);
			goto out;
		}
		size_t i;
		json_t *k;
		json_array_foreach(data, i, k) {
			if (all)
				json_array_append(all, k);
			else
				print_key_line(k);
		}
		const char *next = client_json_str(r.body, "next_page");
		free(cursor);
		cursor = next && *next ? strdup(next) : NULL;
		client_reply_free(&r);
		if (!cursor) {
			rc = 0;
			break;
		}
	}
	if (all && rc == 0) {
		char *text = json_dumps(all, JSON_INDENT(2));
		if (text)
			printf("%s\n", text);
		else
			rc = 1;
		free(text);
	}
out:
	free(cursor);
	if (all)
		json_decref(all);
	return rc;
}

static int do_revoke(struct client *c, const char *env_id, const char *key_id)
{
	struct buf path;
	buf_init(&path, 4096);
	path_keys(&path, env_id);
	buf_putc(&path, '/');
	client_put_escaped(&path, key_id);
	if (path.failed) {
		buf_free(&path);
		fprintf(stderr, "environd env-key: revoke: the ids are too long\n");
		return 1;
	}
	struct client_reply r;
	client_request(c, "DELETE", path.data, NULL, NULL, REQUEST_TIMEOUT_MS, &r);
	buf_free(&path);
	int rc = 1;
	if (r.status >= 200 && r.status < 300) {
		printf("%s\n", key_id);
		fprintf(stderr, "environd env-key: revoked %s\n", key_id);
		rc = 0;
	} else {
		report_failure(c, "revoke", &r);
	}
	client_reply_free(&r);
	return rc;
}

int cmd_env_key(int argc, char **argv)
{
	struct cfg_values v;
	char why[512];
	int rc = cfg_parse(options, OPT__COUNT, argc, argv, usage, &v, why, sizeof(why));
	if (rc)
		return rc > 0 ? 0 : (fprintf(stderr, "environd env-key: %s\n", why), 2);
	if (v.npositional < 2) {
		fprintf(stderr, "environd env-key: expected an action (create, list, revoke) and ENV_ID\n%s\n", usage);
		return 2;
	}
	const char *action = v.positional[0], *env_id = v.positional[1];
	size_t want = strcmp(action, "revoke") == 0 ? 3 : 2;
	if (strcmp(action, "create") && strcmp(action, "list") && strcmp(action, "revoke")) {
		fprintf(stderr, "environd env-key: unknown action '%s' (create, list, revoke)\n", action);
		return 2;
	}
	if (v.npositional != want) {
		fprintf(stderr, "environd env-key: %s takes %s\n", action, want == 3 ? "ENV_ID KEY_ID" : "only ENV_ID");
		return 2;
	}
	if (v.str[OPT_NAME] && strcmp(action, "create")) {
		fprintf(stderr, "environd env-key: --name applies to create only\n");
		return 2;
	}

	char err[4300];
	char *api_key = NULL;
	if (credential_resolve(v.str[OPT_API_KEY_FILE], v.str[OPT_API_KEY], "ENVIROND_API_KEY",
			       "api-key-file", &api_key, err, sizeof(err))) {
		fprintf(stderr, "environd env-key: %s\n", err);
		return 2;
	}
	static const char *const url_vars[] = {"ANTHROPIC_BASE_URL", NULL};
	const char *base_url = credential_base_url(v.str[OPT_BASE_URL], url_vars, 1);
	struct client c;
	if (client_set_ca_file(v.str[OPT_CA_FILE], err, sizeof(err))) {
		credential_free(api_key);
		fprintf(stderr, "environd env-key: %s\n", err);
		return 2;
	}
	if (client_global_init() || client_init(&c, base_url, api_key)) {
		credential_free(api_key);
		fprintf(stderr, "environd env-key: cannot set up the HTTP client\n");
		return 1;
	}
	credential_free(api_key);
	if (strcmp(action, "create") == 0)
		rc = do_create(&c, env_id, v.str[OPT_NAME]);
	else if (strcmp(action, "list") == 0)
		rc = do_list(&c, env_id, v.num[OPT_JSON] != 0);
	else
		rc = do_revoke(&c, env_id, v.positional[2]);
	client_free(&c);
	return rc;
}
