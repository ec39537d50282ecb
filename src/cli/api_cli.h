/* api_cli.h - what the producer-side commands (`agent create`, `session ...`) share: the
 * options that locate the server and the API key, the client they open, and one way of
 * saying what went wrong. */
#ifndef ENVIROND_CLI_API_CLI_H
#define ENVIROND_CLI_API_CLI_H

#include <jansson.h>

#include "client/client.h"
#include "common/cfg.h"

#define API_CLI_TIMEOUT_MS 30000L

/* The three options every producer command has, as rows to put in its table. */
#define API_CLI_OPTION_KEY_FILE {"--api-key-file", NULL, CFG_STRING, NULL, 0, 0, "PATH", "read the API key from PATH"}
#define API_CLI_OPTION_KEY                                                                                  \
	{"--api-key", "ENVIROND_API_KEY", CFG_STRING, NULL, 0, 0, "KEY",                                    \
	 "the API key (prefer the variable or a file: flags show in ps)"}
#define API_CLI_OPTION_BASE_URL                                                                             \
	{"--base-url", "ENVIROND_URL", CFG_STRING, NULL, 0, 0, "URL",                                       \
	 "server URL (else ANTHROPIC_BASE_URL, else " CLIENT_DEFAULT_URL ")"}

/* Open a client with the API key from key_file / key_flag / ENVIROND_API_KEY and the base
 * URL from url_flag / ENVIROND_URL (via the option) / ANTHROPIC_BASE_URL. prog prefixes the
 * messages ("environd session"). Returns 0, or the exit status after printing why. */
int api_cli_open(const char *prog, const char *key_file, const char *key_flag, const char *url_flag,
		 struct client *c);

/* Send body (a JSON value, borrowed; NULL for none) and expect a 2xx JSON object. Returns
 * the reply body (a new reference) or NULL after printing "PROG: WHAT failed: ..." */
json_t *api_cli_call(const char *prog, const char *what, struct client *c, const char *method, const char *path,
		     const json_t *body);

/* Print "PROG: WHAT failed: ..." for a reply that was not the one wanted. */
void api_cli_report(const char *prog, const char *what, const struct client *c, const struct client_reply *r);

#endif
