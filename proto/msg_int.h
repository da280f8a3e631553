/* msg_int.h — what the files of the message codec share, and nobody else.
 *
 * A decoded message keeps msgpack-c's unpacked tree; its zone is also the
 * arena for the message's own copies of strings and lists, so one
 * msgpack_unpacked_destroy frees them all.
 */
#ifndef RW_PROTO_MSG_INT_H
#define RW_PROTO_MSG_INT_H

#include "msg.h"

#include <msgpack.h>
#include <stdarg.h>

struct msg__hold {
    msgpack_unpacked up; /* the tree and the arena; zone may be NULL */
    void *owner;         /* what bins point into, or NULL */
    void (*release)(void *owner);
};

/* The struct of m's fields (every union member starts here). */
static inline char *msg__body(msg_t *m)
{
    return (char *)&m->hello;
}
static inline const char *msg__cbody(const msg_t *m)
{
    return (const char *)&m->hello;
}

/* Whether field f holds a value in the struct at body. */
bool msg__present(const msg_field_t *f, const char *body);
/* Writes "TYPE.field: <fmt...>" into why (MSG_WHY_MAX, or NULL); returns code. */
int msg__fail(char *why, int code, const msg_desc_t *d, const msg_field_t *f, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The cross-field rules the table names (msg_rules.c). */
#define MSG__RULE_DECL(ID, mn, code, rule, doc) MSG__RULE_DECL_##rule(mn)
#define MSG__RULE_DECL_RULE(mn)                 int msg__rule_##mn(const msg_t *m, char *why);
#define MSG__RULE_DECL_NORULE(mn)
MSG_TABLE(MSG__RULE_DECL, MSG__SKIP, MSG__SKIP)

#endif
