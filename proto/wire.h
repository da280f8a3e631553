/* wire.h — messages over ZeroMQ sockets, and what becomes of the bad ones.
 *
 * A wire_t wraps one socket (ROUTER, DEALER, or any type whose messages are
 * one frame) and is used from that socket's thread only. On a ROUTER a
 * message is [routing id][body]; elsewhere it is [body]; the body is one
 * encoded message (msg.h). wire_send validates and encodes straight into
 * the outgoing frame. wire_recv hands back a decoded message that owns its
 * frame, or drops what cannot be one: a message with the wrong number of
 * frames, too big, truncated, malformed, of another version, of an unknown
 * type or with an invalid field is counted by reason, logged once per
 * sender and reason (and for at most 10 new pairs a minute), and dropped,
 * and the caller simply receives again. A peer speaking another protocol
 * version is answered with a REFUSE that names both versions (unless what
 * it sent was itself a REFUSE).
 *
 * A service loop:
 *
 *     wire_t *w = wire_new(sock, "coordinator", &err);  // before bind/connect
 *     wire_bind(w, "tcp://127.0.0.1:5555", why, sizeof why);
 *     for (;;) {
 *         msg_t m;
 *         wire_peer_t from;
 *         int rc = wire_recv(w, &m, &from, 0);
 *         if (rc < 0)
 *             continue;          // dropped (counted, logged once) or interrupted
 *         switch (m.type) { ... wire_send(w, &from, &reply, 0); ... }
 *         msg_fini(&m);
 *     }
 */
#ifndef RW_PROTO_WIRE_H
#define RW_PROTO_WIRE_H

#include "msg.h"

#include <stddef.h>
#include <stdint.h>

/* Why a received message was dropped. REFUSED is the service's own
 * verdict on a message that was valid on the wire (wire_drop). */
#define WIRE_DROP_MAP(XX)                                                                          \
    XX(FRAMING, "wrong number of frames")                                                          \
    XX(TOOBIG, "too big")                                                                          \
    XX(TRUNC, "truncated")                                                                         \
    XX(MALFORMED, "malformed")                                                                     \
    XX(VERSION, "another protocol version")                                                        \
    XX(TYPE, "unknown message type")                                                               \
    XX(FIELD, "invalid field")                                                                     \
    XX(REFUSED, "refused by the service")

typedef enum {
#define XX(name, text) WIRE_DROP_##name,
    WIRE_DROP_MAP(XX)
#undef XX
        WIRE_DROP__COUNT
} wire_drop_t;

/* Who sent a message (or is to get one). */
typedef struct wire_peer {
    uint8_t id[255]; /* ROUTER routing id; id_len 0 on other sockets */
    size_t id_len;
    char addr[64]; /* the peer's IP from ZeroMQ, or "" (inproc, ipc) */
} wire_peer_t;

typedef struct wire_stats {
    uint64_t sent, received; /* messages that passed */
    uint64_t dropped[WIRE_DROP__COUNT];
    uint64_t dropped_total;
    uint64_t refusals; /* REFUSEs sent to peers on another version */
    uint64_t unlogged; /* drops not logged: their peer and reason were, or the
                        * minute's lines for new ones were spent */
} wire_stats_t;

typedef struct wire wire_t;

/* Wraps sock (borrowed: the caller closes it after wire_destroy), logging
 * as who. Sets ZMQ_MAXMSGSIZE to MSG_MAX_BYTES, so ZeroMQ cuts off a peer
 * that announces a bigger frame before allocating it, and on a ROUTER
 * ZMQ_ROUTER_MANDATORY, so a reply to a peer that left fails instead of
 * vanishing: call it before bind or connect. Returns NULL with *err set
 * (-errno from ZeroMQ) on failure. */
wire_t *wire_new(void *sock, const char *who, int *err);
/* Accepts NULL; NULLs *self_p. */
void wire_destroy(wire_t **self_p);

/* Sends m (checked against the table first) to `to` (a ROUTER needs its
 * routing id; other sockets take NULL). flags: 0 or ZMQ_DONTWAIT. Returns
 * 0; msg_check's error for an invalid message (logged; nothing sent);
 * RW_EINVAL for a ROUTER without a peer; or -errno from ZeroMQ (EAGAIN,
 * EHOSTUNREACH for a peer that is gone, EINTR, ETERM). */
int wire_send(wire_t *w, const wire_peer_t *to, const msg_t *m, int flags);

/* On a ROUTER, whether a message to `to` can go now, asked before work
 * whose only use is its answer: the routing id is sent at once (with
 * ZMQ_SNDMORE), and ZMQ_ROUTER_MANDATORY fails it for a peer whose
 * connection is gone, even while requests it sent before going are still
 * queued to be read. Returns 0, and the message is then open: the next
 * wire_send to `to` sends its body alone (a wire_send that fails to encode
 * leaves it open for another try; one to another peer first ends it with
 * an empty body, an error in the caller, which is logged). Returns
 * -EHOSTUNREACH for a peer that is gone, -EAGAIN for one that holds
 * ZMQ_SNDHWM answers unread (another would be dropped), RW_EINVAL off a
 * ROUTER or without a routing id; nothing is open after an error. */
int wire_reserve(wire_t *w, const wire_peer_t *to);

/* Receives one message into *m (msg_fini it) and its sender into *from
 * (may be NULL). flags: 0 or ZMQ_DONTWAIT. Returns 0; -errno when nothing
 * came (EAGAIN after ZMQ_DONTWAIT or ZMQ_RCVTIMEO, EINTR, ETERM); or, when
 * a message came and was dropped, the decoder's RW_ code (RW_EVERSION: m
 * holds the peer's version and the REFUSE went out). Receive again after
 * either. */
int wire_recv(wire_t *w, msg_t *m, wire_peer_t *from, int flags);

/* Counts a message the service refuses although it was valid on the wire
 * (a result for an unknown task) as REFUSED, and logs it once per peer:
 * "dropped a message from 0a1b2c3d@10.0.0.7: <why>". */
void wire_drop(wire_t *w, const wire_peer_t *from, const char *why);

/* 0 if endpoint is one another process can reach or bind as written, else
 * RW_EINVAL with why filled in ("ENDPOINT: what is wrong; ..."). It is
 * tcp://HOST:PORT or ipc://PATH: inproc:// does not leave the process, and
 * ZeroMQ refuses "foo" or "localhost:5555" only at the connect, which a
 * worker would retry for ever. HOST is not empty and * (every interface)
 * only to bind. ZeroMQ takes any number for a tcp:// port and wraps it, so
 * tcp://host:99999 would bind or reach port 34463: the port must be
 * 1..65535, or * or 0 (a free port) to bind. PATH is not empty and fits a
 * socket address (107 bytes on Linux). */
int wire_endpoint_check(const char *endpoint, bool bind, char *why, size_t whylen);
/* The same for a command line's flag: 0, or 2 (a usage error) after
 * "prog: --bind tcp://...: the port must be ..." on stderr. */
int wire_endpoint_arg(const char *prog, const char *flag, const char *endpoint, bool bind);

/* Binds w's socket to endpoint. Binding ipc://PATH, ZeroMQ first unlinks
 * whatever socket file is at PATH, so a second service given the path a
 * live one serves on would take it over without a word (over tcp the same
 * mistake is EADDRINUSE): a PATH a process accepts connections on is
 * refused; a stale file nobody listens on is bound over. The socket file
 * bound is remembered, and wire_destroy removes it if it is still the one
 * this process bound (ZeroMQ leaves it behind), so a clean exit leaves no
 * litter and never removes a later service's socket. Returns 0; -EADDRINUSE
 * with why "cannot bind ipc://PATH: ipc://PATH is in use by a running
 * service"; or -errno from ZeroMQ with why "cannot bind EP: ...". */
int wire_bind(wire_t *w, const char *endpoint, char *why, size_t whylen);

/* Why the message the last wire_recv returned an error for was dropped,
 * "<reason>: <why>" ("invalid field: SCORE_REQ: prompts and responses
 * differ in number"); "" when nothing came or it was received. */
const char *wire_last_drop(const wire_t *w);

void wire_stats(const wire_t *w, wire_stats_t *st);
/* "too big" for a reason; never NULL. */
const char *wire_drop_name(wire_drop_t reason);
/* "0a1b2c3d@10.0.0.7", "@10.0.0.7" or "peer" into buf (n bytes); returns buf. */
const char *wire_peer_name(const wire_peer_t *p, char *buf, size_t n);

#endif
