/* test_onnx_slim.c - the import's slim pass (src/onnx/slim.c): the main graph's initializers
 * read their raw_data from the caller's bytes instead of protobuf-c's copy. Every model is
 * imported with the pass and with MIXRT_ONNX_SLIM=off, and the two graphs must hold the same
 * initializers byte for byte (or fail alike); malformed and merge-needing bytes make the
 * pass decline; a model over 1 MiB goes through the file mapping and its dropped pages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/graph.h"
#include "onnx/import.h"
#include "onnx/model_impl.h"
#include "onnx/slim.h"
#include "testutil.h"

static mixrt_context_t ctx;

/* A model: y = (x + w_raw) * w_float, plus an unused i64 raw initializer; n_big f32 values in
 * w_raw (the model's size). */
static uint8_t *make_model(size_t n_big, size_t *len, float **raw_vals) {
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT, *ops[1] = {&op};
    m.has_ir_version = 1, m.ir_version = 8;
    op.has_version = 1, op.version = 17, op.domain = "";
    m.n_opset_import = 1, m.opset_import = ops;
    m.graph = &g;
    g.name = "slim";
    Onnx__TensorProto t[3] = {ONNX__TENSOR_PROTO__INIT, ONNX__TENSOR_PROTO__INIT, ONNX__TENSOR_PROTO__INIT};
    Onnx__TensorProto *tp[3] = {&t[0], &t[1], &t[2]};
    int64_t d0[1] = {(int64_t)n_big}, d1[1] = {(int64_t)n_big}, d2[1] = {2};
    float *vals = malloc(n_big * sizeof(float)), *fvals = malloc(n_big * sizeof(float));
    for (size_t i = 0; i < n_big; i++) vals[i] = (float)tu_uniform(-3, 3), fvals[i] = (float)tu_uniform(-1, 1);
    int64_t ivals[2] = {-7, 1234567890123LL};
    t[0].name = "w_raw", t[0].has_data_type = 1, t[0].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t[0].n_dims = 1, t[0].dims = d0, t[0].has_raw_data = 1;
    t[0].raw_data.len = n_big * sizeof(float), t[0].raw_data.data = (uint8_t *)vals;
    t[1].name = "w_float", t[1].has_data_type = 1, t[1].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t[1].n_dims = 1, t[1].dims = d1, t[1].n_float_data = n_big, t[1].float_data = fvals;
    t[2].name = "w_i64", t[2].has_data_type = 1, t[2].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t[2].n_dims = 1, t[2].dims = d2, t[2].has_raw_data = 1;
    t[2].raw_data.len = sizeof ivals, t[2].raw_data.data = (uint8_t *)ivals;
    g.n_initializer = 3, g.initializer = tp;
    Onnx__NodeProto n[2] = {ONNX__NODE_PROTO__INIT, ONNX__NODE_PROTO__INIT}, *np[2] = {&n[0], &n[1]};
    char *in0[2] = {"x", "w_raw"}, *out0[1] = {"s"}, *in1[2] = {"s", "w_float"}, *out1[1] = {"y"};
    n[0].op_type = "Add", n[0].name = "add", n[0].n_input = 2, n[0].input = in0, n[0].n_output = 1, n[0].output = out0;
    n[1].op_type = "Mul", n[1].name = "mul", n[1].n_input = 2, n[1].input = in1, n[1].n_output = 1, n[1].output = out1;
    g.n_node = 2, g.node = np;
    Onnx__TypeProto tyx = ONNX__TYPE_PROTO__INIT, tyy = ONNX__TYPE_PROTO__INIT;
    Onnx__TypeProto__Tensor ttx = ONNX__TYPE_PROTO__TENSOR__INIT, tty = ONNX__TYPE_PROTO__TENSOR__INIT;
    Onnx__TensorShapeProto shx = ONNX__TENSOR_SHAPE_PROTO__INIT, shy = ONNX__TENSOR_SHAPE_PROTO__INIT;
    Onnx__TensorShapeProto__Dimension dx = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, *dxp[1] = {&dx};
    dx.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, dx.dim_value = (int64_t)n_big;
    shx.n_dim = 1, shx.dim = dxp, shy.n_dim = 1, shy.dim = dxp;
    ttx.has_elem_type = tty.has_elem_type = 1, ttx.elem_type = tty.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    ttx.shape = &shx, tty.shape = &shy;
    tyx.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tyx.tensor_type = &ttx;
    tyy.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tyy.tensor_type = &tty;
    Onnx__ValueInfoProto vx = ONNX__VALUE_INFO_PROTO__INIT, vy = ONNX__VALUE_INFO_PROTO__INIT;
    Onnx__ValueInfoProto *vxp[1] = {&vx}, *vyp[1] = {&vy};
    vx.name = "x", vx.type = &tyx, vy.name = "y", vy.type = &tyy;
    g.n_input = 1, g.input = vxp, g.n_output = 1, g.output = vyp;
    *len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(*len);
    onnx__model_proto__pack(&m, buf);
    free(fvals);
    *raw_vals = vals;
    return buf;
}

/* Imports bytes with the slim pass on (slim = 1) or off; NULL on failure (*st set). */
static struct mixrt_graph *import(const uint8_t *b, size_t len, int slim, mixrt_status *st) {
    struct mixrt_graph *g = NULL;
    if (slim) unsetenv("MIXRT_ONNX_SLIM");
    else setenv("MIXRT_ONNX_SLIM", "off", 1);
    struct mixrt_external_policy ext = {0};
    *st = mixrt_onnx_import(ctx, b, len, "slim test", &ext, &g);
    unsetenv("MIXRT_ONNX_SLIM");
    return *st == MIXRT_STATUS_OK ? g : NULL;
}

/* Both imports of b agree: same status; on success the same initializers, byte for byte. */
static void same_both_ways(const char *what, const uint8_t *b, size_t len) {
    mixrt_status s1, s0;
    struct mixrt_graph *g1 = import(b, len, 1, &s1), *g0 = import(b, len, 0, &s0);
    TU_CHECK(s1 == s0, "%s: status %s with the slim pass, %s without", what, mixrt_status_string(s1),
             mixrt_status_string(s0));
    if (g1 && g0) {
        TU_CHECK(g1->n_values == g0->n_values && g1->n_nodes == g0->n_nodes, "%s: %d/%d values, %d/%d nodes", what,
                 g1->n_values, g0->n_values, g1->n_nodes, g0->n_nodes);
        int inits = 0;
        for (int v = 0; v < g0->n_values && v < g1->n_values; v++) {
            const struct mixrt_tensor *a = g1->values[v].init, *c = g0->values[v].init;
            if (!a && !c) continue;
            inits++;
            bool same = a && c && a->dtype == c->dtype && a->rank == c->rank && a->nbytes == c->nbytes &&
                        !memcmp(a->dims, c->dims, sizeof(int64_t) * (size_t)a->rank) &&
                        (!a->nbytes || !memcmp(a->data, c->data, a->nbytes));
            TU_CHECK(same, "%s: initializer '%s' differs between the two imports", what, g0->values[v].name);
        }
        TU_CHECK(inits == 3, "%s: %d initializers (expected 3)", what, inits);
    }
    mixrt_graph_destroy(g1);
    mixrt_graph_destroy(g0);
}

/* The graph inputs a file declares (mixrt_onnx_declared_inputs): x [batch, 3] with a dim_param,
 * w (an initializer listed among the inputs too: no user input), z without a shape. */
static void test_declared_inputs(void) {
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    m.has_ir_version = 1, m.ir_version = 3;
    m.graph = &g;
    g.name = "decl";
    Onnx__TensorProto w = ONNX__TENSOR_PROTO__INIT, *wp[1] = {&w};
    float wv[3] = {1, 2, 3};
    int64_t wd[1] = {3};
    w.name = "w", w.has_data_type = 1, w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    w.n_dims = 1, w.dims = wd, w.has_raw_data = 1, w.raw_data.len = sizeof wv, w.raw_data.data = (uint8_t *)wv;
    g.n_initializer = 1, g.initializer = wp;
    Onnx__TensorShapeProto__Dimension d0 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT,
                                      d1 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, *dp[2] = {&d0, &d1};
    d0.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d0.dim_param = "batch";
    d1.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d1.dim_value = 3;
    Onnx__TensorShapeProto sh = ONNX__TENSOR_SHAPE_PROTO__INIT;
    sh.n_dim = 2, sh.dim = dp;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT, tz = ONNX__TYPE_PROTO__TENSOR__INIT;
    tt.has_elem_type = tz.has_elem_type = 1, tt.elem_type = tz.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt.shape = &sh; /* z: no shape */
    Onnx__TypeProto ty = ONNX__TYPE_PROTO__INIT, tyz = ONNX__TYPE_PROTO__INIT;
    ty.value_case = tyz.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, ty.tensor_type = &tt, tyz.tensor_type = &tz;
    Onnx__ValueInfoProto vx = ONNX__VALUE_INFO_PROTO__INIT, vw = ONNX__VALUE_INFO_PROTO__INIT,
                         vz = ONNX__VALUE_INFO_PROTO__INIT, *vp[3] = {&vx, &vw, &vz};
    vx.name = "x", vx.type = &ty, vw.name = "w", vw.type = &ty, vz.name = "z", vz.type = &tyz;
    g.n_input = 3, g.input = vp;
    size_t len = onnx__model_proto__get_packed_size(&m);
    uint8_t *b = malloc(len);
    onnx__model_proto__pack(&m, b);
    struct mixrt_onnx_decl d[4];
    int n = mixrt_onnx_declared_inputs(b, len, d, 4);
    TU_CHECK(n == 2, "declared inputs: %d, expected 2 (x, z; w is an initializer)", n);
    if (n == 2) {
        TU_CHECK(d[0].name_len == 1 && d[0].name[0] == 'x' && d[0].rank == 2 && d[0].dims[0] == -1 && d[0].dims[1] == 3,
                 "x: %.*s rank %d dims %lld %lld", (int)d[0].name_len, d[0].name, d[0].rank, (long long)d[0].dims[0],
                 (long long)d[0].dims[1]);
        TU_CHECK(d[1].name_len == 1 && d[1].name[0] == 'z' && d[1].rank == -1, "z: %.*s rank %d", (int)d[1].name_len,
                 d[1].name, d[1].rank);
    }
    TU_CHECK(mixrt_onnx_declared_inputs(b, len, d, 1) == 2, "the count goes past cap");
    /* every truncation: an answer or -1, never a read past the bytes (the sanitizer build) */
    for (size_t cut = 0; cut < len; cut++) {
        int k = mixrt_onnx_declared_inputs(b, cut, d, 4);
        TU_CHECK(k >= -1 && k <= 2, "truncated to %zu: %d inputs", cut, k);
    }
    free(b);
}

int main(void) {
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    tu_seed(0x511e);
    size_t len;
    float *vals;
    uint8_t *b = make_model(1000, &len, &vals);
    test_declared_inputs();

    /* The pass itself: three initializers, raw_data where it was, none on float_data's. */
    struct mixrt_onnx_slim s;
    bool ok = mixrt_onnx_slim(ctx, b, len, &s);
    TU_CHECK(ok, "slim pass declined a plain model");
    if (ok) {
        TU_CHECK(s.n_init == 3 && s.raw[0].has && !s.raw[1].has && s.raw[2].has, "initializers %zu, raw %d %d %d",
                 s.n_init, s.raw[0].has, s.raw[1].has, s.raw[2].has);
        TU_CHECK(s.raw[0].len == 4000 && s.raw[0].off + 4000 <= len && !memcmp(b + s.raw[0].off, vals, 4000),
                 "w_raw's raw_data not found where it is (off %zu len %zu)", s.raw[0].off, s.raw[0].len);
        TU_CHECK(s.msg.n < len - 4000, "slim message of %zu bytes still holds the weights (model %zu)", s.msg.n, len);
        mixrt_onnx_slim_free(&s);
    }
    same_both_ways("plain model", b, len);
    /* The imported tensor is the model's, exactly. */
    {
        mixrt_status st;
        struct mixrt_graph *g = import(b, len, 1, &st);
        int v = g ? mixrt_graph_find_value(g, "w_raw") : -1;
        TU_CHECK(v >= 0 && g->values[v].init && g->values[v].init->nbytes == 4000 &&
                     !memcmp(g->values[v].init->data, vals, 4000),
                 "w_raw imported through the slim pass differs from the model's values");
        mixrt_graph_destroy(g);
    }

    /* A second graph field (protobuf merges the two): the pass declines, both imports agree. */
    {
        size_t glen = 0;
        struct mixrt_onnx_slim t;
        TU_CHECK(mixrt_onnx_slim(ctx, b, len, &t), "plain model declined");
        mixrt_onnx_slim_free(&t);
        /* the graph field: key 0x3a, then its length varint; append a copy of the whole field */
        size_t at = 0;
        for (size_t i = 0; i + 1 < len; i++)
            if (b[i] == 0x3a) { /* find the one whose payload ends at the message's end or a later key */
                size_t j = i + 1, shift = 0;
                uint64_t l = 0;
                while (j < len && shift < 64) {
                    l |= (uint64_t)(b[j] & 0x7f) << shift;
                    shift += 7;
                    if (!(b[j++] & 0x80)) break;
                }
                if (j + l <= len && l > 4000) {
                    at = i, glen = (size_t)(j + l - i);
                    break;
                }
            }
        TU_CHECK(glen > 0, "graph field not found in the packed model");
        if (glen) {
            uint8_t *two = malloc(len + glen);
            memcpy(two, b, len);
            memcpy(two + len, b + at, glen);
            struct mixrt_onnx_slim u;
            bool took = mixrt_onnx_slim(ctx, two, len + glen, &u);
            if (took) mixrt_onnx_slim_free(&u);
            TU_CHECK(!took, "the slim pass took a model with two graph fields");
            mixrt_status s1, s0;
            struct mixrt_graph *g1 = import(two, len + glen, 1, &s1), *g0 = import(two, len + glen, 0, &s0);
            TU_CHECK(s1 == s0, "two graph fields: %s vs %s", mixrt_status_string(s1), mixrt_status_string(s0));
            mixrt_graph_destroy(g1);
            mixrt_graph_destroy(g0);
            free(two);
        }
    }

    /* Every truncation of the model: the pass declines or not, the two imports agree. */
    for (size_t cut = 1; cut < len; cut += cut < 200 ? 1 : 97) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cut, len);
        mixrt_status s1, s0;
        struct mixrt_graph *g1 = import(b, cut, 1, &s1), *g0 = import(b, cut, 0, &s0);
        TU_CHECK(s1 == s0, "%s: %s vs %s", what, mixrt_status_string(s1), mixrt_status_string(s0));
        mixrt_graph_destroy(g1);
        mixrt_graph_destroy(g0);
    }
    free(b), free(vals);

    /* Over 1 MiB through mixrt_model_load: the file is mapped and the copied pages dropped;
     * the weights still arrive exactly. */
    {
        b = make_model(400000, &len, &vals);
        char path[] = "/tmp/mixrt_slim_XXXXXX";
        int fd = mkstemp(path);
        TU_CHECK(fd >= 0 && write(fd, b, len) == (ssize_t)len, "cannot write %s", path);
        if (fd >= 0) close(fd);
        mixrt_model_t m = NULL;
        mixrt_status st = mixrt_model_load(ctx, path, &m);
        TU_CHECK(st == MIXRT_STATUS_OK, "mixrt_model_load of a %zu-byte model: %s", len, mixrt_context_last_error(ctx));
        if (m) {
            const struct mixrt_graph *g = mixrt_model_graph(m);
            int v = mixrt_graph_find_value(g, "w_raw");
            TU_CHECK(v >= 0 && g->values[v].init && g->values[v].init->nbytes == 1600000 &&
                         !memcmp(g->values[v].init->data, vals, 1600000),
                     "w_raw loaded from the mapped file differs from the model's values");
            mixrt_model_destroy(m);
        }
        same_both_ways("1.6 MB model", b, len);
        unlink(path);
        free(b), free(vals);
    }
    mixrt_context_destroy(ctx);
    return tu_finish("test_onnx_slim");
}
