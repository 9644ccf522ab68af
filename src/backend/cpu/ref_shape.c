/* ref_shape.c - reference kernels: shape family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_shape[] = {
    {NULL, NULL, 0, 0, NULL},
};
