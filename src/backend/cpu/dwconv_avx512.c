/* dwconv_avx512.c - the AVX-512 row kernel of the depthwise channels-last conv (dwconv.c): per
 * tile of output columns and block of 16 channels, the taps' weights stay in registers (3x3 and
 * 5x5 specialized) and each output vector is the sum of its taps by FMA in f32. Channel tails
 * are masked (no lane past C is read or written). Compiled with AVX-512 flags; reached only
 * through mixrt_dwconv_isa() after its CPUID check. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/dwconv_impl.h"

/* Output columns per tile: their input columns (all taps, all channels) stay in L1 while the
 * channel blocks go by. */
#define DW_TILE 8

#define DW_INLINE static inline __attribute__((always_inline))

DW_INLINE __mmask16 chan_mask(int64_t left) {
    return left >= MIXRT_DWCONV_CBLK ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* 16 values of x (f32 or bf16, widened exactly) from element off; masked lanes read as 0. */
DW_INLINE __m512 load_x(const void *p, int64_t off, __mmask16 m, const bool bf) {
    if (bf) {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + off);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    return _mm512_maskz_loadu_ps(m, (const float *)p + off);
}

/* The taps of output column ow for one channel block: acc + sum over rows [kl, kr) of the
 * kernel and, on border columns, only the kw taps inside the input row. KH_, KW_: the kernel
 * size when specialized (weights in wv), 0 for the generic loop (weights from memory). */
DW_INLINE __m512 taps(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r, const int KH_,
                      const int KW_, const bool bf, const bool border, const __m512 *wv, int64_t c, __mmask16 m,
                      int64_t ow, int64_t kl, int64_t kr, __m512 acc) {
    const int64_t KH = KH_ ? KH_ : g->kh, KW = KW_ ? KW_ : g->kw, C = g->c;
    const int64_t iw0 = ow * g->sw - g->pl, ih0 = r->oy * g->sh - g->pt;
    /* Two chains (even and odd kernel rows) halve the FMA latency each output waits on. */
    __m512 acc1 = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int64_t kh = 0; kh < KH; kh++) {
        if (kh < kl || kh >= kr) continue;
        const int64_t base = ((ih0 + kh * g->dh) * g->w) * C + c;
#pragma GCC unroll 8
        for (int64_t kw = 0; kw < KW; kw++) {
            const int64_t iw = iw0 + kw * g->dw;
            if (border && (iw < 0 || iw >= g->w)) continue;
            __m512 wt = KH_ ? wv[kh * KW + kw] : _mm512_loadu_ps(r->w + (kh * KW + kw) * g->cp + c);
            __m512 xv = load_x(r->x, base + iw * C, m, bf);
            if (kh & 1)
                acc1 = _mm512_fmadd_ps(xv, wt, acc1);
            else
                acc = _mm512_fmadd_ps(xv, wt, acc);
        }
    }
    return _mm512_add_ps(acc, acc1);
}

DW_INLINE void finish(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r, const bool bf, __m512 v,
                      int64_t ow, int64_t c, __mmask16 m) {
    const int64_t off = ow * g->c + c;
    if (r->z) v = _mm512_add_ps(v, load_x(r->z, off, m, bf));
    switch (r->act) {
    case MIXRT_DWCONV_ACT_RELU: v = _mm512_max_ps(v, _mm512_setzero_ps()); break;
    case MIXRT_DWCONV_ACT_CLIP: /* operand order keeps NaN (max/min return the second on NaN) */
        v = _mm512_min_ps(_mm512_set1_ps(r->p1), _mm512_max_ps(_mm512_set1_ps(r->p0), v));
        break;
    case MIXRT_DWCONV_ACT_LEAKY: {
        __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
        v = _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(r->p0));
        break;
    }
    default: break;
    }
    _mm512_mask_storeu_ps(r->y + off, m, v);
}

DW_INLINE void row_impl(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r, const int KH_,
                        const int KW_, const bool bf) {
    const int64_t KH = KH_ ? KH_ : g->kh, C = g->c, OW = g->ow;
    /* Kernel rows [kl, kr) land inside the input for this output row. */
    const int64_t ih0 = r->oy * g->sh - g->pt;
    int64_t kl = 0, kr = KH;
    if (ih0 < 0) kl = (-ih0 + g->dh - 1) / g->dh;
    if (ih0 + (KH - 1) * g->dh >= g->h) kr = g->h - ih0 <= 0 ? 0 : (g->h - ih0 + g->dh - 1) / g->dh;
    if (kl > KH) kl = KH;
    __m512 wv[KH_ && KW_ ? KH_ * KW_ : 1];
    for (int64_t t0 = 0; t0 < OW; t0 += DW_TILE) {
        const int64_t t1 = t0 + DW_TILE < OW ? t0 + DW_TILE : OW;
        for (int64_t c = 0; c < C; c += MIXRT_DWCONV_CBLK) {
            const __mmask16 m = chan_mask(C - c);
            if (KH_ && KW_) {
#pragma GCC unroll 32
                for (int t = 0; t < KH_ * KW_; t++) wv[t] = _mm512_loadu_ps(r->w + t * g->cp + c);
            }
            const __m512 bias = _mm512_loadu_ps(r->b + c);
            for (int64_t ow = t0; ow < t1; ow++) {
                __m512 v = ow >= g->ow_lo && ow < g->ow_hi
                               ? taps(g, r, KH_, KW_, bf, false, wv, c, m, ow, kl, kr, bias)
                               : taps(g, r, KH_, KW_, bf, true, wv, c, m, ow, kl, kr, bias);
                finish(g, r, bf, v, ow, c, m);
            }
        }
    }
}

static void row_avx512(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    if (g->kh == 3 && g->kw == 3) {
        if (r->bf16)
            row_impl(g, r, 3, 3, true);
        else
            row_impl(g, r, 3, 3, false);
    } else if (g->kh == 5 && g->kw == 5) {
        if (r->bf16)
            row_impl(g, r, 5, 5, true);
        else
            row_impl(g, r, 5, 5, false);
    } else if (r->bf16) {
        row_impl(g, r, 0, 0, true);
    } else {
        row_impl(g, r, 0, 0, false);
    }
}

const struct mixrt_dwconv_isa mixrt_dwconv_isa_avx512 = {"avx512", row_avx512};
#endif /* __x86_64__ */
