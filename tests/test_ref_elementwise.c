/* test_ref_elementwise.c - unit tests of the elementwise and reduce reference kernels that the
 * ONNX test data cannot show: bf16/f16 results are rounded once from an f64 computation,
 * integer edge cases (x/0, INT_MIN/-1, mod signs, int64 exactness), legacy broadcasting,
 * zero-size tensors, TopK tie order and named errors. */
#include <math.h>
#include <string.h>

#include "backend/cpu/ref.h"
#include "testutil.h"

static mixrt_context_t ctx;

/* Runs op on the given inputs; outs must hold nout zeroed tensors (released by the caller). */
static mixrt_status run_op(const char *op, int64_t opset, struct mixrt_attr *attrs, int nattr,
                           const struct mixrt_tensor **ins, int nin, struct mixrt_tensor *outs, int nout) {
    static struct mixrt_graph graph; /* kernels only look at values for inputs >= 0 */
    int inputs[8], outputs[8];
    for (int i = 0; i < 8; i++) inputs[i] = outputs[i] = -1;
    struct mixrt_node node = {.name = "n", .op_type = op, .domain = "", .opset = opset, .n_inputs = nin,
                              .n_outputs = nout, .inputs = inputs, .outputs = outputs, .n_attrs = nattr,
                              .attrs = attrs};
    mixrt_kernel_fn fn;
    mixrt_status status = mixrt_ref_find(ctx, &node, &fn);
    if (status != MIXRT_STATUS_OK) return status;
    const struct mixrt_seq *in_seq[8] = {0};
    struct mixrt_seq out_seq[8];
    bool is_seq[8] = {0}, wanted[8];
    memset(out_seq, 0, sizeof(out_seq));
    for (int i = 0; i < 8; i++) wanted[i] = true;
    struct mixrt_kernel_ctx k = {.ctx = ctx, .graph = &graph, .node = &node, .opset = opset, .n_in = nin,
                                 .in = ins, .in_seq = in_seq, .n_out = nout, .out = outs, .out_seq = out_seq,
                                 .out_is_seq = is_seq, .out_wanted = wanted};
    return fn(&k);
}

static struct mixrt_tensor *make(mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_tensor *t = NULL;
    if (mixrt_tensor_create(ctx, dt, rank, dims, &t) != MIXRT_STATUS_OK) return NULL;
    return t;
}

static uint16_t round16(mixrt_dtype dt, double v) {
    return dt == MIXRT_DTYPE_BF16 ? mixrt_bf16_from_double(v).bits : mixrt_f16_from_double(v).bits;
}
static bool is_nan16(mixrt_dtype dt, uint16_t b) {
    return dt == MIXRT_DTYPE_BF16 ? (b & 0x7fff) > 0x7f80 : (b & 0x7fff) > 0x7c00;
}

struct optest {
    const char *op;
    int arity;
    double lo, hi; /* input range */
};

static double reference(const char *op, double a, double b) {
    if (!strcmp(op, "Add")) return a + b;
    if (!strcmp(op, "Sub")) return a - b;
    if (!strcmp(op, "Mul")) return a * b;
    if (!strcmp(op, "Div")) return a / b;
    if (!strcmp(op, "Pow")) return pow(a, b);
    if (!strcmp(op, "Exp")) return exp(a);
    if (!strcmp(op, "Tanh")) return tanh(a);
    if (!strcmp(op, "Sqrt")) return sqrt(a);
    if (!strcmp(op, "Log")) return log(a);
    if (!strcmp(op, "Erf")) return erf(a);
    if (!strcmp(op, "Sigmoid")) return a >= 0 ? 1 / (1 + exp(-a)) : exp(a) / (1 + exp(a));
    return NAN;
}

/* Every 16-bit result must equal the f64 result of the same widened inputs rounded once. */
static void test_round_once(void) {
    static const struct optest ops[] = {
        {"Add", 2, -100, 100}, {"Sub", 2, -100, 100}, {"Mul", 2, -50, 50},  {"Div", 2, -50, 50},
        {"Pow", 2, 0.1, 4},    {"Exp", 1, -10, 10},   {"Tanh", 1, -4, 4},   {"Sqrt", 1, 0, 1000},
        {"Log", 1, 0.001, 1e4}, {"Erf", 1, -3, 3},    {"Sigmoid", 1, -20, 20},
    };
    const mixrt_dtype dts[] = {MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    const int64_t n = 4096;
    for (size_t d = 0; d < 2; d++)
        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
            mixrt_dtype dt = dts[d];
            struct mixrt_tensor *a = make(dt, 1, &n), *b = make(dt, 1, &n), out[1];
            memset(out, 0, sizeof(out));
            uint16_t *pa = a->data, *pb = b->data;
            for (int64_t i = 0; i < n; i++) {
                pa[i] = round16(dt, tu_uniform(ops[o].lo, ops[o].hi));
                pb[i] = round16(dt, tu_uniform(ops[o].lo, ops[o].hi));
            }
            const struct mixrt_tensor *ins[2] = {a, b};
            mixrt_status st = run_op(ops[o].op, 17, NULL, 0, ins, ops[o].arity, out, 1);
            TU_CHECK(st == MIXRT_STATUS_OK, "%s %s: %s", ops[o].op, mixrt_dtype_name(dt), mixrt_context_last_error(ctx));
            if (st == MIXRT_STATUS_OK) {
                int bad = 0;
                const uint16_t *po = out[0].data;
                for (int64_t i = 0; i < n; i++) {
                    double x = mixrt_load_f64(a->data, dt, (size_t)i), y = mixrt_load_f64(b->data, dt, (size_t)i);
                    uint16_t want = round16(dt, reference(ops[o].op, x, y));
                    if (po[i] != want && !(is_nan16(dt, po[i]) && is_nan16(dt, want))) bad++;
                }
                TU_CHECK(bad == 0, "%s %s: %d of %lld results not rounded once from f64", ops[o].op,
                         mixrt_dtype_name(dt), bad, (long long)n);
            }
            mixrt_tensor_release(ctx, &out[0]);
            mixrt_tensor_destroy(ctx, a);
            mixrt_tensor_destroy(ctx, b);
        }
}

/* Cast f64 -> bf16 rounds once: 1 + 2^-8 + 2^-30 is above the halfway point, though through
 * f32 it would become the tie 1 + 2^-8 and round to even (1.0). */
static void test_cast_once(void) {
    int64_t one = 1;
    struct mixrt_tensor *x = make(MIXRT_DTYPE_F64, 1, &one), out[1];
    memset(out, 0, sizeof(out));
    ((double *)x->data)[0] = 1.0 + ldexp(1, -8) + ldexp(1, -30);
    struct mixrt_attr to = {.name = "to", .type = MIXRT_ATTR_INT, .i = MIXRT_DTYPE_BF16};
    const struct mixrt_tensor *ins[1] = {x};
    TU_CHECK(run_op("Cast", 13, &to, 1, ins, 1, out, 1) == MIXRT_STATUS_OK, "Cast: %s", mixrt_context_last_error(ctx));
    TU_CHECK(out[0].data && mixrt_load_f64(out[0].data, MIXRT_DTYPE_BF16, 0) == 1.0078125, "Cast f64->bf16 got %g",
             out[0].data ? mixrt_load_f64(out[0].data, MIXRT_DTYPE_BF16, 0) : -1.0);
    mixrt_tensor_release(ctx, &out[0]);
    mixrt_tensor_destroy(ctx, x);
}

static void binary_i64(const char *op, struct mixrt_attr *attrs, int nattr, mixrt_dtype dt, const int64_t *a,
                       const int64_t *b, const int64_t *want, int64_t n) {
    struct mixrt_tensor *ta = make(dt, 1, &n), *tb = make(dt, 1, &n), out[1];
    memset(out, 0, sizeof(out));
    for (int64_t i = 0; i < n; i++) {
        mixrt_store_i64(ta->data, dt, (size_t)i, a[i]);
        mixrt_store_i64(tb->data, dt, (size_t)i, b[i]);
    }
    const struct mixrt_tensor *ins[2] = {ta, tb};
    mixrt_status st = run_op(op, 13, attrs, nattr, ins, 2, out, 1);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: %s", op, mixrt_context_last_error(ctx));
    for (int64_t i = 0; st == MIXRT_STATUS_OK && i < n; i++) {
        int64_t got = mixrt_load_i64(out[0].data, out[0].dtype, (size_t)i);
        TU_CHECK(got == want[i], "%s %s element %lld: got %lld, want %lld", op, mixrt_dtype_name(dt), (long long)i,
                 (long long)got, (long long)want[i]);
    }
    mixrt_tensor_release(ctx, &out[0]);
    mixrt_tensor_destroy(ctx, ta);
    mixrt_tensor_destroy(ctx, tb);
}

static void test_integers(void) {
    /* Div truncates toward zero; x/0 is 0; INT32_MIN / -1 wraps to INT32_MIN. */
    const int64_t da[] = {7, -7, 5, INT32_MIN, 3}, db[] = {2, 2, 0, -1, -2}, dw[] = {3, -3, 0, INT32_MIN, -1};
    binary_i64("Div", NULL, 0, MIXRT_DTYPE_I32, da, db, dw, 5);
    /* Mod: fmod=0 takes the divisor's sign, fmod=1 the dividend's; x%0 is 0 */
    const int64_t ma[] = {-4, 7, 5, 4, -7, 8, 5}, mb[] = {2, -3, 8, -2, 3, 5, 0};
    const int64_t mw[] = {0, -2, 5, 0, 2, 3, 0}, fw[] = {0, 1, 5, 0, -1, 3, 0};
    binary_i64("Mod", NULL, 0, MIXRT_DTYPE_I64, ma, mb, mw, 7);
    struct mixrt_attr fm = {.name = "fmod", .type = MIXRT_ATTR_INT, .i = 1};
    binary_i64("Mod", &fm, 1, MIXRT_DTYPE_I64, ma, mb, fw, 7);
    /* int64 stays exact beyond 2^53 */
    const int64_t aa[] = {(1LL << 62) + 1, INT64_MAX}, ab[] = {(1LL << 60) + 3, 1}, aw[] = {(1LL << 62) + (1LL << 60) + 4, INT64_MIN};
    binary_i64("Add", NULL, 0, MIXRT_DTYPE_I64, aa, ab, aw, 2);
    /* u64 compares unsigned */
    const int64_t ua[] = {-1 /* UINT64_MAX */, 5}, ub[] = {1, 7}, uw[] = {1, 0};
    binary_i64("Greater", NULL, 0, MIXRT_DTYPE_U64, ua, ub, uw, 2); /* output is bool; loaded as 0/1 */
}

static void test_legacy_broadcast(void) {
    int64_t da[] = {2, 3, 2}, db[] = {3};
    struct mixrt_tensor *a = make(MIXRT_DTYPE_F32, 3, da), *b = make(MIXRT_DTYPE_F32, 1, db), out[1];
    memset(out, 0, sizeof(out));
    for (int i = 0; i < 12; i++) ((float *)a->data)[i] = (float)i;
    for (int i = 0; i < 3; i++) ((float *)b->data)[i] = (float)(100 * (i + 1));
    struct mixrt_attr attrs[2] = {{.name = "broadcast", .type = MIXRT_ATTR_INT, .i = 1},
                                  {.name = "axis", .type = MIXRT_ATTR_INT, .i = 1}};
    const struct mixrt_tensor *ins[2] = {a, b};
    mixrt_status st = run_op("Add", 6, attrs, 2, ins, 2, out, 1);
    TU_CHECK(st == MIXRT_STATUS_OK, "legacy Add: %s", mixrt_context_last_error(ctx));
    if (st == MIXRT_STATUS_OK) {
        TU_CHECK(out[0].rank == 3 && out[0].dims[1] == 3, "legacy Add shape");
        for (int i = 0; i < 12; i++) {
            float want = (float)i + (float)(100 * ((i / 2) % 3 + 1));
            TU_CHECK(((float *)out[0].data)[i] == want, "legacy Add element %d: got %g want %g", i,
                     ((float *)out[0].data)[i], want);
        }
    }
    mixrt_tensor_release(ctx, &out[0]);
    /* without the attribute the shapes must be equal before opset 7 */
    st = run_op("Add", 6, NULL, 0, ins, 2, out, 1);
    TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL, "legacy Add without broadcast must fail, got %d", (int)st);
    /* numpy broadcasting at opset 14: [2,3,2] + [3] does not broadcast */
    st = run_op("Add", 14, NULL, 0, ins, 2, out, 1);
    TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL && strstr(mixrt_context_last_error(ctx), "broadcast"),
             "Add [2,3,2]+[3] at opset 14: status %d '%s'", (int)st, mixrt_context_last_error(ctx));
    mixrt_tensor_release(ctx, &out[0]);
    mixrt_tensor_destroy(ctx, a);
    mixrt_tensor_destroy(ctx, b);
}

static void test_reduce_and_empty(void) {
    /* ReduceSum of bf16 accumulates in double: 1 + 384 * 2^-10 = 1.375 exactly */
    int64_t n = 385;
    struct mixrt_tensor *x = make(MIXRT_DTYPE_BF16, 1, &n), out[2];
    memset(out, 0, sizeof(out));
    mixrt_bf16 *px = x->data;
    px[0] = mixrt_bf16_from_double(1.0);
    for (int i = 1; i < 385; i++) px[i] = mixrt_bf16_from_double(ldexp(1, -10));
    const struct mixrt_tensor *ins[2] = {x, NULL};
    mixrt_status st = run_op("ReduceSum", 13, NULL, 0, ins, 1, out, 1);
    TU_CHECK(st == MIXRT_STATUS_OK && out[0].rank == 1 && mixrt_load_f64(out[0].data, MIXRT_DTYPE_BF16, 0) == 1.375,
             "ReduceSum bf16: %s", mixrt_context_last_error(ctx));
    mixrt_tensor_release(ctx, &out[0]);
    mixrt_tensor_destroy(ctx, x);

    /* zero-size: [0,3] + [3] is [0,3]; ReduceMax over an empty axis gives -inf, ReduceSum 0 */
    int64_t de[] = {0, 3}, d3[] = {3};
    struct mixrt_tensor *e = make(MIXRT_DTYPE_F16, 2, de), *b = make(MIXRT_DTYPE_F16, 1, d3);
    const struct mixrt_tensor *ins2[2] = {e, b};
    st = run_op("Add", 14, NULL, 0, ins2, 2, out, 1);
    TU_CHECK(st == MIXRT_STATUS_OK && out[0].rank == 2 && out[0].dims[0] == 0 && out[0].dims[1] == 3,
             "Add on zero-size: %s", mixrt_context_last_error(ctx));
    mixrt_tensor_release(ctx, &out[0]);
    struct mixrt_attr ax = {.name = "axes", .type = MIXRT_ATTR_INTS, .n = 1, .ints = (int64_t[]){0}};
    const struct mixrt_tensor *ins3[1] = {e};
    st = run_op("ReduceMax", 13, &ax, 1, ins3, 1, out, 1);
    TU_CHECK(st == MIXRT_STATUS_OK && out[0].rank == 2 && out[0].dims[0] == 1 &&
                 mixrt_load_f64(out[0].data, MIXRT_DTYPE_F16, 0) == -INFINITY,
             "ReduceMax over empty axis: %s", mixrt_context_last_error(ctx));
    mixrt_tensor_release(ctx, &out[0]);
    st = run_op("ReduceSum", 11, &ax, 1, ins3, 1, out, 1);
    TU_CHECK(st == MIXRT_STATUS_OK && mixrt_load_f64(out[0].data, MIXRT_DTYPE_F16, 2) == 0, "ReduceSum empty: %s",
             mixrt_context_last_error(ctx));
    mixrt_tensor_release(ctx, &out[0]);
    mixrt_tensor_destroy(ctx, e);
    mixrt_tensor_destroy(ctx, b);
}

static void test_topk_ties(void) {
    int64_t n = 5, one = 1;
    struct mixrt_tensor *x = make(MIXRT_DTYPE_BF16, 1, &n), *kt = make(MIXRT_DTYPE_I64, 1, &one), out[2];
    memset(out, 0, sizeof(out));
    const double v[] = {1, 3, 2, 3, 3};
    for (int i = 0; i < 5; i++) ((mixrt_bf16 *)x->data)[i] = mixrt_bf16_from_double(v[i]);
    ((int64_t *)kt->data)[0] = 4;
    const struct mixrt_tensor *ins[2] = {x, kt};
    mixrt_status st = run_op("TopK", 11, NULL, 0, ins, 2, out, 2);
    TU_CHECK(st == MIXRT_STATUS_OK, "TopK: %s", mixrt_context_last_error(ctx));
    if (st == MIXRT_STATUS_OK) {
        const int64_t want[] = {1, 3, 4, 2};
        for (int i = 0; i < 4; i++)
            TU_CHECK(((int64_t *)out[1].data)[i] == want[i], "TopK index %d: got %lld want %lld", i,
                     (long long)((int64_t *)out[1].data)[i], (long long)want[i]);
    }
    mixrt_tensor_release(ctx, &out[0]);
    mixrt_tensor_release(ctx, &out[1]);
    ((int64_t *)kt->data)[0] = 6; /* k beyond the axis: a named error, not a crash */
    st = run_op("TopK", 11, NULL, 0, ins, 2, out, 2);
    TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL, "TopK k=6 on 5 must fail, got %d", (int)st);
    mixrt_tensor_release(ctx, &out[0]);
    mixrt_tensor_release(ctx, &out[1]);
    mixrt_tensor_destroy(ctx, x);
    mixrt_tensor_destroy(ctx, kt);
}

/* TopK with a small k over a long axis (the selection path, k * 16 < length): many ties and two
 * NaNs, largest and smallest, rows along axis 1 of [3, 1000] and along axis 0 of [1000, 2],
 * against an independent pick-the-best-remaining loop (NaN above every number, ties to the
 * lower index). */
static bool topk_before(double a, int64_t ia, double b, int64_t ib, bool largest) {
    bool na = a != a, nb = b != b;
    if (na != nb) return largest ? na : nb; /* NaN first for largest, last for smallest */
    if (!na && a != b) return largest ? a > b : a < b;
    return ia < ib;
}

static void test_topk_select(void) {
    for (int largest = 0; largest < 2; largest++)
        for (int shape = 0; shape < 2; shape++) {
            int64_t dims[2] = {3, 1000}, kk = 7, len = 1000;
            if (shape) dims[0] = 1000, dims[1] = 2;
            int64_t rows = shape ? 2 : 3;
            struct mixrt_tensor *x = make(MIXRT_DTYPE_F32, 2, dims), *kt = make(MIXRT_DTYPE_I64, 1, (int64_t[]){1}),
                                out[2];
            memset(out, 0, sizeof(out));
            ((int64_t *)kt->data)[0] = kk;
            float *xv = x->data;
            for (int64_t i = 0; i < 2000 + (shape ? 0 : 1000); i++) xv[i] = (float)((i * 37 + 11) % 50 - 25) / 4.0f;
            xv[shape ? 2 * 500 : 500] = NAN;
            xv[shape ? 2 * 900 + 1 : 1000 + 900] = NAN;
            struct mixrt_attr attrs[2];
            memset(attrs, 0, sizeof(attrs));
            attrs[0].name = "largest", attrs[0].type = MIXRT_ATTR_INT, attrs[0].i = largest;
            attrs[1].name = "axis", attrs[1].type = MIXRT_ATTR_INT, attrs[1].i = shape ? 0 : 1;
            const struct mixrt_tensor *ins[2] = {x, kt};
            mixrt_status st = run_op("TopK", 11, attrs, 2, ins, 2, out, 2);
            TU_CHECK(st == MIXRT_STATUS_OK, "TopK select: %s", mixrt_context_last_error(ctx));
            for (int64_t r = 0; st == MIXRT_STATUS_OK && r < rows; r++) {
                bool taken[1000] = {false};
                for (int64_t j = 0; j < kk; j++) {
                    int64_t best = -1;
                    for (int64_t i = 0; i < len; i++) {
                        double v = xv[shape ? i * 2 + r : r * len + i];
                        if (!taken[i] && (best < 0 || topk_before(v, i, xv[shape ? best * 2 + r : r * len + best], best,
                                                                  largest)))
                            best = i;
                    }
                    taken[best] = true;
                    int64_t o = shape ? j * 2 + r : r * kk + j;
                    int64_t got = ((int64_t *)out[1].data)[o];
                    float gv = ((float *)out[0].data)[o], wv = xv[shape ? best * 2 + r : r * len + best];
                    TU_CHECK(got == best && (gv == wv || (gv != gv && wv != wv)),
                             "TopK select (largest %d, shape %d) row %lld #%lld: index %lld value %g, want %lld (%g)",
                             largest, shape, (long long)r, (long long)j, (long long)got, gv, (long long)best, wv);
                }
            }
            mixrt_tensor_release(ctx, &out[0]);
            mixrt_tensor_release(ctx, &out[1]);
            mixrt_tensor_destroy(ctx, x);
            mixrt_tensor_destroy(ctx, kt);
        }
}

/* ArgMax/ArgMin on f32 (read in place) give the indices the generic path gives on the same
 * values in f64: ties, NaNs (which win), select_last_index, both axes. */
static void test_argminmax_f32(void) {
    int64_t dims[2] = {4, 37};
    struct mixrt_tensor *xf = make(MIXRT_DTYPE_F32, 2, dims), *xd = make(MIXRT_DTYPE_F64, 2, dims), of[1], od[1];
    for (int i = 0; i < 4 * 37; i++) {
        double v = (double)((i * 29 + 3) % 11) - 5.0; /* many ties */
        if (i == 40 || i == 77 || i == 80) v = NAN;
        ((float *)xf->data)[i] = (float)v;
        ((double *)xd->data)[i] = v;
    }
    for (int op = 0; op < 2; op++)
        for (int last = 0; last < 2; last++)
            for (int axis = 0; axis < 2; axis++) {
                struct mixrt_attr attrs[2];
                memset(attrs, 0, sizeof(attrs));
                attrs[0].name = "select_last_index", attrs[0].type = MIXRT_ATTR_INT, attrs[0].i = last;
                attrs[1].name = "axis", attrs[1].type = MIXRT_ATTR_INT, attrs[1].i = axis;
                memset(of, 0, sizeof(of));
                memset(od, 0, sizeof(od));
                const char *name = op ? "ArgMin" : "ArgMax";
                const struct mixrt_tensor *inf[1] = {xf}, *ind[1] = {xd};
                mixrt_status s1 = run_op(name, 13, attrs, 2, inf, 1, of, 1);
                mixrt_status s2 = run_op(name, 13, attrs, 2, ind, 1, od, 1);
                TU_CHECK(s1 == MIXRT_STATUS_OK && s2 == MIXRT_STATUS_OK, "%s: %s", name, mixrt_context_last_error(ctx));
                size_t n = s1 == MIXRT_STATUS_OK && s2 == MIXRT_STATUS_OK ? mixrt_tensor_numel(&od[0]) : 0;
                for (size_t i = 0; i < n; i++)
                    TU_CHECK(((int64_t *)of[0].data)[i] == ((int64_t *)od[0].data)[i],
                             "%s last %d axis %d #%zu: f32 %lld, f64 %lld", name, last, axis, i,
                             (long long)((int64_t *)of[0].data)[i], (long long)((int64_t *)od[0].data)[i]);
                mixrt_tensor_release(ctx, &of[0]);
                mixrt_tensor_release(ctx, &od[0]);
            }
    mixrt_tensor_destroy(ctx, xf);
    mixrt_tensor_destroy(ctx, xd);
}

int main(void) {
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    test_argminmax_f32();
    test_topk_select();
    tu_seed(20261129);
    test_round_once();
    test_cast_once();
    test_integers();
    test_legacy_broadcast();
    test_reduce_and_empty();
    test_topk_ties();
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "%zu bytes leaked", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    return tu_finish("test_ref_elementwise");
}
