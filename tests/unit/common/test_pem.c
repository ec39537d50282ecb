/* test_pem.c - unit tests of PEM file reading and checks (src/common/pem.c) and of the
 * server's TLS file rules (src/http/tls_files.c).
 *
 * Keys and certificates are made with libcrypto at run time (nothing secret in the tree):
 * a pair that matches, a key that does not, an encrypted key, a certificate that expired.
 * Files go to a fresh temp directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "common/pem.h"
#include "http/tls_files.h"

static char dir[] = "/tmp/environd-pem-XXXXXX";

/* A NUL-terminated copy of what a memory BIO holds; the caller frees. */
static char *bio_text(BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	assert_true(n > 0);
	char *out = malloc((size_t)n + 1);
	assert_non_null(out);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return out;
}

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	return k;
}

static char *key_pem(EVP_PKEY *k, int encrypted)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_non_null(b);
	assert_int_equal(1, PEM_write_bio_PrivateKey(b, k, encrypted ? EVP_aes_256_cbc() : NULL,
						     encrypted ? (unsigned char *)"pw" : NULL, encrypted ? 2 : 0, NULL,
						     NULL));
	char *s = bio_text(b);
	BIO_free(b);
	return s;
}

/* A self-signed certificate for k, valid from now + from_days to now + to_days. */
static char *cert_pem(EVP_PKEY *k, long from_days, long to_days)
{
	X509 *x = X509_new();
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
	X509_set_pubkey(x, k);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	BIO *b = BIO_new(BIO_s_mem());
	assert_non_null(b);
	PEM_write_bio_X509(b, x);
	char *s = bio_text(b);
	BIO_free(b);
	X509_free(x);
	return s;
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char paths[16][256];
	static int next;
	char *p = paths[next++ % 16];
	snprintf(p, 256, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
	return p;
}

static void test_read_bounds(void **state)
{
	struct pem_file f;
	char why[512];
	const char *p = write_file("small.pem", "0123456789", 0600);
	assert_int_equal(0, pem_file_read(p, 10, "--x", &f, why, sizeof(why)));
	assert_int_equal(10, f.len);
	assert_string_equal("0123456789", f.data);
	assert_int_equal(0600, f.mode);
	pem_file_free(&f);
	assert_null(f.data);
	/* One byte over the bound is refused, naming the file. */
	assert_int_equal(-1, pem_file_read(p, 9, "--x small.pem", &f, why, sizeof(why)));
	assert_non_null(strstr(why, "--x small.pem: larger than 9 bytes"));
	assert_null(f.data);
	assert_int_equal(-1, pem_file_read(dir, 100, "--x DIR", &f, why, sizeof(why)));
	assert_string_equal("--x DIR: not a regular file", why);
	assert_int_equal(-1, pem_file_read("/nonexistent/x.pem", 100, "--x missing", &f, why, sizeof(why)));
	assert_string_equal("--x missing: cannot open: No such file or directory", why);
}

static void test_count_certificates(void **state)
{
	EVP_PKEY *k = new_key();
	char *c1 = cert_pem(k, 0, 10), *c2 = cert_pem(k, 0, 20), *kp = key_pem(k, 0);
	size_t n = strlen(c1) + strlen(c2) + strlen(kp) + 1;
	char *chain = malloc(n);
	assert_non_null(chain);
	snprintf(chain, n, "%s%s%s", c1, kp, c2);
	assert_int_equal(1, pem_count_certificates(c1, strlen(c1)));
	/* A key between the certificates is passed over, as in a combined file. */
	assert_int_equal(2, pem_count_certificates(chain, strlen(chain)));
	assert_int_equal(0, pem_count_certificates(kp, strlen(kp)));
	assert_int_equal(0, pem_count_certificates("", 0));
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	assert_int_equal(0, pem_count_certificates(junk, strlen(junk)));
	free(chain);
	free(c1);
	free(c2);
	free(kp);
	EVP_PKEY_free(k);
}

static void test_check_pair(void **state)
{
	EVP_PKEY *k = new_key(), *other = new_key();
	char *cert = cert_pem(k, 0, 10), *key = key_pem(k, 0), *wrong = key_pem(other, 0), *enc = key_pem(k, 1);
	char *expired = cert_pem(k, -10, -1), *future = cert_pem(k, 5, 10);
	char validity[256], why[512];
#define CHECK(c, kk) pem_check_pair(c, strlen(c), "--tls-cert C", kk, strlen(kk), "--tls-key K", validity, sizeof(validity), why, sizeof(why))
	assert_int_equal(0, CHECK(cert, key));
	assert_string_equal("", validity);
	assert_int_equal(-1, CHECK(cert, wrong));
	assert_string_equal("--tls-key K does not hold the private key of the certificate in --tls-cert C", why);
	assert_int_equal(-1, CHECK(cert, enc));
	assert_non_null(strstr(why, "--tls-key K: the private key is encrypted"));
	assert_int_equal(-1, CHECK(key, key));
	assert_non_null(strstr(why, "--tls-cert C: holds no PEM certificate"));
	assert_int_equal(-1, CHECK(cert, cert));
	assert_non_null(strstr(why, "--tls-key K: holds no PEM private key"));
	/* Out of its validity period: accepted, with a warning to log. */
	assert_int_equal(0, CHECK(expired, key));
	assert_non_null(strstr(validity, "the certificate in --tls-cert C expired on "));
	assert_int_equal(0, CHECK(future, key));
	assert_non_null(strstr(validity, "is not valid before "));
#undef CHECK
	free(cert);
	free(key);
	free(wrong);
	free(enc);
	free(expired);
	free(future);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

static void test_tls_files_modes(void **state)
{
	EVP_PKEY *k = new_key();
	char *cert = cert_pem(k, 0, 10), *key = key_pem(k, 0);
	const char *cp = write_file("cert.pem", cert, 0644);
	struct tls_files t;
	char why[512];
	/* Owner only, and group-readable (a warning), are accepted; the texts are handed over. */
	static const mode_t ok[] = {0600, 0400, 0640, 0440};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		const char *kp = write_file("key.pem", key, ok[i]);
		assert_int_equal(0, tls_files_load(cp, kp, &t, why, sizeof(why)));
		assert_string_equal(cert, t.cert.data);
		assert_string_equal(key, t.key.data);
		tls_files_free(&t);
		assert_null(t.key.data);
	}
	/* Readable or writable by others, or writable by the group: refused, saying what to do. */
	static const mode_t bad[] = {0644, 0604, 0602, 0660, 0666};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *kp = write_file("key.pem", key, bad[i]);
		assert_int_equal(-1, tls_files_load(cp, kp, &t, why, sizeof(why)));
		assert_non_null(strstr(why, "--tls-key "));
		assert_non_null(strstr(why, "run chmod 600 "));
		assert_null(t.cert.data);
	}
	const char *kp = write_file("key.pem", key, 0600);
	assert_int_equal(-1, tls_files_load(kp, kp, &t, why, sizeof(why)));
	assert_non_null(strstr(why, "--tls-cert "));
	assert_non_null(strstr(why, "holds no PEM certificate"));
	free(cert);
	free(key);
	EVP_PKEY_free(k);
}

static int setup(void **state)
{
	log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_bounds),
		cmocka_unit_test(test_count_certificates),
		cmocka_unit_test(test_check_pair),
		cmocka_unit_test(test_tls_files_modes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
