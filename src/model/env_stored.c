/* env_stored.c - checks of an environment's fields as read back from storage. */
#include "model/env_stored.h"

#include <string.h>

/* 1 when v is an array whose items are all strings. */
static int string_array(const json_t *v)
{
	if (!json_is_array(v))
		return 0;
	size_t i;
	const json_t *item;
	json_array_foreach(v, i, item) {
		if (!json_is_string(item))
			return 0;
	}
	return 1;
}

/* 1 when obj's value at key is a string equal to want. */
static int has_string(const json_t *obj, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v && strcmp(v, want) == 0;
}

static const char *networking_problem(const json_t *net)
{
	if (!json_is_object(net))
		return "config.networking is not an object";
	if (has_string(net, "type", "unrestricted"))
		return NULL;
	if (!has_string(net, "type", "limited"))
		return "config.networking.type is unknown";
	if (!json_is_boolean(json_object_get(net, "allow_mcp_servers")) ||
	    !json_is_boolean(json_object_get(net, "allow_package_managers")))
		return "config.networking flags are not booleans";
	if (!string_array(json_object_get(net, "allowed_hosts")))
		return "config.networking.allowed_hosts is not an array of strings";
	return NULL;
}

static const char *packages_problem(const json_t *pkg)
{
	static const char *const lists[] = {"apt", "cargo", "gem", "go", "npm", "pip", NULL};
	if (!json_is_object(pkg))
		return "config.packages is not an object";
	if (!has_string(pkg, "type", "packages"))
		return "config.packages.type is not \"packages\"";
	for (size_t i = 0; lists[i]; i++) {
		if (!string_array(json_object_get(pkg, lists[i])))
			return "config.packages has a list that is not an array of strings";
	}
	return NULL;
}

const char *env_stored_config_problem(const json_t *config)
{
	if (!json_is_object(config))
		return "config is not an object";
	if (has_string(config, "type", "self_hosted"))
		return NULL;
	if (!has_string(config, "type", "cloud"))
		return "config.type is unknown";
	const char *why = networking_problem(json_object_get(config, "networking"));
	return why ? why : packages_problem(json_object_get(config, "packages"));
}

const char *env_stored_metadata_problem(const json_t *metadata)
{
	if (!json_is_object(metadata))
		return "metadata is not an object";
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)metadata, key, v) {
		if (!json_is_string(v))
			return "metadata has a value that is not a string";
	}
	return NULL;
}
