/* ref_attention.c - reference kernel of com.mixrt Attention (being written). */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_attention[] = {
    {NULL, NULL, 0, 0, NULL},
};
