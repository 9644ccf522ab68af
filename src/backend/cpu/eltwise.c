/* eltwise.c - optimized CPU kernel candidates (placeholder: an empty table until they land). */
#include "backend/cpu/kernels.h"

const struct mixrt_cpu_kernel mixrt_eltwise_kernels[] = {{NULL, NULL, NULL, NULL, NULL, NULL, NULL}};
