/* ref_nn_pool.c - reference pooling: MaxPool (with Indices), AveragePool, LpPool, their Global
 * forms, MaxUnpool and MaxRoiPool. Invariant: a window only reads input positions inside the
 * tensor; padding is never materialized (it counts only for AveragePool's count_include_pad). */
#include <math.h>
#include <string.h>

#include "backend/cpu/ref_nn_impl.h"

enum pool_kind { POOL_MAX, POOL_AVG, POOL_LP };

static const mixrt_dtype maxpool_types[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F64, MIXRT_DTYPE_F16,      MIXRT_DTYPE_BF16,
                                            MIXRT_DTYPE_I8,  MIXRT_DTYPE_U8,  MIXRT_DTYPE_UNDEFINED};

/* The smallest value of an integer dtype MaxPool accepts (a window that sees no element). */
static int64_t int_lowest(mixrt_dtype dt) { return dt == MIXRT_DTYPE_I8 ? INT8_MIN : 0; }

/* The 'p' attribute: a float before LpPool-2 / GlobalLpPool-2, an int after. */
static mixrt_status read_p(struct mixrt_kernel_ctx *k, double *p) {
    const struct mixrt_attr *a = mixrt_node_attr(k->node, "p");
    *p = 2.0;
    if (a && a->type == MIXRT_ATTR_FLOAT)
        *p = a->f;
    else if (a && a->type == MIXRT_ATTR_INT)
        *p = (double)a->i;
    if (!(*p > 0.0) || isinf(*p))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'p' is %g, expected a positive number", *p);
    return MIXRT_STATUS_OK;
}

/* Shared by MaxPool, AveragePool and LpPool: validation, output shape, then every window. */
static mixrt_status run_pool(struct mixrt_kernel_ctx *k, enum pool_kind kind) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    double *dx = NULL, *dy = NULL;
    size_t nx = 0, ny = 0;
    if (kind == POOL_MAX && k->opset >= 12)
        MIXRT_TRY(mixrt_kernel_check_dtype(k, 0, maxpool_types));
    else
        MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    x = k->in[0];
    bool is_int = !mixrt_dtype_is_float(x->dtype);
    if (x->rank < 3)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x,
                                  "expected [N, C, D1, ...] with at least one spatial dim");
    struct mixrt_nn_window win = {.nd = x->rank - 2};
    int nd = win.nd;
    bool present;
    MIXRT_TRY(mixrt_nn_ints_attr(k, "kernel_shape", nd, 0, 1, win.k, &present));
    if (!present) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'kernel_shape' is required");
    for (int i = 0; i < nd; i++) win.in[i] = x->dims[2 + i];
    MIXRT_TRY(mixrt_nn_window_attrs(k, &win, true));
    bool ceil_mode = mixrt_node_attr_int(k->node, "ceil_mode", 0) != 0;
    bool include_pad = kind == POOL_AVG && mixrt_node_attr_int(k->node, "count_include_pad", 0) != 0;
    int64_t storage_order = mixrt_node_attr_int(k->node, "storage_order", 0);
    if (storage_order != 0 && storage_order != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'storage_order' is %lld, expected 0 or 1",
                                  (long long)storage_order);
    double p = 2.0;
    if (kind == POOL_LP) MIXRT_TRY(read_p(k, &p));
    MIXRT_TRY(mixrt_nn_window_forward(k, &win, ceil_mode));
    int64_t ydims[MIXRT_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < nd; i++) ydims[2 + i] = win.out[i];
    struct mixrt_tensor *y = NULL, *yi = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, ydims, &y));
    if (kind == POOL_MAX && mixrt_nn_wanted(k, 1))
        MIXRT_TRY(mixrt_kernel_output(k, 1, MIXRT_DTYPE_I64, x->rank, ydims, &yi));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    nx = mixrt_tensor_numel(x);
    if (!is_int) {
        MIXRT_TRY(mixrt_nn_load(k, x, &dx));
        dy = mixrt_nn_alloc(k, ny);
        if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    }
    int64_t in_sp = 1, out_sp = 1, istr[MIXRT_MAX_RANK], cstr[MIXRT_MAX_RANK];
    for (int i = nd - 1; i >= 0; i--) istr[i] = in_sp, in_sp *= win.in[i];
    for (int i = 0; i < nd; i++) cstr[i] = i ? cstr[i - 1] * win.in[i - 1] : 1; /* storage_order 1 */
    for (int i = 0; i < nd; i++) out_sp *= win.out[i];
    int64_t planes = x->dims[0] * x->dims[1];
    int64_t o[MIXRT_MAX_RANK], t[MIXRT_MAX_RANK], pos[MIXRT_MAX_RANK];
    for (int64_t pl = 0; pl < planes; pl++) {
        memset(o, 0, sizeof(o));
        for (int64_t oi = 0; oi < out_sp; oi++) {
            double acc = kind == POOL_MAX ? -INFINITY : 0.0;
            int64_t iacc = 0, best = -1, cnt = 0, kh[MIXRT_MAX_RANK], taps = 1;
            /* Taps past the end padding count for nothing: a ceil_mode window may run far past
             * it (HF EfficientNet: kernel 2560 on a 7x7 map). Windows start at or after -pb. */
            for (int i = 0; i < nd; i++) {
                int64_t room = win.in[i] + win.pe[i] - (o[i] * win.s[i] - win.pb[i]);
                kh[i] = room <= 0 ? 0 : (room + win.d[i] - 1) / win.d[i];
                if (kh[i] > win.k[i]) kh[i] = win.k[i];
                taps *= kh[i];
            }
            memset(t, 0, sizeof(t));
            for (int64_t ti = 0; ti < taps; ti++) {
                bool inside = true, inpad = true;
                int64_t flat = 0;
                for (int i = 0; i < nd; i++) {
                    pos[i] = o[i] * win.s[i] - win.pb[i] + t[i] * win.d[i];
                    if (pos[i] < 0 || pos[i] >= win.in[i]) inside = false;
                    if (pos[i] < -win.pb[i] || pos[i] >= win.in[i] + win.pe[i]) inpad = false;
                    flat += pos[i] * istr[i];
                }
                if (inside) {
                    int64_t src = pl * in_sp + flat;
                    if (kind == POOL_MAX) {
                        if (is_int) {
                            int64_t v = mixrt_load_i64(x->data, x->dtype, (size_t)src);
                            if (best < 0 || v > iacc) iacc = v, best = flat;
                        } else {
                            double v = dx[src];
                            if (best < 0 || v > acc || (isnan(v) && !isnan(acc))) acc = v, best = flat;
                        }
                    } else if (kind == POOL_AVG) {
                        acc += dx[src];
                        cnt++;
                    } else {
                        acc += pow(fabs(dx[src]), p);
                    }
                } else if (inpad && include_pad) {
                    cnt++;
                }
                for (int i = nd - 1; i >= 0; i--) {
                    if (++t[i] < kh[i]) break;
                    t[i] = 0;
                }
            }
            int64_t dst = pl * out_sp + oi;
            if (kind == POOL_AVG)
                acc = cnt ? acc / (double)cnt : NAN;
            else if (kind == POOL_LP)
                acc = pow(acc, 1.0 / p);
            if (is_int)
                mixrt_store_i64(y->data, y->dtype, (size_t)dst, best < 0 ? int_lowest(x->dtype) : iacc);
            else
                dy[dst] = acc;
            if (yi) {
                int64_t idx = best;
                if (best >= 0 && storage_order == 1) {
                    idx = 0;
                    for (int i = 0; i < nd; i++) idx += (best / istr[i] % win.in[i]) * cstr[i];
                }
                ((int64_t *)yi->data)[dst] = best < 0 ? -1 : pl * in_sp + idx;
            }
            for (int i = nd - 1; i >= 0; i--) {
                if (++o[i] < win.out[i]) break;
                o[i] = 0;
            }
        }
    }
    if (!is_int) status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dy, ny);
    return status;
}

mixrt_status mixrt_nn_run_max_pool(struct mixrt_kernel_ctx *k) { return run_pool(k, POOL_MAX); }
mixrt_status mixrt_nn_run_average_pool(struct mixrt_kernel_ctx *k) { return run_pool(k, POOL_AVG); }
mixrt_status mixrt_nn_run_lp_pool(struct mixrt_kernel_ctx *k) { return run_pool(k, POOL_LP); }

/* Global pools reduce every spatial dim to 1. */
static mixrt_status run_global_pool(struct mixrt_kernel_ctx *k, enum pool_kind kind) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    double *dx = NULL, *dy = NULL;
    size_t nx = 0, ny = 0;
    MIXRT_TRY(mixrt_nn_float_input(k, 0, -1, &x));
    if (x->rank < 2) return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "expected [N, C, D1, ...]");
    double p = 2.0;
    if (kind == POOL_LP) MIXRT_TRY(read_p(k, &p));
    int64_t ydims[MIXRT_MAX_RANK];
    for (int i = 0; i < x->rank; i++) ydims[i] = i < 2 ? x->dims[i] : 1;
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, ydims, &y));
    ny = mixrt_tensor_numel(y);
    nx = mixrt_tensor_numel(x);
    if (ny == 0) goto fail;
    size_t sp = nx / ny;
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    dy = mixrt_nn_alloc(k, ny);
    if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (size_t pl = 0; pl < ny; pl++) {
        const double *xp = dx + pl * sp;
        double acc = kind == POOL_MAX ? -INFINITY : 0.0;
        for (size_t i = 0; i < sp; i++) {
            if (kind == POOL_MAX) {
                if (xp[i] > acc || (isnan(xp[i]) && !isnan(acc))) acc = xp[i];
            } else if (kind == POOL_AVG) {
                acc += xp[i];
            } else {
                acc += pow(fabs(xp[i]), p);
            }
        }
        if (kind == POOL_AVG)
            acc /= (double)sp;
        else if (kind == POOL_LP)
            acc = pow(acc, 1.0 / p);
        dy[pl] = acc;
    }
    status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dy, ny);
    return status;
}

mixrt_status mixrt_nn_run_global_average_pool(struct mixrt_kernel_ctx *k) { return run_global_pool(k, POOL_AVG); }
mixrt_status mixrt_nn_run_global_max_pool(struct mixrt_kernel_ctx *k) { return run_global_pool(k, POOL_MAX); }
mixrt_status mixrt_nn_run_global_lp_pool(struct mixrt_kernel_ctx *k) { return run_global_pool(k, POOL_LP); }

/* MaxUnpool: Y is zero except Y.flat[I[j]] = X[j]; I holds flat indices into the whole Y, as
 * MaxPool's Indices output does. Elements are copied bytewise, so any dtype works exactly. */
mixrt_status mixrt_nn_run_max_unpool(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *ind = NULL, *osh = mixrt_kernel_opt_input(k, 2);
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &ind));
    size_t es = mixrt_dtype_size(x->dtype);
    if (es == 0 || x->dtype == MIXRT_DTYPE_STRING)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, x, "expected a numeric tensor");
    if (ind->dtype != MIXRT_DTYPE_I64)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, ind, "expected i64 indices");
    if (x->rank < 3)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x,
                                  "expected [N, C, D1, ...] with at least one spatial dim");
    bool same = ind->rank == x->rank;
    for (int i = 0; same && i < x->rank; i++) same = ind->dims[i] == x->dims[i];
    if (!same) {
        char d[256];
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, ind, "expected the shape of input #0 (%s)",
                                  mixrt_tensor_desc(d, sizeof(d), x));
    }
    struct mixrt_nn_window win = {.nd = x->rank - 2};
    int nd = win.nd;
    bool present;
    MIXRT_TRY(mixrt_nn_ints_attr(k, "kernel_shape", nd, 0, 1, win.k, &present));
    if (!present) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'kernel_shape' is required");
    for (int i = 0; i < nd; i++) win.in[i] = x->dims[2 + i];
    MIXRT_TRY(mixrt_nn_window_attrs(k, &win, false));
    /* Indices count in the default output shape; an explicit output_shape only re-places
     * each element at the same coordinates of a (possibly larger) tensor. */
    int64_t ddims[MIXRT_MAX_RANK] = {x->dims[0], x->dims[1]}, ydims[MIXRT_MAX_RANK];
    for (int i = 0; i < nd; i++) {
        ddims[2 + i] = (x->dims[2 + i] - 1) * win.s[i] + win.k[i] - win.pb[i] - win.pe[i];
        if (ddims[2 + i] < 0)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "spatial axis %d: output dim %lld < 0", i,
                                      (long long)ddims[2 + i]);
    }
    memcpy(ydims, ddims, sizeof(ydims));
    if (osh) {
        size_t n = 0;
        MIXRT_TRY(mixrt_kernel_read_ints(k, 2, ydims, MIXRT_MAX_RANK, &n));
        if (n != (size_t)x->rank)
            return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, osh, "expected %d entries (the rank of X)",
                                      x->rank);
    }
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, ydims, &y));
    size_t nd_all = 1, nx = mixrt_tensor_numel(x);
    if (!mixrt_dims_numel(x->rank, ddims, &nd_all))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "the default output shape overflows");
    for (size_t j = 0; j < nx; j++) {
        int64_t idx = ((const int64_t *)ind->data)[j];
        if (idx < 0 || (uint64_t)idx >= nd_all)
            return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, ind,
                                      "holds index %lld at element %zu, outside the %zu elements of the default "
                                      "output shape",
                                      (long long)idx, j, nd_all);
        int64_t rem = idx, dst = 0, mul = 1;
        for (int d = x->rank - 1; d >= 0; d--) {
            int64_t c = rem % ddims[d];
            rem /= ddims[d];
            if (c >= ydims[d])
                return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, ind,
                                          "holds index %lld at element %zu, outside output_shape on axis %d",
                                          (long long)idx, j, d);
            dst += c * mul;
            mul *= ydims[d];
        }
        memcpy((char *)y->data + (size_t)dst * es, (const char *)x->data + j * es, es);
    }
fail:
    return status;
}

/* MaxRoiPool (Caffe ROI pooling): each roi [batch, x1, y1, x2, y2] is scaled and rounded to
 * input cells, split into pooled_shape bins (floor/ceil edges), and each bin takes its max;
 * an empty bin gives 0. */
mixrt_status mixrt_nn_run_max_roi_pool(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *rois = NULL;
    double *dx = NULL, *dr = NULL, *dy = NULL;
    size_t nx = 0, nr = 0, ny = 0;
    MIXRT_TRY(mixrt_nn_float_input(k, 0, -1, &x));
    MIXRT_TRY(mixrt_nn_float_input(k, 1, 0, &rois));
    if (x->rank != 4) return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "expected [N, C, H, W]");
    if (rois->rank != 2 || rois->dims[1] != 5)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, rois, "expected [num_rois, 5]");
    int64_t ps[2];
    bool present;
    MIXRT_TRY(mixrt_nn_ints_attr(k, "pooled_shape", 2, 0, 1, ps, &present));
    if (!present) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'pooled_shape' is required");
    double scale = mixrt_node_attr_float(k->node, "spatial_scale", 1.0f);
    int64_t R = rois->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t ydims[4] = {R, C, ps[0], ps[1]};
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, 4, ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    nx = mixrt_tensor_numel(x), nr = mixrt_tensor_numel(rois);
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    MIXRT_TRY(mixrt_nn_load(k, rois, &dr));
    dy = mixrt_nn_alloc(k, ny);
    if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (int64_t r = 0; r < R; r++) {
        const double *roi = dr + r * 5;
        double bf = roi[0];
        if (!(bf >= 0 && bf < (double)x->dims[0]))
            MIXRT_CHECK(k->ctx, false, MIXRT_STATUS_INVALID_MODEL,
                        "cannot run %s node '%s': roi %lld has batch index %g, expected 0..%lld", k->node->op_type,
                        k->node->name, (long long)r, bf, (long long)x->dims[0] - 1);
        int64_t bi = (int64_t)bf;
        double c4[4];
        for (int i = 0; i < 4; i++) {
            c4[i] = round(roi[1 + i] * scale);
            if (!(fabs(c4[i]) < 1e15)) c4[i] = c4[i] > 0 ? 1e15 : -1e15; /* keep the int64 casts defined */
        }
        int64_t x1 = (int64_t)c4[0], y1 = (int64_t)c4[1], x2 = (int64_t)c4[2], y2 = (int64_t)c4[3];
        int64_t rh = y2 - y1 + 1 > 1 ? y2 - y1 + 1 : 1, rw = x2 - x1 + 1 > 1 ? x2 - x1 + 1 : 1;
        double bh = (double)rh / (double)ps[0], bw = (double)rw / (double)ps[1];
        for (int64_t c = 0; c < C; c++) {
            const double *xp = dx + (bi * C + c) * H * W;
            for (int64_t ph = 0; ph < ps[0]; ph++)
                for (int64_t pw = 0; pw < ps[1]; pw++) {
                    int64_t hs = (int64_t)floor((double)ph * bh) + y1, he = (int64_t)ceil((double)(ph + 1) * bh) + y1;
                    int64_t ws = (int64_t)floor((double)pw * bw) + x1, we = (int64_t)ceil((double)(pw + 1) * bw) + x1;
                    hs = hs < 0 ? 0 : hs > H ? H : hs, he = he < 0 ? 0 : he > H ? H : he;
                    ws = ws < 0 ? 0 : ws > W ? W : ws, we = we < 0 ? 0 : we > W ? W : we;
                    double m = -INFINITY;
                    bool any = false;
                    for (int64_t h = hs; h < he; h++)
                        for (int64_t w = ws; w < we; w++) {
                            double v = xp[h * W + w];
                            if (!any || v > m) m = v;
                            any = true;
                        }
                    dy[((r * C + c) * ps[0] + ph) * ps[1] + pw] = any ? m : 0.0;
                }
        }
    }
    status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dr, nr);
    mixrt_nn_free(k, dy, ny);
    return status;
}
