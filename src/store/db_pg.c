/* db_pg.c - the PostgreSQL driver of db.h: a pool of libpq connections; each job is one
 * READ COMMITTED transaction on a connection of its own.
 *
 * Statements are prepared once per connection (named "e<N>", numbered by the cache slot)
 * after their `?` placeholders become `$1..$n`. Parameters travel as text, results come
 * back as text. A job that failed on a serialization failure, a deadlock or a unique
 * violation is rolled back and run again whole (a unique violation means a concurrent
 * transaction committed the row this one was about to create: the retry sees it). A
 * connection that broke is reset before its next use; until the database answers again,
 * jobs fail with ERR_UNAVAILABLE (a 503 with retry-after for the client). */
#include "store/db_pg.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define STMT_CACHE 160
#define PARAMS_MAX 24
#define RETRIES 5
#define ACQUIRE_WAIT_S 10

struct pconn;

struct pstmt {
	struct db_stmt base;
	struct pconn *c;
	const char *sql;     /* static string: compared by address */
	int read;            /* prepared without its row-lock clause */
	int slot;            /* its index in the cache, which names it on the connection */
	int nparams;
	char *vals[PARAMS_MAX];
	int unbound;         /* a parameter could not be copied (out of memory) */
	PGresult *res;
	int executed;
	int row, nrows;
	int64_t changes;
};

struct pconn {
	PGconn *pg;
	int broken;
	/* The job's BEGIN, not sent yet: it travels with the job's first statement, in one
	 * round trip (libpq's pipeline mode). NULL once sent, or outside a job. */
	const char *begin;
	struct pstmt cache[STMT_CACHE];
	size_t cached;
	struct pconn *next_free;
};

struct pdb {
	struct db base;
	char *url;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct pconn *conns;
	size_t n;
	struct pconn *free;
	atomic_ullong commits;
};

static const struct db_ops pg_db_ops;

static __thread struct pconn *current;
static __thread int current_read;
static __thread char last_state[6]; /* SQLSTATE of the last failure on this thread */

const char *db_pg_message(PGconn *pg)
{
	static __thread char msg[512];
	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(pg));
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	return msg;
}

PGconn *db_pg_connect(const char *url)
{
	/* Ours first: values in the caller's URI or conninfo win over them. */
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"5", "environd", url, NULL};
	return PQconnectdbParams(keys, vals, 1);
}

/* `?` → `$n` outside quoted text; the row-lock clause dropped when `unlocked`. */
static char *convert(const char *sql, int unlocked, int *nparams)
{
	size_t len = unlocked ? db_sql_unlocked_len(sql) : strlen(sql);
	char *out = malloc(len * 4 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	int n = 0, quoted = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = sql[i];
		if (ch == '\'')
			quoted = !quoted;
		if (ch == '?' && !quoted) {
			o += (size_t)snprintf(out + o, 5, "$%d", ++n);
			continue;
		}
		out[o++] = ch;
	}
	out[o] = '\0';
	*nparams = n;
	return out;
}

static void clear_params(struct pstmt *s)
{
	for (int i = 0; i < PARAMS_MAX; i++) {
		free(s->vals[i]);
		s->vals[i] = NULL;
	}
	s->unbound = 0;
}

static void clear_result(struct pstmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->executed = 0;
	s->row = s->nrows = 0;
}

static void set_state(const char *state)
{
	snprintf(last_state, sizeof(last_state), "%s", state ? state : "08006");
}

static struct db_stmt *p_stmt(struct db *base, const char *sql)
{
	(void)base;
	struct pconn *c = current;
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->cached; i++) {
		struct pstmt *s = &c->cache[i];
		if (s->sql == sql && s->read == current_read) {
			clear_result(s);
			clear_params(s);
			return &s->base;
		}
	}
	if (c->cached == STMT_CACHE) {
		log_event(LOG_ERROR, "store_stmt_cache_full", NULL);
		return NULL;
	}
	int n = 0;
	char *text = convert(sql, current_read, &n);
	if (!text)
		return NULL;
	if (n > PARAMS_MAX) {
		log_event(LOG_ERROR, "store_prepare_failed", "error", "too many parameters", NULL);
		free(text);
		return NULL;
	}
	char name[16];
	snprintf(name, sizeof(name), "e%d", (int)c->cached);
	PGresult *r = PQprepare(c->pg, name, text, n, NULL);
	free(text);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok) {
		set_state(PQresultErrorField(r, PG_DIAG_SQLSTATE));
		log_event(LOG_ERROR, "store_prepare_failed", "error", PQresultErrorMessage(r), NULL);
		if (PQstatus(c->pg) != CONNECTION_OK)
			c->broken = 1;
	}
	PQclear(r);
	if (!ok)
		return NULL;
	struct pstmt *s = &c->cache[c->cached++];
	memset(s, 0, sizeof(*s));
	s->base.ops = &pg_db_ops;
	s->c = c;
	s->sql = sql;
	s->read = current_read;
	s->slot = (int)(c->cached - 1);
	s->nparams = n;
	return &s->base;
}

#define PST(x) ((struct pstmt *)(x))

static void set_param(struct pstmt *s, int i, char *v)
{
	if (i < 1 || i > PARAMS_MAX) {
		free(v);
		return;
	}
	free(s->vals[i - 1]);
	s->vals[i - 1] = v;
	clear_result(s);
}

static void p_bind_text(struct db_stmt *st, int i, const char *text)
{
	char *v = text ? strdup(text) : NULL;
	if (text && !v)
		PST(st)->unbound = 1;
	set_param(PST(st), i, v);
}

static void p_bind_i64(struct db_stmt *st, int i, int64_t v)
{
	char *t = malloc(24);
	if (t)
		snprintf(t, 24, "%lld", (long long)v);
	else
		PST(st)->unbound = 1;
	set_param(PST(st), i, t);
}

static void p_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *t = malloc(2 * n + 3);
	if (t) {
		const unsigned char *b = p;
		t[0] = '\\';
		t[1] = 'x';
		for (size_t k = 0; k < n; k++) {
			t[2 + 2 * k] = hex[b[k] >> 4];
			t[3 + 2 * k] = hex[b[k] & 15];
		}
		t[2 + 2 * n] = '\0';
	} else {
		PST(st)->unbound = 1;
	}
	set_param(PST(st), i, t);
}

/* The error's primary message only: its DETAIL may quote the row's values. */
static const char *primary_message(struct pstmt *s)
{
	const char *m = s->res ? PQresultErrorField(s->res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	return m ? m : db_pg_message(s->c->pg);
}

/* The first statement of a job: its BEGIN and it in one round trip. The statement's
 * result is returned (owned by the caller); a BEGIN that failed fails the statement. */
static PGresult *exec_with_begin(struct pconn *c, const char *name, int n, const char *const *vals)
{
	const char *begin = c->begin;
	c->begin = NULL;
	if (!PQenterPipelineMode(c->pg))
		return NULL;
	PGresult *began = NULL, *res = NULL, *r;
	int sent = PQsendQueryParams(c->pg, begin, 0, NULL, NULL, NULL, NULL, 0) &&
		   PQsendQueryPrepared(c->pg, name, n, vals, NULL, NULL, 0) && PQpipelineSync(c->pg);
	if (sent) {
		/* Each query's results end with a NULL; the sync's own result closes the pipeline. */
		for (int query = 0; query < 2; query++) {
			while ((r = PQgetResult(c->pg))) {
				if (query == 0 && !began)
					began = r;
				else if (query == 1 && !res)
					res = r;
				else
					PQclear(r);
			}
		}
		while ((r = PQgetResult(c->pg))) {
			ExecStatusType rs = PQresultStatus(r);
			PQclear(r);
			if (rs == PGRES_PIPELINE_SYNC)
				break;
		}
	}
	PQexitPipelineMode(c->pg);
	if (!sent || PQresultStatus(began) != PGRES_COMMAND_OK) {
		/* The statement was not run (aborted pipeline): answer with the BEGIN's failure. */
		PQclear(res);
		res = began;
		began = NULL;
	}
	PQclear(began);
	return res;
}

static int p_step(struct db_stmt *st)
{
	struct pstmt *s = PST(st);
	if (!s->executed && s->unbound) {
		/* A parameter that could not be copied would travel as NULL: fail instead. */
		set_state("53200");
		return DB_FAIL;
	}
	if (!s->executed) {
		char name[16];
		snprintf(name, sizeof(name), "e%d", s->slot);
		PQclear(s->res);
		s->res = s->c->begin ? exec_with_begin(s->c, name, s->nparams, (const char *const *)s->vals)
				     : PQexecPrepared(s->c->pg, name, s->nparams, (const char *const *)s->vals, NULL, NULL, 0);
		s->executed = 1;
		s->row = -1;
		s->nrows = 0;
		s->changes = 0;
		ExecStatusType rs = PQresultStatus(s->res);
		if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK) {
			s->nrows = rs == PGRES_TUPLES_OK ? PQntuples(s->res) : 0;
			s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
		} else {
			set_state(s->res ? PQresultErrorField(s->res, PG_DIAG_SQLSTATE) : NULL);
			const char *state = last_state;
			/* Serialization failures, deadlocks and unique violations are retried
			 * whole by run(); they are not worth an error line. */
			if (strcmp(state, "40001") && strcmp(state, "40P01") && strcmp(state, "23505"))
				log_event(LOG_WARN, "store_statement_failed", "sqlstate", state, "error",
					  primary_message(s), NULL);
			if (PQstatus(s->c->pg) != CONNECTION_OK)
				s->c->broken = 1;
			return DB_FAIL;
		}
	}
	if (++s->row < s->nrows)
		return DB_ROW;
	return DB_DONE;
}

static void p_reset(struct db_stmt *st)
{
	struct pstmt *s = PST(st);
	PQclear(s->res);
	s->res = NULL;
	s->executed = 0;
}

static int64_t p_changes(struct db_stmt *st) { return PST(st)->changes; }

static int in_row(struct pstmt *s, int i)
{
	return s->res && s->row >= 0 && s->row < s->nrows && i >= 0 && i < PQnfields(s->res);
}

static enum db_type p_col_type(struct db_stmt *st, int i)
{
	struct pstmt *s = PST(st);
	if (!in_row(s, i) || PQgetisnull(s->res, s->row, i))
		return DB_NULL;
	switch (PQftype(s->res, i)) {
	case 20:   /* int8 */
	case 21:   /* int2 */
	case 23:   /* int4 */
	case 1700: /* numeric (SUM) */
		return DB_INT;
	case 25:   /* text */
	case 1043: /* varchar */
		return DB_TEXT;
	default:
		return DB_OTHER;
	}
}

static int64_t p_col_i64(struct db_stmt *st, int i)
{
	struct pstmt *s = PST(st);
	if (!in_row(s, i) || PQgetisnull(s->res, s->row, i))
		return 0;
	return strtoll(PQgetvalue(s->res, s->row, i), NULL, 10);
}

static const char *p_col_text(struct db_stmt *st, int i)
{
	struct pstmt *s = PST(st);
	if (!in_row(s, i) || PQgetisnull(s->res, s->row, i))
		return NULL;
	return PQgetvalue(s->res, s->row, i);
}

static size_t p_col_bytes(struct db_stmt *st, int i)
{
	struct pstmt *s = PST(st);
	if (!in_row(s, i) || PQgetisnull(s->res, s->row, i))
		return 0;
	return (size_t)PQgetlength(s->res, s->row, i);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* bytea comes back in its hex text form: \x followed by two digits a byte. */
static int p_col_blob(struct db_stmt *st, int i, void *out, size_t n)
{
	const char *t = p_col_text(st, i);
	if (!t || strlen(t) != 2 + 2 * n || t[0] != '\\' || t[1] != 'x')
		return 0;
	unsigned char *b = out;
	for (size_t k = 0; k < n; k++) {
		int hi = hexval(t[2 + 2 * k]), lo = hexval(t[3 + 2 * k]);
		if (hi < 0 || lo < 0)
			return 0;
		b[k] = (unsigned char)(hi << 4 | lo);
	}
	return 1;
}

static enum err map_state(const char *state)
{
	if (!state[0])
		return ERR_INTERNAL;
	if (strncmp(state, "23", 2) == 0)
		return ERR_CONFLICT;
	/* The connection (08), resources (53), the server shutting down or starting (57P),
	 * the system (58), a retry that kept failing (40): try again later. */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "58", 2) == 0 || strncmp(state, "40", 2) == 0 || strcmp(state, "25006") == 0)
		return ERR_UNAVAILABLE;
	return ERR_INTERNAL;
}

static enum err p_fail(struct db *base)
{
	(void)base;
	return map_state(last_state);
}

static void conn_forget(struct pconn *c)
{
	for (size_t i = 0; i < c->cached; i++) {
		PQclear(c->cache[i].res);
		clear_params(&c->cache[i]);
	}
	c->cached = 0;
}

/* A connection that broke is made again before use; its prepared statements went with it. */
static int conn_ready(struct pdb *d, struct pconn *c)
{
	if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK)
		return 1;
	conn_forget(c);
	if (c->pg)
		PQfinish(c->pg);
	c->pg = db_pg_connect(d->url);
	c->broken = 0;
	if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
		log_event(LOG_WARN, "store_connect_failed", "error", c->pg ? db_pg_message(c->pg) : "out of memory", NULL);
		set_state("08001");
		c->broken = 1;
		return 0;
	}
	/* A statement that waits this long is stuck: give the connection back. */
	PGresult *r = PQexec(c->pg, "SET statement_timeout = '30s'");
	PQclear(r);
	return 1;
}

static struct pconn *acquire(struct pdb *d)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ACQUIRE_WAIT_S;
	pthread_mutex_lock(&d->lock);
	while (!d->free) {
		if (pthread_cond_timedwait(&d->freed, &d->lock, &until)) {
			pthread_mutex_unlock(&d->lock);
			set_state("53300");
			log_event(LOG_WARN, "store_pool_exhausted", NULL);
			return NULL;
		}
	}
	struct pconn *c = d->free;
	d->free = c->next_free;
	pthread_mutex_unlock(&d->lock);
	return c;
}

static void release(struct pdb *d, struct pconn *c)
{
	pthread_mutex_lock(&d->lock);
	c->next_free = d->free;
	d->free = c;
	pthread_cond_signal(&d->freed);
	pthread_mutex_unlock(&d->lock);
}

static int exec_simple(struct pconn *c, const char *sql)
{
	PGresult *r = PQexec(c->pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok) {
		set_state(r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
		if (PQstatus(c->pg) != CONNECTION_OK)
			c->broken = 1;
	}
	PQclear(r);
	return ok;
}

/* COMMIT answers COMMAND_OK even when it rolled back (a statement of the transaction had
 * failed and the job went on): only a "COMMIT" tag means the writes are durable. */
static int commit(struct pconn *c)
{
	PGresult *r = PQexec(c->pg, "COMMIT");
	int done = PQresultStatus(r) == PGRES_COMMAND_OK;
	int ok = done && strcmp(PQcmdStatus(r), "COMMIT") == 0;
	if (!ok) {
		set_state(done ? "25P02" : r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
		if (PQstatus(c->pg) != CONNECTION_OK)
			c->broken = 1;
	}
	PQclear(r);
	return ok;
}

/* Worth running the job again: a serialization failure or a deadlock, always (up to
 * RETRIES); a unique violation once (a concurrent job committed the row this one was about
 * to create, and a second run sees it; one that still collides is a real conflict). */
static int retryable(int attempt)
{
	if (strcmp(last_state, "40001") == 0 || strcmp(last_state, "40P01") == 0)
		return 1;
	return strcmp(last_state, "23505") == 0 && attempt == 0;
}

static enum err transact(struct db *base, db_job_fn fn, void *arg, int read)
{
	struct pdb *d = (struct pdb *)base;
	if (current)
		return fn(arg); /* nested in a job of this thread: the same transaction */
	struct pconn *c = acquire(d);
	if (!c)
		return ERR_UNAVAILABLE;
	enum err rc = ERR_UNAVAILABLE;
	for (int attempt = 0; attempt < RETRIES; attempt++) {
		last_state[0] = '\0';
		if (!conn_ready(d, c)) {
			rc = ERR_UNAVAILABLE;
			break;
		}
		/* A read of several statements sees one snapshot, as it does on SQLite. The BEGIN
		 * goes out with the job's first statement (exec_with_begin). */
		c->begin = read ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN";
		current = c;
		current_read = read;
		rc = fn(arg);
		current = NULL;
		current_read = 0;
		for (size_t i = 0; i < c->cached; i++)
			p_reset(&c->cache[i].base);
		/* A job fails as its statement did; one that could not even prepare its
		 * statement (ERR_INTERNAL) because the database went away is unavailable too. */
		int gone = c->broken || PQstatus(c->pg) != CONNECTION_OK || strncmp(last_state, "08", 2) == 0 ||
			   strncmp(last_state, "57P", 3) == 0;
		if (rc != ERR_OK && gone) {
			c->broken = 1;
			rc = ERR_UNAVAILABLE;
		}
		if (c->begin) {
			c->begin = NULL; /* no statement ran: there is no transaction to end */
			break;
		}
		if (rc == ERR_OK) {
			if (commit(c)) {
				if (!read)
					atomic_fetch_add(&d->commits, 1);
				break;
			}
			rc = map_state(last_state);
			if (!rc || rc == ERR_CONFLICT)
				rc = ERR_UNAVAILABLE;
			if (retryable(attempt) && !c->broken)
				continue;
			log_event(LOG_WARN, "store_commit_failed", "sqlstate", last_state, NULL);
			break;
		}
		int again = retryable(attempt) && !c->broken;
		if (!c->broken)
			exec_simple(c, "ROLLBACK");
		if (!again)
			break;
	}
	release(d, c);
	return rc;
}

static enum err p_run(struct db *base, db_job_fn fn, void *arg) { return transact(base, fn, arg, 0); }
static uint64_t p_commits(struct db *base) { return atomic_load(&((struct pdb *)base)->commits); }
static enum err p_read(struct db *base, db_job_fn fn, void *arg) { return transact(base, fn, arg, 1); }

static void p_close(struct db *base)
{
	struct pdb *d = (struct pdb *)base;
	for (size_t i = 0; i < d->n; i++) {
		conn_forget(&d->conns[i]);
		if (d->conns[i].pg)
			PQfinish(d->conns[i].pg);
	}
	free(d->conns);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->freed);
	free(d->url);
	free(d);
}

static const struct db_ops pg_db_ops = {
	.name = "postgres",
	.run = p_run,
	.commits = p_commits,
	.read = p_read,
	.stmt = p_stmt,
	.fail = p_fail,
	.close = p_close,
	.bind_text = p_bind_text,
	.bind_i64 = p_bind_i64,
	.bind_blob = p_bind_blob,
	.step = p_step,
	.reset = p_reset,
	.changes = p_changes,
	.col_type = p_col_type,
	.col_i64 = p_col_i64,
	.col_text = p_col_text,
	.col_bytes = p_col_bytes,
	.col_blob = p_col_blob,
};

struct db *db_pg_open(const char *url, size_t pool, struct errbuf *eb)
{
	struct pdb *d = calloc(1, sizeof(*d));
	if (!d || !(d->url = strdup(url)) || !(d->conns = calloc(pool ? pool : 1, sizeof(*d->conns)))) {
		if (d)
			free(d->url);
		free(d);
		errf(eb, ERR_NOMEM, "store: out of memory");
		return NULL;
	}
	d->base.ops = &pg_db_ops;
	d->n = pool ? pool : 1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->freed, NULL);
	for (size_t i = 0; i < d->n; i++) {
		d->conns[i].next_free = d->free;
		d->free = &d->conns[i];
	}
	/* One connection now, so that a wrong URL or a refused login fails the start. */
	if (!conn_ready(d, &d->conns[d->n - 1])) {
		errf(eb, ERR_UNAVAILABLE, "--db: cannot connect to PostgreSQL: %s",
		     d->conns[d->n - 1].pg ? db_pg_message(d->conns[d->n - 1].pg) : "out of memory");
		p_close(&d->base);
		return NULL;
	}
	return &d->base;
}
