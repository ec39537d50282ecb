/* credential.h - where the client-side commands find their server and their credential.
 *
 * Credentials come from an environment variable or a file, never from a flag value (a flag
 * shows in `ps` and in shell history). A key file holds the key on its first line; leading
 * and trailing white space is ignored. */
#ifndef ENVIROND_CREDENTIAL_H
#define ENVIROND_CREDENTIAL_H

#include <stddef.h>

/* Largest credential accepted, in bytes. */
#define CREDENTIAL_MAX 1024

/* Read a key from the file at path into a new string (*out, which the caller frees,
 * ideally with credential_free). Returns 0, or -1 with a message in err (which names the
 * path and the reason, never the content). */
int credential_read_file(const char *path, char **out, char *err, size_t errlen);

/* Check the text of a credential (from a variable or a file): non-empty, printable ASCII,
 * no spaces, at most CREDENTIAL_MAX bytes. Returns 0, or -1 with a message in err. */
int credential_check(const char *key, const char *source, char *err, size_t errlen);

/* Wipe and free a credential string. NULL is fine. */
void credential_free(char *key);

/* Find a credential: the file (when file_path is set), else flag_value (when set; only
 * the client-side commands' --api-key allows one), else the variable env_name. *out is a
 * new string the caller frees with credential_free. Returns 0, or -1 with a message in
 * err that says where the credential was looked for. */
int credential_resolve(const char *file_path, const char *flag_value, const char *env_name,
		       const char *file_flag, char **out, char *err, size_t errlen);

/* The base URL: the flag's value if set, else the first set variable of env_names
 * (a NULL-terminated list), else CLIENT_DEFAULT_URL (when fallback is non-zero) or NULL. */
const char *credential_base_url(const char *flag_value, const char *const *env_names, int fallback);

#endif
