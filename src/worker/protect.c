/* protect.c - keeping the worker's credentials out of reach of the commands it runs: the
 * process is made non-dumpable, and credentials are wiped from its environment once read
 * (see worker.h). The keeper does the rest (keeper.c). */
#include "worker/worker.h"

#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

int worker_protect_process(void)
{
	/* Non-dumpable: /proc/PID/{environ,mem,maps,fd} become root's, ptrace is refused to
	 * processes of the same user, and no core file is written. */
	return prctl(PR_SET_DUMPABLE, 0) == 0 ? 0 : -1;
}

void worker_scrub_environment(const char *const *names)
{
	for (const char *const *name = names; *name; name++) {
		size_t n = strlen(*name);
		/* Every copy: the environment may name a variable twice. */
		for (char **e = environ; e && *e; e++)
			if (strncmp(*e, *name, n) == 0 && (*e)[n] == '=') {
				/* In place: the strings of the starting environment are what
				 * /proc/PID/environ shows, whatever environ points to later. */
				char *value = *e + n + 1;
				memset(value, 0, strlen(value));
			}
		unsetenv(*name);
	}
}
