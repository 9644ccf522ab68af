/* select_avx512.c - AVX-512 row scans of ArgMax / ArgMin / TopK on f32 (select_impl.h has the
 * semantics). ArgMax/ArgMin: 16 lanes keep their best value and index (strict compare: the
 * lane's first), then the lanes reduce with the index as tie-break; a row holding a NaN
 * goes to the scalar scan (NaN wins there). TopK with k held: 16 values at a time against
 * the k-th held one, one compare and a mask test for most of a long row. */
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/select_impl.h"

size_t mixrt_sel_arg_avx512(const float *x, size_t len, bool is_max, bool last) {
    if (len < 64) return mixrt_sel_arg_scalar(x, len, is_max, last);
    const __m512i step = _mm512_set1_epi32(16);
    __m512i cur = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), bi = cur;
    __m512 bv = _mm512_loadu_ps(x);
    __mmask16 nan = _mm512_cmp_ps_mask(bv, bv, _CMP_UNORD_Q);
    size_t j = 16;
    /* lanes hold indices below 2^31 (the caller checks len) */
    for (; j + 16 <= len; j += 16) {
        cur = _mm512_add_epi32(cur, step);
        __m512 v = _mm512_loadu_ps(x + j);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        /* strictly better (or equal, for the last index): the lane's first (last) best */
        __mmask16 m;
        if (is_max) m = last ? _mm512_cmp_ps_mask(v, bv, _CMP_GE_OQ) : _mm512_cmp_ps_mask(v, bv, _CMP_GT_OQ);
        else m = last ? _mm512_cmp_ps_mask(v, bv, _CMP_LE_OQ) : _mm512_cmp_ps_mask(v, bv, _CMP_LT_OQ);
        bv = _mm512_mask_mov_ps(bv, m, v);
        bi = _mm512_mask_mov_epi32(bi, m, cur);
    }
    if (nan) return mixrt_sel_arg_scalar(x, len, is_max, last);
    float vals[16];
    int32_t idx[16];
    _mm512_storeu_ps(vals, bv);
    _mm512_storeu_si512(idx, bi);
    size_t best = (size_t)idx[0];
    float b = vals[0];
    for (int l = 1; l < 16; l++) {
        float v = vals[l];
        bool better = is_max ? v > b : v < b;
        bool tie = v == b && (last ? (size_t)idx[l] > best : (size_t)idx[l] < best);
        if (better || tie) b = v, best = (size_t)idx[l];
    }
    for (; j < len; j++) { /* the tail, and a NaN in it */
        float v = x[j];
        if (v != v) return mixrt_sel_arg_scalar(x, len, is_max, last);
        if (is_max ? (v > b || (last && v == b)) : (v < b || (last && v == b))) b = v, best = j;
    }
    return best;
}

void mixrt_sel_topk_avx512(const float *x, size_t len, size_t k, bool largest, float *vals, int64_t *idx) {
    size_t n = 0, j = 0;
    for (; j < len && n < k; j++) mixrt_sel_insert(vals, idx, &n, k, x[j], (int64_t)j, largest);
    for (; j + 16 <= len; j += 16) {
        float w = vals[k - 1];
        /* largest with a NaN held k-th: nothing later comes before it; smallest with a NaN
         * held: every number does (the scalar test below decides) */
        if (w != w && largest) return;
        __m512 v = _mm512_loadu_ps(x + j), wv = _mm512_set1_ps(w);
        /* a candidate may come before the k-th: greater (or NaN) for largest, less (or w NaN)
         * for smallest; equal values lose (a higher index) */
        __mmask16 m = w != w ? (__mmask16)0xffff
                             : largest ? _mm512_cmp_ps_mask(v, wv, _CMP_NLE_UQ) : _mm512_cmp_ps_mask(v, wv, _CMP_LT_OQ);
        while (m) {
            int l = __builtin_ctz(m);
            m &= (__mmask16)(m - 1);
            size_t e = j + (size_t)l;
            if (mixrt_sel_before(x[e], (int64_t)e, vals[k - 1], idx[k - 1], largest))
                mixrt_sel_insert(vals, idx, &n, k, x[e], (int64_t)e, largest);
        }
    }
    for (; j < len; j++)
        if (mixrt_sel_before(x[j], (int64_t)j, vals[k - 1], idx[k - 1], largest))
            mixrt_sel_insert(vals, idx, &n, k, x[j], (int64_t)j, largest);
}
