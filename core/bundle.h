/* bundle.h — what a job delivers: self-describing reward model bundles.
 *
 * A bundle is a folder holding a manifest.json, the shared tokenizer.json
 * and its tensors in safetensors files (the checkpoints of checkpoint.h,
 * copied in unchanged, so a member's checksum is that of the artifact a task
 * produced). Four kinds:
 *
 *   kind      members                                     scoring one (prompt, response)
 *   baseline  model.safetensors (the seed)                one pass
 *   moe       model.safetensors (MoE: seed's shared       one pass; the gates mix the
 *             layers, one expert per domain, gates)       experts per token
 *   router    router.safetensors (classifier) and         the router picks a domain from
 *             domain-<name>.safetensors per domain        the prompt; that model scores
 *   adapter   base.safetensors (the frozen seed),         pass 1 with the router adapter
 *             router-adapter.safetensors and              picks the domain; pass 2 with
 *             adapter-<name>.safetensors per domain       that domain's adapter scores
 *
 * manifest.json says: format version, kind, domains (label order), model
 * configurations, parameter counts (total in the bundle, and loaded to
 * score one pair), every file with its size and XXH64 checksum, provenance
 * (job id, seed, rewire and protocol versions, creation time) and, once
 * evaluated, the evaluation results. Opening a bundle verifies every file's
 * checksum, so a corrupt or tampered bundle is refused with the file named.
 * (bundle.c documents the manifest's keys.)
 *
 * Routing reads the prompt alone, as a router task must train on it: the
 * input is rw_batch_add(prompt, empty response), `[cls] prompt [sep] [sep]`,
 * and the domain is the classifier's top class (label order = domains).
 */
#ifndef RW_BUNDLE_H
#define RW_BUNDLE_H

#include "pair.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RW_BUNDLE__NONE = 0,
    RW_BUNDLE_BASELINE,
    RW_BUNDLE_MOE,
    RW_BUNDLE_ROUTER,
    RW_BUNDLE_ADAPTER,
} rw_bundle_kind_t;

const char *rw_bundle_kind_name(rw_bundle_kind_t k);         /* "moe"; "?" if unknown */
rw_bundle_kind_t rw_bundle_kind_from_name(const char *name); /* RW_BUNDLE__NONE if unknown */

/* Where a bundle's members come from (all paths borrowed). */
typedef struct rw_bundle_sources {
    rw_bundle_kind_t kind;
    const char *tokenizer;      /* tokenizer.json */
    const char *const *domains; /* n_domains names, label order */
    size_t n_domains;
    const char *model;          /* baseline: the seed; moe: the gates task's MoE model */
    const char *base;           /* adapter: the frozen seed */
    const char *router;         /* router: the classifier */
    const char *router_adapter; /* adapter: the LoRA classifier */
    const char *const *members; /* router: domain reward models; adapter: LoRA reward
                                 * adapters; n_domains of them, label order */
    const json_t *provenance;   /* borrowed object: job_id, seed, protocol_version, ...
                                 * (may be NULL); rewire_version and created are added */
} rw_bundle_sources_t;

/* Builds the bundle in dir (created; replaced whole if it exists: written
 * beside it and renamed into place). Checks that the members fit together
 * (configurations, adapters' base fingerprints, classifier outputs ==
 * n_domains). Returns 0, or a negative error with why filled in: RW_EINVAL
 * (sources missing or members that do not fit, named with their paths),
 * RW_EEXIST (dir exists and is neither a bundle nor empty: it is left
 * alone), RW_EFORMAT or a safetensors error (a member is no rewire
 * checkpoint), RW_EPARSE (tokenizer.json is malformed) or a negated
 * errno. Nothing is left behind on failure. */
int rw_bundle_write(const rw_bundle_sources_t *src, const char *dir, char *why, size_t whylen);
/* Removes what a writer killed part way left in dir and its folders: the
 * half-built bundles beside their destinations (NAME.tmp-XXXXXX). Only the
 * writer of dir may call it. Returns how many it removed. */
int rw_bundle_remove_litter(const char *dir);

typedef struct rw_bundle rw_bundle_t;

/* Opens and verifies a bundle (every checksum), loading its models. Returns
 * 0 with *b owned by the caller, or a negative error with why filled in
 * (RW_ECHECKSUM names the file): RW_EPARSE (manifest malformed), a negated
 * errno (a file missing), RW_ECHECKSUM, RW_EFORMAT (a member is not what
 * the manifest says). Engines are made on first use. */
int rw_bundle_open(const char *dir, rw_bundle_t **b, char *why, size_t whylen);
void rw_bundle_destroy(rw_bundle_t **b);
rw_bundle_kind_t rw_bundle_kind(const rw_bundle_t *b);
size_t rw_bundle_n_domains(const rw_bundle_t *b);
const char *rw_bundle_domain(const rw_bundle_t *b, size_t i);
/* The manifest (borrowed, valid while b is). */
const json_t *rw_bundle_manifest(const rw_bundle_t *b);
/* The label of domain name, or -1 if the bundle does not know it. */
int rw_bundle_domain_index(const rw_bundle_t *b, const char *name);
/* Threads of the engines that score (<= 0, the default: one per online
 * CPU; 1: OpenBLAS's own threads). */
void rw_bundle_set_threads(rw_bundle_t *b, int threads);

/* Reads and checks dir's manifest.json without touching the members (what
 * `rewire inspect` shows even of a damaged bundle). Returns 0 with
 * *manifest owned by the caller (json_decref), a negated errno, or
 * RW_EPARSE; why says what is wrong. */
int rw_bundle_manifest_read(const char *dir, json_t **manifest, char *why, size_t whylen);
/* Checks one entry of the manifest's "files" (borrowed) against the file
 * in dir: size and XXH64. Returns 0, RW_ECHECKSUM (size or checksum
 * differs) or a negated errno, with why naming the file. */
int rw_bundle_file_verify(const char *dir, const json_t *file, char *why, size_t whylen);

/* Scores n (prompt, response) texts. route[i] gets the domain used (the
 * router's choice, or oracle[i] when oracle is not NULL: the true domain,
 * -1 to route). baseline and moe leave route[i] = -1. Returns 0, RW_EINVAL
 * (an oracle label out of range), RW_ETOOBIG (a text over the tokenizer's
 * limit) or an engine's error. Not thread-safe (one bundle, one scorer at
 * a time). */
int rw_bundle_score(rw_bundle_t *b, const char *const *prompts, const size_t *prompt_lens,
                    const char *const *responses, const size_t *response_lens, size_t n,
                    const int *oracle, double *rewards, int *route);

/* Routes n prompts with a router or adapter bundle's router: route[i]
 * gets the domain, and probs (may be NULL; n * n_domains) row i the
 * router's probability of each domain. Returns 0, RW_EINVAL for a bundle
 * that does not route, RW_ETOOBIG (a text over the tokenizer's limit) or
 * an engine's error. Not thread-safe, as rw_bundle_score. */
int rw_bundle_route(rw_bundle_t *b, const char *const *prompts, const size_t *prompt_lens, size_t n,
                    int *route, float *probs);

typedef struct rw_bundle_domain_eval {
    char *name; /* owned */
    size_t pairs;
    double accuracy, margin; /* pairwise, routed as the bundle routes */
    double oracle_accuracy;  /* pairwise, routed to the true domain (router, adapter) */
    double route_accuracy;   /* share of prompts routed to their domain; -1 if no router */
} rw_bundle_domain_eval_t;

typedef struct rw_bundle_eval {
    rw_bundle_domain_eval_t *domains; /* owned, in the data's sorted domain order */
    size_t n_domains;
    double mean_accuracy, mean_oracle_accuracy, route_accuracy, seconds;
} rw_bundle_eval_t;

/* Evaluates b on the pairs of ds in split (RW_SPLIT_EVAL usually), per
 * domain. A domain the bundle does not know counts under its own name with
 * no oracle figure. Figures that do not apply are -1 (oracle and routing of
 * baseline and moe bundles); means are over the domains that have them.
 * Returns 0, RW_EEMPTY (no pair in split) or a negative error; out needs
 * rw_bundle_eval_fini after 0. */
int rw_bundle_eval(rw_bundle_t *b, const rw_dataset_t *ds, rw_split_t split, rw_bundle_eval_t *out);
void rw_bundle_eval_fini(rw_bundle_eval_t *e);
/* {"domains": [{"name", "pairs", "accuracy", "margin", "oracle_accuracy",
 * "route_accuracy"}], "mean_accuracy", "mean_oracle_accuracy",
 * "route_accuracy", "seconds"}, null for figures that do not apply (new
 * reference, the caller's). */
json_t *rw_bundle_eval_json(const rw_bundle_eval_t *e);
/* Records an evaluation in dir's manifest (rewritten whole, atomically; the
 * members and their checksums are untouched), replacing an earlier one.
 * Returns 0, RW_EPARSE or a negated errno. */
int rw_bundle_record_eval(const char *dir, const rw_bundle_eval_t *e);

#endif
