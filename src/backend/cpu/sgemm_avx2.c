/* sgemm_avx2.c - the AVX2 + FMA tile of the packed f32 product (sgemm.c): 6 rows by one
 * 16-column panel, 12 accumulators, per k two loads of the panel and one broadcast of A per row.
 * Compiled with -mavx2 -mfma; sgemm.c calls it only where the CPU has both. The operations and
 * their order are sgemm_impl.h's, the scalar tile's. */
#include "backend/cpu/sgemm_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

/* Lanes 0..n-1 of a masked load / store (n 0..8). */
static inline __m256i lane_mask(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

/* Row r of the epilogue: v0, v1 (columns 0-7, 8-15) combined with C, bias and Z, stored. */
static inline __attribute__((always_inline)) void row_out(__m256 v0, __m256 v1, float *cr, int flags,
                                                          const float *bias, const float *zr, bool full, __m256i m0,
                                                          __m256i m1, float lo, float hi) {
    if (!(flags & MIXRT_SG_FIRST)) {
        v0 = _mm256_add_ps(full ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m0), v0);
        v1 = _mm256_add_ps(full ? _mm256_loadu_ps(cr + 8) : _mm256_maskload_ps(cr + 8, m1), v1);
    }
    if (flags & MIXRT_SG_LAST) {
        if (bias) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias + 8));
        }
        if (zr) {
            v0 = _mm256_add_ps(v0, full ? _mm256_loadu_ps(zr) : _mm256_maskload_ps(zr, m0));
            v1 = _mm256_add_ps(v1, full ? _mm256_loadu_ps(zr + 8) : _mm256_maskload_ps(zr + 8, m1));
        }
        if (flags & MIXRT_SG_RELU) {
            const __m256 zero = _mm256_setzero_ps();
            v0 = _mm256_andnot_ps(_mm256_cmp_ps(v0, zero, _CMP_LT_OQ), v0);
            v1 = _mm256_andnot_ps(_mm256_cmp_ps(v1, zero, _CMP_LT_OQ), v1);
        }
        if (flags & MIXRT_SG_CLIP) {
            const __m256 l = _mm256_set1_ps(lo), h = _mm256_set1_ps(hi);
            v0 = _mm256_blendv_ps(v0, l, _mm256_cmp_ps(v0, l, _CMP_LT_OQ));
            v1 = _mm256_blendv_ps(v1, l, _mm256_cmp_ps(v1, l, _CMP_LT_OQ));
            v0 = _mm256_blendv_ps(v0, h, _mm256_cmp_ps(v0, h, _CMP_GT_OQ));
            v1 = _mm256_blendv_ps(v1, h, _mm256_cmp_ps(v1, h, _CMP_GT_OQ));
        }
    }
    if (full) {
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
    } else {
        _mm256_maskstore_ps(cr, m0, v0);
        _mm256_maskstore_ps(cr + 8, m1, v1);
    }
}

/* The accumulators are named variables (an array indexed in unrolled loops was kept on the
 * stack by gcc 12, a store per fma: 27 GFLOP/s against 90). */
#define SG_ROW_FMA(r)                                                                                                  \
    if (MR > r) {                                                                                                      \
        const __m256 av = _mm256_broadcast_ss(a##r + k);                                                               \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                                                                    \
        c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                                                                    \
    }
#define SG_ROW_OUT(r)                                                                                                  \
    if (MR > r)                                                                                                        \
        row_out(c##r##0, c##r##1, c + (size_t)r * ldc, flags, bias, z ? z + (size_t)r * ldz : NULL, full, m0, m1, lo,  \
                hi);

static inline __attribute__((always_inline)) void tile(const int MR, int nr, size_t kc, const float *const *a,
                                                       const float *bp, float *c, size_t ldc, int flags,
                                                       const float *bias, const float *z, size_t ldz, float lo,
                                                       float hi) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    /* rows past MR alias row 0: never read (the macros test MR) */
    const float *a0 = a[0], *a1 = MR > 1 ? a[1] : a0, *a2 = MR > 2 ? a[2] : a0, *a3 = MR > 3 ? a[3] : a0,
                *a4 = MR > 4 ? a[4] : a0, *a5 = MR > 5 ? a[5] : a0;
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(bp + 16 * k), b1 = _mm256_loadu_ps(bp + 16 * k + 8);
        SG_ROW_FMA(0)
        SG_ROW_FMA(1)
        SG_ROW_FMA(2)
        SG_ROW_FMA(3)
        SG_ROW_FMA(4)
        SG_ROW_FMA(5)
    }
    const bool full = nr == MIXRT_SG_NR;
    /* a panel past the last full one: masked loads and stores of its nr columns */
    const __m256i m0 = lane_mask(nr < 8 ? nr : 8), m1 = lane_mask(nr > 8 ? nr - 8 : 0);
    SG_ROW_OUT(0)
    SG_ROW_OUT(1)
    SG_ROW_OUT(2)
    SG_ROW_OUT(3)
    SG_ROW_OUT(4)
    SG_ROW_OUT(5)
}

void mixrt_sg_tile_avx2(int mr, int nr, size_t kc, const float *const *a, const float *bp, size_t ps, float *c,
                        size_t ldc, int flags, const float *bias, const float *z, size_t ldz, float lo, float hi) {
    (void)ps; /* one panel */
    switch (mr) {
    case 6: tile(6, nr, kc, a, bp, c, ldc, flags, bias, z, ldz, lo, hi); break;
    case 5: tile(5, nr, kc, a, bp, c, ldc, flags, bias, z, ldz, lo, hi); break;
    case 4: tile(4, nr, kc, a, bp, c, ldc, flags, bias, z, ldz, lo, hi); break;
    case 3: tile(3, nr, kc, a, bp, c, ldc, flags, bias, z, ldz, lo, hi); break;
    case 2: tile(2, nr, kc, a, bp, c, ldc, flags, bias, z, ldz, lo, hi); break;
    default: tile(1, nr, kc, a, bp, c, ldc, flags, bias, z, ldz, lo, hi); break;
    }
}
#endif
