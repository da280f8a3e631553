/* memlimit.c — physical memory and cgroup limits; see memlimit.h. */
#include "memlimit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The limit in file dir/name: a byte count, or "max" (none). SIZE_MAX when
 * it says none, is missing or does not read as a number. */
static size_t read_limit(const char *dir, const char *name)
{
    char path[4096], text[64];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return SIZE_MAX;
    FILE *f = fopen(path, "r");
    if (!f)
        return SIZE_MAX;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *end;
    errno = 0;
    uintmax_t v = strtoumax(text, &end, 10);
    if (end == text || errno || (*end && *end != '\n') || text[0] == '-')
        return SIZE_MAX;
    return v > SIZE_MAX ? SIZE_MAX : (size_t)v;
}

/* The lowest limit in base+group and each of its ancestors up to base. A
 * container usually sees its own group at base while /proc/self/cgroup
 * names the host's path, which is why every ancestor is tried. */
static size_t lowest_up(const char *base, const char *group, size_t glen, const char *name)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s%.*s", base, (int)glen, group) >= (int)sizeof dir)
        return SIZE_MAX;
    size_t blen = strlen(base), best = SIZE_MAX;
    for (;;) {
        size_t v = read_limit(dir, name);
        best = v < best ? v : best;
        char *slash = strrchr(dir + blen, '/');
        if (!slash)
            break;
        *slash = 0;
    }
    return best;
}

size_t rw_cgroup_memory_limit(const char *cgroups, const char *root)
{
    size_t best = SIZE_MAX;
    char base[4096];
    for (const char *line = cgroups; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        /* ID:CONTROLLERS:PATH, the path holding any further colons */
        const char *c1 = memchr(line, ':', len);
        const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
        if (c2) {
            const char *ctl = c1 + 1, *group = c2 + 1;
            size_t clen = (size_t)(c2 - ctl), glen = len - (size_t)(group - line);
            if (glen && group[glen - 1] == '/')
                glen--; /* the root group, "/" */
            size_t v = SIZE_MAX;
            if (clen == 0 && c1 - line == 1 && line[0] == '0') {
                snprintf(base, sizeof base, "%s", root);
                v = lowest_up(base, group, glen, "memory.max");
                snprintf(base, sizeof base, "%s/unified", root);
                size_t u = lowest_up(base, group, glen, "memory.max");
                v = u < v ? u : v;
            } else {
                for (const char *p = ctl; p < c2;) {
                    const char *comma = memchr(p, ',', (size_t)(c2 - p));
                    size_t n = comma ? (size_t)(comma - p) : (size_t)(c2 - p);
                    if (n == 6 && memcmp(p, "memory", 6) == 0) {
                        snprintf(base, sizeof base, "%s/memory", root);
                        v = lowest_up(base, group, glen, "memory.limit_in_bytes");
                    }
                    p += n + 1;
                }
            }
            best = v < best ? v : best;
        }
        line = eol ? eol + 1 : NULL;
    }
    return best;
}

rw_memlimit_t rw_memory_limit(void)
{
    rw_memlimit_t m = {0, false};
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && size > 0)
        m.bytes = (size_t)pages > SIZE_MAX / (size_t)size ? SIZE_MAX : (size_t)pages * (size_t)size;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return m;
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    size_t cg = rw_cgroup_memory_limit(text, "/sys/fs/cgroup");
    if (cg < m.bytes || (!m.bytes && cg != SIZE_MAX)) {
        m.bytes = cg;
        m.by_cgroup = true;
    }
    return m;
}
