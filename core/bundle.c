/* bundle.c — a bundle's manifest, read and checked; opening a bundle.
 *
 * manifest.json, format version 1 (keys in this order when rewire writes it;
 * readers ignore keys they do not know, so additions stay version 1):
 *
 *   {"format": "rewire-bundle", "version": 1,
 *    "kind": "baseline" | "moe" | "router" | "adapter",
 *    "domains": [name, ...],                       label order
 *    "tokenizer": {"file": "tokenizer.json", "vocab": V},
 *    "members": [{"role", "domain"?, "file", "config", "lora"?,
 *                 "base_fingerprint"?, "params"}, ...],
 *    "params": {"total", "per_pair", "active_per_token"?},
 *    "files": [{"name", "bytes", "xxh64": 16 hex digits}, ...],
 *    "provenance": {..., "rewire_version", "created"},
 *    "eval": rw_bundle_eval_json's object, once evaluated}
 *
 * Roles: "model" (baseline, moe), "router" and one "domain" per domain
 * (router), "base", "router_adapter" and one "adapter" per domain (adapter).
 * A member's "config" is its model configuration (for an adapter, that of
 * the base it adapts) and "lora" an adapter's own configuration. "files"
 * lists exactly the tokenizer and the members' files, which must be plain
 * names inside the bundle's folder, so a manifest cannot point elsewhere.
 *
 * Everything is checked before a byte of a member is read: a manifest that
 * breaks any of the above is RW_EPARSE with the reason, and opening then
 * checks every file's size and checksum before loading a model.
 */
#include "bundle_impl.h"

#include "afile.h"
#include "alloc.h"
#include "checkpoint.h"
#include "checksum.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const kind_names[] = {"?", "baseline", "moe", "router", "adapter"};

const char *rw_bundle_kind_name(rw_bundle_kind_t k)
{
    return k > RW_BUNDLE__NONE && k <= RW_BUNDLE_ADAPTER ? kind_names[k] : "?";
}

rw_bundle_kind_t rw_bundle_kind_from_name(const char *name)
{
    for (int k = RW_BUNDLE_BASELINE; name && k <= RW_BUNDLE_ADAPTER; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return (rw_bundle_kind_t)k;
    return RW_BUNDLE__NONE;
}

static const char *const role_names[RW_ROLE__COUNT] = {
    "model", "base", "router", "router_adapter", "domain", "adapter",
};

const char *rw_bundle__role_name(rw_bundle__role_t r)
{
    return r < RW_ROLE__COUNT ? role_names[r] : "?";
}

int rw_bundle__safe_file_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return 1;
}

int rw_bundle__file_hash(const char *path, uint64_t *size, uint64_t *hash)
{
    int fd = rw_open_regular(path); /* a FIFO, or /dev/zero that would never end: refused */
    if (fd < 0)
        return fd;
    enum { BUF = 1 << 20 };
    unsigned char *buf = rw_malloc(BUF);
    proto_checksum_t c;
    proto_checksum_init(&c);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t k = read(fd, buf, BUF);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            break;
        }
        if (k == 0)
            break;
        proto_checksum_update(&c, buf, (size_t)k);
        total += (uint64_t)k;
    }
    free(buf);
    close(fd);
    if (rc == 0) {
        *size = total;
        *hash = proto_checksum_final(&c);
    }
    return rc;
}

size_t rw_bundle__model_params(const rw_model_config_t *cfg)
{
    rw_layout_t lay;
    rw_model_layout(cfg, &lay);
    return lay.n_floats;
}

size_t rw_bundle__lora_params(const rw_lora_config_t *lcfg, const rw_model_config_t *base)
{
    rw_layout_t lay;
    rw_lora_layout(lcfg, base, &lay);
    return lay.n_floats;
}

json_t *rw_bundle__json_of(char *owned_json_text)
{
    json_error_t jerr;
    json_t *o = json_loads(owned_json_text, 0, &jerr);
    free(owned_json_text);
    if (!o)
        abort(); /* the text came from jansson: only out of memory gets here */
    return o;
}

int rw_bundle__write_json(const char *path, const json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!s)
        abort(); /* jansson fails only when out of memory */
    size_t n = strlen(s);
    s[n] = '\n'; /* a text file ends in a newline; the NUL is not written */
    int rc = rw_afile_write(path, s, n + 1);
    free(s);
    return rc;
}

/* Writes "manifest.json: MSG" to why; returns RW_EPARSE. */
__attribute__((format(printf, 3, 4))) static int bad(char *why, size_t whylen, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (why && whylen)
        snprintf(why, whylen, "%s: %s", RW_BUNDLE_MANIFEST, msg);
    return RW_EPARSE;
}

/* A non-negative integer field (up to 2^53, exact in a double). */
static int get_count(const json_t *o, const char *key, size_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > ((json_int_t)1 << 53))
        return -1;
    *out = (size_t)json_integer_value(v);
    return 0;
}

static int parse_domains(const json_t *m, rw_bundle__manifest_t *mf, char *why, size_t whylen)
{
    json_t *d = json_object_get(m, "domains");
    if (!json_is_array(d))
        return bad(why, whylen, "\"domains\" must be an array of names");
    size_t n = json_array_size(d);
    size_t lo = mf->kind == RW_BUNDLE_BASELINE ? 0 : 2;
    if (n < lo || n > RW_BUNDLE_MAX_DOMAINS)
        return bad(why, whylen, "a %s bundle needs %zu to %d domains, not %zu",
                   rw_bundle_kind_name(mf->kind), lo, RW_BUNDLE_MAX_DOMAINS, n);
    mf->n_domains = n;
    mf->domains = rw_new_array(const char *, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(d, i));
        if (!s || !*s || strlen(s) > RW_BUNDLE_MAX_NAME)
            return bad(why, whylen, "domain %zu must be a name of 1 to %d bytes", i,
                       RW_BUNDLE_MAX_NAME);
        for (const char *c = s; *c; c++) /* printed by inspect and eval: no escapes */
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                return bad(why, whylen, "domain %zu holds a control character", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(mf->domains[j], s) == 0)
                return bad(why, whylen, "domain \"%s\" is listed twice", s);
        mf->domains[i] = s;
    }
    return 0;
}

static long domain_index(const rw_bundle__manifest_t *mf, const char *name)
{
    for (size_t i = 0; i < mf->n_domains; i++)
        if (strcmp(mf->domains[i], name) == 0)
            return (long)i;
    return -1;
}

/* The roles kind has: bit r set for role r. */
static unsigned kind_roles(rw_bundle_kind_t k)
{
    switch (k) {
    case RW_BUNDLE_BASELINE:
    case RW_BUNDLE_MOE:
        return 1u << RW_ROLE_MODEL;
    case RW_BUNDLE_ROUTER:
        return 1u << RW_ROLE_ROUTER | 1u << RW_ROLE_DOMAIN;
    case RW_BUNDLE_ADAPTER:
        return 1u << RW_ROLE_BASE | 1u << RW_ROLE_ROUTER_ADAPTER | 1u << RW_ROLE_ADAPTER;
    default:
        return 0;
    }
}

static int parse_config(json_t *o, int lora, void *cfg)
{
    if (!json_is_object(o))
        return -1;
    char *s = json_dumps(o, JSON_COMPACT);
    if (!s)
        return -1;
    int rc = lora ? rw_lora_config_from_json(s, cfg) : rw_model_config_from_json(s, cfg);
    free(s);
    return rc;
}

/* One entry of "members". */
static int parse_member(const json_t *e, size_t i, rw_bundle__manifest_t *mf,
                        rw_bundle__member_t *mb, char *why, size_t whylen)
{
    if (!json_is_object(e))
        return bad(why, whylen, "member %zu is not an object", i);
    const char *role = json_string_value(json_object_get(e, "role"));
    int r = 0;
    while (role && r < RW_ROLE__COUNT && strcmp(role, role_names[r]) != 0)
        r++;
    if (!role || r == RW_ROLE__COUNT || !(kind_roles(mf->kind) & (1u << r)))
        return bad(why, whylen, "member %zu: role %s%s%s does not belong in a %s bundle", i,
                   role ? "\"" : "", role ? role : "missing", role ? "\"" : "",
                   rw_bundle_kind_name(mf->kind));
    mb->role = (rw_bundle__role_t)r;
    mb->file = json_string_value(json_object_get(e, "file"));
    if (!mb->file || !rw_bundle__safe_file_name(mb->file))
        return bad(why, whylen, "member %zu: \"file\" must be a plain file name", i);
    mb->domain = -1;
    json_t *dom = json_object_get(e, "domain");
    int per_domain = r == RW_ROLE_DOMAIN || r == RW_ROLE_ADAPTER;
    if (per_domain) {
        const char *d = json_string_value(dom);
        if (!d || (mb->domain = domain_index(mf, d)) < 0)
            return bad(why, whylen, "member %s: \"domain\" must be one of \"domains\"", mb->file);
        if (mf->by_domain[mb->domain] >= 0)
            return bad(why, whylen, "domain \"%s\" has two members", d);
        mf->by_domain[mb->domain] = (long)i;
    } else if (dom) {
        return bad(why, whylen, "member %s: a %s has no \"domain\"", mb->file, role);
    } else {
        long *slot = r == RW_ROLE_MODEL || r == RW_ROLE_BASE ? &mf->main : &mf->router;
        if (*slot >= 0)
            return bad(why, whylen, "two members have role \"%s\"", role);
        *slot = (long)i;
    }
    if (parse_config(json_object_get(e, "config"), 0, &mb->cfg) < 0)
        return bad(why, whylen, "member %s: \"config\" is not a valid model configuration",
                   mb->file);
    mb->lora = r == RW_ROLE_ROUTER_ADAPTER || r == RW_ROLE_ADAPTER;
    json_t *lo = json_object_get(e, "lora");
    if (mb->lora) {
        if (parse_config(lo, 1, &mb->lcfg) < 0 || rw_lora_config_validate(&mb->lcfg, &mb->cfg) < 0)
            return bad(why, whylen, "member %s: \"lora\" is not a valid adapter configuration",
                       mb->file);
        const char *fp = json_string_value(json_object_get(e, "base_fingerprint"));
        if (!fp || strlen(fp) != 16 || strspn(fp, "0123456789abcdef") != 16)
            return bad(why, whylen, "member %s: \"base_fingerprint\" must be 16 hex digits",
                       mb->file);
    } else if (lo) {
        return bad(why, whylen, "member %s: a %s has no \"lora\"", mb->file, role);
    }
    size_t want =
        mb->lora ? rw_bundle__lora_params(&mb->lcfg, &mb->cfg) : rw_bundle__model_params(&mb->cfg);
    if (get_count(e, "params", &mb->params) < 0 || mb->params != want)
        return bad(why, whylen, "member %s: \"params\" must be %zu, its configuration's count",
                   mb->file, want);
    return 0;
}

/* How members of a kind must fit together. */
static int check_fit(rw_bundle__manifest_t *mf, char *why, size_t whylen)
{
    const char *kind = rw_bundle_kind_name(mf->kind);
    if (mf->main < 0 && (mf->kind != RW_BUNDLE_ROUTER))
        return bad(why, whylen, "a %s bundle needs its %s member", kind,
                   mf->kind == RW_BUNDLE_ADAPTER ? "base" : "model");
    if (mf->router < 0 && (mf->kind == RW_BUNDLE_ROUTER || mf->kind == RW_BUNDLE_ADAPTER))
        return bad(why, whylen, "a %s bundle needs its router member", kind);
    for (size_t d = 0; d < mf->n_domains; d++)
        if (mf->by_domain[d] < 0 && (mf->kind == RW_BUNDLE_ROUTER || mf->kind == RW_BUNDLE_ADAPTER))
            return bad(why, whylen, "domain \"%s\" has no member", mf->domains[d]);
    int nd = (int)mf->n_domains;
    const rw_bundle__member_t *main = mf->main >= 0 ? &mf->members[mf->main] : NULL;
    const rw_bundle__member_t *router = mf->router >= 0 ? &mf->members[mf->router] : NULL;
    if ((mf->kind == RW_BUNDLE_BASELINE || mf->kind == RW_BUNDLE_MOE) &&
        main->cfg.head != RW_HEAD_REWARD)
        return bad(why, whylen, "the model of a %s bundle must have a reward head", kind);
    if (mf->kind == RW_BUNDLE_MOE && main->cfg.n_experts != nd)
        return bad(why, whylen, "the moe model has %d experts for %d domains", main->cfg.n_experts,
                   nd);
    if (mf->kind == RW_BUNDLE_ROUTER &&
        (router->cfg.head != RW_HEAD_CLASSIFIER || router->cfg.n_classes != nd))
        return bad(why, whylen, "the router must be a classifier of %d classes", nd);
    if (mf->kind == RW_BUNDLE_ADAPTER &&
        (router->lcfg.head != RW_HEAD_CLASSIFIER || router->lcfg.n_classes != nd))
        return bad(why, whylen, "the router adapter must be a classifier of %d classes", nd);
    for (size_t d = 0; d < mf->n_domains && mf->by_domain; d++) {
        if (mf->by_domain[d] < 0)
            continue;
        const rw_bundle__member_t *m = &mf->members[mf->by_domain[d]];
        const rw_bundle__member_t *first = &mf->members[mf->by_domain[0]];
        int head = m->lora ? m->lcfg.head : m->cfg.head;
        if (head != RW_HEAD_REWARD)
            return bad(why, whylen, "member %s must have a reward head", m->file);
        if (memcmp(&m->cfg, &first->cfg, sizeof m->cfg) != 0)
            return bad(why, whylen, "member %s has another configuration than %s", m->file,
                       first->file);
    }
    if (mf->kind == RW_BUNDLE_ADAPTER)
        for (size_t i = 0; i < mf->n_members; i++)
            if (mf->members[i].lora && memcmp(&mf->members[i].cfg, &main->cfg, sizeof main->cfg))
                return bad(why, whylen, "adapter %s was made for another base configuration",
                           mf->members[i].file);
    return 0;
}

/* "params": the totals must be what the members add up to. */
static int check_params(const json_t *m, rw_bundle__manifest_t *mf, char *why, size_t whylen)
{
    json_t *p = json_object_get(m, "params");
    size_t total = 0, per_domain = 0;
    for (size_t i = 0; i < mf->n_members; i++) {
        total += mf->members[i].params;
        if (mf->members[i].domain >= 0 && mf->members[i].params > per_domain)
            per_domain = mf->members[i].params;
    }
    size_t per_pair = total;
    if (mf->kind == RW_BUNDLE_ROUTER || mf->kind == RW_BUNDLE_ADAPTER)
        per_pair = (mf->main >= 0 ? mf->members[mf->main].params : 0) +
                   mf->members[mf->router].params + per_domain;
    if (!json_is_object(p) || get_count(p, "total", &mf->params_total) < 0 ||
        get_count(p, "per_pair", &mf->params_per_pair) < 0)
        return bad(why, whylen, "\"params\" needs \"total\" and \"per_pair\" counts");
    if (mf->params_total != total || mf->params_per_pair != per_pair)
        return bad(why, whylen,
                   "\"params\" says %zu total, %zu per pair; the members give %zu, %zu",
                   mf->params_total, mf->params_per_pair, total, per_pair);
    return 0;
}

/* "files": exactly the tokenizer and the members' files, each once. */
static int check_files(const json_t *m, rw_bundle__manifest_t *mf, const char *tok, char *why,
                       size_t whylen)
{
    json_t *files = json_object_get(m, "files");
    if (!json_is_array(files))
        return bad(why, whylen, "\"files\" must be an array");
    size_t n = json_array_size(files);
    if (n != mf->n_members + 1)
        return bad(why, whylen, "\"files\" lists %zu files; the tokenizer and members are %zu", n,
                   mf->n_members + 1);
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(files, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        const char *h = json_string_value(json_object_get(f, "xxh64"));
        size_t bytes;
        if (!json_is_object(f) || !name || !rw_bundle__safe_file_name(name))
            return bad(why, whylen, "file %zu: \"name\" must be a plain file name", i);
        if (get_count(f, "bytes", &bytes) < 0)
            return bad(why, whylen, "file %s: \"bytes\" must be a count", name);
        if (!h || strlen(h) != 16 || strspn(h, "0123456789abcdef") != 16)
            return bad(why, whylen, "file %s: \"xxh64\" must be 16 hex digits", name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(files, j), "name")),
                       name) == 0)
                return bad(why, whylen, "file %s is listed twice", name);
        int known = strcmp(name, tok) == 0;
        for (size_t k = 0; k < mf->n_members && !known; k++)
            known = strcmp(mf->members[k].file, name) == 0;
        if (!known)
            return bad(why, whylen, "file %s is neither the tokenizer nor a member", name);
    }
    return 0; /* n distinct known names, n known: every one is listed */
}

int rw_bundle__manifest_parse(const json_t *m, rw_bundle__manifest_t *mf, char *why, size_t whylen)
{
    memset(mf, 0, sizeof *mf);
    mf->main = mf->router = -1;
    if (!json_is_object(m))
        return bad(why, whylen, "not a JSON object");
    const char *format = json_string_value(json_object_get(m, "format"));
    if (!format || strcmp(format, RW_BUNDLE_FORMAT) != 0)
        return bad(why, whylen, "\"format\" must be \"%s\"", RW_BUNDLE_FORMAT);
    json_t *v = json_object_get(m, "version");
    if (!json_is_integer(v))
        return bad(why, whylen, "\"version\" must be an integer");
    if (json_integer_value(v) != RW_BUNDLE_FORMAT_VERSION)
        return bad(why, whylen, "format version %" JSON_INTEGER_FORMAT " (this rewire reads %d)",
                   json_integer_value(v), RW_BUNDLE_FORMAT_VERSION);
    mf->kind = rw_bundle_kind_from_name(json_string_value(json_object_get(m, "kind")));
    if (mf->kind == RW_BUNDLE__NONE)
        return bad(why, whylen, "\"kind\" must be baseline, moe, router or adapter");
    int rc = parse_domains(m, mf, why, whylen);
    if (rc < 0)
        return rc;
    json_t *tok = json_object_get(m, "tokenizer");
    const char *tfile = json_string_value(json_object_get(tok, "file"));
    size_t vocab;
    if (!json_is_object(tok) || !tfile || !rw_bundle__safe_file_name(tfile) ||
        get_count(tok, "vocab", &vocab) < 0)
        return bad(why, whylen, "\"tokenizer\" needs a plain \"file\" name and a \"vocab\" count");
    json_t *members = json_object_get(m, "members");
    if (!json_is_array(members) || json_array_size(members) == 0 ||
        json_array_size(members) > RW_BUNDLE_MAX_DOMAINS + 2)
        return bad(why, whylen, "\"members\" must be a non-empty array");
    mf->n_members = json_array_size(members);
    mf->members = rw_new_array(rw_bundle__member_t, mf->n_members);
    mf->by_domain = rw_new_array(long, mf->n_domains ? mf->n_domains : 1);
    for (size_t d = 0; d < mf->n_domains; d++)
        mf->by_domain[d] = -1;
    for (size_t i = 0; i < mf->n_members; i++) {
        rc = parse_member(json_array_get(members, i), i, mf, &mf->members[i], why, whylen);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(mf->members[j].file, mf->members[i].file) == 0 ||
                strcmp(mf->members[i].file, tfile) == 0)
                return bad(why, whylen, "file %s belongs to two members", mf->members[i].file);
        if ((size_t)mf->members[i].cfg.vocab < vocab)
            return bad(why, whylen, "member %s has %d token ids for a tokenizer of %zu",
                       mf->members[i].file, mf->members[i].cfg.vocab, vocab);
    }
    if ((rc = check_fit(mf, why, whylen)) < 0 || (rc = check_params(m, mf, why, whylen)) < 0 ||
        (rc = check_files(m, mf, tfile, why, whylen)) < 0)
        return rc;
    json_t *prov = json_object_get(m, "provenance"), *ev = json_object_get(m, "eval");
    if (prov && !json_is_object(prov))
        return bad(why, whylen, "\"provenance\" must be an object");
    if (ev && (!json_is_object(ev) || !json_is_array(json_object_get(ev, "domains"))))
        return bad(why, whylen, "\"eval\" must be an object with a \"domains\" array");
    return 0;
}

void rw_bundle__manifest_fini(rw_bundle__manifest_t *mf)
{
    free(mf->domains);
    free(mf->members);
    free(mf->by_domain);
    memset(mf, 0, sizeof *mf);
    mf->main = mf->router = -1;
}

/* "dir/name" (caller frees). */
static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = rw_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int rw_bundle_manifest_read(const char *dir, json_t **manifest, char *why, size_t whylen)
{
    *manifest = NULL;
    char *path = join(dir, RW_BUNDLE_MANIFEST);
    json_error_t jerr;
    int rc = 0;
    FILE *f = rw_fopen_regular(path, &rc); /* a FIFO would wait for a writer */
    if (!f) {
        snprintf(why, whylen, "%s: %s", path, rw_strerror(rc));
        goto fail_open;
    }
    if (fseek(f, 0, SEEK_END) != 0 || ftell(f) < 0 || (size_t)ftell(f) > RW_BUNDLE_MAX_MANIFEST) {
        rc = bad(why, whylen, "unreadable or larger than %zu bytes", RW_BUNDLE_MAX_MANIFEST);
        goto fail_read;
    }
    rewind(f);
    json_t *m = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    if (!m) {
        rc = bad(why, whylen, "not JSON: %s (line %d)", jerr.text, jerr.line);
        goto fail_read;
    }
    rw_bundle__manifest_t mf;
    rc = rw_bundle__manifest_parse(m, &mf, why, whylen);
    rw_bundle__manifest_fini(&mf);
    if (rc < 0)
        json_decref(m);
    else
        *manifest = m;
fail_read:
    fclose(f);
fail_open:
    free(path);
    return rc;
}

int rw_bundle_file_verify(const char *dir, const json_t *file, char *why, size_t whylen)
{
    const char *name = json_string_value(json_object_get(file, "name"));
    const char *want = json_string_value(json_object_get(file, "xxh64"));
    json_int_t bytes = json_integer_value(json_object_get(file, "bytes"));
    if (!name || !want || !rw_bundle__safe_file_name(name))
        return bad(why, whylen, "a file entry lacks a plain \"name\" or its \"xxh64\"");
    char *path = join(dir, name);
    uint64_t size, hash;
    int rc = rw_bundle__file_hash(path, &size, &hash);
    free(path);
    char got[17];
    snprintf(got, sizeof got, "%016" PRIx64, rc == 0 ? hash : 0);
    if (rc < 0)
        snprintf(why, whylen, "%s: %s", name, rw_strerror(rc));
    else if ((json_int_t)size != bytes)
        snprintf(why, whylen, "%s: %" PRIu64 " bytes, the manifest says %" JSON_INTEGER_FORMAT,
                 name, size, bytes);
    else if (strcmp(got, want) != 0)
        snprintf(why, whylen, "%s: checksum %s, the manifest says %s", name, got, want);
    else
        return 0;
    return rc < 0 ? rc : RW_ECHECKSUM;
}

/* What a member's own metadata says it is for (rw_task_run's extra: its
 * domain, or a router's classes in order) must agree with the manifest: a
 * domain's model filed under another domain, or a router whose classes are
 * in another order, would score and route wrongly without a word. A file
 * without that metadata is taken as it is. */
static int check_extra(const rw_bundle_t *b, const rw_bundle__member_t *mb, const char *extra,
                       char *why, size_t whylen)
{
    json_t *o = extra && *extra ? json_loads(extra, 0, NULL) : NULL;
    json_t *doms = json_object_get(o, "domains");
    const char *dom = json_string_value(json_object_get(o, "domain"));
    int rc = 0;
    if (mb->domain >= 0 && dom && strcmp(dom, b->mf.domains[mb->domain]) != 0) {
        snprintf(why, whylen, "%s: a model of domain %.64s, where the manifest has %s", mb->file,
                 dom, b->mf.domains[mb->domain]);
        rc = RW_EFORMAT;
    } else if ((mb->role == RW_ROLE_ROUTER || mb->role == RW_ROLE_ROUTER_ADAPTER) &&
               json_is_array(doms)) {
        size_t n = json_array_size(doms), k = 0;
        while (k < n && k < b->mf.n_domains && json_string_value(json_array_get(doms, k)) &&
               strcmp(json_string_value(json_array_get(doms, k)), b->mf.domains[k]) == 0)
            k++;
        if (k != n || n != b->mf.n_domains) {
            snprintf(why, whylen,
                     "%s: it routes to %zu domains that differ from the manifest's %zu from "
                     "the %zuth on",
                     mb->file, n, b->mf.n_domains, k + 1);
            rc = RW_EFORMAT;
        }
    }
    json_decref(o);
    return rc;
}

/* Loads member i; *m or *lo gets it. */
static int load_member(rw_bundle_t *b, size_t i, rw_model_t **m, rw_lora_t **lo, char *why,
                       size_t whylen)
{
    const rw_bundle__member_t *mb = &b->mf.members[i];
    char *path = join(b->dir, mb->file);
    rw_ckpt_info_t info = {0};
    int rc =
        mb->lora ? rw_lora_load(path, b->model, lo, &info) : rw_checkpoint_load(path, m, &info);
    free(path);
    if (rc == 0 && (rc = check_extra(b, mb, info.extra, why, whylen)) < 0) {
        rw_ckpt_info_fini(&info);
        return rc;
    }
    rw_ckpt_info_fini(&info);
    if (rc < 0) {
        snprintf(why, whylen, "%s: %s", mb->file,
                 rc == RW_ECHECKSUM ? "adapter made for another base model" : rw_strerror(rc));
        return rc;
    }
    int same = mb->lora ? memcmp(&(*lo)->cfg, &mb->lcfg, sizeof mb->lcfg) == 0
                        : memcmp(&(*m)->cfg, &mb->cfg, sizeof mb->cfg) == 0;
    if (!same) {
        snprintf(why, whylen, "%s: its configuration differs from the manifest's", mb->file);
        return RW_EFORMAT;
    }
    return 0;
}

static int load_all(rw_bundle_t *b, char *why, size_t whylen)
{
    rw_bundle__manifest_t *mf = &b->mf;
    json_t *tok = json_object_get(b->manifest, "tokenizer");
    char *tpath = join(b->dir, json_string_value(json_object_get(tok, "file")));
    char err[512];
    int rc = rw_bpe_load(tpath, &b->bpe, err, sizeof err);
    free(tpath);
    if (rc < 0) {
        snprintf(why, whylen, "%s", err);
        return rc;
    }
    if (rw_bpe_vocab_size(b->bpe) != (size_t)json_integer_value(json_object_get(tok, "vocab"))) {
        snprintf(why, whylen, "tokenizer: %zu tokens, the manifest says %" JSON_INTEGER_FORMAT,
                 rw_bpe_vocab_size(b->bpe), json_integer_value(json_object_get(tok, "vocab")));
        return RW_EFORMAT;
    }
    rw_lora_t *none = NULL;
    if (mf->main >= 0 && (rc = load_member(b, (size_t)mf->main, &b->model, &none, why, whylen)) < 0)
        return rc;
    if (mf->kind == RW_BUNDLE_ROUTER) {
        rc = load_member(b, (size_t)mf->router, &b->router, &none, why, whylen);
        b->members = rw_new_array(rw_model_t *, mf->n_domains);
        for (size_t d = 0; d < mf->n_domains && rc == 0; d++)
            rc = load_member(b, (size_t)mf->by_domain[d], &b->members[d], &none, why, whylen);
    } else if (mf->kind == RW_BUNDLE_ADAPTER) {
        rw_model_t *no_model = NULL;
        rc = load_member(b, (size_t)mf->router, &no_model, &b->router_lora, why, whylen);
        b->adapters = rw_new_array(rw_lora_t *, mf->n_domains);
        for (size_t d = 0; d < mf->n_domains && rc == 0; d++)
            rc = load_member(b, (size_t)mf->by_domain[d], &no_model, &b->adapters[d], why, whylen);
    }
    return rc;
}

int rw_bundle_open(const char *dir, rw_bundle_t **b_p, char *why, size_t whylen)
{
    *b_p = NULL;
    rw_bundle_t *b = rw_new(rw_bundle_t);
    b->dir = rw_strdup(dir);
    b->mf.main = b->mf.router = -1;
    int rc = rw_bundle_manifest_read(dir, &b->manifest, why, whylen);
    if (rc < 0)
        goto fail;
    rc = rw_bundle__manifest_parse(b->manifest, &b->mf, why, whylen);
    json_t *files = json_object_get(b->manifest, "files");
    for (size_t i = 0; i < json_array_size(files) && rc == 0; i++)
        rc = rw_bundle_file_verify(dir, json_array_get(files, i), why, whylen);
    if (rc == 0)
        rc = load_all(b, why, whylen);
    if (rc < 0)
        goto fail;
    *b_p = b;
    return 0;

fail:
    rw_bundle_destroy(&b);
    return rc;
}

static void drop_engines(rw_bundle_t *b)
{
    rw_engine_destroy(&b->eng);
    rw_engine_destroy(&b->eng_router);
    for (size_t d = 0; b->eng_members && d < b->mf.n_domains; d++)
        rw_engine_destroy(&b->eng_members[d]);
    free(b->eng_members);
    b->eng_members = NULL;
}

void rw_bundle_destroy(rw_bundle_t **b_p)
{
    rw_bundle_t *b = b_p ? *b_p : NULL;
    if (!b)
        return;
    drop_engines(b);
    for (size_t d = 0; d < b->mf.n_domains; d++) {
        if (b->members)
            rw_model_destroy(&b->members[d]);
        if (b->adapters)
            rw_lora_destroy(&b->adapters[d]);
    }
    free(b->members);
    free(b->adapters);
    rw_lora_destroy(&b->router_lora);
    rw_model_destroy(&b->router);
    rw_model_destroy(&b->model);
    rw_bpe_destroy(&b->bpe);
    rw_batch_fini(&b->batch);
    free(b->out);
    rw_bundle__manifest_fini(&b->mf);
    json_decref(b->manifest);
    free(b->dir);
    free(b);
    *b_p = NULL;
}

void rw_bundle_set_threads(rw_bundle_t *b, int threads)
{
    if (threads != b->threads)
        drop_engines(b);
    b->threads = threads;
}

rw_bundle_kind_t rw_bundle_kind(const rw_bundle_t *b)
{
    return b->mf.kind;
}

size_t rw_bundle_n_domains(const rw_bundle_t *b)
{
    return b->mf.n_domains;
}

const char *rw_bundle_domain(const rw_bundle_t *b, size_t i)
{
    return i < b->mf.n_domains ? b->mf.domains[i] : NULL;
}

int rw_bundle_domain_index(const rw_bundle_t *b, const char *name)
{
    return (int)domain_index(&b->mf, name);
}

const json_t *rw_bundle_manifest(const rw_bundle_t *b)
{
    return b->manifest;
}
