/* cliopt.h - option tables of the client-side commands (worker, enqueue, env-key).
 *
 * One row per option gives the flag, its argument, the environment variable it falls back
 * to and the --help line; the getopt_long table and the usage text are both made from it,
 * so they cannot disagree. getopt_long returns the row index for each option found. */
#ifndef ENVIROND_CLIOPT_H
#define ENVIROND_CLIOPT_H

#include <getopt.h>
#include <stdio.h>

struct cliopt {
	const char *name;      /* long flag without the dashes */
	const char *arg;       /* argument placeholder ("PATH"), NULL for a switch */
	const char *env;       /* variable used when the flag is absent, or NULL */
	const char *help;
};

#define CLIOPT_MAX 32

/* Fill out[0..n] (n rows, then the all-zero terminator) for getopt_long; val = row index.
 * n must be below CLIOPT_MAX. */
void cliopt_build(const struct cliopt *opts, int n, struct option out[CLIOPT_MAX + 1]);

/* Print "usage: SYNOPSIS", the options and their variables. */
void cliopt_usage(FILE *out, const char *synopsis, const struct cliopt *opts, int n);

/* Parse a whole number in [min, max]; returns 0 or -1. */
int cliopt_parse_long(const char *text, long min, long max, long *value);

#endif
