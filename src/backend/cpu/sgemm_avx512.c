/* sgemm_avx512.c - the AVX-512 tile of the packed f32 product (sgemm.c): up to 6 rows by up to
 * MIXRT_SG_NP512 (4) 16-column panels at once, 24 accumulators, per k one load of each panel
 * and one broadcast of A per row (10 loads for 24 fma, where the AVX2 tile's one panel needs 8
 * for 12). Compiled with the AVX-512 flags; sgemm.c calls it only where the CPU has AVX-512F.
 * The operations and their order are sgemm_impl.h's, the scalar tile's: results equal bit for
 * bit. */
#include "backend/cpu/sgemm_impl.h"
#include "core/vec_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

/* One accumulator (row r's panel q) combined with C, bias and Z, then stored. */
static inline __attribute__((always_inline)) void out1(__m512 v, float *cr, int flags, const float *bias,
                                                       const float *zr, __mmask16 m, float lo, float hi) {
    if (!(flags & MIXRT_SG_FIRST)) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, cr), v);
    if (flags & MIXRT_SG_LAST) {
        if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias));
        if (zr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, zr));
        if (flags & MIXRT_SG_RELU) {
            const __m512 zero = _mm512_setzero_ps();
            v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, zero);
        }
        if (flags & MIXRT_SG_CLIP) {
            const __m512 l = _mm512_set1_ps(lo), h = _mm512_set1_ps(hi);
            v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, l, _CMP_LT_OQ), v, l);
            v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, h, _CMP_GT_OQ), v, h);
        }
    }
    _mm512_mask_storeu_ps(cr, m, v);
}

/* Named accumulators (gcc keeps an array's on the stack: see sgemm_avx2.c). */
#define SG5_ROW_FMA(r)                                                                                                 \
    if (MR > r) {                                                                                                      \
        const __m512 av = _mm512_set1_ps(a##r[k]);                                                                     \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                                                    \
        if (NP > 1) c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);                                                        \
        if (NP > 2) c##r##2 = _mm512_fmadd_ps(av, b2, c##r##2);                                                        \
        if (NP > 3) c##r##3 = _mm512_fmadd_ps(av, b3, c##r##3);                                                        \
    }
#define SG5_OUT(r, q)                                                                                                  \
    out1(c##r##q, c + (size_t)r * ldc + 16 * q, flags, bias ? bias + 16 * q : NULL,                                    \
         z ? z + (size_t)r * ldz + 16 * q : NULL, m##q, lo, hi)
#define SG5_ROW_OUT(r)                                                                                                 \
    if (MR > r) {                                                                                                      \
        SG5_OUT(r, 0);                                                                                                 \
        if (NP > 1) SG5_OUT(r, 1);                                                                                     \
        if (NP > 2) SG5_OUT(r, 2);                                                                                     \
        if (NP > 3) SG5_OUT(r, 3);                                                                                     \
    }

static inline __attribute__((always_inline)) void tile(const int MR, const int NP, int nr, size_t kc,
                                                       const float *const *a, const float *bp, size_t ps, float *c,
                                                       size_t ldc, int flags, const float *bias, const float *z,
                                                       size_t ldz, float lo, float hi) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00,
           c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00, c40 = c00, c41 = c00,
           c42 = c00, c43 = c00, c50 = c00, c51 = c00, c52 = c00, c53 = c00;
    /* rows past MR alias row 0, panels past NP panel 0: never read (the macros test MR, NP) */
    const float *a0 = a[0], *a1 = MR > 1 ? a[1] : a0, *a2 = MR > 2 ? a[2] : a0, *a3 = MR > 3 ? a[3] : a0,
                *a4 = MR > 4 ? a[4] : a0, *a5 = MR > 5 ? a[5] : a0;
    const float *p0 = bp, *p1 = NP > 1 ? bp + ps : bp, *p2 = NP > 2 ? bp + 2 * ps : bp, *p3 = NP > 3 ? bp + 3 * ps : bp;
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(p0 + 16 * k);
        const __m512 b1 = NP > 1 ? _mm512_loadu_ps(p1 + 16 * k) : b0;
        const __m512 b2 = NP > 2 ? _mm512_loadu_ps(p2 + 16 * k) : b0;
        const __m512 b3 = NP > 3 ? _mm512_loadu_ps(p3 + 16 * k) : b0;
        SG5_ROW_FMA(0)
        SG5_ROW_FMA(1)
        SG5_ROW_FMA(2)
        SG5_ROW_FMA(3)
        SG5_ROW_FMA(4)
        SG5_ROW_FMA(5)
    }
    /* the lanes of each panel the tile's nr columns reach */
    const __mmask16 m0 = mixrt_v512_mask(nr), m1 = mixrt_v512_mask(nr - 16), m2 = mixrt_v512_mask(nr - 32),
                    m3 = mixrt_v512_mask(nr - 48);
    SG5_ROW_OUT(0)
    SG5_ROW_OUT(1)
    SG5_ROW_OUT(2)
    SG5_ROW_OUT(3)
    SG5_ROW_OUT(4)
    SG5_ROW_OUT(5)
}

#define SG5_NP(MR)                                                                                                     \
    switch ((nr + 15) / 16) {                                                                                          \
    case 4:                                                                                                            \
        tile(MR, 4, nr, kc, a, bp, ps, c, ldc, flags, bias, z, ldz, lo, hi);                                           \
        break;                                                                                                         \
    case 3:                                                                                                            \
        tile(MR, 3, nr, kc, a, bp, ps, c, ldc, flags, bias, z, ldz, lo, hi);                                           \
        break;                                                                                                         \
    case 2:                                                                                                            \
        tile(MR, 2, nr, kc, a, bp, ps, c, ldc, flags, bias, z, ldz, lo, hi);                                           \
        break;                                                                                                         \
    default:                                                                                                           \
        tile(MR, 1, nr, kc, a, bp, ps, c, ldc, flags, bias, z, ldz, lo, hi);                                           \
        break;                                                                                                         \
    }

void mixrt_sg_tile_avx512(int mr, int nr, size_t kc, const float *const *a, const float *bp, size_t ps, float *c,
                          size_t ldc, int flags, const float *bias, const float *z, size_t ldz, float lo, float hi) {
    switch (mr) {
    case 6:
        SG5_NP(6) break;
    case 5:
        SG5_NP(5) break;
    case 4:
        SG5_NP(4) break;
    case 3:
        SG5_NP(3) break;
    case 2:
        SG5_NP(2) break;
    default:
        SG5_NP(1) break;
    }
}
#endif
