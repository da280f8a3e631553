/* test_journal.c — records survive, replay in order, and a torn tail is cut. */
#include "journal.h"

#include "err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

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

Test(journal, replay_errors_fail_the_open, .timeout = 30)
{
    const char *path = rwt_path(rwt_dir, "journal.jsonl");
    const char *text = "{\"ev\":\"a\"}\n";
    cr_assert_eq(rwt_write_file(path, text, strlen(text)), 0);
    journal_t *j = NULL;
    cr_assert_eq(journal_open(path, true, refuse, NULL, &j, NULL), RW_ESTATE);
    cr_assert_lt(journal_open("/nonexistent-rw/j.jsonl", true, NULL, NULL, &j, NULL), 0);
    /* a FIFO is refused at once: replaying it waited for a writer for good */
    const char *fifo = rwt_path(rwt_dir, "fifo.jsonl");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(journal_open(fifo, true, NULL, NULL, &j, NULL), RW_ENOTFILE);
}

/* A record the disk takes only in part (full, or over a size limit, as
 * here) is cut off again: the records after it, once there is room, follow
 * whole ones, and the journal still replays. */
Test(journal, a_record_written_in_part_is_cut_back)
{
    const char *path = rwt_path(rwt_dir, "journal.jsonl");
    journal_t *j;
    cr_assert_eq(journal_open(path, true, NULL, NULL, &j, NULL), 0);
    cr_assert_eq(journal_append(j, "done", json_pack("{s:i}", "v", 1)), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    struct rlimit was, small;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
    small = was;
    small.rlim_cur = (rlim_t)st.st_size + 20; /* room for part of the next record */
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    char pad[200];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    int rc = journal_append(j, "lease", json_pack("{s:s}", "pad", pad));
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, old);
    cr_assert_eq(rc, -EFBIG, "%d", rc);
    struct stat after;
    cr_assert_eq(stat(path, &after), 0);
    cr_assert_eq(after.st_size, st.st_size, "the part written is still there");
    cr_assert_eq(journal_append(j, "done", json_pack("{s:i}", "v", 2)), 0);
    cr_assert_eq(journal_count(j), 2);
    journal_destroy(&j);
    seen_t s = {0};
    cr_assert_eq(journal_open(path, true, collect, &s, &j, NULL), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.vals[0], 1);
    cr_assert_eq(s.vals[1], 2);
    journal_destroy(&j);
}
