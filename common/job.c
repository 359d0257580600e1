// SPDX-License-Identifier: MIT
// job - a job's settings turned into what they configure (the update rule),
// and the checks across settings that every role runs at start-up.
#include "common/job.h"

#include <errno.h>
#include <stdlib.h>
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

#define S_HIDDEN_MAX (1u << 24) // units of one hidden layer, at most

// s_hidden parses "512,128" into at most max sizes. Returns how many, or
// -EINVAL with err saying what is wrong: not a list of sizes, a size out of
// range (naming the bound), or too many layers.
static int
s_hidden(const char *text, size_t *sizes, int max, char *err, size_t errlen)
{
    int         n = 0;
    const char *p = text;
    while (*p) {
        char              *end = (char *)p;
        unsigned long long v = 0;
        errno = 0;
        // strtoull would also take a sign or blanks.
        if (*p >= '0' && *p <= '9') {
            v = strtoull(p, &end, 10);
        }
        if (end == p || (*end != ',' && *end != '\0')) {
            return ds_err(err, errlen, -EINVAL,
                          "[model] hidden: expected sizes like \"256\" or "
                          "\"512,128\" (got \"%s\")",
                          text);
        }
        if (v == 0) {
            return ds_err(err, errlen, -EINVAL,
                          "[model] hidden: layer %d: too small (min 1) (got "
                          "\"%s\")",
                          n + 1, text);
        }
        if (errno == ERANGE || v > S_HIDDEN_MAX) {
            return ds_err(err, errlen, -EINVAL,
                          "[model] hidden: layer %d: too large (max %u) (got "
                          "\"%s\")",
                          n + 1, S_HIDDEN_MAX, text);
        }
        if (n == max) {
            return ds_err(err, errlen, -EINVAL,
                          "[model] hidden: too many layers (max %d) (got "
                          "\"%s\")",
                          max, text);
        }
        sizes[n++] = (size_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

int
ds_job_model(ds_model_t *m, const ds_config_t *c, size_t dim, int classes,
             char *err, size_t errlen)
{
    size_t hidden[DS_MODEL_MAX_LAYERS];
    int nh = s_hidden(c->hidden, hidden, DS_MODEL_MAX_LAYERS - 1, err, errlen);
    if (nh < 0) {
        return nh;
    }
    if (strcmp(c->model, "logreg") == 0) {
        // Sparse: not a dense model of model.h; describe nothing here.
        memset(m, 0, sizeof *m);
        return 0;
    }
    bool mlp = strcmp(c->model, "mlp") == 0;
    return ds_model_init(m, mlp ? DS_MODEL_MLP : DS_MODEL_SOFTMAX, dim, classes,
                         hidden, mlp ? nh : 0, mlp && c->batchnorm, err,
                         errlen);
}

ds_init_t
ds_job_init(const ds_config_t *c)
{
    if (strcmp(c->init, "zeros") == 0) {
        return DS_INIT_ZEROS;
    }
    if (strcmp(c->init, "random") == 0) {
        return DS_INIT_RANDOM;
    }
    if (strcmp(c->init, "he") == 0) {
        return DS_INIT_HE;
    }
    return strcmp(c->model, "mlp") == 0 ? DS_INIT_HE : DS_INIT_ZEROS;
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
    bool logreg = strcmp(c->model, "logreg") == 0;
    if (logreg != (strcmp(c->format, "libsvm") == 0)) {
        return ds_err(err, errlen, -EINVAL,
                      "[model] model: logreg trains on [data] format = "
                      "libsvm, and libsvm data needs model = logreg");
    }
    if (logreg && strcmp(c->algorithm, "downpour") != 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[train] algorithm: sparse logreg runs with downpour");
    }
    if (logreg && strcmp(c->consistency, "async") != 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[train] consistency: sparse logreg runs async");
    }
    if (c->threads > 1 && (logreg || strcmp(c->algorithm, "easgd") == 0 ||
                           (strcmp(c->model, "mlp") == 0 && c->batchnorm))) {
        return ds_err(err, errlen, -EINVAL,
                      "[train] threads: Hogwild! threads work with dense "
                      "models without batch norm, under downpour or "
                      "dtadagrad");
    }
    if (strcmp(c->algorithm, "easgd") == 0 &&
        strcmp(c->schedule, "plateau") == 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[optimizer] schedule: easgd workers follow their own "
                      "schedule; plateau cuts reach only servers");
    }
    if (c->delay > 0 && strcmp(c->consistency, "async") != 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[train] delay: held-back pushes would stall %s reads; "
                      "delay experiments run async",
                      c->consistency);
    }
    if (logreg && strcmp(c->init, "auto") != 0 &&
        strcmp(c->init, "zeros") != 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[model] init: sparse logreg starts from zeros");
    }
    if (c->patience > 0 && c->validation <= 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[train] patience: early stopping needs a validation "
                      "split ([data] validation > 0)");
    }
    if (logreg && strcmp(c->curriculum, "off") != 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[train] curriculum: needs a dense model");
    }
    if (logreg && c->validation > 0) {
        return ds_err(err, errlen, -EINVAL,
                      "[data] validation: not available for libsvm data");
    }
    ds_model_t m;
    rc = ds_job_model(&m, c, 784, 10, err, errlen);
    if (rc != 0) {
        return rc;
    }
    ds_model_fini(&m);
    if (strcmp(c->model, "mlp") == 0 && c->batchnorm && c->batch_size < 2) {
        return ds_err(err, errlen, -EINVAL,
                      "[train] batch_size: batch normalization needs batches "
                      "of 2 or more");
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
