/* alloc.h — the one checked allocator.
 *
 * Running out of memory is the one failure rewire does not return as an
 * error: these abort with the file and line of the call. Sizes that come
 * from outside (files, the wire) must be checked before they get here.
 */
#ifndef RW_ALLOC_H
#define RW_ALLOC_H

#include <stddef.h>

void *rw__malloc(size_t n, const char *file, int line);
void *rw__calloc(size_t count, size_t size, const char *file, int line);
void *rw__realloc(void *p, size_t n, const char *file, int line);
char *rw__strndup(const char *s, size_t n, const char *file, int line);
/* size * count, aborting on overflow. */
size_t rw__mul(size_t a, size_t b, const char *file, int line);

#define rw_malloc(n)          rw__malloc((n), __FILE__, __LINE__)
#define rw_calloc(c, s)       rw__calloc((c), (s), __FILE__, __LINE__)
#define rw_realloc(p, n)      rw__realloc((p), (n), __FILE__, __LINE__)
#define rw_strndup(s, n)      rw__strndup((s), (n), __FILE__, __LINE__)
#define rw_strdup(s)          rw__strndup((s), strlen(s), __FILE__, __LINE__)
#define rw_array_size(a, b)   rw__mul((a), (b), __FILE__, __LINE__)
#define rw_new(type)          ((type *)rw_calloc(1, sizeof(type)))
#define rw_new_array(type, n) ((type *)rw_calloc((n), sizeof(type)))
/* Grows *pp (of element size sz, capacity *cap) to hold at least need. */
#define rw_grow(pp, cap, need)                                                                     \
    do {                                                                                           \
        if ((need) > *(cap)) {                                                                     \
            size_t rw__nc = *(cap) ? *(cap) * 2 : 16;                                              \
            while (rw__nc < (need))                                                                \
                rw__nc *= 2;                                                                       \
            *(pp) = rw_realloc(*(pp), rw_array_size(rw__nc, sizeof(**(pp))));                      \
            *(cap) = rw__nc;                                                                       \
        }                                                                                          \
    } while (0)

#endif
