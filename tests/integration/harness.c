// SPDX-License-Identifier: MIT
// harness - real descent processes for integration tests: spawn, wait with
// a deadline, capture output, free ports.
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *
th_bin(void)
{
    const char *b = getenv("DESCENT_BIN");
    return b ? b : "build/release/descent";
}

void
th_tmpdir(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/descent-it-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

void
th_spawn(th_proc_t *p, const char *dir, const char *name,
         const char *const *args)
{
    const char *argv[64];
    int         n = 0;
    argv[n++] = th_bin();
    for (int i = 0; args[i] && n < 63; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    snprintf(p->log, sizeof p->log, "%s/%s.log", dir, name);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, p->log,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc =
        posix_spawn(&p->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "cannot spawn %s: %s", argv[0], strerror(rc));
    p->status = -1;
    p->signal = 0;
}

bool
th_wait(th_proc_t *p, int timeout_ms)
{
    if (p->pid == 0) {
        return true;
    }
    struct timespec t0, now, nap = {.tv_nsec = 10 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int   st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            p->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            return true;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - t0.tv_sec) * 1000 +
                  (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms > timeout_ms) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->pid = 0;
            p->status = -1;
            p->signal = SIGKILL;
            return false;
        }
        nanosleep(&nap, NULL);
    }
}

void
th_kill(th_proc_t *p, int sig)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
    }
}

char *
th_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf) {
        size_t got = fread(buf, 1, (size_t)n, f);
        buf[got] = '\0';
    }
    fclose(f);
    return buf;
}

int
th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t          len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

double
th_json_number(const char *s, const char *key, const char **next)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    if (!p) {
        return NAN;
    }
    p += strlen(pat);
    char  *end;
    double v = strtod(p, &end);
    if (next) {
        *next = end;
    }
    return end == p ? NAN : v;
}
