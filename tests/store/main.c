/* main.c - the store conformance suite's entry: every group, or those named on the
 * command line (keys env work queue race race-session race-edit agent session fleet). The backend is the one
 * ENVIROND_STORE_URL names (see conformance.h). */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static const struct {
	const char *name;
	int (*run)(void);
} groups[] = {
	{"keys", conf_group_keys},   {"env", conf_group_env},     {"work", conf_group_work},
	{"queue", conf_group_queue}, {"race", conf_group_race},   {"race-session", conf_group_race_session},
	{"race-edit", conf_group_race_edit}, {"agent", conf_group_agent}, {"session", conf_group_session},
	{"fleet", conf_group_fleet},
};

int main(int argc, char **argv)
{
	/* Warnings and errors only: every test migrates a fresh store, which logs at info. */
	log_setup(LOG_WARN, LOG_FORMAT_TEXT);
	const char *url = getenv("ENVIROND_STORE_URL");
	fprintf(stderr, "store conformance on %s\n", url && *url ? "PostgreSQL" : "SQLite");
	int failures = 0;
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		int chosen = argc < 2;
		for (int a = 1; a < argc && !chosen; a++)
			chosen = strcmp(argv[a], groups[i].name) == 0;
		if (chosen)
			failures += groups[i].run();
	}
	return failures ? 1 : 0;
}
