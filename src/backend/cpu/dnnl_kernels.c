/* dnnl_kernels.c - oneDNN kernel candidates (placeholder until the oneDNN kernels land):
 * an empty table, so builds without oneDNN link. */
#include "backend/cpu/kernels.h"

const struct mixrt_cpu_kernel mixrt_dnnl_kernels[] = {{NULL, NULL, NULL, NULL, NULL, NULL, NULL}};
