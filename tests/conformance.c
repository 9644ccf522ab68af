/* conformance.c - mixrt_conformance: runs the ONNX backend test cases (libonnx-testdata)
 * through the public API (mixrt_model_load/run, mixrt_pb_read) and compares with the
 * expected outputs (f32), or runs their bf16/f16 conversions (scripts/convert_dtype.py)
 * against the f32 model on the same rounded data. One line per case; a FAIL carries its
 * reason and a repro command. A case is SKIPped only for an unsupported operator or data
 * that is not a plain tensor; N/A only when the converter found nothing to convert. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/core.h"
#include "mixrt/mixrt.h"
#include "mixrt/mixrt_io.h"
#include "mixrt/mixrt_engine.h"
#include "mixrt/mixrt_onnx.h"
#include "onnx.pb-c.h"

#define RTOL 1e-3
#define ATOL 1e-7

enum verdict { V_PASS, V_FAIL, V_SKIP, V_NA };

struct options {
    const char *data_dir;
    char *suites; /* comma list, owned copy */
    const char *filter;
    bool verbose;
    const char *write_pass;
    const char *expect;
    mixrt_dtype variant; /* F32: the suites as shipped; BF16/F16: converted cases */
    double tol;          /* relative L2 tolerance of a 16-bit variant */
    const char *report;  /* CSV: one row per case */
};

struct strlist {
    char **v;
    size_t n, cap;
};

static void strlist_add(struct strlist *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(char *));
        if (!l->v) {
            fprintf(stderr, "mixrt_conformance: out of memory\n");
            exit(2);
        }
    }
    l->v[l->n] = strdup(s);
    if (!l->v[l->n]) {
        fprintf(stderr, "mixrt_conformance: out of memory\n");
        exit(2);
    }
    l->n++;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool strlist_has(const struct strlist *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return true;
    return false;
}

static void strlist_free(struct strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Sorted entries of dir whose names start with prefix. */
static void list_dir(const char *dir, const char *prefix, struct strlist *out) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) strlist_add(out, e->d_name);
    closedir(d);
    if (out->n) qsort(out->v, out->n, sizeof(char *), cmp_str);
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The distinct op types of the model's main graph ("Conv,Relu"), for grouping failures. */
static void model_ops(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "rb");
    buf[0] = 0;
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    uint8_t *data = len > 0 ? malloc((size_t)len) : NULL;
    if (!data || fread(data, 1, (size_t)len, f) != (size_t)len) {
        free(data);
        fclose(f);
        return;
    }
    fclose(f);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, (size_t)len, data);
    free(data);
    if (!m) return;
    size_t off = 0;
    if (m->graph)
        for (size_t i = 0; i < m->graph->n_node; i++) {
            const char *op = m->graph->node[i]->op_type ? m->graph->node[i]->op_type : "?";
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = m->graph->node[j]->op_type && !strcmp(m->graph->node[j]->op_type, op);
            if (seen) continue;
            int n = snprintf(buf + off, size - off, "%s%s", off ? "," : "", op);
            if (n < 0 || (size_t)n >= size - off) break;
            off += (size_t)n;
        }
    onnx__model_proto__free_unpacked(m, NULL);
}

/* The operator named by an UNSUPPORTED_OP message, else the whole message. */
static void unsupported_op(const char *msg, char *buf, size_t size) {
    const char *p = strstr(msg, "unsupported operator ");
    if (p) {
        p += strlen("unsupported operator ");
        size_t n = strcspn(p, " :,");
        snprintf(buf, size, "%.*s", (int)n, p);
    } else {
        snprintf(buf, size, "%s", msg);
    }
}

static void desc_of(const struct mixrt_tensor *t, char *buf, size_t size) { mixrt_tensor_desc(buf, size, t); }

/* Compares one output; on mismatch writes a one-line reason. */
static bool compare(const struct mixrt_tensor *got, const struct mixrt_tensor *exp, const char *what, char *reason,
                    size_t rsize, bool verbose) {
    char gd[300], ed[300];
    desc_of(got, gd, sizeof(gd));
    desc_of(exp, ed, sizeof(ed));
    if (got->dtype != exp->dtype) {
        snprintf(reason, rsize, "%s: dtype mismatch: got %s, expected %s", what, gd, ed);
        return false;
    }
    bool same_shape = got->rank == exp->rank;
    for (int i = 0; same_shape && i < got->rank; i++) same_shape = got->dims[i] == exp->dims[i];
    if (!same_shape) {
        snprintf(reason, rsize, "%s: shape mismatch: got %s, expected %s", what, gd, ed);
        return false;
    }
    size_t n = mixrt_tensor_numel(exp), bad = 0, first = 0;
    double max_err = 0, first_a = 0, first_b = 0;
    if (exp->dtype == MIXRT_DTYPE_STRING) {
        const struct mixrt_string *a = got->data, *b = exp->data;
        for (size_t i = 0; i < n; i++)
            if (a[i].len != b[i].len || (b[i].len && memcmp(a[i].ptr, b[i].ptr, b[i].len))) {
                if (!bad) first = i;
                bad++;
            }
        if (bad) {
            snprintf(reason, rsize,
                     "%s: %zu of %zu strings differ; first at flat index %zu: got '%.40s', expected '%.40s'", what, bad,
                     n, first, a[first].ptr ? a[first].ptr : "", b[first].ptr ? b[first].ptr : "");
            return false;
        }
        return true;
    }
    bool is_float = mixrt_dtype_is_float(exp->dtype);
    for (size_t i = 0; i < n; i++) {
        bool ok;
        double a, b;
        if (is_float) {
            a = mixrt_load_f64(got->data, got->dtype, i);
            b = mixrt_load_f64(exp->data, exp->dtype, i);
            if (isnan(b) || isnan(a))
                ok = isnan(a) && isnan(b);
            else if (a == b)
                ok = true;
            else {
                double err = fabs(a - b);
                ok = err <= ATOL + RTOL * fabs(b);
                if (!isinf(err) && err > max_err) max_err = err;
                if (isinf(err)) max_err = INFINITY;
            }
        } else {
            size_t es = mixrt_dtype_size(exp->dtype);
            ok = !memcmp((const uint8_t *)got->data + i * es, (const uint8_t *)exp->data + i * es, es);
            a = (double)mixrt_load_i64(got->data, got->dtype, i);
            b = (double)mixrt_load_i64(exp->data, exp->dtype, i);
        }
        if (!ok) {
            if (!bad) {
                first = i;
                first_a = a;
                first_b = b;
            }
            bad++;
            if (verbose && bad <= 5) fprintf(stderr, "    %s[%zu]: got %.9g, expected %.9g\n", what, i, a, b);
        }
    }
    if (bad) {
        if (is_float)
            snprintf(
                reason, rsize,
                "%s (%s): %zu of %zu values differ; first at flat index %zu: got %.9g, expected %.9g; max abs err %.3g",
                what, ed, bad, n, first, first_a, first_b, max_err);
        else
            snprintf(reason, rsize,
                     "%s (%s): %zu of %zu values differ; first at flat index %zu: got %.17g, expected %.17g", what, ed,
                     bad, n, first, first_a, first_b);
        return false;
    }
    return true;
}

#define MAX_IO 64

struct data_set {
    struct mixrt_tensor *in[MAX_IO], *exp[MAX_IO];
    char *in_name[MAX_IO], *exp_name[MAX_IO];
    size_t n_in, n_exp;
};

static void data_set_free(mixrt_context_t ctx, struct data_set *ds) {
    for (size_t i = 0; i < ds->n_in; i++) {
        mixrt_tensor_destroy(ctx, ds->in[i]);
        if (ds->in_name[i]) mixrt_free(ctx, ds->in_name[i], strlen(ds->in_name[i]) + 1);
    }
    for (size_t i = 0; i < ds->n_exp; i++) {
        mixrt_tensor_destroy(ctx, ds->exp[i]);
        if (ds->exp_name[i]) mixrt_free(ctx, ds->exp_name[i], strlen(ds->exp_name[i]) + 1);
    }
    memset(ds, 0, sizeof(*ds));
}

/* Reads prefix_0.pb, prefix_1.pb, ... of one data set. Returns V_PASS when all read,
 * V_SKIP when one is not a plain tensor (sequences, optionals, maps), V_FAIL otherwise. */
static enum verdict read_pbs(mixrt_context_t ctx, const char *dir, const char *prefix, struct mixrt_tensor **ts,
                             char **names, size_t *n, char *reason, size_t rsize) {
    char path[4096];
    *n = 0;
    for (size_t i = 0; i < MAX_IO; i++) {
        snprintf(path, sizeof(path), "%.4000s/%.20s_%zu.pb", dir, prefix, i);
        if (!file_exists(path)) break;
        mixrt_status st = mixrt_pb_read(ctx, path, &ts[i], &names[i]);
        if (st != MIXRT_STATUS_OK) {
            /* SequenceProto/OptionalProto/MapProto share field numbers with TensorProto
             * but never decode to a tensor with data: such files land here. */
            snprintf(reason, rsize, "%s_%zu.pb is not a plain tensor (%s)", prefix, i, mixrt_context_last_error(ctx));
            return st == MIXRT_STATUS_IO_ERROR || st == MIXRT_STATUS_OUT_OF_MEMORY ? V_FAIL : V_SKIP;
        }
        *n = i + 1;
    }
    return V_PASS;
}

/* --engine: the model under test runs through an engine built with these options
 * (the model object still describes its I/O); its f32 twin of a variant stays on the
 * reference executor. */
static bool g_engine_mode;
static struct mixrt_build_options g_engine_opts;
static struct {
    mixrt_model_t model;
    mixrt_engine_t engine;
} g_engines[2];

static mixrt_engine_t engine_of(mixrt_model_t m) {
    for (int i = 0; i < 2; i++)
        if (m && g_engines[i].model == m) return g_engines[i].engine;
    return NULL;
}

static void model_destroy(mixrt_model_t m) {
    for (int i = 0; i < 2; i++)
        if (m && g_engines[i].model == m) {
            mixrt_engine_destroy(g_engines[i].engine);
            g_engines[i].model = NULL;
            g_engines[i].engine = NULL;
        }
    mixrt_model_destroy(m);
}

/* Loads a model; an unsupported operator is a SKIP, any other error a FAIL. With
 * engine set (and --engine given) it is also built into an engine; an engine's refusal
 * of an unsupported dtype is a SKIP too. */
static enum verdict load_model(mixrt_context_t ctx, const char *path, const char *label, mixrt_model_t *model,
                               bool verbose, char *reason, size_t rsize, bool engine) {
    *model = NULL;
    mixrt_status st = mixrt_model_load(ctx, path, model);
    if (st == MIXRT_STATUS_OK && engine && g_engine_mode) {
        mixrt_engine_t e = NULL;
        st = mixrt_engine_build(ctx, path, &g_engine_opts, &e);
        if (st != MIXRT_STATUS_OK) {
            mixrt_model_destroy(*model);
            *model = NULL;
            if (st == MIXRT_STATUS_UNSUPPORTED_DTYPE) {
                snprintf(reason, rsize, "%sengine: %s", label, mixrt_context_last_error(ctx));
                return V_SKIP;
            }
        } else {
            int slot = g_engines[0].model ? 1 : 0;
            g_engines[slot].model = *model;
            g_engines[slot].engine = e;
        }
    }
    if (st == MIXRT_STATUS_OK) return V_PASS;
    if (st == MIXRT_STATUS_UNSUPPORTED_OP) {
        char op[200];
        unsupported_op(mixrt_context_last_error(ctx), op, sizeof(op));
        snprintf(reason, rsize, "%sunsupported op %s", label, op);
        if (verbose) fprintf(stderr, "    %s\n", mixrt_context_last_error(ctx));
        return V_SKIP;
    }
    snprintf(reason, rsize, "%sload: %s: %s", label, mixrt_status_string(st), mixrt_context_last_error(ctx));
    return V_FAIL;
}

/* Reads the inputs (and, when want_exp, the expected outputs) of one data set folder, binds
 * them to the model's inputs and runs it. On V_PASS outs[0..n_outs) hold the outputs (the
 * caller destroys them and ds). label prefixes the reason ("" for the f32 suite). */
static enum verdict run_set(mixrt_context_t ctx, mixrt_model_t model, const char *set_dir, const char *set_name,
                            bool want_exp, const char *label, struct data_set *ds, struct mixrt_tensor **outs,
                            bool verbose, char *reason, size_t rsize) {
    size_t n_inputs = mixrt_model_input_count(model), n_outs = mixrt_model_output_count(model);
    struct mixrt_value_info in_info[MAX_IO];
    size_t free_inputs[MAX_IO], n_free = 0; /* graph inputs without an initializer */
    if (n_outs > MAX_IO || n_inputs > MAX_IO) {
        snprintf(reason, rsize, "%smodel has %zu inputs and %zu outputs; the runner handles %d", label, n_inputs,
                 n_outs, MAX_IO);
        return V_FAIL;
    }
    for (size_t i = 0; i < n_inputs; i++) {
        mixrt_model_get_input(model, i, &in_info[i]);
        if (!in_info[i].has_initializer) free_inputs[n_free++] = i;
    }
    enum verdict v = read_pbs(ctx, set_dir, "input", ds->in, ds->in_name, &ds->n_in, reason, rsize);
    if (v == V_PASS && want_exp) v = read_pbs(ctx, set_dir, "output", ds->exp, ds->exp_name, &ds->n_exp, reason, rsize);
    if (v != V_PASS) return v;

    /* Bind each input by its name when it names a graph input, else by position among
     * the inputs without initializers. */
    const char *names[MAX_IO];
    const struct mixrt_tensor *ins[MAX_IO];
    for (size_t i = 0; i < ds->n_in; i++) {
        const char *name = NULL;
        if (ds->in_name[i])
            for (size_t j = 0; j < n_inputs && !name; j++)
                if (!strcmp(in_info[j].name, ds->in_name[i])) name = in_info[j].name;
        if (!name) {
            if (i >= n_free) {
                snprintf(reason, rsize, "%s%s: input_%zu.pb has no graph input to bind to (%zu free inputs)", label,
                         set_name, i, n_free);
                return V_FAIL;
            }
            name = in_info[free_inputs[i]].name;
        }
        names[i] = name;
        ins[i] = ds->in[i];
        /* ONNX's test generator stores bf16 data as uint16 tensors (NumPy has no bf16):
         * the bits are bf16, so take them as such. */
        for (size_t j = 0; j < n_inputs; j++)
            if (in_info[j].name == name && in_info[j].dtype == MIXRT_DTYPE_BF16 && ds->in[i]->dtype == MIXRT_DTYPE_U16)
                ds->in[i]->dtype = MIXRT_DTYPE_BF16;
    }
    if (ds->n_exp > n_outs) {
        snprintf(reason, rsize, "%s%s: %zu expected outputs, the model has %zu", label, set_name, ds->n_exp, n_outs);
        return V_FAIL;
    }
    mixrt_status st = engine_of(model) ? mixrt_engine_run(engine_of(model), ds->n_in, names, ins, outs)
                                       : mixrt_model_run(model, ds->n_in, names, ins, outs);
    if (st != MIXRT_STATUS_OK) {
        if (verbose) fprintf(stderr, "    %s%s\n", label, mixrt_context_last_error(ctx));
        memset(outs, 0, n_outs * sizeof(*outs));
        if (st == MIXRT_STATUS_UNSUPPORTED_OP) {
            char op[200];
            unsupported_op(mixrt_context_last_error(ctx), op, sizeof(op));
            snprintf(reason, rsize, "%sunsupported op %s", label, op);
            return V_SKIP;
        }
        snprintf(reason, rsize, "%srun (%s): %s: %s", label, set_name, mixrt_status_string(st),
                 mixrt_context_last_error(ctx));
        return V_FAIL;
    }
    return V_PASS;
}

/* The model output a test's output_k.pb stands for: by its name, else by position. */
static size_t output_index(mixrt_model_t model, const struct data_set *ds, size_t k) {
    size_t n_outs = mixrt_model_output_count(model);
    if (ds->exp_name[k])
        for (size_t j = 0; j < n_outs; j++) {
            struct mixrt_value_info info;
            mixrt_model_get_output(model, j, &info);
            if (!strcmp(info.name, ds->exp_name[k])) return j;
        }
    return k;
}

static enum verdict run_case(mixrt_context_t ctx, const char *case_dir, bool verbose, char *reason, size_t rsize) {
    char path[4096];
    enum verdict v = V_PASS;
    mixrt_model_t model = NULL;
    struct strlist sets = {0};
    struct data_set ds;
    struct mixrt_tensor *outs[MAX_IO];
    memset(&ds, 0, sizeof(ds));
    memset(outs, 0, sizeof(outs));
    reason[0] = 0;

    snprintf(path, sizeof(path), "%.4000s/model.onnx", case_dir);
    v = load_model(ctx, path, "", &model, verbose, reason, rsize, true);
    if (v != V_PASS) return v;
    size_t n_outs = mixrt_model_output_count(model);
    list_dir(case_dir, "test_data_set_", &sets);
    if (!sets.n) {
        snprintf(reason, rsize, "no test_data_set_* folders");
        v = V_FAIL;
        goto done;
    }
    for (size_t s = 0; s < sets.n && v == V_PASS; s++) {
        char set_dir[4096];
        snprintf(set_dir, sizeof(set_dir), "%.3000s/%.1000s", case_dir, sets.v[s]);
        v = run_set(ctx, model, set_dir, sets.v[s], true, "", &ds, outs, verbose, reason, rsize);
        if (v != V_PASS) break;
        for (size_t k = 0; k < ds.n_exp && v == V_PASS; k++) {
            size_t o = output_index(model, &ds, k);
            struct mixrt_value_info oi;
            mixrt_model_get_output(model, o, &oi);
            char what[300];
            snprintf(what, sizeof(what), "%s output %zu '%s'", sets.v[s], o, oi.name);
            if (outs[o] && outs[o]->dtype == MIXRT_DTYPE_BF16 && ds.exp[k]->dtype == MIXRT_DTYPE_U16)
                ds.exp[k]->dtype = MIXRT_DTYPE_BF16; /* bf16 stored as uint16, as for inputs */
            if (!outs[o]) {
                snprintf(reason, rsize, "%s: no output produced", what);
                v = V_FAIL;
            } else if (!compare(outs[o], ds.exp[k], what, reason, rsize, verbose)) {
                v = V_FAIL;
            }
        }
        for (size_t i = 0; i < n_outs && i < MAX_IO; i++) {
            mixrt_tensor_destroy(ctx, outs[i]);
            outs[i] = NULL;
        }
        data_set_free(ctx, &ds);
    }
done:
    data_set_free(ctx, &ds);
    for (size_t i = 0; i < MAX_IO; i++) mixrt_tensor_destroy(ctx, outs[i]);
    model_destroy(model);
    strlist_free(&sets);
    return v;
}

/* --- bf16/f16 variants ------------------------------------------------------------------
 * A converted case folder (scripts/convert_dtype.py) holds the 16-bit model and inputs, and
 * ref/ with the original f32 model whose converted weights and inputs hold the same rounded
 * values. Both run here; the 16-bit outputs are compared with the f32 ones by relative
 * L2 error over the finite entries, with NaN/Inf at identical places; integers exactly. */

/* A whole string that is a decimal number (Cast to STRING prints a number). */
static bool parse_number(const struct mixrt_string *s, double *out) {
    char buf[64];
    if (!s->len || s->len >= sizeof(buf)) return false;
    memcpy(buf, s->ptr, s->len);
    buf[s->len] = 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0;
}

/* Strings must match, except that two numbers compare as numbers: Cast to STRING writes
 * the shortest decimal that reads back as the same value OF ITS TYPE, so a bf16 0.9765625
 * prints as "0.977" while the f32 twin prints "0.9765625" - the same value. */
static bool compare_strings_variant(const struct mixrt_tensor *got, const struct mixrt_tensor *ref, const char *what,
                                    double tol, char *reason, size_t rsize) {
    const struct mixrt_string *a = got->data, *b = ref->data;
    size_t n = mixrt_tensor_numel(ref), bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        double x, y;
        bool same = a[i].len == b[i].len && (!b[i].len || !memcmp(a[i].ptr, b[i].ptr, b[i].len));
        if (!same && parse_number(&a[i], &x) && parse_number(&b[i], &y))
            same = (isnan(x) && isnan(y)) || x == y || fabs(x - y) <= tol * fabs(y);
        if (!same) {
            if (!bad) first = i;
            bad++;
        }
    }
    if (!bad) return true;
    snprintf(reason, rsize,
             "%s: %zu of %zu strings differ from the f32 reference; first at flat index %zu: got "
             "'%.40s', reference '%.40s'",
             what, bad, n, first, a[first].ptr ? a[first].ptr : "", b[first].ptr ? b[first].ptr : "");
    return false;
}

/* Compares a 16-bit run's output with the f32 reference run's; *rel gets the error. */
static bool compare_variant(const struct mixrt_tensor *got, const struct mixrt_tensor *ref, mixrt_dtype declared,
                            const char *what, double tol, double *rel, char *reason, size_t rsize, bool verbose) {
    char gd[300], rd[300];
    desc_of(got, gd, sizeof(gd));
    desc_of(ref, rd, sizeof(rd));
    *rel = 0;
    bool ref_float = mixrt_dtype_is_float(ref->dtype) != 0;
    if (declared != MIXRT_DTYPE_UNDEFINED && got->dtype != declared) {
        snprintf(reason, rsize, "%s: dtype: got %s, the converted model declares %s", what, gd,
                 mixrt_dtype_name(declared));
        return false;
    }
    if (ref_float != (mixrt_dtype_is_float(got->dtype) != 0) || (!ref_float && got->dtype != ref->dtype)) {
        snprintf(reason, rsize, "%s: dtype mismatch: got %s, f32 reference %s", what, gd, rd);
        return false;
    }
    bool same_shape = got->rank == ref->rank;
    for (int i = 0; same_shape && i < got->rank; i++) same_shape = got->dims[i] == ref->dims[i];
    if (!same_shape) {
        snprintf(reason, rsize, "%s: shape mismatch: got %s, f32 reference %s", what, gd, rd);
        return false;
    }
    if (!ref_float) {
        /* Integers, bools and strings must match exactly: the inputs were rounded the same. */
        if (ref->dtype == MIXRT_DTYPE_STRING) return compare_strings_variant(got, ref, what, tol, reason, rsize);
        size_t n = mixrt_tensor_numel(ref), es = mixrt_dtype_size(ref->dtype), bad = 0, first = 0;
        for (size_t i = 0; i < n; i++)
            if (memcmp((const uint8_t *)got->data + i * es, (const uint8_t *)ref->data + i * es, es)) {
                if (!bad) first = i;
                bad++;
                if (verbose && bad <= 5)
                    fprintf(stderr, "    %s[%zu]: got %lld, reference %lld\n", what, i,
                            (long long)mixrt_load_i64(got->data, got->dtype, i),
                            (long long)mixrt_load_i64(ref->data, ref->dtype, i));
            }
        if (!bad) return true;
        snprintf(reason, rsize,
                 "%s (%s): %zu of %zu values differ from the f32 reference; first at flat index %zu: "
                 "got %lld, reference %lld",
                 what, gd, bad, n, first, (long long)mixrt_load_i64(got->data, got->dtype, first),
                 (long long)mixrt_load_i64(ref->data, ref->dtype, first));
        return false;
    }
    size_t n = mixrt_tensor_numel(ref), special_bad = 0, first_special = 0, worst = 0;
    double d2 = 0, r2 = 0, worst_err = -1;
    for (size_t i = 0; i < n; i++) {
        double a = mixrt_load_f64(got->data, got->dtype, i), b = mixrt_load_f64(ref->data, ref->dtype, i);
        if (!isfinite(a) || !isfinite(b)) {
            bool same = (isnan(a) && isnan(b)) || (isinf(a) && isinf(b) && (a > 0) == (b > 0));
            if (!same) {
                if (!special_bad) first_special = i;
                special_bad++;
                if (verbose && special_bad <= 5)
                    fprintf(stderr, "    %s[%zu]: got %.9g, reference %.9g\n", what, i, a, b);
            }
            continue;
        }
        double d = a - b;
        d2 += d * d;
        r2 += b * b;
        if (fabs(d) > worst_err) {
            worst_err = fabs(d);
            worst = i;
        }
    }
    /* An all-zero reference leaves nothing to scale by: any difference is then an error. */
    *rel = r2 > 0 ? sqrt(d2) / sqrt(r2) : (d2 > 0 ? INFINITY : 0);
    if (special_bad) {
        snprintf(reason, rsize,
                 "%s (%s): NaN/Inf at different places in %zu of %zu values; first at flat index %zu: got %.9g, "
                 "reference %.9g",
                 what, gd, special_bad, n, first_special, mixrt_load_f64(got->data, got->dtype, first_special),
                 mixrt_load_f64(ref->data, ref->dtype, first_special));
        return false;
    }
    if (*rel > tol) {
        snprintf(reason, rsize,
                 "%s (%s): relative L2 error %.3g > %.0e; largest abs error %.3g at flat index %zu: got %.9g, "
                 "reference %.9g",
                 what, gd, *rel, tol, worst_err, worst, mixrt_load_f64(got->data, got->dtype, worst),
                 mixrt_load_f64(ref->data, ref->dtype, worst));
        return false;
    }
    return true;
}

/* Reads a marker file's first line into buf; false when there is none. */
static bool read_marker(const char *case_dir, const char *name, char *buf, size_t size) {
    char path[4200];
    snprintf(path, sizeof(path), "%.4000s/%s", case_dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    if (!fgets(buf, (int)size, f)) buf[0] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    fclose(f);
    return true;
}

static enum verdict run_case_variant(mixrt_context_t ctx, const char *case_dir, mixrt_dtype target, double tol,
                                     bool verbose, double *max_rel, char *reason, size_t rsize) {
    char path[4200], label[64], note[1024];
    enum verdict v = V_PASS;
    mixrt_model_t model = NULL, ref = NULL;
    struct strlist sets = {0};
    struct data_set ds, rds;
    struct mixrt_tensor *outs[MAX_IO], *routs[MAX_IO];
    memset(&ds, 0, sizeof(ds));
    memset(&rds, 0, sizeof(rds));
    memset(outs, 0, sizeof(outs));
    memset(routs, 0, sizeof(routs));
    reason[0] = 0;
    *max_rel = 0;
    if (read_marker(case_dir, "NOT_APPLICABLE", note, sizeof(note))) {
        snprintf(reason, rsize, "%s", note);
        return V_NA;
    }
    if (read_marker(case_dir, "CONVERT_ERROR", note, sizeof(note))) {
        snprintf(reason, rsize, "conversion failed: %s", note);
        return V_FAIL;
    }
    snprintf(label, sizeof(label), "%s model: ", mixrt_dtype_name(target));
    snprintf(path, sizeof(path), "%.4000s/model.onnx", case_dir);
    v = load_model(ctx, path, label, &model, verbose, reason, rsize, true);
    if (v != V_PASS) goto done;
    snprintf(path, sizeof(path), "%.4000s/ref/model.onnx", case_dir);
    v = load_model(ctx, path, "f32 reference: ", &ref, verbose, reason, rsize, false);
    if (v != V_PASS) goto done;
    size_t n_outs = mixrt_model_output_count(model);
    if (n_outs != mixrt_model_output_count(ref)) {
        snprintf(reason, rsize, "the converted model has %zu outputs, the f32 reference %zu", n_outs,
                 mixrt_model_output_count(ref));
        v = V_FAIL;
        goto done;
    }
    list_dir(case_dir, "test_data_set_", &sets);
    if (!sets.n) {
        snprintf(reason, rsize, "no test_data_set_* folders");
        v = V_FAIL;
        goto done;
    }
    for (size_t s = 0; s < sets.n && v == V_PASS; s++) {
        char set_dir[4096], ref_dir[4096];
        snprintf(set_dir, sizeof(set_dir), "%.3000s/%.1000s", case_dir, sets.v[s]);
        snprintf(ref_dir, sizeof(ref_dir), "%.3000s/ref/%.1000s", case_dir, sets.v[s]);
        /* The reference first: its data set says which outputs the test checks and whether
         * they are plain tensors (a sequence output is a SKIP, as in the f32 suite). */
        v = run_set(ctx, ref, ref_dir, sets.v[s], true, "f32 reference: ", &rds, routs, verbose, reason, rsize);
        if (v != V_PASS) break;
        v = run_set(ctx, model, set_dir, sets.v[s], false, label, &ds, outs, verbose, reason, rsize);
        if (v != V_PASS) break;
        /* The outputs the original test checks (its output_N.pb files name them). */
        for (size_t k = 0; k < rds.n_exp && v == V_PASS; k++) {
            size_t o = output_index(ref, &rds, k);
            struct mixrt_value_info oi;
            mixrt_model_get_output(model, o, &oi);
            char what[300];
            double rel = 0;
            snprintf(what, sizeof(what), "%s output %zu '%s'", sets.v[s], o, oi.name);
            if (!outs[o] || !routs[o]) {
                snprintf(reason, rsize, "%s: no output produced by the %s", what,
                         outs[o] ? "f32 reference" : "converted model");
                v = V_FAIL;
            } else if (!compare_variant(outs[o], routs[o], oi.dtype, what, tol, &rel, reason, rsize, verbose)) {
                v = V_FAIL;
            }
            if (rel > *max_rel || isnan(rel)) *max_rel = rel;
        }
        for (size_t i = 0; i < MAX_IO; i++) {
            mixrt_tensor_destroy(ctx, outs[i]);
            mixrt_tensor_destroy(ctx, routs[i]);
            outs[i] = routs[i] = NULL;
        }
        data_set_free(ctx, &ds);
        data_set_free(ctx, &rds);
    }
done:
    data_set_free(ctx, &ds);
    data_set_free(ctx, &rds);
    for (size_t i = 0; i < MAX_IO; i++) {
        mixrt_tensor_destroy(ctx, outs[i]);
        mixrt_tensor_destroy(ctx, routs[i]);
    }
    model_destroy(model);
    model_destroy(ref);
    strlist_free(&sets);
    return v;
}

/* One CSV field, quoted, with inner quotes doubled and line breaks flattened. */
static void csv_field(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void usage(FILE *f) {
    fprintf(f, "usage: mixrt_conformance [--data DIR] [--suite a,b,...] [--filter SUBSTR] [--verbose]\n"
               "                         [--write-pass FILE] [--expect FILE] [--variant f32|bf16|f16]\n"
               "                         [--tol X] [--report FILE] [--engine P[:strong]] [--backend cpu|cuda]\n"
               "  --data DIR        test data root (default /usr/share/libonnx-testdata/data)\n"
               "  --suite LIST      suites to run (default node,pytorch-converted,pytorch-operator,simple)\n"
               "  --filter SUBSTR   only cases whose name contains SUBSTR\n"
               "  --verbose         error details, first mismatches, cases slower than 2 s\n"
               "  --write-pass FILE write the sorted list of passing cases (suite/case)\n"
               "  --expect FILE     exit non-zero if a case listed in FILE does not pass\n"
               "  --variant V       f32 (default): the suites as shipped; bf16/f16: --data is a root of\n"
               "                    cases converted by scripts/convert_dtype.py; each converted model runs\n"
               "                    against its f32 twin (same rounded weights and inputs)\n"
               "  --tol X           relative L2 tolerance of a variant (default 2e-2 bf16, 5e-3 f16)\n"
               "  --engine P[:strong] run the models under test through engines built with precisions P\n"
               "                    (e.g. fp32, fp32,bf16), weak typing or :strong\n"
               "  --backend B       cpu (default) or cuda: the backend of those engines (layers the CUDA\n"
               "                    backend cannot run go to the CPU, as in `mixrt build --backend cuda`)\n"
               "  --report FILE     write one CSV row per case: variant,suite,case,verdict,ops,max_rel,detail\n");
}

int main(int argc, char **argv) {
    struct options o = {"/usr/share/libonnx-testdata/data", NULL, NULL, false, NULL, NULL, MIXRT_DTYPE_F32, 0, NULL};
    const char *suites_arg = "node,pytorch-converted,pytorch-operator,simple", *backend = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--data") && has_val)
            o.data_dir = argv[++i];
        else if (!strcmp(a, "--suite") && has_val)
            suites_arg = argv[++i];
        else if (!strcmp(a, "--filter") && has_val)
            o.filter = argv[++i];
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v"))
            o.verbose = true;
        else if (!strcmp(a, "--write-pass") && has_val)
            o.write_pass = argv[++i];
        else if (!strcmp(a, "--expect") && has_val)
            o.expect = argv[++i];
        else if (!strcmp(a, "--report") && has_val)
            o.report = argv[++i];
        else if (!strcmp(a, "--tol") && has_val)
            o.tol = atof(argv[++i]);
        else if (!strcmp(a, "--variant") && has_val) {
            const char *v = argv[++i];
            if (!strcmp(v, "f32"))
                o.variant = MIXRT_DTYPE_F32;
            else if (!strcmp(v, "bf16"))
                o.variant = MIXRT_DTYPE_BF16;
            else if (!strcmp(v, "f16"))
                o.variant = MIXRT_DTYPE_F16;
            else {
                fprintf(stderr, "mixrt_conformance: --variant takes f32, bf16 or f16, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--engine") && has_val) {
            char spec[64];
            snprintf(spec, sizeof(spec), "%s", argv[++i]);
            char *colon = strchr(spec, ':');
            mixrt_build_options_init(&g_engine_opts);
            if (colon) {
                *colon = 0;
                if (strcmp(colon + 1, "strong")) {
                    fprintf(stderr, "mixrt_conformance: --engine takes PRECISIONS[:strong]\n");
                    return 2;
                }
                g_engine_opts.strongly_typed = 1;
            }
            if (mixrt_precisions_parse(NULL, spec, &g_engine_opts.precisions) != MIXRT_STATUS_OK) {
                fprintf(stderr, "mixrt_conformance: --engine: bad precision list '%s'\n", spec);
                return 2;
            }
            g_engine_mode = true;
        } else if (!strcmp(a, "--backend") && has_val) {
            backend = argv[++i];
            if (strcmp(backend, "cpu") && strcmp(backend, "cuda")) {
                fprintf(stderr, "mixrt_conformance: --backend takes cpu or cuda, not '%s'\n", backend);
                return 2;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "mixrt_conformance: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (backend && !g_engine_mode) {
        fprintf(stderr, "mixrt_conformance: --backend needs --engine (the precisions of the engines it builds)\n");
        return 2;
    }
    g_engine_opts.backend = backend;
    bool variant = o.variant != MIXRT_DTYPE_F32;
    const char *vname = o.variant == MIXRT_DTYPE_BF16 ? "bf16" : o.variant == MIXRT_DTYPE_F16 ? "f16" : "f32";
    if (o.tol <= 0) o.tol = o.variant == MIXRT_DTYPE_BF16 ? 2e-2 : 5e-3;
    FILE *report = NULL;
    if (o.report) {
        report = fopen(o.report, "w");
        if (!report) {
            fprintf(stderr, "mixrt_conformance: cannot write '%s': %s\n", o.report, strerror(errno));
            return 2;
        }
        fprintf(report, "variant,suite,case,verdict,ops,max_rel,detail\n");
    }
    o.suites = strdup(suites_arg);
    mixrt_context_t ctx;
    if (!o.suites || mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) {
        fprintf(stderr, "mixrt_conformance: cannot create a context\n");
        return 2;
    }
    /* The runner reports errors itself; the library's log would repeat them. */
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);

    struct strlist passed = {0}, ran = {0}, suite_names = {0};
    size_t tot[4] = {0};
    static const char *const verdict_name[4] = {"pass", "fail", "skip", "n/a"};
    double t_start = now_s();
    char reason[2048];
    for (char *save = NULL, *suite = strtok_r(o.suites, ",", &save); suite; suite = strtok_r(NULL, ",", &save)) {
        char suite_dir[4096];
        struct strlist cases = {0};
        size_t cnt[4] = {0};
        strlist_add(&suite_names, suite);
        snprintf(suite_dir, sizeof(suite_dir), "%.2000s/%.1000s", o.data_dir, suite);
        list_dir(suite_dir, "", &cases);
        if (!cases.n) fprintf(stderr, "mixrt_conformance: no cases in '%s'\n", suite_dir);
        for (size_t c = 0; c < cases.n; c++) {
            const char *name = cases.v[c];
            char case_dir[4096], model[4200], id[600];
            if (name[0] == '.') continue;
            if (o.filter && !strstr(name, o.filter)) continue;
            snprintf(case_dir, sizeof(case_dir), "%.3000s/%.1000s", suite_dir, name);
            snprintf(model, sizeof(model), "%.4000s/model.onnx", case_dir);
            if (!file_exists(model)) {
                /* A converted suite marks the cases it has nothing to convert in. */
                char marker[4200], marker2[4200];
                snprintf(marker, sizeof(marker), "%.4000s/NOT_APPLICABLE", case_dir);
                snprintf(marker2, sizeof(marker2), "%.4000s/CONVERT_ERROR", case_dir);
                if (!variant || (!file_exists(marker) && !file_exists(marker2))) continue;
            }
            snprintf(id, sizeof(id), "%.200s/%.390s", suite, name);
            strlist_add(&ran, id);
            mixrt_context_clear_error(ctx);
            double t0 = now_s();
            double max_rel = 0;
            enum verdict v =
                variant ? run_case_variant(ctx, case_dir, o.variant, o.tol, o.verbose, &max_rel, reason, sizeof(reason))
                        : run_case(ctx, case_dir, o.verbose, reason, sizeof(reason));
            double dt = now_s() - t0;
            cnt[v]++;
            if (v == V_PASS) {
                printf("PASS %s\n", id);
                strlist_add(&passed, id);
            } else if (v == V_SKIP) {
                printf("SKIP %s: %s\n", id, reason);
            } else if (v == V_NA) {
                printf("N/A  %s: %s\n", id, reason);
            } else {
                char ops[512];
                model_ops(model, ops, sizeof(ops));
                /* Random ops cannot reproduce NumPy's generator: say so, so nobody chases it. */
                bool random = strstr(ops, "Bernoulli") || strstr(ops, "RandomUniform") || strstr(ops, "RandomNormal") ||
                              strstr(ops, "Multinomial");
                printf("FAIL %s [%s]: %s%s\n", id, ops, reason,
                       random ? " (random op: values cannot match ONNX's generator)" : "");
                if (variant)
                    printf("     repro: mixrt_conformance --variant %s --data %s --suite %s --filter %s --verbose\n",
                           vname, o.data_dir, suite, name);
                else
                    printf("     repro: mixrt_conformance --suite %s --filter %s --verbose\n", suite, name);
            }
            if (report) {
                char ops[512] = "";
                if (v != V_NA) model_ops(model, ops, sizeof(ops)); /* an N/A case has no model here */
                fprintf(report, "%s,", vname);
                csv_field(report, suite);
                fputc(',', report);
                csv_field(report, name);
                fprintf(report, ",%s,", verdict_name[v]);
                csv_field(report, ops);
                fprintf(report, ",%.3g,", max_rel);
                csv_field(report, v == V_PASS ? "" : reason);
                fputc('\n', report);
            }
            if (o.verbose && dt > 2.0) printf("     time: %s took %.1f s\n", id, dt);
            fflush(stdout);
        }
        if (variant)
            printf("suite %s (%s): %zu passed, %zu failed, %zu skipped, %zu not applicable\n", suite, vname,
                   cnt[V_PASS], cnt[V_FAIL], cnt[V_SKIP], cnt[V_NA]);
        else
            printf("suite %s: %zu passed, %zu failed, %zu skipped\n", suite, cnt[V_PASS], cnt[V_FAIL], cnt[V_SKIP]);
        for (int k = 0; k < 4; k++) tot[k] += cnt[k];
        strlist_free(&cases);
    }
    if (variant)
        printf("%zu passed, %zu failed, %zu skipped, %zu not applicable (%s, tolerance %.0e, %.1f s)\n", tot[V_PASS],
               tot[V_FAIL], tot[V_SKIP], tot[V_NA], vname, o.tol, now_s() - t_start);
    else
        printf("%zu passed, %zu failed, %zu skipped\n", tot[V_PASS], tot[V_FAIL], tot[V_SKIP]);
    if (report) fclose(report);
    if (mixrt_context_bytes_in_use(ctx) && o.verbose)
        printf("note: %zu bytes still allocated from the context (a leak)\n", mixrt_context_bytes_in_use(ctx));

    int rc = tot[V_FAIL] ? 1 : 0;
    if (o.write_pass) {
        FILE *f = fopen(o.write_pass, "w");
        if (!f) {
            fprintf(stderr, "mixrt_conformance: cannot write '%s': %s\n", o.write_pass, strerror(errno));
            rc = 2;
        } else {
            if (passed.n) qsort(passed.v, passed.n, sizeof(char *), cmp_str);
            for (size_t i = 0; i < passed.n; i++) fprintf(f, "%s\n", passed.v[i]);
            fclose(f);
        }
    }
    if (o.expect) {
        FILE *f = fopen(o.expect, "r");
        size_t regressions = 0;
        rc = 0;
        if (!f) {
            fprintf(stderr, "mixrt_conformance: cannot read '%s': %s\n", o.expect, strerror(errno));
            rc = 2;
        } else {
            char line[1024];
            while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = 0;
                if (!line[0] || line[0] == '#') continue;
                char suite[512];
                snprintf(suite, sizeof(suite), "%.*s", (int)strcspn(line, "/"), line);
                const char *case_name = strchr(line, '/') ? strchr(line, '/') + 1 : line;
                /* Only cases this run covered can regress: --suite/--filter narrow it. */
                if (!strlist_has(&suite_names, suite)) continue;
                if (o.filter && !strstr(case_name, o.filter)) continue;
                if (strlist_has(&passed, line)) continue;
                printf("REGRESSION %s: listed in %s but %s\n", line, o.expect,
                       strlist_has(&ran, line) ? "did not pass" : "was not found");
                regressions++;
            }
            fclose(f);
            if (regressions) {
                printf("%zu regression(s) against %s\n", regressions, o.expect);
                rc = 1;
            }
        }
    }
    strlist_free(&passed);
    strlist_free(&ran);
    strlist_free(&suite_names);
    free(o.suites);
    mixrt_context_destroy(ctx);
    return rc;
}
