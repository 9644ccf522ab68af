/* nnops_avx2.c - AVX2 + FMA twins of the nn-op primitives in nnops.c (block sums, max, exp,
 * the recurrent kernels' gemv) for x86-64 CPUs without AVX-512. Tails go through a padded
 * copy (AVX2 has no masked float arithmetic); sums keep 4x8 lane accumulators added in a
 * fixed tree. Compiled with -mavx2 -mfma; reached only through mixrt_nnops_isa() after its
 * CPUID check. */
#include "backend/cpu/nnops_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/vec_avx2.h"

/* The last k < 8 elements of x as a vector, fill past them. */
static inline __m256 load_tail(const float *x, size_t k, float fill) {
    float t[8] = {fill, fill, fill, fill, fill, fill, fill, fill};
    memcpy(t, x, k * sizeof(float));
    return _mm256_loadu_ps(t);
}

static float sum_avx2(const float *x, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    if (i < n) a1 = _mm256_add_ps(a1, load_tail(x + i, n - i, 0.0f));
    return mixrt_v256_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

static float sumsq_dev_avx2(const float *x, size_t n, float mean) {
    __m256 m = _mm256_set1_ps(mean), a0 = _mm256_setzero_ps(), a1 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), m), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), m);
        a0 = _mm256_fmadd_ps(d0, d0, a0);
        a1 = _mm256_fmadd_ps(d1, d1, a1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), m);
        a0 = _mm256_fmadd_ps(d, d, a0);
    }
    if (i < n) {
        __m256 d = _mm256_sub_ps(load_tail(x + i, n - i, mean), m); /* padding lanes give 0 */
        a1 = _mm256_fmadd_ps(d, d, a1);
    }
    return mixrt_v256_hsum(_mm256_add_ps(a0, a1));
}

/* max keeping a NaN from either side: vmaxps returns its second operand when either is NaN
 * (a NaN in v), and a NaN already in acc is blended back. */
static inline __m256 max_nan(__m256 acc, __m256 v) {
    return _mm256_blendv_ps(_mm256_max_ps(acc, v), acc, _mm256_cmp_ps(acc, acc, _CMP_UNORD_Q));
}

static float max_avx2(const float *x, size_t n) {
    __m256 a = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) a = max_nan(a, _mm256_loadu_ps(x + i));
    if (i < n) a = max_nan(a, load_tail(x + i, n - i, -INFINITY));
    if (_mm256_movemask_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q))) return NAN;
    return mixrt_v256_hmax(a);
}

static void vmax_avx2(float *acc, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(acc + i, max_nan(_mm256_loadu_ps(acc + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        if (acc[i] == acc[i] && (x[i] > acc[i] || x[i] != x[i])) acc[i] = x[i];
}

static void exp_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, mixrt_v256_exp(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8];
        _mm256_storeu_ps(t, mixrt_v256_exp(load_tail(x + i, n - i, 0.0f)));
        memcpy(y + i, t, (n - i) * sizeof(float));
    }
}

/* Four rows at a time share each load of x. */
static void gemv_avx2(const float *w, size_t rows, size_t n, const float *x, float *y) {
    size_t r = 0, nv = n & ~(size_t)7;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < nv; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), xv, a3);
        }
        if (nv < n) {
            __m256 xv = load_tail(x + nv, n - nv, 0.0f);
            a0 = _mm256_fmadd_ps(load_tail(w0 + nv, n - nv, 0.0f), xv, a0);
            a1 = _mm256_fmadd_ps(load_tail(w1 + nv, n - nv, 0.0f), xv, a1);
            a2 = _mm256_fmadd_ps(load_tail(w2 + nv, n - nv, 0.0f), xv, a2);
            a3 = _mm256_fmadd_ps(load_tail(w3 + nv, n - nv, 0.0f), xv, a3);
        }
        y[r] = mixrt_v256_hsum(a0), y[r + 1] = mixrt_v256_hsum(a1), y[r + 2] = mixrt_v256_hsum(a2), y[r + 3] = mixrt_v256_hsum(a3);
    }
    for (; r < rows; r++) {
        const float *w0 = w + r * n;
        __m256 a0 = _mm256_setzero_ps();
        for (size_t i = 0; i < nv; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), _mm256_loadu_ps(x + i), a0);
        if (nv < n) a0 = _mm256_fmadd_ps(load_tail(w0 + nv, n - nv, 0.0f), load_tail(x + nv, n - nv, 0.0f), a0);
        y[r] = mixrt_v256_hsum(a0);
    }
}

const struct mixrt_nnops_isa mixrt_nnops_isa_avx2 = {"avx2",   sum_avx2,  sumsq_dev_avx2, max_avx2,
                                                     exp_avx2, vmax_avx2, gemv_avx2,
                                                     mixrt_nnops_colsum_scalar, mixrt_nnops_in_partial_scalar,
                                                     mixrt_nnops_in_norm_row_scalar, mixrt_nnops_maxpool_row_scalar};
#else
typedef int mixrt_nnops_avx2_unused; /* ISO C: a translation unit needs a declaration */
#endif
