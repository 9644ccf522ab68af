/* inspect.c - `mixrt inspect MODEL.onnx|MODEL.plan [build options]`. A bare .onnx: the
 * model's inputs and outputs, one line per layer (op, opset, inferred dtypes and shapes,
 * kernel) and the operators this build cannot run. A plan (or a .onnx with build options,
 * built in memory): the planned graph's layers with precision, kernel and time share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/ref.h"
#include "cli.h"
#include "commands.h"
#include "engine/engine_cuda.h"
#include "engine/engine_impl.h"
#include "onnx/model_impl.h"

static void value_desc(char *buf, size_t size, const struct mixrt_graph *g, int vi) {
    if (vi < 0) {
        snprintf(buf, size, "-");
        return;
    }
    const struct mixrt_value *v = &g->values[vi];
    size_t off = (size_t)snprintf(buf, size, "%s%s", (v->flags & MIXRT_VALUE_SEQUENCE) ? "seq " : "",
                                  v->dtype ? mixrt_dtype_name(v->dtype) : "?");
    if (off >= size) return;
    if (v->rank < 0) {
        snprintf(buf + off, size - off, "[?]");
        return;
    }
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (int i = 0; i < v->rank && off < size; i++) {
        const char *sep = i ? "," : "";
        if (v->dims[i].value >= 0) off += (size_t)snprintf(buf + off, size - off, "%s%lld", sep, (long long)v->dims[i].value);
        else off += (size_t)snprintf(buf + off, size - off, "%s%s", sep, v->dims[i].param ? v->dims[i].param : "?");
    }
    if (off < size) snprintf(buf + off, size - off, "]");
}

/* "a f32[1,3] , b i64[2]" for a node's inputs or outputs. */
static void values_desc(char *buf, size_t size, const struct mixrt_graph *g, const int *vals, int n) {
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < n && off < size; i++) {
        char d[256];
        value_desc(d, sizeof(d), g, vals[i]);
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", d);
    }
}

struct op_count {
    const char *op, *domain;
    long long opset;
    int count;
};

static void print_graph(mixrt_context_t ctx, const struct mixrt_graph *g, int depth, struct op_count *missing,
                        int *n_missing, int max_missing, bool print) {
    char in[2048], out[2048];
    for (int s = 0; s < g->n_nodes; s++) {
        const struct mixrt_node *n = &g->nodes[g->order ? g->order[s] : s];
        mixrt_kernel_fn fn;
        bool ok = mixrt_ref_find(ctx, n, &fn) == MIXRT_STATUS_OK;
        values_desc(in, sizeof(in), g, n->inputs, n->n_inputs);
        values_desc(out, sizeof(out), g, n->outputs, n->n_outputs);
        if (print)
            printf("%*s%-4d %-28s %-22s %-3lld %s -> %s  [%s]\n", depth * 2, "", s, n->name, n->op_type,
                   (long long)n->opset, in, out, ok ? "cpu-ref f64" : "UNSUPPORTED");
        if (!ok) {
            int j;
            for (j = 0; j < *n_missing; j++)
                if (!strcmp(missing[j].op, n->op_type) && !strcmp(missing[j].domain, n->domain)) break;
            if (j < *n_missing) missing[j].count++;
            else if (*n_missing < max_missing) missing[(*n_missing)++] = (struct op_count){n->op_type, n->domain, n->opset, 1};
        }
        for (int a = 0; a < n->n_attrs; a++) {
            const struct mixrt_attr *at = &n->attrs[a];
            const struct mixrt_graph *subs[1] = {at->g};
            const struct mixrt_graph *const *list = at->g ? subs : (const struct mixrt_graph *const *)at->graphs;
            size_t cnt = at->g ? 1 : (at->graphs ? at->n : 0);
            for (size_t j = 0; j < cnt; j++) {
                if (!list[j]) continue;
                if (print)
                    printf("%*s  subgraph '%s' (%s of %s):\n", depth * 2, "", list[j]->name, at->name, n->name);
                print_graph(ctx, list[j], depth + 2, missing, n_missing, max_missing, print);
            }
        }
    }
}

static void print_missing(const struct op_count *missing, int n_missing) {
    printf("operators this build cannot run:\n");
    for (int i = 0; i < n_missing; i++)
        printf("  %s (domain '%s', opset %lld): %d node%s\n", missing[i].op,
               missing[i].domain[0] ? missing[i].domain : "ai.onnx", missing[i].opset, missing[i].count,
               missing[i].count == 1 ? "" : "s");
}

/* The planned graph of an engine: one line per layer in execution order. */
static int inspect_engine(mixrt_context_t ctx, const char *path, const struct cli_build_args *b) {
    mixrt_engine_t e = NULL;
    int rc = 1;
    double ms = 0;
    if (!cli_is_plan(path)) {
        /* Say which operators block a build before trying one. */
        mixrt_model_t model;
        mixrt_status st = mixrt_model_load_opts(ctx, path, false, &model);
        if (st != MIXRT_STATUS_OK) return cli_fail_ctx(ctx, st);
        struct op_count missing[256];
        int n_missing = 0;
        print_graph(ctx, mixrt_model_graph(model), 1, missing, &n_missing, 256, false);
        if (n_missing) {
            print_missing(missing, n_missing);
            rc = cli_fail("cannot build '%s': %d operator%s this build cannot run (listed above)", path, n_missing,
                          n_missing == 1 ? "" : "s");
            mixrt_model_destroy(model);
            return rc;
        }
        mixrt_model_destroy(model);
    }
    if (cli_engine_open(ctx, path, b, &e, &ms)) return 1;
    const struct mixrt_graph *g = mixrt_engine_graph(e);
    const struct mixrt_build_options *o = mixrt_engine_options(e);
    char prec[64], in[2048], out[2048];
    cli_precisions_str(prec, sizeof(prec), o ? o->precisions : MIXRT_PRECISION_FP32);
    printf("%s: %s (%s in %.1f ms)\n", cli_is_plan(path) ? "plan" : "engine", path,
           cli_is_plan(path) ? "loaded" : "built in memory", ms);
    printf("target: %s\nbuild id: %s\n", mixrt_engine_target(e), mixrt_engine_build_id(e));
    printf("options: precisions %s, %s typing, backend %s\n", prec, o && o->strongly_typed ? "strong" : "weak",
           o && o->backend ? o->backend : "cpu");
    printf("inputs:\n");
    for (int i = 0; i < g->n_inputs; i++) {
        value_desc(in, sizeof(in), g, g->inputs[i]);
        printf("  %-28s %s\n", g->values[g->inputs[i]].name, in);
    }
    printf("outputs:\n");
    for (int i = 0; i < g->n_outputs; i++) {
        value_desc(out, sizeof(out), g, g->outputs[i]);
        printf("  %-28s %s\n", g->values[g->outputs[i]].name, out);
    }
    double total_ns = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        double t = mixrt_engine_node_time_ns(e, i);
        if (t > 0) total_ns += t;
    }
    printf("layers (%d, execution order; time = share of the per-layer times measured at build):\n", g->n_nodes);
    printf("  %-4s %-28s %-18s %-9s %-7s %-16s %6s  %s -> %s\n", "#", "name", "op", "precision", "backend", "kernel",
           "time", "inputs", "outputs");
    for (int s = 0; s < g->n_nodes; s++) {
        int idx = g->order ? g->order[s] : s;
        const struct mixrt_node *n = &g->nodes[idx];
        struct mixrt_layer_info li;
        memset(&li, 0, sizeof(li));
        mixrt_engine_get_layer(e, (size_t)s, &li); /* layers are in execution order */
        const char *kernel = mixrt_engine_node_kernel(e, idx);
        double t = mixrt_engine_node_time_ns(e, idx);
        char share[32];
        if (t < 0 || total_ns <= 0) snprintf(share, sizeof(share), "-");
        else snprintf(share, sizeof(share), "%.1f%%", 100.0 * t / total_ns);
        values_desc(in, sizeof(in), g, n->inputs, n->n_inputs);
        values_desc(out, sizeof(out), g, n->outputs, n->n_outputs);
        printf("  %-4d %-28s %-18s %-9s %-7s %-16s %6s  %s -> %s\n", s, n->name, n->op_type,
               cli_precision_name(li.precision), mixrt_engine_node_backend(e, idx),
               kernel ? kernel : (li.kernel ? li.kernel : "?"), share, in, out);
    }
    mixrt_engine_cuda_describe(e, stdout);
    printf("totals:\n");
    cli_print_layer_totals(e, "  ");
    printf("operators the target cannot run: none\n");
    rc = 0;
    mixrt_engine_destroy(e);
    return rc;
}

int mixrt_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    struct cli_build_args b;
    cli_build_args_init(&b);
    for (int i = 0; i < argc; i++) {
        if (cli_build_args_parse(&b, argc, argv, &i)) continue;
        if (argv[i][0] == '-' && argv[i][1]) cli_die_usage("unknown option '%s' for inspect", argv[i]);
        if (path) cli_die_usage("unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) cli_die_usage("inspect needs a model file");
    if (cli_is_plan(path) || b.n_given) {
        mixrt_context_t ctx;
        int rc = cli_context_create(b.opts.verbose, &ctx);
        if (!rc) rc = inspect_engine(ctx, path, &b);
        mixrt_context_destroy(ctx);
        cli_build_args_free(&b);
        return rc;
    }
    mixrt_context_t ctx;
    mixrt_model_t model;
    if (cli_context_create(false, &ctx)) return 1;
    mixrt_status st = mixrt_model_load_opts(ctx, path, false, &model);
    if (st != MIXRT_STATUS_OK) {
        int rc = cli_fail_ctx(ctx, st);
        mixrt_context_destroy(ctx);
        return rc;
    }
    const struct mixrt_graph *g = mixrt_model_graph(model);
    char d[2048];
    printf("model: %s (ONNX IR %lld; opsets:", path, (long long)g->ir_version);
    for (int i = 0; i < g->n_opsets; i++)
        printf(" %s %lld", g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx", (long long)g->opsets[i].version);
    printf(")\ninputs:\n");
    for (int i = 0; i < g->n_inputs; i++) {
        value_desc(d, sizeof(d), g, g->inputs[i]);
        printf("  %-28s %s%s\n", g->values[g->inputs[i]].name, d,
               g->values[g->inputs[i]].init ? "  (initializer, may be overridden)" : "");
    }
    printf("outputs:\n");
    for (int i = 0; i < g->n_outputs; i++) {
        value_desc(d, sizeof(d), g, g->outputs[i]);
        printf("  %-28s %s\n", g->values[g->outputs[i]].name, d);
    }
    printf("layers (%d; dtypes and shapes as inferred; precision = the tensors' own dtypes, computed in f64 by the "
           "reference kernels):\n", g->n_nodes);
    struct op_count missing[256];
    int n_missing = 0;
    print_graph(ctx, g, 1, missing, &n_missing, 256, true);
    if (n_missing == 0) printf("every operator runs on cpu\n");
    else print_missing(missing, n_missing);
    mixrt_model_destroy(model);
    mixrt_context_destroy(ctx);
    return 0;
}
