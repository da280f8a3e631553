/* args.h — command-line values read the same way by every binary.
 *
 * Numbers are decimal only: "0x0.8", "1e-3x", " 5", "inf" and "nan" are
 * refused, so a typo never becomes a different number. A value is never an
 * option: in "-o --json" the value was forgotten, and the file is not named
 * "--json" (write "./--json" for that file).
 */
#ifndef RW_ARGS_H
#define RW_ARGS_H

#include <stdbool.h>

/* Whether s reads as an option rather than a value: "--" and a letter. "-",
 * "-1" and "-0.5" are values. */
bool rw_arg_is_option(const char *s);
/* The value after argv[i], or NULL when there is none or it is an option. */
const char *rw_arg_next(int argc, char *const *argv, int i);
/* A whole number in [lo, hi], or RW_EINVAL. */
int rw_arg_long(const char *s, long lo, long hi, long *out);
/* A finite decimal number in [lo, hi], or RW_EINVAL. */
int rw_arg_real(const char *s, double lo, double hi, double *out);
/* 2 after "WHO: FLAG needs a value" on stderr when flag is one of flags
 * (NULL-terminated) and val is NULL; else 0. */
int rw_arg_missing(const char *who, const char *flag, const char *val, const char *const *flags);
/* rw_arg_long for a flag's value (val NULL when it has none): 0, or 2 after
 * "WHO: FLAG wants a whole number from LO to HI, not 'VAL'" on stderr. */
int rw_arg_flag_long(const char *who, const char *flag, const char *val, long lo, long hi,
                     long *out);

#endif
