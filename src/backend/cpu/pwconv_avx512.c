/* pwconv_avx512.c - the AVX512-BF16 tile kernel of the pointwise channels-last bf16 conv
 * (pwconv.c); below it ig_conv_nhwc's bf16 tile and igf_conv_nhwc's f32 one (igconv.c; AVX-512F
 * instructions only). A pw tile is up to 4 rows (pixels) by up to 6 blocks of 16 output channels:
 * 24 f32 accumulators, started at the bias; per pair of input channels each row's pair is
 * broadcast once (one dword) and each block's 16 weight pairs loaded once, then one vdpbf16ps per
 * row and block. The epilogue adds Z, applies the activation and rounds to bf16 in register (or
 * stores f32 rows for the driver's activations). Only the last block of a row is masked; no
 * element past a row's K input channels or N outputs is read or written. Compiled with AVX-512
 * flags; reached only through pwconv.c and igconv.c after their CPUID checks. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/pwconv_impl.h"

#define PW_INLINE static inline __attribute__((always_inline))
#define PW_ROWS 4
#define PW_BLOCKS 6

/* vcvtneps2bf16: round to nearest even, subnormal f32 inputs read as zero (the scalar twin keeps
 * them; below 1.2e-38 either way). */
PW_INLINE __m256i to_bf16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

/* The pair of input channels p of row x as one dword; with odd K the last pair holds channel
 * K - 1 alone (its weight partner is zero; the word past the row is not read). */
PW_INLINE __m512i pair(const uint16_t *x, int64_t p) {
    uint32_t v;
    memcpy(&v, x + 2 * p, sizeof(v));
    return _mm512_set1_epi32((int)v);
}

/* What the epilogue reads, as locals (stores through may-alias vector types would otherwise
 * reload fields through the pointer). */
struct pw_epi {
    enum mixrt_pw_act act;
    bool y_f32;
    __m512 p0, p1;
};

PW_INLINE void finish(const struct pw_epi e, __m512 v, const uint16_t *z, void *y, int64_t off, const bool tail,
                      __mmask16 m) {
    if (z) {
        __m256i h = tail ? _mm256_maskz_loadu_epi16(m, z + off) : _mm256_loadu_si256((const __m256i *)(z + off));
        v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
    v = mixrt_pw_act_v(e.act, v, e.p0, e.p1);
    if (e.y_f32) {
        float *q = (float *)y + off;
        if (tail) _mm512_mask_storeu_ps(q, m, v);
        else _mm512_storeu_ps(q, v);
    } else {
        uint16_t *q = (uint16_t *)y + off;
        if (tail) _mm256_mask_storeu_epi16(q, m, to_bf16(v));
        else _mm256_storeu_si256((__m256i *)q, to_bf16(v));
    }
}

/* R rows from row r0, NB blocks from block j0 (the last of them masked by m when tail). */
PW_INLINE void tile(const struct mixrt_pw_call *c, const struct pw_epi e, const int R, const int NB, int64_t r0,
                    int64_t j0, const bool tail, __mmask16 m) {
    __m512 acc[PW_ROWS][PW_BLOCKS];
    const int64_t K = c->k, N = c->n, kp = c->kp, full = K / 2;
    const uint16_t *x = c->x + r0 * K;
    const uint16_t *w = c->w + (size_t)j0 * (size_t)kp * (2 * MIXRT_PW_NBLK);
    const size_t wstep = (size_t)kp * (2 * MIXRT_PW_NBLK);
#pragma GCC unroll 6
    for (int j = 0; j < NB; j++) {
        const __m512 b = _mm512_loadu_ps(c->b + (j0 + j) * MIXRT_PW_NBLK);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r][j] = b;
    }
    for (int64_t p = 0; p < full; p++) {
        __m512i wv[PW_BLOCKS];
#pragma GCC unroll 6
        for (int j = 0; j < NB; j++) wv[j] = _mm512_loadu_si512(w + j * wstep + (size_t)p * (2 * MIXRT_PW_NBLK));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512i a = pair(x + r * K, p);
#pragma GCC unroll 6
            for (int j = 0; j < NB; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], (__m512bh)a, (__m512bh)wv[j]);
        }
    }
    if (K % 2) {
        __m512i wv[PW_BLOCKS];
#pragma GCC unroll 6
        for (int j = 0; j < NB; j++) wv[j] = _mm512_loadu_si512(w + j * wstep + (size_t)full * (2 * MIXRT_PW_NBLK));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512i a = _mm512_set1_epi32((int)x[r * K + K - 1]);
#pragma GCC unroll 6
            for (int j = 0; j < NB; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], (__m512bh)a, (__m512bh)wv[j]);
        }
    }
    const uint16_t *z = c->z;
    void *y = c->y;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int j = 0; j < NB; j++) {
            const bool t = tail && j == NB - 1;
            finish(e, acc[r][j], z, y, (r0 + r) * N + (j0 + j) * MIXRT_PW_NBLK, t, t ? m : (__mmask16)0xffff);
        }
}

/* All blocks of rows [r0, r0 + R). */
PW_INLINE void rows(const struct mixrt_pw_call *c, const struct pw_epi e, const int R, int64_t r0) {
    const int64_t nb = (c->n + MIXRT_PW_NBLK - 1) / MIXRT_PW_NBLK, left = c->n - (nb - 1) * MIXRT_PW_NBLK;
    const bool tail = left < MIXRT_PW_NBLK;
    const __mmask16 m = (__mmask16)((1u << left) - 1u);
    int64_t j0 = 0;
    for (; j0 + PW_BLOCKS < nb || (j0 + PW_BLOCKS == nb && !tail); j0 += PW_BLOCKS)
        tile(c, e, R, PW_BLOCKS, r0, j0, false, m);
    switch (nb - j0) {
    case 6: tile(c, e, R, 6, r0, j0, tail, m); break;
    case 5: tile(c, e, R, 5, r0, j0, tail, m); break;
    case 4: tile(c, e, R, 4, r0, j0, tail, m); break;
    case 3: tile(c, e, R, 3, r0, j0, tail, m); break;
    case 2: tile(c, e, R, 2, r0, j0, tail, m); break;
    case 1: tile(c, e, R, 1, r0, j0, tail, m); break;
    default: break;
    }
}

void mixrt_pw_rows_avx512(const struct mixrt_pw_call *c) {
    const struct pw_epi e = {c->act, c->y_f32, _mm512_set1_ps(c->p0), _mm512_set1_ps(c->p1)};
    int64_t r0 = 0;
    for (; r0 + PW_ROWS <= c->rows; r0 += PW_ROWS) rows(c, e, PW_ROWS, r0);
    switch (c->rows - r0) {
    case 3: rows(c, e, 3, r0); break;
    case 2: rows(c, e, 2, r0); break;
    case 1: rows(c, e, 1, r0); break;
    default: break;
    }
}

/* ---- ig_conv_nhwc's tile (igconv.c) ------------------------------------------------------ */

/* R rows from r0 by NB blocks of group g (blocks 4 g ..), over pairs [k0, k0 + np) of the
 * flattened K (a step may start and end inside a tap; no pair straddles two, C being even).
 * first: the sums
 * start at the bias, else at acc; last: the epilogue into y, else the sums go back to acc. pf: a
 * line of the next step's W to bring in each pair step, so the rows' tiles of one step fetch the
 * next step's W while they compute. */
PW_INLINE void ig_tile(const struct mixrt_ig_call *c, const struct pw_epi e, const int R, const int NB, int64_t r0,
                       int64_t g, int64_t k0, int64_t np, bool first, bool last, bool tail, __mmask16 m,
                       const char *pf) {
    __m512 acc[MIXRT_IG_ROWS][MIXRT_IG_BLOCKS];
    const uint16_t *ar[MIXRT_IG_ROWS];
    const int64_t jb = g * MIXRT_IG_BLOCKS;
    const uint16_t *w = c->w + mixrt_ig_widx(c->kp, jb * MIXRT_PW_NBLK, 2 * k0);
    float *ac = c->acc + r0 * (MIXRT_IG_BLOCKS * MIXRT_PW_NBLK);
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++) {
        const __m512 b = _mm512_loadu_ps(c->b + (jb + j) * MIXRT_PW_NBLK);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
            acc[r][j] = first ? b : _mm512_loadu_ps(ac + r * (MIXRT_IG_BLOCKS * MIXRT_PW_NBLK) + j * MIXRT_PW_NBLK);
    }
    if (last) {
        /* Z's and Y's lines of the tile now, while its products run: a tile's 6 rows are 6
         * strided pieces the hardware's prefetcher does not follow (ResNet-50's layer3 conv3,
         * residual Z: 0.20 ms against oneDNN's 0.15 without this) */
        const size_t es = c->y_f32 ? 4 : 2, rb = (size_t)NB * MIXRT_PW_NBLK;
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const size_t off = (size_t)((r0 + r) * c->n + jb * MIXRT_PW_NBLK);
            for (size_t bq = 0; bq < rb * es; bq += 64) _mm_prefetch((const char *)c->y + off * es + bq, _MM_HINT_ET0);
            if (c->z)
                for (size_t bq = 0; bq < rb * 2; bq += 64) _mm_prefetch((const char *)(c->z + off) + bq, _MM_HINT_T0);
        }
    }
    /* the step's pairs tap by tap (each tap its rows' own input pixels) */
    for (int64_t k = k0, t = k0 / c->cp; k < k0 + np; t++) {
        const int64_t q0 = k - t * c->cp, seg = c->cp - q0 < k0 + np - k ? c->cp - q0 : k0 + np - k;
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) ar[r] = c->a[(r0 + r) * c->taps + t] + 2 * q0;
        for (int64_t p = 0; p < seg; p++) {
            __m512i wv[MIXRT_IG_BLOCKS];
#pragma GCC unroll 4
            for (int j = 0; j < NB; j++) wv[j] = _mm512_loadu_si512(w + j * (2 * MIXRT_PW_NBLK));
            w += MIXRT_IG_BLOCKS * 2 * MIXRT_PW_NBLK;
            _mm_prefetch(pf, _MM_HINT_T1);
            pf += 64;
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                /* the pair broadcast into a register: vdpbf16ps with a memory operand (broadcast
                 * or not) ran at a third of the rate on Zen 5 */
                uint32_t v;
                memcpy(&v, ar[r] + 2 * p, sizeof(v));
                const __m512i a = _mm512_set1_epi32((int)v);
#pragma GCC unroll 4
                for (int j = 0; j < NB; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], (__m512bh)wv[j], (__m512bh)a);
            }
        }
        k += seg;
    }
    if (!last) {
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int j = 0; j < NB; j++)
                _mm512_storeu_ps(ac + r * (MIXRT_IG_BLOCKS * MIXRT_PW_NBLK) + j * MIXRT_PW_NBLK, acc[r][j]);
        return;
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < NB; j++) {
            const bool tl = tail && j == NB - 1;
            finish(e, acc[r][j], c->z, c->y, (r0 + r) * c->n + (jb + j) * MIXRT_PW_NBLK, tl,
                   tl ? m : (__mmask16)0xffff);
        }
}

#define IG_CASE(R, NB)                                                                                                 \
    case (R)*8 + (NB):                                                                                                 \
        ig_tile(c, e, R, NB, r0, g, k0, np, first, last, tl, m, pf);                                                   \
        break;
#define IG_ROWS(R) IG_CASE(R, 1) IG_CASE(R, 2) IG_CASE(R, 3) IG_CASE(R, 4)

void mixrt_ig_run_avx512(const struct mixrt_ig_call *c) {
    const struct pw_epi e = {c->act, c->y_f32, _mm512_set1_ps(c->p0), _mm512_set1_ps(c->p1)};
    const int64_t nbt = (c->n + MIXRT_PW_NBLK - 1) / MIXRT_PW_NBLK, left = c->n - (nbt - 1) * MIXRT_PW_NBLK;
    const bool tail = left < MIXRT_PW_NBLK;
    const __mmask16 m = (__mmask16)((1u << left) - 1u);
    /* row tiles of 5-6 rows (49 = 4 x 6 + 5 x 5), not 6s and a short one */
    const int64_t nrt = (c->rows + MIXRT_IG_ROWS - 1) / MIXRT_IG_ROWS;
    const size_t line = 64; /* bytes of one block's pair: 16 channels x 2 bf16 */
    for (int64_t g = c->g0; g < c->g1; g++) {
        const int64_t jb = g * MIXRT_IG_BLOCKS;
        const int NB = (int)(nbt - jb < MIXRT_IG_BLOCKS ? nbt - jb : MIXRT_IG_BLOCKS);
        const bool tl = tail && jb + NB == nbt;
        for (int64_t k0 = 0; k0 < c->kp; k0 += c->chunk) {
            const int64_t np = c->kp - k0 < c->chunk ? c->kp - k0 : c->chunk;
            const bool first = k0 == 0, last = k0 + np == c->kp;
            /* the next step's W (this group's next pairs, else the next group's first), one
             * contiguous run of 4 lines a pair; row tile rt brings lines [rt np, rt np + np)
             * of it, and tiles past its end re-touch their own (lines past what this step's
             * tiles cover are left to the hardware's prefetcher) */
            const int64_t ng = last ? g + 1 : g, nk = last ? 0 : k0 + np;
            const char *here = (const char *)(c->w + mixrt_ig_widx(c->kp, jb * MIXRT_PW_NBLK, 2 * k0));
            const char *next =
                ng < c->g1 ? (const char *)(c->w + mixrt_ig_widx(c->kp, ng * MIXRT_IG_BLOCKS * MIXRT_PW_NBLK, 2 * nk))
                           : NULL;
            const int64_t nlines = next ? MIXRT_IG_BLOCKS * (c->kp - nk < c->chunk ? c->kp - nk : c->chunk) : 0;
            for (int64_t rt = 0; rt < nrt; rt++) {
                const int64_t r0 = rt * c->rows / nrt;
                const int R = (int)((rt + 1) * c->rows / nrt - r0);
                const char *pf = rt * np < nlines ? next + (size_t)(rt * np) * line : here;
                /* clang-format off */
                switch (R * 8 + NB) {
                    IG_ROWS(1) IG_ROWS(2) IG_ROWS(3) IG_ROWS(4) IG_ROWS(5) IG_ROWS(6)
                default: break;
                }
                /* clang-format on */
            }
        }
    }
}
#undef IG_ROWS
#undef IG_CASE

/* ---- igf_conv_nhwc's tile (igconv.c): ig_tile's f32 twin ---------------------------------- */

/* R rows from r0 by NB blocks of group g, over k [k0, k0 + nk) of the flattened K (a step may
 * start and end inside a tap); first, last and pf as ig_tile's. Per k: the 4 blocks' W loaded
 * once, each row's x broadcast into a register (not a memory operand, as ig_tile), one FMA per
 * row and block. The epilogue: Z, the activation, f32 stores (the last block masked by m when
 * tail). */
PW_INLINE void igf_tile(const struct mixrt_igf_call *c, const struct pw_epi e, const int R, const int NB, int64_t r0,
                        int64_t g, int64_t k0, int64_t nk, bool first, bool last, bool tail, __mmask16 m,
                        const char *pf) {
    __m512 acc[MIXRT_IG_ROWS][MIXRT_IG_BLOCKS];
    const float *ar[MIXRT_IG_ROWS];
    const int64_t jb = g * MIXRT_IG_BLOCKS, gw = MIXRT_IG_BLOCKS * MIXRT_PW_NBLK;
    const float *w = c->w + mixrt_igf_widx(c->k, jb * MIXRT_PW_NBLK, k0);
    float *ac = c->acc + r0 * gw;
#pragma GCC unroll 4
    for (int j = 0; j < NB; j++) {
        const __m512 b = _mm512_loadu_ps(c->b + (jb + j) * MIXRT_PW_NBLK);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) acc[r][j] = first ? b : _mm512_loadu_ps(ac + r * gw + j * MIXRT_PW_NBLK);
    }
    if (last) { /* the tile's Y and Z lines, as ig_tile */
        const size_t rb = (size_t)NB * MIXRT_PW_NBLK * sizeof(float);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const size_t off = (size_t)((r0 + r) * c->n + jb * MIXRT_PW_NBLK);
            for (size_t bq = 0; bq < rb; bq += 64) _mm_prefetch((const char *)(c->y + off) + bq, _MM_HINT_ET0);
            if (c->z)
                for (size_t bq = 0; bq < rb; bq += 64) _mm_prefetch((const char *)(c->z + off) + bq, _MM_HINT_T0);
        }
    }
    for (int64_t k = k0, t = k0 / c->c; k < k0 + nk; t++) {
        const int64_t q0 = k - t * c->c, seg = c->c - q0 < k0 + nk - k ? c->c - q0 : k0 + nk - k;
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) ar[r] = c->a[(r0 + r) * c->taps + t] + q0;
        for (int64_t p = 0; p < seg; p++) {
            __m512 wv[MIXRT_IG_BLOCKS];
#pragma GCC unroll 4
            for (int j = 0; j < NB; j++) wv[j] = _mm512_loadu_ps(w + j * MIXRT_PW_NBLK);
            w += gw;
            _mm_prefetch(pf, _MM_HINT_T1);
            pf += 64;
#pragma GCC unroll 6
            for (int r = 0; r < R; r++) {
                const __m512 a = _mm512_set1_ps(ar[r][p]);
#pragma GCC unroll 4
                for (int j = 0; j < NB; j++) acc[r][j] = _mm512_fmadd_ps(wv[j], a, acc[r][j]);
            }
        }
        k += seg;
    }
    if (!last) {
#pragma GCC unroll 6
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int j = 0; j < NB; j++) _mm512_storeu_ps(ac + r * gw + j * MIXRT_PW_NBLK, acc[r][j]);
        return;
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < NB; j++) {
            const bool tl = tail && j == NB - 1;
            const __mmask16 mj = tl ? m : (__mmask16)0xffff;
            const int64_t off = (r0 + r) * c->n + (jb + j) * MIXRT_PW_NBLK;
            __m512 v = acc[r][j];
            if (c->z) v = _mm512_add_ps(v, tl ? _mm512_maskz_loadu_ps(mj, c->z + off) : _mm512_loadu_ps(c->z + off));
            v = mixrt_pw_act_v(e.act, v, e.p0, e.p1);
            if (tl) _mm512_mask_storeu_ps(c->y + off, mj, v);
            else _mm512_storeu_ps(c->y + off, v);
        }
}

#define IGF_CASE(R, NB)                                                                                                \
    case (R)*8 + (NB):                                                                                                 \
        igf_tile(c, e, R, NB, r0, g, k0, nk, first, last, tl, m, pf);                                                  \
        break;
#define IGF_ROWS(R) IGF_CASE(R, 1) IGF_CASE(R, 2) IGF_CASE(R, 3) IGF_CASE(R, 4)

/* As mixrt_ig_run_avx512, by k instead of pairs: a k's W is 4 lines, as a pair's there. */
void mixrt_igf_run_avx512(const struct mixrt_igf_call *c) {
    const struct pw_epi e = {c->act, true, _mm512_set1_ps(c->p0), _mm512_set1_ps(c->p1)};
    const int64_t nbt = (c->n + MIXRT_PW_NBLK - 1) / MIXRT_PW_NBLK, left = c->n - (nbt - 1) * MIXRT_PW_NBLK;
    const bool tail = left < MIXRT_PW_NBLK;
    const __mmask16 m = (__mmask16)((1u << left) - 1u);
    const int64_t nrt = (c->rows + MIXRT_IG_ROWS - 1) / MIXRT_IG_ROWS, gw = MIXRT_IG_BLOCKS * MIXRT_PW_NBLK;
    const size_t line = 64;
    for (int64_t g = c->g0; g < c->g1; g++) {
        const int64_t jb = g * MIXRT_IG_BLOCKS;
        const int NB = (int)(nbt - jb < MIXRT_IG_BLOCKS ? nbt - jb : MIXRT_IG_BLOCKS);
        const bool tl = tail && jb + NB == nbt;
        for (int64_t k0 = 0; k0 < c->k; k0 += c->chunk) {
            const int64_t nk = c->k - k0 < c->chunk ? c->k - k0 : c->chunk;
            const bool first = k0 == 0, last = k0 + nk == c->k;
            const int64_t ng = last ? g + 1 : g, nx = last ? 0 : k0 + nk;
            const char *here = (const char *)(c->w + mixrt_igf_widx(c->k, jb * MIXRT_PW_NBLK, k0));
            const char *next = ng < c->g1 ? (const char *)(c->w + mixrt_igf_widx(c->k, ng * gw, nx)) : NULL;
            const int64_t nlines = next ? MIXRT_IG_BLOCKS * (c->k - nx < c->chunk ? c->k - nx : c->chunk) : 0;
            for (int64_t rt = 0; rt < nrt; rt++) {
                const int64_t r0 = rt * c->rows / nrt;
                const int R = (int)((rt + 1) * c->rows / nrt - r0);
                const char *pf = rt * nk < nlines ? next + (size_t)(rt * nk) * line : here;
                /* clang-format off */
                switch (R * 8 + NB) {
                    IGF_ROWS(1) IGF_ROWS(2) IGF_ROWS(3) IGF_ROWS(4) IGF_ROWS(5) IGF_ROWS(6)
                default: break;
                }
                /* clang-format on */
            }
        }
    }
}
#undef IGF_ROWS
#undef IGF_CASE
#endif
