// SPDX-License-Identifier: MIT
// suites - every Check suite of the unit tests, one per module.
#ifndef DS_TEST_SUITES_H
#define DS_TEST_SUITES_H

#include <check.h>

Suite *ds_config_suite(void);
Suite *ds_rng_suite(void);
Suite *ds_idx_suite(void);
Suite *ds_softmax_suite(void);
Suite *ds_safetensors_suite(void);
Suite *ds_msg_suite(void);
Suite *ds_shard_map_suite(void);
Suite *ds_zsock_suite(void);
Suite *ds_optim_suite(void);
Suite *ds_schedule_suite(void);
Suite *ds_surfaces_suite(void);
Suite *ds_dist_suite(void);
Suite *ds_model_suite(void);
Suite *ds_sparse_suite(void);
Suite *ds_checkpoint_suite(void);
Suite *ds_ratelog_suite(void);
Suite *ds_util_suite(void);

#endif
