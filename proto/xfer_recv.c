/* xfer_recv.c — the receiving half of an artifact transfer; see xfer.h.
 *
 * IDLE → RECV (chunks in order, each within the credit granted) → DONE on
 * an ART_END whose size and checksum match. A lost, reordered or corrupted
 * chunk moves to RETRY: the sink is dropped, the sender is told to start
 * again, and chunks still in flight from the refused attempt are dropped
 * until its new ART_BEGIN. Anything a sane sender never does (more bytes
 * than declared, chunks beyond the credit) is FAILED for good.
 */
#include "xfer.h"

#include "alloc.h"
#include "checksum.h"
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { R_IDLE, R_RECV, R_RETRY, R_DONE, R_FAILED } recv_state_t;

struct xfer_recv {
    xfer_recv_opts_t o;
    const struct xfer_sink_ops *ops;
    void *sink;
    recv_state_t state;
    bool bound, sink_open;
    msg_art_begin_t begin;       /* of the current attempt; begin.artifact once bound */
    uint64_t n_chunks, next_seq; /* chunks the artifact has; the one expected next */
    uint64_t bytes;              /* received in this attempt */
    uint64_t granted, owed;      /* credit sent; credit earned but not sent yet */
    bool grant_now;              /* send owed credit even below a batch */
    proto_checksum_t sum;
    bool ack_pending, ack_ok;
    int ack_code, final;
    char why[MSG_WHY_MAX];
    xfer_recv_stats_t st;
};

xfer_recv_t *xfer_recv_new(const xfer_recv_opts_t *opts, const struct xfer_sink_ops *ops,
                           void *sink)
{
    xfer_recv_t *r = rw_new(xfer_recv_t);
    if (opts)
        r->o = *opts;
    if (!r->o.window)
        r->o.window = XFER_WINDOW;
    if (r->o.window > MSG_WINDOW_MAX)
        r->o.window = MSG_WINDOW_MAX;
    if (!r->o.max_size || r->o.max_size > MSG_ART_MAX)
        r->o.max_size = MSG_ART_MAX;
    if (!r->o.max_chunk || r->o.max_chunk > MSG_CHUNK_MAX)
        r->o.max_chunk = MSG_CHUNK_MAX;
    if (r->o.attempts <= 0)
        r->o.attempts = XFER_ATTEMPTS;
    r->ops = ops;
    r->sink = sink;
    return r;
}

static void drop_sink(xfer_recv_t *r)
{
    if (r->sink_open)
        r->ops->abort(r->sink);
    r->sink_open = false;
}

void xfer_recv_destroy(xfer_recv_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    drop_sink(*self_p);
    free(*self_p);
    *self_p = NULL;
}

/* Refuses the transfer: for good, or (again) until the sender restarts.
 * Queues the ART_ACK that says so; returns code. */
static int refuse(xfer_recv_t *r, bool again, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(xfer_recv_t *r, bool again, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    drop_sink(r);
    if (again && (int)r->st.attempts >= r->o.attempts)
        again = false;
    r->state = again ? R_RETRY : R_FAILED;
    if (!again)
        r->final = code;
    r->ack_pending = true;
    r->ack_ok = false;
    r->ack_code = code;
    r->owed = 0;
    return code;
}

static int take_begin(xfer_recv_t *r, const msg_art_begin_t *b)
{
    if (r->state == R_DONE)
        return refuse(r, false, RW_EEXIST, "artifact %llu was stored already",
                      (unsigned long long)b->artifact);
    if (r->state == R_FAILED)
        return RW_ESTATE;
    drop_sink(r);
    r->st.attempts++;
    r->begin = *b;
    if (b->size > r->o.max_size)
        return refuse(r, false, RW_ETOOBIG, "artifact of %llu bytes, at most %llu taken",
                      (unsigned long long)b->size, (unsigned long long)r->o.max_size);
    if (b->chunk > r->o.max_chunk)
        return refuse(r, false, RW_ETOOBIG, "chunks of %llu bytes, at most %zu taken",
                      (unsigned long long)b->chunk, r->o.max_chunk);
    int rc = r->ops->open(r->sink, b);
    if (rc < 0)
        return refuse(r, false, rc, "the sink refused it: %s", rw_strerror(rc));
    r->sink_open = true;
    r->state = R_RECV;
    r->n_chunks = b->size / b->chunk + (b->size % b->chunk != 0);
    r->next_seq = r->bytes = r->granted = 0;
    r->owed = r->n_chunks < r->o.window ? r->n_chunks : r->o.window;
    r->grant_now = true;
    proto_checksum_init(&r->sum);
    return 0;
}

static int take_chunk(xfer_recv_t *r, const msg_art_chunk_t *c)
{
    if (r->state == R_RETRY) {
        r->st.stale++;
        return 0;
    }
    if (r->state != R_RECV)
        return RW_ESTATE;
    if (r->next_seq >= r->granted)
        return refuse(r, false, RW_EPROTO, "chunk %llu sent without credit",
                      (unsigned long long)c->seq);
    if (c->seq != r->next_seq)
        return refuse(r, true, RW_ETRUNC, "chunk %llu out of order, expected %llu",
                      (unsigned long long)c->seq, (unsigned long long)r->next_seq);
    uint64_t left = r->begin.size - r->bytes;
    uint64_t want = left < r->begin.chunk ? left : r->begin.chunk;
    if (c->data.n > left)
        return refuse(r, false, RW_ETOOBIG, "more than the %llu bytes declared",
                      (unsigned long long)r->begin.size);
    if (c->data.n != want)
        return refuse(r, false, RW_EPROTO, "chunk %llu has %zu bytes, expected %llu",
                      (unsigned long long)c->seq, c->data.n, (unsigned long long)want);
    int rc = r->ops->write(r->sink, r->bytes, c->data.p, c->data.n);
    if (rc < 0)
        return refuse(r, false, rc, "writing: %s", rw_strerror(rc));
    proto_checksum_update(&r->sum, c->data.p, c->data.n);
    r->bytes += c->data.n;
    r->next_seq++;
    r->st.chunks++;
    if (r->granted + r->owed < r->n_chunks)
        r->owed++; /* stored: room for one more */
    return 0;
}

static int take_end(xfer_recv_t *r, const msg_art_end_t *e)
{
    if (r->state == R_RETRY) {
        r->st.stale++;
        return 0;
    }
    if (r->state != R_RECV)
        return RW_ESTATE;
    if (r->bytes != r->begin.size)
        return refuse(r, true, RW_ETRUNC, "ended after %llu of %llu bytes",
                      (unsigned long long)r->bytes, (unsigned long long)r->begin.size);
    uint64_t sum = proto_checksum_final(&r->sum);
    if (sum != e->checksum)
        return refuse(r, true, RW_ECHECKSUM, "checksum %016llx, the sender's is %016llx",
                      (unsigned long long)sum, (unsigned long long)e->checksum);
    int rc = r->ops->commit(r->sink);
    if (rc < 0)
        return refuse(r, false, rc, "storing: %s", rw_strerror(rc));
    r->sink_open = false;
    r->state = R_DONE;
    r->ack_pending = true;
    r->ack_ok = true;
    r->owed = 0;
    return 0;
}

int xfer_recv_input(xfer_recv_t *r, const msg_t *in)
{
    uint64_t id;
    if (xfer_artifact_of(in, &id) < 0 || in->type == MSG_ART_CREDIT || in->type == MSG_ART_ACK)
        return RW_ESTATE;
    if (!r->bound) {
        if (in->type != MSG_ART_BEGIN)
            return RW_ENOTFOUND; /* no transfer until its ART_BEGIN */
        r->bound = true;
        r->begin.artifact = id;
    }
    if (id != r->begin.artifact)
        return RW_ENOTFOUND;
    switch (in->type) {
    case MSG_ART_BEGIN:
        return take_begin(r, &in->art_begin);
    case MSG_ART_CHUNK:
        return take_chunk(r, &in->art_chunk);
    default:
        return take_end(r, &in->art_end);
    }
}

int xfer_recv_next(xfer_recv_t *r, msg_t *out)
{
    if (r->ack_pending) {
        msg_init(out, MSG_ART_ACK);
        out->art_ack.artifact = r->begin.artifact;
        out->art_ack.ok = r->ack_ok;
        if (!r->ack_ok) {
            out->art_ack.code = r->ack_code;
            out->art_ack.has_code = true;
            out->art_ack.reason = r->why;
        }
        r->ack_pending = false;
        return 1;
    }
    uint64_t batch = r->o.window / 4 ? r->o.window / 4 : 1;
    bool last = r->granted + r->owed == r->n_chunks;
    if (r->state != R_RECV || r->owed == 0 || (!r->grant_now && !last && r->owed < batch))
        return 0;
    uint64_t n = r->owed < MSG_WINDOW_MAX ? r->owed : MSG_WINDOW_MAX;
    msg_init(out, MSG_ART_CREDIT);
    out->art_credit.artifact = r->begin.artifact;
    out->art_credit.credit = n;
    r->granted += n;
    r->owed -= n;
    r->grant_now = false;
    if (r->granted - r->next_seq > r->st.max_outstanding)
        r->st.max_outstanding = r->granted - r->next_seq;
    return 1;
}

void xfer_give_up(msg_t *out, uint64_t artifact, const char *reason)
{
    msg_init(out, MSG_ART_ACK);
    out->art_ack.artifact = artifact;
    out->art_ack.ok = false;
    out->art_ack.code = -ECANCELED;
    out->art_ack.has_code = true;
    out->art_ack.reason = reason;
}

int xfer_recv_status(const xfer_recv_t *r)
{
    if (r->state == R_DONE)
        return 1;
    return r->state == R_FAILED ? r->final : 0;
}

const char *xfer_recv_error(const xfer_recv_t *r)
{
    return r->why;
}

void xfer_recv_stats(const xfer_recv_t *r, xfer_recv_stats_t *st)
{
    *st = r->st;
}
