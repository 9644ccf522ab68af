/* dwconv_avx2.c - the AVX2 + FMA row kernel of the depthwise channels-last conv (dwconv.c), for
 * CPUs without AVX-512: the FMA path of dwconv_avx512.c on 8-channel vectors. 3x3 and 5x5 at
 * column strides 1 and 2 run blocks of 8 (4) output columns whose windows lie inside the row,
 * each input vector loaded once for every output of the block it feeds; border columns and
 * other kernels go one column at a time with their taps checked. Only the channel tail is
 * masked. f32 rows only: bf16 ones (no bf16 arithmetic on these CPUs; the engine lowers such
 * layers to f32 there anyway) and the SiLU epilogue go to the scalar twin. Compiled with
 * -mavx2 -mfma; reached only through mixrt_dwconv_isa() after its CPUID check. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/dwconv_impl.h"

#define DW_INLINE static inline __attribute__((always_inline))
#define DW_V 8 /* channels a vector */

DW_INLINE __m256i chan_mask(int64_t left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left >= DW_V ? DW_V : (int)left), idx);
}

DW_INLINE __m256 load_v(const float *p, __m256i m, const bool tail) {
    return tail ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}

DW_INLINE void store_v(float *p, __m256 v, __m256i m, const bool tail) {
    if (tail)
        _mm256_maskstore_ps(p, m, v);
    else
        _mm256_storeu_ps(p, v);
}

/* The epilogue's operands in locals (stores through vector types may alias the row's fields). */
struct dw_epi {
    const float *z;
    float *y;
    int64_t c;
    enum mixrt_dwconv_act act;
    __m256 p0, p1;
};

/* The activations the scalar twin applies, the same way: ReLU and Clip keep its NaN handling
 * (max / min return the second operand on NaN), LeakyRelu scales only x < 0, HardSwish clamps
 * (x + 3) / 6. */
DW_INLINE __m256 act_v(const struct dw_epi *e, __m256 v) {
    switch (e->act) {
    case MIXRT_DWCONV_ACT_RELU: return _mm256_max_ps(v, _mm256_setzero_ps());
    case MIXRT_DWCONV_ACT_CLIP: return _mm256_min_ps(e->p1, _mm256_max_ps(e->p0, v));
    case MIXRT_DWCONV_ACT_LEAKY:
        return _mm256_blendv_ps(v, _mm256_mul_ps(v, e->p0), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
    case MIXRT_DWCONV_ACT_HSWISH: {
        const __m256 h = _mm256_mul_ps(_mm256_add_ps(v, _mm256_set1_ps(3.0f)), _mm256_set1_ps(1.0f / 6.0f));
        return _mm256_mul_ps(v, _mm256_max_ps(_mm256_min_ps(h, _mm256_set1_ps(1.0f)), _mm256_setzero_ps()));
    }
    default: return v;
    }
}

/* Z, the activation and the stores of NB outputs from column ow, channels [c, c + 8). */
DW_INLINE void finish(const struct dw_epi e, const bool tail, __m256 *acc, const int NB, int64_t ow, int64_t c,
                      __m256i m) {
    const int64_t off = ow * e.c + c;
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++) {
        __m256 v = acc[j];
        if (e.z) v = _mm256_add_ps(v, load_v(e.z + off + j * e.c, m, tail));
        store_v(e.y + off + j * e.c, act_v(&e, v), m, tail);
    }
}

/* One output row's loop invariants (dwconv_avx512.c's struct dw_loop): byte offsets; the window
 * of output column ow, channel c, starts at base0 + ow * ss + c * 4, kernel row kh adds
 * (kh - kl) * rs, tap kw adds kw * ts, the next input column cs. */
struct dw_loop {
    const char *x;
    const float *w, *b;
    int64_t c, kh, kw, kl, kr, w_in, sw, dw, pl;
    int64_t base0, rs, ts, ss, cs;
    struct dw_epi e;
};

/* Output columns [ow, ow + NB) at channels [c, c + 8). NB 1: any kernel (KH_, KW_ 0: sizes from
 * l), border: only taps inside the row. NB > 1: KH_ x KW_ at column stride S_, every tap inside
 * the row, each input vector loaded once for the outputs it feeds, the weights in registers. */
DW_INLINE void seg(const struct dw_loop l, const int KH_, const int KW_, const int S_, const int NB, const bool tail,
                   const bool border, int64_t ow, int64_t c) {
    const int64_t KH = KH_ ? KH_ : l.kh, KW = KW_ ? KW_ : l.kw;
    const __m256i m = chan_mask(l.c - c);
    const __m256 bias = _mm256_loadu_ps(l.b + c); /* padded past C */
    /* this vector's taps, MIXRT_DWCONV_CBLK floats apart (the weights come in blocks of 16) */
    const float *const wb = l.w + (c / MIXRT_DWCONV_CBLK) * KH * KW * MIXRT_DWCONV_CBLK + c % MIXRT_DWCONV_CBLK;
    const int64_t base = l.base0 + ow * l.ss + c * 4;
    if (NB == 1) {
        const int64_t iw0 = ow * l.sw - l.pl;
        __m256 a0 = bias, a1 = _mm256_setzero_ps(); /* even and odd kernel rows: two chains */
        for (int64_t kh = l.kl; kh < l.kr; kh++) { /* kr <= KH */
            const int64_t rb = base + (kh - l.kl) * l.rs;
            for (int64_t kw = 0; kw < KW; kw++) {
                if (border && (iw0 + kw * l.dw < 0 || iw0 + kw * l.dw >= l.w_in)) continue;
                const __m256 wt = _mm256_loadu_ps(wb + (kh * KW + kw) * MIXRT_DWCONV_CBLK);
                const __m256 xv = load_v((const float *)(l.x + rb + kw * l.ts), m, tail);
                if (kh & 1)
                    a1 = _mm256_fmadd_ps(xv, wt, a1);
                else
                    a0 = _mm256_fmadd_ps(xv, wt, a0);
            }
        }
        __m256 s = _mm256_add_ps(a0, a1);
        finish(l.e, tail, &s, 1, ow, c, m);
        return;
    }
    const int NCOL = (NB - 1) * S_ + KW_;
    __m256 acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < NB; j++) acc[j] = bias;
#pragma GCC unroll 8
    for (int kh = 0; kh < KH_; kh++) {
        if (kh < l.kl || kh >= l.kr) continue;
        __m256 wv[8];
#pragma GCC unroll 8
        for (int kw = 0; kw < KW_; kw++) wv[kw] = _mm256_loadu_ps(wb + (kh * KW_ + kw) * MIXRT_DWCONV_CBLK);
        const char *p = l.x + base + (kh - l.kl) * l.rs;
#pragma GCC unroll 32
        for (int col = 0; col < NCOL; col++, p += l.cs) {
            const __m256 xv = load_v((const float *)p, m, tail);
#pragma GCC unroll 8
            for (int j = 0; j < NB; j++) {
                const int kw = col - j * S_;
                if (kw >= 0 && kw < KW_) acc[j] = _mm256_fmadd_ps(xv, wv[kw], acc[j]);
            }
        }
    }
    finish(l.e, tail, acc, NB, ow, c, m);
}

/* Columns [ow, ow + NB) over every channel vector (channels innermost). */
DW_INLINE void seg_all(const struct dw_loop l, const int KH_, const int KW_, const int S_, const int NB,
                       const bool border, int64_t ow) {
    int64_t c = 0;
    for (; c + DW_V <= l.c; c += DW_V) seg(l, KH_, KW_, S_, NB, false, border, ow, c);
    if (c < l.c) seg(l, KH_, KW_, S_, NB, true, border, ow, c);
}

/* Output columns a blocked step computes together: 8 accumulators and 3 weights of a 3-wide
 * kernel, 4 and 5 of a 5-wide one, within the 16 vector registers. */
#define DW_BLOCK(KW_) ((KW_) <= 3 ? 8 : 4)

DW_INLINE void row_impl(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r, const int KH_,
                        const int KW_, const int S_) {
    const int64_t KH = KH_ ? KH_ : g->kh, C = g->c;
    /* kernel rows [kl, kr) land inside the input for this output row */
    const int64_t ih0 = r->oy * g->sh - g->pt;
    int64_t kl = 0, kr = KH;
    if (ih0 < 0) kl = (-ih0 + g->dh - 1) / g->dh;
    if (ih0 + (KH - 1) * g->dh >= g->h) kr = g->h - ih0 <= 0 ? 0 : (g->h - ih0 + g->dh - 1) / g->dh;
    if (kl > kr) kl = kr;
    const struct dw_loop l = {
        .x = r->x, .w = r->w, .b = r->b, .c = C, .kh = g->kh, .kw = g->kw, .kl = kl, .kr = kr, .w_in = g->w,
        .sw = g->sw, .dw = g->dw, .pl = g->pl, .base0 = ((ih0 + kl * g->dh) * g->w - g->pl) * C * 4,
        .rs = g->dh * g->w * C * 4, .ts = g->dw * C * 4, .ss = g->sw * C * 4, .cs = C * 4,
        .e = {r->z, r->y, C, r->act, _mm256_set1_ps(r->p0), _mm256_set1_ps(r->p1)},
    };
    const int64_t ow_lo = g->ow_lo, ow_hi = g->ow_hi > g->ow_lo ? g->ow_hi : g->ow_lo, OW = g->ow;
    int64_t ow = 0;
    for (; ow < ow_lo; ow++) seg_all(l, KH_, KW_, S_, 1, true, ow);
    if (KH_ && KW_ && S_) {
        for (; ow + DW_BLOCK(KW_) <= ow_hi; ow += DW_BLOCK(KW_)) seg_all(l, KH_, KW_, S_, DW_BLOCK(KW_), false, ow);
        if (DW_BLOCK(KW_) > 4 && ow + 4 <= ow_hi) {
            seg_all(l, KH_, KW_, S_, 4, false, ow);
            ow += 4;
        }
        if (ow + 2 <= ow_hi) {
            seg_all(l, KH_, KW_, S_, 2, false, ow);
            ow += 2;
        }
    }
    for (; ow < ow_hi; ow++) seg_all(l, KH_, KW_, S_, 1, false, ow);
    for (; ow < OW; ow++) seg_all(l, KH_, KW_, S_, 1, true, ow);
}

/* A kernel size's specializations: the blocked column path for strides 1 and 2 along the row
 * without dilation there, the one-column path otherwise. */
#define DW_SIZED(KH_, KW_)                                                                                             \
    do {                                                                                                               \
        const int s_ = g->dw != 1 ? 0 : g->sw == 1 ? 1 : g->sw == 2 ? 2 : 0;                                           \
        if (s_ == 1)                                                                                                   \
            row_impl(g, r, KH_, KW_, 1);                                                                               \
        else if (s_ == 2)                                                                                              \
            row_impl(g, r, KH_, KW_, 2);                                                                               \
        else                                                                                                           \
            row_impl(g, r, KH_, KW_, 0);                                                                               \
    } while (0)

static void row_avx2(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r) {
    if (r->bf16 || r->y_bf16 || r->act == MIXRT_DWCONV_ACT_SILU)
        mixrt_dwconv_isa_scalar.row(g, r);
    else if (g->kh == 3 && g->kw == 3)
        DW_SIZED(3, 3);
    else if (g->kh == 5 && g->kw == 5)
        DW_SIZED(5, 5);
    else
        row_impl(g, r, 0, 0, 0);
}

#undef DW_SIZED

const struct mixrt_dwconv_isa mixrt_dwconv_isa_avx2 = {"avx2", row_avx2};
#endif /* __x86_64__ */
