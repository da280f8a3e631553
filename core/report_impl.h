/* report_impl.h — helpers report.c and report_svg.c share: reading the
 * results leniently, and the order bundles are shown in. */
#ifndef RW_REPORT_IMPL_H
#define RW_REPORT_IMPL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The bundle kinds in the order tables and plots show them. */
#define RW_REPORT_NKINDS 4
extern const char *const rw_report__kinds[RW_REPORT_NKINDS];

/* Field key of o as a number, or NAN when missing or not a number. */
double rw_report__num(const json_t *o, const char *key);
/* Field key of o as a string, or NULL. */
const char *rw_report__str(const json_t *o, const char *key);
/* Array field key of o (NULL when not an array: loops then run 0 times). */
json_t *rw_report__arr(const json_t *o, const char *key);

/* The results' bundle of kind, or NULL. */
const json_t *rw_report__bundle(const json_t *results, const char *kind);
/* The per-domain entry called name of a bundle's eval, or NULL. */
const json_t *rw_report__domain_eval(const json_t *bundle, const char *name);
/* Domain names to show: the job's, then any others the evals hold, in the
 * order first seen. Returns the count; *names (borrowed strings) is owned
 * by the caller. */
size_t rw_report__domains(const json_t *results, const char ***names);

/* Writes s to f with &, <, >, " and ' escaped for XML. */
void rw_report__xml(FILE *f, const char *s);

#endif
