/* main.c - environd's entry point: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "worker/worker.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{"serve", cmd_serve, "serve the Environments API and work queue"},
	{"worker", cmd_worker, "claim work from a self-hosted environment and run it"},
	{"key", cmd_key, "create, list or revoke API keys (directly on the store)"},
	{"env-key", cmd_env_key, "create, list or revoke an environment's keys (over HTTP)"},
	{"enqueue", cmd_enqueue, "enqueue a work item for a session (over HTTP)"},
	{"agent", cmd_agent, "create an agent, or serve echo-agent turns (over HTTP)"},
	{"session", cmd_session, "create a session, send it a message, watch its events (over HTTP)"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: environd COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s  %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\nRun 'environd COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	/* Internal: the worker starts each command under a fresh keeper (worker/keeper.c). */
	if (strcmp(argv[1], "__keeper") == 0)
		return keeper_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "environd: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
