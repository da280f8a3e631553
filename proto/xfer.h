/* xfer.h — artifacts in chunks, with credit-based flow control.
 *
 * Shards, checkpoints and models are far bigger than one message, so they
 * travel as ART_BEGIN, ART_CHUNK..., ART_END, and the receiver answers with
 * ART_CREDIT and one ART_ACK. The two state machines here are pure: they
 * take messages in and give messages out, and never touch a socket or a
 * clock. The caller pumps them through wire_send/wire_recv and decides what
 * a timeout is.
 *
 * Flow control: the receiver grants credit in chunks: a window on
 * ART_BEGIN, then one more for every chunk it has stored, in batches. The
 * sender sends a chunk only while it holds credit, so at most the window is
 * ever in flight and a slow disk slows the sender down instead of filling
 * memory on either side.
 *
 * Integrity: both ends run proto_checksum (XXH64) over the bytes as they
 * pass; ART_END carries the sender's value (at the end rather than in
 * ART_BEGIN, so a file is read once). A checksum mismatch, or a chunk lost
 * or out of order, makes the receiver drop what it has and answer ART_ACK
 * {ok: false, code: RW_ECHECKSUM or RW_ETRUNC}; the sender then starts again
 * from ART_BEGIN, up to its attempts. Every other refusal is final.
 *
 * Sender (a worker uploading a checkpoint on its DEALER):
 *
 *     msg_art_begin_t b = {.artifact = id, .kind = MSG_ARTIFACT_CHECKPOINT, .size = n};
 *     xfer_send_t *s = xfer_send_new(&b, &xfer_mem_source_ops, data, 0, &err);
 *     msg_t out, in;
 *     while (xfer_send_status(s) == 0) {
 *         while (xfer_send_next(s, &out) == 1)
 *             wire_send(w, NULL, &out, 0);
 *         if (xfer_send_status(s) == 0 && wire_recv(w, &in, NULL, 0) == 0) {
 *             xfer_send_input(s, &in);  // ART_CREDIT, ART_ACK; other messages: RW_ESTATE
 *             msg_fini(&in);
 *         }
 *     }
 *     rc = xfer_send_status(s);         // 1 stored, < 0 refused
 *
 * Receiver (the coordinator on its ROUTER), for an ART_* message `in` from
 * peer `from` (one xfer_recv_t per transfer, found by peer and artifact id):
 *
 *     xfer_recv_input(r, &in);
 *     while (xfer_recv_next(r, &out) == 1)
 *         wire_send(w, &from, &out, 0);
 *     if (xfer_recv_status(r) != 0) ...  // 1 stored in the sink, < 0 refused
 */
#ifndef RW_PROTO_XFER_H
#define RW_PROTO_XFER_H

#include "afile.h"
#include "msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XFER_WINDOW   8             /* chunks in flight, by default */
#define XFER_CHUNK    MSG_CHUNK_MAX /* bytes in a chunk, by default */
#define XFER_ATTEMPTS 3             /* sends of one artifact before giving up */

/* Where a sender's bytes come from. read makes bytes [off, off + n) of the
 * artifact available at *p: a pointer into the source's own memory, or
 * scratch (n bytes, given when needs_scratch) filled. Returns 0 or a
 * negative error. */
struct xfer_source_ops {
    int (*read)(const void *src, uint64_t off, size_t n, void *scratch, const void **p);
    bool needs_scratch;
};

/* Where a receiver's bytes go. open starts an artifact (again, after a
 * failed attempt: anything written before is dropped); write gets the
 * bytes in order, off counting from 0; commit makes them final once the
 * checksum matched; abort drops them. Each returns 0 or a negative error
 * (open may refuse an artifact: its code goes back to the sender). */
struct xfer_sink_ops {
    int (*open)(void *sink, const msg_art_begin_t *begin);
    int (*write)(void *sink, uint64_t off, const void *p, size_t n);
    int (*commit)(void *sink);
    void (*abort)(void *sink);
};

/* A source over memory: src is the artifact's first byte (borrowed). */
extern const struct xfer_source_ops xfer_mem_source_ops;

/* A source over a file: src is an xfer_file_source_t. */
typedef struct xfer_file_source {
    int fd;
    uint64_t size; /* bytes, when it was opened */
} xfer_file_source_t;
extern const struct xfer_source_ops xfer_file_source_ops;
/* Opens path for reading. Returns 0, or -errno with s->fd = -1. */
int xfer_file_source_open(xfer_file_source_t *s, const char *path);
/* Closes the file; safe after a failed open and twice. */
void xfer_file_source_close(xfer_file_source_t *s);

/* A sink into memory, grown as bytes arrive (never to more than the bytes
 * received: a declared size is not an allocation). Zero it to start; data
 * holds the artifact once committed (the caller may take it and free() it,
 * then zero the sink); xfer_mem_sink_fini frees it otherwise. */
typedef struct xfer_mem_sink {
    uint8_t *data;
    size_t len, cap;
    uint64_t size; /* declared */
    bool committed;
} xfer_mem_sink_t;
extern const struct xfer_sink_ops xfer_mem_sink_ops;
void xfer_mem_sink_fini(xfer_mem_sink_t *s);

/* A sink into a file that appears whole at path on commit, or not at all
 * (core/afile.h). */
typedef struct xfer_file_sink {
    char *path;
    rw_afile_t af;
    bool open, committed;
} xfer_file_sink_t;
extern const struct xfer_sink_ops xfer_file_sink_ops;
/* Copies path. */
void xfer_file_sink_init(xfer_file_sink_t *s, const char *path);
/* Drops an uncommitted file; safe on a zeroed or finished sink. */
void xfer_file_sink_fini(xfer_file_sink_t *s);

/* The artifact id of an ART_* message. Returns 0, or RW_EMSGTYPE for any
 * other message. */
int xfer_artifact_of(const msg_t *m, uint64_t *id);

/* ---- sender ---- */

typedef struct xfer_send xfer_send_t;

typedef struct xfer_send_stats {
    uint64_t chunks;     /* sent, over all attempts */
    uint64_t bytes;      /* of chunk data, over all attempts */
    uint32_t attempts;   /* ART_BEGINs sent */
    uint64_t max_credit; /* most credit ever held */
} xfer_send_stats_t;

/* A sender of the artifact begin describes (copied; chunk 0 means
 * XFER_CHUNK) from src through ops (both borrowed, alive until destroy),
 * trying at most attempts times (0: XFER_ATTEMPTS). Returns NULL with *err
 * = RW_EFIELD or RW_ETOOBIG if begin is not a valid ART_BEGIN. */
xfer_send_t *xfer_send_new(const msg_art_begin_t *begin, const struct xfer_source_ops *ops,
                           const void *src, int attempts, int *err);
/* Accepts NULL; NULLs *self_p. */
void xfer_send_destroy(xfer_send_t **self_p);
/* The next message to send. Returns 1 with *out filled (its pointers are
 * borrowed from the sender and valid until the next call; msg_fini is not
 * needed); 0 when nothing can go until input arrives or the transfer is
 * over; or the source's negative error, which fails the transfer. */
int xfer_send_next(xfer_send_t *s, msg_t *out);
/* Takes the receiver's ART_CREDIT or ART_ACK. Returns 0; RW_ENOTFOUND for
 * another artifact; RW_ESTATE for a message that has no place now (any
 * other type, credit after the end). in stays the caller's. */
int xfer_send_input(xfer_send_t *s, const msg_t *in);
/* Starts the transfer again from ART_BEGIN, unasked: for a sender whose
 * receiver stopped answering (a message lost on the way). Returns 0, or
 * RW_ESTATE once it is over. */
int xfer_send_restart(xfer_send_t *s);
/* 1 when the receiver stored the artifact, 0 while it travels, or the
 * final error (the receiver's code, or the source's). */
int xfer_send_status(const xfer_send_t *s);
/* Why it failed ("checksum ... (attempt 3 of 3)"); "" if it did not. */
const char *xfer_send_error(const xfer_send_t *s);
void xfer_send_stats(const xfer_send_t *s, xfer_send_stats_t *st);

/* ---- receiver ---- */

typedef struct xfer_recv xfer_recv_t;

typedef struct xfer_recv_opts {
    uint32_t window;   /* chunks in flight (0: XFER_WINDOW; at most MSG_WINDOW_MAX) */
    uint64_t max_size; /* largest artifact taken (0: MSG_ART_MAX) */
    size_t max_chunk;  /* largest chunk taken (0: MSG_CHUNK_MAX) */
    int attempts;      /* ART_BEGINs taken for one artifact (0: XFER_ATTEMPTS) */
} xfer_recv_opts_t;

typedef struct xfer_recv_stats {
    uint64_t chunks;          /* stored, over all attempts */
    uint64_t stale;           /* chunks or ends of an attempt already refused, dropped */
    uint32_t attempts;        /* ART_BEGINs taken */
    uint64_t max_outstanding; /* most chunks granted and not yet arrived */
} xfer_recv_stats_t;

/* A receiver writing through ops into sink (both borrowed, alive until
 * destroy). It takes the first artifact id it sees in an ART_BEGIN. */
xfer_recv_t *xfer_recv_new(const xfer_recv_opts_t *opts, const struct xfer_sink_ops *ops,
                           void *sink);
/* Aborts an unfinished sink; accepts NULL; NULLs *self_p. */
void xfer_recv_destroy(xfer_recv_t **self_p);
/* Takes an ART_BEGIN, ART_CHUNK or ART_END. Returns 0 when taken (a chunk
 * of an attempt already refused is dropped quietly); a negative code when
 * it refused the message (RW_ENOTFOUND: another artifact; RW_ESTATE: no
 * place now) or the transfer (the code its ART_ACK carries). in stays the
 * caller's; the chunk's bytes are in the sink when this returns. */
int xfer_recv_input(xfer_recv_t *r, const msg_t *in);
/* The next reply, as xfer_send_next: 1 with *out (ART_CREDIT or ART_ACK),
 * 0 when there is none. */
int xfer_recv_next(xfer_recv_t *r, msg_t *out);
/* 1 when the artifact is committed to the sink, 0 while it travels (or
 * waits for the sender to start again), or the final error. */
int xfer_recv_status(const xfer_recv_t *r);
/* Why it was last refused; "" if it never was. */
const char *xfer_recv_error(const xfer_recv_t *r);
/* The ART_ACK a receiver sends when it drops an unfinished transfer of
 * artifact (whatever its receiver had seen of it, even nothing yet): a
 * refusal with code -ECANCELED and reason (borrowed), which ends the
 * sender's transfer at once instead of leaving it to wait for credit that
 * never comes. */
void xfer_give_up(msg_t *out, uint64_t artifact, const char *reason);
void xfer_recv_stats(const xfer_recv_t *r, xfer_recv_stats_t *st);

#endif
