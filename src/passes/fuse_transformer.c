/* fuse_transformer.c - fusions for transformer graphs into com.mixrt ops (being written:
 * GELU and LayerNorm patterns, MatMul with bias/activation/residual, attention). */
#include "passes/passes_impl.h"

mixrt_status mixrt_pass_fuse_transformer(struct mixrt_pass_state *st, int *removed) {
    (void)st, (void)removed;
    return MIXRT_STATUS_OK;
}
