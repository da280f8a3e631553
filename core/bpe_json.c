/* bpe_json.c — the tokenizer as Hugging Face tokenizer.json, in memory and on disk.
 *
 * Token strings are spelled with GPT-2's bytes_to_unicode table: the 188
 * printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves
 * and the other 68 become U+0100.. in byte order (space is U+0120 "Ġ"), so
 * every token is printable JSON and contains no space, which lets a merge
 * be written "left right". Writing is deterministic: keys in a fixed order,
 * vocab in id order, merges in rank order, compact. Reading trusts nothing:
 * every id, token, merge and special is checked, and the first problem is
 * reported in words.
 */
#include "bpe_impl.h"

#include "afile.h"

#include "alloc.h"
#include "err.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Code points of the byte-level alphabet run from 0x21 to 0x143. */
#define CP_LIMIT 0x144

typedef struct bytelevel {
    uint16_t cp[256];       /* byte -> code point */
    int16_t byte[CP_LIMIT]; /* code point -> byte, or -1 */
} bytelevel_t;

static void bytelevel_init(bytelevel_t *bl)
{
    int extra = 0;
    for (int c = 0; c < CP_LIMIT; c++)
        bl->byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        bl->cp[b] = (uint16_t)(printable ? b : 256 + extra++);
        bl->byte[bl->cp[b]] = (int16_t)b;
    }
}

/* Writes the spelling of s[0..n) to out (room for 2n + 1) as UTF-8. */
static void spell(const bytelevel_t *bl, const unsigned char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned cp = bl->cp[s[i]];
        if (cp < 0x80) {
            *out++ = (char)cp;
        } else {
            *out++ = (char)(0xC0 | cp >> 6);
            *out++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    *out = '\0';
}

/* Reads a spelling (valid UTF-8, as jansson guarantees) back into bytes,
 * appending to *buf; returns the byte count, or -1 if a character is not in
 * the alphabet. */
static long unspell(const bytelevel_t *bl, const char *str, unsigned char **buf, size_t *n,
                    size_t *cap)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t start = *n;
    while (*s) {
        unsigned cp;
        if (s[0] < 0x80) {
            cp = s[0];
            s += 1;
        } else if ((s[0] & 0xE0) == 0xC0 && s[1]) {
            cp = (unsigned)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
            s += 2;
        } else {
            return -1;
        }
        if (cp >= CP_LIMIT || bl->byte[cp] < 0)
            return -1;
        rw_grow(buf, cap, *n + 1);
        (*buf)[(*n)++] = (unsigned char)bl->byte[cp];
    }
    return (long)(*n - start);
}

static json_t *byte_level_part(int add_prefix_space)
{
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space",
                     add_prefix_space, "trim_offsets", 1, "use_regex", 1);
}

static json_t *added_tokens(void)
{
    json_t *arr = json_array();
    for (int id = 0; id < RW_BPE_NSPECIAL; id++)
        json_array_append_new(arr,
                              json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content",
                                        rw_bpe__special_text(id), "single_word", 0, "lstrip", 0,
                                        "rstrip", 0, "normalized", 0, "special", 1));
    return arr;
}

static json_t *model_part(const rw_bpe_t *b)
{
    bytelevel_t bl;
    bytelevel_init(&bl);
    size_t longest = 0;
    for (size_t id = 0; id < b->nvocab; id++)
        if (b->tok_off[id + 1] - b->tok_off[id] > longest)
            longest = b->tok_off[id + 1] - b->tok_off[id];
    char *name = rw_malloc(rw_array_size(longest, 4) + 2);
    json_t *vocab = json_object();
    for (size_t id = 0; id < b->nvocab; id++) {
        spell(&bl, b->tok_bytes + b->tok_off[id], b->tok_off[id + 1] - b->tok_off[id], name);
        json_object_set_new(vocab, name, json_integer((json_int_t)id));
    }
    json_t *merges = json_array();
    for (size_t r = 0; r < b->nmerges; r++) {
        const rw_bpe__merge_t *m = &b->merges[r];
        size_t nl = b->tok_off[m->left + 1] - b->tok_off[m->left];
        spell(&bl, b->tok_bytes + b->tok_off[m->left], nl, name);
        size_t at = strlen(name);
        name[at++] = ' ';
        spell(&bl, b->tok_bytes + b->tok_off[m->right],
              b->tok_off[m->right + 1] - b->tok_off[m->right], name + at);
        json_array_append_new(merges, json_string(name));
    }
    free(name);
    return json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                     "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
                     "byte_fallback", 0, "vocab", vocab, "merges", merges);
}

char *rw_bpe_to_json(const rw_bpe_t *bpe)
{
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:n, s:o, s:o}", "version", "1.0",
                             "truncation", "padding", "added_tokens", added_tokens(), "normalizer",
                             "pre_tokenizer", byte_level_part(0), "post_processor", "decoder",
                             byte_level_part(1), "model", model_part(bpe));
    char *s = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!s) {
        fprintf(stderr, "rewire: out of memory writing tokenizer.json\n");
        abort();
    }
    return s;
}

/* State of one rw_bpe_from_json. */
typedef struct loader {
    char *err;
    size_t errlen;
    bytelevel_t bl;
    size_t nvocab;
    size_t *tok_off; /* owned until handed to rw_bpe__new */
    unsigned char *tok_bytes;
    size_t ntok_bytes, tok_bytes_cap;
    rw_bpe__strmap_t index; /* token bytes -> id */
    rw_bpe__merge_t *merges;
    size_t nmerges;
    unsigned char *scratch;
    size_t scratch_cap;
} loader_t;

#define FAIL(ld, ...) rw_bpe__errf(RW_EPARSE, (ld)->err, (ld)->errlen, __VA_ARGS__)

static int check_parts(loader_t *ld, json_t *root)
{
    json_t *pre = json_object_get(root, "pre_tokenizer");
    const char *type = json_string_value(json_object_get(pre, "type"));
    if (!type || strcmp(type, "ByteLevel") != 0)
        return FAIL(ld, "pre_tokenizer must be {\"type\": \"ByteLevel\", ...}");
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm))
        return FAIL(ld, "normalizer must be null");
    json_t *model = json_object_get(root, "model");
    type = json_string_value(json_object_get(model, "type"));
    if (!type || strcmp(type, "BPE") != 0)
        return FAIL(ld, "model must be {\"type\": \"BPE\", ...}");
    static const char *const unsupported[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
        json_t *v = json_object_get(model, unsupported[i]);
        if (v && !json_is_null(v))
            return FAIL(ld, "model.%s must be null", unsupported[i]);
    }
    return 0;
}

/* model.vocab: n distinct ids 0..n-1, each a byte-level spelling. Fills
 * tok_off/tok_bytes in id order and the bytes -> id index. */
static int load_vocab(loader_t *ld, json_t *vocab)
{
    if (!json_is_object(vocab))
        return FAIL(ld, "model.vocab must be an object");
    size_t n = json_object_size(vocab);
    if (n < RW_BPE_BASE_VOCAB || n > RW_BPE_MAX_VOCAB)
        return FAIL(ld, "model.vocab has %zu tokens; a byte-level one has %d to %d", n,
                    RW_BPE_BASE_VOCAB, RW_BPE_MAX_VOCAB);
    const char **name_of = rw_new_array(const char *, n);
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val)
    {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || (size_t)id >= n) {
            rc = FAIL(ld, "model.vocab: token \"%.60s\" has id %s, not an integer in 0..%zu", key,
                      json_is_integer(val) ? "out of range" : "missing", n - 1);
            goto done;
        }
        if (name_of[id]) {
            rc = FAIL(ld, "model.vocab: id %lld is used by both \"%.60s\" and \"%.60s\"",
                      (long long)id, name_of[id], key);
            goto done;
        }
        name_of[id] = key;
    }
    ld->nvocab = n;
    ld->tok_off = rw_new_array(size_t, n + 1);
    rw_bpe__strmap_init(&ld->index, n);
    for (size_t id = 0; id < n; id++) {
        if (unspell(&ld->bl, name_of[id], &ld->tok_bytes, &ld->ntok_bytes, &ld->tok_bytes_cap) <=
            0) {
            rc = FAIL(ld, "model.vocab: \"%.60s\" (id %zu) is not a byte-level token", name_of[id],
                      id);
            goto done;
        }
        ld->tok_off[id + 1] = ld->ntok_bytes;
        int found;
        rw_bpe__strmap_put(&ld->index, ld->tok_bytes + ld->tok_off[id],
                           ld->ntok_bytes - ld->tok_off[id], (uint32_t)id, &found);
    }
done:
    free(name_of);
    return rc;
}

/* The id of the byte-level spelling s, or -1. */
static int32_t lookup(loader_t *ld, const char *s)
{
    size_t n = 0;
    if (unspell(&ld->bl, s, &ld->scratch, &n, &ld->scratch_cap) <= 0)
        return -1;
    uint32_t id = rw_bpe__strmap_get(&ld->index, ld->scratch, n);
    return id == RW_BPE__NONE ? -1 : (int32_t)id;
}

/* One merge, "left right" or ["left", "right"], into ld->merges[r]. */
static int load_merge(loader_t *ld, size_t r, json_t *item, char *pair, size_t pair_cap)
{
    const char *left, *right;
    if (json_is_string(item)) {
        if (json_string_length(item) >= pair_cap)
            return FAIL(ld, "merge %zu (\"%.60s...\") is longer than any two tokens", r,
                        json_string_value(item));
        strcpy(pair, json_string_value(item));
        char *sp = strchr(pair, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return FAIL(ld, "merge %zu (\"%.60s\") is not two tokens separated by one space", r,
                        pair);
        *sp = '\0';
        left = pair;
        right = sp + 1;
    } else if (json_is_array(item) && json_array_size(item) == 2 &&
               json_is_string(json_array_get(item, 0)) && json_is_string(json_array_get(item, 1))) {
        left = json_string_value(json_array_get(item, 0));
        right = json_string_value(json_array_get(item, 1));
    } else {
        return FAIL(ld, "merge %zu is not a string \"left right\" or a pair of strings", r);
    }
    rw_bpe__merge_t *m = &ld->merges[r];
    m->left = lookup(ld, left);
    m->right = lookup(ld, right);
    if (m->left < 0 || m->right < 0)
        return FAIL(ld, "merge %zu (\"%.60s\" \"%.60s\") refers to unknown token \"%.60s\"", r,
                    left, right, m->left < 0 ? left : right);
    size_t nl = ld->tok_off[m->left + 1] - ld->tok_off[m->left];
    size_t nr = ld->tok_off[m->right + 1] - ld->tok_off[m->right];
    rw_grow(&ld->scratch, &ld->scratch_cap, nl + nr);
    memcpy(ld->scratch, ld->tok_bytes + ld->tok_off[m->left], nl);
    memcpy(ld->scratch + nl, ld->tok_bytes + ld->tok_off[m->right], nr);
    uint32_t res = rw_bpe__strmap_get(&ld->index, ld->scratch, nl + nr);
    if (res == RW_BPE__NONE)
        return FAIL(ld, "merge %zu (\"%.60s\" \"%.60s\") produces \"%.60s%.60s\", not in the vocab",
                    r, left, right, left, right);
    m->result = (int32_t)res;
    return 0;
}

static int load_merges(loader_t *ld, json_t *merges)
{
    if (!json_is_array(merges))
        return FAIL(ld, "model.merges must be an array");
    ld->nmerges = json_array_size(merges);
    ld->merges = rw_new_array(rw_bpe__merge_t, ld->nmerges);
    /* A merge line is at most two of the longest token, spelled. */
    size_t longest = 0;
    for (size_t id = 0; id < ld->nvocab; id++)
        if (ld->tok_off[id + 1] - ld->tok_off[id] > longest)
            longest = ld->tok_off[id + 1] - ld->tok_off[id];
    size_t pair_cap = 4 * longest + 2;
    char *pair = rw_malloc(pair_cap);
    int rc = 0;
    for (size_t r = 0; r < ld->nmerges && rc == 0; r++)
        rc = load_merge(ld, r, json_array_get(merges, r), pair, pair_cap);
    free(pair);
    return rc;
}

/* added_tokens must hold the three specials at their ids, and every entry
 * must agree with the vocab. */
static int load_added(loader_t *ld, json_t *added)
{
    if (!json_is_array(added))
        return FAIL(ld, "added_tokens must be an array");
    int have[RW_BPE_NSPECIAL] = {0};
    size_t i;
    json_t *item;
    json_array_foreach(added, i, item)
    {
        json_t *jid = json_object_get(item, "id");
        const char *content = json_string_value(json_object_get(item, "content"));
        if (!json_is_integer(jid) || !content)
            return FAIL(ld, "added_tokens[%zu] lacks an integer id or a string content", i);
        json_int_t id = json_integer_value(jid);
        int32_t in_vocab = lookup(ld, content);
        if (in_vocab < 0)
            return FAIL(ld, "added token \"%.60s\" (id %lld) is not in model.vocab", content,
                        (long long)id);
        if (in_vocab != id)
            return FAIL(ld, "added token \"%.60s\" has id %lld but the vocab gives %d", content,
                        (long long)id, in_vocab);
        if (id >= 0 && id < RW_BPE_NSPECIAL && strcmp(content, rw_bpe__special_text((int)id)) == 0)
            have[id] = 1;
    }
    for (int id = 0; id < RW_BPE_NSPECIAL; id++)
        if (!have[id])
            return FAIL(ld, "special token %s (id %d) missing from added_tokens",
                        rw_bpe__special_text(id), id);
    return 0;
}

int rw_bpe_from_json(const char *json, size_t len, rw_bpe_t **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!json || !out)
        return RW_EINVAL;
    loader_t ld = {.err = err, .errlen = errlen};
    bytelevel_init(&ld.bl);
    json_error_t je;
    int rc;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        rc = FAIL(&ld, "not valid JSON: line %d column %d: %s", je.line, je.column, je.text);
        goto fail_parse;
    }
    if (!json_is_object(root)) {
        rc = FAIL(&ld, "top level is not a JSON object");
        goto fail_check;
    }
    if ((rc = check_parts(&ld, root)) < 0)
        goto fail_check;
    json_t *model = json_object_get(root, "model");
    if ((rc = load_vocab(&ld, json_object_get(model, "vocab"))) < 0)
        goto fail_check;
    if ((rc = load_merges(&ld, json_object_get(model, "merges"))) < 0)
        goto fail_check;
    if ((rc = load_added(&ld, json_object_get(root, "added_tokens"))) < 0)
        goto fail_check;
    rc = rw_bpe__new(ld.nvocab, ld.tok_off, ld.tok_bytes, ld.nmerges, ld.merges, out, err, errlen);
    ld.tok_off = NULL;
    ld.tok_bytes = NULL;
    ld.merges = NULL;
fail_check:
    json_decref(root);
fail_parse:
    free(ld.tok_off);
    free(ld.tok_bytes);
    free(ld.merges);
    free(ld.scratch);
    rw_bpe__strmap_fini(&ld.index);
    return rc;
}

int rw_bpe_save(const rw_bpe_t *bpe, const char *path)
{
    if (!bpe || !path)
        return RW_EINVAL;
    char *json = rw_bpe_to_json(bpe);
    int rc = rw_afile_write(path, json, strlen(json));
    free(json);
    return rc;
}

/* Reads the whole of path into a NUL-terminated buffer; returns 0 or -errno. */
static int read_all(const char *path, char **out, size_t *outlen)
{
    int rc;
    FILE *f = rw_fopen_regular(path, &rc);
    if (!f)
        return rc;
    size_t cap = 1 << 16, n = 0;
    char *buf = rw_malloc(cap);
    rc = 0;
    for (;;) {
        rw_grow(&buf, &cap, n + 4096);
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f))
        rc = errno ? -errno : RW_EIO;
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

int rw_bpe_load(const char *path, rw_bpe_t **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return RW_EINVAL;
    char *json = NULL;
    size_t n = 0;
    int rc = read_all(path, &json, &n);
    if (rc < 0)
        return rw_bpe__errf(rc, err, errlen, "%s: %s", path, rw_strerror(rc));
    char msg[512];
    rc = rw_bpe_from_json(json, n, out, msg, sizeof msg);
    if (rc < 0)
        rw_bpe__errf(rc, err, errlen, "%s: %s", path, msg);
    free(json);
    return rc;
}
