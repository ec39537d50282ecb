/* clock.h - the one time seam. Wall time (µs since the Unix epoch) is what gets persisted;
 * monotonic time (µs) is what in-memory deadlines use. The two are never compared.
 * Lease time is wall time that a running process cannot see jump: it is anchored to the
 * wall clock once, then moves only with the monotonic clock.
 * Unit tests install a fake clock with clock_set_fake(); a server started for tests
 * (`environd serve --test-clock`) moves its clocks with clock_test_advance() and
 * clock_test_step_wall(). */
#ifndef ENVIROND_CLOCK_H
#define ENVIROND_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_wall_us(void);
int64_t clock_mono_us(void);

/* "Now" for lease decisions (delivery, reclaim, ack, heartbeat, expiry): wall µs taken
 * once at the first call (or clock_lease_anchor()), then advanced by the monotonic clock
 * only. A step of the system clock therefore never moves a lease in a running process;
 * the step is taken into account at the next start, when the anchor is read again. */
int64_t clock_lease_us(void);
/* Read the anchor now (a server calls it at start). */
void clock_lease_anchor(void);

/* Anchor lease time to another clock: `ref_us` is that clock's reading taken when this
 * process's clock_mono_us() read `mono_mid_us`. A node of a fleet follows the database's
 * clock this way, so that nodes need not agree on time; the test clock's advances still
 * apply on top. */
void clock_lease_follow(int64_t ref_us, int64_t mono_mid_us);

/* Test seam of a running server: clock_test_advance() moves wall and monotonic time (and
 * so lease time) forward by `us`; clock_test_step_wall() steps the wall clock alone by
 * `us` (either sign), as an NTP step or an operator's `date -s` would. Both are offsets
 * on the real clocks, never enabled outside tests (see cmd_serve.c). */
void clock_test_advance(int64_t us);
void clock_test_step_wall(int64_t us);
/* The offsets in force: *advanced_us (both clocks) and *wall_step_us (wall only). */
void clock_test_offsets(int64_t *advanced_us, int64_t *wall_step_us);

/* Install a fake clock: both readings then return *wall_us / *mono_us (the caller owns
 * the storage and moves it). Pass NULLs to go back to the real clocks. The lease anchor is
 * read again at the next clock_lease_us(). */
void clock_set_fake(const int64_t *wall_us, const int64_t *mono_us);

#define CLOCK_TS_LEN 27 /* "2026-11-28T15:34:17.123456Z" */

/* Format wall µs as RFC 3339 UTC with exactly 6 fractional digits and 'Z'.
 * out must hold CLOCK_TS_LEN + 1 bytes. */
void clock_format(int64_t wall_us, char out[CLOCK_TS_LEN + 1]);

/* Parse an RFC 3339 timestamp (any fractional precision up to 9 digits, 'Z' or ±hh:mm
 * offset) into wall µs. Returns 0 on success, -1 if the text is not such a timestamp. */
int clock_parse(const char *text, size_t len, int64_t *wall_us);

#endif
