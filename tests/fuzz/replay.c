// SPDX-License-Identifier: MIT
// replay - a main for the fuzz targets without libFuzzer: runs every input
// named on the command line (files, or directories of files) once.
//
// make test links each tests/fuzz/fuzz_<name>.c with this file and gcc, so
// the committed corpus is replayed on every build without clang; under
// make asan the replay runs with ASan and UBSan.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_INPUT (16 * 1024 * 1024) // bytes; larger files are refused

// s_run reads the file at path and passes its bytes to the target. Returns
// 0, or -1 when the file cannot be read.
static int
s_run(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: cannot open\n", path);
        return -1;
    }
    uint8_t *buf = malloc(S_MAX_INPUT);
    size_t   n = buf != NULL ? fread(buf, 1, S_MAX_INPUT, f) : 0;
    int      bad = buf == NULL || ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: cannot read (or over %d bytes)\n", path,
                S_MAX_INPUT);
        free(buf);
        return -1;
    }
    // A copy of exactly n bytes, so that ASan sees a read past the input.
    uint8_t *in = malloc(n > 0 ? n : 1);
    if (in == NULL) {
        free(buf);
        return -1;
    }
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int
s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// s_run_dir runs every regular file of dir, in name order. Adds the inputs
// run to *ran and returns the number of failures.
static int
s_run_dir(const char *dir, int *ran)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: cannot open directory\n", dir);
        return 1;
    }
    char         **names = NULL;
    size_t         n = 0, cap = 0;
    int            failed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *names);
            if (p == NULL) {
                failed++;
                break;
            }
            names = p;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL) {
            failed++;
            break;
        }
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0) {
        qsort(names, n, sizeof *names, s_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (s_run(names[i]) == 0) {
                (*ran)++;
            } else {
                failed++;
            }
        }
        free(names[i]);
    }
    free(names);
    return failed;
}

int
main(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/');
    name = name != NULL ? name + 1 : argv[0];
    int ran = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            failed += s_run_dir(argv[i], &ran);
        } else if (s_run(argv[i]) == 0) {
            ran++;
        } else {
            failed++;
        }
    }
    printf("%s: %d inputs ran, %d unreadable\n", name, ran, failed);
    return failed == 0 && ran > 0 ? 0 : 1;
}
