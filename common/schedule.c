// SPDX-License-Identifier: MIT
// schedule - learning-rate schedules over a count of updates.
#include "common/schedule.h"

#include <math.h>
#include <string.h>

int
ds_schedule_parse(const char *name)
{
    if (strcmp(name, "constant") == 0) {
        return DS_SCHEDULE_CONSTANT;
    }
    if (strcmp(name, "cosine") == 0) {
        return DS_SCHEDULE_COSINE;
    }
    return -1;
}

double
ds_schedule_lr(const ds_schedule_t *s, uint64_t t)
{
    if (t < s->warmup) {
        return s->lr * (double)(t + 1) / (double)s->warmup;
    }
    if (s->kind == DS_SCHEDULE_CONSTANT) {
        return s->lr;
    }
    uint64_t span = s->total > s->warmup ? s->total - s->warmup : 0;
    uint64_t tc = t - s->warmup;
    if (span == 0 || tc >= span) {
        return s->lr_min;
    }
    return s->lr_min + (s->lr - s->lr_min) *
                           (1.0 + cos(M_PI * (double)tc / (double)span)) / 2.0;
}
