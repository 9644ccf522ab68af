/* test_memplan.c - the activation memory plan: plan invariants (simultaneously live
 * slices never overlap, 64-byte offsets, peak of live bytes <= arena <= sum of sizes,
 * every value's slice reserved for at least its own lifetime), runs with the plan
 * bit-identical to runs without it (arena poisoned first, second runs on a dirty arena,
 * run_into into caller tensors), fewer allocations per run, named run_into errors and
 * an out-of-memory sweep. Models: scripts/make_engine_models.py and make_examples.py,
 * generated into the build tree by this test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/engine_impl.h"
#include "engine/memplan.h"
#include "mixrt/mixrt_engine.h"
#include "testutil.h"

static char models[1024], examples[1024];
static mixrt_context_t ctx;

/* ---- a counting allocator ---- */
static long n_allocs;
static void *count_alloc(void *user, size_t size, size_t align) {
    (void)user;
    n_allocs++;
    size_t a = align < sizeof(void *) ? sizeof(void *) : align;
    void *p = NULL;
    return posix_memalign(&p, a, size ? size : 1) == 0 ? p : NULL;
}
static void count_free(void *user, void *ptr, size_t size) {
    (void)user;
    (void)size;
    free(ptr);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Seeded random inputs (symbolic dims 3), as test_engine makes them. */
static int make_inputs(mixrt_context_t c, mixrt_engine_t e, struct mixrt_tensor **in, const char **names,
                       uint64_t seed) {
    int n = 0;
    tu_seed(seed);
    for (size_t i = 0; i < mixrt_engine_input_count(e) && n < 16; i++) {
        struct mixrt_value_info vi;
        mixrt_engine_get_input(e, i, &vi);
        if (vi.has_initializer) continue;
        int64_t dims[MIXRT_MAX_RANK];
        for (int d = 0; d < vi.rank; d++) dims[d] = vi.dims[d] >= 0 ? vi.dims[d] : 3;
        if (mixrt_tensor_create(c, vi.dtype, vi.rank, dims, &in[n]) != MIXRT_STATUS_OK) return -1;
        size_t cnt = mixrt_tensor_numel(in[n]);
        for (size_t k = 0; k < cnt; k++) {
            double v = tu_uniform(-1, 1);
            if (mixrt_dtype_is_float(vi.dtype)) {
                mixrt_convert((char *)in[n]->data + k * mixrt_dtype_size(vi.dtype), vi.dtype, &v, MIXRT_DTYPE_F64, 1);
            } else if (vi.dtype == MIXRT_DTYPE_I64) {
                ((int64_t *)in[n]->data)[k] = (int64_t)((v < 0 ? -v : v) * 7);
            } else if (vi.dtype == MIXRT_DTYPE_I32) {
                ((int32_t *)in[n]->data)[k] = (int32_t)((v < 0 ? -v : v) * 7);
            } else if (vi.dtype == MIXRT_DTYPE_I8) {
                ((int8_t *)in[n]->data)[k] = (int8_t)(v * 127);
            } else if (vi.dtype == MIXRT_DTYPE_BOOL) {
                ((uint8_t *)in[n]->data)[k] = v > 0;
            }
        }
        names[n++] = vi.name;
    }
    return n;
}

/* The plan's invariants, with lifetimes recomputed here from the graph. */
static void check_plan(const char *what, mixrt_engine_t e) {
    const struct mixrt_memplan *p = mixrt_engine_memplan(e);
    TU_CHECK(p, "%s: the engine has a memory plan", what);
    if (!p) return;
    const struct mixrt_graph *g = mixrt_engine_graph(e);
    int nv = g->n_values, planned = 0;
    int *def = calloc((size_t)nv + 1, sizeof(int)), *last = calloc((size_t)nv + 1, sizeof(int));
    for (int v = 0; v < nv; v++) def[v] = last[v] = -1;
    for (int s = 0; s < g->n_nodes; s++) {
        const struct mixrt_node *nd = &g->nodes[g->order[s]];
        for (int j = 0; j < nd->n_outputs; j++)
            if (nd->outputs[j] >= 0) def[nd->outputs[j]] = last[nd->outputs[j]] = s;
        for (int j = 0; j < nd->n_inputs; j++)
            if (nd->inputs[j] >= 0) last[nd->inputs[j]] = s;
    }
    bool aligned = true, inside = true, covers = true, no_io = true, disjoint = true;
    for (int v = 0; v < nv; v++) {
        if (p->offset[v] < 0) continue;
        planned++;
        const struct mixrt_value *val = &g->values[v];
        if (p->offset[v] % MIXRT_MEMPLAN_ALIGN) aligned = false;
        if ((size_t)p->offset[v] + p->bytes[v] > p->arena_bytes) inside = false;
        if (val->init || (val->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT))) no_io = false;
        if (def[v] < 0 || p->first[v] > def[v] || p->last[v] < last[v]) {
            covers = false;
            fprintf(stderr, "%s: value '%s' lives %d..%d, its slice %d..%d\n", what, val->name, def[v], last[v],
                    p->first[v], p->last[v]);
        }
        for (int w = v + 1; w < nv; w++) {
            if (p->offset[w] < 0 || p->root[w] == p->root[v]) continue;
            bool live_together = p->first[v] <= p->last[w] && p->first[w] <= p->last[v];
            bool overlap = p->offset[v] < p->offset[w] + (int64_t)p->bytes[w] &&
                           p->offset[w] < p->offset[v] + (int64_t)p->bytes[v];
            if (live_together && overlap) {
                disjoint = false;
                fprintf(stderr, "%s: '%s' and '%s' overlap while both live\n", what, val->name, g->values[w].name);
            }
        }
    }
    TU_CHECK(aligned, "%s: every offset is a multiple of %d", what, MIXRT_MEMPLAN_ALIGN);
    TU_CHECK(inside, "%s: every slice lies inside the arena", what);
    TU_CHECK(no_io, "%s: no graph input, output or constant in the arena", what);
    TU_CHECK(covers, "%s: every slice is reserved for its value's whole lifetime", what);
    TU_CHECK(disjoint, "%s: no two simultaneously live slices overlap", what);
    TU_CHECK(p->arena_bytes <= p->sum_bytes, "%s: arena %zu <= sum of sizes %zu", what, p->arena_bytes, p->sum_bytes);
    TU_CHECK(p->arena_bytes >= p->peak_live_bytes, "%s: arena %zu >= peak live %zu", what, p->arena_bytes,
             p->peak_live_bytes);
    TU_CHECK(planned > 0 || !p->all_static || p->arena_bytes == 0, "%s: something planned", what);
    if (p->all_static)
        TU_CHECK(mixrt_engine_activation_bytes(e) == (int64_t)p->arena_bytes, "%s: activation bytes %lld = arena %zu",
                 what, (long long)mixrt_engine_activation_bytes(e), p->arena_bytes);
    free(def);
    free(last);
}

static bool same_bits(const struct mixrt_tensor *a, const struct mixrt_tensor *b) {
    if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    return !a->nbytes || !memcmp(a->data, b->data, a->nbytes);
}

/* Builds path under o in a counting context; runs planned (poisoned arena, twice),
 * unplanned, and into caller tensors; outputs must agree bit for bit. */
static void check_model(const char *path, const char *label, const struct mixrt_build_options *o) {
    struct mixrt_allocator al = {count_alloc, count_free, NULL};
    mixrt_context_t c = NULL;
    mixrt_engine_t e = NULL;
    struct mixrt_tensor *in[16] = {0}, *ref[16] = {0}, *got[16] = {0}, *into[16] = {0};
    const char *names[16];
    char what[2400];
    snprintf(what, sizeof(what), "%s [%s]", path, label);
    if (mixrt_context_create(&al, &c) != MIXRT_STATUS_OK) return;
    mixrt_status st = mixrt_engine_build(c, path, o, &e);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: build: %s", what, mixrt_context_last_error(c));
    if (st != MIXRT_STATUS_OK) goto done;
    check_plan(what, e);
    int n = make_inputs(c, e, in, names, 42);
    size_t no = mixrt_engine_output_count(e);
    if (n < 0 || no > 16) goto done;
    const struct mixrt_tensor *const *cin = (const struct mixrt_tensor *const *)in;

    /* Without the plan: the reference for the bits, and the allocation count. */
    TU_CHECK(mixrt_engine_memplan_enable(e, false) == MIXRT_STATUS_OK && !mixrt_engine_memplan(e), "%s: plan off",
             what);
    st = mixrt_engine_run(e, (size_t)n, names, cin, ref);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: unplanned run: %s", what, mixrt_context_last_error(c));
    if (st != MIXRT_STATUS_OK) goto done;
    long a0 = n_allocs;
    for (size_t i = 0; i < no; i++) mixrt_tensor_destroy(c, ref[i]);
    st = mixrt_engine_run(e, (size_t)n, names, cin, ref);
    long unplanned_allocs = n_allocs - a0;

    TU_CHECK(mixrt_engine_memplan_enable(e, true) == MIXRT_STATUS_OK, "%s: plan on: %s", what,
             mixrt_context_last_error(c));
    const struct mixrt_memplan *p = mixrt_engine_memplan(e);
    if (!p) goto done;
    int n_planned = 0;
    for (int v = 0; v < p->n_values; v++) n_planned += p->offset[v] >= 0;
    /* NaN-like garbage everywhere: a kernel that trusted a zeroed output shows. */
    if (p->arena) memset(p->arena, 0xff, p->arena_bytes);
    for (int pass = 0; pass < 2; pass++) {
        a0 = n_allocs;
        st = mixrt_engine_run(e, (size_t)n, names, cin, got);
        long planned_allocs = n_allocs - a0;
        TU_CHECK(st == MIXRT_STATUS_OK, "%s: planned run %d: %s", what, pass, mixrt_context_last_error(c));
        if (st != MIXRT_STATUS_OK) goto done;
        for (size_t i = 0; i < no; i++) {
            TU_CHECK(same_bits(got[i], ref[i]), "%s: planned run %d: output #%zu differs from the unplanned run", what,
                     pass, i);
            mixrt_tensor_destroy(c, got[i]);
            got[i] = NULL;
        }
        if (pass == 1)
            printf("%s: allocations per run %ld planned, %ld unplanned; %d values planned, arena %zu bytes for %zu "
                   "(peak live %zu)\n", what, planned_allocs, unplanned_allocs, n_planned, p->arena_bytes, p->sum_bytes,
                   p->peak_live_bytes);
        if (pass == 1)
            TU_CHECK(planned_allocs + n_planned <= unplanned_allocs, "%s: a planned run allocates %ld times, an "
                     "unplanned one %ld (%d values planned)", what, planned_allocs, unplanned_allocs, n_planned);
    }
    /* Into caller tensors (poisoned too). */
    for (size_t i = 0; i < no; i++) {
        mixrt_tensor_create(c, ref[i]->dtype, ref[i]->rank, ref[i]->dims, &into[i]);
        if (into[i]->nbytes) memset(into[i]->data, 0xff, into[i]->nbytes);
    }
    st = mixrt_engine_run_into(e, (size_t)n, names, cin, into);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: run_into: %s", what, mixrt_context_last_error(c));
    for (size_t i = 0; st == MIXRT_STATUS_OK && i < no; i++)
        TU_CHECK(same_bits(into[i], ref[i]), "%s: run_into output #%zu differs", what, i);
    /* A wrong shape is named. */
    if (no > 0 && into[0]->rank > 0 && into[0]->dims[0] > 1) {
        struct mixrt_tensor *bad = NULL;
        int64_t d[MIXRT_MAX_RANK];
        memcpy(d, into[0]->dims, sizeof(d));
        d[0] -= 1;
        mixrt_tensor_create(c, into[0]->dtype, into[0]->rank, d, &bad);
        struct mixrt_tensor *saved = into[0];
        into[0] = bad;
        st = mixrt_engine_run_into(e, (size_t)n, names, cin, into);
        into[0] = saved;
        struct mixrt_value_info vi;
        mixrt_engine_get_output(e, 0, &vi);
        TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && strstr(mixrt_context_last_error(c), vi.name),
                 "%s: run_into with a short output: status %d, '%s'", what, (int)st, mixrt_context_last_error(c));
        mixrt_tensor_destroy(c, bad);
    }
done:
    for (int i = 0; i < 16; i++) {
        mixrt_tensor_destroy(c, in[i]);
        mixrt_tensor_destroy(c, ref[i]);
        mixrt_tensor_destroy(c, got[i]);
        mixrt_tensor_destroy(c, into[i]);
    }
    mixrt_engine_destroy(e);
    TU_CHECK(mixrt_context_bytes_in_use(c) == 0, "%s: %zu bytes leaked", what, mixrt_context_bytes_in_use(c));
    mixrt_context_destroy(c);
}

/* Every symbolic input dim fixed to 3 (as make_inputs feeds), so every size is static. */
static size_t static_shapes(const char *path, struct mixrt_input_shape *sh) {
    mixrt_engine_t e = NULL;
    size_t n = 0;
    if (mixrt_engine_build(ctx, path, NULL, &e) != MIXRT_STATUS_OK) return 0;
    for (size_t i = 0; i < mixrt_engine_input_count(e) && n < 8; i++) {
        struct mixrt_value_info vi;
        mixrt_engine_get_input(e, i, &vi);
        if (vi.has_initializer || vi.rank < 0) continue;
        sh[n].name = vi.name;
        sh[n].rank = vi.rank;
        bool sym = false;
        for (int d = 0; d < vi.rank; d++) {
            sh[n].dims[d] = vi.dims[d] >= 0 ? vi.dims[d] : 3;
            sym |= vi.dims[d] < 0;
        }
        if (sym) n++;
    }
    /* The names live in e: keep copies. */
    static char names[8][256];
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "%s", sh[i].name);
        sh[i].name = names[i];
    }
    mixrt_engine_destroy(e);
    return n;
}

static void test_models(void) {
    static const char *const files[] = {"E:cnn_f32", "E:cnn_bf16", "E:cnn_f16", "E:transformer_f32",
                                        "E:transformer_bf16", "M:mlp_f32", "M:mlp_bf16", "M:mlp_f16",
                                        "M:tiny_f32", "M:qdq_f32", "M:untyped_f32"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char path[2100];
        snprintf(path, sizeof(path), "%s/%s.onnx", files[f][0] == 'E' ? examples : models, files[f] + 2);
        if (!exists(path)) {
            TU_CHECK(0, "model %s is missing", path);
            continue;
        }
        struct mixrt_input_shape sh[8];
        size_t nsh = static_shapes(path, sh);
        for (int prec = 0; prec < 2; prec++)
            for (int fixed = 0; fixed < (nsh ? 2 : 1); fixed++) {
                struct mixrt_build_options o;
                mixrt_build_options_init(&o);
                o.precisions = prec ? MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16 : MIXRT_PRECISION_FP32;
                if (fixed) {
                    o.shapes = sh;
                    o.n_shapes = nsh;
                }
                char label[64];
                snprintf(label, sizeof(label), "%s%s", prec ? "fp32,bf16" : "fp32", fixed ? ", static shapes" : "");
                check_model(path, label, &o);
                /* Static builds plan every intermediate. (Not untyped_f32: no shapes are
                 * inferred; nor the mlp models where an I/O cast is inserted before output
                 * 'm' - in bf16/f16 models always, in f32 ones when the planner picks bf16 -
                 * since the cast's input keeps the symbolic dim 'm' is declared with.) */
                if ((fixed || !nsh) && (files[f][0] == 'E' || (prec == 0 && !strstr(path, "untyped") &&
                                                               !strstr(path, "mlp_bf16") && !strstr(path, "mlp_f16")))) {
                    mixrt_engine_t e = NULL;
                    if (mixrt_engine_build(ctx, path, &o, &e) == MIXRT_STATUS_OK) {
                        const struct mixrt_memplan *p = mixrt_engine_memplan(e);
                        TU_CHECK(p && p->all_static, "%s [%s]: every intermediate has a static size", path, label);
                    }
                    mixrt_engine_destroy(e);
                }
            }
    }
}

/* A saved plan loads with the same memory plan. */
static void test_plan_load(void) {
    char path[2100], plan[2100];
    snprintf(path, sizeof(path), "%s/cnn_f32.onnx", examples);
    snprintf(plan, sizeof(plan), "%s/memplan_cnn.plan", models);
    mixrt_engine_t e = NULL, l = NULL;
    if (mixrt_engine_build(ctx, path, NULL, &e) != MIXRT_STATUS_OK) return;
    TU_CHECK(mixrt_engine_save(e, plan) == MIXRT_STATUS_OK, "save: %s", mixrt_context_last_error(ctx));
    TU_CHECK(mixrt_engine_load(ctx, plan, &l) == MIXRT_STATUS_OK, "load: %s", mixrt_context_last_error(ctx));
    if (l) {
        check_plan("loaded cnn plan", l);
        const struct mixrt_memplan *a = mixrt_engine_memplan(e), *b = mixrt_engine_memplan(l);
        TU_CHECK(a && b && a->arena_bytes == b->arena_bytes, "a loaded plan plans the same arena (%zu, %zu)",
                 a ? a->arena_bytes : 0, b ? b->arena_bytes : 0);
    }
    mixrt_engine_destroy(l);
    mixrt_engine_destroy(e);
    remove(plan);
}

/* Views: the transformer's reshapes run without copies (their outputs share slices). */
static void test_views(void) {
    char path[2100];
    snprintf(path, sizeof(path), "%s/transformer_f32.onnx", examples);
    struct mixrt_input_shape sh[8];
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.shapes = sh;
    o.n_shapes = static_shapes(path, sh);
    mixrt_engine_t e = NULL;
    if (mixrt_engine_build(ctx, path, &o, &e) != MIXRT_STATUS_OK) return;
    const struct mixrt_memplan *p = mixrt_engine_memplan(e);
    const struct mixrt_graph *g = mixrt_engine_graph(e);
    int views = 0, shared = 0;
    for (int i = 0; p && i < g->n_nodes; i++) {
        if (!(p->node_flags[i] & MIXRT_EXEC_NODE_VIEW)) continue;
        views++;
        int x = g->nodes[i].inputs[0], y = g->nodes[i].outputs[0];
        if (p->offset[x] >= 0 && p->offset[y] == p->offset[x]) shared++;
    }
    int reshapes = 0;
    for (int i = 0; i < g->n_nodes; i++) reshapes += !strcmp(g->nodes[i].op_type, "Reshape");
    printf("transformer: %d Reshape layers; %d view layers, %d sharing their input's slice; arena %zu bytes for "
           "%zu bytes of slices\n", reshapes, views, shared, p ? p->arena_bytes : 0, p ? p->sum_bytes : 0);
    TU_CHECK(reshapes == 0 || views > 0, "transformer: %d Reshape layers, %d run as views (%d share a slice)",
             reshapes, views, shared);
    mixrt_engine_destroy(e);
}

/* Every allocation of planning + run fails in turn: OUT_OF_MEMORY or success, no leak. */
static void test_oom_sweep(void) {
    char path[2100];
    snprintf(path, sizeof(path), "%s/mlp_f32.onnx", models);
    mixrt_engine_t e = NULL;
    if (mixrt_engine_build(ctx, path, NULL, &e) != MIXRT_STATUS_OK) return;
    struct mixrt_tensor *in[16] = {0};
    const char *names[16];
    int n = make_inputs(ctx, e, in, names, 7);
    size_t no = mixrt_engine_output_count(e);
    /* One run first: the engine's kernel scratch (oneDNN's scratchpads, kept across runs until
     * the engine goes) is then at its size, and the sweep's runs do not grow it. */
    if (n >= 0) {
        struct mixrt_tensor *outs[16] = {0};
        TU_CHECK(mixrt_engine_run(e, (size_t)n, names, (const struct mixrt_tensor *const *)in, outs) == MIXRT_STATUS_OK,
                 "oom sweep: the first run: %s", mixrt_context_last_error(ctx));
        for (size_t i = 0; i < no && i < 16; i++) mixrt_tensor_destroy(ctx, outs[i]);
    }
    mixrt_engine_memplan_enable(e, false);
    size_t base = mixrt_context_bytes_in_use(ctx);
    int attempts = 0;
    bool clean = true, ok_status = true;
    for (long k = 0; k < 100000 && n >= 0; k++, attempts++) {
        struct mixrt_tensor *outs[16] = {0};
        mixrt_context_fail_alloc_after(ctx, k, 1);
        mixrt_status st = mixrt_engine_memplan_enable(e, true);
        if (st == MIXRT_STATUS_OK)
            st = mixrt_engine_run(e, (size_t)n, names, (const struct mixrt_tensor *const *)in, outs);
        mixrt_context_fail_alloc_after(ctx, -1, 0);
        if (st != MIXRT_STATUS_OK && st != MIXRT_STATUS_OUT_OF_MEMORY) ok_status = false;
        for (size_t i = 0; i < no && i < 16; i++) mixrt_tensor_destroy(ctx, outs[i]);
        /* The plan itself stays until the engine goes: drop it to compare. */
        mixrt_engine_memplan_enable(e, false);
        if (mixrt_context_bytes_in_use(ctx) != base) {
            if (clean)
                fprintf(stderr, "oom sweep: failing allocation %ld leaves %zu bytes (status %d: %s)\n", k,
                        mixrt_context_bytes_in_use(ctx) - base, (int)st, mixrt_context_last_error(ctx));
            clean = false;
        }
        if (st == MIXRT_STATUS_OK) break;
    }
    TU_CHECK(attempts > 5, "the sweep injected failures (%d attempts)", attempts);
    TU_CHECK(ok_status, "every injected failure reported OUT_OF_MEMORY");
    TU_CHECK(clean, "nothing leaked after injected failures");
    for (int i = 0; i < 16; i++) mixrt_tensor_destroy(ctx, in[i]);
    mixrt_engine_destroy(e);
}

int main(void) {
    const char *bin = getenv("MIXRT_BINARY_DIR"), *src = getenv("MIXRT_SOURCE_DIR");
    snprintf(models, sizeof(models), "%s/tests/memplan_models", bin ? bin : "build");
    snprintf(examples, sizeof(examples), "%s/tests/memplan_examples", bin ? bin : "build");
    char probe[1100];
    snprintf(probe, sizeof(probe), "%s/transformer_f32.onnx", examples);
    if (!exists(probe)) {
        /* Own copies, so this test does not depend on another test's fixture. */
        char cmd[4096];
        snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/scripts/make_engine_models.py' '%s' >/dev/null && "
                 "/usr/bin/python3 '%s/scripts/make_examples.py' '%s' >/dev/null", src ? src : ".", models,
                 src ? src : ".", examples);
        if (system(cmd) != 0) {
            fprintf(stderr, "test_memplan: cannot generate the models: %s\n", cmd);
            return 1;
        }
    }
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    test_models();
    test_plan_load();
    test_views();
    test_oom_sweep();
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "no leak: %zu bytes", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    return tu_finish("test_memplan");
}
