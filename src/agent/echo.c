/* echo.c - the echo agent's decisions (see echo.h). */
#include "agent/echo.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* A message's text: its text blocks joined by newlines. Other block kinds hold nothing
 * a shell could run, so they are skipped. */
static void put_text_blocks(struct buf *out, const json_t *content)
{
	size_t i;
	json_t *block;
	int first = 1;
	json_array_foreach(content, i, block) {
		const char *type = json_string_value(json_object_get(block, "type"));
		const char *text = json_string_value(json_object_get(block, "text"));
		if (!type || strcmp(type, "text") != 0 || !text)
			continue;
		if (!first)
			buf_putc(out, '\n');
		buf_puts(out, text);
		first = 0;
	}
}

static const char *event_type(const json_t *ev)
{
	const char *t = json_string_value(json_object_get(ev, "type"));
	return t ? t : "";
}

static int is_input(const char *type)
{
	return strcmp(type, "user.message") == 0 || strcmp(type, "user.tool_result") == 0 ||
	       strcmp(type, "user.tool_confirmation") == 0 || strcmp(type, "user.custom_tool_result") == 0 ||
	       strcmp(type, "user.interrupt") == 0;
}

/* Index of the last event of the given type in [from, to), or -1. */
static long last_of(const json_t *events, const char *type, long from, long to)
{
	for (long i = to - 1; i >= from; i--)
		if (strcmp(event_type(json_array_get(events, (size_t)i)), type) == 0)
			return i;
	return -1;
}

/* The answer to tool use `id` among events[from..], or NULL. *denied says whether it is a
 * refused confirmation rather than a result. */
static const json_t *answer_of(const json_t *events, const char *id, size_t from, int *denied)
{
	for (size_t i = from; i < json_array_size(events); i++) {
		const json_t *ev = json_array_get(events, i);
		const char *type = event_type(ev);
		const char *for_id = json_string_value(json_object_get(ev, "tool_use_id"));
		if (!for_id || strcmp(for_id, id) != 0)
			continue;
		if (strcmp(type, "user.tool_result") == 0) {
			*denied = 0;
			return ev;
		}
		const char *result = json_string_value(json_object_get(ev, "result"));
		if (strcmp(type, "user.tool_confirmation") == 0 && result && strcmp(result, "deny") == 0) {
			*denied = 1;
			return ev;
		}
	}
	return NULL;
}

/* Append at most ECHO_QUOTE_MAX bytes of s, cut on a UTF-8 character boundary. */
static void put_quoted_output(struct buf *out, const char *s, size_t len)
{
	if (len == 0) {
		buf_puts(out, "(no output)");
		return;
	}
	size_t keep = len;
	if (keep > ECHO_QUOTE_MAX) {
		keep = ECHO_QUOTE_MAX;
		/* Back up over continuation bytes (10xxxxxx) to the start of a character. */
		while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
			keep--;
	}
	buf_append(out, s, keep);
	if (keep < len)
		buf_printf(out, "\n(output cut: %zu of %zu bytes shown)", keep, len);
}

/* The report on every tool use in uses (pairs {id, command} in events order). */
static void put_report(struct buf *out, const json_t *events, const json_t *uses, size_t from)
{
	size_t i;
	json_t *use;
	json_array_foreach(uses, i, use) {
		const char *id = json_string_value(json_object_get(use, "id"));
		const char *command = json_string_value(json_object_get(use, "command"));
		int denied = 0;
		const json_t *ans = answer_of(events, id, from, &denied);
		if (i > 0)
			buf_puts(out, "\n\n");
		if (denied) {
			const char *why = json_string_value(json_object_get(ans, "deny_message"));
			buf_printf(out, "Did not run `%s`: the tool use was denied%s%s.", command, why ? ": " : "",
				   why ? why : "");
			continue;
		}
		struct buf output;
		buf_init(&output, 16u << 20);
		put_text_blocks(&output, json_object_get(ans, "content"));
		int failed = json_is_true(json_object_get(ans, "is_error"));
		buf_printf(out, "Ran `%s` (%s):\n", command, failed ? "it failed" : "exit status 0");
		put_quoted_output(out, output.data ? output.data : "", output.len);
		buf_free(&output);
	}
}

int echo_plan(const json_t *events, struct echo_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	long n = (long)json_array_size(events);
	long input = -1;
	for (long i = n - 1; i >= 0 && input < 0; i--)
		if (is_input(event_type(json_array_get(events, (size_t)i))))
			input = i;
	if (input < 0 || strcmp(event_type(json_array_get(events, (size_t)input)), "user.interrupt") == 0)
		return 0; /* ECHO_NOTHING */

	/* The tool uses this agent posted for the newest message: a runner that died part way
	 * through a turn may have posted them already, and they must not be posted twice. */
	long message = last_of(events, "user.message", 0, input + 1);
	long since = message < 0 ? 0 : message + 1;
	json_t *uses = json_array();
	json_t *pending = json_array();
	if (!uses || !pending)
		goto oom;
	int answered_later = 0;
	for (long i = since; i < n; i++) {
		const json_t *ev = json_array_get(events, (size_t)i);
		const char *type = event_type(ev);
		if (strcmp(type, "agent.message") == 0 && i > input)
			answered_later = 1;
		if (strcmp(type, "agent.tool_use") != 0)
			continue;
		const char *id = json_string_value(json_object_get(ev, "id"));
		json_t *input_obj = json_object_get(ev, "input");
		const char *command = json_string_value(json_object_get(input_obj, "command"));
		if (!id)
			continue;
		if (json_array_append_new(uses, json_pack("{s:s,s:s}", "id", id, "command", command ? command : "")))
			goto oom;
		int denied;
		if (!answer_of(events, id, (size_t)i + 1, &denied) && json_array_append_new(pending, json_string(id)))
			goto oom;
	}
	/* A runner that died after its agent.message but before going idle left only the
	 * idle to post. */
	if (answered_later)
		goto done;

	struct buf text;
	buf_init(&text, ECHO_COMMAND_MAX + ECHO_QUOTE_MAX * 4);
	const json_t *newest = json_array_get(events, (size_t)input);
	if (strcmp(event_type(newest), "user.message") == 0 && json_array_size(uses) == 0) {
		struct buf command;
		buf_init(&command, ECHO_COMMAND_MAX);
		put_text_blocks(&command, json_object_get(newest, "content"));
		if (command.failed == 1) {
			plan->action = ECHO_REPORT;
			buf_printf(&text, "Not run: the echo agent runs commands of at most %u bytes.", ECHO_COMMAND_MAX);
		} else if (command.len == 0 || strspn(command.data, " \t\r\n") == command.len) {
			plan->action = ECHO_REPORT;
			buf_puts(&text, "Nothing to run: the message holds no command text.");
		} else {
			plan->action = ECHO_RUN_COMMAND;
			buf_append(&text, command.data, command.len);
		}
		int oom = command.failed == 2;
		buf_free(&command);
		if (oom)
			text.failed = 2;
	} else if (json_array_size(pending) > 0) {
		plan->action = ECHO_AWAIT;
		plan->pending = json_incref(pending);
	} else if (json_array_size(uses) > 0) {
		plan->action = ECHO_REPORT;
		put_report(&text, events, uses, (size_t)since);
	}
	if (plan->action == ECHO_RUN_COMMAND || plan->action == ECHO_REPORT) {
		plan->text = buf_steal(&text, NULL);
		if (!plan->text) {
			json_decref(plan->pending);
			goto oom;
		}
	} else {
		buf_free(&text);
	}
done:
	json_decref(uses);
	json_decref(pending);
	return 0;
oom:
	json_decref(uses);
	json_decref(pending);
	memset(plan, 0, sizeof(*plan));
	return -1;
}

void echo_plan_free(struct echo_plan *plan)
{
	free(plan->text);
	json_decref(plan->pending);
	memset(plan, 0, sizeof(*plan));
}

json_t *echo_running_event(void)
{
	return json_pack("{s:s}", "type", "session.status_running");
}

json_t *echo_tool_use_event(const char *command)
{
	return json_pack("{s:s,s:s,s:{s:s}}", "type", "agent.tool_use", "name", "bash", "input", "command", command);
}

json_t *echo_message_event(const char *text)
{
	return json_pack("{s:s,s:[{s:s,s:s}]}", "type", "agent.message", "content", "type", "text", "text", text);
}

json_t *echo_idle_end_turn_event(void)
{
	return json_pack("{s:s,s:{s:s}}", "type", "session.status_idle", "stop_reason", "type", "end_turn");
}

json_t *echo_idle_requires_action_event(const json_t *ids)
{
	return json_pack("{s:s,s:{s:s,s:O}}", "type", "session.status_idle", "stop_reason", "type",
			 "requires_action", "event_ids", (json_t *)ids);
}
