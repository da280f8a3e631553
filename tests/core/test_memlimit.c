/* test_memlimit.c — cgroup memory limits read from a cgroup tree of the
 * test's own, laid out as /sys/fs/cgroup is under v1, v2 and a container. */
#include "memlimit.h"
#include "support.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(memlimit, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

/* Writes text to rwt_dir/rel/file, making the folders on the way. */
static void put(const char *rel, const char *file, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", rwt_dir, rel);
    for (char *p = path + strlen(rwt_dir) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    mkdir(path, 0755);
    cr_assert_eq(rwt_write_file(rwt_path(path, file), text, strlen(text)), 0);
}

/* The test's cgroup file system root, rwt_dir/sys. */
static const char *sys_root(void)
{
    static char root[600];
    snprintf(root, sizeof root, "%s/sys", rwt_dir);
    return root;
}

Test(memlimit, v2_takes_the_lowest_of_the_group_and_its_ancestors)
{
    put("sys/job", "memory.max", "3000000000\n");
    put("sys/job/step", "memory.max", "max\n");
    put("sys/job/step/task", "memory.max", "max\n");
    const char *root = sys_root();
    cr_assert_eq(rw_cgroup_memory_limit("0::/job/step/task\n", root), 3000000000u);
    /* a lower limit below wins over the ancestor's */
    put("sys/job/step", "memory.max", "2000000000\n");
    cr_assert_eq(rw_cgroup_memory_limit("0::/job/step/task\n", root), 2000000000u);
    /* "max" everywhere: no limit */
    cr_assert_eq(rw_cgroup_memory_limit("0::/other\n", root), SIZE_MAX);
}

Test(memlimit, v1_reads_the_memory_controllers_line_only)
{
    put("sys/memory/docker/abc", "memory.limit_in_bytes", "1073741824\n");
    put("sys/memory", "memory.limit_in_bytes", "9223372036854771712\n");
    put("sys/cpu/docker/abc", "memory.limit_in_bytes", "1000\n"); /* not memory's */
    const char *root = sys_root();
    const char *listing = "12:cpu,cpuacct:/docker/abc\n"
                          "11:memory:/docker/abc\n"
                          "1:name=systemd:/docker/abc\n"
                          "0::/docker/abc\n";
    cr_assert_eq(rw_cgroup_memory_limit(listing, root), 1073741824u);
    /* a controller list naming memory among others */
    cr_assert_eq(rw_cgroup_memory_limit("4:blkio,memory:/docker/abc", root), 1073741824u);
    /* "memoryx" is not memory */
    cr_assert_eq(rw_cgroup_memory_limit("4:memoryx:/docker/abc", root), SIZE_MAX);
}

Test(memlimit, a_container_sees_its_own_group_at_the_root)
{
    /* /proc/self/cgroup names the host's path; the container's own limit
     * is mounted at the root of its cgroup file system */
    put("sys", "memory.max", "536870912\n");
    const char *root = sys_root();
    cr_assert_eq(rw_cgroup_memory_limit("0::/kubepods/burstable/pod1/ctr\n", root), 536870912u);
    cr_assert_eq(rw_cgroup_memory_limit("0::/\n", root), 536870912u);
}

Test(memlimit, unreadable_or_odd_text_is_no_limit)
{
    put("sys/a", "memory.max", "lots\n");
    put("sys/b", "memory.max", "-5\n");
    put("sys/c", "memory.max", "");
    const char *root = sys_root();
    cr_assert_eq(rw_cgroup_memory_limit("0::/a\n0::/b\n0::/c\n", root), SIZE_MAX);
    cr_assert_eq(rw_cgroup_memory_limit("", root), SIZE_MAX);
    cr_assert_eq(rw_cgroup_memory_limit("garbage without colons\n::\n:\n", root), SIZE_MAX);
    cr_assert_eq(rw_cgroup_memory_limit("0::/a", "/nonexistent"), SIZE_MAX);
}

Test(memlimit, this_process_has_a_limit_no_larger_than_physical_memory)
{
    rw_memlimit_t m = rw_memory_limit();
    cr_assert_gt(m.bytes, (size_t)64 << 20, "some memory is reported");
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    cr_assert_leq(m.bytes, (size_t)pages * (size_t)size);
}
