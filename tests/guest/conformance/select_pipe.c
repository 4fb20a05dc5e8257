// select(2) and poll(2) on a pipe: not ready, then readable after a write, a zero timeout
// returns at once, a closed descriptor is EBADF. Same output on Linux.
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/select.h>
#include <unistd.h>

int main(void) {
    int p[2];
    if (pipe(p) != 0) return 1;
    fd_set r;
    struct timeval tv = {0, 0};
    FD_ZERO(&r); FD_SET(p[0], &r);
    printf("empty: %d\n", select(p[0] + 1, &r, 0, 0, &tv));
    if (write(p[1], "x", 1) != 1) return 1;
    FD_ZERO(&r); FD_SET(p[0], &r);
    tv.tv_sec = 1;
    int n = select(p[0] + 1, &r, 0, 0, &tv);
    printf("after write: %d readable=%d\n", n, FD_ISSET(p[0], &r) != 0);
    fd_set w; FD_ZERO(&w); FD_SET(p[1], &w);
    printf("writable: %d\n", select(p[1] + 1, 0, &w, 0, 0));
    struct pollfd pf = { p[0], POLLIN, 0 };
    n = poll(&pf, 1, 0);
    printf("poll: %d revents=%#x\n", n, pf.revents);
    close(p[1]);
    char c; (void)read(p[0], &c, 1);
    pf.revents = 0;
    n = poll(&pf, 1, 0);
    printf("poll after close: %d hup=%d\n", n, (pf.revents & POLLHUP) != 0);
    FD_ZERO(&r); FD_SET(p[1], &r); tv.tv_sec = 0;
    int bad = select(p[1] + 1, &r, 0, 0, &tv);
    printf("closed fd: %d %s\n", bad, errno == EBADF ? "EBADF" : "other");
    return 0;
}
