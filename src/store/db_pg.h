/* db_pg.h - opening the PostgreSQL driver of db.h (db_pg.c). */
#ifndef ENVIROND_STORE_DB_PG_H
#define ENVIROND_STORE_DB_PG_H

#include <libpq-fe.h>
#include <stddef.h>

#include "store/db.h"

/* A pool of `pool` connections to the database at `url` (any URI or conninfo string
 * libpq accepts). One connects now, so that a wrong address or login fails here, named
 * in eb; the others connect on first use. NULL on failure. */
struct db *db_pg_open(const char *url, size_t pool, struct errbuf *eb);

/* A connection to url with environd's defaults (connect timeout, application name); the
 * URL's own settings win. Check PQstatus. */
PGconn *db_pg_connect(const char *url);

/* libpq's last error on pg as one line (this thread's buffer). */
const char *db_pg_message(PGconn *pg);

#endif
