/* cuda_args.h - plain argument structs shared by the engine-side C interface
 * (cuda_backend.h) and the kernels (.cu): no CUDA or mixrt types, so both sides agree on
 * one layout. */
#ifndef MIXRT_BACKEND_CUDA_ARGS_H
#define MIXRT_BACKEND_CUDA_ARGS_H

#define MIXRT_CUDA_MAX_PERM_RANK 8

/* com.mixrt Attention geometry in elements: logical Q [b,h,sq,d], K [b,h,sk,d],
 * V [b,h,sk,dv], mask [b,h,sq,sk] (stride 0 on broadcast axes), output O [b,h,sq,dv]
 * written at y_strides (per O axis, so out_perm needs no copy). */
struct mixrt_cuda_attention_args {
    long long b, h, sq, sk, d, dv;
    long long q_strides[4], k_strides[4], v_strides[4], mask_strides[4], y_strides[4];
    float scale, fill;
    int causal;
    /* causal_add: a key past the causal limit gets s + fill (not fill) and no mask: the
     * engine's form of torch's Where(causal And padding row, 0, fill) + s with a row mask
     * Where(row, 0, fill), exactly the same scores (engine_cuda.c mask_rows) */
    int causal_add;
    int mask_f32; /* the mask is f32 whatever Q/K/V are (the planner keeps it f32: a 16-bit
                   * mask would turn f32's lowest value into -inf) */
    int nan_zero; /* a row whose scores have no finite maximum (all -inf: fully masked) gives
                   * zeros instead of the softmax's NaN (Attention's nan_zero) */
};

/* 2-D pooling over x [n, c, h, w] (NCHW) or [n, h, w, c] (nhwc) into y of [oh, ow]: window
 * kh x kw, strides sh / sw, dilations dh / dw, pads top / left / bottom / right (pt, pl, pb,
 * pr; begin pads shift the window, end pads matter only to include_pad). avg: average
 * (include_pad counts padded positions too), else max. A global pool is the window h x w. */
struct mixrt_cuda_pool_args {
    long long n, c, h, w, oh, ow;
    int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int nhwc, avg, include_pad;
};

/* Channels-last im2col of x [n, h, w, c] for a conv of kernel r x s (strides sh / sw, pads
 * ph / pw at the start, dilations dh / dw) with an output of oh x ow: col [n*oh*ow, ldc],
 * column (i r + j) c + ch of output pixel p = x at row oh(p) sh - ph + i dh, column
 * ow(p) sw - pw + j dw, channel ch (zero outside x); columns from r s c to ldc are zero. */
struct mixrt_cuda_im2col_args {
    long long n, h, w, c, oh, ow;
    int r, s, sh, sw, ph, pw, dh, dw, ldc;
};

/* A channels-last depthwise convolution (mixrt_cuda_dwconv): x [n, h, w, c], weights [r, s, c],
 * y [n, oh, ow, c]; pads at the top/left (ph, pw; the rest follows from oh, ow); act a
 * mixrt_cuda_unary_op or -1. */
struct mixrt_cuda_dwconv_args {
    long long n, h, w, c, oh, ow;
    int r, s, sh, sw, ph, pw, dh, dw, act;
};

/* The columns a row-grouped product leaves out (mixrt_cuda_edge_scatter): row r of Y [rows,
 * n] (group r % groups) gets columns [0, c0[g]) and [c0[g] + nc, n) - the others came from
 * the group's product - out of E [rows, ld_e], the rows' products with W's columns [0, left)
 * then [nc, n): Y[r][j] = E[r][j] left of c0, Y[r][j] = E[r][left + j - nc] right of it. */
struct mixrt_cuda_edge_args {
    long long rows, n, nc, left, ld_e;
    int groups;
    int c0[16];
};

/* One output coordinate of a Resize axis: y reads input indices i0 and i1 with weights w0
 * and w1 (a single tap: i1 = i0, w1 = 0). Made on the host from the CPU kernel's tap rules
 * (mixrt_resize_axis_taps), so both backends resample the same points. */
struct mixrt_cuda_resize_tap {
    int i0, i1;
    float w0, w1;
};

/* Resize of x [nc, h, w] (N and C not resized, NCHW) or [n, h, w, c] (nhwc) into [.., oh, ow]:
 * taps_h (oh entries) and taps_w (ow entries) in device memory; f32 sums. */
struct mixrt_cuda_resize_args {
    long long n, c, h, w, oh, ow;
    const struct mixrt_cuda_resize_tap *taps_h, *taps_w;
    int nhwc;
};

#endif /* MIXRT_BACKEND_CUDA_ARGS_H */
