/* db.c - what every driver of db.h shares. */
#include "store/db.h"

#include <string.h>

void db_col_copy(struct db_stmt *st, int i, char *out, size_t cap)
{
	const char *t = db_col_text(st, i);
	size_t n = t ? db_col_bytes(st, i) : 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(out, t, n);
	out[n] = '\0';
}

static int ends_with(const char *sql, size_t len, const char *tail, size_t *cut)
{
	size_t n = strlen(tail);
	if (len < n || memcmp(sql + len - n, tail, n) != 0)
		return 0;
	*cut = len - n;
	return 1;
}

size_t db_sql_unlocked_len(const char *sql)
{
	static const char *const tails[] = {" FOR UPDATE SKIP LOCKED", " FOR UPDATE", " FOR SHARE SKIP LOCKED",
					    " FOR SHARE"};
	size_t len = strlen(sql), cut;
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++)
		if (ends_with(sql, len, tails[i], &cut))
			return cut;
	return len;
}
