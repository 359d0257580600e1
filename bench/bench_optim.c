// SPDX-License-Identifier: MIT
// bench_optim - update-rule bandwidth over 10M parameters beside a triad.
//
// Each row times ds_optim_step over the whole array (one update, best of
// S_REPS after a warm-up update) and turns it into the bandwidth the rule
// must move: w read and written, g read, and every state array read and
// written, 4 bytes each. The baseline is a STREAM-style triad,
// a[i] = b[i] + s * c[i], over the same number of floats in the same
// process, counted as 12 bytes per element (its write-allocate read of a is
// not counted, as STREAM does not count it). The last column is the rule's
// bandwidth over the triad's. The paper forms run the same loops as the
// PyTorch forms with other constants, so they are not separate rows.
// Nothing here asserts on a time; the exit status is 1 only if memory runs
// out or an update leaves a non-finite parameter.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/optim.h"

#define S_N (10 * 1000 * 1000) // parameters
#define S_REPS 15              // timed updates per row; the best counts
#define S_TRIAD_REPS 15        // timed triads per measurement
#define S_LR 1e-4              // learning rate of every row

// s_row_t is one benchmarked configuration.
typedef struct {
    const char     *label;    // printed name
    ds_optim_kind_t kind;     // the rule
    bool            centered; // rmsprop
    double          momentum; // rmsprop's buffer; < 0 keeps the default
    bool            amsgrad;  // adam
} s_row_t;

static const s_row_t s_rows[] = {
    {"sgd", DS_OPTIM_SGD, false, -1, false},
    {"momentum", DS_OPTIM_MOMENTUM, false, -1, false},
    {"nag", DS_OPTIM_NAG, false, -1, false},
    {"adagrad", DS_OPTIM_ADAGRAD, false, -1, false},
    {"adadelta", DS_OPTIM_ADADELTA, false, -1, false},
    {"rmsprop", DS_OPTIM_RMSPROP, false, -1, false},
    {"rmsprop momentum=0.9", DS_OPTIM_RMSPROP, false, 0.9, false},
    {"rmsprop centered", DS_OPTIM_RMSPROP, true, -1, false},
    {"rmsprop centered+momentum", DS_OPTIM_RMSPROP, true, 0.9, false},
    {"adam", DS_OPTIM_ADAM, false, -1, false},
    {"adam amsgrad", DS_OPTIM_ADAM, false, -1, true},
};

#define S_NROWS (sizeof s_rows / sizeof s_rows[0])

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// s_triad is the baseline loop; noinline keeps it a loop of its own, built
// with the same flags as the kernels.
__attribute__((noinline)) static void
s_triad(float *restrict a, const float *restrict b, const float *restrict c,
        size_t n, float s)
{
    for (size_t i = 0; i < n; i++) {
        a[i] = b[i] + s * c[i];
    }
}

// s_time_triad returns the best of S_TRIAD_REPS triads, in seconds.
static double
s_time_triad(float *a, const float *b, const float *c)
{
    s_triad(a, b, c, S_N, 0.5f); // warm-up
    double best = 1e30;
    for (int r = 0; r < S_TRIAD_REPS; r++) {
        double t0 = s_now();
        s_triad(a, b, c, S_N, 0.5f + (float)r);
        double dt = s_now() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

// s_fill writes values in [lo, lo + span) that repeat every 1024 floats.
static void
s_fill(float *x, size_t n, float lo, float span)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = lo + span * (float)((i * 2654435761u) % 1024) / 1024.0f;
    }
}

// s_time_row times one configuration; returns the best update in seconds
// (or a negative value if it could not run), and its state arrays in *nbuf.
static double
s_time_row(const s_row_t *row, float *w, const float *g, int *nbuf,
           bool *finite)
{
    ds_optim_t o;
    ds_optim_defaults(&o, row->kind);
    o.centered = row->centered;
    o.amsgrad = row->amsgrad;
    if (row->momentum >= 0) {
        o.momentum = row->momentum;
    }
    char err[256];
    if (ds_optim_check(&o, err, sizeof err) != 0) {
        ds_log(DS_ERROR, "bench", "%s: %s", row->label, err);
        return -1;
    }
    ds_optim_state_t s;
    if (ds_optim_state_init(&s, &o, S_N) != 0) {
        ds_log(DS_ERROR, "bench", "%s: out of memory", row->label);
        return -1;
    }
    *nbuf = s.nbuf;
    s_fill(w, S_N, -1.0f, 2.0f);
    ds_optim_step(&o, &s, 0, w, g, S_N, S_LR); // warm-up, first step
    double best = 1e30;
    for (int r = 0; r < S_REPS; r++) {
        double t0 = s_now();
        ds_optim_step(&o, &s, 0, w, g, S_N, S_LR);
        double dt = s_now() - t0;
        best = dt < best ? dt : best;
    }
    *finite = ds_vec_finite(w, S_N);
    ds_optim_state_fini(&s);
    return best;
}

int
main(void)
{
    ds_log_level = DS_WARN;
    float *w = malloc(S_N * sizeof *w);
    float *g = malloc(S_N * sizeof *g);
    float *a = malloc(S_N * sizeof *a);
    float *b = malloc(S_N * sizeof *b);
    float *c = malloc(S_N * sizeof *c);
    if (!w || !g || !a || !b || !c) {
        ds_log(DS_ERROR, "bench", "out of memory");
        return 1;
    }
    s_fill(g, S_N, -0.5f, 1.0f);
    s_fill(a, S_N, 0.0f, 1.0f);
    s_fill(b, S_N, 1.0f, 1.0f);
    s_fill(c, S_N, -1.0f, 1.0f);

    printf("bench_optim: ds_optim_step over %d float32 parameters, one "
           "thread, best of %d updates\n",
           S_N, S_REPS);
    printf("GB/s counts the bytes a rule must move per update: w read + "
           "written, g read,\neach state array read + written (4 bytes "
           "each). The triad a[i] = b[i] + s*c[i]\ncounts 12 bytes per "
           "element (write-allocate not counted). 1 GB = 1e9 bytes.\n\n");

    // The triad is measured before and after the rules, and the better of
    // the two is the baseline, so a slow patch of the machine during one
    // measurement does not flatter the rules.
    double triad = s_time_triad(a, b, c);
    double secs[S_NROWS];
    int    nbuf[S_NROWS];
    int    failures = 0;
    for (size_t k = 0; k < S_NROWS; k++) {
        bool finite = true;
        nbuf[k] = 0;
        secs[k] = s_time_row(&s_rows[k], w, g, &nbuf[k], &finite);
        if (secs[k] < 0 || !finite) {
            ds_log(DS_ERROR, "bench", "%s: %s", s_rows[k].label,
                   secs[k] < 0 ? "did not run" : "non-finite parameters");
            failures++;
        }
    }
    double again = s_time_triad(a, b, c);
    triad = again < triad ? again : triad;
    double triad_gbs = 12.0 * S_N / triad / 1e9;

    printf("%-26s %5s %11s %10s %7s %15s\n", "rule", "state", "bytes/param",
           "ms/update", "GB/s", "ratio-to-triad");
    printf("%-26s %5s %11d %10.2f %7.2f %15.2f\n", "triad (baseline)", "-", 12,
           triad * 1e3, triad_gbs, 1.0);
    for (size_t k = 0; k < S_NROWS; k++) {
        if (secs[k] < 0) {
            continue;
        }
        int    bytes = 4 * (3 + 2 * nbuf[k]);
        double gbs = (double)bytes * S_N / secs[k] / 1e9;
        printf("%-26s %5d %11d %10.2f %7.2f %15.2f\n", s_rows[k].label, nbuf[k],
               bytes, secs[k] * 1e3, gbs, gbs / triad_gbs);
    }
    // Keep the triad's output alive: a sampled checksum of a.
    double sum = 0;
    for (size_t i = 0; i < S_N; i += 4099) {
        sum += a[i];
    }
    printf("\n(triad checksum %.6g)\n", sum);
    free(w);
    free(g);
    free(a);
    free(b);
    free(c);
    return failures == 0 ? 0 : 1;
}
