// SPDX-License-Identifier: MIT
// job - a job's settings turned into what they configure (the update rule),
// and the checks across settings that every role runs at start-up.
#ifndef DS_JOB_H
#define DS_JOB_H

#include <stddef.h>

#include "common/config.h"
#include "common/model.h"
#include "common/optim.h"

// ds_job_optim builds the job's update rule from [optimizer]: the rule's
// PyTorch defaults, then every setting the job gives (eps 0 and momentum 0
// keep the rule's default; name = momentum with nesterov = true is nag).
// Returns 0 or -EINVAL with err naming the setting.
int ds_job_optim(ds_optim_t *o, const ds_config_t *c, char *err, size_t errlen);

// ds_job_model describes the job's model ([model]) for dim inputs and
// classes outputs. Returns 0, or -EINVAL / -ENOMEM with err set. Free with
// ds_model_fini.
int ds_job_model(ds_model_t *m, const ds_config_t *c, size_t dim, int classes,
                 char *err, size_t errlen);

// ds_job_init returns the job's initialization ([model] init; auto is zeros
// for softmax and He for an MLP).
ds_init_t ds_job_init(const ds_config_t *c);

// ds_job_check runs every start-up check that spans settings: the update
// rule, the schedule, the validation split. Returns 0 or -EINVAL with err
// naming the setting.
int ds_job_check(const ds_config_t *c, char *err, size_t errlen);

#endif
