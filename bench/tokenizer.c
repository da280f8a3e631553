/* tokenizer.c — benchmark of the BPE tokenizer on the HH-RLHF transcripts.
 *
 * Reads every "chosen" and "rejected" transcript of the .jsonl.gz files in
 * DATA/hh-rlhf, then for each vocabulary size trains a tokenizer and
 * encodes the whole corpus several times: the first pass starts with an
 * empty chunk cache (cold), the later ones reuse it (warm). Prints human
 * lines on stderr and one JSON object a vocabulary size on stdout.
 */
#include "alloc.h"
#include "bpe.h"
#include "cli.h"
#include "err.h"
#include "log.h"

#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAX_SIZES 16

typedef struct corpus {
    char **docs;
    size_t *lens, n, cap, bytes;
} corpus_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenizer [--vocab N]... [--passes K] [DATA]\n"
               "\n"
               "Trains byte-level BPE tokenizers on the HH-RLHF transcripts in\n"
               "DATA/hh-rlhf/*.jsonl.gz and measures encoding. DATA defaults to\n"
               "../shared/data, relative to the current folder: right when run from the\n"
               "top of the checkout (build/bench/tokenizer); from build/ give\n"
               "../../shared/data. Human lines go to stderr, one JSON object a\n"
               "vocabulary size to stdout.\n"
               "\n"
               "  --vocab N   train a vocabulary of N (1000..65536) tokens; repeatable;\n"
               "              default 8192\n"
               "  --passes K  encode the corpus K times (default 4): pass 1 is cold-cache,\n"
               "              passes 2..K warm\n");
}

static void corpus_add(corpus_t *c, const char *s, size_t len)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4096;
        c->docs = rw_realloc(c->docs, c->cap * sizeof *c->docs);
        c->lens = rw_realloc(c->lens, c->cap * sizeof *c->lens);
        if (!c->docs || !c->lens) {
            fprintf(stderr, "tokenizer: out of memory\n");
            exit(1);
        }
    }
    c->docs[c->n] = rw_malloc(len + 1); /* not strndup: the text may hold NULs */
    if (!c->docs[c->n]) {
        fprintf(stderr, "tokenizer: out of memory\n");
        exit(1);
    }
    memcpy(c->docs[c->n], s, len);
    c->docs[c->n][len] = '\0';
    c->lens[c->n++] = len;
    c->bytes += len;
}

/* Adds the transcripts of one gzip'd JSON Lines file; returns 0 or -1. */
static int read_file(corpus_t *c, const char *path)
{
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tokenizer: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *line = rw_malloc(cap);
    int rc = 0, lineno = 0;
    while (gzgets(f, line + len, (int)(cap - len))) {
        len += strlen(line + len);
        if (len + 1 == cap && line[len - 1] != '\n') {
            line = rw_realloc(line, cap *= 2);
            continue;
        }
        lineno++;
        if (strspn(line, " \t\r\n") == len) {
            len = 0;
            continue;
        }
        json_error_t je;
        json_t *rec = json_loadb(line, len, 0, &je);
        len = 0;
        if (!rec) {
            fprintf(stderr, "tokenizer: %s:%d: %s\n", path, lineno, je.text);
            rc = -1;
            break;
        }
        const char *keys[] = {"chosen", "rejected"};
        for (int k = 0; k < 2; k++) {
            json_t *v = json_object_get(rec, keys[k]);
            if (json_is_string(v))
                corpus_add(c, json_string_value(v), json_string_length(v));
        }
        json_decref(rec);
    }
    free(line);
    gzclose(f);
    return rc;
}

static int read_corpus(corpus_t *c, const char *data)
{
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s/hh-rlhf/*.jsonl.gz", data);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) {
        fprintf(stderr, "tokenizer: no files match %s (see --help)\n", pattern);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
        rc = read_file(c, g.gl_pathv[i]);
    globfree(&g);
    return rc;
}

/* One vocabulary size: train, encode `passes` times, print. Returns 0 or 1. */
static int bench_size(const corpus_t *c, size_t vocab, int passes)
{
    rw_bpe_train_opts_t o = RW_BPE_TRAIN_OPTS_DEFAULT;
    o.vocab_size = vocab;
    rw_bpe_t *b = NULL;
    double t0 = rw_now_s();
    int rc = rw_bpe_train((const char *const *)c->docs, c->lens, c->n, &o, &b);
    double train_s = rw_now_s() - t0;
    if (rc < 0) {
        fprintf(stderr, "tokenizer: training failed: %s\n", rw_strerror(rc));
        return 1;
    }
    int32_t *ids = NULL;
    size_t cap = 0, ntok = 0;
    double cold_s = 0, warm_s = 0;
    for (int p = 0; p < passes; p++) {
        ntok = 0;
        t0 = rw_now_s();
        for (size_t i = 0; i < c->n; i++) {
            size_t n = 0;
            rw_bpe_encode(b, c->docs[i], c->lens[i], &ids, &n, &cap);
            ntok += n;
        }
        double dt = rw_now_s() - t0;
        if (p == 0)
            cold_s = dt;
        else if (p == 1 || dt < warm_s)
            warm_s = dt; /* best warm pass: least disturbed by neighbours */
    }
    t0 = rw_now_s();
    char *json = rw_bpe_to_json(b);
    double to_json_s = rw_now_s() - t0;
    rw_bpe_t *again = NULL;
    t0 = rw_now_s();
    rc = rw_bpe_from_json(json, strlen(json), &again, NULL, 0);
    double from_json_s = rw_now_s() - t0;
    double mb = (double)c->bytes / 1e6, cold = mb / cold_s;
    double warm = passes > 1 ? mb / warm_s : 0, bpt = (double)c->bytes / (double)ntok;
    fprintf(stderr,
            "vocab %zu: trained in %.2f s (%zu merges); encode %.1f MB/s cold, %.1f MB/s warm; "
            "%.3f bytes/token; tokenizer.json %zu bytes, written in %.3f s, read in %.3f s\n",
            rw_bpe_vocab_size(b), train_s, rw_bpe_merge_count(b), cold, warm, bpt, strlen(json),
            to_json_s, from_json_s);
    printf("{\"bench\":\"tokenizer\",\"vocab\":%zu,\"docs\":%zu,\"bytes\":%zu,\"tokens\":%zu,"
           "\"train_s\":%.4f,\"encode_cold_mb_s\":%.2f,\"encode_warm_mb_s\":%.2f,"
           "\"bytes_per_token\":%.4f,\"json_bytes\":%zu,\"to_json_s\":%.4f,\"from_json_s\":%.4f,"
           "\"passes\":%d}\n",
           rw_bpe_vocab_size(b), c->n, c->bytes, ntok, train_s, cold, warm, bpt, strlen(json),
           to_json_s, from_json_s, passes);
    fflush(stdout);
    free(json);
    free(ids);
    rw_bpe_destroy(&again);
    rw_bpe_destroy(&b);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    size_t sizes[MAX_SIZES], nsizes = 0;
    long passes = 4;
    const char *data = "../shared/data";
    for (int i = 1; i < argc; i++) {
        long v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--vocab") && i + 1 < argc && nsizes < MAX_SIZES &&
                   rw_arg_long(argv[i + 1], RW_BPE_MIN_VOCAB, RW_BPE_MAX_VOCAB, &v) == 0) {
            sizes[nsizes++] = (size_t)v;
            i++;
        } else if (!strcmp(argv[i], "--passes") && i + 1 < argc &&
                   rw_arg_long(argv[i + 1], 1, 1000, &passes) == 0) {
            i++;
        } else if (argv[i][0] != '-') {
            data = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!nsizes)
        sizes[nsizes++] = 8192;
    corpus_t c = {0};
    double t0 = rw_now_s();
    if (read_corpus(&c, data) < 0)
        return 1;
    fprintf(stderr, "read %zu transcripts, %.1f MB, in %.2f s\n", c.n, (double)c.bytes / 1e6,
            rw_now_s() - t0);
    int rc = 0;
    for (size_t i = 0; i < nsizes && rc == 0; i++)
        rc = bench_size(&c, sizes[i], (int)passes);
    for (size_t i = 0; i < c.n; i++)
        free(c.docs[i]);
    free(c.docs);
    free(c.lens);
    return rc;
}
