/* after_commit.c - the effects a request records while its write is not yet committed. */
#include "api/after_commit.h"

#include <stdio.h>
#include <stdlib.h>

static __thread struct after_commit *recording;

void after_commit_record_into(struct after_commit *ac) { recording = ac; }

int after_commit_add(struct after_commit *ac, enum after_commit_kind kind, const char *key, size_t n, int64_t at,
		     void *req)
{
	if (ac->n == ac->cap) {
		size_t cap = ac->cap ? ac->cap * 2 : 4;
		struct after_commit_effect *grown = cap <= 4096 ? realloc(ac->list, cap * sizeof(*grown)) : NULL;
		if (!grown) {
			ac->overflow = 1;
			return -1;
		}
		ac->list = grown;
		ac->cap = cap;
	}
	struct after_commit_effect *e = &ac->list[ac->n++];
	e->kind = kind;
	e->n = n;
	e->handed = 0;
	e->at = at;
	e->req = req;
	snprintf(e->key, sizeof(e->key), "%s", key ? key : "");
	return 0;
}

int after_commit_record(enum after_commit_kind kind, const char *key, size_t n, int64_t at)
{
	struct after_commit *ac = recording;
	if (!ac)
		return 0;
	if (!ac->overflow)
		after_commit_add(ac, kind, key, n, at, NULL);
	return 1;
}

void after_commit_clear(struct after_commit *ac)
{
	free(ac->list);
	ac->list = NULL;
	ac->n = ac->cap = 0;
	ac->overflow = 0;
}
