/* fork + execve of BusyBox `true` + wait: one operation = one short-lived program run. */
#include <sys/wait.h>
#include <unistd.h>

const char bench_name[] = "fork_exec";
void bench_fail(const char *what);

int bench_run(long n)
{
    static char *const argv[] = {"true", 0};
    static char *const envp[] = {0};
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            bench_fail("fork");
            return 1;
        }
        if (pid == 0) {
            execve("/bin/true", argv, envp);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            bench_fail("execve /bin/true");
            return 1;
        }
    }
    return 0;
}
