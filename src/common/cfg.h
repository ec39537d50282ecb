/* cfg.h - command-line options as one table: flag, environment variable, default, range
 * and help line in one row. Flags win over environment variables, which win over defaults.
 * Positional arguments are collected in order. */
#ifndef ENVIROND_CFG_H
#define ENVIROND_CFG_H

#include <stddef.h>
#include <stdio.h>

#define CFG_MAX_OPTIONS 32
#define CFG_MAX_POSITIONAL 8

enum cfg_kind { CFG_STRING, CFG_INT, CFG_BOOL };

struct cfg_option {
	const char *flag;   /* "--listen" */
	const char *env;    /* "ENVIROND_LISTEN", or NULL */
	enum cfg_kind kind;
	const char *def;    /* default as text, or NULL for none */
	long long min, max; /* CFG_INT only */
	const char *arg;    /* placeholder in --help, e.g. "HOST:PORT" */
	const char *help;
};

struct cfg_values {
	const char *str[CFG_MAX_OPTIONS]; /* text value (flag, env or default), NULL if none */
	long long num[CFG_MAX_OPTIONS];   /* CFG_INT / CFG_BOOL value */
	const char *positional[CFG_MAX_POSITIONAL];
	size_t npositional;
};

/* Parse argv (argv[0] is the command name). Returns 0 on success, 1 when --help was
 * printed to stdout, -1 on a bad option (message in why). */
int cfg_parse(const struct cfg_option *opts, size_t n, int argc, char **argv, const char *usage,
	      struct cfg_values *out, char *why, size_t why_len);

void cfg_help(FILE *f, const char *usage, const struct cfg_option *opts, size_t n);

#endif
