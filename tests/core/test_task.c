/* test_task.c — every task kind, end to end on tiny models and synthetic data. */
#include "task.h"

#include "bpe.h"
#include "checkpoint.h"
#include "corpus.h"
#include "dataset.h"
#include "engine.h"
#include "err.h"
#include "eval.h"
#include "rng.h"
#include "synth.h"
#include "trainset.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

TestSuite(task, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

static const char *const DOMS[] = {"arithmetic", "compliance", "concise", "detailed", "safety"};

/* Writes data.jsonl (5 domains x n pairs) and tokenizer.json in rwt_dir. */
static void make_inputs(size_t n)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_synth_opts_t so = {.seed = 3, .pairs_per_domain = n};
    cr_assert_eq(rw_synth_generate(&so, &ds), 0);
    rw_dataset_assign_splits(&ds, 0.2);
    cr_assert_eq(rw_dataset_save(&ds, rwt_path(rwt_dir, "data.jsonl")), 0);
    rw_bpe_train_opts_t bo = {.vocab_size = 1000, .min_frequency = 2};
    rw_bpe_t *bpe;
    cr_assert_eq(rw_corpus_train_bpe(&ds, &bo, &bpe), 0);
    cr_assert_eq(rw_bpe_save(bpe, rwt_path(rwt_dir, "tokenizer.json")), 0);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
}

static void tiny_spec(rw_task_spec_t *s, rw_task_kind_t kind, const char *domain)
{
    rw_task_spec_init(s, kind);
    s->model.d_model = 16;
    s->model.n_heads = 2;
    s->model.n_layers = 1;
    s->model.d_ff = 32;
    s->model.max_len = 96;
    s->lora.rank = 2;
    s->epochs = 2;
    for (size_t i = 0; i < 5; i++)
        s->domains[s->n_domains++] = strdup(DOMS[i]);
    if (domain)
        s->domain = strdup(domain);
}

static rw_task_result_t run(rw_task_kind_t kind, const char *domain, const char *base,
                            const char *const *experts, size_t n_experts, const char *out)
{
    rw_task_spec_t s;
    tiny_spec(&s, kind, domain);
    char base_path[512] = {0};
    if (base)
        snprintf(base_path, sizeof base_path, "%s/%s", rwt_dir, base);
    rw_task_inputs_t in = {.tokenizer = rwt_path(rwt_dir, "tokenizer.json"),
                           .data = rwt_path(rwt_dir, "data.jsonl"),
                           .base = base ? base_path : NULL,
                           .experts = experts,
                           .n_experts = n_experts};
    rw_task_result_t res;
    char why[256] = "", outp[512];
    snprintf(outp, sizeof outp, "%s/%s", rwt_dir, out);
    int rc = rw_task_run(&s, &in, outp, NULL, NULL, &res, why, sizeof why);
    cr_assert_eq(rc, 0, "%s task failed: %s (%s)", rw_task_kind_name(kind), rw_strerror(rc), why);
    cr_assert_gt(res.steps, 0);
    cr_assert_gt(res.params, 0);
    rw_task_spec_fini(&s);
    return res;
}

static rw_model_t *load(const char *name)
{
    rw_model_t *m;
    cr_assert_eq(rw_checkpoint_load(rwt_path(rwt_dir, name), &m, NULL), 0, "%s", name);
    return m;
}

/* 1 if every tensor whose name starts (or not, want_ffn 0) with "fc" is equal. */
static int same_tensors(const rw_model_t *a, const rw_model_t *b, int ffn)
{
    for (size_t i = 0; i < a->layout.n_tensors; i++) {
        const rw_tensor_t *t = &a->layout.t[i];
        if ((strncmp(t->name, "fc", 2) == 0) != ffn || t->n == 0)
            continue;
        const rw_tensor_t *u = rw_model_tensor(b, t->name);
        if (!u || u->n != t->n || memcmp(a->mem + t->offset, b->mem + u->offset, t->n * 4) != 0)
            return 0;
    }
    return 1;
}

Test(task, every_kind_trains_and_writes_what_the_next_needs)
{
    make_inputs(60);
    rw_task_result_t r = run(RW_TASK_SEED, NULL, NULL, NULL, 0, "seed.st");
    cr_assert(r.eval_accuracy >= 0 && r.eval_accuracy <= 1);
    run(RW_TASK_DOMAIN_RM, "concise", "seed.st", NULL, 0, "rm.st");
    char ex_paths[5][512];
    const char *experts[5];
    for (int d = 0; d < 5; d++) {
        char name[64];
        snprintf(name, sizeof name, "expert-%d.st", d);
        run(RW_TASK_EXPERT, DOMS[d], "seed.st", NULL, 0, name);
        snprintf(ex_paths[d], sizeof ex_paths[d], "%s/%s", rwt_dir, name);
        experts[d] = ex_paths[d];
    }
    run(RW_TASK_ADAPTER, "safety", "seed.st", NULL, 0, "adapter.st");
    rw_task_result_t rr = run(RW_TASK_ROUTER, NULL, NULL, NULL, 0, "router.st");
    cr_log_info("router held-out accuracy %.3f", rr.eval_accuracy);
    cr_assert_gt(rr.eval_accuracy, 0.5, "prompts carry their domain");
    run(RW_TASK_ROUTER_ADAPTER, NULL, "seed.st", NULL, 0, "radapter.st");
    run(RW_TASK_GATES, NULL, "seed.st", experts, 5, "moe.st");

    rw_model_t *seed = load("seed.st"), *rm = load("rm.st"), *ex = load("expert-2.st");
    rw_model_t *router = load("router.st"), *moe = load("moe.st");
    cr_assert(!same_tensors(seed, rm, 0), "a domain model trains its shared layers too");
    cr_assert(same_tensors(seed, ex, 0), "an expert keeps the seed's shared layers");
    cr_assert(!same_tensors(seed, ex, 1), "an expert trains its feed-forward blocks");
    cr_assert_eq(router->cfg.head, RW_HEAD_CLASSIFIER);
    cr_assert_eq(router->cfg.n_classes, 5);
    cr_assert_eq(moe->cfg.n_experts, 5);
    cr_assert(same_tensors(seed, moe, 0), "the MoE model's shared layers are the seed's");
    rw_lora_t *lo;
    cr_assert_eq(rw_lora_load(rwt_path(rwt_dir, "adapter.st"), seed, &lo, NULL), 0);
    rw_lora_destroy(&lo);
    cr_assert_eq(rw_lora_load(rwt_path(rwt_dir, "radapter.st"), seed, &lo, NULL), 0);
    cr_assert_eq(lo->cfg.n_classes, 5);
    rw_lora_destroy(&lo);
    cr_assert_eq(rw_lora_load(rwt_path(rwt_dir, "adapter.st"), rm, &lo, NULL), RW_ECHECKSUM,
                 "an adapter refuses another base");
    rw_model_destroy(&seed), rw_model_destroy(&rm), rw_model_destroy(&ex);
    rw_model_destroy(&router), rw_model_destroy(&moe);
}

/* Runs a domain_rm task on concise, new (scratch) or a branch of seed.st. */
static int run_domain_rm(int scratch, const char *base, const char *out, char *why, size_t whylen)
{
    rw_task_spec_t s;
    tiny_spec(&s, RW_TASK_DOMAIN_RM, "concise");
    cr_assert_eq(s.scratch, 1, "a domain model starts new by default");
    s.scratch = scratch;
    cr_assert_eq(rw_task_spec_needs_base(&s), !scratch);
    rw_task_inputs_t in = {.tokenizer = rwt_path(rwt_dir, "tokenizer.json"),
                           .data = rwt_path(rwt_dir, "data.jsonl"),
                           .base = base};
    rw_task_result_t res;
    char outp[512];
    snprintf(outp, sizeof outp, "%s/%s", rwt_dir, out);
    int rc = rw_task_run(&s, &in, outp, NULL, NULL, &res, why, whylen);
    rw_task_spec_fini(&s);
    return rc;
}

Test(task, a_domain_model_starts_new_or_branches_from_the_base)
{
    make_inputs(30);
    run(RW_TASK_SEED, NULL, NULL, NULL, 0, "seed.st");
    char why[256] = "", seed_path[512];
    snprintf(seed_path, sizeof seed_path, "%s/seed.st", rwt_dir);
    cr_assert_eq(run_domain_rm(1, NULL, "new.st", why, sizeof why), 0, "%s", why);
    cr_assert_eq(run_domain_rm(0, NULL, "x.st", why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "base"), "%s", why);
    cr_assert_eq(run_domain_rm(0, seed_path, "branch.st", why, sizeof why), 0, "%s", why);
    /* a new model needs no base and has the seed's shape; a branch is the
     * seed trained on, so the two differ */
    rw_model_t *seed = load("seed.st"), *fresh = load("new.st"), *branch = load("branch.st");
    cr_assert_eq(fresh->layout.n_floats, seed->layout.n_floats);
    cr_assert(!same_tensors(seed, fresh, 0) && !same_tensors(seed, branch, 0));
    cr_assert(!same_tensors(fresh, branch, 0), "a branch does not start from scratch");
    rw_model_destroy(&seed), rw_model_destroy(&fresh), rw_model_destroy(&branch);
}

Test(task, same_spec_and_inputs_give_the_same_bytes)
{
    make_inputs(30);
    run(RW_TASK_SEED, NULL, NULL, NULL, 0, "a.st");
    run(RW_TASK_SEED, NULL, NULL, NULL, 0, "b.st");
    size_t na, nb;
    char *a = rwt_read_file(rwt_path(rwt_dir, "a.st"), &na);
    char *b = rwt_read_file(rwt_path(rwt_dir, "b.st"), &nb);
    cr_assert(na == nb && memcmp(a, b, na) == 0);
    free(a), free(b);
}

static int stop_at_3(void *ctx, const rw_step_stats_t *st, long steps)
{
    (void)ctx, (void)steps;
    return st->step >= 3;
}

Test(task, progress_can_cancel_and_bad_inputs_say_why)
{
    make_inputs(30);
    rw_task_spec_t s;
    tiny_spec(&s, RW_TASK_SEED, NULL);
    rw_task_inputs_t in = {.tokenizer = rwt_path(rwt_dir, "tokenizer.json"),
                           .data = rwt_path(rwt_dir, "data.jsonl")};
    rw_task_result_t res;
    char why[256] = "";
    const char *out = rwt_path(rwt_dir, "x.st");
    cr_assert_eq(rw_task_run(&s, &in, out, stop_at_3, NULL, &res, why, sizeof why), -ECANCELED);
    FILE *f = fopen(out, "rb");
    cr_assert_null(f, "a cancelled task writes nothing");
    rw_task_spec_fini(&s);

    tiny_spec(&s, RW_TASK_ADAPTER, "safety");
    cr_assert_eq(rw_task_run(&s, &in, out, NULL, NULL, &res, why, sizeof why), RW_EINVAL);
    cr_assert(strstr(why, "base"), "%s", why);
    free(s.domain);
    s.domain = strdup("no-such-domain");
    in.base = rwt_path(rwt_dir, "tokenizer.json"); /* not a checkpoint */
    cr_assert_lt(rw_task_run(&s, &in, out, NULL, NULL, &res, why, sizeof why), 0);
    cr_assert(strlen(why) > 0);
    rw_task_spec_fini(&s);
}

Test(task, spec_travels_as_json)
{
    rw_task_spec_t s, t;
    tiny_spec(&s, RW_TASK_ADAPTER, "safety");
    s.epochs = 1.5;
    s.seed = 42;
    s.scratch = 1;
    s.patience = 3;
    char *j = rw_task_spec_to_json(&s);
    char why[256];
    cr_assert_eq(rw_task_spec_from_json(j, &t, why, sizeof why), 0, "%s", why);
    char *k = rw_task_spec_to_json(&t);
    cr_assert_str_eq(j, k);
    cr_assert_str_eq(t.domain, "safety");
    cr_assert_eq(t.n_domains, 5);
    cr_assert_eq(t.model.d_model, 16);
    cr_assert_eq(t.lora.rank, 2);
    cr_assert_eq(t.scratch, 1);
    cr_assert_eq(t.patience, 3);
    free(j), free(k);
    rw_task_spec_fini(&t);
    rw_task_spec_fini(&s);
    const char *bad[] = {"[]",
                         "{\"kind\":\"nope\"}",
                         "{\"kind\":\"adapter\",\"domains\":[\"a\"]}",
                         "{\"kind\":\"router\",\"domains\":[\"a\"]}",
                         "{\"kind\":\"seed\",\"epochs\":-1}",
                         "{\"kind\":\"seed\",\"model\":3}",
                         "{\"kind\":\"seed\",\"domains\":[1]}",
                         "{\"kind\":\"seed\",\"scratch\":1}",
                         "{\"kind\":\"seed\",\"patience\":-1}",
                         "{\"kind\":\"seed\",\"patience\":\"2\"}",
                         "{\"kind\":\"seed\",\"epochs\":\"2\"}",
                         "{\"kind\":\"seed\",\"max_steps\":\"many\"}",
                         "{\"kind\":\"seed\",\"patience\":4294967298}",
                         "{\"kind\":\"gates\",\"domains\":[\"a\",\"b\"],\"patience\":2}",
                         "{\"kind\":\"seed\",\"domain\":5}",
                         "{\"kind\":\"seed\",\"seed\":1.5}",
                         "{\"kind\":\"seed\",\"train\":{\"max_batch\":0}}",
                         "{\"kind\":\"seed\",\"train\":{\"threads\":100000}}",
                         "{\"kind\":\"seed\",\"model\":{\"d_model\":8192,\"n_layers\":64,"
                         "\"n_heads\":1,\"d_ff\":65536}}",
                         "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why[0] = '\0';
        cr_assert_lt(rw_task_spec_from_json(bad[i], &t, why, sizeof why), 0, "%s", bad[i]);
        cr_assert(strlen(why) > 0, "no reason for %s", bad[i]);
    }
    /* a field it does not have is named, not ignored: a typo must not
     * silently keep the default */
    const struct {
        const char *json, *says;
    } unknown[] = {
        {"{\"kind\":\"seed\",\"bogus\":1}", "task spec: no field \"bogus\""},
        {"{\"kind\":\"seed\",\"model\":{\"d_modle\":32}}",
         "task spec: \"model\" has no field \"d_modle\""},
        {"{\"kind\":\"seed\",\"train\":{\"rank\":4}}",
         "task spec: \"train\" has no field \"rank\""},
        {"{\"kind\":\"seed\",\"max_steps\":\"many\"}", "\"max_steps\" is not a whole number"},
    };
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        cr_assert_eq(rw_task_spec_from_json(unknown[i].json, &t, why, sizeof why), RW_EINVAL);
        cr_assert(strstr(why, unknown[i].says), "%s: %s", unknown[i].json, why);
    }
}

Test(task, each_kind_has_its_own_lora_defaults)
{
    /* the router adapter learns a code for each token and classifies; the
     * reward adapters keep the library's rank and the six projections */
    rw_task_spec_t s;
    rw_task_spec_init(&s, RW_TASK_ROUTER_ADAPTER);
    cr_assert_eq(s.lora.head, RW_HEAD_CLASSIFIER);
    cr_assert_eq(s.lora.targets, RW_LORA_ALL | RW_LORA_EMB);
    cr_assert_eq(s.lora.rank, 4);
    cr_assert_float_eq(s.lora.alpha, 8.0f, 1e-6);
    cr_assert_float_eq(s.epochs, 16.0, 1e-9);
    rw_task_spec_fini(&s);
    rw_lora_config_t lib;
    rw_lora_config_default(&lib);
    rw_task_spec_init(&s, RW_TASK_ADAPTER);
    cr_assert_eq(s.lora.head, RW_HEAD_REWARD);
    cr_assert_eq(s.lora.targets, RW_LORA_ALL);
    cr_assert_eq(s.lora.rank, lib.rank);
    cr_assert_float_eq(s.lora.alpha, lib.alpha, 1e-6);
    rw_task_spec_fini(&s);
}

Test(task, a_partial_spec_keeps_the_kinds_defaults)
{
    /* fields a spec leaves out keep the kind's defaults, not the library's */
    rw_task_spec_t s, d;
    char why[256];
    const char *j = "{\"kind\":\"router_adapter\",\"domains\":[\"a\",\"b\"],"
                    "\"lora\":{\"rank\":8},\"model\":{\"max_len\":64},\"train\":{\"lr\":0.001}}";
    cr_assert_eq(rw_task_spec_from_json(j, &s, why, sizeof why), 0, "%s", why);
    rw_task_spec_init(&d, RW_TASK_ROUTER_ADAPTER);
    cr_assert_eq(s.lora.rank, 8);
    cr_assert_eq(s.lora.head, RW_HEAD_CLASSIFIER);
    cr_assert_eq(s.lora.targets, d.lora.targets);
    cr_assert_float_eq(s.lora.alpha, d.lora.alpha, 1e-6);
    cr_assert_eq(s.model.max_len, 64);
    cr_assert_eq(s.model.d_model, d.model.d_model);
    cr_assert_eq(s.model.gate_input, d.model.gate_input);
    cr_assert_float_eq(s.train.opt.lr, 1e-3f, 1e-9);
    cr_assert_float_eq(s.train.opt.min_lr, d.train.opt.min_lr, 1e-9);
    cr_assert_eq(s.train.max_batch, d.train.max_batch);
    rw_task_spec_fini(&d);
    rw_task_spec_fini(&s);
    /* a bad field is still refused */
    cr_assert_lt(rw_task_spec_from_json("{\"kind\":\"router_adapter\",\"domains\":[\"a\",\"b\"],"
                                        "\"lora\":{\"rank\":\"x\"}}",
                                        &s, why, sizeof why),
                 0);
}

/* A router on prompts whose labels are noise: it can only memorize them,
 * so the held-out slice soon stops improving and training stops early,
 * keeping the weights of its best epoch (accuracy first, then loss). */
Test(task, early_stopping_keeps_the_best_epoch_of_the_held_out_slice)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_rng_t rng;
    rw_rng_seed(&rng, 9);
    char p[128];
    for (int i = 0; i < 400; i++) {
        int n = snprintf(p, sizeof p, "question %d: what about %d and %d?", i,
                         (int)rw_rng_below(&rng, 50), (int)rw_rng_below(&rng, 50));
        rw_dataset_add(&ds, p, (size_t)n, "yes", 3, "no", 2, DOMS[rw_rng_below(&rng, 2)]);
    }
    rw_dataset_assign_splits(&ds, 0.1);
    const char *data = rwt_path(rwt_dir, "noise.jsonl"), *tok = rwt_path(rwt_dir, "noise.json");
    cr_assert_eq(rw_dataset_save(&ds, data), 0);
    rw_bpe_train_opts_t bo = {.vocab_size = 1000, .min_frequency = 2};
    rw_bpe_t *bpe;
    int rc = rw_corpus_train_bpe(&ds, &bo, &bpe);
    cr_assert_eq(rc, 0, "%s", rw_strerror(rc));
    cr_assert_eq(rw_bpe_save(bpe, tok), 0);

    rw_task_spec_t s;
    tiny_spec(&s, RW_TASK_ROUTER, NULL);
    while (s.n_domains > 2)
        free(s.domains[--s.n_domains]);
    s.epochs = 40;
    s.patience = 2;
    s.train.opt.lr = 1e-2f;
    rw_task_inputs_t in = {.tokenizer = tok, .data = data};
    rw_task_result_t res;
    char why[256] = "";
    const char *out = rwt_path(rwt_dir, "router.st");
    cr_assert_eq(rw_task_run(&s, &in, out, NULL, NULL, &res, why, sizeof why), 0, "%s", why);
    cr_assert_geq(res.kept_epoch, 1);
    cr_assert_lt(res.epochs, 40.0, "ran all %.1f epochs", res.epochs);
    cr_assert_float_eq(res.epochs, (double)(res.kept_epoch + 2), 1e-9,
                       "stopped at epoch %.1f, kept %ld", res.epochs, res.kept_epoch);
    cr_assert(isfinite(res.validation_loss));

    /* the saved weights are the kept epoch's: their loss on the slice is
     * the one that epoch measured */
    rw_model_t *m = load("router.st");
    rw_trainset_t ts;
    rw_trainset_init(&ts);
    rw_trainset_opts_t o = {
        .split = RW_SEL_TRAIN, .domains = (const char *const *)s.domains, .n_domains = s.n_domains};
    cr_assert_eq(rw_trainset_build(&ts, &ds, bpe, &o), 0);
    size_t k = rw_trainset_hold_out(&ts, RW_TASK_HOLD_OUT, RW_TASK_HOLD_OUT_MIN);
    cr_assert_gt(k, 10);
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, NULL, 32, (size_t)m->cfg.max_len, 1, 0), 0);
    rw_eval_stats_t all;
    cr_assert_eq(rw_eval_classify(e, ts.prompts + ts.n, k, &all, NULL, 0), 0);
    cr_assert_float_eq(all.mean_loss, res.validation_loss, 1e-4 * res.validation_loss,
                       "saved weights: loss %.6f, kept epoch's %.6f", all.mean_loss,
                       res.validation_loss);

    /* patience 0: every epoch, and nothing is held out */
    s.patience = 0;
    s.epochs = 3;
    cr_assert_eq(rw_task_run(&s, &in, out, NULL, NULL, &res, why, sizeof why), 0, "%s", why);
    cr_assert_float_eq(res.epochs, 3.0, 1e-9);
    cr_assert_eq(res.kept_epoch, 0);

    /* a step skipped on a non-finite loss still used its batch: the epochs
     * count it, and an epoch whose slice measures no finite loss is never
     * the one kept (an absurd learning rate blows the weights up after the
     * first step, so every later step is skipped); and a task most of
     * whose steps were skipped fails rather than hand on such a model */
    s.patience = 2;
    s.epochs = 4;
    s.train.opt.lr = 1e30f;
    s.train.opt.warmup_steps = 0;
    rc = rw_task_run(&s, &in, out, NULL, NULL, &res, why, sizeof why);
    cr_assert_eq(rc, RW_ENUMERIC, "%s (%s)", why, rw_strerror(rc));
    cr_assert(strstr(why, "training diverged: ") && strstr(why, "steps were skipped"), "%s", why);
    cr_assert_gt(res.skipped, res.steps, "most steps were skipped");
    cr_assert_float_eq(res.epochs, 4.0, 1e-9, "%.2f epochs", res.epochs);
    cr_assert_eq(res.kept_epoch, 0, "epoch %ld kept", res.kept_epoch);
    rw_engine_destroy(&e);
    rw_trainset_fini(&ts);
    rw_model_destroy(&m);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
    rw_task_spec_fini(&s);
}
