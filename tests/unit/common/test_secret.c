/* test_secret.c - unit tests of hashing, HMAC, comparison and base64url (src/common/secret.c).
 *
 * Known-answer vectors are FIPS 180-2 (SHA-256) and RFC 4231 (HMAC-SHA256) and RFC 4648
 * (base64, with the URL alphabet and no padding). base64url must be a bijection: every
 * text has at most one decoding, so a cursor cannot be altered into an equivalent one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/secret.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* ---- SHA-256 and HMAC --------------------------------------------------------------- */

static void test_sha256_vectors(void **state)
{
	char out[SECRET_HASH_HEX + 1];
	memset(out, 'x', sizeof(out));
	secret_sha256_hex("abc", 3, out);
	assert_string_equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", out);
	secret_sha256_hex("", 0, out);
	assert_string_equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", out);
	const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	secret_sha256_hex(two_blocks, strlen(two_blocks), out);
	assert_string_equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", out);
	char *million = malloc(1000000);
	assert_non_null(million);
	memset(million, 'a', 1000000);
	secret_sha256_hex(million, 1000000, out);
	free(million);
	assert_string_equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", out);
	/* Only `len` bytes are hashed. */
	secret_sha256_hex("abcdef", 3, out);
	assert_string_equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", out);
}

static void test_hmac_vectors(void **state)
{
	unsigned char mac[32];
	char text[65];
	/* RFC 4231 test case 2. */
	const char *data = "what do ya want for nothing?";
	secret_hmac("Jefe", 4, data, strlen(data), mac);
	hex(mac, 32, text);
	assert_string_equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", text);
	/* RFC 4231 test case 6: a key longer than the block. */
	unsigned char key[131];
	memset(key, 0xaa, sizeof(key));
	data = "Test Using Larger Than Block-Size Key - Hash Key First";
	secret_hmac(key, sizeof(key), data, strlen(data), mac);
	hex(mac, 32, text);
	assert_string_equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", text);
}

static void test_equal(void **state)
{
	unsigned char a[32], b[32];
	for (int i = 0; i < 32; i++)
		a[i] = b[i] = (unsigned char)(i * 13);
	assert_int_equal(1, secret_equal(a, b, 32));
	assert_int_equal(1, secret_equal(a, b, 0));
	for (int i = 0; i < 32; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (unsigned char)(1 << bit);
			assert_int_equal(0, secret_equal(a, b, 32));
			/* A difference past len does not count. */
			assert_int_equal(1, secret_equal(a, b, (size_t)i));
			b[i] ^= (unsigned char)(1 << bit);
		}
	}
	assert_int_equal(1, secret_equal(a, b, 32));
}

static void test_random(void **state)
{
	unsigned char a[32], b[32], zero[32] = {0};
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(0, secret_random(a, sizeof(a)));
	assert_int_equal(0, secret_random(b, sizeof(b)));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_int_equal(0, secret_random(a, 0));
	/* A large request is filled completely (getrandom may return short). */
	size_t n = 1 << 20;
	unsigned char *big = calloc(1, n);
	assert_non_null(big);
	assert_int_equal(0, secret_random(big, n));
	size_t zeros = 0;
	for (size_t i = n - 4096; i < n; i++)
		zeros += big[i] == 0;
	assert_true(zeros < 64); /* about 16 expected */
	free(big);
}

/* ---- base64url ---------------------------------------------------------------------- */

static void test_b64url_vectors(void **state)
{
	const struct {
		const char *data;
		const char *text;
	} cases[] = {{"", ""},          {"f", "Zg"},         {"fo", "Zm8"},         {"foo", "Zm9v"},
		     {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[32];
		unsigned char back[32];
		size_t n = strlen(cases[i].data);
		assert_int_equal(strlen(cases[i].text), b64url_encode(cases[i].data, n, text));
		assert_string_equal(cases[i].text, text);
		assert_int_equal(n, b64url_decode(cases[i].text, strlen(cases[i].text), back, sizeof(back)));
		assert_memory_equal(cases[i].data, back, n);
	}
	/* The URL alphabet: 62 and 63 are '-' and '_'. */
	const unsigned char high[] = {0xfb, 0xff, 0xbf};
	char text[8];
	b64url_encode(high, 3, text);
	assert_string_equal("-_-_", text);
	b64url_encode(high, 2, text);
	assert_string_equal("-_8", text);
}

static void test_b64url_round_trip(void **state)
{
	unsigned char data[64], back[64];
	char text[128];
	uint32_t x = 2463534242u;
	for (int pattern = 0; pattern < 4; pattern++) {
		for (size_t n = 0; n <= 64; n++) {
			for (size_t i = 0; i < n; i++) {
				x ^= x << 13;
				x ^= x >> 17;
				x ^= x << 5;
				data[i] = pattern == 0 ? (unsigned char)x
					: pattern == 1 ? 0x00
					: pattern == 2 ? 0xff
						       : (unsigned char)i;
			}
			memset(text, 'x', sizeof(text));
			size_t len = b64url_encode(data, n, text);
			assert_int_equal(b64url_len(n), len);
			assert_int_equal(len, strlen(text));
			assert_int_equal(len, strspn(text, b64url));
			assert_int_equal(n * 4 / 3 + (n % 3 ? 1 : 0), len);
			memset(back, 0x5a, sizeof(back));
			assert_int_equal(n, b64url_decode(text, len, back, sizeof(back)));
			assert_memory_equal(data, back, n);
			/* Exactly enough room is enough; one byte less is not. */
			assert_int_equal(n, b64url_decode(text, len, back, n));
			if (n > 0)
				assert_int_equal(-1, b64url_decode(text, len, back, n - 1));
		}
	}
}

static void test_b64url_invalid(void **state)
{
	unsigned char out[64];
	const char *bad[] = {"Zm9v+", "Zm9v/A", "Zm9=", "Zm8=", "Zg==", "Zm 9v", "Zm9v\n", "Zm\xc3\xa9", "*AAA",
			     "AA.A"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out)) != -1)
			fail_msg("\"%s\" decoded", bad[i]);
	/* NUL is not a character of the alphabet, even inside len. */
	assert_int_equal(-1, b64url_decode("Zm\0v", 4, out, sizeof(out)));
	/* Every byte outside the alphabet, in every position of a 4-character group. */
	for (int c = 0; c < 256; c++) {
		if (c && strchr(b64url, c))
			continue;
		for (int pos = 0; pos < 4; pos++) {
			char text[4] = {'A', 'A', 'A', 'A'};
			text[pos] = (char)c;
			assert_int_equal(-1, b64url_decode(text, 4, out, sizeof(out)));
		}
	}
	/* A length of 4k+1 cannot be produced by the encoder. */
	for (size_t len = 1; len <= 61; len += 4) {
		char text[64];
		memset(text, 'A', len);
		assert_int_equal(-1, b64url_decode(text, len, out, sizeof(out)));
	}
}

/* The bits below the last whole byte must be zero: "Zg" is "f", "Zh" is not a text the
 * encoder makes and is refused. */
static void test_b64url_canonical(void **state)
{
	unsigned char out[8];
	for (size_t v = 0; v < 64; v++) {
		char two[2] = {'Z', b64url[v]};
		long want = (v & 15) == 0 ? 1 : -1;
		assert_int_equal(want, b64url_decode(two, 2, out, sizeof(out)));
		char three[3] = {'Z', 'm', b64url[v]};
		want = (v & 3) == 0 ? 2 : -1;
		assert_int_equal(want, b64url_decode(three, 3, out, sizeof(out)));
		char six[6] = {'Z', 'm', '9', 'v', 'Y', b64url[v]};
		want = (v & 15) == 0 ? 4 : -1;
		assert_int_equal(want, b64url_decode(six, 6, out, sizeof(out)));
	}
	/* Hence decoding then encoding gives back the same text, for every 2- and 3-character text. */
	for (size_t a = 0; a < 64; a++) {
		for (size_t b = 0; b < 64; b++) {
			char text[3] = {b64url[a], b64url[b], 'A'}, again[8];
			long n = b64url_decode(text, 2, out, sizeof(out));
			if (n >= 0) {
				b64url_encode(out, (size_t)n, again);
				assert_memory_equal(text, again, 2);
			}
			n = b64url_decode(text, 3, out, sizeof(out));
			assert_int_equal(2, n);
			b64url_encode(out, 2, again);
			assert_memory_equal(text, again, 3);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_hmac_vectors),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_round_trip),
		cmocka_unit_test(test_b64url_invalid),
		cmocka_unit_test(test_b64url_canonical),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
