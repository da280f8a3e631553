/* test_xfer.c — artifacts arrive whole, within the window, or are sent again.
 *
 * A sender and a receiver talk through two queues of encoded messages, so
 * every ART_* message also passes the codec. The pump picks at random which
 * side moves next, so chunks pile up in flight as far as credit allows, and
 * asserts at every step that the chunks in flight never exceed the window.
 * A hook may corrupt, drop or repeat chunks on their way.
 */
#include "xfer.h"

#include "checksum.h"
#include "err.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define QMAX 4096

typedef struct queue {
    uint8_t *buf[QMAX];
    size_t len[QMAX];
    size_t head, tail;
} queue_t;

static void q_push(queue_t *q, const msg_t *m)
{
    size_t n;
    uint8_t *b = malloc(MSG_MAX_BYTES);
    char why[MSG_WHY_MAX];
    int rc = msg_encode(m, b, MSG_MAX_BYTES, &n, why);
    cr_assert_eq(rc, 0, "encode %s: %s", msg_type_name(m->type), why);
    cr_assert_lt(q->tail - q->head, QMAX);
    q->buf[q->tail % QMAX] = b;
    q->len[q->tail % QMAX] = n;
    q->tail++;
}

/* What happens to a chunk on its way: keep (0), drop (1) or repeat (2);
 * it may also change the bytes. */
typedef int (*hook_fn)(msg_t *chunk, int attempt);

static int q_pop(queue_t *q, msg_t *m)
{
    if (q->head == q->tail)
        return 0;
    uint8_t *b = q->buf[q->head % QMAX];
    size_t n = q->len[q->head % QMAX];
    q->head++;
    char why[MSG_WHY_MAX];
    int rc = msg_decode(m, b, n, why);
    cr_assert_eq(rc, 0, "decode: %s", why);
    msg_hold(m, b, free);
    return 1;
}

static size_t chunks_in(const queue_t *q)
{
    size_t k = 0;
    for (size_t i = q->head; i < q->tail; i++) {
        msg_t m;
        if (msg_decode(&m, q->buf[i % QMAX], q->len[i % QMAX], NULL) == 0)
            k += m.type == MSG_ART_CHUNK;
        msg_fini(&m);
    }
    return k;
}

typedef struct run {
    xfer_send_t *s;
    xfer_recv_t *r;
    uint32_t window;
    hook_fn hook;
    size_t max_in_flight;
} run_t;

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* One sender message into the receiver, through the hook. */
static void deliver(run_t *run, queue_t *to_r, queue_t *to_s)
{
    msg_t m, reply;
    if (!q_pop(to_r, &m))
        return;
    int copies = 1;
    if (m.type == MSG_ART_CHUNK && run->hook) {
        xfer_send_stats_t st;
        xfer_send_stats(run->s, &st);
        int what = run->hook(&m, (int)st.attempts);
        copies = what == 1 ? 0 : what == 2 ? 2 : 1;
    }
    for (int i = 0; i < copies; i++)
        xfer_recv_input(run->r, &m);
    msg_fini(&m);
    while (xfer_recv_next(run->r, &reply) == 1)
        q_push(to_s, &reply);
}

/* Runs the transfer to its end. */
static void pump(run_t *run)
{
    queue_t to_r = {0}, to_s = {0};
    for (int steps = 0; steps < 1000000; steps++) {
        int rs = xfer_recv_status(run->r), ss = xfer_send_status(run->s);
        if (ss != 0 && to_r.head == to_r.tail && to_s.head == to_s.tail)
            break;
        (void)rs;
        msg_t m;
        switch (rnd() % 3) {
        case 0:
            if (xfer_send_next(run->s, &m) == 1)
                q_push(&to_r, &m);
            break;
        case 1:
            deliver(run, &to_r, &to_s);
            break;
        default:
            if (q_pop(&to_s, &m)) {
                xfer_send_input(run->s, &m);
                msg_fini(&m);
            }
            break;
        }
        size_t flying = chunks_in(&to_r);
        cr_assert_leq(flying, run->window, "%zu chunks in flight, window %u", flying, run->window);
        if (flying > run->max_in_flight)
            run->max_in_flight = flying;
    }
    cr_assert_neq(xfer_send_status(run->s), 0, "the transfer never ended");
}

static uint8_t *random_bytes(size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)rnd();
    return b;
}

/* Sends n random bytes in chunks of chunk through a memory sink. Returns
 * the sender's status; *st gets its stats. */
static int transfer(size_t n, size_t chunk, uint32_t window, hook_fn hook, xfer_send_stats_t *st)
{
    uint8_t *data = random_bytes(n);
    msg_art_begin_t b = {.artifact = 42, .kind = MSG_ARTIFACT_MODEL, .size = n, .chunk = chunk};
    int err;
    xfer_send_t *s = xfer_send_new(&b, &xfer_mem_source_ops, data, 0, &err);
    cr_assert_not_null(s, "%s", rw_err_name(err));
    xfer_mem_sink_t sink = {0};
    xfer_recv_opts_t o = {.window = window};
    xfer_recv_t *r = xfer_recv_new(&o, &xfer_mem_sink_ops, &sink);
    run_t run = {s, r, window, hook, 0};
    pump(&run);
    int rc = xfer_send_status(s);
    if (rc == 1) {
        cr_assert_eq(xfer_recv_status(r), 1);
        cr_assert(sink.committed);
        cr_assert_eq(sink.len, n);
        cr_assert(n == 0 || memcmp(sink.data, data, n) == 0, "bytes differ");
        cr_assert_leq(sink.cap, n ? n : 0, "the sink never holds more than the artifact");
    } else {
        cr_assert_eq(xfer_recv_status(r), rc, "both ends agree on the failure");
        cr_assert(!sink.committed);
    }
    xfer_recv_stats_t rst;
    xfer_recv_stats(r, &rst);
    cr_assert_leq(rst.max_outstanding, window);
    uint64_t chunks = n / chunk + (n % chunk != 0);
    if (chunks > window && window > 1)
        cr_assert_gt(run.max_in_flight, 1, "chunks were pipelined");
    xfer_send_stats(s, st);
    xfer_send_destroy(&s);
    xfer_send_destroy(&s);
    xfer_recv_destroy(&r);
    xfer_mem_sink_fini(&sink);
    free(data);
    return rc;
}

Test(xfer, artifacts_of_every_size_arrive_whole)
{
    const size_t c = 4096;
    size_t sizes[] = {0, 1, c - 1, c, c + 1, 3 * c, 37 * c + 5};
    xfer_send_stats_t st;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (uint32_t w = 1; w <= 16; w *= 4) {
            cr_assert_eq(transfer(sizes[i], c, w, NULL, &st), 1, "size %zu window %u", sizes[i], w);
            cr_assert_eq(st.attempts, 1);
            cr_assert_leq(st.max_credit, w, "the sender never held more than the window");
        }
    }
    cr_assert_eq(transfer((size_t)10 << 20, XFER_CHUNK, XFER_WINDOW, NULL, &st), 1);
    cr_assert_eq(st.chunks, 10);
}

/* One message from sender to receiver, and the receiver's replies back. */
static void step(xfer_send_t *s, xfer_recv_t *r)
{
    msg_t m, reply;
    cr_assert_eq(xfer_send_next(s, &m), 1, "the sender has nothing to send");
    xfer_recv_input(r, &m);
    while (xfer_recv_next(r, &reply) == 1)
        cr_assert_eq(xfer_send_input(s, &reply), 0);
}

Test(xfer, a_sender_started_over_unasked_arrives_whole)
{
    const size_t n = 5 * 4096;
    uint8_t *data = random_bytes(n);
    msg_art_begin_t b = {.artifact = 42, .kind = MSG_ARTIFACT_MODEL, .size = n, .chunk = 4096};
    int err;
    xfer_send_t *s = xfer_send_new(&b, &xfer_mem_source_ops, data, 0, &err);
    xfer_mem_sink_t sink = {0};
    xfer_recv_opts_t o = {.window = 8};
    xfer_recv_t *r = xfer_recv_new(&o, &xfer_mem_sink_ops, &sink);
    for (int i = 0; i < 3; i++) /* BEGIN and two chunks */
        step(s, r);
    cr_assert_eq(xfer_send_restart(s), 0);
    msg_t m;
    cr_assert_eq(xfer_send_next(s, &m), 1);
    cr_assert_eq(m.type, MSG_ART_BEGIN, "it starts over with ART_BEGIN");
    xfer_recv_input(r, &m);
    while (xfer_recv_next(r, &m) == 1)
        xfer_send_input(s, &m);
    while (xfer_send_status(s) == 0)
        step(s, r);
    cr_assert_eq(xfer_send_status(s), 1);
    cr_assert(sink.committed && sink.len == n && memcmp(sink.data, data, n) == 0, "bytes differ");
    xfer_send_stats_t st;
    xfer_send_stats(s, &st);
    cr_assert_eq(st.attempts, 2);
    cr_assert_eq(xfer_send_restart(s), RW_ESTATE, "a finished transfer does not start over");
    xfer_send_destroy(&s);
    xfer_recv_destroy(&r);
    xfer_mem_sink_fini(&sink);
    free(data);
}

static int corrupt_first(msg_t *m, int attempt)
{
    if (attempt == 1 && m->art_chunk.seq == 2)
        ((uint8_t *)m->art_chunk.data.p)[7] ^= 0x20; /* the bytes live in the queue's buffer */
    return 0;
}

static int corrupt_always(msg_t *m, int attempt)
{
    (void)attempt;
    if (m->art_chunk.seq == 0)
        ((uint8_t *)m->art_chunk.data.p)[0] ^= 1;
    return 0;
}

static int drop_first(msg_t *m, int attempt)
{
    return attempt == 1 && m->art_chunk.seq == 3;
}

static int repeat_first(msg_t *m, int attempt)
{
    return attempt == 1 && m->art_chunk.seq == 1 ? 2 : 0;
}

/* Credit granted again and again (a peer that never reads what it asked
 * for) is held only up to the largest window: the sender never has more
 * chunks to put on the wire than any receiver could have in flight. */
Test(xfer, credit_past_the_largest_window_is_not_held)
{
    const size_t n = 2000 * 16;
    uint8_t *data = random_bytes(n);
    msg_art_begin_t b = {.artifact = 42, .kind = MSG_ARTIFACT_MODEL, .size = n, .chunk = 16};
    int err;
    xfer_send_t *s = xfer_send_new(&b, &xfer_mem_source_ops, data, 0, &err);
    cr_assert_not_null(s);
    msg_t m;
    cr_assert_eq(xfer_send_next(s, &m), 1);
    cr_assert_eq(m.type, MSG_ART_BEGIN);
    msg_t credit;
    msg_init(&credit, MSG_ART_CREDIT);
    credit.art_credit.artifact = 42;
    credit.art_credit.credit = MSG_WINDOW_MAX;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(xfer_send_input(s, &credit), 0);
    size_t chunks = 0;
    while (xfer_send_next(s, &m) == 1 && m.type == MSG_ART_CHUNK)
        chunks++;
    cr_assert_eq(chunks, MSG_WINDOW_MAX, "5 grants of %d, %zu chunks sent", MSG_WINDOW_MAX, chunks);
    xfer_send_stats_t st;
    xfer_send_stats(s, &st);
    cr_assert_eq(st.max_credit, MSG_WINDOW_MAX);
    xfer_send_destroy(&s);
    free(data);
}

Test(xfer, a_corrupt_artifact_is_refused_and_sent_again)
{
    xfer_send_stats_t st;
    cr_assert_eq(transfer(20000, 1024, 4, corrupt_first, &st), 1);
    cr_assert_eq(st.attempts, 2, "one refusal, one resend");
    cr_assert_eq(transfer(20000, 1024, 4, drop_first, &st), 1);
    cr_assert_eq(st.attempts, 2, "a lost chunk is a gap: sent again");
    cr_assert_eq(transfer(20000, 1024, 4, repeat_first, &st), 1);
    cr_assert_eq(st.attempts, 2, "a repeated chunk is out of order: sent again");
    cr_assert_eq(transfer(20000, 1024, 4, corrupt_always, &st), RW_ECHECKSUM);
    cr_assert_eq(st.attempts, XFER_ATTEMPTS, "then it gives up");
}

/* A receiver of a 10-byte artifact in chunks of 4, and its first grant. */
static xfer_recv_t *ten_bytes(xfer_mem_sink_t *sink, uint32_t window)
{
    xfer_recv_opts_t o = {.window = window};
    xfer_recv_t *r = xfer_recv_new(&o, &xfer_mem_sink_ops, sink);
    msg_t m;
    msg_init(&m, MSG_ART_BEGIN);
    m.art_begin =
        (msg_art_begin_t){.artifact = 7, .kind = MSG_ARTIFACT_SHARD, .size = 10, .chunk = 4};
    cr_assert_eq(xfer_recv_input(r, &m), 0);
    cr_assert_eq(xfer_recv_next(r, &m), 1);
    cr_assert_eq(m.type, MSG_ART_CREDIT);
    cr_assert_eq(m.art_credit.credit, window < 3 ? window : 3, "never more than it needs");
    return r;
}

static msg_t chunk(uint64_t id, uint64_t seq, const char *bytes)
{
    msg_t m;
    msg_init(&m, MSG_ART_CHUNK);
    m.art_chunk.artifact = id;
    m.art_chunk.seq = seq;
    m.art_chunk.data = (msg_bin_t){bytes, strlen(bytes)};
    return m;
}

static void expect_ack(xfer_recv_t *r, bool ok, int code)
{
    msg_t m;
    cr_assert_eq(xfer_recv_next(r, &m), 1);
    cr_assert_eq(m.type, MSG_ART_ACK);
    cr_assert_eq(m.art_ack.ok, ok);
    if (!ok)
        cr_assert_eq(m.art_ack.code, code, "%s", m.art_ack.reason);
    cr_assert_eq(msg_check(&m, NULL), 0);
}

Test(xfer, bad_chunks_are_refused_cleanly)
{
    xfer_mem_sink_t sink = {0};
    msg_t m;
    /* before any ART_BEGIN, and for another artifact */
    xfer_recv_t *r = xfer_recv_new(NULL, &xfer_mem_sink_ops, &sink);
    m = chunk(7, 0, "abcd");
    cr_assert_eq(xfer_recv_input(r, &m), RW_ENOTFOUND);
    xfer_recv_destroy(&r);
    r = ten_bytes(&sink, 8);
    m = chunk(8, 0, "abcd");
    cr_assert_eq(xfer_recv_input(r, &m), RW_ENOTFOUND);
    m = chunk(7, 0, "abcd");
    cr_assert_eq(xfer_recv_input(r, &m), 0);
    msg_init(&m, MSG_HELLO);
    cr_assert_eq(xfer_recv_input(r, &m), RW_ESTATE);
    /* more bytes than declared: final */
    m = chunk(7, 1, "efgh");
    cr_assert_eq(xfer_recv_input(r, &m), 0);
    m = chunk(7, 2, "ijkl");
    cr_assert_eq(xfer_recv_input(r, &m), RW_ETOOBIG);
    expect_ack(r, false, RW_ETOOBIG);
    cr_assert_eq(xfer_recv_status(r), RW_ETOOBIG);
    cr_assert_eq(xfer_recv_input(r, &m), RW_ESTATE, "nothing more once refused");
    xfer_recv_destroy(&r);
    /* a short chunk that is not the last */
    r = ten_bytes(&sink, 8);
    m = chunk(7, 0, "ab");
    cr_assert_eq(xfer_recv_input(r, &m), RW_EPROTO);
    expect_ack(r, false, RW_EPROTO);
    xfer_recv_destroy(&r);
    /* a chunk beyond the credit */
    r = ten_bytes(&sink, 1);
    m = chunk(7, 0, "abcd");
    cr_assert_eq(xfer_recv_input(r, &m), 0);
    m = chunk(7, 1, "efgh");
    cr_assert_eq(xfer_recv_input(r, &m), RW_EPROTO, "the window was 1");
    xfer_recv_destroy(&r);
    /* out of order: refused until the sender starts again; stragglers dropped */
    r = ten_bytes(&sink, 8);
    m = chunk(7, 1, "efgh");
    cr_assert_eq(xfer_recv_input(r, &m), RW_ETRUNC);
    expect_ack(r, false, RW_ETRUNC);
    cr_assert_eq(xfer_recv_status(r), 0, "waiting for the sender to start again");
    m = chunk(7, 2, "ij");
    cr_assert_eq(xfer_recv_input(r, &m), 0);
    xfer_recv_stats_t st;
    xfer_recv_stats(r, &st);
    cr_assert_eq(st.stale, 1);
    cr_assert_eq(xfer_recv_next(r, &m), 0, "no credit for a refused attempt");
    xfer_recv_destroy(&r);
    xfer_mem_sink_fini(&sink);
}

static int refuse_open(void *sink, const msg_art_begin_t *b)
{
    (void)sink, (void)b;
    return RW_EEXIST;
}

Test(xfer, refusals_reach_the_sender)
{
    xfer_send_stats_t st;
    uint8_t data[100] = {0};
    /* too big for this receiver */
    msg_art_begin_t b = {.artifact = 1, .kind = MSG_ARTIFACT_DATA, .size = 100, .chunk = 10};
    xfer_send_t *s = xfer_send_new(&b, &xfer_mem_source_ops, data, 0, NULL);
    xfer_mem_sink_t sink = {0};
    xfer_recv_opts_t o = {.max_size = 99};
    xfer_recv_t *r = xfer_recv_new(&o, &xfer_mem_sink_ops, &sink);
    run_t run = {s, r, XFER_WINDOW, NULL, 0};
    pump(&run);
    cr_assert_eq(xfer_send_status(s), RW_ETOOBIG);
    cr_assert(strstr(xfer_send_error(s), "at most 99"), "%s", xfer_send_error(s));
    xfer_send_stats(s, &st);
    cr_assert_eq(st.chunks, 0, "nothing was sent without credit");
    xfer_send_destroy(&s);
    xfer_recv_destroy(&r);
    /* a sink that refuses */
    struct xfer_sink_ops no = xfer_mem_sink_ops;
    no.open = refuse_open;
    s = xfer_send_new(&b, &xfer_mem_source_ops, data, 0, NULL);
    r = xfer_recv_new(NULL, &no, &sink);
    run = (run_t){s, r, XFER_WINDOW, NULL, 0};
    pump(&run);
    cr_assert_eq(xfer_send_status(s), RW_EEXIST);
    xfer_send_destroy(&s);
    xfer_recv_destroy(&r);
    /* an invalid description never starts */
    int err = 0;
    b.size = MSG_ART_MAX + 1;
    cr_assert_null(xfer_send_new(&b, &xfer_mem_source_ops, data, 0, &err));
    cr_assert_eq(err, RW_EFIELD);
    xfer_mem_sink_fini(&sink);
}

Test(xfer, files_go_to_files_whole)
{
    char *dir = rwt_tmpdir();
    size_t n = 300000;
    uint8_t *data = random_bytes(n);
    cr_assert_eq(rwt_write_file(rwt_path(dir, "src.bin"), data, n), 0);
    xfer_file_source_t src;
    cr_assert_eq(xfer_file_source_open(&src, rwt_path(dir, "src.bin")), 0);
    cr_assert_eq(src.size, n);
    msg_art_begin_t b = {.artifact = 5,
                         .kind = MSG_ARTIFACT_CHECKPOINT,
                         .size = src.size,
                         .chunk = 65536,
                         .task = 3,
                         .has_task = true};
    xfer_send_t *s = xfer_send_new(&b, &xfer_file_source_ops, &src, 0, NULL);
    xfer_file_sink_t sink;
    char dst[4096];
    snprintf(dst, sizeof dst, "%s", rwt_path(dir, "dst.bin"));
    xfer_file_sink_init(&sink, dst);
    xfer_recv_t *r = xfer_recv_new(NULL, &xfer_file_sink_ops, &sink);
    run_t run = {s, r, XFER_WINDOW, corrupt_first, 0};
    pump(&run);
    cr_assert_eq(xfer_send_status(s), 1, "%s", xfer_send_error(s));
    size_t got_n = 0;
    char *got = rwt_read_file(dst, &got_n);
    cr_assert_not_null(got);
    cr_assert_eq(got_n, n);
    cr_assert(memcmp(got, data, n) == 0);
    cr_assert_eq(proto_checksum(got, got_n), proto_checksum(data, n));
    free(got);
    xfer_send_destroy(&s);
    xfer_recv_destroy(&r);
    xfer_file_sink_fini(&sink);
    xfer_file_source_close(&src);
    xfer_file_source_close(&src);
    /* a refused file leaves nothing behind */
    xfer_file_source_t none;
    cr_assert_lt(xfer_file_source_open(&none, rwt_path(dir, "missing")), 0);
    cr_assert_eq(none.fd, -1);
    rwt_rmdir(dir);
    free(dir);
    free(data);
}
