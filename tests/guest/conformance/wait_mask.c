/* ppoll and pselect6 with a signal mask (ppoll(2), select(2)): the mask holds only while the
 * call waits. A signal blocked outside but let through by the call's mask interrupts it
 * (EINTR, the handler runs, the original mask is back afterwards); a signal the call's mask
 * holds off stays pending through the wait (a timeout) and is delivered as the call returns; a bad mask size is EINVAL and a bad mask pointer EFAULT. Output is compared with
 * Linux's (wait_mask.expected). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_usr1(int sig) {
    (void)sig;
    got++;
}

static const char *err(int r) {
    if (r >= 0)
        return "ok";
    switch (errno) {
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    default: return strerror(errno);
    }
}

static int blocked(int sig) {
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    return sigismember(&now, sig);
}

/* A child that sends SIGUSR1 to the parent after a short sleep. */
static pid_t send_later(void) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec d = {0, 20 * 1000 * 1000};
        nanosleep(&d, NULL);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    return pid;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t usr1, none;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigemptyset(&none);
    int fds[2];
    pipe(fds);
    struct pollfd p = {fds[0], POLLIN, 0};

    /* Blocked outside, let through by ppoll's mask: interrupts. */
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    got = 0;
    pid_t child = send_later();
    struct timespec five = {5, 0};
    int r = ppoll(&p, 1, &five, &none);
    printf("ppoll letting SIGUSR1 through: %s, handler ran %d, blocked again after: %d\n", err(r), got,
           blocked(SIGUSR1));
    waitpid(child, NULL, 0);

    /* The same with pselect. */
    got = 0;
    child = send_later();
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fds[0], &rd);
    r = pselect(fds[0] + 1, &rd, NULL, NULL, &five, &none);
    printf("pselect letting SIGUSR1 through: %s, handler ran %d, blocked again after: %d\n", err(r), got,
           blocked(SIGUSR1));
    waitpid(child, NULL, 0);

    /* Unblocked outside, held off by ppoll's mask: a timeout, then the handler. */
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    got = 0;
    child = send_later();
    struct timespec short_wait = {1, 0};
    r = ppoll(&p, 1, &short_wait, &usr1);
    int during = got;
    printf("ppoll holding SIGUSR1 off: returned %d (%s), handler had run when it returned %d\n", r, err(r), during);
    waitpid(child, NULL, 0);
    printf("  after it returned: handler ran %d, blocked: %d\n", got, blocked(SIGUSR1));

    /* The same with pselect. */
    got = 0;
    child = send_later();
    FD_ZERO(&rd);
    FD_SET(fds[0], &rd);
    struct timespec short_wait2 = {1, 0};
    r = pselect(fds[0] + 1, &rd, NULL, NULL, &short_wait2, &usr1);
    during = got;
    printf("pselect holding SIGUSR1 off: returned %d (%s), handler had run when it returned %d\n", r, err(r), during);
    waitpid(child, NULL, 0);
    printf("  after it returned: handler ran %d, blocked: %d\n", got, blocked(SIGUSR1));

    /* Ready at once: the mask comes and goes without a wait. */
    write(fds[1], "x", 1);
    r = ppoll(&p, 1, &five, &usr1);
    printf("ppoll on a ready pipe: %d, revents POLLIN %d, SIGUSR1 blocked after: %d\n", r, !!(p.revents & POLLIN),
           blocked(SIGUSR1));

    /* Bad arguments, through the raw system call. */
    struct timespec zero = {0, 0};
    r = syscall(SYS_ppoll, &p, 1, &zero, &usr1, 4);
    printf("ppoll with sigsetsize 4: %s\n", err(r));
    r = syscall(SYS_ppoll, &p, 1, &zero, (void *)8, 8);
    printf("ppoll with a bad mask pointer: %s\n", err(r));
    struct {
        const sigset_t *set;
        size_t size;
    } arg = {&usr1, 4};
    r = syscall(SYS_pselect6, fds[0] + 1, &rd, NULL, NULL, &zero, &arg);
    printf("pselect6 with sigsetsize 4: %s\n", err(r));
    r = syscall(SYS_pselect6, fds[0] + 1, &rd, NULL, NULL, &zero, (void *)8);
    printf("pselect6 with a bad argument pointer: %s\n", err(r));
    arg.set = NULL;
    arg.size = 8;
    FD_ZERO(&rd);
    FD_SET(fds[0], &rd);
    r = syscall(SYS_pselect6, fds[0] + 1, &rd, NULL, NULL, &zero, &arg);
    printf("pselect6 with a null mask: %d\n", r);
    return 0;
}
