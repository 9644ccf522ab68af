/* attention.c - fast CPU kernels of com.mixrt Attention (being written). */
#include "backend/cpu/kernels.h"

const struct mixrt_cpu_kernel mixrt_attention_kernels[] = {
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
