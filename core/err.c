/* err.c — lookups over the error table of err.h, and over errno values. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *rw_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define XX(name, msg)                                                                              \
    case RW_##name:                                                                                \
        return msg;
        RW_ERRNO_MAP(XX)
#undef XX
    default:
        break;
    }
    if (code < 0 && code > RW__ERR_BASE)
        return strerror(-code);
    return "unknown error";
}

const char *rw_err_name(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define XX(name, msg)                                                                              \
    case RW_##name:                                                                                \
        return "RW_" #name;
        RW_ERRNO_MAP(XX)
#undef XX
    default:
        break;
    }
    if (code < 0 && code > RW__ERR_BASE) {
        const char *n = strerrorname_np(-code);
        if (n)
            return n;
    }
    return "UNKNOWN";
}

int rw_err_why(int code, char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return code;
}
