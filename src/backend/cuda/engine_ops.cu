/* engine_ops.cu - CUDA kernels the engine needs beyond element-wise and norms: a strided
 * copy (Transpose, Split, Slice, Concat: up to rank 8, elements of 1/2/4/8/16 bytes moved as bits) and com.mixrt
 * Attention (one block per query row, scores in shared memory, f32 math, general strides so
 * head layouts need no copies). Invariant: launchers only launch; checks live in engine_ops.c. */
#include <mma.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_types.cuh"

namespace {

struct perm_args {
    int rank;
    long long out_dims[MIXRT_CUDA_MAX_PERM_RANK];
    long long in_strides[MIXRT_CUDA_MAX_PERM_RANK];  /* x's stride along axis i of the copy */
    long long out_strides[MIXRT_CUDA_MAX_PERM_RANK]; /* y's stride along axis i */
};

/* I: the index type (32-bit when every offset fits: the 64-bit divisions of the rank loop
 * cost more than the move); E: the element as bits, up to 16 bytes (uint4) when the
 * launcher folded a contiguous innermost axis into vectors. */
template <typename E, typename I> __global__ void transpose_kernel(const E *x, E *y, I n, perm_args a) {
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I rem = i, off = 0, yo = 0;
        for (int d = a.rank - 1; d >= 0; d--) {
            I dd = (I)a.out_dims[d], id = rem % dd;
            off += id * (I)a.in_strides[d];
            yo += id * (I)a.out_strides[d];
            rem /= dd;
        }
        y[yo] = x[off];
    }
}

template <typename E>
void transpose_launch(cudaStream_t s, unsigned g, const void *x, void *y, size_t n, const perm_args &a, bool narrow) {
    if (narrow) transpose_kernel<E, unsigned><<<g, 256, 0, s>>>((const E *)x, (E *)y, (unsigned)n, a);
    else transpose_kernel<E, size_t><<<g, 256, 0, s>>>((const E *)x, (E *)y, n, a);
}

/* A batched 2-D transpose, y[b][c][r] = x[b][r][c] (x [B][rows][cols]), through 32 x 33 tiles
 * of shared memory so that both the reads and the writes run along rows (the rank loop
 * above reads a transpose's input one element per cache line). grid (ceil(cols / 32),
 * ceil(rows / 32), B), 32 x 8 threads. */
template <typename E> __global__ void transpose_tiled_kernel(const E *x, E *y, int rows, int cols, long long plane) {
    __shared__ E tile[32][33];
    const E *xb = x + blockIdx.z * plane;
    E *yb = y + blockIdx.z * plane;
    const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
    for (int j = threadIdx.y; j < 32; j += 8) {
        const int r = r0 + j, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[j][threadIdx.x] = xb[(long long)r * cols + c];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < 32; j += 8) {
        const int c = c0 + j, r = r0 + threadIdx.x;
        if (c < cols && r < rows) yb[(long long)c * rows + r] = tile[threadIdx.x][j];
    }
}

template <typename E>
void transpose_tiled_launch(cudaStream_t s, const void *x, void *y, long long b, long long rows, long long cols) {
    dim3 grid((unsigned)((cols + 31) / 32), (unsigned)((rows + 31) / 32), (unsigned)b);
    transpose_tiled_kernel<E><<<grid, dim3(32, 8), 0, s>>>((const E *)x, (E *)y, (int)rows, (int)cols, rows * cols);
}

/* grid (Sq, H, B); dynamic shared: Sk + D floats. */
template <typename T, typename MT>
__global__ void attention_kernel(const T *q, const T *k, const T *v, const MT *mask, T *y,
                                 struct mixrt_cuda_attention_args a) {
    extern __shared__ float sh[];
    float *qs = sh, *p = sh + a.d;
    long long i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const long long *Qs = a.q_strides, *Ks = a.k_strides, *Vs = a.v_strides, *Ms = a.mask_strides;
    size_t qb = (size_t)(b * Qs[0] + h * Qs[1] + i * Qs[2]);
    for (int c = threadIdx.x; c < a.d; c += blockDim.x) qs[c] = mixrt_cu_load(q, qb + (size_t)(c * Qs[3]));
    __syncthreads();
    long long lim = i + (a.sk - a.sq);
    float mx = -INFINITY;
    for (long long j = threadIdx.x; j < a.sk; j += blockDim.x) {
        size_t kb = (size_t)(b * Ks[0] + h * Ks[1] + j * Ks[2]);
        float s = 0.0f;
        for (int c = 0; c < a.d; c++) s += qs[c] * mixrt_cu_load(k, kb + (size_t)(c * Ks[3]));
        s *= a.scale;
        if (a.causal && j > lim) s = a.causal_add ? s + a.fill : a.fill;
        if (mask && !(a.causal_add && j > lim)) s += mixrt_cu_load(mask, (size_t)(b * Ms[0] + h * Ms[1] + i * Ms[2] + j * Ms[3]));
        p[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = mixrt_cu_block_reduce<true>(mx);
    size_t yb = (size_t)(b * a.y_strides[0] + h * a.y_strides[1] + i * a.y_strides[2]);
    if (a.nan_zero && !isfinite(mx)) { /* the softmax would be NaN: zeros (mx is the block's) */
        for (int c = threadIdx.x; c < a.dv; c += blockDim.x) mixrt_cu_store(y, yb + (size_t)(c * a.y_strides[3]), 0.0f);
        return;
    }
    float sum = 0.0f;
    for (long long j = threadIdx.x; j < a.sk; j += blockDim.x) {
        float e = expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    float inv = 1.0f / mixrt_cu_block_reduce<false>(sum); /* its barriers publish p[] */
    for (int c = threadIdx.x; c < a.dv; c += blockDim.x) {
        float o = 0.0f;
        size_t vb = (size_t)(b * Vs[0] + h * Vs[1]) + (size_t)(c * Vs[3]);
        for (long long j = 0; j < a.sk; j++) o += p[j] * mixrt_cu_load(v, vb + (size_t)(j * Vs[2]));
        mixrt_cu_store(y, yb + (size_t)(c * a.y_strides[3]), o * inv);
    }
}

/* Tensor-core attention for 16-bit Q/K/V (bf16 / f16; d and dv multiples of 16, K and V of
 * one (b, h) fit in shared memory). grid (query tiles, H, B); a block of 4 warps takes
 * 16 * G query rows (G row groups) and loads that head's K and V once (zero rows pad Sk to
 * a multiple of 16). Phases, a barrier between each: S = Q K^T as 16x16 wmma tiles (f32
 * accumulators) dealt round-robin to the warps; the row softmax in f32 (scale, causal
 * fill, mask as in attention_kernel), one row per warp at a time, unnormalized
 * probabilities rounded to T; O = P V tiles round-robin; O / sum stored at y_strides.
 * The mask (mrows rows: 0 without one, 1 when every query row has the same, else one per
 * block row) is read into shared memory as f32 with K and V, coalesced and unrolled, so the
 * softmax phase reads no global memory (it read one mask value per score from there, one
 * loop iteration at a time). */
/* 4 warps: with 8 warps and O over the dead score tile, BERT b1 measured 0.87 ms in
 * notes/cuda.md's call 11 against 0.78 before (not isolated), so this is the kernel of
 * runs 6-10 again. */
#define TC_WARPS 4
struct tc_layout {
    int skp, ldk, ldv, lds, ldp, ldo;
    size_t k_off, v_off, q_off, s_off, p_off, o_off, inv_off, m_off, total;
};

__host__ __device__ inline size_t tc_round(size_t x) { return (x + 127) & ~(size_t)127; }

/* mask_kind: 0 no mask, 1 one row for all query rows, 2 a row per query row. */
__host__ __device__ inline tc_layout tc_plan(long long sk, long long d, long long dv, int groups, int mask_kind) {
    tc_layout L;
    size_t rows = (size_t)16 * groups;
    L.skp = (int)((sk + 15) / 16 * 16);
    L.ldk = (int)d + 8, L.ldv = (int)dv + 8, L.lds = L.skp + 4, L.ldp = L.skp + 8, L.ldo = (int)dv + 4;
    L.k_off = 0;
    L.v_off = tc_round((size_t)L.skp * L.ldk * 2);
    L.q_off = L.v_off + tc_round((size_t)L.skp * L.ldv * 2);
    L.s_off = L.q_off + tc_round(rows * L.ldk * 2);
    L.p_off = L.s_off + tc_round(rows * L.lds * 4);
    L.o_off = L.p_off + tc_round(rows * L.ldp * 2);
    L.inv_off = L.o_off + tc_round(rows * L.ldo * 4);
    L.m_off = L.inv_off + tc_round(rows * 4);
    L.total = L.m_off + tc_round((size_t)(mask_kind == 2 ? rows : (size_t)mask_kind) * L.skp * 4);
    return L;
}

template <typename T> struct tc_elem;
template <> struct tc_elem<mixrt_cu_bf16> { typedef __nv_bfloat16 type; };
template <> struct tc_elem<__half> { typedef __half type; };

/* rows x cols of src (row r, col c at base + r * rs + c * cs) into dst (ld), rows from
 * `valid` on zero; 16-byte moves when vec (cs == 1, 8-element aligned rows). */
template <typename T>
__device__ __forceinline__ void tc_load(T *dst, int ld, const T *src, size_t base, long long rs, long long cs,
                                        int rows, int valid, int cols, bool vec) {
    if (vec) {
        int cv = cols / 8;
#pragma unroll 4
        for (int idx = threadIdx.x; idx < rows * cv; idx += blockDim.x) {
            int r = idx / cv, c = (idx % cv) * 8;
            uint4 val = make_uint4(0, 0, 0, 0);
            if (r < valid) val = __ldg((const uint4 *)(src + base + (size_t)((long long)r * rs) + c));
            *(uint4 *)(dst + (size_t)r * ld + c) = val;
        }
    } else {
#pragma unroll 4
        for (int idx = threadIdx.x; idx < rows * cols; idx += blockDim.x) {
            int r = idx / cols, c = idx % cols;
            uint16_t bits = 0;
            if (r < valid) bits = *(const uint16_t *)(src + base + (size_t)((long long)r * rs + (long long)c * cs));
            *(uint16_t *)(dst + (size_t)r * ld + c) = bits;
        }
    }
}

template <typename T, typename MT>
__global__ void __launch_bounds__(32 * TC_WARPS)
    attention_tc_kernel(const T *q, const T *k, const T *v, const MT *mask, T *y, struct mixrt_cuda_attention_args a,
                        int groups, int vec) {
    using namespace nvcuda;
    typedef typename tc_elem<T>::type E;
    extern __shared__ __align__(128) unsigned char smem[];
    const int w = threadIdx.x / 32, lane = threadIdx.x & 31;
    const int mkind = mask ? (a.mask_strides[2] != 0 ? 2 : 1) : 0;
    const tc_layout L = tc_plan(a.sk, a.d, a.dv, groups, mkind);
    T *ks = (T *)(smem + L.k_off), *vs = (T *)(smem + L.v_off), *qs = (T *)(smem + L.q_off);
    T *ps = (T *)(smem + L.p_off);
    float *ss = (float *)(smem + L.s_off), *os = (float *)(smem + L.o_off), *inv = (float *)(smem + L.inv_off);
    float *msm = (float *)(smem + L.m_off);
    const int R = 16 * groups;
    const long long h = blockIdx.y, b = blockIdx.z, i0 = (long long)blockIdx.x * R;
    const int D = (int)a.d, DV = (int)a.dv, SK = (int)a.sk;
    const long long *Qs = a.q_strides, *Ks = a.k_strides, *Vs = a.v_strides, *Ms = a.mask_strides;
    long long qleft = a.sq - i0;
    const int qv = qleft > R ? R : (int)qleft; /* >= 1: the grid has no empty tile */
    tc_load(ks, L.ldk, k, (size_t)(b * Ks[0] + h * Ks[1]), Ks[2], Ks[3], L.skp, SK, D, (vec & 2) != 0);
    tc_load(vs, L.ldv, v, (size_t)(b * Vs[0] + h * Vs[1]), Vs[2], Vs[3], L.skp, SK, DV, (vec & 4) != 0);
    tc_load(qs, L.ldk, q, (size_t)(b * Qs[0] + h * Qs[1] + i0 * Qs[2]), Qs[2], Qs[3], R, qv, D, (vec & 1) != 0);
    if (mask) {
        const int mr = mkind == 2 ? qv : 1;
        const size_t mb0 = (size_t)(b * Ms[0] + h * Ms[1] + i0 * Ms[2]);
#pragma unroll 4
        for (int idx = threadIdx.x; idx < mr * SK; idx += blockDim.x) {
            int r = idx / SK, c = idx % SK;
            msm[(size_t)r * L.skp + c] = mixrt_cu_load(mask, mb0 + (size_t)((long long)r * Ms[2] + (long long)c * Ms[3]));
        }
    }
    __syncthreads();
    const int nkt = L.skp / 16;
    for (int t = w; t < groups * nkt; t += TC_WARPS) {
        int g = t / nkt, jt = (t % nkt) * 16;
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int ct = 0; ct < D; ct += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::col_major> fb;
            wmma::load_matrix_sync(fa, (const E *)(qs + (size_t)g * 16 * L.ldk + ct), L.ldk);
            wmma::load_matrix_sync(fb, (const E *)(ks + (size_t)jt * L.ldk + ct), L.ldk);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(ss + (size_t)g * 16 * L.lds + jt, acc, L.lds, wmma::mem_row_major);
    }
    __syncthreads();
    for (int r = w; r < R; r += TC_WARPS) {
        long long i = i0 + r;
        float *srow = ss + (size_t)r * L.lds;
        T *prow = ps + (size_t)r * L.ldp;
        if (r >= qv) {
            for (int j = lane; j < L.skp; j += 32) mixrt_cu_store(prow, (size_t)j, 0.0f);
            continue;
        }
        long long lim = i + (a.sk - a.sq);
        const float *mrow = msm + (mkind == 2 ? (size_t)r * L.skp : 0);
        float mx = -INFINITY;
        for (int j = lane; j < SK; j += 32) {
            float s = srow[j] * a.scale;
            if (a.causal && j > lim) s = a.causal_add ? s + a.fill : a.fill;
            if (mask && !(a.causal_add && j > lim)) s += mrow[j];
            srow[j] = s;
            mx = fmaxf(mx, s);
        }
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        if (a.nan_zero && !isfinite(mx)) { /* the softmax would be NaN: P = 0, so O = 0 */
            for (int j = lane; j < L.skp; j += 32) mixrt_cu_store(prow, (size_t)j, 0.0f);
            if (lane == 0) inv[r] = 0.0f;
            continue;
        }
        float sum = 0.0f;
        for (int j = lane; j < L.skp; j += 32) {
            float e = j < SK ? __expf(srow[j] - mx) : 0.0f;
            mixrt_cu_store(prow, (size_t)j, e);
            sum += e;
        }
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        if (lane == 0) inv[r] = 1.0f / sum;
    }
    __syncthreads();
    const int nvt = DV / 16;
    for (int t = w; t < groups * nvt; t += TC_WARPS) {
        int g = t / nvt, nt = (t % nvt) * 16;
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int jt = 0; jt < L.skp; jt += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::row_major> fb;
            wmma::load_matrix_sync(fa, (const E *)(ps + (size_t)g * 16 * L.ldp + jt), L.ldp);
            wmma::load_matrix_sync(fb, (const E *)(vs + (size_t)jt * L.ldv + nt), L.ldv);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(os + (size_t)g * 16 * L.ldo + nt, acc, L.ldo, wmma::mem_row_major);
    }
    __syncthreads();
    const long long *Ys = a.y_strides;
    for (int idx = threadIdx.x; idx < qv * DV; idx += blockDim.x) {
        int r = idx / DV, c = idx % DV;
        size_t yo = (size_t)(b * Ys[0] + h * Ys[1] + (i0 + r) * Ys[2] + (long long)c * Ys[3]);
        mixrt_cu_store(y, yo, os[(size_t)r * L.ldo + c] * inv[r]);
    }
}

__device__ __forceinline__ float bin_apply(int op, float x, float z) {
    switch (op) {
    case 0: return x + z;
    case 1: return x - z;
    case 2: return x * z;
    default: return x / z;
    }
}

/* Element-wise binary op with numpy broadcasting: a and b read at their own strides (0 on
 * broadcast axes) for every index of dims. */
struct bin_args {
    int rank, op;
    long long dims[MIXRT_CUDA_MAX_PERM_RANK], as[MIXRT_CUDA_MAX_PERM_RANK], bs[MIXRT_CUDA_MAX_PERM_RANK];
};

template <typename T, typename I>
__global__ void bcast_binary_kernel(const T *a, const T *b, T *y, size_t n, bin_args g) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        I rem = (I)i, ao = 0, bo = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            I dd = (I)g.dims[d], id = rem % dd;
            ao += id * (I)g.as[d];
            bo += id * (I)g.bs[d];
            rem /= dd;
        }
        mixrt_cu_store(y, i, bin_apply(g.op, mixrt_cu_load(a, (size_t)ao), mixrt_cu_load(b, (size_t)bo)));
    }
}

/* The broadcast as y[n, p, c] = a[n, p, c] op b[n * bs0 + c * bsc] (a and y contiguous [N, P,
 * C]; b one row of C per image, bsc 1 - a squeeze-excite gate [N, 1, 1, C] on channels-last
 * activations, a bias row when N = 1 - or one value per row, C = P and bsc 0 - a gate [N, C, 1,
 * 1] on channels-first ones); swap: the full operand is the op's second (gate * x, as
 * torchvision writes it). VEC elements of one row per step, 16-byte accesses when VEC > 1 (C
 * and bs0 multiples of VEC, aligned buffers). The general kernel above spends two 64-bit
 * divisions per axis per element: EfficientNet-B0's gates at batch 32 ran 0.78 ms (16 Muls). */
template <typename T, int VEC>
__global__ void bcast_nc_kernel(const T *a, const T *b, T *y, size_t nvec, unsigned long long pc, unsigned long long c,
                                unsigned long long bs0, int bsc, int op, bool swap) {
    for (size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x; v < nvec; v += (size_t)gridDim.x * blockDim.x) {
        const unsigned long long e = (unsigned long long)v * VEC, img = e / pc;
        const unsigned long long col = bsc ? (e - img * pc) % c : 0;
        const T *bp = b + img * bs0 + col;
        if (VEC > 1) {
            __align__(16) T xa[VEC], xb[VEC], o[VEC];
            *(uint4 *)xa = *(const uint4 *)(a + e);
            if (bsc) {
                *(uint4 *)xb = __ldg((const uint4 *)bp);
            } else {
#pragma unroll
                for (int k = 0; k < VEC; k++) xb[k] = bp[0];
            }
#pragma unroll
            for (int k = 0; k < VEC; k++) {
                float x = mixrt_cu_load(xa, (size_t)k), z = mixrt_cu_load(xb, (size_t)k);
                mixrt_cu_store(o, (size_t)k, swap ? bin_apply(op, z, x) : bin_apply(op, x, z));
            }
            *(uint4 *)(y + e) = *(const uint4 *)o;
        } else {
            float x = mixrt_cu_load(a, (size_t)e), z = mixrt_cu_load(bp, 0);
            mixrt_cu_store(y, (size_t)e, swap ? bin_apply(op, z, x) : bin_apply(op, x, z));
        }
    }
}

/* Bool logic (op 0-2: And, Or, Xor over bytes, nonzero true) or Where (op 3: y = c ? a : b,
 * elements moved as bits) with numpy broadcasting: every operand at its own strides. */
struct sel_args {
    int rank, op;
    long long dims[MIXRT_CUDA_MAX_PERM_RANK], cs[MIXRT_CUDA_MAX_PERM_RANK], as[MIXRT_CUDA_MAX_PERM_RANK],
        bs[MIXRT_CUDA_MAX_PERM_RANK];
};

template <typename E, typename I>
__global__ void select_kernel(const unsigned char *c, const E *a, const E *b, E *y, size_t n, sel_args g) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        I rem = (I)i, co = 0, ao = 0, bo = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            I dd = (I)g.dims[d], id = rem % dd;
            co += id * (I)g.cs[d];
            ao += id * (I)g.as[d];
            bo += id * (I)g.bs[d];
            rem /= dd;
        }
        if (g.op == 3) {
            y[i] = c[co] ? a[ao] : b[bo];
        } else {
            bool x = a[ao] != 0, z = b[bo] != 0;
            y[i] = (E)(g.op == 0 ? (x && z) : g.op == 1 ? (x || z) : (x != z));
        }
    }
}

template <typename E>
cudaError_t select_launch(cudaStream_t s, unsigned gr, bool i32, const void *c, const void *a, const void *b, void *y,
                          size_t n, const sel_args &g) {
    if (i32)
        select_kernel<E, unsigned><<<gr, 256, 0, s>>>((const unsigned char *)c, (const E *)a, (const E *)b, (E *)y, n, g);
    else
        select_kernel<E, size_t><<<gr, 256, 0, s>>>((const unsigned char *)c, (const E *)a, (const E *)b, (E *)y, n, g);
    return cudaGetLastError();
}

/* Integer (i64, i32, u8/bool) to float: exact up to 2^24, then the nearest value. */
template <typename I, typename T> __global__ void int_cast_kernel(const I *x, T *y, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        mixrt_cu_store(y, i, (float)x[i]);
}

/* To bool (ONNX Cast: nonzero is true): bytes 0 / 1. */
template <typename I> __global__ void int_bool_kernel(const I *x, unsigned char *y, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = x[i] != 0;
}

template <typename I> cudaError_t int_cast_to(cudaStream_t s, unsigned g, int dst_elem, const I *x, void *y, size_t n) {
    switch (dst_elem) {
    case MIXRT_CUDA_ELEM_BOOL: int_bool_kernel<<<g, 256, 0, s>>>(x, (unsigned char *)y, n); break;
    case MIXRT_CUDA_ELEM_F32: int_cast_kernel<<<g, 256, 0, s>>>(x, (float *)y, n); break;
    case MIXRT_CUDA_ELEM_BF16: int_cast_kernel<<<g, 256, 0, s>>>(x, (mixrt_cu_bf16 *)y, n); break;
    case MIXRT_CUDA_ELEM_F16: int_cast_kernel<<<g, 256, 0, s>>>(x, (__half *)y, n); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

unsigned grid_for(size_t n, int max_blocks) {
    size_t blocks = (n + 255) / 256;
    unsigned g = (unsigned)(blocks < (size_t)max_blocks ? blocks : (size_t)max_blocks);
    return g ? g : 1;
}

} // namespace

extern "C" cudaError_t mixrt_cuda_launch_bcast_binary(cudaStream_t s, int max_blocks, int op, int elem, const void *a,
                                                      const void *b, void *y, int rank, const long long *dims,
                                                      const long long *as, const long long *bs, size_t n) {
    bin_args g;
    g.rank = 0, g.op = op;
    /* Axes of 1 dropped, neighbours both operands step through as one merged. */
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 1) continue;
        int r = g.rank;
        if (r > 0 && g.as[r - 1] == as[d] * dims[d] && g.bs[r - 1] == bs[d] * dims[d]) {
            g.dims[r - 1] *= dims[d], g.as[r - 1] = as[d], g.bs[r - 1] = bs[d];
            continue;
        }
        g.dims[r] = dims[d], g.as[r] = as[d], g.bs[r] = bs[d];
        g.rank++;
    }
    unsigned gr = grid_for(n, max_blocks);
    /* One operand contiguous [N, P, C] (or [P, C]), the other one row of C per image or one
     * value per row: bcast_nc_kernel. */
    int r = g.rank;
    const long long *fs = g.as, *os = g.bs;
    bool swap = false;
    if (r >= 2 && !(g.as[r - 1] == 1 && g.as[r - 2] == g.dims[r - 1])) fs = g.bs, os = g.as, swap = true;
    bool full = (r == 2 || r == 3) && fs[r - 1] == 1 && fs[r - 2] == g.dims[r - 1] &&
                (r == 2 || fs[0] == g.dims[1] * g.dims[2]);
    /* row of C: strides (s0, 0, 1) / (0, 1); a value per row: (s0, 0) over [rows, P] */
    bool rowc = full && os[r - 1] == 1 && os[r - 2] == 0;
    bool rows1 = full && r == 2 && os[1] == 0 && os[0] != 0;
    if (rowc || rows1) {
        const void *fa = swap ? b : a, *ob = swap ? a : b;
        const unsigned long long c = (unsigned long long)g.dims[r - 1], pc = rows1 ? c : c * (unsigned long long)g.dims[r - 2];
        /* the row operand's outer stride (0 for a bias row: rowc at rank 2 has os[0] == 0) */
        const unsigned long long bs0 = (unsigned long long)os[0];
        const int bsc = rows1 ? 0 : 1;
        const int esz = elem == MIXRT_CUDA_ELEM_F32 ? 4 : 2, vec = 16 / esz;
        bool v16 = c % vec == 0 && (rows1 || bs0 % vec == 0) &&
                   (((uintptr_t)fa | (uintptr_t)y | (rows1 ? 0 : (uintptr_t)ob)) & 15) == 0;
        size_t nv = v16 ? n / vec : n;
        unsigned gv = grid_for(nv, max_blocks);
#define MIXRT_BCAST_NC(T, V)                                                                                           \
    bcast_nc_kernel<T, V><<<gv, 256, 0, s>>>((const T *)fa, (const T *)ob, (T *)y, nv, pc, c, bs0, bsc, op, swap)
        switch (elem) {
        case MIXRT_CUDA_ELEM_F32:
            if (v16) MIXRT_BCAST_NC(float, 4); else MIXRT_BCAST_NC(float, 1);
            break;
        case MIXRT_CUDA_ELEM_BF16:
            if (v16) MIXRT_BCAST_NC(mixrt_cu_bf16, 8); else MIXRT_BCAST_NC(mixrt_cu_bf16, 1);
            break;
        case MIXRT_CUDA_ELEM_F16:
            if (v16) MIXRT_BCAST_NC(__half, 8); else MIXRT_BCAST_NC(__half, 1);
            break;
        default: return cudaErrorInvalidValue;
        }
#undef MIXRT_BCAST_NC
        return cudaGetLastError();
    }
    /* 32-bit index arithmetic (a quarter of the 64-bit divisions' cost) when every index and
     * offset fits. */
    long long amax = 0, bmax = 0;
    for (int d = 0; d < g.rank; d++) amax += (g.dims[d] - 1) * g.as[d], bmax += (g.dims[d] - 1) * g.bs[d];
    const bool i32 = n < (1u << 31) && amax < (1LL << 31) && bmax < (1LL << 31);
#define MIXRT_BCAST_GEN(T)                                                                                             \
    do {                                                                                                               \
        if (i32)                                                                                                       \
            bcast_binary_kernel<T, unsigned><<<gr, 256, 0, s>>>((const T *)a, (const T *)b, (T *)y, n, g);             \
        else                                                                                                           \
            bcast_binary_kernel<T, size_t><<<gr, 256, 0, s>>>((const T *)a, (const T *)b, (T *)y, n, g);               \
    } while (0)
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32: MIXRT_BCAST_GEN(float); break;
    case MIXRT_CUDA_ELEM_BF16: MIXRT_BCAST_GEN(mixrt_cu_bf16); break;
    case MIXRT_CUDA_ELEM_F16: MIXRT_BCAST_GEN(__half); break;
    default: return cudaErrorInvalidValue;
    }
#undef MIXRT_BCAST_GEN
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_select(cudaStream_t s, int max_blocks, int op, size_t elem_size,
                                                const void *c, const void *a, const void *b, void *y, int rank,
                                                const long long *dims, const long long *cs, const long long *as,
                                                const long long *bs, size_t n) {
    sel_args g;
    g.rank = 0, g.op = op;
    /* Axes of 1 dropped; neighbours every operand steps through as one merged. */
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 1) continue;
        int r = g.rank;
        if (r > 0 && g.cs[r - 1] == cs[d] * dims[d] && g.as[r - 1] == as[d] * dims[d] && g.bs[r - 1] == bs[d] * dims[d]) {
            g.dims[r - 1] *= dims[d], g.cs[r - 1] = cs[d], g.as[r - 1] = as[d], g.bs[r - 1] = bs[d];
            continue;
        }
        g.dims[r] = dims[d], g.cs[r] = cs[d], g.as[r] = as[d], g.bs[r] = bs[d];
        g.rank++;
    }
    long long m[3] = {0, 0, 0};
    for (int d = 0; d < g.rank; d++)
        m[0] += (g.dims[d] - 1) * g.cs[d], m[1] += (g.dims[d] - 1) * g.as[d], m[2] += (g.dims[d] - 1) * g.bs[d];
    const bool i32 = n < (1u << 31) && m[0] < (1LL << 31) && m[1] < (1LL << 31) && m[2] < (1LL << 31);
    unsigned gr = grid_for(n, max_blocks);
    switch (elem_size) {
    case 1: return select_launch<unsigned char>(s, gr, i32, c, a, b, y, n, g);
    case 2: return select_launch<unsigned short>(s, gr, i32, c, a, b, y, n, g);
    case 4: return select_launch<unsigned>(s, gr, i32, c, a, b, y, n, g);
    case 8: return select_launch<unsigned long long>(s, gr, i32, c, a, b, y, n, g);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t mixrt_cuda_launch_int_cast(cudaStream_t s, int max_blocks, int src_bytes, const void *x,
                                                  int dst_elem, void *y, size_t n) {
    unsigned g = grid_for(n, max_blocks);
    switch (src_bytes) {
    case 8: return int_cast_to(s, g, dst_elem, (const long long *)x, y, n);
    case 4: return int_cast_to(s, g, dst_elem, (const int *)x, y, n);
    case 1: return int_cast_to(s, g, dst_elem, (const unsigned char *)x, y, n);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t mixrt_cuda_launch_transpose(cudaStream_t s, int max_blocks, size_t elem_size, const void *x,
                                                   void *y, int rank, const long long *out_dims,
                                                   const long long *in_strides, const long long *out_strides,
                                                   size_t n) {
    /* A batched 2-D transpose (y contiguous; x [B][rows][cols] read as its transpose, B = 1 at
     * rank 2) of at least 16 x 16 goes through the tiled kernel. */
    if ((rank == 2 || rank == 3) && elem_size <= 8) {
        int o = rank - 2;
        long long cols = out_dims[o], rows = out_dims[o + 1], b = rank == 3 ? out_dims[0] : 1;
        bool tr = in_strides[o] == 1 && in_strides[o + 1] == cols && out_strides[o + 1] == 1 &&
                  out_strides[o] == rows && (rank == 2 || (in_strides[0] == rows * cols && out_strides[0] == rows * cols));
        if (tr && rows >= 16 && cols >= 16 && rows < (1ll << 31) && cols < (1ll << 31) && rows * cols < (1ll << 40) &&
            (rows + 31) / 32 <= 65535 && b <= 65535) {
            switch (elem_size) {
            case 1: transpose_tiled_launch<uint8_t>(s, x, y, b, rows, cols); break;
            case 2: transpose_tiled_launch<uint16_t>(s, x, y, b, rows, cols); break;
            case 4: transpose_tiled_launch<uint32_t>(s, x, y, b, rows, cols); break;
            default: transpose_tiled_launch<unsigned long long>(s, x, y, b, rows, cols); break;
            }
            return cudaGetLastError();
        }
    }
    perm_args a;
    a.rank = rank;
    for (int d = 0; d < rank; d++)
        a.out_dims[d] = out_dims[d], a.in_strides[d] = in_strides[d], a.out_strides[d] = out_strides[d];
    /* 32-bit indices when the element count and the last offsets read and written fit. */
    unsigned long long xmax = 0, ymax = 0;
    for (int d = 0; d < rank; d++)
        xmax += (unsigned long long)(out_dims[d] - 1) * (unsigned long long)in_strides[d],
            ymax += (unsigned long long)(out_dims[d] - 1) * (unsigned long long)out_strides[d];
    bool narrow = n < (1ull << 31) && xmax < (1ull << 31) && ymax < (1ull << 31);
    size_t blocks = (n + 255) / 256;
    unsigned g = (unsigned)(blocks < (size_t)max_blocks ? blocks : (size_t)max_blocks);
    if (g == 0) g = 1;
    switch (elem_size) {
    case 1: transpose_launch<uint8_t>(s, g, x, y, n, a, narrow); break;
    case 2: transpose_launch<uint16_t>(s, g, x, y, n, a, narrow); break;
    case 4: transpose_launch<uint32_t>(s, g, x, y, n, a, narrow); break;
    case 8: transpose_launch<unsigned long long>(s, g, x, y, n, a, narrow); break;
    case 16: transpose_launch<uint4>(s, g, x, y, n, a, narrow); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

/* The mask is of the Q/K/V type, or f32 (a->mask_f32). */
template <typename T>
cudaError_t attention_rows(cudaStream_t s, dim3 grid, int t, size_t smem, const void *q, const void *k, const void *v,
                           const void *mask, void *y, const struct mixrt_cuda_attention_args *a) {
    if (a->mask_f32)
        attention_kernel<<<grid, t, smem, s>>>((const T *)q, (const T *)k, (const T *)v, (const float *)mask, (T *)y,
                                               *a);
    else
        attention_kernel<<<grid, t, smem, s>>>((const T *)q, (const T *)k, (const T *)v, (const T *)mask, (T *)y, *a);
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_attention(cudaStream_t s, int elem, const void *q, const void *k,
                                                   const void *v, const void *mask, void *y,
                                                   const struct mixrt_cuda_attention_args *a) {
    dim3 grid((unsigned)a->sq, (unsigned)a->h, (unsigned)a->b);
    size_t smem = (size_t)(a->sk + a->d) * sizeof(float);
    int t = a->sk >= 128 ? 128 : 64;
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32: return attention_rows<float>(s, grid, t, smem, q, k, v, mask, y, a);
    case MIXRT_CUDA_ELEM_BF16: return attention_rows<mixrt_cu_bf16>(s, grid, t, smem, q, k, v, mask, y, a);
    case MIXRT_CUDA_ELEM_F16: return attention_rows<__half>(s, grid, t, smem, q, k, v, mask, y, a);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" size_t mixrt_cuda_attention_tc_smem(long long sk, long long d, long long dv, int groups, int mask_kind) {
    return tc_plan(sk, d, dv, groups, mask_kind).total;
}

template <typename T, typename MT>
cudaError_t attention_tc_launch(cudaStream_t s, dim3 grid, size_t smem, int groups, int vec, const void *q,
                                const void *k, const void *v, const void *mask, void *y,
                                const struct mixrt_cuda_attention_args *a) {
    cudaError_t err = cudaFuncSetAttribute(attention_tc_kernel<T, MT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)smem);
    if (err != cudaSuccess) return err;
    attention_tc_kernel<T, MT><<<grid, 32 * TC_WARPS, smem, s>>>((const T *)q, (const T *)k, (const T *)v,
                                                                 (const MT *)mask, (T *)y, *a, groups, vec);
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_attention_tc(cudaStream_t s, int elem, int groups, int vec, const void *q,
                                                      const void *k, const void *v, const void *mask, void *y,
                                                      const struct mixrt_cuda_attention_args *a) {
    size_t smem = tc_plan(a->sk, a->d, a->dv, groups, mask ? (a->mask_strides[2] != 0 ? 2 : 1) : 0).total;
    long long rows = 16LL * groups;
    dim3 grid((unsigned)((a->sq + rows - 1) / rows), (unsigned)a->h, (unsigned)a->b);
    switch (elem) {
    case MIXRT_CUDA_ELEM_BF16:
        return a->mask_f32 ? attention_tc_launch<mixrt_cu_bf16, float>(s, grid, smem, groups, vec, q, k, v, mask, y, a)
                           : attention_tc_launch<mixrt_cu_bf16, mixrt_cu_bf16>(s, grid, smem, groups, vec, q, k, v,
                                                                                 mask, y, a);
    case MIXRT_CUDA_ELEM_F16:
        return a->mask_f32 ? attention_tc_launch<__half, float>(s, grid, smem, groups, vec, q, k, v, mask, y, a)
                           : attention_tc_launch<__half, __half>(s, grid, smem, groups, vec, q, k, v, mask, y, a);
    default: return cudaErrorInvalidValue;
    }
}
