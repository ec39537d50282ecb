/* router.c - route table matching (see router.h). */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

#include "common/utf8.h"

#define MAX_SEGMENTS 8

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode one segment into out (ROUTER_PARAM_MAX bytes). -1 for a bad escape, a
 * NUL (which would cut the id short: "env_a%00x" must not find env_a) or bytes that are
 * not UTF-8 (no id is, and a store whose text is UTF-8 would refuse them). */
static int decode(const char *seg, size_t len, char *out, size_t *out_len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = seg[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			int hi = hexval(seg[i + 1]), lo = hexval(seg[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*out_len = o;
	return utf8_valid(out, o) ? 0 : -1;
}

/* Split "/a/b/c" into segments; -1 for an empty segment, too many or too long ones. */
static int split(const char *path, const char *seg[MAX_SEGMENTS], size_t len[MAX_SEGMENTS])
{
	if (path[0] != '/')
		return -1;
	int n = 0;
	const char *p = path + 1;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);
		if (l == 0 || l >= ROUTER_PARAM_MAX || n == MAX_SEGMENTS)
			return -1;
		seg[n] = p;
		len[n] = l;
		n++;
		if (!slash)
			return n;
		p = slash + 1;
	}
}

/* Does pattern match the segments? Fills a literal mask (bit i = literal at segment i). */
static int matches(const char *pattern, const char *seg[], const size_t len[], int n, unsigned *literal_mask)
{
	const char *pseg[MAX_SEGMENTS];
	size_t plen[MAX_SEGMENTS];
	int pn = split(pattern, pseg, plen);
	if (pn != n)
		return 0;
	*literal_mask = 0;
	for (int i = 0; i < n; i++) {
		if (plen[i] == 1 && pseg[i][0] == '*')
			continue;
		if (plen[i] != len[i] || memcmp(pseg[i], seg[i], len[i]) != 0)
			return 0;
		*literal_mask |= 1u << (MAX_SEGMENTS - 1 - i); /* earlier literals weigh more */
	}
	return 1;
}

enum router_result router_match(const void *routes, size_t count, size_t stride, const char *method,
				const char *path, struct route_match *m)
{
	memset(m, 0, sizeof(*m));
	const char *raw[MAX_SEGMENTS];
	size_t rawlen[MAX_SEGMENTS];
	int n = split(path, raw, rawlen);
	if (n < 0)
		return ROUTER_NOT_FOUND;
	/* Split first, then decode: an encoded "/" stays inside its segment. */
	char dec[MAX_SEGMENTS][ROUTER_PARAM_MAX];
	const char *seg[MAX_SEGMENTS];
	size_t len[MAX_SEGMENTS];
	for (int i = 0; i < n; i++) {
		if (decode(raw[i], rawlen[i], dec[i], &len[i]))
			return ROUTER_NOT_FOUND;
		seg[i] = dec[i];
	}
	const char *best = NULL;
	unsigned best_mask = 0;
	for (size_t i = 0; i < count; i++) {
		const struct route *r = (const struct route *)((const char *)routes + i * stride);
		unsigned mask;
		if (matches(r->pattern, seg, len, n, &mask) && (!best || mask > best_mask)) {
			best = r->pattern;
			best_mask = mask;
		}
	}
	if (!best)
		return ROUTER_NOT_FOUND;
	int found = 0;
	int head = strcmp(method, "HEAD") == 0;
	for (size_t i = 0; i < count; i++) {
		const struct route *r = (const struct route *)((const char *)routes + i * stride);
		if (strcmp(r->pattern, best) != 0)
			continue;
		size_t used = strlen(m->allow);
		snprintf(m->allow + used, sizeof(m->allow) - used, "%s%s", used ? ", " : "", r->method);
		if (!found && (strcmp(r->method, method) == 0 || (head && strcmp(r->method, "GET") == 0))) {
			m->index = i;
			found = 1;
		}
	}
	if (!found)
		return ROUTER_METHOD_NOT_ALLOWED;
	for (int i = 0; i < n; i++) {
		if (best_mask & (1u << (MAX_SEGMENTS - 1 - i)))
			continue;
		if (m->nparams < ROUTER_MAX_PARAMS) {
			memcpy(m->params[m->nparams], seg[i], len[i]);
			m->params[m->nparams][len[i]] = '\0';
			m->nparams++;
		}
	}
	return ROUTER_FOUND;
}
