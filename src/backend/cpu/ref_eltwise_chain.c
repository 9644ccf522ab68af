/* ref_eltwise_chain.c - the reference kernel of com.mixrt ElementwiseChain (spec at the top of
 * src/passes/fuse_eltwise.c) and the node check both its kernels share. Invariant: each
 * element runs the whole chain in f64 from the widened inputs and is rounded once into the
 * output dtype, so this is the oracle for the fast kernel (eltwise_chain.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/eltwise_chain_impl.h"

static bool refuse(char *why, size_t why_size, const char *fmt, long long a, long long b) {
    if (why && why_size) snprintf(why, why_size, fmt, a, b);
    return false;
}

bool mixrt_chain_parse_attrs(const struct mixrt_node *n, int n_inputs, struct mixrt_chain *c, char *why,
                             size_t why_size) {
    size_t n_ops = 0, n_operands = 0, n_swapped = 0, n_params = 0;
    const int64_t *ops = mixrt_node_attr_ints(n, "ops", &n_ops);
    const int64_t *operands = mixrt_node_attr_ints(n, "operands", &n_operands);
    const int64_t *swapped = mixrt_node_attr_ints(n, "swapped", &n_swapped);
    const float *params = mixrt_node_attr_floats(n, "params", &n_params);
    c->n = 0;
    if (!ops || n_ops < 1 || n_ops > MIXRT_CHAIN_MAX_STEPS)
        return refuse(why, why_size, "attribute 'ops' must be ints with 1 to %lld steps (has %lld)",
                      MIXRT_CHAIN_MAX_STEPS, (long long)n_ops);
    if (!operands || n_operands != n_ops)
        return refuse(why, why_size, "attribute 'operands' must be ints, one per step (%lld), has %lld", (long long)n_ops,
                      (long long)n_operands);
    if (mixrt_node_attr(n, "swapped") && (!swapped || n_swapped != n_ops))
        return refuse(why, why_size, "attribute 'swapped' must be ints, one per step (%lld), has %lld", (long long)n_ops,
                      (long long)n_swapped);
    if (mixrt_node_attr(n, "params") && (!params || n_params != 4 * n_ops))
        return refuse(why, why_size, "attribute 'params' must be floats, 4 per step (%lld), has %lld",
                      4 * (long long)n_ops, (long long)n_params);
    for (size_t i = 0; i < n_ops; i++) {
        struct mixrt_chain_step *s = &c->s[i];
        if (ops[i] <= MIXRT_CHAIN_INVALID || ops[i] >= MIXRT_CHAIN_COUNT)
            return refuse(why, why_size, "step %lld: unknown op code %lld in attribute 'ops'", (long long)i, (long long)ops[i]);
        s->op = (enum mixrt_chain_op)ops[i];
        bool bin = mixrt_chain_op_binary(ops[i]);
        if (bin && (operands[i] < 1 || operands[i] >= n_inputs))
            return refuse(why, why_size, "step %lld: binary step's operand %lld is not an input index in [1, n_inputs)",
                          (long long)i, (long long)operands[i]);
        if (!bin && operands[i] != 0)
            return refuse(why, why_size, "step %lld: unary step has operand %lld, expected 0", (long long)i,
                          (long long)operands[i]);
        int64_t sw = swapped ? swapped[i] : 0;
        if (sw != 0 && (sw != 1 || !bin))
            return refuse(why, why_size, "step %lld: 'swapped' is %lld, expected 0 (or 1 for a binary step)", (long long)i,
                          (long long)sw);
        s->operand = (int)operands[i];
        s->swapped = sw != 0;
        if (params) memcpy(s->p, params + 4 * i, sizeof(s->p));
        else s->p[0] = s->p[1] = 0.0f, s->p[2] = -INFINITY, s->p[3] = INFINITY;
    }
    c->n = (int)n_ops;
    return true;
}

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

bool mixrt_chain_last_axis(const struct mixrt_tensor *t, const struct mixrt_tensor *x) {
    if (t->rank < 1 || x->rank < 1 || t->rank > x->rank) return false;
    int64_t c = x->dims[x->rank - 1];
    if (c <= 1 || t->dims[t->rank - 1] != c) return false;
    for (int i = 0; i < t->rank - 1; i++)
        if (t->dims[i] != 1) return false;
    return true;
}

mixrt_status mixrt_chain_check(struct mixrt_kernel_ctx *k, struct mixrt_chain *c) {
    mixrt_status status = MIXRT_STATUS_OK;
    char why[200], d0[256], d1[256];
    const struct mixrt_tensor *x = NULL;
    if (!mixrt_chain_parse_attrs(k->node, k->n_in, c, why, sizeof(why)))
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "%s", why));
    if (k->n_out < 1) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "needs one output"));
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    for (int i = 1; i < k->n_in; i++) {
        const struct mixrt_tensor *t = NULL;
        MIXRT_TRY(mixrt_kernel_input(k, i, &t));
        MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, i));
        bool same = t->rank == x->rank && !memcmp(t->dims, x->dims, (size_t)x->rank * sizeof(int64_t));
        if (!same && !(mixrt_tensor_numel(t) == 1 && t->rank <= x->rank) && !mixrt_chain_last_axis(t, x))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                         "input #%d '%s' is %s: an operand must be input #0's shape %s, one element "
                                         "or a vector along its last axis, of rank <= %d",
                                         i, in_name(k, i), mixrt_tensor_desc(d1, sizeof(d1), t),
                                         mixrt_tensor_desc(d0, sizeof(d0), x), x->rank));
    }
fail:
    return status;
}

static double chain_unary(enum mixrt_chain_op op, const float *p, double x) {
    switch (op) {
    case MIXRT_CHAIN_RELU: return x < 0 ? 0.0 : x;
    case MIXRT_CHAIN_LEAKY_RELU: return x < 0 ? (double)p[0] * x : x;
    case MIXRT_CHAIN_SIGMOID: return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case MIXRT_CHAIN_TANH: return tanh(x);
    case MIXRT_CHAIN_ERF: return erf(x);
    case MIXRT_CHAIN_EXP: return exp(x);
    case MIXRT_CHAIN_SQRT: return sqrt(x);
    case MIXRT_CHAIN_RECIPROCAL: return 1.0 / x;
    case MIXRT_CHAIN_NEG: return -x;
    case MIXRT_CHAIN_ABS: return fabs(x);
    case MIXRT_CHAIN_CLIP: { /* lo > hi gives hi everywhere (ONNX Clip); NaN passes */
        double r = x < (double)p[2] ? (double)p[2] : x;
        return r > (double)p[3] ? (double)p[3] : r;
    }
    case MIXRT_CHAIN_HARD_SIGMOID: return fmax(0.0, fmin(1.0, (double)p[0] * x + (double)p[1]));
    case MIXRT_CHAIN_HARD_SWISH: return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case MIXRT_CHAIN_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case MIXRT_CHAIN_GELU: return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
    case MIXRT_CHAIN_GELU_TANH: return 0.5 * x * (1.0 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
    default: return x;
    }
}

static double chain_binary(enum mixrt_chain_op op, double a, double b) {
    switch (op) {
    case MIXRT_CHAIN_ADD: return a + b;
    case MIXRT_CHAIN_SUB: return a - b;
    case MIXRT_CHAIN_MUL: return a * b;
    case MIXRT_CHAIN_DIV: return a / b;
    case MIXRT_CHAIN_MAX: return (b > a || isnan(b)) ? b : a; /* NaN propagates */
    case MIXRT_CHAIN_MIN: return (b < a || isnan(b)) ? b : a;
    default: return a;
    }
}

static mixrt_status run_chain(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_chain c;
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_chain_check(k, &c));
    const struct mixrt_tensor *x = k->in[0];
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    size_t n = mixrt_tensor_numel(x);
    for (size_t i = 0; i < n; i++) {
        double v = mixrt_load_f64(x->data, x->dtype, i);
        for (int s = 0; s < c.n; s++) {
            const struct mixrt_chain_step *st = &c.s[s];
            if (!mixrt_chain_op_binary(st->op)) {
                v = chain_unary(st->op, st->p, v);
                continue;
            }
            const struct mixrt_tensor *t = k->in[st->operand];
            size_t tn = mixrt_tensor_numel(t);
            double o = mixrt_load_f64(t->data, t->dtype, tn == 1 ? 0 : tn == n ? i : i % tn);
            v = st->swapped ? chain_binary(st->op, o, v) : chain_binary(st->op, v, o);
        }
        mixrt_store_f64(y->data, y->dtype, i, v);
    }
fail:
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_eltwise_chain[] = {
    {MIXRT_DOMAIN, "ElementwiseChain", 1, 1, run_chain},
    {NULL, NULL, 0, 0, NULL},
};
