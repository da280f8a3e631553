/* test_bpe_json.c — the tokenizer as tokenizer.json.
 *
 * The layout Hugging Face expects, byte-identical output for identical
 * training, save/load that keeps encodings, and a dozen malformed files
 * that must each be refused with a message saying what is wrong.
 */
#include "bpe_testlib.h"
#include "support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokenizer.json --------------------------------------------------- */

Test(bpe_json, json_has_the_hugging_face_layout)
{
    rw_bpe_t *b = small_tokenizer();
    char *json = rw_bpe_to_json(b);
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    cr_assert_not_null(root, "%s", je.text);
    cr_expect_str_eq(json_string_value(json_object_get(root, "version")), "1.0");
    cr_expect(json_is_null(json_object_get(root, "truncation")));
    json_t *added = json_object_get(root, "added_tokens");
    cr_assert_eq(json_array_size(added), 3);
    json_t *sep = json_array_get(added, 2);
    cr_expect_eq(json_integer_value(json_object_get(sep, "id")), RW_BPE_SEP);
    cr_expect_str_eq(json_string_value(json_object_get(sep, "content")), "<|sep|>");
    cr_expect(json_is_true(json_object_get(sep, "special")));
    json_t *pre = json_object_get(root, "pre_tokenizer");
    cr_expect_str_eq(json_string_value(json_object_get(pre, "type")), "ByteLevel");
    cr_expect(json_is_false(json_object_get(pre, "add_prefix_space")));
    json_t *dec = json_object_get(root, "decoder");
    cr_expect(json_is_true(json_object_get(dec, "add_prefix_space")));
    json_t *model = json_object_get(root, "model");
    cr_expect_str_eq(json_string_value(json_object_get(model, "type")), "BPE");
    cr_expect(json_is_null(json_object_get(model, "unk_token")));
    cr_expect(json_is_false(json_object_get(model, "byte_fallback")));
    json_t *vocab = json_object_get(model, "vocab");
    cr_expect_eq(json_object_size(vocab), rw_bpe_vocab_size(b));
    cr_expect_eq(json_integer_value(json_object_get(vocab, "<|pad|>")), 0);
    cr_expect_eq(json_integer_value(json_object_get(vocab, "!")), RW_BPE_BYTE0 + '!');
    cr_expect_eq(json_integer_value(json_object_get(vocab, "\xc4\xa0")), RW_BPE_BYTE0 + ' ');
    cr_expect_eq(json_integer_value(json_object_get(vocab, "\xc4\x80")), RW_BPE_BYTE0 + 0);
    cr_expect_eq(json_integer_value(json_object_get(vocab, "\xc3\xbf")), RW_BPE_BYTE0 + 0xff);
    cr_expect_eq(json_integer_value(json_object_get(vocab, "\xc5\x83")), RW_BPE_BYTE0 + 0xad);
    cr_expect_eq(json_array_size(json_object_get(model, "merges")), rw_bpe_merge_count(b));
    json_decref(root);
    free(json);
    rw_bpe_destroy(&b);
}

static char *train_json(void)
{
    rw_bpe_t *b = random_tokenizer();
    char *json = rw_bpe_to_json(b);
    rw_bpe_destroy(&b);
    return json;
}

Test(bpe_json, training_twice_gives_identical_json)
{
    uint64_t seed = rng_state;
    char *a = train_json();
    rng_state = seed;
    char *b = train_json();
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}

Test(bpe_json, save_and_load_keep_json_and_encodings, .timeout = 30)
{
    rw_bpe_t *b = random_tokenizer();
    char *dir = rwt_tmpdir();
    const char *path = rwt_path(dir, "tokenizer.json");
    cr_assert_eq(rw_bpe_save(b, path), 0);
    rw_bpe_t *c = NULL;
    char err[256];
    cr_assert_eq(rw_bpe_load(path, &c, err, sizeof err), 0, "%s", err);
    char *ja = rw_bpe_to_json(b), *jc = rw_bpe_to_json(c);
    cr_assert_str_eq(ja, jc);
    size_t n;
    char *file = rwt_read_file(path, &n);
    cr_assert(n == strlen(ja) && memcmp(file, ja, n) == 0, "the file is rw_bpe_to_json");
    unsigned char *buf = malloc(2000);
    for (int i = 0; i < 300; i++) {
        size_t len = random_bytes(buf, 2000), na, nc;
        int32_t *ia = encode(b, buf, len, &na), *ic = encode(c, buf, len, &nc);
        cr_assert(na == nc && (na == 0 || memcmp(ia, ic, na * sizeof *ia) == 0));
        free(ia);
        free(ic);
    }
    /* The in-memory form gives the same tokenizer as well. */
    rw_bpe_t *d = NULL;
    cr_assert_eq(rw_bpe_from_json(ja, strlen(ja), &d, err, sizeof err), 0, "%s", err);
    char *jd = rw_bpe_to_json(d);
    cr_assert_str_eq(ja, jd);
    free(jd);
    rw_bpe_destroy(&d);
    free(buf);
    free(file);
    free(ja);
    free(jc);
    rw_bpe_destroy(&b);
    rw_bpe_destroy(&c);
    cr_expect_eq(rw_bpe_load(rwt_path(dir, "absent.json"), &c, err, sizeof err), -ENOENT);
    cr_expect(strstr(err, "absent.json") != NULL, "%s", err);
    cr_expect_null(c);
    const char *fifo = rwt_path(dir, "fifo.json"); /* refused at once, never a blocked open */
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_expect_eq(rw_bpe_load(fifo, &c, err, sizeof err), RW_ENOTFILE);
    rwt_rmdir(dir);
    free(dir);
}

/* ---- malformed tokenizer.json ----------------------------------------- */

typedef void (*json_edit_fn)(json_t *root);

/* Edits a good tokenizer.json and expects the loader to reject it with a
 * message containing want; also through a file, prefixed with its path. */
static void expect_rejected(json_edit_fn edit, const char *want)
{
    rw_bpe_t *b = small_tokenizer();
    char *good = rw_bpe_to_json(b);
    rw_bpe_destroy(&b);
    json_t *root = json_loads(good, 0, NULL);
    edit(root);
    char *bad = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    char err[512] = "";
    rw_bpe_t *out = (rw_bpe_t *)1;
    cr_assert_eq(rw_bpe_from_json(bad, strlen(bad), &out, err, sizeof err), RW_EPARSE,
                 "accepted (want: %s)", want);
    cr_expect_null(out);
    cr_expect(strstr(err, want) != NULL, "message \"%s\" lacks \"%s\"", err, want);

    char *dir = rwt_tmpdir();
    const char *path = rwt_path(dir, "bad.json");
    cr_assert_eq(rwt_write_file(path, bad, strlen(bad)), 0);
    cr_assert_eq(rw_bpe_load(path, &out, err, sizeof err), RW_EPARSE);
    cr_expect(strncmp(err, path, strlen(path)) == 0 && strstr(err, want), "%s", err);
    rwt_rmdir(dir);
    free(dir);
    free(bad);
    free(good);
}

static json_t *model_of(json_t *root)
{
    return json_object_get(root, "model");
}

static void edit_unknown_merge_token(json_t *root)
{
    json_array_set_new(json_object_get(model_of(root), "merges"), 1, json_string("a zzzzq"));
}

static void edit_duplicate_id(json_t *root)
{
    json_t *vocab = json_object_get(model_of(root), "vocab");
    json_object_set_new(vocab, "!", json_integer(RW_BPE_BYTE0 + 'a'));
}

static void edit_missing_special(json_t *root)
{
    json_array_remove(json_object_get(root, "added_tokens"), 2);
}

static void edit_special_not_in_vocab(json_t *root)
{
    json_t *vocab = json_object_get(model_of(root), "vocab");
    json_object_del(vocab, "<|cls|>");
    json_object_set_new(vocab, "<|CLS|>", json_integer(RW_BPE_CLS));
}

static void edit_not_byte_level(json_t *root)
{
    json_t *vocab = json_object_get(model_of(root), "vocab");
    json_object_del(vocab, "\xc4\xa0");
    json_object_set_new(vocab, " ", json_integer(RW_BPE_BYTE0 + ' '));
}

static void edit_id_out_of_range(json_t *root)
{
    json_t *vocab = json_object_get(model_of(root), "vocab");
    json_object_set_new(vocab, "a", json_integer(100000));
}

static void edit_merge_not_a_pair(json_t *root)
{
    json_array_set_new(json_object_get(model_of(root), "merges"), 0, json_string("a b c"));
}

static void edit_merge_result_unknown(json_t *root)
{
    /* "~" and "~" are tokens, "~~" is not. */
    json_array_append_new(json_object_get(model_of(root), "merges"), json_string("~ ~"));
}

static void edit_duplicate_merge(json_t *root)
{
    json_t *merges = json_object_get(model_of(root), "merges");
    json_array_append(merges, json_array_get(merges, 0));
}

static void edit_model_type(json_t *root)
{
    json_object_set_new(model_of(root), "type", json_string("WordPiece"));
}

static void edit_pre_tokenizer(json_t *root)
{
    json_object_set_new(root, "pre_tokenizer", json_null());
}

static void edit_vocab_type(json_t *root)
{
    json_object_set_new(model_of(root), "vocab", json_array());
}

Test(bpe_json, malformed_json_is_rejected_with_a_message)
{
    expect_rejected(edit_unknown_merge_token, "refers to unknown token \"zzzzq\"");
    expect_rejected(edit_duplicate_id, "is used by both");
    expect_rejected(edit_missing_special, "special token <|sep|> (id 2) missing");
    expect_rejected(edit_special_not_in_vocab, "\"<|cls|>\" (id 1) is not in model.vocab");
    expect_rejected(edit_not_byte_level, "is not a byte-level token");
    expect_rejected(edit_id_out_of_range, "out of range");
    expect_rejected(edit_merge_not_a_pair, "not two tokens separated by one space");
    expect_rejected(edit_merge_result_unknown, "not in the vocab");
    expect_rejected(edit_duplicate_merge, "repeats merge 0");
    expect_rejected(edit_model_type, "model must be");
    expect_rejected(edit_pre_tokenizer, "pre_tokenizer must be");
    expect_rejected(edit_vocab_type, "model.vocab must be an object");
}

Test(bpe_json, truncated_and_broken_json_are_rejected)
{
    rw_bpe_t *b = small_tokenizer();
    char *good = rw_bpe_to_json(b);
    rw_bpe_destroy(&b);
    char err[512];
    rw_bpe_t *out = NULL;
    size_t n = strlen(good);
    size_t cuts[] = {0, 1, n / 3, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        cr_assert_eq(rw_bpe_from_json(good, cuts[i], &out, err, sizeof err), RW_EPARSE);
        cr_expect(strstr(err, "not valid JSON") != NULL, "%s", err);
    }
    const char *docs[] = {"[]", "{}", "{\"model\": {\"type\": \"BPE\"}}", "null", "\"x\""};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        cr_assert_eq(rw_bpe_from_json(docs[i], strlen(docs[i]), &out, err, sizeof err), RW_EPARSE,
                     "%s", docs[i]);
        cr_expect(err[0], "no message for %s", docs[i]);
    }
    /* A duplicate key is an error, not "last one wins". */
    char *dup = malloc(n + 32);
    snprintf(dup, n + 32, "{\"version\":\"1.0\",%s", good + 1);
    cr_expect_eq(rw_bpe_from_json(dup, strlen(dup), &out, err, sizeof err), RW_EPARSE);
    cr_expect(strstr(err, "duplicate") != NULL, "%s", err);
    /* The error buffer is optional. */
    cr_expect_eq(rw_bpe_from_json("{", 1, &out, NULL, 0), RW_EPARSE);
    cr_expect_eq(rw_bpe_from_json(NULL, 0, &out, err, sizeof err), RW_EINVAL);
    free(dup);
    free(good);
}

/* Bytes changed anywhere in a tokenizer.json (ids, token texts, merges,
 * the structure) give a tokenizer that encodes and decodes within its
 * vocabulary, or an error with a message; never a crash or a read out of
 * bounds (the sanitizer build runs this too). */
Test(bpe_json, mangled_tokenizers_are_refused_or_sound, .timeout = 60)
{
    rw_bpe_t *b = small_tokenizer();
    char *good = rw_bpe_to_json(b);
    rw_bpe_destroy(&b);
    size_t n = strlen(good);
    char *buf = malloc(n + 1), err[512];
    uint64_t s = 99;
    int refused = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(buf, good, n + 1);
        rwt_mangle(buf, n, &s, "0123456789\"{}[],: abz\\u", 1 + it % 3);
        rw_bpe_t *out = NULL;
        err[0] = '\0';
        int rc = rw_bpe_from_json(buf, n, &out, err, sizeof err);
        if (rc < 0) {
            refused++;
            cr_assert(err[0], "iteration %d: refused without a message", it);
            cr_assert_null(out);
            continue;
        }
        const char *text = "Hello, world! 2 + 2 = 4";
        int32_t *ids = NULL;
        size_t nid = 0, cap = 0;
        cr_assert_eq(rw_bpe_encode(out, text, strlen(text), &ids, &nid, &cap), 0, "iteration %d",
                     it);
        for (size_t i = 0; i < nid; i++)
            cr_assert(ids[i] >= 0 && (size_t)ids[i] < rw_bpe_vocab_size(out), "iteration %d", it);
        free(ids);
        rw_bpe_destroy(&out);
    }
    cr_assert_gt(refused, 500, "only %d of 1500 refused", refused);
    free(buf);
    free(good);
}
