/* session_watch.c - follow a session's events (see session_watch.h). */
#include "cli/session_watch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/session_render.h"
#include "client/sse.h"
#include "client/session_paths.h"
#include "common/buf.h"

static const char prog[] = "environd session watch";

struct watch {
	struct client *c;
	const char *session_id;
	const struct watch_options *opt;
	json_t *seen;                 /* event ids printed so far, as object keys */
	char last_id[SSE_ID_MAX + 1]; /* the newest id printed, for Last-Event-ID */
	enum watch_next next;
	/* Per connection: */
	CURL *curl;
	long status;
	struct sse_parser parser;
	struct buf error_body;        /* a refusal's body */
	int bad_event;                /* an event whose data is not a JSON object */
	int connected;                /* the last connection was accepted */
	int synced;                   /* this connection's history was listed */
	struct buf pending;           /* stream bytes that came before the history was listed */
	long retry_ms;                /* the server's reconnection delay, -1 = none */
};

/* Print ev unless its id was printed before; note the id and whether to stop. */
static void handle_event(struct watch *w, const json_t *ev, const char *sse_id)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	if (!id || !*id)
		id = sse_id;
	if (id && *id) {
		if (json_object_get(w->seen, id))
			return;
		json_object_set_new(w->seen, id, json_true());
		snprintf(w->last_id, sizeof(w->last_id), "%s", id);
	}
	if (w->opt->json) {
		char *text = json_dumps(ev, JSON_COMPACT);
		if (text)
			printf("%s\n", text);
		free(text);
	} else {
		struct buf line;
		buf_init(&line, 4096);
		session_render(ev, &line);
		printf("%s\n", line.data ? line.data : "");
		buf_free(&line);
	}
	fflush(stdout);
	w->next = session_watch_next(ev, w->opt->until_idle);
}

/* ---- the events already there ---- */

enum list_result { LIST_OK, LIST_REFUSED, LIST_TRANSIENT };

/* Print the events already stored (those not printed yet), oldest first. */
static enum list_result list_history(struct watch *w)
{
	char *page = NULL;
	enum list_result rc = LIST_OK;
	int idle_last = 0;
	for (;;) {
		struct buf path;
		buf_init(&path, 4096);
		session_events_page_path(&path, w->session_id, page);
		free(page);
		page = NULL;
		struct client_reply r;
		client_request(w->c, "GET", path.data, NULL, NULL, 30000L, &r);
		buf_free(&path);
		json_t *data = json_object_get(r.body, "data");
		if (r.status != 200 || !json_is_array(data)) {
			rc = client_is_transient(&r) ? LIST_TRANSIENT : LIST_REFUSED;
			if (r.status == 0)
				fprintf(stderr, "%s: cannot reach %s: %s\n", prog, w->c->base_url, r.message);
			else
				fprintf(stderr, "%s: listing the events failed: HTTP %d %s: %s\n", prog, r.status,
					r.error_type, r.message);
			client_reply_free(&r);
			break;
		}
		size_t i;
		json_t *ev;
		json_array_foreach(data, i, ev) {
			handle_event(w, ev, NULL);
			idle_last = session_watch_next(ev, w->opt->until_idle) == WATCH_IDLE;
			if (w->next == WATCH_ENDED)
				break;
		}
		const char *next = client_json_str(r.body, "next_page");
		if (w->next != WATCH_ENDED && next && *next && json_array_size(data) > 0)
			page = strdup(next);
		client_reply_free(&r);
		if (!page)
			break;
	}
	/* An idle in the history ends the watch only if nothing came after it. */
	if (w->next == WATCH_IDLE && !idle_last)
		w->next = WATCH_GO_ON;
	return rc;
}

/* ---- the stream ---- */

static int on_sse_event(const struct sse_event *e, void *userdata)
{
	struct watch *w = userdata;
	json_error_t jerr;
	json_t *ev = json_loadb(e->data, e->data_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(ev)) {
		w->bad_event = 1;
		json_decref(ev);
		return 1;
	}
	handle_event(w, ev, e->id);
	json_decref(ev);
	return w->next != WATCH_GO_ON;
}

static size_t on_stream_bytes(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct watch *w = userdata;
	size_t n = size * nmemb;
	if (!w->status)
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->status != 200) {
		buf_append(&w->error_body, data, n);
		return n; /* a refusal's body past its maximum is cut, not an error */
	}
	if (!w->synced) {
		/* Held until the history is listed, so the events print in order. */
		buf_append(&w->pending, data, n);
		return w->pending.failed ? 0 : n;
	}
	/* Anything but SSE_OK ends this connection: returning less than n aborts it. */
	return sse_feed(&w->parser, data, n) == SSE_OK ? n : 0;
}

enum follow { FOLLOW_RECONNECT, FOLLOW_DONE, FOLLOW_FAILED };

/* Once the stream is open, list the history, then parse what the stream sent meanwhile.
 * The server's stream carries only the events committed after it opened, so listing after
 * opening leaves no gap; events in both are printed once. Returns 0 to go on reading. */
static int sync_history(struct watch *w, enum follow *rc)
{
	w->synced = 1;
	enum list_result l = list_history(w);
	if (l == LIST_REFUSED) {
		*rc = FOLLOW_FAILED;
		return -1;
	}
	if (l == LIST_TRANSIENT || w->next != WATCH_GO_ON)
		return -1;
	if (w->pending.len && sse_feed(&w->parser, w->pending.data, w->pending.len) != SSE_OK)
		return -1;
	return w->next != WATCH_GO_ON ? -1 : 0;
}

/* Run the configured stream transfer with a multi handle, so the history can be listed
 * (outside any callback) as soon as the stream's headers are in. */
static CURLcode run_stream(struct watch *w, enum follow *rc)
{
	CURLM *multi = curl_multi_init();
	if (!multi || curl_multi_add_handle(multi, w->curl) != CURLM_OK) {
		if (multi)
			curl_multi_cleanup(multi);
		return CURLE_OUT_OF_MEMORY;
	}
	CURLcode res = CURLE_OK;
	int running = 1, stop = 0;
	while (running && !stop) {
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		if (!w->synced) {
			long status = 0;
			curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
			if (status == 200 && sync_history(w, rc))
				stop = 1;
		}
		if (w->next != WATCH_GO_ON || w->bad_event || w->parser.state != SSE_OK)
			stop = 1;
		if (running && !stop)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
	int left;
	for (CURLMsg *m; (m = curl_multi_info_read(multi, &left));)
		if (m->msg == CURLMSG_DONE)
			res = m->data.result;
	if (!w->status)
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
	curl_multi_remove_handle(multi, w->curl);
	curl_multi_cleanup(multi);
	return res;
}

/* Free a header list, wiping it first: it may hold the credential. */
static void free_headers(struct curl_slist *list)
{
	for (struct curl_slist *h = list; h; h = h->next)
		memset(h->data, 0, strlen(h->data));
	curl_slist_free_all(list);
}

/* Append `line` to `list`. A NULL line (its buffer ran out of memory) or a failed append
 * frees the list and returns NULL, which the caller reports as out of memory. */
static struct curl_slist *add_header(struct curl_slist *list, const char *line)
{
	struct curl_slist *next = list && line ? curl_slist_append(list, line) : NULL;
	if (!next)
		free_headers(list);
	return next;
}

/* One connection: read the stream until it ends, breaks, or the watch is over. */
static enum follow follow_once(struct watch *w)
{
	struct buf url, auth, last;
	buf_init(&url, 8192);
	buf_init(&auth, 4096);
	buf_init(&last, 512);
	buf_puts(&url, w->c->base_url);
	buf_puts(&url, "/v1/sessions/");
	client_put_escaped(&url, w->session_id);
	buf_puts(&url, "/events/stream");
	struct curl_slist *headers = curl_slist_append(NULL, "anthropic-beta: " CLIENT_BETA);
	headers = add_header(headers, "Accept: text/event-stream");
	if (w->c->credential) {
		buf_puts(&auth, "Authorization: Bearer ");
		buf_puts(&auth, w->c->credential);
		headers = add_header(headers, auth.failed ? NULL : auth.data);
	}
	if (w->last_id[0]) {
		buf_puts(&last, "Last-Event-ID: ");
		buf_puts(&last, w->last_id);
		headers = add_header(headers, last.failed ? NULL : last.data);
	}
	enum follow rc = FOLLOW_RECONNECT;
	w->status = 0;
	w->bad_event = 0;
	w->synced = 0;
	buf_init(&w->pending, WATCH_MAX_EVENT);
	buf_init(&w->error_body, 64 * 1024);
	sse_init(&w->parser, WATCH_MAX_EVENT, WATCH_MAX_EVENT, w->last_id, on_sse_event, NULL, w);
	if (!headers || url.failed || auth.failed || last.failed) {
		fprintf(stderr, "%s: out of memory\n", prog);
		rc = FOLLOW_FAILED;
		goto out;
	}
	CURL *curl = w->curl;
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url.data);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	/* No overall timeout: a stream lasts as long as the session. Silence does end it. */
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)WATCH_SILENCE_S);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_stream_bytes);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, w);
	CURLcode res = run_stream(w, &rc);
	if (rc == FOLLOW_FAILED) {
		/* The history was refused: already said why. */
	} else if (w->next != WATCH_GO_ON) {
		rc = FOLLOW_DONE;
	} else if (w->bad_event) {
		fprintf(stderr, "%s: the stream sent an event that is not a JSON object\n", prog);
		rc = FOLLOW_FAILED;
	} else if (w->parser.state == SSE_TOO_LONG || w->parser.state == SSE_NO_MEMORY) {
		fprintf(stderr, "%s: the stream sent an event larger than %u bytes\n", prog, WATCH_MAX_EVENT);
		rc = FOLLOW_FAILED;
	} else if (w->status >= 400 && w->status < 500 && w->status != 408 && w->status != 429) {
		json_t *body = json_loadb(w->error_body.data ? w->error_body.data : "", w->error_body.len, 0, NULL);
		const char *msg = client_json_str(json_object_get(body, "error"), "message");
		fprintf(stderr, "%s: the stream was refused: HTTP %ld: %s\n", prog, w->status, msg ? msg : "");
		json_decref(body);
		rc = FOLLOW_FAILED;
	} else if (res != CURLE_OK || w->status != 200) {
		fprintf(stderr, "%s: the stream broke (%s); reconnecting\n", prog,
			res != CURLE_OK ? curl_easy_strerror(res) : "the server refused it for now");
	} else {
		fprintf(stderr, "%s: the stream ended; reconnecting\n", prog);
	}
out:
	if (w->parser.retry_ms >= 0)
		w->retry_ms = w->parser.retry_ms < 60000 ? w->parser.retry_ms : 60000;
	if (w->status == 200)
		w->connected = 1;
	sse_free(&w->parser);
	buf_free(&w->error_body);
	buf_free(&w->pending);
	free_headers(headers);
	if (auth.data)
		memset(auth.data, 0, auth.cap);
	buf_free(&auth);
	buf_free(&url);
	buf_free(&last);
	return rc;
}

int session_watch(struct client *c, const char *session_id, const struct watch_options *opt)
{
	struct watch w = {.c = c, .session_id = session_id, .opt = opt, .seen = json_object()};
	w.curl = curl_easy_init();
	int status = 1;
	if (!w.seen || !w.curl) {
		fprintf(stderr, "%s: out of memory\n", prog);
		goto out;
	}
	int failures = 0;
	w.retry_ms = -1;
	while (w.next == WATCH_GO_ON) {
		w.connected = 0;
		enum follow rc = follow_once(&w);
		if (rc == FOLLOW_FAILED)
			goto out;
		if (rc == FOLLOW_DONE)
			break;
		/* Back off between reconnections: the server's retry delay, else 0.5 s doubling
		 * to 8 s while connections keep failing. */
		failures = w.connected ? 0 : failures + 1;
		long delay_ms = w.retry_ms >= 0 ? w.retry_ms : 250L << (failures < 5 ? failures : 5);
		usleep((useconds_t)delay_ms * 1000);
	}
	status = 0;
out:
	if (w.curl)
		curl_easy_cleanup(w.curl);
	json_decref(w.seen);
	return status;
}
