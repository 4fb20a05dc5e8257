/* 64 MiB through a pipe: a child writes 64 MiB in 64 KiB writes, the parent reads it all.
 * One operation = 64 MiB moved (from the first write to the last byte read). */
#include <sys/wait.h>
#include <unistd.h>

const char bench_name[] = "pipe_64m";
void bench_fail(const char *what);

#define TOTAL (64L << 20)
#define CHUNK (64 << 10)

static char buf[CHUNK];

int bench_run(long n)
{
    int p[2];
    if (pipe(p) != 0) {
        bench_fail("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        bench_fail("fork");
        return 1;
    }
    if (pid == 0) {
        close(p[0]);
        for (long i = 0; i < CHUNK; i++)
            buf[i] = (char)i;
        for (long left = n * TOTAL; left > 0;) {
            ssize_t w = write(p[1], buf, left < CHUNK ? left : CHUNK);
            if (w <= 0)
                _exit(1);
            left -= w;
        }
        _exit(0);
    }
    close(p[1]);
    long got = 0;
    for (;;) {
        ssize_t r = read(p[0], buf, CHUNK);
        if (r < 0) {
            bench_fail("read");
            break;
        }
        if (r == 0)
            break;
        got += r;
    }
    close(p[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    return got == n * TOTAL ? 0 : 1;
}
