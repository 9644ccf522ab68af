/* kernels.c - the CPU kernel candidate lists for engines: the optimized families in
 * order of preference, then the reference kernel, which is the fallback for every node
 * and the oracle the others are tested against. */
#include <stdio.h>
#include <string.h>

#include "backend/cpu/kernels.h"

static bool ref_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    (void)g;
    mixrt_kernel_fn fn;
    /* Lookup only: no context, so no message is recorded. */
    if (mixrt_ref_find(NULL, n, &fn) == MIXRT_STATUS_OK) return true;
    if (why && why_size) snprintf(why, why_size, "no reference kernel for %s opset %lld", n->op_type, (long long)n->opset);
    return false;
}

static mixrt_status ref_run(struct mixrt_kernel_ctx *k) {
    mixrt_kernel_fn fn;
    mixrt_status status = mixrt_ref_find(k->ctx, k->node, &fn);
    return status == MIXRT_STATUS_OK ? fn(k) : status;
}

static const struct mixrt_cpu_kernel ref_kernel = {"ref", "*", "*", ref_supports, NULL, NULL, ref_run};

#define MAX_CANDIDATES 8

/* Optimized families, most specialized first. */
static const struct mixrt_cpu_kernel *const families[] = {
    mixrt_dwconv_kernels, /* depthwise FusedConv: timed against oneDNN's, the faster kept */
    mixrt_fused_conv_kernels, mixrt_fused_transformer_kernels, mixrt_attention_kernels, mixrt_dnnl_kernels,
    mixrt_eltwise_kernels,    mixrt_nnops_kernels,             mixrt_datamove_kernels,
};

const struct mixrt_cpu_kernel *const *mixrt_cpu_kernels_for(const struct mixrt_node *n, size_t *count) {
    /* Thread-local so concurrent builds do not race on the list. */
    static _Thread_local const struct mixrt_cpu_kernel *list[MAX_CANDIDATES];
    size_t c = 0;
    /* Optimized kernels only for nodes the reference kernel runs: that is where the op
     * and its opset are known (an opset from the future is refused by name), and every
     * optimized kernel has its oracle. */
    mixrt_kernel_fn ref_fn;
    bool known = mixrt_ref_find(NULL, n, &ref_fn) == MIXRT_STATUS_OK;
    for (size_t f = 0; known && f < sizeof(families) / sizeof(families[0]); f++)
        for (const struct mixrt_cpu_kernel *k = families[f]; k->name && c < MAX_CANDIDATES - 1; k++)
            if (!strcmp(k->op_type, n->op_type) && !strcmp(k->domain, n->domain)) list[c++] = k;
    list[c++] = &ref_kernel;
    *count = c;
    return list;
}

const struct mixrt_cpu_kernel *mixrt_cpu_kernel_find(const char *name, const char *domain, const char *op_type) {
    if (!strcmp(name, ref_kernel.name)) return &ref_kernel;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
        for (const struct mixrt_cpu_kernel *k = families[f]; k->name; k++)
            if (!strcmp(k->name, name) && !strcmp(k->op_type, op_type) && !strcmp(k->domain, domain)) return k;
    return NULL;
}
