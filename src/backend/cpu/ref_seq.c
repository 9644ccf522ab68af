/* ref_seq.c - reference kernels: seq family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_seq[] = {
    {NULL, NULL, 0, 0, NULL},
};
