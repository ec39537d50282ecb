/* agent.c - agent configuration validation and merge (see agent.h). */
#include "model/agent.h"

#include <stdio.h>
#include <string.h>

#include "model/fields.h"
#include "model/metadata.h"

/* The tools of agent_toolset_20260401 that a self-hosted worker runs. web_fetch and
 * web_search are server tools of the hosted platform: environd has nobody to run them. */
static const char *const toolset_tools[] = {"bash", "edit", "read", "write", "glob", "grep", NULL};

static int in_list(const char *s, const char *const list[])
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

static enum err check_string(const json_t *v, const char *path, size_t min, size_t max, int nullable,
			     struct errbuf *eb)
{
	if (nullable && json_is_null(v))
		return ERR_OK;
	if (!json_is_string(v))
		return fields_type_error(path, nullable ? "a string or null" : "a string", v, eb);
	size_t n = utf8_chars(json_string_value(v), json_string_length(v));
	if (n < min)
		return errf(eb, ERR_INVALID, "%s: must not be empty", path);
	if (n > max)
		return errf(eb, ERR_INVALID, "%s: longer than %zu characters", path, max);
	return ERR_OK;
}

/* model: a string or {id, effort?, inference_geo?, speed?}; normalized to the object. */
static enum err build_model(const json_t *v, json_t **out, struct errbuf *eb)
{
	if (json_is_string(v)) {
		enum err rc = check_string(v, "model", 1, AGENT_MODEL_MAX, 0, eb);
		if (rc)
			return rc;
		*out = json_pack("{s:O}", "id", v);
		return *out ? ERR_OK : ERR_NOMEM;
	}
	if (!json_is_object(v))
		return fields_type_error("model", "a model id string or an object", v, eb);
	static const char *const allowed[] = {"id", "effort", "inference_geo", "speed", NULL};
	enum err rc = fields_only(v, "model", allowed, eb);
	if (rc)
		return rc;
	if ((rc = check_string(json_object_get(v, "id"), "model.id", 1, AGENT_MODEL_MAX, 0, eb)))
		return rc;
	json_t *m = json_pack("{s:O}", "id", json_object_get(v, "id"));
	if (!m)
		return ERR_NOMEM;
	json_t *effort = json_object_get(v, "effort");
	if (effort && !json_is_null(effort)) {
		static const char *const levels[] = {"low", "medium", "high", "xhigh", "max", NULL};
		const char *level = json_is_string(effort) ? json_string_value(effort) : NULL;
		if (json_is_object(effort)) {
			static const char *const only_type[] = {"type", NULL};
			if ((rc = fields_only(effort, "model.effort", only_type, eb)))
				goto fail;
			level = json_string_value(json_object_get(effort, "type"));
		}
		if (!level || !in_list(level, levels)) {
			rc = errf(eb, ERR_INVALID, "model.effort: expected one of low, medium, high, xhigh, max");
			goto fail;
		}
		json_object_set_new(m, "effort", json_pack("{s:s}", "type", level));
	}
	json_t *geo = json_object_get(v, "inference_geo");
	if (geo && !json_is_null(geo)) {
		if ((rc = check_string(geo, "model.inference_geo", 1, 64, 0, eb)))
			goto fail;
		json_object_set(m, "inference_geo", geo);
	}
	json_t *speed = json_object_get(v, "speed");
	if (speed && !json_is_null(speed)) {
		const char *sp = json_string_value(speed);
		if (!sp || (strcmp(sp, "standard") != 0 && strcmp(sp, "fast") != 0)) {
			rc = errf(eb, ERR_INVALID, "model.speed: expected \"standard\" or \"fast\"");
			goto fail;
		}
		json_object_set(m, "speed", speed);
	}
	*out = m;
	return ERR_OK;
fail:
	json_decref(m);
	return rc;
}

static enum err build_policy(const json_t *v, const char *path, json_t **out, struct errbuf *eb)
{
	if (!v || json_is_null(v)) {
		*out = json_pack("{s:s}", "type", "always_allow");
		return *out ? ERR_OK : ERR_NOMEM;
	}
	static const char *const only_type[] = {"type", NULL};
	static const char *const kinds[] = {"always_allow", "always_ask", "auto", NULL};
	if (!json_is_object(v))
		return fields_type_error(path, "an object", v, eb);
	enum err rc = fields_only(v, path, only_type, eb);
	if (rc)
		return rc;
	const char *t = json_string_value(json_object_get(v, "type"));
	if (!t || !in_list(t, kinds))
		return errf(eb, ERR_INVALID, "%s.type: expected always_allow, always_ask or auto", path);
	*out = json_pack("{s:s}", "type", t);
	return *out ? ERR_OK : ERR_NOMEM;
}

static enum err check_enabled(const json_t *v, const char *path, int *enabled, struct errbuf *eb)
{
	*enabled = 1;
	if (!v || json_is_null(v))
		return ERR_OK;
	if (!json_is_boolean(v))
		return fields_type_error(path, "a boolean", v, eb);
	*enabled = json_is_true(v);
	return ERR_OK;
}

static enum err build_toolset(const json_t *v, const char *path, json_t **out, struct errbuf *eb)
{
	static const char *const allowed[] = {"type", "configs", "default_config", NULL};
	enum err rc = fields_only(v, path, allowed, eb);
	if (rc)
		return rc;
	char p[128];
	json_t *ts = json_pack("{s:s,s:[]}", "type", "agent_toolset_20260401", "configs");
	if (!ts)
		return ERR_NOMEM;
	const json_t *dc = json_object_get(v, "default_config");
	int enabled;
	json_t *policy = NULL;
	snprintf(p, sizeof(p), "%s.default_config", path);
	if (dc && !json_is_null(dc)) {
		static const char *const dc_fields[] = {"enabled", "permission_policy", NULL};
		if (!json_is_object(dc)) {
			rc = fields_type_error(p, "an object or null", dc, eb);
			goto fail;
		}
		if ((rc = fields_only(dc, p, dc_fields, eb)))
			goto fail;
	}
	snprintf(p, sizeof(p), "%s.default_config.enabled", path);
	if ((rc = check_enabled(dc ? json_object_get(dc, "enabled") : NULL, p, &enabled, eb)))
		goto fail;
	snprintf(p, sizeof(p), "%s.default_config.permission_policy", path);
	if ((rc = build_policy(dc ? json_object_get(dc, "permission_policy") : NULL, p, &policy, eb)))
		goto fail;
	json_object_set_new(ts, "default_config",
			    json_pack("{s:b,s:o}", "enabled", enabled, "permission_policy", policy));
	const json_t *configs = json_object_get(v, "configs");
	if (configs && !json_is_null(configs)) {
		snprintf(p, sizeof(p), "%s.configs", path);
		if (!json_is_array(configs)) {
			rc = fields_type_error(p, "an array", configs, eb);
			goto fail;
		}
		size_t i;
		json_t *cfg;
		json_array_foreach(configs, i, cfg)
		{
			snprintf(p, sizeof(p), "%s.configs[%zu]", path, i);
			static const char *const cfg_fields[] = {"name", "type", "enabled", "permission_policy", NULL};
			if (!json_is_object(cfg)) {
				rc = fields_type_error(p, "an object", cfg, eb);
				goto fail;
			}
			if ((rc = fields_only(cfg, p, cfg_fields, eb)))
				goto fail;
			const char *name = json_string_value(json_object_get(cfg, "name"));
			if (!name || !in_list(name, toolset_tools)) {
				rc = errf(eb, ERR_INVALID,
					  "%s.name: expected one of bash, edit, read, write, glob, grep (environd's "
					  "self-hosted workers run no web_fetch or web_search)", p);
				goto fail;
			}
			const json_t *type = json_object_get(cfg, "type");
			if (type && !json_is_null(type) &&
			    (!json_is_string(type) || strcmp(json_string_value(type), name) != 0)) {
				rc = errf(eb, ERR_INVALID, "%s.type: must equal the name \"%s\"", p, name);
				goto fail;
			}
			size_t j;
			json_t *prev;
			json_array_foreach(json_object_get(ts, "configs"), j, prev)
			{
				if (strcmp(json_string_value(json_object_get(prev, "name")), name) == 0) {
					rc = errf(eb, ERR_INVALID, "%s.name: \"%s\" is configured twice", p, name);
					goto fail;
				}
			}
			char q[160];
			snprintf(q, sizeof(q), "%s.enabled", p);
			int en;
			if ((rc = check_enabled(json_object_get(cfg, "enabled"), q, &en, eb)))
				goto fail;
			snprintf(q, sizeof(q), "%s.permission_policy", p);
			json_t *pol = NULL;
			if ((rc = build_policy(json_object_get(cfg, "permission_policy"), q, &pol, eb)))
				goto fail;
			json_array_append_new(json_object_get(ts, "configs"),
					      json_pack("{s:b,s:s,s:o,s:s}", "enabled", en, "name", name,
							"permission_policy", pol, "type", name));
		}
	}
	*out = ts;
	return ERR_OK;
fail:
	json_decref(ts);
	return rc;
}

static int valid_tool_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > AGENT_TOOL_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		      ch == '-'))
			return 0;
	}
	return 1;
}

static enum err build_custom(const json_t *v, const char *path, json_t **out, struct errbuf *eb)
{
	static const char *const allowed[] = {"type", "name", "description", "input_schema", NULL};
	enum err rc = fields_only(v, path, allowed, eb);
	if (rc)
		return rc;
	char p[128];
	const json_t *name = json_object_get(v, "name");
	snprintf(p, sizeof(p), "%s.name", path);
	if (!json_is_string(name))
		return fields_type_error(p, "a string", name, eb);
	if (!valid_tool_name(json_string_value(name)))
		return errf(eb, ERR_INVALID, "%s: must be 1-%d characters of letters, digits, _ and -", p,
			    AGENT_TOOL_NAME_MAX);
	snprintf(p, sizeof(p), "%s.description", path);
	if ((rc = check_string(json_object_get(v, "description"), p, 0, AGENT_DESCRIPTION_MAX, 0, eb)))
		return rc;
	const json_t *schema = json_object_get(v, "input_schema");
	snprintf(p, sizeof(p), "%s.input_schema", path);
	if (!json_is_object(schema))
		return fields_type_error(p, "an object", schema, eb);
	const char *st = json_string_value(json_object_get(schema, "type"));
	if (!st || strcmp(st, "object") != 0)
		return errf(eb, ERR_INVALID, "%s.type: must be \"object\"", p);
	const json_t *props = json_object_get(schema, "properties");
	if (props && !json_is_null(props) && !json_is_object(props))
		return errf(eb, ERR_INVALID, "%s.properties: expected an object or null", p);
	const json_t *req = json_object_get(schema, "required");
	if (req && !json_is_null(req)) {
		size_t i;
		json_t *r;
		if (!json_is_array(req))
			return errf(eb, ERR_INVALID, "%s.required: expected an array of strings or null", p);
		json_array_foreach(req, i, r) if (!json_is_string(r)) return errf(
			eb, ERR_INVALID, "%s.required[%zu]: expected a string", p, i);
	}
	*out = json_pack("{s:O,s:O,s:O,s:s}", "description", json_object_get(v, "description"), "input_schema",
			 schema, "name", name, "type", "custom");
	return *out ? ERR_OK : ERR_NOMEM;
}

static enum err build_tools(const json_t *v, json_t **out, struct errbuf *eb)
{
	if (!json_is_array(v))
		return fields_type_error("tools", "an array", v, eb);
	if (json_array_size(v) > AGENT_TOOLS_MAX)
		return errf(eb, ERR_INVALID, "tools: at most %d tools", AGENT_TOOLS_MAX);
	json_t *tools = json_array();
	if (!tools)
		return ERR_NOMEM;
	size_t i;
	json_t *t;
	int toolsets = 0;
	enum err rc = ERR_OK;
	json_array_foreach(v, i, t)
	{
		char p[32];
		snprintf(p, sizeof(p), "tools[%zu]", i);
		if (!json_is_object(t)) {
			rc = fields_type_error(p, "an object", t, eb);
			break;
		}
		const char *type = json_string_value(json_object_get(t, "type"));
		json_t *built = NULL;
		if (type && strcmp(type, "agent_toolset_20260401") == 0) {
			if (toolsets++) {
				rc = errf(eb, ERR_INVALID, "%s: only one agent_toolset_20260401 is allowed", p);
				break;
			}
			rc = build_toolset(t, p, &built, eb);
		} else if (type && strcmp(type, "custom") == 0) {
			if (!(rc = build_custom(t, p, &built, eb))) {
				const char *name = json_string_value(json_object_get(built, "name"));
				size_t j;
				json_t *prev;
				json_array_foreach(tools, j, prev)
				{
					const char *pn = json_string_value(json_object_get(prev, "name"));
					if (pn && strcmp(pn, name) == 0) {
						rc = errf(eb, ERR_INVALID, "%s.name: \"%s\" is used by another tool", p,
							  name);
						break;
					}
				}
			}
		} else if (type && strcmp(type, "mcp_toolset") == 0) {
			rc = errf(eb, ERR_INVALID, "%s: mcp_toolset is not supported: environd runs no MCP servers", p);
		} else {
			rc = errf(eb, ERR_INVALID, "%s.type: expected agent_toolset_20260401 or custom", p);
		}
		if (rc) {
			json_decref(built);
			break;
		}
		json_array_append_new(tools, built);
	}
	if (rc) {
		json_decref(tools);
		return rc;
	}
	*out = tools;
	return ERR_OK;
}

/* Features environd cannot honour: absent, null or empty is fine, anything else is a 400. */
static enum err refuse_unsupported(const json_t *body, struct errbuf *eb)
{
	static const struct {
		const char *field;
		const char *why;
	} rows[] = {
		{"skills", "environd does not run skills"},
		{"mcp_servers", "environd runs no MCP servers"},
		{"multiagent", "environd runs single-agent sessions only"},
		{"execution_identity", "environd has no execution identities"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const json_t *v = json_object_get(body, rows[i].field);
		if (!v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
			continue;
		return errf(eb, ERR_INVALID, "%s: not supported: %s", rows[i].field, rows[i].why);
	}
	return ERR_OK;
}

static const char *const create_fields[] = {"name",	  "description", "model",      "system",
					     "tools",	  "metadata",    "skills",     "mcp_servers",
					     "multiagent", "execution_identity", NULL};

/* Set the simple fields present in body onto cfg (validated). */
static enum err apply_fields(json_t *cfg, const json_t *body, int creating, int *changed, struct errbuf *eb)
{
	enum err rc;
	const json_t *v;
	if ((v = json_object_get(body, "name"))) {
		if ((rc = check_string(v, "name", 1, AGENT_NAME_MAX, 0, eb)))
			return rc;
	}
	if ((v = json_object_get(body, "description")) &&
	    (rc = check_string(v, "description", 0, AGENT_DESCRIPTION_MAX, 1, eb)))
		return rc;
	if ((v = json_object_get(body, "system")) && (rc = check_string(v, "system", 0, AGENT_SYSTEM_MAX, 1, eb)))
		return rc;
	static const char *const plain[] = {"name", "description", "system", NULL};
	for (size_t i = 0; plain[i]; i++) {
		v = json_object_get(body, plain[i]);
		if (!v)
			continue;
		if (!json_equal(json_object_get(cfg, plain[i]), (json_t *)v))
			*changed = 1;
		json_object_set(cfg, plain[i], (json_t *)v);
	}
	if ((v = json_object_get(body, "model"))) {
		json_t *m = NULL;
		if ((rc = build_model(v, &m, eb)))
			return rc;
		if (!json_equal(json_object_get(cfg, "model"), m))
			*changed = 1;
		json_object_set_new(cfg, "model", m);
	}
	if ((v = json_object_get(body, "tools")) && !(json_is_null(v) && !creating)) {
		json_t *t = NULL;
		if (json_is_null(v))
			t = json_array();
		else if ((rc = build_tools(v, &t, eb)))
			return rc;
		if (!json_equal(json_object_get(cfg, "tools"), t))
			*changed = 1;
		json_object_set_new(cfg, "tools", t);
	}
	if ((v = json_object_get(body, "metadata")) && !json_is_null(v)) {
		if (!json_is_object(v))
			return fields_type_error("metadata", "an object", v, eb);
		if (creating) {
			if ((rc = metadata_validate(v, eb)))
				return rc;
			json_object_set_new(cfg, "metadata", json_deep_copy(v));
		} else {
			int mchanged = 0;
			if ((rc = metadata_patch(json_object_get(cfg, "metadata"), v, METADATA_DELETE_NULL, &mchanged,
						 eb)))
				return rc;
			if (mchanged)
				*changed = 1;
		}
	}
	return ERR_OK;
}

enum err agent_from_create(const json_t *body, json_t **out, struct errbuf *eb)
{
	*out = NULL;
	enum err rc = fields_only(body, "", create_fields, eb);
	if (rc || (rc = refuse_unsupported(body, eb)))
		return rc;
	if (!json_object_get(body, "name"))
		return errf(eb, ERR_INVALID, "name: required");
	if (!json_object_get(body, "model"))
		return errf(eb, ERR_INVALID, "model: required");
	json_t *cfg = json_pack("{s:n,s:n,s:[],s:[],s:[],s:n,s:n,s:{}}", "description", "system", "tools", "skills",
				"mcp_servers", "multiagent", "execution_identity", "metadata");
	if (!cfg)
		return ERR_NOMEM;
	int changed = 0;
	if ((rc = apply_fields(cfg, body, 1, &changed, eb))) {
		json_decref(cfg);
		return rc;
	}
	*out = cfg;
	return ERR_OK;
}

enum err agent_update(const json_t *current, const json_t *body, json_t **out, int *changed,
		      int64_t *expected_version, struct errbuf *eb)
{
	static const char *const update_fields[] = {"name",	     "description", "model",	  "system",
						    "tools",	     "metadata",    "skills",	  "mcp_servers",
						    "multiagent", "execution_identity", "version", NULL};
	*out = NULL;
	*changed = 0;
	*expected_version = 0;
	enum err rc = fields_only(body, "", update_fields, eb);
	if (rc || (rc = refuse_unsupported(body, eb)))
		return rc;
	const json_t *ver = json_object_get(body, "version");
	if (ver) {
		if (!json_is_integer(ver) || json_integer_value(ver) < 1)
			return errf(eb, ERR_INVALID, "version: expected a positive integer");
		*expected_version = json_integer_value(ver);
	}
	const json_t *name = json_object_get(body, "name");
	if (name && json_is_null(name))
		return errf(eb, ERR_INVALID, "name: cannot be null");
	const json_t *model = json_object_get(body, "model");
	if (model && json_is_null(model))
		return errf(eb, ERR_INVALID, "model: cannot be null");
	json_t *cfg = json_deep_copy(current);
	if (!cfg)
		return ERR_NOMEM;
	if ((rc = apply_fields(cfg, body, 0, changed, eb))) {
		json_decref(cfg);
		return rc;
	}
	*out = cfg;
	return ERR_OK;
}

const char *agent_model_id(const json_t *config)
{
	const char *id = json_string_value(json_object_get(json_object_get(config, "model"), "id"));
	return id ? id : "";
}

int agent_has_toolset_tool(const json_t *config, const char *name)
{
	if (!in_list(name, toolset_tools))
		return 0;
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(config, "tools"), i, t)
	{
		const char *type = json_string_value(json_object_get(t, "type"));
		if (!type || strcmp(type, "agent_toolset_20260401") != 0)
			continue;
		int enabled = json_is_true(json_object_get(json_object_get(t, "default_config"), "enabled"));
		size_t j;
		json_t *cfg;
		json_array_foreach(json_object_get(t, "configs"), j, cfg)
		{
			const char *n = json_string_value(json_object_get(cfg, "name"));
			if (n && strcmp(n, name) == 0)
				enabled = json_is_true(json_object_get(cfg, "enabled"));
		}
		return enabled;
	}
	return 0;
}

int agent_has_custom_tool(const json_t *config, const char *name)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(config, "tools"), i, t)
	{
		const char *type = json_string_value(json_object_get(t, "type"));
		const char *n = json_string_value(json_object_get(t, "name"));
		if (type && n && strcmp(type, "custom") == 0 && strcmp(n, name) == 0)
			return 1;
	}
	return 0;
}
