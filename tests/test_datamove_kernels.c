/* test_datamove_kernels.c - the dm_* kernel candidates (datamove.c) against the reference
 * kernels: Transpose, TransposeCast, Gather, Concat, Split, Slice, Expand, Tile, Where, Pad, Resize,
 * ScatterND, GatherND and NonZero on
 * random bits of every element size (1, 2, 4, 8 bytes), odd and tile-edge sizes, zero-size
 * dims, rank 0/1, identity perms, negative indices/axes/steps; each on the AVX-512 tiles and
 * the scalar twins, single-threaded and split over threads. Outputs must be bit-identical
 * (Resize linear too: it sums in f64 in the reference's order; a NaN matches any NaN). Errors must match the
 * reference's status; supports() refusals are checked.
 * Usage: test_datamove_kernels [--only CASE]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/datamove_impl.h"
#include "backend/cpu/kernels.h"
#include "kernel_harness.h"
#include "testutil.h"

static int g_case, g_only = -1, g_cases_run;
static char g_argv0[256];
static struct mixrt_tensor g_in[KH_MAX_IO];
static int g_nin;

static const mixrt_dtype dts[4] = {MIXRT_DTYPE_U8, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32, MIXRT_DTYPE_I64};

/* Input i: dt of the given dims, random bits (bool: 0/1). */
static void in_rand(int i, mixrt_dtype dt, int rank, const int64_t *dims) {
    g_in[i] = kh_tensor(dt, rank, dims, NULL);
    uint8_t *p = g_in[i].data;
    for (size_t j = 0; j < g_in[i].nbytes; j++) p[j] = (uint8_t)(tu_rand() >> 13);
    if (dt == MIXRT_DTYPE_BOOL)
        for (size_t j = 0; j < g_in[i].nbytes; j++) p[j] &= 1;
    if (i + 1 > g_nin) g_nin = i + 1;
}

static void in_ints(int i, mixrt_dtype dt, int rank, const int64_t *dims, const int64_t *v) {
    g_in[i] = kh_tensor_ints(dt, rank, dims, v);
    if (i + 1 > g_nin) g_nin = i + 1;
}

static void in_list(int i, size_t n, const int64_t *v) { in_ints(i, MIXRT_DTYPE_I64, 1, (int64_t[]){(int64_t)n}, v); }

static bool begin(const char *op, int opset, int n_in, int n_out) {
    int id = g_case++;
    g_nin = 0;
    memset(g_in, 0, sizeof(g_in));
    if (g_only >= 0 && id != g_only) return false;
    kh_begin(op, opset, n_in, n_out);
    return true;
}

static const struct mixrt_cpu_kernel *kernel_for(const char *op) {
    if (!strcmp(op, "TransposeCast")) return mixrt_cpu_kernel_find("dm_transpose_cast", MIXRT_DOMAIN, op);
    char name[64];
    snprintf(name, sizeof(name), "dm_%s", op);
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return mixrt_cpu_kernel_find(name, "", op);
}

/* Runs the current node on g_in with the reference and the fast kernel in four modes and
 * compares; expect != OK: both must fail with it. Releases everything. */
static void finish(const char *desc, mixrt_status expect) {
    int id = g_case - 1;
    g_cases_run++;
    const char *op = kh_N->op_type;
    const struct mixrt_cpu_kernel *kern = kernel_for(op);
    TU_CHECK(kern != NULL, "case %d: no dm kernel for %s", id, op);
    for (int i = 0; i < g_nin; i++) {
        if (!g_in[i].dtype) {
            kh_N->inputs[i] = -1;
            continue;
        }
        struct mixrt_value *v = &kh_G->values[kh_N->inputs[i]];
        v->dtype = g_in[i].dtype;
        v->rank = g_in[i].rank;
        for (int j = 0; j < g_in[i].rank; j++) v->dims[j].value = g_in[i].dims[j];
        kh_in[i] = &g_in[i];
        /* the inputs that shape the result are constants, as supports() requires (the case
         * owns the tensors: init is cleared before the graph goes) */
        if (i >= 1 && strcmp(op, "Gather") && strcmp(op, "GatherND") && strcmp(op, "Concat") && strcmp(op, "Where") && strcmp(op, "And") &&
            strcmp(op, "Or") && strcmp(op, "Xor")) {
            v->init = &g_in[i];
            v->flags |= MIXRT_VALUE_INITIALIZER;
        }
    }
    char why[256] = "";
    if (kern) {
        bool sup = kern->supports(kh_G, kh_N, why, sizeof(why));
        TU_CHECK(sup, "case %d %s %s: supports() refused: %s; rerun: %s --only %d", id, op, desc, why, g_argv0, id);
    }
    struct mixrt_tensor ref[KH_MAX_IO];
    memset(ref, 0, sizeof(ref));
    mixrt_status rst = kh_run();
    if (expect != MIXRT_STATUS_OK)
        TU_CHECK(rst == expect, "case %d %s %s: reference gave %s, test expects %s", id, op, desc,
                 mixrt_status_string(rst), mixrt_status_string(expect));
    for (int o = 0; o < kh_n_out; o++) {
        if (rst == MIXRT_STATUS_OK) mixrt_tensor_copy(kh_ctx, &ref[o], &kh_out[o]);
        mixrt_tensor_release(kh_ctx, &kh_out[o]);
    }
    for (int mode = 0; kern && mode < 4; mode++) {
        bool scalar = mode & 1, par = mode & 2;
        if (!scalar && !mixrt_dm_has_avx512()) continue;
        mixrt_dm_force_scalar(scalar);
        mixrt_dm_set_parallel_bytes(par ? 1 : SIZE_MAX);
        const char *mname = scalar ? (par ? "scalar/threads" : "scalar") : (par ? "avx512/threads" : "avx512");
        mixrt_status st = kh_run_kernel(kern->run, NULL);
        if (expect != MIXRT_STATUS_OK || rst != MIXRT_STATUS_OK) {
            TU_CHECK(st == rst, "case %d %s %s [%s]: reference %s, dm %s (%s); rerun: %s --only %d", id, op, desc, mname,
                     mixrt_status_string(rst), mixrt_status_string(st), mixrt_context_last_error(kh_ctx), g_argv0, id);
            if (st != MIXRT_STATUS_OK)
                TU_CHECK(strstr(mixrt_context_last_error(kh_ctx), "'n0'") != NULL,
                         "case %d %s %s [%s]: message does not name the node: %s", id, op, desc, mname,
                         mixrt_context_last_error(kh_ctx));
        } else {
            TU_CHECK(st == MIXRT_STATUS_OK, "case %d %s %s [%s]: dm failed: %s; rerun: %s --only %d", id, op, desc, mname,
                     mixrt_context_last_error(kh_ctx), g_argv0, id);
            for (int o = 0; st == MIXRT_STATUS_OK && o < kh_n_out; o++) {
                const struct mixrt_tensor *y = &kh_out[o], *r = &ref[o];
                bool same = y->dtype == r->dtype && y->rank == r->rank && y->nbytes == r->nbytes &&
                            !memcmp(y->dims, r->dims, sizeof(int64_t) * (size_t)r->rank);
                char d1[128], d2[128];
                TU_CHECK(same, "case %d %s %s [%s]: output #%d is %s, reference %s; rerun: %s --only %d", id, op, desc,
                         mname, o, mixrt_tensor_desc(d1, sizeof(d1), y), mixrt_tensor_desc(d2, sizeof(d2), r), g_argv0,
                         id);
                if (same && r->nbytes) {
                    /* Bit for bit, but a NaN matches any NaN: which payload a sum of two NaNs keeps
                     * depends on the compiler's operand order (Resize's f16 taps differed so
                     * between the release and the sanitizer builds). */
                    size_t es = mixrt_dtype_size(r->dtype), n = r->nbytes / es, bad = 0;
                    bool fl = mixrt_dtype_is_float(r->dtype);
                    for (; bad < n; bad++) {
                        if (!memcmp((const uint8_t *)y->data + bad * es, (const uint8_t *)r->data + bad * es, es)) continue;
                        if (fl && isnan(mixrt_load_f64(y->data, y->dtype, bad)) && isnan(mixrt_load_f64(r->data, r->dtype, bad)))
                            continue;
                        break;
                    }
                    TU_CHECK(bad == n, "case %d %s %s [%s]: output #%d differs first at element %zu; rerun: %s --only %d",
                             id, op, desc, mname, o, bad, g_argv0, id);
                }
            }
        }
        for (int o = 0; o < kh_n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
    }
    mixrt_dm_force_scalar(false);
    mixrt_dm_set_parallel_bytes(0);
    for (int i = 1; i < g_nin; i++)
        if (g_in[i].dtype) kh_G->values[kh_N->inputs[i]].init = NULL;
    kh_end();
    for (int o = 0; o < KH_MAX_IO; o++) mixrt_tensor_release(kh_ctx, &ref[o]);
    for (int i = 0; i < g_nin; i++) mixrt_tensor_release(kh_ctx, &g_in[i]);
}

static const char *dims_desc(char *buf, size_t size, mixrt_dtype dt, int rank, const int64_t *d, const char *extra) {
    char s[128];
    snprintf(buf, size, "%s %s %s", mixrt_dtype_name(dt), mixrt_dims_str(s, sizeof(s), rank, d), extra ? extra : "");
    return buf;
}

/* ---- Transpose --------------------------------------------------------------------------- */

static void transpose_case(mixrt_dtype dt, int rank, const int64_t *dims, const int64_t *perm) {
    if (!begin("Transpose", 13, 1, 1)) return;
    char desc[256], p[128] = "perm=default";
    if (perm) mixrt_dims_str(p, sizeof(p), rank, perm);
    if (perm) kh_attr_ints("perm", (int64_t *)perm, (size_t)rank);
    in_rand(0, dt, rank, dims);
    finish(dims_desc(desc, sizeof(desc), dt, rank, dims, p), MIXRT_STATUS_OK);
}

/* ---- TransposeCast (com.mixrt): a Transpose and the Cast after it in one pass ---------------- */

/* Random bits in (NaN, infinities, subnormals, ties included) for the bit moves and the rounding;
 * the reference is the ONNX Transpose followed by mixrt_convert. */
static void tcast_case(mixrt_dtype dt, mixrt_dtype to, int rank, const int64_t *dims, const int64_t *perm) {
    if (!begin("TransposeCast", 1, 1, 1)) return;
    kh_N->domain = MIXRT_DOMAIN;
    char desc[256], p[128] = "perm=default", extra[200];
    if (perm) mixrt_dims_str(p, sizeof(p), rank, perm);
    if (perm) kh_attr_ints("perm", (int64_t *)perm, (size_t)rank);
    kh_attr_int("to", (int64_t)to);
    kh_G->values[kh_N->outputs[0]].dtype = to;
    in_rand(0, dt, rank, dims);
    snprintf(extra, sizeof(extra), "%s to %s", p, mixrt_dtype_name(to));
    finish(dims_desc(desc, sizeof(desc), dt, rank, dims, extra), MIXRT_STATUS_OK);
}

static void tcast_cases(void) {
    /* the image path (f32 NCHW of 1-8 channels to bf16 NHWC): pixel counts around 16, a ragged
     * last vector, two images; 9 channels and the other pairs take the scratch path */
    for (int64_t c = 1; c <= 9; c++) tcast_case(MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 4, (int64_t[]){2, c, 13, 21 + c},
                                                 (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 4, (int64_t[]){1, 3, 224, 224}, (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 4, (int64_t[]){1, 4, 4, 4}, (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 4, (int64_t[]){1, 3, 1, 15}, (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 4, (int64_t[]){0, 3, 8, 8}, (int64_t[]){0, 2, 3, 1});
    /* the f16 image path (an f16 model's), the same shapes */
    for (int64_t c = 1; c <= 9; c++) tcast_case(MIXRT_DTYPE_F16, MIXRT_DTYPE_BF16, 4, (int64_t[]){2, c, 13, 21 + c},
                                                 (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_F16, MIXRT_DTYPE_BF16, 4, (int64_t[]){1, 3, 224, 224}, (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_F32, MIXRT_DTYPE_F16, 4, (int64_t[]){1, 3, 67, 61}, (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32, 4, (int64_t[]){2, 3, 17, 19}, (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_F16, MIXRT_DTYPE_BF16, 4, (int64_t[]){1, 64, 12, 20}, (int64_t[]){0, 2, 3, 1});
    tcast_case(MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 4, (int64_t[]){1, 128, 12, 64}, (int64_t[]){0, 2, 1, 3});
    tcast_case(MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 3, (int64_t[]){3, 17, 129}, NULL);
    tcast_case(MIXRT_DTYPE_F64, MIXRT_DTYPE_F32, 2, (int64_t[]){33, 47}, (int64_t[]){1, 0});
}

static void transpose_cases(void) {
    for (int t = 0; t < 4; t++) {
        mixrt_dtype dt = dts[t];
        transpose_case(dt, 4, (int64_t[]){1, 128, 12, 64}, (int64_t[]){0, 2, 1, 3});
        transpose_case(dt, 4, (int64_t[]){1, 128, 12, 64}, (int64_t[]){0, 2, 3, 1});
        transpose_case(dt, 4, (int64_t[]){2, 12, 128, 64}, (int64_t[]){0, 2, 1, 3});
        static const int64_t perms3[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
        for (int p = 0; p < 6; p++) transpose_case(dt, 3, (int64_t[]){3, 17, 129}, perms3[p]);
        for (int p = 0; p < 6; p++) transpose_case(dt, 3, (int64_t[]){33, 1, 47}, perms3[p]);
        static const int64_t sq[][2] = {{16, 16}, {17, 33}, {129, 65}, {32, 48}, {1, 7}, {7, 1}, {3, 200}, {256, 16}};
        for (size_t s = 0; s < sizeof(sq) / sizeof(sq[0]); s++) transpose_case(dt, 2, sq[s], (int64_t[]){1, 0});
        transpose_case(dt, 1, (int64_t[]){5}, (int64_t[]){0});
        transpose_case(dt, 0, NULL, NULL);
        transpose_case(dt, 3, (int64_t[]){2, 3, 4}, (int64_t[]){0, 1, 2});
        transpose_case(dt, 3, (int64_t[]){0, 3, 5}, (int64_t[]){2, 0, 1});
        transpose_case(dt, 3, (int64_t[]){4, 3, 0}, (int64_t[]){2, 0, 1});
        transpose_case(dt, 4, (int64_t[]){2, 3, 4, 5}, NULL);
        transpose_case(dt, 8, (int64_t[]){2, 1, 3, 2, 1, 2, 3, 2}, (int64_t[]){7, 0, 5, 3, 1, 6, 2, 4});
        transpose_case(dt, 4, (int64_t[]){2, 17, 3, 19}, (int64_t[]){3, 1, 0, 2});
        transpose_case(dt, 4, (int64_t[]){1, 64, 56, 56}, (int64_t[]){0, 2, 3, 1}); /* NCHW -> NHWC */
        transpose_case(dt, 4, (int64_t[]){1, 56, 56, 64}, (int64_t[]){0, 3, 1, 2}); /* NHWC -> NCHW */
        /* a few planes packed (an image's channels to NHWC): 2-8 rows, widths around 16 */
        for (int64_t c = 2; c <= 9; c++)
            transpose_case(dt, 4, (int64_t[]){2, c, 13, 21 + c}, (int64_t[]){0, 2, 3, 1});
        transpose_case(dt, 4, (int64_t[]){1, 3, 224, 224}, (int64_t[]){0, 2, 3, 1});
        /* blocks of 2048 pixels: a block and a ragged one; large enough to split over threads */
        transpose_case(dt, 4, (int64_t[]){1, 3, 67, 61}, (int64_t[]){0, 2, 3, 1});
        transpose_case(dt, 4, (int64_t[]){2, 3, 331, 641}, (int64_t[]){0, 2, 3, 1});
        transpose_case(dt, 3, (int64_t[]){3, 16, 1}, (int64_t[]){1, 2, 0});
    }
    /* random ranks 1..6, dims 1..6, random perms */
    tu_seed(0x7a5u);
    for (int c = 0; c < 60; c++) {
        int r = 1 + (int)(tu_rand() % 6);
        int64_t d[6], p[6];
        for (int i = 0; i < r; i++) d[i] = 1 + (int64_t)(tu_rand() % 6), p[i] = i;
        for (int i = r - 1; i > 0; i--) {
            int j = (int)(tu_rand() % (uint64_t)(i + 1));
            int64_t tmp = p[i];
            p[i] = p[j], p[j] = tmp;
        }
        transpose_case(dts[c % 4], r, d, p);
    }
    /* an invalid perm: both fail the same way */
    if (begin("Transpose", 13, 1, 1)) {
        kh_attr_ints("perm", (int64_t[]){0, 0}, 2);
        in_rand(0, MIXRT_DTYPE_F32, 2, (int64_t[]){2, 3});
        finish("perm [0,0]", MIXRT_STATUS_INVALID_MODEL);
    }
}

/* ---- DepthToSpace ------------------------------------------------------------------------ */

static void d2s_case(mixrt_dtype dt, const int64_t *dims, int64_t b, const char *mode, mixrt_status expect) {
    if (!begin("DepthToSpace", 13, 1, 1)) return;
    char desc[256], p[64];
    kh_attr_int("blocksize", b);
    if (mode) kh_attr_str("mode", mode);
    snprintf(p, sizeof(p), "blocksize=%lld mode=%s", (long long)b, mode ? mode : "default");
    in_rand(0, dt, 4, dims);
    finish(dims_desc(desc, sizeof(desc), dt, 4, dims, p), expect);
}

/* Both modes (CRD; DCR, the default and the ConvTranspose rewrite's), blocks 1-4, odd planes, one
 * pixel, zero-size dims; channels not divisible by b^2 fail as the reference does. */
static void d2s_cases(void) {
    static const char *const modes[] = {"CRD", "DCR", NULL};
    for (int t = 0; t < 4; t++)
        for (int m = 0; m < 3; m++) {
            mixrt_dtype dt = dts[t];
            d2s_case(dt, (int64_t[]){2, 16, 7, 9}, 2, modes[m], MIXRT_STATUS_OK);
            d2s_case(dt, (int64_t[]){1, 1024, 14, 14}, 2, modes[m], MIXRT_STATUS_OK); /* a mask head's 2x2 */
            d2s_case(dt, (int64_t[]){3, 27, 5, 1}, 3, modes[m], MIXRT_STATUS_OK);
            d2s_case(dt, (int64_t[]){1, 32, 1, 1}, 4, modes[m], MIXRT_STATUS_OK);
            d2s_case(dt, (int64_t[]){2, 5, 3, 4}, 1, modes[m], MIXRT_STATUS_OK);
            d2s_case(dt, (int64_t[]){0, 8, 3, 4}, 2, modes[m], MIXRT_STATUS_OK);
            d2s_case(dt, (int64_t[]){1, 8, 0, 4}, 2, modes[m], MIXRT_STATUS_OK);
            d2s_case(dt, (int64_t[]){1, 6, 3, 4}, 2, modes[m], MIXRT_STATUS_INVALID_MODEL);
        }
}

/* ---- ScatterND ---------------------------------------------------------------------------- */

static void scatter_nd_case(mixrt_dtype dt, int rank, const int64_t *dims, int irank, const int64_t *idims,
                            const int64_t *iv, int urank, const int64_t *udims, mixrt_status expect) {
    if (!begin("ScatterND", 16, 3, 1)) return;
    char desc[256], ex[96], s[64];
    snprintf(ex, sizeof(ex), "indices %s", mixrt_dims_str(s, sizeof(s), irank, idims));
    in_rand(0, dt, rank, dims);
    in_ints(1, MIXRT_DTYPE_I64, irank, idims, iv);
    in_rand(2, dt, urank, udims);
    finish(dims_desc(desc, sizeof(desc), dt, rank, dims, ex), expect);
}

/* Rows (the MultiScaleRoIAlign rewrite's [k, 1] indices, negative ones too), slices of a 2-index
 * prefix, single elements, batched index rows, no rows; an index out of range and updates of
 * the wrong shape fail as the reference does. */
static void scatter_nd_cases(void) {
    for (int t = 0; t < 4; t++) {
        mixrt_dtype dt = dts[t];
        scatter_nd_case(dt, 4, (int64_t[]){6, 3, 2, 2}, 2, (int64_t[]){4, 1}, (int64_t[]){4, 0, -1, 2}, 4,
                        (int64_t[]){4, 3, 2, 2}, MIXRT_STATUS_OK);
        scatter_nd_case(dt, 3, (int64_t[]){5, 4, 3}, 2, (int64_t[]){3, 2}, (int64_t[]){0, 3, 4, -4, 2, 1}, 2,
                        (int64_t[]){3, 3}, MIXRT_STATUS_OK);
        scatter_nd_case(dt, 2, (int64_t[]){4, 5}, 2, (int64_t[]){2, 2}, (int64_t[]){3, 4, 0, 0}, 1, (int64_t[]){2},
                        MIXRT_STATUS_OK);
        scatter_nd_case(dt, 2, (int64_t[]){5, 3}, 3, (int64_t[]){2, 2, 1}, (int64_t[]){1, 4, 0, 2}, 3,
                        (int64_t[]){2, 2, 3}, MIXRT_STATUS_OK);
        scatter_nd_case(dt, 4, (int64_t[]){6, 3, 2, 2}, 2, (int64_t[]){0, 1}, NULL, 4, (int64_t[]){0, 3, 2, 2},
                        MIXRT_STATUS_OK);
        scatter_nd_case(dt, 2, (int64_t[]){4, 5}, 2, (int64_t[]){2, 1}, (int64_t[]){1, 4}, 2, (int64_t[]){2, 5},
                        MIXRT_STATUS_INVALID_MODEL);
        scatter_nd_case(dt, 2, (int64_t[]){4, 5}, 2, (int64_t[]){2, 1}, (int64_t[]){1, 2}, 2, (int64_t[]){2, 4},
                        MIXRT_STATUS_INVALID_MODEL);
    }
}

/* ---- GatherND, NonZero --------------------------------------------------------------------- */

static void gather_nd_case(mixrt_dtype dt, int rank, const int64_t *dims, int irank, const int64_t *idims,
                           const int64_t *iv, int64_t batch_dims, mixrt_status expect) {
    if (!begin("GatherND", 13, 2, 1)) return;
    char desc[256], ex[96], s[64];
    snprintf(ex, sizeof(ex), "indices %s batch_dims %lld", mixrt_dims_str(s, sizeof(s), irank, idims),
             (long long)batch_dims);
    if (batch_dims) kh_attr_int("batch_dims", batch_dims);
    in_rand(0, dt, rank, dims);
    in_ints(1, MIXRT_DTYPE_I64, irank, idims, iv);
    finish(dims_desc(desc, sizeof(desc), dt, rank, dims, ex), expect);
}

/* A detection head's [k, 1] rows of a score vector, 2-index slices, whole-tuple scalars (negative
 * indices), batch_dims 1 and 2, no index rows; an index out of range and a tuple longer than the
 * data's rank fail as the reference does. */
static void gather_nd_cases(void) {
    static const int64_t rows[5] = {0, 3233, 17, -1, 2000};
    for (int t = 0; t < 4; t++) {
        mixrt_dtype dt = dts[t];
        gather_nd_case(dt, 1, (int64_t[]){3234}, 2, (int64_t[]){5, 1}, rows, 0, MIXRT_STATUS_OK);
        gather_nd_case(dt, 3, (int64_t[]){5, 4, 3}, 2, (int64_t[]){3, 2}, (int64_t[]){0, 3, 4, -4, 2, 1}, 0,
                       MIXRT_STATUS_OK);
        gather_nd_case(dt, 2, (int64_t[]){4, 5}, 3, (int64_t[]){2, 2, 2}, (int64_t[]){3, 4, 0, 0, -1, -5, 2, 2}, 0,
                       MIXRT_STATUS_OK);
        gather_nd_case(dt, 3, (int64_t[]){2, 3, 4}, 3, (int64_t[]){2, 2, 1}, (int64_t[]){2, 0, 1, -3}, 1,
                       MIXRT_STATUS_OK);
        gather_nd_case(dt, 4, (int64_t[]){2, 3, 4, 5}, 4, (int64_t[]){2, 3, 3, 1}, (int64_t[]){0, 1, 2, 3, 0, 1, 2, 3, 0,
                       1, 2, 3, 3, 2, 1, 0, -1, -2}, 2, MIXRT_STATUS_OK);
        gather_nd_case(dt, 2, (int64_t[]){4, 5}, 2, (int64_t[]){0, 1}, NULL, 0, MIXRT_STATUS_OK);
        gather_nd_case(dt, 2, (int64_t[]){4, 5}, 2, (int64_t[]){2, 1}, (int64_t[]){1, 4}, 0, MIXRT_STATUS_INVALID_MODEL);
        gather_nd_case(dt, 2, (int64_t[]){4, 5}, 2, (int64_t[]){1, 3}, (int64_t[]){1, 2, 0}, 0,
                       MIXRT_STATUS_INVALID_MODEL);
    }
}

static void nonzero_case(mixrt_dtype dt, int rank, const int64_t *dims, int plant) {
    if (!begin("NonZero", 13, 1, 1)) return;
    char desc[256];
    in_rand(0, dt, rank, dims);
    /* plant: zeros (and -0, NaN for floats) over a third of the elements, so rows hold both */
    size_t n = mixrt_tensor_numel(&g_in[0]);
    for (size_t i = 0; plant && i < n; i++) {
        if (i % 3 == 0) mixrt_store_f64(g_in[0].data, dt, i, 0.0);
        if (mixrt_dtype_is_float(dt) && i % 7 == 1) mixrt_store_f64(g_in[0].data, dt, i, -0.0);
        if (mixrt_dtype_is_float(dt) && i % 11 == 2) mixrt_store_f64(g_in[0].data, dt, i, NAN);
    }
    finish(dims_desc(desc, sizeof(desc), dt, rank, dims, plant ? "planted zeros" : "random bits"), MIXRT_STATUS_OK);
}

/* Every element size, bool, ranks 0-4, an empty tensor, all zeros, rows of 1. */
static void nonzero_cases(void) {
    const mixrt_dtype more[2] = {MIXRT_DTYPE_BOOL, MIXRT_DTYPE_F64};
    for (int t = 0; t < 6; t++) {
        mixrt_dtype dt = t < 4 ? dts[t] : more[t - 4];
        nonzero_case(dt, 1, (int64_t[]){3234}, 1);
        nonzero_case(dt, 3, (int64_t[]){4, 5, 7}, 1);
        nonzero_case(dt, 4, (int64_t[]){2, 3, 1, 9}, 0);
        nonzero_case(dt, 2, (int64_t[]){17, 1}, 1);
        nonzero_case(dt, 0, NULL, 0);
        nonzero_case(dt, 2, (int64_t[]){3, 0}, 0);
    }
    if (begin("NonZero", 13, 1, 1)) { /* all zeros: a [2, 0] output */
        g_in[0] = kh_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){6, 6}, NULL);
        g_nin = 1;
        finish("f32 [6,6] zeros", MIXRT_STATUS_OK);
    }
}

/* ---- Gather ------------------------------------------------------------------------------- */

static void gather_case(mixrt_dtype dt, int rank, const int64_t *dims, int64_t axis, mixrt_dtype it, int irank,
                        const int64_t *idims, const int64_t *iv, mixrt_status expect) {
    if (!begin("Gather", 13, 2, 1)) return;
    char desc[256], ex[64];
    snprintf(ex, sizeof(ex), "axis=%lld %s indices", (long long)axis, mixrt_dtype_name(it));
    kh_attr_int("axis", axis);
    in_rand(0, dt, rank, dims);
    in_ints(1, it, irank, idims, iv);
    finish(dims_desc(desc, sizeof(desc), dt, rank, dims, ex), expect);
}

static void gather_cases(void) {
    for (int t = 0; t < 4; t++) {
        mixrt_dtype dt = dts[t];
        for (int ii = 0; ii < 2; ii++) {
            mixrt_dtype it = ii ? MIXRT_DTYPE_I32 : MIXRT_DTYPE_I64;
            int64_t iv[12] = {0, 29, -1, -30, 5, 5, 17, 3, 28, -2, 1, 0};
            gather_case(dt, 2, (int64_t[]){30, 17}, 0, it, 2, (int64_t[]){4, 3}, iv, MIXRT_STATUS_OK);
            gather_case(dt, 2, (int64_t[]){30, 129}, 0, it, 1, (int64_t[]){12}, iv, MIXRT_STATUS_OK);
            gather_case(dt, 3, (int64_t[]){3, 30, 5}, 1, it, 1, (int64_t[]){12}, iv, MIXRT_STATUS_OK);
            gather_case(dt, 2, (int64_t[]){5, 30}, -1, it, 2, (int64_t[]){3, 4}, iv, MIXRT_STATUS_OK);
            gather_case(dt, 3, (int64_t[]){30, 2, 3}, 0, it, 0, NULL, (int64_t[]){-7}, MIXRT_STATUS_OK);
            gather_case(dt, 2, (int64_t[]){30, 17}, 0, it, 1, (int64_t[]){0}, NULL, MIXRT_STATUS_OK);
            gather_case(dt, 2, (int64_t[]){30, 0}, 0, it, 1, (int64_t[]){3}, iv, MIXRT_STATUS_OK);
            gather_case(dt, 1, (int64_t[]){30}, 0, it, 1, (int64_t[]){12}, iv, MIXRT_STATUS_OK);
            /* out of range either way: a named error, not a crash */
            gather_case(dt, 2, (int64_t[]){30, 17}, 0, it, 1, (int64_t[]){3}, (int64_t[]){1, 30, 2},
                        MIXRT_STATUS_INVALID_MODEL);
            gather_case(dt, 2, (int64_t[]){30, 17}, 0, it, 1, (int64_t[]){2}, (int64_t[]){-31, 0},
                        MIXRT_STATUS_INVALID_MODEL);
            gather_case(dt, 2, (int64_t[]){0, 17}, 0, it, 1, (int64_t[]){1}, (int64_t[]){0}, MIXRT_STATUS_INVALID_MODEL);
        }
    }
    /* the error names the index tensor, the value and the range */
    if (begin("Gather", 13, 2, 1)) {
        in_rand(0, MIXRT_DTYPE_F32, 2, (int64_t[]){30, 17});
        in_ints(1, MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (int64_t[]){3, 99});
        const struct mixrt_cpu_kernel *kern = kernel_for("Gather");
        for (int i = 0; i < 2; i++) {
            struct mixrt_value *v = &kh_G->values[kh_N->inputs[i]];
            v->dtype = g_in[i].dtype;
            kh_in[i] = &g_in[i];
        }
        mixrt_status st = kern ? kh_run_kernel(kern->run, NULL) : MIXRT_STATUS_INTERNAL;
        const char *msg = mixrt_context_last_error(kh_ctx);
        TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL && strstr(msg, "index 99 at element 1 is out of range") &&
                     strstr(msg, "'x1'") && strstr(msg, "Gather") && strstr(msg, "'n0'"),
                 "Gather out-of-range message: %s (%s)", msg, mixrt_status_string(st));
        g_cases_run++;
        kh_end();
        for (int i = 0; i < 2; i++) mixrt_tensor_release(kh_ctx, &g_in[i]);
    }
}

/* ---- Concat, Split -------------------------------------------------------------------------- */

static void concat_cases(void) {
    for (int t = 0; t < 4; t++) {
        mixrt_dtype dt = dts[t];
        static const struct {
            int rank, n;
            int64_t axis;
            int64_t d[8][4];
        } cs[] = {
            /* channels-last channel concats of many inputs (DenseNet's per-layer joins): rows of
             * 1..64 channels, a row count that leaves a partial block, an empty input */
            {4, 6, -1, {{1, 7, 9, 64}, {1, 7, 9, 32}, {1, 7, 9, 32}, {1, 7, 9, 1}, {1, 7, 9, 17}, {1, 7, 9, 32}}},
            {4, 8, 3, {{1, 29, 31, 5}, {1, 29, 31, 3}, {1, 29, 31, 0}, {1, 29, 31, 40}, {1, 29, 31, 2},
                       {1, 29, 31, 96}, {1, 29, 31, 7}, {1, 29, 31, 160}}},
            {3, 4, 1, {{3, 2, 5}, {3, 1, 5}, {3, 4, 5}, {3, 1, 5}}},
            {3, 3, 1, {{2, 3, 4}, {2, 5, 4}, {2, 1, 4}}},    {3, 3, -1, {{2, 3, 4}, {2, 3, 17}, {2, 3, 1}}},
            {3, 2, 0, {{2, 3, 4}, {5, 3, 4}}},               {3, 3, 1, {{2, 3, 4}, {2, 0, 4}, {2, 2, 4}}},
            {1, 3, 0, {{1}, {129}, {3}}},                    {4, 2, 1, {{1, 64, 7, 7}, {1, 32, 7, 7}}},
            {2, 1, 0, {{3, 5}}},                             {2, 2, 1, {{0, 3}, {0, 4}}},
        };
        for (size_t c = 0; c < sizeof(cs) / sizeof(cs[0]); c++) {
            if (!begin("Concat", 13, cs[c].n, 1)) continue;
            char desc[256], ex[32];
            snprintf(ex, sizeof(ex), "x%d axis=%lld", cs[c].n, (long long)cs[c].axis);
            kh_attr_int("axis", cs[c].axis);
            for (int i = 0; i < cs[c].n; i++) in_rand(i, dt, cs[c].rank, cs[c].d[i]);
            finish(dims_desc(desc, sizeof(desc), dt, cs[c].rank, cs[c].d[0], ex), MIXRT_STATUS_OK);
        }
    }
    if (begin("Concat", 13, 2, 1)) { /* mismatched dims: the reference's error */
        kh_attr_int("axis", 0);
        in_rand(0, MIXRT_DTYPE_F32, 2, (int64_t[]){2, 3});
        in_rand(1, MIXRT_DTYPE_F32, 2, (int64_t[]){2, 4});
        finish("mismatch", MIXRT_STATUS_INVALID_MODEL);
    }
}

static void split_cases(void) {
    for (int t = 0; t < 4; t++) {
        mixrt_dtype dt = dts[t];
        char desc[256];
        if (begin("Split", 13, 2, 2)) { /* sizes as an input */
            kh_attr_int("axis", 1);
            in_rand(0, dt, 2, (int64_t[]){6, 10});
            in_list(1, 2, (int64_t[]){3, 7});
            finish(dims_desc(desc, sizeof(desc), dt, 2, (int64_t[]){6, 10}, "axis=1 split=[3,7]"), MIXRT_STATUS_OK);
        }
        if (begin("Split", 13, 1, 3)) { /* equal parts */
            in_rand(0, dt, 3, (int64_t[]){9, 2, 17});
            finish(dims_desc(desc, sizeof(desc), dt, 3, (int64_t[]){9, 2, 17}, "axis=0 equal"), MIXRT_STATUS_OK);
        }
        if (begin("Split", 18, 1, 3)) { /* num_outputs: ceil chunks */
            kh_attr_int("axis", -1);
            kh_attr_int("num_outputs", 3);
            in_rand(0, dt, 2, (int64_t[]){4, 7});
            finish(dims_desc(desc, sizeof(desc), dt, 2, (int64_t[]){4, 7}, "num_outputs=3"), MIXRT_STATUS_OK);
        }
        /* channels-last splits of a merged 1x1 conv's output (merge_conv: GoogLeNet 4a's 192, 96
         * and 16 channels; pieces of 1 to 300 bytes), one of many rows (several blocks: the
         * threads' path), one with an empty piece */
        static const struct {
            int64_t d[4], parts[3];
        } cl[] = {{{1, 7, 9, 304}, {192, 96, 16}}, {{2, 5, 3, 40}, {1, 32, 7}}, {{1, 56, 56, 176}, {64, 96, 16}},
                  {{1, 4, 4, 19}, {0, 17, 2}}};
        for (size_t c = 0; c < sizeof(cl) / sizeof(cl[0]); c++) {
            if (!begin("Split", 13, 2, 3)) continue;
            char ex[64];
            snprintf(ex, sizeof(ex), "axis=-1 split=[%lld,%lld,%lld]", (long long)cl[c].parts[0],
                     (long long)cl[c].parts[1], (long long)cl[c].parts[2]);
            kh_attr_int("axis", -1);
            in_rand(0, dt, 4, cl[c].d);
            in_list(1, 3, cl[c].parts);
            finish(dims_desc(desc, sizeof(desc), dt, 4, cl[c].d, ex), MIXRT_STATUS_OK);
        }
        if (begin("Split", 11, 1, 3)) { /* attribute, with a zero-size part */
            kh_attr_int("axis", 1);
            kh_attr_ints("split", (int64_t[]){2, 0, 127}, 3);
            in_rand(0, dt, 3, (int64_t[]){3, 129, 2});
            finish(dims_desc(desc, sizeof(desc), dt, 3, (int64_t[]){3, 129, 2}, "split=[2,0,127]"), MIXRT_STATUS_OK);
        }
    }
    if (begin("Split", 13, 2, 2)) {
        in_rand(0, MIXRT_DTYPE_F32, 1, (int64_t[]){6});
        in_list(1, 2, (int64_t[]){3, 4});
        finish("split sums to 7 of 6", MIXRT_STATUS_INVALID_MODEL);
    }
}

/* ---- Slice, Expand, Tile ------------------------------------------------------------------------ */

static void slice_case(mixrt_dtype dt, int rank, const int64_t *dims, size_t n, const int64_t *st, const int64_t *en,
                       const int64_t *ax, const int64_t *sp, mixrt_status expect) {
    if (!begin("Slice", 13, sp ? 5 : ax ? 4 : 3, 1)) return;
    char desc[256], ex[128], a[48], b[48];
    snprintf(ex, sizeof(ex), "starts=%s ends=%s%s", mixrt_dims_str(a, sizeof(a), (int)n, st),
             mixrt_dims_str(b, sizeof(b), (int)n, en), sp ? " steps" : "");
    in_rand(0, dt, rank, dims);
    in_list(1, n, st);
    in_list(2, n, en);
    if (ax) in_list(3, n, ax);
    if (sp) in_list(4, n, sp);
    finish(dims_desc(desc, sizeof(desc), dt, rank, dims, ex), expect);
}

static void slice_cases(void) {
    const int64_t big = INT64_MAX, small = INT64_MIN;
    for (int t = 0; t < 4; t++) {
        mixrt_dtype dt = dts[t];
        const int64_t d3[3] = {10, 17, 9};
        slice_case(dt, 3, d3, 2, (int64_t[]){1, 2}, (int64_t[]){8, 15}, NULL, NULL, MIXRT_STATUS_OK);
        slice_case(dt, 3, d3, 1, (int64_t[]){3}, (int64_t[]){-1}, (int64_t[]){-1}, NULL, MIXRT_STATUS_OK);
        slice_case(dt, 3, d3, 2, (int64_t[]){-1, 0}, (int64_t[]){small, big}, (int64_t[]){1, 2},
                   (int64_t[]){-1, 2}, MIXRT_STATUS_OK);
        slice_case(dt, 3, d3, 3, (int64_t[]){9, 16, 8}, (int64_t[]){small, small, small}, (int64_t[]){0, 1, 2},
                   (int64_t[]){-3, -5, -1}, MIXRT_STATUS_OK);
        slice_case(dt, 3, d3, 1, (int64_t[]){0}, (int64_t[]){big}, (int64_t[]){2}, (int64_t[]){3}, MIXRT_STATUS_OK);
        slice_case(dt, 3, d3, 1, (int64_t[]){5}, (int64_t[]){5}, (int64_t[]){0}, NULL, MIXRT_STATUS_OK);
        slice_case(dt, 2, (int64_t[]){1, 129}, 1, (int64_t[]){0}, (int64_t[]){64}, (int64_t[]){1}, NULL,
                   MIXRT_STATUS_OK);
        slice_case(dt, 1, (int64_t[]){17}, 1, (int64_t[]){-100}, (int64_t[]){100}, NULL, NULL, MIXRT_STATUS_OK);
        slice_case(dt, 2, (int64_t[]){0, 5}, 1, (int64_t[]){1}, (int64_t[]){3}, (int64_t[]){1}, NULL, MIXRT_STATUS_OK);
    }
    slice_case(MIXRT_DTYPE_F32, 1, (int64_t[]){17}, 1, (int64_t[]){0}, (int64_t[]){5}, (int64_t[]){0},
               (int64_t[]){0}, MIXRT_STATUS_INVALID_MODEL);
    slice_case(MIXRT_DTYPE_F32, 1, (int64_t[]){17}, 1, (int64_t[]){0}, (int64_t[]){5}, (int64_t[]){3}, NULL,
               MIXRT_STATUS_INVALID_MODEL);
}

static void expand_cases(void) {
    static const struct {
        int r, n;
        int64_t d[4], s[4];
    } es[] = {
        {2, 3, {3, 1}, {2, 3, 5}},   {1, 2, {1}, {4, 4}},         {1, 2, {17}, {3, 17}},     {3, 3, {2, 1, 3}, {2, 4, 3}},
        {0, 2, {0}, {3, 2}},         {2, 2, {1, 129}, {1, 1}},    {3, 4, {1, 1, 64}, {2, 1, 128, 64}},
        {2, 2, {0, 1}, {1, 5}},
    };
    for (int t = 0; t < 4; t++)
        for (size_t c = 0; c < sizeof(es) / sizeof(es[0]); c++) {
            if (!begin("Expand", 13, 2, 1)) continue;
            char desc[256], ex[64], s[48];
            snprintf(ex, sizeof(ex), "to %s", mixrt_dims_str(s, sizeof(s), es[c].n, es[c].s));
            in_rand(0, dts[t], es[c].r, es[c].d);
            in_list(1, (size_t)es[c].n, es[c].s);
            finish(dims_desc(desc, sizeof(desc), dts[t], es[c].r, es[c].d, ex), MIXRT_STATUS_OK);
        }
    if (begin("Expand", 13, 2, 1)) {
        in_rand(0, MIXRT_DTYPE_F32, 1, (int64_t[]){3});
        in_list(1, 1, (int64_t[]){4});
        finish("[3] to [4]", MIXRT_STATUS_INVALID_MODEL);
    }
}

static void tile_cases(void) {
    static const struct {
        int r;
        int64_t d[3], rep[3];
    } ts[] = {
        {2, {3, 5}, {2, 3}}, {2, {1, 17}, {4, 1}}, {3, {2, 3, 4}, {1, 2, 1}}, {2, {3, 5}, {0, 2}},
        {1, {129}, {3}},     {0, {0}, {0}},        {3, {2, 1, 3}, {1, 5, 1}},
    };
    for (int t = 0; t < 4; t++)
        for (size_t c = 0; c < sizeof(ts) / sizeof(ts[0]); c++) {
            if (!begin("Tile", 13, 2, 1)) continue;
            char desc[256], ex[64], s[48];
            snprintf(ex, sizeof(ex), "repeats %s", mixrt_dims_str(s, sizeof(s), ts[c].r, ts[c].rep));
            in_rand(0, dts[t], ts[c].r, ts[c].d);
            in_list(1, (size_t)ts[c].r, ts[c].rep);
            finish(dims_desc(desc, sizeof(desc), dts[t], ts[c].r, ts[c].d, ex), MIXRT_STATUS_OK);
        }
    if (begin("Tile", 13, 2, 1)) {
        in_rand(0, MIXRT_DTYPE_F32, 2, (int64_t[]){3, 2});
        in_list(1, 2, (int64_t[]){1, -1});
        finish("negative repeat", MIXRT_STATUS_INVALID_MODEL);
    }
}

/* ---- Where, Pad ---------------------------------------------------------------------------------- */

static void where_cases(void) {
    static const struct {
        int r[3];
        int64_t d[3][3];
    } ws[] = {
        {{2, 2, 2}, {{3, 1}, {1, 17}, {3, 17}}}, {{2, 2, 2}, {{5, 129}, {5, 129}, {5, 129}}},
        {{1, 0, 2}, {{7}, {0}, {3, 7}}},         {{3, 1, 1}, {{2, 1, 33}, {33}, {1}}},
        {{2, 2, 2}, {{0, 3}, {1, 3}, {1, 1}}},   {{0, 0, 0}, {{0}, {0}, {0}}},
        /* the select loops per stride pattern: both values scalars; a long span against a scalar */
        {{2, 0, 1}, {{4, 9}, {0}, {1}}},         {{1, 1, 0}, {{1001}, {1001}, {0}}},
    };
    for (int t = 0; t < 4; t++)
        for (size_t c = 0; c < sizeof(ws) / sizeof(ws[0]); c++) {
            if (!begin("Where", 16, 3, 1)) continue;
            char desc[256];
            in_rand(0, MIXRT_DTYPE_BOOL, ws[c].r[0], ws[c].d[0]);
            in_rand(1, dts[t], ws[c].r[1], ws[c].d[1]);
            in_rand(2, dts[t], ws[c].r[2], ws[c].d[2]);
            finish(dims_desc(desc, sizeof(desc), dts[t], ws[c].r[2], ws[c].d[2], "where"), MIXRT_STATUS_OK);
        }
}

/* And / Or / Xor on bools: torch's mask shapes (causal [1,1,S,S] or [1,1,S,1] against
 * padding [B,1,1,S]), a row against one value on either side, equal shapes, empty, rank 0. */
static void logic_cases(void) {
    static const char *const ops[] = {"And", "Or", "Xor"};
    static const struct {
        int r[2];
        int64_t d[2][4];
    } ls[] = {
        {{4, 4}, {{1, 1, 19, 1}, {3, 1, 1, 19}}}, {{4, 4}, {{1, 1, 17, 17}, {2, 1, 1, 17}}},
        {{2, 2}, {{5, 129}, {5, 129}}},            {{2, 0}, {{4, 33}, {0}}},
        {{0, 1}, {{0}, {70}}},                     {{2, 2}, {{0, 3}, {1, 3}}},
        {{3, 1}, {{2, 3, 1}, {5}}},                {{0, 0}, {{0}, {0}}},
    };
    for (int o = 0; o < 3; o++)
        for (size_t c = 0; c < sizeof(ls) / sizeof(ls[0]); c++) {
            if (!begin(ops[o], 7, 2, 1)) continue;
            char desc[256];
            in_rand(0, MIXRT_DTYPE_BOOL, ls[c].r[0], ls[c].d[0]);
            in_rand(1, MIXRT_DTYPE_BOOL, ls[c].r[1], ls[c].d[1]);
            finish(dims_desc(desc, sizeof(desc), MIXRT_DTYPE_BOOL, ls[c].r[0], ls[c].d[0], ops[o]), MIXRT_STATUS_OK);
        }
}

static void pad_cases(void) {
    for (int t = 0; t < 4; t++) {
        mixrt_dtype dt = dts[t];
        char desc[256];
        const int64_t d4[4] = {2, 3, 5, 5};
        if (begin("Pad", 13, 3, 1)) {
            in_rand(0, dt, 4, d4);
            in_list(1, 8, (int64_t[]){0, 0, 1, 1, 0, 0, 1, 1});
            in_rand(2, dt, 0, NULL);
            finish(dims_desc(desc, sizeof(desc), dt, 4, d4, "pads 1 HW, random value"), MIXRT_STATUS_OK);
        }
        if (begin("Pad", 13, 2, 1)) {
            in_rand(0, dt, 4, d4);
            in_list(1, 8, (int64_t[]){1, 0, -2, 3, 0, 2, 1, -4});
            finish(dims_desc(desc, sizeof(desc), dt, 4, d4, "negative pads, zero value"), MIXRT_STATUS_OK);
        }
        if (begin("Pad", 11, 2, 1)) {
            in_rand(0, dt, 1, (int64_t[]){17});
            in_list(1, 2, (int64_t[]){3, 0});
            finish(dims_desc(desc, sizeof(desc), dt, 1, (int64_t[]){17}, "rank 1"), MIXRT_STATUS_OK);
        }
        if (begin("Pad", 2, 1, 1)) {
            kh_attr_ints("pads", (int64_t[]){0, 2, 1, 0}, 4);
            kh_attr_float("value", 3.0f);
            in_rand(0, dt, 2, (int64_t[]){3, 4});
            finish(dims_desc(desc, sizeof(desc), dt, 2, (int64_t[]){3, 4}, "opset 2 value 3"), MIXRT_STATUS_OK);
        }
        if (begin("Pad", 18, 4, 1)) {
            in_rand(0, dt, 3, (int64_t[]){2, 0, 4});
            in_list(1, 4, (int64_t[]){1, 2, 0, 1});
            in_rand(2, dt, 0, NULL);
            in_list(3, 2, (int64_t[]){-1, 1});
            finish(dims_desc(desc, sizeof(desc), dt, 3, (int64_t[]){2, 0, 4}, "axes [-1,1], empty input"),
                   MIXRT_STATUS_OK);
        }
        if (begin("Pad", 13, 2, 1)) {
            in_rand(0, dt, 2, (int64_t[]){3, 4});
            in_list(1, 4, (int64_t[]){0, -2, 0, -3});
            finish(dims_desc(desc, sizeof(desc), dt, 2, (int64_t[]){3, 4}, "crop only"), MIXRT_STATUS_OK);
        }
    }
    if (begin("Pad", 13, 2, 1)) {
        in_rand(0, MIXRT_DTYPE_F32, 2, (int64_t[]){3, 4});
        in_list(1, 3, (int64_t[]){0, 1, 1});
        finish("3 pads for rank 2", MIXRT_STATUS_INVALID_MODEL);
    }
}

/* ---- Resize ------------------------------------------------------------------------------------ */

static void resize_case(mixrt_dtype dt, const char *mode, const char *coord, const char *nearest, const int64_t *dims,
                        const double *scales, const int64_t *sizes, mixrt_status expect) {
    if (!begin("Resize", 13, sizes ? 4 : 3, 1)) return;
    char desc[256], ex[160], s[64] = "";
    if (sizes) mixrt_dims_str(s, sizeof(s), 4, sizes);
    else snprintf(s, sizeof(s), "scales [%g,%g,%g,%g]", scales[0], scales[1], scales[2], scales[3]);
    snprintf(ex, sizeof(ex), "%s %s %s -> %s", mode, coord, nearest ? nearest : "", s);
    kh_attr_str("mode", mode);
    kh_attr_str("coordinate_transformation_mode", coord);
    if (nearest) kh_attr_str("nearest_mode", nearest);
    in_rand(0, dt, 4, dims);
    g_nin = 2; /* roi absent */
    if (scales) {
        g_in[2] = kh_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){4}, scales);
        g_nin = 3;
    }
    if (sizes) in_list(3, 4, sizes);
    finish(dims_desc(desc, sizeof(desc), dt, 4, dims, ex), expect);
}

static void resize_cases(void) {
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                         "tf_half_pixel_for_nn", "half_pixel_symmetric"};
    static const char *const nears[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const int64_t d[4] = {1, 3, 5, 7}, d2[4] = {2, 2, 4, 3};
    for (int t = 0; t < 4; t++)
        for (int c = 0; c < 6; c++)
            for (int q = 0; q < 4; q++) {
                resize_case(dts[t], "nearest", coords[c], nears[q], d, (double[]){1, 1, 2, 2}, NULL, MIXRT_STATUS_OK);
                resize_case(dts[t], "nearest", coords[c], nears[q], d, NULL, (int64_t[]){1, 3, 9, 4}, MIXRT_STATUS_OK);
                resize_case(dts[t], "nearest", coords[c], nears[q], d2, (double[]){1, 1, 1.5, 0.7}, NULL,
                            MIXRT_STATUS_OK);
            }
    static const mixrt_dtype fdts[4] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16, MIXRT_DTYPE_F64};
    for (int t = 0; t < 4; t++)
        for (int c = 0; c < 6; c++) {
            resize_case(fdts[t], "linear", coords[c], NULL, d, (double[]){1, 1, 2, 2}, NULL, MIXRT_STATUS_OK);
            resize_case(fdts[t], "linear", coords[c], NULL, d, NULL, (int64_t[]){1, 3, 3, 13}, MIXRT_STATUS_OK);
            resize_case(fdts[t], "linear", coords[c], NULL, d2, NULL, (int64_t[]){4, 1, 1, 1}, MIXRT_STATUS_OK);
            resize_case(fdts[t], "linear", coords[c], NULL, d2, (double[]){1, 1, 1.5, 0.7}, NULL, MIXRT_STATUS_OK);
            resize_case(fdts[t], "linear", coords[c], NULL, (int64_t[]){1, 1, 1, 1}, NULL, (int64_t[]){1, 1, 4, 4},
                        MIXRT_STATUS_OK);
            resize_case(fdts[t], "linear", coords[c], NULL, d, NULL, (int64_t[]){1, 3, 0, 4}, MIXRT_STATUS_OK);
        }
    /* both scales and sizes: the reference's error */
    if (begin("Resize", 13, 4, 1)) {
        in_rand(0, MIXRT_DTYPE_F32, 4, d);
        g_in[2] = kh_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){4}, (double[]){1, 1, 2, 2});
        in_list(3, 4, (int64_t[]){1, 3, 10, 14});
        finish("scales and sizes", MIXRT_STATUS_INVALID_MODEL);
    }
}

/* ---- supports() refusals -------------------------------------------------------------------------- */

static void refusal_cases(void) {
    char why[256];
    kh_begin("Pad", 13, 2, 1);
    kh_attr_str("mode", "reflect");
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
    const struct mixrt_cpu_kernel *k = kernel_for("Pad");
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)) && strstr(why, "reflect"), "Pad reflect not refused: %s",
             why);
    kh_end();
    kh_begin("Transpose", 13, 1, 1);
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_STRING;
    k = kernel_for("Transpose");
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)), "Transpose of strings not refused");
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_UNDEFINED;
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)), "Transpose of an unknown dtype not refused");
    kh_end();
    kh_begin("TransposeCast", 1, 1, 1);
    kh_N->domain = MIXRT_DOMAIN;
    kh_attr_int("to", MIXRT_DTYPE_BF16);
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_I64;
    kh_G->values[kh_N->outputs[0]].dtype = MIXRT_DTYPE_BF16;
    k = kernel_for("TransposeCast");
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)), "TransposeCast of int64 not refused");
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
    TU_CHECK(k && k->supports(kh_G, kh_N, why, sizeof(why)), "TransposeCast f32 to bf16 refused: %s", why);
    kh_G->values[kh_N->outputs[0]].dtype = MIXRT_DTYPE_F16;
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)), "TransposeCast whose output is not 'to' not refused");
    kh_end();
    kh_begin("Gather", 13, 2, 1);
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
    kh_G->values[kh_N->inputs[1]].dtype = MIXRT_DTYPE_I16;
    k = kernel_for("Gather");
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)), "Gather with int16 indices not refused");
    kh_end();
    kh_begin("ScatterND", 16, 3, 1);
    kh_attr_str("reduction", "add");
    for (int i = 0; i < 3; i++) kh_G->values[kh_N->inputs[i]].dtype = i == 1 ? MIXRT_DTYPE_I64 : MIXRT_DTYPE_F32;
    k = kernel_for("ScatterND");
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)) && strstr(why, "reduction"),
             "ScatterND with a reduction not refused: %s", why);
    kh_end();
    kh_begin("Slice", 13, 3, 1); /* starts not a constant: refused (the builder could not time it) */
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
    k = kernel_for("Slice");
    TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)) && strstr(why, "constant"),
             "Slice with non-constant starts not refused: %s", why);
    kh_end();
    k = kernel_for("Resize");
    static const char *const refused[][2] = {{"mode", "cubic"}, {"coordinate_transformation_mode", "tf_crop_and_resize"}};
    for (int i = 0; i < 2; i++) {
        kh_begin("Resize", 13, 3, 1);
        kh_attr_str(refused[i][0], refused[i][1]);
        kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
        TU_CHECK(k && !k->supports(kh_G, kh_N, why, sizeof(why)), "Resize %s=%s not refused", refused[i][0],
                 refused[i][1]);
        kh_end();
    }
}

int main(int argc, char **argv) {
    snprintf(g_argv0, sizeof(g_argv0), "%s", argv[0]);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = atoi(argv[++i]);
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    if (!mixrt_dm_has_avx512()) printf("test_datamove_kernels: no AVX-512 here; testing the scalar twins only\n");
    tu_seed(0xd47au);
    transpose_cases();
    tcast_cases();
    gather_cases();
    concat_cases();
    split_cases();
    slice_cases();
    expand_cases();
    tile_cases();
    where_cases();
    logic_cases();
    pad_cases();
    resize_cases();
    d2s_cases();
    scatter_nd_cases();
    gather_nd_cases();
    nonzero_cases();
    if (g_only < 0) refusal_cases();
    printf("test_datamove_kernels: %d cases\n", g_cases_run);
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_datamove_kernels");
}
