/* test_bring.c — a domain's data as a bringing worker reads it: the way
 * `rewire data import` does, whatever the file's shape. */
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

/* Records without a domain get the one brought, and the split is the
 * importer's own (a file marking every pair eval is split as any other):
 * the counts are those of `rewire data import`. */
Test(bring, reads_a_file_as_data_import_does)
{
    const char *nodom = rwt_path(rwt_dir, "nodom.jsonl"), *alleval = rwt_path(rwt_dir, "e.jsonl");
    write_records(nodom, 200, "train", NULL);
    write_records(alleval, 200, "eval", "newd");
    const char *files[] = {nodom, alleval};
    for (int k = 0; k < 2; k++) {
        size_t train, eval;
        imported(files[k], "newd", &train, &eval);
        bring_t b;
        char why[256] = "", cache[700];
        snprintf(cache, sizeof cache, "%s/cache%d", rwt_dir, k);
        cr_assert_eq(bring_prepare("newd", files[k], false, cache, &b, why, sizeof why), 0,
                     "%s: %s", files[k], why);
        cr_assert_eq(b.pairs, 200);
        cr_assert_eq(b.train, train, "%s: %llu train pairs, data import %zu", files[k],
                     (unsigned long long)b.train, train);
        cr_assert_eq(b.eval, eval);
        cr_assert(b.train > 0 && b.eval > 0);
    }
}
