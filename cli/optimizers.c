// SPDX-License-Identifier: MIT
// optimizers - the seven update rules on two test surfaces, after Ruder's
// Figure 4: trajectories, tables and gnuplot pictures.
#include "cli/optimizers.h"

#include "cli/gnuplot.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

extern char **environ;

#define S_WHO "optimizers"
#define S_MAX_STEPS 100000

// One learning rate per rule, the same on both surfaces: for each rule the
// best final f after 300 steps from (1, 1.5) on Beale over the grid
// s_grid_lrs (`descent optimizers --grid` prints it). The saddle reuses them
// unchanged so that no setting was chosen by looking at the saddle.
static const double s_lrs[DS_SURFACE_COUNT][DS_OPTIM_COUNT] = {
    [DS_SURFACE_BEALE] = {0.03, 0.003, 0.003, 1.0, 3.0, 0.3, 0.3},
    [DS_SURFACE_SADDLE] = {0.03, 0.003, 0.003, 1.0, 3.0, 0.3, 0.3},
};

// Learning rates tried by --grid: half decades from 1e-4 to 10.
static const double s_grid_lrs[] = {1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2,
                                    0.1,  0.3,  1.0,  3.0,  10.0};

// Start heights of the escape-step sweep on the saddle.
static const double s_sweep_y0[] = {1e-2, 1e-3, 1e-4, 1e-6};

// Okabe-Ito colours, readable by colour-blind readers; no yellow on white.
static const char *const s_colors[DS_OPTIM_COUNT] = {
    "#000000", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00",
};

// s_view_t is how one surface is drawn.
typedef struct {
    double      xmin, xmax;   // plotted x range
    double      ymin, ymax;   // plotted y range
    const char *formula;      // f(x,y) in gnuplot syntax
    const char *levels;       // contour levels of f
    const char *cb;           // colour-bar settings
    const char *palette;      // background palette
    const char *title;        // first title line
    const char *curve;        // right panel: what is plotted against step
    const char *curve_using;  // ... as a gnuplot expression of $1, $2
    const char *curve_range;  // ... its y range
    double      min_x, min_y; // marked minimum; NAN for none
} s_view_t;

static const s_view_t s_views[DS_SURFACE_COUNT] = {
    [DS_SURFACE_BEALE] =
        {
            .xmin = -2.5,
            .xmax = 4.5,
            .ymin = -2.0,
            .ymax = 2.5,
            .formula = "(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2"
                       " + (2.625 - x + x*y**3)**2",
            .levels = "0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000",
            .cb = "set logscale cb\nset cbrange [0.01:3000]\n"
                  "set cblabel \"f(x, y), log scale\"\n",
            .palette = "(0 \"#ffffff\", 1 \"#dbe9f6\", 2 \"#8fbfe0\")",
            .title = "(a) Beale function f(x,y) = (1.5-x+xy)^2 + "
                     "(2.25-x+xy^2)^2 + (2.625-x+xy^3)^2",
            .curve = "f(x, y)",
            .curve_using = "f($1, $2)",
            .curve_range = "1e-12:100",
            .min_x = 3.0,
            .min_y = 0.5,
        },
    [DS_SURFACE_SADDLE] =
        {
            .xmin = -1.5,
            .xmax = 1.5,
            .ymin = -1.5,
            .ymax = 1.5,
            .formula = "x**2 - y**2",
            .levels = "-2, -1.5, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 1.5, 2",
            .cb = "set cbrange [-2.25:2.25]\nset cblabel \"f(x, y)\"\n",
            .palette = "(-1 \"#9ecae1\", 0 \"#ffffff\", 1 \"#fcbba1\")",
            .title = "(b) saddle f(x,y) = x^2 - y^2",
            .curve = "|y|",
            .curve_using = "abs($2)",
            .curve_range = "1e-4:1e4",
            .min_x = NAN,
            .min_y = NAN,
        },
};

// s_traj_t is one rule's run on one surface.
typedef struct {
    float *xy; // 2 * (steps + 1) floats; owned
    int    n;  // points stored: steps + 1 unless the run diverged
    double lr; // learning rate used
} s_traj_t;

// s_opts_t is the parsed command line.
typedef struct {
    const char *out;   // output directory
    int         steps; // updates per run
    double      lr;    // common lr for every rule but Adadelta; 0 = table
    bool        grid;  // print the Beale learning-rate grid
} s_opts_t;

const char *
ds_surface_name(ds_surface_t s)
{
    return s == DS_SURFACE_BEALE ? "beale" : "saddle";
}

double
ds_surface_f(ds_surface_t s, double x, double y)
{
    if (s == DS_SURFACE_SADDLE) {
        return x * x - y * y;
    }
    double a = 1.5 - x + x * y;
    double b = 2.25 - x + x * y * y;
    double c = 2.625 - x + x * y * y * y;
    return a * a + b * b + c * c;
}

void
ds_surface_grad(ds_surface_t s, double x, double y, double g[2])
{
    if (s == DS_SURFACE_SADDLE) {
        g[0] = 2.0 * x;
        g[1] = -2.0 * y;
        return;
    }
    double a = 1.5 - x + x * y;
    double b = 2.25 - x + x * y * y;
    double c = 2.625 - x + x * y * y * y;
    g[0] = 2.0 * (a * (y - 1.0) + b * (y * y - 1.0) + c * (y * y * y - 1.0));
    g[1] = 2.0 * x * (a + 2.0 * b * y + 3.0 * c * y * y);
}

void
ds_surface_start(ds_surface_t s, double xy[2])
{
    xy[0] = 1.0;
    xy[1] = s == DS_SURFACE_BEALE ? 1.5 : 1e-3;
}

double
ds_surface_lr(ds_surface_t s, ds_optim_kind_t kind)
{
    if ((unsigned)s >= DS_SURFACE_COUNT || (unsigned)kind >= DS_OPTIM_COUNT) {
        return 0.0;
    }
    return s_lrs[s][kind];
}

int
ds_surface_run(ds_surface_t s, ds_optim_kind_t kind, double lr, int steps,
               const double start[2], float *out_xy)
{
    if ((unsigned)s >= DS_SURFACE_COUNT || (unsigned)kind >= DS_OPTIM_COUNT ||
        steps < 0 || !(lr > 0.0) || !start || !out_xy) {
        return -EINVAL;
    }
    ds_optim_t o;
    char       err[128];
    ds_optim_defaults(&o, kind);
    if (ds_optim_check(&o, err, sizeof err) != 0) {
        return -EINVAL;
    }
    ds_optim_state_t st;
    int              rc = ds_optim_state_init(&st, &o, 2);
    if (rc != 0) {
        return rc;
    }
    float w[2] = {(float)start[0], (float)start[1]};
    out_xy[0] = w[0];
    out_xy[1] = w[1];
    int n = 1;
    for (int t = 1; t <= steps; t++) {
        double gd[2];
        ds_surface_grad(s, w[0], w[1], gd);
        float g[2] = {(float)gd[0], (float)gd[1]};
        if (!ds_vec_finite(g, 2)) {
            break;
        }
        ds_optim_step(&o, &st, 0, w, g, 2, lr);
        if (!ds_vec_finite(w, 2)) {
            break;
        }
        out_xy[2 * n] = w[0];
        out_xy[2 * n + 1] = w[1];
        n++;
    }
    ds_optim_state_fini(&st);
    return n;
}

int
ds_surface_escape_step(const float *xy, int npoints, double threshold)
{
    for (int i = 0; i < npoints; i++) {
        if (fabs(xy[2 * i + 1]) > threshold) {
            return i;
        }
    }
    return -1;
}

static void
s_usage(FILE *f)
{
    fprintf(f,
            "usage: descent optimizers [--out DIR] [--steps N] [--lr X] "
            "[--grid]\n\n"
            "Runs the seven update rules (sgd, momentum, nag, adagrad, "
            "adadelta, rmsprop,\n"
            "adam; common/optim.h with PyTorch's defaults) on Beale's "
            "function and on the\n"
            "saddle x^2 - y^2, as in Figure 4 of Ruder's survey. Prints a "
            "table per surface\n"
            "and writes DIR/trajectories.csv, DIR/beale.png and "
            "DIR/saddle.png (drawn by\n"
            "gnuplot, Debian package gnuplot-nox, from DIR/beale.gp and "
            "DIR/saddle.gp).\n\n"
            "  --out DIR   output directory (default runs/optimizers)\n"
            "  --steps N   updates per run, 1..%d (default 300)\n"
            "  --lr X      one learning rate X for every rule but Adadelta, "
            "which keeps\n"
            "              lr 1 (Zeiler's rule); default: each rule's lr "
            "from the table\n"
            "  --grid      also print final f on Beale for each rule over a "
            "grid of lr\n"
            "  --help      this text\n\n"
            "docs/optimizers-pictures.md explains the settings and the "
            "results.\n",
            S_MAX_STEPS);
}

// s_value returns the value of option name at argv[*i] ("--name V" or
// "--name=V"), advancing *i past it, or NULL if argv[*i] is not name.
// *missing is set when the option is there without a value.
static const char *
s_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0) {
        return NULL;
    }
    if (argv[*i][len] == '=') {
        return argv[*i] + len + 1;
    }
    if (argv[*i][len] != '\0') {
        return NULL;
    }
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

// s_parse fills o from argv. Returns 0, 1 for --help, or -EINVAL with the
// reason already logged.
static int
s_parse(int argc, char **argv, s_opts_t *o)
{
    *o = (s_opts_t){.out = "runs/optimizers", .steps = 300};
    for (int i = 1; i < argc; i++) {
        bool        missing = false;
        const char *v;
        char       *end;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        } else if (strcmp(argv[i], "--grid") == 0) {
            o->grid = true;
        } else if ((v = s_value(argc, argv, &i, "--out", &missing))) {
            if (*v == '\0') {
                ds_log(DS_ERROR, S_WHO, "--out: empty directory name");
                return -EINVAL;
            }
            o->out = v;
        } else if ((v = s_value(argc, argv, &i, "--steps", &missing))) {
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || end == v || *end || n < 1 || n > S_MAX_STEPS) {
                ds_log(DS_ERROR, S_WHO, "--steps %s: must be 1..%d", v,
                       S_MAX_STEPS);
                return -EINVAL;
            }
            o->steps = (int)n;
        } else if ((v = s_value(argc, argv, &i, "--lr", &missing))) {
            errno = 0;
            double x = strtod(v, &end);
            if (errno || end == v || *end || !(x > 0.0) || !isfinite(x)) {
                ds_log(DS_ERROR, S_WHO, "--lr %s: must be a number > 0", v);
                return -EINVAL;
            }
            o->lr = x;
        } else if (missing) {
            ds_log(DS_ERROR, S_WHO, "%s: needs a value", argv[i]);
            return -EINVAL;
        } else {
            ds_log(DS_ERROR, S_WHO, "unknown option \"%s\"", argv[i]);
            return -EINVAL;
        }
    }
    return 0;
}

// s_mkdirs creates dir and its missing parents. Returns 0 or -errno.
static int
s_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        return -ENAMETOOLONG;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            return -errno;
        }
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        return -errno;
    }
    return S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
}

static double
s_rule_lr(const s_opts_t *o, ds_surface_t s, ds_optim_kind_t k)
{
    if (o->lr > 0.0) {
        return k == DS_OPTIM_ADADELTA ? 1.0 : o->lr;
    }
    return ds_surface_lr(s, k);
}

// s_run_one runs kind on s from start into t, allocating t->xy.
static int
s_run_one(ds_surface_t s, ds_optim_kind_t k, double lr, int steps,
          const double start[2], s_traj_t *t)
{
    t->lr = lr;
    t->xy = malloc(2 * ((size_t)steps + 1) * sizeof *t->xy);
    if (!t->xy) {
        return -ENOMEM;
    }
    t->n = ds_surface_run(s, k, lr, steps, start, t->xy);
    return t->n < 0 ? t->n : 0;
}

static int
s_write_csv(const char *path, s_traj_t runs[][DS_OPTIM_COUNT])
{
    FILE *f = fopen(path, "w");
    if (!f) {
        return -errno;
    }
    fprintf(f, "surface,rule,step,x,y,f\n");
    for (int s = 0; s < DS_SURFACE_COUNT; s++) {
        for (int k = 0; k < DS_OPTIM_COUNT; k++) {
            const s_traj_t *t = &runs[s][k];
            for (int i = 0; i < t->n; i++) {
                double x = t->xy[2 * i], y = t->xy[2 * i + 1];
                fprintf(f, "%s,%s,%d,%.9g,%.9g,%.9g\n", ds_surface_name(s),
                        ds_optim_name(k), i, x, y, ds_surface_f(s, x, y));
            }
        }
    }
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0) {
        rc = -errno;
    }
    return rc;
}

static void
s_print_table(ds_surface_t s, s_traj_t *runs, int steps, const double st[2])
{
    bool saddle = s == DS_SURFACE_SADDLE;
    printf("\n%s: %d steps from (%g, %g)%s\n", ds_surface_name(s), steps, st[0],
           st[1],
           saddle ? "; escape = first step with |y| > 1"
                  : "; dist = distance to the minimum (3, 0.5)");
    printf("%-9s %7s %12s %12s %12s %10s\n", "rule", "lr", "final x", "final y",
           "final f", saddle ? "escape" : "dist");
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        const s_traj_t *t = &runs[k];
        double          x = t->xy[2 * (t->n - 1)];
        double          y = t->xy[2 * (t->n - 1) + 1];
        char            last[32];
        if (saddle) {
            int e = ds_surface_escape_step(t->xy, t->n, DS_SURFACE_ESCAPE);
            if (e < 0) {
                snprintf(last, sizeof last, "never");
            } else {
                snprintf(last, sizeof last, "%d", e);
            }
        } else {
            snprintf(last, sizeof last, "%.3g", hypot(x - 3.0, y - 0.5));
        }
        printf("%-9s %7g %12.6g %12.6g %12.6g %10s", ds_optim_name(k), t->lr, x,
               y, ds_surface_f(s, x, y), last);
        if (t->n < steps + 1) {
            printf("  (diverged after step %d)", t->n - 1);
        }
        printf("\n");
    }
}

// s_print_sweep prints the saddle's escape step for several start heights:
// the steps the scale-free rules need do not depend on it.
static int
s_print_sweep(const s_opts_t *o)
{
    int    n = sizeof s_sweep_y0 / sizeof s_sweep_y0[0];
    float *xy = malloc(2 * ((size_t)o->steps + 1) * sizeof *xy);
    if (!xy) {
        return -ENOMEM;
    }
    printf("\nsaddle: escape step (|y| > 1 within %d steps) by start "
           "(1, y0), same lr\n",
           o->steps);
    printf("%-9s %7s", "rule", "lr");
    for (int j = 0; j < n; j++) {
        char head[24];
        snprintf(head, sizeof head, "y0=%g", s_sweep_y0[j]);
        printf(" %10s", head);
    }
    printf("\n");
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        double lr = s_rule_lr(o, DS_SURFACE_SADDLE, k);
        printf("%-9s %7g", ds_optim_name(k), lr);
        for (int j = 0; j < n; j++) {
            double start[2] = {1.0, s_sweep_y0[j]};
            int    m =
                ds_surface_run(DS_SURFACE_SADDLE, k, lr, o->steps, start, xy);
            if (m < 0) {
                free(xy);
                return m;
            }
            int e = ds_surface_escape_step(xy, m, DS_SURFACE_ESCAPE);
            if (e < 0) {
                printf(" %10s", "never");
            } else {
                printf(" %10d", e);
            }
        }
        printf("\n");
    }
    free(xy);
    return 0;
}

// s_print_grid prints final f on Beale after o->steps steps for each rule
// and each lr of s_grid_lrs, and marks each rule's best with '*'.
static int
s_print_grid(const s_opts_t *o)
{
    int    n = sizeof s_grid_lrs / sizeof s_grid_lrs[0];
    float *xy = malloc(2 * ((size_t)o->steps + 1) * sizeof *xy);
    if (!xy) {
        return -ENOMEM;
    }
    double start[2];
    ds_surface_start(DS_SURFACE_BEALE, start);
    printf("\nbeale: final f after %d steps from (%g, %g) by lr "
           "('div' = diverged, '*' = lowest)\n",
           o->steps, start[0], start[1]);
    printf("%-9s", "rule");
    for (int j = 0; j < n; j++) {
        printf(" %8g", s_grid_lrs[j]);
    }
    printf("\n");
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        double f[sizeof s_grid_lrs / sizeof s_grid_lrs[0]];
        int    best = -1;
        for (int j = 0; j < n; j++) {
            int m = ds_surface_run(DS_SURFACE_BEALE, k, s_grid_lrs[j], o->steps,
                                   start, xy);
            if (m < 0) {
                free(xy);
                return m;
            }
            f[j] = m < o->steps + 1
                       ? INFINITY
                       : ds_surface_f(DS_SURFACE_BEALE, xy[2 * (m - 1)],
                                      xy[2 * (m - 1) + 1]);
            if (isfinite(f[j]) && (best < 0 || f[j] < f[best])) {
                best = j;
            }
        }
        printf("%-9s", ds_optim_name(k));
        for (int j = 0; j < n; j++) {
            char cell[24];
            if (!isfinite(f[j])) {
                snprintf(cell, sizeof cell, "div");
            } else {
                snprintf(cell, sizeof cell, "%.2g%s", f[j],
                         j == best ? "*" : "");
            }
            printf(" %8s", cell);
        }
        printf("\n");
    }
    free(xy);
    return 0;
}

// s_gp_map writes the left panel: the trajectories of runs on a heat map
// and contours of f.
static void
s_gp_map(FILE *f, ds_surface_t s, const s_traj_t *runs, int steps,
         const double st[2])
{
    const s_view_t *v = &s_views[s];
    fprintf(f, "set origin 0, 0\nset size 0.64, 0.93\n");
    fprintf(f, "set title \"trajectories on the contours of f\"\n");
    fprintf(f, "set xlabel \"x\"\nset ylabel \"y\"\n");
    fprintf(f, "set xrange [%g:%g]\nset yrange [%g:%g]\n", v->xmin, v->xmax,
            v->ymin, v->ymax);
    fprintf(f, "%s", v->cb);
    fprintf(f, "set palette defined %s\n", v->palette);
    fprintf(f, "set size ratio -1\nset clip one\nunset clip two\n");
    fprintf(f, "set key outside right top box opaque title \"rule (lr)\"\n");
    fprintf(f, "set colorbox user origin graph 1.04, graph 0 size "
               "char 2, graph 0.4\n");
    if (s == DS_SURFACE_SADDLE) {
        for (int sign = -1; sign <= 1; sign += 2) {
            fprintf(f,
                    "set arrow from %g, %g to %g, %g nohead dt 2 lw 1.5 "
                    "lc rgb \"#444444\" front\n",
                    v->xmin, sign * DS_SURFACE_ESCAPE, v->xmax,
                    sign * DS_SURFACE_ESCAPE);
        }
        fprintf(f, "set label \"|y| = %g: escaped\" at %g, %g left front\n",
                DS_SURFACE_ESCAPE, v->xmin + 0.05, DS_SURFACE_ESCAPE + 0.06);
    }
    fprintf(f, "plot $surface using 1:2:3 with image notitle, \\\n");
    fprintf(f, "     $contours using 1:2 with lines lw 0.8 "
               "lc rgb \"#8a8a8a\" title \"contours of f\", \\\n");
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        char diverged[48] = "";
        if (runs[k].n < steps + 1) {
            snprintf(diverged, sizeof diverged, ", diverged after step %d",
                     runs[k].n - 1);
        }
        fprintf(f,
                "     $%s using 1:2 with linespoints lw 2.2 pt 7 ps 0.45 "
                "lc rgb \"%s\" title \"%s (%g%s)\", \\\n",
                ds_optim_name(k), s_colors[k], ds_optim_name(k), runs[k].lr,
                diverged);
    }
    if (isfinite(v->min_x)) {
        fprintf(f,
                "     '+' using (%g):(%g) every ::0::0 with points pt 3 "
                "ps 3 lw 2.5 lc rgb \"#d62728\" title \"minimum (%g, %g)\", "
                "\\\n",
                v->min_x, v->min_y, v->min_x, v->min_y);
    }
    fprintf(f,
            "     '+' using (%g):(%g) every ::0::0 with points pt 6 ps 2.5 "
            "lw 2.5 lc rgb \"#000000\" title \"start (%g, %g)\"\n",
            st[0], st[1], st[0], st[1]);
}

// s_gp_curve writes the right panel: f (Beale) or |y| (saddle) against the
// step, on a log scale, so that runs hidden under each other on the map
// can be told apart.
static void
s_gp_curve(FILE *f, ds_surface_t s, int steps)
{
    const s_view_t *v = &s_views[s];
    fprintf(f, "unset arrow\nunset label\nunset colorbox\nunset key\n");
    fprintf(f, "set size noratio\nset origin 0.64, 0.05\nset size 0.36, "
               "0.83\n");
    fprintf(f, "set title \"%s against step (same colours)\"\n", v->curve);
    fprintf(f, "set xlabel \"step\"\nset ylabel \"%s\"\n", v->curve);
    fprintf(f, "set xrange [0:%d]\nset yrange [%s]\n", steps, v->curve_range);
    fprintf(f, "set logscale y\nset format y \"10^{%%L}\"\nset grid\n");
    if (s == DS_SURFACE_SADDLE) {
        fprintf(f,
                "set arrow from 0, %g to %d, %g nohead dt 2 lw 1.5 "
                "lc rgb \"#444444\" front\n",
                DS_SURFACE_ESCAPE, steps, DS_SURFACE_ESCAPE);
    }
    fprintf(f, "plot ");
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        fprintf(f, "%s$%s using 0:(%s) with lines lw 2.2 lc rgb \"%s\"",
                k ? ", \\\n     " : "", ds_optim_name(k), v->curve_using,
                s_colors[k]);
    }
    fprintf(f, "\n");
}

// s_write_gp writes the gnuplot script that draws surface s with its runs
// into png. The trajectories travel inside the script as data blocks.
static int
s_write_gp(const char *path, const char *png, ds_surface_t s,
           const s_traj_t *runs, int steps, const double st[2])
{
    const s_view_t *v = &s_views[s];
    FILE           *f = fopen(path, "w");
    if (!f) {
        return -errno;
    }
    fprintf(f, "# %s - generated by `descent optimizers`; run: gnuplot %s\n",
            strrchr(path, '/') ? strrchr(path, '/') + 1 : path, path);
    fprintf(f, "set terminal pngcairo size 1700,820 enhanced font \",11\"\n");
    fprintf(f, "set output \"%s\"\n", png);
    fprintf(f, "f(x, y) = %s\n", v->formula);
    fprintf(f, "set xrange [%g:%g]\nset yrange [%g:%g]\n", v->xmin, v->xmax,
            v->ymin, v->ymax);
    // The background image and the contour lines both come from gnuplot
    // sampling f; the contours are traced by gnuplot's own contour code.
    fprintf(f, "set samples 241\nset isosamples 241\n");
    fprintf(f, "set table $surface\nsplot f(x, y)\nunset table\n");
    fprintf(f, "set contour base\nunset surface\nset view map\n");
    fprintf(f, "set cntrparam levels discrete %s\n", v->levels);
    fprintf(f, "set table $contours\nsplot f(x, y)\nunset table\n");
    fprintf(f, "unset contour\n");
    for (int k = 0; k < DS_OPTIM_COUNT; k++) {
        fprintf(f, "$%s << EOD\n", ds_optim_name(k));
        for (int i = 0; i < runs[k].n; i++) {
            fprintf(f, "%.9g %.9g\n", runs[k].xy[2 * i], runs[k].xy[2 * i + 1]);
        }
        fprintf(f, "EOD\n");
    }
    fprintf(f,
            "set multiplot title \"%s\\n%d steps of each rule from (%g, %g) "
            "with PyTorch's defaults; after Ruder (2016), Figure 4\" "
            "font \",13\"\n",
            v->title, steps, st[0], st[1]);
    s_gp_map(f, s, runs, steps, st);
    s_gp_curve(f, s, steps);
    fprintf(f, "unset multiplot\n");
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0) {
        rc = -errno;
    }
    return rc;
}

// s_draw writes DIR/<surface>.gp and runs gnuplot on it for each surface.
static int
s_draw(const s_opts_t *o, s_traj_t runs[][DS_OPTIM_COUNT])
{
    if (!ds_gnuplot_available()) {
        ds_log(DS_ERROR, S_WHO,
               "gnuplot not found on PATH: the pictures need it; install the "
               "Debian package gnuplot-nox (apt-get install gnuplot-nox)");
        return -ENOENT;
    }
    if (strchr(o->out, '"') || strchr(o->out, '\\')) {
        ds_log(DS_ERROR, S_WHO,
               "--out %s: gnuplot cannot take quotes or backslashes", o->out);
        return -EINVAL;
    }
    for (int s = 0; s < DS_SURFACE_COUNT; s++) {
        char   gp[PATH_MAX], png[PATH_MAX];
        double st[2];
        ds_surface_start(s, st);
        if (snprintf(gp, sizeof gp, "%s/%s.gp", o->out, ds_surface_name(s)) >=
                (int)sizeof gp ||
            snprintf(png, sizeof png, "%s/%s.png", o->out,
                     ds_surface_name(s)) >= (int)sizeof png) {
            return -ENAMETOOLONG;
        }
        int rc = s_write_gp(gp, png, s, runs[s], o->steps, st);
        if (rc != 0) {
            ds_log(DS_ERROR, S_WHO, "%s: %s", gp, strerror(-rc));
            return rc;
        }
        rc = ds_gnuplot_run(gp);
        if (rc == -ENOENT) {
            ds_log(DS_ERROR, S_WHO, "cannot run gnuplot: install gnuplot-nox");
            return rc;
        }
        if (rc != 0) {
            ds_log(DS_ERROR, S_WHO, "gnuplot %s failed (%s)", gp,
                   strerror(-rc));
            return rc;
        }
        printf("wrote %s (script %s)\n", png, gp);
    }
    return 0;
}

int
ds_optimizers_main(int argc, char **argv)
{
    s_opts_t o;
    int      rc = s_parse(argc, argv, &o);
    if (rc == 1) {
        s_usage(stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "usage: descent optimizers [--out DIR] [--steps N] "
                        "[--lr X] [--grid]; see --help\n");
        return 2;
    }
    rc = s_mkdirs(o.out);
    if (rc != 0) {
        ds_log(DS_ERROR, S_WHO, "--out %s: %s", o.out, strerror(-rc));
        return 1;
    }
    s_traj_t runs[DS_SURFACE_COUNT][DS_OPTIM_COUNT] = {0};
    int      status = 0;
    for (int s = 0; s < DS_SURFACE_COUNT && status == 0; s++) {
        double st[2];
        ds_surface_start(s, st);
        for (int k = 0; k < DS_OPTIM_COUNT && status == 0; k++) {
            rc = s_run_one(s, k, s_rule_lr(&o, s, k), o.steps, st, &runs[s][k]);
            if (rc != 0) {
                ds_log(DS_ERROR, S_WHO, "%s on %s: %s", ds_optim_name(k),
                       ds_surface_name(s), strerror(-rc));
                status = 1;
            }
        }
    }
    if (status == 0) {
        printf("descent optimizers: PyTorch's defaults (ds_optim_defaults) "
               "for every rule;\n%s\n",
               o.lr > 0.0 ? "one lr for all rules but Adadelta (lr 1)"
                          : "per-rule lr: the best of --grid on Beale, "
                            "reused on the saddle");
        for (int s = 0; s < DS_SURFACE_COUNT; s++) {
            double st[2];
            ds_surface_start(s, st);
            s_print_table(s, runs[s], o.steps, st);
        }
        if (s_print_sweep(&o) != 0 || (o.grid && s_print_grid(&o) != 0)) {
            ds_log(DS_ERROR, S_WHO, "out of memory");
            status = 1;
        }
        printf("\n");
    }
    if (status == 0) {
        char csv[PATH_MAX];
        if (snprintf(csv, sizeof csv, "%s/trajectories.csv", o.out) >=
            (int)sizeof csv) {
            rc = -ENAMETOOLONG;
        } else {
            rc = s_write_csv(csv, runs);
        }
        if (rc != 0) {
            ds_log(DS_ERROR, S_WHO, "%s/trajectories.csv: %s", o.out,
                   strerror(-rc));
            status = 1;
        } else {
            printf("wrote %s\n", csv);
        }
    }
    if (status == 0 && s_draw(&o, runs) != 0) {
        status = 1;
    }
    for (int s = 0; s < DS_SURFACE_COUNT; s++) {
        for (int k = 0; k < DS_OPTIM_COUNT; k++) {
            free(runs[s][k].xy);
        }
    }
    return status;
}
