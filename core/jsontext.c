/* jsontext.c — compact, key-sorted JSON text; see jsontext.h. */
#include "jsontext.h"

#include <stdio.h>
#include <stdlib.h>

char *rw_json_text(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!s) { /* jansson fails only when out of memory (or o is NULL: ours) */
        fprintf(stderr, "rewire: out of memory writing JSON\n");
        abort();
    }
    return s;
}
