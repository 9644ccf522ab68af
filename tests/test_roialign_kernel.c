/* test_roialign_kernel.c - nn_roialign (roialign.c) against the reference RoiAlign kernel, which
 * computes in f64: f32 / bf16 / f16 maps (rois in their own float dtype), avg and max modes, opset
 * 10's implicit output_half_pixel, 16's half_pixel default and explicit output_half_pixel, opset
 * 22, sampling_ratio 0 (adaptive) and 1-3, pools of 1x1, 3x5, 7x7 and 14x14, rois inside, partly
 * and wholly off the map, tiny, reversed and huge ones, several images, 1 to 2048 channels (around
 * the 16-channel vectors and 64-channel blocks), infinities in the map (pixel 0 too, which samples
 * off the map read with weight 0); on the AVX-512 loops and the scalar twins, on one thread and
 * two, with the tap caches at their size, cut to 300 samples (groups of a few rois, the rest too
 * big for them) and to 5 (nearly every roi too big, bins of more than 5 samples done in pieces). Each
 * element within a few f32 ulps of the largest |x| (plus one ulp of a 16-bit output), and the
 * relative L2 error under a per-dtype bound; NaN and infinities where the reference puts them.
 * Cases the kernel hands to the reference (invalid batch indices, non-finite rois, too many
 * samples, bad attributes, empty outputs or maps, f64 maps, sample tables past its limit) must give
 * the reference's status and message, or its output bit for bit.
 * Usage: test_roialign_kernel [CASE]   (CASE: only that case, as numbered in failures) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/kernels.h"
#include "backend/cpu/roialign_impl.h"
#include "kernel_harness.h"
#include "testutil.h"

static int g_case, g_only = -1, g_ran;

/* How a case's rois are drawn, in image coordinates (the map's size over spatial_scale). */
enum roi_kind {
    ROI_INSIDE,  /* inside the image, 1 px to half its size */
    ROI_PARTLY,  /* crossing an edge */
    ROI_OUTSIDE, /* wholly off the map, more than a pixel away */
    ROI_TINY,    /* under half a pixel, some reversed (x2 < x1) */
    ROI_HUGE,    /* several times the image */
    ROI_MIXED,   /* each roi one of the above */
};

struct roi_case {
    mixrt_dtype dt, rdt, idt; /* X, rois, batch_indices */
    int opset;
    const char *mode, *ctm; /* NULL: the attribute absent */
    int64_t N, C, H, W, R, oh, ow, sr;
    float scale;
    enum roi_kind kind;
    long inf_at; /* >= 0: X element set to +inf */
    /* what the kernel must hand over: 0 nothing; 1 and 6 (a roi past its tables) the reference's
     * output bit for bit; 2-5 (a roi the reference refuses) and 7 (bad attributes) its error */
    int handed;
};

static void draw_roi(enum roi_kind kind, double iw, double ih, double *r) {
    if (kind == ROI_MIXED) kind = (enum roi_kind)(tu_rand() % ROI_MIXED);
    double x1, y1, w, h;
    switch (kind) {
    case ROI_INSIDE:
        w = tu_uniform(1, iw / 2), h = tu_uniform(1, ih / 2);
        x1 = tu_uniform(0, iw - w), y1 = tu_uniform(0, ih - h);
        break;
    case ROI_PARTLY:
        w = tu_uniform(1, iw), h = tu_uniform(1, ih);
        x1 = tu_uniform(-w, iw), y1 = tu_uniform(-h, ih);
        break;
    case ROI_OUTSIDE:
        w = tu_uniform(1, iw / 2), h = tu_uniform(1, ih / 2);
        x1 = tu_rand() % 2 ? tu_uniform(1.5 * iw, 2 * iw) : tu_uniform(-2 * iw, -w - iw / 2);
        y1 = tu_uniform(-ih, 2 * ih);
        break;
    case ROI_TINY:
        w = tu_uniform(-0.5, 0.5), h = tu_uniform(-0.5, 0.5);
        x1 = tu_uniform(0, iw), y1 = tu_uniform(0, ih);
        break;
    default: /* huge */
        w = tu_uniform(2 * iw, 4 * iw), h = tu_uniform(2 * ih, 4 * ih);
        x1 = tu_uniform(-2 * iw, 0), y1 = tu_uniform(-2 * ih, 0);
        break;
    }
    r[0] = x1, r[1] = y1, r[2] = x1 + w, r[3] = y1 + h;
}

/* |y - r| allowed at an element of a result of dt: 16 f32 ulps of the largest |x|, one ulp of a
 * 16-bit output (its rounding from f32 may differ from the reference's from f64). */
static double tol(mixrt_dtype dt, double r, double xmax) {
    double t = 16 * ldexp(xmax, -24);
    if (dt == MIXRT_DTYPE_BF16) t += ldexp(fabs(r), -7);
    if (dt == MIXRT_DTYPE_F16) t += ldexp(fabs(r), -10) + ldexp(1, -24);
    return t;
}

/* Relative L2 error allowed over the finite elements. */
static double norm_bound(mixrt_dtype dt) { return dt == MIXRT_DTYPE_BF16 ? 4e-3 : dt == MIXRT_DTYPE_F16 ? 5e-4 : 1e-6; }

static void run_case(const struct roi_case *c) {
    const int id = g_case++;
    if (g_only >= 0 && id != g_only) return;
    g_ran++;
    tu_seed(0x201a11u + (uint64_t)id);
    char desc[320];
    snprintf(desc, sizeof(desc),
             "case %d: X %s [%lld,%lld,%lld,%lld] rois %s x%lld idx %s opset %d mode %s ctm %s %lldx%lld sr %lld "
             "scale %g kind %d inf %ld (repro: test_roialign_kernel %d)",
             id, mixrt_dtype_name(c->dt), (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W,
             mixrt_dtype_name(c->rdt), (long long)c->R, mixrt_dtype_name(c->idt), c->opset, c->mode ? c->mode : "-",
             c->ctm ? c->ctm : "-", (long long)c->oh, (long long)c->ow, (long long)c->sr, c->scale, (int)c->kind,
             c->inf_at, id);
    const int64_t xd[4] = {c->N, c->C, c->H, c->W}, rd[2] = {c->R, 4}, id1[1] = {c->R};
    struct mixrt_tensor x = kh_tensor(c->dt, 4, xd, NULL), rois = kh_tensor(c->rdt, 2, rd, NULL),
                        bidx = kh_tensor(c->idt, 1, id1, NULL);
    const size_t nx = mixrt_tensor_numel(&x);
    for (size_t i = 0; i < nx; i++) mixrt_store_f64(x.data, c->dt, i, tu_uniform(-2, 2));
    if (c->inf_at >= 0 && (size_t)c->inf_at < nx) mixrt_store_f64(x.data, c->dt, (size_t)c->inf_at, INFINITY);
    const double iw = (double)(c->W > 0 ? c->W : 1) / c->scale, ih = (double)(c->H > 0 ? c->H : 1) / c->scale;
    for (int64_t r = 0; r < c->R; r++) {
        double q[4];
        draw_roi(c->kind, iw, ih, q);
        for (int j = 0; j < 4; j++) mixrt_store_f64(rois.data, c->rdt, (size_t)(r * 4 + j), q[j]);
        mixrt_store_i64(bidx.data, c->idt, (size_t)r, c->N > 0 ? (int64_t)(tu_rand() % (uint64_t)c->N) : 0);
    }
    if (c->handed == 2) mixrt_store_i64(bidx.data, c->idt, (size_t)(c->R / 2), c->N); /* past the last image */
    if (c->handed == 3) mixrt_store_i64(bidx.data, c->idt, (size_t)(c->R - 1), -1);
    if (c->handed == 4) mixrt_store_f64(rois.data, c->rdt, (size_t)(c->R / 2) * 4 + 2, NAN);
    if (c->handed == 5) { /* roi 0: 1e5 x 1e5 samples a bin with sampling_ratio 0 */
        double q[4] = {0, 0, 1e5 / c->scale, 1e5 / c->scale};
        for (int j = 0; j < 4; j++) mixrt_store_f64(rois.data, c->rdt, (size_t)j, q[j]);
    }
    if (c->handed == 6) { /* roi 0: 70000 samples along x, past the kernel's table */
        double q[4] = {0, 0, 7e4 / c->scale, 1};
        for (int j = 0; j < 4; j++) mixrt_store_f64(rois.data, c->rdt, (size_t)j, q[j]);
    }
    kh_begin("RoiAlign", c->opset, 3, 1);
    if (c->mode) kh_attr_str("mode", c->mode);
    if (c->ctm) kh_attr_str("coordinate_transformation_mode", c->ctm);
    kh_attr_int("output_height", c->oh);
    kh_attr_int("output_width", c->ow);
    kh_attr_int("sampling_ratio", c->sr);
    kh_attr_float("spatial_scale", c->scale);
    kh_in[0] = &x, kh_in[1] = &rois, kh_in[2] = &bidx;
    struct mixrt_value *xv = &kh_G->values[kh_N->inputs[0]];
    xv->dtype = c->dt, xv->rank = 4;
    const struct mixrt_cpu_kernel *k = mixrt_cpu_kernel_find("nn_roialign", "", "RoiAlign");
    char why[256] = "";
    const bool takes = k && k->supports(kh_G, kh_N, why, sizeof(why));
    TU_CHECK(k != NULL, "nn_roialign is registered");
    if (c->dt != MIXRT_DTYPE_F64)
        TU_CHECK(takes, "%s: supports() refused: %s", desc, why);
    else
        TU_CHECK(!takes, "%s: supports() took an f64 map", desc);
    mixrt_status rs = kh_run();
    char rmsg[512];
    snprintf(rmsg, sizeof(rmsg), "%s", rs == MIXRT_STATUS_OK ? "" : mixrt_context_last_error(kh_ctx));
    const bool want_error = c->handed >= 2 && c->handed != 6;
    TU_CHECK((rs != MIXRT_STATUS_OK) == want_error, "%s: reference status %d: %s", desc, (int)rs, rmsg);
    struct mixrt_tensor ref = {0};
    if (rs == MIXRT_STATUS_OK) mixrt_tensor_copy(kh_ctx, &ref, &kh_out[0]);
    mixrt_tensor_release(kh_ctx, &kh_out[0]);
    double xmax = 0;
    for (size_t i = 0; i < nx; i++) {
        double v = fabs(mixrt_load_f64(x.data, c->dt, i));
        if (isfinite(v) && v > xmax) xmax = v;
    }
    /* avx512 / scalar x one thread / two x the tap caches at their size / cut to 300 or 5 samples */
    static const struct {
        const char *name;
        bool scalar, par;
        int64_t taps;
    } modes[8] = {{"avx512", false, false, 0},
                  {"scalar", true, false, 0},
                  {"avx512/2 threads", false, true, 0},
                  {"scalar/2 threads", true, true, 0},
                  {"avx512/5 taps", false, false, 5},
                  {"scalar/2 threads/5 taps", true, true, 5},
                  {"avx512/2 threads/300 taps", false, true, 300},
                  {"scalar/300 taps", true, false, 300}};
    for (int v = 0; k && v < 8; v++) {
        const bool scalar = modes[v].scalar;
        if (!scalar && !mixrt_roi_has_avx512()) continue;
        mixrt_roi_force_scalar(scalar);
        mixrt_roi_set_parallel_work(modes[v].par ? 1 : SIZE_MAX);
        mixrt_roi_set_tap_budget(modes[v].taps);
        const char *mname = modes[v].name;
        mixrt_status st = kh_run_kernel(k->run, NULL);
        if (rs != MIXRT_STATUS_OK) { /* the reference's error, word for word */
            TU_CHECK(st == rs && !strcmp(mixrt_context_last_error(kh_ctx), rmsg),
                     "%s [%s]: status %d '%s', reference %d '%s'", desc, mname, (int)st,
                     mixrt_context_last_error(kh_ctx), (int)rs, rmsg);
            mixrt_tensor_release(kh_ctx, &kh_out[0]);
            continue;
        }
        const struct mixrt_tensor *y = &kh_out[0];
        TU_CHECK(st == MIXRT_STATUS_OK, "%s [%s]: %s", desc, mname, mixrt_context_last_error(kh_ctx));
        const bool same = st == MIXRT_STATUS_OK && y->dtype == ref.dtype && y->rank == 4 && y->nbytes == ref.nbytes &&
                          !memcmp(y->dims, ref.dims, sizeof(ref.dims[0]) * 4);
        TU_CHECK(same, "%s [%s]: output shape or dtype differs", desc, mname);
        if (same && c->handed && ref.nbytes)
            TU_CHECK(!memcmp(y->data, ref.data, ref.nbytes), "%s [%s]: not the reference's output", desc, mname);
        const size_t n = same ? mixrt_tensor_numel(&ref) : 0;
        size_t bad = n;
        double worst = 0, e2 = 0, r2 = 0;
        for (size_t i = 0; i < n && !c->handed; i++) {
            double a = mixrt_load_f64(y->data, c->dt, i), r = mixrt_load_f64(ref.data, c->dt, i);
            if (!isfinite(r)) {
                if (!(isnan(r) ? isnan(a) : a == r) && bad == n) bad = i;
                continue;
            }
            double e = fabs(a - r);
            if (!(e <= tol(c->dt, r, xmax)) && bad == n) bad = i;
            if (e > worst) worst = e;
            e2 += e * e, r2 += r * r;
        }
        TU_CHECK(bad == n, "%s [%s]: element %zu is %.9g, reference %.9g (worst error %g)", desc, mname, bad,
                 bad < n ? mixrt_load_f64(y->data, c->dt, bad) : 0.0,
                 bad < n ? mixrt_load_f64(ref.data, c->dt, bad) : 0.0, worst);
        if (!c->handed && n)
            TU_CHECK(sqrt(e2) <= norm_bound(c->dt) * sqrt(r2), "%s [%s]: relative L2 error %g over %g", desc, mname,
                     r2 > 0 ? sqrt(e2 / r2) : sqrt(e2), norm_bound(c->dt));
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
    }
    mixrt_roi_force_scalar(false);
    mixrt_roi_set_parallel_work(0);
    mixrt_roi_set_tap_budget(0);
    kh_end();
    mixrt_tensor_release(kh_ctx, &ref);
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &rois);
    mixrt_tensor_release(kh_ctx, &bidx);
}

/* The coordinate variants: opset 10 (implicit output_half_pixel), 16's half_pixel default, 16
 * with output_half_pixel spelt out, 22 with half_pixel spelt out. */
static const struct {
    int opset;
    const char *ctm;
} coords[4] = {{10, NULL}, {16, NULL}, {16, "output_half_pixel"}, {22, "half_pixel"}};

int main(int argc, char **argv) {
    if (argc > 1) g_only = atoi(argv[1]);
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
#ifdef _OPENMP
    omp_set_num_threads(2); /* "2 threads" means two, whatever the machine has */
#endif
    if (!mixrt_roi_has_avx512()) printf("test_roialign_kernel: no AVX-512 here; testing the scalar twins only\n");
    const mixrt_dtype F32 = MIXRT_DTYPE_F32, BF16 = MIXRT_DTYPE_BF16, F16 = MIXRT_DTYPE_F16, I64 = MIXRT_DTYPE_I64;
    static const mixrt_dtype dts[3] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    static const int64_t pools[4][2] = {{1, 1}, {7, 7}, {14, 14}, {3, 5}};
    /* every dtype x mode x coordinate variant x sampling ratio, on small maps of 5 channels (one
     * masked step), two images, mixed rois; pools and scales cycled */
    for (int t = 0; t < 3; t++)
        for (int m = 0; m < 2; m++)
            for (int co = 0; co < 4; co++)
                for (int64_t sr = 0; sr <= 3; sr++) {
                    const int64_t *pl = pools[(co + sr) % 4];
                    const float sc = sr % 2 ? 0.25f : 0.5f;
                    struct roi_case c = {dts[t],
                                         dts[t],
                                         I64,
                                         coords[co].opset,
                                         m ? "max" : "avg",
                                         coords[co].ctm,
                                         2,
                                         5,
                                         9,
                                         11,
                                         24,
                                         pl[0],
                                         pl[1],
                                         sr,
                                         sc,
                                         ROI_MIXED,
                                         -1,
                                         0};
                    run_case(&c);
                }
    /* each roi kind alone, both modes, 256 channels (four 64-channel blocks), Mask R-CNN's 7x7 and
     * 14x14 pools with sampling_ratio 2 and 0 */
    for (int t = 0; t < 3; t++)
        for (int kind = 0; kind < ROI_MIXED; kind++)
            for (int m = 0; m < 2; m++) {
                struct roi_case c = {dts[t], F32, I64, 16,    m ? "max" : NULL,    NULL, 1, 256, 20, 24, 8,
                                     7,      7,   2,   0.25f, (enum roi_kind)kind, -1,   0};
                run_case(&c);
                c.opset = 11, c.oh = c.ow = 14, c.sr = 0, c.scale = 0.125f;
                run_case(&c);
            }
    /* channel counts around the 16-channel vectors and 64-channel blocks, one channel (the f32 map
     * read in place), several images; every pool */
    static const int64_t chans[] = {1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200};
    for (int t = 0; t < 3; t++)
        for (size_t ci = 0; ci < sizeof(chans) / sizeof(chans[0]); ci++)
            for (int p = 0; p < 4; p++) {
                struct roi_case c = {dts[t],
                                     t == 1 ? F16 : F32,
                                     ci % 2 ? MIXRT_DTYPE_I32 : I64,
                                     p % 2 ? 16 : 10,
                                     p == 3 ? "max" : "avg",
                                     NULL,
                                     3,
                                     chans[ci],
                                     6 + p,
                                     7,
                                     10,
                                     pools[p][0],
                                     pools[p][1],
                                     (int64_t)p,
                                     1.0f,
                                     ROI_MIXED,
                                     -1,
                                     0};
                run_case(&c);
            }
    /* rois in f64 and bf16 on an f32 map; 2048 channels (32 blocks) of a 14x14 pool */
    {
        struct roi_case c = {F32,  MIXRT_DTYPE_F64, I64, 16, NULL, NULL, 2, 8, 12, 12, 16, 7, 7, 2,
                             0.5f, ROI_MIXED,       -1,  0};
        run_case(&c);
        c.rdt = BF16, c.dt = BF16;
        run_case(&c);
        struct roi_case g = {F32, F32, I64, 16, NULL, NULL, 1, 2048, 6, 6, 3, 14, 14, 1, 1.0f, ROI_MIXED, -1, 0};
        run_case(&g);
        g.dt = BF16, g.mode = "max";
        run_case(&g);
    }
    /* infinities: inside the map, and at pixel 0 (samples off the map read it with weight 0: NaN) */
    for (int t = 0; t < 3; t++)
        for (int m = 0; m < 2; m++) {
            struct roi_case c = {dts[t], F32, I64, 16,   m ? "max" : "avg", NULL,    1, 3, 8, 8, 16,
                                 3,      3,   2,   1.0f, ROI_MIXED,         64 + 27, 0};
            run_case(&c);
            c.inf_at = 0, c.kind = ROI_PARTLY;
            run_case(&c);
            c.inf_at = 64, c.kind = ROI_OUTSIDE;
            run_case(&c);
        }
    /* what nn_roialign hands to the reference: errors word for word, outputs bit for bit */
    for (int t = 0; t < 3; t++) {
        struct roi_case c = {dts[t], F32, I64, 16, NULL, NULL, 2, 4, 6, 6, 5, 2, 2, 2, 1.0f, ROI_INSIDE, -1, 2};
        run_case(&c); /* batch index N */
        c.handed = 3, c.idt = MIXRT_DTYPE_I32;
        run_case(&c); /* batch index -1 */
        c.handed = 4;
        run_case(&c); /* a NaN coordinate */
        c.handed = 5, c.sr = 0, c.oh = c.ow = 1;
        run_case(&c); /* too many samples per bin */
        c.handed = 7, c.mode = "median", c.sr = 2;
        run_case(&c); /* no such mode */
        c.mode = NULL, c.ctm = "align_corners";
        run_case(&c); /* no such coordinate mode */
        c.ctm = NULL, c.handed = 6, c.sr = 0, c.C = 2, c.oh = c.ow = 1;
        run_case(&c); /* 70000 samples along x: past the kernel's tables */
        c.handed = 1, c.sr = 2, c.R = 0;
        run_case(&c); /* no rois */
        c.R = 5, c.C = 0;
        run_case(&c); /* no channels */
        c.C = 4, c.H = 0;
        run_case(&c); /* an empty map: zeros */
    }
    {
        struct roi_case c = {MIXRT_DTYPE_F64, F32, I64, 16, NULL, NULL, 1, 4, 6, 6, 5, 2, 2, 2, 1.0f, ROI_MIXED, -1, 1};
        run_case(&c); /* an f64 map */
    }
    printf("test_roialign_kernel: %d cases\n", g_ran);
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_roialign_kernel");
}
