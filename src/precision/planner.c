/* planner.c - the precision planner (planner.h). It owns the rewrite of a main graph
 * from declared dtypes to planned ones; invariant after each step: every node's inputs
 * have the dtypes its kernel will see, the graph I/O keeps the model's declared dtypes,
 * and g->order is a valid topological order. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tactics.h"
#include "passes/passes_impl.h"
#include "precision/planner.h"

/* What an f32 layer among lower-precision ones is charged over its time alone (its Casts
 * included) when the planner's timed choice compares it: with the 3 % tie rule it needs about
 * 1.29x the speed of the best lower precision to be chosen. */
#define ISLAND_BAR 1.25

/* ---- small graph-editing helpers --------------------------------------------------------- */

static bool is_lowp_or_f32(mixrt_dtype t) {
    return t == MIXRT_DTYPE_F32 || t == MIXRT_DTYPE_F16 || t == MIXRT_DTYPE_BF16;
}

static const char *prec_name(mixrt_dtype t) {
    switch (t) {
    case MIXRT_DTYPE_F32: return "fp32";
    case MIXRT_DTYPE_F16: return "fp16";
    case MIXRT_DTYPE_BF16: return "bf16";
    case MIXRT_DTYPE_F64: return "fp64";
    default: return mixrt_dtype_name(t);
    }
}

static bool fresh_node_name(const struct mixrt_graph *g, const char *base, char *out, size_t size) {
    for (int k = 0; k < 10000; k++) {
        if (k) snprintf(out, size, "%.400s_%d", base, k);
        else snprintf(out, size, "%.400s", base);
        bool used = false;
        for (int i = 0; i < g->n_nodes && !used; i++) used = !strcmp(g->nodes[i].name, out);
        if (!used) return true;
    }
    return false;
}

static void copy_shape(struct mixrt_value *dst, const struct mixrt_value *src) {
    dst->rank = src->rank;
    for (int d = 0; d < src->rank && d < MIXRT_MAX_RANK; d++) dst->dims[d] = src->dims[d];
}

/* Appends Cast(src -> dst, to) to g. Returns the node index or -1 (out of memory). */
static int add_cast_node(struct mixrt_graph *g, int src, int dst, mixrt_dtype to) {
    char name[512];
    if (!fresh_node_name(g, g->values[dst].name, name, sizeof(name))) return -1;
    int ni = mixrt_graph_add_node(g, name, "Cast", "");
    if (ni < 0) return -1;
    struct mixrt_node *n = &g->nodes[ni];
    int64_t opset = mixrt_graph_opset(g, "");
    n->opset = opset > 0 ? opset : 13;
    n->inputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->attrs = mixrt_arena_calloc(g->arena, 1, sizeof(struct mixrt_attr));
    if (!n->inputs || !n->outputs || !n->attrs) return -1;
    n->n_inputs = n->n_outputs = n->n_attrs = 1;
    n->inputs[0] = src;
    n->outputs[0] = dst;
    n->attrs[0].name = "to";
    n->attrs[0].type = MIXRT_ATTR_INT;
    n->attrs[0].i = to;
    g->values[dst].producer = ni;
    g->values[dst].dtype = to;
    copy_shape(&g->values[dst], &g->values[src]);
    return ni;
}

/* Converts constant t to dtype `to` into a new arena-held tensor (owning its data). */
static mixrt_status convert_const(struct mixrt_graph *g, const struct mixrt_tensor *t, mixrt_dtype to,
                                  struct mixrt_tensor **out) {
    struct mixrt_tensor *nt = mixrt_arena_calloc(g->arena, 1, sizeof(*nt));
    if (!nt) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_tensor_init(g->ctx, nt, to, t->rank, t->dims);
    if (status != MIXRT_STATUS_OK) return status;
    status = mixrt_convert(nt->data, to, t->data, t->dtype, mixrt_tensor_numel(t));
    if (status != MIXRT_STATUS_OK) {
        mixrt_tensor_release(g->ctx, nt);
        return mixrt_error(g->ctx, status, "cannot convert constant %s to %s", mixrt_dtype_name(t->dtype),
                           mixrt_dtype_name(to));
    }
    *out = nt;
    return MIXRT_STATUS_OK;
}

/* Values read by name from subgraphs (their dtype must not change under them). */
static bool *outer_used_set(struct mixrt_graph *g) {
    bool *used = mixrt_calloc(g->ctx, (size_t)(g->n_values > 0 ? g->n_values : 1), sizeof(bool));
    if (!used) return NULL;
    for (int i = 0; i < g->n_nodes; i++) mixrt_node_mark_outer_reads(g, &g->nodes[i], used);
    return used;
}

/* ---- unsupported dtypes ------------------------------------------------------------------- */

static bool dtype_uncomputable(mixrt_dtype t) {
    return t != MIXRT_DTYPE_UNDEFINED && !mixrt_dtype_is_supported(t);
}

/* Numeric ops a string tensor can never feed. */
static bool numeric_only_op(const struct mixrt_node *n) {
    return mixrt_plan_op_flexible(n) && strcmp(n->op_type, "Identity") && strcmp(n->op_type, "Reshape") &&
           strcmp(n->op_type, "Transpose") && strcmp(n->op_type, "Flatten") && strcmp(n->op_type, "Squeeze") &&
           strcmp(n->op_type, "Unsqueeze") && strcmp(n->op_type, "Concat") && strcmp(n->op_type, "Split") &&
           strcmp(n->op_type, "Slice") && strcmp(n->op_type, "Gather") && strcmp(n->op_type, "GatherElements") &&
           strcmp(n->op_type, "GatherND") && strcmp(n->op_type, "Expand") && strcmp(n->op_type, "Tile") &&
           strcmp(n->op_type, "Pad") && strcmp(n->op_type, "Where") && strcmp(n->op_type, "Max") &&
           strcmp(n->op_type, "Min");
}

static const char *value_kind(const struct mixrt_value *v) {
    if (v->flags & MIXRT_VALUE_GRAPH_INPUT) return v->init ? "overridable weight" : "graph input";
    if (v->flags & MIXRT_VALUE_GRAPH_OUTPUT) return "graph output";
    if (v->init) return "weight";
    return "tensor";
}

struct dtype_fallback {
    int count[MIXRT_DTYPE_COUNT];
    const char *first[MIXRT_DTYPE_COUNT];
};

static mixrt_status check_graph_dtypes(struct mixrt_graph *g, enum mixrt_unsupported_dtype policy,
                                       struct dtype_fallback *fb) {
    for (int i = 0; i < g->n_values; i++) {
        struct mixrt_value *v = &g->values[i];
        if (v->flags & MIXRT_VALUE_OUTER) continue;
        bool bad = dtype_uncomputable(v->dtype);
        const char *why = "which the cpu backend cannot compute";
        if (!bad && v->dtype == MIXRT_DTYPE_STRING) {
            /* A string fed where a number belongs. */
            for (int n = 0; n < g->n_nodes && !bad; n++) {
                if (!numeric_only_op(&g->nodes[n])) continue;
                for (int j = 0; j < g->nodes[n].n_inputs; j++)
                    if (g->nodes[n].inputs[j] == i) {
                        bad = true;
                        why = "fed to a numeric op";
                    }
            }
        }
        if (!bad) continue;
        if (policy == MIXRT_UNSUPPORTED_DTYPE_ERROR)
            return mixrt_error(g->ctx, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot build: %s '%s' is %s, %s; "
                               "--unsupported-dtype fallback converts it to f32", value_kind(v), v->name,
                               mixrt_dtype_name(v->dtype), why);
        if (v->init && v->dtype == MIXRT_DTYPE_STRING) {
            /* Strings parse as numbers, as Cast(string -> float) does. */
            struct mixrt_tensor *nt = mixrt_arena_calloc(g->arena, 1, sizeof(*nt));
            if (!nt) return MIXRT_STATUS_OUT_OF_MEMORY;
            mixrt_status status = mixrt_tensor_init(g->ctx, nt, MIXRT_DTYPE_F32, v->init->rank, v->init->dims);
            if (status != MIXRT_STATUS_OK) return status;
            const struct mixrt_string *s = v->init->data;
            for (size_t e = 0; e < mixrt_tensor_numel(nt); e++) {
                char tmp[64];
                size_t len = s[e].len < sizeof(tmp) - 1 ? s[e].len : sizeof(tmp) - 1;
                if (len) memcpy(tmp, s[e].ptr, len);
                tmp[len] = 0;
                ((float *)nt->data)[e] = strtof(tmp, NULL);
            }
            mixrt_tensor_release(g->ctx, v->init);
            v->init = nt;
        } else if (v->init) {
            return mixrt_error(g->ctx, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot build: weight '%s' is %s; mixrt cannot "
                               "read its values, so --unsupported-dtype fallback cannot convert it", v->name,
                               mixrt_dtype_name(v->dtype));
        }
        if (!fb->count[v->dtype]) fb->first[v->dtype] = v->name;
        fb->count[v->dtype]++;
        v->dtype = MIXRT_DTYPE_F32;
    }
    for (int n = 0; n < g->n_nodes; n++) {
        struct mixrt_node *nd = &g->nodes[n];
        for (int a = 0; a < nd->n_attrs; a++) {
            struct mixrt_attr *at = &nd->attrs[a];
            if ((!strcmp(at->name, "to") || !strcmp(at->name, "dtype")) && at->type == MIXRT_ATTR_INT &&
                at->i > 0 && at->i < MIXRT_DTYPE_COUNT && dtype_uncomputable((mixrt_dtype)at->i)) {
                if (policy == MIXRT_UNSUPPORTED_DTYPE_ERROR)
                    return mixrt_error(g->ctx, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot build: %s node '%s' makes %s "
                                       "tensors (attribute '%s'), which the cpu backend cannot compute; "
                                       "--unsupported-dtype fallback makes them f32", nd->op_type, nd->name,
                                       mixrt_dtype_name((mixrt_dtype)at->i), at->name);
                if (!fb->count[at->i]) fb->first[at->i] = nd->name;
                fb->count[at->i]++;
                at->i = MIXRT_DTYPE_F32;
            }
            mixrt_status status = MIXRT_STATUS_OK;
            if (at->g) status = check_graph_dtypes(at->g, policy, fb);
            for (size_t j = 0; status == MIXRT_STATUS_OK && at->graphs && j < at->n; j++)
                status = check_graph_dtypes(at->graphs[j], policy, fb);
            if (status != MIXRT_STATUS_OK) return status;
        }
    }
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_plan_check_dtypes(struct mixrt_graph *g, enum mixrt_unsupported_dtype policy) {
    struct dtype_fallback fb;
    memset(&fb, 0, sizeof(fb));
    mixrt_status status = check_graph_dtypes(g, policy, &fb);
    if (status != MIXRT_STATUS_OK) return status;
    for (int t = 0; t < MIXRT_DTYPE_COUNT; t++)
        if (fb.count[t])
            mixrt_log(g->ctx, MIXRT_LOG_WARNING, "%d %s tensor%s (first: '%s') converted to f32 "
                      "(--unsupported-dtype fallback): results differ from %s arithmetic", fb.count[t],
                      mixrt_dtype_name((mixrt_dtype)t), fb.count[t] > 1 ? "s" : "", fb.first[t],
                      mixrt_dtype_name((mixrt_dtype)t));
    return MIXRT_STATUS_OK;
}

/* ---- canonicalization (weak typing) -------------------------------------------------------- */

static bool canon_from(mixrt_dtype t, mixrt_dtype to) {
    if (t == to) return false;
    return is_lowp_or_f32(t);
}

static mixrt_status canon_attrs(struct mixrt_graph *g, struct mixrt_node *n, mixrt_dtype to);

/* Canonicalizes values, weights and attributes of a subgraph body in place (no casts:
 * its inputs arrive already canonical from the enclosing node). */
static mixrt_status canon_body(struct mixrt_graph *g, mixrt_dtype to) {
    mixrt_status status;
    for (int i = 0; i < g->n_values; i++) {
        struct mixrt_value *v = &g->values[i];
        if (v->flags & MIXRT_VALUE_OUTER) continue;
        if (!canon_from(v->dtype, to)) continue;
        if (v->init) {
            struct mixrt_tensor *nt;
            if ((status = convert_const(g, v->init, to, &nt)) != MIXRT_STATUS_OK) return status;
            mixrt_tensor_release(g->ctx, v->init);
            v->init = nt;
        }
        v->dtype = to;
    }
    for (int n = 0; n < g->n_nodes; n++)
        if ((status = canon_attrs(g, &g->nodes[n], to)) != MIXRT_STATUS_OK) return status;
    return MIXRT_STATUS_OK;
}

static mixrt_status canon_attrs(struct mixrt_graph *g, struct mixrt_node *n, mixrt_dtype to) {
    mixrt_status status;
    bool dtype_attr_op = !n->domain[0] && (!strcmp(n->op_type, "Cast") || !strcmp(n->op_type, "RandomNormal") ||
                                           !strcmp(n->op_type, "RandomUniform") ||
                                           !strcmp(n->op_type, "RandomNormalLike") ||
                                           !strcmp(n->op_type, "RandomUniformLike") ||
                                           !strcmp(n->op_type, "EyeLike") || !strcmp(n->op_type, "Bernoulli") ||
                                           !strcmp(n->op_type, "SequenceEmpty"));
    /* The window and mel ops name their output dtype in output_datatype: left as it was, the
     * kernel made a value of the old dtype that the graph said was `to` (a CUDA engine's
     * copy of it failed on the byte count; the CPU's Cast after it hid it). */
    bool out_dt_op = !n->domain[0] && (!strcmp(n->op_type, "BlackmanWindow") || !strcmp(n->op_type, "HannWindow") ||
                                       !strcmp(n->op_type, "HammingWindow") ||
                                       !strcmp(n->op_type, "MelWeightMatrix"));
    for (int a = 0; a < n->n_attrs; a++) {
        struct mixrt_attr *at = &n->attrs[a];
        bool dt_name = (dtype_attr_op && (!strcmp(at->name, "to") || !strcmp(at->name, "dtype"))) ||
                       (out_dt_op && !strcmp(at->name, "output_datatype"));
        if (dt_name && at->type == MIXRT_ATTR_INT && at->i > 0 && at->i < MIXRT_DTYPE_COUNT &&
            canon_from((mixrt_dtype)at->i, to))
            at->i = to;
        if (at->type == MIXRT_ATTR_TENSOR && at->t && !strcmp(n->op_type, "ConstantOfShape") &&
            canon_from(at->t->dtype, to)) {
            struct mixrt_tensor *nt;
            if ((status = convert_const(g, at->t, to, &nt)) != MIXRT_STATUS_OK) return status;
            mixrt_tensor_release(g->ctx, at->t);
            at->t = nt;
        }
        if (at->g && (status = canon_body(at->g, to)) != MIXRT_STATUS_OK) return status;
        for (size_t j = 0; at->graphs && j < at->n; j++)
            if ((status = canon_body(at->graphs[j], to)) != MIXRT_STATUS_OK) return status;
    }
    /* ConstantOfShape without a value makes f32 zeros (the spec's default): given the zero of
     * `to` instead, as its value would have been converted (torchvision's Swin under the dynamo
     * exporter scatters its f32 window mask into one: the f64 reference of `mixrt check` met
     * an f32 ScatterND data input beside f64 updates). */
    bool has_value = false;
    for (int a = 0; a < n->n_attrs; a++) has_value = has_value || !strcmp(n->attrs[a].name, "value");
    if (!n->domain[0] && !strcmp(n->op_type, "ConstantOfShape") && !has_value && canon_from(MIXRT_DTYPE_F32, to)) {
        const int64_t one = 1;
        struct mixrt_tensor *z = mixrt_arena_calloc(g->arena, 1, sizeof(*z));
        if (!z) return MIXRT_STATUS_OUT_OF_MEMORY;
        if ((status = mixrt_tensor_init(g->ctx, z, to, 1, &one)) != MIXRT_STATUS_OK) return status;
        mixrt_store_f64(z->data, to, 0, 0.0);
        struct mixrt_attr *na = mixrt_pass_attr_add(g, (int)(n - g->nodes), "value", MIXRT_ATTR_TENSOR);
        if (!na) {
            mixrt_tensor_release(g->ctx, z);
            return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        na->t = z;
    }
    return MIXRT_STATUS_OK;
}

/* Subgraphs read outer values by name: after a boundary cast took over the uses of
 * graph input `from`, the bodies must read the cast's output `to` instead. */
static void rename_outer_refs(struct mixrt_graph *sub, const char *from, const char *to) {
    for (int i = 0; i < sub->n_values; i++)
        if ((sub->values[i].flags & MIXRT_VALUE_OUTER) && !strcmp(sub->values[i].name, from)) sub->values[i].name = to;
    for (int n = 0; n < sub->n_nodes; n++)
        for (int a = 0; a < sub->nodes[n].n_attrs; a++) {
            const struct mixrt_attr *at = &sub->nodes[n].attrs[a];
            if (at->g) rename_outer_refs(at->g, from, to);
            for (size_t j = 0; at->graphs && j < at->n; j++) rename_outer_refs(at->graphs[j], from, to);
        }
}

/* Graph output vi (declared dtype d) gets its producer's result through a new value
 * cast to d. Returns the new (pre-cast) value, or -1 on out-of-memory. */
static int split_output(struct mixrt_graph *g, int vi, mixrt_dtype inner, const char *suffix) {
    int p = g->values[vi].producer;
    int nv = mixrt_graph_add_unique_value(g, g->values[vi].name, suffix);
    if (nv < 0) return -1;
    struct mixrt_value *v = &g->values[vi];
    g->values[nv].dtype = inner;
    copy_shape(&g->values[nv], v);
    g->values[nv].producer = p;
    g->values[nv].flags = 0;
    struct mixrt_node *pn = &g->nodes[p];
    for (int j = 0; j < pn->n_outputs; j++)
        if (pn->outputs[j] == vi) pn->outputs[j] = nv;
    /* Other nodes reading the output read the inner value (no round trip through d). */
    for (int n = 0; n < g->n_nodes; n++)
        for (int j = 0; j < g->nodes[n].n_inputs; j++)
            if (g->nodes[n].inputs[j] == vi) g->nodes[n].inputs[j] = nv;
    if (add_cast_node(g, nv, vi, g->values[vi].dtype) < 0) return -1;
    g->values[vi].producer = g->n_nodes - 1;
    return nv;
}

mixrt_status mixrt_plan_canonicalize(struct mixrt_graph *g, mixrt_dtype to) {
    mixrt_context_t ctx = g->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    const char *suffix = to == MIXRT_DTYPE_F64 ? "__f64" : "__f32";
    int nv0 = g->n_values, nn0 = g->n_nodes;
    bool *is_out = mixrt_calloc(ctx, (size_t)(nv0 > 0 ? nv0 : 1), sizeof(bool));
    bool *is_in = mixrt_calloc(ctx, (size_t)(nv0 > 0 ? nv0 : 1), sizeof(bool));
    bool *outer = outer_used_set(g);
    if (!is_out || !is_in || !outer) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int i = 0; i < g->n_outputs; i++) is_out[g->outputs[i]] = true;
    for (int i = 0; i < g->n_inputs; i++) is_in[g->inputs[i]] = true;

    /* Graph inputs (and overridable weights) of a float dtype: cast once at the boundary. */
    for (int i = 0; i < g->n_inputs; i++) {
        int vi = g->inputs[i];
        if (!canon_from(g->values[vi].dtype, to)) continue;
        bool used = outer && outer[vi];
        for (int n = 0; n < nn0 && !used; n++)
            for (int j = 0; j < g->nodes[n].n_inputs; j++) used |= g->nodes[n].inputs[j] == vi;
        if (!used) continue;
        int nv = mixrt_graph_add_unique_value(g, g->values[vi].name, suffix);
        MIXRT_CHECK(ctx, nv >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
        for (int n = 0; n < nn0; n++) {
            for (int j = 0; j < g->nodes[n].n_inputs; j++)
                if (g->nodes[n].inputs[j] == vi) g->nodes[n].inputs[j] = nv;
            for (int a = 0; outer && outer[vi] && a < g->nodes[n].n_attrs; a++) {
                const struct mixrt_attr *at = &g->nodes[n].attrs[a];
                if (at->g) rename_outer_refs(at->g, g->values[vi].name, g->values[nv].name);
                for (size_t k = 0; at->graphs && k < at->n; k++)
                    rename_outer_refs(at->graphs[k], g->values[vi].name, g->values[nv].name);
            }
        }
        MIXRT_CHECK(ctx, add_cast_node(g, vi, nv, to) >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    /* Every other float value of the original graph computes in `to`. */
    for (int vi = 0; vi < nv0; vi++) {
        struct mixrt_value *v = &g->values[vi];
        if (is_in[vi] || (v->flags & MIXRT_VALUE_OUTER) || !canon_from(v->dtype, to)) continue;
        if (is_out[vi]) {
            if (v->producer < 0) continue; /* a constant output keeps its declared dtype */
            MIXRT_CHECK(ctx, split_output(g, vi, to, suffix) >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
            continue;
        }
        if (v->init) {
            struct mixrt_tensor *nt;
            MIXRT_TRY(convert_const(g, v->init, to, &nt));
            mixrt_tensor_release(ctx, g->values[vi].init);
            g->values[vi].init = nt;
        }
        g->values[vi].dtype = to;
    }
    for (int n = 0; n < nn0; n++) MIXRT_TRY(canon_attrs(g, &g->nodes[n], to));
    MIXRT_TRY(mixrt_graph_toposort(g, &g->order));
fail:
    mixrt_free(ctx, is_out, (size_t)(nv0 > 0 ? nv0 : 1) * sizeof(bool));
    mixrt_free(ctx, is_in, (size_t)(nv0 > 0 ? nv0 : 1) * sizeof(bool));
    mixrt_free(ctx, outer, (size_t)(nv0 > 0 ? nv0 : 1) * sizeof(bool));
    return status;
}

/* ---- lowering ---------------------------------------------------------------------------------- */

/* Precision-flexible ops: their float data inputs and outputs share one dtype (ONNX
 * type variable T) that may be any float type. keep: input indices that are not T. */
struct flex_op {
    const char *op;
    unsigned keep; /* bit j: input j keeps its dtype */
    bool timed;    /* compute-heavy: precision chosen by timing */
};

static const struct flex_op flex_ops[] = {
    {"Conv", 0, true}, {"ConvTranspose", 0, true}, {"MatMul", 0, true}, {"Gemm", 0, true},
    {"Relu", 0, false}, {"LeakyRelu", 0, false}, {"PRelu", 0, false}, {"Elu", 0, false}, {"Selu", 0, false},
    {"Celu", 0, false}, {"Sigmoid", 0, false}, {"HardSigmoid", 0, false}, {"HardSwish", 0, false},
    {"Tanh", 0, false}, {"Softplus", 0, false}, {"Softsign", 0, false}, {"Gelu", 0, false}, {"Mish", 0, false},
    {"Erf", 0, false}, {"Exp", 0, false}, {"Log", 0, false}, {"Sqrt", 0, false}, {"Reciprocal", 0, false},
    {"Neg", 0, false}, {"Abs", 0, false}, {"Sin", 0, false}, {"Cos", 0, false}, {"Clip", 0, false},
    {"ThresholdedRelu", 0, false}, {"Identity", 0, false}, {"Dropout", 2u, false}, {"Add", 0, false},
    {"Sub", 0, false}, {"Mul", 0, false}, {"Div", 0, false}, {"Pow", 2u, false}, {"Max", 0, false},
    {"Min", 0, false}, {"Sum", 0, false}, {"Mean", 0, false}, {"Where", 0, false}, {"Reshape", 0, false},
    {"Transpose", 0, false}, {"Flatten", 0, false}, {"Squeeze", 0, false}, {"Unsqueeze", 0, false},
    {"Concat", 0, false}, {"Split", 0, false}, {"Slice", 0, false}, {"Gather", 0, false},
    {"GatherElements", 0, false}, {"GatherND", 0, false}, {"Expand", 0, false}, {"Tile", 0, false},
    {"Pad", 0, false}, {"Resize", 6u, false}, {"Upsample", 2u, false}, {"DepthToSpace", 0, false},
    {"SpaceToDepth", 0, false}, {"MaxPool", 0, false}, {"AveragePool", 0, false},
    {"GlobalAveragePool", 0, false}, {"GlobalMaxPool", 0, false}, {"BatchNormalization", 0, false},
    {"InstanceNormalization", 0, false}, {"LayerNormalization", 0, false}, {"GroupNormalization", 0, false},
    {"Softmax", 0, false}, {"LogSoftmax", 0, false}, {"ReduceMean", 0, false}, {"ReduceSum", 0, false},
    {"ReduceMax", 0, false}, {"ReduceMin", 0, false}, {"ReduceL2", 0, false}, {"Einsum", 0, false},
    {"LRN", 0, false},
};

/* The com.mixrt ops the fusion and layout passes make (MIXRT_DOMAIN). */
static const struct flex_op mixrt_flex_ops[] = {
    {"FusedConv", 0, true}, {"FusedMatMul", 0, true}, {"Attention", 24u, true}, /* masks (inputs 3, 4) stay f32 */
    {"MaxPool", 0, false},  {"AveragePool", 0, false}, {"GlobalAveragePool", 0, false},
    {"Gelu", 0, false},     {"LayerNormalization", 0, false}, {"RMSNormalization", 0, false},
    {"InstanceNormalization", 0, false}, /* fuse_conv.c's channels-last one (and its group norm) */
    {"Resize", 6u, false}, /* fuse_conv.c's channels-last one: roi and scales keep their dtype */
    {"ElementwiseChain", 0, false}, /* fuse_eltwise.c: X0 and every operand are T */
    {"DepthToSpace", 0, false},     /* fuse_conv.c's channels-last one */
    {"ConcatAffine", 3u, false},    /* fuse_conv.c: S and B (inputs 0, 1) stay f32 */
};

static const struct flex_op *flex_find(const struct mixrt_node *n) {
    const struct flex_op *t = flex_ops;
    size_t count = sizeof(flex_ops) / sizeof(flex_ops[0]);
    if (!strcmp(n->domain, MIXRT_DOMAIN))
        t = mixrt_flex_ops, count = sizeof(mixrt_flex_ops) / sizeof(mixrt_flex_ops[0]);
    else if (n->domain[0])
        return NULL;
    for (size_t i = 0; i < count; i++)
        if (!strcmp(t[i].op, n->op_type)) return &t[i];
    return NULL;
}

bool mixrt_plan_op_flexible(const struct mixrt_node *n) { return flex_find(n) != NULL; }

/* Accuracy rule: ops whose outputs routinely leave f16's range (65504) or whose result
 * is dominated by one large term do not follow their inputs into fp16 (bf16 has f32's
 * range, so it is fine); --layer-precision can still force them. */
static bool f16_risky(const struct mixrt_node *n) {
    static const char *const ops[] = {"Exp", "Pow", "ReduceSum", "Softplus", "Reciprocal", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(n->op_type, ops[i])) return true;
    return false;
}

static int64_t static_numel(const struct mixrt_value *v) {
    if (v->rank < 0) return -1;
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i].value < 0) return -1;
        n *= v->dims[i].value;
    }
    return n;
}

/* n (Resize, Upsample, Pad, Tile, Expand) writes an f32 graph output larger than its data input:
 * in a lower precision the output would be cast back to f32 at its full size (DeepLabV3's
 * 21x14x14 -> 21x224x224 upsampling: a 1.05 M-element Cast of 0.25-0.29 ms in a 6 ms run), where
 * in f32 only its input is. */
static bool enlarges_f32_output(const struct mixrt_graph *g, const struct mixrt_node *n) {
    static const char *const ops[] = {"Resize", "Upsample", "Pad", "Tile", "Expand", NULL};
    bool op = false;
    for (int i = 0; ops[i]; i++) op |= !strcmp(n->op_type, ops[i]);
    if (!op || n->domain[0] || n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return false;
    const struct mixrt_value *y = &g->values[n->outputs[0]];
    if (!(y->flags & MIXRT_VALUE_GRAPH_OUTPUT) || y->dtype != MIXRT_DTYPE_F32) return false;
    int64_t ny = static_numel(y), nx = static_numel(&g->values[n->inputs[0]]);
    return nx >= 0 && ny > nx;
}

/* n's first output is a graph output (directly or through one Cast) of at most 4096 values (a
 * classifier head of a few classes): its error is what a user compares, and in bf16 its
 * products round both operands (HF ConvNeXt's 768 -> 2 head, random weights, cancelling sums:
 * the logits' rel-norm error went 6.2e-3 -> 2.07e-2 in that one layer, 1.46e-2 with the head in
 * f32). Such a head costs a microsecond or two either way. 0: not such a head; 1: one whose f32
 * time must be within the margin of the fastest; 2: one so small (output values times constant
 * values, a bound on its multiply-adds, at most 64 K) that it stays f32 untimed: the margin was
 * a coin toss there (a 64 -> 3 head's f32 time, ~1 us under ASan, lost it once to a loaded CI
 * machine). */
static int small_f32_output(const struct mixrt_graph *g, const struct mixrt_node *n) {
    if (n->n_outputs < 1 || n->outputs[0] < 0) return 0;
    const int yi = n->outputs[0];
    const struct mixrt_value *y = &g->values[yi];
    const int64_t ny = static_numel(y);
    if (!mixrt_dtype_is_float(y->dtype) || ny <= 0 || ny > 4096) return 0;
    if (!(y->flags & MIXRT_VALUE_GRAPH_OUTPUT)) {
        /* or read only by a Cast to the graph output (a bf16 or f16 model's declared output
         * after canonicalization): the same head in the f32 and the bf16 model */
        int reader = -1, reads = 0;
        for (int i = 0; i < g->n_nodes && reads < 2; i++)
            for (int j = 0; j < g->nodes[i].n_inputs; j++)
                if (g->nodes[i].inputs[j] == yi) reads++, reader = i;
        if (reads != 1) return 0;
        const struct mixrt_node *c = &g->nodes[reader];
        if (c->domain[0] || strcmp(c->op_type, "Cast") || c->n_outputs < 1 || c->outputs[0] < 0 ||
            !(g->values[c->outputs[0]].flags & MIXRT_VALUE_GRAPH_OUTPUT))
            return 0;
    }
    /* and at most 256 K constant values (1 MiB in f32): a model's weights come from DRAM on each
     * run (a shared L3 evicts them between runs), where the timing reads them warm, so a larger
     * head would cost more in the model than its timing says (a 1280 -> 1000 classifier: 5 MB) */
    int64_t nw = 0;
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] >= 0 && mixrt_graph_is_fixed_const(g, n->inputs[j])) {
            int64_t k = static_numel(&g->values[n->inputs[j]]);
            if (k < 0) return 0;
            nw += k;
        }
    if (nw > ((int64_t)1 << 18)) return 0;
    return nw > 0 && ny * nw <= ((int64_t)1 << 16) ? 2 : 1;
}

/* n is an ONNX Gather whose data (input 0) is a float constant of at least 64 K values. */
static bool embedding_gather(const struct mixrt_graph *g, const struct mixrt_node *n) {
    if (n->domain[0] || strcmp(n->op_type, "Gather") || n->n_inputs < 2 || n->inputs[0] < 0 ||
        !mixrt_graph_is_fixed_const(g, n->inputs[0]))
        return false;
    const struct mixrt_value *t = &g->values[n->inputs[0]];
    return is_lowp_or_f32(t->dtype) && static_numel(t) >= (int64_t)1 << 16;
}

/* Input j of n is float data of the type variable T (canonically f32). */
static bool data_input(const struct mixrt_graph *g, const struct mixrt_node *n, const struct flex_op *fo, int j) {
    int vi = n->inputs[j];
    return vi >= 0 && !(j < 32 && (fo->keep >> j) & 1u) && is_lowp_or_f32(g->values[vi].dtype);
}

struct conv_cache {
    int src;
    mixrt_dtype to;
    int dst;
};

struct lower_state {
    struct mixrt_graph *g;
    const struct mixrt_build_options *opts;
    struct mixrt_timing_cache *tc;
    struct conv_cache *cc;
    int ncc, capcc;
    bool *outer;
    int n_outer;
    int *uses; /* [nv0]: node inputs still reading each constant of the original graph */
    int nv0;
    bool heads_over; /* heads_over_budget(g), taken before any constant is converted */
    double wino_low; /* wino_budget_low(g, ...): the least Winograd budget the engine may get */
};

/* Whether g's 3x3 convolutions whose batch only the data decides (detector heads), all on
 * Winograd, would exceed the engine's Winograd budget. engine.c's wino_budget weighs them as
 * one item, their weights grown 4x plus one scratchpad at MIXRT_WINO_DATA_BATCH boxes, and
 * would send them all to their other kernel: their precision is then chosen on its time (a
 * head kept in f32 for a Winograd it will not get runs f32 direct: Keypoint R-CNN's 512-channel
 * head, {fp32,bf16} at 0.40 of ONNX Runtime's time where bf16 gives 0.22). */
static bool heads_over_budget(const struct mixrt_graph *g) {
    double budget = mixrt_wino_budget_bytes(g, NULL, NULL), img_max = 0, extra = 0, img;
    if (budget < 0) return false;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *nd = &g->nodes[i];
        bool conv = (!strcmp(nd->op_type, "Conv") && !*nd->domain) ||
                    (!strcmp(nd->op_type, "FusedConv") && !strcmp(nd->domain, MIXRT_DOMAIN));
        if (!conv || !mixrt_tactics_data_batch(g, nd, &img)) continue;
        const struct mixrt_value *w = &g->values[nd->inputs[1]];
        if (!w->init || w->dims[2].value != 3 || w->dims[3].value != 3 || mixrt_node_attr_int(nd, "group", 1) != 1)
            continue;
        if (img > img_max) img_max = img;
        extra += (MIXRT_WINO_WEIGHT_GROWTH - 1.0) * (double)w->init->nbytes;
    }
    return extra + img_max * MIXRT_WINO_DATA_BATCH > budget;
}

/* The smallest Winograd budget engine.c's wino_budget may apply to the lowered g: its constant
 * bytes counted as if every float constant took the narrowest enabled float type (the budget
 * is taken from the final engine's constants); -1 when there is no limit. A layer whose
 * Winograd weights alone add more than that may be sent back to its direct kernel after its
 * precision was chosen on Winograd's time: FCN-ResNet50's 2048 -> 512 head conv (113 MB of
 * transformed weights against an 87 MB budget once the backbone went bf16) kept f32 for a
 * Winograd 2.6x faster than bf16 direct and ran f32 direct, 1.7x slower than bf16. */
static double wino_budget_low(const struct mixrt_graph *g, unsigned enabled) {
    size_t narrow = enabled & (MIXRT_PRECISION_BF16 | MIXRT_PRECISION_FP16) ? 2 : 4;
    double consts = 0;
    for (int v = 0; v < g->n_values; v++) {
        const struct mixrt_tensor *t = g->values[v].init;
        if (!t) continue;
        size_t es = mixrt_dtype_size(t->dtype);
        consts += mixrt_dtype_is_float(t->dtype) && es > narrow ? (double)t->nbytes * (double)narrow / (double)es
                                                               : (double)t->nbytes;
    }
    return mixrt_wino_budget_for(consts, NULL);
}

/* Value vi as dtype `to`: itself, a converted copy of a constant, or a (shared) Cast. */
static mixrt_status value_as(struct lower_state *ls, int vi, mixrt_dtype to, int *out) {
    struct mixrt_graph *g = ls->g;
    if (g->values[vi].dtype == to) {
        *out = vi;
        return MIXRT_STATUS_OK;
    }
    for (int i = 0; i < ls->ncc; i++)
        if (ls->cc[i].src == vi && ls->cc[i].to == to) {
            *out = ls->cc[i].dst;
            return MIXRT_STATUS_OK;
        }
    if (ls->ncc == ls->capcc) {
        int cap = ls->capcc ? ls->capcc * 2 : 64;
        struct conv_cache *n = mixrt_calloc(g->ctx, (size_t)cap, sizeof(*n));
        if (!n) return MIXRT_STATUS_OUT_OF_MEMORY;
        if (ls->ncc) memcpy(n, ls->cc, (size_t)ls->ncc * sizeof(*n));
        mixrt_free(g->ctx, ls->cc, (size_t)ls->capcc * sizeof(*n));
        ls->cc = n;
        ls->capcc = cap;
    }
    char suffix[16];
    snprintf(suffix, sizeof(suffix), "__%s", prec_name(to));
    int nv = mixrt_graph_add_unique_value(g, g->values[vi].name, suffix);
    if (nv < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (mixrt_graph_is_fixed_const(g, vi)) {
        struct mixrt_tensor *nt;
        mixrt_status status = convert_const(g, g->values[vi].init, to, &nt);
        if (status != MIXRT_STATUS_OK) return status;
        struct mixrt_value *v = &g->values[nv];
        v->init = nt;
        v->dtype = to;
        v->producer = -1;
        v->flags = MIXRT_VALUE_CONSTANT;
        copy_shape(v, &g->values[vi]);
    } else if (add_cast_node(g, vi, nv, to) < 0) {
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    ls->cc[ls->ncc++] = (struct conv_cache){vi, to, nv};
    *out = nv;
    return MIXRT_STATUS_OK;
}

/* A node input stopped reading constant vi (it reads a converted copy now): when nothing reads vi
 * any more, its data goes at once, not after planning, so the build's peak holds each weight in
 * one precision plus the one being converted (ViT-B/16's {fp32,bf16} build peaked at f32 + bf16
 * weights together, 545 MiB against 369 for the fp32 one). Graph inputs and outputs, and values a
 * subgraph reads by name, stay. */
static void unread(struct lower_state *ls, int vi) {
    struct mixrt_graph *g = ls->g;
    if (!ls->uses || vi < 0 || vi >= ls->nv0 || ls->uses[vi] <= 0 || --ls->uses[vi] > 0) return;
    struct mixrt_value *v = &g->values[vi];
    if (!mixrt_graph_is_fixed_const(g, vi) || (v->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT)) ||
        (ls->outer && ls->outer[vi]))
        return;
    mixrt_tensor_release(g->ctx, v->init);
    v->init = NULL;
}

/* The --layer-precision entry matching node n (the last one given wins), or NULL. */
static const struct mixrt_layer_precision *layer_rule(const struct mixrt_build_options *o, const struct mixrt_node *n) {
    const struct mixrt_layer_precision *r = NULL;
    for (size_t i = 0; i < o->n_layer_precisions; i++)
        if (fnmatch(o->layer_precisions[i].glob, n->name, 0) == 0) r = &o->layer_precisions[i];
    return r;
}

/* Times node ni of g as if its data inputs/outputs were dtype p: a one-node graph with
 * weights converted. The best optimized kernel's median in *ns (-1: only the reference
 * kernel runs it; not timed). */
static mixrt_status time_as(struct lower_state *ls, int ni, mixrt_dtype p, const struct flex_op *fo, double *ns,
                            const char **kname, bool remeasure, bool *measured) {
    struct mixrt_graph *g = ls->g;
    mixrt_context_t ctx = g->ctx;
    struct mixrt_graph *t = NULL;
    mixrt_status status = mixrt_graph_create(ctx, NULL, &t);
    if (status != MIXRT_STATUS_OK) return status;
    t->opsets = g->opsets;
    t->n_opsets = g->n_opsets;
    t->ir_version = g->ir_version;
    const struct mixrt_node *n = &g->nodes[ni];
    int tn = mixrt_graph_add_node(t, n->name, n->op_type, n->domain);
    MIXRT_CHECK(ctx, tn >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    struct mixrt_node *m = &t->nodes[tn];
    m->opset = n->opset;
    m->n_inputs = n->n_inputs;
    m->n_outputs = n->n_outputs;
    m->inputs = mixrt_arena_calloc(t->arena, (size_t)(n->n_inputs + 1), sizeof(int));
    m->outputs = mixrt_arena_calloc(t->arena, (size_t)(n->n_outputs + 1), sizeof(int));
    MIXRT_CHECK(ctx, m->inputs && m->outputs, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    m->attrs = n->attrs; /* borrowed: cleared before the graph is destroyed */
    m->n_attrs = n->n_attrs;
    for (int j = 0; j < n->n_inputs; j++) {
        m->inputs[j] = -1;
        if (n->inputs[j] < 0) continue;
        const struct mixrt_value *src = &g->values[n->inputs[j]];
        char nm[32];
        snprintf(nm, sizeof(nm), "in%d", j);
        int v = mixrt_graph_get_or_add_value(t, nm);
        MIXRT_CHECK(ctx, v >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
        m = &t->nodes[tn];
        m->inputs[j] = v;
        bool data = data_input(g, n, fo, j);
        t->values[v].dtype = data ? p : src->dtype;
        copy_shape(&t->values[v], src);
        if (mixrt_graph_is_fixed_const(g, n->inputs[j])) {
            struct mixrt_tensor *nt;
            MIXRT_TRY(convert_const(t, src->init, t->values[v].dtype, &nt));
            t->values[v].init = nt;
            t->values[v].flags = MIXRT_VALUE_CONSTANT;
        }
    }
    for (int j = 0; j < n->n_outputs; j++) {
        m->outputs[j] = -1;
        if (n->outputs[j] < 0) continue;
        char nm[32];
        snprintf(nm, sizeof(nm), "out%d", j);
        int v = mixrt_graph_get_or_add_value(t, nm);
        MIXRT_CHECK(ctx, v >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
        m = &t->nodes[tn];
        m->outputs[j] = v;
        const struct mixrt_value *src = &g->values[n->outputs[j]];
        t->values[v].dtype = is_lowp_or_f32(src->dtype) ? p : src->dtype;
        t->values[v].producer = tn;
        copy_shape(&t->values[v], src);
    }
    const struct mixrt_cpu_kernel *best = NULL;
    struct mixrt_tactic_alt alt = {NULL, -1};
    double img;
    MIXRT_TRY(mixrt_tactics_choose(t, tn, ls->tc, false, ls->opts->verbose, remeasure, &best, ns, measured, &alt));
    /* A detector head's layer is timed at batch 1, where Winograd may win; when the budget will
     * take Winograd from the heads (heads_over_budget), the precision is chosen on the time of
     * the kernel the layer will get. */
    if (ls->heads_over && best && alt.kern && mixrt_cpu_kernel_weight_growth(best) > 1.0 &&
        mixrt_tactics_data_batch(t, &t->nodes[tn], &img))
        best = alt.kern, *ns = alt.ns;
    /* Winograd weights no budget this engine may get could hold (wino_budget_low): the layer's
     * precision is chosen on the time of the kernel it will run. */
    else if (ls->wino_low >= 0 && best && alt.kern && mixrt_cpu_kernel_weight_growth(best) > 1.0) {
        m = &t->nodes[tn];
        const struct mixrt_tensor *w = m->n_inputs > 1 && m->inputs[1] >= 0 ? t->values[m->inputs[1]].init : NULL;
        /* the Winograd kernels hold f32 weights, whatever the layer's precision */
        if (w && (mixrt_cpu_kernel_weight_growth(best) - 1.0) * (double)(mixrt_tensor_numel(w) * 4) > ls->wino_low)
            best = alt.kern, *ns = alt.ns;
    }
    *kname = best ? best->name : "none";
fail:
    if (t) {
        if (tn >= 0) {
            t->nodes[tn].attrs = NULL;
            t->nodes[tn].n_attrs = 0;
        }
        mixrt_graph_destroy(t);
    }
    return status;
}

/* The time of a Cast of value shape (src's dims) from `from` to `to`, timed like a layer (the
 * timing cache keeps it); -1 when it cannot be timed (dynamic shape, no fast Cast kernel). */
static mixrt_status time_cast(struct lower_state *ls, const struct mixrt_value *src, mixrt_dtype from, mixrt_dtype to,
                              double *ns) {
    struct mixrt_graph *g = ls->g;
    mixrt_context_t ctx = g->ctx;
    struct mixrt_graph *t = NULL;
    *ns = -1;
    for (int d = 0; d < src->rank; d++)
        if (src->dims[d].value < 0) return MIXRT_STATUS_OK;
    if (src->rank < 0) return MIXRT_STATUS_OK;
    mixrt_status status = mixrt_graph_create(ctx, NULL, &t);
    if (status != MIXRT_STATUS_OK) return status;
    t->opsets = g->opsets;
    t->n_opsets = g->n_opsets;
    t->ir_version = g->ir_version;
    int vin = mixrt_graph_get_or_add_value(t, "in0"), vout = mixrt_graph_get_or_add_value(t, "out0");
    MIXRT_CHECK(ctx, vin >= 0 && vout >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    t->values[vin].dtype = from;
    copy_shape(&t->values[vin], src);
    int tn = add_cast_node(t, vin, vout, to);
    MIXRT_CHECK(ctx, tn >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    const struct mixrt_cpu_kernel *best = NULL;
    MIXRT_TRY(mixrt_tactics_choose(t, tn, ls->tc, false, 0, false, &best, ns, NULL, NULL));
fail:
    mixrt_graph_destroy(t);
    return status;
}

mixrt_status mixrt_plan_lower(struct mixrt_graph *g, const struct mixrt_build_options *opts,
                              struct mixrt_timing_cache *tc) {
    mixrt_context_t ctx = g->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    struct lower_state ls = {g, opts, tc, NULL, 0, 0, NULL, 0, NULL, 0, heads_over_budget(g),
                             wino_budget_low(g, opts->precisions | MIXRT_PRECISION_FP32)};
    int nn0 = g->n_nodes, nv0 = g->n_values;
    int *order = mixrt_calloc(ctx, (size_t)(nn0 > 0 ? nn0 : 1), sizeof(int));
    bool *rule_used = mixrt_calloc(ctx, opts->n_layer_precisions + 1, sizeof(bool));
    mixrt_dtype *out_dtype = NULL;
    int n_out0 = g->n_outputs;
    ls.outer = outer_used_set(g);
    if (!order || !ls.outer || !rule_used) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    if (nn0) memcpy(order, g->order, (size_t)nn0 * sizeof(int));
    out_dtype = mixrt_calloc(ctx, (size_t)(g->n_outputs + 1), sizeof(mixrt_dtype));
    if (!out_dtype) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int i = 0; i < g->n_outputs; i++) out_dtype[i] = g->values[g->outputs[i]].dtype;
    unsigned enabled = opts->precisions | MIXRT_PRECISION_FP32;
    /* Readers per constant, for unread(); without the table (no memory) nothing is dropped early. */
    ls.nv0 = nv0;
    if ((ls.uses = mixrt_calloc(ctx, (size_t)(nv0 > 0 ? nv0 : 1), sizeof(int))))
        for (int n = 0; n < nn0; n++)
            for (int j = 0; j < g->nodes[n].n_inputs; j++)
                if (g->nodes[n].inputs[j] >= 0 && g->nodes[n].inputs[j] < nv0) ls.uses[g->nodes[n].inputs[j]]++;

    for (int s = 0; s < nn0; s++) {
        int ni = order[s];
        const struct flex_op *fo = flex_find(&g->nodes[ni]);
        const struct mixrt_layer_precision *rule = layer_rule(opts, &g->nodes[ni]);
        if (rule) rule_used[rule - opts->layer_precisions] = true;
        bool has_data = false, untyped = false;
        for (int j = 0; fo && j < g->nodes[ni].n_inputs; j++) {
            has_data |= data_input(g, &g->nodes[ni], fo, j);
            /* An input inference could not type might be float data: the node cannot be
             * planned safely, so it keeps f32 (its inputs' lowering, if any, is undone). */
            if (g->nodes[ni].inputs[j] >= 0 && !(j < 32 && (fo->keep >> j) & 1u) &&
                g->values[g->nodes[ni].inputs[j]].dtype == MIXRT_DTYPE_UNDEFINED)
                untyped = true;
        }
        if (untyped) has_data = false;
        /* Outputs read by a subgraph by name must keep the dtype the body was typed with. */
        bool pinned = false;
        for (int j = 0; j < g->nodes[ni].n_outputs; j++) {
            int vo = g->nodes[ni].outputs[j];
            if (vo >= 0 && vo < nv0 && ls.outer[vo]) pinned = true;
        }
        mixrt_dtype p = MIXRT_DTYPE_F32;
        const char *how = "fp32 only";
        if (!fo || !has_data || pinned) {
            /* Not precision-flexible: every lowered input goes back to f32 (exact). */
            if (rule && rule->dtype != MIXRT_DTYPE_F32) {
                const char *why = !fo         ? "the op is not precision-flexible"
                                  : untyped   ? "the dtype of one of its inputs is not known statically"
                                  : !has_data ? "it has no float data"
                                              : "a subgraph reads its output by name";
                if (opts->constraints == MIXRT_CONSTRAINTS_OBEY) {
                    status = mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build %s node '%s': "
                                         "--layer-precision '%s:%s' cannot be obeyed: %s "
                                         "(--precision-constraints obey)", g->nodes[ni].op_type, g->nodes[ni].name,
                                         rule->glob, prec_name(rule->dtype), why);
                    goto fail;
                }
                if (opts->constraints == MIXRT_CONSTRAINTS_PREFER)
                    mixrt_log(ctx, MIXRT_LOG_WARNING, "%s node '%s' stays in its own dtype despite --layer-precision "
                              "'%s:%s': %s", g->nodes[ni].op_type, g->nodes[ni].name, rule->glob,
                              prec_name(rule->dtype), why);
            }
            /* Shape and Size read only dims: any dtype will do, and a Cast back to f32 of a large
             * value whose shape alone is asked (Mask R-CNN's mask logits) costs a full pass. */
            const struct mixrt_node *nd = &g->nodes[ni];
            if (!nd->domain[0] && (!strcmp(nd->op_type, "Shape") || !strcmp(nd->op_type, "Size"))) continue;
            for (int j = 0; j < g->nodes[ni].n_inputs; j++) {
                int vi = g->nodes[ni].inputs[j];
                if (vi < 0) continue;
                mixrt_dtype d = g->values[vi].dtype;
                if (d == MIXRT_DTYPE_F16 || d == MIXRT_DTYPE_BF16) {
                    /* Lowered by us (the canonical graph had f32 there). */
                    bool lowered = vi >= nv0 || g->values[vi].producer >= 0;
                    if (!lowered) continue;
                    int nvi;
                    MIXRT_TRY(value_as(&ls, vi, MIXRT_DTYPE_F32, &nvi));
                    g->nodes[ni].inputs[j] = nvi;
                }
            }
            continue;
        }
        /* Candidate precisions. */
        mixrt_dtype cands[3];
        int nc = 0;
        if (rule && opts->constraints != MIXRT_CONSTRAINTS_NONE) {
            cands[nc++] = rule->dtype;
            how = "--layer-precision";
        } else {
            cands[nc++] = MIXRT_DTYPE_F32;
            if (enabled & MIXRT_PRECISION_BF16) cands[nc++] = MIXRT_DTYPE_BF16;
            if (enabled & MIXRT_PRECISION_FP16) cands[nc++] = MIXRT_DTYPE_F16;
            if (rule) {
                bool have = false;
                for (int c = 0; c < nc; c++) have |= cands[c] == rule->dtype;
                if (!have) cands[nc++] = rule->dtype;
            }
        }
        if (nc == 1) {
            p = cands[0];
        } else if (fo->timed && opts->backend && !strcmp(opts->backend, "cuda")) {
            /* The builder times kernels on this host's CPU, which says nothing about a
             * GPU's tensor cores: there the narrowest enabled precision is the fast one
             * (bf16 before fp16: f32's range), always with f32 accumulation. */
            p = cands[nc - 1];
            for (int c = 0; c < nc; c++)
                if (cands[c] == MIXRT_DTYPE_BF16) p = cands[c];
            how = "cuda: narrowest enabled precision (tensor cores)";
        } else if (fo->timed) {
            double best = -1;
            const char *bk = NULL;
            bool any_timed = false;
            double tp[3];
            const char *kp[3];
            /* Two windows, alternating the precisions (A B ... A B ...), each candidate's
             * fastest run kept: a burst of load on a shared machine then has to hit both
             * windows of one candidate to bias the choice. Cached candidates are not
             * re-timed. */
            bool measured[3] = {false, false, false};
            for (int pass = 0; pass < 2; pass++)
                for (int c = 0; c < nc; c++) {
                    if (pass == 1 && !measured[c]) continue;
                    MIXRT_TRY(time_as(&ls, ni, cands[c], fo, &tp[c], &kp[c], pass == 1, &measured[c]));
                    if (tp[c] >= 0) any_timed = true;
                }
            if (any_timed) {
                /* An f32 layer among lower-precision ones pays the timed Casts of its data
                 * inputs up to f32 and of its output back down: an f32 island must save more
                 * than its Casts (ConvNeXt's 14x14 depthwise convs were f32 by 2 us each, with
                 * 10 us of Casts around them). Going down from f32 is not charged: those Casts
                 * are the way into the lower precision the rest of the network runs in, and
                 * charging them would let a first f32 layer hold every later one in f32. */
                const struct mixrt_node *nd = &g->nodes[ni];
                double score[3]; /* what the choice compares: tp, an f32 island's scaled by ISLAND_BAR */
                for (int c = 0; c < nc; c++) score[c] = tp[c];
                for (int c = 0; c < nc; c++) {
                    if (tp[c] < 0 || cands[c] != MIXRT_DTYPE_F32) continue;
                    mixrt_dtype lowp_in = MIXRT_DTYPE_F32;
                    for (int j = 0; j < nd->n_inputs; j++) {
                        if (!data_input(g, nd, fo, j) || mixrt_graph_is_fixed_const(g, nd->inputs[j])) continue;
                        const struct mixrt_value *v = &g->values[nd->inputs[j]];
                        if (v->dtype == MIXRT_DTYPE_F32) continue;
                        lowp_in = v->dtype;
                        double cn;
                        MIXRT_TRY(time_cast(&ls, v, v->dtype, MIXRT_DTYPE_F32, &cn));
                        if (cn > 0) tp[c] += cn;
                    }
                    if (lowp_in != MIXRT_DTYPE_F32 && nd->n_outputs > 0 && nd->outputs[0] >= 0) {
                        double cn;
                        MIXRT_TRY(time_cast(&ls, &g->values[nd->outputs[0]], MIXRT_DTYPE_F32, lowp_in, &cn));
                        if (cn > 0) tp[c] += cn;
                    }
                    /* An island is charged ISLAND_BAR over that: in the engine its f32 data and the
                     * Casts' extra passes cost more than timed alone (ResNet-50 {fp32,bf16}: three
                     * layer2 3x3 convs went f32 Winograd, 218 us + Casts against 287 for the best
                     * bf16 kernel, ran 0.36-0.38 ms each in the model's profile). The plan-level
                     * A/B of session 57 (0.948-0.959 without them) is not evidence: `mixrt bench`
                     * then ran row 1 after the peer in 3 rounds of 4 and row 3 never (fixed in
                     * tools/rounds.c). */
                    score[c] = lowp_in != MIXRT_DTYPE_F32 ? tp[c] * ISLAND_BAR : tp[c];
                }
                /* Fastest wins; within 3% the lower precision does (less memory traffic
                 * downstream, and ties do not flip with noise as often). */
                double best_score = -1;
                for (int c = 0; c < nc; c++) {
                    if (tp[c] < 0) continue;
                    if (best_score < 0 || score[c] < best_score * 0.97 ||
                        (score[c] <= best_score * 1.03 && cands[c] != MIXRT_DTYPE_F32)) {
                        best_score = score[c];
                        best = tp[c];
                        p = cands[c];
                        bk = kp[c];
                    }
                }
                /* A small output head stays f32 where that costs at most 10 % + 3 us (its time
                 * includes the Cast of its input up to f32: ~1.2 us for 64 values in an ASan
                 * build, where a 1 us margin let the choice flip between builds). */
                int small = p != MIXRT_DTYPE_F32 ? small_f32_output(g, nd) : 0;
                if (small)
                    for (int c = 0; c < nc; c++)
                        if (cands[c] == MIXRT_DTYPE_F32 && tp[c] >= 0 && (small == 2 || tp[c] <= best * 1.10 + 3000.0)) {
                            best = tp[c];
                            p = cands[c];
                            bk = kp[c];
                            if (opts->verbose)
                                mixrt_log(ctx, MIXRT_LOG_NOTE, "%s '%s': kept f32: a graph output of at most 4096 "
                                          "values, %s", nd->op_type, nd->name,
                                          small == 2 ? "at most 64 K multiply-adds" : "within 10 %% + 3 us of the fastest");
                        }
                how = "timed";
                if (opts->verbose)
                    mixrt_log(ctx, MIXRT_LOG_NOTE, "%s '%s': %s with %s (%.1f us)", g->nodes[ni].op_type,
                              g->nodes[ni].name, prec_name(p), bk ? bk : "?", best / 1e3);
            } else {
                /* Not timed in any precision (a dynamic shape, or only the reference kernel):
                 * a precision an optimized kernel takes beats one only the reference runs (a
                 * Faster R-CNN box head's product, rows known only at run time, took 2.1 s in
                 * bf16 on the f64 reference of a CPU without AVX512-BF16, against ~1 ms in f32);
                 * among equals the lowest enabled one halves the memory traffic; bf16 before
                 * fp16 (range). */
                bool fast[3], any_fast = false;
                for (int c = 0; c < nc; c++) {
                    fast[c] = kp[c] && strcmp(kp[c], "ref") && strcmp(kp[c], "none");
                    any_fast |= fast[c];
                }
                int pc = -1;
                for (int c = 0; c < nc; c++)
                    if (!any_fast || fast[c])
                        if (pc < 0 || cands[pc] == MIXRT_DTYPE_F32 ||
                            (cands[c] == MIXRT_DTYPE_BF16 && cands[pc] != MIXRT_DTYPE_BF16))
                            pc = c;
                p = cands[pc];
                how = any_fast ? "untimed (the lowest precision an optimized kernel takes)" : "untimed (reference kernel only)";
            }
        } else {
            /* Follow: the narrowest dtype among the dynamic data inputs, if enabled. */
            mixrt_dtype narrow = MIXRT_DTYPE_F32;
            bool mixed = false;
            for (int j = 0; j < g->nodes[ni].n_inputs; j++) {
                if (!data_input(g, &g->nodes[ni], fo, j) || mixrt_graph_is_fixed_const(g, g->nodes[ni].inputs[j])) continue;
                mixrt_dtype d = g->values[g->nodes[ni].inputs[j]].dtype;
                if (d == MIXRT_DTYPE_F32) continue;
                if (narrow != MIXRT_DTYPE_F32 && narrow != d) mixed = true;
                narrow = d;
            }
            p = mixed ? MIXRT_DTYPE_F32 : narrow;
            how = "follows its inputs";
            /* A Gather from a constant table of 64 K values or more (an embedding) has no
             * dynamic float input to follow: it reads the table in the lowest enabled precision
             * (bf16 before fp16: range), which halves the rows it moves and the table's copy in
             * the engine, and the ops after it follow (GPT-2 b32 on CUDA: the f32 lookup, the
             * position Add, the first LayerNorm and two Casts took 53 us). A tied table (GPT-2's
             * LM head reads it too) is rounded once for both. */
            if (embedding_gather(g, &g->nodes[ni])) {
                if (enabled & MIXRT_PRECISION_BF16) p = MIXRT_DTYPE_BF16;
                else if (enabled & MIXRT_PRECISION_FP16) p = MIXRT_DTYPE_F16;
                if (p != MIXRT_DTYPE_F32) how = "an embedding table: the lowest enabled precision";
            }
            /* Its f32 data inputs larger than its narrow ones: the Casts go on the small side
             * (a squeeze-excite scale multiplies the f32 map by a gate of C values that a bf16
             * 1x1 conv made: following the gate cast the whole map down and back, and ran the Mul
             * on bf16 storage; MobileNetV3-Large {fp32,bf16} on a CPU without AVX512-BF16 was
             * 1.6x its f32 engine so). Static shapes only. */
            if (p != MIXRT_DTYPE_F32) {
                int64_t wide = 0, thin = 0;
                const struct mixrt_node *fn = &g->nodes[ni];
                for (int j = 0; j < fn->n_inputs && wide >= 0; j++) {
                    if (!data_input(g, fn, fo, j) || mixrt_graph_is_fixed_const(g, fn->inputs[j])) continue;
                    const struct mixrt_value *v = &g->values[fn->inputs[j]];
                    int64_t k = static_numel(v);
                    if (k < 0) wide = -1;
                    else if (v->dtype == MIXRT_DTYPE_F32) wide += k;
                    else thin += k;
                }
                if (wide > thin) {
                    p = MIXRT_DTYPE_F32;
                    how = "fp32: its f32 inputs outweigh its narrow ones (the Casts go on the small side)";
                }
            }
            if (p == MIXRT_DTYPE_F16 && f16_risky(&g->nodes[ni])) {
                p = MIXRT_DTYPE_F32;
                how = "fp32: its outputs may overflow fp16";
            }
            if (p != MIXRT_DTYPE_F32 && enlarges_f32_output(g, &g->nodes[ni])) {
                p = MIXRT_DTYPE_F32;
                how = "fp32: it enlarges its input into an f32 graph output (the Cast goes on the small side)";
            }
            if (rule) {
                p = rule->dtype;
                how = "--layer-precision";
            }
        }
        if (opts->verbose)
            mixrt_log(ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): %s (%s)", g->nodes[ni].name, g->nodes[ni].op_type,
                      prec_name(p), how);
        /* Retype: data inputs to p, float outputs to p. */
        for (int j = 0; j < g->nodes[ni].n_inputs; j++) {
            if (!data_input(g, &g->nodes[ni], fo, j)) continue;
            int nvi, vi = g->nodes[ni].inputs[j];
            MIXRT_TRY(value_as(&ls, vi, p, &nvi));
            g->nodes[ni].inputs[j] = nvi;
            if (nvi != vi) unread(&ls, vi);
        }
        for (int j = 0; j < g->nodes[ni].n_outputs; j++) {
            int vo = g->nodes[ni].outputs[j];
            /* Output 0 of every flexible op (every output of Split) is of the type
             * variable T, known or not. */
            bool t_out = j == 0 || !strcmp(g->nodes[ni].op_type, "Split");
            if (vo >= 0 && (g->values[vo].dtype == MIXRT_DTYPE_F32 ||
                            (t_out && g->values[vo].dtype == MIXRT_DTYPE_UNDEFINED)))
                g->values[vo].dtype = p;
        }
    }
    /* Graph outputs keep the dtype they had before lowering (the I/O contract). */
    for (int i = 0; i < g->n_outputs; i++) {
        int vo = g->outputs[i];
        mixrt_dtype d = g->values[vo].dtype;
        if (g->values[vo].producer < 0 || d == out_dtype[i]) continue;
        /* The value's dtype field was lowered with its producer: restore the contract. */
        g->values[vo].dtype = out_dtype[i];
        char suffix[16];
        snprintf(suffix, sizeof(suffix), "__%s", prec_name(d));
        MIXRT_CHECK(ctx, split_output(g, vo, d, suffix) >= 0, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < opts->n_layer_precisions; i++)
        if (!rule_used[i]) {
            MIXRT_CHECK(ctx, opts->constraints != MIXRT_CONSTRAINTS_OBEY, MIXRT_STATUS_INVALID_ARGUMENT,
                        "--layer-precision '%s:%s' matches no layer (--precision-constraints obey)",
                        opts->layer_precisions[i].glob, prec_name(opts->layer_precisions[i].dtype));
            mixrt_log(ctx, MIXRT_LOG_WARNING, "--layer-precision '%s:%s' matches no layer",
                      opts->layer_precisions[i].glob, prec_name(opts->layer_precisions[i].dtype));
        }
    MIXRT_TRY(mixrt_graph_toposort(g, &g->order));
fail:
    mixrt_free(ctx, order, (size_t)(nn0 > 0 ? nn0 : 1) * sizeof(int));
    mixrt_free(ctx, rule_used, (opts->n_layer_precisions + 1) * sizeof(bool));
    mixrt_free(ctx, out_dtype, (size_t)(n_out0 + 1) * sizeof(mixrt_dtype));
    mixrt_free(ctx, ls.outer, (size_t)(nv0 > 0 ? nv0 : 1) * sizeof(bool));
    mixrt_free(ctx, ls.cc, (size_t)ls.capcc * sizeof(*ls.cc));
    mixrt_free(ctx, ls.uses, (size_t)(nv0 > 0 ? nv0 : 1) * sizeof(int));
    return status;
}

mixrt_status mixrt_plan_check_strong(struct mixrt_graph *g, const struct mixrt_build_options *opts) {
    if (!opts->n_layer_precisions) return MIXRT_STATUS_OK;
    for (size_t i = 0; i < opts->n_layer_precisions; i++) {
        const struct mixrt_layer_precision *r = &opts->layer_precisions[i];
        for (int n = 0; n < g->n_nodes; n++) {
            if (fnmatch(r->glob, g->nodes[n].name, 0) != 0) continue;
            if (opts->constraints == MIXRT_CONSTRAINTS_OBEY)
                return mixrt_error(g->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "cannot build %s node '%s': "
                                   "--layer-precision '%s:%s' cannot be obeyed with --strongly-typed (every tensor "
                                   "keeps its declared dtype)", g->nodes[n].op_type, g->nodes[n].name, r->glob,
                                   prec_name(r->dtype));
            if (opts->constraints == MIXRT_CONSTRAINTS_PREFER)
                mixrt_log(g->ctx, MIXRT_LOG_WARNING, "--layer-precision '%s:%s' is ignored with --strongly-typed",
                          r->glob, prec_name(r->dtype));
            break;
        }
    }
    return MIXRT_STATUS_OK;
}
