/* args.c — command-line values: see args.h. */
#include "args.h"

#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool rw_arg_is_option(const char *s)
{
    return s && s[0] == '-' && s[1] == '-' && isalpha((unsigned char)s[2]);
}

const char *rw_arg_next(int argc, char *const *argv, int i)
{
    return i + 1 < argc && !rw_arg_is_option(argv[i + 1]) ? argv[i + 1] : NULL;
}

/* Whether s is spelled as a decimal number: an optional sign, then digits
 * and at most a point and an exponent, and nothing strtod would read as hex,
 * infinity or NaN. strtod checks the rest. */
static bool decimal(const char *s, bool real)
{
    if (!s)
        return false;
    if (*s == '+' || *s == '-')
        s++;
    if (!isdigit((unsigned char)*s) && !(real && *s == '.' && isdigit((unsigned char)s[1])))
        return false;
    return strspn(s, real ? "0123456789.eE+-" : "0123456789") == strlen(s);
}

int rw_arg_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    if (!decimal(s, false))
        return RW_EINVAL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return RW_EINVAL;
    *out = v;
    return 0;
}

int rw_arg_real(const char *s, double lo, double hi, double *out)
{
    char *end;
    if (!decimal(s, true))
        return RW_EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi))
        return RW_EINVAL;
    *out = v;
    return 0;
}

int rw_arg_flag_long(const char *who, const char *flag, const char *val, long lo, long hi,
                     long *out)
{
    if (rw_arg_long(val, lo, hi, out) == 0)
        return 0;
    fprintf(stderr, "%s: %s wants a whole number from %ld to %ld, not '%s'\n", who, flag, lo, hi,
            val ? val : "");
    return 2;
}

int rw_arg_missing(const char *who, const char *flag, const char *val, const char *const *flags)
{
    if (val)
        return 0;
    for (; *flags; flags++)
        if (strcmp(flag, *flags) == 0) {
            fprintf(stderr, "%s: %s needs a value\n", who, flag);
            return 2;
        }
    return 0;
}
