/* router.h - match a method and path against a route table.
 *
 * Patterns are paths whose segments are literals or "*" (one segment). Literal segments
 * win over "*": of all patterns matching a path, the one with a literal at the first
 * position where they differ is chosen, so /work/poll is never taken for /work/{id}. Then
 * the method picks the route among those with that pattern; none → 405 with Allow.
 * The path is the raw one as sent: it is split at "/" first, then each segment is
 * percent-decoded, so "%2F" never becomes a separator; a bad escape or "%00" is no route.
 * HEAD picks the GET route; the caller refuses it where the GET is not a pure read. */
#ifndef ENVIROND_HTTP_ROUTER_H
#define ENVIROND_HTTP_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 4
#define ROUTER_PARAM_MAX 256
#define ROUTER_ALLOW_MAX 64

struct route {
	const char *method;
	const char *pattern;
};

struct route_match {
	size_t index;                                   /* matched row, when found */
	size_t nparams;
	char params[ROUTER_MAX_PARAMS][ROUTER_PARAM_MAX]; /* the "*" segments, in order */
	char allow[ROUTER_ALLOW_MAX];                   /* methods of the path, for a 405 */
};

enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

/* `routes` is an array of `count` rows, each `stride` bytes long, starting with a struct route. */
enum router_result router_match(const void *routes, size_t count, size_t stride, const char *method,
				const char *path, struct route_match *m);

#endif
