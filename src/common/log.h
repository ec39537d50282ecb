/* log.h - one line per event on stderr, as text or JSON.
 *
 * log_event(LOG_INFO, "poll", "work_id", id, "state", "queued", NULL) writes
 *   2026-11-28T15:34:17.123456Z info poll work_id=work_… state=queued
 * or, with LOG_FORMAT_JSON,
 *   {"ts":"…","level":"info","event":"poll","work_id":"work_…","state":"queued"}
 * Keys and values are NUL-terminated strings; the list ends with NULL. Credentials must
 * never be passed here. Thread-safe: each line is written with one write(2). */
#ifndef ENVIROND_LOG_H
#define ENVIROND_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

void log_setup(enum log_level level, enum log_format format);
int log_enabled(enum log_level level);
/* Parse "error"/"warn"/"info"/"debug"; -1 if unknown. */
int log_level_parse(const char *name);

void log_event(enum log_level level, const char *event, ...) __attribute__((sentinel));

#endif
