/* bundle.c — what bundles cost: size on disk, write, open (every checksum
 * and every model loaded), routed scoring throughput and a whole eval.
 *
 * Members have the reference shape (d_model 256, 4 layers, 4 heads, d_ff
 * 1024, 128 tokens, vocabulary 8192) with random weights — speed does not
 * depend on what the weights learned — and the adapters rank 8. The data is
 * the synthetic set (synth.h), --domains of its domains, --pairs pairs each,
 * every pair held out. pairs/s is rw_bundle_score on both replies of every
 * pair, routed per reply as a client's calls would be; eval s is a whole
 * rw_bundle_eval (routing once per pair, and for router and adapter
 * bundles every misrouted pair scored again at its true domain for the
 * oracle figure: with these untrained routers, most of them). Prints a
 * table, and one JSON line per bundle kind.
 *
 *   build/bench/bundle [--domains N] [--pairs N] [--threads N] [--dir PATH]
 */
#include "blas.h"
#include "bundle.h"
#include "checkpoint.h"
#include "corpus.h"
#include "err.h"
#include "lora.h"
#include "model.h"
#include "synth.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int arg_int(int argc, char **argv, const char *name, int def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return atoi(argv[i + 1]);
    return def;
}

static const char *arg_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static double bytes_of;
static int add_size(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)p, (void)ftw;
    if (flag == FTW_F)
        bytes_of += (double)st->st_size;
    return 0;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void die(const char *what, int rc, const char *why)
{
    fprintf(stderr, "bundle bench: %s: %s %s\n", what, rw_strerror(rc), why ? why : "");
    exit(1);
}

static void save_model(const char *path, const rw_model_config_t *cfg, uint64_t seed,
                       const char *tok)
{
    rw_model_t *m;
    int rc = rw_model_new(&m, cfg);
    if (rc < 0)
        die("model", rc, NULL);
    rw_model_init(m, seed);
    if ((rc = rw_checkpoint_save(path, m, NULL, tok, NULL)) < 0)
        die(path, rc, NULL);
    rw_model_destroy(&m);
}

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    int nd = arg_int(argc, argv, "--domains", 5), pairs = arg_int(argc, argv, "--pairs", 64);
    int threads = arg_int(argc, argv, "--threads", 0);
    char tmpl[] = "/tmp/rwbench.XXXXXX";
    const char *dir = arg_str(argc, argv, "--dir", NULL);
    if (!dir && !(dir = mkdtemp(tmpl)))
        die("mkdtemp", -1, NULL);
    const char *const *names;
    size_t total = rw_synth_domains(&names);
    nd = nd < 2 ? 2 : nd > (int)total ? (int)total : nd;

    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_synth_opts_t so = {.seed = 1, .pairs_per_domain = (size_t)pairs, .n_domains = (size_t)nd};
    so.domains = names;
    rw_synth_generate(&so, &ds);
    for (size_t i = 0; i < ds.n; i++)
        ds.pairs[i].split = RW_SPLIT_EVAL;
    rw_bpe_t *bpe;
    rw_bpe_train_opts_t to = {.vocab_size = 4096, .min_frequency = 2};
    int rc = rw_corpus_train_bpe(&ds, &to, &bpe);
    if (rc < 0)
        die("tokenizer", rc, NULL);
    char *tok = rw_bpe_to_json(bpe);
    char path[1024], tokp[1024];
    snprintf(tokp, sizeof tokp, "%s/tokenizer.json", dir);
    rw_bpe_save(bpe, tokp);

    /* the members */
    rw_model_config_t cfg, rcfg;
    rw_model_config_default(&cfg);
    rcfg = cfg;
    rcfg.head = RW_HEAD_CLASSIFIER;
    rcfg.n_classes = nd;
    char dom[8][1024], ad[8][1024], seed[1024], router[1024], base[1024], radapter[1024];
    char moe[1024];
    const char *domp[8], *adp[8];
    snprintf(seed, sizeof seed, "%s/seed.safetensors", dir);
    save_model(seed, &cfg, 1, tok);
    snprintf(router, sizeof router, "%s/router.safetensors", dir);
    save_model(router, &rcfg, 2, tok);
    rw_model_t *experts[8], *merged, *b;
    for (int d = 0; d < nd; d++) {
        snprintf(dom[d], sizeof dom[d], "%s/rm-%d.safetensors", dir, d);
        domp[d] = dom[d];
        save_model(dom[d], &cfg, 10 + (uint64_t)d, tok);
        rw_checkpoint_load(dom[d], &experts[d], NULL);
    }
    rw_model_moe_merge(&merged, (const rw_model_t *const *)experts, (size_t)nd, 2, RW_GATE_TOKEN, 3,
                       NULL);
    snprintf(moe, sizeof moe, "%s/moe.safetensors", dir);
    rw_checkpoint_save(moe, merged, NULL, tok, NULL);
    rw_model_destroy(&merged);
    for (int d = 0; d < nd; d++)
        rw_model_destroy(&experts[d]);
    rw_checkpoint_load(seed, &b, NULL);
    snprintf(base, sizeof base, "%s/seed.safetensors", dir);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    rw_lora_t *lo;
    for (int d = 0; d <= nd; d++) {
        lc.head = d == nd ? RW_HEAD_CLASSIFIER : RW_HEAD_REWARD;
        lc.n_classes = nd;
        rw_lora_new(&lo, b, &lc);
        rw_lora_init(lo, b, 20 + (uint64_t)d);
        char *p = d == nd ? radapter : ad[d];
        snprintf(p, 1024, "%s/adapter-%d.safetensors", dir, d);
        if (d < nd)
            adp[d] = ad[d];
        rw_lora_save(p, lo, NULL, NULL);
        rw_lora_destroy(&lo);
    }
    rw_model_destroy(&b);
    (void)path;

    printf("members: d_model %d, layers %d, d_ff %d, T %d, vocab %d; %d domains; lora rank %d; "
           "%zu held-out pairs\n\n",
           cfg.d_model, cfg.n_layers, cfg.d_ff, cfg.max_len, cfg.vocab, nd, lc.rank, ds.n);
    printf("%-9s %12s %12s %9s %9s %9s %9s %9s\n", "kind", "params", "per pair", "MB", "write s",
           "open s", "pairs/s", "eval s");
    for (int k = RW_BUNDLE_BASELINE; k <= RW_BUNDLE_ADAPTER; k++) {
        rw_bundle_sources_t s = {.kind = (rw_bundle_kind_t)k, .tokenizer = tokp};
        s.domains = names;
        s.n_domains = (size_t)nd;
        s.model = k == RW_BUNDLE_MOE ? moe : seed;
        s.router = router;
        s.base = base;
        s.router_adapter = radapter;
        s.members = k == RW_BUNDLE_ROUTER ? domp : adp;
        char out[1024], why[512];
        snprintf(out, sizeof out, "%s/bundle-%s", dir, rw_bundle_kind_name(s.kind));
        double t0 = now();
        if ((rc = rw_bundle_write(&s, out, why, sizeof why)) < 0)
            die("write", rc, why);
        double t_write = now() - t0;
        bytes_of = 0;
        nftw(out, add_size, 8, FTW_PHYS);
        t0 = now();
        rw_bundle_t *bu;
        if ((rc = rw_bundle_open(out, &bu, why, sizeof why)) < 0)
            die("open", rc, why);
        double t_open = now() - t0;
        rw_bundle_set_threads(bu, threads);
        rw_bundle_eval_t ev;
        t0 = now();
        if ((rc = rw_bundle_eval(bu, &ds, RW_SPLIT_EVAL, &ev)) < 0)
            die("eval", rc, NULL);
        double t_eval = now() - t0;
        /* scoring as a client does: every pair's two replies, routed */
        size_t n = ds.n, m = 2 * n;
        const char **pr = malloc(m * sizeof *pr), **re = malloc(m * sizeof *re);
        size_t *pl = malloc(m * sizeof *pl), *rl = malloc(m * sizeof *rl);
        double *r = malloc(m * sizeof *r);
        int *route = malloc(m * sizeof *route);
        for (size_t i = 0; i < n; i++) {
            const rw_pair_t *p = &ds.pairs[i];
            pr[2 * i] = pr[2 * i + 1] = p->prompt;
            pl[2 * i] = pl[2 * i + 1] = p->prompt_len;
            re[2 * i] = p->chosen, rl[2 * i] = p->chosen_len;
            re[2 * i + 1] = p->rejected, rl[2 * i + 1] = p->rejected_len;
        }
        t0 = now();
        if ((rc = rw_bundle_score(bu, pr, pl, re, rl, m, NULL, r, route)) < 0)
            die("score", rc, NULL);
        double t_score = now() - t0;
        free(pr), free(re), free(pl), free(rl), free(r), free(route);
        const json_t *pa = json_object_get(rw_bundle_manifest(bu), "params");
        json_int_t pt = json_integer_value(json_object_get(pa, "total"));
        json_int_t pp = json_integer_value(json_object_get(pa, "per_pair"));
        double pps = (double)n / t_score;
        printf("%-9s %12lld %12lld %9.1f %9.2f %9.2f %9.1f %9.2f\n", rw_bundle_kind_name(s.kind),
               (long long)pt, (long long)pp, bytes_of / 1e6, t_write, t_open, pps, t_eval);
        printf("{\"bench\":\"bundle\",\"kind\":\"%s\",\"domains\":%d,\"pairs\":%zu,"
               "\"params_total\":%lld,\"params_per_pair\":%lld,\"bytes\":%.0f,\"write_s\":%.3f,"
               "\"open_s\":%.3f,\"eval_s\":%.3f,\"pairs_per_s\":%.2f,\"route_accuracy\":%.3f}\n",
               rw_bundle_kind_name(s.kind), nd, ds.n, (long long)pt, (long long)pp, bytes_of,
               t_write, t_open, t_eval, pps, ev.route_accuracy);
        rw_bundle_eval_fini(&ev);
        rw_bundle_destroy(&bu);
    }
    free(tok);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
    if (!arg_str(argc, argv, "--dir", NULL))
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
