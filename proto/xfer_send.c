/* xfer_send.c — the sending half of an artifact transfer; see xfer.h.
 *
 * BEGIN → CHUNKS (one per credit) → END → WAIT for the ack → DONE. A
 * refusal the receiver marks as worth another try sends it back to BEGIN
 * with a fresh checksum, until the attempts run out.
 */
#include "xfer.h"

#include "alloc.h"
#include "checksum.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_BEGIN, S_CHUNKS, S_END, S_WAIT, S_DONE, S_FAILED } send_state_t;

struct xfer_send {
    msg_art_begin_t begin;
    const struct xfer_source_ops *ops;
    const void *src;
    void *scratch;
    send_state_t state;
    int attempts, error;
    uint64_t seq, off, credit;
    proto_checksum_t sum;
    xfer_send_stats_t st;
    char why[MSG_WHY_MAX];
};

xfer_send_t *xfer_send_new(const msg_art_begin_t *begin, const struct xfer_source_ops *ops,
                           const void *src, int attempts, int *err)
{
    msg_t m;
    msg_init(&m, MSG_ART_BEGIN);
    m.art_begin = *begin;
    if (!m.art_begin.chunk)
        m.art_begin.chunk = XFER_CHUNK;
    int rc = msg_check(&m, NULL);
    if (err)
        *err = rc;
    if (rc < 0)
        return NULL;
    xfer_send_t *s = rw_new(xfer_send_t);
    s->begin = m.art_begin;
    s->ops = ops;
    s->src = src;
    s->attempts = attempts > 0 ? attempts : XFER_ATTEMPTS;
    if (ops->needs_scratch)
        s->scratch = rw_malloc(s->begin.chunk);
    return s;
}

void xfer_send_destroy(xfer_send_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->scratch);
    free(*self_p);
    *self_p = NULL;
}

static int send_fail(xfer_send_t *s, int code, const char *fmt, const char *detail)
{
    s->state = S_FAILED;
    s->error = code;
    snprintf(s->why, sizeof s->why, fmt, detail, s->st.attempts, s->attempts);
    return code;
}

/* The next chunk into *out; moves on to END after the last. */
static int send_chunk(xfer_send_t *s, msg_t *out)
{
    uint64_t left = s->begin.size - s->off;
    size_t n = left < s->begin.chunk ? (size_t)left : (size_t)s->begin.chunk;
    const void *p = NULL;
    int rc = s->ops->read(s->src, s->off, n, s->scratch, &p);
    if (rc < 0)
        return send_fail(s, rc, "reading the artifact: %s (attempt %u of %d)", rw_strerror(rc));
    proto_checksum_update(&s->sum, p, n);
    msg_init(out, MSG_ART_CHUNK);
    out->art_chunk.artifact = s->begin.artifact;
    out->art_chunk.seq = s->seq++;
    out->art_chunk.data = (msg_bin_t){p, n};
    s->off += n;
    s->credit--;
    s->st.chunks++;
    s->st.bytes += n;
    if (s->off == s->begin.size)
        s->state = S_END;
    return 1;
}

int xfer_send_next(xfer_send_t *s, msg_t *out)
{
    switch (s->state) {
    case S_BEGIN:
        msg_init(out, MSG_ART_BEGIN);
        out->art_begin = s->begin;
        s->seq = s->off = s->credit = 0;
        proto_checksum_init(&s->sum);
        s->st.attempts++;
        s->state = s->begin.size ? S_CHUNKS : S_END;
        return 1;
    case S_CHUNKS:
        return s->credit ? send_chunk(s, out) : 0;
    case S_END:
        msg_init(out, MSG_ART_END);
        out->art_end.artifact = s->begin.artifact;
        out->art_end.checksum = proto_checksum_final(&s->sum);
        s->state = S_WAIT;
        return 1;
    default:
        return 0;
    }
}

static int send_ack(xfer_send_t *s, const msg_art_ack_t *a)
{
    if (a->ok) {
        if (s->state != S_WAIT)
            return RW_ESTATE; /* stored before it was all sent: not from a sane receiver */
        s->state = S_DONE;
        return 0;
    }
    int code = (int)a->code;
    bool again = code == RW_ECHECKSUM || code == RW_ETRUNC;
    if (again && (int)s->st.attempts < s->attempts) {
        s->state = S_BEGIN;
        snprintf(s->why, sizeof s->why, "%s (attempt %u of %d)", a->reason, s->st.attempts,
                 s->attempts);
        return 0;
    }
    send_fail(s, code, "%s (attempt %u of %d)", a->reason);
    return 0;
}

int xfer_send_input(xfer_send_t *s, const msg_t *in)
{
    uint64_t id;
    if (xfer_artifact_of(in, &id) < 0 || (in->type != MSG_ART_CREDIT && in->type != MSG_ART_ACK))
        return RW_ESTATE;
    if (id != s->begin.artifact)
        return RW_ENOTFOUND;
    if (s->state == S_DONE || s->state == S_FAILED)
        return RW_ESTATE;
    if (in->type == MSG_ART_ACK)
        return send_ack(s, &in->art_ack);
    if (s->state == S_BEGIN)
        return RW_ESTATE; /* credit of an attempt given up */
    /* a receiver never has more than its window in flight, and no window
     * is over MSG_WINDOW_MAX: credit past it (granted again and again by a
     * peer that never reads) would only queue chunks without bound */
    s->credit += in->art_credit.credit;
    if (s->credit > MSG_WINDOW_MAX)
        s->credit = MSG_WINDOW_MAX;
    if (s->credit > s->st.max_credit)
        s->st.max_credit = s->credit;
    return 0;
}

int xfer_send_restart(xfer_send_t *s)
{
    if (s->state == S_DONE || s->state == S_FAILED)
        return RW_ESTATE;
    s->state = S_BEGIN;
    return 0;
}

int xfer_send_status(const xfer_send_t *s)
{
    if (s->state == S_DONE)
        return 1;
    return s->state == S_FAILED ? s->error : 0;
}

const char *xfer_send_error(const xfer_send_t *s)
{
    return s->state == S_DONE ? "" : s->why;
}

void xfer_send_stats(const xfer_send_t *s, xfer_send_stats_t *st)
{
    *st = s->st;
}
