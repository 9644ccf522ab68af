/* ref_nn.c - reference kernels: nn family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_nn[] = {
    {NULL, NULL, 0, 0, NULL},
};
