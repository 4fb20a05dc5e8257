/* Time from a server's death to its new instance serving again, seen from a program: kill the
 * server through /sys/kernel/servers/<name>/fault, then time the first operation that needs it
 * (the Linux ABI server retries it across the restart), N times per server; prints
 *
 *     RESTART <server> <median ns> <min ns> <max ns> <n>
 *
 * Cairn only (Linux has no servers to kill). Used by `just bench`. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* An operation that needs `server`: 0 when it succeeded. */
static int touch(const char *server) {
    if (!strcmp(server, "vfs") || !strcmp(server, "ramfs")) {
        struct stat st;
        return stat("/bin/busybox", &st);
    }
    if (!strcmp(server, "tty")) {
        struct termios t;
        return ioctl(0, TCGETS, &t);
    }
    return -1;
}

int main(int argc, char **argv) {
    enum { N = 20 };
    for (int s = 1; s < argc; s++) {
        const char *server = argv[s];
        char path[128];
        snprintf(path, sizeof path, "/sys/kernel/servers/%s/fault", server);
        long long t[N];
        int n = 0;
        for (int i = 0; i < N; i++) {
            if (touch(server) != 0) {
                printf("RESTART-FAIL %s: no working %s before the kill\n", server, server);
                break;
            }
            int fd = open(path, O_WRONLY);
            if (fd < 0) {
                printf("RESTART-FAIL %s: %s\n", server, path);
                break;
            }
            long long t0 = now_ns();
            write(fd, "kill", 4);
            close(fd);
            while (touch(server) != 0)
                ;
            t[n++] = now_ns() - t0;
            usleep(20000); /* let the supervisor settle between kills */
        }
        if (n == 0)
            continue;
        qsort(t, n, sizeof t[0], cmp);
        printf("RESTART %s %lld %lld %lld %d\n", server, t[n / 2], t[0], t[n - 1], n);
        fflush(stdout);
    }
    return 0;
}
