/* test_bundle.c — bundles: each kind scores as its members would alone,
 * routers send every pair to its domain's model (and an oracle overrides
 * them), a damaged bundle or manifest is refused with the reason, members
 * that do not fit are refused at write time, and evaluation figures agree
 * with the members' own. */
#include "bundle.h"
#include "bundle_impl.h"
#include "checksum.h"
#include "err.h"
#include "eval.h"
#include "report.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "bundle_fixture.h"
#include "support.h"

static bfx_t F;

static void setup(void)
{
    rwt_dir_setup();
    bfx_build(&F, rwt_dir);
}

static void teardown(void)
{
    bfx_free(&F);
    rwt_dir_teardown();
}

TestSuite(bundle, .init = setup, .fini = teardown);

/* Outputs of m (with adapter lo) on one (prompt, response), alone. */
static void direct(rw_model_t *m, rw_lora_t *lo, const char *prompt, const char *resp, float *out)
{
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, lo, 1, (size_t)m->cfg.max_len, 1, 0), 0);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    rw_bpe_encode(F.bpe, prompt, strlen(prompt), &ids, &n, &cap);
    size_t np = n;
    if (resp)
        rw_bpe_encode(F.bpe, resp, strlen(resp), &ids, &n, &cap);
    rw_batch_t b;
    rw_batch_init(&b, 1, (size_t)m->cfg.max_len);
    rw_batch_add(&b, ids, np, ids + np, n - np, -1);
    cr_assert_eq(rw_engine_forward(e, &b, out), 0);
    rw_batch_fini(&b);
    free(ids);
    rw_engine_destroy(&e);
}

static void assert_close(double got, double want, const char *what, size_t i)
{
    cr_assert(fabs(got - want) <= 1e-5 * (1.0 + fabs(want)), "%s %zu: %.9g, alone %.9g", what, i,
              got, want);
}

/* Scores every pair's (prompt, chosen) with b. */
static void score_all(rw_bundle_t *b, const int *oracle, double *r, int *route)
{
    size_t n = F.ds.n;
    const char **p = calloc(n, sizeof *p), **c = calloc(n, sizeof *c);
    size_t *pl = calloc(n, sizeof *pl), *cl = calloc(n, sizeof *cl);
    for (size_t i = 0; i < n; i++) {
        p[i] = F.ds.pairs[i].prompt;
        pl[i] = F.ds.pairs[i].prompt_len;
        c[i] = F.ds.pairs[i].chosen;
        cl[i] = F.ds.pairs[i].chosen_len;
    }
    cr_assert_eq(rw_bundle_score(b, p, pl, c, cl, n, oracle, r, route), 0);
    free(p);
    free(c);
    free(pl);
    free(cl);
}

static rw_bundle_t *open_ok(const char *dir)
{
    rw_bundle_t *b;
    char why[512] = "";
    int rc = rw_bundle_open(dir, &b, why, sizeof why);
    cr_assert_eq(rc, 0, "open %s: %s (%s)", dir, why, rw_strerror(rc));
    return b;
}

static int open_fails(const char *dir, char *why, size_t n)
{
    rw_bundle_t *b = NULL;
    int rc = rw_bundle_open(dir, &b, why, n);
    cr_assert_lt(rc, 0);
    cr_assert_null(b);
    return rc;
}

Test(bundle, kind_names_round_trip)
{
    for (int k = RW_BUNDLE_BASELINE; k <= RW_BUNDLE_ADAPTER; k++)
        cr_assert_eq(rw_bundle_kind_from_name(rw_bundle_kind_name((rw_bundle_kind_t)k)), k);
    cr_assert_str_eq(rw_bundle_kind_name(RW_BUNDLE_MOE), "moe");
    cr_assert_str_eq(rw_bundle_kind_name((rw_bundle_kind_t)42), "?");
    cr_assert_eq(rw_bundle_kind_from_name("mixture"), RW_BUNDLE__NONE);
    cr_assert_eq(rw_bundle_kind_from_name(NULL), RW_BUNDLE__NONE);
}

Test(bundle, router_sends_each_pair_to_its_domain_model)
{
    rw_bundle_t *b = open_ok(bfx_write(&F, RW_BUNDLE_ROUTER, "router"));
    cr_assert_eq(rw_bundle_kind(b), RW_BUNDLE_ROUTER);
    cr_assert_eq(rw_bundle_n_domains(b), BFX_ND);
    cr_assert_str_eq(rw_bundle_domain(b, 1), "beta");
    cr_assert_eq(rw_bundle_domain_index(b, "gamma"), 2);
    cr_assert_eq(rw_bundle_domain_index(b, "zeta"), -1);
    size_t n = F.ds.n;
    double *r = calloc(n, sizeof *r);
    int *route = calloc(n, sizeof *route), *oracle = calloc(n, sizeof *oracle);
    score_all(b, NULL, r, route);
    rw_model_t *dm[BFX_ND];
    for (int d = 0; d < BFX_ND; d++)
        cr_assert_eq(rw_checkpoint_load(F.domain[d], &dm[d], NULL), 0);
    for (size_t i = 0; i < n; i++) {
        const rw_pair_t *p = &F.ds.pairs[i];
        cr_assert_eq(route[i], (int)(i / BFX_PAIRS), "pair %zu routed to %d", i, route[i]);
        float want;
        direct(dm[route[i]], NULL, p->prompt, p->chosen, &want);
        assert_close(r[i], want, "reward", i);
    }
    /* an oracle overrides the router; -1 leaves it to route */
    for (size_t i = 0; i < n; i++)
        oracle[i] = i % 2 ? -1 : (int)((i / BFX_PAIRS + 1) % BFX_ND);
    score_all(b, oracle, r, route);
    for (size_t i = 0; i < n; i++) {
        const rw_pair_t *p = &F.ds.pairs[i];
        int want_route = i % 2 ? (int)(i / BFX_PAIRS) : oracle[i];
        cr_assert_eq(route[i], want_route);
        float want;
        direct(dm[want_route], NULL, p->prompt, p->chosen, &want);
        assert_close(r[i], want, "oracle reward", i);
    }
    oracle[0] = BFX_ND;
    const char *pr = F.ds.pairs[0].prompt;
    size_t pl = strlen(pr);
    cr_assert_eq(rw_bundle_score(b, &pr, &pl, &pr, &pl, 1, oracle, r, route), RW_EINVAL);
    for (int d = 0; d < BFX_ND; d++)
        rw_model_destroy(&dm[d]);
    free(r);
    free(route);
    free(oracle);
    rw_bundle_destroy(&b);
    cr_assert_null(b);
    rw_bundle_destroy(&b); /* NULL is fine */
}

Test(bundle, adapter_bundle_equals_base_plus_adapter)
{
    rw_bundle_t *b = open_ok(bfx_write(&F, RW_BUNDLE_ADAPTER, "adapter"));
    rw_bundle_set_threads(b, 2);
    size_t n = F.ds.n;
    double *r = calloc(n, sizeof *r);
    int *route = calloc(n, sizeof *route), *oracle = calloc(n, sizeof *oracle);
    score_all(b, NULL, r, route);
    rw_model_t *base;
    rw_lora_t *ad[BFX_ND];
    cr_assert_eq(rw_checkpoint_load(F.base, &base, NULL), 0);
    for (int d = 0; d < BFX_ND; d++)
        cr_assert_eq(rw_lora_load(F.adapter[d], base, &ad[d], NULL), 0);
    for (size_t i = 0; i < n; i++) {
        const rw_pair_t *p = &F.ds.pairs[i];
        cr_assert_eq(route[i], (int)(i / BFX_PAIRS), "pair %zu routed to %d", i, route[i]);
        float want;
        direct(base, ad[route[i]], p->prompt, p->chosen, &want);
        assert_close(r[i], want, "reward", i);
    }
    for (size_t i = 0; i < n; i++)
        oracle[i] = (int)((i / BFX_PAIRS + 2) % BFX_ND);
    score_all(b, oracle, r, route);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(route[i], oracle[i]);
        float want;
        direct(base, ad[oracle[i]], F.ds.pairs[i].prompt, F.ds.pairs[i].chosen, &want);
        assert_close(r[i], want, "oracle reward", i);
    }
    /* the adapters really differ: the same text scores differently */
    float a0, a1;
    direct(base, ad[0], F.ds.pairs[0].prompt, F.ds.pairs[0].chosen, &a0);
    direct(base, ad[1], F.ds.pairs[0].prompt, F.ds.pairs[0].chosen, &a1);
    cr_assert(fabsf(a0 - a1) > 1e-4f);
    for (int d = 0; d < BFX_ND; d++)
        rw_lora_destroy(&ad[d]);
    rw_model_destroy(&base);
    free(r);
    free(route);
    free(oracle);
    rw_bundle_destroy(&b);
}

/* A one-model bundle scores as that model alone, and does not route. */
static void one_model(rw_bundle_kind_t kind, const char *ckpt)
{
    rw_bundle_t *b = open_ok(bfx_write(&F, kind, rw_bundle_kind_name(kind)));
    size_t n = F.ds.n;
    double *r = calloc(n, sizeof *r);
    int *route = calloc(n, sizeof *route);
    score_all(b, NULL, r, route);
    rw_model_t *m;
    cr_assert_eq(rw_checkpoint_load(ckpt, &m, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(route[i], -1);
        float want;
        direct(m, NULL, F.ds.pairs[i].prompt, F.ds.pairs[i].chosen, &want);
        assert_close(r[i], want, "reward", i);
    }
    rw_model_destroy(&m);
    free(r);
    free(route);
    rw_bundle_destroy(&b);
}

Test(bundle, moe_bundle_equals_the_merged_model)
{
    one_model(RW_BUNDLE_MOE, F.moe);
}

Test(bundle, baseline_bundle_equals_its_model)
{
    one_model(RW_BUNDLE_BASELINE, F.baseline);
}

static size_t jcount(const json_t *o, const char *k)
{
    return (size_t)json_integer_value(json_object_get(o, k));
}

static size_t file_params(const char *path, int lora, rw_model_t *base)
{
    size_t n;
    if (lora) {
        rw_lora_t *lo;
        cr_assert_eq(rw_lora_load(path, base, &lo, NULL), 0);
        n = lo->layout.n_floats;
        rw_lora_destroy(&lo);
    } else {
        rw_model_t *m;
        cr_assert_eq(rw_checkpoint_load(path, &m, NULL), 0);
        n = m->layout.n_floats;
        rw_model_destroy(&m);
    }
    return n;
}

Test(bundle, manifest_describes_members_files_params_and_provenance)
{
    const char *dir = bfx_write(&F, RW_BUNDLE_ROUTER, "router");
    rw_bundle_t *b = open_ok(dir);
    const json_t *m = rw_bundle_manifest(b);
    cr_assert_str_eq(json_string_value(json_object_get(m, "format")), "rewire-bundle");
    cr_assert_eq(json_integer_value(json_object_get(m, "version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(m, "kind")), "router");
    cr_assert_eq(json_array_size(json_object_get(m, "domains")), BFX_ND);
    size_t rp = file_params(F.router, 0, NULL), dp = file_params(F.domain[0], 0, NULL);
    const json_t *pa = json_object_get(m, "params");
    cr_assert_eq(jcount(pa, "total"), rp + BFX_ND * dp);
    cr_assert_eq(jcount(pa, "per_pair"), rp + dp);
    /* every member is a byte-identical copy, its checksum recorded */
    const json_t *files = json_object_get(m, "files");
    cr_assert_eq(json_array_size(files), 2 + BFX_ND);
    const char *srcs[] = {F.tokenizer, F.router, F.domain[0], F.domain[1], F.domain[2]};
    for (size_t i = 0; i < json_array_size(files); i++) {
        const json_t *f = json_array_get(files, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        size_t n1, n2;
        char *a = rwt_read_file(rwt_path(dir, name), &n1), *s = rwt_read_file(srcs[i], &n2);
        cr_assert(a && s && n1 == n2 && memcmp(a, s, n1) == 0, "%s is not a copy of %s", name,
                  srcs[i]);
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)proto_checksum(a, n1));
        cr_assert_str_eq(json_string_value(json_object_get(f, "xxh64")), hex);
        cr_assert_eq(jcount(f, "bytes"), n1);
        free(a);
        free(s);
    }
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(files, 2), "name")),
                     "domain-alpha.safetensors");
    const json_t *prov = json_object_get(m, "provenance");
    cr_assert_str_eq(json_string_value(json_object_get(prov, "job_id")), "fixture");
    cr_assert_eq(json_integer_value(json_object_get(prov, "seed")), 7);
    cr_assert_eq(json_integer_value(json_object_get(prov, "protocol_version")), 1);
    cr_assert_not_null(json_string_value(json_object_get(prov, "rewire_version")));
    cr_assert_eq(strlen(json_string_value(json_object_get(prov, "created"))), 20);
    rw_bundle_destroy(&b);

    /* adapter: base + router adapter + adapters, about a third of router's */
    b = open_ok(bfx_write(&F, RW_BUNDLE_ADAPTER, "adapter"));
    rw_model_t *base;
    cr_assert_eq(rw_checkpoint_load(F.base, &base, NULL), 0);
    size_t bp = base->layout.n_floats, rap = file_params(F.router_adapter, 1, base),
           ap = file_params(F.adapter[0], 1, base);
    pa = json_object_get(rw_bundle_manifest(b), "params");
    cr_assert_eq(jcount(pa, "total"), bp + rap + BFX_ND * ap);
    cr_assert_eq(jcount(pa, "per_pair"), bp + rap + ap);
    rw_model_destroy(&base);
    rw_bundle_destroy(&b);

    /* moe: all of it per pair; fewer active per token (top-2 of 3) */
    b = open_ok(bfx_write(&F, RW_BUNDLE_MOE, "moe"));
    pa = json_object_get(rw_bundle_manifest(b), "params");
    cr_assert_eq(jcount(pa, "total"), file_params(F.moe, 0, NULL));
    cr_assert_eq(jcount(pa, "per_pair"), jcount(pa, "total"));
    cr_assert_lt(jcount(pa, "active_per_token"), jcount(pa, "total"));
    rw_bundle_destroy(&b);
}

/* Flips one byte at offset off (negative: from the end) of path. */
static void flip_byte(const char *path, long off)
{
    size_t n;
    char *data = rwt_read_file(path, &n);
    cr_assert_not_null(data);
    size_t at = off < 0 ? n - (size_t)(-off) : (size_t)off;
    data[at] ^= 0x01;
    cr_assert_eq(rwt_write_file(path, data, n), 0);
    free(data);
}

Test(bundle, a_corrupt_member_is_refused_by_name)
{
    const char *dir = bfx_write(&F, RW_BUNDLE_ROUTER, "router");
    char why[512] = "";
    flip_byte(rwt_path(dir, "domain-beta.safetensors"), -5);
    cr_assert_eq(open_fails(dir, why, sizeof why), RW_ECHECKSUM);
    cr_assert(strstr(why, "domain-beta.safetensors"), "why: %s", why);
    flip_byte(rwt_path(dir, "domain-beta.safetensors"), -5);
    rw_bundle_t *b = open_ok(dir);
    rw_bundle_destroy(&b);
    /* a tokenizer changed, or a member gone */
    flip_byte(rwt_path(dir, "tokenizer.json"), 10);
    cr_assert_eq(open_fails(dir, why, sizeof why), RW_ECHECKSUM);
    cr_assert(strstr(why, "tokenizer.json"), "why: %s", why);
    flip_byte(rwt_path(dir, "tokenizer.json"), 10);
    /* a member that is a device is refused, not read for ever */
    cr_assert_eq(rename(rwt_path(dir, "tokenizer.json"), rwt_path(dir, "tok.keep")), 0);
    cr_assert_eq(symlink("/dev/zero", rwt_path(dir, "tokenizer.json")), 0);
    cr_assert_eq(open_fails(dir, why, sizeof why), RW_ENOTFILE);
    cr_assert(strstr(why, "tokenizer.json: not a regular file"), "why: %s", why);
    cr_assert_eq(remove(rwt_path(dir, "tokenizer.json")), 0);
    cr_assert_eq(rename(rwt_path(dir, "tok.keep"), rwt_path(dir, "tokenizer.json")), 0);
    cr_assert_eq(remove(rwt_path(dir, "router.safetensors")), 0);
    cr_assert_eq(open_fails(dir, why, sizeof why), -ENOENT);
    cr_assert(strstr(why, "router.safetensors"), "why: %s", why);
}

/* Saves member file of the bundle at dir again with extra as its metadata
 * (as a task writes it; the fixture's files name no domain, since bundles
 * rename them) and puts its new size and checksum in manifest m. */
static void resave_member(const char *dir, json_t *m, const char *file, const char *extra)
{
    const char *path = rwt_path(dir, file);
    rw_model_t *model = NULL;
    rw_ckpt_info_t info;
    cr_assert_eq(rw_checkpoint_load(path, &model, &info), 0);
    cr_assert_eq(rw_checkpoint_save(path, model, NULL, info.tokenizer, extra), 0);
    rw_ckpt_info_fini(&info);
    rw_model_destroy(&model);
    uint64_t size, hash;
    cr_assert_eq(rw_bundle__file_hash(path, &size, &hash), 0);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(m, "files"), i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "name")), file) != 0)
            continue;
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, hash);
        json_object_set_new(x, "xxh64", json_string(hex));
        json_object_set_new(x, "bytes", json_integer((json_int_t)size));
    }
}

static void write_manifest(const char *dir, const json_t *m)
{
    char *s = json_dumps(m, JSON_INDENT(1));
    cr_assert_eq(rwt_write_file(rwt_path(dir, "manifest.json"), s, strlen(s)), 0);
    free(s);
}

/* A domain's model filed under another domain (each file still what its
 * checksum says), or the domains put in another order than the router's
 * classes, is refused: the files say what they are for. */
Test(bundle, members_filed_under_other_domains_are_refused)
{
    const char *dir = bfx_write(&F, RW_BUNDLE_ROUTER, "router");
    json_t *m = json_load_file(rwt_path(dir, "manifest.json"), 0, NULL), *x, *a = NULL, *b = NULL;
    cr_assert_not_null(m);
    resave_member(dir, m, "domain-alpha.safetensors",
                  "{\"task\":\"domain_rm\",\"domain\":\"alpha\"}");
    resave_member(dir, m, "domain-beta.safetensors",
                  "{\"task\":\"domain_rm\",\"domain\":\"beta\"}");
    resave_member(dir, m, "router.safetensors",
                  "{\"task\":\"router\",\"domains\":[\"alpha\",\"beta\",\"gamma\"]}");
    write_manifest(dir, m);
    rw_bundle_t *ok = open_ok(dir);
    rw_bundle_destroy(&ok);
    /* alpha's and beta's models swapped in the manifest */
    size_t i;
    json_array_foreach(json_object_get(m, "members"), i, x)
    {
        const char *d = json_string_value(json_object_get(x, "domain"));
        a = d && strcmp(d, "alpha") == 0 ? x : a;
        b = d && strcmp(d, "beta") == 0 ? x : b;
    }
    cr_assert(a && b);
    json_object_set_new(a, "domain", json_string("beta"));
    json_object_set_new(b, "domain", json_string("alpha"));
    write_manifest(dir, m);
    char why[512] = "";
    cr_assert_eq(open_fails(dir, why, sizeof why), RW_EFORMAT);
    cr_assert(strstr(why, "a model of domain"), "why: %s", why);
    json_object_set_new(a, "domain", json_string("alpha"));
    json_object_set_new(b, "domain", json_string("beta"));
    /* the domains reversed, every member with them: only the router tells */
    json_t *doms = json_object_get(m, "domains"), *rev = json_array();
    for (size_t k = json_array_size(doms); k-- > 0;)
        json_array_append(rev, json_array_get(doms, k));
    json_object_set_new(m, "domains", rev);
    write_manifest(dir, m);
    cr_assert_eq(open_fails(dir, why, sizeof why), RW_EFORMAT);
    cr_assert(strstr(why, "router.safetensors: it routes to"), "why: %s", why);
    json_decref(m);
}

/* Rewrites dir's manifest with edit applied; opening must then fail with
 * RW_EPARSE and a reason holding expect. */
static void broken(const char *dir, void (*edit)(json_t *), const char *expect)
{
    const char *path = rwt_path(dir, "manifest.json");
    char *orig = rwt_read_file(path, NULL);
    json_error_t jerr;
    json_t *m = json_loads(orig, 0, &jerr);
    edit(m);
    char *s = json_dumps(m, JSON_INDENT(1));
    cr_assert_eq(rwt_write_file(path, s, strlen(s)), 0);
    char why[512] = "";
    cr_assert_eq(open_fails(dir, why, sizeof why), RW_EPARSE, "expected %s", expect);
    cr_assert(strstr(why, expect), "why: %s (expected %s)", why, expect);
    cr_assert(strncmp(why, "manifest.json: ", 15) == 0, "why: %s", why);
    cr_assert_eq(rwt_write_file(path, orig, strlen(orig)), 0);
    json_decref(m);
    free(s);
    free(orig);
}

static void ed_version(json_t *m)
{
    json_object_set_new(m, "version", json_integer(2));
}
static void ed_kind(json_t *m)
{
    json_object_set_new(m, "kind", json_string("mixture"));
}
static void ed_escape(json_t *m)
{
    json_t *f = json_array_get(json_object_get(m, "files"), 1);
    json_object_set_new(f, "name", json_string("../router.safetensors"));
}
static void ed_twice(json_t *m)
{
    json_array_set_new(json_object_get(m, "domains"), 1, json_string("alpha"));
}
static void ed_escape_code(json_t *m) /* a terminal escape in a printed name */
{
    json_array_set_new(json_object_get(m, "domains"), 1, json_string("\x1b[31mevil"));
}
static void ed_lost_member(json_t *m)
{
    json_array_remove(json_object_get(m, "members"), 3);
    json_array_remove(json_object_get(m, "files"), 3);
}
static void ed_params(json_t *m)
{
    json_object_set_new(json_object_get(m, "params"), "total", json_integer(12));
}
static void ed_classes(json_t *m)
{
    json_t *router = json_array_get(json_object_get(m, "members"), 0);
    json_object_set_new(json_object_get(router, "config"), "n_classes", json_integer(2));
    /* one row of the head (d_model 16, and its bias) fewer, so the count fits */
    json_int_t p = json_integer_value(json_object_get(router, "params"));
    json_object_set_new(router, "params", json_integer(p - 17));
}
static void ed_hash(json_t *m)
{
    json_t *f = json_array_get(json_object_get(m, "files"), 0);
    json_object_set_new(f, "xxh64", json_string("xyz"));
}
static void ed_format(json_t *m)
{
    json_object_del(m, "format");
}
static void ed_domains(json_t *m)
{
    json_object_set_new(m, "domains", json_string("alpha"));
}

Test(bundle, a_malformed_manifest_is_refused_with_the_reason)
{
    const char *dir = bfx_write(&F, RW_BUNDLE_ROUTER, "router");
    broken(dir, ed_version, "version 2");
    broken(dir, ed_kind, "\"kind\"");
    broken(dir, ed_escape, "plain file name");
    broken(dir, ed_twice, "listed twice");
    broken(dir, ed_escape_code, "control character");
    broken(dir, ed_lost_member, "has no member");
    broken(dir, ed_params, "\"params\"");
    broken(dir, ed_classes, "classifier of 3 classes");
    broken(dir, ed_hash, "16 hex digits");
    broken(dir, ed_format, "\"format\"");
    broken(dir, ed_domains, "\"domains\"");
    const char *path = rwt_path(dir, "manifest.json");
    cr_assert_eq(rwt_write_file(path, "{\"format\": ", 11), 0);
    char why[512];
    cr_assert_eq(open_fails(dir, why, sizeof why), RW_EPARSE);
    cr_assert(strstr(why, "not JSON"), "why: %s", why);
    cr_assert_eq(rwt_write_file(path, "{\"a\":1,\"a\":2}", 13), 0);
    cr_assert_eq(open_fails(dir, why, sizeof why), RW_EPARSE);
}

/* Names in dir holding part (leftover temporary folders). */
static int entries_with(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static void refused(rw_bundle_sources_t *s, const char *expect)
{
    char why[512] = "";
    const char *dir = rwt_path(rwt_dir, "refused");
    int rc = rw_bundle_write(s, dir, why, sizeof why);
    cr_assert_lt(rc, 0, "expected a refusal: %s", expect);
    cr_assert(strstr(why, expect), "why: %s (expected %s)", why, expect);
    struct stat st;
    cr_assert_neq(stat(dir, &st), 0, "a refused bundle left its folder");
    cr_assert_eq(entries_with(rwt_dir, ".tmp-"), 0, "a refused bundle left a temporary folder");
}

Test(bundle, members_that_do_not_fit_are_refused)
{
    /* adapters trained on another base */
    rw_model_t *other = bfx_marker_model(&F, &F.cfg, 99);
    rw_lora_config_t lc;
    rw_lora_config_default(&lc);
    lc.rank = 2;
    rw_lora_t *lo;
    cr_assert_eq(rw_lora_new(&lo, other, &lc), 0);
    rw_lora_init(lo, other, 1);
    const char *stray = rwt_path(rwt_dir, "stray_adapter.safetensors");
    cr_assert_eq(rw_lora_save(stray, lo, NULL, NULL), 0);
    rw_lora_destroy(&lo);
    rw_model_destroy(&other);
    rw_bundle_sources_t s = bfx_sources(&F, RW_BUNDLE_ADAPTER);
    const char *members[BFX_ND] = {F.adapter[0], stray, F.adapter[2]};
    s.members = members;
    refused(&s, "adapter 'beta'");
    refused(&s, "another base model");

    /* a router of two classes for three domains */
    rw_model_config_t rc = F.cfg;
    rc.head = RW_HEAD_CLASSIFIER;
    rc.n_classes = 2;
    rw_model_t *r2 = bfx_random_model(&rc, 5);
    const char *r2p = rwt_path(rwt_dir, "router2.safetensors");
    bfx_save(&F, r2p, r2, NULL);
    rw_model_destroy(&r2);
    s = bfx_sources(&F, RW_BUNDLE_ROUTER);
    s.router = r2p;
    refused(&s, "classifier of 3 classes");

    /* domain models of different configurations */
    rw_model_config_t wide = F.cfg;
    wide.d_ff = 48;
    rw_model_t *w = bfx_random_model(&wide, 6);
    const char *wp = rwt_path(rwt_dir, "wide.safetensors");
    bfx_save(&F, wp, w, NULL);
    rw_model_destroy(&w);
    s = bfx_sources(&F, RW_BUNDLE_ROUTER);
    const char *dms[BFX_ND] = {F.domain[0], F.domain[1], wp};
    s.members = dms;
    refused(&s, "another configuration");

    /* a model trained with another tokenizer */
    rw_model_t *m = bfx_random_model(&F.cfg, 7);
    const char *tp = rwt_path(rwt_dir, "othertok.safetensors");
    rw_dataset_t ds;
    bfx_data(&ds, 99);
    free(ds.pairs[0].prompt);
    ds.pairs[0].prompt = strdup("zzz qqq zzz qqq zzz qqq");
    ds.pairs[0].prompt_len = strlen(ds.pairs[0].prompt);
    rw_bpe_t *bpe;
    rw_bpe_train_opts_t to = {.vocab_size = 1000, .min_frequency = 2};
    cr_assert_eq(rw_corpus_train_bpe(&ds, &to, &bpe), 0);
    char *tj = rw_bpe_to_json(bpe);
    cr_assert_str_neq(tj, F.tok_json);
    cr_assert_eq(rw_checkpoint_save(tp, m, NULL, tj, NULL), 0);
    free(tj);
    rw_bpe_destroy(&bpe);
    rw_dataset_fini(&ds);
    rw_model_destroy(&m);
    s = bfx_sources(&F, RW_BUNDLE_BASELINE);
    s.model = tp;
    refused(&s, "another tokenizer");

    /* an MoE model of other expert count, a classifier as baseline, a
     * missing file, a duplicate domain */
    s = bfx_sources(&F, RW_BUNDLE_MOE);
    s.n_domains = 2;
    refused(&s, "experts");
    s = bfx_sources(&F, RW_BUNDLE_BASELINE);
    s.model = F.router;
    refused(&s, "reward head");
    s.model = rwt_path(rwt_dir, "nowhere.safetensors");
    refused(&s, "nowhere.safetensors");
    s = bfx_sources(&F, RW_BUNDLE_ROUTER);
    const char *dup[BFX_ND] = {"alpha", "beta", "alpha"};
    s.domains = dup;
    refused(&s, "listed twice");
    s = bfx_sources(&F, RW_BUNDLE_ROUTER);
    s.router = NULL;
    refused(&s, "needs its router");
}

Test(bundle, an_existing_bundle_is_replaced_whole_and_other_folders_are_not)
{
    const char *dir = bfx_write(&F, RW_BUNDLE_ROUTER, "b");
    struct stat st;
    cr_assert_eq(stat(rwt_path(dir, "domain-alpha.safetensors"), &st), 0);
    bfx_write(&F, RW_BUNDLE_BASELINE, "b/");
    cr_assert_neq(stat(rwt_path(dir, "domain-alpha.safetensors"), &st), 0);
    rw_bundle_t *b = open_ok(dir);
    cr_assert_eq(rw_bundle_kind(b), RW_BUNDLE_BASELINE);
    rw_bundle_destroy(&b);
    cr_assert_eq(entries_with(rwt_dir, "b.old"), 0);
    cr_assert_eq(entries_with(rwt_dir, ".tmp-"), 0);

    /* an empty folder is fine; one with other things in it is left alone */
    const char *empty = rwt_path(rwt_dir, "empty");
    cr_assert_eq(mkdir(empty, 0755), 0);
    bfx_write(&F, RW_BUNDLE_BASELINE, "empty");
    const char *mine = rwt_path(rwt_dir, "mine");
    cr_assert_eq(mkdir(mine, 0755), 0);
    cr_assert_eq(rwt_write_file(rwt_path(mine, "notes.txt"), "keep", 4), 0);
    rw_bundle_sources_t s = bfx_sources(&F, RW_BUNDLE_BASELINE);
    char why[512];
    cr_assert_eq(rw_bundle_write(&s, mine, why, sizeof why), RW_EEXIST);
    cr_assert(strstr(why, "not a bundle"), "why: %s", why);
    cr_assert_eq(stat(rwt_path(mine, "notes.txt"), &st), 0);
    cr_assert_eq(entries_with(rwt_dir, ".tmp-"), 0);
}

/* The members' own pairwise accuracy on domain d's pairs. */
static double member_accuracy(rw_model_t *m, rw_lora_t *lo, const bfx_tok_t *t, int d)
{
    rw_engine_t *e;
    cr_assert_eq(rw_engine_new(&e, m, lo, 8, (size_t)m->cfg.max_len, 1, 0), 0);
    rw_eval_stats_t all;
    cr_assert_eq(rw_eval_pairs(e, t->pairs + d * BFX_PAIRS, BFX_PAIRS, &all, NULL, 0), 0);
    rw_engine_destroy(&e);
    return all.accuracy;
}

Test(bundle, eval_agrees_with_the_members_own_figures)
{
    rw_bundle_t *b = open_ok(bfx_write(&F, RW_BUNDLE_ROUTER, "router"));
    rw_bundle_eval_t ev;
    cr_assert_eq(rw_bundle_eval(b, &F.ds, RW_SPLIT_EVAL, &ev), 0);
    cr_assert_eq(ev.n_domains, BFX_ND);
    bfx_tok_t t;
    bfx_tokenize(&F, &t);
    double mean = 0;
    for (int d = 0; d < BFX_ND; d++) {
        rw_bundle_domain_eval_t *x = &ev.domains[d];
        cr_assert_str_eq(x->name, bfx_domains[d]);
        cr_assert_eq(x->pairs, BFX_PAIRS);
        rw_model_t *m;
        cr_assert_eq(rw_checkpoint_load(F.domain[d], &m, NULL), 0);
        cr_assert_float_eq(x->accuracy, member_accuracy(m, NULL, &t, d), 1e-12);
        rw_model_destroy(&m);
        cr_assert_float_eq(x->route_accuracy, 1.0, 1e-12);
        cr_assert_float_eq(x->oracle_accuracy, x->accuracy, 1e-12);
        mean += x->accuracy / BFX_ND;
    }
    cr_assert_float_eq(ev.mean_accuracy, mean, 1e-12);
    cr_assert_float_eq(ev.route_accuracy, 1.0, 1e-12);
    cr_assert_float_eq(ev.mean_oracle_accuracy, ev.mean_accuracy, 1e-12);
    cr_assert(ev.seconds > 0);

    /* the JSON form says the same, with null where a figure does not apply */
    json_t *j = rw_bundle_eval_json(&ev);
    json_t *d0 = json_array_get(json_object_get(j, "domains"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(d0, "name")), "alpha");
    cr_assert_eq(json_integer_value(json_object_get(d0, "pairs")), BFX_PAIRS);
    cr_assert_float_eq(json_real_value(json_object_get(d0, "accuracy")), ev.domains[0].accuracy,
                       1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(d0, "margin")), ev.domains[0].margin, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(j, "mean_accuracy")), ev.mean_accuracy,
                       1e-12);
    json_decref(j);
    rw_bundle_eval_fini(&ev);
    rw_bundle_destroy(&b);

    /* a baseline has no oracle and no routing; an unknown domain counts
     * under its own name */
    rw_pair_t *z = rw_dataset_add(&F.ds, "@ the cat", 9, "a dog", 5, "the sun", 7, "zeta");
    z->split = RW_SPLIT_EVAL;
    b = open_ok(bfx_write(&F, RW_BUNDLE_BASELINE, "baseline"));
    cr_assert_eq(rw_bundle_eval(b, &F.ds, RW_SPLIT_EVAL, &ev), 0);
    cr_assert_eq(ev.n_domains, BFX_ND + 1);
    cr_assert_str_eq(ev.domains[3].name, "zeta");
    cr_assert_eq(ev.domains[3].pairs, 1);
    cr_assert_lt(ev.domains[0].oracle_accuracy, 0);
    cr_assert_lt(ev.route_accuracy, 0);
    j = rw_bundle_eval_json(&ev);
    cr_assert(json_is_null(json_object_get(j, "route_accuracy")));
    cr_assert(json_is_null(json_object_get(j, "mean_oracle_accuracy")));
    cr_assert(json_is_null(
        json_object_get(json_array_get(json_object_get(j, "domains"), 0), "oracle_accuracy")));
    json_decref(j);
    rw_bundle_eval_fini(&ev);
    cr_assert_eq(rw_bundle_eval(b, &F.ds, RW_SPLIT_TRAIN, &ev), RW_EEMPTY);
    rw_bundle_destroy(&b);

    b = open_ok(bfx_write(&F, RW_BUNDLE_ADAPTER, "adapter"));
    cr_assert_eq(rw_bundle_eval(b, &F.ds, RW_SPLIT_EVAL, &ev), 0);
    cr_assert_float_eq(ev.route_accuracy, 1.0, 1e-12);
    cr_assert_lt(ev.domains[3].route_accuracy, 0);
    cr_assert_lt(ev.domains[3].oracle_accuracy, 0);
    rw_model_t *base;
    cr_assert_eq(rw_checkpoint_load(F.base, &base, NULL), 0);
    for (int d = 0; d < BFX_ND; d++) {
        rw_lora_t *lo;
        cr_assert_eq(rw_lora_load(F.adapter[d], base, &lo, NULL), 0);
        cr_assert_float_eq(ev.domains[d].accuracy, member_accuracy(base, lo, &t, d), 1e-12);
        rw_lora_destroy(&lo);
    }
    rw_model_destroy(&base);
    rw_bundle_eval_fini(&ev);
    rw_bundle_destroy(&b);
    bfx_tok_free(&t);
}

Test(bundle, recording_an_eval_keeps_every_checksum)
{
    const char *dir = bfx_write(&F, RW_BUNDLE_MOE, "moe");
    rw_bundle_t *b = open_ok(dir);
    json_t *before = json_deep_copy(rw_bundle_manifest(b));
    rw_bundle_eval_t ev;
    cr_assert_eq(rw_bundle_eval(b, &F.ds, RW_SPLIT_EVAL, &ev), 0);
    rw_bundle_destroy(&b);
    cr_assert_eq(rw_bundle_record_eval(dir, &ev), 0);
    b = open_ok(dir);
    const json_t *after = rw_bundle_manifest(b);
    cr_assert(json_equal(json_object_get(before, "files"), json_object_get(after, "files")));
    cr_assert(json_equal(json_object_get(before, "members"), json_object_get(after, "members")));
    cr_assert(
        json_equal(json_object_get(before, "provenance"), json_object_get(after, "provenance")));
    const json_t *e = json_object_get(after, "eval");
    json_t *e_json = json_deep_copy(e);
    char why[512];
    cr_assert_eq(json_array_size(json_object_get(e, "domains")), BFX_ND);
    cr_assert_float_eq(json_real_value(json_object_get(e, "mean_accuracy")), ev.mean_accuracy,
                       1e-9);
    /* recorded again, it is replaced, not appended */
    rw_bundle_destroy(&b);
    cr_assert_eq(rw_bundle_record_eval(dir, &ev), 0);
    char *text = rwt_read_file(rwt_path(dir, "manifest.json"), NULL);
    const char *first = strstr(text, "\"eval\"");
    cr_assert_null(strstr(first + 1, "\"eval\""));
    free(text);
    /* what the job's results list of it */
    json_t *entry = rw_report_bundle_entry(dir, why, sizeof why);
    cr_assert_not_null(entry, "%s", why);
    cr_assert_str_eq(json_string_value(json_object_get(entry, "kind")), "moe");
    cr_assert_str_eq(json_string_value(json_object_get(entry, "path")), dir);
    cr_assert_eq(json_integer_value(json_object_get(entry, "params_total")),
                 json_integer_value(json_object_get(json_object_get(before, "params"), "total")));
    cr_assert(json_equal(json_object_get(entry, "eval"), e_json));
    json_decref(entry);
    json_decref(e_json);
    cr_assert_null(rw_report_bundle_entry(rwt_path(rwt_dir, "nothing"), why, sizeof why));
    rw_bundle_eval_fini(&ev);
    json_decref(before);
    cr_assert_eq(rw_bundle_record_eval(rwt_path(rwt_dir, "nothing"), &ev), -ENOENT);
}

Test(bundle, labels_follow_the_bundles_domain_order_not_the_datas)
{
    /* the router's class 0 is now "beta": alpha's prompts ('@', class 0) go
     * to beta's model, and so on round; the oracle still finds each pair's
     * own model by name */
    bfx_tok_t t;
    bfx_tokenize(&F, &t);
    rw_bundle_sources_t s = bfx_sources(&F, RW_BUNDLE_ROUTER);
    const char *doms[BFX_ND] = {"beta", "gamma", "alpha"};
    const char *members[BFX_ND] = {F.domain[1], F.domain[2], F.domain[0]};
    s.domains = doms;
    s.members = members;
    char why[512] = "";
    const char *dir = rwt_path(rwt_dir, "shifted");
    cr_assert_eq(rw_bundle_write(&s, dir, why, sizeof why), 0, "%s", why);
    rw_bundle_t *b = open_ok(dir);
    rw_bundle_eval_t ev;
    cr_assert_eq(rw_bundle_eval(b, &F.ds, RW_SPLIT_EVAL, &ev), 0);
    cr_assert_str_eq(ev.domains[0].name, "alpha"); /* the data's sorted order */
    rw_model_t *m[BFX_ND];
    for (int d = 0; d < BFX_ND; d++)
        cr_assert_eq(rw_checkpoint_load(F.domain[d], &m[d], NULL), 0);
    for (int d = 0; d < BFX_ND; d++) {
        cr_assert_float_eq(ev.domains[d].route_accuracy, 0.0, 1e-12);
        int routed_to = (d + 1) % BFX_ND; /* class d is the domain after it */
        cr_assert_float_eq(ev.domains[d].accuracy, member_accuracy(m[routed_to], NULL, &t, d),
                           1e-12);
        cr_assert_float_eq(ev.domains[d].oracle_accuracy, member_accuracy(m[d], NULL, &t, d),
                           1e-12);
    }
    for (int d = 0; d < BFX_ND; d++)
        rw_model_destroy(&m[d]);
    rw_bundle_eval_fini(&ev);
    rw_bundle_destroy(&b);
    bfx_tok_free(&t);
}

Test(bundle, domain_names_unfit_for_file_names_get_distinct_clean_files)
{
    rw_bundle_sources_t s = bfx_sources(&F, RW_BUNDLE_ROUTER);
    const char *doms[BFX_ND] = {"help/ful", "q&a", "q_a"};
    s.domains = doms;
    char why[512] = "";
    const char *dir = rwt_path(rwt_dir, "names");
    cr_assert_eq(rw_bundle_write(&s, dir, why, sizeof why), 0, "%s", why);
    rw_bundle_t *b = open_ok(dir);
    const json_t *files = json_object_get(rw_bundle_manifest(b), "files");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(files, 2), "name")),
                     "domain-help_ful~0.safetensors");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(files, 3), "name")),
                     "domain-q_a~1.safetensors");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(files, 4), "name")),
                     "domain-q_a.safetensors");
    cr_assert_str_eq(rw_bundle_domain(b, 0), "help/ful");
    cr_assert_eq(rw_bundle_domain_index(b, "q&a"), 1);
    rw_bundle_destroy(&b);
}

/* A writer killed part way leaves NAME.tmp-XXXXXX beside its destination;
 * the next writer of the folder removes those, and nothing else. */
Test(bundle, the_litter_of_an_interrupted_write_is_removed)
{
    char root[700], p[800];
    snprintf(root, sizeof root, "%s/litter", rwt_dir);
    const char *dirs[] = {"",
                          "/v1",
                          "/v1/router",
                          "/v1/router.tmp-AbC123",
                          "/baseline.tmp-xyz789",
                          "/notes.tmp-d",
                          "/mine.tmp-abcdef"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s%s", root, dirs[i]);
        cr_assert_eq(mkdir(p, 0755), 0, "%s", p);
    }
    snprintf(p, sizeof p, "%s/v1/router.tmp-AbC123/router.safetensors", root);
    rwt_write_file(p, "part", 4);
    snprintf(p, sizeof p, "%s/v1/router/manifest.json", root);
    rwt_write_file(p, "{}", 2);
    snprintf(p, sizeof p, "%s/report.tmp-123456", root); /* a file, not a bundle's folder */
    rwt_write_file(p, "x", 1);
    cr_assert_eq(rw_bundle_remove_litter(root), 2);
    const char *gone[] = {"/v1/router.tmp-AbC123", "/baseline.tmp-xyz789"};
    const char *kept[] = {"/v1/router/manifest.json", "/notes.tmp-d", "/report.tmp-123456",
                          "/mine.tmp-abcdef"}; /* not a bundle's name: someone else's */
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s%s", root, gone[i]);
        cr_assert_neq(access(p, F_OK), 0, "%s is left", p);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", root, kept[i]);
        cr_assert_eq(access(p, F_OK), 0, "%s was removed", p);
    }
    cr_assert_eq(rw_bundle_remove_litter(rwt_path(rwt_dir, "none")), 0);
}

/* A manifest changed at random (names, numbers, checksums, structure) opens
 * as what it now says only if every member still checks out; otherwise it
 * is refused with a message. Never a crash (the sanitizer build runs this
 * too). */
Test(bundle, mangled_manifests_are_refused_or_sound, .timeout = 120)
{
    const char *dir = bfx_write(&F, RW_BUNDLE_ROUTER, "router");
    char path[700];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    size_t n;
    char *good = rwt_read_file(path, &n), *buf = malloc(n + 1), why[512];
    uint64_t s = 7;
    int refused = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(buf, good, n + 1);
        rwt_mangle(buf, n, &s, "0123456789\"{}[],: abcdef-", 1 + it % 3);
        rwt_write_file(path, buf, n);
        rw_bundle_t *b = NULL;
        why[0] = '\0';
        int rc = rw_bundle_open(dir, &b, why, sizeof why);
        if (rc < 0) {
            refused++;
            cr_assert(why[0], "iteration %d: refused without a message", it);
            cr_assert_null(b);
        } else {
            cr_assert_eq(rw_bundle_n_domains(b), BFX_ND, "iteration %d", it);
            rw_bundle_destroy(&b);
        }
    }
    cr_assert_gt(refused, 200, "only %d of 400 refused", refused);
    rwt_write_file(path, good, n);
    free(buf);
    free(good);
}
