/* test_framing.c - unit tests of the request-head checks (src/http/framing.c).
 *
 * Header lists as libmicrohttpd hands them over: names and values, and for the layout
 * check a raw head parsed in place (line ends and colons overwritten with NUL bytes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http/framing.h"

#define H(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static void ok_list(const struct framing_header *h, size_t n, struct framing *f)
{
	if (framing_check(h, n, NULL, 0, f) != 0)
		fail_msg("refused: %s", f->why);
}

static void refused(int line, const struct framing_header *h, size_t n, const char *why_part)
{
	struct framing f;
	if (framing_check(h, n, NULL, 0, &f) == 0)
		fail_msg("line %d: accepted", line);
	if (!strstr(f.why, why_part))
		fail_msg("line %d: why \"%s\" lacks \"%s\"", line, f.why, why_part);
}
#define assert_refused(h, why) refused(__LINE__, h, sizeof(h) / sizeof(h[0]), why)

static void test_plain_requests(void **state)
{
	struct framing f;
	const struct framing_header none[] = {H("Host", "x")};
	ok_list(none, 1, &f);
	assert_false(f.has_length);
	assert_false(f.chunked);
	const struct framing_header cl[] = {H("Host", "x"), H("content-length", "1048576"), H("Expect", "100-continue")};
	ok_list(cl, 3, &f);
	assert_true(f.has_length);
	assert_int_equal(1048576, f.content_length);
	assert_true(f.expect_continue);
	const struct framing_header te[] = {H("Host", "x"), H("Transfer-Encoding", "Chunked")};
	ok_list(te, 2, &f);
	assert_true(f.chunked);
	const struct framing_header tokens[] = {H("X-a!#$%&'*+-.^_`|~09", "v")};
	ok_list(tokens, 1, &f);
}

static void test_smuggling_shapes(void **state)
{
	const struct framing_header cl_cl[] = {H("Content-Length", "0"), H("Content-Length", "0")};
	assert_refused(cl_cl, "Content-Length given more than once");
	const struct framing_header cl_te[] = {H("Content-Length", "5"), H("Transfer-Encoding", "chunked")};
	assert_refused(cl_te, "must not both be given");
	const struct framing_header te_cl[] = {H("Transfer-Encoding", "chunked"), H("content-length", "4")};
	assert_refused(te_cl, "must not both be given");
	const struct framing_header te_te[] = {H("Transfer-Encoding", "chunked"), H("transfer-encoding", "chunked")};
	assert_refused(te_te, "given more than once");
	const struct framing_header gzip[] = {H("Transfer-Encoding", "gzip")};
	assert_refused(gzip, "only \"chunked\"");
	const struct framing_header list[] = {H("Transfer-Encoding", "chunked, identity")};
	assert_refused(list, "only \"chunked\"");
	const struct framing_header space[] = {H("Transfer-Encoding ", "chunked")};
	assert_refused(space, "not allowed in a name");
	const struct framing_header tab[] = {H("Content\tLength", "3")};
	assert_refused(tab, "not allowed in a name");
	const struct framing_header empty[] = {H("", "v")};
	assert_refused(empty, "empty header name");
	const struct framing_header cr[] = {H("X-a", "b\rc")};
	assert_refused(cr, "NUL, CR or LF");
	const struct framing_header nul[] = {{"X-a", 3, "b\0c", 3}};
	assert_refused(nul, "NUL, CR or LF");
	const struct framing_header sign[] = {H("Content-Length", "+5")};
	assert_refused(sign, "decimal number");
	const struct framing_header huge[] = {H("Content-Length", "99999999999999999999")};
	assert_refused(huge, "decimal number");
	const struct framing_header blank[] = {H("Content-Length", "")};
	assert_refused(blank, "decimal number");
}

static void test_single_headers(void **state)
{
	const struct framing_header host[] = {H("Host", "a"), H("HOST", "b")};
	assert_refused(host, "HOST given more than once");
	const struct framing_header key[] = {H("x-api-key", "a"), H("X-Api-Key", "a")};
	assert_refused(key, "given more than once");
	const struct framing_header bearer[] = {H("Authorization", "Bearer a"), H("authorization", "Bearer b")};
	assert_refused(bearer, "given more than once");
	struct framing f;
	const struct framing_header others[] = {H("Accept", "a"), H("accept", "b"), H("anthropic-beta", "x")};
	ok_list(others, 3, &f);
}

/* A head parsed in place: "GET / HTTP/1.1\r\nHost: x\r\nx-api-key: K<tail>\r\n\r\n". */
struct parsed {
	char buf[256];
	size_t len;
	struct framing_header h[2];
};

static void parse_in_place(struct parsed *p, const char *tail, size_t tail_len)
{
	size_t o = 0;
	memcpy(p->buf, "GET\0/\0HTTP/1.1\0\0", 16);
	o = 16;
	p->h[0].name = p->buf + o;
	memcpy(p->buf + o, "Host\0 x\0\0", 9);
	p->h[0].name_len = 4;
	p->h[0].value = p->buf + o + 6;
	p->h[0].value_len = 1;
	o += 9;
	p->h[1].name = p->buf + o;
	memcpy(p->buf + o, "x-api-key\0 K", 12);
	p->h[1].name_len = 9;
	p->h[1].value = p->buf + o + 11;
	p->h[1].value_len = 1; /* strlen stops at a NUL in the tail */
	o += 12;
	memcpy(p->buf + o, tail, tail_len);
	o += tail_len;
	memcpy(p->buf + o, "\0\0\0\0", 4); /* the line's CRLF and the blank line */
	o += 4;
	p->len = o;
}

static int check_parsed(struct parsed *p, struct framing *f)
{
	return framing_check(p->h, 2, p->buf, p->len, f);
}

static void test_nul_in_values(void **state)
{
	struct parsed p;
	struct framing f;
	parse_in_place(&p, "", 0);
	assert_int_equal(0, check_parsed(&p, &f));
	parse_in_place(&p, "\0junk", 5);
	assert_int_equal(-1, check_parsed(&p, &f));
	assert_non_null(strstr(f.why, "x-api-key: value contains a NUL byte"));
	/* NULs alone are not enough to hide bytes after them. */
	parse_in_place(&p, "\0\0\0\0j", 5);
	assert_int_equal(-1, check_parsed(&p, &f));
	/* A NUL in a header that is not the last one. */
	parse_in_place(&p, "", 0);
	p.h[0].value_len = 0;
	assert_int_equal(-1, check_parsed(&p, &f));
	/* A header outside the raw head (a folded line copied elsewhere). */
	parse_in_place(&p, "", 0);
	static const char elsewhere[] = "K";
	p.h[1].value = elsewhere;
	assert_int_equal(-1, check_parsed(&p, &f));
	assert_non_null(strstr(f.why, "folded"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_requests),
		cmocka_unit_test(test_smuggling_shapes),
		cmocka_unit_test(test_single_headers),
		cmocka_unit_test(test_nul_in_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
