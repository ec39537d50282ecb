/* tls_files.c - read and check the server's certificate and key (see tls_files.h). */
#include "http/tls_files.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

int tls_files_load(const char *cert_path, const char *key_path, struct tls_files *out, char *why,
		   size_t why_len)
{
	memset(out, 0, sizeof(*out));
	char cert_what[4200], key_what[4200];
	snprintf(cert_what, sizeof(cert_what), "--tls-cert %s", cert_path);
	snprintf(key_what, sizeof(key_what), "--tls-key %s", key_path);
	if (pem_file_read(cert_path, TLS_CERT_FILE_MAX, cert_what, &out->cert, why, why_len) ||
	    pem_file_read(key_path, TLS_KEY_FILE_MAX, key_what, &out->key, why, why_len))
		goto fail;
	/* Like sshd and PostgreSQL: a key anyone on the host can read is no secret, and one
	 * others can write can be swapped. Owner-only (0600, 0400) is the norm; a group may
	 * read it (0640, e.g. Debian's ssl-cert group), which is allowed with a warning. */
	if (out->key.mode & 0026) {
		snprintf(why, why_len,
			 "%s: mode %04o lets other users %s it; run chmod 600 %s (or 640 to share it with the "
			 "file's group)",
			 key_what, (unsigned)out->key.mode, (out->key.mode & 0004) ? "read" : "change", key_path);
		goto fail;
	}
	if (out->key.mode & 0040) {
		char mode[16];
		snprintf(mode, sizeof(mode), "%04o", (unsigned)out->key.mode);
		log_event(LOG_WARN, "tls_key_group_readable", "file", key_path, "mode", mode, "note",
			  "members of the file's group can read the private key", NULL);
	}
	char validity[512];
	if (pem_check_pair(out->cert.data, out->cert.len, cert_what, out->key.data, out->key.len, key_what,
			   validity, sizeof(validity), why, why_len))
		goto fail;
	if (validity[0])
		log_event(LOG_WARN, "tls_certificate_not_valid_now", "file", cert_path, "note", validity, NULL);
	return 0;
fail:
	tls_files_free(out);
	return -1;
}

void tls_files_free(struct tls_files *t)
{
	pem_file_free(&t->cert);
	pem_file_free(&t->key);
}
