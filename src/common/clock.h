/* clock.h - the one time seam. Wall time (µs since the Unix epoch) is what gets persisted;
 * monotonic time (µs) is what in-memory deadlines use. The two are never compared.
 * Tests install a fake clock with clock_set_fake(). */
#ifndef ENVIROND_CLOCK_H
#define ENVIROND_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_wall_us(void);
int64_t clock_mono_us(void);

/* Install a fake clock: both readings then return *wall_us / *mono_us (the caller owns
 * the storage and moves it). Pass NULLs to go back to the real clocks. */
void clock_set_fake(const int64_t *wall_us, const int64_t *mono_us);

#define CLOCK_TS_LEN 27 /* "2026-11-28T15:34:17.123456Z" */

/* Format wall µs as RFC 3339 UTC with exactly 6 fractional digits and 'Z'.
 * out must hold CLOCK_TS_LEN + 1 bytes. */
void clock_format(int64_t wall_us, char out[CLOCK_TS_LEN + 1]);

/* Parse an RFC 3339 timestamp (any fractional precision up to 9 digits, 'Z' or ±hh:mm
 * offset) into wall µs. Returns 0 on success, -1 if the text is not such a timestamp. */
int clock_parse(const char *text, size_t len, int64_t *wall_us);

#endif
