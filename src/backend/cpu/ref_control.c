/* ref_control.c - control flow: If, Loop and Scan run their body graphs with the
 * reference executor; bodies see the enclosing values through the executor's
 * environment chain. Loop/Scan outputs are stacked from per-iteration results. */
#include <string.h>

#include "backend/cpu/exec_ref.h"

static mixrt_status body_attr(struct mixrt_kernel_ctx *k, const char *name, const struct mixrt_graph **out) {
    const struct mixrt_attr *a = mixrt_node_attr(k->node, name);
    if (!a || a->type != MIXRT_ATTR_GRAPH || !a->g)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "graph attribute '%s' is missing", name);
    *out = a->g;
    return MIXRT_STATUS_OK;
}

/* Result slots of one body run. */
struct body_result {
    int n;
    struct mixrt_tensor *t;
    struct mixrt_seq *s;
    bool *is_seq;
};

static mixrt_status result_alloc(mixrt_context_t ctx, struct body_result *r, int n) {
    size_t m = (size_t)(n ? n : 1);
    r->n = n;
    r->t = mixrt_calloc(ctx, m, sizeof(*r->t));
    r->s = mixrt_calloc(ctx, m, sizeof(*r->s));
    r->is_seq = mixrt_calloc(ctx, m, sizeof(bool));
    return r->t && r->s && r->is_seq ? MIXRT_STATUS_OK : MIXRT_STATUS_OUT_OF_MEMORY;
}

static void result_clear(mixrt_context_t ctx, struct body_result *r) {
    for (int i = 0; r->t && i < r->n; i++) {
        if (r->is_seq[i]) mixrt_seq_release(ctx, &r->s[i]);
        else mixrt_tensor_release(ctx, &r->t[i]);
        r->is_seq[i] = false;
    }
}

static void result_free(mixrt_context_t ctx, struct body_result *r) {
    size_t m = (size_t)(r->n ? r->n : 1);
    if (r->t) result_clear(ctx, r);
    mixrt_free(ctx, r->t, m * sizeof(*r->t));
    mixrt_free(ctx, r->s, m * sizeof(*r->s));
    mixrt_free(ctx, r->is_seq, m * sizeof(bool));
    memset(r, 0, sizeof(*r));
}

/* Moves body result i into node output j. */
static void move_result(struct mixrt_kernel_ctx *k, struct body_result *r, int i, int j) {
    if (j >= k->n_out) return;
    if (r->is_seq[i]) {
        mixrt_seq_release(k->ctx, &k->out_seq[j]);
        k->out_seq[j] = r->s[i];
        k->out_is_seq[j] = true;
        memset(&r->s[i], 0, sizeof(r->s[i]));
        r->is_seq[i] = false;
    } else {
        mixrt_tensor_release(k->ctx, &k->out[j]);
        k->out[j] = r->t[i];
        memset(&r->t[i], 0, sizeof(r->t[i]));
    }
}

static bool scalar_true(const struct mixrt_tensor *t) {
    return t && mixrt_tensor_numel(t) >= 1 && mixrt_load_i64(t->data, t->dtype, 0) != 0;
}

static mixrt_status run_if(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *cond;
    const struct mixrt_graph *body = NULL;
    struct body_result r = {0};
    mixrt_status status = mixrt_kernel_input(k, 0, &cond);
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(cond) != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 'cond' must have one element, has %zu",
                                  mixrt_tensor_numel(cond));
    /* Both branches must exist whichever runs: a model missing one is invalid. */
    const struct mixrt_graph *then_g = NULL, *else_g = NULL;
    if ((status = body_attr(k, "then_branch", &then_g)) != MIXRT_STATUS_OK) return status;
    if ((status = body_attr(k, "else_branch", &else_g)) != MIXRT_STATUS_OK) return status;
    body = scalar_true(cond) ? then_g : else_g;
    if (body->n_outputs != k->n_out)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "branch '%s' has %d outputs, the node has %d",
                                  body->name, body->n_outputs, k->n_out);
    MIXRT_TRY(result_alloc(k->ctx, &r, body->n_outputs));
    MIXRT_TRY(mixrt_exec_graph(k->ctx, body, k->env, 0, NULL, NULL, r.t, r.s, r.is_seq));
    for (int i = 0; i < body->n_outputs; i++) move_result(k, &r, i, i);
fail:
    result_free(k->ctx, &r);
    return status;
}

/* Stacks n equally shaped tensors along a new axis `axis` into out (initialized). */
static mixrt_status stack(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *items, size_t n, int64_t axis,
                          const struct mixrt_value *decl, int oi) {
    mixrt_dtype dt = n ? items[0].dtype : (decl && decl->dtype ? decl->dtype : MIXRT_DTYPE_F32);
    int rank = n ? items[0].rank : (decl && decl->rank >= 0 ? decl->rank : 0);
    int64_t dims[MIXRT_MAX_RANK];
    if (rank + 1 > MIXRT_MAX_RANK)
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "scan output #%d would exceed rank %d", oi, MIXRT_MAX_RANK);
    for (size_t i = 1; i < n; i++) {
        bool same = items[i].dtype == dt && items[i].rank == rank;
        for (int d = 0; same && d < rank; d++) same = items[i].dims[d] == items[0].dims[d];
        if (!same)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "scan output #%d changes shape or dtype between "
                                      "iterations", oi);
    }
    if (axis < 0) axis += rank + 1;
    if (axis < 0 || axis > rank)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "scan output axis out of range for rank %d", rank + 1);
    int j = 0;
    for (int d = 0; d <= rank; d++) {
        if (d == axis) dims[d] = (int64_t)n;
        else {
            dims[d] = n ? items[0].dims[j] : (decl && decl->rank > j && decl->dims[j].value >= 0 ? decl->dims[j].value : 0);
            j++;
        }
    }
    struct mixrt_tensor *out;
    mixrt_status status = mixrt_kernel_output(k, oi, dt, rank + 1, dims, &out);
    if (status != MIXRT_STATUS_OK || n == 0) return status;
    size_t es = mixrt_dtype_size(dt), outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= (size_t)dims[d];
    for (int d = (int)axis + 1; d <= rank; d++) inner *= (size_t)dims[d];
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < outer; o++) {
            size_t dst = (o * n + i) * inner, src = o * inner;
            if (dt == MIXRT_DTYPE_STRING) {
                const struct mixrt_string *s = (const struct mixrt_string *)items[i].data + src;
                struct mixrt_string *d = (struct mixrt_string *)out->data + dst;
                for (size_t e = 0; e < inner; e++) {
                    d[e].ptr = mixrt_alloc(k->ctx, s[e].len + 1);
                    if (!d[e].ptr) return MIXRT_STATUS_OUT_OF_MEMORY;
                    memcpy(d[e].ptr, s[e].ptr, s[e].len);
                    d[e].ptr[s[e].len] = 0;
                    d[e].len = s[e].len;
                }
            } else if (inner) {
                memcpy((char *)out->data + dst * es, (const char *)items[i].data + src * es, inner * es);
            }
        }
    return MIXRT_STATUS_OK;
}

/* Loop-carried value i accumulated by appending: the body's output 1 + i is a Concat along
 * axis 0 whose first input is the carried value (body input 2 + i), which nothing else reads
 * (no other node, output or subgraph), and whose result nothing else reads - the form of a
 * list appended to in a loop (TorchScript's `res.append(x)`; torchvision pastes Mask R-CNN's
 * masks so). Run as is, each trip copies everything gathered so far; given an empty carried value
 * of the same trailing dims the Concat yields just the new rows, which the loop appends to a
 * buffer grown by doubling. appended_carry tells whether the form holds, with the Concat's axis
 * attribute (0, or -rank: checked at run time). */
static bool graph_attr_node(const struct mixrt_node *n) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == MIXRT_ATTR_GRAPH || n->attrs[a].type == MIXRT_ATTR_GRAPHS) return true;
    return false;
}

static bool appended_carry(const struct mixrt_graph *body, int i, int64_t *axis) {
    int vin = body->inputs[2 + i], vout = body->outputs[1 + i];
    const struct mixrt_node *cat = NULL;
    for (int o = 0; o < body->n_outputs; o++)
        if (body->outputs[o] == vin || (o != 1 + i && body->outputs[o] == vout)) return false;
    for (int n = 0; n < body->n_nodes; n++) {
        const struct mixrt_node *nd = &body->nodes[n];
        if (graph_attr_node(nd)) return false; /* a subgraph could read the value by name */
        for (int j = 0; j < nd->n_outputs; j++)
            if (nd->outputs[j] == vout) cat = nd;
        for (int j = 0; j < nd->n_inputs; j++) {
            if (nd->inputs[j] == vout) return false;
            if (nd->inputs[j] == vin && (j != 0 || strcmp(nd->op_type, "Concat") || nd->domain[0])) return false;
        }
    }
    if (!cat || strcmp(cat->op_type, "Concat") || cat->domain[0] || cat->inputs[0] != vin) return false;
    *axis = mixrt_node_attr_int(cat, "axis", 1);
    return true;
}

/* Appends x's rows to the accumulator acc (same dtype and trailing dims), doubling its buffer. */
static mixrt_status acc_append(struct mixrt_kernel_ctx *k, struct mixrt_tensor *acc, const struct mixrt_tensor *x) {
    bool same = x->dtype == acc->dtype && x->rank == acc->rank;
    for (int d = 1; same && d < x->rank; d++) same = x->dims[d] == acc->dims[d];
    if (!same)
        return mixrt_kernel_error(k, MIXRT_STATUS_INTERNAL, "an appended loop-carried value changed its dtype or "
                                  "trailing dims");
    size_t need = acc->nbytes + x->nbytes;
    if (need > acc->capacity || !(acc->flags & MIXRT_TENSOR_OWNS_DATA)) {
        size_t cap = acc->capacity * 2 > need ? acc->capacity * 2 : need;
        void *p = mixrt_alloc(k->ctx, cap);
        if (!p) return MIXRT_STATUS_OUT_OF_MEMORY;
        if (acc->nbytes) memcpy(p, acc->data, acc->nbytes);
        if (acc->flags & MIXRT_TENSOR_OWNS_DATA) mixrt_free(k->ctx, acc->data, acc->capacity);
        acc->data = p;
        acc->capacity = cap;
        acc->flags |= MIXRT_TENSOR_OWNS_DATA;
    }
    if (x->nbytes) memcpy((char *)acc->data + acc->nbytes, x->data, x->nbytes);
    acc->nbytes = need;
    acc->dims[0] += x->dims[0];
    return MIXRT_STATUS_OK;
}

static mixrt_status run_loop(struct mixrt_kernel_ctx *k) {
    mixrt_context_t ctx = k->ctx;
    const struct mixrt_graph *body = NULL;
    mixrt_status status = body_attr(k, "body", &body);
    if (status != MIXRT_STATUS_OK) return status;
    int n_carried = k->n_in - 2;
    if (n_carried < 0) n_carried = 0;
    int n_scan = body->n_outputs - 1 - n_carried;
    if (body->n_inputs != n_carried + 2 || n_scan < 0 || k->n_out != n_carried + n_scan)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "body has %d inputs and %d outputs, which does not fit "
                                  "%d loop-carried values and %d node outputs", body->n_inputs, body->n_outputs,
                                  n_carried, k->n_out);
    const struct mixrt_tensor *max_trip = mixrt_kernel_opt_input(k, 0), *cond0 = mixrt_kernel_opt_input(k, 1);
    int64_t trips = max_trip && mixrt_tensor_numel(max_trip) ? mixrt_load_i64(max_trip->data, max_trip->dtype, 0) : -1;
    bool cond = cond0 ? scalar_true(cond0) : true;

    struct body_result cur = {0}, next = {0};
    struct mixrt_tensor iter_t = {0}, cond_t = {0};
    const struct mixrt_tensor **bin = mixrt_calloc(ctx, (size_t)body->n_inputs, sizeof(*bin));
    const struct mixrt_seq **bseq = mixrt_calloc(ctx, (size_t)body->n_inputs, sizeof(*bseq));
    struct mixrt_seq *scans = mixrt_calloc(ctx, (size_t)(n_scan ? n_scan : 1), sizeof(*scans));
    /* appended carried values (appended_carry): acc[i] gathers the rows, empty[i] is fed instead */
    size_t nc = (size_t)(n_carried ? n_carried : 1);
    struct mixrt_tensor *acc = mixrt_calloc(ctx, nc, sizeof(*acc)), *empty = mixrt_calloc(ctx, nc, sizeof(*empty));
    bool *app = mixrt_calloc(ctx, nc, sizeof(*app));
    static uint8_t no_rows[16];
    if (!bin || !bseq || !scans || !acc || !empty || !app) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    MIXRT_TRY(result_alloc(ctx, &cur, body->n_outputs));
    MIXRT_TRY(result_alloc(ctx, &next, body->n_outputs));
    MIXRT_TRY(mixrt_tensor_init(ctx, &iter_t, MIXRT_DTYPE_I64, 0, NULL));
    MIXRT_TRY(mixrt_tensor_init(ctx, &cond_t, MIXRT_DTYPE_BOOL, 0, NULL));
    /* cur holds the loop-carried values at positions 1..n_carried (like body outputs). */
    for (int i = 0; i < n_carried; i++) {
        const struct mixrt_tensor *t = k->in[2 + i];
        const struct mixrt_seq *s = k->in_seq ? k->in_seq[2 + i] : NULL;
        if (t) MIXRT_TRY(mixrt_tensor_copy(ctx, &cur.t[1 + i], t));
        else if (s) {
            cur.is_seq[1 + i] = true;
            cur.s[1 + i].elem_dtype = s->elem_dtype;
            for (size_t j = 0; j < s->n; j++) MIXRT_TRY(mixrt_seq_push(ctx, &cur.s[1 + i], &s->items[j], false));
        } else {
            status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "loop-carried input #%d is missing", 2 + i);
            goto fail;
        }
    }
    for (int i = 0; i < n_carried; i++) {
        const struct mixrt_tensor *t = &cur.t[1 + i];
        int64_t axis = 0;
        if (cur.is_seq[1 + i] || t->dtype == MIXRT_DTYPE_STRING || t->rank < 1 || !appended_carry(body, i, &axis) ||
            (axis != 0 && axis != -t->rank))
            continue;
        app[i] = true;
        acc[i] = cur.t[1 + i];
        memset(&cur.t[1 + i], 0, sizeof(cur.t[1 + i]));
        empty[i] = acc[i];
        empty[i].dims[0] = 0;
        empty[i].data = no_rows;
        empty[i].nbytes = empty[i].capacity = 0;
        empty[i].flags = 0;
    }
    for (int64_t it = 0; (trips < 0 || it < trips) && cond; it++) {
        if (trips < 0 && !cond0) {
            status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "loop has neither a trip count nor a condition");
            goto fail;
        }
        *(int64_t *)iter_t.data = it;
        *(uint8_t *)cond_t.data = cond;
        bin[0] = &iter_t;
        bin[1] = &cond_t;
        bseq[0] = bseq[1] = NULL;
        for (int i = 0; i < n_carried; i++) {
            bin[2 + i] = app[i] ? &empty[i] : cur.is_seq[1 + i] ? NULL : &cur.t[1 + i];
            bseq[2 + i] = cur.is_seq[1 + i] ? &cur.s[1 + i] : NULL;
        }
        MIXRT_TRY(mixrt_exec_graph(ctx, body, k->env, body->n_inputs, bin, bseq, next.t, next.s, next.is_seq));
        if (next.is_seq[0] || mixrt_tensor_numel(&next.t[0]) < 1) {
            status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "body output #0 (cond) must be a bool scalar");
            goto fail;
        }
        cond = scalar_true(&next.t[0]);
        for (int i = 0; i < n_carried; i++)
            if (app[i]) {
                if (next.is_seq[1 + i]) {
                    status = mixrt_kernel_error(k, MIXRT_STATUS_INTERNAL, "an appended loop-carried value is a sequence");
                    goto fail;
                }
                MIXRT_TRY(acc_append(k, &acc[i], &next.t[1 + i]));
            }
        for (int i = 0; i < n_scan; i++) {
            int bi = 1 + n_carried + i;
            if (next.is_seq[bi]) {
                status = mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "scan output #%d is a sequence", i);
                goto fail;
            }
            MIXRT_TRY(mixrt_seq_push(ctx, &scans[i], &next.t[bi], true));
        }
        struct body_result tmp = cur;
        cur = next;
        next = tmp;
        result_clear(ctx, &next);
    }
    for (int i = 0; i < n_carried; i++) {
        if (app[i]) {
            mixrt_tensor_release(ctx, &cur.t[1 + i]);
            cur.t[1 + i] = acc[i];
            memset(&acc[i], 0, sizeof(acc[i]));
        }
        move_result(k, &cur, 1 + i, i);
    }
    for (int i = 0; i < n_scan; i++) {
        int bo = body->outputs[1 + n_carried + i];
        MIXRT_TRY(stack(k, scans[i].items, scans[i].n, 0, &body->values[bo], n_carried + i));
    }
fail:
    result_free(ctx, &cur);
    result_free(ctx, &next);
    mixrt_tensor_release(ctx, &iter_t);
    mixrt_tensor_release(ctx, &cond_t);
    for (int i = 0; scans && i < n_scan; i++) mixrt_seq_release(ctx, &scans[i]);
    mixrt_free(ctx, scans, (size_t)(n_scan ? n_scan : 1) * sizeof(*scans));
    for (int i = 0; acc && i < n_carried; i++) mixrt_tensor_release(ctx, &acc[i]);
    mixrt_free(ctx, acc, nc * sizeof(*acc));
    mixrt_free(ctx, empty, nc * sizeof(*empty));
    mixrt_free(ctx, app, nc * sizeof(*app));
    mixrt_free(ctx, bin, (size_t)body->n_inputs * sizeof(*bin));
    mixrt_free(ctx, bseq, (size_t)body->n_inputs * sizeof(*bseq));
    return status;
}

/* Copies slice `idx` along `axis` of t into *out (rank - 1). */
static mixrt_status take_slice(mixrt_context_t ctx, const struct mixrt_tensor *t, int axis, int64_t idx,
                               struct mixrt_tensor *out) {
    int64_t dims[MIXRT_MAX_RANK];
    int r = 0;
    for (int d = 0; d < t->rank; d++)
        if (d != axis) dims[r++] = t->dims[d];
    mixrt_status status = mixrt_tensor_init(ctx, out, t->dtype, r, dims);
    if (status != MIXRT_STATUS_OK) return status;
    size_t es = mixrt_dtype_size(t->dtype), outer = 1, inner = 1, n = (size_t)t->dims[axis];
    for (int d = 0; d < axis; d++) outer *= (size_t)t->dims[d];
    for (int d = axis + 1; d < t->rank; d++) inner *= (size_t)t->dims[d];
    for (size_t o = 0; o < outer; o++) {
        size_t src = (o * n + (size_t)idx) * inner, dst = o * inner;
        if (t->dtype == MIXRT_DTYPE_STRING) {
            const struct mixrt_string *s = (const struct mixrt_string *)t->data + src;
            struct mixrt_string *dd = (struct mixrt_string *)out->data + dst;
            for (size_t e = 0; e < inner; e++) {
                dd[e].ptr = mixrt_alloc(ctx, s[e].len + 1);
                if (!dd[e].ptr) return MIXRT_STATUS_OUT_OF_MEMORY;
                memcpy(dd[e].ptr, s[e].ptr, s[e].len);
                dd[e].ptr[s[e].len] = 0;
                dd[e].len = s[e].len;
            }
        } else if (inner) {
            memcpy((char *)out->data + dst * es, (const char *)t->data + src * es, inner * es);
        }
    }
    return MIXRT_STATUS_OK;
}

/* Scan (opset 9+ semantics) over states st[n_state] and scan inputs sc[n_scan_in];
 * final states and stacked scan outputs go to node outputs out_base.. of k. */
static mixrt_status scan_core(struct mixrt_kernel_ctx *k, const struct mixrt_graph *body, int n_state,
                              const struct mixrt_tensor *const *st, int n_scan_in,
                              const struct mixrt_tensor *const *sc, const int64_t *in_axes, const int64_t *in_dirs,
                              const int64_t *out_axes, const int64_t *out_dirs, struct mixrt_tensor *final_states,
                              struct mixrt_tensor *scan_outs) {
    mixrt_context_t ctx = k->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    int n_scan_out = body->n_outputs - n_state;
    int64_t len = -1;
    for (int i = 0; i < n_scan_in; i++) {
        int64_t ax = in_axes ? in_axes[i] : 0;
        if (ax < 0) ax += sc[i]->rank;
        if (ax < 0 || ax >= sc[i]->rank)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "scan input #%d axis out of range", i);
        if (len >= 0 && sc[i]->dims[ax] != len)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "scan inputs have different lengths (%lld and %lld)",
                                      (long long)len, (long long)sc[i]->dims[ax]);
        len = sc[i]->dims[ax];
    }
    if (len < 0) len = 0;
    struct body_result cur = {0}, next = {0};
    struct mixrt_tensor *slices = mixrt_calloc(ctx, (size_t)(n_scan_in ? n_scan_in : 1), sizeof(*slices));
    const struct mixrt_tensor **bin = mixrt_calloc(ctx, (size_t)(body->n_inputs ? body->n_inputs : 1), sizeof(*bin));
    struct mixrt_seq *outs = mixrt_calloc(ctx, (size_t)(n_scan_out ? n_scan_out : 1), sizeof(*outs));
    if (!slices || !bin || !outs) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    MIXRT_TRY(result_alloc(ctx, &cur, body->n_outputs));
    MIXRT_TRY(result_alloc(ctx, &next, body->n_outputs));
    for (int i = 0; i < n_state; i++) MIXRT_TRY(mixrt_tensor_copy(ctx, &cur.t[i], st[i]));
    for (int64_t it = 0; it < len; it++) {
        for (int i = 0; i < n_scan_in; i++) {
            int64_t ax = in_axes ? in_axes[i] : 0;
            if (ax < 0) ax += sc[i]->rank;
            int64_t idx = in_dirs && in_dirs[i] ? len - 1 - it : it;
            mixrt_tensor_release(ctx, &slices[i]);
            MIXRT_TRY(take_slice(ctx, sc[i], (int)ax, idx, &slices[i]));
        }
        for (int i = 0; i < n_state; i++) bin[i] = &cur.t[i];
        for (int i = 0; i < n_scan_in; i++) bin[n_state + i] = &slices[i];
        MIXRT_TRY(mixrt_exec_graph(ctx, body, k->env, body->n_inputs, bin, NULL, next.t, next.s, next.is_seq));
        for (int i = 0; i < n_scan_out; i++) MIXRT_TRY(mixrt_seq_push(ctx, &outs[i], &next.t[n_state + i], true));
        struct body_result tmp = cur;
        cur = next;
        next = tmp;
        result_clear(ctx, &next);
    }
    for (int i = 0; i < n_state; i++) {
        final_states[i] = cur.t[i];
        memset(&cur.t[i], 0, sizeof(cur.t[i]));
    }
    /* Stack through a temporary kernel output slot: reuse k's machinery via a shim. */
    for (int i = 0; i < n_scan_out; i++) {
        struct mixrt_seq *s = &outs[i];
        if (out_dirs && out_dirs[i])
            for (size_t a = 0, b = s->n ? s->n - 1 : 0; a < b; a++, b--) {
                struct mixrt_tensor tmp = s->items[a];
                s->items[a] = s->items[b];
                s->items[b] = tmp;
            }
        struct mixrt_kernel_ctx shim = *k;
        struct mixrt_tensor one = {0};
        shim.out = &one;
        shim.n_out = 1;
        status = stack(&shim, s->items, s->n, out_axes ? out_axes[i] : 0, &body->values[body->outputs[n_state + i]], 0);
        if (status != MIXRT_STATUS_OK) {
            mixrt_tensor_release(ctx, &one);
            goto fail;
        }
        scan_outs[i] = one;
    }
fail:
    result_free(ctx, &cur);
    result_free(ctx, &next);
    for (int i = 0; slices && i < n_scan_in; i++) mixrt_tensor_release(ctx, &slices[i]);
    for (int i = 0; outs && i < n_scan_out; i++) mixrt_seq_release(ctx, &outs[i]);
    mixrt_free(ctx, slices, (size_t)(n_scan_in ? n_scan_in : 1) * sizeof(*slices));
    mixrt_free(ctx, bin, (size_t)(body->n_inputs ? body->n_inputs : 1) * sizeof(*bin));
    mixrt_free(ctx, outs, (size_t)(n_scan_out ? n_scan_out : 1) * sizeof(*outs));
    return status;
}

static mixrt_status check_list(struct mixrt_kernel_ctx *k, const char *name, size_t got, int want) {
    if (got && got != (size_t)want)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute '%s' has %zu entries, expected %d", name, got,
                                  want);
    return MIXRT_STATUS_OK;
}

static mixrt_status run_scan(struct mixrt_kernel_ctx *k) {
    mixrt_context_t ctx = k->ctx;
    const struct mixrt_graph *body = NULL;
    mixrt_status status = body_attr(k, "body", &body);
    if (status != MIXRT_STATUS_OK) return status;
    int64_t n_scan_in = mixrt_node_attr_int(k->node, "num_scan_inputs", -1);
    bool v8 = k->opset < 9;
    int first = v8 ? 1 : 0; /* opset 8: input 0 is the optional sequence_lens */
    int n_state = k->n_in - first - (int)n_scan_in;
    if (n_scan_in < 0 || n_state < 0 || body->n_inputs != n_state + n_scan_in || body->n_outputs < n_state ||
        k->n_out != body->n_outputs)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "num_scan_inputs %lld does not fit %d inputs, a body "
                                  "with %d inputs and %d outputs, and %d node outputs", (long long)n_scan_in, k->n_in,
                                  body->n_inputs, body->n_outputs, k->n_out);
    int n_scan_out = body->n_outputs - n_state;
    size_t nia, nid, noa, nod;
    const int64_t *in_axes = mixrt_node_attr_ints(k->node, "scan_input_axes", &nia);
    const int64_t *in_dirs = mixrt_node_attr_ints(k->node, v8 ? "directions" : "scan_input_directions", &nid);
    const int64_t *out_axes = mixrt_node_attr_ints(k->node, "scan_output_axes", &noa);
    const int64_t *out_dirs = mixrt_node_attr_ints(k->node, "scan_output_directions", &nod);
    if ((status = check_list(k, "scan_input_axes", nia, (int)n_scan_in)) ||
        (status = check_list(k, "scan_input_directions", nid, (int)n_scan_in)) ||
        (status = check_list(k, "scan_output_axes", noa, n_scan_out)) ||
        (status = check_list(k, "scan_output_directions", nod, n_scan_out)))
        return status;
    if (v8 && mixrt_kernel_opt_input(k, 0))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "Scan-8 with sequence_lens is not supported");
    const struct mixrt_tensor **ins = mixrt_calloc(ctx, (size_t)(k->n_in ? k->n_in : 1), sizeof(*ins));
    struct mixrt_tensor *fs = mixrt_calloc(ctx, (size_t)(n_state ? n_state : 1), sizeof(*fs));
    struct mixrt_tensor *so = mixrt_calloc(ctx, (size_t)(n_scan_out ? n_scan_out : 1), sizeof(*so));
    struct mixrt_tensor *sl = mixrt_calloc(ctx, (size_t)(k->n_in ? k->n_in : 1), sizeof(*sl));
    if (!ins || !fs || !so || !sl) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int i = first; i < k->n_in; i++) MIXRT_TRY(mixrt_kernel_input(k, i, &ins[i]));
    if (!v8) {
        MIXRT_TRY(scan_core(k, body, n_state, ins, (int)n_scan_in, ins + n_state, in_axes, in_dirs, out_axes, out_dirs,
                            fs, so));
        for (int i = 0; i < n_state; i++) {
            k->out[i] = fs[i];
            memset(&fs[i], 0, sizeof(fs[i]));
        }
        for (int i = 0; i < n_scan_out; i++) {
            k->out[n_state + i] = so[i];
            memset(&so[i], 0, sizeof(so[i]));
        }
    } else {
        /* Opset 8: axis 0 of every input is the batch; run each batch entry separately
         * (scan axis 0 of the rest) and stack the results back along axis 0. */
        int64_t batch = ins[first]->rank > 0 ? ins[first]->dims[0] : 0;
        struct mixrt_seq *acc = mixrt_calloc(ctx, (size_t)k->n_out, sizeof(*acc));
        if (!acc) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        for (int64_t b = 0; b < batch && status == MIXRT_STATUS_OK; b++) {
            const struct mixrt_tensor *bi[2 * MIXRT_MAX_RANK + 64];
            int n = k->n_in - first;
            if (n > (int)(sizeof(bi) / sizeof(bi[0]))) {
                status = mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "too many Scan inputs");
                break;
            }
            for (int i = 0; i < n; i++) {
                const struct mixrt_tensor *t = ins[first + i];
                if (t->rank < 1 || t->dims[0] != batch) {
                    status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d lacks the batch axis of size %lld",
                                                first + i, (long long)batch);
                    break;
                }
                mixrt_tensor_release(ctx, &sl[i]);
                if ((status = take_slice(ctx, t, 0, b, &sl[i])) != MIXRT_STATUS_OK) break;
                bi[i] = &sl[i];
            }
            if (status != MIXRT_STATUS_OK) break;
            status = scan_core(k, body, n_state, bi, (int)n_scan_in, bi + n_state, NULL, in_dirs, NULL, NULL, fs, so);
            for (int i = 0; i < n_state && status == MIXRT_STATUS_OK; i++) status = mixrt_seq_push(ctx, &acc[i], &fs[i], true);
            for (int i = 0; i < n_scan_out && status == MIXRT_STATUS_OK; i++)
                status = mixrt_seq_push(ctx, &acc[n_state + i], &so[i], true);
            for (int i = 0; i < n_state; i++) mixrt_tensor_release(ctx, &fs[i]);
            for (int i = 0; i < n_scan_out; i++) mixrt_tensor_release(ctx, &so[i]);
        }
        for (int i = 0; i < k->n_out && status == MIXRT_STATUS_OK; i++)
            status = stack(k, acc[i].items, acc[i].n, 0, &body->values[body->outputs[i]], i);
        for (int i = 0; i < k->n_out; i++) mixrt_seq_release(ctx, &acc[i]);
        mixrt_free(ctx, acc, (size_t)k->n_out * sizeof(*acc));
    }
fail:
    for (int i = 0; fs && i < n_state; i++) mixrt_tensor_release(ctx, &fs[i]);
    for (int i = 0; so && i < n_scan_out; i++) mixrt_tensor_release(ctx, &so[i]);
    for (int i = 0; sl && i < k->n_in; i++) mixrt_tensor_release(ctx, &sl[i]);
    mixrt_free(ctx, ins, (size_t)(k->n_in ? k->n_in : 1) * sizeof(*ins));
    mixrt_free(ctx, fs, (size_t)(n_state ? n_state : 1) * sizeof(*fs));
    mixrt_free(ctx, so, (size_t)(n_scan_out ? n_scan_out : 1) * sizeof(*so));
    mixrt_free(ctx, sl, (size_t)(k->n_in ? k->n_in : 1) * sizeof(*sl));
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_control[] = {
    {"", "If", 1, 23, run_if},
    {"", "Loop", 1, 23, run_loop},
    {"", "Scan", 8, 23, run_scan},
    {NULL, NULL, 0, 0, NULL},
};
