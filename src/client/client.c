/* client.c - libcurl easy-handle client with the API's headers and error envelope
 * (see client.h). */
#include "client/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/pem.h"

/* The --ca-file path, set once at startup (client_set_ca_file); NULL = the system's store. */
static char *ca_file;

int client_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int client_set_ca_file(const char *path, char *why, size_t why_len)
{
	free(ca_file);
	ca_file = NULL;
	if (!path)
		return 0;
	char what[4200];
	snprintf(what, sizeof(what), "--ca-file %s", path);
	struct pem_file f;
	if (pem_file_read(path, CLIENT_CA_FILE_MAX, what, &f, why, why_len))
		return -1;
	int certs = pem_count_certificates(f.data, f.len);
	pem_file_free(&f);
	if (certs == 0) {
		snprintf(why, why_len, "%s: holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", what);
		return -1;
	}
	/* libcurl opens the file itself, relative to the working directory of each request. */
	ca_file = realpath(path, NULL);
	if (!ca_file) {
		snprintf(why, why_len, "%s: cannot resolve the path", what);
		return -1;
	}
	return 0;
}

/* Copy at most cap-1 bytes of src (which need not be NUL-terminated) into dst. */
static void copy_bounded(char *dst, size_t cap, const char *src, size_t len)
{
	if (cap == 0)
		return;
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void wipe_free(char *s)
{
	if (!s)
		return;
	/* A volatile pointer keeps the compiler from dropping the wipe as a dead store. */
	volatile char *p = s;
	while (*p)
		*p++ = '\0';
	free(s);
}

int client_init(struct client *c, const char *base_url, const char *credential)
{
	memset(c, 0, sizeof(*c));
	size_t len = strlen(base_url);
	while (len > 0 && base_url[len - 1] == '/')
		len--;
	c->base_url = strndup(base_url, len);
	c->credential = credential ? strdup(credential) : NULL;
	c->curl = curl_easy_init();
	if (!c->base_url || (credential && !c->credential) || !c->curl) {
		client_free(c);
		return -1;
	}
	return 0;
}

int client_set_credential(struct client *c, const char *credential)
{
	char *copy = NULL;
	if (credential && !(copy = strdup(credential)))
		return -1;
	wipe_free(c->credential);
	c->credential = copy;
	return 0;
}

void client_free(struct client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->base_url);
	wipe_free(c->credential);
	memset(c, 0, sizeof(*c));
}

void client_reply_free(struct client_reply *r)
{
	if (r->body)
		json_decref(r->body);
	r->body = NULL;
}

int client_is_transient(const struct client_reply *r)
{
	if (r->status == 0)
		return !r->tls_unverified;
	/* A page that is not JSON on a 2xx is a proxy or a bug in the way: worth another try.
	 * On a 401/403/404 the status says enough, whatever the body. */
	if (r->bad_body && r->status >= 200 && r->status < 300)
		return 1;
	return r->status == 408 || r->status == 409 || r->status == 429 || r->status >= 500;
}

void client_put_escaped(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			buf_putc(b, (char)ch);
		} else {
			char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			buf_append(b, enc, 3);
		}
	}
}

const char *client_json_str(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

struct transfer {
	struct buf body;
	struct client_reply *reply;
	const atomic_int *cancel;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;
	buf_append(&t->body, data, n);
	/* Returning less than n makes libcurl fail the transfer: the reply is over its cap. */
	return t->body.failed ? 0 : n;
}

/* Header lines arrive one at a time, with their CRLF. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;
	size_t len = n;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	static const char rid[] = "request-id:";
	static const char ra[] = "retry-after:";
	if (len > sizeof(rid) - 1 && strncasecmp(data, rid, sizeof(rid) - 1) == 0) {
		const char *v = data + sizeof(rid) - 1;
		size_t vlen = len - (sizeof(rid) - 1);
		while (vlen > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		copy_bounded(t->reply->request_id, sizeof(t->reply->request_id), v, vlen);
	} else if (len > sizeof(ra) - 1 && strncasecmp(data, ra, sizeof(ra) - 1) == 0) {
		char tmp[32];
		copy_bounded(tmp, sizeof(tmp), data + sizeof(ra) - 1, len - (sizeof(ra) - 1));
		char *end;
		long v = strtol(tmp, &end, 10);
		if (end != tmp && v >= 0 && v < 86400)
			t->reply->retry_after_s = (int)v;
	}
	return n;
}

/* Append a header line; returns 1, or 0 when memory ran out (the list is unchanged). */
static int add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *grown = curl_slist_append(*list, line);
	if (!grown)
		return 0;
	*list = grown;
	return 1;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct transfer *t = userdata;
	return t->cancel && atomic_load(t->cancel) ? 1 : 0;
}

/* Fill the error fields from SPEC's envelope
 * {"type":"error","error":{"type":T,"message":M,"details":{"error_code":C}}}. */
static void read_envelope(struct client_reply *r)
{
	json_t *err = json_is_object(r->body) ? json_object_get(r->body, "error") : NULL;
	if (!json_is_object(err))
		return;
	const char *type = client_json_str(err, "type");
	const char *message = client_json_str(err, "message");
	const char *code = client_json_str(json_object_get(err, "details"), "error_code");
	if (type)
		copy_bounded(r->error_type, sizeof(r->error_type), type, strlen(type));
	if (message)
		copy_bounded(r->message, sizeof(r->message), message, strlen(message));
	if (code)
		copy_bounded(r->error_code, sizeof(r->error_code), code, strlen(code));
}

int client_request(struct client *c, const char *method, const char *path, const char *body_json,
		   const char *const *extra_headers, long timeout_ms, struct client_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->retry_after_s = -1;
	CURL *curl = c->curl;
	struct transfer t = {.reply = r, .cancel = c->cancel};
	buf_init(&t.body, CLIENT_MAX_REPLY);
	struct buf url, auth;
	buf_init(&url, 8192);
	buf_init(&auth, 4096);
	buf_puts(&url, c->base_url);
	buf_puts(&url, path);
	struct curl_slist *headers = NULL;
	int rc = -1;
	if (url.failed) {
		snprintf(r->message, sizeof(r->message), "request URL is too long");
		goto out;
	}

	/* A reset handle keeps its connection cache, so keep-alive survives between calls. */
	curl_easy_reset(curl);
	/* "Expect:" keeps libcurl from waiting for "100 Continue" on larger bodies. */
	int ok = add_header(&headers, "anthropic-beta: " CLIENT_BETA) &&
		 add_header(&headers, "Accept: application/json") && add_header(&headers, "Expect:");
	if (ok && c->credential) {
		buf_puts(&auth, "Authorization: Bearer ");
		buf_puts(&auth, c->credential);
		ok = !auth.failed && add_header(&headers, auth.data);
	}
	if (ok && body_json)
		ok = add_header(&headers, "Content-Type: application/json");
	for (const char *const *e = extra_headers; ok && e && *e; e++)
		ok = add_header(&headers, *e);
	if (!ok) {
		snprintf(r->message, sizeof(r->message), "out of memory building the request");
		goto out;
	}

	curl_easy_setopt(curl, CURLOPT_URL, url.data);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	/* Signals would otherwise interrupt name resolution in a multi-threaded worker. */
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* libcurl verifies peer and host name by default; only the trusted CAs may change. Without
	 * a CA path as well, the system's hashed directory would still be searched. */
	if (ca_file) {
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
		curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
	}
	char curl_error[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "POST") == 0) {
		const char *payload = body_json ? body_json : "";
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
	} else {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
		if (body_json) {
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body_json));
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body_json);
		}
	}

	CURLcode res = curl_easy_perform(curl);
	/* The buffer lives on this stack frame: the handle must not keep pointing at it. */
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	if (res != CURLE_OK) {
		if (res == CURLE_ABORTED_BY_CALLBACK)
			r->canceled = 1;
		/* The error buffer names the cause ("SSL certificate problem: self-signed
		 * certificate"), where curl_easy_strerror only names the class. */
		const char *cause = curl_error[0] ? curl_error : curl_easy_strerror(res);
		if (res == CURLE_PEER_FAILED_VERIFICATION || res == CURLE_SSL_CACERT_BADFILE ||
		    res == CURLE_SSL_ISSUER_ERROR) {
			r->tls_unverified = 1;
			snprintf(r->message, sizeof(r->message),
				 "TLS verification of the server failed: %s (trust the CA that signed its certificate "
				 "with --ca-file PATH or ENVIROND_CA_FILE)", cause);
		} else if (res == CURLE_WRITE_ERROR && t.body.failed) {
			snprintf(r->message, sizeof(r->message), "reply larger than %u bytes", CLIENT_MAX_REPLY);
		} else {
			snprintf(r->message, sizeof(r->message), "%s", cause);
		}
		r->request_id[0] = '\0';
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	r->status = (int)status;
	rc = 0;

	if (t.body.len > 0) {
		json_error_t jerr;
		r->body = json_loadb(t.body.data, t.body.len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
		if (!r->body)
			r->bad_body = 1;
	}
	if (r->status < 200 || r->status > 299)
		read_envelope(r);
	if (r->bad_body && !r->message[0])
		snprintf(r->message, sizeof(r->message), "HTTP %d with a reply that is not JSON", r->status);
	else if (!r->message[0] && (r->status < 200 || r->status > 299))
		snprintf(r->message, sizeof(r->message), "HTTP %d", r->status);
out:
	/* The Authorization line holds the credential: wipe every copy before freeing it. */
	for (struct curl_slist *h = headers; h; h = h->next)
		memset(h->data, 0, strlen(h->data));
	curl_slist_free_all(headers);
	if (auth.data)
		memset(auth.data, 0, auth.cap);
	buf_free(&auth);
	buf_free(&url);
	buf_free(&t.body);
	return rc;
}
