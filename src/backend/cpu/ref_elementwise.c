/* ref_elementwise.c - reference kernels: elementwise family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_elementwise[] = {
    {NULL, NULL, 0, 0, NULL},
};
