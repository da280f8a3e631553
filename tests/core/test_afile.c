/* test_afile.c — files appear whole or not at all. */
#include "afile.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(afile, commit_replaces_and_abort_keeps_the_old_file)
{
    char *dir = rwt_tmpdir();
    const char *p = rwt_path(dir, "f.txt");
    cr_assert_eq(rw_afile_write(p, "old\n", 4), 0);
    rw_afile_t af;
    cr_assert_eq(rw_afile_open(&af, p), 0);
    fputs("new but unfinished", af.f);
    cr_assert_eq(entries(dir), 2, "the temporary file sits beside the destination");
    rw_afile_abort(&af);
    char *text = rwt_read_file(p, NULL);
    cr_assert_str_eq(text, "old\n");
    free(text);
    cr_assert_eq(entries(dir), 1, "abort leaves no temporary file");
    cr_assert_eq(rw_afile_open(&af, p), 0);
    fputs("new\n", af.f);
    cr_assert_eq(rw_afile_commit(&af), 0);
    text = rwt_read_file(p, NULL);
    cr_assert_str_eq(text, "new\n");
    free(text);
    cr_assert_eq(entries(dir), 1);
    rw_afile_abort(&af); /* safe after commit */
    rwt_rmdir(dir);
    free(dir);
}

Test(afile, unwritable_destination_is_an_error)
{
    rw_afile_t af;
    cr_assert_lt(rw_afile_open(&af, "/nonexistent-dir/f.txt"), 0);
    cr_assert_null(af.f);
    cr_assert_lt(rw_afile_write("/nonexistent-dir/f.txt", "x", 1), 0);
}

Test(afile, links_are_followed_and_pipes_and_stdout_written_in_place)
{
    char *dir = rwt_tmpdir();
    char target[600], link[600];
    snprintf(target, sizeof target, "%s", rwt_path(dir, "target.txt"));
    snprintf(link, sizeof link, "%s", rwt_path(dir, "link.txt"));
    cr_assert_eq(rw_afile_write(target, "old\n", 4), 0);
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_eq(rw_afile_write(link, "new\n", 4), 0);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the link is still a link");
    char *text = rwt_read_file(target, NULL);
    cr_assert_str_eq(text, "new\n", "what it points to was replaced");
    free(text);
    cr_assert_eq(entries(dir), 2, "no temporary file left");
    /* a dangling link: the file is made where it points, the link stays */
    char far[600], dangling[600];
    snprintf(far, sizeof far, "%s", rwt_path(dir, "later.txt"));
    snprintf(dangling, sizeof dangling, "%s", rwt_path(dir, "dangling.txt"));
    cr_assert_eq(symlink("later.txt", dangling), 0); /* relative, to nothing yet */
    cr_assert_eq(rw_afile_write(dangling, "made\n", 5), 0);
    cr_assert_eq(lstat(dangling, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the dangling link is still a link");
    text = rwt_read_file(far, NULL);
    cr_assert_str_eq(text, "made\n");
    free(text);
    /* a pipe is written in place, not replaced by a file */
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s", rwt_path(dir, "fifo"));
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    int rd = open(fifo, O_RDONLY | O_NONBLOCK);
    cr_assert_geq(rd, 0);
    cr_assert_eq(rw_afile_write(fifo, "piped\n", 6), 0);
    char buf[16] = {0};
    cr_assert_eq(read(rd, buf, sizeof buf), 6);
    cr_assert_str_eq(buf, "piped\n");
    close(rd);
    cr_assert_eq(lstat(fifo, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode), "the pipe is still a pipe");
    /* this process's stdout, redirected to a file: appended to, through
     * /dev/stdout, never replaced or truncated */
    char out[600];
    snprintf(out, sizeof out, "%s", rwt_path(dir, "stdout.txt"));
    fflush(stdout);
    int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(saved >= 0 && fd >= 0);
    cr_assert_eq(write(fd, "before\n", 7), 7);
    dup2(fd, 1);
    close(fd);
    struct stat was;
    cr_assert_eq(stat(out, &was), 0);
    int rc = rw_afile_write("/dev/stdout", "written\n", 8);
    dup2(saved, 1);
    close(saved);
    cr_assert_eq(rc, 0);
    cr_assert_eq(stat(out, &st), 0);
    cr_assert_eq(st.st_ino, was.st_ino, "the file stdout went to was replaced");
    text = rwt_read_file(out, NULL);
    cr_assert_str_eq(text, "before\nwritten\n");
    free(text);
    rwt_rmdir(dir);
    free(dir);
}

/* The signal tests run in a forked child, its SIGINT, SIGTERM and SIGHUP at
 * their default action before its first rw_afile_open (as in a program that
 * never touches them), and report by exit status: 0, or the failed step. */
static void default_signals(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

static int wait_status(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

Test(afile, a_signal_removes_the_temporary_files_and_still_kills)
{
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int k = 0; k < 3; k++) {
        char *dir = rwt_tmpdir();
        int ready[2];
        cr_assert_eq(pipe(ready), 0);
        pid_t pid = fork();
        if (pid == 0) {
            default_signals();
            rw_afile_t a, b, c;
            /* more files than the table holds come and go first */
            for (int i = 0; i < 2 * RW_AFILE_TRACKED; i++)
                if (rw_afile_write(rwt_path(dir, "kept.txt"), "kept\n", 5) != 0)
                    _exit(1);
            if (rw_afile_open(&a, rwt_path(dir, "a.txt")) != 0 ||
                rw_afile_open(&b, rwt_path(dir, "b.txt")) != 0 ||
                rw_afile_open(&c, rwt_path(dir, "c.txt")) != 0)
                _exit(2);
            fputs("unfinished", a.f);
            fflush(a.f);
            rw_afile_abort(&c);
            if (write(ready[1], "x", 1) != 1)
                _exit(3);
            for (;;)
                pause();
        }
        close(ready[1]);
        char x;
        cr_assert_eq(read(ready[0], &x, 1), 1, "the child opened its files");
        close(ready[0]);
        cr_assert_eq(entries(dir), 3, "kept.txt and two temporary files");
        kill(pid, sigs[k]);
        int st = wait_status(pid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == sigs[k], "signal %d: status %#x", sigs[k], st);
        cr_assert_eq(entries(dir), 1, "signal %d left a temporary file", sigs[k]);
        rwt_rmdir(dir);
        free(dir);
    }
}

static volatile sig_atomic_t caught;

static void on_term(int sig)
{
    caught = sig;
}

/* A program's own handler and an ignored signal are the program's choice:
 * afile leaves them, and the handler can remove the files itself. */
Test(afile, a_handler_of_the_program_stays_its_own)
{
    char *dir = rwt_tmpdir();
    pid_t pid = fork();
    if (pid == 0) {
        default_signals();
        signal(SIGTERM, on_term);
        signal(SIGINT, SIG_IGN);
        rw_afile_t a;
        if (rw_afile_open(&a, rwt_path(dir, "a.txt")) != 0)
            _exit(1);
        struct sigaction term, intr, hup;
        sigaction(SIGTERM, NULL, &term);
        sigaction(SIGINT, NULL, &intr);
        sigaction(SIGHUP, NULL, &hup);
        if (term.sa_handler != on_term || intr.sa_handler != SIG_IGN || hup.sa_handler == SIG_DFL)
            _exit(2);
        raise(SIGTERM);
        raise(SIGINT);
        if (caught != SIGTERM || entries(dir) != 1)
            _exit(3);
        rw_afile_unlink_all();
        if (entries(dir) != 0)
            _exit(4);
        _exit(0);
    }
    int st = wait_status(pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    rwt_rmdir(dir);
    free(dir);
}

/* A forked child inherits the handler and the table, but the temporary
 * files are its parent's: killing the child leaves them. */
Test(afile, a_forked_child_leaves_its_parents_files)
{
    char *dir = rwt_tmpdir();
    pid_t pid = fork();
    if (pid == 0) {
        default_signals();
        rw_afile_t a;
        if (rw_afile_open(&a, rwt_path(dir, "a.txt")) != 0)
            _exit(1);
        pid_t child = fork();
        if (child == 0) {
            for (;;)
                pause();
        }
        kill(child, SIGTERM);
        int st;
        if (waitpid(child, &st, 0) != child || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
            _exit(2);
        if (access(a.tmp, F_OK) != 0)
            _exit(3);
        rw_afile_abort(&a);
        _exit(entries(dir) == 0 ? 0 : 4);
    }
    int st = wait_status(pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    rwt_rmdir(dir);
    free(dir);
}
