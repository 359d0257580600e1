// SPDX-License-Identifier: MIT
// plot - descent plot: a job's metrics log drawn as loss and accuracy
// curves.
#ifndef DS_PLOT_H
#define DS_PLOT_H

// ds_plot_main runs `descent plot METRICS [--out FILE]` (argv[0] is
// "plot"). Returns the exit status.
int ds_plot_main(int argc, char **argv);

#endif
