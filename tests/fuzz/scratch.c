// SPDX-License-Identifier: MIT
// scratch - per-process temporary files for the fuzz targets whose parsers
// take a path.
#include "tests/fuzz/scratch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// s_path holds each slot's file name once it exists; "" before.
static char s_path[FZ_SCRATCH_SLOTS][64];

static void
s_cleanup(void)
{
    for (unsigned i = 0; i < FZ_SCRATCH_SLOTS; i++) {
        if (s_path[i][0] != '\0') {
            unlink(s_path[i]);
        }
    }
}

static void
s_fail(const char *what, const char *path)
{
    fprintf(stderr, "fuzz harness: %s %s failed\n", what, path);
    abort();
}

const char *
fz_scratch_write(unsigned slot, const void *data, size_t len)
{
    static int registered;
    if (slot >= FZ_SCRATCH_SLOTS) {
        s_fail("slot", "(out of range)");
    }
    char *path = s_path[slot];
    if (path[0] == '\0') {
        snprintf(path, sizeof s_path[slot], "/tmp/descent-fuzz-%u-XXXXXX",
                 slot);
        int fd = mkstemp(path);
        if (fd < 0) {
            s_fail("mkstemp", path);
        }
        close(fd);
        if (!registered) {
            atexit(s_cleanup);
            registered = 1;
        }
    }
    // Rewritten from scratch each time: a parser may keep the file open
    // only within one call, so truncation here is safe.
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        s_fail("fopen", path);
    }
    if (len > 0 && fwrite(data, 1, len, f) != len) {
        s_fail("fwrite", path);
    }
    if (fclose(f) != 0) {
        s_fail("fclose", path);
    }
    return path;
}
