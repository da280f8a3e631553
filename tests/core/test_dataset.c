/* test_dataset.c — the normalized file: exact bytes, round trips, and saves
 * that either replace the file whole or leave everything as it was. */
#include "dataset.h"
#include "err.h"
#include "support.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

TestSuite(dataset, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

static rw_pair_t *add(rw_dataset_t *ds, const char *prompt, const char *chosen,
                      const char *rejected, const char *domain, rw_split_t split)
{
    rw_pair_t *p = rw_dataset_add(ds, prompt, strlen(prompt), chosen, strlen(chosen), rejected,
                                  strlen(rejected), domain);
    p->split = split;
    return p;
}

/* How many entries rwt_dir holds, besides . and .. */
static size_t count_entries(const char *d)
{
    DIR *h = opendir(d);
    cr_assert_not_null(h);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(h)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(h);
    return n;
}

Test(dataset, saves_one_compact_object_a_line_in_key_order)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    add(&ds, "\n\nHuman: \"hi\"\t\xc3\xa9", "a/b", "\x01", "d", RW_SPLIT_TRAIN);
    add(&ds, "p", "yes", "no", "other", RW_SPLIT_EVAL);
    const char *p = rwt_path(rwt_dir, "out.jsonl");
    cr_assert_eq(rw_dataset_save(&ds, p), 0);
    char *text = rwt_read_file(p, NULL);
    cr_assert_str_eq(text, "{\"prompt\":\"\\n\\nHuman: \\\"hi\\\"\\t\xc3\xa9\",\"chosen\":\"a/b\","
                           "\"rejected\":\"\\u0001\",\"domain\":\"d\",\"split\":\"train\"}\n"
                           "{\"prompt\":\"p\",\"chosen\":\"yes\",\"rejected\":\"no\","
                           "\"domain\":\"other\",\"split\":\"eval\"}\n");
    free(text);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644);
    cr_assert_eq(count_entries(rwt_dir), 1);
    rw_dataset_fini(&ds);
}

Test(dataset, load_gives_back_what_was_saved_splits_included)
{
    rw_dataset_t ds, back;
    rw_dataset_init(&ds);
    rw_dataset_init(&back);
    add(&ds, "line\nbreak", "\xe2\x80\x99quote", "plain", "a", RW_SPLIT_EVAL);
    add(&ds, "p2", "c", "r", "b", RW_SPLIT_TRAIN);
    add(&ds, "p3", "c", "r", "b", RW_SPLIT_EVAL);
    const char *p = rwt_path(rwt_dir, "rt.jsonl");
    cr_assert_eq(rw_dataset_save(&ds, p), 0);
    rw_import_opts_t o;
    rw_import_opts_init(&o);
    o.eval_fraction = 0; /* a load keeps the file's splits */
    rw_import_report_t rep;
    rw_import_report_init(&rep);
    cr_assert_eq(rw_dataset_load(&back, p, &o, &rep), 0);
    cr_assert_eq(back.n, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert(rw_pair_equal(&ds.pairs[i], &back.pairs[i]), "pair %zu", i);
        cr_assert_eq(ds.pairs[i].split, back.pairs[i].split, "pair %zu", i);
    }
    cr_assert_eq(rep.n_domains, 2);
    cr_assert_eq(rep.domains[0].eval, 1);
    cr_assert_eq(rep.domains[1].train, 1);
    cr_assert_eq(rep.domains[1].eval, 1);
    rw_import_report_fini(&rep);
    rw_dataset_fini(&ds);
    rw_dataset_fini(&back);
}

typedef struct seen {
    size_t n, line[8];
    rw_reject_t why[8];
    char msg[8][256];
} seen_t;

static void collect(void *ctx, const char *path, size_t line, const rw_rejection_t *rj)
{
    (void)path;
    seen_t *s = ctx;
    cr_assert_lt(s->n, 8);
    s->line[s->n] = line;
    s->why[s->n] = rj->why;
    snprintf(s->msg[s->n], sizeof s->msg[0], "%s", rj->msg);
    s->n++;
}

Test(dataset, load_reports_bad_lines_like_an_import)
{
    const char *p = rwt_path(rwt_dir, "hand.jsonl");
    const char text[] =
        "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\",\"split\":\"eval\"}"
        "\n"
        "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\"}\n"
        "{\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\",\"split\":\"dev\"}"
        "\n"
        "{\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\",\"split\":\"train\"}\n"
        "{\"prompt\":\"q\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\",\"split\":"
        "\"train\"";
    cr_assert_eq(rwt_write_file(p, text, sizeof text - 1), 0);
    seen_t s = {0};
    rw_import_opts_t o;
    rw_import_opts_init(&o);
    o.on_reject = collect;
    o.ctx = &s;
    o.domain = "ignored";
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(rw_dataset_load(&ds, p, &o, NULL), 0);
    cr_assert_eq(ds.n, 1);
    cr_assert_eq(ds.pairs[0].split, RW_SPLIT_EVAL);
    cr_assert_eq(s.n, 4);
    cr_assert_eq(s.line[0], 2);
    cr_assert_str_eq(s.msg[0], "missing field \"split\"");
    cr_assert_eq(s.line[1], 3);
    cr_assert_eq(s.why[1], RW_REJECT_BAD_SPLIT);
    cr_assert_str_eq(s.msg[1], "field \"split\" is not \"train\" or \"eval\"");
    cr_assert_eq(s.line[2], 4);
    cr_assert_str_eq(s.msg[2], "missing field \"domain\"");
    cr_assert_eq(s.line[3], 5);
    cr_assert_eq(s.why[3], RW_REJECT_MALFORMED_JSON);
    rw_dataset_fini(&ds);

    rw_dataset_init(&ds);
    cr_assert_eq(rw_dataset_load(&ds, rwt_path(rwt_dir, "none.jsonl"), &o, NULL), -ENOENT);
    rw_dataset_fini(&ds);
}

Test(dataset, the_same_import_gives_the_same_bytes)
{
    const char *in = rwt_path(rwt_dir, "in.jsonl");
    char text[8192];
    size_t len = 0;
    for (int i = 0; i < 60; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "{\"prompt\":\"q%d\",\"chosen\":\"y\",\"rejected\":\"n\","
                                "\"domain\":\"d%d\"}\n",
                                i, i % 2);
    cr_assert_eq(rwt_write_file(in, text, len), 0);
    const char *out[2] = {rwt_path(rwt_dir, "one.jsonl"), rwt_path(rwt_dir, "two.jsonl")};
    for (int k = 0; k < 2; k++) {
        rw_dataset_t ds;
        rw_dataset_init(&ds);
        cr_assert_eq(rw_import_files(&ds, &in, 1, NULL, NULL), 0);
        cr_assert_eq(rw_dataset_save(&ds, out[k]), 0);
        rw_dataset_fini(&ds);
    }
    size_t n1, n2;
    char *a = rwt_read_file(out[0], &n1), *b = rwt_read_file(out[1], &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, b, n1), 0);
    cr_assert(strstr(a, "\"split\":\"eval\""), "0.1 of 60 pairs held out");
    free(a);
    free(b);
}

Test(dataset, a_failed_save_leaves_no_file_and_no_temporary)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    add(&ds, "p", "a", "b", "d", RW_SPLIT_TRAIN);
    /* no such folder */
    cr_assert_eq(rw_dataset_save(&ds, rwt_path(rwt_dir, "no/such/out.jsonl")), -ENOENT);
    cr_assert_eq(count_entries(rwt_dir), 0);
    /* the target is a folder: the rename fails after the data is written */
    const char *sub = rwt_path(rwt_dir, "taken");
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(rw_dataset_save(&ds, sub), -EISDIR);
    cr_assert_eq(count_entries(rwt_dir), 1);
    /* text that is not UTF-8 cannot be written as JSON */
    const char *p = rwt_path(rwt_dir, "out.jsonl");
    cr_assert_eq(rwt_write_file(p, "old\n", 4), 0);
    add(&ds, "p", "a\xff", "b", "d", RW_SPLIT_TRAIN);
    cr_assert_eq(rw_dataset_save(&ds, p), RW_EUTF8);
    char *text = rwt_read_file(p, NULL);
    cr_assert_str_eq(text, "old\n"); /* untouched */
    free(text);
    cr_assert_eq(count_entries(rwt_dir), 2);
    rw_dataset_fini(&ds);
}

Test(dataset, a_save_replaces_an_older_file_whole)
{
    const char *p = rwt_path(rwt_dir, "out.jsonl");
    cr_assert_eq(rwt_write_file(p, "stale stale stale stale stale\n", 30), 0);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    add(&ds, "p", "a", "b", "d", RW_SPLIT_EVAL);
    cr_assert_eq(rw_dataset_save(&ds, p), 0);
    char *text = rwt_read_file(p, NULL);
    cr_assert_str_eq(text, "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"d\","
                           "\"split\":\"eval\"}\n");
    free(text);
    cr_assert_eq(count_entries(rwt_dir), 1);
    rw_dataset_fini(&ds);

    /* an empty dataset is an empty file */
    rw_dataset_init(&ds);
    cr_assert_eq(rw_dataset_save(&ds, p), 0);
    size_t n;
    text = rwt_read_file(p, &n);
    cr_assert_eq(n, 0);
    free(text);
}
