// Signals: siginfo (SI_USER, SI_TKILL, SI_QUEUE with a value, SEGV_MAPERR/SEGV_ACCERR with
// si_addr), queued real-time signals against coalesced standard ones, SA_RESTART (read and wait4
// restarted, nanosleep not: EINTR with the time left), SA_NODEFER, SA_RESETHAND, sigaltstack
// with SA_ONSTACK, rt_sigpending, sigtimedwait, pause, sigsuspend, and the error paths.
// Prints the same on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *en(int e) {
    switch (e) {
    case 0: return "0";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    default: return strerror(e);
    }
}

static siginfo_t last;
static volatile int hits;
static void record(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    last = *si;
    hits++;
}

static void on(int sig, void (*f)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = f;
    sa.sa_flags = SA_SIGINFO | flags;
    sigaction(sig, &sa, 0);
}

static void ms(int n) {
    struct timespec t = {n / 1000, (n % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

static void timer_ms(int n) {
    struct itimerval it = {{0, 0}, {n / 1000, (n % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, 0);
}

static volatile int depth, max_depth, raised;
static void nested(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    depth++;
    if (depth > max_depth) max_depth = depth;
    if (!raised) {
        raised = 1;
        raise(sig);
    }
    depth--;
}

static char *alt;
static volatile int on_alt, alt_flags, alt_eperm;
static void check_alt(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    (void)uc;
    char here;
    on_alt = &here >= alt && &here < alt + 65536;
    stack_t cur;
    sigaltstack(0, &cur);
    alt_flags = cur.ss_flags;
    stack_t other = {.ss_sp = malloc(65536), .ss_size = 65536, .ss_flags = 0};
    alt_eperm = sigaltstack(&other, 0) == -1 && errno == EPERM;
}

static sigjmp_buf env;
static void segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    last = *si;
    siglongjmp(env, 1);
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    alarm(120); // a hang ends the test instead of the run

    on(SIGUSR1, record, 0);
    kill(getpid(), SIGUSR1);
    printf("kill: signo %d code %d pid ok %d uid %d\n", last.si_signo, last.si_code, last.si_pid == getpid(), last.si_uid);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    printf("tgkill: code %d pid ok %d\n", last.si_code, last.si_pid == getpid());
    union sigval v = {.sival_int = 1234};
    sigqueue(getpid(), SIGUSR1, v);
    printf("sigqueue: code %d value %d\n", last.si_code, last.si_value.sival_int);
    siginfo_t fake;
    memset(&fake, 0, sizeof fake);
    fake.si_code = SI_USER;
    errno = 0;
    printf("rt_sigqueueinfo faking SI_USER to another process: %s\n",
           en(syscall(SYS_rt_sigqueueinfo, getppid(), SIGUSR1, &fake) == -1 ? errno : 0));

    // Blocked: a standard signal coalesces, a real-time one queues.
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &s, &old);
    on(SIGRTMIN, record, 0);
    hits = 0;
    for (int i = 0; i < 3; i++) {
        kill(getpid(), SIGUSR1);
        v.sival_int = i;
        sigqueue(getpid(), SIGRTMIN, v);
    }
    sigset_t pend;
    sigpending(&pend);
    printf("pending while blocked: USR1 %d RTMIN %d USR2 %d\n", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGRTMIN),
           sigismember(&pend, SIGUSR2));
    sigprocmask(SIG_SETMASK, &old, 0);
    printf("delivered after unblocking: %d (1 USR1 + 3 RTMIN), last value %d\n", hits, last.si_value.sival_int);

    // SA_RESTART: a read restarts after the handler; without it, EINTR.
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        ms(300);
        write(p[1], "r", 1);
        ms(300);
        write(p[1], "s", 1);
        ms(300);
        _exit(0);
    }
    on(SIGALRM, record, SA_RESTART);
    hits = 0;
    timer_ms(50);
    char ch = 0;
    ssize_t n = read(p[0], &ch, 1);
    printf("read with SA_RESTART: %zd '%c', handler ran %d\n", n, ch, hits);
    on(SIGALRM, record, 0);
    timer_ms(50);
    errno = 0;
    n = read(p[0], &ch, 1);
    printf("read without SA_RESTART: %zd %s\n", n, en(errno));
    n = read(p[0], &ch, 1);
    printf("read again: %zd '%c'\n", n, ch);
    on(SIGALRM, record, SA_RESTART);
    timer_ms(50);
    hits = 0;
    int st;
    pid_t w = waitpid(c, &st, 0);
    printf("waitpid with SA_RESTART: %s, handler ran %d\n", w == c ? "child" : en(errno), hits);

    // nanosleep is not restarted: EINTR and the time left.
    timer_ms(100);
    struct timespec req = {2, 0}, rem = {0, 0};
    errno = 0;
    int r = nanosleep(&req, &rem);
    printf("nanosleep with SA_RESTART: %d %s, time left between 1.5 and 2 s: %s\n", r, en(errno),
           rem.tv_sec == 1 && rem.tv_nsec >= 500000000 ? "yes" : "no");

    // pause and sigsuspend end in EINTR, sigsuspend's mask goes back.
    timer_ms(20);
    errno = 0;
    r = pause();
    printf("pause: %d %s\n", r, en(errno));
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    sigprocmask(SIG_BLOCK, &s, 0);
    timer_ms(20);
    sigset_t none;
    sigemptyset(&none);
    errno = 0;
    r = sigsuspend(&none);
    sigprocmask(SIG_BLOCK, 0, &old);
    printf("sigsuspend: %d %s, USR2 still blocked after: %d\n", r, en(errno), sigismember(&old, SIGUSR2));

    // rt_sigtimedwait takes a blocked signal; a timeout is EAGAIN.
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, 0);
    kill(getpid(), SIGUSR2);
    siginfo_t got;
    struct timespec zero = {0, 20000000};
    r = sigtimedwait(&s, &got, &zero);
    printf("sigtimedwait: %d code %d\n", r, got.si_code);
    errno = 0;
    r = sigtimedwait(&s, &got, &zero);
    printf("sigtimedwait, nothing pending: %d %s\n", r, en(errno));
    sigprocmask(SIG_UNBLOCK, &s, 0);

    // SA_NODEFER lets the handler be interrupted by its own signal.
    on(SIGUSR2, nested, 0);
    depth = max_depth = raised = 0;
    raise(SIGUSR2);
    printf("without SA_NODEFER: nesting %d\n", max_depth);
    on(SIGUSR2, nested, SA_NODEFER);
    depth = max_depth = raised = 0;
    raise(SIGUSR2);
    printf("with SA_NODEFER: nesting %d\n", max_depth);

    // SA_RESETHAND: the handler runs once, then the default action is back.
    on(SIGUSR2, record, SA_RESETHAND);
    raise(SIGUSR2);
    struct sigaction q;
    sigaction(SIGUSR2, 0, &q);
    printf("SA_RESETHAND: default again: %s\n", q.sa_handler == SIG_DFL ? "yes" : "no");

    // sigaltstack and SA_ONSTACK.
    alt = malloc(65536);
    stack_t ss = {.ss_sp = alt, .ss_size = 65536, .ss_flags = 0}, os;
    printf("sigaltstack: %d\n", sigaltstack(&ss, &os));
    printf("previous: disabled %d\n", (os.ss_flags & SS_DISABLE) != 0);
    on(SIGUSR2, check_alt, SA_ONSTACK);
    raise(SIGUSR2);
    printf("SA_ONSTACK handler on the alternate stack: %d, SS_ONSTACK %d, EPERM changing it there: %d\n", on_alt,
           (alt_flags & SS_ONSTACK) != 0, alt_eperm);
    sigaltstack(0, &os);
    printf("outside the handler: flags %d\n", os.ss_flags);
    stack_t tiny = {.ss_sp = alt, .ss_size = 512, .ss_flags = 0};
    errno = 0;
    printf("sigaltstack too small: %s\n", en(sigaltstack(&tiny, 0) ? errno : 0));
    stack_t badf = {.ss_sp = alt, .ss_size = 65536, .ss_flags = 0x40};
    errno = 0;
    printf("sigaltstack bad flags: %s\n", en(sigaltstack(&badf, 0) ? errno : 0));
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, 0);
    sigaltstack(0, &os);
    printf("disabled: %d\n", (os.ss_flags & SS_DISABLE) != 0);

    // Faults: si_addr and si_code.
    on(SIGSEGV, segv, 0);
    if (sigsetjmp(env, 1) == 0) {
        *(volatile int *)16 = 1;
    }
    printf("SIGSEGV on an unmapped address: code %d addr %p\n", last.si_code, last.si_addr);
    char *ro = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(env, 1) == 0) {
        ro[8] = 1;
    }
    printf("SIGSEGV on a read-only page: code %d addr ok %d\n", last.si_code, last.si_addr == ro + 8);
    char *noacc = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(env, 1) == 0) {
        (void)*(volatile char *)(noacc + 100);
    }
    printf("SIGSEGV on a PROT_NONE page: code %d addr ok %d\n", last.si_code, last.si_addr == noacc + 100);
    on(SIGILL, segv, 0);
    if (sigsetjmp(env, 1) == 0) {
#if defined(__x86_64__)
        __asm__ volatile("ud2");
#else
        __asm__ volatile(".inst 0x00000000"); // udf #0
#endif
    }
    printf("SIGILL: signo %d\n", last.si_signo);
    // A SIGSEGV with the signal blocked kills (the handler cannot run).
    c = fork();
    if (c == 0) {
        sigemptyset(&s);
        sigaddset(&s, SIGSEGV);
        sigprocmask(SIG_BLOCK, &s, 0);
        *(volatile int *)16 = 1;
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("SIGSEGV while blocked: killed by %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);

    // Error paths.
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    errno = 0;
    printf("sigaction(SIGKILL): %s\n", en(sigaction(SIGKILL, &sa, 0) ? errno : 0));
    errno = 0;
    printf("sigaction(0): %s\n", en(syscall(SYS_rt_sigaction, 0, &sa, 0, 8) ? errno : 0));
    errno = 0;
    printf("sigaction(65): %s\n", en(syscall(SYS_rt_sigaction, 65, &sa, 0, 8) ? errno : 0));
    errno = 0;
    printf("rt_sigaction with sigsetsize 4: %s\n", en(syscall(SYS_rt_sigaction, SIGUSR1, &sa, 0, 4) ? errno : 0));
    errno = 0;
    printf("sigaction with a bad pointer: %s\n", en(syscall(SYS_rt_sigaction, SIGUSR1, (void *)8, 0, 8) ? errno : 0));
    errno = 0;
    printf("sigprocmask bad how: %s\n", en(syscall(SYS_rt_sigprocmask, 7, &s, 0, 8) ? errno : 0));
    errno = 0;
    printf("kill signal 65: %s\n", en(kill(getpid(), 65) ? errno : 0));
    errno = 0;
    printf("kill no such process: %s\n", en(kill(999999, 0) ? errno : 0));
    errno = 0;
    printf("kill(-999999): %s\n", en(kill(-999999, SIGUSR1) ? errno : 0));
    printf("kill signal 0 to self: %d\n", kill(getpid(), 0));
    return 0;
}
