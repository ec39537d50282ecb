/* sqlite_file.c - the SQLite store's files on disk: who may read them, and whether this
 * process can write them (see sqlite_file.h).
 *
 * The database holds every tenant's data and the cursor key, so the database, its -wal
 * and its -shm are created 0600 and an existing one is brought back to 0600. A store that
 * cannot be written is refused at start with a message naming the file: otherwise the
 * server would start "ready" and answer every write with an error, and an -shm that
 * cannot be written (immutable, say) is mapped by SQLite and kills the process with
 * SIGBUS the first time it is touched. */
#include "store/sqlite_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static const char *const suffixes[] = {"", "-wal", "-shm"};

/* One file of the store, if it exists: writable by us, and 0600. */
static enum err check_file(const char *file, struct errbuf *eb)
{
	struct stat st;
	if (stat(file, &st) != 0) {
		if (errno == ENOENT)
			return ERR_OK; /* SQLite creates it, under the umask of store_files_create */
		return errf(eb, ERR_UNAVAILABLE, "store: cannot inspect %s: %s", file, strerror(errno));
	}
	if (!S_ISREG(st.st_mode))
		return errf(eb, ERR_UNAVAILABLE, "store: %s is not a regular file", file);
	int fd = open(file, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errf(eb, ERR_UNAVAILABLE, "store: %s cannot be opened for writing (%s); the store must be writable",
			    file, strerror(errno));
	if ((st.st_mode & 0077) && fchmod(fd, 0600) != 0)
		log_event(LOG_WARN, "store_mode", "file", file, "error", strerror(errno), NULL);
	close(fd);
	return ERR_OK;
}

/* Runs before SQLite opens the store in this process: opening and closing the files here
 * would drop SQLite's POSIX locks on them once it holds any. */
enum err sqlite_files_check(const char *path, struct errbuf *eb)
{
	char file[4096];
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if ((size_t)snprintf(file, sizeof(file), "%s%s", path, suffixes[i]) >= sizeof(file))
			return errf(eb, ERR_INVALID, "store: path too long");
		enum err rc = check_file(file, eb);
		if (rc)
			return rc;
	}
	return ERR_OK;
}

mode_t sqlite_files_private(void) { return umask(0077); }

void sqlite_files_restore(mode_t old) { umask(old); }

enum err sqlite_files_probe(sqlite3 *db, const char *path, struct errbuf *eb)
{
	char *msg = NULL;
	/* A real write, committed: it creates the -wal and -shm if they are missing and proves
	 * that the database, the journal and the directory all take writes. */
	if (sqlite3_exec(db,
			 "BEGIN IMMEDIATE; INSERT OR REPLACE INTO settings(key, value) VALUES('opened_at',"
			 " CAST(strftime('%s','now') AS INTEGER)); COMMIT;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		enum err rc = errf(eb, ERR_UNAVAILABLE, "store: %s cannot be written (%s); the store must be writable",
				   path, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	/* The files the write created: 0600 too. By path, never by opening them: closing a
	 * descriptor would drop the POSIX locks SQLite holds on them in this process. */
	char file[4096];
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		struct stat st;
		snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0077) && chmod(file, 0600) != 0)
			log_event(LOG_WARN, "store_mode", "file", file, "error", strerror(errno), NULL);
	}
	return ERR_OK;
}
