/* stemconv.c - "stem_conv_nhwc": com.mixrt FusedConv of at most 4 input channels (an image's
 * first conv: MobileNet's and EfficientNet's 3x3 stride-2 stems, ResNet's 7x7, ConvNeXt's 4x4
 * patches) on channels-last f32 or bf16 X and Y, one group, no dilation, explicit pads, any
 * stride, no Z. oneDNN's f32 direct conv has no good blocking for 3 input channels (HF
 * EfficientNet's 3 -> 64 3x3 stem: 0.45 ms timed alone, 1.3 ms in the model). Here each output
 * pixel is the sum over its kh kw c taps of a broadcast input times a vector of output channels,
 * in f32 (bf16 X widened exactly, once), weights packed once at prepare as
 * [kh][kw][c][M padded to 16] f32; rows of output in parallel; the activation in register where
 * the tile kernels have it (pwconv_impl.h), else over the f32 row afterwards. Timed against
 * oneDNN like every candidate; `MIXRT_STEM_CONV=off` leaves it out. Measured (Zen 5, 2 vCPUs):
 * f32 stems 0.40 vs 0.45 ms (HF EfficientNet), 0.22 vs 0.29-0.34 ms in EfficientNet-B0, ties on
 * ResNet's 7x7 and MobileNetV2's; bf16 stems lose to oneDNN's bf16 conv (MobileNetV2 148 vs
 * 94 us: the f32 FMA rate against its vdpbf16ps; pairs of taps by vdpbf16ps with the channels
 * padded to 4 were tried and still lost, 113 vs 94 us), so there the timing keeps oneDNN.
 * Scalar twin for CPUs without AVX-512.
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
#include "backend/cpu/stemconv_impl.h"

static int g_force_scalar; /* tests only */
void mixrt_stemconv_force_scalar(bool scalar) { g_force_scalar = scalar; }

/* The scalar twin of mixrt_stem_row_avx512: the same taps in the same order, by fmaf. */
static void row_scalar(const struct mixrt_stem_row *r) {
    for (int64_t ox = 0; ox < r->ow; ox++) {
        const int64_t ix0 = ox * r->sw - r->pl;
        const int64_t kw0 = ix0 < 0 ? -ix0 : 0, kw1 = r->w - ix0 < r->kw ? r->w - ix0 : r->kw;
        for (int64_t j = 0; j < r->m; j++) {
            float v = r->b[j];
            for (int64_t kh = 0; kh < r->kh; kh++)
                for (int64_t t = kw0 * r->c; r->xrow[kh] && t < kw1 * r->c; t++)
                    v = fmaf(r->xrow[kh][ix0 * r->c + t], r->wp[(size_t)(kh * r->kw * r->c + t) * (size_t)r->mp + (size_t)j],
                             v);
            v = mixrt_pw_act_scalar(r->act, r->p0, r->p1, v);
            if (r->y_f32) ((float *)r->y)[ox * r->m + j] = v;
            else ((mixrt_bf16 *)r->y)[ox * r->m + j] = mixrt_bf16_from_float(v);
        }
    }
}

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

/* The explicit pads, at most 1024 each. */
static bool stem_pads(const struct mixrt_node *n, int64_t *p) { return mixrt_fconv_explicit_pads(n, p, 1024); }

/* Strides (2, each 1..64), false when malformed. */
static bool stem_strides(const struct mixrt_node *n, int64_t *s) {
    size_t ns = 0;
    const int64_t *sd = mixrt_node_attr_ints(n, "strides", &ns);
    if (sd && ns != 2) return false;
    for (int i = 0; i < 2; i++) {
        s[i] = sd ? sd[i] : 1;
        if (s[i] < 1 || s[i] > 64) return false;
    }
    return true;
}

static bool stem_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const char *env = getenv("MIXRT_STEM_CONV"); /* for measuring against oneDNN on the same build */
    if (env && !strcmp(env, "off")) return refuse(why, why_size, "disabled by MIXRT_STEM_CONV=off");
    if (!g_force_scalar && !mixrt_cpu_avx512()) return refuse(why, why_size, "the CPU has no AVX-512");
    enum mixrt_fconv_act act;
    float p0, p1;
    int64_t pads[4], strides[2];
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "X, W or Y absent");
    if (n->n_inputs > 3 && n->inputs[3] >= 0) return refuse(why, why_size, "a Z input (residual)");
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) return refuse(why, why_size, "malformed activation");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "not channels-last");
    if (mixrt_node_attr_int(n, "group", 1) != 1) return refuse(why, why_size, "grouped");
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if ((xv->dtype != MIXRT_DTYPE_F32 && xv->dtype != MIXRT_DTYPE_BF16) || yv->dtype != xv->dtype)
        return refuse(why, why_size, "X and Y not both f32 or both bf16");
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !mixrt_graph_is_fixed_const(g, n->inputs[2]))
        return refuse(why, why_size, "B is not a constant");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[1] < 1 || w->dims[1] > MIXRT_STEM_MAX_C ||
        w->dims[0] < 1 || w->dims[0] > 1024 || w->dims[2] < 1 || w->dims[2] > 16 || w->dims[3] < 1 || w->dims[3] > 16)
        return refuse(why, why_size, "W is not a float [M, C, KH, KW] tensor of C <= 4, M <= 1024, KH and KW <= 16");
    if (!mixrt_node_attr_ints_all(n, "dilations", 1, 0)) return refuse(why, why_size, "dilated");
    if (!stem_strides(n, strides)) return refuse(why, why_size, "malformed strides");
    if (!stem_pads(n, pads)) return refuse(why, why_size, "auto_pad SAME or malformed pads");
    if (xv->rank >= 0 && xv->rank != 4) return refuse(why, why_size, "X's rank is not 4");
    if (xv->rank == 4 && xv->dims[3].value >= 0 && xv->dims[3].value != w->dims[1])
        return refuse(why, why_size, "X's channels differ from W's");
    return true;
}

struct stem_state {
    int64_t m, c, kh, kw, mp, sh, sw, pt, pl, pb, pr;
    float *wp, *b; /* one allocation: packed W, then the bias */
    size_t bytes;
};

static void stem_release(mixrt_context_t ctx, void *state) {
    struct stem_state *st = state;
    if (!st) return;
    if (st->wp) mixrt_free(ctx, st->wp, st->bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status stem_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                 void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    char why[160] = "";
    if (!stem_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedConv node '%s' with stem_conv_nhwc: %s",
                           n->name, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    const int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 ? g->values[bi].init : NULL;
    struct stem_state *st = NULL;
    MIXRT_CHECK(ctx, w->data, MIXRT_STATUS_INTERNAL, "FusedConv node '%s': W's bytes are gone (dropped after packing)",
                n->name);
    st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    int64_t pads[4] = {0, 0, 0, 0}, strides[2] = {1, 1};
    (void)stem_pads(n, pads);
    (void)stem_strides(n, strides);
    st->pt = pads[0], st->pl = pads[1], st->pb = pads[2], st->pr = pads[3], st->sh = strides[0], st->sw = strides[1];
    st->m = w->dims[0], st->c = w->dims[1], st->kh = w->dims[2], st->kw = w->dims[3];
    st->mp = (st->m + MIXRT_STEM_MBLK - 1) / MIXRT_STEM_MBLK * MIXRT_STEM_MBLK;
    const size_t taps = (size_t)(st->kh * st->kw * st->c);
    st->bytes = (taps + 1) * (size_t)st->mp * sizeof(float);
    st->wp = mixrt_alloc(ctx, st->bytes);
    if (!st->wp) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    memset(st->wp, 0, st->bytes);
    st->b = st->wp + taps * (size_t)st->mp;
    for (int64_t j = 0; j < st->m; j++)
        for (int64_t ci = 0; ci < st->c; ci++)
            for (int64_t y = 0; y < st->kh; y++)
                for (int64_t x = 0; x < st->kw; x++)
                    st->wp[(size_t)((y * st->kw + x) * st->c + ci) * (size_t)st->mp + (size_t)j] =
                        (float)mixrt_load_f64(w->data, w->dtype, (size_t)(((j * st->c + ci) * st->kh + y) * st->kw + x));
    if (b) {
        MIXRT_CHECK(ctx, b->rank == 1 && b->dims[0] == st->m, MIXRT_STATUS_INVALID_MODEL,
                    "cannot build FusedConv node '%s': input #2 (B) has %lld elements, expected %lld", n->name,
                    (long long)mixrt_tensor_numel(b), (long long)st->m);
        for (int64_t j = 0; j < st->m; j++) st->b[j] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)j);
    }
    *state = st;
    return MIXRT_STATUS_OK;
fail:
    stem_release(ctx, st);
    return status;
}

static _Atomic unsigned long g_ref_runs;
unsigned long mixrt_stemconv_ref_runs(void) { return g_ref_runs; }

static mixrt_status run_ref(struct mixrt_kernel_ctx *k) {
    g_ref_runs++;
    return mixrt_cpu_run_reference(k);
}

static mixrt_status stem_run(struct mixrt_kernel_ctx *k) {
    const struct stem_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1);
    enum mixrt_fconv_act act;
    float p0, p1;
    /* Whatever is not the case prepare saw (the reference words the errors). */
    if (!st || !x || !w || (x->dtype != MIXRT_DTYPE_F32 && x->dtype != MIXRT_DTYPE_BF16) || x->rank != 4 ||
        x->dims[3] != st->c || w->rank != 4 || w->dims[0] != st->m || w->dims[1] != st->c || w->dims[2] != st->kh ||
        w->dims[3] != st->kw || !mixrt_fconv_read_act(k->node, &act, &p0, &p1) || mixrt_tensor_numel(x) == 0 ||
        mixrt_kernel_opt_input(k, 3))
        return run_ref(k);
    const int64_t oh = (x->dims[1] + st->pt + st->pb - st->kh) / st->sh + 1,
                  ow = (x->dims[2] + st->pl + st->pr - st->kw) / st->sw + 1;
    if (x->dims[1] + st->pt + st->pb < st->kh || x->dims[2] + st->pl + st->pr < st->kw) return run_ref(k);
    const int64_t yd[4] = {x->dims[0], oh, ow, st->m};
    const bool bf = x->dtype == MIXRT_DTYPE_BF16;
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, 4, yd, &y);
    if (status != MIXRT_STATUS_OK) return status;
    /* In register: ReLU, Clip, LeakyRelu, HardSwish, and SiLU into bf16 (its approximation is
     * for bf16 outputs); the others over f32 rows (staged here for a bf16 Y, in Y for f32). */
    enum mixrt_pw_act ka = mixrt_pw_act_of(act);
    if (ka == MIXRT_PW_ACT_SILU && !bf) ka = MIXRT_PW_ACT_NONE;
    const bool staged = act != MIXRT_FCONV_NONE && ka == MIXRT_PW_ACT_NONE;
    const bool scalar = g_force_scalar || !mixrt_cpu_avx512();
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
#endif
    const int64_t rows = x->dims[0] * oh;
    if (nt > rows) nt = (int)rows;
    /* per thread: the f32 row staged for a bf16 Y's activation; after them a bf16 X widened to
     * f32 once (every input row feeds about kh / sh output rows) */
    const int64_t h = x->dims[1], wd = x->dims[2];
    const size_t row_floats = (size_t)(ow * st->m), in_row = (size_t)(wd * st->c), img = (size_t)h * in_row;
    const size_t stage_f = staged && bf ? row_floats : 0, widen_f = bf ? (size_t)x->dims[0] * img : 0;
    const size_t scratch_bytes = ((size_t)nt * stage_f + widen_f) * sizeof(float);
    bool owned = false;
    float *scratch = scratch_bytes ? mixrt_kernel_scratch(k, scratch_bytes, &owned) : NULL;
    if (scratch_bytes && !scratch)
        return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of rows", scratch_bytes);
    float *wide = widen_f ? scratch + (size_t)nt * stage_f : NULL;
    if (wide) {
        const int64_t in_rows = x->dims[0] * h;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
        for (int64_t i = 0; i < in_rows; i++)
            mixrt_bf16_to_f32((const mixrt_bf16 *)x->data + (size_t)i * in_row, wide + (size_t)i * in_row, in_row);
    }
    const size_t xes = bf ? 2 : 4;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int64_t q = 0; q < rows; q++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        const int64_t b = q / oh, oy = q % oh, top = oy * st->sh - st->pt;
        char *yrow = (char *)y->data + (size_t)q * row_floats * xes;
        float *sf = stage_f ? scratch + (size_t)tid * stage_f : NULL;
        struct mixrt_stem_row r = {.w = wd, .c = st->c, .ow = ow, .kh = st->kh, .kw = st->kw, .sw = st->sw,
                                   .pl = st->pl, .m = st->m, .mp = st->mp, .wp = st->wp, .b = st->b,
                                   .y = sf ? (void *)sf : (void *)yrow, .y_f32 = !bf || sf, .act = ka, .p0 = p0,
                                   .p1 = p1};
        const float *xf = wide ? wide + (size_t)b * img : (const float *)x->data + (size_t)b * img;
        for (int64_t i = 0; i < st->kh; i++) {
            const int64_t iy = top + i;
            r.xrow[i] = iy < 0 || iy >= h ? NULL : xf + (size_t)iy * in_row;
        }
#if defined(__x86_64__)
        if (!scalar) mixrt_stem_row_avx512(&r);
        else row_scalar(&r);
#else
        row_scalar(&r);
#endif
        if (staged) {
            float *f = sf ? sf : (float *)yrow;
            mixrt_elt_fconv_act(act, p0, p1, f, row_floats);
            if (sf) mixrt_f32_to_bf16(f, (mixrt_bf16 *)yrow, row_floats);
        }
    }
    if (owned) mixrt_free(k->ctx, scratch, scratch_bytes);
    return MIXRT_STATUS_OK;
}

const struct mixrt_cpu_kernel mixrt_stemconv_kernels[] = {
    {"stem_conv_nhwc", MIXRT_DOMAIN, "FusedConv", stem_supports, stem_prepare, stem_release, stem_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
