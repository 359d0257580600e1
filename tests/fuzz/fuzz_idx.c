// SPDX-License-Identifier: MIT
// fuzz_idx - IDX3 image and IDX1 label files (plain or gzip) through
// ds_idx_load, ds_idx_load_range and ds_idx_count.
//
// Input layout: a 2-byte little-endian length L, then L bytes of the image
// file (cut short at the end of the input), then the label file.
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/idx.h"
#include "tests/fuzz/scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_fail(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_idx: %s (%s)\n", what, err);
    abort();
}

// s_check verifies a loaded dataset: pixels in [0, 1], labels below the
// class count, and the number of examples that was asked for.
static void
s_check(const ds_dataset_t *d, size_t want)
{
    if (d->n == 0 || d->dim == 0 || d->classes < 2 || d->classes > 256) {
        s_fail("bad shape", "");
    }
    if (want != 0 && d->n != want) {
        s_fail("wrong number of examples", "");
    }
    for (size_t i = 0; i < d->n; i++) {
        if (d->y[i] >= d->classes) {
            s_fail("label not below classes", "");
        }
    }
    for (size_t i = 0; i < d->n * d->dim; i++) {
        if (!(d->x[i] >= 0.0f && d->x[i] <= 1.0f)) {
            s_fail("pixel outside [0, 1]", "");
        }
    }
}

// s_load runs one ds_idx_load and checks the result or the error contract.
static void
s_load(const char *img, const char *lab, size_t limit, unsigned part,
       unsigned nparts)
{
    ds_dataset_t d;
    char         err[512];
    err[0] = '\0';
    int rc = ds_idx_load(&d, img, lab, limit, part, nparts, err, sizeof err);
    if (rc == 0) {
        s_check(&d, 0);
    } else if (rc > 0 || err[0] == '\0' || d.n != 0 || d.x != NULL) {
        s_fail("failure without a reason, or with data", err);
    }
    ds_dataset_fini(&d);
    ds_dataset_fini(&d); // idempotent, says idx.h
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    size_t ilen = (size_t)data[0] | (size_t)data[1] << 8;
    ilen = ilen < size - 2 ? ilen : size - 2;
    const char *img = fz_scratch_write(0, data + 2, ilen);
    const char *lab = fz_scratch_write(1, data + 2 + ilen, size - 2 - ilen);

    s_load(img, lab, 0, 0, 1);
    s_load(img, lab, 3, 1, 2);
    s_load(img, lab, 10, 2, 3);

    ds_dataset_t d;
    char         err[512];
    err[0] = '\0';
    if (ds_idx_load_range(&d, img, lab, 1, 3, err, sizeof err) == 0) {
        s_check(&d, 2);
    }
    ds_dataset_fini(&d);

    uint64_t n = 0;
    (void)ds_idx_count(img, &n, err, sizeof err);
    return 0;
}
