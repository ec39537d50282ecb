/* keys.c - environment keys (SPEC §5): create, list, revoke. Only self_hosted
 * environments have them (the store checks, in each verb's transaction). The key text is
 * shown once, in the create reply. */
#include "api/call.h"

#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "api/encode.h"
#include "api/work_wake.h"
#include "common/clock.h"
#include "model/fields.h"
#include "model/metadata.h"

enum err env_key_create(struct call *c)
{
	static const char *const allowed[] = {"name", NULL};
	const char *name = "default";
	if (c->body) {
		enum err rc = fields_only(c->body, "", allowed, &c->eb);
		if (rc)
			return rc;
		json_t *n = json_object_get(c->body, "name");
		if (n && !json_is_null(n)) {
			if (!json_is_string(n))
				return fields_type_error("name", "a string", n, &c->eb);
			size_t chars = utf8_chars(json_string_value(n), json_string_length(n));
			if (chars == 0 || chars > 256 || memchr(json_string_value(n), '\0', json_string_length(n)))
				return errf(&c->eb, ERR_INVALID, "name: must be 1 to 256 characters");
			name = json_string_value(n);
		}
	}
	enum err rc = call_env_credential(c);
	if (rc)
		return rc;
	char key[TOKEN_MAX], hash[SECRET_HASH_HEX + 1];
	ids_token(ENV_KEY_PREFIX, key);
	secret_sha256_hex(key, strlen(key), hash);
	struct env_key k;
	rc = c->app->store->ops->env_key_create(c->app->store, &c->tenant, c->match.params[0], name, hash,
						clock_wall_us(), &k, &c->eb);
	if (rc)
		return call_store_failed(c, rc, "could not create the key");
	struct buf body;
	buf_init(&body, 8192);
	struct jsonw w;
	jsonw_init(&w, &body);
	encode_env_key(&w, &k, key);
	call_reply(c, 200, &body);
	return ERR_OK;
}

enum err env_key_list(struct call *c)
{
	enum err rc = call_env_credential(c);
	if (rc)
		return rc;
	size_t limit;
	struct cursor after;
	int has_after;
	if ((rc = call_page_params(c, "env_keys", c->match.params[0], &limit, &after, &has_after)))
		return rc;
	struct env_key_page page;
	rc = c->app->store->ops->env_key_list(c->app->store, &c->tenant, c->match.params[0], has_after ? &after : NULL,
					      limit, &page, &c->eb);
	if (rc)
		return call_store_failed(c, rc, "could not list keys");
	struct buf body;
	buf_init(&body, 1024 * 1024);
	struct jsonw w;
	jsonw_init(&w, &body);
	jsonw_obj_open(&w);
	jsonw_key(&w, "data");
	jsonw_arr_open(&w);
	for (size_t i = 0; i < page.count; i++)
		encode_env_key(&w, &page.items[i], NULL);
	jsonw_arr_close(&w);
	call_next_page(c, &w, "env_keys", c->match.params[0], page.more && page.count,
		       page.count ? page.items[page.count - 1].created_at : 0, page.count ? page.items[page.count - 1].id : "");
	jsonw_obj_close(&w);
	env_key_page_clear(&page);
	call_reply(c, 200, &body);
	return ERR_OK;
}

enum err env_key_revoke(struct call *c)
{
	enum err rc = call_env_credential(c);
	if (rc)
		return rc;
	struct work_wake wake;
	unsigned long long heard = atomic_load(&c->app->revocations_heard);
	rc = c->app->store->ops->env_key_revoke(c->app->store, &c->tenant, c->match.params[0], c->match.params[1], &wake,
						&c->eb);
	if (rc == ERR_NOT_FOUND && !c->eb.message[0])
		return errf(&c->eb, rc, "environment key %.64s not found", c->match.params[1]);
	if (rc)
		return call_store_failed(c, rc, "could not revoke the key");
	/* No request of this node uses it from now on; other nodes hear of it from the
	 * revocation's own commit. Polls held with it answer 401 now (their claim checks the
	 * key). */
	app_forget_credentials(c->app);
	app_revocation_heard(c->app, heard);
	work_wake_polls(c->app, &wake);
	struct buf body;
	buf_init(&body, 4096);
	struct jsonw w;
	jsonw_init(&w, &body);
	jsonw_obj_open(&w);
	jsonw_key(&w, "id");
	jsonw_str(&w, c->match.params[1]);
	jsonw_key(&w, "type");
	jsonw_str(&w, "environment_key_deleted");
	jsonw_obj_close(&w);
	call_reply(c, 200, &body);
	return ERR_OK;
}
