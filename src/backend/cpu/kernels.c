/* kernels.c - the CPU kernel candidate lists for engines: the optimized families in
 * order of preference, then the reference kernel, which is the fallback for every node
 * and the oracle the others are tested against. */
#include <pthread.h>
#include <stdatomic.h>
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

mixrt_status mixrt_cpu_run_reference(struct mixrt_kernel_ctx *k) {
    for (int i = 0; i < k->n_in; i++)
        if (k->in[i] && !k->in[i]->data && k->in[i]->nbytes)
            return mixrt_cpu_released_error(k, i);
    mixrt_kernel_fn fn;
    mixrt_status status = mixrt_ref_find(k->ctx, k->node, &fn);
    return status == MIXRT_STATUS_OK ? fn(k) : status;
}

mixrt_status mixrt_cpu_released_error(struct mixrt_kernel_ctx *k, int i) {
    return mixrt_error(k->ctx, MIXRT_STATUS_INTERNAL,
                       "%s node '%s': input #%d ('%s') was dropped after packing (the engine assumed its fixed input "
                       "shapes; MIXRT_RELEASE_WEIGHTS=off keeps the weights)", k->node->op_type, k->node->name, i,
                       k->node->inputs[i] >= 0 ? k->graph->values[k->node->inputs[i]].name : "?");
}

static const struct mixrt_cpu_kernel ref_kernel = {"ref", "*", "*", ref_supports, NULL, NULL, mixrt_cpu_run_reference};

/* Optimized families, most specialized first. */
static const struct mixrt_cpu_kernel *const families[] = {
    mixrt_mbconv_kernels, /* FusedMBConv (pass_mbconv's inverted-residual blocks): the only fast kernel */
    mixrt_dwconv_kernels, /* depthwise FusedConv: timed against oneDNN's, the faster kept */
    mixrt_gconv_kernels,  /* grouped FusedConv of 4, 8 and 16k channels a group: timed the same way */
    mixrt_gemv_kernels,   /* 1x1 FusedConv on a few pixels (squeeze-excite): timed the same way */
    mixrt_pwconv_kernels, /* 1x1 bf16 FusedConv of few input channels (expand convs): the same */
    mixrt_igconv_kernels, /* bf16 and f32 FusedConv of few output pixels (ResNet's last stages): the same */
    mixrt_wino2_kernels,  /* 3x3 bf16 FusedConv by Winograd F(2x2, 3x3): the same */
    mixrt_stemconv_kernels, /* FusedConv of <= 4 input channels (an image's first conv): the same; and
                             * FusedConvMaxPool (pass_stem_pool's): the only fast kernel */
    mixrt_sgemm_kernels,  /* f32 products by a packed constant, timed against oneDNN's */
    mixrt_fused_conv_kernels, mixrt_fused_transformer_kernels, mixrt_attention_kernels, mixrt_dnnl_kernels,
    mixrt_eltwise_kernels,    mixrt_nnops_kernels,             mixrt_resize_kernels,        mixrt_datamove_kernels,
    mixrt_eltwise_chain_kernels, mixrt_concat_affine_kernels, mixrt_rnn_kernels,           mixrt_select_kernels,        mixrt_roialign_kernels,
};

double mixrt_cpu_kernel_weight_growth(const struct mixrt_cpu_kernel *k) {
    if (k && (!strcmp(k->name, "wino_bf16_nhwc") || !strcmp(k->name, "conv_wino2"))) return MIXRT_WINO2_WEIGHT_GROWTH;
    return k && (!strcmp(k->name, "dnnl_wino_conv") || !strcmp(k->name, "conv_wino")) ? MIXRT_WINO_WEIGHT_GROWTH
                                                                                        : 1.0;
}

const struct mixrt_cpu_kernel *const *mixrt_cpu_kernels_for(const struct mixrt_node *n, size_t *count) {
    /* Thread-local so concurrent builds do not race on the list. */
    static _Thread_local const struct mixrt_cpu_kernel *list[MIXRT_CPU_MAX_CANDIDATES];
    size_t c = 0;
    /* Optimized kernels only for nodes the reference kernel runs: that is where the op
     * and its opset are known (an opset from the future is refused by name), and every
     * optimized kernel has its oracle. */
    mixrt_kernel_fn ref_fn;
    bool known = mixrt_ref_find(NULL, n, &ref_fn) == MIXRT_STATUS_OK;
    for (size_t f = 0; known && f < sizeof(families) / sizeof(families[0]); f++)
        for (const struct mixrt_cpu_kernel *k = families[f]; k->name && c < MIXRT_CPU_MAX_CANDIDATES - 1; k++)
            if (!strcmp(k->op_type, n->op_type) && !strcmp(k->domain, n->domain)) list[c++] = k;
    list[c++] = &ref_kernel;
    *count = c;
    return list;
}

size_t mixrt_cpu_kernels_most(void) {
    size_t most = 0;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
        for (const struct mixrt_cpu_kernel *k = families[f]; k->name; k++) {
            size_t c = 1; /* the reference kernel */
            for (size_t e = 0; e < sizeof(families) / sizeof(families[0]); e++)
                for (const struct mixrt_cpu_kernel *o = families[e]; o->name; o++)
                    c += !strcmp(o->op_type, k->op_type) && !strcmp(o->domain, k->domain);
            if (c > most) most = c;
        }
    return most;
}

const struct mixrt_cpu_kernel *mixrt_cpu_kernel_find(const char *name, const char *domain, const char *op_type) {
    if (!strcmp(name, ref_kernel.name)) return &ref_kernel;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
        for (const struct mixrt_cpu_kernel *k = families[f]; k->name; k++)
            if (!strcmp(k->name, name) && !strcmp(k->op_type, op_type) && !strcmp(k->domain, domain)) return k;
    return NULL;
}

/* ---- packed weights in plans ---- */

/* The own kernels' hooks: their layout sizes are known here. */
static const struct mixrt_cpu_kernel_packing own_packings[] = {
    {"fmm_sgemm", mixrt_sgemm_packed_lib, MIXRT_SGEMM_LAYOUT_SIZE, mixrt_sgemm_packed_get, mixrt_sgemm_unpack,
     mixrt_sgemm_same},
    {"mm_sgemm", mixrt_sgemm_packed_lib, MIXRT_SGEMM_LAYOUT_SIZE, mixrt_sgemm_packed_get, mixrt_sgemm_unpack,
     mixrt_sgemm_same},
    {"conv_sgemm", mixrt_sgemm_packed_lib, MIXRT_SGEMM_LAYOUT_SIZE, mixrt_sgemm_packed_get, mixrt_sgemm_unpack,
     mixrt_sgemm_same},
    {"conv_wino", mixrt_wino_packed_lib, MIXRT_SGEMM_LAYOUT_SIZE, mixrt_wino_packed_get, mixrt_wino_unpack,
     mixrt_wino_same},
    {"conv_wino2", mixrt_wino2f_packed_lib, MIXRT_SGEMM_LAYOUT_SIZE, mixrt_wino_packed_get, mixrt_wino_unpack,
     mixrt_wino_same},
};

#ifdef MIXRT_HAVE_DNNL
static const struct mixrt_cpu_kernel_packing packings[] = {
    {"dnnl_conv", mixrt_dnnl_packed_lib, 0, mixrt_dnnl_conv_packed_get, mixrt_dnnl_conv_unpack, mixrt_dnnl_conv_same},
    {"dnnl_fused_conv",
      mixrt_dnnl_packed_lib, 0, mixrt_dnnl_conv_packed_get, mixrt_dnnl_conv_unpack, mixrt_dnnl_conv_same},
    {"dnnl_wino_conv",
      mixrt_dnnl_packed_lib, 0, mixrt_dnnl_conv_packed_get, mixrt_dnnl_conv_unpack, mixrt_dnnl_conv_same},
    {"dnnl_fused_matmul", mixrt_dnnl_packed_lib, 0, mixrt_fmm_packed_get, mixrt_fmm_unpack, mixrt_fmm_same},
    {"dnnl_conv1x1_mm", mixrt_dnnl_packed_lib, 0, mixrt_fmm_packed_get, mixrt_fmm_unpack, mixrt_fmm_same},
    {"dnnl_conv1x1_mm_swish", mixrt_dnnl_packed_lib, 0, mixrt_fmm_packed_get, mixrt_fmm_unpack, mixrt_fmm_same},
    {"dnnl_fused_conv_swish",
      mixrt_dnnl_packed_lib, 0, mixrt_dnnl_conv_packed_get, mixrt_dnnl_conv_unpack, mixrt_dnnl_conv_same},
    {"dnnl_conv1d_mm", mixrt_dnnl_packed_lib, 0, mixrt_fmm_packed_get, mixrt_fmm_unpack, mixrt_fmm_same},
};
#define N_PACKINGS (sizeof(packings) / sizeof(packings[0]))
/* layout_size is sizeof(dnnl_memory_desc_t), which this file cannot name without oneDNN's
 * header: filled in on first use from the hook. */
static struct mixrt_cpu_kernel_packing packings_sized[N_PACKINGS];
static pthread_once_t packings_once = PTHREAD_ONCE_INIT;
static void packings_init(void) {
    for (size_t i = 0; i < N_PACKINGS; i++) {
        packings_sized[i] = packings[i];
        packings_sized[i].layout_size = mixrt_dnnl_packed_layout_size();
    }
}
#endif

const struct mixrt_cpu_kernel_packing *mixrt_cpu_kernel_packing_find(const char *name) {
    for (size_t i = 0; name && i < sizeof(own_packings) / sizeof(own_packings[0]); i++)
        if (!strcmp(own_packings[i].kernel, name)) return &own_packings[i];
#ifdef MIXRT_HAVE_DNNL
    pthread_once(&packings_once, packings_init);
    for (size_t i = 0; name && i < N_PACKINGS; i++)
        if (!strcmp(packings_sized[i].kernel, name)) return &packings_sized[i];
#else
    (void)name;
#endif
    return NULL;
}

/* The offer is per thread: prepare runs on the thread that loads the plan, and two loads on
 * two threads must not see each other's blobs. */
static _Thread_local const struct mixrt_node *offer_node;
static _Thread_local const struct mixrt_cpu_packed *offer_blob;
static _Thread_local int offer_outcome = -1;
static _Thread_local char offer_why[256];

void mixrt_cpu_packed_offer(const struct mixrt_node *n, const struct mixrt_cpu_packed *p) {
    offer_node = p ? n : NULL;
    offer_blob = n ? p : NULL;
    offer_outcome = -1;
    offer_why[0] = 0;
}

const struct mixrt_cpu_packed *mixrt_cpu_packed_offered(const struct mixrt_node *n) {
    return n && n == offer_node ? offer_blob : NULL;
}

void mixrt_cpu_packed_took(bool adopted, const char *why) {
    offer_outcome = adopted ? 1 : 0;
    snprintf(offer_why, sizeof offer_why, "%s", why ? why : "");
    if (adopted) offer_node = NULL, offer_blob = NULL; /* used once */
}

int mixrt_cpu_packed_outcome(char *why, size_t why_size) {
    if (why && why_size) snprintf(why, why_size, "%s", offer_why);
    return offer_outcome;
}

static atomic_ulong weight_reorders;
void mixrt_cpu_weight_reorder_counted(void) { atomic_fetch_add(&weight_reorders, 1); }
unsigned long mixrt_cpu_weight_reorders(void) { return atomic_load(&weight_reorders); }
