// SPDX-License-Identifier: MIT
// job - a job's settings turned into what they configure (the update rule),
// and the checks across settings that every role runs at start-up.
#ifndef DS_JOB_H
#define DS_JOB_H

#include <stddef.h>

#include "common/config.h"
#include "common/optim.h"

// ds_job_optim builds the job's update rule from [optimizer]: the rule's
// PyTorch defaults, then every setting the job gives (eps 0 and momentum 0
// keep the rule's default; name = momentum with nesterov = true is nag).
// Returns 0 or -EINVAL with err naming the setting.
int ds_job_optim(ds_optim_t *o, const ds_config_t *c, char *err, size_t errlen);

// ds_job_check runs every start-up check that spans settings: the update
// rule, the schedule, the validation split. Returns 0 or -EINVAL with err
// naming the setting.
int ds_job_check(const ds_config_t *c, char *err, size_t errlen);

#endif
