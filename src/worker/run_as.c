/* run_as.c - commands under another user (--run-as): who that is, and the per-item working
 * directory handed over to it. */
#include "worker/run_as.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int run_as_resolve(const char *user, struct worker_run_as *ra, char *err, size_t errlen)
{
	memset(ra, 0, sizeof(*ra));
	if (!*user || strlen(user) >= sizeof(ra->name)) {
		snprintf(err, errlen, "--run-as needs a user name or uid of 1 to %zu characters", sizeof(ra->name) - 1);
		return -1;
	}
	struct passwd pw, *found = NULL;
	char buf[16384];
	int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &found);
	if (!found) {
		/* A number that names no entry by name may still be a uid. */
		char *end;
		errno = 0;
		unsigned long uid = strtoul(user, &end, 10);
		if (!errno && end != user && !*end)
			rc = getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &found);
	}
	if (!found) {
		snprintf(err, errlen, "--run-as %s: no such user%s%s", user, rc ? ": " : "", rc ? strerror(rc) : "");
		return -1;
	}
	if (geteuid() != 0) {
		snprintf(err, errlen, "--run-as %s: only a worker running as root can run commands as another user",
			 user);
		return -1;
	}
	if (found->pw_uid == 0) {
		snprintf(err, errlen, "--run-as %s: that is root; leave --run-as out to run commands as root", user);
		return -1;
	}
	snprintf(ra->name, sizeof(ra->name), "%s", found->pw_name);
	snprintf(ra->home, sizeof(ra->home), "%s", found->pw_dir && *found->pw_dir ? found->pw_dir : "/");
	ra->uid = found->pw_uid;
	ra->gid = found->pw_gid;
	int n = WORKER_MAX_GROUPS;
	if (getgrouplist(found->pw_name, found->pw_gid, ra->groups, &n) < 0) {
		snprintf(err, errlen, "--run-as %s: the user is in more than %d groups", user, WORKER_MAX_GROUPS);
		return -1;
	}
	ra->ngroups = n;
	return 0;
}

/* A work id as one path component: the characters ids are made of, no dot files. */
static int safe_component(const char *id)
{
	if (!*id || *id == '.' || strlen(id) > 200)
		return 0;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-' || *p == '.'))
			return 0;
	return 1;
}

int run_as_item_dir(const struct worker_run_as *ra, const char *base, const char *work_id, char *out,
		    size_t outlen, char *err, size_t errlen)
{
	if (!safe_component(work_id)) {
		snprintf(err, errlen, "work id is not usable as a directory name");
		return -1;
	}
	int parent = open(base ? base : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (parent < 0) {
		snprintf(err, errlen, "cannot open the working directory: %s", strerror(errno));
		return -1;
	}
	int rc = -1;
	if (mkdirat(parent, work_id, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create the item's directory: %s", strerror(errno));
		goto out;
	}
	/* Opened without following a link, and changed through the descriptor: a link or a
	 * directory planted there by someone else is refused, never chowned. */
	int dir = openat(parent, work_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0) {
		snprintf(err, errlen, "cannot open the item's directory: %s", strerror(errno));
		goto out;
	}
	struct stat st;
	if (fstat(dir, &st) != 0 || (st.st_uid != geteuid() && st.st_uid != ra->uid)) {
		snprintf(err, errlen, "the item's directory exists and belongs to another user");
	} else if (fchown(dir, ra->uid, ra->gid) != 0 || fchmod(dir, 0700) != 0) {
		snprintf(err, errlen, "cannot hand the item's directory to %s: %s", ra->name, strerror(errno));
	} else {
		int n = snprintf(out, outlen, "%s/%s", base ? base : ".", work_id);
		if (n < 0 || (size_t)n >= outlen)
			snprintf(err, errlen, "the item's directory path is too long");
		else
			rc = 0;
	}
	close(dir);
out:
	close(parent);
	return rc;
}
