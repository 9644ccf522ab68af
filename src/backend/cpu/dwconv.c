/* dwconv.c - "dw_conv_nhwc": com.mixrt FusedConv when it is a 2-D depthwise conv (group == C ==
 * M) on channels-last f32 or bf16, with the weights repacked once to f32 [C/16][taps][16]; rows
 * of output run in parallel (OpenMP), each summed in f32 and rounded once to the output dtype.
 * bf16 3x3 layers on AVX512-BF16 CPUs also get the weights rounded to bf16 and pair-packed for
 * vdpbf16ps (mixrt_dwconv_dp_wanted; 0.70-0.86 of the FMA path's time on MobileNetV2's ten dw shapes, 2
 * threads of a Zen 5 VM).
 * Invariant: anything the row kernels cannot do exactly goes to the reference kernel. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/dwconv_impl.h"
#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"

/* ---- the scalar twin of the row kernel -------------------------------------------------- */

static inline float load_f(const void *p, bool bf, int64_t i) {
    return bf ? mixrt_bf16_to_float(((const mixrt_bf16 *)p)[i]) : ((const float *)p)[i];
}

static void row_scalar(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    const int64_t C = g->c, ih0 = r->oy * g->sh - g->pt;
    for (int64_t ow = 0; ow < g->ow; ow++) {
        const int64_t iw0 = ow * g->sw - g->pl;
        for (int64_t c = 0; c < C; c++) {
            float v = r->b[c];
            for (int64_t kh = 0; kh < g->kh; kh++) {
                const int64_t ih = ih0 + kh * g->dh;
                if (ih < 0 || ih >= g->h) continue;
                for (int64_t kw = 0; kw < g->kw; kw++) {
                    const int64_t iw = iw0 + kw * g->dw;
                    if (iw < 0 || iw >= g->w) continue;
                    v += load_f(r->x, r->bf16, (ih * g->w + iw) * C + c) *
                         r->w[mixrt_dwconv_widx(c, kh * g->kw + kw, g->kh * g->kw)];
                }
            }
            if (r->z) v += load_f(r->z, r->bf16, ow * C + c);
            switch (r->act) {
            case MIXRT_DWCONV_ACT_RELU: v = v > 0.0f ? v : 0.0f; break;
            case MIXRT_DWCONV_ACT_CLIP: v = v < r->p0 ? r->p0 : v > r->p1 ? r->p1 : v; break;
            case MIXRT_DWCONV_ACT_LEAKY: v = v >= 0.0f ? v : r->p0 * v; break;
            case MIXRT_DWCONV_ACT_SILU: v = v / (1.0f + expf(-v)); break;
            case MIXRT_DWCONV_ACT_HSWISH: {
                float h = (v + 3.0f) * (1.0f / 6.0f);
                v *= h > 1.0f ? 1.0f : h < 0.0f ? 0.0f : h;
                break;
            }
            default: break;
            }
            if (r->y_bf16)
                ((mixrt_bf16 *)r->y)[ow * C + c] = mixrt_bf16_from_float(v);
            else
                ((float *)r->y)[ow * C + c] = v;
        }
    }
}

const struct mixrt_dwconv_isa mixrt_dwconv_isa_scalar = {"scalar", row_scalar};

static int g_force_scalar; /* tests only */

static int g_force_int_bf16; /* tests only */

static int g_force_no_bf16dp; /* tests only */

static int g_force_avx2; /* tests only */

void mixrt_dwconv_force_scalar(bool scalar) { g_force_scalar = scalar; }
void mixrt_dwconv_force_avx2(bool avx2) { g_force_avx2 = avx2; }
void mixrt_dwconv_force_int_bf16(bool on) { g_force_int_bf16 = on; }
void mixrt_dwconv_force_no_bf16dp(bool off) { g_force_no_bf16dp = off; }

const struct mixrt_dwconv_isa *mixrt_dwconv_isa(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    /* dwconv_avx512.c is compiled with F/BW/VL/DQ enabled: all four must be there. */
    if (!g_force_scalar && !g_force_avx2 && mixrt_cpu_avx512())
        return &mixrt_dwconv_isa_avx512;
    if (!g_force_scalar && f->avx2 && f->fma) return &mixrt_dwconv_isa_avx2;
#endif
    return &mixrt_dwconv_isa_scalar;
}

/* ---- the kernel ------------------------------------------------------------------------- */

enum mixrt_dwconv_act mixrt_dwconv_act_of(enum mixrt_fconv_act act, bool bf16) {
    return act == MIXRT_FCONV_RELU           ? MIXRT_DWCONV_ACT_RELU
           : act == MIXRT_FCONV_CLIP         ? MIXRT_DWCONV_ACT_CLIP
           : act == MIXRT_FCONV_LEAKY_RELU   ? MIXRT_DWCONV_ACT_LEAKY
           : act == MIXRT_FCONV_SILU && bf16 ? MIXRT_DWCONV_ACT_SILU
           : act == MIXRT_FCONV_HARD_SWISH   ? MIXRT_DWCONV_ACT_HSWISH
                                             : MIXRT_DWCONV_ACT_NONE;
}

static bool refuse(char *why, size_t why_size, const char *fmt, const char *arg) {
    if (why && why_size) snprintf(why, why_size, fmt, arg);
    return false;
}

static bool fast_dtype(mixrt_dtype t) { return t == MIXRT_DTYPE_F32 || t == MIXRT_DTYPE_BF16; }

static bool dw_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_fconv_act act;
    float p0, p1;
    /* For measuring against oneDNN's kernel on the same build. */
    const char *env = getenv("MIXRT_DWCONV");
    if (env && !strcmp(env, "off")) return refuse(why, why_size, "%s", "disabled by MIXRT_DWCONV=off");
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "%s", "X, W or Y absent");
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1))
        return refuse(why, why_size, "%s", "attribute 'activation' or 'activation_params' is malformed");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "%s", "not channels-last");
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if (!fast_dtype(xv->dtype)) return refuse(why, why_size, "X is %s, not f32 or bf16", mixrt_dtype_name(xv->dtype));
    if (yv->dtype != xv->dtype) return refuse(why, why_size, "%s", "Y's dtype differs from X's");
    if (n->n_inputs > 3 && n->inputs[3] >= 0 && g->values[n->inputs[3]].dtype != xv->dtype)
        return refuse(why, why_size, "%s", "Z's dtype differs from X's");
    if (xv->rank >= 0 && xv->rank != 4) return refuse(why, why_size, "%s", "not a 2-D conv (X's rank is not 4)");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1]))
        return refuse(why, why_size, "%s", "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[1] != 1)
        return refuse(why, why_size, "%s", "W is not a float [M, 1, KH, KW] tensor");
    int64_t group = mixrt_node_attr_int(n, "group", 1);
    if (group != w->dims[0]) return refuse(why, why_size, "%s", "not depthwise with multiplier 1 (group != M)");
    if (xv->rank == 4 && xv->dims[3].value >= 0 && xv->dims[3].value != group)
        return refuse(why, why_size, "%s", "not depthwise (group != C)");
    if (w->dims[0] < 1 || w->dims[2] < 1 || w->dims[3] < 1) return refuse(why, why_size, "%s", "W is empty");
    size_t nk = 0;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk);
    if (ks && (nk != 2 || ks[0] != w->dims[2] || ks[1] != w->dims[3]))
        return refuse(why, why_size, "%s", "attribute 'kernel_shape' differs from W's");
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (ap[0] && strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER"))
        return refuse(why, why_size, "attribute 'auto_pad' is '%s'", ap);
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !mixrt_dtype_is_float(g->values[n->inputs[2]].dtype))
        return refuse(why, why_size, "%s", "B is not a float tensor");
    return true;
}

void mixrt_dwconv_state_free(mixrt_context_t ctx, struct mixrt_dwconv_state *st) {
    if (!st) return;
    if (st->w) mixrt_free(ctx, st->w, st->w_bytes);
    if (st->b) mixrt_free(ctx, st->b, st->b_bytes);
    if (st->wdp) mixrt_free(ctx, st->wdp, st->wdp_bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

/* Whether node n (which dw_supports took) runs its interior columns on the AVX512-BF16 path:
 * a 3x3 kernel on bf16 X, column stride 1 or 2 without column dilation, on a CPU with
 * AVX512-BF16, not turned off (MIXRT_DWCONV_BF16DP=off: for measuring against the f32 FMA path on
 * the same plan). Its weights are then bf16, as in oneDNN's bf16 conv. */
bool mixrt_dwconv_dp_wanted(const struct mixrt_graph *g, const struct mixrt_node *n, const struct mixrt_tensor *w) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    const char *env = getenv("MIXRT_DWCONV_BF16DP");
    size_t ns = 0, nd = 0;
    const int64_t *s = mixrt_node_attr_ints(n, "strides", &ns), *d = mixrt_node_attr_ints(n, "dilations", &nd);
    return !g_force_no_bf16dp && !g_force_scalar && !(env && !strcmp(env, "off")) && f->avx512f && f->avx512bw &&
           f->avx512vl && f->avx512dq && f->avx512_bf16 && g->values[n->inputs[0]].dtype == MIXRT_DTYPE_BF16 &&
           w->dims[2] == 3 && w->dims[3] == 3 && (!s || (ns == 2 && (s[1] == 1 || s[1] == 2))) &&
           (!d || (nd == 2 && d[1] == 1));
#else
    (void)g, (void)n, (void)w;
    return false;
#endif
}

mixrt_status mixrt_dwconv_pack(mixrt_context_t ctx, const char *name, const struct mixrt_tensor *w,
                               const struct mixrt_tensor *b, bool dp, struct mixrt_dwconv_state **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_dwconv_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    st->c = w->dims[0], st->kh = w->dims[2], st->kw = w->dims[3];
    st->cp = (st->c + MIXRT_DWCONV_CBLK - 1) / MIXRT_DWCONV_CBLK * MIXRT_DWCONV_CBLK;
    st->b_const = true;
    size_t taps, wn;
    MIXRT_CHECK(ctx,
                mixrt_mul_size((size_t)st->kh, (size_t)st->kw, &taps) && mixrt_mul_size(taps, (size_t)st->cp, &wn) &&
                    mixrt_mul_size(wn, sizeof(float), &st->w_bytes),
                MIXRT_STATUS_INVALID_MODEL, "cannot build node '%s': W's size overflows", name);
    /* The bias padded to the AVX512-BF16 path's 32 channels (it reads whole blocks). */
    st->b_bytes = (size_t)((st->c + MIXRT_DWCONV_DP_CBLK - 1) / MIXRT_DWCONV_DP_CBLK * MIXRT_DWCONV_DP_CBLK) *
                  sizeof(float);
    st->w = mixrt_alloc(ctx, st->w_bytes);
    st->b = mixrt_alloc(ctx, st->b_bytes);
    if (!st->w || !st->b) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    memset(st->w, 0, st->w_bytes);
    memset(st->b, 0, st->b_bytes);
    /* ONNX W [C, 1, KH, KW] -> per block of 16 channels, its taps in a row of vectors. */
    for (int64_t c = 0; c < st->c; c++)
        for (int64_t t = 0; t < st->kh * st->kw; t++)
            st->w[mixrt_dwconv_widx(c, t, st->kh * st->kw)] =
                (float)mixrt_load_f64(w->data, w->dtype, (size_t)(c * st->kh * st->kw + t));
    if (dp) {
        const int64_t blocks = (st->c + MIXRT_DWCONV_DP_CBLK - 1) / MIXRT_DWCONV_DP_CBLK;
        st->wdp_bytes = (size_t)blocks * MIXRT_DWCONV_DP_BLOCK * sizeof(uint16_t);
        if (!(st->wdp = mixrt_alloc(ctx, st->wdp_bytes))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        memset(st->wdp, 0, st->wdp_bytes);
        /* The f32 weights rounded to bf16 too: the border columns (f32 FMA path) and the scalar
         * twin then compute with the weights the pairs hold. */
        for (int64_t c = 0; c < st->c; c++)
            for (int t = 0; t < 9; t++) {
                float *wf = &st->w[mixrt_dwconv_widx(c, t, 9)];
                mixrt_bf16 h = mixrt_bf16_from_float(*wf);
                *wf = mixrt_bf16_to_float(h);
                const int kh = t / 3, kw = t % 3;
                st->wdp[mixrt_dwconv_dp_widx(c, kh == 2 ? 3 + kw : kw, kh == 1)] = h.bits;
            }
    }
    if (b) {
        MIXRT_CHECK(ctx, b->rank == 1 && b->dims[0] == st->c, MIXRT_STATUS_INVALID_MODEL,
                    "cannot build node '%s': the depthwise bias has %lld elements, expected %lld", name,
                    (long long)mixrt_tensor_numel(b), (long long)st->c);
        for (int64_t c = 0; c < st->c; c++) st->b[c] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)c);
    }
    *out = st;
    return MIXRT_STATUS_OK;
fail:
    mixrt_dwconv_state_free(ctx, st);
    return status;
}

static void dw_release(mixrt_context_t ctx, void *state) { mixrt_dwconv_state_free(ctx, state); }

static mixrt_status dw_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    char why[160] = "";
    if (!dw_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedConv node '%s' with dw_conv_nhwc: %s",
                           n->name, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 && mixrt_graph_is_fixed_const(g, bi) ? g->values[bi].init : NULL;
    struct mixrt_dwconv_state *st = NULL;
    mixrt_status status = mixrt_dwconv_pack(ctx, n->name, w, b, mixrt_dwconv_dp_wanted(g, n, w), &st);
    if (status != MIXRT_STATUS_OK) return status;
    st->b_const = bi < 0 || b != NULL;
    *state = st;
    return MIXRT_STATUS_OK;
}

static _Atomic unsigned long g_ref_runs, g_dp_runs;

unsigned long mixrt_dwconv_ref_runs(void) { return g_ref_runs; }
unsigned long mixrt_dwconv_bf16dp_runs(void) { return g_dp_runs; }

static mixrt_status run_ref(struct mixrt_kernel_ctx *k) {
    g_ref_runs++;
    return mixrt_cpu_run_reference(k);
}

/* The geometry of k's node on X (checked [N, H, W, C] with C == st->c); UNSUPPORTED for shapes
 * the reference kernel should word (then the caller runs it), other errors recorded. */
mixrt_status mixrt_dwconv_geometry(struct mixrt_kernel_ctx *k, const struct mixrt_dwconv_state *st, const struct mixrt_tensor *x,
                                struct mixrt_dwconv_geom *g) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t s[2], d[2], p[4];
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "strides", 2, 1, 1, INT32_MAX, s));
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "dilations", 2, 1, 1, INT32_MAX, d));
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "pads", 4, 0, 0, INT32_MAX, p));
    const char *ap = mixrt_node_attr_string(k->node, "auto_pad", "NOTSET");
    bool same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    const int64_t in[2] = {x->dims[1], x->dims[2]}, ks[2] = {st->kh, st->kw};
    int64_t out[2], pb[2];
    for (int i = 0; i < 2; i++) {
        if (in[i] < 1 || in[i] > INT32_MAX) return MIXRT_STATUS_UNSUPPORTED;
        int64_t dk = (ks[i] - 1) * d[i] + 1;
        if (same_upper || same_lower) {
            out[i] = (in[i] + s[i] - 1) / s[i];
            int64_t total = (out[i] - 1) * s[i] + dk - in[i];
            if (total < 0) total = 0;
            pb[i] = same_upper ? total / 2 : total - total / 2;
        } else {
            pb[i] = valid ? 0 : p[i];
            int64_t pe = valid ? 0 : p[2 + i];
            if (in[i] + pb[i] + pe < dk) return MIXRT_STATUS_UNSUPPORTED; /* the reference words it */
            out[i] = (in[i] + pb[i] + pe - dk) / s[i] + 1;
        }
    }
    g->h = in[0], g->w = in[1], g->c = st->c, g->oh = out[0], g->ow = out[1];
    g->kh = st->kh, g->kw = st->kw, g->sh = s[0], g->sw = s[1], g->dh = d[0], g->dw = d[1];
    g->pt = pb[0], g->pl = pb[1], g->cp = st->cp;
    /* Interior columns: ow * sw - pl >= 0 and ow * sw - pl + (KW - 1) * dw < W. */
    int64_t lo = (g->pl + g->sw - 1) / g->sw, lim = g->w + g->pl - (g->kw - 1) * g->dw;
    int64_t hi = lim <= 0 ? 0 : (lim + g->sw - 1) / g->sw;
    if (lo > g->ow) lo = g->ow;
    if (hi > g->ow) hi = g->ow;
    if (hi < lo) hi = lo;
    g->ow_lo = lo, g->ow_hi = hi;
fail:
    return status;
}

static mixrt_status dw_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_dwconv_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *b = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    float *braw = NULL, *scratch = NULL;
    size_t scratch_bytes = 0;
    enum mixrt_fconv_act act;
    float p0, p1;
    /* Whatever is not the depthwise case prepare saw (the reference words the errors). */
    if (!st || !x || !w || !fast_dtype(x->dtype) || x->rank != 4 || x->dims[3] != st->c || w->rank != 4 ||
        w->dims[0] != st->c || w->dims[1] != 1 || w->dims[2] != st->kh || w->dims[3] != st->kw ||
        mixrt_node_attr_int(k->node, "group", 1) != st->c || mixrt_node_attr_int(k->node, "channels_last", 0) != 1 ||
        !mixrt_fconv_read_act(k->node, &act, &p0, &p1) || (b && (b->rank != 1 || b->dims[0] != st->c)) ||
        (!st->b_const && !b) || mixrt_tensor_numel(x) == 0)
        return run_ref(k);
    struct mixrt_dwconv_geom g;
    mixrt_status gs = mixrt_dwconv_geometry(k, st, x, &g);
    if (gs == MIXRT_STATUS_UNSUPPORTED) return run_ref(k);
    if (gs != MIXRT_STATUS_OK) return gs;
    const int64_t ydims[4] = {x->dims[0], g.oh, g.ow, g.c};
    if (z && (z->dtype != x->dtype || z->rank != 4 || memcmp(z->dims, ydims, sizeof(ydims)))) return run_ref(k);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, 4, ydims, &y));
    const float *bias = st->b;
    if (!st->b_const) { /* B read at run time: widened to the padded f32 row the kernels read */
        if (!(braw = mixrt_alloc(k->ctx, st->b_bytes)))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the bias"));
        memset(braw, 0, st->b_bytes);
        for (int64_t c = 0; c < st->c; c++) braw[c] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)c);
        bias = braw;
    }
    const bool bf = x->dtype == MIXRT_DTYPE_BF16;
    enum mixrt_dwconv_act ka = mixrt_dwconv_act_of(act, bf);
    bool post = act != MIXRT_FCONV_NONE && ka == MIXRT_DWCONV_ACT_NONE;
    const int64_t rows = ydims[0] * g.oh;
    const size_t row_len = (size_t)(g.ow * g.c), esize = bf ? sizeof(mixrt_bf16) : sizeof(float);
    const size_t x_img = (size_t)(g.h * g.w * g.c);
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
    if (nt > rows) nt = (int)rows;
#endif
    /* bf16 with an activation the row kernels leave out: one f32 row per thread, the activation
     * over it, then one rounding to bf16. */
    const bool staged = bf && post;
    if (staged) {
        size_t per;
        if (!mixrt_mul_size(row_len, (size_t)nt, &per) || !mixrt_mul_size(per, sizeof(float), &scratch_bytes))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "scratch size overflows"));
        if (!(scratch = mixrt_alloc(k->ctx, scratch_bytes)))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch",
                                         scratch_bytes));
    }
    const struct mixrt_dwconv_isa *isa = mixrt_dwconv_isa();
    const bool hw_bf16 = mixrt_cpu_features()->avx512_bf16 && !g_force_int_bf16;
    /* The pairs as prepare packed them, for the geometry they were packed for. */
    const uint16_t *wdp = NULL;
#if defined(__x86_64__)
    if (st->wdp && bf && isa == &mixrt_dwconv_isa_avx512 && g.dw == 1 && (g.sw == 1 || g.sw == 2)) {
        wdp = st->wdp;
        g_dp_runs++;
    }
#endif
    const char *xd = x->data, *zd = z ? z->data : NULL;
    char *yd = y->data;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int64_t t = 0; t < rows; t++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        const int64_t n = t / g.oh, oy = t % g.oh;
        void *out = staged ? (void *)(scratch + (size_t)tid * row_len) : yd + (size_t)t * row_len * esize;
        struct mixrt_dwconv_row r = {.x = xd + (size_t)n * x_img * esize,
                                     .bf16 = bf,
                                     .oy = oy,
                                     .w = st->w,
                                     .b = bias,
                                     .wdp = wdp,
                                     .z = zd ? zd + (size_t)t * row_len * esize : NULL,
                                     .y = out,
                                     .y_bf16 = bf && !staged,
                                     .hw_bf16 = hw_bf16,
                                     .act = ka,
                                     .p0 = p0,
                                     .p1 = p1};
        isa->row(&g, &r);
        if (post) mixrt_elt_fconv_act(act, p0, p1, out, row_len); /* those the row kernels leave */
        if (staged) mixrt_f32_to_bf16(out, (mixrt_bf16 *)yd + (size_t)t * row_len, row_len);
    }
fail:
    if (braw) mixrt_free(k->ctx, braw, st->b_bytes);
    if (scratch) mixrt_free(k->ctx, scratch, scratch_bytes);
    return status;
}

const struct mixrt_cpu_kernel mixrt_dwconv_kernels[] = {
    {"dw_conv_nhwc", MIXRT_DOMAIN, "FusedConv", dw_supports, dw_prepare, dw_release, dw_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
