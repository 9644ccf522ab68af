/* ref_loss.c - reference kernels: loss family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_loss[] = {
    {NULL, NULL, 0, 0, NULL},
};
