/* nnops_avx512.c - the AVX-512 twins of the nn-op primitives in nnops.c (block sums, max,
 * exp). Tails are masked, never scalar; sums keep 4x16 lane accumulators and add them in a
 * fixed tree, so a block's error is O(n/64 + 6) ulps. Compiled with AVX-512 flags; reached
 * only through mixrt_nnops_isa() after its CPUID check. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu/nnops_impl.h"
#include "core/vec_avx512.h"

static inline __mmask16 tail_mask(size_t k) { return (__mmask16)((1u << k) - 1u); }

static float sum_avx512(const float *x, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
    if (i < n) a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static float sumsq_dev_avx512(const float *x, size_t n, float mean) {
    __m512 m = _mm512_set1_ps(mean), a0 = _mm512_setzero_ps(), a1 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), m), d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), m);
        a0 = _mm512_fmadd_ps(d0, d0, a0);
        a1 = _mm512_fmadd_ps(d1, d1, a1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), m);
        a0 = _mm512_fmadd_ps(d, d, a0);
    }
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), m);
        a1 = _mm512_fmadd_ps(d, d, a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static float max_avx512(const float *x, size_t n) {
    __m512 a = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) a = mixrt_v512_max_nan(a, _mm512_loadu_ps(x + i));
    if (i < n) a = mixrt_v512_max_nan(a, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - i), x + i));
    if (_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q)) return NAN;
    return _mm512_reduce_max_ps(a);
}

static void vmax_avx512(float *acc, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(acc + i, mixrt_v512_max_nan(_mm512_loadu_ps(acc + i), _mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(acc + i, k,
                              mixrt_v512_max_nan(_mm512_maskz_loadu_ps(k, acc + i), _mm512_maskz_loadu_ps(k, x + i)));
    }
}

/* exp(x) = 2^j * exp(r), j = round(x / ln2), r = x - j ln2 in [-ln2/2, ln2/2] (ln2 split in
 * two, the high part short, so j * hi is exact); exp(r) by its Taylor series to r^7 (truncation < 6e-9
 * relative, below f32's half ulp), scaled by vscalefps, which also gives 0 and inf at the
 * ends. x is clamped first so j stays small; NaN lanes are passed through. */
static inline __m512 exp_ps(__m512 x) {
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-110.0f)), _mm512_set1_ps(100.0f));
    __m512 j = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(j, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(j, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_mask_mov_ps(_mm512_scalef_ps(p, j), nan, x);
}

static void exp_avx512(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp_ps(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, exp_ps(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

/* Four rows at a time share each load of x; the tail of a row is masked. */
static void gemv_avx512(const float *w, size_t rows, size_t n, const float *x, float *y) {
    size_t r = 0;
    __mmask16 tk = tail_mask(n & 15);
    size_t nv = n & ~(size_t)15;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < nv; i += 16) {
            __m512 xv = _mm512_loadu_ps(x + i);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + i), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + i), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + i), xv, a3);
        }
        if (nv < n) {
            __m512 xv = _mm512_maskz_loadu_ps(tk, x + nv);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, w0 + nv), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, w1 + nv), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, w2 + nv), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, w3 + nv), xv, a3);
        }
        y[r] = _mm512_reduce_add_ps(a0);
        y[r + 1] = _mm512_reduce_add_ps(a1);
        y[r + 2] = _mm512_reduce_add_ps(a2);
        y[r + 3] = _mm512_reduce_add_ps(a3);
    }
    for (; r < rows; r++) {
        const float *w0 = w + r * n;
        __m512 a0 = _mm512_setzero_ps();
        for (size_t i = 0; i < nv; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), _mm512_loadu_ps(x + i), a0);
        if (nv < n) a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, w0 + nv), _mm512_maskz_loadu_ps(tk, x + nv), a0);
        y[r] = _mm512_reduce_add_ps(a0);
    }
}

static inline __m512 sq(__m512 d) { return _mm512_mul_ps(d, d); }

static inline __m512 col_load(const void *x, bool bf, size_t at, __mmask16 m) {
    if (!bf) return _mm512_maskz_loadu_ps(m, (const float *)x + at);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)x + at);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Blocks of 64 columns in four register accumulators, rows in blocks of MIXRT_NNOPS_BLOCK. */
static void colsum_avx512(float *acc, const void *x, bool bf, size_t rows, size_t ld, size_t n) {
    /* Dense rows of 8, 16 or 32 columns: 64 / n rows read as one of 64 (no masked-off lanes),
     * the lanes of a column folded at the end. */
    if (ld == n && n < 64 && 64 % n == 0 && rows * n >= 64) {
        const size_t per = 64 / n, wide = rows / per;
        float t[64] = {0};
        colsum_avx512(t, x, bf, wide, 64, 64);
        for (size_t c = 0; c < 64; c++) acc[c % n] += t[c];
        x = (const char *)x + wide * 64 * (bf ? 2 : 4);
        rows -= wide * per;
    }
    for (size_t j0 = 0; j0 < n; j0 += 64) {
        __mmask16 m[4];
        for (int v = 0; v < 4; v++) {
            size_t at = j0 + 16 * (size_t)v;
            m[v] = at >= n ? 0 : n - at >= 16 ? (__mmask16)0xffff : tail_mask(n - at);
        }
        for (size_t r0 = 0; r0 < rows; r0 += MIXRT_NNOPS_BLOCK) {
            size_t r1 = rows - r0 < MIXRT_NNOPS_BLOCK ? rows : r0 + MIXRT_NNOPS_BLOCK;
            __m512 p0 = _mm512_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
            for (size_t r = r0; r < r1; r++) {
                size_t at = r * ld + j0;
                p0 = _mm512_add_ps(p0, col_load(x, bf, at, m[0]));
                p1 = _mm512_add_ps(p1, col_load(x, bf, at + 16, m[1]));
                p2 = _mm512_add_ps(p2, col_load(x, bf, at + 32, m[2]));
                p3 = _mm512_add_ps(p3, col_load(x, bf, at + 48, m[3]));
            }
            const __m512 p[4] = {p0, p1, p2, p3};
            for (int v = 0; v < 4; v++)
                if (m[v]) {
                    float *a = acc + j0 + 16 * (size_t)v;
                    _mm512_mask_storeu_ps(a, m[v], _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], a), p[v]));
                }
        }
    }
}

/* The scalar twin's sums lane by lane (a lane a channel, rows in order, the same sub, mul and
 * add: no fma), four vectors of 16 channels; masked lanes load zeros and are not stored. */
static void in_partial_avx512(const void *x, bool bf, size_t C, size_t c0, size_t nc, size_t s0, size_t s1,
                              const float *center, const float *lo, bool square, double *out) {
    __mmask16 m[4];
    __m512 ct[4], lv[4];
    __m512d acc[8];
    for (int v = 0; v < 4; v++) {
        size_t at = 16 * (size_t)v;
        m[v] = at >= nc ? 0 : nc - at >= 16 ? (__mmask16)0xffff : tail_mask(nc - at);
        ct[v] = _mm512_maskz_loadu_ps(m[v], center + at);
        lv[v] = square ? _mm512_maskz_loadu_ps(m[v], lo + at) : _mm512_setzero_ps();
        acc[2 * v] = acc[2 * v + 1] = _mm512_setzero_pd();
    }
    const int nv = (int)((nc + 15) / 16);
    for (size_t s = s0; s < s1; s += MIXRT_NNOPS_IN_ROWS) {
        size_t se = s + MIXRT_NNOPS_IN_ROWS < s1 ? s + MIXRT_NNOPS_IN_ROWS : s1;
        __m512 b0 = _mm512_setzero_ps(), b1 = b0, b2 = b0, b3 = b0;
#define IN_ROWS(OP)                                                                                                    \
    for (size_t r = s; r < se; r++) {                                                                                  \
        const size_t at = r * C + c0;                                                                                  \
        b0 = OP(b0, col_load(x, bf, at, m[0]), 0);                                                                     \
        if (nv > 1) b1 = OP(b1, col_load(x, bf, at + 16, m[1]), 1);                                                    \
        if (nv > 2) b2 = OP(b2, col_load(x, bf, at + 32, m[2]), 2);                                                    \
        if (nv > 3) b3 = OP(b3, col_load(x, bf, at + 48, m[3]), 3);                                                    \
    }
#define IN_SUM(b, v, i) _mm512_add_ps((b), _mm512_sub_ps((v), ct[i]))
#define IN_SQ(b, v, i) _mm512_add_ps((b), sq(_mm512_sub_ps(_mm512_sub_ps((v), ct[i]), lv[i])))
        if (!square) {
            IN_ROWS(IN_SUM)
        } else {
            IN_ROWS(IN_SQ)
        }
#undef IN_ROWS
#undef IN_SUM
#undef IN_SQ
        const __m512 b[4] = {b0, b1, b2, b3};
        for (int v = 0; v < nv; v++) {
            acc[2 * v] = _mm512_add_pd(acc[2 * v], _mm512_cvtps_pd(_mm512_castps512_ps256(b[v])));
            acc[2 * v + 1] = _mm512_add_pd(
                acc[2 * v + 1], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b[v]), 1))));
        }
    }
    for (int v = 0; v < nv; v++) {
        size_t at = 16 * (size_t)v;
        __mmask8 lo8 = (__mmask8)(m[v] & 0xff), hi8 = (__mmask8)(m[v] >> 8);
        _mm512_mask_storeu_pd(out + at, lo8, acc[2 * v]);
        _mm512_mask_storeu_pd(out + at + 8, hi8, acc[2 * v + 1]);
    }
}

static void in_norm_row_avx512(const void *x, bool bf, size_t C, const float *mean, const float *mlo, const float *a,
                               const float *b, float *y) {
    for (size_t j = 0; j < C; j += 16) {
        const __mmask16 m = C - j >= 16 ? (__mmask16)0xffff : tail_mask(C - j);
        __m512 v = _mm512_sub_ps(col_load(x, bf, j, m), _mm512_maskz_loadu_ps(m, mean + j));
        v = _mm512_sub_ps(v, _mm512_maskz_loadu_ps(m, mlo + j));
        v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, a + j)), _mm512_maskz_loadu_ps(m, b + j));
        _mm512_mask_storeu_ps(y + j, m, v);
    }
}

/* 16 values of x from element j, f32 or bf16 widened (the lanes past m zero). */
static inline __m512 load16(const void *x, bool bf, size_t j, __mmask16 m) {
    if (bf)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)x + j)), 16));
    return _mm512_maskz_loadu_ps(m, (const float *)x + j);
}

/* bf16 bits to keys that order as the values do, as int16 (negative values' magnitude bits
 * flipped; -0 below +0), and back: the same function. */
static inline __m512i bf16_key(__m512i x) {
    /* x ^ (sign-fill & 0x7FFF) in one ternary op (0x78: a ^ (b & c)) */
    return _mm512_ternarylogic_epi32(x, _mm512_srai_epi16(x, 15), _mm512_set1_epi16(0x7FFF), 0x78);
}

/* The bf16 row as int16, 32 values a vector, no widening; false (nothing written to y) when
 * the rows do not qualify, and the next path takes the row. keyed false: the raw bits, when no
 * value has the sign bit set (after a ReLU): they order as int16 as the values do, a NaN (bits
 * above +inf's) included; one OR a vector watches the signs, and signed data leaves at its
 * first vector. keyed true: keys, when no value is NaN (the f32 path keeps NaN's rule). */
static inline __attribute__((always_inline)) bool maxpool_row_i16(const void *const *rows, int nrows, size_t W,
                                                                  size_t C, const int64_t *c0, const int64_t *c1,
                                                                  size_t OW, int16_t *tmp, uint16_t *y, bool keyed) {
    const size_t n = W * C;
    /* keys of NaNs: above +inf's (0x7F80), or below -inf's (0x807F as int16) */
    const __m512i kinf = _mm512_set1_epi16(0x7F80), kninf = _mm512_set1_epi16((int16_t)0x807F);
    __mmask32 nan = 0;
    __m512i sign = _mm512_setzero_si512();
    for (size_t j = 0; j < n; j += 32) {
        const __mmask32 m = n - j >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (n - j)) - 1u);
        __m512i acc = _mm512_setzero_si512(), lo = acc;
        for (int r = 0; r < nrows; r++) {
            __m512i x = _mm512_maskz_loadu_epi16(m, (const uint16_t *)rows[r] + j);
            if (keyed) {
                x = bf16_key(x);
                lo = r ? _mm512_min_epi16(lo, x) : x;
            } else {
                sign = _mm512_or_si512(sign, x);
            }
            acc = r ? _mm512_max_epi16(acc, x) : x;
        }
        if (keyed)
            nan |= _mm512_cmpgt_epi16_mask(acc, kinf) | _mm512_cmplt_epi16_mask(lo, kninf);
        else if (_mm512_movepi16_mask(sign))
            return false;
        _mm512_mask_storeu_epi16(tmp + j, m, acc);
    }
    if (nan) return false;
    for (size_t o = 0; o < OW; o++) {
        const int16_t *t0 = tmp + (size_t)c0[o] * C;
        const int64_t taps = c1[o] - c0[o];
        for (size_t c = 0; c < C; c += 32) {
            const __mmask32 m = C - c >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (C - c)) - 1u);
            __m512i acc = _mm512_maskz_loadu_epi16(m, t0 + c);
            for (int64_t t = 1; t < taps; t++)
                acc = _mm512_max_epi16(acc, _mm512_maskz_loadu_epi16(m, t0 + (size_t)t * C + c));
            _mm512_mask_storeu_epi16(y + o * C + c, m, keyed ? bf16_key(acc) : acc);
        }
    }
    return true;
}

/* The channels-last max pool's row (nnops_impl.h): bf16 on its raw bits when no value is
 * negative, on keys when no NaN is in the rows, else (and f32) rows folded into tmp in f32, then the columns' taps, 16 channels at a time;
 * bf16 leaves as its top half (exact: a bf16 value widened). */
static void maxpool_row_avx512(const void *const *rows, int nrows, bool bf, size_t W, size_t C, const int64_t *c0,
                               const int64_t *c1, size_t OW, float *tmp, void *y) {
    if (bf && (maxpool_row_i16(rows, nrows, W, C, c0, c1, OW, (int16_t *)tmp, (uint16_t *)y, false) ||
               maxpool_row_i16(rows, nrows, W, C, c0, c1, OW, (int16_t *)tmp, (uint16_t *)y, true)))
        return;
    const size_t n = W * C;
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : tail_mask(n - j);
        __m512 acc = load16(rows[0], bf, j, m);
        for (int r = 1; r < nrows; r++) acc = mixrt_v512_max_nan(acc, load16(rows[r], bf, j, m));
        _mm512_mask_storeu_ps(tmp + j, m, acc);
    }
    for (size_t o = 0; o < OW; o++) {
        const float *t0 = tmp + (size_t)c0[o] * C;
        const int64_t taps = c1[o] - c0[o];
        for (size_t c = 0; c < C; c += 16) {
            const __mmask16 m = C - c >= 16 ? (__mmask16)0xFFFF : tail_mask(C - c);
            __m512 acc = _mm512_maskz_loadu_ps(m, t0 + c);
            for (int64_t t = 1; t < taps; t++) acc = mixrt_v512_max_nan(acc, _mm512_maskz_loadu_ps(m, t0 + (size_t)t * C + c));
            if (bf)
                _mm256_mask_storeu_epi16((uint16_t *)y + o * C + c, m,
                                         _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(acc), 16)));
            else
                _mm512_mask_storeu_ps((float *)y + o * C + c, m, acc);
        }
    }
}

const struct mixrt_nnops_isa mixrt_nnops_isa_avx512 = {"avx512",          sum_avx512,        sumsq_dev_avx512,
                                                       max_avx512,        exp_avx512,        vmax_avx512,
                                                       gemv_avx512,       colsum_avx512,     in_partial_avx512,
                                                       in_norm_row_avx512, maxpool_row_avx512};
#else
typedef int mixrt_nnops_avx512_unused; /* ISO C: a translation unit needs a declaration */
#endif
