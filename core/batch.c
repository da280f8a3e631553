/* batch.c — building model inputs from token ids; see batch.h. */
#include "batch.h"

#include "alloc.h"
#include "err.h"
#include "model.h"

#include <stdlib.h>
#include <string.h>

void rw_batch_init(rw_batch_t *b, size_t cap_B, size_t max_len)
{
    memset(b, 0, sizeof *b);
    b->cap_B = cap_B;
    b->ld = max_len;
    b->ids = rw_new_array(int32_t, rw_array_size(cap_B, max_len));
    b->lens = rw_new_array(int32_t, cap_B);
    b->labels = rw_new_array(int32_t, cap_B);
}

void rw_batch_fini(rw_batch_t *b)
{
    free(b->ids);
    free(b->lens);
    free(b->labels);
    memset(b, 0, sizeof *b);
}

void rw_batch_clear(rw_batch_t *b)
{
    b->B = 0;
    b->T = 0;
}

size_t rw_input_encode(int32_t *out, size_t max_len, const int32_t *prompt, size_t n_prompt,
                       const int32_t *response, size_t n_response)
{
    size_t room = max_len - 3; /* cls, sep, sep */
    size_t nr = n_response < room ? n_response : room;
    size_t np = n_prompt < room - nr ? n_prompt : room - nr;
    size_t k = 0;
    out[k++] = RW_TOK_CLS;
    if (np) /* the prompt's end */
        memcpy(out + k, prompt + (n_prompt - np), np * sizeof *out);
    k += np;
    out[k++] = RW_TOK_SEP;
    if (nr) /* the response's start */
        memcpy(out + k, response, nr * sizeof *out);
    k += nr;
    out[k++] = RW_TOK_SEP;
    return k;
}

int rw_batch_add(rw_batch_t *b, const int32_t *prompt, size_t n_prompt, const int32_t *response,
                 size_t n_response, int32_t label)
{
    if (b->B >= b->cap_B)
        return RW_ETOOBIG;
    int32_t *row = b->ids + b->B * b->ld;
    size_t n = rw_input_encode(row, b->ld, prompt, n_prompt, response, n_response);
    for (size_t t = n; t < b->ld; t++)
        row[t] = RW_TOK_PAD;
    b->lens[b->B] = (int32_t)n;
    b->labels[b->B] = label;
    if (n > b->T)
        b->T = n;
    return (int)b->B++;
}

int rw_batch_add_pair(rw_batch_t *b, const rw_tok_pair_t *p)
{
    if (b->B + 2 > b->cap_B)
        return RW_ETOOBIG;
    rw_batch_add(b, p->prompt, p->n_prompt, p->chosen, p->n_chosen, p->domain);
    rw_batch_add(b, p->prompt, p->n_prompt, p->rejected, p->n_rejected, p->domain);
    return (int)(b->B / 2 - 1);
}

int rw_batch_from_pairs(rw_batch_t *b, const rw_tok_pair_t *pairs, size_t n)
{
    rw_batch_clear(b);
    if (2 * n > b->cap_B)
        return RW_ETOOBIG;
    for (size_t i = 0; i < n; i++)
        rw_batch_add_pair(b, &pairs[i]);
    return 0;
}

int rw_batch_from_examples(rw_batch_t *b, const rw_tok_example_t *ex, size_t n)
{
    rw_batch_clear(b);
    if (n > b->cap_B)
        return RW_ETOOBIG;
    for (size_t i = 0; i < n; i++)
        rw_batch_add(b, ex[i].prompt, ex[i].n_prompt, ex[i].response, ex[i].n_response,
                     ex[i].label);
    return 0;
}

void rw_batch_mask(const rw_batch_t *b, uint8_t *mask)
{
    for (size_t i = 0; i < b->B; i++)
        for (size_t t = 0; t < b->T; t++)
            mask[i * b->T + t] = t < (size_t)b->lens[i];
}
