/* test_call_list.c - unit tests of the list reply budget (call_list_* in src/api/call.c).
 *
 * The page ends before the item that takes it past the budget and stays valid JSON; the
 * first item is admitted whatever its size; items within the budget are all kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "api/call.h"
#include "repeat.h"

/* Encode items of the given sizes into a list of `budget`; returns the closed reply. */
static json_t *page(size_t budget, const size_t *sizes, size_t n, size_t *shown, int *cut)
{
	struct call_list l;
	call_list_begin(&l, budget);
	for (size_t i = 0; i < n; i++) {
		size_t mark = l.body.len;
		char *text = repeat("x", sizes[i]);
		jsonw_obj_open(&l.w);
		jsonw_key(&l.w, "v");
		jsonw_str(&l.w, text);
		jsonw_obj_close(&l.w);
		free(text);
		if (!call_list_admit(&l, mark))
			break;
	}
	jsonw_arr_close(&l.w);
	jsonw_key(&l.w, "next_page");
	jsonw_null(&l.w);
	jsonw_obj_close(&l.w);
	assert_false(l.body.failed);
	*shown = l.shown;
	*cut = l.cut;
	json_t *v = json_loadb(l.body.data, l.body.len, 0, NULL);
	assert_non_null(v);
	assert_int_equal(strlen(l.body.data), l.body.len);
	buf_free(&l.body);
	return v;
}

static void test_stops_at_budget(void **state)
{
	size_t sizes[] = {100, 100, 100, 100}, shown;
	int cut;
	json_t *v = page(250, sizes, 4, &shown, &cut);
	assert_int_equal(2, shown);
	assert_true(cut);
	assert_int_equal(2, json_array_size(json_object_get(v, "data")));
	json_decref(v);
}

static void test_first_item_always_fits(void **state)
{
	size_t sizes[] = {5000, 10}, shown;
	int cut;
	json_t *v = page(100, sizes, 2, &shown, &cut);
	assert_int_equal(1, shown);
	assert_true(cut);
	assert_int_equal(5000, strlen(json_string_value(json_object_get(json_array_get(json_object_get(v, "data"), 0), "v"))));
	json_decref(v);
}

static void test_within_budget_keeps_all(void **state)
{
	size_t sizes[] = {10, 10, 10}, shown;
	int cut;
	json_t *v = page(4096, sizes, 3, &shown, &cut);
	assert_int_equal(3, shown);
	assert_false(cut);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stops_at_budget),
		cmocka_unit_test(test_first_item_always_fits),
		cmocka_unit_test(test_within_budget_keeps_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
