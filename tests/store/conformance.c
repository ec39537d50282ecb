/* conformance.c - the suite's fixture: a fresh store per test on the backend that
 * ENVIROND_STORE_URL names, the fake clock, tenants, environments and token hashes. */
#include "conformance.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_POOL 8 /* more than one connection, so that concurrent verbs really race */

static unsigned databases; /* databases created by this process, for unique names */

int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

void conf_hash(const char *text, char out[SECRET_HASH_HEX + 1]) { secret_sha256_hex(text, strlen(text), out); }

void conf_token(char out[SECRET_HASH_HEX + 1])
{
	static unsigned long next;
	char text[64];
	snprintf(text, sizeof(text), "envd_req_conf_%ld_%lu", (long)getpid(), __atomic_add_fetch(&next, 1, __ATOMIC_SEQ_CST));
	conf_hash(text, out);
}

int64_t conf_tick(struct conf *c, int64_t us)
{
	c->now += us;
	return c->now;
}

void tenant_set(struct tenant *t, const char *org, const char *account, const char *workspace)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->org, sizeof(t->org), "%s", org);
	snprintf(t->account, sizeof(t->account), "%s", account);
	snprintf(t->workspace, sizeof(t->workspace), "%s", workspace);
}

void conf_tenant(struct conf *c, const char *prefix, struct tenant *t)
{
	char org[TENANT_NAME_MAX + 1];
	snprintf(org, sizeof(org), "%s-%u", prefix, ++c->seq);
	tenant_set(t, org, "acct", "ws");
}

void conf_env(struct conf *c, const struct tenant *t, int self_hosted, int account_scope, const char *name,
	      int64_t now, struct environment *out)
{
	char unique[64];
	if (!name) {
		snprintf(unique, sizeof(unique), "env-%u", ++c->seq);
		name = unique;
	}
	json_t *body = json_pack("{s:s,s:{s:s},s:s}", "name", name, "config", "type", self_hosted ? "self_hosted" : "cloud",
				 "scope", account_scope ? "account" : "organization");
	assert_non_null(body);
	struct env_fields f;
	struct errbuf eb;
	assert_int_equal(ERR_OK, env_parse_create(body, &f, &eb));
	json_decref(body);
	assert_int_equal(ERR_OK, c->s->ops->env_create(c->s, t, &f, now, out));
	env_fields_clear(&f);
}

void conf_env_id(struct conf *c, const struct tenant *t, int64_t now, char id[ID_MAX])
{
	struct environment e;
	conf_env(c, t, 1, 0, NULL, now, &e);
	snprintf(id, ID_MAX, "%s", e.id);
	environment_clear(&e);
}

/* --- PostgreSQL: one database per test ----------------------------------------------- */

static void pg_exec(const char *url, const char *sql)
{
	PGconn *pg = PQconnectdb(url);
	if (PQstatus(pg) != CONNECTION_OK)
		fail_msg("cannot connect to %s: %s", url, PQerrorMessage(pg));
	PGresult *r = PQexec(pg, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(pg);
}

/* The base URL with its database replaced by dbname: the path after the authority. */
static void pg_url_with_db(const char *base, const char *dbname, char *out, size_t cap)
{
	const char *auth = strstr(base, "://");
	auth = auth ? auth + 3 : base;
	const char *path = auth + strcspn(auth, "/?");
	const char *rest = path[0] == '/' ? path + 1 + strcspn(path + 1, "?") : path;
	int n = snprintf(out, cap, "%.*s/%s%s", (int)(path - base), base, dbname, rest);
	assert_true(n > 0 && (size_t)n < cap);
}

int conf_setup(void **state)
{
	struct conf *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->now = CONF_T0;
	const char *base = getenv("ENVIROND_STORE_URL");
	if (base && *base) {
		assert_true(store_is_postgres(base));
		c->postgres = 1;
		c->pool = PG_POOL;
		snprintf(c->dbname, sizeof(c->dbname), "conf_%ld_%u", (long)getpid(), ++databases);
		char sql[128];
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", c->dbname);
		pg_exec(base, sql);
		pg_url_with_db(base, c->dbname, c->url, sizeof(c->url));
	} else {
		c->pool = 1;
		snprintf(c->dir, sizeof(c->dir), "%s/environd-conf-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		assert_non_null(mkdtemp(c->dir));
		snprintf(c->url, sizeof(c->url), "%s/environd.db", c->dir);
	}
	struct errbuf eb = {{0}};
	if (store_open(c->url, c->pool, &c->s, &eb) != ERR_OK)
		fail_msg("store_open(%s): %s", c->url, eb.message);
	*state = c;
	return 0;
}

void conf_reopen(struct conf *c)
{
	c->s->ops->close(c->s);
	c->s = NULL;
	struct errbuf eb = {{0}};
	if (store_open(c->url, c->pool, &c->s, &eb) != ERR_OK)
		fail_msg("store_open(%s) again: %s", c->url, eb.message);
}

int conf_teardown(void **state)
{
	struct conf *c = *state;
	if (c->s)
		c->s->ops->close(c->s);
	if (c->postgres) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", c->dbname);
		pg_exec(getenv("ENVIROND_STORE_URL"), sql);
	} else {
		static const char *const files[] = {"environd.db", "environd.db-wal", "environd.db-shm",
						    "environd.db-journal"};
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			char path[256];
			snprintf(path, sizeof(path), "%s/%s", c->dir, files[i]);
			unlink(path);
		}
		rmdir(c->dir);
	}
	free(c);
	return 0;
}
