/* nnops_impl.h - private to the nn-op kernel candidates (nnops*.c): the small f32 vector
 * primitives the kernels are built from, as one table per ISA (scalar C in nnops.c, AVX-512
 * in nnops_avx512.c), picked once by CPUID. The primitives work on short blocks; the kernels
 * combine block results pairwise, so rounding error grows with log(n), not n. */
#ifndef MIXRT_BACKEND_CPU_NNOPS_IMPL_H
#define MIXRT_BACKEND_CPU_NNOPS_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Block length below which the primitives' lane accumulators sum directly; longer
 * reductions split in halves (multiples of 16) down to this. */
#define MIXRT_NNOPS_BLOCK 256

struct mixrt_nnops_isa {
    const char *name; /* "avx512", "avx2" or "scalar" */
    /* Sum of x[0..n) (n <= MIXRT_NNOPS_BLOCK for the error bound; any n works). */
    float (*sum)(const float *x, size_t n);
    /* Sum of (x[i] - mean)^2, same block rule. */
    float (*sumsq_dev)(const float *x, size_t n, float mean);
    /* Largest element, NaN if any is NaN, -inf for n == 0. */
    float (*max)(const float *x, size_t n);
    /* y[i] = exp(x[i]) (in place allowed): within 2 ulp; NaN stays NaN, -inf gives 0. */
    void (*exp)(const float *x, float *y, size_t n);
    /* acc[i] = max(acc[i], x[i]) with NaN propagating (as max above). */
    void (*vmax)(float *acc, const float *x, size_t n);
    /* y[r] = sum_i w[r * n + i] x[i] for r < rows (a row-major matrix times a vector; the
     * recurrent kernels' products): lane accumulators, in a fixed order. */
    void (*gemv)(const float *w, size_t rows, size_t n, const float *x, float *y);
    /* acc[j] += sum over r < rows of x[r * ld + j], j < n (x f32, or bf16 when bf): column
     * sums of a row-major block (a channels-last image's channels), in f32 lanes, rows added in
     * blocks of MIXRT_NNOPS_BLOCK before they reach acc, so the error grows with
     * MIXRT_NNOPS_BLOCK + rows / MIXRT_NNOPS_BLOCK, not rows. */
    void (*colsum)(float *acc, const void *x, bool bf, size_t rows, size_t ld, size_t n);
    /* The channels-last InstanceNormalization's partial moments (nnops.c): rows [s0, s1) of
     * channels c0 .. c0 + nc (nc <= MIXRT_NNOPS_IN_COLS) of x [S][C] (f32, or bf16 when bf): per
     * channel j the sum of x - center[j] (square false) or of ((x - center[j]) - lo[j])^2, in f32
     * over blocks of MIXRT_NNOPS_IN_ROWS rows and the blocks in f64, into out[j]. Every table
     * computes the same operations in the same order per channel: the same bits. */
    void (*in_partial)(const void *x, bool bf, size_t C, size_t c0, size_t nc, size_t s0, size_t s1,
                       const float *center, const float *lo, bool square, double *out);
    /* One channels-last row of C values: y[j] = ((x[j] - mean[j]) - mlo[j]) * a[j] + b[j] in f32
     * (x f32, or bf16 widened exactly); the same bits in every table. */
    void (*in_norm_row)(const void *x, bool bf, size_t C, const float *mean, const float *mlo, const float *a,
                        const float *b, float *y);
    /* One output row of a channels-last max pool (nnops.c's nn_maxpool_nhwc): tmp[j] = the max
     * over r < nrows of rows[r][j], j < W C (x f32, or bf16 when bf, widened exactly), then
     * pixel o < OW of y (same dtype) gets, per channel c < C, the max of tmp[t C + c] over the
     * columns t in [c0[o], c1[o]) (never empty). The max of bf16 values is one of them, so the
     * narrowing is exact. NaN propagates (the reference's rule); the same bits in every table. */
    void (*maxpool_row)(const void *const *rows, int nrows, bool bf, size_t W, size_t C, const int64_t *c0,
                        const int64_t *c1, size_t OW, float *tmp, void *y);
};
#define MIXRT_NNOPS_IN_COLS 64
#define MIXRT_NNOPS_IN_ROWS 32
/* The scalar colsum (nnops.c), also the AVX2 table's. */
void mixrt_nnops_colsum_scalar(float *acc, const void *x, bool bf, size_t rows, size_t ld, size_t n);
/* The scalar instance-norm primitives (nnops.c), also the AVX2 table's. */
void mixrt_nnops_in_partial_scalar(const void *x, bool bf, size_t C, size_t c0, size_t nc, size_t s0, size_t s1,
                                   const float *center, const float *lo, bool square, double *out);
void mixrt_nnops_in_norm_row_scalar(const void *x, bool bf, size_t C, const float *mean, const float *mlo,
                                    const float *a, const float *b, float *y);
/* The scalar maxpool_row (nnops.c), also the AVX2 table's. */
void mixrt_nnops_maxpool_row_scalar(const void *const *rows, int nrows, bool bf, size_t W, size_t C,
                                    const int64_t *c0, const int64_t *c1, size_t OW, float *tmp, void *y);

/* The table the kernels use: AVX-512 when the CPU has AVX512F/BW/VL/DQ (and the OS saves
 * their state), else AVX2 where it has AVX2 and FMA, else scalar. */
const struct mixrt_nnops_isa *mixrt_nnops_isa(void);
/* Tests: force the scalar table (true) or the CPUID choice (false) for the calls that
 * follow. Not thread-safe; tests only. */
void mixrt_nnops_force_scalar(bool scalar);

/* The AVX-512 table (nnops_avx512.c, x86-64 builds only): use only after the CPUID check
 * in mixrt_nnops_isa. The scalar table (nnops.c) runs anywhere. */
extern const struct mixrt_nnops_isa mixrt_nnops_isa_avx512;
extern const struct mixrt_nnops_isa mixrt_nnops_isa_scalar;
/* The AVX2 + FMA table (nnops_avx2.c, x86-64 builds only), for CPUs without AVX-512. */
extern const struct mixrt_nnops_isa mixrt_nnops_isa_avx2;
/* Tests: force the AVX2 table where the CPU has AVX2 and FMA (not thread-safe). */
void mixrt_nnops_force_avx2(bool avx2);

#endif /* MIXRT_BACKEND_CPU_NNOPS_IMPL_H */
