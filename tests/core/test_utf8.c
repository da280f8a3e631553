/* test_utf8.c — the strict UTF-8 validator. */
#include "utf8.h"

#include <criterion/criterion.h>
#include <string.h>

static size_t chk(const char *s)
{
    return rw_utf8_check(s, strlen(s));
}

Test(utf8, accepts_valid_text)
{
    cr_assert_eq(chk("plain ascii"), 11);
    cr_assert_eq(chk("caf\xc3\xa9 \xe2\x80\x99 \xf0\x9f\x98\x80"), 14);
    cr_assert_eq(chk(""), 0);
}

Test(utf8, rejects_bad_sequences_at_their_offset)
{
    cr_assert_eq(chk("ab\xff"), 2);           /* never valid */
    cr_assert_eq(chk("ab\xc0\xaf"), 2);       /* overlong '/' */
    cr_assert_eq(chk("a\xed\xa0\x80"), 1);    /* surrogate */
    cr_assert_eq(chk("a\xf4\x90\x80\x80"), 1); /* above U+10FFFF */
    cr_assert_eq(chk("abc\xe2\x80"), 3);      /* truncated */
    cr_assert_eq(chk("\x80"), 0);             /* stray continuation */
}
