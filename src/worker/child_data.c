/* child_data.c - the pure parts of running a work item's command: the environment it gets
 * (its item's variables, none of the worker's credentials) and the cutting of its output
 * into log lines (see worker_int.h). */
#include "worker/worker_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* ---- output lines ---- */

/* log.c drops a line that does not fit its 16 KiB buffer: a piece escaped at 6 bytes a
 * byte, plus the work id (printable ASCII, at most 2 bytes a byte escaped) and the other
 * fields, must fit. */
_Static_assert(6 * LINE_MAX_BYTES + 2 * ITEM_ID_MAX + 512 <= 16384, "output pieces must fit a log line");

/* Where to cut a full buffer: before a UTF-8 character that is not complete yet, so the
 * log does not show the two halves of one character as two replacement characters. */
static size_t utf8_cut(const char *data, size_t len)
{
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = (unsigned char)data[len - back];
		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back for its lead */
		size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		return need > back ? len - back : len;
	}
	return len;
}

void line_buf_feed(struct line_buf *lb, const char *data, size_t len,
		   void (*emit)(const char *line, void *arg), void *arg)
{
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		if (ch == '\n') {
			if (lb->len > 0 && lb->data[lb->len - 1] == '\r')
				lb->len--;
			lb->data[lb->len] = '\0';
			emit(lb->data, arg);
			lb->len = 0;
			continue;
		}
		lb->data[lb->len++] = ch;
		/* One byte stays free for the terminator: a full buffer is emitted as a piece,
		 * and a character cut in two waits for the next one. */
		if (lb->len == sizeof(lb->data) - 1) {
			size_t cut = utf8_cut(lb->data, lb->len);
			char rest[4];
			size_t nrest = lb->len - cut;
			memcpy(rest, lb->data + cut, nrest);
			lb->data[cut] = '\0';
			emit(lb->data, arg);
			memcpy(lb->data, rest, nrest);
			lb->len = nrest;
		}
	}
}

void line_buf_flush(struct line_buf *lb, void (*emit)(const char *line, void *arg), void *arg)
{
	if (lb->len == 0)
		return;
	lb->data[lb->len] = '\0';
	emit(lb->data, arg);
	lb->len = 0;
}

/* ---- the environment ---- */

/* Set for each item (so any inherited value goes), the environment key among them. */
static const char *const item_vars[] = {
	"ANTHROPIC_WORK_ID", "ANTHROPIC_ENVIRONMENT_ID", "ANTHROPIC_SESSION_ID",
	"ANTHROPIC_WORK_SECRET", "ANTHROPIC_BASE_URL", "ANTHROPIC_ENVIRONMENT_KEY",
};

/* Credentials the worker's own environment may hold that reach far more than one item:
 * the organization's API key above all. A command gets its item's secret, nothing else. */
static const char *const credential_vars[] = {
	"ENVIROND_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
};

static int named(const char *entry, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		size_t n = strlen(names[i]);
		if (strncmp(entry, names[i], n) == 0 && (entry[n] == '=' || entry[n] == '\0'))
			return 1;
	}
	return 0;
}

/* Who the command is, set to the --run-as user's when there is one (as su and sudo do). */
static const char *const user_vars[] = {"HOME", "USER", "LOGNAME"};

static int is_item_var(const char *entry, int run_as)
{
	return named(entry, item_vars, sizeof(item_vars) / sizeof(item_vars[0])) ||
	       named(entry, credential_vars, sizeof(credential_vars) / sizeof(credential_vars[0])) ||
	       (run_as && named(entry, user_vars, sizeof(user_vars) / sizeof(user_vars[0])));
}

static char *make_var(const char *name, const char *value)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	buf_puts(&b, name);
	buf_putc(&b, '=');
	buf_puts(&b, value ? value : "");
	return buf_steal(&b, NULL);
}

void child_env_free(char **envp)
{
	if (!envp)
		return;
	for (char **e = envp; *e; e++) {
		/* Two of these hold credentials (the work secret, maybe the environment key). */
		memset(*e, 0, strlen(*e));
		free(*e);
	}
	free(envp);
}

char **child_env_build(char *const *env, const struct worker_config *cfg, const struct item *it,
		       const char *environment_key)
{
	size_t n = 0;
	for (char *const *e = env; e && *e; e++)
		n++;
	size_t cap = n + sizeof(item_vars) / sizeof(item_vars[0]) + sizeof(user_vars) / sizeof(user_vars[0]) + 1;
	char **out = calloc(cap, sizeof(char *));
	if (!out)
		return NULL;
	size_t k = 0;
	for (char *const *e = env; e && *e; e++) {
		if (is_item_var(*e, cfg->run_as != NULL))
			continue;
		if (!(out[k++] = strdup(*e)))
			goto oom;
	}
	const char *pairs[][2] = {
		{"ANTHROPIC_WORK_ID", it->id},
		{"ANTHROPIC_ENVIRONMENT_ID", cfg->environment_id},
		{"ANTHROPIC_SESSION_ID", it->session_id},
		{"ANTHROPIC_WORK_SECRET", it->secret},
		{"ANTHROPIC_BASE_URL", cfg->base_url},
		{"ANTHROPIC_ENVIRONMENT_KEY", environment_key},
		{"HOME", cfg->run_as ? cfg->run_as->home : NULL},
		{"USER", cfg->run_as ? cfg->run_as->name : NULL},
		{"LOGNAME", cfg->run_as ? cfg->run_as->name : NULL},
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		/* The key is passed only when asked for; a secret-less item gets no secret. */
		if (!pairs[i][1])
			continue;
		if (!(out[k++] = make_var(pairs[i][0], pairs[i][1])))
			goto oom;
	}
	out[k] = NULL;
	return out;
oom:
	child_env_free(out);
	return NULL;
}
