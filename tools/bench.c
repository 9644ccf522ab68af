/* bench.c - `mixrt bench`: latency of one engine, or of several (--compare) measured
 * interleaved in one run so that machine noise hits every row alike. Only the run call
 * is timed (inputs are prepared once, outputs freed outside the timed region). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "engine/engine_impl.h"

#define MAX_ROWS 16

struct row {
    char spec[512];
    const char *model;
    unsigned precisions;
    bool strong, precisions_set;
    mixrt_engine_t e;
    struct cli_io io;
    struct cli_inputs in;
    struct mixrt_tensor **outs;
    double *ms;
    size_t runs, cap;
    double min, mean, median, p90, p95, p99, max;
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

/* Parses "[MODEL@]PRECISIONS[:strong]". */
static void parse_spec(const char *spec, const char *default_model, struct row *r, char **model_copy) {
    if (strlen(spec) >= sizeof(r->spec)) cli_die_usage("--compare: SPEC too long: '%s'", spec);
    snprintf(r->spec, sizeof(r->spec), "%s", spec);
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *prec = buf;
    char *at = strrchr(buf, '@');
    *model_copy = NULL;
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

static int run_once(mixrt_context_t ctx, struct row *r, double *ms) {
    double t0 = cli_now_ms();
    mixrt_status st = mixrt_engine_run(r->e, r->in.n, r->in.names, (const struct mixrt_tensor *const *)r->in.t, r->outs);
    double t1 = cli_now_ms();
    if (st != MIXRT_STATUS_OK) return cli_fail_ctx_prefixed(ctx, st, r->spec);
    for (size_t i = 0; i < r->io.n_out; i++) {
        mixrt_tensor_destroy(ctx, r->outs[i]);
        r->outs[i] = NULL;
    }
    if (ms) *ms = t1 - t0;
    return 0;
}

static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

int mixrt_cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *json_path = NULL, *compare = NULL, *v;
    static struct cli_input_arg in_args[CLI_MAX_INPUTS];
    int n_in_args = 0;
    unsigned long long seed = 1, iterations = 0, threads = 0;
    double warmup_ms = 200, duration_s = 3;
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
            if (iterations < 1 || iterations > 100000000) cli_die_usage("--iterations must be 1..100000000, got '%s'", v);
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
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage("unknown option '%s' for bench", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            cli_die_usage("unexpected argument '%s'", a);
        }
    }
    if (!model_path) cli_die_usage("bench needs a model file");

    /* Rows: one per SPEC, or the command's model alone. */
    static struct row rows[MAX_ROWS];
    char *model_copies[MAX_ROWS] = {0};
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
    } else {
        const char *env = getenv("OMP_NUM_THREADS");
        char *end;
        unsigned long long n = env ? strtoull(env, &end, 10) : 0;
        threads = env && *env && !*end && n > 0 ? n : (unsigned long long)sysconf(_SC_NPROCESSORS_ONLN);
    }

    mixrt_context_t ctx = NULL;
    int rc = 1;
    FILE *jf = NULL;
    if (cli_context_create(b.opts.verbose, &ctx)) goto done;
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        struct cli_build_args rb = b;
        if (w->precisions_set) {
            rb.opts.precisions = w->precisions;
            rb.opts.strongly_typed = w->strong;
        }
        double ms = 0;
        if (cli_engine_open(ctx, w->model, &rb, &w->e, &ms)) goto done;
        const struct mixrt_build_options *o = mixrt_engine_options(w->e);
        if (!w->precisions_set) {
            w->precisions = o ? o->precisions : b.opts.precisions;
            w->strong = o ? o->strongly_typed : b.opts.strongly_typed;
        }
        if (cli_io_from_engine(w->e, &w->io)) goto done;
        if (cli_inputs_prepare(ctx, &w->io, in_args, n_in_args, b.shapes, (int)b.opts.n_shapes, seed, &w->in)) goto done;
        cli_notes_quiet = true; /* the same inputs again for the other rows */
        w->outs = calloc(w->io.n_out ? w->io.n_out : 1, sizeof(*w->outs));
        w->cap = iterations ? (size_t)iterations : 1024;
        w->ms = malloc(w->cap * sizeof(double));
        if (!w->outs || !w->ms) {
            rc = cli_fail("out of memory");
            goto done;
        }
        fprintf(stderr, "mixrt: note: %s: %s %s in %.1f ms\n", w->spec, w->model, cli_is_plan(w->model) ? "loaded" : "built",
                ms);
    }
    cli_notes_quiet = false;

    /* Warm-up by time, interleaved, at least one run per row. */
    double t0 = cli_now_ms();
    do {
        for (int r = 0; r < n_rows; r++)
            if (run_once(ctx, &rows[r], NULL)) goto done;
    } while (cli_now_ms() - t0 < warmup_ms);
    /* Measured rounds: A B C A B C ... */
    t0 = cli_now_ms();
    size_t rounds = 0;
    while (iterations ? rounds < iterations : (rounds < 10 || cli_now_ms() - t0 < duration_s * 1e3)) {
        for (int r = 0; r < n_rows; r++) {
            struct row *w = &rows[r];
            if (w->runs == w->cap) {
                double *m = realloc(w->ms, 2 * w->cap * sizeof(double));
                if (!m) {
                    rc = cli_fail("out of memory");
                    goto done;
                }
                w->ms = m;
                w->cap *= 2;
            }
            if (run_once(ctx, w, &w->ms[w->runs])) goto done;
            w->runs++;
        }
        rounds++;
    }
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        double sum = 0;
        for (size_t i = 0; i < w->runs; i++) sum += w->ms[i];
        qsort(w->ms, w->runs, sizeof(double), cmp_double);
        w->min = w->ms[0];
        w->max = w->ms[w->runs - 1];
        w->mean = sum / (double)w->runs;
        w->median = percentile(w->ms, w->runs, 0.5);
        w->p90 = percentile(w->ms, w->runs, 0.9);
        w->p95 = percentile(w->ms, w->runs, 0.95);
        w->p99 = percentile(w->ms, w->runs, 0.99);
    }
    struct rusage ru;
    long long peak_rss = getrusage(RUSAGE_SELF, &ru) == 0 ? (long long)ru.ru_maxrss * 1024 : -1;

    printf("bench %s: %d row%s, %zu interleaved rounds, %llu thread%s\n", model_path, n_rows, n_rows == 1 ? "" : "s",
           rounds, threads, threads == 1 ? "" : "s");
    printf("%-24s %-32s %-14s %-6s %10s %10s %8s %7s\n", "spec", "model", "precision", "typing", "median ms", "p90 ms",
           "ratio", "spread");
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        char prec[64];
        cli_precisions_str(prec, sizeof(prec), w->precisions);
        printf("%-24s %-32s %-14s %-6s %10.3f %10.3f %8.3f %7.3f\n", w->spec, w->model, prec,
               w->strong ? "strong" : "weak", w->median, w->p90, w->median / rows[0].median, w->p90 / w->median);
    }
    printf("(ratio = median / median of row 1; spread = p90 / median)\n");
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        printf("%s: runs %zu  min %.3f  mean %.3f  median %.3f  p90 %.3f  p95 %.3f  p99 %.3f  max %.3f ms  "
               "%.1f/s\n",
               w->spec, w->runs, w->min, w->mean, w->median, w->p90, w->p95, w->p99, w->max, 1e3 / w->mean);
    }

    if (json_path) {
        jf = fopen(json_path, "w");
        if (!jf) {
            rc = cli_fail("cannot write '%s'", json_path);
            goto done;
        }
        char cpu[256];
        struct utsname un;
        char os[256] = "unknown";
        cpu_model(cpu, sizeof(cpu));
        if (uname(&un) == 0) snprintf(os, sizeof(os), "%s %s %s", un.sysname, un.release, un.machine);
        fputs("{\"mixrt_version\": ", jf);
        cli_json_string(jf, mixrt_version());
        fputs(", \"machine\": {\"cpu\": ", jf);
        cli_json_string(jf, cpu);
        fprintf(jf, ", \"cores\": %ld, \"os\": ", sysconf(_SC_NPROCESSORS_ONLN));
        cli_json_string(jf, os);
        fputs("}, \"model\": ", jf);
        cli_json_string(jf, model_path);
        fputs(", \"rows\": [", jf);
        for (int r = 0; r < n_rows; r++) {
            struct row *w = &rows[r];
            char prec[64];
            const struct mixrt_build_options *o = mixrt_engine_options(w->e);
            cli_precisions_str(prec, sizeof(prec), w->precisions);
            fputs(r ? ",\n  {\"spec\": " : "\n  {\"spec\": ", jf);
            cli_json_string(jf, w->spec);
            fputs(", \"model\": ", jf);
            cli_json_string(jf, w->model);
            fputs(", \"precision\": ", jf);
            cli_json_string(jf, prec);
            fprintf(jf, ", \"typing\": \"%s\", \"backend\": ", w->strong ? "strong" : "weak");
            cli_json_string(jf, o && o->backend ? o->backend : "cpu");
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
            fputs(", \"ratio_to_first\": ", jf);
            /* row 1 is exactly 1 by definition, whatever its median */
            json_num(jf, r == 0 ? 1.0 : w->median / rows[0].median);
            fprintf(jf, ", \"peak_rss_bytes\": %lld}", peak_rss);
        }
        fputs("]}\n", jf);
        int bad = fclose(jf) != 0;
        jf = NULL;
        if (bad) {
            rc = cli_fail("cannot write '%s'", json_path);
            goto done;
        }
    }
    rc = 0;
done:
    if (jf) fclose(jf);
    for (int r = 0; r < n_rows; r++) {
        struct row *w = &rows[r];
        if (w->outs)
            for (size_t i = 0; i < w->io.n_out; i++) mixrt_tensor_destroy(ctx, w->outs[i]);
        free(w->outs);
        free(w->ms);
        cli_inputs_free(ctx, &w->in);
        cli_io_free(&w->io);
        mixrt_engine_destroy(w->e);
        free(model_copies[r]);
    }
    mixrt_context_destroy(ctx);
    cli_build_args_free(&b);
    return rc;
}
