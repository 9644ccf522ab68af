/* test_infer.c - static shape/type inference: symbolic dims flow through conv, pool,
 * flatten, matmul and broadcasts; a contradicted declaration gives way to inference. The
 * graph is built in memory with the IR API; run-time input checks are in model_run.c. */
#include <string.h>

#include "ir/graph.h"
#include "testutil.h"

static int add_value(struct mixrt_graph *g, const char *name, mixrt_dtype dt, int rank, const int64_t *dims,
                     const char *const *params) {
    int vi = mixrt_graph_get_or_add_value(g, name);
    struct mixrt_value *v = &g->values[vi];
    v->dtype = dt;
    v->rank = rank;
    for (int i = 0; i < rank; i++) {
        v->dims[i].value = dims[i];
        v->dims[i].param = params ? params[i] : NULL;
    }
    return vi;
}

static int add_node(struct mixrt_graph *g, const char *op, int n_in, const int *ins, const char *out) {
    int ni = mixrt_graph_add_node(g, op, op, "");
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 17;
    n->n_inputs = n_in;
    n->inputs = mixrt_arena_calloc(g->arena, (size_t)n_in, sizeof(int));
    memcpy(n->inputs, ins, (size_t)n_in * sizeof(int));
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = mixrt_graph_get_or_add_value(g, out);
    g->values[n->outputs[0]].producer = ni;
    return ni;
}

/* Appends attribute name of type to node ni; the caller sets its value. */
static struct mixrt_attr *attr_append(struct mixrt_graph *g, int ni, const char *name, enum mixrt_attr_type type) {
    struct mixrt_node *nd = &g->nodes[ni];
    struct mixrt_attr *a = mixrt_arena_calloc(g->arena, (size_t)nd->n_attrs + 1, sizeof(*a));
    if (nd->n_attrs) memcpy(a, nd->attrs, (size_t)nd->n_attrs * sizeof(*a));
    a[nd->n_attrs].name = name;
    a[nd->n_attrs].type = type;
    nd->attrs = a;
    return &a[nd->n_attrs++];
}

static void set_ints(struct mixrt_graph *g, int ni, const char *name, size_t n, const int64_t *v) {
    struct mixrt_attr *a = attr_append(g, ni, name, MIXRT_ATTR_INTS);
    a->n = n;
    a->ints = mixrt_arena_calloc(g->arena, n, sizeof(int64_t));
    memcpy(a->ints, v, n * sizeof(int64_t));
}

static void set_str(struct mixrt_graph *g, int ni, const char *name, const char *v) {
    struct mixrt_attr *a = attr_append(g, ni, name, MIXRT_ATTR_STRING);
    a->s = v;
    a->s_len = strlen(v);
}

static void set_int(struct mixrt_graph *g, int ni, const char *name, int64_t v) { attr_append(g, ni, name, MIXRT_ATTR_INT)->i = v; }

static const struct mixrt_value *val(const struct mixrt_graph *g, const char *name);

/* Pool output shapes with ceil_mode (worked by hand): a last window that would start in the end
 * padding is not one (ONNX Runtime's and PyTorch's rule, and the kernels'), a partial window that
 * starts inside the input is; a kernel past the padded input by less than a stride gives one. A
 * declaration that agrees (as torch.onnx.export writes it) is no contradiction. */
static void ceil_pool_shapes(mixrt_context_t ctx) {
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    int x = add_value(g, "x", MIXRT_DTYPE_F32, 4, (int64_t[]){1, 2, 5, 7}, NULL);
    g->values[x].flags |= MIXRT_VALUE_GRAPH_INPUT;
    /* H 5, k 2, s 3, pads 0 + 1: windows at 0, 3, 6 - 6 lies in the end pad: 2. W 7: 0, 3, 6 (6
     * inside the input, its window half in the pad): 3. Without ceil_mode: 2 and 3 too. */
    int a = add_node(g, "MaxPool", 1, (int[]){x}, "p_drop");
    set_ints(g, a, "kernel_shape", 2, (int64_t[]){2, 2});
    set_ints(g, a, "strides", 2, (int64_t[]){3, 3});
    set_ints(g, a, "pads", 4, (int64_t[]){0, 0, 1, 1});
    set_int(g, a, "ceil_mode", 1);
    add_value(g, "p_drop", MIXRT_DTYPE_F32, 4, (int64_t[]){1, 2, 2, 3}, NULL); /* its declaration */
    int b = add_node(g, "MaxPool", 1, (int[]){x}, "p_floor");
    set_ints(g, b, "kernel_shape", 2, (int64_t[]){2, 2});
    set_ints(g, b, "strides", 2, (int64_t[]){3, 3});
    set_ints(g, b, "pads", 4, (int64_t[]){0, 0, 1, 1});
    /* k 2, s 2, no pads: H 5 -> windows 0, 2, 4 (the last half past the input): 3; W 7 -> 4. */
    int c = add_node(g, "AveragePool", 1, (int[]){x}, "p_up");
    set_ints(g, c, "kernel_shape", 2, (int64_t[]){2, 2});
    set_ints(g, c, "strides", 2, (int64_t[]){2, 2});
    set_int(g, c, "ceil_mode", 1);
    /* k 9 over H 5 with stride 8: past the input by 4 < 8, one window; W k 1 s 1: 7 */
    int d = add_node(g, "MaxPool", 1, (int[]){x}, "p_one");
    set_ints(g, d, "kernel_shape", 2, (int64_t[]){9, 1});
    set_ints(g, d, "strides", 2, (int64_t[]){8, 1});
    set_int(g, d, "ceil_mode", 1);
    int contradictions = -1;
    TU_CHECK(mixrt_graph_infer(g, &contradictions) == MIXRT_STATUS_OK, "infer: %s", mixrt_context_last_error(ctx));
    TU_CHECK(contradictions == 0, "the declared [1,2,2,3] agrees (%d contradictions)", contradictions);
    static const struct {
        const char *name;
        int64_t h, w;
    } want[] = {{"p_drop", 2, 3}, {"p_floor", 2, 3}, {"p_up", 3, 4}, {"p_one", 1, 7}};
    for (int i = 0; i < 4; i++) {
        const struct mixrt_value *v = val(g, want[i].name);
        TU_CHECK(v->rank == 4 && v->dims[2].value == want[i].h && v->dims[3].value == want[i].w,
                 "%s: [%lld, %lld], expected [%lld, %lld]", want[i].name, (long long)(v->rank > 2 ? v->dims[2].value : -9),
                 (long long)(v->rank > 3 ? v->dims[3].value : -9), (long long)want[i].h, (long long)want[i].w);
    }
    mixrt_graph_destroy(g);
}

/* ConvTranspose output shapes (the spec's formulas, worked by hand below): explicit pads with
 * output_padding, dilations and groups; output_shape; auto_pad SAME_UPPER. */
static void conv_transpose_shapes(mixrt_context_t ctx) {
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    const char *xp[] = {"N", NULL, NULL, NULL};
    int x = add_value(g, "x", MIXRT_DTYPE_F32, 4, (int64_t[]){-1, 8, 7, 9}, xp);
    int w = add_value(g, "w", MIXRT_DTYPE_F32, 4, (int64_t[]){8, 3, 4, 3}, NULL);
    g->values[x].flags |= MIXRT_VALUE_GRAPH_INPUT;
    g->values[w].flags |= MIXRT_VALUE_GRAPH_INPUT;
    int a = add_node(g, "ConvTranspose", 2, (int[]){x, w}, "ct_pads");
    set_int(g, a, "group", 2);
    set_ints(g, a, "strides", 2, (int64_t[]){2, 3});
    set_ints(g, a, "pads", 4, (int64_t[]){1, 0, 1, 1});
    set_ints(g, a, "output_padding", 2, (int64_t[]){1, 0});
    set_ints(g, a, "dilations", 2, (int64_t[]){1, 2});
    int b = add_node(g, "ConvTranspose", 2, (int[]){x, w}, "ct_shape");
    set_ints(g, b, "strides", 2, (int64_t[]){2, 3});
    set_ints(g, b, "output_shape", 2, (int64_t[]){20, 30});
    int c = add_node(g, "ConvTranspose", 2, (int[]){x, w}, "ct_same");
    set_ints(g, c, "strides", 2, (int64_t[]){2, 3});
    set_str(g, c, "auto_pad", "SAME_UPPER");
    int contradictions = -1;
    TU_CHECK(mixrt_graph_infer(g, &contradictions) == MIXRT_STATUS_OK, "infer: %s", mixrt_context_last_error(ctx));
    /* H: 2 * (7 - 1) + 1 + (4 - 1) * 1 + 1 - (1 + 1) = 15; W: 3 * (9 - 1) + 0 + (3 - 1) * 2 + 1 - (0 + 1) = 28;
     * M = W[1] * group = 6. */
    static const struct {
        const char *name;
        int64_t m, h, w;
    } want[] = {{"ct_pads", 6, 15, 28}, {"ct_shape", 3, 20, 30}, {"ct_same", 3, 14, 27}};
    for (int i = 0; i < 3; i++) {
        const struct mixrt_value *v = val(g, want[i].name);
        TU_CHECK(v->dtype == MIXRT_DTYPE_F32 && v->rank == 4 && v->dims[0].param && !strcmp(v->dims[0].param, "N") &&
                     v->dims[1].value == want[i].m && v->dims[2].value == want[i].h && v->dims[3].value == want[i].w,
                 "%s: rank %d dims [%s, %lld, %lld, %lld], expected [N, %lld, %lld, %lld]", want[i].name, v->rank,
                 v->rank > 0 && v->dims[0].param ? v->dims[0].param : "?", (long long)(v->rank > 1 ? v->dims[1].value : -9),
                 (long long)(v->rank > 2 ? v->dims[2].value : -9), (long long)(v->rank > 3 ? v->dims[3].value : -9),
                 (long long)want[i].m, (long long)want[i].h, (long long)want[i].w);
    }
    mixrt_graph_destroy(g);
}

static const struct mixrt_value *val(const struct mixrt_graph *g, const char *name) {
    return &g->values[mixrt_graph_find_value(g, name)];
}

int main(void) {
    mixrt_context_t ctx;
    mixrt_context_create(NULL, &ctx);
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    const char *xp[] = {"N", NULL, NULL, NULL};
    int x = add_value(g, "x", MIXRT_DTYPE_BF16, 4, (int64_t[]){-1, 3, 32, 30}, xp);
    g->values[x].flags |= MIXRT_VALUE_GRAPH_INPUT;
    int w = add_value(g, "w", MIXRT_DTYPE_BF16, 4, (int64_t[]){8, 3, 3, 3}, NULL);
    int b = add_value(g, "b", MIXRT_DTYPE_BF16, 1, (int64_t[]){8}, NULL);
    g->values[w].flags |= MIXRT_VALUE_GRAPH_INPUT;
    g->values[b].flags |= MIXRT_VALUE_GRAPH_INPUT;
    int conv = add_node(g, "Conv", 3, (int[]){x, w, b}, "c");
    set_ints(g, conv, "pads", 4, (int64_t[]){1, 1, 1, 1});
    set_ints(g, conv, "strides", 2, (int64_t[]){2, 1});
    add_node(g, "Relu", 1, (int[]){mixrt_graph_find_value(g, "c")}, "r");
    int pool = add_node(g, "MaxPool", 1, (int[]){mixrt_graph_find_value(g, "r")}, "p");
    set_ints(g, pool, "kernel_shape", 2, (int64_t[]){2, 2});
    set_ints(g, pool, "strides", 2, (int64_t[]){2, 2});
    add_node(g, "GlobalAveragePool", 1, (int[]){mixrt_graph_find_value(g, "p")}, "gap");
    add_node(g, "Flatten", 1, (int[]){mixrt_graph_find_value(g, "gap")}, "f");
    int m = add_value(g, "m", MIXRT_DTYPE_BF16, 2, (int64_t[]){8, 10}, NULL);
    g->values[m].flags |= MIXRT_VALUE_GRAPH_INPUT;
    add_node(g, "MatMul", 2, (int[]){mixrt_graph_find_value(g, "f"), m}, "logits");
    int y = add_value(g, "y", MIXRT_DTYPE_BF16, 2, (int64_t[]){1, 10}, NULL);
    g->values[y].flags |= MIXRT_VALUE_GRAPH_INPUT;
    add_node(g, "Add", 2, (int[]){mixrt_graph_find_value(g, "logits"), y}, "sum");
    add_node(g, "Less", 2, (int[]){mixrt_graph_find_value(g, "sum"), y}, "lt");

    int contradictions = -1;
    TU_CHECK(mixrt_graph_infer(g, &contradictions) == MIXRT_STATUS_OK, "infer: %s", mixrt_context_last_error(ctx));
    TU_CHECK(contradictions == 0, "no contradictions in a consistent graph (%d)", contradictions);
    const struct mixrt_value *c = val(g, "c");
    TU_CHECK(c->dtype == MIXRT_DTYPE_BF16 && c->rank == 4, "conv dtype/rank");
    TU_CHECK(c->dims[0].param && !strcmp(c->dims[0].param, "N"), "conv keeps symbolic batch");
    TU_CHECK(c->dims[1].value == 8 && c->dims[2].value == 16 && c->dims[3].value == 30, "conv dims %lld %lld %lld",
             (long long)c->dims[1].value, (long long)c->dims[2].value, (long long)c->dims[3].value);
    const struct mixrt_value *p = val(g, "p");
    TU_CHECK(p->dims[2].value == 8 && p->dims[3].value == 15, "pool dims %lld %lld", (long long)p->dims[2].value,
             (long long)p->dims[3].value);
    const struct mixrt_value *f = val(g, "f");
    TU_CHECK(f->rank == 2 && f->dims[0].param && !strcmp(f->dims[0].param, "N") && f->dims[1].value == 8, "flatten");
    const struct mixrt_value *lg = val(g, "logits");
    TU_CHECK(lg->rank == 2 && lg->dims[1].value == 10 && lg->dims[0].param && !strcmp(lg->dims[0].param, "N"),
             "matmul [N,10]");
    const struct mixrt_value *lt = val(g, "lt");
    TU_CHECK(lt->dtype == MIXRT_DTYPE_BOOL && lt->rank == 2 && lt->dims[1].value == 10, "comparison gives bool");

    /* A declared type that contradicts inference is replaced by the inferred one (with a
     * warning): stale value_info must not make a valid model unloadable. */
    int bad = add_value(g, "bad", MIXRT_DTYPE_BF16, 2, (int64_t[]){7, 7}, NULL);
    add_node(g, "Relu", 1, (int[]){mixrt_graph_find_value(g, "lt")}, "bad");
    g->order = NULL;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR); /* the warning is expected */
    mixrt_status st = mixrt_graph_infer(g, &contradictions);
    TU_CHECK(st == MIXRT_STATUS_OK && contradictions == 1, "contradiction counted (status %d, %d)", st, contradictions);
    const struct mixrt_value *bv = &g->values[bad];
    TU_CHECK(bv->dtype == MIXRT_DTYPE_BOOL && bv->rank == 2 && bv->dims[1].value == 10 && bv->dims[0].param &&
                 !strcmp(bv->dims[0].param, "N"),
             "inferred type wins: %s rank %d", mixrt_dtype_name(bv->dtype), bv->rank);
    mixrt_graph_destroy(g);
    conv_transpose_shapes(ctx);
    ceil_pool_shapes(ctx);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "no leak: %zu bytes", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    return tu_finish("test_infer");
}
