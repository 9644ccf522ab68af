/* test_cuda_engine.c - engines built with --backend cuda against the f64 reference engine:
 * the example transformer (all layers on CUDA: GEMMs with residual epilogues, Attention,
 * LayerNorm, views) and CNN (cuDNN convs, pools and the conv epilogue: all on CUDA; with
 * MIXRT_CUDA_CONV=0 Conv runs on the CPU between CUDA layers: segments and copies), in f32
 * and bf16 models under fp32, fp32+bf16 and bf16; when present (scripts/cuda_device.sh
 * models), a patch conv (space-to-depth + GEMM) with NCHW pools, and attention with an f32
 * mask whose row is fully masked (finite output in bf16); attention as batched GEMMs
 * (MIXRT_CUDA_ATTENTION=gemm); --require-full's named error;
 * run_into; a wrong input shape; device tensors (inputs and outputs on the GPU: run_into
 * and run_device bit-equal to the host run, the mixed CPU/CUDA engine included, and their
 * named errors). Exits 77 (skipped) where no GPU or no libmixrt_cuda.so is
 * usable. Models: $MIXRT_CUDA_EXAMPLES, else $MIXRT_BINARY_DIR/examples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_cuda.h"
#include "engine/engine_impl.h"
#include "testutil.h"

static mixrt_context_t ctx;
static char dir[1024];

static int make_inputs(mixrt_engine_t e, struct mixrt_tensor **in, const char **names, uint64_t seed) {
    int n = 0;
    tu_seed(seed);
    for (size_t i = 0; i < mixrt_engine_input_count(e) && n < 16; i++) {
        struct mixrt_value_info vi;
        mixrt_engine_get_input(e, i, &vi);
        if (vi.has_initializer) continue;
        int64_t dims[MIXRT_MAX_RANK];
        for (int d = 0; d < vi.rank; d++) dims[d] = vi.dims[d] >= 0 ? vi.dims[d] : 2;
        if (mixrt_tensor_create(ctx, vi.dtype, vi.rank, dims, &in[n]) != MIXRT_STATUS_OK) return -1;
        size_t cnt = mixrt_tensor_numel(in[n]);
        for (size_t k = 0; k < cnt; k++) {
            double v = tu_uniform(-1, 1);
            if (mixrt_dtype_is_float(vi.dtype))
                mixrt_convert((char *)in[n]->data + k * mixrt_dtype_size(vi.dtype), vi.dtype, &v, MIXRT_DTYPE_F64, 1);
            else if (vi.dtype == MIXRT_DTYPE_I64)
                ((int64_t *)in[n]->data)[k] = (int64_t)(fabs(v) * 7);
            else if (vi.dtype == MIXRT_DTYPE_I32)
                ((int32_t *)in[n]->data)[k] = (int32_t)(fabs(v) * 7);
        }
        names[n++] = vi.name;
    }
    return n;
}

/* Uploads a host tensor into a new device tensor of e (NULL on failure, recorded). */
static struct mixrt_tensor *upload(mixrt_engine_t e, const struct mixrt_tensor *h) {
    struct mixrt_tensor *d = NULL;
    mixrt_status st = mixrt_engine_device_alloc(e, h->dtype, h->rank, h->dims, &d);
    if (st == MIXRT_STATUS_OK) st = mixrt_engine_device_copy(e, d, h);
    TU_CHECK(st == MIXRT_STATUS_OK, "upload: %s", mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) mixrt_engine_device_free(e, d), d = NULL;
    return d;
}

/* A device tensor shaped like h, filled with 0xff bytes (NaN for floats): unwritten
 * elements show. */
static struct mixrt_tensor *poisoned(mixrt_engine_t e, const struct mixrt_tensor *h) {
    struct mixrt_tensor *p = NULL, *d = NULL;
    if (mixrt_tensor_create(ctx, h->dtype, h->rank, h->dims, &p) != MIXRT_STATUS_OK) return NULL;
    memset(p->data, 0xff, p->nbytes);
    d = upload(e, p);
    mixrt_tensor_destroy(ctx, p);
    return d;
}

/* Device tensor d equals host tensor want bit for bit (downloaded through the engine). */
static bool device_equals(mixrt_engine_t e, const struct mixrt_tensor *d, const struct mixrt_tensor *want) {
    struct mixrt_tensor *h = NULL;
    if (mixrt_tensor_create(ctx, want->dtype, want->rank, want->dims, &h) != MIXRT_STATUS_OK) return false;
    memset(h->data, 0xee, h->nbytes);
    mixrt_status st = mixrt_engine_device_copy(e, h, d);
    TU_CHECK(st == MIXRT_STATUS_OK, "download: %s", mixrt_context_last_error(ctx));
    bool eq = st == MIXRT_STATUS_OK && !memcmp(h->data, want->data, want->nbytes);
    mixrt_tensor_destroy(ctx, h);
    return eq;
}

/* Device I/O against the host run's outputs oe (bit for bit: the same kernels run on the
 * same data; only the copies differ): device inputs + device outputs, host inputs + device
 * outputs, device inputs + host outputs (run_into), and run_device's views, which an
 * engine refuses by name when a CPU layer makes an output. */
static void check_device_io(mixrt_engine_t e, const char *model, const char *prec, int n, const char **names,
                            struct mixrt_tensor **in, struct mixrt_tensor **oe) {
    size_t no = mixrt_engine_output_count(e);
    struct mixrt_tensor *din[16] = {0}, *dout[16] = {0}, *hout[16] = {0}, views[16];
    const struct mixrt_graph *g = mixrt_engine_graph(e);
    for (int i = 0; i < n; i++) din[i] = upload(e, in[i]);
    for (size_t k = 0; k < no; k++) dout[k] = poisoned(e, oe[k]);
    for (int combo = 0; combo < 3; combo++) {
        bool dev_in = combo != 1, dev_out = combo != 2;
        for (size_t k = 0; k < no; k++) {
            mixrt_tensor_destroy(ctx, hout[k]), hout[k] = NULL;
            mixrt_tensor_create(ctx, oe[k]->dtype, oe[k]->rank, oe[k]->dims, &hout[k]);
            memset(hout[k]->data, 0xff, hout[k]->nbytes);
        }
        struct mixrt_tensor **outs = dev_out ? dout : hout;
        mixrt_status st = mixrt_engine_run_into(e, (size_t)n, names, (const struct mixrt_tensor *const *)(dev_in ? din : in),
                                                outs);
        TU_CHECK(st == MIXRT_STATUS_OK, "%s %s: run_into with %s inputs, %s outputs: %s", model, prec,
                 dev_in ? "device" : "host", dev_out ? "device" : "host", mixrt_context_last_error(ctx));
        for (size_t k = 0; st == MIXRT_STATUS_OK && k < no; k++) {
            bool eq = dev_out ? device_equals(e, dout[k], oe[k]) : !memcmp(hout[k]->data, oe[k]->data, oe[k]->nbytes);
            TU_CHECK(eq, "%s %s: run_into with %s inputs, %s outputs: output %zu differs from the host run", model, prec,
                     dev_in ? "device" : "host", dev_out ? "device" : "host", k);
        }
    }
    /* Views: every output a CUDA layer makes; else UNSUPPORTED naming the first that is not. */
    const char *cpu_out = NULL;
    for (size_t k = 0; k < no && !cpu_out; k++) {
        int v = g->outputs[k];
        for (int i = 0; i < g->n_nodes; i++)
            for (int j = 0; j < g->nodes[i].n_outputs; j++)
                if (g->nodes[i].outputs[j] == v && !strcmp(mixrt_engine_node_backend(e, i), "cpu"))
                    cpu_out = g->values[v].name;
    }
    for (int rep = 0; rep < 2; rep++) {
        memset(views, 0x5a, sizeof(views));
        mixrt_status st = mixrt_engine_run_device(e, (size_t)n, names,
                                                  (const struct mixrt_tensor *const *)(rep ? in : din), views);
        if (cpu_out) {
            const char *m = mixrt_context_last_error(ctx);
            TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED && strstr(m, cpu_out) && views[0].data == NULL,
                     "%s %s: run_device with output '%s' made on the CPU: status %d '%s'", model, prec, cpu_out, (int)st, m);
            break;
        }
        TU_CHECK(st == MIXRT_STATUS_OK, "%s %s: run_device: %s", model, prec, mixrt_context_last_error(ctx));
        for (size_t k = 0; st == MIXRT_STATUS_OK && k < no; k++) {
            TU_CHECK((views[k].flags & MIXRT_TENSOR_DEVICE_CUDA) && views[k].dtype == oe[k]->dtype &&
                     views[k].rank == oe[k]->rank && views[k].nbytes == oe[k]->nbytes,
                     "%s %s: view %zu has the wrong dtype, rank, size or flags", model, prec, k);
            TU_CHECK(device_equals(e, &views[k], oe[k]), "%s %s: run_device view %zu (%s inputs) differs from the host "
                     "run", model, prec, k, rep ? "host" : "device");
        }
    }
    for (int i = 0; i < 16; i++) {
        mixrt_engine_device_free(e, din[i]);
        mixrt_engine_device_free(e, dout[i]);
        mixrt_tensor_destroy(ctx, hout[i]);
    }
}

static double rel_norm(const struct mixrt_tensor *a, const struct mixrt_tensor *b) {
    size_t n = mixrt_tensor_numel(a);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double x, y;
        mixrt_convert(&x, MIXRT_DTYPE_F64, (const char *)a->data + i * mixrt_dtype_size(a->dtype), a->dtype, 1);
        mixrt_convert(&y, MIXRT_DTYPE_F64, (const char *)b->data + i * mixrt_dtype_size(b->dtype), b->dtype, 1);
        num += (x - y) * (x - y);
        den += y * y;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static char last_describe[8192]; /* check_model's engine, as inspect describes it */
static int last_select;          /* check_model's layers on the cuda_select kernel */
static int last_resize;          /* ... and on cuda_resize */

/* Returns the worst output error of the CUDA engine against the f64 reference (-1: the
 * build or a run failed; checks recorded). Also compares run_into with run. */
static double check_model(const char *model, const char *prec, int *cpu_layers, int *segments) {
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s.onnx", dir, model);
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.backend = "cuda";
    mixrt_precisions_parse(ctx, prec, &o.precisions);
    mixrt_engine_t e = NULL, r = NULL;
    struct mixrt_tensor *in[16] = {0}, *oe[16] = {0}, *orf[16] = {0}, *oi[16] = {0};
    const char *names[16];
    double worst = -1;
    mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
    TU_CHECK(st == MIXRT_STATUS_OK, "build %s --backend cuda --precision %s: %s", model, prec,
             mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) goto done;
    st = mixrt_engine_build_reference(ctx, path, NULL, 0, &r);
    TU_CHECK(st == MIXRT_STATUS_OK, "reference %s: %s", model, mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) goto done;
    int n = make_inputs(e, in, names, 7);
    TU_CHECK(n >= 0, "inputs for %s", model);
    if (n < 0) goto done;
    for (int rep = 0; rep < 2; rep++) { /* the second run replays the captured graph */
        for (int i = 0; i < 16; i++) mixrt_tensor_destroy(ctx, oe[i]), oe[i] = NULL;
        st = mixrt_engine_run(e, (size_t)n, names, (const struct mixrt_tensor *const *)in, oe);
        TU_CHECK(st == MIXRT_STATUS_OK, "run %d of %s (%s): %s", rep, model, prec, mixrt_context_last_error(ctx));
        if (st != MIXRT_STATUS_OK) goto done;
    }
    st = mixrt_engine_run(r, (size_t)n, names, (const struct mixrt_tensor *const *)in, orf);
    TU_CHECK(st == MIXRT_STATUS_OK, "reference run %s: %s", model, mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) goto done;
    size_t no = mixrt_engine_output_count(e);
    worst = 0;
    for (size_t i = 0; i < no; i++) {
        double err = rel_norm(oe[i], orf[i]);
        if (!(err <= worst)) worst = err; /* NaN stays */
        mixrt_tensor_create(ctx, oe[i]->dtype, oe[i]->rank, oe[i]->dims, &oi[i]);
        memset(oi[i]->data, 0xff, oi[i]->nbytes);
    }
    st = mixrt_engine_run_into(e, (size_t)n, names, (const struct mixrt_tensor *const *)in, oi);
    TU_CHECK(st == MIXRT_STATUS_OK, "run_into %s: %s", model, mixrt_context_last_error(ctx));
    for (size_t i = 0; st == MIXRT_STATUS_OK && i < no; i++)
        TU_CHECK(!memcmp(oi[i]->data, oe[i]->data, oe[i]->nbytes), "%s: run_into output %zu differs from run", model, i);
    check_device_io(e, model, prec, n, names, in, oe);
    int s, cs, h2d, d2h;
    mixrt_engine_cuda_counts(e, &s, &cs, &h2d, &d2h);
    *segments = s;
    *cpu_layers = 0;
    const struct mixrt_graph *g = mixrt_engine_graph(e);
    last_select = last_resize = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        *cpu_layers += !strcmp(mixrt_engine_node_backend(e, i), "cpu");
        const char *k = mixrt_engine_cuda_node_kernel(e, i);
        last_select += k && !strcmp(k, "cuda_select");
        last_resize += k && !strcmp(k, "cuda_resize");
    }
    printf("  %-18s %-10s rel-norm %.3g  layers %d (%d on the CPU), segments %d (%d CUDA), copies %d H2D %d D2H\n",
           model, prec, worst, g->n_nodes, *cpu_layers, s, cs, h2d, d2h);
    if (getenv("MIXRT_TEST_VERBOSE")) mixrt_engine_cuda_describe(e, stdout);
    FILE *df = fmemopen(last_describe, sizeof last_describe - 1, "w");
    if (df) {
        mixrt_engine_cuda_describe(e, df);
        fclose(df);
    }
done:
    for (int i = 0; i < 16; i++) {
        mixrt_tensor_destroy(ctx, in[i]);
        mixrt_tensor_destroy(ctx, oe[i]);
        mixrt_tensor_destroy(ctx, orf[i]);
        mixrt_tensor_destroy(ctx, oi[i]);
    }
    mixrt_engine_destroy(e);
    mixrt_engine_destroy(r);
    return worst;
}

/* The small models of `cuda_device.sh models`: present (a missing one is a failure, not a skip)
 * and, per precision, the engine against the f64 reference (f32 1e-5, else 2e-2); the CPU layer
 * and segment counts for the caller's own checks. */
static bool small_model(const char *model) {
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s.onnx", dir, model);
    FILE *f = fopen(path, "rb");
    TU_CHECK(f != NULL, "%s.onnx missing (scripts/cuda_device.sh models %s)", model, dir);
    if (f) fclose(f);
    return f != NULL;
}

static void small_check(const char *model, const char *prec, int *cpu, int *seg) {
    memset(last_describe, 0, sizeof last_describe);
    double err = check_model(model, prec, cpu, seg), tol = strcmp(prec, "fp32") ? 2e-2 : 1e-5;
    TU_CHECK(err >= 0 && err <= tol, "%s %s: rel-norm %g > %g", model, prec, err, tol);
}

int main(void) {
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    const char *ex = getenv("MIXRT_CUDA_EXAMPLES"), *bin = getenv("MIXRT_BINARY_DIR");
    if (ex) snprintf(dir, sizeof(dir), "%s", ex);
    else snprintf(dir, sizeof(dir), "%s/examples", bin ? bin : "build");
    char probe[1200];
    snprintf(probe, sizeof(probe), "%s/transformer_f32.onnx", dir);
    FILE *pf = fopen(probe, "rb");
    if (!pf) {
        char cmd[2600];
        snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/scripts/make_examples.py %s >/dev/null 2>&1",
                 getenv("MIXRT_SOURCE_DIR") ? getenv("MIXRT_SOURCE_DIR") : ".", dir);
        if (system(cmd) != 0 || !(pf = fopen(probe, "rb"))) {
            printf("test_cuda_engine: SKIP: no example models in %s (scripts/make_examples.py failed)\n", dir);
            return 77;
        }
    }
    fclose(pf);

    /* No GPU, or no libmixrt_cuda.so: a named error, and the test is skipped visibly. */
    {
        struct mixrt_build_options o;
        mixrt_build_options_init(&o);
        o.backend = "cuda";
        mixrt_engine_t e = NULL;
        mixrt_status st = mixrt_engine_build(ctx, probe, &o, &e);
        if (st != MIXRT_STATUS_OK) {
            const char *m = mixrt_context_last_error(ctx);
            TU_CHECK(strstr(m, "no CUDA device") || strstr(m, "cannot load libmixrt_cuda.so"), "unexpected error: %s", m);
            printf("test_cuda_engine: SKIP: %s\n", m);
            return tu_failures ? tu_finish("test_cuda_engine") : 77;
        }
        mixrt_engine_destroy(e);
    }

    /* Convolutions go to cuDNN by default (MIXRT_CUDA_CONV=0: the CPU); the CNN is then one
     * CUDA segment (convs, pools, epilogues) and --require-full accepts it. The second pass
     * (k = 1) turns convs off: the mixed CPU/CUDA path with its copies. */
    static const char *const models[] = {"transformer_f32", "transformer_bf16", "cnn_f32", "cnn_bf16", "patch",
                                         "masked_attention", "cnn_f32", "cnn_bf16", "patch"};
    static const char *const precs[] = {"fp32", "fp32,bf16", "bf16"};
    for (int m = 0; m < 9; m++)
        for (int p = 0; p < 3; p++) {
            bool conv_on = m < 6;
            if (conv_on) unsetenv("MIXRT_CUDA_CONV");
            else setenv("MIXRT_CUDA_CONV", "0", 1);
            if (m == 4 || m == 5 || m == 8) { /* optional models (patch without CUDA convs: output y1
                                               * made on the CPU, input x read there) */
                char path[1200];
                snprintf(path, sizeof(path), "%s/%s.onnx", dir, models[m]);
                FILE *f = fopen(path, "rb");
                if (!f) {
                    if (p == 0) printf("  %s: not present (scripts/cuda_device.sh models %s)\n", models[m], dir);
                    continue;
                }
                fclose(f);
            }
            int cpu = -1, seg = -1;
            double err = check_model(models[m], precs[p], &cpu, &seg);
            /* fp32 without TF32 is f32 arithmetic (1e-5); the bf16 engines and the bf16
             * models (whose weights/inputs round to bf16 whatever the precision) 2e-2. */
            bool f32 = p == 0 && (strstr(models[m], "f32") || m == 4 || m == 5 || m == 8);
            double tol = f32 ? 1e-5 : 2e-2;
            TU_CHECK(err >= 0 && err <= tol, "%s %s: rel-norm %g > %g", models[m], precs[p], err, tol);
            if (conv_on)
                TU_CHECK(cpu == 0 && seg == 1, "%s %s: %d CPU layers, %d segments (expected all on CUDA)", models[m],
                         precs[p], cpu, seg);
            else
                TU_CHECK(cpu > 0 && seg > 1, "%s %s (MIXRT_CUDA_CONV=0): %d CPU layers, %d segments (Conv runs on "
                         "the CPU)", models[m], precs[p], cpu, seg);
        }
    unsetenv("MIXRT_CUDA_CONV");
    /* The MLP's erf GELU (fc1) under a bf16 product: cuBLASLt's tanh-form epilogue, announced
     * in the description; MIXRT_CUDA_GELU=exact keeps the erf pass; under fp32 always erf
     * (its 1e-5 check above would fail on the tanh form's 4.7e-4). */
    for (int x = 0; x < 3; x++) {
        int cpu = -1, seg = -1;
        if (x == 1) setenv("MIXRT_CUDA_GELU", "exact", 1);
        else unsetenv("MIXRT_CUDA_GELU");
        memset(last_describe, 0, sizeof last_describe);
        double err = check_model("transformer_f32", x == 2 ? "fp32" : "fp32,bf16", &cpu, &seg);
        TU_CHECK(err >= 0 && err <= (x == 2 ? 1e-5 : 2e-2), "GELU case %d: rel-norm %g", x, err);
        bool said = strstr(last_describe, "approximation: erf GELU as cuBLASLt's tanh-form GELU epilogue in 1 layer ") != NULL;
        TU_CHECK(said == (x == 0), "GELU case %d: the approximation is %s (description: %.300s)", x,
                 said ? "announced where it must not run" : "not announced", last_describe);
    }
    unsetenv("MIXRT_CUDA_GELU");
    /* MobileNetV3's activations (hardswish.onnx: HardSwish in conv epilogues, the depthwise
     * kernel and alone, HardSigmoid's squeeze-excite gate): one CUDA segment, no CPU layer. */
    if (small_model("hardswish"))
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            small_check("hardswish", precs[p], &cpu, &seg);
            TU_CHECK(cpu == 0 && seg == 1, "hardswish %s: %d CPU layers, %d segments (expected all on CUDA)", precs[p],
                     cpu, seg);
        }
    /* Mistral / Qwen2's pieces (llama_ops.onnx: RMSNorm's Pow / ReduceMean / Sqrt / Reciprocal,
     * the rotary Neg, GQA's Expand, Exp, ReduceSum, InstanceNormalization, zero Pads, rank-5
     * Einsum attention): all on CUDA. */
    if (small_model("llama_ops"))
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            small_check("llama_ops", precs[p], &cpu, &seg);
            TU_CHECK(cpu == 0 && seg == 1, "llama_ops %s: %d CPU layers, %d segments (expected all on CUDA)", precs[p],
                     cpu, seg);
        }
    /* 1-D convs (conv1d.onnx: padded, strided, kernel == stride) as 2-D ones of height 1: all
     * on CUDA, one segment. */
    if (small_model("conv1d"))
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            small_check("conv1d", precs[p], &cpu, &seg);
            TU_CHECK(cpu == 0 && seg == 1, "conv1d %s: %d CPU layers, %d segments (expected all on CUDA)", precs[p], cpu,
                     seg);
        }
    /* 3-D convs (conv3d.onnx: padded, strided, dilated in time, (1, 3, 3) and (3, 1, 1) kernels,
     * depthwise with a residual, bias and Relu; a 3-D MaxPool and global average after): every
     * layer on CUDA, one segment, with the timed layout choice and each layout forced
     * (MIXRT_CUDA_CONV3D: NCDHW convs, or NDHWC ones between tiled transposes). */
    if (small_model("conv3d")) {
        static const char *const lay[] = {NULL, "ncdhw", "ndhwc"};
        for (int l = 0; l < 3; l++) {
            if (lay[l]) setenv("MIXRT_CUDA_CONV3D", lay[l], 1);
            for (int p = 0; p < 3; p++) {
                int cpu = -1, seg = -1;
                small_check("conv3d", precs[p], &cpu, &seg);
                TU_CHECK(cpu == 0 && seg == 1, "conv3d %s (%s): %d CPU layers, %d segments (expected all on CUDA)",
                         precs[p], lay[l] ? lay[l] : "timed", cpu, seg);
            }
        }
        unsetenv("MIXRT_CUDA_CONV3D");
    }
    /* auto_pad SAME_UPPER convs (same_pad.onnx, HF EfficientNet's): the stride-1 ones with even
     * pads on CUDA, the stride-2 one with an uneven pad on the CPU (one layer). */
    if (small_model("same_pad"))
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            small_check("same_pad", precs[p], &cpu, &seg);
            TU_CHECK(cpu == 1, "same_pad %s: %d CPU layers, %d segments (expected the stride-2 conv alone)", precs[p],
                     cpu, seg);
        }
    /* Upsampling (resize.onnx: bilinear half_pixel and align_corners, nearest asymmetric floor,
     * pytorch_half_pixel down to 5 columns): every Resize on cuda_resize, one segment. */
    if (small_model("resize"))
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            small_check("resize", precs[p], &cpu, &seg);
            TU_CHECK(cpu == 0 && seg == 1 && last_resize == 4, "resize %s: %d CPU layers, %d segments, %d cuda_resize "
                     "layers (expected 4, all on CUDA)", precs[p], cpu, seg, last_resize);
        }
    /* The attention paths batch-32 engines take, forced onto the small models: batched GEMMs +
     * the softmax kernel, and the flash kernel (also taken for long sequences); bf16 engines
     * against the f64 reference. A missing model is a failure, not a skip. */
    static const char *const gemm_models[] = {"transformer_f32", "transformer_bf16", "masked_attention"};
    static const struct {
        const char *var, *value, *what;
    } forced[] = {{"MIXRT_CUDA_ATTENTION", "gemm", "batched-GEMM attention"}, {"MIXRT_CUDA_FLASH", "on", "flash attention"}};
    for (int v = 0; v < 2; v++) {
        setenv(forced[v].var, forced[v].value, 1);
        for (int m = 0; m < 3; m++) {
            char path[1200];
            snprintf(path, sizeof(path), "%s/%s.onnx", dir, gemm_models[m]);
            FILE *f = fopen(path, "rb");
            TU_CHECK(f != NULL, "%s with %s: model %s missing (scripts/cuda_device.sh models writes it)",
                     gemm_models[m], forced[v].what, path);
            if (!f) continue;
            fclose(f);
            for (int p = 1; p < 3; p++) {
                int cpu = -1, seg = -1;
                printf("  (%s=%s)", forced[v].var, forced[v].value);
                double err = check_model(gemm_models[m], precs[p], &cpu, &seg);
                TU_CHECK(err >= 0 && err <= 2e-2, "%s %s with %s: rel-norm %g > 2e-2", gemm_models[m], precs[p],
                         forced[v].what, err);
                TU_CHECK(cpu == 0 && seg == 1, "%s %s with %s: %d CPU layers, %d segments", gemm_models[m], precs[p],
                         forced[v].what, cpu, seg);
            }
        }
        unsetenv(forced[v].var);
    }
    /* Products with unaligned output rows (N = 1001): planned with N padded to 1024, the
     * real columns copied out (graph output, Softmax after) or read by the Cast after it;
     * and the plain plan (MIXRT_CUDA_GEMM_PAD=off), both against the f64 reference. */
    {
        char path[1200];
        snprintf(path, sizeof(path), "%s/lm_head.onnx", dir);
        FILE *f = fopen(path, "rb");
        if (!f) printf("  lm_head: not present (scripts/cuda_device.sh models %s)\n", dir);
        /* pad 2: row groups forced (taken by default from 256 rows per group): both products
         * written in place, y1 under bf16 engines in f32 for the Cast after it. */
        static const char *const pmode[] = {"MIXRT_CUDA_GEMM_PAD=off", "N padded", "row groups"};
        for (int pad = 0; f && pad < 3; pad++) {
            if (pad) unsetenv("MIXRT_CUDA_GEMM_PAD");
            else setenv("MIXRT_CUDA_GEMM_PAD", "off", 1);
            if (pad == 2) setenv("MIXRT_CUDA_GEMM_ROWGROUPS", "on", 1);
            else setenv("MIXRT_CUDA_GEMM_ROWGROUPS", "off", 1);
            for (int p = 0; p < 3; p++) {
                int cpu = -1, seg = -1;
                printf("  (%s)", pmode[pad]);
                memset(last_describe, 0, sizeof last_describe);
                double err = check_model("lm_head", precs[p], &cpu, &seg);
                double tol = p == 0 ? 1e-5 : 2e-2;
                TU_CHECK(err >= 0 && err <= tol, "lm_head %s (%s): rel-norm %g > %g", precs[p], pmode[pad], err, tol);
                TU_CHECK(cpu == 0 && seg == 1, "lm_head %s: %d CPU layers, %d segments", precs[p], cpu, seg);
                bool grouped = strstr(last_describe, "row groups: 2 products") != NULL;
                TU_CHECK(grouped == (pad == 2), "lm_head %s (%s): row groups %s (description: %.300s)", precs[p],
                         pmode[pad], grouped ? "taken" : "not taken", last_describe);
            }
        }
        if (f) fclose(f);
        unsetenv("MIXRT_CUDA_GEMM_PAD");
        unsetenv("MIXRT_CUDA_GEMM_ROWGROUPS");
    }

    /* An attention mask built on the CPU from an int64 input (mask_prologue.onnx: Cast to bool,
     * Not, Where, Unsqueeze) before CUDA layers: the CPU layers run as a prologue, then the
     * CUDA layers as one captured graph (two segments, no CPU layer in between). */
    if (small_model("mask_prologue"))
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            small_check("mask_prologue", precs[p], &cpu, &seg);
            TU_CHECK(cpu >= 2 && seg == 2, "mask_prologue %s: %d CPU layers, %d segments (expected the CPU prologue "
                     "and one CUDA segment)", precs[p], cpu, seg);
            TU_CHECK(strstr(last_describe, "CUDA graph: captured") != NULL, "mask_prologue %s: no CUDA graph after "
                     "the CPU prologue (description: %.300s)", precs[p], last_describe);
        }

    /* GPT-2's mask as transformers exports it (causal_mask.onnx: And of a causal constant with
     * the padding row, Where(mask, 0, lowest)): And and Where on cuda_select, the int64 input's
     * Cast to bool and its Unsqueeze on the device too: one segment, no CPU layer. The dynamo
     * exporter's form (gathernd_mask.onnx: Reshape, Cast, GatherND with constant indices of
     * batch_dims 0 and 1) likewise. */
    /* causal_mask is read by the Attention as its padding row with causal_add, and with
     * MIXRT_CUDA_MASK_ROWS=off as the full mask; pad_mask (BERT's all-true constant: the graph
     * passes drop that And, so the Attention already gets the row): all on CUDA. Against the
     * f64 reference, fully masked query rows included (a constant And: causal_mask's row 0 of
     * image 0, pad_mask's image 1). */
    if (small_model("pad_mask"))
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            small_check("pad_mask", precs[p], &cpu, &seg);
            TU_CHECK(cpu == 0 && seg == 1 && last_select == 2, "pad_mask %s: %d CPU layers, %d segments, %d "
                     "cuda_select layers (expected all on CUDA, And and Where on cuda_select)", precs[p], cpu, seg,
                     last_select);
        }
    for (int off = 0; off < 2 && small_model("causal_mask"); off++) {
        if (off) setenv("MIXRT_CUDA_MASK_ROWS", "off", 1);
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            printf("  (%s)", off ? "MIXRT_CUDA_MASK_ROWS=off" : "mask rows");
            small_check("causal_mask", precs[p], &cpu, &seg);
            TU_CHECK(cpu == 0 && seg == 1 && last_select == 3, "causal_mask %s: %d CPU layers, %d segments, %d "
                     "cuda_select layers (expected all on CUDA, two Ands and Where on cuda_select)", precs[p], cpu,
                     seg, last_select);
            bool rows = strstr(last_describe, "attention masks: 1 Where") != NULL;
            TU_CHECK(rows == !off, "causal_mask %s: mask rows %s (description: %.300s)", precs[p],
                     rows ? "taken" : "not taken", last_describe);
        }
        unsetenv("MIXRT_CUDA_MASK_ROWS");
    }
    if (small_model("gathernd_mask"))
        for (int p = 0; p < 3; p++) {
            int cpu = -1, seg = -1;
            small_check("gathernd_mask", precs[p], &cpu, &seg);
            TU_CHECK(cpu == 0 && seg == 1 && last_select == 3, "gathernd_mask %s: %d CPU layers, %d segments, %d "
                     "cuda_select layers (expected all on CUDA, two Ands and Where on cuda_select)", precs[p], cpu,
                     seg, last_select);
        }

    /* GPT-2's fused QKV (qkv_split.onnx): the Split launches nothing, the Attention reads the
     * three windows of the product's rows (kernel cuda_split_view); with
     * MIXRT_CUDA_SPLIT_VIEW=off the Split copies (cuda_split); with the flash kernel forced
     * the windows go through its 16-byte loads. All against the f64 reference. */
    {
        char path[1200];
        snprintf(path, sizeof(path), "%s/qkv_split.onnx", dir);
        FILE *f = fopen(path, "rb");
        if (!f) printf("  qkv_split: not present (scripts/cuda_device.sh models %s)\n", dir);
        static const char *const vmode[] = {"split view", "MIXRT_CUDA_SPLIT_VIEW=off", "split view, MIXRT_CUDA_FLASH=on"};
        for (int v = 0; f && v < 3; v++) {
            if (v == 1) setenv("MIXRT_CUDA_SPLIT_VIEW", "off", 1);
            else unsetenv("MIXRT_CUDA_SPLIT_VIEW");
            if (v == 2) setenv("MIXRT_CUDA_FLASH", "on", 1);
            for (int p = 0; p < 3; p++) {
                if (v == 2 && p == 0) continue; /* flash is 16-bit only */
                int cpu = -1, seg = -1;
                printf("  (%s)", vmode[v]);
                double err = check_model("qkv_split", precs[p], &cpu, &seg);
                double tol = p == 0 ? 1e-5 : 2e-2;
                TU_CHECK(err >= 0 && err <= tol, "qkv_split %s (%s): rel-norm %g > %g", precs[p], vmode[v], err, tol);
                TU_CHECK(cpu == 0 && seg == 1, "qkv_split %s: %d CPU layers, %d segments", precs[p], cpu, seg);
                struct mixrt_build_options o;
                mixrt_build_options_init(&o);
                o.backend = "cuda";
                mixrt_precisions_parse(ctx, precs[p], &o.precisions);
                mixrt_engine_t e = NULL;
                if (mixrt_engine_build(ctx, path, &o, &e) == MIXRT_STATUS_OK) {
                    const struct mixrt_graph *g = mixrt_engine_graph(e);
                    int splits = 0;
                    for (int i = 0; i < g->n_nodes; i++) {
                        if (strcmp(g->nodes[i].op_type, "Split")) continue;
                        const char *k = mixrt_engine_cuda_node_kernel(e, i);
                        const char *want = v == 1 ? "cuda_split" : "cuda_split_view";
                        splits++;
                        TU_CHECK(k && !strcmp(k, want), "qkv_split %s (%s): Split runs '%s', expected '%s'", precs[p],
                                 vmode[v], k ? k : "(cpu)", want);
                    }
                    TU_CHECK(splits == 1, "qkv_split %s: %d Split layers (expected 1)", precs[p], splits);
                } else {
                    TU_CHECK(0, "qkv_split %s: build: %s", precs[p], mixrt_context_last_error(ctx));
                }
                mixrt_engine_destroy(e);
            }
        }
        if (f) fclose(f);
        unsetenv("MIXRT_CUDA_SPLIT_VIEW");
        unsetenv("MIXRT_CUDA_FLASH");
    }

    /* --require-full: with convs on the CPU (MIXRT_CUDA_CONV=0) the CNN is a named error listing
     * Conv; by default it builds. */
    for (int conv_on = 0; conv_on < 2; conv_on++) {
        if (conv_on) unsetenv("MIXRT_CUDA_CONV");
        else setenv("MIXRT_CUDA_CONV", "0", 1);
        char path[1200];
        snprintf(path, sizeof(path), "%s/cnn_f32.onnx", dir);
        struct mixrt_build_options o;
        mixrt_build_options_init(&o);
        o.backend = "cuda";
        o.require_full = 1;
        mixrt_engine_t e = NULL;
        mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
        const char *m = mixrt_context_last_error(ctx);
        if (!conv_on)
            TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED && strstr(m, "--require-full") && strstr(m, "Conv"),
                     "--require-full on the CNN (MIXRT_CUDA_CONV=0): status %d, '%s'", (int)st, m);
        else
            TU_CHECK(st == MIXRT_STATUS_OK, "--require-full on the CNN with cuDNN convs: status %d %s", (int)st, m);
        mixrt_engine_destroy(e);
        e = NULL;
        if (!conv_on) continue;
        snprintf(path, sizeof(path), "%s/transformer_f32.onnx", dir);
        st = mixrt_engine_build(ctx, path, &o, &e);
        TU_CHECK(st == MIXRT_STATUS_OK, "--require-full on the transformer: %s", mixrt_context_last_error(ctx));
        /* A wrong input shape is a named error, not a crash. */
        if (st == MIXRT_STATUS_OK) {
            int64_t dims[3] = {1, 8, 64};
            struct mixrt_tensor *t = NULL, *out[4] = {0};
            mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 3, dims, &t);
            const char *nm = "tokens";
            st = mixrt_engine_run(e, 1, &nm, (const struct mixrt_tensor *const *)&t, out);
            m = mixrt_context_last_error(ctx);
            TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && strstr(m, "tokens"), "wrong shape: %d '%s'", (int)st, m);
            mixrt_tensor_destroy(ctx, t);
        }
        mixrt_engine_destroy(e);
    }
    /* Device tensors: the named errors. */
    {
        char path[1200];
        snprintf(path, sizeof(path), "%s/transformer_f32.onnx", dir);
        struct mixrt_build_options o;
        mixrt_build_options_init(&o);
        mixrt_engine_t cpu = NULL, gpu = NULL;
        mixrt_status st = mixrt_engine_build(ctx, path, &o, &cpu);
        o.backend = "cuda";
        if (st == MIXRT_STATUS_OK) st = mixrt_engine_build(ctx, path, &o, &gpu);
        TU_CHECK(st == MIXRT_STATUS_OK, "device errors: builds: %s", mixrt_context_last_error(ctx));
        struct mixrt_tensor *in[16] = {0}, *oe[16] = {0}, *din = NULL, *dbad = NULL, *dout[16] = {0}, *t = NULL;
        const char *names[16];
        int n = st == MIXRT_STATUS_OK ? make_inputs(gpu, in, names, 11) : -1;
        if (n >= 1 && mixrt_engine_run(gpu, (size_t)n, names, (const struct mixrt_tensor *const *)in, oe) == MIXRT_STATUS_OK) {
            size_t no = mixrt_engine_output_count(gpu);
            din = upload(gpu, in[0]);
            for (size_t k = 0; k < no; k++) dout[k] = poisoned(gpu, oe[k]);
            const char *out0 = mixrt_engine_graph(gpu)->values[mixrt_engine_graph(gpu)->outputs[0]].name;
            const char *m;
            /* A CPU engine: device inputs, device outputs and the device calls are UNSUPPORTED. */
            struct mixrt_tensor *cin[16];
            memcpy(cin, in, sizeof(cin));
            cin[0] = din;
            st = mixrt_engine_run(cpu, (size_t)n, names, (const struct mixrt_tensor *const *)cin, oe + 8);
            m = mixrt_context_last_error(ctx);
            TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED && strstr(m, names[0]) && strstr(m, "device"),
                     "CPU engine, device input: %d '%s'", (int)st, m);
            st = mixrt_engine_run_into(cpu, (size_t)n, names, (const struct mixrt_tensor *const *)in, dout);
            m = mixrt_context_last_error(ctx);
            TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED && strstr(m, out0), "CPU engine, device output: %d '%s'", (int)st, m);
            st = mixrt_engine_device_alloc(cpu, MIXRT_DTYPE_F32, 1, (const int64_t[]){4}, &t);
            TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED && !t, "device_alloc on a CPU engine: %d", (int)st);
            struct mixrt_tensor views[16];
            st = mixrt_engine_run_device(cpu, (size_t)n, names, (const struct mixrt_tensor *const *)in, views);
            TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED, "run_device on a CPU engine: %d", (int)st);
            /* CUDA engine: wrong dtype / shape / size of device tensors name the tensor. */
            mixrt_dtype other = in[0]->dtype == MIXRT_DTYPE_F32 ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
            st = mixrt_engine_device_alloc(gpu, other, in[0]->rank, in[0]->dims, &dbad);
            TU_CHECK(st == MIXRT_STATUS_OK, "device_alloc: %s", mixrt_context_last_error(ctx));
            cin[0] = dbad;
            st = mixrt_engine_run_into(gpu, (size_t)n, names, (const struct mixrt_tensor *const *)cin, dout);
            m = mixrt_context_last_error(ctx);
            TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && strstr(m, names[0]), "device input of the wrong dtype: %d '%s'",
                     (int)st, m);
            struct mixrt_tensor shell = *din; /* right dtype and dims, wrong byte count */
            shell.nbytes -= 1;
            cin[0] = &shell;
            st = mixrt_engine_run_into(gpu, (size_t)n, names, (const struct mixrt_tensor *const *)cin, dout);
            m = mixrt_context_last_error(ctx);
            TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && strstr(m, names[0]), "device input with nbytes - 1: %d '%s'",
                     (int)st, m);
            struct mixrt_tensor *keep = dout[0], *wrong = NULL;
            int64_t wd[MIXRT_MAX_RANK];
            memcpy(wd, oe[0]->dims, sizeof(wd));
            wd[oe[0]->rank - 1] += 1;
            mixrt_engine_device_alloc(gpu, oe[0]->dtype, oe[0]->rank, wd, &wrong);
            dout[0] = wrong;
            cin[0] = din;
            st = mixrt_engine_run_into(gpu, (size_t)n, names, (const struct mixrt_tensor *const *)cin, dout);
            m = mixrt_context_last_error(ctx);
            TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && strstr(m, out0), "device output of the wrong shape: %d '%s'",
                     (int)st, m);
            dout[0] = keep;
            mixrt_engine_device_free(gpu, wrong);
            st = mixrt_engine_run_device(gpu, (size_t)n, names, (const struct mixrt_tensor *const *)cin, NULL);
            TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT, "run_device with NULL views: %d", (int)st);
            st = mixrt_engine_device_copy(gpu, dbad, in[0]);
            TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT, "device_copy across dtypes: %d", (int)st);
            /* After the refusals the engine still runs, bit-equal. */
            st = mixrt_engine_run_into(gpu, (size_t)n, names, (const struct mixrt_tensor *const *)cin, dout);
            TU_CHECK(st == MIXRT_STATUS_OK && device_equals(gpu, dout[0], oe[0]), "device run after the errors: %s",
                     mixrt_context_last_error(ctx));
        } else {
            TU_CHECK(0, "device errors: inputs or the host run failed: %s", mixrt_context_last_error(ctx));
        }
        mixrt_engine_device_free(gpu, din);
        mixrt_engine_device_free(gpu, dbad);
        for (int i = 0; i < 16; i++) {
            mixrt_engine_device_free(gpu, dout[i]);
            mixrt_tensor_destroy(ctx, in[i]);
            mixrt_tensor_destroy(ctx, oe[i]);
        }
        mixrt_engine_destroy(cpu);
        mixrt_engine_destroy(gpu);
    }
    int rc = tu_finish("test_cuda_engine");
    mixrt_context_destroy(ctx);
    return rc;
}
