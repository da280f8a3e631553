/* health.h — asking a running service whether it is up.
 *
 * The coordinator and the router service answer HEALTH_REQ from any client,
 * registered or not, with a HEALTH_REP saying what they are and how they
 * stand; a coordinator asked about a worker says whether that worker is
 * registered and heard from within its timeout. Each binary's `health`
 * subcommand is health_main: it asks once and exits 0 when the answer is
 * the one a probe wants, so liveness and readiness probes, systemd and the
 * Slurm recipe all call a real check of the running process rather than
 * looking for a pid.
 */
#ifndef RW_PROTO_HEALTH_H
#define RW_PROTO_HEALTH_H

#include "curve.h"
#include "msg.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Sends one HEALTH_REQ (about worker, or NULL) to endpoint, with CURVE as
 * curve says (NULL or zeroed: none), and waits up to
 * timeout_ms for the HEALTH_REP. A wildcard host in endpoint ("*" or
 * 0.0.0.0) means this host, so a probe can pass a service's
 * --bind as it is. Returns 0 with *rep filled (msg_fini it); -ETIMEDOUT
 * when nothing answered in time; RW_EPROTO when something answered with
 * another message (an ERROR from a service that predates health); or
 * -errno from ZeroMQ (a malformed endpoint: -EINVAL). why (whylen bytes)
 * says what happened on error. */
int health_ask(const char *endpoint, const char *worker, const curve_opts_t *curve, int timeout_ms,
               msg_t *rep, char *why, size_t whylen);

/* The reply as one line of JSON (no newline) into f. */
void health_print(const msg_t *rep, FILE *f);

/* The usage text of a binary's `health` subcommand (its flags). */
extern const char health_flags_help[];

/* `PROG health [--connect EP] [--id WORKER] [--timeout-ms N] [--quiet]`:
 * asks EP (default def_endpoint) and prints the reply as one JSON line.
 * The answer must come from a `service` ("coordinator" or "router"); with
 * need_id the --id is required and the coordinator must report that worker
 * live. Returns the exit status: 0 healthy, 1 not (no answer, the wrong
 * service, a failed job, a worker it does not know), 2 bad usage. */
int health_main(const char *prog, const char *service, const char *def_endpoint, bool need_id,
                int argc, char **argv);

#endif
