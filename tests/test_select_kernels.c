/* test_select_kernels.c - the fast ArgMax / ArgMin / TopK / CumSum kernels (select.c) against the
 * reference kernels, element for element (indices and values exact), on random f32 rows with
 * planted ties, NaNs and signed zeros: lengths under and over a vector, tails off 16, many rows
 * (threads), trailing dims of 1, keepdims, select_last_index, largest / smallest; the AVX-512
 * scans and the scalar twins; and cases the fast kernels hand to the reference (an inner
 * axis, bf16) still answering as it does; TopK of a large k by the keys' bounded heap. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/select_impl.h"
#include "kernel_harness.h"
#include "testutil.h"

/* x: random in [-1, 1] quantized to 1/64 (ties), with NaNs / -0.0 / +0.0 planted per mode. */
static void fill(struct mixrt_tensor *t, int mode, unsigned seed) {
    tu_seed(seed);
    size_t n = mixrt_tensor_numel(t);
    for (size_t i = 0; i < n; i++) {
        double v = floor(tu_uniform(-64, 64)) / 64.0;
        if (mode == 1 && i % 97 == 13) v = NAN;
        if (mode == 2 && i % 5 == 0) v = (i % 10 == 0) ? -0.0 : 0.0;
        if (mode == 3 && i == n - 3) v = NAN; /* one NaN in a tail */
        mixrt_store_f64(t->data, t->dtype, i, v);
    }
}

/* Runs the node as the test set it up with the reference kernel and with kernel `name` (both
 * ISAs); every output must be identical. */
static void compare(const char *name, const char *desc, int n_out) {
    struct mixrt_tensor ref[2];
    memset(ref, 0, sizeof(ref));
    mixrt_status rs = kh_run();
    TU_CHECK(rs == MIXRT_STATUS_OK, "%s: reference: %s", desc, mixrt_context_last_error(kh_ctx));
    for (int o = 0; o < n_out && rs == MIXRT_STATUS_OK; o++) mixrt_tensor_copy(kh_ctx, &ref[o], &kh_out[o]);
    for (int o = 0; o < n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
    const struct mixrt_cpu_kernel *k = mixrt_cpu_kernel_find(name, "", kh_N->op_type);
    TU_CHECK(k != NULL, "%s: kernel %s exists", desc, name);
    for (int scalar = 0; k && scalar < 2; scalar++) {
        mixrt_select_force_scalar(scalar != 0);
        mixrt_status fs = kh_run_kernel(k->run, NULL);
        TU_CHECK(fs == MIXRT_STATUS_OK, "%s (%s): %s", desc, scalar ? "scalar" : "avx512",
                 mixrt_context_last_error(kh_ctx));
        for (int o = 0; o < n_out && fs == MIXRT_STATUS_OK && rs == MIXRT_STATUS_OK; o++) {
            const struct mixrt_tensor *a = &ref[o], *b = &kh_out[o];
            bool same = a->dtype == b->dtype && a->rank == b->rank && a->nbytes == b->nbytes;
            for (int d = 0; same && d < a->rank; d++) same = a->dims[d] == b->dims[d];
            /* bytes: NaN values copied from x, -0.0 vs 0.0 told apart */
            TU_CHECK(same && !memcmp(a->data, b->data, a->nbytes), "%s (%s): output %d differs from the reference",
                     desc, scalar ? "scalar" : "avx512", o);
        }
        for (int o = 0; o < n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
    }
    mixrt_select_force_scalar(false);
    for (int o = 0; o < n_out; o++) mixrt_tensor_release(kh_ctx, &ref[o]);
}

static void test_arg(void) {
    static const struct {
        int rank;
        int64_t dims[3];
        int axis;
    } shapes[] = {
        {2, {3, 50}, 1},    {2, {7, 1000}, -1}, {2, {128, 5003}, 1}, {3, {4, 333, 1}, 1},
        {1, {17}, 0},       {2, {2, 16}, 1},    {2, {5, 8}, 0}, /* inner axis: the reference */
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int op = 0; op < 2; op++)
            for (int mode = 0; mode < 4; mode++)
                for (int last = 0; last < 2; last++) {
                    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, shapes[s].rank, shapes[s].dims, NULL);
                    fill(&x, mode, (unsigned)(s * 131 + (size_t)mode * 7 + (size_t)last));
                    kh_begin(op ? "ArgMin" : "ArgMax", 13, 1, 1);
                    kh_attr_int("axis", shapes[s].axis);
                    kh_attr_int("keepdims", last ? 0 : 1);
                    kh_attr_int("select_last_index", last);
                    kh_in[0] = &x;
                    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
                    char desc[128];
                    snprintf(desc, sizeof desc, "%s rank %d axis %d mode %d last %d", op ? "ArgMin" : "ArgMax",
                             shapes[s].rank, shapes[s].axis, mode, last);
                    compare(op ? "sel_argmin" : "sel_argmax", desc, 1);
                    kh_end();
                    mixrt_tensor_release(kh_ctx, &x);
                }
}

static void test_topk(void) {
    static const struct {
        int rank;
        int64_t dims[3];
        int axis;
        int64_t k;
    } cases[] = {
        {2, {3, 200}, 1, 5},     {2, {64, 5003}, -1, 5}, {2, {2, 50257}, 1, 10}, {3, {6, 321, 1}, 1, 3},
        {2, {4, 100}, 1, 1},
        /* k * 16 >= len: the keys' bounded heap (a detection head's 300 of 3234; k = len; short rows;
         * one element) */
        {2, {3, 40}, 1, 8},      {2, {5, 3234}, 1, 300}, {2, {3, 17}, 1, 17}, {2, {2, 1000}, 1, 999},
        {2, {7, 9}, -1, 4},      {1, {1}, 0, 1},         {3, {4, 2000, 1}, 1, 1000},
        {2, {9, 30}, 0, 2}, /* inner axis: the reference */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int largest = 0; largest < 2; largest++)
            for (int mode = 0; mode < 4; mode++) {
                struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, cases[c].rank, cases[c].dims, NULL);
                fill(&x, mode, (unsigned)(c * 977 + (size_t)mode * 3 + (size_t)largest));
                struct mixrt_tensor kt = kh_tensor_ints(MIXRT_DTYPE_I64, 1, (int64_t[]){1}, &cases[c].k);
                kh_begin("TopK", 11, 2, 2);
                kh_attr_int("axis", cases[c].axis);
                kh_attr_int("largest", largest);
                kh_in[0] = &x, kh_in[1] = &kt;
                kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
                char desc[128];
                snprintf(desc, sizeof desc, "TopK [%lld,%lld] axis %d k %lld %s mode %d", (long long)cases[c].dims[0],
                         (long long)cases[c].dims[1], cases[c].axis, (long long)cases[c].k,
                         largest ? "largest" : "smallest", mode);
                compare("sel_topk", desc, 2);
                kh_end();
                mixrt_tensor_release(kh_ctx, &x);
                mixrt_tensor_release(kh_ctx, &kt);
            }
}

/* CumSum along every axis of 2-D and 3-D tensors (rows of the last axis 8 at a time and the
 * odd rows after them; inner columns side by side), exclusive / reverse, NaNs and signed
 * zeros, an axis given negative. */
static void test_cumsum(void) {
    static const struct {
        int rank;
        int64_t dims[3];
        int64_t axis;
    } cases[] = {
        {2, {64, 4096}, 1}, {2, {13, 77}, -1}, {2, {13, 77}, 0}, {3, {3, 50, 9}, 1},
        {3, {5, 4, 300}, 2}, {3, {5, 4, 30}, -3}, {1, {1000}, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int flags = 0; flags < 4; flags++)
            for (int mode = 0; mode < 3; mode++) {
                struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, cases[c].rank, cases[c].dims, NULL);
                fill(&x, mode, (unsigned)(c * 31 + (size_t)flags * 5 + (size_t)mode));
                struct mixrt_tensor at = kh_tensor_ints(MIXRT_DTYPE_I64, 0, NULL, &cases[c].axis);
                kh_begin("CumSum", 14, 2, 1);
                kh_attr_int("exclusive", flags & 1);
                kh_attr_int("reverse", (flags >> 1) & 1);
                kh_in[0] = &x, kh_in[1] = &at;
                kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
                char desc[128];
                snprintf(desc, sizeof desc, "CumSum rank %d axis %lld exclusive %d reverse %d mode %d", cases[c].rank,
                         (long long)cases[c].axis, flags & 1, (flags >> 1) & 1, mode);
                compare("sel_cumsum", desc, 1);
                kh_end();
                mixrt_tensor_release(kh_ctx, &x);
                mixrt_tensor_release(kh_ctx, &at);
            }
}

/* The kernels take f32 only: a bf16 graph is refused by supports (it runs the reference). */
static void test_supports(void) {
    kh_begin("ArgMax", 13, 1, 1);
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_BF16;
    const struct mixrt_cpu_kernel *k = mixrt_cpu_kernel_find("sel_argmax", "", "ArgMax");
    char why[64] = "";
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof why) && why[0], "bf16 ArgMax refused (%s)", why);
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
    TU_CHECK(k && k->supports(kh_G, kh_N, why, sizeof why), "f32 ArgMax taken");
    kh_end();
}

int main(void) {
    TU_CHECK(kh_ctx_create(0, &kh_ctx) == MIXRT_STATUS_OK, "context");
    test_arg();
    test_topk();
    test_cumsum();
    test_supports();
    TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == 0, "no leak: %zu bytes", mixrt_context_bytes_in_use(kh_ctx));
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_select_kernels");
}
