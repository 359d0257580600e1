// SPDX-License-Identifier: MIT
// main - the descent binary: subcommand dispatch and --help.
#include <cblas.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/datagen.h"
#include "cli/optimizers.h"
#include "cli/plot.h"
#include "cli/run.h"
#include "common/config.h"
#include "common/job.h"
#include "common/log.h"
#include "server/scheduler.h"
#include "server/server.h"
#include "worker/worker.h"

extern char **environ;

typedef struct {
    const char *name; // subcommand
    const char *args; // synopsis after the name
    const char *what; // one line of help
} s_cmd_t;

static const s_cmd_t s_cmds[] = {
    {"run", "[job.ini] [options]",
     "start a local cluster (scheduler, servers, workers) and train"},
    {"scheduler", "[options]",
     "coordinate a job: membership, shard map, barriers, job end"},
    {"server", "[options]", "hold parameter ranges and apply pushes"},
    {"worker", "[options]", "train a model replica on a data partition"},
    {"optimizers", "[--out DIR] [--steps N] [--lr X] [--grid]",
     "the seven update rules on Beale and a saddle (Ruder's Figure 4)"},
    {"plot", "METRICS.jsonl [--out FILE.png]",
     "draw a job's loss and accuracy curves from its metrics log"},
    {"datagen", "--out FILE [--n N] [--features F] [--nnz K] [--seed S] ...",
     "write a seeded synthetic sparse LIBSVM dataset with a planted model"},
    {"config", "[--markdown | --settings] [job.ini] [options]",
     "print the settings a job would use, as JSON (--markdown: the option "
     "reference of docs/configuration.md; --settings: the job-wide settings "
     "a node sends in REGISTER, one per line)"},
};

// s_print_sized prints what a snprintf-like writer produces.
static int
s_print_sized(size_t (*fn)(char *, size_t))
{
    size_t need = fn(NULL, 0);
    char  *buf = malloc(need + 1);
    if (!buf) {
        return 1;
    }
    fn(buf, need + 1);
    fputs(buf, stdout);
    free(buf);
    return 0;
}

static void
s_usage(FILE *f)
{
    fprintf(f, "usage: descent <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof s_cmds / sizeof s_cmds[0]; i++) {
        fprintf(f, "  %-10s %s\n", s_cmds[i].name, s_cmds[i].what);
    }
    fprintf(f, "\n'descent <command> --help' lists the options; "
               "docs/configuration.md explains them.\n");
}

static void
s_command_help(const s_cmd_t *c)
{
    printf("usage: descent %s %s\n\n%s.\n\n", c->name, c->args, c->what);
    size_t need = ds_config_usage(NULL, 0);
    char  *buf = malloc(need + 1);
    if (buf) {
        ds_config_usage(buf, need + 1);
        fputs(buf, stdout);
        free(buf);
    }
}

int
main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const s_cmd_t *cmd = NULL;
    for (size_t i = 0; i < sizeof s_cmds / sizeof s_cmds[0]; i++) {
        if (strcmp(argv[1], s_cmds[i].name) == 0) {
            cmd = &s_cmds[i];
        }
    }
    if (!cmd) {
        fprintf(stderr, "descent: unknown command \"%s\"\n\n", argv[1]);
        s_usage(stderr);
        return 2;
    }
    if (strcmp(cmd->name, "optimizers") == 0) {
        return ds_optimizers_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd->name, "plot") == 0) {
        return ds_plot_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd->name, "datagen") == 0) {
        return ds_datagen_main(argc - 1, argv + 1);
    }
    bool is_config = strcmp(cmd->name, "config") == 0;
    if (is_config && argc > 2 && strcmp(argv[2], "--markdown") == 0) {
        return s_print_sized(ds_config_markdown);
    }
    // --settings comes first; the job file and options follow it.
    bool settings = is_config && argc > 2 && strcmp(argv[2], "--settings") == 0;
    if (settings) {
        argv[2] = argv[1];
        argv++;
        argc--;
    }
    bool        is_run = strcmp(cmd->name, "run") == 0 || is_config;
    ds_config_t cfg;
    bool        help = false;
    char        err[1024];
    int rc = ds_config_from_args(&cfg, argc - 1, argv + 1, environ, is_run,
                                 &help, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "descent %s: %s\n", cmd->name, err);
        return 2;
    }
    if (help) {
        s_command_help(cmd);
        return 0;
    }
    rc = ds_job_check(&cfg, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "descent %s: %s\n", cmd->name, err);
        return 2;
    }
    if (settings) {
        char **items = NULL;
        size_t n = 0;
        if (ds_config_fingerprint(&cfg, &items, &n) != 0) {
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            printf("%s\n", items[i]);
        }
        free(items);
        return 0;
    }
    if (is_config) {
        size_t need = ds_config_write_json(&cfg, NULL, 0);
        char  *js = malloc(need + 1);
        if (!js) {
            return 1;
        }
        ds_config_write_json(&cfg, js, need + 1);
        printf("%s\n", js);
        free(js);
        return 0;
    }
    ds_log_level = ds_log_parse_level(cfg.log_level);
    // Values travel in frames of up to 4 MiB. By default glibc serves such
    // buffers with a fresh mmap and returns them on free, so every message
    // page-faults; keeping them on the heap avoids that.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    // No role needs BLAS threads: workers compute on libuv's thread pool and
    // the others do no dense math. Idle OpenBLAS threads only spin.
    openblas_set_num_threads(1);
    // A write past a file-size limit (ulimit -f) then fails with EFBIG, and
    // the job fails naming the file, instead of the process dying silently.
    signal(SIGXFSZ, SIG_IGN);
    if (strcmp(cmd->name, "scheduler") == 0) {
        return ds_scheduler_main(&cfg);
    }
    if (strcmp(cmd->name, "server") == 0) {
        return ds_server_main(&cfg);
    }
    if (strcmp(cmd->name, "worker") == 0) {
        return ds_worker_main(&cfg);
    }
    // run: children get the job file as --config and every flag as given.
    const char *jobfile = NULL;
    char      **fwd = calloc((size_t)argc, sizeof *fwd);
    int         nfwd = 0;
    if (!fwd) {
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) {
            jobfile = i + 1 < argc ? argv[++i] : NULL;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            jobfile = argv[i] + 9;
        } else if (argv[i][0] != '-' && (i == 2 || argv[i - 1][0] != '-' ||
                                         strchr(argv[i - 1], '='))) {
            jobfile = argv[i];
        } else {
            fwd[nfwd++] = argv[i];
        }
    }
    char    exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        free(fwd);
        fprintf(stderr, "descent run: cannot find this binary\n");
        return 1;
    }
    exe[n] = '\0';
    rc = ds_run_main(&cfg, exe, jobfile, fwd, nfwd);
    free(fwd);
    return rc;
}
