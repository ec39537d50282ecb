/* failalloc.c - an allocator that fails the Nth allocation, for the out-of-memory sweep.
 *
 * Linked into the unit tests of `make oom` with -Wl,--wrap=malloc,calloc,realloc,strdup,
 * strndup: every allocation environd's own code (and the test's) makes goes through here,
 * and so does every allocation jansson makes (json_set_alloc_funcs), since much of what
 * environd allocates it allocates through jansson. Libraries that handle their own memory
 * failures (SQLite, libcurl, OpenSSL, cmocka) are left alone.
 *
 * ENVIROND_FAIL_ALLOC_AT=N makes the Nth counted allocation of the process fail (once; the
 * ones after it succeed again), and creates the file ENVIROND_FAIL_ALLOC_HIT names when it
 * does, so that the sweep knows the run went that far. ENVIROND_FAIL_ALLOC_COUNT names a
 * file that receives the number of allocations counted, at exit. A forked child counts on
 * from its parent's count. */
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static long fail_at; /* 0 = never */
static const char *hit_file;
static const char *count_file;
static atomic_long counted;

/* Count one allocation; true when it is the one to fail. Allocates nothing itself. */
static int fail_now(void)
{
	long n = atomic_fetch_add(&counted, 1) + 1;
	if (fail_at <= 0 || n != fail_at)
		return 0;
	if (hit_file) {
		int fd = open(hit_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	return 1;
}

void *__wrap_malloc(size_t size) { return fail_now() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t size) { return fail_now() ? NULL : __real_realloc(p, size); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_now() ? NULL : __real_strndup(s, n); }

static void report_count(void)
{
	if (!count_file)
		return;
	char text[32];
	int len = snprintf(text, sizeof(text), "%ld\n", atomic_load(&counted));
	int fd = open(count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, text, (size_t)len) != len)
		(void)0; /* the sweep then reads no count and says so */
	close(fd);
}

__attribute__((constructor)) static void failalloc_init(void)
{
	const char *at = getenv("ENVIROND_FAIL_ALLOC_AT");
	fail_at = at ? strtol(at, NULL, 10) : 0;
	hit_file = getenv("ENVIROND_FAIL_ALLOC_HIT");
	count_file = getenv("ENVIROND_FAIL_ALLOC_COUNT");
	json_set_alloc_funcs(__wrap_malloc, free);
	/* Only the process the sweep started reports, not a child that exits with _exit(). */
	atexit(report_count);
}
