/* wino_avx512.c - the transforms of the Winograd F(4x4, 3x3) convolution (sgemm.c's conv_wino)
 * with AVX-512, 16 channels a vector (a masked tail); the body is wino_tr_impl.h's, so they give
 * wino_avx2.c's bits. Compiled with the AVX-512 flags; sgemm.c calls them only where the CPU has
 * AVX-512F. */
#include "backend/cpu/sgemm_impl.h"
#include "core/vec_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define WT_LANES 16
#define WT_V __m512
#define WT_MASK __mmask16
#define WT_ADD _mm512_add_ps
#define WT_SUB _mm512_sub_ps
#define WT_FMADD _mm512_fmadd_ps
#define WT_FNMADD _mm512_fnmadd_ps
#define WT_SET1 _mm512_set1_ps
#define WT_ZERO _mm512_setzero_ps
#define WT_LOADU _mm512_loadu_ps
#define WT_IN mixrt_wino_in_avx512
#define WT_OUT mixrt_wino_out_avx512
#define WT_IN2 mixrt_wino2f_in_avx512
#define WT_OUT2 mixrt_wino2f_out_avx512

/* Masked loads and stores cost what plain ones do here: the mask alone says which lanes. */
#define wt_lane_mask mixrt_v512_mask
#define wt_load(p, full, m) _mm512_maskz_loadu_ps(m, p)
#define wt_store(p, v, full, m) _mm512_mask_storeu_ps(p, m, v)

#include "backend/cpu/wino_tr_impl.h"
#endif
