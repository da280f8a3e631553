/* eval.c — pairwise accuracy, margins and classifier accuracy; see eval.h. */
#include "eval.h"

#include "alloc.h"
#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void add(rw_eval_stats_t *s, int right, double margin, double loss)
{
    s->n++;
    s->correct += right != 0;
    s->margin_sum += margin;
    s->loss_sum += loss;
}

/* -log sigmoid(m), without overflow either way */
static double bt_loss(double m)
{
    return m > 0 ? log1p(exp(-m)) : -m + log1p(exp(m));
}

/* -log softmax(x)[y] over O outputs */
static double ce_loss(const float *x, size_t O, size_t y)
{
    double mx = x[0], s = 0.0;
    for (size_t c = 1; c < O; c++)
        mx = x[c] > mx ? x[c] : mx;
    for (size_t c = 0; c < O; c++)
        s += exp((double)x[c] - mx);
    return mx + log(s) - (double)x[y];
}

void rw_eval_finish(rw_eval_stats_t *s, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        s[i].accuracy = s[i].n ? (double)s[i].correct / (double)s[i].n : 0.0;
        s[i].mean_margin = s[i].n ? s[i].margin_sum / (double)s[i].n : 0.0;
        s[i].mean_loss = s[i].n ? s[i].loss_sum / (double)s[i].n : 0.0;
    }
}

/* A batch sized for e, and room for its outputs. */
static void setup(rw_engine_t *e, rw_batch_t *b, float **out)
{
    size_t cap = rw_engine_max_batch(e);
    rw_batch_init(b, cap, rw_engine_max_len(e));
    *out = rw_new_array(float, rw_array_size(cap, (size_t)rw_engine_outputs(e)));
}

int rw_eval_pairs(rw_engine_t *e, const rw_tok_pair_t *pairs, size_t n, rw_eval_stats_t *all,
                  rw_eval_stats_t *per_domain, size_t n_domains)
{
    memset(all, 0, sizeof *all);
    if (per_domain)
        memset(per_domain, 0, n_domains * sizeof *per_domain);
    if (rw_engine_outputs(e) != 1 || rw_engine_head(e) != RW_HEAD_REWARD)
        return RW_EINVAL;
    size_t per = rw_engine_max_batch(e) / 2;
    if (per == 0)
        return RW_ETOOBIG;
    rw_batch_t b;
    float *r;
    setup(e, &b, &r);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += per) {
        size_t k = n - i < per ? n - i : per;
        rw_batch_from_pairs(&b, pairs + i, k);
        rc = rw_engine_forward(e, &b, r);
        for (size_t j = 0; j < k && rc == 0; j++) {
            double m = (double)r[2 * j] - (double)r[2 * j + 1];
            int32_t d = pairs[i + j].domain;
            double loss = bt_loss(m);
            add(all, m > 0, m, loss);
            if (per_domain && d >= 0 && (size_t)d < n_domains)
                add(&per_domain[d], m > 0, m, loss);
        }
    }
    rw_eval_finish(all, 1);
    if (per_domain)
        rw_eval_finish(per_domain, n_domains);
    free(r);
    rw_batch_fini(&b);
    return rc;
}

int rw_eval_classify(rw_engine_t *e, const rw_tok_example_t *ex, size_t n, rw_eval_stats_t *all,
                     rw_eval_stats_t *per_class, size_t n_classes)
{
    memset(all, 0, sizeof *all);
    if (per_class)
        memset(per_class, 0, n_classes * sizeof *per_class);
    if (rw_engine_head(e) != RW_HEAD_CLASSIFIER)
        return RW_EINVAL;
    size_t per = rw_engine_max_batch(e), O = (size_t)rw_engine_outputs(e);
    rw_batch_t b;
    float *x;
    setup(e, &b, &x);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += per) {
        size_t k = n - i < per ? n - i : per;
        rw_batch_from_examples(&b, ex + i, k);
        rc = rw_engine_forward(e, &b, x);
        for (size_t j = 0; j < k && rc == 0; j++) {
            const float *xj = x + j * O;
            size_t arg = 0;
            for (size_t c = 1; c < O; c++)
                arg = xj[c] > xj[arg] ? c : arg;
            int32_t y = ex[i + j].label;
            double loss = y >= 0 && (size_t)y < O ? ce_loss(xj, O, (size_t)y) : 0.0;
            add(all, y >= 0 && arg == (size_t)y, 0.0, loss);
            if (per_class && y >= 0 && (size_t)y < n_classes)
                add(&per_class[y], arg == (size_t)y, 0.0, loss);
        }
    }
    rw_eval_finish(all, 1);
    if (per_class)
        rw_eval_finish(per_class, n_classes);
    free(x);
    rw_batch_fini(&b);
    return rc;
}
