// SPDX-License-Identifier: MIT
// run - the embedded default: a whole local cluster as child processes.
#include "cli/run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common/idx.h"
#include "common/log.h"
#include "common/node.h"
#include "common/util.h"

// s_child_t is one spawned node.
typedef struct {
    uv_process_t proc;    // the child
    const char  *role;    // scheduler, server or worker
    int          index;   // index among its role
    bool         running; // not yet exited
    int64_t      status;  // exit status
    int          signal;  // terminating signal, 0 if none
    unsigned     node_id; // the node id it was started with, 0 = none
} s_child_t;

typedef struct {
    uv_loop_t          loop;     // our loop
    s_child_t         *kids;     // every child; kids[0] is the scheduler
    int                sched;    // index of the scheduler running now
    char             **sargs;    // the flags the scheduler gets
    int                nkids;    // spawned children
    int                running;  // children still running
    uv_timer_t         grace;    // kill stragglers after the scheduler ends
    uv_signal_t        sigint;   // Ctrl-C: stop the children
    uv_signal_t        sigterm;  // SIGTERM: stop the children
    bool               failed;   // a child failed
    int                cap;      // slots in kids
    const ds_config_t *cfg;      // the job's settings
    const char        *exe;      // this binary
    const char        *jobfile;  // the job file, or NULL
    char             **fwd;      // flags given to every child
    int                nfwd;     // entries in fwd
    char             **nargs;    // the flags servers and workers get
    int                restarts; // workers started again
    bool               termed;   // SIGTERM sent to every child
    char cause[512]; // why the job is stopped: the first child that failed
} s_run_t;

static int s_spawn(s_run_t *r, const char *exe, const char *role, int index,
                   const char *jobfile, char **extra, int nextra, char **fwd,
                   int nfwd);

// s_how writes how child c ended, by its exit status or signal.
static void
s_how(const s_child_t *c, char *buf, size_t len)
{
    if (c->signal != 0) {
        snprintf(buf, len, "was killed by signal %d (%s)", c->signal,
                 strsignal(c->signal));
    } else if (c->status == DS_EXIT_REPLACED) {
        snprintf(buf, len,
                 "exited with status %d: the scheduler declared it dead and "
                 "replaced it",
                 DS_EXIT_REPLACED);
    } else if (c->status == 2) {
        snprintf(buf, len, "exited with status 2: its settings were refused");
    } else {
        snprintf(buf, len, "exited with status %lld", (long long)c->status);
    }
}

// s_restart starts worker or server c again when it was killed by a
// signal (not by us): it finds the node id the process wrote to
// <out>/nodes/<pid> and the new process rejoins the job with it (a server
// only when its ranges are replicated). Returns 1 if it did.
static int
s_restart(s_run_t *r, s_child_t *c, int pid)
{
    bool worker = strcmp(c->role, "worker") == 0;
    bool server = strcmp(c->role, "server") == 0;
    if (c == &r->kids[r->sched] && r->cfg->restart_scheduler &&
        r->nkids < r->cap) {
        // A new scheduler on the same port carries on from its state file;
        // the nodes keep training meanwhile and find it there.
        static char recover[] = "--job.recover=true";
        char       *extra[3] = {r->sargs[0], r->sargs[1], recover};
        ds_log(DS_WARN, "run", "the scheduler was killed; starting it again");
        r->sched = r->nkids;
        if (s_spawn(r, r->exe, "scheduler", 0, r->jobfile, extra, 3, r->fwd,
                    r->nfwd) != 0) {
            return 0;
        }
        r->restarts++;
        return 1;
    }
    if (!(worker && r->cfg->restart_workers) &&
        !(server && r->cfg->restart_servers && r->cfg->replicas > 1)) {
        return 0;
    }
    if (r->nkids >= r->cap) {
        return 0;
    }
    char     path[DS_STR_MAX + 48];
    unsigned id = 0;
    snprintf(path, sizeof path, "%s/nodes/%d", r->cfg->out, pid);
    FILE *f = fopen(path, "r");
    if (f && (fscanf(f, "%u", &id) != 1 || id == 0)) {
        fclose(f);
        return 0;
    }
    // No record: it was killed before it registered. It keeps the id it
    // was started with; with none it had no place yet, and the new process
    // joins like the first would have.
    if (f) {
        fclose(f);
    } else {
        id = c->node_id;
    }
    static char flag[32];
    snprintf(flag, sizeof flag, "--cluster.node_id=%u", id);
    char *extra[4] = {r->nargs[0], r->nargs[1], r->nargs[2], flag};
    char how[128];
    s_how(c, how, sizeof how);
    if (id) {
        ds_log(DS_WARN, "run", "%s %d (node %u) %s; starting it again",
               c->role, c->index, id, how);
    } else {
        ds_log(DS_WARN, "run",
               "%s %d %s before it registered; starting it again", c->role,
               c->index, how);
    }
    if (s_spawn(r, r->exe, c->role, c->index, r->jobfile, extra, id ? 4 : 3,
                r->fwd, r->nfwd) != 0) {
        return 0;
    }
    r->kids[r->nkids - 1].node_id = id;
    r->restarts++;
    return 1;
}

static void s_on_grace(uv_timer_t *t);

static void
s_kill_all(s_run_t *r, int sig)
{
    for (int i = 0; i < r->nkids; i++) {
        if (r->kids[i].running) {
            uv_process_kill(&r->kids[i].proc, sig);
        }
    }
}

// s_stop_all stops every child with SIGTERM, and with SIGKILL 5 s later.
// The scheduler reads the cause from <out>/run.cause when SIGTERM arrives:
// the summary gives it rather than the signal.
static void
s_stop_all(s_run_t *r)
{
    r->termed = true;
    if (r->cause[0]) {
        char      path[DS_STR_MAX + 32], err[DS_STR_MAX + 160];
        ds_part_t part = {r->cause, strlen(r->cause)};
        snprintf(path, sizeof path, "%s/run.cause", r->cfg->out);
        if (ds_write_atomic(path, &part, 1, err, sizeof err) != 0) {
            ds_log(DS_WARN, "run", "%s", err);
        }
    }
    s_kill_all(r, SIGTERM);
    uv_timer_start(&r->grace, s_on_grace, 5000, 0);
}

static void
s_on_grace(uv_timer_t *t)
{
    s_run_t *r = t->data;
    if (!r->termed) {
        s_stop_all(r);
        return;
    }
    for (int i = 0; i < r->nkids; i++) {
        if (r->kids[i].running) {
            ds_log(DS_WARN, "run", "%s %d did not stop; killing it",
                   r->kids[i].role, r->kids[i].index);
        }
    }
    s_kill_all(r, SIGKILL);
}

static void
s_close_handles(s_run_t *r)
{
    uv_timer_stop(&r->grace);
    uv_close((uv_handle_t *)&r->grace, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
}

static void
s_on_exit(uv_process_t *p, int64_t status, int term_signal)
{
    s_child_t *c = p->data;
    s_run_t   *r = p->loop->data;
    c->running = false;
    c->status = status;
    c->signal = term_signal;
    uv_close((uv_handle_t *)p, NULL);
    r->running--;
    bool bad = status != 0 || term_signal != 0;
    bool replaced = term_signal == 0 && status == DS_EXIT_REPLACED;
    bool worker = strcmp(c->role, "worker") == 0;
    if ((term_signal != 0 || (replaced && !worker)) && !r->failed &&
        s_restart(r, c, p->pid)) {
        bad = false;
    } else if (worker && (replaced || term_signal != 0) && !r->failed) {
        // Not started again: the scheduler gives its partition to another
        // worker (or, when it cannot, ends the job itself).
        ds_log(DS_WARN, "run", "worker %d (pid %d) %s; not started again",
               c->index, p->pid, replaced ? "was replaced" : "was killed");
        bad = false;
    } else if ((term_signal != 0 || replaced) && !r->failed &&
               strcmp(c->role, "server") == 0 && r->cfg->replicas > 1) {
        // Its ranges fail over to their backups: the scheduler decides
        // whether the job can go on.
        ds_log(DS_WARN, "run", "server %d (pid %d) %s; its ranges fail over",
               c->index, p->pid, replaced ? "was replaced" : "was killed");
        bad = false;
    }
    if (bad && !r->failed) {
        r->failed = true;
        char how[128];
        s_how(c, how, sizeof how);
        snprintf(r->cause, sizeof r->cause, "%s %d (pid %d) %s", c->role,
                 c->index, p->pid, how);
        ds_log(DS_ERROR, "run", "%s", r->cause);
        if (term_signal == 0 && c != &r->kids[r->sched] &&
            r->kids[r->sched].running) {
            // A node that fails tells the scheduler why before it exits
            // (ds_node_stop), and the scheduler ends the job with that
            // cause; the others are stopped only if it does not.
            uv_timer_start(&r->grace, s_on_grace, 3000, 0);
        } else {
            // Without this node the job cannot finish: stop the others now
            // rather than waiting for their failure detectors.
            s_stop_all(r);
        }
    } else if (c == &r->kids[r->sched] && r->running > 0) {
        uv_timer_start(&r->grace, s_on_grace, 5000, 0);
    }
    if (r->running == 0) {
        s_close_handles(r);
    }
}

static void
s_on_signal(uv_signal_t *s, int signum)
{
    s_run_t *r = s->data;
    ds_log(DS_WARN, "run", "signal %d: stopping the cluster", signum);
    r->failed = true;
    if (!r->cause[0]) {
        snprintf(r->cause, sizeof r->cause, "descent run stopped by signal %d",
                 signum);
    }
    s_stop_all(r);
}

// s_free_port asks the kernel for a free TCP port on loopback. Another
// process could take it before the scheduler binds; the scheduler then
// reports the clash clearly.
static int
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -errno;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t          len = sizeof a;
    int                port = -EADDRNOTAVAIL;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

static int
s_spawn(s_run_t *r, const char *exe, const char *role, int index,
        const char *jobfile, char **extra, int nextra, char **fwd, int nfwd)
{
    char *args[64 + 8];
    int   n = 0;
    args[n++] = (char *)exe;
    args[n++] = (char *)role;
    if (jobfile) {
        args[n++] = "--config";
        args[n++] = (char *)jobfile;
    }
    for (int i = 0; i < nfwd && n < 40; i++) {
        args[n++] = fwd[i];
    }
    for (int i = 0; i < nextra && n < 70; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    s_child_t *c = &r->kids[r->nkids];
    c->role = role;
    c->index = index;
    c->proc.data = c;
    uv_stdio_container_t io[3] = {{.flags = UV_INHERIT_FD, .data.fd = 0},
                                  {.flags = UV_INHERIT_FD, .data.fd = 1},
                                  {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t opt = {.exit_cb = s_on_exit,
                                .file = exe,
                                .args = args,
                                .stdio_count = 3,
                                .stdio = io};
    int                  rc = uv_spawn(&r->loop, &c->proc, &opt);
    if (rc != 0) {
        ds_log(DS_ERROR, "run", "cannot start %s %d: %s", role, index,
               uv_strerror(rc));
        return rc;
    }
    c->running = true;
    r->nkids++;
    r->running++;
    return 0;
}

static int
s_check_data(const ds_config_t *cfg)
{
    if (strcmp(cfg->format, "libsvm") == 0) {
        const char *files[] = {cfg->train_file, cfg->test_file};
        for (int i = 0; i < 2; i++) {
            if (access(files[i], R_OK) != 0) {
                ds_log(DS_ERROR, "run", "missing data file %s: %s", files[i],
                       strerror(errno));
                return -ENOENT;
            }
        }
        return 0;
    }
    const char *names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (size_t i = 0; i < 4; i++) {
        char p[DS_STR_MAX + 64], err[DS_STR_MAX + 192];
        int  rc =
            ds_idx_find(cfg->data_dir, names[i], p, sizeof p, err, sizeof err);
        if (rc != 0) {
            ds_log(DS_ERROR, "run", "%s", err);
            return rc;
        }
    }
    return 0;
}

// s_refuse_endpoints refuses [cluster] scheduler and bind, which descent
// run would otherwise ignore: it picks the scheduler's address itself.
static int
s_refuse_endpoints(const ds_config_t *cfg)
{
    static ds_config_t def;
    ds_config_defaults(&def);
    const char *key = strcmp(cfg->scheduler, def.scheduler) != 0 ? "scheduler"
                      : strcmp(cfg->bind, def.bind) != 0         ? "bind"
                                                                 : NULL;
    if (!key) {
        return 0;
    }
    ds_log(DS_ERROR, "run",
           "[cluster] %s = %s: descent run starts the scheduler on a free "
           "port of 127.0.0.1 and sets cluster.scheduler and cluster.bind "
           "itself; remove the setting, or start the scheduler, servers and "
           "workers yourself (docs/deploy.md)",
           key, key[0] == 's' ? cfg->scheduler : cfg->bind);
    return -EINVAL;
}

// s_lock_out creates the output directory and locks it for this run:
// two runs writing one directory would mix their files. Removes what a
// killed run left there: temporary files and the cause of its stop.
// Returns the lock's fd, or a negative errno (logged).
static int
s_lock_out(const ds_config_t *cfg, const char *jobfile, char **fwd, int nfwd)
{
    int rc = ds_mkdirs(cfg->out);
    if (rc != 0) {
        ds_log(DS_ERROR, "run", "cannot create the output directory %s: %s",
               cfg->out, strerror(-rc));
        return rc;
    }
    char host[256] = "?", holder[1024], path[DS_STR_MAX + 32];
    char err[DS_STR_MAX + 1200];
    gethostname(host, sizeof host - 1);
    int n = snprintf(holder, sizeof holder, "pid %d on host %s: descent run",
                     (int)getpid(), host);
    for (int i = -1; i < nfwd && n > 0 && (size_t)n < sizeof holder; i++) {
        const char *a = i < 0 ? jobfile : fwd[i];
        if (a) {
            n += snprintf(holder + n, sizeof holder - (size_t)n, " %s", a);
        }
    }
    snprintf(path, sizeof path, "%s/run.lock", cfg->out);
    int fd = ds_lock_file(path, holder, err, sizeof err);
    if (fd == -EBUSY) {
        ds_log(DS_ERROR, "run",
               "%s: another descent run writes to %s; wait for it to end or "
               "choose another job.out",
               err, cfg->out);
        return fd;
    }
    if (fd < 0) {
        ds_log(DS_ERROR, "run", "cannot lock the output directory: %s", err);
        return fd;
    }
    char ck[DS_STR_MAX + 32];
    snprintf(ck, sizeof ck, "%s/checkpoints", cfg->out);
    int k = ds_remove_temps(cfg->out);
    int kc = ds_remove_temps(ck);
    k = (k > 0 ? k : 0) + (kc > 0 ? kc : 0);
    if (k > 0) {
        ds_log(DS_INFO, "run",
               "removed %d temporary files a killed run left in %s", k,
               cfg->out);
    }
    snprintf(path, sizeof path, "%s/run.cause", cfg->out);
    unlink(path);
    return fd;
}

int
ds_run_main(const ds_config_t *cfg, const char *exe, const char *jobfile,
            char **fwd, int nfwd)
{
    if (s_check_data(cfg) != 0) {
        return 1;
    }
    if (cfg->workers == 0) {
        ds_log(DS_ERROR, "run",
               "[cluster] workers = 0 (elastic) is for deployments where "
               "workers come and go; descent run starts a fixed number: set "
               "workers");
        return 2;
    }
    if (nfwd > 32) {
        ds_log(DS_ERROR, "run", "too many flags (at most 32)");
        return 2;
    }
    if (s_refuse_endpoints(cfg) != 0) {
        return 2;
    }
    int lock = s_lock_out(cfg, jobfile, fwd, nfwd);
    if (lock < 0) {
        return 1;
    }
    int port = s_free_port();
    if (port < 0) {
        ds_log(DS_ERROR, "run", "no free port on loopback: %s",
               strerror(-port));
        close(lock);
        return 1;
    }
    s_run_t r;
    memset(&r, 0, sizeof r);
    // Room for the cluster and for a few restarts of every node.
    r.cap = 1 + (cfg->servers + cfg->workers) * 32;
    r.kids = calloc((size_t)r.cap, sizeof *r.kids);
    if (!r.kids) {
        close(lock);
        return 1;
    }
    uv_loop_init(&r.loop);
    r.loop.data = &r;
    uv_timer_init(&r.loop, &r.grace);
    uv_signal_init(&r.loop, &r.sigint);
    uv_signal_init(&r.loop, &r.sigterm);
    r.grace.data = r.sigint.data = r.sigterm.data = &r;
    uv_signal_start(&r.sigint, s_on_signal, SIGINT);
    uv_signal_start(&r.sigterm, s_on_signal, SIGTERM);

    char sched[64], bind[64];
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    char *sargs[] = {sched, bind};
    char *nargs[] = {sched, "--cluster.bind=tcp://127.0.0.1:*",
                     "--cluster.advertise=127.0.0.1"};
    r.cfg = cfg;
    r.exe = exe;
    r.jobfile = jobfile;
    r.fwd = fwd;
    r.nfwd = nfwd;
    r.nargs = nargs;
    r.sargs = sargs;
    printf("descent run: job \"%s\", %d servers and %d workers on "
           "tcp://127.0.0.1:%d, %d epochs, results in %s\n",
           cfg->job, cfg->servers, cfg->workers, port, cfg->epochs, cfg->out);
    fflush(stdout);
    int rc = s_spawn(&r, exe, "scheduler", 0, jobfile, sargs, 2, fwd, nfwd);
    for (int i = 0; rc == 0 && i < cfg->servers; i++) {
        rc = s_spawn(&r, exe, "server", i, jobfile, nargs, 3, fwd, nfwd);
    }
    for (int i = 0; rc == 0 && i < cfg->workers; i++) {
        rc = s_spawn(&r, exe, "worker", i, jobfile, nargs, 3, fwd, nfwd);
    }
    if (rc != 0) {
        r.failed = true;
        s_stop_all(&r);
    }
    if (r.running == 0) {
        s_close_handles(&r);
    }
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&r.loop);
    bool ok = !r.failed && r.nkids > 0 && r.kids[r.sched].status == 0 &&
              r.kids[r.sched].signal == 0;
    free(r.kids);
    char cause[DS_STR_MAX + 32];
    snprintf(cause, sizeof cause, "%s/run.cause", cfg->out);
    unlink(cause);
    close(lock); // the lock lasts until here
    return ok ? 0 : 1;
}
