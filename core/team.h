/* team.h — a fixed team of threads that run one function together.
 *
 * The model's training step splits its batch between threads ("batch
 * threads"): every thread runs the whole forward and backward pass over its
 * own slice of sequences with single-threaded BLAS, so BLAS threads and batch
 * threads never compete for the cores. A team is created once (threads are
 * started then, never inside a step); rw_team_run() wakes every member, runs
 * fn on each with its index, and returns when all have finished. The caller
 * is member 0, so a team of one starts no thread at all.
 */
#ifndef RW_TEAM_H
#define RW_TEAM_H

#include <stddef.h>

typedef struct rw_team rw_team_t;

/* fn(ctx, tid, n) runs once on each member, tid in [0, n). */
typedef void (*rw_team_fn)(void *ctx, int tid, int n);

/* A team of n members (n <= 0: one per online CPU; at most 256). Returns 0 or
 * a negated errno if a thread could not be started (*team_p is then NULL). */
int rw_team_new(rw_team_t **team_p, int n);
/* The members rw_team_new(.., n) starts with: n, one per online CPU for
 * n <= 0, at most 256. */
int rw_team_size_for(int n);
/* Stops and joins the threads; accepts NULL and nulls *team_p. */
void rw_team_destroy(rw_team_t **team_p);
int rw_team_size(const rw_team_t *team);
/* Runs fn on every member and waits for all. Not reentrant: call it from one
 * thread at a time, never from inside fn. */
void rw_team_run(rw_team_t *team, rw_team_fn fn, void *ctx);
/* Splits [0, n) into `parts` near-equal ranges; range i is [*lo, *hi). */
void rw_team_range(size_t n, int parts, int i, size_t *lo, size_t *hi);

#endif
