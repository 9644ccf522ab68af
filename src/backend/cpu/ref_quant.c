/* ref_quant.c - reference kernels: quant family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_quant[] = {
    {NULL, NULL, 0, 0, NULL},
};
