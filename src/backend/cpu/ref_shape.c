/* ref_shape.c - reference kernels for data movement and shape operators (Reshape ... Resize),
 * dtype-generic by element size (STRING elements are deep-copied; the output owns them).
 * Invariant: every index an input can reach is checked before use (INVALID_MODEL, named). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/ref.h"

/* ---- helpers ------------------------------------------------------------------------ */

static const char *iname(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

/* "input #i 'name' (f32 [2,3]): <msg>" */
static mixrt_status bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const char *fmt, ...)
    MIXRT_PRINTF(4, 5);
static mixrt_status bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const char *fmt, ...) {
    char msg[512], d[256] = "absent";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
    if (t) mixrt_tensor_desc(d, sizeof(d), t);
    return mixrt_kernel_error(k, st, "input #%d '%s' (%s): %s", i, iname(k, i), d, msg);
}

static mixrt_status bad_attr(struct mixrt_kernel_ctx *k, const char *name, const char *fmt, ...) MIXRT_PRINTF(3, 4);
static mixrt_status bad_attr(struct mixrt_kernel_ctx *k, const char *name, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute '%s': %s", name, msg);
}

static void row_strides(int rank, const int64_t *dims, int64_t *st) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Replaces STRING element *d by a private copy of (p, len). */
static mixrt_status str_set(struct mixrt_kernel_ctx *k, struct mixrt_string *d, const char *p, size_t len) {
    char *s = mixrt_alloc(k->ctx, len + 1);
    if (!s) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (len) memcpy(s, p, len);
    s[len] = 0;
    if (d->ptr) mixrt_free(k->ctx, d->ptr, d->len + 1);
    d->ptr = s;
    d->len = len;
    return MIXRT_STATUS_OK;
}

/* dst[di .. di+n) = src[si .. si+n); dst and src have the same dtype. */
static mixrt_status copy_elems(struct mixrt_kernel_ctx *k, struct mixrt_tensor *dst, size_t di,
                               const struct mixrt_tensor *src, size_t si, size_t n) {
    if (n == 0) return MIXRT_STATUS_OK;
    if (dst->dtype == MIXRT_DTYPE_STRING) {
        struct mixrt_string *d = dst->data;
        const struct mixrt_string *s = src->data;
        for (size_t j = 0; j < n; j++) {
            mixrt_status st = str_set(k, &d[di + j], s[si + j].ptr, s[si + j].len);
            if (st != MIXRT_STATUS_OK) return st;
        }
        return MIXRT_STATUS_OK;
    }
    size_t es = mixrt_dtype_size(dst->dtype);
    memcpy((char *)dst->data + di * es, (const char *)src->data + si * es, n * es);
    return MIXRT_STATUS_OK;
}

/* STRING outputs start with NULL elements; positions no kernel wrote become "". */
static mixrt_status finish_strings(struct mixrt_kernel_ctx *k, struct mixrt_tensor *t) {
    if (t->dtype != MIXRT_DTYPE_STRING) return MIXRT_STATUS_OK;
    struct mixrt_string *s = t->data;
    size_t n = mixrt_tensor_numel(t);
    for (size_t i = 0; i < n; i++)
        if (!s[i].ptr) {
            mixrt_status st = str_set(k, &s[i], "", 0);
            if (st != MIXRT_STATUS_OK) return st;
        }
    return MIXRT_STATUS_OK;
}

/* count copies of the es-byte element at src into dst: the first, then doubling copies of
 * what is filled. */
static void fill_repeat(char *dst, const void *src, size_t es, size_t count) {
    size_t done = 1;
    memcpy(dst, src, es);
    while (done < count) {
        size_t nn = done < count - done ? done : count - done;
        memcpy(dst + done * es, dst, nn * es);
        done += nn;
    }
}

/* out[o] = in[base + sum_d o_d * st[d]] over the view (rank, dims) whose row-major order is
 * out's element order. Strides may be 0 (broadcast) or negative (reversed). */
static mixrt_status strided_copy(struct mixrt_kernel_ctx *k, struct mixrt_tensor *out, const struct mixrt_tensor *in,
                                 int64_t base, int rank, const int64_t *dims, const int64_t *st) {
    size_t n = mixrt_tensor_numel(out);
    if (n == 0) return MIXRT_STATUS_OK;
    int64_t idx[MIXRT_MAX_RANK] = {0};
    int64_t off = base;
    size_t es = mixrt_dtype_size(out->dtype);
    bool str = out->dtype == MIXRT_DTYPE_STRING;
    /* Non-string inner axes as one block: contiguous in the input (one memcpy) or one element
     * repeated (a broadcast); the outer axes step. Faster R-CNN's Expand of [rois, 1, 1, 1]
     * int64 indices to [rois, 256, 7, 7] had gone element by element. */
    int t = rank;
    int64_t block = 1;
    bool bcast = !str && rank > 0 && st[rank - 1] == 0;
    while (!str && t > 0 && st[t - 1] == (bcast ? 0 : block)) block *= dims[t - 1], t--;
    for (size_t i = 0; i < n; i += (size_t)block) {
        char *dst = (char *)out->data + i * es;
        const char *src = (const char *)in->data + (size_t)off * es;
        if (str) {
            mixrt_status s = copy_elems(k, out, i, in, (size_t)off, 1);
            if (s != MIXRT_STATUS_OK) return s;
        } else if (bcast) {
            fill_repeat(dst, src, es, (size_t)block);
        } else {
            memcpy(dst, src, (size_t)block * es);
        }
        for (int d = t - 1; d >= 0; d--) {
            idx[d]++;
            off += st[d];
            if (idx[d] < dims[d]) break;
            off -= st[d] * dims[d];
            idx[d] = 0;
        }
    }
    return MIXRT_STATUS_OK;
}

/* Output i as a full copy of input t with new dims (same element count: Reshape checks it, the
 * other callers build dims from t's; so every element is copied and the output starts
 * uninitialized). */
static mixrt_status copy_reshaped(struct mixrt_kernel_ctx *k, int oi, const struct mixrt_tensor *t, int rank,
                                  const int64_t *dims) {
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, oi, t->dtype, rank, dims, &o);
    if (status != MIXRT_STATUS_OK) return status;
    return copy_elems(k, o, 0, t, 0, mixrt_tensor_numel(t));
}

/* Reads integer input i (any int dtype) into vals (at most max); *n its count. */
static mixrt_status read_ints(struct mixrt_kernel_ctx *k, int i, int64_t *vals, size_t max, size_t *n) {
    return mixrt_kernel_read_ints(k, i, vals, max, n);
}

/* Integer input i of any length, allocated (free with free_ints). */
static mixrt_status read_ints_alloc(struct mixrt_kernel_ctx *k, int i, int64_t **vals, size_t *n) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if (!mixrt_dtype_is_int(t->dtype)) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, "expected an integer tensor");
    status = mixrt_tensor_to_i64(k->ctx, t, vals);
    if (status != MIXRT_STATUS_OK) return status;
    *n = mixrt_tensor_numel(t);
    return MIXRT_STATUS_OK;
}
static void free_ints(struct mixrt_kernel_ctx *k, int64_t *v, size_t n) {
    if (v) mixrt_free(k->ctx, v, (n ? n : 1) * sizeof(int64_t));
}

/* Ints attribute into vals (at most max); false (error recorded) if too long. */
static mixrt_status attr_ints(struct mixrt_kernel_ctx *k, const char *name, int64_t *vals, size_t max, size_t *n,
                              bool *present) {
    size_t cnt = 0;
    const int64_t *a = mixrt_node_attr_ints(k->node, name, &cnt);
    const struct mixrt_attr *at = mixrt_node_attr(k->node, name);
    if (present) *present = at != NULL;
    if (cnt > max) return bad_attr(k, name, "has %zu values, at most %zu allowed", cnt, max);
    for (size_t i = 0; i < cnt; i++) vals[i] = a[i];
    *n = cnt;
    return MIXRT_STATUS_OK;
}

/* Scalar (one element) numeric input as int64 / double. */
static mixrt_status scalar_i64(struct mixrt_kernel_ctx *k, int i, int64_t *v) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(t) != 1 || t->dtype == MIXRT_DTYPE_STRING || !mixrt_dtype_size(t->dtype))
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, "expected a numeric scalar");
    *v = mixrt_load_i64(t->data, t->dtype, 0);
    return MIXRT_STATUS_OK;
}

static mixrt_status check_tensor_dtype(struct mixrt_kernel_ctx *k, int i) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if (!mixrt_dtype_size(t->dtype) || !mixrt_dtype_is_supported(t->dtype))
        return bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, i, "dtype %s cannot be moved by the reference kernels",
                         mixrt_dtype_name(t->dtype));
    return MIXRT_STATUS_OK;
}

/* Normalizes each of n axes into [0, rank); duplicates are errors. */
static mixrt_status norm_axes(struct mixrt_kernel_ctx *k, const char *what, int64_t *axes, size_t n, int rank) {
    bool seen[MIXRT_MAX_RANK] = {false};
    for (size_t i = 0; i < n; i++) {
        int64_t a = axes[i];
        if (!mixrt_norm_axis(a, rank, &axes[i]))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "%s: axis %lld is out of range for rank %d", what,
                                      (long long)a, rank);
        if (seen[axes[i]])
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "%s: axis %lld is repeated", what, (long long)a);
        seen[axes[i]] = true;
    }
    return MIXRT_STATUS_OK;
}

static bool is_numeric(mixrt_dtype dt) {
    return mixrt_dtype_is_float(dt) || mixrt_dtype_is_int(dt) || dt == MIXRT_DTYPE_BOOL;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity --------------------------------- */

static mixrt_status run_reshape(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    int64_t shape[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK];
    size_t n = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    if (k->opset < 5) {
        bool present;
        MIXRT_TRY(attr_ints(k, "shape", shape, MIXRT_MAX_RANK, &n, &present));
        if (!present) return bad_attr(k, "shape", "is required");
    } else {
        MIXRT_TRY(read_ints(k, 1, shape, MIXRT_MAX_RANK, &n));
    }
    bool allowzero = k->opset >= 14 && mixrt_node_attr_int(k->node, "allowzero", 0) != 0;
    int infer = -1;
    size_t known = 1;
    bool has_zero = false;
    for (size_t i = 0; i < n; i++) {
        int64_t s = shape[i];
        if (s == -1) {
            if (infer >= 0) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "more than one -1 in the shape");
            infer = (int)i;
            dims[i] = 1;
            continue;
        }
        if (s < -1) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "shape value %lld is invalid", (long long)s);
        if (s == 0 && !allowzero) {
            if ((int)i >= x->rank)
                return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1,
                                 "shape value 0 at position %zu copies a dim the input (rank %d) does not have", i,
                                 x->rank);
            s = x->dims[i];
        }
        if (s == 0) has_zero = true;
        dims[i] = s;
        if (!mixrt_mul_size(known, (size_t)s, &known))
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "shape overflows");
    }
    size_t total = mixrt_tensor_numel(x);
    if (infer >= 0) {
        if (allowzero && has_zero)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "allowzero=1 shape has both 0 and -1");
        if (known == 0 || total % known)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1,
                             "cannot infer the -1 dim: %zu elements do not divide by %zu", total, known);
        dims[infer] = (int64_t)(total / known);
        known = total;
    }
    if (known != total) {
        char d[256];
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "%zu elements cannot be reshaped to %s (%zu elements)",
                         total, mixrt_dims_str(d, sizeof(d), (int)n, dims), known);
    }
    return copy_reshaped(k, 0, x, (int)n, dims);
fail:
    return status;
}

static mixrt_status run_flatten(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return bad_attr(k, "axis", "%lld is out of range for rank %d",
                        (long long)mixrt_node_attr_int(k->node, "axis", 1), x->rank);
    int64_t dims[2] = {prod(x->dims, 0, (int)axis), prod(x->dims, (int)axis, x->rank)};
    return copy_reshaped(k, 0, x, 2, dims);
fail:
    return status;
}

static mixrt_status run_squeeze(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    int64_t axes[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK];
    size_t n = 0;
    bool have = false;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    if (k->opset < 13) {
        MIXRT_TRY(attr_ints(k, "axes", axes, MIXRT_MAX_RANK, &n, &have));
    } else if (mixrt_kernel_opt_input(k, 1)) {
        MIXRT_TRY(read_ints(k, 1, axes, MIXRT_MAX_RANK, &n));
        have = true;
    }
    bool drop[MIXRT_MAX_RANK] = {false};
    if (have && n > 0) { /* empty axes: like none, every 1-dim goes */
        MIXRT_TRY(norm_axes(k, "axes", axes, n, x->rank));
        for (size_t i = 0; i < n; i++) {
            if (x->dims[axes[i]] != 1)
                return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "cannot squeeze axis %lld of size %lld",
                                 (long long)axes[i], (long long)x->dims[axes[i]]);
            drop[axes[i]] = true;
        }
    } else {
        for (int i = 0; i < x->rank; i++) drop[i] = x->dims[i] == 1;
    }
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i]) dims[r++] = x->dims[i];
    return copy_reshaped(k, 0, x, r, dims);
fail:
    return status;
}

static mixrt_status run_unsqueeze(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    int64_t axes[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK];
    size_t n = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    if (k->opset < 13) {
        bool have;
        MIXRT_TRY(attr_ints(k, "axes", axes, MIXRT_MAX_RANK, &n, &have));
        if (!have) return bad_attr(k, "axes", "is required");
    } else {
        MIXRT_TRY(read_ints(k, 1, axes, MIXRT_MAX_RANK, &n));
    }
    int r = x->rank + (int)n;
    if (r > MIXRT_MAX_RANK)
        return bad_input(k, MIXRT_STATUS_UNSUPPORTED, 0, "output rank %d exceeds %d", r, MIXRT_MAX_RANK);
    MIXRT_TRY(norm_axes(k, "axes", axes, n, r));
    bool ins[MIXRT_MAX_RANK] = {false};
    for (size_t i = 0; i < n; i++) ins[axes[i]] = true;
    for (int i = 0, j = 0; i < r; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
    return copy_reshaped(k, 0, x, r, dims);
fail:
    return status;
}

static mixrt_status run_identity(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (k->n_in > 0 && k->in_seq && k->in_seq[0]) {
        const struct mixrt_seq *s = k->in_seq[0];
        struct mixrt_seq *o = NULL;
        MIXRT_TRY(mixrt_kernel_output_seq(k, 0, s->elem_dtype, &o));
        for (size_t i = 0; i < s->n; i++) MIXRT_TRY(mixrt_seq_push(k->ctx, o, &s->items[i], false));
        return MIXRT_STATUS_OK;
    }
    const struct mixrt_tensor *x = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    return copy_reshaped(k, 0, x, x->rank, x->dims);
fail:
    return status;
}

/* ---- Transpose, DepthToSpace, SpaceToDepth, Expand, Tile ---------------------------- */

static mixrt_status run_transpose(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    int64_t perm[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK], ist[MIXRT_MAX_RANK], st[MIXRT_MAX_RANK];
    size_t n = 0;
    bool have;
    struct mixrt_tensor *o = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(attr_ints(k, "perm", perm, MIXRT_MAX_RANK, &n, &have));
    if (!have) {
        n = (size_t)x->rank;
        for (int i = 0; i < x->rank; i++) perm[i] = x->rank - 1 - i;
    }
    if ((int)n != x->rank) return bad_attr(k, "perm", "has %zu values for an input of rank %d", n, x->rank);
    bool seen[MIXRT_MAX_RANK] = {false};
    for (size_t i = 0; i < n; i++) {
        if (perm[i] < 0 || perm[i] >= x->rank || seen[perm[i]])
            return bad_attr(k, "perm", "is not a permutation of 0..%d (value %lld at %zu)", x->rank - 1,
                            (long long)perm[i], i);
        seen[perm[i]] = true;
    }
    row_strides(x->rank, x->dims, ist);
    for (size_t i = 0; i < n; i++) {
        dims[i] = x->dims[perm[i]];
        st[i] = ist[perm[i]];
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, dims, &o));
    return strided_copy(k, o, x, 0, x->rank, dims, st);
fail:
    return status;
}

static mixrt_status space_depth(struct mixrt_kernel_ctx *k, bool to_space) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    int64_t b = mixrt_node_attr_int(k->node, "blocksize", 0);
    if (b <= 0 || b > (int64_t)1 << 30) return bad_attr(k, "blocksize", "%lld must be positive", (long long)b);
    if (x->rank != 4) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "expected rank 4 [N,C,H,W]");
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    /* zero-size inputs may carry huge dims: keep every product below INT64_MAX */
    if (b > 1 && (H > INT64_MAX / b || W > INT64_MAX / b || C > INT64_MAX / (b * b)))
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "dims overflow with blocksize %lld", (long long)b);
    int64_t od[4], vd[6], vs[6];
    if (to_space) {
        const char *mode = mixrt_node_attr_string(k->node, "mode", "DCR");
        bool crd = strcmp(mode, "CRD") == 0;
        if (!crd && strcmp(mode, "DCR")) return bad_attr(k, "mode", "'%s' is not DCR or CRD", mode);
        if (C % (b * b)) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "channels not divisible by blocksize^2");
        int64_t c = C / (b * b);
        od[0] = N, od[1] = c, od[2] = H * b, od[3] = W * b;
        /* view of the output: [N, c, H, b1, W, b2]; input channel = DCR: (b1*b + b2)*c + ci,
         * CRD: ci*b*b + b1*b + b2 */
        int64_t sW = 1, sH = W, sC = H * W, sN = C * H * W;
        vd[0] = N, vd[1] = c, vd[2] = H, vd[3] = b, vd[4] = W, vd[5] = b;
        vs[0] = sN, vs[2] = sH, vs[4] = sW;
        if (crd)
            vs[1] = b * b * sC, vs[3] = b * sC, vs[5] = sC;
        else
            vs[1] = sC, vs[3] = b * c * sC, vs[5] = c * sC;
    } else {
        if (H % b || W % b)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "height and width not divisible by blocksize");
        od[0] = N, od[1] = C * b * b, od[2] = H / b, od[3] = W / b;
        /* view of the output: [N, b1, b2, C, H/b, W/b] reading x[n, c, h*b + b1, w*b + b2] */
        int64_t sW = 1, sH = W, sC = H * W, sN = C * H * W;
        vd[0] = N, vd[1] = b, vd[2] = b, vd[3] = C, vd[4] = H / b, vd[5] = W / b;
        vs[0] = sN, vs[1] = sH, vs[2] = sW, vs[3] = sC, vs[4] = b * sH, vs[5] = b * sW;
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, 4, od, &o));
    return strided_copy(k, o, x, 0, 6, vd, vs);
fail:
    return status;
}
static mixrt_status run_depthtospace(struct mixrt_kernel_ctx *k) { return space_depth(k, true); }
static mixrt_status run_spacetodepth(struct mixrt_kernel_ctx *k) { return space_depth(k, false); }

static mixrt_status run_expand(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t shape[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK], st[MIXRT_MAX_RANK];
    size_t n = 0;
    int r;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(read_ints(k, 1, shape, MIXRT_MAX_RANK, &n));
    for (size_t i = 0; i < n; i++)
        if (shape[i] < 0)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "shape value %lld is negative", (long long)shape[i]);
    if (!mixrt_broadcast_shape(x->rank, x->dims, (int)n, shape, &r, dims)) {
        char d[256];
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "cannot be broadcast to shape %s",
                         mixrt_dims_str(d, sizeof(d), (int)n, shape));
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, r, dims, &o));
    mixrt_broadcast_strides(x->rank, x->dims, r, dims, st);
    return strided_copy(k, o, x, 0, r, dims, st);
fail:
    return status;
}

static mixrt_status run_tile(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t rep[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK], ist[MIXRT_MAX_RANK], idx[MIXRT_MAX_RANK] = {0};
    size_t n = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    if (k->opset < 6) {
        int64_t tiles, axis;
        MIXRT_TRY(scalar_i64(k, 1, &tiles));
        MIXRT_TRY(scalar_i64(k, 2, &axis));
        if (!mixrt_norm_axis(axis, x->rank, &axis))
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, "axis %lld out of range", (long long)axis);
        for (int i = 0; i < x->rank; i++) rep[i] = i == axis ? tiles : 1;
        n = (size_t)x->rank;
    } else {
        MIXRT_TRY(read_ints(k, 1, rep, MIXRT_MAX_RANK, &n));
    }
    if ((int)n != x->rank)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "has %zu repeats for an input of rank %d", n, x->rank);
    for (int i = 0; i < x->rank; i++) {
        if (rep[i] < 0)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "repeat %lld is negative", (long long)rep[i]);
        if (x->dims[i] && rep[i] > INT64_MAX / x->dims[i])
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "output size overflows");
        dims[i] = x->dims[i] * rep[i];
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, dims, &o));
    row_strides(x->rank, x->dims, ist);
    size_t total = mixrt_tensor_numel(o);
    for (size_t i = 0; i < total; i++) {
        int64_t off = 0;
        for (int d = 0; d < x->rank; d++) off += (idx[d] % x->dims[d]) * ist[d];
        MIXRT_TRY(copy_elems(k, o, i, x, (size_t)off, 1));
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

/* ---- Concat, Split, Slice ----------------------------------------------------------- */

static mixrt_status run_concat(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x0 = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t dims[MIXRT_MAX_RANK];
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x0));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    const struct mixrt_attr *a = mixrt_node_attr(k->node, "axis");
    if (!a && k->opset >= 4) return bad_attr(k, "axis", "is required");
    int64_t axis = a ? a->i : 1;
    if (!mixrt_norm_axis(axis, x0->rank, &axis))
        return bad_attr(k, "axis", "%lld is out of range for rank %d", (long long)(a ? a->i : 1), x0->rank);
    for (int d = 0; d < x0->rank; d++) dims[d] = x0->dims[d];
    dims[axis] = 0;
    for (int i = 0; i < k->n_in; i++) {
        const struct mixrt_tensor *x = NULL;
        MIXRT_TRY(mixrt_kernel_input(k, i, &x));
        if (x->dtype != x0->dtype) MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, i));
        bool ok = x->rank == x0->rank;
        for (int d = 0; ok && d < x0->rank; d++) ok = d == axis || x->dims[d] == x0->dims[d];
        if (!ok) {
            char d0[256];
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, "does not match input #0 %s outside axis %lld",
                             mixrt_tensor_desc(d0, sizeof(d0), x0), (long long)axis);
        }
        dims[axis] += x->dims[axis];
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, x0->dtype, x0->rank, dims, &o));
    int64_t outer = prod(dims, 0, (int)axis), inner = prod(dims, (int)axis + 1, x0->rank);
    size_t pos = 0;
    for (int64_t b = 0; b < outer; b++)
        for (int i = 0; i < k->n_in; i++) {
            const struct mixrt_tensor *x = k->in[i];
            size_t blk = (size_t)(x->dims[axis] * inner);
            MIXRT_TRY(copy_elems(k, o, pos, x, (size_t)b * blk, blk));
            pos += blk;
        }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status run_split(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    int64_t *split = NULL, dims[MIXRT_MAX_RANK];
    size_t n = 0, cap = 0;
    bool owned = false;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 0);
    if (!mixrt_norm_axis(axis, x->rank, &axis))
        return bad_attr(k, "axis", "%lld is out of range for rank %d", (long long)axis, x->rank);
    int64_t len = x->dims[axis];
    bool from_input = (k->opset >= 13 || k->opset == 1) && mixrt_kernel_opt_input(k, 1);
    const struct mixrt_attr *sa = k->opset < 13 ? mixrt_node_attr(k->node, "split") : NULL;
    if (from_input) {
        MIXRT_TRY(read_ints_alloc(k, 1, &split, &n));
        owned = true;
        cap = n;
    } else if (sa && sa->n) {
        split = sa->ints;
        n = sa->n;
    }
    if (split) {
        if ((int)n != k->n_out)
            MIXRT_CHECK(k->ctx, false, MIXRT_STATUS_INVALID_MODEL,
                        "cannot run Split node '%s': 'split' has %zu values for %d outputs", k->node->name, n,
                        k->n_out);
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            if (split[i] < 0 || split[i] > len)
                MIXRT_CHECK(k->ctx, false, MIXRT_STATUS_INVALID_MODEL,
                            "cannot run Split node '%s': split value %lld is out of range", k->node->name,
                            (long long)split[i]);
            sum += split[i];
        }
        MIXRT_CHECK(k->ctx, sum == len, MIXRT_STATUS_INVALID_MODEL,
                    "cannot run Split node '%s': split values sum to %lld, axis %lld has %lld", k->node->name,
                    (long long)sum, (long long)axis, (long long)len);
    } else {
        int64_t parts = k->n_out;
        const struct mixrt_attr *no = k->opset >= 18 ? mixrt_node_attr(k->node, "num_outputs") : NULL;
        if (no) parts = no->i;
        MIXRT_CHECK(k->ctx, parts >= 1 && parts == k->n_out, MIXRT_STATUS_INVALID_MODEL,
                    "cannot run Split node '%s': %lld parts requested for %d outputs", k->node->name, (long long)parts,
                    k->n_out);
        split = mixrt_calloc(k->ctx, (size_t)parts, sizeof(int64_t));
        if (!split) return MIXRT_STATUS_OUT_OF_MEMORY;
        owned = true;
        cap = n = (size_t)parts;
        if (no) {
            /* opset 18: chunks of ceil(len/parts), the last one smaller */
            int64_t chunk = (len + parts - 1) / parts, left = len;
            for (int64_t i = 0; i < parts; i++) {
                split[i] = left < chunk ? left : chunk;
                left -= split[i];
            }
        } else {
            MIXRT_CHECK(k->ctx, len % parts == 0, MIXRT_STATUS_INVALID_MODEL,
                        "cannot run Split node '%s': axis %lld of size %lld does not split into %lld equal parts",
                        k->node->name, (long long)axis, (long long)len, (long long)parts);
            for (int64_t i = 0; i < parts; i++) split[i] = len / parts;
        }
    }
    int64_t outer = prod(x->dims, 0, (int)axis), inner = prod(x->dims, (int)axis + 1, x->rank);
    int64_t start = 0;
    for (int i = 0; i < k->n_out; i++) {
        struct mixrt_tensor *o = NULL;
        for (int d = 0; d < x->rank; d++) dims[d] = x->dims[d];
        dims[axis] = split[i];
        MIXRT_TRY(mixrt_kernel_output(k, i, x->dtype, x->rank, dims, &o));
        size_t blk = (size_t)(split[i] * inner);
        for (int64_t b = 0; b < outer; b++)
            MIXRT_TRY(copy_elems(k, o, (size_t)b * blk, x, (size_t)(b * len * inner + start * inner), blk));
        start += split[i];
    }
fail:
    if (owned) free_ints(k, split, cap);
    return status;
}

static mixrt_status run_slice(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t starts[MIXRT_MAX_RANK], ends[MIXRT_MAX_RANK], axes[MIXRT_MAX_RANK], steps[MIXRT_MAX_RANK];
    size_t ns = 0, ne = 0, na = 0, nt = 0;
    bool have_axes = false;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    if (k->opset < 10) {
        bool p1, p2;
        MIXRT_TRY(attr_ints(k, "starts", starts, MIXRT_MAX_RANK, &ns, &p1));
        MIXRT_TRY(attr_ints(k, "ends", ends, MIXRT_MAX_RANK, &ne, &p2));
        if (!p1 || !p2) return bad_attr(k, p1 ? "ends" : "starts", "is required");
        MIXRT_TRY(attr_ints(k, "axes", axes, MIXRT_MAX_RANK, &na, &have_axes));
    } else {
        MIXRT_TRY(read_ints(k, 1, starts, MIXRT_MAX_RANK, &ns));
        MIXRT_TRY(read_ints(k, 2, ends, MIXRT_MAX_RANK, &ne));
        if (mixrt_kernel_opt_input(k, 3)) {
            MIXRT_TRY(read_ints(k, 3, axes, MIXRT_MAX_RANK, &na));
            have_axes = true;
        }
        if (mixrt_kernel_opt_input(k, 4)) {
            MIXRT_TRY(read_ints(k, 4, steps, MIXRT_MAX_RANK, &nt));
            if (nt != ns) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 4, "has %zu values, starts has %zu", nt, ns);
        }
    }
    if (ne != ns) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "starts has %zu values, ends %zu", ns, ne);
    if (!have_axes) {
        na = ns;
        for (size_t i = 0; i < na; i++) axes[i] = (int64_t)i;
    }
    if (na != ns) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "axes has %zu values, starts %zu", na, ns);
    if (!nt)
        for (size_t i = 0; i < ns; i++) steps[i] = 1;
    MIXRT_TRY(norm_axes(k, "axes", axes, na, x->rank));
    int64_t st[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK], vst[MIXRT_MAX_RANK], base = 0;
    row_strides(x->rank, x->dims, st);
    for (int d = 0; d < x->rank; d++) dims[d] = x->dims[d], vst[d] = st[d];
    for (size_t i = 0; i < ns; i++) {
        int64_t d = axes[i], dim = x->dims[d], step = steps[i], s = starts[i], e = ends[i];
        if (step == 0)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "step for axis %lld is 0", (long long)d);
        if (s < 0) s += dim; /* cannot overflow: s < 0 <= dim (INT64_MIN sentinels included) */
        if (e < 0) e += dim;
        int64_t cnt;
        if (step > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            cnt = e > s ? (int64_t)((uint64_t)(e - s - 1) / (uint64_t)step) + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            /* [0, dim-1] is empty for dim 0: nothing to take */
            cnt = dim > 0 && s > e ? (int64_t)((uint64_t)(s - e - 1) / ((uint64_t)0 - (uint64_t)step)) + 1 : 0;
        }
        dims[d] = cnt;
        if (cnt > 0) base += s * st[d];
        vst[d] = cnt > 1 ? st[d] * step : 0; /* |step| < dim when cnt > 1 */
    }
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, dims, &o)); /* every element copied */
    return strided_copy(k, o, x, base, x->rank, dims, vst);
fail:
    return status;
}

/* ---- Gather family ------------------------------------------------------------------ */

/* Index value j of input ii, normalized against size; out-of-range is an error. */
static inline mixrt_status get_index(struct mixrt_kernel_ctx *k, int ii, const struct mixrt_tensor *ind, size_t j,
                                     int64_t size, int64_t axis, int64_t *out) {
    int64_t v = ind->dtype == MIXRT_DTYPE_I64 ? ((const int64_t *)ind->data)[j] : mixrt_load_i64(ind->data, ind->dtype, j);
    *out = 0;
    if (v < -size || v >= size)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, ii,
                         "index %lld at element %zu is out of range [%lld, %lld] for axis %lld of size %lld",
                         (long long)v, j, (long long)-size, (long long)size - 1, (long long)axis, (long long)size);
    *out = v < 0 ? v + size : v;
    return MIXRT_STATUS_OK;
}

static mixrt_status check_index_input(struct mixrt_kernel_ctx *k, int i) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if (!mixrt_dtype_is_int(t->dtype))
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, "expected int32 or int64 indices");
    return MIXRT_STATUS_OK;
}

static mixrt_status run_gather(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL, *ind = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t dims[MIXRT_MAX_RANK];
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(check_index_input(k, 1));
    ind = k->in[1];
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 0);
    if (!mixrt_norm_axis(axis, x->rank, &axis))
        return bad_attr(k, "axis", "%lld is out of range for rank %d", (long long)axis, x->rank);
    int r = x->rank - 1 + ind->rank;
    if (r > MIXRT_MAX_RANK) return bad_input(k, MIXRT_STATUS_UNSUPPORTED, 1, "output rank %d is too large", r);
    int p = 0;
    for (int d = 0; d < axis; d++) dims[p++] = x->dims[d];
    for (int d = 0; d < ind->rank; d++) dims[p++] = ind->dims[d];
    for (int d = (int)axis + 1; d < x->rank; d++) dims[p++] = x->dims[d];
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, r, dims, &o));
    int64_t outer = prod(x->dims, 0, (int)axis), inner = prod(x->dims, (int)axis + 1, x->rank);
    int64_t len = x->dims[axis];
    size_t ni = mixrt_tensor_numel(ind), pos = 0;
    if (outer == 0 || inner == 0) {
        /* still validate the indices: a wrong index is wrong whatever the data size */
        for (size_t j = 0; j < ni && len > 0; j++) {
            int64_t v;
            MIXRT_TRY(get_index(k, 1, ind, j, len, axis, &v));
        }
        return MIXRT_STATUS_OK;
    }
    for (int64_t b = 0; b < outer; b++)
        for (size_t j = 0; j < ni; j++) {
            int64_t v;
            MIXRT_TRY(get_index(k, 1, ind, j, len, axis, &v));
            MIXRT_TRY(copy_elems(k, o, pos, x, (size_t)((b * len + v) * inner), (size_t)inner));
            pos += (size_t)inner;
        }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status run_gather_elements(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL, *ind = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t st[MIXRT_MAX_RANK], idx[MIXRT_MAX_RANK] = {0};
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(check_index_input(k, 1));
    ind = k->in[1];
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 0);
    if (!mixrt_norm_axis(axis, x->rank, &axis))
        return bad_attr(k, "axis", "%lld is out of range for rank %d", (long long)axis, x->rank);
    if (ind->rank != x->rank)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "rank differs from the data's %d", x->rank);
    for (int d = 0; d < x->rank; d++)
        if (d != axis && ind->dims[d] > x->dims[d])
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "dim %d exceeds the data's %lld", d,
                             (long long)x->dims[d]);
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, ind->rank, ind->dims, &o));
    row_strides(x->rank, x->dims, st);
    size_t n = mixrt_tensor_numel(ind);
    for (size_t j = 0; j < n; j++) {
        int64_t v, off = 0;
        MIXRT_TRY(get_index(k, 1, ind, j, x->dims[axis], axis, &v));
        for (int d = 0; d < x->rank; d++) off += (d == axis ? v : idx[d]) * st[d];
        MIXRT_TRY(copy_elems(k, o, j, x, (size_t)off, 1));
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++idx[d] < ind->dims[d]) break;
            idx[d] = 0;
        }
    }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

/* Shared by GatherND and ScatterND: the data offset of index tuple j (m values) of ind,
 * within the batch slice starting at data dim b. */
static mixrt_status nd_offset(struct mixrt_kernel_ctx *k, int ii, const struct mixrt_tensor *ind, size_t j, int m,
                              const struct mixrt_tensor *x, int b, const int64_t *st, int64_t *off) {
    int64_t o = 0;
    for (int t = 0; t < m; t++) {
        int64_t v;
        mixrt_status s = get_index(k, ii, ind, j * (size_t)m + (size_t)t, x->dims[b + t], b + t, &v);
        if (s != MIXRT_STATUS_OK) return s;
        o += v * st[b + t];
    }
    *off = o;
    return MIXRT_STATUS_OK;
}

static mixrt_status run_gather_nd(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL, *ind = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t dims[MIXRT_MAX_RANK], st[MIXRT_MAX_RANK];
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(check_index_input(k, 1));
    ind = k->in[1];
    int64_t b = k->opset >= 12 ? mixrt_node_attr_int(k->node, "batch_dims", 0) : 0;
    if (ind->rank < 1) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "indices must have rank >= 1");
    if (b < 0 || b >= ind->rank || b >= x->rank)
        return bad_attr(k, "batch_dims", "%lld is out of range for data rank %d and indices rank %d", (long long)b,
                        x->rank, ind->rank);
    int64_t m = ind->dims[ind->rank - 1];
    if (m < 1 || m > x->rank - b)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "last dim %lld must be in [1, %lld]", (long long)m,
                         (long long)(x->rank - b));
    for (int d = 0; d < b; d++)
        if (ind->dims[d] != x->dims[d])
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "batch dim %d differs from the data's %lld", d,
                             (long long)x->dims[d]);
    int r = ind->rank - 1 + x->rank - (int)(b + m);
    if (r > MIXRT_MAX_RANK)
        return bad_input(k, MIXRT_STATUS_UNSUPPORTED, 1, "output rank %d exceeds %d", r, MIXRT_MAX_RANK);
    r = 0;
    for (int d = 0; d < ind->rank - 1; d++) dims[r++] = ind->dims[d];
    for (int d = (int)(b + m); d < x->rank; d++) dims[r++] = x->dims[d];
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, r, dims, &o));
    row_strides(x->rank, x->dims, st);
    int64_t nb = prod(x->dims, 0, (int)b), per = prod(ind->dims, (int)b, ind->rank - 1);
    int64_t slice = prod(x->dims, (int)(b + m), x->rank), bstride = b > 0 ? st[b - 1] : 0;
    size_t pos = 0;
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t j = 0; j < per; j++) {
            int64_t off;
            MIXRT_TRY(nd_offset(k, 1, ind, (size_t)(bi * per + j), (int)m, x, (int)b, st, &off));
            MIXRT_TRY(copy_elems(k, o, pos, x, (size_t)(bi * bstride + off), (size_t)slice));
            pos += (size_t)slice;
        }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

/* ---- Scatter family ----------------------------------------------------------------- */

enum reduction { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static mixrt_status get_reduction(struct mixrt_kernel_ctx *k, mixrt_dtype dt, enum reduction *out) {
    const char *r = k->opset >= 16 ? mixrt_node_attr_string(k->node, "reduction", "none") : "none";
    if (!strcmp(r, "none"))
        *out = RED_NONE;
    else if (!strcmp(r, "add"))
        *out = RED_ADD;
    else if (!strcmp(r, "mul"))
        *out = RED_MUL;
    else if (!strcmp(r, "max"))
        *out = RED_MAX;
    else if (!strcmp(r, "min"))
        *out = RED_MIN;
    else
        return bad_attr(k, "reduction", "'%s' is not none, add, mul, max or min", r);
    if (*out != RED_NONE && !is_numeric(dt))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "reduction '%s' on %s data", r,
                                  mixrt_dtype_name(dt));
    return MIXRT_STATUS_OK;
}

static mixrt_status scatter_elem(struct mixrt_kernel_ctx *k, enum reduction red, struct mixrt_tensor *o, size_t di,
                                 const struct mixrt_tensor *u, size_t ui) {
    if (red == RED_NONE) return copy_elems(k, o, di, u, ui, 1);
    mixrt_dtype dt = o->dtype;
    if (mixrt_dtype_is_float(dt)) {
        double a = mixrt_load_f64(o->data, dt, di), b = mixrt_load_f64(u->data, dt, ui), r;
        switch (red) {
        case RED_ADD:
            r = a + b;
            break;
        case RED_MUL:
            r = a * b;
            break;
        case RED_MAX:
            r = a >= b ? a : b;
            break;
        default:
            r = a <= b ? a : b;
            break;
        }
        mixrt_store_f64(o->data, dt, di, r);
    } else if (dt == MIXRT_DTYPE_U64) {
        uint64_t a = ((uint64_t *)o->data)[di], b = ((const uint64_t *)u->data)[ui], r;
        switch (red) {
        case RED_ADD:
            r = a + b;
            break;
        case RED_MUL:
            r = a * b;
            break;
        case RED_MAX:
            r = a >= b ? a : b;
            break;
        default:
            r = a <= b ? a : b;
            break;
        }
        ((uint64_t *)o->data)[di] = r;
    } else {
        int64_t a = mixrt_load_i64(o->data, dt, di), b = mixrt_load_i64(u->data, dt, ui), r;
        switch (red) {
        case RED_ADD:
            r = (int64_t)((uint64_t)a + (uint64_t)b);
            break; /* wraps like the narrow type */
        case RED_MUL:
            r = (int64_t)((uint64_t)a * (uint64_t)b);
            break;
        case RED_MAX:
            r = a >= b ? a : b;
            break;
        default:
            r = a <= b ? a : b;
            break;
        }
        mixrt_store_i64(o->data, dt, di, r);
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status run_scatter_elements(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL, *ind = NULL, *u = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t st[MIXRT_MAX_RANK], idx[MIXRT_MAX_RANK] = {0};
    enum reduction red;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(check_index_input(k, 1));
    MIXRT_TRY(mixrt_kernel_input(k, 2, &u));
    MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, 2));
    ind = k->in[1];
    MIXRT_TRY(get_reduction(k, x->dtype, &red));
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 0);
    if (!mixrt_norm_axis(axis, x->rank, &axis))
        return bad_attr(k, "axis", "%lld is out of range for rank %d", (long long)axis, x->rank);
    bool ok = ind->rank == x->rank && u->rank == ind->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = u->dims[d] == ind->dims[d] && (d == axis || ind->dims[d] <= x->dims[d]);
    if (!ok) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "shape does not fit updates and data");
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &o));
    MIXRT_TRY(copy_elems(k, o, 0, x, 0, mixrt_tensor_numel(x)));
    row_strides(x->rank, x->dims, st);
    size_t n = mixrt_tensor_numel(ind);
    const size_t es = mixrt_dtype_size(x->dtype);
    const bool move = red == RED_NONE && x->dtype != MIXRT_DTYPE_STRING;
    int64_t base = 0; /* the offset of idx without the axis: stepped with it */
    const int r1 = x->rank - 1;
    const int64_t w = x->rank > 0 ? ind->dims[r1] : 1;
    /* Rows: scattering along an outer axis, an innermost run of one index value (indices made
     * by Expand, as torchvision's MultiScaleRoIAlign does) moves as one block; the run's targets
     * are distinct and consecutive, so the result is the element-wise one. */
    const bool rows = move && r1 > 0 && axis != r1 && w > 1 && ind->dtype == MIXRT_DTYPE_I64;
    for (size_t j = 0; j < n; j++) {
        int64_t v;
        if (rows && idx[r1] == 0) {
            const int64_t *iv = (const int64_t *)ind->data + j;
            int64_t t = 1;
            while (t < w && iv[t] == iv[0]) t++;
            if (t == w) {
                MIXRT_TRY(get_index(k, 1, ind, j, x->dims[axis], axis, &v));
                memcpy((char *)o->data + (size_t)(base + v * st[axis]) * es, (const char *)u->data + j * es,
                       (size_t)w * es);
                j += (size_t)(w - 1), idx[r1] = w - 1, base += st[r1] * (w - 1);
                goto step;
            }
        }
        MIXRT_TRY(get_index(k, 1, ind, j, x->dims[axis], axis, &v));
        const int64_t off = base + v * st[axis];
        char *dst = (char *)o->data + (size_t)off * es;
        const char *src = (const char *)u->data + j * es;
        if (move && es == 4) memcpy(dst, src, 4); /* fixed sizes: moves, not library calls */
        else if (move && es == 8) memcpy(dst, src, 8);
        else if (move) memcpy(dst, src, es);
        else MIXRT_TRY(scatter_elem(k, red, o, (size_t)off, u, j));
    step:
        for (int d = x->rank - 1; d >= 0; d--) {
            if (d != axis) base += st[d];
            if (++idx[d] < ind->dims[d]) break;
            if (d != axis) base -= st[d] * ind->dims[d];
            idx[d] = 0;
        }
    }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status run_scatter_nd(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL, *ind = NULL, *u = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t st[MIXRT_MAX_RANK];
    enum reduction red;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(check_index_input(k, 1));
    MIXRT_TRY(mixrt_kernel_input(k, 2, &u));
    MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, 2));
    ind = k->in[1];
    MIXRT_TRY(get_reduction(k, x->dtype, &red));
    if (ind->rank < 1) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "indices must have rank >= 1");
    int64_t m = ind->dims[ind->rank - 1];
    if (m < 1 || m > x->rank)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "last dim %lld must be in [1, %d]", (long long)m, x->rank);
    /* updates shape = indices.shape[:-1] + data.shape[m:] */
    bool ok = u->rank == ind->rank - 1 + x->rank - (int)m;
    for (int d = 0; ok && d < ind->rank - 1; d++) ok = u->dims[d] == ind->dims[d];
    for (int d = (int)m; ok && d < x->rank; d++) ok = u->dims[ind->rank - 1 + d - m] == x->dims[d];
    if (!ok)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, "shape must be indices.shape[:-1] + data.shape[%lld:]",
                         (long long)m);
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &o));
    MIXRT_TRY(copy_elems(k, o, 0, x, 0, mixrt_tensor_numel(x)));
    row_strides(x->rank, x->dims, st);
    int64_t per = prod(ind->dims, 0, ind->rank - 1), slice = prod(x->dims, (int)m, x->rank);
    for (int64_t j = 0; j < per; j++) {
        int64_t off;
        MIXRT_TRY(nd_offset(k, 1, ind, (size_t)j, (int)m, x, 0, st, &off));
        for (int64_t e = 0; e < slice; e++)
            MIXRT_TRY(scatter_elem(k, red, o, (size_t)(off + e), u, (size_t)(j * slice + e)));
    }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

/* ---- Pad ---------------------------------------------------------------------------- */

/* A one-element tensor of dtype dt holding the fill value: element ei of src, or v. */
static mixrt_status make_fill(struct mixrt_kernel_ctx *k, struct mixrt_tensor *fill, mixrt_dtype dt,
                              const struct mixrt_tensor *src, size_t ei, double v) {
    mixrt_status status = mixrt_tensor_init(k->ctx, fill, dt, 0, NULL);
    if (status != MIXRT_STATUS_OK) return status;
    if (src)
        status = copy_elems(k, fill, 0, src, ei, 1);
    else if (dt == MIXRT_DTYPE_STRING)
        status = str_set(k, fill->data, "", 0);
    else
        mixrt_store_f64(fill->data, dt, 0, v);
    if (status != MIXRT_STATUS_OK) mixrt_tensor_release(k->ctx, fill);
    return status;
}

static mixrt_status run_pad(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL, fill;
    memset(&fill, 0, sizeof(fill));
    int64_t pads[2 * MIXRT_MAX_RANK], axes[MIXRT_MAX_RANK], beg[MIXRT_MAX_RANK] = {0}, end[MIXRT_MAX_RANK] = {0};
    int64_t dims[MIXRT_MAX_RANK], st[MIXRT_MAX_RANK], idx[MIXRT_MAX_RANK] = {0};
    size_t np = 0, na = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    const char *mode = mixrt_node_attr_string(k->node, "mode", "constant");
    int md = !strcmp(mode, "constant")  ? 0
             : !strcmp(mode, "reflect") ? 1
             : !strcmp(mode, "edge")    ? 2
             : !strcmp(mode, "wrap")    ? 3
                                        : -1;
    if (md < 0) return bad_attr(k, "mode", "'%s' is not constant, reflect, edge or wrap", mode);
    const struct mixrt_tensor *cv = NULL;
    double value = 0;
    if (k->opset < 11) {
        bool have;
        MIXRT_TRY(attr_ints(k, k->opset < 2 ? "paddings" : "pads", pads, 2 * MIXRT_MAX_RANK, &np, &have));
        if (!have) return bad_attr(k, k->opset < 2 ? "paddings" : "pads", "is required");
        value = mixrt_node_attr_float(k->node, "value", 0.0f);
    } else {
        MIXRT_TRY(read_ints(k, 1, pads, 2 * MIXRT_MAX_RANK, &np));
        cv = mixrt_kernel_opt_input(k, 2);
        if (cv) {
            MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, 2));
            if (mixrt_tensor_numel(cv) == 0) cv = NULL; /* empty: default 0 */
        }
        if (k->opset >= 18 && mixrt_kernel_opt_input(k, 3)) {
            MIXRT_TRY(read_ints(k, 3, axes, MIXRT_MAX_RANK, &na));
            MIXRT_TRY(norm_axes(k, "axes", axes, na, x->rank));
        } else {
            na = (size_t)x->rank;
            for (size_t i = 0; i < na; i++) axes[i] = (int64_t)i;
        }
    }
    if (k->opset < 11) {
        na = (size_t)x->rank;
        for (size_t i = 0; i < na; i++) axes[i] = (int64_t)i;
    }
    if (np != 2 * na)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "pads has %zu values, expected %zu for input rank %d",
                                  np, 2 * na, x->rank);
    for (size_t i = 0; i < na; i++) beg[axes[i]] = pads[i], end[axes[i]] = pads[na + i];
    for (int d = 0; d < x->rank; d++) {
        int64_t dim = x->dims[d];
        if (beg[d] < -dim || end[d] < -dim || beg[d] > ((int64_t)1 << 40) || end[d] > ((int64_t)1 << 40) ||
            dim + beg[d] + end[d] < 0)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "pads %lld, %lld are invalid for axis %d of size %lld", (long long)beg[d],
                                      (long long)end[d], d, (long long)dim);
        dims[d] = dim + beg[d] + end[d];
        /* non-constant modes read the cropped input; it must not be empty when output exists */
        if (md && dims[d] > 0 && dim + (beg[d] < 0 ? beg[d] : 0) + (end[d] < 0 ? end[d] : 0) <= 0)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "%s padding of empty axis %d", mode, d);
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, dims, &o));
    MIXRT_TRY(make_fill(k, &fill, x->dtype, cv, 0, value));
    row_strides(x->rank, x->dims, st);
    size_t n = mixrt_tensor_numel(o);
    for (size_t i = 0; i < n; i++) {
        int64_t off = 0;
        bool outside = false;
        for (int d = 0; d < x->rank; d++) {
            int64_t lo = beg[d] < 0 ? -beg[d] : 0, hi = x->dims[d] - (end[d] < 0 ? -end[d] : 0), len = hi - lo;
            int64_t p = idx[d] - beg[d];
            if (p < lo || p >= hi) {
                if (md == 0) {
                    outside = true;
                    break;
                }
                int64_t q = p - lo;
                if (md == 1) {
                    if (len == 1)
                        q = 0;
                    else {
                        int64_t per = 2 * (len - 1);
                        q %= per;
                        if (q < 0) q += per;
                        if (q >= len) q = per - q;
                    }
                } else if (md == 2) {
                    q = q < 0 ? 0 : len - 1;
                } else {
                    q %= len;
                    if (q < 0) q += len;
                }
                p = lo + q;
            }
            off += p * st[d];
        }
        if (outside)
            MIXRT_TRY(copy_elems(k, o, i, &fill, 0, 1));
        else
            MIXRT_TRY(copy_elems(k, o, i, x, (size_t)off, 1));
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
fail:
    mixrt_tensor_release(k->ctx, &fill);
    return status;
}

/* ---- Shape, Size, ConstantOfShape, Range, EyeLike ----------------------------------- */

static mixrt_status run_shape(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    int64_t r = x->rank, s = 0, e = r;
    if (k->opset >= 15) {
        s = mixrt_node_attr_int(k->node, "start", 0);
        e = mixrt_node_attr_int(k->node, "end", r);
        if (s < 0) s += r;
        if (e < 0) e += r;
        s = s < 0 ? 0 : s > r ? r : s;
        e = e < 0 ? 0 : e > r ? r : e;
    }
    int64_t n = e > s ? e - s : 0;
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I64, 1, &n, &o));
    for (int64_t i = 0; i < n; i++) ((int64_t *)o->data)[i] = x->dims[s + i];
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status run_size(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I64, 0, NULL, &o));
    *(int64_t *)o->data = (int64_t)mixrt_tensor_numel(x);
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status run_constant_of_shape(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor *o = NULL, fill;
    memset(&fill, 0, sizeof(fill));
    int64_t dims[MIXRT_MAX_RANK];
    size_t n = 0;
    MIXRT_TRY(read_ints(k, 0, dims, MIXRT_MAX_RANK, &n));
    for (size_t i = 0; i < n; i++)
        if (dims[i] < 0) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "dim %lld is negative", (long long)dims[i]);
    const struct mixrt_attr *a = mixrt_node_attr(k->node, "value");
    const struct mixrt_tensor *v = a && a->type == MIXRT_ATTR_TENSOR ? a->t : NULL;
    if (a && (!v || mixrt_tensor_numel(v) != 1 || !mixrt_dtype_size(v->dtype)))
        return bad_attr(k, "value", "must be a one-element tensor");
    mixrt_dtype dt = v ? v->dtype : MIXRT_DTYPE_F32;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, (int)n, dims, &o)); /* every element filled */
    MIXRT_TRY(make_fill(k, &fill, dt, v, 0, 0.0));
    size_t total = mixrt_tensor_numel(o);
    if (dt != MIXRT_DTYPE_STRING && total) {
        fill_repeat(o->data, fill.data, mixrt_dtype_size(dt), total);
    } else {
        for (size_t i = 0; i < total; i++) MIXRT_TRY(copy_elems(k, o, i, &fill, 0, 1));
    }
fail:
    mixrt_tensor_release(k->ctx, &fill);
    return status;
}

static mixrt_status run_range(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *t[3];
    struct mixrt_tensor *o = NULL;
    for (int i = 0; i < 3; i++) {
        MIXRT_TRY(mixrt_kernel_input(k, i, &t[i]));
        if (mixrt_tensor_numel(t[i]) != 1 || !(mixrt_dtype_is_float(t[i]->dtype) || mixrt_dtype_is_int(t[i]->dtype)))
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, "expected a numeric scalar");
        if (i) MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, i));
    }
    mixrt_dtype dt = t[0]->dtype;
    int64_t n;
    if (mixrt_dtype_is_float(dt)) {
        double s = mixrt_load_f64(t[0]->data, dt, 0), l = mixrt_load_f64(t[1]->data, dt, 0),
               d = mixrt_load_f64(t[2]->data, dt, 0);
        double c = ceil((l - s) / d);
        if (d == 0 || isnan(c) || c > 1e15)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, "delta gives no finite range");
        n = c > 0 ? (int64_t)c : 0;
        MIXRT_TRY(mixrt_kernel_output(k, 0, dt, 1, &n, &o));
        for (int64_t i = 0; i < n; i++) mixrt_store_f64(o->data, dt, (size_t)i, s + (double)i * d);
    } else {
        int64_t s = mixrt_load_i64(t[0]->data, dt, 0), l = mixrt_load_i64(t[1]->data, dt, 0),
                d = mixrt_load_i64(t[2]->data, dt, 0);
        if (d == 0) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, "delta is 0");
        uint64_t diff, step;
        if (d > 0 ? l <= s : l >= s)
            n = 0;
        else {
            diff = d > 0 ? (uint64_t)l - (uint64_t)s : (uint64_t)s - (uint64_t)l;
            step = d > 0 ? (uint64_t)d : (uint64_t)0 - (uint64_t)d;
            uint64_t c = diff / step + (diff % step != 0);
            if (c > ((uint64_t)1 << 50)) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, "range is too long");
            n = (int64_t)c;
        }
        MIXRT_TRY(mixrt_kernel_output(k, 0, dt, 1, &n, &o));
        for (int64_t i = 0; i < n; i++)
            mixrt_store_i64(o->data, dt, (size_t)i, (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d));
    }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status run_eyelike(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    if (x->rank != 2) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "expected rank 2");
    const struct mixrt_attr *da = mixrt_node_attr(k->node, "dtype");
    mixrt_dtype dt = da ? (mixrt_dtype)da->i : x->dtype;
    if (!is_numeric(dt))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "output dtype %s is not numeric",
                                  mixrt_dtype_name(dt));
    int64_t kk = mixrt_node_attr_int(k->node, "k", 0);
    MIXRT_TRY(mixrt_kernel_output(k, 0, dt, 2, x->dims, &o));
    for (int64_t i = 0; i < x->dims[0]; i++) {
        if (kk > x->dims[1] || kk < -x->dims[0]) break;
        int64_t j = i + kk;
        if (j >= 0 && j < x->dims[1]) mixrt_store_f64(o->data, dt, (size_t)(i * x->dims[1] + j), 1.0);
    }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

/* ---- OneHot, NonZero, Trilu, Compress, ReverseSequence ------------------------------ */

static mixrt_status run_onehot(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *ind = NULL, *dep = NULL, *val = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t dims[MIXRT_MAX_RANK];
    MIXRT_TRY(mixrt_kernel_input(k, 0, &ind));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &dep));
    MIXRT_TRY(mixrt_kernel_input(k, 2, &val));
    MIXRT_TRY(check_tensor_dtype(k, 2));
    if (!is_numeric(ind->dtype)) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "expected numeric indices");
    if (!is_numeric(dep->dtype) || mixrt_tensor_numel(dep) != 1)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "expected a numeric scalar");
    if (mixrt_tensor_numel(val) != 2) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, "expected [off, on] values");
    int64_t depth = mixrt_load_i64(dep->data, dep->dtype, 0);
    if (depth < 1 || depth > ((int64_t)1 << 40))
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "depth %lld is invalid", (long long)depth);
    int r = ind->rank + 1;
    if (r > MIXRT_MAX_RANK) return bad_input(k, MIXRT_STATUS_UNSUPPORTED, 0, "rank too large");
    int64_t axis = mixrt_node_attr_int(k->node, "axis", -1);
    if (!mixrt_norm_axis(axis, r, &axis))
        return bad_attr(k, "axis", "%lld is out of range for output rank %d", (long long)axis, r);
    for (int d = 0, j = 0; d < r; d++) dims[d] = d == axis ? depth : ind->dims[j++];
    MIXRT_TRY(mixrt_kernel_output(k, 0, val->dtype, r, dims, &o));
    int64_t outer = prod(ind->dims, 0, (int)axis), inner = prod(ind->dims, (int)axis, ind->rank);
    for (int64_t a = 0; a < outer; a++)
        for (int64_t c = 0; c < depth; c++)
            for (int64_t b = 0; b < inner; b++) {
                int64_t v = mixrt_load_i64(ind->data, ind->dtype, (size_t)(a * inner + b));
                if (v < 0) v += depth;
                MIXRT_TRY(copy_elems(k, o, (size_t)((a * depth + c) * inner + b), val, v == c ? 1 : 0, 1));
            }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static bool elem_nonzero(const struct mixrt_tensor *x, size_t i) {
    if (x->dtype == MIXRT_DTYPE_STRING) return ((const struct mixrt_string *)x->data)[i].len != 0;
    if (mixrt_dtype_is_float(x->dtype)) return mixrt_load_f64(x->data, x->dtype, i) != 0;
    return mixrt_load_i64(x->data, x->dtype, i) != 0;
}

/* NonZero on the element's bits where a dtype allows it: an element is zero when its bits under
 * the mask are (a float's sign bit is left out: -0 is zero, NaN is not); 0 when it does not. */
static uint64_t nz_mask(mixrt_dtype dt) {
    switch (dt) {
    case MIXRT_DTYPE_BOOL: case MIXRT_DTYPE_U8: case MIXRT_DTYPE_I8: return 0xff;
    case MIXRT_DTYPE_U16: case MIXRT_DTYPE_I16: return 0xffff;
    case MIXRT_DTYPE_F16: case MIXRT_DTYPE_BF16: return 0x7fff;
    case MIXRT_DTYPE_U32: case MIXRT_DTYPE_I32: return 0xffffffffu;
    case MIXRT_DTYPE_F32: return 0x7fffffffu;
    case MIXRT_DTYPE_U64: case MIXRT_DTYPE_I64: return UINT64_MAX;
    case MIXRT_DTYPE_F64: return UINT64_MAX >> 1;
    default: return 0;
    }
}

static inline uint64_t nz_bits(const uint8_t *p, size_t es) {
    uint8_t b1;
    uint16_t b2;
    uint32_t b4;
    uint64_t b8;
    switch (es) {
    case 1: memcpy(&b1, p, 1); return b1;
    case 2: memcpy(&b2, p, 2); return b2;
    case 4: memcpy(&b4, p, 4); return b4;
    default: memcpy(&b8, p, 8); return b8;
    }
}

/* Index of the first nonzero element of p[from, n) (n when none): whole 8-byte words whose bits
 * under the repeated mask are zero are passed over at once (the usual input is a sparse mask). */
static size_t nz_next(const uint8_t *p, size_t es, uint64_t m, uint64_t wm, size_t from, size_t n) {
    size_t i = from, per = 8 / es;
    while (i < n && i % per) {
        if (nz_bits(p + i * es, es) & m) return i;
        i++;
    }
    for (uint64_t w; i + per <= n; i += per) {
        memcpy(&w, p + i * es, 8);
        if (w & wm) break;
    }
    for (; i < n; i++)
        if (nz_bits(p + i * es, es) & m) return i;
    return n;
}

static mixrt_status run_nonzero(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t idx[MIXRT_MAX_RANK] = {0};
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    size_t n = mixrt_tensor_numel(x), nz = 0, es = mixrt_dtype_size(x->dtype);
    uint64_t m = nz_mask(x->dtype), wm = m;
    for (size_t b = es; m && b < 8; b *= 2) wm |= wm << (8 * b);
    const uint8_t *xb = x->data;
    if (m)
        for (size_t i = nz_next(xb, es, m, wm, 0, n); i < n; i = nz_next(xb, es, m, wm, i + 1, n)) nz++;
    else
        for (size_t i = 0; i < n; i++) nz += elem_nonzero(x, i);
    int r = x->rank ? x->rank : 1; /* a scalar reports like a 1-element vector */
    int64_t dims[2] = {r, (int64_t)nz};
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I64, 2, dims, &o));
    int64_t *od = o->data;
    if (!n || !nz) return MIXRT_STATUS_OK;
    if (!x->rank) {
        od[0] = 0;
        return MIXRT_STATUS_OK;
    }
    /* row by row over the innermost axis; the outer coordinates step once a row */
    size_t c = 0, cols = (size_t)x->dims[x->rank - 1];
    for (size_t row = 0; row < n; row += cols) {
        size_t end = row + cols;
        for (size_t i = row; i < end; i++) {
            if (m) {
                i = nz_next(xb, es, m, wm, i, end);
                if (i == end) break;
            } else if (!elem_nonzero(x, i)) {
                continue;
            }
            for (int d = 0; d < x->rank - 1; d++) od[(size_t)d * nz + c] = idx[d];
            od[(size_t)(x->rank - 1) * nz + c] = (int64_t)(i - row);
            c++;
        }
        for (int d = x->rank - 2; d >= 0; d--) {
            if (++idx[d] < x->dims[d]) break;
            idx[d] = 0;
        }
    }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status run_trilu(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t kk = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    if (x->rank < 2) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "expected rank >= 2");
    if (mixrt_kernel_opt_input(k, 1)) MIXRT_TRY(scalar_i64(k, 1, &kk));
    bool upper = mixrt_node_attr_int(k->node, "upper", 1) != 0;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &o));
    int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1], B = prod(x->dims, 0, x->rank - 2);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) {
                bool keep = upper ? j - i >= kk : j - i <= kk;
                if (keep)
                    MIXRT_TRY(copy_elems(k, o, (size_t)((b * R + i) * C + j), x, (size_t)((b * R + i) * C + j), 1));
            }
    return finish_strings(k, o);
fail:
    return status;
}

static mixrt_status run_compress(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL, *c = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t dims[MIXRT_MAX_RANK];
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &c));
    if (c->rank != 1 || !is_numeric(c->dtype))
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "expected a 1-D bool condition");
    const struct mixrt_attr *aa = mixrt_node_attr(k->node, "axis");
    int64_t axis = 0, outer, len, inner;
    int r;
    if (aa) {
        if (!mixrt_norm_axis(aa->i, x->rank, &axis))
            return bad_attr(k, "axis", "%lld is out of range for rank %d", (long long)aa->i, x->rank);
        outer = prod(x->dims, 0, (int)axis), len = x->dims[axis], inner = prod(x->dims, (int)axis + 1, x->rank);
        r = x->rank;
        for (int d = 0; d < r; d++) dims[d] = x->dims[d];
    } else {
        outer = 1, len = (int64_t)mixrt_tensor_numel(x), inner = 1, r = 1;
    }
    int64_t cl = c->dims[0], cnt = 0;
    for (int64_t i = 0; i < cl; i++)
        if (mixrt_load_i64(c->data, c->dtype, (size_t)i)) {
            if (i >= len)
                return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "selects slice %lld of an axis of size %lld",
                                 (long long)i, (long long)len);
            cnt++;
        }
    dims[aa ? axis : 0] = cnt;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, r, dims, &o));
    size_t pos = 0;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < cl && i < len; i++)
            if (mixrt_load_i64(c->data, c->dtype, (size_t)i)) {
                MIXRT_TRY(copy_elems(k, o, pos, x, (size_t)((a * len + i) * inner), (size_t)inner));
                pos += (size_t)inner;
            }
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status run_reverse_sequence(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *o = NULL;
    int64_t *lens = NULL;
    size_t nl = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    int64_t ta = mixrt_node_attr_int(k->node, "time_axis", 0), ba = mixrt_node_attr_int(k->node, "batch_axis", 1);
    if (x->rank < 2) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "expected rank >= 2");
    if (!((ta == 0 && ba == 1) || (ta == 1 && ba == 0)))
        return bad_attr(k, "time_axis", "time_axis %lld and batch_axis %lld must be 0 and 1", (long long)ta,
                        (long long)ba);
    MIXRT_TRY(read_ints_alloc(k, 1, &lens, &nl));
    MIXRT_CHECK(k->ctx, (int64_t)nl == x->dims[ba], MIXRT_STATUS_INVALID_MODEL,
                "cannot run ReverseSequence node '%s': sequence_lens has %zu values for batch size %lld", k->node->name,
                nl, (long long)x->dims[ba]);
    for (size_t b = 0; b < nl; b++)
        MIXRT_CHECK(k->ctx, lens[b] >= 0 && lens[b] <= x->dims[ta], MIXRT_STATUS_INVALID_MODEL,
                    "cannot run ReverseSequence node '%s': input #1 '%s' value %lld at %zu is out of range [0, %lld]",
                    k->node->name, iname(k, 1), (long long)lens[b], b, (long long)x->dims[ta]);
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &o));
    int64_t T = x->dims[ta], B = x->dims[ba], inner = prod(x->dims, 2, x->rank);
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++) {
            int64_t src_t = t < lens[b] ? lens[b] - 1 - t : t;
            int64_t so = ta == 0 ? src_t * B + b : b * T + src_t, dof = ta == 0 ? t * B + b : b * T + t;
            MIXRT_TRY(copy_elems(k, o, (size_t)(dof * inner), x, (size_t)(so * inner), (size_t)inner));
        }
fail:
    free_ints(k, lens, nl);
    return status;
}

/* ---- Resize, Upsample ----------------------------------------------------------------
 * Follows the ONNX reference (onnx/backend/test/case/node/resize.py): per axis, each output
 * coordinate maps to a real input coordinate; the taps are the n nearest input positions
 * (edge-padded by ceil(n/2), preferring lower indices), weighted by the mode's coefficients;
 * axes combine separably. */

enum rs_coord { RC_HALF_PIXEL, RC_HALF_PIXEL_SYM, RC_PYTORCH, RC_ALIGN, RC_ASYM, RC_TF_NN, RC_TF_CROP };
enum rs_mode { RM_NEAREST, RM_LINEAR, RM_CUBIC };
enum rs_nearest { RN_PREFER_FLOOR, RN_PREFER_CEIL, RN_FLOOR, RN_CEIL, RN_SIMPLE };

#define RS_MAX_TAPS 64

struct rs_axis {
    int n;        /* tap slots per output coordinate */
    int64_t *idx; /* [out * n] clamped input indices of the nonzero taps, first cnt[x] used */
    double *w;    /* [out * n] their weights */
    uint8_t *cnt; /* [out] nonzero taps (<= RS_MAX_TAPS): nearest has one, scale-1 axes one */
    uint8_t *oob; /* [out] tf_crop_and_resize: extrapolate */
};

struct rs_params {
    enum rs_mode mode;
    enum rs_coord coord;
    enum rs_nearest nearest;
    double cubic_a;
    bool exclude_outside, antialias;
};

static int rs_coeffs(const struct rs_params *p, double ratio, double scale, double *c) {
    if (p->mode == RM_NEAREST) {
        bool second;
        if (ratio == 1.0)
            second = true;
        else if (p->nearest == RN_PREFER_FLOOR)
            second = ratio > 0.5;
        else if (p->nearest == RN_PREFER_CEIL)
            second = ratio >= 0.5;
        else if (p->nearest == RN_FLOOR)
            second = false;
        else if (p->nearest == RN_CEIL)
            second = true;
        else
            second = scale < 1.0; /* "simple" (opset < 11): ceil when downsampling */
        c[0] = second ? 0 : 1;
        c[1] = second ? 1 : 0;
        return 2;
    }
    double s = p->antialias && scale < 1.0 ? scale : 1.0;
    if (p->mode == RM_LINEAR) {
        if (!p->antialias) {
            c[0] = 1 - ratio;
            c[1] = ratio;
            return 2;
        }
        double f = floor(-1.0 / s) + 1; /* s may be tiny: bound before converting */
        if (f < -RS_MAX_TAPS) return -1;
        int start = (int)f, n = 2 - 2 * start;
        if (n > RS_MAX_TAPS) return -1;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double a = fabs(((double)(start + i) - ratio) * s);
            c[i] = a < 1 ? 1 - a : 0;
            sum += c[i];
        }
        for (int i = 0; i < n; i++) c[i] /= sum;
        return n;
    }
    double A = p->cubic_a;
    if (!p->antialias) {
        double r = ratio, q = 1 - ratio;
        c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
        c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
        c[2] = ((A + 2) * q - (A + 3)) * q * q + 1;
        c[3] = ((A * (q + 1) - 5 * A) * (q + 1) + 8 * A) * (q + 1) - 4 * A;
        return 4;
    }
    double f = floor(-2.0 / s) + 1;
    if (f < -RS_MAX_TAPS) return -1;
    int start = (int)f, n = 2 - 2 * start;
    if (n > RS_MAX_TAPS) return -1;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double x = fabs(s * ((double)(start + i) - ratio)), v;
        if (x <= 1)
            v = (A + 2) * x * x * x - (A + 3) * x * x + 1;
        else if (x < 2)
            v = A * x * x * x - 5 * A * x * x + 8 * A * x - 4 * A;
        else
            v = 0;
        c[i] = v;
        sum += v;
    }
    for (int i = 0; i < n; i++) c[i] /= sum;
    return n;
}

/* Fills ax for one axis: in_len input positions, out_len outputs, scale, roi [rs, re]. */
static mixrt_status rs_axis_build(struct mixrt_kernel_ctx *k, const struct rs_params *p, struct rs_axis *ax,
                                  int64_t in_len, int64_t out_len, double scale, double rs, double re) {
    double c[RS_MAX_TAPS];
    int n = rs_coeffs(p, 0.5, scale, c);
    if (n < 0) return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "antialias scale %g needs too many taps", scale);
    size_t cnt = (size_t)(out_len ? out_len : 1);
    ax->n = n;
    ax->idx = mixrt_calloc(k->ctx, cnt * (size_t)n, sizeof(int64_t));
    ax->w = mixrt_calloc(k->ctx, cnt * (size_t)n, sizeof(double));
    ax->oob = mixrt_calloc(k->ctx, cnt, 1);
    ax->cnt = mixrt_calloc(k->ctx, cnt, 1);
    if (!ax->idx || !ax->w || !ax->oob || !ax->cnt) return MIXRT_STATUS_OUT_OF_MEMORY;
    double out_f = scale * (double)in_len; /* the reference's (possibly fractional) output length */
    for (int64_t x = 0; x < out_len; x++) {
        double xo, xd = (double)x;
        switch (p->coord) {
        case RC_HALF_PIXEL:
            xo = (xd + 0.5) / scale - 0.5;
            break;
        case RC_HALF_PIXEL_SYM: {
            double adj = (double)out_len / out_f, center = (double)in_len / 2;
            xo = center * (1 - adj) + (xd + 0.5) / scale - 0.5;
            break;
        }
        case RC_PYTORCH:
            xo = out_f == 1 ? -0.5 : (xd + 0.5) / scale - 0.5;
            break;
        case RC_ALIGN:
            xo = out_f == 1 ? 0 : xd * (double)(in_len - 1) / (out_f - 1);
            break;
        case RC_ASYM:
            xo = xd / scale;
            break;
        case RC_TF_NN:
            xo = (xd + 0.5) / scale;
            break;
        default:
            xo =
                out_f == 1 ? (re - rs) * (double)(in_len - 1) / 2 : xd * (re - rs) * (double)(in_len - 1) / (out_f - 1);
            xo += rs * (double)(in_len - 1);
            if (xo < 0 || xo > (double)(in_len - 1)) ax->oob[x] = 1;
            break;
        }
        if (!isfinite(xo)) xo = 0;
        if (xo > 4e18) xo = 4e18;
        if (xo < -4e18) xo = -4e18;
        double fl = floor(xo), ratio = xo == fl ? 1.0 : xo - fl;
        int64_t xi = (int64_t)fl;
        if (xo == fl) xi -= 1; /* ratio 1: the lower neighbour is x-1 */
        n = rs_coeffs(p, ratio, scale, c);
        int64_t pad = (n + 1) / 2, start = xi - n / 2 + 1;
        int64_t smin = -pad, smax = in_len - 1 + pad - (n - 1);
        if (start < smin) start = smin;
        if (start > smax) start = smax;
        double sum = 0;
        for (int t = 0; t < n; t++) {
            int64_t i = start + t;
            if (p->exclude_outside && (i < 0 || i >= in_len)) c[t] = 0;
            sum += c[t];
        }
        int m = 0; /* zero-weight taps are dropped: they cannot change the sum */
        for (int t = 0; t < n; t++) {
            int64_t i = start + t;
            double w = p->exclude_outside && sum != 0 ? c[t] / sum : c[t];
            if (w == 0) continue;
            ax->idx[x * n + m] = i < 0 ? 0 : i >= in_len ? in_len - 1 : i;
            ax->w[x * n + m] = w;
            m++;
        }
        ax->cnt[x] = (uint8_t)m;
    }
    return MIXRT_STATUS_OK;
}

/* Runs the interpolation of x into output 0 of dims od with per-axis scales and roi. */
static mixrt_status rs_run(struct mixrt_kernel_ctx *k, const struct rs_params *p, const struct mixrt_tensor *x,
                           const int64_t *od, const double *scales, const double *roi, double extrap) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct rs_axis ax[MIXRT_MAX_RANK];
    struct mixrt_tensor *o = NULL;
    double *xd = NULL;
    int r = x->rank;
    int64_t st[MIXRT_MAX_RANK], idx[MIXRT_MAX_RANK] = {0}, tap[MIXRT_MAX_RANK];
    memset(ax, 0, sizeof(ax));
    bool interp = p->mode != RM_NEAREST;
    if (interp && !is_numeric(x->dtype))
        MIXRT_TRY(bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, "linear and cubic modes need numeric data"));
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, r, od, &o));
    size_t n = mixrt_tensor_numel(o);
    if (n == 0) goto fail;
    if (mixrt_tensor_numel(x) == 0)
        MIXRT_TRY(bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "is empty but the output is not"));
    for (int d = 0; d < r; d++)
        MIXRT_TRY(rs_axis_build(k, p, &ax[d], x->dims[d], od[d], scales[d], roi ? roi[d] : 0, roi ? roi[r + d] : 1));
    if (interp) MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, x, &xd));
    row_strides(r, x->dims, st);
    for (size_t i = 0; i < n; i++) {
        bool oob = false;
        for (int d = 0; d < r; d++) oob |= ax[d].oob[idx[d]] != 0;
        if (oob) {
            mixrt_store_f64(o->data, o->dtype, i, extrap);
        } else if (!interp) {
            int64_t off = 0;
            for (int d = 0; d < r; d++) off += ax[d].idx[idx[d] * ax[d].n] * st[d]; /* the one tap */
            MIXRT_TRY(copy_elems(k, o, i, x, (size_t)off, 1));
        } else {
            double acc = 0;
            bool any = true;
            for (int d = 0; d < r; d++) {
                tap[d] = 0;
                any &= ax[d].cnt[idx[d]] > 0;
            }
            while (any) {
                double w = 1;
                int64_t off = 0;
                for (int d = 0; d < r; d++) {
                    size_t e = (size_t)(idx[d] * ax[d].n + tap[d]);
                    w *= ax[d].w[e];
                    off += ax[d].idx[e] * st[d];
                }
                acc += w * xd[off];
                int d = r - 1;
                for (; d >= 0; d--) {
                    if (++tap[d] < ax[d].cnt[idx[d]]) break;
                    tap[d] = 0;
                }
                if (d < 0) break;
            }
            mixrt_store_f64(o->data, o->dtype, i, acc);
        }
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < od[d]) break;
            idx[d] = 0;
        }
    }
    status = finish_strings(k, o); /* extrapolated STRING elements become "" */
fail:
    for (int d = 0; d < r; d++) {
        size_t cnt = (size_t)(od[d] ? od[d] : 1);
        if (ax[d].idx) mixrt_free(k->ctx, ax[d].idx, cnt * (size_t)ax[d].n * sizeof(int64_t));
        if (ax[d].w) mixrt_free(k->ctx, ax[d].w, cnt * (size_t)ax[d].n * sizeof(double));
        if (ax[d].oob) mixrt_free(k->ctx, ax[d].oob, cnt);
        if (ax[d].cnt) mixrt_free(k->ctx, ax[d].cnt, cnt);
    }
    if (xd) mixrt_free(k->ctx, xd, mixrt_tensor_numel(x) ? mixrt_tensor_numel(x) * sizeof(double) : sizeof(double));
    return status;
}

static mixrt_status rs_mode(struct mixrt_kernel_ctx *k, struct rs_params *p) {
    const char *m = mixrt_node_attr_string(k->node, "mode", "nearest");
    if (!strcmp(m, "nearest"))
        p->mode = RM_NEAREST;
    else if (!strcmp(m, "linear") || !strcmp(m, "bilinear"))
        p->mode = RM_LINEAR;
    else if (!strcmp(m, "cubic") && !strcmp(k->node->op_type, "Resize") && k->opset >= 11)
        p->mode = RM_CUBIC;
    else
        return bad_attr(k, "mode", "'%s' is not supported here", m);
    return MIXRT_STATUS_OK;
}

/* Floats of input i (any float dtype) into v (at most max). */
static mixrt_status read_floats(struct mixrt_kernel_ctx *k, int i, double *v, size_t max, size_t *n) {
    const struct mixrt_tensor *t = k->in[i];
    size_t cnt = mixrt_tensor_numel(t);
    if (!mixrt_dtype_is_float(t->dtype)) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, "expected a float tensor");
    if (cnt > max) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, "has more than %zu values", max);
    for (size_t j = 0; j < cnt; j++) v[j] = mixrt_load_f64(t->data, t->dtype, j);
    *n = cnt;
    return MIXRT_STATUS_OK;
}

static mixrt_status rs_dims_from_scales(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x, const double *sc,
                                        int64_t *od) {
    for (int d = 0; d < x->rank; d++) {
        double v = sc[d] * (double)x->dims[d];
        if (!(sc[d] > 0) || !(v < 9e15))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "scale %g for axis %d is invalid", sc[d], d);
        od[d] = (int64_t)floor(v);
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status run_upsample(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    const struct mixrt_tensor *sct = NULL;
    struct rs_params p = {RM_NEAREST, RC_ASYM, RN_FLOOR, -0.75, false, false};
    double sc[MIXRT_MAX_RANK];
    int64_t od[MIXRT_MAX_RANK];
    size_t n = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(rs_mode(k, &p));
    if (k->opset >= 9) {
        MIXRT_TRY(mixrt_kernel_input(k, 1, &sct));
        MIXRT_TRY(read_floats(k, 1, sc, MIXRT_MAX_RANK, &n));
    } else if (k->opset >= 7) {
        size_t cnt = 0;
        const float *f = mixrt_node_attr_floats(k->node, "scales", &cnt);
        if (cnt > MIXRT_MAX_RANK) return bad_attr(k, "scales", "has too many values");
        for (size_t i = 0; i < cnt; i++) sc[i] = f[i];
        n = cnt;
    } else {
        if (x->rank != 4) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, "expected rank 4");
        sc[0] = sc[1] = 1;
        sc[2] = mixrt_node_attr_float(k->node, "height_scale", 1);
        sc[3] = mixrt_node_attr_float(k->node, "width_scale", 1);
        n = 4;
    }
    if ((int)n != x->rank)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "scales has %zu values for input rank %d", n, x->rank);
    MIXRT_TRY(rs_dims_from_scales(k, x, sc, od));
    return rs_run(k, &p, x, od, sc, NULL, 0);
fail:
    return status;
}

/* Resize's geometry (opset >= 11): the parameters, output dims od, per-axis scales sc and, for
 * tf_crop_and_resize, the roi (*have_roi) with the extrapolation value. */
static mixrt_status rs_geometry(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x, struct rs_params *pp,
                                int64_t *od, double *sc, double *roi, bool *have_roi_out, double *extrap_out) {
    mixrt_status status;
    struct rs_params p = *pp;
    double vals[2 * MIXRT_MAX_RANK];
    int64_t axes[MIXRT_MAX_RANK], sizes[MIXRT_MAX_RANK];
    size_t n = 0, na = 0;
    bool have_roi = false;
    int r = x->rank;
    for (int d = 0; d < r; d++) sc[d] = 1, od[d] = x->dims[d];
    const char *ct = mixrt_node_attr_string(k->node, "coordinate_transformation_mode", "half_pixel");
    if (!strcmp(ct, "half_pixel"))
        p.coord = RC_HALF_PIXEL;
    else if (!strcmp(ct, "half_pixel_symmetric"))
        p.coord = RC_HALF_PIXEL_SYM;
    else if (!strcmp(ct, "pytorch_half_pixel"))
        p.coord = RC_PYTORCH;
    else if (!strcmp(ct, "align_corners"))
        p.coord = RC_ALIGN;
    else if (!strcmp(ct, "asymmetric"))
        p.coord = RC_ASYM;
    else if (!strcmp(ct, "tf_half_pixel_for_nn"))
        p.coord = RC_TF_NN;
    else if (!strcmp(ct, "tf_crop_and_resize"))
        p.coord = RC_TF_CROP;
    else
        return bad_attr(k, "coordinate_transformation_mode", "'%s' is not supported", ct);
    const char *nm = mixrt_node_attr_string(k->node, "nearest_mode", "round_prefer_floor");
    if (!strcmp(nm, "round_prefer_floor"))
        p.nearest = RN_PREFER_FLOOR;
    else if (!strcmp(nm, "round_prefer_ceil"))
        p.nearest = RN_PREFER_CEIL;
    else if (!strcmp(nm, "floor"))
        p.nearest = RN_FLOOR;
    else if (!strcmp(nm, "ceil"))
        p.nearest = RN_CEIL;
    else
        return bad_attr(k, "nearest_mode", "'%s' is not supported", nm);
    p.cubic_a = mixrt_node_attr_float(k->node, "cubic_coeff_a", -0.75f);
    p.exclude_outside = mixrt_node_attr_int(k->node, "exclude_outside", 0) != 0;
    p.antialias = k->opset >= 18 && mixrt_node_attr_int(k->node, "antialias", 0) != 0;
    double extrap = mixrt_node_attr_float(k->node, "extrapolation_value", 0.0f);
    bool have_axes = false;
    if (k->opset >= 18) MIXRT_TRY(attr_ints(k, "axes", axes, MIXRT_MAX_RANK, &na, &have_axes));
    if (have_axes) {
        MIXRT_TRY(norm_axes(k, "axes", axes, na, r));
    } else {
        na = (size_t)r;
        for (int d = 0; d < r; d++) axes[d] = d;
    }
    const struct mixrt_tensor *troi = mixrt_kernel_opt_input(k, 1), *tsc = mixrt_kernel_opt_input(k, 2),
                              *tsz = mixrt_kernel_opt_input(k, 3);
    if (tsc && mixrt_tensor_numel(tsc) == 0) tsc = NULL;
    if (tsz && mixrt_tensor_numel(tsz) == 0) tsz = NULL;
    if (!tsc == !tsz)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "exactly one of scales and sizes must be given");
    if (p.coord == RC_TF_CROP) {
        for (int d = 0; d < r; d++) roi[d] = 0, roi[r + d] = 1;
        if (troi && mixrt_tensor_numel(troi)) {
            MIXRT_TRY(read_floats(k, 1, vals, 2 * MIXRT_MAX_RANK, &n));
            if (n != 2 * na) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, "expected %zu values", 2 * na);
            for (size_t i = 0; i < na; i++) roi[axes[i]] = vals[i], roi[r + axes[i]] = vals[na + i];
        }
        have_roi = true;
    }
    if (tsc) {
        MIXRT_TRY(read_floats(k, 2, vals, MIXRT_MAX_RANK, &n));
        if (n != na) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, "expected %zu values", na);
        for (size_t i = 0; i < na; i++) sc[axes[i]] = vals[i];
        MIXRT_TRY(rs_dims_from_scales(k, x, sc, od));
    } else {
        MIXRT_TRY(read_ints(k, 3, sizes, MIXRT_MAX_RANK, &n));
        if (n != na) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 3, "expected %zu values", na);
        for (size_t i = 0; i < na; i++)
            if (sizes[i] < 0 || sizes[i] > ((int64_t)1 << 40))
                return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 3, "size %lld is invalid", (long long)sizes[i]);
        const char *pol =
            k->opset >= 18 ? mixrt_node_attr_string(k->node, "keep_aspect_ratio_policy", "stretch") : "stretch";
        if (!strcmp(pol, "stretch")) {
            for (size_t i = 0; i < na; i++) {
                int64_t d = axes[i];
                od[d] = sizes[i];
                sc[d] = x->dims[d] ? (double)sizes[i] / (double)x->dims[d] : 1;
            }
        } else {
            bool larger = !strcmp(pol, "not_smaller");
            if (!larger && strcmp(pol, "not_larger"))
                return bad_attr(k, "keep_aspect_ratio_policy", "'%s' is not supported", pol);
            double s = larger ? 0 : INFINITY;
            for (size_t i = 0; i < na; i++) {
                int64_t d = axes[i];
                double v = x->dims[d] ? (double)sizes[i] / (double)x->dims[d] : 1;
                s = larger ? (v > s ? v : s) : (v < s ? v : s);
            }
            if (!(s > 0) || !isfinite(s))
                return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 3, "sizes give no usable scale");
            for (size_t i = 0; i < na; i++) {
                int64_t d = axes[i];
                sc[d] = s;
                od[d] = (int64_t)(s * (double)x->dims[d] + 0.5);
            }
        }
    }
    *pp = p;
    *have_roi_out = have_roi;
    *extrap_out = extrap;
fail:
    return status;
}

static mixrt_status run_resize(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    const struct mixrt_tensor *sct = NULL;
    struct rs_params p = {RM_NEAREST, RC_HALF_PIXEL, RN_PREFER_FLOOR, -0.75, false, false};
    double sc[MIXRT_MAX_RANK], roi[2 * MIXRT_MAX_RANK], extrap = 0;
    int64_t od[MIXRT_MAX_RANK];
    size_t n = 0;
    bool have_roi = false;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_tensor_dtype(k, 0));
    MIXRT_TRY(rs_mode(k, &p));
    int r = x->rank;
    if (k->opset < 11) {
        for (int d = 0; d < r; d++) sc[d] = 1, od[d] = x->dims[d];
        p.coord = RC_ASYM;
        p.nearest = RN_SIMPLE;
        MIXRT_TRY(mixrt_kernel_input(k, 1, &sct));
        MIXRT_TRY(read_floats(k, 1, sc, MIXRT_MAX_RANK, &n));
        if ((int)n != r)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "scales has %zu values for input rank %d", n, r);
        MIXRT_TRY(rs_dims_from_scales(k, x, sc, od));
        return rs_run(k, &p, x, od, sc, NULL, 0);
    }
    MIXRT_TRY(rs_geometry(k, x, &p, od, sc, roi, &have_roi, &extrap));
    return rs_run(k, &p, x, od, sc, have_roi ? roi : NULL, extrap);
fail:
    return status;
}

void mixrt_resize_taps_free(mixrt_context_t ctx, struct mixrt_resize_taps *t) {
    for (int d = 0; d < t->rank; d++) {
        size_t cnt = (size_t)(t->od[d] ? t->od[d] : 1);
        if (t->idx[d]) mixrt_free(ctx, t->idx[d], cnt * (size_t)t->n[d] * sizeof(int64_t));
        if (t->w[d]) mixrt_free(ctx, t->w[d], cnt * (size_t)t->n[d] * sizeof(double));
        if (t->cnt[d]) mixrt_free(ctx, t->cnt[d], cnt);
        if (t->oob[d]) mixrt_free(ctx, t->oob[d], cnt);
    }
    memset(t, 0, sizeof(*t));
}

mixrt_status mixrt_resize_taps_make(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x,
                                    struct mixrt_resize_taps *t) {
    mixrt_status status;
    struct rs_params p = {RM_NEAREST, RC_HALF_PIXEL, RN_PREFER_FLOOR, -0.75, false, false};
    double sc[MIXRT_MAX_RANK], roi[2 * MIXRT_MAX_RANK], extrap = 0;
    bool have_roi = false;
    memset(t, 0, sizeof(*t));
    if (strcmp(k->node->op_type, "Resize") || k->opset < 11 || x->rank < 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "no taps for %s opset %lld of rank %d",
                                  k->node->op_type, (long long)k->opset, x->rank);
    MIXRT_TRY(rs_mode(k, &p));
    MIXRT_TRY(rs_geometry(k, x, &p, t->od, sc, roi, &have_roi, &extrap));
    t->interp = p.mode != RM_NEAREST;
    t->crop = have_roi;
    for (int d = 0; d < x->rank; d++) {
        struct rs_axis ax = {0};
        t->rank = d + 1;
        status = rs_axis_build(k, &p, &ax, x->dims[d], t->od[d], sc[d], have_roi ? roi[d] : 0,
                               have_roi ? roi[x->rank + d] : 1);
        t->n[d] = ax.n, t->idx[d] = ax.idx, t->w[d] = ax.w, t->cnt[d] = ax.cnt, t->oob[d] = ax.oob;
        if (status != MIXRT_STATUS_OK) goto fail;
    }
    return MIXRT_STATUS_OK;
fail:
    mixrt_resize_taps_free(k->ctx, t);
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_shape[] = {
    {"", "Reshape", 1, 23, run_reshape},
    {"", "Flatten", 1, 23, run_flatten},
    {"", "Squeeze", 1, 23, run_squeeze},
    {"", "Unsqueeze", 1, 23, run_unsqueeze},
    {"", "Identity", 1, 23, run_identity},
    {"", "Transpose", 1, 23, run_transpose},
    {"", "DepthToSpace", 1, 23, run_depthtospace},
    {"", "SpaceToDepth", 1, 23, run_spacetodepth},
    {"", "Expand", 8, 23, run_expand},
    {"", "Tile", 1, 23, run_tile},
    {"", "Concat", 1, 23, run_concat},
    {"", "Split", 1, 23, run_split},
    {"", "Slice", 1, 23, run_slice},
    {"", "Gather", 1, 23, run_gather},
    {"", "GatherElements", 11, 23, run_gather_elements},
    {"", "GatherND", 11, 23, run_gather_nd},
    {"", "ScatterElements", 11, 23, run_scatter_elements},
    {"", "Scatter", 9, 23, run_scatter_elements},
    {"", "ScatterND", 11, 23, run_scatter_nd},
    {"", "Pad", 1, 23, run_pad},
    {"", "Shape", 1, 23, run_shape},
    {"", "Size", 1, 23, run_size},
    {"", "ConstantOfShape", 9, 23, run_constant_of_shape},
    {"", "Range", 11, 23, run_range},
    {"", "EyeLike", 9, 23, run_eyelike},
    {"", "OneHot", 9, 23, run_onehot},
    {"", "NonZero", 9, 23, run_nonzero},
    {"", "Trilu", 14, 23, run_trilu},
    {"", "Compress", 9, 23, run_compress},
    {"", "ReverseSequence", 10, 23, run_reverse_sequence},
    {"", "Upsample", 1, 23, run_upsample},
    {"", "Resize", 10, 23, run_resize},
    {NULL, NULL, 0, 0, NULL},
};
