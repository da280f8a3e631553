/* svc_peer.c — the test as a coordinator's peer; see svc_peer.h. */
#include "svc_peer.h"

#include "err.h"
#include "log.h"
#include "support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

void svc_peer_connect(svc_peer_t *p, const char *endpoint, const char *id)
{
    p->ctx = zmq_ctx_new();
    p->sock = zmq_socket(p->ctx, ZMQ_DEALER);
    int ms = 100, zero = 0, err;
    zmq_setsockopt(p->sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
    p->w = wire_new(p->sock, id, &err);
    cr_assert_not_null(p->w);
    cr_assert_eq(zmq_connect(p->sock, endpoint), 0);
}

void svc_peer_open(svc_peer_t *p, const char *endpoint, const char *id, const char *cap)
{
    svc_peer_connect(p, endpoint, id);
    svc_peer_hello(p, id, cap);
}

void svc_peer_hello(svc_peer_t *p, const char *id, const char *cap)
{
    msg_t m;
    msg_init(&m, MSG_HELLO);
    const char *caps[] = {cap};
    m.hello.worker_id = id;
    m.hello.caps = (msg_strs_t){caps, 1};
    m.hello.threads = 1;
    cr_assert_eq(wire_send(p->w, NULL, &m, 0), 0);
}

void svc_peer_close(svc_peer_t *p)
{
    wire_destroy(&p->w);
    zmq_close(p->sock);
    zmq_ctx_term(p->ctx);
}

int svc_peer_expect(svc_peer_t *p, msg_type_t type, msg_t *m, int ms)
{
    for (double end = rw_now_s() + ms / 1000.0; rw_now_s() < end;) {
        int rc = wire_recv(p->w, m, NULL, 0);
        if (rc == 0 && m->type == type)
            return 0;
        if (rc == 0)
            msg_fini(m);
    }
    return -1;
}

void svc_peer_result(svc_peer_t *p, store_t *st, uint64_t task, uint32_t attempt)
{
    char tmp[STORE_PATH_MAX];
    store_tmp_path(st, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "the output of task %llu", (unsigned long long)task);
    fclose(f);
    msg_t m;
    msg_init(&m, MSG_RESULT);
    m.result.task = task;
    m.result.attempt = attempt;
    cr_assert_eq(store_adopt(st, tmp, 0, &m.result.artifact), 0);
    cr_assert_eq(wire_send(p->w, NULL, &m, 0), 0);
}

int svc_count_in_file(const char *path, const char *text)
{
    char *s = rwt_read_file(path, NULL);
    int n = 0;
    for (const char *at = s; at && (at = strstr(at, text)); at++)
        n++;
    free(s);
    return n;
}

int svc_one_task_start(void *job, coord_t *c)
{
    (void)job;
    return coord_add_task(c, MSG_TASK_SEED, NULL, "train", NULL, 0) ? 0 : RW_EINVAL;
}

int svc_empty_lease(void *job, const plan_task_t *t, msg_lease_t *l)
{
    (void)job, (void)t;
    l->config = "{}";
    return 0;
}

typedef struct {
    coord_t *c;
    int *rc;
} coord_thread_t;

static void *coord_thread(void *arg)
{
    coord_thread_t t = *(coord_thread_t *)arg;
    free(arg);
    int rc = coord_run(t.c);
    if (t.rc)
        *t.rc = rc;
    return NULL;
}

coord_t *svc_coord_thread(const coord_opts_t *o, const struct coord_job_ops *ops, pthread_t *th,
                          int *rc)
{
    char why[256];
    coord_t *c;
    cr_assert_eq(coord_new(o, ops, NULL, &c, why, sizeof why), 0, "%s", why);
    coord_thread_t *t = malloc(sizeof *t);
    cr_assert_not_null(t);
    *t = (coord_thread_t){c, rc};
    if (rc)
        *rc = -1;
    cr_assert_eq(pthread_create(th, NULL, coord_thread, t), 0);
    return c;
}
