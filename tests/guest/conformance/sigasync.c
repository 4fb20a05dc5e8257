// Asynchronous signals: a loop that makes no system call is interrupted by SIGALRM (alarm,
// setitimer), the interrupted code's floating-point registers survive handlers that compute
// with floating point themselves, a signal sent by another process reaches a spinning process,
// and alarm/setitimer/getitimer report what is left. Prints the same on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t flag;
static volatile int handlers;
static volatile double sink;

static void on_alarm(int sig) {
    (void)sig;
    flag = 1;
}

static volatile int alarm_code = 99;
static void on_alarm_info(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    alarm_code = si->si_code;
    flag = 1;
}

// Floating point in the handler: every FP/SIMD register it touches is clobbered unless the
// kernel saves and restores the interrupted state.
static void fp_handler(int sig) {
    (void)sig;
    double a = 3.25, b = -7.5, c = 1e-3;
    for (int i = 0; i < 200; i++) {
        a = a * 1.0001 + b * c;
        b = b - a * 0.5;
        c = c + 1e-6;
    }
    sink = a + b + c;
    handlers++;
}

__attribute__((noinline)) static double work(long n) {
    double s0 = 0, s1 = 1, s2 = 2, s3 = 3;
    for (long i = 1; i <= n; i++) {
        double x = (double)i;
        s0 += 1.0 / x;
        s1 += 1.0 / (x * x);
        s2 += x * 1e-9;
        s3 -= 1.0 / (x + 0.5);
    }
    return s0 + s1 * 2 + s2 * 3 + s3 * 4;
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    printf("alarm(1): %u\n", alarm(1));
    unsigned left = alarm(2);
    printf("alarm(2) right after: %u left\n", left);
    flag = 0;
    long long t0 = now_ms();
    while (!flag) {
    } // no system call: only an asynchronous delivery ends this
    long long dt = now_ms() - t0;
    printf("spun until SIGALRM: yes, after about 2 s: %s\n", dt > 1500 && dt < 4000 ? "yes" : "no");
    printf("alarm(0) when none is set: %u\n", alarm(0));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_alarm_info;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGALRM, &sa, 0);
    flag = 0;
    struct itimerval shot = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &shot, 0);
    while (!flag) {
    }
    printf("SIGALRM from a timer: si_code %d (SI_KERNEL %d)\n", alarm_code, SI_KERNEL);

    // A periodic timer, getitimer, and the FP state around its handlers.
    struct itimerval it = {{0, 10000}, {0, 10000}}, cur;
    static volatile long size = 1000000; // read every round: the calls cannot be merged
    double expect = work(size);
    signal(SIGALRM, fp_handler);
    setitimer(ITIMER_REAL, &it, 0);
    getitimer(ITIMER_REAL, &cur);
    printf("getitimer: interval %ld us, value set: %s\n", (long)cur.it_interval.tv_usec,
           cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 10000 ? "yes" : "no");
    double got = 0;
    int rounds = 0;
    while (handlers < 20 && rounds < 200) {
        got = work(size);
        rounds++;
        if (got != expect) break;
    }
    struct itimerval off = {{0, 0}, {0, 0}}, old;
    setitimer(ITIMER_REAL, &off, &old);
    printf("FP registers survived %s handlers: %s\n", handlers >= 20 ? "20+" : "few", got == expect ? "yes" : "no");
    printf("setitimer returned the old interval: %ld us\n", (long)old.it_interval.tv_usec);
    getitimer(ITIMER_REAL, &cur);
    printf("disarmed: %ld %ld\n", (long)cur.it_value.tv_sec, (long)cur.it_value.tv_usec);

    // Errors.
    errno = 0;
    printf("setitimer(5): %s\n", setitimer(5, &it, 0) == -1 && errno == EINVAL ? "EINVAL" : "other");
    struct itimerval bad = {{0, 0}, {0, 2000000}};
    errno = 0;
    printf("setitimer with 2000000 us: %s\n", setitimer(ITIMER_REAL, &bad, 0) == -1 && errno == EINVAL ? "EINVAL" : "other");
    errno = 0;
    printf("getitimer(-1): %s\n", getitimer(-1, &cur) == -1 && errno == EINVAL ? "EINVAL" : "other");
    struct itimerval virt = {{0, 0}, {5, 0}};
    setitimer(ITIMER_VIRTUAL, &virt, 0);
    getitimer(ITIMER_VIRTUAL, &cur);
    printf("ITIMER_VIRTUAL kept: %s\n", cur.it_value.tv_sec >= 4 ? "yes" : "no");
    setitimer(ITIMER_VIRTUAL, &off, 0);

    // Another process's signal reaches a process that only computes.
    pid_t c = fork();
    if (c == 0) {
        for (;;) {
        }
    }
    usleep(100000);
    kill(c, SIGTERM);
    int st;
    waitpid(c, &st, 0);
    printf("a spinning child killed by SIGTERM: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? "yes" : "no");
    c = fork();
    if (c == 0) {
        signal(SIGUSR1, on_alarm);
        flag = 0;
        while (!flag) {
        }
        _exit(42);
    }
    usleep(100000);
    kill(c, SIGUSR1);
    waitpid(c, &st, 0);
    printf("a spinning child's handler ran: exit %d\n", WEXITSTATUS(st));
    return 0;
}
