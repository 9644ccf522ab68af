/* wino_tr_impl.h - the body of the Winograd F(4x4, 3x3) and F(2x2, 3x3) transforms of sgemm.c's
 * conv_wino and conv_wino2, once
 * for both instruction sets: wino_avx2.c (8 channels a vector) and wino_avx512.c (16) define the
 * vector type and operations below, then include this file, so the two run the same operations
 * in the same order and give equal bits. Not a header to include elsewhere.
 *
 * The including file defines: WT_V (a vector of WT_LANES f32), WT_MASK (a lane mask),
 * WT_ADD, WT_SUB, WT_FMADD (a * b + c), WT_FNMADD (-(a * b) + c), WT_SET1, WT_ZERO, WT_LOADU,
 * wt_lane_mask(n), wt_load(p, full, m), wt_store(p, v, full, m), and WT_IN / WT_OUT, the names
 * of the two F(4x4, 3x3) functions, WT_IN2 / WT_OUT2 those of F(2x2, 3x3) (sgemm_impl.h).
 *
 * With B^T, A^T of the points 0, +-1, +-2 (sgemm_impl.h): a 6x6 input tile d becomes
 * V = B^T d B, the 36 products M = V (.) U are summed over the input channels by the packed
 * product, and the 4x4 output tile is A^T M A. Each transform is applied down the columns, then
 * along the rows. */

/* B^T applied to d0..d5: r[0..5]. */
static inline __attribute__((always_inline)) void wt_bt6(WT_V d0, WT_V d1, WT_V d2, WT_V d3, WT_V d4, WT_V d5,
                                                         WT_V *r) {
    const WT_V c2 = WT_SET1(2.0f), c4 = WT_SET1(4.0f), c5 = WT_SET1(5.0f);
    r[0] = WT_FMADD(c4, d0, WT_FNMADD(c5, d2, d4));       /* 4 d0 - 5 d2 + d4 */
    r[1] = WT_FNMADD(c4, WT_ADD(d1, d2), WT_ADD(d3, d4)); /* -4 (d1 + d2) + d3 + d4 */
    r[2] = WT_FMADD(c4, WT_SUB(d1, d2), WT_SUB(d4, d3));  /* 4 (d1 - d2) - d3 + d4 */
    r[3] = WT_FMADD(c2, WT_SUB(d3, d1), WT_SUB(d4, d2));  /* 2 (d3 - d1) - d2 + d4 */
    r[4] = WT_FMADD(c2, WT_SUB(d1, d3), WT_SUB(d4, d2));  /* 2 (d1 - d3) - d2 + d4 */
    r[5] = WT_FMADD(c4, d1, WT_FNMADD(c5, d3, d5));       /* 4 d1 - 5 d3 + d5 */
}

/* A^T applied to m0..m5: r[0..3]. */
static inline __attribute__((always_inline)) void wt_at6(WT_V m0, WT_V m1, WT_V m2, WT_V m3, WT_V m4, WT_V m5,
                                                         WT_V *r) {
    const WT_V a = WT_ADD(m1, m2), b = WT_SUB(m1, m2), c = WT_ADD(m3, m4), d = WT_SUB(m3, m4);
    r[0] = WT_ADD(WT_ADD(m0, a), c);                  /* m0 + m1 + m2 + m3 + m4 */
    r[1] = WT_FMADD(WT_SET1(2.0f), d, b);             /* m1 - m2 + 2 (m3 - m4) */
    r[2] = WT_FMADD(WT_SET1(4.0f), c, a);             /* m1 + m2 + 4 (m3 + m4) */
    r[3] = WT_ADD(WT_FMADD(WT_SET1(8.0f), d, b), m5); /* m1 - m2 + 8 (m3 - m4) + m5 */
}

/* ---- F(2x2, 3x3) (conv_wino2): 4x4 input tiles, 16 products, 2x2 output tiles ----
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1] (sgemm_impl.h). */

/* B^T applied to d0..d3: r[0..3]. */
static inline __attribute__((always_inline)) void wt_bt4(WT_V d0, WT_V d1, WT_V d2, WT_V d3, WT_V *r) {
    r[0] = WT_SUB(d0, d2);
    r[1] = WT_ADD(d1, d2);
    r[2] = WT_SUB(d2, d1);
    r[3] = WT_SUB(d1, d3);
}

/* A^T applied to m0..m3: r[0..1]. */
static inline __attribute__((always_inline)) void wt_at4(WT_V m0, WT_V m1, WT_V m2, WT_V m3, WT_V *r) {
    r[0] = WT_ADD(WT_ADD(m0, m1), m2);
    r[1] = WT_SUB(WT_SUB(m1, m2), m3);
}

/* B^T (n 6: F(4x4, 3x3); n 4: F(2x2, 3x3)) applied to d[0..n): r[0..n). */
static inline __attribute__((always_inline)) void wt_bt(const int n, const WT_V *d, WT_V *r) {
    if (n == 6) wt_bt6(d[0], d[1], d[2], d[3], d[4], d[5], r);
    else wt_bt4(d[0], d[1], d[2], d[3], r);
}

/* A^T applied to m[0..n): r[0..n - 2). */
static inline __attribute__((always_inline)) void wt_at(const int n, const WT_V *m, WT_V *r) {
    if (n == 6) wt_at6(m[0], m[1], m[2], m[3], m[4], m[5], r);
    else wt_at4(m[0], m[1], m[2], m[3], r);
}

/* The input transform of an n x n tile at (iy0, ix0); both variants, n a constant once inlined. */
static inline __attribute__((always_inline)) void wt_in(const int n, const float *x, int64_t h, int64_t w, int64_t c,
                                                        int64_t iy0, int64_t ix0, float *v, size_t ld) {
    /* which of the tile's n rows and columns lie inside the image (zeros outside: the pads) */
    bool rin[6], cin[6];
    for (int i = 0; i < n; i++) rin[i] = iy0 + i >= 0 && iy0 + i < h, cin[i] = ix0 + i >= 0 && ix0 + i < w;
    for (int64_t c0 = 0; c0 < c; c0 += WT_LANES) {
        const bool full = c - c0 >= WT_LANES;
        const WT_MASK m = wt_lane_mask(full ? WT_LANES : c - c0);
        WT_V t[6][6], d[6], r[6];
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < n; i++)
                d[i] = rin[i] && cin[j]
                           ? wt_load(x + ((size_t)(iy0 + i) * (size_t)w + (size_t)(ix0 + j)) * (size_t)c + (size_t)c0,
                                     full, m)
                           : WT_ZERO();
            wt_bt(n, d, r);
            for (int i = 0; i < n; i++) t[i][j] = r[i];
        }
        for (int i = 0; i < n; i++) {
            wt_bt(n, t[i], r);
            for (int j = 0; j < n; j++) wt_store(v + (size_t)(i * n + j) * ld + (size_t)c0, r[j], full, m);
        }
    }
}

/* The output transform of an n x n tile's products into its first rows x cols outputs. */
static inline __attribute__((always_inline)) void wt_out(const int n, const float *mm, size_t ld, int64_t mc,
                                                         const float *bias, const float *z, float *y,
                                                         size_t row_stride, int rows, int cols) {
    for (int64_t c0 = 0; c0 < mc; c0 += WT_LANES) {
        const bool full = mc - c0 >= WT_LANES;
        const WT_MASK m = wt_lane_mask(full ? WT_LANES : mc - c0);
        WT_V t[4][6], e[6], r[4];
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < n; i++) e[i] = wt_load(mm + (size_t)(i * n + j) * ld + (size_t)c0, full, m);
            wt_at(n, e, r);
            for (int k = 0; k < n - 2; k++) t[k][j] = r[k];
        }
        const WT_V bv = bias ? WT_LOADU(bias + c0) : WT_ZERO(); /* bias padded to 16 */
        for (int k = 0; k < rows && k < n - 2; k++) {
            wt_at(n, t[k], r);
            for (int l = 0; l < cols && l < n - 2; l++) {
                const size_t at = (size_t)k * row_stride + (size_t)l * (size_t)mc + (size_t)c0;
                WT_V o = bias ? WT_ADD(r[l], bv) : r[l];
                if (z) o = WT_ADD(o, wt_load(z + at, full, m));
                wt_store(y + at, o, full, m);
            }
        }
    }
}

void WT_IN(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v, size_t ld) {
    wt_in(6, x, h, w, c, iy0, ix0, v, ld);
}
void WT_OUT(const float *mm, size_t ld, int64_t mc, const float *bias, const float *z, float *y, size_t row_stride,
            int rows, int cols) {
    wt_out(6, mm, ld, mc, bias, z, y, row_stride, rows, cols);
}
void WT_IN2(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v, size_t ld) {
    wt_in(4, x, h, w, c, iy0, ix0, v, ld);
}
void WT_OUT2(const float *mm, size_t ld, int64_t mc, const float *bias, const float *z, float *y, size_t row_stride,
             int rows, int cols) {
    wt_out(4, mm, ld, mc, bias, z, y, row_stride, rows, cols);
}
