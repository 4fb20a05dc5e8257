/* FIFOs (named pipes), as fifo(7) describes them: mkfifo and what stat says, the open rules
 * (a reader waits for a writer and the other way round, O_NONBLOCK readers open at once,
 * O_NONBLOCK writers without a reader get ENXIO, O_RDWR opens at once), data passing between
 * processes that opened the file separately, end-of-file and EPIPE, poll, an open interrupted
 * by a signal (EINTR, and it no longer counts as a reader), lseek, fstat, and the buffer
 * outliving no open end. Output is deterministic, compared with Linux's (fifo.expected). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIFO "/tmp/fifo-test"

static const char *err(int e) {
    switch (e) {
    case 0: return "ok";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case ENXIO: return "ENXIO";
    case EINTR: return "EINTR";
    case EPIPE: return "EPIPE";
    case ESPIPE: return "ESPIPE";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
    }
}

static long check(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, err(errno));
    else
        printf("%s: %ld\n", what, r);
    fflush(stdout);
    return r;
}

/* Opens `path`, printing "what: ok" or the error (descriptor numbers are not printed). */
static int openc(const char *what, const char *path, int flags) {
    int fd = open(path, flags);
    printf("%s: %s\n", what, fd < 0 ? err(errno) : "ok");
    fflush(stdout);
    return fd;
}

static void on_alarm(int sig) { (void)sig; }

static short revents(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    poll(&p, 1, 0);
    return p.revents;
}

int main(void) {
    char buf[64];
    struct stat st, fst;
    signal(SIGPIPE, SIG_IGN);
    unlink(FIFO);

    umask(022);
    check("mkfifo", mkfifo(FIFO, 0666));
    check("mkfifo again", mkfifo(FIFO, 0666));
    check("stat", stat(FIFO, &st));
    printf("is fifo: %d, mode %o, size %ld\n", S_ISFIFO(st.st_mode), st.st_mode & 07777, (long)st.st_size);

    /* Without the other side: a non-blocking reader opens, a non-blocking writer cannot. */
    openc("open wronly|nonblock, no reader", FIFO, O_WRONLY | O_NONBLOCK);
    int r = openc("open rdonly|nonblock", FIFO, O_RDONLY | O_NONBLOCK);
    check("read with no writer (eof)", read(r, buf, sizeof buf));
    int w = openc("open wronly|nonblock, with a reader", FIFO, O_WRONLY | O_NONBLOCK);
    check("read, writer open, nothing written", read(r, buf, sizeof buf));
    printf("poll reader, empty: in=%d hup=%d\n", !!(revents(r) & POLLIN), !!(revents(r) & POLLHUP));
    check("write", write(w, "hello fifo", 10));
    printf("poll reader, data: in=%d\n", !!(revents(r) & POLLIN));
    printf("poll writer: out=%d\n", !!(revents(w) & POLLOUT));
    long n = check("read", read(r, buf, sizeof buf));
    printf("got '%.*s'\n", (int)(n > 0 ? n : 0), buf);
    check("fstat", fstat(w, &fst));
    printf("fstat is fifo: %d, same inode: %d\n", S_ISFIFO(fst.st_mode), fst.st_ino == st.st_ino);
    check("lseek", lseek(r, 0, SEEK_SET));
    check("fcntl F_GETPIPE_SZ", fcntl(w, F_GETPIPE_SZ));
    check("read on the write end", read(w, buf, 1));
    check("write on the read end", write(r, "x", 1));
    close(w);
    check("read after the writer closed (eof)", read(r, buf, sizeof buf));
    printf("poll reader, writer gone: hup=%d\n", !!(revents(r) & POLLHUP));
    w = open(FIFO, O_WRONLY | O_NONBLOCK);
    close(r);
    check("write with no reader", write(w, "x", 1));
    close(w);

    /* O_RDWR opens at once, as both ends. */
    int rw = openc("open rdwr", FIFO, O_RDWR);
    check("write rdwr", write(rw, "both", 4));
    n = check("read rdwr", read(rw, buf, sizeof buf));
    printf("got '%.*s'\n", (int)(n > 0 ? n : 0), buf);
    close(rw);

    /* The buffer goes with the last end: data left in it is gone. */
    rw = open(FIFO, O_RDWR);
    check("write, then close every end", write(rw, "lost", 4));
    close(rw);
    rw = open(FIFO, O_RDWR | O_NONBLOCK);
    check("read after reopening", read(rw, buf, sizeof buf));
    close(rw);

    /* A blocking writer waits for a reader in another process. */
    pid_t child = fork();
    if (child == 0) {
        int fd = open(FIFO, O_WRONLY);
        if (fd < 0)
            _exit(10);
        const char *msg = "from the child";
        if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
            _exit(11);
        _exit(0);
    }
    usleep(100 * 1000);
    r = open(FIFO, O_RDONLY);
    printf("blocking reader opened: %d\n", r >= 0);
    size_t total = 0;
    while ((n = read(r, buf + total, sizeof buf - total)) > 0)
        total += n;
    printf("got '%.*s' then eof\n", (int)total, buf);
    int status;
    waitpid(child, &status, 0);
    printf("writer child exit %d\n", WEXITSTATUS(status));
    close(r);

    /* A blocking reader waits for a writer in another process. */
    child = fork();
    if (child == 0) {
        usleep(100 * 1000);
        int fd = open(FIFO, O_WRONLY);
        if (fd < 0)
            _exit(10);
        write(fd, "late writer", 11);
        _exit(0);
    }
    r = open(FIFO, O_RDONLY);
    printf("reader waited for the writer: %d\n", r >= 0);
    total = 0;
    while ((n = read(r, buf + total, sizeof buf - total)) > 0)
        total += n;
    printf("got '%.*s' then eof\n", (int)total, buf);
    waitpid(child, &status, 0);
    printf("writer child exit %d\n", WEXITSTATUS(status));
    close(r);

    /* A signal interrupts a waiting open; the interrupted reader is not left behind. */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    openc("open rdonly interrupted by a signal", FIFO, O_RDONLY);
    openc("open wronly|nonblock after it", FIFO, O_WRONLY | O_NONBLOCK);

    check("unlink", unlink(FIFO));
    openc("open after unlink", FIFO, O_RDONLY | O_NONBLOCK);
    return 0;
}
