/* sgemm.c - f32 products by a constant on the team's own kernel: FusedMatMul and MatMul by a
 * constant matrix (fmm_sgemm, mm_sgemm) and channels-last 2-D FusedConv of one group as an
 * implicit product (conv_sgemm). B (W) is packed once at prepare into 16-column panels
 * (sgemm_impl.h); A is read where it lies (a convolution's row tiles read each tap's input
 * pixels, zeros at the pads); the bias, Z and ReLU come in the tile's last K block, the other
 * activations by mixrt_elt_fconv_act over the rows while they are in cache. Made for CPUs with
 * AVX2 and FMA but without AVX-512, where oneDNN 2.6 runs these products through gemm:jit (B
 * packed again on every call, ~60 GFLOP/s on two Zen 3 cores against ~130 here) and the convs
 * through jit:avx2; timed against those like every candidate. Also conv_wino: the 3x3 stride-1
 * convs by Winograd F(4x4, 3x3), its 36 products per block of tiles on the same kernel (see its
 * section; transforms in wino_avx2.c). Where the CPU has AVX-512 the tile is sgemm_avx512.c's
 * (four panels at once) and the convolutions are offered there too (cpu_ok_conv).
 *
 * Blocking: the output is cut into tasks of up to SG_MC rows by a group of panels; a task runs
 * SG_SUB panels at a time the K blocks (per tap, at most SG_KC channels) in order, in each
 * every panel's block (kc x 16 floats, in L1) against the row tiles (6 rows) of the A block
 * (in L2). Every output element is computed by one task, in one order, whatever the thread
 * count: results do not depend on it. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/sgemm_impl.h"

#define SG_KC 256 /* K block: the panel's block is 16 KiB */
#define SG_MC 120 /* rows of a task: its A block (120 x 256 f32, 120 KiB) stays in L2 */
#define SG_MC_BIG 252 /* ... when B does not stay in the caches (SG_BIG_B) */
#define SG_BIG_B ((size_t)32 << 20) /* packed bytes of a B past the caches */
#define SG_SUB 16 /* panels a task runs together: their C block (120 x 256 f32) stays in L2 */

/* The packed layout a plan records: what the packing read. */
_Static_assert(MIXRT_SGEMM_LAYOUT_SIZE == 4 * sizeof(int64_t), "layout size");
/* taps > 1: a convolution's W [N, C, taps] (transB) read as B [K = taps * C, N], k = t * C + c:
 * each tap's C channels together, as the input pixels hold them (channels-last). */
struct sg_layout {
    int64_t K, N, trans_b, taps;
};

/* Where B's element (k, col) lies in the graph's tensor. */
static inline size_t sg_b_index(const struct sg_layout *l, int64_t k, int64_t col) {
    if (!l->trans_b) return (size_t)(k * l->N + col);
    if (l->taps <= 1) return (size_t)(col * l->K + k);
    const int64_t C = l->K / l->taps;
    return (size_t)((col * C + k % C) * l->taps + k / C);
}

/* Packed B shared between the nodes that read one constant (a weight-tied model: ALBERT's one
 * layer run 12 times, a tied LM head), as fused_transformer.c does for oneDNN's copies: keyed by
 * the constant's graph and value and the layout; an entry lives while a state holds it. */
struct sg_shared {
    struct sg_shared *next;
    const struct mixrt_graph *graph;
    int value;
    struct sg_layout lay;
    float *bp;
    int refs;
};
static pthread_mutex_t g_sg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sg_shared *g_sg_shared;

struct sg_state {
    struct sg_layout lay;
    enum mixrt_fconv_act act;
    float p0, p1; /* the activation's parameters (Clip, LeakyRelu) */
    const float *bp; /* [panels][K][16]: shared->bp, or a plan's bytes (adopted) */
    size_t bp_bytes;
    struct sg_shared *shared;
    float *bias;     /* [panels * 16], zero padded; NULL without a bias */
    size_t bias_bytes;
};

static int g_force_scalar;
void mixrt_sgemm_force_scalar(int on) { g_force_scalar = on; }

/* A 1x1 conv with a residual Z goes to oneDNN where it is built in: conv_sgemm timed even with
 * it alone but ran 1.3-2x its time in ResNet-50 (the conv3 layers, 0.40-0.61 ms against
 * oneDNN's 0.30-0.39), and a plan with those 7 layers on oneDNN instead ran 4.3 % faster (19.78
 * against 20.66 ms, 6 alternated pairs, the same timing cache otherwise). Tests turn it off. */
static bool g_z1x1_all;
void mixrt_sgemm_conv_z1x1(bool take) { g_z1x1_all = take; }

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

/* The convolutions (conv_sgemm, conv_wino): AVX2 and FMA, AVX-512 or not. On AVX-512 the 3x3
 * stride-2 convs of small maps and Winograd F(4x4, 3x3) on 56x56 to 14x14 maps beat oneDNN's
 * (ResNet-50's 28x28x128: 289 against 396 us, 14x14x256: 397 against 424, timed alone with caches
 * warm). MIXRT_SGEMM=off offers none of these kernels anywhere (A/B against oneDNN). */
static bool cpu_ok_conv(void) {
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    const char *e = getenv("MIXRT_SGEMM");
    return f->avx2 && f->fma && !(e && !strcmp(e, "off"));
}

/* The products by a constant matrix (fmm_sgemm, mm_sgemm): as the convolutions, but without
 * AVX-512 unless MIXRT_SGEMM=on (their tests set it). There oneDNN's AVX-512 kernels run them
 * 8-15 % faster than the AVX-512 tile (BERT's 128 x 768 x 3072: 1.65 against 1.90 ms) and these
 * would only lengthen the builder's timing. */
static bool cpu_ok(void) {
    const char *e = getenv("MIXRT_SGEMM");
    return cpu_ok_conv() && (!mixrt_cpu_features()->avx512f || (e && !strcmp(e, "on")));
}

/* The tile the products run, and with it conv_wino's transforms: the widest the CPU has, or the
 * one a test forced (mixrt_sgemm_force_scalar). */
enum sg_isa { SG_SCALAR, SG_AVX2, SG_AVX512 };
static enum sg_isa sg_isa(void) {
    if (g_force_scalar == 1) return SG_SCALAR;
    if (g_force_scalar == 2 || !mixrt_cpu_features()->avx512f) return SG_AVX2;
    return SG_AVX512;
}

static bool sg_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_fconv_act act;
    if (!cpu_ok())
        return refuse(why, why_size, "needs AVX2 and FMA without AVX-512 (MIXRT_SGEMM=on: with it), and not "
                                     "MIXRT_SGEMM=off");
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "A, B or Y absent");
    if (!mixrt_fmm_fconv_act(mixrt_fmm_activation(n), &act)) return refuse(why, why_size, "unknown activation");
    const struct mixrt_value *av = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if (av->dtype != MIXRT_DTYPE_F32 || yv->dtype != MIXRT_DTYPE_F32) return refuse(why, why_size, "A or Y not f32");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "B is not a constant");
    const struct mixrt_tensor *b = g->values[n->inputs[1]].init;
    if (b->rank != 2 || b->dtype != MIXRT_DTYPE_F32 || b->dims[0] < 1 || b->dims[1] < 1)
        return refuse(why, why_size, "B is not an f32 matrix");
    const bool tb = mixrt_node_attr_int(n, "transB", 0) != 0;
    const int64_t K = tb ? b->dims[1] : b->dims[0];
    int bi = n->n_inputs > 2 ? n->inputs[2] : -1, zi = n->n_inputs > 3 ? n->inputs[3] : -1;
    if (bi >= 0 && (!mixrt_graph_is_fixed_const(g, bi) || !mixrt_dtype_is_float(g->values[bi].dtype)))
        return refuse(why, why_size, "the bias is not a float constant");
    if (zi >= 0 && g->values[zi].dtype != MIXRT_DTYPE_F32) return refuse(why, why_size, "Z is not f32");
    if (av->rank < 1 || (av->dims[av->rank - 1].value >= 0 && av->dims[av->rank - 1].value != K))
        return refuse(why, why_size, "A's last dim is not B's K");
    return true;
}

/* Packs B ([K][N], or [N][K] with transB) into panels. */
static void sg_pack(const float *b, const struct sg_layout *l, float *bp) {
    const int64_t K = l->K, N = l->N, P = (N + MIXRT_SG_NR - 1) / MIXRT_SG_NR;
    for (int64_t p = 0; p < P; p++) {
        float *dst = bp + (size_t)(p * K) * MIXRT_SG_NR;
        for (int j = 0; j < MIXRT_SG_NR; j++) {
            const int64_t col = p * MIXRT_SG_NR + j;
            for (int64_t k = 0; k < K; k++)
                dst[(size_t)k * MIXRT_SG_NR + (size_t)j] = col < N ? b[sg_b_index(l, k, col)] : 0.0f;
        }
    }
}

/* B's element (k, col) in the packed copy. */
static inline float sg_packed_at(const struct sg_state *st, int64_t k, int64_t col) {
    const int64_t p = col / MIXRT_SG_NR;
    return st->bp[(size_t)(p * st->lay.K + k) * MIXRT_SG_NR + (size_t)(col % MIXRT_SG_NR)];
}

static size_t sg_packed_bytes(const struct sg_layout *l) {
    return (size_t)((l->N + MIXRT_SG_NR - 1) / MIXRT_SG_NR) * MIXRT_SG_NR * (size_t)l->K * sizeof(float);
}

/* Drops a reference to e (NULL: none); the last one frees it. */
static void sg_shared_put(struct sg_shared *e) {
    if (!e) return;
    pthread_mutex_lock(&g_sg_lock);
    if (--e->refs == 0) {
        for (struct sg_shared **pp = &g_sg_shared; *pp; pp = &(*pp)->next)
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        free(e->bp);
        free(e);
    }
    pthread_mutex_unlock(&g_sg_lock);
}

/* The shared copy of constant `value` of g in layout lay (bytes long), referenced; made by
 * fill(arg, dst) from the constant's bytes src when none is listed (counted as a reorder). NULL
 * when out of memory, or (*gone set) when one must be made and src is NULL (dropped after
 * packing). */
static struct sg_shared *sg_shared_get(const struct mixrt_graph *g, int value, const struct sg_layout *lay,
                                       size_t bytes, const float *src, void (*fill)(const float *src, float *dst,
                                                                                   const void *arg),
                                       const void *arg, bool *gone) {
    pthread_mutex_lock(&g_sg_lock);
    struct sg_shared *e = g_sg_shared;
    while (e && !(e->graph == g && e->value == value && !memcmp(&e->lay, lay, sizeof(*lay)))) e = e->next;
    if (e) e->refs++;
    pthread_mutex_unlock(&g_sg_lock);
    *gone = !e && !src;
    if (e || *gone) return e;
    /* filled outside the lock, listed once filled (two nodes packing the same constant at once
     * would each list one: correct, one copy more) */
    e = calloc(1, sizeof(*e));
    if (!e || posix_memalign((void **)&e->bp, 64, bytes) != 0) {
        free(e);
        return NULL;
    }
    e->graph = g, e->value = value, e->lay = *lay, e->refs = 1;
    fill(src, e->bp, arg);
    mixrt_cpu_weight_reorder_counted();
    pthread_mutex_lock(&g_sg_lock);
    e->next = g_sg_shared;
    g_sg_shared = e;
    pthread_mutex_unlock(&g_sg_lock);
    return e;
}

static void sg_release(mixrt_context_t ctx, void *state) {
    struct sg_state *st = state;
    if (!st) return;
    sg_shared_put(st->shared);
    mixrt_free(ctx, st->bias, st->bias_bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

static const char g_sg_lib[] = "mixrt sgemm f32 panels of 16 (k-major, taps first), v2";

/* Takes the plan's packed B offered for n when its layout is st's. */
static bool sg_adopt(const struct mixrt_node *n, struct sg_state *st) {
    const struct mixrt_cpu_packed *p = mixrt_cpu_packed_offered(n);
    if (!p) return false;
    char why[128];
    if (!p->lib || strcmp(p->lib, g_sg_lib) || p->layout_size != sizeof(st->lay) ||
        memcmp(p->layout, &st->lay, sizeof(st->lay))) {
        mixrt_cpu_packed_took(false, "the kernel here wants another weights layout (B's K, N or transB)");
        return false;
    }
    if (p->size != st->bp_bytes) {
        snprintf(why, sizeof why, "it has %zu bytes, its layout %zu", p->size, st->bp_bytes);
        mixrt_cpu_packed_took(false, why);
        return false;
    }
    st->bp = p->data; /* only read */
    mixrt_cpu_packed_took(true, NULL);
    return true;
}

static void sg_fill(const float *b, float *dst, const void *lay) { sg_pack(b, lay, dst); }

/* The bias (node n's constant input 2, N values) as f32 zero padded to `padded`, or NULL
 * without one. */
static mixrt_status sg_bias_make(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                 int64_t N, size_t padded, float **out, size_t *bytes) {
    const int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    *out = NULL, *bytes = 0;
    if (bi < 0) return MIXRT_STATUS_OK;
    const struct mixrt_tensor *bias = g->values[bi].init;
    if (bias->rank != 1 || bias->dims[0] != N)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "%s node '%s': the bias is not a vector of N = %lld",
                           n->op_type, n->name, (long long)N);
    float *b = mixrt_alloc(ctx, padded * sizeof(float));
    if (!b) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(b, 0, padded * sizeof(float));
    for (int64_t j = 0; j < N; j++) b[j] = (float)mixrt_load_f64(bias->data, bias->dtype, (size_t)j);
    *out = b, *bytes = padded * sizeof(float);
    return MIXRT_STATUS_OK;
}

/* The state for node n of g whose constant input 1 is B in layout lay (packed here, adopted
 * from a plan, or shared with another node reading the same constant) and input 2 the bias. */
static mixrt_status sg_state_make(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                  const struct sg_layout *lay, enum mixrt_fconv_act act, float p0, float p1,
                                  void **state) {
    const struct mixrt_tensor *b = g->values[n->inputs[1]].init;
    struct sg_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    st->lay = *lay;
    st->act = act, st->p0 = p0, st->p1 = p1;
    st->bp_bytes = sg_packed_bytes(&st->lay);
    const size_t padded = st->bp_bytes / ((size_t)st->lay.K * sizeof(float));
    mixrt_status status = sg_bias_make(ctx, g, n, st->lay.N, padded, &st->bias, &st->bias_bytes);
    if (status != MIXRT_STATUS_OK) {
        sg_release(ctx, st);
        return status;
    }
    if (!sg_adopt(n, st)) {
        bool gone;
        struct sg_shared *e = sg_shared_get(g, n->inputs[1], &st->lay, st->bp_bytes, b->data, sg_fill, &st->lay, &gone);
        if (!e) {
            sg_release(ctx, st);
            if (gone)
                return mixrt_error(ctx, MIXRT_STATUS_INTERNAL, "%s node '%s': B's bytes are gone (dropped after "
                                   "packing)", n->op_type, n->name);
            return mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "%s node '%s': no memory for %zu bytes of packed "
                               "weights", n->op_type, n->name, st->bp_bytes);
        }
        st->shared = e;
        st->bp = e->bp;
    }
    *state = st;
    return MIXRT_STATUS_OK;
}

static mixrt_status sg_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    char why[160] = "";
    if (!sg_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build %s node '%s' with the packed f32 product: %s",
                           n->op_type, n->name, why);
    const struct mixrt_tensor *b = g->values[n->inputs[1]].init;
    struct sg_layout lay;
    lay.trans_b = mixrt_node_attr_int(n, "transB", 0) != 0;
    lay.K = lay.trans_b ? b->dims[1] : b->dims[0];
    lay.N = lay.trans_b ? b->dims[0] : b->dims[1];
    lay.taps = 1;
    enum mixrt_fconv_act act = MIXRT_FCONV_NONE;
    (void)mixrt_fmm_fconv_act(mixrt_fmm_activation(n), &act);
    return sg_state_make(ctx, g, n, &lay, act, 0.0f, 0.0f, state);
}

/* The scalar tile: sgemm_impl.h's operations in its order (the AVX2 and AVX-512 tiles' twin). */
static void sg_tile_scalar(int mr, int nr, size_t kc, const float *const *a, const float *bp, size_t ps, float *c,
                           size_t ldc, int flags, const float *bias, const float *z, size_t ldz, float lo, float hi) {
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            const float *bq = bp + (size_t)(j / MIXRT_SG_NR) * ps + (size_t)(j % MIXRT_SG_NR);
            float acc = 0.0f;
            for (size_t k = 0; k < kc; k++) acc = fmaf(a[r][k], bq[k * MIXRT_SG_NR], acc);
            float *cv = &c[(size_t)r * ldc + (size_t)j];
            float v = flags & MIXRT_SG_FIRST ? acc : *cv + acc;
            if (flags & MIXRT_SG_LAST) {
                if (bias) v += bias[j];
                if (z) v += z[(size_t)r * ldz + (size_t)j];
                if (flags & MIXRT_SG_RELU) v = v < 0.0f ? 0.0f : v;
                if (flags & MIXRT_SG_CLIP) {
                    v = v < lo ? lo : v;
                    v = v > hi ? hi : v;
                }
            }
            *cv = v;
        }
}

/* A channels-last 2-D convolution's input as the product's A: row p (an output pixel) over the
 * K block of tap t, channels [c0, c0 + kc) is the input pixel under that tap, or zeros. */
struct sg_conv {
    const float *x; /* [n][h][w][c] */
    int64_t h, w, c, oh, ow, kw, sh, sw, dh, dw, pt, pl;
};

static const float g_sg_zeros[SG_KC];

struct sg_run {
    const float *a, *bp, *bias, *z;
    const struct sg_conv *cv; /* NULL: A is a matrix [M][K] */
    float *y;
    size_t M, K, N, P;
    size_t taps, C, c_step; /* K = taps * C; K blocks: per tap, C in steps of c_step */
    size_t mchunks, pg;     /* tasks: mchunks x ceil(P / pg) */
    size_t rows_per;        /* rows of a chunk (whole tiles) */
    enum mixrt_fconv_act act;
    float p0, p1;
    mixrt_sg_tile_fn tile;
    size_t np; /* panels a tile call takes: 1, or MIXRT_SG_NP512 with the AVX-512 tile */
};

/* rp[q] = row m0 + q of A at the K block (tap t, channel c0), q < m1 - m0. */
static void sg_rows(const struct sg_run *r, size_t m0, size_t m1, size_t t, size_t c0, const float **rp) {
    const struct sg_conv *v = r->cv;
    if (!v) {
        for (size_t i = m0; i < m1; i++) rp[i - m0] = r->a + i * r->K + t * r->C + c0;
        return;
    }
    const int64_t ky = (int64_t)t / v->kw, kx = (int64_t)t % v->kw, plane = v->oh * v->ow;
    /* the output pixel of row m0, then stepped along (no division per row) */
    int64_t b = (int64_t)m0 / plane, oy = (int64_t)m0 % plane / v->ow, ox = (int64_t)m0 % v->ow;
    for (size_t i = m0; i < m1; i++) {
        const int64_t iy = oy * v->sh - v->pt + ky * v->dh, ix = ox * v->sw - v->pl + kx * v->dw;
        rp[i - m0] = iy >= 0 && iy < v->h && ix >= 0 && ix < v->w
                         ? v->x + (size_t)(((b * v->h + iy) * v->w + ix) * v->c) + c0
                         : g_sg_zeros;
        if (++ox == v->ow) {
            ox = 0;
            if (++oy == v->oh) oy = 0, b++;
        }
    }
}

/* One task: rows [m0, m1) by panels [p0, p1), SG_SUB panels at a time: per K block, each
 * panel's block against every row tile. The activations other than ReLU then run over the
 * sub-block's rows (SG_SUB * 16 columns each, still in L2). */
static void sg_task(const struct sg_run *r, size_t m0, size_t m1, size_t p0, size_t p1) {
    /* ReLU and Clip (ReLU6) in the tile's last block; the rest over the rows after */
    const int tact = r->act == MIXRT_FCONV_RELU ? MIXRT_SG_RELU : r->act == MIXRT_FCONV_CLIP ? MIXRT_SG_CLIP : 0;
    const bool span_act = r->act != MIXRT_FCONV_NONE && !tact;
    const float *rp[SG_MC_BIG + MIXRT_SG_MR];
    enum { MAX_TILES = (SG_MC_BIG + MIXRT_SG_MR - 1) / MIXRT_SG_MR };
    /* per row tile: its C block holds a sum (init); under this tap every row reads padding (dead) */
    bool init[MAX_TILES], dead[MAX_TILES];
    const size_t row_tiles = (m1 - m0 + MIXRT_SG_MR - 1) / MIXRT_SG_MR;
    for (size_t s0 = p0; s0 < p1; s0 += SG_SUB) {
        const size_t s1 = s0 + SG_SUB < p1 ? s0 + SG_SUB : p1;
        memset(init, 0, sizeof(init));
        for (size_t t = 0; t < r->taps; t++)
            for (size_t c0 = 0; c0 < r->C; c0 += r->c_step) {
                const size_t kc = r->C - c0 < r->c_step ? r->C - c0 : r->c_step, k0 = t * r->C + c0;
                const bool last = t + 1 == r->taps && c0 + kc == r->C;
                sg_rows(r, m0, m1, t, c0, rp);
                /* A conv's row tile whose rows all read padding under tap t adds zeros: skipped,
                 * its last block an epilogue alone (kc 0). A dilated conv's outer taps on a small
                 * map (DeepLabV3's ASPP: dilation 12 on 14x14) meet the input in a band only. */
                for (size_t j = 0; j < row_tiles; j++) {
                    const size_t i0 = j * MIXRT_SG_MR, i1 = i0 + MIXRT_SG_MR < m1 - m0 ? i0 + MIXRT_SG_MR : m1 - m0;
                    dead[j] = r->cv != NULL;
                    for (size_t q = i0; q < i1 && dead[j]; q++) dead[j] = rp[q] == g_sg_zeros;
                }
                /* the next panels' blocks come into L1 a slice per row tile: the first tile found
                 * them in L3 otherwise (+10-15 % on BERT-sized products here) */
                const size_t lines = kc * MIXRT_SG_NR * sizeof(float) / 64;
                for (size_t p = s0; p < s1; p += r->np) {
                    const size_t np = s1 - p < r->np ? s1 - p : r->np, col = p * MIXRT_SG_NR;
                    const int nr = (int)(r->N - col < np * MIXRT_SG_NR ? r->N - col : np * MIXRT_SG_NR);
                    const float *bp = r->bp + (p * r->K + k0) * MIXRT_SG_NR;
                    const size_t ps = r->K * MIXRT_SG_NR, nn = s1 - p - np < r->np ? s1 - p - np : r->np;
                    const size_t all = lines * nn, per = (all + row_tiles - 1) / row_tiles;
                    /* the next line to fetch: line fl of panel fp past this call's (counters, not a
                     * division a line: that cost as much as a Winograd product's tiles) */
                    size_t fetched = 0, fp = 0, fl = 0;
                    for (size_t i = m0, j = 0; i < m1; i += MIXRT_SG_MR, j++) {
                        const int mr = (int)(m1 - i < MIXRT_SG_MR ? m1 - i : MIXRT_SG_MR);
                        for (size_t q = 0; q < per && fetched < all; q++, fetched++) {
                            __builtin_prefetch((const char *)(bp + (np + fp) * ps) + fl * 64, 0, 3);
                            if (++fl == lines) fl = 0, fp++;
                        }
                        if (dead[j] && !last) continue;
                        const int flags = (init[j] ? 0 : MIXRT_SG_FIRST) | (last ? MIXRT_SG_LAST | tact : 0);
                        r->tile(mr, nr, dead[j] ? 0 : kc, rp + (i - m0), bp, ps, r->y + i * r->N + col, r->N, flags,
                                r->bias ? r->bias + col : NULL, r->z ? r->z + i * r->N + col : NULL, r->N, r->p0,
                                r->p1);
                    }
                }
                for (size_t j = 0; j < row_tiles; j++) init[j] |= !dead[j];
            }
        if (span_act) {
            const size_t c0 = s0 * MIXRT_SG_NR, c1 = s1 * MIXRT_SG_NR < r->N ? s1 * MIXRT_SG_NR : r->N;
            /* whole rows are one span (a call per row cost MobileNetV2's 96-column ReLU6 convs
             * ~4x their product: the span's dispatch reads the environment) */
            if (c0 == 0 && c1 == r->N)
                mixrt_elt_fconv_act(r->act, r->p0, r->p1, r->y + m0 * r->N, (m1 - m0) * r->N);
            else
                for (size_t i = m0; i < m1; i++)
                    mixrt_elt_fconv_act(r->act, r->p0, r->p1, r->y + i * r->N + c0, c1 - c0);
        }
    }
}

/* Plans r's tasks for nt threads (r->P, taps, C, c_step, mchunks, pg) and returns their
 * count; sg_task_at runs task t. */
static size_t sg_plan(struct sg_run *r, int nt) {
    r->tile = sg_tile_scalar, r->np = 1;
#if defined(__x86_64__)
    const enum sg_isa isa = sg_isa();
    if (isa == SG_AVX2) r->tile = mixrt_sg_tile_avx2;
    if (isa == SG_AVX512) r->tile = mixrt_sg_tile_avx512, r->np = MIXRT_SG_NP512;
#endif
    r->P = (r->N + MIXRT_SG_NR - 1) / MIXRT_SG_NR;
    if (!r->taps) r->taps = 1, r->C = r->K; /* a matrix product */
    /* K blocks of equal size within a tap, at most SG_KC (the AVX-512 tile's four panels then
     * read 64 KiB a block: 128 and 192 were 0-5 % slower) */
    const size_t nkb = (r->C + SG_KC - 1) / SG_KC;
    r->c_step = (r->C + nkb - 1) / nkb;
    /* Row chunks of whole tiles, as even as SG_MC allows; panel groups so that there are about
     * four tasks a thread (the last ones balance the threads). */
    /* A B past the caches (GPT-2's LM head: 154 MB) is read from memory once per row chunk:
     * chunks of up to SG_MC_BIG rows then (the LM head at 128 rows: 96 -> 72 ms) */
    const bool big_b = r->K * r->P * MIXRT_SG_NR * sizeof(float) > SG_BIG_B;
    const size_t tiles = (r->M + MIXRT_SG_MR - 1) / MIXRT_SG_MR, tmc = (big_b ? SG_MC_BIG : SG_MC) / MIXRT_SG_MR;
    r->mchunks = (tiles + tmc - 1) / tmc;
    r->rows_per = (tiles + r->mchunks - 1) / r->mchunks * MIXRT_SG_MR;
    size_t groups = ((size_t)nt * 4 + r->mchunks - 1) / r->mchunks;
    while ((r->mchunks * groups) % (size_t)nt) groups++; /* every thread as many tasks */
    if (nt == 1) groups = 1;
    if (groups > r->P) groups = r->P;
    r->pg = (r->P + groups - 1) / groups;
    r->pg = (r->pg + r->np - 1) / r->np * r->np; /* whole tile calls */
    groups = (r->P + r->pg - 1) / r->pg;
    return r->mchunks * groups;
}

static void sg_task_at(const struct sg_run *r, size_t t) {
    const size_t mc = t % r->mchunks, gi = t / r->mchunks;
    const size_t m0 = mc * r->rows_per, m1 = m0 + r->rows_per < r->M ? m0 + r->rows_per : r->M;
    const size_t p0 = gi * r->pg, p1 = p0 + r->pg < r->P ? p0 + r->pg : r->P;
    if (m0 < m1) sg_task(r, m0, m1, p0, p1);
}

static void sg_product(struct sg_run *r) {
    int nt = 1;
#ifdef _OPENMP
    if (r->M * r->N * r->K >= ((size_t)1 << 18)) nt = omp_get_max_threads();
#endif
    const size_t tasks = sg_plan(r, nt);
    if ((size_t)nt > tasks) nt = (int)tasks;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
    for (size_t t = 0; t < tasks; t++) sg_task_at(r, t);
}

static mixrt_status sg_run(struct mixrt_kernel_ctx *k) {
    const struct sg_state *st = k->state;
    const struct mixrt_tensor *a = mixrt_kernel_opt_input(k, 0), *b = mixrt_kernel_opt_input(k, 1),
                              *z = mixrt_kernel_opt_input(k, 3);
    const int64_t K = st ? st->lay.K : 0, N = st ? st->lay.N : 0;
    /* Anything but the case prepare saw goes to the reference kernel, which words the errors
     * (B must still match: a node whose constant changed is not this state's). */
    if (!st || !a || !b || a->dtype != MIXRT_DTYPE_F32 || a->rank < 1 || a->dims[a->rank - 1] != K ||
        b->rank != 2 || b->dims[st->lay.trans_b ? 1 : 0] != K || b->dims[st->lay.trans_b ? 0 : 1] != N ||
        (mixrt_kernel_opt_input(k, 2) != NULL) != (st->bias != NULL))
        return mixrt_cpu_run_reference(k);
    int64_t yd[MIXRT_MAX_RANK];
    for (int d = 0; d < a->rank - 1; d++) yd[d] = a->dims[d];
    yd[a->rank - 1] = N;
    if (z && (z->dtype != MIXRT_DTYPE_F32 || z->rank != a->rank ||
              memcmp(z->dims, yd, (size_t)a->rank * sizeof(int64_t))))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_F32, a->rank, yd, &y);
    if (status != MIXRT_STATUS_OK) return status;
    struct sg_run r = {
        .a = a->data, .bp = st->bp, .bias = st->bias, .z = z ? z->data : NULL, .y = y->data,
        .M = mixrt_tensor_numel(a) / (size_t)K, .K = (size_t)K, .N = (size_t)N, .act = st->act, .p0 = st->p0,
        .p1 = st->p1,
    };
    if (r.M > 0) sg_product(&r);
    return MIXRT_STATUS_OK;
}

/* ---- channels-last 2-D FusedConv: Y [n, oh, ow, M] = A [pixels, taps * C] by W [M, C, kh, kw] ----
 * A is never formed: each row tile reads, per tap, its input pixels where they lie (sg_rows). */

struct c_geom {
    int64_t sh, sw, dh, dw, pt, pl, pb, pr;
};

static bool c_attrs(const struct mixrt_node *n, struct c_geom *c) {
    size_t ns = 0, nd = 0, np = 0;
    const int64_t *st = mixrt_node_attr_ints(n, "strides", &ns), *dl = mixrt_node_attr_ints(n, "dilations", &nd),
                  *pd = mixrt_node_attr_ints(n, "pads", &np);
    if ((st && ns != 2) || (dl && nd != 2) || (pd && np != 4)) return false;
    c->sh = st ? st[0] : 1, c->sw = st ? st[1] : 1, c->dh = dl ? dl[0] : 1, c->dw = dl ? dl[1] : 1;
    c->pt = pd ? pd[0] : 0, c->pl = pd ? pd[1] : 0, c->pb = pd ? pd[2] : 0, c->pr = pd ? pd[3] : 0;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && ap[0]) return false;
    if (!strcmp(ap, "VALID")) c->pt = c->pl = c->pb = c->pr = 0;
    return c->sh >= 1 && c->sw >= 1 && c->dh >= 1 && c->dw >= 1 && c->pt >= 0 && c->pl >= 0 && c->pb >= 0 &&
           c->pr >= 0;
}

static bool c_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_fconv_act act;
    float p0, p1;
    struct c_geom cg;
    if (!cpu_ok_conv()) return refuse(why, why_size, "needs AVX2 and FMA (and not MIXRT_SGEMM=off)");
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "X, W or Y absent");
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) return refuse(why, why_size, "malformed activation");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "not channels-last");
    if (mixrt_node_attr_int(n, "group", 1) != 1) return refuse(why, why_size, "grouped");
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if (xv->dtype != MIXRT_DTYPE_F32 || yv->dtype != MIXRT_DTYPE_F32)
        return refuse(why, why_size, "X or Y not f32 (bf16: oneDNN's kernels)");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (w->rank != 4 || w->dtype != MIXRT_DTYPE_F32 || xv->rank != 4 || w->dims[0] < 1 || w->dims[1] < 1 ||
        w->dims[2] < 1 || w->dims[3] < 1)
        return refuse(why, why_size, "not a 2-D convolution of f32 weights");
    if (!c_attrs(n, &cg)) return refuse(why, why_size, "strides, dilations, pads or auto_pad outside this kernel");
    int bi = n->n_inputs > 2 ? n->inputs[2] : -1, zi = n->n_inputs > 3 ? n->inputs[3] : -1;
    if (bi >= 0 && (!mixrt_graph_is_fixed_const(g, bi) || !mixrt_dtype_is_float(g->values[bi].dtype)))
        return refuse(why, why_size, "the bias is not a float constant");
    if (zi >= 0 && g->values[zi].dtype != MIXRT_DTYPE_F32) return refuse(why, why_size, "Z is not f32");
#ifdef MIXRT_HAVE_DNNL
    if (zi >= 0 && w->dims[2] == 1 && w->dims[3] == 1 && !g_z1x1_all)
        return refuse(why, why_size, "a 1x1 conv with a residual Z (oneDNN's run faster in the model)");
#endif
    return true;
}

static mixrt_status c_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                              void **state) {
    char why[160] = "";
    if (!c_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build %s node '%s' with the packed f32 product: %s",
                           n->op_type, n->name, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    const int64_t taps = w->dims[2] * w->dims[3];
    struct sg_layout lay = {taps * w->dims[1], w->dims[0], 1, taps};
    enum mixrt_fconv_act act = MIXRT_FCONV_NONE;
    float p0 = 0.0f, p1 = 0.0f;
    (void)mixrt_fconv_read_act(n, &act, &p0, &p1);
    return sg_state_make(ctx, g, n, &lay, act, p0, p1, state);
}

static mixrt_status c_run(struct mixrt_kernel_ctx *k) {
    const struct sg_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *z = mixrt_kernel_opt_input(k, 3);
    struct c_geom cg;
    const int64_t taps = st ? st->lay.taps : 0, C = st ? st->lay.K / taps : 0, M = st ? st->lay.N : 0;
    /* anything but the case prepare saw: the reference kernel, which words the errors */
    if (!st || !x || !w || !c_attrs(k->node, &cg) || x->dtype != MIXRT_DTYPE_F32 || x->rank != 4 || x->dims[3] != C ||
        w->rank != 4 || w->dims[0] != M || w->dims[1] != C || w->dims[2] * w->dims[3] != taps ||
        mixrt_tensor_numel(x) == 0 || (mixrt_kernel_opt_input(k, 2) != NULL) != (st->bias != NULL))
        return mixrt_cpu_run_reference(k);
    const int64_t kh = w->dims[2], kw = w->dims[3];
    const int64_t eh = cg.dh * (kh - 1) + 1, ew = cg.dw * (kw - 1) + 1;
    const int64_t ph = x->dims[1] + cg.pt + cg.pb, pw = x->dims[2] + cg.pl + cg.pr;
    if (ph < eh || pw < ew) return mixrt_cpu_run_reference(k);
    struct sg_conv v = {
        .x = x->data, .h = x->dims[1], .w = x->dims[2], .c = C, .oh = (ph - eh) / cg.sh + 1,
        .ow = (pw - ew) / cg.sw + 1, .kw = kw, .sh = cg.sh, .sw = cg.sw, .dh = cg.dh, .dw = cg.dw, .pt = cg.pt,
        .pl = cg.pl,
    };
    int64_t yd[4] = {x->dims[0], v.oh, v.ow, M};
    if (z && (z->dtype != MIXRT_DTYPE_F32 || z->rank != 4 || memcmp(z->dims, yd, sizeof(yd))))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_F32, 4, yd, &y);
    if (status != MIXRT_STATUS_OK) return status;
    /* a 1x1 of stride 1 without pads reads X as the matrix [pixels, C] */
    const bool plain = taps == 1 && cg.sh == 1 && cg.sw == 1 && cg.pt == 0 && cg.pl == 0 && cg.pb == 0 && cg.pr == 0;
    struct sg_run r = {
        .a = x->data, .cv = plain ? NULL : &v, .bp = st->bp, .bias = st->bias, .z = z ? z->data : NULL, .y = y->data,
        .M = (size_t)(yd[0] * v.oh * v.ow), .K = (size_t)(taps * C), .N = (size_t)M, .taps = plain ? 0 : (size_t)taps,
        .C = (size_t)C, .act = st->act, .p0 = st->p0, .p1 = st->p1,
    };
    sg_product(&r);
    return MIXRT_STATUS_OK;
}

/* ---- channels-last 3x3 FusedConv of stride 1 by Winograd (conv_wino, conv_wino2) ----
 * conv_wino, F(4x4, 3x3): each 4x4 output tile is A^T [sum over c of (B^T d_c B) (.) U_c] A,
 * U_c = G g_c G^T: per tile 36 values of each input channel (wino_avx2.c), then for each of the
 * 36 positions a product [tiles x C] by [C x M] (the packed product above, U packed at prepare),
 * then back. 4x fewer multiplications than the direct convolution for 36 / 9 = 4x the weights'
 * bytes (the engine's Winograd budget weighs them as oneDNN's). conv_wino2, F(2x2, 3x3): the
 * same with 16 positions and 2x2 output tiles, 2.25x fewer multiplications for 16 / 9 the bytes;
 * for convs whose weights stream from memory every run, ResNet-50's 14x14x256 ones: F(4x4, 3x3)
 * reads 9.4 MB a conv there, and its 16 tiles make products of 16 rows. Tiles go in blocks whose
 * transformed inputs and products fit a few MiB of the engine's scratch. Matrices and points:
 * sgemm_impl.h. */

#define W_XI_MAX 36
#define W_BLOCK_BYTES ((size_t)4 << 20) /* transformed tiles and products of one block */

typedef void (*w_in_fn)(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v,
                        size_t ld);
typedef void (*w_out_fn)(const float *mm, size_t ld, int64_t mc, const float *bias, const float *z, float *y,
                         size_t row_stride, int rows, int cols);

/* One variant: output tile side f, xi = (f + 2)^2 positions, G (f + 2 rows of 3), the transforms
 * (AVX2, AVX-512) and the name of its weights' layout in plans. */
struct w_var {
    int f, xi;
    const double (*g)[3];
    w_in_fn in[2];
    w_out_fn out[2];
    const char *lib;
};

static const double g_w_g4[6][3] = {{0.25, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}};
static const double g_w_g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

static const struct w_var g_w4 = {4, 36, g_w_g4, {mixrt_wino_in_avx2, mixrt_wino_in_avx512},
                                  {mixrt_wino_out_avx2, mixrt_wino_out_avx512},
                                  "mixrt winograd F(4x4,3x3) f32, 36 sets of sgemm panels of 16, v1"};
static const struct w_var g_w2 = {2, 16, g_w_g2, {mixrt_wino2f_in_avx2, mixrt_wino2f_in_avx512},
                                  {mixrt_wino2f_out_avx2, mixrt_wino2f_out_avx512},
                                  "mixrt winograd F(2x2,3x3) f32, 16 sets of sgemm panels of 16, v1"};

struct w_state {
    const struct w_var *var;
    struct sg_layout lay; /* K = C, N = M, taps = xi (the plan's layout) */
    enum mixrt_fconv_act act;
    float p0, p1;
    const float *u; /* xi packed [C][M]: shared->bp or a plan's bytes */
    struct sg_shared *shared;
    size_t u_bytes, mat_floats; /* all of them; one of them */
    float *bias;
    size_t bias_bytes;
};

static bool w_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!c_supports(g, n, why, why_size)) return false;
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    struct c_geom cg;
    (void)c_attrs(n, &cg);
    if (w->dims[2] != 3 || w->dims[3] != 3) return refuse(why, why_size, "not a 3x3 kernel");
    if (cg.sh != 1 || cg.sw != 1 || cg.dh != 1 || cg.dw != 1) return refuse(why, why_size, "strided or dilated");
    return true;
}

static bool w2_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const char *env = getenv("MIXRT_WINO2F"); /* A/B against the other kernels on one build */
    if (env && !strcmp(env, "off")) return refuse(why, why_size, "disabled by MIXRT_WINO2F=off");
    return w_supports(g, n, why, why_size);
}

static void w_release(mixrt_context_t ctx, void *state) {
    struct w_state *st = state;
    if (!st) return;
    sg_shared_put(st->shared);
    mixrt_free(ctx, st->bias, st->bias_bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

/* Takes the plan's transformed weights offered for n when they are st's layout. */
static bool w_adopt(const struct mixrt_node *n, struct w_state *st) {
    const struct mixrt_cpu_packed *p = mixrt_cpu_packed_offered(n);
    if (!p) return false;
    char why[128];
    if (!p->lib || strcmp(p->lib, st->var->lib) || p->layout_size != sizeof(st->lay) ||
        memcmp(p->layout, &st->lay, sizeof(st->lay))) {
        mixrt_cpu_packed_took(false, "the kernel here wants another weights layout (C or M)");
        return false;
    }
    if (p->size != st->u_bytes) { /* named as sg_adopt and the oneDNN kernels name it */
        snprintf(why, sizeof why, "it has %zu bytes, its layout %zu", p->size, st->u_bytes);
        mixrt_cpu_packed_took(false, why);
        return false;
    }
    st->u = p->data;
    mixrt_cpu_packed_took(true, NULL);
    return true;
}

/* U = G g G^T of every (m, c), in f64, each position's [C][M] packed as the product's B. */
static void w_transform(const struct w_var *var, const float *wt, int64_t M, int64_t C, float *u, size_t mat_floats) {
    const double(*G)[3] = var->g;
    const int n = var->f + 2;
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            const float *gk = wt + (size_t)(m * C + c) * 9;
            double t[6][3];
            for (int i = 0; i < n; i++)
                for (int b = 0; b < 3; b++) t[i][b] = G[i][0] * gk[b] + G[i][1] * gk[3 + b] + G[i][2] * gk[6 + b];
            const size_t at = (size_t)((m / MIXRT_SG_NR) * C + c) * MIXRT_SG_NR + (size_t)(m % MIXRT_SG_NR);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    u[(size_t)(i * n + j) * mat_floats + at] =
                        (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
}

static void w_fill(const float *w, float *dst, const void *state) {
    const struct w_state *st = state;
    memset(dst, 0, st->u_bytes); /* the panels' columns past M */
    w_transform(st->var, w, st->lay.N, st->lay.K, dst, st->mat_floats);
}

static mixrt_status w_prepare_var(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                  void **state, const struct w_var *var) {
    char why[160] = "";
    if (!w_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build %s node '%s' with the Winograd f32 convolution: %s",
                           n->op_type, n->name, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    struct w_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    st->var = var;
    const int64_t M = w->dims[0], C = w->dims[1];
    st->lay = (struct sg_layout){C, M, 0, var->xi};
    (void)mixrt_fconv_read_act(n, &st->act, &st->p0, &st->p1);
    const struct sg_layout one = {C, M, 0, 1};
    st->mat_floats = sg_packed_bytes(&one) / sizeof(float);
    st->u_bytes = (size_t)var->xi * st->mat_floats * sizeof(float);
    mixrt_status status = sg_bias_make(ctx, g, n, M, st->mat_floats / (size_t)C, &st->bias, &st->bias_bytes);
    if (status != MIXRT_STATUS_OK) {
        w_release(ctx, st);
        return status;
    }
    if (!w_adopt(n, st)) {
        /* shared with the other nodes reading this constant (tied weights), as the products' */
        bool gone;
        st->shared = sg_shared_get(g, n->inputs[1], &st->lay, st->u_bytes, w->data, w_fill, st, &gone);
        if (!st->shared) {
            w_release(ctx, st);
            if (gone)
                return mixrt_error(ctx, MIXRT_STATUS_INTERNAL, "%s node '%s': W's bytes are gone (dropped after "
                                   "packing)", n->op_type, n->name);
            return mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "%s node '%s': no memory for %zu bytes of transformed "
                               "weights", n->op_type, n->name, st->u_bytes);
        }
        st->u = st->shared->bp;
    }
    *state = st;
    return MIXRT_STATUS_OK;
}

static mixrt_status w_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                              void **state) {
    return w_prepare_var(ctx, g, n, state, &g_w4);
}

static mixrt_status w2_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    return w_prepare_var(ctx, g, n, state, &g_w2);
}

struct w_geom {
    const float *x, *z;
    float *y;
    int64_t h, w, c, m, oh, ow, th, tw, pt, pl, f;
    w_in_fn in;
    w_out_fn out;
};

/* Tile t (image-major, then rows, then columns): its input transform into row r of the blocks'
 * matrices v (ld floats apart). */
static void w_in(const struct w_geom *gm, size_t t, float *v, size_t ld) {
    const int64_t per = gm->th * gm->tw, b = (int64_t)t / per, ty = (int64_t)t % per / gm->tw, tx = (int64_t)t % gm->tw;
    gm->in(gm->x + (size_t)(b * gm->h * gm->w * gm->c), gm->h, gm->w, gm->c, ty * gm->f - gm->pt, tx * gm->f - gm->pl,
           v, ld);
}

static void w_out(const struct w_geom *gm, const struct w_state *st, size_t t, const float *mm, size_t ld) {
    const int64_t f = gm->f, per = gm->th * gm->tw, b = (int64_t)t / per, oy = (int64_t)t % per / gm->tw * f,
                  ox = (int64_t)t % gm->tw * f;
    const int rows = (int)(gm->oh - oy < f ? gm->oh - oy : f), cols = (int)(gm->ow - ox < f ? gm->ow - ox : f);
    const size_t at = (size_t)(((b * gm->oh + oy) * gm->ow + ox) * gm->m), row = (size_t)(gm->ow * gm->m);
    gm->out(mm, ld, gm->m, st->bias, gm->z ? gm->z + at : NULL, gm->y + at, row, rows, cols);
    if (st->act != MIXRT_FCONV_NONE)
        for (int k = 0; k < rows; k++)
            mixrt_elt_fconv_act(st->act, st->p0, st->p1, gm->y + at + (size_t)k * row, (size_t)cols * (size_t)gm->m);
}

static mixrt_status w_run(struct mixrt_kernel_ctx *k) {
    const struct w_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *z = mixrt_kernel_opt_input(k, 3);
    struct c_geom cg;
    const int64_t C = st ? st->lay.K : 0, M = st ? st->lay.N : 0;
    /* anything but the case prepare saw: the reference kernel, which words the errors */
    if (!st || !x || !w || !c_attrs(k->node, &cg) || x->dtype != MIXRT_DTYPE_F32 || x->rank != 4 || x->dims[3] != C ||
        w->rank != 4 || w->dims[0] != M || w->dims[1] != C || w->dims[2] != 3 || w->dims[3] != 3 ||
        mixrt_tensor_numel(x) == 0 || (mixrt_kernel_opt_input(k, 2) != NULL) != (st->bias != NULL))
        return mixrt_cpu_run_reference(k);
    const int64_t oh = x->dims[1] + cg.pt + cg.pb - 2, ow = x->dims[2] + cg.pl + cg.pr - 2;
    if (oh < 1 || ow < 1) return mixrt_cpu_run_reference(k);
    int64_t yd[4] = {x->dims[0], oh, ow, M};
    if (z && (z->dtype != MIXRT_DTYPE_F32 || z->rank != 4 || memcmp(z->dims, yd, sizeof(yd))))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_F32, 4, yd, &y);
    if (status != MIXRT_STATUS_OK) return status;
    const struct w_var *var = st->var;
    const int wide = sg_isa() == SG_AVX512; /* the AVX-512 transforms with the AVX-512 tile */
    const int64_t f = var->f;
    const struct w_geom gm = {
        .x = x->data, .z = z ? z->data : NULL, .y = y->data, .h = x->dims[1], .w = x->dims[2], .c = C, .m = M,
        .oh = oh, .ow = ow, .th = (oh + f - 1) / f, .tw = (ow + f - 1) / f, .pt = cg.pt, .pl = cg.pl, .f = f,
        .in = var->in[wide], .out = var->out[wide],
    };
    const int xi = var->xi;
    const size_t tiles = (size_t)(gm.th * gm.tw * x->dims[0]), per_tile = (size_t)xi * (size_t)(C + M) * sizeof(float);
    /* tiles a block: whole row tiles of the product, its matrices within W_BLOCK_BYTES */
    size_t tb = W_BLOCK_BYTES / per_tile / MIXRT_SG_MR * MIXRT_SG_MR;
    if (tb < MIXRT_SG_MR) tb = MIXRT_SG_MR;
    if (tb > tiles) tb = tiles;
    bool owned;
    float *v = mixrt_kernel_scratch(k, tb * per_tile, &owned);
    if (!v) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of Winograd tiles",
                                      tb * per_tile);
    float *mm = v + (size_t)xi * tb * (size_t)C;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    for (size_t t0 = 0; t0 < tiles; t0 += tb) {
        const size_t nb = tiles - t0 < tb ? tiles - t0 : tb;
        /* the xi products of this block: one thread's plan each (xi x row chunks are tasks enough) */
        struct sg_run r[W_XI_MAX];
        size_t per = 0;
        for (int q = 0; q < xi; q++) {
            r[q] = (struct sg_run){
                .a = v + (size_t)q * tb * (size_t)C, .bp = st->u + (size_t)q * st->mat_floats,
                .y = mm + (size_t)q * tb * (size_t)M, .M = nb, .K = (size_t)C, .N = (size_t)M,
            };
            per = sg_plan(&r[q], 1);
        }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
        {
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (size_t t = 0; t < nb; t++) w_in(&gm, t0 + t, v + t * (size_t)C, tb * (size_t)C);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (size_t q = 0; q < (size_t)xi * per; q++) sg_task_at(&r[q / per], q % per);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (size_t t = 0; t < nb; t++) w_out(&gm, st, t0 + t, mm + t * (size_t)M, tb * (size_t)M);
        }
    }
    if (owned) mixrt_free(k->ctx, v, tb * per_tile);
    return MIXRT_STATUS_OK;
}

const char *mixrt_wino_packed_lib(void) { return g_w4.lib; }
const char *mixrt_wino2f_packed_lib(void) { return g_w2.lib; }

/* conv_wino's and conv_wino2's: each state names its own layout */
bool mixrt_wino_packed_get(const void *state, struct mixrt_cpu_packed *out) {
    const struct w_state *st = state;
    if (!st || !st->u) return false;
    *out = (struct mixrt_cpu_packed){st->var->lib, &st->lay, sizeof(st->lay), st->u, st->u_bytes};
    return true;
}

/* The transformed weights hold other numbers (G is not inverted exactly): never unpacked, so
 * the engine keeps the graph's copy. */
bool mixrt_wino_unpack(mixrt_context_t ctx, const void *state, void *dst, size_t size) {
    (void)ctx, (void)state, (void)dst, (void)size;
    return false;
}

int mixrt_wino_same(mixrt_context_t ctx, const void *state, const void *ref, size_t size) {
    (void)ctx, (void)state, (void)ref, (void)size;
    return 0;
}

/* ---- packed B in plan files (kernels.h) ---- */

const char *mixrt_sgemm_packed_lib(void) { return g_sg_lib; }

bool mixrt_sgemm_packed_get(const void *state, struct mixrt_cpu_packed *out) {
    const struct sg_state *st = state;
    if (!st || !st->bp) return false;
    *out = (struct mixrt_cpu_packed){g_sg_lib, &st->lay, sizeof(st->lay), st->bp, st->bp_bytes};
    return true;
}

bool mixrt_sgemm_unpack(mixrt_context_t ctx, const void *state, void *dst, size_t size) {
    const struct sg_state *st = state;
    (void)ctx;
    if (!st || !st->bp || size != (size_t)(st->lay.K * st->lay.N) * sizeof(float)) return false;
    float *b = dst;
    for (int64_t k = 0; k < st->lay.K; k++)
        for (int64_t j = 0; j < st->lay.N; j++)
            b[sg_b_index(&st->lay, k, j)] = sg_packed_at(st, k, j);
    return true;
}

int mixrt_sgemm_same(mixrt_context_t ctx, const void *state, const void *ref, size_t size) {
    const struct sg_state *st = state;
    (void)ctx;
    if (!st || !st->bp || size != (size_t)(st->lay.K * st->lay.N) * sizeof(float)) return 0;
    const float *b = ref;
    for (int64_t k = 0; k < st->lay.K; k++)
        for (int64_t j = 0; j < st->lay.N; j++) {
            const float v = sg_packed_at(st, k, j);
            if (memcmp(&v, &b[sg_b_index(&st->lay, k, j)], sizeof v))
                return 0;
        }
    return 1;
}

const struct mixrt_cpu_kernel mixrt_sgemm_kernels[] = {
    {"fmm_sgemm", MIXRT_DOMAIN, "FusedMatMul", sg_supports, sg_prepare, sg_release, sg_run},
    /* ONNX MatMul by a constant matrix (no bias, no activation) */
    {"mm_sgemm", "", "MatMul", sg_supports, sg_prepare, sg_release, sg_run},
    /* channels-last 2-D FusedConv of one group (ResNet's, MobileNet's pointwise convs) */
    {"conv_sgemm", MIXRT_DOMAIN, "FusedConv", c_supports, c_prepare, sg_release, c_run},
    /* its 3x3 stride-1 ones by Winograd F(4x4, 3x3) (ResNet's, VGG's) */
    {"conv_wino", MIXRT_DOMAIN, "FusedConv", w_supports, w_prepare, w_release, w_run},
    /* ... and by F(2x2, 3x3) (fewer weight bytes: ResNet-50's 14x14 stage) */
    {"conv_wino2", MIXRT_DOMAIN, "FusedConv", w2_supports, w2_prepare, w_release, w_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
