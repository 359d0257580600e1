// SPDX-License-Identifier: MIT
// run - the embedded default: a whole local cluster as child processes.
#ifndef DS_RUN_H
#define DS_RUN_H

#include "common/config.h"

// ds_run_main starts a scheduler, cfg->servers servers and cfg->workers
// workers as child processes of this binary (exe) on loopback, passing them
// the job file (may be NULL) and the flags in fwd (nfwd entries), waits for
// them and returns the job's exit status.
int ds_run_main(const ds_config_t *cfg, const char *exe, const char *jobfile,
                char **fwd, int nfwd);

#endif
