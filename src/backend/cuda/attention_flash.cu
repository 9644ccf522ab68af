/* attention_flash.cu - flash-style com.mixrt Attention on tensor cores for bf16 / f16 Q/K/V
 * with d == dv in {32, 64, 128}: a block of NW warps (1, 4 or 8) takes 16 query rows per warp,
 * streams K and V in tiles of 64 keys through shared memory (cp.async, double-buffered), and keeps the scores, the
 * running row max / sum (online softmax) and the output accumulators in registers
 * (mma.sync m16n8k16, f32 accumulation; K and V fragments by ldmatrix); S never goes to
 * memory, so any Sk runs. 4 or 8 warps share one K/V load (large grids; 8: a 128-row
 * sequence reads each head's K/V once); 1 warp gives a small grid (batch 1) four times the
 * blocks.
 * The mask tile (1 row when the mask is the same for every query row, else 16 NW)
 * comes into shared memory with its K/V tile, in the same cp.async group.
 * Invariant: the semantics of attention_kernel (engine_ops.cu): s = scale q.k, the causal
 * fill replaces s for keys past i + (sk - sq), then the mask (f32 or dt) is added;
 * probabilities are rounded to dt before P V (like the tensor-core kernel), sums in f32. */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_types.cuh"

namespace {

constexpr int FL_KT = 64; /* keys per tile */
/* mask tile row pitch in elements: 16-byte aligned rows (f32 and 16-bit), and rows g and
 * g + 4 of a warp's 8 fall in different banks */
constexpr int FL_MLD = FL_KT + 8;
/* vec bits set by flash_launch: the mask's rows load as 16-byte copies; y's rows take
 * 16-byte stores */
constexpr int FL_MASK_VEC = 8, FL_Y_VEC = 16;
/* vec bit from the launcher's caller: no S skip on wholly-past causal tiles */
constexpr int FL_NO_PASTSKIP = MIXRT_CUDA_FLASH_NO_PASTSKIP;
/* vec bit from the launcher's caller: tile 1 goes out after Q and tile 0 arrived (the default) */
constexpr int FL_LATE_KV = MIXRT_CUDA_FLASH_LATE_KV;
/* vec bit from the launcher's caller: every warp computes every key tile whole (no tail skips) */
constexpr int FL_NO_TAILSKIP = MIXRT_CUDA_FLASH_NO_TAILSKIP;

template <typename T> struct fl_half { static constexpr bool value = false; };
template <> struct fl_half<__half> { static constexpr bool value = true; };

/* Two values rounded to T (RNE) in one register, lo in the low half: one conversion
 * instruction per pair (probabilities, and the output rows staged for 16-byte stores). */
template <typename T> __device__ __forceinline__ uint32_t fl_pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t fl_pack2<mixrt_cu_bf16>(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
template <> __device__ __forceinline__ uint32_t fl_pack2<__half>(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

/* Four 8x8 16-bit matrices from shared memory: lane l gives the address of row l % 8 of
 * matrix l / 8; r[i] gets matrix i's (row lane / 4, columns 2 (lane % 4) + {0, 1}), or with
 * .trans its (rows 2 (lane % 4) + {0, 1}, column lane / 4). */
__device__ __forceinline__ void fl_ldsm4(uint32_t *r, const uint16_t *p) {
    unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void fl_ldsm4t(uint32_t *r, const uint16_t *p) {
    unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* D += A B for one m16n8k16 tile; A row-major (4 regs), B column-major (2 regs). */
template <typename T>
__device__ __forceinline__ void fl_mma(float *d, const uint32_t *a, uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void fl_mma<mixrt_cu_bf16>(float *d, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void fl_mma<__half>(float *d, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* 16 bytes global -> shared without a register stop (sm_80 cp.async); src_bytes 0 fills
 * zeros and reads nothing. */
__device__ __forceinline__ void fl_cp16(void *dst, const void *src, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n));
}
/* 4 bytes global -> shared (cp.async.ca: the 16-byte form is the only .cg one). */
__device__ __forceinline__ void fl_cp4(void *dst, const void *src, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    int n = valid ? 4 : 0;
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(src), "r"(n));
}
__device__ __forceinline__ void fl_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void fl_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* rows x D of src (row r at base + r * rs, column c at c * cs) into dst (ld LD), rows from
 * `valid` on zero. vec (16-byte rows, aligned): asynchronous copies, complete after
 * fl_commit + fl_wait (all of a thread's copies in flight at once: the synchronous loop
 * waited one HBM latency per iteration, 24 us per block of 2 key tiles in call 16);
 * otherwise synchronous 2-byte moves. */
template <typename T, int D, int LD>
__device__ __forceinline__ void fl_load(uint16_t *dst, const T *src, size_t base, long long rs, long long cs,
                                        int rows, int valid, bool vec) {
    if (vec) {
        constexpr int CV = D / 8;
#pragma unroll 8
        for (int idx = threadIdx.x; idx < rows * CV; idx += blockDim.x) {
            int r = idx / CV, c = (idx % CV) * 8;
            bool ok = r < valid;
            fl_cp16(dst + r * LD + c, src + base + (ok ? (size_t)((long long)r * rs) + c : 0), ok);
        }
    } else {
        for (int idx = threadIdx.x; idx < rows * D; idx += blockDim.x) {
            int r = idx / D, c = idx % D;
            uint16_t bits = 0;
            if (r < valid) bits = *(const uint16_t *)(src + base + (size_t)((long long)r * rs + (long long)c * cs));
            dst[r * LD + c] = bits;
        }
    }
}

/* The mask tile of keys j0.. (kv valid) for `rows` rows (1: a row-invariant mask, row 0 read;
 * else the block's query rows, `valid` of them real) into dst (pitch FL_MLD); zeros
 * elsewhere. Asynchronous (cp.async: joins the K/V group of its tile) for f32 masks and
 * 16-byte-aligned 16-bit ones; a 16-bit mask with odd strides is read synchronously (no
 * zoo model has one: the planner keeps masks f32). Each score then reads shared memory,
 * not one global load per score inside the scoring branches (call 17's 44 us per layer). */
template <typename MT>
__device__ __forceinline__ void fl_load_mask(MT *dst, const MT *mask, size_t base, long long rs, long long cs,
                                             int rows, int valid, int kv, bool vec) {
    if (vec) {
        constexpr int CE = 16 / (int)sizeof(MT), CV = FL_KT / CE;
        for (int idx = threadIdx.x; idx < rows * CV; idx += blockDim.x) {
            int r = idx / CV, c = (idx % CV) * CE;
            bool ok = r < valid && c < kv; /* kv is a multiple of CE (sk is) */
            fl_cp16(dst + r * FL_MLD + c, mask + (ok ? base + (size_t)((long long)r * rs) + c : 0), ok);
        }
    } else if (sizeof(MT) == 4) {
        for (int idx = threadIdx.x; idx < rows * FL_KT; idx += blockDim.x) {
            int r = idx / FL_KT, c = idx % FL_KT;
            bool ok = r < valid && c < kv;
            fl_cp4(dst + r * FL_MLD + c, mask + (ok ? base + (size_t)((long long)r * rs + (long long)c * cs) : 0), ok);
        }
    } else {
        for (int idx = threadIdx.x; idx < rows * FL_KT; idx += blockDim.x) {
            int r = idx / FL_KT, c = idx % FL_KT;
            uint16_t bits = 0;
            if (r < valid && c < kv)
                bits = *(const uint16_t *)(mask + base + (size_t)((long long)r * rs + (long long)c * cs));
            *(uint16_t *)(dst + r * FL_MLD + c) = bits;
        }
    }
}

/* grid (ceil(sq / (16 NW)), h, b); shared: Q [16 NW][LD], K and V [FL_KT][LD]
 * (LD = D + 8 halves: the 8 rows of an ldmatrix / fragment load hit 32 different banks).
 * Thread lane of warp w holds query rows r0 = 16 w + lane / 4 and r0 + 8, score / output
 * columns 2 (lane % 4) + {0, 1} of every 8-wide tile (the m16n8 accumulator layout). */
/* Scoring kinds: FL_GENERAL (any mask, causal limit and key count), FL_PLAIN (no causal limit,
 * sk a multiple of 64, one mask row or none), FL_CAUSAL_ROW (the same with the causal limit:
 * GPT-2's mask row and causal fill). */
enum { FL_GENERAL, FL_PLAIN, FL_CAUSAL_ROW };

template <typename T, typename MT, int D, int NW, int KIND>
__global__ void __launch_bounds__(32 * NW, NW == 8 ? (D <= 64 ? 2 : 1) : (D <= 64 ? 12 : 8) / NW)
    attention_flash_kernel(const T *q, const T *k, const T *v, const MT *mask, T *y, struct mixrt_cuda_attention_args a,
                           int vec, int chunks) {
    constexpr int LD = D + 8, NQ = 16 * NW;
    /* the past-tile skip below: not in the f16 kernels with a 16-bit mask (ptxas: the branch
     * took their spills from 12 to 44 bytes; the bf16 ones spill none with it) */
    constexpr bool FL_SKIPS = KIND == FL_CAUSAL_ROW && !(fl_half<T>::value && sizeof(MT) == 2);
    extern __shared__ __align__(16) uint16_t fsm[];
    /* Q (later this block's output rows), then two K/V buffers (tile t + 1 loads while tile
     * t computes), then two mask tiles of MR rows (none without a mask). */
    uint16_t *qs = fsm, *kb0 = qs + NQ * LD, *kb1 = kb0 + 2 * FL_KT * LD;
    const int MR = a.mask_strides[2] != 0 ? NQ : 1;
    MT *mt0 = (MT *)(kb1 + 2 * FL_KT * LD), *mt1 = mt0 + MR * FL_MLD;
    const int w = threadIdx.x / 32, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const long long h = blockIdx.y, b = blockIdx.z;
    const long long *Qs = a.q_strides, *Ks = a.k_strides, *Vs = a.v_strides, *Ms = a.mask_strides;
    const int SK = (int)a.sk;
    /* The block's `chunks` runs of NQ query rows, one after the other: the K/V tiles of the
     * later ones come again (from L2, the earlier run having just read them), and a grid of
     * fewer, longer blocks can be resident at once (GPT-2 b32: 384 blocks of 4 warps, 3 per
     * SM, one wave; 8 warps, 2 per SM: 1.45 waves). */
    for (int ch = 0; ch < chunks; ch++) {
        const long long i0 = ((long long)blockIdx.x * chunks + ch) * NQ;
        if (i0 >= a.sq) break;
        /* the last run's output rows have left qs (its key loop's last barrier freed K/V) */
        if (ch) __syncthreads();
        long long qleft = a.sq - i0;
        const int qv = qleft > NQ ? NQ : (int)qleft;
        fl_load<T, D, LD>(qs, q, (size_t)(b * Qs[0] + h * Qs[1] + i0 * Qs[2]), Qs[2], Qs[3], NQ, qv, (vec & 1) != 0);
        const size_t mbase = mask ? (size_t)(b * Ms[0] + h * Ms[1] + i0 * Ms[2]) : 0;
        auto load_kv = [&](int j0, uint16_t *kb, MT *mt) {
            const int kv = SK - j0 > FL_KT ? FL_KT : SK - j0;
            if (mask)
                fl_load_mask<MT>(mt, mask, mbase + (size_t)((long long)j0 * Ms[3]), Ms[2], Ms[3], MR, MR == 1 ? 1 : qv,
                                 kv, (vec & FL_MASK_VEC) != 0);
            fl_load<T, D, LD>(kb, k, (size_t)(b * Ks[0] + h * Ks[1] + (long long)j0 * Ks[2]), Ks[2], Ks[3], FL_KT, kv,
                              (vec & 2) != 0);
            fl_load<T, D, LD>(kb + FL_KT * LD, v, (size_t)(b * Vs[0] + h * Vs[1] + (long long)j0 * Vs[2]), Vs[2], Vs[3],
                              FL_KT, kv, (vec & 4) != 0);
        };
        load_kv(0, kb0, mt0);
        fl_commit();
        /* Q and tile 0 are one group. Otherwise than early, the block waits for them here, as
         * it did before session 56, and tile 1 goes out as the key loop starts. Early (the
         * default; MIXRT_CUDA_FLASH_EARLYKV=off: not; the PLAIN / CAUSAL_ROW kernels only - the
         * general one spilled 20-36 bytes with it, ptxas -v) the loop's first pass puts tile 1
         * in flight before it waits for them and takes the Q fragments after, so a 128-key head
         * has all its K/V on the way at once. Measured (H100, b32): BERT -0.3 %, GPT-2 within
         * the spread - far under the ~2 % predicted: one memory latency per block is a small
         * part of the kernel's 21 us at 21 % achieved occupancy (ncu). */
        const bool early = KIND != FL_GENERAL && !(vec & FL_LATE_KV);
        uint32_t qa[D / 16][4];
        const int rw = 16 * w;
        auto load_qa = [&]() {
#pragma unroll
            for (int kc = 0; kc < D / 16; kc++) {
                const uint16_t *q0 = qs + (rw + g) * LD + kc * 16 + 2 * t, *q8 = q0 + 8 * LD;
                qa[kc][0] = *(const uint32_t *)q0;
                qa[kc][1] = *(const uint32_t *)q8;
                qa[kc][2] = *(const uint32_t *)(q0 + 8);
                qa[kc][3] = *(const uint32_t *)(q8 + 8);
            }
        };
        if (!early) {
            fl_wait<0>();
            __syncthreads();
            load_qa();
        }
        float o[D / 8][4];
#pragma unroll
        for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
        float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
        const int ia = (int)i0 + rw + g; /* this thread's two query rows: ia, ia + 8 (sq < 2^31) */
        /* Causal: key j of row ia is filled past ia + sk - sq (row ia + 8: 8 more keys); sq and
         * sk are below 2^30 (mixrt_cuda_attention_fast declines others), so ints hold it. */
        const int lim_a = ia + (SK - (int)a.sq);
        const int mra = MR == 1 ? 0 : (rw + g) * FL_MLD, mrb = MR == 1 ? 0 : (rw + g + 8) * FL_MLD;
        /* ldmatrix row addresses (elements): K non-transposed, row lane % 8 of key tile n, column
         * chunk lane / 8 (two 16-wide k chunks per x4); V transposed, key lane % 8 + 8 (lane / 8
         * & 1) of chunk kc, columns 8 (lane / 16) of the output tile pair. */
        const int koff = (lane & 7) * LD + (lane >> 3) * 8;
        const int voff = ((lane & 7) + ((lane >> 3) & 1) * 8) * LD + (lane >> 4) * 8;
        /* Tail skips in the general kernel (MIXRT_CUDA_FLASH_TAILSKIP=off: none; the PLAIN /
         * CAUSAL_ROW ones are compiled without them: the branch made ptxas spill in GPT-2's). A
         * warp whose 16 query rows all lie past sq (ViT's 197 rows in blocks of 128: 3 of the
         * second block's 8 warps) only helps load K/V and keeps the barriers; the score tiles of
         * 8 keys and the P V chunks of 16 that lie wholly past sk are not computed (ViT's last
         * key tile holds 5 keys of 64). Exact: those scores are -inf whatever S held and their P
         * are 0, so the skipped products only added +0 to accumulators that are never -0.
         * Measured (H100, ViT-B/16 b32 bf16, device I/O, alternated with =off, four pairs): 2.862
         * / 2.846 / 2.851 / 2.844 against 2.886 / 2.898 / 2.923 / 2.908 ms (-1.9 %); b1 within
         * the spread (0.600 - 0.633 against 0.604 - 0.615). */
        const bool tails = !(vec & FL_NO_TAILSKIP), wact = KIND != FL_GENERAL || !tails || i0 + rw < a.sq;
        for (int j0 = 0, tile = 0; j0 < SK; j0 += FL_KT, tile++) {
            const int kv = SK - j0 > FL_KT ? FL_KT : SK - j0;
            const uint16_t *ks = (tile & 1) ? kb1 : kb0, *vs = ks + FL_KT * LD;
            const MT *mt = (tile & 1) ? mt1 : mt0;
            if (j0 + FL_KT < SK) { /* the next tile into the other buffer, freed by the last barrier */
                load_kv(j0 + FL_KT, (tile & 1) ? kb0 : kb1, (tile & 1) ? mt0 : mt1);
                fl_commit();
                fl_wait<1>(); /* this tile's copies are done (the newest group may still fly) */
            } else {
                fl_wait<0>();
            }
            __syncthreads();
            if (early && !tile) load_qa(); /* the Q fragments for the whole key loop */
            if (wact) {
                /* S = Q K^T for 16 rows x 64 keys: 8 tiles of 8 keys. FL_CAUSAL_ROW without causal_add:
                 * a tile past the causal limit of every row of this warp scores fill + m alone (its S is
                 * not read), so the product is skipped there - the first 64 rows' second tile of a
                 * 128-token causal head (warp-uniform: ldmatrix and mma stay whole-warp).
                 * MIXRT_CUDA_FLASH_PASTSKIP=off computes it anyway. */
                const bool s_skip = FL_SKIPS && !a.causal_add && !(vec & FL_NO_PASTSKIP) && j0 > lim_a - g + 15;
                float s[FL_KT / 8][4];
#pragma unroll
                for (int n = 0; n < FL_KT / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
                if (!s_skip)
#pragma unroll
                for (int n = 0; n < FL_KT / 8; n++) {
                    if (KIND == FL_GENERAL && tails && n * 8 >= kv) break; /* keys past sk (warp-uniform) */
#pragma unroll
                    for (int kc = 0; kc < D / 16; kc += 2) {
                        uint32_t kf[4];
                        fl_ldsm4(kf, ks + n * 8 * LD + kc * 16 + koff);
                        fl_mma<T>(s[n], qa[kc], kf[0], kf[1]);
                        fl_mma<T>(s[n], qa[kc + 1], kf[2], kf[3]);
                    }
                }
                /* Scale, causal fill, mask; keys past sk drop out (-inf). */
                const MT *ma = mt + mra, *mb = mt + mrb;
                const int jc = lim_a - j0; /* row ia's last unfilled key, tile-relative */
                float mx[2] = {-INFINITY, -INFINITY};
                /* FL_PLAIN (BERT; ViT's 197 keys are not a multiple of 64): each score is s * scale
                 * + m, m read once for both of a thread's rows; FL_CAUSAL_ROW (GPT-2) adds the causal
                 * limit: past it s * scale + fill (causal_add), or the fill alone. The general loop's
                 * operations on these scores, so its bits, with fewer instructions (the kernel is
                 * bound by its issue: ncu, BERT b32; the gain is not measured yet, so these kernels
                 * are opt-in). Kernels of their own: the loops in one kernel spilled 36-52 bytes in
                 * the D = 64, 8-warp kernels. */
                if (KIND != FL_GENERAL) {
#pragma unroll
                    for (int n = 0; n < FL_KT / 8; n++) {
                        float m0 = 0.0f, m1 = 0.0f;
                        if (mask)
                            m0 = mixrt_cu_load(ma, (size_t)(n * 8 + 2 * t)),
                            m1 = mixrt_cu_load(ma, (size_t)(n * 8 + 2 * t + 1));
                        if (KIND == FL_PLAIN) {
                            s[n][0] = fmaf(s[n][0], a.scale, m0), s[n][1] = fmaf(s[n][1], a.scale, m1);
                            s[n][2] = fmaf(s[n][2], a.scale, m0), s[n][3] = fmaf(s[n][3], a.scale, m1);
                        } else {
                            const int j = n * 8 + 2 * t;
#pragma unroll
                            for (int e = 0; e < 4; e++) {
                                const bool past = (j + (e & 1)) > jc + (e < 2 ? 0 : 8);
                                const float x = fmaf(s[n][e], a.scale, past ? a.fill : (e & 1) ? m1 : m0);
                                s[n][e] = past && !a.causal_add ? a.fill + ((e & 1) ? m1 : m0) : x;
                            }
                        }
                        mx[0] = fmaxf(mx[0], fmaxf(s[n][0], s[n][1]));
                        mx[1] = fmaxf(mx[1], fmaxf(s[n][2], s[n][3]));
                    }
                } else
#pragma unroll
                for (int n = 0; n < FL_KT / 8; n++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int jl = n * 8 + 2 * t + (e & 1);
                        const bool lo = e < 2;
                        const float mv = mask ? mixrt_cu_load(lo ? ma : mb, (size_t)jl) : 0.0f;
                        const bool past = a.causal && jl > jc + (lo ? 0 : 8);
                        /* past: fill + m without causal_add (the score is not read: an inf or NaN one
                         * stays out), s * scale + fill with it. Written as selects around one fma: the
                         * branchy form (3951d5d) spilled 40-52 bytes in the D = 64, 8-warp kernels and
                         * cost BERT / GPT-2 b32 2-3 %; this one spills in none (ptxas -v, CUDA 13.0) */
                        const float fm = a.fill + mv;
                        float x = fmaf(s[n][e], a.scale, past ? a.fill : mv);
                        x = past && !a.causal_add ? fm : x;
                        if (jl >= kv) x = -INFINITY;
                        s[n][e] = x;
                        mx[lo ? 0 : 1] = fmaxf(mx[lo ? 0 : 1], x);
                    }
                float alpha[2], mu[2];
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
                }
                /* A tile every row of the warp has already outgrown by 128 (a causal tile past the
                 * diagonal, masked keys): each exp is 0 (f32 underflow), alpha 1 - nothing to add, so
                 * the exps and P V are skipped without changing a result. */
                if (__all_sync(0xffffffffu, mx[0] < m_run[0] - 128.0f && mx[1] < m_run[1] - 128.0f)) goto tile_done;
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    float mn = fmaxf(m_run[r], mx[r]);
                    mu[r] = mn == -INFINITY ? 0.0f : mn; /* a row masked with -inf so far: exps 0, no NaN yet */
                    alpha[r] = __expf(m_run[r] - mu[r]);
                    m_run[r] = mn;
                    l_run[r] *= alpha[r];
                }
#pragma unroll
                for (int n = 0; n < D / 8; n++)
                    o[n][0] *= alpha[0], o[n][1] *= alpha[0], o[n][2] *= alpha[1], o[n][3] *= alpha[1];
                /* P (rounded to T) as A fragments: key chunk kc = score tiles 2 kc and 2 kc + 1. */
                uint32_t pa[FL_KT / 16][4];
#pragma unroll
                for (int n = 0; n < FL_KT / 8; n++) {
                    float p0 = __expf(s[n][0] - mu[0]), p1 = __expf(s[n][1] - mu[0]);
                    float p2 = __expf(s[n][2] - mu[1]), p3 = __expf(s[n][3] - mu[1]);
                    l_run[0] += p0 + p1;
                    l_run[1] += p2 + p3;
                    pa[n / 2][(n & 1) * 2 + 0] = fl_pack2<T>(p0, p1);
                    pa[n / 2][(n & 1) * 2 + 1] = fl_pack2<T>(p2, p3);
                }
                /* O += P V: V [keys, D] as column-major B, two output tiles per transposed x4. */
#pragma unroll
                for (int kc = 0; kc < FL_KT / 16; kc++) {
                    if (KIND == FL_GENERAL && tails && kc * 16 >= kv) break; /* P is 0 there */
#pragma unroll
                    for (int n = 0; n < D / 8; n += 2) {
                        uint32_t vf[4];
                        fl_ldsm4t(vf, vs + kc * 16 * LD + n * 8 + voff);
                        fl_mma<T>(o[n], pa[kc], vf[0], vf[1]);
                        fl_mma<T>(o[n + 1], pa[kc], vf[2], vf[3]);
                    }
                }
            } /* wact */
        tile_done:
            __syncthreads(); /* every warp is done with this buffer before it is refilled */
        }
        /* Row sums over the 4 threads of a row, then O / l. */
#pragma unroll
        for (int r = 0; r < 2; r++) {
            l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
            l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
        }
        /* nan_zero: a row with no finite score kept l = 0 and O = 0 (its exps were 0): zeros,
         * not 0 / 0. */
        const float inv_a = a.nan_zero && !(l_run[0] > 0.0f) ? 0.0f : 1.0f / l_run[0];
        const float inv_b = a.nan_zero && !(l_run[1] > 0.0f) ? 0.0f : 1.0f / l_run[1];
        const long long *Ys = a.y_strides;
        if (vec & FL_Y_VEC) {
            /* y rows are 16-byte aligned and contiguous: the warp's 16 rows go through its own Q
             * rows of shared memory (no other warp reads them), then out as 16-byte stores; pairs
             * rounded by one conversion each (RNE; a NaN comes out as the canonical NaN). */
            uint16_t *ot = qs + rw * LD;
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                const int c0 = n * 8 + 2 * t;
                *(uint32_t *)(ot + g * LD + c0) = fl_pack2<T>(o[n][0] * inv_a, o[n][1] * inv_a);
                *(uint32_t *)(ot + (g + 8) * LD + c0) = fl_pack2<T>(o[n][2] * inv_b, o[n][3] * inv_b);
            }
            __syncwarp();
            constexpr int CV = D / 8;
#pragma unroll
            for (int idx = lane; idx < 16 * CV; idx += 32) {
                const int r = idx / CV, c = (idx % CV) * 8;
                const long long i = i0 + rw + r;
                if (i < a.sq)
                    *(uint4 *)(y + (size_t)(b * Ys[0] + h * Ys[1] + i * Ys[2]) + c) =
                        *(const uint4 *)(qs + (rw + r) * LD + c);
            }
            continue;
        }
        const bool row_a = ia < a.sq, row_b = ia + 8 < a.sq;
        const size_t ya = (size_t)(b * Ys[0] + h * Ys[1] + (long long)ia * Ys[2]), yb = ya + (size_t)(8 * Ys[2]);
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            const long long c0 = n * 8 + 2 * t;
            if (row_a) {
                mixrt_cu_store(y, ya + (size_t)(c0 * Ys[3]), o[n][0] * inv_a);
                mixrt_cu_store(y, ya + (size_t)((c0 + 1) * Ys[3]), o[n][1] * inv_a);
            }
            if (row_b) {
                mixrt_cu_store(y, yb + (size_t)(c0 * Ys[3]), o[n][2] * inv_b);
                mixrt_cu_store(y, yb + (size_t)((c0 + 1) * Ys[3]), o[n][3] * inv_b);
            }
        }
    } /* chunks */
}

template <typename T, typename MT, int D, int NW>
cudaError_t flash_launch(cudaStream_t s, int vec, int chunks, const void *q, const void *k, const void *v, const void *mask,
                         void *y, const struct mixrt_cuda_attention_args *a) {
    constexpr int LD = D + 8, NQ = 16 * NW;
    size_t smem = (size_t)(NQ + 4 * FL_KT) * LD * sizeof(uint16_t);
    if (mask) {
        const long long *ms = a->mask_strides;
        const long long ce = 16 / (long long)sizeof(MT);
        smem += (size_t)2 * (ms[2] != 0 ? NQ : 1) * FL_MLD * sizeof(MT);
        if (ms[3] == 1 && a->sk % ce == 0 && ms[0] % ce == 0 && ms[1] % ce == 0 && ms[2] % ce == 0 &&
            (uintptr_t)mask % 16 == 0)
            vec |= FL_MASK_VEC;
    }
    const long long *ys = a->y_strides;
    if (ys[3] == 1 && ys[0] % 8 == 0 && ys[1] % 8 == 0 && ys[2] % 8 == 0 && (uintptr_t)y % 16 == 0) vec |= FL_Y_VEC;
    const bool plain = (!mask || a->mask_strides[2] == 0) && a->sk % FL_KT == 0 && !(vec & MIXRT_CUDA_FLASH_NO_PLAIN);
    void (*kern)(const T *, const T *, const T *, const MT *, T *, struct mixrt_cuda_attention_args, int, int) =
        !plain      ? attention_flash_kernel<T, MT, D, NW, FL_GENERAL>
        : a->causal ? attention_flash_kernel<T, MT, D, NW, FL_CAUSAL_ROW>
                    : attention_flash_kernel<T, MT, D, NW, FL_PLAIN>;
    if (smem > 48 * 1024) {
        cudaError_t err = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (err != cudaSuccess) return err;
    }
    const long long rows = (long long)NQ * chunks;
    dim3 grid((unsigned)((a->sq + rows - 1) / rows), (unsigned)a->h, (unsigned)a->b);
    kern<<<grid, 32 * NW, smem, s>>>((const T *)q, (const T *)k, (const T *)v, (const MT *)mask, (T *)y, *a, vec,
                                     chunks);
    return cudaGetLastError();
}

template <typename T, typename MT, int NW>
cudaError_t flash_by_d(cudaStream_t s, int vec, int chunks, const void *q, const void *k, const void *v, const void *mask, void *y,
                       const struct mixrt_cuda_attention_args *a) {
    switch (a->d) {
    case 32: return flash_launch<T, MT, 32, NW>(s, vec, chunks, q, k, v, mask, y, a);
    case 64: return flash_launch<T, MT, 64, NW>(s, vec, chunks, q, k, v, mask, y, a);
    case 128: return flash_launch<T, MT, 128, NW>(s, vec, chunks, q, k, v, mask, y, a);
    default: return cudaErrorInvalidValue;
    }
}

template <typename T, typename MT>
cudaError_t flash_by_warps(cudaStream_t s, int warps, int vec, int chunks, const void *q, const void *k, const void *v,
                           const void *mask, void *y, const struct mixrt_cuda_attention_args *a) {
    return warps == 1   ? flash_by_d<T, MT, 1>(s, vec, chunks, q, k, v, mask, y, a)
           : warps == 4 ? flash_by_d<T, MT, 4>(s, vec, chunks, q, k, v, mask, y, a)
                        : flash_by_d<T, MT, 8>(s, vec, chunks, q, k, v, mask, y, a);
}

} // namespace

extern "C" int mixrt_cuda_attention_flash_fits(long long d, long long dv) {
    return d == dv && (d == 32 || d == 64 || d == 128);
}

extern "C" cudaError_t mixrt_cuda_launch_attention_flash(cudaStream_t s, int elem, int warps, int chunks, int vec,
                                                         const void *q,
                                                         const void *k, const void *v, const void *mask, void *y,
                                                         const struct mixrt_cuda_attention_args *a) {
    if ((warps != 1 && warps != 4 && warps != 8) || chunks < 1 || chunks > 8) return cudaErrorInvalidValue;
    switch (elem) {
    case MIXRT_CUDA_ELEM_BF16:
        return a->mask_f32 ? flash_by_warps<mixrt_cu_bf16, float>(s, warps, vec, chunks, q, k, v, mask, y, a)
                           : flash_by_warps<mixrt_cu_bf16, mixrt_cu_bf16>(s, warps, vec, chunks, q, k, v, mask, y, a);
    case MIXRT_CUDA_ELEM_F16:
        return a->mask_f32 ? flash_by_warps<__half, float>(s, warps, vec, chunks, q, k, v, mask, y, a)
                           : flash_by_warps<__half, __half>(s, warps, vec, chunks, q, k, v, mask, y, a);
    default: return cudaErrorInvalidValue;
    }
}
