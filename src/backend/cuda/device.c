/* device.c - the CUDA device object: error mapping, one stream, the activation arena
 * (one allocation addressed by offsets), device buffers, pinned host buffers, async
 * copies, timing events and the device-side error flag. Invariant: every CUDA call's
 * result is checked and a failure becomes a status with the call named on the context. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_impl.h"

#define MIXRT_CUDA_WORKSPACE_BYTES ((size_t)32 << 20)
#define MIXRT_CUDA_ARENA_ALIGN ((size_t)256)
/* Spin ahead of a timing (mixrt_cuda_timer_begin): longer than the host takes to enqueue a
 * tuning round of products */
#define TIMER_SPIN_NS 200000ull

static mixrt_status cuda_status_of(cudaError_t err) {
    switch (err) {
    case cudaSuccess: return MIXRT_STATUS_OK;
    case cudaErrorMemoryAllocation: return MIXRT_STATUS_OUT_OF_MEMORY;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorStubLibrary:
    case cudaErrorCallRequiresNewerDriver:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorNotSupported:
    case cudaErrorDevicesUnavailable: return MIXRT_STATUS_UNSUPPORTED;
    default: return MIXRT_STATUS_INTERNAL;
    }
}

mixrt_status mixrt_cuda_fail(mixrt_context_t ctx, cudaError_t err, const char *what, ...) {
    if (err == cudaSuccess) return MIXRT_STATUS_OK;
    char buf[256];
    va_list ap;
    va_start(ap, what);
    vsnprintf(buf, sizeof buf, what, ap);
    va_end(ap);
    /* Clears a non-sticky error so the next call does not report it again. */
    (void)cudaGetLastError();
    return mixrt_error(ctx, cuda_status_of(err), "CUDA call %s failed: %s (%s)", buf, cudaGetErrorName(err),
                       cudaGetErrorString(err));
}

mixrt_status mixrt_cuda_lt_fail(mixrt_context_t ctx, cublasStatus_t st, const char *what, ...) {
    if (st == CUBLAS_STATUS_SUCCESS) return MIXRT_STATUS_OK;
    char buf[256];
    va_list ap;
    va_start(ap, what);
    vsnprintf(buf, sizeof buf, what, ap);
    va_end(ap);
    mixrt_status s = MIXRT_STATUS_INTERNAL;
    if (st == CUBLAS_STATUS_ALLOC_FAILED) s = MIXRT_STATUS_OUT_OF_MEMORY;
    else if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_ARCH_MISMATCH) s = MIXRT_STATUS_UNSUPPORTED;
    return mixrt_error(ctx, s, "cuBLASLt call %s failed: %s (%s)", buf, cublasLtGetStatusName(st),
                       cublasLtGetStatusString(st));
}

int mixrt_cuda_elem_of(mixrt_dtype dt) {
    switch (dt) {
    case MIXRT_DTYPE_F32: return MIXRT_CUDA_ELEM_F32;
    case MIXRT_DTYPE_BF16: return MIXRT_CUDA_ELEM_BF16;
    case MIXRT_DTYPE_F16: return MIXRT_CUDA_ELEM_F16;
    default: return -1;
    }
}

static bool cuda_no_gpu_error(cudaError_t e) {
    return cuda_status_of(e) == MIXRT_STATUS_UNSUPPORTED || e == cudaErrorInitializationError ||
           e == cudaErrorOperatingSystem;
}

mixrt_status mixrt_cuda_device_count(mixrt_context_t ctx, int *count) {
    mixrt_status status = MIXRT_STATUS_OK;
    int n = 0;
    MIXRT_CHECK(ctx, count != NULL, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_cuda_device_count: count is NULL");
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (!cuda_no_gpu_error(e)) return mixrt_cuda_fail(ctx, e, "cudaGetDeviceCount()");
        (void)cudaGetLastError();
        mixrt_log(ctx, MIXRT_LOG_NOTE, "no CUDA GPU: cudaGetDeviceCount: %s (%s)", cudaGetErrorName(e),
                  cudaGetErrorString(e));
        n = 0;
    }
    *count = n;
fail:
    return status;
}

void mixrt_cuda_device_destroy(mixrt_cuda_device_t dev) {
    if (!dev) return;
    if (dev->stream) (void)cudaStreamSynchronize(dev->stream);
    mixrt_cuda_dnn_release(dev);
    if (dev->ev_start) (void)cudaEventDestroy(dev->ev_start);
    if (dev->ev_stop) (void)cudaEventDestroy(dev->ev_stop);
    for (int i = 0; i < dev->prof_n; i++) (void)cudaEventDestroy(dev->prof_ev[i]);
    if (dev->prof_ev) mixrt_free(dev->ctx, dev->prof_ev, (size_t)dev->prof_n * sizeof(cudaEvent_t));
    if (dev->flag) (void)cudaFree(dev->flag);
    if (dev->arena) (void)cudaFree(dev->arena);
    if (dev->workspace) (void)cudaFree(dev->workspace);
    if (dev->lt) (void)cublasLtDestroy(dev->lt);
    if (dev->stream) (void)cudaStreamDestroy(dev->stream);
    mixrt_free(dev->ctx, dev, sizeof *dev);
}

mixrt_status mixrt_cuda_device_create(mixrt_context_t ctx, int ordinal, mixrt_cuda_device_t *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_cuda_device *dev = NULL;
    int n = 0;
    MIXRT_CHECK(ctx, out != NULL, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_cuda_device_create: out is NULL");
    MIXRT_TRY(mixrt_cuda_device_count(ctx, &n));
    MIXRT_CHECK(ctx, n > 0, MIXRT_STATUS_UNSUPPORTED, "cannot open CUDA device %d: no CUDA GPU is visible", ordinal);
    MIXRT_CHECK(ctx, ordinal >= 0 && ordinal < n, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot open CUDA device %d: %d GPU(s) visible (ordinals 0..%d)", ordinal, n, n - 1);
    dev = mixrt_calloc(ctx, 1, sizeof *dev);
    if (!dev) return MIXRT_STATUS_OUT_OF_MEMORY;
    dev->ctx = ctx;
    MIXRT_CUDA_TRY(ctx, cudaSetDevice(ordinal), "cudaSetDevice(%d)", ordinal);
    struct cudaDeviceProp p;
    MIXRT_CUDA_TRY(ctx, cudaGetDeviceProperties(&p, ordinal), "cudaGetDeviceProperties(%d)", ordinal);
    struct mixrt_cuda_device_info *info = &dev->info;
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->ordinal = ordinal;
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->sm_count = p.multiProcessorCount;
    info->global_mem_bytes = p.totalGlobalMem;
    info->l2_bytes = (size_t)p.l2CacheSize;
    info->smem_per_block_optin = p.sharedMemPerBlockOptin;
    (void)cudaRuntimeGetVersion(&info->runtime_version);
    (void)cudaDriverGetVersion(&info->driver_version);
    /* The kernels are built as sm_90a code plus compute_80 PTX: older GPUs cannot run them. */
    MIXRT_CHECK(ctx, p.major >= 8, MIXRT_STATUS_UNSUPPORTED,
                "cannot open CUDA device %d '%s': compute capability %d.%d, the CUDA backend needs 8.0 or newer",
                ordinal, p.name, p.major, p.minor);
    dev->max_blocks = p.multiProcessorCount * 8;
    /* Off by default: on an H100 it gained nothing on BERT / GPT-2 (b1, b32; session 66, notes/cuda.md).
     * MIXRT_CUDA_TIMER_SPIN=on for A/B runs. */
    const char *spin_env = getenv("MIXRT_CUDA_TIMER_SPIN");
    dev->timer_spin = spin_env && !strcmp(spin_env, "on");
    MIXRT_CUDA_TRY(ctx, cudaStreamCreateWithFlags(&dev->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    MIXRT_CUDA_LT_TRY(ctx, cublasLtCreate(&dev->lt), "cublasLtCreate");
    dev->workspace_bytes = MIXRT_CUDA_WORKSPACE_BYTES;
    MIXRT_CUDA_TRY(ctx, cudaMalloc(&dev->workspace, dev->workspace_bytes), "cudaMalloc(cuBLASLt workspace, %zu bytes)",
                   dev->workspace_bytes);
    MIXRT_CUDA_TRY(ctx, cudaMalloc((void **)&dev->flag, sizeof *dev->flag), "cudaMalloc(error flag)");
    MIXRT_CUDA_TRY(ctx, cudaMemsetAsync(dev->flag, 0, sizeof *dev->flag, dev->stream), "cudaMemsetAsync(error flag)");
    MIXRT_CUDA_TRY(ctx, cudaEventCreate(&dev->ev_start), "cudaEventCreate");
    MIXRT_CUDA_TRY(ctx, cudaEventCreate(&dev->ev_stop), "cudaEventCreate");
    MIXRT_CUDA_TRY(ctx, cudaStreamSynchronize(dev->stream), "cudaStreamSynchronize");
    *out = dev;
    return MIXRT_STATUS_OK;
fail:
    mixrt_cuda_device_destroy(dev);
    return status;
}

const struct mixrt_cuda_device_info *mixrt_cuda_device_get_info(mixrt_cuda_device_t dev) {
    return dev ? &dev->info : NULL;
}

mixrt_status mixrt_cuda_device_sync(mixrt_cuda_device_t dev) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_cuda_dev_flag f;
    MIXRT_CUDA_TRY(dev->ctx, cudaStreamSynchronize(dev->stream), "cudaStreamSynchronize");
    /* One small read per sync: kernels cannot return errors, so they leave them here. */
    MIXRT_CUDA_TRY(dev->ctx, cudaMemcpy(&f, dev->flag, sizeof f, cudaMemcpyDeviceToHost), "cudaMemcpy(error flag)");
    if (f.code != MIXRT_CUDA_FLAG_NONE) {
        MIXRT_CUDA_TRY(dev->ctx, cudaMemset(dev->flag, 0, sizeof f), "cudaMemset(error flag)");
        if (f.code == MIXRT_CUDA_FLAG_GATHER_INDEX)
            return mixrt_error(dev->ctx, MIXRT_STATUS_INVALID_ARGUMENT,
                               "CUDA gather_rows: index %lld is out of range (its row was written as zeros)", f.value);
        return mixrt_error(dev->ctx, MIXRT_STATUS_INTERNAL, "CUDA kernel flagged error code %d (value %lld)", f.code,
                           f.value);
    }
fail:
    return status;
}

mixrt_status mixrt_cuda_arena_reserve(mixrt_cuda_device_t dev, size_t bytes) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (bytes <= dev->arena_bytes) return MIXRT_STATUS_OK;
    size_t rounded;
    MIXRT_CHECK(dev->ctx, mixrt_add_size(bytes, MIXRT_CUDA_ARENA_ALIGN - 1, &rounded), MIXRT_STATUS_OUT_OF_MEMORY,
                "CUDA arena of %zu bytes overflows", bytes);
    rounded &= ~(MIXRT_CUDA_ARENA_ALIGN - 1);
    if (dev->arena) {
        /* Work still queued may read the old arena. */
        MIXRT_CUDA_TRY(dev->ctx, cudaStreamSynchronize(dev->stream), "cudaStreamSynchronize");
        MIXRT_CUDA_TRY(dev->ctx, cudaFree(dev->arena), "cudaFree(arena)");
        dev->arena = NULL;
        dev->arena_bytes = 0;
    }
    MIXRT_CUDA_TRY(dev->ctx, cudaMalloc(&dev->arena, rounded), "cudaMalloc(arena, %zu bytes)", rounded);
    dev->arena_bytes = rounded;
fail:
    return status;
}

mixrt_status mixrt_cuda_arena_at(mixrt_cuda_device_t dev, size_t offset, size_t bytes, void **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    size_t end;
    MIXRT_CHECK(dev->ctx, mixrt_add_size(offset, bytes, &end) && end <= dev->arena_bytes,
                MIXRT_STATUS_INVALID_ARGUMENT, "CUDA arena range [%zu, +%zu) does not fit the arena of %zu bytes",
                offset, bytes, dev->arena_bytes);
    *out = (char *)dev->arena + offset;
fail:
    return status;
}

size_t mixrt_cuda_arena_size(mixrt_cuda_device_t dev) { return dev ? dev->arena_bytes : 0; }

mixrt_status mixrt_cuda_alloc(mixrt_cuda_device_t dev, size_t bytes, const char *what, void **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    void *p = NULL;
    MIXRT_CUDA_TRY(dev->ctx, cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc(%s, %zu bytes)", what ? what : "buffer",
                   bytes);
    *out = p;
fail:
    return status;
}

void mixrt_cuda_free(mixrt_cuda_device_t dev, void *ptr, size_t bytes) {
    (void)bytes;
    if (!dev || !ptr) return;
    (void)cudaStreamSynchronize(dev->stream);
    (void)cudaFree(ptr);
}

mixrt_status mixrt_cuda_host_alloc(mixrt_cuda_device_t dev, size_t bytes, void **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    void *p = NULL;
    MIXRT_CUDA_TRY(dev->ctx, cudaMallocHost(&p, bytes ? bytes : 1), "cudaMallocHost(%zu bytes)", bytes);
    *out = p;
fail:
    return status;
}

void mixrt_cuda_host_free(mixrt_cuda_device_t dev, void *ptr) {
    if (!dev || !ptr) return;
    (void)cudaStreamSynchronize(dev->stream);
    (void)cudaFreeHost(ptr);
}

static mixrt_status cuda_copy(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes,
                              enum cudaMemcpyKind kind, const char *name) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (bytes == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, dst && src, MIXRT_STATUS_INVALID_ARGUMENT, "CUDA copy %s of %zu bytes: NULL buffer", name,
                bytes);
    MIXRT_CUDA_TRY(dev->ctx, cudaMemcpyAsync(dst, src, bytes, kind, dev->stream), "cudaMemcpyAsync(%s, %zu bytes)",
                   name, bytes);
fail:
    return status;
}

mixrt_status mixrt_cuda_copy_h2d(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes) {
    return cuda_copy(dev, dst, src, bytes, cudaMemcpyHostToDevice, "host to device");
}
mixrt_status mixrt_cuda_copy_d2h(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes) {
    return cuda_copy(dev, dst, src, bytes, cudaMemcpyDeviceToHost, "device to host");
}
mixrt_status mixrt_cuda_copy_d2d(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes) {
    return cuda_copy(dev, dst, src, bytes, cudaMemcpyDeviceToDevice, "device to device");
}

mixrt_status mixrt_cuda_memset(mixrt_cuda_device_t dev, void *dst, int byte, size_t bytes) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (bytes == 0) return MIXRT_STATUS_OK;
    MIXRT_CUDA_TRY(dev->ctx, cudaMemsetAsync(dst, byte, bytes, dev->stream), "cudaMemsetAsync(%zu bytes)", bytes);
fail:
    return status;
}

void mixrt_cuda_warm(struct mixrt_cuda_device *dev) {
    if (dev->warm) return;
    dev->warm = true;
    const char *env = getenv("MIXRT_CUDA_WARM_MS");
    long ms = env && *env ? strtol(env, NULL, 10) : 250;
    if (ms <= 0) return;
    /* Two blocks of 256 threads per SM; the device flag is a float-aligned place that is
     * never written (the kernel's store is unreachable). */
    cudaError_t e = mixrt_cuda_launch_spin(dev->stream, dev->info.sm_count * 2, (unsigned long long)ms * 1000000ull,
                                           (float *)dev->flag);
    if (e == cudaSuccess) e = cudaStreamSynchronize(dev->stream);
    (void)e; /* a failed warm-up only leaves the card as it was */
}

mixrt_status mixrt_cuda_timer_begin(mixrt_cuda_device_t dev) {
    mixrt_status status = MIXRT_STATUS_OK;
    mixrt_cuda_warm(dev);
    /* The start event waits behind a short spin on one SM, so the products that follow are
     * queued before the first one runs: a timing of products of a few microseconds then
     * measures the device, as a graph replay runs them, not the host's launch rate. */
    if (dev->timer_spin && mixrt_cuda_launch_spin(dev->stream, 1, TIMER_SPIN_NS, (float *)dev->flag) != cudaSuccess)
        (void)cudaGetLastError(); /* a spin that did not start only costs precision */
    MIXRT_CUDA_TRY(dev->ctx, cudaEventRecord(dev->ev_start, dev->stream), "cudaEventRecord(start)");
fail:
    return status;
}

mixrt_status mixrt_cuda_timer_end(mixrt_cuda_device_t dev, float *ms) {
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_CUDA_TRY(dev->ctx, cudaEventRecord(dev->ev_stop, dev->stream), "cudaEventRecord(stop)");
    MIXRT_CUDA_TRY(dev->ctx, cudaEventSynchronize(dev->ev_stop), "cudaEventSynchronize(stop)");
    MIXRT_CUDA_TRY(dev->ctx, cudaEventElapsedTime(ms, dev->ev_start, dev->ev_stop), "cudaEventElapsedTime");
fail:
    return status;
}

/* Profile marks are recorded as external events, so a stream capture keeps them as
 * event-record nodes of the graph: a profiled graph replay runs without host gaps between
 * layers, and the elapsed time between two marks is the device time of what lies between. */
mixrt_status mixrt_cuda_prof_reserve(mixrt_cuda_device_t dev, int n) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (n <= dev->prof_n) return MIXRT_STATUS_OK;
    cudaEvent_t *ev = mixrt_calloc(dev->ctx, (size_t)n, sizeof(cudaEvent_t));
    if (!ev) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (dev->prof_n) memcpy(ev, dev->prof_ev, (size_t)dev->prof_n * sizeof(cudaEvent_t));
    if (dev->prof_ev) mixrt_free(dev->ctx, dev->prof_ev, (size_t)dev->prof_n * sizeof(cudaEvent_t));
    dev->prof_ev = ev;
    for (; dev->prof_n < n; dev->prof_n++)
        MIXRT_CUDA_TRY(dev->ctx, cudaEventCreate(&dev->prof_ev[dev->prof_n]), "cudaEventCreate(profile mark %d)",
                       dev->prof_n);
fail:
    return status;
}

mixrt_status mixrt_cuda_prof_mark(mixrt_cuda_device_t dev, int i) {
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, i >= 0 && i < dev->prof_n, MIXRT_STATUS_INVALID_ARGUMENT,
                "CUDA profile mark %d: only %d reserved", i, dev->prof_n);
    MIXRT_CUDA_TRY(dev->ctx, cudaEventRecordWithFlags(dev->prof_ev[i], dev->stream, cudaEventRecordExternal),
                   "cudaEventRecordWithFlags(profile mark %d)", i);
fail:
    return status;
}

mixrt_status mixrt_cuda_prof_read(mixrt_cuda_device_t dev, int n, float *ms) {
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, n >= 1 && n <= dev->prof_n, MIXRT_STATUS_INVALID_ARGUMENT,
                "CUDA profile read of %d marks: %d reserved", n, dev->prof_n);
    MIXRT_CUDA_TRY(dev->ctx, cudaEventSynchronize(dev->prof_ev[n - 1]), "cudaEventSynchronize(profile mark %d)", n - 1);
    for (int i = 0; i + 1 < n; i++)
        MIXRT_CUDA_TRY(dev->ctx, cudaEventElapsedTime(&ms[i], dev->prof_ev[i], dev->prof_ev[i + 1]),
                       "cudaEventElapsedTime(profile marks %d, %d)", i, i + 1);
fail:
    return status;
}
