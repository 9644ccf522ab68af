/* ref_attention.c - reference kernel of com.mixrt Attention (defined at the top of
 * passes/fuse_attention.c): f64 math on any float dtype, one rounding on output. The
 * shape rules live in mixrt_attention_geometry (attention_impl.h), which the fast kernels
 * share, so both accept and refuse exactly the same nodes. */
#include <math.h>
#include <string.h>

#include "backend/cpu/attention_impl.h"

static mixrt_status read_perm(struct mixrt_kernel_ctx *k, const char *name, int64_t p[4]) {
    mixrt_status status = mixrt_kernel_attr_ints_n(k, name, 4, -1, 0, 3, p);
    if (status != MIXRT_STATUS_OK) return status;
    if (!mixrt_node_attr(k->node, name))
        for (int i = 0; i < 4; i++) p[i] = i;
    bool seen[4] = {false, false, false, false};
    for (int i = 0; i < 4; i++) {
        if (seen[p[i]])
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute '%s' repeats axis %lld: not a permutation",
                                      name, (long long)p[i]);
        seen[p[i]] = true;
    }
    return MIXRT_STATUS_OK;
}

/* Logical dims/strides of x viewed as Transpose(x, perm). */
static void view(const struct mixrt_tensor *x, const int64_t perm[4], int64_t dims[4], int64_t strides[4]) {
    int64_t s[4];
    s[3] = 1;
    for (int d = 2; d >= 0; d--) s[d] = s[d + 1] * x->dims[d + 1];
    for (int i = 0; i < 4; i++) {
        dims[i] = x->dims[perm[i]];
        strides[i] = s[perm[i]];
    }
}

/* Broadcast of a batch axis: *out (start 1) against d; false when incompatible. */
static bool bcast(int64_t *out, int64_t d) {
    if (d == *out || d == 1) return true;
    if (*out != 1) return false;
    *out = d;
    return true;
}

mixrt_status mixrt_attention_geometry(struct mixrt_kernel_ctx *k, struct mixrt_attention_geom *a) {
    mixrt_status status = MIXRT_STATUS_OK;
    static const char *const names[3] = {"Q", "K", "V"};
    static const char *const perms[3] = {"q_perm", "k_perm", "v_perm"};
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < 3; i++) {
        MIXRT_TRY(mixrt_kernel_input(k, i, &a->x[i]));
        MIXRT_TRY(mixrt_kernel_check_float(k, i));
        if (a->x[i]->rank != 4)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d (%s) has rank %d, expected 4", i,
                                      names[i], a->x[i]->rank);
        MIXRT_TRY(read_perm(k, perms[i], a->perm[i]));
        view(a->x[i], a->perm[i], a->dims[i], a->strides[i]);
    }
    MIXRT_TRY(read_perm(k, "out_perm", a->out_perm));
    a->mask = mixrt_kernel_opt_input(k, 3);
    a->mask2 = mixrt_kernel_opt_input(k, 4);
    const struct mixrt_tensor *mt[2] = {a->mask, a->mask2};
    for (int m = 0; m < 2; m++) {
        if (!mt[m]) continue;
        MIXRT_TRY(mixrt_kernel_check_float(k, 3 + m));
        if (mt[m]->rank > 4)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d (mask) has rank %d, expected at most 4",
                                      3 + m, mt[m]->rank);
    }
    a->sq = a->dims[0][2], a->d = a->dims[0][3], a->sk = a->dims[1][2], a->dv = a->dims[2][3];
    if (a->dims[1][3] != a->d || a->dims[2][2] != a->sk)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "Q [%lld,%lld,%lld,%lld], K [%lld,%lld,%lld,%lld] and V [%lld,%lld,%lld,%lld] (after their "
                                  "perms) do not agree on D (Q, K) and Sk (K, V)",
                                  (long long)a->dims[0][0], (long long)a->dims[0][1], (long long)a->dims[0][2],
                                  (long long)a->dims[0][3], (long long)a->dims[1][0], (long long)a->dims[1][1],
                                  (long long)a->dims[1][2], (long long)a->dims[1][3], (long long)a->dims[2][0],
                                  (long long)a->dims[2][1], (long long)a->dims[2][2], (long long)a->dims[2][3]);
    int64_t md[2][4] = {{1, 1, 1, 1}, {1, 1, 1, 1}};
    for (int m = 0; m < 2; m++) {
        if (!mt[m]) continue;
        for (int i = 0; i < mt[m]->rank; i++) md[m][4 - mt[m]->rank + i] = mt[m]->dims[i];
        if ((md[m][2] != 1 && md[m][2] != a->sq) || (md[m][3] != 1 && md[m][3] != a->sk))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "input #%d (mask) has last dims [%lld,%lld], expected 1 or [Sq=%lld, Sk=%lld]",
                                      3 + m, (long long)md[m][2], (long long)md[m][3], (long long)a->sq,
                                      (long long)a->sk);
    }
    a->b = 1, a->h = 1;
    for (int i = 0; i < 5; i++) {
        const int64_t *d = i < 3 ? a->dims[i] : md[i - 3];
        if (!bcast(&a->b, d[0]) || !bcast(&a->h, d[1]))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "batch/head dims [%lld,%lld] of input #%d do not broadcast against [%lld,%lld]",
                                      (long long)d[0], (long long)d[1], i, (long long)a->b, (long long)a->h);
    }
    /* Broadcast axes read with stride 0. */
    for (int i = 0; i < 3; i++)
        for (int d = 0; d < 2; d++)
            if (a->dims[i][d] == 1) a->strides[i][d] = 0;
    for (int m = 0; m < 2; m++) {
        int64_t *ms = m ? a->mask2_strides : a->mask_strides, acc = 1;
        for (int d = 3; d >= 0; d--) {
            ms[d] = md[m][d] == 1 ? 0 : acc;
            acc *= md[m][d];
        }
    }
    a->scale = mixrt_node_attr_float(k->node, "scale", 1.0f);
    int64_t causal = mixrt_node_attr_int(k->node, "causal", 0);
    if (causal != 0 && causal != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'causal' is %lld, expected 0 or 1",
                                  (long long)causal);
    a->causal = causal == 1;
    a->fill = mixrt_node_attr_float(k->node, "causal_fill", -INFINITY);
    int64_t nan_zero = mixrt_node_attr_int(k->node, "nan_zero", 0);
    if (nan_zero != 0 && nan_zero != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'nan_zero' is %lld, expected 0 or 1",
                                  (long long)nan_zero);
    a->nan_zero = nan_zero == 1;
    /* O [B,H,Sq,Dv] and Y = Transpose(O, out_perm): Y dims[i] = O dims[out_perm[i]]. */
    int64_t od[4] = {a->b, a->h, a->sq, a->dv}, ys[4];
    for (int i = 0; i < 4; i++) a->ydims[i] = od[a->out_perm[i]];
    ys[3] = 1;
    for (int d = 2; d >= 0; d--) ys[d] = ys[d + 1] * a->ydims[d + 1];
    for (int i = 0; i < 4; i++) a->ystrides[a->out_perm[i]] = ys[i];
    size_t n;
    if (!mixrt_dims_numel(4, a->ydims, &n))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "output size overflows");
fail:
    return status;
}

static mixrt_status run_attention(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_attention_geom a;
    double *s = NULL, *o = NULL;
    size_t ns = 0, no = 0;
    MIXRT_TRY(mixrt_attention_geometry(k, &a));
    struct mixrt_tensor *y;
    MIXRT_TRY(mixrt_kernel_output(k, 0, a.x[0]->dtype, 4, a.ydims, &y));
    ns = (size_t)(a.sk > 0 ? a.sk : 1), no = (size_t)(a.dv > 0 ? a.dv : 1);
    s = mixrt_calloc(k->ctx, ns, sizeof(double));
    o = mixrt_calloc(k->ctx, no, sizeof(double));
    if (!s || !o) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    const void *q = a.x[0]->data, *kk = a.x[1]->data, *v = a.x[2]->data;
    mixrt_dtype qt = a.x[0]->dtype, kt = a.x[1]->dtype, vt = a.x[2]->dtype;
    const int64_t *qs = a.strides[0], *ks = a.strides[1], *vs = a.strides[2], *ms = a.mask_strides,
                  *m2 = a.mask2_strides;
    for (int64_t b = 0; b < a.b; b++)
        for (int64_t h = 0; h < a.h; h++)
            for (int64_t i = 0; i < a.sq; i++) {
                double mx = -INFINITY;
                for (int64_t j = 0; j < a.sk; j++) {
                    double acc = 0.0;
                    if (a.causal && j > i + a.sk - a.sq) {
                        acc = a.fill;
                    } else {
                        for (int64_t d = 0; d < a.d; d++)
                            acc += mixrt_load_f64(q, qt, (size_t)(b * qs[0] + h * qs[1] + i * qs[2] + d * qs[3])) *
                                   mixrt_load_f64(kk, kt, (size_t)(b * ks[0] + h * ks[1] + j * ks[2] + d * ks[3]));
                        acc *= a.scale;
                    }
                    if (a.mask)
                        acc += mixrt_load_f64(a.mask->data, a.mask->dtype,
                                              (size_t)(b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]));
                    if (a.mask2)
                        acc += mixrt_load_f64(a.mask2->data, a.mask2->dtype,
                                              (size_t)(b * m2[0] + h * m2[1] + i * m2[2] + j * m2[3]));
                    s[j] = acc;
                    if (acc > mx || isnan(acc)) mx = isnan(mx) ? mx : acc;
                }
                /* Max-subtracted like ONNX Softmax: a row all -inf gives NaN, as there. */
                double sum = 0.0;
                for (int64_t j = 0; j < a.sk; j++) sum += (s[j] = exp(s[j] - mx));
                for (int64_t d = 0; d < a.dv; d++) o[d] = 0.0;
                for (int64_t j = 0; j < a.sk; j++) {
                    double p = s[j] / sum;
                    if (a.nan_zero && isnan(p)) p = 0.0; /* Where(IsNaN(P), 0, P) */
                    for (int64_t d = 0; d < a.dv; d++)
                        o[d] += p * mixrt_load_f64(v, vt, (size_t)(b * vs[0] + h * vs[1] + j * vs[2] + d * vs[3]));
                }
                for (int64_t d = 0; d < a.dv; d++)
                    mixrt_store_f64(y->data, y->dtype,
                                    (size_t)(b * a.ystrides[0] + h * a.ystrides[1] + i * a.ystrides[2] +
                                             d * a.ystrides[3]),
                                    o[d]);
            }
fail:
    if (s) mixrt_free(k->ctx, s, ns * sizeof(double));
    if (o) mixrt_free(k->ctx, o, no * sizeof(double));
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_attention[] = {
    {MIXRT_DOMAIN, "Attention", 1, 1, run_attention},
    {NULL, NULL, 0, 0, NULL},
};
