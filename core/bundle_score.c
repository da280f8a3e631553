/* bundle_score.c — scoring and evaluating with an open bundle.
 *
 * Routing reads the prompt alone, as the router was trained: the input is
 * `[cls] prompt [sep] [sep]` (batch.h with an empty response), and the
 * domain is the classifier's top class (the first on a tie). Scoring then
 * groups the sequences by domain, so each domain's model (or adapter)
 * runs over full chunks of up to RW_BUNDLE_CHUNK sequences. In an adapter
 * bundle one engine on the frozen base does all of it, switching adapters
 * between groups: the router adapter for pass 1, a domain's for pass 2.
 */
#include "bundle_impl.h"

#include "alloc.h"
#include "err.h"
#include "log.h"
#include "pair.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One sequence to run: a prompt and response (token ids), the domain whose
 * model runs it (or ROUTE), and where its outputs go. */
typedef struct seq {
    const int32_t *p, *r;
    size_t np, nr;
    int dom;
    float *dst;
} seq_t;

#define ROUTE (-1)

/* Sequences per pass for a model: fewer for long ones, since attention
 * scratch grows with the square of the length. */
static size_t chunk_for(const rw_model_t *m)
{
    size_t T = (size_t)m->cfg.max_len;
    size_t c = T <= 128 ? RW_BUNDLE_CHUNK : RW_BUNDLE_CHUNK * 128 / T;
    return c < 2 ? 2 : c;
}

static int engine_on(rw_bundle_t *b, rw_model_t *m, rw_engine_t **slot, rw_engine_t **e)
{
    int rc = 0;
    if (!*slot)
        rc = rw_engine_new(slot, m, NULL, chunk_for(m), (size_t)m->cfg.max_len, b->threads, 0);
    *e = *slot;
    return rc;
}

/* The engine that scores domain d, or routes (d == ROUTE). */
static int engine_for(rw_bundle_t *b, int d, rw_engine_t **e)
{
    switch (b->mf.kind) {
    case RW_BUNDLE_ROUTER:
        if (d == ROUTE)
            return engine_on(b, b->router, &b->eng_router, e);
        if (!b->eng_members)
            b->eng_members = rw_new_array(rw_engine_t *, b->mf.n_domains);
        return engine_on(b, b->members[d], &b->eng_members[d], e);
    case RW_BUNDLE_ADAPTER: {
        int rc = engine_on(b, b->model, &b->eng, e);
        rw_lora_t *want = d == ROUTE ? b->router_lora : b->adapters[d];
        if (rc == 0 && rw_engine_lora(*e) != want)
            rc = rw_engine_set_lora(*e, want);
        return rc;
    }
    default:
        return engine_on(b, b->model, &b->eng, e);
    }
}

/* Runs e over s[0..n); each sequence's outputs go to its dst. */
static int run(rw_bundle_t *b, rw_engine_t *e, const seq_t *s, size_t n)
{
    size_t cap = rw_engine_max_batch(e), T = rw_engine_max_len(e);
    size_t O = (size_t)rw_engine_outputs(e);
    if (b->batch.ld != T || b->batch.cap_B < cap) {
        rw_batch_fini(&b->batch);
        rw_batch_init(&b->batch, cap, T);
        free(b->out);
        b->out = rw_new_array(float, rw_array_size(cap, b->mf.n_domains + 1));
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += cap) {
        size_t k = n - i < cap ? n - i : cap;
        rw_batch_clear(&b->batch);
        for (size_t j = 0; j < k; j++)
            rw_batch_add(&b->batch, s[i + j].p, s[i + j].np, s[i + j].r, s[i + j].nr, -1);
        rc = rw_engine_forward(e, &b->batch, b->out);
        for (size_t j = 0; j < k && rc == 0; j++)
            memcpy(s[i + j].dst, b->out + j * O, O * sizeof(float));
    }
    return rc;
}

static int by_domain(const void *a, const void *b)
{
    const seq_t *x = a, *y = b;
    return (x->dom > y->dom) - (x->dom < y->dom);
}

/* Runs every sequence of s (reordered) on its domain's model. */
static int run_grouped(rw_bundle_t *b, seq_t *s, size_t n)
{
    qsort(s, n, sizeof *s, by_domain);
    int rc = 0;
    for (size_t i = 0, j; i < n && rc == 0; i = j) {
        for (j = i + 1; j < n && s[j].dom == s[i].dom;)
            j++;
        rw_engine_t *e;
        rc = engine_for(b, s[i].dom, &e);
        if (rc == 0)
            rc = run(b, e, s + i, j - i);
    }
    return rc;
}

static int routed(const rw_bundle_t *b)
{
    return b->mf.kind == RW_BUNDLE_ROUTER || b->mf.kind == RW_BUNDLE_ADAPTER;
}

/* route[i] gets the domain the router picks for prompt i (ids p[i],
 * np[i]), for the i with route[i] == ROUTE; the others stay. probs (may be
 * NULL) gets, row i, the router's probability of each domain (a softmax of
 * its logits) for those i. */
static int route_prompts(rw_bundle_t *b, const int32_t *const *p, const size_t *np, size_t n,
                         int *route, float *probs)
{
    size_t nd = b->mf.n_domains, k = 0;
    seq_t *s = rw_new_array(seq_t, n ? n : 1);
    size_t *who = rw_new_array(size_t, n ? n : 1);
    float *logits = rw_new_array(float, rw_array_size(n ? n : 1, nd));
    for (size_t i = 0; i < n; i++)
        if (route[i] == ROUTE) {
            s[k] = (seq_t){p[i], NULL, np[i], 0, ROUTE, logits + k * nd};
            who[k++] = i;
        }
    rw_engine_t *e = NULL;
    int rc = k ? engine_for(b, ROUTE, &e) : 0;
    if (rc == 0 && k)
        rc = run(b, e, s, k);
    for (size_t j = 0; j < k && rc == 0; j++) {
        const float *x = logits + j * nd;
        size_t arg = 0;
        for (size_t c = 1; c < nd; c++)
            arg = x[c] > x[arg] ? c : arg;
        route[who[j]] = (int)arg;
        if (!probs)
            continue;
        double sum = 0;
        for (size_t c = 0; c < nd; c++)
            sum += exp((double)x[c] - (double)x[arg]);
        for (size_t c = 0; c < nd; c++)
            probs[who[j] * nd + c] = (float)(exp((double)x[c] - (double)x[arg]) / sum);
    }
    free(logits);
    free(who);
    free(s);
    return rc;
}

/* Token ids of many texts in one growable buffer; spans are offsets until
 * the buffer stops growing. */
typedef struct toks {
    int32_t *ids;
    size_t n, cap;
} toks_t;

static int encode(rw_bundle_t *b, toks_t *t, const char *text, size_t len, size_t *off, size_t *cnt)
{
    *off = t->n;
    int rc = rw_bpe_encode(b->bpe, text, len, &t->ids, &t->n, &t->cap);
    *cnt = t->n - *off;
    return rc;
}

int rw_bundle_score(rw_bundle_t *b, const char *const *prompts, const size_t *prompt_lens,
                    const char *const *responses, const size_t *response_lens, size_t n,
                    const int *oracle, double *rewards, int *route)
{
    size_t nd = b->mf.n_domains;
    for (size_t i = 0; oracle && routed(b) && i < n; i++)
        if (oracle[i] >= (int)nd)
            return RW_EINVAL;
    toks_t t = {0};
    size_t *off = rw_new_array(size_t, 4 * (n ? n : 1)), *cnt = off + 2 * n;
    const int32_t **pp = rw_new_array(const int32_t *, n ? n : 1);
    seq_t *s = rw_new_array(seq_t, n ? n : 1);
    float *r = rw_new_array(float, n ? n : 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = encode(b, &t, prompts[i], prompt_lens[i], &off[2 * i], &cnt[2 * i]);
        if (rc == 0)
            rc = encode(b, &t, responses[i], response_lens[i], &off[2 * i + 1], &cnt[2 * i + 1]);
    }
    size_t *pn = rw_new_array(size_t, n ? n : 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        pp[i] = t.ids + off[2 * i];
        pn[i] = cnt[2 * i];
        route[i] = routed(b) && oracle && oracle[i] >= 0 ? oracle[i] : ROUTE;
    }
    if (rc == 0 && routed(b))
        rc = route_prompts(b, pp, pn, n, route, NULL);
    for (size_t i = 0; i < n && rc == 0; i++)
        s[i] = (seq_t){pp[i],          t.ids + off[2 * i + 1],   pn[i],
                       cnt[2 * i + 1], routed(b) ? route[i] : 0, &r[i]};
    if (rc == 0)
        rc = run_grouped(b, s, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rewards[i] = (double)r[i];
        if (!routed(b))
            route[i] = -1;
    }
    free(pn);
    free(r);
    free(s);
    free(pp);
    free(off);
    free(t.ids);
    return rc;
}

int rw_bundle_route(rw_bundle_t *b, const char *const *prompts, const size_t *prompt_lens, size_t n,
                    int *route, float *probs)
{
    if (!routed(b))
        return RW_EINVAL;
    toks_t t = {0};
    size_t *off = rw_new_array(size_t, 2 * (n ? n : 1)), *cnt = off + n;
    const int32_t **pp = rw_new_array(const int32_t *, n ? n : 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = encode(b, &t, prompts[i], prompt_lens[i], &off[i], &cnt[i]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        pp[i] = t.ids + off[i]; /* the buffer grows no more */
        route[i] = ROUTE;
    }
    if (rc == 0)
        rc = route_prompts(b, pp, cnt, n, route, probs);
    free(pp);
    free(off);
    free(t.ids);
    return rc;
}

/* A pair of the evaluated split, tokenized. */
typedef struct epair {
    size_t off[3], cnt[3]; /* prompt, chosen, rejected */
    size_t dd;             /* index into the evaluation's domains */
    int label;             /* the bundle's label of its domain, or -1 */
    int route;
    float rc, rr, oc, orj; /* rewards routed, and routed to the true domain */
} epair_t;

/* Scores every pair: as routed, then the misrouted ones at their true
 * domain (a pair routed right has its oracle rewards already). */
static int eval_score(rw_bundle_t *b, epair_t *ep, size_t n, const int32_t *ids)
{
    seq_t *s = rw_new_array(seq_t, 2 * (n ? n : 1));
    int rc = 0;
    if (routed(b)) {
        const int32_t **pp = rw_new_array(const int32_t *, n ? n : 1);
        size_t *pn = rw_new_array(size_t, n ? n : 1);
        int *route = rw_new_array(int, n ? n : 1);
        for (size_t i = 0; i < n; i++) {
            pp[i] = ids + ep[i].off[0];
            pn[i] = ep[i].cnt[0];
            route[i] = ROUTE;
        }
        rc = route_prompts(b, pp, pn, n, route, NULL);
        for (size_t i = 0; i < n; i++)
            ep[i].route = route[i];
        free(route);
        free(pn);
        free(pp);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int d = routed(b) ? ep[i].route : 0;
        const int32_t *p = ids + ep[i].off[0];
        s[k++] = (seq_t){p, ids + ep[i].off[1], ep[i].cnt[0], ep[i].cnt[1], d, &ep[i].rc};
        s[k++] = (seq_t){p, ids + ep[i].off[2], ep[i].cnt[0], ep[i].cnt[2], d, &ep[i].rr};
    }
    if (rc == 0)
        rc = run_grouped(b, s, k);
    k = 0;
    for (size_t i = 0; i < n && routed(b); i++) {
        ep[i].oc = ep[i].rc;
        ep[i].orj = ep[i].rr;
        if (ep[i].label < 0 || ep[i].label == ep[i].route)
            continue;
        const int32_t *p = ids + ep[i].off[0];
        int d = ep[i].label;
        s[k++] = (seq_t){p, ids + ep[i].off[1], ep[i].cnt[0], ep[i].cnt[1], d, &ep[i].oc};
        s[k++] = (seq_t){p, ids + ep[i].off[2], ep[i].cnt[0], ep[i].cnt[2], d, &ep[i].orj};
    }
    if (rc == 0 && k)
        rc = run_grouped(b, s, k);
    free(s);
    return rc;
}

/* Per-domain figures from the scored pairs, and their means over domains. */
static void eval_sum(const rw_bundle_t *b, const epair_t *ep, size_t n, rw_bundle_eval_t *out)
{
    size_t nd = out->n_domains;
    size_t *right = rw_new_array(size_t, 3 * nd), *oright = right + nd, *rright = right + 2 * nd;
    double *margin = rw_new_array(double, nd);
    for (size_t i = 0; i < n; i++) {
        size_t d = ep[i].dd;
        out->domains[d].pairs++;
        right[d] += ep[i].rc > ep[i].rr;
        margin[d] += (double)ep[i].rc - (double)ep[i].rr;
        oright[d] += ep[i].oc > ep[i].orj;
        rright[d] += ep[i].route == ep[i].label;
    }
    double sa = 0, so = 0, sr = 0;
    size_t no = 0, nr = 0;
    for (size_t d = 0; d < nd; d++) {
        rw_bundle_domain_eval_t *x = &out->domains[d];
        double p = (double)x->pairs;
        int known = rw_bundle_domain_index(b, x->name) >= 0;
        x->accuracy = (double)right[d] / p;
        x->margin = margin[d] / p;
        x->oracle_accuracy = routed(b) && known ? (double)oright[d] / p : -1.0;
        x->route_accuracy = routed(b) && known ? (double)rright[d] / p : -1.0;
        sa += x->accuracy;
        if (x->oracle_accuracy >= 0)
            so += x->oracle_accuracy, no++;
        if (x->route_accuracy >= 0)
            sr += x->route_accuracy, nr++;
    }
    out->mean_accuracy = sa / (double)nd;
    out->mean_oracle_accuracy = no ? so / (double)no : -1.0;
    out->route_accuracy = nr ? sr / (double)nr : -1.0;
    free(margin);
    free(right);
}

int rw_bundle_eval(rw_bundle_t *b, const rw_dataset_t *ds, rw_split_t split, rw_bundle_eval_t *out)
{
    double t0 = rw_now_s();
    memset(out, 0, sizeof *out);
    const char **names;
    size_t nall = rw_dataset_domains(ds, &names), n = 0;
    size_t *map = rw_new_array(size_t, nall ? nall : 1); /* data domain -> eval domain + 1 */
    epair_t *ep = rw_new_array(epair_t, ds->n ? ds->n : 1);
    toks_t t = {0};
    int rc = 0;
    for (size_t i = 0; i < ds->n && rc == 0; i++) {
        const rw_pair_t *p = &ds->pairs[i];
        if (p->split != split)
            continue;
        size_t lo = 0, hi = nall; /* names are sorted */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (strcmp(names[mid], p->domain) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        map[lo] = 1;
        epair_t *e = &ep[n++];
        e->dd = lo;
        e->label = rw_bundle_domain_index(b, p->domain);
        e->route = -1;
        const char *txt[3] = {p->prompt, p->chosen, p->rejected};
        size_t len[3] = {p->prompt_len, p->chosen_len, p->rejected_len};
        for (int k = 0; k < 3 && rc == 0; k++)
            rc = encode(b, &t, txt[k], len[k], &e->off[k], &e->cnt[k]);
    }
    if (rc == 0 && n == 0)
        rc = RW_EEMPTY;
    if (rc == 0) {
        for (size_t d = 0; d < nall; d++)
            if (map[d])
                map[d] = ++out->n_domains;
        out->domains = rw_new_array(rw_bundle_domain_eval_t, out->n_domains);
        for (size_t d = 0; d < nall; d++)
            if (map[d])
                out->domains[map[d] - 1].name = rw_strdup(names[d]);
        for (size_t i = 0; i < n; i++)
            ep[i].dd = map[ep[i].dd] - 1;
        rc = eval_score(b, ep, n, t.ids);
    }
    if (rc == 0)
        eval_sum(b, ep, n, out);
    out->seconds = rw_now_s() - t0;
    if (rc < 0)
        rw_bundle_eval_fini(out);
    free(t.ids);
    free(ep);
    free(map);
    free(names);
    return rc;
}

void rw_bundle_eval_fini(rw_bundle_eval_t *e)
{
    for (size_t d = 0; e->domains && d < e->n_domains; d++)
        free(e->domains[d].name);
    free(e->domains);
    memset(e, 0, sizeof *e);
}

/* A figure, or null when it does not apply (negative) or is not finite. */
static json_t *num(double v)
{
    return v >= 0 && isfinite(v) ? json_real(v) : json_null();
}

json_t *rw_bundle_eval_json(const rw_bundle_eval_t *e)
{
    json_t *o = json_object(), *doms = json_array();
    for (size_t d = 0; d < e->n_domains; d++) {
        const rw_bundle_domain_eval_t *x = &e->domains[d];
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(x->name));
        json_object_set_new(j, "pairs", json_integer((json_int_t)x->pairs));
        json_object_set_new(j, "accuracy", num(x->accuracy));
        json_object_set_new(j, "margin", isfinite(x->margin) ? json_real(x->margin) : json_null());
        json_object_set_new(j, "oracle_accuracy", num(x->oracle_accuracy));
        json_object_set_new(j, "route_accuracy", num(x->route_accuracy));
        json_array_append_new(doms, j);
    }
    json_object_set_new(o, "domains", doms);
    json_object_set_new(o, "mean_accuracy", num(e->mean_accuracy));
    json_object_set_new(o, "mean_oracle_accuracy", num(e->mean_oracle_accuracy));
    json_object_set_new(o, "route_accuracy", num(e->route_accuracy));
    json_object_set_new(o, "seconds", num(e->seconds));
    return o;
}

int rw_bundle_record_eval(const char *dir, const rw_bundle_eval_t *e)
{
    json_t *m;
    char why[512];
    int rc = rw_bundle_manifest_read(dir, &m, why, sizeof why);
    if (rc < 0)
        return rc;
    json_object_set_new(m, "eval", rw_bundle_eval_json(e));
    size_t n = strlen(dir) + sizeof "/" RW_BUNDLE_MANIFEST;
    char *path = rw_malloc(n);
    snprintf(path, n, "%s/%s", dir, RW_BUNDLE_MANIFEST);
    rc = rw_bundle__write_json(path, m);
    free(path);
    json_decref(m);
    return rc;
}
