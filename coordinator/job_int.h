/* job_int.h — what job.c and finish.c share (internal). */
#ifndef RW_COORD_JOB_INT_H
#define RW_COORD_JOB_INT_H

#include "job.h"
#include "task.h"

#include <jansson.h>
#include <stdint.h>

#define JOB_CURVE_MAX 256 /* loss-curve points kept per task */

typedef struct job_task {
    msg_task_kind_t kind;
    char domain[MSG_NAME_MAX + 1];
    json_t *curve;   /* [[step, loss], ...] of the live attempt */
    uint64_t stride; /* steps between kept points (doubles when full) */
    uint64_t next;   /* the first step the curve takes next: later than its last */
    json_t *done;    /* the task's "done" record, once done */
    double first_lease_ts, done_ts;
    int attempts;
    size_t n_domains; /* the job's domains when it was planned: its spec's */
    uint64_t data;    /* the data of those domains (all-domain kinds) */
    int added;        /* planned by added[added]; -1: by the job's start */
} job_task_t;

/* A domain a worker brought to the job after it started. */
typedef struct job_added {
    char domain[MSG_NAME_MAX + 1];
    char worker[MSG_NAME_MAX + 1];
    uint64_t upload;        /* its held-out pairs and train prompts, in the store */
    uint64_t pairs, eval;   /* all its pairs, and the held-out ones */
    uint64_t train;         /* its train pairs, which stayed on the worker */
    uint64_t train_prompts; /* the distinct train prompts that came, for the classifiers */
    double ts;              /* when it was accepted */
    uint64_t bytes;
    uint64_t first_task; /* the id its first task has (or will have) */
    bool has_all_data;   /* its "all_data" record is in */
} job_added_t;

struct coord_job {
    char *state_dir, *out_dir, *data_desc;
    json_t *config; /* owned copy */
    uint64_t seed;
    double prepare_s;
    char **domains; /* owned, sorted: the label order */
    size_t n_domains;
    size_t vocab;
    /* from the journal */
    char id[24], started_iso[32];
    bool planned;        /* the start's last record ("planned") is in */
    bool domain_pending; /* the last domain added may not be planned whole */
    double started_ts;
    uint64_t tokenizer, data; /* artifacts */
    uint64_t *domain_data;    /* per domain (an added one's stays on its worker) */
    uint64_t all_data;        /* every domain's data for the classifiers (0: data) */
    job_added_t *added;       /* domains added, in order (domains[n_domains - n_added..]) */
    size_t n_added;
    int version;          /* bundle versions written ("finished" records) */
    size_t built_domains; /* domains in the last version */
    job_task_t *tasks;    /* index id-1 */
    size_t n_tasks, cap_tasks;
    json_t *threads; /* worker -> threads */
    double finished_ts, first_finished_ts;
    /* what the last lease borrowed */
    char *lease_spec;
    uint64_t lease_experts[RW_TASK_MAX_DOMAINS];
};

/* The task with id, or NULL. */
job_task_t *job__task(coord_job_t *j, uint64_t id);
/* The done task of kind for domain (NULL: of all domains, the one planned
 * for the most domains, the latest of those), or NULL. */
job_task_t *job__output(coord_job_t *j, msg_task_kind_t kind, const char *domain);

/* finish.c: the results' "workers" rows, one per worker that did a done
 * task: {"id", "threads", "tasks", "pairs_per_s"}, pairs_per_s being the
 * pairs of its tasks over their seconds. Returns a new reference. */
json_t *job__workers_json(coord_job_t *j);

/* Journals artifact id of the job's store in role ("tokenizer", "data",
 * "data:D", "all_data"). Returns as coord_record. */
int job__record_artifact(coord_t *c, const char *role, uint64_t id);
/* Plans the classifiers over every domain: the router (when router), the
 * router adapter (on deps[0], the seed) and the gates (on deps: the seed
 * and every expert). Returns 0 or RW_EINVAL. */
int job__plan_classifiers(coord_t *c, bool router, const uint64_t *deps, size_t n_deps);
/* *out: whether task kind (for domain) reads the seed, from its spec (the
 * configuration decides, e.g. domain_rm.scratch); RW_EINVAL when the
 * configuration makes no valid spec. */
int job__needs_base(coord_job_t *j, msg_task_kind_t kind, const char *domain, bool *out);

/* domain.c: a domain a worker brings (coord_job_ops.domain_check,
 * domain_read and domain_add). */
/* coord_job_ops.check_result: the artifact at path names t's kind and
 * domain in its metadata, as every task's output does. */
int job__check_result(void *job, const plan_task_t *t, const char *path, char *why, size_t whylen);
int job__domain_check(void *job, const char *worker, const coord_domain_t *d, char *why,
                      size_t whylen);
/* The last domain added, whose planning the journal does not show ended
 * (a kill, or a full disk, part way): its classifiers' data again if that
 * record is missing, then its tasks past those journaled, and the record
 * that it is planned ("domain_planned"). Returns 0 or an error. */
int job__domain_complete(coord_job_t *j, coord_t *c);
int job__domain_read(void *job, store_t *st, const coord_domain_t *d, coord_domain_read_t *r,
                     char *why, size_t whylen);
int job__domain_add(void *job, coord_t *c, const char *worker, const coord_domain_t *d,
                    const coord_domain_read_t *r, char *why, size_t whylen);

#endif
