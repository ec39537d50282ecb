/* fuzz_cursor.c - libFuzzer target: the text parsers that take client input outside
 * bodies: page cursors, RFC 3339 timestamps (expected_last_heartbeat) and base64url. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/secret.h"
#include "model/cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	static const unsigned char key[CURSOR_KEY_LEN] = {1, 2, 3};
	struct cursor c;
	struct errbuf eb;
	if (cursor_decode(key, "work", "env_x", text, &c, &eb) == ERR_OK) {
		/* Only a cursor we made decodes, and it encodes back to the same text. */
		char again[CURSOR_TEXT_MAX];
		cursor_encode(key, "work", "env_x", &c, again);
		if (strcmp(again, text) != 0)
			__builtin_trap();
	}
	int64_t us;
	if (clock_parse(text, size, &us) == 0) {
		char ts[CLOCK_TS_LEN + 1];
		clock_format(us, ts);
		int64_t back;
		if (us >= 0 && us < 253402300800000000LL && (clock_parse(ts, CLOCK_TS_LEN, &back) || back != us))
			__builtin_trap();
	}
	unsigned char out[512];
	b64url_decode(text, size, out, sizeof(out));
	free(text);
	return 0;
}
