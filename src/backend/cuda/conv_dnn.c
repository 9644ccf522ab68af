/* conv_dnn.c - 2-D and 3-D convolution through cuDNN 9's convolution API (NCHW or NHWC, f32 / bf16 /
 * f16), with cuDNN loaded by dlopen on first use so libmixrt_cuda.so still loads where cuDNN
 * is absent (a conv plan then fails with UNSUPPORTED naming the library). Invariant: a plan
 * holds descriptors whose shapes were accepted by cuDNN and an algorithm whose workspace fits
 * the device's shared workspace, so a run only enqueues. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "backend/cuda/cuda_impl.h"

/* The cuDNN entry points used here (the library's shim exports them all). */
struct dnn_api {
    const char *(*GetErrorString)(cudnnStatus_t);
    cudnnStatus_t (*Create)(cudnnHandle_t *);
    cudnnStatus_t (*Destroy)(cudnnHandle_t);
    cudnnStatus_t (*SetStream)(cudnnHandle_t, cudaStream_t);
    cudnnStatus_t (*CreateTensorDescriptor)(cudnnTensorDescriptor_t *);
    cudnnStatus_t (*SetTensor4dDescriptor)(cudnnTensorDescriptor_t, cudnnTensorFormat_t, cudnnDataType_t, int, int,
                                           int, int);
    cudnnStatus_t (*SetTensorNdDescriptorEx)(cudnnTensorDescriptor_t, cudnnTensorFormat_t, cudnnDataType_t, int,
                                             const int *);
    cudnnStatus_t (*DestroyTensorDescriptor)(cudnnTensorDescriptor_t);
    cudnnStatus_t (*CreateFilterDescriptor)(cudnnFilterDescriptor_t *);
    cudnnStatus_t (*SetFilter4dDescriptor)(cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int, int,
                                           int, int);
    cudnnStatus_t (*SetFilterNdDescriptor)(cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int,
                                           const int *);
    cudnnStatus_t (*DestroyFilterDescriptor)(cudnnFilterDescriptor_t);
    cudnnStatus_t (*CreateConvolutionDescriptor)(cudnnConvolutionDescriptor_t *);
    cudnnStatus_t (*SetConvolution2dDescriptor)(cudnnConvolutionDescriptor_t, int, int, int, int, int, int,
                                                cudnnConvolutionMode_t, cudnnDataType_t);
    cudnnStatus_t (*SetConvolutionNdDescriptor)(cudnnConvolutionDescriptor_t, int, const int *, const int *,
                                                const int *, cudnnConvolutionMode_t, cudnnDataType_t);
    cudnnStatus_t (*GetConvolutionNdForwardOutputDim)(const cudnnConvolutionDescriptor_t,
                                                      const cudnnTensorDescriptor_t, const cudnnFilterDescriptor_t,
                                                      int, int *);
    cudnnStatus_t (*SetConvolutionGroupCount)(cudnnConvolutionDescriptor_t, int);
    cudnnStatus_t (*SetConvolutionMathType)(cudnnConvolutionDescriptor_t, cudnnMathType_t);
    cudnnStatus_t (*DestroyConvolutionDescriptor)(cudnnConvolutionDescriptor_t);
    cudnnStatus_t (*GetConvolution2dForwardOutputDim)(const cudnnConvolutionDescriptor_t,
                                                      const cudnnTensorDescriptor_t, const cudnnFilterDescriptor_t,
                                                      int *, int *, int *, int *);
    cudnnStatus_t (*GetConvolutionForwardAlgorithm_v7)(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                       const cudnnFilterDescriptor_t,
                                                       const cudnnConvolutionDescriptor_t,
                                                       const cudnnTensorDescriptor_t, const int, int *,
                                                       cudnnConvolutionFwdAlgoPerf_t *);
    cudnnStatus_t (*FindConvolutionForwardAlgorithm)(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                     const cudnnFilterDescriptor_t, const cudnnConvolutionDescriptor_t,
                                                     const cudnnTensorDescriptor_t, const int, int *,
                                                     cudnnConvolutionFwdAlgoPerf_t *);
    cudnnStatus_t (*ConvolutionForward)(cudnnHandle_t, const void *, const cudnnTensorDescriptor_t, const void *,
                                        const cudnnFilterDescriptor_t, const void *,
                                        const cudnnConvolutionDescriptor_t, cudnnConvolutionFwdAlgo_t, void *, size_t,
                                        const void *, const cudnnTensorDescriptor_t, void *);
    /* the graph (backend) API; NULL when this cuDNN lacks it (the legacy calls then serve) */
    cudnnStatus_t (*BackendCreateDescriptor)(cudnnBackendDescriptorType_t, cudnnBackendDescriptor_t *);
    cudnnStatus_t (*BackendDestroyDescriptor)(cudnnBackendDescriptor_t);
    cudnnStatus_t (*BackendFinalize)(cudnnBackendDescriptor_t);
    cudnnStatus_t (*BackendSetAttribute)(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t,
                                         cudnnBackendAttributeType_t, int64_t, const void *);
    cudnnStatus_t (*BackendGetAttribute)(cudnnBackendDescriptor_t const, cudnnBackendAttributeName_t,
                                         cudnnBackendAttributeType_t, int64_t, int64_t *, void *);
    cudnnStatus_t (*BackendExecute)(cudnnHandle_t, cudnnBackendDescriptor_t, cudnnBackendDescriptor_t);
};

static pthread_mutex_t g_dnn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dnn_api g_dnn;
static int g_dnn_state; /* 0 not tried, 1 loaded, -1 failed */
static char g_dnn_err[512];

/* Loads cuDNN once per process (never unloaded, like the CUDA runtime it sits on). */
static mixrt_status dnn_load(mixrt_context_t ctx) {
    mixrt_status status = MIXRT_STATUS_OK;
    pthread_mutex_lock(&g_dnn_lock);
    if (g_dnn_state == 0) {
        /* MIXRT_CUDNN_LIBRARY names another copy (a Python wheel's, say); else the search path. */
        const char *env = getenv("MIXRT_CUDNN_LIBRARY");
        const char *path = env && *env ? env : "libcudnn.so.9";
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(g_dnn_err, sizeof g_dnn_err, "cannot load %s: %s", path, dlerror());
            g_dnn_state = -1;
        } else {
            struct {
                const char *name;
                void **slot;
            } syms[] = {
#define DNN_SYM(n) {"cudnn" #n, (void **)&g_dnn.n}
                DNN_SYM(GetErrorString), DNN_SYM(Create), DNN_SYM(Destroy), DNN_SYM(SetStream),
                DNN_SYM(CreateTensorDescriptor), DNN_SYM(SetTensor4dDescriptor), DNN_SYM(DestroyTensorDescriptor),
                DNN_SYM(CreateFilterDescriptor), DNN_SYM(SetFilter4dDescriptor), DNN_SYM(DestroyFilterDescriptor),
                DNN_SYM(CreateConvolutionDescriptor), DNN_SYM(SetConvolution2dDescriptor),
                DNN_SYM(SetConvolutionGroupCount), DNN_SYM(SetConvolutionMathType),
                DNN_SYM(DestroyConvolutionDescriptor), DNN_SYM(GetConvolution2dForwardOutputDim),
                DNN_SYM(GetConvolutionForwardAlgorithm_v7), DNN_SYM(FindConvolutionForwardAlgorithm),
                DNN_SYM(ConvolutionForward), DNN_SYM(SetTensorNdDescriptorEx), DNN_SYM(SetFilterNdDescriptor),
                DNN_SYM(SetConvolutionNdDescriptor), DNN_SYM(GetConvolutionNdForwardOutputDim),
#undef DNN_SYM
            };
            g_dnn_state = 1;
            for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
                *syms[i].slot = dlsym(h, syms[i].name);
                if (!*syms[i].slot) {
                    snprintf(g_dnn_err, sizeof g_dnn_err, "libcudnn.so.9 has no %s (cuDNN 9 expected)", syms[i].name);
                    g_dnn_state = -1;
                    break;
                }
            }
            if (g_dnn_state > 0) {
                struct {
                    const char *name;
                    void **slot;
                } opt[] = {
#define DNN_SYM(n) {"cudnn" #n, (void **)&g_dnn.n}
                    DNN_SYM(BackendCreateDescriptor), DNN_SYM(BackendDestroyDescriptor), DNN_SYM(BackendFinalize),
                    DNN_SYM(BackendSetAttribute), DNN_SYM(BackendGetAttribute), DNN_SYM(BackendExecute),
#undef DNN_SYM
                };
                bool all = true;
                for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) all = (*opt[i].slot = dlsym(h, opt[i].name)) && all;
                if (!all) g_dnn.BackendExecute = NULL; /* the graph path is off */
            }
            if (g_dnn_state < 0) dlclose(h);
        }
    }
    if (g_dnn_state < 0) status = mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cuDNN: %s", g_dnn_err);
    pthread_mutex_unlock(&g_dnn_lock);
    return status;
}

#define DNN_TRY(ctx, call, ...)                                                                            \
    do {                                                                                                   \
        cudnnStatus_t s_ = (call);                                                                         \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                                  \
            char what_[256];                                                                               \
            snprintf(what_, sizeof what_, __VA_ARGS__);                                                    \
            status = mixrt_error((ctx), s_ == CUDNN_STATUS_NOT_SUPPORTED ? MIXRT_STATUS_UNSUPPORTED        \
                                                                          : MIXRT_STATUS_INTERNAL,         \
                                 "cuDNN call %s failed: %s", what_, g_dnn.GetErrorString(s_));             \
            goto fail;                                                                                     \
        }                                                                                                  \
    } while (0)

struct mixrt_cuda_conv {
    struct mixrt_cuda_device *dev;
    struct mixrt_cuda_conv_desc desc;
    char name[128];
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws;
    float ms; /* the chosen algorithm's time in cuDNN's search; -1 when not searched */
    /* the graph-API plan (NULL: the legacy call runs) and what it fuses (MIXRT_CUDA_CONV_DID_*) */
    cudnnBackendDescriptor_t plan, pack;
    size_t plan_ws;
    unsigned plan_did;
    const void *pack_ptr[4]; /* the buffers pack was made for: X, W, Y, bias */
    char kind[24];
};

/* The device's cuDNN handle, made on the first conv plan and bound to its stream. */
static mixrt_status dnn_handle(struct mixrt_cuda_device *dev, cudnnHandle_t *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (!dev->dnn) {
        cudnnHandle_t h = NULL;
        DNN_TRY(dev->ctx, g_dnn.Create(&h), "cudnnCreate");
        if (g_dnn.SetStream(h, dev->stream) != CUDNN_STATUS_SUCCESS) {
            (void)g_dnn.Destroy(h);
            return mixrt_error(dev->ctx, MIXRT_STATUS_INTERNAL, "cuDNN call cudnnSetStream failed");
        }
        dev->dnn = h;
    }
    *out = (cudnnHandle_t)dev->dnn;
fail:
    return status;
}

void mixrt_cuda_dnn_release(struct mixrt_cuda_device *dev) {
    if (dev && dev->dnn && g_dnn_state == 1) (void)g_dnn.Destroy((cudnnHandle_t)dev->dnn);
    if (dev) dev->dnn = NULL;
}

void mixrt_cuda_conv_destroy(mixrt_cuda_conv_t c) {
    if (!c) return;
    if (c->pack) (void)g_dnn.BackendDestroyDescriptor(c->pack);
    if (c->plan) (void)g_dnn.BackendDestroyDescriptor(c->plan);
    if (c->xd) (void)g_dnn.DestroyTensorDescriptor(c->xd);
    if (c->yd) (void)g_dnn.DestroyTensorDescriptor(c->yd);
    if (c->wd) (void)g_dnn.DestroyFilterDescriptor(c->wd);
    if (c->cd) (void)g_dnn.DestroyConvolutionDescriptor(c->cd);
    mixrt_free(c->dev->ctx, c, sizeof *c);
}

/* ---- the graph (backend) API: one execution plan for conv [+ bias] [+ activation] ------------
 * Tensors are described by logical NCHW dims and the strides of their storage; the epilogue's
 * intermediates are virtual f32 tensors, so a fused plan rounds once, at Y, as the separate
 * bias / activation kernel does. Candidates are cuDNN's heuristic list (mode A), filtered for
 * the precision promise (f32: no TF32, FFT or Winograd; no input down-conversion or reduced-
 * precision sums anywhere), finalized and timed on scratch buffers; the fastest is kept. */

enum { UID_X = 1, UID_W, UID_Y, UID_B, UID_T = 10 };
#define G_MAX_DESC 64
#define G_MAX_CAND 12
/* Executions a timing of a candidate, and the spin ahead of it (graph_plan) */
#define G_REPS 4
#define G_SPIN_NS 150000ull

struct gbuild { /* descriptors made while building; destroyed together */
    cudnnBackendDescriptor_t d[G_MAX_DESC];
    int n;
};

static cudnnBackendDescriptor_t g_new(struct gbuild *b, cudnnBackendDescriptorType_t t) {
    cudnnBackendDescriptor_t d = NULL;
    if (b->n >= G_MAX_DESC || g_dnn.BackendCreateDescriptor(t, &d) != CUDNN_STATUS_SUCCESS) return NULL;
    return b->d[b->n++] = d;
}

static void g_free(struct gbuild *b) {
    for (int i = 0; i < b->n; i++) (void)g_dnn.BackendDestroyDescriptor(b->d[i]);
    b->n = 0;
}

static bool g_set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t, int64_t n,
                  const void *v) {
    return d && g_dnn.BackendSetAttribute(d, a, t, n, v) == CUDNN_STATUS_SUCCESS;
}

static bool g_fin(cudnnBackendDescriptor_t d) { return d && g_dnn.BackendFinalize(d) == CUDNN_STATUS_SUCCESS; }

/* A finalized tensor of logical dims [n, c, h, w], stored channels-last (nhwc) or not; virt:
 * an intermediate that lives only inside the fused kernel. */
static cudnnBackendDescriptor_t g_tensor(struct gbuild *b, int64_t uid, cudnnDataType_t t, const int64_t dim[4],
                                         bool nhwc, bool virt) {
    cudnnBackendDescriptor_t d = g_new(b, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    int64_t st[4], al = 16;
    if (nhwc) st[1] = 1, st[3] = dim[1], st[2] = dim[3] * dim[1], st[0] = dim[2] * dim[3] * dim[1];
    else st[3] = 1, st[2] = dim[3], st[1] = dim[2] * dim[3], st[0] = dim[1] * dim[2] * dim[3];
    bool v = true;
    if (!g_set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t) ||
        !g_set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim) ||
        !g_set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, st) ||
        !g_set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid) ||
        !g_set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &al) ||
        (virt && !g_set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v)) || !g_fin(d))
        return NULL;
    return d;
}

/* The operation y = mode(x [, bt]) in f32 math (upper > 0: ReLU clipped there); NULL on refusal. */
static cudnnBackendDescriptor_t g_pointwise(struct gbuild *b, cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                                            cudnnBackendDescriptor_t bt, cudnnBackendDescriptor_t y, float upper) {
    cudnnBackendDescriptor_t pw = g_new(b, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    float lo = 0.0f, one = 1.0f;
    if (!g_set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode) ||
        !g_set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec))
        return NULL;
    if (mode == CUDNN_POINTWISE_RELU_FWD &&
        (!g_set(pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP, CUDNN_TYPE_FLOAT, 1, &lo) ||
         (upper > 0.0f && !g_set(pw, CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, CUDNN_TYPE_FLOAT, 1, &upper))))
        return NULL;
    if (mode == CUDNN_POINTWISE_SWISH_FWD && !g_set(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_FLOAT, 1, &one))
        return NULL;
    if (!g_fin(pw)) return NULL;
    cudnnBackendDescriptor_t op = g_new(b, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    if (!g_set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw) ||
        !g_set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x) ||
        (bt && !g_set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bt)) ||
        !g_set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y) || !g_fin(op))
        return NULL;
    return op;
}

/* cuDNN's pointwise mode of the epilogue activation act (a mixrt_cuda_unary_op); false: none. */
static bool g_act_mode(int act, cudnnPointwiseMode_t *mode, float *upper) {
    *upper = 0.0f;
    switch (act) {
    case MIXRT_CUDA_UNARY_RELU: *mode = CUDNN_POINTWISE_RELU_FWD; return true;
    case MIXRT_CUDA_UNARY_RELU6: *mode = CUDNN_POINTWISE_RELU_FWD, *upper = 6.0f; return true;
    case MIXRT_CUDA_UNARY_SIGMOID: *mode = CUDNN_POINTWISE_SIGMOID_FWD; return true;
    case MIXRT_CUDA_UNARY_TANH: *mode = CUDNN_POINTWISE_TANH_FWD; return true;
    case MIXRT_CUDA_UNARY_SILU: *mode = CUDNN_POINTWISE_SWISH_FWD; return true;
    case MIXRT_CUDA_UNARY_GELU_ERF: *mode = CUDNN_POINTWISE_GELU_FWD; return true;
    case MIXRT_CUDA_UNARY_GELU_TANH: *mode = CUDNN_POINTWISE_GELU_APPROX_TANH_FWD; return true;
    default: return false;
    }
}

/* A finalized variant pack binding X, W, Y (and the bias when nb == 4) and the workspace. */
static cudnnBackendDescriptor_t g_pack(void *const *ptr, int nb, void *ws) {
    static const int64_t uids[4] = {UID_X, UID_W, UID_Y, UID_B};
    cudnnBackendDescriptor_t p = NULL;
    if (g_dnn.BackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &p) != CUDNN_STATUS_SUCCESS) return NULL;
    if (!g_set(p, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, nb, ptr) ||
        !g_set(p, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, nb, uids) ||
        !g_set(p, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws) || !g_fin(p)) {
        (void)g_dnn.BackendDestroyDescriptor(p);
        return NULL;
    }
    return p;
}

/* Whether engine e's numerics keep the promise for data type t (and, unless rtc, it needs no
 * run-time compilation: a compile per plan would cost seconds at build). */
static bool g_engine_ok(cudnnBackendDescriptor_t e, cudnnDataType_t t, bool rtc) {
    cudnnBackendNumericalNote_t nn[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    cudnnBackendBehaviorNote_t bn[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
    int64_t n = 0, m = 0;
    if (g_dnn.BackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                  CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n, nn) != CUDNN_STATUS_SUCCESS ||
        g_dnn.BackendGetAttribute(e, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                  CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &m, bn) != CUDNN_STATUS_SUCCESS)
        return false;
    for (int64_t i = 0; i < n && i < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; i++) {
        cudnnBackendNumericalNote_t k = nn[i];
        if (k == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS || k == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)
            return false;
        if (t == CUDNN_DATA_FLOAT && (k == CUDNN_NUMERICAL_NOTE_TENSOR_CORE || k == CUDNN_NUMERICAL_NOTE_FFT ||
                                      k == CUDNN_NUMERICAL_NOTE_WINOGRAD || k == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4 ||
                                      k == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6 ||
                                      k == CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13))
            return false;
    }
    for (int64_t i = 0; i < m && i < CUDNN_BEHAVIOR_NOTE_TYPE_COUNT; i++)
        if (bn[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION && !rtc) return false;
    return true;
}

/* Builds c's graph plan for conv + what `want` names (MIXRT_CUDA_CONV_DID_*): the fastest
 * finalized candidate, timed on scratch buffers (min of 3 runs after one). false when cuDNN
 * offers none (c unchanged; why says what refused). */
static bool graph_plan(struct mixrt_cuda_conv *c, cudnnHandle_t h, cudnnDataType_t t, unsigned want, char *why,
                       size_t nwhy) {
    const struct mixrt_cuda_conv_desc *d = &c->desc;
    struct mixrt_cuda_device *dev = c->dev;
    struct gbuild b = {.n = 0};
    cudnnBackendDescriptor_t best = NULL, cand[G_MAX_CAND] = {0};
    void *buf[4] = {NULL, NULL, NULL, NULL};
    float best_ms = 0.0f;
    size_t best_ws = 0;
    const char *env = getenv("MIXRT_CUDA_CONV_RTC");
    const bool rtc = env && !strcmp(env, "on");
    snprintf(why, nwhy, "cuDNN refused the graph");
    const int64_t xd[4] = {d->n, d->c, d->h, d->w}, wd[4] = {d->k, d->c / d->groups, d->r, d->s},
                  yd[4] = {d->n, d->k, d->oh, d->ow}, bd[4] = {1, d->k, 1, 1};
    cudnnBackendDescriptor_t X = g_tensor(&b, UID_X, t, xd, d->nhwc, false), W = g_tensor(&b, UID_W, t, wd, d->nhwc, false),
                             Y = g_tensor(&b, UID_Y, t, yd, d->nhwc, false);
    cudnnBackendDescriptor_t ops[3];
    int nops = 0;
    cudnnPointwiseMode_t am = CUDNN_POINTWISE_RELU_FWD;
    float upper = 0.0f;
    if ((want & MIXRT_CUDA_CONV_DID_ACT) && !g_act_mode(d->epi_act - 1, &am, &upper)) goto done;
    {
        /* conv -> T0 (virtual f32) [-> + B -> T1] [-> act] -> Y */
        const bool vb = want & MIXRT_CUDA_CONV_DID_BIAS, va = want & MIXRT_CUDA_CONV_DID_ACT;
        cudnnBackendDescriptor_t T0 = want ? g_tensor(&b, UID_T, CUDNN_DATA_FLOAT, yd, d->nhwc, true) : Y;
        cudnnBackendDescriptor_t cv = g_new(&b, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
        cudnnDataType_t comp = CUDNN_DATA_FLOAT;
        cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
        int64_t sd = 2, dil[2] = {d->dil_h, d->dil_w}, str[2] = {d->stride_h, d->stride_w}, pad[2] = {d->pad_h, d->pad_w};
        float alpha = 1.0f, beta = 0.0f;
        if (!X || !W || !Y || !T0 || !g_set(cv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp) ||
            !g_set(cv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode) ||
            !g_set(cv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &sd) ||
            !g_set(cv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil) ||
            !g_set(cv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, str) ||
            !g_set(cv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad) ||
            !g_set(cv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad) || !g_fin(cv)) {
            snprintf(why, nwhy, "cuDNN refused the tensors or the convolution descriptor");
            goto done;
        }
        cudnnBackendDescriptor_t op = g_new(&b, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
        if (!g_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &X) ||
            !g_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &W) ||
            !g_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &T0) ||
            !g_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cv) ||
            !g_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha) ||
            !g_set(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta) || !g_fin(op)) {
            snprintf(why, nwhy, "cuDNN refused the convolution operation");
            goto done;
        }
        ops[nops++] = op;
        cudnnBackendDescriptor_t cur = T0;
        if (vb) {
            cudnnBackendDescriptor_t B = g_tensor(&b, UID_B, t, bd, d->nhwc, false);
            cudnnBackendDescriptor_t T1 = va ? g_tensor(&b, UID_T + 1, CUDNN_DATA_FLOAT, yd, d->nhwc, true) : Y;
            if (!B || !T1 || !(ops[nops++] = g_pointwise(&b, CUDNN_POINTWISE_ADD, cur, B, T1, 0.0f))) {
                snprintf(why, nwhy, "cuDNN refused the bias add");
                goto done;
            }
            cur = T1;
        }
        if (va && !(ops[nops++] = g_pointwise(&b, am, cur, NULL, Y, upper))) {
            snprintf(why, nwhy, "cuDNN refused the activation");
            goto done;
        }
    }
    cudnnBackendDescriptor_t og = g_new(&b, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    if (!g_set(og, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h) ||
        !g_set(og, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, nops, ops) || !g_fin(og)) {
        snprintf(why, nwhy, "cuDNN refused the operation graph (%d operations)", nops);
        goto done;
    }
    cudnnBackendDescriptor_t heur = g_new(&b, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    cudnnBackendHeurMode_t hm = CUDNN_HEUR_MODE_A;
    int64_t count = 0;
    if (!g_set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &og) ||
        !g_set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &hm) || !g_fin(heur) ||
        g_dnn.BackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                  NULL) != CUDNN_STATUS_SUCCESS ||
        count <= 0) {
        snprintf(why, nwhy, "cuDNN's heuristics have no engine for the graph");
        goto done;
    }
    if (count > G_MAX_CAND) count = G_MAX_CAND;
    cudnnBackendDescriptor_t cfg[G_MAX_CAND];
    for (int64_t i = 0; i < count; i++)
        if (!(cfg[i] = g_new(&b, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR))) goto done;
    int64_t got = 0;
    if (g_dnn.BackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                  cfg) != CUDNN_STATUS_SUCCESS)
        goto done;
    /* scratch operands for the timing (their values do not matter) */
    const size_t es = mixrt_dtype_size(d->dtype);
    const size_t bytes[4] = {(size_t)(d->n * d->c * d->h * d->w) * es, (size_t)(d->k * (d->c / d->groups) * d->r * d->s) * es,
                             (size_t)(d->n * d->k * d->oh * d->ow) * es, (size_t)d->k * es};
    for (int i = 0; i < 4; i++)
        if (cudaMalloc(&buf[i], bytes[i]) != cudaSuccess || cudaMemset(buf[i], 0, bytes[i]) != cudaSuccess) {
            (void)cudaGetLastError();
            snprintf(why, nwhy, "no device memory for timing the candidates");
            goto done;
        }
    int tried = 0, usable = 0;
    mixrt_cuda_warm(dev);
    /* Each timing starts behind a spin kernel (G_SPIN_NS on one SM) that keeps the stream busy
     * while the host enqueues the start event and G_REPS executions: the events then hold the
     * convolutions' device time alone. Timed on an idle stream, a single execution's time
     * included cuDNN's host-side launch (the GPU waited for it), which a CUDA graph's replay
     * does not pay, and b1 convs of 5-10 us took different engines from build to build
     * (ResNet-50's seed row on the GPU read 0.986 in one call and 1.029 in another).
     * MIXRT_CUDA_CONV_SPIN=off times as before. */
    const char *senv = getenv("MIXRT_CUDA_CONV_SPIN");
    const bool spin = !(senv && !strcmp(senv, "off"));
    const int reps = spin ? G_REPS : 1;
    for (int64_t i = 0; i < got && i < count; i++) {
        cudnnBackendDescriptor_t eng = g_new(&b, CUDNN_BACKEND_ENGINE_DESCRIPTOR);
        int64_t ne = 0;
        if (!eng || g_dnn.BackendGetAttribute(cfg[i], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ne,
                                              &eng) != CUDNN_STATUS_SUCCESS ||
            !g_engine_ok(eng, t, rtc))
            continue;
        tried++;
        cudnnBackendDescriptor_t p = NULL;
        int64_t ws = 0, nw = 0;
        if (g_dnn.BackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &p) != CUDNN_STATUS_SUCCESS) continue;
        cand[i] = p;
        if (!g_set(p, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h) ||
            !g_set(p, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg[i]) || !g_fin(p) ||
            g_dnn.BackendGetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &nw, &ws) !=
                CUDNN_STATUS_SUCCESS ||
            ws < 0 || (size_t)ws > dev->workspace_bytes)
            continue;
        cudnnBackendDescriptor_t pk = g_pack(buf, (want & MIXRT_CUDA_CONV_DID_BIAS) ? 4 : 3, dev->workspace);
        float ms = -1.0f;
        if (pk && g_dnn.BackendExecute(h, p, pk) == CUDNN_STATUS_SUCCESS) {
            for (int r = 0; r < 3; r++) {
                float m = 0.0f;
                if (spin && mixrt_cuda_launch_spin(dev->stream, 1, G_SPIN_NS, (float *)dev->flag) != cudaSuccess)
                    (void)cudaGetLastError(); /* a spin that did not start only costs precision */
                bool run = cudaEventRecord(dev->ev_start, dev->stream) == cudaSuccess;
                for (int k = 0; run && k < reps; k++) run = g_dnn.BackendExecute(h, p, pk) == CUDNN_STATUS_SUCCESS;
                if (!run || cudaEventRecord(dev->ev_stop, dev->stream) != cudaSuccess ||
                    cudaEventSynchronize(dev->ev_stop) != cudaSuccess ||
                    cudaEventElapsedTime(&m, dev->ev_start, dev->ev_stop) != cudaSuccess) {
                    ms = -1.0f;
                    break;
                }
                m /= (float)reps;
                if (ms < 0.0f || m < ms) ms = m;
            }
        }
        (void)cudaGetLastError();
        if (pk) (void)g_dnn.BackendDestroyDescriptor(pk);
        if (ms < 0.0f) continue;
        usable++;
        if (!best || ms < best_ms) best = p, best_ms = ms, best_ws = (size_t)ws;
    }
    if (!best) {
        snprintf(why, nwhy, "none of cuDNN's %lld candidates ran (%d kept the precision%s)", (long long)got, tried,
                 rtc ? "" : " without run-time compilation");
        goto done;
    }
    (void)usable;
    c->plan = best, c->plan_ws = best_ws, c->plan_did = want, c->ms = best_ms;
    snprintf(c->kind, sizeof c->kind, "graph%s%s", (want & MIXRT_CUDA_CONV_DID_BIAS) ? "+bias" : "",
             (want & MIXRT_CUDA_CONV_DID_ACT) ? "+act" : "");
done:
    for (int i = 0; i < G_MAX_CAND; i++)
        if (cand[i] && cand[i] != best) (void)g_dnn.BackendDestroyDescriptor(cand[i]);
    for (int i = 0; i < 4; i++)
        if (buf[i]) (void)cudaFree(buf[i]);
    g_free(&b);
    return best != NULL;
}

mixrt_status mixrt_cuda_conv_create(mixrt_cuda_device_t dev, const struct mixrt_cuda_conv_desc *d,
                                    mixrt_cuda_conv_t *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    mixrt_context_t ctx = dev->ctx;
    struct mixrt_cuda_conv *c = NULL;
    const char *nm = d && d->name ? d->name : "conv";
    MIXRT_CHECK(ctx, d && out, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_cuda_conv_create: NULL argument");
    MIXRT_CHECK(ctx, mixrt_cuda_elem_of(d->dtype) >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot plan CUDA conv '%s': dtype %s (expected f32, bf16 or f16)", nm, mixrt_dtype_name(d->dtype));
    MIXRT_CHECK(ctx, d->n > 0 && d->c > 0 && d->h > 0 && d->w > 0 && d->k > 0 && d->r > 0 && d->s > 0 &&
                         d->groups > 0 && d->c % d->groups == 0 && d->k % d->groups == 0 && d->stride_h > 0 &&
                         d->stride_w > 0 && d->dil_h > 0 && d->dil_w > 0 && d->pad_h >= 0 && d->pad_w >= 0 &&
                         d->n <= INT32_MAX && d->c <= INT32_MAX && d->h <= INT32_MAX && d->w <= INT32_MAX &&
                         d->k <= INT32_MAX && d->d >= 0 &&
                         (d->d == 0 || (d->t > 0 && d->od > 0 && d->stride_d > 0 && d->dil_d > 0 &&
                                        d->pad_d >= 0 && d->d <= INT32_MAX && d->t <= INT32_MAX &&
                                        d->od <= INT32_MAX)),
                MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot plan CUDA conv '%s': N %lld C %lld H %lld W %lld K %lld R %lld S %lld groups %d", nm,
                (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->k, (long long)d->r,
                (long long)d->s, d->groups);
    MIXRT_TRY(dnn_load(ctx));
    cudnnHandle_t h = NULL;
    MIXRT_TRY(dnn_handle(dev, &h));
    c = mixrt_calloc(ctx, 1, sizeof *c);
    if (!c) return MIXRT_STATUS_OUT_OF_MEMORY;
    c->dev = dev;
    c->desc = *d;
    c->desc.name = NULL;
    const bool d3 = d->d > 0;
    if (d3)
        snprintf(c->name, sizeof c->name, "%s %s %s N%lld C%lld %lldx%lldx%lld K%lld %lldx%lldx%lld g%d", nm,
                 mixrt_dtype_name(d->dtype), d->nhwc ? "NDHWC" : "NCDHW", (long long)d->n, (long long)d->c,
                 (long long)d->d, (long long)d->h,
                 (long long)d->w, (long long)d->k, (long long)d->t, (long long)d->r, (long long)d->s, d->groups);
    else
        snprintf(c->name, sizeof c->name, "%s %s %s N%lld C%lld %lldx%lld K%lld %lldx%lld g%d", nm,
                 mixrt_dtype_name(d->dtype), d->nhwc ? "NHWC" : "NCHW", (long long)d->n, (long long)d->c,
                 (long long)d->h, (long long)d->w, (long long)d->k, (long long)d->r, (long long)d->s, d->groups);
    cudnnDataType_t t = d->dtype == MIXRT_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16
                        : d->dtype == MIXRT_DTYPE_F16 ? CUDNN_DATA_HALF
                                                      : CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t f = d->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    DNN_TRY(ctx, g_dnn.CreateTensorDescriptor(&c->xd), "cudnnCreateTensorDescriptor(%s)", c->name);
    DNN_TRY(ctx, g_dnn.CreateTensorDescriptor(&c->yd), "cudnnCreateTensorDescriptor(%s)", c->name);
    DNN_TRY(ctx, g_dnn.CreateFilterDescriptor(&c->wd), "cudnnCreateFilterDescriptor(%s)", c->name);
    DNN_TRY(ctx, g_dnn.CreateConvolutionDescriptor(&c->cd), "cudnnCreateConvolutionDescriptor(%s)", c->name);
    if (d3) {
        /* 3-D: packed NCDHW activations and KCTRS filter (NDHWC and KTRSC with nhwc), one pad /
         * stride / dilation per axis; dims are given in NCDHW order either way. */
        const int xdim[5] = {(int)d->n, (int)d->c, (int)d->d, (int)d->h, (int)d->w};
        const int wdim[5] = {(int)d->k, (int)(d->c / d->groups), (int)d->t, (int)d->r, (int)d->s};
        const int pad[3] = {d->pad_d, d->pad_h, d->pad_w}, str[3] = {d->stride_d, d->stride_h, d->stride_w};
        const int dil[3] = {d->dil_d, d->dil_h, d->dil_w};
        DNN_TRY(ctx, g_dnn.SetTensorNdDescriptorEx(c->xd, f, t, 5, xdim),
                "cudnnSetTensorNdDescriptorEx(X, %s)", c->name);
        DNN_TRY(ctx, g_dnn.SetFilterNdDescriptor(c->wd, t, f, 5, wdim), "cudnnSetFilterNdDescriptor(%s)", c->name);
        DNN_TRY(ctx, g_dnn.SetConvolutionNdDescriptor(c->cd, 3, pad, str, dil, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolutionNdDescriptor(%s)", c->name);
    } else {
        DNN_TRY(ctx, g_dnn.SetTensor4dDescriptor(c->xd, f, t, (int)d->n, (int)d->c, (int)d->h, (int)d->w),
                "cudnnSetTensor4dDescriptor(X, %s)", c->name);
        /* The filter is in the activations' format: KCRS with NCHW, KRSC with NHWC. */
        DNN_TRY(ctx,
                g_dnn.SetFilter4dDescriptor(c->wd, t, f, (int)d->k, (int)(d->c / d->groups), (int)d->r, (int)d->s),
                "cudnnSetFilter4dDescriptor(%s)", c->name);
        DNN_TRY(ctx,
                g_dnn.SetConvolution2dDescriptor(c->cd, d->pad_h, d->pad_w, d->stride_h, d->stride_w, d->dil_h,
                                                 d->dil_w, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor(%s)", c->name);
    }
    if (d->groups > 1) DNN_TRY(ctx, g_dnn.SetConvolutionGroupCount(c->cd, d->groups), "cudnnSetConvolutionGroupCount(%s)", c->name);
    /* f32 stays f32 (FMA math: TF32 would round the inputs); 16-bit types on tensor cores. */
    DNN_TRY(ctx, g_dnn.SetConvolutionMathType(c->cd, t == CUDNN_DATA_FLOAT ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH),
            "cudnnSetConvolutionMathType(%s)", c->name);
    if (d3) {
        int od[5];
        DNN_TRY(ctx, g_dnn.GetConvolutionNdForwardOutputDim(c->cd, c->xd, c->wd, 5, od),
                "cudnnGetConvolutionNdForwardOutputDim(%s)", c->name);
        MIXRT_CHECK(ctx, od[0] == d->n && od[1] == d->k && od[2] == d->od && od[3] == d->oh && od[4] == d->ow,
                    MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot plan CUDA conv '%s': cuDNN makes a [%d,%d,%d,%d,%d] output, the graph says "
                    "[%lld,%lld,%lld,%lld,%lld]",
                    c->name, od[0], od[1], od[2], od[3], od[4], (long long)d->n, (long long)d->k, (long long)d->od,
                    (long long)d->oh, (long long)d->ow);
        DNN_TRY(ctx, g_dnn.SetTensorNdDescriptorEx(c->yd, f, t, 5, od),
                "cudnnSetTensorNdDescriptorEx(Y, %s)", c->name);
    } else {
        int on, oc, oh, ow;
        DNN_TRY(ctx, g_dnn.GetConvolution2dForwardOutputDim(c->cd, c->xd, c->wd, &on, &oc, &oh, &ow),
                "cudnnGetConvolution2dForwardOutputDim(%s)", c->name);
        MIXRT_CHECK(ctx, on == d->n && oc == d->k && oh == d->oh && ow == d->ow, MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot plan CUDA conv '%s': cuDNN makes a [%d,%d,%d,%d] output, the graph says "
                    "[%lld,%lld,%lld,%lld]",
                    c->name, on, oc, oh, ow, (long long)d->n, (long long)d->k, (long long)d->oh, (long long)d->ow);
        DNN_TRY(ctx, g_dnn.SetTensor4dDescriptor(c->yd, f, t, on, oc, oh, ow), "cudnnSetTensor4dDescriptor(Y, %s)",
                c->name);
    }
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int found = 0;
    DNN_TRY(ctx, g_dnn.GetConvolutionForwardAlgorithm_v7(h, c->xd, c->wd, c->cd, c->yd, 8, &found, perf),
            "cudnnGetConvolutionForwardAlgorithm_v7(%s)", c->name);
    /* f32 keeps the direct / GEMM-based algorithms: FFT and Winograd transform the inputs
     * and lose digits the f32 engines promise (rel-norm 1e-5 against f64). */
    int pick = -1;
    for (int i = 0; i < found && pick < 0; i++) {
        cudnnConvolutionFwdAlgo_t a = perf[i].algo;
        bool lossy = a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                     a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= dev->workspace_bytes &&
            !(t == CUDNN_DATA_FLOAT && lossy))
            pick = i;
    }
    MIXRT_CHECK(ctx, pick >= 0, MIXRT_STATUS_UNSUPPORTED,
                "cannot plan CUDA conv '%s': cuDNN has no algorithm within the %zu-byte workspace (%d candidates)",
                c->name, dev->workspace_bytes, found);
    c->algo = perf[pick].algo;
    c->ws = perf[pick].memory;
    c->ms = -1.0f;
    snprintf(c->kind, sizeof c->kind, "legacy");
    /* The graph API first (2-D convs of one group): conv with the desc's epilogue, else with
     * its bias alone, else alone; the legacy call above stays for what the plan cannot run
     * (buffers off its 16-byte alignment). MIXRT_CUDA_CONV_API=legacy: the legacy call only. */
    const char *api = getenv("MIXRT_CUDA_CONV_API");
    if (!d3 && d->groups == 1 && g_dnn.BackendExecute && !(api && !strcmp(api, "legacy"))) {
        char why[160];
        const unsigned full = (d->epi_bias ? MIXRT_CUDA_CONV_DID_BIAS : 0u) | (d->epi_act > 0 ? MIXRT_CUDA_CONV_DID_ACT : 0u);
        unsigned tries[3] = {full, full & MIXRT_CUDA_CONV_DID_BIAS, 0u};
        for (int i = 0; i < 3 && !c->plan; i++)
            if (i == 0 || tries[i] != tries[i - 1]) (void)graph_plan(c, h, t, tries[i], why, sizeof why);
        if (!c->plan && api && !strcmp(api, "graph"))
            MIXRT_CHECK(ctx, false, MIXRT_STATUS_UNSUPPORTED, "cannot plan CUDA conv '%s' through cuDNN's graph API: %s",
                        c->name, why);
    }
    /* Timed choice: cuDNN runs its candidates on scratch buffers of its own and ranks them
     * by time; the fastest one that fits the workspace (and, for f32, computes in FMA math,
     * not TF32, and is not FFT / Winograd) replaces the heuristic's pick. A failure keeps
     * the heuristic's. MIXRT_CUDA_CONV_FIND=off: heuristic only. */
    const char *fenv = getenv("MIXRT_CUDA_CONV_FIND");
    if (!c->plan && !(fenv && !strcmp(fenv, "off"))) {
        cudnnConvolutionFwdAlgoPerf_t tp[8];
        int nt = 0;
        mixrt_cuda_warm(dev);
        if (g_dnn.FindConvolutionForwardAlgorithm(h, c->xd, c->wd, c->cd, c->yd, 8, &nt, tp) == CUDNN_STATUS_SUCCESS) {
            for (int i = 0; i < nt; i++) {
                cudnnConvolutionFwdAlgo_t a = tp[i].algo;
                bool lossy = a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                             a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
                             a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
                if (tp[i].status != CUDNN_STATUS_SUCCESS || tp[i].memory > dev->workspace_bytes || tp[i].time < 0)
                    continue;
                if (t == CUDNN_DATA_FLOAT && (lossy || tp[i].mathType != CUDNN_FMA_MATH)) continue;
                if (t != CUDNN_DATA_FLOAT &&
                    g_dnn.SetConvolutionMathType(c->cd, tp[i].mathType) != CUDNN_STATUS_SUCCESS)
                    continue;
                c->algo = a;
                c->ws = tp[i].memory;
                c->ms = tp[i].time;
                break; /* sorted by time */
            }
        }
    }
    *out = c;
    return MIXRT_STATUS_OK;
fail:
    mixrt_cuda_conv_destroy(c);
    return status;
}

mixrt_status mixrt_cuda_conv_run(mixrt_cuda_conv_t c, const void *x, const void *w, void *y, bool accumulate) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_cuda_device *dev = c->dev;
    MIXRT_CHECK(dev->ctx, x && w && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA conv '%s': NULL buffer",
                c->name);
    /* alpha and beta are f32 for every data type here (the compute type is f32). */
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    DNN_TRY(dev->ctx,
            g_dnn.ConvolutionForward((cudnnHandle_t)dev->dnn, &alpha, c->xd, x, c->wd, w, c->cd, c->algo,
                                     dev->workspace, c->ws, &beta, c->yd, y),
            "cudnnConvolutionForward(%s)", c->name);
fail:
    return status;
}

float mixrt_cuda_conv_time_ms(mixrt_cuda_conv_t c) { return c ? c->ms : -1.0f; }

mixrt_status mixrt_cuda_conv_run_ex(mixrt_cuda_conv_t c, const void *x, const void *w, const void *bias, void *y,
                                    unsigned *done) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_cuda_device *dev = c->dev;
    *done = 0;
    const bool nb = c->plan_did & MIXRT_CUDA_CONV_DID_BIAS;
    const uintptr_t bits = (uintptr_t)x | (uintptr_t)w | (uintptr_t)y | (nb ? (uintptr_t)bias : 0u);
    if (!c->plan || !x || !w || !y || (nb && !bias) || (bits & 15u)) return mixrt_cuda_conv_run(c, x, w, y, false);
    void *ptr[4] = {(void *)x, (void *)w, y, (void *)bias};
    if (!c->pack || memcmp(c->pack_ptr, ptr, sizeof ptr)) {
        if (c->pack) (void)g_dnn.BackendDestroyDescriptor(c->pack);
        c->pack = g_pack(ptr, nb ? 4 : 3, dev->workspace);
        memcpy(c->pack_ptr, ptr, sizeof ptr);
        MIXRT_CHECK(dev->ctx, c->pack, MIXRT_STATUS_INTERNAL, "cannot run CUDA conv '%s': cuDNN refused its variant pack",
                    c->name);
    }
    DNN_TRY(dev->ctx, g_dnn.BackendExecute((cudnnHandle_t)dev->dnn, c->plan, c->pack), "cudnnBackendExecute(%s)",
            c->name);
    *done = c->plan_did;
fail:
    return status;
}

const char *mixrt_cuda_conv_kind(mixrt_cuda_conv_t c) { return c ? c->kind : "none"; }
