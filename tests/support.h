/* support.h — helpers every test program shares. */
#ifndef RW_TEST_SUPPORT_H
#define RW_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* RWT_ASAN is defined in a build with AddressSanitizer, whose allocator
 * keeps no mallinfo and whose shadow memory no address-space limit leaves
 * room for. */
#if defined(__SANITIZE_ADDRESS__)
#define RWT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RWT_ASAN 1
#endif
#endif

/* Limits this process's address space (RLIMIT_AS) to what it maps now and
 * extra bytes more, so that allocations past that fail: for a forked child
 * (the limit stays with the process). Returns 0 or -1. */
int rwt_limit_address_space(size_t extra);

/* Path of ../shared/data beside the source tree, or NULL if it is absent. */
const char *rwt_shared_data(void);

/* Use at the top of a test that reads ../shared/data: skips with a clear
 * message when the folder is absent, but fails when CI=true (where it must
 * be there). */
#define RWT_REQUIRE_SHARED_DATA()                                                                  \
    do {                                                                                           \
        if (!rwt_shared_data()) {                                                                  \
            if (rwt_in_ci())                                                                       \
                cr_assert_fail("CI=true but the shared data folder %s is missing",                 \
                               RW_SOURCE_DIR "/../shared/data");                                   \
            cr_skip_test("skipped: shared data folder %s is absent",                               \
                         RW_SOURCE_DIR "/../shared/data");                                         \
        }                                                                                          \
    } while (0)

int rwt_in_ci(void);

/* A fresh temporary directory for each test of a suite declared with
 * TestSuite(name, .init = rwt_dir_setup, .fini = rwt_dir_teardown). */
extern char *rwt_dir;
void rwt_dir_setup(void);
void rwt_dir_teardown(void);

/* A fresh temporary directory (removed by rwt_rmdir); the caller frees it. */
char *rwt_tmpdir(void);
void rwt_rmdir(const char *dir);
/* "dir/name" in a static rotating buffer (good for a few calls at once). */
const char *rwt_path(const char *dir, const char *name);
/* Writes n bytes to path; returns 0 or -1. */
int rwt_write_file(const char *path, const void *data, size_t n);
/* Reads a whole file (NUL-terminated); NULL if unreadable. Caller frees. */
char *rwt_read_file(const char *path, size_t *n);
/* Runs a shell command, capturing stdout and stderr (caller frees either);
 * returns the exit status, or -1 if it did not exit normally. */
int rwt_run(const char *cmd, char **out, char **err);
/* Starts argv[0] (a path) with argv, stdin from /dev/null, stdout and stderr
 * to log (NULL: /dev/null), every signal unblocked and SIGINT, SIGTERM and
 * SIGHUP at their default action (as a shell's foreground job has them).
 * Returns the pid, for waitpid; -1 if fork failed. */
int rwt_spawn(const char *const *argv, const char *log);
/* Fuzzing: changes count bytes at random among buf[0..span) (seeded by, and
 * advancing, *seed), each to a character of alphabet, or to any byte when
 * alphabet is NULL. Returns a further random number for the caller. */
uint64_t rwt_mangle(void *buf, size_t span, uint64_t *seed, const char *alphabet, int count);
/* Path of a built binary ("rewire") in the build tree. */
const char *rwt_bin(const char *name);

#endif
