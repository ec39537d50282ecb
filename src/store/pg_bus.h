/* pg_bus.h - wake-ups between the nodes of a fleet (PostgreSQL LISTEN/NOTIFY), and the
 * database's clock as this node's lease clock (pg_bus.c).
 *
 * A node publishes the key of what changed after its commit ("an item became claimable in
 * environment E", "session S has new events"); every other node's deliver callback gets
 * the key and resumes its own held polls and streams waiting under it. Delivery is best
 * effort and at most once: a node that loses its connection delivers key NULL once it is
 * back (wake everything: each waiter looks again for itself), and a publish that never
 * left a node that died leaves other nodes' waiters to their own deadlines. */
#ifndef ENVIROND_STORE_PG_BUS_H
#define ENVIROND_STORE_PG_BUS_H

#include <stddef.h>
#include <stdint.h>

struct pg_bus;

/* key NULL: wake everything. n as waiters_wake's (0 = every waiter of the key). Called on
 * the bus thread. */
typedef void (*pg_bus_deliver_fn)(void *arg, const char *key, size_t n);

/* Start the bus thread on its own connection to url; it waits up to 5 s for its first
 * LISTEN to be in place. NULL when out of memory or threads. */
struct pg_bus *pg_bus_start(const char *url, pg_bus_deliver_fn deliver, void *arg);
/* Queue a wake of key for the other nodes (never blocks on the database). */
void pg_bus_publish(struct pg_bus *b, const char *key, size_t n);
void pg_bus_stop(struct pg_bus *b);
/* 0 and the current epoch while the bus listens (what other nodes publish reaches this
 * node); the epoch moves at every connect and every loss. -1 while it does not listen. */
int pg_bus_epoch(struct pg_bus *b, uint64_t *epoch);
/* 1 while this node is the one that sweeps expired leases and turns (it holds the
 * sweeper's lock on its bus connection; another node takes over within a second of its
 * connection going away). */
int pg_bus_leads(struct pg_bus *b);
/* This node's id, which heads what it publishes (its bus skips its own notifications). */
const char *pg_bus_node(struct pg_bus *b);

#endif
