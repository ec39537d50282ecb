/* pem.c - PEM files: bounded reads and libcrypto checks (see pem.h). */
#include "common/pem.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pem_file_read(const char *path, size_t max, const char *what, struct pem_file *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, why_len, "%s: cannot open: %s", what, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "%s: not a regular file", what);
		close(fd);
		return -1;
	}
	if ((unsigned long long)st.st_size > max) {
		snprintf(why, why_len, "%s: larger than %zu bytes; is it the right file?", what, max);
		close(fd);
		return -1;
	}
	/* Sized by fstat but bounded by max, and read to the end: the file may change under us. */
	char *data = malloc(max + 1);
	if (!data) {
		snprintf(why, why_len, "%s: out of memory", what);
		close(fd);
		return -1;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, data + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_len, "%s: cannot read: %s", what, strerror(errno));
			explicit_bzero(data, len);
			free(data);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			snprintf(why, why_len, "%s: larger than %zu bytes; is it the right file?", what, max);
			explicit_bzero(data, len);
			free(data);
			close(fd);
			return -1;
		}
	}
	close(fd);
	data[len] = '\0';
	out->data = data;
	out->len = len;
	out->mode = st.st_mode & 07777;
	out->uid = st.st_uid;
	return 0;
}

void pem_file_free(struct pem_file *f)
{
	if (f->data) {
		explicit_bzero(f->data, f->len);
		free(f->data);
	}
	memset(f, 0, sizeof(*f));
}

int pem_count_certificates(const char *text, size_t len)
{
	if (len > (size_t)INT32_MAX)
		return 0;
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	if (!bio)
		return 0;
	int n = 0;
	X509 *cert;
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		X509_free(cert);
		n++;
	}
	BIO_free(bio);
	/* The read that ended the loop leaves "no start line" behind: not an error here. */
	ERR_clear_error();
	return n;
}

/* An encrypted key is refused rather than prompted for: a server starts unattended. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* "Jan  1 00:00:00 2030 GMT" for a certificate time. */
static void print_time(const ASN1_TIME *t, char *out, size_t len)
{
	snprintf(out, len, "?");
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return;
	if (ASN1_TIME_print(b, t)) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		if (n > 0)
			snprintf(out, len, "%.*s", (int)n, p);
	}
	BIO_free(b);
}

int pem_check_pair(const char *cert_text, size_t cert_len, const char *cert_what, const char *key_text,
		   size_t key_len, const char *key_what, char *validity, size_t validity_len, char *why,
		   size_t why_len)
{
	validity[0] = '\0';
	if (cert_len > (size_t)INT32_MAX || key_len > (size_t)INT32_MAX) {
		snprintf(why, why_len, "%s or %s is too large", cert_what, key_what);
		return -1;
	}
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rc = -1;
	BIO *cb = BIO_new_mem_buf(cert_text, (int)cert_len);
	BIO *kb = BIO_new_mem_buf(key_text, (int)key_len);
	if (!cb || !kb) {
		snprintf(why, why_len, "out of memory checking %s", cert_what);
		goto out;
	}
	cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
	if (!cert) {
		snprintf(why, why_len, "%s: holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", cert_what);
		goto out;
	}
	if (strstr(key_text, "ENCRYPTED")) {
		snprintf(why, why_len, "%s: the private key is encrypted; environd needs it unencrypted "
				       "(protect it with the file's permissions instead)", key_what);
		goto out;
	}
	key = PEM_read_bio_PrivateKey(kb, NULL, no_password, NULL);
	if (!key) {
		snprintf(why, why_len, "%s: holds no PEM private key (\"-----BEGIN PRIVATE KEY-----\")", key_what);
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		snprintf(why, why_len, "%s does not hold the private key of the certificate in %s", key_what,
			 cert_what);
		goto out;
	}
	char when[64];
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
		print_time(X509_get0_notAfter(cert), when, sizeof(when));
		snprintf(validity, validity_len, "the certificate in %s expired on %s", cert_what, when);
	} else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
		print_time(X509_get0_notBefore(cert), when, sizeof(when));
		snprintf(validity, validity_len, "the certificate in %s is not valid before %s", cert_what, when);
	}
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(cb);
	BIO_free(kb);
	ERR_clear_error();
	return rc;
}
