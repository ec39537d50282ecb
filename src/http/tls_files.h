/* tls_files.h - the server's certificate and private key, read and checked at startup.
 *
 * `environd serve --tls-cert PATH --tls-key PATH` reads both files once, before the store
 * is opened, and refuses to start on anything a client would trip over later: a missing
 * or unreadable file, a file that holds no certificate or no unencrypted private key, a
 * key that is not the certificate's, or a key file that users other than its owner and
 * group may read or write. The texts are then handed to libmicrohttpd (GnuTLS). */
#ifndef ENVIROND_TLS_FILES_H
#define ENVIROND_TLS_FILES_H

#include "common/pem.h"

/* A certificate chain file of a few intermediates is a few KiB; a CA bundle given by
 * mistake is larger than this. */
#define TLS_CERT_FILE_MAX (1024 * 1024)
#define TLS_KEY_FILE_MAX (64 * 1024)

/* Owned by whoever called tls_files_load(); tls_files_free() wipes the key. */
struct tls_files {
	struct pem_file cert;
	struct pem_file key;
};

/* Read and check both files. Warnings (a group-readable key, a certificate out of its
 * validity period) are logged; errors return -1 with why naming the flag, the path and
 * the reason. */
int tls_files_load(const char *cert_path, const char *key_path, struct tls_files *out, char *why,
		   size_t why_len);
void tls_files_free(struct tls_files *t);

#endif
