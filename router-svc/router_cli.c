/* router_cli.c — `rewire-router`: the router service; see router_cli.h.
 *
 * With --connect it is a coordinator's peer with the "router" capability:
 * it trains the external router, the router adapter and the MoE gates with
 * the worker's agent (the same code a worker runs), and serves route and
 * score requests on the agent's loop. Without it, it only serves.
 */
#include "router_cli.h"

#include "afile.h"
#include "args.h"
#include "curve.h"
#include "err.h"
#include "health.h"
#include "log.h"
#include "serve.h"
#include "wire.h"
#include "worker_cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rewire-router --bundles DIR [--bind ENDPOINT] [--connect ENDPOINT] [options]\n"
            "       rewire-router health [--connect ENDPOINT] [--timeout-ms N] [--quiet]\n\n"
            "Serves ROUTE_REQ and SCORE_REQ for the bundles in DIR on ENDPOINT; with --connect\n"
            "it also trains a coordinator's router tasks (router, router_adapter, gates).\n"
            "health asks a running router service (tcp://127.0.0.1:5556) whether it is up:\n"
            "exit 0 if it answers, 1 if not.\n\n"
            "  --bundles DIR          the bundles served, by folder name\n"
            "  --bind ENDPOINT        where clients connect (tcp://127.0.0.1:5556)\n"
            "  --allow PATH           with --key, serve only the clients whose public keys\n"
            "                         are in PATH (a .pub file or a folder of them)\n%s"
            "  (--key also makes the served socket a CURVE server with that key)\n",
            agent_flags_help);
}

static volatile sig_atomic_t stopped;

static void on_signal(int sig)
{
    (void)sig;
    stopped = 1;
}

static void drain(void *ctx)
{
    rsvc_drain(ctx);
}

/* Serves without a coordinator until a signal. */
static int serve_only(rsvc_t *s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!stopped) {
        zmq_pollitem_t it = {rsvc_socket(s), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, 1000);
        if (rc < 0 && zmq_errno() != EINTR)
            return 1;
        if (rc > 0)
            rsvc_drain(s);
    }
    return 0;
}

int router_main(int argc, char **argv)
{
    const char *prog = "rewire-router", *bind = "tcp://127.0.0.1:5556", *bundles = NULL;
    if (argc > 1 && strcmp(argv[1], "health") == 0)
        return health_main(prog, "router", bind, false, argc - 2, argv + 2);
    char **rest = calloc((size_t)argc + 1, sizeof *rest), cache[256], why[512];
    const char *caps[] = {"router"};
    agent_opts_t o = {.caps = caps, .n_caps = 1, .threads = 1};
    curve_opts_t serving = {0};
    int nrest, rc = agent_parse_flags(prog, argc - 1, argv + 1, &o, rest, &nrest);
    static const char *const paths[] = {"--bind", "--bundles", "--allow", NULL};
    for (int i = 0; rc == 0 && i < nrest; i++) {
        if (strcmp(rest[i], "--help") == 0 || strcmp(rest[i], "-h") == 0) {
            usage(stdout);
            goto done;
        } else if ((rc = rw_arg_missing(prog, rest[i], rw_arg_next(nrest, rest, i), paths))) {
            break;
        } else if (strcmp(rest[i], "--bind") == 0) {
            bind = rest[++i];
            rc = wire_endpoint_arg(prog, "--bind", bind, true);
        } else if (strcmp(rest[i], "--bundles") == 0) {
            bundles = rest[++i];
        } else if (strcmp(rest[i], "--allow") == 0) {
            serving.allow = rest[++i];
        } else {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, rest[i]);
            rc = 2;
        }
    }
    if (rc == 0 && !bundles) {
        fprintf(stderr, "%s: no --bundles DIR\n", prog);
        rc = 2;
    }
    if (rc == 0 && o.connect && strcmp(o.connect, bind) == 0) {
        /* it would bind over the coordinator it means to reach */
        fprintf(stderr,
                "%s: --bind %s is the coordinator's (--connect); the router service "
                "serves on an endpoint of its own\n",
                prog, bind);
        rc = 2;
    }
    serving.key_file = o.curve.key_file; /* one key: its server's and its agent's */
    if (rc == 0 && curve_opts_check(&serving, true, why, sizeof why) < 0) {
        fprintf(stderr, "%s: %s\n", prog, why);
        rc = 2;
    }
    if (rc)
        goto done;
    void *zctx = zmq_ctx_new();
    rsvc_t *s = rsvc_new(zctx, bind, bundles, o.threads, &serving, why, sizeof why);
    if (!s) {
        fprintf(stderr, "%s: %s\n", prog, why);
        zmq_ctx_term(zctx);
        rc = 1;
        goto done;
    }
    rw_log(RW_LOG_INFO, "router", "serving the bundles in %s on %s", bundles, rsvc_endpoint(s));
    if (!o.connect) {
        rc = serve_only(s);
    } else {
        bool own_cache = agent_own_cache(&o, cache, sizeof cache);
        o.extra_sock = rsvc_socket(s);
        o.on_extra = drain;
        o.extra_ctx = s;
        int err;
        agent_t *a = agent_new(&o, &err);
        if (!a) {
            fprintf(stderr, "%s: cannot start: %s\n", prog, rw_strerror(err));
            rc = 1;
        } else {
            agent_catch_signals(a);
            rc = agent_run(a) < 0 ? 1 : 0;
            agent_catch_signals(NULL);
            agent_destroy(&a);
        }
        if (own_cache) /* this process's alone: it goes when the process ends */
            rw_remove_tree(cache);
    }
    rsvc_destroy(&s);
    zmq_ctx_term(zctx);
done:
    free(rest);
    return rc;
}
