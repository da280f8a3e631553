/* reject.c — the rejection kinds of reject.h and their names. */
#include "reject.h"

#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    const char *name;
    int file_level;
} reject_table[] = {
#define XX(e, name, file) {name, file},
    RW_REJECT_MAP(XX)
#undef XX
};

int rw_reject(rw_rejection_t *r, rw_reject_t why, const char *fmt, ...)
{
    va_list ap;
    r->why = why;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return RW_EBADREC;
}

const char *rw_reject_name(rw_reject_t why)
{
    return (unsigned)why < RW_REJECT__COUNT ? reject_table[why].name : "unknown";
}

int rw_reject_is_file_level(rw_reject_t why)
{
    return (unsigned)why < RW_REJECT__COUNT && reject_table[why].file_level;
}
