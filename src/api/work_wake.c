/* work_wake.c - wake the polls a committed store verb named (see work_wake.h). */
#include "api/work_wake.h"

void work_wake_polls(struct app *a, const struct work_wake *w)
{
	if (!w->environment_id[0])
		return;
	if (w->recheck)
		waiters_wake(a->waiters, w->environment_id, 0);
	else if (w->claimable)
		waiters_wake(a->waiters, w->environment_id, w->claimable);
}
