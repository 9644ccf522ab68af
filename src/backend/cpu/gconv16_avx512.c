/* gconv16_avx512.c - the AVX-512 kernel of gconv16_nhwc (gconv.c): a grouped channels-last conv
 * whose groups have G input and G output channels, G a multiple of 16 (RegNet-X's group width 16,
 * ResNeXt-50's third and fourth stages: 16 and 32, RegNet-Y's 64), in bf16 (AVX512-BF16) or f32.
 * A vector of 16 output channels lies in one group, so the inputs it reads are that group's G
 * channels of each pixel. A unit is a pair of them in bf16 (one dword broadcast and one vdpbf16ps
 * against the pair's 16 weight pairs) or one of them in f32 (one broadcast and one FMA against 16
 * f32 weights): either way 4 bytes of X a broadcast and one 64-byte line of the packed W a unit
 * and tap. No permutes; in bf16 no f32 weights.
 * The 3-tap-wide form (kernel width 3, stride 1 or 2 along the row, no dilation there: every
 * RegNet and ResNeXt 3x3) broadcasts each input pixel's unit once for each of the (output pixel,
 * kx) pairs that read it, with the three kx weight vectors in registers: a block of NP output
 * pixels reads (NP - 1) S + 3 input pixels a unit against 3 NP products. NP up to 16 (16
 * accumulators: the products' latency needs about 12 chains to keep both pipes busy); rows of 8
 * pixels or fewer take two output rows a block instead (7x7 stages), sharing the weights.
 * Other kernel shapes take the general block (per tap and unit, one broadcast a pixel).
 * Sums run in the scalar twin's order: taps' rows, units, taps' columns. Compiled with AVX-512
 * flags; reached only through gconv.c after its CPUID check (AVX512-BF16 for bf16, AVX-512
 * F/BW/VL/DQ for f32). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/gconv_impl.h"
#include "backend/cpu/pwconv_impl.h"

#define GD_INLINE static inline __attribute__((always_inline))
#define GD_MAXP 16 /* accumulators a block */

GD_INLINE __m512i unit_at(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return _mm512_set1_epi32((int)v);
}

/* acc + a unit's products: f32 (F) one FMA, bf16 the pair's two products, the odd one first. */
GD_INLINE __m512 madd(const bool F, __m512 acc, __m512i a, __m512i w) {
    return F ? _mm512_fmadd_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(w), acc)
             : _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)w);
}

/* Bias, Z, activation and rounding of R rows by NP pixels from (oy, ox), the sums in acc
 * ([R][NP][16] f32). Not inlined: one copy for every block shape. */
static __attribute__((noinline)) void finish(const struct mixrt_gdp_call *c, const float *acc, int R, int NP,
                                             int64_t oy, int64_t ox) {
    const enum mixrt_pw_act act = (enum mixrt_pw_act)c->act;
    const __m512 p0 = _mm512_set1_ps(c->p0), p1 = _mm512_set1_ps(c->p1);
    for (int r = 0; r < R; r++)
        for (int P = 0; P < NP; P++) {
            __m512 v = _mm512_loadu_ps(acc + (r * NP + P) * 16);
            const size_t off = (size_t)(((oy + r) * c->ow + ox + P) * c->c + c->m0);
            if (c->z && c->f32)
                v = _mm512_add_ps(v, _mm512_loadu_ps((const float *)c->z + off));
            else if (c->z)
                v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_slli_epi32(
                    _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)c->z + off))), 16)));
            v = mixrt_pw_act_v(act, v, p0, p1);
            if (c->y_f32)
                _mm512_storeu_ps((float *)c->y + off, v);
            else
                _mm256_storeu_si256((__m256i *)((uint16_t *)c->y + off), (__m256i)_mm512_cvtneps_pbh(v));
        }
}

/* The 3-tap-wide block: R rows from oy by NP pixels from ox, stride S along the row; f32 (F) or
 * bf16. */
GD_INLINE void blk3(const struct mixrt_gdp_call *c, int64_t oy, int64_t ox, const int R, const int NP, const int S,
                    const bool F) {
    __m512 acc[2][GD_MAXP];
    const int64_t C = c->c, np = F ? c->g : c->g / 2, m0 = c->m0, cb = m0 / c->g * c->g, iw0 = ox * S - c->pl;
    const int64_t es = F ? 4 : 2; /* bytes an element of X */
    const unsigned char *xb = c->x, *wb = c->w;
    const int QN = (NP - 1) * S + 3;
    const __m512 b = _mm512_loadu_ps(c->b + m0);
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 16
        for (int P = 0; P < NP; P++) acc[r][P] = b;
    uint64_t vm = 0; /* bit Q: input pixel iw0 + Q is inside the row */
    for (int Q = 0; Q < QN; Q++)
        if (iw0 + Q >= 0 && iw0 + Q < c->wd) vm |= (uint64_t)1 << Q;
    for (int64_t ky = 0; ky < c->kh; ky++) {
        int64_t xo[2] = {0, 0}; /* element offset of row r's input pixel iw0 (maybe -1), channel cb */
        bool in[2] = {false, false}, any = false;
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const int64_t ih = (oy + r) * c->sh - c->pt + ky * c->dh;
            if (ih >= 0 && ih < c->h) xo[r] = (ih * c->wd + iw0) * C + cb, in[r] = any = true;
        }
        if (!any) continue;
        const unsigned char *wt = wb + ((size_t)(ky * 3 * np) * (size_t)C + (size_t)m0) * 4;
        for (int64_t p = 0; p < np; p++) {
            const __m512i w0 = _mm512_loadu_si512(wt + (size_t)(p * C) * 4),
                          w1 = _mm512_loadu_si512(wt + (size_t)((np + p) * C) * 4),
                          w2 = _mm512_loadu_si512(wt + (size_t)((2 * np + p) * C) * 4);
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                if (!in[r]) continue;
                /* pixel iw0 + Q lies at xo + Q C; only pixels inside the row are formed */
                const unsigned char *xp = xb + xo[r] * es + 4 * p;
#pragma GCC unroll 40
                for (int Q = 0; Q < QN; Q++) {
                    if (!(vm >> Q & 1)) continue;
                    const __m512i a = unit_at(xp + (int64_t)Q * C * es);
#pragma GCC unroll 3
                    for (int kx = 0; kx < 3; kx++) {
                        if (Q < kx || (Q - kx) % S) continue;
                        const int o = (Q - kx) / S;
                        if (o >= NP) continue;
                        const __m512i wk = kx == 0 ? w0 : kx == 1 ? w1 : w2;
                        acc[r][o] = madd(F, acc[r][o], a, wk);
                    }
                }
            }
        }
    }
    float out[2 * GD_MAXP * 16];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 16
        for (int P = 0; P < NP; P++) _mm512_storeu_ps(out + (r * NP + P) * 16, acc[r][P]);
    finish(c, out, R, NP, oy, ox);
}

/* The general block: one row, NP pixels from ox, any kernel, strides, dilations; f32 (F) or bf16. */
GD_INLINE void blkg(const struct mixrt_gdp_call *c, int64_t oy, int64_t ox, const int NP, const bool F) {
    __m512 acc[8];
    const int64_t C = c->c, np = F ? c->g : c->g / 2, m0 = c->m0, cb = m0 / c->g * c->g, es = F ? 4 : 2;
    const unsigned char *xb = c->x, *wb = c->w;
    const __m512 b = _mm512_loadu_ps(c->b + m0);
#pragma GCC unroll 8
    for (int P = 0; P < NP; P++) acc[P] = b;
    for (int64_t ky = 0; ky < c->kh; ky++) {
        const int64_t ih = oy * c->sh - c->pt + ky * c->dh;
        if (ih < 0 || ih >= c->h) continue;
        const unsigned char *xrow = xb + (ih * c->wd * C + cb) * es;
        for (int64_t p = 0; p < np; p++)
            for (int64_t kx = 0; kx < c->kw; kx++) {
                const __m512i w =
                    _mm512_loadu_si512(wb + (((size_t)((ky * c->kw + kx) * np + p)) * (size_t)C + (size_t)m0) * 4);
#pragma GCC unroll 8
                for (int P = 0; P < NP; P++) {
                    const int64_t iw = (ox + P) * c->sw - c->pl + kx * c->dw;
                    if (iw < 0 || iw >= c->wd) continue;
                    acc[P] = madd(F, acc[P], unit_at(xrow + iw * C * es + 4 * p), w);
                }
            }
    }
    float out[8 * 16];
#pragma GCC unroll 8
    for (int P = 0; P < NP; P++) _mm512_storeu_ps(out + P * 16, acc[P]);
    finish(c, out, 1, NP, oy, ox);
}

/* One row (R 1) or two (R 2) of the 3-tap-wide form, np pixels from ox (1 <= np <= 16; <= 8
 * for R 2), at stride S, f32 (F) or bf16. */
#define GD_CASE(n, R, S, F)                                                                                            \
    case n: blk3(c, oy, ox, R, n, S, F); break;
#define GD_CASES8(R, S, F) GD_CASE(1, R, S, F) GD_CASE(2, R, S, F) GD_CASE(3, R, S, F) GD_CASE(4, R, S, F)             \
    GD_CASE(5, R, S, F) GD_CASE(6, R, S, F) GD_CASE(7, R, S, F) GD_CASE(8, R, S, F)
#define GD_CASES16(S, F) GD_CASES8(1, S, F) GD_CASE(9, 1, S, F) GD_CASE(10, 1, S, F) GD_CASE(11, 1, S, F)              \
    GD_CASE(12, 1, S, F) GD_CASE(13, 1, S, F) GD_CASE(14, 1, S, F) GD_CASE(15, 1, S, F) GD_CASE(16, 1, S, F)
#define GD_ROW3(name, S, F)                                                                                            \
    static void name(const struct mixrt_gdp_call *c, int64_t oy, int64_t ox, int R, int n) {                          \
        if (R == 2) switch (n) { GD_CASES8(2, S, F) default: break; }                                                  \
        else switch (n) { GD_CASES16(S, F) default: break; }                                                           \
    }
GD_ROW3(row3_s1, 1, false)
GD_ROW3(row3_s2, 2, false)
GD_ROW3(row3f_s1, 1, true)
GD_ROW3(row3f_s2, 2, true)

static void rowg(const struct mixrt_gdp_call *c, int64_t oy, const bool F) {
    const int64_t ow = c->ow;
    int64_t ox = 0;
    for (; ox + 8 <= ow; ox += 8) blkg(c, oy, ox, 8, F);
    if (ox + 4 <= ow) blkg(c, oy, ox, 4, F), ox += 4;
    if (ox + 2 <= ow) blkg(c, oy, ox, 2, F), ox += 2;
    if (ox < ow) blkg(c, oy, ox, 1, F);
}
static void rowg_bf16(const struct mixrt_gdp_call *c, int64_t oy) { rowg(c, oy, false); }
static void rowg_f32(const struct mixrt_gdp_call *c, int64_t oy) { rowg(c, oy, true); }

void mixrt_gdp_run_avx512(const struct mixrt_gdp_call *c) {
    const int64_t ow = c->ow;
    if (c->kw == 3 && c->dw == 1 && (c->sw == 1 || c->sw == 2)) {
        void (*row)(const struct mixrt_gdp_call *, int64_t, int64_t, int, int) =
            c->f32 ? (c->sw == 1 ? row3f_s1 : row3f_s2) : (c->sw == 1 ? row3_s1 : row3_s2);
        int64_t oy = c->oy, left = c->rows;
        if (ow <= 8)
            for (; left >= 2; left -= 2, oy += 2) row(c, oy, 0, 2, (int)ow);
        for (; left > 0; left--, oy++) {
            int64_t ox = 0;
            for (; ow - ox >= GD_MAXP; ox += GD_MAXP) row(c, oy, ox, 1, GD_MAXP);
            if (ox < ow) row(c, oy, ox, 1, (int)(ow - ox));
        }
        return;
    }
    for (int64_t oy = c->oy; oy < c->oy + c->rows; oy++) (c->f32 ? rowg_f32 : rowg_bf16)(c, oy);
}

#else
typedef int mixrt_gconv16_avx512_unused; /* ISO C wants a declaration in every translation unit */
#endif
