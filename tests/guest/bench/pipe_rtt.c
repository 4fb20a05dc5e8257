/* Pipe round trip between two processes: the parent writes one byte into one pipe, the child
 * reads it and writes it back through another. One operation = one round trip. */
#include <sys/wait.h>
#include <unistd.h>

const char bench_name[] = "pipe_rtt";
void bench_fail(const char *what);

int bench_run(long n)
{
    int there[2], back[2];
    if (pipe(there) != 0 || pipe(back) != 0) {
        bench_fail("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        bench_fail("fork");
        return 1;
    }
    if (pid == 0) {
        char c;
        close(there[1]);
        close(back[0]);
        while (read(there[0], &c, 1) == 1)
            if (write(back[1], &c, 1) != 1)
                _exit(1);
        _exit(0);
    }
    close(there[0]);
    close(back[1]);
    int bad = 0;
    for (long i = 0; i < n && !bad; i++) {
        char c = (char)i;
        if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1 || c != (char)i) {
            bench_fail("round trip");
            bad = 1;
        }
    }
    close(there[1]);
    close(back[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bad = 1;
    return bad;
}
