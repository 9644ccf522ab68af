/* attention_impl.h - private to the com.mixrt Attention kernels (ref_attention.c,
 * attention.c, attention_avx512.c): the node's geometry as the reference validates it, and
 * the per-ISA row-block primitives of the fast kernel (scalar in attention.c, AVX-512 in
 * attention_avx512.c, picked once by CPUID). */
#ifndef MIXRT_BACKEND_CPU_ATTENTION_IMPL_H
#define MIXRT_BACKEND_CPU_ATTENTION_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/kernels.h"

/* One Attention node's inputs as logical [B,H,S,D] views (see fuse_attention.c). */
struct mixrt_attention_geom {
    const struct mixrt_tensor *x[3]; /* Q, K, V */
    const struct mixrt_tensor *mask; /* NULL: none */
    int64_t perm[3][4], out_perm[4];
    int64_t dims[3][4];    /* logical dims of Q [B,H,Sq,D], K [B,H,Sk,D], V [B,H,Sk,Dv] */
    int64_t strides[3][4]; /* element strides of those views; 0 on broadcast B/H axes */
    int64_t mask_strides[4]; /* over [B,H,Sq,Sk], 0 where the mask broadcasts */
    int64_t b, h, sq, sk, d, dv;
    int64_t ydims[4];    /* the output's dims */
    int64_t ystrides[4]; /* element strides of O [B,H,Sq,Dv] in the output */
    float scale, fill;
    bool causal;
};

/* Validates node k's inputs and attributes (errors name the node) and fills *a. */
mixrt_status mixrt_attention_geometry(struct mixrt_kernel_ctx *k, struct mixrt_attention_geom *a);

/* Query rows handled together by the block primitives. */
#define MIXRT_ATTN_ROWS 4

struct mixrt_attention_isa {
    const char *name; /* "avx512" or "scalar" */
    /* s[r * lds + j] = sum_d q[r * D + d] * kt[d * ldk + j] for r < rows, j < n (kt is K^T
     * packed [D, ldk], ldk a multiple of 16 and >= n). */
    void (*scores)(const float *q, int rows, const float *kt, size_t ldk, size_t d, size_t n, float *s,
                   size_t lds);
    /* Softmax numerator in place over s[0..n): s = exp(s - max); returns the sum. Writes
     * the max to *mx (-inf for an all -inf row, NaN when one is NaN) and to *nz one past
     * the last element that is not exactly 0 (0 if none). */
    float (*exp_sum)(float *s, size_t n, float *mx, size_t *nz);
    /* o[r * dv + c] = sum_{j < n} p[r * ldp + j] * v[j * ldv + c] for r < rows, c < dv. */
    void (*pv)(const float *p, int rows, size_t ldp, const float *v, size_t ldv, size_t n, size_t dv, float *o);
    /* bf16 twins on pairs (uint32: element 2t in the low half, 2t + 1 in the high half),
     * products summed in f32 (vdpbf16ps where the CPU has AVX512-BF16; NULL in a table
     * whose CPU lacks it, and the kernel then widens bf16 to f32 instead):
     * s[r * lds + j] = sum_{t < dp} dot(qp[r * dp + t], kp[t * ldk + j]) for j < n, ldk a
     * multiple of 16; o[r * dv + c] = sum_{t < np} dot(pp[r * ldp + t], vp[t * ldv + c])
     * for c < dv, ldv a multiple of 16 with zero pairs past dv. */
    void (*scores_bf16)(const uint32_t *qp, int rows, size_t dp, const uint32_t *kp, size_t ldk, size_t n, float *s,
                        size_t lds);
    void (*pv_bf16)(const uint32_t *pp, int rows, size_t ldp, const uint32_t *vp, size_t ldv, size_t np, size_t dv,
                    float *o);
};

extern const struct mixrt_attention_isa mixrt_attention_isa_scalar;
extern const struct mixrt_attention_isa mixrt_attention_isa_avx512;     /* x86-64 only */
extern const struct mixrt_attention_isa mixrt_attention_isa_avx512bf16; /* x86-64 only */
/* AVX-512 (with the bf16 pair primitives when the CPU has AVX512-BF16) when the CPU has
 * F/BW/VL/DQ, else scalar (whose bf16 pair primitives emulate vdpbf16ps in f32). */
const struct mixrt_attention_isa *mixrt_attention_isa(void);
/* Tests: force the scalar twin for the calls that follow (not thread-safe). */
void mixrt_attention_force_scalar(bool scalar);

#endif /* MIXRT_BACKEND_CPU_ATTENTION_IMPL_H */
