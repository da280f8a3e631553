/* cmd_tokenizer.c — `rewire tokenizer train|encode|decode`.
 *
 * train builds the byte-level BPE tokenizer a job's models share from the
 * train split of preference files and saves it as a Hugging Face
 * tokenizer.json; encode and decode show what it does to a text.
 */
#include "cli.h"

#include "alloc.h"
#include "bpe.h"
#include "corpus.h"
#include "dataset.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const train_usage =
    "usage: rewire tokenizer train FILE... -o TOKENIZER.json [--vocab N] [--min-frequency N]\n"
    "                              [--json]\n"
    "\n"
    "Trains a byte-level BPE tokenizer on the train split of FILE (normalized or any\n"
    "format `rewire data import` reads): each prompt once and both replies.\n"
    "\n"
    "  -o, --output PATH      tokenizer.json to write (Hugging Face BPE layout)\n"
    "  --vocab N              vocabulary size, 1000 to 65536, specials and bytes\n"
    "                         included (8192)\n"
    "  --min-frequency N      stop when the best pair occurs fewer times (2)\n"
    "  --json                 print what was trained as JSON on stdout\n";

int cli_tokenizer_train(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"vocab", required_argument, NULL, 'v'},
        {"min-frequency", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "tokenizer train", *out = NULL;
    rw_bpe_train_opts_t opts = RW_BPE_TRAIN_OPTS_DEFAULT;
    int json = 0, c;
    long v;
    opterr = 0;
    optind = 1;
    while ((c = cli_getopt(argc, argv, ":o:h", longopts)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'v':
            if (rw_arg_long(optarg, RW_BPE_MIN_VOCAB, RW_BPE_MAX_VOCAB, &v))
                return cli_usage_error(cmd, "--vocab wants %d to %d, not '%s'", RW_BPE_MIN_VOCAB,
                                       RW_BPE_MAX_VOCAB, optarg);
            opts.vocab_size = (size_t)v;
            break;
        case 'f':
            if (rw_arg_long(optarg, 0, INT32_MAX, &v))
                return cli_usage_error(cmd, "--min-frequency wants a count, not '%s'", optarg);
            opts.min_frequency = (uint64_t)v;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(train_usage, stdout);
            return 0;
        case ':':
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error(cmd, "no input files");
    if (!out)
        return cli_usage_error(cmd, "no output file (-o PATH)");
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_bpe_t *bpe = NULL;
    int rc = cli_read_data(cmd, (const char *const *)argv + optind, (size_t)(argc - optind), &ds);
    if (rc)
        goto done;
    double t0 = rw_now_s();
    int err = rw_corpus_train_bpe(&ds, &opts, &bpe);
    double secs = rw_now_s() - t0;
    if (err == 0)
        err = rw_bpe_save(bpe, out);
    if (err < 0) {
        cli_say(cmd, "cannot write %s: %s", out, rw_strerror(err));
        rc = 1;
        goto done;
    }
    if (json) {
        json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:f}", "output", out, "vocab_size",
                              (json_int_t)rw_bpe_vocab_size(bpe), "merges",
                              (json_int_t)rw_bpe_merge_count(bpe), "pairs", (json_int_t)ds.n,
                              "seconds", secs);
        cli_print_json(o);
        json_decref(o);
    } else {
        cli_say(cmd, "wrote %s: %zu tokens (%zu merges) in %.2f s", out, rw_bpe_vocab_size(bpe),
                rw_bpe_merge_count(bpe), secs);
    }
done:
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
    return rc;
}

/* Parses "--tokenizer PATH [--json]" then the rest as arguments; loads the
 * tokenizer. Returns -1 to go on, or an exit status. */
static int codec_args(const char *cmd, const char *usage, int argc, char **argv, rw_bpe_t **bpe,
                      int *json)
{
    static const struct option longopts[] = {
        {"tokenizer", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = cli_getopt(argc, argv, ":t:h", longopts)) != -1) {
        if (c == 't')
            path = optarg;
        else if (c == 'j')
            *json = 1;
        else if (c == 'h')
            return fputs(usage, stdout), 0;
        else if (c == ':')
            return cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
        else
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
    }
    if (!path)
        return cli_usage_error(cmd, "no --tokenizer PATH");
    char err[512];
    if (rw_bpe_load(path, bpe, err, sizeof err) < 0) {
        cli_say(cmd, "%s", err);
        return 1;
    }
    return -1;
}

/* Reads all of stdin; caller frees. NULL, errno set, at a read error (a
 * folder for stdin), which fread() ends at as at the end. */
static char *read_stdin(size_t *n)
{
    size_t cap = 1 << 16, len = 0, r;
    char *b = rw_malloc(cap);
    while ((r = fread(b + len, 1, cap - len, stdin)) > 0)
        if ((len += r) == cap)
            b = rw_realloc(b, cap *= 2);
    if (ferror(stdin)) {
        int e = errno ? errno : EIO;
        free(b);
        errno = e;
        return NULL;
    }
    *n = len;
    return b;
}

int cli_tokenizer_encode(int argc, char **argv)
{
    const char *cmd = "tokenizer encode";
    const char *usage = "usage: rewire tokenizer encode --tokenizer PATH [--json] [TEXT...]\n\n"
                        "Prints the token ids of TEXT (the arguments joined by spaces, or\n"
                        "standard input when there are none), one line.\n";
    rw_bpe_t *bpe = NULL;
    int json = 0, rc = codec_args(cmd, usage, argc, argv, &bpe, &json);
    if (rc >= 0)
        return rc;
    size_t len = 0;
    char *text;
    if (optind < argc) {
        for (int i = optind; i < argc; i++)
            len += strlen(argv[i]) + 1;
        text = calloc(1, len);
        for (int i = optind; i < argc; i++)
            strcat(strcat(text, i > optind ? " " : ""), argv[i]);
        len = strlen(text);
    } else {
        text = read_stdin(&len);
        if (!text) {
            cli_say(cmd, "stdin: cannot read: %s", strerror(errno));
            rw_bpe_destroy(&bpe);
            return 1;
        }
    }
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    rc = rw_bpe_encode(bpe, text, len, &ids, &n, &cap) < 0;
    if (json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_integer(ids[i]));
        json_t *o =
            json_pack("{s:I,s:I,s:o}", "bytes", (json_int_t)len, "tokens", (json_int_t)n, "ids", a);
        cli_print_json(o);
        json_decref(o);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    free(ids);
    free(text);
    rw_bpe_destroy(&bpe);
    return rc;
}

int cli_tokenizer_decode(int argc, char **argv)
{
    const char *cmd = "tokenizer decode";
    const char *usage = "usage: rewire tokenizer decode --tokenizer PATH [--json] ID...\n\n"
                        "Prints the bytes the token ids stand for.\n";
    rw_bpe_t *bpe = NULL;
    int json = 0, rc = codec_args(cmd, usage, argc, argv, &bpe, &json);
    if (rc >= 0)
        return rc;
    size_t n = (size_t)(argc - optind);
    int32_t *ids = calloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        long v;
        if (rw_arg_long(argv[optind + (int)i], 0, INT32_MAX, &v)) {
            rc = cli_usage_error(cmd, "'%s' is not a token id", argv[optind + (int)i]);
            goto done;
        }
        ids[i] = (int32_t)v;
    }
    char *out;
    size_t outlen;
    if (rw_bpe_decode(bpe, ids, n, &out, &outlen) < 0) {
        cli_say(cmd, "an id is outside the vocabulary (0..%zu)", rw_bpe_vocab_size(bpe) - 1);
        rc = 1;
        goto done;
    }
    if (json) {
        json_t *o = json_pack("{s:s%}", "text", out, outlen);
        if (!o)
            o = json_pack("{s:n}", "text"); /* not UTF-8: no JSON string for it */
        cli_print_json(o);
        json_decref(o);
    } else {
        fwrite(out, 1, outlen, stdout);
        printf("\n");
    }
    free(out);
    rc = 0;
done:
    free(ids);
    rw_bpe_destroy(&bpe);
    return rc;
}
