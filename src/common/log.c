/* log.c - one line per event (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/jsonw.h"

static enum log_level current_level = LOG_INFO;
static enum log_format current_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(enum log_level level, enum log_format format)
{
	current_level = level;
	current_format = format;
}

int log_enabled(enum log_level level) { return level <= current_level; }

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

/* A text value needs quotes when it is empty or holds spaces, quotes or '='. */
static int needs_quotes(const char *v)
{
	if (!*v)
		return 1;
	for (; *v; v++)
		if (*v <= ' ' || *v == '"' || *v == '=' || *v == '\\' || (unsigned char)*v >= 0x7f)
			return 1;
	return 0;
}

void log_event(enum log_level level, const char *event, ...)
{
	if (!log_enabled(level))
		return;
	char ts[CLOCK_TS_LEN + 1];
	clock_format(clock_wall_us(), ts);
	struct buf line;
	buf_init(&line, 16384);
	va_list ap;
	va_start(ap, event);
	if (current_format == LOG_FORMAT_JSON) {
		struct jsonw w;
		jsonw_init(&w, &line);
		jsonw_obj_open(&w);
		jsonw_key(&w, "ts");
		jsonw_str(&w, ts);
		jsonw_key(&w, "level");
		jsonw_str(&w, level_names[level]);
		jsonw_key(&w, "event");
		jsonw_str(&w, event);
		const char *k;
		while ((k = va_arg(ap, const char *))) {
			const char *v = va_arg(ap, const char *);
			jsonw_key(&w, k);
			jsonw_str(&w, v ? v : "");
		}
		jsonw_obj_close(&w);
	} else {
		buf_printf(&line, "%s %s %s", ts, level_names[level], event);
		const char *k;
		while ((k = va_arg(ap, const char *))) {
			const char *v = va_arg(ap, const char *);
			if (!v)
				v = "";
			buf_printf(&line, " %s=", k);
			if (needs_quotes(v))
				jsonw_escape(&line, v, strlen(v));
			else
				buf_puts(&line, v);
		}
	}
	va_end(ap);
	buf_putc(&line, '\n');
	if (!line.failed) {
		ssize_t n = write(STDERR_FILENO, line.data, line.len);
		(void)n;
	}
	buf_free(&line);
}
