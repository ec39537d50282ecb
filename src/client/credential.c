/* credential.c - read credentials from files and variables (see credential.h). */
#include "client/credential.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client.h"

void credential_free(char *key)
{
	if (!key)
		return;
	volatile char *p = key;
	while (*p)
		*p++ = '\0';
	free(key);
}

int credential_check(const char *key, const char *source, char *err, size_t errlen)
{
	size_t len = strlen(key);
	if (len == 0) {
		snprintf(err, errlen, "%s is empty", source);
		return -1;
	}
	if (len > CREDENTIAL_MAX) {
		snprintf(err, errlen, "%s is longer than %d bytes", source, CREDENTIAL_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)key[i];
		if (ch <= ' ' || ch >= 0x7f) {
			snprintf(err, errlen, "%s holds a character that cannot be part of a key", source);
			return -1;
		}
	}
	return 0;
}

int credential_read_file(const char *path, char **out, char *err, size_t errlen)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		snprintf(err, errlen, "key file %s is not a regular file", path);
		close(fd);
		return -1;
	}
	/* Read one byte more than a key may be, to tell a long file from a full one. */
	char data[CREDENTIAL_MAX + 2];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, data + len, sizeof(data) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
			close(fd);
			memset(data, 0, sizeof(data));
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(data) - 1)
			break;
	}
	close(fd);
	data[len] = '\0';
	/* The key is the first line, without surrounding white space. */
	char *start = data;
	while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n')
		start++;
	char *end = start;
	while (*end && *end != '\n' && *end != '\r')
		end++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	char source[64 + 4096];
	snprintf(source, sizeof(source), "key file %s", path);
	int rc = -1;
	if (credential_check(start, source, err, errlen) == 0) {
		*out = strdup(start);
		if (*out)
			rc = 0;
		else
			snprintf(err, errlen, "out of memory");
	}
	memset(data, 0, sizeof(data));
	return rc;
}

const char *credential_base_url(const char *flag_value, const char *const *env_names, int fallback)
{
	if (flag_value && *flag_value)
		return flag_value;
	for (const char *const *name = env_names; name && *name; name++) {
		const char *v = getenv(*name);
		if (v && *v)
			return v;
	}
	return fallback ? CLIENT_DEFAULT_URL : NULL;
}

int credential_resolve(const char *file_path, const char *flag_value, const char *env_name,
		       const char *file_flag, char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (file_path)
		return credential_read_file(file_path, out, err, errlen);
	const char *value = flag_value;
	char source[128];
	snprintf(source, sizeof(source), "the key given on the command line");
	if (!value) {
		value = getenv(env_name);
		snprintf(source, sizeof(source), "%s", env_name);
	}
	if (!value || !*value) {
		snprintf(err, errlen, "no credential: set %s or pass --%s PATH", env_name, file_flag);
		return -1;
	}
	if (credential_check(value, source, err, errlen))
		return -1;
	*out = strdup(value);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}
