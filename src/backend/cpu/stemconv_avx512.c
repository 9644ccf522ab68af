/* stemconv_avx512.c - the AVX-512 row kernel of the few-input-channel channels-last conv
 * (stemconv.c): per output row, blocks of up to 64 output channels (4 vectors) by 4 output
 * pixels (8 for 32 channels or fewer: 16 f32 accumulators either way, started at the bias)
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

#define ST_INLINE static inline __attribute__((always_inline))

/* P pixels from ox (each window's taps from column kw0 to kw1 inside X), NV vectors of output
 * channels from m0. */
ST_INLINE void block(const struct mixrt_stem_row *r, const int P, const int NV, int64_t ox, int64_t m0, int64_t kw0,
                     int64_t kw1) {
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
    const __m512 p0 = _mm512_set1_ps(r->p0), p1 = _mm512_set1_ps(r->p1);
    for (int p = 0; p < P; p++)
        for (int v = 0; v < NV; v++) {
            const int64_t j = m0 + 16 * v, left = r->m - j;
            const __mmask16 mk = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            const __m512 o = mixrt_pw_act_v(r->act, acc[p][v], p0, p1);
            const size_t off = (size_t)((ox + p) * r->m + j);
            if (r->y_f32) _mm512_mask_storeu_ps((float *)r->y + off, mk, o);
            else _mm256_mask_storeu_epi16((uint16_t *)r->y + off, mk, mixrt_v_bf16_rne(o));
        }
}

/* The row for NV vectors of channels from m0, P pixels a block where the windows fit. */
ST_INLINE void row_nv(const struct mixrt_stem_row *r, const int P, const int NV, int64_t m0) {
    int64_t ox = 0;
    while (ox < r->ow) {
        const int64_t ix0 = ox * r->sw - r->pl;
        if (ox + P <= r->ow && ix0 >= 0 && ix0 + (P - 1) * r->sw + r->kw <= r->w) {
            block(r, P, NV, ox, m0, 0, r->kw);
            ox += P;
            continue;
        }
        const int64_t kw0 = ix0 < 0 ? -ix0 : 0, kw1 = r->w - ix0 < r->kw ? r->w - ix0 : r->kw;
        block(r, 1, NV, ox, m0, kw0, kw1 > kw0 ? kw1 : kw0);
        ox++;
    }
}

void mixrt_stem_row_avx512(const struct mixrt_stem_row *r) {
    for (int64_t m0 = 0; m0 < r->m; m0 += 64) {
        switch ((r->m - m0 + 15) / 16) {
        case 1: row_nv(r, 8, 1, m0); break;
        case 2: row_nv(r, 8, 2, m0); break;
        case 3: row_nv(r, 4, 3, m0); break;
        default: row_nv(r, 4, 4, m0); break;
        }
    }
}

#else
typedef int mixrt_stemconv_avx512_unused; /* ISO C: a translation unit needs a declaration */
#endif
