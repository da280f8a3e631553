/* test_msg.c — every message round trips; every rule refuses a bad example.
 *
 * Messages come from the table (samples.h), so a new message or field is
 * tested without touching this file. Each limit of each field is broken
 * twice: in the struct (msg_check, what the encoder runs) and in bytes that
 * a careless peer could send (msg_decode).
 */
#include "msg.h"

#include "err.h"

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/mpw.h"
#include "support.h"
#include "proto/samples.h"

static void *heap_alloc(void *ctx, size_t len)
{
    return *(void **)ctx = malloc(len);
}

static uint8_t *encode(const msg_t *m, size_t *len)
{
    void *buf = NULL;
    char why[MSG_WHY_MAX];
    int rc = msg_encode_with(m, heap_alloc, &buf, len, why);
    cr_assert_eq(rc, 0, "%s: encode: %s: %s", msg_type_name(m->type), rw_err_name(rc), why);
    return buf;
}

static void each_type(void (*fn)(msg_type_t t))
{
    for (int c = 0; c < MSG_CODE_LIMIT; c++)
        if (msg_desc((msg_type_t)c))
            fn((msg_type_t)c);
}

Test(msg, table_is_consistent)
{
    size_t types = 0;
    for (int c = 0; c < MSG_CODE_LIMIT; c++) {
        const msg_desc_t *d = msg_desc((msg_type_t)c);
        if (!d)
            continue;
        types++;
        cr_assert_eq((int)d->type, c);
        cr_assert_str_eq(msg_type_name(d->type), d->name);
        cr_assert(d->n_fields >= 1 && d->n_fields <= 64, "%s", d->name);
        for (size_t i = 0; i < d->n_fields; i++)
            for (size_t j = 0; j < i; j++)
                cr_assert_str_neq(d->fields[i].name, d->fields[j].name, "%s", d->name);
    }
    cr_assert_eq(types, 24, "messages in the table: %zu", types);
    cr_assert_null(msg_desc(MSG_NONE));
    cr_assert_null(msg_desc((msg_type_t)MSG_CODE_LIMIT));
    cr_assert_str_eq(msg_type_name((msg_type_t)31), "UNKNOWN");
    cr_assert_eq(msg_desc(MSG_REFUSE)->type, 3, "REFUSE is 3 forever");
    for (int k = 1; k < MSG_TASK__COUNT; k++)
        cr_assert_eq((int)msg_task_kind_parse(msg_task_kind_name((msg_task_kind_t)k)), k);
    for (int k = 1; k < MSG_ARTIFACT__COUNT; k++)
        cr_assert_eq((int)msg_art_kind_parse(msg_art_kind_name((msg_art_kind_t)k)), k);
    cr_assert_eq(msg_task_kind_parse("nope"), MSG_TASK__NONE);
    cr_assert_null(msg_task_kind_name(MSG_TASK__COUNT));
    cr_assert_str_eq(msg_task_kind_name(MSG_TASK_ROUTER_ADAPTER), "router_adapter");
}

static void round_trip(msg_type_t t)
{
    for (int full = 0; full <= 1; full++) {
        msg_t m, back, again;
        char why[MSG_WHY_MAX];
        const char *which;
        sample_fill(&m, t, full);
        size_t n;
        uint8_t *buf = encode(&m, &n);
        int rc = msg_decode(&back, buf, n, why);
        cr_assert_eq(rc, 0, "%s full=%d: %s: %s", msg_type_name(t), full, rw_err_name(rc), why);
        cr_assert_eq(back.version, PROTO_VERSION);
        cr_assert(sample_equal(&m, &back, &which), "%s full=%d: field %s differs", msg_type_name(t),
                  full, which);
        /* the decoded message encodes to the same bytes */
        size_t n2;
        uint8_t *buf2 = encode(&back, &n2);
        cr_assert(n2 == n && memcmp(buf, buf2, n) == 0, "%s: not canonical", msg_type_name(t));
        /* another encoder's choices (wide ints, str32, float64 for floats) decode the same */
        mpw_t w = {0};
        raw_encode(&m, &w);
        rc = msg_decode(&again, w.b, w.n, why);
        cr_assert_eq(rc, 0, "%s raw: %s: %s", msg_type_name(t), rw_err_name(rc), why);
        cr_assert(sample_equal(&m, &again, &which), "%s raw: field %s differs", msg_type_name(t),
                  which);
        mpw_free(&w);
        msg_fini(&again);
        msg_fini(&back);
        msg_fini(&back); /* twice is harmless */
        msg_fini(&m);
        free(buf);
        free(buf2);
        sample_free();
    }
}

Test(msg, every_message_round_trips)
{
    each_type(round_trip);
}

static void prefixes(msg_type_t t)
{
    msg_t m, out;
    char why[MSG_WHY_MAX];
    sample_fill(&m, t, false);
    size_t n;
    uint8_t *buf = encode(&m, &n);
    for (size_t k = 0; k < n; k++) {
        uint8_t *cut = malloc(k ? k : 1); /* exact size: ASan sees any overread */
        memcpy(cut, buf, k);
        int rc = msg_decode(&out, cut, k, why);
        cr_assert_eq(rc, RW_ETRUNC, "%s cut at %zu/%zu: %s (%s)", msg_type_name(t), k, n,
                     rw_err_name(rc), why);
        free(cut);
    }
    uint8_t *more = malloc(n + 1);
    memcpy(more, buf, n);
    more[n] = 0xc0;
    cr_assert_eq(msg_decode(&out, more, n + 1, why), RW_EPROTO, "%s", msg_type_name(t));
    cr_assert(strstr(why, "after the message"), "%s", why);
    free(more);
    free(buf);
    msg_fini(&m);
    sample_free();
}

Test(msg, every_prefix_is_truncated_and_trailing_bytes_refused)
{
    each_type(prefixes);
}

/* The code a broken message gets, from msg_check and from msg_decode. */
static void expect_both(const msg_t *m, int code, const char *what)
{
    char why[MSG_WHY_MAX];
    int rc = msg_check(m, why);
    cr_assert_eq(rc, code, "%s %s: check gave %s (%s)", msg_type_name(m->type), what,
                 rw_err_name(rc), why);
    size_t len;
    char small[64];
    cr_assert_lt(msg_encode(m, small, sizeof small, &len, why), 0, "encoder sent it");
    mpw_t w = {0};
    raw_encode(m, &w);
    msg_t out;
    rc = msg_decode(&out, w.b, w.n, why);
    cr_assert_eq(rc, code, "%s %s: decode gave %s (%s)", msg_type_name(m->type), what,
                 rw_err_name(rc), why);
    cr_assert_eq(out.hold_, NULL, "a refused message holds nothing");
    mpw_free(&w);
}

/* Breaks the numbers of field f of a valid message m in every way its limits allow. */
static void break_number(msg_t *m, const msg_field_t *f, void *p)
{
    if (f->type == MSG_FT_U64) {
        uint64_t keep = *(uint64_t *)p;
        if (f->u_lo > 0)
            *(uint64_t *)p = f->u_lo - 1, expect_both(m, RW_EFIELD, f->name);
        if (f->u_hi < UINT64_MAX)
            *(uint64_t *)p = f->u_hi + 1, expect_both(m, RW_EFIELD, f->name);
        *(uint64_t *)p = keep;
    } else if (f->type == MSG_FT_I64) {
        int64_t keep = *(int64_t *)p;
        if (f->i_lo > INT64_MIN)
            *(int64_t *)p = f->i_lo - 1, expect_both(m, RW_EFIELD, f->name);
        if (f->i_hi < INT64_MAX)
            *(int64_t *)p = f->i_hi + 1, expect_both(m, RW_EFIELD, f->name);
        *(int64_t *)p = keep;
    } else if (f->type == MSG_FT_F64) {
        double keep = *(double *)p;
        double bad[] = {f->f_lo - 1 - fabs(f->f_lo), f->f_hi + 1 + fabs(f->f_hi), NAN, INFINITY};
        for (size_t i = 0; i < 4; i++)
            *(double *)p = bad[i], expect_both(m, RW_EFIELD, f->name);
        *(double *)p = keep;
    } else if (f->type == MSG_FT_ENUM) {
        int keep, bad[] = {0, (int)f->n_names};
        memcpy(&keep, p, sizeof keep);
        for (size_t i = 0; i < 2; i++)
            memcpy(p, &bad[i], sizeof(int)), expect_both(m, RW_EFIELD, f->name);
        memcpy(p, &keep, sizeof keep);
    }
}

static void break_string(msg_t *m, const msg_field_t *f, void *p)
{
    const char *keep = *(const char **)p;
    *(const char **)p = sample_str(f->len_max + 1, true, 0);
    expect_both(m, RW_ETOOBIG, "too long");
    if (f->len_min > 0)
        *(const char **)p = "", expect_both(m, RW_EFIELD, "empty");
    if (f->type == MSG_FT_NAME) {
        const char *bad[] = {"has space", "-leading", "slash/", "\xc3\xa9"};
        for (size_t i = 0; i < 4; i++)
            *(const char **)p = bad[i], expect_both(m, RW_EFIELD, bad[i]);
    } else {
        *(const char **)p = "{\"a\":\"\xff\"}", expect_both(m, RW_EFIELD, "bad UTF-8");
        *(const char **)p = "{\"a\":\"\xed\xa0\x80\"}", expect_both(m, RW_EFIELD, "surrogate");
    }
    if (f->type == MSG_FT_JSON) {
        const char *bad[] = {"[1, 2]", "{\"a\": 1", "{\"a\":1,\"a\":2}", "nope"};
        for (size_t i = 0; i < 4; i++)
            *(const char **)p = bad[i], expect_both(m, RW_EFIELD, bad[i]);
    }
    *(const char **)p = keep;
}

/* A list view of field f with n valid items (as sample_list makes them). */
static void list_of(const msg_field_t *f, void *p, size_t n)
{
    msg_field_t g = *f;
    g.n_max = n;
    g.len_max = f->len_max < 8 ? f->len_max : 8;
    sample_list(&g, p, true);
}

static void break_list(msg_t *m, const msg_field_t *f, void *p)
{
    char keep[sizeof(msg_strs_t)];
    memcpy(keep, p, sizeof keep);
    list_of(f, p, f->n_max + 1);
    expect_both(m, RW_ETOOBIG, "too many items");
    if (f->n_min > 1) {
        list_of(f, p, f->n_min - 1);
        expect_both(m, RW_EFIELD, "too few items");
    }
    list_of(f, p, 2);
    switch (f->type) {
    case MSG_FT_NAMES:
    case MSG_FT_STRS: {
        const char **v = (const char **)((msg_strs_t *)p)->v;
        v[1] = sample_str(f->len_max + 1, true, 1);
        expect_both(m, RW_ETOOBIG, "item too long");
        v[1] = f->type == MSG_FT_NAMES ? "bad name" : "\xff";
        expect_both(m, RW_EFIELD, "bad item");
        break;
    }
    case MSG_FT_F64S:
        ((double *)((msg_f64s_t *)p)->v)[1] = NAN;
        expect_both(m, RW_EFIELD, "NaN item");
        ((double *)((msg_f64s_t *)p)->v)[1] = f->f_hi * 2 + 1;
        expect_both(m, RW_EFIELD, "item out of range");
        break;
    case MSG_FT_F32S:
        ((float *)((msg_f32s_t *)p)->v)[1] = (float)(f->f_hi + 1);
        expect_both(m, RW_EFIELD, "item out of range");
        break;
    case MSG_FT_METRICS: {
        msg_metric_t *v = (msg_metric_t *)((msg_metrics_t *)p)->v;
        v[1].value = INFINITY;
        expect_both(m, RW_EFIELD, "infinite metric");
        v[1].value = 1;
        v[1].name = v[0].name;
        expect_both(m, RW_EFIELD, "metric twice");
        v[1].name = "no spaces";
        expect_both(m, RW_EFIELD, "metric name");
        break;
    }
    case MSG_FT_TENSORS: {
        msg_tensor_t *v = (msg_tensor_t *)((msg_tensors_t *)p)->v;
        v[1].rank = 0, expect_both(m, RW_EFIELD, "rank 0");
        v[1].rank = 2, v[1].dim[1] = 0, expect_both(m, RW_EFIELD, "empty dimension");
        v[1].dim[0] = v[1].dim[1] = 1ull << 21, expect_both(m, RW_EFIELD, "2^42 elements");
        v[1].dim[0] = v[1].dim[1] = 3, v[1].name = v[0].name;
        expect_both(m, RW_EFIELD, "tensor twice");
        break;
    }
    default:
        break;
    }
    memcpy(p, keep, sizeof keep);
}

static void break_fields(msg_type_t t)
{
    const msg_desc_t *d = msg_desc(t);
    for (size_t i = 0; i < d->n_fields; i++) {
        const msg_field_t *f = &d->fields[i];
        msg_t m;
        sample_fill(&m, t, false);
        char *body = (char *)&m.hello;
        void *p = body + f->offset;
        if (f->required) { /* leave it out on the wire; NULL it in the struct */
            msg_t out;
            mpw_t w = {0};
            char why[MSG_WHY_MAX];
            raw_encode_skip(&m, &w, f);
            int rc = msg_decode(&out, w.b, w.n, why);
            cr_assert_eq(rc, RW_EFIELD, "%s without %s: %s", d->name, f->name, rw_err_name(rc));
            cr_assert(strstr(why, "missing"), "%s", why);
            mpw_free(&w);
            if (f->type >= MSG_FT_NAME && f->type <= MSG_FT_JSON) {
                const char *keep = *(const char **)p;
                *(const char **)p = NULL;
                expect_both(&m, RW_EFIELD, "NULL");
                *(const char **)p = keep;
            }
        } else {
            sample_field(f, body, false);
        }
        if (f->type <= MSG_FT_ENUM)
            break_number(&m, f, p);
        else if (f->type <= MSG_FT_JSON)
            break_string(&m, f, p);
        else if (f->type == MSG_FT_BIN) {
            unsigned char *big = sample_alloc(f->len_max + 1);
            *(msg_bin_t *)p = (msg_bin_t){big, f->len_max + 1};
            expect_both(&m, RW_ETOOBIG, "bin too big");
        } else
            break_list(&m, f, p);
        msg_fini(&m);
        sample_free();
    }
}

Test(msg, every_field_limit_is_enforced_both_ways)
{
    each_type(break_fields);
}

static int decode(const mpw_t *w, msg_t *out, char *why)
{
    return msg_decode(out, w->b, w->n, why);
}

/* A HELLO's three required fields after an envelope announcing n fields. */
static void hello_fields(mpw_t *w, uint32_t n)
{
    mpw_envelope(w, PROTO_VERSION, MSG_HELLO, n);
    mpw_str(w, "worker_id"), mpw_str(w, "w1");
    mpw_str(w, "caps"), mpw_array(w, 1), mpw_str(w, "train");
    mpw_str(w, "threads"), mpw_uint(w, 4);
}

static void expect_decode(mpw_t *w, int code, const char *in_why)
{
    msg_t out;
    char why[MSG_WHY_MAX];
    int rc = decode(w, &out, why);
    cr_assert_eq(rc, code, "got %s (%s), want %s", rw_err_name(rc), why, rw_err_name(code));
    if (in_why)
        cr_assert(strstr(why, in_why), "why: %s", why);
    if (rc == 0)
        msg_fini(&out);
}

Test(msg, envelope_is_checked)
{
    mpw_t w = {0};
    hello_fields(&w, 3);
    expect_decode(&w, 0, NULL);
    w.n = 0, mpw_uint(&w, 1), expect_decode(&w, RW_EPROTO, "envelope");
    w.n = 0, mpw_byte(&w, 0x90), expect_decode(&w, RW_EPROTO, "envelope");
    w.n = 0, mpw_array(&w, 3), mpw_str(&w, "1"), mpw_uint(&w, 1), mpw_map(&w, 0);
    expect_decode(&w, RW_EPROTO, "version is a str");
    w.n = 0, mpw_array(&w, 2), mpw_uint(&w, 1), mpw_uint(&w, MSG_HELLO);
    expect_decode(&w, RW_EPROTO, "envelope");
    w.n = 0, mpw_array(&w, 4), mpw_uint(&w, 1), mpw_uint(&w, MSG_HELLO), mpw_map(&w, 0);
    mpw_uint(&w, 0), expect_decode(&w, RW_EPROTO, "envelope");
    w.n = 0, mpw_array(&w, 3), mpw_uint(&w, 1), mpw_uint(&w, MSG_HELLO), mpw_array(&w, 0);
    expect_decode(&w, RW_EPROTO, "not a map");
    w.n = 0, mpw_array(&w, 3), mpw_uint(&w, 1), mpw_uint(&w, MSG_HELLO), mpw_map(&w, 1);
    mpw_uint(&w, 7), mpw_uint(&w, 7), expect_decode(&w, RW_EFIELD, "field name is a unsigned");
    w.n = 0, mpw_byte(&w, 0xc1), expect_decode(&w, RW_EPROTO, "byte 0xc1");
    mpw_free(&w);
}

Test(msg, another_version_is_refused_with_both_versions)
{
    msg_t m, out;
    char why[MSG_WHY_MAX];
    sample_fill(&m, MSG_HEARTBEAT, false);
    size_t n;
    uint8_t *buf = encode(&m, &n);
    cr_assert_eq(buf[0], 0x93);
    cr_assert_eq(buf[1], PROTO_VERSION, "the version is the envelope's first item");
    buf[1] = 2;
    cr_assert_eq(msg_decode(&out, buf, n, why), RW_EVERSION);
    cr_assert_eq(out.version, 2);
    cr_assert_eq(out.type, MSG_HEARTBEAT);
    cr_assert_str_eq(why, "message: protocol version 2, this peer speaks 1");
    free(buf);
    /* a future version may change everything after the version */
    mpw_t w = {0};
    mpw_array(&w, 1), mpw_uint(&w, 300);
    cr_assert_eq(decode(&w, &out, why), RW_EVERSION);
    cr_assert_eq(out.version, 300);
    cr_assert_eq(out.type, MSG_NONE);
    w.n = 0, mpw_array(&w, 5), mpw_uint(&w, 0), mpw_uint(&w, MSG_REFUSE), mpw_str(&w, "x");
    mpw_uint(&w, 1), mpw_uint(&w, 2);
    cr_assert_eq(decode(&w, &out, why), RW_EVERSION);
    cr_assert_eq(out.type, MSG_REFUSE, "a refusal is recognized as one in any version");
    mpw_free(&w);
    /* and the answer says both */
    char reason[MSG_WHY_MAX];
    msg_refuse_version(&m, 2, reason);
    cr_assert_str_eq(m.refuse.reason, "protocol version 2 not supported (this peer speaks 1)");
    cr_assert_eq(m.refuse.code, RW_EVERSION);
    cr_assert_eq(msg_check(&m, why), 0, "%s", why);
    msg_fini(&m);
}

Test(msg, unknown_types_are_refused)
{
    mpw_t w = {0};
    uint64_t codes[] = {0, 25, 31, 32, 1000, 1ull << 40};
    for (size_t i = 0; i < 6; i++) {
        msg_t out;
        char why[MSG_WHY_MAX];
        mpw_envelope(&w, PROTO_VERSION, codes[i], 0);
        cr_assert_eq(decode(&w, &out, why), RW_EMSGTYPE, "code %llu: %s",
                     (unsigned long long)codes[i], why);
        cr_assert_eq((uint64_t)out.type, codes[i] <= 1000 ? codes[i] : 0);
    }
    msg_t m;
    msg_init(&m, (msg_type_t)25);
    char why[MSG_WHY_MAX];
    cr_assert_eq(msg_check(&m, why), RW_EMSGTYPE);
    mpw_free(&w);
}

Test(msg, field_names_and_types_are_checked)
{
    mpw_t w = {0};
    hello_fields(&w, 4), mpw_str(&w, "bogus"), mpw_uint(&w, 1);
    expect_decode(&w, RW_EFIELD, "unknown field 'bogus'");
    hello_fields(&w, 4), mpw_str(&w, "threads"), mpw_uint(&w, 5);
    expect_decode(&w, RW_EFIELD, "given twice");
    static const char *const why_of[] = {"expected unsigned integer, got str",
                                         "expected str, got unsigned integer",
                                         "got negative integer",
                                         "got float",
                                         "expected array, got map",
                                         "got nil",
                                         "got ext"};
    static const char *const key_of[] = {"threads", "worker_id", "data_pairs",   "data_bytes",
                                         "caps",    "domain",    "data_checksum"};
    for (int i = 0; i < 7; i++) {
        /* the three required fields, one of them (or a fourth) of the wrong type */
        mpw_envelope(&w, PROTO_VERSION, MSG_HELLO, i < 2 || i == 4 ? 3 : 4);
        mpw_str(&w, "worker_id");
        i == 1 ? mpw_uint(&w, 5) : mpw_str(&w, "w1");
        mpw_str(&w, "caps");
        i == 4 ? mpw_map(&w, 0) : (mpw_array(&w, 1), mpw_str(&w, "train"));
        mpw_str(&w, "threads");
        i == 0 ? mpw_str(&w, "8") : mpw_uint(&w, 4);
        if (i >= 2 && i != 4) {
            mpw_str(&w, key_of[i]);
            if (i == 2)
                mpw_int(&w, -1);
            else if (i == 3)
                mpw_double(&w, 1.0);
            else if (i == 5)
                mpw_byte(&w, 0xc0);
            else
                mpw_byte(&w, 0xd4), mpw_byte(&w, 1), mpw_byte(&w, 2);
        }
        expect_decode(&w, RW_EFIELD, why_of[i]);
    }
    /* a number where a bool is due, a str where a number is, a NUL inside a string */
    mpw_envelope(&w, PROTO_VERSION, MSG_ART_ACK, 2);
    mpw_str(&w, "artifact"), mpw_uint(&w, 1), mpw_str(&w, "ok"), mpw_uint(&w, 1);
    expect_decode(&w, RW_EFIELD, "expected bool");
    mpw_envelope(&w, PROTO_VERSION, MSG_FETCH, 1);
    mpw_str(&w, "artifact"), mpw_strn(&w, "a\0b", 3);
    expect_decode(&w, RW_EFIELD, "expected unsigned");
    mpw_envelope(&w, PROTO_VERSION, MSG_SHUTDOWN, 1);
    mpw_str(&w, "reason"), mpw_strn(&w, "a\0b", 3);
    expect_decode(&w, RW_EFIELD, "NUL");
    mpw_free(&w);
}

Test(msg, rules_across_fields_are_checked)
{
    msg_t m;
    sample_fill(&m, MSG_HELLO, false);
    m.hello.domain = "legal";
    expect_both(&m, RW_EFIELD, "domain without its data");
    m.hello.has_data_pairs = m.hello.has_data_bytes = m.hello.has_data_checksum = true;
    m.hello.data_pairs = m.hello.data_bytes = 10;
    expect_both(&m, RW_EFIELD, "domain and data without what travels");
    m.hello.has_data_upload = true;
    m.hello.data_upload = 7;
    cr_assert_eq(msg_check(&m, NULL), 0);

    sample_fill(&m, MSG_LEASE, false);
    m.lease.kind = MSG_TASK_ADAPTER;
    expect_both(&m, RW_EFIELD, "adapter without a domain");

    sample_fill(&m, MSG_PROGRESS, false);
    m.progress.step = 2;
    expect_both(&m, RW_EFIELD, "step past steps");

    sample_fill(&m, MSG_TRAIN_REQ, false);
    m.train_req.kind = MSG_TASK_SEED;
    expect_both(&m, RW_EFIELD, "seed on the router service");
    sample_fill(&m, MSG_TRAIN_REQ, true);
    m.train_req.shards.n--;
    expect_both(&m, RW_EFIELD, "a domain without a shard");

    sample_fill(&m, MSG_ROUTE_REP, false);
    ((uint64_t *)m.route_rep.choice.v)[0] = 1;
    expect_both(&m, RW_EFIELD, "choice out of domains");
    sample_fill(&m, MSG_ROUTE_REP, true);
    m.route_rep.probs.n--;
    expect_both(&m, RW_EFIELD, "probs short");

    sample_fill(&m, MSG_SCORE_REQ, true);
    m.score_req.responses.n--;
    expect_both(&m, RW_EFIELD, "a prompt without a response");

    sample_fill(&m, MSG_SCORE_REP, true);
    m.score_rep.domains.n--;
    expect_both(&m, RW_EFIELD, "a reward without a domain");

    sample_fill(&m, MSG_HEALTH_REP, true);
    m.health_rep.has_worker_live = false;
    expect_both(&m, RW_EFIELD, "a worker without worker_live");
    sample_fill(&m, MSG_HEALTH_REP, true);
    m.health_rep.tasks_done = m.health_rep.tasks_total - 1, m.health_rep.tasks_total -= 2;
    expect_both(&m, RW_EFIELD, "more tasks done than there are");
    sample_fill(&m, MSG_HEALTH_REP, false);
    m.health_rep.has_tasks_done = true;
    expect_both(&m, RW_EFIELD, "tasks_done without tasks_total");

    sample_fill(&m, MSG_ART_ACK, false);
    m.art_ack.has_code = true, m.art_ack.code = RW_EIO;
    expect_both(&m, RW_EFIELD, "ok with a code");
    m.art_ack.ok = false, m.art_ack.has_code = true;
    expect_both(&m, RW_EFIELD, "refused without a reason");
    sample_free();
}

Test(msg, huge_claims_are_refused_without_allocating)
{
    /* header bytes that claim far more than follows */
    static const struct {
        uint8_t b[12];
        size_t n;
        int code;
    } cases[] = {
        {{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 6, RW_ETOOBIG},  /* str32 of 4 GiB */
        {{0xc6, 0xff, 0xff, 0xff, 0xff, 0}, 6, RW_ETOOBIG},    /* bin32 */
        {{0xc9, 0xff, 0xff, 0xff, 0xff, 1, 0}, 7, RW_ETOOBIG}, /* ext32 */
        {{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, 6, RW_ETOOBIG}, /* array32 of 4 billion */
        {{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0}, 6, RW_ETOOBIG}, /* map32 */
        {{0xdd, 0x00, 0x01, 0x00, 0x00, 0xc0}, 6, RW_ETRUNC},  /* array32 of 65536: under the cap */
        {{0xdc, 0xff, 0xff, 0xc0}, 4, RW_ETRUNC},              /* array16 of 65535 */
        {{0xdb, 0x00, 0x30, 0x00, 0x00, 'a'}, 6, RW_ETRUNC},   /* str32 of 3 MiB */
    };
    /* and inside a valid envelope, as a field's value */
    mpw_t w = {0};
    hello_fields(&w, 4);
    mpw_str(&w, "domain"), mpw_byte(&w, 0xdd), mpw_be(&w, 0xffffffff, 4);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
#ifndef RWT_ASAN
        /* room for this process and a little more: a 64 GiB zone cannot happen */
        rwt_limit_address_space(64u << 20);
#endif
        for (int rep = 0; rep < 1000; rep++) {
            msg_t out;
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                if (msg_decode(&out, cases[i].b, cases[i].n, NULL) != cases[i].code)
                    _exit(10 + (int)i);
            if (msg_decode(&out, w.b, w.n, NULL) != RW_ETOOBIG)
                _exit(9);
        }
        _exit(0);
    }
    int status = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    waitpid(pid, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert(WIFEXITED(status), "the decoder died (signal %d)", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "case %d gave the wrong code", WEXITSTATUS(status) - 10);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(secs, 5.0, "9000 refusals took %.1f s", secs);
    mpw_free(&w);
}

Test(msg, oversized_and_deep_messages_are_refused)
{
    msg_t out;
    char why[MSG_WHY_MAX];
    uint8_t *big = calloc(1, MSG_MAX_BYTES + 1);
    cr_assert_eq(msg_decode(&out, big, MSG_MAX_BYTES + 1, why), RW_ETOOBIG);
    free(big);
    mpw_t w = {0};
    hello_fields(&w, 4);
    mpw_str(&w, "domain");
    for (int i = 0; i < 100; i++)
        mpw_byte(&w, 0x91);
    mpw_byte(&w, 0xc0);
    expect_decode(&w, RW_EPROTO, "MessagePack");
    /* encoding into a buffer too small, and a message of no type */
    msg_t m;
    sample_fill(&m, MSG_HELLO, true);
    size_t len;
    char small[16];
    cr_assert_eq(msg_encode(&m, small, sizeof small, &len, why), RW_ETOOBIG);
    msg_init(&m, MSG_NONE);
    cr_assert_eq(msg_encode(&m, small, sizeof small, &len, why), RW_EMSGTYPE);
    mpw_free(&w);
    sample_free();
}

Test(msg, tensor_shapes_match_the_configuration)
{
    msg_tensor_t want_v[] = {{"emb", 2, {256, 64}}, {"ffn.w1", 2, {64, 256}}};
    msg_tensor_t got_v[] = {{"ffn.w1", 2, {64, 256}}, {"emb", 2, {256, 64}}};
    msg_tensors_t want = {want_v, 2}, got = {got_v, 2};
    char why[MSG_WHY_MAX];
    cr_assert_eq(msg_tensors_match(&want, &got, why), 0);
    got_v[0].dim[1] = 512;
    cr_assert_eq(msg_tensors_match(&want, &got, why), RW_EFIELD);
    cr_assert_str_eq(why, "tensor ffn.w1: got 64x512, want 64x256");
    got_v[0].dim[1] = 256, got_v[0].rank = 3, got_v[0].dim[2] = 1;
    cr_assert_eq(msg_tensors_match(&want, &got, why), RW_EFIELD);
    got_v[0].rank = 2, got_v[0].name = "ffn.w2";
    cr_assert_eq(msg_tensors_match(&want, &got, why), RW_EFIELD);
    cr_assert_str_eq(why, "tensor ffn.w1: missing");
    got.n = 1, got_v[0].name = "emb", got_v[0].dim[0] = 256, got_v[0].dim[1] = 64;
    want.n = 1;
    cr_assert_eq(msg_tensors_match(&want, &got, why), 0);
    got.n = 2, got_v[1].name = "extra";
    cr_assert_eq(msg_tensors_match(&want, &got, why), RW_EFIELD);
    cr_assert_str_eq(why, "tensor extra: not in the configuration");
    uint64_t bytes;
    want.n = 2;
    cr_assert_eq(msg_tensors_bytes(&want, 4, &bytes), 0);
    cr_assert_eq(bytes, 4 * 2 * 256 * 64);
    msg_tensor_t huge_v[] = {{"h", 3, {1ull << 40, 1ull << 20, 1ull << 10}}};
    msg_tensors_t huge = {huge_v, 1};
    cr_assert_eq(msg_tensors_bytes(&huge, 4, &bytes), RW_ETOOBIG);
}
