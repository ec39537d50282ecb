/* keys_cli.h - minting API keys straight on the store (used by `key create` and by
 * `serve` on first start). */
#ifndef ENVIROND_CLI_KEYS_CLI_H
#define ENVIROND_CLI_KEYS_CLI_H

#include <stddef.h>

#include "common/ids.h"
#include "store/store.h"

/* Create an API key for org/account (workspace "" = any of the org's). The key text goes
 * to out (TOKEN_MAX bytes); only its hash is stored. Returns 0, or -1 with why. */
int keys_cli_mint(struct store *s, const char *org, const char *account, const char *workspace, const char *name,
		  char out[TOKEN_MAX], char *why, size_t why_len);

#endif
