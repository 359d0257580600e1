// SPDX-License-Identifier: MIT
// job - a job's settings turned into what they configure (the update rule),
// and the checks across settings that every role runs at start-up.
#include "common/job.h"

#include <errno.h>
#include <string.h>

#include "common/dtadagrad.h"
#include "common/schedule.h"
#include "common/util.h"

int
ds_job_optim(ds_optim_t *o, const ds_config_t *c, char *err, size_t errlen)
{
    int kind = ds_optim_parse(c->name);
    if (kind < 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[optimizer] name: unknown update rule \"%s\"", c->name);
    }
    if (kind == DS_OPTIM_MOMENTUM && c->nesterov) {
        kind = DS_OPTIM_NAG;
    }
    if (c->nesterov && kind != DS_OPTIM_NAG) {
        return ds_err(err, errlen, -EINVAL,
                      "[optimizer] nesterov: only for name = momentum");
    }
    ds_optim_defaults(o, (ds_optim_kind_t)kind);
    o->paper = strcmp(c->form, "paper") == 0;
    if (c->momentum > 0) {
        o->momentum = c->momentum;
    }
    if (c->eps > 0) {
        o->eps = c->eps;
    }
    o->dampening = c->dampening;
    o->beta1 = c->beta1;
    o->beta2 = c->beta2;
    o->rho = c->rho;
    o->alpha = c->alpha;
    o->weight_decay = c->weight_decay;
    o->lr_decay = c->lr_decay;
    o->initial_accumulator = c->initial_accumulator;
    o->centered = c->centered;
    o->amsgrad = c->amsgrad;
    return ds_optim_check(o, err, errlen);
}

int
ds_job_check(const ds_config_t *c, char *err, size_t errlen)
{
    ds_optim_t o;
    int        rc = ds_job_optim(&o, c, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(c->algorithm, "dtadagrad") == 0) {
        rc = ds_dtada_check(c->lr, c->dt_beta, c->dt_z0, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    ds_schedule_t s;
    rc = ds_schedule_from_config(&s, c, 1, c->epochs, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(c->consistency, "async") != 0 && c->n_fetch != 1) {
        return ds_err(err, errlen, -EINVAL,
                      "[train] n_fetch: %s bounds what every step reads, so "
                      "every step must read: n_fetch must be 1 (got %d)",
                      c->consistency, c->n_fetch);
    }
    if (c->limit > 0 && c->validation >= c->limit) {
        return ds_err(err, errlen, -EINVAL,
                      "[data] validation: %lld held-out examples leave none "
                      "of the %lld of [data] limit to train on",
                      (long long)c->validation, (long long)c->limit);
    }
    return 0;
}
