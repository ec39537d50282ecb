/* sqlite_fixture.h - test helper: a fresh SQLite store in its own temp directory per test
 * (cmocka setup/teardown), removed with its log files after. Include after <cmocka.h>. */
#ifndef ENVIROND_TESTS_STORE_SQLITE_FIXTURE_H
#define ENVIROND_TESTS_STORE_SQLITE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"

struct fixture {
	char dir[64];
	char path[128]; /* the database file, for tests that read or damage it directly */
	struct store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/environd-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/environd.db", f->dir);
	struct errbuf eb;
	assert_int_equal(ERR_OK, store_open(f->path, 1, &f->s, &eb));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	f->s->ops->close(f->s);
	char p[160];
	const char *suffix[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

#endif
