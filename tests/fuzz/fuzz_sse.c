/* fuzz_sse.c - libFuzzer target: the SSE parser on arbitrary bytes, fed whole and cut in
 * three at offsets taken from the input; both feedings must dispatch the same events. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/sse.h"

struct digest {
	uint64_t hash;
	size_t events;
};

static int on_event(const struct sse_event *ev, void *userdata)
{
	struct digest *d = userdata;
	if (strlen(ev->data) > ev->data_len || strlen(ev->id) > SSE_ID_MAX || strlen(ev->type) > SSE_TYPE_MAX)
		__builtin_trap();
	const char *parts[3] = {ev->id, ev->type, ev->data};
	size_t lens[3] = {strlen(ev->id), strlen(ev->type), ev->data_len};
	for (int p = 0; p < 3; p++)
		for (size_t i = 0; i < lens[p]; i++)
			d->hash = (d->hash ^ (unsigned char)parts[p][i]) * 1099511628211ULL;
	d->hash = (d->hash ^ 0xFF) * 1099511628211ULL;
	d->events++;
	return 0;
}

static enum sse_result run(const char *bytes, size_t len, size_t a, size_t b, struct digest *d)
{
	struct sse_parser p;
	sse_init(&p, 512, 2048, NULL, on_event, NULL, d);
	sse_feed(&p, bytes, a);
	sse_feed(&p, bytes + a, b - a);
	enum sse_result r = sse_feed(&p, bytes + b, len - b);
	sse_free(&p);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t len = size - 2;
	const char *bytes = (const char *)data + 2;
	size_t a = len ? data[0] % (len + 1) : 0, b = len ? data[1] % (len + 1) : 0;
	if (a > b) {
		size_t t = a;
		a = b;
		b = t;
	}
	struct digest whole = {14695981039346656037ULL, 0}, cut = whole;
	enum sse_result r1 = run(bytes, len, 0, 0, &whole);
	enum sse_result r2 = run(bytes, len, a, b, &cut);
	if (r1 != r2 || whole.hash != cut.hash || whole.events != cut.events)
		__builtin_trap();
	return 0;
}
