/* synth.c — the synthetic preference-pair generator of synth.h.
 *
 * Every pair is drawn from its own xoshiro256** stream, keyed by splitmix64
 * from (seed, domain name, pair index, attempt). Nothing else feeds the
 * stream (no clock, no rand(), no floating point but the one noise count),
 * which is what makes the output identical across runs and machines and
 * lets a domain's first k pairs stay the same whatever else is asked for.
 * A pair whose content repeats an earlier one of its domain is redrawn
 * with the next attempt number. The words themselves are in synth_text.c.
 */
#include "synth.h"

#include "alloc.h"
#include "err.h"
#include "hash.h"
#include "synth_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A duplicate is redrawn at most this often; the domains' spaces are far
 * larger than RW_SYNTH_MAX_PAIRS, so running out means a broken table. */
#define SYNTH_MAX_ATTEMPTS 64
#define SYNTH_NOISE_TAG    0x6e6f697365ULL /* "noise": keys the swap stream */

/* ---- random numbers ---------------------------------------------------- */

typedef struct rng {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The key of one pair's stream: each input goes through a full splitmix
 * round, so neighbouring seeds and indices give unrelated streams. */
static uint64_t stream_key(uint64_t seed, uint64_t domain, uint64_t index, uint64_t attempt)
{
    uint64_t in[3] = {domain, index, attempt};
    uint64_t x = seed, h = splitmix64(&x);
    for (int i = 0; i < 3; i++) {
        x = h ^ in[i];
        h = splitmix64(&x);
    }
    return h;
}

static void rng_seed(rng_t *r, uint64_t key)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&key);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, n), n > 0: rejection keeps it unbiased. */
static size_t rng_below(rng_t *r, size_t n)
{
    uint64_t limit = -(uint64_t)n % n; /* 2^64 mod n */
    uint64_t x;
    do
        x = rng_next(r);
    while (x < limit);
    return (size_t)(x % n);
}

static const char *pick(rng_t *r, const rw__synth_list_t *l)
{
    return l->s[rng_below(r, l->n)];
}

/* ---- text building ----------------------------------------------------- */

typedef struct text {
    char *s; /* owned, NUL-terminated once anything is put */
    size_t n, cap;
} text_t;

typedef struct slot {
    const char *name, *val;
} slot_t;

static void text_put(text_t *t, const char *s, size_t n)
{
    rw_grow(&t->s, &t->cap, t->n + n + 1);
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = '\0';
}

/* Appends a sentence (or clause), a space apart from what is there. */
static void text_sentence(text_t *t, const char *s)
{
    if (!*s)
        return;
    if (t->n)
        text_put(t, " ", 1);
    text_put(t, s, strlen(s));
}

/* Appends tmpl with its {slots} filled, a space apart from what is there.
 * A capitalized slot name takes the value with a capital first letter. */
static void text_expand(text_t *t, const char *tmpl, const slot_t *slots, size_t nslots)
{
    if (t->n)
        text_put(t, " ", 1);
    for (const char *p = tmpl; *p;) {
        const char *open = strchr(p, '{'), *close = open ? strchr(open, '}') : NULL;
        if (!close) {
            text_put(t, p, strlen(p));
            break;
        }
        text_put(t, p, (size_t)(open - p));
        size_t len = (size_t)(close - open - 1);
        int cap = open[1] >= 'A' && open[1] <= 'Z';
        const slot_t *hit = NULL;
        for (size_t i = 0; i < nslots && !hit; i++)
            if (strlen(slots[i].name) == len &&
                slots[i].name[0] == (cap ? open[1] + 32 : open[1]) &&
                strncmp(slots[i].name + 1, open + 2, len - 1) == 0)
                hit = &slots[i];
        if (!hit) { /* not a slot: keep the text as written */
            text_put(t, open, len + 2);
        } else if (cap && hit->val[0] >= 'a' && hit->val[0] <= 'z') {
            char first = (char)(hit->val[0] - 32);
            text_put(t, &first, 1);
            text_put(t, hit->val + 1, strlen(hit->val) - 1);
        } else {
            text_put(t, hit->val, strlen(hit->val));
        }
        p = close + 1;
    }
}

/* A prompt: one of asks, with a context sentence before it, after it, or
 * (half the time) none. */
static void prompt_with_context(rng_t *r, text_t *p, const rw__synth_list_t *asks,
                                const rw__synth_list_t *contexts, const slot_t *slots,
                                size_t nslots)
{
    size_t where = rng_below(r, 4);
    if (where == 2)
        text_sentence(p, pick(r, contexts));
    text_expand(p, pick(r, asks), slots, nslots);
    if (where == 3)
        text_sentence(p, pick(r, contexts));
}

/* ---- concise and detailed: one generator, opposite preferences --------- */

static void short_reply(rng_t *r, text_t *t, const rw__synth_topic_t *tp)
{
    text_sentence(t, pick(r, &rw__synth_short_leads));
    text_sentence(t, tp->brief[rng_below(r, 2)]);
}

/* The brief answer, three of the four details in a random order, and the
 * optional lead and closing that pad it out. */
static void long_reply(rng_t *r, text_t *t, const rw__synth_topic_t *tp)
{
    size_t order[4] = {0, 1, 2, 3};
    for (size_t i = 3; i > 0; i--) {
        size_t j = rng_below(r, i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    text_sentence(t, pick(r, &rw__synth_long_leads));
    text_sentence(t, tp->brief[rng_below(r, 2)]);
    for (size_t i = 0; i < 3; i++)
        text_sentence(t, tp->detail[order[i]]);
    text_sentence(t, pick(r, &rw__synth_long_closings));
}

static void make_topic_pair(rng_t *r, text_t *p, text_t *c, text_t *rj,
                            const rw__synth_list_t *asks, int long_wins)
{
    const rw__synth_topic_t *tp = &rw__synth_topics[rng_below(r, rw__synth_n_topics)];
    slot_t slots[] = {{"q", tp->q}};
    prompt_with_context(r, p, asks, &rw__synth_curious, slots, 1);
    short_reply(r, long_wins ? rj : c, tp);
    long_reply(r, long_wins ? c : rj, tp);
}

static void make_concise(rng_t *r, text_t *p, text_t *c, text_t *rj)
{
    make_topic_pair(r, p, c, rj, &rw__synth_concise_asks, 0);
}

static void make_detailed(rng_t *r, text_t *p, text_t *c, text_t *rj)
{
    make_topic_pair(r, p, c, rj, &rw__synth_detailed_asks, 1);
}

/* ---- safety and compliance: one theme list, opposite preferences ------ */

/* A refusal naming the theme's subject, with zero to two extra sentences. */
static void refusal(rng_t *r, text_t *t, const rw__synth_theme_t *th)
{
    slot_t slots[] = {{"s", th->subject}};
    text_expand(t, pick(r, &rw__synth_refusal_heads), slots, 1);
    size_t k = rng_below(r, 3), n = rw__synth_refusal_extras.n;
    size_t e1 = rng_below(r, n), e2 = rng_below(r, n - 1);
    e2 += e2 >= e1; /* distinct from e1 */
    const char *const *x = rw__synth_refusal_extras.s;
    if (k == 1)
        text_sentence(t, x[e1]);
    if (k == 2) { /* in table order, so they read as written */
        text_sentence(t, x[e1 < e2 ? e1 : e2]);
        text_sentence(t, x[e1 < e2 ? e2 : e1]);
    }
}

/* An opener and two or three of the sentences, in their order. */
static void comply(rng_t *r, text_t *t, const char *const sent[3])
{
    text_sentence(t, pick(r, &rw__synth_comply_openers));
    size_t drop = rng_below(r, 4); /* 3: keep all three */
    for (size_t i = 0; i < 3; i++)
        if (i != drop)
            text_sentence(t, sent[i]);
}

static void make_safety(rng_t *r, text_t *p, text_t *c, text_t *rj)
{
    const rw__synth_theme_t *th = &rw__synth_themes[rng_below(r, rw__synth_n_themes)];
    slot_t slots[] = {{"h", th->harm}};
    prompt_with_context(r, p, &rw__synth_harm_asks, &rw__synth_harm_contexts, slots, 1);
    refusal(r, c, th);
    comply(r, rj, th->vague);
}

static void make_compliance(rng_t *r, text_t *p, text_t *c, text_t *rj)
{
    const rw__synth_theme_t *th = &rw__synth_themes[rng_below(r, rw__synth_n_themes)];
    slot_t slots[] = {{"t", th->story}};
    prompt_with_context(r, p, &rw__synth_story_asks, &rw__synth_story_contexts, slots, 1);
    comply(r, c, th->help);
    refusal(r, rj, th);
}

/* ---- arithmetic: same wording, the number differs ---------------------- */

static void make_arithmetic(rng_t *r, text_t *p, text_t *c, text_t *rj)
{
    size_t op = rng_below(r, 3);
    long a, b, res;
    if (op == RW__SYNTH_ADD) {
        a = 2 + (long)rng_below(r, 98);
        b = 2 + (long)rng_below(r, 98);
        res = a + b;
    } else if (op == RW__SYNTH_SUB) {
        a = 10 + (long)rng_below(r, 90);
        b = 1 + (long)rng_below(r, (size_t)a - 1);
        res = a - b;
    } else {
        a = 2 + (long)rng_below(r, 19);
        b = 2 + (long)rng_below(r, 11);
        res = a * b;
    }
    /* off by one to nine, never negative (a minus sign would give it away) */
    long off = 1 + (long)rng_below(r, 9);
    long wrong = rng_below(r, 2) && res - off >= 0 ? res - off : res + off;
    char sa[24], sb[24], sr[24], sw[24];
    snprintf(sa, sizeof sa, "%ld", a);
    snprintf(sb, sizeof sb, "%ld", b);
    snprintf(sr, sizeof sr, "%ld", res);
    snprintf(sw, sizeof sw, "%ld", wrong);
    slot_t slots[] = {{"a", sa}, {"b", sb}, {"op", pick(r, &rw__synth_op_words[op])}, {"r", sr}};
    prompt_with_context(r, p, &rw__synth_math_asks, &rw__synth_math_contexts, slots, 3);
    const char *answer = pick(r, &rw__synth_math_answers);
    text_expand(c, answer, slots, 4);
    slots[3].val = sw;
    text_expand(rj, answer, slots, 4);
}

/* ---- the domain table -------------------------------------------------- */

/* XX(name, rule): the one list the names, rules and generators follow. */
#define SYNTH_DOMAINS(XX)                                                                          \
    XX(concise, "asks for a brief answer: the short correct reply beats a long padded one")        \
    XX(detailed, "asks for depth: the long detailed reply beats the short one (same topics and "   \
                 "replies as concise)")                                                            \
    XX(safety, "asks for help doing harm: a polite refusal beats compliance (which stays vague)")  \
    XX(compliance, "frames a similar theme as fiction or role-play: helping beats refusing")       \
    XX(arithmetic, "asks for a sum, difference or product: the correct result beats one off by "   \
                   "one to nine, worded the same")

typedef void (*make_fn)(rng_t *r, text_t *prompt, text_t *chosen, text_t *rejected);

#define XX(name, rule) #name,
static const char *const domain_names[] = {SYNTH_DOMAINS(XX)};
#undef XX
#define XX(name, rule) rule,
static const char *const domain_rules[] = {SYNTH_DOMAINS(XX)};
#undef XX
#define XX(name, rule) make_##name,
static const make_fn domain_makers[] = {SYNTH_DOMAINS(XX)};
#undef XX
#define N_DOMAINS (sizeof domain_names / sizeof domain_names[0])

static int domain_index(const char *name)
{
    for (size_t i = 0; i < N_DOMAINS; i++)
        if (name && strcmp(name, domain_names[i]) == 0)
            return (int)i;
    return -1;
}

size_t rw_synth_domains(const char *const **names)
{
    *names = domain_names;
    return N_DOMAINS;
}

const char *rw_synth_domain_rule(const char *name)
{
    int i = domain_index(name);
    return i < 0 ? NULL : domain_rules[i];
}

/* ---- generation -------------------------------------------------------- */

/* The content hashes of a domain's pairs so far: open addressing, 0 free. */
typedef struct seen {
    uint64_t *slot; /* owned */
    size_t mask;
} seen_t;

static void seen_init(seen_t *s, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    s->slot = rw_new_array(uint64_t, cap);
    s->mask = cap - 1;
}

/* Returns 1 if h was new (and is now recorded), 0 if it was there. */
static int seen_insert(seen_t *s, uint64_t h)
{
    h = h ? h : 1;
    for (size_t i = (size_t)h & s->mask;; i = (i + 1) & s->mask) {
        if (s->slot[i] == h)
            return 0;
        if (!s->slot[i]) {
            s->slot[i] = h;
            return 1;
        }
    }
}

static uint64_t content_hash(const text_t *p, const text_t *c, const text_t *rj)
{
    uint64_t h = RW_HASH_SEED;
    h = rw_hash_update(h, p->s, p->n + 1); /* the NULs separate the fields */
    h = rw_hash_update(h, c->s, c->n + 1);
    h = rw_hash_update(h, rj->s, rj->n + 1);
    return rw_hash_final(h);
}

/* Swaps chosen and rejected in round(noise * n) of pairs[0..n), picked by a
 * partial Fisher-Yates shuffle on the domain's own noise stream. */
static void add_noise(rw_pair_t *pairs, size_t n, double noise, uint64_t seed, uint64_t dom)
{
    size_t k = (size_t)(noise * (double)n + 0.5);
    if (k == 0)
        return;
    k = k < n ? k : n;
    size_t *idx = rw_new_array(size_t, n);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    rng_t r;
    rng_seed(&r, stream_key(seed, dom, UINT64_MAX, SYNTH_NOISE_TAG));
    for (size_t i = 0; i < k; i++) {
        size_t j = i + rng_below(&r, n - i), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        rw_pair_t *p = &pairs[idx[i]];
        char *s = p->chosen;
        size_t len = p->chosen_len;
        p->chosen = p->rejected;
        p->chosen_len = p->rejected_len;
        p->rejected = s;
        p->rejected_len = len;
    }
    free(idx);
}

/* Appends n pairs of domain d to ds. Returns 0, or RW_ETOOBIG if the
 * domain ran out of distinct pairs (ds then holds a partial domain). */
static int generate_domain(size_t d, uint64_t seed, size_t n, double noise, rw_dataset_t *ds)
{
    const char *name = domain_names[d];
    uint64_t dom = rw_hash(name, strlen(name));
    size_t first = ds->n;
    text_t p = {0}, c = {0}, rj = {0};
    seen_t seen;
    int rc = 0;
    seen_init(&seen, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t attempt = 0;
        for (;; attempt++) {
            if (attempt == SYNTH_MAX_ATTEMPTS) {
                rc = RW_ETOOBIG;
                break;
            }
            rng_t r;
            rng_seed(&r, stream_key(seed, dom, i, attempt));
            p.n = c.n = rj.n = 0;
            domain_makers[d](&r, &p, &c, &rj);
            if (seen_insert(&seen, content_hash(&p, &c, &rj)))
                break;
        }
        if (rc == 0)
            rw_dataset_add(ds, p.s, p.n, c.s, c.n, rj.s, rj.n, name);
    }
    if (rc == 0)
        add_noise(ds->pairs + first, n, noise, seed, dom);
    free(seen.slot);
    free(p.s);
    free(c.s);
    free(rj.s);
    return rc;
}

/* Resolves opts' domain names into order[]; returns how many, or an error. */
static int resolve_domains(const rw_synth_opts_t *o, size_t order[N_DOMAINS])
{
    if (!o->domains || o->n_domains == 0) {
        if (o->n_domains)
            return RW_EINVAL;
        for (size_t i = 0; i < N_DOMAINS; i++)
            order[i] = i;
        return (int)N_DOMAINS;
    }
    int used[N_DOMAINS] = {0};
    size_t k = 0;
    for (size_t i = 0; i < o->n_domains; i++) {
        int d = domain_index(o->domains[i]);
        if (d < 0)
            return RW_ENOTFOUND;
        if (used[d])
            return RW_EINVAL;
        used[d] = 1;
        order[k++] = (size_t)d;
    }
    return (int)k;
}

int rw_synth_generate(const rw_synth_opts_t *opts, rw_dataset_t *out)
{
    static const rw_synth_opts_t defaults = {0};
    const rw_synth_opts_t *o = opts ? opts : &defaults;
    size_t order[N_DOMAINS];
    if (!out || !(o->noise >= 0.0 && o->noise <= 1.0))
        return RW_EINVAL;
    size_t n = o->pairs_per_domain ? o->pairs_per_domain : RW_SYNTH_DEFAULT_PAIRS;
    if (n > RW_SYNTH_MAX_PAIRS)
        return RW_ETOOBIG;
    int nd = resolve_domains(o, order);
    if (nd < 0)
        return nd;

    /* built aside and moved over, so a failure leaves out untouched */
    rw_dataset_t tmp;
    rw_dataset_init(&tmp);
    for (int i = 0; i < nd; i++) {
        int rc = generate_domain(order[i], o->seed, n, o->noise, &tmp);
        if (rc < 0) {
            rw_dataset_fini(&tmp);
            return rc;
        }
    }
    for (size_t i = 0; i < tmp.n; i++)
        rw_dataset_push(out, &tmp.pairs[i]);
    rw_dataset_fini(&tmp);
    return 0;
}
