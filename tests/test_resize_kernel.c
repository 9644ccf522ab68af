/* test_resize_kernel.c - rz_linear (resize.c), the separable f32 Resize, against the reference
 * kernel, which sums the four products in f64 and rounds once: every coordinate transformation,
 * f32 / bf16 / f16, upscales by 2 and 8 (window permutes), odd sizes and 16-column tails, mild
 * and strong downscales (the gathered blocks), a kept axis, 1x1 inputs, N > 1 and C > 1; on the
 * AVX-512 passes and the scalar twins, on one thread and split over threads. The same for
 * rz_nhwc, the layout pass's channels-last com.mixrt Resize, linear and nearest (exact copies). Each element must
 * lie within a few f32 ulps of the reference's (plus one ulp of a 16-bit output, whose rounding
 * from f32 may differ from the reference's from f64); infinities must land where the reference
 * puts them. Cases the kernel does not take (N or C resized, an empty input) must give the
 * reference's answer exactly. And gs_2d (GridSample; gs_cases). Usage: test_resize_kernel. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/resize_impl.h"
#include "kernel_harness.h"
#include "testutil.h"

static int g_cases;

/* x: uniform in [-2, 2); inf_at >= 0 plants +inf there. */
static struct mixrt_tensor make_x(mixrt_dtype dt, const int64_t *dims, long inf_at) {
    struct mixrt_tensor t = kh_tensor(dt, 4, dims, NULL);
    size_t n = mixrt_tensor_numel(&t);
    for (size_t i = 0; i < n; i++) mixrt_store_f64(t.data, dt, i, tu_uniform(-2, 2));
    if (inf_at >= 0 && (size_t)inf_at < n) mixrt_store_f64(t.data, dt, (size_t)inf_at, INFINITY);
    return t;
}

/* |y - r| allowed at element r of a result of dt: 8 f32 ulps of the largest input, one ulp of
 * a 16-bit output (and its subnormal step). */
static double tol(mixrt_dtype dt, double r, double xmax) {
    double t = 8 * ldexp(xmax, -24);
    if (dt == MIXRT_DTYPE_BF16) t += ldexp(fabs(r), -7);
    if (dt == MIXRT_DTYPE_F16) t += ldexp(fabs(r), -10) + ldexp(1, -24);
    return t;
}

/* One node: Resize (opset 13) of x with the given scales or sizes, or (last) the layout pass's
 * com.mixrt Resize of a channels-last x (dims [N, H, W, C]; scales and sizes channels-first) by
 * rz_nhwc; exact: the result must be the reference's bit for bit (a case rz_linear hands to the
 * reference; nearest mode, which only copies). */
/* What a case sets beyond mode and coordinates: the kernel (rz_taps) and its attributes (sizes
 * computed at run time, inside a Loop body, are test_python's test_loop_body_kernels). */
struct rz_extra {
    const char *kernel;
    int64_t opset;
    float cubic_a;
    int exclude_outside, antialias;
    const char *nearest;
    double slack; /* tolerance factor over tol(): cubic's weights sum |w| past 1 */
};

static void run_case_x(mixrt_dtype dt, const char *mode, bool last, const char *coord, const int64_t *dims,
                       const double *scales, const int64_t *sizes, long inf_at, bool exact, const struct rz_extra *ex) {
    char desc[200], ds[64];
    mixrt_dims_str(ds, sizeof(ds), 4, dims);
    if (sizes)
        snprintf(desc, sizeof(desc), "%s %s %s -> [%lld,%lld,%lld,%lld]", mixrt_dtype_name(dt), coord, ds,
                 (long long)sizes[0], (long long)sizes[1], (long long)sizes[2], (long long)sizes[3]);
    else
        snprintf(desc, sizeof(desc), "%s %s %s x [%g,%g,%g,%g]", mixrt_dtype_name(dt), coord, ds, scales[0],
                 scales[1], scales[2], scales[3]);
    if (last) snprintf(desc + strlen(desc), sizeof(desc) - strlen(desc), " %s channels-last", mode);
    if (ex)
        snprintf(desc + strlen(desc), sizeof(desc) - strlen(desc), " %s %s a=%g excl=%d aa=%d %s", ex->kernel, mode,
                 ex->cubic_a, ex->exclude_outside, ex->antialias, ex->nearest ? ex->nearest : "");
    g_cases++;
    kh_begin("Resize", ex ? ex->opset : 13, sizes ? 4 : 3, 1);
    if (last) kh_N->domain = MIXRT_DOMAIN, kh_N->opset = 1;
    kh_attr_str("mode", mode);
    kh_attr_str("coordinate_transformation_mode", coord);
    if (ex) {
        kh_attr_float("cubic_coeff_a", ex->cubic_a);
        kh_attr_int("exclude_outside", ex->exclude_outside);
        if (ex->antialias) kh_attr_int("antialias", 1);
        if (ex->nearest) kh_attr_str("nearest_mode", ex->nearest);
    }
    struct mixrt_tensor x = make_x(dt, dims, inf_at), sc = {0}, sz = {0};
    if (scales) sc = kh_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){4}, scales);
    if (sizes) sz = kh_tensor_ints(MIXRT_DTYPE_I64, 1, (int64_t[]){4}, sizes);
    kh_in[0] = &x;
    kh_in[1] = NULL;
    kh_in[2] = scales ? &sc : NULL;
    if (sizes) kh_in[3] = &sz;
    /* the shaping inputs are constants, as the kernel's supports() requires */
    struct mixrt_value *xv = &kh_G->values[kh_N->inputs[0]];
    xv->dtype = dt, xv->rank = 4;
    for (int i = 0; i < 4; i++) xv->dims[i].value = dims[i];
    kh_N->inputs[1] = -1;
    struct mixrt_value *cv = &kh_G->values[kh_N->inputs[sizes ? 3 : 2]];
    cv->init = sizes ? &sz : &sc, cv->flags |= MIXRT_VALUE_INITIALIZER;
    if (sizes) kh_N->inputs[2] = -1;
    const struct mixrt_cpu_kernel *k =
        ex ? mixrt_cpu_kernel_find(ex->kernel, "", "Resize")
        : last ? mixrt_cpu_kernel_find("rz_nhwc", MIXRT_DOMAIN, "Resize") : mixrt_cpu_kernel_find("rz_linear", "", "Resize");
    char why[256] = "";
    TU_CHECK(k && k->supports(kh_G, kh_N, why, sizeof(why)), "%s: supports() refused: %s", desc, why);
    mixrt_status rs = kh_run();
    TU_CHECK(rs == MIXRT_STATUS_OK, "%s: reference: %s", desc, mixrt_context_last_error(kh_ctx));
    struct mixrt_tensor ref = {0};
    if (rs == MIXRT_STATUS_OK) mixrt_tensor_copy(kh_ctx, &ref, &kh_out[0]);
    mixrt_tensor_release(kh_ctx, &kh_out[0]);
    double xmax = 0;
    for (size_t i = 0; i < mixrt_tensor_numel(&x); i++) {
        double v = fabs(mixrt_load_f64(x.data, dt, i));
        if (isfinite(v) && v > xmax) xmax = v;
    }
    for (int v = 0; k && rs == MIXRT_STATUS_OK && v < 4; v++) {
        bool scalar = v & 1, par = v & 2;
        if (!scalar && !mixrt_rz_has_avx512()) continue;
        mixrt_rz_force_scalar(scalar);
        mixrt_rz_set_parallel_bytes(par ? 1 : SIZE_MAX);
        const char *mname = scalar ? (par ? "scalar/threads" : "scalar") : (par ? "avx512/threads" : "avx512");
        mixrt_status st = kh_run_kernel(k->run, NULL);
        const struct mixrt_tensor *y = &kh_out[0];
        TU_CHECK(st == MIXRT_STATUS_OK, "%s [%s]: %s", desc, mname, mixrt_context_last_error(kh_ctx));
        bool same = st == MIXRT_STATUS_OK && y->dtype == ref.dtype && y->rank == 4 && y->nbytes == ref.nbytes &&
                    !memcmp(y->dims, ref.dims, sizeof(ref.dims[0]) * 4);
        TU_CHECK(same || st != MIXRT_STATUS_OK, "%s [%s]: output shape or dtype differs", desc, mname);
        if (same && exact && ref.nbytes) /* empty: no data pointers to compare */
            TU_CHECK(!memcmp(y->data, ref.data, ref.nbytes), "%s [%s]: not the reference's", desc, mname);
        size_t n = same ? mixrt_tensor_numel(&ref) : 0, bad = n;
        double worst = 0;
        for (size_t i = 0; i < n && !exact; i++) {
            double a = mixrt_load_f64(y->data, dt, i), r = mixrt_load_f64(ref.data, dt, i);
            if (isnan(r) || isinf(r)) {
                if (!(isnan(r) ? isnan(a) : a == r) && bad == n) bad = i;
                continue;
            }
            double e = fabs(a - r);
            if (!(e <= tol(dt, r, xmax * (ex ? ex->slack : 1))) && bad == n) bad = i;
            if (e > worst) worst = e;
        }
        TU_CHECK(bad == n, "%s [%s]: element %zu is %g, reference %g (worst error %g)", desc, mname, bad,
                 bad < n ? mixrt_load_f64(y->data, dt, bad) : 0.0, bad < n ? mixrt_load_f64(ref.data, dt, bad) : 0.0,
                 worst);
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
    }
    mixrt_rz_force_scalar(false);
    mixrt_rz_set_parallel_bytes(0);
    cv->init = NULL;
    kh_end();
    mixrt_tensor_release(kh_ctx, &ref);
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &sc);
    mixrt_tensor_release(kh_ctx, &sz);
}

static void run_case_as(mixrt_dtype dt, const char *mode, bool last, const char *coord, const int64_t *dims,
                        const double *scales, const int64_t *sizes, long inf_at, bool exact) {
    run_case_x(dt, mode, last, coord, dims, scales, sizes, inf_at, exact, NULL);
}

/* rz_taps (every mode, the reference's taps, sizes given at run time) against the reference:
 * cubic with torch's and ONNX's coefficients, exclude_outside, antialiased linear and cubic
 * downscales (many taps), nearest in each rounding, each coordinate transformation, a keypoint
 * head's box-sized upscale of a 56x56 heatmap; infinities planted. Cases it hands to the
 * reference (N or C resized) must be the reference's exactly; tf_crop_and_resize it refuses at
 * supports(). */
static void taps_cases(void) {
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                         "half_pixel_symmetric"};
    static const mixrt_dtype dts[3] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    for (int t = 0; t < 3; t++)
        for (int c = 0; c < 5; c++) {
            const mixrt_dtype dt = dts[t];
            const char *co = coords[c];
            struct rz_extra cub = {"rz_taps", 13, -0.75f, 0, 0, NULL, 2.5};
            run_case_x(dt, "cubic", false, co, (int64_t[]){1, 3, 7, 9}, NULL, (int64_t[]){1, 3, 23, 40}, -1, false, &cub);
            run_case_x(dt, "cubic", false, co, (int64_t[]){2, 2, 16, 16}, (double[]){1, 1, 2, 2}, NULL, 2 * 16 * 16 + 37,
                       false, &cub);
            cub.cubic_a = -0.5f, cub.exclude_outside = 1;
            run_case_x(dt, "cubic", false, co, (int64_t[]){1, 2, 5, 33}, NULL, (int64_t[]){1, 2, 17, 20}, -1, false, &cub);
            cub.exclude_outside = 0;
            run_case_x(dt, "cubic", false, co, (int64_t[]){1, 1, 1, 6}, NULL, (int64_t[]){1, 1, 3, 6}, -1, false, &cub);
            struct rz_extra aa = {"rz_taps", 18, -0.75f, 0, 1, NULL, 2.5};
            run_case_x(dt, "cubic", false, co, (int64_t[]){1, 2, 40, 37}, NULL, (int64_t[]){1, 2, 9, 5}, -1, false, &aa);
            run_case_x(dt, "linear", false, co, (int64_t[]){1, 2, 30, 64}, (double[]){1, 1, 0.3, 0.25}, NULL, 100, false,
                       &aa);
            struct rz_extra lin = {"rz_taps", 13, -0.75f, 0, 0, NULL, 1};
            run_case_x(dt, "linear", false, co, (int64_t[]){1, 3, 8, 8}, NULL, (int64_t[]){1, 3, 19, 64}, -1, false, &lin);
            static const char *const nears[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
            for (int q = 0; q < 4; q++) {
                struct rz_extra nn = {"rz_taps", 13, -0.75f, 0, 0, nears[q], 1};
                run_case_x(dt, "nearest", false, co, (int64_t[]){1, 2, 6, 9}, NULL, (int64_t[]){1, 2, 13, 20}, 7, true,
                           &nn);
            }
            struct rz_extra kept = {"rz_taps", 13, -0.75f, 0, 0, NULL, 1}; /* handed over: C resized */
            run_case_x(dt, "cubic", false, co, (int64_t[]){1, 2, 4, 4}, NULL, (int64_t[]){1, 3, 8, 8}, -1, true, &kept);
        }
    { /* Mask R-CNN's paste: a padded 30x30 mask to a thin, wide box */
        struct rz_extra lin = {"rz_taps", 13, -0.75f, 0, 0, NULL, 1};
        for (int64_t h = 1; h <= 6; h++)
            for (int64_t w = 316; w <= 324; w++)
                run_case_x(MIXRT_DTYPE_F32, "linear", false, "half_pixel", (int64_t[]){1, 1, 30, 30}, NULL,
                           (int64_t[]){1, 1, h, w}, -1, false, &lin);
    }
    struct rz_extra cub = {"rz_taps", 11, -0.75f, 0, 0, NULL, 2.5};
    run_case_x(MIXRT_DTYPE_F32, "cubic", false, "half_pixel", (int64_t[]){1, 17, 56, 56}, NULL,
               (int64_t[]){1, 17, 131, 97}, -1, false, &cub); /* a keypoint head's box */
}

static void run_case(mixrt_dtype dt, const char *coord, const int64_t *dims, const double *scales,
                     const int64_t *sizes, long inf_at, bool exact) {
    run_case_as(dt, "linear", false, coord, dims, scales, sizes, inf_at, exact);
}

/* gs_2d (GridSample) against the reference: X uniform in [-2, 2) with an infinity planted in some
 * cases, grid points uniform in [-1.3, 1.3) (outside the image too) with NaN and +-inf
 * coordinates sprinkled, every mode / padding / align_corners the kernel takes, one and several
 * channels, 1-wide images; on one thread and split over threads. Within 8 f32 ulps of the largest
 * |x| (nearest: exact). A case it does not take (cubic, reflection, f16) must be the reference's
 * exactly. */
static void gs_case(int opset, const char *mode, const char *pad, int align, const int64_t *xd, int64_t OH, int64_t OW,
                    bool inf, mixrt_dtype dt) {
    char desc[200];
    snprintf(desc, sizeof(desc), "GridSample %s %s align %d %s [%lld,%lld,%lld,%lld] -> %lldx%lld%s", mode, pad, align,
             mixrt_dtype_name(dt), (long long)xd[0], (long long)xd[1], (long long)xd[2], (long long)xd[3],
             (long long)OH, (long long)OW, inf ? " inf" : "");
    g_cases++;
    kh_begin("GridSample", opset, 2, 1);
    kh_attr_str("mode", mode);
    kh_attr_str("padding_mode", pad);
    kh_attr_int("align_corners", align);
    struct mixrt_tensor x = make_x(dt, xd, inf ? (long)(xd[0] * xd[1] * xd[2] * xd[3] / 2) : -1);
    const int64_t gd[4] = {xd[0], OH, OW, 2};
    struct mixrt_tensor gr = kh_tensor(dt, 4, gd, NULL);
    size_t ng = mixrt_tensor_numel(&gr);
    for (size_t i = 0; i < ng; i++) {
        double v = tu_uniform(-1.3, 1.3);
        uint64_t r = tu_rand() % 97;
        if (r == 0) v = NAN;
        if (r == 1) v = INFINITY;
        if (r == 2) v = -INFINITY;
        if (r == 3) v = 0; /* the centre: integer and half-way coordinates */
        mixrt_store_f64(gr.data, dt, i, v);
    }
    kh_in[0] = &x;
    kh_in[1] = &gr;
    for (int i = 0; i < 2; i++) {
        struct mixrt_value *v = &kh_G->values[kh_N->inputs[i]];
        v->dtype = dt, v->rank = 4;
        for (int d = 0; d < 4; d++) v->dims[d].value = i ? gd[d] : xd[d];
    }
    const struct mixrt_cpu_kernel *k = mixrt_cpu_kernel_find("gs_2d", "", "GridSample");
    char why[256] = "";
    bool takes = k && k->supports(kh_G, kh_N, why, sizeof(why));
    bool exact = !strcmp(mode, "nearest") || !takes;
    TU_CHECK(k != NULL, "gs_2d is registered");
    if (dt == MIXRT_DTYPE_F32 && strcmp(mode, "bicubic") && strcmp(mode, "cubic") && strcmp(pad, "reflection"))
        TU_CHECK(takes, "%s: supports() refused: %s", desc, why);
    mixrt_status rs = kh_run();
    TU_CHECK(rs == MIXRT_STATUS_OK, "%s: reference: %s", desc, mixrt_context_last_error(kh_ctx));
    struct mixrt_tensor ref = {0};
    if (rs == MIXRT_STATUS_OK) mixrt_tensor_copy(kh_ctx, &ref, &kh_out[0]);
    mixrt_tensor_release(kh_ctx, &kh_out[0]);
    for (int v = 0; k && rs == MIXRT_STATUS_OK && v < 2; v++) {
        mixrt_rz_set_parallel_bytes(v ? 1 : SIZE_MAX);
        mixrt_status st = kh_run_kernel(k->run, NULL);
        const struct mixrt_tensor *y = &kh_out[0];
        TU_CHECK(st == MIXRT_STATUS_OK, "%s [%s]: %s", desc, v ? "threads" : "one thread", mixrt_context_last_error(kh_ctx));
        bool same = st == MIXRT_STATUS_OK && y->dtype == ref.dtype && y->rank == 4 &&
                    !memcmp(y->dims, ref.dims, sizeof(ref.dims[0]) * 4);
        size_t n = same ? mixrt_tensor_numel(&ref) : 0, bad = n;
        for (size_t i = 0; i < n; i++) {
            double a = mixrt_load_f64(y->data, dt, i), r = mixrt_load_f64(ref.data, dt, i);
            bool ok = isnan(r) ? isnan(a) : isinf(r) || exact ? a == r : fabs(a - r) <= tol(dt, r, 2.0);
            if (!ok) {
                bad = i;
                break;
            }
        }
        TU_CHECK(same && bad == n, "%s [%s]: element %zu is %g, reference %g", desc, v ? "threads" : "one thread", bad,
                 bad < n ? mixrt_load_f64(y->data, dt, bad) : 0.0, bad < n ? mixrt_load_f64(ref.data, dt, bad) : 0.0);
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
    }
    mixrt_rz_set_parallel_bytes(0);
    kh_end();
    mixrt_tensor_release(kh_ctx, &ref);
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &gr);
}

static void gs_cases(void) {
    static const char *const pads[] = {"zeros", "border"};
    for (int p = 0; p < 2; p++)
        for (int al = 0; al < 2; al++)
            for (int m = 0; m < 3; m++) {
                int opset = m == 2 ? 20 : 16;
                const char *mode = m == 0 ? "bilinear" : m == 1 ? "nearest" : "linear";
                gs_case(opset, mode, pads[p], al, (int64_t[]){3, 1, 9, 7}, 5, 6, false, MIXRT_DTYPE_F32);
                gs_case(opset, mode, pads[p], al, (int64_t[]){2, 5, 4, 11}, 3, 17, true, MIXRT_DTYPE_F32);
                gs_case(opset, mode, pads[p], al, (int64_t[]){1, 3, 1, 1}, 2, 2, false, MIXRT_DTYPE_F32);
                gs_case(opset, mode, pads[p], al, (int64_t[]){1, 2, 1, 13}, 4, 3, false, MIXRT_DTYPE_F32);
                gs_case(opset, mode, pads[p], al, (int64_t[]){16, 1, 28, 28}, 9, 9, false, MIXRT_DTYPE_F32);
            }
    /* what gs_2d leaves to the reference */
    gs_case(16, "bicubic", "zeros", 0, (int64_t[]){1, 2, 5, 5}, 3, 3, false, MIXRT_DTYPE_F32);
    gs_case(16, "bilinear", "reflection", 1, (int64_t[]){1, 2, 5, 5}, 3, 3, false, MIXRT_DTYPE_F32);
    gs_case(16, "bilinear", "zeros", 0, (int64_t[]){1, 2, 5, 5}, 3, 3, false, MIXRT_DTYPE_F16);
}

int main(void) {
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    if (!mixrt_rz_has_avx512()) printf("test_resize_kernel: no AVX-512 here; testing the scalar twins only\n");
    tu_seed(0x7e512eu);
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                         "tf_half_pixel_for_nn", "half_pixel_symmetric"};
    static const mixrt_dtype dts[3] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    for (int t = 0; t < 3; t++)
        for (int c = 0; c < 6; c++) {
            mixrt_dtype dt = dts[t];
            const char *co = coords[c];
            run_case(dt, co, (int64_t[]){1, 3, 16, 16}, (double[]){1, 1, 8, 8}, NULL, -1, false);
            run_case(dt, co, (int64_t[]){2, 3, 5, 7}, (double[]){1, 1, 2, 2}, NULL, -1, false);
            run_case(dt, co, (int64_t[]){1, 2, 33, 33}, NULL, (int64_t[]){1, 2, 264, 264}, -1, false);
            run_case(dt, co, (int64_t[]){1, 1, 4, 3}, NULL, (int64_t[]){1, 1, 9, 37}, -1, false);
            run_case(dt, co, (int64_t[]){1, 2, 6, 40}, (double[]){1, 1, 1.5, 0.7}, NULL, -1, false);
            run_case(dt, co, (int64_t[]){1, 2, 9, 70}, NULL, (int64_t[]){1, 2, 4, 17}, -1, false); /* gathered */
            /* 16 columns over 33 inputs: the first block's taps span 32, one past the window */
            run_case(dt, co, (int64_t[]){1, 1, 3, 66}, NULL, (int64_t[]){1, 1, 3, 32}, -1, false);
            run_case(dt, co, (int64_t[]){1, 3, 7, 16}, NULL, (int64_t[]){1, 3, 7, 16}, -1, false);  /* kept */
            run_case(dt, co, (int64_t[]){1, 1, 1, 1}, NULL, (int64_t[]){1, 1, 4, 4}, -1, false);
            run_case(dt, co, (int64_t[]){1, 3, 5, 7}, NULL, (int64_t[]){1, 3, 0, 4}, -1, false);   /* empty */
            run_case(dt, co, (int64_t[]){1, 2, 8, 24}, (double[]){1, 1, 2, 2}, NULL, 2 * 8 * 24 - 30, false);
            run_case(dt, co, (int64_t[]){2, 2, 4, 4}, NULL, (int64_t[]){4, 2, 8, 8}, -1, true); /* N resized */
            run_case(dt, co, (int64_t[]){1, 2, 4, 4}, NULL, (int64_t[]){1, 3, 8, 8}, -1, true); /* C resized */
        }
    /* channels-last (rz_nhwc): C around the vector width, 1-wide images, the mild downscale, sizes,
     * nearest (exact copies) in every nearest mode's default */
    for (int t = 0; t < 3; t++)
        for (int c = 0; c < 6; c++)
            for (int m = 0; m < 2; m++) {
                mixrt_dtype dt = dts[t];
                const char *co = coords[c], *mode = m ? "nearest" : "linear";
                run_case_as(dt, mode, true, co, (int64_t[]){1, 7, 7, 256}, (double[]){1, 1, 8, 8}, NULL, -1, m);
                run_case_as(dt, mode, true, co, (int64_t[]){2, 5, 7, 17}, (double[]){1, 1, 2, 2}, NULL, -1, m);
                run_case_as(dt, mode, true, co, (int64_t[]){1, 6, 40, 3}, (double[]){1, 1, 1.5, 0.7}, NULL, -1, m);
                run_case_as(dt, mode, true, co, (int64_t[]){1, 1, 1, 16}, NULL, (int64_t[]){1, 16, 4, 4}, -1, m);
                run_case_as(dt, mode, true, co, (int64_t[]){1, 9, 4, 1}, NULL, (int64_t[]){1, 1, 13, 10}, -1, m);
                run_case_as(dt, mode, true, co, (int64_t[]){1, 8, 24, 2}, (double[]){1, 1, 2, 2}, NULL, 8 * 24 * 2 - 31,
                            m);
                run_case_as(dt, mode, true, co, (int64_t[]){1, 3, 5, 4}, NULL, (int64_t[]){1, 4, 0, 4}, -1, m);
            }
    gs_cases();
    taps_cases();
    printf("test_resize_kernel: %d cases\n", g_cases);
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_resize_kernel");
}
