/* task.c — carrying out one task of a job: inputs in, one trained file out.
 *
 * Every kind follows the same path: read the tokenizer and the data,
 * tokenize the train split once, set up what learns (a new model, a branch
 * of the base, an adapter on the frozen base, or the gates of a merged MoE
 * model), train for the spec's epochs on deterministic shuffles, measure on
 * the eval split, and save. The table in task.h says what each kind reads
 * and writes; kind_setup() below is where they differ.
 */
#include "task.h"

#include "alloc.h"
#include "bpe.h"
#include "checkpoint.h"
#include "dataset.h"
#include "err.h"
#include "eval.h"
#include "jsontext.h"
#include "log.h"
#include "memlimit.h"
#include "trainset.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {[RW_TASK__NONE] = "?",
#define XX(id, name) [RW_TASK_##id] = name,
                                         RW_TASK_KIND_MAP(XX)
#undef XX
};

const char *rw_task_kind_name(rw_task_kind_t k)
{
    return k > RW_TASK__NONE && k < RW_TASK__COUNT ? kind_names[k] : "?";
}

rw_task_kind_t rw_task_kind_from_name(const char *name)
{
    for (int k = RW_TASK__NONE + 1; name && k < RW_TASK__COUNT; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return (rw_task_kind_t)k;
    return RW_TASK__NONE;
}

static int is_classifier(rw_task_kind_t k)
{
    return k == RW_TASK_ROUTER || k == RW_TASK_ROUTER_ADAPTER;
}

int rw_task_spec_needs_base(const rw_task_spec_t *s)
{
    return s->kind != RW_TASK_SEED && s->kind != RW_TASK_ROUTER &&
           !(s->kind == RW_TASK_DOMAIN_RM && s->scratch);
}

static int needs_domain(rw_task_kind_t k)
{
    return k == RW_TASK_DOMAIN_RM || k == RW_TASK_EXPERT || k == RW_TASK_ADAPTER;
}

void rw_task_spec_init(rw_task_spec_t *s, rw_task_kind_t kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    /* the job's reward model: small enough that a whole job on the
     * synthetic data takes minutes on two cores */
    rw_model_config_default(&s->model);
    s->model.d_model = 64;
    s->model.n_layers = 2;
    s->model.n_heads = 4;
    s->model.d_ff = 256;
    s->model.max_len = 128;
    /* the moe bundle's gates route whole sequences by their prompts' words:
     * per-token gates on the seed's features cannot tell domains apart that
     * differ only in a few prompt words (top-1 gate accuracy 0.31 on the
     * synthetic job, against 0.97 for prompt gates) */
    s->model.gate_input = RW_GATE_PROMPT;
    if (kind == RW_TASK_ROUTER) {
        s->model.d_model = 32;
        s->model.n_layers = 1;
        s->model.n_heads = 2;
        s->model.d_ff = 64;
        s->model.head = RW_HEAD_CLASSIFIER;
    }
    rw_lora_config_default(&s->lora);
    if (kind == RW_TASK_ROUTER_ADAPTER) {
        /* the router adapter also learns a code for each token (LoRA on the
         * embedding): the seed's embeddings keep only what reward wanted of
         * each word, not which domain it belongs to. On the HH job it sends
         * 0.458 of held-out prompts to their domain at rank 4 with the
         * embedding, 0.395 at rank 8 with it, 0.313 at rank 8 without (rank
         * 32 without: 0.252); on the synthetic job 1.000 against 0.996 */
        s->lora.head = RW_HEAD_CLASSIFIER;
        s->lora.targets |= RW_LORA_EMB;
        s->lora.rank = 4;
        s->lora.alpha = 8.0f;
    }
    rw_train_config_default(&s->train);
    s->train.opt.lr = 2e-3f;
    s->train.opt.min_lr = 2e-4f;
    s->train.opt.warmup_steps = 10;
    s->train.max_batch = 32;
    s->train.threads = 1;
    /* gates: prompt gates are linear in token counts and learn fast at a
     * higher rate; one pass routes 97% of the synthetic job's training
     * sequences to their domain's expert (bench/task gates) */
    if (kind == RW_TASK_GATES) {
        s->train.opt.lr = 2e-2f;
        s->train.opt.min_lr = 2e-3f;
    }
    s->epochs = kind == RW_TASK_SEED ? 2.0 : kind == RW_TASK_GATES ? 1.0 : 3.0;
    if (kind == RW_TASK_ROUTER_ADAPTER) {
        /* concise and detailed share their topics and differ in a few words
         * of the prompt: on the five synthetic domains the adapter on the
         * frozen seed routes 82.5% of held-out prompts right at lr 2e-3 for
         * 3 epochs, 97.6% at 5e-3 for 8, 99.2% for 10, 99.4% for 16
         * (bench/task, one thread: 408, 1088, 1360, 2176 steps). An added
         * domain must not cost the earlier ones their routing: adding
         * concise to the other four, 10 epochs lost one detailed pair of 98
         * in the adapter bundle, 16 none (bench/add_domain) */
        s->train.opt.lr = 5e-3f;
        s->train.opt.min_lr = 5e-4f;
        s->epochs = 16.0;
    }
    /* a domain model starts from scratch rather than as a branch of the
     * seed: the seed memorizes its train split (HH-RLHF: 0.67 train, 0.49
     * held out) and a branch of it goes on memorizing its domain (0.95-0.99
     * train) where a new model fits less and holds out better. On the
     * HH job (seeds 1 and 2) the router bundle reaches
     * 0.548 and 0.533 against 0.528 and 0.525 branched (true-domain
     * routing: 0.582 and 0.556 against 0.509 and 0.539; the baseline 0.485
     * and 0.504), and on the synthetic job 0.912 against 0.896 */
    s->scratch = kind == RW_TASK_DOMAIN_RM;
    /* the router adapter learns the synthetic domains' few telling words
     * only after many epochs, and on HH-RLHF memorizes its prompts long
     * before (held-out route accuracy 0.497 after 2 epochs, 0.513 after 4,
     * 0.479 after 8, 0.472 after 16; bench/task router_adapter, job seed 0),
     * so when to stop is read off a held-out slice of the train split */
    s->patience = kind == RW_TASK_ROUTER_ADAPTER ? 2 : 0;
    s->seed = 1;
}

void rw_task_spec_fini(rw_task_spec_t *s)
{
    free(s->domain);
    for (size_t i = 0; i < s->n_domains; i++)
        free(s->domains[i]);
    memset(s, 0, sizeof *s);
}

/* Parses a JSON object text embedded in the spec (config strings). */
static json_t *embed(char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    return o;
}

char *rw_task_spec_to_json(const rw_task_spec_t *s)
{
    json_t *doms = json_array();
    for (size_t i = 0; i < s->n_domains; i++)
        json_array_append_new(doms, json_string(s->domains[i]));
    json_t *o = json_pack(
        "{s:s,s:o,s:o,s:o,s:o,s:f,s:I,s:I,s:b,s:i}", "kind", rw_task_kind_name(s->kind), "domains",
        doms, "model", embed(rw_model_config_to_json(&s->model)), "lora",
        embed(rw_lora_config_to_json(&s->lora)), "train", embed(rw_train_config_to_json(&s->train)),
        "epochs", s->epochs, "max_steps", (json_int_t)s->max_steps, "seed", (json_int_t)s->seed,
        "scratch", s->scratch, "patience", s->patience);
    if (s->domain)
        json_object_set_new(o, "domain", json_string(s->domain));
    return rw_json_text(o);
}

static int fail(char *why, size_t whylen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t whylen, int rc, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Parses the sub-object key of o with from_json (a config parser) over what
 * cfg holds (to_json of it): a partial object keeps the kind's defaults for
 * the fields it leaves out, where the parser alone would start from the
 * library's (a router adapter's {"rank": 8} keeps its classifier head).
 * That JSON form names every field cfg has, so a key it lacks is a mistake
 * (a typo, a field of another object), said rather than ignored. */
static int sub(json_t *o, const char *key, void *cfg, char *(*to_json)(const void *),
               int (*from_json)(const char *, void *), char *why, size_t whylen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_object(v))
        return fail(why, whylen, RW_EPARSE, "task spec: \"%s\" is not an object", key);
    char *cur = to_json(cfg);
    json_t *merged = cur ? json_loads(cur, 0, NULL) : NULL;
    free(cur);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (merged && !json_object_get(merged, k)) {
            json_decref(merged);
            return fail(why, whylen, RW_EINVAL, "task spec: \"%s\" has no field \"%.40s\"", key, k);
        }
    }
    if (!merged || json_object_update(merged, v) != 0) {
        json_decref(merged);
        return RW_ENOMEM;
    }
    char *text = json_dumps(merged, JSON_COMPACT);
    json_decref(merged);
    int rc = text ? from_json(text, cfg) : RW_ENOMEM;
    free(text);
    return rc < 0 ? fail(why, whylen, rc, "task spec: bad \"%s\" configuration", key) : 0;
}

static char *model_to_json(const void *c)
{
    return rw_model_config_to_json(c);
}
static int model_from_json(const char *j, void *c)
{
    return rw_model_config_from_json(j, c);
}
static char *lora_to_json(const void *c)
{
    return rw_lora_config_to_json(c);
}
static int lora_from_json(const char *j, void *c)
{
    return rw_lora_config_from_json(j, c);
}
static char *train_to_json(const void *c)
{
    return rw_train_config_to_json(c);
}
static int train_from_json(const char *j, void *c)
{
    return rw_train_config_from_json(j, c);
}

/* The domain names of o's "domains" array into s. */
static int spec_domains(json_t *o, rw_task_spec_t *s, char *why, size_t whylen)
{
    json_t *doms = json_object_get(o, "domains"), *d;
    size_t i;
    if (doms && !json_is_array(doms))
        return fail(why, whylen, RW_EPARSE, "\"domains\" is not an array");
    if (json_array_size(doms) > RW_TASK_MAX_DOMAINS)
        return fail(why, whylen, RW_EINVAL, "%zu domains, at most %d", json_array_size(doms),
                    RW_TASK_MAX_DOMAINS);
    json_array_foreach(doms, i, d)
    {
        if (!json_is_string(d) || json_string_length(d) == 0)
            return fail(why, whylen, RW_EPARSE, "domain %zu is not a non-empty string", i);
        s->domains[s->n_domains++] = rw_strdup(json_string_value(d));
    }
    return 0;
}

int rw_task_spec_from_json(const char *json, rw_task_spec_t *s, char *why, size_t whylen)
{
    json_error_t jerr;
    memset(s, 0, sizeof *s);
    json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return fail(why, whylen, RW_EPARSE, "task spec: %s", o ? "not an object" : jerr.text);
    }
    int rc = 0;
    rw_task_kind_t kind = rw_task_kind_from_name(json_string_value(json_object_get(o, "kind")));
    if (kind == RW_TASK__NONE) {
        rc = fail(why, whylen, RW_EINVAL, "task spec: unknown or missing kind");
        goto done;
    }
    rw_task_spec_init(s, kind);
    if ((rc = spec_domains(o, s, why, whylen)) < 0)
        goto done;
    const char *dom = json_string_value(json_object_get(o, "domain"));
    if (dom)
        s->domain = rw_strdup(dom);
    if ((rc = sub(o, "model", &s->model, model_to_json, model_from_json, why, whylen)) < 0 ||
        (rc = sub(o, "lora", &s->lora, lora_to_json, lora_from_json, why, whylen)) < 0 ||
        (rc = sub(o, "train", &s->train, train_to_json, train_from_json, why, whylen)) < 0)
        goto done;
    static const char *const known[] = {"kind",    "domain",   "domains",   "model",
                                        "lora",    "train",    "epochs",    "seed",
                                        "scratch", "patience", "max_steps", NULL};
    static const char *const whole[] = {"max_steps", "seed", "patience", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i = 0;
        while (known[i] && strcmp(known[i], k) != 0)
            i++;
        if (!known[i]) {
            rc = fail(why, whylen, RW_EINVAL, "task spec: no field \"%.40s\"", k);
            goto done;
        }
        for (i = 0; whole[i]; i++)
            if (strcmp(whole[i], k) == 0 && !json_is_integer(v)) {
                rc = fail(why, whylen, RW_EINVAL, "task spec: \"%s\" is not a whole number", k);
                goto done;
            }
        if (strcmp(k, "epochs") == 0 && !json_is_number(v)) {
            rc = fail(why, whylen, RW_EINVAL, "task spec: \"epochs\" is not a number");
            goto done;
        }
    }
    if ((v = json_object_get(o, "epochs")))
        s->epochs = json_number_value(v);
    if ((v = json_object_get(o, "max_steps")))
        s->max_steps = (long)json_integer_value(v);
    if ((v = json_object_get(o, "seed")))
        s->seed = (uint64_t)json_integer_value(v);
    json_t *pv = json_object_get(o, "patience");
    json_int_t patience = pv ? json_integer_value(pv) : s->patience;
    if (patience >= 0 && patience <= 1000)
        s->patience = (int)patience;
    if ((v = json_object_get(o, "scratch")))
        s->scratch = json_is_true(v);
    if (v && !json_is_boolean(v))
        rc = fail(why, whylen, RW_EPARSE, "task spec: \"scratch\" is not true or false");
    else if (patience < 0 || patience > 1000)
        rc =
            fail(why, whylen, RW_EINVAL, "task spec: patience must be a whole number in [0, 1000]");
    else if (kind == RW_TASK_GATES && s->patience > 0)
        rc = fail(why, whylen, RW_EINVAL,
                  "task spec: no patience for gates: what they learn is not what is measured");
    else if (json_object_get(o, "domain") && !dom)
        rc = fail(why, whylen, RW_EINVAL, "task spec: \"domain\" is not a string");
    else if (!(s->epochs > 0 && s->epochs <= 1000) || s->max_steps < 0)
        rc = fail(why, whylen, RW_EINVAL, "task spec: epochs must be in (0, 1000], max_steps >= 0");
    else if (needs_domain(kind) && !s->domain)
        rc = fail(why, whylen, RW_EINVAL, "task spec: a %s task needs a domain",
                  rw_task_kind_name(kind));
    else if ((is_classifier(kind) || kind == RW_TASK_GATES) && s->n_domains < 2)
        rc = fail(why, whylen, RW_EINVAL, "task spec: a %s task needs at least 2 domains",
                  rw_task_kind_name(kind));
done:
    json_decref(o);
    if (rc < 0)
        rw_task_spec_fini(s);
    return rc;
}

/* ------------------------------------------------------------------------
 * Data: the task's train and eval pairs as tokens (trainset.h), labelled
 * with their index in spec.domains (or 0, the one domain of a domain task). */

typedef struct data {
    rw_trainset_t train, eval;
} data_t;

static void data_fini(data_t *d)
{
    rw_trainset_fini(&d->train);
    rw_trainset_fini(&d->eval);
}

static int tokenize(const rw_task_spec_t *s, const rw_dataset_t *ds, rw_bpe_t *bpe, data_t *d)
{
    const char *one[1] = {s->domain};
    /* every id kept: the model's max_len is the base's for most kinds */
    rw_trainset_opts_t o = {.split = RW_SEL_TRAIN, .missing_ok = 1};
    if (s->domain)
        o.domains = one, o.n_domains = 1;
    else if (s->n_domains)
        o.domains = (const char *const *)s->domains, o.n_domains = s->n_domains;
    rw_trainset_init(&d->train);
    rw_trainset_init(&d->eval);
    int rc = rw_trainset_build(&d->train, ds, bpe, &o);
    o.split = RW_SEL_EVAL;
    if (rc == 0)
        rc = rw_trainset_build(&d->eval, ds, bpe, &o);
    if (rc == 0 && d->train.n == 0)
        rc = RW_EEMPTY;
    return rc;
}

/* ------------------------------------------------------------------------
 * Training: seeded per-epoch shuffles of pairs, or of prompts (a router). */

typedef struct runner {
    const rw_task_spec_t *spec;
    data_t *data;
    int classify;     /* examples are prompts labelled with their domain */
    size_t per_batch; /* items per step */
    rw_task_progress_fn progress;
    void *ctx;
    long steps, last_epoch_steps, steps_per_epoch;
    long batches; /* attempts so far, skipped ones too: batch b is step b's */
    double loss_sum, acc_sum, pairs;
    int cancelled;
    /* early stopping (spec patience > 0): the slice held out of the train
     * split, the best epoch so far and its weights, and the train figures of
     * the epoch running and of the best one */
    rw_trainer_t *tr;
    size_t first_val, n_val; /* the slice: items first_val.. of data->train */
    double best_loss, best_acc;
    long best_epoch, epochs_seen;
    float *best; /* the trainable block at best_epoch */
    double ep_loss, ep_acc, ep_n, best_ep_loss, best_ep_acc, best_ep_n;
} runner_t;

static int next_batch(void *ctx, long step, rw_batch_t *b)
{
    runner_t *r = ctx;
    int n = rw_trainset_batch(&r->data->train, r->spec->seed, step, r->per_batch,
                              r->classify ? RW_BATCH_PROMPTS : RW_BATCH_PAIRS, b);
    return n < 0 ? n : 0;
}

/* The loss on the held-out slice, or NAN; its accuracy in *acc. */
static double validation_loss(runner_t *r, double *acc)
{
    rw_trainset_t *t = &r->data->train;
    rw_eval_stats_t all;
    rw_engine_t *e = rw_trainer_engine(r->tr);
    int rc = r->classify ? rw_eval_classify(e, t->prompts + r->first_val, r->n_val, &all, NULL, 0)
                         : rw_eval_pairs(e, t->pairs + r->first_val, r->n_val, &all, NULL, 0);
    *acc = all.accuracy;
    return rc < 0 ? NAN : all.mean_loss;
}

/* At the end of an epoch: 1 when training should stop there. */
static int end_of_epoch(runner_t *r, long epoch)
{
    double acc, loss = validation_loss(r, &acc);
    r->epochs_seen = epoch;
    RW_INFO("task", "%s: epoch %ld: validation loss %.4f, accuracy %.4f",
            rw_task_kind_name(r->spec->kind), epoch, loss, acc);
    /* what the task is for comes first (pairs ranked, prompts routed right);
     * the loss tells equal accuracies apart, as on data learned perfectly */
    if (isfinite(loss) &&
        (r->best_epoch == 0 || acc > r->best_acc || (acc == r->best_acc && loss < r->best_loss))) {
        const rw_layout_t *lay = rw_trainer_layout(r->tr);
        memcpy(r->best, rw_trainer_params(r->tr), lay->n_floats * sizeof(float));
        r->best_loss = loss, r->best_acc = acc, r->best_epoch = epoch;
        r->best_ep_loss = r->ep_loss, r->best_ep_acc = r->ep_acc, r->best_ep_n = r->ep_n;
    }
    r->ep_loss = r->ep_acc = r->ep_n = 0.0;
    return r->best_epoch > 0 && epoch - r->best_epoch >= r->spec->patience;
}

static int on_step(void *ctx, const rw_step_stats_t *st)
{
    runner_t *r = ctx;
    long b = ++r->batches; /* st->step counts updates only: a skipped step still used its batch */
    if (!st->skipped && b > r->steps - r->last_epoch_steps) {
        r->loss_sum += st->loss;
        r->acc_sum += st->accuracy;
        r->pairs += 1;
    }
    if (!st->skipped)
        r->ep_loss += st->loss, r->ep_acc += st->accuracy, r->ep_n += 1;
    if (r->progress && r->progress(r->ctx, st, r->steps)) {
        r->cancelled = 1;
        return 1;
    }
    if (r->best && (b % r->steps_per_epoch == 0 || b == r->steps) &&
        end_of_epoch(r, (b + r->steps_per_epoch - 1) / r->steps_per_epoch) && b < r->steps)
        return 2; /* early: the best epoch is behind */
    return 0;
}

/* ------------------------------------------------------------------------
 * What each kind trains. */

typedef struct setup {
    rw_model_t *base;  /* owned: the loaded base, or NULL */
    rw_model_t *model; /* owned: what the trainer trains or adapts */
    rw_lora_t *lora;   /* owned: the adapter, or NULL */
    rw_train_config_t tc;
} setup_t;

static void setup_fini(setup_t *u)
{
    if (u->model != u->base)
        rw_model_destroy(&u->model);
    rw_model_destroy(&u->base);
    rw_lora_destroy(&u->lora);
}

static int load_model(const char *path, rw_model_t **m, char *why, size_t whylen)
{
    int rc = rw_checkpoint_load(path, m, NULL);
    return rc < 0 ? fail(why, whylen, rc, "%s: %s", path, rw_strerror(rc)) : 0;
}

/* The gates task's model: the experts merged around the base. */
static int merge_experts(const rw_task_spec_t *s, const rw_task_inputs_t *in, setup_t *u, char *why,
                         size_t whylen)
{
    if (in->n_experts != s->n_domains)
        return fail(why, whylen, RW_EINVAL, "gates: %zu experts for %zu domains", in->n_experts,
                    s->n_domains);
    rw_model_t **ex = rw_new_array(rw_model_t *, in->n_experts);
    int rc = 0;
    for (size_t i = 0; i < in->n_experts && rc == 0; i++)
        rc = load_model(in->experts[i], &ex[i], why, whylen);
    if (rc == 0) {
        rc = rw_model_moe_merge(&u->model, (const rw_model_t *const *)ex, in->n_experts,
                                s->model.top_k > 0 ? s->model.top_k : 2, s->model.gate_input,
                                s->seed, u->base);
        if (rc < 0)
            fail(why, whylen, rc, "gates: the experts and the base do not merge");
    }
    for (size_t i = 0; i < in->n_experts; i++)
        rw_model_destroy(&ex[i]);
    free(ex);
    return rc;
}

/* A new model of the spec's configuration (a classifier for a router). */
static int new_model(const rw_task_spec_t *s, size_t vocab, setup_t *u, char *why, size_t whylen)
{
    rw_model_config_t c = s->model;
    c.vocab = (int)vocab;
    if (s->kind == RW_TASK_ROUTER) {
        c.head = RW_HEAD_CLASSIFIER;
        c.n_classes = (int)s->n_domains;
    }
    int rc = rw_model_new(&u->model, &c);
    if (rc < 0)
        return fail(why, whylen, rc, "invalid model configuration");
    rw_model_init(u->model, s->seed);
    return 0;
}

static int kind_setup(const rw_task_spec_t *s, const rw_task_inputs_t *in, size_t vocab, setup_t *u,
                      char *why, size_t whylen)
{
    int rc;
    u->tc = s->train;
    if (rw_task_spec_needs_base(s)) {
        if (!in->base)
            return fail(why, whylen, RW_EINVAL, "a %s task needs a base model",
                        rw_task_kind_name(s->kind));
        if ((rc = load_model(in->base, &u->base, why, whylen)) < 0)
            return rc;
        if ((size_t)u->base->cfg.vocab != vocab)
            return fail(why, whylen, RW_EINVAL, "base vocabulary %d, tokenizer %zu",
                        u->base->cfg.vocab, vocab);
    }
    switch (s->kind) {
    case RW_TASK_SEED:
    case RW_TASK_ROUTER:
        return new_model(s, vocab, u, why, whylen);
    case RW_TASK_DOMAIN_RM:
    case RW_TASK_EXPERT:
        if (!u->base) /* a domain_rm from scratch */
            return new_model(s, vocab, u, why, whylen);
        u->model = u->base; /* the branch: trained in place, saved as new */
        u->base = NULL;
        u->tc.part = s->kind == RW_TASK_EXPERT ? RW_TRAIN_FFN : RW_TRAIN_ALL;
        return 0;
    case RW_TASK_ADAPTER:
    case RW_TASK_ROUTER_ADAPTER: {
        rw_lora_config_t lc = s->lora;
        if (s->kind == RW_TASK_ROUTER_ADAPTER) {
            lc.head = RW_HEAD_CLASSIFIER;
            lc.n_classes = (int)s->n_domains;
        }
        u->model = u->base;
        if ((rc = rw_lora_new(&u->lora, u->base, &lc)) < 0)
            return fail(why, whylen, rc, "invalid adapter configuration");
        rw_lora_init(u->lora, u->base, s->seed);
        return 0;
    }
    case RW_TASK_GATES:
        u->tc.part = RW_TRAIN_GATES;
        return merge_experts(s, in, u, why, whylen);
    default:
        return fail(why, whylen, RW_EINVAL, "unknown task kind");
    }
}

/* Held-out accuracy of what was trained, on the eval pairs (or prompts). */
static double eval_split(rw_trainer_t *tr, const rw_task_spec_t *s, const data_t *d)
{
    const rw_trainset_t *e = &d->eval;
    if (e->n == 0)
        return -1.0;
    rw_eval_stats_t all = {0};
    int rc = is_classifier(s->kind)
                 ? rw_eval_classify(rw_trainer_engine(tr), e->prompts, e->n, &all, NULL, 0)
                 : rw_eval_pairs(rw_trainer_engine(tr), e->pairs, e->n, &all, NULL, 0);
    return rc < 0 ? -1.0 : all.accuracy;
}

/* 0 if training u fits in the memory this process may use (or that is
 * unknown), else RW_ENOMEM with why filled in: past it, the kernel would kill
 * the worker mid-task with no word to its coordinator, which could then only
 * lease the task again to die the same way. */
static int check_memory(const setup_t *u, char *why, size_t whylen)
{
    rw_memlimit_t have = rw_memory_limit();
    /* the trainer's, and the weights it trains (already held) */
    size_t weights =
        (u->model->layout.n_floats + (u->lora ? u->lora->layout.n_floats : 0)) * sizeof(float);
    size_t need = rw_trainer_bytes(&u->model->cfg, u->lora ? &u->lora->cfg : NULL, &u->tc);
    need = need > SIZE_MAX - weights ? SIZE_MAX : need + weights;
    if (!have.bytes || need <= have.bytes)
        return 0;
    return fail(why, whylen, RW_ENOMEM,
                "training needs about %.0f MB of memory, more than the %.0f MB %s: lower the "
                "configuration's batch or the model's size, or give this worker more memory",
                (double)need / 1e6, (double)have.bytes / 1e6,
                have.by_cgroup ? "this worker's cgroup (its container or job) allows"
                               : "this machine has");
}

/* Trains u for the spec's epochs and fills the training part of res. */
static int train(const rw_task_spec_t *s, setup_t *u, data_t *d, rw_task_progress_fn progress,
                 void *ctx, rw_task_result_t *res, rw_trainer_t **tr_p)
{
    runner_t r = {.spec = s, .data = d, .classify = is_classifier(s->kind)};
    r.progress = progress, r.ctx = ctx;
    r.per_batch = r.classify ? u->tc.max_batch : u->tc.max_batch / 2;
    if (r.per_batch == 0)
        return RW_EINVAL;
    if (s->patience > 0) {
        size_t n = d->train.n;
        r.n_val = rw_trainset_hold_out(&d->train, RW_TASK_HOLD_OUT, RW_TASK_HOLD_OUT_MIN);
        r.first_val = d->train.n;
        if (!r.n_val) /* all the epochs on all of it */
            RW_INFO("task", "%s: %zu train items, too few to hold a validation slice out",
                    rw_task_kind_name(s->kind), n);
    }
    long steps_per_epoch = rw_trainset_steps_per_epoch(&d->train, r.per_batch);
    r.steps_per_epoch = steps_per_epoch;
    r.steps = (long)ceil(s->epochs * (double)steps_per_epoch);
    if (s->max_steps > 0 && r.steps > s->max_steps)
        r.steps = s->max_steps;
    r.last_epoch_steps = steps_per_epoch < r.steps ? steps_per_epoch : r.steps;
    u->tc.opt.total_steps = r.steps;
    int rc = rw_trainer_new(tr_p, u->model, u->lora, &u->tc);
    if (rc < 0)
        return rc;
    r.tr = *tr_p;
    if (r.n_val)
        r.best = rw_new_array(float, rw_trainer_layout(r.tr)->n_floats);
    double t0 = rw_now_s();
    rc = rw_trainer_run(*tr_p, r.steps, next_batch, on_step, &r);
    res->kept_epoch = 0;
    res->validation_loss = NAN;
    if (r.best && r.best_epoch > 0 && !r.cancelled) {
        res->kept_epoch = r.best_epoch;
        res->validation_loss = r.best_loss;
        if (r.best_epoch != r.epochs_seen)
            memcpy(rw_trainer_params(r.tr), r.best,
                   rw_trainer_layout(r.tr)->n_floats * sizeof(float));
        RW_INFO("task",
                "%s: keeping epoch %ld of %ld run (%ld planned): validation accuracy %.4f, loss "
                "%.4f on %zu held-out items",
                rw_task_kind_name(s->kind), r.best_epoch, r.epochs_seen,
                (r.steps + steps_per_epoch - 1) / steps_per_epoch, r.best_acc, r.best_loss,
                r.n_val);
        /* the train figures are the kept epoch's */
        r.loss_sum = r.best_ep_loss, r.acc_sum = r.best_ep_acc, r.pairs = r.best_ep_n;
    }
    free(r.best);
    res->seconds = rw_now_s() - t0;
    res->steps = rw_trainer_updates(*tr_p);
    res->skipped = rw_trainer_skipped(*tr_p);
    res->epochs = (double)(res->steps + res->skipped) / (double)steps_per_epoch;
    res->train_loss = r.pairs > 0 ? r.loss_sum / r.pairs : NAN;
    res->train_accuracy = r.pairs > 0 ? r.acc_sum / r.pairs : NAN;
    double items = (double)(res->steps + res->skipped) * (double)r.per_batch;
    res->pairs_per_s = res->seconds > 0 ? items / res->seconds : 0.0;
    if (r.cancelled)
        return -ECANCELED;
    return rc < 0 ? rc : 0;
}

/* The metadata a task's output carries about where it came from. */
static char *extra_json(const rw_task_spec_t *s)
{
    json_t *doms = json_array();
    for (size_t i = 0; i < s->n_domains; i++)
        json_array_append_new(doms, json_string(s->domains[i]));
    json_t *o = json_pack("{s:s,s:o,s:I}", "task", rw_task_kind_name(s->kind), "domains", doms,
                          "seed", (json_int_t)s->seed);
    if (s->domain)
        json_object_set_new(o, "domain", json_string(s->domain));
    return rw_json_text(o);
}

int rw_task_run(const rw_task_spec_t *spec, const rw_task_inputs_t *in, const char *out,
                rw_task_progress_fn progress, void *ctx, rw_task_result_t *res, char *why,
                size_t whylen)
{
    memset(res, 0, sizeof *res);
    res->eval_accuracy = -1.0;
    if (!in->tokenizer || !in->data)
        return fail(why, whylen, RW_EINVAL, "a task needs a tokenizer and data");
    rw_bpe_t *bpe = NULL;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    data_t d = {0};
    setup_t u = {0};
    rw_trainer_t *tr = NULL;
    char *tok_json = NULL, *extra = NULL;
    int rc = rw_bpe_load(in->tokenizer, &bpe, why, whylen);
    if (rc < 0)
        goto done;
    if ((rc = rw_dataset_load(&ds, in->data, NULL, NULL)) < 0 && ds.n == 0) {
        rc = fail(why, whylen, rc, "%s: %s", in->data, rw_strerror(rc));
        goto done;
    }
    if ((rc = tokenize(spec, &ds, bpe, &d)) < 0) {
        rc = fail(why, whylen, rc, "%s: no train pairs of the task's domains%s%s", in->data,
                  spec->domain ? ": " : "", spec->domain ? spec->domain : "");
        goto done;
    }
    if ((rc = kind_setup(spec, in, rw_bpe_vocab_size(bpe), &u, why, whylen)) < 0)
        goto done;
    if ((rc = check_memory(&u, why, whylen)) < 0)
        goto done;
    RW_INFO("task", "%s%s%s: %zu train and %zu eval pairs", rw_task_kind_name(spec->kind),
            spec->domain ? " " : "", spec->domain ? spec->domain : "", d.train.n, d.eval.n);
    if ((rc = train(spec, &u, &d, progress, ctx, res, &tr)) < 0) {
        fail(why, whylen, rc, "training stopped: %s", rw_strerror(rc));
        goto done;
    }
    if (res->skipped > res->steps) { /* most steps changed nothing: no model to hand on */
        rc = fail(why, whylen, RW_ENUMERIC,
                  "training diverged: %ld of %ld steps were skipped for a non-finite loss or "
                  "gradient (a lower learning rate may help)",
                  res->skipped, res->steps + res->skipped);
        goto done;
    }
    res->eval_accuracy = eval_split(tr, spec, &d);
    tok_json = rw_bpe_to_json(bpe);
    extra = extra_json(spec);
    if (u.lora) {
        rc = rw_lora_save(out, u.lora, NULL, extra);
        res->params = u.lora->layout.n_floats;
    } else {
        rc = rw_checkpoint_save(out, u.model, NULL, tok_json, extra);
        res->params = u.model->layout.n_floats;
    }
    if (rc < 0)
        fail(why, whylen, rc, "cannot write %s: %s", out, rw_strerror(rc));
done:
    free(tok_json);
    free(extra);
    rw_trainer_destroy(&tr);
    setup_fini(&u);
    data_fini(&d);
    rw_dataset_fini(&ds);
    rw_bpe_destroy(&bpe);
    return rc;
}
