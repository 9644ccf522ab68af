/* resize_avx512.c - the AVX-512 twins of resize.c's two row passes: the vertical blend 16
 * columns at a time (bf16 widened by a shift, f16 by vcvtph2ps), and the horizontal taps of 16
 * output columns picked from a 32-float window of the blended row with two permutes (gathers
 * only for strong downscales); channels-last, each output pixel's C channels from two input
 * pixels' in 16-lane steps. Tails are masked. */
#include "backend/cpu/resize_impl.h"

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

static inline __m512 load16(mixrt_dtype dt, const void *x, int64_t j, __mmask16 m) {
    if (dt == MIXRT_DTYPE_F32) return _mm512_maskz_loadu_ps(m, (const float *)x + j);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)x + j);
    if (dt == MIXRT_DTYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

void mixrt_rz_vpass_avx512(mixrt_dtype dt, const void *xa, const void *xb, float wa, float wb, float *t,
                           float *scratch, int64_t n) {
    (void)scratch;
    const __m512 va = _mm512_set1_ps(wa), vb = _mm512_set1_ps(wb);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1u);
        __m512 y = _mm512_mul_ps(va, load16(dt, xa, j, m));
        if (xb) y = _mm512_fmadd_ps(vb, load16(dt, xb, j, m), y);
        _mm512_mask_storeu_ps(t + j, m, y);
    }
}

void mixrt_rz_hpass_avx512(const struct mixrt_rz_cols *c, const float *t, float *y) {
    for (int64_t b = 0; b < c->blocks; b++) {
        const int64_t w = b * 16;
        __mmask16 m = c->n - w >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (c->n - w)) - 1u);
        __m512 v0, v1;
        if (c->base[b] >= 0) {
            const float *s = t + c->base[b];
            __m512 lo = _mm512_loadu_ps(s), hi = _mm512_loadu_ps(s + 16);
            v0 = _mm512_permutex2var_ps(lo, _mm512_loadu_si512((const void *)(c->r0 + w)), hi);
            v1 = _mm512_permutex2var_ps(lo, _mm512_loadu_si512((const void *)(c->r1 + w)), hi);
        } else {
            v0 = _mm512_i32gather_ps(_mm512_loadu_si512((const void *)(c->i0 + w)), t, 4);
            v1 = _mm512_i32gather_ps(_mm512_loadu_si512((const void *)(c->i1 + w)), t, 4);
        }
        __m512 a = _mm512_mul_ps(_mm512_loadu_ps(c->w0 + w), v0);
        a = _mm512_mask_mov_ps(a, (__mmask16)c->two[b], _mm512_fmadd_ps(_mm512_loadu_ps(c->w1 + w), v1, a));
        _mm512_mask_storeu_ps(y + w, m, a);
    }
}
void mixrt_rz_hpass_nhwc_avx512(const struct mixrt_rz_cols *c, int64_t C, const float *t, float *y) {
    for (int64_t w = 0; w < c->n; w++) {
        const float *a = t + (size_t)c->i0[w] * (size_t)C, *b = t + (size_t)c->i1[w] * (size_t)C;
        float *yw = y + (size_t)w * (size_t)C;
        const __m512 v0 = _mm512_set1_ps(c->w0[w]), v1 = _mm512_set1_ps(c->w1[w]);
        const bool two = c->two[w / 16] >> (w % 16) & 1;
        for (int64_t j = 0; j < C; j += 16) {
            __mmask16 m = C - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (C - j)) - 1u);
            __m512 v = _mm512_mul_ps(v0, _mm512_maskz_loadu_ps(m, a + j));
            if (two) v = _mm512_fmadd_ps(v1, _mm512_maskz_loadu_ps(m, b + j), v);
            _mm512_mask_storeu_ps(yw + j, m, v);
        }
    }
}

void mixrt_rz_vtaps_avx512(mixrt_dtype dt, const void *const *rows, const float *wts, int cnt, float *t,
                           float *scratch, int64_t n) {
    (void)scratch;
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1u);
        __m512 y = _mm512_mul_ps(_mm512_set1_ps(wts[0]), load16(dt, rows[0], j, m));
        for (int k = 1; k < cnt; k++) y = _mm512_fmadd_ps(_mm512_set1_ps(wts[k]), load16(dt, rows[k], j, m), y);
        _mm512_mask_storeu_ps(t + j, m, y);
    }
}

void mixrt_rz_htaps_avx512(const struct mixrt_rz_taps_cols *c, const float *t, float *y) {
    for (int64_t b = 0; b < c->blocks; b++) {
        const int64_t w = b * 16;
        __mmask16 m = c->n - w >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (c->n - w)) - 1u);
        __m512 a = _mm512_setzero_ps();
        for (int j = 0; j < c->T; j++) {
            const __mmask16 on = (__mmask16)c->mask[(size_t)j * (size_t)c->blocks + (size_t)b];
            const size_t o = (size_t)j * (size_t)c->np + (size_t)w;
            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), on, _mm512_loadu_si512((const void *)(c->idx + o)),
                                                t, 4);
            a = _mm512_mask3_fmadd_ps(_mm512_loadu_ps(c->w + o), v, a, on);
        }
        _mm512_mask_storeu_ps(y + w, m, a);
    }
}
#else
typedef int mixrt_resize_avx512_unused; /* ISO C: a translation unit needs a declaration */
#endif
