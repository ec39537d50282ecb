/* store.c - the backend-neutral part of the store: choosing a backend, and releasing
 * the outputs of its verbs (see store.h). */
#include "store/store.h"
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_is_postgres(const char *url)
{
	return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

void store_describe(const char *url, char *out, size_t cap)
{
	if (store_is_postgres(url))
		store_pg_describe(url, out, cap);
	else
		snprintf(out, cap, "%s", url);
}

enum err store_open(const char *url, size_t pool, struct store **out, struct errbuf *eb)
{
	if (store_is_postgres(url))
		return store_pg_open(url, pool, out, eb);
	return store_sqlite_open(url, out, eb);
}

void agent_rec_clear(struct agent_rec *a)
{
	json_decref(a->config);
	a->config = NULL;
}

void agent_page_clear(struct agent_page *p)
{
	for (size_t i = 0; i < p->count; i++)
		agent_rec_clear(&p->items[i]);
	free(p->items);
	memset(p, 0, sizeof(*p));
}

void session_rec_clear(struct session_rec *r)
{
	json_decref(r->agent);
	json_decref(r->metadata);
	json_decref(r->title);
	r->agent = r->metadata = r->title = NULL;
	session_state_clear(&r->state);
}

void session_page_clear(struct session_page *p)
{
	for (size_t i = 0; i < p->count; i++)
		session_rec_clear(&p->items[i]);
	free(p->items);
	memset(p, 0, sizeof(*p));
}

void event_page_clear(struct event_page *p)
{
	json_decref(p->items);
	memset(p, 0, sizeof(*p));
}

void agent_turn_clear(struct agent_turn *t)
{
	json_decref(t->agent);
	t->agent = NULL;
}

void work_item_clear(struct work_item *w)
{
	json_decref(w->metadata);
	w->metadata = NULL;
}

void env_page_clear(struct env_page *p)
{
	for (size_t i = 0; i < p->count; i++)
		environment_clear(&p->items[i]);
	free(p->items);
	memset(p, 0, sizeof(*p));
}

void env_key_page_clear(struct env_key_page *p)
{
	free(p->items);
	memset(p, 0, sizeof(*p));
}

void work_page_clear(struct work_page *p)
{
	for (size_t i = 0; i < p->count; i++)
		work_item_clear(&p->items[i]);
	free(p->items);
	memset(p, 0, sizeof(*p));
}
