/* work_wake.c - wake the polls a committed store verb named (see work_wake.h), on this
 * node and, in a fleet, on every other. */
#include "api/work_wake.h"

void work_wake_polls(struct app *a, const struct work_wake *w)
{
	if (!w->environment_id[0])
		return;
	if (w->recheck)
		app_wake(a, w->environment_id, 0);
	else if (w->claimable)
		app_wake(a, w->environment_id, w->claimable);
}
