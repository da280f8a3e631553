/* stats.c — per-domain pair counts and token-length percentiles; see stats.h. */
#include "stats.h"

#include "alloc.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

typedef struct lens {
    size_t *v, n, cap;
} lens_t;

static void lens_push(lens_t *l, size_t x)
{
    rw_grow(&l->v, &l->cap, l->n + 1);
    l->v[l->n++] = x;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static size_t pct(const size_t *v, size_t n, double p)
{
    size_t r = (size_t)(p * (double)n + 0.999999);
    return v[r == 0 ? 0 : (r > n ? n - 1 : r - 1)];
}

static rw_len_summary_t summarize(lens_t *l)
{
    rw_len_summary_t s = {0};
    if (l->n == 0)
        return s;
    qsort(l->v, l->n, sizeof *l->v, cmp_size);
    double sum = 0;
    for (size_t i = 0; i < l->n; i++)
        sum += (double)l->v[i];
    s.p50 = pct(l->v, l->n, 0.50);
    s.p90 = pct(l->v, l->n, 0.90);
    s.p99 = pct(l->v, l->n, 0.99);
    s.max = l->v[l->n - 1];
    s.mean = sum / (double)l->n;
    return s;
}

/* Fills d from the pairs of ds whose domain is name (all pairs if NULL). */
static void domain_stats(const rw_dataset_t *ds, const size_t *plen, const size_t *clen,
                         const size_t *rlen, const char *name, rw_domain_stats_t *d)
{
    lens_t p = {0}, r = {0}, j = {0};
    d->name = rw_strdup(name ? name : "all");
    for (size_t i = 0; i < ds->n; i++) {
        const rw_pair_t *x = &ds->pairs[i];
        if (name && strcmp(x->domain, name) != 0)
            continue;
        d->pairs++;
        if (x->split == RW_SPLIT_EVAL)
            d->eval++;
        else
            d->train++;
        lens_push(&p, plen[i]);
        lens_push(&r, clen[i]);
        lens_push(&r, rlen[i]);
        lens_push(&j, plen[i] + clen[i] + 3);
        lens_push(&j, plen[i] + rlen[i] + 3);
    }
    d->prompt = summarize(&p);
    d->response = summarize(&r);
    d->joined = summarize(&j);
    free(p.v), free(r.v), free(j.v);
}

int rw_stats_compute(const rw_dataset_t *ds, rw_bpe_t *bpe, rw_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (ds->n == 0)
        return RW_EEMPTY;
    size_t *plen = rw_new_array(size_t, ds->n), *clen = rw_new_array(size_t, ds->n);
    size_t *rlen = rw_new_array(size_t, ds->n);
    int32_t *ids = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < ds->n; i++) {
        const rw_pair_t *x = &ds->pairs[i];
        size_t n = 0;
        rw_bpe_encode(bpe, x->prompt, x->prompt_len, &ids, &n, &cap);
        plen[i] = n;
        n = 0;
        rw_bpe_encode(bpe, x->chosen, x->chosen_len, &ids, &n, &cap);
        clen[i] = n;
        n = 0;
        rw_bpe_encode(bpe, x->rejected, x->rejected_len, &ids, &n, &cap);
        rlen[i] = n;
    }
    free(ids);
    const char **names;
    out->ndomains = rw_dataset_domains(ds, &names);
    out->domains = rw_new_array(rw_domain_stats_t, out->ndomains);
    for (size_t d = 0; d < out->ndomains; d++)
        domain_stats(ds, plen, clen, rlen, names[d], &out->domains[d]);
    domain_stats(ds, plen, clen, rlen, NULL, &out->all);
    out->vocab_size = rw_bpe_vocab_size(bpe);
    free(names);
    free(plen), free(clen), free(rlen);
    return 0;
}

void rw_stats_fini(rw_stats_t *st)
{
    for (size_t d = 0; d < st->ndomains; d++)
        free(st->domains[d].name);
    free(st->domains);
    free(st->all.name);
    memset(st, 0, sizeof *st);
}

static void print_row(const rw_domain_stats_t *d, FILE *f)
{
    fprintf(f, "%-28s %7zu %7zu %6zu   %5zu %5zu %5zu   %5zu %5zu %5zu   %5zu %5zu %5zu\n", d->name,
            d->pairs, d->train, d->eval, d->prompt.p50, d->prompt.p90, d->prompt.p99,
            d->response.p50, d->response.p90, d->response.p99, d->joined.p50, d->joined.p90,
            d->joined.p99);
}

void rw_stats_print(const rw_stats_t *st, FILE *f)
{
    fprintf(f, "%-28s %7s %7s %6s   %-17s   %-17s   %-17s\n", "", "", "", "", "prompt tokens",
            "reply tokens", "joined tokens");
    fprintf(f, "%-28s %7s %7s %6s   %5s %5s %5s   %5s %5s %5s   %5s %5s %5s\n", "domain", "pairs",
            "train", "eval", "p50", "p90", "p99", "p50", "p90", "p99", "p50", "p90", "p99");
    for (size_t d = 0; d < st->ndomains; d++)
        print_row(&st->domains[d], f);
    print_row(&st->all, f);
    fprintf(f, "(tokenizer vocabulary %zu; joined = [cls] prompt [sep] reply [sep])\n",
            st->vocab_size);
}

static json_t *len_json(const rw_len_summary_t *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:f}", "p50", (json_int_t)s->p50, "p90", (json_int_t)s->p90,
                     "p99", (json_int_t)s->p99, "max", (json_int_t)s->max, "mean", s->mean);
}

static json_t *domain_json(const rw_domain_stats_t *d)
{
    return json_pack("{s:s,s:I,s:I,s:I,s:o,s:o,s:o}", "domain", d->name, "pairs",
                     (json_int_t)d->pairs, "train", (json_int_t)d->train, "eval",
                     (json_int_t)d->eval, "prompt_tokens", len_json(&d->prompt), "reply_tokens",
                     len_json(&d->response), "joined_tokens", len_json(&d->joined));
}

json_t *rw_stats_json(const rw_stats_t *st)
{
    json_t *doms = json_array();
    for (size_t d = 0; d < st->ndomains; d++)
        json_array_append_new(doms, domain_json(&st->domains[d]));
    return json_pack("{s:o,s:o,s:I}", "domains", doms, "all", domain_json(&st->all), "vocab_size",
                     (json_int_t)st->vocab_size);
}
