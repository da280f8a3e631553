/* synth.h — the embedded default data: synthetic multi-domain preference pairs.
 *
 * A deterministic generator of (prompt, chosen, rejected, domain) pairs in
 * five domains whose preferences disagree on purpose: `concise` prefers the
 * short reply and `detailed` the long one (same topics, same replies);
 * `safety` prefers a refusal and `compliance` (similar themes framed as
 * fiction) prefers help; `arithmetic` prefers the correct result. Each
 * domain's prompts carry their own phrasing, so a router can tell them
 * apart, while no domain-blind rule about the reply fits them all.
 *
 * Output is a pure function of the options: byte-identical across runs and
 * machines for a seed. Pair i of a domain depends only on (seed, domain, i),
 * so asking for more pairs extends the list and asking for fewer domains
 * leaves the others' pairs as they were. Pairs are distinct within a domain.
 */
#ifndef RW_SYNTH_H
#define RW_SYNTH_H

#include "pair.h"

#include <stddef.h>
#include <stdint.h>

#define RW_SYNTH_DEFAULT_PAIRS 1000
#define RW_SYNTH_MAX_PAIRS     1000000

/* A zeroed struct asks for the defaults: seed 0, RW_SYNTH_DEFAULT_PAIRS
 * pairs per domain, every domain, no label noise. */
typedef struct rw_synth_opts {
    uint64_t seed;
    size_t pairs_per_domain;    /* 0: RW_SYNTH_DEFAULT_PAIRS */
    const char *const *domains; /* borrowed; NULL (with n_domains 0): all */
    size_t n_domains;           /* the output keeps this order */
    double noise;               /* [0, 1]: fraction of each domain swapped */
} rw_synth_opts_t;

/* Appends the pairs to out (initialized by the caller, who owns them),
 * domain by domain. With noise > 0, round(noise * pairs_per_domain) pairs
 * of each domain, chosen by the seed, have chosen and rejected swapped.
 * opts may be NULL for the defaults. Returns 0; RW_EINVAL for a NULL out,
 * a noise outside [0, 1], or a domain listed twice; RW_ENOTFOUND for an
 * unknown domain; RW_ETOOBIG past RW_SYNTH_MAX_PAIRS. On error out is left
 * as it was. */
int rw_synth_generate(const rw_synth_opts_t *opts, rw_dataset_t *out);

/* Sets *names to the static list of domain names; returns how many. */
size_t rw_synth_domains(const char *const **names);
/* One-sentence description of the domain's preference (static), or NULL
 * for an unknown name. */
const char *rw_synth_domain_rule(const char *name);

#endif
