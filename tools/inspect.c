/* inspect.c - `mixrt inspect MODEL.onnx`: the model's inputs and outputs, one line per
 * layer (name, op, opset, input and output dtypes and shapes as inferred, precision and
 * kernel), and the list of operators this build cannot run. Plans come with issue 4. */
#include <stdio.h>
#include <string.h>

#include "backend/cpu/ref.h"
#include "commands.h"
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
                        int *n_missing, int max_missing) {
    char in[2048], out[2048];
    for (int s = 0; s < g->n_nodes; s++) {
        const struct mixrt_node *n = &g->nodes[g->order ? g->order[s] : s];
        mixrt_kernel_fn fn;
        bool ok = mixrt_ref_find(ctx, n, &fn) == MIXRT_STATUS_OK;
        values_desc(in, sizeof(in), g, n->inputs, n->n_inputs);
        values_desc(out, sizeof(out), g, n->outputs, n->n_outputs);
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
                printf("%*s  subgraph '%s' (%s of %s):\n", depth * 2, "", list[j]->name, at->name, n->name);
                print_graph(ctx, list[j], depth + 2, missing, n_missing, max_missing);
            }
        }
    }
}

int mixrt_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-') {
            fprintf(stderr, "mixrt: error: unknown option '%s' for inspect (see 'mixrt help')\n", argv[i]);
            return 2;
        }
        if (path) {
            fprintf(stderr, "mixrt: error: unexpected argument '%s' (see 'mixrt help')\n", argv[i]);
            return 2;
        }
        path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "mixrt: error: inspect needs a model file (see 'mixrt help')\n");
        return 2;
    }
    size_t len = strlen(path);
    if (len >= 5 && !strcmp(path + len - 5, ".plan")) {
        fprintf(stderr, "mixrt: error: '%s': plan files are not supported by this version yet\n", path);
        return 1;
    }
    mixrt_context_t ctx;
    mixrt_model_t model;
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) {
        fprintf(stderr, "mixrt: error: cannot create a context\n");
        return 1;
    }
    mixrt_status st = mixrt_model_load_opts(ctx, path, false, &model);
    if (st != MIXRT_STATUS_OK) {
        const char *msg = mixrt_context_last_error(ctx);
        fputs("mixrt: error: ", stderr);
        for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
            if (*p < 0x20 || *p == 0x7f) fprintf(stderr, "\\x%02x", *p);
            else fputc(*p, stderr);
        }
        fputc('\n', stderr);
        mixrt_context_destroy(ctx);
        return 1;
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
    print_graph(ctx, g, 1, missing, &n_missing, 256);
    if (n_missing == 0) {
        printf("every operator runs on cpu\n");
    } else {
        printf("operators this build cannot run:\n");
        for (int i = 0; i < n_missing; i++)
            printf("  %s (domain '%s', opset %lld): %d node%s\n", missing[i].op,
                   missing[i].domain[0] ? missing[i].domain : "ai.onnx", missing[i].opset, missing[i].count,
                   missing[i].count == 1 ? "" : "s");
    }
    mixrt_model_destroy(model);
    mixrt_context_destroy(ctx);
    return 0;
}
