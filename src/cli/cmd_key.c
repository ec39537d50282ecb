/* cmd_key.c - `environd key create|list|revoke`: API keys, directly on the store, and
 * `environd key create --agent`: agent keys of the agent extension. Works while a server
 * runs on the same file (SQLite WAL lets both write). */
#include "cli/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "cli/keys_cli.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secret.h"

enum { OPT_DB, OPT_ORG, OPT_ACCOUNT, OPT_WORKSPACE, OPT_NAME, OPT_AGENT, OPT_MODELS, OPT__COUNT };

static const struct cfg_option options[OPT__COUNT] = {
	[OPT_DB] = {"--db", "ENVIROND_DB", CFG_STRING, "./environd.db", 0, 0, "PATH|URL",
		    "SQLite database file, or a postgres:// URL"},
	[OPT_ORG] = {"--org", NULL, CFG_STRING, "default", 0, 0, "NAME", "organization of the new key"},
	[OPT_ACCOUNT] = {"--account", NULL, CFG_STRING, "default", 0, 0, "NAME", "account the key acts as"},
	[OPT_WORKSPACE] = {"--workspace", NULL, CFG_STRING, NULL, 0, 0, "NAME",
			   "bind the key to one workspace (default: any workspace of the organization)"},
	[OPT_NAME] = {"--name", NULL, CFG_STRING, "cli", 0, 0, "NAME", "a label for the key"},
	[OPT_AGENT] = {"--agent", NULL, CFG_BOOL, "0", 0, 0, NULL,
		       "mint an agent key (envd_agt_…) for an agent runner instead of an API key"},
	[OPT_MODELS] = {"--models", NULL, CFG_STRING, NULL, 0, 0, "M1,M2",
			"agent keys: serve only agents whose model id is listed (default: any)"},
};

static const char usage[] = "usage: environd key create [--agent [--models M1,M2]] [OPTIONS]\n"
			    "       environd key list [--db PATH]\n"
			    "       environd key revoke KEY_ID [--db PATH]";

int keys_cli_mint(struct store *s, const char *org, const char *account, const char *workspace, const char *name,
		  char out[TOKEN_MAX], char *why, size_t why_len)
{
	struct api_key k;
	memset(&k, 0, sizeof(k));
	if (!auth_valid_name(org) || !auth_valid_name(account) || (*workspace && !auth_valid_name(workspace)) ||
	    !auth_valid_name(name)) {
		snprintf(why, why_len, "--org, --account, --workspace and --name must be 1-64 characters of A-Z a-z 0-9 _ . -");
		return -1;
	}
	snprintf(k.tenant.org, sizeof(k.tenant.org), "%s", org);
	snprintf(k.tenant.account, sizeof(k.tenant.account), "%s", account);
	snprintf(k.tenant.workspace, sizeof(k.tenant.workspace), "%s", workspace);
	snprintf(k.name, sizeof(k.name), "%s", name);
	k.created_at = clock_wall_us();
	ids_new_at("apikey_", k.created_at, k.id);
	ids_token(API_KEY_PREFIX, out);
	char hash[SECRET_HASH_HEX + 1];
	secret_sha256_hex(out, strlen(out), hash);
	if (s->ops->api_key_create(s, &k, hash)) {
		snprintf(why, why_len, "the store refused the new key");
		return -1;
	}
	return 0;
}

/* An agent key: like an API key, stored hashed, shown once; `models` "" = any. */
static int mint_agent_key(struct store *s, const char *org, const char *account, const char *workspace,
			  const char *name, const char *models, char out[TOKEN_MAX], char *why, size_t why_len)
{
	struct agent_key k;
	memset(&k, 0, sizeof(k));
	if (!auth_valid_name(org) || !auth_valid_name(account) || (*workspace && !auth_valid_name(workspace)) ||
	    !auth_valid_name(name)) {
		snprintf(why, why_len, "--org, --account, --workspace and --name must be 1-64 characters of A-Z a-z 0-9 _ . -");
		return -1;
	}
	size_t len = strlen(models);
	if (len > AGENT_MODELS_MAX) {
		snprintf(why, why_len, "--models: longer than %d characters", AGENT_MODELS_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = models[i];
		int sep = ch == ',';
		if ((sep && (i == 0 || i + 1 == len || models[i + 1] == ',')) || (unsigned char)ch <= ' ') {
			snprintf(why, why_len, "--models: expected model ids separated by single commas, got \"%.200s\"", models);
			return -1;
		}
	}
	snprintf(k.tenant.org, sizeof(k.tenant.org), "%s", org);
	snprintf(k.tenant.account, sizeof(k.tenant.account), "%s", account);
	snprintf(k.tenant.workspace, sizeof(k.tenant.workspace), "%s", workspace);
	snprintf(k.name, sizeof(k.name), "%s", name);
	snprintf(k.models, sizeof(k.models), "%s", models);
	k.created_at = clock_wall_us();
	ids_new_at("agtkey_", k.created_at, k.id);
	ids_token(AGENT_KEY_PREFIX, out);
	char hash[SECRET_HASH_HEX + 1];
	secret_sha256_hex(out, strlen(out), hash);
	if (s->ops->agent_key_create(s, &k, hash)) {
		snprintf(why, why_len, "the store refused the new key");
		return -1;
	}
	return 0;
}

int cmd_key(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cfg_help(argc < 2 ? stderr : stdout, usage, options, OPT__COUNT);
		return argc < 2 ? 2 : 0;
	}
	const char *action = argv[1];
	struct cfg_values v;
	char why[512];
	int rc = cfg_parse(options, OPT__COUNT, argc - 1, argv + 1, usage, &v, why, sizeof(why));
	if (rc)
		return rc > 0 ? 0 : (fprintf(stderr, "environd key: %s\n", why), 2);
	log_setup(LOG_WARN, LOG_FORMAT_TEXT);
	int is_create = !strcmp(action, "create"), is_list = !strcmp(action, "list"), is_revoke = !strcmp(action, "revoke");
	if (!is_create && !is_list && !is_revoke) {
		fprintf(stderr, "environd key: unknown action \"%s\" (create, list or revoke)\n", action);
		return 2;
	}
	if ((is_revoke && v.npositional != 1) || (!is_revoke && v.npositional)) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	struct store *s;
	struct errbuf eb = {{0}};
	if (store_open(v.str[OPT_DB], 1, &s, &eb)) {
		fprintf(stderr, "environd key: %s\n", eb.message);
		return 1;
	}
	int status = 0;
	if (is_create) {
		char key[TOKEN_MAX];
		const char *ws = v.str[OPT_WORKSPACE] ? v.str[OPT_WORKSPACE] : "";
		int minted = 0;
		if (!v.num[OPT_AGENT] && v.str[OPT_MODELS])
			snprintf(why, sizeof(why), "--models applies to agent keys only (add --agent)"), minted = -1;
		else if (v.num[OPT_AGENT])
			minted = mint_agent_key(s, v.str[OPT_ORG], v.str[OPT_ACCOUNT], ws, v.str[OPT_NAME],
						v.str[OPT_MODELS] ? v.str[OPT_MODELS] : "", key, why, sizeof(why));
		else
			minted = keys_cli_mint(s, v.str[OPT_ORG], v.str[OPT_ACCOUNT], ws, v.str[OPT_NAME], key, why,
					       sizeof(why));
		if (minted) {
			fprintf(stderr, "environd key create: %s\n", why);
			status = 1;
		} else {
			printf("%s\n", key);
			explicit_bzero(key, sizeof(key));
		}
	} else if (is_list) {
		struct api_key *keys = NULL;
		size_t n = 0;
		if (s->ops->api_key_list(s, &keys, &n)) {
			fprintf(stderr, "environd key list: cannot read keys\n");
			status = 1;
		} else {
			printf("%-32s %-16s %-16s %-16s %-16s %s\n", "ID", "NAME", "ORG", "ACCOUNT", "WORKSPACE", "CREATED");
			for (size_t i = 0; i < n; i++) {
				char ts[CLOCK_TS_LEN + 1];
				clock_format(keys[i].created_at, ts);
				printf("%-32s %-16s %-16s %-16s %-16s %s\n", keys[i].id, keys[i].name, keys[i].tenant.org,
				       keys[i].tenant.account, keys[i].tenant.workspace[0] ? keys[i].tenant.workspace : "*",
				       ts);
			}
		}
		free(keys);
	} else {
		enum err e = s->ops->api_key_revoke(s, v.positional[0]);
		if (e == ERR_NOT_FOUND) {
			fprintf(stderr, "environd key revoke: no key %s\n", v.positional[0]);
			status = 1;
		} else if (e) {
			fprintf(stderr, "environd key revoke: the store refused\n");
			status = 1;
		} else {
			printf("revoked %s\n", v.positional[0]);
		}
	}
	s->ops->close(s);
	return status;
}
