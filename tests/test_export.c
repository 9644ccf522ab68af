/* test_export.c - IR -> ONNX export round trips: every libonnx-testdata model the
 * importer accepts is exported (inline, and with its initializers in an in-memory
 * weights blob; and, after all graph passes, through the blob without unused
 * initializers, as a plan stores it), imported again, compared structurally with its
 * source IR and run on the test data, outputs compared bit for bit. Plus hostile blob
 * references (out of range, misaligned, wrong length) that must fail with a named
 * error, and allocation failures during export that must not leak. Optional argument:
 * a suite name filter. MIXRT_EXPORT_DUMP=folder keeps the inline exports. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/core.h"
#include "mixrt/mixrt_io.h"
#include "mixrt/mixrt_onnx.h"
#include "onnx/export.h"
#include "onnx/model_impl.h"
#include "onnx/tensorproto.h"
#include "passes/passes.h"
#include "testutil.h"

#define DATA_ROOT "/usr/share/libonnx-testdata/data"
#define MAX_IO 64
#define SLOW_RUN_S 2.0
#define BLOB_LOCATION "@weights"

static mixrt_context_t ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- the weights blob: grows by doubling, 64-byte aligned base and entries ---- */
struct blob {
    uint8_t *data;
    size_t size, cap;
    int puts;
    int fail_at; /* put number that fails (tests the error path); -1: never */
};

static mixrt_status blob_put(void *user, const struct mixrt_tensor *t, uint64_t *offset) {
    struct blob *b = user;
    if (b->fail_at >= 0 && b->puts == b->fail_at)
        return mixrt_error(ctx, MIXRT_STATUS_IO_ERROR, "weights blob is full (test)");
    b->puts++;
    size_t start = (b->size + 63) & ~(size_t)63, end = start + t->nbytes;
    if (end > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < end) cap *= 2;
        void *p = NULL;
        if (posix_memalign(&p, 64, cap)) return mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "blob: no memory");
        if (b->size) memcpy(p, b->data, b->size);
        free(b->data);
        b->data = p;
        b->cap = cap;
    }
    if (start > b->size) memset(b->data + b->size, 0, start - b->size);
    if (t->nbytes) memcpy(b->data + start, t->data, t->nbytes);
    b->size = end;
    *offset = start;
    return MIXRT_STATUS_OK;
}

static void blob_free(struct blob *b) {
    free(b->data);
    memset(b, 0, sizeof(*b));
    b->fail_at = -1;
}

/* ---- structural comparison of two IR graphs ---- */
static char why[1024];
/* Planned graphs: the passes leave values nothing reads (removed nodes' outputs, replaced
 * weights) in the IR; the export drops them, so they may be missing after the trip. */
static bool relaxed;

#define DIFF(...)                                                                                            \
    do {                                                                                                     \
        snprintf(why, sizeof(why), __VA_ARGS__);                                                             \
        return false;                                                                                        \
    } while (0)

static bool same_tensor(const struct mixrt_tensor *a, const struct mixrt_tensor *b) {
    if (!a || !b) return a == b;
    if (a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    if (a->nbytes != b->nbytes) return false;
    if (a->dtype == MIXRT_DTYPE_STRING) {
        const struct mixrt_string *x = a->data, *y = b->data;
        for (size_t i = 0; i < a->nbytes / sizeof(*x); i++)
            if (x[i].len != y[i].len || (x[i].len && memcmp(x[i].ptr, y[i].ptr, x[i].len))) return false;
        return true;
    }
    return !a->nbytes || !memcmp(a->data, b->data, a->nbytes);
}

static bool same_str(const char *a, const char *b) { return !strcmp(a ? a : "", b ? b : ""); }

static bool same_graph(const struct mixrt_graph *a, const struct mixrt_graph *b, const char *where);

static bool same_attr(const struct mixrt_attr *x, const struct mixrt_attr *y, const char *where) {
    if (!same_str(x->name, y->name) || x->type != y->type)
        DIFF("%s: attribute '%s' type %d vs '%s' type %d", where, x->name, x->type, y->name, y->type);
    char sub[512];
    snprintf(sub, sizeof(sub), "%.300s attr '%.100s'", where, x->name);
    switch (x->type) {
    case MIXRT_ATTR_FLOAT:
        if (memcmp(&x->f, &y->f, sizeof(float))) DIFF("%s: float differs", sub);
        break;
    case MIXRT_ATTR_INT:
        if (x->i != y->i) DIFF("%s: int %lld vs %lld", sub, (long long)x->i, (long long)y->i);
        break;
    case MIXRT_ATTR_STRING:
        if (x->s_len != y->s_len || (x->s_len && memcmp(x->s, y->s, x->s_len))) DIFF("%s: string differs", sub);
        break;
    case MIXRT_ATTR_FLOATS:
        if (x->n != y->n || (x->n && memcmp(x->floats, y->floats, x->n * sizeof(float)))) DIFF("%s: floats differ", sub);
        break;
    case MIXRT_ATTR_INTS:
        if (x->n != y->n || (x->n && memcmp(x->ints, y->ints, x->n * sizeof(int64_t)))) DIFF("%s: ints differ", sub);
        break;
    case MIXRT_ATTR_STRINGS:
        if (x->n != y->n) DIFF("%s: %zu vs %zu strings", sub, x->n, y->n);
        for (size_t i = 0; i < x->n; i++)
            if (x->string_lens[i] != y->string_lens[i] ||
                (x->string_lens[i] && memcmp(x->strings[i], y->strings[i], x->string_lens[i])))
                DIFF("%s: string #%zu differs", sub, i);
        break;
    case MIXRT_ATTR_TENSOR:
        if (!same_tensor(x->t, y->t)) DIFF("%s: tensor differs", sub);
        break;
    case MIXRT_ATTR_TENSORS:
        if (x->n != y->n) DIFF("%s: %zu vs %zu tensors", sub, x->n, y->n);
        for (size_t i = 0; i < x->n; i++)
            if (!same_tensor(x->tensors[i], y->tensors[i])) DIFF("%s: tensor #%zu differs", sub, i);
        break;
    case MIXRT_ATTR_GRAPH:
        return same_graph(x->g, y->g, sub);
    case MIXRT_ATTR_GRAPHS:
        if (x->n != y->n) DIFF("%s: %zu vs %zu graphs", sub, x->n, y->n);
        for (size_t i = 0; i < x->n; i++)
            if (!same_graph(x->graphs[i], y->graphs[i], sub)) return false;
        break;
    default:
        break;
    }
    return true;
}

static bool read_by_node(const struct mixrt_graph *g, int vi) {
    for (int n = 0; n < g->n_nodes; n++)
        for (int i = 0; i < g->nodes[n].n_inputs; i++)
            if (g->nodes[n].inputs[i] == vi) return true;
    return false;
}

static const char *vname(const struct mixrt_graph *g, int vi) { return vi < 0 ? "" : g->values[vi].name; }

static bool same_graph(const struct mixrt_graph *a, const struct mixrt_graph *b, const char *where) {
    char w[600];
    snprintf(w, sizeof(w), "%.400s graph '%.150s'", where, a->name);
    if (!same_str(a->name, b->name)) DIFF("%s: renamed to '%s'", w, b->name);
    if (a->n_nodes != b->n_nodes) DIFF("%s: %d vs %d nodes", w, a->n_nodes, b->n_nodes);
    if (!relaxed && a->n_values != b->n_values) DIFF("%s: %d vs %d values", w, a->n_values, b->n_values);
    for (int i = 0; i < b->n_values; i++)
        if (mixrt_graph_find_value(a, b->values[i].name) < 0) DIFF("%s: value '%s' is new", w, b->values[i].name);
    if (a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs)
        DIFF("%s: %d/%d vs %d/%d inputs/outputs", w, a->n_inputs, a->n_outputs, b->n_inputs, b->n_outputs);
    for (int i = 0; i < a->n_inputs; i++)
        if (strcmp(vname(a, a->inputs[i]), vname(b, b->inputs[i]))) DIFF("%s: input #%d renamed", w, i);
    for (int i = 0; i < a->n_outputs; i++)
        if (strcmp(vname(a, a->outputs[i]), vname(b, b->outputs[i]))) DIFF("%s: output #%d renamed", w, i);
    for (int s = 0; s < a->n_nodes; s++) {
        const struct mixrt_node *x = &a->nodes[a->order[s]], *y = &b->nodes[b->order[s]];
        char nw[800];
        snprintf(nw, sizeof(nw), "%.600s node #%d %.60s '%.100s'", w, s, x->op_type, x->name);
        if (strcmp(x->name, y->name) || strcmp(x->op_type, y->op_type) || strcmp(x->domain, y->domain))
            DIFF("%s: is %s '%s' (domain '%s') after the round trip", nw, y->op_type, y->name, y->domain);
        if (x->opset != y->opset) DIFF("%s: opset %lld vs %lld", nw, (long long)x->opset, (long long)y->opset);
        if (x->n_inputs != y->n_inputs || x->n_outputs != y->n_outputs || x->n_attrs != y->n_attrs)
            DIFF("%s: input/output/attribute counts differ", nw);
        for (int i = 0; i < x->n_inputs; i++)
            if (strcmp(vname(a, x->inputs[i]), vname(b, y->inputs[i]))) DIFF("%s: input #%d differs", nw, i);
        for (int i = 0; i < x->n_outputs; i++)
            if (strcmp(vname(a, x->outputs[i]), vname(b, y->outputs[i]))) DIFF("%s: output #%d differs", nw, i);
        for (int i = 0; i < x->n_attrs; i++)
            if (!same_attr(&x->attrs[i], &y->attrs[i], nw)) return false;
    }
    const unsigned mask = MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT | MIXRT_VALUE_OUTER |
                          MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL;
    for (int i = 0; i < a->n_values; i++) {
        const struct mixrt_value *x = &a->values[i];
        int j = mixrt_graph_find_value(b, x->name);
        if (j < 0 && relaxed && !(x->flags & mask) && !read_by_node(a, i)) continue;
        if (j < 0) DIFF("%s: value '%s' is gone", w, x->name);
        const struct mixrt_value *y = &b->values[j];
        if (x->dtype != y->dtype || x->rank != y->rank)
            DIFF("%s: value '%s' is %s rank %d, was %s rank %d", w, x->name, mixrt_dtype_name(y->dtype), y->rank,
                 mixrt_dtype_name(x->dtype), x->rank);
        for (int d = 0; d < x->rank; d++)
            if (x->dims[d].value != y->dims[d].value || !same_str(x->dims[d].param, y->dims[d].param))
                DIFF("%s: value '%s' dim %d differs", w, x->name, d);
        if ((x->flags & mask) != (y->flags & mask))
            DIFF("%s: value '%s' flags 0x%x vs 0x%x", w, x->name, x->flags, y->flags);
        if (!x->init != !y->init || !same_tensor(x->init, y->init)) DIFF("%s: value '%s' data differs", w, x->name);
    }
    return true;
}

/* Every initializer of g (subgraphs too) borrows the blob when one was used. */
static bool all_borrowed(const struct mixrt_graph *g, const struct blob *b) {
    for (int i = 0; i < g->n_values; i++) {
        const struct mixrt_tensor *t = g->values[i].init;
        if (!t || t->dtype == MIXRT_DTYPE_STRING || !t->nbytes || (g->values[i].flags & MIXRT_VALUE_OUTER)) continue;
        const uint8_t *p = t->data;
        if (t->flags & (MIXRT_TENSOR_OWNS_DATA | MIXRT_TENSOR_OWNS_MAPPING) || p < b->data ||
            p + t->nbytes > b->data + b->size || ((uintptr_t)p % 64))
            DIFF("initializer '%s' is not borrowed from the blob", g->values[i].name);
    }
    for (int n = 0; n < g->n_nodes; n++)
        for (int k = 0; k < g->nodes[n].n_attrs; k++) {
            const struct mixrt_attr *at = &g->nodes[n].attrs[k];
            if (at->g && !all_borrowed(at->g, b)) return false;
            for (size_t j = 0; at->graphs && j < at->n; j++)
                if (!all_borrowed(at->graphs[j], b)) return false;
        }
    return true;
}

/* ---- running on the test data ---- */
struct data_set {
    struct mixrt_tensor *in[MAX_IO];
    char *in_name[MAX_IO];
    size_t n_in;
};

static void data_set_free(struct data_set *ds) {
    for (size_t i = 0; i < ds->n_in; i++) {
        mixrt_tensor_destroy(ctx, ds->in[i]);
        if (ds->in_name[i]) mixrt_free(ctx, ds->in_name[i], strlen(ds->in_name[i]) + 1);
    }
    memset(ds, 0, sizeof(*ds));
}

/* Reads input_*.pb; false when one is not a plain tensor (sequences, optionals). */
static bool read_inputs(const char *dir, struct data_set *ds) {
    char path[4200];
    for (size_t i = 0; i < MAX_IO; i++) {
        snprintf(path, sizeof(path), "%.4000s/input_%zu.pb", dir, i);
        if (!file_exists(path)) break;
        if (mixrt_pb_read(ctx, path, &ds->in[i], &ds->in_name[i]) != MIXRT_STATUS_OK) return false;
        ds->n_in = i + 1;
    }
    return true;
}

/* Binds inputs by name, else by position among inputs without initializers (as the
 * conformance runner does), and runs. outs has room for the model's outputs. */
static mixrt_status run_model(mixrt_model_t m, struct data_set *ds, struct mixrt_tensor **outs) {
    size_t n_inputs = mixrt_model_input_count(m), n_free = 0;
    struct mixrt_value_info info[MAX_IO];
    size_t free_in[MAX_IO];
    const char *names[MAX_IO];
    const struct mixrt_tensor *ins[MAX_IO];
    if (n_inputs > MAX_IO || mixrt_model_output_count(m) > MAX_IO)
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "too many inputs/outputs for the test");
    for (size_t i = 0; i < n_inputs; i++) {
        mixrt_model_get_input(m, i, &info[i]);
        if (!info[i].has_initializer) free_in[n_free++] = i;
    }
    for (size_t i = 0; i < ds->n_in; i++) {
        const char *name = NULL;
        size_t k = 0;
        for (size_t j = 0; j < n_inputs && ds->in_name[i] && !name; j++)
            if (!strcmp(info[j].name, ds->in_name[i])) name = info[k = j].name;
        if (!name) {
            if (i >= n_free) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "input_%zu.pb has no input", i);
            k = free_in[i];
            name = info[k].name;
        }
        if (info[k].dtype == MIXRT_DTYPE_BF16 && ds->in[i]->dtype == MIXRT_DTYPE_U16) ds->in[i]->dtype = MIXRT_DTYPE_BF16;
        names[i] = name;
        ins[i] = ds->in[i];
    }
    return mixrt_model_run(m, ds->n_in, names, ins, outs);
}

static void outs_free(struct mixrt_tensor **outs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        mixrt_tensor_destroy(ctx, outs[i]);
        outs[i] = NULL;
    }
}

static bool same_outputs(struct mixrt_tensor **a, struct mixrt_tensor **b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!same_tensor(a[i], b[i])) DIFF("output #%zu differs", i);
    return true;
}

/* ---- the round trip of one case ---- */
struct counts {
    int cases, refused, round_tripped, structure_only, first_run_failed, nondeterministic, failed, runs;
    int passes_refused, planned_run_failed, planned_round_tripped;
};

static char dump_name[4100];

/* Exports model m's graph (blob set: weights into it), imports it again. */
static mixrt_status reimport(mixrt_model_t m, struct blob *b, bool skip_unused, mixrt_model_t *out) {
    struct mixrt_onnx_export_opts o = {0};
    o.skip_unused_initializers = skip_unused;
    if (b) {
        o.put_weight = blob_put;
        o.user = b;
        o.blob_location = BLOB_LOCATION;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    mixrt_status st = mixrt_onnx_export(ctx, mixrt_model_graph(m), &o, &buf, &len);
    if (st != MIXRT_STATUS_OK) return st;
    struct mixrt_external_policy ext = {0};
    if (b) {
        ext.blob = b->data;
        ext.blob_size = b->size;
        ext.blob_location = BLOB_LOCATION;
    }
    /* MIXRT_EXPORT_DUMP=folder keeps the inline exports, for checking with other tools
     * (e.g. onnx.checker). */
    const char *dump = getenv("MIXRT_EXPORT_DUMP");
    if (dump && !b && !skip_unused && dump_name[0]) {
        char path[4400];
        snprintf(path, sizeof(path), "%.300s/%.4000s.onnx", dump, dump_name);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(buf, 1, len, f);
            fclose(f);
        }
    }
    st = mixrt_model_load_buffer_ext(ctx, buf, len, "<exported>", &ext, true, out);
    mixrt_free(ctx, buf, len);
    return st;
}

/* The three round trips: the imported graph inline and through the blob, and the
 * planned graph (all passes run, as the engine builder does) through the blob with
 * unused initializers left out. Each is compared with its own source model. */
enum { MODE_INLINE, MODE_BLOB, MODE_PLANNED, N_MODES };
static const char *const mode_name[N_MODES] = {"inline", "blob", "planned"};

static void round_trip_case(const char *suite, const char *case_dir, const char *case_name, struct counts *c) {
    char path[4200];
    snprintf(path, sizeof(path), "%.4000s/model.onnx", case_dir);
    if (!file_exists(path)) return;
    c->cases++;
    mixrt_model_t orig = NULL, planned = NULL, rt[N_MODES] = {NULL, NULL, NULL};
    struct blob blob[N_MODES];
    for (int m = 0; m < N_MODES; m++) blob[m] = (struct blob){NULL, 0, 0, 0, -1};
    snprintf(dump_name, sizeof(dump_name), "%.40s__%.4000s", suite, case_name);
    if (mixrt_model_load(ctx, path, &orig) != MIXRT_STATUS_OK) {
        c->refused++;
        mixrt_context_clear_error(ctx);
        return;
    }
    /* The planned source: a second load with the graph passes applied. */
    if (mixrt_model_load(ctx, path, &planned) != MIXRT_STATUS_OK ||
        mixrt_passes_run(mixrt_model_graph_mut(planned), MIXRT_PASS_ALL, NULL) != MIXRT_STATUS_OK) {
        c->passes_refused++;
        mixrt_model_destroy(planned);
        planned = NULL;
        mixrt_context_clear_error(ctx);
    }
    mixrt_model_t src[N_MODES] = {orig, orig, planned};
    bool ok = true;
    for (int mode = 0; mode < N_MODES && ok; mode++) {
        if (!src[mode]) continue;
        relaxed = mode == MODE_PLANNED;
        if (reimport(src[mode], mode != MODE_INLINE ? &blob[mode] : NULL, mode == MODE_PLANNED, &rt[mode]) !=
            MIXRT_STATUS_OK) {
            TU_CHECK(0, "%s/%s (%s): export/reimport failed: %s", suite, case_name, mode_name[mode],
                     mixrt_context_last_error(ctx));
            ok = false;
        } else if (!same_graph(mixrt_model_graph(src[mode]), mixrt_model_graph(rt[mode]), "main")) {
            TU_CHECK(0, "%s/%s (%s): structure: %s", suite, case_name, mode_name[mode], why);
            ok = false;
        } else if (mode != MODE_INLINE && !all_borrowed(mixrt_model_graph(rt[mode]), &blob[mode])) {
            TU_CHECK(0, "%s/%s (%s): %s", suite, case_name, mode_name[mode], why);
            ok = false;
        } else {
            tu_checks++;
        }
    }
    relaxed = false;
    int sets_run = 0;
    bool slow = false, first_failed = false, nondet = false;
    size_t n_outs = mixrt_model_output_count(orig);
    for (int s = 0; ok && !slow && !first_failed; s++) {
        char set_dir[4300];
        snprintf(set_dir, sizeof(set_dir), "%.4000s/test_data_set_%d", case_dir, s);
        if (!file_exists(set_dir)) break;
        struct data_set ds;
        memset(&ds, 0, sizeof(ds));
        if (!read_inputs(set_dir, &ds)) {
            mixrt_context_clear_error(ctx);
            data_set_free(&ds);
            continue;
        }
        struct mixrt_tensor *ref[2][MAX_IO] = {{0}}, *o1[MAX_IO] = {0};
        double t0 = now_s();
        if (run_model(orig, &ds, ref[0]) != MIXRT_STATUS_OK) {
            first_failed = true;
        } else if (now_s() - t0 > SLOW_RUN_S) {
            slow = true;
        } else {
            /* A planned source whose own run fails has nothing to compare with. */
            if (planned && run_model(planned, &ds, ref[1]) != MIXRT_STATUS_OK) {
                c->planned_run_failed++;
                mixrt_model_destroy(planned);
                planned = src[MODE_PLANNED] = NULL;
                mixrt_context_clear_error(ctx);
            }
            for (int mode = 0; mode < N_MODES && ok; mode++) {
                if (!src[mode]) continue;
                struct mixrt_tensor **r = ref[mode == MODE_PLANNED];
                c->runs++;
                if (run_model(rt[mode], &ds, o1) != MIXRT_STATUS_OK) {
                    TU_CHECK(0, "%s/%s (%s): the round-tripped model fails to run: %s", suite, case_name,
                             mode_name[mode], mixrt_context_last_error(ctx));
                    ok = false;
                } else if (!same_outputs(r, o1, n_outs)) {
                    /* Random ops: the source must reproduce itself for a difference to count. */
                    struct mixrt_tensor *o2[MAX_IO] = {0};
                    if (run_model(src[mode], &ds, o2) == MIXRT_STATUS_OK && !same_outputs(r, o2, n_outs)) {
                        nondet = true;
                    } else {
                        TU_CHECK(0, "%s/%s (%s) data set %d: %s", suite, case_name, mode_name[mode], s, why);
                        ok = false;
                    }
                    outs_free(o2, n_outs);
                } else {
                    tu_checks++;
                }
                outs_free(o1, n_outs);
            }
            sets_run++;
        }
        outs_free(ref[0], n_outs);
        outs_free(ref[1], n_outs);
        data_set_free(&ds);
    }
    mixrt_context_clear_error(ctx);
    if (!ok) {
        c->failed++;
    } else if (first_failed) {
        c->first_run_failed++;
        printf("    first run failed (structure compared): %s/%s\n", suite, case_name);
    } else if (nondet) {
        c->nondeterministic++;
        printf("    nondeterministic (structure compared): %s/%s\n", suite, case_name);
    } else if (slow || sets_run == 0) {
        c->structure_only++;
        printf("    structure only (%s): %s/%s\n", slow ? "slow" : "no plain-tensor data set", suite, case_name);
    } else {
        c->round_tripped++;
        if (planned) c->planned_round_tripped++;
    }
    for (int m = 0; m < N_MODES; m++) {
        mixrt_model_destroy(rt[m]);
        blob_free(&blob[m]);
    }
    mixrt_model_destroy(planned);
    mixrt_model_destroy(orig);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void round_trip_suite(const char *suite, struct counts *total) {
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", DATA_ROOT, suite);
    DIR *d = opendir(dir);
    if (!d) {
        printf("  %s: not installed, skipped\n", dir);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof(*names));
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof(*names), cmp_names);
    struct counts c = {0};
    for (size_t i = 0; i < n; i++) {
        char case_dir[1024];
        snprintf(case_dir, sizeof(case_dir), "%s/%s", dir, names[i]);
        round_trip_case(suite, case_dir, names[i], &c);
        free(names[i]);
    }
    free(names);
    printf("  %-18s %4d cases: %4d round-tripped (run; %d of them planned too), %3d structure-only, %3d first run "
           "failed, %2d nondeterministic, %3d refused by the first import, %d failed\n",
           suite, c.cases, c.round_tripped, c.planned_round_tripped, c.structure_only, c.first_run_failed,
           c.nondeterministic, c.refused, c.failed);
    if (c.passes_refused || c.planned_run_failed)
        printf("  %-18s planned: passes refused %d, planned model's own run failed %d (not compared)\n", suite,
               c.passes_refused, c.planned_run_failed);
    total->cases += c.cases;
    total->refused += c.refused;
    total->round_tripped += c.round_tripped;
    total->structure_only += c.structure_only;
    total->first_run_failed += c.first_run_failed;
    total->nondeterministic += c.nondeterministic;
    total->failed += c.failed;
    total->runs += c.runs;
    total->passes_refused += c.passes_refused;
    total->planned_run_failed += c.planned_run_failed;
    total->planned_round_tripped += c.planned_round_tripped;
}

/* ---- hostile blob references ---- */

/* Where the hostile tensor sits: an initializer, a Constant node's value, or a tensor
 * attribute (ConstantOfShape's value, whose data must be one element). */
enum hostile_site { SITE_INITIALIZER, SITE_CONSTANT, SITE_ATTRIBUTE };
static enum hostile_site site;

/* A model: tensor 'W' (dtype, dims {n}) at external location loc with the given
 * offset/length strings (NULL: key absent), as an initializer or a Constant's value
 * (Identity(W) -> Y), or as ConstantOfShape's value attribute (shape [2] -> Y). */
static uint8_t *hostile_model(const char *loc, const char *offset, const char *length, mixrt_dtype dt, int64_t n,
                              size_t *len) {
    Onnx__ModelProto mp;
    Onnx__GraphProto gp;
    Onnx__NodeProto np;
    Onnx__TensorProto tp;
    Onnx__ValueInfoProto out;
    Onnx__OperatorSetIdProto op;
    Onnx__StringStringEntryProto e[3], *ep[3];
    onnx__model_proto__init(&mp);
    onnx__graph_proto__init(&gp);
    onnx__node_proto__init(&np);
    onnx__tensor_proto__init(&tp);
    onnx__value_info_proto__init(&out);
    onnx__operator_set_id_proto__init(&op);
    mp.has_ir_version = 1;
    mp.ir_version = 8;
    op.domain = "";
    op.has_version = 1;
    op.version = 17;
    Onnx__OperatorSetIdProto *ops[1] = {&op};
    mp.opset_import = ops;
    mp.n_opset_import = 1;
    mp.graph = &gp;
    gp.name = "hostile";
    char *in[1] = {"W"}, *outn[1] = {"Y"};
    np.op_type = "Identity";
    np.input = in;
    np.n_input = 1;
    np.output = outn;
    np.n_output = 1;
    Onnx__NodeProto *nodes[1] = {&np};
    gp.node = nodes;
    gp.n_node = 1;
    tp.name = "W";
    tp.has_data_type = 1;
    tp.data_type = (int32_t)dt;
    int64_t dims[1] = {n};
    tp.dims = dims;
    tp.n_dims = 1;
    tp.has_data_location = 1;
    tp.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    const char *keys[3] = {"location", "offset", "length"}, *vals[3] = {loc, offset, length};
    for (int i = 0; i < 3; i++) {
        onnx__string_string_entry_proto__init(&e[i]);
        e[i].key = (char *)keys[i];
        e[i].value = (char *)vals[i];
        if (vals[i]) ep[tp.n_external_data++] = &e[i];
    }
    tp.external_data = ep;
    Onnx__TensorProto *inits[1] = {&tp};
    Onnx__NodeProto cnode;
    Onnx__AttributeProto attr, *attrs[1] = {&attr};
    Onnx__TensorProto shape;
    int64_t shape_dims[1] = {1}, shape_val[1] = {2};
    Onnx__NodeProto *two[2] = {&cnode, &np};
    onnx__node_proto__init(&cnode);
    onnx__attribute_proto__init(&attr);
    onnx__tensor_proto__init(&shape);
    attr.name = "value";
    attr.has_type = 1;
    attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    attr.t = &tp;
    if (site == SITE_INITIALIZER) {
        gp.initializer = inits;
        gp.n_initializer = 1;
    } else if (site == SITE_CONSTANT) {
        cnode.op_type = "Constant";
        cnode.output = in;
        cnode.n_output = 1;
        cnode.attribute = attrs;
        cnode.n_attribute = 1;
        gp.node = two;
        gp.n_node = 2;
    } else {
        /* ConstantOfShape(S) with S = [2] an initializer, value = the hostile tensor. */
        static char *s_in[1] = {"S"};
        shape.name = "S";
        shape.has_data_type = 1;
        shape.data_type = MIXRT_DTYPE_I64;
        shape.dims = shape_dims;
        shape.n_dims = 1;
        shape.int64_data = shape_val;
        shape.n_int64_data = 1;
        inits[0] = &shape;
        gp.initializer = inits;
        gp.n_initializer = 1;
        np.op_type = "ConstantOfShape";
        np.input = s_in;
        np.attribute = attrs;
        np.n_attribute = 1;
    }
    out.name = "Y";
    Onnx__ValueInfoProto *outs[1] = {&out};
    gp.output = outs;
    gp.n_output = 1;
    *len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(*len);
    onnx__model_proto__pack(&mp, buf);
    return buf;
}

/* Imports the hostile model against blob (size bytes). want OK: checks the data is
 * borrowed at blob + offset; otherwise the status and that the message has `needle`. */
static void hostile_case(const char *label, const char *loc, const char *offset, const char *length,
                         mixrt_dtype dt, int64_t n, const uint8_t *blob, uint64_t size, mixrt_status want,
                         const char *needle) {
    size_t len;
    uint8_t *buf = hostile_model(loc, offset, length, dt, n, &len);
    struct mixrt_external_policy ext = {.base_dir = NULL, .blob = blob, .blob_size = size, .blob_location = BLOB_LOCATION};
    mixrt_model_t m = NULL;
    size_t before = mixrt_context_bytes_in_use(ctx);
    mixrt_status st = mixrt_model_load_buffer_ext(ctx, buf, len, "<hostile>", &ext, true, &m);
    const char *msg = mixrt_context_last_error(ctx);
    TU_CHECK(st == want, "hostile %s: status %s, expected %s (%s)", label, mixrt_status_string(st),
             mixrt_status_string(want), msg);
    if (st == MIXRT_STATUS_OK && m) {
        const struct mixrt_graph *g = mixrt_model_graph(m);
        const struct mixrt_tensor *t = NULL;
        if (site == SITE_ATTRIBUTE) {
            for (int i = 0; i < g->n_nodes; i++)
                if (!strcmp(g->nodes[i].op_type, "ConstantOfShape") && g->nodes[i].n_attrs == 1)
                    t = g->nodes[i].attrs[0].t;
        } else {
            int vi = mixrt_graph_find_value(g, "W");
            t = vi >= 0 ? g->values[vi].init : NULL;
        }
        uint64_t off = offset ? strtoull(offset, NULL, 10) : 0;
        TU_CHECK(t && (t->nbytes == 0 || t->data == blob + off) && !(t->flags & (MIXRT_TENSOR_OWNS_DATA |
                 MIXRT_TENSOR_OWNS_MAPPING)), "hostile %s: W is not borrowed at blob + %llu", label,
                 (unsigned long long)off);
        /* And it runs: Identity copies the borrowed bytes out; ConstantOfShape repeats them. */
        struct mixrt_tensor *y = NULL;
        TU_CHECK(mixrt_model_run(m, 0, NULL, NULL, &y) == MIXRT_STATUS_OK, "hostile %s: run: %s", label,
                 mixrt_context_last_error(ctx));
        int copies = site == SITE_ATTRIBUTE ? 2 : 1;
        bool same = y && t && y->nbytes == t->nbytes * (size_t)copies;
        for (int k = 0; same && k < copies; k++)
            same = !t->nbytes || !memcmp((uint8_t *)y->data + k * t->nbytes, blob + off, t->nbytes);
        TU_CHECK(same, "hostile %s: the output differs from the blob bytes", label);
        mixrt_tensor_destroy(ctx, y);
    } else if (st != MIXRT_STATUS_OK) {
        TU_CHECK(strstr(msg, needle) != NULL, "hostile %s: message '%s' lacks '%s'", label, msg, needle);
        TU_CHECK(strstr(msg, "'W'") != NULL, "hostile %s: message '%s' does not name the tensor", label, msg);
    }
    mixrt_model_destroy(m);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == before, "hostile %s: %zu bytes leaked", label,
             mixrt_context_bytes_in_use(ctx) - before);
    mixrt_context_clear_error(ctx);
    free(buf);
}

static void test_hostile(void) {
    static _Alignas(64) uint8_t blob[256];
    for (size_t i = 0; i < sizeof(blob); i++) blob[i] = (uint8_t)(i * 7 + 1);
    const mixrt_status OK = MIXRT_STATUS_OK, BAD = MIXRT_STATUS_INVALID_MODEL;
    hostile_case("in range", BLOB_LOCATION, "64", "16", MIXRT_DTYPE_F32, 4, blob, 256, OK, "");
    hostile_case("at the very end", BLOB_LOCATION, "240", "16", MIXRT_DTYPE_F32, 4, blob, 256, OK, "");
    hostile_case("no length key", BLOB_LOCATION, "240", NULL, MIXRT_DTYPE_F32, 4, blob, 256, OK, "");
    hostile_case("empty tensor at the end", BLOB_LOCATION, "256", "0", MIXRT_DTYPE_F32, 0, blob, 256, OK, "");
    hostile_case("bf16 at an even offset", BLOB_LOCATION, "2", "8", MIXRT_DTYPE_BF16, 4, blob, 256, OK, "");
    hostile_case("u8 at an odd offset", BLOB_LOCATION, "3", "5", MIXRT_DTYPE_U8, 5, blob, 256, OK, "");
    hostile_case("offset beyond the end", BLOB_LOCATION, "257", "0", MIXRT_DTYPE_F32, 0, blob, 256, BAD,
                 "beyond its end");
    hostile_case("huge offset", BLOB_LOCATION, "18446744073709551615", "16", MIXRT_DTYPE_F32, 4, blob, 256, BAD,
                 "beyond its end");
    hostile_case("offset+length beyond", BLOB_LOCATION, "248", "16", MIXRT_DTYPE_F32, 4, blob, 256, BAD,
                 "beyond its end");
    hostile_case("length wraps", BLOB_LOCATION, "16", "18446744073709551615", MIXRT_DTYPE_F32, 4, blob, 256, BAD,
                 "beyond its end");
    hostile_case("misaligned f32", BLOB_LOCATION, "66", "16", MIXRT_DTYPE_F32, 4, blob, 256, BAD, "not aligned");
    hostile_case("misaligned f64", BLOB_LOCATION, "4", "16", MIXRT_DTYPE_F64, 2, blob, 256, BAD, "not aligned");
    hostile_case("length too short", BLOB_LOCATION, "0", "12", MIXRT_DTYPE_F32, 4, blob, 256, BAD, "expected 16");
    hostile_case("length too long", BLOB_LOCATION, "0", "20", MIXRT_DTYPE_F32, 4, blob, 256, BAD, "expected 16");
    hostile_case("no length, rest too long", BLOB_LOCATION, "0", NULL, MIXRT_DTYPE_F32, 4, blob, 256, BAD,
                 "expected 16");
    hostile_case("offset not a number", BLOB_LOCATION, "12abc", "16", MIXRT_DTYPE_F32, 4, blob, 256, BAD,
                 "not a non-negative integer");
    hostile_case("negative length", BLOB_LOCATION, "0", "-16", MIXRT_DTYPE_F32, 4, blob, 256, BAD,
                 "not a non-negative integer");
    hostile_case("no blob given", BLOB_LOCATION, "0", "16", MIXRT_DTYPE_F32, 4, NULL, 256, BAD, "beyond its end");
    hostile_case("string tensor", BLOB_LOCATION, "0", "16", MIXRT_DTYPE_STRING, 1, blob, 256, BAD,
                 "string tensors");
    /* Another location is file-system external data: without a base folder, refused. */
    hostile_case("other location, no folder", "weights.bin", "0", "16", MIXRT_DTYPE_F32, 4, blob, 256, BAD,
                 "not allowed");
    /* The location must match exactly. */
    hostile_case("location prefix", "@weight", "0", "16", MIXRT_DTYPE_F32, 4, blob, 256, BAD, "not allowed");

    /* The same checks for a Constant node's value and a tensor attribute. */
    for (site = SITE_CONSTANT; site <= SITE_ATTRIBUTE; site++) {
        bool attr = site == SITE_ATTRIBUTE;
        int64_t n = attr ? 1 : 4;
        const char *len = attr ? "4" : "16";
        hostile_case(attr ? "attribute in range" : "Constant in range", BLOB_LOCATION, "128", len, MIXRT_DTYPE_F32,
                     n, blob, 256, OK, "");
        hostile_case(attr ? "attribute beyond" : "Constant beyond", BLOB_LOCATION, "254", len, MIXRT_DTYPE_F32, n,
                     blob, 256, BAD, "beyond its end");
        hostile_case(attr ? "attribute misaligned" : "Constant misaligned", BLOB_LOCATION, "129", len,
                     MIXRT_DTYPE_F32, n, blob, 256, BAD, "not aligned");
        hostile_case(attr ? "attribute length" : "Constant length", BLOB_LOCATION, "128", "8", MIXRT_DTYPE_F32, n,
                     blob, 256, BAD, attr ? "expected 4" : "expected 16");
    }
    site = SITE_INITIALIZER;
}

/* ---- export API errors and allocation failures ---- */
static void test_export_errors(void) {
    char path[512];
    snprintf(path, sizeof(path), "%s/node/test_if/model.onnx", DATA_ROOT);
    if (!file_exists(path)) snprintf(path, sizeof(path), "%s/node/test_abs/model.onnx", DATA_ROOT);
    mixrt_model_t m = NULL;
    if (mixrt_model_load(ctx, path, &m) != MIXRT_STATUS_OK) {
        printf("  (export error tests skipped: %s: %s)\n", path, mixrt_context_last_error(ctx));
        return;
    }
    const struct mixrt_graph *g = mixrt_model_graph(m);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct mixrt_onnx_export_opts o = {0};
    o.put_weight = blob_put;
    TU_CHECK(mixrt_onnx_export(ctx, g, &o, &buf, &len) == MIXRT_STATUS_INVALID_ARGUMENT && !buf,
             "put_weight without blob_location must be refused");
    TU_CHECK(mixrt_onnx_export(ctx, NULL, NULL, &buf, &len) == MIXRT_STATUS_INVALID_ARGUMENT, "NULL graph");
    TU_CHECK(mixrt_onnx_export(ctx, g, NULL, NULL, &len) == MIXRT_STATUS_INVALID_ARGUMENT, "NULL buf");
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_attrs; k++)
            if (g->nodes[i].attrs[k].g) {
                TU_CHECK(mixrt_onnx_export(ctx, g->nodes[i].attrs[k].g, NULL, &buf, &len) ==
                             MIXRT_STATUS_INVALID_ARGUMENT, "exporting a subgraph alone must be refused");
                i = g->n_nodes;
                break;
            }

    /* A failing callback: its status comes back, named, nothing leaks. */
    struct blob b = {NULL, 0, 0, 0, 0};
    o.user = &b;
    o.blob_location = BLOB_LOCATION;
    size_t before = mixrt_context_bytes_in_use(ctx);
    mixrt_status st = mixrt_onnx_export(ctx, g, &o, &buf, &len);
    bool has_weights = b.puts > 0 || st != MIXRT_STATUS_OK;
    if (has_weights)
        TU_CHECK(st == MIXRT_STATUS_IO_ERROR && strstr(mixrt_context_last_error(ctx), "blob is full"),
                 "failing put_weight: %s (%s)", mixrt_status_string(st), mixrt_context_last_error(ctx));
    if (st == MIXRT_STATUS_OK) mixrt_free(ctx, buf, len);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == before, "failing put_weight leaked");
    blob_free(&b);

    /* Every allocation of an export fails in turn: a clean OUT_OF_MEMORY, no leak. */
    int n_fail = 0;
    for (long k = 0; k < 100000; k++) {
        before = mixrt_context_bytes_in_use(ctx);
        mixrt_context_fail_alloc_after(ctx, k, 0);
        buf = NULL;
        st = mixrt_onnx_export(ctx, g, NULL, &buf, &len);
        mixrt_context_fail_alloc_after(ctx, -1, 0);
        if (st == MIXRT_STATUS_OK) {
            mixrt_free(ctx, buf, len);
            TU_CHECK(mixrt_context_bytes_in_use(ctx) == before, "export leaked");
            break;
        }
        n_fail++;
        TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY && !buf, "allocation %ld failing gave %s", k, mixrt_status_string(st));
        TU_CHECK(mixrt_context_bytes_in_use(ctx) == before, "allocation %ld failing leaked %zu bytes", k,
                 mixrt_context_bytes_in_use(ctx) - before);
    }
    TU_CHECK(n_fail > 0, "no allocation failure was injected");
    printf("  export errors: %d injected allocation failures handled\n", n_fail);
    mixrt_context_clear_error(ctx);
    mixrt_model_destroy(m);
}

int main(int argc, char **argv) {
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    test_hostile();
    test_export_errors();
    struct counts total = {0};
    double t0 = now_s();
    static const char *const suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        if (argc > 1 && !strstr(suites[i], argv[1])) continue;
        round_trip_suite(suites[i], &total);
    }
    printf("  %d cases: %d refused by the first import; of the %d accepted, %d structure-only (first run > %.0f s "
           "or no plain-tensor data set), %d first run failed, %d nondeterministic (outputs differ run to run)\n",
           total.cases, total.refused, total.cases - total.refused, total.structure_only, SLOW_RUN_S,
           total.first_run_failed, total.nondeterministic);
    printf("  planned (passes, blob, unused initializers dropped): %d round-tripped with runs; passes refused %d, "
           "planned model's own run failed %d\n", total.planned_round_tripped, total.passes_refused,
           total.planned_run_failed);
    printf("%d round-tripped, %d failed (%d runs of re-imported models: inline, blob, planned; %.1f s)\n",
           total.round_tripped, total.failed, total.runs, now_s() - t0);
    TU_CHECK(total.failed == 0, "%d cases failed the round trip", total.failed);
    mixrt_context_destroy(ctx);
    return tu_finish("test_export");
}
