/* poll_hint.h - what this node last learned about an environment's queue: nothing was
 * claimable, and the oldest delivery that a poll could reclaim later. A poll that finds a
 * hint still valid parks without asking the store.
 *
 * A hint is valid only while the environment's wake sequence (waiters_seq) has not moved
 * since the claim that found nothing began: every change that can make an item claimable
 * (an enqueue, a lease that ran out, an undelivered answer), on this node or another, wakes
 * the environment and so moves it. It is also tied to the store's wake epoch (notifications
 * from other nodes were not missed meanwhile) and lives at most POLL_HINT_TTL_US, which
 * bounds the wait for an item whose notification never left a node that died. Bounded;
 * thread-safe. */
#ifndef ENVIROND_API_POLL_HINT_H
#define ENVIROND_API_POLL_HINT_H

#include <stddef.h>
#include <stdint.h>

#define POLL_HINT_TTL_US (5 * 1000000LL)

struct poll_hint;

struct poll_hint *poll_hint_new(size_t max_entries);
void poll_hint_free(struct poll_hint *h);
/* Nothing was claimable in env_id by a claim that began at wake sequence seq; the oldest
 * unacknowledged delivery there (reclaimable later) is oldest_delivered (0 = none). */
void poll_hint_put(struct poll_hint *h, const char *env_id, uint64_t seq, uint64_t epoch, int64_t oldest_delivered,
		   int64_t now_mono);
/* 1 and *oldest_delivered when the hint of env_id holds for seq and epoch at now_mono. */
int poll_hint_get(struct poll_hint *h, const char *env_id, uint64_t seq, uint64_t epoch, int64_t now_mono,
		  int64_t *oldest_delivered);

#endif
