/* json_bound.c - the pre-parse bound on a JSON body's values and depth (see json_bound.h). */
#include "model/json_bound.h"

#include <stdint.h>

const struct json_bounds json_bounds_body = {JSON_BOUND_DEPTH_MAX, JSON_BOUND_VALUES_MAX};

/* The stack of open containers is one bit per level (1 = object), so its size does not
 * depend on the input; depth past the limit is refused before it is pushed. */
#define STACK_BITS 64

static int scalar_byte(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' ||
	       ch == '+' || ch == '.';
}

enum err json_bound_check(const char *data, size_t len, const struct json_bounds *b, struct errbuf *eb)
{
	size_t max_depth = b->max_depth < STACK_BITS ? b->max_depth : STACK_BITS;
	uint64_t objects = 0; /* bit d set: level d+1 is an object */
	size_t depth = 0, values = 0;
	int in_string = 0, escaped = 0, in_scalar = 0, expect_key = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)data[i];
		if (in_string) {
			if (escaped)
				escaped = 0;
			else if (ch == '\\')
				escaped = 1;
			else if (ch == '"')
				in_string = 0;
			continue;
		}
		if (scalar_byte(ch)) {
			/* A run of number/literal bytes is one value (an object key is a string). */
			if (!in_scalar)
				values++;
			in_scalar = 1;
		} else {
			in_scalar = 0;
			switch (ch) {
			case '"':
				in_string = 1;
				if (!expect_key)
					values++;
				expect_key = 0;
				break;
			case '{':
			case '[':
				values++;
				if (depth >= max_depth)
					return errf(eb, ERR_INVALID, "body: JSON nested deeper than %zu levels (the limit)",
						    b->max_depth);
				if (ch == '{')
					objects |= (uint64_t)1 << depth;
				else
					objects &= ~((uint64_t)1 << depth);
				depth++;
				expect_key = ch == '{';
				break;
			case '}':
			case ']':
				if (depth)
					depth--;
				expect_key = 0;
				break;
			case ',':
				expect_key = depth && (objects >> (depth - 1) & 1);
				break;
			case ':':
				expect_key = 0;
				break;
			default:
				break;
			}
		}
		if (values > b->max_values)
			return errf(eb, ERR_INVALID, "body: more than %zu JSON values (the limit)", b->max_values);
	}
	return ERR_OK;
}
