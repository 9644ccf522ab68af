/* ref_concat_affine.c - the reference kernel of com.mixrt ConcatAffine (concat_affine_impl.h
 * has the op) and the check both kernels share: every value in f64, rounded once. */
#include <stdio.h>
#include <string.h>

#include "backend/cpu/concat_affine_impl.h"
#include "backend/cpu/kernels.h"

mixrt_status mixrt_concat_affine_check(struct mixrt_kernel_ctx *k, int64_t *C, size_t *rows, enum mixrt_fconv_act *act,
                                       float *p0, float *p1, struct mixrt_tensor **y) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *s = NULL, *b = NULL, *x0 = NULL;
    char d0[256], d1[256];
    if (k->n_in < 3) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "needs S, B and at least one X"));
    if (k->n_out < 1) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "needs one output"));
    if (!mixrt_fconv_read_act(k->node, act, p0, p1))
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                     "attribute 'activation' ('%s') or 'activation_params' is malformed",
                                     mixrt_node_attr_string(k->node, "activation", "")));
    MIXRT_TRY(mixrt_kernel_input(k, 0, &s));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &b));
    MIXRT_TRY(mixrt_kernel_input(k, 2, &x0));
    for (int i = 0; i < k->n_in; i++) MIXRT_TRY(mixrt_kernel_check_float(k, i));
    if (x0->rank < 1)
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #2 is %s: expected rank >= 1",
                                     mixrt_tensor_desc(d0, sizeof(d0), x0)));
    int64_t c = 0;
    for (int i = 2; i < k->n_in; i++) {
        const struct mixrt_tensor *x = NULL;
        MIXRT_TRY(mixrt_kernel_input(k, i, &x));
        bool ok = x->dtype == x0->dtype && x->rank == x0->rank;
        for (int d = 0; ok && d < x0->rank - 1; d++) ok = x->dims[d] == x0->dims[d];
        if (!ok)
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                         "input #%d is %s: expected input #2's dtype and dims but the last (%s)", i,
                                         mixrt_tensor_desc(d1, sizeof(d1), x), mixrt_tensor_desc(d0, sizeof(d0), x0)));
        c += x->dims[x0->rank - 1];
    }
    if (s->rank != 1 || s->dims[0] != c || b->rank != 1 || b->dims[0] != c)
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "S %s and B %s must be [%lld] (the channels joined)",
                                     mixrt_tensor_desc(d0, sizeof(d0), s), mixrt_tensor_desc(d1, sizeof(d1), b),
                                     (long long)c));
    int64_t dims[MIXRT_MAX_RANK];
    size_t r = 1;
    for (int d = 0; d < x0->rank - 1; d++) dims[d] = x0->dims[d], r *= (size_t)x0->dims[d];
    dims[x0->rank - 1] = c;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x0->dtype, x0->rank, dims, y));
    *C = c, *rows = r;
fail:
    return status;
}

static mixrt_status run_concat_affine(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t C;
    size_t rows;
    enum mixrt_fconv_act act;
    float p0, p1;
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_concat_affine_check(k, &C, &rows, &act, &p0, &p1, &y));
    const struct mixrt_tensor *s = k->in[0], *b = k->in[1];
    for (size_t r = 0; r < rows; r++) {
        int64_t at = 0;
        for (int i = 2; i < k->n_in; i++) {
            const struct mixrt_tensor *x = k->in[i];
            int64_t len = x->dims[x->rank - 1];
            for (int64_t j = 0; j < len; j++) {
                double v = mixrt_load_f64(x->data, x->dtype, r * (size_t)len + (size_t)j);
                v = v * mixrt_load_f64(s->data, s->dtype, (size_t)(at + j)) + mixrt_load_f64(b->data, b->dtype, (size_t)(at + j));
                mixrt_store_f64(y->data, y->dtype, r * (size_t)C + (size_t)(at + j), mixrt_fconv_apply(act, p0, p1, v));
            }
            at += len;
        }
    }
fail:
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_concat_affine[] = {
    {MIXRT_DOMAIN, "ConcatAffine", 1, 1, run_concat_affine},
    {NULL, NULL, 0, 0, NULL},
};
