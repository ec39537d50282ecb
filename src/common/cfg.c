/* cfg.c - option tables (see cfg.h). */
#include "common/cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cfg_help(FILE *f, const char *usage, const struct cfg_option *opts, size_t n)
{
	fprintf(f, "%s\n\noptions:\n", usage);
	for (size_t i = 0; i < n; i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s%s%s", opts[i].flag, opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-28s %s", left, opts[i].help);
		if (opts[i].def)
			fprintf(f, " (default: %s)", opts[i].def);
		if (opts[i].env)
			fprintf(f, " [env %s]", opts[i].env);
		fputc('\n', f);
	}
}

static int set_value(const struct cfg_option *o, const char *text, const char *source, long long *num,
		     char *why, size_t why_len)
{
	if (o->kind == CFG_STRING)
		return 0;
	if (o->kind == CFG_BOOL) {
		if (!strcmp(text, "1") || !strcmp(text, "true") || !strcmp(text, "yes"))
			*num = 1;
		else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no"))
			*num = 0;
		else {
			snprintf(why, why_len, "%s: expected true or false, got \"%.40s\"", source, text);
			return -1;
		}
		return 0;
	}
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (!*text || *end || errno || v < o->min || v > o->max) {
		snprintf(why, why_len, "%s: expected an integer from %lld to %lld, got \"%.40s\"", source, o->min, o->max,
			 text);
		return -1;
	}
	*num = v;
	return 0;
}

int cfg_parse(const struct cfg_option *opts, size_t n, int argc, char **argv, const char *usage,
	      struct cfg_values *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	if (n > CFG_MAX_OPTIONS) {
		snprintf(why, why_len, "too many options");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *env = opts[i].env ? getenv(opts[i].env) : NULL;
		const char *text = env && *env ? env : opts[i].def;
		out->str[i] = text;
		if (text && set_value(&opts[i], text, env && *env ? opts[i].env : opts[i].flag, &out->num[i], why, why_len))
			return -1;
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a];
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			cfg_help(stdout, usage, opts, n);
			return 1;
		}
		if (strncmp(arg, "--", 2) != 0 || !strcmp(arg, "--")) {
			if (!strcmp(arg, "--"))
				a++;
			for (; a < argc; a++) {
				if (out->npositional == CFG_MAX_POSITIONAL) {
					snprintf(why, why_len, "too many arguments");
					return -1;
				}
				out->positional[out->npositional++] = argv[a];
				if (a + 1 < argc && !strncmp(argv[a + 1], "--", 2))
					break; /* options may follow positional arguments */
			}
			continue;
		}
		const char *eq = strchr(arg, '=');
		size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
		size_t i = 0;
		while (i < n && (strlen(opts[i].flag) != name_len || strncmp(opts[i].flag, arg, name_len) != 0))
			i++;
		if (i == n) {
			snprintf(why, why_len, "unknown option %.*s (see --help)", (int)name_len, arg);
			return -1;
		}
		const char *value;
		if (eq) {
			value = eq + 1;
		} else if (opts[i].kind == CFG_BOOL) {
			value = "true";
		} else if (a + 1 < argc) {
			value = argv[++a];
		} else {
			snprintf(why, why_len, "%s: needs a value", opts[i].flag);
			return -1;
		}
		out->str[i] = value;
		if (set_value(&opts[i], value, opts[i].flag, &out->num[i], why, why_len))
			return -1;
	}
	return 0;
}
