/* err.h — rewire's error codes.
 *
 * Every fallible function returns 0 (or a count) on success and a negative
 * int on failure. Codes below RW__ERR_BASE are rewire's own, from the one
 * table below; anything between -1 and RW__ERR_BASE is a negated errno from
 * the system. rw_strerror() and rw_err_name() read either kind.
 */
#ifndef RW_ERR_H
#define RW_ERR_H

#include <stddef.h>

#define RW__ERR_BASE (-1000)

/* XX(name, message): the one table the enum and both lookups come from.
 * The values travel on the wire (ERROR and REFUSE carry them): append only. */
#define RW_ERRNO_MAP(XX)                                                                           \
    XX(EINVAL, "invalid argument")                                                                 \
    XX(ENOMEM, "out of memory")                                                                    \
    XX(EIO, "input/output error")                                                                  \
    XX(EPARSE, "malformed input")                                                                  \
    XX(EUTF8, "invalid UTF-8")                                                                     \
    XX(ETOOBIG, "exceeds the size limit")                                                          \
    XX(ETRUNC, "truncated input")                                                                  \
    XX(EFORMAT, "unrecognized or unsupported format")                                              \
    XX(EBADREC, "bad record")                                                                      \
    XX(EEMPTY, "no usable input")                                                                  \
    XX(ECHECKSUM, "checksum mismatch")                                                             \
    XX(EPROTO, "malformed message")                                                                \
    XX(EVERSION, "protocol version mismatch")                                                      \
    XX(ESTATE, "operation not valid in this state")                                                \
    XX(EUSAGE, "bad command-line usage")                                                           \
    XX(ENUMERIC, "non-finite value")                                                               \
    XX(ENOTFOUND, "not found")                                                                     \
    XX(EEXIST, "already exists")                                                                   \
    XX(EMSGTYPE, "unknown message type")                                                           \
    XX(EFIELD, "invalid message field")                                                            \
    XX(ENOTFILE, "not a regular file")

typedef enum {
    RW__ERR_FIRST = RW__ERR_BASE,
#define XX(name, msg) RW_##name,
    RW_ERRNO_MAP(XX)
#undef XX
        RW__ERR_LAST
} rw_errno_t;

/* Human-readable message for code; never NULL, never freed. */
const char *rw_strerror(int code);
/* Symbolic name for code ("RW_EPARSE", "ENOENT"); never NULL. */
const char *rw_err_name(int code);
/* Writes the printf-style reason to why (size n, always terminated) and
 * returns code: for checks that tell their caller which rule an input
 * breaks, to say in its own words. */
int rw_err_why(int code, char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
