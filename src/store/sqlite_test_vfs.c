/* sqlite_test_vfs.c - the power-cut and storage-fault layer for tests (see the header).
 *
 * Each file path has one node shared by every handle on it (several connections open the
 * same database and log), because an fsync through any handle makes the file durable.
 * Before a write or truncate changes a file, the bytes and size it is about to change are
 * saved in the node's undo list; a successful fsync empties the list. A power cut applies
 * the lists backwards, which leaves each file exactly as it was at its last fsync.
 *
 * One mutex serializes every write, truncate and fsync with the bookkeeping, so the cut,
 * which takes the mutex and never gives it back, sees no half-recorded change, and no
 * fsync can complete (and no reply depending on it can go out) once the cut has begun. */
#include "store/sqlite_test_vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum kind { KIND_OTHER, KIND_DB, KIND_WAL };
enum op { OP_READ, OP_WRITE, OP_SYNC, OP_TRUNCATE, OP__COUNT };
static const char *const op_names[OP__COUNT] = {"read", "write", "sync", "truncate"};

#define RULES_MAX 16
#define UNDO_BYTES_MAX (512LL * 1024 * 1024) /* a test that writes more without fsync is broken */

struct undo {
	sqlite3_int64 offset;   /* where the saved bytes go back */
	sqlite3_int64 old_size; /* the file's size before the change */
	int len;                /* saved bytes (may be 0: the change only grew the file) */
	unsigned char *bytes;
};

/* One per path, for the life of the process. */
struct node {
	char *path;
	struct undo *undo;
	size_t n_undo, cap_undo;
	struct node *next;
};

struct rule {
	enum op op;
	int kind;        /* KIND_DB or KIND_WAL; writer_only narrows KIND_DB */
	int writer_only;
	int full;        /* SQLITE_FULL instead of SQLITE_IOERR_* */
	int fails;       /* 0: a delay-only rule, the call then goes through */
	long delay_ms;   /* sleep this long before the call (or its failure) */
	long remaining;  /* -1: every time */
};

struct tfile {
	sqlite3_file base;
	struct node *node; /* NULL for files not tracked (temporary files) */
	enum kind kind;
	int writer;        /* the database file as opened with SQLITE_OPEN_CREATE */
	sqlite3_file *real; /* follows this struct in the same allocation */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs test_vfs;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *nodes;
static long long undo_bytes;
static const char *control_path;
static struct stat control_seen;
static struct rule rules[RULES_MAX];
static size_t n_rules;
static int cut_pipe[2] = {-1, -1};

/* --- fault rules --------------------------------------------------------------------- */

static void parse_rules(FILE *f)
{
	char line[256];
	n_rules = 0;
	while (fgets(line, sizeof(line), f) && n_rules < RULES_MAX) {
		char op[16], kind[16], a[24] = "", b[24] = "", d[24] = "";
		int n = sscanf(line, "%15s %15s %23s %23s %23s", op, kind, a, b, d);
		if (n < 2)
			continue;
		struct rule r = {.remaining = -1, .fails = 1};
		int i;
		for (i = 0; i < OP__COUNT && strcmp(op, op_names[i]); i++)
			;
		if (i == OP__COUNT) {
			fprintf(stderr, "test_vfs: ignoring a rule with unknown op \"%s\"\n", op);
			continue;
		}
		r.op = (enum op)i;
		if (!strcmp(kind, "db")) {
			r.kind = KIND_DB;
		} else if (!strcmp(kind, "writer-db")) {
			r.kind = KIND_DB;
			r.writer_only = 1;
		} else if (!strcmp(kind, "wal")) {
			r.kind = KIND_WAL;
		} else {
			fprintf(stderr, "test_vfs: ignoring a rule with unknown kind \"%s\"\n", kind);
			continue;
		}
		const char *args[3] = {a, b, d};
		int explicit_error = 0;
		for (int k = 0; k < 3; k++) {
			if (!strcmp(args[k], "full"))
				r.full = explicit_error = 1;
			else if (!strcmp(args[k], "ioerr"))
				explicit_error = 1;
			else if (!strncmp(args[k], "count=", 6))
				r.remaining = strtol(args[k] + 6, NULL, 10);
			else if (!strncmp(args[k], "delay=", 6))
				r.delay_ms = strtol(args[k] + 6, NULL, 10);
		}
		if (r.delay_ms > 0 && !explicit_error)
			r.fails = 0;
		rules[n_rules++] = r;
	}
}

/* Re-read the rules when the control file changed (or appeared, or went). Lock held. */
static void refresh_rules(void)
{
	if (!control_path)
		return;
	struct stat st;
	if (stat(control_path, &st) != 0) {
		memset(&st, 0, sizeof(st));
		if (control_seen.st_ino == 0)
			return;
		n_rules = 0;
		control_seen = st;
		return;
	}
	if (st.st_ino == control_seen.st_ino && st.st_size == control_seen.st_size &&
	    st.st_mtim.tv_sec == control_seen.st_mtim.tv_sec && st.st_mtim.tv_nsec == control_seen.st_mtim.tv_nsec)
		return;
	control_seen = st;
	FILE *f = fopen(control_path, "r");
	if (!f) {
		n_rules = 0;
		return;
	}
	parse_rules(f);
	fclose(f);
}

/* The SQLite error to fail this call with, or SQLITE_OK to let it through. */
static int fault(struct tfile *t, enum op op)
{
	if (!control_path || t->kind == KIND_OTHER)
		return SQLITE_OK;
	static const int ioerr[OP__COUNT] = {SQLITE_IOERR_READ, SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC,
					     SQLITE_IOERR_TRUNCATE};
	int rc = SQLITE_OK;
	long delay_ms = 0;
	pthread_mutex_lock(&lock);
	refresh_rules();
	for (size_t i = 0; i < n_rules; i++) {
		struct rule *r = &rules[i];
		if (r->op != op || r->kind != (int)t->kind || (r->writer_only && !t->writer) || r->remaining == 0)
			continue;
		if (r->remaining > 0)
			r->remaining--;
		delay_ms = r->delay_ms;
		if (r->fails)
			rc = r->full ? SQLITE_FULL : ioerr[op];
		fprintf(stderr, "test_vfs: %s %s %s on %s\n", r->fails ? "injected" : "delayed", op_names[op],
			r->fails ? "fault" : "call", t->kind == KIND_WAL ? "wal" : r->writer_only ? "writer-db" : "db");
		break;
	}
	pthread_mutex_unlock(&lock);
	if (delay_ms > 0)
		usleep((useconds_t)delay_ms * 1000); /* outside the lock: only this call waits */
	return rc;
}

/* --- undo bookkeeping (lock held) ---------------------------------------------------- */

static struct node *node_for(const char *path)
{
	for (struct node *n = nodes; n; n = n->next)
		if (!strcmp(n->path, path))
			return n;
	struct node *n = calloc(1, sizeof(*n));
	if (!n || !(n->path = strdup(path))) {
		free(n);
		return NULL;
	}
	n->next = nodes;
	nodes = n;
	return n;
}

static void undo_clear(struct node *n)
{
	for (size_t i = 0; i < n->n_undo; i++) {
		undo_bytes -= n->undo[i].len;
		free(n->undo[i].bytes);
	}
	n->n_undo = 0;
}

/* Save what [offset, offset + len) and the size are before a change. */
static int undo_save(struct tfile *t, sqlite3_int64 offset, sqlite3_int64 len)
{
	struct node *n = t->node;
	sqlite3_int64 size;
	int rc = t->real->pMethods->xFileSize(t->real, &size);
	if (rc != SQLITE_OK)
		return rc;
	if (n->n_undo == n->cap_undo) {
		size_t cap = n->cap_undo ? n->cap_undo * 2 : 64;
		struct undo *u = realloc(n->undo, cap * sizeof(*u));
		if (!u)
			return SQLITE_NOMEM;
		n->undo = u;
		n->cap_undo = cap;
	}
	struct undo u = {.offset = offset, .old_size = size, .len = 0, .bytes = NULL};
	if (offset < size) {
		sqlite3_int64 keep = size - offset < len ? size - offset : len;
		if (undo_bytes + keep > UNDO_BYTES_MAX || !(u.bytes = malloc((size_t)keep)))
			return SQLITE_NOMEM;
		rc = t->real->pMethods->xRead(t->real, u.bytes, (int)keep, offset);
		if (rc != SQLITE_OK) {
			free(u.bytes);
			return rc;
		}
		u.len = (int)keep;
		undo_bytes += keep;
	}
	n->undo[n->n_undo++] = u;
	return SQLITE_OK;
}

/* --- the power cut ------------------------------------------------------------------- */

static void on_cut_signal(int sig)
{
	int saved = errno;
	char c = 1;
	if (write(cut_pipe[1], &c, 1) < 0) {
		/* Nothing to do in a signal handler; the cut thread is already woken. */
	}
	errno = saved;
}

static void *cut_thread(void *arg)
{
	char c;
	while (read(cut_pipe[0], &c, 1) != 1)
		;
	pthread_mutex_lock(&lock); /* never released: no storage I/O happens after this */
	size_t files = 0, records = 0;
	for (struct node *n = nodes; n; n = n->next) {
		if (!n->n_undo)
			continue;
		int fd = open(n->path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* deleted meanwhile: nothing of it survives anyway */
		for (size_t i = n->n_undo; i-- > 0;) {
			struct undo *u = &n->undo[i];
			if (ftruncate(fd, u->old_size) != 0 ||
			    (u->len && pwrite(fd, u->bytes, (size_t)u->len, u->offset) != u->len)) {
				fprintf(stderr, "test_vfs: power cut: cannot restore %s: %s\n", n->path, strerror(errno));
				_exit(1);
			}
			records++;
		}
		fsync(fd);
		close(fd);
		files++;
	}
	fprintf(stderr, "test_vfs: power cut: %zu files rolled back to their last fsync (%zu writes lost)\n", files,
		records);
	_exit(TEST_VFS_CUT_STATUS);
	return NULL;
}

/* --- io methods ------------------------------------------------------------------------ */

#define REAL(f) (((struct tfile *)(f))->real)

static int t_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
	/* The node stays: what was written and never fsynced is still lost at a cut. */
	return rc;
}

static int t_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	int rc = fault((struct tfile *)f, OP_READ);
	return rc ? rc : REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}

static int t_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
	struct tfile *t = (struct tfile *)f;
	int rc = fault(t, OP_WRITE);
	if (rc)
		return rc;
	pthread_mutex_lock(&lock);
	rc = t->node ? undo_save(t, off, amt) : SQLITE_OK;
	if (rc == SQLITE_OK)
		rc = t->real->pMethods->xWrite(t->real, buf, amt, off);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int t_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct tfile *t = (struct tfile *)f;
	int rc = fault(t, OP_TRUNCATE);
	if (rc)
		return rc;
	pthread_mutex_lock(&lock);
	sqlite3_int64 now_size = 0;
	rc = t->node ? t->real->pMethods->xFileSize(t->real, &now_size) : SQLITE_OK;
	/* Shrinking saves the bytes cut off; growing saves only the size to go back to. */
	if (rc == SQLITE_OK && t->node && size != now_size)
		rc = undo_save(t, size, size < now_size ? now_size - size : 0);
	if (rc == SQLITE_OK)
		rc = t->real->pMethods->xTruncate(t->real, size);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int t_sync(sqlite3_file *f, int flags)
{
	struct tfile *t = (struct tfile *)f;
	int rc = fault(t, OP_SYNC);
	if (rc)
		return rc;
	pthread_mutex_lock(&lock);
	rc = t->real->pMethods->xSync(t->real, flags);
	if (rc == SQLITE_OK && t->node)
		undo_clear(t->node);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int t_file_size(sqlite3_file *f, sqlite3_int64 *size) { return REAL(f)->pMethods->xFileSize(REAL(f), size); }
static int t_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int t_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int t_check_lock(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int t_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int t_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int t_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int t_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, p);
}
static int t_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void t_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int t_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
/* No memory-mapped reads: every page comes through t_read, where faults are injected. */
static int t_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **p)
{
	*p = NULL;
	return SQLITE_OK;
}
static int t_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) { return SQLITE_OK; }

static const sqlite3_io_methods io_methods = {
	3,         t_close,     t_read,        t_write,     t_truncate,    t_sync,
	t_file_size, t_lock,    t_unlock,      t_check_lock, t_file_control, t_sector_size,
	t_device,  t_shm_map,   t_shm_lock,    t_shm_barrier, t_shm_unmap,  t_fetch,
	t_unfetch,
};

/* --- vfs ------------------------------------------------------------------------------ */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct tfile *t = (struct tfile *)f;
	memset(t, 0, sizeof(*t));
	t->real = (sqlite3_file *)(t + 1);
	int rc = real_vfs->xOpen(real_vfs, name, t->real, flags, out_flags);
	if (rc != SQLITE_OK)
		return rc;
	if (name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL))) {
		t->kind = flags & SQLITE_OPEN_MAIN_DB ? KIND_DB : flags & SQLITE_OPEN_WAL ? KIND_WAL : KIND_OTHER;
		t->writer = (flags & SQLITE_OPEN_MAIN_DB) && (flags & SQLITE_OPEN_CREATE);
		pthread_mutex_lock(&lock);
		t->node = node_for(name);
		pthread_mutex_unlock(&lock);
		if (!t->node) {
			t->real->pMethods->xClose(t->real);
			return SQLITE_NOMEM;
		}
	}
	t->base.pMethods = &io_methods;
	return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	pthread_mutex_lock(&lock);
	for (struct node *n = nodes; n; n = n->next)
		if (!strcmp(n->path, name))
			undo_clear(n); /* a deleted file has nothing left to roll back */
	int rc = real_vfs->xDelete(real_vfs, name, sync_dir);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}
static void *v_dlopen(sqlite3_vfs *vfs, const char *name) { return real_vfs->xDlOpen(real_vfs, name); }
static void v_dlerror(sqlite3_vfs *vfs, int n, char *msg) { real_vfs->xDlError(real_vfs, n, msg); }
static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void) { return real_vfs->xDlSym(real_vfs, h, sym); }
static void v_dlclose(sqlite3_vfs *vfs, void *h) { real_vfs->xDlClose(real_vfs, h); }
static int v_randomness(sqlite3_vfs *vfs, int n, char *out) { return real_vfs->xRandomness(real_vfs, n, out); }
static int v_sleep(sqlite3_vfs *vfs, int us) { return real_vfs->xSleep(real_vfs, us); }
static int v_current_time(sqlite3_vfs *vfs, double *out) { return real_vfs->xCurrentTime(real_vfs, out); }
static int v_last_error(sqlite3_vfs *vfs, int n, char *out) { return real_vfs->xGetLastError(real_vfs, n, out); }
static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

int test_vfs_install(const char *name, const char *control, char *why, size_t why_len)
{
	if (strcmp(name, "powercut") != 0) {
		snprintf(why, why_len, "--test-vfs: unknown test storage layer \"%s\" (only \"powercut\")", name);
		return -1;
	}
	if (real_vfs) {
		snprintf(why, why_len, "--test-vfs: already installed");
		return -1;
	}
	real_vfs = sqlite3_vfs_find(NULL);
	if (!real_vfs || real_vfs->iVersion < 2) {
		snprintf(why, why_len, "--test-vfs: no usable default SQLite VFS");
		return -1;
	}
	control_path = control && *control ? control : NULL;
	test_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct tfile) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = "environd-test",
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full_pathname,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_randomness,
		.xSleep = v_sleep,
		.xCurrentTime = v_current_time,
		.xGetLastError = v_last_error,
		.xCurrentTimeInt64 = v_current_time64,
	};
	if (pipe2(cut_pipe, O_CLOEXEC) != 0) {
		snprintf(why, why_len, "--test-vfs: pipe: %s", strerror(errno));
		return -1;
	}
	pthread_t th;
	if (pthread_create(&th, NULL, cut_thread, NULL) != 0) {
		snprintf(why, why_len, "--test-vfs: cannot start the power-cut thread");
		return -1;
	}
	pthread_detach(th);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cut_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) != 0 || sqlite3_vfs_register(&test_vfs, 1) != SQLITE_OK) {
		snprintf(why, why_len, "--test-vfs: cannot register the test storage layer");
		return -1;
	}
	fprintf(stderr, "test_vfs: %s storage layer installed (SIGUSR2 cuts the power)%s%s\n", name,
		control_path ? "; fault rules in " : "", control_path ? control_path : "");
	return 0;
}
