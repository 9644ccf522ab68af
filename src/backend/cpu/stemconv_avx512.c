/* stemconv_avx512.c - the AVX-512 row kernel of the few-input-channel channels-last conv
 * (stemconv.c): per output row, blocks of up to 64 output channels (4 vectors) by 6 output
 * pixels (8 for 48 channels or fewer: 16-24 f32 accumulators, started at the bias; 6 x 4 rather
 * than 4 x 4 took ResNet's f32 7x7 stem with its MaxPool from 1.04 to 0.99 of oneDNN's conv and
 * pool)
 * whose windows lie inside the row. In NHWC a window row's taps (kw, c) are consecutive, as
 * are their packed weights, so per input row a block runs one flat loop: each tap's weights
 * loaded once, each pixel's input broadcast from its row. Pixels whose window crosses the left
 * or right edge go one at a time over their taps inside X; input rows above or below X are
 * skipped (xrow NULL). The epilogue applies the activation and stores f32 or rounds to bf16 in
 * register (integer RNE, as the library's conversions); only a row's last vector is masked.
 * Compiled with AVX-512 flags; reached only through stemconv.c after its CPUID check. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/stemconv_impl.h"
#include "core/bf16_avx512.h"
#include "core/vec_avx512.h"
#include <stdbool.h>

#define ST_INLINE static inline __attribute__((always_inline))

/* A block's accumulators (P pixels from ox, NV vectors of channels from m0) activated and
 * stored into the output row ([ow][m]): f32, or rounded to bf16; the row's last vector masked. */
ST_INLINE void store_block(const int P, const int NV, __m512 (*acc)[4], enum mixrt_pw_act act, float fp0, float fp1,
                           int64_t m, void *y, bool y_f32, int64_t ox, int64_t m0) {
    const __m512 p0 = _mm512_set1_ps(fp0), p1 = _mm512_set1_ps(fp1);
#pragma GCC unroll 12
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const int64_t j = m0 + 16 * v, left = m - j;
            const __mmask16 mk = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            const __m512 o = mixrt_pw_act_v(act, acc[p][v], p0, p1);
            const size_t off = (size_t)((ox + p) * m + j);
            if (y_f32) _mm512_mask_storeu_ps((float *)y + off, mk, o);
            else _mm256_mask_storeu_epi16((uint16_t *)y + off, mk, mixrt_v_bf16_rne(o));
        }
}

/* P pixels from ox (each window's taps from column kw0 to kw1 inside X), NV vectors of output
 * channels from m0; A and YF as dp_block's (below). */
ST_INLINE void block(const struct mixrt_stem_row *r, const int P, const int NV, int64_t ox, int64_t m0, int64_t kw0,
                     int64_t kw1, const int A, const int YF) {
    __m512 acc[8][4];
    for (int v = 0; v < NV; v++) {
        const __m512 b = _mm512_loadu_ps(r->b + m0 + 16 * v);
        for (int p = 0; p < P; p++) acc[p][v] = b;
    }
    const int64_t c = r->c, t0 = kw0 * c, t1 = kw1 * c, step = r->sw * c, mp = r->mp;
    for (int64_t kh = 0; kh < r->kh; kh++) {
        const float *xs = r->xrow[kh];
        if (!xs) continue;
        const int64_t base = (ox * r->sw - r->pl) * c;
        const float *wt = r->wp + (size_t)(kh * r->kw * c) * (size_t)mp + (size_t)m0;
        for (int64_t t = t0; t < t1; t++) {
            __m512 wv[4];
            for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_ps(wt + (size_t)t * (size_t)mp + 16 * v);
            for (int p = 0; p < P; p++) {
                const __m512 xv = _mm512_set1_ps(xs[base + p * step + t]);
                for (int v = 0; v < NV; v++) acc[p][v] = _mm512_fmadd_ps(xv, wv[v], acc[p][v]);
            }
        }
    }
    store_block(P, NV, acc, A >= 0 ? (enum mixrt_pw_act)A : r->act, r->p0, r->p1, r->m, r->y, YF >= 0 ? YF != 0 : r->y_f32,
                ox, m0);
}

/* The row for NV vectors of channels from m0, P pixels a block where the windows fit. */
ST_INLINE void row_nv(const struct mixrt_stem_row *r, const int P, const int NV, int64_t m0, const int A, const int YF) {
    int64_t ox = 0;
    while (ox < r->ow) {
        const int64_t ix0 = ox * r->sw - r->pl;
        if (ox + P <= r->ow && ix0 >= 0 && ix0 + (P - 1) * r->sw + r->kw <= r->w) {
            block(r, P, NV, ox, m0, 0, r->kw, A, YF);
            ox += P;
            continue;
        }
        const int64_t kw0 = ix0 < 0 ? -ix0 : 0, kw1 = r->w - ix0 < r->kw ? r->w - ix0 : r->kw;
        block(r, 1, NV, ox, m0, kw0, kw1 > kw0 ? kw1 : kw0, A, YF);
        ox++;
    }
}

ST_INLINE void row(const struct mixrt_stem_row *r, const int A, const int YF) {
    for (int64_t m0 = 0; m0 < r->m; m0 += 64) {
        switch ((r->m - m0 + 15) / 16) {
        case 1: row_nv(r, 8, 1, m0, A, YF); break;
        case 2: row_nv(r, 8, 2, m0, A, YF); break;
        case 3: row_nv(r, 8, 3, m0, A, YF); break;
        default: row_nv(r, 6, 4, m0, A, YF); break;
        }
    }
}

/* f32 Y with no activation or ReLU instantiated (f32 engines' stems, the pool's rows). */
__attribute__((noinline)) static void row_none_f32(const struct mixrt_stem_row *r) { row(r, MIXRT_PW_ACT_NONE, 1); }
__attribute__((noinline)) static void row_relu_f32(const struct mixrt_stem_row *r) { row(r, MIXRT_PW_ACT_RELU, 1); }

void mixrt_stem_row_avx512(const struct mixrt_stem_row *r) {
    if (r->y_f32 && r->act == MIXRT_PW_ACT_NONE) row_none_f32(r);
    else if (r->y_f32 && r->act == MIXRT_PW_ACT_RELU) row_relu_f32(r);
    else row(r, -1, -1);
}

/* P pixels from ox by pairs of taps (vdpbf16ps), NV vectors of output channels from m0. A and
 * YF: the activation and whether Y is f32, fixed at compile time for the common cases (-1: read
 * from r). With them fixed the epilogue unrolls and the accumulators stay in registers; read
 * from r, the compiler kept the epilogue a loop over the pixels with the activation's switch in
 * it, the accumulators spilled to the stack: a 3x3 stem's 15 pairs a pixel ran at half the rate
 * of a 7x7 stem's 77 (a scratch benchmark of this kernel, one thread: 3 -> 64 channels stride
 * 2 on 224x224, 149 us against 564 for the 7x7). */
ST_INLINE void dp_block(const struct mixrt_stem_dp_row *r, const int P, const int NV, int64_t ox, int64_t m0,
                        const int A, const int YF) {
    __m512 acc[12][4];
    for (int v = 0; v < NV; v++) {
        const __m512 b = _mm512_loadu_ps(r->b + m0 + 16 * v);
        for (int p = 0; p < P; p++) acc[p][v] = b;
    }
    const int64_t step = r->sw * r->c, np = r->np, mp2 = r->mp * 2;
    for (int64_t kh = 0; kh < r->kh; kh++) {
        const uint16_t *xs = r->xrow[kh];
        if (!xs) continue;
        xs += ox * step;
        const uint16_t *wt = r->wq + (size_t)(kh * np) * (size_t)mp2 + (size_t)(m0 * 2);
        for (int64_t j = 0; j < np; j++) {
            __m512i wv[4];
            for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_si512(wt + (size_t)j * (size_t)mp2 + 32 * v);
            for (int p = 0; p < P; p++) {
                uint32_t pair;
                __builtin_memcpy(&pair, xs + p * step + 2 * j, sizeof(pair));
                const __m512bh xv = (__m512bh)_mm512_set1_epi32((int)pair);
                for (int v = 0; v < NV; v++) acc[p][v] = _mm512_dpbf16_ps(acc[p][v], xv, (__m512bh)wv[v]);
            }
        }
    }
    store_block(P, NV, acc, A >= 0 ? (enum mixrt_pw_act)A : r->act, r->p0, r->p1, r->m, r->y, YF >= 0 ? YF != 0 : r->y_f32,
                ox, m0);
}

/* The row for NV vectors of channels from m0: blocks of P pixels, the rest by 4, 2 and 1. */
ST_INLINE void dp_row_nv(const struct mixrt_stem_dp_row *r, const int P, const int NV, int64_t m0, const int A,
                         const int YF) {
    int64_t ox = 0;
    for (; ox + P <= r->ow; ox += P) dp_block(r, P, NV, ox, m0, A, YF);
    for (; P > 4 && ox + 4 <= r->ow; ox += 4) dp_block(r, 4, NV, ox, m0, A, YF);
    if (ox + 2 <= r->ow) dp_block(r, 2, NV, ox, m0, A, YF), ox += 2;
    if (ox < r->ow) dp_block(r, 1, NV, ox, m0, A, YF);
}

ST_INLINE void dp_row(const struct mixrt_stem_dp_row *r, const int A, const int YF) {
    for (int64_t m0 = 0; m0 < r->m; m0 += 64) {
        switch ((r->m - m0 + 15) / 16) {
        case 1: dp_row_nv(r, 12, 1, m0, A, YF); break;
        case 2: dp_row_nv(r, 12, 2, m0, A, YF); break;
        case 3: dp_row_nv(r, 8, 3, m0, A, YF); break;
        default: dp_row_nv(r, 6, 4, m0, A, YF); break;
        }
    }
}

/* Instantiated for no activation and ReLU, f32 or bf16 Y (the pool's f32 rows; ResNet's,
 * SqueezeNet's and RegNet's stems); the other activations as before. */
__attribute__((noinline)) static void dp_row_none_f32(const struct mixrt_stem_dp_row *r) { dp_row(r, MIXRT_PW_ACT_NONE, 1); }
__attribute__((noinline)) static void dp_row_none_bf16(const struct mixrt_stem_dp_row *r) { dp_row(r, MIXRT_PW_ACT_NONE, 0); }
__attribute__((noinline)) static void dp_row_relu_f32(const struct mixrt_stem_dp_row *r) { dp_row(r, MIXRT_PW_ACT_RELU, 1); }
__attribute__((noinline)) static void dp_row_relu_bf16(const struct mixrt_stem_dp_row *r) { dp_row(r, MIXRT_PW_ACT_RELU, 0); }

void mixrt_stem_dp_row_avx512(const struct mixrt_stem_dp_row *r) {
    if (r->act == MIXRT_PW_ACT_NONE) r->y_f32 ? dp_row_none_f32(r) : dp_row_none_bf16(r);
    else if (r->act == MIXRT_PW_ACT_RELU) r->y_f32 ? dp_row_relu_f32(r) : dp_row_relu_bf16(r);
    else dp_row(r, -1, -1);
}

/* The exact form of the pool across for channels [j0, m): every tap through
 * mixrt_v512_max_nan, the last vector masked. */
static void hpool_exact(const float *row, int64_t ow, int64_t m, int64_t pw, int64_t kw, int64_t sw, int64_t pl,
                        float *out, int64_t j0) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    for (int64_t px = 0; px < pw; px++) {
        int64_t c0 = px * sw - pl, c1 = c0 + kw;
        if (c0 < 0) c0 = 0;
        if (c1 > ow) c1 = ow;
        for (int64_t j = j0; j < m; j += 16) {
            const __mmask16 mk = mixrt_v512_mask(m - j);
            __m512 acc = ninf;
            for (int64_t cx = c0; cx < c1; cx++)
                acc = mixrt_v512_max_nan(acc, _mm512_mask_loadu_ps(ninf, mk, row + cx * m + j));
            _mm512_mask_storeu_ps(out + px * m + j, mk, acc);
        }
    }
}

/* 16 * NV channels from j of each window: plain vmaxps, whose result drops a NaN of v, and
 * beside it the sum of every tap, which a NaN anywhere makes NaN (an infinity of each sign
 * too: then the exact form runs for nothing). Returns the sum's NaN lanes. */
static inline __attribute__((always_inline)) __mmask16 hpool_fast(const int NV, const float *row, int64_t ow, int64_t m,
                                                                  int64_t pw, int64_t kw, int64_t sw, int64_t pl,
                                                                  float *out, int64_t j) {
    __m512 sum[4];
    for (int v = 0; v < NV; v++) sum[v] = _mm512_setzero_ps();
    for (int64_t px = 0; px < pw; px++) {
        int64_t c0 = px * sw - pl, c1 = c0 + kw;
        if (c0 < 0) c0 = 0;
        if (c1 > ow) c1 = ow;
        __m512 acc[4];
        for (int v = 0; v < NV; v++) acc[v] = _mm512_set1_ps(-__builtin_inff());
        for (int64_t cx = c0; cx < c1; cx++) {
            const float *p = row + cx * m + j;
            for (int v = 0; v < NV; v++) {
                const __m512 x = _mm512_loadu_ps(p + 16 * v);
                acc[v] = _mm512_max_ps(x, acc[v]);
                sum[v] = _mm512_add_ps(sum[v], x);
            }
        }
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(out + px * m + j + 16 * v, acc[v]);
    }
    __mmask16 nan = 0;
    for (int v = 0; v < NV; v++) nan |= _mm512_cmp_ps_mask(sum[v], sum[v], _CMP_UNORD_Q);
    return nan;
}

void mixrt_stem_hpool_avx512(const float *row, int64_t ow, int64_t m, int64_t pw, int64_t kw, int64_t sw, int64_t pl,
                             float *out) {
    __mmask16 nan = 0;
    int64_t j = 0;
    for (; j + 64 <= m; j += 64) nan |= hpool_fast(4, row, ow, m, pw, kw, sw, pl, out, j);
    switch ((m - j) / 16) {
    case 3: nan |= hpool_fast(3, row, ow, m, pw, kw, sw, pl, out, j); break;
    case 2: nan |= hpool_fast(2, row, ow, m, pw, kw, sw, pl, out, j); break;
    case 1: nan |= hpool_fast(1, row, ow, m, pw, kw, sw, pl, out, j); break;
    default: break;
    }
    /* after a NaN every channel again; else the channels past the last whole vector */
    const int64_t done = j + (m - j) / 16 * 16;
    if (nan || done < m) hpool_exact(row, ow, m, pw, kw, sw, pl, out, nan ? 0 : done);
}

void mixrt_stem_vpool_avx512(const float *const *rows, int nrows, size_t n, void *y, bool y_f32) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    __mmask16 nan = 0;
    size_t i = 0;
    /* plain vmaxps and the sum's NaN watch, as hpool_fast */
    for (; nrows > 0 && i + 16 <= n; i += 16) {
        __m512 acc = _mm512_loadu_ps(rows[0] + i), sum = acc;
        for (int r = 1; r < nrows; r++) {
            const __m512 x = _mm512_loadu_ps(rows[r] + i);
            acc = _mm512_max_ps(x, acc);
            sum = _mm512_add_ps(sum, x);
        }
        nan |= _mm512_cmp_ps_mask(sum, sum, _CMP_UNORD_Q);
        if (y_f32) _mm512_storeu_ps((float *)y + i, acc);
        else _mm256_storeu_si256((__m256i *)((uint16_t *)y + i), mixrt_v_bf16_rne(acc));
    }
    if (nan) i = 0;
    for (; i < n; i += 16) { /* the exact form: the tail, or every value after a NaN */
        const __mmask16 mk = mixrt_v512_mask((int64_t)(n - i));
        __m512 acc = ninf;
        for (int r = 0; r < nrows; r++) acc = mixrt_v512_max_nan(acc, _mm512_mask_loadu_ps(ninf, mk, rows[r] + i));
        if (y_f32) _mm512_mask_storeu_ps((float *)y + i, mk, acc);
        else _mm256_mask_storeu_epi16((uint16_t *)y + i, mk, mixrt_v_bf16_rne(acc));
    }
}

bool mixrt_stem_copy_finite_avx512(const uint16_t *src, uint16_t *dst, size_t n) {
    const __m512i ex = _mm512_set1_epi16(0x7f80);
    __mmask32 bad = 0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512i v = _mm512_loadu_si512(src + i);
        _mm512_storeu_si512(dst + i, v);
        bad |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(v, ex), ex);
    }
    if (i < n) {
        const __mmask32 mk = (__mmask32)((1u << (n - i)) - 1u);
        const __m512i v = _mm512_maskz_loadu_epi16(mk, src + i);
        _mm512_mask_storeu_epi16(dst + i, mk, v);
        bad |= _mm512_mask_cmpeq_epi16_mask(mk, _mm512_and_si512(v, ex), ex);
    }
    return bad == 0;
}

#else
typedef int mixrt_stemconv_avx512_unused; /* ISO C: a translation unit needs a declaration */
#endif
