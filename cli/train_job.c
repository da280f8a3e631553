/* train_job.c — the body of `rewire train`: setup, the loop, the result.
 *
 * Setup order matters: the tokenizer comes first (trained here, read from
 * --tokenizer, or taken from the --init/--base/--resume checkpoint), then
 * the data is tokenized once for the model's max_len, then the model is made
 * (a router needs the number of domains). The loop is rw_trainer_run with
 * batches from the trainset's seeded shuffle, so a run resumed at step s
 * sees the batches the uninterrupted run saw.
 */
#include "train_job.h"

#include "cli.h"
#include "rmodel.h"

#include "afile.h"
#include "alloc.h"
#include "checkpoint.h"
#include "corpus.h"
#include "err.h"
#include "log.h"
#include "memlimit.h"
#include "train.h"
#include "trainset.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct job {
    const train_opts_t *o;
    rw_model_t *model; /* owned: what trains, or the adapter's frozen base */
    rw_lora_t *lora;   /* owned adapter, or NULL */
    rw_bpe_t *bpe;     /* owned */
    char *tok_json;    /* owned: the tokenizer as stored */
    json_t *extra;     /* owned: rewire.extra being written */
    json_t *from;      /* owned: the --resume checkpoint's extra, or NULL */
    const char *variant;
    const char **domains; /* the --domain list or the resumed one (borrowed), or NULL */
    size_t n_domains;
    rw_trainset_t train, eval;
    rw_train_config_t tc;
    rw_trainer_t *tr;
    rw_batch_kind_t kind;
    size_t per_step;
    long steps, spe, start, eval_every;
    uint64_t seed;
    uint64_t data_fp; /* rw_trainset_fingerprint of the train set */
    char *ckpt;       /* owned: out + ".ckpt" */
    /* the log window, and the run's totals */
    double w_loss, w_acc, w_margin, w_grad, w_secs, w_flop, w_n;
    long w_steps;
    double t_secs, t_flop, t_n, t_loss;
    long skipped;
    json_t *last_eval;
} job_t;

/* "1.47 M" or "12345": a parameter count for people. */
static const char *count_str(size_t n, char buf[32])
{
    if (n >= 1000000)
        snprintf(buf, 32, "%.2f M", (double)n / 1e6);
    else
        snprintf(buf, 32, "%zu", n);
    return buf;
}

/* The static name of variant s, or NULL for an unknown one. */
static const char *variant_name(const char *s)
{
    static const char *const names[] = {"dense", "moe", "router", "lora"};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0)
            return names[i];
    return NULL;
}

/* Takes the model, adapter and tokenizer of a loaded checkpoint. */
static void take(job_t *j, cli_rmodel_t *m)
{
    j->model = m->model;
    j->lora = m->lora;
    j->bpe = m->bpe;
    j->tok_json = m->tokenizer;
    m->model = NULL;
    m->lora = NULL;
    m->bpe = NULL;
    m->tokenizer = NULL;
}

/* The tokenizer of a run from scratch: --tokenizer, or trained here on the
 * train split of every domain, so models of one data share it. */
static int scratch_tokenizer(job_t *j, const rw_dataset_t *ds)
{
    char err[512];
    if (j->o->tokenizer) {
        if (rw_bpe_load(j->o->tokenizer, &j->bpe, err, sizeof err) < 0) {
            cli_say("train", "%s", err);
            return 1;
        }
    } else {
        rw_bpe_train_opts_t bo = RW_BPE_TRAIN_OPTS_DEFAULT;
        bo.vocab_size = (size_t)j->o->vocab;
        double t0 = rw_now_s();
        int rc = rw_corpus_train_bpe(ds, &bo, &j->bpe);
        if (rc < 0) {
            cli_say("train", "training the tokenizer failed: %s", rw_strerror(rc));
            return 1;
        }
        cli_say("train", "tokenizer: %zu tokens trained on the train split in %.1f s",
                rw_bpe_vocab_size(j->bpe), rw_now_s() - t0);
    }
    j->tok_json = rw_bpe_to_json(j->bpe);
    return 0;
}

/* The resumed run's domains, seed and schedule, from its extra metadata. */
static int resume_extra(job_t *j, json_t *x)
{
    j->from = json_incref(x);
    json_t *d = json_object_get(x, "domains");
    j->variant = variant_name(json_string_value(json_object_get(x, "variant")));
    j->seed = (uint64_t)json_integer_value(json_object_get(x, "seed"));
    j->per_step = (size_t)json_integer_value(json_object_get(x, "batch"));
    j->steps = (long)json_integer_value(json_object_get(x, "steps"));
    if (!json_is_array(d) || !j->variant || !j->per_step || j->steps < 1) {
        cli_say("train", "%s was not written by rewire train (no variant, domains, batch or steps)",
                j->o->resume);
        return 1;
    }
    json_int_t batch = json_integer_value(json_object_get(x, "batch"));
    if (batch < 1 || batch > 65536 || j->steps > (1L << 40)) {
        cli_say("train",
                "%s: its batch (%" JSON_INTEGER_FORMAT
                ", 1..65536) or steps (%ld) cannot be resumed",
                j->o->resume, batch, j->steps);
        return 1;
    }
    j->n_domains = json_array_size(d);
    j->domains = rw_new_array(const char *, j->n_domains + 1);
    for (size_t i = 0; i < j->n_domains; i++)
        if (!(j->domains[i] = json_string_value(json_array_get(d, i))))
            return cli_say("train", "%s: bad domain list", j->o->resume), 1;
    return 0;
}

/* Loads --init, --base or --resume; returns 0 or 1. */
static int load_start(job_t *j)
{
    const train_opts_t *o = j->o;
    const char *path = o->resume ? o->resume : o->init ? o->init : o->base;
    cli_rmodel_t m;
    int rc = cli_rmodel_open(&m, "train", path, o->resume ? o->base : NULL);
    if (rc == 0 && o->resume)
        rc = resume_extra(j, m.extra);
    if (rc == 0 && !o->resume && m.lora) {
        cli_say("train", "%s is an adapter; --%s wants a model checkpoint", path,
                o->init ? "init" : "base");
        rc = 1;
    }
    if (rc == 0 && o->resume) {
        if (!m.info.has_training) {
            cli_say("train",
                    "%s holds no optimizer state to resume from (a --checkpoint-every file does)",
                    path);
            rc = 1;
        }
        j->tc = m.info.train;
    }
    if (rc == 0 && o->init && !o->variant)
        j->variant = variant_name(m.variant);
    if (rc == 0)
        take(j, &m);
    cli_rmodel_close(&m);
    return rc;
}

/* Copies every tensor src and dst share by name and size but the head. */
static void copy_body(rw_model_t *dst, const rw_model_t *src)
{
    for (size_t i = 0; i < dst->layout.n_tensors; i++) {
        const rw_tensor_t *t = &dst->layout.t[i];
        const rw_tensor_t *s = rw_model_tensor(src, t->name);
        if (t->n && s && s->n == t->n && strncmp(t->name, "head_", 5) != 0)
            memcpy(dst->mem + t->offset, src->mem + s->offset, t->n * sizeof(float));
    }
}

/* The configuration of the model to train, for a tokenizer of vocab tokens
 * and n_domains domains: the options' shape (from scratch) or the --init
 * model's, with the variant's head. */
static void model_config(const job_t *j, size_t vocab, size_t n_domains, rw_model_config_t *cfg)
{
    int router = strcmp(j->variant, "router") == 0, moe = strcmp(j->variant, "moe") == 0;
    *cfg = j->model ? j->model->cfg : j->o->mc;
    if (!j->model) {
        cfg->vocab = (int)vocab;
        if (!cfg->d_ff)
            cfg->d_ff = 4 * cfg->d_model;
        if (moe && !cfg->n_experts)
            cfg->n_experts = n_domains >= 2 ? (int)n_domains : 4;
        if (moe && cfg->top_k > cfg->n_experts)
            cfg->top_k = cfg->n_experts;
        if (!moe)
            cfg->n_experts = 0;
    }
    cfg->head = router ? RW_HEAD_CLASSIFIER : RW_HEAD_REWARD;
    cfg->n_classes = router ? (int)n_domains : 0;
}

/* The model to train: new from the options, or the --init one given the
 * variant's head (a router branched from a reward model keeps the body).
 * preflight has checked the shape. */
static int make_model(job_t *j)
{
    rw_model_config_t cfg;
    model_config(j, rw_bpe_vocab_size(j->bpe), j->train.n_domains, &cfg);
    if (j->model && memcmp(&cfg, &j->model->cfg, sizeof cfg) == 0)
        return 0; /* branching: train the checkpoint as it is */
    if (rw_model_config_validate(&cfg) < 0) {
        cli_say("train", "this model shape is not valid (see the line above)");
        return 1;
    }
    rw_model_t *m;
    rw_model_new(&m, &cfg);
    rw_model_init(m, j->seed);
    if (j->model) {
        copy_body(m, j->model);
        rw_model_destroy(&j->model);
    }
    j->model = m;
    return 0;
}

/* The adapter to train on the --base model; preflight has checked that
 * the options' adapter fits it. */
static int make_adapter(job_t *j)
{
    int rc = rw_lora_new(&j->lora, j->model, &j->o->lc);
    if (rc < 0) {
        cli_say("train", "cannot make the adapter: %s", rw_strerror(rc));
        return 1;
    }
    rw_lora_init(j->lora, j->model, j->seed);
    return 0;
}

static int build_sets(job_t *j, const rw_dataset_t *ds)
{
    rw_trainset_opts_t to = {RW_SEL_TRAIN, j->domains, j->n_domains, 0,
                             (size_t)(j->model ? j->model->cfg.max_len : j->o->mc.max_len)};
    double t0 = rw_now_s();
    int rc = rw_trainset_build(&j->train, ds, j->bpe, &to);
    to.split = RW_SEL_EVAL;
    if (rc == 0)
        rc = rw_trainset_build(&j->eval, ds, j->bpe, &to);
    if (rc < 0) {
        cli_say("train", "cannot tokenize the data: %s", rw_strerror(rc));
        return 1;
    }
    if (!j->train.n) {
        cli_say("train", "no train pairs in the data%s", j->n_domains ? " for those domains" : "");
        return 1;
    }
    j->data_fp = rw_trainset_fingerprint(&j->train);
    cli_say("train", "%zu train and %zu eval pairs in %zu domain(s), tokenized in %.1f s",
            j->train.n, j->eval.n, j->train.n_domains, rw_now_s() - t0);
    return 0;
}

/* What a step takes: its kind, its size and the trainer's configuration (a
 * resumed run keeps its checkpoint's). The schedule, which depends on the
 * data, comes in schedule(). */
static void step_config(job_t *j)
{
    const train_opts_t *o = j->o;
    j->kind = strcmp(j->variant, "router") == 0 ? RW_BATCH_PROMPTS : RW_BATCH_PAIRS;
    if (!o->resume) {
        j->per_step = o->batch ? (size_t)o->batch : j->kind == RW_BATCH_PROMPTS ? 32 : 16;
        rw_train_config_default(&j->tc);
        double lr = o->lr >= 0 ? o->lr : o->init ? 3e-4 : 1e-3;
        j->tc.opt.lr = (float)lr;
        j->tc.opt.min_lr = (float)(lr / 10);
        j->tc.opt.weight_decay = (float)o->wd;
        j->tc.grad_clip = (float)o->clip;
        j->tc.gate_coef = (float)o->gate_coef;
        j->tc.max_batch = j->kind == RW_BATCH_PAIRS ? 2 * j->per_step : j->per_step;
        j->tc.threads = (int)o->threads;
    } else if (o->threads) {
        j->tc.threads = (int)o->threads;
    }
}

/* Steps and the learning-rate schedule over them (a resumed run keeps its
 * checkpoint's). */
static void schedule(job_t *j)
{
    const train_opts_t *o = j->o;
    j->spe = rw_trainset_steps_per_epoch(&j->train, j->per_step);
    if (!o->resume) {
        j->steps = o->steps ? o->steps : o->epochs * j->spe;
        j->tc.opt.warmup_steps = o->warmup >= 0 ? o->warmup : j->steps / 20;
        j->tc.opt.total_steps = j->steps;
    }
    j->eval_every = o->eval_every >= 0 ? o->eval_every : j->spe;
}

/* The option each field of a model configuration comes from. */
static const char *const shape_opts[][2] = {
    {"vocab", "--vocab"},       {"max_len", "--max-len"}, {"d_model", "--d-model"},
    {"n_layers", "--layers"},   {"n_heads", "--heads"},   {"d_ff", "--d-ff"},
    {"n_experts", "--experts"}, {"top_k", "--top-k"},
};

/* rw_model_config_check's reason why, with each field named by its option
 * ("--d-model (33) must be a multiple of --heads (2)"), into out (size n). */
static void option_words(const char *why, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = why; *p && k + 1 < n;) {
        const char *word = NULL;
        size_t len = 0;
        int start = p == why || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z'));
        for (size_t i = 0; start && !word && i < sizeof shape_opts / sizeof shape_opts[0]; i++) {
            len = strlen(shape_opts[i][0]);
            if (strncmp(p, shape_opts[i][0], len) == 0)
                word = shape_opts[i][1];
        }
        if (!word) {
            out[k++] = *p++;
            continue;
        }
        size_t w = strlen(word);
        if (k + w >= n)
            break;
        memcpy(out + k, word, w);
        k += w;
        p += len;
    }
    out[k] = '\0';
}

/* Bytes the run holds at once: the weights and what the trainer allocates. */
static size_t run_bytes(const job_t *j, const rw_model_config_t *cfg, const rw_lora_config_t *lc)
{
    rw_layout_t l;
    rw_model_layout(cfg, &l);
    size_t weights = l.n_floats;
    if (lc) {
        rw_lora_layout(lc, cfg, &l);
        weights += l.n_floats;
    }
    size_t trainer = rw_trainer_bytes(cfg, lc, &j->tc);
    weights *= sizeof(float);
    return trainer > SIZE_MAX - weights ? SIZE_MAX : trainer + weights;
}

/* 0 if the run fits in the memory this process may use (the machine's, or
 * less under a cgroup's limit; or that is unknown); else 2
 * after a usage error naming the options to lower, or 1 for a resumed run,
 * whose batch and shape are its checkpoint's. A step touches every byte of
 * its activations, so a run past that memory would be killed mid-way. */
static int check_memory(job_t *j, const rw_model_config_t *cfg, const rw_lora_config_t *lc)
{
    const train_opts_t *o = j->o;
    rw_memlimit_t have = rw_memory_limit();
    size_t need = run_bytes(j, cfg, lc);
    if (!have.bytes || need <= have.bytes)
        return 0;
    char nb[32], hb[32], what[320];
    snprintf(what, sizeof what,
             "training needs about %s of memory, more than %s %s: a step holds %zu "
             "sequences (batch %zu %s) of up to %d tokens through %d layers",
             cli_bytes_str(need, nb),
             have.by_cgroup ? "the memory limit of this process's cgroup (its container or job),"
                            : "this machine's",
             cli_bytes_str(have.bytes, hb), j->tc.max_batch, j->per_step,
             j->kind == RW_BATCH_PROMPTS ? "prompts" : "pairs", cfg->max_len, cfg->n_layers);
    if (o->resume) {
        cli_say("train",
                "%s: %s; its batch and shape come from the checkpoint, so it cannot resume here",
                o->resume, what);
        return 1;
    }
    return cli_usage_error("train",
                           "%s; lower --batch%s (attention's memory grows with the batch times "
                           "the square of the length)",
                           what, j->model ? "" : ", --max-len or the model's size");
}

/* Before the costly work (training the tokenizer, tokenizing the data):
 * the model's shape, the adapter's fit and the memory training needs, from
 * the options and the checkpoint started from. Returns 0, 1 (the data or
 * the checkpoint does not fit the run, said) or 2 (a usage error). */
static int preflight(job_t *j, const rw_dataset_t *ds)
{
    const train_opts_t *o = j->o;
    size_t n_domains = j->n_domains;
    if (!n_domains) {
        const char **all;
        n_domains = rw_dataset_domains(ds, &all);
        free(all);
    }
    char why[256], words[320];
    int moe = strcmp(j->variant, "moe") == 0, lora = strcmp(j->variant, "lora") == 0;
    rw_model_config_t cfg;
    const rw_lora_config_t *lc = j->lora ? &j->lora->cfg : lora ? &o->lc : NULL;
    if (o->resume || lora) {
        cfg = j->model->cfg;
    } else {
        model_config(j, j->bpe ? rw_bpe_vocab_size(j->bpe) : (size_t)o->vocab, n_domains, &cfg);
        if (strcmp(j->variant, "router") == 0 && n_domains < 2) {
            cli_say("train", "a router needs at least two domains; the data has %zu", n_domains);
            return 1;
        }
        if (j->model && moe != (cfg.n_experts > 0)) {
            cli_say("train", "--init %s is a %s model; a %s model branches from a %s one", o->init,
                    cfg.n_experts ? "moe" : "dense", j->variant, moe ? "moe" : "dense (or router)");
            return 1;
        }
    }
    if (!o->resume && !lora && rw_model_config_check(&cfg, why, sizeof why) < 0) {
        if (j->model) {
            cli_say("train", "--init %s cannot make this %s model: %s", o->init, j->variant, why);
            return 1;
        }
        option_words(why, words, sizeof words);
        return cli_usage_error("train", "this model shape cannot be built: %s", words);
    }
    if (!o->resume && lora && rw_lora_config_check(lc, &cfg, why, sizeof why) < 0)
        return cli_usage_error("train", "this adapter does not fit --base %s: %s", o->base, why);
    step_config(j);
    return check_memory(j, &cfg, lc);
}

/* rewire.extra of what is written: how it was trained. */
static void make_extra(job_t *j)
{
    const train_opts_t *o = j->o;
    json_t *doms = json_array(), *data = json_array();
    for (size_t i = 0; i < j->train.n_domains; i++)
        json_array_append_new(doms, json_string(j->train.domains[i]));
    for (size_t i = 0; i < o->n_data; i++)
        json_array_append_new(data, json_string(o->data[i]));
    char fp[17];
    snprintf(fp, sizeof fp, "%016" PRIx64, j->data_fp);
    j->extra = json_pack("{s:s, s:o, s:I, s:I, s:I, s:o, s:s}", "variant", j->variant, "domains",
                         doms, "seed", (json_int_t)j->seed, "batch", (json_int_t)j->per_step,
                         "steps", (json_int_t)j->steps, "data", data, "data_fingerprint", fp);
    const char *base = o->base ? o->base : json_string_value(json_object_get(j->from, "base"));
    const char *init = o->init ? o->init : json_string_value(json_object_get(j->from, "init"));
    if (j->lora && base)
        json_object_set_new(j->extra, "base", json_string(base));
    if (init)
        json_object_set_new(j->extra, "init", json_string(init));
}

/* Writes the model or adapter (with the trainer's state if tr). */
static int save(job_t *j, const char *path, rw_trainer_t *tr)
{
    char *x = json_dumps(j->extra, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc = j->lora ? rw_lora_save(path, j->lora, tr, x)
                     : rw_checkpoint_save(path, j->model, tr, j->tok_json, x);
    free(x);
    if (rc < 0)
        cli_say("train", "cannot write %s: %s", path, rw_strerror(rc));
    return rc < 0 ? 1 : 0;
}

static int next_batch(void *ctx, long step, rw_batch_t *b)
{
    job_t *j = ctx;
    int rc = rw_trainset_batch(&j->train, j->seed, step, j->per_step, j->kind, b);
    return rc < 0 ? rc : 0;
}

/* Held-out evaluation on the trainer's engine: one line, kept for the end. */
static void eval_now(job_t *j, long step)
{
    if (!j->eval.n)
        return;
    json_t *r = cli_eval_report(rw_trainer_engine(j->tr), &j->eval);
    if (!r)
        return;
    char line[1024];
    int k = snprintf(line, sizeof line, "eval at step %ld: %s %.4f", step,
                     j->kind == RW_BATCH_PROMPTS ? "routed" : "accuracy",
                     json_number_value(json_object_get(r, "accuracy")));
    if (j->kind == RW_BATCH_PAIRS)
        k += snprintf(line + k, sizeof line - (size_t)k, "  margin %.3f",
                      json_number_value(json_object_get(r, "margin")));
    json_t *doms = json_object_get(r, "domains"), *d;
    size_t i;
    json_array_foreach(doms, i, d)
    {
        if (json_array_size(doms) < 2 || k < 0 || (size_t)k >= sizeof line)
            break;
        k += snprintf(line + k, sizeof line - (size_t)k, "  %s %.3f",
                      json_string_value(json_object_get(d, "name")),
                      json_number_value(json_object_get(d, "accuracy")));
    }
    cli_say("train", "%s", line);
    json_decref(j->last_eval);
    j->last_eval = r;
}

static void log_window(job_t *j, long step)
{
    double k = (double)j->w_steps;
    rw_step_stats_t s = {0};
    s.step = step;
    s.loss = j->w_loss / k;
    s.accuracy = j->w_acc / k;
    s.margin = j->w_margin / k;
    s.grad_norm = j->w_grad / k;
    s.lr = rw_adamw_lr(&j->tc.opt, step - 1);
    s.pairs_per_s = j->w_secs > 0 ? j->w_n / j->w_secs : 0;
    s.gflops = j->w_secs > 0 ? j->w_flop / j->w_secs * 1e-9 : 0;
    char line[256];
    cli_say("train", "%s  epoch %.2f", rw_step_stats_format(&s, line, sizeof line),
            (double)step / (double)j->spe);
    j->w_loss = j->w_acc = j->w_margin = j->w_grad = j->w_secs = j->w_flop = j->w_n = 0;
    j->w_steps = 0;
}

/* Ctrl-C (or SIGTERM) stops the run at the end of its step, which then
 * saves the checkpoint to resume from; a second one ends it at once, and so
 * does the first before training starts (reading, tokenizing: nothing to
 * keep yet). */
static volatile sig_atomic_t interrupted, training;

static void on_interrupt(int sig)
{
    if (interrupted || !training) {
        rw_afile_unlink_all(); /* a checkpoint half written */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    interrupted = sig;
}

#define STOP_INTERRUPTED 2 /* on_step's return when interrupted */

static int on_step(void *ctx, const rw_step_stats_t *st)
{
    job_t *j = ctx;
    char line[256];
    long step = st->step + j->skipped;
    if (st->skipped) {
        j->skipped++;
        cli_say("train", "%s", rw_step_stats_format(st, line, sizeof line));
        return interrupted ? STOP_INTERRUPTED : 0;
    }
    double flop = st->gflops * st->seconds * 1e9;
    j->w_loss += st->loss, j->w_acc += st->accuracy, j->w_margin += st->margin;
    j->w_grad += st->grad_norm, j->w_secs += st->seconds, j->w_flop += flop;
    j->w_n += (double)st->n, j->w_steps++;
    j->t_secs += st->seconds, j->t_flop += flop, j->t_n += (double)st->n;
    j->t_loss = st->loss;
    const train_opts_t *o = j->o;
    if (o->log_every && (step % o->log_every == 0 || step == 1 || step == j->steps))
        log_window(j, step);
    if (j->eval_every && step % j->eval_every == 0 && step < j->steps)
        eval_now(j, step);
    if (o->ckpt_every && step % o->ckpt_every == 0 && save(j, j->ckpt, j->tr) != 0)
        return 1;
    return interrupted ? STOP_INTERRUPTED : 0;
}

/* The closing summary: text on stdout, or one JSON object. */
static void summary(job_t *j, double wall)
{
    const train_opts_t *o = j->o;
    size_t params = j->lora ? j->lora->layout.n_floats : j->model->layout.n_floats;
    char fp[17], *cfg = rw_model_config_to_json(&j->model->cfg);
    cli_fingerprint(j->model, j->lora, fp);
    double epochs = (double)j->steps / (double)j->spe, pps = j->t_secs ? j->t_n / j->t_secs : 0;
    double gf = j->t_secs ? j->t_flop / j->t_secs * 1e-9 : 0;
    if (o->json) {
        json_error_t jerr;
        json_t *r = json_pack(
            "{s:s, s:s, s:I, s:o, s:O, s:I, s:I, s:I, s:f, s:I, s:f, s:I, s:f, s:f, s:f, s:f, "
            "s:s}",
            "output", o->out, "variant", j->variant, "parameters", (json_int_t)params, "config",
            json_loads(cfg, 0, &jerr), "domains", json_object_get(j->extra, "domains"),
            "train_pairs", (json_int_t)j->train.n, "eval_pairs", (json_int_t)j->eval.n, "steps",
            (json_int_t)j->steps, "epochs", epochs, "batch", (json_int_t)j->per_step, "lr",
            (double)j->tc.opt.lr, "skipped", (json_int_t)j->skipped, "train_seconds", j->t_secs,
            "wall_seconds", wall, "pairs_per_s", pps, "gflops", gf, "fingerprint", fp);
        if (j->lora) {
            char *l = rw_lora_config_to_json(&j->lora->cfg);
            json_object_set_new(r, "lora", json_loads(l, 0, &jerr));
            json_object_set_new(r, "base_parameters",
                                json_integer((json_int_t)j->model->layout.n_floats));
            free(l);
        }
        json_object_set(r, "eval", j->last_eval ? j->last_eval : json_null());
        cli_print_json(r);
        json_decref(r);
    } else {
        char pb[32];
        printf("wrote %s: %s, %s parameters%s, %s\n", o->out, j->variant, count_str(params, pb),
               j->lora ? " (adapter)" : "", cfg);
        printf("%ld steps (%.2f epochs of %zu pairs, batch %zu) in %.1f s: %.1f %s/s, "
               "%.1f GFLOP/s; wall %.1f s%s\n",
               j->steps, epochs, j->train.n, j->per_step, j->t_secs, pps,
               j->kind == RW_BATCH_PROMPTS ? "prompts" : "pairs", gf, wall,
               j->skipped ? " (some steps skipped)" : "");
        if (j->last_eval) {
            printf("held-out (eval split):\n");
            cli_eval_print(stdout, j->last_eval);
        }
    }
    free(cfg);
}

/* A resumed run continues exactly only on the train pairs it started on:
 * its checkpoint's fingerprint of them against this --data's. Returns 0, or
 * 1 having said that the data differs. */
static int check_resume_data(job_t *j)
{
    const char *want = json_string_value(json_object_get(j->from, "data_fingerprint"));
    char have[17];
    snprintf(have, sizeof have, "%016" PRIx64, j->data_fp);
    if (!want) {
        cli_say("train",
                "%s has no fingerprint of its training data (an older rewire wrote it): resuming "
                "without checking that --data is the same",
                j->o->resume);
        return 0;
    }
    if (strcmp(want, have) == 0)
        return 0;
    char from[512] = "";
    size_t i, k = 0;
    json_t *p;
    json_array_foreach(json_object_get(j->from, "data"), i, p)
    {
        if (k < sizeof from)
            k += (size_t)snprintf(from + k, sizeof from - k, "%s%s", i ? " " : "",
                                  json_string_value(p) ? json_string_value(p) : "?");
    }
    cli_say("train",
            "%s was trained on other data: its run started on the train pairs of %s (fingerprint "
            "%s), --data gives %zu train pairs that differ (fingerprint %s); resume with the same "
            "--data",
            j->o->resume, from[0] ? from : "files it does not name", want, j->train.n, have);
    return 1;
}

/* Setup: the starting point, the data, the model and the trainer. */
static int setup(job_t *j, const rw_dataset_t *ds)
{
    const train_opts_t *o = j->o;
    int rc = 0;
    if (!o->resume) {
        j->variant = o->variant ? o->variant : "dense";
        j->seed = (uint64_t)o->seed;
        j->domains = o->n_domains ? o->domains : NULL;
        j->n_domains = o->n_domains;
    }
    if (o->resume || o->init || o->base)
        rc = load_start(j);
    else if (o->tokenizer)
        rc = scratch_tokenizer(j, ds); /* read: its vocabulary sizes the model */
    if (rc == 0)
        rc = preflight(j, ds);
    if (rc == 0 && !j->bpe)
        rc = scratch_tokenizer(j, ds); /* trained, once the run is known to fit */
    if (rc == 0)
        rc = build_sets(j, ds);
    if (rc == 0 && o->resume)
        rc = check_resume_data(j);
    if (rc == 0 && !o->resume)
        rc = strcmp(j->variant, "lora") == 0 ? make_adapter(j) : make_model(j);
    if (rc)
        return rc;
    schedule(j);
    make_extra(j);
    int err = rw_trainer_new(&j->tr, j->model, j->lora, &j->tc);
    if (err == 0 && o->resume)
        err = rw_checkpoint_restore_trainer(o->resume, j->tr);
    if (err == RW_ENOMEM) {
        char b[32];
        size_t need = rw_trainer_bytes(&j->model->cfg, j->lora ? &j->lora->cfg : NULL, &j->tc);
        cli_say("train", "cannot set the trainer up: out of memory allocating about %s",
                cli_bytes_str(need, b));
        return 1;
    }
    if (err < 0) {
        cli_say("train", "cannot set the trainer up: %s", rw_strerror(err));
        return 1;
    }
    j->start = rw_trainer_updates(j->tr) + rw_trainer_skipped(j->tr);
    j->skipped = rw_trainer_skipped(j->tr);
    return 0;
}

/* 0 when path can be written (a file in a writable folder, or a device
 * or pipe), else 1 having said why: found out before training, not after. */
static int check_out(const char *path)
{
    struct stat st;
    if (!path[0]) {
        cli_say("train", "--out is empty: it names the file to write");
        return 1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        cli_say("train", "cannot write %s: it is a directory; --out names a file", path);
        return 1;
    }
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return 0; /* written in place; opening a pipe now would wait for its reader */
    rw_afile_t af;
    int rc = rw_afile_open(&af, path);
    if (rc < 0) {
        cli_say("train", "cannot write %s: %s", path, rw_strerror(rc));
        return 1;
    }
    rw_afile_abort(&af);
    return 0;
}

/* --json promises one object on stdout: a run stopped early names the
 * checkpoint it continues from, and (exit, when not 0) how it ended. */
static void print_stopped(const char *why, const char *ckpt, long step, long steps, long skipped,
                          int exit_code)
{
    json_t *r =
        json_pack("{s:s, s:s, s:I, s:I, s:I}", "stopped", why, "checkpoint", ckpt, "step",
                  (json_int_t)step, "steps", (json_int_t)steps, "skipped", (json_int_t)skipped);
    if (exit_code)
        json_object_set_new(r, "exit", json_integer(exit_code));
    cli_print_json(r);
    json_decref(r);
}

int train_job_run(const train_opts_t *o, const rw_dataset_t *ds)
{
    if (check_out(o->out))
        return 1;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    interrupted = training = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    job_t j = {0};
    j.o = o;
    rw_trainset_init(&j.train);
    rw_trainset_init(&j.eval);
    j.ckpt = rw_malloc(strlen(o->out) + 6);
    sprintf(j.ckpt, "%s.ckpt", o->out);
    double t0 = rw_now_s();
    int rc = setup(&j, ds);
    if (rc)
        goto done;
    long todo = j.steps - j.start, stopped = 0;
    if (o->stop_after && o->stop_after < todo)
        todo = o->stop_after, stopped = 1;
    size_t params = j.lora ? j.lora->layout.n_floats : j.model->layout.n_floats;
    char pb[32];
    cli_say("train",
            "%s: %s parameters, %zu %s a step, %ld steps (%.2f epochs), lr %.2g, %d thread(s)%s",
            j.variant, count_str(params, pb), j.per_step,
            j.kind == RW_BATCH_PROMPTS ? "prompts" : "pairs", j.steps,
            (double)j.steps / (double)j.spe, (double)j.tc.opt.lr,
            rw_engine_threads(rw_trainer_engine(j.tr)), j.start ? "; resuming" : "");
    if (j.start)
        cli_say("train", "resumed at step %ld of %ld", j.start, j.steps);
    training = 1; /* from here a first Ctrl-C keeps what was trained */
    int err = rw_trainer_run(j.tr, todo, next_batch, on_step, &j);
    if (err == STOP_INTERRUPTED) { /* what was trained is kept, to resume */
        long at = rw_trainer_updates(j.tr) + rw_trainer_skipped(j.tr);
        rc = save(&j, j.ckpt, j.tr);
        if (rc == 0)
            cli_say("train", "interrupted at step %ld of %ld; continue with --resume %s", at,
                    j.steps, j.ckpt);
        if (rc == 0 && o->json)
            print_stopped("interrupted", j.ckpt, at, j.steps, j.skipped, 128 + (int)interrupted);
        rc = 128 + (int)interrupted;
        goto done;
    }
    if (err != 0) {
        cli_say("train", "training stopped: %s",
                err < 0 ? rw_strerror(err) : "cannot write a checkpoint");
        rc = 1;
        goto done;
    }
    if (stopped) {
        rc = save(&j, j.ckpt, j.tr);
        if (rc == 0)
            cli_say("train", "stopped after %ld steps (step %ld of %ld); continue with --resume %s",
                    todo, j.start + todo, j.steps, j.ckpt);
        if (rc == 0 && o->json)
            print_stopped("after --stop-after", j.ckpt, j.start + todo, j.steps, j.skipped, 0);
        goto done;
    }
    eval_now(&j, j.steps);
    rc = save(&j, o->out, NULL);
    if (rc == 0)
        summary(&j, rw_now_s() - t0);
done:
    rw_trainer_destroy(&j.tr);
    rw_trainset_fini(&j.train);
    rw_trainset_fini(&j.eval);
    rw_lora_destroy(&j.lora);
    rw_model_destroy(&j.model);
    rw_bpe_destroy(&j.bpe);
    free(j.tok_json);
    free(j.ckpt);
    if (o->resume)
        free(j.domains);
    json_decref(j.extra);
    json_decref(j.from);
    json_decref(j.last_eval);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}
