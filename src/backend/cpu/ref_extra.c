/* ref_extra.c - reference kernels: extra family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_extra[] = {
    {NULL, NULL, 0, 0, NULL},
};
