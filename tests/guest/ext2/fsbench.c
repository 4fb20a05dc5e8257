/* The file-system benchmarks of `just bench-ext2`, run on Cairn and on Linux against the same
 * ext2 image in the same QEMU (tests/src/bin/bench-ext2.rs). One phase per call, timed once
 * with clock_gettime(CLOCK_MONOTONIC) (the phases change the disk, so they are not repeated
 * in a loop); each prints
 *
 *     BENCH <name> <ns> <operations>
 *
 * usage: fsbench write FILE MIB     sequential write in 1 MiB writes, then fsync
 *        fsbench read FILE          sequential read in 1 MiB reads (mount it fresh first)
 *        fsbench create DIR N       create, write 100 bytes, close N files, then unlink them
 *        fsbench tree DIR N         make about N entries in 100 directories (not timed)
 *        fsbench find DIR           run BusyBox `find DIR` with its output to /dev/null
 * On failure: `BENCH-FAIL <name> <why>`, exit 1. Static, no threads. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1L << 20)

static char buf[MIB];

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int fail(const char *name, const char *what)
{
    printf("BENCH-FAIL %s %s: %s\n", name, what, strerror(errno));
    fflush(stdout);
    return 1;
}

static void report(const char *name, long long ns, long ops)
{
    printf("BENCH %s %lld %ld\n", name, ns, ops);
    fflush(stdout);
}

static int seq_write(const char *path, long mib)
{
    for (long i = 0; i < MIB; i++)
        buf[i] = (char)(i * 7 + i / 4096);
    long long t0 = now_ns();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fail("seq_write", "open");
    for (long i = 0; i < mib; i++)
        if (write(fd, buf, MIB) != MIB)
            return fail("seq_write", "write");
    if (fsync(fd) != 0)
        return fail("seq_write", "fsync");
    close(fd);
    report("seq_write", now_ns() - t0, mib);
    return 0;
}

static int seq_read(const char *path)
{
    long long t0 = now_ns();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return fail("seq_read", "open");
    long total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, MIB);
        if (r < 0)
            return fail("seq_read", "read");
        if (r == 0)
            break;
        total += r;
    }
    close(fd);
    report("seq_read", now_ns() - t0, total / MIB);
    return 0;
}

static int create_delete(const char *dir, long n)
{
    char path[256];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fail("create_delete", "mkdir");
    memset(buf, 'x', 100);
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/file-%ld", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            return fail("create_delete", "open");
        if (write(fd, buf, 100) != 100)
            return fail("create_delete", "write");
        close(fd);
    }
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/file-%ld", dir, i);
        if (unlink(path) != 0)
            return fail("create_delete", "unlink");
    }
    report("create_delete", now_ns() - t0, n);
    return 0;
}

static int tree(const char *dir, long n)
{
    char path[256];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fail("tree", "mkdir");
    long per = n / 100 - 1;
    for (long d = 0; d < 100; d++) {
        snprintf(path, sizeof path, "%s/d%ld", dir, d);
        if (mkdir(path, 0755) != 0)
            return fail("tree", "mkdir");
        for (long f = 0; f < per; f++) {
            snprintf(path, sizeof path, "%s/d%ld/f%ld", dir, d, f);
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0)
                return fail("tree", "open");
            close(fd);
        }
    }
    printf("tree: %ld entries\n", 100 * (per + 1));
    return 0;
}

static int find(const char *dir)
{
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        return fail("find", "fork");
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execl("/bin/find", "find", dir, (char *)0);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = EIO;
        return fail("find", "find");
    }
    report("find", now_ns() - t0, 1);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "write") == 0)
        return seq_write(argv[2], atol(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "read") == 0)
        return seq_read(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "create") == 0)
        return create_delete(argv[2], atol(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "tree") == 0)
        return tree(argv[2], atol(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "find") == 0)
        return find(argv[2]);
    fprintf(stderr, "usage: fsbench write FILE MIB | read FILE | create DIR N | tree DIR N | find DIR\n");
    return 2;
}
