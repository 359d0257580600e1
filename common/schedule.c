// SPDX-License-Identifier: MIT
// schedule - learning-rate schedules over a count of updates, and the
// reduce-on-plateau rule driven by validation loss.
#include "common/schedule.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/util.h"

static const char *const s_names[] = {"constant", "step",   "exponential",
                                      "inverse",  "cosine", "plateau"};

int
ds_schedule_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof s_names / sizeof s_names[0]); i++) {
        if (strcmp(name, s_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int
ds_schedule_from_config(ds_schedule_t *s, const ds_config_t *c, uint64_t total,
                        int epochs, char *err, size_t errlen)
{
    int kind = ds_schedule_parse(c->schedule);
    if (kind < 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[optimizer] schedule: unknown schedule \"%s\"",
                      c->schedule);
    }
    if (c->lr_min > c->lr) {
        return ds_err(err, errlen, -EINVAL,
                      "[optimizer] lr_min: %g is above lr %g", c->lr_min,
                      c->lr);
    }
    if (kind == DS_SCHEDULE_PLATEAU && c->validation <= 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[optimizer] schedule: plateau needs a validation "
                      "split ([data] validation > 0)");
    }
    *s = (ds_schedule_t){
        .kind = (ds_schedule_kind_t)kind,
        .lr = c->lr,
        .lr_min = c->lr_min,
        .warmup = (uint64_t)c->warmup,
        .total = total,
        .per_epoch = epochs > 0 && total > 0 ? (double)total / epochs : 1.0,
        .gamma = c->lr_gamma,
        .step = c->lr_step,
        .k = c->lr_k,
        .scale = 1.0,
    };
    return 0;
}

static double
s_base(const ds_schedule_t *s, uint64_t t)
{
    double epoch = (double)t / s->per_epoch;
    switch (s->kind) {
    case DS_SCHEDULE_STEP:
        return s->lr * pow(s->gamma, floor(epoch / s->step));
    case DS_SCHEDULE_EXPONENTIAL:
        return s->lr * pow(s->gamma, floor(epoch));
    case DS_SCHEDULE_INVERSE:
        return s->lr / (1.0 + s->k * epoch);
    case DS_SCHEDULE_COSINE: {
        uint64_t span = s->total > s->warmup ? s->total - s->warmup : 0;
        uint64_t tc = t > s->warmup ? t - s->warmup : 0;
        if (span == 0 || tc >= span) {
            return s->lr_min;
        }
        return s->lr_min + (s->lr - s->lr_min) *
                               (1.0 + cos(M_PI * (double)tc / (double)span)) /
                               2.0;
    }
    case DS_SCHEDULE_PLATEAU:
        return s->lr * s->scale;
    case DS_SCHEDULE_CONSTANT:
    default:
        return s->lr;
    }
}

double
ds_schedule_lr(const ds_schedule_t *s, uint64_t t)
{
    double lr = s_base(s, t);
    if (lr < s->lr_min) {
        lr = s->lr_min;
    }
    if (t < s->warmup) {
        lr *= (double)(t + 1) / (double)s->warmup;
    }
    return lr;
}

void
ds_early_init(ds_early_t *e, int patience, double min_delta)
{
    *e = (ds_early_t){
        .patience = patience, .min_delta = min_delta, .best = INFINITY};
}

bool
ds_early_observe(ds_early_t *e, double loss, bool *improved)
{
    e->epoch++;
    *improved = loss < e->best - e->min_delta;
    if (*improved) {
        e->best = loss;
        e->best_epoch = e->epoch;
        e->wait = 0;
        return false;
    }
    e->wait++;
    return e->wait >= e->patience;
}

void
ds_plateau_init(ds_plateau_t *p, double factor, int patience, double threshold,
                int cooldown, double min_scale)
{
    *p = (ds_plateau_t){.factor = factor,
                        .patience = patience,
                        .threshold = threshold,
                        .cooldown = cooldown,
                        .min_scale = min_scale,
                        .best = INFINITY,
                        .scale = 1.0};
}

bool
ds_plateau_observe(ds_plateau_t *p, double loss)
{
    if (loss < p->best * (1.0 - p->threshold)) {
        p->best = loss;
        p->bad = 0;
    } else {
        p->bad++;
    }
    if (p->cool > 0) {
        p->cool--;
        p->bad = 0;
    }
    if (p->bad > p->patience) {
        double next = p->scale * p->factor;
        p->scale = next > p->min_scale ? next : p->min_scale;
        p->cool = p->cooldown;
        p->bad = 0;
        p->cuts++;
        return true;
    }
    return false;
}
