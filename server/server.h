// SPDX-License-Identifier: MIT
// server - the parameter-server role: holds key ranges, applies pushes.
#ifndef DS_SERVER_H
#define DS_SERVER_H

#include "common/config.h"

// ds_server_main runs a parameter server until the scheduler ends the job,
// the scheduler is lost, or a signal arrives. Returns the exit status.
int ds_server_main(const ds_config_t *cfg);

#endif
