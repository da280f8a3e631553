/* alloc.c — allocation that aborts, naming the caller, when memory runs out. */
#include "alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n, const char *file, int line)
{
    fprintf(stderr, "rewire: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    abort();
}

void *rw__malloc(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n, file, line);
    return p;
}

void *rw__calloc(size_t count, size_t size, const char *file, int line)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size, file, line);
    return p;
}

void *rw__realloc(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n, file, line);
    return q;
}

char *rw__strndup(const char *s, size_t n, const char *file, int line)
{
    char *p = rw__malloc(n + 1, file, line);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t rw__mul(size_t a, size_t b, const char *file, int line)
{
    if (b && a > SIZE_MAX / b) {
        fprintf(stderr, "rewire: size overflow (%zu * %zu) at %s:%d\n", a, b, file, line);
        abort();
    }
    return a * b;
}
