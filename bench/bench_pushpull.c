// SPDX-License-Identifier: MIT
// bench_pushpull - push+pull throughput to one descent server beside raw 0MQ.
//
// The bench spawns a real scheduler and server (`descent scheduler`,
// `descent server`) for each model size and acts as the job's only worker,
// speaking the wire protocol through common/msg.h exactly as worker/worker.c
// does. In the same run, a thread echoes the same message shapes over a raw
// DEALER->ROUTER pair on tcp://127.0.0.1 with zero-copy zmq_msg_t frames:
// the ratio descent/raw is what the table is for. Every reply is checked
// (status, sequence, sizes, update count, values) and the server's model is
// read back at the end of each job; any failure makes the exit status 1.
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/config.h"
#include "common/log.h"
#include "common/msg.h"
#include "common/shard_map.h"
#include "common/zsock.h"

#define S_JOB "descent"        // job name the children run under
#define S_LR 0.001             // learning rate given to the server
#define S_RANGE_KEYS (1 << 20) // keys of one full range: 4 MiB of float32
#define S_BIG_KEYS (10 * S_RANGE_KEYS) // the 40 MiB model
#define S_SMALL_KEYS 1000              // keys of the small model
#define S_MAX_MSG (256LL << 20)        // bytes; ZMQ_MAXMSGSIZE of our sockets
#define S_RAW_HEADER 40     // bytes of a raw header, near a descent one
#define S_RAW_PULL 1        // raw header flag: echo the payload back
#define S_RING 128          // requests in flight at most (> any window)
#define S_REPLY_MS 10000    // a reply later than this is a failure
#define S_JOIN_MS 15000     // deadline for registration and the map
#define S_READY_MS 250      // READY is repeated this often until the map
#define S_HEARTBEAT_MS 1000 // we heartbeat the scheduler this often
#define S_EXIT_MS 10000     // deadline for the children to exit
#define S_ALARM_S 120       // last resort: the whole bench, seconds
#define S_MAX_LOGGED 5      // failures described in full, then counted
#define S_TRIALS 3          // timed runs per case and side; the best counts

// s_req_t is one request awaiting its reply.
typedef struct {
    uint64_t seq;   // request sequence number
    uint32_t range; // range id (0 for raw)
    bool     pull;  // a push that asked for the updated values back
    bool     read;  // a plain PULL (descent only)
} s_req_t;

// s_ring_t keeps the requests in flight in the order they were sent; one
// connection to one single-threaded peer answers in that order.
typedef struct {
    s_req_t  q[S_RING]; // requests, circular
    uint32_t head;      // index of the oldest
    uint32_t n;         // requests in flight
} s_ring_t;

typedef struct s_link s_link_t;

// s_link_t is what a measurement drives: descent or raw 0MQ.
struct s_link {
    int (*send)(s_link_t *l, uint32_t range, bool pull); // one push
    int (*recv)(s_link_t *l, int64_t deadline_ms);       // its reply, checked
    void *self;                                          // s_ds_t or s_raw_t
};

// s_ds_t is the bench as the single worker of one descent job.
typedef struct {
    char           dir[PATH_MAX]; // job.out and the children's logs
    pid_t          pid[2];        // scheduler, server; 0 once reaped
    void          *sched;         // DEALER to the scheduler; owned
    void          *data;          // DEALER to the server; owned
    uint32_t       id;            // node id from the scheduler
    uint64_t       seq;           // last sequence number sent
    ds_shard_map_t map;           // the shard map in force
    uint64_t      *applied;       // per range: pushes acknowledged; owned
    float         *expect;        // per range: every key's value now; owned
    const float   *ones;          // the gradient, num_keys 1.0s; not owned
    s_ring_t       ring;          // requests in flight
    int64_t        next_hb;       // ms: when the next heartbeat is due
    ds_limits_t    lim;           // what we accept
    uint64_t       failures;      // bad replies and failed checks
    bool           shutdown;      // the scheduler sent SHUTDOWN
} s_ds_t;

// s_echo_t is the raw baseline's server: a thread echoing on a ROUTER.
typedef struct {
    void         *ctx;     // its own context, like a separate process; owned
    void         *router;  // ROUTER; owned by the thread once it runs
    char          ep[128]; // endpoint the ROUTER is bound to
    pthread_t     thread;  // runs s_echo_main
    bool          running; // thread was started
    atomic_bool   stop;    // asks the thread to end
    atomic_ullong dropped; // malformed requests or replies it could not send
} s_echo_t;

// s_raw_t is the raw baseline's client.
typedef struct {
    void       *sock;     // DEALER to the echo thread; owned
    const void *payload;  // bytes sent by every push, zero copy; not owned
    size_t      bytes;    // payload bytes of one push
    uint64_t    seq;      // last sequence number sent
    s_ring_t    ring;     // requests in flight
    uint64_t    failures; // bad replies
} s_raw_t;

// s_case_t is one line of the table.
typedef struct {
    const char *name;      // label
    uint64_t    num_keys;  // model size of the job it runs against
    uint32_t    ranges;    // pushes per round, one per range
    bool        pull;      // pushes ask for the updated values back
    uint32_t    window;    // most pushes in flight
    bool        rounds;    // send a whole round, then wait for all of it
    uint64_t    warmup;    // untimed rounds first
    double      seconds;   // length of the timed descent run
    int         like;      // raw-only line: index of the descent case reused
    size_t      raw_bytes; // payload of one raw message
} s_case_t;

// s_result_t is what one timed run measured.
typedef struct {
    uint64_t rounds; // rounds completed
    double   secs;   // wall time, seconds
} s_result_t;

static const s_case_t s_cases[] = {
    {.name = "push+pull 4 MiB",
     .num_keys = S_RANGE_KEYS,
     .ranges = 1,
     .pull = true,
     .window = 1,
     .warmup = 20,
     .seconds = 1.5,
     .like = -1,
     .raw_bytes = S_RANGE_KEYS * sizeof(float)},
    {.name = "push+pull 40 MiB (10x4 MiB)",
     .num_keys = S_BIG_KEYS,
     .ranges = 10,
     .pull = true,
     .window = 10,
     .rounds = true,
     .warmup = 3,
     .seconds = 1.8,
     .like = -1,
     .raw_bytes = S_RANGE_KEYS * sizeof(float)},
    {.name = "  same, raw as 1x40 MiB msg",
     .num_keys = S_BIG_KEYS,
     .ranges = 1,
     .pull = true,
     .window = 1,
     .warmup = 2,
     .like = 1,
     .raw_bytes = S_BIG_KEYS * sizeof(float)},
    {.name = "push 1,000 keys, 1 in flight",
     .num_keys = S_SMALL_KEYS,
     .ranges = 1,
     .window = 1,
     .warmup = 2000,
     .seconds = 1.2,
     .like = -1,
     .raw_bytes = S_SMALL_KEYS * sizeof(float)},
    {.name = "push 1,000 keys, 64 in flight",
     .num_keys = S_SMALL_KEYS,
     .ranges = 1,
     .window = 64,
     .warmup = 5000,
     .seconds = 1.2,
     .like = -1,
     .raw_bytes = S_SMALL_KEYS * sizeof(float)},
};
#define S_NCASES (sizeof s_cases / sizeof s_cases[0])

static const uint64_t s_jobs[] = {S_RANGE_KEYS, S_BIG_KEYS, S_SMALL_KEYS};
#define S_NJOBS (sizeof s_jobs / sizeof s_jobs[0])

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t
s_now_ms(void)
{
    return (int64_t)(s_now() * 1000.0);
}

static int
s_ring_push(s_ring_t *r, s_req_t q)
{
    if (r->n == S_RING) {
        return -ENOBUFS;
    }
    r->q[(r->head + r->n) % S_RING] = q;
    r->n++;
    return 0;
}

static bool
s_ring_pop(s_ring_t *r, s_req_t *q)
{
    if (r->n == 0) {
        return false;
    }
    *q = r->q[r->head];
    r->head = (r->head + 1) % S_RING;
    r->n--;
    return true;
}

// s_free_port returns a TCP port on 127.0.0.1 that was free just now, or -1.
static int
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t          len = sizeof a;
    int                port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

// s_find_bin writes the descent binary's path to out: $DESCENT_BIN, else
// ./build/release/descent, else ../descent next to this executable.
static int
s_find_bin(char *out, size_t len)
{
    const char *env = getenv("DESCENT_BIN");
    if (env && env[0]) {
        snprintf(out, len, "%s", env);
        return access(out, X_OK) == 0 ? 0 : -ENOENT;
    }
    snprintf(out, len, "./build/release/descent");
    if (access(out, X_OK) == 0) {
        return 0;
    }
    char    self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        return -ENOENT;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) {
        *slash = '\0';
    }
    int w = snprintf(out, len, "%s/../descent", self);
    if (w < 0 || (size_t)w >= len) {
        return -ENAMETOOLONG;
    }
    return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

// s_spawn starts bin with argv, its output going to the file log. The child
// gets SIGKILL if the bench dies, so a crashed bench leaves nothing behind.
// Returns the pid or -1. Only async-signal-safe calls run before execv: the
// bench has 0MQ threads by now.
static pid_t
s_spawn(const char *bin, char *const argv[], const char *log)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127);
    }
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    execv(bin, argv);
    _exit(127);
}

// s_reap waits until ms for pid to exit. Returns its exit status, 128 + the
// signal that ended it, or -ETIMEDOUT if it still runs.
static int
s_reap(pid_t pid, int64_t deadline_ms)
{
    for (;;) {
        int   st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (r < 0 && errno != EINTR) {
            return -errno;
        }
        if (s_now_ms() >= deadline_ms) {
            return -ETIMEDOUT;
        }
        usleep(5000);
    }
}

static int
s_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

// ---- descent: the bench as the job's worker --------------------------------

static int
s_ds_sched_send(s_ds_t *d, Descent__Header *h)
{
    h->job = S_JOB;
    h->sender = d->id;
    h->seq = ++d->seq;
    h->epoch = d->map.epoch;
    return ds_msg_send(d->sched, NULL, h, NULL, NULL);
}

// s_ds_sched_one receives one message from the scheduler, if any, and
// handles HEARTBEAT and SHUTDOWN. Returns 1 with the message in *msg when
// it is something else (the caller finis it), 0 when nothing is queued or
// it was handled, or a negative errno.
static int
s_ds_sched_one(s_ds_t *d, ds_msg_t *msg)
{
    char            err[256] = "";
    Descent__Status st;
    int rc = ds_msg_take(d->sched, false, &d->lim, msg, &st, err, sizeof err);
    if (rc == -EAGAIN) {
        ds_msg_fini(msg);
        return 0;
    }
    if (rc != 0) {
        ds_log(DS_ERROR, "bench", "bad message from the scheduler: %s", err);
        ds_msg_fini(msg);
        return rc;
    }
    const Descent__Header *h = msg->hdr;
    if (h->type == DESCENT__TYPE__HEARTBEAT) {
        ds_msg_fini(msg);
        return 0;
    }
    if (h->type == DESCENT__TYPE__SHUTDOWN) {
        d->shutdown = true;
        if (h->status != DESCENT__STATUS__OK) {
            ds_log(DS_ERROR, "bench", "the scheduler ended the job: %s",
                   h->error);
            ds_msg_fini(msg);
            return -ECONNRESET;
        }
        ds_msg_fini(msg);
        return 0;
    }
    return 1;
}

// s_ds_drain handles every queued scheduler message. Returns 0, or a
// negative errno when the job has ended.
static int
s_ds_drain(s_ds_t *d)
{
    for (;;) {
        ds_msg_t msg;
        int      rc = s_ds_sched_one(d, &msg);
        if (rc == 1) {
            ds_log(DS_WARN, "bench", "unexpected %s from the scheduler",
                   ds_msg_type_name(msg.hdr->type));
            ds_msg_fini(&msg);
            continue;
        }
        if (rc < 0) {
            return rc;
        }
        return d->shutdown ? -ECONNRESET : 0;
    }
}

// s_ds_heartbeat sends a heartbeat to the scheduler when one is due, and
// drains its messages. Returns 0, or a negative errno when the job ended.
static int
s_ds_heartbeat(s_ds_t *d)
{
    int64_t now = s_now_ms();
    if (now < d->next_hb) {
        return 0;
    }
    d->next_hb = now + S_HEARTBEAT_MS;
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__HEARTBEAT);
    s_ds_sched_send(d, &h);
    return s_ds_drain(d);
}

// s_ds_wait_sched waits until deadline_ms for a scheduler message of `type`
// into *msg (the caller finis it), sending READY every S_READY_MS while
// `ready` (the scheduler drops a READY that arrives before every node has
// joined). Returns 0 or a negative errno.
static int
s_ds_wait_sched(s_ds_t *d, Descent__Type type, Descent__Header *ready,
                int64_t deadline_ms, ds_msg_t *msg)
{
    int64_t next_ready = 0;
    for (;;) {
        int64_t now = s_now_ms();
        if (ready && now >= next_ready) {
            s_ds_sched_send(d, ready);
            next_ready = now + S_READY_MS;
        }
        int rc = s_ds_sched_one(d, msg);
        if (rc < 0) {
            return rc;
        }
        if (rc == 1) {
            if (msg->hdr->type == type) {
                return 0;
            }
            ds_msg_fini(msg);
            continue;
        }
        if (type == DESCENT__TYPE__SHUTDOWN && d->shutdown) {
            return 0;
        }
        if (now >= deadline_ms) {
            return -ETIMEDOUT;
        }
        int64_t        wait = deadline_ms - now;
        zmq_pollitem_t it = {d->sched, 0, ZMQ_POLLIN, 0};
        if (ready && wait > S_READY_MS) {
            wait = S_READY_MS;
        }
        if (zmq_poll(&it, 1, (long)wait) < 0 && errno != EINTR) {
            return -errno;
        }
    }
}

// s_ds_kill ends both children. One that had already exited is reported,
// since its status usually explains a failed job (127: it could not start).
static void
s_ds_kill(s_ds_t *d)
{
    const char *who[2] = {"scheduler", "server"};
    for (int i = 0; i < 2; i++) {
        if (d->pid[i] <= 0) {
            continue;
        }
        int st = s_reap(d->pid[i], 0);
        if (st == -ETIMEDOUT) {
            kill(d->pid[i], SIGKILL);
            s_reap(d->pid[i], s_now_ms() + S_EXIT_MS);
        } else {
            ds_log(DS_ERROR, "bench", "the %s had exited with status %d",
                   who[i], st);
        }
        d->pid[i] = 0;
    }
}

static void
s_ds_close(s_ds_t *d)
{
    if (d->data) {
        zmq_close(d->data);
        d->data = NULL;
    }
    if (d->sched) {
        zmq_close(d->sched);
        d->sched = NULL;
    }
    ds_shard_map_fini(&d->map);
    free(d->applied);
    free(d->expect);
    d->applied = NULL;
    d->expect = NULL;
}

// The job-wide settings of the benchmark's job (docs/configuration.md): the
// scheduler and the server get them as flags, and the benchmark's own
// worker sends them in REGISTER, or the scheduler refuses it.
static char *s_ds_job_args[] = {"bench", "--optimizer.schedule=constant",
                                "--optimizer.lr=0.001", "--model.init=zeros"};
#define S_DS_NJOB (sizeof s_ds_job_args / sizeof s_ds_job_args[0])

// s_ds_spawn starts the job's scheduler and server with their output in
// d->dir. Returns 0 or a negative errno.
static int
s_ds_spawn(s_ds_t *d, const char *bin, int port)
{
    char sched[64], bind[64], out[PATH_MAX + 16], log[PATH_MAX + 32];
    snprintf(sched, sizeof sched, "--cluster.scheduler=tcp://127.0.0.1:%d",
             port);
    snprintf(bind, sizeof bind, "--cluster.bind=tcp://127.0.0.1:%d", port);
    snprintf(out, sizeof out, "--job.out=%s", d->dir);
    char *common[] = {sched,
                      out,
                      "--cluster.servers=1",
                      "--cluster.workers=1",
                      "--cluster.ranges_per_server=1",
                      "--cluster.timeout_ms=60000",
                      s_ds_job_args[1],
                      s_ds_job_args[2],
                      s_ds_job_args[3],
                      "--job.log_level=warn",
                      "--job.progress=off"};
    char *own[2][3] = {
        {"scheduler", bind, NULL},
        {"server", "--cluster.bind=tcp://127.0.0.1:*",
         "--cluster.advertise=127.0.0.1"},
    };
    size_t ncommon = sizeof common / sizeof common[0];
    for (int role = 0; role < 2; role++) {
        char  *argv[sizeof common / sizeof common[0] + 5];
        size_t n = 0;
        argv[n++] = (char *)bin;
        argv[n++] = own[role][0];
        for (size_t i = 0; i < ncommon; i++) {
            argv[n++] = common[i];
        }
        for (int i = 1; i < 3 && own[role][i]; i++) {
            argv[n++] = own[role][i];
        }
        argv[n] = NULL;
        snprintf(log, sizeof log, "%s/%s.log", d->dir, own[role][0]);
        d->pid[role] = s_spawn(bin, argv, log);
        if (d->pid[role] < 0) {
            d->pid[role] = 0;
            return -errno;
        }
    }
    return 0;
}

// s_ds_join registers with the scheduler, declares the model size, takes
// the shard map and connects to the server. Returns 0 or a negative errno.
static int
s_ds_join(s_ds_t *d, void *ctx, const char *sched_ep, uint64_t num_keys)
{
    d->sched = ds_zsock_open(ctx, ZMQ_DEALER, 0, S_MAX_MSG);
    if (!d->sched || zmq_connect(d->sched, sched_ep) != 0) {
        return -errno;
    }
    int64_t     deadline = s_now_ms() + S_JOIN_MS;
    ds_config_t cfg;
    char        cerr[256];
    char      **settings = NULL;
    size_t      nsettings = 0;
    int rc = ds_config_from_args(&cfg, (int)S_DS_NJOB, s_ds_job_args, NULL,
                                 false, NULL, cerr, sizeof cerr);
    if (rc != 0) {
        ds_log(DS_ERROR, "bench", "the job's settings: %s", cerr);
        return rc;
    }
    rc = ds_config_fingerprint(&cfg, &settings, &nsettings);
    if (rc != 0) {
        return rc;
    }
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__REGISTER);
    h.role = DESCENT__ROLE__WORKER;
    h.address = "";
    h.settings = settings;
    h.n_settings = nsettings;
    rc = s_ds_sched_send(d, &h);
    free(settings);
    if (rc != 0) {
        return rc;
    }
    ds_msg_t msg;
    rc = s_ds_wait_sched(d, DESCENT__TYPE__REGISTER_ACK, NULL, deadline, &msg);
    if (rc != 0) {
        ds_log(DS_ERROR, "bench", "no REGISTER_ACK: %s", strerror(-rc));
        return rc;
    }
    if (msg.hdr->status != DESCENT__STATUS__OK || msg.hdr->node_id == 0) {
        ds_log(DS_ERROR, "bench", "registration refused: %s (%s)",
               msg.hdr->error, ds_msg_status_name(msg.hdr->status));
        ds_msg_fini(&msg);
        return -EPROTO;
    }
    d->id = msg.hdr->node_id;
    ds_msg_fini(&msg);

    Descent__Header ready;
    ds_msg_header_init(&ready, DESCENT__TYPE__READY);
    ready.num_keys = num_keys;
    ready.planned = 1000000;
    rc = s_ds_wait_sched(d, DESCENT__TYPE__SHARD_MAP, &ready, deadline, &msg);
    if (rc != 0) {
        ds_log(DS_ERROR, "bench", "no SHARD_MAP: %s", strerror(-rc));
        return rc;
    }
    char err[256] = "no map in SHARD_MAP";
    rc = msg.hdr->map
             ? ds_shard_map_from_pb(&d->map, msg.hdr->map, err, sizeof err)
             : -EPROTO;
    const char *addr = NULL;
    for (size_t i = 0; rc == 0 && i < msg.hdr->map->n_nodes; i++) {
        const Descent__Node *nd = msg.hdr->map->nodes[i];
        if (nd->role == DESCENT__ROLE__SERVER) {
            addr = nd->address;
        }
    }
    if (rc == 0 && (d->map.num_keys != num_keys || !addr)) {
        snprintf(err, sizeof err, "map of %" PRIu64 " keys, no server",
                 d->map.num_keys);
        rc = -EPROTO;
    }
    if (rc == 0) {
        d->data = ds_zsock_open(ctx, ZMQ_DEALER, 0, S_MAX_MSG);
        if (!d->data || zmq_connect(d->data, addr) != 0) {
            snprintf(err, sizeof err, "cannot connect to %s", addr);
            rc = -EINVAL;
        }
    }
    ds_msg_fini(&msg);
    if (rc != 0) {
        ds_log(DS_ERROR, "bench", "bad shard map: %s", err);
        return rc;
    }
    d->applied = calloc(d->map.nranges, sizeof *d->applied);
    d->expect = calloc(d->map.nranges, sizeof *d->expect);
    return d->applied && d->expect ? 0 : -ENOMEM;
}

// s_ds_start runs a scheduler and a server for a model of num_keys keys and
// joins the job as its worker. Returns 0 or a negative errno; on failure
// the children are killed.
static int
s_ds_start(s_ds_t *d, const char *bin, const char *root, void *ctx,
           uint64_t num_keys, const float *ones)
{
    memset(d, 0, sizeof *d);
    d->ones = ones;
    d->lim.max_values = (uint64_t)S_MAX_MSG / sizeof(float);
    d->lim.max_keys = d->lim.max_values;
    snprintf(d->dir, sizeof d->dir, "%s/job-%" PRIu64, root, num_keys);
    if (mkdir(d->dir, 0755) != 0) {
        return -errno;
    }
    int port = s_free_port();
    if (port < 0) {
        return -EADDRNOTAVAIL;
    }
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    int rc = s_ds_spawn(d, bin, port);
    if (rc == 0) {
        rc = s_ds_join(d, ctx, ep, num_keys);
    }
    if (rc != 0) {
        s_ds_kill(d);
        s_ds_close(d);
    }
    return rc;
}

// s_ds_stop tells the scheduler we are done, waits for the job to end and
// for both children to exit 0. Kills them if they do not. Returns 0 or -1.
static int
s_ds_stop(s_ds_t *d)
{
    int             rc = 0;
    Descent__Header h;
    ds_msg_header_init(&h, DESCENT__TYPE__DONE);
    h.status = DESCENT__STATUS__OK;
    ds_msg_t msg;
    if (s_ds_sched_send(d, &h) != 0 ||
        s_ds_wait_sched(d, DESCENT__TYPE__SHUTDOWN, NULL,
                        s_now_ms() + S_EXIT_MS, &msg) != 0) {
        ds_log(DS_ERROR, "bench", "the scheduler did not end the job");
        rc = -1;
    }
    const char *who[2] = {"scheduler", "server"};
    int64_t     deadline = s_now_ms() + S_EXIT_MS;
    for (int i = 0; i < 2; i++) {
        int st = d->pid[i] > 0 ? s_reap(d->pid[i], deadline) : 0;
        if (st == -ETIMEDOUT) {
            ds_log(DS_ERROR, "bench", "the %s did not exit; killing it",
                   who[i]);
            rc = -1;
        } else if (st != 0) {
            ds_log(DS_ERROR, "bench", "the %s exited with status %d", who[i],
                   st);
            rc = -1;
        }
        if (st != -ETIMEDOUT) {
            d->pid[i] = 0;
        }
    }
    s_ds_kill(d);
    s_ds_close(d);
    return rc;
}

static int
s_ds_send_req(s_ds_t *d, uint32_t range, Descent__Type type, bool pull)
{
    const ds_range_t *r = &d->map.ranges[range];
    Descent__Header   h;
    ds_msg_header_init(&h, type);
    h.job = S_JOB;
    h.sender = d->id;
    h.seq = ++d->seq;
    h.epoch = d->map.epoch;
    h.shard = r->id;
    h.key_begin = r->begin;
    h.key_count = r->end - r->begin;
    h.pull = pull;
    int rc;
    if (type == DESCENT__TYPE__PUSH) {
        h.value_count = h.key_count;
        h.dtype = DESCENT__DTYPE__F32;
        rc = ds_msg_send_f32(d->data, NULL, &h, d->ones + r->begin,
                             (size_t)h.key_count);
    } else {
        rc = ds_msg_send(d->data, NULL, &h, NULL, NULL);
    }
    if (rc != 0) {
        ds_log(DS_ERROR, "bench", "cannot send %s: %s", ds_msg_type_name(type),
               zmq_strerror(-rc));
        return rc;
    }
    return s_ring_push(&d->ring,
                       (s_req_t){.seq = h.seq,
                                 .range = range,
                                 .pull = pull,
                                 .read = type == DESCENT__TYPE__PULL});
}

static int
s_ds_send(s_link_t *l, uint32_t range, bool pull)
{
    s_ds_t *d = l->self;
    return s_ds_send_req(d, range % d->map.nranges, DESCENT__TYPE__PUSH, pull);
}

static float
s_val(const ds_msg_t *msg, uint64_t i)
{
    float v;
    memcpy(&v,
           (const char *)zmq_msg_data((zmq_msg_t *)&msg->vals) +
               i * sizeof(float),
           sizeof v);
    return v;
}

// s_ds_vals_ok checks that values equal want: three of them, or all.
static bool
s_ds_vals_ok(const ds_msg_t *msg, uint64_t n, float want, bool all,
             uint64_t *bad)
{
    float tol = 1e-5f * fabsf(want) + 1e-6f;
    if (!all) {
        uint64_t idx[3] = {0, n / 2, n - 1};
        for (int k = 0; k < 3; k++) {
            if (!(fabsf(s_val(msg, idx[k]) - want) <= tol)) {
                *bad = idx[k];
                return false;
            }
        }
        return true;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (!(fabsf(s_val(msg, i) - want) <= tol)) {
            *bad = i;
            return false;
        }
    }
    return true;
}

// s_ds_check matches a reply with the oldest request and checks it: type,
// status, sequence, keys, value count, the server's update count for the
// range (so every push was applied exactly once) and the values.
static void
s_ds_check(s_ds_t *d, const ds_msg_t *msg)
{
    const Descent__Header *h = msg->hdr;
    char                   why[512] = "";
    s_req_t                q;
    if (!s_ring_pop(&d->ring, &q)) {
        snprintf(why, sizeof why, "reply seq %" PRIu64 " to no request",
                 h->seq);
        goto out;
    }
    const ds_range_t *r = &d->map.ranges[q.range];
    uint64_t          n = r->end - r->begin;
    Descent__Type     want =
        q.read ? DESCENT__TYPE__PULL_REPLY : DESCENT__TYPE__PUSH_ACK;
    if (h->type != want || h->status != DESCENT__STATUS__OK) {
        snprintf(why, sizeof why, "%s %s: %s", ds_msg_type_name(h->type),
                 ds_msg_status_name(h->status), h->error);
        goto out;
    }
    if (h->seq != q.seq || h->shard != q.range || h->key_begin != r->begin ||
        h->key_count != n) {
        snprintf(why, sizeof why,
                 "reply seq %" PRIu64 " range %u, expected "
                 "seq %" PRIu64 " range %u",
                 h->seq, h->shard, q.seq, q.range);
        goto out;
    }
    bool vals = q.read || q.pull;
    if (h->value_count != (vals ? n : 0)) {
        snprintf(why, sizeof why, "%" PRIu64 " values, expected %" PRIu64,
                 h->value_count, vals ? n : 0);
        goto out;
    }
    if (!q.read) {
        if (fabs(h->lr - S_LR) > 1e-12) {
            snprintf(why, sizeof why, "server applied lr %g", h->lr);
            goto out;
        }
        d->applied[q.range]++;
        d->expect[q.range] -= (float)S_LR * 1.0f;
    }
    if (h->clock != d->applied[q.range]) {
        snprintf(why, sizeof why,
                 "range %u has %" PRIu64 " updates, "
                 "expected %" PRIu64,
                 q.range, h->clock, d->applied[q.range]);
        goto out;
    }
    uint64_t bad = 0;
    if (vals && !s_ds_vals_ok(msg, n, d->expect[q.range], q.read, &bad)) {
        snprintf(why, sizeof why,
                 "key %" PRIu64 " of range %u is %g, "
                 "expected %g",
                 r->begin + bad, q.range, (double)s_val(msg, bad),
                 (double)d->expect[q.range]);
    }
out:
    if (why[0] && d->failures++ < S_MAX_LOGGED) {
        ds_log(DS_ERROR, "bench", "bad reply: %s", why);
    }
}

static int
s_ds_recv(s_link_t *l, int64_t deadline_ms)
{
    s_ds_t *d = l->self;
    int     rc = s_ds_heartbeat(d);
    while (rc == 0) {
        ds_msg_t        msg;
        char            err[256] = "";
        Descent__Status st;
        rc = ds_msg_take(d->data, false, &d->lim, &msg, &st, err, sizeof err);
        if (rc == 0) {
            s_ds_check(d, &msg);
            ds_msg_fini(&msg);
            return 0;
        }
        ds_msg_fini(&msg);
        if (rc != -EAGAIN) {
            ds_log(DS_ERROR, "bench", "bad reply: %s", err);
            return rc;
        }
        int64_t now = s_now_ms();
        if (now >= deadline_ms) {
            ds_log(DS_ERROR, "bench", "no reply from the server in %d ms",
                   S_REPLY_MS);
            return -ETIMEDOUT;
        }
        int64_t        wait = deadline_ms - now;
        zmq_pollitem_t it[2] = {{d->data, 0, ZMQ_POLLIN, 0},
                                {d->sched, 0, ZMQ_POLLIN, 0}};
        if (wait > S_HEARTBEAT_MS) {
            wait = S_HEARTBEAT_MS;
        }
        if (zmq_poll(it, 2, (long)wait) < 0 && errno != EINTR) {
            return -errno;
        }
        rc = (it[1].revents & ZMQ_POLLIN) ? s_ds_drain(d) : 0;
        if (rc == 0) {
            rc = s_ds_heartbeat(d);
        }
    }
    return rc;
}

// s_ds_verify reads every range back with PULL and checks each key against
// the pushes acknowledged: all gradients were 1.0, so each applied push
// took exactly S_LR off every key of its range, starting from zero.
static int
s_ds_verify(s_ds_t *d)
{
    uint64_t before = d->failures;
    for (uint32_t i = 0; i < d->map.nranges; i++) {
        int rc = s_ds_send_req(d, i, DESCENT__TYPE__PULL, false);
        if (rc == 0) {
            s_link_t l = {.self = d};
            rc = s_ds_recv(&l, s_now_ms() + S_REPLY_MS);
        }
        if (rc != 0) {
            return rc;
        }
        double approx = -S_LR * (double)d->applied[i];
        if (fabs(d->expect[i] - approx) > 0.05 * fabs(approx) + 1e-6 &&
            d->failures++ < S_MAX_LOGGED) {
            ds_log(DS_ERROR, "bench",
                   "range %u holds %g after %" PRIu64
                   " pushes, about %g expected",
                   i, (double)d->expect[i], d->applied[i], approx);
        }
    }
    return d->failures == before ? 0 : -EPROTO;
}

// ---- raw 0MQ: the baseline -------------------------------------------------

// s_recv_rest receives the remaining parts of a message whose first part
// is part[0], keeping at most max parts in all; more set *extra and are
// dropped. Returns the number of parts kept, which the caller closes.
static int
s_recv_rest(void *sock, zmq_msg_t *part, int max, bool *extra)
{
    int    n = 1;
    int    more = 0;
    size_t len = sizeof more;
    *extra = false;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_msg_t  scratch;
        zmq_msg_t *p = n < max ? &part[n] : &scratch;
        zmq_msg_init(p);
        int rc = zmq_msg_recv(p, sock, ZMQ_DONTWAIT);
        if (rc < 0 || p == &scratch) {
            zmq_msg_close(p);
            *extra = true;
            if (rc < 0) {
                break;
            }
            continue;
        }
        n++;
    }
    return n;
}

// s_echo_one answers one request [id][header][payload]: with the same frames
// when the header asks for the values back (zero copy: the received
// payload goes back as it is), else with [id][header]. Returns 0, or -1 when
// nothing was queued.
static int
s_echo_one(s_echo_t *e)
{
    zmq_msg_t part[3];
    zmq_msg_init(&part[0]);
    if (zmq_msg_recv(&part[0], e->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part[0]);
        return -1;
    }
    bool extra;
    int  n = s_recv_rest(e->router, part, 3, &extra);
    bool head = n >= 2 && zmq_msg_size(&part[1]) == S_RAW_HEADER;
    bool pull = head && (((const unsigned char *)zmq_msg_data(&part[1]))[0] &
                         S_RAW_PULL);
    int  count = pull ? 3 : 2;
    if (extra || !head || count > n) {
        atomic_fetch_add(&e->dropped, 1);
        count = 0;
    }
    for (int i = 0; i < count; i++) {
        int more = i + 1 < count ? ZMQ_SNDMORE : 0;
        if (zmq_msg_send(&part[i], e->router, more | ZMQ_DONTWAIT) < 0) {
            atomic_fetch_add(&e->dropped, 1);
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        zmq_msg_close(&part[i]);
    }
    return 0;
}

static void *
s_echo_main(void *arg)
{
    s_echo_t *e = arg;
    while (!atomic_load(&e->stop)) {
        zmq_pollitem_t it = {e->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0) {
            continue;
        }
        while (s_echo_one(e) == 0) {
        }
    }
    zmq_close(e->router);
    e->router = NULL;
    return NULL;
}

static int
s_echo_start(s_echo_t *e)
{
    memset(e, 0, sizeof *e);
    atomic_init(&e->stop, false);
    atomic_init(&e->dropped, 0);
    e->ctx = zmq_ctx_new();
    e->router = e->ctx ? ds_zsock_open(e->ctx, ZMQ_ROUTER, 0, S_MAX_MSG) : NULL;
    char err[256];
    if (!e->router || ds_zsock_bind(e->router, "tcp://127.0.0.1:*", e->ep,
                                    sizeof e->ep, err, sizeof err) != 0) {
        return -EINVAL;
    }
    // The ROUTER is handed to the thread here and never touched again by
    // this one; pthread_create orders the setup before the thread runs.
    if (pthread_create(&e->thread, NULL, s_echo_main, e) != 0) {
        return -EAGAIN;
    }
    e->running = true;
    return 0;
}

static void
s_echo_stop(s_echo_t *e)
{
    atomic_store(&e->stop, true);
    if (e->running) {
        pthread_join(e->thread, NULL);
        e->running = false;
    }
    if (e->router) {
        zmq_close(e->router);
        e->router = NULL;
    }
    if (e->ctx) {
        zmq_ctx_term(e->ctx);
        e->ctx = NULL;
    }
}

static int
s_raw_send(s_link_t *l, uint32_t range, bool pull)
{
    s_raw_t  *r = l->self;
    zmq_msg_t head, body;
    uint64_t  seq = ++r->seq;
    zmq_msg_init_size(&head, S_RAW_HEADER);
    unsigned char *p = zmq_msg_data(&head);
    memset(p, 0, S_RAW_HEADER);
    p[0] = pull ? S_RAW_PULL : 0;
    memcpy(p + 4, &range, sizeof range);
    memcpy(p + 8, &seq, sizeof seq);
    if (zmq_msg_send(&head, r->sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&head);
        return -e;
    }
    // Constant data (no free function): libzmq sends it without a copy.
    zmq_msg_init_data(&body, (void *)r->payload, r->bytes, NULL, NULL);
    if (zmq_msg_send(&body, r->sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&body);
        return -e;
    }
    return s_ring_push(&r->ring, (s_req_t){.seq = seq, .pull = pull});
}

// s_raw_check checks a raw reply: the header of the oldest request and, if
// it asked for them, a payload of the same size.
static void
s_raw_check(s_raw_t *r, zmq_msg_t *part, int n)
{
    s_req_t  q;
    uint64_t seq = 0;
    if (zmq_msg_size(&part[0]) == S_RAW_HEADER) {
        memcpy(&seq, (const char *)zmq_msg_data(&part[0]) + 8, sizeof seq);
    }
    bool ok = s_ring_pop(&r->ring, &q) && seq == q.seq &&
              n == (q.pull ? 2 : 1) &&
              (!q.pull || zmq_msg_size(&part[1]) == r->bytes);
    if (!ok && r->failures++ < S_MAX_LOGGED) {
        ds_log(DS_ERROR, "bench", "bad raw reply: seq %" PRIu64 ", %d frames",
               seq, n);
    }
}

static int
s_raw_recv(s_link_t *l, int64_t deadline_ms)
{
    s_raw_t  *r = l->self;
    zmq_msg_t part[2];
    zmq_msg_init(&part[0]);
    while (zmq_msg_recv(&part[0], r->sock, ZMQ_DONTWAIT) < 0) {
        int     e = errno;
        int64_t now = s_now_ms();
        if (e == EAGAIN && now >= deadline_ms) {
            e = ETIMEDOUT;
        }
        if (e == EAGAIN) {
            zmq_pollitem_t it = {r->sock, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, (long)(deadline_ms - now)) >= 0 ||
                errno == EINTR) {
                continue;
            }
            e = errno;
        }
        zmq_msg_close(&part[0]);
        ds_log(DS_ERROR, "bench", "raw reply: %s", strerror(e));
        return -e;
    }
    bool extra;
    int  n = s_recv_rest(r->sock, part, 2, &extra);
    s_raw_check(r, part, extra ? 3 : n);
    for (int i = 0; i < n; i++) {
        zmq_msg_close(&part[i]);
    }
    return 0;
}

// ---- measuring
// ---------------------------------------------------------------

// s_pump runs rounds of c->ranges pushes, at most c->window in flight (with
// c->rounds, a round is sent whole and then awaited whole): `rounds` of them,
// or, when rounds is 0, as many as start within `seconds`. Returns 0 or a
// negative errno, with what was done in *res.
static int
s_pump(s_link_t *l, const s_case_t *c, uint64_t rounds, double seconds,
       s_result_t *res)
{
    uint64_t per = c->ranges;
    uint64_t limit = rounds ? rounds * per : UINT64_MAX;
    uint64_t sent = 0, done = 0;
    double   t0 = s_now();
    double   end = t0 + seconds;
    while (done < limit) {
        bool room = sent < limit && sent - done < c->window &&
                    (!c->rounds || sent % per != 0 || sent == done);
        if (room && rounds == 0 && sent % per == 0 && s_now() >= end) {
            limit = sent;
            continue;
        }
        int rc;
        if (room) {
            rc = l->send(l, (uint32_t)(sent % per), c->pull);
            sent++;
        } else {
            rc = l->recv(l, s_now_ms() + S_REPLY_MS);
            done++;
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (res) {
        res->rounds = limit / per;
        res->secs = s_now() - t0;
    }
    return 0;
}

static void
s_keep_best(s_result_t *best, const s_result_t *r)
{
    if (best->secs == 0 ||
        (double)r->rounds * best->secs > (double)best->rounds * r->secs) {
        *best = *r;
    }
}

// s_run_case measures case i: after warm-ups, S_TRIALS timed descent runs,
// each followed by raw runs of the same round count (the case itself and
// the raw-only lines that reuse it). Alternating keeps a passing burst of
// load on this small machine from landing on one side only; the best trial
// of each side is kept. Returns 0 or a negative errno.
static int
s_run_case(s_link_t *dl, s_link_t *rl, size_t i, s_result_t *ds,
           s_result_t *raw)
{
    s_raw_t *r = rl->self;
    int      rc = s_pump(dl, &s_cases[i], s_cases[i].warmup, 0, NULL);
    for (size_t j = 0; rc == 0 && j < S_NCASES; j++) {
        if (j == i || s_cases[j].like == (int)i) {
            r->bytes = s_cases[j].raw_bytes;
            rc = s_pump(rl, &s_cases[j], s_cases[j].warmup, 0, NULL);
        }
    }
    for (int t = 0; rc == 0 && t < S_TRIALS; t++) {
        s_result_t d;
        rc = s_pump(dl, &s_cases[i], 0, s_cases[i].seconds / S_TRIALS, &d);
        if (rc == 0) {
            s_keep_best(&ds[i], &d);
        }
        for (size_t j = 0; rc == 0 && j < S_NCASES; j++) {
            if (j == i || s_cases[j].like == (int)i) {
                s_result_t x;
                r->bytes = s_cases[j].raw_bytes;
                rc = s_pump(rl, &s_cases[j], d.rounds, 0, &x);
                if (rc == 0) {
                    s_keep_best(&raw[j], &x);
                }
            }
        }
    }
    return rc;
}

// s_run_job runs every case against the job with num_keys keys, then reads
// the model back. Returns 0 or a negative errno.
static int
s_run_job(const char *bin, const char *root, void *ctx, const float *ones,
          uint64_t num_keys, s_link_t *rl, s_result_t *ds, s_result_t *raw,
          uint64_t *failures)
{
    s_ds_t d;
    int    rc = s_ds_start(&d, bin, root, ctx, num_keys, ones);
    if (rc != 0) {
        ds_log(DS_ERROR, "bench",
               "cannot start a job of %" PRIu64 " keys: %s (logs in %s)",
               num_keys, strerror(-rc), d.dir);
        return rc;
    }
    s_link_t dl = {.send = s_ds_send, .recv = s_ds_recv, .self = &d};
    for (size_t i = 0; rc == 0 && i < S_NCASES; i++) {
        const s_case_t *c = &s_cases[i];
        if (c->num_keys != num_keys || c->like >= 0) {
            continue;
        }
        if (d.map.nranges != c->ranges) {
            ds_log(DS_ERROR, "bench", "%s: the map has %u ranges, not %u",
                   c->name, d.map.nranges, c->ranges);
            rc = -EPROTO;
            break;
        }
        rc = s_run_case(&dl, rl, i, ds, raw);
    }
    if (rc == 0) {
        rc = s_ds_verify(&d);
    }
    *failures += d.failures;
    if (rc != 0) {
        ds_log(DS_ERROR, "bench", "job of %" PRIu64 " keys failed (logs in %s)",
               num_keys, d.dir);
        s_ds_kill(&d);
        s_ds_close(&d);
        return rc;
    }
    return s_ds_stop(&d) == 0 ? 0 : -ECHILD;
}

static void
s_print_rate(char *buf, size_t len, const s_case_t *c, const s_result_t *r,
             double *rate)
{
    double per_s = r->secs > 0 ? (double)r->rounds / r->secs : 0;
    if (c->pull) {
        double bytes =
            2.0 * (double)c->raw_bytes * (double)(c->like >= 0 ? 1 : c->ranges);
        *rate = bytes * per_s / 1e9;
        snprintf(buf, len, "%5.2f GB/s (%4.0f/s)", *rate, per_s);
    } else {
        *rate = per_s;
        snprintf(buf, len, "%9.0f/s", per_s);
    }
}

static void
s_print_table(const s_result_t *ds, const s_result_t *raw)
{
    printf("\n%-31s %20s %20s %7s\n", "case", "descent", "raw zmq", "ratio");
    for (size_t i = 0; i < S_NCASES; i++) {
        const s_case_t *c = &s_cases[i];
        const s_case_t *dc = c->like >= 0 ? &s_cases[c->like] : c;
        char            a[64], b[64];
        double          ra, rb;
        s_print_rate(a, sizeof a, dc, &ds[c->like >= 0 ? c->like : (int)i],
                     &ra);
        s_print_rate(b, sizeof b, c, &raw[i], &rb);
        printf("%-31s %20s %20s %7.2f\n", c->name, a, b, rb > 0 ? ra / rb : 0);
    }
    printf("\nGB/s counts payload both ways (values up and down), "
           "1 GB = 1e9 bytes;\n"
           "(n/s) is round trips per second (40 MiB: the whole model "
           "up and down).\n"
           "Each side: best of %d alternating trials; every raw trial runs "
           "the round count\nof the descent trial before it, with the same "
           "windows and warm-ups;\n"
           "raw zmq is a DEALER->ROUTER echo thread in this process with "
           "zero-copy frames.\n\n"
           "Reference figures measured separately on this machine, not in "
           "this run:\n"
           "  ps-lite, one worker to one server: 4 MiB pushes ~2.2 GB/s, "
           "40 MiB ~1.0 GB/s,\n"
           "  1,000-key pushes ~4,000/s one at a time and ~36,000/s with 64 "
           "in flight;\n"
           "  raw ZeroMQ: 4 MiB messages ~3.3 GB/s, 40 MiB messages "
           "~1.1 GB/s.\n",
           S_TRIALS);
}

int
main(void)
{
    // Last resort against a hang: SIGALRM ends the bench, and the children
    // follow through PR_SET_PDEATHSIG.
    alarm(S_ALARM_S);
    ds_log_level = DS_WARN;
    char bin[PATH_MAX];
    if (s_find_bin(bin, sizeof bin) != 0) {
        ds_log(DS_ERROR, "bench",
               "no descent binary (set DESCENT_BIN or run "
               "make first)");
        return 1;
    }
    char root[] = "/tmp/descent-bench-XXXXXX";
    if (!mkdtemp(root)) {
        ds_log(DS_ERROR, "bench", "mkdtemp: %s", strerror(errno));
        return 1;
    }
    float *ones = malloc((size_t)S_BIG_KEYS * sizeof *ones);
    void  *ctx = zmq_ctx_new();
    if (!ones || !ctx) {
        ds_log(DS_ERROR, "bench", "out of memory");
        return 1;
    }
    for (size_t i = 0; i < S_BIG_KEYS; i++) {
        ones[i] = 1.0f;
    }
    printf("bench_pushpull: one worker (this process) and one descent server "
           "(%s), tcp://127.0.0.1\n",
           bin);
    fflush(stdout);

    s_result_t ds[S_NCASES], raw[S_NCASES];
    memset(ds, 0, sizeof ds);
    memset(raw, 0, sizeof raw);
    s_echo_t echo;
    s_raw_t  r = {.payload = ones};
    int      rc = s_echo_start(&echo);
    r.sock = ds_zsock_open(ctx, ZMQ_DEALER, 0, S_MAX_MSG);
    if (rc != 0 || !r.sock || zmq_connect(r.sock, echo.ep) != 0) {
        ds_log(DS_ERROR, "bench", "cannot set up the raw baseline");
        rc = -EINVAL;
    }
    s_link_t rl = {.send = s_raw_send, .recv = s_raw_recv, .self = &r};
    uint64_t failures = 0;
    for (size_t j = 0; rc == 0 && j < S_NJOBS; j++) {
        rc =
            s_run_job(bin, root, ctx, ones, s_jobs[j], &rl, ds, raw, &failures);
    }
    if (r.sock) {
        zmq_close(r.sock);
    }
    s_echo_stop(&echo);
    zmq_ctx_term(ctx);
    free(ones);
    failures += r.failures + atomic_load(&echo.dropped);

    if (rc == 0) {
        s_print_table(ds, raw);
    }
    if (rc != 0 || failures > 0) {
        ds_log(DS_ERROR, "bench",
               "%" PRIu64 " failed checks%s; job output "
               "kept in %s",
               failures, rc != 0 ? ", run aborted" : "", root);
        return 1;
    }
    nftw(root, s_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    printf("\nall replies and the final model checked: 0 failures\n");
    return 0;
}
