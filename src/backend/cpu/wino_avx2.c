/* wino_avx2.c - the transforms of the Winograd F(4x4, 3x3) convolution (sgemm.c's conv_wino),
 * AVX2 + FMA, 8 channels a vector (a masked tail). Compiled with -mavx2 -mfma; sgemm.c calls
 * them only where the CPU has both.
 *
 * With B^T, A^T of the points 0, +-1, +-2 (sgemm_impl.h): a 6x6 input tile d becomes
 * V = B^T d B, the 36 products M = V (.) U are summed over the input channels by the packed
 * product, and the 4x4 output tile is A^T M A. Each transform is applied down the columns, then
 * along the rows. */
#include "backend/cpu/sgemm_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

/* Lanes 0..n-1 (n 1..8). */
static inline __m256i lane_mask(int64_t n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

static inline __m256 load8(const float *p, bool full, __m256i m) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

static inline void store8(float *p, __m256 v, bool full, __m256i m) {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, m, v);
}

/* B^T applied to d0..d5: r[0..5]. */
static inline __attribute__((always_inline)) void bt6(__m256 d0, __m256 d1, __m256 d2, __m256 d3, __m256 d4,
                                                      __m256 d5, __m256 *r) {
    const __m256 c2 = _mm256_set1_ps(2.0f), c4 = _mm256_set1_ps(4.0f), c5 = _mm256_set1_ps(5.0f);
    r[0] = _mm256_fmadd_ps(c4, d0, _mm256_fnmadd_ps(c5, d2, d4));                            /* 4 d0 - 5 d2 + d4 */
    r[1] = _mm256_fnmadd_ps(c4, _mm256_add_ps(d1, d2), _mm256_add_ps(d3, d4));              /* -4 (d1 + d2) + d3 + d4 */
    r[2] = _mm256_fmadd_ps(c4, _mm256_sub_ps(d1, d2), _mm256_sub_ps(d4, d3));               /* 4 (d1 - d2) - d3 + d4 */
    r[3] = _mm256_fmadd_ps(c2, _mm256_sub_ps(d3, d1), _mm256_sub_ps(d4, d2));               /* 2 (d3 - d1) - d2 + d4 */
    r[4] = _mm256_fmadd_ps(c2, _mm256_sub_ps(d1, d3), _mm256_sub_ps(d4, d2));               /* 2 (d1 - d3) - d2 + d4 */
    r[5] = _mm256_fmadd_ps(c4, d1, _mm256_fnmadd_ps(c5, d3, d5));                            /* 4 d1 - 5 d3 + d5 */
}

/* A^T applied to m0..m5: r[0..3]. */
static inline __attribute__((always_inline)) void at6(__m256 m0, __m256 m1, __m256 m2, __m256 m3, __m256 m4,
                                                      __m256 m5, __m256 *r) {
    const __m256 a = _mm256_add_ps(m1, m2), b = _mm256_sub_ps(m1, m2), c = _mm256_add_ps(m3, m4),
                 d = _mm256_sub_ps(m3, m4);
    r[0] = _mm256_add_ps(_mm256_add_ps(m0, a), c);                                 /* m0 + m1 + m2 + m3 + m4 */
    r[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d, b);                            /* m1 - m2 + 2 (m3 - m4) */
    r[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c, a);                            /* m1 + m2 + 4 (m3 + m4) */
    r[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d, b), m5);         /* m1 - m2 + 8 (m3 - m4) + m5 */
}

void mixrt_wino_in_avx2(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v,
                        size_t ld) {
    /* which of the tile's 6 rows and columns lie inside the image (zeros outside: the pads) */
    bool rin[6], cin[6];
    for (int i = 0; i < 6; i++) rin[i] = iy0 + i >= 0 && iy0 + i < h, cin[i] = ix0 + i >= 0 && ix0 + i < w;
    for (int64_t c0 = 0; c0 < c; c0 += 8) {
        const bool full = c - c0 >= 8;
        const __m256i m = lane_mask(full ? 8 : c - c0);
        __m256 t[6][6], d[6], r[6];
        for (int j = 0; j < 6; j++) {
            for (int i = 0; i < 6; i++)
                d[i] = rin[i] && cin[j] ? load8(x + ((size_t)(iy0 + i) * (size_t)w + (size_t)(ix0 + j)) * (size_t)c +
                                                    (size_t)c0,
                                                full, m)
                                        : _mm256_setzero_ps();
            bt6(d[0], d[1], d[2], d[3], d[4], d[5], r);
            for (int i = 0; i < 6; i++) t[i][j] = r[i];
        }
        for (int i = 0; i < 6; i++) {
            bt6(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], r);
            for (int j = 0; j < 6; j++) store8(v + (size_t)(i * 6 + j) * ld + (size_t)c0, r[j], full, m);
        }
    }
}

void mixrt_wino_out_avx2(const float *mm, size_t ld, int64_t mc, const float *bias, const float *z, float *y,
                         size_t row_stride, int rows, int cols) {
    for (int64_t c0 = 0; c0 < mc; c0 += 8) {
        const bool full = mc - c0 >= 8;
        const __m256i m = lane_mask(full ? 8 : mc - c0);
        __m256 t[4][6], e[6], r[4];
        for (int j = 0; j < 6; j++) {
            for (int i = 0; i < 6; i++) e[i] = load8(mm + (size_t)(i * 6 + j) * ld + (size_t)c0, full, m);
            at6(e[0], e[1], e[2], e[3], e[4], e[5], r);
            for (int k = 0; k < 4; k++) t[k][j] = r[k];
        }
        const __m256 bv = bias ? _mm256_loadu_ps(bias + c0) : _mm256_setzero_ps(); /* bias padded to 16 */
        for (int k = 0; k < rows; k++) {
            at6(t[k][0], t[k][1], t[k][2], t[k][3], t[k][4], t[k][5], r);
            for (int l = 0; l < cols; l++) {
                const size_t at = (size_t)k * row_stride + (size_t)l * (size_t)mc + (size_t)c0;
                __m256 o = bias ? _mm256_add_ps(r[l], bv) : r[l];
                if (z) o = _mm256_add_ps(o, load8(z + at, full, m));
                store8(y + at, o, full, m);
            }
        }
    }
}
#endif
