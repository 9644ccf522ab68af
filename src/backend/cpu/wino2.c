/* wino2.c - "wino_bf16_nhwc": com.mixrt FusedConv when it is a 3x3 conv of stride 1 (one group,
 * no dilation, explicit pads) on channels-last bf16, by Winograd F(2x2, 3x3), on CPUs with
 * AVX512-BF16. ResNet-style 3x3 layers run at the machine's bf16 rate through oneDNN's direct
 * convolution and oneDNN 2.6 has no bf16 Winograd; this one does 16 instead of 36 products per
 * 2x2 output tile (2.25x fewer) for 16 / 9 of the weights' bf16 bytes. Per block of tiles: the
 * input transforms (wino2_avx512.c), then per position one [tiles x C] by [C x M] bf16 product
 * by pwconv's tile kernel (f32 sums, weights pair-packed at prepare), then the output transforms
 * with bias, Z, the activation and the rounding to bf16. Accuracy: V and U are rounded to bf16
 * where the direct conv rounds d and g (the per-layer error is about 1.5x the direct bf16
 * conv's; wino2_impl.h has the matrices); F(4x4, 3x3) would save more products but its points
 * +-2 cost about 9x the error, so it stays f32 (conv_wino, oneDNN's). Timed against oneDNN's
 * kernels like every candidate; `MIXRT_WINO_BF16=off` leaves it out. A plan made here and run on
 * a CPU without AVX512-BF16 runs the scalar twins.
 * Invariant: anything outside the case prepare saw goes to the reference kernel. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/wino2_impl.h"

/* Transformed tiles and products of one block: about half the core's L2 (the two vCPUs share
 * it), so the products read V from it and the output transforms read M from it. */
#define W2_BLOCK_BYTES ((size_t)768 << 10)
/* Where U is at most W2_GROUP_U_BYTES (C and M up to 128), each thread takes groups of tiles
 * through all three phases in its own scratch of about W2_GROUP_BYTES (w2_run_groups). */
#define W2_GROUP_U_BYTES ((size_t)512 << 10)
#define W2_GROUP_BYTES ((size_t)192 << 10)

/* ---- the scalar twins of the transforms ------------------------------------------------- */

static inline float bf(uint16_t h) { return mixrt_bf16_to_float((mixrt_bf16){h}); }

static void in_scalar(const struct mixrt_wino2_in *a) {
    for (int64_t c = 0; c < a->c; c++) {
        float d[4][4], t[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                const int64_t y = a->iy0 + i, x = a->ix0 + j;
                d[i][j] = y >= 0 && y < a->h && x >= 0 && x < a->w ? bf(a->x[(y * a->w + x) * a->c + c]) : 0.0f;
            }
        for (int j = 0; j < 4; j++) {
            t[0][j] = d[0][j] - d[2][j];
            t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j];
            t[3][j] = d[1][j] - d[3][j];
        }
        for (int i = 0; i < 4; i++) {
            const float r[4] = {t[i][0] - t[i][2], t[i][1] + t[i][2], t[i][2] - t[i][1], t[i][1] - t[i][3]};
            for (int j = 0; j < 4; j++) a->v[(size_t)(i * 4 + j) * a->ld + (size_t)c] = mixrt_bf16_from_float(r[j]).bits;
        }
    }
}

static void out_scalar(const struct mixrt_wino2_out *a) {
    for (int64_t c = 0; c < a->m; c++) {
        float t[2][4];
        for (int j = 0; j < 4; j++) {
            const float m0 = a->mm[(size_t)j * a->ld + (size_t)c], m1 = a->mm[(size_t)(4 + j) * a->ld + (size_t)c],
                        m2 = a->mm[(size_t)(8 + j) * a->ld + (size_t)c], m3 = a->mm[(size_t)(12 + j) * a->ld + (size_t)c];
            t[0][j] = m0 + m1 + m2;
            t[1][j] = m1 - m2 - m3;
        }
        for (int r = 0; r < a->rows; r++)
            for (int q = 0; q < a->cols; q++) {
                float v = q == 0 ? t[r][0] + t[r][1] + t[r][2] : t[r][1] - t[r][2] - t[r][3];
                v += a->bias[c];
                const size_t off = (size_t)r * a->row + (size_t)q * (size_t)a->m + (size_t)c;
                if (a->z) v += bf(a->z[(size_t)r * a->zrow + (size_t)q * (size_t)a->m + (size_t)c]);
                v = mixrt_pw_act_scalar(a->act, a->p0, a->p1, v);
                if (a->y_f32) ((float *)a->y)[off] = v;
                else ((mixrt_bf16 *)a->y)[off] = mixrt_bf16_from_float(v);
            }
    }
}

static int g_force_scalar; /* tests only */
void mixrt_wino2_force_scalar(bool scalar) { g_force_scalar = scalar; }

/* At fewer input channels the products' K is too short to pay for the transforms. The floor
 * was 256 while one schedule served every shape: its three barriers a block of tiles held it to
 * one thread's speed on ResNet-50's 56x56x64 layers (0.53-0.72 ms in the engine against oneDNN's
 * 0.30-0.38; one thread 0.60 against 0.59), and its time there varied 241-600 us between builds.
 * The grouped schedule (w2_run_groups) runs them at 0.24 ms against oneDNN's 0.29, 28x28x128 at
 * 0.21 against 0.27, GoogLeNet's 56x56x64 -> 192 at 0.57 against 0.80 (test_wino2 --bench); in
 * the engine GoogLeNet {fp32,bf16} ran 5.2 % faster and Inception-v3 7.1 % with it at 64 (a
 * floor of 16 took no more layers there). Below 64 the timing decides nothing worth its risk.
 * Tests lower it; MIXRT_WINO_BF16_MIN_C sets it for measurements. */
static int64_t g_min_channels = 64;
void mixrt_wino2_min_channels(int64_t c) { g_min_channels = c; }


/* ---- the kernel ------------------------------------------------------------------------- */

/* U of one constant W, shared by the nodes that read it (tied weights: RetinaNet's heads run
 * one set on five pyramid levels), as sgemm.c shares its panels: keyed by graph and value,
 * counted, freed with its last reader. */
struct w2_shared {
    struct w2_shared *next;
    const struct mixrt_graph *graph;
    int value;
    int64_t c, m;
    uint16_t *u;
    int refs;
};
static pthread_mutex_t g_w2_lock = PTHREAD_MUTEX_INITIALIZER;
static struct w2_shared *g_w2_shared;
/* transforms made (tests); not mixrt_cpu_weight_reorders, which counts the packing kernels'
 * reorders that plans save (like pw_conv_nhwc's packing, U is made again when a plan loads) */
static _Atomic unsigned long g_transforms;
unsigned long mixrt_wino2_transforms(void) { return g_transforms; }

struct w2_state {
    int64_t c, m, kp, nb, pt, pl, pb, pr;
    const uint16_t *u; /* 16 packed matrices (mixrt_pw_widx), mat elements apart: shared->u */
    struct w2_shared *shared;
    size_t mat;
    float *b, *zero;   /* [nb * 16]: the bias (zeros without one), zeros (the products' bias) */
    size_t u_bytes, b_bytes;
};

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

/* The explicit pads, under 65536 each. */
static bool w2_pads(const struct mixrt_node *n, int64_t *p) { return mixrt_fconv_explicit_pads(n, p, 65535); }

static bool w2_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    int64_t pads[4];
    const char *env = getenv("MIXRT_WINO_BF16"); /* for measuring against oneDNN on the same build */
    if (env && !strcmp(env, "off")) return refuse(why, why_size, "disabled by MIXRT_WINO_BF16=off");
    if (!g_force_scalar && !mixrt_pw_hw()) return refuse(why, why_size, "the CPU has no AVX512-BF16");
    if (!mixrt_pw_node_ok(g, n, why, why_size)) return false;
    const struct mixrt_value *xv = &g->values[n->inputs[0]];
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !mixrt_graph_is_fixed_const(g, n->inputs[2]))
        return refuse(why, why_size, "B is not a constant");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[2] != 3 || w->dims[3] != 3 || w->dims[0] < 1 ||
        w->dims[1] < 1 || w->dims[0] > 65536 || w->dims[1] > 65536)
        return refuse(why, why_size, "W is not a float [M, C, 3, 3] tensor of at most 65536 outputs and inputs");
    const char *mc = getenv("MIXRT_WINO_BF16_MIN_C");
    const long long floor_c = mc && *mc ? strtoll(mc, NULL, 10) : (long long)g_min_channels;
    if (w->dims[1] < floor_c) {
        if (why && why_size)
            snprintf(why, why_size, "fewer than %lld input channels (the direct convolution is faster)", floor_c);
        return false;
    }
    if (!mixrt_node_attr_ints_all(n, "strides", 1, 0) || !mixrt_node_attr_ints_all(n, "dilations", 1, 0))
        return refuse(why, why_size, "strided or dilated");
    if (!w2_pads(n, pads)) return refuse(why, why_size, "auto_pad SAME or malformed pads");
    if (xv->rank >= 0 && xv->rank != 4) return refuse(why, why_size, "X's rank is not 4");
    if (xv->rank == 4 && xv->dims[3].value >= 0 && xv->dims[3].value != w->dims[1])
        return refuse(why, why_size, "X's channels differ from W's");
    return true;
}

static void w2_shared_put(struct w2_shared *e) {
    if (!e) return;
    pthread_mutex_lock(&g_w2_lock);
    if (--e->refs == 0) {
        for (struct w2_shared **pp = &g_w2_shared; *pp; pp = &(*pp)->next)
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        free(e->u);
        free(e);
    }
    pthread_mutex_unlock(&g_w2_lock);
}

static void w2_release(mixrt_context_t ctx, void *state) {
    struct w2_state *st = state;
    if (!st) return;
    w2_shared_put(st->shared);
    if (st->b) mixrt_free(ctx, st->b, 2 * st->b_bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

/* U = G g G^T of every (m, c), in f64 from W, rounded once to bf16 into the 16 packed matrices
 * at u (zeroed). */
static void w2_transform(const struct mixrt_tensor *w, const struct w2_state *st, uint16_t *u) {
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    for (int64_t m = 0; m < st->m; m++)
        for (int64_t c = 0; c < st->c; c++) {
            double gk[9], t[4][3];
            for (int i = 0; i < 9; i++) gk[i] = mixrt_load_f64(w->data, w->dtype, (size_t)((m * st->c + c) * 9 + i));
            for (int i = 0; i < 4; i++)
                for (int b = 0; b < 3; b++) t[i][b] = G[i][0] * gk[b] + G[i][1] * gk[3 + b] + G[i][2] * gk[6 + b];
            const size_t at = mixrt_pw_widx(st->kp, m, c);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    u[(size_t)(i * 4 + j) * st->mat + at] =
                        mixrt_bf16_from_float((float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2])).bits;
        }
}

/* The shared U of W (value wv of g) for st's shape, referenced; made here when none is listed
 * (filled outside the lock: two nodes preparing one W at once would each list a copy, correct
 * and one copy more). NULL when out of memory, or (*gone) when W's bytes were dropped. */
static struct w2_shared *w2_shared_get(const struct mixrt_graph *g, int wv, const struct mixrt_tensor *w,
                                       const struct w2_state *st, bool *gone) {
    pthread_mutex_lock(&g_w2_lock);
    struct w2_shared *e = g_w2_shared;
    while (e && !(e->graph == g && e->value == wv && e->c == st->c && e->m == st->m)) e = e->next;
    if (e) e->refs++;
    pthread_mutex_unlock(&g_w2_lock);
    *gone = !e && !w->data;
    if (e || *gone) return e;
    e = calloc(1, sizeof(*e));
    if (!e || posix_memalign((void **)&e->u, 64, st->u_bytes) != 0) {
        free(e);
        return NULL;
    }
    e->graph = g, e->value = wv, e->c = st->c, e->m = st->m, e->refs = 1;
    memset(e->u, 0, st->u_bytes);
    w2_transform(w, st, e->u);
    g_transforms++;
    pthread_mutex_lock(&g_w2_lock);
    e->next = g_w2_shared;
    g_w2_shared = e;
    pthread_mutex_unlock(&g_w2_lock);
    return e;
}

static mixrt_status w2_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    char why[160] = "";
    if (!w2_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedConv node '%s' with wino_bf16_nhwc: %s",
                           n->name, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    const int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 ? g->values[bi].init : NULL;
    struct w2_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    int64_t pads[4];
    (void)w2_pads(n, pads);
    st->pt = pads[0], st->pl = pads[1], st->pb = pads[2], st->pr = pads[3];
    st->m = w->dims[0], st->c = w->dims[1];
    st->kp = (st->c + 1) / 2, st->nb = (st->m + MIXRT_PW_NBLK - 1) / MIXRT_PW_NBLK;
    /* 16 x 65536 x 32768 pairs x 32 halves at most: within size_t on 64-bit hosts */
    st->mat = (size_t)(st->nb * st->kp) * 2 * MIXRT_PW_NBLK;
    st->u_bytes = MIXRT_WINO2_XI * st->mat * sizeof(uint16_t);
    st->b_bytes = (size_t)st->nb * MIXRT_PW_NBLK * sizeof(float);
    st->b = mixrt_alloc(ctx, 2 * st->b_bytes);
    if (!st->b) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    st->zero = st->b + st->nb * MIXRT_PW_NBLK;
    memset(st->b, 0, 2 * st->b_bytes);
    if (b) MIXRT_TRY(mixrt_pw_bias(ctx, n, b, st->m, st->b));
    bool gone;
    if (!(st->shared = w2_shared_get(g, n->inputs[1], w, st, &gone)))
        MIXRT_TRY(gone ? mixrt_error(ctx, MIXRT_STATUS_INTERNAL, "FusedConv node '%s': W's bytes are gone (dropped "
                                     "after packing)", n->name)
                       : mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY,
                                     "FusedConv node '%s': no memory for %zu bytes of Winograd weights", n->name,
                                     st->u_bytes));
    st->u = st->shared->u;
    *state = st;
    return MIXRT_STATUS_OK;
fail:
    w2_release(ctx, st);
    return status;
}

static _Atomic unsigned long g_ref_runs;
unsigned long mixrt_wino2_ref_runs(void) { return g_ref_runs; }

static mixrt_status run_ref(struct mixrt_kernel_ctx *k) {
    g_ref_runs++;
    return mixrt_cpu_run_reference(k);
}

/* One run's geometry and operands. */
struct w2_geom {
    const uint16_t *x, *z;
    uint16_t *y;
    int64_t h, w, oh, ow, th, tw;
    enum mixrt_fconv_act act; /* the node's */
    enum mixrt_pw_act ka;     /* the part the transform applies */
    float p0, p1;
    bool staged, scalar;
};

/* Tile t (image-major, then rows, then columns) into row t_in_block of the block's V. */
static void w2_in(const struct w2_state *st, const struct w2_geom *gm, size_t t, uint16_t *v, size_t ld) {
    const int64_t per = gm->th * gm->tw, b = (int64_t)t / per, ty = (int64_t)t % per / gm->tw, tx = (int64_t)t % gm->tw;
    const struct mixrt_wino2_in a = {.x = gm->x + (size_t)(b * gm->h * gm->w * st->c), .h = gm->h, .w = gm->w,
                                     .c = st->c, .iy0 = 2 * ty - st->pt, .ix0 = 2 * tx - st->pl, .v = v, .ld = ld};
#if defined(__x86_64__)
    if (!gm->scalar) {
        mixrt_wino2_in_avx512(&a);
        return;
    }
#endif
    in_scalar(&a);
}

/* Tile t's output pixels from its products (mm, rows ld floats apart); stage: 4 x m floats of
 * this thread's when the activation runs over f32 afterwards. */
static void w2_out(const struct w2_state *st, const struct w2_geom *gm, size_t t, const float *mm, size_t ld,
                   float *stage) {
    const int64_t per = gm->th * gm->tw, b = (int64_t)t / per, oy = (int64_t)t % per / gm->tw * 2,
                  ox = (int64_t)t % gm->tw * 2;
    const int rows = gm->oh - oy < 2 ? 1 : 2, cols = gm->ow - ox < 2 ? 1 : 2;
    const size_t at = (size_t)(((b * gm->oh + oy) * gm->ow + ox) * st->m), row = (size_t)(gm->ow * st->m);
    struct mixrt_wino2_out a = {.mm = mm, .ld = ld, .m = st->m, .bias = st->b, .z = gm->z ? gm->z + at : NULL,
                                .y = gm->staged ? (void *)stage : (void *)(gm->y + at), .y_f32 = gm->staged,
                                .row = gm->staged ? 2 * (size_t)st->m : row, .zrow = row, .rows = rows, .cols = cols,
                                .act = gm->ka, .p0 = gm->p0, .p1 = gm->p1};
#if defined(__x86_64__)
    if (!gm->scalar) mixrt_wino2_out_avx512(&a);
    else out_scalar(&a);
#else
    out_scalar(&a);
#endif
    if (gm->staged)
        for (int r = 0; r < rows; r++) {
            float *f = stage + (size_t)r * 2 * (size_t)st->m;
            const size_t len = (size_t)cols * (size_t)st->m;
            mixrt_elt_fconv_act(gm->act, gm->p0, gm->p1, f, len);
            mixrt_f32_to_bf16(f, (mixrt_bf16 *)gm->y + at + (size_t)r * row, len);
        }
}

static int g_groups = -1; /* tests: 1 / 0 forces the grouped / blocked schedule, -1 by U's size */
void mixrt_wino2_force_groups(int on) { g_groups = on; }

/* The schedule of small U (C and M up to 128): groups of T tiles, each taken by one thread
 * through the input transforms, the 16 products and the output transforms in its own scratch
 * (V [16][T][C], M [16][T][16 NB], a stage), so no barrier stands between the phases. The
 * blocked schedule (w2_run) met three barriers a block, whose waits held it to one thread's
 * speed on ResNet-50's 56x56x64 layers (one thread 451 us, two 416; oneDNN's direct conv 550 and
 * 293); there U is read once a group, here from the cache (128 KB at 64 channels). */
static mixrt_status w2_run_groups(struct mixrt_kernel_ctx *k, const struct w2_state *st, const struct w2_geom *gm,
                                  size_t tiles, int nt) {
    const size_t vld = (size_t)st->c, mld = (size_t)(st->nb * MIXRT_PW_NBLK);
    const size_t per_tile = MIXRT_WINO2_XI * (vld * sizeof(uint16_t) + mld * sizeof(float));
    size_t T = W2_GROUP_BYTES / per_tile / 4 * 4;
    if (T < 4) T = 4;
    if (T > tiles) T = tiles;
    const size_t groups = (tiles + T - 1) / T;
    if (nt > (int)groups) nt = (int)groups;
    const size_t v_bytes = MIXRT_WINO2_XI * T * vld * sizeof(uint16_t), m_bytes = MIXRT_WINO2_XI * T * mld * sizeof(float);
    const size_t stage_bytes = gm->staged ? 4 * mld * sizeof(float) : 0;
    const size_t each = (v_bytes + m_bytes + stage_bytes + 63) / 64 * 64, bytes = (size_t)nt * each;
    bool owned;
    char *base = mixrt_kernel_scratch(k, bytes, &owned);
    if (!base) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of Winograd tiles", bytes);
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        uint16_t *v = (uint16_t *)(base + (size_t)tid * each);
        float *mm = (float *)((char *)v + v_bytes), *stage = (float *)((char *)mm + m_bytes);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t gi = 0; gi < groups; gi++) {
            const size_t t0 = gi * T, nb = tiles - t0 < T ? tiles - t0 : T;
            for (size_t t = 0; t < nb; t++) w2_in(st, gm, t0 + t, v + t * vld, T * vld);
            for (size_t xi = 0; xi < MIXRT_WINO2_XI; xi++) {
                const struct mixrt_pw_call c = {.x = v + xi * T * vld, .z = NULL, .y = mm + xi * T * mld, .y_f32 = true,
                                                .rows = (int64_t)nb, .k = (int64_t)vld, .n = (int64_t)mld,
                                                .kp = st->kp, .w = st->u + xi * st->mat, .b = st->zero,
                                                .act = MIXRT_PW_ACT_NONE};
                mixrt_pw_rows(&c, gm->scalar);
            }
            for (size_t t = 0; t < nb; t++) w2_out(st, gm, t0 + t, mm + t * mld, T * mld, stage);
        }
    }
    if (owned) mixrt_free(k->ctx, base, bytes);
    return MIXRT_STATUS_OK;
}

static mixrt_status w2_run(struct mixrt_kernel_ctx *k) {
    const struct w2_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *z = mixrt_kernel_opt_input(k, 3);
    enum mixrt_fconv_act act;
    float p0, p1;
    /* Whatever is not the case prepare saw (the reference words the errors). */
    if (!st || !x || !w || x->dtype != MIXRT_DTYPE_BF16 || x->rank != 4 || x->dims[3] != st->c || w->rank != 4 ||
        w->dims[0] != st->m || w->dims[1] != st->c || w->dims[2] != 3 || w->dims[3] != 3 ||
        !mixrt_fconv_read_act(k->node, &act, &p0, &p1) || mixrt_tensor_numel(x) == 0)
        return run_ref(k);
    const int64_t oh = x->dims[1] + st->pt + st->pb - 2, ow = x->dims[2] + st->pl + st->pr - 2;
    if (oh < 1 || ow < 1) return run_ref(k);
    const int64_t yd[4] = {x->dims[0], oh, ow, st->m};
    if (z && (z->dtype != MIXRT_DTYPE_BF16 || z->rank != 4 || memcmp(z->dims, yd, sizeof(yd)))) return run_ref(k);
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_BF16, 4, yd, &y);
    if (status != MIXRT_STATUS_OK) return status;
    const enum mixrt_pw_act ka = mixrt_pw_act_of(act);
    const struct w2_geom gm = {
        .x = x->data, .z = z ? z->data : NULL, .y = y->data, .h = x->dims[1], .w = x->dims[2], .oh = oh, .ow = ow,
        .th = (oh + 1) / 2, .tw = (ow + 1) / 2, .act = act, .ka = ka, .p0 = p0, .p1 = p1,
        .staged = act != MIXRT_FCONV_NONE && ka == MIXRT_PW_ACT_NONE, .scalar = g_force_scalar || !mixrt_pw_hw(),
    };
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
#endif
    const size_t tiles = (size_t)(x->dims[0] * gm.th * gm.tw);
    if (g_groups >= 0 ? g_groups : st->u_bytes <= W2_GROUP_U_BYTES) return w2_run_groups(k, st, &gm, tiles, nt);
    /* Blocks of whole 4-row tiles of the product, about W2_BLOCK_BYTES each, as even as whole
     * tiles allow. V's rows are C apart (the tile kernel's row pitch is its K); M's are padded
     * to whole 16-channel blocks (the padded outputs' weights and bias are zeros). */
    const size_t vld = (size_t)st->c, mld = (size_t)(st->nb * MIXRT_PW_NBLK);
    const size_t per_tile = MIXRT_WINO2_XI * (vld * sizeof(uint16_t) + mld * sizeof(float));
    size_t nblk = (tiles * per_tile + W2_BLOCK_BYTES - 1) / W2_BLOCK_BYTES;
    if (nblk < 1) nblk = 1;
    size_t tb = (tiles + nblk - 1) / nblk;
    tb = (tb + 3) / 4 * 4;
    if (tb > tiles) tb = tiles;
    const size_t v_bytes = MIXRT_WINO2_XI * tb * vld * sizeof(uint16_t), m_bytes = MIXRT_WINO2_XI * tb * mld * sizeof(float);
    const size_t stage_bytes = gm.staged ? (size_t)nt * 4 * mld * sizeof(float) : 0;
    const size_t bytes = v_bytes + m_bytes + stage_bytes;
    bool owned;
    uint16_t *v = mixrt_kernel_scratch(k, bytes, &owned);
    if (!v) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of Winograd tiles", bytes);
    float *mm = (float *)((char *)v + v_bytes), *stages = (float *)((char *)mm + m_bytes);
    /* Products: per position, chunks of whole 4-row tiles, so the threads have at least two
     * tasks each. */
    size_t chunks = ((size_t)nt * 2 + MIXRT_WINO2_XI - 1) / MIXRT_WINO2_XI;
    if (chunks > (tb + 7) / 8) chunks = (tb + 7) / 8;
    if (chunks < 1) chunks = 1;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        for (size_t t0 = 0; t0 < tiles; t0 += tb) {
            const size_t nb = tiles - t0 < tb ? tiles - t0 : tb;
            size_t per = (nb + chunks - 1) / chunks;
            per = (per + 3) / 4 * 4;
            const size_t nch = (nb + per - 1) / per;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (size_t t = 0; t < nb; t++) w2_in(st, &gm, t0 + t, v + t * vld, tb * vld);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (size_t q = 0; q < MIXRT_WINO2_XI * nch; q++) {
                const size_t xi = q / nch, r0 = q % nch * per, nr = nb - r0 < per ? nb - r0 : per;
                const struct mixrt_pw_call c = {.x = v + (xi * tb + r0) * vld, .z = NULL,
                                                .y = mm + (xi * tb + r0) * mld, .y_f32 = true, .rows = (int64_t)nr,
                                                .k = (int64_t)vld, .n = (int64_t)mld, .kp = st->kp,
                                                .w = st->u + xi * st->mat, .b = st->zero, .act = MIXRT_PW_ACT_NONE};
                mixrt_pw_rows(&c, gm.scalar);
            }
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
            for (size_t t = 0; t < nb; t++)
                w2_out(st, &gm, t0 + t, mm + t * mld, tb * mld, stages + (size_t)tid * 4 * mld);
        }
    }
    if (owned) mixrt_free(k->ctx, v, bytes);
    return MIXRT_STATUS_OK;
}

const struct mixrt_cpu_kernel mixrt_wino2_kernels[] = {
    {"wino_bf16_nhwc", MIXRT_DOMAIN, "FusedConv", w2_supports, w2_prepare, w2_release, w2_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
