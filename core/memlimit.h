/* memlimit.h — how much memory this process may use.
 *
 * A container or a Slurm job is usually given less memory than the machine
 * has, through its cgroup; going past that limit gets the process killed by
 * the kernel mid-way, with no message of ours. So the checks made before a
 * costly run compare with the smaller of physical memory and every cgroup
 * limit over this process.
 */
#ifndef RW_MEMLIMIT_H
#define RW_MEMLIMIT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    size_t bytes;   /* what may be used; 0 when even physical memory is unknown */
    bool by_cgroup; /* a cgroup's limit is lower than physical memory */
} rw_memlimit_t;

/* Physical memory, lowered by the limits in /proc/self/cgroup's groups
 * under /sys/fs/cgroup. */
rw_memlimit_t rw_memory_limit(void);

/* The lowest memory limit of the groups listed in cgroups (the text of
 * /proc/self/cgroup) and of each of their ancestors, read from the cgroup
 * file systems mounted under root: "memory.max" of cgroup v2 at root and
 * root/unified, "memory.limit_in_bytes" of the v1 memory controller at
 * root/memory. SIZE_MAX when none is set or none can be read. */
size_t rw_cgroup_memory_limit(const char *cgroups, const char *root);

#endif
