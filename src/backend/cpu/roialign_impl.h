/* roialign_impl.h - what roialign.c (driver, scalar twins) and roialign_avx512.c share: the
 * per-bin channel loops of RoiAlign over one channel block of the map in f32, channels-last
 * (block plane [H * W][cw]), the transposes in and out of that layout, and the test hooks. */
#ifndef MIXRT_BACKEND_CPU_ROIALIGN_IMPL_H
#define MIXRT_BACKEND_CPU_ROIALIGN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One sample's four taps: the reference's corners p1..p4 (offsets into a channel block's plane)
 * with weights w1..w4, in that order. A sample off the map: offsets 0, weights 0. */
struct mixrt_roi_tap {
    int32_t off[4];
    float w[4];
};

/* flags of the channel loops: acc starts empty (else it holds the bin's earlier samples), and
 * these are the bin's last samples (avg mode then divides by count). */
#define MIXRT_ROI_FIRST 1
#define MIXRT_ROI_LAST 2

/* avg, nb bins of ns samples each (bin j's taps from tp + j * ns, its results at acc + j * as):
 * acc[c] += sum over the bin's taps of w * img[off + c], c < C (C <= 64); with MIXRT_ROI_LAST,
 * acc[c] /= count after. */
void mixrt_roi_avg_scalar(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, int64_t C,
                          float *acc, int64_t as, int flags, float count);
/* max, the same bins: per sample, m = fmaxf over its 4 taps of w * img[off + c]; acc[c] =
 * fmaxf(acc[c], m) (the first sample of a bin sets it; a bin without samples is 0). */
void mixrt_roi_max_scalar(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, int64_t C,
                          float *acc, int64_t as, int flags);
/* dst[c * ds + j] = src[j * ss + c] for j < rows, c < cols. */
void mixrt_roi_transpose_scalar(const float *src, int64_t ss, int64_t rows, int64_t cols, float *dst, int64_t ds);
/* The AVX-512 twins: call only when mixrt_roi_has_avx512(). */
void mixrt_roi_avg_avx512(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, int64_t C,
                          float *acc, int64_t as, int flags, float count);
void mixrt_roi_max_avx512(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, int64_t C,
                          float *acc, int64_t as, int flags);
void mixrt_roi_transpose_avx512(const float *src, int64_t ss, int64_t rows, int64_t cols, float *dst, int64_t ds);
/* dst[i] = src[i], i < n, with streaming stores (the output is written once, not read here);
 * mixrt_roi_fence_avx512 orders them before what the thread does next. */
void mixrt_roi_stream_avx512(float *dst, const float *src, size_t n);
void mixrt_roi_fence_avx512(void);

/* AVX512F/BW/VL usable and not forced off (MIXRT_ROIALIGN_ISA=scalar, or the test hook). */
bool mixrt_roi_has_avx512(void);
/* Test hooks: the scalar twins from now on; rois split over threads from this much work
 * (samples x channels; 0: the built-in threshold, SIZE_MAX: never); taps cached for at most this
 * many samples at once (0: the built-in budgets; small values send rois and bins down the paths
 * for those too big to cache). Process-wide. */
void mixrt_roi_force_scalar(bool on);
void mixrt_roi_set_parallel_work(size_t work);
void mixrt_roi_set_tap_budget(int64_t samples);

#endif /* MIXRT_BACKEND_CPU_ROIALIGN_IMPL_H */
