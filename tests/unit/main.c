// SPDX-License-Identifier: MIT
// main - runs every unit-test suite; CK_RUN_SUITE / CK_RUN_CASE select.
#include <stdlib.h>

#include "tests/unit/suites.h"

int
main(void)
{
    Suite *(*const suites[])(void) = {
        ds_config_suite,    ds_rng_suite,         ds_idx_suite,
        ds_softmax_suite,   ds_safetensors_suite, ds_msg_suite,
        ds_shard_map_suite, ds_zsock_suite,       ds_optim_suite,
        ds_schedule_suite,  ds_surfaces_suite,    ds_dist_suite,
        ds_model_suite,     ds_sparse_suite,      ds_checkpoint_suite,
        ds_ratelog_suite,
        ds_util_suite,
    };
    SRunner *sr = srunner_create(NULL);

    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        srunner_add_suite(sr, suites[i]());
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
