/* fuse_attention.c - MatMul/Softmax/MatMul attention into com.mixrt Attention (being
 * written). */
#include "passes/passes_impl.h"

mixrt_status mixrt_pass_fuse_attention(struct mixrt_pass_state *st, int *removed) {
    (void)st, (void)removed;
    return MIXRT_STATUS_OK;
}
