/* test_environment.c - unit tests of environment validation, defaults and merge rules
 * (src/model/environment.c, SPEC §2).
 *
 * Create: the defaults fill a complete config, and every validation error comes back as
 * the right error with a message that starts with the offending field's path. Update: each
 * merge rule of SPEC §2, the `changed` flag, and the promise that a refused update leaves
 * the stored fields exactly as they were. Bodies are written as JSON text; long strings
 * are built with str_rep(). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model/environment.h"
#include "repeat.h"

#define DEFAULT_PACKAGES \
	"{\"type\":\"packages\",\"apt\":[],\"cargo\":[],\"gem\":[],\"go\":[],\"npm\":[],\"pip\":[]}"
#define DEFAULT_CLOUD \
	"{\"type\":\"cloud\",\"networking\":{\"type\":\"unrestricted\"},\"packages\":" DEFAULT_PACKAGES "}"
#define DEFAULT_LIMITED \
	"{\"type\":\"limited\",\"allow_mcp_servers\":false,\"allow_package_managers\":false,\"allowed_hosts\":[]}"

static const char *const lists[] = {"apt", "cargo", "gem", "go", "npm", "pip"};
#define NLISTS (sizeof(lists) / sizeof(lists[0]))

/* ---- helpers ------------------------------------------------------------------------ */

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!v)
		fail_msg("test JSON does not parse (%s): %s", e.text, text);
	return v;
}

static char *dump(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* `got` must equal the JSON value `want_text`. */
static void check_json(int line, const json_t *got, const char *want_text)
{
	json_t *want = parse(want_text);
	int equal = json_equal(want, got);
	if (!equal) {
		char *g = dump(got), *w = dump(want);
		print_error("line %d:\n want %s\n  got %s\n", line, w, g ? g : "(null)");
		free(g);
		free(w);
	}
	json_decref(want);
	if (!equal)
		fail();
}
#define assert_json(got, want) check_json(__LINE__, got, want)

/* A JSON string of `unit` repeated n times. */
static json_t *str_rep(const char *unit, size_t n)
{
	char *s = repeat(unit, n);
	json_t *v = json_string(s);
	free(s);
	assert_non_null(v);
	return v;
}

/* An array of n distinct strings "<stem><i><suffix>". */
static json_t *numbered(const char *stem, const char *suffix, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		char s[64];
		snprintf(s, sizeof(s), "%s%zu%s", stem, i, suffix);
		json_array_append_new(a, json_string(s));
	}
	return a;
}

static void create_ok_json(int line, json_t *body, struct env_fields *out)
{
	struct errbuf eb = {{0}};
	enum err rc = env_parse_create(body, out, &eb);
	if (rc != ERR_OK) {
		char *b = dump(body);
		print_error("line %d: create refused (%d: %s): %s\n", line, rc, eb.message, b);
		free(b);
	}
	json_decref(body);
	assert_int_equal(ERR_OK, rc);
	assert_non_null(out->name);
	assert_true(json_is_object(out->config));
	assert_true(json_is_object(out->metadata));
}
#define create_ok(text, out) create_ok_json(__LINE__, parse(text), out)

/* The create must fail with `want`, a message that starts with `prefix` and contains
 * `reason`, and nothing left in `out`. Takes the body's reference. */
static void create_err_json(int line, json_t *body, enum err want, const char *prefix, const char *reason)
{
	struct env_fields out;
	struct errbuf eb;
	memset(&out, 0x5a, sizeof(out));
	memset(&eb, 0, sizeof(eb));
	enum err rc = env_parse_create(body, &out, &eb);
	int ok = rc == want && strncmp(eb.message, prefix, strlen(prefix)) == 0 && strstr(eb.message, reason);
	if (!ok) {
		char *b = dump(body);
		print_error("line %d: body %.300s\n want %d \"%s...%s...\"\n  got %d \"%s\"\n", line, b, want,
			    prefix, reason, rc, eb.message);
		free(b);
	}
	json_decref(body);
	if (rc == ERR_OK)
		env_fields_clear(&out);
	assert_true(ok);
	assert_null(out.name);
	assert_null(out.description);
	assert_null(out.config);
	assert_null(out.metadata);
	assert_int_equal(0, out.scope_account);
}
#define create_err(text, want, prefix, reason) create_err_json(__LINE__, parse(text), want, prefix, reason)
#define create_err_j(body, want, prefix, reason) create_err_json(__LINE__, body, want, prefix, reason)

/* {"name":"n","config":{"type":"cloud","networking":{"type":"limited","allowed_hosts":H}}} */
static json_t *hosts_body(json_t *hosts)
{
	return json_pack("{s:s,s:{s:s,s:{s:s,s:o}}}", "name", "n", "config", "type", "cloud", "networking", "type",
			 "limited", "allowed_hosts", hosts);
}

/* {"name":"n","config":{"type":"cloud","packages":{L: list}}} */
static json_t *packages_body(const char *l, json_t *list)
{
	return json_pack("{s:s,s:{s:s,s:{s:o}}}", "name", "n", "config", "type", "cloud", "packages", l, list);
}

static void assert_fields_equal(const struct env_fields *want, const struct env_fields *got)
{
	assert_string_equal(want->name, got->name);
	if (want->description)
		assert_string_equal(want->description, got->description);
	else
		assert_null(got->description);
	assert_true(json_equal(want->config, got->config));
	assert_true(json_equal(want->metadata, got->metadata));
	assert_int_equal(want->scope_account, got->scope_account);
}

/* Apply an update that must succeed with the given `changed`. */
static void update_ok_json(int line, struct env_fields *cur, json_t *body, int want_changed)
{
	struct errbuf eb = {{0}};
	int changed = 0x5a;
	enum err rc = env_apply_update(cur, body, &changed, &eb);
	if (rc != ERR_OK || changed != want_changed) {
		char *b = dump(body);
		print_error("line %d: update %s: rc %d (%s), changed %d (want %d)\n", line, b, rc, eb.message,
			    changed, want_changed);
		free(b);
	}
	json_decref(body);
	assert_int_equal(ERR_OK, rc);
	assert_int_equal(want_changed, changed);
}
#define update_ok(cur, text, want_changed) update_ok_json(__LINE__, cur, parse(text), want_changed)

/* Apply an update that must be refused; cur must come out exactly as it went in. */
static void update_err_json(int line, struct env_fields *cur, json_t *body, enum err want, const char *prefix,
			    const char *reason)
{
	struct env_fields before;
	assert_int_equal(ERR_OK, env_fields_copy(&before, cur));
	struct errbuf eb = {{0}};
	int changed = 0x5a;
	enum err rc = env_apply_update(cur, body, &changed, &eb);
	int ok = rc == want && strncmp(eb.message, prefix, strlen(prefix)) == 0 && strstr(eb.message, reason);
	if (!ok) {
		char *b = dump(body);
		print_error("line %d: update %.300s\n want %d \"%s...%s...\"\n  got %d \"%s\"\n", line, b, want,
			    prefix, reason, rc, eb.message);
		free(b);
	}
	json_decref(body);
	assert_true(ok);
	assert_int_equal(0, changed);
	assert_fields_equal(&before, cur);
	env_fields_clear(&before);
}
#define update_err(cur, text, want, prefix, reason) update_err_json(__LINE__, cur, parse(text), want, prefix, reason)

/* ---- create: defaults --------------------------------------------------------------- */

static void test_create_defaults(void **state)
{
	struct env_fields f;
	create_ok("{\"name\":\"my env\"}", &f);
	assert_string_equal("my env", f.name);
	assert_null(f.description);
	assert_int_equal(0, f.scope_account);
	assert_json(f.config, DEFAULT_CLOUD);
	assert_json(f.metadata, "{}");
	assert_int_equal(0, env_is_self_hosted(&f));
	env_fields_clear(&f);

	/* Explicit nulls are the same as omitted fields. */
	create_ok("{\"name\":\"n\",\"description\":null,\"config\":null,\"metadata\":null,\"scope\":null}", &f);
	assert_null(f.description);
	assert_int_equal(0, f.scope_account);
	assert_json(f.config, DEFAULT_CLOUD);
	assert_json(f.metadata, "{}");
	env_fields_clear(&f);

	/* A cloud config with nothing in it is the default one; so are null members. */
	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\"}}", &f);
	assert_json(f.config, DEFAULT_CLOUD);
	env_fields_clear(&f);
	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":null,\"packages\":null}}", &f);
	assert_json(f.config, DEFAULT_CLOUD);
	env_fields_clear(&f);
	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"unrestricted\"},"
		  "\"packages\":{\"type\":\"packages\"}}}",
		  &f);
	assert_json(f.config, DEFAULT_CLOUD);
	env_fields_clear(&f);
}

static void test_create_everything(void **state)
{
	struct env_fields f;
	create_ok("{\"name\":\"full\",\"description\":\"d\",\"scope\":\"account\",\"metadata\":{\"a\":\"1\",\"b\":\"\"},"
		  "\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_mcp_servers\":true,"
		  "\"allow_package_managers\":true,\"allowed_hosts\":[\"example.com\",\"*.example.org\"]},"
		  "\"packages\":{\"type\":\"packages\",\"apt\":[\"curl\"],\"pip\":[\"requests==2.31\",\"numpy\"]}}}",
		  &f);
	assert_string_equal("full", f.name);
	assert_string_equal("d", f.description);
	assert_int_equal(1, f.scope_account);
	assert_json(f.metadata, "{\"a\":\"1\",\"b\":\"\"}");
	assert_json(f.config, "{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_mcp_servers\":true,"
			      "\"allow_package_managers\":true,\"allowed_hosts\":[\"example.com\",\"*.example.org\"]},"
			      "\"packages\":{\"type\":\"packages\",\"apt\":[\"curl\"],\"cargo\":[],\"gem\":[],\"go\":[],"
			      "\"npm\":[],\"pip\":[\"requests==2.31\",\"numpy\"]}}");
	env_fields_clear(&f);

	create_ok("{\"name\":\"n\",\"scope\":\"organization\",\"description\":\"\"}", &f);
	assert_int_equal(0, f.scope_account);
	assert_string_equal("", f.description);
	env_fields_clear(&f);
}

static void test_create_self_hosted(void **state)
{
	struct env_fields f;
	create_ok("{\"name\":\"sh\",\"config\":{\"type\":\"self_hosted\"}}", &f);
	assert_json(f.config, "{\"type\":\"self_hosted\"}");
	assert_int_equal(1, env_is_self_hosted(&f));
	env_fields_clear(&f);
}

static void test_create_limited_defaults(void **state)
{
	struct env_fields f;
	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\"}}}", &f);
	assert_json(f.config, "{\"type\":\"cloud\",\"networking\":" DEFAULT_LIMITED ",\"packages\":" DEFAULT_PACKAGES "}");
	env_fields_clear(&f);

	/* One flag given: the others keep their defaults. */
	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\","
		  "\"allow_mcp_servers\":true,\"allow_package_managers\":null,\"allowed_hosts\":null}}}",
		  &f);
	assert_json(json_object_get(f.config, "networking"),
		    "{\"type\":\"limited\",\"allow_mcp_servers\":true,\"allow_package_managers\":false,"
		    "\"allowed_hosts\":[]}");
	env_fields_clear(&f);

	/* Packages given on their own get the other lists filled in. */
	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"packages\":{\"go\":[\"x\"]}}}", &f);
	assert_json(json_object_get(f.config, "packages"),
		    "{\"type\":\"packages\",\"apt\":[],\"cargo\":[],\"gem\":[],\"go\":[\"x\"],\"npm\":[],\"pip\":[]}");
	assert_json(json_object_get(f.config, "networking"), "{\"type\":\"unrestricted\"}");
	env_fields_clear(&f);
}

/* ---- create: name and description --------------------------------------------------- */

static void test_create_name(void **state)
{
	struct env_fields f;
	create_err("{}", ERR_INVALID, "name: ", "required");
	create_err("{\"name\":null}", ERR_INVALID, "name: ", "required");
	create_err("{\"description\":\"x\"}", ERR_INVALID, "name: ", "required");
	create_err("{\"name\":\"\"}", ERR_INVALID, "name: ", "empty");
	create_err("{\"name\":5}", ERR_INVALID, "name: ", "expected a string, got integer");
	create_err("{\"name\":[\"a\"]}", ERR_INVALID, "name: ", "got array");
	create_err("{\"name\":true}", ERR_INVALID, "name: ", "got boolean");
	create_err("{\"name\":\"a\\u0000b\"}", ERR_INVALID, "name: ", "NUL");

	/* 256 characters are fine and 257 are not, counted in characters, not bytes. */
	const char *units[] = {"a", "\xc3\xa9" /* é */, "\xe2\x82\xac" /* € */, "\xf0\x9f\x98\x80" /* 😀 */};
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		create_ok_json(__LINE__, json_pack("{s:o}", "name", str_rep(units[u], 256)), &f);
		assert_int_equal(256 * strlen(units[u]), strlen(f.name));
		env_fields_clear(&f);
		create_err_j(json_pack("{s:o}", "name", str_rep(units[u], 257)), ERR_INVALID, "name: ",
			     "is 257 characters long, at most 256");
	}
	create_ok("{\"name\":\"x\"}", &f);
	assert_string_equal("x", f.name);
	env_fields_clear(&f);
}

static void test_create_description(void **state)
{
	struct env_fields f;
	create_ok_json(__LINE__, json_pack("{s:s,s:o}", "name", "n", "description", str_rep("d", 2048)), &f);
	assert_int_equal(2048, strlen(f.description));
	env_fields_clear(&f);
	create_ok_json(__LINE__, json_pack("{s:s,s:o}", "name", "n", "description", str_rep("\xe2\x82\xac", 2048)),
		       &f);
	assert_int_equal(3 * 2048, strlen(f.description));
	env_fields_clear(&f);
	create_err_j(json_pack("{s:s,s:o}", "name", "n", "description", str_rep("d", 2049)), ERR_INVALID,
		     "description: ", "is 2049 characters long, at most 2048");
	create_err_j(json_pack("{s:s,s:o}", "name", "n", "description", str_rep("\xe2\x82\xac", 2049)), ERR_INVALID,
		     "description: ", "2049");
	create_err("{\"name\":\"n\",\"description\":\"a\\u0000\"}", ERR_INVALID, "description: ", "NUL");
	create_err("{\"name\":\"n\",\"description\":7}", ERR_INVALID, "description: ", "got integer");
	create_err("{\"name\":\"n\",\"description\":{}}", ERR_INVALID, "description: ", "got object");
}

/* ---- create: types and unknown fields ----------------------------------------------- */

static void test_create_wrong_types(void **state)
{
	create_err("[]", ERR_INVALID, "body: ", "expected a JSON object, got array");
	create_err("\"x\"", ERR_INVALID, "body: ", "got string");
	create_err("{\"name\":\"n\",\"scope\":\"team\"}", ERR_INVALID, "scope: ", "\"team\"");
	create_err("{\"name\":\"n\",\"scope\":1}", ERR_INVALID, "scope: ", "got integer");
	create_err("{\"name\":\"n\",\"metadata\":[]}", ERR_INVALID_METADATA, "metadata: ", "object");
	create_err("{\"name\":\"n\",\"metadata\":\"x\"}", ERR_INVALID_METADATA, "metadata: ", "object");
	create_err("{\"name\":\"n\",\"metadata\":{\"k\":1}}", ERR_INVALID_METADATA, "metadata: ",
		   "value of key \"k\" must be a string");

	create_err("{\"name\":\"n\",\"config\":\"cloud\"}", ERR_INVALID, "config: ", "expected an object, got string");
	create_err("{\"name\":\"n\",\"config\":{}}", ERR_INVALID, "config.type: ", "required");
	create_err("{\"name\":\"n\",\"config\":{\"type\":null}}", ERR_INVALID, "config.type: ", "required");
	create_err("{\"name\":\"n\",\"config\":{\"type\":1}}", ERR_INVALID, "config.type: ", "required");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"docker\"}}", ERR_INVALID, "config.type: ", "\"docker\"");

	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":\"limited\"}}", ERR_INVALID,
		   "config.networking: ", "expected an object, got string");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{}}}", ERR_INVALID,
		   "config.networking.type: ", "required");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"open\"}}}", ERR_INVALID,
		   "config.networking.type: ", "\"open\"");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\","
		   "\"allow_mcp_servers\":\"yes\"}}}",
		   ERR_INVALID, "config.networking.allow_mcp_servers: ", "expected a boolean, got string");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\","
		   "\"allow_package_managers\":1}}}",
		   ERR_INVALID, "config.networking.allow_package_managers: ", "expected a boolean, got integer");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\","
		   "\"allowed_hosts\":\"example.com\"}}}",
		   ERR_INVALID, "config.networking.allowed_hosts: ", "got string");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\","
		   "\"allowed_hosts\":[\"a.com\",1]}}}",
		   ERR_INVALID, "config.networking.allowed_hosts[1]: ", "expected a string, got integer");

	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"packages\":[]}}", ERR_INVALID,
		   "config.packages: ", "expected an object, got array");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"packages\":{\"type\":\"pkgs\"}}}", ERR_INVALID,
		   "config.packages.type: ", "\"packages\"");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"packages\":{\"type\":3}}}", ERR_INVALID,
		   "config.packages.type: ", "\"packages\"");
	for (size_t i = 0; i < NLISTS; i++) {
		char prefix[64];
		snprintf(prefix, sizeof(prefix), "config.packages.%s: ", lists[i]);
		create_err_j(packages_body(lists[i], json_string("x")), ERR_INVALID, prefix, "got string");
		create_err_j(packages_body(lists[i], json_object()), ERR_INVALID, prefix, "got object");
		snprintf(prefix, sizeof(prefix), "config.packages.%s[1]: ", lists[i]);
		create_err_j(packages_body(lists[i], json_pack("[s,n]", "a")), ERR_INVALID, prefix,
			     "expected a string, got null");
	}
}

static void test_create_unknown_fields(void **state)
{
	create_err("{\"name\":\"n\",\"foo\":1}", ERR_INVALID, "foo: ", "unknown field");
	create_err("{\"name\":\"n\",\"Name\":\"x\"}", ERR_INVALID, "Name: ", "unknown field");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"foo\":1}}", ERR_INVALID, "config.foo: ",
		   "unknown field");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"self_hosted\",\"networking\":{\"type\":\"unrestricted\"}}}",
		   ERR_INVALID, "config.networking: ", "unknown field");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"foo\":1}}}",
		   ERR_INVALID, "config.networking.foo: ", "unknown field");
	/* Limited's members are unknown under unrestricted. */
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"unrestricted\","
		   "\"allowed_hosts\":[]}}}",
		   ERR_INVALID, "config.networking.allowed_hosts: ", "unknown field");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"unrestricted\",\"foo\":1}}}",
		   ERR_INVALID, "config.networking.foo: ", "unknown field");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"packages\":{\"foo\":[]}}}", ERR_INVALID,
		   "config.packages.foo: ", "unknown field");
	create_err("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"packages\":{\"brew\":[\"x\"]}}}", ERR_INVALID,
		   "config.packages.brew: ", "unknown field");
}

/* ---- create: allowed_hosts ---------------------------------------------------------- */

static void test_create_allowed_hosts_valid(void **state)
{
	struct env_fields f;
	char h253[254];
	memset(h253, 'a', 253);
	h253[63] = h253[127] = h253[191] = '.';
	h253[253] = '\0';
	json_t *want = json_pack("[s,s,s,s,s,s]", "example.com", "*.example.com", "localhost", "a-b.c_d.io",
				 "API.Example.COM", h253);
	create_ok_json(__LINE__, hosts_body(json_deep_copy(want)), &f);
	assert_true(json_equal(want, json_object_get(json_object_get(f.config, "networking"), "allowed_hosts")));
	json_decref(want);
	env_fields_clear(&f);

	/* 256 entries are fine; an empty list is too. */
	create_ok_json(__LINE__, hosts_body(numbered("h", ".example.com", 256)), &f);
	assert_int_equal(256, json_array_size(json_object_get(json_object_get(f.config, "networking"), "allowed_hosts")));
	env_fields_clear(&f);
	create_ok_json(__LINE__, hosts_body(json_array()), &f);
	env_fields_clear(&f);
}

static void test_create_allowed_hosts_invalid(void **state)
{
	const char *prefix0 = "config.networking.allowed_hosts[0]: ";
	const char *prefix1 = "config.networking.allowed_hosts[1]: ";
	create_err_j(hosts_body(json_pack("[s,s]", "ok.com", "https://example.com")), ERR_INVALID, prefix1, "scheme");
	create_err_j(hosts_body(json_pack("[s]", "http://example.com")), ERR_INVALID, prefix0, "scheme");
	create_err_j(hosts_body(json_pack("[s,s]", "ok.com", "example.com/path")), ERR_INVALID, prefix1, "path");
	create_err_j(hosts_body(json_pack("[s]", "example.com/")), ERR_INVALID, prefix0, "path");
	create_err_j(hosts_body(json_pack("[s,s]", "ok.com", "example.com:443")), ERR_INVALID, prefix1, "port");
	create_err_j(hosts_body(json_pack("[s]", "")), ERR_INVALID, prefix0, "empty");
	create_err_j(hosts_body(json_pack("[s#]", "a.com\0b", (int)7)), ERR_INVALID, prefix0, "NUL");
	create_err_j(hosts_body(json_pack("[s]", "*")), ERR_INVALID, prefix0, "not a valid host name");
	create_err_j(hosts_body(json_pack("[s]", "*.")), ERR_INVALID, prefix0, "not a valid host name");
	create_err_j(hosts_body(json_pack("[s]", "a.*.com")), ERR_INVALID, prefix0, "not a valid host name");
	create_err_j(hosts_body(json_pack("[s]", "exa mple.com")), ERR_INVALID, prefix0, "not a valid host name");
	create_err_j(hosts_body(json_pack("[s]", "a..b")), ERR_INVALID, prefix0, "empty label");
	create_err_j(hosts_body(json_pack("[s]", ".example.com")), ERR_INVALID, prefix0, "empty label");
	create_err_j(hosts_body(json_pack("[s]", "ex\xc3\xa4mple.com")), ERR_INVALID, prefix0, "not a valid host name");

	char h254[255];
	memset(h254, 'a', 254);
	h254[63] = h254[127] = h254[191] = '.';
	h254[254] = '\0';
	create_err_j(hosts_body(json_pack("[s,s]", "ok.com", h254)), ERR_INVALID, prefix1,
		     "longer than 253 characters");
	char label64[70];
	memset(label64, 'x', 64);
	memcpy(label64 + 64, ".com", 5);
	create_err_j(hosts_body(json_pack("[s]", label64)), ERR_INVALID, prefix0, "label longer than 63");

	create_err_j(hosts_body(numbered("h", ".example.com", 257)), ERR_INVALID, "config.networking.allowed_hosts: ",
		     "has 257 entries, at most 256");
}

/* ---- create: package lists ---------------------------------------------------------- */

static void test_create_package_lists(void **state)
{
	for (size_t i = 0; i < NLISTS; i++) {
		struct env_fields f;
		char path[64], prefix[96];
		snprintf(path, sizeof(path), "config.packages.%s", lists[i]);

		create_ok_json(__LINE__, packages_body(lists[i], numbered("pkg", "", 256)), &f);
		assert_int_equal(256, json_array_size(json_object_get(json_object_get(f.config, "packages"), lists[i])));
		for (size_t j = 0; j < NLISTS; j++)
			if (j != i)
				assert_int_equal(0, json_array_size(json_object_get(
							    json_object_get(f.config, "packages"), lists[j])));
		env_fields_clear(&f);

		json_t *long_ok = json_array();
		json_array_append_new(long_ok, str_rep("p", 256));
		json_array_append_new(long_ok, str_rep("\xf0\x9f\x98\x80", 256));
		create_ok_json(__LINE__, packages_body(lists[i], long_ok), &f);
		env_fields_clear(&f);

		snprintf(prefix, sizeof(prefix), "%s: ", path);
		create_err_j(packages_body(lists[i], numbered("pkg", "", 257)), ERR_INVALID, prefix,
			     "has 257 entries, at most 256");
		snprintf(prefix, sizeof(prefix), "%s[0]: ", path);
		create_err_j(packages_body(lists[i], json_pack("[s]", "")), ERR_INVALID, prefix, "1 to 256 characters");
		create_err_j(packages_body(lists[i], json_pack("[s#]", "a\0b", (int)3)), ERR_INVALID, prefix, "NUL");
		snprintf(prefix, sizeof(prefix), "%s[1]: ", path);
		create_err_j(packages_body(lists[i], json_pack("[s,o]", "ok", str_rep("p", 257))), ERR_INVALID, prefix,
			     "1 to 256 characters");
		create_err_j(packages_body(lists[i], json_pack("[s,o]", "ok", str_rep("\xc3\xa9", 257))), ERR_INVALID,
			     prefix, "1 to 256 characters");
	}
}

static void test_create_packages_need_managers(void **state)
{
	struct env_fields f;
	for (size_t i = 0; i < NLISTS; i++) {
		char prefix[64];
		snprintf(prefix, sizeof(prefix), "config.packages.%s: ", lists[i]);
		/* allow_package_managers omitted, or false. */
		create_err_j(json_pack("{s:s,s:{s:s,s:{s:s},s:{s:[s]}}}", "name", "n", "config", "type", "cloud",
				       "networking", "type", "limited", "packages", lists[i], "x"),
			     ERR_INVALID, prefix, "allow_package_managers");
		create_err_j(json_pack("{s:s,s:{s:s,s:{s:s,s:b},s:{s:[s]}}}", "name", "n", "config", "type", "cloud",
				       "networking", "type", "limited", "allow_package_managers", 0, "packages",
				       lists[i], "x"),
			     ERR_INVALID, prefix, "allow_package_managers");
		/* true allows them. */
		create_ok_json(__LINE__,
			       json_pack("{s:s,s:{s:s,s:{s:s,s:b},s:{s:[s]}}}", "name", "n", "config", "type", "cloud",
					 "networking", "type", "limited", "allow_package_managers", 1, "packages",
					 lists[i], "x"),
			       &f);
		env_fields_clear(&f);
	}
	/* Empty lists are no packages. */
	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\"},"
		  "\"packages\":{\"apt\":[],\"pip\":[]}}}",
		  &f);
	env_fields_clear(&f);
	/* Unrestricted needs no flag. */
	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"packages\":{\"apt\":[\"x\"]}}}", &f);
	env_fields_clear(&f);
}

static void test_create_metadata(void **state)
{
	struct env_fields f;
	create_ok("{\"name\":\"n\",\"metadata\":{\"team\":\"infra\",\"empty\":\"\"}}", &f);
	assert_json(f.metadata, "{\"team\":\"infra\",\"empty\":\"\"}");
	env_fields_clear(&f);
	json_t *meta = json_object();
	for (int i = 0; i < 17; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		json_object_set_new(meta, k, json_string("v"));
	}
	create_err_j(json_pack("{s:s,s:o}", "name", "n", "metadata", meta), ERR_INVALID_METADATA, "metadata: ",
		     "17 keys");
}

/* ---- update ------------------------------------------------------------------------- */

#define LIMITED_BODY                                                                                        \
	"{\"name\":\"base\",\"description\":\"desc\",\"metadata\":{\"a\":\"1\",\"b\":\"2\"},"                \
	"\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_mcp_servers\":true,"   \
	"\"allow_package_managers\":true,\"allowed_hosts\":[\"a.com\",\"b.com\"]},"                          \
	"\"packages\":{\"apt\":[\"curl\"],\"npm\":[\"left-pad\"]}}}"
#define LIMITED_CONFIG                                                                                      \
	"{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_mcp_servers\":true,"               \
	"\"allow_package_managers\":true,\"allowed_hosts\":[\"a.com\",\"b.com\"]},"                          \
	"\"packages\":{\"type\":\"packages\",\"apt\":[\"curl\"],\"cargo\":[],\"gem\":[],\"go\":[],"           \
	"\"npm\":[\"left-pad\"],\"pip\":[]}}"

static void test_update_nothing(void **state)
{
	struct env_fields f, before;
	create_ok(LIMITED_BODY, &f);
	assert_json(f.config, LIMITED_CONFIG);
	assert_int_equal(ERR_OK, env_fields_copy(&before, &f));

	update_ok(&f, "{}", 0);
	update_ok(&f, "{\"name\":null,\"config\":null,\"metadata\":null,\"scope\":null}", 0);
	update_ok(&f, "{\"name\":\"base\",\"description\":\"desc\",\"scope\":\"organization\"}", 0);
	update_ok(&f, "{\"metadata\":{}}", 0);
	update_ok(&f, "{\"metadata\":{\"a\":\"1\",\"zz\":null,\"yy\":\"\"}}", 0);
	update_ok(&f, "{\"config\":{\"type\":\"cloud\"}}", 0);
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\"},\"packages\":{}}}", 0);
	update_ok(&f, "{\"config\":" LIMITED_CONFIG "}", 0);
	assert_fields_equal(&before, &f);
	env_fields_clear(&before);
	env_fields_clear(&f);
}

static void test_update_name_and_description(void **state)
{
	struct env_fields f;
	create_ok(LIMITED_BODY, &f);
	update_ok(&f, "{\"name\":\"renamed\"}", 1);
	assert_string_equal("renamed", f.name);
	assert_string_equal("desc", f.description);

	/* Omitted description keeps; a string replaces; null clears. */
	update_ok(&f, "{\"name\":\"renamed\"}", 0);
	assert_string_equal("desc", f.description);
	update_ok(&f, "{\"description\":\"new\"}", 1);
	assert_string_equal("new", f.description);
	update_ok(&f, "{\"description\":null}", 1);
	assert_null(f.description);
	update_ok(&f, "{\"description\":null}", 0);
	assert_null(f.description);
	update_ok(&f, "{\"description\":\"\"}", 1);
	assert_string_equal("", f.description);

	update_ok(&f, "{\"scope\":\"account\"}", 1);
	assert_int_equal(1, f.scope_account);

	update_err(&f, "{\"name\":\"\"}", ERR_INVALID, "name: ", "empty");
	update_err(&f, "{\"name\":1}", ERR_INVALID, "name: ", "got integer");
	update_err_json(__LINE__, &f, json_pack("{s:o}", "name", str_rep("n", 257)), ERR_INVALID, "name: ", "257");
	update_err_json(__LINE__, &f, json_pack("{s:o}", "description", str_rep("d", 2049)), ERR_INVALID,
			"description: ", "2049");
	update_err(&f, "{\"description\":false}", ERR_INVALID, "description: ", "got boolean");
	update_err(&f, "{\"scope\":\"world\"}", ERR_INVALID, "scope: ", "\"world\"");
	env_fields_clear(&f);
}

static void test_update_metadata(void **state)
{
	struct env_fields f;
	create_ok(LIMITED_BODY, &f);
	update_ok(&f, "{\"metadata\":{\"a\":\"one\",\"b\":null,\"c\":\"3\"}}", 1);
	assert_json(f.metadata, "{\"a\":\"one\",\"c\":\"3\"}");
	update_ok(&f, "{\"metadata\":{\"a\":\"\"}}", 1);
	assert_json(f.metadata, "{\"c\":\"3\"}");
	update_ok(&f, "{\"metadata\":{\"a\":\"\",\"b\":null}}", 0);
	update_ok(&f, "{\"metadata\":{\"c\":\"3\"}}", 0);
	assert_json(f.metadata, "{\"c\":\"3\"}");

	/* The result is validated as a whole: 16 keys are fine, a 17th is not. */
	json_t *patch = json_object();
	for (int i = 0; i < 15; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		json_object_set_new(patch, k, json_string("v"));
	}
	update_ok_json(__LINE__, &f, json_pack("{s:O}", "metadata", patch), 1);
	assert_int_equal(16, json_object_size(f.metadata));
	update_err(&f, "{\"metadata\":{\"one_more\":\"v\"}}", ERR_INVALID_METADATA, "metadata: ", "17 keys");
	/* Deleting one while adding one stays at 16. */
	update_ok(&f, "{\"metadata\":{\"c\":null,\"one_more\":\"v\"}}", 1);
	assert_int_equal(16, json_object_size(f.metadata));
	assert_null(json_object_get(f.metadata, "c"));
	json_decref(patch);

	update_err(&f, "{\"metadata\":{\"x\":5}}", ERR_INVALID_METADATA, "metadata: ", "\"x\"");
	update_err(&f, "{\"metadata\":[]}", ERR_INVALID_METADATA, "metadata: ", "object");
	update_err_json(__LINE__, &f, json_pack("{s:{s:o}}", "metadata", "k0", str_rep("v", 513)), ERR_INVALID_METADATA,
			"metadata: ", "512");
	env_fields_clear(&f);
}

static void test_update_config_keeps_omitted(void **state)
{
	struct env_fields f;
	create_ok(LIMITED_BODY, &f);

	/* One list replaced; the other lists and the networking are kept. */
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"packages\":{\"npm\":[\"a\",\"b\"]}}}", 1);
	assert_json(f.config, "{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_mcp_servers\":true,"
			      "\"allow_package_managers\":true,\"allowed_hosts\":[\"a.com\",\"b.com\"]},"
			      "\"packages\":{\"type\":\"packages\",\"apt\":[\"curl\"],\"cargo\":[],\"gem\":[],\"go\":[],"
			      "\"npm\":[\"a\",\"b\"],\"pip\":[]}}");
	/* Null lists keep; an empty list empties. */
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"packages\":{\"type\":\"packages\",\"npm\":null,\"apt\":[]}}}",
		  1);
	assert_json(json_object_get(f.config, "packages"),
		    "{\"type\":\"packages\",\"apt\":[],\"cargo\":[],\"gem\":[],\"go\":[],\"npm\":[\"a\",\"b\"],\"pip\":[]}");
	assert_json(json_object_get(json_object_get(f.config, "networking"), "allowed_hosts"), "[\"a.com\",\"b.com\"]");
	env_fields_clear(&f);
}

static void test_update_limited_to_limited(void **state)
{
	struct env_fields f;
	create_ok(LIMITED_BODY, &f);
	/* Only the flag that is given changes. */
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_mcp_servers\":false}}}",
		  1);
	assert_json(json_object_get(f.config, "networking"),
		    "{\"type\":\"limited\",\"allow_mcp_servers\":false,\"allow_package_managers\":true,"
		    "\"allowed_hosts\":[\"a.com\",\"b.com\"]}");
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allowed_hosts\":[\"c.com\"]}}}",
		  1);
	assert_json(json_object_get(f.config, "networking"),
		    "{\"type\":\"limited\",\"allow_mcp_servers\":false,\"allow_package_managers\":true,"
		    "\"allowed_hosts\":[\"c.com\"]}");
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allowed_hosts\":[\"c.com\"],"
		      "\"allow_mcp_servers\":null}}}",
		  0);
	/* Packages are still there, so the managers cannot be switched off. */
	update_err(&f,
		   "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_package_managers\":false}}}",
		   ERR_INVALID, "config.packages.apt: ", "allow_package_managers");
	/* ... unless the packages go in the same update. */
	update_ok(&f,
		  "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_package_managers\":false},"
		  "\"packages\":{\"apt\":[],\"npm\":[]}}}",
		  1);
	assert_json(f.config, "{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_mcp_servers\":false,"
			      "\"allow_package_managers\":false,\"allowed_hosts\":[\"c.com\"]},\"packages\":" DEFAULT_PACKAGES
			      "}");
	/* Adding packages now is refused. */
	update_err(&f, "{\"config\":{\"type\":\"cloud\",\"packages\":{\"pip\":[\"x\"]}}}", ERR_INVALID,
		   "config.packages.pip: ", "allow_package_managers");
	env_fields_clear(&f);
}

static void test_update_networking_type_switch(void **state)
{
	struct env_fields f;
	create_ok(LIMITED_BODY, &f);
	/* limited → unrestricted drops the limited members. */
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"unrestricted\"}}}", 1);
	assert_json(json_object_get(f.config, "networking"), "{\"type\":\"unrestricted\"}");
	/* unrestricted → limited starts from the defaults, not from the old limited values. */
	update_ok(&f,
		  "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_package_managers\":true,"
		  "\"allowed_hosts\":[\"x.io\"]}}}",
		  1);
	assert_json(json_object_get(f.config, "networking"),
		    "{\"type\":\"limited\",\"allow_mcp_servers\":false,\"allow_package_managers\":true,"
		    "\"allowed_hosts\":[\"x.io\"]}");
	env_fields_clear(&f);

	create_ok("{\"name\":\"n\",\"config\":{\"type\":\"cloud\",\"packages\":{\"gem\":[\"rails\"]}}}", &f);
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"unrestricted\"}}}", 0);
	/* Going limited with packages needs the managers. */
	update_err(&f, "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\"}}}", ERR_INVALID,
		   "config.packages.gem: ", "allow_package_managers");
	update_ok(&f, "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\"}, \"packages\":{\"gem\":[]}}}", 1);
	assert_json(f.config, "{\"type\":\"cloud\",\"networking\":" DEFAULT_LIMITED ",\"packages\":" DEFAULT_PACKAGES "}");
	env_fields_clear(&f);
}

static void test_update_type_change(void **state)
{
	struct env_fields f;
	create_ok(LIMITED_BODY, &f);
	update_err(&f, "{\"config\":{\"type\":\"self_hosted\"}}", ERR_CONFIG_TYPE_CHANGE, "config.type: ",
		   "\"cloud\" to \"self_hosted\"");
	env_fields_clear(&f);

	create_ok("{\"name\":\"sh\",\"config\":{\"type\":\"self_hosted\"}}", &f);
	update_ok(&f, "{\"config\":{\"type\":\"self_hosted\"}}", 0);
	update_err(&f, "{\"config\":{\"type\":\"cloud\"}}", ERR_CONFIG_TYPE_CHANGE, "config.type: ",
		   "\"self_hosted\" to \"cloud\"");
	update_err(&f, "{\"name\":\"other\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\"}}}",
		   ERR_CONFIG_TYPE_CHANGE, "config.type: ", "cannot change");
	/* Cloud members are unknown fields of a self_hosted config. */
	update_err(&f, "{\"config\":{\"type\":\"self_hosted\",\"packages\":{}}}", ERR_INVALID, "config.packages: ",
		   "unknown field");
	assert_json(f.config, "{\"type\":\"self_hosted\"}");
	assert_string_equal("sh", f.name);
	env_fields_clear(&f);
}

/* A refused update changes nothing, even when earlier fields of the body were valid. */
static void test_update_error_keeps_everything(void **state)
{
	struct env_fields f;
	create_ok(LIMITED_BODY, &f);
	update_err(&f, "[]", ERR_INVALID, "body: ", "got array");
	update_err(&f, "{\"foo\":1}", ERR_INVALID, "foo: ", "unknown field");
	update_err(&f, "{\"name\":\"new\",\"description\":null,\"metadata\":{\"a\":5}}", ERR_INVALID_METADATA,
		   "metadata: ", "\"a\"");
	update_err(&f, "{\"name\":\"new\",\"metadata\":{\"z\":\"1\"},\"config\":{\"type\":\"cloud\",\"foo\":1}}",
		   ERR_INVALID, "config.foo: ", "unknown field");
	update_err(&f,
		   "{\"description\":\"x\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"foo\":1}}}",
		   ERR_INVALID, "config.networking.foo: ", "unknown field");
	update_err(&f, "{\"config\":{\"type\":\"cloud\",\"packages\":{\"npm\":[\"ok\"],\"foo\":[]}}}", ERR_INVALID,
		   "config.packages.foo: ", "unknown field");
	update_err(&f,
		   "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"unrestricted\"},\"packages\":{\"pip\":[\"\"]}}}",
		   ERR_INVALID, "config.packages.pip[0]: ", "1 to 256");
	update_err(&f,
		   "{\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\",\"allow_mcp_servers\":false,"
		   "\"allowed_hosts\":[\"ok.com\",\"bad.com:80\"]}}}",
		   ERR_INVALID, "config.networking.allowed_hosts[1]: ", "port");
	update_err(&f, "{\"config\":{\"networking\":{\"type\":\"unrestricted\"}}}", ERR_INVALID, "config.type: ",
		   "required");
	assert_string_equal("base", f.name);
	assert_string_equal("desc", f.description);
	assert_json(f.config, LIMITED_CONFIG);
	assert_json(f.metadata, "{\"a\":\"1\",\"b\":\"2\"}");
	env_fields_clear(&f);
}

static void test_fields_copy(void **state)
{
	struct env_fields f, copy;
	create_ok(LIMITED_BODY, &f);
	assert_int_equal(ERR_OK, env_fields_copy(&copy, &f));
	assert_fields_equal(&f, &copy);
	/* Deep: changing the copy leaves the original alone. */
	assert_ptr_not_equal(f.config, copy.config);
	json_object_set_new(json_object_get(copy.config, "packages"), "apt", json_array());
	json_object_set_new(copy.metadata, "x", json_string("y"));
	assert_json(f.config, LIMITED_CONFIG);
	assert_json(f.metadata, "{\"a\":\"1\",\"b\":\"2\"}");
	env_fields_clear(&copy);
	assert_null(copy.name);
	assert_null(copy.config);
	env_fields_clear(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_defaults),
		cmocka_unit_test(test_create_everything),
		cmocka_unit_test(test_create_self_hosted),
		cmocka_unit_test(test_create_limited_defaults),
		cmocka_unit_test(test_create_name),
		cmocka_unit_test(test_create_description),
		cmocka_unit_test(test_create_wrong_types),
		cmocka_unit_test(test_create_unknown_fields),
		cmocka_unit_test(test_create_allowed_hosts_valid),
		cmocka_unit_test(test_create_allowed_hosts_invalid),
		cmocka_unit_test(test_create_package_lists),
		cmocka_unit_test(test_create_packages_need_managers),
		cmocka_unit_test(test_create_metadata),
		cmocka_unit_test(test_update_nothing),
		cmocka_unit_test(test_update_name_and_description),
		cmocka_unit_test(test_update_metadata),
		cmocka_unit_test(test_update_config_keeps_omitted),
		cmocka_unit_test(test_update_limited_to_limited),
		cmocka_unit_test(test_update_networking_type_switch),
		cmocka_unit_test(test_update_type_change),
		cmocka_unit_test(test_update_error_keeps_everything),
		cmocka_unit_test(test_fields_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
