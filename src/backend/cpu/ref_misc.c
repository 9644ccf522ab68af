/* ref_misc.c - reference kernels that fit no other family: Constant, the random
 * generators (RandomNormal/Uniform[Like], Multinomial, Bernoulli), NonMaxSuppression,
 * RoiAlign and Einsum. Invariant: every kernel is deterministic given its inputs and
 * node, the random ones included (see the seed rule below).
 *
 * Seed rule for the random operators (mixrt_rng_seed_node in ref_util.c, shared with
 * Dropout): each node draws from its own xoshiro256** stream,
 * freshly seeded at every run by splitmix64 of a 64-bit key. With a 'seed' attribute
 * the key is the seed's float value bits (equal seeds give equal streams, on any node);
 * without one it is the FNV-1a hash of the node's name and first output's name: a fixed
 * per-node value, so running the same model twice gives the same numbers. Values can
 * differ from other runtimes (ONNX leaves the generator unspecified). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/ref.h"

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

/* ---- Constant ---------------------------------------------------------------------- */

static mixrt_status copy_string(mixrt_context_t ctx, struct mixrt_string *dst, const char *s, size_t len) {
    dst->ptr = mixrt_alloc(ctx, len + 1);
    if (!dst->ptr) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (len) memcpy(dst->ptr, s, len);
    dst->ptr[len] = 0;
    dst->len = len;
    return MIXRT_STATUS_OK;
}

static mixrt_status run_constant(struct mixrt_kernel_ctx *k) {
    static const char *const forms[] = {"value",       "value_float",  "value_floats",  "value_int",
                                        "value_ints",  "value_string", "value_strings", "sparse_value"};
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_attr *a = NULL;
    int found = 0, form = -1;
    for (int i = 0; i < (int)(sizeof(forms) / sizeof(forms[0])); i++) {
        const struct mixrt_attr *x = mixrt_node_attr(k->node, forms[i]);
        if (!x) continue;
        found++;
        a = x;
        form = i;
    }
    if (found != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "exactly one of 'value', 'value_*' or 'sparse_value' must be set, found %d", found);
    struct mixrt_tensor *out = NULL;
    int64_t n = (int64_t)a->n;
    switch (form) {
    case 0: {
        const struct mixrt_tensor *t = a->t;
        if (a->type != MIXRT_ATTR_TENSOR || !t)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'value' is not a tensor");
        MIXRT_TRY(mixrt_kernel_output(k, 0, t->dtype, t->rank, t->dims, &out));
        size_t cnt = mixrt_tensor_numel(t);
        if (t->dtype == MIXRT_DTYPE_STRING) {
            const struct mixrt_string *s = t->data;
            for (size_t i = 0; i < cnt; i++)
                MIXRT_TRY(copy_string(k->ctx, (struct mixrt_string *)out->data + i, s[i].ptr, s[i].len));
        } else if (out->nbytes) {
            MIXRT_CHECK(k->ctx, t->data && t->nbytes >= out->nbytes, MIXRT_STATUS_INVALID_MODEL,
                        "cannot run Constant node '%s': attribute 'value' holds %zu bytes, expected %zu",
                        k->node->name, t->nbytes, out->nbytes);
            memcpy(out->data, t->data, out->nbytes);
        }
        break;
    }
    case 1:
        MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_F32, 0, NULL, &out));
        ((float *)out->data)[0] = a->f;
        break;
    case 2:
        MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_F32, 1, &n, &out));
        if (n) memcpy(out->data, a->floats, (size_t)n * sizeof(float));
        break;
    case 3:
        MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I64, 0, NULL, &out));
        ((int64_t *)out->data)[0] = a->i;
        break;
    case 4:
        MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I64, 1, &n, &out));
        if (n) memcpy(out->data, a->ints, (size_t)n * sizeof(int64_t));
        break;
    case 5:
        MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_STRING, 0, NULL, &out));
        MIXRT_TRY(copy_string(k->ctx, out->data, a->s ? a->s : "", a->s ? a->s_len : 0));
        break;
    case 6:
        MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_STRING, 1, &n, &out));
        for (size_t i = 0; i < a->n; i++) {
            size_t len = a->string_lens ? a->string_lens[i] : strlen(a->strings[i]);
            MIXRT_TRY(copy_string(k->ctx, (struct mixrt_string *)out->data + i, a->strings[i], len));
        }
        break;
    default:
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "attribute 'sparse_value' is not supported");
    }
fail:
    return status;
}

/* ---- random generators ------------------------------------------------------------- */

static double rng_normal(struct mixrt_rng *g) {
    double u1 = 1.0 - mixrt_rng_uniform(g), u2 = mixrt_rng_uniform(g); /* u1 in (0, 1]: log is finite */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

/* The 'dtype' attribute (default dflt) as a float output type. */
static mixrt_status float_dtype_attr(struct mixrt_kernel_ctx *k, mixrt_dtype dflt, mixrt_dtype *out) {
    int64_t dt = mixrt_node_attr_int(k->node, "dtype", (int64_t)dflt);
    if (dt <= 0 || dt >= MIXRT_DTYPE_COUNT || !mixrt_dtype_is_float((mixrt_dtype)dt))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                                  "attribute 'dtype' is %lld (%s), expected f32, f64, f16 or bf16", (long long)dt,
                                  mixrt_dtype_name((mixrt_dtype)dt));
    *out = (mixrt_dtype)dt;
    return MIXRT_STATUS_OK;
}

/* Shared by RandomNormal[Like] and RandomUniform[Like]: shape from the 'shape' attribute
 * or from input 0 ("Like"). */
static mixrt_status run_random(struct mixrt_kernel_ctx *k, bool like, bool normal) {
    mixrt_status status = MIXRT_STATUS_OK;
    int rank = 0;
    int64_t dims[MIXRT_MAX_RANK];
    mixrt_dtype dtype = MIXRT_DTYPE_F32;
    if (like) {
        const struct mixrt_tensor *x = NULL;
        MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
        rank = x->rank;
        memcpy(dims, x->dims, sizeof(dims));
        if (!mixrt_node_attr(k->node, "dtype") && !mixrt_dtype_is_float(x->dtype))
            return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                                      "input #0 '%s' is %s and no 'dtype' attribute gives a float output type",
                                      in_name(k, 0), mixrt_dtype_name(x->dtype));
        MIXRT_TRY(float_dtype_attr(k, x->dtype, &dtype));
    } else {
        size_t r = 0;
        const int64_t *shape = mixrt_node_attr_ints(k->node, "shape", &r);
        if (!mixrt_node_attr(k->node, "shape"))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required attribute 'shape' is missing");
        if (r > MIXRT_MAX_RANK)
            return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "attribute 'shape' has rank %zu, at most %d", r,
                                      MIXRT_MAX_RANK);
        rank = (int)r;
        for (size_t i = 0; i < r; i++) dims[i] = shape[i];
        MIXRT_TRY(float_dtype_attr(k, MIXRT_DTYPE_F32, &dtype));
    }
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, dtype, rank, dims, &out));
    struct mixrt_rng g;
    mixrt_rng_seed_node(&g, k);
    size_t n = mixrt_tensor_numel(out);
    if (normal) {
        double mean = mixrt_node_attr_float(k->node, "mean", 0.0f), scale = mixrt_node_attr_float(k->node, "scale", 1.0f);
        for (size_t i = 0; i < n; i++) mixrt_store_f64(out->data, dtype, i, mean + scale * rng_normal(&g));
    } else {
        double lo = mixrt_node_attr_float(k->node, "low", 0.0f), hi = mixrt_node_attr_float(k->node, "high", 1.0f);
        for (size_t i = 0; i < n; i++) mixrt_store_f64(out->data, dtype, i, lo + (hi - lo) * mixrt_rng_uniform(&g));
    }
fail:
    return status;
}

static mixrt_status run_random_normal(struct mixrt_kernel_ctx *k) { return run_random(k, false, true); }
static mixrt_status run_random_uniform(struct mixrt_kernel_ctx *k) { return run_random(k, false, false); }
static mixrt_status run_random_normal_like(struct mixrt_kernel_ctx *k) { return run_random(k, true, true); }
static mixrt_status run_random_uniform_like(struct mixrt_kernel_ctx *k) { return run_random(k, true, false); }

/* Input [batch, classes] of unnormalized log-probabilities; output [batch, sample_size]
 * of class indices. */
static mixrt_status run_multinomial(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    double *v = NULL, *cum = NULL;
    size_t n = 0, classes = 0;
    char d[256];
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    x = k->in[0];
    if (x->rank != 2)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 '%s' is %s, expected [batch, classes]",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), x));
    int64_t dt = mixrt_node_attr_int(k->node, "dtype", MIXRT_DTYPE_I32);
    int64_t samples = mixrt_node_attr_int(k->node, "sample_size", 1);
    if (dt != MIXRT_DTYPE_I32 && dt != MIXRT_DTYPE_I64)
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "attribute 'dtype' is %lld, expected i32 or i64",
                                  (long long)dt);
    if (samples < 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'sample_size' is %lld, expected >= 1",
                                  (long long)samples);
    classes = (size_t)x->dims[1];
    int64_t dims[2] = {x->dims[0], samples};
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, (mixrt_dtype)dt, 2, dims, &out));
    if (mixrt_tensor_numel(out) == 0) goto fail;
    if (classes == 0)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT, "input #0 '%s' is %s: no classes to draw from",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), x));
    n = mixrt_tensor_numel(x);
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, x, &v));
    cum = mixrt_calloc(k->ctx, classes, sizeof(*cum));
    if (!cum) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    struct mixrt_rng g;
    mixrt_rng_seed_node(&g, k);
    for (int64_t b = 0; b < dims[0]; b++) {
        const double *row = v + (size_t)b * classes;
        double mx = -INFINITY, total = 0;
        for (size_t c = 0; c < classes; c++)
            if (row[c] > mx) mx = row[c];
        for (size_t c = 0; c < classes; c++) {
            total += isnan(row[c]) ? NAN : exp(row[c] - mx);
            cum[c] = total;
        }
        MIXRT_CHECK(k->ctx, isfinite(total) && total > 0, MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot run Multinomial node '%s': input #0 '%s' row %lld has no finite log-probabilities "
                    "(NaN, or all -inf)",
                    k->node->name, in_name(k, 0), (long long)b);
        for (int64_t s = 0; s < samples; s++) {
            double u = mixrt_rng_uniform(&g) * total;
            size_t c = 0;
            while (c + 1 < classes && cum[c] <= u) c++;
            mixrt_store_i64(out->data, out->dtype, (size_t)b * (size_t)samples + (size_t)s, (int64_t)c);
        }
    }
fail:
    if (v) mixrt_free(k->ctx, v, (n ? n : 1) * sizeof(double));
    if (cum) mixrt_free(k->ctx, cum, classes * sizeof(*cum));
    return status;
}

/* Output 1 with probability p (the input element), else 0. */
static mixrt_status run_bernoulli(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    x = k->in[0];
    int64_t dt = mixrt_node_attr_int(k->node, "dtype", (int64_t)x->dtype);
    if (dt <= 0 || dt >= MIXRT_DTYPE_COUNT ||
        !(mixrt_dtype_is_float((mixrt_dtype)dt) || mixrt_dtype_is_int((mixrt_dtype)dt) || dt == MIXRT_DTYPE_BOOL))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                                  "attribute 'dtype' is %lld (%s), expected a float, integer or bool type",
                                  (long long)dt, mixrt_dtype_name((mixrt_dtype)dt));
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, (mixrt_dtype)dt, x->rank, x->dims, &out));
    struct mixrt_rng g;
    mixrt_rng_seed_node(&g, k);
    size_t n = mixrt_tensor_numel(x);
    for (size_t i = 0; i < n; i++) {
        double p = mixrt_load_f64(x->data, x->dtype, i);
        mixrt_store_i64(out->data, out->dtype, i, mixrt_rng_uniform(&g) < p ? 1 : 0);
    }
fail:
    return status;
}

/* ---- NonMaxSuppression ------------------------------------------------------------- */

struct nms_cand {
    double score;
    int64_t index;
};

/* Highest score first; equal scores keep the lower box index first. */
static int nms_cand_cmp(const void *pa, const void *pb) {
    const struct nms_cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* A box as its corners and area, made once per box (the pairwise test below runs up to
 * boxes x kept times: SSDlite's 27000 candidates keep 5760). Corner boxes may come in either
 * corner order (the widely deployed ONNX Runtime formulation). */
struct nms_box {
    double x0, x1, y0, y1, area;
};

/* fmax / fmin (a NaN operand gives the other) without the libm calls, which were 56 % of
 * the pairwise test. */
static inline double nms_max(double a, double b) { return a >= b || b != b ? a : b; }
static inline double nms_min(double a, double b) { return a <= b || b != b ? a : b; }

static struct nms_box nms_box_of(const double *r, bool center) {
    struct nms_box o;
    if (!center) {
        o.y0 = nms_min(r[0], r[2]), o.y1 = nms_max(r[0], r[2]), o.x0 = nms_min(r[1], r[3]), o.x1 = nms_max(r[1], r[3]);
    } else {
        o.x0 = r[0] - r[2] / 2, o.x1 = r[0] + r[2] / 2, o.y0 = r[1] - r[3] / 2, o.y1 = r[1] + r[3] / 2;
    }
    o.area = (o.x1 - o.x0) * (o.y1 - o.y0);
    return o;
}

/* True when boxes a and b overlap by more than thr (intersection over union); degenerate
 * boxes (zero area) never suppress. */
static bool nms_suppress(const struct nms_box *a, const struct nms_box *b, double thr) {
    double ix0 = nms_max(a->x0, b->x0), ix1 = nms_min(a->x1, b->x1);
    double iy0 = nms_max(a->y0, b->y0), iy1 = nms_min(a->y1, b->y1);
    if (ix1 <= ix0 || iy1 <= iy0) return false;
    double inter = (ix1 - ix0) * (iy1 - iy0);
    double uni = a->area + b->area - inter;
    if (inter <= 0 || a->area <= 0 || b->area <= 0 || uni <= 0) return false;
    return inter / uni > thr;
}

/* Picked boxes indexed by x, for classes of NMS_GRID_MIN candidates or more: levels of cells
 * over the candidates' x range, each level's cells 4x the width of the one below, a picked box
 * listed in every cell its [x0, x1] covers on the finest level where that is at most NMS_SPAN
 * cells (a non-finite x: in the list checked for every candidate). A box suppresses only one
 * whose x range overlaps its own (the intersection must be positive), so a candidate checked
 * against the boxes in the cells of its own range on every level meets every picked box that
 * can suppress it: the same greedy selection as checking all. One level with a list for the
 * wide boxes was not enough: SSD300's class-offset boxes (36000 candidates, 24000 kept) put
 * 2200 wide boxes in that list, 8e7 pair tests, 400 ms. */
#define NMS_GRID_MIN 64
#define NMS_SPAN 16
#define NMS_LEVELS 8

struct nms_grid {
    double x0, inv_w[NMS_LEVELS];
    int levels, cells[NMS_LEVELS], total; /* cells per level; total over the levels */
    int32_t *head[NMS_LEVELS];           /* per level, per cell its first entry (-1: none) */
    int32_t *heads, *next, *who;         /* all levels' heads; per entry the next, the picked box */
    size_t used[NMS_LEVELS];             /* entries per level (a level with none is skipped) */
    int32_t always;                      /* the first entry of the list every candidate checks */
    size_t n;
};

/* Level 0 has c0 cells, each level above a quarter of the one below (at least one), up to the
 * first of NMS_SPAN cells or fewer: every finite box fits there. */
static void nms_grid_shape(struct nms_grid *gr, int c0) {
    gr->levels = 0, gr->total = 0;
    for (int c = c0;; c = c / 4 > 0 ? c / 4 : 1) {
        gr->cells[gr->levels++] = c, gr->total += c;
        if (c <= NMS_SPAN || gr->levels == NMS_LEVELS) break;
    }
}

static int nms_cell(const struct nms_grid *gr, int l, double x) {
    double c = floor((x - gr->x0) * gr->inv_w[l]);
    return c < 0 ? 0 : c >= (double)gr->cells[l] ? gr->cells[l] - 1 : (int)c;
}

static void nms_grid_add(struct nms_grid *gr, int32_t *head, int32_t who) {
    gr->next[gr->n] = *head, gr->who[gr->n] = who;
    *head = (int32_t)gr->n++;
}

/* True when a picked box listed in gr suppresses bx (finite x0, x1: the caller checks every
 * picked box for the others). */
static bool nms_grid_suppressed(const struct nms_grid *gr, const struct nms_box *picked, const struct nms_box *bx,
                                double thr) {
    for (int32_t e = gr->always; e >= 0; e = gr->next[e])
        if (nms_suppress(&picked[gr->who[e]], bx, thr)) return true;
    for (int l = 0; l < gr->levels; l++) {
        if (!gr->used[l]) continue;
        for (int c = nms_cell(gr, l, bx->x0), c1 = nms_cell(gr, l, bx->x1); c <= c1; c++)
            for (int32_t e = gr->head[l][c]; e >= 0; e = gr->next[e])
                if (nms_suppress(&picked[gr->who[e]], bx, thr)) return true;
    }
    return false;
}

static void nms_grid_insert(struct nms_grid *gr, const struct nms_box *bx, int32_t who) {
    if (isfinite(bx->x0) && isfinite(bx->x1)) {
        for (int l = 0; l < gr->levels; l++) {
            int c = nms_cell(gr, l, bx->x0), c1 = nms_cell(gr, l, bx->x1);
            if (c1 - c >= NMS_SPAN) continue;
            for (; c <= c1; c++) nms_grid_add(gr, &gr->head[l][c], who), gr->used[l]++;
            return;
        }
    }
    nms_grid_add(gr, &gr->always, who);
}

/* A scalar (or one-element) input as double; *has false when absent. */
static mixrt_status scalar_input(struct mixrt_kernel_ctx *k, int i, bool want_int, bool *has, double *val,
                                 int64_t *ival) {
    const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
    char d[256];
    *has = false;
    if (!t) return MIXRT_STATUS_OK;
    bool ok = mixrt_tensor_numel(t) == 1 && (want_int ? mixrt_dtype_is_int(t->dtype) : mixrt_dtype_is_float(t->dtype));
    if (!ok)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s, expected a single %s", i,
                                  in_name(k, i), mixrt_tensor_desc(d, sizeof(d), t), want_int ? "integer" : "float");
    if (want_int) *ival = mixrt_load_i64(t->data, t->dtype, 0);
    else *val = mixrt_load_f64(t->data, t->dtype, 0);
    *has = true;
    return MIXRT_STATUS_OK;
}

static mixrt_status run_non_max_suppression(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *boxes = NULL, *scores = NULL;
    double *bv = NULL, *sv = NULL;
    struct nms_cand *cand = NULL;
    struct nms_box *box = NULL, *picked = NULL;
    int64_t *sel = NULL;
    struct nms_grid grid = {.heads = NULL, .next = NULL, .who = NULL};
    size_t grid_entries = 0;
    size_t nb = 0, ns = 0, nsel_cap = 0, nspatial = 0, per_class = 0;
    char d[256], d2[256];
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    MIXRT_TRY(mixrt_kernel_check_float(k, 1));
    boxes = k->in[0];
    scores = k->in[1];
    if (boxes->rank != 3 || boxes->dims[2] != 4 || scores->rank != 3 || scores->dims[0] != boxes->dims[0] ||
        scores->dims[2] != boxes->dims[1])
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT,
                                  "input #0 '%s' is %s and input #1 '%s' is %s, expected [batches, boxes, 4] and "
                                  "[batches, classes, boxes]",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), boxes), in_name(k, 1),
                                  mixrt_tensor_desc(d2, sizeof(d2), scores));
    int64_t center = mixrt_node_attr_int(k->node, "center_point_box", 0);
    if (center != 0 && center != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'center_point_box' is %lld, expected 0 or 1",
                                  (long long)center);
    bool has_max, has_iou, has_score;
    int64_t max_out = 0;
    double iou = 0, score_thr = 0, unused;
    MIXRT_TRY(scalar_input(k, 2, true, &has_max, &unused, &max_out));
    MIXRT_TRY(scalar_input(k, 3, false, &has_iou, &iou, NULL));
    MIXRT_TRY(scalar_input(k, 4, false, &has_score, &score_thr, NULL));
    if (!has_max || max_out < 0) max_out = 0;
    if (!has_iou) iou = 0;
    MIXRT_CHECK(k->ctx, iou >= 0 && iou <= 1, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run NonMaxSuppression node '%s': input #3 '%s' iou_threshold %g is outside [0, 1]",
                k->node->name, in_name(k, 3), iou);

    size_t batches = (size_t)boxes->dims[0], classes = (size_t)scores->dims[1];
    nspatial = (size_t)boxes->dims[1];
    per_class = (uint64_t)max_out < nspatial ? (size_t)max_out : nspatial;
    MIXRT_CHECK(k->ctx,
                mixrt_mul_size(batches, classes, &nsel_cap) && mixrt_mul_size(nsel_cap, per_class, &nsel_cap) &&
                    nsel_cap <= SIZE_MAX / 3 / sizeof(int64_t) - 1,
                MIXRT_STATUS_INVALID_ARGUMENT, "cannot run NonMaxSuppression node '%s': too many boxes", k->node->name);
    nb = mixrt_tensor_numel(boxes);
    ns = mixrt_tensor_numel(scores);
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, boxes, &bv));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, scores, &sv));
    cand = mixrt_calloc(k->ctx, nspatial ? nspatial : 1, sizeof(*cand));
    box = mixrt_calloc(k->ctx, nspatial ? nspatial : 1, sizeof(*box));
    picked = mixrt_calloc(k->ctx, per_class ? per_class : 1, sizeof(*picked));
    sel = mixrt_calloc(k->ctx, nsel_cap ? nsel_cap * 3 : 1, sizeof(*sel));
    /* the grid: level 0 cells ~ candidates / 8, each picked box in at most NMS_SPAN cells */
    nms_grid_shape(&grid, nspatial / 8 < 16 ? 16 : nspatial / 8 > 65536 ? 65536 : (int)(nspatial / 8));
    grid_entries = per_class * NMS_SPAN + 1;
    if (nspatial >= NMS_GRID_MIN && grid_entries <= ((size_t)1 << 24)) { /* else pairs, all of them */
        grid.heads = mixrt_alloc(k->ctx, (size_t)grid.total * sizeof(int32_t));
        grid.next = mixrt_alloc(k->ctx, grid_entries * sizeof(int32_t));
        grid.who = mixrt_alloc(k->ctx, grid_entries * sizeof(int32_t));
        if (!grid.heads || !grid.next || !grid.who) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
    }
    if (!cand || !box || !picked || !sel) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    size_t nsel = 0;
    for (size_t b = 0; b < batches && per_class; b++) {
        for (size_t i = 0; i < nspatial; i++) box[i] = nms_box_of(bv + (b * nspatial + i) * 4, center == 1);
        for (size_t c = 0; c < classes; c++) {
            const double *sc = sv + (b * classes + c) * nspatial;
            size_t nc = 0, np = 0;
            /* NaN scores are never candidates (they have no place in the order). */
            for (size_t i = 0; i < nspatial; i++)
                if (!isnan(sc[i]) && (!has_score || sc[i] > score_thr)) cand[nc++] = (struct nms_cand){sc[i], (int64_t)i};
            qsort(cand, nc, sizeof(*cand), nms_cand_cmp);
            bool use_grid = nc >= NMS_GRID_MIN && grid.heads;
            if (use_grid) {
                double lo = INFINITY, hi = -INFINITY;
                for (size_t i = 0; i < nc; i++) {
                    const struct nms_box *bx = &box[cand[i].index];
                    if (isfinite(bx->x0) && isfinite(bx->x1)) lo = fmin(lo, bx->x0), hi = fmax(hi, bx->x1);
                }
                grid.x0 = lo < hi ? lo : 0.0;
                for (int l = 0, at = 0; l < grid.levels; at += grid.cells[l], l++) {
                    grid.inv_w[l] = lo < hi ? (double)grid.cells[l] / (hi - lo) : 0.0;
                    grid.head[l] = grid.heads + at, grid.used[l] = 0;
                }
                for (int q = 0; q < grid.total; q++) grid.heads[q] = -1;
                grid.always = -1, grid.n = 0;
            }
            for (size_t i = 0; i < nc && np < per_class; i++) {
                const struct nms_box *bx = &box[cand[i].index];
                bool keep = true;
                if (use_grid && isfinite(bx->x0) && isfinite(bx->x1)) {
                    keep = !nms_grid_suppressed(&grid, picked, bx, iou);
                } else {
                    for (size_t j = 0; j < np && keep; j++)
                        if (nms_suppress(&picked[j], bx, iou)) keep = false;
                }
                if (!keep) continue;
                if (use_grid) nms_grid_insert(&grid, bx, (int32_t)np);
                picked[np++] = *bx;
                sel[nsel * 3 + 0] = (int64_t)b;
                sel[nsel * 3 + 1] = (int64_t)c;
                sel[nsel * 3 + 2] = cand[i].index;
                nsel++;
            }
        }
    }
    int64_t dims[2] = {(int64_t)nsel, 3};
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I64, 2, dims, &out));
    if (nsel) memcpy(out->data, sel, nsel * 3 * sizeof(int64_t));
fail:
    if (bv) mixrt_free(k->ctx, bv, (nb ? nb : 1) * sizeof(double));
    if (sv) mixrt_free(k->ctx, sv, (ns ? ns : 1) * sizeof(double));
    if (cand) mixrt_free(k->ctx, cand, (nspatial ? nspatial : 1) * sizeof(*cand));
    if (box) mixrt_free(k->ctx, box, (nspatial ? nspatial : 1) * sizeof(*box));
    if (picked) mixrt_free(k->ctx, picked, (per_class ? per_class : 1) * sizeof(*picked));
    if (sel) mixrt_free(k->ctx, sel, (nsel_cap ? nsel_cap * 3 : 1) * sizeof(*sel));
    if (grid.heads) mixrt_free(k->ctx, grid.heads, (size_t)grid.total * sizeof(int32_t));
    if (grid.next) mixrt_free(k->ctx, grid.next, grid_entries * sizeof(int32_t));
    if (grid.who) mixrt_free(k->ctx, grid.who, grid_entries * sizeof(int32_t));
    return status;
}

/* ---- RoiAlign ------------------------------------------------------------------------ */

/* Samples per bin beyond this are refused: a huge ROI with sampling_ratio 0 would
 * otherwise turn one node into hours of work. */
#define ROI_MAX_SAMPLES_PER_BIN ((int64_t)1 << 24)

static mixrt_status run_roi_align(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *rois = NULL, *bidx = NULL;
    double *xv = NULL, *rv = NULL, *acc = NULL, *ob = NULL;
    size_t nx = 0, nr = 0, channels = 0;
    char d[256], d2[256], d3[256];
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    MIXRT_TRY(mixrt_kernel_check_float(k, 1));
    MIXRT_TRY(mixrt_kernel_input(k, 2, &bidx));
    x = k->in[0];
    rois = k->in[1];
    if (x->rank != 4 || rois->rank != 2 || rois->dims[1] != 4 || bidx->rank != 1 || bidx->dims[0] != rois->dims[0] ||
        !mixrt_dtype_is_int(bidx->dtype))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT,
                                  "inputs are X '%s' %s, rois '%s' %s, batch_indices '%s' %s; expected [N,C,H,W], "
                                  "[R,4] and integer [R]",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), x), in_name(k, 1),
                                  mixrt_tensor_desc(d2, sizeof(d2), rois), in_name(k, 2),
                                  mixrt_tensor_desc(d3, sizeof(d3), bidx));
    const char *mode = mixrt_node_attr_string(k->node, "mode", "avg");
    bool max_mode = !strcmp(mode, "max");
    if (!max_mode && strcmp(mode, "avg"))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'mode' is '%s', expected avg or max", mode);
    /* Opset 10 had no attribute; its behaviour is what 16 calls output_half_pixel. */
    const char *ctm = mixrt_node_attr_string(k->node, "coordinate_transformation_mode",
                                             k->opset >= 16 ? "half_pixel" : "output_half_pixel");
    bool half_pixel = !strcmp(ctm, "half_pixel");
    if (!half_pixel && strcmp(ctm, "output_half_pixel"))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'coordinate_transformation_mode' is '%s', expected half_pixel or "
                                  "output_half_pixel",
                                  ctm);
    int64_t oh = mixrt_node_attr_int(k->node, "output_height", 1), ow = mixrt_node_attr_int(k->node, "output_width", 1);
    int64_t sampling = mixrt_node_attr_int(k->node, "sampling_ratio", 0);
    double scale = mixrt_node_attr_float(k->node, "spatial_scale", 1.0f);
    if (oh < 1 || ow < 1 || sampling < 0 || sampling > ROI_MAX_SAMPLES_PER_BIN)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attributes output_height %lld, output_width %lld, sampling_ratio %lld: expected "
                                  ">= 1, >= 1, >= 0",
                                  (long long)oh, (long long)ow, (long long)sampling);
    int64_t n_batch = x->dims[0], height = x->dims[2], width = x->dims[3], nrois = rois->dims[0];
    channels = (size_t)x->dims[1];
    int64_t dims[4] = {nrois, x->dims[1], oh, ow};
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, 4, dims, &out));
    if (mixrt_tensor_numel(out) == 0) goto fail;
    nx = mixrt_tensor_numel(x);
    nr = mixrt_tensor_numel(rois);
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, x, &xv));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, rois, &rv));
    acc = mixrt_calloc(k->ctx, channels, sizeof(*acc));
    ob = mixrt_alloc(k->ctx, channels * (size_t)oh * (size_t)ow * sizeof(double));
    if (!acc || !ob) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    double offset = half_pixel ? 0.5 : 0.0;
    size_t plane = (size_t)height * (size_t)width, bins = (size_t)oh * (size_t)ow;
    {
        /* The map channels-last ([n][h][w][c]), so that a sample's four taps read each channel
         * at consecutive addresses (channels-first: a plane apart; Faster R-CNN's 256-channel
         * pools spent 15 ms a level there). Same arithmetic, same results. */
        double *xt = mixrt_alloc(k->ctx, (nx ? nx : 1) * sizeof(double));
        if (!xt) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        for (int64_t b = 0; b < n_batch; b++)
            for (size_t c = 0; c < channels; c++)
                for (size_t p = 0; p < plane; p++)
                    xt[((size_t)b * plane + p) * channels + c] = xv[((size_t)b * channels + c) * plane + p];
        mixrt_free(k->ctx, xv, (nx ? nx : 1) * sizeof(double));
        xv = xt;
    }
    for (int64_t r = 0; r < nrois; r++) {
        int64_t b = mixrt_load_i64(bidx->data, bidx->dtype, (size_t)r);
        MIXRT_CHECK(k->ctx, b >= 0 && b < n_batch, MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot run RoiAlign node '%s': input #2 '%s' batch index %lld of roi %lld is outside [0, %lld)",
                    k->node->name, in_name(k, 2), (long long)b, (long long)r, (long long)n_batch);
        const double *roi = rv + r * 4;
        double x0 = roi[0] * scale - offset, y0 = roi[1] * scale - offset;
        double rw = roi[2] * scale - offset - x0, rh = roi[3] * scale - offset - y0;
        MIXRT_CHECK(k->ctx, isfinite(x0) && isfinite(y0) && isfinite(rw) && isfinite(rh),
                    MIXRT_STATUS_INVALID_ARGUMENT, "cannot run RoiAlign node '%s': input #1 '%s' roi %lld is not finite",
                    k->node->name, in_name(k, 1), (long long)r);
        if (!half_pixel) { /* the legacy mode forces ROIs to at least 1x1 */
            rw = fmax(rw, 1.0);
            rh = fmax(rh, 1.0);
        }
        double bin_h = rh / (double)oh, bin_w = rw / (double)ow;
        double gh_d = sampling > 0 ? (double)sampling : ceil(rh / (double)oh);
        double gw_d = sampling > 0 ? (double)sampling : ceil(rw / (double)ow);
        if (gh_d < 0) gh_d = 0;
        if (gw_d < 0) gw_d = 0;
        MIXRT_CHECK(k->ctx,
                    gh_d <= (double)ROI_MAX_SAMPLES_PER_BIN && gw_d <= (double)ROI_MAX_SAMPLES_PER_BIN &&
                        gh_d * gw_d <= (double)ROI_MAX_SAMPLES_PER_BIN, MIXRT_STATUS_UNSUPPORTED,
                    "cannot run RoiAlign node '%s': roi %lld needs %.0f samples per bin, at most %lld supported",
                    k->node->name, (long long)r, gh_d * gw_d, (long long)ROI_MAX_SAMPLES_PER_BIN);
        int64_t gh = (int64_t)gh_d, gw = (int64_t)gw_d;
        double count = gh * gw > 0 ? (double)(gh * gw) : 1.0;
        const double *img = xv + (size_t)b * channels * plane;
        for (int64_t ph = 0; ph < oh; ph++)
            for (int64_t pw = 0; pw < ow; pw++) {
                bool first = true;
                for (size_t c = 0; c < channels; c++) acc[c] = 0;
                for (int64_t iy = 0; iy < gh; iy++) {
                    double y = y0 + (double)ph * bin_h + ((double)iy + 0.5) * bin_h / (double)gh;
                    for (int64_t ix = 0; ix < gw; ix++) {
                        double xx = x0 + (double)pw * bin_w + ((double)ix + 0.5) * bin_w / (double)gw, yy = y;
                        double w1 = 0, w2 = 0, w3 = 0, w4 = 0;
                        size_t p1 = 0, p2 = 0, p3 = 0, p4 = 0;
                        /* Samples more than one pixel outside the map contribute 0. */
                        if (!(yy < -1.0 || yy > (double)height || xx < -1.0 || xx > (double)width) && height > 0 &&
                            width > 0) {
                            if (yy <= 0) yy = 0;
                            if (xx <= 0) xx = 0;
                            int64_t ylo = (int64_t)yy, xlo = (int64_t)xx, yhi, xhi;
                            if (ylo >= height - 1) {
                                yhi = ylo = height - 1;
                                yy = (double)ylo;
                            } else {
                                yhi = ylo + 1;
                            }
                            if (xlo >= width - 1) {
                                xhi = xlo = width - 1;
                                xx = (double)xlo;
                            } else {
                                xhi = xlo + 1;
                            }
                            double ly = yy - (double)ylo, lx = xx - (double)xlo, hy = 1 - ly, hx = 1 - lx;
                            w1 = hy * hx, w2 = hy * lx, w3 = ly * hx, w4 = ly * lx;
                            p1 = (size_t)(ylo * width + xlo), p2 = (size_t)(ylo * width + xhi);
                            p3 = (size_t)(yhi * width + xlo), p4 = (size_t)(yhi * width + xhi);
                        }
                        const double *t1 = img + p1 * channels, *t2 = img + p2 * channels;
                        const double *t3 = img + p3 * channels, *t4 = img + p4 * channels;
                        if (!max_mode && plane) { /* the common case as a loop the compiler vectorizes */
                            for (size_t c = 0; c < channels; c++)
                                acc[c] += w1 * t1[c] + w2 * t2[c] + w3 * t3[c] + w4 * t4[c];
                            first = false;
                            continue;
                        }
                        for (size_t c = 0; c < channels; c++) {
                            double v1 = plane ? t1[c] : 0, v2 = plane ? t2[c] : 0;
                            double v3 = plane ? t3[c] : 0, v4 = plane ? t4[c] : 0;
                            if (!max_mode) {
                                acc[c] += w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4;
                            } else {
                                /* As ONNX Runtime and the ONNX reference: the max of the
                                 * weighted corner terms, not of the interpolated value. */
                                double m = fmax(fmax(w1 * v1, w2 * v2), fmax(w3 * v3, w4 * v4));
                                acc[c] = first ? m : fmax(acc[c], m);
                            }
                        }
                        first = false;
                    }
                }
                for (size_t c = 0; c < channels; c++)
                    ob[c * bins + (size_t)ph * (size_t)ow + (size_t)pw] = max_mode ? acc[c] : acc[c] / count;
            }
        /* the ROI's [channels][bins] in one conversion (one store call per value, a bins'
         * stride apart, had been most of the kernel's time) */
        MIXRT_TRY(mixrt_convert((char *)out->data + (size_t)r * channels * bins * mixrt_dtype_size(out->dtype),
                                out->dtype, ob, MIXRT_DTYPE_F64, channels * bins));
    }
fail:
    if (xv) mixrt_free(k->ctx, xv, (nx ? nx : 1) * sizeof(double));
    if (rv) mixrt_free(k->ctx, rv, (nr ? nr : 1) * sizeof(double));
    if (acc) mixrt_free(k->ctx, acc, channels * sizeof(*acc));
    if (ob) mixrt_free(k->ctx, ob, channels * (size_t)oh * (size_t)ow * sizeof(double));
    return status;
}

/* ---- Einsum ------------------------------------------------------------------------------
 * Labels: 'a'..'z' are 0..25, 'A'..'Z' 26..51, the ellipsis dims 52.. (right-aligned over
 * the widest ellipsis, numpy style, so size-1 dims broadcast). Every operand gets a stride
 * per label (repeated labels add their strides: a diagonal); the output is summed over
 * the labels it lacks, odometer style. */

#define EIN_LETTERS 52
#define EIN_LABELS (EIN_LETTERS + MIXRT_MAX_RANK)

static int ein_letter(char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return c - 'A' + 26;
    return -1;
}

/* Parses one term (no spaces) into letters[]/count and the ellipsis position (-1: none). */
static bool ein_parse_term(const char *s, size_t len, int *letters, int *count, int *ell, int max) {
    *count = 0;
    *ell = -1;
    for (size_t i = 0; i < len;) {
        if (s[i] == '.') {
            if (*ell >= 0 || i + 3 > len || s[i + 1] != '.' || s[i + 2] != '.') return false;
            *ell = *count;
            i += 3;
            continue;
        }
        int l = ein_letter(s[i]);
        if (l < 0 || *count >= max) return false;
        letters[(*count)++] = l;
        i++;
    }
    return true;
}

static mixrt_status run_einsum(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    int nops = k->n_in;
    char *eq = NULL;
    size_t eq_cap = 0;
    int64_t *st = NULL;   /* [nops][EIN_LABELS] strides */
    void **vals = NULL;   /* per operand: double* or int64_t* */
    size_t *vcount = NULL;
    int64_t *off = NULL, *obase = NULL;
    char d[256];
    if (nops < 1) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "needs at least one input");
    for (int j = 0; j < nops; j++) {
        const struct mixrt_tensor *t = NULL;
        MIXRT_TRY(mixrt_kernel_input(k, j, &t));
        MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, j));
    }
    mixrt_dtype dtype = k->in[0]->dtype;
    bool is_float = mixrt_dtype_is_float(dtype);
    if (!is_float && !mixrt_dtype_is_int(dtype))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #0 '%s' is %s, expected a numeric type",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), k->in[0]));
    const struct mixrt_attr *ea = mixrt_node_attr(k->node, "equation");
    if (!ea || !ea->s) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required attribute 'equation' is missing");

    /* Equation without spaces. */
    eq_cap = ea->s_len + 1;
    eq = mixrt_alloc(k->ctx, eq_cap);
    if (!eq) return MIXRT_STATUS_OUT_OF_MEMORY;
    size_t eq_len = 0;
    for (size_t i = 0; i < ea->s_len; i++)
        if (ea->s[i] != ' ') eq[eq_len++] = ea->s[i];
    eq[eq_len] = 0;
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : eq_len;

    st = mixrt_calloc(k->ctx, (size_t)nops * EIN_LABELS, sizeof(*st));
    vals = mixrt_calloc(k->ctx, (size_t)nops, sizeof(*vals));
    vcount = mixrt_calloc(k->ctx, (size_t)nops, sizeof(*vcount));
    off = mixrt_calloc(k->ctx, (size_t)nops, sizeof(*off));
    obase = mixrt_calloc(k->ctx, (size_t)nops, sizeof(*obase));
    if (!st || !vals || !vcount || !off || !obase) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }

    /* Operand terms: each axis gets a label. */
    int axis_label[64][MIXRT_MAX_RANK]; /* only for the first 64 operands; more are refused */
    MIXRT_CHECK(k->ctx, nops <= 64, MIXRT_STATUS_UNSUPPORTED,
                "cannot run Einsum node '%s': %d operands, at most 64 supported", k->node->name, nops);
    int count[EIN_LETTERS] = {0}, n_ell = 0;
    bool any_ell = false;
    int64_t size[EIN_LABELS];
    for (int l = 0; l < EIN_LABELS; l++) size[l] = -1;
    {
        size_t pos = 0;
        int ell_of[64], nlet_of[64], lets[64][MIXRT_MAX_RANK + 1];
        for (int j = 0; j < nops; j++) {
            size_t end = pos;
            while (end < lhs_len && eq[end] != ',') end++;
            MIXRT_CHECK(k->ctx, pos <= lhs_len && (j + 1 < nops ? end < lhs_len : end == lhs_len),
                        MIXRT_STATUS_INVALID_MODEL,
                        "cannot run Einsum node '%s': equation '%s' has a different number of terms than the %d inputs",
                        k->node->name, ea->s, nops);
            const struct mixrt_tensor *t = k->in[j];
            bool ok = ein_parse_term(eq + pos, end - pos, lets[j], &nlet_of[j], &ell_of[j], MIXRT_MAX_RANK + 1);
            MIXRT_CHECK(k->ctx, ok, MIXRT_STATUS_INVALID_MODEL,
                        "cannot run Einsum node '%s': equation '%s': term %d is malformed", k->node->name, ea->s, j);
            int ne = t->rank - nlet_of[j];
            MIXRT_CHECK(k->ctx, ell_of[j] >= 0 ? ne >= 0 : ne == 0, MIXRT_STATUS_INVALID_MODEL,
                        "cannot run Einsum node '%s': equation '%s': term %d has %d labels but input #%d '%s' is %s",
                        k->node->name, ea->s, j, nlet_of[j], j, in_name(k, j), mixrt_tensor_desc(d, sizeof(d), t));
            if (ell_of[j] >= 0) {
                any_ell = true;
                if (ne > n_ell) n_ell = ne;
            }
            for (int q = 0; q < nlet_of[j]; q++) count[lets[j][q]]++;
            pos = end + 1;
        }
        /* Axis labels, then label sizes (size-1 broadcasts). */
        for (int j = 0; j < nops; j++) {
            const struct mixrt_tensor *t = k->in[j];
            int ne = t->rank - nlet_of[j], a = 0;
            for (int q = 0; q <= nlet_of[j]; q++) {
                if (q == ell_of[j])
                    for (int e = 0; e < ne; e++) axis_label[j][a++] = EIN_LETTERS + (n_ell - ne) + e;
                if (q < nlet_of[j]) axis_label[j][a++] = lets[j][q];
            }
            for (a = 0; a < t->rank; a++) {
                int l = axis_label[j][a];
                int64_t dim = t->dims[a];
                if (size[l] < 0 || size[l] == 1) size[l] = dim;
                MIXRT_CHECK(k->ctx, dim == size[l] || dim == 1, MIXRT_STATUS_INVALID_ARGUMENT,
                            "cannot run Einsum node '%s': equation '%s': input #%d '%s' is %s, its dim %d is %lld "
                            "where the same label has %lld",
                            k->node->name, ea->s, j, in_name(k, j), mixrt_tensor_desc(d, sizeof(d), t), a,
                            (long long)dim, (long long)size[l]);
            }
        }
        /* Strides (after all sizes are known: a broadcast dim of 1 gets stride 0). */
        for (int j = 0; j < nops; j++) {
            const struct mixrt_tensor *t = k->in[j];
            int64_t s = 1;
            for (int a = t->rank - 1; a >= 0; a--) {
                int l = axis_label[j][a];
                if (t->dims[a] == size[l]) st[(size_t)j * EIN_LABELS + l] += s;
                s *= t->dims[a];
            }
        }
    }

    /* Output labels. */
    int out_lab[EIN_LABELS], n_out = 0;
    bool used_out[EIN_LABELS] = {false};
    if (arrow) {
        const char *rhs = arrow + 2;
        int lets[EIN_LETTERS + 1], nlet = 0, ell = -1;
        bool ok = ein_parse_term(rhs, strlen(rhs), lets, &nlet, &ell, EIN_LETTERS + 1);
        MIXRT_CHECK(k->ctx, ok && (ell < 0 || any_ell), MIXRT_STATUS_INVALID_MODEL,
                    "cannot run Einsum node '%s': equation '%s': the output term is malformed", k->node->name, ea->s);
        for (int q = 0; q <= nlet; q++) {
            if (q == ell)
                for (int e = 0; e < n_ell; e++) out_lab[n_out++] = EIN_LETTERS + e;
            if (q == nlet) break;
            int l = lets[q];
            MIXRT_CHECK(k->ctx, count[l] > 0 && !used_out[l], MIXRT_STATUS_INVALID_MODEL,
                        "cannot run Einsum node '%s': equation '%s': output label '%c' is %s", k->node->name, ea->s,
                        l < 26 ? 'a' + l : 'A' + l - 26, count[l] ? "repeated" : "not in any input");
            used_out[l] = true;
            out_lab[n_out++] = l;
        }
    } else {
        for (int e = 0; e < n_ell; e++) out_lab[n_out++] = EIN_LETTERS + e;
        for (int l = 26; l < 52; l++) /* ASCII order: upper case first */
            if (count[l] == 1) out_lab[n_out++] = l;
        for (int l = 0; l < 26; l++)
            if (count[l] == 1) out_lab[n_out++] = l;
    }
    MIXRT_CHECK(k->ctx, n_out <= MIXRT_MAX_RANK, MIXRT_STATUS_UNSUPPORTED,
                "cannot run Einsum node '%s': output rank %d exceeds %d", k->node->name, n_out, MIXRT_MAX_RANK);
    for (int q = 0; q < n_out; q++) used_out[out_lab[q]] = true;
    int red_lab[EIN_LABELS], n_red = 0;
    size_t red_n = 1;
    for (int l = 0; l < EIN_LABELS; l++)
        if (size[l] >= 0 && !used_out[l]) {
            red_lab[n_red++] = l;
            MIXRT_CHECK(k->ctx, mixrt_mul_size(red_n, (size_t)size[l], &red_n), MIXRT_STATUS_UNSUPPORTED,
                        "cannot run Einsum node '%s': the summation space overflows", k->node->name);
        }
    int64_t odims[MIXRT_MAX_RANK];
    for (int q = 0; q < n_out; q++) odims[q] = size[out_lab[q]];
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, dtype, n_out, odims, &out));
    size_t out_n = mixrt_tensor_numel(out);
    if (out_n == 0) goto fail;

    for (int j = 0; j < nops; j++) {
        vcount[j] = mixrt_tensor_numel(k->in[j]);
        if (is_float) MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, k->in[j], (double **)&vals[j]));
        else MIXRT_TRY(mixrt_tensor_to_i64(k->ctx, k->in[j], (int64_t **)&vals[j]));
    }
    int64_t oidx[MIXRT_MAX_RANK] = {0}, ridx[EIN_LABELS] = {0};
    for (size_t o = 0; o < out_n; o++) {
        double facc = 0;
        uint64_t iacc = 0; /* unsigned: integer overflow wraps instead of being UB */
        for (int j = 0; j < nops; j++) off[j] = obase[j];
        for (size_t r = 0; r < red_n; r++) {
            if (is_float) {
                double p = 1;
                for (int j = 0; j < nops; j++) p *= ((const double *)vals[j])[off[j]];
                facc += p;
            } else {
                uint64_t p = 1;
                for (int j = 0; j < nops; j++) p *= (uint64_t)((const int64_t *)vals[j])[off[j]];
                iacc += p;
            }
            for (int q = n_red - 1; q >= 0; q--) {
                int l = red_lab[q];
                for (int j = 0; j < nops; j++) off[j] += st[(size_t)j * EIN_LABELS + l];
                if (++ridx[q] < size[l]) break;
                for (int j = 0; j < nops; j++) off[j] -= st[(size_t)j * EIN_LABELS + l] * size[l];
                ridx[q] = 0;
            }
        }
        if (is_float) mixrt_store_f64(out->data, dtype, o, facc);
        else mixrt_store_i64(out->data, dtype, o, (int64_t)iacc);
        for (int q = n_out - 1; q >= 0; q--) {
            int l = out_lab[q];
            for (int j = 0; j < nops; j++) obase[j] += st[(size_t)j * EIN_LABELS + l];
            if (++oidx[q] < size[l]) break;
            for (int j = 0; j < nops; j++) obase[j] -= st[(size_t)j * EIN_LABELS + l] * size[l];
            oidx[q] = 0;
        }
    }
fail:
    if (vals)
        for (int j = 0; j < nops; j++)
            if (vals[j]) mixrt_free(k->ctx, vals[j], (vcount[j] ? vcount[j] : 1) * 8);
    if (vals) mixrt_free(k->ctx, vals, (size_t)nops * sizeof(*vals));
    if (vcount) mixrt_free(k->ctx, vcount, (size_t)nops * sizeof(*vcount));
    if (off) mixrt_free(k->ctx, off, (size_t)nops * sizeof(*off));
    if (obase) mixrt_free(k->ctx, obase, (size_t)nops * sizeof(*obase));
    if (st) mixrt_free(k->ctx, st, (size_t)nops * EIN_LABELS * sizeof(*st));
    if (eq) mixrt_free(k->ctx, eq, eq_cap);
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_misc[] = {
    {"", "Constant", 1, 23, run_constant},
    {"", "RandomNormal", 1, 23, run_random_normal},
    {"", "RandomUniform", 1, 23, run_random_uniform},
    {"", "RandomNormalLike", 1, 23, run_random_normal_like},
    {"", "RandomUniformLike", 1, 23, run_random_uniform_like},
    {"", "Multinomial", 7, 23, run_multinomial},
    {"", "Bernoulli", 15, 23, run_bernoulli},
    {"", "NonMaxSuppression", 10, 23, run_non_max_suppression},
    {"", "RoiAlign", 10, 23, run_roi_align},
    {"", "Einsum", 12, 23, run_einsum},
    {NULL, NULL, 0, 0, NULL},
};
