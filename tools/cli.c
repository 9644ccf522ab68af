/* cli.c - helpers shared by every mixrt subcommand (see cli.h). Invariant: a failure
 * reaches the user as exactly one line "mixrt: error: ..." (exit 1, or 2 for usage),
 * so nothing here writes an error any other way. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "engine/engine_impl.h"
#include "onnx/slim.h"
#include "mixrt/mixrt_io.h"

bool cli_notes_quiet;

void cli_die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mixrt: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see 'mixrt help')\n", stderr);
    va_end(ap);
    exit(2);
}

/* Control bytes that a model smuggles into names are shown as \xNN, so the contract
 * (one plain line) holds whatever a message contains. */
static void print_error_line(const char *msg) {
    char line[8192];
    size_t n = (size_t)snprintf(line, sizeof(line), "mixrt: error: ");
    for (const unsigned char *p = (const unsigned char *)msg; *p && n + 5 < sizeof(line); p++) {
        if (*p < 0x20 || *p == 0x7f) n += (size_t)snprintf(line + n, sizeof(line) - n, "\\x%02x", *p);
        else line[n++] = (char)*p;
    }
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}

int cli_fail(const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    print_error_line(msg);
    return 1;
}

int cli_fail_ctx_prefixed(mixrt_context_t ctx, mixrt_status st, const char *prefix) {
    const char *msg = ctx ? mixrt_context_last_error(ctx) : NULL;
    char raw[4096];
    if (!msg || !msg[0]) msg = mixrt_status_string(st);
    snprintf(raw, sizeof(raw), "%s%s%s", prefix ? prefix : "", prefix ? ": " : "", msg);
    print_error_line(raw);
    return 1;
}

int cli_fail_ctx(mixrt_context_t ctx, mixrt_status st) { return cli_fail_ctx_prefixed(ctx, st, NULL); }

void cli_note(const char *fmt, ...) {
    if (cli_notes_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("mixrt: note: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

bool cli_is_plan(const char *path) { return cli_has_suffix(path, ".plan"); }

const char *cli_opt_value(int argc, char **argv, int *i, const char *flag) {
    const char *a = argv[*i];
    size_t n = strlen(flag);
    if (!strcmp(a, flag)) {
        if (*i + 1 >= argc) cli_die_usage("%s needs a value", flag);
        return argv[++*i];
    }
    if (!strncmp(a, flag, n) && a[n] == '=') return a + n + 1;
    return NULL;
}

unsigned long long cli_parse_u64(const char *flag, const char *val) {
    char *end;
    errno = 0;
    if (!*val || *val == '-' || *val == '+' || *val == ' ') cli_die_usage("%s takes a number, got '%s'", flag, val);
    unsigned long long v = strtoull(val, &end, 10);
    if (*end || errno) cli_die_usage("%s takes a number, got '%s'", flag, val);
    return v;
}

double cli_parse_double(const char *flag, const char *val, double min) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (!*val || *end || errno || !isfinite(v) || v < min)
        cli_die_usage("%s takes a number >= %g, got '%s'", flag, min, val);
    return v;
}

/* ---- build options ---- */

const char cli_build_options_help[] =
    "build options:\n"
    "  --precision LIST              enabled precisions, comma list of fp32, fp16, bf16 (default fp32)\n"
    "  --strongly-typed              every tensor keeps its declared dtype (precisions ignored)\n"
    "  --backend cpu|cuda            target backend (default cpu)\n"
    "  --layer-precision GLOB:TYPE   nodes whose name matches GLOB run in TYPE (fp32|fp16|bf16);\n"
    "                                repeatable, or a comma list GLOB:TYPE,GLOB:TYPE\n"
    "  --precision-constraints none|prefer|obey\n"
    "                                how binding --layer-precision is (default none: a hint)\n"
    "  --unsupported-dtype error|fallback\n"
    "                                a dtype the backend cannot run: stop (default) or use f32\n"
    "  --shape NAME:D1xD2x...        fixes an input's dims (repeatable; also shapes random inputs;\n"
    "                                run/check/bench fix the dims a model leaves open: an --input\n"
    "                                file's, else 1, the random input's, and build for them)\n"
    "  --timing-cache FILE           kernel timings read from and written back to FILE (default\n"
    "                                $MIXRT_TIMING_CACHE, else ~/.cache/mixrt/timing.cache;\n"
    "                                MIXRT_TIMING_CACHE=off for none)\n"
    "  --require-full                a node the backend cannot run is an error, not a CPU fallback\n"
    "  --verbose                     log each layer's choice and the candidates refused\n";

/* The timing cache used when --timing-cache is not given: builds in separate processes
 * on one machine then make the same tactic choices (a plan and a run of its .onnx agree).
 * MIXRT_TIMING_CACHE names another file, or "off" for none; the default lives in
 * $XDG_CACHE_HOME/mixrt (or ~/.cache/mixrt). NULL when no folder can hold it. */
static const char *default_timing_cache(void) {
    static char path[4096];
    const char *env = getenv("MIXRT_TIMING_CACHE");
    if (env && *env) return strcmp(env, "off") ? env : NULL;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[3900];
    if (xdg && *xdg) snprintf(dir, sizeof(dir), "%s", xdg);
    else if (home && *home) snprintf(dir, sizeof(dir), "%s/.cache", home);
    else return NULL;
    (void)mkdir(dir, 0755);
    size_t n = strlen(dir);
    snprintf(dir + n, sizeof(dir) - n, "/mixrt");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return NULL;
    snprintf(path, sizeof(path), "%s/timing.cache", dir);
    return path;
}

void cli_build_args_init(struct cli_build_args *b) {
    memset(b, 0, sizeof(*b));
    mixrt_build_options_init(&b->opts);
    b->opts.layer_precisions = b->layer_precisions;
    b->opts.shapes = b->shapes;
    b->opts.timing_cache = default_timing_cache();
}

void cli_build_args_free(struct cli_build_args *b) {
    for (int i = 0; i < b->n_owned; i++) free(b->owned[i]);
    b->n_owned = 0;
}

static char *own_copy(struct cli_build_args *b, const char *s, size_t n) {
    if (b->n_owned >= (int)(sizeof(b->owned) / sizeof(b->owned[0]))) cli_die_usage("too many options");
    char *c = malloc(n + 1);
    if (!c) {
        cli_fail("out of memory");
        exit(1);
    }
    memcpy(c, s, n);
    c[n] = 0;
    b->owned[b->n_owned++] = c;
    return c;
}

static void parse_shape(struct cli_build_args *b, const char *arg) {
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg) cli_die_usage("--shape takes NAME:D1xD2x..., got '%s'", arg);
    if (b->opts.n_shapes >= CLI_MAX_SHAPES) cli_die_usage("too many --shape options (at most %d)", CLI_MAX_SHAPES);
    struct mixrt_input_shape *s = &b->shapes[b->opts.n_shapes];
    memset(s, 0, sizeof(*s));
    const char *p = colon + 1;
    while (*p) { /* empty: a scalar */
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9') cli_die_usage("--shape takes NAME:D1xD2x..., got '%s'", arg);
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || s->rank >= MIXRT_MAX_RANK)
            cli_die_usage("--shape takes NAME:D1xD2x... (at most %d dims), got '%s'", MIXRT_MAX_RANK, arg);
        s->dims[s->rank++] = v;
        if (*end == 'x' || *end == 'X' || *end == ',') {
            end++;
            if (!*end) cli_die_usage("--shape takes NAME:D1xD2x..., got '%s'", arg);
        } else if (*end) {
            cli_die_usage("--shape takes NAME:D1xD2x..., got '%s'", arg);
        }
        p = end;
    }
    for (size_t i = 0; i < b->opts.n_shapes; i++)
        if (strlen(b->shapes[i].name) == (size_t)(colon - arg) && !strncmp(b->shapes[i].name, arg, (size_t)(colon - arg)))
            cli_die_usage("--shape '%.*s' is given twice", (int)(colon - arg), arg);
    s->name = own_copy(b, arg, (size_t)(colon - arg));
    b->opts.n_shapes++;
}

static void parse_layer_precisions(struct cli_build_args *b, const char *arg) {
    const char *p = arg;
    if (!*p) cli_die_usage("--layer-precision takes GLOB:TYPE (TYPE fp32|fp16|bf16), got ''");
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = NULL;
        for (size_t k = 0; k < len; k++)
            if (p[k] == ':') colon = p + k;
        if (!colon || colon == p)
            cli_die_usage("--layer-precision takes GLOB:TYPE (TYPE fp32|fp16|bf16), got '%.*s'", (int)len, p);
        size_t tlen = len - (size_t)(colon + 1 - p);
        const char *t = colon + 1;
        mixrt_dtype dt;
        if (tlen == 4 && !strncmp(t, "fp32", 4)) dt = MIXRT_DTYPE_F32;
        else if (tlen == 4 && !strncmp(t, "fp16", 4)) dt = MIXRT_DTYPE_F16;
        else if (tlen == 4 && !strncmp(t, "bf16", 4)) dt = MIXRT_DTYPE_BF16;
        else
            cli_die_usage("--layer-precision '%.*s': TYPE must be fp32, fp16 or bf16, not '%.*s'", (int)len, p,
                          (int)tlen, t);
        if (b->opts.n_layer_precisions >= CLI_MAX_LAYER_PRECISIONS)
            cli_die_usage("too many --layer-precision entries (at most %d)", CLI_MAX_LAYER_PRECISIONS);
        b->layer_precisions[b->opts.n_layer_precisions].glob = own_copy(b, p, (size_t)(colon - p));
        b->layer_precisions[b->opts.n_layer_precisions].dtype = dt;
        b->opts.n_layer_precisions++;
        if (!comma) break;
        p = comma + 1;
        if (!*p) cli_die_usage("--layer-precision takes GLOB:TYPE (TYPE fp32|fp16|bf16), got '%s'", arg);
    }
}

bool cli_build_args_parse(struct cli_build_args *b, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    bool build_only = true;
    if ((v = cli_opt_value(argc, argv, i, "--precision"))) {
        mixrt_context_t ctx;
        unsigned bits = 0;
        if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) {
            cli_fail("cannot create a context");
            exit(1);
        }
        mixrt_status st = mixrt_precisions_parse(ctx, v, &bits);
        mixrt_context_destroy(ctx);
        if (st != MIXRT_STATUS_OK || !*v)
            cli_die_usage("--precision takes a comma list of fp32, fp16, bf16, got '%s'", v);
        b->opts.precisions = bits | MIXRT_PRECISION_FP32;
        b->precision_list = v;
    } else if (!strcmp(a, "--strongly-typed")) {
        b->opts.strongly_typed = 1;
    } else if ((v = cli_opt_value(argc, argv, i, "--backend"))) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda")) cli_die_usage("--backend must be cpu or cuda, not '%s'", v);
        b->opts.backend = v;
    } else if ((v = cli_opt_value(argc, argv, i, "--layer-precision"))) {
        parse_layer_precisions(b, v);
    } else if ((v = cli_opt_value(argc, argv, i, "--precision-constraints"))) {
        if (!strcmp(v, "none")) b->opts.constraints = MIXRT_CONSTRAINTS_NONE;
        else if (!strcmp(v, "prefer")) b->opts.constraints = MIXRT_CONSTRAINTS_PREFER;
        else if (!strcmp(v, "obey")) b->opts.constraints = MIXRT_CONSTRAINTS_OBEY;
        else cli_die_usage("--precision-constraints must be none, prefer or obey, not '%s'", v);
    } else if ((v = cli_opt_value(argc, argv, i, "--unsupported-dtype"))) {
        if (!strcmp(v, "error")) b->opts.unsupported_dtype = MIXRT_UNSUPPORTED_DTYPE_ERROR;
        else if (!strcmp(v, "fallback")) b->opts.unsupported_dtype = MIXRT_UNSUPPORTED_DTYPE_FALLBACK;
        else cli_die_usage("--unsupported-dtype must be error or fallback, not '%s'", v);
    } else if ((v = cli_opt_value(argc, argv, i, "--shape"))) {
        parse_shape(b, v);
        build_only = false;
    } else if ((v = cli_opt_value(argc, argv, i, "--timing-cache"))) {
        if (!*v) cli_die_usage("--timing-cache needs a file name, got ''");
        b->opts.timing_cache = v;
    } else if (!strcmp(a, "--require-full")) {
        b->opts.require_full = 1;
    } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
        b->opts.verbose = 1;
        build_only = false;
    } else {
        return false;
    }
    b->n_given++;
    if (build_only && !b->first_build_only) {
        /* the flag as typed, without "=VALUE" */
        const char *eq = strchr(a, '=');
        b->first_build_only = eq ? own_copy(b, a, (size_t)(eq - a)) : a;
    }
    return true;
}

void cli_precisions_str(char *buf, size_t size, unsigned precisions) {
    size_t off = 0;
    buf[0] = 0;
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{MIXRT_PRECISION_FP32, "fp32"}, {MIXRT_PRECISION_FP16, "fp16"}, {MIXRT_PRECISION_BF16, "bf16"}};
    for (size_t i = 0; i < 3; i++)
        if ((precisions & names[i].bit) && off < size)
            off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? "," : "", names[i].name);
    if (!buf[0]) snprintf(buf, size, "fp32");
}

/* ---- I/O descriptions ---- */

int cli_io_from_model(mixrt_model_t m, struct cli_io *io) {
    memset(io, 0, sizeof(*io));
    io->n_in = mixrt_model_input_count(m);
    io->n_out = mixrt_model_output_count(m);
    if (io->n_in > CLI_MAX_INPUTS) return cli_fail("the model has %zu inputs; mixrt's CLI takes at most %d", io->n_in, CLI_MAX_INPUTS);
    io->out = calloc(io->n_out ? io->n_out : 1, sizeof(*io->out));
    if (!io->out) return cli_fail("out of memory");
    for (size_t i = 0; i < io->n_in; i++) mixrt_model_get_input(m, i, &io->in[i]);
    for (size_t i = 0; i < io->n_out; i++) mixrt_model_get_output(m, i, &io->out[i]);
    return 0;
}

int cli_io_from_engine(mixrt_engine_t e, struct cli_io *io) {
    memset(io, 0, sizeof(*io));
    io->n_in = mixrt_engine_input_count(e);
    io->n_out = mixrt_engine_output_count(e);
    if (io->n_in > CLI_MAX_INPUTS) return cli_fail("the model has %zu inputs; mixrt's CLI takes at most %d", io->n_in, CLI_MAX_INPUTS);
    io->out = calloc(io->n_out ? io->n_out : 1, sizeof(*io->out));
    if (!io->out) return cli_fail("out of memory");
    for (size_t i = 0; i < io->n_in; i++)
        if (mixrt_engine_get_input(e, i, &io->in[i]) != MIXRT_STATUS_OK) return cli_fail("cannot describe input %zu", i);
    for (size_t i = 0; i < io->n_out; i++)
        if (mixrt_engine_get_output(e, i, &io->out[i]) != MIXRT_STATUS_OK) return cli_fail("cannot describe output %zu", i);
    return 0;
}

void cli_io_free(struct cli_io *io) {
    free(io->out);
    io->out = NULL;
}

void cli_input_arg_parse(const char *val, struct cli_input_arg *out) {
    const char *eq = strchr(val, '=');
    if (!eq || eq == val || !eq[1]) cli_die_usage("--input takes NAME=PATH, got '%s'", val);
    if ((size_t)(eq - val) >= sizeof(out->name)) cli_die_usage("--input name too long");
    memcpy(out->name, val, (size_t)(eq - val));
    out->name[eq - val] = 0;
    out->path = eq + 1;
}

/* ---- inputs ---- */

/* splitmix64: each input's stream starts from (seed, FNV-1a of its name), so the data
 * does not depend on the order or number of the model's inputs. */
static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t name_seed(unsigned long long seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    return (uint64_t)seed ^ h;
}

/* Floats uniform in [-1, 1) made in f32 (f64 inputs keep the double), integers in [0, 4),
 * bools 0/1. Never all zeros. */
static mixrt_status random_input(mixrt_context_t ctx, const struct mixrt_value_info *vi,
                                 const struct mixrt_input_shape *shape, unsigned long long seed,
                                 struct mixrt_tensor **out) {
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
                cli_note("input '%s' dim %d ('%s') is not fixed: using 1 (set it with --shape %s:...)", vi->name, i,
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
        *out = NULL;
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    uint64_t state = name_seed(seed, vi->name);
    bool is_float = mixrt_dtype_is_float(dt);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&state);
        if (is_float) {
            tmp[i] = (double)(r >> 11) * 0x1p-52 - 1.0;
            /* through f32 first: the f32 and 16-bit twins of a model get the same values */
            if (dt != MIXRT_DTYPE_F64) tmp[i] = (double)(float)tmp[i];
        } else if (dt == MIXRT_DTYPE_BOOL) {
            tmp[i] = (double)(r & 1);
        } else {
            /* 0 or 1: in range for any lookup of two rows or more (BERT's token_type_ids
             * index a table of 2; 0-3 made `mixrt bench bert.onnx` fail) and a valid mask */
            tmp[i] = (double)(r % 2);
        }
    }
    st = mixrt_convert(t->data, dt, tmp, MIXRT_DTYPE_F64, n);
    free(tmp);
    if (st != MIXRT_STATUS_OK) {
        mixrt_tensor_destroy(ctx, t);
        *out = NULL;
    }
    return st;
}

/* Reads one --input file and adapts it to the declared input where the contract says
 * so: f32 .npy into a bf16/f16 input is rounded (RNE), u16 .npy into bf16 is raw bits. */
static int load_input(mixrt_context_t ctx, const struct mixrt_value_info *vi, const char *path,
                      struct mixrt_tensor **out) {
    mixrt_status st;
    struct mixrt_tensor *t = NULL;
    if (cli_has_suffix(path, ".npy")) {
        st = mixrt_npy_read(ctx, path, &t);
        if (st != MIXRT_STATUS_OK) return cli_fail_ctx(ctx, st);
        if (vi->dtype == MIXRT_DTYPE_BF16 && t->dtype == MIXRT_DTYPE_U16) {
            t->dtype = MIXRT_DTYPE_BF16; /* same size: the bits are taken as they are */
            cli_note("input '%s': uint16 data from '%s' taken as raw bf16 bits", vi->name, path);
        } else if ((vi->dtype == MIXRT_DTYPE_BF16 || vi->dtype == MIXRT_DTYPE_F16) && t->dtype == MIXRT_DTYPE_F32) {
            struct mixrt_tensor *c;
            st = mixrt_tensor_create(ctx, vi->dtype, t->rank, t->dims, &c);
            if (st != MIXRT_STATUS_OK) {
                mixrt_tensor_destroy(ctx, t);
                return cli_fail_ctx(ctx, st);
            }
            mixrt_convert(c->data, c->dtype, t->data, t->dtype, mixrt_tensor_numel(t));
            mixrt_tensor_destroy(ctx, t);
            t = c;
            cli_note("input '%s': f32 data from '%s' rounded to %s (round to nearest even)", vi->name, path,
                     mixrt_dtype_name(vi->dtype));
        }
    } else if (cli_has_suffix(path, ".pb")) {
        st = mixrt_pb_read(ctx, path, &t, NULL);
        if (st != MIXRT_STATUS_OK) return cli_fail_ctx(ctx, st);
    } else {
        return cli_fail("input file '%s' for '%s' must end in .pb or .npy", path, vi->name);
    }
    *out = t;
    return 0;
}

static void dims_text(char *d, size_t size, const struct mixrt_tensor *t) {
    size_t off = 0;
    d[0] = 0;
    for (int i = 0; i < t->rank && off < size; i++)
        off += (size_t)snprintf(d + off, size - off, i ? ",%lld" : "%lld", (long long)t->dims[i]);
}

int cli_inputs_prepare(mixrt_context_t ctx, const struct cli_io *io, const struct cli_input_arg *args, int n_args,
                       const struct mixrt_input_shape *shapes, int n_shapes, unsigned long long seed,
                       struct cli_inputs *in) {
    memset(in, 0, sizeof(*in));
    /* Every --input and --shape must name a model input. */
    for (int i = 0; i < n_args; i++) {
        size_t k;
        for (k = 0; k < io->n_in; k++)
            if (!strcmp(io->in[k].name, args[i].name)) break;
        if (k == io->n_in) {
            char list[512] = "";
            size_t off = 0;
            for (size_t j = 0; j < io->n_in && off < sizeof(list); j++)
                if (!io->in[j].has_initializer)
                    off += (size_t)snprintf(list + off, sizeof(list) - off, "%s'%s'", off ? ", " : "", io->in[j].name);
            return cli_fail("--input '%s': the model has no input of that name (its inputs: %s)", args[i].name,
                            list[0] ? list : "none");
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(args[j].name, args[i].name)) return cli_fail("--input '%s' is given twice", args[i].name);
        if (load_input(ctx, &io->in[k], args[i].path, &in->t[in->n])) return 1;
        in->names[in->n++] = io->in[k].name;
    }
    for (int i = 0; i < n_shapes; i++) {
        size_t k;
        for (k = 0; k < io->n_in; k++)
            if (!strcmp(io->in[k].name, shapes[i].name)) break;
        if (k == io->n_in) return cli_fail("--shape '%s': the model has no input of that name", shapes[i].name);
    }
    /* Inputs not given and without an initializer get seeded random data. */
    for (size_t k = 0; k < io->n_in; k++) {
        const struct mixrt_value_info *vi = &io->in[k];
        bool given = false;
        for (size_t j = 0; j < in->n; j++)
            if (!strcmp(in->names[j], vi->name)) given = true;
        if (given || vi->has_initializer) continue;
        const struct mixrt_input_shape *sh = NULL;
        for (int j = 0; j < n_shapes; j++)
            if (!strcmp(shapes[j].name, vi->name)) sh = &shapes[j];
        if (!mixrt_dtype_is_supported(vi->dtype) && vi->dtype != MIXRT_DTYPE_UNDEFINED)
            return cli_fail("input '%s' has dtype %s, which mixrt does not support", vi->name,
                            mixrt_dtype_name(vi->dtype));
        mixrt_status st = random_input(ctx, vi, sh, seed, &in->t[in->n]);
        if (st != MIXRT_STATUS_OK) {
            char prefix[600];
            snprintf(prefix, sizeof(prefix), "input '%.500s' (not given, so random data of its declared shape)",
                     vi->name);
            return cli_fail_ctx_prefixed(ctx, st, prefix);
        }
        char d[256];
        dims_text(d, sizeof(d), in->t[in->n]);
        cli_note("input '%s' not given: using seeded random %s [%s] (seed %llu)", vi->name,
                 mixrt_dtype_name(in->t[in->n]->dtype), d, seed);
        in->names[in->n++] = vi->name;
    }
    return 0;
}

void cli_inputs_free(mixrt_context_t ctx, struct cli_inputs *in) {
    for (size_t i = 0; i < in->n; i++) mixrt_tensor_destroy(ctx, in->t[i]);
    in->n = 0;
}

/* ---- outputs ---- */

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

void cli_print_summary(const char *name, const struct mixrt_tensor *t) {
    char dims[512];
    dims_text(dims, sizeof(dims), t);
    size_t n = mixrt_tensor_numel(t);
    printf("%s: %s [%s]", name, mixrt_dtype_name(t->dtype), dims);
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

int cli_outputs_write(mixrt_context_t ctx, const struct cli_io *io, struct mixrt_tensor **outputs,
                      const char *out_dir, const char *fmt, bool verbose) {
    if (out_dir && mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return cli_fail("cannot create output directory '%s': %s", out_dir, strerror(errno));
    bool widened_note = false;
    for (size_t i = 0; i < io->n_out; i++) {
        const char *name = io->out[i].name;
        if (!out_dir) {
            cli_print_summary(name, outputs[i]);
            continue;
        }
        char fname[512], path[4096];
        mixrt_status st;
        safe_file_name(fname, sizeof(fname), name);
        snprintf(path, sizeof(path), "%s/%s.%s", out_dir, fname, fmt);
        if (!strcmp(fmt, "pb")) {
            st = mixrt_pb_write(ctx, path, outputs[i], name);
        } else if (outputs[i]->dtype == MIXRT_DTYPE_BF16) {
            struct mixrt_tensor *w;
            st = mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, outputs[i]->rank, outputs[i]->dims, &w);
            if (st == MIXRT_STATUS_OK) {
                mixrt_bf16_to_f32(outputs[i]->data, w->data, mixrt_tensor_numel(w));
                st = mixrt_npy_write(ctx, path, w);
                mixrt_tensor_destroy(ctx, w);
            }
            if (!widened_note) cli_note("bf16 outputs are written to .npy widened to f32 (exact; NumPy has no bf16)");
            widened_note = true;
        } else {
            st = mixrt_npy_write(ctx, path, outputs[i]);
        }
        if (st != MIXRT_STATUS_OK) return cli_fail_ctx(ctx, st);
        if (verbose) cli_note("wrote %s", path);
    }
    return 0;
}

/* ---- engines and misc ---- */

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int cli_context_create(bool verbose, mixrt_context_t *out) {
    mixrt_status st = mixrt_context_create(NULL, out);
    if (st != MIXRT_STATUS_OK) return cli_fail("cannot create a context: %s", mixrt_status_string(st));
    if (verbose) mixrt_context_set_log_level(*out, MIXRT_LOG_VERBOSE);
    return 0;
}

/* ---- open inputs ----
 * A build for open dims gives a generic engine (no static plan: ResNet-50 ~28 % slower), so
 * run/check/bench fix them before building. Loading the model to ask costs its weights'
 * memory and time, and building twice left ResNet-50's peak 40 MiB higher: the file's
 * declared inputs come from a walk of its bytes on a read-only mapping instead
 * (mixrt_onnx_declared_inputs; the weights' pages are never touched). */
int cli_shapes_for_open_inputs(mixrt_context_t ctx, struct cli_build_args *b, const char *model,
                               const struct cli_input_arg *args, int n_args) {
    int added = 0;
    if (cli_is_plan(model)) return 0;
    int fd = open(model, O_RDONLY);
    struct stat sb;
    if (fd < 0) return 0; /* the build reports it */
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0) {
        close(fd);
        return 0;
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return 0;
    struct mixrt_onnx_decl decl[CLI_MAX_INPUTS];
    int nd = mixrt_onnx_declared_inputs(map, (size_t)sb.st_size, decl, CLI_MAX_INPUTS);
    for (int k = 0; k < nd && k < CLI_MAX_INPUTS && b->opts.n_shapes < CLI_MAX_SHAPES; k++) {
        const struct mixrt_onnx_decl *dc = &decl[k];
        if (dc->name_len >= 512) continue;
        char nm[512];
        memcpy(nm, dc->name, dc->name_len);
        nm[dc->name_len] = 0;
        bool open = false, given = false;
        for (int d = 0; d < dc->rank; d++) open = open || dc->dims[d] < 0;
        for (size_t s = 0; s < b->opts.n_shapes && !given; s++) given = !strcmp(b->shapes[s].name, nm);
        if (!open || given) continue;
        const struct cli_input_arg *file = NULL;
        for (int i = 0; i < n_args && !file; i++)
            if (!strcmp(args[i].name, nm)) file = &args[i];
        struct mixrt_input_shape *s = &b->shapes[b->opts.n_shapes];
        memset(s, 0, sizeof(*s));
        char d[256];
        if (file) {
            struct mixrt_tensor *t = NULL;
            mixrt_status st = cli_has_suffix(file->path, ".npy")  ? mixrt_npy_read(ctx, file->path, &t)
                              : cli_has_suffix(file->path, ".pb") ? mixrt_pb_read(ctx, file->path, &t, NULL)
                                                                  : MIXRT_STATUS_UNSUPPORTED;
            if (st != MIXRT_STATUS_OK || !t) {
                mixrt_context_clear_error(ctx); /* the run reports it */
                continue;
            }
            s->name = file->name;
            s->rank = t->rank;
            for (int i = 0; i < t->rank; i++) s->dims[i] = t->dims[i];
            dims_text(d, sizeof(d), t);
            cli_note("input '%s': the model leaves its dims open; building for the --input file's [%s] (--shape "
                     "chooses)", nm, d);
            mixrt_tensor_destroy(ctx, t);
        } else {
            /* No file: the seeded random input has 1 in each open dim (random_input), and the
             * engine is built for exactly that (trtexec's rule for shapes not given). */
            char *copy = (size_t)b->n_owned < sizeof(b->owned) / sizeof(b->owned[0]) ? strdup(nm) : NULL;
            if (!copy) continue;
            b->owned[b->n_owned++] = copy;
            s->name = copy;
            s->rank = dc->rank;
            size_t off = 0;
            d[0] = 0;
            for (int i = 0; i < dc->rank; i++) {
                s->dims[i] = dc->dims[i] >= 0 ? dc->dims[i] : 1;
                off += (size_t)snprintf(d + off, off < sizeof(d) ? sizeof(d) - off : 0, i ? ",%lld" : "%lld",
                                        (long long)s->dims[i]);
            }
            cli_note("input '%s': the model leaves its dims open and no --input or --shape sets them; building for "
                     "[%s], 1 in each open dim (--shape chooses)", nm, d);
        }
        b->opts.n_shapes++;
        added++;
    }
    munmap(map, (size_t)sb.st_size);
    return added;
}

int cli_engine_open(mixrt_context_t ctx, const char *path, const struct cli_build_args *b, mixrt_engine_t *out,
                    double *build_ms) {
    double t0 = cli_now_ms();
    mixrt_status st;
    if (cli_is_plan(path)) {
        if (b && b->first_build_only)
            cli_die_usage("%s is a build option: '%s' is a plan, built already (give the .onnx model to build)",
                          b->first_build_only, path);
        st = mixrt_engine_load(ctx, path, out);
    } else {
        st = mixrt_engine_build(ctx, path, b ? &b->opts : NULL, out);
        /* the library's own message is used when it already says so */
        if ((st == MIXRT_STATUS_UNSUPPORTED || st == MIXRT_STATUS_INVALID_ARGUMENT) && b && b->opts.backend &&
            !strcmp(b->opts.backend, "cuda") && !strstr(mixrt_context_last_error(ctx), "CUDA"))
            return cli_fail_ctx_prefixed(ctx, st, "this build has no CUDA backend (--backend cuda)");
    }
    if (st != MIXRT_STATUS_OK) return cli_fail_ctx(ctx, st);
    if (build_ms) *build_ms = cli_now_ms() - t0;
    return 0;
}

const char *cli_precision_name(mixrt_dtype dt) {
    switch (dt) {
    case MIXRT_DTYPE_UNDEFINED: return "-";
    case MIXRT_DTYPE_F32: return "fp32";
    case MIXRT_DTYPE_F16: return "fp16";
    case MIXRT_DTYPE_BF16: return "bf16";
    default: return mixrt_dtype_name(dt);
    }
}

mixrt_dtype cli_node_precision(mixrt_engine_t e, int node) {
    const struct mixrt_graph *g = mixrt_engine_graph(e);
    for (int s = 0; s < g->n_nodes; s++) {
        struct mixrt_layer_info li;
        if ((g->order ? g->order[s] : s) == node && mixrt_engine_get_layer(e, (size_t)s, &li) == MIXRT_STATUS_OK)
            return li.precision;
    }
    return MIXRT_DTYPE_UNDEFINED;
}

/* Counts by distinct string, in order of first appearance. */
struct tally {
    const char *key[256];
    int count[256];
    int n, other;
};
static void tally_add(struct tally *t, const char *key) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->key[i], key)) {
            t->count[i]++;
            return;
        }
    if (t->n < 256) {
        t->key[t->n] = key;
        t->count[t->n++] = 1;
    } else {
        t->other++;
    }
}
static void tally_print(const struct tally *t, const char *indent, const char *what) {
    printf("%s%s:", indent, what);
    for (int i = 0; i < t->n; i++) printf("%s %s %d", i ? "," : "", t->key[i], t->count[i]);
    if (t->other) printf(", other %d", t->other);
    printf("\n");
}

void cli_print_layer_totals(mixrt_engine_t e, const char *indent) {
    static struct tally prec, kern;
    memset(&prec, 0, sizeof(prec));
    memset(&kern, 0, sizeof(kern));
    size_t n = mixrt_engine_layer_count(e);
    for (size_t i = 0; i < n; i++) {
        struct mixrt_layer_info li;
        if (mixrt_engine_get_layer(e, i, &li) != MIXRT_STATUS_OK) continue;
        tally_add(&prec, cli_precision_name(li.precision));
        tally_add(&kern, li.kernel ? li.kernel : "?");
    }
    tally_print(&prec, indent, "layers per precision");
    tally_print(&kern, indent, "layers per kernel");
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}
