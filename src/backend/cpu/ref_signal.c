/* ref_signal.c - reference kernels: signal family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_signal[] = {
    {NULL, NULL, 0, 0, NULL},
};
