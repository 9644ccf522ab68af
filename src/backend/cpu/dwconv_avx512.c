/* dwconv_avx512.c - the AVX-512 row kernel of the depthwise channels-last conv (dwconv.c): 3x3
 * and 5x5 at column strides 1 and 2 run blocks of 8 (4) output columns whose windows lie inside
 * the row, each input vector loaded once for every output of the block it feeds; border columns
 * and other kernels go one column at a time with their taps checked. Channel blocks of 16 are the
 * inner loop; each vector is the sum of its taps by FMA in f32, stored as f32 or rounded to bf16
 * in register. Only the channel tail is masked (no lane past C is read or written). bf16 3x3 rows
 * whose row carries pair-packed weights (r->wdp: the CPU has AVX512-BF16) sum their interior
 * columns by vdpbf16ps instead, 32 channels at a time (see its section). Compiled with AVX-512
 * flags; reached only through mixrt_dwconv_isa() after its CPUID check. */
#if defined(__x86_64__)
#include <float.h>
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/dwconv_impl.h"
#include "backend/cpu/silu_avx512.h"
#include "core/bf16_avx512.h"

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

/* f32 -> bf16 by integer round-to-nearest-even (core/bf16_avx512.h): the rule of
 * mixrt_bf16_from_float, so the scalar twin and the library's conversions agree bit for bit. */
DW_INLINE __m256i to_bf16(__m512 v) { return mixrt_v_bf16_rne(v); }

/* to_bf16 by vcvtneps2bf16 (AVX512-BF16 CPUs only; core/bf16_avx512.h). */
DW_INLINE __m256i to_bf16_hw(__m512 v) { return mixrt_v_bf16_hw(v); }

/* What every output's epilogue reads, copied out of the row's operands into locals: the
 * stores go through may-alias vector types, so fields read through a pointer would be reloaded
 * after each one. */
struct dw_epi {
    const void *z;
    void *y;
    int64_t c;
    enum mixrt_dwconv_act act;
    bool y_bf16, hw_bf16; /* hw_bf16: round with vcvtneps2bf16 */
    bool may_sub;         /* Z, LeakyRelu, SiLU, HardSwish or a subnormal Clip bound can make subnormal outputs */
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
    case MIXRT_DWCONV_ACT_SILU: v = mixrt_v_silu_bf16(v); break;
    case MIXRT_DWCONV_ACT_HSWISH: v = mixrt_v_hardswish(v); break;
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
    const uint16_t *wdp;
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
    case MIXRT_DWCONV_ACT_SILU:
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) acc[j] = mixrt_v_silu_bf16(acc[j]);
        break;
    case MIXRT_DWCONV_ACT_HSWISH:
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) acc[j] = mixrt_v_hardswish(acc[j]);
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

/* ---- the AVX512-BF16 path (3x3, bf16 X, column stride 1 or 2) ---------------------------- *
 * 32 channels of kernel rows 0 and 1 at one column, interleaved word by word (vpunpck{l,h}wd),
 * make two vectors of bf16 pairs; row 2 is interleaved with zeros. vdpbf16ps adds both products
 * of a pair to an f32 lane: per output and 32 channels 12 vdpbf16ps, per input column 3 loads
 * and 4 unpacks, where the FMA path spends 18 FMAs and 12 widening ops (vpmovzxwd + vpslld).
 * The accumulators stay in the unpacks' channel order (dwconv_impl.h) through the epilogue: the
 * bias is permuted into it once per block, Z widened into it by the same unpacks (with zeros
 * below), and one vpermq after vcvtne2ps2bf16 puts the 32 bf16 back in channel order.
 * vdpbf16ps reads subnormals as zero and flushes its results (only this path's bf16 layers see
 * that). */

/* 32 channels of one input row at p: mask mr (0 for a kernel row outside the input). */
DW_INLINE __m512i load_row32(const void *p, __mmask32 mr, const bool masked) {
    return masked ? _mm512_maskz_loadu_epi16(mr, p) : _mm512_loadu_epi16(p);
}

DW_INLINE __m512 dpbf(__m512 acc, __m512i x, __m512i w) { return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w); }

/* Outputs [0, NB) of seg_dp: lo[j], hi[j] += the taps (both halves of the unpacks). */
DW_INLINE void dp_cols(const char *x, const __m512i *wp, const int64_t rows[3], const __mmask32 mr[3], const int S_,
                       const int NB, const bool masked, int64_t off, int64_t cs, __m512 *lo, __m512 *hi) {
    const int NCOL = (NB - 1) * S_ + 3;
#pragma GCC unroll 32
    for (int col = 0; col < NCOL; col++) {
        const int64_t o = off + col * cs;
        const __m512i x0 = load_row32(x + rows[0] + o, mr[0], masked);
        const __m512i x1 = load_row32(x + rows[1] + o, mr[1], masked);
        const __m512i x2 = load_row32(x + rows[2] + o, mr[2], masked);
        const __m512i al = _mm512_unpacklo_epi16(x0, x1), ah = _mm512_unpackhi_epi16(x0, x1);
        const __m512i zl = _mm512_unpacklo_epi16(x2, _mm512_setzero_si512());
        const __m512i zh = _mm512_unpackhi_epi16(x2, _mm512_setzero_si512());
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) {
            const int kw = col - j * S_;
            if (kw < 0 || kw > 2) continue;
            lo[j] = dpbf(dpbf(lo[j], al, _mm512_loadu_si512(wp + 2 * kw)), zl, _mm512_loadu_si512(wp + 2 * (3 + kw)));
            hi[j] = dpbf(dpbf(hi[j], ah, _mm512_loadu_si512(wp + 2 * kw + 1)), zh,
                         _mm512_loadu_si512(wp + 2 * (3 + kw) + 1));
        }
    }
}

/* The activation on lo and hi (any channel order: its parameters are scalars). */
DW_INLINE void act2(const struct dw_epi e, __m512 *lo, __m512 *hi) {
    switch (e.act) {
    case MIXRT_DWCONV_ACT_RELU:
        *lo = _mm512_max_ps(*lo, _mm512_setzero_ps()), *hi = _mm512_max_ps(*hi, _mm512_setzero_ps());
        break;
    case MIXRT_DWCONV_ACT_CLIP: /* operand order keeps NaN (max/min return the second on NaN) */
        *lo = _mm512_min_ps(e.p1, _mm512_max_ps(e.p0, *lo)), *hi = _mm512_min_ps(e.p1, _mm512_max_ps(e.p0, *hi));
        break;
    case MIXRT_DWCONV_ACT_LEAKY:
        *lo = _mm512_mask_mul_ps(*lo, _mm512_cmp_ps_mask(*lo, _mm512_setzero_ps(), _CMP_LT_OQ), *lo, e.p0);
        *hi = _mm512_mask_mul_ps(*hi, _mm512_cmp_ps_mask(*hi, _mm512_setzero_ps(), _CMP_LT_OQ), *hi, e.p0);
        break;
    case MIXRT_DWCONV_ACT_SILU: *lo = mixrt_v_silu_bf16(*lo), *hi = mixrt_v_silu_bf16(*hi); break;
    case MIXRT_DWCONV_ACT_HSWISH: *lo = mixrt_v_hardswish(*lo), *hi = mixrt_v_hardswish(*hi); break;
    default: break;
    }
}

/* Output columns [ow, ow + NB) (every tap inside the row) at channels [c, c + 32), column
 * stride S_; rows[kh]: kernel row kh's byte offset in X. masked: the channel tail (mt: its
 * channels) or a kernel row outside the input (rows[kh] then names a row inside it and mr[kh]
 * is 0). NB is at most 4: 2 x 4
 * accumulators and the 12 weight vectors stay in registers. Measured on MobileNetV2's bf16
 * shapes, 2 threads, against the FMA path: 8 columns (16 accumulators, spilling) 0.97 of its
 * time summed over the ten shapes; 8 columns with the halves in two passes (inputs loaded twice)
 * 1.01; 6 columns 0.87; 4 columns 0.85. */
DW_INLINE void seg_dp(const struct dw_loop l, const int64_t rows[3], const __mmask32 mr[3], __mmask32 mt, const int S_,
                      const int NB, const bool masked, int64_t ow, int64_t c) {
    const __m512i *wp = (const __m512i *)(l.wdp + c / MIXRT_DWCONV_DP_CBLK * MIXRT_DWCONV_DP_BLOCK);
    const __m512i idx_lo = _mm512_set_epi32(27, 26, 25, 24, 19, 18, 17, 16, 11, 10, 9, 8, 3, 2, 1, 0);
    const __m512 b0 = _mm512_loadu_ps(l.b + c), b1 = _mm512_loadu_ps(l.b + c + 16);
    const int64_t off = ow * l.ss + c * 2;
    __m512 lo[4], hi[4];
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++) lo[j] = _mm512_permutex2var_ps(b0, idx_lo, b1);
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++)
        hi[j] = _mm512_permutex2var_ps(b0, _mm512_add_epi32(idx_lo, _mm512_set1_epi32(4)), b1);
    dp_cols(l.x, wp, rows, mr, S_, NB, masked, off, l.cs, lo, hi);
    const struct dw_epi e = l.e;
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++) {
        const int64_t yo = (ow + j) * e.c + c;
        if (e.z) { /* bf16 Z widened exactly into the accumulators' order */
            const __m512i zv = load_row32((const uint16_t *)e.z + yo, mt, masked);
            lo[j] = _mm512_add_ps(lo[j], _mm512_castsi512_ps(_mm512_unpacklo_epi16(_mm512_setzero_si512(), zv)));
            hi[j] = _mm512_add_ps(hi[j], _mm512_castsi512_ps(_mm512_unpackhi_epi16(_mm512_setzero_si512(), zv)));
        }
        act2(e, &lo[j], &hi[j]);
        if (e.y_bf16) {
            /* vcvtne2ps2bf16 reads subnormals as zero: a block with one rounds by integer
             * arithmetic, as to_bf16_hw does. vdpbf16ps flushes its sums, so only the epilogue
             * can make one (e.may_sub); MobileNetV2's layers (Clip to [0, 6], no Z) skip the test. */
            __m512i h;
            if (e.hw_bf16 && (!e.may_sub || __builtin_expect(!(_mm512_fpclass_ps_mask(lo[j], 0x20) |
                                                          _mm512_fpclass_ps_mask(hi[j], 0x20)),
                                                        1)))
                h = (__m512i)_mm512_cvtne2ps_pbh(hi[j], lo[j]);
            else
                h = _mm512_inserti64x4(_mm512_castsi256_si512(to_bf16(lo[j])), to_bf16(hi[j]), 1);
            /* [lo: channels 0-3, 8-11, ..., hi: 4-7, 12-15, ...] as qwords of 4 -> channel order */
            h = _mm512_permutexvar_epi64(_mm512_set_epi64(7, 3, 6, 2, 5, 1, 4, 0), h);
            if (masked)
                _mm512_mask_storeu_epi16((uint16_t *)e.y + yo, mt, h);
            else
                _mm512_storeu_si512((uint16_t *)e.y + yo, h);
        } else { /* f32 Y (an activation runs after): both halves back to channel order */
            const __m512i u0 = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
            const __m512 v0 = _mm512_permutex2var_ps(lo[j], u0, hi[j]);
            const __m512 v1 = _mm512_permutex2var_ps(lo[j], _mm512_add_epi32(u0, _mm512_set1_epi32(8)), hi[j]);
            float *q = (float *)e.y + yo;
            if (masked) {
                _mm512_mask_storeu_ps(q, (__mmask16)mt, v0);
                _mm512_mask_storeu_ps(q + 16, (__mmask16)(mt >> 16), v1);
            } else {
                _mm512_storeu_ps(q, v0);
                _mm512_storeu_ps(q + 16, v1);
            }
        }
    }
}

/* seg_dp over every channel block. */
DW_INLINE void seg_dp_all(const struct dw_loop *lp, const int64_t rows[3], const __mmask32 mr[3], const int S_,
                          const int NB, const bool full_rows, int64_t ow) {
    const struct dw_loop l = *lp;
    int64_t c = 0;
    for (; c + MIXRT_DWCONV_DP_CBLK <= l.c; c += MIXRT_DWCONV_DP_CBLK)
        seg_dp(l, rows, mr, ~(__mmask32)0, S_, NB, !full_rows, ow, c);
    if (c + 16 >= l.c) { /* a tail of up to 16 channels: half a block would idle, the FMA path's
                          * 16 lanes (with the same bf16 weights) fit it (56x56x144, 2 threads:
                          * 1.08 -> 1.01 of the FMA path's time, 8-column blocks then) */
        if (c + 16 == l.c)
            seg(l, 3, 3, S_, NB, true, false, false, ow, c);
        else if (c < l.c)
            seg(l, 3, 3, S_, NB, true, true, false, ow, c);
    } else {
        const __mmask32 t = (__mmask32)((1u << (l.c - c)) - 1u); /* 16 < l.c - c < 32 */
        const __mmask32 mt[3] = {mr[0] & t, mr[1] & t, mr[2] & t};
        seg_dp(l, rows, mt, t, S_, NB, true, ow, c);
    }
}

/* Each width of column block its own function: inlined into the row function they made it so
 * large that GCC's register allocation sent loaded vectors through the stack (stored, then read
 * back as the unpack's operand). */
#define DW_DP_COLS(S_, NB, FULL)                                                                                       \
    __attribute__((noinline)) static void dp_cols_##S_##_##NB##_##FULL(                                               \
        const struct dw_loop *lp, const int64_t rows[3], const __mmask32 mr[3], int64_t ow) {                     \
        seg_dp_all(lp, rows, mr, S_, NB, FULL, ow);                                                                    \
    }
#define DW_DP_COLS_S(S_)                                                                                               \
    DW_DP_COLS(S_, 4, 1) DW_DP_COLS(S_, 2, 1) DW_DP_COLS(S_, 1, 1) DW_DP_COLS(S_, 4, 0) DW_DP_COLS(S_, 2, 0)           \
    DW_DP_COLS(S_, 1, 0)
DW_DP_COLS_S(1)
DW_DP_COLS_S(2)
#undef DW_DP_COLS_S
#undef DW_DP_COLS

/* The interior columns [ow, ow_hi) of a row on the AVX512-BF16 path; returns where it stopped. */
#define DW_DP_ROW(S_, FULL)                                                                                            \
    do {                                                                                                               \
        for (; ow + 4 <= ow_hi; ow += 4) dp_cols_##S_##_4_##FULL(&l, rows, mr, ow);                                   \
        if (ow + 2 <= ow_hi) dp_cols_##S_##_2_##FULL(&l, rows, mr, ow), ow += 2;                                      \
        if (ow < ow_hi) dp_cols_##S_##_1_##FULL(&l, rows, mr, ow), ow++;                                              \
    } while (0)

DW_INLINE int64_t interior_dp(const struct dw_loop l, const int S_, int64_t ow, int64_t ow_hi) {
    /* Kernel row kh's byte offset in X (output column 0, channel 0; before the row on the left
     * border, so only an offset, see struct dw_loop), or row kl's with mask 0 outside. */
    int64_t rows[3];
    __mmask32 mr[3];
    for (int kh = 0; kh < 3; kh++) {
        const bool in = kh >= l.kl && kh < l.kr;
        rows[kh] = l.base0 + ((in ? kh : l.kl) - l.kl) * l.rs;
        mr[kh] = in ? ~(__mmask32)0 : 0;
    }
    const bool full = l.kl == 0 && l.kr == 3;
    if (S_ == 1 && full)
        DW_DP_ROW(1, 1);
    else if (S_ == 1)
        DW_DP_ROW(1, 0);
    else if (full)
        DW_DP_ROW(2, 1);
    else
        DW_DP_ROW(2, 0);
    return ow;
}

#undef DW_DP_ROW

/* Output columns a blocked step computes together. */
#define DW_BLOCK(KW_) ((KW_) <= 3 ? 8 : 4)

/* DP_: the interior columns on the AVX512-BF16 path (3x3, bf16, S_ 1 or 2, r->wdp set). */
DW_INLINE void row_impl(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r, const int KH_,
                        const int KW_, const int S_, const bool bf, const bool DP_) {
    const int64_t KH = KH_ ? KH_ : g->kh, C = g->c, esz = bf ? 2 : 4;
    /* Kernel rows [kl, kr) land inside the input for this output row. */
    const int64_t ih0 = r->oy * g->sh - g->pt;
    int64_t kl = 0, kr = KH;
    if (ih0 < 0) kl = (-ih0 + g->dh - 1) / g->dh;
    if (ih0 + (KH - 1) * g->dh >= g->h) kr = g->h - ih0 <= 0 ? 0 : (g->h - ih0 + g->dh - 1) / g->dh;
    if (kl > kr) kl = kr;
    const struct dw_loop l = {
        .x = r->x, .w = r->w, .b = r->b, .wdp = r->wdp, .c = C, .kh = g->kh, .kw = g->kw, .kl = kl, .kr = kr,
        .w_in = g->w, .sw = g->sw, .dw = g->dw, .pl = g->pl,
        .base0 = ((ih0 + kl * g->dh) * g->w - g->pl) * C * esz, .rs = g->dh * g->w * C * esz,
        .ts = g->dw * C * esz, .ss = g->sw * C * esz, .cs = C * esz,
        .e = {r->z, r->y, C, r->act, r->y_bf16, r->hw_bf16,
              r->z || r->act == MIXRT_DWCONV_ACT_LEAKY || r->act == MIXRT_DWCONV_ACT_SILU || r->act == MIXRT_DWCONV_ACT_HSWISH ||
                  (r->act == MIXRT_DWCONV_ACT_CLIP &&
                   ((r->p0 != 0.0f && fabsf(r->p0) < FLT_MIN) || (r->p1 != 0.0f && fabsf(r->p1) < FLT_MIN))),
              _mm512_set1_ps(r->p0), _mm512_set1_ps(r->p1)}};
    const int64_t ow_lo = g->ow_lo, ow_hi = g->ow_hi > g->ow_lo ? g->ow_hi : g->ow_lo, OW = g->ow;
    int64_t ow = 0;
    for (; ow < ow_lo; ow++) seg_all(l, KH_, KW_, S_, 1, bf, true, ow);
    if (DP_ && kl < kr) {
        ow = interior_dp(l, S_, ow, ow_hi);
    } else if (KH_ && KW_ && S_) {
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
            r->bf16 ? row_impl(g, r, KH_, KW_, 1, true, false) : row_impl(g, r, KH_, KW_, 1, false, false);            \
        else if (s_ == 2)                                                                                              \
            r->bf16 ? row_impl(g, r, KH_, KW_, 2, true, false) : row_impl(g, r, KH_, KW_, 2, false, false);            \
        else                                                                                                           \
            r->bf16 ? row_impl(g, r, KH_, KW_, 0, true, false) : row_impl(g, r, KH_, KW_, 0, false, false);            \
    } while (0)

/* The AVX512-BF16 rows, compiled apart from the FMA ones (one function holding both spilled
 * more in the FMA path: 112x112x32 went from 0.111 to 0.175 ms on one core). */
__attribute__((noinline)) static void row_dp_s1(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    row_impl(g, r, 3, 3, 1, true, true);
}

__attribute__((noinline)) static void row_dp_s2(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    row_impl(g, r, 3, 3, 2, true, true);
}

/* A 1x1 kernel at stride 1 without pads (an unfolded BatchNormalization: DenseNet's and
 * pre-activation nets' BN + ReLU after a Concat or an Add): per pixel and 16 channels one fma,
 * the epilogue, the store; no tap loop. */
DW_INLINE void row_1x1_impl(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r, const bool bf) {
    const struct dw_epi e = {r->z, r->y, g->c, r->act, r->y_bf16, r->hw_bf16, false,
                             _mm512_set1_ps(r->p0), _mm512_set1_ps(r->p1)};
    const int64_t C = g->c, base = r->oy * g->w * C;
    for (int64_t ow = 0; ow < g->ow; ow++)
        for (int64_t c = 0; c < C; c += MIXRT_DWCONV_CBLK) {
            const bool tail = C - c < MIXRT_DWCONV_CBLK;
            const __mmask16 m = chan_mask(C - c);
            /* taps 1: the packed weights are w[c] in order, padded */
            const __m512 v = _mm512_fmadd_ps(load_x(r->x, base + ow * C + c, m, bf, tail), _mm512_loadu_ps(r->w + c),
                                             _mm512_loadu_ps(r->b + c));
            if (tail)
                finish(e, bf, true, v, ow, c, m);
            else
                finish(e, bf, false, v, ow, c, m);
        }
}

__attribute__((noinline)) static void row_1x1_bf16(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    row_1x1_impl(g, r, true);
}

__attribute__((noinline)) static void row_1x1_f32(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    row_1x1_impl(g, r, false);
}

static void row_avx512(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->ow == g->w)
        r->bf16 ? row_1x1_bf16(g, r) : row_1x1_f32(g, r);
    else if (r->wdp && r->bf16 && g->kh == 3 && g->kw == 3 && g->dw == 1 && (g->sw == 1 || g->sw == 2))
        g->sw == 1 ? row_dp_s1(g, r) : row_dp_s2(g, r);
    else if (g->kh == 3 && g->kw == 3)
        DW_SIZED(3, 3);
    else if (g->kh == 5 && g->kw == 5)
        DW_SIZED(5, 5);
    else if (r->bf16)
        row_impl(g, r, 0, 0, 0, true, false);
    else
        row_impl(g, r, 0, 0, 0, false, false);
}

#undef DW_SIZED

const struct mixrt_dwconv_isa mixrt_dwconv_isa_avx512 = {"avx512", row_avx512};
#endif /* __x86_64__ */
