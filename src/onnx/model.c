/* model.c - the public model object: loading (file or buffer), graph I/O description,
 * and runs through the reference executor with input validation (dtype, rank, fixed
 * dims, symbolic dims bound consistently across inputs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/exec_ref.h"
#include "mixrt/mixrt_onnx.h"
#include "onnx/import.h"
#include "onnx/model_impl.h"

struct mixrt_model {
    mixrt_context_t ctx;
    struct mixrt_graph *graph;
    char *base_dir;
    size_t base_dir_size;
};

/* Every node, in subgraphs too, must have a kernel: an unsupported operator is reported
 * when the model is loaded, not half way through a run. */
static mixrt_status check_kernels(mixrt_context_t ctx, const struct mixrt_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *n = &g->nodes[i];
        mixrt_kernel_fn fn;
        mixrt_status status = mixrt_ref_find(ctx, n, &fn);
        if (status != MIXRT_STATUS_OK) return status;
        for (int a = 0; a < n->n_attrs; a++) {
            const struct mixrt_attr *at = &n->attrs[a];
            if (at->g && (status = check_kernels(ctx, at->g)) != MIXRT_STATUS_OK) return status;
            for (size_t j = 0; at->graphs && j < at->n; j++)
                if (at->graphs[j] && (status = check_kernels(ctx, at->graphs[j])) != MIXRT_STATUS_OK) return status;
        }
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status model_from_bytes(mixrt_context_t ctx, const uint8_t *data, size_t size, const char *what,
                                     const char *base_dir, bool need_kernels, int *converted, bool mapped,
                                     mixrt_model_t *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_model *m = mixrt_calloc(ctx, 1, sizeof(*m));
    if (!m) return MIXRT_STATUS_OUT_OF_MEMORY;
    m->ctx = ctx;
    if (base_dir) {
        m->base_dir_size = strlen(base_dir) + 1;
        m->base_dir = mixrt_alloc(ctx, m->base_dir_size);
        if (!m->base_dir) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        memcpy(m->base_dir, base_dir, m->base_dir_size);
    }
    struct mixrt_external_policy ext = {.base_dir = m->base_dir, .unsupported_to_f32 = converted != NULL,
                                        .converted = converted, .data_mapped = mapped};
    MIXRT_TRY(mixrt_onnx_import(ctx, data, size, what, &ext, &m->graph));
    if (mapped && what) { /* weights may be read back from the file (engine.c, try_release) */
        char *rp = realpath(what, NULL);
        if (rp) m->graph->src_path = mixrt_arena_strdup(m->graph->arena, rp);
        free(rp);
    }
    if (need_kernels) MIXRT_TRY(check_kernels(ctx, m->graph));
    *out = m;
    return MIXRT_STATUS_OK;
fail:
    mixrt_model_destroy(m);
    return status;
}

mixrt_status mixrt_model_load(mixrt_context_t ctx, const char *path, mixrt_model_t *out) {
    return mixrt_model_load_opts(ctx, path, true, out);
}

const struct mixrt_graph *mixrt_model_graph(mixrt_model_t m) { return m->graph; }

mixrt_status mixrt_model_load_opts(mixrt_context_t ctx, const char *path, bool need_kernels, mixrt_model_t *out) {
    return mixrt_model_load_fallback(ctx, path, need_kernels, NULL, out);
}

mixrt_status mixrt_model_load_fallback(mixrt_context_t ctx, const char *path, bool need_kernels, int *converted,
                                       mixrt_model_t *out) {
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    if (!path || !out) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_model_load: NULL argument");
    uint8_t *data;
    size_t size;
    bool mapped;
    mixrt_status status = mixrt_map_file(ctx, path, &data, &size, &mapped);
    if (status != MIXRT_STATUS_OK) return status;
    /* The model's folder bounds where external data may come from. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof(dir), ".");
    else if (slash == path) snprintf(dir, sizeof(dir), "/");
    else snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    status = model_from_bytes(ctx, data, size, path, dir, need_kernels, converted, mapped, out);
    mixrt_release_file(ctx, data, size, mapped);
    return status;
}

mixrt_status mixrt_model_load_buffer(mixrt_context_t ctx, const void *data, size_t size, const char *base_dir,
                                     mixrt_model_t *out) {
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    if ((!data && size) || !out)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_model_load_buffer: NULL argument");
    return model_from_bytes(ctx, data, size, "<buffer>", base_dir, true, NULL, false, out);
}

void mixrt_model_destroy(mixrt_model_t m) {
    if (!m) return;
    mixrt_graph_destroy(m->graph);
    mixrt_free(m->ctx, m->base_dir, m->base_dir_size);
    mixrt_free(m->ctx, m, sizeof(*m));
}

size_t mixrt_model_input_count(mixrt_model_t m) { return (size_t)m->graph->n_inputs; }
size_t mixrt_model_output_count(mixrt_model_t m) { return (size_t)m->graph->n_outputs; }

static void value_info(const struct mixrt_value *v, struct mixrt_value_info *out) {
    memset(out, 0, sizeof(*out));
    out->name = v->name;
    out->dtype = v->dtype;
    out->rank = v->rank;
    for (int i = 0; i < v->rank && i < MIXRT_MAX_RANK; i++) {
        out->dims[i] = v->dims[i].value;
        out->dim_params[i] = v->dims[i].param;
    }
    out->has_initializer = v->init != NULL;
}

mixrt_status mixrt_model_get_input(mixrt_model_t m, size_t i, struct mixrt_value_info *out) {
    if (i >= (size_t)m->graph->n_inputs)
        return mixrt_error(m->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "input index %zu out of range (%d inputs)", i,
                           m->graph->n_inputs);
    value_info(&m->graph->values[m->graph->inputs[i]], out);
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_model_get_output(mixrt_model_t m, size_t i, struct mixrt_value_info *out) {
    if (i >= (size_t)m->graph->n_outputs)
        return mixrt_error(m->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "output index %zu out of range (%d outputs)", i,
                           m->graph->n_outputs);
    value_info(&m->graph->values[m->graph->outputs[i]], out);
    return MIXRT_STATUS_OK;
}

static void declared_desc(char *buf, size_t size, const struct mixrt_value *v) {
    size_t off = (size_t)snprintf(buf, size, "%s ", mixrt_dtype_name(v->dtype));
    if (v->rank < 0) {
        snprintf(buf + off, size - off, "[any shape]");
        return;
    }
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (int i = 0; i < v->rank && off < size; i++) {
        const char *sep = i ? "," : "";
        if (v->dims[i].value >= 0) off += (size_t)snprintf(buf + off, size - off, "%s%lld", sep, (long long)v->dims[i].value);
        else off += (size_t)snprintf(buf + off, size - off, "%s%s", sep, v->dims[i].param ? v->dims[i].param : "?");
    }
    if (off < size) snprintf(buf + off, size - off, "]");
}

/* Checks an input tensor against its declaration; binds symbolic dims in syms. */
struct sym_binding {
    const char *param;
    int64_t value;
    const char *by;
};

static mixrt_status check_input(mixrt_context_t ctx, const struct mixrt_value *v, const struct mixrt_tensor *t,
                                struct sym_binding *syms, int *n_syms, int max_syms) {
    char got[256], want[512];
    /* The two descriptions are written only for an error (snprintf on every run cost ~1 us an input). */
#define DESCRIBE() (mixrt_tensor_desc(got, sizeof(got), t), declared_desc(want, sizeof(want), v))
    if (v->flags & MIXRT_VALUE_SEQUENCE)
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "input '%s' is a sequence; only tensor inputs can be fed",
                           v->name);
    if (v->dtype != MIXRT_DTYPE_UNDEFINED && t->dtype != v->dtype) {
        DESCRIBE();
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "input '%s' is %s, the model expects %s", v->name, got,
                           want);
    }
    if (v->rank >= 0 && t->rank != v->rank) {
        DESCRIBE();
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "input '%s' is %s, the model expects %s (rank %d)",
                           v->name, got, want, v->rank);
    }
    for (int i = 0; v->rank >= 0 && i < v->rank; i++) {
        if (v->dims[i].value >= 0 && t->dims[i] != v->dims[i].value) {
            DESCRIBE();
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "input '%s' is %s, the model expects %s (dim %d)",
                               v->name, got, want, i);
        }
        if (v->dims[i].value < 0 && v->dims[i].param) {
            int j;
            for (j = 0; j < *n_syms; j++)
                if (!strcmp(syms[j].param, v->dims[i].param)) break;
            if (j < *n_syms) {
                if (syms[j].value != t->dims[i]) {
                    DESCRIBE();
                    return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "input '%s' is %s: dim %d is '%s' = %lld, "
                                       "but input '%s' bound '%s' = %lld", v->name, got, i, v->dims[i].param,
                                       (long long)t->dims[i], syms[j].by, syms[j].param, (long long)syms[j].value);
                }
            } else if (*n_syms < max_syms) {
                syms[*n_syms].param = v->dims[i].param;
                syms[*n_syms].value = t->dims[i];
                syms[*n_syms].by = v->name;
                (*n_syms)++;
            }
        }
    }
#undef DESCRIBE
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_model_run(mixrt_model_t m, size_t n_inputs, const char *const *names,
                             const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs) {
    return mixrt_model_run_opts(m, n_inputs, names, inputs, outputs, NULL);
}

struct mixrt_graph *mixrt_model_graph_mut(mixrt_model_t m) { return m->graph; }

mixrt_status mixrt_model_run_opts(mixrt_model_t m, size_t n_inputs, const char *const *names,
                                  const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs,
                                  const struct mixrt_exec_opts *opts) {
    mixrt_context_t ctx = m->ctx;
    const struct mixrt_graph *g = m->graph;
    mixrt_status status = MIXRT_STATUS_OK;
    size_t ni = (size_t)(g->n_inputs ? g->n_inputs : 1), no = (size_t)(g->n_outputs ? g->n_outputs : 1);
    const struct mixrt_tensor **bound = mixrt_calloc(ctx, ni, sizeof(*bound));
    struct mixrt_tensor *outs = mixrt_calloc(ctx, no, sizeof(*outs));
    struct mixrt_seq *oseq = mixrt_calloc(ctx, no, sizeof(*oseq));
    bool *ois = mixrt_calloc(ctx, no, sizeof(bool));
    struct sym_binding syms[64];
    int n_syms = 0, n_out_done = 0;
    if (!bound || !outs || !oseq || !ois) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    MIXRT_CHECK(ctx, n_inputs == 0 || (names && inputs), MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_model_run: NULL names "
                "or inputs");
    for (size_t i = 0; i < n_inputs; i++) {
        MIXRT_CHECK(ctx, names[i] && inputs[i], MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_model_run: input #%zu is NULL", i);
        int k;
        for (k = 0; k < g->n_inputs; k++)
            if (!strcmp(g->values[g->inputs[k]].name, names[i])) break;
        if (k == g->n_inputs) {
            char list[512] = "";
            size_t off = 0;
            for (int j = 0; j < g->n_inputs && off < sizeof(list); j++) {
                const struct mixrt_value *v = &g->values[g->inputs[j]];
                if (v->init) continue;
                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s'%s'", off ? ", " : "", v->name);
            }
            status = mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "'%s' is not an input of the model (its inputs: %s)",
                                 names[i], list[0] ? list : "none");
            goto fail;
        }
        MIXRT_CHECK(ctx, !bound[k], MIXRT_STATUS_INVALID_ARGUMENT, "input '%s' is given twice", names[i]);
        MIXRT_TRY(check_input(ctx, &g->values[g->inputs[k]], inputs[i], syms, &n_syms, 64));
        bound[k] = inputs[i];
    }
    for (int k = 0; k < g->n_inputs; k++) {
        const struct mixrt_value *v = &g->values[g->inputs[k]];
        if (bound[k] || v->init || (v->flags & MIXRT_VALUE_OPTIONAL)) continue;
        char want[512]; /* described only for the error: snprintf each run cost ~1 us */
        declared_desc(want, sizeof(want), v);
        status = mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "input '%s' (%s) was not given", v->name, want);
        goto fail;
    }
    MIXRT_TRY(mixrt_exec_graph_opts(ctx, g, NULL, g->n_inputs, bound, NULL, outs, oseq, ois, opts));
    for (int i = 0; i < g->n_outputs; i++) {
        const struct mixrt_value *v = &g->values[g->outputs[i]];
        if (!ois[i] && v->dtype != MIXRT_DTYPE_UNDEFINED && outs[i].dtype != v->dtype) {
            char got[256];
            status = mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "output '%s' is %s but the model declares it %s",
                                 v->name, mixrt_tensor_desc(got, sizeof(got), &outs[i]), mixrt_dtype_name(v->dtype));
            goto fail;
        }
        if (ois[i]) {
            status = mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "output '%s' is a sequence; mixrt_model_run returns "
                                 "tensors only", g->values[g->outputs[i]].name);
            goto fail;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        struct mixrt_tensor *t = mixrt_alloc(ctx, sizeof(*t));
        if (!t) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        *t = outs[i];
        memset(&outs[i], 0, sizeof(outs[i]));
        outputs[i] = t;
        n_out_done = i + 1;
    }
fail:
    if (status != MIXRT_STATUS_OK)
        for (int i = 0; i < n_out_done; i++) {
            mixrt_tensor_destroy(ctx, outputs[i]);
            outputs[i] = NULL;
        }
    if (outs)
        for (size_t i = 0; i < (size_t)g->n_outputs; i++) {
            if (ois && ois[i]) mixrt_seq_release(ctx, &oseq[i]);
            else mixrt_tensor_release(ctx, &outs[i]);
        }
    mixrt_free(ctx, bound, ni * sizeof(*bound));
    mixrt_free(ctx, outs, no * sizeof(*outs));
    mixrt_free(ctx, oseq, no * sizeof(*oseq));
    mixrt_free(ctx, ois, no * sizeof(bool));
    return status;
}

/* model_from_bytes with a full external-data policy: a plan's weights blob is borrowed
 * in place (ext->blob must outlive the model); ext's strings are copied where kept. */
mixrt_status mixrt_model_load_buffer_ext(mixrt_context_t ctx, const void *data, size_t size, const char *what,
                                         const struct mixrt_external_policy *ext, bool need_kernels,
                                         mixrt_model_t *out) {
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    if ((!data && size) || !out)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_model_load_buffer_ext: NULL argument");
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_model *m = mixrt_calloc(ctx, 1, sizeof(*m));
    if (!m) return MIXRT_STATUS_OUT_OF_MEMORY;
    m->ctx = ctx;
    struct mixrt_external_policy policy = {0};
    if (ext) policy = *ext;
    if (policy.base_dir) {
        m->base_dir_size = strlen(policy.base_dir) + 1;
        m->base_dir = mixrt_alloc(ctx, m->base_dir_size);
        if (!m->base_dir) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        memcpy(m->base_dir, policy.base_dir, m->base_dir_size);
        policy.base_dir = m->base_dir;
    }
    MIXRT_TRY(mixrt_onnx_import(ctx, data, size, what ? what : "<buffer>", &policy, &m->graph));
    if (need_kernels) MIXRT_TRY(check_kernels(ctx, m->graph));
    *out = m;
    return MIXRT_STATUS_OK;
fail:
    mixrt_model_destroy(m);
    return status;
}
