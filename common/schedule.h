// SPDX-License-Identifier: MIT
// schedule - learning-rate schedules over a count of updates.
#ifndef DS_SCHEDULE_H
#define DS_SCHEDULE_H

#include <stdint.h>

typedef enum {
    DS_SCHEDULE_CONSTANT = 0, // lr at every step
    DS_SCHEDULE_COSINE = 1,   // cosine annealing from lr to lr_min
} ds_schedule_kind_t;

// ds_schedule_t is a learning-rate schedule over update counts t = 0, 1, ...
typedef struct {
    ds_schedule_kind_t kind;   // which formula
    double             lr;     // base (peak) rate
    double             lr_min; // final rate (cosine)
    uint64_t           warmup; // linear warm-up over this many updates
    uint64_t           total;  // updates the job makes in all (cosine)
} ds_schedule_t;

// ds_schedule_parse maps "constant" / "cosine" to a kind; -1 if unknown.
int ds_schedule_parse(const char *name);

// ds_schedule_lr returns the rate for update t (0-based). Warm-up rises
// linearly, lr * (t + 1) / warmup, for t < warmup; cosine then follows
// PyTorch's CosineAnnealingLR over the remaining total - warmup updates,
// lr_min + (lr - lr_min) * (1 + cos(pi * t' / T)) / 2, and stays at lr_min
// past the end.
double ds_schedule_lr(const ds_schedule_t *s, uint64_t t);

#endif
