/* passes_conformance.c - every libonnx-testdata case of a pass list, run with all graph
 * passes applied to the loaded model's graph, compared with the expected outputs (rtol
 * 1e-3, atol 1e-7 as in conformance.c). Prints failures and the nodes each pass removed;
 * exits non-zero when a listed case fails. Usage:
 *   mixrt_passes_conformance --data DIR --list FILE [--verbose] [--no-passes]
 * (--no-passes: the same run without the passes, as a baseline.) */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mixrt/mixrt_io.h"
#include "onnx/model_impl.h"
#include "passes/passes.h"

#define MAX_IO 64

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static bool same(const struct mixrt_tensor *a, const struct mixrt_tensor *e, char *why, size_t wsize) {
    if (a->dtype != e->dtype || a->rank != e->rank) {
        snprintf(why, wsize, "dtype/rank: got %d/%d, expected %d/%d", a->dtype, a->rank, e->dtype, e->rank);
        return false;
    }
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != e->dims[i]) {
            snprintf(why, wsize, "dim %d: got %lld, expected %lld", i, (long long)a->dims[i], (long long)e->dims[i]);
            return false;
        }
    size_t n = mixrt_tensor_numel(e);
    for (size_t i = 0; i < n; i++) {
        bool ok;
        if (e->dtype == MIXRT_DTYPE_STRING) {
            const struct mixrt_string *x = a->data, *y = e->data;
            ok = x[i].len == y[i].len && (!y[i].len || !memcmp(x[i].ptr, y[i].ptr, y[i].len));
        } else if (mixrt_dtype_is_float(e->dtype)) {
            double x = mixrt_load_f64(a->data, a->dtype, i), y = mixrt_load_f64(e->data, e->dtype, i);
            ok = (isnan(x) && isnan(y)) || x == y || fabs(x - y) <= 1e-7 + 1e-3 * fabs(y);
        } else {
            size_t es = mixrt_dtype_size(e->dtype);
            ok = !memcmp((const char *)a->data + i * es, (const char *)e->data + i * es, es);
        }
        if (!ok) {
            snprintf(why, wsize, "element %zu differs", i);
            return false;
        }
    }
    return true;
}

/* Reads prefix_0.pb, prefix_1.pb, ...; false when one cannot be read as a tensor. */
static bool read_pbs(mixrt_context_t ctx, const char *dir, const char *prefix, struct mixrt_tensor **ts, char **names,
                     size_t *n) {
    char path[4400];
    for (*n = 0; *n < MAX_IO; (*n)++) {
        snprintf(path, sizeof(path), "%.4300s/%.20s_%zu.pb", dir, prefix, *n);
        if (!exists(path)) break;
        if (mixrt_pb_read(ctx, path, &ts[*n], &names[*n]) != MIXRT_STATUS_OK) return false;
    }
    return true;
}

static void free_pbs(mixrt_context_t ctx, struct mixrt_tensor **ts, char **names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        mixrt_tensor_destroy(ctx, ts[i]);
        if (names[i]) mixrt_free(ctx, names[i], strlen(names[i]) + 1);
        ts[i] = NULL;
        names[i] = NULL;
    }
}

/* Runs one data set; 1 pass, 0 fail, -1 skipped (data not plain tensors). */
static int run_set(mixrt_context_t ctx, mixrt_model_t m, const struct mixrt_graph *g, const char *dir, char *why,
                   size_t wsize) {
    struct mixrt_tensor *in[MAX_IO] = {0}, *exp[MAX_IO] = {0}, *out[MAX_IO] = {0};
    char *in_name[MAX_IO] = {0}, *exp_name[MAX_IO] = {0};
    const char *names[MAX_IO];
    size_t n_in = 0, n_exp = 0, n_out = (size_t)g->n_outputs;
    int rc = 0;
    if (n_out > MAX_IO || !read_pbs(ctx, dir, "input", in, in_name, &n_in) ||
        !read_pbs(ctx, dir, "output", exp, exp_name, &n_exp)) {
        rc = -1;
        goto done;
    }
    /* By name when the file names a graph input, else by position among free inputs. */
    size_t free_i = 0;
    for (size_t i = 0; i < n_in; i++) {
        names[i] = NULL;
        for (int j = 0; j < g->n_inputs && !names[i]; j++)
            if (in_name[i] && !strcmp(g->values[g->inputs[j]].name, in_name[i])) names[i] = g->values[g->inputs[j]].name;
        while (!names[i] && free_i < (size_t)g->n_inputs) {
            const struct mixrt_value *v = &g->values[g->inputs[free_i++]];
            if (!v->init) names[i] = v->name;
        }
        if (!names[i]) {
            snprintf(why, wsize, "input_%zu.pb binds to nothing", i);
            goto done;
        }
        for (int j = 0; j < g->n_inputs; j++)
            if (!strcmp(g->values[g->inputs[j]].name, names[i]) && g->values[g->inputs[j]].dtype == MIXRT_DTYPE_BF16 &&
                in[i]->dtype == MIXRT_DTYPE_U16)
                in[i]->dtype = MIXRT_DTYPE_BF16;
    }
    if (mixrt_model_run(m, n_in, names, (const struct mixrt_tensor *const *)in, out) != MIXRT_STATUS_OK) {
        snprintf(why, wsize, "run: %s", mixrt_context_last_error(ctx));
        memset(out, 0, sizeof(out));
        goto done;
    }
    for (size_t k = 0; k < n_exp; k++) {
        size_t o = k;
        for (size_t j = 0; exp_name[k] && j < n_out; j++)
            if (!strcmp(g->values[g->outputs[j]].name, exp_name[k])) o = j;
        if (o >= n_out) {
            snprintf(why, wsize, "output_%zu.pb matches no output", k);
            goto done;
        }
        if (out[o]->dtype == MIXRT_DTYPE_BF16 && exp[k]->dtype == MIXRT_DTYPE_U16) exp[k]->dtype = MIXRT_DTYPE_BF16;
        char w[200];
        if (!same(out[o], exp[k], w, sizeof(w))) {
            snprintf(why, wsize, "output %zu '%s': %s", o, g->values[g->outputs[o]].name, w);
            goto done;
        }
    }
    rc = 1;
done:
    free_pbs(ctx, in, in_name, n_in);
    free_pbs(ctx, exp, exp_name, n_exp);
    for (size_t i = 0; i < n_out && i < MAX_IO; i++) mixrt_tensor_destroy(ctx, out[i]);
    return rc;
}

int main(int argc, char **argv) {
    const char *data = "/usr/share/libonnx-testdata/data", *list = NULL;
    bool verbose = false;
    unsigned flags = MIXRT_PASS_ALL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--list") && i + 1 < argc) list = argv[++i];
        else if (!strcmp(argv[i], "--verbose")) verbose = true;
        else if (!strcmp(argv[i], "--no-passes")) flags = 0;
        else {
            fprintf(stderr, "usage: %s --data DIR --list FILE [--verbose] [--no-passes]\n", argv[0]);
            return 2;
        }
    }
    FILE *f = list ? fopen(list, "r") : NULL;
    if (!f) {
        fprintf(stderr, "cannot open the case list '%s'\n", list ? list : "(none)");
        return 2;
    }
    mixrt_context_t ctx;
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 2;
    struct mixrt_pass_stats total = {0};
    int n_pass = 0, n_fail = 0, n_skip = 0, nodes_before = 0, nodes_after = 0;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char dir[2100], path[4400], why[600] = "";
        snprintf(dir, sizeof(dir), "%.1000s/%.1000s", data, line);
        snprintf(path, sizeof(path), "%s/model.onnx", dir);
        mixrt_model_t m = NULL;
        if (mixrt_model_load(ctx, path, &m) != MIXRT_STATUS_OK) {
            printf("FAIL %s: load: %s\n", line, mixrt_context_last_error(ctx));
            n_fail++;
            continue;
        }
        /* The model owns its graph; the passes rewrite it in place (tests only). */
        struct mixrt_graph *g = (struct mixrt_graph *)mixrt_model_graph(m);
        struct mixrt_pass_stats st;
        int before = g->n_nodes;
        mixrt_status s = mixrt_passes_run(g, flags, &st);
        int verdict = 0;
        if (s != MIXRT_STATUS_OK) {
            snprintf(why, sizeof(why), "passes: %s", mixrt_context_last_error(ctx));
        } else {
            total.const_folded += st.const_folded;
            total.shape_folded += st.shape_folded;
            total.dead_removed += st.dead_removed;
            total.casts_removed += st.casts_removed;
            total.conv_bn_folded += st.conv_bn_folded;
            nodes_before += before;
            nodes_after += g->n_nodes;
            verdict = -1;
            DIR *d = opendir(dir);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (strncmp(e->d_name, "test_data_set_", 14)) continue;
                char set[4400];
                snprintf(set, sizeof(set), "%.2100s/%.255s", dir, e->d_name);
                int r = run_set(ctx, m, g, set, why, sizeof(why));
                if (r == 0) {
                    verdict = 0;
                    break;
                }
                if (r == 1) verdict = 1;
            }
            if (d) closedir(d);
        }
        if (verdict == 1) n_pass++;
        else if (verdict < 0) n_skip++;
        else n_fail++;
        if (verdict == 0) printf("FAIL %s: %s\n", line, why);
        else if (verbose) printf("%s %s (%d -> %d nodes)\n", verdict > 0 ? "PASS" : "SKIP", line, before, g->n_nodes);
        mixrt_model_destroy(m);
    }
    fclose(f);
    printf("passes removed: const_fold %d, shape_fold %d, dce %d, cast %d, conv_bn %d (nodes %d -> %d)\n",
           total.const_folded, total.shape_folded, total.dead_removed, total.casts_removed, total.conv_bn_folded,
           nodes_before, nodes_after);
    printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    mixrt_context_destroy(ctx);
    return n_fail ? 1 : 0;
}
