/* test_journal.c — records survive, replay in order, and a torn tail is cut. */
#include "journal.h"

#include "err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

TestSuite(journal, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

typedef struct seen {
    char evs[16][16];
    long vals[16];
    size_t n;
} seen_t;

static int collect(void *ctx, const json_t *rec)
{
    seen_t *s = ctx;
    if (s->n < 16) {
        snprintf(s->evs[s->n], sizeof s->evs[0], "%s",
                 json_string_value(json_object_get(rec, "ev")));
        s->vals[s->n] = (long)json_integer_value(json_object_get(rec, "v"));
    }
    s->n++;
    return 0;
}

Test(journal, appends_and_replays_in_order)
{
    const char *path = rwt_path(rwt_dir, "journal.jsonl");
    journal_t *j;
    size_t n;
    cr_assert_eq(journal_open(path, true, collect, &(seen_t){0}, &j, &n), 0);
    cr_assert_eq(n, 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(journal_append(j, i % 2 ? "lease" : "done", json_pack("{s:i}", "v", i)), 0);
    cr_assert_eq(journal_append(j, "bare", NULL), 0);
    cr_assert_eq(journal_count(j), 6);
    journal_destroy(&j);
    cr_assert_null(j);

    seen_t s = {0};
    cr_assert_eq(journal_open(path, true, collect, &s, &j, &n), 0);
    cr_assert_eq(n, 6);
    cr_assert_eq(s.n, 6);
    cr_assert_str_eq(s.evs[0], "done");
    cr_assert_str_eq(s.evs[3], "lease");
    cr_assert_eq(s.vals[4], 4);
    cr_assert_str_eq(s.evs[5], "bare");
    cr_assert_eq(journal_append(j, "more", json_pack("{s:i}", "v", 7)), 0);
    journal_destroy(&j);
    s = (seen_t){0};
    cr_assert_eq(journal_open(path, false, collect, &s, &j, NULL), 0);
    cr_assert_eq(s.n, 7);
    cr_assert_eq(s.vals[6], 7);
    journal_destroy(&j);
}

Test(journal, torn_last_record_is_cut_off)
{
    const char *path = rwt_path(rwt_dir, "journal.jsonl");
    const char *text = "{\"ev\":\"a\",\"v\":1}\n{\"ev\":\"b\",\"v\":2}\n{\"ev\":\"c\",\"v";
    cr_assert_eq(rwt_write_file(path, text, strlen(text)), 0);
    journal_t *j;
    seen_t s = {0};
    cr_assert_eq(journal_open(path, true, collect, &s, &j, NULL), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(journal_append(j, "d", json_pack("{s:i}", "v", 4)), 0);
    journal_destroy(&j);
    s = (seen_t){0};
    cr_assert_eq(journal_open(path, true, collect, &s, &j, NULL), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.evs[2], "d");
    journal_destroy(&j);
}

Test(journal, garbage_in_the_middle_is_an_error)
{
    const char *path = rwt_path(rwt_dir, "journal.jsonl");
    const char *text = "{\"ev\":\"a\"}\nnot json\n{\"ev\":\"b\"}\n";
    cr_assert_eq(rwt_write_file(path, text, strlen(text)), 0);
    journal_t *j = NULL;
    cr_assert_eq(journal_open(path, true, collect, &(seen_t){0}, &j, NULL), RW_EPARSE);
    cr_assert_null(j);
}

static int refuse(void *ctx, const json_t *rec)
{
    (void)ctx, (void)rec;
    return RW_ESTATE;
}

Test(journal, replay_errors_fail_the_open)
{
    const char *path = rwt_path(rwt_dir, "journal.jsonl");
    const char *text = "{\"ev\":\"a\"}\n";
    cr_assert_eq(rwt_write_file(path, text, strlen(text)), 0);
    journal_t *j = NULL;
    cr_assert_eq(journal_open(path, true, refuse, NULL, &j, NULL), RW_ESTATE);
    cr_assert_lt(journal_open("/nonexistent-rw/j.jsonl", true, NULL, NULL, &j, NULL), 0);
}
