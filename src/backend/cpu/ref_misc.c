/* ref_misc.c - reference kernels: misc family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_misc[] = {
    {NULL, NULL, 0, 0, NULL},
};
