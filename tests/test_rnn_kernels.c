/* test_rnn_kernels.c - the fast LSTM/GRU/RNN kernels (rnn.c) against the reference kernels on
 * seeded random data, f32 and bf16: every output (Y, Y_h, Y_c), both directions, reverse,
 * layout 1, sequence_lens with a zero-length row, initial states, peepholes, both GRU forms,
 * hidden and input sizes off the vector width; prepared states (constant bf16 weights
 * converted once and reused by two runs; W and R as graph inputs overriding an initializer);
 * out of memory in prepare and run reported with the node named, never run by the reference
 * instead; and that what the fast kernel does not take (clip, other activations,
 * input_forget) is refused, so the reference runs it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "kernel_harness.h"
#include "testutil.h"

struct rcase {
    const char *op;
    mixrt_dtype dt;
    int64_t seq, batch, input, hidden;
    int ndir;            /* 1 or 2 */
    bool reverse;        /* direction "reverse" (ndir 1) */
    bool bias, h0, c0, peep, lens, batch_first, lbr;
};

/* How run_prepared_case gives the weights: PREP_CONST, W, R, B (and P) are constant
 * initializers; PREP_INPUTS, W and R are graph inputs whose initializers the run's tensors
 * override (B constant). Either way prepared once, then run twice on that state. */
enum { PREP_NONE, PREP_CONST, PREP_INPUTS };

static int g_cases;

static void fill(struct mixrt_tensor *t, double scale) {
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, t->dtype, i, tu_uniform(-scale, scale));
}

static double rel_l2(const struct mixrt_tensor *y, const struct mixrt_tensor *r) {
    double num = 0, den = 0;
    size_t n = mixrt_tensor_numel(r);
    for (size_t i = 0; i < n; i++) {
        double a = mixrt_load_f64(y->data, y->dtype, i), b = mixrt_load_f64(r->data, r->dtype, i);
        num += (a - b) * (a - b);
        den += b * b;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void run_prepared_case(const struct rcase *c, int prep) {
    int id = g_cases++;
    bool lstm = !strcmp(c->op, "LSTM"), gru = !strcmp(c->op, "GRU");
    int gates = lstm ? 4 : gru ? 3 : 1, n_in = lstm ? 8 : 6, n_out = lstm ? 3 : 2;
    int64_t D = c->ndir, H = c->hidden, GH = gates * H;
    struct mixrt_tensor t[8];
    memset(t, 0, sizeof(t));
    tu_seed(0x7277u + (uint64_t)id);
    int64_t xd[3] = {c->seq, c->batch, c->input}, sd[3] = {D, c->batch, H};
    if (c->batch_first) xd[0] = c->batch, xd[1] = c->seq, sd[0] = c->batch, sd[1] = D;
    t[0] = kh_tensor(c->dt, 3, xd, NULL);
    t[1] = kh_tensor(c->dt, 3, (int64_t[]){D, GH, c->input}, NULL);
    t[2] = kh_tensor(c->dt, 3, (int64_t[]){D, GH, H}, NULL);
    fill(&t[0], 1.0), fill(&t[1], 0.3), fill(&t[2], 0.3);
    if (c->bias) t[3] = kh_tensor(c->dt, 2, (int64_t[]){D, 2 * GH}, NULL), fill(&t[3], 0.3);
    if (c->lens) {
        int64_t lv[8];
        for (int64_t b = 0; b < c->batch; b++) lv[b] = b == 1 ? 0 : c->seq - (b % 3); /* row 1 empty */
        t[4] = kh_tensor_ints(MIXRT_DTYPE_I32, 1, (int64_t[]){c->batch}, lv);
    }
    if (c->h0) t[5] = kh_tensor(c->dt, 3, sd, NULL), fill(&t[5], 0.5);
    if (lstm && c->c0) t[6] = kh_tensor(c->dt, 3, sd, NULL), fill(&t[6], 0.5);
    if (lstm && c->peep) t[7] = kh_tensor(c->dt, 2, (int64_t[]){D, 3 * H}, NULL), fill(&t[7], 0.3);
    char desc[200];
    snprintf(desc, sizeof(desc), "case %d %s %s seq %lld batch %lld in %lld hidden %lld dirs %d%s%s%s%s%s%s%s%s%s", id,
             c->op, mixrt_dtype_name(c->dt), (long long)c->seq, (long long)c->batch, (long long)c->input,
             (long long)H, c->ndir, c->reverse ? " reverse" : "", c->bias ? " B" : "", c->h0 ? " h0" : "",
             c->c0 ? " c0" : "", c->peep ? " P" : "", c->lens ? " lens" : "", c->batch_first ? " layout1" : "",
             c->lbr ? " lbr" : "",
             prep == PREP_CONST ? " prepared-const" : prep == PREP_INPUTS ? " prepared-W/R-inputs" : "");
    /* PREP_INPUTS: the initializers W and R override, other values than the run's. */
    struct mixrt_tensor dflt[3];
    memset(dflt, 0, sizeof(dflt));
    if (prep == PREP_INPUTS)
        for (int i = 1; i < 3; i++) dflt[i] = kh_tensor(c->dt, 3, t[i].dims, NULL), fill(&dflt[i], 0.3);

    kh_begin(c->op, 14, n_in, n_out);
    kh_attr_int("hidden_size", H);
    kh_attr_str("direction", c->ndir == 2 ? "bidirectional" : c->reverse ? "reverse" : "forward");
    if (c->batch_first) kh_attr_int("layout", 1);
    if (gru) kh_attr_int("linear_before_reset", c->lbr);
    for (int i = 0; i < n_in; i++) kh_in[i] = t[i].data || i < 3 ? &t[i] : NULL;
    for (int i = 0; i < n_in; i++) kh_G->values[kh_N->inputs[i]].dtype = i == 4 ? MIXRT_DTYPE_I32 : c->dt;
    /* The weights as a model holds them (the graph only borrows them: unset before kh_end). */
    size_t const_f32_bytes = 0;
    for (int i = 1; prep && i < n_in; i++) {
        if (i == 4 || i == 5 || i == 6 || !t[i].data) continue;
        struct mixrt_value *v = &kh_G->values[kh_N->inputs[i]];
        bool input = prep == PREP_INPUTS && i < 3;
        v->init = input ? &dflt[i] : &t[i];
        v->flags |= MIXRT_VALUE_INITIALIZER | (input ? MIXRT_VALUE_GRAPH_INPUT : 0u);
        if (!input) const_f32_bytes += mixrt_tensor_numel(&t[i]) * sizeof(float);
    }
    const struct mixrt_cpu_kernel *k = mixrt_cpu_kernel_find(lstm ? "rnn_lstm" : gru ? "rnn_gru" : "rnn_rnn", "", c->op);
    char why[128] = "";
    TU_CHECK(k && k->supports(kh_G, kh_N, why, sizeof(why)), "%s: the fast kernel refused: %s", desc, why);
    struct mixrt_tensor ref[3];
    memset(ref, 0, sizeof(ref));
    mixrt_status rs = kh_run();
    TU_CHECK(rs == MIXRT_STATUS_OK, "%s: reference: %s", desc, mixrt_context_last_error(kh_ctx));
    for (int o = 0; o < n_out && rs == MIXRT_STATUS_OK; o++) mixrt_tensor_copy(kh_ctx, &ref[o], &kh_out[o]);
    for (int o = 0; o < n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
    void *state = NULL;
    bool prepared = true;
    if (k && prep) {
        size_t before = mixrt_context_bytes_in_use(kh_ctx);
        mixrt_status ps = k->prepare(kh_ctx, kh_G, kh_N, &state);
        size_t made = mixrt_context_bytes_in_use(kh_ctx) - before;
        prepared = ps == MIXRT_STATUS_OK;
        TU_CHECK(prepared, "%s: prepare: %s", desc, mixrt_context_last_error(kh_ctx));
        /* bf16: f32 copies of the constants only (not of overridable W and R, each over 1 KiB
         * in the cases below); f32: none. */
        if (c->dt == MIXRT_DTYPE_F32)
            TU_CHECK(!state && made == 0, "%s: prepare kept %zu bytes for f32 weights", desc, made);
        else
            TU_CHECK(state && made >= const_f32_bytes && made < const_f32_bytes + 1024,
                     "%s: prepare kept %zu bytes, expected the %zu bytes of f32 copies of the constant weights", desc,
                     made, const_f32_bytes);
    }
    /* Prepared: two runs on the one state, bitwise alike, both as the reference. */
    struct mixrt_tensor first[3];
    memset(first, 0, sizeof(first));
    for (int run = 0; k && rs == MIXRT_STATUS_OK && prepared && run < (prep ? 2 : 1); run++) {
        mixrt_status fs = kh_run_kernel(k->run, state);
        TU_CHECK(fs == MIXRT_STATUS_OK, "%s: fast kernel (run %d): %s", desc, run + 1,
                 mixrt_context_last_error(kh_ctx));
        double tol = c->dt == MIXRT_DTYPE_F32 ? 1e-5 : 2e-2;
        for (int o = 0; o < n_out && fs == MIXRT_STATUS_OK; o++) {
            bool same = kh_out[o].rank == ref[o].rank && kh_out[o].dtype == ref[o].dtype &&
                        !memcmp(kh_out[o].dims, ref[o].dims, sizeof(int64_t) * (size_t)ref[o].rank);
            TU_CHECK(same, "%s: output %d shape or dtype differs from the reference's", desc, o);
            if (!same) continue;
            double e = rel_l2(&kh_out[o], &ref[o]);
            TU_CHECK(e <= tol, "%s: run %d output %d rel-L2 %.3g > %g", desc, run + 1, o, e, tol);
            if (run == 0) mixrt_tensor_copy(kh_ctx, &first[o], &kh_out[o]);
            else
                TU_CHECK(first[o].data && !memcmp(first[o].data, kh_out[o].data, kh_out[o].nbytes),
                         "%s: output %d of run 2 differs from run 1's on the same prepared state", desc, o);
        }
        for (int o = 0; o < n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
    }
    /* A run given another R than the initializer prepare copied computes with the one given. */
    if (k && rs == MIXRT_STATUS_OK && prepared && prep == PREP_CONST) {
        struct mixrt_tensor other = kh_tensor(c->dt, 3, t[2].dims, NULL), oref[3];
        memset(oref, 0, sizeof(oref));
        fill(&other, 0.3);
        kh_in[2] = &other;
        mixrt_status os = kh_run();
        for (int o = 0; o < n_out && os == MIXRT_STATUS_OK; o++) mixrt_tensor_copy(kh_ctx, &oref[o], &kh_out[o]);
        for (int o = 0; o < n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
        if (os == MIXRT_STATUS_OK) os = kh_run_kernel(k->run, state);
        TU_CHECK(os == MIXRT_STATUS_OK, "%s: run with another R: %s", desc, mixrt_context_last_error(kh_ctx));
        for (int o = 0; o < n_out && os == MIXRT_STATUS_OK; o++) {
            double e = rel_l2(&kh_out[o], &oref[o]);
            TU_CHECK(e <= (c->dt == MIXRT_DTYPE_F32 ? 1e-5 : 2e-2), "%s: run with another R: output %d rel-L2 %.3g",
                     desc, o, e);
        }
        for (int o = 0; o < 3; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]), mixrt_tensor_release(kh_ctx, &oref[o]);
        kh_in[2] = &t[2];
        mixrt_tensor_release(kh_ctx, &other);
    }
    if (k && k->release) k->release(kh_ctx, state);
    for (int o = 0; o < 3; o++) mixrt_tensor_release(kh_ctx, &first[o]);
    for (int o = 0; o < 3; o++) mixrt_tensor_release(kh_ctx, &ref[o]);
    for (int i = 0; kh_G && i < n_in; i++) kh_G->values[kh_N->inputs[i]].init = NULL;
    kh_end();
    for (int i = 0; i < 8; i++) mixrt_tensor_release(kh_ctx, &t[i]);
    for (int i = 0; i < 3; i++) mixrt_tensor_release(kh_ctx, &dflt[i]);
}

static void run_rcase(const struct rcase *c) { run_prepared_case(c, PREP_NONE); }

/* Out of memory, at each allocation of prepare and then of a run (prepared and not): the
 * node's OUT_OF_MEMORY with the node named, never a silent switch to the reference. */
static void out_of_memory(void) {
    const mixrt_dtype dt = MIXRT_DTYPE_BF16;
    const int64_t D = 1, T = 4, B = 2, I = 8, H = 16;
    struct mixrt_tensor t[4];
    t[0] = kh_tensor(dt, 3, (int64_t[]){T, B, I}, NULL);
    t[1] = kh_tensor(dt, 3, (int64_t[]){D, 4 * H, I}, NULL);
    t[2] = kh_tensor(dt, 3, (int64_t[]){D, 4 * H, H}, NULL);
    t[3] = kh_tensor(dt, 2, (int64_t[]){D, 8 * H}, NULL);
    tu_seed(0x6f6f6du);
    fill(&t[0], 1.0), fill(&t[1], 0.3), fill(&t[2], 0.3), fill(&t[3], 0.3);
    kh_begin("LSTM", 14, 4, 3);
    kh_attr_int("hidden_size", H);
    for (int i = 0; i < 4; i++) {
        kh_in[i] = &t[i];
        kh_G->values[kh_N->inputs[i]].dtype = dt;
        if (i) { /* W, R, B constant */
            kh_G->values[kh_N->inputs[i]].init = &t[i];
            kh_G->values[kh_N->inputs[i]].flags |= MIXRT_VALUE_INITIALIZER;
        }
    }
    const struct mixrt_cpu_kernel *k = mixrt_cpu_kernel_find("rnn_lstm", "", "LSTM");
    TU_CHECK(k != NULL, "rnn_lstm exists");
    void *state = NULL;
    mixrt_status st = MIXRT_STATUS_OUT_OF_MEMORY;
    int fails = 0;
    for (long n = 0; k && n < 64 && st != MIXRT_STATUS_OK; n++) {
        size_t before = mixrt_context_bytes_in_use(kh_ctx);
        mixrt_context_fail_alloc_after(kh_ctx, n, 0);
        st = k->prepare(kh_ctx, kh_G, kh_N, &state);
        mixrt_context_fail_alloc_after(kh_ctx, -1, 0);
        if (st == MIXRT_STATUS_OK) break;
        fails++;
        TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY && strstr(mixrt_context_last_error(kh_ctx), "'n0'") && !state &&
                     mixrt_context_bytes_in_use(kh_ctx) == before,
                 "prepare with allocation #%ld failing: %s, '%s', nothing kept", n, mixrt_status_string(st),
                 mixrt_context_last_error(kh_ctx));
    }
    TU_CHECK(fails > 0 && st == MIXRT_STATUS_OK, "prepare failed %d times, then %s", fails, mixrt_status_string(st));
    for (int prepared = 0; k && prepared < 2; prepared++) {
        void *use = prepared ? state : NULL;
        fails = 0;
        st = MIXRT_STATUS_OUT_OF_MEMORY;
        for (long n = 0; n < 64 && st != MIXRT_STATUS_OK; n++) {
            mixrt_context_fail_alloc_after(kh_ctx, n, 0);
            st = kh_run_kernel(k->run, use);
            mixrt_context_fail_alloc_after(kh_ctx, -1, 0);
            for (int o = 0; o < 3; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
            if (st == MIXRT_STATUS_OK) break;
            fails++;
            TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY && strstr(mixrt_context_last_error(kh_ctx), "'n0'"),
                     "run (%s) with allocation #%ld failing: %s, '%s'", prepared ? "prepared" : "unprepared", n,
                     mixrt_status_string(st), mixrt_context_last_error(kh_ctx));
        }
        /* The first allocation is the fast kernel's own (the lengths), so it must fail. */
        TU_CHECK(fails > 0 && st == MIXRT_STATUS_OK, "run (%s) failed %d times, then %s",
                 prepared ? "prepared" : "unprepared", fails, mixrt_status_string(st));
    }
    if (k) k->release(kh_ctx, state);
    for (int i = 0; i < 4; i++) kh_G->values[kh_N->inputs[i]].init = NULL;
    kh_end();
    for (int i = 0; i < 4; i++) mixrt_tensor_release(kh_ctx, &t[i]);
}

/* What the fast kernel must leave to the reference. */
static void refusals(void) {
    static const char *const acts[] = {"Tanh", "Tanh", "Tanh"};
    struct {
        const char *op, *what;
        int kind; /* 0 clip, 1 activations, 2 input_forget */
    } r[] = {{"LSTM", "clip", 0}, {"LSTM", "activations", 1}, {"LSTM", "input_forget", 2}, {"GRU", "clip", 0}};
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        kh_begin(r[i].op, 14, 3, 1);
        for (int j = 0; j < 3; j++) kh_G->values[kh_N->inputs[j]].dtype = MIXRT_DTYPE_F32;
        if (r[i].kind == 0) kh_attr_float("clip", 1.0f);
        if (r[i].kind == 1) kh_attr_strs("activations", (const char **)acts, 3);
        if (r[i].kind == 2) kh_attr_int("input_forget", 1);
        const struct mixrt_cpu_kernel *k =
            mixrt_cpu_kernel_find(!strcmp(r[i].op, "LSTM") ? "rnn_lstm" : "rnn_gru", "", r[i].op);
        char why[128] = "";
        TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)) && why[0], "%s with %s must be refused", r[i].op,
                 r[i].what);
        kh_end();
    }
}

int main(void) {
    mixrt_context_create(NULL, &kh_ctx);
    static const mixrt_dtype dts[2] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        mixrt_dtype dt = dts[d];
        /* LSTM: plain; everything on; reverse; layout 1 with lengths; vector-width sizes. */
        run_rcase(&(struct rcase){"LSTM", dt, 7, 1, 5, 20, 1, false, true, false, false, false, false, false, false});
        run_rcase(&(struct rcase){"LSTM", dt, 6, 4, 9, 17, 2, false, true, true, true, true, true, false, false});
        run_rcase(&(struct rcase){"LSTM", dt, 5, 3, 16, 32, 1, true, false, true, false, false, false, false, false});
        run_rcase(&(struct rcase){"LSTM", dt, 6, 4, 7, 33, 2, false, true, true, true, false, true, true, false});
        run_rcase(&(struct rcase){"LSTM", dt, 9, 1, 64, 64, 1, false, true, false, false, true, false, false, false});
        /* GRU: both reset forms, both directions, lengths, layout 1. */
        for (int lbr = 0; lbr < 2; lbr++) {
            run_rcase(&(struct rcase){"GRU", dt, 7, 2, 5, 19, 1, false, true, true, false, false, false, false, lbr});
            run_rcase(&(struct rcase){"GRU", dt, 6, 4, 8, 24, 2, false, true, true, false, false, true, true, lbr});
            run_rcase(&(struct rcase){"GRU", dt, 5, 1, 3, 16, 1, true, false, false, false, false, false, false, lbr});
        }
        /* RNN (Tanh). */
        run_rcase(&(struct rcase){"RNN", dt, 8, 3, 6, 21, 2, false, true, true, false, false, true, false, false});
        run_rcase(&(struct rcase){"RNN", dt, 5, 1, 4, 16, 1, true, false, false, false, false, false, true, false});
    }
    /* Prepared states: constant weights (bf16 converted once; f32 read in place) and W, R as
     * graph inputs, each run twice on one state. */
    for (int d = 0; d < 2; d++) {
        mixrt_dtype dt = dts[d];
        run_prepared_case(
            &(struct rcase){"LSTM", dt, 6, 4, 9, 17, 2, false, true, true, true, true, true, false, false}, PREP_CONST);
        run_prepared_case(
            &(struct rcase){"LSTM", dt, 5, 3, 16, 32, 1, true, true, false, false, false, false, true, false},
            PREP_INPUTS);
        run_prepared_case(
            &(struct rcase){"GRU", dt, 6, 2, 8, 24, 2, false, true, true, false, false, false, false, true},
            PREP_CONST);
        run_prepared_case(
            &(struct rcase){"GRU", dt, 7, 2, 12, 19, 1, false, true, true, false, false, true, false, false},
            PREP_INPUTS);
        run_prepared_case(
            &(struct rcase){"RNN", dt, 8, 3, 6, 21, 2, false, true, true, false, false, true, false, false},
            PREP_CONST);
        run_prepared_case(
            &(struct rcase){"RNN", dt, 5, 2, 20, 33, 1, true, true, false, false, false, false, false, false},
            PREP_INPUTS);
    }
    out_of_memory();
    refusals();
    printf("test_rnn_kernels: %d cases\n", g_cases);
    TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == 0, "no leak: %zu bytes", mixrt_context_bytes_in_use(kh_ctx));
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_rnn_kernels");
}
