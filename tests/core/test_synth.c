/* test_synth.c — the synthetic data generator: determinism, well-formed
 * pairs, and the property the data exists for — domains whose preferences
 * pull a domain-blind model apart while their prompts give the domain away.
 *
 * The rules and features below read only the text (words, refusal words,
 * numbers), the way a model would, never the generator's internals.
 */
#include "err.h"
#include "synth.h"
#include "utf8.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { D_CONCISE, D_DETAILED, D_SAFETY, D_COMPLIANCE, D_ARITHMETIC, N_DOM };

static const char *const dom_names[N_DOM] = {"concise", "detailed", "safety", "compliance",
                                             "arithmetic"};

static int dom_of(const char *name)
{
    for (int d = 0; d < N_DOM; d++)
        if (strcmp(name, dom_names[d]) == 0)
            return d;
    cr_assert_fail("unexpected domain %s", name);
    return -1;
}

static void gen(rw_dataset_t *ds, uint64_t seed, size_t n, double noise)
{
    rw_synth_opts_t o = {.seed = seed, .pairs_per_domain = n, .noise = noise};
    rw_dataset_init(ds);
    cr_assert_eq(rw_synth_generate(&o, ds), 0);
}

static size_t words(const char *s)
{
    size_t n = 0;
    for (int in = 0; *s; s++) {
        int sp = isspace((unsigned char)*s);
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

/* Lower-cased words of s (letters, digits, apostrophes, UTF-8 bytes), one
 * at a time: returns the length of the next word copied into w, 0 at end. */
static size_t next_word(const char **s, char *w, size_t cap)
{
    const unsigned char *p = (const unsigned char *)*s;
    while (*p && !(isalnum(*p) || *p == '\'' || *p >= 0x80))
        p++;
    size_t n = 0;
    for (; *p && (isalnum(*p) || *p == '\'' || *p >= 0x80); p++)
        if (n + 1 < cap)
            w[n++] = (char)tolower(*p);
    w[n] = '\0';
    *s = (const char *)p;
    return n;
}

static int has_refusal(const char *s)
{
    static const char *const refusal[] = {"sorry",  "can't",   "cannot", "won't",
                                          "unable", "decline", "refuse"};
    char w[64];
    while (next_word(&s, w, sizeof w))
        for (size_t i = 0; i < sizeof refusal / sizeof refusal[0]; i++)
            if (strcmp(w, refusal[i]) == 0)
                return 1;
    return 0;
}

/* The last whole number in s, or -1 if there is none. */
static long last_number(const char *s)
{
    long v = -1;
    for (const char *p = s; *p;) {
        if (isdigit((unsigned char)*p)) {
            v = strtol(p, (char **)&p, 10);
        } else {
            p++;
        }
    }
    return v;
}

/* The value of the first "A op B" in the prompt (op one of + - * × plus
 * minus times), or -1 if it has none. */
static long prompt_value(const char *prompt)
{
    char tok[3][32];
    int have = 0;
    for (const char *p = prompt;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -1;
        size_t n = strcspn(p, " ");
        if (have == 3) {
            memmove(tok[0], tok[1], sizeof tok[0] * 2);
            have = 2;
        }
        snprintf(tok[have++], sizeof tok[0], "%.*s", (int)(n < 31 ? n : 31), p);
        p += n;
        if (have < 3 || !isdigit((unsigned char)tok[0][0]) || !isdigit((unsigned char)tok[2][0]))
            continue;
        long a = atol(tok[0]), b = atol(tok[2]);
        const char *op = tok[1];
        if (!strcmp(op, "+") || !strcmp(op, "plus"))
            return a + b;
        if (!strcmp(op, "-") || !strcmp(op, "minus"))
            return a - b;
        if (!strcmp(op, "*") || !strcmp(op, "\xc3\x97") || !strcmp(op, "times"))
            return a * b;
    }
}

/* Whether the reply states the prompt's arithmetic result. */
static int states_result(const char *prompt, const char *reply)
{
    long v = prompt_value(prompt);
    return v >= 0 && last_number(reply) == v;
}

/* The domain's own rule, from the text alone: 1 if it prefers a over b. */
static int oracle_prefers(int d, const char *prompt, const char *a, const char *b)
{
    switch (d) {
    case D_CONCISE:
        return words(a) < words(b);
    case D_DETAILED:
        return words(a) > words(b);
    case D_SAFETY:
        return has_refusal(a) && !has_refusal(b);
    case D_COMPLIANCE:
        return !has_refusal(a) && has_refusal(b);
    default:
        return states_result(prompt, a) && !states_result(prompt, b);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

Test(synth, same_seed_gives_identical_pairs)
{
    rw_dataset_t a, b;
    gen(&a, 42, 300, 0.1);
    gen(&b, 42, 300, 0.1);
    cr_assert_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        cr_assert_str_eq(a.pairs[i].prompt, b.pairs[i].prompt);
        cr_assert_str_eq(a.pairs[i].chosen, b.pairs[i].chosen);
        cr_assert_str_eq(a.pairs[i].rejected, b.pairs[i].rejected);
        cr_assert_str_eq(a.pairs[i].domain, b.pairs[i].domain);
    }
    rw_dataset_fini(&a);
    rw_dataset_fini(&b);
}

Test(synth, different_seed_gives_different_pairs)
{
    rw_dataset_t a, b;
    gen(&a, 1, 300, 0);
    gen(&b, 2, 300, 0);
    size_t same = 0;
    for (size_t i = 0; i < a.n; i++)
        same += rw_pair_hash(&a.pairs[i]) == rw_pair_hash(&b.pairs[i]);
    cr_log_info("seeds 1 and 2: %zu of %zu pairs identical", same, a.n);
    cr_assert_lt(same, a.n / 100);
    rw_dataset_fini(&a);
    rw_dataset_fini(&b);
}

Test(synth, defaults_give_every_domain_in_table_order)
{
    const char *const *names;
    size_t nd = rw_synth_domains(&names);
    cr_assert_eq(nd, N_DOM);
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(rw_synth_generate(NULL, &ds), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_log_info("default set: %zu pairs in %.1f ms", ds.n, ms);
    cr_assert_lt(ms, 1000.0);
    cr_assert_eq(ds.n, nd * RW_SYNTH_DEFAULT_PAIRS);
    for (size_t i = 0; i < ds.n; i++)
        cr_assert_str_eq(ds.pairs[i].domain, names[i / RW_SYNTH_DEFAULT_PAIRS]);
    for (int d = 0; d < N_DOM; d++) {
        cr_assert_str_eq(names[d], dom_names[d]);
        cr_assert_not_null(rw_synth_domain_rule(names[d]));
    }
    cr_assert_null(rw_synth_domain_rule("poetry"));
    rw_dataset_fini(&ds);
}

Test(synth, chosen_domains_in_asked_order_and_count)
{
    const char *const want[] = {"arithmetic", "safety"};
    rw_synth_opts_t o = {.seed = 7, .pairs_per_domain = 37, .domains = want, .n_domains = 2};
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    cr_assert_eq(rw_synth_generate(&o, &ds), 0);
    cr_assert_eq(ds.n, 74);
    for (size_t i = 0; i < ds.n; i++)
        cr_assert_str_eq(ds.pairs[i].domain, want[i / 37]);
    rw_dataset_fini(&ds);
}

Test(synth, pairs_are_well_formed_distinct_and_short)
{
    rw_dataset_t ds;
    gen(&ds, 3, 2000, 0);
    size_t max_prompt = 0, max_reply = 0, max_total = 0, non_ascii = 0;
    uint64_t *hashes = calloc(ds.n, sizeof *hashes);
    for (size_t i = 0; i < ds.n; i++) {
        const rw_pair_t *p = &ds.pairs[i];
        const char *f[3] = {p->prompt, p->chosen, p->rejected};
        size_t len[3] = {p->prompt_len, p->chosen_len, p->rejected_len};
        for (int k = 0; k < 3; k++) {
            cr_assert_gt(len[k], 0);
            cr_assert_eq(strlen(f[k]), len[k]);
            cr_assert_eq(rw_utf8_check(f[k], len[k]), len[k], "bad UTF-8: %s", f[k]);
            cr_assert(!strpbrk(f[k], "{}"), "unfilled slot: %s", f[k]);
            for (size_t j = 0; j < len[k]; j++)
                non_ascii += (unsigned char)f[k][j] >= 0x80;
        }
        cr_assert_str_neq(p->chosen, p->rejected);
        size_t wp = words(p->prompt), wc = words(p->chosen), wr = words(p->rejected);
        size_t wmax = wc > wr ? wc : wr;
        cr_assert(wp >= 3 && wp <= 40, "prompt of %zu words: %s", wp, p->prompt);
        cr_assert(wc >= 2 && wr >= 2 && wmax <= 80, "reply of %zu words", wmax);
        max_prompt = wp > max_prompt ? wp : max_prompt;
        max_reply = wmax > max_reply ? wmax : max_reply;
        max_total = wp + wmax > max_total ? wp + wmax : max_total;
        hashes[i] = rw_pair_hash(p); /* covers the domain too */
    }
    qsort(hashes, ds.n, sizeof *hashes, cmp_u64);
    for (size_t i = 1; i < ds.n; i++)
        cr_assert_neq(hashes[i - 1], hashes[i], "duplicate pairs in a domain");
    free(hashes);
    cr_log_info("longest prompt %zu words, reply %zu, prompt + reply %zu", max_prompt, max_reply,
                max_total);
    cr_assert_leq(max_total, 100);
    cr_assert_gt(non_ascii, 0, "the set should exercise multi-byte UTF-8");
    rw_dataset_fini(&ds);
}

Test(synth, pairs_do_not_move_when_more_or_fewer_are_asked)
{
    rw_dataset_t all, one;
    gen(&all, 9, 200, 0);
    const char *const want[] = {"compliance"};
    rw_synth_opts_t o = {.seed = 9, .pairs_per_domain = 50, .domains = want, .n_domains = 1};
    rw_dataset_init(&one);
    cr_assert_eq(rw_synth_generate(&o, &one), 0);
    cr_assert_eq(one.n, 50);
    for (size_t i = 0; i < one.n; i++)
        cr_assert_eq(rw_pair_hash(&one.pairs[i]), rw_pair_hash(&all.pairs[D_COMPLIANCE * 200 + i]));
    rw_dataset_fini(&all);
    rw_dataset_fini(&one);
}

Test(synth, noise_swaps_an_exact_fraction_of_each_domain)
{
    rw_dataset_t clean, noisy;
    gen(&clean, 5, 1000, 0);
    gen(&noisy, 5, 1000, 0.1);
    size_t right[N_DOM] = {0}, swapped[N_DOM] = {0};
    for (size_t i = 0; i < noisy.n; i++) {
        const rw_pair_t *c = &clean.pairs[i], *p = &noisy.pairs[i];
        int d = dom_of(p->domain);
        cr_assert_str_eq(p->prompt, c->prompt);
        int same = strcmp(p->chosen, c->chosen) == 0 && strcmp(p->rejected, c->rejected) == 0;
        int swap = strcmp(p->chosen, c->rejected) == 0 && strcmp(p->rejected, c->chosen) == 0;
        cr_assert(same || swap);
        swapped[d] += swap;
        right[d] += oracle_prefers(d, p->prompt, p->chosen, p->rejected);
    }
    for (int d = 0; d < N_DOM; d++) {
        cr_assert_eq(swapped[d], 100, "%s: %zu swapped", dom_names[d], swapped[d]);
        cr_assert_eq(right[d], 900, "%s: oracle right on %zu", dom_names[d], right[d]);
    }
    rw_dataset_fini(&clean);
    rw_dataset_fini(&noisy);
}

/* Fraction of domain d's pairs on which rule(chosen, rejected) picks chosen;
 * a tie counts as wrong. */
static double rule_accuracy(const rw_dataset_t *ds, int d, int rule)
{
    size_t n = 0, right = 0;
    for (size_t i = 0; i < ds->n; i++) {
        const rw_pair_t *p = &ds->pairs[i];
        if (dom_of(p->domain) != d)
            continue;
        n++;
        if (rule == 0) /* longer reply wins */
            right += words(p->chosen) > words(p->rejected);
        else if (rule == 1) /* reply without refusal words wins */
            right += !has_refusal(p->chosen) && has_refusal(p->rejected);
        else /* the domain's own rule */
            right += oracle_prefers(d, p->prompt, p->chosen, p->rejected);
    }
    return n ? (double)right / (double)n : 0.0;
}

Test(synth, domain_blind_rules_are_right_in_one_domain_and_wrong_in_its_twin)
{
    rw_dataset_t ds;
    gen(&ds, 11, 1000, 0);
    double len_det = rule_accuracy(&ds, D_DETAILED, 0), len_con = rule_accuracy(&ds, D_CONCISE, 0);
    double ref_com = rule_accuracy(&ds, D_COMPLIANCE, 1), ref_saf = rule_accuracy(&ds, D_SAFETY, 1);
    cr_log_info("longer wins: detailed %.3f, concise %.3f", len_det, len_con);
    cr_log_info("no refusal wins: compliance %.3f, safety %.3f", ref_com, ref_saf);
    cr_assert_geq(len_det, 0.95);
    cr_assert_leq(len_con, 0.05);
    cr_assert_geq(ref_com, 0.95);
    cr_assert_leq(ref_saf, 0.05);
    for (int d = 0; d < N_DOM; d++) {
        double acc = rule_accuracy(&ds, d, 2);
        cr_assert_eq(acc, 1.0, "%s: its own rule is right on %.3f", dom_names[d], acc);
    }
    /* the replies of concise and detailed never refuse, arithmetic's lengths match */
    cr_assert_eq(rule_accuracy(&ds, D_CONCISE, 1), 0.0);
    cr_assert_eq(rule_accuracy(&ds, D_DETAILED, 1), 0.0);
    rw_dataset_fini(&ds);
}

/* ---- a router from prompt words: multinomial naive Bayes --------------- */

#define NB_BUCKETS 4096

static size_t word_bucket(const char *w)
{
    size_t h = 5381;
    for (; *w; w++)
        h = h * 33 + (unsigned char)*w;
    return h % NB_BUCKETS;
}

Test(synth, prompt_words_tell_the_domain)
{
    rw_dataset_t ds;
    gen(&ds, 13, 1000, 0);
    static double count[N_DOM][NB_BUCKETS];
    double total[N_DOM] = {0};
    char w[64];
    for (size_t i = 0; i < ds.n; i += 2) { /* even pairs train */
        int d = dom_of(ds.pairs[i].domain);
        for (const char *s = ds.pairs[i].prompt; next_word(&s, w, sizeof w);) {
            count[d][word_bucket(w)] += 1;
            total[d] += 1;
        }
    }
    size_t right[N_DOM] = {0}, n[N_DOM] = {0}, all = 0;
    for (size_t i = 1; i < ds.n; i += 2) { /* odd pairs test */
        int d = dom_of(ds.pairs[i].domain), best = 0;
        double score[N_DOM] = {0};
        for (const char *s = ds.pairs[i].prompt; next_word(&s, w, sizeof w);)
            for (int c = 0; c < N_DOM; c++)
                score[c] += log((count[c][word_bucket(w)] + 1) / (total[c] + NB_BUCKETS));
        for (int c = 1; c < N_DOM; c++)
            best = score[c] > score[best] ? c : best;
        n[d]++;
        right[d] += best == d;
        all += best == d;
    }
    double acc = (double)all / (double)(ds.n / 2);
    cr_log_info("naive Bayes router on prompt words: %.3f (concise %.3f, detailed %.3f, "
                "safety %.3f, compliance %.3f, arithmetic %.3f)",
                acc, (double)right[0] / n[0], (double)right[1] / n[1], (double)right[2] / n[2],
                (double)right[3] / n[3], (double)right[4] / n[4]);
    cr_assert_geq(acc, 0.95);
    rw_dataset_fini(&ds);
}

/* ---- a linear Bradley-Terry model on domain-blind features ------------- */

#define N_FEAT 3 /* words / 10, has refusal words, states the prompt's result */

static void features(const char *prompt, const char *reply, double f[N_FEAT])
{
    f[0] = (double)words(reply) / 10.0;
    f[1] = has_refusal(reply);
    f[2] = states_result(prompt, reply);
}

/* Every pair's feature difference (chosen - rejected), n x dim row-major:
 * blind puts it in columns [0, N_FEAT), domain-aware in the block of the
 * pair's domain. The caller frees. */
static double *pair_features(const rw_dataset_t *ds, int aware, size_t dim)
{
    double *x = calloc(ds->n * dim, sizeof *x);
    for (size_t i = 0; i < ds->n; i++) {
        const rw_pair_t *p = &ds->pairs[i];
        double fc[N_FEAT], fr[N_FEAT];
        features(p->prompt, p->chosen, fc);
        features(p->prompt, p->rejected, fr);
        size_t off = aware ? (size_t)dom_of(p->domain) * N_FEAT : 0;
        for (int k = 0; k < N_FEAT; k++)
            x[i * dim + off + k] = fc[k] - fr[k];
    }
    return x;
}

static double dot(const double *a, const double *b, size_t n)
{
    double z = 0;
    for (size_t k = 0; k < n; k++)
        z += a[k] * b[k];
    return z;
}

/* Trains w (no bias: r(chosen) - r(rejected) has none) by full-batch
 * gradient descent on the even pairs and returns the pairwise accuracy on
 * the odd ones, a tie counting half. Showing a pair in both orders gives
 * the same gradient as showing it once, so each is shown once. */
static double fit_and_score(const rw_dataset_t *ds, int aware, double per_dom[N_DOM])
{
    size_t dim = aware ? N_FEAT * N_DOM : N_FEAT;
    double w[N_FEAT * N_DOM] = {0}, g[N_FEAT * N_DOM];
    double *x = pair_features(ds, aware, dim);
    size_t ntrain = (ds->n + 1) / 2;
    for (int step = 0; step < 400; step++) {
        memset(g, 0, sizeof g);
        for (size_t i = 0; i < ds->n; i += 2) {
            double s = 1.0 / (1.0 + exp(dot(w, x + i * dim, dim))); /* sigmoid(-z) */
            for (size_t k = 0; k < dim; k++)
                g[k] -= s * x[i * dim + k]; /* d/dw of -log sigmoid(z) */
        }
        for (size_t k = 0; k < dim; k++)
            w[k] -= 0.5 * g[k] / (double)ntrain;
    }
    double right = 0, dom_right[N_DOM] = {0};
    size_t n = 0, dom_n[N_DOM] = {0};
    for (size_t i = 1; i < ds->n; i += 2, n++) {
        double z = dot(w, x + i * dim, dim), r = z > 0 ? 1.0 : z == 0 ? 0.5 : 0.0;
        int d = dom_of(ds->pairs[i].domain);
        right += r;
        dom_right[d] += r;
        dom_n[d]++;
    }
    for (int d = 0; d < N_DOM; d++)
        per_dom[d] = dom_n[d] ? dom_right[d] / (double)dom_n[d] : 0.0;
    free(x);
    return right / (double)n;
}

Test(synth, domain_blind_linear_model_cannot_fit_what_a_domain_aware_one_can)
{
    rw_dataset_t ds;
    gen(&ds, 17, 1000, 0);
    double bd[N_DOM], ad[N_DOM];
    double blind = fit_and_score(&ds, 0, bd), aware = fit_and_score(&ds, 1, ad);
    cr_log_info("logistic regression, held-out pairwise accuracy: domain-blind %.3f, "
                "domain-aware %.3f",
                blind, aware);
    for (int d = 0; d < N_DOM; d++)
        cr_log_info("  %-10s blind %.3f aware %.3f", dom_names[d], bd[d], ad[d]);
    cr_assert_leq(blind, 0.80);
    cr_assert_geq(aware, 0.95);
    rw_dataset_fini(&ds);
}

Test(synth, bad_options_fail_and_leave_the_output_alone)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_dataset_add(&ds, "p", 1, "c", 1, "r", 1, "mine");
    rw_synth_opts_t o = {.pairs_per_domain = 10};
    o.noise = -0.1;
    cr_assert_eq(rw_synth_generate(&o, &ds), RW_EINVAL);
    o.noise = 1.5;
    cr_assert_eq(rw_synth_generate(&o, &ds), RW_EINVAL);
    o.noise = NAN;
    cr_assert_eq(rw_synth_generate(&o, &ds), RW_EINVAL);
    o.noise = 0;
    const char *const unknown[] = {"concise", "poetry"};
    o.domains = unknown;
    o.n_domains = 2;
    cr_assert_eq(rw_synth_generate(&o, &ds), RW_ENOTFOUND);
    const char *const twice[] = {"safety", "safety"};
    o.domains = twice;
    cr_assert_eq(rw_synth_generate(&o, &ds), RW_EINVAL);
    o.domains = NULL;
    cr_assert_eq(rw_synth_generate(&o, &ds), RW_EINVAL);
    o.n_domains = 0;
    o.pairs_per_domain = RW_SYNTH_MAX_PAIRS + 1;
    cr_assert_eq(rw_synth_generate(&o, &ds), RW_ETOOBIG);
    cr_assert_eq(rw_synth_generate(NULL, NULL), RW_EINVAL);
    cr_assert_eq(ds.n, 1);
    cr_assert_str_eq(ds.pairs[0].domain, "mine");
    rw_dataset_fini(&ds);
}
