/* ref_string.c - reference kernels: string family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_string[] = {
    {NULL, NULL, 0, 0, NULL},
};
