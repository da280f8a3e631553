/* test_prepare.c — the job's data stage: data in, splits, tokenizer, stats. */
#include "prepare.h"

#include "dataset.h"
#include "err.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

TestSuite(prepare, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

Test(prepare, synthetic_default_writes_state_and_is_deterministic)
{
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    o.pairs_per_domain = 200;
    o.vocab_size = 2000;
    o.state_dir = rwt_path(rwt_dir, "s1");
    coord_prep_t p;
    cr_assert_eq(coord_prepare(&o, &p), 0);
    cr_assert_eq(p.ds.n, 1000);
    cr_assert_eq(p.stats.ndomains, 5);
    size_t eval = 0;
    for (size_t i = 0; i < p.ds.n; i++)
        eval += p.ds.pairs[i].split == RW_SPLIT_EVAL;
    cr_assert(eval > 60 && eval < 140, "about 10%% held out, got %zu", eval);
    coord_prep_fini(&p);
    o.state_dir = rwt_path(rwt_dir, "s2");
    cr_assert_eq(coord_prepare(&o, &p), 0);
    coord_prep_fini(&p);
    const char *files[] = {"data.jsonl", "tokenizer.json", "stats.json"};
    for (int i = 0; i < 3; i++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/s1/%s", rwt_dir, files[i]);
        snprintf(b, sizeof b, "%s/s2/%s", rwt_dir, files[i]);
        size_t na, nb;
        char *x = rwt_read_file(a, &na), *y = rwt_read_file(b, &nb);
        cr_assert(x && y, "%s written", files[i]);
        cr_assert(na == nb && memcmp(x, y, na) == 0, "%s differs between runs", files[i]);
        free(x), free(y);
    }
    /* the state's data file reads back with its splits */
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(rw_dataset_load(&ds, rwt_path(rwt_dir, "s1/data.jsonl"), NULL, NULL), 0);
    cr_assert_eq(ds.n, 1000);
    rw_dataset_fini(&ds);
}

/* The data stage on files, into rwt_dir/s, with a vocabulary of 1,000;
 * returns its code, *p filled (the caller coord_prep_fini's it). */
static int prepare_files(const char *const *files, size_t n, coord_prep_t *p)
{
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    o.data = (const char **)malloc(n * sizeof *o.data);
    memcpy(o.data, files, n * sizeof *o.data);
    o.ndata = n;
    o.vocab_size = 1000;
    o.state_dir = rwt_path(rwt_dir, "s");
    int rc = coord_prepare(&o, p);
    coord_prep_opts_fini(&o);
    return rc;
}

/* Whether the state in rwt_dir/s has no data.jsonl. */
static bool prepared_nothing(void)
{
    struct stat st;
    return stat(rwt_path(rwt_dir, "s/data.jsonl"), &st) != 0;
}

Test(prepare, files_with_bad_records_keep_the_good_ones)
{
    const char *f = rwt_path(rwt_dir, "in.jsonl");
    const char *text = "{\"prompt\":\"p1\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"x\"}\n"
                       "{not json\n"
                       "{\"prompt\":\"p2\",\"chosen\":\"c\",\"rejected\":\"d\",\"domain\":\"y\"}\n";
    rwt_write_file(f, text, strlen(text));
    coord_prep_t p;
    cr_assert_eq(prepare_files(&f, 1, &p), 0);
    cr_assert_eq(p.ds.n, 2);
    cr_assert_eq(p.report.bad, 1);
    cr_assert_eq(p.stats.ndomains, 2);
    coord_prep_fini(&p);
}

Test(prepare, no_usable_data_is_an_error_and_writes_nothing)
{
    const char *f = rwt_path(rwt_dir, "bad.jsonl");
    rwt_write_file(f, "garbage\n", 8);
    coord_prep_t p;
    cr_assert_lt(prepare_files(&f, 1, &p), 0);
    coord_prep_fini(&p);
    cr_assert(prepared_nothing());
}

Test(prepare, a_data_file_that_cannot_be_read_is_an_error)
{
    const char *f = rwt_path(rwt_dir, "in.jsonl");
    const char *text = "{\"prompt\":\"p1\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"x\"}\n"
                       "{\"prompt\":\"p2\",\"chosen\":\"c\",\"rejected\":\"d\",\"domain\":\"y\"}\n";
    rwt_write_file(f, text, strlen(text));
    const char *files[] = {f, rwt_path(rwt_dir, "typo.jsonl")};
    coord_prep_t p;
    cr_assert_lt(prepare_files(files, 2, &p), 0, "a job without part of its data");
    coord_prep_fini(&p);
    cr_assert(prepared_nothing());
}

Test(prepare, one_domain_is_no_job)
{
    const char *f = rwt_path(rwt_dir, "in.jsonl");
    FILE *fp = fopen(f, "w");
    cr_assert_not_null(fp);
    for (int i = 0; i < 30; i++)
        fprintf(fp, "{\"prompt\":\"p%d\",\"chosen\":\"a\",\"rejected\":\"b\",\"domain\":\"x\"}\n",
                i);
    fclose(fp);
    coord_prep_t p;
    cr_assert_eq(prepare_files(&f, 1, &p), RW_EINVAL);
    coord_prep_fini(&p);
    cr_assert(prepared_nothing(), "nothing prepared");
}

Test(prepare, flags_parse_and_unknown_ones_are_left)
{
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    char *argv[] = {"--data", "a.jsonl", "--out",   "x",     "--vocab",
                    "4096",   "--data",  "b.jsonl", "--json"};
    char *rest[9];
    int nrest;
    cr_assert_eq(coord_prep_parse("t", 9, argv, &o, rest, &nrest), 0);
    cr_assert_eq(o.ndata, 2);
    cr_assert_str_eq(o.data[1], "b.jsonl");
    cr_assert_eq(o.vocab_size, 4096);
    cr_assert(o.json);
    cr_assert_eq(nrest, 2);
    cr_assert_str_eq(rest[0], "--out");
    char *bad[][2] = {{"--vocab", "12"},    {"--vocab", "0x3e8"},
                      {"--seed", "1.9"},    {"--pairs-per-domain", "20.7"},
                      {"--seed", "-1"},     {"--eval-fraction", "0x0.1"},
                      {"--data", "--vocab"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(coord_prep_parse("t", 2, bad[i], &o, rest, &nrest), 2, "%s %s", bad[i][0],
                     bad[i][1]);
    coord_prep_opts_fini(&o);
}

/* The record of what a state was prepared from reads back; the records of
 * older builds (none, the data alone) still read; a damaged one is said to
 * be damaged, with its name. */
Test(prepare, the_record_reads_back_and_a_damaged_one_is_told)
{
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    o.vocab_size = 1000;
    const char *st = rwt_path(rwt_dir, "");
    coord_prep_record_t r;
    char why[512] = "";
    cr_assert_eq(coord_prep_record_load(st, &r, why, sizeof why), 0, "none: an older state");
    cr_assert_str_eq(r.data, "");
    cr_assert_eq(coord_prep_record_save(st, "/d/a.jsonl,/d/b.jsonl", &o, false), 0);
    cr_assert_eq(coord_prep_record_load(st, &r, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(r.data, "/d/a.jsonl,/d/b.jsonl");
    cr_assert_str_eq(r.opts, "seed=0 pairs-per-domain=1000 eval-fraction=0.10000000000000001 "
                             "vocab=1000");
    cr_assert(!r.summed);
    const char *path = rwt_path(rwt_dir, "prepared-from");
    const char *old = "synthetic\n";
    rwt_write_file(path, old, strlen(old));
    cr_assert_eq(coord_prep_record_load(st, &r, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(r.data, "synthetic");
    cr_assert_str_eq(r.opts, "");
    const char *bad[] = {"",
                         "synthetic",
                         "synthetic\nseed=0 pairs-per-domain=1000 eval-fr",
                         "synthetic\nseed=0 pairs-per-domain=1000\n",
                         "\nseed=0\n",
                         "synthetic\nseed=0 pairs-per-domain=10 eval-fraction=0.1 vocab=1000x\n",
                         "synthetic\nseed=0 pairs-per-domain=10 eval-fraction=0.1 vocab=1000\nx\n",
                         "synthetic\nseed=0 pairs-per-domain=10 eval-fraction=0.1 vocab=1000\n"
                         "data.jsonl bytes=10 xxh64=00000000000000ab pairs=1\n"
                         "tokenizer.json bytes=10 xxh64=00000000000000ab\n"
                         "stats.json bytes=10 xxh64=00000000000000ab x\n",
                         "synthetic\nseed=0 pairs-per-domain=10 eval-fraction=0.1 vocab=1000\n"
                         "data.jsonl bytes=10 xxh64=00000000000000ab pairs=1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rwt_write_file(path, bad[i], strlen(bad[i]));
        why[0] = '\0';
        cr_assert_eq(coord_prep_record_load(st, &r, why, sizeof why), RW_EPARSE, "'%s'", bad[i]);
        cr_assert(strstr(why, "prepared-from is damaged"), "'%s': %s", bad[i], why);
    }
    coord_prep_opts_fini(&o);
}

/* Once the stage has written its files the record holds their sums, and a
 * file cut, altered or gone since is found, named, with what differs. */
Test(prepare, the_record_checks_the_prepared_files)
{
    coord_prep_opts_t o;
    coord_prep_opts_init(&o);
    o.pairs_per_domain = 40;
    o.vocab_size = 1000;
    char st[512]; /* rwt_path's buffers are reused */
    snprintf(st, sizeof st, "%s/s", rwt_dir);
    o.state_dir = st;
    coord_prep_t p;
    cr_assert_eq(coord_prepare(&o, &p), 0);
    coord_prep_fini(&p);
    cr_assert_eq(coord_prep_record_save(o.state_dir, "synthetic", &o, true), 0);
    coord_prep_record_t r;
    char why[512] = "";
    cr_assert_eq(coord_prep_record_load(o.state_dir, &r, why, sizeof why), 0, "%s", why);
    cr_assert(r.summed);
    cr_assert_eq(r.sums[0].lines, 200, "pairs: %llu", r.sums[0].lines);
    cr_assert_eq(coord_prep_record_check(o.state_dir, &r, why, sizeof why), 0, "%s", why);
    size_t n;
    char *data = rwt_read_file(rwt_path(rwt_dir, "s/data.jsonl"), &n);
    cr_assert_not_null(data);
    /* cut: less data */
    rwt_write_file(rwt_path(rwt_dir, "s/data.jsonl"), data, n / 2);
    cr_assert_eq(coord_prep_record_check(o.state_dir, &r, why, sizeof why), RW_ECHECKSUM);
    cr_assert(strstr(why, "s/data.jsonl is damaged"), "%s", why);
    cr_assert(strstr(why, "bytes with 200 pairs were prepared"), "%s", why);
    cr_assert(strstr(why, "remove "), "%s", why);
    /* one byte other: the same size, another checksum */
    data[10] ^= 1;
    rwt_write_file(rwt_path(rwt_dir, "s/data.jsonl"), data, n);
    cr_assert_eq(coord_prep_record_check(o.state_dir, &r, why, sizeof why), RW_ECHECKSUM);
    cr_assert(strstr(why, "its checksum is"), "%s", why);
    data[10] ^= 1;
    rwt_write_file(rwt_path(rwt_dir, "s/data.jsonl"), data, n);
    cr_assert_eq(coord_prep_record_check(o.state_dir, &r, why, sizeof why), 0, "%s", why);
    free(data);
    /* the other files as well */
    char *tok = rwt_read_file(rwt_path(rwt_dir, "s/tokenizer.json"), &n);
    rwt_write_file(rwt_path(rwt_dir, "s/tokenizer.json"), tok, n - 1);
    cr_assert_eq(coord_prep_record_check(o.state_dir, &r, why, sizeof why), RW_ECHECKSUM);
    cr_assert(strstr(why, "s/tokenizer.json is damaged"), "%s", why);
    rwt_write_file(rwt_path(rwt_dir, "s/tokenizer.json"), tok, n);
    free(tok);
    cr_assert_eq(unlink(rwt_path(rwt_dir, "s/stats.json")), 0);
    cr_assert_eq(coord_prep_record_check(o.state_dir, &r, why, sizeof why), RW_ENOTFOUND);
    cr_assert(strstr(why, "s/stats.json is damaged (it is missing)"), "%s", why);
    coord_prep_opts_fini(&o);
}
