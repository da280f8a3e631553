/* report.h — a job's report: what it trained, how well, and how fast.
 *
 * The coordinator collects a job's results in one JSON object and renders
 * it here into a folder anyone can open: report.md (tables of held-out
 * pairwise accuracy per domain for the baseline and every bundle, router
 * accuracy, parameter counts, time per stage, throughput per worker, every
 * task), report.json (the results themselves, indented) and two plots
 * drawn as plain SVG by hand, with no plotting library: loss.svg (each
 * task's training loss against its step) and accuracy.svg (per-domain
 * accuracy of every bundle beside the baseline, as grouped bars).
 *
 * The results object (every part optional; what is missing is left out or
 * shown as n/a):
 *
 *   {"job": {"id", "seed", "data", "domains": [name], "started", "wall_s",
 *            "version", "added": [{"domain", "worker", "train" (pairs),
 *            "train_prompts", "eval", "stage1_s", "router_s", "merge_eval_s",
 *            "wall_s"}]},
 *    "stages": [{"name", "seconds"}],
 *    "tasks": [{"id", "kind", "domain" (or null), "attempts", "worker",
 *               "seconds", "pairs_per_s", "steps", "loss_curve": [[step, loss]],
 *               "train_accuracy", "params"}],
 *    "workers": [{"id", "threads", "tasks", "pairs_per_s"}],
 *    "bundles": [{"kind", "path", "params_total", "params_per_pair",
 *                 "eval": rw_bundle_eval_json's object}]}
 */
#ifndef RW_REPORT_H
#define RW_REPORT_H

#include <jansson.h>
#include <stddef.h>

/* Writes report.md, report.json, loss.svg and accuracy.svg into out_dir
 * (created if missing; each file whole or not at all). results is borrowed.
 * Returns 0, RW_EINVAL (results is not an object) or a negated errno, with
 * why filled in. */
int rw_report_render(const json_t *results, const char *out_dir, char *why, size_t whylen);

/* The results' "bundles" entry of the bundle in dir, from its manifest:
 * {"kind", "path": dir, "params_total", "params_per_pair", "eval"} ("eval"
 * only once recorded, rw_bundle_record_eval). Returns a new reference, or
 * NULL with why filled in (as rw_bundle_manifest_read). */
json_t *rw_report_bundle_entry(const char *dir, char *why, size_t whylen);

/* Held-out pairwise accuracy of the bundle of kind on domain in results
 * (its "oracle_accuracy" when oracle), or NAN when the results hold none. */
double rw_report_accuracy(const json_t *results, const char *kind, const char *domain, int oracle);

/* The two plots alone, as SVG documents (caller frees; never NULL). */
char *rw_report_loss_svg(const json_t *results);
char *rw_report_accuracy_svg(const json_t *results);

#endif
