/* test_bring.c — a domain's data as a bringing worker reads it: the way
 * the job's own --data is read. */
#include "bring.h"
#include "dataset.h"
#include "err.h"
#include "import.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

TestSuite(bring, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

/* n normalized records (with "split", as `data import` writes them), all
 * marked split, and with domain (NULL: no domain field) into path. */
static void write_records(const char *path, int n, const char *split, const char *domain)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) {
        fprintf(f,
                "{\"prompt\":\"question %d?\",\"chosen\":\"a good answer %d\","
                "\"rejected\":\"a bad one %d\",\"split\":\"%s\"",
                i, i, i, split);
        if (domain)
            fprintf(f, ",\"domain\":\"%s\"", domain);
        fputs("}\n", f);
    }
    fclose(f);
}

/* What `rewire data import` makes of path as domain: train and eval pairs. */
static void imported(const char *path, const char *domain, size_t *train, size_t *eval)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_import_opts_t io;
    rw_import_opts_init(&io);
    io.domain = domain;
    cr_assert_eq(rw_import_files(&ds, &path, 1, &io, NULL), 0);
    *train = *eval = 0;
    for (size_t i = 0; i < ds.n; i++)
        ++*(ds.pairs[i].split == RW_SPLIT_EVAL ? eval : train);
    rw_dataset_fini(&ds);
}

/* A file in rewire's normalized form (as `data import` writes it) keeps its
 * split, as the job's own --data does; any other is split as `data import`
 * splits it, and records without a domain get the one brought. */
Test(bring, reads_a_file_as_the_jobs_data_is_read)
{
    const char *nodom = rwt_path(rwt_dir, "nodom.jsonl"), *mixed = rwt_path(rwt_dir, "m.jsonl");
    write_records(nodom, 200, "train", NULL);
    FILE *f = fopen(mixed, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 40; i++) /* 12 of 40 held out: not the importer's 10% */
        fprintf(f,
                "{\"prompt\":\"question %d?\",\"chosen\":\"a good answer %d\","
                "\"rejected\":\"a bad one %d\",\"domain\":\"newd\",\"split\":\"%s\"}\n",
                i, i, i, i % 10 < 3 ? "eval" : "train");
    fclose(f);
    size_t train, eval;
    imported(nodom, "newd", &train, &eval);
    bring_t b;
    char why[256] = "", cache[700];
    snprintf(cache, sizeof cache, "%s/cache0", rwt_dir);
    cr_assert_eq(bring_prepare("newd", nodom, false, cache, &b, why, sizeof why), 0, "%s", why);
    cr_assert_eq(b.pairs, 200);
    cr_assert_eq(b.train, train, "%llu train pairs, data import %zu", (unsigned long long)b.train,
                 train);
    cr_assert_eq(b.eval, eval);
    snprintf(cache, sizeof cache, "%s/cache1", rwt_dir);
    cr_assert_eq(bring_prepare("newd", mixed, false, cache, &b, why, sizeof why), 0, "%s", why);
    cr_assert_eq(b.train, 28, "the file's own split: %llu train", (unsigned long long)b.train);
    cr_assert_eq(b.eval, 12, "the file's own split: %llu held out", (unsigned long long)b.eval);
    /* a normalized file holding no train pair is refused, not split again */
    const char *alleval = rwt_path(rwt_dir, "e.jsonl");
    write_records(alleval, 200, "eval", "newd");
    snprintf(cache, sizeof cache, "%s/cache2", rwt_dir);
    cr_assert_lt(bring_prepare("newd", alleval, false, cache, &b, why, sizeof why), 0);
    cr_assert(strstr(why, "needs train and held-out pairs (it has 0 and 200)"), "%s", why);
}
