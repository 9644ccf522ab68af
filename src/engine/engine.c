/* engine.c - engines: build (import, passes, precision planning, kernel selection by
 * timed tactics), run, and the views tools use. An engine owns a model object holding
 * the planned graph; per node it keeps the chosen kernel and the state the kernel's
 * prepare made, released in destroy. */
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "backend/cpu/exec_ref.h"
#include "core/threads.h"
#include "engine/engine_cuda.h"
#include "engine/engine_internal.h"
#include "engine/memplan.h"
#include "engine/plan_file.h"
#include "engine/tactics.h"
#include "onnx/model_impl.h"
#include "passes/passes.h"
#include "precision/planner.h"

void mixrt_build_options_init(struct mixrt_build_options *o) {
    memset(o, 0, sizeof(*o));
    o->precisions = MIXRT_PRECISION_FP32;
    o->backend = "cpu";
    o->constraints = MIXRT_CONSTRAINTS_NONE;
    o->unsupported_dtype = MIXRT_UNSUPPORTED_DTYPE_ERROR;
}

mixrt_status mixrt_precisions_parse(mixrt_context_t ctx, const char *list, unsigned *out) {
    if (!list) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "precision list is NULL");
    unsigned bits = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 4 && !strncmp(p, "fp32", 4)) bits |= MIXRT_PRECISION_FP32;
        else if (len == 4 && !strncmp(p, "fp16", 4)) bits |= MIXRT_PRECISION_FP16;
        else if (len == 4 && !strncmp(p, "bf16", 4)) bits |= MIXRT_PRECISION_BF16;
        else
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "precision '%.*s' in '%s' is not one of fp32, "
                               "fp16, bf16", (int)len, p, list);
        p += len;
        if (*p == ',') p++;
    }
    if (!bits) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "precision list '%s' is empty", list);
    *out = bits | MIXRT_PRECISION_FP32;
    return MIXRT_STATUS_OK;
}

/* ---- option copies ------------------------------------------------------------------------ */

static char *dupstr(struct mixrt_engine *e, const char *s) {
    if (!s) return NULL;
    return mixrt_arena_strdup(e->arena, s);
}

static mixrt_status copy_options(struct mixrt_engine *e, const struct mixrt_build_options *o) {
    e->opts = *o;
    e->opts.backend = dupstr(e, o->backend ? o->backend : "cpu");
    e->opts.timing_cache = dupstr(e, o->timing_cache);
    if (!e->opts.backend || (o->timing_cache && !e->opts.timing_cache)) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (o->n_layer_precisions) {
        struct mixrt_layer_precision *lp = mixrt_arena_calloc(e->arena, o->n_layer_precisions, sizeof(*lp));
        if (!lp) return MIXRT_STATUS_OUT_OF_MEMORY;
        for (size_t i = 0; i < o->n_layer_precisions; i++) {
            lp[i] = o->layer_precisions[i];
            if (!(lp[i].glob = dupstr(e, o->layer_precisions[i].glob))) return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        e->opts.layer_precisions = lp;
    }
    if (o->n_shapes) {
        struct mixrt_input_shape *sh = mixrt_arena_calloc(e->arena, o->n_shapes, sizeof(*sh));
        if (!sh) return MIXRT_STATUS_OUT_OF_MEMORY;
        for (size_t i = 0; i < o->n_shapes; i++) {
            sh[i] = o->shapes[i];
            if (!(sh[i].name = dupstr(e, o->shapes[i].name))) return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        e->opts.shapes = sh;
    }
    return MIXRT_STATUS_OK;
}

/* ---- engine lifetime ----------------------------------------------------------------------- */

mixrt_status mixrt_engine_alloc(mixrt_context_t ctx, struct mixrt_engine **out) {
    struct mixrt_engine *e = mixrt_calloc(ctx, 1, sizeof(*e));
    if (!e) return MIXRT_STATUS_OUT_OF_MEMORY;
    e->ctx = ctx;
    mixrt_status status = mixrt_arena_create(ctx, &e->arena);
    if (status != MIXRT_STATUS_OK) {
        mixrt_free(ctx, e, sizeof(*e));
        return status;
    }
    mixrt_build_options_init(&e->opts);
    *out = e;
    return MIXRT_STATUS_OK;
}

static void bodies_release(struct mixrt_engine *e);

void mixrt_engine_destroy(mixrt_engine_t e) {
    if (!e) return;
    mixrt_engine_cuda_destroy(e->cuda);
    bodies_release(e);
    for (int i = 0; i < e->n_nodes; i++)
        if (e->kernels && e->kernels[i] && e->kernels[i]->release && e->states[i])
            e->kernels[i]->release(e->ctx, e->states[i]);
    size_t nn = (size_t)(e->n_nodes > 0 ? e->n_nodes : 1);
    mixrt_free(e->ctx, e->kernels, nn * sizeof(*e->kernels));
    mixrt_free(e->ctx, e->fns, nn * sizeof(*e->fns));
    mixrt_free(e->ctx, e->states, nn * sizeof(*e->states));
    mixrt_free(e->ctx, e->time_ns, nn * sizeof(*e->time_ns));
    mixrt_memplan_destroy(e->ctx, e->memplan);
    mixrt_free(e->ctx, e->scratch.p, e->scratch.bytes);
    mixrt_model_destroy(e->model);
    mixrt_engine_plan_release(e);
    mixrt_arena_destroy(e->arena);
    mixrt_free(e->ctx, e, sizeof(*e));
}

mixrt_status mixrt_engine_alloc_nodes(struct mixrt_engine *e) {
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    e->n_nodes = g->n_nodes;
    size_t nn = (size_t)(e->n_nodes > 0 ? e->n_nodes : 1);
    e->kernels = mixrt_calloc(e->ctx, nn, sizeof(*e->kernels));
    e->fns = mixrt_calloc(e->ctx, nn, sizeof(*e->fns));
    e->states = mixrt_calloc(e->ctx, nn, sizeof(*e->states));
    e->time_ns = mixrt_calloc(e->ctx, nn, sizeof(*e->time_ns));
    if (!e->kernels || !e->fns || !e->states || !e->time_ns) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < e->n_nodes; i++) e->time_ns[i] = -1;
    return MIXRT_STATUS_OK;
}

/* Plans the activation arena from the kernels chosen (they decide which outputs need no
 * zeroing). */
static mixrt_status plan_memory(struct mixrt_engine *e) {
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    mixrt_memplan_destroy(e->ctx, e->memplan);
    e->memplan = NULL;
    if (e->memplan_off || e->n_nodes == 0) return MIXRT_STATUS_OK;
    size_t nn = (size_t)e->n_nodes;
    bool *writes_all = mixrt_calloc(e->ctx, nn, sizeof(bool));
    if (!writes_all) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < e->n_nodes; i++) writes_all[i] = mixrt_memplan_kernel_writes_all(e->kernels[i]);
    mixrt_status status = mixrt_memplan_create(e->ctx, g, writes_all, &e->memplan);
    mixrt_free(e->ctx, writes_all, nn * sizeof(bool));
    if (status == MIXRT_STATUS_OK && e->opts.verbose)
        mixrt_log(e->ctx, MIXRT_LOG_NOTE, "activation arena: %zu bytes for %zu bytes of intermediates%s",
                  e->memplan->arena_bytes, e->memplan->sum_bytes,
                  e->memplan->all_static ? "" : " (some have dynamic sizes: allocated per run)");
    return status;
}

mixrt_status mixrt_engine_prepare_node(struct mixrt_engine *e, int i, const struct mixrt_cpu_kernel *k) {
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    e->kernels[i] = k;
    e->fns[i] = k->run;
    e->states[i] = NULL;
    if (k->prepare) {
        mixrt_status status = k->prepare(e->ctx, g, &g->nodes[i], &e->states[i]);
        if (status != MIXRT_STATUS_OK) {
            mixrt_error_prefix(e->ctx, "preparing kernel %s for %s node '%s'", k->name, g->nodes[i].op_type,
                               g->nodes[i].name);
            return status;
        }
    }
    /* Every engine (build, plan load, reference) prepares its nodes in index order: the
     * last one completes it, and its activation memory can be planned. */
    if (i == e->n_nodes - 1) {
        const char *env = getenv("MIXRT_MEMPLAN");
        if (env && !strcmp(env, "off")) e->memplan_off = true;
        return plan_memory(e);
    }
    return MIXRT_STATUS_OK;
}

const struct mixrt_memplan *mixrt_engine_memplan(mixrt_engine_t e) { return e ? e->memplan : NULL; }

mixrt_status mixrt_engine_memplan_enable(mixrt_engine_t e, bool on) {
    if (!e) return MIXRT_STATUS_INVALID_ARGUMENT;
    e->memplan_off = !on;
    return plan_memory(e);
}

/* ---- build ---------------------------------------------------------------------------------- */

static mixrt_status apply_shapes(struct mixrt_graph *g, const struct mixrt_build_options *o) {
    for (size_t i = 0; i < o->n_shapes; i++) {
        const struct mixrt_input_shape *s = &o->shapes[i];
        int k;
        for (k = 0; k < g->n_inputs; k++)
            if (!strcmp(g->values[g->inputs[k]].name, s->name)) break;
        if (k == g->n_inputs)
            return mixrt_error(g->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "--shape '%s': the model has no input of that "
                               "name", s->name);
        struct mixrt_value *v = &g->values[g->inputs[k]];
        if (v->rank >= 0 && v->rank != s->rank)
            return mixrt_error(g->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "--shape '%s' has rank %d, the model declares "
                               "rank %d", s->name, s->rank, v->rank);
        for (int d = 0; d < s->rank && v->rank >= 0; d++)
            if (v->dims[d].value >= 0 && v->dims[d].value != s->dims[d])
                return mixrt_error(g->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "--shape '%s': dim %d is %lld, the model "
                                   "fixes it to %lld", s->name, d, (long long)s->dims[d],
                                   (long long)v->dims[d].value);
        v->rank = s->rank;
        for (int d = 0; d < s->rank; d++) {
            v->dims[d].value = s->dims[d];
            v->dims[d].param = NULL;
        }
    }
    return MIXRT_STATUS_OK;
}

/* Drops the data of constants nothing reads any more (weights replaced by converted
 * copies), so plans do not carry them. */
static void drop_unused_constants(struct mixrt_graph *g) {
    for (int vi = 0; vi < g->n_values; vi++) {
        struct mixrt_value *v = &g->values[vi];
        if (!v->init || (v->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT))) continue;
        bool used = false;
        for (int n = 0; n < g->n_nodes && !used; n++)
            for (int j = 0; j < g->nodes[n].n_inputs; j++) used |= g->nodes[n].inputs[j] == vi;
        if (used) continue;
        /* Subgraphs may read it by name. */
        for (int n = 0; n < g->n_nodes && !used; n++)
            for (int a = 0; a < g->nodes[n].n_attrs; a++)
                if (g->nodes[n].attrs[a].g || g->nodes[n].attrs[a].graphs) used = true;
        if (used) continue;
        mixrt_tensor_release(g->ctx, v->init);
        v->init = NULL;
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void make_build_id(struct mixrt_engine *e) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t h = 1469598103934665603ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)e;
    for (int i = 0; i < 4; i++) h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
    snprintf(e->build_id, sizeof(e->build_id), "%016llx", (unsigned long long)h);
}

/* ---- constants dropped after packing -------------------------------------------------------
 * A kernel that packs a constant weight into a library layout (kernels.h's packing hooks)
 * holds a second copy of it; for a model of large weights that doubles the built engine's
 * memory (GPT-2 f32: 653 MB of weights, ~1 GB resident). Once the last node reading a
 * weight has its kernel prepared, the graph's copy is dropped when every reader holds it
 * packed and unpacks it back to the same bytes (checked, byte for byte, before dropping).
 * Only for engines whose input shapes are all fixed, on the CPU, and only weights whose every
 * reader has all its input shapes known at build time and which no subgraph reads (a Loop or If
 * body names outer values): such a reader's kernel never repacks or hands its node to the
 * reference kernel at run time, and those paths fail with a named error rather than read a
 * dropped weight. Detectors (data-dependent shapes after NonZero, Loops and Ifs) keep the
 * weights of their dynamic tail only. A plan save brings the weights back first.
 * MIXRT_RELEASE_WEIGHTS=off keeps them. */

static bool released_value(const struct mixrt_value *v) {
    return v->init && !v->init->data && v->init->nbytes && !(v->init->flags & MIXRT_TENSOR_OWNS_DATA);
}

/* The packing hooks of reader node j of value v when it reads v only as input 1 and holds
 * it packed; NULL otherwise. */
static const struct mixrt_cpu_kernel_packing *packed_reader(const struct mixrt_engine *e, int j, int v) {
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    const struct mixrt_node *n = &g->nodes[j];
    for (int q = 0; q < n->n_inputs; q++)
        if (n->inputs[q] == v && q != 1) return NULL;
    const struct mixrt_cpu_kernel_packing *pk = e->kernels[j] ? mixrt_cpu_kernel_packing_find(e->kernels[j]->name) : NULL;
    struct mixrt_cpu_packed p;
    return pk && pk->unpack && e->states[j] && pk->get(e->states[j], &p) ? pk : NULL;
}

static bool reads(const struct mixrt_node *n, int v) {
    for (int q = 0; q < n->n_inputs; q++)
        if (n->inputs[q] == v) return true;
    return false;
}

/* ---- constants read back from the model file ----
 * A weight whose packed copy does not unpack to its bytes (oneDNN's Winograd weights are the
 * 3x3 kernels transformed, 4x their size) was kept whole beside it. When the bytes are those of
 * the model file at the range the importer recorded (checked here, in 1 MiB pieces), the graph's
 * copy is dropped and read back from the file for a plan save; its checksum (the plan file's
 * CRC-64), kept, tells a file changed in between (a named error then). FCN-ResNet50's head
 * conv: 37.7 MB. */

/* Reads n bytes at off of the model file into dst (dst NULL: compares with cmp instead).
 * False on any failure or difference. */
static bool file_range(const char *path, uint64_t off, size_t n, void *dst, const void *cmp) {
    enum { PIECE = 1 << 20 };
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) return false;
    uint8_t *buf = dst ? NULL : malloc(PIECE);
    bool ok = dst || buf;
    for (size_t done = 0; ok && done < n;) {
        size_t want = n - done < PIECE ? n - done : PIECE;
        uint8_t *to = dst ? (uint8_t *)dst + done : buf;
        ssize_t got = pread(fd, to, want, (off_t)(off + done));
        if (got <= 0) {
            ok = false;
            break;
        }
        if (cmp && memcmp(to, (const uint8_t *)cmp + done, (size_t)got)) ok = false;
        done += (size_t)got;
    }
    free(buf);
    close(fd);
    return ok;
}

/* Every input of node n has a known rank and known dims (so its kernel was built for what
 * the runs give it). */
static bool static_inputs(const struct mixrt_graph *g, const struct mixrt_node *n) {
    for (int q = 0; q < n->n_inputs; q++) {
        if (n->inputs[q] < 0) continue;
        const struct mixrt_value *v = &g->values[n->inputs[q]];
        if (v->rank < 0 || (v->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL))) return false;
        for (int d = 0; d < v->rank; d++)
            if (v->dims[d].value < 0) return false;
    }
    return true;
}

static mixrt_status try_release(struct mixrt_engine *e, int v) {
    struct mixrt_graph *g = mixrt_model_graph_mut(e->model);
    struct mixrt_value *val = &g->values[v];
    struct mixrt_tensor *t = val->init;
    if (!t || !t->data || t->nbytes < ((size_t)16 << 10) || !(t->flags & MIXRT_TENSOR_OWNS_DATA) ||
        (t->flags & MIXRT_TENSOR_OWNS_MAPPING) || (val->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT)))
        return MIXRT_STATUS_OK;
    int readers = 0;
    for (int j = 0; j < g->n_nodes; j++) {
        if (!reads(&g->nodes[j], v)) continue;
        if (!packed_reader(e, j, v) || !static_inputs(g, &g->nodes[j])) return MIXRT_STATUS_OK;
        readers++;
    }
    if (!readers) return MIXRT_STATUS_OK;
    /* Each reader's check in slices where it has one (a whole unpack beside the graph's copy
     * and the packed one would be a third copy: AlexNet's 151 MB fc6 weight set its peak). */
    uint8_t *tmp = NULL;
    bool same = true;
    for (int j = 0; j < g->n_nodes && same; j++) {
        if (!reads(&g->nodes[j], v)) continue;
        const struct mixrt_cpu_kernel_packing *pk = packed_reader(e, j, v);
        int r = pk->same ? pk->same(e->ctx, e->states[j], t->data, t->nbytes) : -1;
        if (r < 0) {
            if (!tmp && !(tmp = mixrt_alloc(e->ctx, t->nbytes))) return MIXRT_STATUS_OK; /* keeping it is correct */
            r = pk->unpack(e->ctx, e->states[j], tmp, t->nbytes) && !memcmp(tmp, t->data, t->nbytes);
        }
        same = r == 1;
    }
    mixrt_free(e->ctx, tmp, tmp ? t->nbytes : 0);
    /* MIXRT_RELEASE_FROM_FILE=always (tests): the file path also where the packed copy
     * would do. */
    const char *fenv = getenv("MIXRT_RELEASE_FROM_FILE");
    bool from_file = (!same || (fenv && !strcmp(fenv, "always"))) && val->src_len == t->nbytes &&
                     file_range(g->src_path, val->src_off, t->nbytes, NULL, t->data);
    if (!same && !from_file) {
        mixrt_log(e->ctx, MIXRT_LOG_VERBOSE, "constant '%s' kept: its packed copy does not unpack to the same bytes",
                  val->name);
        return MIXRT_STATUS_OK;
    }
    if (from_file) {
        if (!e->file_hash && !(e->file_hash = mixrt_arena_calloc(e->arena, (size_t)g->n_values, sizeof(uint64_t))))
            return MIXRT_STATUS_OK; /* keeping it is correct */
        e->file_hash[v] = mixrt_plan_checksum(t->data, t->nbytes) | 1; /* never 0 */
    }
    mixrt_free(e->ctx, t->data, t->capacity);
    t->data = NULL, t->capacity = 0, t->flags &= ~(unsigned)MIXRT_TENSOR_OWNS_DATA;
    e->n_released++, e->released_bytes += t->nbytes;
    return MIXRT_STATUS_OK;
}

static bool fixed_inputs(const struct mixrt_graph *g) {
    for (int k = 0; k < g->n_inputs; k++) {
        const struct mixrt_value *v = &g->values[g->inputs[k]];
        if (v->init) continue; /* an overridable initializer: not a run-time input here */
        if (v->rank < 0 || (v->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL))) return false;
        for (int d = 0; d < v->rank; d++)
            if (v->dims[d].value < 0) return false;
    }
    return true;
}

int mixrt_engine_released(mixrt_engine_t e, size_t *bytes) {
    if (bytes) *bytes = e ? e->released_bytes : 0;
    return e ? e->n_released : 0;
}

mixrt_status mixrt_engine_weights_restore(struct mixrt_engine *e) {
    struct mixrt_graph *g = mixrt_model_graph_mut(e->model);
    for (int v = 0; v < g->n_values && e->n_released; v++) {
        struct mixrt_value *val = &g->values[v];
        if (!released_value(val)) continue;
        struct mixrt_tensor *t = val->init;
        void *p = mixrt_alloc(e->ctx, t->nbytes);
        if (!p) return mixrt_error(e->ctx, MIXRT_STATUS_OUT_OF_MEMORY, "restoring constant '%s' (%zu bytes)", val->name,
                                   t->nbytes);
        if (e->file_hash && e->file_hash[v]) {
            if (!file_range(g->src_path, val->src_off, t->nbytes, p, NULL) ||
                (mixrt_plan_checksum(p, t->nbytes) | 1) != e->file_hash[v]) {
                mixrt_free(e->ctx, p, t->nbytes);
                return mixrt_error(e->ctx, MIXRT_STATUS_IO_ERROR, "cannot read constant '%s' back from '%s': the model "
                                   "file changed or went away since the engine was built (MIXRT_RELEASE_WEIGHTS=off "
                                   "keeps constants in memory)", val->name, g->src_path);
            }
            e->file_hash[v] = 0;
            t->data = p, t->capacity = t->nbytes, t->flags |= MIXRT_TENSOR_OWNS_DATA;
            e->n_released--, e->released_bytes -= t->nbytes;
            continue;
        }
        bool ok = false;
        for (int j = 0; j < g->n_nodes && !ok; j++) {
            const struct mixrt_cpu_kernel_packing *pk = reads(&g->nodes[j], v) ? packed_reader(e, j, v) : NULL;
            ok = pk && pk->unpack(e->ctx, e->states[j], p, t->nbytes);
        }
        if (!ok) {
            mixrt_free(e->ctx, p, t->nbytes);
            return mixrt_error(e->ctx, MIXRT_STATUS_INTERNAL, "cannot restore constant '%s' from its packed copy",
                               val->name);
        }
        t->data = p, t->capacity = t->nbytes, t->flags |= MIXRT_TENSOR_OWNS_DATA;
        e->n_released--, e->released_bytes -= t->nbytes;
    }
    return MIXRT_STATUS_OK;
}

/* ---- subgraph bodies ------------------------------------------------------------------------ */

/* The kernel families a body node may take: no build-time state, every run checked against the
 * tensors it gets (the reference otherwise), so an untimed choice on partly typed values is safe. */
static bool body_family(const struct mixrt_cpu_kernel *k) {
    static const char *const ok[] = {"dm_", "elt_", "sel_", "nn_reduce_", "nn_softmax", "nn_log_softmax",
                                     "rz_linear", "rz_taps"};
    if (k->prepare || !k->name) return false;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strncmp(k->name, ok[i], strlen(ok[i]))) return true;
    return false;
}

/* What the enclosing graphs know of outer name `name` (the nearest typed one), or NULL. */
static const struct mixrt_value *outer_value(const struct mixrt_graph *b, const char *name) {
    for (const struct mixrt_graph *p = b->parent; p; p = p->parent) {
        int v = mixrt_graph_find_value(p, name);
        if (v >= 0 && p->values[v].dtype != MIXRT_DTYPE_UNDEFINED) return &p->values[v];
    }
    return NULL;
}

/* Gives body b of node n (in g) the types its run will see where the model left them out: outer
 * values as the enclosing graph has them (they do not change while the body runs), a Loop's
 * iteration count and condition, the dtypes of loop-carried and scanned inputs (not their
 * shapes: a carried value may grow from trip to trip). */
static void body_types(const struct mixrt_graph *g, const struct mixrt_node *n, struct mixrt_graph *b) {
    for (int i = 0; i < b->n_values; i++) {
        struct mixrt_value *v = &b->values[i];
        if (!(v->flags & MIXRT_VALUE_OUTER) || (v->flags & MIXRT_VALUE_SEQUENCE) || v->dtype != MIXRT_DTYPE_UNDEFINED)
            continue;
        const struct mixrt_value *o = outer_value(b, v->name);
        if (!o || (o->flags & MIXRT_VALUE_SEQUENCE)) continue;
        v->dtype = o->dtype;
        v->rank = o->rank;
        for (int d = 0; d < o->rank; d++) v->dims[d] = o->dims[d];
    }
    bool loop = !strcmp(n->op_type, "Loop"), scan = !strcmp(n->op_type, "Scan") && n->opset >= 9;
    if (n->domain[0] || (!loop && !scan)) return;
    for (int i = 0; i < b->n_inputs; i++) {
        struct mixrt_value *v = &b->values[b->inputs[i]];
        if (v->dtype != MIXRT_DTYPE_UNDEFINED || (v->flags & MIXRT_VALUE_SEQUENCE)) continue;
        if (loop && i < 2) {
            v->dtype = i == 0 ? MIXRT_DTYPE_I64 : MIXRT_DTYPE_BOOL;
            if (v->rank < 0) v->rank = 0;
            continue;
        }
        /* Loop: body input 2 + k is node input 2 + k; Scan (9+): body input i is node input i */
        if (i < n->n_inputs && n->inputs[i] >= 0 && !(g->values[n->inputs[i]].flags & MIXRT_VALUE_SEQUENCE))
            v->dtype = g->values[n->inputs[i]].dtype;
    }
}

static mixrt_status body_add(struct mixrt_engine *e, const struct mixrt_graph *b, int *n_fast, int *n_all) {
    if (e->n_subs == e->cap_subs) {
        int cap = e->cap_subs ? 2 * e->cap_subs : 8;
        struct mixrt_exec_sub *s = mixrt_calloc(e->ctx, (size_t)cap, sizeof(*s));
        const struct mixrt_cpu_kernel ***k = mixrt_calloc(e->ctx, (size_t)cap, sizeof(*k));
        if (!s || !k) {
            mixrt_free(e->ctx, s, s ? (size_t)cap * sizeof(*s) : 0);
            mixrt_free(e->ctx, k, k ? (size_t)cap * sizeof(*k) : 0);
            return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        if (e->n_subs) {
            memcpy(s, e->subs, (size_t)e->n_subs * sizeof(*s));
            memcpy(k, e->body_kernels, (size_t)e->n_subs * sizeof(*k));
        }
        mixrt_free(e->ctx, e->subs, (size_t)e->cap_subs * sizeof(*s));
        mixrt_free(e->ctx, e->body_kernels, (size_t)e->cap_subs * sizeof(*k));
        e->subs = s, e->body_kernels = k, e->cap_subs = cap;
    }
    size_t nn = (size_t)(b->n_nodes > 0 ? b->n_nodes : 1);
    mixrt_kernel_fn *fns = mixrt_calloc(e->ctx, nn, sizeof(*fns));
    void **states = mixrt_calloc(e->ctx, nn, sizeof(*states));
    const struct mixrt_cpu_kernel **kern = mixrt_calloc(e->ctx, nn, sizeof(*kern));
    if (!fns || !states || !kern) {
        mixrt_free(e->ctx, fns, fns ? nn * sizeof(*fns) : 0);
        mixrt_free(e->ctx, states, states ? nn * sizeof(*states) : 0);
        mixrt_free(e->ctx, kern, kern ? nn * sizeof(*kern) : 0);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    e->subs[e->n_subs] = (struct mixrt_exec_sub){b, fns, states};
    e->body_kernels[e->n_subs++] = kern;
    for (int i = 0; i < b->n_nodes; i++) {
        size_t nc;
        char why[160] = "";
        const struct mixrt_cpu_kernel *const *c = mixrt_cpu_kernels_for(&b->nodes[i], &nc);
        for (size_t j = 0; j + 1 < nc; j++)
            if (body_family(c[j]) && c[j]->supports(b, &b->nodes[i], why, sizeof(why))) {
                kern[i] = c[j], fns[i] = c[j]->run;
                (*n_fast)++;
                break;
            }
        (*n_all)++;
        if (e->opts.verbose)
            mixrt_log(e->ctx, MIXRT_LOG_NOTE, "body '%s' layer '%s' (%s): kernel %s%s%s", b->name, b->nodes[i].name,
                      b->nodes[i].op_type, kern[i] ? kern[i]->name : "ref", kern[i] || !why[0] ? "" : ": ",
                      kern[i] ? "" : why);
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status bodies_walk(struct mixrt_engine *e, const struct mixrt_graph *g, int *n_fast, int *n_all) {
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *n = &g->nodes[i];
        for (int a = 0; a < n->n_attrs; a++) {
            const struct mixrt_attr *at = &n->attrs[a];
            size_t nb = at->g ? 1 : at->graphs ? at->n : 0;
            for (size_t j = 0; j < nb; j++) {
                struct mixrt_graph *b = at->g ? at->g : at->graphs[j];
                if (!b) continue;
                body_types(g, n, b);
                mixrt_status st = mixrt_graph_infer(b, NULL);
                if (st == MIXRT_STATUS_OK) st = body_add(e, b, n_fast, n_all);
                if (st == MIXRT_STATUS_OK) st = bodies_walk(e, b, n_fast, n_all);
                if (st != MIXRT_STATUS_OK) return st;
            }
        }
    }
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_engine_bodies_prepare(struct mixrt_engine *e) {
    const char *env = getenv("MIXRT_BODY_KERNELS");
    if (e->cuda || (env && !strcmp(env, "off"))) return MIXRT_STATUS_OK;
    int n_fast = 0, n_all = 0;
    mixrt_status status = bodies_walk(e, mixrt_model_graph(e->model), &n_fast, &n_all);
    if (status == MIXRT_STATUS_OK && n_all && e->opts.verbose)
        mixrt_log(e->ctx, MIXRT_LOG_NOTE, "subgraph bodies: %d of %d layers on fast kernels (MIXRT_BODY_KERNELS=off "
                  "runs them all on the reference)", n_fast, n_all);
    return status;
}

static void bodies_release(struct mixrt_engine *e) {
    for (int s = 0; s < e->n_subs; s++) {
        const struct mixrt_graph *b = e->subs[s].g;
        size_t nn = (size_t)(b->n_nodes > 0 ? b->n_nodes : 1);
        void **states = (void **)e->subs[s].states;
        for (int i = 0; i < b->n_nodes; i++)
            if (e->body_kernels[s][i] && e->body_kernels[s][i]->release && states[i])
                e->body_kernels[s][i]->release(e->ctx, states[i]);
        mixrt_free(e->ctx, (void *)e->subs[s].fns, nn * sizeof(mixrt_kernel_fn));
        mixrt_free(e->ctx, states, nn * sizeof(void *));
        mixrt_free(e->ctx, e->body_kernels[s], nn * sizeof(*e->body_kernels[s]));
    }
    mixrt_free(e->ctx, e->subs, (size_t)e->cap_subs * sizeof(*e->subs));
    mixrt_free(e->ctx, e->body_kernels, (size_t)e->cap_subs * sizeof(*e->body_kernels));
    e->subs = NULL, e->body_kernels = NULL, e->n_subs = e->cap_subs = 0;
}

/* ---- the Winograd budget ----
 * oneDNN's Winograd convolutions (dnnl_wino_conv) hold their 3x3 weights transformed: 6x6
 * tiles, padded to the kernel's blocks, 4-8 times the weights' size, and not shared between
 * layers of other spatial sizes (the layout depends on it). FCOS fp32 (129 MB of weights)
 * peaked at 585 MiB against ONNX Runtime's 366 (170 without Winograd, but 1.4x the time):
 * 18.4 MB for each 2.4 MB head conv on its first pyramid level, 8.2 MB on the second. The
 * bytes transformed weights add stay within MIXRT_WINO_BUDGET times the model's constant
 * bytes, or of MIXRT_WINO_BUDGET_MIN_MB (64) where the model holds less (default 1; 0: no
 * Winograd; "off": no limit; a model of small weights and large activations - Mask R-CNN's
 * mask head, 9.4 MB of Winograd weights for 2.4 MB - is far from its memory bound by them,
 * and the process's own memory is ~100 MB under ONNX Runtime's): where the layers that chose Winograd
 * would add more, the weights whose Winograd saves the least time per added byte go back to
 * their readers' fastest other kernel (timed beside it). The bytes are measured, not guessed:
 * each such layer is prepared once, alone, and its packed copy's size read (a copy several
 * layers would share, same weight and layout, counts once). */
struct wino_item {
    int v;              /* the weight */
    double extra, save; /* bytes Winograd adds; ns it saves a run (INFINITY: nothing to switch to) */
};

static int cmp_wino_item(const void *a, const void *b) {
    const struct wino_item *x = a, *y = b;
    double rx = x->extra > 0 ? x->save / x->extra : INFINITY, ry = y->extra > 0 ? y->save / y->extra : INFINITY;
    return (rx > ry) - (rx < ry);
}

enum { WINO_GROUP = -2 }; /* the budget item of the data-batch readers (wino_budget) */

/* The budget item node i's Winograd weights belong to (see wino_budget): its weight's value,
 * WINO_GROUP, or -1 when i holds none. */
static int wino_key(const struct mixrt_graph *g, const struct mixrt_cpu_kernel *const *k, int i, double *img) {
    const struct mixrt_node *nd = &g->nodes[i];
    *img = 0;
    if (mixrt_cpu_kernel_weight_growth(k[i]) <= 1.0 || nd->n_inputs < 2 || nd->inputs[1] < 0 ||
        !g->values[nd->inputs[1]].init)
        return -1;
    return mixrt_tactics_data_batch(g, nd, img) ? WINO_GROUP : nd->inputs[1];
}

/* The bytes the Winograd layers reading weight v hold it in beyond its own: each reader's
 * packed copy (its size and a hash of its layout, measured by preparing the layer alone -
 * once per process and shape, mixrt_tactics_memo), copies of one layout counted once. */
static double wino_extra(struct mixrt_engine *e, const struct mixrt_graph *g, const struct mixrt_cpu_kernel **k, int v) {
    double img;
    enum { MAX_LAYOUTS = 16 };
    double seen[MAX_LAYOUTS];
    int n_seen = 0;
    const double raw = (double)g->values[v].init->nbytes;
    double held = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *nd = &g->nodes[i];
        if (wino_key(g, k, i, &img) != v) continue; /* data-batch readers: WINO_GROUP, weighed together */
        double size = -1, hash = -1;
        if (!mixrt_tactics_memo_get(g, nd, k[i]->name, "packed_bytes", &size) ||
            !mixrt_tactics_memo_get(g, nd, k[i]->name, "packed_layout", &hash)) {
            const struct mixrt_cpu_kernel_packing *pk = mixrt_cpu_kernel_packing_find(k[i]->name);
            void *state = NULL;
            struct mixrt_cpu_packed p;
            mixrt_status ps = pk && k[i]->prepare ? k[i]->prepare(e->ctx, g, nd, &state) : MIXRT_STATUS_UNSUPPORTED;
            if (ps != MIXRT_STATUS_OK) mixrt_context_clear_error(e->ctx); /* counted at its estimate */
            size = hash = -1;
            if (ps == MIXRT_STATUS_OK && state && pk->get(state, &p)) {
                uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the layout, 52 bits kept: exact in a double */
                for (size_t b = 0; b < p.layout_size; b++) h = (h ^ ((const uint8_t *)p.layout)[b]) * 0x100000001b3ull;
                size = (double)p.size, hash = (double)(h >> 12);
                mixrt_tactics_memo_put(g, nd, k[i]->name, "packed_bytes", size);
                mixrt_tactics_memo_put(g, nd, k[i]->name, "packed_layout", hash);
            }
            if (state && k[i]->release) k[i]->release(e->ctx, state);
        }
        if (size < 0) {
            held += mixrt_cpu_kernel_weight_growth(k[i]) * raw; /* not measurable: the nominal growth */
            continue;
        }
        int j = 0;
        while (j < n_seen && seen[j] != hash) j++;
        if (j < n_seen) continue; /* shared with an earlier reader */
        if (n_seen < MAX_LAYOUTS) seen[n_seen++] = hash;
        held += size;
    }
    return held > raw ? held - raw : 0;
}

static mixrt_status wino_budget(struct mixrt_engine *e, const struct mixrt_graph *g, const struct mixrt_cpu_kernel **k,
                                double *ns, const struct mixrt_tactic_alt *alt) {
    double factor, consts, total = 0;
    const double budget = mixrt_wino_budget_bytes(g, &factor, &consts);
    if (budget < 0) return MIXRT_STATUS_OK;
    /* Item v >= 0: the static-shape readers of weight v. Item WINO_GROUP: every reader whose batch
     * only the data decides, weighed as one - their run-time Winograd scratchpad is one buffer
     * sized by the largest of them at the batch the data brings, assumed DATA_BATCH boxes
     * (torchvision's detections per image), and their savings, timed at batch 1, scaled to it.
     * Keypoint R-CNN's 512-channel head: 8 x 28 MB of weights and ~240 MB of scratchpad at 100
     * boxes (1024 MiB at peak against ONNX Runtime's 693-733; 693 without Winograd). */
    enum { DATA_BATCH = MIXRT_WINO_DATA_BATCH };
    struct wino_item *it = NULL;
    int n = 0;
    double group_img = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *nd = &g->nodes[i];
        double img, save = alt[i].kern && ns[i] >= 0 ? alt[i].ns - ns[i] : INFINITY;
        int key = wino_key(g, k, i, &img), j = 0;
        if (key == -1) continue;
        if (!it && !(it = mixrt_calloc(e->ctx, (size_t)g->n_nodes, sizeof(*it)))) return MIXRT_STATUS_OUT_OF_MEMORY;
        while (j < n && it[j].v != key) j++;
        if (j == n) it[n++] = (struct wino_item){key, 0, 0};
        if (key == WINO_GROUP) {
            if (img > group_img) group_img = img;
            it[j].extra += (mixrt_cpu_kernel_weight_growth(k[i]) - 1.0) * (double)g->values[nd->inputs[1]].init->nbytes;
            save *= DATA_BATCH;
        }
        it[j].save += save;
    }
    for (int j = 0; j < n; j++) {
        if (it[j].v == WINO_GROUP) it[j].extra += group_img * DATA_BATCH;
        else it[j].extra = wino_extra(e, g, k, it[j].v);
        total += it[j].extra;
    }
    int moved = 0;
    double moved_bytes = 0, cost = 0;
    if (total > budget) {
        qsort(it, (size_t)n, sizeof(*it), cmp_wino_item);
        /* What can never fit goes first, then the least saving per byte. */
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < n && total > budget; j++) {
                if (it[j].extra <= 0 || isinf(it[j].save) || (pass == 0 && it[j].extra <= budget)) continue;
                for (int i = 0; i < g->n_nodes; i++) {
                    double img;
                    if (wino_key(g, k, i, &img) == it[j].v) k[i] = alt[i].kern, ns[i] = alt[i].ns, moved++;
                }
                total -= it[j].extra, moved_bytes += it[j].extra, cost += it[j].save;
                it[j].extra = 0;
            }
    }
    if (e->opts.verbose && n)
        mixrt_log(e->ctx, MIXRT_LOG_NOTE,
                  "Winograd budget %.1f MB (MIXRT_WINO_BUDGET %.2g x %.1f MB of constants, at least "
                  "MIXRT_WINO_BUDGET_MIN_MB): %.1f MB of transformed "
                  "weights and scratch kept; %d layer%s (%.1f MB) back to their fastest other kernel, +%.3f ms a run as "
                  "timed",
                  budget / 1e6, factor, consts / 1e6, total / 1e6, moved, moved == 1 ? "" : "s", moved_bytes / 1e6,
                  cost / 1e6);
    mixrt_free(e->ctx, it, it ? (size_t)g->n_nodes * sizeof(*it) : 0);
    return MIXRT_STATUS_OK;
}

static mixrt_status select_kernels(struct mixrt_engine *e, struct mixrt_timing_cache *tc) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_graph *g = mixrt_model_graph_mut(e->model);
    int *last = NULL;
    size_t nv = (size_t)(g->n_values > 0 ? g->n_values : 1);
    const char *renv = getenv("MIXRT_RELEASE_WEIGHTS");
    bool release = !e->cuda && !(renv && !strcmp(renv, "off")) && fixed_inputs(g);
    bool *outer = NULL;
    const struct mixrt_cpu_kernel **chosen = NULL;
    struct mixrt_tactic_alt *alt = NULL;
    MIXRT_TRY(mixrt_engine_alloc_nodes(e));
    if (release) { /* each constant's last reader; INT_MAX: a subgraph reads it (kept) */
        last = mixrt_alloc(e->ctx, nv * sizeof(int));
        outer = mixrt_calloc(e->ctx, nv, sizeof(bool));
        if (!last || !outer) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        for (size_t v = 0; v < nv; v++) last[v] = -1;
        for (int i = 0; i < g->n_nodes; i++) {
            for (int q = 0; q < g->nodes[i].n_inputs; q++)
                if (g->nodes[i].inputs[q] >= 0) last[g->nodes[i].inputs[q]] = i;
            mixrt_node_mark_outer_reads(g, &g->nodes[i], outer);
        }
        for (size_t v = 0; v < nv; v++)
            if (outer[v]) last[v] = INT_MAX;
    }
    /* Every node's kernel chosen first (timed on made-up inputs, the graph's weights as they
     * are), then weighed against the Winograd budget, then prepared in order. */
    chosen = mixrt_calloc(e->ctx, (size_t)g->n_nodes + 1, sizeof(*chosen));
    alt = mixrt_calloc(e->ctx, (size_t)g->n_nodes + 1, sizeof(*alt));
    if (!chosen || !alt) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_cpu_kernel *k = NULL;
        double ns = -1;
        if (mixrt_engine_cuda_claims(e, i)) { /* runs on CUDA: the reference stays as its CPU view, untimed */
            size_t nc;
            k = mixrt_cpu_kernels_for(&g->nodes[i], &nc)[nc - 1];
        } else
            MIXRT_TRY(mixrt_tactics_choose(g, i, tc, false, e->opts.verbose, false, &k, &ns, NULL, &alt[i]));
        if (!k) {
            mixrt_kernel_fn fn;
            MIXRT_TRY(mixrt_ref_find(e->ctx, &g->nodes[i], &fn)); /* records the named error */
            status = mixrt_error(e->ctx, MIXRT_STATUS_UNSUPPORTED_OP, "no kernel runs %s node '%s'",
                                 g->nodes[i].op_type, g->nodes[i].name);
            goto fail;
        }
        chosen[i] = k;
        e->time_ns[i] = ns;
    }
    if (!e->cuda) MIXRT_TRY(wino_budget(e, g, chosen, e->time_ns, alt));
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_cpu_kernel *k = chosen[i];
        MIXRT_TRY(mixrt_engine_prepare_node(e, i, k));
        if (e->opts.verbose)
            mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): kernel %s", g->nodes[i].name, g->nodes[i].op_type,
                      k->name);
        for (int q = 0; release && q < g->nodes[i].n_inputs; q++) {
            int v = g->nodes[i].inputs[q];
            if (v >= 0 && last[v] == i) MIXRT_TRY(try_release(e, v));
        }
    }
    MIXRT_TRY(mixrt_engine_bodies_prepare(e));
    if (e->n_released && e->opts.verbose)
        mixrt_log(e->ctx, MIXRT_LOG_NOTE, "%d constant%s (%zu bytes) dropped after packing (their kernels hold them "
                  "packed; MIXRT_RELEASE_WEIGHTS=off keeps them)", e->n_released, e->n_released > 1 ? "s" : "",
                  e->released_bytes);
fail:
    mixrt_free(e->ctx, last, last ? nv * sizeof(int) : 0);
    mixrt_free(e->ctx, outer, outer ? nv * sizeof(bool) : 0);
    mixrt_free(e->ctx, chosen, chosen ? ((size_t)g->n_nodes + 1) * sizeof(*chosen) : 0);
    mixrt_free(e->ctx, alt, alt ? ((size_t)g->n_nodes + 1) * sizeof(*alt) : 0);
    return status;
}

mixrt_status mixrt_engine_build(mixrt_context_t ctx, const char *model_path, const struct mixrt_build_options *opts_in,
                                mixrt_engine_t *out) {
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    if (!model_path || !out) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_build: NULL argument");
    struct mixrt_build_options defaults;
    mixrt_build_options_init(&defaults);
    const struct mixrt_build_options *o = opts_in ? opts_in : &defaults;
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine *e = NULL;
    struct mixrt_timing_cache *tc = NULL;
    double t0 = now_s();

    bool cuda = o->backend && !strcmp(o->backend, "cuda");
    if (o->backend && strcmp(o->backend, "cpu") && !cuda)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "unknown backend '%s' (cpu or cuda)", o->backend);
    for (size_t i = 0; i < o->n_layer_precisions; i++) {
        mixrt_dtype d = o->layer_precisions[i].dtype;
        if (d != MIXRT_DTYPE_F32 && d != MIXRT_DTYPE_F16 && d != MIXRT_DTYPE_BF16)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "--layer-precision '%s': type %s is not fp32, "
                               "fp16 or bf16", o->layer_precisions[i].glob ? o->layer_precisions[i].glob : "",
                               mixrt_dtype_name(d));
    }
    mixrt_context_cache_pause(ctx, true); /* the build's temporaries are not kept for reuse */
    MIXRT_TRY(mixrt_engine_alloc(ctx, &e));
    MIXRT_TRY(copy_options(e, o));
    e->opts.precisions |= MIXRT_PRECISION_FP32;
    snprintf(e->target, sizeof(e->target), "%s", mixrt_cpu_target());
    if (cuda) MIXRT_TRY(mixrt_engine_cuda_open(e)); /* names the GPU in the target */
    make_build_id(e);

#define PHASE(what)                                                                                 \
    do {                                                                                            \
        double t_ = now_s();                                                                        \
        mixrt_log(ctx, MIXRT_LOG_VERBOSE, "build: %s took %.3f s", what, t_ - t_phase);             \
        t_phase = t_;                                                                               \
    } while (0)
    double t_phase = t0;
    {
        int converted[MIXRT_DTYPE_COUNT] = {0};
        bool fb = e->opts.unsupported_dtype == MIXRT_UNSUPPORTED_DTYPE_FALLBACK;
        MIXRT_TRY(mixrt_model_load_fallback(ctx, model_path, false, fb ? converted : NULL, &e->model));
        for (int t = 0; t < MIXRT_DTYPE_COUNT; t++)
            if (converted[t])
                mixrt_log(ctx, MIXRT_LOG_WARNING, "%d %s weight%s converted to f32 (--unsupported-dtype fallback): "
                          "results differ from %s arithmetic", converted[t], mixrt_dtype_name((mixrt_dtype)t),
                          converted[t] > 1 ? "s" : "", mixrt_dtype_name((mixrt_dtype)t));
    }
    PHASE("import");
    struct mixrt_graph *g = mixrt_model_graph_mut(e->model);
    MIXRT_TRY(apply_shapes(g, &e->opts));
    MIXRT_TRY(mixrt_plan_check_dtypes(g, e->opts.unsupported_dtype));
    MIXRT_TRY(mixrt_graph_infer(g, NULL));
    /* CUDA engines: no ElementwiseChain (CPU kernels only), sibling products merged
     * (MIXRT_MERGE_MATMUL=off keeps them apart, to compare). */
    const char *merge_env = getenv("MIXRT_MERGE_MATMUL");
    unsigned cuda_passes = (MIXRT_PASS_ALL & ~(unsigned)MIXRT_PASS_FUSE_ELTWISE) |
                           (merge_env && !strcmp(merge_env, "off") ? 0u : (unsigned)MIXRT_PASS_MERGE_MATMUL);
    /* CPU engines: Gelu conv epilogues and 1-D channels-last regions too (MIXRT_CONV_CPU=off
     * leaves them out, to compare), sibling 1x1 convs merged (MIXRT_MERGE_CONV=off: apart; also
     * apart under --layer-precision rules, which name layers the merge would make one). */
    const char *conv_env = getenv("MIXRT_CONV_CPU"), *mconv_env = getenv("MIXRT_MERGE_CONV");
    const bool merge_conv = !(mconv_env && !strcmp(mconv_env, "off")) && e->opts.n_layer_precisions == 0;
    unsigned cpu_passes = MIXRT_PASS_ALL | (unsigned)MIXRT_PASS_RMSNORM | (unsigned)MIXRT_PASS_ATTN_MASK2 |
                          (conv_env && !strcmp(conv_env, "off") ? 0u : (unsigned)MIXRT_PASS_CONV_CPU) |
                          (merge_conv ? (unsigned)MIXRT_PASS_MERGE_CONV : 0u);
    MIXRT_TRY(mixrt_passes_run(g, cuda ? cuda_passes : cpu_passes, NULL));
    PHASE("graph passes");

    MIXRT_TRY(mixrt_timing_cache_create(ctx, e->target, &tc));
    if (e->opts.timing_cache) MIXRT_TRY(mixrt_timing_cache_load(tc, e->opts.timing_cache));
    if (e->opts.strongly_typed) {
        MIXRT_TRY(mixrt_plan_check_strong(g, &e->opts));
        if (e->opts.precisions != MIXRT_PRECISION_FP32)
            mixrt_log(ctx, MIXRT_LOG_NOTE, "--strongly-typed: enabled precisions are ignored; every tensor keeps "
                      "its declared dtype");
    } else {
        MIXRT_TRY(mixrt_plan_canonicalize(g, MIXRT_DTYPE_F32));
        MIXRT_TRY(mixrt_passes_run(g, MIXRT_PASS_CAST_ELIM | MIXRT_PASS_DCE, NULL));
        PHASE("canonicalization");
        /* bf16 asked of a CPU engine on a CPU without AVX512-BF16: oneDNN's and mixrt's bf16
         * product kernels refuse it (no native bf16 dot product), so the planner keeps those
         * layers f32; a memory-bound layer may still time faster on bf16 storage (widened to
         * f32: BERT's one-row pooler) and stay bf16. Said once, where the user can see why the
         * engine is mostly f32. */
#if defined(__x86_64__)
        if (!cuda && (e->opts.precisions & MIXRT_PRECISION_BF16) && !mixrt_cpu_features()->avx512_bf16)
            mixrt_log(ctx, MIXRT_LOG_NOTE, "this CPU has no AVX512-BF16 (%s): its products and convolutions fall "
                      "back to f32 here; only layers that time faster on bf16 storage stay bf16 (see the layers "
                      "per precision)", e->target);
#endif
        MIXRT_TRY(mixrt_plan_lower(g, &e->opts, tc));
        PHASE("precision planning");
        const char *tc_env = getenv("MIXRT_TRANSPOSE_CAST");
        unsigned tcast = cuda || (tc_env && !strcmp(tc_env, "off")) ? 0u : (unsigned)MIXRT_PASS_TRANSPOSE_CAST;
        /* bf16 inverted-residual blocks as one node: CPU engines on CPUs with AVX512-BF16 (on
         * others mbconv_nhwc would run its scalar twins, slower than the convs apart). */
        unsigned mbconv = 0;
#if defined(__x86_64__)
        if (!cuda && mixrt_cpu_features()->avx512_bf16) mbconv = (unsigned)MIXRT_PASS_MBCONV;
        /* An image's first conv and its MaxPool as one node: stem_pool_nhwc needs AVX-512. */
        if (!cuda && mixrt_cpu_avx512()) mbconv |= (unsigned)MIXRT_PASS_STEM_POOL;
#endif
        MIXRT_TRY(mixrt_passes_run(g, MIXRT_PASS_CAST_ELIM | MIXRT_PASS_DCE | tcast | mbconv, NULL));
        PHASE("cast elimination");
    }
    drop_unused_constants(g);
    MIXRT_TRY(mixrt_graph_toposort(g, &g->order));
    if (cuda) MIXRT_TRY(mixrt_engine_cuda_assign(e));
    MIXRT_TRY(select_kernels(e, tc));
    if (cuda) MIXRT_TRY(mixrt_engine_cuda_prepare(e));
    PHASE("kernel selection");
#undef PHASE
    if (e->opts.timing_cache) MIXRT_TRY(mixrt_timing_cache_save(tc, e->opts.timing_cache));
    mixrt_timing_cache_stats(tc, &e->tc_hits, &e->tc_misses);
    e->build_seconds = now_s() - t0;
    mixrt_timing_cache_destroy(tc);
    mixrt_context_cache_pause(ctx, false);
    *out = e;
    return MIXRT_STATUS_OK;
fail:
    mixrt_timing_cache_destroy(tc);
    mixrt_engine_destroy(e);
    mixrt_context_cache_pause(ctx, false);
    return status;
}

mixrt_status mixrt_engine_build_reference(mixrt_context_t ctx, const char *model_path,
                                          const struct mixrt_input_shape *shapes, size_t n_shapes, mixrt_engine_t *out) {
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    if (!model_path || !out) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "NULL argument");
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine *e = NULL;
    MIXRT_TRY(mixrt_engine_alloc(ctx, &e));
    e->opts.shapes = shapes;
    e->opts.n_shapes = n_shapes;
    {
        struct mixrt_build_options o = e->opts;
        MIXRT_TRY(copy_options(e, &o));
    }
    snprintf(e->target, sizeof(e->target), "%s", mixrt_cpu_target());
    snprintf(e->build_id, sizeof(e->build_id), "reference-f64");
    MIXRT_TRY(mixrt_model_load_opts(ctx, model_path, true, &e->model));
    struct mixrt_graph *g = mixrt_model_graph_mut(e->model);
    MIXRT_TRY(apply_shapes(g, &e->opts));
    MIXRT_TRY(mixrt_plan_check_dtypes(g, MIXRT_UNSUPPORTED_DTYPE_ERROR));
    MIXRT_TRY(mixrt_graph_infer(g, NULL));
    MIXRT_TRY(mixrt_plan_canonicalize(g, MIXRT_DTYPE_F64));
    MIXRT_TRY(mixrt_graph_infer(g, NULL));
    MIXRT_TRY(mixrt_engine_alloc_nodes(e));
    for (int i = 0; i < g->n_nodes; i++) {
        size_t nc;
        const struct mixrt_cpu_kernel *const *c = mixrt_cpu_kernels_for(&g->nodes[i], &nc);
        MIXRT_TRY(mixrt_engine_prepare_node(e, i, c[nc - 1])); /* the reference kernel is last */
    }
    *out = e;
    return MIXRT_STATUS_OK;
fail:
    mixrt_engine_destroy(e);
    return status;
}

/* ---- run and views ------------------------------------------------------------------------- */

struct observe_bridge {
    mixrt_engine_observer fn;
    void *user;
};

static void bridge(void *user, const struct mixrt_graph *g, int node, int output, const struct mixrt_tensor *t) {
    struct observe_bridge *b = user;
    b->fn(b->user, g, node, g->nodes[node].outputs[output], t);
}

mixrt_status mixrt_engine_run_observed(mixrt_engine_t e, size_t n_inputs, const char *const *names,
                                       const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs,
                                       mixrt_engine_observer observe, void *user) {
    if (e->cuda) return mixrt_engine_cuda_run(e, n_inputs, names, inputs, outputs, NULL, observe, user);
    mixrt_status dst = mixrt_engine_device_check_host(e, n_inputs, names, inputs, NULL);
    if (dst != MIXRT_STATUS_OK) return dst;
    struct observe_bridge b = {observe, user};
    struct mixrt_exec_opts xo = {e->fns, e->states, observe ? bridge : NULL, &b,
                                 e->memplan ? &e->memplan->mem : NULL, NULL, &e->scratch, e->subs, e->n_subs};
    struct mixrt_thread_binding tb;
    mixrt_threads_bind_begin(&tb);
    mixrt_status st = mixrt_model_run_opts(e->model, n_inputs, names, inputs, outputs, &xo);
    mixrt_threads_bind_end(&tb);
    return st;
}

mixrt_status mixrt_engine_run_into(mixrt_engine_t e, size_t n_inputs, const char *const *names,
                                   const struct mixrt_tensor *const *inputs, struct mixrt_tensor *const *outputs) {
    if (!e) return MIXRT_STATUS_INVALID_ARGUMENT;
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    if (e->cuda) return mixrt_engine_cuda_run(e, n_inputs, names, inputs, NULL, outputs, NULL, NULL);
    status = mixrt_engine_device_check_host(e, n_inputs, names, inputs, outputs); /* before shells exist */
    if (status != MIXRT_STATUS_OK) return status;
    size_t no = (size_t)(g->n_outputs > 0 ? g->n_outputs : 1);
    struct mixrt_tensor *local[16], **shells = g->n_outputs <= 16 ? local : mixrt_calloc(e->ctx, no, sizeof(*shells));
    if (!shells) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(shells, 0, no * sizeof(*shells));
    MIXRT_CHECK(e->ctx, outputs || g->n_outputs == 0, MIXRT_STATUS_INVALID_ARGUMENT,
                "mixrt_engine_run_into: outputs is NULL");
    /* What can be checked before running: the declared dtype and static dims. */
    for (int i = 0; i < g->n_outputs; i++) {
        const struct mixrt_value *v = &g->values[g->outputs[i]];
        const struct mixrt_tensor *t = outputs[i];
        MIXRT_CHECK(e->ctx, t, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_run_into: output #%d '%s' is NULL", i,
                    v->name);
        char got[256];
        bool ok = t->dtype == v->dtype && (v->rank < 0 || v->rank == t->rank);
        for (int d = 0; ok && v->rank >= 0 && d < v->rank; d++) ok = v->dims[d].value < 0 || v->dims[d].value == t->dims[d];
        size_t n, nb;
        ok = ok && mixrt_dims_numel(t->rank, t->dims, &n) && mixrt_mul_size(n, mixrt_dtype_size(t->dtype), &nb) &&
             nb == t->nbytes && (t->data || !nb);
        MIXRT_CHECK(e->ctx, ok, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_run_into: output #%d '%s' is declared "
                    "%s with %d dims; the tensor given for it is %s%s", i, v->name, mixrt_dtype_name(v->dtype), v->rank,
                    mixrt_tensor_desc(got, sizeof(got), t), t->data || !t->nbytes ? "" : " without data");
    }
    struct observe_bridge b = {NULL, NULL};
    struct mixrt_exec_opts xo = {e->fns, e->states, NULL, &b, e->memplan ? &e->memplan->mem : NULL, outputs,
                                 &e->scratch, e->subs, e->n_subs};
    struct mixrt_thread_binding tb;
    mixrt_threads_bind_begin(&tb);
    status = mixrt_model_run_opts(e->model, n_inputs, names, inputs, shells, &xo);
    mixrt_threads_bind_end(&tb);
    /* The tensors returned borrow the caller's data: only their structs are freed. */
    if (status == MIXRT_STATUS_OK)
        for (int i = 0; i < g->n_outputs; i++) mixrt_tensor_destroy(e->ctx, shells[i]);
fail:
    if (shells != local) mixrt_free(e->ctx, shells, no * sizeof(*shells));
    return status;
}

mixrt_status mixrt_engine_run(mixrt_engine_t e, size_t n_inputs, const char *const *names,
                              const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs) {
    if (!e) return MIXRT_STATUS_INVALID_ARGUMENT;
    return mixrt_engine_run_observed(e, n_inputs, names, inputs, outputs, NULL, NULL);
}

size_t mixrt_engine_input_count(mixrt_engine_t e) { return mixrt_model_input_count(e->model); }
size_t mixrt_engine_output_count(mixrt_engine_t e) { return mixrt_model_output_count(e->model); }
mixrt_status mixrt_engine_get_input(mixrt_engine_t e, size_t i, struct mixrt_value_info *out) {
    return mixrt_model_get_input(e->model, i, out);
}
mixrt_status mixrt_engine_get_output(mixrt_engine_t e, size_t i, struct mixrt_value_info *out) {
    return mixrt_model_get_output(e->model, i, out);
}

const struct mixrt_graph *mixrt_engine_graph(mixrt_engine_t e) { return mixrt_model_graph(e->model); }
const char *mixrt_engine_node_kernel(mixrt_engine_t e, int i) {
    if (mixrt_engine_cuda_claims(e, i)) return mixrt_engine_cuda_node_kernel(e, i);
    return i >= 0 && i < e->n_nodes && e->kernels[i] ? e->kernels[i]->name : "none";
}
double mixrt_engine_node_time_ns(mixrt_engine_t e, int i) { return i >= 0 && i < e->n_nodes ? e->time_ns[i] : -1; }
const char *mixrt_engine_target(mixrt_engine_t e) { return e->target; }
const char *mixrt_engine_build_id(mixrt_engine_t e) { return e->build_id; }
const struct mixrt_build_options *mixrt_engine_options(mixrt_engine_t e) { return &e->opts; }
void mixrt_engine_build_stats(mixrt_engine_t e, int *hits, int *misses, double *seconds) {
    *hits = e->tc_hits;
    *misses = e->tc_misses;
    *seconds = e->build_seconds;
}

/* The dtype a layer computes its float data in: its first float input that is not a constant
 * (ConcatAffine's f32 scale comes first), else its first float input, else output. */
static mixrt_dtype layer_precision(const struct mixrt_graph *g, const struct mixrt_node *n) {
    /* a conversion (TransposeCast: the image's NHWC copy made bf16) is said in what it makes */
    bool cast = !strcmp(n->op_type, "Cast") ||
                (!strcmp(n->op_type, "TransposeCast") && !strcmp(n->domain, MIXRT_DOMAIN));
    if (cast && n->n_outputs > 0 && n->outputs[0] >= 0) {
        mixrt_dtype d = g->values[n->outputs[0]].dtype;
        return mixrt_dtype_is_float(d) ? d : MIXRT_DTYPE_UNDEFINED;
    }
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] >= 0 && !mixrt_graph_is_fixed_const(g, n->inputs[j]) &&
            mixrt_dtype_is_float(g->values[n->inputs[j]].dtype))
            return g->values[n->inputs[j]].dtype;
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] >= 0 && mixrt_dtype_is_float(g->values[n->inputs[j]].dtype)) return g->values[n->inputs[j]].dtype;
    for (int j = 0; j < n->n_outputs; j++)
        if (n->outputs[j] >= 0 && mixrt_dtype_is_float(g->values[n->outputs[j]].dtype))
            return g->values[n->outputs[j]].dtype;
    return MIXRT_DTYPE_UNDEFINED;
}

int64_t mixrt_engine_activation_bytes(mixrt_engine_t e) {
    if (e->memplan) return e->memplan->all_static ? (int64_t)e->memplan->arena_bytes : -1;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    int nv = g->n_values;
    int *last = mixrt_calloc(e->ctx, (size_t)(nv > 0 ? nv : 1), sizeof(int));
    int64_t *size = mixrt_calloc(e->ctx, (size_t)(nv > 0 ? nv : 1), sizeof(int64_t));
    int64_t peak = 0, live = 0;
    if (!last || !size) {
        peak = -1;
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        const struct mixrt_value *val = &g->values[v];
        last[v] = -1;
        size[v] = 0;
        if (val->init || val->producer < 0 || (val->flags & (MIXRT_VALUE_GRAPH_OUTPUT | MIXRT_VALUE_SEQUENCE))) continue;
        if (val->rank < 0 || !mixrt_dtype_is_supported(val->dtype) || val->dtype == MIXRT_DTYPE_STRING) {
            peak = -1;
            goto done;
        }
        int64_t n = (int64_t)mixrt_dtype_size(val->dtype);
        for (int d = 0; d < val->rank; d++) {
            if (val->dims[d].value < 0) {
                peak = -1;
                goto done;
            }
            if (val->dims[d].value && n > INT64_MAX / val->dims[d].value) {
                peak = -1;
                goto done;
            }
            n *= val->dims[d].value;
        }
        size[v] = n;
    }
    for (int s = 0; s < g->n_nodes; s++) {
        const struct mixrt_node *nd = &g->nodes[g->order[s]];
        for (int j = 0; j < nd->n_inputs; j++)
            if (nd->inputs[j] >= 0) last[nd->inputs[j]] = s;
    }
    /* Walk the order: outputs become alive when produced, inputs die after their last use. */
    for (int s = 0; s < g->n_nodes; s++) {
        const struct mixrt_node *nd = &g->nodes[g->order[s]];
        for (int j = 0; j < nd->n_outputs; j++)
            if (nd->outputs[j] >= 0) live += size[nd->outputs[j]];
        if (live > peak) peak = live;
        for (int j = 0; j < nd->n_inputs; j++) {
            int v = nd->inputs[j];
            if (v >= 0 && last[v] == s) {
                live -= size[v];
                size[v] = 0; /* counted once even when read twice by this node */
            }
        }
        for (int j = 0; j < nd->n_outputs; j++) {
            int v = nd->outputs[j];
            if (v >= 0 && last[v] < s) {
                live -= size[v];
                size[v] = 0;
            }
        }
    }
done:
    mixrt_free(e->ctx, last, (size_t)(nv > 0 ? nv : 1) * sizeof(int));
    mixrt_free(e->ctx, size, (size_t)(nv > 0 ? nv : 1) * sizeof(int64_t));
    return peak;
}

size_t mixrt_engine_layer_count(mixrt_engine_t e) { return (size_t)e->n_nodes; }

mixrt_status mixrt_engine_get_layer(mixrt_engine_t e, size_t index, struct mixrt_layer_info *out) {
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    if (index >= (size_t)e->n_nodes)
        return mixrt_error(e->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "layer index %zu out of range (%d layers)", index,
                           e->n_nodes);
    /* Layers in execution order. */
    int ni = g->order[index];
    const struct mixrt_node *n = &g->nodes[ni];
    out->name = n->name;
    out->op_type = n->op_type;
    out->kernel = mixrt_engine_node_kernel(e, ni);
    out->precision = layer_precision(g, n);
    return MIXRT_STATUS_OK;
}
