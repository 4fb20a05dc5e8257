/* fork + _exit + wait: one operation = a child created, exited and reaped. */
#include <sys/wait.h>
#include <unistd.h>

const char bench_name[] = "fork_wait";
void bench_fail(const char *what);

int bench_run(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            bench_fail("fork");
            return 1;
        }
        if (pid == 0)
            _exit(7);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 7) {
            bench_fail("waitpid");
            return 1;
        }
    }
    return 0;
}
