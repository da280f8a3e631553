/* bundle_write.c — assembling a bundle folder from a job's artifacts.
 *
 * The folder is built beside its destination (dir.tmp-XXXXXX): members are
 * copied in unchanged and hashed as they are copied, then loaded back from
 * the copies and checked to fit together (so what is checked is exactly
 * what ships), the tokenizer and manifest are written, everything is
 * fsynced, and the folder is renamed into place. An existing bundle is
 * swapped out in one step (renameat2 RENAME_EXCHANGE; where the file system
 * lacks it, through dir.old) and removed only after the new one is in
 * place, so a crash leaves the old bundle or the new one, never half of
 * either. A folder that is not a bundle is never replaced.
 */
#include "bundle_impl.h"

#include "afile.h"
#include "alloc.h"
#include "checkpoint.h"
#include "checksum.h"
#include "err.h"
#include "log.h"
#include "rw_version.h"
#include "utf8.h"

#include <errno.h>
#include <limits.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct wmember {
    rw_bundle__role_t role;
    long domain; /* label, or -1 */
    const char *src;
    char file[RW_BUNDLE_MAX_NAME + 64];
    uint64_t bytes, hash;
    int lora;
    rw_model_config_t cfg;
    rw_lora_config_t lcfg;
    uint64_t base_fp; /* lora: the base it was trained on */
    size_t params;
} wmember_t;

typedef struct writer {
    const rw_bundle_sources_t *src;
    char *dir, *tmp;
    wmember_t *m;
    size_t n;
    char *tok; /* bytes of tokenizer.json */
    size_t tok_len;
    char *tok_ref; /* its canonical form (rw_bpe_to_json) */
    const char *tok_from;
    size_t vocab;
    rw_model_t *main; /* the model/base, kept to check adapters */
    char *why;
    size_t whylen;
} writer_t;

__attribute__((format(printf, 3, 4))) static int fail(writer_t *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (w->why && w->whylen)
        vsnprintf(w->why, w->whylen, fmt, ap);
    va_end(ap);
    return code;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = rw_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Copies src to dst (a new file), fsynced, hashing what it writes. */
static int copy_file(const char *src, const char *dst, uint64_t *bytes, uint64_t *hash)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), rc = 0;
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        rc = -errno;
        close(in);
        return rc;
    }
    enum { BUF = 1 << 20 };
    char *buf = rw_malloc(BUF);
    proto_checksum_t c;
    proto_checksum_init(&c);
    *bytes = 0;
    for (;;) {
        ssize_t k = read(in, buf, BUF);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = k < 0 ? -errno : 0;
            break;
        }
        proto_checksum_update(&c, buf, (size_t)k);
        *bytes += (uint64_t)k;
        for (ssize_t off = 0; off < k && rc == 0;) {
            ssize_t wr = write(out, buf + off, (size_t)(k - off));
            if (wr < 0 && errno != EINTR)
                rc = -errno;
            off += wr > 0 ? wr : 0;
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && fsync(out) != 0)
        rc = -errno;
    if (close(out) != 0 && rc == 0)
        rc = -errno;
    close(in);
    free(buf);
    *hash = proto_checksum_final(&c);
    return rc;
}

/* "prefix-NAME.safetensors"; a name with bytes a file name should not
 * carry gets them replaced and its label appended after a '~' (which a
 * clean name cannot hold), so every member's file is distinct. */
static void member_file(char *out, size_t n, const char *prefix, const char *name, long label)
{
    char clean[RW_BUNDLE_MAX_NAME + 1];
    size_t k = 0;
    int changed = 0;
    for (const char *p = name; *p && k < RW_BUNDLE_MAX_NAME; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '-' || *p == '_' || *p == '.';
        clean[k++] = ok ? *p : '_';
        changed |= !ok;
    }
    clean[k] = 0;
    if (changed)
        snprintf(out, n, "%s-%s~%ld.safetensors", prefix, clean, label);
    else
        snprintf(out, n, "%s-%s.safetensors", prefix, clean);
}

static int check_sources(writer_t *w)
{
    const rw_bundle_sources_t *s = w->src;
    const char *kind = rw_bundle_kind_name(s->kind);
    if (s->kind == RW_BUNDLE__NONE || !strcmp(kind, "?"))
        return fail(w, RW_EINVAL, "unknown bundle kind %d", (int)s->kind);
    size_t lo = s->kind == RW_BUNDLE_BASELINE ? 0 : 2;
    if (s->n_domains < lo || s->n_domains > RW_BUNDLE_MAX_DOMAINS || (s->n_domains && !s->domains))
        return fail(w, RW_EINVAL, "a %s bundle needs %zu to %d domains, not %zu", kind, lo,
                    RW_BUNDLE_MAX_DOMAINS, s->n_domains);
    for (size_t i = 0; i < s->n_domains; i++) {
        const char *d = s->domains[i];
        size_t len = d ? strlen(d) : 0;
        if (!len || len > RW_BUNDLE_MAX_NAME || rw_utf8_check(d, len) != len)
            return fail(w, RW_EINVAL, "domain %zu must be 1 to %d bytes of UTF-8", i,
                        RW_BUNDLE_MAX_NAME);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->domains[j], d) == 0)
                return fail(w, RW_EINVAL, "domain \"%s\" is listed twice", d);
    }
    const char *need = NULL;
    if ((s->kind == RW_BUNDLE_BASELINE || s->kind == RW_BUNDLE_MOE) && !s->model)
        need = "model";
    else if (s->kind == RW_BUNDLE_ROUTER && !s->router)
        need = "router";
    else if (s->kind == RW_BUNDLE_ADAPTER && !s->base)
        need = "base";
    else if (s->kind == RW_BUNDLE_ADAPTER && !s->router_adapter)
        need = "router_adapter";
    else if ((s->kind == RW_BUNDLE_ROUTER || s->kind == RW_BUNDLE_ADAPTER) && !s->members)
        need = "members";
    for (size_t i = 0; !need && s->members && i < s->n_domains; i++)
        if (!s->members[i])
            need = "members (one per domain)";
    if (need)
        return fail(w, RW_EINVAL, "a %s bundle needs its %s", kind, need);
    if (s->provenance && !json_is_object(s->provenance))
        return fail(w, RW_EINVAL, "provenance must be a JSON object");
    return 0;
}

static void plan(writer_t *w)
{
    const rw_bundle_sources_t *s = w->src;
    w->m = rw_new_array(wmember_t, s->n_domains + 2);
    wmember_t *m = w->m;
    switch (s->kind) {
    case RW_BUNDLE_BASELINE:
    case RW_BUNDLE_MOE:
        m[w->n++] = (wmember_t){.role = RW_ROLE_MODEL, .domain = -1, .src = s->model};
        snprintf(m[0].file, sizeof m[0].file, "model.safetensors");
        break;
    case RW_BUNDLE_ROUTER:
        m[w->n++] = (wmember_t){.role = RW_ROLE_ROUTER, .domain = -1, .src = s->router};
        snprintf(m[0].file, sizeof m[0].file, "router.safetensors");
        break;
    default:
        m[w->n++] = (wmember_t){.role = RW_ROLE_BASE, .domain = -1, .src = s->base};
        m[w->n++] = (wmember_t){
            .role = RW_ROLE_ROUTER_ADAPTER, .domain = -1, .src = s->router_adapter, .lora = 1};
        snprintf(m[0].file, sizeof m[0].file, "base.safetensors");
        snprintf(m[1].file, sizeof m[1].file, "router-adapter.safetensors");
        break;
    }
    if (s->kind != RW_BUNDLE_ROUTER && s->kind != RW_BUNDLE_ADAPTER)
        return;
    int lora = s->kind == RW_BUNDLE_ADAPTER;
    for (size_t d = 0; d < s->n_domains; d++) {
        wmember_t *x = &m[w->n++];
        *x = (wmember_t){.role = lora ? RW_ROLE_ADAPTER : RW_ROLE_DOMAIN,
                         .domain = (long)d,
                         .src = s->members[d],
                         .lora = lora};
        member_file(x->file, sizeof x->file, lora ? "adapter" : "domain", s->domains[d], (long)d);
    }
}

/* What a member is called in messages: "domain model 'b' (path)". */
static const char *label(const writer_t *w, const wmember_t *x, char *buf, size_t n)
{
    static const char *const what[RW_ROLE__COUNT] = {
        "model", "base model", "router", "router adapter", "domain model", "adapter",
    };
    if (x->domain >= 0)
        snprintf(buf, n, "%s '%s' (%s)", what[x->role], w->src->domains[x->domain], x->src);
    else
        snprintf(buf, n, "%s (%s)", what[x->role], x->src);
    return buf;
}

/* The given tokenizer.json: its bytes and canonical form. */
static int read_tokenizer(writer_t *w)
{
    const char *path = w->src->tokenizer;
    if (!path)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(w, -errno, "tokenizer %s: %s", path, strerror(errno));
    size_t cap = 0, n = 0, k;
    char *buf = NULL;
    do {
        rw_grow(&buf, &cap, n + 65536);
        k = fread(buf + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return fail(w, RW_EIO, "tokenizer %s: read error", path);
    }
    rw_bpe_t *bpe;
    char msg[256];
    if (rw_bpe_from_json(buf, n, &bpe, msg, sizeof msg) < 0) {
        free(buf);
        return fail(w, RW_EPARSE, "tokenizer %s: %s", path, msg);
    }
    w->tok = buf;
    w->tok_len = n;
    w->tok_ref = rw_bpe_to_json(bpe);
    w->tok_from = path;
    w->vocab = rw_bpe_vocab_size(bpe);
    rw_bpe_destroy(&bpe);
    return 0;
}

/* A checkpoint's tokenizer must be the bundle's (the first one seen sets
 * it when no tokenizer.json was given). */
static int check_tokenizer(writer_t *w, const wmember_t *x, const char *tok)
{
    char lb[512];
    if (!*tok)
        return 0;
    if (w->tok_ref && strcmp(tok, w->tok_ref) == 0)
        return 0;
    rw_bpe_t *bpe;
    char msg[256];
    if (rw_bpe_from_json(tok, strlen(tok), &bpe, msg, sizeof msg) < 0)
        return fail(w, RW_EFORMAT, "%s: its tokenizer is malformed: %s", label(w, x, lb, sizeof lb),
                    msg);
    char *canon = rw_bpe_to_json(bpe);
    size_t vocab = rw_bpe_vocab_size(bpe);
    rw_bpe_destroy(&bpe);
    if (!w->tok_ref) {
        w->tok = rw_strdup(tok);
        w->tok_len = strlen(tok);
        w->tok_ref = canon;
        w->tok_from = x->src;
        w->vocab = vocab;
        return 0;
    }
    int same = strcmp(canon, w->tok_ref) == 0;
    free(canon);
    if (!same)
        return fail(w, RW_EINVAL, "%s was trained with another tokenizer than %s",
                    label(w, x, lb, sizeof lb), w->tok_from);
    return 0;
}

/* Loads member x from its copy and records what the manifest says of it. */
static int load_check(writer_t *w, wmember_t *x)
{
    char lb[512];
    char *path = join(w->tmp, x->file);
    int rc;
    if (x->lora) {
        rw_lora_t *lo = NULL;
        rc = rw_lora_load(path, w->main, &lo, NULL);
        if (rc == RW_ECHECKSUM)
            rc = fail(w, RW_EINVAL, "%s was trained on another base model than %s",
                      label(w, x, lb, sizeof lb), w->src->base);
        else if (rc == RW_EINVAL)
            rc = fail(w, RW_EINVAL, "%s was made for another model configuration than %s",
                      label(w, x, lb, sizeof lb), w->src->base);
        else if (rc < 0)
            rc = fail(w, rc, "%s: not a rewire adapter (%s)", label(w, x, lb, sizeof lb),
                      rw_strerror(rc));
        if (rc == 0) {
            x->cfg = lo->base;
            x->lcfg = lo->cfg;
            x->base_fp = lo->base_fingerprint;
            x->params = lo->layout.n_floats;
        }
        rw_lora_destroy(&lo);
    } else {
        rw_model_t *m = NULL;
        rw_ckpt_info_t info = {0};
        rc = rw_checkpoint_load(path, &m, &info);
        if (rc < 0)
            rc = fail(w, rc, "%s: not a rewire model checkpoint (%s)", label(w, x, lb, sizeof lb),
                      rw_strerror(rc));
        if (rc == 0)
            rc = check_tokenizer(w, x, info.tokenizer);
        if (rc == 0) {
            x->cfg = m->cfg;
            x->params = m->layout.n_floats;
        }
        if (rc == 0 && (x->role == RW_ROLE_MODEL || x->role == RW_ROLE_BASE))
            w->main = m, m = NULL;
        rw_model_destroy(&m);
        rw_ckpt_info_fini(&info);
    }
    free(path);
    return rc;
}

/* The kind's rules: heads, class and expert counts, shared configurations. */
static int check_fit(writer_t *w)
{
    char lb[512];
    const rw_bundle_sources_t *s = w->src;
    int nd = (int)s->n_domains;
    for (size_t i = 0; i < w->n; i++) {
        wmember_t *x = &w->m[i];
        int head = x->lora ? x->lcfg.head : x->cfg.head;
        int classes = x->lora ? x->lcfg.n_classes : x->cfg.n_classes;
        int router = x->role == RW_ROLE_ROUTER || x->role == RW_ROLE_ROUTER_ADAPTER;
        if (router && (head != RW_HEAD_CLASSIFIER || classes != nd))
            return fail(w, RW_EINVAL,
                        "%s must be a classifier of %d classes (one per domain), not %s",
                        label(w, x, lb, sizeof lb), nd,
                        head == RW_HEAD_CLASSIFIER ? "of another count" : "a reward model");
        if (!router && x->role != RW_ROLE_BASE && head != RW_HEAD_REWARD)
            return fail(w, RW_EINVAL, "%s must have a reward head", label(w, x, lb, sizeof lb));
        if (s->kind == RW_BUNDLE_MOE && x->cfg.n_experts != nd)
            return fail(w, RW_EINVAL, "%s has %d experts; a moe bundle of %d domains needs %d",
                        label(w, x, lb, sizeof lb), x->cfg.n_experts, nd, nd);
        if (x->role == RW_ROLE_DOMAIN && memcmp(&x->cfg, &w->m[1].cfg, sizeof x->cfg) != 0)
            return fail(w, RW_EINVAL, "%s has another configuration than domain model '%s'",
                        label(w, x, lb, sizeof lb), s->domains[0]);
        if (x->cfg.vocab < (int)w->vocab)
            return fail(w, RW_EINVAL, "%s has %d token ids; the tokenizer has %zu",
                        label(w, x, lb, sizeof lb), x->cfg.vocab, w->vocab);
    }
    return 0;
}

static json_t *member_json(const writer_t *w, const wmember_t *x)
{
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(rw_bundle__role_name(x->role)));
    if (x->domain >= 0)
        json_object_set_new(o, "domain", json_string(w->src->domains[x->domain]));
    json_object_set_new(o, "file", json_string(x->file));
    json_object_set_new(o, "config", rw_bundle__json_of(rw_model_config_to_json(&x->cfg)));
    if (x->lora) {
        char fp[17];
        snprintf(fp, sizeof fp, "%016" PRIx64, x->base_fp);
        json_object_set_new(o, "lora", rw_bundle__json_of(rw_lora_config_to_json(&x->lcfg)));
        json_object_set_new(o, "base_fingerprint", json_string(fp));
    }
    json_object_set_new(o, "params", json_integer((json_int_t)x->params));
    return o;
}

static json_t *file_json(const char *name, uint64_t bytes, uint64_t hash)
{
    char h[17];
    snprintf(h, sizeof h, "%016" PRIx64, hash);
    return json_pack("{s:s, s:I, s:s}", "name", name, "bytes", (json_int_t)bytes, "xxh64", h);
}

/* Parameters loaded to score one pair, and (moe) active per token. */
static json_t *params_json(const writer_t *w)
{
    size_t total = 0, per_domain = 0;
    for (size_t i = 0; i < w->n; i++) {
        total += w->m[i].params;
        if (w->m[i].domain >= 0 && w->m[i].params > per_domain)
            per_domain = w->m[i].params;
    }
    size_t per_pair = total;
    if (w->src->kind == RW_BUNDLE_ROUTER)
        per_pair = w->m[0].params + per_domain;
    else if (w->src->kind == RW_BUNDLE_ADAPTER)
        per_pair = w->m[0].params + w->m[1].params + per_domain;
    json_t *p =
        json_pack("{s:I, s:I}", "total", (json_int_t)total, "per_pair", (json_int_t)per_pair);
    if (w->src->kind == RW_BUNDLE_MOE) {
        const rw_model_config_t *c = &w->m[0].cfg;
        size_t C = (size_t)c->d_model, F = (size_t)c->d_ff, L = (size_t)c->n_layers;
        size_t idle = (size_t)(c->n_experts - c->top_k);
        json_object_set_new(p, "active_per_token",
                            json_integer((json_int_t)(total - L * idle * (2 * C * F + C + F))));
    }
    return p;
}

static json_t *manifest_json(const writer_t *w, uint64_t tok_bytes, uint64_t tok_hash)
{
    const rw_bundle_sources_t *s = w->src;
    json_t *m = json_object(), *doms = json_array(), *members = json_array();
    json_t *files = json_array();
    for (size_t d = 0; d < s->n_domains; d++)
        json_array_append_new(doms, json_string(s->domains[d]));
    json_array_append_new(files, file_json(RW_BUNDLE_TOKENIZER, tok_bytes, tok_hash));
    for (size_t i = 0; i < w->n; i++) {
        json_array_append_new(members, member_json(w, &w->m[i]));
        json_array_append_new(files, file_json(w->m[i].file, w->m[i].bytes, w->m[i].hash));
    }
    json_t *prov = s->provenance ? json_deep_copy(s->provenance) : json_object();
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(prov, "rewire_version", json_string(RW_VERSION));
    json_object_set_new(prov, "created", json_string(when));
    json_object_set_new(m, "format", json_string(RW_BUNDLE_FORMAT));
    json_object_set_new(m, "version", json_integer(RW_BUNDLE_FORMAT_VERSION));
    json_object_set_new(m, "kind", json_string(rw_bundle_kind_name(s->kind)));
    json_object_set_new(m, "domains", doms);
    json_object_set_new(
        m, "tokenizer",
        json_pack("{s:s, s:I}", "file", RW_BUNDLE_TOKENIZER, "vocab", (json_int_t)w->vocab));
    json_object_set_new(m, "members", members);
    json_object_set_new(m, "params", params_json(w));
    json_object_set_new(m, "files", files);
    json_object_set_new(m, "provenance", prov);
    return m;
}

/* The existing dir may be replaced only if it is a bundle (or empty). */
static int replaceable(writer_t *w)
{
    struct stat st;
    if (lstat(w->dir, &st) != 0)
        return errno == ENOENT ? 0 : fail(w, -errno, "%s: %s", w->dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(w, RW_EEXIST, "%s exists and is not a folder", w->dir);
    char *man = join(w->dir, RW_BUNDLE_MANIFEST);
    int is_bundle = access(man, F_OK) == 0;
    free(man);
    if (is_bundle)
        return 1;
    if (rmdir(w->dir) == 0) /* empty: nothing to keep */
        return 0;
    return fail(w, RW_EEXIST, "%s exists and is not a bundle (no %s); not replacing it", w->dir,
                RW_BUNDLE_MANIFEST);
}

/* Moves the finished tmp folder to dir, replacing a bundle there. */
static int put_in_place(writer_t *w)
{
    int exists = replaceable(w);
    if (exists < 0)
        return exists;
    if (!exists) {
        if (rename(w->tmp, w->dir) != 0)
            return fail(w, -errno, "%s: %s", w->dir, strerror(errno));
        return 0;
    }
    if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, w->dir, RENAME_EXCHANGE) == 0) {
        rw_remove_tree(w->tmp); /* it holds the old bundle now */
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return fail(w, -errno, "%s: %s", w->dir, strerror(errno));
    char *old = rw_malloc(strlen(w->dir) + 5);
    sprintf(old, "%s.old", w->dir);
    rw_remove_tree(old); /* left by an earlier crash */
    int rc = 0;
    if (rename(w->dir, old) != 0) {
        rc = fail(w, -errno, "%s: %s", w->dir, strerror(errno));
    } else if (rename(w->tmp, w->dir) != 0) {
        rc = fail(w, -errno, "%s: %s", w->dir, strerror(errno));
        rename(old, w->dir);
    } else {
        rw_remove_tree(old);
    }
    free(old);
    return rc;
}

static int build(writer_t *w)
{
    int rc = read_tokenizer(w);
    if (rc < 0)
        return rc;
    size_t tl = strlen(w->dir) + sizeof ".tmp-XXXXXX";
    w->tmp = rw_malloc(tl);
    snprintf(w->tmp, tl, "%s.tmp-XXXXXX", w->dir);
    if (!mkdtemp(w->tmp)) {
        rc = fail(w, -errno, "%s: %s", w->tmp, strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        return rc;
    }
    chmod(w->tmp, 0755);
    char lb[512];
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        char *dst = join(w->tmp, w->m[i].file);
        rc = copy_file(w->m[i].src, dst, &w->m[i].bytes, &w->m[i].hash);
        free(dst);
        if (rc < 0)
            rc = fail(w, rc, "%s: %s", label(w, &w->m[i], lb, sizeof lb), rw_strerror(rc));
    }
    for (size_t i = 0; i < w->n && rc == 0; i++)
        rc = load_check(w, &w->m[i]);
    if (rc == 0 && !w->tok)
        rc = fail(w, RW_EINVAL, "no tokenizer: give tokenizer.json, or checkpoints saved with it");
    if (rc == 0)
        rc = check_fit(w);
    if (rc < 0)
        return rc;
    char *tpath = join(w->tmp, RW_BUNDLE_TOKENIZER), *mpath = join(w->tmp, RW_BUNDLE_MANIFEST);
    json_t *m = manifest_json(w, w->tok_len, proto_checksum(w->tok, w->tok_len));
    rw_bundle__manifest_t mf;
    char why[512];
    if (rw_bundle__manifest_parse(m, &mf, why, sizeof why) < 0) /* a bug, not bad input */
        rc = fail(w, RW_EINVAL, "the manifest written would not read back: %s", why);
    rw_bundle__manifest_fini(&mf);
    if (rc == 0 && (rc = rw_afile_write(tpath, w->tok, w->tok_len)) < 0)
        rc = fail(w, rc, "%s: %s", tpath, rw_strerror(rc));
    if (rc == 0 && (rc = rw_bundle__write_json(mpath, m)) < 0)
        rc = fail(w, rc, "%s: %s", mpath, rw_strerror(rc));
    if (rc == 0 && (rc = fsync_path(w->tmp)) < 0)
        rc = fail(w, rc, "%s: %s", w->tmp, rw_strerror(rc));
    json_decref(m);
    free(tpath);
    free(mpath);
    return rc;
}

int rw_bundle_write(const rw_bundle_sources_t *src, const char *dir, char *why, size_t whylen)
{
    writer_t w = {.src = src, .why = why, .whylen = whylen};
    if (why && whylen)
        why[0] = 0;
    if (!dir || !*dir)
        return fail(&w, RW_EINVAL, "no bundle folder given");
    w.dir = rw_strdup(dir);
    for (size_t n = strlen(w.dir); n > 1 && w.dir[n - 1] == '/'; n--)
        w.dir[n - 1] = 0;
    int rc = check_sources(&w);
    if (rc == 0) {
        plan(&w);
        rc = build(&w);
    }
    if (rc == 0)
        rc = put_in_place(&w);
    if (rc == 0) {
        char *parent = rw_strdup(w.dir), *slash = strrchr(parent, '/');
        if (slash)
            slash[slash == parent] = 0;
        fsync_path(slash ? parent : ".");
        free(parent);
    }
    if (rc < 0 && w.tmp)
        rw_remove_tree(w.tmp);
    rw_model_destroy(&w.main);
    free(w.m);
    free(w.tok);
    free(w.tok_ref);
    free(w.tmp);
    free(w.dir);
    return rc;
}

/* Whether name is a bundle's folder on its way in (KIND.tmp-XXXXXX, as
 * rw_bundle_write names it for a bundle named by its kind). */
static bool litter_name(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    char kind[16];
    if (!t || strlen(t) != strlen(".tmp-XXXXXX") || (size_t)(t - name) >= sizeof kind)
        return false;
    memcpy(kind, name, (size_t)(t - name));
    kind[t - name] = '\0';
    return rw_bundle_kind_from_name(kind) != RW_BUNDLE__NONE;
}

int rw_bundle_remove_litter(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.' ||
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (litter_name(e->d_name)) {
            rw_remove_tree(path);
            RW_INFO("bundle", "removed %s, left by an interrupted write", path);
            n++;
        } else if (!strchr(e->d_name, '.')) { /* a version's folder (vN) */
            n += rw_bundle_remove_litter(path);
        }
    }
    if (d)
        closedir(d);
    return n;
}
