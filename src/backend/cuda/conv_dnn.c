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
    if (c->xd) (void)g_dnn.DestroyTensorDescriptor(c->xd);
    if (c->yd) (void)g_dnn.DestroyTensorDescriptor(c->yd);
    if (c->wd) (void)g_dnn.DestroyFilterDescriptor(c->wd);
    if (c->cd) (void)g_dnn.DestroyConvolutionDescriptor(c->cd);
    mixrt_free(c->dev->ctx, c, sizeof *c);
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
    /* Timed choice: cuDNN runs its candidates on scratch buffers of its own and ranks them
     * by time; the fastest one that fits the workspace (and, for f32, computes in FMA math,
     * not TF32, and is not FFT / Winograd) replaces the heuristic's pick. A failure keeps
     * the heuristic's. MIXRT_CUDA_CONV_FIND=off: heuristic only. */
    const char *fenv = getenv("MIXRT_CUDA_CONV_FIND");
    if (!(fenv && !strcmp(fenv, "off"))) {
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
