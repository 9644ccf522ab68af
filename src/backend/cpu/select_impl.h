/* select_impl.h - the per-row scans of the ArgMax / ArgMin / TopK kernels (select.c): scalar
 * twins in select.c, AVX-512 in select_avx512.c. Semantics are the reference kernels'
 * (ref_reduce.c): ArgMax and ArgMin both pick a NaN when the row has one (like numpy); TopK
 * orders NaN above every number (largest takes it first, smallest last); ties go to the
 * lower index (ArgMax/ArgMin with select_last_index: the higher one). */
#ifndef MIXRT_BACKEND_CPU_SELECT_IMPL_H
#define MIXRT_BACKEND_CPU_SELECT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The index ArgMax (is_max) or ArgMin picks in x[0..len), len >= 1. */
typedef size_t (*mixrt_sel_arg_fn)(const float *x, size_t len, bool is_max, bool last);
/* TopK of x[0..len) (1 <= k <= len): the k best in order into vals / idx (the reference's
 * order: largest descending or smallest ascending, NaN first resp. last, ties by index). */
typedef void (*mixrt_sel_topk_fn)(const float *x, size_t len, size_t k, bool largest, float *vals, int64_t *idx);

size_t mixrt_sel_arg_scalar(const float *x, size_t len, bool is_max, bool last);
void mixrt_sel_topk_scalar(const float *x, size_t len, size_t k, bool largest, float *vals, int64_t *idx);
/* Call only on CPUs with AVX-512 F/BW/VL/DQ. */
size_t mixrt_sel_arg_avx512(const float *x, size_t len, bool is_max, bool last);
void mixrt_sel_topk_avx512(const float *x, size_t len, size_t k, bool largest, float *vals, int64_t *idx);

/* Tests: the scalar twins even where AVX-512 runs. */
void mixrt_select_force_scalar(bool scalar);

/* TopK of a large k (select.c): heap is scratch of k keys; vals / idx get the k best, in the
 * reference's order (1 <= k <= len). */
void mixrt_sel_topk_keys(const float *x, size_t len, size_t k, bool largest, uint64_t *heap, float *vals,
                         int64_t *idx);

/* Shared by both: v (index j) goes before w (index i) in the order of the selection. */
static inline bool mixrt_sel_before(float v, int64_t j, float w, int64_t i, bool largest) {
    bool vn = v != v, wn = w != w;
    if (vn || wn) return largest ? (vn && !wn) || (vn && wn && j < i) : (!vn && wn) || (vn && wn && j < i);
    if (v != w) return largest ? v > w : v < w;
    return j < i;
}

/* Inserts (v, j) into the best-so-far vals/idx[0..*n) (at most k, sorted), the k-th
 * dropping out when all k are held. */
static inline void mixrt_sel_insert(float *vals, int64_t *idx, size_t *n, size_t k, float v, int64_t j,
                                    bool largest) {
    size_t pos = *n < k ? (*n)++ : k - 1;
    while (pos > 0 && mixrt_sel_before(v, j, vals[pos - 1], idx[pos - 1], largest)) {
        vals[pos] = vals[pos - 1];
        idx[pos] = idx[pos - 1];
        pos--;
    }
    vals[pos] = v;
    idx[pos] = j;
}

#endif /* MIXRT_BACKEND_CPU_SELECT_IMPL_H */
