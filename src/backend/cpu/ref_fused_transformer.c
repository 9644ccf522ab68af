/* ref_fused_transformer.c - reference kernels of the com.mixrt transformer fusions (being
 * written). */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_fused_transformer[] = {
    {NULL, NULL, 0, 0, NULL},
};
