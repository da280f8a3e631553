/* eval.h — held-out evaluation: pairwise accuracy, reward margin, routing.
 *
 * A reward model is judged on held-out pairs by how often it ranks the
 * chosen reply above the rejected one (a tie counts as wrong) and by the
 * mean margin r(chosen) - r(rejected); a classifier (a router) by how often
 * its top class is the label. Both are reported over all items and per
 * domain (or class) when the items carry one.
 */
#ifndef RW_EVAL_H
#define RW_EVAL_H

#include "batch.h"
#include "engine.h"

typedef struct rw_eval_stats {
    size_t n;          /* items seen */
    size_t correct;    /* ranked or classified right */
    double margin_sum; /* sum of r(chosen) - r(rejected) (pairs) */
    double loss_sum;   /* of the training objective: Bradley-Terry or cross-entropy */
    double accuracy;   /* correct / n (0 when n == 0) */
    double mean_margin;
    double mean_loss;
} rw_eval_stats_t;

/* Fills accuracy, mean_margin and mean_loss of s[0..k) from their sums. */
void rw_eval_finish(rw_eval_stats_t *s, size_t k);
/* Scores pairs[0..n) with e (a reward head), in batches as large as the
 * engine takes. *all gets the totals; per_domain[d] (d < n_domains; may be
 * NULL) those of the pairs of domain d, pairs of other domains counting only
 * in *all. Returns 0, RW_EINVAL (a classifier engine, or a batch the engine
 * rejects) or RW_ETOOBIG (the engine takes fewer than two sequences). */
int rw_eval_pairs(rw_engine_t *e, const rw_tok_pair_t *pairs, size_t n, rw_eval_stats_t *all,
                  rw_eval_stats_t *per_domain, size_t n_domains);
/* Classifies ex[0..n) with e (a classifier head); per_class[c] (may be NULL)
 * gets the examples labelled c < n_classes. Returns 0 or RW_EINVAL. */
int rw_eval_classify(rw_engine_t *e, const rw_tok_example_t *ex, size_t n, rw_eval_stats_t *all,
                     rw_eval_stats_t *per_class, size_t n_classes);

#endif
