/* test_store_env_decode.c - environment rows the SQLite store cannot serve are errors,
 * never crashes.
 *
 * An environment row whose config does not parse, is not an object or is not a complete
 * config of a known type, whose metadata is not an object of strings, or whose name or
 * scope is not what the server writes (a damaged file, a hand edit, a newer schema) makes
 * every verb that reads it fail with ERR_INTERNAL (a 500), leaves the output zeroed and
 * logs environment_row_invalid with the row's id. Other rows stay readable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "model/environment.h"
#include "store/store.h"
#include "store/sqlite_fixture.h"

#define S(s) ((int64_t)(s) * 1000000)
#define T0 S(1795880057)

static const struct tenant TENANT = {.org = "org_d", .account = "acct_d", .workspace = "ws_d"};

/* Create an environment from a JSON create body and return its id in `id`. */
static void create(struct store *s, const char *body_text, char id[ID_MAX])
{
	json_t *body = json_loads(body_text, 0, NULL);
	assert_non_null(body);
	struct env_fields fields;
	struct errbuf eb;
	assert_int_equal(ERR_OK, env_parse_create(body, &fields, &eb));
	json_decref(body);
	struct environment e;
	assert_int_equal(ERR_OK, s->ops->env_create(s, &TENANT, &fields, T0, &e));
	env_fields_clear(&fields);
	snprintf(id, ID_MAX, "%s", e.id);
	environment_clear(&e);
}

/* Change a row behind the store's back, as a damaged file or a hand edit would. */
static void tamper(struct fixture *f, const char *sql, const char *id)
{
	sqlite3 *db;
	assert_int_equal(SQLITE_OK, sqlite3_open(f->path, &db));
	sqlite3_busy_timeout(db, 5000);
	sqlite3_stmt *st;
	assert_int_equal(SQLITE_OK, sqlite3_prepare_v2(db, sql, -1, &st, NULL));
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(SQLITE_DONE, sqlite3_step(st));
	assert_int_equal(1, sqlite3_changes(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static int zeroed(const struct environment *e)
{
	static const struct environment zero;
	return memcmp(e, &zero, sizeof(zero)) == 0;
}

/* Run every verb that reads the row with stderr captured; each must fail with
 * ERR_INTERNAL and a zeroed output, and the log must name the row. */
static void expect_unreadable(struct store *s, const char *id)
{
	char logpath[] = "/tmp/environd-envdecode-log-XXXXXX";
	int logfd = mkstemp(logpath);
	assert_true(logfd >= 0);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(logfd, STDERR_FILENO) >= 0);

	struct environment e;
	int rc_get = s->ops->env_get(s, &TENANT, id, &e);
	int get_zeroed = zeroed(&e);
	json_t *body = json_pack("{s:s}", "name", "renamed");
	struct errbuf eb;
	int rc_update = s->ops->env_update(s, &TENANT, id, body, T0 + S(1), &e, &eb);
	int update_zeroed = zeroed(&e);
	json_decref(body);
	int rc_archive = s->ops->env_archive(s, &TENANT, id, T0 + S(2), &e);
	int archive_zeroed = zeroed(&e);
	struct work_wake wake;
	int rc_delete = s->ops->env_delete(s, &TENANT, id, &wake);
	struct env_page page;
	int rc_list = s->ops->env_list(s, &TENANT, 1, NULL, 20, &page);

	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	char log[8192] = {0};
	assert_true(lseek(logfd, 0, SEEK_SET) == 0);
	ssize_t n = read(logfd, log, sizeof(log) - 1);
	close(logfd);
	unlink(logpath);
	assert_true(n > 0);

	assert_int_equal(ERR_INTERNAL, rc_get);
	assert_true(get_zeroed);
	assert_int_equal(ERR_INTERNAL, rc_update);
	assert_true(update_zeroed);
	assert_int_equal(ERR_INTERNAL, rc_archive);
	assert_true(archive_zeroed);
	assert_int_equal(ERR_INTERNAL, rc_delete);
	assert_int_equal(ERR_INTERNAL, rc_list);
	assert_int_equal(0, page.count);
	assert_null(page.items);
	assert_non_null(strstr(log, "environment_row_invalid"));
	assert_non_null(strstr(log, id));
}

static const char *const CLOUD = "{\"name\":\"c\",\"config\":{\"type\":\"cloud\",\"networking\":{\"type\":\"limited\","
				 "\"allowed_hosts\":[\"a.example\"]}},\"metadata\":{\"k\":\"v\"}}";

/* For each statement: a fresh environment, damaged by it, is unreadable by every verb. */
static void each_unreadable(struct fixture *f, const char *const *bad, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char id[ID_MAX];
		create(f->s, CLOUD, id);
		tamper(f, bad[i], id);
		expect_unreadable(f->s, id);
		tamper(f, "DELETE FROM environments WHERE id = ?", id);
	}
}

static void test_bad_config(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {
		"UPDATE environments SET config = 'nope' WHERE id = ?",
		"UPDATE environments SET config = '[1]' WHERE id = ?",
		"UPDATE environments SET config = '\"cloud\"' WHERE id = ?",
		"UPDATE environments SET config = '{}' WHERE id = ?",
		"UPDATE environments SET config = '{\"type\":7}' WHERE id = ?",
		"UPDATE environments SET config = '{\"type\":\"gpu\"}' WHERE id = ?",
		"UPDATE environments SET config = '{\"type\":\"cloud\"}' WHERE id = ?",
		"UPDATE environments SET config = json_set(config, '$.networking', 'open') WHERE id = ?",
		"UPDATE environments SET config = json_set(config, '$.networking.type', 'wide') WHERE id = ?",
		"UPDATE environments SET config = json_remove(config, '$.networking.allow_mcp_servers') WHERE id = ?",
		"UPDATE environments SET config = json_set(config, '$.networking.allowed_hosts', json('[1]')) WHERE id = ?",
		"UPDATE environments SET config = json_remove(config, '$.packages') WHERE id = ?",
		"UPDATE environments SET config = json_set(config, '$.packages.type', 'pkgs') WHERE id = ?",
		"UPDATE environments SET config = json_set(config, '$.packages.pip', 'numpy') WHERE id = ?",
		"UPDATE environments SET config = json_remove(config, '$.packages.apt') WHERE id = ?",
	};
	each_unreadable(f, bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_bad_metadata_name_and_scope(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {
		"UPDATE environments SET metadata = 'nope' WHERE id = ?",
		"UPDATE environments SET metadata = '[1]' WHERE id = ?",
		"UPDATE environments SET metadata = '{\"k\":1}' WHERE id = ?",
		"UPDATE environments SET metadata = '{\"k\":null}' WHERE id = ?",
		"UPDATE environments SET scope_account = 2 WHERE id = ?",
		"UPDATE environments SET scope_account = -1 WHERE id = ?",
		"UPDATE environments SET scope_account = 'account' WHERE id = ?",
		"UPDATE environments SET scope_account = 0.5 WHERE id = ?",
		"UPDATE environments SET name = x'41' WHERE id = ?",
		"UPDATE environments SET description = x'00ff' WHERE id = ?",
	};
	each_unreadable(f, bad, sizeof(bad) / sizeof(bad[0]));
}

/* A damaged row spoils only itself: the other environments still read, update and list
 * once it is gone, and the stored shapes the server writes all pass the checks. */
static void test_good_rows_still_read(void **state)
{
	struct fixture *f = *state;
	char good[3][ID_MAX], bad[ID_MAX];
	create(f->s, CLOUD, good[0]);
	create(f->s, "{\"name\":\"s\",\"config\":{\"type\":\"self_hosted\"},\"scope\":\"account\"}", good[1]);
	create(f->s, "{\"name\":\"u\",\"description\":null,\"config\":{\"type\":\"cloud\"}}", good[2]);
	create(f->s, "{\"name\":\"b\",\"config\":{\"type\":\"self_hosted\"}}", bad);
	tamper(f, "UPDATE environments SET config = '{\"type\":\"other\"}' WHERE id = ?", bad);
	struct environment e;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ERR_OK, f->s->ops->env_get(f->s, &TENANT, good[i], &e));
		assert_string_equal(good[i], e.id);
		environment_clear(&e);
	}
	assert_int_equal(ERR_OK, f->s->ops->env_get(f->s, &TENANT, good[1], &e));
	assert_int_equal(1, e.f.scope_account);
	assert_true(env_is_self_hosted(&e.f));
	environment_clear(&e);
	json_t *body = json_pack("{s:{s:s,s:{s:s}}}", "config", "type", "cloud", "networking", "type", "unrestricted");
	struct errbuf eb;
	assert_int_equal(ERR_OK, f->s->ops->env_update(f->s, &TENANT, good[0], body, T0 + S(1), &e, &eb));
	json_decref(body);
	environment_clear(&e);
	tamper(f, "DELETE FROM environments WHERE id = ?", bad);
	struct env_page page;
	assert_int_equal(ERR_OK, f->s->ops->env_list(f->s, &TENANT, 1, NULL, 20, &page));
	assert_int_equal(3, page.count);
	env_page_clear(&page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_metadata_name_and_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_good_rows_still_read, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
