/* bpe.h — the byte-level BPE tokenizer every rewire model shares.
 *
 * GPT-2 style: text is cut into chunks by the GPT-2 pre-tokenizer pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (matched by hand, no regex library), each chunk becomes its bytes, and
 * merges are applied lowest rank first. Merges never cross a chunk boundary.
 *
 * One approximation of the pattern: only ASCII is classified. Letters are
 * A-Z and a-z, numbers 0-9, whitespace is \t \n \v \f \r and space, and
 * every byte >= 0x80 counts as a letter — so a whole UTF-8 sequence (or any
 * invalid byte) joins the letter run around it. Non-ASCII punctuation,
 * digits and spaces (U+2019, U+0663, U+00A0 ...) therefore glue to adjacent
 * letters where GPT-2 would split them. Encoding stays lossless for any byte
 * string: decode(encode(x)) == x, invalid UTF-8 and NUL bytes included.
 *
 * Vocabulary layout: id 0 "<|pad|>", 1 "<|cls|>", 2 "<|sep|>" (the prompt /
 * response separator), then the 256 single bytes (ids 3..258), then one id
 * per new token in merge order. encode() never produces a special id: the
 * text "<|sep|>" is encoded as its bytes. The file form is Hugging Face's
 * tokenizer.json (BPE model, ByteLevel pre-tokenizer and decoder, tokens
 * spelled with GPT-2's bytes_to_unicode table), so other tools can read it.
 *
 * Training is deterministic: the pair merged next is the most frequent one,
 * ties going to the smallest (left id, right id); results do not depend on
 * hash order, pointers or threads, so identical corpora give identical
 * tokenizers byte for byte.
 */
#ifndef RW_BPE_H
#define RW_BPE_H

#include <stddef.h>
#include <stdint.h>

#define RW_BPE_PAD      0
#define RW_BPE_CLS      1
#define RW_BPE_SEP      2
#define RW_BPE_NSPECIAL 3
/* Ids of the 256 single bytes start here: byte b is id RW_BPE_BYTE0 + b in
 * tokenizers rewire trains (a loaded file may order them differently). */
#define RW_BPE_BYTE0 3
/* Specials plus bytes: the smallest possible vocabulary. */
#define RW_BPE_BASE_VOCAB 259
/* Limits on the vocabulary size asked of training. */
#define RW_BPE_MIN_VOCAB 1000
#define RW_BPE_MAX_VOCAB 65536

typedef struct rw_bpe rw_bpe_t;

typedef struct rw_bpe_train_opts {
    /* Total vocabulary wanted, specials and bytes included; training stops
     * earlier if the corpus runs out of pairs. RW_BPE_MIN_VOCAB to
     * RW_BPE_MAX_VOCAB, else RW_EINVAL. */
    size_t vocab_size;
    /* Stop once the most frequent pair occurs fewer times than this (counted
     * over the whole corpus). 0 or 1: merge while any pair is left. */
    uint64_t min_frequency;
} rw_bpe_train_opts_t;

#define RW_BPE_TRAIN_OPTS_DEFAULT ((rw_bpe_train_opts_t){.vocab_size = 8192, .min_frequency = 2})

/* The longest text one call may encode, and the longest training document. */
#define RW_BPE_MAX_TEXT ((size_t)INT32_MAX)

/* Feeds training documents one at a time: sets *doc and *len and returns 1,
 * returns 0 at the end, or a negative error to abort training (which then
 * returns that error). *doc stays owned by the callback and need only stay
 * valid until the next call. */
typedef int (*rw_bpe_doc_fn)(void *ctx, const char **doc, size_t *len);

/* Trains on ndocs documents (docs[i] of lens[i] bytes, any bytes). opts may
 * be NULL for RW_BPE_TRAIN_OPTS_DEFAULT. On success returns 0 and *out is a
 * new tokenizer owned by the caller (rw_bpe_destroy); on error returns
 * RW_EINVAL (bad arguments or vocab_size out of range) or RW_ETOOBIG (a
 * document over RW_BPE_MAX_TEXT bytes), and *out is NULL. */
int rw_bpe_train(const char *const *docs, const size_t *lens, size_t ndocs,
                 const rw_bpe_train_opts_t *opts, rw_bpe_t **out);
/* The same, pulling documents from next(ctx, ...) until it returns 0. Also
 * returns whatever negative error next() returned. */
int rw_bpe_train_feed(rw_bpe_doc_fn next, void *ctx, const rw_bpe_train_opts_t *opts,
                      rw_bpe_t **out);

/* Frees *bpe_p and sets it to NULL; accepts NULL and *bpe_p == NULL. */
void rw_bpe_destroy(rw_bpe_t **bpe_p);

/* Number of token ids (specials and bytes included): ids are 0..size-1. */
size_t rw_bpe_vocab_size(const rw_bpe_t *bpe);
/* Number of merges (usually vocab_size - 259). */
size_t rw_bpe_merge_count(const rw_bpe_t *bpe);
/* The bytes of token id (not NUL-terminated; specials give their text), with
 * *len set; NULL if id is out of range. Owned by bpe. */
const char *rw_bpe_token(const rw_bpe_t *bpe, int32_t id, size_t *len);

/* Appends the ids of text[0..len) to the caller's growable buffer *ids
 * (*n used of *cap elements; *ids NULL with *cap 0 is fine, and it is grown
 * with realloc, so it must come from malloc; the caller frees it). The first
 * call allocates the chunk cache (about 3 MB, freed with bpe); once it and
 * the buffer are warm, no allocation happens. Never emits
 * special ids. Returns 0, RW_EINVAL for NULL arguments, or RW_ETOOBIG if
 * len exceeds RW_BPE_MAX_TEXT (nothing is appended then).
 *
 * NOT thread-safe: encoding writes bpe's chunk cache. Give each thread its
 * own tokenizer (rw_bpe_from_json(rw_bpe_to_json(bpe)) makes a copy). */
int rw_bpe_encode(rw_bpe_t *bpe, const char *text, size_t len, int32_t **ids, size_t *n,
                  size_t *cap);

/* Sets *out to a new buffer (caller frees; NUL-terminated for convenience,
 * the terminator not counted in *outlen) holding the bytes of ids[0..n).
 * Specials decode to their text ("<|sep|>"). Returns 0, or RW_EINVAL for an
 * id out of range or NULL arguments (then *out is NULL). Thread-safe. */
int rw_bpe_decode(const rw_bpe_t *bpe, const int32_t *ids, size_t n, char **out, size_t *outlen);

/* The tokenizer as tokenizer.json text (compact, deterministic: the same
 * tokenizer always gives the same bytes). Caller frees the NUL-terminated
 * string; never NULL (out of memory aborts). */
char *rw_bpe_to_json(const rw_bpe_t *bpe);
/* Parses tokenizer.json text json[0..len) and checks it in full. Returns 0
 * with *out a new tokenizer owned by the caller; RW_EPARSE for malformed or
 * inconsistent content (err, if not NULL, gets a message of at most errlen-1
 * bytes saying what is wrong), RW_EINVAL for NULL arguments. *out is NULL on
 * error. */
int rw_bpe_from_json(const char *json, size_t len, rw_bpe_t **out, char *err, size_t errlen);

/* Writes rw_bpe_to_json(bpe) to path through a temporary file in the same
 * folder and a rename, so path is either the old or the whole new file.
 * Returns 0, a negated errno, or RW_EINVAL for NULL arguments. */
int rw_bpe_save(const rw_bpe_t *bpe, const char *path);
/* Reads and checks a tokenizer.json. Returns 0 with *out owned by the
 * caller; a negated errno if the file cannot be read, or RW_EPARSE as
 * rw_bpe_from_json (err gets "path: message" in both cases). */
int rw_bpe_load(const char *path, rw_bpe_t **out, char *err, size_t errlen);

#endif
