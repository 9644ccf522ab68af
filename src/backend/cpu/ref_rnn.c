/* ref_rnn.c - reference kernels: rnn family. */
#include "backend/cpu/ref.h"

const struct mixrt_op_def mixrt_ref_ops_rnn[] = {
    {NULL, NULL, 0, 0, NULL},
};
