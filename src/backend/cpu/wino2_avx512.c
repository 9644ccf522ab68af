/* wino2_avx512.c - the transforms of the bf16 Winograd F(2x2, 3x3) convolution (wino2.c),
 * AVX-512, 16 channels a vector (the last one masked: nothing past a row's channels is read or
 * written). The input transform widens bf16 to f32 (exact), forms B^T d B down the columns then
 * along the rows (exact: sums of four bf16 values) and rounds once to bf16 (subnormals to zero); the output transform
 * forms A^T M A in f32, adds bias and Z, applies the activation and rounds once. The matrices:
 * wino2_impl.h. Compiled with AVX-512 flags; reached only through wino2.c after its CPUID check. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/wino2_impl.h"
#include "core/bf16_avx512.h"

#define W2_INLINE static inline __attribute__((always_inline))

W2_INLINE __m512 ld_bf16(const uint16_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

void mixrt_wino2_in_avx512(const struct mixrt_wino2_in *a) {
    bool rin[4], cin[4];
    for (int i = 0; i < 4; i++)
        rin[i] = a->iy0 + i >= 0 && a->iy0 + i < a->h, cin[i] = a->ix0 + i >= 0 && a->ix0 + i < a->w;
    const size_t pix = (size_t)a->c, rowe = (size_t)(a->w * a->c);
    for (int64_t c0 = 0; c0 < a->c; c0 += 16) {
        const __mmask16 m = a->c - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (a->c - c0)) - 1u);
        const uint16_t *x = a->x + (size_t)c0;
        /* the 16 inputs stay in registers; each output row i is formed from them (4 + 4 more
         * registers: no spills of a 4x4 intermediate) */
        __m512 d[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                d[i][j] = rin[i] && cin[j] ? ld_bf16(x + (size_t)(a->iy0 + i) * rowe + (size_t)(a->ix0 + j) * pix, m)
                                           : _mm512_setzero_ps();
        uint16_t *v = a->v + (size_t)c0;
        for (int i = 0; i < 4; i++) {
            __m512 t[4];
            for (int j = 0; j < 4; j++)
                t[j] = i == 0   ? _mm512_sub_ps(d[0][j], d[2][j])
                       : i == 1 ? _mm512_add_ps(d[1][j], d[2][j])
                       : i == 2 ? _mm512_sub_ps(d[2][j], d[1][j])
                                : _mm512_sub_ps(d[1][j], d[3][j]);
            const __m512 r[4] = {_mm512_sub_ps(t[0], t[2]), _mm512_add_ps(t[1], t[2]), _mm512_sub_ps(t[2], t[1]),
                                 _mm512_sub_ps(t[1], t[3])};
            /* vcvtneps2bf16 alone: it reads a subnormal as zero, which V (never seen outside the
             * kernel) may lose; the scalar twin keeps them (below 1.2e-38 either way) */
            for (int j = 0; j < 4; j++)
                _mm256_mask_storeu_epi16(v + (size_t)(i * 4 + j) * a->ld, m, (__m256i)_mm512_cvtneps_pbh(r[j]));
        }
    }
}

void mixrt_wino2_out_avx512(const struct mixrt_wino2_out *a) {
    const __m512 p0 = _mm512_set1_ps(a->p0), p1 = _mm512_set1_ps(a->p1);
    for (int64_t c0 = 0; c0 < a->m; c0 += 16) {
        const __mmask16 m = a->m - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (a->m - c0)) - 1u);
        const float *mm = a->mm + (size_t)c0;
        __m512 t[2][4];
        for (int j = 0; j < 4; j++) {
            const __m512 m0 = _mm512_maskz_loadu_ps(m, mm + (size_t)j * a->ld),
                         m1 = _mm512_maskz_loadu_ps(m, mm + (size_t)(4 + j) * a->ld),
                         m2 = _mm512_maskz_loadu_ps(m, mm + (size_t)(8 + j) * a->ld),
                         m3 = _mm512_maskz_loadu_ps(m, mm + (size_t)(12 + j) * a->ld);
            t[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            t[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        const __m512 b = _mm512_maskz_loadu_ps(m, a->bias + c0);
        for (int r = 0; r < a->rows; r++)
            for (int q = 0; q < a->cols; q++) {
                __m512 v = q == 0 ? _mm512_add_ps(_mm512_add_ps(t[r][0], t[r][1]), t[r][2])
                                  : _mm512_sub_ps(_mm512_sub_ps(t[r][1], t[r][2]), t[r][3]);
                v = _mm512_add_ps(v, b);
                const size_t off = (size_t)r * a->row + (size_t)q * (size_t)a->m + (size_t)c0;
                if (a->z) v = _mm512_add_ps(v, ld_bf16(a->z + (size_t)r * a->zrow + (size_t)q * (size_t)a->m + (size_t)c0, m));
                v = mixrt_pw_act_v(a->act, v, p0, p1);
                if (a->y_f32) _mm512_mask_storeu_ps((float *)a->y + off, m, v);
                else _mm256_mask_storeu_epi16((uint16_t *)a->y + off, m, mixrt_v_bf16_hw(v));
            }
    }
}
#endif
