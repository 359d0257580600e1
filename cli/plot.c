// SPDX-License-Identifier: MIT
// plot - descent plot: a job's metrics log drawn as loss and accuracy
// curves.
#include "cli/plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gnuplot.h"

// s_field copies the value of "key": in line (a number or null) to out;
// "NaN" when absent or null, which gnuplot leaves out of the curves.
static void
s_field(const char *line, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p || strncmp(p + strlen(pat), "null", 4) == 0) {
        snprintf(out, len, "NaN");
        return;
    }
    p += strlen(pat);
    size_t n = strspn(p, "0123456789.eE+-");
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

static int
s_usage(FILE *f)
{
    fprintf(f, "usage: descent plot METRICS.jsonl [--out FILE.png]\n\n"
               "Draws rank 0's training loss and accuracy, and its test and "
               "validation\nloss and accuracy, against epochs, with gnuplot "
               "(Debian package gnuplot-nox).\nThe default output is "
               "metrics.png beside the log.\n");
    return f == stdout ? 0 : 2;
}

int
ds_plot_main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return s_usage(stdout);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] != '-' && !in) {
            in = argv[i];
        } else {
            fprintf(stderr, "descent plot: unexpected argument \"%s\"\n",
                    argv[i]);
            return s_usage(stderr);
        }
    }
    if (!in) {
        return s_usage(stderr);
    }
    FILE *f = fopen(in, "r");
    if (!f) {
        fprintf(stderr, "descent plot: cannot read %s\n", in);
        return 1;
    }
    char png[4000], dat[4096], gp[4096];
    if (out) {
        snprintf(png, sizeof png, "%s", out);
    } else {
        const char *slash = strrchr(in, '/');
        snprintf(png, sizeof png, "%.*smetrics.png",
                 slash ? (int)(slash - in + 1) : 0, in);
    }
    snprintf(dat, sizeof dat, "%s.dat", png);
    snprintf(gp, sizeof gp, "%s.gp", png);
    if (strpbrk(png, "'\"\\")) {
        fclose(f);
        fprintf(stderr, "descent plot: gnuplot cannot take quotes in %s\n",
                png);
        return 2;
    }
    FILE *d = fopen(dat, "w");
    if (!d) {
        fclose(f);
        fprintf(stderr, "descent plot: cannot write %s\n", dat);
        return 1;
    }
    // Rank 0's epoch lines: the ones with test (and validation) figures.
    char line[4096];
    int  rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"rank\":0,") || !strstr(line, "\"final\":false")) {
            continue;
        }
        const char *keys[] = {"epoch",       "loss",          "accuracy",
                              "test_loss",   "test_accuracy", "val_loss",
                              "val_accuracy"};
        for (int k = 0; k < 7; k++) {
            char v[64];
            s_field(line, keys[k], v, sizeof v);
            fprintf(d, "%s%s", k ? " " : "", v);
        }
        fprintf(d, "\n");
        rows++;
    }
    fclose(f);
    fclose(d);
    if (rows == 0) {
        fprintf(stderr, "descent plot: %s has no epoch reports of rank 0\n",
                in);
        return 1;
    }
    FILE *g = fopen(gp, "w");
    if (!g) {
        fprintf(stderr, "descent plot: cannot write %s\n", gp);
        return 1;
    }
    fprintf(g,
            "set terminal pngcairo size 1200,500\n"
            "set output '%s'\n"
            "set multiplot layout 1,2 title 'descent: %s'\n"
            "set xlabel 'epoch'\nset grid\nset key top right\n"
            "set ylabel 'loss'\n"
            "plot '%s' using 1:2 with linespoints title 'train', "
            "'' using 1:4 with linespoints title 'test', "
            "'' using 1:6 with linespoints title 'validation'\n"
            "set ylabel 'accuracy'\nset key bottom right\n"
            "plot '%s' using 1:3 with linespoints title 'train', "
            "'' using 1:5 with linespoints title 'test', "
            "'' using 1:7 with linespoints title 'validation'\n"
            "unset multiplot\n",
            png, in, dat, dat);
    fclose(g);
    if (!ds_gnuplot_available()) {
        fprintf(stderr,
                "descent plot: gnuplot not found; install the Debian "
                "package gnuplot-nox (data in %s, script in %s)\n",
                dat, gp);
        return 1;
    }
    if (ds_gnuplot_run(gp) != 0) {
        fprintf(stderr, "descent plot: gnuplot failed on %s\n", gp);
        return 1;
    }
    printf("wrote %s (%d epochs)\n", png, rows);
    return 0;
}
