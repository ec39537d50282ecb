/* cliopt.c - option tables of the client-side commands (see cliopt.h). */
#include "client/cliopt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cliopt_build(const struct cliopt *opts, int n, struct option out[CLIOPT_MAX + 1])
{
	if (n > CLIOPT_MAX)
		n = CLIOPT_MAX;
	for (int i = 0; i < n; i++) {
		out[i].name = opts[i].name;
		out[i].has_arg = opts[i].arg ? required_argument : no_argument;
		out[i].flag = NULL;
		out[i].val = i;
	}
	memset(&out[n], 0, sizeof(out[n]));
}

void cliopt_usage(FILE *out, const char *synopsis, const struct cliopt *opts, int n)
{
	fprintf(out, "usage: %s\n\noptions:\n", synopsis);
	for (int i = 0; i < n; i++) {
		char flag[96];
		snprintf(flag, sizeof(flag), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
			 opts[i].arg ? opts[i].arg : "");
		fprintf(out, "  %-30s %s", flag, opts[i].help);
		if (opts[i].env)
			fprintf(out, " [env: %s]", opts[i].env);
		fputc('\n', out);
	}
}

int cliopt_parse_long(const char *text, long min, long max, long *value)
{
	if (!text || !*text)
		return -1;
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*value = v;
	return 0;
}
