/* msg.h — every message of the rewire protocol, declared once.
 *
 * MSG_TABLE below is the protocol. Each MSG(...) line opens a message (its
 * enum name, the name of its struct and union member, its wire code, whether
 * a cross-field rule applies, and what it is for); each F(...) line is one
 * field (its name, REQ or OPT, and its type with the limits a value must
 * meet); END closes it. The type enum, the structs, the names, the encoder,
 * the decoder and the validation all follow from the table, so a field is
 * added in one place.
 *
 * On the wire a message is one ZeroMQ frame (after any ROUTER identity
 * frames) holding one MessagePack array: [version, type, {field: value}].
 * The field map uses the field names below as keys, omits absent optional
 * fields and must hold nothing else. The first element is the protocol
 * version in every version, present and future, so a peer can always tell
 * "another version" from "garbage", and type 3 is REFUSE forever so a
 * refusal is never answered with a refusal.
 *
 * Sending: fill a msg_t and hand it to wire_send() (wire.h) or msg_encode().
 * Strings, lists and bins in a msg_t you fill are borrowed: they must stay
 * alive until it is encoded, and msg_fini() frees none of them.
 *
 *     msg_t m;
 *     msg_init(&m, MSG_HELLO);
 *     const char *caps[] = {"train"};
 *     m.hello.worker_id = "node7:4711";
 *     m.hello.caps = (msg_strs_t){caps, 1};
 *     m.hello.threads = 8;
 *     m.hello.domain = "legal";       // optional strings: NULL when absent
 *     m.hello.data_pairs = 12000;     // optional numbers: value + has_ flag
 *     m.hello.has_data_pairs = true;
 *     ...
 *     rc = wire_send(w, NULL, &m);    // validates against the table first
 *
 * Receiving: msg_decode() (or wire_recv()) checks every claimed size against
 * the bytes present and the table's caps before anything is allocated, then
 * every field against its type and limits, then the message's rule. A
 * decoded msg_t owns copies of its strings and lists (freed by msg_fini());
 * its bins point into the received buffer, which the caller keeps alive —
 * wire_recv() hands the ZeroMQ frame to the message for that.
 */
#ifndef RW_PROTO_MSG_H
#define RW_PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Limits every peer enforces. */
#define MSG_MAX_BYTES       ((size_t)4 << 20)   /* one encoded message */
#define MSG_MAX_ITEMS       ((size_t)1 << 17)   /* MessagePack items in one message */
#define MSG_CHUNK_MAX       ((size_t)1 << 20)   /* bytes in one ART_CHUNK */
#define MSG_ART_MAX         ((uint64_t)4 << 30) /* bytes in one artifact */
#define MSG_WINDOW_MAX      256                 /* chunks of credit in one grant */
#define MSG_NAME_MAX        64                  /* worker ids, domains, metric names */
#define MSG_TEXT_MAX        4096                /* error texts */
#define MSG_REASON_MAX      1024                /* refusal, cancel and shutdown reasons */
#define MSG_CONFIG_MAX      ((size_t)64 << 10)  /* a model configuration (JSON) */
#define MSG_PROMPT_MAX      ((size_t)16 << 10)  /* one prompt or response */
#define MSG_BATCH_MAX       64                  /* prompts in one route or score request */
#define MSG_DOMAINS_MAX     1024                /* domains in one job */
#define MSG_METRICS_MAX     64                  /* metrics in one message */
#define MSG_TENSORS_MAX     1024                /* tensors declared in one result */
#define MSG_RANK_MAX        8                   /* dimensions of one tensor */
#define MSG_TENSOR_NAME_MAX 128                 /* bytes of a tensor's name */
#define MSG_ELEMS_MAX       ((uint64_t)1 << 40) /* elements of one tensor */
#define MSG_ATTEMPTS_MAX    1000                /* attempts at one task */
#define MSG_WHY_MAX         192                 /* bytes of a why-buffer, NUL included */

/* The kinds of task a coordinator leases (the wire carries the name). */
#define MSG_TASK_KIND_MAP(XX)                                                                      \
    XX(SEED, "seed")                     /* stage 0: the all-domain model and baseline */          \
    XX(EXPERT, "expert")                 /* a domain's feed-forward expert (moe) */                \
    XX(DOMAIN_RM, "domain_rm")           /* a full domain reward model (router) */                 \
    XX(ADAPTER, "adapter")               /* a domain's LoRA reward adapter (adapter) */            \
    XX(ROUTER, "router")                 /* the external domain classifier */                      \
    XX(ROUTER_ADAPTER, "router_adapter") /* the router LoRA adapter */                             \
    XX(GATES, "gates")                   /* the MoE gates */                                       \
    XX(EVAL, "eval")                     /* evaluation of a bundle on held-out pairs */

/* The kinds of artifact that travel (ART_BEGIN.kind). */
#define MSG_ART_KIND_MAP(XX)                                                                       \
    XX(SHARD, "shard")           /* a domain's training or evaluation pairs */                     \
    XX(DATA, "data")             /* the data a worker brings for a new domain */                   \
    XX(CHECKPOINT, "checkpoint") /* a running task's state */                                      \
    XX(MODEL, "model")           /* a finished task's weights */                                   \
    XX(TOKENIZER, "tokenizer")                                                                     \
    XX(BUNDLE, "bundle")

/* Value 0 of each is no kind, so a forgotten field fails validation. */
typedef enum {
    MSG_TASK__NONE = 0,
#define XX(id, name) MSG_TASK_##id,
    MSG_TASK_KIND_MAP(XX)
#undef XX
        MSG_TASK__COUNT
} msg_task_kind_t;

typedef enum {
    MSG_ARTIFACT__NONE = 0,
#define XX(id, name) MSG_ARTIFACT_##id,
    MSG_ART_KIND_MAP(XX)
#undef XX
        MSG_ARTIFACT__COUNT
} msg_art_kind_t;

/* Borrowed views; see the top of this file for who owns what they point at. */
typedef struct msg_bin {
    const void *p;
    size_t n;
} msg_bin_t;
typedef struct msg_strs {
    const char *const *v;
    size_t n;
} msg_strs_t;
typedef struct msg_u64s {
    const uint64_t *v;
    size_t n;
} msg_u64s_t;
typedef struct msg_f64s {
    const double *v;
    size_t n;
} msg_f64s_t;
typedef struct msg_f32s {
    const float *v;
    size_t n;
} msg_f32s_t;
typedef struct msg_metric {
    const char *name;
    double value;
} msg_metric_t;
typedef struct msg_metrics {
    const msg_metric_t *v;
    size_t n;
} msg_metrics_t;
/* A tensor's name and shape, dim[0..rank) (row-major, outermost first). */
typedef struct msg_tensor {
    const char *name;
    uint32_t rank;
    uint64_t dim[MSG_RANK_MAX];
} msg_tensor_t;
typedef struct msg_tensors {
    const msg_tensor_t *v;
    size_t n;
} msg_tensors_t;

/* Field types, with the limits a value must meet (bounds are inclusive):
 *   MT_U64(lo, hi)             uint64_t in lo..hi
 *   MT_I64(lo, hi)             int64_t in lo..hi
 *   MT_F64(lo, hi)             double, finite, in lo..hi
 *   MT_BOOL()                  bool
 *   MT_ENUM(set)               msg_<set>_t, nonzero; a name on the wire
 *   MT_NAME(max)               const char *: 1..max of [A-Za-z0-9._:-], first alnum
 *   MT_STR(min, max)           const char *: min..max bytes of UTF-8, no NUL
 *   MT_JSON(max)               const char *: a JSON object of at most max bytes
 *   MT_BIN(max)                msg_bin_t of at most max bytes
 *   MT_NAMES(min, max, len)    msg_strs_t: min..max names of at most len bytes
 *   MT_STRS(min, max, len)     msg_strs_t: min..max texts of at most len bytes
 *   MT_U64S(min, max)          msg_u64s_t: min..max numbers
 *   MT_F64S(min, max, lo, hi)  msg_f64s_t: min..max finite doubles in lo..hi
 *   MT_F32S(min, max, lo, hi)  msg_f32s_t: min..max finite floats in lo..hi
 *   MT_METRICS(max)            msg_metrics_t: at most max distinct names, finite values
 *   MT_TENSORS(max)            msg_tensors_t: at most max distinct names; rank
 *                              1..MSG_RANK_MAX, dims >= 1, <= MSG_ELEMS_MAX elements
 * An OPT field of a number, bool or enum type comes with `bool has_<name>`;
 * any other OPT field is absent when NULL (strings) or empty (lists, bins).
 * An optional list sent empty arrives as absent. */

/* MSG(ID, name, code, RULE or NORULE, what it is for) F(name, field, REQ or OPT, type) END(name).
 * Codes are forever: never reuse one. RULE names the cross-field check
 * msg__rule_<name> in msg_rules.c. */
// clang-format off
#define MSG_TABLE(MSG, F, END)                                                                     \
    MSG(HELLO, hello, 1, RULE, "a worker introduces itself; domain and data_* when it brings "     \
                               "a new domain's data (then all five are set)")                      \
    F(hello, worker_id,     REQ, MT_NAME(MSG_NAME_MAX))                                            \
    F(hello, caps,          REQ, MT_NAMES(1, 16, 32))   /* "train", "router", "score" */           \
    F(hello, threads,       REQ, MT_U64(1, 1024))                                                  \
    F(hello, domain,        OPT, MT_NAME(MSG_NAME_MAX))                                            \
    F(hello, data_pairs,    OPT, MT_U64(1, 1000000000))                                            \
    F(hello, data_bytes,    OPT, MT_U64(1, MSG_ART_MAX))                                           \
    F(hello, data_checksum, OPT, MT_U64(0, UINT64_MAX)) /* proto_checksum of the data */           \
    F(hello, data_upload,   OPT, MT_U64(1, UINT64_MAX)) /* artifact: what travels (held-out */     \
                                                        /* pairs, train prompts); data stays */    \
    END(hello)                                                                                     \
    MSG(WELCOME, welcome, 2, NORULE, "the coordinator accepts a worker")                           \
    F(welcome, worker_id,    REQ, MT_NAME(MSG_NAME_MAX))                                           \
    F(welcome, session,      REQ, MT_U64(1, UINT64_MAX))                                           \
    F(welcome, heartbeat_ms, REQ, MT_U64(10, 600000))                                              \
    F(welcome, upload,       OPT, MT_U64(1, UINT64_MAX)) /* send HELLO's data_upload now */        \
    END(welcome)                                                                                   \
    MSG(REFUSE, refuse, 3, NORULE, "a peer is turned away (another protocol version, a refused "   \
                                   "domain, a duplicate id); it must not retry unchanged")         \
    F(refuse, code,   REQ, MT_I64(INT32_MIN, -1))      /* an rw error code */                      \
    F(refuse, reason, REQ, MT_STR(1, MSG_REASON_MAX))                                              \
    END(refuse)                                                                                    \
    MSG(LEASE, lease, 4, RULE, "a task for a worker; expert, domain_rm and adapter tasks name "    \
                               "their domain")                                                     \
    F(lease, task,        REQ, MT_U64(1, UINT64_MAX))                                              \
    F(lease, attempt,     REQ, MT_U64(1, MSG_ATTEMPTS_MAX))                                        \
    F(lease, kind,        REQ, MT_ENUM(task_kind))                                                 \
    F(lease, domain,      OPT, MT_NAME(MSG_NAME_MAX))                                              \
    F(lease, config,      REQ, MT_JSON(MSG_CONFIG_MAX)) /* the model configuration */              \
    F(lease, deadline_ms, REQ, MT_U64(1000, 2592000000)) /* from receipt; at most 30 days */       \
    F(lease, shard,       OPT, MT_U64(1, UINT64_MAX))   /* artifact: training pairs */             \
    F(lease, eval_shard,  OPT, MT_U64(1, UINT64_MAX))   /* artifact: held-out pairs */             \
    F(lease, base,        OPT, MT_U64(1, UINT64_MAX))   /* artifact the task starts from */        \
    F(lease, tokenizer,   OPT, MT_U64(1, UINT64_MAX))   /* artifact: the shared tokenizer */       \
    F(lease, experts,     OPT, MT_U64S(1, MSG_DOMAINS_MAX)) /* gates: experts, domain order */     \
    END(lease)                                                                                     \
    MSG(PROGRESS, progress, 5, RULE, "a running task's step (at most steps) and metrics")          \
    F(progress, task,        REQ, MT_U64(1, UINT64_MAX))                                           \
    F(progress, attempt,     REQ, MT_U64(1, MSG_ATTEMPTS_MAX))                                     \
    F(progress, step,        REQ, MT_U64(0, UINT64_MAX))                                           \
    F(progress, steps,       REQ, MT_U64(1, UINT64_MAX))                                           \
    F(progress, loss,        REQ, MT_F64(0, 1e9))                                                  \
    F(progress, accuracy,    REQ, MT_F64(0, 1))                                                    \
    F(progress, pairs_per_s, REQ, MT_F64(0, 1e12))                                                 \
    F(progress, metrics,     OPT, MT_METRICS(MSG_METRICS_MAX))                                     \
    END(progress)                                                                                  \
    MSG(CHECKPOINT, checkpoint, 6, NORULE, "a running task's checkpoint was uploaded")             \
    F(checkpoint, task,     REQ, MT_U64(1, UINT64_MAX))                                            \
    F(checkpoint, attempt,  REQ, MT_U64(1, MSG_ATTEMPTS_MAX))                                      \
    F(checkpoint, step,     REQ, MT_U64(0, UINT64_MAX))                                            \
    F(checkpoint, artifact, REQ, MT_U64(1, UINT64_MAX))                                            \
    END(checkpoint)                                                                                \
    MSG(RESULT, result, 7, NORULE, "a task finished; its artifact was uploaded")                   \
    F(result, task,     REQ, MT_U64(1, UINT64_MAX))                                                \
    F(result, attempt,  REQ, MT_U64(1, MSG_ATTEMPTS_MAX))                                          \
    F(result, artifact, REQ, MT_U64(1, UINT64_MAX))                                                \
    F(result, metrics,  OPT, MT_METRICS(MSG_METRICS_MAX))                                          \
    F(result, tensors,  OPT, MT_TENSORS(MSG_TENSORS_MAX)) /* what the artifact holds */            \
    END(result)                                                                                    \
    MSG(HEARTBEAT, heartbeat, 8, NORULE, "a peer is alive (and on which task)")                    \
    F(heartbeat, seq,     REQ, MT_U64(0, UINT64_MAX))                                              \
    F(heartbeat, task,    OPT, MT_U64(1, UINT64_MAX))                                              \
    F(heartbeat, attempt, OPT, MT_U64(1, MSG_ATTEMPTS_MAX))                                        \
    END(heartbeat)                                                                                 \
    MSG(ERROR, error, 9, NORULE, "something failed: a task, a request (req), or the peer")         \
    F(error, code,    REQ, MT_I64(INT32_MIN, -1))       /* an rw error code */                     \
    F(error, text,    REQ, MT_STR(1, MSG_TEXT_MAX))                                                \
    F(error, task,    OPT, MT_U64(1, UINT64_MAX))                                                  \
    F(error, attempt, OPT, MT_U64(1, MSG_ATTEMPTS_MAX))                                            \
    F(error, req,     OPT, MT_U64(0, UINT64_MAX))                                                  \
    END(error)                                                                                     \
    MSG(CANCEL, cancel, 10, NORULE, "stop working on a task attempt")                              \
    F(cancel, task,    REQ, MT_U64(1, UINT64_MAX))                                                 \
    F(cancel, attempt, REQ, MT_U64(1, MSG_ATTEMPTS_MAX))                                           \
    F(cancel, reason,  OPT, MT_STR(1, MSG_REASON_MAX))                                             \
    END(cancel)                                                                                    \
    MSG(SHUTDOWN, shutdown, 11, NORULE, "the peer should finish up and exit")                      \
    F(shutdown, reason, REQ, MT_STR(1, MSG_REASON_MAX))                                            \
    END(shutdown)                                                                                  \
    MSG(FETCH, fetch, 12, NORULE, "send me this artifact (a shard, a base model, a new domain's "  \
                                  "data)")                                                         \
    F(fetch, artifact, REQ, MT_U64(1, UINT64_MAX))                                                 \
    END(fetch)                                                                                     \
    MSG(TRAIN_REQ, train_req, 13, RULE, "the router service trains a classifier (router, "         \
                                        "router_adapter or gates), one shard per domain")          \
    F(train_req, task,    REQ, MT_U64(1, UINT64_MAX))                                              \
    F(train_req, attempt, REQ, MT_U64(1, MSG_ATTEMPTS_MAX))                                        \
    F(train_req, kind,    REQ, MT_ENUM(task_kind))                                                 \
    F(train_req, config,  REQ, MT_JSON(MSG_CONFIG_MAX))                                            \
    F(train_req, domains, REQ, MT_NAMES(1, MSG_DOMAINS_MAX, MSG_NAME_MAX))                         \
    F(train_req, shards,  REQ, MT_U64S(1, MSG_DOMAINS_MAX)) /* artifacts, as domains */            \
    F(train_req, base,    OPT, MT_U64(1, UINT64_MAX))                                              \
    END(train_req)                                                                                 \
    MSG(ROUTE_REQ, route_req, 14, NORULE, "which domain does each prompt belong to?")              \
    F(route_req, req,     REQ, MT_U64(0, UINT64_MAX))                                              \
    F(route_req, bundle,  REQ, MT_STR(1, 256))                                                     \
    F(route_req, prompts, REQ, MT_STRS(1, MSG_BATCH_MAX, MSG_PROMPT_MAX))                          \
    END(route_req)                                                                                 \
    MSG(ROUTE_REP, route_rep, 15, RULE, "per prompt the chosen domain index and the probability "  \
                                        "of every domain (row-major, prompts x domains)")          \
    F(route_rep, req,     REQ, MT_U64(0, UINT64_MAX))                                              \
    F(route_rep, domains, REQ, MT_NAMES(1, MSG_DOMAINS_MAX, MSG_NAME_MAX))                         \
    F(route_rep, choice,  REQ, MT_U64S(1, MSG_BATCH_MAX))                                          \
    F(route_rep, probs,   REQ, MT_F32S(1, MSG_BATCH_MAX * MSG_DOMAINS_MAX, 0, 1))                  \
    END(route_rep)                                                                                 \
    MSG(SCORE_REQ, score_req, 16, RULE, "the reward of each (prompt, response) pair")              \
    F(score_req, req,       REQ, MT_U64(0, UINT64_MAX))                                            \
    F(score_req, bundle,    REQ, MT_STR(1, 256))                                                   \
    F(score_req, prompts,   REQ, MT_STRS(1, MSG_BATCH_MAX, MSG_PROMPT_MAX))                        \
    F(score_req, responses, REQ, MT_STRS(1, MSG_BATCH_MAX, MSG_PROMPT_MAX))                        \
    END(score_req)                                                                                 \
    MSG(SCORE_REP, score_rep, 17, RULE, "one reward per pair (and the domain that scored it)")     \
    F(score_rep, req,     REQ, MT_U64(0, UINT64_MAX))                                              \
    F(score_rep, rewards, REQ, MT_F64S(1, MSG_BATCH_MAX, -1e30, 1e30))                             \
    F(score_rep, domains, OPT, MT_U64S(1, MSG_BATCH_MAX))                                          \
    END(score_rep)                                                                                 \
    MSG(HEALTH_REQ, health_req, 18, NORULE, "is this service up? asked of a coordinator (and, "    \
                                            "with worker, whether that worker is registered) "     \
                                            "or of a router service, by any client")               \
    F(health_req, req,    REQ, MT_U64(0, UINT64_MAX))                                              \
    F(health_req, worker, OPT, MT_NAME(MSG_NAME_MAX))                                              \
    END(health_req)                                                                                \
    MSG(HEALTH_REP, health_rep, 19, RULE, "the service is up: what it is, its state and counts; "  \
                                          "worker and worker_live answer a request's worker")      \
    F(health_rep, req,         REQ, MT_U64(0, UINT64_MAX))                                         \
    F(health_rep, service,     REQ, MT_NAME(32))         /* "coordinator", "router" */             \
    F(health_rep, state,       REQ, MT_NAME(32))         /* running, done, serving, ... */         \
    F(health_rep, uptime_ms,   REQ, MT_U64(0, UINT64_MAX))                                         \
    F(health_rep, workers,     OPT, MT_U64(0, UINT32_MAX)) /* peers registered (coordinator) */    \
    F(health_rep, tasks_total, OPT, MT_U64(0, UINT64_MAX))                                         \
    F(health_rep, tasks_done,  OPT, MT_U64(0, UINT64_MAX))                                         \
    F(health_rep, bundles,     OPT, MT_U64(0, UINT32_MAX)) /* bundles it can serve (router) */     \
    F(health_rep, worker,      OPT, MT_NAME(MSG_NAME_MAX))                                         \
    F(health_rep, worker_live, OPT, MT_BOOL())          /* registered, heard in the timeout */  \
    END(health_rep)                                                                                \
    MSG(ART_BEGIN, art_begin, 20, NORULE, "an artifact starts (or starts again) to travel; the "   \
                                          "receiver answers with credit or a failed ART_ACK")      \
    F(art_begin, artifact, REQ, MT_U64(1, UINT64_MAX))  /* chosen by the sender */                 \
    F(art_begin, kind,     REQ, MT_ENUM(art_kind))                                                 \
    F(art_begin, size,     REQ, MT_U64(0, MSG_ART_MAX))                                            \
    F(art_begin, chunk,    REQ, MT_U64(1, MSG_CHUNK_MAX)) /* bytes of every chunk but the last */  \
    F(art_begin, task,     OPT, MT_U64(1, UINT64_MAX))                                             \
    F(art_begin, attempt,  OPT, MT_U64(1, MSG_ATTEMPTS_MAX))                                       \
    F(art_begin, step,     OPT, MT_U64(0, UINT64_MAX))                                             \
    END(art_begin)                                                                                 \
    MSG(ART_CHUNK, art_chunk, 21, NORULE, "bytes [seq * chunk, + data.n) of an artifact")          \
    F(art_chunk, artifact, REQ, MT_U64(1, UINT64_MAX))                                             \
    F(art_chunk, seq,      REQ, MT_U64(0, MSG_ART_MAX))                                            \
    F(art_chunk, data,     REQ, MT_BIN(MSG_CHUNK_MAX))                                             \
    END(art_chunk)                                                                                 \
    MSG(ART_CREDIT, art_credit, 22, NORULE, "the receiver can take this many more chunks")         \
    F(art_credit, artifact, REQ, MT_U64(1, UINT64_MAX))                                            \
    F(art_credit, credit,   REQ, MT_U64(1, MSG_WINDOW_MAX))                                        \
    END(art_credit)                                                                                \
    MSG(ART_END, art_end, 23, NORULE, "all chunks were sent; the whole artifact's checksum")       \
    F(art_end, artifact, REQ, MT_U64(1, UINT64_MAX))                                               \
    F(art_end, checksum, REQ, MT_U64(0, UINT64_MAX))    /* proto_checksum of the bytes */          \
    END(art_end)                                                                                   \
    MSG(ART_ACK, art_ack, 24, RULE, "the artifact was stored (ok) or refused (code and reason; "   \
                                    "RW_ECHECKSUM and RW_ETRUNC mean: send it again)")             \
    F(art_ack, artifact, REQ, MT_U64(1, UINT64_MAX))                                               \
    F(art_ack, ok,       REQ, MT_BOOL())                                                           \
    F(art_ack, code,     OPT, MT_I64(INT32_MIN, -1))                                               \
    F(art_ack, reason,   OPT, MT_STR(1, MSG_REASON_MAX))                                           \
    END(art_ack)
// clang-format on

/* The message types, with their wire codes. */
typedef enum {
    MSG_NONE = 0,
#define MSG__ENUM(ID, name, code, rule, doc) MSG_##ID = code,
#define MSG__SKIP(...)
    MSG_TABLE(MSG__ENUM, MSG__SKIP, MSG__SKIP)
#undef MSG__ENUM
} msg_type_t;

/* Codes are below this. */
#define MSG_CODE_LIMIT 32

/* The struct of each message: msg_hello_t and so on. */
#define MSG__CTYPE_MT_U64(lo, hi)            uint64_t
#define MSG__CTYPE_MT_I64(lo, hi)            int64_t
#define MSG__CTYPE_MT_F64(lo, hi)            double
#define MSG__CTYPE_MT_BOOL()                 bool
#define MSG__CTYPE_MT_ENUM(set)              msg_##set##_t
#define MSG__CTYPE_MT_NAME(max)              const char *
#define MSG__CTYPE_MT_STR(min, max)          const char *
#define MSG__CTYPE_MT_JSON(max)              const char *
#define MSG__CTYPE_MT_BIN(max)               msg_bin_t
#define MSG__CTYPE_MT_NAMES(min, max, len)   msg_strs_t
#define MSG__CTYPE_MT_STRS(min, max, len)    msg_strs_t
#define MSG__CTYPE_MT_U64S(min, max)         msg_u64s_t
#define MSG__CTYPE_MT_F64S(min, max, lo, hi) msg_f64s_t
#define MSG__CTYPE_MT_F32S(min, max, lo, hi) msg_f32s_t
#define MSG__CTYPE_MT_METRICS(max)           msg_metrics_t
#define MSG__CTYPE_MT_TENSORS(max)           msg_tensors_t
/* MSG__SCALAR_<type>(yes, no) picks yes for the types that get a has_ flag
 * when optional, no for the others. */
#define MSG__PICK1(yes, no)                   yes
#define MSG__PICK2(yes, no)                   no
#define MSG__SCALAR_MT_U64(lo, hi)            MSG__PICK1
#define MSG__SCALAR_MT_I64(lo, hi)            MSG__PICK1
#define MSG__SCALAR_MT_F64(lo, hi)            MSG__PICK1
#define MSG__SCALAR_MT_BOOL()                 MSG__PICK1
#define MSG__SCALAR_MT_ENUM(set)              MSG__PICK1
#define MSG__SCALAR_MT_NAME(max)              MSG__PICK2
#define MSG__SCALAR_MT_STR(min, max)          MSG__PICK2
#define MSG__SCALAR_MT_JSON(max)              MSG__PICK2
#define MSG__SCALAR_MT_BIN(max)               MSG__PICK2
#define MSG__SCALAR_MT_NAMES(min, max, len)   MSG__PICK2
#define MSG__SCALAR_MT_STRS(min, max, len)    MSG__PICK2
#define MSG__SCALAR_MT_U64S(min, max)         MSG__PICK2
#define MSG__SCALAR_MT_F64S(min, max, lo, hi) MSG__PICK2
#define MSG__SCALAR_MT_F32S(min, max, lo, hi) MSG__PICK2
#define MSG__SCALAR_MT_METRICS(max)           MSG__PICK2
#define MSG__SCALAR_MT_TENSORS(max)           MSG__PICK2
#define MSG__FLAG(field)                      bool has_##field;
#define MSG__NOFLAG(field)
#define MSG__HAS_REQ(type, field)
#define MSG__HAS_OPT(type, field)              MSG__SCALAR_##type(MSG__FLAG, MSG__NOFLAG)(field)
#define MSG__STRUCT(ID, name, code, rule, doc) typedef struct msg_##name {
#define MSG__MEMBER(name, field, req, type)                                                        \
    MSG__CTYPE_##type field;                                                                       \
    MSG__HAS_##req(type, field)
#define MSG__STRUCT_END(name)                                                                      \
    }                                                                                              \
    msg_##name##_t;
MSG_TABLE(MSG__STRUCT, MSG__MEMBER, MSG__STRUCT_END)

/* One message. type and version are set by msg_init and msg_decode; the
 * member named after the type holds the fields. */
typedef struct msg {
    msg_type_t type;
    uint64_t version; /* PROTO_VERSION; decoded: the sender's, also on RW_EVERSION */
    union {
#define MSG__UNION(ID, name, code, rule, doc) msg_##name##_t name;
        MSG_TABLE(MSG__UNION, MSG__SKIP, MSG__SKIP)
#undef MSG__UNION
    };
    struct msg__hold *hold_; /* private: what a decoded message's pointers point into */
} msg_t;

/* The table as data, for generic code (tests, tools). */
typedef enum {
    MSG_FT_U64,
    MSG_FT_I64,
    MSG_FT_F64,
    MSG_FT_BOOL,
    MSG_FT_ENUM,
    MSG_FT_NAME,
    MSG_FT_STR,
    MSG_FT_JSON,
    MSG_FT_BIN,
    MSG_FT_NAMES,
    MSG_FT_STRS,
    MSG_FT_U64S,
    MSG_FT_F64S,
    MSG_FT_F32S,
    MSG_FT_METRICS,
    MSG_FT_TENSORS
} msg_ftype_t;

typedef struct msg_field {
    const char *name; /* also the key on the wire */
    msg_ftype_t type;
    bool required;
    size_t offset;     /* of the value in the message's struct */
    size_t has_offset; /* of its has_ flag; 0 when it has none */
    uint64_t u_lo, u_hi;
    int64_t i_lo, i_hi;
    double f_lo, f_hi;        /* also bounds each element of F64S and F32S */
    size_t len_min, len_max;  /* bytes of a string or bin, or of each string in a list */
    size_t n_min, n_max;      /* items in a list */
    const char *const *names; /* ENUM: names[1..n_names), names[0] is NULL */
    size_t n_names;
} msg_field_t;

typedef struct msg_desc {
    msg_type_t type;
    const char *name; /* "HELLO" */
    const char *doc;
    const msg_field_t *fields;
    size_t n_fields;
    int (*rule)(const msg_t *m, char *why); /* cross-field check, or NULL */
} msg_desc_t;

/* The descriptor of type, or NULL if no message has that code. */
const msg_desc_t *msg_desc(msg_type_t type);
/* "HELLO", or "UNKNOWN" for a code no message has; never NULL. */
const char *msg_type_name(msg_type_t type);
/* Names on the wire ("expert"), or NULL for a value out of range. */
const char *msg_task_kind_name(msg_task_kind_t kind);
const char *msg_art_kind_name(msg_art_kind_t kind);
/* The kind named name, or 0 (the NONE value) if there is none. */
msg_task_kind_t msg_task_kind_parse(const char *name);
msg_art_kind_t msg_art_kind_parse(const char *name);

/* Zeroes *m and sets its type and version. */
void msg_init(msg_t *m, msg_type_t type);
/* Releases what a decoded message holds and zeroes *m; safe on a zeroed or
 * finished msg_t and on one you filled (whose pointers it leaves alone). */
void msg_fini(msg_t *m);

/* Checks every field of m against the table and m's rule. Returns 0, or
 * RW_EMSGTYPE (no such type), RW_EFIELD (missing, out of range, malformed)
 * or RW_ETOOBIG (over a length or count cap), with the reason in why
 * (MSG_WHY_MAX bytes, or NULL): "HELLO.threads: 0 not in 1..1024". */
int msg_check(const msg_t *m, char *why);

/* Checks m (as msg_check) and encodes it into buf[0..cap). Returns 0 with
 * *len, RW_ETOOBIG if it does not fit in cap or exceeds MSG_MAX_BYTES, or
 * msg_check's error; why as for msg_check. */
int msg_encode(const msg_t *m, void *buf, size_t cap, size_t *len, char *why);
/* Checks and encodes m into a buffer from alloc(ctx, len), which returns
 * len writable bytes or NULL (then RW_ENOMEM). Returns as msg_encode. */
int msg_encode_with(const msg_t *m, void *(*alloc)(void *ctx, size_t len), void *ctx, size_t *len,
                    char *why);

/* Decodes buf[0..len) into *m (which it initializes). Returns 0; or
 * RW_ETOOBIG (over MSG_MAX_BYTES, MSG_MAX_ITEMS or a field's cap),
 * RW_ETRUNC (ends early), RW_EPROTO (not one MessagePack envelope, or bytes
 * after it), RW_EVERSION (m->version is the sender's, m->type its type
 * code when readable), RW_EMSGTYPE (m->type holds the unknown code) or
 * RW_EFIELD, with the reason in why (MSG_WHY_MAX bytes, or NULL). On error
 * *m holds nothing to free. Bins in *m point into buf. */
int msg_decode(msg_t *m, const void *buf, size_t len, char *why);

/* Makes m own owner: release(owner) runs at msg_fini. For the buffer its
 * bins point into (wire_recv gives it the ZeroMQ frame). */
void msg_hold(msg_t *m, void *owner, void (*release)(void *owner));

/* The answer to a peer speaking protocol peer_version: a REFUSE with code
 * RW_EVERSION and reason "protocol version 2 not supported (this peer
 * speaks 1)". Fills *m (msg_fini it after sending); the reason lives in
 * buf (MSG_WHY_MAX bytes), which must outlive m. */
void msg_refuse_version(msg_t *m, uint64_t peer_version, char *buf);

/* Shapes of tensors, against what a model configuration declares.
 * Returns 0 when got holds exactly the tensors of want (by name, any order)
 * with the same shapes; otherwise RW_EFIELD with the first difference in
 * why ("tensor ffn.w1: got 64x256, want 64x512"). */
int msg_tensors_match(const msg_tensors_t *want, const msg_tensors_t *got, char *why);
/* Elements of all tensors together, times elem_size, in *bytes. Returns 0,
 * or RW_ETOOBIG if that exceeds UINT64_MAX. */
int msg_tensors_bytes(const msg_tensors_t *t, size_t elem_size, uint64_t *bytes);

#endif
