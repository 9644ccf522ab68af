/* rnn.c - fast CPU kernels for LSTM, GRU and RNN with the default activations (Sigmoid/Tanh),
 * f32 and bf16: f32 arithmetic, the input products of every step first (X W^T), then per step
 * the recurrent product (H R^T) as vector primitives (nnops_impl.h) and the gates through the
 * element-wise kernels. Invariants: what is outside that (other activations, clip,
 * input_forget, a shape or length the reference would refuse) runs the reference kernel, so
 * errors and odd cases behave exactly as the reference's; constant bf16 weights (W, R, B, P)
 * are converted to f32 once, at prepare, and only a graph input's are converted per run. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/nnops_impl.h"

enum cell { CELL_RNN, CELL_GRU, CELL_LSTM };

static enum cell cell_of(const struct mixrt_node *n) {
    return !strcmp(n->op_type, "LSTM") ? CELL_LSTM : !strcmp(n->op_type, "GRU") ? CELL_GRU : CELL_RNN;
}

static bool same_nocase(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

/* The activations attribute is absent or lists the defaults (per direction, or for both). */
static bool default_acts(const struct mixrt_node *n, enum cell c) {
    static const char *const lstm[] = {"Sigmoid", "Tanh", "Tanh"}, *const gru[] = {"Sigmoid", "Tanh"},
                             *const rnn[] = {"Tanh"};
    const char *const *d = c == CELL_LSTM ? lstm : c == CELL_GRU ? gru : rnn;
    size_t nd = c == CELL_LSTM ? 3 : c == CELL_GRU ? 2 : 1;
    const struct mixrt_attr *a = mixrt_node_attr(n, "activations");
    if (!a) return true;
    if (a->type != MIXRT_ATTR_STRINGS || (a->n != nd && a->n != 2 * nd)) return false;
    for (size_t i = 0; i < a->n; i++)
        if (!a->strings[i] || !same_nocase(a->strings[i], d[i % nd])) return false;
    return true;
}

static bool rnn_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum cell c = cell_of(n);
    const char *no = NULL;
    mixrt_dtype dt = n->n_inputs > 0 && n->inputs[0] >= 0 ? g->values[n->inputs[0]].dtype : MIXRT_DTYPE_UNDEFINED;
    if (dt != MIXRT_DTYPE_F32 && dt != MIXRT_DTYPE_BF16) no = "X is not f32 or bf16";
    else if (!default_acts(n, c)) no = "activations other than the defaults";
    else if (mixrt_node_attr(n, "clip")) no = "attribute 'clip'";
    else if (c == CELL_LSTM && mixrt_node_attr_int(n, "input_forget", 0)) no = "input_forget";
    else if (c == CELL_GRU && n->opset < 3) no = "GRU-1";
    if (no) {
        if (why && why_size) snprintf(why, why_size, "%s", no);
        return false;
    }
    return true;
}

/* Everything one run needs, in f32. */
struct rnn {
    enum cell cell;
    int gates;
    int64_t seq, batch, input, hidden, ndir;
    bool batch_first, reverse_only, lbr;
    const float *x, *w, *r, *b, *h0, *c0, *p;
    mixrt_elt_unary_fn unary; /* chosen once per run: the ISA check reads the environment */
    float *owned[8]; /* per input index: the per-run f32 copies */
    size_t owned_n[8];
    int64_t *len;
};

/* What prepare made: f32 copies of the constant bf16 inputs, by input index (W 1, R 2, B 3,
 * P 7). src is the initializer data each was made from: a run takes a copy only for that
 * tensor, so an input the run supplies otherwise is still converted. Read-only after
 * prepare, so concurrent runs share it. */
struct rnn_prepared {
    float *f[8];
    size_t n[8];
    const void *src[8];
};

static void rnn_prepared_release(mixrt_context_t ctx, void *state) {
    struct rnn_prepared *pp = state;
    if (!pp) return;
    for (int i = 0; i < 8; i++)
        if (pp->f[i]) mixrt_free(ctx, pp->f[i], pp->n[i] * sizeof(float));
    mixrt_free(ctx, pp, sizeof(*pp));
}

static mixrt_status rnn_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                void **state) {
    static const int weights[] = {1, 2, 3, 7};
    mixrt_status status = MIXRT_STATUS_OK;
    struct rnn_prepared *pp = NULL;
    mixrt_dtype xdt = n->n_inputs > 0 && n->inputs[0] >= 0 ? g->values[n->inputs[0]].dtype : MIXRT_DTYPE_UNDEFINED;
    for (size_t wi = 0; wi < sizeof(weights) / sizeof(weights[0]); wi++) {
        int i = weights[wi];
        if (i >= n->n_inputs || !mixrt_graph_is_fixed_const(g, n->inputs[i])) continue;
        const struct mixrt_tensor *t = g->values[n->inputs[i]].init;
        /* f32 is read in place; a weight not of X's dtype makes the run use the reference. */
        if (t->dtype != MIXRT_DTYPE_BF16 || xdt != MIXRT_DTYPE_BF16) continue;
        if (!pp) {
            pp = mixrt_calloc(ctx, 1, sizeof(*pp));
            MIXRT_CHECK(ctx, pp, MIXRT_STATUS_OUT_OF_MEMORY,
                        "cannot build %s node '%s': no memory for the kernel state", n->op_type, n->name);
        }
        size_t cnt = mixrt_tensor_numel(t), bytes;
        cnt = cnt ? cnt : 1;
        MIXRT_CHECK(ctx, mixrt_mul_size(cnt, sizeof(float), &bytes), MIXRT_STATUS_OUT_OF_MEMORY,
                    "cannot build %s node '%s': input #%d '%s' is too large for an f32 copy", n->op_type, n->name, i,
                    g->values[n->inputs[i]].name);
        pp->f[i] = mixrt_alloc(ctx, bytes);
        MIXRT_CHECK(ctx, pp->f[i], MIXRT_STATUS_OUT_OF_MEMORY,
                    "cannot build %s node '%s': no memory for the f32 copy of input #%d '%s' (%zu bytes)", n->op_type,
                    n->name, i, g->values[n->inputs[i]].name, bytes);
        pp->n[i] = cnt;
        pp->src[i] = t->data;
        MIXRT_CHECK(ctx, mixrt_convert(pp->f[i], MIXRT_DTYPE_F32, t->data, t->dtype, mixrt_tensor_numel(t)) ==
                             MIXRT_STATUS_OK,
                    MIXRT_STATUS_INTERNAL, "cannot build %s node '%s': converting input #%d '%s' from bf16 failed",
                    n->op_type, n->name, i, g->values[n->inputs[i]].name);
    }
    *state = pp;
    return MIXRT_STATUS_OK;
fail:
    rnn_prepared_release(ctx, pp);
    return status;
}

/* Input i as f32: its own data, the copy prepare made of it, or a converted copy recorded
 * in s->owned[i]. Out of memory is reported with the node named. */
static mixrt_status as_f32(struct mixrt_kernel_ctx *k, struct rnn *s, int i, const struct mixrt_tensor *t,
                           const float **out) {
    *out = NULL;
    if (!t) return MIXRT_STATUS_OK;
    if (t->dtype == MIXRT_DTYPE_F32) {
        *out = t->data;
        return MIXRT_STATUS_OK;
    }
    size_t n = mixrt_tensor_numel(t), cnt = n ? n : 1;
    const struct rnn_prepared *pp = k->state;
    if (pp && pp->f[i] && pp->src[i] == t->data && pp->n[i] == cnt) {
        *out = pp->f[i];
        return MIXRT_STATUS_OK;
    }
    float *f = mixrt_alloc(k->ctx, cnt * sizeof(float));
    if (!f)
        return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the f32 copy of input #%d (%zu bytes)",
                                  i, cnt * sizeof(float));
    s->owned[i] = f, s->owned_n[i] = cnt;
    *out = f;
    mixrt_status status = mixrt_convert(f, MIXRT_DTYPE_F32, t->data, t->dtype, n);
    if (status != MIXRT_STATUS_OK)
        return mixrt_kernel_error(k, status, "cannot convert input #%d from %s to f32", i, mixrt_dtype_name(t->dtype));
    return MIXRT_STATUS_OK;
}

static bool dims_are(const struct mixrt_tensor *t, int64_t d0, int64_t d1, int64_t d2, int rank) {
    return t->rank == rank && t->dims[0] == d0 && t->dims[1] == d1 && (rank < 3 || t->dims[2] == d2);
}

/* Reads the shapes and makes the f32 inputs. *fast false (status OK): something is off, and
 * the reference then runs and reports; an error status (out of memory) is the node's. */
static mixrt_status rnn_setup(struct mixrt_kernel_ctx *k, struct rnn *s, bool *fast) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *r = mixrt_kernel_opt_input(k, 2), *b = mixrt_kernel_opt_input(k, 3),
                              *lens = mixrt_kernel_opt_input(k, 4), *h0 = mixrt_kernel_opt_input(k, 5),
                              *c0 = s->cell == CELL_LSTM ? mixrt_kernel_opt_input(k, 6) : NULL,
                              *p = s->cell == CELL_LSTM ? mixrt_kernel_opt_input(k, 7) : NULL;
    *fast = false;
    if (!x || !w || !r || x->rank != 3 || (x->dtype != MIXRT_DTYPE_F32 && x->dtype != MIXRT_DTYPE_BF16))
        return MIXRT_STATUS_OK;
    const struct mixrt_tensor *fl[] = {w, r, b, h0, c0, p};
    for (int i = 0; i < 6; i++)
        if (fl[i] && fl[i]->dtype != x->dtype) return MIXRT_STATUS_OK;
    const char *dir = mixrt_node_attr_string(k->node, "direction", "forward");
    if (!strcmp(dir, "forward")) s->ndir = 1;
    else if (!strcmp(dir, "reverse")) s->ndir = 1, s->reverse_only = true;
    else if (!strcmp(dir, "bidirectional")) s->ndir = 2;
    else return MIXRT_STATUS_OK;
    int64_t layout = k->opset >= 14 ? mixrt_node_attr_int(k->node, "layout", 0) : 0;
    if (layout != 0 && layout != 1) return MIXRT_STATUS_OK;
    s->batch_first = layout == 1;
    s->lbr = s->cell == CELL_GRU && mixrt_node_attr_int(k->node, "linear_before_reset", 0) != 0;
    s->seq = x->dims[s->batch_first ? 1 : 0];
    s->batch = x->dims[s->batch_first ? 0 : 1];
    s->input = x->dims[2];
    s->hidden = r->rank == 3 ? r->dims[2] : -1;
    if (mixrt_node_attr(k->node, "hidden_size") && mixrt_node_attr_int(k->node, "hidden_size", -1) != s->hidden)
        return MIXRT_STATUS_OK;
    int64_t H = s->hidden, GH = s->gates * H, sd0 = s->batch_first ? s->batch : s->ndir,
            sd1 = s->batch_first ? s->ndir : s->batch;
    if (H < 1 || H > (1 << 20) || s->input < 1 || !dims_are(w, s->ndir, GH, s->input, 3) ||
        !dims_are(r, s->ndir, GH, H, 3) || (b && !dims_are(b, s->ndir, 2 * GH, 0, 2)) ||
        (p && !dims_are(p, s->ndir, 3 * H, 0, 2)) || (h0 && !dims_are(h0, sd0, sd1, H, 3)) ||
        (c0 && !dims_are(c0, sd0, sd1, H, 3)))
        return MIXRT_STATUS_OK;
    if (lens && (!mixrt_dtype_is_int(lens->dtype) || lens->rank != 1 || lens->dims[0] != s->batch))
        return MIXRT_STATUS_OK;
    s->len = mixrt_calloc(k->ctx, s->batch ? (size_t)s->batch : 1, sizeof(int64_t));
    if (!s->len) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the sequence lengths");
    for (int64_t bi = 0; bi < s->batch; bi++) {
        int64_t v = lens ? mixrt_load_i64(lens->data, lens->dtype, (size_t)bi) : s->seq;
        if (v < 0 || v > s->seq) return MIXRT_STATUS_OK;
        s->len[bi] = v;
    }
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_TRY(as_f32(k, s, 0, x, &s->x));
    MIXRT_TRY(as_f32(k, s, 1, w, &s->w));
    MIXRT_TRY(as_f32(k, s, 2, r, &s->r));
    MIXRT_TRY(as_f32(k, s, 3, b, &s->b));
    MIXRT_TRY(as_f32(k, s, 5, h0, &s->h0));
    MIXRT_TRY(as_f32(k, s, 6, c0, &s->c0));
    MIXRT_TRY(as_f32(k, s, 7, p, &s->p));
    *fast = true;
fail:
    return status;
}

static void rnn_release(struct mixrt_kernel_ctx *k, struct rnn *s) {
    for (int i = 0; i < 8; i++)
        if (s->owned[i]) mixrt_free(k->ctx, s->owned[i], s->owned_n[i] * sizeof(float));
    if (s->len) mixrt_free(k->ctx, s->len, (s->batch ? (size_t)s->batch : 1) * sizeof(int64_t));
}

static void act(const struct rnn *s, enum mixrt_elt_op op, float *x, size_t n) {
    static const struct mixrt_elt_params none = {0, 0, 0, 0};
    s->unary(op, &none, x, x, n);
}

/* One step of one batch row in direction dir: gx holds X_t W^T + the additive biases (all of
 * them but GRU's Rbh under linear_before_reset), gh gets H_{t-1} R^T; h and c are updated. */
static void step(const struct rnn *s, const struct mixrt_nnops_isa *isa, int64_t dir, float *gx, float *gh, float *h,
                 float *c, float *t1) {
    const size_t H = (size_t)s->hidden, GH = (size_t)s->gates * H;
    const float *r = s->r + (size_t)dir * GH * H, *rb = s->b ? s->b + (size_t)dir * 2 * GH + GH : NULL;
    if (s->cell == CELL_RNN) {
        isa->gemv(r, H, H, h, gh);
        for (size_t j = 0; j < H; j++) h[j] = gx[j] + gh[j];
        act(s, ELT_TANH, h, H);
    } else if (s->cell == CELL_GRU) {
        /* z and r: both products; h: the reset gate applied before (default) or after R. */
        isa->gemv(r, 2 * H, H, h, gh);
        for (size_t j = 0; j < 2 * H; j++) gx[j] += gh[j];
        act(s, ELT_SIGMOID, gx, 2 * H);
        const float *z = gx, *rg = gx + H;
        float *hh = gx + 2 * H;
        if (s->lbr) {
            isa->gemv(r + 2 * H * H, H, H, h, gh);
            for (size_t j = 0; j < H; j++) hh[j] += rg[j] * (gh[j] + (rb ? rb[2 * H + j] : 0.0f));
        } else {
            for (size_t j = 0; j < H; j++) t1[j] = rg[j] * h[j];
            isa->gemv(r + 2 * H * H, H, H, t1, gh);
            for (size_t j = 0; j < H; j++) hh[j] += gh[j];
        }
        act(s, ELT_TANH, hh, H);
        for (size_t j = 0; j < H; j++) h[j] = (1.0f - z[j]) * hh[j] + z[j] * h[j];
    } else {
        /* gates i, o, f, c; peepholes P[i, o, f] on c (o on the new c). */
        const float *p = s->p ? s->p + (size_t)dir * 3 * H : NULL;
        isa->gemv(r, GH, H, h, gh);
        for (size_t j = 0; j < GH; j++) gx[j] += gh[j];
        float *ig = gx, *og = gx + H, *fg = gx + 2 * H, *cg = gx + 3 * H;
        if (p)
            for (size_t j = 0; j < H; j++) ig[j] += p[j] * c[j], fg[j] += p[2 * H + j] * c[j];
        act(s, ELT_SIGMOID, ig, H);
        act(s, ELT_SIGMOID, fg, H);
        act(s, ELT_TANH, cg, H);
        for (size_t j = 0; j < H; j++) c[j] = fg[j] * c[j] + ig[j] * cg[j];
        if (p)
            for (size_t j = 0; j < H; j++) og[j] += p[H + j] * c[j];
        act(s, ELT_SIGMOID, og, H);
        memcpy(t1, c, H * sizeof(float));
        act(s, ELT_TANH, t1, H);
        for (size_t j = 0; j < H; j++) h[j] = og[j] * t1[j];
    }
}

static mixrt_status run_rnn(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct rnn s;
    memset(&s, 0, sizeof(s));
    s.cell = cell_of(k->node);
    s.gates = s.cell == CELL_LSTM ? 4 : s.cell == CELL_GRU ? 3 : 1;
    float *work = NULL, *yf = NULL, *hf = NULL, *cf = NULL;
    size_t n_work = 0, ny = 0, nst = 0;
    bool fast = false;
    MIXRT_TRY(rnn_setup(k, &s, &fast));
    if (!fast) {
        rnn_release(k, &s);
        mixrt_kernel_fn fn;
        MIXRT_TRY(mixrt_ref_find(k->ctx, k->node, &fn));
        return fn(k);
    }
    const size_t H = (size_t)s.hidden, GH = (size_t)s.gates * H, I = (size_t)s.input;
    const int64_t B = s.batch, T = s.seq, D = s.ndir;
    mixrt_dtype dt = k->in[0]->dtype;
    int64_t ydims[4] = {T, D, B, (int64_t)H}, sdims[3] = {D, B, (int64_t)H};
    if (s.batch_first) ydims[0] = B, ydims[1] = T, ydims[2] = D, sdims[0] = B, sdims[1] = D;
    struct mixrt_tensor *y = NULL, *yh = NULL, *yc = NULL;
    bool want[3];
    for (int i = 0; i < 3; i++) want[i] = i < k->n_out && (!k->out_wanted || k->out_wanted[i]);
    if (want[0]) MIXRT_TRY(mixrt_kernel_output(k, 0, dt, 4, ydims, &y));
    if (want[1]) MIXRT_TRY(mixrt_kernel_output(k, 1, dt, 3, sdims, &yh));
    if (want[2] && s.cell == CELL_LSTM) MIXRT_TRY(mixrt_kernel_output(k, 2, dt, 3, sdims, &yc));
    ny = y ? mixrt_tensor_numel(y) : 0;
    nst = (size_t)(D * B) * H;
    /* f32 results (written in place when the outputs are f32), zeros where a row's sequence
     * has ended; work: gx (T x GH for one row), gh (GH), h, c, t1 (H each). */
    bool f32 = dt == MIXRT_DTYPE_F32;
    yf = y && f32 ? y->data : mixrt_calloc(k->ctx, ny ? ny : 1, sizeof(float));
    hf = yh && f32 ? yh->data : mixrt_calloc(k->ctx, nst ? nst : 1, sizeof(float));
    cf = yc && f32 ? yc->data : mixrt_calloc(k->ctx, nst ? nst : 1, sizeof(float));
    n_work = (size_t)(T ? T : 1) * GH + GH + 3 * H;
    work = mixrt_alloc(k->ctx, n_work * sizeof(float));
    if (!yf || !hf || !cf || !work)
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the f32 outputs and work rows"));
    const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
    s.unary = mixrt_elt_unary_isa();
    float *gxall = work, *gh = gxall + (size_t)(T ? T : 1) * GH, *h = gh + GH, *c = h + H, *t1 = c + H;
    for (int64_t dir = 0; dir < D; dir++) {
        bool reverse = s.reverse_only || dir == 1;
        const float *w = s.w + (size_t)dir * GH * I, *wb = s.b ? s.b + (size_t)dir * 2 * GH : NULL;
        for (int64_t bi = 0; bi < B; bi++) {
            int64_t len = s.len[bi];
            /* X_t W^T + Wb (+ Rb, but GRU's Rbh when linear_before_reset) for every step. */
            for (int64_t t = 0; t < len; t++) {
                float *gx = gxall + (size_t)t * GH;
                const float *xt = s.x + (s.batch_first ? (size_t)(bi * T + t) * I : (size_t)(t * B + bi) * I);
                isa->gemv(w, GH, I, xt, gx);
                if (wb)
                    for (size_t g = 0; g < GH; g++)
                        gx[g] += wb[g] + (s.lbr && g >= 2 * H ? 0.0f : wb[GH + g]);
            }
            size_t so = s.batch_first ? (size_t)(bi * D + dir) * H : (size_t)(dir * B + bi) * H;
            for (size_t j = 0; j < H; j++) {
                h[j] = s.h0 ? s.h0[so + j] : 0.0f;
                c[j] = s.c0 ? s.c0[so + j] : 0.0f;
            }
            for (int64_t st = 0; st < len; st++) {
                int64_t t = reverse ? len - 1 - st : st;
                step(&s, isa, dir, gxall + (size_t)t * GH, gh, h, c, t1);
                if (y) {
                    size_t yo = s.batch_first ? (size_t)((bi * T + t) * D + dir) * H : (size_t)((t * D + dir) * B + bi) * H;
                    memcpy(yf + yo, h, H * sizeof(float));
                }
            }
            /* An empty sequence has no final state: zeros, as the reference. */
            for (size_t j = 0; j < H; j++) {
                hf[so + j] = len ? h[j] : 0.0f;
                cf[so + j] = len ? c[j] : 0.0f;
            }
        }
    }
    if (!f32) {
        if (y && ny) MIXRT_TRY(mixrt_convert(y->data, dt, yf, MIXRT_DTYPE_F32, ny));
        if (yh && nst) MIXRT_TRY(mixrt_convert(yh->data, dt, hf, MIXRT_DTYPE_F32, nst));
        if (yc && nst) MIXRT_TRY(mixrt_convert(yc->data, dt, cf, MIXRT_DTYPE_F32, nst));
    }
fail:
    if (work) mixrt_free(k->ctx, work, n_work * sizeof(float));
    if (yf && !(y && f32)) mixrt_free(k->ctx, yf, (ny ? ny : 1) * sizeof(float));
    if (hf && !(yh && f32)) mixrt_free(k->ctx, hf, (nst ? nst : 1) * sizeof(float));
    if (cf && !(yc && f32)) mixrt_free(k->ctx, cf, (nst ? nst : 1) * sizeof(float));
    rnn_release(k, &s);
    return status;
}

const struct mixrt_cpu_kernel mixrt_rnn_kernels[] = {
    {"rnn_lstm", "", "LSTM", rnn_supports, rnn_prepare, rnn_prepared_release, run_rnn},
    {"rnn_gru", "", "GRU", rnn_supports, rnn_prepare, rnn_prepared_release, run_rnn},
    {"rnn_rnn", "", "RNN", rnn_supports, rnn_prepare, rnn_prepared_release, run_rnn},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
