/* wino_avx2.c - the transforms of the Winograd F(4x4, 3x3) convolution (sgemm.c's conv_wino),
 * AVX2 + FMA, 8 channels a vector (a masked tail); the body is wino_tr_impl.h's. Compiled with
 * -mavx2 -mfma; sgemm.c calls them only where the CPU has both. */
#include "backend/cpu/sgemm_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define WT_LANES 8
#define WT_V __m256
#define WT_MASK __m256i
#define WT_ADD _mm256_add_ps
#define WT_SUB _mm256_sub_ps
#define WT_FMADD _mm256_fmadd_ps
#define WT_FNMADD _mm256_fnmadd_ps
#define WT_SET1 _mm256_set1_ps
#define WT_ZERO _mm256_setzero_ps
#define WT_LOADU _mm256_loadu_ps
#define WT_IN mixrt_wino_in_avx2
#define WT_OUT mixrt_wino_out_avx2
#define WT_IN2 mixrt_wino2f_in_avx2
#define WT_OUT2 mixrt_wino2f_out_avx2

/* Lanes 0..n-1 (n 1..8). */
static inline __m256i wt_lane_mask(int64_t n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

static inline __m256 wt_load(const float *p, bool full, __m256i m) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

static inline void wt_store(float *p, __m256 v, bool full, __m256i m) {
    if (full)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, m, v);
}

#include "backend/cpu/wino_tr_impl.h"
#endif
