// Job control: stopping and continuing a child (busy in user mode, or blocked in read),
// waitpid with WUNTRACED/WCONTINUED/WNOHANG, waitid (P_PID/P_PGID/P_ALL, WEXITED/WSTOPPED/
// WCONTINUED/WNOWAIT, the siginfo), SIGCHLD's si_code, SA_NOCLDSTOP, SA_NOCLDWAIT and SIG_IGN,
// SIGKILL of a stopped process, and an orphaned process group getting SIGHUP and SIGCONT.
// Prints the same on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile long *shm; // [0] counter, [1] flag, [2] SIGCONT seen, [3] SIGHUP seen, [4] pid

static void ms(int n) {
    struct timespec t = {n / 1000, (n % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

static const char *status(int st) {
    static char b[64];
    if (WIFEXITED(st)) snprintf(b, sizeof b, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(b, sizeof b, "killed by %d", WTERMSIG(st));
    else if (WIFSTOPPED(st)) snprintf(b, sizeof b, "stopped by %d", WSTOPSIG(st));
    else if (WIFCONTINUED(st)) snprintf(b, sizeof b, "continued");
    else snprintf(b, sizeof b, "? %#x", st);
    return b;
}

static volatile int chld_codes[16], chld_status[16], nchld;
static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (nchld < 16) {
        chld_status[nchld] = si->si_status;
        chld_codes[nchld++] = si->si_code;
    }
}

static void on_cont(int sig) {
    (void)sig;
    shm[2] = 1;
}

static void on_hup(int sig) {
    (void)sig;
    shm[3] = 1;
}

static void spin(void) {
    for (;;) shm[0]++;
}

static const char *errname(int e) {
    return e == ECHILD ? "ECHILD" : e == EINVAL ? "EINVAL" : strerror(e);
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    shm = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) return 1;
    struct sigaction sa = {0};
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, 0);

    alarm(120); // a hang ends the test instead of the run

    // A child busy in user mode, in a group of its own (not orphaned: SIGTSTP stops it):
    // stop, check it does not run, continue, kill.
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        signal(SIGCONT, on_cont);
        spin();
    }
    setpgid(c, c);
    while (shm[0] == 0) ms(1);
    int st;
    kill(c, SIGSTOP);
    pid_t w = waitpid(c, &st, WUNTRACED);
    printf("SIGSTOP: waitpid %s, %s\n", w == c ? "child" : "?", status(st));
    long a = shm[0];
    ms(50);
    printf("stopped child ran meanwhile: %s\n", shm[0] != a ? "yes" : "no");
    printf("WNOHANG|WUNTRACED again (already reported): %d\n", (int)waitpid(c, &st, WNOHANG | WUNTRACED));
    kill(c, SIGCONT);
    w = waitpid(c, &st, WCONTINUED);
    printf("SIGCONT: waitpid %s, %s\n", w == c ? "child" : "?", status(st));
    a = shm[0];
    ms(50);
    printf("continued child runs: %s, its SIGCONT handler ran: %s\n", shm[0] != a ? "yes" : "no", shm[2] ? "yes" : "no");
    kill(c, SIGTSTP);
    waitpid(c, &st, WUNTRACED);
    printf("SIGTSTP: %s\n", status(st));
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    printf("SIGKILL while stopped: %s\n", status(st));
    printf("SIGCHLD codes:");
    for (int i = 0; i < nchld; i++) printf(" %d/%d", chld_codes[i], chld_status[i]);
    printf("\n");

    // A child blocked in read: its call does not finish while it is stopped.
    int p[2];
    pipe(p);
    shm[1] = 0;
    c = fork();
    if (c == 0) {
        char ch;
        close(p[1]);
        if (read(p[0], &ch, 1) == 1) shm[1] = ch;
        _exit(0);
    }
    close(p[0]);
    ms(20);
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    write(p[1], "x", 1);
    ms(50);
    printf("read finished while stopped: %s\n", shm[1] ? "yes" : "no");
    kill(c, SIGCONT);
    waitpid(c, &st, 0);
    printf("after SIGCONT the read got: %c, child %s\n", (char)shm[1], status(st));
    close(p[1]);

    // waitid. The child waits for the pipe to close before it exits, so that the continue
    // can be waited for first.
    pipe(p);
    c = fork();
    if (c == 0) {
        char ch;
        close(p[1]);
        raise(SIGSTOP);
        (void)read(p[0], &ch, 1);
        _exit(4);
    }
    close(p[0]);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    int r = waitid(P_PID, c, &si, WSTOPPED | WNOWAIT);
    printf("waitid WSTOPPED|WNOWAIT: %d signo %d code %d status %d pid ok %d\n", r, si.si_signo, si.si_code, si.si_status,
           si.si_pid == c);
    memset(&si, 0xff, sizeof si);
    r = waitid(P_PGID, 0, &si, WSTOPPED);
    printf("waitid P_PGID WSTOPPED again: %d code %d status %d\n", r, si.si_code, si.si_status);
    memset(&si, 0xff, sizeof si);
    r = waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WNOHANG);
    printf("waitid WNOHANG, nothing ready: %d pid %d signo %d\n", r, si.si_pid, si.si_signo);
    kill(c, SIGCONT);
    r = waitid(P_PID, c, &si, WCONTINUED);
    printf("waitid WCONTINUED: %d code %d status %d\n", r, si.si_code, si.si_status);
    close(p[1]);
    r = waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    printf("waitid WEXITED|WNOWAIT: %d code %d status %d\n", r, si.si_code, si.si_status);
    r = waitid(P_ALL, 0, &si, WEXITED);
    printf("waitid WEXITED: %d code %d status %d pid ok %d\n", r, si.si_code, si.si_status, si.si_pid == c);
    errno = 0;
    r = waitid(P_ALL, 0, &si, WEXITED);
    printf("waitid, no children: %d %s\n", r, errname(errno));
    errno = 0;
    r = waitid(P_ALL, 0, &si, 0);
    printf("waitid, no options: %d %s\n", r, errname(errno));
    errno = 0;
    r = waitid(7, 0, &si, WEXITED);
    printf("waitid, bad idtype: %d %s\n", r, errname(errno));
    errno = 0;
    r = waitpid(-1, &st, 0x100000);
    printf("waitpid, bad options: %d %s\n", r, errname(errno));

    // Killed by a signal: CLD_KILLED in waitid.
    c = fork();
    if (c == 0) {
        for (;;) pause();
    }
    kill(c, SIGTERM);
    r = waitid(P_PID, c, &si, WEXITED);
    printf("waitid of a killed child: code %d status %d\n", si.si_code, si.si_status);

    // SA_NOCLDSTOP: no SIGCHLD for stops.
    nchld = 0;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, 0);
    c = fork();
    if (c == 0) {
        raise(SIGSTOP);
        _exit(0);
    }
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    waitpid(c, &st, 0);
    printf("SA_NOCLDSTOP: SIGCHLD codes:");
    for (int i = 0; i < nchld; i++) printf(" %d", chld_codes[i]);
    printf("\n");

    // SA_NOCLDWAIT and SIG_IGN: no zombies to wait for.
    sa.sa_flags = SA_SIGINFO | SA_NOCLDWAIT;
    sigaction(SIGCHLD, &sa, 0);
    c = fork();
    if (c == 0) _exit(1);
    errno = 0;
    r = waitpid(c, &st, 0);
    printf("SA_NOCLDWAIT: waitpid %d %s\n", r, errname(errno));
    signal(SIGCHLD, SIG_IGN);
    c = fork();
    if (c == 0) _exit(1);
    errno = 0;
    r = waitpid(c, &st, 0);
    printf("SIGCHLD ignored: waitpid %d %s\n", r, errname(errno));
    signal(SIGCHLD, SIG_DFL);

    // An orphaned process group with a stopped member gets SIGHUP and SIGCONT.
    shm[2] = shm[3] = 0;
    shm[0] = 0;
    setsid();
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        pid_t g = fork();
        if (g == 0) {
            signal(SIGHUP, on_hup);
            signal(SIGCONT, on_cont);
            raise(SIGSTOP);
            spin();
        }
        waitpid(g, &st, WUNTRACED);
        shm[4] = g;
        _exit(0); // orphans the group, in which g is stopped
    }
    waitpid(c, &st, 0);
    for (int i = 0; i < 200 && !(shm[2] && shm[3] && shm[0]); i++) ms(5);
    printf("orphaned group: SIGHUP %s, SIGCONT %s, running again %s\n", shm[3] ? "yes" : "no", shm[2] ? "yes" : "no",
           shm[0] ? "yes" : "no");
    kill((pid_t)shm[4], SIGTSTP);
    ms(30);
    a = shm[0];
    ms(50);
    printf("SIGTSTP to an orphaned group is discarded: %s\n", shm[0] != a ? "yes" : "no");
    kill((pid_t)shm[4], SIGKILL);
    return 0;
}
