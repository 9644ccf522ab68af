/* cpu.c - run-time CPU feature detection (CPUID + XGETBV), read once. Kernels are
 * gated on these and on the compile flags their files were built with. */
#include "core/core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(struct mixrt_cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1;
    int f16c = (c >> 29) & 1, fma = (c >> 12) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
    f->f16c = f16c && ymm_ok;
    f->fma = fma && ymm_ok;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = ((b >> 5) & 1) && ymm_ok;
    f->avx512f = ((b >> 16) & 1) && zmm_ok;
    f->avx512dq = ((b >> 17) & 1) && zmm_ok;
    f->avx512bw = ((b >> 30) & 1) && zmm_ok;
    f->avx512vl = ((b >> 31) & 1) && zmm_ok;
    f->avx512_vnni = ((c >> 11) & 1) && zmm_ok;
    f->avx512_fp16 = ((d >> 23) & 1) && zmm_ok;
    __cpuid_count(7, 1, a, b, c, d);
    f->avx512_bf16 = ((a >> 5) & 1) && zmm_ok;
}
#else
static void detect(struct mixrt_cpu_features *f) { (void)f; }
#endif

/* The first caller detects and publishes; racing callers wait for the published copy. */
const struct mixrt_cpu_features *mixrt_cpu_features(void) {
    static struct mixrt_cpu_features published;
    static int state; /* 0: not yet, 1: being written, 2: published in published */
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 2) return &published;
    struct mixrt_cpu_features f = {0};
    detect(&f);
    int expected = 0;
    if (__atomic_compare_exchange_n(&state, &expected, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        published = f;
        __atomic_store_n(&state, 2, __ATOMIC_RELEASE);
        return &published;
    }
    while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 2) {
    }
    return &published;
}

bool mixrt_cpu_avx512(void) {
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    return f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq;
}
