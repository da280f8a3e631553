/* reject.h — why an input record (or a whole input file) was turned away.
 *
 * Importers skip bad records rather than stop, so every skip needs a reason
 * that can be counted (the kind, from one table) and told to a person (a
 * message naming the field, the byte or the column). The kinds below the
 * file-level line are about one record; the last two are about a file that
 * could not be read to its end.
 */
#ifndef RW_REJECT_H
#define RW_REJECT_H

#include <stddef.h>

/* XX(enum suffix, name in reports, file-level?) */
#define RW_REJECT_MAP(XX)                                                                          \
    XX(MALFORMED_JSON, "malformed_json", 0)                                                        \
    XX(INVALID_UTF8, "invalid_utf8", 0)                                                            \
    XX(LINE_TOO_LONG, "line_too_long", 0)                                                          \
    XX(MISSING_FIELD, "missing_field", 0)                                                          \
    XX(WRONG_TYPE, "wrong_type", 0)                                                                \
    XX(EMPTY_FIELD, "empty_field", 0)                                                              \
    XX(SAME_REPLIES, "chosen_equals_rejected", 0)                                                  \
    XX(PROMPTS_DIFFER, "prompts_differ", 0)                                                        \
    XX(NO_ASSISTANT_TURN, "no_assistant_turn", 0)                                                  \
    XX(BAD_CHOICE, "bad_choice", 0)                                                                \
    XX(BAD_SUMMARIES, "bad_summaries", 0)                                                          \
    XX(BAD_SPLIT, "bad_split", 0)                                                                  \
    XX(BAD_DOMAIN, "bad_domain", 0)                                                                \
    XX(UNKNOWN_FORMAT, "unknown_format", 0)                                                        \
    XX(TRUNCATED_FILE, "truncated_file", 1)                                                        \
    XX(UNREADABLE_FILE, "unreadable_file", 1)

typedef enum {
#define XX(e, name, file) RW_REJECT_##e,
    RW_REJECT_MAP(XX)
#undef XX
        RW_REJECT__COUNT
} rw_reject_t;

/* One rejection: its kind and the message for "path:line: message". */
typedef struct rw_rejection {
    rw_reject_t why;
    char msg[256];
} rw_rejection_t;

/* Fills *r; returns RW_EBADREC, so a parser can `return rw_reject(...)`. */
int rw_reject(rw_rejection_t *r, rw_reject_t why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "missing_field"; never NULL ("unknown" for a value outside the table). */
const char *rw_reject_name(rw_reject_t why);
/* 1 for kinds about a whole file (truncated, unreadable), else 0. */
int rw_reject_is_file_level(rw_reject_t why);

#endif
