// POSIX timers: timer_create with SIGEV_SIGNAL (siginfo: SI_TIMER, the value), periodic
// expiries, timer_gettime, overruns while the signal is blocked, absolute times, SIGEV_NONE,
// glibc's SIGEV_THREAD (a helper thread and SIGEV_THREAD_ID), and the errors. Prints the same
// on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int hits, code, value, overrun;
static void on_timer(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    hits++;
    code = si->si_code;
    value = si->si_value.sival_int;
    overrun = si->si_overrun;
}

static void ms(int n) {
    struct timespec t = {n / 1000, (n % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

static volatile int thread_calls;
static void in_thread(union sigval v) {
    thread_calls += v.sival_int;
}

static const char *en(int r) {
    return r == 0 ? "ok" : errno == EINVAL ? "EINVAL" : strerror(errno);
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_timer;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN, &sa, 0);

    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    ev.sigev_value.sival_int = 77;
    timer_t t;
    printf("timer_create: %s\n", en(timer_create(CLOCK_MONOTONIC, &ev, &t)));
    struct itimerspec its = {{0, 20000000}, {0, 20000000}}, cur;
    printf("timer_settime: %s\n", en(timer_settime(t, 0, &its, 0)));
    timer_gettime(t, &cur);
    printf("timer_gettime: interval %ld ns, value set %d\n", cur.it_interval.tv_nsec,
           cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20000000);
    while (hits < 5) pause();
    printf("periodic: 5 expiries, code %d (SI_TIMER %d), value %d\n", code, SI_TIMER, value);

    // Blocked: expiries become overruns of the one pending signal.
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &s, 0);
    int before = hits;
    ms(130);
    sigprocmask(SIG_UNBLOCK, &s, 0);
    printf("after 130 ms blocked: one signal %d, overruns counted %d, timer_getoverrun agrees %d\n", hits == before + 1,
           overrun >= 3, timer_getoverrun(t) == overrun);
    struct itimerspec off = {{0, 0}, {0, 0}}, old;
    timer_settime(t, 0, &off, &old);
    printf("disarm: old interval %ld ns\n", old.it_interval.tv_nsec);
    timer_gettime(t, &cur);
    printf("disarmed: %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

    // An absolute time on the timer's clock, already past: it fires at once.
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_nsec >= 10000000) now.tv_nsec -= 10000000; else { now.tv_sec--; now.tv_nsec += 990000000; }
    struct itimerspec abs = {{0, 0}, now};
    before = hits;
    timer_settime(t, TIMER_ABSTIME, &abs, 0);
    ms(20);
    printf("absolute time in the past: fired %d\n", hits == before + 1);
    printf("timer_delete: %s\n", en(timer_delete(t)));
    errno = 0;
    printf("timer_settime on a deleted timer: %s\n", en(timer_settime(t, 0, &its, 0)));

    // SIGEV_NONE: no signal, but the timer runs.
    ev.sigev_notify = SIGEV_NONE;
    timer_t n;
    timer_create(CLOCK_REALTIME, &ev, &n);
    struct itimerspec once = {{0, 0}, {5, 0}};
    timer_settime(n, 0, &once, 0);
    timer_gettime(n, &cur);
    printf("SIGEV_NONE: counts down %d\n", cur.it_value.tv_sec == 4 || cur.it_value.tv_sec == 5);
    timer_delete(n);
    // An absolute time on CLOCK_REALTIME, 50 ms ahead.
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    timer_t rt;
    timer_create(CLOCK_REALTIME, &ev, &rt);
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_nsec += 50000000;
    if (now.tv_nsec >= 1000000000) { now.tv_sec++; now.tv_nsec -= 1000000000; }
    struct itimerspec ahead = {{0, 0}, now};
    before = hits;
    timer_settime(rt, TIMER_ABSTIME, &ahead, 0);
    int early = hits;
    ms(150);
    printf("absolute CLOCK_REALTIME time ahead: not at once %d, then fired %d\n", early == before, hits == before + 1);
    timer_delete(rt);

    // SIGEV_THREAD (glibc: a helper thread waiting for SIGEV_THREAD_ID signals).
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = in_thread;
    ev.sigev_value.sival_int = 1;
    timer_t th;
    printf("SIGEV_THREAD timer_create: %s\n", en(timer_create(CLOCK_MONOTONIC, &ev, &th)));
    struct itimerspec p10 = {{0, 10000000}, {0, 10000000}};
    timer_settime(th, 0, &p10, 0);
    for (int i = 0; i < 200 && thread_calls < 3; i++) ms(10);
    timer_delete(th);
    printf("SIGEV_THREAD: the function ran in a thread at least 3 times: %d\n", thread_calls >= 3);

    // Errors.
    errno = 0;
    printf("timer_create on clock 99: %s\n", en(timer_create(99, 0, &t)));
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 0;
    errno = 0;
    printf("timer_create with signal 0: %s\n", en(timer_create(CLOCK_MONOTONIC, &ev, &t)));
    timer_create(CLOCK_MONOTONIC, 0, &t);
    struct itimerspec bad = {{0, 0}, {0, 2000000000}};
    errno = 0;
    printf("timer_settime with 2e9 ns: %s\n", en(timer_settime(t, 0, &bad, 0)));
    struct itimerspec later = {{0, 0}, {100, 0}};
    errno = 0;
    printf("timer_settime bad flags: %s\n", en(timer_settime(t, 8, &later, 0)));
    timer_delete(t);
    return 0;
}
