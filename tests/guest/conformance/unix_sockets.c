/* Unix domain sockets (unix(7)): socketpair, named (a socket file) and abstract stream
 * sockets with listen/accept/connect, datagrams with their sender's address and message
 * boundaries, seqpacket, shutdown and end-of-file, EPIPE and SIGPIPE, descriptors passed
 * with SCM_RIGHTS (to a child, MSG_CTRUNC), credentials (SO_PEERCRED, SCM_CREDENTIALS),
 * non-blocking calls, poll on sockets, and the errors. Output is compared with Linux's
 * (unix_sockets.expected). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATH "/tmp/cairn-sock"

static const char *err(long r) {
    if (r >= 0)
        return "ok";
    switch (errno) {
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ENOENT: return "ENOENT";
    case EPIPE: return "EPIPE";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOTCONN: return "ENOTCONN";
    case EISCONN: return "EISCONN";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EADDRINUSE: return "EADDRINUSE";
    case EPROTOTYPE: return "EPROTOTYPE";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EFAULT: return "EFAULT";
    case ENXIO: return "ENXIO";
    default: return strerror(errno);
    }
}

static void show(const char *what, long r) {
    if (r < 0)
        printf("%-46s %s\n", what, err(r));
    else
        printf("%-46s %ld\n", what, r);
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int s) {
    (void)s;
    sigpipes++;
}

static socklen_t addr_of(struct sockaddr_un *a, const char *path, int abstract) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (abstract) {
        a->sun_path[0] = 0;
        memcpy(a->sun_path + 1, path, strlen(path));
        return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path);
    }
    strcpy(a->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static void pairs(void) {
    int sv[2];
    show("socketpair(AF_UNIX, SOCK_STREAM)", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    show("write 5 bytes", write(sv[0], "hello", 5));
    show("write 3 more", write(sv[0], "abc", 3));
    char buf[64] = {0};
    long n = read(sv[1], buf, sizeof buf);
    printf("%-46s %ld \"%.*s\"\n", "read (a stream joins them)", n, (int)n, buf);
    int type = 0;
    socklen_t len = sizeof type;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &len);
    printf("%-46s %d (len %u)\n", "SO_TYPE", type, len);
    struct ucred cr;
    len = sizeof cr;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &len);
    printf("%-46s pid is mine %d uid %u gid %u\n", "SO_PEERCRED", cr.pid == getpid(), cr.uid, cr.gid);
    struct sockaddr_un a;
    len = sizeof a;
    getsockname(sv[0], (struct sockaddr *)&a, &len);
    printf("%-46s len %u family %d\n", "getsockname of a pair", len, a.sun_family);
    struct stat st;
    fstat(sv[0], &st);
    printf("%-46s %d\n", "fstat: S_ISSOCK", S_ISSOCK(st.st_mode));
    struct pollfd p = {sv[1], POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&p, 1, 0);
    printf("%-46s IN %d OUT %d RDHUP %d HUP %d\n", "poll before shutdown", !!(p.revents & POLLIN),
           !!(p.revents & POLLOUT), !!(p.revents & POLLRDHUP), !!(p.revents & POLLHUP));
    show("shutdown(SHUT_WR)", shutdown(sv[0], SHUT_WR));
    poll(&p, 1, 0);
    printf("%-46s IN %d OUT %d RDHUP %d HUP %d\n", "poll of the peer after it", !!(p.revents & POLLIN),
           !!(p.revents & POLLOUT), !!(p.revents & POLLRDHUP), !!(p.revents & POLLHUP));
    show("read: end of file", read(sv[1], buf, sizeof buf));
    show("write after SHUT_WR (MSG_NOSIGNAL)", send(sv[0], "x", 1, MSG_NOSIGNAL));
    show("the other way still works", write(sv[1], "back", 4));
    show("read it", read(sv[0], buf, sizeof buf));
    close(sv[1]);
    sigpipes = 0;
    show("write to a closed peer", write(sv[0], "x", 1));
    printf("%-46s %d\n", "SIGPIPEs", sigpipes);
    close(sv[0]);

    show("socketpair(SOCK_DGRAM)", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    send(sv[0], "one", 3, 0);
    send(sv[0], "three", 5, 0);
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("%-46s %ld \"%.*s\"\n", "recv (one datagram)", n, (int)n, buf);
    n = recv(sv[1], buf, 2, 0);
    printf("%-46s %ld \"%.*s\"\n", "recv 2 bytes of the next", n, (int)n, buf);
    show("recv: nothing left (MSG_DONTWAIT)", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    send(sv[0], "peek", 4, 0);
    n = recv(sv[1], buf, sizeof buf, MSG_PEEK);
    printf("%-46s %ld \"%.*s\"\n", "MSG_PEEK", n, (int)n, buf);
    n = recv(sv[1], buf, 1, MSG_TRUNC);
    printf("%-46s %ld\n", "recv 1 byte with MSG_TRUNC: the whole length", n);
    close(sv[0]);
    close(sv[1]);

    show("socketpair(SOCK_SEQPACKET)", socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    write(sv[0], "ab", 2);
    write(sv[0], "cde", 3);
    n = read(sv[1], buf, sizeof buf);
    printf("%-46s %ld \"%.*s\"\n", "read (one record)", n, (int)n, buf);
    close(sv[0]);
    show("read the rest after close", read(sv[1], buf, sizeof buf));
    show("then end of file", read(sv[1], buf, sizeof buf));
    close(sv[1]);
}

static void named(int abstract) {
    const char *what = abstract ? "abstract" : "path";
    struct sockaddr_un a;
    socklen_t alen = addr_of(&a, abstract ? "cairn-test" : PATH, abstract);
    int srv = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("== %s names\n", what);
    show("bind", bind(srv, (struct sockaddr *)&a, alen));
    if (!abstract) {
        struct stat st;
        stat(PATH, &st);
        printf("%-46s %d\n", "the socket file is there: S_ISSOCK", S_ISSOCK(st.st_mode));
        show("open(2) of it", open(PATH, O_RDWR));
    }
    int other = socket(AF_UNIX, SOCK_STREAM, 0);
    show("bind another socket to the same name", bind(other, (struct sockaddr *)&a, alen));
    close(other);
    int early = socket(AF_UNIX, SOCK_STREAM, 0);
    show("connect before listen", connect(early, (struct sockaddr *)&a, alen));
    close(early);
    show("listen", listen(srv, 4));
    struct sockaddr_un got;
    socklen_t glen = sizeof got;
    getsockname(srv, (struct sockaddr *)&got, &glen);
    printf("%-46s len %u, same name %d\n", "getsockname", glen,
           memcmp(got.sun_path, a.sun_path, alen - offsetof(struct sockaddr_un, sun_path)) == 0);
    fcntl(srv, F_SETFL, O_NONBLOCK);
    show("accept with nothing pending (non-blocking)", accept(srv, NULL, NULL));
    fcntl(srv, F_SETFL, 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&a, alen) < 0)
            _exit(1);
        write(c, "ping", 4);
        char b[8];
        long n = read(c, b, sizeof b);
        _exit(n == 4 && memcmp(b, "pong", 4) == 0 ? 0 : 2);
    }
    struct sockaddr_un peer;
    socklen_t plen = sizeof peer;
    int conn = accept(srv, (struct sockaddr *)&peer, &plen);
    printf("%-46s %s, peer address len %u\n", "accept", err(conn), plen);
    char b[8];
    long n = read(conn, b, sizeof b);
    printf("%-46s %ld \"%.*s\"\n", "read from the client", n, (int)n, b);
    write(conn, "pong", 4);
    int status;
    waitpid(pid, &status, 0);
    printf("%-46s %d\n", "client's exit status", WEXITSTATUS(status));
    struct ucred cr;
    socklen_t clen = sizeof cr;
    getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cr, &clen);
    printf("%-46s %d\n", "SO_PEERCRED: the client's pid", cr.pid == pid);
    show("read after the client exited", read(conn, b, sizeof b));
    close(conn);

    /* A pending connection can be polled for. */
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c2, (struct sockaddr *)&a, alen);
    struct pollfd p = {srv, POLLIN, 0};
    show("poll of the listener with one pending", poll(&p, 1, 0));
    int acc = accept4(srv, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    printf("%-46s %s, cloexec %d, nonblock %d\n", "accept4(SOCK_CLOEXEC|SOCK_NONBLOCK)", err(acc),
           !!(fcntl(acc, F_GETFD) & FD_CLOEXEC), !!(fcntl(acc, F_GETFL) & O_NONBLOCK));
    show("read with nothing there (non-blocking)", read(acc, b, sizeof b));
    show("connect again (already connected)", connect(c2, (struct sockaddr *)&a, alen));
    close(acc);
    close(c2);
    close(srv);
    int late = socket(AF_UNIX, SOCK_STREAM, 0);
    show("connect after the listener closed", connect(late, (struct sockaddr *)&a, alen));
    close(late);
    if (!abstract) {
        int again = socket(AF_UNIX, SOCK_STREAM, 0);
        show("bind while the file is still there", bind(again, (struct sockaddr *)&a, alen));
        unlink(PATH);
        show("bind after unlinking it", bind(again, (struct sockaddr *)&a, alen));
        close(again);
        unlink(PATH);
    } else {
        int again = socket(AF_UNIX, SOCK_STREAM, 0);
        show("bind the abstract name again", bind(again, (struct sockaddr *)&a, alen));
        close(again);
    }
}

static void datagrams(void) {
    struct sockaddr_un a, b;
    socklen_t alen = addr_of(&a, "/tmp/cairn-dgram-a", 0), blen = addr_of(&b, "/tmp/cairn-dgram-b", 0);
    int sa = socket(AF_UNIX, SOCK_DGRAM, 0), sb = socket(AF_UNIX, SOCK_DGRAM, 0);
    printf("== datagrams\n");
    bind(sa, (struct sockaddr *)&a, alen);
    bind(sb, (struct sockaddr *)&b, blen);
    show("sendto a from b", sendto(sb, "to-a", 4, 0, (struct sockaddr *)&a, alen));
    char buf[32];
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    long n = recvfrom(sa, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    printf("%-46s %ld \"%.*s\" from %s\n", "recvfrom", n, (int)n, buf, from.sun_path);
    show("send on an unconnected datagram socket", send(sa, "x", 1, 0));
    show("connect b to a", connect(sb, (struct sockaddr *)&a, alen));
    show("send", send(sb, "hi", 2, 0));
    char big[100];
    memset(big, 'x', sizeof big);
    send(sb, big, sizeof big, 0);
    recv(sa, buf, sizeof buf, 0);
    struct iovec iov = {buf, 10};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    n = recvmsg(sa, &m, 0);
    printf("%-46s %ld, MSG_TRUNC %d\n", "recvmsg of 100 bytes into 10", n, !!(m.msg_flags & MSG_TRUNC));
    int stream = socket(AF_UNIX, SOCK_STREAM, 0);
    show("connect a stream socket to a datagram name", connect(stream, (struct sockaddr *)&a, alen));
    close(stream);
    close(sa);
    show("send to a closed peer", send(sb, "x", 1, 0));
    close(sb);
    unlink("/tmp/cairn-dgram-a");
    unlink("/tmp/cairn-dgram-b");
}

static void passing(void) {
    printf("== passing descriptors\n");
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int pipefd[2];
    pipe(pipefd);
    char data = 'D';
    struct iovec iov = {&data, 1};
    char control[CMSG_SPACE(2 * sizeof(int))];
    memset(control, 0, sizeof control);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {pipefd[0], pipefd[1]};
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    show("sendmsg with two descriptors", sendmsg(sv[0], &m, 0));
    close(pipefd[0]);
    close(pipefd[1]);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char got;
        char ctl[CMSG_SPACE(2 * sizeof(int))];
        struct iovec v = {&got, 1};
        struct msghdr r = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        if (recvmsg(sv[1], &r, 0) != 1)
            _exit(1);
        struct cmsghdr *h = CMSG_FIRSTHDR(&r);
        if (!h || h->cmsg_type != SCM_RIGHTS || h->cmsg_len != CMSG_LEN(2 * sizeof(int)))
            _exit(2);
        int in[2];
        memcpy(in, CMSG_DATA(h), sizeof in);
        write(in[1], "through", 7);
        char b[8] = {0};
        long n = read(in[0], b, 7);
        _exit(n == 7 && strcmp(b, "through") == 0 && got == 'D' ? 0 : 3);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("%-46s %d\n", "child used the passed pipe: exit status", WEXITSTATUS(status));

    /* Too little room for the descriptors: MSG_CTRUNC. */
    int f = open("/proc/self/stat", O_RDONLY);
    fds[0] = f;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    m.msg_controllen = CMSG_SPACE(sizeof(int));
    sendmsg(sv[0], &m, 0);
    close(f);
    char got;
    char small[CMSG_SPACE(0)];
    struct iovec v = {&got, 1};
    struct msghdr r = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = small, .msg_controllen = sizeof small};
    long n = recvmsg(sv[1], &r, 0);
    printf("%-46s %ld, MSG_CTRUNC %d, controllen %zu\n", "recvmsg with no room for the descriptor", n,
           !!(r.msg_flags & MSG_CTRUNC), (size_t)r.msg_controllen);

    /* Credentials. */
    int on = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    write(sv[0], "c", 1);
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    r.msg_control = ctl;
    r.msg_controllen = sizeof ctl;
    r.msg_flags = 0;
    n = recvmsg(sv[1], &r, 0);
    struct cmsghdr *h = CMSG_FIRSTHDR(&r);
    struct ucred cr = {0};
    if (h && h->cmsg_type == SCM_CREDENTIALS)
        memcpy(&cr, CMSG_DATA(h), sizeof cr);
    printf("%-46s %ld, SCM_CREDENTIALS %d, pid is mine %d\n", "recvmsg with SO_PASSCRED", n,
           h && h->cmsg_type == SCM_CREDENTIALS, cr.pid == getpid());

    cm->cmsg_len = CMSG_LEN(sizeof(int));
    fds[0] = 99;
    memcpy(CMSG_DATA(cm), fds, sizeof(int));
    show("sendmsg passing a closed descriptor", sendmsg(sv[0], &m, 0));
    close(sv[0]);
    close(sv[1]);
}

static void errors(void) {
    printf("== errors\n");
    show("socket(AF_UNIX, type 7)", socket(AF_UNIX, 7, 0));
    show("socket(AF_UNIX, SOCK_STREAM, protocol 5)", socket(AF_UNIX, SOCK_STREAM, 5));
    int p[2];
    pipe(p);
    show("listen on a pipe", listen(p[0], 1));
    close(p[0]);
    close(p[1]);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    show("listen on a datagram socket", listen(d, 1));
    show("accept on a datagram socket", accept(d, NULL, NULL));
    close(d);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    show("listen on an unbound stream socket", listen(s, 1));
    show("accept on a socket not listening", accept(s, NULL, NULL));
    show("send on an unconnected stream socket", send(s, "x", 1, MSG_NOSIGNAL));
    char b[4];
    show("recv on an unconnected stream socket", recv(s, b, sizeof b, MSG_DONTWAIT));
    struct sockaddr_un a;
    socklen_t alen = sizeof a;
    show("getpeername unconnected", getpeername(s, (struct sockaddr *)&a, &alen));
    show("shutdown unconnected", shutdown(s, SHUT_RDWR));
    show("shutdown how=5", shutdown(s, 5));
    int v;
    socklen_t vlen = sizeof v;
    show("getsockopt SO_ERROR", getsockopt(s, SOL_SOCKET, SO_ERROR, &v, &vlen));
    show("getsockopt of an unknown option", getsockopt(s, SOL_SOCKET, 9999, &v, &vlen));
    alen = addr_of(&a, "/nonexistent/dir/sock", 0);
    show("connect to a missing path", connect(s, (struct sockaddr *)&a, alen));
    show("bind in a missing directory", bind(s, (struct sockaddr *)&a, alen));
    alen = addr_of(&a, "/etc/passwd", 0);
    show("connect to a regular file", connect(s, (struct sockaddr *)&a, alen));
    show("bind with addrlen 1", bind(s, (struct sockaddr *)&a, 1));
    show("bind with a bad pointer", bind(s, (struct sockaddr *)8, sizeof a));
    alen = addr_of(&a, "cairn-once", 1);
    show("bind an abstract name", bind(s, (struct sockaddr *)&a, alen));
    show("bind the same socket twice", bind(s, (struct sockaddr *)&a, alen));
    close(s);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, on_sigpipe);
    unlink(PATH);
    pairs();
    named(0);
    named(1);
    datagrams();
    passing();
    errors();
    printf("done\n");
    return 0;
}
