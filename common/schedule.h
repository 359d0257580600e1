// SPDX-License-Identifier: MIT
// schedule - learning-rate schedules over a count of updates, and the
// reduce-on-plateau rule driven by validation loss.
#ifndef DS_SCHEDULE_H
#define DS_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

typedef enum {
    DS_SCHEDULE_CONSTANT = 0,    // lr
    DS_SCHEDULE_STEP = 1,        // lr * gamma^floor(epoch / step)
    DS_SCHEDULE_EXPONENTIAL = 2, // lr * gamma^floor(epoch)
    DS_SCHEDULE_INVERSE = 3,     // lr / (1 + k * epoch)
    DS_SCHEDULE_COSINE = 4,      // cosine annealing from lr to lr_min
    DS_SCHEDULE_PLATEAU = 5,     // lr * scale, scale cut on a plateau
} ds_schedule_kind_t;

// ds_schedule_t is a learning-rate schedule over update counts t = 0, 1, ...
// Epochs are counted in updates: epoch = t / per_epoch, a real number.
typedef struct {
    ds_schedule_kind_t kind;      // which formula
    double             lr;        // base (peak) rate
    double             lr_min;    // floor of every schedule; cosine's end
    uint64_t           warmup;    // linear warm-up over this many updates
    uint64_t           total;     // updates the job makes in all
    double             per_epoch; // updates per epoch (> 0)
    double             gamma;     // step, exponential: the factor
    double             step;      // step: epochs between decays
    double             k;         // inverse: the decay constant
    double             scale;     // plateau: product of the cuts so far
} ds_schedule_t;

// ds_schedule_parse maps a schedule's name to its kind; -1 if unknown.
int ds_schedule_parse(const char *name);

// ds_schedule_from_config builds the job's schedule for a job of `total`
// updates over `epochs` epochs. Returns 0 or -EINVAL with err naming the
// setting.
int ds_schedule_from_config(ds_schedule_t *s, const ds_config_t *c,
                            uint64_t total, int epochs, char *err,
                            size_t errlen);

// ds_schedule_lr returns the rate for update t (0-based). During warm-up
// (t < warmup) the rate rises linearly, times (t + 1) / warmup; cosine
// anneals over the updates after the warm-up, PyTorch's CosineAnnealingLR:
// lr_min + (lr - lr_min) * (1 + cos(pi * t' / T)) / 2. No rate falls below
// lr_min.
double ds_schedule_lr(const ds_schedule_t *s, uint64_t t);

// ds_plateau_t is PyTorch's ReduceLROnPlateau in mode "min" with a relative
// threshold: a loss counts as better when it is below best * (1 -
// threshold); after more than `patience` epochs without a better loss the
// scale is multiplied by factor, then `cooldown` epochs pass before bad
// epochs count again.
typedef struct {
    double factor;    // multiplier of a cut, in (0, 1)
    int    patience;  // bad epochs tolerated
    double threshold; // relative improvement that counts
    int    cooldown;  // epochs ignored after a cut
    double min_scale; // the scale never falls below this
    double best;      // best loss so far (INFINITY at first)
    int    bad;       // bad epochs in a row
    int    cool;      // cooldown epochs left
    double scale;     // current multiplier of the rate, starts at 1
    int    cuts;      // cuts so far
} ds_plateau_t;

void ds_plateau_init(ds_plateau_t *p, double factor, int patience,
                     double threshold, int cooldown, double min_scale);

// ds_plateau_observe feeds one epoch's validation loss and returns true
// when it cut the scale.
bool ds_plateau_observe(ds_plateau_t *p, double loss);

// ds_early_t is early stopping on the validation loss (Ruder, section 6):
// after each evaluation an epoch improves when its loss is below best -
// min_delta; training stops once `patience` epochs in a row have not, and
// the best epoch's parameters are the result.
typedef struct {
    int    patience;   // epochs without improvement tolerated, >= 1
    double min_delta;  // improvement that counts
    double best;       // best loss so far (INFINITY at first)
    int    best_epoch; // epoch of best, 1-based; 0 before any
    int    wait;       // epochs in a row without improvement
    int    epoch;      // epochs observed
} ds_early_t;

void ds_early_init(ds_early_t *e, int patience, double min_delta);

// ds_early_observe feeds one epoch's validation loss; sets *improved when
// this epoch is the new best and returns true when training should stop.
bool ds_early_observe(ds_early_t *e, double loss, bool *improved);

#endif
