/* check.c - `mixrt check MODEL [build options]`: the engine against the f64 reference
 * engine on the same inputs: per-output errors with PASS/FAIL, then a per-layer trace
 * matched by value name and the first layer where the error jumps. Errors are computed
 * in f64 on copies, so the check never changes what either engine computes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "engine/engine_impl.h"

#define JUMP_FACTOR 10.0
#define JUMP_MIN 1e-3
#define TOP_JUMPS 5

/* A reference intermediate, widened to f64. */
struct ref_value {
    char *name;
    double *v;
    size_t n;
    int rank;
    int64_t dims[MIXRT_MAX_RANK];
};

/* One matched intermediate of the engine, in execution order. */
struct trace_entry {
    int node, value;
    double rel, max_abs;
};

struct check_state {
    struct ref_value *refs;
    size_t n_refs, cap_refs;
    struct trace_entry *trace;
    size_t n_trace, cap_trace;
    double *err_by_value; /* per planned-graph value: rel error, or -1 when not matched */
    int n_values;
    size_t skipped_shape;
    /* the first of them in execution order: where a data-dependent count (NonZero, TopK, NMS)
     * first came out differently */
    int first_diff_node, first_diff_value;
    int first_diff_rank, first_diff_ref_rank;
    int64_t first_diff_dims[MIXRT_MAX_RANK], first_diff_ref_dims[MIXRT_MAX_RANK];
    size_t ref_bytes, ref_budget, refs_dropped; /* the reference's intermediates kept, in bytes */
    bool oom;
};

static double *to_f64(const struct mixrt_tensor *t, size_t *n) {
    *n = mixrt_tensor_numel(t);
    if (!mixrt_dtype_is_float(t->dtype) && !mixrt_dtype_is_int(t->dtype) && t->dtype != MIXRT_DTYPE_BOOL) return NULL;
    double *v = malloc((*n ? *n : 1) * sizeof(double));
    if (!v) return NULL;
    if (*n && mixrt_convert(v, MIXRT_DTYPE_F64, t->data, t->dtype, *n) != MIXRT_STATUS_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* dims as "[a, b, c]" into buf. */
static const char *dims_str(int rank, const int64_t *dims, char *buf, size_t size) {
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < rank && at < size; d++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", d ? ", " : "", (long long)dims[d]);
    if (at < size) snprintf(buf + at, size - at, "]");
    return buf;
}

/* Relative-norm error ||a-b||_2/||b||_2 (the absolute norm when b is all zeros) and the
 * max absolute error. Equal elements (both NaN, the same infinity) count as no error;
 * any other non-finite difference makes both errors infinite. */
static void compare(const double *a, const double *b, size_t n, double *rel, double *max_abs) {
    double sd = 0, sb = 0, mx = 0;
    bool nonfinite = false;
    for (size_t i = 0; i < n; i++) {
        if ((isnan(a[i]) && isnan(b[i])) || a[i] == b[i]) {
            if (isfinite(b[i])) sb += b[i] * b[i];
            continue;
        }
        double d = a[i] - b[i];
        if (!isfinite(d)) {
            nonfinite = true;
            continue;
        }
        sd += d * d;
        sb += b[i] * b[i];
        if (fabs(d) > mx) mx = fabs(d);
    }
    if (nonfinite) {
        *rel = *max_abs = INFINITY;
        return;
    }
    *max_abs = mx;
    *rel = sb > 0 ? sqrt(sd) / sqrt(sb) : sqrt(sd);
}

static const struct ref_value *find_ref(const struct check_state *s, const char *name) {
    for (size_t i = 0; i < s->n_refs; i++)
        if (!strcmp(s->refs[i].name, name)) return &s->refs[i];
    return NULL;
}

static void observe_ref(void *user, const struct mixrt_graph *g, int node, int value, const struct mixrt_tensor *t) {
    struct check_state *s = user;
    (void)node;
    if (s->oom || !t || value < 0 || value >= g->n_values) return;
    const char *name = g->values[value].name;
    if (!name || find_ref(s, name)) return;
    /* Past the budget the trace stops (smaller values after it too): the outputs are compared in
     * full all the same. */
    size_t bytes = mixrt_tensor_numel(t) * sizeof(double);
    if (s->refs_dropped || s->ref_bytes + bytes > s->ref_budget) {
        s->refs_dropped++;
        return;
    }
    if (s->n_refs == s->cap_refs) {
        size_t cap = s->cap_refs ? 2 * s->cap_refs : 64;
        struct ref_value *r = realloc(s->refs, cap * sizeof(*r));
        if (!r) {
            s->oom = true;
            return;
        }
        s->refs = r;
        s->cap_refs = cap;
    }
    struct ref_value *r = &s->refs[s->n_refs];
    r->v = to_f64(t, &r->n);
    if (!r->v) return; /* strings and the like are not compared */
    r->name = strdup(name);
    if (!r->name) {
        free(r->v);
        s->oom = true;
        return;
    }
    r->rank = t->rank;
    memcpy(r->dims, t->dims, sizeof(r->dims));
    s->n_refs++;
    s->ref_bytes += bytes;
}

static void observe_engine(void *user, const struct mixrt_graph *g, int node, int value,
                           const struct mixrt_tensor *t) {
    struct check_state *s = user;
    if (s->oom || !t || value < 0 || value >= g->n_values || value >= s->n_values) return;
    const char *name = g->values[value].name;
    const struct ref_value *r = name ? find_ref(s, name) : NULL;
    /* Inside a channels-last region (the layout pass) value v lives as "<v>_nhwc", the
     * model's NCHW tensor transposed by [0, 2, 3, 1]: compared after transposing back. */
    bool nhwc = false;
    size_t len = name ? strlen(name) : 0;
    if (!r && len > 5 && !strcmp(name + len - 5, "_nhwc") && t->rank == 4) {
        char base[512];
        if (len - 5 < sizeof(base)) {
            memcpy(base, name, len - 5);
            base[len - 5] = 0;
            r = find_ref(s, base);
            nhwc = r != NULL;
        }
    }
    if (!r) return; /* inserted casts and the like have names the model does not */
    int64_t want[MIXRT_MAX_RANK];
    memcpy(want, t->dims, sizeof(want));
    if (nhwc) want[0] = t->dims[0], want[1] = t->dims[3], want[2] = t->dims[1], want[3] = t->dims[2];
    if (r->rank != t->rank || memcmp(r->dims, want, (size_t)t->rank * sizeof(int64_t))) {
        if (!s->skipped_shape++) {
            s->first_diff_node = node, s->first_diff_value = value;
            s->first_diff_rank = t->rank, s->first_diff_ref_rank = r->rank;
            memcpy(s->first_diff_dims, want, sizeof(want));
            memcpy(s->first_diff_ref_dims, r->dims, sizeof(r->dims));
        }
        return;
    }
    size_t n;
    double *a = to_f64(t, &n);
    if (!a) return;
    if (nhwc) {
        double *p = malloc((n ? n : 1) * sizeof(double));
        if (!p) {
            free(a);
            s->oom = true;
            return;
        }
        size_t N = (size_t)t->dims[0], H = (size_t)t->dims[1], W = (size_t)t->dims[2], C = (size_t)t->dims[3];
        for (size_t b0 = 0; b0 < N; b0++)
            for (size_t h = 0; h < H; h++)
                for (size_t w = 0; w < W; w++)
                    for (size_t c = 0; c < C; c++)
                        p[((b0 * C + c) * H + h) * W + w] = a[((b0 * H + h) * W + w) * C + c];
        free(a);
        a = p;
    }
    if (s->n_trace == s->cap_trace) {
        size_t cap = s->cap_trace ? 2 * s->cap_trace : 64;
        struct trace_entry *e = realloc(s->trace, cap * sizeof(*e));
        if (!e) {
            free(a);
            s->oom = true;
            return;
        }
        s->trace = e;
        s->cap_trace = cap;
    }
    struct trace_entry *e = &s->trace[s->n_trace++];
    e->node = node;
    e->value = value;
    compare(a, r->v, n, &e->rel, &e->max_abs);
    s->err_by_value[value] = e->rel;
    free(a);
}

/* A value's error as seen by its consumers: its own when matched; through an inserted
 * node (a cast) the largest of that node's inputs; 0 for inputs and weights. */
static double value_error(const struct check_state *s, const struct mixrt_graph *g, int v, int depth) {
    if (v < 0 || v >= s->n_values) return 0;
    if (s->err_by_value[v] >= 0) return s->err_by_value[v];
    int p = g->values[v].producer;
    if (p < 0 || p >= g->n_nodes || depth > 32) return 0;
    double mx = 0;
    for (int i = 0; i < g->nodes[p].n_inputs; i++) {
        double e = value_error(s, g, g->nodes[p].inputs[i], depth + 1);
        if (e > mx || isnan(e)) mx = e;
    }
    return mx;
}

struct node_jump {
    int node, order;
    double out_err, in_err, ratio;
};

/* Jumps that matter (error above JUMP_MIN) first, then by how much the error grew. */
static int cmp_jump(const void *a, const void *b) {
    const struct node_jump *p = a, *q = b;
    bool sp = p->out_err > JUMP_MIN, sq = q->out_err > JUMP_MIN;
    if (sp != sq) return sp ? -1 : 1;
    return p->ratio < q->ratio ? 1 : p->ratio > q->ratio ? -1 : p->order - q->order;
}

static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static void print_jump(const char *label, mixrt_engine_t e, const struct mixrt_graph *g, const struct node_jump *j) {
    mixrt_dtype prec = cli_node_precision(e, j->node);
    const char *k = mixrt_engine_node_kernel(e, j->node);
    char in[64];
    if (j->in_err > 0) snprintf(in, sizeof(in), "inputs %.3g (x%.3g)", j->in_err, j->ratio);
    else snprintf(in, sizeof(in), "inputs exact");
    printf("%s'%s' (%s, %s, kernel %s): error %.3g, %s\n", label, g->nodes[j->node].name, g->nodes[j->node].op_type,
           cli_precision_name(prec), k ? k : "?", j->out_err, in);
}

static void json_jump(FILE *f, mixrt_engine_t e, const struct mixrt_graph *g, const struct node_jump *j) {
    mixrt_dtype prec = cli_node_precision(e, j->node);
    const char *k = mixrt_engine_node_kernel(e, j->node);
    fputs("{\"node\": ", f);
    cli_json_string(f, g->nodes[j->node].name);
    fputs(", \"op\": ", f);
    cli_json_string(f, g->nodes[j->node].op_type);
    fputs(", \"precision\": ", f);
    cli_json_string(f, cli_precision_name(prec));
    fputs(", \"kernel\": ", f);
    cli_json_string(f, k ? k : "?");
    fputs(", \"error\": ", f);
    json_num(f, j->out_err);
    fputs(", \"input_error\": ", f);
    json_num(f, j->in_err);
    fputs(", \"ratio\": ", f);
    json_num(f, j->ratio);
    fputs("}", f);
}

int mixrt_cmd_check(int argc, char **argv) {
    const char *model_path = NULL, *ref_path = NULL, *json_path = NULL, *v;
    static struct cli_input_arg in_args[CLI_MAX_INPUTS];
    int n_in_args = 0;
    unsigned long long seed = 1;
    double tolerance = -1;
    struct cli_build_args b;
    cli_build_args_init(&b);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_build_args_parse(&b, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--input"))) {
            if (n_in_args >= CLI_MAX_INPUTS) cli_die_usage("too many --input options");
            cli_input_arg_parse(v, &in_args[n_in_args++]);
        } else if ((v = cli_opt_value(argc, argv, &i, "--model"))) {
            if (!*v) cli_die_usage("--model needs a file name, got ''");
            ref_path = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--seed"))) {
            seed = cli_parse_u64("--seed", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--tolerance"))) {
            tolerance = cli_parse_double("--tolerance", v, 0);
        } else if ((v = cli_opt_value(argc, argv, &i, "--json"))) {
            if (!*v) cli_die_usage("--json needs a file name, got ''");
            json_path = v;
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage("unknown option '%s' for check", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            cli_die_usage("unexpected argument '%s'", a);
        }
    }
    if (!model_path) cli_die_usage("check needs a model file");
    if (cli_is_plan(model_path) && !ref_path)
        cli_die_usage("check of the plan '%s' needs --model MODEL.onnx (the model it was built from) for the reference",
                      model_path);
    if (!ref_path) ref_path = model_path;
    if (cli_is_plan(ref_path)) cli_die_usage("--model takes the .onnx model, not the plan '%s'", ref_path);

    mixrt_context_t ctx = NULL;
    mixrt_engine_t e = NULL, ref = NULL;
    struct cli_io io = {0}, rio = {0};
    struct cli_inputs in = {0};
    struct mixrt_tensor **outs = NULL, **routs = NULL;
    struct check_state s;
    struct node_jump *jumps = NULL;
    int n_jumps = 0, first_jump = -1, rc = 1;
    bool all_pass = true;
    FILE *jf = NULL;
    memset(&s, 0, sizeof(s));
    if (cli_context_create(b.opts.verbose, &ctx)) goto done;
    cli_shapes_for_open_inputs(ctx, &b, model_path, in_args, n_in_args);
    if (cli_engine_open(ctx, model_path, &b, &e, NULL)) goto done;
    mixrt_status st = mixrt_engine_build_reference(ctx, ref_path, b.shapes, b.opts.n_shapes, &ref);
    if (st != MIXRT_STATUS_OK) {
        rc = cli_fail_ctx_prefixed(ctx, st, "cannot build the reference engine");
        goto done;
    }
    if (cli_io_from_engine(e, &io) || cli_io_from_engine(ref, &rio)) goto done;
    if (cli_inputs_prepare(ctx, &io, in_args, n_in_args, b.shapes, (int)b.opts.n_shapes, seed, &in)) goto done;
    const struct mixrt_graph *g = mixrt_engine_graph(e);
    const struct mixrt_build_options *o = mixrt_engine_options(e);
    s.n_values = g->n_values;
    s.err_by_value = malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof(double));
    outs = calloc(io.n_out ? io.n_out : 1, sizeof(*outs));
    routs = calloc(rio.n_out ? rio.n_out : 1, sizeof(*routs));
    jumps = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof(*jumps));
    if (!s.err_by_value || !outs || !routs || !jumps) {
        rc = cli_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < g->n_values; i++) s.err_by_value[i] = -1;
    /* The reference's intermediates (f64) kept for the trace: up to a quarter of the memory
     * (TorchScript MViT-v2-S's would be over 24 GB). */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    s.ref_budget = pages > 0 && page > 0 ? (size_t)pages / 4 * (size_t)page : (size_t)4 << 30;
    const char *tb = getenv("MIXRT_CHECK_TRACE_BYTES"); /* tests: a smaller budget */
    if (tb && *tb) s.ref_budget = (size_t)strtoull(tb, NULL, 10);
    st = mixrt_engine_run_observed(ref, in.n, in.names, (const struct mixrt_tensor *const *)in.t, routs, observe_ref, &s);
    if (st != MIXRT_STATUS_OK) {
        rc = cli_fail_ctx_prefixed(ctx, st, "the reference engine failed");
        goto done;
    }
    st = mixrt_engine_run_observed(e, in.n, in.names, (const struct mixrt_tensor *const *)in.t, outs, observe_engine, &s);
    if (st != MIXRT_STATUS_OK) {
        rc = cli_fail_ctx(ctx, st);
        goto done;
    }
    if (s.oom) {
        rc = cli_fail("out of memory while keeping the reference's intermediates");
        goto done;
    }

    /* Default tolerance: the 16-bit one as soon as any layer may compute in 16 bits. */
    bool low = o && (o->precisions & (MIXRT_PRECISION_BF16 | MIXRT_PRECISION_FP16)) && !o->strongly_typed;
    for (size_t i = 0; i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        if (mixrt_engine_get_layer(e, i, &li) == MIXRT_STATUS_OK &&
            (li.precision == MIXRT_DTYPE_BF16 || li.precision == MIXRT_DTYPE_F16))
            low = true;
    }
    if (tolerance < 0) tolerance = low ? 2e-2 : 1e-4;
    char prec[64];
    cli_precisions_str(prec, sizeof(prec), o ? o->precisions : MIXRT_PRECISION_FP32);
    printf("check %s (precisions %s, %s typing) against the f64 reference of %s, tolerance %g\n", model_path, prec,
           o && o->strongly_typed ? "strong" : "weak", ref_path, tolerance);
    printf("outputs (rel-norm error = ||a-b||/||b||):\n");
    double out_rel[CLI_MAX_INPUTS], out_abs[CLI_MAX_INPUTS];
    static char out_shapes[CLI_MAX_INPUTS][256]; /* "shape [..] against the reference's [..]", or "" */
    const char *fail_name = NULL;
    double fail_rel = 0;
    char fail_shape[256] = ""; /* the first failing output's shapes, when they differ */
    for (size_t i = 0; i < io.n_out; i++) {
        size_t k;
        out_rel[i % CLI_MAX_INPUTS] = out_abs[i % CLI_MAX_INPUTS] = INFINITY;
        for (k = 0; k < rio.n_out; k++)
            if (!strcmp(rio.out[k].name, io.out[i].name)) break;
        double rel = INFINITY, mabs = INFINITY;
        size_t na = 0, nb = 0;
        double *a = k < rio.n_out ? to_f64(outs[i], &na) : NULL, *r = k < rio.n_out ? to_f64(routs[k], &nb) : NULL;
        bool same_shape = a && r && outs[i]->rank == routs[k]->rank &&
                          !memcmp(outs[i]->dims, routs[k]->dims, (size_t)outs[i]->rank * sizeof(int64_t));
        if (same_shape) compare(a, r, na, &rel, &mabs);
        free(a);
        free(r);
        bool pass = same_shape && rel <= tolerance;
        char shapes[256] = "";
        if (!same_shape && k < rio.n_out) {
            char da[112], db[112];
            if (!a || !r) /* not numbers (or no memory to compare them) */
                snprintf(shapes, sizeof(shapes), "dtype %s, the reference's %s: not compared",
                         mixrt_dtype_name(outs[i]->dtype), mixrt_dtype_name(routs[k]->dtype));
            else
                snprintf(shapes, sizeof(shapes), "shape %s against the reference's %s",
                         dims_str(outs[i]->rank, outs[i]->dims, da, sizeof(da)),
                         dims_str(routs[k]->rank, routs[k]->dims, db, sizeof(db)));
        }
        if (i < CLI_MAX_INPUTS) {
            out_rel[i] = rel;
            out_abs[i] = mabs;
            snprintf(out_shapes[i], sizeof(out_shapes[i]), "%s", shapes);
        }
        if (!pass && !fail_name) {
            fail_name = io.out[i].name;
            fail_rel = rel;
            snprintf(fail_shape, sizeof(fail_shape), "%s", shapes);
        }
        all_pass = all_pass && pass;
        if (same_shape)
            printf("  %-28s rel-norm %.3e  max-abs %.3e  %s\n", io.out[i].name, rel, mabs, pass ? "PASS" : "FAIL");
        else
            printf("  %-28s %s  FAIL\n", io.out[i].name, k == rio.n_out ? "not an output of the reference" : shapes);
    }

    /* Per-layer trace and jumps. */
    printf("layer trace (%zu intermediates matched by name, execution order):\n", s.n_trace);
    for (size_t t = 0; t < s.n_trace; t++) {
        const struct trace_entry *te = &s.trace[t];
        const char *k = mixrt_engine_node_kernel(e, te->node);
        printf("  %-4zu %-28s %-18s %-5s %-16s %-24s rel %.3e  max-abs %.3e\n", t, g->nodes[te->node].name,
               g->nodes[te->node].op_type, cli_precision_name(cli_node_precision(e, te->node)), k ? k : "?",
               g->values[te->value].name,
               te->rel, te->max_abs);
    }
    if (s.skipped_shape) {
        char da[112], db[112];
        printf("  (%zu values skipped: their shape differs from the reference's; the first, in execution order: '%s' "
               "of %s node '%s', %s against %s)\n",
               s.skipped_shape, g->values[s.first_diff_value].name ? g->values[s.first_diff_value].name : "?",
               g->nodes[s.first_diff_node].op_type, g->nodes[s.first_diff_node].name,
               dims_str(s.first_diff_rank, s.first_diff_dims, da, sizeof(da)),
               dims_str(s.first_diff_ref_rank, s.first_diff_ref_dims, db, sizeof(db)));
    }
    if (s.refs_dropped)
        printf("  (the trace stops after %.0f MiB of the reference's intermediates, its memory budget: %zu later "
               "values not traced; the outputs above are compared in full)\n",
               (double)s.ref_bytes / (double)(1u << 20), s.refs_dropped);
    for (size_t t = 0; t < s.n_trace; t++) {
        int node = s.trace[t].node;
        int j;
        for (j = 0; j < n_jumps; j++)
            if (jumps[j].node == node) break;
        if (j < n_jumps) { /* a second output of the same node */
            if (s.trace[t].rel > jumps[j].out_err) jumps[j].out_err = s.trace[t].rel;
            continue;
        }
        if (n_jumps >= g->n_nodes) continue;
        double in_err = 0;
        for (int i = 0; i < g->nodes[node].n_inputs; i++) {
            double ie = value_error(&s, g, g->nodes[node].inputs[i], 0);
            if (ie > in_err) in_err = ie;
        }
        jumps[n_jumps++] = (struct node_jump){node, (int)t, s.trace[t].rel, in_err, 0};
    }
    for (int j = 0; j < n_jumps; j++) {
        struct node_jump *nj = &jumps[j];
        nj->ratio = nj->out_err / (nj->in_err > 1e-12 ? nj->in_err : 1e-12);
        if (isnan(nj->ratio)) nj->ratio = INFINITY;
        if (first_jump < 0 && nj->out_err > JUMP_FACTOR * nj->in_err && nj->out_err > JUMP_MIN) first_jump = j;
    }
    struct node_jump first = first_jump >= 0 ? jumps[first_jump] : (struct node_jump){0};
    if (first_jump >= 0) print_jump("first layer where the error jumps: ", e, g, &first);
    else printf("first layer where the error jumps: none (no layer's error exceeds %gx its inputs' and %g)\n", JUMP_FACTOR,
                JUMP_MIN);
    qsort(jumps, (size_t)n_jumps, sizeof(*jumps), cmp_jump);
    int n_top = n_jumps < TOP_JUMPS ? n_jumps : TOP_JUMPS;
    if (n_top) printf("top %d jumps (error / input error):\n", n_top);
    for (int j = 0; j < n_top; j++) {
        char label[32];
        snprintf(label, sizeof(label), "  %d. ", j + 1);
        print_jump(label, e, g, &jumps[j]);
    }

    if (json_path) {
        jf = fopen(json_path, "w");
        if (!jf) {
            rc = cli_fail("cannot write '%s'", json_path);
            goto done;
        }
        fputs("{\"mixrt_version\": ", jf);
        cli_json_string(jf, mixrt_version());
        fputs(", \"model\": ", jf);
        cli_json_string(jf, model_path);
        fputs(", \"reference_model\": ", jf);
        cli_json_string(jf, ref_path);
        fputs(", \"precision\": ", jf);
        cli_json_string(jf, prec);
        fprintf(jf, ", \"typing\": \"%s\", \"seed\": %llu, \"tolerance\": ", o && o->strongly_typed ? "strong" : "weak",
                seed);
        json_num(jf, tolerance);
        fprintf(jf, ", \"pass\": %s,\n \"outputs\": [", all_pass ? "true" : "false");
        for (size_t i = 0; i < io.n_out && i < CLI_MAX_INPUTS; i++) {
            fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", jf);
            cli_json_string(jf, io.out[i].name);
            fputs(", \"rel_norm_error\": ", jf);
            json_num(jf, out_rel[i]);
            fputs(", \"max_abs_error\": ", jf);
            json_num(jf, out_abs[i]);
            fputs(", \"shape_mismatch\": ", jf);
            if (out_shapes[i][0]) cli_json_string(jf, out_shapes[i]);
            else fputs("null", jf);
            fprintf(jf, ", \"pass\": %s}", out_rel[i] <= tolerance ? "true" : "false");
        }
        fputs("],\n \"layers\": [", jf);
        for (size_t t = 0; t < s.n_trace; t++) {
            const struct trace_entry *te = &s.trace[t];
            const char *k = mixrt_engine_node_kernel(e, te->node);
            fputs(t ? ",\n  {\"node\": " : "\n  {\"node\": ", jf);
            cli_json_string(jf, g->nodes[te->node].name);
            fputs(", \"op\": ", jf);
            cli_json_string(jf, g->nodes[te->node].op_type);
            fputs(", \"precision\": ", jf);
            cli_json_string(jf, cli_precision_name(cli_node_precision(e, te->node)));
            fputs(", \"kernel\": ", jf);
            cli_json_string(jf, k ? k : "?");
            fputs(", \"value\": ", jf);
            cli_json_string(jf, g->values[te->value].name);
            fputs(", \"rel_norm_error\": ", jf);
            json_num(jf, te->rel);
            fputs(", \"max_abs_error\": ", jf);
            json_num(jf, te->max_abs);
            fputs("}", jf);
        }
        fputs("],\n \"first_jump\": ", jf);
        if (first_jump >= 0) json_jump(jf, e, g, &first);
        else fputs("null", jf);
        fputs(",\n \"top_jumps\": [", jf);
        for (int j = 0; j < n_top; j++) {
            if (j) fputs(", ", jf);
            json_jump(jf, e, g, &jumps[j]);
        }
        fputs("]}\n", jf);
        if (fclose(jf) != 0) {
            jf = NULL;
            rc = cli_fail("cannot write '%s'", json_path);
            goto done;
        }
        jf = NULL;
    }
    if (!all_pass) {
        if (fail_shape[0])
            rc = cli_fail("check failed: output '%s' has %s (a count the data decides, as NMS's, can differ "
                          "with precision)", fail_name ? fail_name : "?", fail_shape);
        else
            rc = cli_fail("check failed: output '%s' rel-norm error %.3g exceeds the tolerance %g",
                          fail_name ? fail_name : "?", fail_rel, tolerance);
        goto done;
    }
    printf("PASS\n");
    rc = 0;
done:
    if (jf) fclose(jf);
    if (outs)
        for (size_t i = 0; i < io.n_out; i++) mixrt_tensor_destroy(ctx, outs[i]);
    if (routs)
        for (size_t i = 0; i < rio.n_out; i++) mixrt_tensor_destroy(ctx, routs[i]);
    free(outs);
    free(routs);
    free(jumps);
    for (size_t i = 0; i < s.n_refs; i++) {
        free(s.refs[i].name);
        free(s.refs[i].v);
    }
    free(s.refs);
    free(s.trace);
    free(s.err_by_value);
    cli_inputs_free(ctx, &in);
    cli_io_free(&io);
    cli_io_free(&rio);
    mixrt_engine_destroy(ref);
    mixrt_engine_destroy(e);
    mixrt_context_destroy(ctx);
    cli_build_args_free(&b);
    return rc;
}
