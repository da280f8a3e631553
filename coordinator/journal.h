/* journal.h — the coordinator's memory: every state change, one line each.
 *
 * An append-only JSON Lines file (STATE/journal.jsonl). Each record is an
 * object {"ev": EVENT, "ts": seconds since the epoch, ...fields}, written in
 * one write() as it is appended. Records are made durable in groups:
 * journal_sync() fdatasyncs whatever was appended since the last sync, and
 * the coordinator calls it at the end of every turn of its loop, so one
 * disk flush covers all the records of a turn instead of one flush each. A
 * crash can lose the last turn's records; the protocol tolerates that (see
 * coordinator/service.c). On open the existing records are replayed, in
 * order, through a callback; a torn last line (a crash mid-write) is cut
 * off, and the file is then appended to. Replaying the journal through the
 * same calls that wrote it rebuilds the coordinator's state.
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
 * replay (may be NULL) first; sync false makes journal_sync do nothing
 * (benchmarks of the wire, never a real job). Returns 0 with *out and *replayed (records
 * replayed; may be NULL), replay's error, RW_EPARSE for a bad record before
 * the last line, or -errno. */
int journal_open(const char *path, bool sync, journal_replay_fn replay, void *ctx, journal_t **out,
                 size_t *replayed);
/* Accepts NULL; NULLs *self_p. */
void journal_destroy(journal_t **self_p);

/* Appends {"ev": ev, "ts": now, ...fields} (fields: an object, stolen; may
 * be NULL); durable at the next journal_sync. Returns 0, or -errno with the
 * record not there (what a full disk let through of it is cut off again, so
 * the journal stays whole records). */
int journal_append(journal_t *j, const char *ev, json_t *fields);
/* Flushes what was appended since the last sync to disk (nothing to do:
 * returns at once). Returns 0 or -errno. */
int journal_sync(journal_t *j);
/* Records appended since open. */
size_t journal_count(const journal_t *j);

#endif
