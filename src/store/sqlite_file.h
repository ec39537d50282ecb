/* sqlite_file.h - the SQLite store's files on disk (sqlite_file.c). */
#ifndef ENVIROND_STORE_SQLITE_FILE_H
#define ENVIROND_STORE_SQLITE_FILE_H

#include <sqlite3.h>
#include <sys/types.h>

#include "common/err.h"

/* sqlite_files_check: every existing file of the store at `path` (database, -wal, -shm)
 * opens for writing and is made 0600, else an error naming it; it runs before SQLite
 * opens the store. sqlite_files_private sets a umask under which SQLite creates them 0600
 * and returns the old one for sqlite_files_restore. sqlite_files_probe commits one write
 * on the writer connection (refusing a store that cannot be written) and makes the files
 * it created 0600. */
enum err sqlite_files_check(const char *path, struct errbuf *eb);
mode_t sqlite_files_private(void);
void sqlite_files_restore(mode_t old);
enum err sqlite_files_probe(sqlite3 *db, const char *path, struct errbuf *eb);

#endif
