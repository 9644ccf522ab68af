/* mbconv.c - "mbconv_nhwc": com.mixrt FusedMBConv (an inverted-residual block: expand 1x1 ->
 * depthwise -> project 1x1, mixrt_pass_mbconv in fuse_conv.c) on channels-last bf16. Each thread takes a
 * contiguous share of the output rows and walks them in order: the expanded input rows its next
 * output row needs go into a per-thread window (each computed once per thread, the pointwise
 * tile kernel over a whole image row), the depthwise row kernel writes that output row into a
 * per-thread row, and the project product turns the row into the block's output row (with the
 * residual row as Z). The expanded and depthwise tensors never leave the thread's caches. In a
 * chain of MobileNetV2's blocks run with these same kernels separately over whole tensors, the
 * fused blocks of 112 to 28 rows took 0.79-0.92 of the time, those of 7 rows 1.2-1.3 (2 threads);
 * in the engines, against oneDNN's and these kernels as the planner picks them, see
 * MB_MIN_ROWS (fuse_conv.c). Every stage rounds to bf16 where the unfused convs store their
 * outputs: the results are pw_conv_nhwc's and dw_conv_nhwc's bit for bit.
 * Invariant: whatever the kernels cannot do exactly goes to the reference kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/dwconv_impl.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/pwconv_impl.h"
#include "backend/cpu/ref.h"

/* Expanded rows a thread's window holds at most (12 rows of MobileNetV2's first block: 12 x
 * 112 x 96 bf16, 252 KiB); it keeps what the next output rows still need and moves it to the
 * front when full (a 3-row window moved at every row was 2-3 % slower in the measurement). */
#define MB_WINDOW_ROWS 12

struct mb_state {
    struct mixrt_pw_state *ex, *pr;   /* expand (NULL: none, the depthwise conv reads X), project */
    struct mixrt_dwconv_state *dw;    /* depthwise */
    enum mixrt_pw_act a1, a3;         /* expand's and project's activations */
    enum mixrt_dwconv_act a2;         /* the depthwise one */
    float p[6];                       /* their parameters, two each */
};

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

bool mixrt_mbconv_act_ok(enum mixrt_fconv_act act, bool depthwise) {
    return act == MIXRT_FCONV_NONE ||
           (depthwise ? mixrt_dwconv_act_of(act, true) != MIXRT_DWCONV_ACT_NONE : mixrt_pw_act_of(act) != MIXRT_PW_ACT_NONE);
}

/* The three activations of node n as the kernels apply them; false for one they leave out. */
static bool read_acts(const struct mixrt_node *n, enum mixrt_pw_act *a1, enum mixrt_dwconv_act *a2,
                      enum mixrt_pw_act *a3, float *p) {
    enum mixrt_fconv_act f1, f2, f3;
    if (!mixrt_fconv_read_act_attrs(n, "expand_activation", "expand_activation_params", &f1, &p[0], &p[1]) ||
        !mixrt_fconv_read_act_attrs(n, "activation", "activation_params", &f2, &p[2], &p[3]) ||
        !mixrt_fconv_read_act_attrs(n, "project_activation", "project_activation_params", &f3, &p[4], &p[5]))
        return false;
    *a1 = mixrt_pw_act_of(f1), *a2 = mixrt_dwconv_act_of(f2, true), *a3 = mixrt_pw_act_of(f3);
    return mixrt_mbconv_act_ok(f1, false) && mixrt_mbconv_act_ok(f2, true) && mixrt_mbconv_act_ok(f3, false);
}

/* Whether the kernels take node n: what mixrt_pass_mbconv checks on the three convs it fuses,
 * again on the node as stored (a plan may hold one). */
static bool mb_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_pw_act a1, a3;
    enum mixrt_dwconv_act a2;
    float p[6];
    if (n->n_inputs < 7 || n->n_outputs < 1 || n->outputs[0] < 0) return refuse(why, why_size, "inputs or Y absent");
    /* W1 and B1 both absent: a block without expand (the depthwise conv reads X); a B absent: that
     * conv has no bias (zeros) */
    const bool expand = n->inputs[1] >= 0;
    if (n->inputs[0] < 0 || n->inputs[3] < 0 || n->inputs[5] < 0 || (!expand && n->inputs[2] >= 0))
        return refuse(why, why_size, "X, W2 or W3 absent, or B1 without W1");
    if (!read_acts(n, &a1, &a2, &a3, p)) return refuse(why, why_size, "an activation the kernels leave out");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "not channels-last");
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if (xv->dtype != MIXRT_DTYPE_BF16 || yv->dtype != MIXRT_DTYPE_BF16) return refuse(why, why_size, "X or Y not bf16");
    if (n->n_inputs > 7 && n->inputs[7] >= 0 && g->values[n->inputs[7]].dtype != MIXRT_DTYPE_BF16)
        return refuse(why, why_size, "Z is not bf16");
    for (int i = expand ? 1 : 3; i < 7; i++)
        if (n->inputs[i] >= 0 &&
            (!mixrt_graph_is_fixed_const(g, n->inputs[i]) || !mixrt_dtype_is_float(g->values[n->inputs[i]].dtype)))
            return refuse(why, why_size, "a weight or bias is not a float constant");
    const struct mixrt_tensor *w1 = expand ? g->values[n->inputs[1]].init : NULL, *w2 = g->values[n->inputs[3]].init,
                              *w3 = g->values[n->inputs[5]].init;
    const int64_t e_ch = w2->rank == 4 ? w2->dims[0] : -1, c_ch = w1 ? (w1->rank == 4 ? w1->dims[1] : -1) : e_ch;
    if ((w1 && (w1->rank != 4 || w1->dims[2] != 1 || w1->dims[3] != 1 || w1->dims[0] != e_ch || c_ch < 1)) ||
        w2->rank != 4 || w3->rank != 4 || w2->dims[1] != 1 || w3->dims[2] != 1 || w3->dims[3] != 1 ||
        w3->dims[1] != e_ch || e_ch < 1 || e_ch > 65536 || w3->dims[0] < 1 || w3->dims[0] > 65536 || w2->dims[2] < 1 ||
        w2->dims[3] < 1 || mixrt_node_attr_int(n, "group", 1) != e_ch)
        return refuse(why, why_size, "weights that do not chain (W1 [E, C, 1, 1], W2 [E, 1, KH, KW], W3 [M, E, 1, 1])");
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (ap[0] && strcmp(ap, "NOTSET")) return refuse(why, why_size, "auto_pad other than NOTSET");
    if (!mixrt_node_attr_ints_all(n, "dilations", 1, 0)) return refuse(why, why_size, "a dilated depthwise conv");
    if (xv->rank >= 0 && (xv->rank != 4 || (xv->dims[3].value >= 0 && xv->dims[3].value != c_ch)))
        return refuse(why, why_size, "X is not [N, H, W, C] with W1's C");
    return true;
}

static void mb_release(mixrt_context_t ctx, void *state) {
    struct mb_state *st = state;
    if (!st) return;
    mixrt_pw_state_free(ctx, st->ex);
    mixrt_pw_state_free(ctx, st->pr);
    mixrt_dwconv_state_free(ctx, st->dw);
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status mb_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    char why[160] = "";
    if (!mb_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedMBConv node '%s' with mbconv_nhwc: %s",
                           n->name, why);
    const struct mixrt_tensor *t[7];
    for (int i = 1; i < 7; i++) t[i] = n->inputs[i] >= 0 ? g->values[n->inputs[i]].init : NULL;
    struct mb_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    (void)read_acts(n, &st->a1, &st->a2, &st->a3, st->p);
    if (n->inputs[1] >= 0) MIXRT_TRY(mixrt_pw_pack(ctx, n, t[1], t[2], &st->ex));
    MIXRT_TRY(mixrt_dwconv_pack(ctx, n->name, t[3], t[4], mixrt_dwconv_dp_wanted(g, n, t[3]), &st->dw));
    MIXRT_TRY(mixrt_pw_pack(ctx, n, t[5], t[6], &st->pr));
    *state = st;
    return MIXRT_STATUS_OK;
fail:
    mb_release(ctx, st);
    return status;
}

static _Atomic unsigned long g_ref_runs;
unsigned long mixrt_mbconv_ref_runs(void) { return g_ref_runs; }

static mixrt_status run_ref(struct mixrt_kernel_ctx *k) {
    g_ref_runs++;
    return mixrt_cpu_run_reference(k);
}

static int g_force_scalar; /* tests only */
void mixrt_mbconv_force_scalar(bool scalar) { g_force_scalar = scalar; }

static mixrt_status mb_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mb_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *z = mixrt_kernel_opt_input(k, 7);
    uint16_t *scratch = NULL;
    size_t scratch_bytes = 0;
    bool owned = false;
    if (!st || !x || x->dtype != MIXRT_DTYPE_BF16 || x->rank != 4 || x->dims[3] != (st->ex ? st->ex->k : st->dw->c) ||
        mixrt_tensor_numel(x) == 0)
        return run_ref(k);
    struct mixrt_dwconv_geom g;
    /* the depthwise geometry on the expanded tensor [N, H, W, E] */
    struct mixrt_tensor xe = *x;
    xe.dims[3] = st->dw->c;
    mixrt_status gs = mixrt_dwconv_geometry(k, st->dw, &xe, &g);
    if (gs == MIXRT_STATUS_UNSUPPORTED) return run_ref(k);
    if (gs != MIXRT_STATUS_OK) return gs;
    const int64_t N = x->dims[0], H = g.h, W = g.w, C = x->dims[3], E = st->dw->c, M = st->pr->n;
    const int64_t ydims[4] = {N, g.oh, g.ow, M};
    if (z && (z->dtype != MIXRT_DTYPE_BF16 || z->rank != 4 || memcmp(z->dims, ydims, sizeof(ydims)))) return run_ref(k);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_BF16, 4, ydims, &y));
    /* A window of at least the rows one output row reads (KH for stride 1; more rows than that
     * per output row only when the stride outgrows the kernel). */
    int64_t reach = (g.kh - 1) * g.dh + 1;
    if (reach < g.sh) reach = g.sh;
    int64_t cap = MB_WINDOW_ROWS > reach ? MB_WINDOW_ROWS : reach;
    if (cap > H) cap = H;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
#endif
    const int64_t rows = N * g.oh;
    if (nt > rows) nt = (int)rows;
    /* without expand the depthwise conv reads X itself: no window */
    const size_t erow = (size_t)(W * E), drow = (size_t)(g.ow * E), per_thread = (st->ex ? (size_t)cap * erow : 0) + drow;
    if (!mixrt_mul_size(per_thread, (size_t)nt * sizeof(uint16_t), &scratch_bytes))
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "scratch size overflows"));
    /* the engine's scratch, kept from run to run (and warm from the kernels before) */
    if (!(scratch = mixrt_kernel_scratch(k, scratch_bytes, &owned)))
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch", scratch_bytes));
    const struct mixrt_dwconv_isa *isa = mixrt_dwconv_isa();
    const bool scalar = g_force_scalar != 0;
    if (scalar) isa = &mixrt_dwconv_isa_scalar;
    const bool hw_bf16 = mixrt_cpu_features()->avx512_bf16;
    const uint16_t *wdp = NULL;
#if defined(__x86_64__)
    /* the pairs where the depthwise kernel itself would take them (dw_run) */
    if (st->dw->wdp && isa == &mixrt_dwconv_isa_avx512 && g.dw == 1 && (g.sw == 1 || g.sw == 2)) wdp = st->dw->wdp;
#endif
    const uint16_t *xd = x->data, *zd = z ? z->data : NULL;
    uint16_t *yd = y->data;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        int tid = 0, nth = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num(), nth = omp_get_num_threads();
#endif
        uint16_t *win = scratch + (size_t)tid * per_thread, *dr = win + (st->ex ? (size_t)cap * erow : 0);
        const int64_t t0 = rows * tid / nth, t1 = rows * (tid + 1) / nth;
        int64_t img = -1, wf = 0, wn = 0; /* the window holds image img's expanded rows [wf, wf + wn) */
        struct mixrt_dwconv_geom gg = g;
        for (int64_t t = t0; t < t1; t++) {
            const int64_t n = t / g.oh, oy = t % g.oh;
            const uint16_t *xi = xd + (size_t)(n * H * W * C);
            /* the depthwise input: X itself without expand, else the window (the image from row
             * wf on: row ih at win[ih - wf]; the rows before wf are outside every tap of oy) */
            const uint16_t *dx = xi;
            const struct mixrt_dwconv_geom *dg = &g;
            if (st->ex) {
                int64_t lo = oy * g.sh - g.pt, hi = lo + (g.kh - 1) * g.dh + 1;
                if (lo < 0) lo = 0;
                if (lo > H) lo = H; /* a row whose taps all fall in the bottom padding */
                if (hi > H) hi = H;
                if (hi < lo) hi = lo;
                if (n != img || wn == 0 || lo >= wf + wn || lo < wf) {
                    img = n, wf = lo, wn = 0; /* nothing kept is of use */
                } else if (hi - wf > cap) { /* keep rows [lo, wf + wn), moved to the front */
                    const int64_t keep = wf + wn - lo;
                    memmove(win, win + (size_t)(lo - wf) * erow, (size_t)keep * erow * sizeof(uint16_t));
                    wf = lo, wn = keep;
                }
                if (wf + wn < hi) { /* the missing rows [wf + wn, hi), expanded in one call */
                    const int64_t r0 = wf + wn, nr = hi - r0;
                    const struct mixrt_pw_call c = {.x = xi + (size_t)(r0 * W * C),
                                                    .z = NULL,
                                                    .y = win + (size_t)wn * erow,
                                                    .y_f32 = false,
                                                    .rows = nr * W,
                                                    .k = C,
                                                    .n = E,
                                                    .kp = st->ex->kp,
                                                    .w = st->ex->w,
                                                    .b = st->ex->b,
                                                    .act = st->a1,
                                                    .p0 = st->p[0],
                                                    .p1 = st->p[1]};
                    mixrt_pw_rows(&c, scalar);
                    wn += nr;
                }
                gg.h = H - wf;
                gg.pt = g.pt + wf;
                dx = win, dg = &gg;
            }
            const struct mixrt_dwconv_row r = {.x = dx,
                                               .bf16 = true,
                                               .oy = oy,
                                               .w = st->dw->w,
                                               .b = st->dw->b,
                                               .wdp = wdp,
                                               .z = NULL,
                                               .y = dr,
                                               .y_bf16 = true,
                                               .hw_bf16 = hw_bf16,
                                               .act = st->a2,
                                               .p0 = st->p[2],
                                               .p1 = st->p[3]};
            isa->row(dg, &r);
            const size_t yo = (size_t)(t * g.ow * M);
            const struct mixrt_pw_call c = {.x = dr,
                                            .z = zd ? zd + yo : NULL,
                                            .y = yd + yo,
                                            .y_f32 = false,
                                            .rows = g.ow,
                                            .k = E,
                                            .n = M,
                                            .kp = st->pr->kp,
                                            .w = st->pr->w,
                                            .b = st->pr->b,
                                            .act = st->a3,
                                            .p0 = st->p[4],
                                            .p1 = st->p[5]};
            mixrt_pw_rows(&c, scalar);
        }
    }
fail:
    if (owned) mixrt_free(k->ctx, scratch, scratch_bytes);
    return status;
}

const struct mixrt_cpu_kernel mixrt_mbconv_kernels[] = {
    {"mbconv_nhwc", MIXRT_DOMAIN, "FusedMBConv", mb_supports, mb_prepare, mb_release, mb_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
