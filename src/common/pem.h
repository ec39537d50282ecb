/* pem.h - PEM files (certificates, private keys, CA bundles): bounded reads and checks.
 *
 * The TLS server (http/tls_files.c) and the HTTP client (client/client.c) both take file
 * paths from the command line. They read each file once, at startup, through here, so a
 * missing, oversized or unparseable file is a clear startup error that names the file,
 * not a failed handshake later. Parsing uses libcrypto; nothing here talks to a network. */
#ifndef ENVIROND_PEM_H
#define ENVIROND_PEM_H

#include <stddef.h>
#include <sys/types.h>

/* One file's bytes, NUL-terminated, and what fstat said about it. The caller owns data
 * and releases it with pem_file_free(), which wipes it first (it may hold a key). */
struct pem_file {
	char *data;
	size_t len;
	mode_t mode; /* permission bits (st_mode & 07777) */
	uid_t uid;
};

/* Read the regular file at path, at most max bytes. Returns 0, or -1 with a message in
 * why that starts with what (e.g. "--tls-cert /etc/x.pem") and says the reason. */
int pem_file_read(const char *path, size_t max, const char *what, struct pem_file *out, char *why, size_t why_len);
void pem_file_free(struct pem_file *f);

/* How many PEM certificates the text holds, read in order until the first block that is
 * not one (0 when the first is not a certificate). */
int pem_count_certificates(const char *text, size_t len);

/* Check that key_text holds one unencrypted PEM private key and cert_text a certificate
 * (the first of a chain) that belongs to it. Returns 0, or -1 with why naming the file
 * (cert_what / key_what) at fault and the reason. When the certificate has expired or is
 * not valid yet, *validity says so (a warning, not an error); it is "" otherwise. */
int pem_check_pair(const char *cert_text, size_t cert_len, const char *cert_what, const char *key_text,
		   size_t key_len, const char *key_what, char *validity, size_t validity_len, char *why,
		   size_t why_len);

#endif
