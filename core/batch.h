/* batch.h — model inputs: token sequences built from tokenized text.
 *
 * Every sequence is `[cls] prompt... [sep] response... [sep]`, then padding
 * (RW_TOK_PAD) to the batch's length. When it does not fit in max_len
 * tokens, the prompt is cut from its start, so the response and the end of
 * the prompt survive; only a response that alone exceeds max_len - 3 tokens
 * is cut, at its end, and then no prompt token is left. The padding is
 * masked out of attention and pooling by each sequence's length.
 *
 * Preference pairs go in as two sequences, chosen first: sequence 2i is
 * pair i's chosen reply and 2i+1 its rejected one, both labelled with the
 * pair's domain. A classifier's examples go in one sequence each, labelled
 * with their class.
 */
#ifndef RW_BATCH_H
#define RW_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* A tokenized preference pair (borrowed arrays, the tokenizer's ids). */
typedef struct rw_tok_pair {
    const int32_t *prompt, *chosen, *rejected;
    size_t n_prompt, n_chosen, n_rejected;
    int32_t domain; /* domain index, or -1 */
} rw_tok_pair_t;

/* A tokenized classifier example: (prompt, response) and its class. */
typedef struct rw_tok_example {
    const int32_t *prompt, *response;
    size_t n_prompt, n_response;
    int32_t label; /* class index, or -1 */
} rw_tok_example_t;

typedef struct rw_batch {
    size_t B;        /* sequences in the batch */
    size_t T;        /* the longest sequence's length: the model computes over (B, T) */
    size_t cap_B;    /* capacity in sequences */
    size_t ld;       /* row stride of ids (= the max_len the batch was made for) */
    int32_t *ids;    /* owned, (cap_B, ld): sequence b is ids[b*ld .. b*ld+lens[b]) */
    int32_t *lens;   /* owned, (cap_B): tokens before the padding, >= 1 */
    int32_t *labels; /* owned, (cap_B): class or domain of each sequence, -1 if none */
} rw_batch_t;

/* Room for cap_B sequences of at most max_len tokens (max_len >= 3). */
void rw_batch_init(rw_batch_t *b, size_t cap_B, size_t max_len);
/* Frees the arrays; safe on a zeroed struct. */
void rw_batch_fini(rw_batch_t *b);
/* Empties the batch (keeps the capacity). */
void rw_batch_clear(rw_batch_t *b);

/* Writes the sequence for (prompt, response) into out (room for max_len
 * ids, max_len >= 3) and returns its length. Pure: no padding written. */
size_t rw_input_encode(int32_t *out, size_t max_len, const int32_t *prompt, size_t n_prompt,
                       const int32_t *response, size_t n_response);

/* Appends one sequence with its label. Returns its index, or RW_ETOOBIG
 * when the batch is full. */
int rw_batch_add(rw_batch_t *b, const int32_t *prompt, size_t n_prompt, const int32_t *response,
                 size_t n_response, int32_t label);
/* Appends a pair as two sequences (chosen, then rejected). Returns the pair's
 * index in the batch, or RW_ETOOBIG when fewer than two slots are left. */
int rw_batch_add_pair(rw_batch_t *b, const rw_tok_pair_t *p);
/* The attention/pooling mask of b as bytes: mask (B, T) gets 1 for each
 * sequence's tokens and 0 for its padding. The model reads the same mask
 * from lens (the real tokens are always a prefix). */
void rw_batch_mask(const rw_batch_t *b, uint8_t *mask);
/* Clears b and fills it with pairs[0..n) (2n <= cap_B). Returns 0 or
 * RW_ETOOBIG. */
int rw_batch_from_pairs(rw_batch_t *b, const rw_tok_pair_t *pairs, size_t n);
/* Clears b and fills it with examples[0..n) (n <= cap_B). Returns 0 or
 * RW_ETOOBIG. */
int rw_batch_from_examples(rw_batch_t *b, const rw_tok_example_t *ex, size_t n);

#endif
