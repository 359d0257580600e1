// SPDX-License-Identifier: MIT
// fuzz_libsvm - LIBSVM/SVMlight text (plain or gzip) through ds_libsvm_load
// under several option sets, then the batch keys and the logistic-regression
// gradient of every loaded row at zero weights.
//
// The whole input is the file. Every loaded dataset is checked against the
// invariants libsvm.h promises (sorted unique keys in [1, 2^bits), 0/1
// labels, finite values), since a broken one reaches the servers silently.
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libsvm.h"
#include "common/logreg.h"
#include "tests/fuzz/scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_fail(const char *what, size_t at)
{
    fprintf(stderr, "fuzz_libsvm: %s (at %zu)\n", what, at);
    abort();
}

// s_check_data checks the layout libsvm.h documents for d.
static void
s_check_data(const ds_sparse_t *d, unsigned bits)
{
    if (d->n == 0 || d->offsets[0] != 0 || d->offsets[d->n] != d->nnz) {
        s_fail("bad row offsets", 0);
    }
    uint64_t top = (uint64_t)1 << bits;
    for (size_t i = 0; i < d->n; i++) {
        if (d->y[i] > 1) {
            s_fail("label not 0 or 1", i);
        }
        if (d->offsets[i + 1] < d->offsets[i]) {
            s_fail("row offsets decrease", i);
        }
        for (size_t e = d->offsets[i]; e < d->offsets[i + 1]; e++) {
            if (d->keys[e] == 0 || d->keys[e] >= top) {
                s_fail("key 0 or beyond 2^hash_bits", i);
            }
            if (e > d->offsets[i] && d->keys[e] <= d->keys[e - 1]) {
                s_fail("keys of a row not strictly increasing", i);
            }
            if (!isfinite(d->vals[e])) {
                s_fail("value not finite", i);
            }
        }
    }
}

// s_train computes the batch keys and the gradient of all rows at zero
// weights: every prediction is 1/2, so the mean loss is exactly log 2.
static void
s_train(const ds_sparse_t *d)
{
    uint64_t *keys = NULL;
    size_t    cap = 0, nkeys = 0;
    if (ds_logreg_batch_keys(d, NULL, d->n, &keys, &cap, &nkeys) != 0) {
        free(keys);
        return;
    }
    if (nkeys == 0 || keys[0] != 0 || nkeys > d->nnz + 1) {
        s_fail("bad batch keys", nkeys);
    }
    for (size_t j = 1; j < nkeys; j++) {
        if (keys[j] <= keys[j - 1]) {
            s_fail("batch keys not strictly increasing", j);
        }
    }
    float *w = calloc(nkeys, sizeof *w);
    float *g = malloc(nkeys * sizeof *g);
    if (w != NULL && g != NULL) {
        size_t correct = 0;
        double loss =
            ds_logreg_grad(d, NULL, d->n, keys, w, nkeys, g, &correct);
        if (!(fabs(loss - log(2.0)) < 1e-9) || correct > d->n) {
            fprintf(stderr, "fuzz_libsvm: loss %.17g at zero weights\n", loss);
            abort();
        }
        for (size_t j = 0; j < nkeys; j++) {
            if (!isfinite(g[j])) {
                s_fail("gradient not finite", j);
            }
        }
    }
    free(w);
    free(g);
    free(keys);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ds_libsvm_opts_t opts[] = {
        {.hash_bits = 8, .nparts = 1},
        {.hash_bits = 8, .no_hash = true, .nparts = 1},
        {.hash_bits = 8, .zero_based = true, .part = 1, .nparts = 3},
        {.hash_bits = 20, .no_hash = true, .part = 2, .nparts = 3, .limit = 5},
    };
    const char *path = fz_scratch_write(0, data, size);
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
        ds_sparse_t d;
        char        err[512];
        err[0] = '\0';
        int rc = ds_libsvm_load(&d, path, &opts[k], err, sizeof err);
        if (rc == 0) {
            s_check_data(&d, opts[k].hash_bits);
            s_train(&d);
        } else if (err[0] == '\0' || d.n != 0 || d.keys != NULL) {
            fprintf(stderr, "fuzz_libsvm: %d, err \"%s\", d not empty\n", rc,
                    err);
            abort();
        }
        ds_sparse_fini(&d);
        ds_sparse_fini(&d); // idempotent, says libsvm.h
    }
    return 0;
}
