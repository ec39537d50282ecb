/* environment.c - environment validation, defaults and merge rules (SPEC §2). */
#include "model/environment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/fields.h"
#include "model/metadata.h"

static const char *const package_lists[] = {"apt", "cargo", "gem", "go", "npm", "pip", NULL};

void env_fields_clear(struct env_fields *f)
{
	free(f->name);
	free(f->description);
	json_decref(f->config);
	json_decref(f->metadata);
	memset(f, 0, sizeof(*f));
}

void environment_clear(struct environment *e) { env_fields_clear(&e->f); }

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

enum err env_fields_copy(struct env_fields *dst, const struct env_fields *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->name = dup_or_null(src->name);
	dst->description = dup_or_null(src->description);
	dst->config = json_deep_copy(src->config);
	dst->metadata = json_deep_copy(src->metadata);
	dst->scope_account = src->scope_account;
	if ((src->name && !dst->name) || (src->description && !dst->description) || !dst->config ||
	    !dst->metadata) {
		env_fields_clear(dst);
		return ERR_NOMEM;
	}
	return ERR_OK;
}

int env_is_self_hosted(const struct env_fields *f)
{
	return strcmp(json_string_value(json_object_get(f->config, "type")), "self_hosted") == 0;
}

static json_t *default_packages(void)
{
	json_t *p = json_pack("{s:s}", "type", "packages");
	for (size_t i = 0; package_lists[i]; i++)
		json_object_set_new(p, package_lists[i], json_array());
	return p;
}

static json_t *default_limited(void)
{
	return json_pack("{s:s,s:b,s:b,s:[]}", "type", "limited", "allow_mcp_servers", 0,
			 "allow_package_managers", 0, "allowed_hosts");
}

static json_t *default_cloud(void)
{
	return json_pack("{s:s,s:{s:s},s:o}", "type", "cloud", "networking", "type", "unrestricted",
			 "packages", default_packages());
}

/* A host name as SPEC §2 allows: labels of letters, digits and '-', optional leading "*.". */
static const char *host_problem(const char *h, size_t len)
{
	if (len == 0)
		return "must not be empty";
	if (len > ENV_HOST_LEN_MAX)
		return "is longer than 253 characters";
	if (strstr(h, "://"))
		return "must be a bare host name without a scheme";
	if (strchr(h, '/'))
		return "must be a bare host name without a path";
	if (strchr(h, ':'))
		return "must be a bare host name without a port";
	const char *p = h;
	if (len >= 2 && h[0] == '*' && h[1] == '.')
		p += 2;
	size_t label = 0;
	if (!*p)
		return "is not a valid host name";
	for (; *p; p++) {
		char c = *p;
		if (c == '.') {
			if (label == 0)
				return "is not a valid host name (empty label)";
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '_') {
			if (++label > 63)
				return "has a label longer than 63 characters";
		} else {
			return "is not a valid host name";
		}
	}
	if (label == 0)
		return "is not a valid host name (empty label)";
	return NULL;
}

/* Validate a list of strings at `path`; kind selects the host or package rules. */
static enum err check_list(const json_t *list, const char *path, int hosts, struct errbuf *eb)
{
	if (!json_is_array(list))
		return fields_type_error(path, "an array of strings", list, eb);
	size_t max = hosts ? ENV_HOSTS_MAX : ENV_PACKAGES_MAX;
	if (json_array_size(list) > max)
		return errf(eb, ERR_INVALID, "%s: has %zu entries, at most %zu are allowed", path,
			    json_array_size(list), max);
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		if (!json_is_string(v))
			return errf(eb, ERR_INVALID, "%s[%zu]: expected a string, got %s", path, i,
				    fields_type_name(v));
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		if (memchr(s, '\0', len))
			return errf(eb, ERR_INVALID, "%s[%zu]: must not contain NUL characters", path, i);
		if (hosts) {
			const char *why = host_problem(s, len);
			if (why)
				return errf(eb, ERR_INVALID, "%s[%zu]: \"%.80s\" %s", path, i, s, why);
		} else {
			size_t chars = utf8_chars(s, len);
			if (chars == 0 || chars > ENV_PACKAGE_LEN_MAX)
				return errf(eb, ERR_INVALID, "%s[%zu]: must be 1 to %d characters", path, i,
					    ENV_PACKAGE_LEN_MAX);
		}
	}
	return ERR_OK;
}

/* Merge a networking request into `cur` (a complete networking object, replaced in place). */
static enum err merge_networking(json_t **cur, const json_t *req, struct errbuf *eb)
{
	static const char *const unrestricted_keys[] = {"type", NULL};
	static const char *const limited_keys[] = {"type", "allow_mcp_servers", "allow_package_managers",
						   "allowed_hosts", NULL};
	if (!json_is_object(req))
		return fields_type_error("config.networking", "an object", req, eb);
	const json_t *type = json_object_get(req, "type");
	if (!json_is_string(type))
		return errf(eb, ERR_INVALID, "config.networking.type: required, \"unrestricted\" or \"limited\"");
	const char *t = json_string_value(type);
	if (strcmp(t, "unrestricted") == 0) {
		enum err rc = fields_only(req, "config.networking", unrestricted_keys, eb);
		if (rc)
			return rc;
		json_decref(*cur);
		*cur = json_pack("{s:s}", "type", "unrestricted");
		return ERR_OK;
	}
	if (strcmp(t, "limited") != 0)
		return errf(eb, ERR_INVALID, "config.networking.type: must be \"unrestricted\" or \"limited\", got \"%.40s\"", t);
	enum err rc = fields_only(req, "config.networking", limited_keys, eb);
	if (rc)
		return rc;
	const char *cur_type = json_string_value(json_object_get(*cur, "type"));
	json_t *next = strcmp(cur_type, "limited") == 0 ? json_deep_copy(*cur) : default_limited();
	if (!next)
		return ERR_NOMEM;
	static const char *const flags[] = {"allow_mcp_servers", "allow_package_managers"};
	for (int i = 0; i < 2; i++) {
		json_t *v = json_object_get(req, flags[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_boolean(v)) {
			char path[64];
			snprintf(path, sizeof(path), "config.networking.%s", flags[i]);
			json_decref(next);
			return fields_type_error(path, "a boolean", v, eb);
		}
		json_object_set(next, flags[i], v);
	}
	json_t *hosts = json_object_get(req, "allowed_hosts");
	if (hosts && !json_is_null(hosts)) {
		rc = check_list(hosts, "config.networking.allowed_hosts", 1, eb);
		if (rc) {
			json_decref(next);
			return rc;
		}
		json_object_set_new(next, "allowed_hosts", json_deep_copy(hosts));
	}
	json_decref(*cur);
	*cur = next;
	return ERR_OK;
}

static enum err merge_packages(json_t *cur, const json_t *req, struct errbuf *eb)
{
	static const char *const keys[] = {"type", "apt", "cargo", "gem", "go", "npm", "pip", NULL};
	if (!json_is_object(req))
		return fields_type_error("config.packages", "an object", req, eb);
	enum err rc = fields_only(req, "config.packages", keys, eb);
	if (rc)
		return rc;
	const json_t *type = json_object_get(req, "type");
	if (type && !json_is_null(type) &&
	    (!json_is_string(type) || strcmp(json_string_value(type), "packages") != 0))
		return errf(eb, ERR_INVALID, "config.packages.type: must be \"packages\"");
	for (size_t i = 0; package_lists[i]; i++) {
		json_t *list = json_object_get(req, package_lists[i]);
		if (!list || json_is_null(list))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "config.packages.%s", package_lists[i]);
		rc = check_list(list, path, 0, eb);
		if (rc)
			return rc;
	}
	for (size_t i = 0; package_lists[i]; i++) {
		json_t *list = json_object_get(req, package_lists[i]);
		if (list && !json_is_null(list))
			json_object_set_new(cur, package_lists[i], json_deep_copy(list));
	}
	return ERR_OK;
}

/* Merge a config request into *cur (complete config). For create, *cur starts as the
 * default cloud config of the requested type. */
static enum err merge_config(json_t **cur, const json_t *req, int creating, struct errbuf *eb)
{
	static const char *const self_hosted_keys[] = {"type", NULL};
	static const char *const cloud_keys[] = {"type", "networking", "packages", NULL};
	if (!json_is_object(req))
		return fields_type_error("config", "an object", req, eb);
	const json_t *type = json_object_get(req, "type");
	if (!json_is_string(type))
		return errf(eb, ERR_INVALID, "config.type: required, \"cloud\" or \"self_hosted\"");
	const char *t = json_string_value(type);
	int self_hosted = strcmp(t, "self_hosted") == 0;
	if (!self_hosted && strcmp(t, "cloud") != 0)
		return errf(eb, ERR_INVALID, "config.type: must be \"cloud\" or \"self_hosted\", got \"%.40s\"", t);
	enum err rc = fields_only(req, "config", self_hosted ? self_hosted_keys : cloud_keys, eb);
	if (rc)
		return rc;
	const char *cur_type = json_string_value(json_object_get(*cur, "type"));
	if (!creating && strcmp(cur_type, t) != 0)
		return errf(eb, ERR_CONFIG_TYPE_CHANGE,
			    "config.type: cannot change from \"%s\" to \"%s\"; create a new environment instead",
			    cur_type, t);
	if (self_hosted) {
		json_t *next = json_pack("{s:s}", "type", "self_hosted");
		if (!next)
			return ERR_NOMEM;
		json_decref(*cur);
		*cur = next;
		return ERR_OK;
	}
	json_t *next = strcmp(cur_type, "cloud") == 0 ? json_deep_copy(*cur) : default_cloud();
	if (!next)
		return ERR_NOMEM;
	json_t *networking = json_incref(json_object_get(next, "networking"));
	const json_t *net_req = json_object_get(req, "networking");
	if (net_req && !json_is_null(net_req)) {
		rc = merge_networking(&networking, net_req, eb);
		if (rc)
			goto fail;
		json_object_set(next, "networking", networking);
	}
	const json_t *pkg_req = json_object_get(req, "packages");
	if (pkg_req && !json_is_null(pkg_req)) {
		rc = merge_packages(json_object_get(next, "packages"), pkg_req, eb);
		if (rc)
			goto fail;
	}
	/* Packages need a package manager when the network is limited. */
	if (strcmp(json_string_value(json_object_get(networking, "type")), "limited") == 0 &&
	    !json_is_true(json_object_get(networking, "allow_package_managers"))) {
		json_t *packages = json_object_get(next, "packages");
		for (size_t i = 0; package_lists[i]; i++) {
			if (json_array_size(json_object_get(packages, package_lists[i])) > 0) {
				rc = errf(eb, ERR_INVALID,
					  "config.packages.%s: packages under a limited network require "
					  "config.networking.allow_package_managers to be true",
					  package_lists[i]);
				goto fail;
			}
		}
	}
	json_decref(networking);
	json_decref(*cur);
	*cur = next;
	return ERR_OK;
fail:
	json_decref(networking);
	json_decref(next);
	return rc;
}

static enum err check_name(const json_t *v, struct errbuf *eb)
{
	if (!json_is_string(v))
		return fields_type_error("name", "a string", v, eb);
	size_t chars = utf8_chars(json_string_value(v), json_string_length(v));
	if (chars == 0)
		return errf(eb, ERR_INVALID, "name: must not be empty");
	if (chars > ENV_NAME_MAX)
		return errf(eb, ERR_INVALID, "name: is %zu characters long, at most %d are allowed", chars,
			    ENV_NAME_MAX);
	if (memchr(json_string_value(v), '\0', json_string_length(v)))
		return errf(eb, ERR_INVALID, "name: must not contain NUL characters");
	return ERR_OK;
}

static enum err check_description(const json_t *v, struct errbuf *eb)
{
	if (!json_is_string(v))
		return fields_type_error("description", "a string or null", v, eb);
	size_t chars = utf8_chars(json_string_value(v), json_string_length(v));
	if (chars > ENV_DESCRIPTION_MAX)
		return errf(eb, ERR_INVALID, "description: is %zu characters long, at most %d are allowed", chars,
			    ENV_DESCRIPTION_MAX);
	if (memchr(json_string_value(v), '\0', json_string_length(v)))
		return errf(eb, ERR_INVALID, "description: must not contain NUL characters");
	return ERR_OK;
}

static enum err parse_scope(const json_t *v, int *scope_account, struct errbuf *eb)
{
	if (!json_is_string(v))
		return fields_type_error("scope", "\"organization\" or \"account\"", v, eb);
	const char *s = json_string_value(v);
	if (strcmp(s, "organization") == 0)
		*scope_account = 0;
	else if (strcmp(s, "account") == 0)
		*scope_account = 1;
	else
		return errf(eb, ERR_INVALID, "scope: must be \"organization\" or \"account\", got \"%.40s\"", s);
	return ERR_OK;
}

static const char *const body_keys[] = {"name", "description", "config", "metadata", "scope", NULL};

static enum err check_body(const json_t *body, struct errbuf *eb)
{
	if (!json_is_object(body))
		return errf(eb, ERR_INVALID, "body: expected a JSON object, got %s", fields_type_name(body));
	return fields_only(body, "", body_keys, eb);
}

enum err env_parse_create(const json_t *body, struct env_fields *out, struct errbuf *eb)
{
	memset(out, 0, sizeof(*out));
	enum err rc = check_body(body, eb);
	if (rc)
		return rc;
	const json_t *name = json_object_get(body, "name");
	if (!name || json_is_null(name))
		return errf(eb, ERR_INVALID, "name: required");
	if ((rc = check_name(name, eb)))
		return rc;
	const json_t *description = json_object_get(body, "description");
	if (description && !json_is_null(description) && (rc = check_description(description, eb)))
		return rc;
	const json_t *scope = json_object_get(body, "scope");
	int scope_account = 0;
	if (scope && !json_is_null(scope) && (rc = parse_scope(scope, &scope_account, eb)))
		return rc;
	json_t *config = default_cloud();
	const json_t *config_req = json_object_get(body, "config");
	if (config_req && !json_is_null(config_req) && (rc = merge_config(&config, config_req, 1, eb))) {
		json_decref(config);
		return rc;
	}
	json_t *metadata = NULL;
	const json_t *metadata_req = json_object_get(body, "metadata");
	if (metadata_req && !json_is_null(metadata_req)) {
		if ((rc = metadata_validate(metadata_req, eb))) {
			json_decref(config);
			return rc;
		}
		metadata = json_deep_copy(metadata_req);
	} else {
		metadata = json_object();
	}
	out->name = strdup(json_string_value(name));
	out->description = description && !json_is_null(description) ? strdup(json_string_value(description))
								      : NULL;
	out->config = config;
	out->metadata = metadata;
	out->scope_account = scope_account;
	if (!out->name || !out->metadata || !out->config ||
	    (description && !json_is_null(description) && !out->description)) {
		env_fields_clear(out);
		return ERR_NOMEM;
	}
	return ERR_OK;
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

enum err env_apply_update(struct env_fields *cur, const json_t *body, int *changed, struct errbuf *eb)
{
	*changed = 0;
	enum err rc = check_body(body, eb);
	if (rc)
		return rc;
	struct env_fields next;
	if ((rc = env_fields_copy(&next, cur)))
		return rc;
	const json_t *v = json_object_get(body, "name");
	if (v && !json_is_null(v)) {
		if ((rc = check_name(v, eb)))
			goto out;
		free(next.name);
		next.name = strdup(json_string_value(v));
	}
	if ((v = json_object_get(body, "description"))) {
		if (!json_is_null(v) && (rc = check_description(v, eb)))
			goto out;
		free(next.description);
		next.description = json_is_null(v) ? NULL : strdup(json_string_value(v));
		if (!json_is_null(v) && !next.description) {
			rc = ERR_NOMEM; /* not a cleared description */
			goto out;
		}
	}
	if ((v = json_object_get(body, "scope")) && !json_is_null(v) &&
	    (rc = parse_scope(v, &next.scope_account, eb)))
		goto out;
	if ((v = json_object_get(body, "config")) && !json_is_null(v) &&
	    (rc = merge_config(&next.config, v, 0, eb)))
		goto out;
	if ((v = json_object_get(body, "metadata")) && !json_is_null(v)) {
		int meta_changed;
		if ((rc = metadata_patch(next.metadata, v, METADATA_DELETE_NULL_OR_EMPTY, &meta_changed, eb)))
			goto out;
	}
	if (!next.name) {
		rc = ERR_NOMEM;
		goto out;
	}
	*changed = !str_eq(cur->name, next.name) || !str_eq(cur->description, next.description) ||
		   cur->scope_account != next.scope_account || !json_equal(cur->config, next.config) ||
		   !json_equal(cur->metadata, next.metadata);
	struct env_fields old = *cur;
	*cur = next;
	env_fields_clear(&old);
	return ERR_OK;
out:
	env_fields_clear(&next);
	return rc;
}
