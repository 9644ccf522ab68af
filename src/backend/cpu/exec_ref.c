/* exec_ref.c - the CPU reference executor. Each value has a slot holding a tensor or a
 * sequence (owned, or borrowing an arena slice / a constant / an input: the tensor's
 * MIXRT_TENSOR_OWNS_* flags say which), a borrowed tensor (bound input), or nothing
 * (initializers and outer-scope values are read in place). Intermediates are released
 * after their last use, including implicit uses by subgraphs of If/Loop/Scan; a tensor
 * is never written after the node that made it, which is what makes views safe. */
#include <string.h>

#include "backend/cpu/exec_ref.h"

struct exec_slot {
    struct mixrt_tensor t;
    struct mixrt_seq seq;
    const struct mixrt_tensor *bound_t;
    const struct mixrt_seq *bound_s;
    bool is_seq, set;
    bool persist; /* t borrows memory that lives through the run (constant, input, or a view of one) */
};

struct mixrt_exec_env {
    mixrt_context_t ctx;
    const struct mixrt_graph *g;
    struct mixrt_exec_env *parent;
    struct exec_slot *slots;
    struct mixrt_exec_scratch *scratch; /* the engine's, or own */
    struct mixrt_exec_scratch own;
    const struct mixrt_exec_sub *subs; /* the run's bodies with own kernels (root options) */
    int n_subs;
    /* g's value names hashed (open addressing, -1 empty; built at a subgraph's first lookup of
     * an outer-scope name): a loop body reads outer values every iteration, and a linear scan
     * of a detector's thousands of names took a third of Mask R-CNN's mask-pasting Loop. */
    int *names;
    size_t names_cap;
};

static uint64_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* Index of the value named name in env's graph, or -1 (mixrt_graph_find_value's answer). */
static int env_find_value(struct mixrt_exec_env *env, const char *name) {
    const struct mixrt_graph *g = env->g;
    if (!env->names && g->n_values > 0) {
        size_t cap = 16;
        while (cap < 2 * (size_t)g->n_values) cap *= 2;
        if ((env->names = mixrt_alloc(env->ctx, cap * sizeof(int)))) {
            env->names_cap = cap;
            for (size_t i = 0; i < cap; i++) env->names[i] = -1;
            for (int v = 0; v < g->n_values; v++) { /* a later value of the same name wins, as in the scan */
                size_t i = (size_t)name_hash(g->values[v].name) & (cap - 1);
                while (env->names[i] >= 0 && strcmp(g->values[env->names[i]].name, g->values[v].name))
                    i = (i + 1) & (cap - 1);
                env->names[i] = v;
            }
        }
    }
    if (!env->names) return mixrt_graph_find_value(g, name);
    for (size_t i = (size_t)name_hash(name) & (env->names_cap - 1);; i = (i + 1) & (env->names_cap - 1)) {
        int v = env->names[i];
        if (v < 0 || !strcmp(g->values[v].name, name)) return v;
    }
}

void *mixrt_kernel_scratch(struct mixrt_kernel_ctx *k, size_t bytes, bool *owned) {
    struct mixrt_exec_env *env = k->env;
    while (env && env->parent) env = env->parent; /* subgraphs use their run's */
    struct mixrt_exec_scratch *sc = env ? env->scratch : k->scratch;
    mixrt_context_t ctx = env ? env->ctx : k->ctx; /* the scratch's owner's */
    *owned = !sc;
    if (*owned) return mixrt_alloc(k->ctx, bytes ? bytes : 1);
    if (sc->bytes < bytes) {
        mixrt_free(ctx, sc->p, sc->bytes);
        sc->bytes = 0;
        if (!(sc->p = mixrt_alloc(ctx, bytes))) return NULL;
        sc->bytes = bytes;
    }
    return sc->p;
}

/* Finds what value vi of env's graph currently holds. */
static void resolve(struct mixrt_exec_env *env, int vi, const struct mixrt_tensor **t, const struct mixrt_seq **s) {
    *t = NULL;
    *s = NULL;
    const struct mixrt_value *v = &env->g->values[vi];
    struct exec_slot *sl = &env->slots[vi];
    if (sl->set) {
        if (sl->bound_t) *t = sl->bound_t;
        else if (sl->bound_s) *s = sl->bound_s;
        else if (sl->is_seq) *s = &sl->seq;
        else *t = &sl->t;
        return;
    }
    if (v->init) {
        *t = v->init;
        return;
    }
    for (struct mixrt_exec_env *p = env->parent; p; p = p->parent) {
        int pi = env_find_value(p, v->name);
        if (pi >= 0) {
            resolve(p, pi, t, s);
            return;
        }
    }
}

mixrt_status mixrt_exec_env_bind(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_tensor *vals,
                                 struct mixrt_exec_env **out) {
    struct mixrt_exec_env *env = mixrt_calloc(ctx, 1, sizeof(*env));
    struct exec_slot *slots = env ? mixrt_calloc(ctx, (size_t)(g->n_values > 0 ? g->n_values : 1), sizeof(*slots)) : NULL;
    if (!slots) {
        mixrt_free(ctx, env, sizeof(*env));
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    env->ctx = ctx, env->g = g, env->slots = slots, env->scratch = &env->own;
    for (int v = 0; v < g->n_values; v++)
        if (vals[v].rank >= 0) {
            slots[v].set = slots[v].persist = true;
            slots[v].bound_t = &vals[v];
        }
    *out = env;
    return MIXRT_STATUS_OK;
}

void mixrt_exec_env_free(struct mixrt_exec_env *env) {
    if (!env) return;
    mixrt_context_t ctx = env->ctx;
    mixrt_free(ctx, env->slots, (size_t)(env->g->n_values > 0 ? env->g->n_values : 1) * sizeof(*env->slots));
    mixrt_free(ctx, env->own.p, env->own.bytes);
    mixrt_free(ctx, env->names, env->names_cap * sizeof(int));
    mixrt_free(ctx, env, sizeof(*env));
}

static void slot_release(mixrt_context_t ctx, struct exec_slot *sl) {
    if (sl->set && !sl->bound_t && !sl->bound_s) {
        if (sl->is_seq) mixrt_seq_release(ctx, &sl->seq);
        else mixrt_tensor_release(ctx, &sl->t);
    }
    memset(sl, 0, sizeof(*sl));
}

/* Marks in last_use[] (indexed by values of g) the names that subgraph sub, or graphs
 * nested in it, read from outside. */
static void mark_outer_uses(const struct mixrt_graph *g, const struct mixrt_graph *sub, int step, int *last_use) {
    for (int i = 0; i < sub->n_values; i++) {
        if (!(sub->values[i].flags & MIXRT_VALUE_OUTER)) continue;
        int vi = mixrt_graph_find_value(g, sub->values[i].name);
        if (vi >= 0 && last_use[vi] < step) last_use[vi] = step;
    }
    for (int n = 0; n < sub->n_nodes; n++)
        for (int a = 0; a < sub->nodes[n].n_attrs; a++) {
            const struct mixrt_attr *at = &sub->nodes[n].attrs[a];
            if (at->g) mark_outer_uses(g, at->g, step, last_use);
            for (size_t j = 0; at->graphs && j < at->n; j++) mark_outer_uses(g, at->graphs[j], step, last_use);
        }
}

void mixrt_exec_last_uses(const struct mixrt_graph *g, int *last_use) {
    for (int i = 0; i < g->n_values; i++) last_use[i] = -1;
    for (int s = 0; s < g->n_nodes; s++) {
        const struct mixrt_node *nd = &g->nodes[g->order[s]];
        for (int j = 0; j < nd->n_inputs; j++)
            if (nd->inputs[j] >= 0) last_use[nd->inputs[j]] = s;
        for (int a = 0; a < nd->n_attrs; a++) {
            const struct mixrt_attr *at = &nd->attrs[a];
            if (at->g) mark_outer_uses(g, at->g, s, last_use);
            for (size_t j = 0; at->graphs && j < at->n; j++) mark_outer_uses(g, at->graphs[j], s, last_use);
        }
    }
    for (int i = 0; i < g->n_outputs; i++) last_use[g->outputs[i]] = g->n_nodes;
}

/* Writes graph output t into the caller's tensor into (no copy when the producing kernel
 * already wrote there); out then borrows into's data. */
static mixrt_status out_into_store(mixrt_context_t ctx, const struct mixrt_graph *g, int i,
                                   const struct mixrt_tensor *t, struct mixrt_tensor *into, struct mixrt_tensor *out) {
    bool same = t->dtype == into->dtype && t->rank == into->rank;
    for (int d = 0; same && d < t->rank; d++) same = t->dims[d] == into->dims[d];
    if (!same || t->dtype == MIXRT_DTYPE_STRING || (t->nbytes && !into->data) || into->nbytes != t->nbytes) {
        char got[256], want[256];
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "output #%d '%s' is %s; the tensor given for it is %s%s",
                           i, g->values[g->outputs[i]].name, mixrt_tensor_desc(got, sizeof(got), t),
                           mixrt_tensor_desc(want, sizeof(want), into),
                           t->dtype == MIXRT_DTYPE_STRING ? " (string outputs cannot be written into)" : "");
    }
    if (t->nbytes && t->data != into->data) memmove(into->data, t->data, t->nbytes);
    memset(out, 0, sizeof(*out));
    out->dtype = into->dtype;
    out->rank = into->rank;
    memcpy(out->dims, into->dims, sizeof(out->dims));
    out->data = t->nbytes ? into->data : NULL;
    out->nbytes = t->nbytes;
    return MIXRT_STATUS_OK;
}

/* Runs view node nd (Reshape-like, output 0 = input 0's bytes with the output value's
 * static shape) without copying, when that is safe: input 0 is persistent, or a planned
 * arena slice the output shares, or an owned tensor dying here (ownership moves). *done
 * false: run the kernel instead. */
static void run_view(struct mixrt_exec_env *env, const struct mixrt_exec_memory *mem, const int *last_use, int s,
                     const struct mixrt_node *nd, bool *done) {
    const struct mixrt_graph *g = env->g;
    *done = false;
    int xi = nd->inputs[0], yi = nd->outputs[0];
    const struct mixrt_value *yv = &g->values[yi];
    const struct mixrt_tensor *x;
    const struct mixrt_seq *xs;
    resolve(env, xi, &x, &xs);
    if (!x || x->dtype != yv->dtype || yv->rank < 0 || x->dtype == MIXRT_DTYPE_STRING) return;
    size_t n;
    int64_t dims[MIXRT_MAX_RANK];
    for (int d = 0; d < yv->rank; d++) dims[d] = yv->dims[d].value;
    if (!mixrt_dims_numel(yv->rank, dims, &n) || !mixrt_mul_size(n, mixrt_dtype_size(yv->dtype), &n) ||
        n != x->nbytes)
        return;
    struct exec_slot *xsl = &env->slots[xi], *ysl = &env->slots[yi];
    bool xowned = xsl->set && !xsl->bound_t && !xsl->is_seq && (xsl->t.flags & MIXRT_TENSOR_OWNS_DATA);
    bool persist = !xsl->set || xsl->bound_t || xsl->persist; /* constant, outer value, bound input */
    bool shared_slice = mem->offset[xi] >= 0 && mem->offset[yi] == mem->offset[xi] && xsl->set && !xowned &&
                        x->data == mem->arena + mem->offset[xi];
    bool move = xowned && last_use[xi] == s && !(g->values[xi].flags & MIXRT_VALUE_GRAPH_OUTPUT) &&
                xsl->t.dtype != MIXRT_DTYPE_STRING;
    if (!persist && !shared_slice && !move) return;
    struct mixrt_tensor y = *x;
    y.flags = 0;
    y.rank = yv->rank;
    memset(y.dims, 0, sizeof(y.dims));
    memcpy(y.dims, dims, (size_t)yv->rank * sizeof(dims[0]));
    if (move) {
        y.flags = xsl->t.flags;
        xsl->t.flags = 0; /* x's slot now borrows until it is released after this node */
    }
    slot_release(env->ctx, ysl);
    ysl->set = true;
    ysl->t = y;
    ysl->persist = persist;
    *done = true;
}

/* Graph output index whose caller tensor value vi is written into, or -1. */
static int into_index(const struct mixrt_graph *g, const struct mixrt_exec_opts *opts, int vi) {
    if (!opts || !opts->out_into || !(g->values[vi].flags & MIXRT_VALUE_GRAPH_OUTPUT)) return -1;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == vi) return opts->out_into[i] ? i : -1;
    return -1;
}

/* True when graph output i's value is not also another graph output. */
static bool output_once(const struct mixrt_graph *g, int i) {
    for (int j = 0; j < g->n_outputs; j++)
        if (j != i && g->outputs[j] == g->outputs[i]) return false;
    return true;
}

static mixrt_status copy_out(mixrt_context_t ctx, const struct mixrt_tensor *t, const struct mixrt_seq *s,
                             struct mixrt_tensor *out, struct mixrt_seq *out_seq, bool *is_seq) {
    if (t) return mixrt_tensor_copy(ctx, out, t);
    if (!out_seq || !is_seq) return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "a graph output is a sequence");
    *is_seq = true;
    memset(out_seq, 0, sizeof(*out_seq));
    out_seq->elem_dtype = s->elem_dtype;
    for (size_t i = 0; i < s->n; i++) {
        mixrt_status status = mixrt_seq_push(ctx, out_seq, &s->items[i], false);
        if (status != MIXRT_STATUS_OK) {
            mixrt_seq_release(ctx, out_seq);
            return status;
        }
    }
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_exec_graph(mixrt_context_t ctx, const struct mixrt_graph *g, struct mixrt_exec_env *parent, int n_in,
                              const struct mixrt_tensor *const *in_t, const struct mixrt_seq *const *in_s,
                              struct mixrt_tensor *outs, struct mixrt_seq *out_seqs, bool *out_is_seq) {
    return mixrt_exec_graph_opts(ctx, g, parent, n_in, in_t, in_s, outs, out_seqs, out_is_seq, NULL);
}

mixrt_status mixrt_exec_graph_opts(mixrt_context_t ctx, const struct mixrt_graph *g, struct mixrt_exec_env *parent,
                                   int n_in, const struct mixrt_tensor *const *in_t,
                                   const struct mixrt_seq *const *in_s, struct mixrt_tensor *outs,
                                   struct mixrt_seq *out_seqs, bool *out_is_seq, const struct mixrt_exec_opts *opts) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_exec_env env = {ctx, g, parent, NULL, NULL, {NULL, 0}, NULL, 0, NULL, 0};
    env.scratch = opts && opts->scratch ? opts->scratch : &env.own;
    /* A body run (no options of its own) takes the kernels the engine chose for it, if any. */
    const struct mixrt_exec_sub *sub = NULL;
    if (opts) env.subs = opts->subs, env.n_subs = opts->n_subs;
    else if (parent) env.subs = parent->subs, env.n_subs = parent->n_subs;
    for (int i = 0; !opts && i < env.n_subs; i++)
        if (env.subs[i].g == g) sub = &env.subs[i];
    int nv = g->n_values > 0 ? g->n_values : 1;
    int *last_use = NULL;
    int max_in = 1, max_out = 1, n_done_outs = 0;
    const struct mixrt_tensor **k_in = NULL;
    const struct mixrt_seq **k_in_seq = NULL;
    struct mixrt_tensor *k_out = NULL;
    struct mixrt_seq *k_out_seq = NULL;
    bool *k_is_seq = NULL, *k_wanted = NULL;
    const struct mixrt_exec_memory *mem = opts && !parent ? opts->mem : NULL;

    for (int i = 0; i < g->n_outputs; i++) {
        memset(&outs[i], 0, sizeof(outs[i]));
        if (out_is_seq) out_is_seq[i] = false;
    }
    env.slots = mixrt_calloc(ctx, (size_t)nv, sizeof(*env.slots));
    last_use = mixrt_calloc(ctx, (size_t)nv, sizeof(int));
    if (!env.slots || !last_use) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].n_inputs > max_in) max_in = g->nodes[i].n_inputs;
        if (g->nodes[i].n_outputs > max_out) max_out = g->nodes[i].n_outputs;
    }
    k_in = mixrt_calloc(ctx, (size_t)max_in, sizeof(*k_in));
    k_in_seq = mixrt_calloc(ctx, (size_t)max_in, sizeof(*k_in_seq));
    k_out = mixrt_calloc(ctx, (size_t)max_out, sizeof(*k_out));
    k_out_seq = mixrt_calloc(ctx, (size_t)max_out, sizeof(*k_out_seq));
    k_is_seq = mixrt_calloc(ctx, (size_t)max_out, sizeof(bool));
    k_wanted = mixrt_calloc(ctx, (size_t)max_out, sizeof(bool));
    if (!k_in || !k_in_seq || !k_out || !k_out_seq || !k_is_seq || !k_wanted) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }

    mixrt_exec_last_uses(g, last_use);

    /* Bind inputs. */
    for (int i = 0; i < g->n_inputs; i++) {
        int vi = g->inputs[i];
        const struct mixrt_tensor *t = i < n_in && in_t ? in_t[i] : NULL;
        const struct mixrt_seq *sq = i < n_in && in_s ? in_s[i] : NULL;
        struct exec_slot *sl = &env.slots[vi];
        if (t || sq) {
            sl->set = true;
            sl->bound_t = t;
            sl->bound_s = sq;
        } else if (!g->values[vi].init && !(g->values[vi].flags & MIXRT_VALUE_OPTIONAL)) {
            status = mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "graph '%s' input '%s' was not given", g->name,
                                 g->values[vi].name);
            goto fail;
        }
    }

    for (int s = 0; s < g->n_nodes; s++) {
        const struct mixrt_node *nd = &g->nodes[g->order[s]];
        int ni = g->order[s];
        mixrt_kernel_fn fn = opts && opts->fns ? opts->fns[ni] : sub ? sub->fns[ni] : NULL;
        if (!fn) MIXRT_TRY(mixrt_ref_find(ctx, nd, &fn));
        for (int j = 0; j < nd->n_inputs; j++) {
            k_in[j] = NULL;
            k_in_seq[j] = NULL;
            if (nd->inputs[j] < 0) continue;
            resolve(&env, nd->inputs[j], &k_in[j], &k_in_seq[j]);
            if (!k_in[j] && !k_in_seq[j] && !(g->values[nd->inputs[j]].flags & MIXRT_VALUE_OPTIONAL)) {
                status = mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "cannot run %s node '%s': input #%d '%s' has no "
                                     "value (an optional value that is empty, or an undefined outer-scope name)",
                                     nd->op_type, nd->name, j, g->values[nd->inputs[j]].name);
                goto fail;
            }
        }
        unsigned nflags = mem ? mem->node_flags[ni] : 0;
        if (nflags & MIXRT_EXEC_NODE_VIEW) {
            bool done;
            run_view(&env, mem, last_use, s, nd, &done);
            if (done) {
                int yi = nd->outputs[0];
                if (opts->observe) opts->observe(opts->user, g, ni, 0, &env.slots[yi].t);
                goto released;
            }
        }
        for (int j = 0; j < nd->n_outputs; j++) {
            memset(&k_out[j], 0, sizeof(k_out[j]));
            memset(&k_out_seq[j], 0, sizeof(k_out_seq[j]));
            k_is_seq[j] = false;
            k_wanted[j] = nd->outputs[j] >= 0;
            /* Hand the kernel its planned buffer: a caller's output tensor, else an arena
             * slice. Not for a view node that fell back: its slice is its input's. */
            int vi = nd->outputs[j];
            if (vi < 0 || (nflags & MIXRT_EXEC_NODE_VIEW)) continue;
            unsigned pf = MIXRT_TENSOR_PREBOUND | ((nflags & MIXRT_EXEC_NODE_NO_ZERO) ? MIXRT_TENSOR_UNINIT : 0);
            int oi = into_index(g, opts, vi);
            if (oi >= 0 && opts->out_into[oi]->data && opts->out_into[oi]->nbytes) {
                k_out[j].data = opts->out_into[oi]->data;
                k_out[j].capacity = opts->out_into[oi]->nbytes;
                k_out[j].flags = pf;
            } else if (mem && mem->offset[vi] >= 0) {
                k_out[j].data = mem->arena + mem->offset[vi];
                k_out[j].capacity = mem->bytes[vi];
                k_out[j].flags = pf;
            }
        }
        struct mixrt_kernel_ctx k = {
            .ctx = ctx, .graph = g, .node = nd, .opset = nd->opset, .n_in = nd->n_inputs, .in = k_in,
            .in_seq = k_in_seq, .n_out = nd->n_outputs, .out = k_out, .out_seq = k_out_seq,
            .out_is_seq = k_is_seq, .out_wanted = k_wanted, .env = &env,
            .state = opts && opts->states ? opts->states[ni] : sub ? sub->states[ni] : NULL,
        };
        status = fn(&k);
        for (int j = 0; j < nd->n_outputs; j++) {
            int vi = nd->outputs[j];
            bool produced = k_is_seq[j] || k_out[j].dtype != MIXRT_DTYPE_UNDEFINED;
            if (status == MIXRT_STATUS_OK && vi >= 0 && !produced) {
                status = mixrt_error(ctx, MIXRT_STATUS_INTERNAL, "%s node '%s' did not produce output #%d '%s'",
                                     nd->op_type, nd->name, j, g->values[vi].name);
            }
            if (status != MIXRT_STATUS_OK || vi < 0 || !produced) {
                mixrt_tensor_release(ctx, &k_out[j]);
                mixrt_seq_release(ctx, &k_out_seq[j]);
                continue;
            }
            if (opts && opts->observe && !k_is_seq[j]) opts->observe(opts->user, g, ni, j, &k_out[j]);
            struct exec_slot *sl = &env.slots[vi];
            if (k_out[j].flags & MIXRT_TENSOR_PREBOUND) k_out[j].flags = 0; /* not produced through it */
            slot_release(ctx, sl);
            sl->set = true;
            sl->is_seq = k_is_seq[j];
            if (k_is_seq[j]) sl->seq = k_out_seq[j];
            else sl->t = k_out[j];
        }
        if (status != MIXRT_STATUS_OK) goto fail;
    released:
        for (int j = 0; j < nd->n_inputs; j++) {
            int vi = nd->inputs[j];
            if (vi >= 0 && last_use[vi] == s) slot_release(ctx, &env.slots[vi]);
        }
        /* Outputs nobody reads die at once. */
        for (int j = 0; j < nd->n_outputs; j++) {
            int vi = nd->outputs[j];
            if (vi >= 0 && last_use[vi] < s) slot_release(ctx, &env.slots[vi]);
        }
    }

    for (int i = 0; i < g->n_outputs; i++) {
        const struct mixrt_tensor *t;
        const struct mixrt_seq *sq;
        resolve(&env, g->outputs[i], &t, &sq);
        if (!t && !sq) {
            status = mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "graph '%s' output '%s' has no value", g->name,
                                 g->values[g->outputs[i]].name);
            goto fail;
        }
        struct mixrt_tensor *into = opts && opts->out_into ? opts->out_into[i] : NULL;
        struct exec_slot *sl = &env.slots[g->outputs[i]];
        if (into && !t) {
            status = mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "output #%d '%s' is a sequence; it cannot be written "
                                 "into a tensor", i, g->values[g->outputs[i]].name);
            goto fail;
        } else if (into) {
            MIXRT_TRY(out_into_store(ctx, g, i, t, into, &outs[i]));
        } else if (t == &sl->t && (sl->t.flags & MIXRT_TENSOR_OWNS_DATA) && output_once(g, i)) {
            /* The value's owned tensor becomes the output: no copy. */
            outs[i] = sl->t;
            sl->t.flags = 0;
        } else {
            MIXRT_TRY(copy_out(ctx, t, sq, &outs[i], out_seqs ? &out_seqs[i] : NULL,
                               out_is_seq ? &out_is_seq[i] : NULL));
        }
        n_done_outs = i + 1;
    }
fail:
    if (status != MIXRT_STATUS_OK) {
        for (int i = 0; i < n_done_outs; i++) {
            if (out_is_seq && out_is_seq[i]) mixrt_seq_release(ctx, &out_seqs[i]);
            else mixrt_tensor_release(ctx, &outs[i]);
            if (out_is_seq) out_is_seq[i] = false;
        }
    }
    if (env.slots)
        for (int i = 0; i < g->n_values; i++) slot_release(ctx, &env.slots[i]);
    mixrt_free(ctx, env.slots, (size_t)nv * sizeof(*env.slots));
    mixrt_free(ctx, env.own.p, env.own.bytes);
    mixrt_free(ctx, env.names, env.names_cap * sizeof(int));
    mixrt_free(ctx, last_use, (size_t)nv * sizeof(int));
    mixrt_free(ctx, k_in, (size_t)max_in * sizeof(*k_in));
    mixrt_free(ctx, k_in_seq, (size_t)max_in * sizeof(*k_in_seq));
    mixrt_free(ctx, k_out, (size_t)max_out * sizeof(*k_out));
    mixrt_free(ctx, k_out_seq, (size_t)max_out * sizeof(*k_out_seq));
    mixrt_free(ctx, k_is_seq, (size_t)max_out * sizeof(bool));
    mixrt_free(ctx, k_wanted, (size_t)max_out * sizeof(bool));
    return status;
}
