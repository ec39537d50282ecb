/* run_as.h - commands under another user (--run-as). */
#ifndef ENVIROND_WORKER_RUN_AS_H
#define ENVIROND_WORKER_RUN_AS_H

#include <stddef.h>

#include "worker/worker.h"

/* Look up user (a name, or a uid) and its groups into ra. Refused for root, and when the
 * worker is not root (only root can change user). Returns 0, or -1 with a reason. */
int run_as_resolve(const char *user, struct worker_run_as *ra, char *err, size_t errlen);

/* The directory an item's command runs in under --run-as: BASE/WORK_ID (BASE NULL: the
 * current directory), created if need be, owned by the user, mode 0700. A redelivered
 * item finds its directory again. Returns 0 with the path in out, or -1 with a reason. */
int run_as_item_dir(const struct worker_run_as *ra, const char *base, const char *work_id, char *out,
		    size_t outlen, char *err, size_t errlen);

#endif
