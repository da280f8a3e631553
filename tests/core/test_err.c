/* test_err.c — the error table and its lookups. */
#include "err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(err, own_codes_have_names_and_messages)
{
    cr_assert_str_eq(rw_strerror(RW_EPARSE), "malformed input");
    cr_assert_str_eq(rw_err_name(RW_EPARSE), "RW_EPARSE");
    cr_assert_str_eq(rw_err_name(RW_EVERSION), "RW_EVERSION");
    for (int c = RW__ERR_FIRST + 1; c < RW__ERR_LAST; c++) {
        cr_assert_str_neq(rw_strerror(c), "unknown error", "code %d", c);
        cr_assert_eq(strncmp(rw_err_name(c), "RW_", 3), 0, "code %d", c);
    }
}

Test(err, system_errors_pass_through)
{
    cr_assert_str_eq(rw_strerror(-ENOENT), strerror(ENOENT));
    cr_assert_str_eq(rw_err_name(-ENOENT), "ENOENT");
    cr_assert_str_eq(rw_strerror(0), "success");
    cr_assert_str_eq(rw_strerror(-5000), "unknown error");
}
