/* ref_fused_conv.c - reference kernels of the com.mixrt conv fusions and layout ops (being
 * written). */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_fused_conv[] = {
    {NULL, NULL, 0, 0, NULL},
};
