/* cmd_session.c - `environd session create|send|watch`: the producer's side of a session
 * over the public API, with an API key. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/api_cli.h"
#include "cli/commands.h"
#include "cli/session_watch.h"
#include "common/buf.h"
#include "common/cfg.h"

static const char usage[] =
	"usage: environd session create ENV_ID --agent AGENT_ID [--title TITLE] [--message TEXT]\n"
	"       environd session send SESSION_ID TEXT\n"
	"       environd session watch SESSION_ID [--until-idle] [--json]\n\n"
	"create starts a session of an agent in a self-hosted environment and prints its id;\n"
	"send posts a user message; watch prints the session's events as they happen.\n"
	"The API key comes from ENVIROND_API_KEY or --api-key-file.";

enum { O_AGENT, O_TITLE, O_MESSAGE, O_UNTIL_IDLE, O_JSON, O_KEY_FILE, O_KEY, O_BASE_URL, O__COUNT };

/* One table for the three subcommands; each refuses the options that are not its own. */
static const struct cfg_option options[O__COUNT] = {
	[O_AGENT] = {"--agent", NULL, CFG_STRING, NULL, 0, 0, "AGENT_ID", "create: the agent (latest version)"},
	[O_TITLE] = {"--title", NULL, CFG_STRING, NULL, 0, 0, "TITLE", "create: the session's title"},
	[O_MESSAGE] = {"--message", NULL, CFG_STRING, NULL, 0, 0, "TEXT", "create: send this first user message"},
	[O_UNTIL_IDLE] = {"--until-idle", NULL, CFG_BOOL, NULL, 0, 0, NULL,
			  "watch: also exit once the session is idle waiting on no one (end_turn)"},
	[O_JSON] = {"--json", NULL, CFG_BOOL, NULL, 0, 0, NULL, "watch: print each event as one line of JSON"},
	[O_KEY_FILE] = API_CLI_OPTION_KEY_FILE,
	[O_KEY] = API_CLI_OPTION_KEY,
	[O_BASE_URL] = API_CLI_OPTION_BASE_URL,
};

struct subcommand {
	const char *name;
	size_t npositional;            /* exactly this many positional arguments */
	const char *positional_help;
	const char *positional_names[2];
	unsigned allowed;              /* bit per option index it accepts (beyond the client's) */
};

#define BIT(o) (1u << (o))
static const struct subcommand subcommands[] = {
	{"create", 1, "ENV_ID", {"ENV_ID"}, BIT(O_AGENT) | BIT(O_TITLE) | BIT(O_MESSAGE)},
	{"send", 2, "SESSION_ID TEXT", {"SESSION_ID", "TEXT"}, 0},
	{"watch", 1, "SESSION_ID", {"SESSION_ID"}, BIT(O_UNTIL_IDLE) | BIT(O_JSON)},
};

/* Check the parsed options against the subcommand. Returns 0, or 2 after printing why. */
int session_check_args(const char *sub, const struct cfg_values *v, char **argv, int argc)
{
	const struct subcommand *sc = NULL;
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(sub, subcommands[i].name))
			sc = &subcommands[i];
	if (!sc) {
		fprintf(stderr, "environd session: unknown subcommand '%s'\n%s\n", sub, usage);
		return 2;
	}
	/* An option given on the command line that this subcommand does not take. */
	for (int a = 1; a < argc; a++) {
		for (int o = 0; o < O_KEY_FILE; o++) {
			size_t n = strlen(options[o].flag);
			if (!strncmp(argv[a], options[o].flag, n) && (argv[a][n] == '\0' || argv[a][n] == '=') &&
			    !(sc->allowed & BIT(o))) {
				fprintf(stderr, "environd session %s: %s is not an option of %s (see --help)\n", sub,
					options[o].flag, sub);
				return 2;
			}
		}
		if (!strcmp(argv[a], "--"))
			break;
	}
	if (v->npositional != sc->npositional) {
		fprintf(stderr, "environd session %s: expected %s\n", sub, sc->positional_help);
		return 2;
	}
	for (size_t i = 0; i < v->npositional; i++)
		if (!v->positional[i][0]) {
			fprintf(stderr, "environd session %s: %s must not be empty\n", sub, sc->positional_names[i]);
			return 2;
		}
	if (!strcmp(sub, "create") && (!v->str[O_AGENT] || !v->str[O_AGENT][0])) {
		fprintf(stderr, "environd session create: --agent AGENT_ID is required\n");
		return 2;
	}
	if (v->str[O_MESSAGE] && !v->str[O_MESSAGE][0]) {
		fprintf(stderr, "environd session create: --message must not be empty\n");
		return 2;
	}
	return 0;
}

static json_t *message_body(const char *text)
{
	return json_pack("{s:[{s:s,s:[{s:s,s:s}]}]}", "events", "type", "user.message", "content", "type", "text",
			 "text", text);
}

/* POST a user message to the session. Returns 0 or 1. */
static int send_message(struct client *c, const char *prog, const char *session_id, const char *text)
{
	json_t *body = message_body(text);
	if (!body) {
		fprintf(stderr, "%s: the message is not valid UTF-8\n", prog);
		return 1;
	}
	struct buf path;
	buf_init(&path, 4096);
	buf_puts(&path, "/v1/sessions/");
	client_put_escaped(&path, session_id);
	buf_puts(&path, "/events");
	json_t *reply = path.failed ? NULL : api_cli_call(prog, "sending the message", c, "POST", path.data, body);
	if (path.failed)
		fprintf(stderr, "%s: the session id is too long\n", prog);
	buf_free(&path);
	json_decref(body);
	int rc = reply ? 0 : 1;
	json_decref(reply);
	return rc;
}

static int session_create(struct client *c, const struct cfg_values *v)
{
	static const char prog[] = "environd session create";
	json_t *body = json_pack("{s:s,s:s}", "agent", v->str[O_AGENT], "environment_id", v->positional[0]);
	if (body && v->str[O_TITLE] && json_object_set_new(body, "title", json_string(v->str[O_TITLE])))
		json_decref(body), body = NULL;
	if (!body) {
		fprintf(stderr, "%s: the arguments must be valid UTF-8\n", prog);
		return 2;
	}
	json_t *session = api_cli_call(prog, "creating the session", c, "POST", "/v1/sessions", body);
	json_decref(body);
	const char *id = client_json_str(session, "id");
	int rc = 1;
	if (id) {
		printf("%s\n", id);
		fflush(stdout);
		rc = v->str[O_MESSAGE] ? send_message(c, prog, id, v->str[O_MESSAGE]) : 0;
	} else if (session) {
		fprintf(stderr, "%s: the server's reply holds no session id\n", prog);
	}
	json_decref(session);
	return rc;
}

int cmd_session(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "%s\n", usage);
		return 2;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		printf("%s\n", usage);
		return 0;
	}
	struct cfg_values v;
	char why[512];
	int rc = cfg_parse(options, O__COUNT, argc - 1, argv + 1, usage, &v, why, sizeof(why));
	if (rc)
		return rc > 0 ? 0 : (fprintf(stderr, "environd session %s: %s\n", sub, why), 2);
	rc = session_check_args(sub, &v, argv + 1, argc - 1);
	if (rc)
		return rc;
	char prog[64];
	snprintf(prog, sizeof(prog), "environd session %s", sub);
	struct client c;
	rc = api_cli_open(prog, v.str[O_KEY_FILE], v.str[O_KEY], v.str[O_BASE_URL], &c);
	if (rc)
		return rc;
	if (!strcmp(sub, "create")) {
		rc = session_create(&c, &v);
	} else if (!strcmp(sub, "send")) {
		rc = send_message(&c, prog, v.positional[0], v.positional[1]);
	} else {
		struct watch_options wo = {.until_idle = v.num[O_UNTIL_IDLE] != 0, .json = v.num[O_JSON] != 0};
		rc = session_watch(&c, v.positional[0], &wo);
	}
	client_free(&c);
	return rc;
}
