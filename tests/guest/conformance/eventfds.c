/* eventfd, timerfd, signalfd and epoll, as their man pages describe them: eventfd's counter
 * and semaphore mode, EAGAIN and blocking on both sides, short buffers; timerfd's one-shot and
 * periodic timers, expiration counts, gettime, disarming, absolute times and bad arguments;
 * signalfd taking blocked signals with their siginfo, several per read, mask changes, and
 * poll; epoll over pipes, eventfds, timerfds and signalfds: level- and edge-triggered and
 * one-shot interests, MOD and DEL, the interest surviving a dup and going with the last
 * descriptor, nested instances, a wait that blocks until a child writes, timeouts, and the
 * errors (EEXIST, ENOENT, EPERM for a regular file, EINVAL, ELOOP, EBADF). Output is compared
 * with Linux's (eventfds.expected); time-dependent counts are printed as bounds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *err(long r) {
    if (r >= 0)
        return "ok";
    switch (errno) {
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case ELOOP: return "ELOOP";
    case EFAULT: return "EFAULT";
    case ESPIPE: return "ESPIPE";
    default: return strerror(errno);
    }
}

static void show(const char *what, long r) {
    if (r < 0)
        printf("%-48s %s\n", what, err(r));
    else
        printf("%-48s %ld\n", what, r);
}

static void nap(int ms) {
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

static long rd64(int fd, uint64_t *v) { return read(fd, v, sizeof *v); }

static long wr64(int fd, uint64_t v) { return write(fd, &v, sizeof v); }

static void eventfds(void) {
    int e = eventfd(3, EFD_NONBLOCK);
    uint64_t v = 0;
    show("eventfd(3): write 4", wr64(e, 4));
    long r = rd64(e, &v);
    printf("%-48s %s, value %llu\n", "read", err(r), (unsigned long long)v);
    show("read again (empty, nonblocking)", rd64(e, &v));
    show("write 0xfffffffffffffffe", wr64(e, 0xfffffffffffffffeULL));
    show("write 1 more (full)", wr64(e, 1));
    show("write 0xffffffffffffffff", wr64(e, UINT64_MAX));
    char small[4];
    show("read into 4 bytes", read(e, small, sizeof small));
    show("write 4 bytes", write(e, small, sizeof small));
    show("lseek", lseek(e, 0, SEEK_SET));
    struct stat st;
    fstat(e, &st);
    printf("%-48s %o\n", "fstat mode", st.st_mode);
    close(e);

    int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    for (int i = 0; i < 3; i++) {
        v = 0;
        r = rd64(s, &v);
        printf("%-48s %s, value %llu\n", "semaphore read", err(r), (unsigned long long)v);
    }
    close(s);
    show("eventfd with a bad flag", eventfd(0, 0x10));

    /* A blocking read waits for a child's write. */
    int b = eventfd(0, 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        nap(50);
        wr64(b, 7);
        _exit(0);
    }
    v = 0;
    r = rd64(b, &v);
    printf("%-48s %s, value %llu\n", "blocking read, child writes 7", err(r), (unsigned long long)v);
    waitpid(pid, NULL, 0);
    close(b);
}

static void timerfds(void) {
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    uint64_t n = 0;
    show("timerfd: read unarmed", rd64(t, &n));
    struct itimerspec its = {{0, 0}, {0, 20 * 1000 * 1000}};
    show("settime one-shot 20 ms", timerfd_settime(t, 0, &its, NULL));
    struct itimerspec cur;
    timerfd_gettime(t, &cur);
    printf("%-48s %d\n", "gettime: armed, at most 20 ms left",
           cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20 * 1000 * 1000);
    nap(60);
    long r = rd64(t, &n);
    printf("%-48s %s, %llu expiration\n", "read after 60 ms", err(r), (unsigned long long)n);
    show("read again", rd64(t, &n));
    timerfd_gettime(t, &cur);
    printf("%-48s %ld %ld\n", "gettime after it fired", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

    struct itimerspec per = {{0, 10 * 1000 * 1000}, {0, 10 * 1000 * 1000}};
    timerfd_settime(t, 0, &per, NULL);
    nap(55);
    n = 0;
    r = rd64(t, &n);
    printf("%-48s %s, at least 4: %d\n", "periodic 10 ms, read after 55 ms", err(r), n >= 4);
    struct itimerspec old;
    struct itimerspec off = {{0, 0}, {0, 0}};
    timerfd_settime(t, 0, &off, &old);
    printf("%-48s %ld ns\n", "disarm: old interval", old.it_interval.tv_nsec);
    show("read after disarming", rd64(t, &n));

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = {{0, 0}, now};
    show("settime absolute, already past", timerfd_settime(t, TFD_TIMER_ABSTIME, &abs, NULL));
    n = 0;
    r = rd64(t, &n);
    printf("%-48s %s, %llu expiration\n", "read", err(r), (unsigned long long)n);
    close(t);

    int tb = timerfd_create(CLOCK_REALTIME, 0);
    struct itimerspec soon = {{0, 0}, {0, 30 * 1000 * 1000}};
    timerfd_settime(tb, 0, &soon, NULL);
    n = 0;
    r = rd64(tb, &n);
    printf("%-48s %s, %llu expiration\n", "blocking read of a 30 ms realtime timer", err(r), (unsigned long long)n);
    close(tb);

    show("timerfd_create(CLOCK_PROCESS_CPUTIME_ID)", timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
    show("timerfd_create with a bad flag", timerfd_create(CLOCK_MONOTONIC, 0x10));
    int f = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    show("settime with tv_nsec 1e9", timerfd_settime(f, 0, &bad, NULL));
    show("settime with a bad flag", timerfd_settime(f, 8, &its, NULL));
    show("settime on an eventfd", timerfd_settime(eventfd(0, 0), 0, &its, NULL));
    show("settime with a bad pointer", timerfd_settime(f, 0, (void *)8, NULL));
    close(f);
}

static void signalfds(void) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int s = signalfd(-1, &mask, SFD_NONBLOCK);
    struct signalfd_siginfo si[4];
    show("signalfd: read with nothing pending", read(s, si, sizeof si));
    struct pollfd p = {s, POLLIN, 0};
    show("poll with nothing pending", poll(&p, 1, 0));
    kill(getpid(), SIGUSR1);
    union sigval val = {.sival_int = 42};
    sigqueue(getpid(), SIGUSR2, val);
    show("poll with two pending", poll(&p, 1, 0));
    long r = read(s, si, sizeof si);
    printf("%-48s %ld bytes\n", "read", r);
    for (long i = 0; i < r / (long)sizeof si[0]; i++)
        printf("  signo %u code %d pid is mine %d uid %u int %d\n", si[i].ssi_signo, si[i].ssi_code,
               si[i].ssi_pid == (uint32_t)getpid(), si[i].ssi_uid, si[i].ssi_int);
    show("read into 100 bytes", read(s, si, 100));
    sigset_t only2;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    show("signalfd(s, {SIGUSR2}) returns s", signalfd(s, &only2, 0) == s);
    kill(getpid(), SIGUSR1);
    show("read: SIGUSR1 is not in the mask now", read(s, si, sizeof si));
    sigset_t pending;
    sigpending(&pending);
    printf("%-48s %d\n", "SIGUSR1 still pending", sigismember(&pending, SIGUSR1));
    int s1 = signalfd(-1, &mask, SFD_NONBLOCK);
    r = read(s1, si, sizeof si);
    printf("%-48s %ld bytes, signo %u\n", "another signalfd takes it", r, r > 0 ? si[0].ssi_signo : 0);
    close(s1);
    show("signalfd on a pipe", signalfd(0, &mask, 0) >= 0 ? 0 : -1);
    show("signalfd with a bad flag", syscall(SYS_signalfd4, -1, &mask, 8, 0x10));
    show("signalfd with sizemask 4", syscall(SYS_signalfd4, -1, &mask, 4, 0));

    /* A blocking read waits for a signal from a child. */
    int sb = signalfd(-1, &mask, 0);
    fflush(stdout);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        nap(50);
        kill(parent, SIGUSR2);
        _exit(0);
    }
    r = read(sb, si, sizeof si);
    printf("%-48s %ld bytes, signo %u\n", "blocking read, child sends SIGUSR2", r, r > 0 ? si[0].ssi_signo : 0);
    waitpid(pid, NULL, 0);
    close(sb);
    close(s);
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

static int cmp_events(const void *a, const void *b) {
    const struct epoll_event *x = a, *y = b;
    return x->data.u64 < y->data.u64 ? -1 : x->data.u64 > y->data.u64;
}

/* Waits and prints what came, in data order. */
static void ewait(const char *what, int ep, int max, int timeout) {
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, max, timeout);
    if (n < 0) {
        printf("%-48s %s\n", what, err(n));
        return;
    }
    qsort(ev, n, sizeof ev[0], cmp_events);
    printf("%-48s %d:", what, n);
    for (int i = 0; i < n; i++)
        printf(" [%llu %s%s%s%s]", (unsigned long long)ev[i].data.u64, ev[i].events & EPOLLIN ? "IN" : "",
               ev[i].events & EPOLLOUT ? "OUT" : "", ev[i].events & EPOLLHUP ? "HUP" : "",
               ev[i].events & EPOLLERR ? "ERR" : "");
    printf("\n");
}

static int add(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event e = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int mod(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event e = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

static void epolls(void) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int p[2];
    pipe(p);
    show("epoll: add the pipe's read end (level)", add(ep, p[0], EPOLLIN, 1));
    show("add it again", add(ep, p[0], EPOLLIN, 1));
    show("add the write end for output", add(ep, p[1], EPOLLOUT, 2));
    ewait("wait, nothing written", ep, 8, 0);
    write(p[1], "ab", 2);
    ewait("wait after a write", ep, 8, 0);
    ewait("wait again (level: still there)", ep, 8, 0);
    ewait("wait with maxevents 1", ep, 1, 0);
    ewait("and again with maxevents 1 (the other)", ep, 1, 0);
    char buf[8];
    read(p[0], buf, sizeof buf);

    show("MOD the read end to edge-triggered", mod(ep, p[0], EPOLLIN | EPOLLET, 1));
    show("DEL the write end", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    show("DEL it again", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    show("MOD something not added", mod(ep, p[1], EPOLLIN, 9));
    write(p[1], "x", 1);
    ewait("edge: after a write", ep, 8, 0);
    ewait("edge: nothing new", ep, 8, 0);
    read(p[0], buf, 1);
    write(p[1], "yz", 2);
    read(p[0], buf, 1);
    ewait("edge: a write, a partial read", ep, 8, 0);
    ewait("edge: nothing new after it", ep, 8, 0);
    write(p[1], "w", 1);
    ewait("edge: another write while readable", ep, 8, 0);
    read(p[0], buf, sizeof buf);

    show("MOD to one-shot", mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 1));
    write(p[1], "1", 1);
    ewait("one-shot: first", ep, 8, 0);
    ewait("one-shot: disabled after it", ep, 8, 0);
    show("MOD re-arms it", mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 1));
    ewait("one-shot: again", ep, 8, 0);
    read(p[0], buf, sizeof buf);
    mod(ep, p[0], EPOLLIN, 1);

    int e = eventfd(0, EFD_NONBLOCK);
    add(ep, e, EPOLLIN | EPOLLOUT, 3);
    ewait("eventfd at 0", ep, 8, 0);
    wr64(e, 5);
    ewait("eventfd after a write", ep, 8, 0);
    uint64_t v;
    rd64(e, &v);
    mod(ep, e, EPOLLIN, 3); /* always writable: watch input only from here on */

    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    add(ep, t, EPOLLIN, 4);
    struct itimerspec its = {{0, 0}, {0, 30 * 1000 * 1000}};
    timerfd_settime(t, 0, &its, NULL);
    ewait("timerfd armed for 30 ms, wait up to 5 s", ep, 8, 5000);
    rd64(t, &v);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int s = signalfd(-1, &mask, SFD_NONBLOCK);
    add(ep, s, EPOLLIN, 5);
    ewait("signalfd, nothing pending", ep, 8, 0);
    kill(getpid(), SIGUSR1);
    ewait("signalfd, SIGUSR1 pending", ep, 8, 0);
    struct signalfd_siginfo si;
    read(s, &si, sizeof si);
    sigprocmask(SIG_UNBLOCK, &mask, NULL);

    /* A wait that blocks until a child writes. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        nap(50);
        write(p[1], "c", 1);
        _exit(0);
    }
    ewait("blocking wait, child writes", ep, 8, -1);
    waitpid(pid, NULL, 0);
    read(p[0], buf, sizeof buf);
    ewait("timeout of 30 ms, nothing ready", ep, 8, 30);

    /* Nested instances. */
    int outer = epoll_create1(0);
    show("add an epoll instance to another", add(outer, ep, EPOLLIN, 6));
    ewait("outer, inner has nothing", outer, 8, 0);
    write(p[1], "n", 1);
    ewait("outer, inner has input", outer, 8, 0);
    show("add the outer to the inner (a loop)", add(ep, outer, EPOLLIN, 7));
    show("add an instance to itself", add(ep, ep, EPOLLIN, 8));
    read(p[0], buf, sizeof buf);

    /* An interest lives as long as its description. */
    int d = dup(p[0]);
    close(p[0]);
    write(p[1], "d", 1);
    ewait("after closing the fd, a dup still open", ep, 8, 0);
    close(d);
    ewait("after closing the dup too", ep, 8, 0);
    close(p[1]);

    int f = open("/tmp/epoll-file", O_RDWR | O_CREAT, 0644);
    show("add a regular file", add(ep, f, EPOLLIN, 10));
    close(f);
    unlink("/tmp/epoll-file");
    int null = open("/dev/null", O_RDWR);
    show("add /dev/null", add(ep, null, EPOLLIN, 11));
    close(null);
    show("epoll_ctl on a non-epoll fd", add(e, t, EPOLLIN, 12));
    show("epoll_ctl with a closed fd", add(ep, 99, EPOLLIN, 13));
    show("epoll_ctl with a bad op", epoll_ctl(ep, 7, t, &(struct epoll_event){0}));
    show("epoll_ctl with a bad pointer", epoll_ctl(ep, EPOLL_CTL_MOD, t, (void *)8));
    show("EPOLLEXCLUSIVE on MOD", mod(ep, t, EPOLLIN | EPOLLEXCLUSIVE, 4));
    struct epoll_event ev[2];
    show("epoll_wait with maxevents 0", epoll_wait(ep, ev, 0, 0));
    show("epoll_wait on a non-epoll fd", epoll_wait(e, ev, 2, 0));
    show("epoll_create(0)", epoll_create(0));
    show("epoll_create1 with a bad flag", epoll_create1(1));
    show("read of an epoll fd", read(ep, buf, sizeof buf));
    close(e);
    close(t);
    close(s);
    close(outer);
    close(ep);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    eventfds();
    timerfds();
    signalfds();
    epolls();
    printf("done\n");
    return 0;
}
