/* test_serve.c — the router service: it trains a job's router tasks with the
 * worker's agent, then serves route and score requests for the bundles, and
 * survives whatever else reaches its socket.
 */
#include "coord_cli.h"
#include "err.h"
#include "health.h"
#include "log.h"
#include "router_cli.h"
#include "serve.h"
#include "svc_support.h"
#include "wire.h"
#include "worker_cli.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"
#include "core/bundle_fixture.h"

TestSuite(router_svc, .init = rwt_dir_setup, .fini = rwt_dir_teardown, .timeout = 120);

static int expect(wire_t *w, msg_type_t type, msg_t *m)
{
    for (int i = 0; i < 50; i++) {
        int rc = wire_recv(w, m, NULL, 0);
        if (rc == -EAGAIN)
            return -1;
        if (rc == 0 && m->type == type)
            return 0;
        if (rc == 0)
            msg_fini(m);
    }
    return -1;
}

/* A SCORE_REQ of three (prompt, response) pairs about bundle. */
static msg_t score_req(const char *bundle, uint64_t req)
{
    static const char *prompts[] = {"what is 2+2?", "@ the cat sat", "# a dog ran"};
    static const char *responses[] = {"4", "on the mat", "to the park"};
    msg_t m;
    msg_init(&m, MSG_SCORE_REQ);
    m.score_req.req = req;
    m.score_req.bundle = bundle;
    m.score_req.prompts = (msg_strs_t){prompts, 3};
    m.score_req.responses = (msg_strs_t){responses, 3};
    return m;
}

static void score(wire_t *w, const char *bundle, uint64_t req, msg_t *reply)
{
    msg_t m = score_req(bundle, req);
    cr_assert_eq(wire_send(w, NULL, &m, 0), 0);
    msg_init(reply, MSG_NONE);
    /* past the ERRORs (without req) that answered junk sent before */
    for (int i = 0; i < 2000; i++) {
        cr_assert_eq(wire_recv(w, reply, NULL, 0), 0, "no reply to %s", bundle);
        if (reply->type == MSG_SCORE_REP ||
            (reply->type == MSG_ERROR && reply->error.has_req && reply->error.req == req))
            return;
        msg_fini(reply);
    }
}

Test(router_svc, trains_router_tasks_then_serves_bundles)
{
    char state[600], out[600], bundles[700], coord[700], router[700], cache[700];
    snprintf(state, sizeof state, "%s/state", rwt_dir);
    snprintf(out, sizeof out, "%s/out", rwt_dir);
    snprintf(bundles, sizeof bundles, "%s/bundles", out);
    snprintf(coord, sizeof coord, "ipc://%s/coord.sock", rwt_dir);
    snprintf(router, sizeof router, "ipc://%s/router.sock", rwt_dir);
    snprintf(cache, sizeof cache, "%s/cache-r", rwt_dir);
    cr_assert_eq(svc_prepare(state, 40), 0);
    /* --stop-peers, as `rewire run`: its SIGTERM ends the router service */
    const char *cargs[] = {"serve",
                           "--state",
                           state,
                           "--out",
                           out,
                           "--bind",
                           coord,
                           "--heartbeat-ms",
                           "100",
                           "--keep-serving",
                           "--stop-peers",
                           "--config",
                           svc_tiny_config(rwt_dir, 3, 3),
                           NULL};
    pid_t c = svc_spawn(coord_main, "rewire-coordinator", rwt_path(rwt_dir, "coord.log"), cargs);
    /* no --cache: its own folder in $TMPDIR, removed when it ends */
    const char *rargs[] = {"--connect", coord,  "--bind", router, "--bundles",
                           bundles,     "--id", "router", NULL};
    setenv("TMPDIR", rwt_dir, 1);
    pid_t r = svc_spawn(router_main, "rewire-router", rwt_path(rwt_dir, "router.log"), rargs);
    unsetenv("TMPDIR");
    snprintf(cache, sizeof cache, "%s/rewire-cache-%ld", rwt_dir, (long)r);
    const char *wargs[] = {"--connect", coord, "--id", "w1", "--cache", rwt_path(rwt_dir, "cw"),
                           NULL};
    pid_t w = svc_spawn(worker_main, "rewire-worker", rwt_path(rwt_dir, "w1.log"), wargs);
    if (!svc_wait_file(rwt_path(state, "results.json"), 30000)) {
        svc_dump(rwt_path(rwt_dir, "coord.log"));
        svc_dump(rwt_path(rwt_dir, "router.log"));
        cr_assert_fail("the job did not finish");
    }
    cr_assert_eq(access(cache, F_OK), 0, "no %s", cache);
    char *log = rwt_read_file(rwt_path(rwt_dir, "router.log"), NULL);
    cr_assert(strstr(log, "router attempt 1"), "the router service trained the router:\n%s", log);
    cr_assert(strstr(log, "gates attempt 1"));
    free(log);

    void *zctx = zmq_ctx_new(), *sock = zmq_socket(zctx, ZMQ_DEALER);
    int ms = 5000, zero = 0;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    int err;
    wire_t *cw = wire_new(sock, "client", &err);
    cr_assert_eq(zmq_connect(sock, router), 0);
    msg_t rep;
    score(cw, "router", 7, &rep);
    cr_assert_eq(rep.type, MSG_SCORE_REP);
    cr_assert_eq(rep.score_rep.req, 7);
    cr_assert_eq(rep.score_rep.rewards.n, 3);
    cr_assert_eq(rep.score_rep.domains.n, 3, "a router bundle says which domain scored");
    msg_fini(&rep);
    score(cw, "baseline", 8, &rep);
    cr_assert_eq(rep.type, MSG_SCORE_REP);
    cr_assert_eq(rep.score_rep.domains.n, 0, "a baseline does not route");
    msg_fini(&rep);

    const char *prompts[] = {"what is 2+2?", "be brief"};
    msg_t m;
    msg_init(&m, MSG_ROUTE_REQ);
    m.route_req.req = 9;
    m.route_req.bundle = "adapter";
    m.route_req.prompts = (msg_strs_t){prompts, 2};
    cr_assert_eq(wire_send(cw, NULL, &m, 0), 0);
    cr_assert_eq(expect(cw, MSG_ROUTE_REP, &rep), 0);
    cr_assert_eq(rep.route_rep.req, 9);
    cr_assert_eq(rep.route_rep.domains.n, 5);
    cr_assert_eq(rep.route_rep.choice.n, 2);
    cr_assert_eq(rep.route_rep.probs.n, 10);
    msg_fini(&rep);
    /* bad requests: an ERROR each, with their req */
    m.route_req.bundle = "baseline";
    m.route_req.req = 10;
    cr_assert_eq(wire_send(cw, NULL, &m, 0), 0);
    cr_assert_eq(expect(cw, MSG_ERROR, &rep), 0);
    cr_assert_eq(rep.error.req, 10, "a baseline does not route");
    msg_fini(&rep);
    const char *bad[] = {"nope", "../bundles/router", ".hidden"};
    for (int i = 0; i < 3; i++) {
        score(cw, bad[i], 11 + (uint64_t)i, &rep);
        cr_assert_eq(rep.type, MSG_ERROR, "%s", bad[i]);
        cr_assert_eq(rep.error.req, 11 + (uint64_t)i);
        msg_fini(&rep);
    }
    msg_init(&m, MSG_HEARTBEAT);
    m.heartbeat.seq = 1;
    cr_assert_eq(wire_send(cw, NULL, &m, 0), 0);
    cr_assert_eq(expect(cw, MSG_ERROR, &rep), 0, "not a request: an ERROR");
    msg_fini(&rep);
    /* junk of every kind */
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    uint8_t buf[300];
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)(rng % sizeof buf);
        for (size_t k = 0; k < n; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            buf[k] = (uint8_t)rng;
        }
        if (n)
            buf[0] = 0x93;
        zmq_send(sock, buf, n, i % 7 == 0 ? ZMQ_SNDMORE : 0);
    }
    zmq_send(sock, "", 0, 0);
    const uint8_t future[] = {0x93, 0x05, 0x10, 0x80};
    zmq_send(sock, future, sizeof future, 0);
    /* still serving, and a rewritten bundle is opened again */
    char manifest[800];
    snprintf(manifest, sizeof manifest, "%s/router/manifest.json", bundles);
    json_t *j = json_load_file(manifest, 0, NULL);
    json_object_set_new(j, "touched", json_true());
    svc_sleep_ms(20);
    json_dump_file(j, manifest, JSON_INDENT(2));
    json_decref(j);
    score(cw, "router", 20, &rep);
    cr_assert_eq(rep.type, MSG_SCORE_REP);
    cr_assert_eq(rep.score_rep.req, 20);
    msg_fini(&rep);
    wire_destroy(&cw);
    zmq_close(sock);
    zmq_ctx_term(zctx);

    kill(c, SIGTERM);
    cr_assert_eq(svc_wait(c, 10000), 0, "the coordinator stops cleanly");
    cr_assert_eq(svc_wait(r, 10000), 0, "SHUTDOWN ends the router service");
    cr_assert_eq(svc_wait(w, 10000), 0);
    log = rwt_read_file(rwt_path(rwt_dir, "router.log"), NULL);
    int opens = 0;
    for (char *p = log; (p = strstr(p, "bundles/router (")); p++)
        opens++;
    cr_assert_eq(opens, 2, "the rewritten router bundle was opened again:\n%s", log);
    free(log);
    cr_assert_neq(access(cache, F_OK), 0, "the router service left its cache %s", cache);
}

/* A server on an ipc socket in the test's folder (bind gets its endpoint,
 * 700 bytes), serving the (empty) folder itself. */
static rsvc_t *serve_here(void *ctx, char *bind)
{
    char why[256];
    snprintf(bind, 700, "ipc://%s/serve.sock", rwt_dir);
    rsvc_t *s = rsvc_new(ctx, bind, rwt_dir, 1, NULL, why, sizeof why);
    cr_assert_not_null(s, "%s", why);
    return s;
}

/* A client that floods requests and vanishes cannot park more than a few
 * dozen of them in the service: ZeroMQ stops reading it past the mark. */
Test(router_svc, requests_queue_only_so_deep_for_one_client)
{
    void *ctx = zmq_ctx_new();
    char bind[700];
    rsvc_t *s = serve_here(ctx, bind);
    int hwm = 0;
    size_t len = sizeof hwm;
    cr_assert_eq(zmq_getsockopt(rsvc_socket(s), ZMQ_RCVHWM, &hwm, &len), 0);
    cr_assert_eq(hwm, RSVC_QUEUE_MAX);
    cr_assert_lt(RSVC_QUEUE_MAX, 1000, "below ZeroMQ's default");
    len = sizeof hwm;
    cr_assert_eq(zmq_getsockopt(rsvc_socket(s), ZMQ_SNDHWM, &hwm, &len), 0);
    cr_assert_eq(hwm, RSVC_ANSWERS_MAX, "answers held for a client that does not read");
    cr_assert_lt(RSVC_ANSWERS_MAX, 1000);
    int64_t max = 0;
    len = sizeof max;
    cr_assert_eq(zmq_getsockopt(rsvc_socket(s), ZMQ_MAXMSGSIZE, &max, &len), 0);
    cr_assert_eq(max, (int64_t)MSG_MAX_BYTES);
    rsvc_destroy(&s);
    zmq_ctx_term(ctx);
}

/* A request that cannot be read still gets an answer saying why, so its
 * client does not wait for ever; its req is unknown, so the ERROR has none.
 * What claims to be an answer, well formed or not, is never answered. */
Test(router_svc, an_unreadable_request_is_answered_with_why)
{
    void *ctx = zmq_ctx_new();
    char bind[700];
    rsvc_t *s = serve_here(ctx, bind);
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int err = 0, timeout = 5000;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    wire_t *cw = wire_new(sock, "client", &err);
    cr_assert_not_null(cw);
    cr_assert_eq(zmq_connect(sock, bind), 0);

    /* [version, SCORE_REQ, {req 7, bundle "router", 2 prompts, 1 response}] */
    static const uint8_t score[] = "\x93\x01\x10\x84\xa3req\x07\xa6"
                                   "bundle\xa6router\xa7prompts\x92\xa1"
                                   "a\xa1"
                                   "b\xa9responses\x91\xa1"
                                   "a";
    cr_assert_eq(PROTO_VERSION, 1, "the bytes above carry version 1");
    /* [version, ERROR, {bogus: 1}]: a malformed answer */
    static const uint8_t answer[] = "\x93\x01\x09\x81\xa5"
                                    "bogus\x01";
    /* [version, SCORE_REQ, {"\xff\xfe": 1}]: a field name that is not UTF-8 */
    static const uint8_t bytes[] = "\x93\x01\x10\x81\xa2\xff\xfe\x01";
    cr_assert_eq(zmq_send(sock, score, sizeof score - 1, 0), (int)sizeof score - 1);
    cr_assert_eq(zmq_send(sock, answer, sizeof answer - 1, 0), (int)sizeof answer - 1);
    cr_assert_eq(zmq_send(sock, bytes, sizeof bytes - 1, 0), (int)sizeof bytes - 1);
    msg_t m;
    double reward = 0.5; /* a well-formed answer, sent to the service: not answered either */
    msg_init(&m, MSG_SCORE_REP);
    m.score_rep.req = 5;
    m.score_rep.rewards = (msg_f64s_t){&reward, 1};
    cr_assert_eq(wire_send(cw, NULL, &m, 0), 0);
    msg_init(&m, MSG_HEALTH_REQ);
    m.health_req.req = 8;
    cr_assert_eq(wire_send(cw, NULL, &m, 0), 0);
    for (int i = 0; i < 200; i++) {
        rsvc_drain(s);
        svc_sleep_ms(5);
    }

    msg_t rep;
    cr_assert_eq(wire_recv(cw, &rep, NULL, 0), 0, "the unreadable SCORE_REQ is answered");
    cr_assert_eq(rep.type, MSG_ERROR, "%s", msg_type_name(rep.type));
    cr_assert(!rep.error.has_req);
    cr_assert_not_null(strstr(rep.error.text, "SCORE_REQ"), "%s", rep.error.text);
    cr_assert_not_null(strstr(rep.error.text, "responses"), "%s", rep.error.text);
    msg_fini(&rep);
    cr_assert_eq(wire_recv(cw, &rep, NULL, 0), 0, "so is the one with a field name not UTF-8");
    cr_assert_eq(rep.type, MSG_ERROR, "%s", msg_type_name(rep.type));
    cr_assert_not_null(strstr(rep.error.text, "unknown field '?"
                                              "?'"),
                       "%s", rep.error.text);
    msg_fini(&rep);
    cr_assert_eq(wire_recv(cw, &rep, NULL, 0), 0);
    cr_assert_eq(rep.type, MSG_HEALTH_REP, "the bad ERROR got no answer, the HEALTH_REQ did: %s",
                 msg_type_name(rep.type));
    cr_assert_eq(rep.health_rep.req, 8);
    msg_fini(&rep);
    rsvc_stats_t st;
    rsvc_stats(s, &st);
    cr_assert_eq(st.wire.dropped_total, 4);
    cr_assert_eq(st.errors, 2, "two ERRORs went out");

    wire_destroy(&cw);
    zmq_close(sock);
    rsvc_destroy(&s);
    zmq_ctx_term(ctx);
}

/* Asks for health over a DEALER (CURVE as own of srv, unless own is NULL);
 * whether a HEALTH_REP came while s drained for a while. */
static bool health_answered(void *ctx, rsvc_t *s, const char *bind, const curve_key_t *own,
                            const curve_key_t *srv)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int err = 0, zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (own)
        cr_assert_eq(curve_client(sock, own, srv), 0);
    wire_t *cw = wire_new(sock, "client", &err);
    cr_assert_eq(zmq_connect(sock, bind), 0);
    msg_t m, rep;
    msg_init(&m, MSG_HEALTH_REQ);
    m.health_req.req = 3;
    wire_send(cw, NULL, &m, ZMQ_DONTWAIT);
    bool got = false;
    for (int i = 0; i < 100 && !got; i++) {
        rsvc_drain(s);
        svc_sleep_ms(5);
        if (wire_recv(cw, &rep, NULL, ZMQ_DONTWAIT) == 0) {
            got = rep.type == MSG_HEALTH_REP;
            msg_fini(&rep);
        }
    }
    wire_destroy(&cw);
    zmq_close(sock);
    return got;
}

/* With --key and --allow the served socket is a CURVE server that answers
 * only the clients listed. */
Test(router_svc, with_curve_keys_only_listed_clients_are_answered)
{
    char why[512], bind[700], stem[700], key[720], pub[720], other[720];
    const char *names[] = {"router", "client", "stranger"};
    curve_key_t k[3];
    for (int i = 0; i < 3; i++) {
        snprintf(stem, sizeof stem, "%s/%s", rwt_dir, names[i]);
        cr_assert_eq(curve_key_new(stem, why, sizeof why), 0, "%s", why);
        snprintf(key, sizeof key, "%s.key", stem);
        cr_assert_eq(curve_key_load(key, true, &k[i], why, sizeof why), 0, "%s", why);
    }
    snprintf(key, sizeof key, "%s/router.key", rwt_dir);
    snprintf(pub, sizeof pub, "%s/client.pub", rwt_dir);
    snprintf(other, sizeof other, "%s/stranger.pub", rwt_dir);
    curve_opts_t o = {.key_file = key, .allow = pub};
    void *ctx = zmq_ctx_new();
    snprintf(bind, sizeof bind, "ipc://%s/serve.sock", rwt_dir);
    rsvc_t *s = rsvc_new(ctx, bind, rwt_dir, 1, &o, why, sizeof why);
    cr_assert_not_null(s, "%s", why);
    cr_assert(health_answered(ctx, s, bind, &k[1], &k[0]), "the listed client got no answer");
    cr_assert_not(health_answered(ctx, s, bind, &k[2], &k[0]), "an unlisted client was answered");
    cr_assert_not(health_answered(ctx, s, bind, NULL, NULL), "a plain client was answered");
    rsvc_destroy(&s);
    /* a bad --allow stops the server before it binds, saying why */
    o.allow = other;
    o.key_file = pub; /* a public key cannot serve */
    cr_assert_null(rsvc_new(ctx, bind, rwt_dir, 1, &o, why, sizeof why));
    cr_assert(strstr(why, "holds a public key only"), "%s", why);
    zmq_ctx_term(ctx);
}

/* Sends m on cw and drains s until the answer to req comes (or 2 s). */
static bool ask(rsvc_t *s, wire_t *cw, const msg_t *m, uint64_t req, msg_t *reply)
{
    cr_assert_eq(wire_send(cw, NULL, m, 0), 0);
    for (int i = 0; i < 400; i++) {
        rsvc_drain(s);
        if (wire_recv(cw, reply, NULL, ZMQ_DONTWAIT) != 0) {
            svc_sleep_ms(5);
            continue;
        }
        uint64_t got = reply->type == MSG_SCORE_REP    ? reply->score_rep.req
                       : reply->type == MSG_ROUTE_REP  ? reply->route_rep.req
                       : reply->type == MSG_HEALTH_REP ? reply->health_rep.req
                       : reply->type == MSG_ERROR      ? reply->error.req
                                                       : ~req;
        if (got == req)
            return true;
        msg_fini(reply);
    }
    return false;
}

/* Replaces dir's manifest.json with text, as a writer would (renamed in). */
static void replace_manifest(const char *dir, const char *text)
{
    char tmp[800], path[800];
    snprintf(tmp, sizeof tmp, "%s/manifest.json.new", dir);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    rwt_write_file(tmp, text, strlen(text));
    cr_assert_eq(rename(tmp, path), 0);
}

/* A route answer carries the router's probability of every domain; a new
 * version of a bundle that does not open leaves the last good one served;
 * a manifest that is a FIFO is refused at once (it used to hold the whole
 * service in open()); health counts only what can be served. */
Test(router_svc, bad_bundles_on_disk_never_stop_the_service)
{
    bfx_t F;
    char art[256], bind[700], fifo[800], none[800], router[800];
    snprintf(art, sizeof art, "%.200s/art", rwt_dir);
    cr_assert_eq(mkdir(art, 0755), 0);
    bfx_build(&F, art);
    snprintf(router, sizeof router, "%s", bfx_write(&F, RW_BUNDLE_ROUTER, "router"));
    char *good = rwt_read_file(rwt_path(router, "manifest.json"), NULL);
    void *ctx = zmq_ctx_new();
    snprintf(bind, sizeof bind, "ipc://%s/serve.sock", rwt_dir);
    char why[512];
    rsvc_t *s = rsvc_new(ctx, bind, art, 1, NULL, why, sizeof why);
    cr_assert_not_null(s, "%s", why);
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int err = 0, zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    wire_t *cw = wire_new(sock, "client", &err);
    cr_assert_eq(zmq_connect(sock, bind), 0);

    /* routing: probabilities that sum to one, highest for the choice */
    const char *prompts[] = {"@ the cat sat", "# a dog ran", "% green apple"};
    msg_t m, rep;
    msg_init(&m, MSG_ROUTE_REQ);
    m.route_req.req = 1;
    m.route_req.bundle = "router";
    m.route_req.prompts = (msg_strs_t){prompts, 3};
    cr_assert(ask(s, cw, &m, 1, &rep), "no answer to ROUTE_REQ");
    cr_assert_eq(rep.type, MSG_ROUTE_REP, "%s", msg_type_name(rep.type));
    size_t nd = rep.route_rep.domains.n;
    cr_assert_eq(nd, 3);
    bool graded = false;
    for (size_t i = 0; i < 3; i++) {
        const float *p = rep.route_rep.probs.v + i * nd;
        double sum = 0;
        for (size_t d = 0; d < nd; d++) {
            sum += p[d];
            cr_assert_leq(p[d], p[rep.route_rep.choice.v[i]], "the choice is not the likeliest");
        }
        cr_assert_float_eq(sum, 1.0, 1e-5);
        graded |= p[rep.route_rep.choice.v[i]] < 0.999999f;
    }
    cr_assert(graded, "every probability is one-hot");
    msg_fini(&rep);

    /* a version that does not open: the last good one goes on */
    m = score_req("router", 2);
    cr_assert(ask(s, cw, &m, 2, &rep));
    cr_assert_eq(rep.type, MSG_SCORE_REP);
    double first = rep.score_rep.rewards.v[0];
    msg_fini(&rep);
    replace_manifest(router, "not json {");
    m = score_req("router", 3);
    cr_assert(ask(s, cw, &m, 3, &rep));
    cr_assert_eq(rep.type, MSG_SCORE_REP, "the good version was dropped: %s",
                 rep.type == MSG_ERROR ? rep.error.text : msg_type_name(rep.type));
    cr_assert_eq(rep.score_rep.rewards.v[0], first);
    msg_fini(&rep);
    replace_manifest(router, good);
    free(good);

    /* a FIFO for a manifest, and a bundle that never opened */
    snprintf(fifo, sizeof fifo, "%s/r4", art);
    cr_assert_eq(mkdir(fifo, 0755), 0);
    cr_assert_eq(mkfifo(rwt_path(fifo, "manifest.json"), 0644), 0);
    m = score_req("r4", 4);
    cr_assert(ask(s, cw, &m, 4, &rep), "a FIFO manifest holds the service");
    cr_assert_eq(rep.type, MSG_ERROR);
    cr_assert(strstr(rep.error.text, "manifest.json is not a regular file"), "%s", rep.error.text);
    msg_fini(&rep);
    snprintf(none, sizeof none, "%s/x", art);
    cr_assert_eq(mkdir(none, 0755), 0);
    replace_manifest(none, "garbage");
    m = score_req("x", 5);
    cr_assert(ask(s, cw, &m, 5, &rep));
    cr_assert_eq(rep.type, MSG_ERROR);
    cr_assert(strstr(rep.error.text, "bundle 'x': "), "%s", rep.error.text);
    msg_fini(&rep);
    msg_init(&m, MSG_HEALTH_REQ);
    m.health_req.req = 6;
    cr_assert(ask(s, cw, &m, 6, &rep), "no answer to HEALTH_REQ");
    cr_assert_eq(rep.type, MSG_HEALTH_REP);
    cr_assert_eq(rep.health_rep.bundles, 1, "router alone can be served, not %" PRIu64,
                 rep.health_rep.bundles);
    msg_fini(&rep);

    wire_destroy(&cw);
    zmq_close(sock);
    rsvc_destroy(&s);
    zmq_ctx_term(ctx);
    bfx_free(&F);
}

/* ---- clients that vanish before their answer ---- */

static pid_t served; /* the router service a test spawned */

/* A test's .fini (before the suite's): a test that failed leaves no
 * service behind. */
static void stop_served(void)
{
    svc_kill(served);
    served = 0;
}

/* Spawns `rewire-router` serving a router bundle of the fixture on an ipc
 * socket (its endpoint into bind, 700 bytes), logging to router.log, and
 * connects cw_p's DEALER to it; returns the DEALER. */
static void *serve_fixture(void *ctx, bfx_t *F, char *bind, wire_t **cw_p)
{
    char art[256];
    snprintf(art, sizeof art, "%.200s/art", rwt_dir);
    cr_assert_eq(mkdir(art, 0755), 0);
    bfx_build(F, art);
    bfx_write(F, RW_BUNDLE_ROUTER, "router");
    snprintf(bind, 700, "ipc://%s/serve.sock", rwt_dir);
    const char *args[] = {"--bundles", art, "--bind", bind, NULL};
    served = svc_spawn(router_main, "rewire-router", rwt_path(rwt_dir, "router.log"), args);
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int err = 0, zero = 0, ms = 10000;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    *cw_p = wire_new(sock, "client", &err);
    cr_assert_eq(zmq_connect(sock, bind), 0);
    return sock;
}

/* VmRSS of process pid, in KiB (0 if unknown). */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = 0;
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f) && sscanf(line, "VmRSS: %ld", &kib) != 1) {
    }
    if (f)
        fclose(f);
    return kib;
}

/* Milliseconds the good client's SCORE_REQ req took to be answered. */
static long score_ms(wire_t *cw, uint64_t req)
{
    msg_t rep;
    uint64_t t0 = rw_now_ms();
    score(cw, "router", req, &rep);
    cr_assert_eq(rep.type, MSG_SCORE_REP, "%s", msg_type_name(rep.type));
    msg_fini(&rep);
    return (long)(rw_now_ms() - t0);
}

/* n clients, 100 at a time, each connecting and sending what send gives
 * it (its number i), then closing with linger 0 before the answer is
 * read; the good client on cw is asked after each hundred. Returns the
 * longest it waited, in milliseconds. */
static long vanish(void *ctx, const char *bind, int n, void (*send)(void *sock, int i), wire_t *cw)
{
    long worst = 0;
    int zero = 0;
    for (int k = 0; k < n; k += 100) {
        void *gone[100];
        int m = n - k < 100 ? n - k : 100;
        for (int i = 0; i < m; i++) {
            gone[i] = zmq_socket(ctx, ZMQ_DEALER);
            zmq_setsockopt(gone[i], ZMQ_LINGER, &zero, sizeof zero);
            zmq_connect(gone[i], bind);
            send(gone[i], k + i);
        }
        svc_sleep_ms(20); /* on their way, most of them */
        for (int i = 0; i < m; i++)
            zmq_close(gone[i]);
        long ms = score_ms(cw, 1000 + (uint64_t)k);
        worst = ms > worst ? ms : worst;
    }
    return worst;
}

static void send_score_req(void *sock, int i)
{
    int err;
    wire_t *w = wire_new(sock, "gone", &err);
    msg_t m = score_req("router", (uint64_t)i);
    wire_send(w, NULL, &m, ZMQ_DONTWAIT);
    wire_destroy(&w);
}

/* What the service must survive from each of many peers: one of truncated
 * MessagePack, another protocol version, a frame over ZMQ_MAXMSGSIZE, or a
 * message of many frames. */
static void send_garbage(void *sock, int i)
{
    static const uint8_t trunc[] = {0x93, 0x01, 0x10, 0x84, 0xa3, 'r', 'e', 'q'};
    static const uint8_t future[] = {0x93, 0x05, 0x10, 0x80};
    static uint8_t huge[MSG_MAX_BYTES + 1] = {0x93};
    switch (i % 4) {
    case 0:
        zmq_send(sock, trunc, sizeof trunc, ZMQ_DONTWAIT);
        break;
    case 1:
        zmq_send(sock, future, sizeof future, ZMQ_DONTWAIT);
        break;
    case 2:
        zmq_send_const(sock, huge, sizeof huge, ZMQ_DONTWAIT);
        break;
    default:
        for (int f = 0; f < 20; f++)
            zmq_send_const(sock, huge, 1000, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(sock, trunc, sizeof trunc, ZMQ_DONTWAIT);
    }
}

/* Lines of the service's log that report drops. */
static int drop_lines(void)
{
    char *log = rwt_read_file(rwt_path(rwt_dir, "router.log"), NULL);
    int n = 0;
    for (char *p = log; p && (p = strstr(p, "dropped")); p++)
        n++;
    free(log);
    return n;
}

/* Serves the fixture while 500 clients send what send gives them and
 * vanish; checks that the good client was answered within 3 s throughout,
 * the service's RSS grew by less than 64 MiB, and it is still up, answers
 * a health probe truthfully (one bundle) and stops cleanly on SIGTERM.
 * Returns its log's lines on drops. */
static int burst(const char *what, void (*send)(void *sock, int i))
{
    bfx_t F;
    char bind[700], why[512];
    wire_t *cw;
    void *ctx = zmq_ctx_new(), *sock = serve_fixture(ctx, &F, bind, &cw);
    for (int i = 0; i < 20; i++)
        score_ms(cw, 1 + (uint64_t)i); /* the first opens the bundle */
    long before = rss_kib(served);
    long worst = vanish(ctx, bind, 500, send, cw);
    long after = rss_kib(served);
    int lines = drop_lines();
    cr_log_info("%s from 500 vanishing clients: the good one waited %ld ms at most; RSS %ld KiB "
                "before, %ld after; %d log lines on drops",
                what, worst, before, after, lines);
    cr_assert_lt(worst, 3000, "the good client waited %ld ms", worst);
    cr_assert_lt(after - before, 64 << 10, "RSS %ld -> %ld KiB", before, after);
    cr_assert_eq(svc_wait(served, 0), -1, "the router service died");
    msg_t rep;
    cr_assert_eq(health_ask(bind, NULL, NULL, 2000, &rep, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(rep.health_rep.service, "router");
    cr_assert_eq(rep.health_rep.bundles, 1, "%" PRIu64, rep.health_rep.bundles);
    msg_fini(&rep);
    wire_destroy(&cw);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    kill(served, SIGTERM);
    cr_assert_eq(svc_wait(served, 10000), 0, "the router service did not stop cleanly");
    served = 0;
    bfx_free(&F);
    return lines;
}

/* Clients that send a request and vanish before its answer: the answers
 * to them go nowhere (EHOSTUNREACH under ZMQ_ROUTER_MANDATORY, not
 * queued), and a valid request is no drop, wherever its client went. */
Test(router_svc, clients_that_vanish_leave_it_serving, .fini = stop_served)
{
    cr_assert_eq(burst("SCORE_REQs", send_score_req), 0);
}

/* Garbage of every kind from peers that vanish: a few lines in the log,
 * not one a peer (each reconnecting client is a new peer to a ROUTER). */
Test(router_svc, garbage_from_many_vanishing_peers_is_logged_a_few_times, .fini = stop_served)
{
    int lines = burst("garbage", send_garbage);
    cr_assert_gt(lines, 0, "drops are logged");
    cr_assert_leq(lines, 20, "%d lines on drops from 500 peers", lines);
}

/* A unix socket file at path that nobody listens on (what a process killed
 * while serving leaves). */
static void stale_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s", strerror(errno));
    close(fd);
}

/* Binding ipc://PATH, ZeroMQ unlinks what is there: a second service given
 * a live one's path would take its socket. It is refused instead, the first
 * goes on serving, and a stale file is bound over. The socket file goes
 * when the service closes, unless it is no longer the service's own. */
Test(router_svc, an_ipc_path_in_use_is_refused_and_its_file_goes_with_the_service)
{
    void *ctx = zmq_ctx_new();
    char bind[700], why[512];
    const char *path = rwt_path(rwt_dir, "serve.sock");
    rsvc_t *s = serve_here(ctx, bind);
    cr_assert_null(rsvc_new(ctx, bind, rwt_dir, 1, NULL, why, sizeof why),
                   "a second service took %s", bind);
    cr_assert(strstr(why, "is in use by a running service"), "%s", why);

    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int err = 0, zero = 0, ms = 5000;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
    wire_t *cw = wire_new(sock, "client", &err);
    cr_assert_eq(zmq_connect(sock, bind), 0);
    msg_t m, rep;
    msg_init(&m, MSG_HEALTH_REQ);
    m.health_req.req = 7;
    cr_assert_eq(wire_send(cw, NULL, &m, 0), 0);
    for (int i = 0; i < 200; i++) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 0) > 0)
            break;
        rsvc_drain(s);
        svc_sleep_ms(10);
    }
    cr_assert_eq(expect(cw, MSG_HEALTH_REP, &rep), 0, "the first service no longer answers");
    msg_fini(&rep);
    wire_destroy(&cw);
    zmq_close(sock);

    rsvc_destroy(&s);
    cr_assert_neq(access(path, F_OK), 0, "the service left its socket file %s", path);

    stale_socket(path);
    s = serve_here(ctx, bind); /* over the stale file */
    /* the path taken over by another since (its file replaced): not ours */
    cr_assert_eq(unlink(path), 0);
    stale_socket(path);
    rsvc_destroy(&s);
    cr_assert_eq(access(path, F_OK), 0, "the service removed a socket file not its own");
    zmq_ctx_term(ctx);
}

/* The router service's --bind on its own --connect would bind over the
 * coordinator it means to reach: a usage error. */
Test(router_svc, a_bind_on_its_own_connect_is_refused)
{
    char ep[700];
    snprintf(ep, sizeof ep, "ipc://%s/coord.sock", rwt_dir);
    const char *log = rwt_path(rwt_dir, "router.log");
    const char *args[] = {"--bundles", rwt_dir, "--bind", ep, "--connect", ep, NULL};
    pid_t r = svc_spawn(router_main, "rewire-router", log, args);
    int rc = svc_wait(r, 5000);
    if (rc == -1)
        svc_kill(r);
    char *text = rwt_read_file(log, NULL);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, text);
    cr_assert(text && strstr(text, "is the coordinator's (--connect)"), "%s", text);
    free(text);
}

/* ---- work for clients that are gone ---- */

#define BIG_ITEMS 64
#define BIG_BYTES 16000

/* A SCORE_REQ of BIG_ITEMS pairs of BIG_BYTES-byte texts: as much scoring
 * as one request may ask. The texts live in a static buffer. */
static msg_t big_score_req(uint64_t req)
{
    static char text[BIG_BYTES + 1];
    static const char *v[BIG_ITEMS];
    if (!text[0]) {
        for (size_t i = 0; i < BIG_BYTES; i++)
            text[i] = i % 7 == 6 ? ' ' : (char)('a' + (i * 31 % 26));
        text[0] = '@';
        for (int i = 0; i < BIG_ITEMS; i++)
            v[i] = text;
    }
    msg_t m;
    msg_init(&m, MSG_SCORE_REQ);
    m.score_req.req = req;
    m.score_req.bundle = "router";
    m.score_req.prompts = (msg_strs_t){v, BIG_ITEMS};
    m.score_req.responses = (msg_strs_t){v, BIG_ITEMS};
    return m;
}

/* Milliseconds one big request takes, asked and answered. */
static long big_ms(wire_t *cw, uint64_t req)
{
    msg_t m = big_score_req(req), rep;
    uint64_t t0 = rw_now_ms();
    cr_assert_eq(wire_send(cw, NULL, &m, 0), 0);
    cr_assert_eq(expect(cw, MSG_SCORE_REP, &rep), 0);
    msg_fini(&rep);
    return (long)(rw_now_ms() - t0);
}

/* GONE clients each queue as many big requests as the service takes from
 * one client, and go before their answers: the service does not go on
 * scoring for them, so a client asking next waits about one big request
 * (the one being scored as they went), not a round of them per request. */
#define GONE 16
Test(router_svc, a_gone_clients_queued_work_is_not_done, .fini = stop_served)
{
    bfx_t F;
    char bind[700];
    wire_t *cw;
    void *ctx = zmq_ctx_new(), *sock = serve_fixture(ctx, &F, bind, &cw);
    score_ms(cw, 1); /* opens the bundle */
    long one = big_ms(cw, 2);
    void *gone[GONE];
    int zero = 0, err;
    for (int g = 0; g < GONE; g++) {
        gone[g] = zmq_socket(ctx, ZMQ_DEALER);
        zmq_setsockopt(gone[g], ZMQ_LINGER, &zero, sizeof zero);
        cr_assert_eq(zmq_connect(gone[g], bind), 0);
        wire_t *gw = wire_new(gone[g], "gone", &err);
        for (int i = 0; i < RSVC_QUEUE_MAX; i++) {
            msg_t m = big_score_req(100 + (uint64_t)i);
            cr_assert_eq(wire_send(gw, NULL, &m, 0), 0);
        }
        wire_destroy(&gw);
    }
    svc_sleep_ms(100); /* on their way, and scoring begun */
    for (int g = 0; g < GONE; g++)
        zmq_close(gone[g]);
    uint64_t t0 = rw_now_ms();
    long worst = 0;
    for (int i = 0; i < 5; i++) {
        long ms = score_ms(cw, 3 + (uint64_t)i);
        worst = ms > worst ? ms : worst;
    }
    long waited = (long)(rw_now_ms() - t0);
    cr_log_info("one big request takes %ld ms; after %d clients queued %d each and went, the "
                "next client's 5 small requests took %ld ms (the longest %ld)",
                one, GONE, RSVC_QUEUE_MAX, waited, worst);
    cr_assert_lt(waited, 10 * one + 300, "waited %ld ms; one big request takes %ld", waited, one);
    wire_destroy(&cw);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    bfx_free(&F);
}

/* ---- huge messages ---- */

/* A SCORE_REQ that claims a million pairs (within MSG_MAX_BYTES: one-byte
 * strings) is refused by the decoder's item cap before anything is
 * allocated for them, with an ERROR saying so; a 256 MiB frame cuts its
 * connection off at its header (ZMQ_MAXMSGSIZE). Neither costs the
 * service more than a few MiB, and the next client is answered. (A
 * message of very many frames is held whole by libzmq before the service
 * sees any of it: see router-svc/README.md.) */
Test(router_svc, huge_requests_cost_little_memory, .fini = stop_served)
{
    bfx_t F;
    char bind[700];
    wire_t *cw;
    void *ctx = zmq_ctx_new(), *sock = serve_fixture(ctx, &F, bind, &cw);
    score_ms(cw, 1);
    long before = rss_kib(served);
    enum { N = 1000000 };
    size_t len = 0, cap = 64 + 4 * (size_t)N + 64;
    uint8_t *b = malloc(cap);
    const uint8_t head[] = "\x93\x01\x10\x84\xa3req\x07\xa6"
                           "bundle\xa6router";
    memcpy(b, head, sizeof head - 1), len = sizeof head - 1;
    for (int f = 0; f < 2; f++) {
        const char *name = f ? "\xa9responses" : "\xa7prompts";
        memcpy(b + len, name, strlen(name)), len += strlen(name);
        uint8_t arr[5] = {0xdd, N >> 24, (N >> 16) & 0xff, (N >> 8) & 0xff, N & 0xff};
        memcpy(b + len, arr, 5), len += 5;
        for (int i = 0; i < N; i++)
            b[len++] = 0xa1, b[len++] = 'a';
    }
    cr_assert_lt(len, MSG_MAX_BYTES);
    cr_assert_eq(zmq_send(sock, b, len, 0), (int)len);
    free(b);
    msg_t rep;
    cr_assert_eq(expect(cw, MSG_ERROR, &rep), 0, "the million pairs are answered");
    cr_assert_not_null(strstr(rep.error.text, "too big"), "%s", rep.error.text);
    msg_fini(&rep);

    static uint8_t huge[256 << 20]; /* zero pages: the test does not touch them */
    void *big = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(big, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_connect(big, bind), 0);
    zmq_send_const(big, huge, sizeof huge, 0);
    svc_sleep_ms(500);
    zmq_close(big);
    long after = rss_kib(served);
    long ms = score_ms(cw, 2);
    cr_log_info("a million pairs and a 256 MiB frame: RSS %ld -> %ld KiB; then answered in %ld ms",
                before, after, ms);
    cr_assert_lt(after - before, 16 << 10, "RSS %ld -> %ld KiB", before, after);
    wire_destroy(&cw);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    bfx_free(&F);
}
