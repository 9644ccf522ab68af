/* ref_seq.c - reference kernels: the sequence operators (SequenceEmpty/Construct/Insert/
 * Erase/At/Length, SplitToSequence, ConcatFromSequence). Invariant: an output sequence
 * never shares storage with an input (every element is a deep copy, STRING bytes
 * included), so the executor may free inputs in any order. */
#include <string.h>

#include "backend/cpu/ref.h"

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

/* Sequence input i, required. */
static mixrt_status seq_input(struct mixrt_kernel_ctx *k, int i, const struct mixrt_seq **out) {
    if (i < k->n_in && k->in_seq && k->in_seq[i]) {
        *out = k->in_seq[i];
        return MIXRT_STATUS_OK;
    }
    if (i < k->n_in && k->in[i])
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is a tensor, expected a sequence", i,
                                  in_name(k, i));
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required sequence input #%d is missing", i);
}

/* Reads an optional scalar (or 1-element) int32/int64 position input; *has false when absent. */
static mixrt_status read_position(struct mixrt_kernel_ctx *k, int i, bool *has, int64_t *pos) {
    const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
    *has = false;
    if (!t) {
        if (i < k->n_in && k->in_seq && k->in_seq[i])
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is a sequence, expected a tensor",
                                      i, in_name(k, i));
        return MIXRT_STATUS_OK;
    }
    char d[256];
    if ((t->dtype != MIXRT_DTYPE_I32 && t->dtype != MIXRT_DTYPE_I64) || mixrt_tensor_numel(t) != 1 || t->rank > 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s, expected an i32 or i64 scalar",
                                  i, in_name(k, i), mixrt_tensor_desc(d, sizeof(d), t));
    *pos = mixrt_load_i64(t->data, t->dtype, 0);
    *has = true;
    return MIXRT_STATUS_OK;
}

/* Copies n elements from src[soff..] to dst[doff..]; STRING elements are duplicated. */
static mixrt_status copy_elems(mixrt_context_t ctx, struct mixrt_tensor *dst, size_t doff,
                               const struct mixrt_tensor *src, size_t soff, size_t n) {
    if (n == 0) return MIXRT_STATUS_OK;
    if (src->dtype == MIXRT_DTYPE_STRING) {
        const struct mixrt_string *s = (const struct mixrt_string *)src->data + soff;
        struct mixrt_string *d = (struct mixrt_string *)dst->data + doff;
        for (size_t i = 0; i < n; i++) {
            d[i].ptr = mixrt_alloc(ctx, s[i].len + 1);
            if (!d[i].ptr) return MIXRT_STATUS_OUT_OF_MEMORY;
            if (s[i].len) memcpy(d[i].ptr, s[i].ptr, s[i].len);
            d[i].ptr[s[i].len] = 0;
            d[i].len = s[i].len;
        }
        return MIXRT_STATUS_OK;
    }
    size_t es = mixrt_dtype_size(src->dtype);
    memcpy((char *)dst->data + doff * es, (const char *)src->data + soff * es, n * es);
    return MIXRT_STATUS_OK;
}

static mixrt_status copy_seq(struct mixrt_kernel_ctx *k, struct mixrt_seq *dst, const struct mixrt_seq *src,
                             size_t from, size_t to) {
    mixrt_status status = MIXRT_STATUS_OK;
    for (size_t i = from; i < to && status == MIXRT_STATUS_OK; i++)
        status = mixrt_seq_push(k->ctx, dst, &src->items[i], false);
    return status;
}

static mixrt_status run_sequence_empty(struct mixrt_kernel_ctx *k) {
    int64_t dt = mixrt_node_attr_int(k->node, "dtype", MIXRT_DTYPE_F32);
    if (dt <= 0 || dt >= MIXRT_DTYPE_COUNT || !mixrt_dtype_is_supported((mixrt_dtype)dt))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "attribute 'dtype' is %lld (%s), not supported",
                                  (long long)dt, mixrt_dtype_name((mixrt_dtype)dt));
    struct mixrt_seq *seq;
    return mixrt_kernel_output_seq(k, 0, (mixrt_dtype)dt, &seq);
}

static mixrt_status run_sequence_construct(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *first = NULL;
    if (k->n_in < 1) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "needs at least one input");
    MIXRT_TRY(mixrt_kernel_input(k, 0, &first));
    for (int i = 1; i < k->n_in; i++) {
        const struct mixrt_tensor *t = NULL;
        MIXRT_TRY(mixrt_kernel_input(k, i, &t));
        MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, i));
    }
    struct mixrt_seq *seq;
    MIXRT_TRY(mixrt_kernel_output_seq(k, 0, first->dtype, &seq));
    for (int i = 0; i < k->n_in; i++) {
        status = mixrt_seq_push(k->ctx, seq, (struct mixrt_tensor *)k->in[i], false);
        if (status != MIXRT_STATUS_OK) return status;
    }
fail:
    return status;
}

static mixrt_status run_sequence_insert(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_seq *in = NULL;
    const struct mixrt_tensor *t = NULL;
    bool has = false;
    int64_t pos = 0;
    char d[256];
    MIXRT_TRY(seq_input(k, 0, &in));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &t));
    MIXRT_TRY(read_position(k, 2, &has, &pos));
    int64_t n = (int64_t)in->n;
    if (t->dtype != in->elem_dtype)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "input #1 '%s' is %s but the sequence '%s' holds %s tensors", in_name(k, 1),
                                  mixrt_tensor_desc(d, sizeof(d), t), in_name(k, 0), mixrt_dtype_name(in->elem_dtype));
    if (!has) pos = n;
    if (pos < -n || pos > n)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT,
                                  "input #2 '%s' position %lld is outside [-%lld, %lld] for a sequence of %lld",
                                  in_name(k, 2), (long long)pos, (long long)n, (long long)n, (long long)n);
    if (pos < 0) pos += n;
    struct mixrt_seq *out = NULL;
    MIXRT_TRY(mixrt_kernel_output_seq(k, 0, in->elem_dtype, &out));
    MIXRT_TRY(copy_seq(k, out, in, 0, (size_t)pos));
    MIXRT_TRY(mixrt_seq_push(k->ctx, out, (struct mixrt_tensor *)t, false));
    MIXRT_TRY(copy_seq(k, out, in, (size_t)pos, in->n));
fail:
    return status;
}

static mixrt_status run_sequence_erase(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_seq *in = NULL;
    bool has = false;
    int64_t pos = 0;
    MIXRT_TRY(seq_input(k, 0, &in));
    MIXRT_TRY(read_position(k, 1, &has, &pos));
    int64_t n = (int64_t)in->n;
    if (n == 0) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT, "input #0 '%s' is an empty sequence", in_name(k, 0));
    if (!has) pos = n - 1;
    if (pos < -n || pos >= n)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT,
                                  "input #1 '%s' position %lld is outside [-%lld, %lld] for a sequence of %lld",
                                  in_name(k, 1), (long long)pos, (long long)n, (long long)(n - 1), (long long)n);
    if (pos < 0) pos += n;
    struct mixrt_seq *out = NULL;
    MIXRT_TRY(mixrt_kernel_output_seq(k, 0, in->elem_dtype, &out));
    MIXRT_TRY(copy_seq(k, out, in, 0, (size_t)pos));
    MIXRT_TRY(copy_seq(k, out, in, (size_t)pos + 1, in->n));
fail:
    return status;
}

static mixrt_status run_sequence_at(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_seq *in = NULL;
    bool has = false;
    int64_t pos = 0;
    MIXRT_TRY(seq_input(k, 0, &in));
    MIXRT_TRY(read_position(k, 1, &has, &pos));
    if (!has) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required input #1 'position' is missing");
    int64_t n = (int64_t)in->n;
    if (pos < -n || pos >= n)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT,
                                  "input #1 '%s' position %lld is outside [-%lld, %lld) for a sequence of %lld",
                                  in_name(k, 1), (long long)pos, (long long)n, (long long)n, (long long)n);
    if (pos < 0) pos += n;
    const struct mixrt_tensor *src = &in->items[pos];
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, src->dtype, src->rank, src->dims, &out));
    MIXRT_TRY(copy_elems(k->ctx, out, 0, src, 0, mixrt_tensor_numel(src)));
fail:
    return status;
}

static mixrt_status run_sequence_length(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_seq *in = NULL;
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(seq_input(k, 0, &in));
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I64, 0, NULL, &out));
    ((int64_t *)out->data)[0] = (int64_t)in->n;
fail:
    return status;
}

/* Pushes the slice [start, start+len) along axis of x onto seq; drops the axis when
 * squeeze is set (len is then 1). */
static mixrt_status push_slice(mixrt_context_t ctx, struct mixrt_seq *seq, const struct mixrt_tensor *x, int axis,
                               int64_t start, int64_t len, bool squeeze) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor part;
    int64_t dims[MIXRT_MAX_RANK];
    int rank = 0;
    size_t outer = 1, inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis) outer *= (size_t)x->dims[i];
        if (i > axis) inner *= (size_t)x->dims[i];
        if (i == axis) {
            if (squeeze) continue;
            dims[rank++] = len;
        } else {
            dims[rank++] = x->dims[i];
        }
    }
    status = mixrt_tensor_init(ctx, &part, x->dtype, rank, dims);
    if (status != MIXRT_STATUS_OK) return status;
    size_t chunk = (size_t)len * inner, total = (size_t)x->dims[axis];
    for (size_t o = 0; o < outer && status == MIXRT_STATUS_OK; o++)
        status = copy_elems(ctx, &part, o * chunk, x, (o * total + (size_t)start) * inner, chunk);
    if (status == MIXRT_STATUS_OK) status = mixrt_seq_push(ctx, seq, &part, true);
    mixrt_tensor_release(ctx, &part);
    return status;
}

static mixrt_status run_split_to_sequence(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    int64_t *lens = NULL;
    size_t nparts = 0;
    char d[256];
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 0), keepdims = mixrt_node_attr_int(k->node, "keepdims", 1);
    if (x->rank == 0)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 '%s' is %s, a scalar cannot be split",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), x));
    if (!mixrt_norm_axis(axis, x->rank, &axis))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'axis' %lld is out of range for input #0 %s",
                                  (long long)axis, mixrt_tensor_desc(d, sizeof(d), x));
    int64_t dim = x->dims[axis];
    const struct mixrt_tensor *split = mixrt_kernel_opt_input(k, 1);
    bool squeeze = false;
    if (!split) {
        nparts = (size_t)dim;
        squeeze = keepdims == 0;
        lens = mixrt_calloc(k->ctx, nparts ? nparts : 1, sizeof(*lens));
        if (!lens) return MIXRT_STATUS_OUT_OF_MEMORY;
        for (size_t i = 0; i < nparts; i++) lens[i] = 1;
    } else {
        if (!mixrt_dtype_is_int(split->dtype) || split->rank > 1)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "input #1 '%s' is %s, expected an integer scalar or 1-D tensor", in_name(k, 1),
                                      mixrt_tensor_desc(d, sizeof(d), split));
        if (split->rank == 0) {
            int64_t s = mixrt_load_i64(split->data, split->dtype, 0);
            if (s <= 0)
                return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT, "input #1 '%s' split %lld is not positive",
                                          in_name(k, 1), (long long)s);
            nparts = (size_t)(dim / s + (dim % s != 0));
            lens = mixrt_calloc(k->ctx, nparts ? nparts : 1, sizeof(*lens));
            if (!lens) return MIXRT_STATUS_OUT_OF_MEMORY;
            for (size_t i = 0; i < nparts; i++) lens[i] = (int64_t)i + 1 < (int64_t)nparts ? s : dim - s * (int64_t)i;
        } else {
            nparts = mixrt_tensor_numel(split);
            lens = mixrt_calloc(k->ctx, nparts ? nparts : 1, sizeof(*lens));
            if (!lens) return MIXRT_STATUS_OUT_OF_MEMORY;
            int64_t sum = 0;
            for (size_t i = 0; i < nparts; i++) {
                lens[i] = mixrt_load_i64(split->data, split->dtype, i);
                MIXRT_CHECK(k->ctx, lens[i] >= 0 && lens[i] <= dim - sum, MIXRT_STATUS_INVALID_ARGUMENT,
                            "cannot run %s node '%s': input #1 '%s' split lengths do not sum to %lld (dim %lld of "
                            "input #0 %s)",
                            k->node->op_type, k->node->name, in_name(k, 1), (long long)dim, (long long)axis,
                            mixrt_tensor_desc(d, sizeof(d), x));
                sum += lens[i];
            }
            MIXRT_CHECK(k->ctx, sum == dim, MIXRT_STATUS_INVALID_ARGUMENT,
                        "cannot run %s node '%s': input #1 '%s' split lengths sum to %lld, expected %lld (dim %lld "
                        "of input #0 %s)",
                        k->node->op_type, k->node->name, in_name(k, 1), (long long)sum, (long long)dim,
                        (long long)axis, mixrt_tensor_desc(d, sizeof(d), x));
        }
    }
    struct mixrt_seq *out = NULL;
    MIXRT_TRY(mixrt_kernel_output_seq(k, 0, x->dtype, &out));
    int64_t start = 0;
    for (size_t i = 0; i < nparts; i++) {
        MIXRT_TRY(push_slice(k->ctx, out, x, (int)axis, start, lens[i], squeeze));
        start += lens[i];
    }
fail:
    mixrt_free(k->ctx, lens, (nparts ? nparts : 1) * sizeof(*lens));
    return status;
}

static mixrt_status run_concat_from_sequence(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_seq *in = NULL;
    char d[256], d0[256];
    MIXRT_TRY(seq_input(k, 0, &in));
    if (!mixrt_node_attr(k->node, "axis"))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required attribute 'axis' is missing");
    int64_t axis = mixrt_node_attr_int(k->node, "axis", 0), new_axis = mixrt_node_attr_int(k->node, "new_axis", 0);
    if (new_axis != 0 && new_axis != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'new_axis' is %lld, expected 0 or 1",
                                  (long long)new_axis);
    if (in->n == 0)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT, "input #0 '%s' is an empty sequence",
                                  in_name(k, 0));
    const struct mixrt_tensor *t0 = &in->items[0];
    int rank = t0->rank, out_rank = rank + (int)new_axis;
    if (out_rank == 0 || out_rank > MIXRT_MAX_RANK || !mixrt_norm_axis(axis, out_rank, &axis))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'axis' %lld is out of range for sequence elements %s (new_axis %lld)",
                                  (long long)axis, mixrt_tensor_desc(d, sizeof(d), t0), (long long)new_axis);
    /* Concatenated length along axis; the other dims must match element 0's. */
    int64_t total = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct mixrt_tensor *t = &in->items[i];
        bool ok = t->dtype == t0->dtype && t->rank == rank;
        for (int j = 0; ok && j < rank; j++)
            if (new_axis || j != axis) ok = t->dims[j] == t0->dims[j];
        if (!ok)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT,
                                      "sequence element %zu is %s but element 0 is %s (axis %lld, new_axis %lld)", i,
                                      mixrt_tensor_desc(d, sizeof(d), t), mixrt_tensor_desc(d0, sizeof(d0), t0),
                                      (long long)axis, (long long)new_axis);
        total += new_axis ? 1 : t->dims[axis];
    }
    int64_t dims[MIXRT_MAX_RANK];
    size_t outer = 1, inner = 1;
    for (int j = 0, s = 0; j < out_rank; j++) {
        if (j == axis) {
            dims[j] = total;
            if (!new_axis) s++;
            continue;
        }
        dims[j] = t0->dims[s++];
        if (j < axis) outer *= (size_t)dims[j];
        else inner *= (size_t)dims[j];
    }
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, t0->dtype, out_rank, dims, &out));
    if (mixrt_tensor_numel(out) == 0) goto fail;
    size_t row = (size_t)total * inner, off = 0; /* off: position along axis, in elements of inner */
    for (size_t i = 0; i < in->n; i++) {
        const struct mixrt_tensor *t = &in->items[i];
        size_t len = new_axis ? 1 : (size_t)t->dims[axis], chunk = len * inner;
        for (size_t o = 0; o < outer; o++) MIXRT_TRY(copy_elems(k->ctx, out, o * row + off, t, o * chunk, chunk));
        off += chunk;
    }
fail:
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_seq[] = {
    {"", "SequenceEmpty", 11, 23, run_sequence_empty},
    {"", "SequenceConstruct", 11, 23, run_sequence_construct},
    {"", "SequenceInsert", 11, 23, run_sequence_insert},
    {"", "SequenceErase", 11, 23, run_sequence_erase},
    {"", "SequenceAt", 11, 23, run_sequence_at},
    {"", "SequenceLength", 11, 23, run_sequence_length},
    {"", "SplitToSequence", 11, 23, run_split_to_sequence},
    {"", "ConcatFromSequence", 11, 23, run_concat_from_sequence},
    {NULL, NULL, 0, 0, NULL},
};
