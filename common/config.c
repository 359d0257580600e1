// SPDX-License-Identifier: MIT
// config - job and node settings: defaults, job file, environment, flags.
#include "common/config.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "common/util.h"

#define S_MSG_MAX 512  // bytes of an error message built before prefixing
#define S_NAME_MAX 96  // bytes of a flag or environment name we compare
#define S_ECHO_MAX 64  // characters of a bad value quoted back in errors
#define S_USAGE_COL 40 // widest "--section.key=default" before help wraps
#define S_ENV_PREFIX "DESCENT_"

// How an option's text is parsed and stored.
enum ds_opt_type {
    DS_OPT_STRING, // char[]; length 1 to sizeof - 1
    DS_OPT_INT,    // int, within [min, max]
    DS_OPT_INT64,  // int64_t, within [min, max]
    DS_OPT_UINT64, // uint64_t, any value
    DS_OPT_DOUBLE, // double, finite, within dmin (or above it) to dmax
    DS_OPT_BOOL,   // bool
    DS_OPT_ENUM,   // char[]; one of choices
};

// ds_opt_t is one row of the option table: everything needed to parse,
// check, print and document one setting.
typedef struct {
    const char      *section;   // job file section, without brackets
    const char      *key;       // key in the section; also the field name
    enum ds_opt_type type;      // how the text is parsed and stored
    size_t           offset;    // offsetof the field in ds_config_t
    size_t           size;      // sizeof the field, bytes
    int64_t          min;       // integers: least value; strings: least length
    int64_t          max;       // integers: greatest value
    double           dmin;      // doubles: least value
    double           dmax;      // doubles: greatest value
    bool             dmin_open; // doubles: dmin itself is refused (> dmin)
    const char      *choices;   // enums: allowed values, '|'-separated
    const char      *def;       // default, as it would be written in a file
    const char      *help;      // one line for --help and the docs
    bool             per_node;  // may differ between the nodes of a job
    const char      *by;        // defaults by job, or NULL (s_job_default)
} ds_opt_t;

// S_OFF is offsetof(ds_config_t, f), but it only compiles when field f has
// type T (otherwise the array size is negative), so a row cannot store an
// int64_t through an int or a string over a number. Array fields decay, so
// strings are checked as char *.
#define S_OFF(f, T)                                                            \
    (offsetof(ds_config_t, f) +                                                \
     0 * sizeof(char[_Generic(((ds_config_t *)0)->f, T : 1, default            \
                              : -1)]))
#define S_SIZE(f) sizeof(((ds_config_t *)0)->f)

#define S_STR_(local, sec, f, def_, help_, ...)                                \
    {                                                                          \
        .section = sec, .key = #f, .type = DS_OPT_STRING,                      \
        .offset = S_OFF(f, char *), .size = S_SIZE(f), .min = 1, .def = def_,  \
        .help = help_, .per_node = local, __VA_ARGS__                          \
    }
#define S_ENUM_(local, sec, f, choices_, def_, help_, ...)                     \
    {                                                                          \
        .section = sec, .key = #f, .type = DS_OPT_ENUM,                        \
        .offset = S_OFF(f, char *), .size = S_SIZE(f), .choices = choices_,    \
        .def = def_, .help = help_, .per_node = local, __VA_ARGS__             \
    }
#define S_INT_(local, sec, f, lo, hi, def_, help_, ...)                        \
    {                                                                          \
        .section = sec, .key = #f, .type = DS_OPT_INT,                         \
        .offset = S_OFF(f, int), .size = S_SIZE(f), .min = lo, .max = hi,      \
        .def = def_, .help = help_, .per_node = local, __VA_ARGS__             \
    }
#define S_I64_(local, sec, f, lo, hi, def_, help_, ...)                        \
    {                                                                          \
        .section = sec, .key = #f, .type = DS_OPT_INT64,                       \
        .offset = S_OFF(f, int64_t), .size = S_SIZE(f), .min = lo, .max = hi,  \
        .def = def_, .help = help_, .per_node = local, __VA_ARGS__             \
    }
#define S_U64_(local, sec, f, def_, help_, ...)                                \
    {                                                                          \
        .section = sec, .key = #f, .type = DS_OPT_UINT64,                      \
        .offset = S_OFF(f, uint64_t), .size = S_SIZE(f), .def = def_,          \
        .help = help_, .per_node = local, __VA_ARGS__                          \
    }
#define S_DBL_(local, sec, f, lo, open, hi, def_, help_, ...)                  \
    {                                                                          \
        .section = sec, .key = #f, .type = DS_OPT_DOUBLE,                      \
        .offset = S_OFF(f, double), .size = S_SIZE(f), .dmin = lo,             \
        .dmin_open = open, .dmax = hi, .def = def_, .help = help_,             \
        .per_node = local, __VA_ARGS__                                         \
    }
#define S_BOOL_(local, sec, f, def_, help_, ...)                               \
    {                                                                          \
        .section = sec, .key = #f, .type = DS_OPT_BOOL,                        \
        .offset = S_OFF(f, bool), .size = S_SIZE(f), .def = def_,              \
        .help = help_, .per_node = local, __VA_ARGS__                          \
    }

// A row is job-wide unless wrapped in S_NODE: S_INT(...) must match on
// every node, N_INT(...) may differ from node to node. Job-wide is
// the default so that a new option is checked until someone decides that
// nodes may differ in it.
#define S_STR(...) S_STR_(false, __VA_ARGS__)
#define S_ENUM(...) S_ENUM_(false, __VA_ARGS__)
#define S_INT(...) S_INT_(false, __VA_ARGS__)
#define S_I64(...) S_I64_(false, __VA_ARGS__)
#define S_U64(...) S_U64_(false, __VA_ARGS__)
#define S_DBL(...) S_DBL_(false, __VA_ARGS__)
#define S_BOOL(...) S_BOOL_(false, __VA_ARGS__)
#define N_STR(...) S_STR_(true, __VA_ARGS__)
#define N_ENUM(...) S_ENUM_(true, __VA_ARGS__)
#define N_INT(...) S_INT_(true, __VA_ARGS__)
#define N_DBL(...) S_DBL_(true, __VA_ARGS__)
#define N_BOOL(...) S_BOOL_(true, __VA_ARGS__)

// The option table. Rows of one section must be contiguous: the JSON and
// usage writers open a new group whenever the section changes.
// docs/configuration.md mirrors this table; keep the two in step.
//
// A row's optional .by gives defaults that depend on the job, because what
// trains well depends on the algorithm and the model: entries "when:value"
// separated by ';', where when is one or more "key=value" on [train]
// algorithm or [model] model, comma-separated. An option that no source
// sets takes the value of the first entry whose conditions all hold, or
// def; a value given by any source always wins.
static const ds_opt_t s_opts[] = {
    S_STR("job", job, "descent", "job name; nodes of other jobs are refused"),
    S_U64("job", seed, "42", "seed for init, shuffling and the rest"),
    N_STR("job", out, "runs/latest",
          "output directory (run, scheduler, worker 0)"),
    N_ENUM("job", log_level, "debug|info|warn|error", "info",
           "least severe log message shown"),
    N_ENUM("job", progress, "auto|bar|lines|off", "auto",
           "how training progress is shown"),
    N_INT("job", checkpoint_s, 0, 86400, "0",
          "servers also checkpoint their ranges this often, seconds (they "
          "always do at the end); 0 = only at the end"),
    S_BOOL("job", resume, "false",
           "continue the job whose checkpoints and progress are in out"),
    N_BOOL("job", recover, "false",
           "scheduler: carry on the job of a scheduler that was killed, from "
           "<out>/scheduler.state (descent run passes it when it restarts "
           "the scheduler)"),
    N_BOOL("job", restart_scheduler, "true",
           "descent run starts the scheduler again when it is killed by a "
           "signal, and the new one carries on the job (recover)"),
    N_BOOL("job", restart_workers, "true",
           "descent run starts a worker killed by a signal again, and it "
           "rejoins the job with its node id"),
    N_BOOL("job", restart_servers, "true",
           "descent run starts a server killed by a signal again (with "
           "replicas = 2), and it rejoins as a backup seeded by the primaries"),

    N_STR("cluster", scheduler, "tcp://127.0.0.1:7070",
          "scheduler endpoint nodes connect to, tcp://host:port"),
    N_STR("cluster", bind, "tcp://0.0.0.0:*",
          "this node's bind endpoint; port * lets the OS choose"),
    N_STR("cluster", advertise, "127.0.0.1",
          "host other nodes use to reach this node"),
    N_INT("cluster", servers, 1, 1024, "2", "servers the job waits for"),
    N_INT("cluster", workers, 0, 4096, "2",
          "workers the job waits for; 0 = every worker that registers until "
          "none has joined for join_window_ms (elastic: scale without "
          "editing)"),
    N_INT("cluster", join_window_ms, 100, 3600000, "3000",
          "workers = 0: the worker set closes this long after the last "
          "worker joined, ms"),
    N_INT("cluster", ranges_per_server, 1, 1024, "2",
          "key ranges cut per server"),
    N_INT("cluster", replicas, 1, 2, "2",
          "copies of every key range: 2 = a primary and a backup on another "
          "server (chain replication; a dead primary fails over), 1 = none"),
    N_INT("cluster", heartbeat_ms, 10, 60000, "500", "heartbeat interval, ms"),
    N_INT("cluster", timeout_ms, 50, 3600000, "10000",
          "a peer silent this long is dead, ms"),
    N_INT("cluster", join_timeout_ms, 100, 3600000, "30000",
          "deadline of each start-up phase, ms"),
    N_INT("cluster", scheduler_timeout_ms, 100, 3600000, "30000",
          "servers and workers carry on this long without hearing the "
          "scheduler (it may be restarting), then stop, ms"),
    N_INT("cluster", node_id, 0, 1 << 20, "0",
          "a restarted worker or server: rejoin the running job as this node "
          "id (a worker continues from its last reported step, a server "
          "becomes a backup); 0 = a new node"),
    N_INT("cluster", retry_ms, 10, 3600000, "1000",
          "workers re-send a push or pull not answered within this, ms "
          "(servers apply a push once)"),
    N_DBL("cluster", fault_drop, 0.0, false, 0.5, "0",
          "fault injection: the share of worker requests dropped instead of "
          "sent"),
    N_INT("cluster", fault_delay_ms, 0, 10000, "0",
          "fault injection: workers hold each request back a random 0 to "
          "this many ms before sending it (so requests also reorder)"),
    N_INT("cluster", fault_disk_ms, 0, 60000, "0",
          "fault injection: servers take this many ms longer over every "
          "checkpoint file they write or read (a slow disk)"),
    N_INT("cluster", request_timeout_ms, 10, 3600000, "30000",
          "deadline for a push or pull reply, ms"),
    N_INT("cluster", max_message_mb, 1, 2048, "256",
          "largest message accepted, MiB"),

    N_STR("data", data_dir, "/usr/share/datasets/fashion-mnist",
          "directory with the IDX files"),
    S_I64("data", limit, 0, INT64_MAX, "0", "training examples used, 0 = all"),
    S_I64("data", test_limit, 0, INT64_MAX, "0", "test examples used, 0 = all"),
    S_I64("data", validation, 0, INT64_MAX, "0",
          "training examples held out for validation (rank 0 evaluates)"),
    S_ENUM("data", format, "idx|libsvm", "idx",
           "idx: data_dir holds (Fashion-)MNIST; libsvm: train_file and "
           "test_file"),
    N_STR("data", train_file, "train.svm", "libsvm: the training data"),
    N_STR("data", test_file, "test.svm", "libsvm: the test data"),
    S_INT("data", hash_bits, 1, 28, "20",
          "libsvm: feature ids are hashed into 2^hash_bits keys"),
    S_BOOL("data", shuffle, "true",
           "visit the partition in a new seeded order every epoch, the "
           "first included"),

    S_ENUM("model", model, "softmax|mlp|logreg", "softmax",
           "model to train; logreg: sparse logistic regression on libsvm "
           "data"),
    S_ENUM("model", init, "auto|zeros|random|he", "auto",
           "initial weights; auto = zeros for softmax, he for mlp"),
    S_STR("model", hidden, "256",
          "mlp: hidden layer sizes, comma-separated (\"512,128\")"),
    S_BOOL("model", batchnorm, "false",
           "mlp: batch normalization after every hidden layer"),
    S_DBL("model", init_scale, 0.0, false, DBL_MAX, "0.01",
          "stddev of the random init"),

    S_ENUM("train", algorithm, "downpour|dtadagrad|easgd", "downpour",
           "downpour (servers apply [optimizer] name), dtadagrad "
           "(AdaptiveRevision), easgd (elastic averaging)"),
    S_INT("train", epochs, 1, 100000, "10", "passes over the training set"),
    S_INT("train", batch_size, 1, 1048576, "64", "examples per mini-batch",
          .by = "algorithm=dtadagrad,model=mlp:32"),
    S_INT("train", n_fetch, 1, 1000000, "1", "pull every n_fetch steps"),
    S_INT("train", n_push, 1, 1000000, "1", "push every n_push steps"),
    S_ENUM("train", consistency, "async|bsp|ssp", "async",
           "async: never wait; bsp: a barrier every step; ssp: bounded "
           "staleness"),
    S_INT("train", staleness, 0, 1000000, "3",
          "ssp: clocks the fastest worker may lead the slowest"),
    S_INT("train", delay, 0, 1000000, "0",
          "hold each push back by this many pushes (delay experiments)"),
    S_INT("train", tau, 1, 1000000, "4",
          "easgd: steps between elastic exchanges with the center",
          .by = "model=mlp:1"),
    S_DBL("train", easgd_alpha, 0.0, false, 1.0, "0",
          "easgd: moving rate alpha; 0 = 0.9 / workers (the paper's beta "
          "= 0.9)"),
    S_INT("train", patience, 0, 1000000, "0",
          "early stopping: stop after this many epochs without a better "
          "validation loss and keep the best epoch's model; 0 = off"),
    S_DBL("train", min_delta, 0.0, false, DBL_MAX, "0",
          "early stopping: the improvement in validation loss that counts"),
    S_ENUM("train", curriculum, "off|easy|mixed", "off",
           "order each epoch by the loss under the current model, easy "
           "first; mixed also draws curriculum_mix of it uniformly"),
    S_DBL("train", curriculum_mix, 0.0, false, 1.0, "0.5",
          "mixed curriculum: the share of positions drawn uniformly"),
    S_INT("train", threads, 1, 64, "1",
          "Hogwild! threads per worker: each takes its own mini-batch and "
          "updates the shared local parameters without locks"),
    S_DBL("train", easgd_delta, 0.0, false, 1.0, "0.9",
          "easgd: Nesterov momentum of the workers (EAMSGD, paper 0.99); "
          "0 = plain EASGD",
          .by = "model=mlp:0.95"),

    S_ENUM("optimizer", name, "sgd|momentum|nag|adagrad|adadelta|rmsprop|adam",
           "sgd", "update rule the servers apply",
           .by = "algorithm=downpour,model=mlp:adam;model=logreg:adagrad"),
    S_DBL("optimizer", lr, 0.0, true, DBL_MAX, "0.2", "base learning rate",
          .by = "algorithm=easgd:0.1;algorithm=dtadagrad,model=softmax:0.5;"
                "name=adam:0.001;name=adagrad,model=logreg:0.2"),
    S_DBL("optimizer", momentum, 0.0, false, 1.0, "0",
          "momentum; 0 = the rule's default (0.9 for momentum and nag, "
          "none for rmsprop)"),
    S_DBL("optimizer", dampening, 0.0, false, 1.0, "0",
          "dampening of the momentum buffer (PyTorch form)"),
    S_BOOL("optimizer", nesterov, "false",
           "momentum with Nesterov's correction, the same as name = nag"),
    S_DBL("optimizer", beta1, 0.0, false, 1.0, "0.9",
          "adam: decay of the first moment, in [0, 1)"),
    S_DBL("optimizer", beta2, 0.0, false, 1.0, "0.999",
          "adam: decay of the second moment, in [0, 1)"),
    S_DBL("optimizer", rho, 0.0, false, 1.0, "0.9",
          "adadelta: decay of both running averages, in [0, 1)"),
    S_DBL("optimizer", alpha, 0.0, false, 1.0, "0.99",
          "rmsprop: decay of the squared average, in [0, 1)"),
    S_DBL("optimizer", eps, 0.0, false, 1.0, "0",
          "epsilon of the adaptive rules; 0 = the rule's PyTorch default"),
    S_DBL("optimizer", weight_decay, 0.0, false, DBL_MAX, "0",
          "coupled L2: g += weight_decay * w before the rule"),
    S_DBL("optimizer", lr_decay, 0.0, false, DBL_MAX, "0",
          "adagrad: lr / (1 + (t - 1) * lr_decay)"),
    S_DBL("optimizer", initial_accumulator, 0.0, false, DBL_MAX, "0",
          "adagrad: starting sum of squared gradients"),
    S_BOOL("optimizer", centered, "false", "rmsprop: centered variant"),
    S_BOOL("optimizer", amsgrad, "false", "adam: AMSGrad variant"),
    S_ENUM("optimizer", form, "pytorch|paper", "pytorch",
           "PyTorch's conventions or the papers' (docs/optimizers.md)"),
    S_DBL("optimizer", clip_norm, 0.0, false, DBL_MAX, "0",
          "workers clip each gradient to this global norm; 0 = off"),
    S_DBL("optimizer", noise_eta, 0.0, false, DBL_MAX, "0",
          "gradient noise variance eta / (1 + t)^gamma; 0 = off"),
    S_DBL("optimizer", noise_gamma, 0.0, false, DBL_MAX, "0.55",
          "gradient noise decay exponent gamma"),
    S_ENUM("optimizer", schedule,
           "constant|step|exponential|inverse|cosine|plateau", "cosine",
           "learning-rate schedule"),
    S_DBL("optimizer", lr_min, 0.0, false, DBL_MAX, "0",
          "cosine: final rate; every schedule: the lowest rate"),
    S_INT("optimizer", warmup, 0, INT_MAX, "0",
          "linear warm-up over this many updates"),
    S_DBL("optimizer", lr_gamma, 0.0, true, 1.0, "0.1",
          "step, exponential, plateau: the factor applied to the rate"),
    S_DBL("optimizer", lr_step, 0.0, true, DBL_MAX, "10",
          "step: epochs between two decays"),
    S_DBL("optimizer", lr_k, 0.0, false, DBL_MAX, "0.1",
          "inverse: lr / (1 + lr_k * epoch)"),
    S_INT("optimizer", plateau_patience, 0, 1000000, "10",
          "plateau: epochs without improvement before a cut"),
    S_DBL("optimizer", plateau_threshold, 0.0, false, 1.0, "1e-4",
          "plateau: relative improvement that counts"),
    S_INT("optimizer", plateau_cooldown, 0, 1000000, "0",
          "plateau: epochs to wait after a cut"),
    S_DBL("optimizer", dt_beta, 0.0, false, DBL_MAX, "1",
          "dtadagrad: eta = lr / (dt_beta + sqrt(z'))"),
    S_DBL("optimizer", dt_z0, 0.0, false, DBL_MAX, "0",
          "dtadagrad: starting value of z and z'"),
};

#define S_NOPTS (sizeof s_opts / sizeof s_opts[0])

static void s_env_name(const ds_opt_t *o, char *buf, size_t len);

// s_out accumulates text in a caller's buffer like snprintf: it writes what
// fits, keeps the buffer NUL-terminated and counts what it would have needed.
struct s_out {
    char  *buf;  // destination; may be NULL when len is 0
    size_t len;  // size of buf, bytes
    size_t need; // bytes the whole text takes, without the NUL
};

static void
s_out_init(struct s_out *o, char *buf, size_t len)
{
    o->buf = buf;
    o->len = buf != NULL ? len : 0;
    o->need = 0;
    if (o->len > 0) {
        o->buf[0] = '\0';
    }
}

static void
s_out_put(struct s_out *o, const char *s, size_t n)
{
    if (o->need < o->len) {
        size_t room = o->len - o->need - 1; // one byte stays for the NUL
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->need, s, k);
        o->buf[o->need + k] = '\0';
    }
    o->need += n;
}

__attribute__((format(printf, 2, 3))) static void
s_out_printf(struct s_out *o, const char *fmt, ...)
{
    char    tmp[S_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    // Every caller formats short pieces; a longer one would be a bug here.
    assert(n >= 0 && (size_t)n < sizeof tmp);
    s_out_put(o, tmp, (size_t)n);
}

static void
s_out_str(struct s_out *o, const char *s)
{
    s_out_put(o, s, strlen(s));
}

// s_section_known says whether any row belongs to section (len bytes).
static bool
s_section_known(const char *section, size_t len)
{
    for (size_t i = 0; i < S_NOPTS; i++) {
        if (strlen(s_opts[i].section) == len &&
            memcmp(s_opts[i].section, section, len) == 0) {
            return true;
        }
    }
    return false;
}

// s_job_default writes to buf (len bytes) the default of row o for the job
// in c: the value of the first entry of o->by that holds, or o->def.
static void
s_job_default(const ds_config_t *c, const ds_opt_t *o, char *buf, size_t len)
{
    for (const char *e = o->by; e != NULL && *e != '\0';) {
        size_t      n = strcspn(e, ";");
        const char *colon = memchr(e, ':', n);
        assert(colon != NULL && "a .by entry is when:value");
        bool holds = true;
        for (const char *k = e; k < colon;) {
            size_t      kn = strcspn(k, ",:");
            const char *eq = memchr(k, '=', kn);
            assert(eq != NULL && "a condition is key=value");
            const char *field = NULL;
            for (size_t i = 0; i < S_NOPTS && field == NULL; i++) {
                if (s_opts[i].type == DS_OPT_ENUM &&
                    strlen(s_opts[i].key) == (size_t)(eq - k) &&
                    memcmp(s_opts[i].key, k, (size_t)(eq - k)) == 0) {
                    field = (const char *)c + s_opts[i].offset;
                }
            }
            assert(field != NULL && "conditions name enum options");
            size_t vn = kn - (size_t)(eq + 1 - k);
            holds = holds && field != NULL && strlen(field) == vn &&
                    memcmp(field, eq + 1, vn) == 0;
            k += kn + (k[kn] == ',');
        }
        if (holds) {
            ds_err(buf, len, 0, "%.*s", (int)(e + n - colon - 1), colon + 1);
            return;
        }
        e += n + (e[n] == ';');
    }
    ds_err(buf, len, 0, "%s", o->def);
}

// s_lookup finds the row of section and key; a NULL section matches key in
// any section. Returns the row index, -ENOENT when nothing matches, or
// -EINVAL when section is NULL and key is in more than one section.
static int
s_lookup(const char *section, const char *key)
{
    int found = -ENOENT;
    for (size_t i = 0; i < S_NOPTS; i++) {
        if (strcmp(s_opts[i].key, key) != 0) {
            continue;
        }
        if (section != NULL && strcmp(s_opts[i].section, section) != 0) {
            continue;
        }
        if (found >= 0) {
            return -EINVAL;
        }
        found = (int)i;
    }
    return found;
}

// s_lookup_reason explains a failed s_lookup (rc) in words, for example
// "unknown option" or "ambiguous: [a] key, [b] key; give the section".
static void
s_lookup_reason(const char *section, const char *key, int rc, char *buf,
                size_t len)
{
    if (section != NULL && !s_section_known(section, strlen(section))) {
        ds_err(buf, len, 0, "unknown section");
        return;
    }
    if (rc != -EINVAL) {
        ds_err(buf, len, 0, "unknown option");
        return;
    }
    struct s_out o;
    s_out_init(&o, buf, len);
    s_out_str(&o, "ambiguous:");
    const char *sep = " ";
    for (size_t i = 0; i < S_NOPTS; i++) {
        if (strcmp(s_opts[i].key, key) == 0) {
            s_out_printf(&o, "%s[%s] %s", sep, s_opts[i].section, key);
            sep = ", ";
        }
    }
    s_out_str(&o, "; give the section");
}

// s_bounds describes the values o accepts ("1..1024", ">= 0", "> 0",
// "zeros|random"), or writes "" for strings, bools and uint64, whose limits
// are their type's.
static void
s_bounds(const ds_opt_t *o, char *buf, size_t len)
{
    ds_err(buf, len, 0, "%s", "");
    switch (o->type) {
    case DS_OPT_INT:
    case DS_OPT_INT64: {
        int64_t top = o->type == DS_OPT_INT ? INT_MAX : INT64_MAX;
        if (o->max >= top) {
            ds_err(buf, len, 0, ">= %" PRId64, o->min);
        } else {
            ds_err(buf, len, 0, "%" PRId64 "..%" PRId64, o->min, o->max);
        }
        break;
    }
    case DS_OPT_DOUBLE:
        if (o->dmax >= DBL_MAX) {
            ds_err(buf, len, 0, "%s %g", o->dmin_open ? ">" : ">=", o->dmin);
        } else {
            ds_err(buf, len, 0, "%g..%g", o->dmin, o->dmax);
        }
        break;
    case DS_OPT_ENUM:
        ds_err(buf, len, 0, "%s", o->choices);
        break;
    case DS_OPT_STRING:
    case DS_OPT_UINT64:
    case DS_OPT_BOOL:
        break;
    }
}

// s_bad writes "[section] key: reason (got "value")" to err, quoting at most
// S_ECHO_MAX characters of the value. Returns -EINVAL.
static int
s_bad(const ds_opt_t *o, const char *value, const char *reason, char *err,
      size_t errlen)
{
    int         n = (int)strnlen(value, S_ECHO_MAX + 1);
    const char *more = n > S_ECHO_MAX ? "..." : "";
    ds_err(err, errlen, 0, "[%s] %s: %s (got \"%.*s%s\")", o->section, o->key,
           reason, n > S_ECHO_MAX ? S_ECHO_MAX : n, value, more);
    return -EINVAL;
}

// s_range_reason writes "must be between 1 and 1024", "must be >= 0" or
// "must be > 0" for o.
static void
s_range_reason(const ds_opt_t *o, char *buf, size_t len)
{
    char b[64];
    s_bounds(o, b, sizeof b);
    if (b[0] == '>') {
        ds_err(buf, len, 0, "must be %s", b);
    } else if (o->type == DS_OPT_DOUBLE) {
        ds_err(buf, len, 0, "must be between %g and %g", o->dmin, o->dmax);
    } else {
        ds_err(buf, len, 0, "must be between %" PRId64 " and %" PRId64, o->min,
               o->max);
    }
}

// s_parse_int64 reads a whole base-10 integer with an optional sign: no
// blanks, no trailing junk. Returns 0, -EINVAL or -ERANGE (beyond int64).
static int
s_parse_int64(const char *s, int64_t *out)
{
    if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '+')) {
        return -EINVAL;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0') {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    *out = v;
    return 0;
}

// s_parse_uint64 is s_parse_int64 for uint64_t. A minus sign is refused
// because strtoull would silently wrap "-1" to the largest value.
static int
s_parse_uint64(const char *s, uint64_t *out)
{
    if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '+')) {
        return -EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0') {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    *out = v;
    return 0;
}

// s_parse_bool accepts true/false, yes/no, on/off and 1/0, in any case.
static int
s_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

// s_choice_ok says whether s is one of the '|'-separated choices.
static bool
s_choice_ok(const char *choices, const char *s)
{
    size_t      n = strlen(s);
    const char *p = choices;
    while (*p != '\0') {
        size_t k = strcspn(p, "|");
        if (k == n && memcmp(p, s, n) == 0) {
            return true;
        }
        p += k;
        if (*p == '|') {
            p++;
        }
    }
    return false;
}

static int
s_set_int(const ds_opt_t *o, void *field, const char *value, char *err,
          size_t errlen)
{
    char    why[128];
    int64_t v;
    int     rc = s_parse_int64(value, &v);
    if (rc == -EINVAL) {
        return s_bad(o, value, "expected an integer", err, errlen);
    }
    if (rc == -ERANGE && o->max >= INT64_MAX) {
        return s_bad(o, value, "out of range for a 64-bit integer", err,
                     errlen);
    }
    if (rc == -ERANGE || v < o->min || v > o->max) {
        s_range_reason(o, why, sizeof why);
        return s_bad(o, value, why, err, errlen);
    }
    if (o->type == DS_OPT_INT) {
        *(int *)field = (int)v; // in range: every int row has INT bounds
    } else {
        *(int64_t *)field = v;
    }
    return 0;
}

static int
s_set_double(const ds_opt_t *o, double *field, const char *value, char *err,
             size_t errlen)
{
    // strtod skips leading blanks; a whole-value parse must not.
    if (value[0] == '\0' || value[0] == ' ' || value[0] == '\t' ||
        value[0] == '\n' || value[0] == '\r' || value[0] == '\v' ||
        value[0] == '\f') {
        return s_bad(o, value, "expected a number", err, errlen);
    }
    char  *end;
    double v = strtod(value, &end);
    if (end == value || *end != '\0') {
        return s_bad(o, value, "expected a number", err, errlen);
    }
    // Overflow gives HUGE_VAL, so this also refuses "1e999"; underflow
    // rounds towards 0 and is then judged by the bounds.
    if (!isfinite(v)) {
        return s_bad(o, value, "must be a finite number", err, errlen);
    }
    if (v < o->dmin || (o->dmin_open && v == o->dmin) || v > o->dmax) {
        char why[128];
        s_range_reason(o, why, sizeof why);
        return s_bad(o, value, why, err, errlen);
    }
    *field = v;
    return 0;
}

// s_store parses value for row o and stores it in c. The field is written
// only after every check has passed, so c is unchanged on error.
static int
s_store(ds_config_t *c, const ds_opt_t *o, const char *value, char *err,
        size_t errlen)
{
    void *field = (char *)c + o->offset;
    switch (o->type) {
    case DS_OPT_STRING:
    case DS_OPT_ENUM: {
        size_t n = strlen(value);
        if (o->type == DS_OPT_ENUM && !s_choice_ok(o->choices, value)) {
            char why[128];
            ds_err(why, sizeof why, 0, "must be one of %s", o->choices);
            return s_bad(o, value, why, err, errlen);
        }
        if (n < (size_t)o->min) {
            ds_err(err, errlen, 0, "[%s] %s: must not be empty", o->section,
                   o->key);
            return -EINVAL;
        }
        if (n >= o->size) {
            ds_err(err, errlen, 0,
                   "[%s] %s: too long: at most %zu characters "
                   "(got %zu)",
                   o->section, o->key, o->size - 1, n);
            return -EINVAL;
        }
        memcpy(field, value, n + 1);
        return 0;
    }
    case DS_OPT_INT:
    case DS_OPT_INT64:
        return s_set_int(o, field, value, err, errlen);
    case DS_OPT_UINT64: {
        uint64_t v;
        int      rc = s_parse_uint64(value, &v);
        if (rc == -EINVAL) {
            return s_bad(o, value, "expected an integer >= 0", err, errlen);
        }
        if (rc == -ERANGE) {
            return s_bad(o, value,
                         "out of range for a 64-bit unsigned "
                         "integer",
                         err, errlen);
        }
        *(uint64_t *)field = v;
        return 0;
    }
    case DS_OPT_DOUBLE:
        return s_set_double(o, field, value, err, errlen);
    case DS_OPT_BOOL: {
        bool v;
        if (s_parse_bool(value, &v) < 0) {
            return s_bad(o, value,
                         "expected true/false, yes/no, on/off or "
                         "1/0",
                         err, errlen);
        }
        *(bool *)field = v;
        return 0;
    }
    }
    assert(!"unknown option type");
    return -EINVAL;
}

// s_set is s_store for a value a source gives: the option is then set
// explicitly and keeps its value whatever the job.
static int
s_set(ds_config_t *c, const ds_opt_t *o, const char *value, char *err,
      size_t errlen)
{
    int rc = s_store(c, o, value, err, errlen);
    if (rc == 0) {
        c->given[o - s_opts] = true;
    }
    return rc;
}

// s_job_defaults gives every option that no source has set its default for
// the job in c (s_job_default).
static void
s_job_defaults(ds_config_t *c)
{
    for (size_t i = 0; i < S_NOPTS; i++) {
        if (s_opts[i].by == NULL || c->given[i]) {
            continue;
        }
        char value[S_NAME_MAX];
        s_job_default(c, &s_opts[i], value, sizeof value);
        int rc = s_store(c, &s_opts[i], value, NULL, 0);
        assert(rc == 0 && "every default by job passes its row's checks");
        (void)rc;
    }
}

void
ds_config_defaults(ds_config_t *c)
{
    _Static_assert(S_NOPTS <= DS_CONFIG_MAX_OPTS, "raise DS_CONFIG_MAX_OPTS");
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < S_NOPTS; i++) {
        int rc = s_store(c, &s_opts[i], s_opts[i].def, NULL, 0);
        assert(rc == 0 && "every default passes its own checks");
        (void)rc;
    }
    s_job_defaults(c);
}

int
ds_config_set(ds_config_t *c, const char *section, const char *key,
              const char *value, char *err, size_t errlen)
{
    ds_err(err, errlen, 0, "%s", "");
    int i = s_lookup(section, key);
    if (i < 0) {
        char why[S_MSG_MAX];
        s_lookup_reason(section, key, i, why, sizeof why);
        if (section != NULL) {
            ds_err(err, errlen, 0, "[%s] %s: %s", section, key, why);
        } else {
            ds_err(err, errlen, 0, "%s: %s", key, why);
        }
        return i;
    }
    int rc = s_set(c, &s_opts[i], value, err, errlen);
    s_job_defaults(c);
    return rc;
}

// s_file is the state shared by the line reader and the value handler
// while inih parses one job file.
struct s_file {
    FILE        *fp;             // the open job file
    const char  *path;           // its name, for messages
    ds_config_t *c;              // the copy being filled
    int          line;           // number of the line inih is parsing
    int          err_line;       // line of our first error, 0 if none
    char         msg[S_MSG_MAX]; // that error, without "path:line: "
};

// s_is_blank is isspace for the C locale, without its int conversions.
static bool
s_is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' ||
           ch == '\f';
}

// s_check_line looks at a raw line before inih does and reports what inih
// would accept silently: an unknown [section] even when empty, and any
// indented line, which inih reads as a continuation of the previous value
// (so "  servers = 4" under "advertise = h" would set advertise to
// "servers = 4"). Returns false with f->msg set when the line is refused.
static bool
s_check_line(struct s_file *f, const char *line)
{
    if (f->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3; // inih skips a UTF-8 byte order mark on the first line
    }
    const char *p = line;
    while (s_is_blank(*p)) {
        p++;
    }
    if (*p == '\0' || strchr(INI_START_COMMENT_PREFIXES, *p) != NULL) {
        return true;
    }
    if (p != line) {
        ds_err(f->msg, sizeof f->msg, 0,
               "indented line; inih would read it as "
               "part of the previous value");
        return false;
    }
    const char *close = p[0] == '[' ? strchr(p, ']') : NULL;
    if (close != NULL && !s_section_known(p + 1, (size_t)(close - p - 1))) {
        ds_err(f->msg, sizeof f->msg, 0, "[%.*s]: unknown section",
               (int)(close - p - 1), p + 1);
        return false;
    }
    return true;
}

// s_read_line is the fgets-style reader inih calls once per line. Counting
// lines here is what lets the value handler name its line. It ends the
// parse (returns NULL, like end of file) at the first error it finds.
static char *
s_read_line(char *str, int num, void *stream)
{
    struct s_file *f = stream;
    if (f->err_line != 0 || fgets(str, num, f->fp) == NULL) {
        return NULL;
    }
    f->line++;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n') {
        // The buffer is full. If a newline follows, the line fitted exactly
        // and the newline is consumed; anything else means inih would split
        // the line and read its tail as a line of its own.
        int ch = getc(f->fp);
        if (ch != '\n' && ch != EOF) {
            f->err_line = f->line;
            ds_err(f->msg, sizeof f->msg, 0,
                   "line too long (at most %d "
                   "characters)",
                   num - 1);
            return NULL;
        }
    }
    if (!s_check_line(f, str)) {
        f->err_line = f->line;
        return NULL;
    }
    return str;
}

// s_on_value is the inih handler: one call per key = value line. inih
// reads a return of 0 as an error; the text is kept in f->msg.
static int
s_on_value(void *user, const char *section, const char *name, const char *value)
{
    struct s_file *f = user;
    if (f->err_line != 0) {
        return 0;
    }
    int rc;
    if (section[0] == '\0') {
        ds_err(f->msg, sizeof f->msg, 0, "%s: option before any [section]",
               name);
        rc = -EINVAL;
    } else {
        rc = ds_config_set(f->c, section, name, value, f->msg, sizeof f->msg);
    }
    if (rc < 0) {
        f->err_line = f->line;
        return 0;
    }
    return 1;
}

int
ds_config_load_file(ds_config_t *c, const char *path, char *err, size_t errlen)
{
    ds_err(err, errlen, 0, "%s", "");
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        int e = errno;
        ds_err(err, errlen, 0, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    // Values go into a copy, so a file with an error changes nothing.
    ds_config_t   tmp = *c;
    struct s_file f = {.fp = fp, .path = path, .c = &tmp};
    int           line = ini_parse_stream(s_read_line, &f, s_on_value, &f);
    int           rc = 0;
    if (ferror(fp)) {
        int e = errno != 0 ? errno : EIO;
        ds_err(err, errlen, 0, "%s: cannot read: %s", path, strerror(e));
        rc = -e;
    } else if (line == -2) {
        ds_err(err, errlen, 0, "%s: out of memory", path);
        rc = -ENOMEM;
    } else if (line > 0 && (f.err_line == 0 || line < f.err_line)) {
        // inih keeps parsing after a line it cannot read and returns the
        // first such line; if it comes before ours, it is the one to report.
        ds_err(err, errlen, 0, "%s:%d: expected [section] or key = value", path,
               line);
        rc = -EINVAL;
    } else if (f.err_line != 0) {
        ds_err(err, errlen, 0, "%s:%d: %s", path, f.err_line, f.msg);
        rc = -EINVAL;
    }
    fclose(fp);
    if (rc == 0) {
        *c = tmp;
    }
    return rc;
}

// s_env_value returns the value of name in envp ("NAME=value" strings), or
// NULL when it is not there.
static const char *
s_env_value(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
            return *e + n + 1;
        }
    }
    return NULL;
}

// s_env_name writes DESCENT_<SECTION>_<KEY>, upper-cased, for row o.
static void
s_env_name(const ds_opt_t *o, char *buf, size_t len)
{
    ds_err(buf, len, 0, S_ENV_PREFIX "%s_%s", o->section, o->key);
    for (char *p = buf; *p != '\0'; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 'a' + 'A');
        }
    }
}

// s_environ returns envp, or the process environment when envp is NULL.
// The result may be NULL (after clearenv), which callers read as empty.
static char *const *
s_environ(char *const *envp)
{
    extern char **environ;
    return envp != NULL ? envp : environ;
}

// s_env_is says whether the variable name of n bytes is exactly want.
static bool
s_env_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncmp(name, want, n) == 0;
}

int
ds_config_load_env(ds_config_t *c, char *const *envp, char *err, size_t errlen)
{
    ds_err(err, errlen, 0, "%s", "");
    ds_config_t tmp = *c;
    for (char *const *e = s_environ(envp); e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL ||
            strncmp(*e, S_ENV_PREFIX, strlen(S_ENV_PREFIX)) != 0) {
            continue;
        }
        size_t n = (size_t)(eq - *e);
        // DESCENT_CONFIG names the job file (ds_config_from_args) and
        // DESCENT_BIN is the test harness's; neither is an option.
        if (s_env_is(*e, n, "DESCENT_CONFIG") ||
            s_env_is(*e, n, "DESCENT_BIN")) {
            continue;
        }
        // Names are built from the table and compared whole: splitting
        // DESCENT_TRAIN_BATCH_SIZE at underscores could not tell the
        // section from the key.
        const ds_opt_t *o = NULL;
        for (size_t i = 0; i < S_NOPTS && o == NULL; i++) {
            char name[S_NAME_MAX];
            s_env_name(&s_opts[i], name, sizeof name);
            if (s_env_is(*e, n, name)) {
                o = &s_opts[i];
            }
        }
        if (o == NULL) {
            ds_err(err, errlen, 0,
                   "%.*s: unknown environment variable (not an "
                   "option)",
                   (int)(n < S_NAME_MAX ? n : S_NAME_MAX), *e);
            return -EINVAL;
        }
        char msg[S_MSG_MAX];
        if (s_set(&tmp, o, eq + 1, msg, sizeof msg) < 0) {
            ds_err(err, errlen, 0, "%.*s: %s", (int)n, *e, msg);
            return -EINVAL;
        }
    }
    s_job_defaults(&tmp);
    *c = tmp;
    return 0;
}

// The kinds of command-line argument s_arg_next recognises.
enum {
    S_ARG_HELP,       // --help or -h
    S_ARG_CONFIG,     // --config FILE, --config=FILE or -c FILE
    S_ARG_OPTION,     // --name=value or --name value
    S_ARG_POSITIONAL, // anything else, and everything after "--"
};

// s_arg is one command-line argument, split into its parts.
struct s_arg {
    int         kind;             // S_ARG_*
    char        name[S_NAME_MAX]; // options: "section.key" or "key"
    const char *value;            // option value, job file or positional
};

// s_arg_next reads the argument at *i, and its value when that is a
// separate argument, and advances *i past both. *rest is set once "--" has
// been seen. Returns 0 or -EINVAL with err set; *i advances either way.
static int
s_arg_next(int argc, char **argv, int *i, bool *rest, struct s_arg *a,
           char *err, size_t errlen)
{
    const char *s = argv[(*i)++];
    a->name[0] = '\0';
    a->value = s;
    if (*rest || s[0] != '-' || s[1] == '\0') {
        a->kind = S_ARG_POSITIONAL;
        return 0;
    }
    if (strcmp(s, "--") == 0) {
        *rest = true;
        a->kind = S_ARG_POSITIONAL;
        a->value = NULL;
        return 0;
    }
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
        a->kind = S_ARG_HELP;
        return 0;
    }
    if (s[1] != '-' && strcmp(s, "-c") != 0) {
        ds_err(err, errlen, 0, "%s: unknown flag", s);
        return -EINVAL;
    }
    const char *name = s[1] == '-' ? s + 2 : "config";
    size_t      n = strcspn(name, "=");
    if (n >= sizeof a->name) {
        ds_err(err, errlen, 0, "--%.40s...: unknown option", name);
        return -EINVAL;
    }
    memcpy(a->name, name, n);
    a->name[n] = '\0';
    a->kind = strcmp(a->name, "config") == 0 ? S_ARG_CONFIG : S_ARG_OPTION;
    if (name[n] == '=') {
        a->value = name + n + 1;
        return 0;
    }
    // A separate value must not look like the next flag: "--shuffle
    // --epochs=3" is a missing value, not shuffle = "--epochs=3".
    if (*i >= argc || strncmp(argv[*i], "--", 2) == 0) {
        ds_err(err, errlen, 0, "%s: missing %s", s,
               a->kind == S_ARG_CONFIG ? "FILE" : "value");
        a->value = NULL;
        return -EINVAL;
    }
    a->value = argv[(*i)++];
    return 0;
}

// s_arg_lookup finds the row an option flag names. Returns the row index,
// or -EINVAL with err set.
static int
s_arg_lookup(const struct s_arg *a, char *err, size_t errlen)
{
    char        section[S_NAME_MAX];
    const char *key = a->name;
    const char *sec = NULL;
    const char *dot = strchr(a->name, '.');
    if (dot != NULL) {
        memcpy(section, a->name, (size_t)(dot - a->name));
        section[dot - a->name] = '\0';
        sec = section;
        key = dot + 1;
    }
    int i = s_lookup(sec, key);
    if (i < 0) {
        char why[S_MSG_MAX];
        s_lookup_reason(sec, key, i, why, sizeof why);
        ds_err(err, errlen, 0, "--%s: %s", a->name, why);
        return -EINVAL;
    }
    return i;
}

// s_scan is the first pass over the arguments: it looks for --help, picks
// the job file and checks every name, but sets nothing. The first error is
// kept in err; scanning goes on so that --help anywhere still wins.
static int
s_scan(int argc, char **argv, bool allow_positional, bool *help,
       const char **file, char *err, size_t errlen)
{
    const char *config = NULL;
    const char *positional = NULL;
    bool        rest = false;
    int         first = 0;
    for (int i = 1; i < argc;) {
        struct s_arg a;
        char         msg[S_MSG_MAX];
        int rc = s_arg_next(argc, argv, &i, &rest, &a, msg, sizeof msg);
        if (rc == 0 && a.kind == S_ARG_HELP) {
            *help = true;
            return 0;
        }
        if (rc == 0 && a.kind == S_ARG_OPTION) {
            rc = s_arg_lookup(&a, msg, sizeof msg);
            rc = rc < 0 ? rc : 0;
        } else if (rc == 0 && a.kind == S_ARG_CONFIG) {
            if (config != NULL) {
                ds_err(msg, sizeof msg, 0,
                       "--config given twice (\"%s\" and "
                       "\"%s\")",
                       config, a.value);
                rc = -EINVAL;
            }
            config = a.value;
        } else if (rc == 0 && a.value != NULL) {
            // A positional argument ("--" itself has no value).
            if (!allow_positional) {
                ds_err(msg, sizeof msg, 0, "unexpected argument \"%s\"",
                       a.value);
                rc = -EINVAL;
            } else if (positional != NULL) {
                ds_err(msg, sizeof msg, 0,
                       "unexpected second argument \"%s\" "
                       "(the job file is \"%s\")",
                       a.value, positional);
                rc = -EINVAL;
            }
            positional = positional != NULL ? positional : a.value;
        }
        if (rc < 0 && first == 0) {
            first = rc;
            ds_err(err, errlen, 0, "%s", msg);
        }
    }
    if (first == 0 && config != NULL && positional != NULL) {
        ds_err(err, errlen, 0,
               "two job files: --config \"%s\" and argument "
               "\"%s\"",
               config, positional);
        first = -EINVAL;
    }
    *file = config != NULL ? config : positional;
    return first;
}

int
ds_config_from_args(ds_config_t *c, int argc, char **argv, char *const *envp,
                    bool allow_positional, bool *help, char *err, size_t errlen)
{
    bool        want_help = false;
    const char *file = NULL;
    ds_config_defaults(c);
    ds_err(err, errlen, 0, "%s", "");
    int rc =
        s_scan(argc, argv, allow_positional, &want_help, &file, err, errlen);
    if (help != NULL) {
        *help = want_help;
    }
    if (want_help) {
        ds_err(err, errlen, 0, "%s", "");
        return 0;
    }
    if (rc < 0) {
        return rc;
    }
    envp = s_environ(envp);
    if (file == NULL) {
        file = s_env_value(envp, "DESCENT_CONFIG");
        file = file != NULL && file[0] != '\0' ? file : NULL;
    }
    if (file != NULL) {
        rc = ds_config_load_file(c, file, err, errlen);
        if (rc < 0) {
            return rc;
        }
    }
    rc = ds_config_load_env(c, envp, err, errlen);
    if (rc < 0) {
        return rc;
    }
    // Second pass: the flags, in order, over file and environment. s_scan
    // has checked every name, so only values can fail here.
    bool rest = false;
    for (int i = 1; i < argc;) {
        struct s_arg a;
        char         msg[S_MSG_MAX];
        rc = s_arg_next(argc, argv, &i, &rest, &a, msg, sizeof msg);
        if (rc < 0 || a.kind != S_ARG_OPTION) {
            continue;
        }
        int row = s_arg_lookup(&a, msg, sizeof msg);
        if (row < 0 || s_set(c, &s_opts[row], a.value, msg, sizeof msg) < 0) {
            ds_err(err, errlen, 0, "--%s: %s", a.name, msg);
            return -EINVAL;
        }
    }
    s_job_defaults(c);
    return 0;
}

// s_value_text writes the value of row o in c as canonical text: integers
// in base 10, doubles in the fewest %g digits that read back as the same
// double (0.1, not 0.10000000000000001), bools as true/false, strings as
// they are. Returns the length it needed, like snprintf.
static size_t
s_value_text(const ds_opt_t *o, const ds_config_t *c, char *buf, size_t len)
{
    const void  *field = (const char *)c + o->offset;
    struct s_out out;
    s_out_init(&out, buf, len);
    switch (o->type) {
    case DS_OPT_STRING:
    case DS_OPT_ENUM:
        s_out_str(&out, field);
        break;
    case DS_OPT_INT:
        s_out_printf(&out, "%d", *(const int *)field);
        break;
    case DS_OPT_INT64:
        s_out_printf(&out, "%" PRId64, *(const int64_t *)field);
        break;
    case DS_OPT_UINT64:
        s_out_printf(&out, "%" PRIu64, *(const uint64_t *)field);
        break;
    case DS_OPT_DOUBLE: {
        double v = *(const double *)field;
        char   tmp[32];
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(tmp, sizeof tmp, "%.*g", digits, v);
            if (strtod(tmp, NULL) == v) {
                break;
            }
        }
        s_out_str(&out, tmp);
        break;
    }
    case DS_OPT_BOOL:
        s_out_str(&out, *(const bool *)field ? "true" : "false");
        break;
    }
    return out.need;
}

// s_setting_text writes "section.key=value" for row o of c to buf (len
// bytes, or NULL and 0 to measure). Returns the length it needed.
static size_t
s_setting_text(const ds_opt_t *o, const ds_config_t *c, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s.%s=", o->section, o->key);
    assert(n > 0);
    size_t used = (size_t)n < len ? (size_t)n : (len > 0 ? len - 1 : 0);
    return (size_t)n +
           s_value_text(o, c, buf != NULL ? buf + used : NULL, len - used);
}

int
ds_config_fingerprint(const ds_config_t *c, char ***items, size_t *n)
{
    size_t count = 0, text = 0;
    for (size_t i = 0; i < S_NOPTS; i++) {
        if (!s_opts[i].per_node) {
            count++;
            text += s_setting_text(&s_opts[i], c, NULL, 0) + 1;
        }
    }
    // One block: the pointers, then the strings they point to.
    char **v = malloc(count * sizeof *v + text);
    if (v == NULL) {
        return -ENOMEM;
    }
    char  *p = (char *)(v + count);
    size_t k = 0;
    for (size_t i = 0; i < S_NOPTS; i++) {
        if (!s_opts[i].per_node) {
            size_t len = s_setting_text(&s_opts[i], c, NULL, 0) + 1;
            s_setting_text(&s_opts[i], c, p, len);
            v[k++] = p;
            p += len;
        }
    }
    *items = v;
    *n = count;
    return 0;
}

// s_find_setting returns the value of the first of the n items that names
// "section.key", or NULL.
static const char *
s_find_setting(const ds_opt_t *o, char *const *items, size_t n)
{
    size_t ls = strlen(o->section), lk = strlen(o->key);
    for (size_t i = 0; i < n; i++) {
        const char *s = items[i];
        if (strncmp(s, o->section, ls) == 0 && s[ls] == '.' &&
            strncmp(s + ls + 1, o->key, lk) == 0 && s[ls + 1 + lk] == '=') {
            return s + ls + 1 + lk + 1;
        }
    }
    return NULL;
}

int
ds_config_compare(const ds_config_t *c, char *const *items, size_t n, char *err,
                  size_t errlen)
{
    ds_err(err, errlen, 0, "%s", "");
    char mine[DS_STR_MAX + 32];
    for (size_t i = 0; i < S_NOPTS; i++) {
        const ds_opt_t *o = &s_opts[i];
        if (o->per_node) {
            continue;
        }
        s_value_text(o, c, mine, sizeof mine);
        const char *theirs = s_find_setting(o, items, n);
        if (theirs == NULL) {
            ds_err(err, errlen, 0,
                   "[%s] %s: this node does not send it (another version of "
                   "descent?), the job has %s",
                   o->section, o->key, mine);
            return -EINVAL;
        }
        if (strcmp(theirs, mine) != 0) {
            ds_err(err, errlen, 0,
                   "[%s] %s: this node has %.*s, the job has %s", o->section,
                   o->key, S_ECHO_MAX, theirs, mine);
            return -EINVAL;
        }
    }
    // A setting this job does not check is one of another version.
    for (size_t i = 0; i < n; i++) {
        size_t key = strcspn(items[i], "=");
        bool   known = false;
        for (size_t j = 0; j < S_NOPTS && !known; j++) {
            const ds_opt_t *o = &s_opts[j];
            size_t          ls = strlen(o->section);
            known = !o->per_node && key == ls + 1 + strlen(o->key) &&
                    strncmp(items[i], o->section, ls) == 0 &&
                    items[i][ls] == '.' &&
                    strncmp(items[i] + ls + 1, o->key, key - ls - 1) == 0;
        }
        if (!known) {
            ds_err(err, errlen, 0,
                   "%.*s: this node has a setting the job does not share "
                   "(another version of descent?)",
                   (int)(key < S_ECHO_MAX ? key : S_ECHO_MAX), items[i]);
            return -EINVAL;
        }
    }
    return 0;
}

// s_by_text writes the defaults by job of row o for people, as
// "easgd: `0.1`; downpour + mlp: `0.001`" (quote "`" or "").
static void
s_by_text(const ds_opt_t *o, const char *quote, struct s_out *out)
{
    for (const char *e = o->by; e != NULL && *e != '\0';) {
        size_t      n = strcspn(e, ";");
        const char *colon = memchr(e, ':', n);
        s_out_str(out, e == o->by ? "" : "; ");
        for (const char *k = e; k < colon;) {
            size_t      kn = strcspn(k, ",:");
            const char *eq = memchr(k, '=', kn);
            s_out_printf(out, "%s%.*s", k == e ? "" : " + ",
                         (int)(k + kn - eq - 1), eq + 1);
            k += kn + (k[kn] == ',');
        }
        s_out_printf(out, ": %s%.*s%s", quote, (int)(e + n - colon - 1),
                     colon + 1, quote);
        e += n + (e[n] == ';');
    }
}

// s_allowed writes the "allowed" column of the reference for row o.
static void
s_allowed(const ds_opt_t *o, struct s_out *out)
{
    switch (o->type) {
    case DS_OPT_STRING:
        s_out_printf(out, "1 to %zu characters", o->size - 1);
        break;
    case DS_OPT_ENUM: {
        const char *p = o->choices;
        while (*p) {
            size_t n = strcspn(p, "|");
            s_out_printf(out, "%s`%.*s`", p == o->choices ? "" : ", ", (int)n,
                         p);
            p += n + (p[n] == '|');
        }
        break;
    }
    case DS_OPT_INT:
    case DS_OPT_INT64:
        s_out_printf(out, "%" PRId64 " to %" PRId64, o->min, o->max);
        break;
    case DS_OPT_UINT64:
        s_out_printf(out, "0 to %" PRIu64, UINT64_MAX);
        break;
    case DS_OPT_DOUBLE:
        if (o->dmax >= DBL_MAX) {
            s_out_printf(out, "%s %g", o->dmin_open ? ">" : ">=", o->dmin);
        } else if (o->dmin_open) {
            s_out_printf(out, "> %g, <= %g", o->dmin, o->dmax);
        } else {
            s_out_printf(out, "%g to %g", o->dmin, o->dmax);
        }
        break;
    case DS_OPT_BOOL:
        s_out_str(out, "`true` or `false`");
        break;
    }
}

size_t
ds_config_markdown(char *buf, size_t len)
{
    static const char *const types[] = {
        [DS_OPT_STRING] = "string", [DS_OPT_INT] = "int",
        [DS_OPT_INT64] = "int64",   [DS_OPT_UINT64] = "uint64",
        [DS_OPT_DOUBLE] = "double", [DS_OPT_BOOL] = "bool",
        [DS_OPT_ENUM] = "enum",
    };
    struct s_out o;
    s_out_init(&o, buf, len);
    const char *section = "";
    for (size_t i = 0; i < S_NOPTS; i++) {
        const ds_opt_t *opt = &s_opts[i];
        if (strcmp(opt->section, section) != 0) {
            section = opt->section;
            s_out_printf(&o,
                         "%s### [%s]\n\n| key | type | default | allowed | "
                         "meaning | every node | environment |\n"
                         "|---|---|---|---|---|---|---|\n",
                         i == 0 ? "" : "\n", section);
        }
        char env[S_NAME_MAX];
        s_env_name(opt, env, sizeof env);
        s_out_printf(&o, "| `%s` | %s | `%s`", opt->key, types[opt->type],
                     opt->def);
        if (opt->by != NULL) {
            s_out_str(&o, "; ");
            s_by_text(opt, "`", &o);
        }
        s_out_str(&o, " | ");
        s_allowed(opt, &o);
        s_out_printf(&o, " | %s | %s | `%s` |\n", opt->help,
                     opt->per_node ? "may differ" : "must match", env);
    }
    return o.need;
}

size_t
ds_config_usage(char *buf, size_t len)
{
    struct s_out o;
    s_out_init(&o, buf, len);
    s_out_str(&o,
              "Settings come from, in increasing precedence: the defaults "
              "below, the job file\n"
              "(--config FILE, -c FILE, or $DESCENT_CONFIG), environment "
              "variables named\n"
              "DESCENT_<SECTION>_<KEY> (e.g. DESCENT_OPTIMIZER_LR=0.1), then "
              "flags. Give a flag\n"
              "as --section.key=VALUE or --section.key VALUE; --key=VALUE "
              "works when the key\n"
              "names one option.\n");
    const char *section = "";
    for (size_t i = 0; i < S_NOPTS; i++) {
        const ds_opt_t *opt = &s_opts[i];
        if (strcmp(opt->section, section) != 0) {
            section = opt->section;
            s_out_printf(&o, "\n[%s]\n", section);
        }
        char flag[S_MSG_MAX];
        int  n = snprintf(flag, sizeof flag, "--%s.%s=%s", opt->section,
                          opt->key, opt->def);
        char bounds[128];
        s_bounds(opt, bounds, sizeof bounds);
        // Entries wider than the column get their help on the next line.
        if (n > S_USAGE_COL) {
            s_out_printf(&o, "  %s\n%*s", flag, S_USAGE_COL + 4, "");
        } else {
            s_out_printf(&o, "  %-*s  ", S_USAGE_COL, flag);
        }
        s_out_printf(&o, "%s%s%s%s", opt->help, bounds[0] ? " (" : "", bounds,
                     bounds[0] ? ")" : "");
        if (opt->by != NULL) {
            s_out_str(&o, " [");
            s_by_text(opt, "", &o);
            s_out_str(&o, "]");
        }
        s_out_str(&o, "\n");
    }
    return o.need;
}

// s_json_string writes s as a JSON string: quotes, backslashes and control
// characters escaped; other bytes (UTF-8) as they are.
static void
s_json_string(struct s_out *o, const char *s)
{
    s_out_str(o, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            s_out_str(o, "\\\"");
            break;
        case '\\':
            s_out_str(o, "\\\\");
            break;
        case '\n':
            s_out_str(o, "\\n");
            break;
        case '\r':
            s_out_str(o, "\\r");
            break;
        case '\t':
            s_out_str(o, "\\t");
            break;
        case '\b':
            s_out_str(o, "\\b");
            break;
        case '\f':
            s_out_str(o, "\\f");
            break;
        default:
            if (*p < 0x20) {
                s_out_printf(o, "\\u%04x", *p);
            } else {
                s_out_put(o, (const char *)p, 1);
            }
        }
    }
    s_out_str(o, "\"");
}

size_t
ds_config_write_json(const ds_config_t *c, char *buf, size_t len)
{
    struct s_out o;
    s_out_init(&o, buf, len);
    const char *section = NULL;
    for (size_t i = 0; i < S_NOPTS; i++) {
        const ds_opt_t *opt = &s_opts[i];
        const void     *field = (const char *)c + opt->offset;
        if (section == NULL || strcmp(opt->section, section) != 0) {
            s_out_str(&o, section == NULL ? "{" : "},");
            section = opt->section;
            s_json_string(&o, section);
            s_out_str(&o, ":{");
        } else {
            s_out_str(&o, ",");
        }
        s_json_string(&o, opt->key);
        s_out_str(&o, ":");
        switch (opt->type) {
        case DS_OPT_STRING:
        case DS_OPT_ENUM:
            s_json_string(&o, field);
            break;
        case DS_OPT_INT:
            s_out_printf(&o, "%d", *(const int *)field);
            break;
        case DS_OPT_INT64:
            s_out_printf(&o, "%" PRId64, *(const int64_t *)field);
            break;
        case DS_OPT_UINT64:
            s_out_printf(&o, "%" PRIu64, *(const uint64_t *)field);
            break;
        case DS_OPT_DOUBLE:
            // %.17g round-trips and, for finite values (all we store), is
            // always a valid JSON number.
            s_out_printf(&o, "%.17g", *(const double *)field);
            break;
        case DS_OPT_BOOL:
            s_out_str(&o, *(const bool *)field ? "true" : "false");
            break;
        }
    }
    s_out_str(&o, "}}");
    return o.need;
}
