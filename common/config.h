// SPDX-License-Identifier: MIT
// config - job and node settings: defaults, job file, environment, flags.
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_STR_MAX 256
#define DS_CONFIG_MAX_OPTS 192 // rows the option table may have

// ds_config_t holds every setting of a job and of the node reading it.
// Sections of the job file are in the comments; see docs/configuration.md.
typedef struct ds_config {
    // [job]
    char     job[64];           // job name; nodes of other jobs refused
    uint64_t seed;              // seeds init, shuffling and the rest
    char     out[DS_STR_MAX];   // output directory (run, scheduler, worker 0)
    char     log_level[16];     // debug|info|warn|error
    char     progress[16];      // auto|bar|lines|off
    int      checkpoint_s;      // servers checkpoint this often, s; 0 off
    bool     resume;            // continue the job saved in out
    bool     restart_workers;   // descent run restarts killed workers
    bool     restart_scheduler; // descent run restarts a killed scheduler
    bool     recover;           // scheduler: carry on from scheduler.state
    bool     restart_servers;   // descent run restarts killed servers
    // [cluster]
    char   scheduler[DS_STR_MAX]; // endpoint nodes connect to, tcp://host:port
    char   bind[DS_STR_MAX];      // this node's bind endpoint
    char   advertise[DS_STR_MAX]; // host others use to reach this node
    int    servers;               // servers the job waits for
    int    workers;               // workers the job waits for
    int    ranges_per_server;     // key ranges cut per server
    int    heartbeat_ms;          // heartbeat interval, ms
    int    timeout_ms;            // a peer silent this long is dead, ms
    int    join_timeout_ms;       // deadline for the cluster to form, ms
    int    join_window_ms;        // elastic workers: quiet time that closes
    int    scheduler_timeout_ms;  // nodes give up on a silent scheduler
    int    request_timeout_ms;    // deadline for a push or pull reply, ms
    int    replicas;              // copies of each key range (1 or 2)
    int    retry_ms;              // re-send an unanswered request after, ms
    int    node_id;               // a restarted worker: the id it had
    double fault_drop;            // tests: share of worker sends dropped
    int    fault_delay_ms;        // tests: worker sends held back up to
    int    fault_disk_ms;         // tests: extra ms per checkpoint file
    int    max_message_mb;        // largest message accepted, MiB
    // [data]
    char    data_dir[DS_STR_MAX]; // directory with the IDX files
    int64_t limit;                // max training examples, 0 = all
    int64_t test_limit;           // max test examples, 0 = all
    int64_t validation;           // examples held out for validation
    char    format[16];           // idx|libsvm
    char    train_file[256];      // libsvm: training data
    char    test_file[256];       // libsvm: test data
    int     hash_bits;            // libsvm: feature ids hashed into 2^bits
    bool    shuffle;              // reshuffle the partition every epoch
    // [model]
    char   model[32];  // softmax|mlp
    char   init[16];   // auto|zeros|random|he
    char   hidden[64]; // mlp: hidden layer sizes, "256" or "512,128"
    bool   batchnorm;  // mlp: batch norm after each hidden layer
    double init_scale; // stddev of the random init
    // [train]
    char   algorithm[32];   // downpour
    int    epochs;          // passes over the training set
    int    batch_size;      // examples per mini-batch
    int    n_fetch;         // pull every n_fetch steps
    int    n_push;          // push every n_push steps
    char   consistency[16]; // async|bsp|ssp
    int    staleness;       // ssp: clocks the fastest may lead
    int    delay;           // hold each push back by this many steps
    int    tau;             // easgd: steps between elastic exchanges
    double easgd_alpha;     // easgd: moving rate; 0 = 0.9 / workers
    double easgd_delta;     // easgd: worker momentum (EAMSGD); 0 off
    int    patience;        // early stopping: epochs without improvement
    double min_delta;       // early stopping: improvement that counts
    char   curriculum[16];  // off|easy|mixed
    double curriculum_mix;  // mixed: share of uniformly drawn examples
    int    threads;         // Hogwild! threads computing in each worker
    // [optimizer]
    char   name[32];            // update rule: sgd|momentum|nag|adagrad|...
    double lr;                  // base learning rate
    double momentum;            // momentum, nag; rmsprop's momentum buffer
    double dampening;           // momentum (PyTorch form)
    bool   nesterov;            // momentum with nesterov = the nag rule
    double beta1;               // adam: first-moment decay
    double beta2;               // adam: second-moment decay
    double rho;                 // adadelta: decay of the averages
    double alpha;               // rmsprop: decay of the squared average
    double eps;                 // adaptive rules; 0 = the rule's default
    double weight_decay;        // coupled L2
    double lr_decay;            // adagrad: lr / (1 + (t-1) lr_decay)
    double initial_accumulator; // adagrad: starting sum of squares
    bool   centered;            // rmsprop: centered variant
    bool   amsgrad;             // adam: AMSGrad variant
    char   form[16];            // pytorch|paper conventions
    double clip_norm;           // clip gradients to this global norm; 0 off
    double noise_eta;           // gradient noise variance eta; 0 off
    double noise_gamma;         // gradient noise decay exponent
    char   schedule[16];        // constant|step|exponential|inverse|...
    double lr_min;              // cosine: final rate; all: floor
    int    warmup;              // linear warm-up over this many updates
    double lr_gamma;            // step/exponential/plateau: factor
    double lr_step;             // step: epochs between decays
    double lr_k;                // inverse: lr / (1 + k * epoch)
    int    plateau_patience;    // plateau: epochs without improvement
    double plateau_threshold;   // plateau: relative improvement needed
    int    plateau_cooldown;    // plateau: epochs to wait after a cut
    double dt_beta;             // dtadagrad: lr / (dt_beta + sqrt(z'))
    double dt_z0;               // dtadagrad: starting z and z-prime
    // Which options a source (job file, environment, flag, ds_config_set)
    // has set, by option table row. An option no source set keeps its
    // default, which for some depends on [train] algorithm and [model]
    // model (docs/configuration.md).
    bool given[DS_CONFIG_MAX_OPTS];
} ds_config_t;

// ds_config_defaults fills c with the embedded default job: softmax
// regression on Fashion-MNIST with Downpour SGD and a cosine schedule.
// Every function below that changes c also re-applies the defaults that
// depend on the algorithm and the model to the options no source has set.
void ds_config_defaults(ds_config_t *c);

// ds_config_set sets one option from its text form, checking type and
// bounds. section may be NULL, in which case key must name an option
// unambiguously. Returns 0, or -ENOENT for an unknown option, or -EINVAL for
// a bad value; err receives "[section] key: reason".
int ds_config_set(ds_config_t *c, const char *section, const char *key,
                  const char *value, char *err, size_t errlen);

// ds_config_load_file reads an INI job file with inih. Returns 0, -ENOENT if
// the file cannot be opened, or -EINVAL at the first bad line; err receives
// "path:line: [section] key: reason" (unknown sections and keys included).
int ds_config_load_file(ds_config_t *c, const char *path, char *err,
                        size_t errlen);

// ds_config_load_env applies every DESCENT_<SECTION>_<KEY> variable of envp
// (NULL-terminated "NAME=value" strings; NULL means the process environment).
// Unknown DESCENT_ names are errors. Returns 0 or -EINVAL with err set.
int ds_config_load_env(ds_config_t *c, char *const *envp, char *err,
                       size_t errlen);

// ds_config_from_args builds c for a subcommand: defaults, then the job file
// (--config FILE, or the first positional argument when allow_positional),
// then the environment (envp as above), then flags. Flags are
// --section.key=value, --section.key value, --key=value or --key value
// (key alone when it names one option). argv[0] is the subcommand name and is
// skipped. Sets *help when --help or -h is given (and returns 0 without
// further checks). Returns 0 or a negative errno with err set.
int ds_config_from_args(ds_config_t *c, int argc, char **argv,
                        char *const *envp, bool allow_positional, bool *help,
                        char *err, size_t errlen);

// ds_config_fingerprint lists the job-wide settings of c, the ones every
// node of a job must share (docs/configuration.md marks them), in table
// order as canonical "section.key=value" strings, for REGISTER. Stores the
// array in *items and its length in *n; the caller owns the array and its
// strings, one block, and frees it with free(). Returns 0 or -ENOMEM.
int ds_config_fingerprint(const ds_config_t *c, char ***items, size_t *n);

// ds_config_compare checks the job-wide settings a node sent (n strings made
// by ds_config_fingerprint) against c, the job's. Returns 0 when they agree,
// or -EINVAL with err naming the first setting in table order that differs,
// e.g. "[model] model: this node has mlp, the job has softmax". A job-wide
// setting the node does not send, and one the job does not take as
// job-wide, differ too.
int ds_config_compare(const ds_config_t *c, char *const *items, size_t n,
                      char *err, size_t errlen);

// ds_config_usage writes the option table (section, key, default, help)
// to buf as text for --help. Returns the length it needed.
size_t ds_config_usage(char *buf, size_t len);

// ds_config_markdown writes the option reference of docs/configuration.md
// (one table per section: key, type, default, allowed values, meaning,
// whether every node must have the same value, environment name) to buf.
// Returns the length it needed, like snprintf.
size_t ds_config_markdown(char *buf, size_t len);

// ds_config_write_json writes c as a JSON object (every option, grouped by
// section) to buf. Returns the length it needed, like snprintf.
size_t ds_config_write_json(const ds_config_t *c, char *buf, size_t len);

#endif
