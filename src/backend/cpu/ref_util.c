/* ref_util.c - helpers shared by the reference kernels: named errors, output
 * allocation, input checks, broadcasting and sequences. */
#include <stdio.h>
#include <string.h>

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/kernels.h"

mixrt_status mixrt_kernel_error(struct mixrt_kernel_ctx *k, mixrt_status status, const char *fmt, ...) {
    char msg[MIXRT_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return mixrt_error(k->ctx, status, "cannot run %s node '%s': %s", k->node->op_type, k->node->name, msg);
}

/* Output i as a tensor of dtype and dims. When the executor pre-bound a buffer to it
 * (MIXRT_TENSOR_PREBOUND: an arena slice or a caller's output tensor) of exactly the
 * bytes asked for, the tensor borrows that buffer; otherwise it gets its own. Zeroed
 * unless the executor (a pre-bound buffer) or the caller (uninit) says every element will be
 * written. */
static mixrt_status kernel_output(struct mixrt_kernel_ctx *k, int i, mixrt_dtype dtype, int rank, const int64_t *dims,
                                  bool uninit, struct mixrt_tensor **out) {
    if (i < 0 || i >= k->n_out)
        return mixrt_kernel_error(k, MIXRT_STATUS_INTERNAL, "output #%d does not exist", i);
    struct mixrt_tensor pre = k->out[i];
    mixrt_tensor_release(k->ctx, &k->out[i]); /* a pre-bound buffer is borrowed: only forgotten */
    size_t n, nbytes;
    if ((pre.flags & MIXRT_TENSOR_PREBOUND) && pre.data && dtype != MIXRT_DTYPE_STRING && rank >= 0 &&
        rank <= MIXRT_MAX_RANK && mixrt_dims_numel(rank, dims, &n) && mixrt_mul_size(n, mixrt_dtype_size(dtype), &nbytes) &&
        nbytes == pre.capacity && nbytes > 0) {
        struct mixrt_tensor *t = &k->out[i];
        t->dtype = dtype;
        t->rank = rank;
        for (int d = 0; d < rank; d++) t->dims[d] = dims[d];
        t->data = pre.data;
        t->nbytes = nbytes;
        t->flags = 0;
        if (!uninit && !(pre.flags & MIXRT_TENSOR_UNINIT)) memset(t->data, 0, nbytes);
        if (out) *out = t;
        return MIXRT_STATUS_OK;
    }
    mixrt_status status = uninit ? mixrt_tensor_init_uninit(k->ctx, &k->out[i], dtype, rank, dims)
                                 : mixrt_tensor_init(k->ctx, &k->out[i], dtype, rank, dims);
    if (status != MIXRT_STATUS_OK) {
        mixrt_error_prefix(k->ctx, "cannot run %s node '%s': output #%d", k->node->op_type, k->node->name, i);
        return status;
    }
    if (out) *out = &k->out[i];
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_kernel_output(struct mixrt_kernel_ctx *k, int i, mixrt_dtype dtype, int rank,
                                 const int64_t *dims, struct mixrt_tensor **out) {
    return kernel_output(k, i, dtype, rank, dims, false, out);
}

mixrt_status mixrt_kernel_output_uninit(struct mixrt_kernel_ctx *k, int i, mixrt_dtype dtype, int rank,
                                        const int64_t *dims, struct mixrt_tensor **out) {
    return kernel_output(k, i, dtype, rank, dims, true, out);
}

mixrt_status mixrt_kernel_output_seq(struct mixrt_kernel_ctx *k, int i, mixrt_dtype elem, struct mixrt_seq **out) {
    if (i < 0 || i >= k->n_out || !k->out_seq)
        return mixrt_kernel_error(k, MIXRT_STATUS_INTERNAL, "output #%d does not exist", i);
    mixrt_seq_release(k->ctx, &k->out_seq[i]);
    k->out_seq[i].elem_dtype = elem;
    k->out_is_seq[i] = true;
    *out = &k->out_seq[i];
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_seq_push(mixrt_context_t ctx, struct mixrt_seq *seq, struct mixrt_tensor *t, bool take) {
    if (seq->n == seq->cap) {
        size_t cap = seq->cap ? seq->cap * 2 : 4;
        struct mixrt_tensor *items = mixrt_calloc(ctx, cap, sizeof(*items));
        if (!items) return MIXRT_STATUS_OUT_OF_MEMORY;
        if (seq->n) memcpy(items, seq->items, seq->n * sizeof(*items));
        mixrt_free(ctx, seq->items, seq->cap * sizeof(*items));
        seq->items = items;
        seq->cap = cap;
    }
    if (take) {
        seq->items[seq->n] = *t;
        memset(t, 0, sizeof(*t));
    } else {
        mixrt_status status = mixrt_tensor_copy(ctx, &seq->items[seq->n], t);
        if (status != MIXRT_STATUS_OK) return status;
    }
    seq->n++;
    return MIXRT_STATUS_OK;
}

void mixrt_seq_release(mixrt_context_t ctx, struct mixrt_seq *seq) {
    for (size_t i = 0; i < seq->n; i++) mixrt_tensor_release(ctx, &seq->items[i]);
    mixrt_free(ctx, seq->items, seq->cap * sizeof(*seq->items));
    memset(seq, 0, sizeof(*seq));
}

const struct mixrt_tensor *mixrt_kernel_opt_input(const struct mixrt_kernel_ctx *k, int i) {
    return i >= 0 && i < k->n_in ? k->in[i] : NULL;
}

mixrt_status mixrt_kernel_input(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor **out) {
    const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
    if (!t) {
        if (i < k->n_in && k->in_seq && k->in_seq[i])
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d is a sequence, expected a tensor", i);
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required input #%d is missing", i);
    }
    *out = t;
    return MIXRT_STATUS_OK;
}

static const char *input_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

mixrt_status mixrt_kernel_check_float(struct mixrt_kernel_ctx *k, int i) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_dtype_is_float(t->dtype)) return MIXRT_STATUS_OK;
    char d[256];
    return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #%d '%s' is %s, expected f32, f64, f16 or bf16",
                              i, input_name(k, i), mixrt_tensor_desc(d, sizeof(d), t));
}

mixrt_status mixrt_kernel_check_dtype(struct mixrt_kernel_ctx *k, int i, const mixrt_dtype *allowed) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    char list[256] = "", d[256];
    size_t off = 0;
    for (const mixrt_dtype *a = allowed; *a != MIXRT_DTYPE_UNDEFINED; a++) {
        if (*a == t->dtype) return MIXRT_STATUS_OK;
        if (off < sizeof(list))
            off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", off ? ", " : "", mixrt_dtype_name(*a));
    }
    return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #%d '%s' is %s, expected one of %s", i,
                              input_name(k, i), mixrt_tensor_desc(d, sizeof(d), t), list);
}

mixrt_status mixrt_kernel_check_same_dtype(struct mixrt_kernel_ctx *k, int a, int b) {
    const struct mixrt_tensor *ta = NULL, *tb = NULL;
    mixrt_status status = mixrt_kernel_input(k, a, &ta);
    if (status == MIXRT_STATUS_OK) status = mixrt_kernel_input(k, b, &tb);
    if (status != MIXRT_STATUS_OK) return status;
    if (ta->dtype == tb->dtype) return MIXRT_STATUS_OK;
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s but input #%d '%s' is %s", b,
                              input_name(k, b), mixrt_dtype_name(tb->dtype), a, input_name(k, a),
                              mixrt_dtype_name(ta->dtype));
}

mixrt_status mixrt_kernel_read_ints(struct mixrt_kernel_ctx *k, int i, int64_t *vals, size_t max, size_t *n) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if (!mixrt_dtype_is_int(t->dtype))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s, expected an integer tensor", i,
                                  input_name(k, i), mixrt_dtype_name(t->dtype));
    size_t cnt = mixrt_tensor_numel(t);
    if (cnt > max)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' has %zu elements, at most %zu allowed",
                                  i, input_name(k, i), cnt, max);
    for (size_t j = 0; j < cnt; j++) vals[j] = mixrt_load_i64(t->data, t->dtype, j);
    *n = cnt;
    return MIXRT_STATUS_OK;
}

bool mixrt_broadcast_shape(int ra, const int64_t *da, int rb, const int64_t *db, int *rout, int64_t *dout) {
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t a = i - (r - ra) >= 0 ? da[i - (r - ra)] : 1;
        int64_t b = i - (r - rb) >= 0 ? db[i - (r - rb)] : 1;
        if (a == b || b == 1) dout[i] = a;
        else if (a == 1) dout[i] = b;
        else return false;
    }
    *rout = r;
    return true;
}

void mixrt_broadcast_strides(int r, const int64_t *dims, int rout, const int64_t *dout, int64_t *strides) {
    int64_t s = 1;
    for (int i = rout - 1; i >= 0; i--) {
        int j = i - (rout - r);
        if (j < 0) {
            strides[i] = 0;
            continue;
        }
        strides[i] = (dims[j] == 1 && dout[i] != 1) ? 0 : s;
        /* Wrapping is harmless: a product that overflows belongs to a tensor with a zero
         * dim elsewhere (numel is checked), whose strides are never used to index. */
        s = (int64_t)((uint64_t)s * (uint64_t)dims[j]);
    }
}

bool mixrt_norm_axis(int64_t axis, int rank, int64_t *out) {
    if (axis < -(int64_t)rank || axis >= (int64_t)rank) return false;
    *out = axis < 0 ? axis + rank : axis;
    return true;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t mixrt_rng_next(struct mixrt_rng *g) {
    uint64_t *s = g->s, result = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double mixrt_rng_uniform(struct mixrt_rng *g) { return (double)(mixrt_rng_next(g) >> 11) * 0x1.0p-53; }

void mixrt_rng_seed_node(struct mixrt_rng *g, const struct mixrt_kernel_ctx *k) {
    uint64_t key;
    const struct mixrt_attr *seed = mixrt_node_attr(k->node, "seed");
    if (seed && seed->type == MIXRT_ATTR_FLOAT) {
        uint32_t bits;
        memcpy(&bits, &seed->f, sizeof(bits));
        key = bits;
    } else if (seed && seed->type == MIXRT_ATTR_INT) {
        key = (uint64_t)seed->i;
    } else {
        key = 0xCBF29CE484222325ull; /* FNV-1a 64 */
        for (const char *p = k->node->name; *p; p++) key = (key ^ (uint8_t)*p) * 0x100000001B3ull;
        key = (key ^ 0xFF) * 0x100000001B3ull;
        if (k->node->n_outputs > 0 && k->node->outputs[0] >= 0)
            for (const char *p = k->graph->values[k->node->outputs[0]].name; *p; p++)
                key = (key ^ (uint8_t)*p) * 0x100000001B3ull;
    }
    for (int i = 0; i < 4; i++) g->s[i] = splitmix64(&key);
}

mixrt_status mixrt_kernel_attr_ints_n(struct mixrt_kernel_ctx *k, const char *name, int n, int64_t dflt, int64_t min,
                                      int64_t max, int64_t *out) {
    size_t cnt = 0;
    const int64_t *v = mixrt_node_attr_ints(k->node, name, &cnt);
    if (!v) {
        for (int i = 0; i < n; i++) out[i] = dflt;
        return MIXRT_STATUS_OK;
    }
    if (cnt != (size_t)n)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute '%s' has %zu entries, expected %d", name, cnt,
                                  n);
    for (int i = 0; i < n; i++) {
        if (v[i] < min || v[i] > max)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute '%s'[%d] is %lld, expected %lld..%lld",
                                      name, i, (long long)v[i], (long long)min, (long long)max);
        out[i] = v[i];
    }
    return MIXRT_STATUS_OK;
}
