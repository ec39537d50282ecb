/* auth.c - credential resolution and tenancy (see auth.h). */
#include "api/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/cred_cache.h"
#include "common/clock.h"
#include "common/secret.h"

#define CREDENTIAL_MAX 256

int auth_valid_name(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char ch = s[n];
		if (n >= 64 || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
				 ch == '_' || ch == '-' || ch == '.'))
			return 0;
	}
	return n > 0;
}

/* The credential text: x-api-key wins over Authorization when both are sent. */
static const char *credential_text(struct call *c)
{
	const char *key = http_header(c->req, "x-api-key");
	if (key && *key)
		return key;
	const char *auth = http_header(c->req, "Authorization");
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ')
			auth++;
		return *auth ? auth : NULL;
	}
	return NULL;
}

/* Environment keys come from this node's cache while it is valid (cred_cache.h): a poll
 * or a heartbeat then costs no store lookup. */
static enum err resolve(struct app *a, enum cred_kind kind, const char *hash, struct credential *out)
{
	struct store *s = a->store;
	uint64_t epoch = 0;
	int cacheable = kind == CRED_ENV_KEY && s->ops->wake_epoch(s, &epoch) == 0;
	int64_t now = clock_mono_us();
	if (cacheable && cred_cache_get(a->creds, hash, epoch, now, out))
		return ERR_OK;
	uint64_t clears = cacheable ? cred_cache_clears(a->creds) : 0;
	enum err rc = s->ops->credential_find(s, kind, hash, clock_wall_us(), out);
	if (rc == ERR_OK && cacheable) {
		memcpy(out->hash, hash, sizeof(out->hash));
		cred_cache_put(a->creds, out, epoch, clears, now);
	}
	return rc;
}

enum err auth_resolve(struct call *c, unsigned allowed)
{
	const char *text = credential_text(c);
	if (!text)
		return errf(&c->eb, ERR_UNAUTHENTICATED,
			    "missing credentials: send an API key as x-api-key or Authorization: Bearer");
	size_t len = strnlen(text, CREDENTIAL_MAX + 1);
	enum cred_kind kind;
	if (strncmp(text, API_KEY_PREFIX, strlen(API_KEY_PREFIX)) == 0)
		kind = CRED_API_KEY;
	else if (strncmp(text, ENV_KEY_PREFIX, strlen(ENV_KEY_PREFIX)) == 0)
		kind = CRED_ENV_KEY;
	else if (strncmp(text, SESSION_TOKEN_PREFIX, strlen(SESSION_TOKEN_PREFIX)) == 0)
		kind = CRED_SESSION;
	else if (strncmp(text, AGENT_KEY_PREFIX, strlen(AGENT_KEY_PREFIX)) == 0)
		kind = CRED_AGENT;
	else
		return errf(&c->eb, ERR_UNAUTHENTICATED, "invalid credentials");
	if (len > CREDENTIAL_MAX)
		return errf(&c->eb, ERR_UNAUTHENTICATED, "invalid credentials");
	char hash[SECRET_HASH_HEX + 1];
	secret_sha256_hex(text, len, hash);
	enum err rc = resolve(c->app, kind, hash, &c->cred);
	if (rc == ERR_UNAUTHENTICATED)
		return errf(&c->eb, rc, "invalid credentials: unknown or revoked");
	if (rc == ERR_UNAVAILABLE)
		return errf(&c->eb, rc, "credential lookup failed: the store is unavailable, retry");
	if (rc)
		return errf(&c->eb, rc, "credential lookup failed");
	memcpy(c->cred.hash, hash, sizeof(c->cred.hash));
	if (!(allowed & (1u << kind))) {
		static const char *const names[] = {"an API key", "an environment key", "a session token",
						    "an agent key"};
		return errf(&c->eb, ERR_FORBIDDEN, "%s cannot be used on %s %s", names[kind], c->req->method,
			    c->route->route.pattern);
	}
	c->tenant = c->cred.tenant;
	const char *ws = http_header(c->req, "anthropic-workspace-id");
	if (ws && !*ws)
		ws = NULL;
	if (kind == CRED_AGENT && !c->cred.tenant.workspace[0]) {
		/* An agent key of the whole organization: the header, if any, narrows it. */
		if (ws && !auth_valid_name(ws))
			return errf(&c->eb, ERR_FORBIDDEN, "anthropic-workspace-id: \"%.64s\" is not a valid workspace", ws);
		snprintf(c->tenant.workspace, sizeof(c->tenant.workspace), "%s", ws ? ws : "");
	} else if (kind != CRED_API_KEY) {
		if (ws && strcmp(ws, c->tenant.workspace) != 0)
			return errf(&c->eb, ERR_FORBIDDEN, "anthropic-workspace-id: this credential may not use workspace \"%.64s\"", ws);
	} else if (c->cred.tenant.workspace[0]) {
		if (ws && strcmp(ws, c->cred.tenant.workspace) != 0)
			return errf(&c->eb, ERR_FORBIDDEN, "anthropic-workspace-id: this API key may not use workspace \"%.64s\"", ws);
	} else {
		if (ws && !auth_valid_name(ws))
			return errf(&c->eb, ERR_FORBIDDEN, "anthropic-workspace-id: \"%.64s\" is not a workspace this API key may use", ws);
		snprintf(c->tenant.workspace, sizeof(c->tenant.workspace), "%s", ws ? ws : AUTH_DEFAULT_WORKSPACE);
	}
	snprintf(c->req->workspace_echo, sizeof(c->req->workspace_echo), "%s", c->tenant.workspace);
	return ERR_OK;
}
