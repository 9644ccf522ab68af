/* igconv.c - "ig_conv_nhwc": com.mixrt FusedConv on channels-last bf16 X and Y with an even number
 * of input channels, one group, any kernel size, stride, dilation and explicit pads, taken as an
 * implicit product (no im2col copy: a table points each output pixel's row at its input pixel
 * for each tap, or at a row of zeros), on CPUs with AVX512-BF16. It is for convs of few output
 * pixels: ResNet-50's last stage (7x7 outputs, 512-2048 channels, 2-5 MB of weights a conv), where
 * oneDNN 2.6's bf16 convs read their weights from memory each run without hiding it. Here the
 * output channels are split between the threads in groups of 64, each thread streams its share
 * of W once, all rows in tiles of 5-6 rows by 4 blocks of 16 channels (24 accumulators), K in
 * steps of IG_CHUNK pairs with the partial sums in a small per-thread buffer; each step's tiles
 * prefetch the next step's W, and the last step's the tile's Z and Y lines. Bias, Z, the
 * activation and the rounding to bf16 in register (pwconv_avx512.c's epilogue). Activations the
 * tile lacks run over f32 rows afterwards. Timed against oneDNN's kernels like every candidate;
 * `MIXRT_IGCONV=off` leaves it out. A plan made here and run on a CPU without AVX512-BF16 runs
 * the scalar twin.
 * Measured (7x7x512 3x3, alone, µs, ours / oneDNN's direct): 300 / 290-330 with caches warm,
 * 311-346 / 347-427 after a 64 MB sweep; vdpbf16ps with a memory operand ran at a third of the
 * rate on Zen 5, so the tile broadcasts into a register (6 rows, not 7).
 * "igf_conv_nhwc" is its f32 twin (f32 X, Y and Z, any C, W packed in f32, FMA per k, CPUs with
 * AVX-512F; `MIXRT_IGFCONV=off` leaves it out): the same checks, row table, threading and K steps.
 * ResNet-50 f32's layer3/layer4 convs (1-9 MB of f32 weights each) otherwise read their weights
 * from memory at 300-370 GFLOP/s in the model. Measured there (batch 1, 2 threads, Zen 5): timed
 * warm it is within a few % of oneDNN's 1x1 (dnnl_conv1x1_mm) and conv_sgemm on layer4 (256 vs
 * 234-241 us on a 2048 -> 512 1x1; 564 vs 593 on the 3x3s), 15-25 % over them at layer3's 196
 * rows, so builds take it on 0-6 of layer4's convs as the timings fall; in the model (a profile of
 * plans without dnnl_conv1x1_mm) it ran layer4's 1x1s 15-23 % under conv_sgemm / dnnl_fused_conv
 * (prefetching its weights), yet a plan with it on five of layer4's convs (weights-cold timing
 * forced for f32) ran 1.004 of one with dnnl_conv1x1_mm there (interleaved, with ONNX Runtime).
 * The first measurement (0.94-0.95 of MIXRT_IGFCONV=off) compared plans that both lacked
 * dnnl_conv1x1_mm (the candidate list was full; kernels.h).
 * Invariant: anything outside the case prepare saw goes to the reference kernel. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/pwconv_impl.h"

/* Pairs of K a step (the partial sums go to the per-thread buffer between steps): 256 KiB of a
 * group's W, read from L2 by the rows' tiles after the first; steps of 32-128 pairs were 15-45 %
 * slower on a 7x7x512 3x3 conv, 512-1152 the same. */
#define IG_CHUNK 1024
/* igf's k a step: 256 KiB of a group's f32 W, as IG_CHUNK's pairs. A prototype of the tile on
 * the layer4 convs (7x7, 2 threads): steps of 256 k were 5-15 % slower, 512 3-7 %, 2048 the same. */
#define IGF_CHUNK 1024
/* Output pixels (all images) past which the builder does not offer the kernel: its tiles are
 * for few rows; oneDNN's and the other kernels block large images better. */
#define IG_MAX_ROWS 1024

static inline float bf(uint16_t h) { return mixrt_bf16_to_float((mixrt_bf16){h}); }

/* The scalar twin: per output the bias, then per tap and pair of input channels the odd product
 * then the even one (vdpbf16ps's order), then Z, the activation and one rounding. */
static void ig_scalar(const struct mixrt_ig_call *c) {
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t j = c->g0 * MIXRT_IG_BLOCKS * MIXRT_PW_NBLK;
             j < c->g1 * MIXRT_IG_BLOCKS * MIXRT_PW_NBLK && j < c->n; j++) {
            float v = c->b[j];
            for (int64_t t = 0; t < c->taps; t++) {
                const uint16_t *x = c->a[r * c->taps + t];
                for (int64_t p = 0; p < c->cp; p++) {
                    const int64_t k = (t * c->cp + p) * 2;
                    v += bf(x[2 * p + 1]) * bf(c->w[mixrt_ig_widx(c->kp, j, k + 1)]);
                    v += bf(x[2 * p]) * bf(c->w[mixrt_ig_widx(c->kp, j, k)]);
                }
            }
            if (c->z) v += bf(c->z[r * c->n + j]);
            v = mixrt_pw_act_scalar(c->act, c->p0, c->p1, v);
            if (c->y_f32)
                ((float *)c->y)[r * c->n + j] = v;
            else
                ((mixrt_bf16 *)c->y)[r * c->n + j] = mixrt_bf16_from_float(v);
        }
}

/* igf's scalar twin: per output the bias, then k in order (tap by tap, the channels within), then
 * Z and the activation (the one igf_act_of leaves to the tile; the driver runs the others). */
static void igf_scalar(const struct mixrt_igf_call *c) {
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t j = c->g0 * MIXRT_IG_BLOCKS * MIXRT_PW_NBLK;
             j < c->g1 * MIXRT_IG_BLOCKS * MIXRT_PW_NBLK && j < c->n; j++) {
            float v = c->b[j];
            for (int64_t t = 0; t < c->taps; t++) {
                const float *x = c->a[r * c->taps + t];
                for (int64_t q = 0; q < c->c; q++) v += x[q] * c->w[mixrt_igf_widx(c->k, j, t * c->c + q)];
            }
            if (c->z) v += c->z[r * c->n + j];
            c->y[r * c->n + j] = mixrt_pw_act_scalar(c->act, c->p0, c->p1, v);
        }
}

/* The activations igf's tile applies in register: the exact ones (SiLU's in-register form is
 * for bf16 outputs; it and the others run over Y afterwards). */
static enum mixrt_pw_act igf_act_of(enum mixrt_fconv_act act) {
    const enum mixrt_pw_act a = mixrt_pw_act_of(act);
    return a == MIXRT_PW_ACT_SILU ? MIXRT_PW_ACT_NONE : a;
}

static int g_force_scalar, g_forcef_scalar; /* tests only: ig's, igf's */
void mixrt_igconv_force_scalar(bool scalar) { g_force_scalar = scalar; }
void mixrt_igfconv_force_scalar(bool scalar) { g_forcef_scalar = scalar; }

/* One node's packed operands, ig's (bf16) or igf's (f32). */
struct ig_state {
    bool f32;
    int64_t n, c, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, nb, ng;
    int64_t kp; /* W's K units: pairs (ig), k (igf) */
    void *w;    /* packed: bf16 (mixrt_ig_widx) or f32 (mixrt_igf_widx), k = (kh * KW + kw) * C + c */
    float *b;   /* [nb * 16] */
    void *zero; /* C zeros of X's dtype: the row a padded tap reads */
    bool b_const;
    size_t w_bytes, b_bytes, zero_bytes;
};

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

/* ig's check (f32 false) or igf's: what both ask, but for X's dtype, C's parity and the CPU. */
static bool ig_check(const struct mixrt_graph *g, const struct mixrt_node *n, bool f32, char *why, size_t why_size) {
    /* for measuring against oneDNN on the same build */
    const char *env = getenv(f32 ? "MIXRT_IGFCONV" : "MIXRT_IGCONV");
    if (env && !strcmp(env, "off"))
        return refuse(why, why_size, f32 ? "disabled by MIXRT_IGFCONV=off" : "disabled by MIXRT_IGCONV=off");
    if (f32 && !g_forcef_scalar && !mixrt_cpu_avx512()) return refuse(why, why_size, "the CPU has no AVX-512");
    if (!f32 && !g_force_scalar && !mixrt_pw_hw()) return refuse(why, why_size, "the CPU has no AVX512-BF16");
    if (!mixrt_pw_node_ok_dtype(g, n, f32 ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_BF16, why, why_size)) return false;
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[0] < 1 || w->dims[0] > 65536 || w->dims[1] < 1 ||
        w->dims[1] > 65536 || w->dims[2] < 1 || w->dims[2] > 16 || w->dims[3] < 1 || w->dims[3] > 16)
        return refuse(why, why_size, "W is not a float [M, C, KH, KW] tensor of M, C <= 65536, KH and KW <= 16");
    if (!f32 && w->dims[1] % 2) return refuse(why, why_size, "odd C (the bf16 tile takes pairs of channels)");
    size_t nks = 0;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nks);
    if (ks && (nks != 2 || ks[0] != w->dims[2] || ks[1] != w->dims[3]))
        return refuse(why, why_size, "kernel_shape differs from W's");
    int64_t pads[4], s[2], d[2];
    if (!mixrt_fconv_two_ints(n, "strides", s) || !mixrt_fconv_two_ints(n, "dilations", d))
        return refuse(why, why_size, "strides or dilations malformed or over 64");
    if (!mixrt_fconv_explicit_pads(n, pads, 1024)) return refuse(why, why_size, "auto_pad SAME or malformed pads");
    const struct mixrt_value *xv = &g->values[n->inputs[0]];
    if (xv->rank != 4) return refuse(why, why_size, "X's rank is not known to be 4");
    for (int i = 0; i < 4; i++)
        if (xv->dims[i].value < 1) return refuse(why, why_size, "X's shape is not known at build time");
    if (xv->dims[3].value != w->dims[1]) return refuse(why, why_size, "X's channels differ from W's");
    const int64_t eh = xv->dims[1].value + pads[0] + pads[2] - (w->dims[2] - 1) * d[0] - 1,
                  ew = xv->dims[2].value + pads[1] + pads[3] - (w->dims[3] - 1) * d[1] - 1;
    if (eh < 0 || ew < 0) return refuse(why, why_size, "the kernel is larger than the padded image");
    /* each factor at most IG_MAX_ROWS before the product (no overflow on absurd shapes) */
    const int64_t nb = xv->dims[0].value, oh = eh / s[0] + 1, ow = ew / s[1] + 1;
    if (nb > IG_MAX_ROWS || oh > IG_MAX_ROWS || ow > IG_MAX_ROWS || nb * oh * ow > IG_MAX_ROWS)
        return refuse(why, why_size, "more than 1024 output pixels (a case for the blocked kernels)");
    return true;
}

static bool ig_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return ig_check(g, n, false, why, why_size);
}

static bool igf_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return ig_check(g, n, true, why, why_size);
}

static void ig_release(mixrt_context_t ctx, void *state) {
    struct ig_state *st = state;
    if (!st) return;
    if (st->w) mixrt_free(ctx, st->w, st->w_bytes);
    if (st->b) mixrt_free(ctx, st->b, st->b_bytes);
    if (st->zero) mixrt_free(ctx, st->zero, st->zero_bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status ig_prepare_as(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                  bool f32, void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct ig_state *st = NULL;
    char why[160] = "";
    if (!ig_check(g, n, f32, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedConv node '%s' with %s: %s", n->name,
                           f32 ? "igf_conv_nhwc" : "ig_conv_nhwc", why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    MIXRT_CHECK(ctx, w->data, MIXRT_STATUS_INTERNAL, "FusedConv node '%s': W's bytes are gone (dropped after packing)",
                n->name);
    int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 && mixrt_graph_is_fixed_const(g, bi) ? g->values[bi].init : NULL;
    st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    int64_t pads[4] = {0, 0, 0, 0}, s[2] = {1, 1}, d[2] = {1, 1};
    (void)mixrt_fconv_explicit_pads(n, pads, 1024);
    (void)mixrt_fconv_two_ints(n, "strides", s);
    (void)mixrt_fconv_two_ints(n, "dilations", d);
    st->pt = pads[0], st->pl = pads[1], st->pb = pads[2], st->pr = pads[3];
    st->sh = s[0], st->sw = s[1], st->dh = d[0], st->dw = d[1];
    st->f32 = f32;
    st->n = w->dims[0], st->c = w->dims[1], st->kh = w->dims[2], st->kw = w->dims[3];
    const int64_t taps = st->kh * st->kw, k = taps * st->c;
    st->kp = f32 ? k : k / 2, st->nb = (st->n + MIXRT_PW_NBLK - 1) / MIXRT_PW_NBLK;
    st->ng = (st->nb + MIXRT_IG_BLOCKS - 1) / MIXRT_IG_BLOCKS;
    st->b_const = bi < 0 || b != NULL;
    /* a group's W of one K unit: 64 f32, or 64 pairs of bf16 (the same 256 bytes) */
    st->w_bytes = (size_t)st->ng * (size_t)st->kp * MIXRT_IG_BLOCKS * MIXRT_PW_NBLK * 4;
    st->b_bytes = (size_t)st->nb * MIXRT_PW_NBLK * sizeof(float);
    st->zero_bytes = (size_t)st->c * (f32 ? sizeof(float) : sizeof(uint16_t));
    st->w = mixrt_alloc(ctx, st->w_bytes);
    st->b = mixrt_alloc(ctx, st->b_bytes);
    st->zero = mixrt_alloc(ctx, st->zero_bytes);
    if (!st->w || !st->b || !st->zero) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    memset(st->w, 0, st->w_bytes);
    memset(st->b, 0, st->b_bytes);
    memset(st->zero, 0, st->zero_bytes);
    /* W [M, C, KH, KW] in f32 (igf), or rounded to bf16 (ig: exact for bf16 weights, as oneDNN's
     * bf16 conv rounds f32 ones), K ordered tap by tap, the channels within a tap. */
    for (int64_t j = 0; j < st->n; j++)
        for (int64_t ch = 0; ch < st->c; ch++)
            for (int64_t t = 0; t < taps; t++) {
                const size_t src = (size_t)(j * st->c + ch) * (size_t)taps + (size_t)t;
                if (f32)
                    ((float *)st->w)[mixrt_igf_widx(st->kp, j, t * st->c + ch)] =
                        (float)mixrt_load_f64(w->data, w->dtype, src);
                else
                    ((uint16_t *)st->w)[mixrt_ig_widx(st->kp, j, t * st->c + ch)] = mixrt_pw_wbits(w, src);
            }
    if (b) MIXRT_TRY(mixrt_pw_bias(ctx, n, b, st->n, st->b));
    *state = st;
    return MIXRT_STATUS_OK;
fail:
    ig_release(ctx, st);
    return status;
}

static mixrt_status ig_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    return ig_prepare_as(ctx, g, n, false, state);
}

static mixrt_status igf_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                void **state) {
    return ig_prepare_as(ctx, g, n, true, state);
}

static _Atomic unsigned long g_ref_runs, g_reff_runs; /* ig's, igf's */
unsigned long mixrt_igconv_ref_runs(void) { return g_ref_runs; }
unsigned long mixrt_igfconv_ref_runs(void) { return g_reff_runs; }

static mixrt_status run_ref(struct mixrt_kernel_ctx *k, bool f32) {
    if (f32)
        g_reff_runs++;
    else
        g_ref_runs++;
    return mixrt_cpu_run_reference(k);
}

/* ig's run (f32 false) or igf's: a state of the other dtype (none is made so) goes to the
 * reference too. */
static mixrt_status ig_run_as(struct mixrt_kernel_ctx *k, bool f32) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct ig_state *st = k->state;
    const mixrt_dtype dt = f32 ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_BF16;
    const size_t es = f32 ? sizeof(float) : sizeof(uint16_t);
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *b = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    float *braw = NULL;
    void *scratch = NULL;
    bool owned = false;
    size_t scratch_bytes = 0;
    enum mixrt_fconv_act act;
    float p0, p1;
    /* Whatever is not the case prepare saw (the reference words the errors). */
    if (!st || st->f32 != f32 || !x || !w || x->dtype != dt || x->rank != 4 || x->dims[3] != st->c || w->rank != 4 ||
        w->dims[0] != st->n || w->dims[1] != st->c || w->dims[2] != st->kh || w->dims[3] != st->kw ||
        !mixrt_fconv_read_act(k->node, &act, &p0, &p1) || (b && (b->rank != 1 || b->dims[0] != st->n)) ||
        (!st->b_const && !b) || mixrt_tensor_numel(x) == 0)
        return run_ref(k, f32);
    const int64_t h = x->dims[1], wd = x->dims[2];
    const int64_t eh = h + st->pt + st->pb - (st->kh - 1) * st->dh - 1,
                  ew = wd + st->pl + st->pr - (st->kw - 1) * st->dw - 1;
    if (eh < 0 || ew < 0) return run_ref(k, f32);
    const int64_t oh = eh / st->sh + 1, ow = ew / st->sw + 1;
    const int64_t ydims[4] = {x->dims[0], oh, ow, st->n};
    if (z && (z->dtype != dt || z->rank != 4 || memcmp(z->dims, ydims, sizeof(ydims)))) return run_ref(k, f32);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, 4, ydims, &y));
    const float *bias = st->b;
    if (!st->b_const) { /* B read at run time, widened to the padded f32 row the tiles read */
        if (!(braw = mixrt_pw_run_bias(k, b, st->n, st->b_bytes))) return MIXRT_STATUS_OUT_OF_MEMORY;
        bias = braw;
    }
    const enum mixrt_pw_act ka = f32 ? igf_act_of(act) : mixrt_pw_act_of(act);
    /* An activation the tiles leave out: f32 Y rows (igf: Y itself), then the activation over
     * them (ig: and one rounding to bf16). */
    const bool staged = act != MIXRT_FCONV_NONE && ka == MIXRT_PW_ACT_NONE;
    const int64_t taps = st->kh * st->kw, rows = ydims[0] * oh * ow;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
#endif
    /* Each thread a run of whole groups (a tile's 4 blocks). */
    const int64_t per = (st->ng + nt - 1) / nt, shares = (st->ng + per - 1) / per;
    if (nt > shares) nt = (int)shares;
    /* scratch: the row table, each thread's partial sums, the f32 Y when staged (ig) */
    const size_t table = (size_t)rows * (size_t)taps * sizeof(void *);
    const size_t accb = (size_t)rows * MIXRT_IG_BLOCKS * MIXRT_PW_NBLK * sizeof(float);
    const size_t yf = staged && !f32 ? (size_t)rows * (size_t)st->n * sizeof(float) : 0;
    scratch_bytes = table + (size_t)nt * accb + yf;
    if (!(scratch = mixrt_kernel_scratch(k, scratch_bytes, &owned)))
        MIXRT_TRY(
            mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch", scratch_bytes));
    float *accs = (float *)((char *)scratch + table);
    float *yst = !staged ? NULL : f32 ? (float *)y->data : accs + (size_t)nt * (accb / sizeof(float));
    /* the row table: each row's input pixel at each tap (typed by the kernel's X) */
    const char *xd = x->data;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t img = r / (oh * ow), oy = r / ow % oh, ox = r % ow;
        for (int64_t i = 0; i < st->kh; i++)
            for (int64_t jx = 0; jx < st->kw; jx++) {
                const int64_t iy = oy * st->sh - st->pt + i * st->dh, ix = ox * st->sw - st->pl + jx * st->dw;
                const void *p = iy < 0 || iy >= h || ix < 0 || ix >= wd
                                    ? st->zero
                                    : xd + (size_t)(((img * h + iy) * wd + ix) * st->c) * es;
                if (f32)
                    ((const float **)scratch)[r * taps + i * st->kw + jx] = p;
                else
                    ((const uint16_t **)scratch)[r * taps + i * st->kw + jx] = p;
            }
    }
    const bool scalar = f32 ? g_forcef_scalar || !mixrt_cpu_avx512() : g_force_scalar || !mixrt_pw_hw();
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int s = 0; s < nt; s++) {
        const int64_t g0 = s * per, g1 = g0 + per < st->ng ? g0 + per : st->ng;
        if (g0 >= g1) continue;
        float *acc = accs + (size_t)s * (accb / sizeof(float));
        if (f32) {
            const struct mixrt_igf_call c = {.a = (const float *const *)scratch,
                                             .z = z ? z->data : NULL,
                                             .y = y->data,
                                             .rows = rows,
                                             .taps = taps,
                                             .c = st->c,
                                             .k = st->kp,
                                             .n = st->n,
                                             .chunk = IGF_CHUNK,
                                             .g0 = g0,
                                             .g1 = g1,
                                             .acc = acc,
                                             .w = st->w,
                                             .b = bias,
                                             .act = ka,
                                             .p0 = p0,
                                             .p1 = p1};
#if defined(__x86_64__)
            if (!scalar)
                mixrt_igf_run_avx512(&c);
            else
                igf_scalar(&c);
#else
            igf_scalar(&c);
#endif
            continue;
        }
        const struct mixrt_ig_call c = {.a = (const uint16_t *const *)scratch,
                                        .z = z ? z->data : NULL,
                                        .y = staged ? (void *)yst : y->data,
                                        .y_f32 = staged,
                                        .rows = rows,
                                        .taps = taps,
                                        .cp = st->c / 2,
                                        .kp = st->kp,
                                        .n = st->n,
                                        .chunk = IG_CHUNK,
                                        .g0 = g0,
                                        .g1 = g1,
                                        .acc = acc,
                                        .w = st->w,
                                        .b = bias,
                                        .act = ka,
                                        .p0 = p0,
                                        .p1 = p1};
#if defined(__x86_64__)
        if (!scalar)
            mixrt_ig_run_avx512(&c);
        else
            ig_scalar(&c);
#else
        ig_scalar(&c);
#endif
    }
    if (staged) {
        const size_t len = (size_t)rows * (size_t)st->n;
        mixrt_elt_fconv_act(act, p0, p1, yst, len);
        if (!f32) mixrt_f32_to_bf16(yst, (mixrt_bf16 *)y->data, len);
    }
fail:
    if (braw) mixrt_free(k->ctx, braw, st->b_bytes);
    if (scratch && owned) mixrt_free(k->ctx, scratch, scratch_bytes);
    return status;
}

static mixrt_status ig_run(struct mixrt_kernel_ctx *k) { return ig_run_as(k, false); }
static mixrt_status igf_run(struct mixrt_kernel_ctx *k) { return ig_run_as(k, true); }

const struct mixrt_cpu_kernel mixrt_igconv_kernels[] = {
    {"ig_conv_nhwc", MIXRT_DOMAIN, "FusedConv", ig_supports, ig_prepare, ig_release, ig_run},
    {"igf_conv_nhwc", MIXRT_DOMAIN, "FusedConv", igf_supports, igf_prepare, ig_release, igf_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
