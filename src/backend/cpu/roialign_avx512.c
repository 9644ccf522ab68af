/* roialign_avx512.c - the AVX-512 twins of roialign.c's loops: one bin's taps over a block of up
 * to 64 channels (the last of its vectors masked), avg summing each corner into its own
 * accumulators (four independent FMA chains a vector, so the FMA latency does not bound a bin of
 * few samples) and adding them at the end; max keeping C's fmaxf rule (a NaN operand loses), which
 * vmaxps alone does not; and 16x16 in-register transposes for the map's and the output's layouts. */
#include "backend/cpu/roialign_impl.h"

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>
#include <math.h>

#define ROI_ALWAYS_INLINE static inline __attribute__((always_inline))

/* fmaxf(a, b) lane by lane: vmaxps returns b when either is NaN; a NaN b must give a. */
ROI_ALWAYS_INLINE __m512 fmax16(__m512 a, __m512 b) {
    return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), a);
}

/* Vector v of NV (the last one masked by ml). */
ROI_ALWAYS_INLINE __m512 ld(const float *p, int v, int NV, __mmask16 ml) {
    return v == NV - 1 ? _mm512_maskz_loadu_ps(ml, p + 16 * v) : _mm512_loadu_ps(p + 16 * v);
}

ROI_ALWAYS_INLINE void st(float *p, int v, int NV, __mmask16 ml, __m512 x) {
    if (v == NV - 1)
        _mm512_mask_storeu_ps(p + 16 * v, ml, x);
    else
        _mm512_storeu_ps(p + 16 * v, x);
}

ROI_ALWAYS_INLINE void avg_cols(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, float *acc,
                                int64_t as, const int NV, __mmask16 ml, int flags, bool pow2, float count) {
    /* a power of two's reciprocal is exact: the multiply rounds as the divide does */
    const __m512 vc = _mm512_set1_ps(pow2 ? 1.0f / count : count);
    for (int64_t b = 0; b < nb; b++, acc += as) {
        __m512 s[4][4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) s[t][v] = _mm512_setzero_ps();
        for (int64_t j = 0; j < ns; j++, tp++)
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                const float *p = img + tp->off[t];
                const __m512 wv = _mm512_set1_ps(tp->w[t]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) s[t][v] = _mm512_fmadd_ps(wv, ld(p, v, NV, ml), s[t][v]);
            }
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m512 a = _mm512_add_ps(_mm512_add_ps(s[0][v], s[1][v]), _mm512_add_ps(s[2][v], s[3][v]));
            if (!(flags & MIXRT_ROI_FIRST)) a = _mm512_add_ps(ld(acc, v, NV, ml), a);
            if (flags & MIXRT_ROI_LAST) a = pow2 ? _mm512_mul_ps(a, vc) : _mm512_div_ps(a, vc);
            st(acc, v, NV, ml, a);
        }
    }
}

ROI_ALWAYS_INLINE void max_cols(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, float *acc,
                                int64_t as, const int NV, __mmask16 ml, int flags) {
    for (int64_t b = 0; b < nb; b++, acc += as) {
        __m512 a[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) a[v] = flags & MIXRT_ROI_FIRST ? _mm512_setzero_ps() : ld(acc, v, NV, ml);
        for (int64_t s = 0; s < ns; s++, tp++) {
            const float *p1 = img + tp->off[0], *p2 = img + tp->off[1], *p3 = img + tp->off[2], *p4 = img + tp->off[3];
            const __m512 w1 = _mm512_set1_ps(tp->w[0]), w2 = _mm512_set1_ps(tp->w[1]), w3 = _mm512_set1_ps(tp->w[2]),
                         w4 = _mm512_set1_ps(tp->w[3]);
            const bool set = s == 0 && (flags & MIXRT_ROI_FIRST);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                __m512 m = fmax16(fmax16(_mm512_mul_ps(w1, ld(p1, v, NV, ml)), _mm512_mul_ps(w2, ld(p2, v, NV, ml))),
                                  fmax16(_mm512_mul_ps(w3, ld(p3, v, NV, ml)), _mm512_mul_ps(w4, ld(p4, v, NV, ml))));
                a[v] = set ? m : fmax16(a[v], m);
            }
        }
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) st(acc, v, NV, ml, a[v]);
    }
}

/* C (<= 64) channels as vectors: how many, and the last one's mask. */
static __mmask16 tail(int64_t C, int *nv) {
    *nv = (int)((C + 15) / 16);
    return C % 16 ? (__mmask16)((1u << (C % 16)) - 1u) : (__mmask16)0xffff;
}

void mixrt_roi_avg_avx512(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, int64_t C,
                          float *acc, int64_t as, int flags, float count) {
    int e, nv;
    const bool pow2 = frexpf(count, &e) == 0.5f;
    const __mmask16 ml = tail(C, &nv);
    switch (nv) {
    case 1:
        avg_cols(img, tp, ns, nb, acc, as, 1, ml, flags, pow2, count);
        break;
    case 2:
        avg_cols(img, tp, ns, nb, acc, as, 2, ml, flags, pow2, count);
        break;
    case 3:
        avg_cols(img, tp, ns, nb, acc, as, 3, ml, flags, pow2, count);
        break;
    default:
        avg_cols(img, tp, ns, nb, acc, as, 4, ml, flags, pow2, count);
        break;
    }
}

void mixrt_roi_max_avx512(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, int64_t C,
                          float *acc, int64_t as, int flags) {
    int nv;
    const __mmask16 ml = tail(C, &nv);
    switch (nv) {
    case 1:
        max_cols(img, tp, ns, nb, acc, as, 1, ml, flags);
        break;
    case 2:
        max_cols(img, tp, ns, nb, acc, as, 2, ml, flags);
        break;
    case 3:
        max_cols(img, tp, ns, nb, acc, as, 3, ml, flags);
        break;
    default:
        max_cols(img, tp, ns, nb, acc, as, 4, ml, flags);
        break;
    }
}

/* r[i] row i of a 16x16 tile in, column i out: unpacks within 128-bit lanes, then lane shuffles. */
ROI_ALWAYS_INLINE void tr16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) { /* r[4g + m], lane k: rows 4g..4g+3 at column 4k + m */
        const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]),
                      c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
        r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        const __m512 lo02 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88),
                     lo13 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xdd),
                     hi02 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88),
                     hi13 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xdd);
        t[m] = _mm512_shuffle_f32x4(lo02, hi02, 0x88);      /* column m */
        t[8 + m] = _mm512_shuffle_f32x4(lo02, hi02, 0xdd);  /* column 8 + m */
        t[4 + m] = _mm512_shuffle_f32x4(lo13, hi13, 0x88);  /* column 4 + m */
        t[12 + m] = _mm512_shuffle_f32x4(lo13, hi13, 0xdd); /* column 12 + m */
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

void mixrt_roi_transpose_avx512(const float *src, int64_t ss, int64_t rows, int64_t cols, float *dst, int64_t ds) {
    for (int64_t j0 = 0; j0 < rows; j0 += 16) {
        const int64_t nr = rows - j0 < 16 ? rows - j0 : 16;
        const __mmask16 mr = nr == 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            const int64_t nc = cols - c0 < 16 ? cols - c0 : 16;
            const __mmask16 mc = nc == 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1u);
            __m512 r[16];
            /* rows past the last: a zero mask on row 0's address */
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_maskz_loadu_ps(i < nr ? mc : 0,
                                             src + (size_t)(j0 + (i < nr ? i : 0)) * (size_t)ss + (size_t)c0);
            tr16(r);
            if (nc == 16) {
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    _mm512_mask_storeu_ps(dst + (size_t)(c0 + i) * (size_t)ds + (size_t)j0, mr, r[i]);
            } else {
                for (int i = 0; i < nc; i++)
                    _mm512_mask_storeu_ps(dst + (size_t)(c0 + i) * (size_t)ds + (size_t)j0, mr, r[i]);
            }
        }
    }
}

void mixrt_roi_stream_avx512(float *dst, const float *src, size_t n) {
    size_t i = 0;
    const size_t head = (64 - ((uintptr_t)dst & 63)) / 4 % 16;
    if (((uintptr_t)dst & 3) == 0 && head) {
        const size_t h = head < n ? head : n;
        _mm512_mask_storeu_ps(dst, (__mmask16)((1u << h) - 1u),
                              _mm512_maskz_loadu_ps((__mmask16)((1u << h) - 1u), src));
        i = h;
    }
    if (((uintptr_t)(dst + i) & 63) == 0)
        for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
    }
}

void mixrt_roi_fence_avx512(void) { _mm_sfence(); }
#else
typedef int mixrt_roialign_avx512_unused; /* ISO C: a translation unit needs a declaration */
#endif
