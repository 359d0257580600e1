// SPDX-License-Identifier: MIT
// optimizers - the seven update rules on two test surfaces, after Ruder's
// Figure 4: trajectories, tables and gnuplot pictures.
#ifndef DS_OPTIMIZERS_H
#define DS_OPTIMIZERS_H

#include "common/optim.h"

// ds_surface_t names a two-parameter test function.
typedef enum {
    DS_SURFACE_BEALE = 0,  // Beale's function, minimum 0 at (3, 0.5)
    DS_SURFACE_SADDLE = 1, // x^2 - y^2, saddle point at (0, 0)
} ds_surface_t;

#define DS_SURFACE_COUNT 2
#define DS_SURFACE_ESCAPE 1.0 // |y| beyond this has left the saddle

// ds_surface_name returns "beale" or "saddle".
const char *ds_surface_name(ds_surface_t s);

// ds_surface_f returns f(x, y) of surface s.
double ds_surface_f(ds_surface_t s, double x, double y);

// ds_surface_grad stores the analytic gradient of s at (x, y) in g[0..2).
void ds_surface_grad(ds_surface_t s, double x, double y, double g[2]);

// ds_surface_start stores the start point of the pictures in xy[0..2):
// (1, 1.5) on Beale, (1, 1e-3) next to the saddle.
void ds_surface_start(ds_surface_t s, double xy[2]);

// ds_surface_lr returns the learning rate the pictures use for kind on s
// (docs/optimizers-pictures.md says how each was chosen).
double ds_surface_lr(ds_surface_t s, ds_optim_kind_t kind);

// ds_surface_run applies `steps` updates of rule kind (ds_optim_defaults, at
// learning rate lr) to the two float parameters, starting at start, with the
// analytic gradient of s. It stores the point after step i at
// out_xy[2 * i], out_xy[2 * i + 1] (point 0 is the start), so out_xy must
// hold 2 * (steps + 1) floats. It stops early when a gradient or a parameter
// stops being finite. Returns the number of points stored (steps + 1 unless
// the run diverged), -EINVAL for a bad argument or a rule that
// ds_optim_check rejects, or -ENOMEM.
int ds_surface_run(ds_surface_t s, ds_optim_kind_t kind, double lr, int steps,
                   const double start[2], float *out_xy);

// ds_surface_escape_step returns the first i < npoints with
// |out_xy[2 * i + 1]| > threshold (the step after which y has left the
// saddle), or -1 if there is none.
int ds_surface_escape_step(const float *xy, int npoints, double threshold);

// ds_optimizers_main runs `descent optimizers [--out DIR] [--steps N]
// [--lr X] [--grid]` (argv[0] is "optimizers"): every rule on both
// surfaces, tables on stdout, DIR/trajectories.csv, and DIR/beale.png and
// DIR/saddle.png drawn by gnuplot from DIR/beale.gp and DIR/saddle.gp.
// Returns 0, 1 if a file or the pictures could not be made, 2 for bad usage.
int ds_optimizers_main(int argc, char **argv);

#endif
