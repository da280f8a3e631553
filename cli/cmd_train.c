/* cmd_train.c — `rewire train`: one model from preference files, in one
 * process.
 *
 * Any variant: a dense reward model, an MoE reward model, a router (a domain
 * classifier on prompts) or a LoRA reward adapter on a frozen base; from
 * scratch, branched from a checkpoint (--init), or resumed (--resume) from
 * the optimizer checkpoint an earlier run left. It trains on the train split
 * of the data (all domains, or the --domain ones), logs every few steps,
 * evaluates on the eval split of the same domains, and writes one
 * safetensors file holding everything eval and score need (the tokenizer,
 * the configuration, the domains; for an adapter, the base's path).
 *
 * This file is the command line and the setup; train_run.c is the loop.
 */
#include "cli.h"
#include "train_job.h"

#include "alloc.h"
#include "corpus.h"
#include "dataset.h"
#include "err.h"

#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const train_usage =
    "usage: rewire train --data FILE... --out PATH [options]\n"
    "\n"
    "Trains one model on the train split of FILE (normalized or any format `rewire data\n"
    "import` reads) and evaluates it on the eval split. PATH is one safetensors file\n"
    "(written whole or not at all) with the tokenizer and everything `rewire eval` and\n"
    "`rewire score` need.\n"
    "\n"
    "What to train:\n"
    "  --variant V            dense (a reward model; default), moe (a reward model whose\n"
    "                         feed-forward blocks are mixtures of experts), router (a domain\n"
    "                         classifier on prompts), lora (a reward adapter on --base)\n"
    "  --domain NAME          train on this domain only (repeat for several; default all)\n"
    "  --init PATH            branch from this model checkpoint (its shape and tokenizer)\n"
    "  --base PATH            the frozen base model of a lora adapter\n"
    "  --resume PATH          continue the run that wrote this checkpoint (PATH.ckpt of an\n"
    "                         earlier --out); model, tokenizer, schedule, domains and seed\n"
    "                         come from it, give the same --data\n"
    "  --tokenizer PATH       use this tokenizer.json (default: train one on the train split\n"
    "                         of all the data's domains)\n"
    "  --vocab N              vocabulary of that trained tokenizer (8192)\n"
    "\n"
    "Model shape (from scratch):\n"
    "  --d-model N (128)  --layers N (2)  --heads N (4)  --d-ff N (4 x d-model)\n"
    "  --max-len N (192)      tokens per sequence; a long prompt is cut from its start\n"
    "  --pooling mean|last    (mean)\n"
    "  --experts N (domains, at least 2)  --top-k N (2)      moe only\n"
    "  --gate-coef F          weight of the gates' domain cross-entropy (moe; 0)\n"
    "  --gate token|prompt    what a gate reads: each token's vector, or the prompt's\n"
    "                         token ids, routing the whole sequence (moe; token)\n"
    "  --rank N (8)  --alpha F (16)  --lora-targets q,k,v,o,ff1,ff2,emb (q,k,v,o,ff1,ff2;\n"
    "                         emb: the token embedding)   lora only\n"
    "\n"
    "Schedule:\n"
    "  --epochs N (4) | --steps N\n"
    "  --batch N              pairs per step (prompts for a router) (16; router 32)\n"
    "  --lr F                 peak learning rate (1e-3; 3e-4 with --init)\n"
    "  --warmup N             warm-up steps (5% of the steps); then cosine decay to lr/10\n"
    "  --weight-decay F (0.01)  --clip F (1.0; 0 turns clipping off)  --seed N (1)\n"
    "  --threads N            batch threads (one per CPU)\n"
    "\n"
    "Progress:\n"
    "  --log-every N          a line every N steps: loss, accuracy, pairs/s, GFLOP/s (50)\n"
    "  --eval-every N         held-out evaluation every N steps (each epoch; 0: at the end)\n"
    "  --checkpoint-every N   save weights and optimizer state to PATH.ckpt every N steps\n"
    "  --stop-after N         stop after N steps of this run, leaving PATH.ckpt to --resume\n"
    "  --json                 print the summary as JSON on stdout\n";

enum {
    O_DATA = 256,
    O_VARIANT,
    O_DOMAIN,
    O_INIT,
    O_BASE,
    O_RESUME,
    O_TOKENIZER,
    O_VOCAB,
    O_DMODEL,
    O_LAYERS,
    O_HEADS,
    O_DFF,
    O_MAXLEN,
    O_POOLING,
    O_EXPERTS,
    O_TOPK,
    O_GATECOEF,
    O_GATE,
    O_RANK,
    O_ALPHA,
    O_TARGETS,
    O_EPOCHS,
    O_STEPS,
    O_BATCH,
    O_LR,
    O_WARMUP,
    O_WD,
    O_CLIP,
    O_SEED,
    O_THREADS,
    O_LOGEVERY,
    O_EVALEVERY,
    O_CKPTEVERY,
    O_STOPAFTER,
    O_JSON,
};

static const struct option train_longopts[] = {
    {"data", required_argument, NULL, O_DATA},
    {"out", required_argument, NULL, 'o'},
    {"variant", required_argument, NULL, O_VARIANT},
    {"domain", required_argument, NULL, O_DOMAIN},
    {"init", required_argument, NULL, O_INIT},
    {"base", required_argument, NULL, O_BASE},
    {"resume", required_argument, NULL, O_RESUME},
    {"tokenizer", required_argument, NULL, O_TOKENIZER},
    {"vocab", required_argument, NULL, O_VOCAB},
    {"d-model", required_argument, NULL, O_DMODEL},
    {"layers", required_argument, NULL, O_LAYERS},
    {"heads", required_argument, NULL, O_HEADS},
    {"d-ff", required_argument, NULL, O_DFF},
    {"max-len", required_argument, NULL, O_MAXLEN},
    {"pooling", required_argument, NULL, O_POOLING},
    {"experts", required_argument, NULL, O_EXPERTS},
    {"top-k", required_argument, NULL, O_TOPK},
    {"gate-coef", required_argument, NULL, O_GATECOEF},
    {"gate", required_argument, NULL, O_GATE},
    {"rank", required_argument, NULL, O_RANK},
    {"alpha", required_argument, NULL, O_ALPHA},
    {"lora-targets", required_argument, NULL, O_TARGETS},
    {"epochs", required_argument, NULL, O_EPOCHS},
    {"steps", required_argument, NULL, O_STEPS},
    {"batch", required_argument, NULL, O_BATCH},
    {"lr", required_argument, NULL, O_LR},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"weight-decay", required_argument, NULL, O_WD},
    {"clip", required_argument, NULL, O_CLIP},
    {"seed", required_argument, NULL, O_SEED},
    {"threads", required_argument, NULL, O_THREADS},
    {"log-every", required_argument, NULL, O_LOGEVERY},
    {"eval-every", required_argument, NULL, O_EVALEVERY},
    {"checkpoint-every", required_argument, NULL, O_CKPTEVERY},
    {"stop-after", required_argument, NULL, O_STOPAFTER},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Bits of train_opts_t.set: which options the user gave. */
enum {
    S_SHAPE = 1,
    S_TOKENIZER = 2,
    S_LORA = 4,
    S_MOE = 8,
    S_EPOCHS = 16,
    S_OPTIM = 32,    /* --seed, --weight-decay, --clip */
    S_MOESHAPE = 64, /* --experts, --top-k, --gate: what a moe checkpoint fixes */
};

static void opts_init(train_opts_t *o, int argc)
{
    memset(o, 0, sizeof *o);
    o->data = rw_new_array(const char *, (size_t)argc + 1);
    o->domains = rw_new_array(const char *, (size_t)argc + 1);
    rw_model_config_default(&o->mc);
    o->mc.d_model = 128;
    o->mc.n_layers = 2;
    o->mc.n_heads = 4;
    o->mc.d_ff = 0; /* 4 x d_model unless given */
    o->mc.max_len = 192;
    rw_lora_config_default(&o->lc);
    o->vocab = 8192;
    o->epochs = 4;
    o->warmup = -1;
    o->lr = -1.0;
    o->wd = 0.01;
    o->clip = 1.0;
    o->seed = 1;
    o->log_every = 50;
    o->eval_every = -1;
}

static void opts_fini(train_opts_t *o)
{
    free(o->data);
    free(o->domains);
}

/* A whole number in [lo, hi] for option name into *v; 2 after saying why. */
static int num_arg(const char *name, const char *s, long lo, long hi, long *v)
{
    if (rw_arg_long(s, lo, hi, v) == 0)
        return 0;
    return cli_usage_error("train", "--%s wants a whole number from %ld to %ld, not '%s'", name, lo,
                           hi, s);
}

static int real_arg(const char *name, const char *s, double lo, double hi, double *v)
{
    if (rw_arg_real(s, lo, hi, v) == 0)
        return 0;
    return cli_usage_error("train", "--%s wants a number from %g to %g, not '%s'", name, lo, hi, s);
}

/* Options that set one long or double field of train_opts_t. */
static const struct {
    int code;
    const char *name;
    long lo, hi;
    size_t off;
} long_opts[] = {
    {O_VOCAB, "vocab", RW_BPE_MIN_VOCAB, RW_BPE_MAX_VOCAB, offsetof(train_opts_t, vocab)},
    {O_EPOCHS, "epochs", 1, 100000, offsetof(train_opts_t, epochs)},
    {O_STEPS, "steps", 1, 100000000, offsetof(train_opts_t, steps)},
    {O_BATCH, "batch", 1, 4096, offsetof(train_opts_t, batch)},
    {O_WARMUP, "warmup", 0, 100000000, offsetof(train_opts_t, warmup)},
    {O_SEED, "seed", 0, 0x7fffffffL, offsetof(train_opts_t, seed)},
    {O_THREADS, "threads", 0, 256, offsetof(train_opts_t, threads)},
    {O_LOGEVERY, "log-every", 0, 100000000, offsetof(train_opts_t, log_every)},
    {O_EVALEVERY, "eval-every", 0, 100000000, offsetof(train_opts_t, eval_every)},
    {O_CKPTEVERY, "checkpoint-every", 1, 100000000, offsetof(train_opts_t, ckpt_every)},
    {O_STOPAFTER, "stop-after", 1, 100000000, offsetof(train_opts_t, stop_after)},
};
static const struct {
    int code;
    const char *name;
    double lo, hi;
    size_t off;
} real_opts[] = {
    {O_LR, "lr", 0, 10, offsetof(train_opts_t, lr)},
    {O_WD, "weight-decay", 0, 10, offsetof(train_opts_t, wd)},
    {O_CLIP, "clip", 0, 1e9, offsetof(train_opts_t, clip)},
    {O_GATECOEF, "gate-coef", 0, 100, offsetof(train_opts_t, gate_coef)},
};

/* A model-shape, moe or lora option; returns 0 or the exit status. */
static int take_model_opt(train_opts_t *o, int c, const char *arg)
{
    static const struct {
        int code;
        const char *name;
        long lo, hi;
    } ints[] = {
        {O_DMODEL, "d-model", 1, 8192}, {O_LAYERS, "layers", 1, 64},
        {O_HEADS, "heads", 1, 256},     {O_DFF, "d-ff", 1, 65536},
        {O_MAXLEN, "max-len", 8, 8192}, {O_EXPERTS, "experts", 2, 64},
        {O_TOPK, "top-k", 1, 64},       {O_RANK, "rank", 1, 1024},
    };
    int *dst[] = {&o->mc.d_model, &o->mc.n_layers,  &o->mc.n_heads, &o->mc.d_ff,
                  &o->mc.max_len, &o->mc.n_experts, &o->mc.top_k,   &o->lc.rank};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long v;
        if (ints[i].code != c)
            continue;
        int rc = num_arg(ints[i].name, arg, ints[i].lo, ints[i].hi, &v);
        *dst[i] = (int)v;
        return rc;
    }
    double d;
    switch (c) {
    case O_POOLING:
        if (strcmp(arg, "mean") && strcmp(arg, "last"))
            return cli_usage_error("train", "--pooling is mean or last, not '%s'", arg);
        o->mc.pooling = strcmp(arg, "last") == 0 ? RW_POOL_LAST : RW_POOL_MEAN;
        return 0;
    case O_GATE:
        if (strcmp(arg, "token") && strcmp(arg, "prompt"))
            return cli_usage_error("train", "--gate is token or prompt, not '%s'", arg);
        o->mc.gate_input = strcmp(arg, "prompt") == 0 ? RW_GATE_PROMPT : RW_GATE_TOKEN;
        return 0;
    case O_ALPHA:
        if (real_arg("alpha", arg, 0, 1e6, &d))
            return 2;
        o->lc.alpha = (float)d;
        return 0;
    case O_TARGETS:
        if (rw_lora_parse_targets(arg, &o->lc.targets) < 0 || !o->lc.targets)
            return cli_usage_error("train", "--lora-targets wants a list of q,k,v,o,ff1,ff2,emb");
        return 0;
    }
    return 0;
}

/* One option; returns 0 or the exit status. */
static int take_opt(train_opts_t *o, int c, const char *arg)
{
    if (c == O_DMODEL || c == O_LAYERS || c == O_HEADS || c == O_DFF || c == O_MAXLEN ||
        c == O_POOLING)
        o->set |= S_SHAPE;
    if (c == O_EXPERTS || c == O_TOPK || c == O_GATECOEF || c == O_GATE)
        o->set |= S_MOE;
    if (c == O_EXPERTS || c == O_TOPK || c == O_GATE)
        o->set |= S_MOESHAPE;
    if (c == O_SEED || c == O_WD || c == O_CLIP)
        o->set |= S_OPTIM;
    if (c == O_RANK || c == O_ALPHA || c == O_TARGETS)
        o->set |= S_LORA;
    if (c == O_VOCAB || c == O_TOKENIZER)
        o->set |= S_TOKENIZER;
    if (c == O_EPOCHS)
        o->set |= S_EPOCHS;
    for (size_t i = 0; i < sizeof long_opts / sizeof long_opts[0]; i++)
        if (long_opts[i].code == c)
            return num_arg(long_opts[i].name, arg, long_opts[i].lo, long_opts[i].hi,
                           (long *)((char *)o + long_opts[i].off));
    for (size_t i = 0; i < sizeof real_opts / sizeof real_opts[0]; i++)
        if (real_opts[i].code == c)
            return real_arg(real_opts[i].name, arg, real_opts[i].lo, real_opts[i].hi,
                            (double *)((char *)o + real_opts[i].off));
    switch (c) {
    case O_DATA:
        o->data[o->n_data++] = arg;
        return 0;
    case 'o':
        o->out = arg;
        return 0;
    case O_DOMAIN:
        o->domains[o->n_domains++] = arg;
        return 0;
    case O_INIT:
        o->init = arg;
        return 0;
    case O_BASE:
        o->base = arg;
        return 0;
    case O_RESUME:
        o->resume = arg;
        return 0;
    case O_TOKENIZER:
        o->tokenizer = arg;
        return 0;
    case O_JSON:
        o->json = 1;
        return 0;
    case O_VARIANT:
        if (strcmp(arg, "dense") && strcmp(arg, "moe") && strcmp(arg, "router") &&
            strcmp(arg, "lora"))
            return cli_usage_error("train", "--variant is dense, moe, router or lora, not '%s'",
                                   arg);
        o->variant = arg;
        return 0;
    }
    return take_model_opt(o, c, arg);
}

/* Options that cannot go together; returns 0 or 2 after saying why. */
static int check_opts(train_opts_t *o)
{
    const char *cmd = "train";
    if (!o->n_data)
        return cli_usage_error(cmd, "no data (--data FILE)");
    if (!o->out)
        return cli_usage_error(cmd, "no output file (--out PATH)");
    if (o->steps && (o->set & S_EPOCHS))
        return cli_usage_error(cmd, "give --epochs or --steps, not both");
    if (o->resume) {
        if (o->init || o->variant || o->n_domains ||
            (o->set & (S_SHAPE | S_TOKENIZER | S_LORA | S_MOE | S_EPOCHS | S_OPTIM)) || o->steps ||
            o->batch || o->lr >= 0 || o->warmup >= 0)
            return cli_usage_error(cmd, "--resume takes the model, tokenizer, domains, "
                                        "schedule, seed and optimizer from its checkpoint; give "
                                        "only --data, --out and progress options");
        return 0;
    }
    const char *v = o->variant ? o->variant : "dense";
    if (strcmp(v, "lora") == 0 && !o->base)
        return cli_usage_error(cmd, "--variant lora needs its frozen base (--base PATH)");
    if (strcmp(v, "lora") != 0 && o->base)
        return cli_usage_error(cmd, "--base is for --variant lora");
    if (strcmp(v, "lora") != 0 && (o->set & S_LORA))
        return cli_usage_error(cmd, "--rank, --alpha and --lora-targets are for --variant lora");
    if (strcmp(v, "moe") != 0 && (o->set & S_MOE) && !(o->init && !o->variant))
        return cli_usage_error(cmd,
                               "--experts, --top-k, --gate-coef and --gate are for --variant moe");
    if ((o->init || o->base) && (o->set & (S_SHAPE | S_TOKENIZER)))
        return cli_usage_error(cmd,
                               "the model's shape and tokenizer come from %s; drop the "
                               "shape, --tokenizer and --vocab options",
                               o->init ? "--init" : "--base");
    if (o->init && (o->set & S_MOESHAPE))
        return cli_usage_error(cmd, "the experts, --top-k and --gate come from --init; drop them");
    if (o->mc.n_experts && o->mc.top_k > o->mc.n_experts)
        return cli_usage_error(cmd, "--top-k %d is more than the %d experts", o->mc.top_k,
                               o->mc.n_experts);
    if (o->init && strcmp(v, "lora") == 0)
        return cli_usage_error(cmd, "--init branches a model; a lora adapter takes --base");
    if (o->tokenizer && o->vocab != 8192)
        return cli_usage_error(cmd, "--vocab is for a tokenizer trained here, not --tokenizer");
    return 0;
}

static int parse_args(int argc, char **argv, train_opts_t *o)
{
    int c;
    opterr = 0;
    optind = 1;
    while ((c = cli_getopt(argc, argv, ":o:h", train_longopts)) != -1) {
        if (c == 'h')
            return fputs(train_usage, stdout), 0;
        if (c == ':')
            return cli_usage_error("train", "%s needs a value", argv[optind - 1]);
        if (c == '?')
            return cli_usage_error("train", "unknown option '%s'", argv[optind - 1]);
        int rc = take_opt(o, c, optarg);
        if (rc)
            return rc;
    }
    for (int i = optind; i < argc; i++) /* bare files are data too */
        o->data[o->n_data++] = argv[i];
    int rc = check_opts(o);
    return rc ? rc : -1;
}

int cli_train(int argc, char **argv)
{
    train_opts_t o;
    opts_init(&o, argc);
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        goto done_opts;
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rc = cli_read_data("train", o.data, o.n_data, &ds);
    if (rc == 0)
        rc = train_job_run(&o, &ds);
    rw_dataset_fini(&ds);
done_opts:
    opts_fini(&o);
    return rc;
}
