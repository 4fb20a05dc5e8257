/* Advisory locks (fcntl(2) record and open-file-description locks, flock(2)): conflicts
 * between processes and what F_GETLK reports of them, ranges split and merged, locks to the
 * end of the file, F_SETLKW waiting until the holder lets go, EDEADLK for two processes that
 * would wait for each other, a process's record locks dropped when it closes any descriptor
 * of the file or exits, OFD locks owned by the description (so they conflict within one
 * process), flock's separate space shared by dup and fork, and the errors. Output is
 * compared with Linux's (locks.expected). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FILE_NAME "/tmp/locks-test"

static const char *err(int r) {
    if (r >= 0)
        return "ok";
    switch (errno) {
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EDEADLK: return "EDEADLK";
    case EINTR: return "EINTR";
    default: return strerror(errno);
    }
}

static int lock(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

/* What F_GETLK says about a `type` lock on start..len. */
static void getlk(const char *what, int fd, int cmd, short type, off_t start, off_t len, pid_t expect_pid) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    int r = fcntl(fd, cmd, &fl);
    if (r < 0) {
        printf("%-44s %s\n", what, err(r));
    } else if (fl.l_type == F_UNLCK) {
        printf("%-44s unlocked\n", what);
    } else {
        const char *who = fl.l_pid == expect_pid ? "the expected owner" : fl.l_pid == -1 ? "pid -1" : "someone else";
        printf("%-44s %s lock at %ld len %ld, held by %s\n", what, fl.l_type == F_WRLCK ? "write" : "read",
               (long)fl.l_start, (long)fl.l_len, who);
    }
}

static void nap(int ms) {
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

/* Runs `body` in a child and waits for it. */
static void in_child(void (*body)(int fd, pid_t parent), int fd) {
    pid_t parent = getpid();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        body(fd, parent);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static void child_sees_parent(int fd, pid_t parent) {
    getlk("child: F_GETLK write 0..100", fd, F_GETLK, F_WRLCK, 0, 100, parent);
    printf("%-44s %s\n", "child: F_SETLK write 50..60", err(lock(fd, F_SETLK, F_WRLCK, 50, 10)));
    printf("%-44s %s\n", "child: F_SETLK read 100..200", err(lock(fd, F_SETLK, F_RDLCK, 100, 100)));
}

static void child_sees_split(int fd, pid_t parent) {
    getlk("child: F_GETLK write 0..100", fd, F_GETLK, F_WRLCK, 0, 100, parent);
    getlk("child: F_GETLK write 45..55", fd, F_GETLK, F_WRLCK, 45, 10, parent);
    getlk("child: F_GETLK write 50..1000", fd, F_GETLK, F_WRLCK, 50, 950, parent);
}

static void child_sees_mixed(int fd, pid_t parent) {
    getlk("child: F_GETLK read 45..50", fd, F_GETLK, F_RDLCK, 45, 5, parent);
    getlk("child: F_GETLK write 45..50", fd, F_GETLK, F_WRLCK, 45, 5, parent);
}

static void child_sees_merged(int fd, pid_t parent) {
    getlk("child: F_GETLK write 0..1000", fd, F_GETLK, F_WRLCK, 0, 1000, parent);
}

static void child_sees_to_end(int fd, pid_t parent) {
    getlk("child: F_GETLK write 1000000..", fd, F_GETLK, F_WRLCK, 1000000, 1, parent);
    getlk("child: F_GETLK write 0..10", fd, F_GETLK, F_WRLCK, 0, 10, parent);
}

static void child_tries(int fd, pid_t parent) {
    (void)parent;
    printf("%-44s %s\n", "child: F_SETLK write 0..100", err(lock(fd, F_SETLK, F_WRLCK, 0, 100)));
}

static void record_locks(void) {
    int fd = open(FILE_NAME, O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("%-44s %s\n", "parent: F_SETLK write 0..100", err(lock(fd, F_SETLK, F_WRLCK, 0, 100)));
    in_child(child_sees_parent, fd);
    printf("%-44s %s\n", "parent: F_SETLK unlock 40..60", err(lock(fd, F_SETLK, F_UNLCK, 40, 20)));
    in_child(child_sees_split, fd);
    printf("%-44s %s\n", "parent: F_SETLK read 40..60", err(lock(fd, F_SETLK, F_RDLCK, 40, 20)));
    in_child(child_sees_mixed, fd);
    printf("%-44s %s\n", "parent: F_SETLK write 40..60", err(lock(fd, F_SETLK, F_WRLCK, 40, 20)));
    in_child(child_sees_merged, fd);
    getlk("parent: F_GETLK on its own lock", fd, F_GETLK, F_WRLCK, 0, 100, getpid());
    printf("%-44s %s\n", "parent: F_SETLK unlock all (len 0)", err(lock(fd, F_SETLK, F_UNLCK, 0, 0)));
    printf("%-44s %s\n", "parent: F_SETLK write 500.. (len 0)", err(lock(fd, F_SETLK, F_WRLCK, 500, 0)));
    in_child(child_sees_to_end, fd);
    printf("%-44s %s\n", "parent: F_SETLK write 500-100..500 (len -100)", err(lock(fd, F_SETLK, F_WRLCK, 500, -100)));
    getlk("parent: F_GETLK at 450 on its own lock", fd, F_GETLK, F_WRLCK, 450, 1, getpid());
    int other = open(FILE_NAME, O_RDWR);
    close(other);
    printf("parent closed another descriptor of the file\n");
    in_child(child_tries, fd);
    close(fd);
}

/* F_SETLKW waits for the holder: the holder sets a shared flag just before it unlocks. */
static void waits(void) {
    volatile int *flag = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *flag = 0;
    int fd = open(FILE_NAME, O_RDWR);
    int ready[2];
    pipe(ready);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        lock(fd, F_SETLK, F_WRLCK, 0, 10);
        write(ready[1], "x", 1);
        nap(100);
        *flag = 1;
        lock(fd, F_SETLK, F_UNLCK, 0, 10);
        nap(100);
        _exit(0);
    }
    char c;
    read(ready[0], &c, 1);
    printf("%-44s %s\n", "F_SETLK while the child holds it", err(lock(fd, F_SETLK, F_WRLCK, 5, 1)));
    int r = lock(fd, F_SETLKW, F_WRLCK, 5, 1);
    printf("%-44s %s, after the child let go: %d\n", "F_SETLKW", err(r), *flag);
    waitpid(pid, NULL, 0);
    lock(fd, F_SETLK, F_UNLCK, 0, 0);
    close(fd);
    close(ready[0]);
    close(ready[1]);
}

/* Parent holds 0..10 and wants 10..20; the child holds 10..20 and wants 0..10. */
static void deadlock(void) {
    int fd = open(FILE_NAME, O_RDWR);
    int ready[2];
    pipe(ready);
    lock(fd, F_SETLK, F_WRLCK, 0, 10);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        lock(fd, F_SETLK, F_WRLCK, 10, 10);
        write(ready[1], "x", 1);
        int r = lock(fd, F_SETLKW, F_WRLCK, 0, 10);
        _exit(r < 0 && errno == EDEADLK ? 1 : 0);
    }
    char c;
    read(ready[0], &c, 1);
    nap(100);
    int r = lock(fd, F_SETLKW, F_WRLCK, 10, 10);
    int parent_deadlk = r < 0 && errno == EDEADLK;
    if (parent_deadlk)
        lock(fd, F_SETLK, F_UNLCK, 0, 10); /* lets the child have it */
    int status;
    waitpid(pid, &status, 0);
    int child_deadlk = WEXITSTATUS(status) == 1;
    printf("%-44s %d\n", "waits that ended in EDEADLK (of two)", parent_deadlk + child_deadlk);
    lock(fd, F_SETLK, F_UNLCK, 0, 0);
    close(fd);
    close(ready[0]);
    close(ready[1]);
}

static void exits_release(void) {
    int fd = open(FILE_NAME, O_RDWR);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        lock(fd, F_SETLK, F_WRLCK, 0, 0);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("%-44s %s\n", "F_SETLK after the holder exited", err(lock(fd, F_SETLK, F_WRLCK, 0, 0)));
    lock(fd, F_SETLK, F_UNLCK, 0, 0);
    close(fd);
}

static void ofd_locks(void) {
    int a = open(FILE_NAME, O_RDWR), b = open(FILE_NAME, O_RDWR);
    printf("%-44s %s\n", "F_OFD_SETLK write 0..10 on a", err(lock(a, F_OFD_SETLK, F_WRLCK, 0, 10)));
    printf("%-44s %s\n", "F_OFD_SETLK write 5..6 on b (same process)", err(lock(b, F_OFD_SETLK, F_WRLCK, 5, 1)));
    getlk("F_OFD_GETLK on b", b, F_OFD_GETLK, F_WRLCK, 0, 100, -1);
    printf("%-44s %s\n", "F_SETLK (process lock) on b", err(lock(b, F_SETLK, F_WRLCK, 0, 1)));
    int d = dup(a);
    printf("%-44s %s\n", "F_OFD_SETLK on a dup of a", err(lock(d, F_OFD_SETLK, F_WRLCK, 0, 10)));
    close(a);
    printf("%-44s %s\n", "b, after closing a (its dup still open)", err(lock(b, F_OFD_SETLK, F_WRLCK, 5, 1)));
    close(d);
    printf("%-44s %s\n", "b, after closing the dup too", err(lock(b, F_OFD_SETLK, F_WRLCK, 5, 1)));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1, .l_pid = 1};
    printf("%-44s %s\n", "F_OFD_SETLK with l_pid set", err(fcntl(b, F_OFD_SETLK, &fl)));
    close(b);
}

static void child_flocks(int fd, pid_t parent) {
    (void)parent;
    printf("%-44s %s\n", "child: LOCK_EX|LOCK_NB on the inherited fd", err(flock(fd, LOCK_EX | LOCK_NB)));
}

static void flocks(void) {
    int a = open(FILE_NAME, O_RDWR), b = open(FILE_NAME, O_RDONLY);
    printf("%-44s %s\n", "flock LOCK_EX on a", err(flock(a, LOCK_EX)));
    printf("%-44s %s\n", "flock LOCK_EX|LOCK_NB on b", err(flock(b, LOCK_EX | LOCK_NB)));
    printf("%-44s %s\n", "flock LOCK_SH|LOCK_NB on b", err(flock(b, LOCK_SH | LOCK_NB)));
    printf("%-44s %s\n", "fcntl write lock on a file flocked", err(lock(a, F_SETLK, F_WRLCK, 0, 0)));
    lock(a, F_SETLK, F_UNLCK, 0, 0);
    in_child(child_flocks, a);
    int d = dup(a);
    close(a);
    printf("%-44s %s\n", "b, after closing a (its dup still open)", err(flock(b, LOCK_SH | LOCK_NB)));
    printf("%-44s %s\n", "LOCK_SH on the dup (a conversion)", err(flock(d, LOCK_SH)));
    printf("%-44s %s\n", "LOCK_SH|LOCK_NB on b now", err(flock(b, LOCK_SH | LOCK_NB)));
    printf("%-44s %s\n", "LOCK_EX|LOCK_NB on the dup", err(flock(d, LOCK_EX | LOCK_NB)));
    printf("%-44s %s\n", "LOCK_UN on b", err(flock(b, LOCK_UN)));
    printf("%-44s %s\n", "LOCK_EX|LOCK_NB on the dup again", err(flock(d, LOCK_EX | LOCK_NB)));
    close(d);
    printf("%-44s %s\n", "LOCK_EX|LOCK_NB on b after the last close", err(flock(b, LOCK_EX | LOCK_NB)));
    close(b);
}

static void errors(void) {
    int rw = open(FILE_NAME, O_RDWR), ro = open(FILE_NAME, O_RDONLY), wo = open(FILE_NAME, O_WRONLY);
    struct flock fl = {.l_type = 7, .l_whence = SEEK_SET};
    printf("%-44s %s\n", "l_type 7", err(fcntl(rw, F_SETLK, &fl)));
    fl.l_type = F_WRLCK;
    fl.l_whence = 9;
    printf("%-44s %s\n", "l_whence 9", err(fcntl(rw, F_SETLK, &fl)));
    fl.l_whence = SEEK_SET;
    fl.l_start = -5;
    printf("%-44s %s\n", "l_start -5", err(fcntl(rw, F_SETLK, &fl)));
    printf("%-44s %s\n", "read lock on an O_WRONLY fd", err(lock(wo, F_SETLK, F_RDLCK, 0, 1)));
    printf("%-44s %s\n", "write lock on an O_RDONLY fd", err(lock(ro, F_SETLK, F_WRLCK, 0, 1)));
    getlk("F_GETLK asking about F_UNLCK", rw, F_GETLK, F_UNLCK, 0, 1, 0);
    printf("%-44s %s\n", "F_SETLK on a closed fd", err(lock(99, F_SETLK, F_WRLCK, 0, 1)));
    printf("%-44s %s\n", "F_SETLK with a bad pointer", err(fcntl(rw, F_SETLK, (void *)8)));
    printf("%-44s %s\n", "flock with a bad operation", err(flock(rw, 3)));
    printf("%-44s %s\n", "flock on a closed fd", err(flock(99, LOCK_EX)));
    lseek(rw, 200, SEEK_SET);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_CUR;
    fl.l_start = -50;
    fl.l_len = 10;
    printf("%-44s %s\n", "SEEK_CUR -50 at offset 200", err(fcntl(rw, F_SETLK, &fl)));
    close(rw);
    close(ro);
    close(wo);
}

static void child_sees_cur(int fd, pid_t parent) {
    getlk("child: F_GETLK write 0..1000", fd, F_GETLK, F_WRLCK, 0, 1000, parent);
}

int main(void) {
    record_locks();
    waits();
    deadlock();
    exits_release();
    ofd_locks();
    flocks();
    errors();
    int fd = open(FILE_NAME, O_RDWR);
    lseek(fd, 200, SEEK_SET);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = -50, .l_len = 10};
    fcntl(fd, F_SETLK, &fl);
    in_child(child_sees_cur, fd);
    close(fd);
    unlink(FILE_NAME);
    printf("done\n");
    return 0;
}
