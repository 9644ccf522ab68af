/* dwconv_avx512.c - the AVX-512 row kernel of the depthwise channels-last conv (dwconv.c): 3x3
 * and 5x5 at column strides 1 and 2 run blocks of 8 (4) output columns whose windows lie inside
 * the row, each input vector loaded once for every output of the block it feeds; border columns
 * and other kernels go one column at a time with their taps checked. Channel blocks of 16 are the
 * inner loop; each vector is the sum of its taps by FMA in f32, stored as f32 or rounded to bf16
 * in register. Only the channel tail is masked (no lane past C is read or written). Compiled with
 * AVX-512 flags; reached only through mixrt_dwconv_isa() after its CPUID check. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/dwconv_impl.h"

#define DW_INLINE static inline __attribute__((always_inline))

DW_INLINE __mmask16 chan_mask(int64_t left) {
    return left >= MIXRT_DWCONV_CBLK ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* 16 values (f32, or bf16 widened exactly) from element off; tail: masked, lanes off m read 0. */
DW_INLINE __m512 load_x(const void *p, int64_t off, __mmask16 m, const bool bf, const bool tail) {
    if (bf) {
        const uint16_t *q = (const uint16_t *)p + off;
        __m256i h = tail ? _mm256_maskz_loadu_epi16(m, q) : _mm256_loadu_si256((const __m256i *)q);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    const float *q = (const float *)p + off;
    return tail ? _mm512_maskz_loadu_ps(m, q) : _mm512_loadu_ps(q);
}

/* f32 -> bf16 by integer round-to-nearest-even, NaN kept quiet with its top payload: the rule of
 * mixrt_bf16_from_float, so the scalar twin and the library's conversions agree bit for bit. */
DW_INLINE __m256i to_bf16(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i bias = _mm512_add_epi32(_mm512_and_si512(hi, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x7fff));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r); /* values < 2^16: the truncation is exact */
}

/* to_bf16 by vcvtneps2bf16 (AVX512-BF16 CPUs only), which rounds the same way but reads subnormal
 * inputs as zero: those lanes (rare) take the integer rounding. */
DW_INLINE __m256i to_bf16_hw(__m512 v) {
    __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
    __m512i u = _mm512_castps_si512(v);
    __mmask16 sub = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)) &
                    _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x007fffff));
    if (__builtin_expect(sub != 0, 0)) h = _mm256_mask_blend_epi16(sub, h, to_bf16(v));
    return h;
}

/* What every output's epilogue reads, copied out of the row's operands into locals: the
 * stores go through may-alias vector types, so fields read through a pointer would be reloaded
 * after each one. */
struct dw_epi {
    const void *z;
    void *y;
    int64_t c;
    enum mixrt_dwconv_act act;
    bool y_bf16, hw_bf16; /* hw_bf16: round with vcvtneps2bf16 */
    __m512 p0, p1;
};

/* Z, the activation and the store of output column ow, channels [c, c + 16). */
DW_INLINE void finish(const struct dw_epi e, const bool bf, const bool tail, __m512 v, int64_t ow, int64_t c,
                      __mmask16 m) {
    const int64_t off = ow * e.c + c;
    if (e.z) v = _mm512_add_ps(v, load_x(e.z, off, m, bf, tail));
    switch (e.act) {
    case MIXRT_DWCONV_ACT_RELU: v = _mm512_max_ps(v, _mm512_setzero_ps()); break;
    case MIXRT_DWCONV_ACT_CLIP: /* operand order keeps NaN (max/min return the second on NaN) */
        v = _mm512_min_ps(e.p1, _mm512_max_ps(e.p0, v));
        break;
    case MIXRT_DWCONV_ACT_LEAKY: {
        __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
        v = _mm512_mask_mul_ps(v, neg, v, e.p0);
        break;
    }
    default: break;
    }
    if (e.y_bf16) {
        uint16_t *q = (uint16_t *)e.y + off;
        __m256i h = e.hw_bf16 ? to_bf16_hw(v) : to_bf16(v);
        if (tail)
            _mm256_mask_storeu_epi16(q, m, h);
        else
            _mm256_storeu_si256((__m256i *)q, h);
    } else {
        float *q = (float *)e.y + off;
        if (tail)
            _mm512_mask_storeu_ps(q, m, v);
        else
            _mm512_storeu_ps(q, v);
    }
}

/* One output row's loop invariants, in locals (see struct dw_epi); byte offsets. The window of
 * output column ow, channel c, starts at base0 + ow * ss + c * esz (before the row's start on the
 * left border: only taps inside the row form an address); kernel row kh adds (kh - kl) * rs, tap
 * kw adds kw * ts, the next input column cs. */
struct dw_loop {
    const char *x;
    const float *w, *b;
    int64_t c, kh, kw, kl, kr, w_in, sw, dw, pl;
    int64_t base0, rs, ts, ss, cs;
    struct dw_epi e;
};

/* finish for the NB outputs of a block: each decision taken once per block, not per output. */
DW_INLINE void finish_block(const struct dw_epi e, const bool bf, const bool tail, __m512 *acc, const int NB,
                            int64_t ow, int64_t c, __mmask16 m) {
    const int64_t off = ow * e.c + c;
    if (e.z) {
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) acc[j] = _mm512_add_ps(acc[j], load_x(e.z, off + j * e.c, m, bf, tail));
    }
    switch (e.act) {
    case MIXRT_DWCONV_ACT_RELU:
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) acc[j] = _mm512_max_ps(acc[j], _mm512_setzero_ps());
        break;
    case MIXRT_DWCONV_ACT_CLIP: /* operand order keeps NaN (max/min return the second on NaN) */
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) acc[j] = _mm512_min_ps(e.p1, _mm512_max_ps(e.p0, acc[j]));
        break;
    case MIXRT_DWCONV_ACT_LEAKY:
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) {
            __mmask16 neg = _mm512_cmp_ps_mask(acc[j], _mm512_setzero_ps(), _CMP_LT_OQ);
            acc[j] = _mm512_mask_mul_ps(acc[j], neg, acc[j], e.p0);
        }
        break;
    default: break;
    }
    if (e.y_bf16) {
        uint16_t *q = (uint16_t *)e.y + off;
        if (e.hw_bf16) {
#pragma GCC unroll 8
            for (int j = 0; j < NB; j++) {
                __m256i h = to_bf16_hw(acc[j]);
                if (tail)
                    _mm256_mask_storeu_epi16(q + j * e.c, m, h);
                else
                    _mm256_storeu_si256((__m256i *)(q + j * e.c), h);
            }
        } else {
#pragma GCC unroll 8
            for (int j = 0; j < NB; j++) {
                __m256i h = to_bf16(acc[j]);
                if (tail)
                    _mm256_mask_storeu_epi16(q + j * e.c, m, h);
                else
                    _mm256_storeu_si256((__m256i *)(q + j * e.c), h);
            }
        }
    } else {
        float *q = (float *)e.y + off;
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) {
            if (tail)
                _mm512_mask_storeu_ps(q + j * e.c, m, acc[j]);
            else
                _mm512_storeu_ps(q + j * e.c, acc[j]);
        }
    }
}

/* Output columns [ow, ow + NB) at channels [c, c + 16). NB 1: any kernel (KH_, KW_ 0: sizes from
 * l), border: only taps inside the row. NB > 1: the blocked path (KH_ x KW_ specialized, column
 * stride S_, every tap inside the row): each input vector is loaded once for every output of the
 * block whose window covers it, the weights held in registers. */
DW_INLINE void seg(const struct dw_loop l, const int KH_, const int KW_, const int S_, const int NB, const bool bf,
                   const bool tail, const bool border, int64_t ow, int64_t c) {
    const int64_t KH = KH_ ? KH_ : l.kh, KW = KW_ ? KW_ : l.kw;
    const __mmask16 m = chan_mask(l.c - c);
    const __m512 bias = _mm512_loadu_ps(l.b + c);
    const float *const wb = l.w + c * KH * KW; /* this block's taps, 16 floats apart */
    const int64_t base = l.base0 + ow * l.ss + c * (bf ? 2 : 4);
    if (NB == 1) {
        const int64_t iw0 = ow * l.sw - l.pl;
        /* Two chains (even and odd kernel rows) halve the FMA latency the output waits on. */
        __m512 a0 = bias, a1 = _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int64_t kh = 0; kh < KH; kh++) {
            if (kh < l.kl || kh >= l.kr) continue;
            const int64_t rb = base + (kh - l.kl) * l.rs;
#pragma GCC unroll 8
            for (int64_t kw = 0; kw < KW; kw++) {
                if (border && (iw0 + kw * l.dw < 0 || iw0 + kw * l.dw >= l.w_in)) continue;
                __m512 wt = _mm512_loadu_ps(wb + (kh * KW + kw) * MIXRT_DWCONV_CBLK);
                __m512 xv = load_x(l.x + rb + kw * l.ts, 0, m, bf, tail);
                if (kh & 1)
                    a1 = _mm512_fmadd_ps(xv, wt, a1);
                else
                    a0 = _mm512_fmadd_ps(xv, wt, a0);
            }
        }
        finish(l.e, bf, tail, _mm512_add_ps(a0, a1), ow, c, m);
        return;
    }
    const int NCOL = (NB - 1) * S_ + KW_;
    __m512 acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++) acc[j] = bias;
#pragma GCC unroll 8
    for (int kh = 0; kh < KH_; kh++) {
        if (kh < l.kl || kh >= l.kr) continue;
        __m512 wv[8];
#pragma GCC unroll 8
        for (int kw = 0; kw < KW_; kw++) wv[kw] = _mm512_loadu_ps(wb + (kh * KW_ + kw) * MIXRT_DWCONV_CBLK);
        const char *p = l.x + base + (kh - l.kl) * l.rs;
#pragma GCC unroll 32
        for (int col = 0; col < NCOL; col++, p += l.cs) {
            __m512 xv = load_x(p, 0, m, bf, tail);
#pragma GCC unroll 8
            for (int j = 0; j < NB; j++) {
                const int kw = col - j * S_;
                if (kw >= 0 && kw < KW_) acc[j] = _mm512_fmadd_ps(xv, wv[kw], acc[j]);
            }
        }
    }
    finish_block(l.e, bf, tail, acc, NB, ow, c, m);
}

/* Columns [ow, ow + NB) over every channel block: the channel loop innermost, so the taps of a
 * column block stream along contiguous channels. */
DW_INLINE void seg_all(const struct dw_loop l, const int KH_, const int KW_, const int S_, const int NB, const bool bf,
                       const bool border, int64_t ow) {
    int64_t c = 0;
    for (; c + MIXRT_DWCONV_CBLK <= l.c; c += MIXRT_DWCONV_CBLK) seg(l, KH_, KW_, S_, NB, bf, false, border, ow, c);
    if (c < l.c) seg(l, KH_, KW_, S_, NB, bf, true, border, ow, c);
}

/* Output columns a blocked step computes together. */
#define DW_BLOCK(KW_) ((KW_) <= 3 ? 8 : 4)

DW_INLINE void row_impl(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r, const int KH_,
                        const int KW_, const int S_, const bool bf) {
    const int64_t KH = KH_ ? KH_ : g->kh, C = g->c, esz = bf ? 2 : 4;
    /* Kernel rows [kl, kr) land inside the input for this output row. */
    const int64_t ih0 = r->oy * g->sh - g->pt;
    int64_t kl = 0, kr = KH;
    if (ih0 < 0) kl = (-ih0 + g->dh - 1) / g->dh;
    if (ih0 + (KH - 1) * g->dh >= g->h) kr = g->h - ih0 <= 0 ? 0 : (g->h - ih0 + g->dh - 1) / g->dh;
    if (kl > kr) kl = kr;
    const struct dw_loop l = {
        .x = r->x, .w = r->w, .b = r->b, .c = C, .kh = g->kh, .kw = g->kw, .kl = kl, .kr = kr,
        .w_in = g->w, .sw = g->sw, .dw = g->dw, .pl = g->pl,
        .base0 = ((ih0 + kl * g->dh) * g->w - g->pl) * C * esz, .rs = g->dh * g->w * C * esz,
        .ts = g->dw * C * esz, .ss = g->sw * C * esz, .cs = C * esz,
        .e = {r->z, r->y, C, r->act, r->y_bf16, r->hw_bf16, _mm512_set1_ps(r->p0), _mm512_set1_ps(r->p1)}};
    const int64_t ow_lo = g->ow_lo, ow_hi = g->ow_hi > g->ow_lo ? g->ow_hi : g->ow_lo, OW = g->ow;
    int64_t ow = 0;
    for (; ow < ow_lo; ow++) seg_all(l, KH_, KW_, S_, 1, bf, true, ow);
    if (KH_ && KW_ && S_) {
        for (; ow + DW_BLOCK(KW_) <= ow_hi; ow += DW_BLOCK(KW_)) seg_all(l, KH_, KW_, S_, DW_BLOCK(KW_), bf, false, ow);
        if (DW_BLOCK(KW_) > 4 && ow + 4 <= ow_hi) {
            seg_all(l, KH_, KW_, S_, 4, bf, false, ow);
            ow += 4;
        }
        if (ow + 2 <= ow_hi) {
            seg_all(l, KH_, KW_, S_, 2, bf, false, ow);
            ow += 2;
        }
    }
    for (; ow < ow_hi; ow++) seg_all(l, KH_, KW_, S_, 1, bf, false, ow);
    for (; ow < OW; ow++) seg_all(l, KH_, KW_, S_, 1, bf, true, ow);
}

/* The specializations for a kernel size: the blocked column path for strides 1 and 2 along the
 * row without dilation there, the one-column path otherwise. */
#define DW_SIZED(KH_, KW_)                                                                                             \
    do {                                                                                                               \
        int s_ = g->dw != 1 ? 0 : g->sw == 1 ? 1 : g->sw == 2 ? 2 : 0;                                                 \
        if (s_ == 1)                                                                                                   \
            r->bf16 ? row_impl(g, r, KH_, KW_, 1, true) : row_impl(g, r, KH_, KW_, 1, false);                         \
        else if (s_ == 2)                                                                                              \
            r->bf16 ? row_impl(g, r, KH_, KW_, 2, true) : row_impl(g, r, KH_, KW_, 2, false);                         \
        else                                                                                                           \
            r->bf16 ? row_impl(g, r, KH_, KW_, 0, true) : row_impl(g, r, KH_, KW_, 0, false);                         \
    } while (0)

static void row_avx512(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    if (g->kh == 3 && g->kw == 3)
        DW_SIZED(3, 3);
    else if (g->kh == 5 && g->kw == 5)
        DW_SIZED(5, 5);
    else if (r->bf16)
        row_impl(g, r, 0, 0, 0, true);
    else
        row_impl(g, r, 0, 0, 0, false);
}

#undef DW_SIZED

const struct mixrt_dwconv_isa mixrt_dwconv_isa_avx512 = {"avx512", row_avx512};
#endif /* __x86_64__ */
