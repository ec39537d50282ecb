/* conformance.c - the suite's fixture: a fresh store per test on the backend that
 * ENVIROND_STORE_URL names, the fake clock, tenants, environments and token hashes. */
#include "conformance.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/agent.h"

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
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", c->dbname);
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

/* --- shared fixtures ---------------------------------------------------------------- */

void conf_fx_init(struct conf_fx *f, void **state, const char *prefix)
{
	f->c = *state;
	conf_tenant(f->c, prefix, &f->t);
	conf_env_id(f->c, &f->t, conf_tick(f->c, 1000), f->env);
}

void conf_agent(struct conf *c, const struct tenant *t, const char *name, const char *model, int64_t now,
		char id[ID_MAX])
{
	json_t *b = json_pack("{s:s,s:s}", "name", name, "model", model);
	json_t *cfg = NULL;
	struct errbuf eb;
	assert_int_equal(ERR_OK, agent_from_create(b, &cfg, &eb));
	json_decref(b);
	struct agent_rec a;
	assert_int_equal(ERR_OK, c->s->ops->agent_create(c->s, t, cfg, now, &a));
	json_decref(cfg);
	snprintf(id, ID_MAX, "%s", a.id);
	agent_rec_clear(&a);
}

json_t *conf_user_message(const char *text)
{
	json_t *m = json_pack("[{s:s,s:[{s:s,s:s}]}]", "type", "user.message", "content", "type", "text", "text", text);
	assert_non_null(m);
	return m;
}

void conf_session(struct conf *c, const struct tenant *t, const char *env, const char *agent, const char *text,
		  int64_t now, struct session_rec *out, struct session_wake *wake)
{
	json_t *initial = text ? conf_user_message(text) : NULL;
	struct session_new n = {.environment_id = env, .agent_id = agent, .initial_events = initial};
	struct errbuf eb = {{0}};
	struct session_wake scratch;
	enum err rc = c->s->ops->session_create(c->s, t, &n, now, out, wake ? wake : &scratch, &eb);
	json_decref(initial);
	if (rc)
		fail_msg("session_create: error %d: %s", rc, eb.message);
}

struct thread_arg {
	conf_thread_fn fn;
	void *ctx;
	int me;
	pthread_barrier_t *start;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	pthread_barrier_wait(a->start);
	a->fn(a->ctx, a->me);
	return NULL;
}

void conf_threads(int n, conf_thread_fn fn, void *ctx)
{
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	struct thread_arg *args = calloc((size_t)n, sizeof(*args));
	pthread_barrier_t start;
	assert_non_null(th);
	assert_non_null(args);
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		args[i] = (struct thread_arg){fn, ctx, i, &start};
		assert_int_equal(0, pthread_create(&th[i], NULL, thread_main, &args[i]));
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	free(th);
	free(args);
}
