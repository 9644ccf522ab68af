/* ref_registry.c - finds the reference kernel for a node across the per-family op
 * tables; the one place that knows all families. */
#include <string.h>

#include "backend/cpu/ref.h"

static const struct mixrt_op_def *const families[] = {
    mixrt_ref_ops_elementwise, mixrt_ref_ops_reduce, mixrt_ref_ops_nn,
    mixrt_ref_ops_shape,       mixrt_ref_ops_misc,   mixrt_ref_ops_seq, mixrt_ref_ops_string, mixrt_ref_ops_control,
    mixrt_ref_ops_rnn, mixrt_ref_ops_loss, mixrt_ref_ops_quant, mixrt_ref_ops_signal, mixrt_ref_ops_extra,
    mixrt_ref_ops_fused_transformer, mixrt_ref_ops_fused_conv, mixrt_ref_ops_attention,
    mixrt_ref_ops_eltwise_chain, mixrt_ref_ops_concat_affine,
};

mixrt_status mixrt_ref_find(mixrt_context_t ctx, const struct mixrt_node *node, mixrt_kernel_fn *out) {
    const struct mixrt_op_def *near = NULL;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
        for (const struct mixrt_op_def *d = families[f]; d->op_type; d++) {
            if (strcmp(d->op_type, node->op_type) || strcmp(d->domain, node->domain)) continue;
            if (node->opset >= d->min_opset && node->opset <= d->max_opset) {
                *out = d->run;
                return MIXRT_STATUS_OK;
            }
            near = d;
        }
    const char *dom = node->domain[0] ? node->domain : "ai.onnx";
    if (near)
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED_OP,
                           "unsupported operator %s (domain '%s', opset %lld) at node '%s': implemented for opsets "
                           "%d to %d",
                           node->op_type, dom, (long long)node->opset, node->name, near->min_opset, near->max_opset);
    return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED_OP,
                       "unsupported operator %s (domain '%s', opset %lld) at node '%s'", node->op_type, dom,
                       (long long)node->opset, node->name);
}
