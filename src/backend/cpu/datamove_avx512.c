/* datamove_avx512.c - the 2-D transpose in 16x16 register tiles: 4-byte elements in zmm
 * (unpack 32/64-bit, then two 128-bit lane shuffles), 2-byte elements in ymm (unpack
 * 16/32/64-bit, then one lane permute); a few planar rows of 4-byte elements into packed
 * ones by permutes. Invariant: pure bit moves, so the result equals the
 * scalar twin's exactly; tiles that do not fill 16x16 are left to the scalar twin. */
#include "backend/cpu/datamove_impl.h"

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>
#include <pthread.h>

#include "core/bf16_avx512.h"

/* 16 rows of 16 u32 at s (row stride sld) to 16 rows at d (row stride dld), transposed. */
static inline void tile32(const uint32_t *s, size_t sld, uint32_t *d, size_t dld) {
    __m512i r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512((const void *)(s + (size_t)i * sld));
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* per 128-bit lane: r[4g+c] holds column c of the lane's four columns, rows 4g..4g+3 */
    for (int g = 0; g < 16; g += 4) {
        r[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        r[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        r[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        r[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    /* gather lanes: even lanes (0x88) and odd lanes (0xdd) of rows 0-3 with rows 4-7 ... */
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88);
        t[4 + c] = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);
        t[8 + c] = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0x88);          /* column c */
        r[4 + c] = _mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0x88); /* column 4 + c */
        r[8 + c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0xdd);      /* column 8 + c */
        r[12 + c] = _mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0xdd); /* column 12 + c */
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_si512((void *)(d + (size_t)i * dld), r[i]);
}

static inline void tile16(const uint16_t *s, size_t sld, uint16_t *d, size_t dld) {
    __m256i r[16], a[16], b[16];
    for (int i = 0; i < 16; i++) r[i] = _mm256_loadu_si256((const __m256i *)(s + (size_t)i * sld));
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm256_unpacklo_epi16(r[i], r[i + 1]);     /* lane columns 0-3 of rows i, i+1 */
        a[i + 1] = _mm256_unpackhi_epi16(r[i], r[i + 1]); /* lane columns 4-7 */
    }
    for (int g = 0; g < 16; g += 4) {
        b[g] = _mm256_unpacklo_epi32(a[g], a[g + 2]);         /* columns 0,1 of rows g..g+3 */
        b[g + 1] = _mm256_unpackhi_epi32(a[g], a[g + 2]);     /* columns 2,3 */
        b[g + 2] = _mm256_unpacklo_epi32(a[g + 1], a[g + 3]); /* columns 4,5 */
        b[g + 3] = _mm256_unpackhi_epi32(a[g + 1], a[g + 3]); /* columns 6,7 */
    }
    /* r[8h + j], lane L: column 8L + j of rows 8h..8h+7 */
    for (int h = 0; h < 16; h += 8)
        for (int m = 0; m < 4; m++) {
            r[h + 2 * m] = _mm256_unpacklo_epi64(b[h + m], b[h + 4 + m]);
            r[h + 2 * m + 1] = _mm256_unpackhi_epi64(b[h + m], b[h + 4 + m]);
        }
    for (int j = 0; j < 8; j++) {
        a[j] = _mm256_permute2x128_si256(r[j], r[8 + j], 0x20);
        a[8 + j] = _mm256_permute2x128_si256(r[j], r[8 + j], 0x31);
    }
    for (int i = 0; i < 16; i++) _mm256_storeu_si256((__m256i *)(d + (size_t)i * dld), a[i]);
}

/* A few (2-8) rows b of 4-byte elements interleaved into dense rows a of nb (dst_ld == nb):
 * planar to packed, like an NCHW image of 3 channels to NHWC. Per 16 a: nb loads, and each
 * of the nb output vectors is picked from them by one permute per row (lane j of output
 * vector k is element (16k + j) / nb of row (16k + j) % nb). */
/* The permute indices and row masks for nb = 2..8, made once. */
static uint32_t narrow_idx[9][8][16];
static __mmask16 narrow_mask[9][8][8];
static pthread_once_t narrow_once = PTHREAD_ONCE_INIT;
static void narrow_init(void) {
    for (size_t nb = 2; nb <= 8; nb++)
        for (size_t k = 0; k < nb; k++)
            for (int j = 0; j < 16; j++) {
                size_t p = 16 * k + (size_t)j;
                narrow_idx[nb][k][j] = (uint32_t)(p / nb);
                narrow_mask[nb][k][p % nb] |= (__mmask16)(1u << j);
            }
}

/* Source rows: 32-bit elements, 16-bit ones (moved as they are) or f16 (widened to f32 on the
 * load); output vectors: stored as they are (32 or 16 bits) or rounded to bf16. */
enum { NR_SRC32, NR_SRC16, NR_SRC_F16 };
enum { NR_OUT32, NR_OUT16, NR_OUT_BF16 };

/* inlined with nb a constant where it is one (3: RGB), so the row loops unroll, and with the
 * kinds constant. 16 columns a of each row a step (16-bit rows widened to 32-bit lanes for the
 * permutes, packed back by vpmovdw). Returns the columns a done; the rest (na % 16) are the
 * scalar twins'. */
static inline __attribute__((always_inline)) size_t narrow_n(const void *s, size_t sld, void *d, size_t na, size_t nb,
                                                             int src, int out) {
    __m512i idx[8], r[8];
    __mmask16(*m)[8] = narrow_mask[nb];
    for (size_t k = 0; k < nb; k++) idx[k] = _mm512_loadu_si512((const void *)narrow_idx[nb][k]);
    size_t a = 0;
    for (; a + 16 <= na; a += 16) {
        for (size_t c = 0; c < nb; c++) {
            if (src == NR_SRC32) {
                r[c] = _mm512_loadu_si512((const void *)((const uint32_t *)s + c * sld + a));
            } else {
                __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)s + c * sld + a));
                r[c] = src == NR_SRC16 ? _mm512_cvtepu16_epi32(h) : _mm512_castps_si512(_mm512_cvtph_ps(h));
            }
        }
        for (size_t k = 0; k < nb; k++) {
            __m512i o = _mm512_permutexvar_epi32(idx[k], r[0]);
            for (size_t c = 1; c < nb; c++) o = _mm512_mask_permutexvar_epi32(o, m[k][c], idx[k], r[c]);
            if (out == NR_OUT32)
                _mm512_storeu_si512((void *)((uint32_t *)d + a * nb + 16 * k), o);
            else
                _mm256_storeu_si256((__m256i *)((uint16_t *)d + a * nb + 16 * k),
                                    out == NR_OUT16 ? _mm512_cvtepi32_epi16(o) : mixrt_v_bf16_rne(_mm512_castsi512_ps(o)));
        }
    }
    return a;
}

static void narrow32(const uint32_t *s, size_t sld, uint32_t *d, size_t na, size_t nb) {
    pthread_once(&narrow_once, narrow_init);
    size_t a = nb == 3 ? narrow_n(s, sld, d, na, 3, NR_SRC32, NR_OUT32) : narrow_n(s, sld, d, na, nb, NR_SRC32, NR_OUT32);
    if (a < na) mixrt_dm_transpose2d_scalar(4, s + a, sld, d + a * nb, nb, na - a, nb);
}

static void narrow16(const uint16_t *s, size_t sld, uint16_t *d, size_t na, size_t nb) {
    pthread_once(&narrow_once, narrow_init);
    size_t a = nb == 3 ? narrow_n(s, sld, d, na, 3, NR_SRC16, NR_OUT16) : narrow_n(s, sld, d, na, nb, NR_SRC16, NR_OUT16);
    if (a < na) mixrt_dm_transpose2d_scalar(2, s + a, sld, d + a * nb, nb, na - a, nb);
}

void mixrt_dm_narrow_f32_bf16_avx512(const float *s, size_t sld, uint16_t *d, size_t na, size_t nb) {
    size_t a = 0;
    if (nb == 1) {
        for (; a + 16 <= na; a += 16) _mm256_storeu_si256((__m256i *)(d + a), mixrt_v_bf16_rne(_mm512_loadu_ps(s + a)));
    } else if (nb <= 8) {
        pthread_once(&narrow_once, narrow_init);
        const uint32_t *u = (const uint32_t *)s;
        a = nb == 3 ? narrow_n(u, sld, d, na, 3, NR_SRC32, NR_OUT_BF16) : narrow_n(u, sld, d, na, nb, NR_SRC32, NR_OUT_BF16);
    }
    if (a < na) mixrt_dm_narrow_f32_bf16_scalar(s + a, sld, d + a * nb, na - a, nb);
}

void mixrt_dm_narrow_f16_bf16_avx512(const uint16_t *s, size_t sld, uint16_t *d, size_t na, size_t nb) {
    size_t a = 0;
    if (nb == 1) {
        for (; a + 16 <= na; a += 16)
            _mm256_storeu_si256((__m256i *)(d + a),
                                mixrt_v_bf16_rne(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + a)))));
    } else if (nb <= 8) {
        pthread_once(&narrow_once, narrow_init);
        a = nb == 3 ? narrow_n(s, sld, d, na, 3, NR_SRC_F16, NR_OUT_BF16)
                    : narrow_n(s, sld, d, na, nb, NR_SRC_F16, NR_OUT_BF16);
    }
    if (a < na) mixrt_dm_narrow_f16_bf16_scalar(s + a, sld, d + a * nb, na - a, nb);
}

void mixrt_dm_transpose2d_avx512(size_t es, const void *src, size_t src_ld, void *dst, size_t dst_ld, size_t na,
                                 size_t nb) {
    if ((es == 4 || es == 2) && nb >= 2 && nb <= 8 && dst_ld == nb && na >= 16) {
        if (es == 4) narrow32(src, src_ld, dst, na, nb);
        else narrow16(src, src_ld, dst, na, nb);
        return;
    }
    if ((es != 4 && es != 2) || na < 16 || nb < 16) {
        mixrt_dm_transpose2d_scalar(es, src, src_ld, dst, dst_ld, na, nb);
        return;
    }
    size_t fa = na & ~(size_t)15, fb = nb & ~(size_t)15;
    /* the source tile is 16 rows b of 16 elements a; the destination 16 rows a of 16 b */
    for (size_t b = 0; b < fb; b += 16)
        for (size_t a = 0; a < fa; a += 16) {
            if (es == 4)
                tile32((const uint32_t *)src + b * src_ld + a, src_ld, (uint32_t *)dst + a * dst_ld + b, dst_ld);
            else
                tile16((const uint16_t *)src + b * src_ld + a, src_ld, (uint16_t *)dst + a * dst_ld + b, dst_ld);
        }
    const char *s = src;
    char *d = dst;
    if (fa < na) /* the columns a >= fa, all b */
        mixrt_dm_transpose2d_scalar(es, s + fa * es, src_ld, d + fa * dst_ld * es, dst_ld, na - fa, nb);
    if (fb < nb) /* the rows b >= fb, a < fa */
        mixrt_dm_transpose2d_scalar(es, s + fb * src_ld * es, src_ld, d + fb * es, dst_ld, fa, nb - fb);
}

#else
void mixrt_dm_narrow_f32_bf16_avx512(const float *s, size_t sld, uint16_t *d, size_t na, size_t nb) {
    mixrt_dm_narrow_f32_bf16_scalar(s, sld, d, na, nb);
}
void mixrt_dm_narrow_f16_bf16_avx512(const uint16_t *s, size_t sld, uint16_t *d, size_t na, size_t nb) {
    mixrt_dm_narrow_f16_bf16_scalar(s, sld, d, na, nb);
}
void mixrt_dm_transpose2d_avx512(size_t es, const void *src, size_t src_ld, void *dst, size_t dst_ld, size_t na,
                                 size_t nb) {
    mixrt_dm_transpose2d_scalar(es, src, src_ld, dst, dst_ld, na, nb);
}
#endif
