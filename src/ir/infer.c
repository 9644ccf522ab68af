/* infer.c - static shape and type inference over the IR. Fills dtype, rank and dims of
 * values where they follow from graph inputs, constants and attributes; symbolic dims
 * (dim_param) travel through element-wise, broadcast, matmul, conv/pool and layout ops.
 * Inference only adds knowledge: what cannot be derived statically stays unknown and is
 * settled at run time by the kernels; a derived fact that contradicts a declared one
 * replaces it, with a warning naming the node and value. */
#include <stdio.h>
#include <math.h>
#include <string.h>

#include "ir/graph.h"

struct shape {
    mixrt_dtype dtype;
    int rank; /* -1 unknown */
    struct mixrt_dim d[MIXRT_MAX_RANK];
};

static struct shape unknown_shape(mixrt_dtype dt) {
    struct shape s;
    memset(&s, 0, sizeof(s));
    s.dtype = dt;
    s.rank = -1;
    return s;
}

static struct shape value_shape(const struct mixrt_graph *g, int vi) {
    struct shape s = unknown_shape(MIXRT_DTYPE_UNDEFINED);
    if (vi < 0) return s;
    const struct mixrt_value *v = &g->values[vi];
    if (v->flags & MIXRT_VALUE_SEQUENCE) return s;
    s.dtype = v->dtype;
    s.rank = v->rank;
    for (int i = 0; i < v->rank && i < MIXRT_MAX_RANK; i++) s.d[i] = v->dims[i];
    return s;
}

static struct mixrt_dim dim_known(int64_t v) {
    struct mixrt_dim d = {v, NULL};
    return d;
}
static struct mixrt_dim dim_unknown(void) {
    struct mixrt_dim d = {-1, NULL};
    return d;
}
/* Products and sums of dims from untrusted models: -1 (unknown) on overflow. */
static int64_t mul_dims(int64_t a, int64_t b) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return -1;
    return r;
}
static int64_t add_dims(int64_t a, int64_t b) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return -1;
    return r;
}

static bool dim_is(const struct mixrt_dim *d, int64_t v) { return d->value == v; }
static bool dim_same(const struct mixrt_dim *a, const struct mixrt_dim *b) {
    if (a->value >= 0 || b->value >= 0) return a->value == b->value;
    return a->param && b->param && !strcmp(a->param, b->param);
}

/* Broadcast of two dims: equal, or one is 1; unknown when it cannot be decided. */
static bool dim_broadcast(const struct mixrt_dim *a, const struct mixrt_dim *b, struct mixrt_dim *out) {
    if (dim_same(a, b)) *out = *a;
    else if (dim_is(a, 1)) *out = *b;
    else if (dim_is(b, 1)) *out = *a;
    else if (a->value >= 0 && b->value >= 0) return false;
    else if (a->value > 1) *out = *a; /* the other, symbolic, must be 1 or equal */
    else if (b->value > 1) *out = *b;
    else *out = dim_unknown();
    return true;
}

static bool shape_broadcast(const struct shape *a, const struct shape *b, struct shape *out) {
    if (a->rank < 0 || b->rank < 0) {
        out->rank = -1;
        return true;
    }
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        struct mixrt_dim one = dim_known(1);
        const struct mixrt_dim *da = i - (r - a->rank) >= 0 ? &a->d[i - (r - a->rank)] : &one;
        const struct mixrt_dim *db = i - (r - b->rank) >= 0 ? &b->d[i - (r - b->rank)] : &one;
        if (!dim_broadcast(da, db, &out->d[i])) return false;
    }
    return true;
}

static bool const_ints(const struct mixrt_graph *g, int vi, int64_t *vals, int max, int *n) {
    if (vi < 0 || !g->values[vi].init) return false;
    const struct mixrt_tensor *t = g->values[vi].init;
    if (!mixrt_dtype_is_int(t->dtype)) return false;
    size_t cnt = mixrt_tensor_numel(t);
    if (cnt > (size_t)max) return false;
    for (size_t i = 0; i < cnt; i++) vals[i] = mixrt_load_i64(t->data, t->dtype, i);
    *n = (int)cnt;
    return true;
}

static bool is_unary_same(const char *op) {
    static const char *const ops[] = {
        "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan",
        "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Erf", "Relu", "LeakyRelu", "PRelu", "Elu",
        "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Tanh", "ThresholdedRelu", "Celu",
        "Gelu", "Mish", "Shrink", "Clip", "Identity", "Softmax", "LogSoftmax", "Hardmax", "LRN",
        "InstanceNormalization", "BatchNormalization", "LayerNormalization", "GroupNormalization",
        "MeanVarianceNormalization", "LpNormalization", "Dropout", "CumSum", "Not", "BitwiseNot", "Trilu", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(op, ops[i])) return true;
    return false;
}

static bool is_broadcast(const char *op, bool *to_bool) {
    static const char *const arith[] = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean",
                                        "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", NULL};
    static const char *const cmp[] = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor",
                                      NULL};
    for (int i = 0; arith[i]; i++)
        if (!strcmp(op, arith[i])) {
            *to_bool = false;
            return true;
        }
    for (int i = 0; cmp[i]; i++)
        if (!strcmp(op, cmp[i])) {
            *to_bool = true;
            return true;
        }
    return false;
}

/* Spatial output size of a conv/pool window; -1 when unknown. */
static int64_t window_out(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t pb, int64_t pe, bool ceil_mode,
                          const char *auto_pad) {
    if (in < 0 || k <= 0 || stride <= 0 || dil <= 0 || pb < 0 || pe < 0) return -1;
    int64_t ek = add_dims(mul_dims(k - 1, dil), 1);
    if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) return in / stride + (in % stride != 0);
    if (!strcmp(auto_pad, "VALID")) pb = pe = 0;
    int64_t padded = add_dims(add_dims(in, pb), pe);
    if (ek < 0 || padded < 0) return -1;
    int64_t out = mixrt_window_out(in, ek, stride, pb, pe, ceil_mode);
    return out >= 1 ? out : -1;
}

/* Axes list of a Reduce or Squeeze node: from the attribute (older opsets) or a constant input;
 * *n = -1 when absent (every axis), false when it cannot be known here. */
static bool node_axes(const struct mixrt_graph *g, const struct mixrt_node *n, bool input_form, int input,
                      int64_t *ax, int *na) {
    *na = -1;
    if (!input_form) {
        size_t cnt = 0;
        const int64_t *a = mixrt_node_attr_ints(n, "axes", &cnt);
        if (!a) return true;
        if (cnt > MIXRT_MAX_RANK) return false;
        memcpy(ax, a, cnt * sizeof(int64_t));
        *na = (int)cnt;
        return true;
    }
    if (n->n_inputs <= input || n->inputs[input] < 0) return true;
    return const_ints(g, n->inputs[input], ax, MIXRT_MAX_RANK, na);
}

/* Marks axes (normalized against rank r) in m; false when one is out of range or repeated. */
static bool mark_axes(const int64_t *ax, int na, int r, bool *m) {
    for (int i = 0; i < r; i++) m[i] = false;
    for (int i = 0; i < na; i++) {
        int64_t v = ax[i] < 0 ? ax[i] + r : ax[i];
        if (v < 0 || v >= r || m[v]) return false;
        m[v] = true;
    }
    return true;
}

/* Slice's output length on an axis of length len (the spec's clamping), -1 when len is unknown. */
static int64_t slice_len(int64_t len, int64_t start, int64_t end, int64_t step) {
    if (len < 0 || step == 0 || step == INT64_MIN) return -1;
    if (start < 0) start = start < -len ? 0 : start + len;
    if (end < 0) end = end < -len ? -1 : end + len;
    if (step > 0) {
        if (start > len) start = len;
        if (end < 0) end = 0;
        if (end > len) end = len;
        return end > start ? (end - start - 1) / step + 1 : 0;
    }
    if (start > len - 1) start = len - 1;
    if (end > len - 1) end = len - 1;
    return start > end ? (start - end - 1) / (-step) + 1 : 0;
}

/* Shapes of the data-movement and reduction ops whose sizes come from constant inputs or
 * attributes: Gather, Squeeze, Reduce*, ArgMax/ArgMin, TopK, Slice, Split, Expand, Tile, Pad,
 * Resize, DepthToSpace, SpaceToDepth. rank -1 when not known here. */
static struct shape infer_data_op(const struct mixrt_graph *g, const struct mixrt_node *n, int oi,
                                  const struct shape *x) {
    const char *op = n->op_type;
    struct shape out = unknown_shape(x->dtype);
    if (x->rank < 0) return out;
    int64_t v[MIXRT_MAX_RANK * 2];
    int nv = 0;
    bool m[MIXRT_MAX_RANK];
    if (oi == 0 && !strcmp(op, "Gather") && n->n_inputs == 2) {
        struct shape idx = value_shape(g, n->inputs[1]);
        int64_t axis = mixrt_node_attr_int(n, "axis", 0);
        if (axis < 0) axis += x->rank;
        if (idx.rank < 0 || axis < 0 || axis >= x->rank || x->rank - 1 + idx.rank > MIXRT_MAX_RANK) return out;
        out.rank = 0;
        for (int i = 0; i < axis; i++) out.d[out.rank++] = x->d[i];
        for (int i = 0; i < idx.rank; i++) out.d[out.rank++] = idx.d[i];
        for (int i = (int)axis + 1; i < x->rank; i++) out.d[out.rank++] = x->d[i];
        return out;
    }
    if (oi == 0 && !strcmp(op, "GatherElements") && n->n_inputs == 2) { /* the indices' shape */
        struct shape idx = value_shape(g, n->inputs[1]);
        if (idx.rank != x->rank) return out;
        idx.dtype = x->dtype;
        return idx;
    }
    if (oi == 0 && !strcmp(op, "Squeeze")) {
        if (!node_axes(g, n, n->opset >= 13, 1, v, &nv)) return out;
        if (nv < 0) { /* every axis of length 1: only when all are known */
            for (int i = 0; i < x->rank; i++)
                if (x->d[i].value < 0) return out;
            out.rank = 0;
            for (int i = 0; i < x->rank; i++)
                if (x->d[i].value != 1) out.d[out.rank++] = x->d[i];
            return out;
        }
        if (!mark_axes(v, nv, x->rank, m)) return out;
        out.rank = 0;
        for (int i = 0; i < x->rank; i++) {
            if (m[i] && x->d[i].value != 1) return unknown_shape(x->dtype); /* the kernel names the error */
            if (!m[i]) out.d[out.rank++] = x->d[i];
        }
        return out;
    }
    if (oi == 0 && !strncmp(op, "Reduce", 6)) {
        bool input_form = n->opset >= 18 || (!strcmp(op, "ReduceSum") && n->opset >= 13);
        if (!node_axes(g, n, input_form, 1, v, &nv)) return out;
        bool keep = mixrt_node_attr_int(n, "keepdims", 1) != 0;
        if (nv <= 0 && input_form && mixrt_node_attr_int(n, "noop_with_empty_axes", 0)) return *x;
        if (nv <= 0) {
            for (int i = 0; i < x->rank; i++) m[i] = true;
        } else if (!mark_axes(v, nv, x->rank, m)) {
            return out;
        }
        out.rank = 0;
        for (int i = 0; i < x->rank; i++) {
            if (!m[i]) out.d[out.rank++] = x->d[i];
            else if (keep) out.d[out.rank++] = dim_known(1);
        }
        return out;
    }
    if (oi == 0 && (!strcmp(op, "ArgMax") || !strcmp(op, "ArgMin"))) {
        int64_t axis = mixrt_node_attr_int(n, "axis", 0);
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis >= x->rank) return out; /* the kernel names the error */
        bool keep = mixrt_node_attr_int(n, "keepdims", 1) != 0;
        out.rank = 0;
        out.dtype = MIXRT_DTYPE_I64;
        for (int i = 0; i < x->rank; i++) {
            if (i != axis) out.d[out.rank++] = x->d[i];
            else if (keep) out.d[out.rank++] = dim_known(1);
        }
        return out;
    }
    if (!strcmp(op, "TopK") && oi < 2) {
        int64_t axis = mixrt_node_attr_int(n, "axis", -1), kk;
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis >= x->rank) return out;
        if (n->opset < 10) {
            if (!mixrt_node_attr(n, "k")) return out;
            kk = mixrt_node_attr_int(n, "k", 0);
        } else {
            if (n->n_inputs < 2 || !const_ints(g, n->inputs[1], v, 1, &nv) || nv != 1) return out;
            kk = v[0];
        }
        if (kk < 0 || (x->d[axis].value >= 0 && kk > x->d[axis].value)) return out; /* the kernel names it */
        out = *x;
        out.d[axis] = dim_known(kk);
        if (oi == 1) out.dtype = MIXRT_DTYPE_I64;
        return out;
    }
    if (oi == 0 && !strcmp(op, "Slice") && n->opset >= 10 && n->n_inputs >= 3) {
        int64_t st[MIXRT_MAX_RANK], en[MIXRT_MAX_RANK], ax[MIXRT_MAX_RANK], sp[MIXRT_MAX_RANK];
        int ns, ne, na = -1, nsp = -1;
        if (!const_ints(g, n->inputs[1], st, MIXRT_MAX_RANK, &ns) ||
            !const_ints(g, n->inputs[2], en, MIXRT_MAX_RANK, &ne) || ns != ne)
            return out;
        if (n->n_inputs > 3 && n->inputs[3] >= 0 && !const_ints(g, n->inputs[3], ax, MIXRT_MAX_RANK, &na)) return out;
        if (n->n_inputs > 4 && n->inputs[4] >= 0 && !const_ints(g, n->inputs[4], sp, MIXRT_MAX_RANK, &nsp)) return out;
        if ((na >= 0 && na != ns) || (nsp >= 0 && nsp != ns)) return out;
        out = *x;
        for (int i = 0; i < ns; i++) {
            int64_t a = na >= 0 ? ax[i] : i;
            if (a < 0) a += x->rank;
            if (a < 0 || a >= x->rank) return unknown_shape(x->dtype);
            int64_t len = slice_len(x->d[a].value, st[i], en[i], nsp >= 0 ? sp[i] : 1);
            out.d[a] = len >= 0 ? dim_known(len) : dim_unknown();
        }
        return out;
    }
    if (!strcmp(op, "Split") && oi < n->n_outputs) {
        int64_t axis = mixrt_node_attr_int(n, "axis", 0);
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis >= x->rank) return out;
        int64_t len = x->d[axis].value, part = -1;
        size_t cnt = 0;
        const int64_t *sa = n->opset < 13 ? mixrt_node_attr_ints(n, "split", &cnt) : NULL;
        if (sa && cnt == (size_t)n->n_outputs) {
            part = sa[oi];
        } else if (n->opset >= 13 && n->n_inputs > 1 && n->inputs[1] >= 0) {
            if (!const_ints(g, n->inputs[1], v, MIXRT_MAX_RANK * 2, &nv) || nv != n->n_outputs) return out;
            part = v[oi];
        } else if (!sa && len >= 0 && n->n_outputs > 0) {
            /* equal parts, the last one smaller (opset 18's num_outputs rule; exact otherwise) */
            int64_t each = (len + n->n_outputs - 1) / n->n_outputs;
            if (n->opset < 18 && len % n->n_outputs) return out;
            part = oi < n->n_outputs - 1 ? each : len - each * (n->n_outputs - 1);
        }
        if (part < 0) return out;
        out = *x;
        out.d[axis] = dim_known(part);
        return out;
    }
    if (oi == 0 && !strcmp(op, "Expand") && n->n_inputs == 2) {
        if (!const_ints(g, n->inputs[1], v, MIXRT_MAX_RANK, &nv)) return out;
        struct shape t = unknown_shape(x->dtype), r = unknown_shape(x->dtype);
        t.rank = nv;
        for (int i = 0; i < nv; i++) {
            if (v[i] < 0) return out;
            t.d[i] = dim_known(v[i]);
        }
        if (!shape_broadcast(x, &t, &r)) return out;
        r.dtype = x->dtype;
        return r;
    }
    if (oi == 0 && !strcmp(op, "Tile") && n->n_inputs == 2) {
        if (!const_ints(g, n->inputs[1], v, MIXRT_MAX_RANK, &nv) || nv != x->rank) return out;
        out = *x;
        for (int i = 0; i < nv; i++) {
            int64_t d = v[i] >= 0 ? mul_dims(x->d[i].value, v[i]) : -1;
            out.d[i] = d >= 0 ? dim_known(d) : dim_unknown();
        }
        return out;
    }
    if (oi == 0 && !strcmp(op, "Pad")) {
        size_t cnt = 0;
        const int64_t *pa = n->opset < 11 ? mixrt_node_attr_ints(n, "pads", &cnt) : NULL;
        if (pa && cnt <= (size_t)(2 * MIXRT_MAX_RANK)) memcpy(v, pa, cnt * sizeof(int64_t)), nv = (int)cnt;
        else if (n->opset < 11 || n->n_inputs < 2 || (n->n_inputs > 3 && n->inputs[3] >= 0) ||
                 !const_ints(g, n->inputs[1], v, MIXRT_MAX_RANK * 2, &nv))
            return out;
        if (nv != 2 * x->rank) return out;
        out = *x;
        for (int i = 0; i < x->rank; i++) {
            int64_t d = -1; /* pads may be negative (crops); untrusted sums must not overflow */
            if (x->d[i].value >= 0 && (__builtin_add_overflow(x->d[i].value, v[i], &d) ||
                                       __builtin_add_overflow(d, v[x->rank + i], &d)))
                d = -1;
            out.d[i] = d >= 0 ? dim_known(d) : dim_unknown();
        }
        return out;
    }
    if (oi == 0 && !strcmp(op, "Resize") && n->opset >= 11 && !mixrt_node_attr(n, "axes")) {
        const char *ct = mixrt_node_attr_string(n, "coordinate_transformation_mode", "half_pixel");
        if (!strcmp(ct, "tf_crop_and_resize")) return out;
        const char *kar = mixrt_node_attr_string(n, "keep_aspect_ratio_policy", "stretch");
        out = *x;
        if (n->n_inputs > 3 && n->inputs[3] >= 0) {
            if (strcmp(kar, "stretch") || !const_ints(g, n->inputs[3], v, MIXRT_MAX_RANK, &nv) || nv != x->rank)
                return unknown_shape(x->dtype);
            for (int i = 0; i < nv; i++) out.d[i] = v[i] >= 0 ? dim_known(v[i]) : dim_unknown();
            return out;
        }
        int sv = n->n_inputs > 2 ? n->inputs[2] : -1;
        const struct mixrt_tensor *sc = sv >= 0 ? g->values[sv].init : NULL;
        if (!sc || sc->dtype != MIXRT_DTYPE_F32 || mixrt_tensor_numel(sc) != (size_t)x->rank)
            return unknown_shape(x->dtype);
        for (int i = 0; i < x->rank; i++) {
            double f = (double)((const float *)sc->data)[i], d = x->d[i].value >= 0 ? floor((double)x->d[i].value * f) : -1;
            out.d[i] = d >= 0 && d < 9.0e15 ? dim_known((int64_t)d) : dim_unknown();
        }
        return out;
    }
    if (oi == 0 && !strcmp(op, "Range") && n->n_inputs == 3) {
        /* constant integer start, limit, delta: max(ceil((limit - start) / delta), 0) elements */
        int64_t a[1] = {0}, b[1] = {0}, d[1] = {0};
        int na, nb, nd;
        if (!const_ints(g, n->inputs[0], a, 1, &na) || !const_ints(g, n->inputs[1], b, 1, &nb) ||
            !const_ints(g, n->inputs[2], d, 1, &nd) || na != 1 || nb != 1 || nd != 1 || d[0] == 0)
            return out;
        double c = ceil(((double)b[0] - (double)a[0]) / (double)d[0]);
        out.rank = 1;
        out.d[0] = c <= 0 ? dim_known(0) : c < 9.0e15 ? dim_known((int64_t)c) : dim_unknown();
        return out;
    }
    if (oi == 0 && (!strcmp(op, "DepthToSpace") || !strcmp(op, "SpaceToDepth")) && x->rank == 4) {
        int64_t b = mixrt_node_attr_int(n, "blocksize", 0), c = x->d[1].value, bb = mul_dims(b, b);
        if (b < 1 || bb < 1) return out;
        out = *x;
        bool d2s = op[0] == 'D';
        out.d[1] = c < 0 ? dim_unknown() : d2s ? (c % bb ? dim_unknown() : dim_known(c / bb)) : dim_known(mul_dims(c, bb));
        for (int i = 2; i < 4; i++) {
            int64_t d = x->d[i].value;
            out.d[i] = d < 0 ? dim_unknown() : d2s ? dim_known(mul_dims(d, b)) : (d % b ? dim_unknown() : dim_known(d / b));
        }
        return out;
    }
    return out;
}

/* The elements of shape tensor vi that a Concat of 1-D pieces makes known - its constant
 * pieces' - into out's dims (out.rank already the tensor's length). torchvision's
 * MultiScaleRoIAlign makes its result zeros of [boxes, C, 14, 14], boxes from the data: known,
 * C and the output size let the mask head after it be planned (timed, channels-last). */
static void concat_shape_elements(const struct mixrt_graph *g, int vi, struct shape *out) {
    const struct mixrt_node *c = vi >= 0 && g->values[vi].producer >= 0 ? &g->nodes[g->values[vi].producer] : NULL;
    if (!c || c->domain[0] || strcmp(c->op_type, "Concat")) return;
    int at = 0;
    for (int j = 0; j < c->n_inputs; j++) {
        const struct mixrt_value *p = c->inputs[j] >= 0 ? &g->values[c->inputs[j]] : NULL;
        if (!p || p->rank != 1 || p->dims[0].value < 0 || at + p->dims[0].value > out->rank) return;
        const struct mixrt_tensor *t = p->init;
        for (int64_t e = 0; e < p->dims[0].value; e++, at++)
            if (t && t->data && (t->dtype == MIXRT_DTYPE_I64 || t->dtype == MIXRT_DTYPE_I32) &&
                mixrt_tensor_numel(t) == (size_t)p->dims[0].value) {
                int64_t d = mixrt_load_i64(t->data, t->dtype, (size_t)e);
                if (d >= 0) out->d[at] = dim_known(d);
            }
    }
}

/* Dtype-only facts for ops whose shapes are not inferred here (or not from these inputs: the
 * data ops above without constant sizes): the precision planner
 * needs to know which values are float data even where shapes stay unknown. */
static struct shape infer_dtype_only(const struct mixrt_graph *g, const struct mixrt_node *n, int oi,
                                     const struct shape *x) {
    static const char *const same0[] = {
        "Expand", "Tile", "Gather", "GatherElements", "GatherND", "Slice", "Squeeze", "Pad", "ReduceMean",
        "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
        "ReduceLogSumExp", "ReduceSumSquare", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth", "ScatterND",
        "ScatterElements", "Scatter", "ReverseSequence", "Compress", "Range", "Einsum",
        "GlobalLpPool", "MaxUnpool", "RoiAlign", "GridSample", "CenterCropPad", "Col2Im", NULL};
    /* Shaping ops whose rank is unknown still give their dtype. */
    static const char *const same0_shaping[] = {"Unsqueeze", "Reshape", "Transpose", "Flatten", "Concat", NULL};
    for (int i = 0; same0_shaping[i]; i++)
        if (oi == 0 && !strcmp(n->op_type, same0_shaping[i])) return unknown_shape(x->dtype);
    const char *op = n->op_type;
    struct shape out = unknown_shape(MIXRT_DTYPE_UNDEFINED);
    /* Ranks that data-dependent sizes do not hide (detectors: MultiScaleRoIAlign's zeros of a
     * computed shape, filled level by level with ScatterElements of RoiAlign results, so that
     * the mask head after it is known to be 4-D). */
    if (oi == 0 && !strcmp(op, "RoiAlign") && n->n_inputs >= 2) {
        out = unknown_shape(x->dtype);
        out.rank = 4;
        struct shape r = value_shape(g, n->inputs[1]);
        out.d[0] = r.rank == 2 ? r.d[0] : dim_unknown();
        out.d[1] = x->rank == 4 ? x->d[1] : dim_unknown();
        out.d[2] = dim_known(mixrt_node_attr_int(n, "output_height", 1));
        out.d[3] = dim_known(mixrt_node_attr_int(n, "output_width", 1));
        return out;
    }
    if (oi == 0 && (!strcmp(op, "ScatterElements") || !strcmp(op, "Scatter")) && n->n_inputs >= 3) {
        if (x->rank >= 0) return *x; /* the data's shape */
        struct shape u = value_shape(g, n->inputs[2]), ix = value_shape(g, n->inputs[1]);
        out = unknown_shape(x->dtype);
        out.rank = u.rank >= 0 ? u.rank : ix.rank; /* all three share one rank */
        for (int i = 0; i < out.rank; i++) out.d[i] = dim_unknown();
        return out;
    }
    if (oi == 0 && !strcmp(op, "ConstantOfShape") && x->rank == 1 && x->d[0].value >= 0 &&
        x->d[0].value <= MIXRT_MAX_RANK) {
        const struct mixrt_attr *v = mixrt_node_attr(n, "value");
        out = unknown_shape(v && v->t ? v->t->dtype : MIXRT_DTYPE_F32);
        out.rank = (int)x->d[0].value;
        for (int i = 0; i < out.rank; i++) out.d[i] = dim_unknown();
        concat_shape_elements(g, n->inputs[0], &out);
        return out;
    }
    /* ScatterND and ReverseSequence write into a copy of their data */
    if (oi == 0 && (!strcmp(op, "ScatterND") || !strcmp(op, "ReverseSequence")) && x->rank >= 0) return *x;
    for (int i = 0; same0[i]; i++)
        if (oi == 0 && !strcmp(op, same0[i])) return unknown_shape(x->dtype);
    if (!strcmp(op, "Split")) return unknown_shape(x->dtype);
    if (!strcmp(op, "TopK")) return unknown_shape(oi == 0 ? x->dtype : MIXRT_DTYPE_I64);
    if (oi == 0 && (!strcmp(op, "NonZero") || !strcmp(op, "ArgMax") || !strcmp(op, "ArgMin")))
        return unknown_shape(MIXRT_DTYPE_I64);
    if (oi == 0 && !strcmp(op, "Size")) {
        out.dtype = MIXRT_DTYPE_I64;
        out.rank = 0;
        return out;
    }
    if (oi == 0 && !strcmp(op, "ConstantOfShape")) {
        const struct mixrt_attr *v = mixrt_node_attr(n, "value");
        return unknown_shape(v && v->t ? v->t->dtype : MIXRT_DTYPE_F32);
    }
    if (oi == 0 && !strcmp(op, "OneHot") && n->n_inputs >= 3) return unknown_shape(value_shape(g, n->inputs[2]).dtype);
    if (oi == 0 && !strcmp(op, "DequantizeLinear") && n->n_inputs >= 2 && n->inputs[1] >= 0) {
        /* The shape of x in the dtype of the scale (f32 before opset 19). */
        out = *x;
        out.dtype = n->opset < 19 ? MIXRT_DTYPE_F32 : value_shape(g, n->inputs[1]).dtype;
        return out;
    }
    return out;
}

/* Output 0 shape of Conv / pooling ops from input 0 (and W for Conv). */
static struct shape infer_window(const struct mixrt_graph *g, const struct mixrt_node *n, bool is_conv) {
    struct shape x = value_shape(g, n->inputs[0]), out = unknown_shape(x.dtype);
    if (x.rank < 3) return out;
    int sp = x.rank - 2;
    int64_t kshape[MIXRT_MAX_RANK];
    size_t nk, ns, nd, np;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk);
    const int64_t *st = mixrt_node_attr_ints(n, "strides", &ns);
    const int64_t *dl = mixrt_node_attr_ints(n, "dilations", &nd);
    const int64_t *pd = mixrt_node_attr_ints(n, "pads", &np);
    const char *auto_pad = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    bool ceil_mode = mixrt_node_attr_int(n, "ceil_mode", 0) != 0;
    struct shape w = unknown_shape(MIXRT_DTYPE_UNDEFINED);
    if (is_conv) {
        if (n->n_inputs < 2) return out;
        w = value_shape(g, n->inputs[1]);
        if (w.rank != x.rank) return out;
    }
    for (int i = 0; i < sp; i++) {
        if (nk == (size_t)sp) kshape[i] = ks[i];
        else if (is_conv) kshape[i] = w.d[2 + i].value;
        else return out;
    }
    if ((ns && ns != (size_t)sp) || (nd && nd != (size_t)sp) || (np && np != (size_t)(2 * sp))) return out;
    out.rank = x.rank;
    out.d[0] = x.d[0];
    out.d[1] = is_conv ? w.d[0] : x.d[1];
    for (int i = 0; i < sp; i++) {
        int64_t v = window_out(x.d[2 + i].value, kshape[i], ns ? st[i] : 1, nd ? dl[i] : 1, np ? pd[i] : 0,
                               np ? pd[sp + i] : 0, ceil_mode, auto_pad);
        out.d[2 + i] = v >= 0 ? dim_known(v) : dim_unknown();
    }
    return out;
}

/* ConvTranspose: Y [N, W[1] * group, out..] with out = stride * (in - 1) + output_padding +
 * (k - 1) * dilation + 1 - pads, or in * stride under auto_pad SAME_*, or output_shape when
 * given; unknown dims stay unknown. */
static struct shape infer_conv_transpose(const struct mixrt_graph *g, const struct mixrt_node *n) {
    struct shape x = value_shape(g, n->inputs[0]), out = unknown_shape(x.dtype);
    if (x.rank < 3 || n->n_inputs < 2 || n->inputs[1] < 0) return out;
    struct shape w = value_shape(g, n->inputs[1]);
    if (w.rank != x.rank) return out;
    int sp = x.rank - 2;
    size_t nk, ns, nd, np, nop, nos;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk);
    const int64_t *st = mixrt_node_attr_ints(n, "strides", &ns);
    const int64_t *dl = mixrt_node_attr_ints(n, "dilations", &nd);
    const int64_t *pd = mixrt_node_attr_ints(n, "pads", &np);
    const int64_t *op = mixrt_node_attr_ints(n, "output_padding", &nop);
    const int64_t *os = mixrt_node_attr_ints(n, "output_shape", &nos);
    const char *auto_pad = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    bool same = !strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER"), valid = !strcmp(auto_pad, "VALID");
    int64_t group = mixrt_node_attr_int(n, "group", 1);
    if ((nk && nk != (size_t)sp) || (ns && ns != (size_t)sp) || (nd && nd != (size_t)sp) ||
        (np && np != (size_t)(2 * sp)) || (nop && nop != (size_t)sp) ||
        (os && nos != (size_t)sp && nos != (size_t)sp + 2) || group < 1)
        return out;
    out.rank = x.rank;
    out.d[0] = x.d[0];
    out.d[1] = w.d[1].value >= 0 ? dim_known(mul_dims(w.d[1].value, group)) : dim_unknown();
    for (int i = 0; i < sp; i++) {
        int64_t in = x.d[2 + i].value, k = nk ? ks[i] : w.d[2 + i].value, s = ns ? st[i] : 1, d = nd ? dl[i] : 1,
                v = -1;
        if (os) v = os[nos - (size_t)sp + (size_t)i];
        else if (in >= 0 && same && s > 0) v = mul_dims(in, s);
        else if (in > 0 && k > 0 && s > 0 && d > 0) {
            int64_t pads = valid || !np ? 0 : add_dims(pd[i], pd[sp + i]);
            v = add_dims(add_dims(mul_dims(s, in - 1), nop ? op[i] : 0), add_dims(mul_dims(k - 1, d), 1)) - pads;
        }
        out.d[2 + i] = v >= 1 ? dim_known(v) : dim_unknown();
    }
    return out;
}

static struct shape infer_matmul(const struct shape *a, const struct shape *b) {
    struct shape out = unknown_shape(a->dtype);
    if (a->rank < 1 || b->rank < 1) return out;
    struct shape ba = *a, bb = *b;
    ba.rank = a->rank >= 2 ? a->rank - 2 : 0;
    bb.rank = b->rank >= 2 ? b->rank - 2 : 0;
    struct shape batch;
    if (!shape_broadcast(&ba, &bb, &batch) || batch.rank < 0) return out;
    out = batch;
    out.dtype = a->dtype;
    if (a->rank >= 2) out.d[out.rank++] = a->d[a->rank - 2];
    if (b->rank >= 2) out.d[out.rank++] = b->d[b->rank - 1];
    return out;
}

/* x (rank known) permuted by the node's perm (absent: reversed); unknown for a bad perm. */
static struct shape transposed(const struct mixrt_node *n, const struct shape *x) {
    size_t np;
    const int64_t *perm = mixrt_node_attr_ints(n, "perm", &np);
    struct shape out = *x;
    for (int i = 0; i < x->rank; i++) {
        int64_t p = np == (size_t)x->rank ? perm[i] : x->rank - 1 - i;
        if (p < 0 || p >= x->rank) return unknown_shape(x->dtype);
        out.d[i] = x->d[p];
    }
    return out;
}

static struct shape infer_node(const struct mixrt_graph *g, const struct mixrt_node *n, int oi) {
    const char *op = n->op_type;
    struct shape x = n->n_inputs > 0 ? value_shape(g, n->inputs[0]) : unknown_shape(MIXRT_DTYPE_UNDEFINED);
    struct shape out = unknown_shape(MIXRT_DTYPE_UNDEFINED);
    bool to_bool;
    if (!strcmp(n->domain, MIXRT_DOMAIN) && oi == 0) {
        /* The fusions' own ops whose shape rule is simple, so a value a fusion took over while
         * its shape was still unknown (folding made it known later) gets it too. */
        if (!strcmp(op, "Gelu") || !strcmp(op, "ElementwiseChain") || !strcmp(op, "RMSNormalization")) return x;
        if (!strcmp(op, "FusedMatMul") && n->n_inputs >= 2 && n->inputs[1] >= 0) {
            struct shape b = value_shape(g, n->inputs[1]);
            if (mixrt_node_attr_int(n, "transB", 0) && b.rank == 2) {
                struct mixrt_dim t = b.d[0];
                b.d[0] = b.d[1], b.d[1] = t;
            }
            return infer_matmul(&x, &b);
        }
        /* Conv fused while its input's rank was unknown: a channels-first FusedConv has Conv's
         * shape (its extra inputs - bias, residual - do not change it). */
        if (!strcmp(op, "FusedConv") && !mixrt_node_attr_int(n, "channels_last", 0)) return infer_window(g, n, true);
        if (!strcmp(op, "TransposeCast")) { /* Transpose's shape, Cast's dtype */
            x.dtype = (mixrt_dtype)mixrt_node_attr_int(n, "to", 0);
            return x.rank >= 0 ? transposed(n, &x) : unknown_shape(x.dtype);
        }
        return out;
    }
    if (n->domain[0]) return out;
    if (oi == 0 && is_unary_same(op)) return x;
    if (oi == 0 && (!strcmp(op, "IsNaN") || !strcmp(op, "IsInf"))) { /* x's shape, bool */
        x.dtype = MIXRT_DTYPE_BOOL;
        return x;
    }
    if (oi == 0 && is_broadcast(op, &to_bool)) {
        /* Inputs share one type (T): when input 0's is unknown, another input's tells it. */
        for (int i = 1; x.dtype == MIXRT_DTYPE_UNDEFINED && i < n->n_inputs && strcmp(op, "Pow") &&
                        strcmp(op, "BitShift");
             i++)
            if (n->inputs[i] >= 0) x.dtype = value_shape(g, n->inputs[i]).dtype;
        out = x;
        if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
            if (n->opset < 7 && mixrt_node_attr_int(n, "broadcast", 0)) return x; /* legacy: shape of A */
        }
        for (int i = 1; i < n->n_inputs; i++) {
            struct shape y = value_shape(g, n->inputs[i]), r = unknown_shape(x.dtype);
            if (!shape_broadcast(&out, &y, &r)) return unknown_shape(to_bool ? MIXRT_DTYPE_BOOL : x.dtype);
            out.rank = r.rank;
            memcpy(out.d, r.d, sizeof(r.d));
        }
        if (to_bool) out.dtype = MIXRT_DTYPE_BOOL;
        return out;
    }
    if (oi == 0 && !strcmp(op, "Where") && n->n_inputs == 3) {
        struct shape a = value_shape(g, n->inputs[1]), b = value_shape(g, n->inputs[2]);
        if (a.dtype == MIXRT_DTYPE_UNDEFINED) a.dtype = b.dtype;
        struct shape t = unknown_shape(a.dtype);
        if (shape_broadcast(&x, &a, &t) && shape_broadcast(&t, &b, &out)) out.dtype = a.dtype;
        else out = unknown_shape(a.dtype);
        return out;
    }
    if (oi == 0 && !strcmp(op, "Cast")) {
        int64_t to = mixrt_node_attr_int(n, "to", 0);
        out = x;
        out.dtype = to > 0 && to < MIXRT_DTYPE_COUNT ? (mixrt_dtype)to : MIXRT_DTYPE_UNDEFINED;
        return out;
    }
    if (oi == 0 && (!strcmp(op, "Conv") || !strcmp(op, "MaxPool") || !strcmp(op, "AveragePool") ||
                    !strcmp(op, "LpPool")))
        return infer_window(g, n, !strcmp(op, "Conv"));
    if (oi == 0 && !strcmp(op, "ConvTranspose")) return infer_conv_transpose(g, n);
    if (oi == 0 && (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool") || !strcmp(op, "GlobalLpPool"))) {
        out = x;
        for (int i = 2; i < x.rank; i++) out.d[i] = dim_known(1);
        return out;
    }
    if (oi == 0 && !strcmp(op, "MatMul") && n->n_inputs == 2) {
        struct shape b = value_shape(g, n->inputs[1]);
        return infer_matmul(&x, &b);
    }
    if (oi == 0 && !strcmp(op, "Gemm") && n->n_inputs >= 2) {
        struct shape b = value_shape(g, n->inputs[1]);
        out.dtype = x.dtype;
        if (x.rank == 2 && b.rank == 2) {
            out.rank = 2;
            out.d[0] = x.d[mixrt_node_attr_int(n, "transA", 0) ? 1 : 0];
            out.d[1] = b.d[mixrt_node_attr_int(n, "transB", 0) ? 0 : 1];
        }
        return out;
    }
    if (oi == 0 && !strcmp(op, "Flatten") && x.rank >= 0) {
        int64_t axis = mixrt_node_attr_int(n, "axis", 1);
        if (axis < 0) axis += x.rank;
        if (axis < 0 || axis > x.rank) return unknown_shape(x.dtype);
        out.dtype = x.dtype;
        out.rank = 2;
        int64_t a = 1, b = 1;
        for (int i = 0; i < x.rank; i++) {
            int64_t *p = i < axis ? &a : &b;
            *p = mul_dims(*p, x.d[i].value);
        }
        out.d[0] = a >= 0 ? dim_known(a) : (axis == 1 ? x.d[0] : dim_unknown());
        out.d[1] = b >= 0 ? dim_known(b) : dim_unknown();
        return out;
    }
    if (oi == 0 && !strcmp(op, "Transpose") && x.rank >= 0) return transposed(n, &x);
    if (oi == 0 && !strcmp(op, "Reshape") && n->opset >= 5 && n->n_inputs >= 2) {
        int64_t sh[MIXRT_MAX_RANK];
        int r;
        if (!const_ints(g, n->inputs[1], sh, MIXRT_MAX_RANK, &r)) return unknown_shape(x.dtype);
        bool allowzero = mixrt_node_attr_int(n, "allowzero", 0) != 0;
        int64_t known = 1;
        int infer_at = -1;
        bool all_known = x.rank >= 0;
        for (int i = 0; all_known && i < x.rank; i++)
            if (x.d[i].value < 0) all_known = false;
        out.dtype = x.dtype;
        out.rank = r;
        for (int i = 0; i < r; i++) {
            if (sh[i] == 0 && !allowzero) out.d[i] = i < x.rank ? x.d[i] : dim_unknown();
            else if (sh[i] == -1) {
                infer_at = i;
                out.d[i] = dim_unknown();
                continue;
            } else if (sh[i] < 0) return unknown_shape(x.dtype);
            else out.d[i] = dim_known(sh[i]);
            known = mul_dims(known, out.d[i].value);
        }
        if (infer_at >= 0 && all_known && known > 0) {
            int64_t total = 1;
            for (int i = 0; i < x.rank; i++) total = mul_dims(total, x.d[i].value);
            if (total >= 0 && total % known == 0) out.d[infer_at] = dim_known(total / known);
        }
        return out;
    }
    if (oi == 0 && !strcmp(op, "Concat") && x.rank >= 0) {
        int64_t axis = mixrt_node_attr_int(n, "axis", 1);
        if (axis < 0) axis += x.rank;
        if (axis < 0 || axis >= x.rank) return unknown_shape(x.dtype);
        out = x;
        int64_t sum = 0;
        for (int i = 0; i < n->n_inputs; i++) {
            struct shape y = value_shape(g, n->inputs[i]);
            sum = y.rank != x.rank ? -1 : add_dims(sum, y.d[axis].value);
        }
        out.d[axis] = sum >= 0 ? dim_known(sum) : dim_unknown();
        return out;
    }
    if (oi == 0 && !strcmp(op, "Shape")) {
        out.dtype = MIXRT_DTYPE_I64;
        out.rank = 1;
        out.d[0] = dim_unknown();
        if (x.rank >= 0) {
            /* opset 15: the [start, end) slice of the dims, clamped */
            int64_t st = n->opset >= 15 ? mixrt_node_attr_int(n, "start", 0) : 0,
                    en = n->opset >= 15 ? mixrt_node_attr_int(n, "end", x.rank) : x.rank;
            if (st < 0) st += x.rank;
            if (en < 0) en += x.rank;
            st = st < 0 ? 0 : st > x.rank ? x.rank : st;
            en = en < 0 ? 0 : en > x.rank ? x.rank : en;
            out.d[0] = dim_known(en > st ? en - st : 0);
        }
        return out;
    }
    if (oi == 0 && !strcmp(op, "Unsqueeze") && x.rank >= 0) {
        int64_t ax[MIXRT_MAX_RANK];
        int na = 0;
        size_t nattr;
        const int64_t *a = mixrt_node_attr_ints(n, "axes", &nattr);
        if (n->opset < 13 && a && nattr <= MIXRT_MAX_RANK) {
            na = (int)nattr;
            memcpy(ax, a, nattr * sizeof(int64_t));
        } else if (n->opset < 13 || n->n_inputs < 2 || !const_ints(g, n->inputs[1], ax, MIXRT_MAX_RANK, &na)) {
            return unknown_shape(x.dtype);
        }
        int r = x.rank + na;
        if (r > MIXRT_MAX_RANK) return unknown_shape(x.dtype);
        bool ins[MIXRT_MAX_RANK] = {0};
        for (int i = 0; i < na; i++) {
            int64_t v = ax[i] < 0 ? ax[i] + r : ax[i];
            if (v < 0 || v >= r || ins[v]) return unknown_shape(x.dtype);
            ins[v] = true;
        }
        out.dtype = x.dtype;
        out.rank = r;
        for (int i = 0, j = 0; i < r; i++) out.d[i] = ins[i] ? dim_known(1) : x.d[j++];
        return out;
    }
    if (!strcmp(op, "If") || !strcmp(op, "Loop") || !strcmp(op, "Scan")) return out;
    struct shape data = infer_data_op(g, n, oi, &x);
    if (data.rank >= 0) return data;
    return infer_dtype_only(g, n, oi, &x);
}

/* Merges inferred facts into the value; false on a contradiction with what it says. */
static bool merge(struct mixrt_value *v, const struct shape *s) {
    if (s->dtype != MIXRT_DTYPE_UNDEFINED) {
        if (v->dtype != MIXRT_DTYPE_UNDEFINED && v->dtype != s->dtype) return false;
        v->dtype = s->dtype;
    }
    if (s->rank < 0) return true;
    if (v->rank >= 0 && v->rank != s->rank) return false;
    if (v->rank < 0) {
        v->rank = s->rank;
        for (int i = 0; i < s->rank; i++) v->dims[i] = s->d[i];
        return true;
    }
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i].value >= 0) {
            if (v->dims[i].value >= 0 && v->dims[i].value != s->d[i].value) return false;
            v->dims[i].value = s->d[i].value;
            v->dims[i].param = NULL;
        } else if (v->dims[i].value < 0 && !v->dims[i].param && s->d[i].param) {
            v->dims[i].param = s->d[i].param;
        }
    }
    return true;
}

mixrt_status mixrt_graph_infer(struct mixrt_graph *g, int *contradictions_out) {
    char a[256], b[256];
    int contradictions = 0;
    for (int s = 0; s < g->n_nodes; s++) {
        const struct mixrt_node *n = &g->nodes[g->order ? g->order[s] : s];
        for (int oi = 0; oi < n->n_outputs; oi++) {
            int vi = n->outputs[oi];
            if (vi < 0) continue;
            struct shape sh = infer_node(g, n, oi);
            struct mixrt_value *v = &g->values[vi];
            if (!merge(v, &sh)) {
                /* Exporters leave stale value_info behind often enough that refusing the
                 * model would be wrong: warn, and keep what the inputs imply. */
                int64_t dd[MIXRT_MAX_RANK], vd[MIXRT_MAX_RANK];
                for (int i = 0; i < MIXRT_MAX_RANK; i++) {
                    dd[i] = sh.d[i].value;
                    vd[i] = v->dims[i].value;
                }
                mixrt_log(g->ctx, MIXRT_LOG_WARNING,
                          "%s node '%s' output #%d '%s' is declared %s %s but its inputs make it %s %s; using the "
                          "latter",
                          n->op_type, n->name, oi, v->name, mixrt_dtype_name(v->dtype),
                          v->rank >= 0 ? mixrt_dims_str(a, sizeof(a), v->rank, vd) : "[?]", mixrt_dtype_name(sh.dtype),
                          sh.rank >= 0 ? mixrt_dims_str(b, sizeof(b), sh.rank, dd) : "[?]");
                if (sh.dtype != MIXRT_DTYPE_UNDEFINED) v->dtype = sh.dtype;
                v->rank = sh.rank;
                for (int i = 0; i < sh.rank; i++) v->dims[i] = sh.d[i];
                contradictions++;
            }
        }
    }
    if (contradictions_out) *contradictions_out = contradictions;
    return MIXRT_STATUS_OK;
}
