/* execve of things that are not valid programs, and of scripts and interpreters at their
 * limits: each case is written to /tmp, made executable, and run by a child, which reports
 * execve's errno (or, if the exec went through, how the new program ended). Cases: empty and
 * text files, "#!" lines (no interpreter, a missing one, nested scripts up to and past the
 * kernel's limit), ELF headers cut short, for another machine, of the wrong type, with no or
 * out-of-range program headers, and dynamic programs whose PT_INTERP names nothing, a
 * directory, a text file, or is not terminated. Output is compared with Linux's
 * (exec_bad.expected). */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case ENOEXEC: return "ENOEXEC";
    case EACCES: return "EACCES";
    case ELOOP: return "ELOOP";
    case ELIBBAD: return "ELIBBAD";
    case EIO: return "EIO";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno %d", e);
        return buf;
    }
    }
}

static void put(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        perror(path);
        exit(1);
    }
    close(fd);
}

static void put_text(const char *path, const char *text) { put(path, text, strlen(text)); }

/* Runs `path` in a child and says what happened. */
static void run(const char *what, const char *path) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        perror("pipe2");
        exit(1);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)path, NULL};
        char *envp[] = {"PATH=/bin:/usr/bin", NULL};
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execve(path, argv, envp);
        int e = errno;
        (void)!write(pipefd[1], &e, sizeof e);
        _exit(127);
    }
    close(pipefd[1]);
    int e = 0;
    ssize_t got = read(pipefd[0], &e, sizeof e);
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got == sizeof e)
        printf("%-34s %s\n", what, err(e));
    else if (WIFEXITED(status))
        printf("%-34s ran, exit %d\n", what, WEXITSTATUS(status));
    else
        printf("%-34s ran, signal %d\n", what, WTERMSIG(status));
    fflush(stdout);
}

static unsigned char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(path);
        exit(1);
    }
    unsigned char *buf = malloc(st.st_size);
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + done, st.st_size - done);
        if (n <= 0) {
            perror("read");
            exit(1);
        }
        done += n;
    }
    close(fd);
    *len = done;
    return buf;
}

/* A copy of `image` with `edit` applied, written to `path`. */
static void put_edited(const char *path, const unsigned char *image, size_t len, size_t keep,
                       void (*edit)(unsigned char *, size_t)) {
    unsigned char *copy = malloc(len);
    memcpy(copy, image, len);
    if (edit)
        edit(copy, len);
    put(path, copy, keep ? keep : len);
    free(copy);
}

static Elf64_Ehdr *ehdr(unsigned char *b) { return (Elf64_Ehdr *)b; }

static Elf64_Phdr *interp_of(unsigned char *b) {
    Elf64_Ehdr *h = ehdr(b);
    for (int i = 0; i < h->e_phnum; i++) {
        Elf64_Phdr *p = (Elf64_Phdr *)(b + h->e_phoff + (size_t)i * h->e_phentsize);
        if (p->p_type == PT_INTERP)
            return p;
    }
    return NULL;
}

static void set_interp(unsigned char *b, const char *name) {
    Elf64_Phdr *p = interp_of(b);
    memset(b + p->p_offset, 0, p->p_filesz);
    memcpy(b + p->p_offset, name, strlen(name) + 1);
}

static void other_machine(unsigned char *b, size_t n) {
    (void)n;
    ehdr(b)->e_machine = ehdr(b)->e_machine == EM_X86_64 ? EM_AARCH64 : EM_X86_64;
}
static void relocatable(unsigned char *b, size_t n) { (void)n, ehdr(b)->e_type = ET_REL; }
static void core_file(unsigned char *b, size_t n) { (void)n, ehdr(b)->e_type = ET_CORE; }
static void no_phdrs(unsigned char *b, size_t n) { (void)n, ehdr(b)->e_phnum = 0; }
static void phdrs_past_end(unsigned char *b, size_t n) { ehdr(b)->e_phoff = n + 4096; }
static void bad_phentsize(unsigned char *b, size_t n) { (void)n, ehdr(b)->e_phentsize = 12; }
static void interp_missing(unsigned char *b, size_t n) { (void)n, set_interp(b, "/nope/ld.so"); }
static void interp_dir(unsigned char *b, size_t n) { (void)n, set_interp(b, "/tmp"); }
static void interp_text(unsigned char *b, size_t n) { (void)n, set_interp(b, "/tmp/x-text"); }
static void interp_long_text(unsigned char *b, size_t n) { (void)n, set_interp(b, "/tmp/x-long"); }
static void interp_script(unsigned char *b, size_t n) { (void)n, set_interp(b, "/tmp/s1"); }
static void interp_unterminated(unsigned char *b, size_t n) {
    (void)n;
    Elf64_Phdr *p = interp_of(b);
    memset(b + p->p_offset, 'a', p->p_filesz);
}
static void interp_past_end(unsigned char *b, size_t n) { interp_of(b)->p_offset = n + 4096; }

/* Scripts /tmp/s1 .. /tmp/s<depth>: each runs the next, the last runs /bin/true. */
static void script_chain(int depth) {
    char path[32], text[64];
    for (int i = 1; i <= depth; i++) {
        snprintf(path, sizeof path, "/tmp/s%d", i);
        if (i < depth)
            snprintf(text, sizeof text, "#!/tmp/s%d\n", i + 1);
        else
            snprintf(text, sizeof text, "#!/bin/true\n");
        put_text(path, text);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    if (strncmp(argv[0], "/tmp/", 5) == 0)
        return 3; /* an intact copy of this program, run by a case below */
    put("/tmp/x-empty", "", 0);
    run("empty file", "/tmp/x-empty");
    put_text("/tmp/x-text", "just some text\n");
    run("text without #!", "/tmp/x-text");
    put_text("/tmp/x-hash", "#!\n");
    run("#! with no interpreter", "/tmp/x-hash");
    put_text("/tmp/x-hash-space", "#!   \n");
    run("#! with only spaces", "/tmp/x-hash-space");
    put_text("/tmp/x-missing", "#!/nonexistent/sh\n");
    run("#! naming a missing interpreter", "/tmp/x-missing");
    put_text("/tmp/x-dir", "#!/tmp\n");
    run("#! naming a directory", "/tmp/x-dir");
    put_text("/tmp/x-true", "#!/bin/true -x\n");
    run("#! /bin/true with an argument", "/tmp/x-true");
    for (int depth = 2; depth <= 7; depth++) {
        char what[40];
        script_chain(depth);
        snprintf(what, sizeof what, "scripts nested %d deep", depth);
        run(what, "/tmp/s1");
    }
    put_text("/tmp/x-noexec", "#!/bin/true\n");
    chmod("/tmp/x-noexec", 0644);
    run("file without execute permission", "/tmp/x-noexec");
    run("a directory", "/tmp");

    size_t len;
    unsigned char *self = slurp("/proc/self/exe", &len);
    put_edited("/tmp/x-elf1", self, len, 0, NULL);
    run("intact copy of a static program", "/tmp/x-elf1");
    put_edited("/tmp/x-elf2", self, len, 4, NULL);
    run("ELF magic only", "/tmp/x-elf2");
    put_edited("/tmp/x-elf3", self, len, 40, NULL);
    run("ELF header cut short", "/tmp/x-elf3");
    put_edited("/tmp/x-elf4", self, len, 0, other_machine);
    run("ELF for another machine", "/tmp/x-elf4");
    put_edited("/tmp/x-elf5", self, len, 0, relocatable);
    run("ELF relocatable object", "/tmp/x-elf5");
    put_edited("/tmp/x-elf6", self, len, 0, core_file);
    run("ELF core file", "/tmp/x-elf6");
    put_edited("/tmp/x-elf7", self, len, 0, no_phdrs);
    run("ELF with no program headers", "/tmp/x-elf7");
    put_edited("/tmp/x-elf8", self, len, 0, phdrs_past_end);
    run("ELF program headers past the end", "/tmp/x-elf8");
    put_edited("/tmp/x-elf9", self, len, 0, bad_phentsize);
    run("ELF with a bad e_phentsize", "/tmp/x-elf9");

    size_t dlen;
    unsigned char *dyn = slurp("/usr/libexec/cairn/dynamic-glibc", &dlen);
    put_edited("/tmp/x-dyn10", dyn, dlen, 0, NULL);
    run("intact copy of a dynamic program", "/tmp/x-dyn10");
    put_edited("/tmp/x-dyn11", dyn, dlen, 0, interp_missing);
    run("PT_INTERP naming nothing", "/tmp/x-dyn11");
    put_edited("/tmp/x-dyn12", dyn, dlen, 0, interp_dir);
    run("PT_INTERP naming a directory", "/tmp/x-dyn12");
    put_edited("/tmp/x-dyn13", dyn, dlen, 0, interp_text);
    run("PT_INTERP naming a text file", "/tmp/x-dyn13");
    {
        char text[300];
        memset(text, 'z', sizeof text - 1);
        text[sizeof text - 1] = 0;
        put_text("/tmp/x-long", text);
    }
    put_edited("/tmp/x-dyn17", dyn, dlen, 0, interp_long_text);
    run("PT_INTERP naming a long text file", "/tmp/x-dyn17");
    script_chain(2);
    put_edited("/tmp/x-dyn14", dyn, dlen, 0, interp_script);
    run("PT_INTERP naming a script", "/tmp/x-dyn14");
    put_edited("/tmp/x-dyn15", dyn, dlen, 0, interp_unterminated);
    run("PT_INTERP not terminated", "/tmp/x-dyn15");
    put_edited("/tmp/x-dyn16", dyn, dlen, 0, interp_past_end);
    run("PT_INTERP past the end", "/tmp/x-dyn16");
    put_edited("/tmp/x-ld", self, len, 0, other_machine);
    {
        unsigned char *copy = malloc(dlen);
        memcpy(copy, dyn, dlen);
        set_interp(copy, "/tmp/x-ld");
        put("/tmp/x-dyn", copy, dlen);
        free(copy);
    }
    run("PT_INTERP for another machine", "/tmp/x-dyn");
    printf("done\n");
    return 0;
}
