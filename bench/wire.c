/* wire.c — benchmark: an artifact upload over TCP loopback, against plain ZeroMQ.
 *
 * The upload is the real path a worker takes: a DEALER sends ART_BEGIN,
 * ART_CHUNKs against credit and ART_END through wire_send; a ROUTER in
 * another thread (with its own ZeroMQ context, as another process would
 * have) decodes every message, checks it against the table, checksums the
 * bytes, writes them to a sink and acks. The baseline moves the same bytes
 * in frames of the same size over the same kind of socket pair with no
 * protocol at all: the sender sends every frame, the receiver takes them and
 * sends one ack. Both are timed from the first byte to the ack, after the
 * connection is up.
 *
 * Each pair is like for like at the receiver, and both pairs run:
 *   discard  plain drops each frame; the upload's sink drops the bytes (its
 *            receiver still checksums every one against ART_END);
 *   memory   both write every byte into a fresh xfer_mem_sink_t, and the
 *            bytes are compared with the original after the run.
 * The four runs alternate within each repetition; each reports its best.
 *
 * Usage: bench/wire [MIB [REPS [CHUNK_KIB [WINDOW]]]] (default 64 7 1024 8).
 * Prints a line per repetition (MB/s, wall and whole-process CPU ms) and
 * one JSON object per pair: {"bench":"wire_upload","sink","bytes","chunk",
 * "window","reps","plain_mb_s","xfer_mb_s","ratio"} (MB = 10^6 bytes).
 */
#include "blas.h"
#include "checksum.h"
#include "err.h"
#include "log.h"
#include "wire.h"
#include "xfer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

typedef struct bench {
    size_t bytes, chunk;
    uint32_t window;
    const uint8_t *data;
    bool land; /* the memory pair, else discard */
    char endpoint[256];
    void *ctx, *sock; /* the receiver's */
    wire_t *w;        /* on sock, for the upload */
    xfer_mem_sink_t sink;
    uint64_t dropped; /* bytes the discarding sink took */
    int result;       /* the receiver's verdict: 0 ok */
    double cpu;       /* CPU seconds of the process while the bytes moved */
} bench_t;

/* CPU seconds of the whole process (all threads) so far. */
static double cpu(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
           ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) / 1e6;
}

/* The discarding sink: counts bytes into the bench's dropped. */
static int drop_open(void *sink, const msg_art_begin_t *b)
{
    (void)b;
    ((bench_t *)sink)->dropped = 0;
    return 0;
}
static int drop_write(void *sink, uint64_t off, const void *p, size_t n)
{
    (void)off, (void)p;
    ((bench_t *)sink)->dropped += n;
    return 0;
}
static int drop_commit(void *sink)
{
    (void)sink;
    return 0;
}
static void drop_abort(void *sink)
{
    ((bench_t *)sink)->dropped = 0;
}
static const struct xfer_sink_ops drop_ops = {drop_open, drop_write, drop_commit, drop_abort};

/* A ROUTER on an ephemeral loopback port in its own context. */
static int receiver_open(bench_t *b, bool proto)
{
    size_t len = sizeof b->endpoint;
    b->ctx = zmq_ctx_new();
    b->sock = zmq_socket(b->ctx, ZMQ_ROUTER);
    b->w = NULL;
    if (proto && !(b->w = wire_new(b->sock, "bench-receiver", NULL))) /* before bind */
        return -1;
    if (zmq_bind(b->sock, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(b->sock, ZMQ_LAST_ENDPOINT, b->endpoint, &len) != 0)
        return -1;
    return 0;
}

static void receiver_close(bench_t *b)
{
    wire_destroy(&b->w);
    zmq_close(b->sock);
    zmq_ctx_term(b->ctx);
}

/* Plain ZeroMQ: a ping, then frames until all bytes came, then one ack. */
static void *plain_receiver(void *arg)
{
    bench_t *b = arg;
    zmq_msg_t id, body;
    size_t got = 0;
    bool ping = true;
    msg_art_begin_t begin = {.size = b->bytes};
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    b->result = -1;
    if (b->land)
        xfer_mem_sink_ops.open(&b->sink, &begin);
    while (ping || got < b->bytes) {
        if (zmq_msg_recv(&id, b->sock, 0) < 0 || zmq_msg_recv(&body, b->sock, 0) < 0)
            return NULL;
        if (ping) {
            zmq_send(b->sock, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
            zmq_send(b->sock, "pong", 4, 0);
            ping = false;
            continue;
        }
        if (b->land &&
            xfer_mem_sink_ops.write(&b->sink, got, zmq_msg_data(&body), zmq_msg_size(&body)) < 0)
            return NULL;
        got += zmq_msg_size(&body);
    }
    zmq_send(b->sock, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
    zmq_send(b->sock, "ok", 2, 0);
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    b->result = got == b->bytes ? 0 : -1;
    return NULL;
}

/* The upload: a HEARTBEAT ping, then one artifact into the sink. */
static void *xfer_receiver(void *arg)
{
    bench_t *b = arg;
    xfer_recv_opts_t o = {.window = b->window};
    xfer_recv_t *r =
        b->land ? xfer_recv_new(&o, &xfer_mem_sink_ops, &b->sink) : xfer_recv_new(&o, &drop_ops, b);
    b->result = -1;
    while (xfer_recv_status(r) == 0) {
        msg_t m, out;
        wire_peer_t from;
        if (wire_recv(b->w, &m, &from, 0) < 0)
            break;
        if (m.type == MSG_HEARTBEAT)
            wire_send(b->w, &from, &m, 0);
        else
            xfer_recv_input(r, &m);
        msg_fini(&m);
        while (xfer_recv_next(r, &out) == 1)
            wire_send(b->w, &from, &out, 0);
    }
    b->result = xfer_recv_status(r) == 1 ? 0 : -1;
    if (!b->land && b->dropped != b->bytes)
        b->result = -1;
    xfer_recv_destroy(&r);
    return NULL;
}

/* A DEALER in its own context (with a wire for the upload, set up before
 * it connects). */
static void *sender_open(bool proto, void **ctx, wire_t **w)
{
    *ctx = zmq_ctx_new();
    void *s = zmq_socket(*ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    *w = proto ? wire_new(s, "bench-sender", NULL) : NULL;
    return s;
}

static double plain_send(bench_t *b, void *s)
{
    char ack[8];
    zmq_send(s, "ping", 4, 0);
    if (zmq_recv(s, ack, sizeof ack, 0) < 0)
        return -1;
    double t0 = rw_now_s(), c0 = cpu();
    for (size_t off = 0; off < b->bytes; off += b->chunk) {
        size_t n = b->bytes - off < b->chunk ? b->bytes - off : b->chunk;
        if (zmq_send(s, b->data + off, n, 0) < 0)
            return -1;
    }
    if (zmq_recv(s, ack, sizeof ack, 0) < 0)
        return -1;
    b->cpu = cpu() - c0;
    return rw_now_s() - t0;
}

static double xfer_send(bench_t *b, wire_t *w, uint64_t id)
{
    msg_t m;
    double secs = -1;
    msg_init(&m, MSG_HEARTBEAT);
    if (wire_send(w, NULL, &m, 0) != 0 || wire_recv(w, &m, NULL, 0) != 0)
        goto fail_ping;
    msg_fini(&m);
    double t0 = rw_now_s(), c0 = cpu();
    msg_art_begin_t begin = {
        .artifact = id, .kind = MSG_ARTIFACT_MODEL, .size = b->bytes, .chunk = b->chunk};
    xfer_send_t *x = xfer_send_new(&begin, &xfer_mem_source_ops, b->data, 0, NULL);
    while (x && xfer_send_status(x) == 0) {
        while (xfer_send_next(x, &m) == 1)
            wire_send(w, NULL, &m, 0);
        if (xfer_send_status(x) != 0 || wire_recv(w, &m, NULL, 0) != 0)
            break;
        xfer_send_input(x, &m);
        msg_fini(&m);
    }
    if (x && xfer_send_status(x) == 1) {
        secs = rw_now_s() - t0;
        b->cpu = cpu() - c0;
    }
    xfer_send_destroy(&x);
fail_ping:
    msg_fini(&m);
    return secs;
}

/* One timed upload; returns seconds, or -1 if it failed. */
static double run(bench_t *b, bool proto, uint64_t id)
{
    pthread_t th;
    void *ctx;
    wire_t *w;
    double secs = -1;
    if (receiver_open(b, proto) != 0)
        return -1;
    pthread_create(&th, NULL, proto ? xfer_receiver : plain_receiver, b);
    void *s = sender_open(proto, &ctx, &w);
    if (zmq_connect(s, b->endpoint) == 0)
        secs = proto ? xfer_send(b, w, id) : plain_send(b, s);
    pthread_join(th, NULL);
    if (b->land && (b->sink.len != b->bytes || memcmp(b->sink.data, b->data, b->bytes) != 0))
        b->result = -1;
    xfer_mem_sink_fini(&b->sink);
    wire_destroy(&w);
    zmq_close(s);
    zmq_ctx_term(ctx);
    receiver_close(b);
    return b->result == 0 ? secs : -1;
}

typedef struct best {
    double plain, xfer;
} best_t;

static int repetition(bench_t *b, int r, best_t best[2])
{
    for (int land = 0; land <= 1; land++) {
        b->land = land;
        double p = run(b, false, 0), pc = b->cpu;
        double t = run(b, true, (uint64_t)r + 1), tc = b->cpu;
        if (p < 0 || t < 0) {
            fprintf(stderr, "wire: repetition %d failed (plain %.3f s, upload %.3f s)\n", r, p, t);
            return -1;
        }
        printf("rep %d %-7s: plain %5.0f MB/s (%3.0f ms, CPU %3.0f ms), upload %5.0f MB/s "
               "(%3.0f ms, CPU %3.0f ms)\n",
               r, land ? "memory" : "discard", (double)b->bytes / p / 1e6, p * 1e3, pc * 1e3,
               (double)b->bytes / t / 1e6, t * 1e3, tc * 1e3);
        best[land].plain = p < best[land].plain ? p : best[land].plain;
        best[land].xfer = t < best[land].xfer ? t : best[land].xfer;
    }
    return 0;
}

int main(int argc, char **argv)
{
    rw_blas_setup(argc, argv);
    bench_t b = {.bytes = (size_t)64 << 20, .chunk = XFER_CHUNK, .window = XFER_WINDOW};
    int reps = 7;
    if (argc > 1)
        b.bytes = (size_t)strtoul(argv[1], NULL, 10) << 20;
    if (argc > 2)
        reps = atoi(argv[2]);
    if (argc > 3)
        b.chunk = (size_t)strtoul(argv[3], NULL, 10) << 10;
    if (argc > 4)
        b.window = (uint32_t)strtoul(argv[4], NULL, 10);
    if (!b.bytes || reps < 1 || !b.chunk || b.chunk > MSG_CHUNK_MAX || !b.window ||
        b.window > MSG_WINDOW_MAX) {
        fprintf(stderr, "usage: wire [MIB [REPS [CHUNK_KIB (1..1024) [WINDOW (1..%d)]]]]\n",
                MSG_WINDOW_MAX);
        return 2;
    }
    uint8_t *data = malloc(b.bytes);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < b.bytes; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    b.data = data;
    double t = rw_now_s();
    uint64_t sum = proto_checksum(data, b.bytes);
    t = rw_now_s() - t;
    printf("checksum (XXH64) of %zu MiB: %.0f MB/s (%016llx)\n", b.bytes >> 20,
           (double)b.bytes / t / 1e6, (unsigned long long)sum);
    best_t best[2] = {{1e30, 1e30}, {1e30, 1e30}};
    for (int r = 0; r < reps; r++)
        if (repetition(&b, r, best) != 0)
            return 1;
    for (int land = 0; land <= 1; land++) {
        double pm = (double)b.bytes / best[land].plain / 1e6;
        double xm = (double)b.bytes / best[land].xfer / 1e6;
        printf("best of %d, %s: plain %.0f MB/s, upload %.0f MB/s, upload/plain %.2f\n", reps,
               land ? "memory" : "discard", pm, xm, xm / pm);
        printf("{\"bench\":\"wire_upload\",\"sink\":\"%s\",\"bytes\":%zu,\"chunk\":%zu,"
               "\"window\":%u,\"reps\":%d,\"plain_mb_s\":%.0f,\"xfer_mb_s\":%.0f,"
               "\"ratio\":%.3f}\n",
               land ? "memory" : "discard", b.bytes, b.chunk, b.window, reps, pm, xm, xm / pm);
    }
    free(data);
    return 0;
}
