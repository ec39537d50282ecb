/* cmd_enqueue.c - `environd enqueue ENV_ID --session ID`: the producer side of the work
 * queue over HTTP (SPEC §5, an extension): what "a session was created" or "a dormant
 * session received a message" looks like to a self-hosted environment.
 *
 * Prints the work id on stdout. A session that already has a live item gets that item
 * back (HTTP 200 instead of 201); its id is printed all the same, with a note on stderr. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cli/commands.h"
#include "client/client.h"
#include "client/credential.h"
#include "common/buf.h"
#include "common/cfg.h"

enum { OPT_SESSION, OPT_METADATA, OPT_HEALTHCHECK, OPT_API_KEY_FILE, OPT_API_KEY, OPT_BASE_URL, OPT_CA_FILE,
       OPT__COUNT };

static const struct cfg_option options[OPT__COUNT] = {
	[OPT_SESSION] = {"--session", NULL, CFG_STRING, NULL, 0, 0, "ID", "the session the work is for (data.id)"},
	/* Listed for --help; its values are collected by collect_metadata, as it repeats. */
	[OPT_METADATA] = {"--metadata", NULL, CFG_STRING, NULL, 0, 0, "KEY=VALUE", "a metadata entry (repeatable)"},
	[OPT_HEALTHCHECK] = {"--healthcheck", NULL, CFG_BOOL, NULL, 0, 0, NULL,
			     "enqueue a healthcheck item (id from --session, else a new hc_ id)"},
	[OPT_API_KEY_FILE] = {"--api-key-file", NULL, CFG_STRING, NULL, 0, 0, "PATH", "read the API key from PATH"},
	[OPT_API_KEY] = {"--api-key", "ENVIROND_API_KEY", CFG_STRING, NULL, 0, 0, "KEY",
			 "the API key (prefer the variable or a file: flags show in ps)"},
	[OPT_BASE_URL] = {"--base-url", "ENVIROND_URL", CFG_STRING, NULL, 0, 0, "URL",
			  "server URL (else ANTHROPIC_BASE_URL, else " CLIENT_DEFAULT_URL ")"},
	[OPT_CA_FILE] = CLIENT_CA_FILE_OPTION,
};

static const char usage[] =
	"usage: environd enqueue ENV_ID --session ID [--metadata KEY=VALUE]... [--healthcheck]\n\n"
	"Enqueues a work item over HTTP with an API key (ENVIROND_API_KEY or --api-key-file)\n"
	"and prints its id. This route is an environd extension (not in the official API).";

#define MAX_ARGS 256

/* Take every --metadata KEY=VALUE (or --metadata=KEY=VALUE) out of argv into metadata, and
 * leave the other arguments in rest[0..*nrest). Returns 0, or 2 after printing why. */
static int collect_metadata(int argc, char **argv, json_t *metadata, char **rest, int *nrest)
{
	static const char flag[] = "--metadata";
	*nrest = 0;
	if (argc > MAX_ARGS) {
		fprintf(stderr, "environd enqueue: too many arguments\n");
		return 2;
	}
	for (int a = 0; a < argc; a++) {
		const char *pair = NULL;
		if (strcmp(argv[a], flag) == 0) {
			if (a + 1 >= argc) {
				fprintf(stderr, "environd enqueue: --metadata: needs KEY=VALUE\n");
				return 2;
			}
			pair = argv[++a];
		} else if (strncmp(argv[a], flag, sizeof(flag) - 1) == 0 && argv[a][sizeof(flag) - 1] == '=') {
			pair = argv[a] + sizeof(flag);
		} else {
			rest[(*nrest)++] = argv[a];
			continue;
		}
		const char *eq = strchr(pair, '=');
		if (!eq || eq == pair) {
			fprintf(stderr, "environd enqueue: --metadata wants KEY=VALUE, got '%s'\n", pair);
			return 2;
		}
		char *key = strndup(pair, (size_t)(eq - pair));
		json_t *value = json_string(eq + 1);
		int bad = !key || !value || json_object_set_new(metadata, key, value);
		free(key);
		if (bad) {
			fprintf(stderr, "environd enqueue: --metadata '%s' is not valid UTF-8\n", pair);
			return 2;
		}
	}
	rest[*nrest] = NULL;
	return 0;
}

#define REQUEST_TIMEOUT_MS 30000L

/* "hc_" + 24 base62 characters, like the ids of SPEC §1. */
static int make_healthcheck_id(char out[28])
{
	static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	unsigned char rnd[24];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -1;
	memcpy(out, "hc_", 3);
	/* 248 is the largest multiple of 62 below 256; it keeps the draw close to uniform. */
	for (int i = 0; i < 24; i++)
		out[3 + i] = alphabet[(rnd[i] % 248) % 62];
	out[27] = '\0';
	return 0;
}

int cmd_enqueue(int argc, char **argv)
{
	json_t *metadata = json_object();
	if (!metadata)
		return 1;
	char *rest[MAX_ARGS + 1];
	int nrest, rc = collect_metadata(argc, argv, metadata, rest, &nrest);
	if (rc)
		goto out;
	struct cfg_values v;
	char why[512];
	rc = cfg_parse(options, OPT__COUNT, nrest, rest, usage, &v, why, sizeof(why));
	if (rc) {
		if (rc < 0)
			fprintf(stderr, "environd enqueue: %s\n", why);
		rc = rc > 0 ? 0 : 2;
		goto out;
	}
	rc = 2;
	if (v.npositional != 1) {
		fprintf(stderr, "environd enqueue: expected exactly one ENV_ID\n%s\n", usage);
		goto out;
	}
	const char *env_id = v.positional[0];
	int healthcheck = v.num[OPT_HEALTHCHECK] != 0;
	char hc_id[28];
	const char *item_id = v.str[OPT_SESSION];
	if (!item_id && healthcheck) {
		if (make_healthcheck_id(hc_id)) {
			fprintf(stderr, "environd enqueue: no randomness for a healthcheck id\n");
			rc = 1;
			goto out;
		}
		item_id = hc_id;
	}
	if (!item_id || !*item_id) {
		fprintf(stderr, "environd enqueue: --session ID is required\n");
		goto out;
	}

	char err[4300];
	char *api_key = NULL;
	if (credential_resolve(v.str[OPT_API_KEY_FILE], v.str[OPT_API_KEY], "ENVIROND_API_KEY",
			       "api-key-file", &api_key, err, sizeof(err))) {
		fprintf(stderr, "environd enqueue: %s\n", err);
		goto out;
	}
	static const char *const url_vars[] = {"ANTHROPIC_BASE_URL", NULL};
	const char *base_url = credential_base_url(v.str[OPT_BASE_URL], url_vars, 1);
	if (client_set_ca_file(v.str[OPT_CA_FILE], err, sizeof(err))) {
		credential_free(api_key);
		fprintf(stderr, "environd enqueue: %s\n", err);
		goto out;
	}
	rc = 1;
	struct client c;
	if (client_global_init() || client_init(&c, base_url, api_key)) {
		credential_free(api_key);
		fprintf(stderr, "environd enqueue: cannot set up the HTTP client\n");
		goto out;
	}
	credential_free(api_key);

	json_t *body = json_pack("{s:{s:s,s:s},s:O}", "data", "type",
				 healthcheck ? "healthcheck" : "session", "id", item_id,
				 "metadata", metadata);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	struct buf path;
	buf_init(&path, 4096);
	buf_puts(&path, "/v1/environments/");
	client_put_escaped(&path, env_id);
	buf_puts(&path, "/work");
	if (!text || path.failed) {
		fprintf(stderr, "environd enqueue: the session id is not valid UTF-8 or is too long\n");
	} else {
		struct client_reply r;
		client_request(&c, "POST", path.data, text, NULL, REQUEST_TIMEOUT_MS, &r);
		const char *id = client_json_str(r.body, "id");
		if ((r.status == 200 || r.status == 201) && id) {
			printf("%s\n", id);
			const char *state = client_json_str(r.body, "state");
			if (r.status == 200)
				fprintf(stderr, "environd enqueue: %s already has a live work item (%s)\n", item_id,
					state ? state : "state unknown");
			rc = 0;
		} else if (r.status == 0) {
			fprintf(stderr, "environd enqueue: cannot reach %s: %s\n", c.base_url, r.message);
		} else if (r.status >= 200 && r.status < 300) {
			fprintf(stderr, "environd enqueue: the server's reply holds no work id\n");
		} else {
			fprintf(stderr, "environd enqueue: HTTP %d%s%s: %s\n", r.status, r.error_type[0] ? " " : "",
				r.error_type, r.message);
		}
		client_reply_free(&r);
	}
	free(text);
	buf_free(&path);
	client_free(&c);
out:
	json_decref(metadata);
	return rc;
}
