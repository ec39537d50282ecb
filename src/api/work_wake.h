/* work_wake.h - wake the polls a committed store verb named (struct work_wake).
 *
 * The store decides what a commit means for held polls; this is the one place where the
 * API turns that into wake-ups, so handlers never decide it themselves. */
#ifndef ENVIROND_API_WORK_WAKE_H
#define ENVIROND_API_WORK_WAKE_H

#include "api/app.h"

/* `recheck`: every poll held on the environment; else `claimable` of them (the oldest).
 * An all-zero wake does nothing. */
void work_wake_polls(struct app *a, const struct work_wake *w);

#endif
