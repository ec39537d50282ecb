/* cmd_agent.c - `environd agent echo` (serve echo-agent turns, agent/runner.h) and
 * `environd agent create` (define an agent over the public API, printing its id). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "agent/echo.h"
#include "agent/runner.h"
#include "cli/api_cli.h"
#include "cli/commands.h"
#include "client/credential.h"
#include "common/cfg.h"
#include "common/log.h"

static const char usage[] =
	"usage: environd agent echo [--concurrency N] [--once] [--log-format text|json]\n"
	"       environd agent create --name NAME [--model MODEL] [--system TEXT]\n\n"
	"echo serves the turns of sessions whose agent's model is " ECHO_MODEL ": each user\n"
	"message becomes one bash tool use that a worker runs; its output comes back as an agent\n"
	"message. Whoever can post a message to such a session runs commands on the workers.\n"
	"create defines an agent with an API key and prints its id.\n\n"
	"Run 'environd agent echo --help' or 'environd agent create --help' for the options.";

/* ---- agent echo ---- */

enum { E_CONCURRENCY, E_ONCE, E_KEY_FILE, E_BASE_URL, E_LOG_FORMAT, E_LOG_LEVEL, E_KEY_FLAG, E__COUNT };

static const struct cfg_option echo_options[E__COUNT] = {
	[E_CONCURRENCY] = {"--concurrency", NULL, CFG_INT, "4", 1, RUNNER_MAX_CONCURRENCY, "N", "serve at most N turns at once"},
	[E_ONCE] = {"--once", NULL, CFG_BOOL, NULL, 0, 0, NULL, "serve what waits, exit once no turn is waiting"},
	[E_KEY_FILE] = {"--agent-key-file", NULL, CFG_STRING, NULL, 0, 0, "PATH",
			"read the agent key from PATH instead of ENVIROND_AGENT_KEY"},
	[E_BASE_URL] = {"--base-url", "ENVIROND_URL", CFG_STRING, NULL, 0, 0, "URL",
			"server URL (else ANTHROPIC_BASE_URL, else " CLIENT_DEFAULT_URL ")"},
	[E_LOG_FORMAT] = {"--log-format", NULL, CFG_STRING, "text", 0, 0, "text|json", "log line format"},
	[E_LOG_LEVEL] = {"--log-level", NULL, CFG_STRING, "info", 0, 0, "LEVEL", "error, warn, info or debug"},
	[E_KEY_FLAG] = {"--agent-key", NULL, CFG_STRING, NULL, 0, 0, "KEY",
			"not accepted (flags show in ps): use the variable or --agent-key-file"},
};

static const char echo_usage[] =
	"usage: environd agent echo [--concurrency N] [--once] [--agent-key-file PATH]\n"
	"                           [--log-format text|json] [--log-level LEVEL]\n\n"
	"Serves the turns of sessions whose agent's model is " ECHO_MODEL ". The agent key\n"
	"(envd_agt_..., from `environd key create --agent`) comes from ENVIROND_AGENT_KEY or\n"
	"--agent-key-file. Each user message becomes one bash tool use that a worker of the\n"
	"session's environment runs: whoever can post a message runs commands on the workers.\n"
	"SIGTERM, SIGINT or SIGHUP drains (held turns finish); a second signal or SIGQUIT drops\n"
	"them now (the server hands them out again when their leases run out).";

static int agent_echo(int argc, char **argv)
{
	struct cfg_values v;
	char why[512];
	int rc = cfg_parse(echo_options, E__COUNT, argc, argv, echo_usage, &v, why, sizeof(why));
	if (rc)
		return rc > 0 ? 0 : (fprintf(stderr, "environd agent echo: %s\n", why), 2);
	if (v.str[E_KEY_FLAG]) {
		fprintf(stderr, "environd agent echo: the agent key is not taken from a flag (it would show in ps); "
				"set ENVIROND_AGENT_KEY or use --agent-key-file PATH\n");
		return 2;
	}
	if (v.npositional) {
		fprintf(stderr, "environd agent echo: takes no positional arguments (see --help)\n");
		return 2;
	}
	enum log_format format = LOG_FORMAT_TEXT;
	if (strcmp(v.str[E_LOG_FORMAT], "json") == 0) {
		format = LOG_FORMAT_JSON;
	} else if (strcmp(v.str[E_LOG_FORMAT], "text") != 0) {
		fprintf(stderr, "environd agent echo: --log-format is text or json\n");
		return 2;
	}
	int level = log_level_parse(v.str[E_LOG_LEVEL]);
	if (level < 0) {
		fprintf(stderr, "environd agent echo: --log-level is error, warn, info or debug\n");
		return 2;
	}
	static const char *const url_vars[] = {"ANTHROPIC_BASE_URL", NULL};
	const char *base_url = credential_base_url(v.str[E_BASE_URL], url_vars, 1);
	if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0) {
		fprintf(stderr, "environd agent echo: the base URL must start with http:// or https://\n");
		return 2;
	}
	char err[4300];
	char *key = NULL;
	if (credential_resolve(v.str[E_KEY_FILE], NULL, "ENVIROND_AGENT_KEY", "agent-key-file", &key, err, sizeof(err))) {
		fprintf(stderr, "environd agent echo: %s\n", err);
		return 2;
	}
	log_setup((enum log_level)level, format);
	struct runner_config cfg = {
		.base_url = base_url,
		.agent_key = key,
		.model = ECHO_MODEL,
		.concurrency = (int)v.num[E_CONCURRENCY],
		.once = v.num[E_ONCE] != 0,
	};
	int status = runner_run(&cfg);
	credential_free(key);
	return status;
}

/* ---- agent create ---- */

enum { C_NAME, C_MODEL, C_SYSTEM, C_KEY_FILE, C_KEY, C_BASE_URL, C__COUNT };

static const struct cfg_option create_options[C__COUNT] = {
	[C_NAME] = {"--name", NULL, CFG_STRING, NULL, 0, 0, "NAME", "the agent's name (required)"},
	[C_MODEL] = {"--model", NULL, CFG_STRING, ECHO_MODEL, 0, 0, "MODEL", "the model (" ECHO_MODEL " is served by `agent echo`)"},
	[C_SYSTEM] = {"--system", NULL, CFG_STRING, NULL, 0, 0, "TEXT", "the system prompt"},
	[C_KEY_FILE] = API_CLI_OPTION_KEY_FILE,
	[C_KEY] = API_CLI_OPTION_KEY,
	[C_BASE_URL] = API_CLI_OPTION_BASE_URL,
};

static const char create_usage[] =
	"usage: environd agent create --name NAME [--model MODEL] [--system TEXT]\n\n"
	"Creates an agent with the agent toolset (POST /v1/agents) with an API key\n"
	"(ENVIROND_API_KEY or --api-key-file) and prints its id.";

static int agent_create(int argc, char **argv)
{
	static const char prog[] = "environd agent create";
	struct cfg_values v;
	char why[512];
	int rc = cfg_parse(create_options, C__COUNT, argc, argv, create_usage, &v, why, sizeof(why));
	if (rc)
		return rc > 0 ? 0 : (fprintf(stderr, "%s: %s\n", prog, why), 2);
	if (v.npositional) {
		fprintf(stderr, "%s: takes no positional arguments (see --help)\n", prog);
		return 2;
	}
	if (!v.str[C_NAME] || !*v.str[C_NAME]) {
		fprintf(stderr, "%s: --name NAME is required\n", prog);
		return 2;
	}
	if (!*v.str[C_MODEL]) {
		fprintf(stderr, "%s: --model must not be empty\n", prog);
		return 2;
	}
	json_t *body = json_pack("{s:s,s:s,s:[{s:s}]}", "name", v.str[C_NAME], "model", v.str[C_MODEL], "tools", "type",
				 "agent_toolset_20260401");
	if (body && v.str[C_SYSTEM] && json_object_set_new(body, "system", json_string(v.str[C_SYSTEM])))
		json_decref(body), body = NULL;
	if (!body) {
		fprintf(stderr, "%s: --name, --model and --system must be valid UTF-8\n", prog);
		return 2;
	}
	struct client c;
	rc = api_cli_open(prog, v.str[C_KEY_FILE], v.str[C_KEY], v.str[C_BASE_URL], &c);
	if (rc) {
		json_decref(body);
		return rc;
	}
	json_t *agent = api_cli_call(prog, "creating the agent", &c, "POST", "/v1/agents", body);
	json_decref(body);
	const char *id = client_json_str(agent, "id");
	rc = 1;
	if (id) {
		printf("%s\n", id);
		rc = 0;
	} else if (agent) {
		fprintf(stderr, "%s: the server's reply holds no agent id\n", prog);
	}
	json_decref(agent);
	client_free(&c);
	return rc;
}

int cmd_agent(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		printf("%s\n", usage);
		return 0;
	}
	if (!strcmp(argv[1], "echo"))
		return agent_echo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "create"))
		return agent_create(argc - 1, argv + 1);
	fprintf(stderr, "environd agent: unknown subcommand '%s'\n%s\n", argv[1], usage);
	return 2;
}
