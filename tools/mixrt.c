/* mixrt.c - the mixrt command line (contract in DESIGN.md). Every failure ends in one
 * line "mixrt: error: ..." on stderr and exit status 1 (2 for usage errors); notes go
 * to stderr as "mixrt: note: ...". */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mixrt/mixrt.h"
#include "mixrt/mixrt_io.h"
#include "mixrt/mixrt_onnx.h"

#include "commands.h"

#define MAX_INPUTS 256
#define MAX_SHAPES 64

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mixrt: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see 'mixrt help')\n", stderr);
    va_end(ap);
    exit(2);
}

/* Prints the context's message as the one error line, after an optional prefix. Control
 * bytes (newlines, escapes) that a model smuggles into names are shown as \xNN, so the
 * contract (one plain line) holds whatever a message contains. */
static int fail_ctx_prefixed(mixrt_context_t ctx, mixrt_status st, const char *prefix) {
    const char *msg = mixrt_context_last_error(ctx);
    char raw[2048], line[8192];
    size_t n = 0;
    if (!msg || !msg[0]) msg = mixrt_status_string(st);
    snprintf(raw, sizeof(raw), "%s%s%s", prefix ? prefix : "", prefix ? ": " : "", msg);
    n = (size_t)snprintf(line, sizeof(line), "mixrt: error: ");
    for (const unsigned char *p = (const unsigned char *)raw; *p && n + 5 < sizeof(line); p++) {
        if (*p < 0x20 || *p == 0x7f) n += (size_t)snprintf(line + n, sizeof(line) - n, "\\x%02x", *p);
        else line[n++] = (char)*p;
    }
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
    return 1;
}

static int fail_ctx(mixrt_context_t ctx, mixrt_status st) { return fail_ctx_prefixed(ctx, st, NULL); }

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mixrt: note: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(FILE *f) {
    fputs("usage: mixrt <command> [options]\n"
          "\n"
          "commands:\n"
          "  run MODEL.onnx [--input NAME=PATH ...] [--output-dir DIR] [--output-format npy|pb]\n"
          "                 [--shape NAME:D1xD2x... ...] [--seed N] [--verbose]\n"
          "      Runs the model with the CPU reference executor. Inputs from .pb (ONNX TensorProto)\n"
          "      or .npy files; inputs not given get seeded random data (a note says so).\n"
          "      Outputs go to DIR/<output name>.npy|.pb, or are summarized on stdout.\n"
          "  inspect MODEL.onnx\n"
          "      Lists inputs, outputs and every layer (op, opset, input/output dtypes and shapes,\n"
          "      kernel) and the operators this build cannot run.\n"
          "  --version    prints the version\n"
          "  help         prints this text\n"
          "\n"
          "build, bench and check are not available in this version yet.\n",
          f);
}

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

struct input_arg {
    const char *name;
    const char *path;
};
struct shape_arg {
    const char *name;
    int rank;
    int64_t dims[MIXRT_MAX_RANK];
};

static bool parse_shape(const char *arg, struct shape_arg *out) {
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg) return false;
    static char names[MAX_SHAPES][256];
    static int used;
    if (used >= MAX_SHAPES || (size_t)(colon - arg) >= sizeof(names[0])) return false;
    memcpy(names[used], arg, (size_t)(colon - arg));
    names[used][colon - arg] = 0;
    out->name = names[used++];
    out->rank = 0;
    const char *p = colon + 1;
    if (!*p) return true; /* scalar */
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || errno || out->rank >= MIXRT_MAX_RANK) return false;
        out->dims[out->rank++] = v;
        if (*end == 'x' || *end == 'X' || *end == ',') end++;
        else if (*end) return false;
        p = end;
    }
    return true;
}

static uint64_t rng_state;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Seeded random data of the input's dtype: floats uniform in [-1, 1), integers in
 * [0, 4), bools 0/1. Never all zeros. */
static mixrt_status random_input(mixrt_context_t ctx, const struct mixrt_value_info *vi,
                                 const struct shape_arg *shape, struct mixrt_tensor **out) {
    int64_t dims[MIXRT_MAX_RANK];
    int rank = vi->rank;
    mixrt_dtype dt = vi->dtype == MIXRT_DTYPE_UNDEFINED ? MIXRT_DTYPE_F32 : vi->dtype;
    if (shape) {
        rank = shape->rank;
        memcpy(dims, shape->dims, sizeof(dims));
    } else {
        if (rank < 0) rank = 0;
        for (int i = 0; i < rank; i++) {
            dims[i] = vi->dims[i] >= 0 ? vi->dims[i] : 1;
            if (vi->dims[i] < 0)
                note("input '%s' dim %d ('%s') is not fixed: using 1 (set it with --shape %s:...)", vi->name, i,
                     vi->dim_params[i] ? vi->dim_params[i] : "?", vi->name);
        }
    }
    mixrt_status st = mixrt_tensor_create(ctx, dt, rank, dims, out);
    if (st != MIXRT_STATUS_OK) return st;
    struct mixrt_tensor *t = *out;
    size_t n = mixrt_tensor_numel(t);
    if (dt == MIXRT_DTYPE_STRING) return MIXRT_STATUS_OK;
    double *tmp = malloc((n ? n : 1) * sizeof(double));
    if (!tmp) {
        mixrt_tensor_destroy(ctx, t);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next();
        if (dt == MIXRT_DTYPE_F32 || dt == MIXRT_DTYPE_F64 || dt == MIXRT_DTYPE_F16 || dt == MIXRT_DTYPE_BF16)
            tmp[i] = (double)(r >> 11) * 0x1p-52 - 1.0;
        else if (dt == MIXRT_DTYPE_BOOL) tmp[i] = (double)(r & 1);
        else tmp[i] = (double)(r % 4);
    }
    st = mixrt_convert(t->data, dt, tmp, MIXRT_DTYPE_F64, n);
    free(tmp);
    if (st != MIXRT_STATUS_OK) mixrt_tensor_destroy(ctx, t);
    return st;
}

/* Reads one --input file and adapts it to the declared input where the contract says
 * so: f32 .npy into a bf16/f16 input is rounded (RNE), u16 .npy into bf16 is raw bits. */
static mixrt_status load_input(mixrt_context_t ctx, const struct mixrt_value_info *vi, const char *path,
                               struct mixrt_tensor **out) {
    mixrt_status st;
    struct mixrt_tensor *t = NULL;
    if (has_suffix(path, ".npy")) {
        st = mixrt_npy_read(ctx, path, &t);
        if (st != MIXRT_STATUS_OK) return st;
        if (vi->dtype == MIXRT_DTYPE_BF16 && t->dtype == MIXRT_DTYPE_U16) {
            t->dtype = MIXRT_DTYPE_BF16; /* same size: the bits are taken as they are */
            note("input '%s': uint16 data from '%s' taken as raw bf16 bits", vi->name, path);
        } else if ((vi->dtype == MIXRT_DTYPE_BF16 || vi->dtype == MIXRT_DTYPE_F16) && t->dtype == MIXRT_DTYPE_F32) {
            struct mixrt_tensor *c;
            st = mixrt_tensor_create(ctx, vi->dtype, t->rank, t->dims, &c);
            if (st != MIXRT_STATUS_OK) {
                mixrt_tensor_destroy(ctx, t);
                return st;
            }
            mixrt_convert(c->data, c->dtype, t->data, t->dtype, mixrt_tensor_numel(t));
            mixrt_tensor_destroy(ctx, t);
            t = c;
            note("input '%s': f32 data from '%s' rounded to %s (round to nearest even)", vi->name, path,
                 mixrt_dtype_name(vi->dtype));
        }
    } else if (has_suffix(path, ".pb")) {
        st = mixrt_pb_read(ctx, path, &t, NULL);
        if (st != MIXRT_STATUS_OK) return st;
    } else {
        fprintf(stderr, "mixrt: error: input file '%s' for '%s' must end in .pb or .npy\n", path, vi->name);
        exit(1);
    }
    *out = t;
    return MIXRT_STATUS_OK;
}

static void safe_file_name(char *dst, size_t size, const char *name) {
    size_t j = 0;
    for (const char *p = name; *p && j + 1 < size; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                  c == '.';
        dst[j++] = ok ? c : '_';
    }
    if (j == 0 || (j <= 2 && dst[0] == '.')) dst[j++] = '_';
    dst[j] = 0;
}

static void print_summary(const char *name, const struct mixrt_tensor *t) {
    char dims[512] = "[";
    size_t off = 1;
    for (int i = 0; i < t->rank && off < sizeof(dims); i++)
        off += (size_t)snprintf(dims + off, sizeof(dims) - off, i ? ",%lld" : "%lld", (long long)t->dims[i]);
    if (off < sizeof(dims)) snprintf(dims + off, sizeof(dims) - off, "]");
    size_t n = mixrt_tensor_numel(t);
    printf("%s: %s %s", name, mixrt_dtype_name(t->dtype), dims);
    if (t->dtype == MIXRT_DTYPE_STRING) {
        const struct mixrt_string *s = t->data;
        printf(" =");
        for (size_t i = 0; i < n && i < 6; i++) printf(" \"%s\"", s[i].ptr ? s[i].ptr : "");
        printf("%s\n", n > 6 ? " ..." : "");
        return;
    }
    double *v = malloc((n ? n : 1) * sizeof(double));
    if (!v || (n && mixrt_convert(v, MIXRT_DTYPE_F64, t->data, t->dtype, n) != MIXRT_STATUS_OK)) {
        printf("\n");
        free(v);
        return;
    }
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < mn) mn = v[i];
        if (v[i] > mx) mx = v[i];
        sum += v[i];
    }
    if (n) printf(" min %.6g max %.6g mean %.6g", mn, mx, sum / (double)n);
    printf(" =");
    for (size_t i = 0; i < n && i < 6; i++) printf(" %.6g", v[i]);
    printf("%s\n", n > 6 ? " ..." : "");
    free(v);
}

static int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *out_dir = NULL, *fmt = "npy";
    struct input_arg in_args[MAX_INPUTS];
    struct shape_arg shapes[MAX_SHAPES];
    int n_in_args = 0, n_shapes = 0, verbose = 0;
    unsigned long long seed = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define OPTVAL(flag)                                                                                                 \
    (!strcmp(a, flag) ? (i + 1 < argc ? (val = argv[++i]) : (die_usage("%s needs a value", flag), NULL))             \
                      : (!strncmp(a, flag "=", strlen(flag) + 1) ? (val = a + strlen(flag) + 1) : NULL))
        if (OPTVAL("--input")) {
            const char *eq = strchr(val, '=');
            if (!eq || eq == val || !eq[1]) die_usage("--input takes NAME=PATH, got '%s'", val);
            if (n_in_args >= MAX_INPUTS) die_usage("too many --input options");
            static char names[MAX_INPUTS][512];
            if ((size_t)(eq - val) >= sizeof(names[0])) die_usage("input name too long");
            memcpy(names[n_in_args], val, (size_t)(eq - val));
            names[n_in_args][eq - val] = 0;
            in_args[n_in_args].name = names[n_in_args];
            in_args[n_in_args].path = eq + 1;
            n_in_args++;
        } else if (OPTVAL("--output-dir")) {
            out_dir = val;
        } else if (OPTVAL("--output-format")) {
            fmt = val;
            if (strcmp(fmt, "npy") && strcmp(fmt, "pb")) die_usage("--output-format must be npy or pb, not '%s'", fmt);
        } else if (OPTVAL("--shape")) {
            if (n_shapes >= MAX_SHAPES || !parse_shape(val, &shapes[n_shapes]))
                die_usage("--shape takes NAME:D1xD2x..., got '%s'", val);
            n_shapes++;
        } else if (OPTVAL("--seed")) {
            char *end;
            seed = strtoull(val, &end, 10);
            if (*end) die_usage("--seed takes a number, got '%s'", val);
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            verbose = 1;
        } else if (a[0] == '-' && a[1]) {
            die_usage("unknown option '%s' for run", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            die_usage("unexpected argument '%s'", a);
        }
#undef OPTVAL
    }
    if (!model_path) die_usage("run needs a model file");
    if (has_suffix(model_path, ".plan")) {
        fprintf(stderr, "mixrt: error: '%s': plan files are not supported by this version yet (run the .onnx model)\n",
                model_path);
        return 1;
    }
    rng_state = seed;

    mixrt_context_t ctx = NULL;
    mixrt_model_t model = NULL;
    struct mixrt_tensor *inputs[MAX_INPUTS] = {0};
    const char *in_names[MAX_INPUTS];
    struct mixrt_tensor **outputs = NULL;
    size_t n_inputs = 0, n_out = 0;
    int rc = 1;
    mixrt_status st = mixrt_context_create(NULL, &ctx);
    if (st != MIXRT_STATUS_OK) {
        fprintf(stderr, "mixrt: error: cannot create a context: %s\n", mixrt_status_string(st));
        return 1;
    }
    if (verbose) mixrt_context_set_log_level(ctx, MIXRT_LOG_VERBOSE);
    st = mixrt_model_load(ctx, model_path, &model);
    if (st != MIXRT_STATUS_OK) {
        rc = fail_ctx(ctx, st);
        goto done;
    }
    size_t n_decl = mixrt_model_input_count(model);
    /* Every --input must name a model input. */
    for (int i = 0; i < n_in_args; i++) {
        struct mixrt_value_info vi;
        size_t k;
        for (k = 0; k < n_decl; k++) {
            mixrt_model_get_input(model, k, &vi);
            if (!strcmp(vi.name, in_args[i].name)) break;
        }
        if (k == n_decl) {
            char list[512] = "";
            size_t off = 0;
            for (size_t j = 0; j < n_decl && off < sizeof(list); j++) {
                mixrt_model_get_input(model, j, &vi);
                if (!vi.has_initializer)
                    off += (size_t)snprintf(list + off, sizeof(list) - off, "%s'%s'", off ? ", " : "", vi.name);
            }
            fprintf(stderr, "mixrt: error: --input '%s': the model has no input of that name (its inputs: %s)\n",
                    in_args[i].name, list[0] ? list : "none");
            goto done;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(in_args[j].name, in_args[i].name)) {
                fprintf(stderr, "mixrt: error: --input '%s' is given twice\n", in_args[i].name);
                goto done;
            }
        st = load_input(ctx, &vi, in_args[i].path, &inputs[n_inputs]);
        if (st != MIXRT_STATUS_OK) {
            rc = fail_ctx(ctx, st);
            goto done;
        }
        in_names[n_inputs++] = vi.name;
    }
    for (int i = 0; i < n_shapes; i++) {
        size_t k;
        struct mixrt_value_info vi;
        for (k = 0; k < n_decl; k++) {
            mixrt_model_get_input(model, k, &vi);
            if (!strcmp(vi.name, shapes[i].name)) break;
        }
        if (k == n_decl) {
            fprintf(stderr, "mixrt: error: --shape '%s': the model has no input of that name\n", shapes[i].name);
            goto done;
        }
    }
    /* Inputs not given and without an initializer get seeded random data. */
    for (size_t k = 0; k < n_decl; k++) {
        struct mixrt_value_info vi;
        mixrt_model_get_input(model, k, &vi);
        bool given = false;
        for (size_t j = 0; j < n_inputs; j++)
            if (!strcmp(in_names[j], vi.name)) given = true;
        if (given || vi.has_initializer) continue;
        const struct shape_arg *sh = NULL;
        for (int j = 0; j < n_shapes; j++)
            if (!strcmp(shapes[j].name, vi.name)) sh = &shapes[j];
        if (!mixrt_dtype_is_supported(vi.dtype) && vi.dtype != MIXRT_DTYPE_UNDEFINED) {
            fprintf(stderr, "mixrt: error: input '%s' has dtype %s, which mixrt does not support\n", vi.name,
                    mixrt_dtype_name(vi.dtype));
            goto done;
        }
        st = random_input(ctx, &vi, sh, &inputs[n_inputs]);
        if (st != MIXRT_STATUS_OK) {
            char prefix[600];
            snprintf(prefix, sizeof(prefix), "input '%.500s' (not given, so random data of its declared shape)",
                     vi.name);
            rc = fail_ctx_prefixed(ctx, st, prefix);
            goto done;
        }
        char d[256];
        size_t off = 0;
        const struct mixrt_tensor *t = inputs[n_inputs];
        d[0] = 0;
        for (int i = 0; i < t->rank && off < sizeof(d); i++)
            off += (size_t)snprintf(d + off, sizeof(d) - off, i ? ",%lld" : "%lld", (long long)t->dims[i]);
        note("input '%s' not given: using seeded random %s [%s] (seed %llu)", vi.name, mixrt_dtype_name(t->dtype), d,
             seed);
        in_names[n_inputs++] = vi.name;
    }
    n_out = mixrt_model_output_count(model);
    outputs = calloc(n_out ? n_out : 1, sizeof(*outputs));
    if (!outputs) {
        fprintf(stderr, "mixrt: error: out of memory\n");
        goto done;
    }
    st = mixrt_model_run(model, n_inputs, in_names, (const struct mixrt_tensor *const *)inputs, outputs);
    if (st != MIXRT_STATUS_OK) {
        rc = fail_ctx(ctx, st);
        goto done;
    }
    if (out_dir) {
        if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "mixrt: error: cannot create output directory '%s': %s\n", out_dir, strerror(errno));
            goto done;
        }
    }
    bool widened_note = false;
    for (size_t i = 0; i < n_out; i++) {
        struct mixrt_value_info vi;
        mixrt_model_get_output(model, i, &vi);
        if (!out_dir) {
            print_summary(vi.name, outputs[i]);
            continue;
        }
        char fname[512], path[4096];
        safe_file_name(fname, sizeof(fname), vi.name);
        snprintf(path, sizeof(path), "%s/%s.%s", out_dir, fname, fmt);
        if (!strcmp(fmt, "pb")) {
            st = mixrt_pb_write(ctx, path, outputs[i], vi.name);
        } else if (outputs[i]->dtype == MIXRT_DTYPE_BF16) {
            struct mixrt_tensor *w;
            st = mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, outputs[i]->rank, outputs[i]->dims, &w);
            if (st == MIXRT_STATUS_OK) {
                mixrt_bf16_to_f32(outputs[i]->data, w->data, mixrt_tensor_numel(w));
                st = mixrt_npy_write(ctx, path, w);
                mixrt_tensor_destroy(ctx, w);
            }
            if (!widened_note) note("bf16 outputs are written to .npy widened to f32 (exact; NumPy has no bf16)");
            widened_note = true;
        } else {
            st = mixrt_npy_write(ctx, path, outputs[i]);
        }
        if (st != MIXRT_STATUS_OK) {
            rc = fail_ctx(ctx, st);
            goto done;
        }
        if (verbose) note("wrote %s", path);
    }
    rc = 0;
done:
    if (outputs)
        for (size_t i = 0; i < n_out; i++) mixrt_tensor_destroy(ctx, outputs[i]);
    free(outputs);
    for (size_t i = 0; i < n_inputs; i++) mixrt_tensor_destroy(ctx, inputs[i]);
    mixrt_model_destroy(model);
    mixrt_context_destroy(ctx);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("mixrt %s\n", mixrt_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return mixrt_cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "build") || !strcmp(cmd, "bench") || !strcmp(cmd, "check")) {
        fprintf(stderr, "mixrt: error: '%s' is not available in this version yet\n", cmd);
        return 2;
    }
    die_usage("unknown command '%s'", cmd);
}
