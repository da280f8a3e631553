/* jsontext.h — a JSON value as the compact text rewire stores.
 *
 * Configurations, task specs and checkpoint metadata are written as compact
 * JSON with sorted keys, so the same value always gives the same bytes.
 */
#ifndef RW_JSONTEXT_H
#define RW_JSONTEXT_H

#include <jansson.h>

/* Takes the reference to o and returns its compact, key-sorted text (caller
 * frees). Out of memory aborts, naming the caller, as alloc.h does. */
char *rw_json_text(json_t *o);

#endif
