/* ref_rnn.c - reference kernels: the recurrent family (RNN, GRU, LSTM), every opset and layout.
 * Invariant: one driver validates every shape against [num_directions, gates*hidden, ...] before
 * any element is read, then steps each (direction, batch row) in f64 and rounds once on output;
 * steps past a row's sequence length leave zeros in Y and do not touch the state. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/ref.h"

enum rnn_cell { CELL_RNN, CELL_GRU, CELL_LSTM };

enum rnn_act {
    ACT_RELU,
    ACT_TANH,
    ACT_SIGMOID,
    ACT_AFFINE,
    ACT_LEAKYRELU,
    ACT_THRESHOLDEDRELU,
    ACT_SCALEDTANH,
    ACT_HARDSIGMOID,
    ACT_ELU,
    ACT_SOFTSIGN,
    ACT_SOFTPLUS,
};

/* Which functions take alpha/beta and their defaults (those of the ONNX ops of the same name;
 * Affine and ScaledTanh come from the retired experimental ops). activation_alpha/_beta values
 * are consumed in order only by the functions that take them, as onnxruntime does. */
static const struct {
    const char *name;
    enum rnn_act act;
    bool has_alpha, has_beta;
    double alpha, beta;
} act_table[] = {
    {"Relu", ACT_RELU, false, false, 0, 0},
    {"Tanh", ACT_TANH, false, false, 0, 0},
    {"Sigmoid", ACT_SIGMOID, false, false, 0, 0},
    {"Affine", ACT_AFFINE, true, true, 1.0, 0.0},
    {"LeakyRelu", ACT_LEAKYRELU, true, false, 0.01, 0},
    {"ThresholdedRelu", ACT_THRESHOLDEDRELU, true, false, 1.0, 0},
    {"ScaledTanh", ACT_SCALEDTANH, true, true, 1.0, 1.0},
    {"HardSigmoid", ACT_HARDSIGMOID, true, true, 0.2, 0.5},
    {"Elu", ACT_ELU, true, false, 1.0, 0},
    {"Softsign", ACT_SOFTSIGN, false, false, 0, 0},
    {"Softplus", ACT_SOFTPLUS, false, false, 0, 0},
};

struct act_fn {
    enum rnn_act act;
    double alpha, beta;
};

static double act_apply(const struct act_fn *f, double x) {
    switch (f->act) {
    case ACT_RELU:
        return x > 0 ? x : 0.0;
    case ACT_TANH:
        return tanh(x);
    case ACT_SIGMOID:
        return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case ACT_AFFINE:
        return f->alpha * x + f->beta;
    case ACT_LEAKYRELU:
        return x >= 0 ? x : f->alpha * x;
    case ACT_THRESHOLDEDRELU:
        return x >= f->alpha ? x : 0.0;
    case ACT_SCALEDTANH:
        return f->alpha * tanh(f->beta * x);
    case ACT_HARDSIGMOID: {
        double v = f->alpha * x + f->beta;
        return v < 0 ? 0.0 : v > 1 ? 1.0 : v;
    }
    case ACT_ELU:
        return x >= 0 ? x : f->alpha * expm1(x);
    case ACT_SOFTSIGN:
        return x / (1.0 + fabs(x));
    case ACT_SOFTPLUS:
        return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    }
    return x;
}

static bool name_eq_nocase(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

/* Checks that input i has exactly the dims want[0..rank). */
static mixrt_status check_shape(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor *t, int rank,
                                const int64_t *want, const char *what) {
    bool ok = t->rank == rank;
    for (int d = 0; ok && d < rank; d++) ok = t->dims[d] == want[d];
    if (ok) return MIXRT_STATUS_OK;
    char got[256], exp[256];
    mixrt_dims_str(exp, sizeof(exp), rank, want);
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s, expected %s %s", i, in_name(k, i),
                              mixrt_tensor_desc(got, sizeof(got), t), exp, what);
}

static void free_f64(mixrt_context_t ctx, double *p, const struct mixrt_tensor *t) {
    if (p) {
        size_t n = t ? mixrt_tensor_numel(t) : 0;
        mixrt_free(ctx, p, (n ? n : 1) * sizeof(double));
    }
}

/* Everything one run needs, with the inputs widened to f64. */
struct rnn {
    enum rnn_cell cell;
    int gates;  /* weight blocks per direction: 1, 3 (zrh) or 4 (iofc) */
    int n_acts; /* activations per direction: 1, 2 (f,g) or 3 (f,g,h) */
    int64_t seq, batch, input, hidden, ndir;
    bool batch_first, reverse_only, linear_before_reset, input_forget, has_clip;
    double clip;
    struct act_fn acts[6];
    const struct mixrt_tensor *x, *w, *r, *b, *lens, *h0, *c0, *p;
    double *xd, *wd, *rd, *bd, *h0d, *c0d, *pd;
    int64_t *len; /* per batch row */
};

/* Parses activations, activation_alpha/_beta. The list holds n_acts per direction; a list for
 * one direction is repeated for the reverse one, and the two-direction default of RNN ("Tanh",
 * "Tanh") serves a one-direction node with its first half. */
static mixrt_status parse_acts(struct mixrt_kernel_ctx *k, struct rnn *s) {
    static const char *defaults[3] = {"Sigmoid", "Tanh", "Tanh"};
    const struct mixrt_attr *a = mixrt_node_attr(k->node, "activations");
    size_t n_alpha = 0, n_beta = 0;
    const float *alphas = mixrt_node_attr_floats(k->node, "activation_alpha", &n_alpha);
    const float *betas = mixrt_node_attr_floats(k->node, "activation_beta", &n_beta);
    size_t want = (size_t)(s->n_acts * s->ndir), given = 0;
    if (a) {
        if (a->type != MIXRT_ATTR_STRINGS)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "attribute 'activations' must be a list of strings");
        given = a->n;
        if (given != want && !(given == (size_t)s->n_acts && s->ndir == 2) &&
            !(given == (size_t)(2 * s->n_acts) && s->ndir == 1))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "attribute 'activations' has %zu entries, expected %zu (%d per direction)", given,
                                      want, s->n_acts);
    }
    size_t ia = 0, ib = 0;
    for (size_t i = 0; i < want; i++) {
        const char *name;
        if (!a)
            name = s->cell == CELL_RNN ? "Tanh" : defaults[i % (size_t)s->n_acts];
        else
            name = a->strings[given == (size_t)s->n_acts ? i % (size_t)s->n_acts : i];
        size_t j = 0, nt = sizeof(act_table) / sizeof(act_table[0]);
        while (j < nt && !name_eq_nocase(name, act_table[j].name)) j++;
        if (j == nt)
            return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED,
                                      "activation function '%s' is not one of the RNN activations", name);
        struct act_fn *f = &s->acts[i];
        f->act = act_table[j].act;
        f->alpha = act_table[j].alpha;
        f->beta = act_table[j].beta;
        /* a list given for one direction is consumed once and reused for the other */
        if (a && given == (size_t)s->n_acts && i >= given) {
            *f = s->acts[i - given];
            continue;
        }
        if (act_table[j].has_alpha && ia < n_alpha) f->alpha = alphas[ia++];
        if (act_table[j].has_beta && ib < n_beta) f->beta = betas[ib++];
    }
    return MIXRT_STATUS_OK;
}

/* Reads attributes, validates every input's dtype and shape, widens them to f64. */
static mixrt_status rnn_prepare(struct mixrt_kernel_ctx *k, struct rnn *s) {
    mixrt_status status = MIXRT_STATUS_OK;
    char d[256];
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    MIXRT_TRY(mixrt_kernel_input(k, 0, &s->x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &s->w));
    MIXRT_TRY(mixrt_kernel_input(k, 2, &s->r));
    s->b = mixrt_kernel_opt_input(k, 3);
    s->lens = mixrt_kernel_opt_input(k, 4);
    s->h0 = mixrt_kernel_opt_input(k, 5);
    if (s->cell == CELL_LSTM) {
        s->c0 = mixrt_kernel_opt_input(k, 6);
        s->p = mixrt_kernel_opt_input(k, 7);
    }
    const int float_inputs[] = {1, 2, 3, 5, 6, 7};
    for (size_t j = 0; j < sizeof(float_inputs) / sizeof(float_inputs[0]); j++) {
        int i = float_inputs[j];
        if (i >= 6 && s->cell != CELL_LSTM) break;
        if (mixrt_kernel_opt_input(k, i)) MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, i));
    }

    /* attributes */
    const char *dir = mixrt_node_attr_string(k->node, "direction", "forward");
    if (!strcmp(dir, "forward") || (k->opset < 3 && !strcmp(dir, "foward"))) { /* GRU-1's default was spelt so */
        s->ndir = 1;
    } else if (!strcmp(dir, "reverse")) {
        s->ndir = 1;
        s->reverse_only = true;
    } else if (!strcmp(dir, "bidirectional")) {
        s->ndir = 2;
    } else {
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'direction' is '%s', expected forward, reverse or bidirectional", dir);
    }
    if (k->opset >= 14) {
        int64_t layout = mixrt_node_attr_int(k->node, "layout", 0);
        if (layout != 0 && layout != 1)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'layout' is %lld, expected 0 or 1",
                                      (long long)layout);
        s->batch_first = layout == 1;
    }
    if (s->cell == CELL_GRU && k->opset >= 3)
        s->linear_before_reset = mixrt_node_attr_int(k->node, "linear_before_reset", 0) != 0;
    if (s->cell == CELL_LSTM) s->input_forget = mixrt_node_attr_int(k->node, "input_forget", 0) != 0;
    if (mixrt_node_attr(k->node, "clip")) {
        s->has_clip = true;
        s->clip = mixrt_node_attr_float(k->node, "clip", 0);
        if (!(s->clip >= 0))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "attribute 'clip' is %g, expected a threshold >= 0", s->clip);
    }
    MIXRT_TRY(parse_acts(k, s));

    /* shapes: X fixes seq/batch/input, R (or hidden_size) fixes hidden */
    if (s->x->rank != 3)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 '%s' is %s, expected rank 3 (%s)",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), s->x),
                                  s->batch_first ? "[batch, seq_length, input_size]"
                                                 : "[seq_length, batch, input_size]");
    s->seq = s->x->dims[s->batch_first ? 1 : 0];
    s->batch = s->x->dims[s->batch_first ? 0 : 1];
    s->input = s->x->dims[2];
    if (mixrt_node_attr(k->node, "hidden_size")) {
        s->hidden = mixrt_node_attr_int(k->node, "hidden_size", 0);
        if (s->hidden < 0 || s->hidden > INT32_MAX)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'hidden_size' is %lld",
                                      (long long)s->hidden);
    } else {
        if (s->r->rank != 3)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "input #2 '%s' is %s, expected rank 3 (hidden_size is not given)", in_name(k, 2),
                                      mixrt_tensor_desc(d, sizeof(d), s->r));
        s->hidden = s->r->dims[2];
    }
    /* Work is seq*batch steps; with input_size 0 X holds no data to bound it, so an
     * absurd empty X cannot make the kernel spin for ever. */
    if (s->input == 0 && s->seq > 0 && s->batch > ((int64_t)1 << 31) / s->seq)
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "input #0 '%s' is %s: too many steps over empty rows",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), s->x));
    int64_t gh = (int64_t)s->gates * s->hidden;
    int64_t want[3] = {s->ndir, gh, s->input};
    MIXRT_TRY(check_shape(k, 1, s->w, 3, want, "[num_directions, gates*hidden_size, input_size]"));
    want[2] = s->hidden;
    MIXRT_TRY(check_shape(k, 2, s->r, 3, want, "[num_directions, gates*hidden_size, hidden_size]"));
    if (s->b) {
        want[1] = 2 * gh;
        MIXRT_TRY(check_shape(k, 3, s->b, 2, want, "[num_directions, 2*gates*hidden_size]"));
    }
    if (s->p) {
        want[1] = 3 * s->hidden;
        MIXRT_TRY(check_shape(k, 7, s->p, 2, want, "[num_directions, 3*hidden_size]"));
    }
    int64_t state_dims[3] = {s->ndir, s->batch, s->hidden};
    if (s->batch_first) state_dims[0] = s->batch, state_dims[1] = s->ndir;
    const char *state_what =
        s->batch_first ? "[batch, num_directions, hidden_size]" : "[num_directions, batch, hidden_size]";
    if (s->h0) MIXRT_TRY(check_shape(k, 5, s->h0, 3, state_dims, state_what));
    if (s->c0) MIXRT_TRY(check_shape(k, 6, s->c0, 3, state_dims, state_what));

    /* sequence lengths: one per batch row, within [0, seq_length] */
    s->len = mixrt_calloc(k->ctx, s->batch ? (size_t)s->batch : 1, sizeof(int64_t));
    if (!s->len) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int64_t bi = 0; bi < s->batch; bi++) s->len[bi] = s->seq;
    if (s->lens) {
        if (!mixrt_dtype_is_int(s->lens->dtype))
            return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #4 '%s' is %s, expected i32",
                                      in_name(k, 4), mixrt_tensor_desc(d, sizeof(d), s->lens));
        int64_t lw[1] = {s->batch};
        MIXRT_TRY(check_shape(k, 4, s->lens, 1, lw, "[batch]"));
        for (int64_t bi = 0; bi < s->batch; bi++) {
            int64_t v = mixrt_load_i64(s->lens->data, s->lens->dtype, (size_t)bi);
            if (v < 0 || v > s->seq)
                return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                          "input #4 '%s': sequence length %lld of batch row %lld is outside [0, %lld]",
                                          in_name(k, 4), (long long)v, (long long)bi, (long long)s->seq);
            s->len[bi] = v;
        }
    }

    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, s->x, &s->xd));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, s->w, &s->wd));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, s->r, &s->rd));
    if (s->b) MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, s->b, &s->bd));
    if (s->h0) MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, s->h0, &s->h0d));
    if (s->c0) MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, s->c0, &s->c0d));
    if (s->p) MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, s->p, &s->pd));
fail:
    return status;
}

static void rnn_release(struct mixrt_kernel_ctx *k, struct rnn *s) {
    free_f64(k->ctx, s->xd, s->x);
    free_f64(k->ctx, s->wd, s->w);
    free_f64(k->ctx, s->rd, s->r);
    free_f64(k->ctx, s->bd, s->b);
    free_f64(k->ctx, s->h0d, s->h0);
    free_f64(k->ctx, s->c0d, s->c0);
    free_f64(k->ctx, s->pd, s->p);
    if (s->len) mixrt_free(k->ctx, s->len, (s->batch ? (size_t)s->batch : 1) * sizeof(int64_t));
}

static double clipped(const struct rnn *s, double v) {
    if (!s->has_clip) return v;
    return v < -s->clip ? -s->clip : v > s->clip ? s->clip : v;
}

/* Flat offset of state element (direction, batch, j) in initial_h/_c and Y_h/Y_c. */
static size_t state_off(const struct rnn *s, int64_t dir, int64_t bi, int64_t j) {
    if (s->batch_first) return (size_t)((bi * s->ndir + dir) * s->hidden + j);
    return (size_t)((dir * s->batch + bi) * s->hidden + j);
}

/* Flat offset of Y element (t, direction, batch, j). */
static size_t y_off(const struct rnn *s, int64_t t, int64_t dir, int64_t bi, int64_t j) {
    if (s->batch_first) return (size_t)(((bi * s->seq + t) * s->ndir + dir) * s->hidden + j);
    return (size_t)(((t * s->ndir + dir) * s->batch + bi) * s->hidden + j);
}

/* One time step of one batch row in one direction: xt is the input row, h/c the state (updated
 * in place), gx/gh scratch of gates*hidden each, hr scratch of hidden. */
static void rnn_step(const struct rnn *s, int64_t dir, const double *xt, double *h, double *c, double *gx, double *gh,
                     double *hr) {
    const int64_t H = s->hidden, I = s->input, GH = (int64_t)s->gates * H;
    const double *w = s->wd + (size_t)(dir * GH * I), *r = s->rd + (size_t)(dir * GH * H);
    const double *wb = s->bd ? s->bd + (size_t)(dir * 2 * GH) : NULL, *rb = wb ? wb + GH : NULL;
    const struct act_fn *f = &s->acts[dir * s->n_acts];
    for (int64_t g = 0; g < GH; g++) {
        double ax = wb ? wb[g] : 0.0, ah = rb ? rb[g] : 0.0;
        for (int64_t i = 0; i < I; i++) ax += xt[i] * w[g * I + i];
        for (int64_t j = 0; j < H; j++) ah += h[j] * r[g * H + j];
        gx[g] = ax;
        gh[g] = ah;
    }
    if (s->cell == CELL_RNN) {
        for (int64_t j = 0; j < H; j++) h[j] = act_apply(&f[0], clipped(s, gx[j] + gh[j]));
    } else if (s->cell == CELL_GRU) {
        /* blocks z, r, h; gh's h block is Ht-1*Rh^T + Rbh, which only the linear_before_reset form uses */
        double *z = gx, *rg = gx + H;
        for (int64_t j = 0; j < H; j++) {
            z[j] = act_apply(&f[0], clipped(s, gx[j] + gh[j]));
            rg[j] = act_apply(&f[0], clipped(s, gx[H + j] + gh[H + j]));
        }
        if (!s->linear_before_reset) {
            for (int64_t j = 0; j < H; j++) hr[j] = rg[j] * h[j];
            for (int64_t j = 0; j < H; j++) {
                double a = rb ? rb[2 * H + j] : 0.0;
                for (int64_t q = 0; q < H; q++) a += hr[q] * r[(2 * H + j) * H + q];
                gh[2 * H + j] = a; /* (rt (.) Ht-1)*Rh^T + Rbh */
            }
            for (int64_t j = 0; j < H; j++) hr[j] = act_apply(&f[1], clipped(s, gx[2 * H + j] + gh[2 * H + j]));
        } else {
            for (int64_t j = 0; j < H; j++) hr[j] = act_apply(&f[1], clipped(s, gx[2 * H + j] + rg[j] * gh[2 * H + j]));
        }
        for (int64_t j = 0; j < H; j++) h[j] = (1.0 - z[j]) * hr[j] + z[j] * h[j];
    } else {
        /* blocks i, o, f, c; peepholes P[iof] */
        const double *p = s->pd ? s->pd + (size_t)(dir * 3 * H) : NULL;
        for (int64_t j = 0; j < H; j++) {
            double it = act_apply(&f[0], clipped(s, gx[j] + gh[j] + (p ? p[j] * c[j] : 0.0)));
            double ft =
                s->input_forget
                    ? 1.0 - it
                    : act_apply(&f[0], clipped(s, gx[2 * H + j] + gh[2 * H + j] + (p ? p[2 * H + j] * c[j] : 0.0)));
            double ct = act_apply(&f[1], clipped(s, gx[3 * H + j] + gh[3 * H + j]));
            double cn = ft * c[j] + it * ct;
            double ot = act_apply(&f[0], clipped(s, gx[H + j] + gh[H + j] + (p ? p[H + j] * cn : 0.0)));
            hr[j] = ot * act_apply(&f[2], clipped(s, cn));
            c[j] = cn;
        }
        memcpy(h, hr, (size_t)H * sizeof(double));
    }
}

/* Output i exists in the node and is used. */
static bool wanted(const struct mixrt_kernel_ctx *k, int i) {
    return i < k->n_out && (!k->out_wanted || k->out_wanted[i]);
}

static mixrt_status run_recurrent(struct mixrt_kernel_ctx *k, enum rnn_cell cell) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct rnn s;
    memset(&s, 0, sizeof(s));
    s.cell = cell;
    s.gates = cell == CELL_RNN ? 1 : cell == CELL_GRU ? 3 : 4;
    s.n_acts = cell == CELL_RNN ? 1 : cell == CELL_GRU ? 2 : 3;
    double *scratch = NULL, *yd = NULL, *yhd = NULL, *ycd = NULL;
    size_t n_scratch = 0, ny = 0, nst = 0;
    MIXRT_TRY(rnn_prepare(k, &s));

    const int64_t H = s.hidden, GH = (int64_t)s.gates * H;
    int64_t ydims[4], sdims[3];
    if (s.batch_first) {
        ydims[0] = s.batch, ydims[1] = s.seq, ydims[2] = s.ndir, ydims[3] = H;
        sdims[0] = s.batch, sdims[1] = s.ndir, sdims[2] = H;
    } else {
        ydims[0] = s.seq, ydims[1] = s.ndir, ydims[2] = s.batch, ydims[3] = H;
        sdims[0] = s.ndir, sdims[1] = s.batch, sdims[2] = H;
    }
    struct mixrt_tensor *y = NULL, *yh = NULL, *yc = NULL;
    mixrt_dtype dt = s.x->dtype;
    if (wanted(k, 0)) MIXRT_TRY(mixrt_kernel_output(k, 0, dt, 4, ydims, &y));
    if (wanted(k, 1)) MIXRT_TRY(mixrt_kernel_output(k, 1, dt, 3, sdims, &yh));
    if (wanted(k, 2) && cell == CELL_LSTM) MIXRT_TRY(mixrt_kernel_output(k, 2, dt, 3, sdims, &yc));
    ny = y ? mixrt_tensor_numel(y) : 0;
    /* the state buffers exist even when Y_h/Y_c are not wanted, so their size is checked here */
    if (!mixrt_dims_numel(3, sdims, &nst)) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "state [%lld,%lld,%lld] is too large",
                                    (long long)sdims[0], (long long)sdims[1], (long long)sdims[2]);
        goto fail;
    }
    /* scratch: h, c, hr (hidden each), gx, gh (gates*hidden each); hidden <= INT32_MAX, no overflow */
    n_scratch = (size_t)GH * 2 + (size_t)H * 3;
    scratch = mixrt_calloc(k->ctx, n_scratch ? n_scratch : 1, sizeof(double));
    yd = mixrt_calloc(k->ctx, ny ? ny : 1, sizeof(double));
    yhd = mixrt_calloc(k->ctx, nst ? nst : 1, sizeof(double));
    ycd = mixrt_calloc(k->ctx, nst ? nst : 1, sizeof(double));
    if (!scratch || !yd || !yhd || !ycd) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    double *h = scratch, *c = h + H, *hr = c + H, *gx = hr + H, *gh = gx + GH;

    for (int64_t dir = 0; dir < s.ndir; dir++) {
        bool reverse = s.reverse_only || dir == 1;
        for (int64_t bi = 0; bi < s.batch; bi++) {
            int64_t len = s.len[bi];
            for (int64_t j = 0; j < H; j++) {
                h[j] = s.h0d ? s.h0d[state_off(&s, dir, bi, j)] : 0.0;
                c[j] = s.c0d ? s.c0d[state_off(&s, dir, bi, j)] : 0.0;
            }
            for (int64_t step = 0; step < len; step++) {
                int64_t t = reverse ? len - 1 - step : step;
                size_t xo =
                    s.batch_first ? (size_t)((bi * s.seq + t) * s.input) : (size_t)((t * s.batch + bi) * s.input);
                rnn_step(&s, dir, s.xd + xo, h, c, gx, gh, hr);
                if (y)
                    for (int64_t j = 0; j < H; j++) yd[y_off(&s, t, dir, bi, j)] = h[j];
            }
            /* an empty sequence has no final state: zeros, as onnxruntime gives */
            for (int64_t j = 0; j < H; j++) {
                yhd[state_off(&s, dir, bi, j)] = len ? h[j] : 0.0;
                ycd[state_off(&s, dir, bi, j)] = len ? c[j] : 0.0;
            }
        }
    }
    if (y && ny) MIXRT_TRY(mixrt_convert(y->data, dt, yd, MIXRT_DTYPE_F64, ny));
    if (yh && nst) MIXRT_TRY(mixrt_convert(yh->data, dt, yhd, MIXRT_DTYPE_F64, nst));
    if (yc && nst) MIXRT_TRY(mixrt_convert(yc->data, dt, ycd, MIXRT_DTYPE_F64, nst));
fail:
    if (scratch) mixrt_free(k->ctx, scratch, (n_scratch ? n_scratch : 1) * sizeof(double));
    if (yd) mixrt_free(k->ctx, yd, (ny ? ny : 1) * sizeof(double));
    if (yhd) mixrt_free(k->ctx, yhd, (nst ? nst : 1) * sizeof(double));
    if (ycd) mixrt_free(k->ctx, ycd, (nst ? nst : 1) * sizeof(double));
    rnn_release(k, &s);
    return status;
}

static mixrt_status run_rnn(struct mixrt_kernel_ctx *k) { return run_recurrent(k, CELL_RNN); }
static mixrt_status run_gru(struct mixrt_kernel_ctx *k) { return run_recurrent(k, CELL_GRU); }
static mixrt_status run_lstm(struct mixrt_kernel_ctx *k) { return run_recurrent(k, CELL_LSTM); }

const struct mixrt_op_def mixrt_ref_ops_rnn[] = {
    {"", "RNN", 1, 23, run_rnn},
    {"", "GRU", 1, 23, run_gru},
    {"", "LSTM", 1, 23, run_lstm},
    {NULL, NULL, 0, 0, NULL},
};
