/* fuzz_route.c - libFuzzer target: the router on arbitrary methods and paths. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"

static const struct route routes[] = {
	{"GET", "/v1/environments"},          {"POST", "/v1/environments"},
	{"GET", "/v1/environments/*"},        {"POST", "/v1/environments/*/work"},
	{"GET", "/v1/environments/*/work/poll"}, {"GET", "/v1/environments/*/work/*"},
	{"POST", "/v1/environments/*/work/*/ack"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	const char *method = size && data[0] & 1 ? "POST" : "GET";
	struct route_match m;
	if (router_match(routes, sizeof(routes) / sizeof(routes[0]), sizeof(routes[0]), method, text, &m) ==
	    ROUTER_FOUND) {
		if (m.index >= sizeof(routes) / sizeof(routes[0]) || m.nparams > ROUTER_MAX_PARAMS)
			__builtin_trap();
		for (size_t i = 0; i < m.nparams; i++)
			if (!m.params[i][0])
				__builtin_trap();
	}
	free(text);
	return 0;
}
