/* gconv_avx512_impl.h - the body of gconv_avx512.c's row kernels, included once per X dtype:
 * XT the element type of X and Z (float, or uint16_t for bf16), LDX(p) 16 of them widened to
 * f32, GC_FN(name) / GC_EXPORT(name) the dtype's names. Y is always f32 (gconv.c rounds bf16
 * rows itself). Private to gconv_avx512.c. */

/* The pixel pointers of one tap: NULL where the tap reads padding. */
#define PIX(P)                                                                                                         \
    if (np > P) {                                                                                                      \
        const int64_t iw = (ox + P) * r->sw - r->pl + kx * r->dw;                                                      \
        if (iw >= 0 && iw < r->wd) xp##P = xrow + iw * C;                                                              \
    }

#define OUT(P, H)                                                                                                      \
    if (np > P && nh > H) {                                                                                            \
        __m512 o = a##P##H;                                                                                            \
        if (r->z) o = _mm512_add_ps(o, LDX((const XT *)r->z + (ox + P) * C + m0 + 16 * H));                            \
        _mm512_storeu_ps(r->y + (ox + P) * C + m0 + 16 * H, o);                                                        \
    }

/* ---- G = 4: np pixels x nh vectors of 16 channels (8 accumulators, 8 weight vectors) -------- */

#define SP4(v, ci) _mm512_permute_ps((v), (ci)*0x55)
#define STEP4(P, H)                                                                                                    \
    if (np > P && nh > H && xp##P) {                                                                                   \
        const __m512 v = LDX(xp##P + m0 + 16 * H);                                                                     \
        a##P##H = _mm512_fmadd_ps(SP4(v, 0), w##H##0, a##P##H);                                                        \
        a##P##H = _mm512_fmadd_ps(SP4(v, 1), w##H##1, a##P##H);                                                        \
        a##P##H = _mm512_fmadd_ps(SP4(v, 2), w##H##2, a##P##H);                                                        \
        a##P##H = _mm512_fmadd_ps(SP4(v, 3), w##H##3, a##P##H);                                                        \
    }

static inline __attribute__((always_inline)) void GC_FN(block4)(const struct mixrt_gconv_row *r, int64_t ox,
                                                                const int np, int64_t m0, const int nh) {
    const int64_t C = r->c, ih0 = r->oy * r->sh - r->pt;
    const __m512 b0 = _mm512_loadu_ps(r->b + m0), b1 = nh > 1 ? _mm512_loadu_ps(r->b + m0 + 16) : b0;
    __m512 a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1;
    for (int64_t ky = 0; ky < r->kh; ky++) {
        const int64_t ih = ih0 + ky * r->dh;
        if (ih < 0 || ih >= r->h) continue;
        const XT *xrow = (const XT *)r->x + ih * r->wd * C;
        for (int64_t kx = 0; kx < r->kw; kx++) {
            const float *wt = r->w + (ky * r->kw + kx) * 4 * C + m0;
            const __m512 w00 = _mm512_loadu_ps(wt), w01 = _mm512_loadu_ps(wt + C), w02 = _mm512_loadu_ps(wt + 2 * C),
                         w03 = _mm512_loadu_ps(wt + 3 * C);
            __m512 w10 = w00, w11 = w01, w12 = w02, w13 = w03;
            if (nh > 1)
                w10 = _mm512_loadu_ps(wt + 16), w11 = _mm512_loadu_ps(wt + C + 16),
                w12 = _mm512_loadu_ps(wt + 2 * C + 16), w13 = _mm512_loadu_ps(wt + 3 * C + 16);
            const XT *xp0 = NULL, *xp1 = NULL, *xp2 = NULL, *xp3 = NULL;
            PIX(0)
            PIX(1) PIX(2) PIX(3) STEP4(0, 0) STEP4(0, 1) STEP4(1, 0) STEP4(1, 1) STEP4(2, 0) STEP4(2, 1) STEP4(3, 0)
                STEP4(3, 1)
        }
    }
    OUT(0, 0) OUT(0, 1) OUT(1, 0) OUT(1, 1) OUT(2, 0) OUT(2, 1) OUT(3, 0) OUT(3, 1)
}

/* ---- G = 4, 3 taps a row, stride and dilation 1 along the row (ResNeXt's 3x3 convs): eight
 * pixels by 16 channels, each input pixel's four spread vectors made once and used by every
 * (output pixel, kx) pair that reads it: 40 permutes for 96 fmas instead of one a fma, in the
 * same order per output (kx ascending, then ci): 0.81-0.84 of the general block's time on
 * ResNeXt-50's 56x56x128 (timed alternately against oneDNN, 4 pairs). ------------------------ */

#define FMA4(P, K)                                                                                                     \
    a##P = _mm512_fmadd_ps(s0, w##K##0, a##P);                                                                         \
    a##P = _mm512_fmadd_ps(s1, w##K##1, a##P);                                                                         \
    a##P = _mm512_fmadd_ps(s2, w##K##2, a##P);                                                                         \
    a##P = _mm512_fmadd_ps(s3, w##K##3, a##P);

/* Input pixel iw0 + Q (if inside the row): its four spread vectors, then the fmas FMAS of the
 * (output pixel, kx) pairs that read it. */
#define Q4(Q, FMAS)                                                                                                    \
    if (iw0 + Q >= 0 && iw0 + Q < r->wd) {                                                                             \
        const __m512 v = LDX(xrow + (iw0 + Q) * C);                                                                    \
        const __m512 s0 = SP4(v, 0), s1 = SP4(v, 1), s2 = SP4(v, 2), s3 = SP4(v, 3);                                  \
        FMAS                                                                                                           \
    }

static inline __attribute__((always_inline)) void GC_FN(block4_k3)(const struct mixrt_gconv_row *r, int64_t ox,
                                                                   int64_t m0) {
    const int64_t C = r->c, ih0 = r->oy * r->sh - r->pt, iw0 = ox - r->pl;
    const __m512 b0 = _mm512_loadu_ps(r->b + m0);
    __m512 a0 = b0, a1 = b0, a2 = b0, a3 = b0, a4 = b0, a5 = b0, a6 = b0, a7 = b0;
    for (int64_t ky = 0; ky < r->kh; ky++) {
        const int64_t ih = ih0 + ky * r->dh;
        if (ih < 0 || ih >= r->h) continue;
        const XT *xrow = (const XT *)r->x + ih * r->wd * C + m0;
        const float *wt = r->w + ky * 3 * 4 * C + m0;
        const __m512 w00 = _mm512_loadu_ps(wt), w01 = _mm512_loadu_ps(wt + C), w02 = _mm512_loadu_ps(wt + 2 * C),
                     w03 = _mm512_loadu_ps(wt + 3 * C), w10 = _mm512_loadu_ps(wt + 4 * C),
                     w11 = _mm512_loadu_ps(wt + 5 * C), w12 = _mm512_loadu_ps(wt + 6 * C),
                     w13 = _mm512_loadu_ps(wt + 7 * C), w20 = _mm512_loadu_ps(wt + 8 * C),
                     w21 = _mm512_loadu_ps(wt + 9 * C), w22 = _mm512_loadu_ps(wt + 10 * C),
                     w23 = _mm512_loadu_ps(wt + 11 * C);
        Q4(0, FMA4(0, 0))
        Q4(1, FMA4(1, 0) FMA4(0, 1))
        Q4(2, FMA4(2, 0) FMA4(1, 1) FMA4(0, 2))
        Q4(3, FMA4(3, 0) FMA4(2, 1) FMA4(1, 2))
        Q4(4, FMA4(4, 0) FMA4(3, 1) FMA4(2, 2))
        Q4(5, FMA4(5, 0) FMA4(4, 1) FMA4(3, 2))
        Q4(6, FMA4(6, 0) FMA4(5, 1) FMA4(4, 2))
        Q4(7, FMA4(7, 0) FMA4(6, 1) FMA4(5, 2))
        Q4(8, FMA4(7, 1) FMA4(6, 2))
        Q4(9, FMA4(7, 2))
    }
#define OUT8(P)                                                                                                        \
    {                                                                                                                  \
        __m512 o = a##P;                                                                                               \
        if (r->z) o = _mm512_add_ps(o, LDX((const XT *)r->z + (ox + P) * C + m0));                                     \
        _mm512_storeu_ps(r->y + (ox + P) * C + m0, o);                                                                 \
    }
    OUT8(0) OUT8(1) OUT8(2) OUT8(3) OUT8(4) OUT8(5) OUT8(6) OUT8(7)
#undef OUT8
}

void GC_EXPORT(mixrt_gconv4_row_avx512)(const struct mixrt_gconv_row *r) {
    const int64_t C = r->c;
    int64_t ox = 0;
    if (r->kw == 3 && r->sw == 1 && r->dw == 1)
        for (; ox + 8 <= r->ow; ox += 8)
            for (int64_t m0 = 0; m0 < C; m0 += 16) GC_FN(block4_k3)(r, ox, m0);
    for (; ox + 4 <= r->ow; ox += 4) {
        int64_t m0 = 0;
        for (; m0 + 32 <= C; m0 += 32) GC_FN(block4)(r, ox, 4, m0, 2);
        if (m0 < C) GC_FN(block4)(r, ox, 4, m0, 1);
    }
    for (; ox < r->ow; ox++) {
        int64_t m0 = 0;
        for (; m0 + 32 <= C; m0 += 32) GC_FN(block4)(r, ox, 1, m0, 2);
        if (m0 < C) GC_FN(block4)(r, ox, 1, m0, 1);
    }
}

/* ---- G = 8: np pixels x one vector of 16 channels (4 accumulators, 8 weights, 8 indices) ---- */

#define STEP8(P)                                                                                                       \
    if (np > P && xp##P) {                                                                                             \
        const __m512 v = LDX(xp##P + m0);                                                                              \
        a##P##0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i0, v), w00, a##P##0);                                         \
        a##P##0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i1, v), w01, a##P##0);                                         \
        a##P##0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i2, v), w02, a##P##0);                                         \
        a##P##0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i3, v), w03, a##P##0);                                         \
        a##P##0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i4, v), w04, a##P##0);                                         \
        a##P##0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i5, v), w05, a##P##0);                                         \
        a##P##0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i6, v), w06, a##P##0);                                         \
        a##P##0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i7, v), w07, a##P##0);                                         \
    }

static inline __attribute__((always_inline)) void GC_FN(block8)(const struct mixrt_gconv_row *r, int64_t ox,
                                                                const int np, int64_t m0) {
    const int64_t C = r->c, ih0 = r->oy * r->sh - r->pt;
    const int nh = 1;
    /* lane l of index ci picks input channel ci of lane l's group (l / 8 * 8 + ci) */
#define IDX(ci)                                                                                                        \
    _mm512_set_epi32(8 + ci, 8 + ci, 8 + ci, 8 + ci, 8 + ci, 8 + ci, 8 + ci, 8 + ci, ci, ci, ci, ci, ci, ci, ci, ci)
    const __m512i i0 = IDX(0), i1 = IDX(1), i2 = IDX(2), i3 = IDX(3), i4 = IDX(4), i5 = IDX(5), i6 = IDX(6),
                  i7 = IDX(7);
#undef IDX
    const __m512 b0 = _mm512_loadu_ps(r->b + m0);
    __m512 a00 = b0, a10 = b0, a20 = b0, a30 = b0;
    for (int64_t ky = 0; ky < r->kh; ky++) {
        const int64_t ih = ih0 + ky * r->dh;
        if (ih < 0 || ih >= r->h) continue;
        const XT *xrow = (const XT *)r->x + ih * r->wd * C;
        for (int64_t kx = 0; kx < r->kw; kx++) {
            const float *wt = r->w + (ky * r->kw + kx) * 8 * C + m0;
            const __m512 w00 = _mm512_loadu_ps(wt), w01 = _mm512_loadu_ps(wt + C), w02 = _mm512_loadu_ps(wt + 2 * C),
                         w03 = _mm512_loadu_ps(wt + 3 * C), w04 = _mm512_loadu_ps(wt + 4 * C),
                         w05 = _mm512_loadu_ps(wt + 5 * C), w06 = _mm512_loadu_ps(wt + 6 * C),
                         w07 = _mm512_loadu_ps(wt + 7 * C);
            const XT *xp0 = NULL, *xp1 = NULL, *xp2 = NULL, *xp3 = NULL;
            PIX(0) PIX(1) PIX(2) PIX(3) STEP8(0) STEP8(1) STEP8(2) STEP8(3)
        }
    }
    OUT(0, 0) OUT(1, 0) OUT(2, 0) OUT(3, 0)
}

/* ---- G = 8, 3 taps a row, stride and dilation 1 along the row (ResNeXt's second stage): eight
 * pixels by 16 channels, each input pixel's eight spread vectors made once for its (up to three)
 * output pixels, the weights read from L1 by the fmas (24 of them would not fit beside the
 * accumulators and indices). Still ~1.3x oneDNN's time at 28x28x256 (oneDNN keeps those by
 * timing); the general block wins the stride-2 one (320 against 624 us). ---------------------- */

#define FMA8(P, K)                                                                                                     \
    a##P = _mm512_fmadd_ps(s0, _mm512_loadu_ps(wt + (K * 8 + 0) * C), a##P);                                           \
    a##P = _mm512_fmadd_ps(s1, _mm512_loadu_ps(wt + (K * 8 + 1) * C), a##P);                                           \
    a##P = _mm512_fmadd_ps(s2, _mm512_loadu_ps(wt + (K * 8 + 2) * C), a##P);                                           \
    a##P = _mm512_fmadd_ps(s3, _mm512_loadu_ps(wt + (K * 8 + 3) * C), a##P);                                           \
    a##P = _mm512_fmadd_ps(s4, _mm512_loadu_ps(wt + (K * 8 + 4) * C), a##P);                                           \
    a##P = _mm512_fmadd_ps(s5, _mm512_loadu_ps(wt + (K * 8 + 5) * C), a##P);                                           \
    a##P = _mm512_fmadd_ps(s6, _mm512_loadu_ps(wt + (K * 8 + 6) * C), a##P);                                           \
    a##P = _mm512_fmadd_ps(s7, _mm512_loadu_ps(wt + (K * 8 + 7) * C), a##P);

/* As Q4 with the eight spread vectors of G = 8. */
#define Q8(Q, FMAS)                                                                                                    \
    if (iw0 + Q >= 0 && iw0 + Q < r->wd) {                                                                             \
        const __m512 v = LDX(xrow + (iw0 + Q) * C);                                                                    \
        const __m512 s0 = _mm512_permutexvar_ps(i0, v), s1 = _mm512_permutexvar_ps(i1, v),                            \
                     s2 = _mm512_permutexvar_ps(i2, v), s3 = _mm512_permutexvar_ps(i3, v),                            \
                     s4 = _mm512_permutexvar_ps(i4, v), s5 = _mm512_permutexvar_ps(i5, v),                            \
                     s6 = _mm512_permutexvar_ps(i6, v), s7 = _mm512_permutexvar_ps(i7, v);                            \
        FMAS                                                                                                           \
    }

static inline __attribute__((always_inline)) void GC_FN(block8_k3)(const struct mixrt_gconv_row *r, int64_t ox,
                                                                   int64_t m0) {
    const int64_t C = r->c, ih0 = r->oy * r->sh - r->pt, iw0 = ox - r->pl;
#define IDX(ci)                                                                                                        \
    _mm512_set_epi32(8 + ci, 8 + ci, 8 + ci, 8 + ci, 8 + ci, 8 + ci, 8 + ci, 8 + ci, ci, ci, ci, ci, ci, ci, ci, ci)
    const __m512i i0 = IDX(0), i1 = IDX(1), i2 = IDX(2), i3 = IDX(3), i4 = IDX(4), i5 = IDX(5), i6 = IDX(6),
                  i7 = IDX(7);
#undef IDX
    const __m512 b0 = _mm512_loadu_ps(r->b + m0);
    __m512 a0 = b0, a1 = b0, a2 = b0, a3 = b0, a4 = b0, a5 = b0, a6 = b0, a7 = b0;
    for (int64_t ky = 0; ky < r->kh; ky++) {
        const int64_t ih = ih0 + ky * r->dh;
        if (ih < 0 || ih >= r->h) continue;
        const XT *xrow = (const XT *)r->x + ih * r->wd * C + m0;
        const float *wt = r->w + ky * 3 * 8 * C + m0;
        Q8(0, FMA8(0, 0))
        Q8(1, FMA8(1, 0) FMA8(0, 1))
        Q8(2, FMA8(2, 0) FMA8(1, 1) FMA8(0, 2))
        Q8(3, FMA8(3, 0) FMA8(2, 1) FMA8(1, 2))
        Q8(4, FMA8(4, 0) FMA8(3, 1) FMA8(2, 2))
        Q8(5, FMA8(5, 0) FMA8(4, 1) FMA8(3, 2))
        Q8(6, FMA8(6, 0) FMA8(5, 1) FMA8(4, 2))
        Q8(7, FMA8(7, 0) FMA8(6, 1) FMA8(5, 2))
        Q8(8, FMA8(7, 1) FMA8(6, 2))
        Q8(9, FMA8(7, 2))
    }
#define OUT8(P)                                                                                                        \
    {                                                                                                                  \
        __m512 o = a##P;                                                                                               \
        if (r->z) o = _mm512_add_ps(o, LDX((const XT *)r->z + (ox + P) * C + m0));                                     \
        _mm512_storeu_ps(r->y + (ox + P) * C + m0, o);                                                                 \
    }
    OUT8(0) OUT8(1) OUT8(2) OUT8(3) OUT8(4) OUT8(5) OUT8(6) OUT8(7)
#undef OUT8
}

void GC_EXPORT(mixrt_gconv8_row_avx512)(const struct mixrt_gconv_row *r) {
    const int64_t C = r->c;
    int64_t ox = 0;
    if (r->kw == 3 && r->sw == 1 && r->dw == 1)
        for (; ox + 8 <= r->ow; ox += 8)
            for (int64_t m0 = 0; m0 < C; m0 += 16) GC_FN(block8_k3)(r, ox, m0);
    for (; ox + 4 <= r->ow; ox += 4)
        for (int64_t m0 = 0; m0 < C; m0 += 16) GC_FN(block8)(r, ox, 4, m0);
    for (; ox < r->ow; ox++)
        for (int64_t m0 = 0; m0 < C; m0 += 16) GC_FN(block8)(r, ox, 1, m0);
}

#undef PIX
#undef OUT
#undef SP4
#undef STEP4
#undef FMA4
#undef STEP8
#undef FMA8
#undef Q4
#undef Q8
