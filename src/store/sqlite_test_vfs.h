/* sqlite_test_vfs.h - a test-only SQLite storage layer: power cuts and storage faults.
 *
 * `environd serve` installs it only with the flag `--test-vfs powercut` (never by
 * default). It wraps the platform VFS and becomes the default for this process:
 *
 * - Power cut. Every write, truncate and fsync goes through it. What a file received
 *   since its last successful fsync is kept apart (as undo records), like a disk's
 *   volatile cache. On SIGUSR2 it stops all storage I/O, rolls every file back to its last
 *   fsync, makes that durable, and _exits with TEST_VFS_CUT_STATUS: the files then hold
 *   exactly what a machine that lost power would find. (Directory entries are not
 *   modelled: a created file survives, a deleted one stays deleted.)
 *
 * - Storage faults. `--test-vfs-control PATH` names a file of rules, re-read whenever it
 *   changes (replace it with rename() to change it atomically), one per line:
 *       OP KIND [ioerr|full] [delay=MS] [count=N]
 *   OP is read, write, sync or truncate; KIND is db (the database file), wal (its
 *   write-ahead log) or writer-db (the database file as the writer connection, the one
 *   that opened it with SQLITE_OPEN_CREATE, reads it). A matching call fails with
 *   SQLITE_IOERR_* (or SQLITE_FULL) before it reaches the file, at most N times (default:
 *   every time). With delay=MS it first sleeps that long; delay=MS alone only delays the
 *   call (to hold a group commit open while a test queues more writes behind it). An
 *   empty or absent file injects nothing. Each injection is logged on stderr as
 *   "test_vfs: injected OP fault on KIND" (or "test_vfs: delayed OP call on KIND"). */
#ifndef ENVIROND_SQLITE_TEST_VFS_H
#define ENVIROND_SQLITE_TEST_VFS_H

#include <stddef.h>

#define TEST_VFS_CUT_STATUS 86

/* Register the layer `name` ("powercut") as SQLite's default VFS, with the fault rules
 * in control_path (may be NULL). Returns 0, or -1 with the reason in why. Call once,
 * before any database is opened. */
int test_vfs_install(const char *name, const char *control_path, char *why, size_t why_len);

#endif
