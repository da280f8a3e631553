/* test_args.c — command-line values: decimal numbers only, and no option
 * taken for a value. */
#include "args.h"
#include "err.h"

#include <criterion/criterion.h>

Test(args, whole_numbers_are_decimal_and_in_range)
{
    long v = -1;
    cr_assert_eq(rw_arg_long("42", 0, 100, &v), 0);
    cr_assert_eq(v, 42);
    cr_assert_eq(rw_arg_long("-3", -5, 5, &v), 0);
    cr_assert_eq(v, -3);
    cr_assert_eq(rw_arg_long("+7", 0, 9, &v), 0);
    cr_assert_eq(v, 7);
    static const char *const bad[] = {"",
                                      " 5",
                                      "5 ",
                                      "0x10",
                                      "1e2",
                                      "5k",
                                      "101",
                                      "-1",
                                      "--",
                                      "-",
                                      "+-1",
                                      "nan",
                                      "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 99;
        cr_assert_eq(rw_arg_long(bad[i], 0, 100, &v), RW_EINVAL, "'%s'", bad[i]);
        cr_assert_eq(v, 99, "'%s' left the output alone", bad[i]);
    }
    cr_assert_eq(rw_arg_long(NULL, 0, 1, &v), RW_EINVAL);
}

Test(args, reals_are_decimal_finite_and_in_range)
{
    double v = -1;
    static const struct {
        const char *s;
        double v;
    } good[] = {{"0.5", 0.5}, {".25", 0.25}, {"1e-3", 1e-3}, {"2.5E+1", 25}, {"-0", 0}, {"7", 7}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_assert_eq(rw_arg_real(good[i].s, -1, 100, &v), 0, "'%s'", good[i].s);
        cr_assert_float_eq(v, good[i].v, 1e-12, "'%s'", good[i].s);
    }
    static const char *const bad[] = {"0x0.8",    "0X1p-1", "inf",  "-inf", "nan",
                                      "infinity", "",       ".",    "e5",   "1e",
                                      "1e999",    "0.5x",   " 0.5", "101",  "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 99;
        cr_assert_eq(rw_arg_real(bad[i], -1, 100, &v), RW_EINVAL, "'%s'", bad[i]);
        cr_assert_eq(v, 99, "'%s' left the output alone", bad[i]);
    }
}

Test(args, an_option_is_never_a_value)
{
    char *argv[] = {"-o", "--json", "--out", "-", "--seed", "-4", "--last"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    cr_assert_null(rw_arg_next(argc, argv, 0), "-o --json: the value is missing");
    cr_assert_str_eq(rw_arg_next(argc, argv, 2), "-", "- is stdout, a value");
    cr_assert_str_eq(rw_arg_next(argc, argv, 4), "-4", "a negative number is a value");
    cr_assert_null(rw_arg_next(argc, argv, 6), "nothing follows the last");
    cr_assert(rw_arg_is_option("--json"));
    cr_assert_not(rw_arg_is_option("--"));
    cr_assert_not(rw_arg_is_option("-x"));
    cr_assert_not(rw_arg_is_option("./--json"));
    static const char *const flags[] = {"--out", "--data", NULL};
    cr_assert_eq(rw_arg_missing("t", "--out", NULL, flags), 2);
    cr_assert_eq(rw_arg_missing("t", "--out", "x", flags), 0);
    cr_assert_eq(rw_arg_missing("t", "--seed", NULL, flags), 0, "not a flag of the list");
    long v;
    cr_assert_eq(rw_arg_flag_long("t", "--n", "0x5", 0, 9, &v), 2);
    cr_assert_eq(rw_arg_flag_long("t", "--n", "5", 0, 9, &v), 0);
    cr_assert_eq(v, 5);
}
