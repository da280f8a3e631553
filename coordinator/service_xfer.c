/* service_xfer.c — artifacts between the coordinator's store and its peers.
 *
 * A worker FETCHes what its lease names and the service streams it from
 * the store (verified against its id before the first byte goes), one
 * artifact per peer at a time, the next FETCH queued. A peer that drops a
 * fetch says so with a refusing ART_ACK (xfer_give_up), which ends the
 * transfer, or takes it off the queue, at once. A worker uploads its
 * output tagged with its task and attempt: an upload for an attempt that is
 * not live is refused at ART_BEGIN, before a byte is stored, and an
 * artifact whose id is not its checksum is refused at ART_END. Received
 * bytes go to the store's tmp/ and are renamed in once verified.
 */
#include "service_int.h"

#include "err.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WHO "coordinator"

static void refuse_upload(coord_t *c, peer_t *p, uint64_t artifact, int code, const char *why)
{
    msg_t m;
    msg_init(&m, MSG_ART_ACK);
    m.art_ack.artifact = artifact;
    m.art_ack.ok = false;
    m.art_ack.code = code;
    m.art_ack.has_code = true;
    m.art_ack.reason = why;
    coord__send(c, &p->addr, &m);
    wire_drop(c->w, &p->addr, why);
}

static void start_fetch(coord_t *c, peer_t *p, uint64_t artifact)
{
    char path[STORE_PATH_MAX], text[96];
    uint64_t size = 0;
    int rc = store_verify(c->store, artifact, &size);
    if (rc == 0)
        rc = xfer_file_source_open(&p->out_src, store_path(c->store, artifact, path, sizeof path));
    if (rc == 0) {
        /* a task's output, or what the job put there: data and tokenizer */
        bool output = false;
        for (size_t i = 1; i <= plan_size(c->plan); i++)
            output |= plan_task(c->plan, i)->artifact == artifact;
        msg_art_begin_t b = {.artifact = artifact,
                             .kind = output ? MSG_ARTIFACT_MODEL : MSG_ARTIFACT_SHARD,
                             .size = size};
        p->out = xfer_send_new(&b, &xfer_file_source_ops, &p->out_src, 0, &rc);
    }
    if (rc < 0) {
        peer_end_out(p);
        snprintf(text, sizeof text, "artifact %016" PRIx64 " is not available: %s", artifact,
                 rw_strerror(rc));
        msg_t m;
        msg_init(&m, MSG_ERROR);
        m.error.code = rc < -1 ? rc : RW_EIO;
        m.error.text = text;
        m.error.req = artifact; /* the FETCH it answers */
        m.error.has_req = true;
        coord__send(c, &p->addr, &m);
        wire_drop(c->w, &p->addr, "FETCH of an artifact that is not in the store");
        return;
    }
    c->st.fetches++;
}

void coord__pump_out(coord_t *c, peer_t *p)
{
    for (;;) {
        while (p->out) {
            msg_t m;
            int rc = xfer_send_next(p->out, &m);
            if (rc == 0)
                break;
            if (rc < 0 || coord__send(c, &p->addr, &m) < 0) {
                RW_WARN(WHO, "sending an artifact to %s failed: %s", p->name,
                        rc < 0 ? rw_strerror(rc) : "the socket refused a chunk");
                peer_end_out(p);
                break;
            }
        }
        if (p->out && xfer_send_status(p->out) != 0) {
            if (xfer_send_status(p->out) == -ECANCELED)
                RW_INFO(WHO, "%s no longer wants the artifact it fetched: %s", p->name,
                        xfer_send_error(p->out));
            else if (xfer_send_status(p->out) < 0)
                RW_WARN(WHO, "%s refused an artifact: %s", p->name, xfer_send_error(p->out));
            peer_end_out(p);
        }
        if (p->out || p->n_fetches == 0)
            return;
        uint64_t next = p->fetches[0];
        memmove(p->fetches, p->fetches + 1, --p->n_fetches * sizeof p->fetches[0]);
        start_fetch(c, p, next);
    }
}

void coord__fetch(coord_t *c, peer_t *p, uint64_t artifact)
{
    if (p->out || p->n_fetches) {
        if (p->n_fetches == PEER_FETCHES_MAX) {
            wire_drop(c->w, &p->addr, "a FETCH over the queue's limit");
            return;
        }
        p->fetches[p->n_fetches++] = artifact;
        return;
    }
    start_fetch(c, p, artifact);
    coord__pump_out(c, p);
}

/* Whether rc is the coordinator's own storage failing (a full disk, a disk
 * error), as opposed to what a peer sent. */
static bool local_failure(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT || rc == -EIO || rc == -EROFS || rc == -EFBIG;
}

static void upload_input(coord_t *c, peer_t *p, const msg_t *m)
{
    xfer_recv_input(p->in, m);
    msg_t out;
    while (xfer_recv_next(p->in, &out) == 1)
        coord__send(c, &p->addr, &out);
    int st = xfer_recv_status(p->in);
    if (st == 0)
        return;
    if (st > 0) {
        uint64_t id = p->in_artifact;
        char path[STORE_PATH_MAX];
        bool had = access(store_path(c->store, id, path, sizeof path), F_OK) == 0;
        int rc = store_adopt(c->store, p->in_sink.path, id, NULL);
        if (rc < 0)
            RW_ERROR(WHO, "cannot store artifact %016" PRIx64 " from %s: %s", id, p->name,
                     rw_strerror(rc));
        else
            c->st.uploads++;
        if (rc < 0 && local_failure(rc))
            coord__storage_failed(c, "store an upload", rc);
        peer_lease_t *l = p->in_task ? peer_lease_find(p, p->in_task, p->in_attempt) : NULL;
        if (rc == 0 && !had && l && l->n_fresh < PEER_FRESH_MAX)
            l->fresh[l->n_fresh++] = id;
        peer_end_in(p);
        if (rc == 0 && p->dom_pending && !p->dom_uploaded && id == p->dom.upload) {
            p->dom_fresh = !had;          /* the same bytes as an artifact the job holds: keep it */
            coord__domain_uploaded(c, p); /* may drop p */
        }
        return;
    } else {
        RW_WARN(WHO, "an upload from %s failed: %s", p->name, xfer_recv_error(p->in));
        if (local_failure(st)) /* the coordinator's disk, not the worker's doing */
            coord__storage_failed(c, "store an upload", st);
    }
    peer_end_in(p);
}

static void upload_begin(coord_t *c, peer_t *p, const msg_art_begin_t *b, const msg_t *m)
{
    if (b->kind == MSG_ARTIFACT_DATA && !b->has_task) { /* a new domain's data */
        if (!p->dom_pending || p->dom_uploaded || b->artifact != p->dom.upload) {
            refuse_upload(c, p, b->artifact, RW_ESTATE,
                          "upload refused: no domain data of this worker is awaited");
            return;
        }
        /* the upload is a part of the data its HELLO declared (held-out
         * pairs whole, train pairs as prompts), in the same encoding */
        if (b->size / 2 > p->dom.bytes + (1u << 20)) {
            char why[160];
            snprintf(why, sizeof why,
                     "upload refused: %" PRIu64 " bytes is more than the domain's data (%" PRIu64
                     " bytes, as HELLO said) can make",
                     b->size, p->dom.bytes);
            refuse_upload(c, p, b->artifact, RW_ETOOBIG, why);
            return;
        }
    } else if (!b->has_task || !b->has_attempt ||
               plan_check(c->plan, b->task, (uint32_t)b->attempt, p->name) < 0) {
        peer_lease_t *l = b->has_task ? peer_lease_find(p, b->task, (uint32_t)b->attempt) : NULL;
        if (l && l->cancelling) /* it finished before it heard CANCEL: it drops it now */
            coord__lease_end(c, p, b->task, 0);
        c->st.stale++;
        refuse_upload(c, p, b->artifact, RW_ESTATE,
                      "upload refused: not the live attempt of a task you hold");
        return;
    }
    if (p->in && p->in_artifact != b->artifact)
        peer_end_in(p); /* it gave up on the last one */
    if (!p->in) {
        store_sink_init(&p->in_sink, c->store);
        p->in = xfer_recv_new(NULL, &store_sink_ops, &p->in_sink);
        p->in_artifact = b->artifact;
        /* a task's output (a checkpoint may serve another attempt: kept) */
        bool output = b->has_task && b->kind != MSG_ARTIFACT_CHECKPOINT;
        p->in_task = output ? b->task : 0;
        p->in_attempt = output ? (uint32_t)b->attempt : 0;
    }
    upload_input(c, p, m);
}

/* Takes artifact out of p's queue of FETCHes not yet started, if there. */
static void drop_queued_fetch(peer_t *p, uint64_t artifact)
{
    for (size_t i = 0; i < p->n_fetches; i++) {
        if (p->fetches[i] == artifact) {
            memmove(p->fetches + i, p->fetches + i + 1,
                    (--p->n_fetches - i) * sizeof p->fetches[0]);
            return;
        }
    }
}

void coord__art(coord_t *c, peer_t *p, const msg_t *m)
{
    uint64_t id = 0;
    xfer_artifact_of(m, &id);
    switch (m->type) {
    case MSG_ART_CREDIT:
    case MSG_ART_ACK:
        if (m->type == MSG_ART_ACK && !m->art_ack.ok && m->art_ack.code == -ECANCELED) {
            /* a give-up: of the transfer under way, of one queued, or of one
             * already over (it crossed the end): nothing to stop then */
            if (p->out && xfer_send_input(p->out, m) == 0)
                coord__pump_out(c, p);
            else
                drop_queued_fetch(p, id);
            return;
        }
        if (!p->out || xfer_send_input(p->out, m) < 0) {
            wire_drop(c->w, &p->addr, "credit or an ack for no artifact being sent");
            return;
        }
        coord__pump_out(c, p);
        return;
    case MSG_ART_BEGIN:
        upload_begin(c, p, &m->art_begin, m);
        return;
    case MSG_ART_END:
        if (p->in && id == p->in_artifact && m->art_end.checksum != id) {
            peer_end_in(p);
            refuse_upload(c, p, id, RW_EINVAL, "an artifact's id must be its checksum");
            return;
        }
        /* fall through */
    default:
        if (!p->in || id != p->in_artifact) {
            wire_drop(c->w, &p->addr, "a chunk of no artifact being uploaded");
            return;
        }
        upload_input(c, p, m);
    }
}
