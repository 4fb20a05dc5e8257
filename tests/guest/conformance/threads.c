// Threads (pthread_create: clone with CLONE_VM|CLONE_THREAD|CLONE_SETTLS|...|CLONE_CHILD_CLEARTID),
// mutexes, condition variables, join, thread ids, tgkill to one thread, exit of one thread,
// raw futex calls and their errors, vfork and posix_spawn (CLONE_VM|CLONE_VFORK). Prints the
// same on Linux.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define THREADS 8
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *add(void *arg) {
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        if (i % 1000 == 0) sched_yield();
    }
    return (void *)((long)arg * 10);
}

// A bounded queue with two condition variables.
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static int queue[4], qhead, qlen;

static void *produce(void *arg) {
    (void)arg;
    for (int i = 1; i <= 100; i++) {
        pthread_mutex_lock(&qlock);
        while (qlen == 4) pthread_cond_wait(&not_full, &qlock);
        queue[(qhead + qlen++) % 4] = i;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&qlock);
    }
    return 0;
}

static pid_t tids[2];
static volatile sig_atomic_t got_in;
static void on_usr1(int sig) {
    (void)sig;
    got_in = (pid_t)syscall(SYS_gettid);
}

static volatile int go;
static void *sleeper(void *arg) {
    int i = (int)(long)arg;
    tids[i] = (pid_t)syscall(SYS_gettid);
    while (!go) usleep(1000);
    return 0;
}

static void *exits_alone(void *arg) {
    (void)arg;
    syscall(SYS_exit, 7); // this thread only
    return (void *)1;
}

static long futex(int *uaddr, int op, int val, const struct timespec *t, int *uaddr2, int val3) {
    return syscall(SYS_futex, uaddr, op, val, t, uaddr2, val3);
}

static const char *err(long r) {
    return r == 0 ? "0" : r > 0 ? "positive" : errno == EAGAIN ? "EAGAIN" : errno == ETIMEDOUT ? "ETIMEDOUT"
        : errno == EINVAL ? "EINVAL" : errno == EFAULT ? "EFAULT" : errno == ENOSYS ? "ENOSYS" : strerror(errno);
}

static int futex_word;
static void *futex_waiter(void *arg) {
    (void)arg;
    long r = futex(&futex_word, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
    return (void *)r;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], 0, add, (void *)i) != 0) return 1;
    long sum = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (long)r;
    }
    printf("counter: %ld (expected %d)\n", counter, THREADS * ROUNDS);
    printf("join values: %ld\n", sum);

    pthread_t prod;
    pthread_create(&prod, 0, produce, 0);
    long total = 0;
    int in_order = 1, last = 0;
    for (int n = 0; n < 100; n++) {
        pthread_mutex_lock(&qlock);
        while (qlen == 0) pthread_cond_wait(&not_empty, &qlock);
        int v = queue[qhead];
        qhead = (qhead + 1) % 4;
        qlen--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&qlock);
        if (v != last + 1) in_order = 0;
        last = v;
        total += v;
    }
    pthread_join(prod, 0);
    printf("condvar queue: sum %ld, in order: %s\n", total, in_order ? "yes" : "no");

    // Thread ids, and a signal to one chosen thread.
    signal(SIGUSR1, on_usr1);
    pthread_t s[2];
    for (long i = 0; i < 2; i++) pthread_create(&s[i], 0, sleeper, (void *)i);
    while (!tids[0] || !tids[1]) usleep(1000);
    printf("thread ids differ from the pid: %s\n",
           tids[0] != getpid() && tids[1] != getpid() && tids[0] != tids[1] ? "yes" : "no");
    printf("gettid in main == getpid: %s\n", syscall(SYS_gettid) == getpid() ? "yes" : "no");
    syscall(SYS_tgkill, getpid(), tids[1], SIGUSR1);
    while (!got_in) usleep(1000);
    printf("tgkill ran the handler in the target thread: %s\n", got_in == tids[1] ? "yes" : "no");
    errno = 0;
    printf("tgkill to a thread of another process: %s\n", syscall(SYS_tgkill, 1, tids[1], 0) == -1 && errno == ESRCH ? "ESRCH" : "other");
    printf("tgkill with tid 0: %s\n", syscall(SYS_tgkill, getpid(), 0, SIGUSR1) == -1 && errno == EINVAL ? "EINVAL" : "other");
    go = 1;
    pthread_join(s[0], 0);
    pthread_join(s[1], 0);

    // exit (one thread) versus exit_group (all).
    pthread_t e;
    pthread_create(&e, 0, exits_alone, 0);
    void *er = (void *)99;
    pthread_join(e, &er);
    printf("a thread's exit left the process running: yes\n");

    // Raw futexes.
    int word = 1;
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    printf("FUTEX_WAIT on a changed value: %s\n", err(futex(&word, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0)));
    printf("FUTEX_WAIT with a timeout: %s\n", err(futex(&word, FUTEX_WAIT_PRIVATE, 1, &ten_ms, 0, 0)));
    printf("FUTEX_WAKE with no waiter: %ld\n", futex(&word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0));
    printf("FUTEX_WAIT_BITSET with bitset 0: %s\n", err(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 1, 0, 0, 0)));
    printf("FUTEX_WAIT unaligned: %s\n", err(futex((int *)((char *)&word + 1), FUTEX_WAIT_PRIVATE, 1, 0, 0, 0)));
    printf("FUTEX_WAIT on a bad address: %s\n", err(futex((int *)16, FUTEX_WAIT_PRIVATE, 1, 0, 0, 0)));
    struct timespec bad = {0, 2000000000};
    printf("FUTEX_WAIT with a bad timeout: %s\n", err(futex(&word, FUTEX_WAIT_PRIVATE, 1, &bad, 0, 0)));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_nsec += 5000000;
    if (now.tv_nsec >= 1000000000) { now.tv_sec++; now.tv_nsec -= 1000000000; }
    printf("FUTEX_WAIT_BITSET absolute timeout: %s\n", err(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 1, &now, 0, -1)));
    pthread_t fw[3];
    for (int i = 0; i < 3; i++) pthread_create(&fw[i], 0, futex_waiter, 0);
    usleep(50000);
    int woke = 0;
    for (int tries = 0; tries < 100 && woke < 3; tries++) {
        woke += (int)futex(&futex_word, FUTEX_WAKE_PRIVATE, 2, 0, 0, 0);
        usleep(10000);
    }
    for (int i = 0; i < 3; i++) pthread_join(fw[i], 0);
    printf("FUTEX_WAKE woke the waiters: %d\n", woke);
    int other = 0;
    printf("FUTEX_CMP_REQUEUE with a wrong value: %s\n", err(futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &other, 5)));

    // vfork: the child runs in our memory until it exits.
    volatile int shared = 0;
    pid_t v = vfork();
    if (v == 0) {
        shared = 42;
        _exit(3);
    }
    int st;
    waitpid(v, &st, 0);
    printf("vfork child wrote our memory: %d, status %d\n", shared, WEXITSTATUS(st));

    // posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)).
    pid_t sp;
    char *argv[] = {"sh", "-c", "exit 5", 0};
    int r = posix_spawn(&sp, "/bin/sh", 0, 0, argv, environ);
    waitpid(sp, &st, 0);
    printf("posix_spawn: %d, status %d\n", r, WEXITSTATUS(st));
    char *bad_argv[] = {"nope", 0};
    r = posix_spawn(&sp, "/no/such/program", 0, 0, bad_argv, environ);
    if (r == 0) {
        waitpid(sp, &st, 0);
        printf("posix_spawn of a missing program: child status %d\n", WEXITSTATUS(st));
    } else {
        printf("posix_spawn of a missing program: %s\n", strerror(r));
    }

    // clone's flag rules.
    errno = 0;
    long c = syscall(SYS_clone, CLONE_THREAD, 0, 0, 0, 0);
    printf("clone(CLONE_THREAD) without CLONE_SIGHAND: %s\n", c == -1 && errno == EINVAL ? "EINVAL" : "other");
    errno = 0;
    c = syscall(SYS_clone, CLONE_SIGHAND, 0, 0, 0, 0);
    printf("clone(CLONE_SIGHAND) without CLONE_VM: %s\n", c == -1 && errno == EINVAL ? "EINVAL" : "other");
    return 0;
}
