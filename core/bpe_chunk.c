/* bpe_chunk.c — the GPT-2 pre-tokenizer, matched by hand.
 *
 * The pattern is tried as a regex engine would: alternatives in order at
 * each start, each one greedy:
 *   's|'t|'re|'ve|'m|'ll|'d          contractions (case-sensitive)
 *   ` ?\p{L}+` ` ?\p{N}+`            an optional space, then a letter or number run
 *   ` ?[^\s\p{L}\p{N}]+`             an optional space, then an "other" run
 *   `\s+(?!\S)` `\s+`                whitespace, leaving its last character to
 *                                    prefix the next word when one follows
 * Bytes are classified by one constant table: ASCII letters, digits and whitespace
 * (\t \n \v \f \r space) as Unicode does, every byte >= 0x80 as a letter
 * (see bpe.h for what this approximation changes), everything else —
 * punctuation, control characters, NUL — as "other".
 */
#include "bpe_impl.h"

/* The classes, one letter each so the table below reads as a grid. */
enum { O = 0, L, N, S };

/* byte_class[b], 16 bytes a row: 0x00-0x1f controls (\t..\r are S),
 * 0x20 space, ASCII punctuation O, digits N, letters L, 0x80-0xff L. */
/* clang-format off */
static const unsigned char byte_class[256] = {
    O, O, O, O, O, O, O, O, O, S, S, S, S, S, O, O,
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
    S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
};
/* clang-format on */

/* Length of a contraction at s[i] ('\'' already seen), or 0. */
static size_t contraction(const unsigned char *s, size_t n, size_t i)
{
    if (i + 1 >= n)
        return 0;
    unsigned char c = s[i + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd')
        return 2;
    if (i + 2 >= n)
        return 0;
    unsigned char d = s[i + 2];
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l'))
        return 3;
    return 0;
}

size_t rw_bpe__chunk_end(const unsigned char *s, size_t n, size_t i)
{
    if (s[i] == '\'') {
        size_t k = contraction(s, n, i);
        if (k)
            return i + k;
    }
    size_t j = i;
    if (s[i] == ' ' && i + 1 < n && byte_class[s[i + 1]] != S)
        j = i + 1;
    unsigned cls = byte_class[s[j]];
    if (cls != S) {
        j++;
        while (j < n && byte_class[s[j]] == cls)
            j++;
        return j;
    }
    size_t e = i + 1;
    while (e < n && byte_class[s[e]] == S)
        e++;
    if (e == n || e - i == 1)
        return e;
    return e - 1; /* \s+(?!\S): the last space goes with the next word */
}
