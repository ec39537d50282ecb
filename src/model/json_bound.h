/* json_bound.h - a cheap pass over a raw JSON body that bounds what parsing it would cost.
 *
 * A parser such as jansson allocates a node (and, for an object, a hash table) per value,
 * so a 1 MiB body of `[{},{},…]` costs tens of megabytes of heap. Before any body is
 * parsed, json_bound_check() counts its values and its nesting depth in one pass over the
 * bytes (string-aware: brackets and commas inside strings do not count) and refuses a
 * body over either limit. It never under-counts what a parser would allocate for the same
 * bytes; it does not validate JSON (the parser does that afterwards). */
#ifndef ENVIROND_MODEL_JSON_BOUND_H
#define ENVIROND_MODEL_JSON_BOUND_H

#include <stddef.h>

#include "common/err.h"

/* Nesting depth of the deepest body any route takes is 5 (config.networking.allowed_hosts[i]);
 * the largest legitimate environment body has about 2,100 values (seven package lists
 * and the host list of 256 each, metadata). The limits leave room above both. */
#define JSON_BOUND_DEPTH_MAX 32
#define JSON_BOUND_VALUES_MAX 10000

struct json_bounds {
	size_t max_depth;  /* containers nested deeper than this are refused */
	size_t max_values; /* more values (objects, arrays, strings, numbers, literals) are refused */
};

/* The default bounds of a request body. */
extern const struct json_bounds json_bounds_body;

/* ERR_OK when the len bytes at data stay within b; else ERR_INVALID with a message that
 * names the body and the limit ("body: more than 10000 JSON values (the limit)"). */
enum err json_bound_check(const char *data, size_t len, const struct json_bounds *b, struct errbuf *eb);

#endif
