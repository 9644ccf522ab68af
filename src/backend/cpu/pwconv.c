/* pwconv.c - "pw_conv_nhwc": com.mixrt FusedConv when it is a 1x1 conv (stride 1, no pads, one
 * group) on channels-last bf16 with at most MIXRT_PW_MAX_K input channels, on CPUs with
 * AVX512-BF16. oneDNN 2.6 runs these products (EfficientNet's and MobileNet's expand convs:
 * 12544 pixels x 16 -> 96 channels) well below its rate, and with a bf16 SiLU it writes f32 for
 * mixrt's SiLU to read back (mixrt_dnnl_silu_split): here the weights are pair-packed once
 * (pwconv_impl.h), the rows split between the threads, and bias, Z, the activation and the
 * rounding to bf16 applied in register (pwconv_avx512.c). Activations the tile kernel lacks
 * run over f32 rows in per-thread scratch. Timed against oneDNN's kernels like every
 * candidate. A plan made here and run on a CPU without AVX512-BF16 runs the scalar twin.
 * Invariant: anything the tile kernel cannot do exactly goes to the reference kernel. */
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

/* Rows a thread takes at a time where the activation runs over f32 rows afterwards. */
#define PW_STAGE_ROWS 48

/* ---- the scalar twin of the tile kernel ------------------------------------------------ */

static inline float bf(uint16_t h) { return mixrt_bf16_to_float((mixrt_bf16){h}); }

/* Per output: the bias, then per pair of input channels the odd product then the even one
 * (vdpbf16ps's order), each product exact in f32 (bf16 x bf16). */
static void rows_scalar(const struct mixrt_pw_call *c) {
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t j = 0; j < c->n; j++) {
            float v = c->b[j];
            for (int64_t k = 0; k < c->k; k += 2) {
                if (k + 1 < c->k) v += bf(c->x[r * c->k + k + 1]) * bf(c->w[mixrt_pw_widx(c->kp, j, k + 1)]);
                v += bf(c->x[r * c->k + k]) * bf(c->w[mixrt_pw_widx(c->kp, j, k)]);
            }
            if (c->z) v += bf(c->z[r * c->n + j]);
            v = mixrt_pw_act_scalar(c->act, c->p0, c->p1, v);
            if (c->y_f32) ((float *)c->y)[r * c->n + j] = v;
            else ((mixrt_bf16 *)c->y)[r * c->n + j] = mixrt_bf16_from_float(v);
        }
}

static int g_force_scalar; /* tests only */
void mixrt_pwconv_force_scalar(bool scalar) { g_force_scalar = scalar; }

bool mixrt_pw_hw(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    return mixrt_cpu_avx512() && f->avx512_bf16;
#else
    return false;
#endif
}

void mixrt_pw_rows(const struct mixrt_pw_call *c, bool scalar) {
#if defined(__x86_64__)
    if (!scalar && mixrt_pw_hw()) {
        mixrt_pw_rows_avx512(c);
        return;
    }
#endif
    rows_scalar(c);
}

/* ---- the kernel ------------------------------------------------------------------------- */

mixrt_status mixrt_pw_bias(mixrt_context_t ctx, const struct mixrt_node *n, const struct mixrt_tensor *b, int64_t m,
                           float *dst) {
    if (b->rank != 1 || b->dims[0] != m)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL,
                           "cannot build FusedConv node '%s': input #2 (B) has %lld elements, expected %lld", n->name,
                           (long long)mixrt_tensor_numel(b), (long long)m);
    for (int64_t j = 0; j < m; j++) dst[j] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)j);
    return MIXRT_STATUS_OK;
}

float *mixrt_pw_run_bias(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *b, int64_t m, size_t bytes) {
    float *r = mixrt_alloc(k->ctx, bytes);
    if (!r) {
        (void)mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the bias");
        return NULL;
    }
    memset(r, 0, bytes);
    for (int64_t j = 0; j < m; j++) r[j] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)j);
    return r;
}

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

bool mixrt_pw_node_ok(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return mixrt_pw_node_ok_dtype(g, n, MIXRT_DTYPE_BF16, why, why_size);
}

bool mixrt_pw_node_ok_dtype(const struct mixrt_graph *g, const struct mixrt_node *n, mixrt_dtype dt, char *why,
                            size_t why_size) {
    enum mixrt_fconv_act act;
    float p0, p1;
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "X, W or Y absent");
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) return refuse(why, why_size, "malformed activation");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "not channels-last");
    if (mixrt_node_attr_int(n, "group", 1) != 1) return refuse(why, why_size, "grouped");
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if (xv->dtype != dt || yv->dtype != dt) {
        if (why && why_size) snprintf(why, why_size, "X and Y not both %s", mixrt_dtype_name(dt));
        return false;
    }
    if (n->n_inputs > 3 && n->inputs[3] >= 0 && g->values[n->inputs[3]].dtype != dt) {
        if (why && why_size) snprintf(why, why_size, "Z is not %s", mixrt_dtype_name(dt));
        return false;
    }
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !mixrt_dtype_is_float(g->values[n->inputs[2]].dtype))
        return refuse(why, why_size, "B is not a float tensor");
    return true;
}

static bool pw_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const char *env = getenv("MIXRT_PWCONV"); /* for measuring against oneDNN on the same build */
    if (env && !strcmp(env, "off")) return refuse(why, why_size, "disabled by MIXRT_PWCONV=off");
    if (!g_force_scalar && !mixrt_pw_hw()) return refuse(why, why_size, "the CPU has no AVX512-BF16");
    if (!mixrt_pw_node_ok(g, n, why, why_size)) return false;
    const struct mixrt_value *xv = &g->values[n->inputs[0]];
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[2] != 1 || w->dims[3] != 1 || w->dims[0] < 1 ||
        w->dims[1] < 1 || w->dims[0] > 65536)
        return refuse(why, why_size, "W is not a float [M, C, 1, 1] tensor of at most 65536 outputs");
    if (w->dims[1] > MIXRT_PW_MAX_K) return refuse(why, why_size, "more than 256 input channels");
    if (!mixrt_node_attr_ints_all(n, "strides", 1, 0) || !mixrt_node_attr_ints_all(n, "pads", 0, 0) ||
        !mixrt_node_attr_ints_all(n, "kernel_shape", 1, 0) || !mixrt_node_attr_ints_all(n, "dilations", 1, 0))
        return refuse(why, why_size, "strides other than 1, pads, or a kernel_shape other than 1x1");
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (ap[0] && strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) return refuse(why, why_size, "auto_pad SAME");
    if (xv->rank >= 0 && xv->rank != 4) return refuse(why, why_size, "X's rank is not 4");
    if (xv->rank == 4 && xv->dims[3].value >= 0 && xv->dims[3].value != w->dims[1])
        return refuse(why, why_size, "X's channels differ from W's");
    return true;
}

void mixrt_pw_state_free(mixrt_context_t ctx, struct mixrt_pw_state *st) {
    if (!st) return;
    if (st->w) mixrt_free(ctx, st->w, st->w_bytes);
    if (st->b) mixrt_free(ctx, st->b, st->b_bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

static void pw_release(mixrt_context_t ctx, void *state) { mixrt_pw_state_free(ctx, state); }

mixrt_status mixrt_pw_pack(mixrt_context_t ctx, const struct mixrt_node *n, const struct mixrt_tensor *w,
                           const struct mixrt_tensor *b, struct mixrt_pw_state **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_pw_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    st->n = w->dims[0], st->k = w->dims[1];
    st->kp = (st->k + 1) / 2, st->nb = (st->n + MIXRT_PW_NBLK - 1) / MIXRT_PW_NBLK;
    st->b_const = true;
    size_t wn;
    MIXRT_CHECK(ctx,
                mixrt_mul_size((size_t)(st->nb * st->kp), 2 * MIXRT_PW_NBLK * sizeof(uint16_t), &wn) &&
                    st->n <= 65536 && st->k <= INT32_MAX,
                MIXRT_STATUS_INVALID_MODEL, "cannot build node '%s': W's size overflows", n->name);
    st->w_bytes = wn;
    st->b_bytes = (size_t)st->nb * MIXRT_PW_NBLK * sizeof(float);
    st->w = mixrt_alloc(ctx, st->w_bytes);
    st->b = mixrt_alloc(ctx, st->b_bytes);
    if (!st->w || !st->b) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    memset(st->w, 0, st->w_bytes);
    memset(st->b, 0, st->b_bytes);
    /* W [N, K, 1, 1] rounded to bf16 (exact for bf16 weights, as oneDNN's bf16 conv rounds f32 ones). */
    for (int64_t j = 0; j < st->n; j++)
        for (int64_t k = 0; k < st->k; k++)
            st->w[mixrt_pw_widx(st->kp, j, k)] = mixrt_pw_wbits(w, (size_t)(j * st->k + k));
    if (b) MIXRT_TRY(mixrt_pw_bias(ctx, n, b, st->n, st->b));
    *out = st;
    return MIXRT_STATUS_OK;
fail:
    mixrt_pw_state_free(ctx, st);
    return status;
}

static mixrt_status pw_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    char why[160] = "";
    if (!pw_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedConv node '%s' with pw_conv_nhwc: %s",
                           n->name, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 && mixrt_graph_is_fixed_const(g, bi) ? g->values[bi].init : NULL;
    struct mixrt_pw_state *st = NULL;
    mixrt_status status = mixrt_pw_pack(ctx, n, w, b, &st);
    if (status != MIXRT_STATUS_OK) return status;
    st->b_const = bi < 0 || b != NULL;
    *state = st;
    return MIXRT_STATUS_OK;
}

static _Atomic unsigned long g_ref_runs;
unsigned long mixrt_pwconv_ref_runs(void) { return g_ref_runs; }

static mixrt_status run_ref(struct mixrt_kernel_ctx *k) {
    g_ref_runs++;
    return mixrt_cpu_run_reference(k);
}

static mixrt_status pw_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_pw_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *b = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    float *braw = NULL, *scratch = NULL;
    size_t scratch_bytes = 0;
    enum mixrt_fconv_act act;
    float p0, p1;
    /* Whatever is not the case prepare saw (the reference words the errors). */
    if (!st || !x || !w || x->dtype != MIXRT_DTYPE_BF16 || x->rank != 4 || x->dims[3] != st->k || w->rank != 4 ||
        w->dims[0] != st->n || w->dims[1] != st->k || w->dims[2] != 1 || w->dims[3] != 1 ||
        !mixrt_fconv_read_act(k->node, &act, &p0, &p1) || (b && (b->rank != 1 || b->dims[0] != st->n)) ||
        (!st->b_const && !b) || mixrt_tensor_numel(x) == 0)
        return run_ref(k);
    const int64_t ydims[4] = {x->dims[0], x->dims[1], x->dims[2], st->n};
    if (z && (z->dtype != MIXRT_DTYPE_BF16 || z->rank != 4 || memcmp(z->dims, ydims, sizeof(ydims))))
        return run_ref(k);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_BF16, 4, ydims, &y));
    const float *bias = st->b;
    if (!st->b_const) { /* B read at run time, widened to the padded f32 row the tiles read */
        if (!(braw = mixrt_pw_run_bias(k, b, st->n, st->b_bytes))) return MIXRT_STATUS_OUT_OF_MEMORY;
        bias = braw;
    }
    const enum mixrt_pw_act ka = mixrt_pw_act_of(act);
    /* An activation the tiles leave out: f32 rows in per-thread scratch, then the activation
     * over them and one rounding to bf16. */
    const bool staged = act != MIXRT_FCONV_NONE && ka == MIXRT_PW_ACT_NONE;
    const int64_t rows = ydims[0] * ydims[1] * ydims[2];
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
#endif
    /* Shares of whole 4-row tiles; few rows run on one thread. */
    int64_t per = (rows + nt - 1) / nt;
    per = (per + 3) / 4 * 4;
    if (per < 24) per = 24;
    if (staged) per = PW_STAGE_ROWS;
    const int64_t chunks = (rows + per - 1) / per;
    if (nt > chunks) nt = (int)chunks;
    if (staged) {
        scratch_bytes = (size_t)nt * PW_STAGE_ROWS * (size_t)st->n * sizeof(float); /* n <= 65536 */
        if (!(scratch = mixrt_alloc(k->ctx, scratch_bytes)))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch",
                                         scratch_bytes));
    }
    const uint16_t *xd = x->data, *zd = z ? z->data : NULL;
    uint16_t *yd = y->data;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int64_t t = 0; t < chunks; t++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        const int64_t r0 = t * per, nr = rows - r0 < per ? rows - r0 : per;
        float *f = staged ? scratch + (size_t)tid * PW_STAGE_ROWS * (size_t)st->n : NULL;
        const struct mixrt_pw_call c = {.x = xd + r0 * st->k,
                                        .z = zd ? zd + r0 * st->n : NULL,
                                        .y = staged ? (void *)f : (void *)(yd + r0 * st->n),
                                        .y_f32 = staged,
                                        .rows = nr,
                                        .k = st->k,
                                        .n = st->n,
                                        .kp = st->kp,
                                        .w = st->w,
                                        .b = bias,
                                        .act = ka,
                                        .p0 = p0,
                                        .p1 = p1};
        mixrt_pw_rows(&c, g_force_scalar);
        if (staged) {
            const size_t len = (size_t)(nr * st->n);
            mixrt_elt_fconv_act(act, p0, p1, f, len);
            mixrt_f32_to_bf16(f, (mixrt_bf16 *)yd + r0 * st->n, len);
        }
    }
fail:
    if (braw) mixrt_free(k->ctx, braw, st->b_bytes);
    if (scratch) mixrt_free(k->ctx, scratch, scratch_bytes);
    return status;
}

const struct mixrt_cpu_kernel mixrt_pwconv_kernels[] = {
    {"pw_conv_nhwc", MIXRT_DOMAIN, "FusedConv", pw_supports, pw_prepare, pw_release, pw_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
