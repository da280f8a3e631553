/* journal.h — the coordinator's memory: every state change, one line each.
 *
 * An append-only JSON Lines file (STATE/journal.jsonl). Each record is an
 * object {"ev": EVENT, "ts": seconds since the epoch, ...fields}, written in
 * one write() and fsync'd before the change it records is acted on, so
 * after a crash the journal says at least what the peers were told. On open
 * the existing records are replayed, in order, through a callback; a torn
 * last line (a crash mid-write) is cut off, and the file is then appended
 * to. Replaying the journal through the same calls that wrote it rebuilds
 * the coordinator's state.
 */
#ifndef RW_COORD_JOURNAL_H
#define RW_COORD_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct journal journal_t;

/* Called for each record of an existing journal (rec borrowed); a negative
 * return stops the replay and fails the open with that code. */
typedef int (*journal_replay_fn)(void *ctx, const json_t *rec);

/* Opens (creating) the journal at path, replaying what it holds through
 * replay (may be NULL) first; sync false skips the fsync (benchmarks of the
 * wire, never a real job). Returns 0 with *out and *replayed (records
 * replayed; may be NULL), replay's error, RW_EPARSE for a bad record before
 * the last line, or -errno. */
int journal_open(const char *path, bool sync, journal_replay_fn replay, void *ctx, journal_t **out,
                 size_t *replayed);
/* Accepts NULL; NULLs *self_p. */
void journal_destroy(journal_t **self_p);

/* Appends {"ev": ev, "ts": now, ...fields} (fields: an object, stolen; may
 * be NULL). Returns 0 or -errno (the record may be missing then). */
int journal_append(journal_t *j, const char *ev, json_t *fields);
/* Records appended since open. */
size_t journal_count(const journal_t *j);

#endif
