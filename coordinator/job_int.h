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
    json_t *done;    /* the task's "done" record, once done */
    double first_lease_ts, done_ts;
    int attempts;
} job_task_t;

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
    double started_ts;
    uint64_t tokenizer, data; /* artifacts */
    uint64_t *domain_data;    /* per domain */
    job_task_t *tasks;        /* index id-1 */
    size_t n_tasks, cap_tasks;
    json_t *threads; /* worker -> threads */
    double finished_ts;
    /* what the last lease borrowed */
    char *lease_spec;
    uint64_t lease_experts[RW_TASK_MAX_DOMAINS];
};

/* The task with id, or NULL. */
job_task_t *job__task(coord_job_t *j, uint64_t id);

#endif
