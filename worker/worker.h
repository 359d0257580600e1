// SPDX-License-Identifier: MIT
// worker - a model replica: trains on its partition, pushes and pulls.
#ifndef DS_WORKER_H
#define DS_WORKER_H

#include "common/config.h"

// ds_worker_main runs one worker until the job ends. Returns the exit
// status: 0 when the scheduler ended the job normally.
int ds_worker_main(const ds_config_t *cfg);

#endif
