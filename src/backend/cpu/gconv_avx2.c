/* gconv_avx2.c - the AVX2 + FMA row kernel of the grouped conv of four channels a group
 * (gconv.c; ResNeXt's 32x4d convs, which oneDNN 2.6 runs on its gemm-based code at ~7 GFLOP/s
 * on AVX2: its jit kernels want 8 channels a group). A vector of 8 output channels covers two
 * groups; the 8 input channels at the same offset are the two groups' inputs, and vpermilps
 * spreads input channel ci of each group over its own 128-bit half: one permute and one fma
 * per (tap, ci). Four pixels by 16 channels a step (8 accumulators) hide the fma latency.
 * Compiled with -mavx2 -mfma; gconv.c calls it only where the CPU has both. */
#include "backend/cpu/gconv_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define PERM(v, ci) _mm256_permute_ps((v), (ci) * 0x55)

/* acc_p_h (pixel p < np, half h < nh) += the taps of pixels ox .. ox + np - 1 over channels
 * [m0, m0 + 8 * nh): the accumulators are named variables (arrays indexed in loops were kept on
 * the stack by gcc 12). */
#define ACC_STEP(P, H)                                                                                                 \
    if (np > P && nh > H && xp##P) {                                                                                   \
        const __m256 v = _mm256_loadu_ps(xp##P + m0 + 8 * H);                                                          \
        a##P##H = _mm256_fmadd_ps(PERM(v, 0), w##H##0, a##P##H);                                                       \
        a##P##H = _mm256_fmadd_ps(PERM(v, 1), w##H##1, a##P##H);                                                       \
        a##P##H = _mm256_fmadd_ps(PERM(v, 2), w##H##2, a##P##H);                                                       \
        a##P##H = _mm256_fmadd_ps(PERM(v, 3), w##H##3, a##P##H);                                                       \
    }
#define ACC_OUT(P, H)                                                                                                  \
    if (np > P && nh > H) {                                                                                            \
        __m256 o = a##P##H;                                                                                            \
        if (r->z) o = _mm256_add_ps(o, _mm256_loadu_ps((const float *)r->z + (ox + P) * C + m0 + 8 * H));                             \
        _mm256_storeu_ps(r->y + (ox + P) * C + m0 + 8 * H, o);                                                         \
    }

static inline __attribute__((always_inline)) void block(const struct mixrt_gconv_row *r, int64_t ox, const int np,
                                                        int64_t m0, const int nh) {
    const int64_t C = r->c, ih0 = r->oy * r->sh - r->pt;
    const __m256 b0 = _mm256_loadu_ps(r->b + m0), b1 = nh > 1 ? _mm256_loadu_ps(r->b + m0 + 8) : b0;
    __m256 a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1;
    for (int64_t ky = 0; ky < r->kh; ky++) {
        const int64_t ih = ih0 + ky * r->dh;
        if (ih < 0 || ih >= r->h) continue;
        const float *xrow = (const float *)r->x + ih * r->wd * C;
        for (int64_t kx = 0; kx < r->kw; kx++) {
            const float *wt = r->w + (ky * r->kw + kx) * 4 * C + m0;
            const __m256 w00 = _mm256_loadu_ps(wt), w01 = _mm256_loadu_ps(wt + C), w02 = _mm256_loadu_ps(wt + 2 * C),
                         w03 = _mm256_loadu_ps(wt + 3 * C);
            __m256 w10 = w00, w11 = w01, w12 = w02, w13 = w03;
            if (nh > 1)
                w10 = _mm256_loadu_ps(wt + 8), w11 = _mm256_loadu_ps(wt + C + 8), w12 = _mm256_loadu_ps(wt + 2 * C + 8),
                w13 = _mm256_loadu_ps(wt + 3 * C + 8);
            const float *xp0 = NULL, *xp1 = NULL, *xp2 = NULL, *xp3 = NULL;
#define PIX(P)                                                                                                         \
    if (np > P) {                                                                                                      \
        const int64_t iw = (ox + P) * r->sw - r->pl + kx * r->dw;                                                      \
        if (iw >= 0 && iw < r->wd) xp##P = xrow + iw * C;                                                              \
    }
            PIX(0) PIX(1) PIX(2) PIX(3)
#undef PIX
            ACC_STEP(0, 0) ACC_STEP(0, 1) ACC_STEP(1, 0) ACC_STEP(1, 1)
            ACC_STEP(2, 0) ACC_STEP(2, 1) ACC_STEP(3, 0) ACC_STEP(3, 1)
        }
    }
    ACC_OUT(0, 0) ACC_OUT(0, 1) ACC_OUT(1, 0) ACC_OUT(1, 1) ACC_OUT(2, 0) ACC_OUT(2, 1) ACC_OUT(3, 0) ACC_OUT(3, 1)
}

void mixrt_gconv4_row_avx2(const struct mixrt_gconv_row *r) {
    const int64_t C = r->c;
    int64_t ox = 0;
    for (; ox + 4 <= r->ow; ox += 4) {
        int64_t m0 = 0;
        for (; m0 + 16 <= C; m0 += 16) block(r, ox, 4, m0, 2);
        if (m0 < C) block(r, ox, 4, m0, 1);
    }
    for (; ox < r->ow; ox++) {
        int64_t m0 = 0;
        for (; m0 + 16 <= C; m0 += 16) block(r, ox, 1, m0, 2);
        if (m0 < C) block(r, ox, 1, m0, 1);
    }
}
#else
typedef int mixrt_gconv_avx2_unused; /* ISO C wants a declaration in every translation unit */
#endif
