/* store_pg.h - the PostgreSQL backend (store_pg.c). */
#ifndef ENVIROND_STORE_STORE_PG_H
#define ENVIROND_STORE_STORE_PG_H

#include <stddef.h>

#include "store/store.h"

/* Open the database at url (a postgres:// or postgresql:// URI, unix sockets included:
 * postgresql:///db?host=/run/postgresql) with a pool of `pool` connections, migrating its
 * schema first (safe when several nodes start at once). */
enum err store_pg_open(const char *url, size_t pool, struct store **out, struct errbuf *eb);

/* The URL without its password (store_describe). */
void store_pg_describe(const char *url, char *out, size_t cap);

#endif
