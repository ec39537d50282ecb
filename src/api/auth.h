/* auth.h - credentials of SPEC §4: who is calling, and may they call this route.
 *
 * The credential arrives as `x-api-key: K` or `Authorization: Bearer K`; its prefix names
 * its kind. It is hashed (SHA-256) and looked up; the text itself is never stored or
 * logged. Unknown or revoked → 401; a valid credential of a kind the route does not take
 * → 403. For API keys, `anthropic-workspace-id` picks the workspace (403 if the key may
 * not use it); without it a workspace-bound key uses its own, others "default". */
#ifndef ENVIROND_API_AUTH_H
#define ENVIROND_API_AUTH_H

#include "api/call.h"

#define AUTH_DEFAULT_WORKSPACE "default"
#define API_KEY_PREFIX "envd_api_"
#define ENV_KEY_PREFIX "envd_env_"
#define SESSION_TOKEN_PREFIX "envd_req_"
#define AGENT_KEY_PREFIX "envd_agt_"

/* Authenticate c->req for a route accepting the kinds in `allowed` (AUTH_* bits); fills
 * c->cred and c->tenant. */
enum err auth_resolve(struct call *c, unsigned allowed);

/* True when s is a valid organization/account/workspace name: 1–64 of [A-Za-z0-9_.-]. */
int auth_valid_name(const char *s);

#endif
