/* bench.c - `mixrt bench`: latency of one engine, or of several (--compare) and of ONNX
 * Runtime (--peer ort) measured interleaved in one run so that machine noise hits every
 * row alike. Only the run call is timed (inputs prepared once, outputs freed outside the
 * timed region; the peer times session.run inside its own process). Every row has exactly
 * one timed run per round, so per-round ratios pair runs made next to each other; by default
 * (--turn-runs 2) an untimed run of the same row comes right before it, so the timed run finds
 * its own engine's data in the caches, not the other rows' (paired runs: GoogLeNet
 * {fp32,bf16} and ONNX Runtime both ~4 % faster timed second in the turn, ResNet-50 the same). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "commands.h"
#include "engine/engine_impl.h"
#include "mixrt/mixrt_io.h"
#include "rounds.h"

#if defined(__has_include)
#if __has_include("report.h")
#include "report.h"
#define BENCH_HAVE_REPORT 1
#endif
#endif
#ifndef BENCH_HAVE_REPORT
#define BENCH_HAVE_REPORT 0
#endif

/* This process's peak resident set (bytes, -1 unknown): /proc/self/status VmHWM, the high-water
 * mark of its own address space. getrusage's ru_maxrss is not that: Linux carries the
 * parent's resident set at fork into the child's across exec, so mixrt started by a Python
 * script that had loaded ONNX models reported ~300 MB for MobileNetV2 (its own: ~50 MB). */
static long long bench_peak_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    if (f) fclose(f);
    if (kb >= 0) return kb * 1024;
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (long long)ru.ru_maxrss * 1024 : -1;
}

#define MAX_ROWS 16
#define ORT_VERSION "1.30.0"
#define PROFILE_RUNS 10
#define TOP_LAYERS 20

extern char **environ;

struct row {
    char spec[512];
    const char *model;
    unsigned precisions;
    bool strong, precisions_set, is_peer;
    mixrt_engine_t e;
    struct cli_io io;
    struct cli_inputs in;
    struct mixrt_tensor **outs;
    /* --outputs device / device-copy: the inputs uploaded once (device tensors), the
     * outputs' device views, or the device tensors the outputs are copied into. */
    struct mixrt_tensor *dev_in[CLI_MAX_INPUTS];
    struct mixrt_tensor *views;
    struct mixrt_tensor **dev_out;
    double *ms; /* chronological: ms[k] was measured in round k */
    size_t runs, cap;
    double min, mean, median, p90, p95, p99, max, ratio, ratio_p10, ratio_p90;
    int64_t activation_bytes; /* -1: unknown */
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear interpolation between order statistics. */
static double percentile(const double *sorted, size_t n, double q) {
    if (!n) return NAN;
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n) return sorted[n - 1];
    return sorted[lo] + (pos - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

/* The upper median of x[0..n) by selection on a scratch copy: O(n), for the progress line
 * (sorting every 100 ms would cost more than the runs it reports on small models). */
static double quick_median(const double *x, size_t n, double *scratch) {
    if (!n) return NAN;
    memcpy(scratch, x, n * sizeof(double));
    size_t lo = 0, hi = n - 1, k = n / 2;
    while (lo < hi) {
        double pivot = scratch[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (scratch[i] < pivot) i++;
            while (scratch[j] > pivot) j--;
            if (i <= j) {
                double t = scratch[i];
                scratch[i] = scratch[j];
                scratch[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return scratch[k];
}

/* ---- progress: one redrawn line on a terminal, plain notes otherwise ---- */

/* Drawn only once a phase has lasted a second: short phases print nothing. The main thread
 * draws between runs (outside the timed region); during a blocking phase (a build, ORT's
 * start) a helper thread draws, since nothing is being timed then. */
static struct {
    bool tty, shown;
    char phase[160];
    double t0, last;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    bool thread_on, stop;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int term_width(void) {
    struct winsize ws;
    if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

/* frac < 0: unknown (a bouncing block). extra: the running medians, or NULL. */
static void progress_draw(double frac, const char *extra) {
    double now = cli_now_ms(), el = now - P.t0;
    if (el < 1000) return;
    if (P.tty) {
        if (now - P.last < 100) return;
        char bar[21];
        for (int i = 0; i < 20; i++) bar[i] = '.';
        bar[20] = 0;
        if (frac >= 0) {
            int full = (int)(fmin(frac, 1.0) * 20 + 0.5);
            for (int i = 0; i < full; i++) bar[i] = '#';
        } else {
            int pos = (int)(el / 100) % 32;
            pos = pos < 16 ? pos : 31 - pos;
            for (int i = pos; i < pos + 4 && i < 20; i++) bar[i] = '#';
        }
        char line[512];
        int n = snprintf(line, sizeof(line), "%s [%s] %5.1f s", P.phase, bar, el / 1e3);
        if (frac >= 0 && n > 0 && (size_t)n < sizeof(line))
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %3.0f%%", 100 * fmin(frac, 1.0));
        if (extra && n > 0 && (size_t)n < sizeof(line)) snprintf(line + n, sizeof(line) - (size_t)n, "  %s", extra);
        int w = term_width() - 1;
        if ((int)strlen(line) > w) line[w] = 0; /* a wrapped line could not be redrawn with \r */
        fprintf(stderr, "\r%s\033[K", line);
        fflush(stderr);
        P.shown = true;
        P.last = now;
    } else {
        /* once a second at most; a blocking phase (frac < 0) says so once */
        if (now - P.last < 1000 || (frac < 0 && P.shown)) return;
        if (frac >= 0)
            fprintf(stderr, "mixrt: note: %s %.0f%%%s%s\n", P.phase, 100 * fmin(frac, 1.0), extra ? " " : "",
                    extra ? extra : "");
        else
            fprintf(stderr, "mixrt: note: %s ...\n", P.phase);
        P.shown = true;
        P.last = now;
    }
}

static void progress_begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress_begin(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P.phase, sizeof(P.phase), fmt, ap);
    va_end(ap);
    P.t0 = P.last = cli_now_ms();
    P.shown = false;
}

static void progress_end(void) {
    if (P.tty && P.shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    P.shown = false;
}

static void *progress_thread(void *arg) {
    (void)arg;
    pthread_mutex_lock(&P.mu);
    while (!P.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&P.cv, &P.mu, &ts);
        if (!P.stop) progress_draw(-1, NULL);
    }
    pthread_mutex_unlock(&P.mu);
    return NULL;
}

/* A phase the main thread blocks in. */
static void progress_wait_begin(const char *phase) {
    progress_begin("%s", phase);
    P.stop = false;
    P.thread_on = pthread_create(&P.th, NULL, progress_thread, NULL) == 0;
}

static void progress_wait_end(void) {
    if (P.thread_on) {
        pthread_mutex_lock(&P.mu);
        P.stop = true;
        pthread_cond_signal(&P.cv);
        pthread_mutex_unlock(&P.mu);
        pthread_join(P.th, NULL);
        P.thread_on = false;
    }
    progress_end();
}

/* ---- specs, machine ---- */

/* Parses "[MODEL@]PRECISIONS[:strong]", or "PLAN" (a .plan file: its engine as built, so
 * engines built with different options or environment run interleaved in one bench). */
static void parse_spec(const char *spec, const char *default_model, struct row *r, char **model_copy) {
    if (strlen(spec) >= sizeof(r->spec)) cli_die_usage("--compare: SPEC too long: '%s'", spec);
    snprintf(r->spec, sizeof(r->spec), "%s", spec);
    *model_copy = NULL;
    if (!strchr(spec, '@') && cli_is_plan(spec)) {
        *model_copy = strdup(spec);
        if (!*model_copy) cli_die_usage("out of memory");
        r->model = *model_copy;
        return;
    }
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *prec = buf;
    char *at = strrchr(buf, '@');
    r->model = default_model;
    if (at) {
        *at = 0;
        prec = at + 1;
        if (!buf[0]) cli_die_usage("--compare: SPEC '%s' has an empty MODEL before '@'", spec);
        *model_copy = strdup(buf);
        if (!*model_copy) cli_die_usage("out of memory");
        r->model = *model_copy;
    }
    char *colon = strchr(prec, ':');
    if (colon) {
        if (strcmp(colon, ":strong")) cli_die_usage("--compare: SPEC '%s': after ':' only 'strong' is allowed", spec);
        *colon = 0;
        r->strong = true;
    }
    mixrt_context_t ctx;
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) cli_die_usage("cannot create a context");
    unsigned bits = 0;
    mixrt_status st = prec[0] ? mixrt_precisions_parse(ctx, prec, &bits) : MIXRT_STATUS_INVALID_ARGUMENT;
    mixrt_context_destroy(ctx);
    if (st != MIXRT_STATUS_OK)
        cli_die_usage("--compare: SPEC '%s' needs PRECISIONS, a comma list of fp32, fp16, bf16 (got '%s')", spec, prec);
    r->precisions = bits | MIXRT_PRECISION_FP32;
    r->precisions_set = true;
    if (cli_is_plan(r->model))
        cli_die_usage("--compare: SPEC '%s' builds an engine, so its model must be a .onnx, not the plan '%s'", spec,
                      r->model);
}

static void cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (!c) continue;
            c++;
            while (*c == ' ' || *c == '\t') c++;
            c[strcspn(c, "\n")] = 0;
            snprintf(buf, size, "%s", c);
            break;
        }
    }
    fclose(f);
}

/* --outputs: where the timed runs leave their outputs. */
enum bench_outputs { BENCH_OUT_HOST = 0, BENCH_OUT_DEVICE, BENCH_OUT_DEVICE_COPY };
static enum bench_outputs g_outputs;
static const char *const bench_outputs_names[] = {"host", "device", "device-copy"};

static int run_once(mixrt_context_t ctx, struct row *r, double *ms) {
    double t0 = cli_now_ms();
    const struct mixrt_tensor *const *dev_in = (const struct mixrt_tensor *const *)r->dev_in;
    mixrt_status st =
        r->views     ? mixrt_engine_run_device(r->e, r->in.n, r->in.names, dev_in, r->views)
        : r->dev_out ? mixrt_engine_run_into(r->e, r->in.n, r->in.names, dev_in, r->dev_out)
                     : mixrt_engine_run(r->e, r->in.n, r->in.names, (const struct mixrt_tensor *const *)r->in.t,
                                        r->outs);
    double t1 = cli_now_ms();
    if (r->views || r->dev_out) {
        if (st != MIXRT_STATUS_OK) return cli_fail_ctx_prefixed(ctx, st, r->spec);
        if (ms) *ms = t1 - t0;
        return 0;
    }
    if (st != MIXRT_STATUS_OK) return cli_fail_ctx_prefixed(ctx, st, r->spec);
    for (size_t i = 0; i < r->io.n_out; i++) {
        mixrt_tensor_destroy(ctx, r->outs[i]);
        r->outs[i] = NULL;
    }
    if (ms) *ms = t1 - t0;
    return 0;
}

/* --outputs device / device-copy: the inputs uploaded once; the outputs' views, or device
 * tensors shaped like one host run's outputs. Named errors come from the engine (a CPU
 * engine refuses device tensors). */
static int device_io_setup(mixrt_context_t ctx, struct row *r) {
    mixrt_status st = MIXRT_STATUS_OK;
    for (size_t j = 0; j < r->in.n && st == MIXRT_STATUS_OK; j++) {
        const struct mixrt_tensor *h = r->in.t[j];
        st = mixrt_engine_device_alloc(r->e, h->dtype, h->rank, h->dims, &r->dev_in[j]);
        if (st == MIXRT_STATUS_OK) st = mixrt_engine_device_copy(r->e, r->dev_in[j], h);
    }
    if (st != MIXRT_STATUS_OK) return cli_fail_ctx_prefixed(ctx, st, r->spec);
    fprintf(stderr, "mixrt: note: %s: --outputs %s: inputs uploaded once, outputs %s\n", r->spec,
            bench_outputs_names[g_outputs], g_outputs == BENCH_OUT_DEVICE ? "left on the device (views)"
                                                                          : "copied device to device");
    size_t no = r->io.n_out ? r->io.n_out : 1;
    if (g_outputs == BENCH_OUT_DEVICE) {
        r->views = calloc(no, sizeof(*r->views));
        if (!r->views) return cli_fail("out of memory");
        return 0;
    }
    r->dev_out = calloc(no, sizeof(*r->dev_out));
    if (!r->dev_out) return cli_fail("out of memory");
    st = mixrt_engine_run(r->e, r->in.n, r->in.names, (const struct mixrt_tensor *const *)r->in.t, r->outs);
    for (size_t k = 0; k < r->io.n_out && st == MIXRT_STATUS_OK; k++)
        st = mixrt_engine_device_alloc(r->e, r->outs[k]->dtype, r->outs[k]->rank, r->outs[k]->dims, &r->dev_out[k]);
    for (size_t k = 0; k < r->io.n_out; k++) {
        mixrt_tensor_destroy(ctx, r->outs[k]);
        r->outs[k] = NULL;
    }
    return st == MIXRT_STATUS_OK ? 0 : cli_fail_ctx_prefixed(ctx, st, r->spec);
}

static void device_io_free(struct row *r) {
    for (size_t j = 0; j < CLI_MAX_INPUTS; j++) mixrt_engine_device_free(r->e, r->dev_in[j]);
    if (r->dev_out)
        for (size_t k = 0; k < r->io.n_out; k++) mixrt_engine_device_free(r->e, r->dev_out[k]);
    free(r->dev_out);
    free(r->views);
}

/* Batch size: dim 0 of the first fed input when it has rank >= 2 (rank 0/1 inputs are
 * not batched), else 1. */
static long long batch_of(const struct row *r) {
    for (size_t k = 0; k < r->io.n_in; k++)
        for (size_t j = 0; j < r->in.n; j++)
            if (!strcmp(r->in.names[j], r->io.in[k].name))
                return r->in.t[j]->rank >= 2 && r->in.t[j]->dims[0] > 0 ? (long long)r->in.t[j]->dims[0] : 1;
    return 1;
}

/* Some layer computes its float data in 16 bits. */
static bool engine_uses_16bit(mixrt_engine_t e) {
    size_t n = mixrt_engine_layer_count(e);
    for (size_t i = 0; i < n; i++) {
        struct mixrt_layer_info li;
        if (mixrt_engine_get_layer(e, i, &li) == MIXRT_STATUS_OK &&
            (li.precision == MIXRT_DTYPE_F16 || li.precision == MIXRT_DTYPE_BF16))
            return true;
    }
    return false;
}

/* ---- the ONNX Runtime peer: a node child speaking one JSON line per request ---- */

struct peer {
    bool wanted, on;
    char ort_dir[PATH_MAX], script[PATH_MAX], node[PATH_MAX], tmp[512];
    pid_t pid;
    int to_fd, from_fd;
    char buf[8192];
    size_t len;
    char version[64];
    char refused[1024];     /* why the peer row is missing, or "" */
    char checked_with[600]; /* what its outputs were compared with */
    bool ended;             /* its stdout closed */
    int agrees;             /* -1 not checked, 0 no, 1 yes */
    double worst_rel, tolerance;
    long long peak_rss;
    int n_files;
};

static bool find_in_path(const char *name, char *out, size_t size) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        int n = snprintf(out, size, "%.*s/%s", (int)len, path, name);
        if (n > 0 && (size_t)n < size && len && access(out, X_OK) == 0) return true;
        path += len;
        if (*path == ':') path++;
    }
    return false;
}

static int mkdir_p(const char *dir) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p)) return -1;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) && errno != EEXIST) return -1;
            *s = '/';
        }
    return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

/* The helper script: $MIXRT_ORT_PEER_SCRIPT, else beside the sources this was built from,
 * else relative to the executable (build tree or an installed share/mixrt). */
static bool find_peer_script(char *out, size_t size) {
    const char *env = getenv("MIXRT_ORT_PEER_SCRIPT");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return access(out, R_OK) == 0;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        if (snprintf(out, size, "%s/../scripts/ort_peer.js", dir) < (int)size && access(out, R_OK) == 0) return true;
    }
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n > 0) {
        dir[n] = 0;
        slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        const char *rel[] = {"../scripts/ort_peer.js", "../../scripts/ort_peer.js", "../share/mixrt/ort_peer.js"};
        for (size_t i = 0; i < sizeof(rel) / sizeof(*rel); i++)
            if (snprintf(out, size, "%s/%s", dir, rel[i]) < (int)size && access(out, R_OK) == 0) return true;
    }
    return false;
}

/* Runs argv with stdout and stderr into log_path; returns the exit status (-1: no start). */
static int run_logged(char *const argv[], const char *log_path) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static void last_line_of(const char *path, char *out, size_t size) {
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) {
            size_t n = strlen(line) < size ? strlen(line) : size - 1;
            memcpy(out, line, n);
            out[n] = 0;
        }
    }
    fclose(f);
}

/* Node, the helper and onnxruntime-node (installed with npm into the cache the first time,
 * under the same lock file as the zoo tests' installer). Returns 0 or 1 (error printed). */
static int peer_prepare(struct peer *p) {
    if (!find_in_path("node", p->node, sizeof(p->node)))
        return cli_fail("--peer ort needs Node.js and npm: apt-get install nodejs npm");
    if (!find_peer_script(p->script, sizeof(p->script)))
        return cli_fail(
            "--peer ort: cannot find its helper scripts/ort_peer.js (set MIXRT_ORT_PEER_SCRIPT to its path)");
    const char *env = getenv("MIXRT_ORT_DIR");
    const char *home = getenv("HOME");
    if (env && *env)
        snprintf(p->ort_dir, sizeof(p->ort_dir), "%s", env);
    else
        snprintf(p->ort_dir, sizeof(p->ort_dir), "%s/.cache/mixrt/ort", home && *home ? home : "/tmp");
    char pkg[PATH_MAX + 64], lock[PATH_MAX + 32], log[PATH_MAX + 32];
    snprintf(pkg, sizeof(pkg), "%s/node_modules/onnxruntime-node/package.json", p->ort_dir);
    if (access(pkg, R_OK) == 0) return 0;
    char npm[PATH_MAX];
    if (!find_in_path("npm", npm, sizeof(npm)))
        return cli_fail("--peer ort needs Node.js and npm: apt-get install nodejs npm");
    if (mkdir_p(p->ort_dir)) return cli_fail("--peer ort: cannot create '%s': %s", p->ort_dir, strerror(errno));
    snprintf(lock, sizeof(lock), "%s/.install.lock", p->ort_dir);
    snprintf(log, sizeof(log), "%s/npm-install.log", p->ort_dir);
    int lfd = open(lock, O_RDWR | O_CREAT, 0644);
    if (lfd >= 0) flock(lfd, LOCK_EX);
    int rc = 0;
    if (access(pkg, R_OK) != 0) {
        cli_note("installing onnxruntime-node@%s into %s with npm (once; log in %s)", ORT_VERSION, p->ort_dir, log);
        /* The package bundles the CPU runtime; its postinstall step would only fetch the
         * CUDA provider from the network. */
        setenv("ONNXRUNTIME_NODE_INSTALL", "skip", 1);
        char *argv[] = {npm,          "install",   "--prefix",         p->ort_dir,
                        "--no-audit", "--no-fund", "--loglevel=error", "onnxruntime-node@" ORT_VERSION,
                        NULL};
        progress_wait_begin("installing onnxruntime-node");
        int st = run_logged(argv, log);
        progress_wait_end();
        if (st != 0 || access(pkg, R_OK) != 0) {
            char last[512];
            last_line_of(log, last, sizeof(last));
            rc = cli_fail("--peer ort: npm install onnxruntime-node@%s into %s failed (status %d): %s", ORT_VERSION,
                          p->ort_dir, st, last[0] ? last : "no output");
        }
    }
    if (lfd >= 0) close(lfd);
    return rc;
}

/* One line from the child (without '\n') into line; false on EOF, error or timeout. */
static bool peer_read_line(struct peer *p, char *line, size_t size, int timeout_ms) {
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl) {
            size_t n = (size_t)(nl - p->buf);
            snprintf(line, size, "%.*s", (int)(n < size ? n : size - 1), p->buf);
            memmove(p->buf, nl + 1, p->len - n - 1);
            p->len -= n + 1;
            return true;
        }
        if (p->len == sizeof(p->buf)) p->len = 0; /* an overlong line: drop it */
        struct pollfd pf = {p->from_fd, POLLIN, 0};
        int r = poll(&pf, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        ssize_t got = read(p->from_fd, p->buf + p->len, sizeof(p->buf) - p->len);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            p->ended = true;
            return false;
        }
        p->len += (size_t)got;
    }
}

/* The JSON string value of key in line (simple escapes; \u as '?' beyond ASCII). */
static bool json_get_string(const char *line, const char *key, char *out, size_t size) {
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *s = strstr(line, pat);
    if (!s) return false;
    s += strlen(pat);
    size_t o = 0;
    for (; *s && *s != '"' && o + 1 < size; s++) {
        char c = *s;
        if (c == '\\' && s[1]) {
            s++;
            c = *s == 'n' || *s == 't' || *s == 'r' ? ' ' : *s;
            if (*s == 'u') {
                unsigned v = 0;
                if (sscanf(s + 1, "%4x", &v) == 1 && strlen(s) >= 5) s += 4;
                c = v >= 0x20 && v < 0x7f ? (char)v : '?';
            }
        }
        out[o++] = c;
    }
    out[o] = 0;
    return true;
}

static bool json_get_number(const char *line, const char *key, double *out) {
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *s = strstr(line, pat);
    if (!s) return false;
    char *end;
    *out = strtod(s + strlen(pat), &end);
    return end != s + strlen(pat);
}

static void peer_stop(struct peer *p, bool polite) {
    if (!p->pid) return;
    if (polite && p->to_fd >= 0) {
        char line[512];
        double v;
        if (write(p->to_fd, "quit\n", 5) == 5 && peer_read_line(p, line, sizeof(line), 10000) &&
            json_get_number(line, "peak_rss_bytes", &v))
            p->peak_rss = (long long)v;
    }
    if (p->to_fd >= 0) close(p->to_fd);
    if (p->from_fd >= 0) close(p->from_fd);
    p->to_fd = p->from_fd = -1;
    /* the child exits on end of input; a stuck one is ended (it is ours, by its pid) */
    int status;
    for (int i = 0; i < 50 && waitpid(p->pid, &status, WNOHANG) == 0; i++) usleep(20000);
    if (waitpid(p->pid, &status, WNOHANG) == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
    }
    p->pid = 0;
    p->on = false;
}

/* Sends one request; *ms gets the child's own measurement. On failure the peer is
 * stopped and refused[] says why. */
static bool peer_request(struct peer *p, const char *req, double *ms) {
    char line[2048], err[1024];
    size_t n = strlen(req);
    if (write(p->to_fd, req, n) != (ssize_t)n || write(p->to_fd, "\n", 1) != 1) {
        snprintf(p->refused, sizeof(p->refused), "ONNX Runtime's process ended");
    } else if (!peer_read_line(p, line, sizeof(line), 600 * 1000)) {
        snprintf(p->refused, sizeof(p->refused), "%s",
                 p->ended ? "ONNX Runtime's process ended" : "ONNX Runtime did not answer a run within 600 s");
    } else if (json_get_string(line, "error", err, sizeof(err))) {
        snprintf(p->refused, sizeof(p->refused), "ONNX Runtime failed to run the model: %.900s", err);
    } else if (!json_get_number(line, "ms", ms)) {
        snprintf(p->refused, sizeof(p->refused), "unexpected answer from ort_peer.js: %.200s", line);
    } else {
        return true;
    }
    peer_stop(p, false);
    return false;
}

/* Writes the inputs as .npy files (bf16 as raw bits, typed for ORT on its command line)
 * and starts the child; waits for it to load the model. A refusal is not an error: the
 * run goes on without the peer. Returns 1 only on a local failure (error printed). */
static int peer_start(mixrt_context_t ctx, struct peer *p, const char *model, const struct cli_inputs *in,
                      unsigned long long threads) {
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir || strlen(tmpdir) > 400) tmpdir = "/tmp";
    snprintf(p->tmp, sizeof(p->tmp), "%s/mixrt-peer-XXXXXX", tmpdir);
    if (!mkdtemp(p->tmp)) {
        p->tmp[0] = 0;
        return cli_fail("--peer ort: cannot create a temporary folder: %s", strerror(errno));
    }
    char thr[32];
    snprintf(thr, sizeof(thr), "%llu", threads);
    size_t argc = 0, n_alloc = in->n + 12;
    char **argv = calloc(n_alloc, sizeof(char *));
    char(*feeds)[PATH_MAX + 600] = calloc(in->n ? in->n : 1, sizeof(*feeds));
    char outdir[600];
    int rc = 1;
    if (!argv || !feeds) {
        rc = cli_fail("out of memory");
        goto fail;
    }
    snprintf(outdir, sizeof(outdir), "%s/out", p->tmp);
    argv[argc++] = p->node;
    argv[argc++] = p->script;
    argv[argc++] = "--ort-dir";
    argv[argc++] = p->ort_dir;
    argv[argc++] = "--threads";
    argv[argc++] = thr;
    argv[argc++] = (char *)model;
    argv[argc++] = outdir;
    for (size_t i = 0; i < in->n; i++) {
        char file[600];
        snprintf(file, sizeof(file), "%s/in_%zu.npy", p->tmp, i);
        struct mixrt_tensor view = *in->t[i];
        bool bf16 = view.dtype == MIXRT_DTYPE_BF16;
        if (bf16) view.dtype = MIXRT_DTYPE_U16; /* same bytes; NumPy has no bf16 */
        view.flags = 0;
        mixrt_status st = mixrt_npy_write(ctx, file, &view);
        if (st != MIXRT_STATUS_OK) {
            /* e.g. a string input: .npy cannot carry it to node, so no peer (not an error) */
            snprintf(p->refused, sizeof(p->refused), "input '%.200s' cannot be handed to ONNX Runtime: %.600s",
                     in->names[i], mixrt_context_last_error(ctx));
            rc = 0;
            goto fail;
        }
        snprintf(feeds[i], sizeof(feeds[i]), "%s=%s%s", in->names[i], file, bf16 ? ":bfloat16" : "");
        argv[argc++] = feeds[i];
    }
    argv[argc] = NULL;
    int to[2], from[2];
    if (pipe(to)) {
        rc = cli_fail("--peer ort: pipe: %s", strerror(errno));
        goto fail;
    }
    if (pipe(from)) {
        close(to[0]);
        close(to[1]);
        rc = cli_fail("--peer ort: pipe: %s", strerror(errno));
        goto fail;
    }
    char errlog[600];
    snprintf(errlog, sizeof(errlog), "%s/stderr.txt", p->tmp);
    pid_t pid = fork();
    if (pid < 0) {
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        rc = cli_fail("--peer ort: fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 2);
        for (int fdn = 3; fdn < 1024; fdn++) close(fdn);
        execv(argv[0], argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    p->pid = pid;
    p->to_fd = to[1];
    p->from_fd = from[0];
    fcntl(p->to_fd, F_SETFD, FD_CLOEXEC);
    fcntl(p->from_fd, F_SETFD, FD_CLOEXEC);
    p->len = 0;
    char line[2048], err[1024];
    progress_wait_begin("starting ONNX Runtime");
    bool got = peer_read_line(p, line, sizeof(line), 600 * 1000);
    progress_wait_end();
    if (got && strstr(line, "\"ready\":true")) {
        json_get_string(line, "version", p->version, sizeof(p->version));
        p->on = true;
        rc = 0;
    } else {
        if (got && json_get_string(line, "error", err, sizeof(err))) {
            snprintf(p->refused, sizeof(p->refused), "ONNX Runtime refused the model: %.900s", err);
        } else {
            last_line_of(errlog, err, sizeof(err));
            snprintf(p->refused, sizeof(p->refused), "ONNX Runtime did not start: %.900s",
                     err[0] ? err
                     : got  ? line
                            : "no answer");
        }
        peer_stop(p, false);
        rc = 0;
    }
fail:
    free(argv);
    free(feeds);
    return rc;
}

/* ||a-b|| / ||b|| over every element (b: ORT's), ||a-b|| when b is all zeros. */
static double rel_norm_error(const struct mixrt_tensor *a, const struct mixrt_tensor *b) {
    size_t n = mixrt_tensor_numel(a);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double x = mixrt_load_f64(a->data, a->dtype, i), y = mixrt_load_f64(b->data, b->dtype, i);
        if (isnan(x) && isnan(y)) continue;
        num += (x - y) * (x - y);
        den += y * y;
    }
    if (isnan(num)) return INFINITY;
    return den > 0 ? sqrt(num) / sqrt(den) : sqrt(num);
}

/* The first run: ORT writes its outputs; mixrt computes them once and every output is
 * compared: with the engine of the row `ref` when it runs the command's model, else (no
 * such row) with the reference executor on `model`. Disagreement is a warning and
 * "peer_agrees": false, not a failure. */
static int peer_check(mixrt_context_t ctx, struct peer *p, struct row *ref, mixrt_model_t model,
                      const struct cli_io *io, const struct cli_inputs *in) {
    double ms;
    if (!peer_request(p, "first", &ms)) return 0;
    const char *who = model ? "the reference executor" : ref->spec;
    struct mixrt_tensor **outs = calloc(io->n_out ? io->n_out : 1, sizeof(*outs));
    if (!outs) return cli_fail("out of memory");
    const struct mixrt_tensor *const *ins = (const struct mixrt_tensor *const *)in->t;
    mixrt_status st = model ? mixrt_model_run(model, in->n, in->names, ins, outs)
                            : mixrt_engine_run(ref->e, in->n, in->names, ins, outs);
    if (st != MIXRT_STATUS_OK) {
        free(outs);
        return cli_fail_ctx_prefixed(ctx, st, who);
    }
    bool sixteen = !model && engine_uses_16bit(ref->e);
    for (size_t k = 0; k < io->n_out; k++)
        if (io->out[k].dtype == MIXRT_DTYPE_F16 || io->out[k].dtype == MIXRT_DTYPE_BF16) sixteen = true;
    p->tolerance = sixteen ? 2e-2 : 1e-3;
    p->worst_rel = 0;
    p->agrees = 1;
    snprintf(p->checked_with, sizeof(p->checked_with), "%s", who);
    for (size_t k = 0; k < io->n_out; k++) {
        char file[600];
        snprintf(file, sizeof(file), "%s/out/out_%zu.npy", p->tmp, k);
        struct mixrt_tensor *o = NULL;
        const struct mixrt_tensor *a = outs[k];
        const char *why = NULL;
        if (mixrt_npy_read(ctx, file, &o) != MIXRT_STATUS_OK)
            why = "ONNX Runtime gave no such output";
        else if (!a)
            why = "mixrt gave no tensor";
        else if (o->rank != a->rank || mixrt_tensor_numel(o) != mixrt_tensor_numel(a) ||
                 memcmp(o->dims, a->dims, sizeof(int64_t) * (size_t)a->rank))
            why = "shapes differ";
        else if (o->dtype == MIXRT_DTYPE_STRING || a->dtype == MIXRT_DTYPE_STRING)
            why = NULL;
        double rel = why ? INFINITY : (o->dtype == MIXRT_DTYPE_STRING ? 0 : rel_norm_error(a, o));
        if (rel > p->worst_rel || isnan(rel)) p->worst_rel = rel;
        if (why || !(rel <= p->tolerance)) {
            p->agrees = 0;
            if (why)
                fprintf(stderr, "mixrt: warning: peer: output '%s': %s\n", io->out[k].name, why);
            else
                fprintf(
                    stderr,
                    "mixrt: warning: peer: output '%s' disagrees with ONNX Runtime: relative-norm error %.3g > %.0e "
                    "(%s)\n",
                    io->out[k].name, rel, p->tolerance, who);
        }
        mixrt_tensor_destroy(ctx, o);
    }
    for (size_t i = 0; i < io->n_out; i++) mixrt_tensor_destroy(ctx, outs[i]);
    free(outs);
    return 0;
}

static void peer_cleanup(struct peer *p) {
    peer_stop(p, false);
    if (!p->tmp[0]) return;
    char f[600];
    for (int i = 0; i < 4096; i++) {
        snprintf(f, sizeof(f), "%s/in_%d.npy", p->tmp, i);
        if (unlink(f) && i > CLI_MAX_INPUTS) break;
    }
    for (int i = 0; i < 4096; i++) {
        snprintf(f, sizeof(f), "%s/out/out_%d.npy", p->tmp, i);
        if (unlink(f) && i > 64) break;
    }
    snprintf(f, sizeof(f), "%s/out", p->tmp);
    rmdir(f);
    snprintf(f, sizeof(f), "%s/stderr.txt", p->tmp);
    unlink(f);
    rmdir(p->tmp);
    p->tmp[0] = 0;
}

/* ---- per-layer profile ---- */

struct layer_prof {
    int node;
    const char *name, *op, *kernel;
    mixrt_dtype precision;
    double ms, share, gflops;
};

struct op_prof {
    const char *op;
    double ms, share;
    int count;
};

struct profile {
    const struct mixrt_graph *g;
    int *layer_of;   /* node index -> layer index, -1 */
    double *sample;  /* this run's time per layer */
    double *samples; /* K x n_layers */
    double t_prev;
    int last_node;
    size_t n_layers, k;
    struct layer_prof *layers;
    struct op_prof *ops;
    size_t n_ops;
    double total_ms;
    bool after_peer; /* each observed run followed one of the peer's */
};

static void profile_observe(void *user, const struct mixrt_graph *g, int node, int value,
                            const struct mixrt_tensor *t) {
    (void)value, (void)t;
    struct profile *pr = user;
    double now = cli_now_ms();
    if (g != pr->g) return; /* a subgraph's node: its time is its parent node's */
    if (node != pr->last_node && node >= 0 && node < g->n_nodes && pr->layer_of[node] >= 0) {
        pr->sample[pr->layer_of[node]] += now - pr->t_prev;
        pr->last_node = node;
    }
    pr->t_prev = now;
}

static double prod_dims(const struct mixrt_value *v, int from, bool *known) {
    double p = 1;
    for (int i = from; i < v->rank; i++) {
        if (v->dims[i].value < 0) *known = false;
        p *= (double)v->dims[i].value;
    }
    return p;
}

/* com.mixrt Attention: 2 x (Q.K^T and P.V multiply-adds) from the logical [B, H, S, D]
 * shapes its perms give Q, K and V. */
static double attention_flops(const struct mixrt_graph *g, const struct mixrt_node *n) {
    if (n->n_inputs < 3) return -1;
    static const char *perm_names[3] = {"q_perm", "k_perm", "v_perm"};
    int64_t d[3][4];
    for (int t = 0; t < 3; t++) {
        if (n->inputs[t] < 0) return -1;
        const struct mixrt_value *v = &g->values[n->inputs[t]];
        if (v->rank != 4) return -1;
        size_t np = 0;
        const int64_t *perm = mixrt_node_attr_ints(n, perm_names[t], &np);
        for (int i = 0; i < 4; i++) {
            int64_t ax = perm && np == 4 ? perm[i] : i;
            if (ax < 0 || ax > 3 || v->dims[ax].value < 0) return -1;
            d[t][i] = v->dims[ax].value;
        }
    }
    double b = (double)(d[0][0] > d[1][0] ? d[0][0] : d[1][0]), h = (double)(d[0][1] > d[1][1] ? d[0][1] : d[1][1]);
    return 2 * b * h * (double)d[0][2] * (double)d[1][2] * (double)(d[0][3] + d[2][3]);
}

/* 2 x multiply-adds of Conv, ConvTranspose, MatMul, Gemm and the com.mixrt FusedConv,
 * FusedMatMul and Attention from the planned graph's static shapes; -1 when unknown (another
 * op, or a dim known only at run time). */
static double node_flops(const struct mixrt_graph *g, const struct mixrt_node *n) {
    /* The fused ops count as what they fuse (the epilogue's adds are not counted). */
    bool fused = !strcmp(n->domain, MIXRT_DOMAIN);
    if (fused && !strcmp(n->op_type, "Attention")) return attention_flops(g, n);
    if ((n->domain[0] && !fused) || n->n_inputs < 2 || n->n_outputs < 1 || n->inputs[0] < 0 || n->inputs[1] < 0 ||
        n->outputs[0] < 0)
        return -1;
    const struct mixrt_value *x = &g->values[n->inputs[0]], *w = &g->values[n->inputs[1]],
                             *y = &g->values[n->outputs[0]];
    if (x->rank < 1 || w->rank < 1 || y->rank < 0) return -1;
    bool known = true;
    double macs;
    if (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "FusedConv")) {
        if (w->rank < 3) return -1;
        macs = prod_dims(y, 0, &known) * prod_dims(w, 1, &known);
    } else if (!strcmp(n->op_type, "ConvTranspose")) {
        if (w->rank < 3) return -1;
        macs = prod_dims(x, 0, &known) * prod_dims(w, 1, &known);
    } else if (!strcmp(n->op_type, "MatMul") || !strcmp(n->op_type, "FusedMatMul")) {
        if (x->dims[x->rank - 1].value < 0) return -1;
        macs = prod_dims(y, 0, &known) * (double)x->dims[x->rank - 1].value;
    } else if (!strcmp(n->op_type, "Gemm")) {
        if (x->rank != 2) return -1;
        int64_t kdim = mixrt_node_attr_int(n, "transA", 0) ? x->dims[0].value : x->dims[1].value;
        if (kdim < 0) return -1;
        macs = prod_dims(y, 0, &known) * (double)kdim;
    } else {
        return -1;
    }
    return known ? 2 * macs : -1;
}

static int cmp_layer_ms(const void *a, const void *b) {
    const struct layer_prof *x = a, *y = b;
    return x->ms > y->ms ? -1 : x->ms < y->ms;
}

static void profile_free(struct profile *pr) {
    free(pr->layer_of);
    free(pr->sample);
    free(pr->samples);
    free(pr->layers);
    free(pr->ops);
    memset(pr, 0, sizeof(*pr));
}

/* K observed runs of row r; per layer the median over runs. With a peer, each run after one
 * (untimed) run of the peer, then turn_runs - 1 untimed runs of r, as in the measured rounds.
 * Returns 0 or 1 (error printed). */
static int profile_run(mixrt_context_t ctx, struct row *r, size_t k, struct profile *pr, struct peer *peer,
                       unsigned long long turn_runs) {
    memset(pr, 0, sizeof(*pr));
    const struct mixrt_graph *g = mixrt_engine_graph(r->e);
    size_t nl = mixrt_engine_layer_count(r->e);
    pr->g = g;
    pr->k = k;
    pr->n_layers = nl;
    pr->layer_of = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof(int));
    pr->sample = calloc(nl ? nl : 1, sizeof(double));
    pr->samples = calloc((nl ? nl : 1) * k, sizeof(double));
    pr->layers = calloc(nl ? nl : 1, sizeof(*pr->layers));
    pr->ops = calloc(nl ? nl : 1, sizeof(*pr->ops));
    double *col = malloc((k ? k : 1) * sizeof(double));
    if (!pr->layer_of || !pr->sample || !pr->samples || !pr->layers || !pr->ops || !col) {
        free(col);
        return cli_fail("out of memory");
    }
    for (int i = 0; i < g->n_nodes; i++) pr->layer_of[i] = -1;
    for (size_t l = 0; l < nl; l++) {
        struct mixrt_layer_info li = {0};
        int node = g->order ? g->order[l] : (int)l;
        mixrt_engine_get_layer(r->e, l, &li);
        if (node >= 0 && node < g->n_nodes) pr->layer_of[node] = (int)l;
        pr->layers[l] = (struct layer_prof){node,
                                            li.name ? li.name : "?",
                                            li.op_type ? li.op_type : "?",
                                            li.kernel ? li.kernel : "?",
                                            li.precision,
                                            0,
                                            0,
                                            -1};
    }
    pr->after_peer = peer && peer->on;
    for (size_t run = 0; run < k; run++) {
        double peer_ms;
        if (pr->after_peer && !peer_request(peer, "run", &peer_ms)) pr->after_peer = false; /* gone: go on */
        for (unsigned long long u = 1; u < turn_runs; u++)
            if (run_once(ctx, r, NULL)) {
                free(col);
                return 1;
            }
        memset(pr->sample, 0, nl * sizeof(double));
        pr->last_node = -1;
        pr->t_prev = cli_now_ms();
        mixrt_status st = mixrt_engine_run_observed(
            r->e, r->in.n, r->in.names, (const struct mixrt_tensor *const *)r->in.t, r->outs, profile_observe, pr);
        if (st != MIXRT_STATUS_OK) {
            free(col);
            return cli_fail_ctx_prefixed(ctx, st, r->spec);
        }
        for (size_t i = 0; i < r->io.n_out; i++) {
            mixrt_tensor_destroy(ctx, r->outs[i]);
            r->outs[i] = NULL;
        }
        memcpy(pr->samples + run * nl, pr->sample, nl * sizeof(double));
    }
    pr->total_ms = 0;
    for (size_t l = 0; l < nl; l++) {
        for (size_t run = 0; run < k; run++) col[run] = pr->samples[run * nl + l];
        qsort(col, k, sizeof(double), cmp_double);
        pr->layers[l].ms = percentile(col, k, 0.5);
        pr->total_ms += pr->layers[l].ms;
        double fl = pr->layers[l].node >= 0 ? node_flops(g, &g->nodes[pr->layers[l].node]) : -1;
        pr->layers[l].gflops = fl >= 0 && pr->layers[l].ms > 0 ? fl / (pr->layers[l].ms * 1e6) : -1;
    }
    free(col);
    for (size_t l = 0; l < nl; l++) {
        struct layer_prof *L = &pr->layers[l];
        L->share = pr->total_ms > 0 ? L->ms / pr->total_ms : 0;
        size_t o;
        for (o = 0; o < pr->n_ops; o++)
            if (!strcmp(pr->ops[o].op, L->op)) break;
        if (o == pr->n_ops) pr->ops[pr->n_ops++] = (struct op_prof){L->op, 0, 0, 0};
        pr->ops[o].ms += L->ms;
        pr->ops[o].share += L->share;
        pr->ops[o].count++;
    }
    return 0;
}

static int cmp_op_ms(const void *a, const void *b) {
    const struct op_prof *x = a, *y = b;
    return x->ms > y->ms ? -1 : x->ms < y->ms;
}

static void profile_print(const struct profile *pr, const struct row *r) {
    printf("\nprofile of %s (%zu observed runs%s; layer time = median over runs of the time from the previous "
           "layer's output to its own):\n",
           r->spec, pr->k, pr->after_peer ? ", each after a run of the peer" : "");
    struct layer_prof *sorted = malloc((pr->n_layers ? pr->n_layers : 1) * sizeof(*sorted));
    if (!sorted) return;
    memcpy(sorted, pr->layers, pr->n_layers * sizeof(*sorted));
    qsort(sorted, pr->n_layers, sizeof(*sorted), cmp_layer_ms);
    size_t top = pr->n_layers < TOP_LAYERS ? pr->n_layers : TOP_LAYERS;
    printf("  top %zu of %zu layers:\n", top, pr->n_layers);
    printf("  %-5s %-32s %-20s %-9s %-18s %10s %7s %9s\n", "#", "name", "op", "precision", "kernel", "ms", "share",
           "GFLOP/s");
    for (size_t i = 0; i < top; i++) {
        const struct layer_prof *L = &sorted[i];
        size_t idx = 0;
        for (size_t l = 0; l < pr->n_layers; l++)
            if (pr->layers[l].node == L->node) idx = l;
        char gf[32];
        if (L->gflops >= 0)
            snprintf(gf, sizeof(gf), "%.1f", L->gflops);
        else
            snprintf(gf, sizeof(gf), "-");
        printf("  %-5zu %-32s %-20s %-9s %-18s %10.4f %6.1f%% %9s\n", idx, L->name, L->op,
               cli_precision_name(L->precision), L->kernel, L->ms, 100 * L->share, gf);
    }
    free(sorted);
    struct op_prof *ops = malloc((pr->n_ops ? pr->n_ops : 1) * sizeof(*ops));
    if (!ops) return;
    memcpy(ops, pr->ops, pr->n_ops * sizeof(*ops));
    qsort(ops, pr->n_ops, sizeof(*ops), cmp_op_ms);
    printf("  per op type:\n  %-24s %10s %7s %6s\n", "op", "ms", "share", "count");
    for (size_t o = 0; o < pr->n_ops; o++)
        printf("  %-24s %10.4f %6.1f%% %6d\n", ops[o].op, ops[o].ms, 100 * ops[o].share, ops[o].count);
    printf("  sum of layers %.4f ms per run (the median run above also counts the engine's own work between "
           "layers)\n",
           pr->total_ms);
    free(ops);
}

static void json_num(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

static void profile_json(FILE *jf, const struct profile *pr) {
    fprintf(jf, ", \"profile\": {\"runs\": %zu, \"after_peer\": %s, \"total_ms\": ", pr->k,
            pr->after_peer ? "true" : "false");
    json_num(jf, pr->total_ms);
    fputs(", \"layers\": [", jf);
    for (size_t l = 0; l < pr->n_layers; l++) {
        const struct layer_prof *L = &pr->layers[l];
        fputs(l ? ",\n    {\"name\": " : "\n    {\"name\": ", jf);
        cli_json_string(jf, L->name);
        fputs(", \"op\": ", jf);
        cli_json_string(jf, L->op);
        fputs(", \"precision\": ", jf);
        cli_json_string(jf, cli_precision_name(L->precision));
        fputs(", \"kernel\": ", jf);
        cli_json_string(jf, L->kernel);
        fputs(", \"ms\": ", jf);
        json_num(jf, L->ms);
        fputs(", \"share\": ", jf);
        json_num(jf, L->share);
        fputs(", \"gflops\": ", jf);
        json_num(jf, L->gflops >= 0 ? L->gflops : NAN);
        fputc('}', jf);
    }
    fputs("], \"ops\": [", jf);
    for (size_t o = 0; o < pr->n_ops; o++) {
        fputs(o ? ", {\"op\": " : "{\"op\": ", jf);
        cli_json_string(jf, pr->ops[o].op);
        fputs(", \"ms\": ", jf);
        json_num(jf, pr->ops[o].ms);
        fputs(", \"share\": ", jf);
        json_num(jf, pr->ops[o].share);
        fprintf(jf, ", \"count\": %d}", pr->ops[o].count);
    }
    fputs("]}", jf);
}

/* ---- the command ---- */

static const char bench_help[] =
    "usage: mixrt bench MODEL.onnx|MODEL.plan [build options] [--input NAME=PATH ...] [--seed N]\n"
    "                   [--iterations N | --duration-s S] [--warmup-ms MS] [--turn-runs N] [--threads N]\n"
    "                   [--compare SPEC;SPEC;...] [--peer ort] [--profile] [--outputs host|device|device-copy]\n"
    "                   [--json FILE] [--report FILE.html]\n"
    "  Warms up for MS ms (default 200), then runs N times or for S seconds (default 3, at least\n"
    "  10 rounds); per row min/mean/median/p90/p95/p99/max latency, inferences/s and items/s\n"
    "  (batch = dim 0 of the first input of rank >= 2), peak resident and planned activation memory.\n"
    "  --compare: each SPEC is [MODEL@]PRECISIONS[:strong] or a PLAN file (its engine as built: A/B\n"
    "    of build options or environment knobs); rows run interleaved, one run each per\n"
    "    round, each round's order chosen so that every row runs after every row about as\n"
    "    often; ratio = median / row 1's median, ratio [p10, p90] = 10th-90th percentile over\n"
    "    rounds of each round's time / row 1's time in that round.\n"
    "  --turn-runs N (default 2): each row's turn in a round is N runs back to back, the last one\n"
    "    timed, so a timed run finds its own engine's weights and activations in the caches, as\n"
    "    in a loop of that engine alone (trtexec, onnxruntime_perf_test); 1 times the first run\n"
    "    after the other rows', whose data then fills the caches.\n"
    "  --peer ort: the same model and inputs through ONNX Runtime (npm onnxruntime-node, installed\n"
    "    on first use into ~/.cache/mixrt/ort or $MIXRT_ORT_DIR; needs node and npm) as one more\n"
    "    row of the same rounds, same thread count; its outputs are checked against mixrt's.\n"
    "  --profile: up to 10 observed runs of row 1 after the timed ones (with --peer, each after a\n"
    "    run of the peer, as in the rounds): per layer median time,\n"
    "    share, precision, kernel, GFLOP/s (Conv, ConvTranspose, MatMul, Gemm); per op type.\n"
    "  --threads N sets the OpenMP threads (mixrt's and oneDNN's) before any engine exists.\n"
    "  --json FILE: DESIGN.md's object plus batch, items_per_s, ratio_p10, ratio_p90,\n"
    "    activation_bytes, the peer row and profile.\n"
    "  --report FILE.html: a self-contained page with the same figures.\n"
    "  --outputs (engines built with --backend cuda): host (default) times runs whose inputs come\n"
    "    from and outputs go to host memory; device uploads the inputs once and times\n"
    "    mixrt_engine_run_device (inputs and outputs stay on the GPU, outputs as views: the\n"
    "    figure comparable with torch on CUDA tensors); device-copy, the same with every output\n"
    "    copied device to device into a tensor of the caller (mixrt_engine_run_into). The JSON\n"
    "    rows carry \"outputs\"; --profile still runs with host outputs.\n";

static void fmt_mib(char *buf, size_t size, long long bytes) {
    if (bytes < 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.2f", (double)bytes / (1024.0 * 1024.0));
}

/* The running medians of every row, for the progress line. */
static void running_medians(char *buf, size_t size, const struct row *rows, int n_rows, double *scratch) {
    size_t off = (size_t)snprintf(buf, size, "median");
    for (int r = 0; r < n_rows && off < size; r++)
        off += (size_t)snprintf(buf + off, size - off, "%s %.3f", r ? " |" : "",
                                quick_median(rows[r].ms, rows[r].runs, scratch));
    if (off < size) snprintf(buf + off, size - off, " ms");
}

int mixrt_cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *json_path = NULL, *compare = NULL, *report_path = NULL, *v;
    static struct cli_input_arg in_args[CLI_MAX_INPUTS];
    int n_in_args = 0;
    unsigned long long seed = 1, iterations = 0, threads = 0, turn_runs = 2;
    double warmup_ms = 200, duration_s = 3;
    bool profile = false;
    static struct peer peer;
    memset(&peer, 0, sizeof(peer));
    peer.to_fd = peer.from_fd = -1;
    peer.agrees = -1;
    peer.peak_rss = -1;
    struct cli_build_args b;
    cli_build_args_init(&b);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_build_args_parse(&b, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--input"))) {
            if (n_in_args >= CLI_MAX_INPUTS) cli_die_usage("too many --input options");
            cli_input_arg_parse(v, &in_args[n_in_args++]);
        } else if ((v = cli_opt_value(argc, argv, &i, "--seed"))) {
            seed = cli_parse_u64("--seed", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--iterations"))) {
            iterations = cli_parse_u64("--iterations", v);
            if (iterations < 1 || iterations > 100000000)
                cli_die_usage("--iterations must be 1..100000000, got '%s'", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--turn-runs"))) {
            turn_runs = cli_parse_u64("--turn-runs", v);
            if (turn_runs < 1 || turn_runs > 100) cli_die_usage("--turn-runs must be 1..100, got '%s'", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--warmup-ms"))) {
            warmup_ms = cli_parse_double("--warmup-ms", v, 0);
        } else if ((v = cli_opt_value(argc, argv, &i, "--duration-s"))) {
            duration_s = cli_parse_double("--duration-s", v, 0);
            if (duration_s <= 0) cli_die_usage("--duration-s takes a number > 0, got '%s'", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--threads"))) {
            threads = cli_parse_u64("--threads", v);
            if (threads < 1 || threads > 4096) cli_die_usage("--threads must be 1..4096, got '%s'", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--compare"))) {
            compare = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--json"))) {
            if (!*v) cli_die_usage("--json needs a file name, got ''");
            json_path = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--peer"))) {
            if (strcmp(v, "ort")) cli_die_usage("--peer takes 'ort' (ONNX Runtime), got '%s'", v);
            peer.wanted = true;
        } else if ((v = cli_opt_value(argc, argv, &i, "--report"))) {
            if (!*v) cli_die_usage("--report needs a file name, got ''");
            if (!BENCH_HAVE_REPORT) cli_die_usage("--report: this build has no HTML report (tools/report.c)");
            report_path = v;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(bench_help, stdout);
            cli_build_args_free(&b);
            return 0;
        } else if (!strcmp(a, "--profile")) {
            profile = true;
        } else if ((v = cli_opt_value(argc, argv, &i, "--outputs"))) {
            if (!strcmp(v, "host")) g_outputs = BENCH_OUT_HOST;
            else if (!strcmp(v, "device")) g_outputs = BENCH_OUT_DEVICE;
            else if (!strcmp(v, "device-copy")) g_outputs = BENCH_OUT_DEVICE_COPY;
            else cli_die_usage("--outputs takes host, device or device-copy, got '%s'", v);
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage("unknown option '%s' for bench", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            cli_die_usage("unexpected argument '%s'", a);
        }
    }
    if (!model_path) cli_die_usage("bench needs a model file");
    if (peer.wanted && cli_is_plan(model_path))
        cli_die_usage("--peer ort runs the .onnx model in ONNX Runtime: give the .onnx, not the plan '%s'", model_path);

    /* Rows: one per SPEC, or the command's model alone; the peer's row comes last. */
    static struct row rows[MAX_ROWS + 1];
    char *model_copies[MAX_ROWS + 1] = {0};
    int n_rows = 0;
    if (compare) {
        const char *p = compare;
        while (1) {
            const char *semi = strchr(p, ';');
            size_t len = semi ? (size_t)(semi - p) : strlen(p);
            char spec[512];
            if (!len) cli_die_usage("--compare: empty SPEC in '%s' (SPECs are separated by ';')", compare);
            if (len >= sizeof(spec)) cli_die_usage("--compare: SPEC too long in '%s'", compare);
            if (n_rows >= MAX_ROWS) cli_die_usage("--compare: at most %d SPECs", MAX_ROWS);
            memcpy(spec, p, len);
            spec[len] = 0;
            memset(&rows[n_rows], 0, sizeof(rows[n_rows]));
            parse_spec(spec, model_path, &rows[n_rows], &model_copies[n_rows]);
            n_rows++;
            if (!semi) break;
            p = semi + 1;
        }
        if (b.precision_list || b.opts.strongly_typed)
            cli_die_usage("--compare sets the precisions and typing of each row: drop --precision/--strongly-typed");
    } else {
        memset(&rows[0], 0, sizeof(rows[0]));
        rows[0].model = model_path;
        if (cli_is_plan(model_path)) {
            snprintf(rows[0].spec, sizeof(rows[0].spec), "plan");
        } else {
            char prec[64];
            cli_precisions_str(prec, sizeof(prec), b.opts.precisions);
            snprintf(rows[0].spec, sizeof(rows[0].spec), "%s%s", b.precision_list ? b.precision_list : prec,
                     b.opts.strongly_typed ? ":strong" : "");
        }
        n_rows = 1;
    }
    /* Before any engine (and its thread pool) exists. */
    if (threads) {
        char t[32];
        snprintf(t, sizeof(t), "%llu", threads);
        setenv("OMP_NUM_THREADS", t, 1);
#ifdef _OPENMP
        /* libgomp read the variable when it was loaded, before main: the setenv alone left
         * mixrt's kernels and oneDNN on every core. */
        omp_set_num_threads((int)threads);
#endif
    } else {
        const char *env = getenv("OMP_NUM_THREADS");
        char *end;
        unsigned long long n = env ? strtoull(env, &end, 10) : 0;
        threads = env && *env && !*end && n > 0 ? n : (unsigned long long)sysconf(_SC_NPROCESSORS_ONLN);
    }
    P.tty = isatty(2);

    mixrt_context_t ctx = NULL;
    mixrt_model_t peer_model = NULL;
    struct cli_io peer_io = {0};
    struct cli_inputs peer_in = {0};
    struct profile prof = {0};
    double *scratch = NULL;
    int *order_of = NULL; /* a round's order of the rows (rounds.h) */
    int rc = 1, n_alloc = n_rows; /* rows to free: a peer row dropped mid-run included */
    FILE *jf = NULL;
    struct sigaction old_pipe, ign = {.sa_handler = SIG_IGN};
    bool pipe_ignored = false;
    if (cli_context_create(b.opts.verbose, &ctx)) goto done;
    if (peer.wanted) {
        if (peer_prepare(&peer)) goto done;
        /* a dead child must not end mixrt with SIGPIPE */
        pipe_ignored = sigaction(SIGPIPE, &ign, &old_pipe) == 0;
    }
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        cli_shapes_for_open_inputs(ctx, &b, w->model, in_args, n_in_args); /* b's: every row's and the peer's */
        struct cli_build_args rb = b;
        if (w->precisions_set) {
            rb.opts.precisions = w->precisions;
            rb.opts.strongly_typed = w->strong;
        }
        double ms = 0;
        bool plan = cli_is_plan(w->model);
        char phase[sizeof(P.phase)];
        snprintf(phase, sizeof(phase), "%s %s (%s)", plan ? "loading" : "building", w->spec, w->model);
        progress_wait_begin(phase);
        int bad = cli_engine_open(ctx, w->model, &rb, &w->e, &ms);
        progress_wait_end();
        if (bad) goto done;
        const struct mixrt_build_options *o = mixrt_engine_options(w->e);
        if (!w->precisions_set) {
            w->precisions = o ? o->precisions : b.opts.precisions;
            w->strong = o ? o->strongly_typed : b.opts.strongly_typed;
        }
        w->activation_bytes = mixrt_engine_activation_bytes(w->e);
        if (cli_io_from_engine(w->e, &w->io)) goto done;
        if (cli_inputs_prepare(ctx, &w->io, in_args, n_in_args, b.shapes, (int)b.opts.n_shapes, seed, &w->in))
            goto done;
        cli_notes_quiet = true; /* the same inputs again for the other rows */
        w->outs = calloc(w->io.n_out ? w->io.n_out : 1, sizeof(*w->outs));
        w->cap = iterations ? (size_t)iterations : 1024;
        w->ms = malloc(w->cap * sizeof(double));
        if (!w->outs || !w->ms) {
            rc = cli_fail("out of memory");
            goto done;
        }
        fprintf(stderr, "mixrt: note: %s: %s %s in %.1f ms\n", w->spec, w->model, plan ? "loaded" : "built", ms);
        if (g_outputs != BENCH_OUT_HOST && device_io_setup(ctx, w)) goto done;
    }

    /* The peer: same model file, same input data, same thread count. Its reference for
     * the agreement check is the first row that runs the command's model. */
    if (peer.wanted) {
        struct row *ref = &rows[0];
        for (int r = n_rows - 1; r >= 0; r--)
            if (!strcmp(rows[r].model, model_path)) ref = &rows[r];
        const struct cli_inputs *feed = &ref->in;
        if (strcmp(ref->model, model_path)) {
            /* no row runs the command's model: its own inputs, made the same way */
            mixrt_status st = mixrt_model_load(ctx, model_path, &peer_model);
            if (st != MIXRT_STATUS_OK) {
                rc = cli_fail_ctx(ctx, st);
                goto done;
            }
            if (cli_io_from_model(peer_model, &peer_io)) goto done;
            if (cli_inputs_prepare(ctx, &peer_io, in_args, n_in_args, b.shapes, (int)b.opts.n_shapes, seed, &peer_in))
                goto done;
            feed = &peer_in;
        }
        if (peer_start(ctx, &peer, model_path, feed, threads)) goto done;
        if (peer.on && peer_check(ctx, &peer, ref, peer_model, peer_model ? &peer_io : &ref->io, feed)) goto done;
        if (peer.agrees == 0)
            fprintf(
                stderr,
                "mixrt: warning: peer: ONNX Runtime's outputs disagree with %s's (worst relative-norm error %.3g)\n",
                peer.checked_with, peer.worst_rel);
        if (peer.on) {
            struct row *w = &rows[n_rows];
            memset(w, 0, sizeof(*w));
            snprintf(w->spec, sizeof(w->spec), "ort");
            w->model = model_path;
            w->is_peer = true;
            w->strong = true;
            w->activation_bytes = -1;
            w->cap = iterations ? (size_t)iterations : 1024;
            w->ms = malloc(w->cap * sizeof(double));
            if (!w->ms) {
                rc = cli_fail("out of memory");
                goto done;
            }
            n_rows++;
            n_alloc = n_rows;
        } else {
            fprintf(stderr, "mixrt: warning: peer: %s; going on without it\n", peer.refused);
        }
    }
    cli_notes_quiet = false;

    /* Rounds run every row once, each in an order that evens out which row runs right after
     * which (tools/rounds.c). The row after the peer finds the caches cold and mixrt's worker
     * threads asleep (measured on 2 busy cores: 0.3 ms -> 3-5 ms when one row always took that
     * place). The rotation that stood here (A B C, B C A, C A B) still put the first row after
     * the peer in two rounds of three with two rows and the peer: one MnasNet plan in both rows
     * read 1.915 / 1.866 ms. (A worker woken onto the caller's CPU made more than one in ten of
     * those runs 4-5x slower - MnasNet p90 10.9 ms against a 2.5 ms median - until runs bound
     * the team to the CPUs: src/core/threads.c.) */
    static struct rounds order_state;
    order_of = malloc((size_t)n_rows * sizeof(int));
    if (!order_of) {
        rc = cli_fail("out of memory");
        goto done;
    }
    rounds_init(&order_state);
    size_t warm_rounds = 0;
    double t0 = cli_now_ms();
    progress_begin("warm-up");
    do {
        rounds_next(&order_state, warm_rounds, n_rows, order_of);
        for (int j = 0; j < n_rows; j++) {
            int r = order_of[j];
            double ms;
            if (rows[r].is_peer && !peer_request(&peer, "run", &ms)) {
                /* the peer is the last row: the others go on without it */
                progress_end();
                fprintf(stderr, "mixrt: warning: peer: %s; going on without it\n", peer.refused);
                n_rows--;
                break;
            }
            if (!rows[r].is_peer && run_once(ctx, &rows[r], NULL)) {
                progress_end();
                goto done;
            }
        }
        warm_rounds++;
        progress_draw(warmup_ms > 0 ? (cli_now_ms() - t0) / warmup_ms : 1, NULL);
    } while (cli_now_ms() - t0 < warmup_ms);
    progress_end();

    /* Measured rounds, ordered likewise (the counts afresh); ms[k] of every row is round k's. */
    rounds_reset_counts(&order_state);
    t0 = cli_now_ms();
    size_t rounds = 0;
    progress_begin("measuring");
    while (iterations ? rounds < iterations : (rounds < 10 || cli_now_ms() - t0 < duration_s * 1e3)) {
        bool dropped = false;
        rounds_next(&order_state, rounds, n_rows, order_of);
        for (int j = 0; j < n_rows; j++) {
            struct row *w = &rows[order_of[j]];
            if (w->runs == w->cap) {
                double *m = realloc(w->ms, 2 * w->cap * sizeof(double));
                if (!m) {
                    progress_end();
                    rc = cli_fail("out of memory");
                    goto done;
                }
                w->ms = m;
                w->cap *= 2;
            }
            /* a turn's untimed runs first (--turn-runs): the timed one then finds the row's own
             * data in the caches, as in a loop of that engine alone */
            double untimed_ms;
            bool turn_ok = true;
            for (unsigned long long u = 1; u < turn_runs && turn_ok; u++) {
                if (w->is_peer) turn_ok = peer_request(&peer, "run", &untimed_ms);
                else if (run_once(ctx, w, NULL)) {
                    progress_end();
                    goto done;
                }
            }
            if (w->is_peer && (!turn_ok || !peer_request(&peer, "run", &w->ms[w->runs]))) {
                /* dropped whole (a row with fewer runs than rounds has no per-round ratios),
                 * with this unfinished round of the others */
                progress_end();
                fprintf(stderr, "mixrt: warning: peer: %s; its row is dropped\n", peer.refused);
                n_rows--;
                for (int r = 0; r < n_rows; r++) rows[r].runs = rounds;
                dropped = true;
                break;
            }
            if (!w->is_peer && run_once(ctx, w, &w->ms[w->runs])) {
                progress_end();
                goto done;
            }
            w->runs++;
        }
        if (dropped) continue;
        rounds++;
        double now = cli_now_ms();
        if (now - t0 >= 1000 && now - P.last >= (P.tty ? 100 : 1000)) {
            double frac = iterations ? (double)rounds / (double)iterations
                                     : fmin((now - t0) / (duration_s * 1e3), (double)rounds / 10.0);
            double *s = realloc(scratch, rows[0].runs * sizeof(double));
            if (s) {
                scratch = s;
                char med[256];
                running_medians(med, sizeof(med), rows, n_rows, scratch);
                progress_draw(frac, med);
            }
        }
    }
    progress_end();

    /* Statistics on sorted copies; ms[] keeps the round order for the ratios. */
    {
        double *s = realloc(scratch, (rounds ? rounds : 1) * sizeof(double));
        if (!s) {
            rc = cli_fail("out of memory");
            goto done;
        }
        scratch = s;
    }
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        double sum = 0;
        for (size_t i = 0; i < w->runs; i++) sum += w->ms[i];
        memcpy(scratch, w->ms, w->runs * sizeof(double));
        qsort(scratch, w->runs, sizeof(double), cmp_double);
        w->min = scratch[0];
        w->max = scratch[w->runs - 1];
        w->mean = sum / (double)w->runs;
        w->median = percentile(scratch, w->runs, 0.5);
        w->p90 = percentile(scratch, w->runs, 0.9);
        w->p95 = percentile(scratch, w->runs, 0.95);
        w->p99 = percentile(scratch, w->runs, 0.99);
    }
    /* ratio_k = t_row_k / t_first_k per round; its 10th-90th percentile is the interval. */
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        w->ratio = r == 0 ? 1.0 : w->median / rows[0].median;
        for (size_t k = 0; k < rounds; k++) scratch[k] = rows[0].ms[k] > 0 ? w->ms[k] / rows[0].ms[k] : NAN;
        if (r == 0) {
            w->ratio_p10 = w->ratio_p90 = 1.0;
            continue;
        }
        size_t n = 0;
        for (size_t k = 0; k < rounds; k++)
            if (!isnan(scratch[k])) scratch[n++] = scratch[k];
        qsort(scratch, n, sizeof(double), cmp_double);
        w->ratio_p10 = percentile(scratch, n, 0.1);
        w->ratio_p90 = percentile(scratch, n, 0.9);
    }

    if (profile) {
        size_t k = rounds < PROFILE_RUNS ? rounds : PROFILE_RUNS;
        char phase[sizeof(P.phase)];
        snprintf(phase, sizeof(phase), "profiling %.100s (%zu observed runs)", rows[0].spec, k);
        progress_wait_begin(phase);
        int bad = profile_run(ctx, &rows[0], k, &prof, &peer, turn_runs);
        progress_wait_end();
        if (bad) goto done;
    }
    if (peer.on) peer_stop(&peer, true);

    long long peak_rss = bench_peak_rss();
    long long batch = batch_of(&rows[0]);

    printf("bench %s: %d row%s, %zu interleaved rounds, %llu thread%s, batch %lld, %llu run%s a turn (%s)\n",
           model_path, n_rows, n_rows == 1 ? "" : "s", rounds, threads, threads == 1 ? "" : "s", batch, turn_runs,
           turn_runs == 1 ? "" : "s", turn_runs == 1 ? "timed" : "the last timed");
    printf("%-24s %-32s %-14s %-6s %10s %10s %7s %17s %7s %9s\n", "spec", "model", "precision", "typing", "median ms",
           "p90 ms", "ratio", "ratio [p10, p90]", "spread", "act MiB");
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        char prec[64], act[32], iv[48];
        if (w->is_peer)
            snprintf(prec, sizeof(prec), "declared");
        else
            cli_precisions_str(prec, sizeof(prec), w->precisions);
        fmt_mib(act, sizeof(act), w->activation_bytes);
        snprintf(iv, sizeof(iv), "[%.3f, %.3f]", w->ratio_p10, w->ratio_p90);
        printf("%-24s %-32s %-14s %-6s %10.3f %10.3f %7.3f %17s %7.3f %9s\n", w->spec, w->model, prec,
               w->strong ? "strong" : "weak", w->median, w->p90, w->ratio, iv, w->p90 / w->median, act);
    }
    printf("(ratio = median / median of row 1; ratio [p10, p90] = 10th-90th percentile over rounds of each round's\n"
           " time / row 1's time in that round; spread = p90 / median; act MiB = planned activation memory)\n");
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        printf("%s: runs %zu  min %.3f  mean %.3f  median %.3f  p90 %.3f  p95 %.3f  p99 %.3f  max %.3f ms  "
               "%.1f inferences/s  %.1f items/s\n",
               w->spec, w->runs, w->min, w->mean, w->median, w->p90, w->p95, w->p99, w->max, 1e3 / w->mean,
               (double)batch * 1e3 / w->mean);
    }
    {
        char rss[32], act[32];
        fmt_mib(rss, sizeof(rss), peak_rss);
        fmt_mib(act, sizeof(act), rows[0].activation_bytes);
        printf("memory: peak resident %s MiB (mixrt process, all rows); planned activations %s MiB (%s)", rss, act,
               rows[0].spec);
        if (peer.peak_rss >= 0) {
            fmt_mib(rss, sizeof(rss), peer.peak_rss);
            printf("; ONNX Runtime process peak resident %s MiB", rss);
        }
        printf("\n");
    }
    if (peer.wanted) {
        if (peer.agrees >= 0)
            printf("peer: ONNX Runtime %s, %s: %s with %s (worst relative-norm error %.3g, tolerance %.0e)\n",
                   peer.version[0] ? peer.version : "?", model_path, peer.agrees ? "outputs agree" : "OUTPUTS DISAGREE",
                   peer.checked_with, peer.worst_rel, peer.tolerance);
        if (peer.refused[0]) printf("peer: %s%s\n", peer.refused, peer.agrees >= 0 ? "; its row is dropped" : "");
    }
    if (profile) profile_print(&prof, &rows[0]);
    fflush(stdout);

    char cpu[256];
    cpu_model(cpu, sizeof(cpu));
    if (json_path) {
        jf = fopen(json_path, "w");
        if (!jf) {
            rc = cli_fail("cannot write '%s'", json_path);
            goto done;
        }
        struct utsname un;
        char os[256] = "unknown";
        if (uname(&un) == 0) snprintf(os, sizeof(os), "%s %s %s", un.sysname, un.release, un.machine);
        fputs("{\"mixrt_version\": ", jf);
        cli_json_string(jf, mixrt_version());
        fputs(", \"machine\": {\"cpu\": ", jf);
        cli_json_string(jf, cpu);
        fprintf(jf, ", \"cores\": %ld, \"os\": ", sysconf(_SC_NPROCESSORS_ONLN));
        cli_json_string(jf, os);
        fputs("}, \"model\": ", jf);
        cli_json_string(jf, model_path);
        fprintf(jf, ", \"rounds\": %zu, \"turn_runs\": %llu, \"warmup_ms\": ", rounds, turn_runs);
        json_num(jf, warmup_ms);
        fprintf(jf, ", \"batch\": %lld", batch);
        if (peer.wanted) {
            fputs(", \"peer\": {\"name\": \"ort\", \"version\": ", jf);
            if (peer.version[0])
                cli_json_string(jf, peer.version);
            else
                fputs("null", jf);
            fputs(", \"agrees\": ", jf);
            fputs(peer.agrees < 0 ? "null" : peer.agrees ? "true" : "false", jf);
            fputs(", \"worst_rel_error\": ", jf);
            json_num(jf, peer.agrees < 0 ? NAN : peer.worst_rel);
            fputs(", \"checked_with\": ", jf);
            if (peer.agrees >= 0)
                cli_json_string(jf, peer.checked_with);
            else
                fputs("null", jf);
            fputs(", \"error\": ", jf);
            if (peer.refused[0])
                cli_json_string(jf, peer.refused);
            else
                fputs("null", jf);
            fputc('}', jf);
        }
        fputs(", \"rows\": [", jf);
        for (int r = 0; r < n_rows; r++) {
            struct row *w = &rows[r];
            char prec[64];
            const struct mixrt_build_options *o = w->is_peer ? NULL : mixrt_engine_options(w->e);
            if (w->is_peer)
                snprintf(prec, sizeof(prec), "declared");
            else
                cli_precisions_str(prec, sizeof(prec), w->precisions);
            fputs(r ? ",\n  {\"spec\": " : "\n  {\"spec\": ", jf);
            cli_json_string(jf, w->spec);
            fputs(", \"model\": ", jf);
            cli_json_string(jf, w->model);
            fputs(", \"precision\": ", jf);
            cli_json_string(jf, prec);
            fprintf(jf, ", \"typing\": \"%s\", \"backend\": ", w->strong ? "strong" : "weak");
            cli_json_string(jf, w->is_peer ? "onnxruntime" : o && o->backend ? o->backend : "cpu");
            fprintf(jf, ", \"outputs\": \"%s\"", w->is_peer ? "host" : bench_outputs_names[g_outputs]);
            fprintf(jf, ", \"threads\": %llu, \"runs\": %zu, \"latency_ms\": {\"min\": ", threads, w->runs);
            json_num(jf, w->min);
            fputs(", \"mean\": ", jf);
            json_num(jf, w->mean);
            fputs(", \"median\": ", jf);
            json_num(jf, w->median);
            fputs(", \"p90\": ", jf);
            json_num(jf, w->p90);
            fputs(", \"p95\": ", jf);
            json_num(jf, w->p95);
            fputs(", \"p99\": ", jf);
            json_num(jf, w->p99);
            fputs(", \"max\": ", jf);
            json_num(jf, w->max);
            fputs("}, \"throughput_per_s\": ", jf);
            json_num(jf, 1e3 / w->mean);
            fprintf(jf, ", \"batch\": %lld, \"items_per_s\": ", batch);
            json_num(jf, (double)batch * 1e3 / w->mean);
            fputs(", \"ratio_to_first\": ", jf);
            /* row 1 is exactly 1 by definition, whatever its median */
            json_num(jf, w->ratio);
            fputs(", \"ratio_p10\": ", jf);
            json_num(jf, w->ratio_p10);
            fputs(", \"ratio_p90\": ", jf);
            json_num(jf, w->ratio_p90);
            long long rss = w->is_peer ? peer.peak_rss : peak_rss;
            fputs(", \"peak_rss_bytes\": ", jf);
            if (rss >= 0)
                fprintf(jf, "%lld", rss);
            else
                fputs("null", jf);
            fputs(", \"activation_bytes\": ", jf);
            if (w->activation_bytes >= 0)
                fprintf(jf, "%lld", (long long)w->activation_bytes);
            else
                fputs("null", jf);
            if (w->is_peer) {
                fputs(", \"peer_agrees\": ", jf);
                fputs(peer.agrees < 0 ? "null" : peer.agrees ? "true" : "false", jf);
                fputs(", \"peer_version\": ", jf);
                cli_json_string(jf, peer.version);
            }
            if (r == 0 && profile) profile_json(jf, &prof);
            fputc('}', jf);
        }
        fputs("]}\n", jf);
        int bad = fclose(jf) != 0;
        jf = NULL;
        if (bad) {
            rc = cli_fail("cannot write '%s'", json_path);
            goto done;
        }
    }
#if BENCH_HAVE_REPORT
    if (report_path) {
        struct report_row rr[MAX_ROWS + 1];
        static char precs[MAX_ROWS + 1][64];
        struct report_layer *rl = prof.n_layers ? calloc(prof.n_layers, sizeof(*rl)) : NULL;
        if (prof.n_layers && !rl) {
            rc = cli_fail("out of memory");
            goto done;
        }
        for (int r = 0; r < n_rows; r++) {
            struct row *w = &rows[r];
            const struct mixrt_build_options *o = w->is_peer ? NULL : mixrt_engine_options(w->e);
            if (w->is_peer)
                snprintf(precs[r], sizeof(precs[r]), "declared");
            else
                cli_precisions_str(precs[r], sizeof(precs[r]), w->precisions);
            rr[r] = (struct report_row){w->spec,
                                        w->model,
                                        precs[r],
                                        w->strong ? "strong" : "weak",
                                        w->is_peer        ? "onnxruntime"
                                        : o && o->backend ? o->backend
                                                          : "cpu",
                                        w->ms,
                                        w->runs,
                                        w->median,
                                        w->p90,
                                        w->ratio,
                                        w->ratio_p10,
                                        w->ratio_p90,
                                        w->is_peer};
        }
        for (size_t l = 0; l < prof.n_layers; l++)
            rl[l] = (struct report_layer){
                prof.layers[l].name,   prof.layers[l].op, cli_precision_name(prof.layers[l].precision),
                prof.layers[l].kernel, prof.layers[l].ms, prof.layers[l].share,
                prof.layers[l].gflops};
        char title[PATH_MAX + 32];
        snprintf(title, sizeof(title), "mixrt bench %s", model_path);
        struct bench_report rep = {title,    mixrt_version(),
                                   cpu,      model_path,
                                   rr,       (size_t)n_rows,
                                   rl,       prof.n_layers,
                                   peak_rss, rows[0].activation_bytes >= 0 ? (long long)rows[0].activation_bytes : -1};
        int bad = report_write_html(report_path, &rep);
        free(rl);
        if (bad) goto done;
        fprintf(stderr, "mixrt: note: report written to %s\n", report_path);
    }
#else
    (void)report_path;
#endif
    rc = 0;
done:
    if (jf) fclose(jf);
    peer_cleanup(&peer);
    if (pipe_ignored) sigaction(SIGPIPE, &old_pipe, NULL);
    profile_free(&prof);
    free(scratch);
    free(order_of);
    for (int r = 0; r < n_alloc; r++) {
        struct row *w = &rows[r];
        if (w->outs)
            for (size_t i = 0; i < w->io.n_out; i++) mixrt_tensor_destroy(ctx, w->outs[i]);
        free(w->outs);
        free(w->ms);
        if (w->e) device_io_free(w);
        cli_inputs_free(ctx, &w->in);
        cli_io_free(&w->io);
        mixrt_engine_destroy(w->e);
        free(model_copies[r]);
    }
    cli_inputs_free(ctx, &peer_in);
    cli_io_free(&peer_io);
    mixrt_model_destroy(peer_model);
    mixrt_context_destroy(ctx);
    cli_build_args_free(&b);
    return rc;
}
