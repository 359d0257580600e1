// SPDX-License-Identifier: MIT
// gnuplot - drawing pictures with gnuplot (Debian's gnuplot-nox) as a
// child process.
#include "cli/gnuplot.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
ds_gnuplot_available(void)
{
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t      len = colon ? (size_t)(colon - path) : strlen(path);
        char        buf[PATH_MAX];
        if (len > 0 &&
            snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)len, path) <
                (int)sizeof buf &&
            access(buf, X_OK) == 0) {
            return 1;
        }
        path = colon ? colon + 1 : NULL;
    }
    return 0;
}

int
ds_gnuplot_run(const char *script)
{
    char *const argv[] = {"gnuplot", (char *)script, NULL};
    pid_t       pid;
    int         rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (rc != 0) {
        return -rc;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}
