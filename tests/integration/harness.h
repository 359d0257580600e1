// SPDX-License-Identifier: MIT
// harness - real descent processes for integration tests: spawn, wait with
// a deadline, capture output, free ports.
#ifndef DS_TEST_HARNESS_H
#define DS_TEST_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include <check.h>

// th_proc_t is one child process whose stdout and stderr go to a file.
typedef struct {
    pid_t pid;      // the child, 0 once reaped
    char  log[256]; // path of its captured output
    int   status;   // exit status once reaped, -1 before
    int   signal;   // terminating signal once reaped, 0 if none
} th_proc_t;

// th_bin returns the descent binary under test (env DESCENT_BIN).
const char *th_bin(void);

// th_tmpdir makes a fresh directory under /tmp and returns its path in buf.
void th_tmpdir(char *buf, size_t len);

// th_spawn starts `descent args...` (args NULL-terminated, without the
// binary) with output captured to dir/name.log. Fails the test on error.
void th_spawn(th_proc_t *p, const char *dir, const char *name,
              const char *const *args);

// th_wait waits up to timeout_ms for p to exit. Returns true if it exited
// (p->status / p->signal are set); on timeout kills it with SIGKILL, reaps
// it and returns false.
bool th_wait(th_proc_t *p, int timeout_ms);

// th_kill sends sig to p if it still runs.
void th_kill(th_proc_t *p, int sig);

// th_slurp returns the whole file at path, NUL-terminated (caller frees),
// or NULL.
char *th_slurp(const char *path);

// th_free_port returns a TCP port on 127.0.0.1 that was free just now.
int th_free_port(void);

// th_json_number finds "key": in s (starting at s) and returns the number
// after it, or NaN if absent or null. *next (may be NULL) receives the
// position after the number.
double th_json_number(const char *s, const char *key, const char **next);

#endif
