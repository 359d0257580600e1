// SPDX-License-Identifier: MIT
// scheduler - the coordinator role: membership, shard map, barriers, job end.
#ifndef DS_SCHEDULER_H
#define DS_SCHEDULER_H

#include "common/config.h"

// ds_scheduler_main coordinates one job: it waits for the configured servers
// and workers, sends the shard map, relays barriers, watches heartbeats,
// writes metrics.jsonl and summary.json under cfg->out, and ends the job
// when every worker is done (exit 0) or a node fails (exit 1).
int ds_scheduler_main(const ds_config_t *cfg);

#endif
