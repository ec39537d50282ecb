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
#include "client/cliopt.h"
#include "client/client.h"
#include "client/credential.h"
#include "common/buf.h"

enum {
	OPT_SESSION,
	OPT_METADATA,
	OPT_HEALTHCHECK,
	OPT_API_KEY_FILE,
	OPT_API_KEY,
	OPT_BASE_URL,
	OPT_HELP,
	OPT__COUNT
};

static const struct cliopt options[OPT__COUNT] = {
	[OPT_SESSION] = {"session", "ID", NULL, "the session the work is for (data.id)"},
	[OPT_METADATA] = {"metadata", "KEY=VALUE", NULL, "set a metadata entry (repeatable)"},
	[OPT_HEALTHCHECK] = {"healthcheck", NULL, NULL,
			     "enqueue a healthcheck item (id from --session, else a new hc_ id)"},
	[OPT_API_KEY_FILE] = {"api-key-file", "PATH", NULL, "read the API key from PATH"},
	[OPT_API_KEY] = {"api-key", "KEY", "ENVIROND_API_KEY",
			 "the API key (prefer the variable or a file: flags show in ps)"},
	[OPT_BASE_URL] = {"base-url", "URL", "ENVIROND_URL, ANTHROPIC_BASE_URL",
			  "server URL (default " CLIENT_DEFAULT_URL ")"},
	[OPT_HELP] = {"help", NULL, NULL, "show this help"},
};

static const char synopsis[] =
	"environd enqueue ENV_ID --session ID [--metadata KEY=VALUE]... [--healthcheck]";

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
	const char *values[OPT__COUNT] = {0};
	struct option longopts[CLIOPT_MAX + 1];
	cliopt_build(options, OPT__COUNT, longopts);
	json_t *metadata = json_object();
	if (!metadata)
		return 1;
	int opt, rc = 2;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'h')
			opt = OPT_HELP;
		if (opt < 0 || opt >= OPT__COUNT) {
			fprintf(stderr, "environd enqueue: unknown option or missing value: %s\n",
				argv[optind - 1]);
			cliopt_usage(stderr, synopsis, options, OPT__COUNT);
			goto out;
		}
		if (opt == OPT_METADATA) {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				fprintf(stderr, "environd enqueue: --metadata wants KEY=VALUE, got '%s'\n", optarg);
				goto out;
			}
			char *key = strndup(optarg, (size_t)(eq - optarg));
			json_t *value = json_string(eq + 1);
			if (!key || !value || json_object_set_new(metadata, key, value)) {
				free(key);
				fprintf(stderr, "environd enqueue: --metadata '%s' is not valid UTF-8\n", optarg);
				goto out;
			}
			free(key);
			continue;
		}
		values[opt] = optarg ? optarg : "1";
	}
	if (values[OPT_HELP]) {
		cliopt_usage(stdout, synopsis, options, OPT__COUNT);
		rc = 0;
		goto out;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "environd enqueue: expected exactly one ENV_ID\n");
		cliopt_usage(stderr, synopsis, options, OPT__COUNT);
		goto out;
	}
	const char *env_id = argv[optind];
	char hc_id[28];
	const char *item_id = values[OPT_SESSION];
	if (!item_id && values[OPT_HEALTHCHECK]) {
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
	if (credential_resolve(values[OPT_API_KEY_FILE], values[OPT_API_KEY], "ENVIROND_API_KEY",
			       "api-key-file", &api_key, err, sizeof(err))) {
		fprintf(stderr, "environd enqueue: %s\n", err);
		goto out;
	}
	static const char *const url_vars[] = {"ENVIROND_URL", "ANTHROPIC_BASE_URL", NULL};
	const char *base_url = credential_base_url(values[OPT_BASE_URL], url_vars, 1);
	rc = 1;
	struct client c;
	if (client_global_init() || client_init(&c, base_url, api_key)) {
		credential_free(api_key);
		fprintf(stderr, "environd enqueue: cannot set up the HTTP client\n");
		goto out;
	}
	credential_free(api_key);

	json_t *body = json_pack("{s:{s:s,s:s},s:O}", "data", "type",
				 values[OPT_HEALTHCHECK] ? "healthcheck" : "session", "id", item_id,
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
			if (r.status == 200)
				fprintf(stderr, "environd enqueue: %s already has a live work item (%s)\n",
					item_id, client_json_str(r.body, "state") ? client_json_str(r.body, "state") : "?");
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
