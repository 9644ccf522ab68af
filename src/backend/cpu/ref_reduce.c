/* ref_reduce.c - reference kernels: reduce family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_reduce[] = {
    {NULL, NULL, 0, 0, NULL},
};
