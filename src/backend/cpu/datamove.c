/* datamove.c - fast CPU kernel candidates for data movement (Transpose, Gather, Concat, Split,
 * Slice, Expand, Tile, Where, Pad constant, Resize nearest/linear 4-D) for every element size
 * (1, 2, 4, 8 bytes; never strings). Each op becomes a strided copy whose dims are collapsed,
 * then run as memcpy rows, broadcast fills, cache-blocked 2-D transposes (AVX-512 tiles or the
 * scalar twin) or element loops, split over OpenMP threads when large. Invariant: results are
 * bit-identical to the reference kernels; a case outside the fast path (a dtype or attribute
 * the graph did not show, an invalid input) runs the reference kernel, so errors and odd
 * cases behave exactly as the reference's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/datamove_impl.h"
#include "backend/cpu/kernels.h"

/* ---- ISA, threads ------------------------------------------------------------------------- */

static bool forced_scalar;
/* Below this many bytes moved, one thread: waking the pool costs more than it gains. Measured
 * per call on two quiet cores (kernel incl. output allocation): a 384 KB BERT head transpose
 * 30 us on one thread, 56 us on two; 784 KB NCHW->NHWC 56 vs 89 us; 1.5 MB about even; 6 MB
 * 887 vs 629 us. On the loaded shared 2-vCPU build machine two threads lost at every size. */
#define DM_PAR_BYTES_DEFAULT ((size_t)4 << 20)
static size_t par_bytes_override;

void mixrt_dm_force_scalar(bool on) { forced_scalar = on; }
void mixrt_dm_set_parallel_bytes(size_t bytes) { par_bytes_override = bytes; }

bool mixrt_dm_has_avx512(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    const char *e = getenv("MIXRT_DATAMOVE_ISA");
    return f->avx512f && f->avx512bw && f->avx512vl && !forced_scalar && !(e && !strcmp(e, "scalar"));
#else
    return false;
#endif
}

const char *mixrt_dm_isa(void) { return mixrt_dm_has_avx512() ? "avx512" : "scalar"; }

/* Threads for moving bytes (1 when fewer than lim, unless a test set its own bound, or without
 * OpenMP). */
static int dm_threads_over(size_t bytes, int64_t items, size_t lim) {
#ifdef _OPENMP
    if (par_bytes_override) lim = par_bytes_override;
    if (bytes < lim || items < 2) return 1;
    int t = omp_get_max_threads();
    if (t > items) t = (int)items;
    return t < 1 ? 1 : t;
#else
    (void)bytes, (void)items, (void)lim;
    return 1;
#endif
}

static int dm_threads(size_t bytes, int64_t items) { return dm_threads_over(bytes, items, DM_PAR_BYTES_DEFAULT); }

/* ---- scalar twins --------------------------------------------------------------------------- */

#define T2D_LOOP(T)                                                                                                    \
    do {                                                                                                               \
        const T *s = src;                                                                                              \
        T *d = dst;                                                                                                    \
        for (size_t a0 = 0; a0 < na; a0 += 8)                                                                          \
            for (size_t b = 0; b < nb; b++) {                                                                          \
                size_t ae = a0 + 8 < na ? a0 + 8 : na;                                                                 \
                for (size_t a = a0; a < ae; a++) d[a * dst_ld + b] = s[b * src_ld + a];                                \
            }                                                                                                          \
    } while (0)

void mixrt_dm_transpose2d_scalar(size_t es, const void *src, size_t src_ld, void *dst, size_t dst_ld, size_t na,
                                 size_t nb) {
    switch (es) {
    case 1: T2D_LOOP(uint8_t); break;
    case 2: T2D_LOOP(uint16_t); break;
    case 4: T2D_LOOP(uint32_t); break;
    case 8: T2D_LOOP(uint64_t); break;
    default:
        for (size_t a = 0; a < na; a++)
            for (size_t b = 0; b < nb; b++)
                memcpy((char *)dst + (a * dst_ld + b) * es, (const char *)src + (b * src_ld + a) * es, es);
        break;
    }
}

void mixrt_dm_narrow_f32_bf16_scalar(const float *src, size_t src_ld, uint16_t *dst, size_t na, size_t nb) {
    for (size_t a = 0; a < na; a++)
        for (size_t b = 0; b < nb; b++) dst[a * nb + b] = mixrt_bf16_from_float(src[b * src_ld + a]).bits;
}

void mixrt_dm_narrow_f16_bf16_scalar(const uint16_t *src, size_t src_ld, uint16_t *dst, size_t na, size_t nb) {
    for (size_t a = 0; a < na; a++)
        for (size_t b = 0; b < nb; b++)
            dst[a * nb + b] = mixrt_bf16_from_float(mixrt_f16_to_float((mixrt_f16){src[b * src_ld + a]})).bits;
}

static mixrt_dm_transpose2d_fn transpose_fn(size_t es) {
#if defined(__x86_64__)
    if ((es == 2 || es == 4) && mixrt_dm_has_avx512()) return mixrt_dm_transpose2d_avx512;
#else
    (void)es;
#endif
    return mixrt_dm_transpose2d_scalar;
}

/* ---- the strided copy engine -----------------------------------------------------------------
 * dst[sum i_k * ds_k] = src[sum i_k * ss_k] over dims d (strides in elements, src strides may be
 * 0 or negative). Collapsing drops dims of 1 and merges neighbours both sides step through
 * contiguously; the innermost dim then decides the kind of row. */

#define DM_MAX (2 * MIXRT_MAX_RANK)

struct dm_loop {
    int r;
    int64_t d[DM_MAX], ds[DM_MAX], ss[DM_MAX];
};

static void dm_collapse(struct dm_loop *L) {
    int m = 0;
    for (int i = 0; i < L->r; i++) {
        if (L->d[i] == 1) continue;
        if (m > 0 && L->ds[m - 1] == L->ds[i] * L->d[i] && L->ss[m - 1] == L->ss[i] * L->d[i]) {
            L->d[m - 1] *= L->d[i];
            L->ds[m - 1] = L->ds[i];
            L->ss[m - 1] = L->ss[i];
            continue;
        }
        L->d[m] = L->d[i], L->ds[m] = L->ds[i], L->ss[m] = L->ss[i];
        m++;
    }
    if (m == 0) L->d[0] = 1, L->ds[0] = 1, L->ss[0] = 1, m = 1;
    L->r = m;
}

enum dm_kind { DK_ROW, DK_FILL, DK_T2D, DK_ELEM };

#define T2D_BLOCK 64 /* a block of 64x64 elements (16 KB in f32) stays in L1 on both sides */

struct dm_plan {
    enum dm_kind kind;
    size_t es;
    char *dst;
    const char *src;
    int64_t len, dsi, ssi; /* innermost: count and strides */
    int64_t na, dsa;       /* DK_T2D: the dim with source stride 1 (count, dst stride) in blocks of T2D_BLOCK */
    int64_t nblk;          /* DK_T2D: blocks of that dim per outer item */
    int64_t ablk;          /* DK_T2D: elements of that dim per block */
    int m;                 /* outer dims */
    int64_t od[DM_MAX], ods[DM_MAX], oss[DM_MAX];
    mixrt_dm_transpose2d_fn t2d;
};

#define FILL_LOOP(T)                                                                                                   \
    do {                                                                                                               \
        T v;                                                                                                           \
        memcpy(&v, s, sizeof(T));                                                                                      \
        T *dd = (T *)d;                                                                                                \
        for (int64_t i = 0; i < n; i++) dd[i] = v;                                                                     \
    } while (0)

/* n elements of es bytes at d, each the one at s. */
static void fill_elems(char *d, const char *s, size_t es, int64_t n) {
    switch (es) {
    case 1: memset(d, (unsigned char)*s, (size_t)n); break;
    case 2: FILL_LOOP(uint16_t); break;
    case 4: FILL_LOOP(uint32_t); break;
    case 8: FILL_LOOP(uint64_t); break;
    default:
        for (int64_t i = 0; i < n; i++) memcpy(d + (size_t)i * es, s, es);
        break;
    }
}

#define ELEM_LOOP(T)                                                                                                   \
    do {                                                                                                               \
        const T *ss = (const T *)s;                                                                                    \
        T *dd = (T *)d;                                                                                                \
        for (int64_t i = 0; i < n; i++) dd[i * dst_st] = ss[i * src_st];                                               \
    } while (0)

static void elem_copy(char *d, int64_t dst_st, const char *s, int64_t src_st, size_t es, int64_t n) {
    switch (es) {
    case 1: ELEM_LOOP(uint8_t); break;
    case 2: ELEM_LOOP(uint16_t); break;
    case 4: ELEM_LOOP(uint32_t); break;
    case 8: ELEM_LOOP(uint64_t); break;
    default:
        for (int64_t i = 0; i < n; i++) memcpy(d + i * dst_st * (int64_t)es, s + i * src_st * (int64_t)es, es);
        break;
    }
}

/* Runs outer items [o0, o1) of the plan (for DK_T2D an item is one block of one outer index). */
static void dm_run_range(const struct dm_plan *P, int64_t o0, int64_t o1) {
    int64_t ctr[DM_MAX], doff = 0, soff = 0, es = (int64_t)P->es;
    int64_t per = P->kind == DK_T2D ? P->nblk : 1;
    int64_t o = o0 / per, blk = o0 % per;
    for (int j = P->m - 1; j >= 0; j--) { /* the outer index of item o0 */
        ctr[j] = o % P->od[j];
        o /= P->od[j];
        doff += ctr[j] * P->ods[j];
        soff += ctr[j] * P->oss[j];
    }
    for (int64_t it = o0; it < o1; it++) {
        char *d = P->dst + doff * es;
        const char *s = P->src + soff * es;
        switch (P->kind) {
        case DK_ROW: memcpy(d, s, (size_t)(P->len * es)); break;
        case DK_FILL: fill_elems(d, s, P->es, P->len); break;
        case DK_ELEM: elem_copy(d, P->dsi, s, P->ssi, P->es, P->len); break;
        case DK_T2D: {
            int64_t a = blk * P->ablk, an = P->na - a < P->ablk ? P->na - a : P->ablk;
            for (int64_t b = 0; b < P->len; b += T2D_BLOCK) {
                int64_t bn = P->len - b < T2D_BLOCK ? P->len - b : T2D_BLOCK;
                P->t2d(P->es, s + (b * P->ssi + a) * es, (size_t)P->ssi, d + (a * P->dsa + b) * es, (size_t)P->dsa,
                       (size_t)an, (size_t)bn);
            }
            if (++blk < per) continue;
            blk = 0;
            break;
        }
        }
        for (int j = P->m - 1; j >= 0; j--) {
            doff += P->ods[j];
            soff += P->oss[j];
            if (++ctr[j] < P->od[j]) break;
            doff -= P->ods[j] * P->od[j];
            soff -= P->oss[j] * P->od[j];
            ctr[j] = 0;
        }
    }
}

/* Runs the copy L (modified: collapsed) from src to dst, elements of es bytes. */
static void dm_copy(char *dst, const char *src, size_t es, struct dm_loop *L) {
    for (int i = 0; i < L->r; i++)
        if (L->d[i] == 0) return;
    dm_collapse(L);
    struct dm_plan P;
    memset(&P, 0, sizeof(P));
    P.es = es, P.dst = dst, P.src = src;
    int last = L->r - 1, ja = -1;
    P.len = L->d[last], P.dsi = L->ds[last], P.ssi = L->ss[last];
    if (P.dsi == 1 && P.ssi == 1) P.kind = DK_ROW;
    else if (P.dsi == 1 && P.ssi == 0) P.kind = DK_FILL;
    else P.kind = DK_ELEM;
    if (P.kind == DK_ELEM && P.dsi == 1 && P.ssi > 0)
        for (int i = last - 1; i >= 0 && ja < 0; i--)
            if (L->ss[i] == 1 && L->ds[i] > 0) ja = i;
    if (ja >= 0) {
        P.kind = DK_T2D;
        P.na = L->d[ja], P.dsa = L->ds[ja];
        /* A few rows b interleaved into dense rows (an NCHW image of 3 channels to NHWC): the
         * block holds them all, so it runs long in a (2048 x nb), not in calls of 64. */
        P.ablk = P.len <= 8 && P.dsa == P.len ? 2048 : T2D_BLOCK;
        P.nblk = (P.na + P.ablk - 1) / P.ablk;
        P.t2d = transpose_fn(es);
    }
    int64_t outer = 1;
    for (int i = 0; i < last; i++) {
        if (i == ja) continue;
        P.od[P.m] = L->d[i], P.ods[P.m] = L->ds[i], P.oss[P.m] = L->ss[i];
        P.m++;
        outer *= L->d[i];
    }
    int64_t items = outer * (P.kind == DK_T2D ? P.nblk : 1);
    size_t bytes = (size_t)(items * P.len * (int64_t)es * (P.kind == DK_T2D ? P.ablk : 1));
    int nt = dm_threads(bytes, items);
    if (nt > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++) dm_run_range(&P, items * t / nt, items * (t + 1) / nt);
    } else {
        dm_run_range(&P, 0, items);
    }
}

/* Row-major strides of dims (elements). */
static void row_strides(int r, const int64_t *d, int64_t *st) {
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        st[i] = s;
        s *= d[i];
    }
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* ---- graph-level checks ------------------------------------------------------------------- */

static const struct mixrt_value *in_value(const struct mixrt_graph *g, const struct mixrt_node *n, int i) {
    return i < n->n_inputs && n->inputs[i] >= 0 ? &g->values[n->inputs[i]] : NULL;
}

static bool no(char *why, size_t why_size, const char *fmt, const char *arg) {
    if (why && why_size) snprintf(why, why_size, fmt, arg);
    return false;
}

/* A dtype whose elements move as 1, 2, 4 or 8 raw bytes. */
static bool movable(mixrt_dtype dt) {
    if (dt == MIXRT_DTYPE_UNDEFINED || dt == MIXRT_DTYPE_STRING || !mixrt_dtype_is_supported(dt)) return false;
    size_t es = mixrt_dtype_size(dt);
    return es == 1 || es == 2 || es == 4 || es == 8;
}

static bool plain(const struct mixrt_value *v) {
    return v && !(v->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL));
}

/* Common: input 0 present, plain, of a movable dtype; every output plain. */
static bool common_supports(const struct mixrt_graph *g, const struct mixrt_node *n, int min_opset, char *why,
                            size_t why_size) {
    if (strcmp(n->domain, "")) return no(why, why_size, "%s: not the default domain", n->op_type);
    if (n->opset < min_opset || n->opset > 23) return no(why, why_size, "%s: no data-movement kernel at this opset", n->op_type);
    const struct mixrt_value *x = in_value(g, n, 0);
    if (!plain(x)) return no(why, why_size, "%s: input 0 absent, a sequence or optional", n->op_type);
    if (!movable(x->dtype))
        return no(why, why_size, "input 0 is %s, not a 1, 2, 4 or 8-byte type", mixrt_dtype_name(x->dtype));
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0 && !plain(&g->values[n->outputs[i]]))
            return no(why, why_size, "%s: an output is a sequence or optional", n->op_type);
    return true;
}

/* Inputs from..to-1 absent or constants: the values that shape a Slice, Split, Expand, Tile or
 * Resize must be known when the builder times the kernel (it feeds zeros to non-constant int
 * inputs, which are invalid steps, splits or shapes), and data-dependent ones are rare. */
static bool const_inputs(const struct mixrt_graph *g, const struct mixrt_node *n, int from, int to, char *why,
                         size_t why_size) {
    for (int i = from; i < to && i < n->n_inputs; i++) {
        const struct mixrt_value *v = in_value(g, n, i);
        if (v && !v->init) return no(why, why_size, "%s: a shape-giving input is not a constant", n->op_type);
    }
    return true;
}

static bool transpose_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return common_supports(g, n, 1, why, why_size);
}

static bool gather_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!common_supports(g, n, 1, why, why_size)) return false;
    const struct mixrt_value *i = in_value(g, n, 1);
    if (!plain(i) || (i->dtype != MIXRT_DTYPE_I64 && i->dtype != MIXRT_DTYPE_I32))
        return no(why, why_size, "%s", "Gather indices not int32 or int64");
    return true;
}

static bool concat_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!common_supports(g, n, 1, why, why_size)) return false;
    mixrt_dtype dt = in_value(g, n, 0)->dtype;
    for (int i = 1; i < n->n_inputs; i++) {
        const struct mixrt_value *v = in_value(g, n, i);
        if (!plain(v) || v->dtype != dt) return no(why, why_size, "%s", "Concat inputs of different dtypes");
    }
    return true;
}

static bool split_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return common_supports(g, n, 1, why, why_size) && const_inputs(g, n, 1, 2, why, why_size);
}

static bool slice_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return common_supports(g, n, 1, why, why_size) && const_inputs(g, n, 1, 5, why, why_size);
}

static bool expand_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return common_supports(g, n, 8, why, why_size) && const_inputs(g, n, 1, 2, why, why_size);
}

static bool tile_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return common_supports(g, n, 6, why, why_size) && const_inputs(g, n, 1, 2, why, why_size);
}

static bool where_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (strcmp(n->domain, "") || n->opset < 9 || n->opset > 23)
        return no(why, why_size, "%s: no data-movement kernel at this opset", n->op_type);
    const struct mixrt_value *c = in_value(g, n, 0), *x = in_value(g, n, 1), *y = in_value(g, n, 2);
    if (!plain(c) || !plain(x) || !plain(y) || c->dtype != MIXRT_DTYPE_BOOL)
        return no(why, why_size, "%s", "Where needs a bool condition and two plain inputs");
    if (!movable(x->dtype) || y->dtype != x->dtype)
        return no(why, why_size, "Where inputs are %s and not the same 1, 2, 4 or 8-byte type", mixrt_dtype_name(x->dtype));
    return n->n_outputs == 1 && plain(&g->values[n->outputs[0]]);
}

static bool pad_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!common_supports(g, n, 1, why, why_size) || !const_inputs(g, n, 3, 4, why, why_size)) return false;
    const char *mode = mixrt_node_attr_string(n, "mode", "constant");
    if (strcmp(mode, "constant")) return no(why, why_size, "Pad mode '%s' (only constant here)", mode);
    return true;
}

/* ---- run helpers ------------------------------------------------------------------------------ */

static bool fast_tensor(const struct mixrt_tensor *t) { return t && movable(t->dtype); }

/* ---- Transpose ---------------------------------------------------------------------------------- */

/* The node's perm for rank r (absent: the axes reversed); false when it is not a permutation of
 * 0..r-1. */
static bool node_perm(const struct mixrt_node *n, int r, int64_t *perm) {
    size_t np = 0;
    const int64_t *p = mixrt_node_attr_ints(n, "perm", &np);
    if (!mixrt_node_attr(n, "perm")) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
        return true;
    }
    if (np != (size_t)r) return false;
    bool seen[MIXRT_MAX_RANK] = {false};
    for (int i = 0; i < r; i++) {
        if (p[i] < 0 || p[i] >= r || seen[p[i]]) return false;
        seen[p[i]] = true;
        perm[i] = p[i];
    }
    return true;
}

/* The copy that transposes x by the node's perm (dims: the output's); false for a bad perm. */
static bool transpose_loop(const struct mixrt_node *n, const struct mixrt_tensor *x, int64_t *perm, int64_t *dims,
                           struct dm_loop *L) {
    int r = x->rank;
    int64_t ist[MIXRT_MAX_RANK];
    if (!node_perm(n, r, perm)) return false;
    row_strides(r, x->dims, ist);
    L->r = r;
    for (int i = 0; i < r; i++) dims[i] = L->d[i] = x->dims[perm[i]], L->ss[i] = ist[perm[i]];
    row_strides(r, dims, L->ds);
    return true;
}

static mixrt_status transpose_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    if (!fast_tensor(x)) return mixrt_cpu_run_reference(k);
    int r = x->rank;
    int64_t perm[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK];
    struct dm_loop L;
    if (!transpose_loop(k->node, x, perm, dims, &L)) return mixrt_cpu_run_reference(k); /* its error */
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, r, dims, &o); /* a permutation: all of it */
    if (status != MIXRT_STATUS_OK) return status;
    dm_copy(o->data, x->data, mixrt_dtype_size(x->dtype), &L);
    return MIXRT_STATUS_OK;
}

/* ---- TransposeCast (com.mixrt): a Transpose whose only reader was a Cast ----------------------- */

static bool transpose_cast_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why,
                                    size_t why_size) {
    const struct mixrt_value *x = in_value(g, n, 0);
    if (strcmp(n->domain, MIXRT_DOMAIN) || n->n_outputs != 1 || n->outputs[0] < 0 || !plain(x) ||
        !plain(&g->values[n->outputs[0]]))
        return no(why, why_size, "%s", "TransposeCast: one plain input and output");
    mixrt_dtype to = g->values[n->outputs[0]].dtype;
    if (!movable(x->dtype) || !mixrt_dtype_is_float(x->dtype) || !mixrt_dtype_is_float(to) ||
        mixrt_node_attr_int(n, "to", 0) != (int64_t)to)
        return no(why, why_size, "%s", "TransposeCast: float to float, 'to' the output's dtype");
    return true;
}

/* NCHW f32 or f16 with at most 8 channels to NHWC bf16 (the image at a CNN's input) in one pass
 * over the registers; anything else transposed into the kernel scratch, then converted. */
static mixrt_status transpose_cast_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    mixrt_dtype to = (mixrt_dtype)mixrt_node_attr_int(k->node, "to", 0);
    if (!fast_tensor(x) || !mixrt_dtype_is_float(x->dtype) || !mixrt_dtype_is_float(to))
        return mixrt_cpu_run_reference(k);
    int r = x->rank;
    int64_t perm[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK];
    struct dm_loop L;
    if (!transpose_loop(k->node, x, perm, dims, &L)) return mixrt_cpu_run_reference(k); /* its error */
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, to, r, dims, &o); /* a permutation: all of it */
    if (status != MIXRT_STATUS_OK) return status;
    size_t n = mixrt_tensor_numel(x);
    if (n == 0) return MIXRT_STATUS_OK;
    if ((x->dtype == MIXRT_DTYPE_F32 || x->dtype == MIXRT_DTYPE_F16) && to == MIXRT_DTYPE_BF16 && r == 4 &&
        perm[0] == 0 && perm[1] == 2 && perm[2] == 3 && perm[3] == 1 && x->dims[1] <= 8) {
        size_t c = (size_t)x->dims[1], hw = (size_t)(x->dims[2] * x->dims[3]);
        const bool v = mixrt_dm_has_avx512();
        void (*narrow)(const float *, size_t, uint16_t *, size_t, size_t) =
            v ? mixrt_dm_narrow_f32_bf16_avx512 : mixrt_dm_narrow_f32_bf16_scalar;
        void (*narrow_h)(const uint16_t *, size_t, uint16_t *, size_t, size_t) =
            v ? mixrt_dm_narrow_f16_bf16_avx512 : mixrt_dm_narrow_f16_bf16_scalar;
        for (int64_t b = 0; b < x->dims[0]; b++) {
            uint16_t *ob = (uint16_t *)o->data + (size_t)b * hw * c;
            if (x->dtype == MIXRT_DTYPE_F32) narrow((const float *)x->data + (size_t)b * c * hw, hw, ob, hw, c);
            else narrow_h((const uint16_t *)x->data + (size_t)b * c * hw, hw, ob, hw, c);
        }
        return MIXRT_STATUS_OK;
    }
    bool owned = false;
    size_t es = mixrt_dtype_size(x->dtype);
    void *tmp = mixrt_kernel_scratch(k, n * es, &owned);
    if (!tmp) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch", n * es);
    dm_copy(tmp, x->data, es, &L);
    status = mixrt_convert(o->data, to, tmp, x->dtype, n);
    if (owned) mixrt_free(k->ctx, tmp, n * es);
    return status;
}

/* ---- Gather ------------------------------------------------------------------------------------ */

/* Element j of an int64 (i64) or int32 index tensor's data. */
static inline int64_t index_at(const void *ind, bool i64, size_t j) {
    return i64 ? ((const int64_t *)ind)[j] : ((const int32_t *)ind)[j];
}

struct gather_job {
    const char *src;
    char *dst;
    const void *ind;
    bool i64;
    size_t row;       /* bytes per gathered row */
    int64_t len, ni;  /* the axis' size, the index count */
};

/* Output rows [r0, r1): row r takes source row (r / ni) * len + index[r % ni] (checked). */
static void gather_rows(const struct gather_job *J, int64_t r0, int64_t r1) {
    int64_t b = r0 / J->ni, j = r0 % J->ni;
    for (int64_t r = r0; r < r1; r++) {
        int64_t v = index_at(J->ind, J->i64, (size_t)j);
        if (v < 0) v += J->len;
        memcpy(J->dst + (size_t)r * J->row, J->src + (size_t)(b * J->len + v) * J->row, J->row);
        if (++j == J->ni) j = 0, b++;
    }
}

static mixrt_status gather_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *ind = mixrt_kernel_opt_input(k, 1);
    if (!fast_tensor(x) || !ind || (ind->dtype != MIXRT_DTYPE_I64 && ind->dtype != MIXRT_DTYPE_I32))
        return mixrt_cpu_run_reference(k);
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 0);
    int r = x->rank - 1 + ind->rank;
    if (!mixrt_norm_axis(axis, x->rank, &axis) || r > MIXRT_MAX_RANK) return mixrt_cpu_run_reference(k);
    int64_t len = x->dims[axis], outer = prod(x->dims, 0, (int)axis), inner = prod(x->dims, (int)axis + 1, x->rank);
    size_t ni = mixrt_tensor_numel(ind);
    /* every index checked before any output exists: a wrong index is wrong whatever the data
     * size (the reference checks them too, and names the first bad one the same way) */
    bool i64 = ind->dtype == MIXRT_DTYPE_I64;
    for (size_t j = 0; j < ni && (len > 0 || (outer > 0 && inner > 0)); j++) {
        int64_t v = index_at(ind->data, i64, j);
        if (v < -len || v >= len) {
            const char *nm = k->node->inputs[1] >= 0 ? k->graph->values[k->node->inputs[1]].name : "";
            char d[256];
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "input #1 '%s' (%s): index %lld at element %zu is out of range [%lld, %lld] for "
                                      "axis %lld of size %lld",
                                      nm, mixrt_tensor_desc(d, sizeof(d), ind), (long long)v, j, (long long)-len,
                                      (long long)len - 1, (long long)axis, (long long)len);
        }
    }
    int64_t dims[MIXRT_MAX_RANK];
    int q = 0;
    for (int d = 0; d < axis; d++) dims[q++] = x->dims[d];
    for (int d = 0; d < ind->rank; d++) dims[q++] = ind->dims[d];
    for (int d = (int)axis + 1; d < x->rank; d++) dims[q++] = x->dims[d];
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, r, dims, &o); /* indices checked: every row */
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(o) == 0) return MIXRT_STATUS_OK;
    size_t es = mixrt_dtype_size(x->dtype);
    struct gather_job J = {x->data, o->data, ind->data, i64, (size_t)inner * es, len, (int64_t)ni};
    int64_t items = outer * (int64_t)ni;
    int nt = dm_threads((size_t)items * J.row, items);
    if (nt > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++) gather_rows(&J, items * t / nt, items * (t + 1) / nt);
    } else {
        gather_rows(&J, 0, items);
    }
    return MIXRT_STATUS_OK;
}

/* ---- Concat, Split --------------------------------------------------------------------------- */

/* Concat with more than one row (a channels-last channel concat: DenseNet's layer i joins its
 * i inputs of 32 channels, 64-byte bf16 rows, per pixel). Input by input through dm_copy made
 * one memcpy call per input row; here short rows are copied by fixed-size moves the compiler
 * inlines (DenseNet-121 bf16: its 62 Concats 2.1-2.2 -> 1.2-1.35 ms), a block of output rows at
 * a time (each input read as one sequential stream into a block that stays in L2; the block's
 * size moved the total by under 10 % from 8 KB to 1 MB). */
#define CONCAT_MAX_IN 1024
#define CONCAT_BLOCK_BYTES ((size_t)256 << 10)
/* A Concat of two blocks or more (over CONCAT_BLOCK_BYTES of output) shares them between the
 * threads, each taking the block rows the convolutions before it split alike (by rows); the
 * other moves stay on one thread below DM_PAR_BYTES_DEFAULT (4 MB). Measured with a 64 KB
 * bound, which two blocks always pass (`bench --compare "fp32;fp32,bf16" --peer ort`, two
 * alternated pairs each, one timing cache), ratios to ONNX Runtime one thread -> two:
 * SqueezeNet 1.1 (eight 0.26-1.55 MB f32 fire Concats, 0.49 ms of a 3.3 ms f32 run on one
 * thread) 0.918 / 0.547 -> 0.842 / 0.525 and 0.960 / 0.575 -> 0.856 / 0.532, GoogLeNet f32
 * 0.772 -> 0.756 and 0.773 -> 0.750, Inception-v3 0.886 / 0.515 -> 0.870 / 0.506 and 0.877 /
 * 0.511 -> 0.867 / 0.505; DenseNet-121 and ShuffleNetV2 within +-0.5 %. Every data-movement
 * kernel on two threads from 64 KB took ShuffleNetV2 from 2.86 / 1.78 to 3.31 / 2.11 ms (its
 * transposes lose), so only Concat moves; cutting the rows of a Concat under two blocks into one
 * block a thread changed nothing. */

struct concat_job {
    char *dst;
    size_t orow;      /* output row bytes */
    int64_t outer;    /* rows */
    int64_t blk;      /* rows a block */
    int n;            /* inputs with a non-empty row */
    const char **src; /* input i's data */
    size_t *len;      /* input i's row bytes */
};

/* n bytes from s to d, n a multiple of 1, 2, 4 or 8 as the dtype: short rows by fixed-size
 * moves the compiler inlines, long ones by memcpy. */
static inline void copy_row(char *d, const char *s, size_t n) {
    if (n > 256) {
        memcpy(d, s, n);
        return;
    }
    while (n >= 32) {
        memcpy(d, s, 32);
        d += 32, s += 32, n -= 32;
    }
    if (n >= 16) {
        memcpy(d, s, 16);
        d += 16, s += 16, n -= 16;
    }
    if (n >= 8) {
        memcpy(d, s, 8);
        d += 8, s += 8, n -= 8;
    }
    if (n) memcpy(d, s, n);
}

/* Rows of row bytes a block of CONCAT_BLOCK_BYTES holds (at least one). */
static int64_t rows_block(size_t row) {
    const int64_t blk = (int64_t)(CONCAT_BLOCK_BYTES / (row ? row : 1));
    return blk < 1 ? 1 : blk;
}

/* Blocks [b0, b1) of the job. */
static void concat_blocks(const struct concat_job *J, int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
        int64_t r0 = b * J->blk, r1 = r0 + J->blk < J->outer ? r0 + J->blk : J->outer;
        size_t at = 0;
        for (int i = 0; i < J->n; i++) {
            size_t len = J->len[i];
            const char *s = J->src[i] + (size_t)r0 * len;
            char *d = J->dst + (size_t)r0 * J->orow + at;
            for (int64_t r = r0; r < r1; r++, s += len, d += J->orow) copy_row(d, s, len);
            at += len;
        }
    }
}

static void concat_rows(void *dst, size_t orow, int64_t outer, struct mixrt_kernel_ctx *k, int64_t axis,
                        size_t inner_bytes) {
    const char *src[CONCAT_MAX_IN];
    size_t len[CONCAT_MAX_IN];
    int n = 0;
    for (int i = 0; i < k->n_in; i++) {
        size_t l = (size_t)k->in[i]->dims[axis] * inner_bytes;
        if (!l) continue;
        src[n] = k->in[i]->data, len[n] = l, n++;
    }
    const int64_t blk = rows_block(orow), nblk = (outer + blk - 1) / blk;
    struct concat_job J = {dst, orow, outer, blk, n, src, len};
    int nt = dm_threads_over((size_t)outer * orow, nblk, 0); /* two blocks or more (above) */
    if (nt > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++) concat_blocks(&J, nblk * t / nt, nblk * (t + 1) / nt);
    } else {
        concat_blocks(&J, 0, nblk);
    }
}

static mixrt_status concat_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x0 = mixrt_kernel_opt_input(k, 0);
    if (!fast_tensor(x0) || k->n_in < 1) return mixrt_cpu_run_reference(k);
    const struct mixrt_attr *a = mixrt_node_attr(k->node, "axis");
    if (!a && k->opset >= 4) return mixrt_cpu_run_reference(k);
    int64_t axis = a ? a->i : 1;
    if (!mixrt_norm_axis(axis, x0->rank, &axis)) return mixrt_cpu_run_reference(k);
    int64_t dims[MIXRT_MAX_RANK];
    for (int d = 0; d < x0->rank; d++) dims[d] = x0->dims[d];
    dims[axis] = 0;
    for (int i = 0; i < k->n_in; i++) {
        const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, i);
        if (!x || x->dtype != x0->dtype || x->rank != x0->rank) return mixrt_cpu_run_reference(k);
        for (int d = 0; d < x0->rank; d++)
            if (d != axis && x->dims[d] != x0->dims[d]) return mixrt_cpu_run_reference(k);
        dims[axis] += x->dims[axis];
    }
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x0->dtype, x0->rank, dims, &o); /* every column block */
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(o) == 0) return MIXRT_STATUS_OK;
    size_t es = mixrt_dtype_size(x0->dtype);
    int64_t outer = prod(dims, 0, (int)axis), inner = prod(dims, (int)axis + 1, x0->rank);
    int64_t orow = dims[axis] * inner, at = 0;
    if (outer > 1 && k->n_in <= CONCAT_MAX_IN) {
        concat_rows(o->data, (size_t)orow * es, outer, k, axis, (size_t)inner * es);
        return MIXRT_STATUS_OK;
    }
    /* input i is a [outer, d_i*inner] block copied into columns [at, at + d_i*inner) */
    for (int i = 0; i < k->n_in; i++) {
        const struct mixrt_tensor *x = k->in[i];
        struct dm_loop L = {2, {outer, x->dims[axis] * inner}, {orow, 1}, {x->dims[axis] * inner, 1}};
        dm_copy((char *)o->data + (size_t)at * es, x->data, es, &L);
        at += x->dims[axis] * inner;
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status split_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    if (!fast_tensor(x) || k->n_out < 1 || k->n_out > MIXRT_MAX_RANK * 64) return mixrt_cpu_run_reference(k);
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 0);
    if (!mixrt_norm_axis(axis, x->rank, &axis)) return mixrt_cpu_run_reference(k);
    int64_t len = x->dims[axis];
    int64_t split[MIXRT_MAX_RANK * 64];
    size_t n = 0;
    const struct mixrt_tensor *st = mixrt_kernel_opt_input(k, 1);
    bool from_input = (k->opset >= 13 || k->opset == 1) && st;
    const struct mixrt_attr *sa = k->opset < 13 ? mixrt_node_attr(k->node, "split") : NULL;
    if (from_input) {
        if (!mixrt_dtype_is_int(st->dtype) || mixrt_tensor_numel(st) != (size_t)k->n_out) return mixrt_cpu_run_reference(k);
        n = (size_t)k->n_out;
        for (size_t i = 0; i < n; i++) split[i] = mixrt_load_i64(st->data, st->dtype, i);
    } else if (sa && sa->n) {
        if (sa->n != (size_t)k->n_out) return mixrt_cpu_run_reference(k);
        n = sa->n;
        for (size_t i = 0; i < n; i++) split[i] = sa->ints[i];
    } else {
        const struct mixrt_attr *no_attr = k->opset >= 18 ? mixrt_node_attr(k->node, "num_outputs") : NULL;
        int64_t parts = no_attr ? no_attr->i : k->n_out;
        if (parts != k->n_out) return mixrt_cpu_run_reference(k);
        n = (size_t)parts;
        if (no_attr) {
            int64_t chunk = (len + parts - 1) / parts, left = len;
            for (int64_t i = 0; i < parts; i++) {
                split[i] = left < chunk ? left : chunk;
                left -= split[i];
            }
        } else {
            if (len % parts) return mixrt_cpu_run_reference(k);
            for (int64_t i = 0; i < parts; i++) split[i] = len / parts;
        }
    }
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (split[i] < 0 || split[i] > len) return mixrt_cpu_run_reference(k);
        sum += split[i];
    }
    if (sum != len) return mixrt_cpu_run_reference(k);
    size_t es = mixrt_dtype_size(x->dtype);
    int64_t outer = prod(x->dims, 0, (int)axis), inner = prod(x->dims, (int)axis + 1, x->rank), start = 0;
    int64_t dims[MIXRT_MAX_RANK];
    /* every output first (each copied whole) */
    char *dst[MIXRT_MAX_RANK * 64]; /* n_out is at most that (checked above) */
    size_t plen[MIXRT_MAX_RANK * 64];
    for (int i = 0; i < k->n_out; i++) {
        struct mixrt_tensor *o = NULL;
        for (int d = 0; d < x->rank; d++) dims[d] = x->dims[d];
        dims[axis] = split[i];
        mixrt_status status = mixrt_kernel_output_uninit(k, i, x->dtype, x->rank, dims, &o);
        if (status != MIXRT_STATUS_OK) return status;
        dst[i] = o->data, plen[i] = (size_t)(split[i] * inner) * es;
    }
    if (outer > 1) {
        /* Concat's rows the other way: each input row read once, its pieces copied by
         * fixed-size moves (a channels-last split of short rows per pixel, merge_conv's: 32 to
         * 256 bytes a piece, took one memcpy call a piece through dm_copy; GoogLeNet's 28x28
         * ones 43-46 -> 19-30 us). */
        const size_t irow = (size_t)(len * inner) * es;
        const int64_t blk = rows_block(irow), nblk = (outer + blk - 1) / blk;
        const int nt = dm_threads_over((size_t)outer * irow, nblk, 0); /* two blocks or more, as Concat */
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
        for (int t = 0; t < nt; t++)
            for (int64_t r = outer * t / nt; r < outer * (t + 1) / nt; r++) {
                const char *src = (const char *)x->data + (size_t)r * irow;
                for (int i = 0; i < k->n_out; i++) {
                    copy_row(dst[i] + (size_t)r * plen[i], src, plen[i]);
                    src += plen[i];
                }
            }
        return MIXRT_STATUS_OK;
    }
    for (int i = 0; i < k->n_out; i++) {
        if (plen[i]) memcpy(dst[i], (const char *)x->data + (size_t)(start * inner) * es, plen[i]);
        start += split[i];
    }
    return MIXRT_STATUS_OK;
}

/* ---- Slice, Expand, Tile --------------------------------------------------------------------- */

static mixrt_status read_ints_input(struct mixrt_kernel_ctx *k, int i, int64_t *v, size_t max, size_t *n) {
    const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
    if (!t || !mixrt_dtype_is_int(t->dtype) || mixrt_tensor_numel(t) > max) return MIXRT_STATUS_INVALID_MODEL;
    *n = mixrt_tensor_numel(t);
    for (size_t j = 0; j < *n; j++) v[j] = mixrt_load_i64(t->data, t->dtype, j);
    return MIXRT_STATUS_OK;
}

static mixrt_status slice_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    if (!fast_tensor(x)) return mixrt_cpu_run_reference(k);
    int64_t starts[MIXRT_MAX_RANK], ends[MIXRT_MAX_RANK], axes[MIXRT_MAX_RANK], steps[MIXRT_MAX_RANK];
    size_t ns = 0, ne = 0, na = 0, nt = 0;
    bool have_axes = false;
    if (k->opset < 10) {
        const struct mixrt_attr *as = mixrt_node_attr(k->node, "starts"), *ae = mixrt_node_attr(k->node, "ends"),
                                *aa = mixrt_node_attr(k->node, "axes");
        if (!as || !ae || as->n > MIXRT_MAX_RANK || ae->n > MIXRT_MAX_RANK || (aa && aa->n > MIXRT_MAX_RANK))
            return mixrt_cpu_run_reference(k);
        ns = as->n, ne = ae->n;
        for (size_t i = 0; i < ns; i++) starts[i] = as->ints[i];
        for (size_t i = 0; i < ne; i++) ends[i] = ae->ints[i];
        if (aa) {
            na = aa->n, have_axes = true;
            for (size_t i = 0; i < na; i++) axes[i] = aa->ints[i];
        }
    } else {
        if (read_ints_input(k, 1, starts, MIXRT_MAX_RANK, &ns) || read_ints_input(k, 2, ends, MIXRT_MAX_RANK, &ne))
            return mixrt_cpu_run_reference(k);
        if (mixrt_kernel_opt_input(k, 3)) {
            if (read_ints_input(k, 3, axes, MIXRT_MAX_RANK, &na)) return mixrt_cpu_run_reference(k);
            have_axes = true;
        }
        if (mixrt_kernel_opt_input(k, 4) && (read_ints_input(k, 4, steps, MIXRT_MAX_RANK, &nt) || nt != ns))
            return mixrt_cpu_run_reference(k);
    }
    if (ne != ns) return mixrt_cpu_run_reference(k);
    if (!have_axes) {
        na = ns;
        for (size_t i = 0; i < na; i++) axes[i] = (int64_t)i;
    }
    if (na != ns) return mixrt_cpu_run_reference(k);
    if (!nt)
        for (size_t i = 0; i < ns; i++) steps[i] = 1;
    bool seen[MIXRT_MAX_RANK] = {false};
    for (size_t i = 0; i < na; i++) {
        if (!mixrt_norm_axis(axes[i], x->rank, &axes[i]) || seen[axes[i]] || steps[i] == 0) return mixrt_cpu_run_reference(k);
        seen[axes[i]] = true;
    }
    struct dm_loop L;
    int64_t st[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK], base = 0;
    row_strides(x->rank, x->dims, st);
    L.r = x->rank;
    for (int d = 0; d < x->rank; d++) dims[d] = x->dims[d], L.ss[d] = st[d];
    for (size_t i = 0; i < ns; i++) {
        int64_t d = axes[i], dim = x->dims[d], step = steps[i], s = starts[i], e = ends[i], cnt;
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (step > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            cnt = e > s ? (int64_t)((uint64_t)(e - s - 1) / (uint64_t)step) + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            cnt = dim > 0 && s > e ? (int64_t)((uint64_t)(s - e - 1) / ((uint64_t)0 - (uint64_t)step)) + 1 : 0;
        }
        dims[d] = cnt;
        if (cnt > 0) base += s * st[d];
        L.ss[d] = cnt > 1 ? st[d] * step : 0;
    }
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, dims, &o); /* copied whole */
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(o) == 0) return MIXRT_STATUS_OK;
    size_t es = mixrt_dtype_size(x->dtype);
    for (int d = 0; d < x->rank; d++) L.d[d] = dims[d];
    row_strides(x->rank, dims, L.ds);
    dm_copy(o->data, (const char *)x->data + (size_t)base * es, es, &L);
    return MIXRT_STATUS_OK;
}

static mixrt_status expand_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    int64_t shape[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK];
    size_t n = 0;
    int r;
    if (!fast_tensor(x) || read_ints_input(k, 1, shape, MIXRT_MAX_RANK, &n)) return mixrt_cpu_run_reference(k);
    for (size_t i = 0; i < n; i++)
        if (shape[i] < 0) return mixrt_cpu_run_reference(k);
    if (!mixrt_broadcast_shape(x->rank, x->dims, (int)n, shape, &r, dims)) return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, r, dims, &o); /* copied whole */
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(o) == 0) return MIXRT_STATUS_OK;
    struct dm_loop L;
    L.r = r;
    for (int d = 0; d < r; d++) L.d[d] = dims[d];
    mixrt_broadcast_strides(x->rank, x->dims, r, dims, L.ss);
    row_strides(r, dims, L.ds);
    dm_copy(o->data, x->data, mixrt_dtype_size(x->dtype), &L);
    return MIXRT_STATUS_OK;
}

static mixrt_status tile_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    int64_t rep[MIXRT_MAX_RANK], dims[MIXRT_MAX_RANK], ist[MIXRT_MAX_RANK];
    size_t n = 0;
    if (!fast_tensor(x) || k->opset < 6 || read_ints_input(k, 1, rep, MIXRT_MAX_RANK, &n) || (int)n != x->rank)
        return mixrt_cpu_run_reference(k);
    for (int i = 0; i < x->rank; i++) {
        if (rep[i] < 0 || (x->dims[i] && rep[i] > INT64_MAX / x->dims[i])) return mixrt_cpu_run_reference(k);
        dims[i] = x->dims[i] * rep[i];
    }
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, dims, &o); /* copied whole */
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(o) == 0) return MIXRT_STATUS_OK;
    /* the output as [rep0, d0, rep1, d1, ...]: the repeat dims read with stride 0 */
    struct dm_loop L;
    int64_t vd[2 * MIXRT_MAX_RANK];
    row_strides(x->rank, x->dims, ist);
    L.r = 2 * x->rank;
    for (int i = 0; i < x->rank; i++) {
        vd[2 * i] = L.d[2 * i] = rep[i], L.ss[2 * i] = 0;
        vd[2 * i + 1] = L.d[2 * i + 1] = x->dims[i], L.ss[2 * i + 1] = ist[i];
    }
    row_strides(L.r, vd, L.ds);
    dm_copy(o->data, x->data, mixrt_dtype_size(x->dtype), &L);
    return MIXRT_STATUS_OK;
}

/* ---- broadcast walks (Where, And / Or / Xor) ------------------------------------------------------ */

/* k operands (k <= 3) broadcast to dims d of rank r, walked span by span: dims of 1 dropped and
 * neighbours every operand steps through alike merged (m >= 1 dims left, the last one the
 * span); off[] are the operands' element offsets of the current span, span[] their strides in it. */
struct bcast_walk {
    int m, k;
    int64_t d[MIXRT_MAX_RANK], s[3][MIXRT_MAX_RANK], ctr[MIXRT_MAX_RANK], off[3], span[3];
};

static void bcast_walk_init(struct bcast_walk *W, int r, const int64_t *d, int k, const struct mixrt_tensor *const *in) {
    int64_t s[3][MIXRT_MAX_RANK];
    for (int j = 0; j < k; j++) mixrt_broadcast_strides(in[j]->rank, in[j]->dims, r, d, s[j]);
    W->m = 0, W->k = k;
    for (int i = 0; i < r; i++) {
        if (d[i] == 1) continue;
        bool merge = W->m > 0;
        for (int j = 0; j < k && merge; j++) merge = W->s[j][W->m - 1] == s[j][i] * d[i];
        int t = merge ? W->m - 1 : W->m++;
        W->d[t] = merge ? W->d[t] * d[i] : d[i];
        for (int j = 0; j < k; j++) W->s[j][t] = s[j][i];
    }
    if (W->m == 0) {
        W->m = 1, W->d[0] = 1;
        for (int j = 0; j < k; j++) W->s[j][0] = 0;
    }
    for (int i = 0; i < W->m; i++) W->ctr[i] = 0;
    for (int j = 0; j < k; j++) W->off[j] = 0, W->span[j] = W->s[j][W->m - 1];
}

static void bcast_walk_next(struct bcast_walk *W) {
    for (int i = W->m - 2; i >= 0; i--) {
        for (int j = 0; j < W->k; j++) W->off[j] += W->s[j][i];
        if (++W->ctr[i] < W->d[i]) return;
        for (int j = 0; j < W->k; j++) W->off[j] -= W->s[j][i] * W->d[i];
        W->ctr[i] = 0;
    }
}

/* ---- Where ------------------------------------------------------------------------------------- */

/* Both values loaded before the select (no branch on the condition: a random mask
 * mispredicted half of them, 4 ns an element), one loop per stride pattern so each
 * vectorizes; a broadcast operand (stride 0) is read once. */
#define WHERE_SEL(T, XI, YI)                                                                                           \
    for (int64_t i = 0; i < n; i++) {                                                                                  \
        T a = xa[XI], b = ya[YI];                                                                                      \
        oa[i] = cp[i] ? a : b;                                                                                         \
    }
#define WHERE_LOOP(T)                                                                                                  \
    do {                                                                                                               \
        const T *xa = (const T *)xp, *ya = (const T *)yp;                                                              \
        T *oa = (T *)op;                                                                                               \
        if (sc == 1 && sx == 1 && sy == 1) {                                                                           \
            WHERE_SEL(T, i, i)                                                                                         \
        } else if (sc == 1 && sx == 1 && sy == 0) {                                                                    \
            WHERE_SEL(T, i, 0)                                                                                         \
        } else if (sc == 1 && sx == 0 && sy == 1) {                                                                    \
            WHERE_SEL(T, 0, i)                                                                                         \
        } else if (sc == 1 && sx == 0 && sy == 0) {                                                                    \
            WHERE_SEL(T, 0, 0)                                                                                         \
        } else {                                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                                          \
                T a = xa[i * sx], b = ya[i * sy];                                                                      \
                oa[i] = cp[i * sc] ? a : b;                                                                            \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

static void where_span(size_t es, const uint8_t *cp, int64_t sc, const char *xp, int64_t sx, const char *yp,
                       int64_t sy, char *op, int64_t n) {
    switch (es) {
    case 1: WHERE_LOOP(uint8_t); break;
    case 2: WHERE_LOOP(uint16_t); break;
    case 4: WHERE_LOOP(uint32_t); break;
    default: WHERE_LOOP(uint64_t); break;
    }
}

static mixrt_status where_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *c = mixrt_kernel_opt_input(k, 0), *x = mixrt_kernel_opt_input(k, 1),
                              *y = mixrt_kernel_opt_input(k, 2);
    int r1, r;
    int64_t d1[MIXRT_MAX_RANK], d[MIXRT_MAX_RANK];
    if (!c || c->dtype != MIXRT_DTYPE_BOOL || !fast_tensor(x) || !y || y->dtype != x->dtype ||
        !mixrt_broadcast_shape(c->rank, c->dims, x->rank, x->dims, &r1, d1) ||
        !mixrt_broadcast_shape(r1, d1, y->rank, y->dims, &r, d))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output(k, 0, x->dtype, r, d, &o);
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(o) == 0) return MIXRT_STATUS_OK;
    const struct mixrt_tensor *in[3] = {c, x, y};
    struct bcast_walk W;
    bcast_walk_init(&W, r, d, 3, in);
    size_t es = mixrt_dtype_size(x->dtype);
    int64_t inner = W.d[W.m - 1], outer = prod(W.d, 0, W.m - 1);
    for (int64_t b = 0; b < outer; b++, bcast_walk_next(&W)) {
        const int64_t *off = W.off, *sp = W.span;
        where_span(es, (const uint8_t *)c->data + off[0], sp[0], (const char *)x->data + (size_t)off[1] * es, sp[1],
                   (const char *)y->data + (size_t)off[2] * es, sp[2], (char *)o->data + (size_t)(b * inner) * es,
                   inner);
    }
    return MIXRT_STATUS_OK;
}

/* ---- And / Or / Xor on bool tensors -------------------------------------------------------------- */

/* The boolean ops of an exported attention mask (torch: causal And padding over [B,1,S,S]),
 * numpy broadcasting (a bcast_walk, as Where); every nonzero byte reads as true. */
static bool logic_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (strcmp(n->domain, "") || n->opset < 7 || n->n_inputs != 2 || n->n_outputs != 1)
        return no(why, why_size, "%s: no data-movement kernel at this opset", n->op_type);
    const struct mixrt_value *a = in_value(g, n, 0), *b = in_value(g, n, 1);
    if (!plain(a) || !plain(b) || a->dtype != MIXRT_DTYPE_BOOL || b->dtype != MIXRT_DTYPE_BOOL)
        return no(why, why_size, "%s", "two plain bool inputs only");
    return plain(&g->values[n->outputs[0]]);
}

static void logic_span(char op, const uint8_t *a, int64_t sa, const uint8_t *b, int64_t sb, uint8_t *o, int64_t n) {
    if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; i++) {
            uint8_t x = a[i] != 0, y = b[i] != 0;
            o[i] = op == 'A' ? x & y : op == 'O' ? x | y : x ^ y;
        }
        return;
    }
    if ((sa == 0 && sb == 1) || (sa == 1 && sb == 0)) { /* a row against one value (commutative ops) */
        const uint8_t *row = sa ? a : b;
        uint8_t c = (sa ? b[0] : a[0]) != 0;
        for (int64_t i = 0; i < n; i++) {
            uint8_t x = row[i] != 0;
            o[i] = op == 'A' ? x & c : op == 'O' ? x | c : x ^ c;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint8_t x = a[i * sa] != 0, y = b[i * sb] != 0;
        o[i] = op == 'A' ? x & y : op == 'O' ? x | y : x ^ y;
    }
}

static mixrt_status logic_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *a = mixrt_kernel_opt_input(k, 0), *b = mixrt_kernel_opt_input(k, 1);
    int r;
    int64_t d[MIXRT_MAX_RANK];
    if (!a || !b || a->dtype != MIXRT_DTYPE_BOOL || b->dtype != MIXRT_DTYPE_BOOL ||
        !mixrt_broadcast_shape(a->rank, a->dims, b->rank, b->dims, &r, d))
        return mixrt_cpu_run_reference(k);
    char op = k->node->op_type[0]; /* 'A'nd, 'O'r, 'X'or */
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output(k, 0, MIXRT_DTYPE_BOOL, r, d, &o);
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(o) == 0) return MIXRT_STATUS_OK;
    const struct mixrt_tensor *in[2] = {a, b};
    struct bcast_walk W;
    bcast_walk_init(&W, r, d, 2, in);
    int64_t inner = W.d[W.m - 1], outer = prod(W.d, 0, W.m - 1);
    for (int64_t i = 0; i < outer; i++, bcast_walk_next(&W))
        logic_span(op, (const uint8_t *)a->data + W.off[0], W.span[0], (const uint8_t *)b->data + W.off[1], W.span[1],
                   (uint8_t *)o->data + i * inner, inner);
    return MIXRT_STATUS_OK;
}

/* ---- Pad (constant) --------------------------------------------------------------------------- */

static mixrt_status pad_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    if (!fast_tensor(x) || strcmp(mixrt_node_attr_string(k->node, "mode", "constant"), "constant")) return mixrt_cpu_run_reference(k);
    int r = x->rank;
    int64_t pads[2 * MIXRT_MAX_RANK], axes[MIXRT_MAX_RANK], beg[MIXRT_MAX_RANK] = {0}, end[MIXRT_MAX_RANK] = {0};
    size_t np = 0, na = (size_t)r;
    size_t es = mixrt_dtype_size(x->dtype);
    unsigned char fill[8] = {0};
    for (int i = 0; i < r; i++) axes[i] = i;
    if (k->opset < 11) {
        const struct mixrt_attr *a = mixrt_node_attr(k->node, k->opset < 2 ? "paddings" : "pads");
        if (!a || a->n > 2 * MIXRT_MAX_RANK) return mixrt_cpu_run_reference(k);
        np = a->n;
        for (size_t i = 0; i < np; i++) pads[i] = a->ints[i];
        double v = mixrt_node_attr_float(k->node, "value", 0.0f);
        mixrt_store_f64(fill, x->dtype, 0, v);
    } else {
        if (read_ints_input(k, 1, pads, 2 * MIXRT_MAX_RANK, &np)) return mixrt_cpu_run_reference(k);
        const struct mixrt_tensor *cv = mixrt_kernel_opt_input(k, 2);
        if (cv && cv->dtype != x->dtype) return mixrt_cpu_run_reference(k);
        if (cv && mixrt_tensor_numel(cv)) memcpy(fill, cv->data, es);
        if (k->opset >= 18 && mixrt_kernel_opt_input(k, 3)) {
            bool seen[MIXRT_MAX_RANK] = {false};
            if (read_ints_input(k, 3, axes, MIXRT_MAX_RANK, &na)) return mixrt_cpu_run_reference(k);
            for (size_t i = 0; i < na; i++) {
                if (!mixrt_norm_axis(axes[i], r, &axes[i]) || seen[axes[i]]) return mixrt_cpu_run_reference(k);
                seen[axes[i]] = true;
            }
        }
    }
    if (np != 2 * na) return mixrt_cpu_run_reference(k);
    for (size_t i = 0; i < na; i++) beg[axes[i]] = pads[i], end[axes[i]] = pads[na + i];
    int64_t dims[MIXRT_MAX_RANK], ist[MIXRT_MAX_RANK], base = 0, obase = 0;
    struct dm_loop L;
    L.r = r;
    row_strides(r, x->dims, ist);
    for (int d = 0; d < r; d++) {
        int64_t dim = x->dims[d];
        if (beg[d] < -dim || end[d] < -dim || beg[d] > ((int64_t)1 << 40) || end[d] > ((int64_t)1 << 40) ||
            dim + beg[d] + end[d] < 0)
            return mixrt_cpu_run_reference(k);
        dims[d] = dim + beg[d] + end[d];
        /* the kept input range [lo, hi) lands at output position lo + beg */
        int64_t lo = beg[d] < 0 ? -beg[d] : 0, hi = dim - (end[d] < 0 ? -end[d] : 0);
        L.d[d] = hi > lo ? hi - lo : 0;
        L.ss[d] = ist[d];
        base += lo * ist[d];
    }
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, r, dims, &o); /* filled whole below */
    if (status != MIXRT_STATUS_OK) return status;
    size_t n = mixrt_tensor_numel(o);
    if (n == 0) return MIXRT_STATUS_OK;
    row_strides(r, dims, L.ds);
    for (int d = 0; d < r; d++) obase += (beg[d] > 0 ? beg[d] : 0) * L.ds[d];
    bool zero = true;
    for (size_t i = 0; i < es; i++) zero &= fill[i] == 0;
    if (zero) memset(o->data, 0, n * es);
    else fill_elems(o->data, (const char *)fill, es, (int64_t)n);
    dm_copy((char *)o->data + (size_t)obase * es, (const char *)x->data + (size_t)base * es, es, &L);
    return MIXRT_STATUS_OK;
}

/* ---- Resize (nearest, linear; 4-D) --------------------------------------------------------------
 * Per axis, each output coordinate maps to at most two input taps, built as the reference does
 * (onnx's resize.py: taps start at floor(x) - 1 + 1, clamped to [-1, len-1], zero weights
 * dropped, indices clamped into the axis); linear sums in f64 over the taps in the reference's
 * order with the weight product formed in its order, so results round identically. */

enum rz_coord { RZ_HALF_PIXEL, RZ_HALF_PIXEL_SYM, RZ_PYTORCH, RZ_ALIGN, RZ_ASYM, RZ_TF_NN };
enum rz_nearest { RZ_PREFER_FLOOR, RZ_PREFER_CEIL, RZ_FLOOR, RZ_CEIL };

struct rz_params {
    bool linear;
    enum rz_coord coord;
    enum rz_nearest nearest;
};

/* Reads the node's attributes; false when the fast path does not cover them. */
static bool rz_params_get(const struct mixrt_node *n, struct rz_params *p, const char **bad) {
    const char *m = mixrt_node_attr_string(n, "mode", "nearest");
    const char *ct = mixrt_node_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    const char *nm = mixrt_node_attr_string(n, "nearest_mode", "round_prefer_floor");
    *bad = NULL;
    if (!strcmp(m, "nearest")) p->linear = false;
    else if (!strcmp(m, "linear")) p->linear = true;
    else return *bad = "mode", false;
    static const char *const coords[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                         "align_corners", "asymmetric", "tf_half_pixel_for_nn"};
    int c = -1;
    for (int i = 0; i < 6; i++)
        if (!strcmp(ct, coords[i])) c = i;
    if (c < 0) return *bad = "coordinate_transformation_mode", false;
    p->coord = (enum rz_coord)c;
    static const char *const nears[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    int q = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(nm, nears[i])) q = i;
    if (q < 0) return *bad = "nearest_mode", false;
    p->nearest = (enum rz_nearest)q;
    if (mixrt_node_attr_int(n, "exclude_outside", 0) != 0) return *bad = "exclude_outside", false;
    if (n->opset >= 18) {
        if (mixrt_node_attr_int(n, "antialias", 0) != 0) return *bad = "antialias", false;
        if (mixrt_node_attr(n, "axes")) return *bad = "axes", false;
        if (strcmp(mixrt_node_attr_string(n, "keep_aspect_ratio_policy", "stretch"), "stretch"))
            return *bad = "keep_aspect_ratio_policy", false;
    }
    return true;
}

static bool rz_float(mixrt_dtype dt) {
    return dt == MIXRT_DTYPE_F32 || dt == MIXRT_DTYPE_BF16 || dt == MIXRT_DTYPE_F16 || dt == MIXRT_DTYPE_F64;
}

bool mixrt_resize_supports(const struct mixrt_graph *g, const struct mixrt_node *n, bool linear_only, char *why,
                           size_t why_size) {
    if (!common_supports(g, n, 11, why, why_size) || !const_inputs(g, n, 2, 4, why, why_size)) return false;
    const struct mixrt_value *x = in_value(g, n, 0);
    if (x->rank >= 0 && x->rank != 4) return no(why, why_size, "%s", "Resize input not 4-D");
    struct rz_params p;
    const char *bad;
    if (!rz_params_get(n, &p, &bad)) return no(why, why_size, "Resize attribute '%s' outside the fast path", bad);
    if (linear_only && !p.linear) return no(why, why_size, "%s", "Resize mode not linear");
    if (p.linear && !rz_float(x->dtype)) return no(why, why_size, "Resize linear on %s", mixrt_dtype_name(x->dtype));
    return true;
}

int mixrt_resize_mode(const struct mixrt_node *n) {
    struct rz_params p;
    const char *bad;
    return rz_params_get(n, &p, &bad) ? (int)p.linear : -1;
}

static bool resize_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return mixrt_resize_supports(g, n, false, why, why_size);
}

struct rz_axis {
    int64_t idx[2]; /* per output coordinate: [x*2 + t] */
    double w[2];
    int cnt;
};

/* Taps of output coordinate x of an axis of in_len inputs, out_len outputs, scale s. */
static void rz_taps(const struct rz_params *p, int64_t in_len, int64_t out_len, double s, int64_t x,
                    struct rz_axis *a) {
    double xo, xd = (double)x, out_f = s * (double)in_len;
    switch (p->coord) {
    case RZ_HALF_PIXEL: xo = (xd + 0.5) / s - 0.5; break;
    case RZ_HALF_PIXEL_SYM: {
        double adj = (double)out_len / out_f, center = (double)in_len / 2;
        xo = center * (1 - adj) + (xd + 0.5) / s - 0.5;
        break;
    }
    case RZ_PYTORCH: xo = out_f == 1 ? -0.5 : (xd + 0.5) / s - 0.5; break;
    case RZ_ALIGN: xo = out_f == 1 ? 0 : xd * (double)(in_len - 1) / (out_f - 1); break;
    case RZ_ASYM: xo = xd / s; break;
    default: xo = (xd + 0.5) / s; break;
    }
    if (!isfinite(xo)) xo = 0;
    if (xo > 4e18) xo = 4e18;
    if (xo < -4e18) xo = -4e18;
    double fl = floor(xo), ratio = xo == fl ? 1.0 : xo - fl, c[2];
    int64_t start = (int64_t)fl - (xo == fl ? 1 : 0); /* ratio 1: the lower neighbour is x-1 */
    if (p->linear) {
        c[0] = 1 - ratio, c[1] = ratio;
    } else {
        bool second;
        if (ratio == 1.0) second = true;
        else if (p->nearest == RZ_PREFER_FLOOR) second = ratio > 0.5;
        else if (p->nearest == RZ_PREFER_CEIL) second = ratio >= 0.5;
        else second = p->nearest == RZ_CEIL;
        c[0] = second ? 0 : 1, c[1] = second ? 1 : 0;
    }
    if (start < -1) start = -1;
    if (start > in_len - 1) start = in_len - 1;
    a->cnt = 0;
    for (int t = 0; t < 2; t++) {
        int64_t i = start + t;
        if (c[t] == 0) continue;
        a->idx[a->cnt] = i < 0 ? 0 : i >= in_len ? in_len - 1 : i;
        a->w[a->cnt] = c[t];
        a->cnt++;
    }
}

bool mixrt_resize_geometry(const struct mixrt_node *n, const int64_t *xd, const struct mixrt_tensor *tsc,
                           const struct mixrt_tensor *tsz, int64_t *od, double *sc) {
    struct rz_params p;
    const char *bad;
    if (!rz_params_get(n, &p, &bad) || n->opset < 11) return false;
    if (tsc && mixrt_tensor_numel(tsc) == 0) tsc = NULL;
    if (tsz && mixrt_tensor_numel(tsz) == 0) tsz = NULL;
    if (!tsc == !tsz) return false;
    if (tsc) {
        if (!mixrt_dtype_is_float(tsc->dtype) || mixrt_tensor_numel(tsc) != 4) return false;
        for (int d = 0; d < 4; d++) {
            sc[d] = mixrt_load_f64(tsc->data, tsc->dtype, (size_t)d);
            double v = sc[d] * (double)xd[d];
            if (!(sc[d] > 0) || !(v < 9e15)) return false;
            od[d] = (int64_t)floor(v);
        }
    } else {
        if (!mixrt_dtype_is_int(tsz->dtype) || mixrt_tensor_numel(tsz) != 4) return false;
        for (int d = 0; d < 4; d++) {
            od[d] = mixrt_load_i64(tsz->data, tsz->dtype, (size_t)d);
            if (od[d] < 0 || od[d] > ((int64_t)1 << 40)) return false;
            sc[d] = xd[d] ? (double)od[d] / (double)xd[d] : 1;
        }
    }
    return true;
}

void mixrt_resize_axis_taps(const struct mixrt_node *n, int64_t in_len, int64_t out_len, double scale, int64_t x,
                            int64_t idx[2], double w[2], int *cnt) {
    struct rz_params p;
    const char *bad;
    struct rz_axis a = {{0, 0}, {0, 0}, 0};
    if (rz_params_get(n, &p, &bad)) rz_taps(&p, in_len, out_len, scale, x, &a);
    idx[0] = a.idx[0], idx[1] = a.idx[1], w[0] = a.w[0], w[1] = a.w[1], *cnt = a.cnt;
}

static double rz_load(const void *x, mixrt_dtype dt, int64_t i) {
    switch (dt) {
    case MIXRT_DTYPE_F32: return ((const float *)x)[i];
    case MIXRT_DTYPE_F64: return ((const double *)x)[i];
    case MIXRT_DTYPE_BF16: {
        uint32_t b = (uint32_t)((const uint16_t *)x)[i] << 16;
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    default: return mixrt_load_f64(x, dt, (size_t)i);
    }
}

/* One output row of a resize whose N and C are not resized: per output column w, the taps of
 * ah (rows base + idx * s2) and aw[w], summed in f64 in the reference's order; into f32 y
 * (rounded once) or, y NULL, the sums into acc. Inlined with a constant dt at each call. */
static inline __attribute__((always_inline)) void rz_row(const void *src, mixrt_dtype dt, int64_t base, int64_t s2,
                                                        const struct rz_axis *ah, const struct rz_axis *aw, int64_t W,
                                                        float *y, double *acc) {
    for (int64_t w = 0; w < W; w++) {
        double a = 0;
        for (int th = 0; th < ah->cnt; th++) {
            const int64_t r = base + ah->idx[th] * s2;
            const double w3 = ah->w[th];
            for (int tw = 0; tw < aw[w].cnt; tw++) a += w3 * aw[w].w[tw] * rz_load(src, dt, r + aw[w].idx[tw]);
        }
        if (y) y[w] = (float)a;
        else acc[w] = a;
    }
}

/* f64 sums to a 16-bit float with the one rounding mixrt_convert gives (RNE from the f64),
 * fast: each sum to f32 rounded to odd (truncated, the last bit set when inexact), then the
 * vector f32 -> 16-bit RNE. Rounding to odd first keeps a double rounding exact when the
 * middle format has 2+ more bits than the last (f32 has 16+ over bf16 and f16 in their
 * ranges). f holds n floats of scratch. */
static void rz_round16(void *dst, mixrt_dtype dt, const double *acc, float *f, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = (float)acc[i];
        if ((double)v != acc[i] && acc[i] == acc[i]) {
            uint32_t u;
            memcpy(&u, &v, 4);
            if (fabs((double)v) > fabs(acc[i])) u--; /* rounded away from 0 (so |v| > 0): one step back */
            u |= 1u;
            memcpy(&v, &u, 4);
        }
        f[i] = v;
    }
    mixrt_convert(dst, dt, f, MIXRT_DTYPE_F32, (size_t)n);
}

static mixrt_status resize_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    struct rz_params p;
    const char *bad;
    if (!fast_tensor(x) || x->rank != 4 || k->opset < 11 || !rz_params_get(k->node, &p, &bad) ||
        (p.linear && !rz_float(x->dtype)))
        return mixrt_cpu_run_reference(k);
    double sc[4];
    int64_t od[4];
    if (!mixrt_resize_geometry(k->node, x->dims, mixrt_kernel_opt_input(k, 2), mixrt_kernel_opt_input(k, 3), od, sc))
        return mixrt_cpu_run_reference(k);
    size_t nout = 1;
    for (int d = 0; d < 4; d++) nout *= (size_t)od[d];
    if (nout && mixrt_tensor_numel(x) == 0) return mixrt_cpu_run_reference(k); /* the reference's error */
    /* the tap tables, one allocation: the axes one after the other */
    size_t total = (size_t)(od[0] + od[1] + od[2] + od[3]);
    struct rz_axis *tab = NULL;
    double *rowbuf = NULL; /* see rows16 below */
    int nt = 1;
    if (nout) {
        tab = mixrt_alloc(k->ctx, total * sizeof(*tab));
        if (!tab) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the resize tables");
    }
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output(k, 0, x->dtype, 4, od, &o);
    if (status != MIXRT_STATUS_OK || !nout) goto fail;
    struct rz_axis *ax[4];
    ax[0] = tab;
    for (int d = 1; d < 4; d++) ax[d] = ax[d - 1] + od[d - 1];
    for (int d = 0; d < 4; d++)
        for (int64_t i = 0; i < od[d]; i++) rz_taps(&p, x->dims[d], od[d], sc[d], i, &ax[d][i]);
    int64_t st[4], W = od[3];
    row_strides(4, x->dims, st);
    size_t es = mixrt_dtype_size(x->dtype);
    int64_t planes = od[0] * od[1];
    nt = dm_threads(nout * es * (p.linear ? 4 : 1), planes);
    const char *src = x->data;
    char *dst = o->data;
    /* 16-bit outputs: a row of f64 sums per thread, rounded per row (rz_round16: exactly
     * the per-element store's rounding, at a fraction of its cost: LR-ASPP's two bf16
     * upsamplings took 14.4 ms against 1.7 in f32) */
    bool rows16 = p.linear && x->dtype != MIXRT_DTYPE_F32 && x->dtype != MIXRT_DTYPE_F64;
    if (rows16) {
        rowbuf = mixrt_alloc(k->ctx, (size_t)nt * (size_t)W * (sizeof(double) + sizeof(float)));
        if (!rowbuf) {
            status = mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the resize rows");
            goto fail;
        }
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int64_t pl = 0; pl < planes; pl++) {
#ifdef _OPENMP
        double *rb = rows16 ? rowbuf + (size_t)omp_get_thread_num() * (size_t)W : NULL;
#else
        double *rb = rowbuf;
#endif
        float *rf = rows16 ? (float *)(rowbuf + (size_t)nt * (size_t)W) + (rb - rowbuf) : NULL;
        const struct rz_axis *an = &ax[0][pl / od[1]], *ac = &ax[1][pl % od[1]];
        for (int64_t h = 0; h < od[2]; h++) {
            const struct rz_axis *ah = &ax[2][h];
            size_t orow = (size_t)((pl * od[2] + h) * W);
            if (!p.linear) { /* one tap per axis */
                const char *s = src + (size_t)(an->idx[0] * st[0] + ac->idx[0] * st[1] + ah->idx[0] * st[2]) * es;
                char *d = dst + orow * es;
                switch (es) {
                case 1:
                    for (int64_t w = 0; w < W; w++) d[w] = s[ax[3][w].idx[0]];
                    break;
                case 2:
                    for (int64_t w = 0; w < W; w++) ((uint16_t *)d)[w] = ((const uint16_t *)s)[ax[3][w].idx[0]];
                    break;
                case 4:
                    for (int64_t w = 0; w < W; w++) ((uint32_t *)d)[w] = ((const uint32_t *)s)[ax[3][w].idx[0]];
                    break;
                default:
                    for (int64_t w = 0; w < W; w++) ((uint64_t *)d)[w] = ((const uint64_t *)s)[ax[3][w].idx[0]];
                    break;
                }
                continue;
            }
            if ((x->dtype == MIXRT_DTYPE_F32 || rows16) && an->cnt == 1 && ac->cnt == 1 && an->w[0] == 1.0 &&
                ac->w[0] == 1.0) {
                /* N and C not resized (an image upsampled): the same sums in the same order
                 * (w3 = 1 * 1 * wh exactly), without the generic tap loops */
                const int64_t base = an->idx[0] * st[0] + ac->idx[0] * st[1];
                /* one copy per dtype, its loads inlined (a dtype switch per tap ran 2.5x slower) */
                if (x->dtype == MIXRT_DTYPE_F32)
                    rz_row(src, MIXRT_DTYPE_F32, base, st[2], ah, ax[3], W, (float *)dst + orow, NULL);
                else if (x->dtype == MIXRT_DTYPE_BF16)
                    rz_row(src, MIXRT_DTYPE_BF16, base, st[2], ah, ax[3], W, NULL, rb);
                else
                    rz_row(src, x->dtype, base, st[2], ah, ax[3], W, NULL, rb);
                if (rows16) rz_round16(dst + orow * es, x->dtype, rb, rf, W);
                continue;
            }
            for (int64_t w = 0; w < W; w++) {
                const struct rz_axis *aw = &ax[3][w];
                double acc = 0;
                for (int tn = 0; tn < an->cnt; tn++)
                    for (int tc = 0; tc < ac->cnt; tc++)
                        for (int th = 0; th < ah->cnt; th++) {
                            double w3 = an->w[tn] * ac->w[tc] * ah->w[th];
                            int64_t off = an->idx[tn] * st[0] + ac->idx[tc] * st[1] + ah->idx[th] * st[2];
                            for (int tw = 0; tw < aw->cnt; tw++)
                                acc += w3 * aw->w[tw] * rz_load(src, x->dtype, off + aw->idx[tw]);
                        }
                if (x->dtype == MIXRT_DTYPE_F32) ((float *)dst)[orow + (size_t)w] = (float)acc;
                else if (x->dtype == MIXRT_DTYPE_F64) ((double *)dst)[orow + (size_t)w] = acc;
                else rb[w] = acc;
            }
            if (rows16) rz_round16(dst + orow * es, x->dtype, rb, rf, W);
        }
    }
fail:
    if (rowbuf) mixrt_free(k->ctx, rowbuf, (size_t)nt * (size_t)W * (sizeof(double) + sizeof(float)));
    if (tab) mixrt_free(k->ctx, tab, total * sizeof(*tab));
    return status;
}

/* ---- DepthToSpace ----------------------------------------------------------------------------
 * ConvTranspose with kernel == stride becomes a 1x1 convolution and this (passes.c), channels-last
 * in a layout region (fuse_conv.c). */

/* Attributes and rank for both layouts (the reference names what is wrong otherwise). */
static bool d2s_check(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const char *mode = mixrt_node_attr_string(n, "mode", "DCR");
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD")) return no(why, why_size, "DepthToSpace mode '%s'", mode);
    const struct mixrt_value *x = in_value(g, n, 0);
    if (x->rank >= 0 && x->rank != 4) return no(why, why_size, "%s", "DepthToSpace input not 4-D");
    return true;
}

static bool d2s_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return common_supports(g, n, 1, why, why_size) && d2s_check(g, n, why, why_size);
}

/* The channels-last one of the layout pass (fuse_conv.c), com.mixrt's. */
static bool d2s_last_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const struct mixrt_value *x = in_value(g, n, 0);
    if (strcmp(n->domain, MIXRT_DOMAIN) || n->n_outputs != 1 || !plain(x) || !movable(x->dtype) ||
        !plain(&g->values[n->outputs[0]]))
        return no(why, why_size, "%s", "the channels-last DepthToSpace: one plain input and output");
    return d2s_check(g, n, why, why_size);
}

/* [N, C, H, W] -> [N, C / b^2, H * b, W * b] as one strided copy: the input seen as [N, c, b, b,
 * H, W] (CRD) or [N, b, b, c, H, W] (DCR), read in the output's order [N, c, H, b, W, b].
 * Channels-last (last): [N, H, W, C] -> [N, H * b, W * b, c] read in the order [N, H, b, W, b,
 * c]; in DCR mode each output pixel's c channels are one contiguous run of the input. */
static mixrt_status d2s_any(struct mixrt_kernel_ctx *k, bool last) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    const int64_t b = mixrt_node_attr_int(k->node, "blocksize", 0);
    const char *mode = mixrt_node_attr_string(k->node, "mode", "DCR");
    const bool crd = !strcmp(mode, "CRD");
    const int ci = last ? 3 : 1, hi = last ? 1 : 2, wi = last ? 2 : 3;
    if (!fast_tensor(x) || x->rank != 4 || b <= 0 || b > 1024 || (!crd && strcmp(mode, "DCR")) ||
        x->dims[ci] % (b * b) || x->dims[hi] > INT64_MAX / b / 4 || x->dims[wi] > INT64_MAX / b / 4)
        return mixrt_cpu_run_reference(k); /* its errors for bad attributes and shapes */
    const int64_t N = x->dims[0], C = x->dims[ci], c = C / (b * b), H = x->dims[hi], W = x->dims[wi], hw = H * W;
    const int64_t dims[4] = {N, last ? H * b : c, last ? W * b : H * b, last ? c : W * b};
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, 4, dims, &o);
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(o) == 0) return MIXRT_STATUS_OK;
    struct dm_loop L;
    L.r = 6;
    /* source strides of (n, c, h, i, w, j), or of (n, h, i, w, j, c) channels-last */
    const int64_t first[6] = {N, c, H, b, W, b}, s_first[6] = {C * hw, crd ? b * b * hw : hw, W,
                                                               crd ? b * hw : b * c * hw, 1, crd ? hw : c * hw};
    const int64_t lastd[6] = {N, H, b, W, b, c}, s_last[6] = {hw * C, W * C, crd ? b : b * c, C, crd ? 1 : c,
                                                             crd ? b * b : 1};
    for (int i = 0; i < 6; i++) L.d[i] = last ? lastd[i] : first[i], L.ss[i] = last ? s_last[i] : s_first[i];
    row_strides(6, L.d, L.ds);
    dm_copy(o->data, x->data, mixrt_dtype_size(x->dtype), &L);
    return MIXRT_STATUS_OK;
}

static mixrt_status d2s_run(struct mixrt_kernel_ctx *k) { return d2s_any(k, false); }
static mixrt_status d2s_last_run(struct mixrt_kernel_ctx *k) { return d2s_any(k, true); }

/* ---- ScatterND ------------------------------------------------------------------------------
 * Without a reduction: the data copied, then each index row's slice copied over (torchvision's
 * MultiScaleRoIAlign puts each level's pooled boxes into their rows this way once passes.c has
 * rewritten its ScatterElements). Indices in [-d, d - 1]; any other case is the reference's. */
static bool scatter_nd_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!common_supports(g, n, 11, why, why_size)) return false;
    const struct mixrt_value *i = in_value(g, n, 1), *u = in_value(g, n, 2);
    if (!plain(i) || (i->dtype != MIXRT_DTYPE_I64 && i->dtype != MIXRT_DTYPE_I32))
        return no(why, why_size, "%s", "ScatterND indices not int32 or int64");
    if (!plain(u) || u->dtype != in_value(g, n, 0)->dtype) return no(why, why_size, "%s", "ScatterND updates' dtype");
    if (n->opset >= 16 && strcmp(mixrt_node_attr_string(n, "reduction", "none"), "none"))
        return no(why, why_size, "%s", "ScatterND with a reduction");
    return true;
}

static mixrt_status scatter_nd_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *ind = mixrt_kernel_opt_input(k, 1),
                              *u = mixrt_kernel_opt_input(k, 2);
    if (!fast_tensor(x) || !ind || !u || u->dtype != x->dtype || ind->rank < 1 ||
        (ind->dtype != MIXRT_DTYPE_I64 && ind->dtype != MIXRT_DTYPE_I32) ||
        (k->opset >= 16 && strcmp(mixrt_node_attr_string(k->node, "reduction", "none"), "none")))
        return mixrt_cpu_run_reference(k);
    const int64_t m = ind->dims[ind->rank - 1];
    bool ok = m >= 1 && m <= x->rank && u->rank == ind->rank - 1 + x->rank - (int)m;
    for (int d = 0; ok && d < ind->rank - 1; d++) ok = u->dims[d] == ind->dims[d];
    for (int d = (int)m; ok && d < x->rank; d++) ok = u->dims[ind->rank - 1 + d - m] == x->dims[d];
    const int64_t per = ok ? prod(ind->dims, 0, ind->rank - 1) : 0, slice = prod(x->dims, (int)m, x->rank);
    const bool i64 = ind->dtype == MIXRT_DTYPE_I64;
    for (int64_t j = 0; ok && j < per; j++) /* every index checked before any output exists */
        for (int64_t t = 0; ok && t < m; t++) {
            int64_t v = index_at(ind->data, i64, (size_t)(j * m + t));
            ok = v >= -x->dims[t] && v < x->dims[t];
        }
    if (!ok) return mixrt_cpu_run_reference(k); /* its errors for shapes and indices */
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, x->dims, &o);
    if (status != MIXRT_STATUS_OK) return status;
    const size_t es = mixrt_dtype_size(x->dtype), row = (size_t)slice * es;
    if (o->nbytes) memcpy(o->data, x->data, o->nbytes);
    for (int64_t j = 0; j < per && row; j++) {
        int64_t off = 0;
        for (int64_t t = 0; t < m; t++) {
            int64_t v = index_at(ind->data, i64, (size_t)(j * m + t));
            off = off * x->dims[t] + (v < 0 ? v + x->dims[t] : v);
        }
        memcpy((char *)o->data + (size_t)off * row, (const char *)u->data + (size_t)j * row, row);
    }
    return MIXRT_STATUS_OK;
}

/* ---- GatherND, NonZero ------------------------------------------------------------------------
 * A detection head's per-class candidates (torchvision's SSD / RetinaNet exports: per class a
 * Greater, NonZero, GatherND and TopK over a few thousand anchors, 90 classes a run), where the
 * reference kernels' element-by-element loops and zeroed outputs were ~35 us a node. */

static bool gather_nd_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!common_supports(g, n, 11, why, why_size)) return false;
    const struct mixrt_value *i = in_value(g, n, 1);
    if (!plain(i) || (i->dtype != MIXRT_DTYPE_I64 && i->dtype != MIXRT_DTYPE_I32))
        return no(why, why_size, "%s", "GatherND indices not int32 or int64");
    return true;
}

/* Every index checked before the output exists (else the reference, for its errors), then one
 * copy a slice. */
static mixrt_status gather_nd_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *ind = mixrt_kernel_opt_input(k, 1);
    if (!fast_tensor(x) || !ind || ind->rank < 1 || (ind->dtype != MIXRT_DTYPE_I64 && ind->dtype != MIXRT_DTYPE_I32))
        return mixrt_cpu_run_reference(k);
    const int64_t b = k->opset >= 12 ? mixrt_node_attr_int(k->node, "batch_dims", 0) : 0;
    const int64_t m = ind->dims[ind->rank - 1];
    bool ok = b >= 0 && b < ind->rank && b < x->rank && m >= 1 && m <= x->rank - b &&
              ind->rank - 1 + x->rank - (b + m) <= MIXRT_MAX_RANK;
    for (int d = 0; ok && d < b; d++) ok = ind->dims[d] == x->dims[d];
    if (!ok) return mixrt_cpu_run_reference(k);
    const int64_t nb = prod(x->dims, 0, (int)b), per = prod(ind->dims, (int)b, ind->rank - 1);
    const int64_t slice = prod(x->dims, (int)(b + m), x->rank), bstride = prod(x->dims, (int)b, x->rank);
    const bool i64 = ind->dtype == MIXRT_DTYPE_I64;
    for (int64_t j = 0; j < nb * per; j++)
        for (int64_t t = 0; t < m; t++) {
            const int64_t v = index_at(ind->data, i64, (size_t)(j * m + t)), dim = x->dims[b + t];
            if (v < -dim || v >= dim) return mixrt_cpu_run_reference(k);
        }
    int64_t dims[MIXRT_MAX_RANK];
    int r = 0;
    for (int d = 0; d < ind->rank - 1; d++) dims[r++] = ind->dims[d];
    for (int d = (int)(b + m); d < x->rank; d++) dims[r++] = x->dims[d];
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, r, dims, &o);
    if (status != MIXRT_STATUS_OK) return status;
    const size_t es = mixrt_dtype_size(x->dtype), row = (size_t)slice * es;
    char *od = o->data;
    const char *xd = x->data;
    for (int64_t bi = 0; bi < nb && row; bi++)
        for (int64_t j = 0; j < per; j++) {
            int64_t off = 0;
            for (int64_t t = 0; t < m; t++) {
                const int64_t v = index_at(ind->data, i64, (size_t)((bi * per + j) * m + t)), dim = x->dims[b + t];
                off = off * dim + (v < 0 ? v + dim : v);
            }
            memcpy(od + (size_t)(bi * per + j) * row, xd + ((size_t)(bi * bstride) + (size_t)off * (size_t)slice) * es,
                   row);
        }
    return MIXRT_STATUS_OK;
}

static bool nonzero_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return common_supports(g, n, 9, why, why_size);
}

/* Element i of x (es bytes, raw) is nonzero: for floats any bit but the sign (NaN counts, -0
 * does not). */
static inline bool nz_at(const void *x, size_t es, bool fl, size_t i) {
    switch (es) {
    case 1: return ((const uint8_t *)x)[i] != 0;
    case 2: return (((const uint16_t *)x)[i] & (fl ? 0x7FFFu : 0xFFFFu)) != 0;
    case 4: return (((const uint32_t *)x)[i] & (fl ? 0x7FFFFFFFu : 0xFFFFFFFFu)) != 0;
    default: return (((const uint64_t *)x)[i] << (fl ? 1 : 0)) != 0;
    }
}

/* Counted first (the output is [rank, count]), then each nonzero element's coordinates, the
 * last axis counted along a row and the outer ones stepped once a row (row-major order). */
static mixrt_status nonzero_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    if (!fast_tensor(x)) return mixrt_cpu_run_reference(k);
    const size_t n = mixrt_tensor_numel(x), es = mixrt_dtype_size(x->dtype);
    const bool fl = mixrt_dtype_is_float(x->dtype);
    size_t nz = 0;
    if (es == 1) {
        const uint8_t *xb = x->data;
        for (size_t i = 0; i < n; i++) nz += xb[i] != 0;
    } else {
        for (size_t i = 0; i < n; i++) nz += nz_at(x->data, es, fl, i);
    }
    const int r = x->rank ? x->rank : 1; /* a scalar reports like a 1-element vector */
    const int64_t dims[2] = {r, (int64_t)nz};
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_I64, 2, dims, &o);
    if (status != MIXRT_STATUS_OK || !nz) return status;
    int64_t *od = o->data;
    if (!x->rank) {
        od[0] = 0;
        return MIXRT_STATUS_OK;
    }
    int64_t idx[MIXRT_MAX_RANK] = {0};
    const size_t cols = (size_t)x->dims[x->rank - 1];
    size_t c = 0;
    for (size_t row = 0; row < n; row += cols) {
        for (size_t i = 0; i < cols; i++) {
            if (!nz_at(x->data, es, fl, row + i)) continue;
            for (int d = 0; d < x->rank - 1; d++) od[(size_t)d * nz + c] = idx[d];
            od[(size_t)(x->rank - 1) * nz + c] = (int64_t)i;
            c++;
        }
        for (int d = x->rank - 2; d >= 0; d--) {
            if (++idx[d] < x->dims[d]) break;
            idx[d] = 0;
        }
    }
    return MIXRT_STATUS_OK;
}

#define DM(name, op, sup, run) {name, "", op, sup, NULL, NULL, run}
const struct mixrt_cpu_kernel mixrt_datamove_kernels[] = {
    DM("dm_transpose", "Transpose", transpose_supports, transpose_run),
    DM("dm_depthtospace", "DepthToSpace", d2s_supports, d2s_run),
    DM("dm_scatternd", "ScatterND", scatter_nd_supports, scatter_nd_run),
    {"dm_depthtospace_nhwc", MIXRT_DOMAIN, "DepthToSpace", d2s_last_supports, NULL, NULL, d2s_last_run},
    {"dm_transpose_cast", MIXRT_DOMAIN, "TransposeCast", transpose_cast_supports, NULL, NULL, transpose_cast_run},
    DM("dm_gather", "Gather", gather_supports, gather_run),
    DM("dm_concat", "Concat", concat_supports, concat_run),
    DM("dm_split", "Split", split_supports, split_run),
    DM("dm_slice", "Slice", slice_supports, slice_run),
    DM("dm_expand", "Expand", expand_supports, expand_run),
    DM("dm_tile", "Tile", tile_supports, tile_run),
    DM("dm_where", "Where", where_supports, where_run),
    DM("dm_and", "And", logic_supports, logic_run),
    DM("dm_or", "Or", logic_supports, logic_run),
    DM("dm_xor", "Xor", logic_supports, logic_run),
    DM("dm_pad", "Pad", pad_supports, pad_run),
    DM("dm_resize", "Resize", resize_supports, resize_run),
    DM("dm_gathernd", "GatherND", gather_nd_supports, gather_nd_run),
    DM("dm_nonzero", "NonZero", nonzero_supports, nonzero_run),
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
