/* health.c — the health check's client side; see health.h. */
#include "health.h"

#include "args.h"
#include "err.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

const char health_flags_help[] =
    "  --connect ENDPOINT     the service to ask (a wildcard host means this host)\n"
    "  --timeout-ms N         how long to wait for the answer (2000)\n"
    "  --quiet                print nothing; only the exit status says\n"
    "  --server-key FILE      the service's public key, if it uses CURVE (--key)\n"
    "  --key FILE             the key pair to ask with: one the service admits, or\n"
    "                         the service's own key file (then no --server-key)\n";

/* endpoint with a wildcard host made this host, into buf. */
static const char *local_endpoint(const char *endpoint, char *buf, size_t n)
{
    const char *any[] = {"tcp://*:", "tcp://0.0.0.0:"};
    for (size_t i = 0; i < 2; i++)
        if (strncmp(endpoint, any[i], strlen(any[i])) == 0) {
            snprintf(buf, n, "tcp://127.0.0.1:%s", endpoint + strlen(any[i]));
            return buf;
        }
    return endpoint;
}

int health_ask(const char *endpoint, const char *worker, const curve_opts_t *curve, int timeout_ms,
               msg_t *rep, char *why, size_t whylen)
{
    char local[512];
    int rc, zero = 0;
    void *zctx = zmq_ctx_new(), *sock = zmq_socket(zctx, ZMQ_DEALER), *mon = NULL;
    wire_t *w = NULL;
    msg_init(rep, MSG_HEALTH_REP);
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (!(w = wire_new(sock, "health", &rc))) {
        snprintf(why, whylen, "socket: %s", rw_strerror(rc));
        goto fail_wire;
    }
    endpoint = local_endpoint(endpoint, local, sizeof local);
    if (curve && (rc = curve_setup_client(sock, curve, why, whylen)) < 0)
        goto fail_connect;
    curve_client_t curved = !curve || (!curve->server_file && !curve->key_file) ? CURVE_NONE
                            : curve->key_file                                   ? CURVE_OWN_KEY
                                                                                : CURVE_FRESH_KEY;
    mon = curve_watch(zctx, sock, "inproc://rw-health-handshakes");
    if (zmq_connect(sock, endpoint) != 0) {
        rc = -zmq_errno();
        snprintf(why, whylen, "cannot connect to %s: %s", endpoint, zmq_strerror(-rc));
        goto fail_connect;
    }
    uint64_t req = (uint64_t)rw_now_ms() ^ ((uint64_t)getpid() << 32);
    msg_t m;
    msg_init(&m, MSG_HEALTH_REQ);
    m.health_req.req = req;
    m.health_req.worker = worker;
    if ((rc = wire_send(w, NULL, &m, ZMQ_DONTWAIT)) < 0) {
        snprintf(why, whylen, "cannot ask %s: %s", endpoint, rw_strerror(rc));
        goto fail_connect;
    }
    for (int64_t end = (int64_t)rw_now_ms() + timeout_ms;;) {
        int64_t left = end - (int64_t)rw_now_ms();
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (left <= 0 || (rc = zmq_poll(&it, 1, (long)left)) == 0) {
            rc = -ETIMEDOUT;
            snprintf(why, whylen, "no answer from %s in %d ms%s", endpoint, timeout_ms,
                     curve_failure(mon, curved, "service"));
            goto fail_connect;
        }
        if (rc < 0 && zmq_errno() == EINTR)
            continue;
        if (rc < 0) {
            rc = -zmq_errno();
            snprintf(why, whylen, "%s: %s", endpoint, zmq_strerror(-rc));
            goto fail_connect;
        }
        msg_t got;
        if (wire_recv(w, &got, NULL, ZMQ_DONTWAIT) < 0)
            continue; /* dropped by wire (counted); wait on */
        if (got.type == MSG_HEALTH_REP && got.health_rep.req == req) {
            msg_fini(rep);
            *rep = got;
            rc = 0;
            break;
        }
        if (got.type == MSG_HEARTBEAT || got.type == MSG_HEALTH_REP) {
            msg_fini(&got); /* not ours to answer */
            continue;
        }
        snprintf(why, whylen, "%s answered a %s, not a HEALTH_REP%s%s", endpoint,
                 msg_type_name(got.type), got.type == MSG_ERROR ? ": " : "",
                 got.type == MSG_ERROR ? got.error.text : "");
        msg_fini(&got);
        rc = RW_EPROTO;
        goto fail_connect;
    }
    wire_destroy(&w);
    if (mon)
        zmq_close(mon);
    zmq_close(sock);
    zmq_ctx_term(zctx);
    return 0;

fail_connect:
    wire_destroy(&w);
fail_wire:
    if (mon)
        zmq_close(mon);
    zmq_close(sock);
    zmq_ctx_term(zctx);
    return rc;
}

void health_print(const msg_t *rep, FILE *f)
{
    const msg_health_rep_t *h = &rep->health_rep;
    fprintf(f, "{\"service\":\"%s\",\"state\":\"%s\",\"uptime_ms\":%" PRIu64, h->service, h->state,
            h->uptime_ms);
    if (h->has_workers)
        fprintf(f, ",\"workers\":%" PRIu64, h->workers);
    if (h->has_tasks_total)
        fprintf(f, ",\"tasks_total\":%" PRIu64 ",\"tasks_done\":%" PRIu64, h->tasks_total,
                h->tasks_done);
    if (h->has_bundles)
        fprintf(f, ",\"bundles\":%" PRIu64, h->bundles);
    if (h->worker)
        fprintf(f, ",\"worker\":\"%s\",\"worker_live\":%s", h->worker,
                h->worker_live ? "true" : "false");
    fputc('}', f);
}

int health_main(const char *prog, const char *service, const char *def_endpoint, bool need_id,
                int argc, char **argv)
{
    const char *endpoint = def_endpoint, *id = NULL;
    curve_opts_t curve = {0};
    long timeout = 2000;
    bool quiet = false;
    char who[128];
    snprintf(who, sizeof who, "%s health", prog);
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i], *val = rw_arg_next(argc, argv, i);
        static const char *const paths[] = {"--connect", "--id", "--key", "--server-key", NULL};
        if (rw_arg_missing(who, f, val, paths))
            return 2;
        if (strcmp(f, "--connect") == 0) {
            endpoint = argv[++i];
            if (wire_endpoint_arg(prog, f, endpoint, false))
                return 2;
        } else if (need_id && strcmp(f, "--id") == 0) {
            id = argv[++i];
        } else if (strcmp(f, "--key") == 0) {
            curve.key_file = argv[++i];
        } else if (strcmp(f, "--server-key") == 0) {
            curve.server_file = argv[++i];
        } else if (strcmp(f, "--timeout-ms") == 0) {
            if (rw_arg_flag_long(who, f, val, 10, 600000, &timeout))
                return 2;
            i++;
        } else if (strcmp(f, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            printf("usage: %s health [--connect ENDPOINT]%s [options]\n\n"
                   "Asks a running %s whether it is up%s; exits 0 if so, 1 if not.\n\n%s%s",
                   prog, need_id ? " --id WORKER" : "", service,
                   need_id ? " and knows this worker as registered and live" : "",
                   health_flags_help,
                   need_id ? "  --id WORKER            the worker's id, as it registered\n" : "");
            return 0;
        } else {
            fprintf(stderr, "%s health: unknown option '%s' (see %s health --help)\n", prog, f,
                    prog);
            return 2;
        }
    }
    if (need_id && !id) {
        fprintf(stderr, "%s health: no --id WORKER\n", prog);
        return 2;
    }
    char why[512] = "";
    msg_t rep;
    if (curve_opts_check(&curve, false, why, sizeof why) < 0) {
        fprintf(stderr, "%s health: %s\n", prog, why);
        return 2;
    }
    int rc = health_ask(endpoint, id, &curve, (int)timeout, &rep, why, sizeof why);
    if (rc < 0) {
        if (!quiet)
            fprintf(stderr, "%s health: %s\n", prog, why);
        return 1;
    }
    const msg_health_rep_t *h = &rep.health_rep;
    if (strcmp(h->service, service) != 0)
        snprintf(why, sizeof why, "%s is a %s, not a %s", endpoint, h->service, service);
    else if (strcmp(h->state, "failed") == 0)
        snprintf(why, sizeof why, "the %s's job failed", service);
    else if (need_id && (!h->worker || !h->worker_live))
        snprintf(why, sizeof why, "the coordinator at %s does not know worker %s as live", endpoint,
                 id);
    if (!quiet) {
        health_print(&rep, stdout);
        putchar('\n');
        if (why[0])
            fprintf(stderr, "%s health: %s\n", prog, why);
    }
    msg_fini(&rep);
    return why[0] ? 1 : 0;
}
