/* session_render.c - session events as one line each (see session_render.h). */
#include "cli/session_render.h"

#include <stdlib.h>
#include <string.h>

/* Append at most RENDER_TEXT_MAX bytes of s with control characters escaped; the cut
 * falls on a UTF-8 character boundary and is marked with "...". */
static void put_short(struct buf *out, const char *s)
{
	size_t len = strlen(s), keep = len;
	if (keep > RENDER_TEXT_MAX) {
		keep = RENDER_TEXT_MAX;
		while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
			keep--;
	}
	for (size_t i = 0; i < keep; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\n')
			buf_puts(out, "\\n");
		else if (ch == '\t')
			buf_puts(out, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			buf_printf(out, "\\x%02x", ch);
		else
			buf_putc(out, (char)ch);
	}
	if (keep < len)
		buf_puts(out, "...");
}

/* The text blocks of content, joined by newlines. Only one byte more than a line shows is
 * kept: enough for put_short to know the text was longer. */
static void put_content(struct buf *out, const json_t *content)
{
	struct buf text;
	buf_init(&text, RENDER_TEXT_MAX + 1);
	size_t i;
	json_t *block;
	json_array_foreach(content, i, block) {
		const char *t = json_string_value(json_object_get(block, "text"));
		if (!t)
			continue;
		if (text.len)
			buf_putc(&text, '\n');
		size_t room = text.max - text.len, n = strlen(t);
		buf_append(&text, t, n < room ? n : room);
	}
	put_short(out, text.data ? text.data : "");
	buf_free(&text);
}

static const char *str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

void session_render(const json_t *ev, struct buf *out)
{
	const char *type = str(ev, "type");
	buf_printf(out, "%-26s", type[0] ? type : "(no type)");
	if (!strcmp(type, "user.message") || !strcmp(type, "agent.message")) {
		put_content(out, json_object_get(ev, "content"));
	} else if (!strcmp(type, "agent.tool_use") || !strcmp(type, "agent.custom_tool_use")) {
		const json_t *input = json_object_get(ev, "input");
		buf_puts(out, str(ev, "name"));
		const char *command = json_string_value(json_object_get(input, "command"));
		char *dumped = command ? NULL : json_dumps(input, JSON_COMPACT);
		buf_puts(out, ": ");
		put_short(out, command ? command : dumped ? dumped : "");
		free(dumped);
	} else if (!strcmp(type, "user.tool_result") || !strcmp(type, "user.custom_tool_result")) {
		if (json_is_true(json_object_get(ev, "is_error")))
			buf_puts(out, "(error) ");
		put_content(out, json_object_get(ev, "content"));
	} else if (!strcmp(type, "user.tool_confirmation")) {
		buf_printf(out, "%s %s", str(ev, "result"), str(ev, "tool_use_id"));
	} else if (!strcmp(type, "session.status_idle")) {
		const json_t *reason = json_object_get(ev, "stop_reason");
		buf_puts(out, str(reason, "type"));
		const json_t *ids = json_object_get(reason, "event_ids");
		size_t i;
		json_t *id;
		json_array_foreach(ids, i, id) {
			buf_putc(out, i ? ',' : ' ');
			put_short(out, json_string_value(id) ? json_string_value(id) : "?");
		}
	} else if (!strcmp(type, "session.error")) {
		const json_t *err = json_object_get(ev, "error");
		put_short(out, str(err, "message")[0] ? str(err, "message") : str(err, "type"));
	}
	/* Trailing padding of a type with nothing after it is not worth keeping. */
	while (out->len > 0 && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
}

enum watch_next session_watch_next(const json_t *ev, int until_idle)
{
	const char *type = str(ev, "type");
	if (!strcmp(type, "session.status_terminated") || !strcmp(type, "session.deleted"))
		return WATCH_ENDED;
	if (until_idle && !strcmp(type, "session.status_idle") &&
	    strcmp(str(json_object_get(ev, "stop_reason"), "type"), "requires_action") != 0)
		return WATCH_IDLE;
	return WATCH_GO_ON;
}
