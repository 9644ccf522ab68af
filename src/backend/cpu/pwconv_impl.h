/* pwconv_impl.h - private to the pointwise (1x1) channels-last bf16 FusedConv kernel (pwconv.c:
 * driver and scalar twin; pwconv_avx512.c: the AVX512-BF16 tile kernel): the packed weights'
 * layout and one call's operands. */
#ifndef MIXRT_BACKEND_CPU_PWCONV_IMPL_H
#define MIXRT_BACKEND_CPU_PWCONV_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"

/* Output channels a block (one AVX-512 vector of f32). */
#define MIXRT_PW_NBLK 16

/* Input channels (K) this kernel takes: the whole packed W is read once per few rows, so it
 * stays in L2 (256 x 1152 bf16 is 576 KiB); past it oneDNN's K blocking is the answer. */
#define MIXRT_PW_MAX_K 256

/* The packed W of one node: per block of 16 output channels, per pair of input channels, the
 * pair's two bf16 weights of each of the 16 channels (word 0 the even input channel), zeros
 * past K and past N: [NB][KP][16][2], KP = ceil(K / 2), NB = ceil(N / 16). */
static inline size_t mixrt_pw_widx(int64_t kp, int64_t j, int64_t k) {
    return ((size_t)(j / MIXRT_PW_NBLK) * (size_t)kp + (size_t)(k / 2)) * (2 * MIXRT_PW_NBLK) +
           (size_t)(j % MIXRT_PW_NBLK) * 2 + (size_t)(k % 2);
}

/* Activations the tile kernels apply themselves; the others run over f32 rows afterwards. SILU
 * as the depthwise kernel's (silu_avx512.h: about 1e-4 relative, for bf16 outputs only). */
enum mixrt_pw_act {
    MIXRT_PW_ACT_NONE,
    MIXRT_PW_ACT_RELU,
    MIXRT_PW_ACT_CLIP,
    MIXRT_PW_ACT_LEAKY,
    MIXRT_PW_ACT_SILU,
    MIXRT_PW_ACT_HSWISH /* x min(max((x + 3) / 6, 0), 1), as the element-wise HardSwish */
};

/* The part of FusedConv activation act the tile kernels apply themselves (NONE: none, or one
 * the caller runs over f32 rows afterwards). */
static inline enum mixrt_pw_act mixrt_pw_act_of(enum mixrt_fconv_act act) {
    switch (act) {
    case MIXRT_FCONV_RELU: return MIXRT_PW_ACT_RELU;
    case MIXRT_FCONV_CLIP: return MIXRT_PW_ACT_CLIP;
    case MIXRT_FCONV_LEAKY_RELU: return MIXRT_PW_ACT_LEAKY;
    case MIXRT_FCONV_SILU: return MIXRT_PW_ACT_SILU;
    case MIXRT_FCONV_HARD_SWISH: return MIXRT_PW_ACT_HSWISH;
    default: return MIXRT_PW_ACT_NONE;
    }
}

/* act on one f32 value as the scalar twins apply it (SiLU exact). */
static inline float mixrt_pw_act_scalar(enum mixrt_pw_act act, float p0, float p1, float v) {
    switch (act) {
    case MIXRT_PW_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case MIXRT_PW_ACT_CLIP: return v < p0 ? p0 : v > p1 ? p1 : v;
    case MIXRT_PW_ACT_LEAKY: return v >= 0.0f ? v : p0 * v;
    case MIXRT_PW_ACT_SILU: return v / (1.0f + expf(-v));
    case MIXRT_PW_ACT_HSWISH: {
        float h = (v + 3.0f) * (1.0f / 6.0f);
        return v * (h > 1.0f ? 1.0f : h < 0.0f ? 0.0f : h);
    }
    default: return v;
    }
}

#if defined(__AVX512F__)
#include <immintrin.h>

#include "backend/cpu/silu_avx512.h"

/* act on 16 f32 lanes in register, as the tile kernels apply it (pwconv_avx512.c and the
 * Winograd output transform, wino2_avx512.c): NaN stays NaN; SiLU as silu_avx512.h's. AVX-512
 * translation units only. */
static inline __attribute__((always_inline)) __m512 mixrt_pw_act_v(enum mixrt_pw_act act, __m512 v, __m512 p0,
                                                                   __m512 p1) {
    switch (act) {
    case MIXRT_PW_ACT_RELU: return _mm512_max_ps(v, _mm512_setzero_ps());
    case MIXRT_PW_ACT_CLIP: return _mm512_min_ps(p1, _mm512_max_ps(p0, v));
    case MIXRT_PW_ACT_LEAKY: return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v, p0);
    case MIXRT_PW_ACT_SILU: return mixrt_v_silu_bf16(v);
    case MIXRT_PW_ACT_HSWISH: return mixrt_v_hardswish(v);
    default: return v;
    }
}
#endif

/* Whether this CPU runs the tile kernel (AVX-512 F/BW/VL/DQ and AVX512-BF16). pwconv.c. */
bool mixrt_pw_hw(void);

/* What pw_conv_nhwc and wino_bf16_nhwc (wino2.c) both ask of a FusedConv node: X, W and Y
 * present, a readable activation, channels-last, one group, X, Y and Z (if any) bf16, B (if any)
 * a float tensor. False with the reason in why otherwise. pwconv.c. */
bool mixrt_pw_node_ok(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size);
/* The same with X, Y and Z (if any) of dtype dt (igf_conv_nhwc: f32). */
bool mixrt_pw_node_ok_dtype(const struct mixrt_graph *g, const struct mixrt_node *n, mixrt_dtype dt, char *why,
                            size_t why_size);

/* Rows [0, rows) of one call: y[r][j] = act(b[j] + sum_k x[r][k] w[j][k] + z[r][j]), the sum in
 * f32 by pairs of input channels (vdpbf16ps), one rounding to bf16 (or f32 rows when y_f32). */
struct mixrt_pw_call {
    const uint16_t *x; /* bf16 [rows][k] */
    const uint16_t *z; /* bf16 [rows][n], or NULL */
    void *y;           /* [rows][n]: bf16, or f32 when y_f32 */
    bool y_f32;
    int64_t rows, k, n, kp;
    const uint16_t *w; /* packed (mixrt_pw_widx) */
    const float *b;    /* [NB * 16]: the bias, zeros without one and past N */
    enum mixrt_pw_act act;
    float p0, p1; /* Clip: min, max; LeakyRelu: alpha */
};

/* One 1x1 conv's packed operands (pw_conv_nhwc's state; mbconv_nhwc holds two). */
struct mixrt_pw_state {
    int64_t k, n, kp, nb;
    uint16_t *w; /* packed (mixrt_pw_widx) */
    float *b;    /* [nb * 16] */
    bool b_const;
    size_t w_bytes, b_bytes;
};
/* Packs W [N, K, 1, 1] (N <= 65536) and B ([N] or NULL: zeros) of node n into a new state
 * (b_const true). pwconv.c. */
mixrt_status mixrt_pw_pack(mixrt_context_t ctx, const struct mixrt_node *n, const struct mixrt_tensor *w,
                           const struct mixrt_tensor *b, struct mixrt_pw_state **out);
void mixrt_pw_state_free(mixrt_context_t ctx, struct mixrt_pw_state *st);
/* ig_conv_nhwc (igconv.c): a channels-last bf16 conv of any kernel size, stride and pads taken as
 * an implicit product, for few output pixels (ResNet's 7x7 and 14x14 stages): rows are output
 * pixels, K the (tap, input channel) pairs, k = tap * C + c (C even, so no pair straddles two
 * taps). One call: every row, the output channels of groups [g0, g1). */
#define MIXRT_IG_ROWS 6   /* rows a tile at most */
#define MIXRT_IG_BLOCKS 4 /* 16-channel blocks a tile */
struct mixrt_ig_call {
    const uint16_t *const *a; /* [rows][taps]: each row's input pixel at each tap, or a zero row */
    const uint16_t *z;        /* bf16 [rows][n], or NULL */
    void *y;                  /* [rows][n]: bf16, or f32 when y_f32 */
    bool y_f32;
    int64_t rows, taps, cp, kp, n; /* cp: pairs a tap (C / 2); kp = taps * cp */
    int64_t chunk;                 /* pairs a K step (partial sums kept in acc between steps) */
    int64_t g0, g1;                /* groups of 4 output blocks of this call */
    float *acc;                    /* [rows][MIXRT_IG_BLOCKS * 16] partial sums */
    const uint16_t *w;             /* packed (mixrt_ig_widx) */
    const float *b;                /* [NB * 16]: the bias, zeros without one and past N */
    enum mixrt_pw_act act;
    float p0, p1;
};
/* ig_conv_nhwc's packed W: per group of 4 blocks of 16 output channels, per pair of K, the
 * 4 blocks' 16 pairs (word 0 the even k): a tile's W of one pair is 256 contiguous bytes.
 * [NG][KP][4][16][2], zeros past N (the last group's missing blocks too). */
static inline size_t mixrt_ig_widx(int64_t kp, int64_t j, int64_t k) {
    const int64_t gw = MIXRT_IG_BLOCKS * MIXRT_PW_NBLK;
    return (((size_t)(j / gw) * (size_t)kp + (size_t)(k / 2)) * MIXRT_IG_BLOCKS + (size_t)(j % gw / MIXRT_PW_NBLK)) *
               (2 * MIXRT_PW_NBLK) +
           (size_t)(j % MIXRT_PW_NBLK) * 2 + (size_t)(k % 2);
}
/* Call only where the CPU has AVX-512 F/BW/VL/DQ and AVX512-BF16. pwconv_avx512.c. */
void mixrt_ig_run_avx512(const struct mixrt_ig_call *c);
void mixrt_igconv_force_scalar(bool scalar);
unsigned long mixrt_igconv_ref_runs(void);

/* igf_conv_nhwc (igconv.c): ig_conv_nhwc's f32 twin, on channels-last f32 X, Y and Z, any C (K =
 * taps * C, k = tap * C + c), the products by FMA in f32. One call: every row, the output
 * channels of groups [g0, g1). Activations outside MIXRT_PW_ACT_RELU .. LEAKY and HSWISH (SiLU's
 * in-register form is for bf16 outputs) run over Y afterwards. */
struct mixrt_igf_call {
    const float *const *a;       /* [rows][taps]: each row's input pixel at each tap, or a zero row */
    const float *z;              /* f32 [rows][n], or NULL */
    float *y;                    /* f32 [rows][n] */
    int64_t rows, taps, c, k, n; /* k = taps * c */
    int64_t chunk;               /* k a step (partial sums kept in acc between steps) */
    int64_t g0, g1;              /* groups of 4 output blocks of this call */
    float *acc;                  /* [rows][MIXRT_IG_BLOCKS * 16] partial sums */
    const float *w;              /* packed (mixrt_igf_widx) */
    const float *b;              /* [NB * 16]: the bias, zeros without one and past N */
    enum mixrt_pw_act act;
    float p0, p1;
};
/* igf_conv_nhwc's packed W: per group of 4 blocks of 16 output channels, per k, the 64 channels'
 * weights (a tile's W of one k is 256 contiguous bytes, as ig's of one pair): [NG][K][64], zeros
 * past N. */
static inline size_t mixrt_igf_widx(int64_t k, int64_t j, int64_t kk) {
    const int64_t gw = MIXRT_IG_BLOCKS * MIXRT_PW_NBLK;
    return ((size_t)(j / gw) * (size_t)k + (size_t)kk) * (size_t)gw + (size_t)(j % gw);
}
/* Call only where the CPU has AVX-512 F/BW/VL/DQ (mixrt_cpu_avx512). pwconv_avx512.c. */
void mixrt_igf_run_avx512(const struct mixrt_igf_call *c);
/* Tests: the scalar twin instead of the tile (and no CPUID refusal in supports); how many runs
 * handed their case to the reference kernel. */
void mixrt_igfconv_force_scalar(bool scalar);
unsigned long mixrt_igfconv_ref_runs(void);

/* The f32 bias row the tile kernels read, from the constant B of node n (m values; dst has room
 * for them, zeros past them are the caller's): INVALID_MODEL naming the node when B is not
 * [m]. pwconv.c; pw_conv_nhwc, ig_conv_nhwc and wino_bf16_nhwc. */
mixrt_status mixrt_pw_bias(mixrt_context_t ctx, const struct mixrt_node *n, const struct mixrt_tensor *b, int64_t m,
                           float *dst);
/* The same row for a B read at run time: bytes of zeros (the padded row) with B's m values
 * widened at the start, in an allocation of bytes the caller frees; NULL with the kernel's
 * error set when out of memory. */
float *mixrt_pw_run_bias(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *b, int64_t m, size_t bytes);
/* Element i of float tensor w as bf16 bits (exact for bf16; f32 / f16 / f64 rounded once, as
 * oneDNN's bf16 convs round f32 weights). */
static inline uint16_t mixrt_pw_wbits(const struct mixrt_tensor *w, size_t i) {
    return w->dtype == MIXRT_DTYPE_BF16 ? ((const uint16_t *)w->data)[i]
                                        : mixrt_bf16_from_float((float)mixrt_load_f64(w->data, w->dtype, i)).bits;
}

/* Tests: the scalar twin instead of the tile kernel (and no CPUID refusal in supports); how many
 * runs handed their case to the reference kernel. */
void mixrt_pwconv_force_scalar(bool scalar);
unsigned long mixrt_pwconv_ref_runs(void);
/* mbconv.c (FusedMBConv, built on this file's tile kernel and dwconv.c's row kernels): tests
 * force the scalar twins, and count the runs that went to the reference kernel. */
void mixrt_mbconv_force_scalar(bool scalar);
unsigned long mixrt_mbconv_ref_runs(void);

/* Call only where the CPU has AVX-512 F/BW/VL/DQ and AVX512-BF16. */
void mixrt_pw_rows_avx512(const struct mixrt_pw_call *c);
/* One call by the tile kernel where the CPU has AVX512-BF16 and scalar is false, else by the
 * scalar twin (the Winograd bf16 conv's products go through here too: wino2.c). */
void mixrt_pw_rows(const struct mixrt_pw_call *c, bool scalar);

#endif /* MIXRT_BACKEND_CPU_PWCONV_IMPL_H */
