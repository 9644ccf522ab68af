/* gemv_impl.h - private to the small-row 1x1 convolution (gemv.c: driver and scalar span;
 * gemv_avx512.c: the AVX-512 span). */
#ifndef MIXRT_BACKEND_CPU_GEMV_IMPL_H
#define MIXRT_BACKEND_CPU_GEMV_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* y[j] += sum_i x[i] w[i * m + j] for j < m (f32; the products in order of i, one fma each).
 * Call only where the CPU has AVX-512F. */
void mixrt_gemv_row_avx512(const float *x, size_t k, const float *w, size_t m, float *y);
/* The same with w in bf16 (bits; widened exactly). */
void mixrt_gemv_row_bf16w_avx512(const float *x, size_t k, const uint16_t *w, size_t m, float *y);
/* Software prefetch distance of fmm_gemv's streaming spans (AVX-512 and AVX2): 1 KiB ahead in
 * each stream of B. The hardware prefetchers alone left one core at ~30-36 GB/s on AlexNet's fc6
 * (bf16 [4096, 9216], f32 likewise); with this 52-62 GB/s (512 B: 50, 2 KiB: 52-55, 4 KiB: 48).
 * The four-row steps of B [N][K] (gemv_avx512.c) measured best at 1 KiB too. */
#define MIXRT_FMV_PF_BYTES 1024
/* fmm_gemv: y [R][N] = a [R][K] B for the columns [j0, j1) of B [K][N] (kn), or for its rows
 * [j0, j1) of B [N][K] (nk, B transposed); B f32, or bf16 bits (bf) widened exactly; R <= 4.
 * Call only where the CPU has AVX-512F. */
/* fmm_gemv by shares of K: y [R][N] = a[:, k0:k1] B[k0:k1, :] (B [K][N], a's rows lda apart). */
void mixrt_fmv_kn_krange_avx512(const float *a, int R, size_t lda, size_t k0, size_t k1, const void *b, bool bf,
                                size_t N, float *y);
void mixrt_fmv_kn_avx512(const float *a, int R, size_t K, const void *b, bool bf, size_t N, size_t j0, size_t j1,
                         float *y);
void mixrt_fmv_nk_avx512(const float *a, int R, size_t K, const void *b, bool bf, size_t N, size_t j0, size_t j1,
                         float *y);
/* nk with A in bf16 too: pairs of K by vdpbf16ps. Only where the CPU has AVX512-BF16. */
void mixrt_fmv_nk_dp_avx512(const uint16_t *a, int R, size_t K, const uint16_t *b, size_t N, size_t j0, size_t j1,
                            float *y);
/* True when fmm_gemv runs FusedMatMul node n with its AVX-512 spans and B holds 64 MiB or
 * more: dnnl_fused_matmul then stands aside - for 1-4 rows both read B once, and its packed
 * copy would double B while the builder times it (VGG-16's fc6: 392 MiB). */
struct mixrt_graph;
struct mixrt_node;
bool mixrt_fmv_streams_big_b(const struct mixrt_graph *g, const struct mixrt_node *n);
/* The AVX2 + FMA twins of the f32 / bf16-weight spans above (gemv_avx2.c), for CPUs without
 * AVX-512: call only where the CPU has AVX2 and FMA. */
void mixrt_gemv_row_avx2(const float *x, size_t k, const float *w, size_t m, float *y);
void mixrt_gemv_row_bf16w_avx2(const float *x, size_t k, const uint16_t *w, size_t m, float *y);
void mixrt_fmv_kn_krange_avx2(const float *a, int R, size_t lda, size_t k0, size_t k1, const void *b, bool bf,
                              size_t N, float *y);
void mixrt_fmv_kn_avx2(const float *a, int R, size_t K, const void *b, bool bf, size_t N, size_t j0, size_t j1,
                       float *y);
void mixrt_fmv_nk_avx2(const float *a, int R, size_t K, const void *b, bool bf, size_t N, size_t j0, size_t j1,
                       float *y);
/* Tests: the scalar span (and the scalar element-wise activations' dispatch left as is) for the
 * runs that follow (not thread-safe). 2: the AVX2 spans where the CPU has AVX2 and FMA. */
void mixrt_gemv_force_scalar(int on);

#endif /* MIXRT_BACKEND_CPU_GEMV_IMPL_H */
