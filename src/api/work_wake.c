/* work_wake.c - wake the polls a committed store verb named (see work_wake.h), on this
 * node and, in a fleet, on every other. */
#include "api/work_wake.h"

void work_wake_polls(struct app *a, const struct work_wake *w)
{
	if (!w->environment_id[0])
		return;
	if (w->published) /* the other nodes heard it from the commit: wake this one's own */
		app_wake_here(a, w->environment_id, w->recheck ? 0 : w->claimable);
	else if (w->recheck)
		app_wake(a, w->environment_id, 0);
	else if (w->claimable)
		app_wake(a, w->environment_id, w->claimable);
}
