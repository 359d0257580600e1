// SPDX-License-Identifier: MIT
// datagen - seeded synthetic sparse binary data in LIBSVM format, labelled
// by a planted linear model over Zipf-distributed features.
#ifndef DS_DATAGEN_H
#define DS_DATAGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_DATAGEN_MAX_FEATURES 2147483647u // largest --features
#define DS_DATAGEN_MAX_NNZ 65536u           // largest --nnz

// ds_datagen_opts_t describes a dataset. The planted model is
// w*_j = ds_rng_key_normal(seed, j) for the features j = 1..features and a
// bias b chosen so that about half the rows are positive (minus the median
// of w*.x over 10001 rows drawn from stream 3 of the seed). A row draws
// feature ranks from the Zipf law P(j) ~ j^-alpha until it holds nnz
// distinct features (or gives up after 32 * nnz draws), writes them in
// increasing order with value 1 (or, with uniform, k/1000 for k uniform in
// 1..1000), and gets label +1 when z = b + sum_j w*_j x_j > 0 (summed in
// double in the written order) and -1 otherwise; then each label flips
// with probability noise. Training rows come from stream 1 of the seed,
// test rows from stream 2, so both files share w* and b.
typedef struct {
    uint64_t n;        // training rows, >= 1
    uint64_t features; // F: feature ids 1..F
    unsigned nnz;      // K: distinct features per row, 1..min(F, 65536)
    uint64_t seed;     // seeds everything
    double   alpha;    // Zipf exponent of the feature frequencies, >= 0
    double   noise;    // probability of flipping each label, [0, 1]
    bool     uniform;  // values k/1000 instead of 1
    uint64_t test_n;   // rows of the test file when one is written
} ds_datagen_opts_t;

// ds_datagen_stats_t is what ds_datagen_write reports about one file.
typedef struct {
    uint64_t n;                // rows written
    uint64_t entries;          // index:value pairs written
    uint64_t positives;        // rows labelled +1
    uint64_t flips;            // labels flipped by the noise
    double   bias;             // the planted bias b
    double   planted_accuracy; // accuracy of w*, b on the file: 1 - flips/n
} ds_datagen_stats_t;

// ds_datagen_defaults fills o with the defaults of `descent datagen`:
// n 100000, features 100000, nnz 20, seed 1, alpha 1.1, noise 0, binary
// values, test_n 0.
void ds_datagen_defaults(ds_datagen_opts_t *o);

// ds_datagen_write writes o->n rows to path and, when test_path is not
// NULL, o->test_n rows to test_path; a path ending in ".gz" is written
// gzip-compressed (level 1). Each file gets a sidecar path + ".json":
// {"n":..,"features":..,"nnz":..,"seed":..,"alpha":..,"noise":..,
// "values":"binary"|"uniform","entries":..,"positives":..,"flips":..,
// "bias":..,"planted_accuracy":..}. The same options give the same plain
// bytes on every run and machine. Stores what it wrote in *train and
// *test when not NULL. Returns 0, -EINVAL for bad options, or a negative
// errno for a file that cannot be written (err says which; the partial
// file is removed).
int ds_datagen_write(const ds_datagen_opts_t *o, const char *path,
                     const char *test_path, ds_datagen_stats_t *train,
                     ds_datagen_stats_t *test, char *err, size_t errlen);

// ds_datagen_main runs `descent datagen --out FILE [--n N] [--features F]
// [--nnz K] [--seed S] [--alpha A] [--noise P] [--values binary|uniform]
// [--test-out FILE2 [--test-n M]]` (argv[0] is "datagen"; --test-n
// defaults to n/10). Prints what it wrote and the planted accuracy.
// Returns 0, 1 if a file could not be written, 2 for bad usage.
int ds_datagen_main(int argc, char **argv);

#endif
