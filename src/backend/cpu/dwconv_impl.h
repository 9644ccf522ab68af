/* dwconv_impl.h - private to the depthwise channels-last FusedConv kernel (dwconv.c: driver and
 * scalar twin; dwconv_avx512.c, dwconv_avx2.c: the AVX-512 and AVX2 row kernels): the geometry of one node as the driver
 * resolved it, one output row's operands, and the per-ISA row kernel picked once by CPUID. */
#ifndef MIXRT_BACKEND_CPU_DWCONV_IMPL_H
#define MIXRT_BACKEND_CPU_DWCONV_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"

/* Channels padded to this in the packed weights and bias (one AVX-512 vector of f32). */
#define MIXRT_DWCONV_CBLK 16

/* One node on one input shape: X [N, H, W, C], Y [N, OH, OW, C], W packed as f32
 * [CP / 16][KH * KW][16] (per block of 16 channels its taps one after another, channels padded
 * with zeros to CP: a block's taps sit at fixed offsets from one pointer), bias f32 [CP]. */
struct mixrt_dwconv_geom {
    int64_t h, w, c, oh, ow;
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pt, pl;       /* top and left pads (the bottom and right ones follow from OH, OW) */
    int64_t cp;           /* C rounded up to MIXRT_DWCONV_CBLK */
    int64_t ow_lo, ow_hi; /* output columns [ow_lo, ow_hi) have every kw tap inside the row */
};

/* Index of channel c, tap t (kh * KW + kw) in the packed weights of a kernel with taps taps. */
static inline int64_t mixrt_dwconv_widx(int64_t c, int64_t t, int64_t taps) {
    return (c / MIXRT_DWCONV_CBLK * taps + t) * MIXRT_DWCONV_CBLK + c % MIXRT_DWCONV_CBLK;
}

/* The AVX512-BF16 path of 3x3 kernels on bf16 input (vdpbf16ps: two bf16 products per f32
 * lane): per block of 32 channels, 6 tap pairs x 2 halves x 32 bf16. Pairs 0..2: kernel rows 0
 * and 1 at column kw = pair; pairs 3..5: row 2 at column kw = pair - 3 with zero. A half holds
 * the channels vpunpck{l,h}wd put in its 16 dword lanes: lane i of half 0 is channel
 * (i / 4) * 8 + i % 4 of the block, of half 1 that plus 4; word 0 of a lane the first tap. */
#define MIXRT_DWCONV_DP_CBLK 32
#define MIXRT_DWCONV_DP_PAIRS 6
#define MIXRT_DWCONV_DP_BLOCK (MIXRT_DWCONV_DP_PAIRS * 2 * MIXRT_DWCONV_DP_CBLK) /* bf16 per block */

/* Index in the pair-packed weights of channel c, pair p, tap of the pair t (0 or 1). */
static inline int64_t mixrt_dwconv_dp_widx(int64_t c, int p, int t) {
    const int64_t cc = c % MIXRT_DWCONV_DP_CBLK, half = cc % 8 >= 4, lane = cc / 8 * 4 + cc % 4;
    return ((c / MIXRT_DWCONV_DP_CBLK * MIXRT_DWCONV_DP_PAIRS + p) * 2 + half) * MIXRT_DWCONV_DP_CBLK + lane * 2 + t;
}

/* Activations a row kernel applies itself (the others run over the finished f32 row). SILU
 * only for bf16 outputs: the AVX-512 kernel computes it to about 1e-4 relative (exp2 by a
 * degree-4 polynomial and vscalefps, the reciprocal by vrcp14ps), far inside bf16's rounding
 * (2^-9), the scalar twin exactly; f32 outputs take the exact element-wise sigmoid. */
enum mixrt_dwconv_act {
    MIXRT_DWCONV_ACT_NONE,
    MIXRT_DWCONV_ACT_RELU,
    MIXRT_DWCONV_ACT_CLIP,
    MIXRT_DWCONV_ACT_LEAKY,
    MIXRT_DWCONV_ACT_SILU,
    MIXRT_DWCONV_ACT_HSWISH /* x min(max((x + 3) / 6, 0), 1), as the element-wise HardSwish */
};

/* One output row (image n, row oy): y[ow * C + c] = act(sum_taps x * w + b[c] + z[ow * C + c]). */
struct mixrt_dwconv_row {
    const void *x;       /* the image's input [H, W, C] */
    bool bf16;           /* x and z are bf16 (else f32) */
    int64_t oy;          /* output row */
    const float *w;      /* packed weights */
    const float *b;      /* packed bias (zeros without one), padded to MIXRT_DWCONV_DP_CBLK */
    const uint16_t *wdp; /* the pair-packed bf16 weights of a 3x3 kernel (see above), or NULL; when
                          * set, the AVX-512 kernel sums the interior columns by vdpbf16ps */
    const void *z;       /* Z's row [OW, C], or NULL */
    void *y;             /* the row [OW, C] written: bf16 (rounded to nearest even) when y_bf16, else f32 */
    bool y_bf16;
    bool hw_bf16; /* the CPU has AVX512-BF16 (vcvtneps2bf16 may round the bf16 stores) */
    enum mixrt_dwconv_act act;
    float p0, p1; /* Clip: min, max; LeakyRelu: alpha */
};

/* One depthwise conv's packed operands (dwconv.c packs them; dw_conv_nhwc and mbconv_nhwc hold
 * them as their state or part of it). */
struct mixrt_dwconv_state {
    int64_t c, kh, kw, cp;
    float *w;      /* [cp / 16][kh * kw][16] (mixrt_dwconv_widx) */
    float *b;      /* [cp rounded up to MIXRT_DWCONV_DP_CBLK]: the constant bias, zeros without one */
    bool b_const;  /* false: B is an input read at run time */
    uint16_t *wdp; /* AVX512-BF16 path: the weights pair-packed (mixrt_dwconv_dp_widx), else NULL */
    size_t w_bytes, b_bytes, wdp_bytes;
};

/* Packs W [C, 1, KH, KW] and B ([C] or NULL: zeros) of node `name` into a new state (b_const
 * true); dp: also the AVX512-BF16 pairs of a 3x3 kernel (see mixrt_dwconv_dp_wanted). */
mixrt_status mixrt_dwconv_pack(mixrt_context_t ctx, const char *name, const struct mixrt_tensor *w,
                               const struct mixrt_tensor *b, bool dp, struct mixrt_dwconv_state **out);
void mixrt_dwconv_state_free(mixrt_context_t ctx, struct mixrt_dwconv_state *st);
/* Whether a node with W w on this CPU runs its 3x3 interior columns by vdpbf16ps: bf16 X, column
 * stride 1 or 2 without column dilation (the node's strides / dilations), not turned off. */
bool mixrt_dwconv_dp_wanted(const struct mixrt_graph *g, const struct mixrt_node *n, const struct mixrt_tensor *w);
/* The geometry of k's node (its strides, dilations, pads, auto_pad) on X [N, H, W, st->c];
 * UNSUPPORTED for shapes the reference kernel should word, other errors recorded. */
mixrt_status mixrt_dwconv_geometry(struct mixrt_kernel_ctx *k, const struct mixrt_dwconv_state *st,
                                   const struct mixrt_tensor *x, struct mixrt_dwconv_geom *g);
/* The row kernels' own form of FusedConv activation act (NONE where they leave it out). */
enum mixrt_dwconv_act mixrt_dwconv_act_of(enum mixrt_fconv_act act, bool bf16);

struct mixrt_dwconv_isa {
    const char *name; /* "avx512" or "scalar" */
    void (*row)(const struct mixrt_dwconv_geom *g, const struct mixrt_dwconv_row *r);
};

extern const struct mixrt_dwconv_isa mixrt_dwconv_isa_scalar;
extern const struct mixrt_dwconv_isa mixrt_dwconv_isa_avx512; /* x86-64 only */
extern const struct mixrt_dwconv_isa mixrt_dwconv_isa_avx2;   /* x86-64 only: f32 rows (bf16 ones: scalar) */
/* AVX-512 when the CPU has F/BW/VL/DQ, else AVX2 when it has AVX2 and FMA, else scalar (the
 * test hooks may force one). */
const struct mixrt_dwconv_isa *mixrt_dwconv_isa(void);
/* Tests: force the scalar twin for the calls that follow (not thread-safe). */
void mixrt_dwconv_force_scalar(bool scalar);
/* Tests: force the AVX2 kernel (where the CPU has AVX2 and FMA) for the calls that follow. */
void mixrt_dwconv_force_avx2(bool avx2);
/* Tests: round bf16 stores by integer arithmetic even where the CPU has AVX512-BF16. */
void mixrt_dwconv_force_int_bf16(bool on);
/* Tests: prepare without the AVX512-BF16 path (as on CPUs without it) for the calls that follow. */
void mixrt_dwconv_force_no_bf16dp(bool off);
/* Tests: how many runs of dw_conv_nhwc took the AVX512-BF16 path so far. */
unsigned long mixrt_dwconv_bf16dp_runs(void);
/* Tests: how many runs of dw_conv_nhwc went to the reference kernel so far (cases the row
 * kernels do not take), so a test can tell the fast path ran. */
unsigned long mixrt_dwconv_ref_runs(void);

#endif /* MIXRT_BACKEND_CPU_DWCONV_IMPL_H */
