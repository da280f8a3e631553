/* cmd_stats.c — `rewire data stats`: pairs per domain and token lengths. */
#include "cli.h"

#include "corpus.h"
#include "dataset.h"
#include "err.h"
#include "stats.h"

#include <getopt.h>
#include <stdlib.h>

static const char *const stats_usage =
    "usage: rewire data stats FILE... [--tokenizer PATH | --vocab N] [--json]\n"
    "\n"
    "Prints the pairs of each domain (train and eval) and the percentiles of prompt,\n"
    "reply and joined lengths in tokens. FILE is a normalized file (its splits are\n"
    "kept) or any format `rewire data import` reads.\n"
    "\n"
    "  --tokenizer PATH   count tokens with this tokenizer.json\n"
    "  --vocab N          else train one of N tokens on FILE's train split (8192)\n"
    "  --json             print the statistics as JSON on stdout\n";

int cli_data_stats(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tokenizer", required_argument, NULL, 't'},
        {"vocab", required_argument, NULL, 'v'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "data stats", *tok = NULL;
    rw_bpe_train_opts_t topts = RW_BPE_TRAIN_OPTS_DEFAULT;
    int json = 0, c;
    long v;
    opterr = 0;
    optind = 1;
    while ((c = cli_getopt(argc, argv, ":h", longopts)) != -1) {
        if (c == 't') {
            tok = optarg;
        } else if (c == 'v') {
            if (rw_arg_long(optarg, RW_BPE_MIN_VOCAB, RW_BPE_MAX_VOCAB, &v))
                return cli_usage_error(cmd, "--vocab wants %d to %d, not '%s'", RW_BPE_MIN_VOCAB,
                                       RW_BPE_MAX_VOCAB, optarg);
            topts.vocab_size = (size_t)v;
        } else if (c == 'j') {
            json = 1;
        } else if (c == 'h') {
            fputs(stats_usage, stdout);
            return 0;
        } else if (c == ':') {
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error(cmd, "no input files");
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_bpe_t *bpe = NULL;
    rw_stats_t st = {0};
    char err[512];
    int rc = cli_read_data(cmd, (const char *const *)argv + optind, (size_t)(argc - optind), &ds);
    if (rc)
        goto done;
    int e = tok ? rw_bpe_load(tok, &bpe, err, sizeof err) : rw_corpus_train_bpe(&ds, &topts, &bpe);
    if (e < 0) {
        cli_say(cmd, "%s", tok ? err : rw_strerror(e));
        rc = 1;
        goto done;
    }
    rw_stats_compute(&ds, bpe, &st);
    if (json) {
        json_t *o = rw_stats_json(&st);
        cli_print_json(o);
        json_decref(o);
    } else {
        rw_stats_print(&st, stdout);
    }
done:
    rw_stats_fini(&st);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
    return rc;
}
