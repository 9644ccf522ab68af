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
    const struct mixrt_tensor *mask2; /* a second additive mask (input 4), NULL: none */
    int64_t perm[3][4], out_perm[4];
    int64_t dims[3][4];    /* logical dims of Q [B,H,Sq,D], K [B,H,Sk,D], V [B,H,Sk,Dv] */
    int64_t strides[3][4]; /* element strides of those views; 0 on broadcast B/H axes */
    int64_t mask_strides[4]; /* over [B,H,Sq,Sk], 0 where the mask broadcasts */
    int64_t mask2_strides[4]; /* mask2's, likewise */
    int64_t b, h, sq, sk, d, dv;
    int64_t ydims[4];    /* the output's dims */
    int64_t ystrides[4]; /* element strides of O [B,H,Sq,Dv] in the output */
    float scale, fill;
    bool causal;
    bool nan_zero; /* a query row whose softmax is NaN (every score -inf: fully masked; a NaN
                    * or +inf score) gives zeros, as Where(IsNaN(P), 0, P) after it does */
};

/* Validates node k's inputs and attributes (errors name the node) and fills *a. */
mixrt_status mixrt_attention_geometry(struct mixrt_kernel_ctx *k, struct mixrt_attention_geom *a);

/* Query rows handled together by the block primitives (the register tile's height), and
 * the width of the packed K / V panels (keys per K panel, columns per V panel). */
#define MIXRT_ATTN_ROWS 12
#define MIXRT_ATTN_PANEL 32

/* Packed layouts, made once per (batch, head) by attention.c:
 *   K f32 panels:   key j, dim c at kp[(j / 32) * 32 * d + c * 32 + j % 32];
 *   K bf16 pairs:   pair t (dims 2t, 2t + 1) of key j at kp[(j / 32) * 32 * dp + t * 32 + j % 32];
 *   V f32 panels:   key j, column c at vp[(c / 32) * 32 * ldj + j * 32 + c % 32];
 *   V bf16 pairs:   keys 2t, 2t + 1 of column c at vp[(c / 32) * 32 * ldj + t * 32 + c % 32];
 * pairs are uint32 with element 2t in the low half. Panels are zero past the last key /
 * column, so a micro-kernel may read whole 16-lane vectors inside a panel. */
struct mixrt_attention_isa {
    const char *name; /* "avx512", "avx512bf16" or "scalar" */
    /* s[r * lds + j] = scale * sum_{c < d} q[r * ldq + c] * K[j][c] for r < rows (<=
     * MIXRT_ATTN_ROWS), j < n; may also write s up to the next multiple of 32 (lds covers it). */
    void (*scores)(const float *q, size_t ldq, int rows, const float *kp, size_t d, size_t n, float scale, float *s,
                   size_t lds);
    /* Softmax numerators of rows r < rows in place over s[r * lds + j], j < n:
     * exp(s - row max), and inv[r] = 1 / their sum (NaN when the row holds a NaN; an all
     * -inf row gives NaN too, as 0 / 0). Rows go together so their reductions overlap. */
    void (*softmax)(float *s, size_t lds, int rows, size_t n, float *inv);
    /* The same, writing the numerators rounded to bf16 into p[r * ldp + j] (s is left as it
     * was; inv from the f32 numerators); the exp may be as coarse as 1e-4 relative, well
     * under bf16's rounding. Set where scores_bf16 is. */
    void (*softmax_bf16)(const float *s, size_t lds, int rows, size_t n, uint16_t *p, size_t ldp, float *inv);
    /* o[r * ldo + c] = inv[r] * sum_{j < n} p[r * ldp + j] * V[j][c] for r < rows, c < dv
     * (V f32 panels with row length ldj >= n). */
    void (*pv)(const float *p, size_t ldp, int rows, const float *vp, size_t ldj, size_t n, size_t dv,
               const float *inv, float *o, size_t ldo);
    /* bf16 twins on pairs, products summed in f32 (vdpbf16ps where the CPU has AVX512-BF16;
     * NULL in a table whose CPU lacks it, and the kernel then widens bf16 to f32 instead):
     * s[r * lds + j] = scale * sum_{t < dp} dot(qp[r * ldq + t], Kpair[t][j]);
     * o[r * ldo + c] = inv[r] * sum_{t < np} dot(pp[r * ldp + t], Vpair[t][c]), ldj >= np. */
    void (*scores_bf16)(const uint32_t *qp, size_t ldq, int rows, const uint32_t *kp, size_t dp, size_t n,
                        float scale, float *s, size_t lds);
    void (*pv_bf16)(const uint32_t *pp, size_t ldp, int rows, const uint32_t *vp, size_t ldj, size_t np, size_t dv,
                    const float *inv, float *o, size_t ldo);
    /* 32-bit transpose into K panels: key j < n, word c < m of src[j * lds + c] goes to
     * dst[(j / 32) * 32 * m + c * 32 + j % 32]; keys n .. round32(n) are zeroed. */
    void (*pack_k)(const uint32_t *src, size_t lds, size_t n, size_t m, uint32_t *dst);
    /* V f32 panels from rows src[j * lds + c], j < n, c < dv (columns past dv zeroed). */
    void (*pack_v)(const float *src, size_t lds, size_t n, size_t dv, float *dst, size_t ldj);
    /* V bf16 pair panels from bf16 rows src[j * lds + c] (pairs past n and columns past dv
     * zeroed); set where scores_bf16 is. */
    void (*pack_v_pairs)(const uint16_t *src, size_t lds, size_t n, size_t dv, uint32_t *dst, size_t ldj);
};

extern const struct mixrt_attention_isa mixrt_attention_isa_scalar;
extern const struct mixrt_attention_isa mixrt_attention_isa_avx512;     /* x86-64 only */
extern const struct mixrt_attention_isa mixrt_attention_isa_avx512bf16; /* x86-64 only */
extern const struct mixrt_attention_isa mixrt_attention_isa_avx2;       /* x86-64 only */
/* attention_avx2.c: the f32 primitives in AVX2 + FMA (the rest of that table is scalar). */
void mixrt_attn_scores_avx2(const float *q, size_t ldq, int rows, const float *kp, size_t d, size_t n, float scale,
                            float *s, size_t lds);
void mixrt_attn_softmax_avx2(float *s, size_t lds, int rows, size_t n, float *inv);
void mixrt_attn_pv_avx2(const float *p, size_t ldp, int rows, const float *vp, size_t ldj, size_t n, size_t dv,
                        const float *inv, float *o, size_t ldo);
/* AVX-512 (with the bf16 pair primitives when the CPU has AVX512-BF16) when the CPU has
 * F/BW/VL/DQ, else AVX2 + FMA f32 primitives where the CPU has those, else scalar (whose bf16
 * pair primitives emulate vdpbf16ps in f32). */
const struct mixrt_attention_isa *mixrt_attention_isa(void);
/* Tests: force the scalar twin for the calls that follow (not thread-safe). */
void mixrt_attention_force_scalar(bool scalar);
/* Tests: force the AVX2 table where the CPU has AVX2 and FMA (not thread-safe). */
void mixrt_attention_force_avx2(bool avx2);

#endif /* MIXRT_BACKEND_CPU_ATTENTION_IMPL_H */
