/* test_attention.c - the attention fusion pass and the com.mixrt Attention kernels. Graphs
 * in the exported shape (head transposes, scale as Div/Mul on the scores or on Q and K,
 * BERT [B,1,1,S] mask, GPT-2 causal Where + mask, no mask) are run on the reference
 * executor before and after mixrt_passes_run: exactly one Attention node must remain and
 * the outputs agree. Negative cases stay unfused. The fast kernel (AVX-512 and its scalar
 * twin, 1 and 2 threads) is compared with the reference kernel by normalized error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/attention_impl.h"
#include "backend/cpu/exec_ref.h"
#include "passes/passes.h"
#include "testutil.h"
#include "graph_build.h"

static mixrt_context_t ctx;

static struct mixrt_attr *new_attr(struct mixrt_graph *g, int vi, const char *name, enum mixrt_attr_type type) {
    struct mixrt_node *nd = &g->nodes[g->values[vi].producer];
    struct mixrt_attr *a = mixrt_arena_calloc(g->arena, (size_t)nd->n_attrs + 1, sizeof(*a));
    if (nd->n_attrs) memcpy(a, nd->attrs, (size_t)nd->n_attrs * sizeof(*a));
    nd->attrs = a;
    a[nd->n_attrs].name = name;
    a[nd->n_attrs].type = type;
    return &a[nd->n_attrs++];
}

static int transpose(struct mixrt_graph *g, int x, const int64_t *perm, const char *out) {
    int y = add_op_node(g, "Transpose", 1, &x, out);
    struct mixrt_attr *a = new_attr(g, y, "perm", MIXRT_ATTR_INTS);
    a->n = 4;
    a->ints = mixrt_arena_calloc(g->arena, 4, sizeof(int64_t));
    memcpy(a->ints, perm, 4 * sizeof(int64_t));
    return y;
}

static int count_op(const struct mixrt_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i].op_type, op);
    return n;
}

enum mask_kind { MASK_NONE, MASK_BERT, MASK_CAUSAL, MASK_CAUSAL_BERT };
enum scale_kind { SCALE_DIV, SCALE_MUL, SCALE_QK, SCALE_NONE };

struct cfg {
    int64_t b, s, h, d;
    mixrt_dtype dt;
    enum mask_kind mask;
    enum scale_kind scale;
    bool mask_first;  /* Add(mask, scores) */
    double mask_neg;  /* the additive value of masked keys */
    int masked_keys;  /* trailing keys the BERT mask hides (all: a fully masked row) */
    bool heads_first; /* inputs already [B,H,S,D] (K as [B,H,D,S]), output [B,H,S,D]: no transposes */
    double fill;      /* the causal Where's fill; 0: the f32 minimum, as exported */
    bool sdpa;        /* torch's scaled_dot_product_attention export: the NaN guard
                       * Where(IsNaN(P), 0, P) before P.V, and (not heads_first) K^T as
                       * Reshape(Transpose(Reshape(K, [B*H,S,D]), [0,2,1]), [B,H,D,S]) */
    bool mask_b0;     /* the BERT mask hides keys of batch 0 only */
    bool bool_mask;   /* the BERT mask as torch builds it from a bool padding input [B,1,1,S]:
                       * Where(And(all-true [1,1,S,1], pad), 0, mask_neg) of [B,1,S,S] */
};

/* Swin's shifted windows, for the cases that set them (test_fusion_cases): B is images x
 * g_win windows; the scores get [+ bias [H,S,S]], Reshape [B/g_win, g_win, H, S, S], + mask
 * [g_win,1,S,S] (0 / -100), Reshape back. 0: none. */
static int64_t g_win;
static bool g_win_bias;
/* Extra pass flags (MIXRT_PASS_ATTN_MASK2: one image's bias and window mask stay two masks). */
static unsigned g_pass_extra;
/* Swin-V2's cosine attention: the scores times a constant of one value per head ([H, 1, 1], in
 * [1, 30) as its clamped exp of a learned logit scale; bf16 [1, 8)), after any scalar scale. */
static bool g_head_scale;

static const char *cfg_str(const struct cfg *c) {
    static char buf[200];
    static const char *const mk[] = {"none", "bert", "causal", "causal+bert"};
    static const char *const sk[] = {"div", "mul", "q*k", "none"};
    snprintf(buf, sizeof(buf),
             "B%lld S%lld H%lld D%lld %s mask=%s scale=%s%s%s%s%s neg=%g masked=%d fill=%g win=%lld%s",
             (long long)c->b, (long long)c->s, (long long)c->h, (long long)c->d, mixrt_dtype_name(c->dt), mk[c->mask],
             sk[c->scale], c->mask_first ? " mask-first" : "", c->heads_first ? " heads-first" : "",
             c->sdpa ? " sdpa" : "", c->mask_b0 ? (c->bool_mask ? " batch-0 bool" : " batch-0") : "", c->mask_neg,
             c->masked_keys, c->fill, (long long)g_win, g_win_bias ? "+bias" : "");
    if (g_head_scale) snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " head-scale");
    return buf;
}

/* The exported attention block: inputs q, k, v [B,S,H,D] (and mask [B,1,1,S]); output
 * [B,S,H,D]. */
static struct mixrt_graph *build(const struct cfg *c) {
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    int64_t io[4] = {c->b, c->s, c->h, c->d}, md[4] = {c->b, 1, 1, c->s}, one = 1;
    static const int64_t p0213[4] = {0, 2, 1, 3}, p0231[4] = {0, 2, 3, 1};
    int64_t hs[4] = {c->b, c->h, c->s, c->d}, hk[4] = {c->b, c->h, c->d, c->s};
    int qt, kt, vt;
    if (c->heads_first) {
        qt = add_input(g, "q", c->dt, 4, hs);
        kt = add_input(g, "k", c->dt, 4, hk);
        vt = add_input(g, "v", c->dt, 4, hs);
    } else {
        int q = add_input(g, "q", c->dt, 4, io), k = add_input(g, "k", c->dt, 4, io), v = add_input(g, "v", c->dt, 4, io);
        qt = transpose(g, q, p0213, "qt"), vt = transpose(g, v, p0213, "vt");
        if (c->sdpa) {
            int64_t d3[3] = {c->b * c->h, c->s, c->d}, d4[4] = {c->b, c->h, c->d, c->s}, three = 3, four = 4;
            double s3[3] = {(double)d3[0], (double)d3[1], (double)d3[2]};
            double s4[4] = {(double)d4[0], (double)d4[1], (double)d4[2], (double)d4[3]};
            int kh = transpose(g, k, p0213, "kh");
            int a1[2] = {kh, add_const_values(ctx, g, "shape3", MIXRT_DTYPE_I64, 1, &three, s3)};
            int r3 = add_op_node(g, "Reshape", 2, a1, "k3");
            int t3 = add_op_node(g, "Transpose", 1, &r3, "k3t");
            struct mixrt_attr *pa = new_attr(g, t3, "perm", MIXRT_ATTR_INTS);
            pa->n = 3;
            pa->ints = mixrt_arena_calloc(g->arena, 3, sizeof(int64_t));
            pa->ints[0] = 0, pa->ints[1] = 2, pa->ints[2] = 1;
            int a2[2] = {t3, add_const_values(ctx, g, "shape4", MIXRT_DTYPE_I64, 1, &four, s4)};
            kt = add_op_node(g, "Reshape", 2, a2, "kt");
        } else {
            kt = transpose(g, k, p0231, "kt");
        }
    }
    int mask = (c->mask == MASK_BERT || c->mask == MASK_CAUSAL_BERT)
                   ? add_input(g, "mask", c->bool_mask ? MIXRT_DTYPE_BOOL : c->dt, 4, md)
                   : -1;
    if (mask >= 0 && c->bool_mask) {
        int64_t td[4] = {1, 1, c->s, 1}, full[4] = {c->b, 1, c->s, c->s};
        double *ones = malloc((size_t)c->s * sizeof(double)), zero = 0.0;
        for (int64_t i = 0; i < c->s; i++) ones[i] = 1.0;
        int allt = add_const_values(ctx, g, "all_true", MIXRT_DTYPE_BOOL, 4, td, ones);
        free(ones);
        int a1[2] = {allt, mask};
        int both = add_op_node(g, "And", 2, a1, "keep");
        int a2[3] = {both, add_const_values(ctx, g, "mzero", c->dt, 0, &one, &zero),
                     add_const_values(ctx, g, "mneg", c->dt, 0, &one, &c->mask_neg)};
        mask = add_op_node(g, "Where", 3, a2, "mask_full");
        (void)full;
    }
    double rs = 1.0 / sqrt((double)c->d), sd = sqrt((double)c->d), r4 = pow((double)c->d, -0.25);
    if (c->scale == SCALE_QK) {
        int c1 = add_const_values(ctx, g, "c1", c->dt, 0, &one, &r4), c2 = add_const_values(ctx, g, "c2", c->dt, 1, &one, &r4);
        int a1[2] = {qt, c1}, a2[2] = {c2, kt};
        qt = add_op_node(g, "Mul", 2, a1, "qs");
        kt = add_op_node(g, "Mul", 2, a2, "ks");
    }
    int mm[2] = {qt, kt};
    int s = add_op_node(g, "MatMul", 2, mm, "scores");
    if (c->scale == SCALE_DIV || c->scale == SCALE_MUL) {
        int cs = add_const_values(ctx, g, "cs", c->dt, 0, &one, c->scale == SCALE_DIV ? &sd : &rs);
        int a[2] = {s, cs};
        s = add_op_node(g, c->scale == SCALE_DIV ? "Div" : "Mul", 2, a, "scaled");
    }
    if (g_head_scale) {
        int64_t hd[3] = {c->h, 1, 1};
        double *hv = malloc((size_t)c->h * sizeof(double));
        /* bf16: up to 8 (the unfused graph's bf16 scores, rounded before the scale, are what
         * limits the comparison) */
        for (int64_t i = 0; i < c->h; i++) hv[i] = tu_uniform(1, c->dt == MIXRT_DTYPE_BF16 ? 8 : 30);
        int hc = add_const_values(ctx, g, "head_scale", c->dt, 3, hd, hv);
        free(hv);
        int a[2] = {c->s % 2 ? hc : s, c->s % 2 ? s : hc};
        s = add_op_node(g, "Mul", 2, a, "head_scaled");
    }
    if (c->mask == MASK_CAUSAL || c->mask == MASK_CAUSAL_BERT) {
        int64_t cd[4] = {1, 1, c->s, c->s};
        double *tril = malloc((size_t)(c->s * c->s) * sizeof(double));
        for (int64_t i = 0; i < c->s; i++)
            for (int64_t j = 0; j < c->s; j++) tril[i * c->s + j] = j <= i;
        int cond = add_const_values(ctx, g, "tril", MIXRT_DTYPE_BOOL, 4, cd, tril);
        free(tril);
        double fill = c->fill != 0 ? c->fill : -3.4028234663852886e38;
        int fv = add_const_values(ctx, g, "fill", c->dt, 0, &one, &fill);
        int a[3] = {cond, s, fv};
        s = add_op_node(g, "Where", 3, a, "causal");
    }
    if (mask >= 0) {
        int a[2] = {c->mask_first ? mask : s, c->mask_first ? s : mask};
        s = add_op_node(g, "Add", 2, a, "masked");
    }
    if (g_win) {
        int64_t bd[3] = {c->h, c->s, c->s}, wd[4] = {g_win, 1, c->s, c->s}, five = 5, four = 4;
        size_t nb = (size_t)(c->h * c->s * c->s), nm = (size_t)(g_win * c->s * c->s);
        double *v = malloc((nb > nm ? nb : nm) * sizeof(double));
        if (g_win_bias) {
            for (size_t i = 0; i < nb; i++) v[i] = tu_uniform(-2, 2);
            int a[2] = {s, add_const_values(ctx, g, "rel_bias", c->dt, 3, bd, v)};
            s = add_op_node(g, "Add", 2, a, "biased");
        }
        double s5[5] = {(double)(c->b / g_win), (double)g_win, (double)c->h, (double)c->s, (double)c->s};
        double s4[4] = {(double)c->b, (double)c->h, (double)c->s, (double)c->s};
        int r1[2] = {s, add_const_values(ctx, g, "win_shape", MIXRT_DTYPE_I64, 1, &five, s5)};
        s = add_op_node(g, "Reshape", 2, r1, "windows");
        for (size_t i = 0; i < nm; i++) v[i] = (i * 7 + i / (size_t)c->s) % 3 == 0 ? -100.0 : 0.0;
        int wm = add_const_values(ctx, g, "win_mask", c->dt, 4, wd, v);
        int a[2] = {c->mask_first ? wm : s, c->mask_first ? s : wm};
        s = add_op_node(g, "Add", 2, a, "win_masked");
        int r2[2] = {s, add_const_values(ctx, g, "scores_shape", MIXRT_DTYPE_I64, 1, &four, s4)};
        s = add_op_node(g, "Reshape", 2, r2, "unwindowed");
        free(v);
    }
    int p = add_op_node(g, "Softmax", 1, &s, "probs");
    new_attr(g, p, "axis", MIXRT_ATTR_INT)->i = c->s % 2 ? 3 : -1;
    if (c->sdpa) {
        double zero = 0.0;
        int isn = add_op_node(g, "IsNaN", 1, &p, "isnan");
        int a[3] = {isn, add_const_values(ctx, g, "zero", c->dt, 1, &one, &zero), p};
        p = add_op_node(g, "Where", 3, a, "guarded");
    }
    int pv[2] = {p, vt};
    int o = add_op_node(g, "MatMul", 2, pv, "heads");
    int y = c->heads_first ? o : transpose(g, o, p0213, "y");
    graph_set_output(g, y);
    TU_CHECK(mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK, "infer: %s", mixrt_context_last_error(ctx));
    return g;
}

static struct mixrt_tensor *rand_tensor(mixrt_dtype dt, int rank, const int64_t *dims, double lo, double hi) {
    struct mixrt_tensor *t;
    TU_CHECK(mixrt_tensor_create(ctx, dt, rank, dims, &t) == MIXRT_STATUS_OK, "tensor");
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, tu_uniform(lo, hi));
    return t;
}

/* Runs g (fns: per-node kernel overrides or NULL) and returns output 0 as doubles (caller frees). */
static double *run(struct mixrt_graph *g, int n_in, struct mixrt_tensor **in, const mixrt_kernel_fn *fns,
                   size_t *n) {
    struct mixrt_tensor outs[2];
    memset(outs, 0, sizeof(outs));
    *n = 0;
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort: %s", mixrt_context_last_error(ctx));
    struct mixrt_exec_opts opts = {.fns = fns};
    mixrt_status st = mixrt_exec_graph_opts(ctx, g, NULL, n_in, (const struct mixrt_tensor *const *)in, NULL, outs,
                                            NULL, NULL, fns ? &opts : NULL);
    TU_CHECK(st == MIXRT_STATUS_OK, "exec: %s", mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) return NULL;
    *n = mixrt_tensor_numel(&outs[0]);
    double *r = malloc((*n ? *n : 1) * sizeof(double));
    for (size_t i = 0; i < *n; i++) r[i] = mixrt_load_f64(outs[0].data, outs[0].dtype, i);
    for (int i = 0; i < g->n_outputs; i++) mixrt_tensor_release(ctx, &outs[i]);
    return r;
}

/* ||a - b|| / ||b||; NaN positions must agree (they count as equal), else +inf. */
static double nerr(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            if (isnan(a[i]) != isnan(b[i])) return INFINITY;
            continue;
        }
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static bool has_nan(const double *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isnan(a[i])) return true;
    return false;
}

static const struct mixrt_cpu_kernel *fast_kernel(void) {
    return mixrt_cpu_kernel_find("attention_fused", MIXRT_DOMAIN, "Attention");
}

/* One case: fuse, compare with the unfused graph, then the fast kernel (both ISAs, 1 and 2
 * threads) with the reference kernel. */
static void check_case(const struct cfg *c) {
    struct mixrt_graph *g = build(c);
    int64_t io[4] = {c->b, c->s, c->h, c->d}, md[4] = {c->b, 1, 1, c->s};
    int64_t hs[4] = {c->b, c->h, c->s, c->d}, hk[4] = {c->b, c->h, c->d, c->s};
    struct mixrt_tensor *in[4] = {rand_tensor(c->dt, 4, c->heads_first ? hs : io, -1, 1),
                                  rand_tensor(c->dt, 4, c->heads_first ? hk : io, -1, 1),
                                  rand_tensor(c->dt, 4, c->heads_first ? hs : io, -1, 1), NULL};
    int n_in = 3;
    if (c->mask == MASK_BERT || c->mask == MASK_CAUSAL_BERT) {
        in[3] = c->bool_mask ? rand_tensor(MIXRT_DTYPE_BOOL, 4, md, 1, 1) : rand_tensor(c->dt, 4, md, 0, 0);
        for (int64_t b = 0; b < (c->mask_b0 ? 1 : c->b); b++)
            for (int64_t j = c->s - c->masked_keys; j < c->s; j++)
                mixrt_store_f64(in[3]->data, in[3]->dtype, (size_t)(b * c->s + j), c->bool_mask ? 0.0 : c->mask_neg);
        n_in = 4;
    }
    size_t n0, n1, n2;
    double *y0 = run(g, n_in, in, NULL, &n0);
    struct mixrt_pass_stats stats;
    mixrt_status st = mixrt_passes_run(g, MIXRT_PASS_FUSE_ATTENTION | MIXRT_PASS_DCE | g_pass_extra, &stats);
    TU_CHECK(st == MIXRT_STATUS_OK, "passes (%s): %s", cfg_str(c), mixrt_context_last_error(ctx));
    if (g_win) { /* two masks exactly where the flag is set, the scores are one image's, and a bias exists */
        int an = -1;
        for (int i = 0; i < g->n_nodes; i++)
            if (!strcmp(g->nodes[i].op_type, "Attention")) an = i;
        bool two = (g_pass_extra & MIXRT_PASS_ATTN_MASK2) && c->b == g_win && g_win_bias;
        TU_CHECK(an >= 0 && g->nodes[an].n_inputs == (two ? 5 : 4), "%s (windows %lld, bias %d, flags %#x): %d inputs",
                 cfg_str(c), (long long)g_win, g_win_bias, g_pass_extra, an >= 0 ? g->nodes[an].n_inputs : -1);
    }
    /* the head scale moved onto Q: one Mul left, of Q by the scale along Q's head axis */
    TU_CHECK(count_op(g, "Attention") == 1 && count_op(g, "Softmax") == 0 && count_op(g, "Transpose") == 0 &&
                 count_op(g, "MatMul") == 0 && count_op(g, "Mul") == (g_head_scale ? 1 : 0) &&
                 g->n_nodes == 1 + (c->bool_mask ? 1 : 0) + (g_head_scale ? 1 : 0),
             "%s: %d nodes, %d Attention after the pass", cfg_str(c), g->n_nodes, count_op(g, "Attention"));
    if (c->bool_mask) { /* the And went, the mask shrank to the padding's [B,1,1,S] */
        int w = -1;
        for (int i = 0; i < g->n_nodes; i++)
            if (!strcmp(g->nodes[i].op_type, "Where")) w = g->nodes[i].outputs[0];
        TU_CHECK(count_op(g, "And") == 0 && w >= 0 && g->values[w].dims[2].value == 1 &&
                     g->values[w].dims[3].value == c->s,
                 "%s: the mask was not shrunk (And %d, Where dims [.., %lld, %lld])", cfg_str(c), count_op(g, "And"),
                 w >= 0 ? (long long)g->values[w].dims[2].value : -1LL, w >= 0 ? (long long)g->values[w].dims[3].value : -1LL);
    }
    TU_CHECK(mixrt_graph_opset(g, MIXRT_DOMAIN) == MIXRT_DOMAIN_VERSION, "%s: com.mixrt opset imported", cfg_str(c));
    double *y1 = run(g, n_in, in, NULL, &n1);
    /* A fully masked row: NaN, or zeros behind the NaN guard (y0, the unfused graph's IsNaN
     * and Where, checks those below). */
    if (y1 && c->masked_keys == c->s && c->mask != MASK_NONE)
        TU_CHECK(has_nan(y1, n1) == (c->mask_neg == -INFINITY && !c->sdpa), "%s: reference NaN %d", cfg_str(c),
                 has_nan(y1, n1));
    bool lowp = c->dt == MIXRT_DTYPE_BF16 || c->dt == MIXRT_DTYPE_F16;
    /* Unfused lowp graphs round every intermediate; the fused reference rounds once. */
    double tol_pass = c->dt == MIXRT_DTYPE_BF16 ? 3e-2 : c->dt == MIXRT_DTYPE_F16 ? 5e-3 : 1e-6;
    if (y0 && y1 && n0 == n1) {
        double e = nerr(y1, y0, n0);
        TU_CHECK(e <= tol_pass, "%s: fused vs unfused error %.3g > %.3g", cfg_str(c), e, tol_pass);
    } else {
        TU_CHECK(false, "%s: outputs missing or sized %zu vs %zu", cfg_str(c), n0, n1);
    }
    /* The fast kernel on the node the pass made. */
    const struct mixrt_cpu_kernel *fk = fast_kernel();
    int an = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "Attention")) an = i;
    if (fk && an >= 0 && !c->bool_mask && y1) {
        char why[128] = "";
        bool sup = fk->supports(g, &g->nodes[an], why, sizeof(why));
        bool want = c->dt == MIXRT_DTYPE_F32 || c->dt == MIXRT_DTYPE_BF16;
        TU_CHECK(sup == want, "%s: supports() = %d (%s)", cfg_str(c), sup, why);
        mixrt_kernel_fn fns[2] = {NULL, NULL}; /* the other node (the head-scale Mul): the reference */
        fns[an] = fk->run;
        double tol = lowp ? 1e-2 : 2e-6;
        /* The CPU's own table, the AVX2 one (where the CPU has AVX2 and FMA; on an AVX2-only CPU
         * it is the CPU's own), and the scalar twins. */
        static const char *const isas[] = {"isa", "avx2", "scalar"};
        for (int isa = 0; isa < 3; isa++)
            for (int threads = 1; threads <= 2; threads++) {
                if (isa == 1 && !(mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma)) continue;
#ifdef _OPENMP
                omp_set_num_threads(threads);
#endif
                mixrt_attention_force_avx2(isa == 1);
                mixrt_attention_force_scalar(isa == 2);
                TU_CHECK(isa == 0 || !strcmp(mixrt_attention_isa()->name, isas[isa]), "%s: forced %s, got %s",
                         cfg_str(c), isas[isa], mixrt_attention_isa()->name);
                double *y2 = run(g, n_in, in, fns, &n2);
                if (y2 && n2 == n1) {
                    double e = nerr(y2, y1, n1);
                    TU_CHECK(e <= tol, "%s: fast (%s %s, %d threads) vs reference error %.3g > %.3g", cfg_str(c),
                             isas[isa], mixrt_attention_isa()->name, threads, e, tol);
                    TU_CHECK(has_nan(y2, n2) == has_nan(y1, n1), "%s: NaN in fast %d, reference %d", cfg_str(c),
                             has_nan(y2, n2), has_nan(y1, n1));
                }
                free(y2);
            }
        mixrt_attention_force_scalar(false);
        mixrt_attention_force_avx2(false);
    }
    free(y0);
    free(y1);
    for (int i = 0; i < 4; i++)
        if (in[i]) mixrt_tensor_destroy(ctx, in[i]);
    mixrt_graph_destroy(g);
}

static void test_fusion_cases(void) {
    static const int64_t ss[] = {1, 7, 128, 129}, ds[] = {64, 32, 17}, hs[] = {1, 12};
    int idx = 0;
    for (size_t si = 0; si < 4; si++)
        for (size_t di = 0; di < 3; di++)
            for (size_t hi = 0; hi < 2; hi++, idx++) {
                struct cfg c = {1, ss[si], hs[hi], ds[di], MIXRT_DTYPE_F32, (enum mask_kind)(idx % 4),
                                (enum scale_kind)(idx % 3), idx % 5 == 0, -10000.0, (int)(ss[si] / 3), false, 0, false, false, false};
                if (ss[si] >= 128 && hs[hi] == 12 && ds[di] != 64) continue; /* keep the f64 runs short */
                check_case(&c);
            }
    /* bf16 and f16 graphs; batch 2; no scale; mask first. */
    struct cfg more[] = {
        {1, 128, 12, 64, MIXRT_DTYPE_BF16, MASK_BERT, SCALE_DIV, false, -10000.0, 20, false, 0, false, false, false},
        {1, 129, 2, 64, MIXRT_DTYPE_BF16, MASK_CAUSAL_BERT, SCALE_DIV, false, -3.3895313892515355e38, 5, false, 0, false, false, false},
        {1, 33, 3, 17, MIXRT_DTYPE_BF16, MASK_CAUSAL, SCALE_MUL, false, 0, 0, false, 0, false, false, false},
        {1, 31, 2, 32, MIXRT_DTYPE_F16, MASK_BERT, SCALE_MUL, true, -10000.0, 3, false, 0, false, false, false},
        {2, 19, 3, 32, MIXRT_DTYPE_F32, MASK_CAUSAL_BERT, SCALE_NONE, true, -3.4028234663852886e38, 4, false, 0, false, false, false},
        {1, 20, 2, 16, MIXRT_DTYPE_F64, MASK_CAUSAL, SCALE_QK, false, 0, 0, false, 0, false, false, false},
        /* A fully masked key set: every row's all -inf gives NaN in the reference and the
         * fast kernel alike; GPT-2's finite minimum gives none. */
        {1, 9, 2, 16, MIXRT_DTYPE_F32, MASK_BERT, SCALE_DIV, false, -INFINITY, 9, false, 0, false, false, false},
        {1, 9, 2, 16, MIXRT_DTYPE_F32, MASK_CAUSAL_BERT, SCALE_DIV, false, -3.4028234663852886e38, 9, false, 0, false, false, false},
        {1, 9, 2, 16, MIXRT_DTYPE_F32, MASK_BERT, SCALE_DIV, false, -INFINITY, 3, false, 0, false, false, false},
        /* Already in heads-first layout: identity perms, K^T given. */
        {1, 24, 3, 32, MIXRT_DTYPE_F32, MASK_CAUSAL_BERT, SCALE_DIV, false, -10000.0, 4, true, 0, false, false, false},
        {2, 17, 2, 16, MIXRT_DTYPE_BF16, MASK_BERT, SCALE_QK, true, -10000.0, 4, true, 0, false, false, false},
        /* Causal fills that do not vanish under exp: the keys past a row block's diagonal
         * count (a kernel that skips them must notice). */
        {1, 40, 2, 64, MIXRT_DTYPE_F32, MASK_CAUSAL, SCALE_DIV, false, 0, 0, false, 5.0, false, false, false},
        {1, 40, 2, 64, MIXRT_DTYPE_BF16, MASK_CAUSAL, SCALE_DIV, false, 0, 0, false, 5.0, false, false, false},
        {1, 37, 2, 32, MIXRT_DTYPE_F32, MASK_CAUSAL_BERT, SCALE_DIV, false, -10000.0, 3, false, -1.0, false, false, false},
        {1, 37, 2, 32, MIXRT_DTYPE_BF16, MASK_CAUSAL_BERT, SCALE_DIV, false, -10000.0, 3, false, -1.0, false, false, false},
        {1, 128, 2, 64, MIXRT_DTYPE_BF16, MASK_CAUSAL, SCALE_DIV, false, 0, 0, false, 0, false, false, false},
        /* torch's SDPA export (NaN guard, K^T by reshapes): fully masked rows give zeros -
         * every row, or batch 0's only (batch 1 unmasked) - in every kernel. */
        {1, 9, 2, 16, MIXRT_DTYPE_F32, MASK_BERT, SCALE_QK, false, -INFINITY, 9, false, 0, true, false, false},
        {2, 9, 2, 16, MIXRT_DTYPE_F32, MASK_BERT, SCALE_QK, false, -INFINITY, 9, false, 0, true, true, false},
        {2, 30, 3, 32, MIXRT_DTYPE_BF16, MASK_BERT, SCALE_QK, false, -INFINITY, 30, false, 0, true, true, false},
        {2, 30, 3, 32, MIXRT_DTYPE_F32, MASK_CAUSAL_BERT, SCALE_QK, false, -INFINITY, 30, false, 0, true, true, false},
        {1, 128, 12, 64, MIXRT_DTYPE_F32, MASK_BERT, SCALE_QK, false, -INFINITY, 20, false, 0, true, false, false},
        {1, 65, 2, 64, MIXRT_DTYPE_BF16, MASK_CAUSAL, SCALE_MUL, false, 0, 0, false, 0, true, false, false},
        {2, 17, 2, 16, MIXRT_DTYPE_F32, MASK_BERT, SCALE_DIV, true, -INFINITY, 17, true, 0, true, true, false},
        /* the padding mask from a bool input through And(all true) and Where: shrunk */
        {2, 33, 3, 32, MIXRT_DTYPE_F32, MASK_BERT, SCALE_QK, false, -INFINITY, 33, false, 0, true, true, true},
        {2, 20, 2, 16, MIXRT_DTYPE_BF16, MASK_BERT, SCALE_DIV, false, -3.3895313892515355e38, 5, false, 0, true, false,
         true},
    };
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) check_case(&more[i]);
    /* Swin's shifted windows: bias and window mask become one mask constant of the scores'
     * shape (2 or 4 windows per image, with and without the bias, mask first). */
    struct cfg win[] = {
        {4, 9, 3, 16, MIXRT_DTYPE_F32, MASK_NONE, SCALE_MUL, false, 0, 0, true, 0, false, false, false},
        {4, 49, 3, 32, MIXRT_DTYPE_BF16, MASK_NONE, SCALE_MUL, false, 0, 0, true, 0, false, false, false},
        {4, 7, 2, 16, MIXRT_DTYPE_F32, MASK_NONE, SCALE_DIV, true, 0, 0, false, 0, false, false, false},
        {2, 16, 2, 32, MIXRT_DTYPE_F32, MASK_NONE, SCALE_MUL, false, 0, 0, true, 0, false, false, false},
    };
    static const int64_t wins[] = {2, 4, 4, 2};
    /* and with MIXRT_PASS_ATTN_MASK2: one image's (4 of 4, 2 of 2 windows) bias and window mask
     * as two inputs, more images' still one whole mask; a bias in every case but one */
    for (int two = 0; two < 2; two++)
        for (size_t i = 0; i < sizeof(win) / sizeof(win[0]); i++) {
            g_win = wins[i], g_win_bias = two ? i != 2 : i < 2;
            g_pass_extra = two ? MIXRT_PASS_ATTN_MASK2 : 0;
            check_case(&win[i]);
        }
    g_win = 0, g_win_bias = false, g_pass_extra = 0;
    /* Swin-V2's per-head scale on the scores (either operand order), heads-first and not, with
     * masks, causal, bf16, and with the shifted windows and their bias. */
    struct cfg hsc[] = {
        {1, 24, 3, 32, MIXRT_DTYPE_F32, MASK_BERT, SCALE_NONE, false, -10000.0, 4, false, 0, false, false, false},
        {2, 17, 4, 16, MIXRT_DTYPE_F32, MASK_CAUSAL, SCALE_DIV, false, 0, 0, true, 0, false, false, false},
        {1, 64, 3, 32, MIXRT_DTYPE_BF16, MASK_NONE, SCALE_NONE, false, 0, 0, false, 0, false, false, false},
        {4, 49, 3, 32, MIXRT_DTYPE_F32, MASK_NONE, SCALE_NONE, false, 0, 0, true, 0, false, false, false},
        {4, 16, 2, 32, MIXRT_DTYPE_BF16, MASK_NONE, SCALE_MUL, false, 0, 0, false, 0, false, false, false},
    };
    g_head_scale = true;
    for (size_t i = 0; i < sizeof(hsc) / sizeof(hsc[0]); i++) {
        g_win = i >= 3 ? 2 : 0, g_win_bias = i == 3;
        check_case(&hsc[i]);
    }
    /* a one-image window with its bias, two masks, under the head scale */
    struct cfg hsc2 = {2, 16, 3, 32, MIXRT_DTYPE_BF16, MASK_NONE, SCALE_NONE, false, 0, 0, true, 0, false, false, false};
    g_win = 2, g_win_bias = true, g_pass_extra = MIXRT_PASS_ATTN_MASK2;
    check_case(&hsc2);
    g_head_scale = false, g_win = 0, g_win_bias = false, g_pass_extra = 0;
}

/* Tile boundaries of the fast kernel (8-row blocks, 32-wide K/V panels, 16-lane vectors,
 * bf16 pairs): S and D at 1, 15, 16, 17, 63, 64, 65 and ViT's 197, each with a mask kind,
 * f32 and bf16 in turn, and both input layouts. */
static void test_tile_boundaries(void) {
    static const int64_t sizes[] = {1, 15, 16, 17, 63, 64, 65, 197};
    int idx = 0;
    for (size_t si = 0; si < 8; si++)
        for (size_t di = 0; di < 7; di++, idx++) {
            enum mask_kind mk = (enum mask_kind)(idx % 4);
            int64_t s = sizes[si];
            struct cfg c = {1, s, 2, sizes[di], idx % 2 ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32, mk,
                            (enum scale_kind)(idx % 3), false, -10000.0, (int)(s / 4), idx % 5 == 0, 0, false, false, false};
            check_case(&c);
        }
}

/* Graphs the pass must leave alone. */
static void test_negative(void) {
    for (int kase = 0; kase < 5; kase++) {
        struct cfg c = {1, 8, 2, 16, MIXRT_DTYPE_F32, MASK_CAUSAL_BERT, SCALE_DIV, false, -10000.0, 2, false, 0, false, false, false};
        struct mixrt_graph *g = build(&c);
        const char *what = "";
        switch (kase) {
        case 0: /* the probabilities are also a graph output */
            graph_set_output(g, mixrt_graph_find_value(g, "probs"));
            what = "probs is a graph output";
            break;
        case 1: { /* the scale divides by a graph input, not a constant */
            int64_t one = 1;
            int sv = add_input(g, "sc", MIXRT_DTYPE_F32, 0, &one);
            g->nodes[g->values[mixrt_graph_find_value(g, "scaled")].producer].inputs[1] = sv;
            what = "scale is an input";
            break;
        }
        case 2: /* Softmax over another axis */
            g->nodes[g->values[mixrt_graph_find_value(g, "probs")].producer].attrs[0].i = 2;
            what = "softmax axis 2";
            break;
        case 3: { /* a Where condition that is not causal */
            int ci = mixrt_graph_find_value(g, "tril");
            ((uint8_t *)g->values[ci].init->data)[1] = 1;
            what = "non-causal Where";
            break;
        }
        case 4: /* the scores read by a second node */
            graph_set_output(g, mixrt_graph_find_value(g, "scores"));
            what = "scores is a graph output";
            break;
        }
        TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort");
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_FUSE_ATTENTION, NULL) == MIXRT_STATUS_OK, "passes: %s",
                 mixrt_context_last_error(ctx));
        TU_CHECK(count_op(g, "Attention") == 0 && count_op(g, "Softmax") == 1, "%s: fused anyway", what);
        mixrt_graph_destroy(g);
    }
}

/* The reference kernel refuses malformed nodes with a message naming the node. */
static void test_invalid(void) {
    struct cfg c = {1, 8, 2, 16, MIXRT_DTYPE_F32, MASK_NONE, SCALE_DIV, false, 0, 0, false, 0, false, false, false};
    struct mixrt_graph *g = build(&c);
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_FUSE_ATTENTION, NULL) == MIXRT_STATUS_OK && g->n_nodes == 1, "fused");
    int64_t io[4] = {1, 8, 2, 16}, bad[4] = {1, 8, 2, 15};
    struct mixrt_tensor *in[3] = {rand_tensor(MIXRT_DTYPE_F32, 4, io, -1, 1), rand_tensor(MIXRT_DTYPE_F32, 4, bad, -1, 1),
                                  rand_tensor(MIXRT_DTYPE_F32, 4, io, -1, 1)};
    struct mixrt_tensor outs[1];
    memset(outs, 0, sizeof(outs));
    mixrt_status st = mixrt_exec_graph(ctx, g, NULL, 3, (const struct mixrt_tensor *const *)in, NULL, outs, NULL, NULL);
    TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL && strstr(mixrt_context_last_error(ctx), "Attention"),
             "mismatched D: status %d, '%s'", st, mixrt_context_last_error(ctx));
    const struct mixrt_cpu_kernel *fk = fast_kernel();
    mixrt_kernel_fn fns[1] = {fk ? fk->run : NULL};
    struct mixrt_exec_opts opts = {.fns = fns};
    st = mixrt_exec_graph_opts(ctx, g, NULL, 3, (const struct mixrt_tensor *const *)in, NULL, outs, NULL, NULL, &opts);
    TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL, "fast kernel, mismatched D: status %d", st);
    for (int i = 0; i < 3; i++) mixrt_tensor_destroy(ctx, in[i]);
    mixrt_graph_destroy(g);
}

int main(void) {
    TU_CHECK(mixrt_context_create(NULL, &ctx) == MIXRT_STATUS_OK, "context");
    tu_seed(0xa77e);
    test_fusion_cases();
    test_tile_boundaries();
    test_negative();
    test_invalid();
    mixrt_context_destroy(ctx);
    return tu_finish("test_attention");
}
