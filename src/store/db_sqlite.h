/* db_sqlite.h - opening the SQLite driver of db.h (db_sqlite.c). */
#ifndef ENVIROND_STORE_DB_SQLITE_H
#define ENVIROND_STORE_DB_SQLITE_H

#include <sqlite3.h>

#include "store/db.h"

/* Open the store file at path (created when missing) with the pragmas of a durable store
 * (WAL, synchronous=FULL). *writer receives the writer connection, for the backend's
 * migrations and checks before any job runs. NULL on failure, named in eb. */
struct db *db_sqlite_open(const char *path, sqlite3 **writer, struct errbuf *eb);

#endif
