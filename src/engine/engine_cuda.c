/* engine_cuda.c - the CUDA side of --backend cuda engines: which planned layers run on the
 * GPU, the device memory plan (one arena, offsets from device-side value lifetimes), weight
 * upload, explicit host<->device copies at segment edges, and the run (CUDA-graph replay when
 * the whole engine is one CUDA segment). Invariant: a layer is claimed only when its op,
 * dtypes and static shapes are ones the device calls accept, so a run never meets a layer
 * it cannot launch; every other layer runs the CPU kernel the CPU engine would choose. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cuda/cuda_table.h"
#include "engine/engine_cuda.h"
#include "onnx/model_impl.h"

#define CU_ALIGN 256

enum cu_op {
    CU_NONE = 0,
    CU_GEMM,
    CU_BINARY,
    CU_UNARY,
    CU_CAST,
    CU_LAYERNORM,
    CU_SOFTMAX,
    CU_GATHER,
    CU_VIEW,
    CU_TRANSPOSE,
    CU_SPLIT,
    CU_SLICE,
    CU_CONCAT,
    CU_ATTENTION,
    CU_CONV,
    CU_POOL,
    CU_SPLIT_VIEW, /* a Split whose outputs only Attention reads, through views: no copy */
    CU_SELECT,     /* And / Or / Xor over bools, Where: broadcasting, any element size */
    CU_RESIZE,     /* Resize over H, W (linear / nearest, dm_resize's taps) */
    CU_REDUCE,     /* ReduceMean / ReduceSum over trailing axes (rows of the input) */
    CU_INSTNORM,   /* InstanceNormalization of [N, C, spatial...] (a row per image and channel) */
    CU_EXPAND,     /* Expand: a strided copy reading broadcast axes at stride 0 */
    CU_PAD,        /* Pad with zeros: a memset and a strided copy into the interior */
};

static const char *const cu_kernel_names[] = {"cpu",          "cuda_gemm",    "cuda_binary", "cuda_unary",
                                              "cuda_cast",    "cuda_layernorm", "cuda_softmax", "cuda_gather",
                                              "cuda_view",    "cuda_transpose", "cuda_split",   "cuda_slice",
                                              "cuda_concat",  "cuda_attention", "cuda_conv",  "cuda_pool",
                                              "cuda_split_view", "cuda_select", "cuda_resize", "cuda_reduce",
                                              "cuda_instnorm", "cuda_expand", "cuda_pad"};
_Static_assert(sizeof cu_kernel_names / sizeof cu_kernel_names[0] == CU_PAD + 1, "a name per cu_op");

/* How a GEMM-like node maps on one cuBLASLt product plus optional residual add and
 * activation the epilogue cannot do. */
struct gemm_geom {
    struct mixrt_cuda_gemm_desc desc;
    int a, b, bias, z; /* value indices (-1: none) */
    int post_act;      /* mixrt_cuda_unary_op, -1 none */
    bool gelu_approx;  /* an erf GELU run as cuBLASLt's tanh-form GELU epilogue (see gemm_geom) */
};

struct cu_step {
    enum cu_op op;
    bool general; /* binary: numpy broadcasting kernel; gather: one constant index, strided copy */
    struct gemm_geom gg;
    mixrt_cuda_gemm_t gemm;
    struct mixrt_cuda_attention_args att;
    bool att_fast; /* the last run took the tensor-core attention kernel */
    /* Attention as batched GEMMs (16-bit, many heads x queries): Q/K/V copied heads-first
     * into the engine's attention scratch where not already so, S = scale Q K^T (f32),
     * the softmax kernel, O = P V; offsets into the scratch. */
    bool att_gemm;
    mixrt_cuda_gemm_t att_qk, att_pv;
    size_t att_off[6]; /* q, k, v, o, s, p */
    /* Conv / FusedConv: the cuDNN plan, its bias / residual / activation (value indices,
     * -1 none; unary op, -1 none), and W reordered to KRSC for channels-last (device).
     * A patch conv (kernel == stride, no pads; 1x1 convs too) is a space-to-depth copy into
     * col (device scratch; none for 1x1, whose input already is the GEMM operand) and one
     * cuBLASLt product (gemm) instead; *_done: the product's epilogue did that part. */
    mixrt_cuda_conv_t conv;
    struct mixrt_cuda_conv_desc cd;
    int conv_b, conv_z, conv_act;
    void *wperm;
    size_t wperm_bytes;
    /* Resize: its geometry and its H, W scales (rz_s: what the taps are made from). A device table made at build (table_bytes): Resize's H then W
     * taps, GatherND's flat row per index tuple (nd: its rows of data viewed as [nd_table,
     * nd_cols], nd_n tuples). */
    struct mixrt_cuda_resize_args rz;
    double rz_s[2];
    void *table;
    size_t table_bytes;
    bool nd;
    size_t nd_n, nd_table, nd_cols;
    /* A Where that makes an attention mask from And(causal constant, padding row) writes
     * Where(row, 0, fill) of row_dims instead (mask_rows): row_in is the row, else -1. */
    int row_in;
    int64_t row_dims[4];
    bool patch, conv_bias_done, conv_z_done, conv_act_done;
    /* A channels-last conv of few input channels (the ResNet stem, 3): im2col into col
     * (rows of im2.ldc: r s c rounded up to 8, zero columns after) and the product of the
     * patch path over it, W as KRSC rows of im2.ldc. cuDNN's channels-last kernels ran the
     * 7x7 stem at batch 32 in 0.50 ms of ResNet-50's 1.78 (H200, call 23). */
    bool im2col;
    struct mixrt_cuda_im2col_args im2;
    /* A channels-last depthwise conv (groups == channels, one output per channel, no
     * residual): own kernel (mixrt_cuda_dwconv) with bias and activation, W as [R, S, C]
     * (MIXRT_CUDA_DWCONV=off: cuDNN). MobileNetV2 at b32 ran 4.65 ms on the H200 with cuDNN's. */
    bool dw;
    struct mixrt_cuda_dwconv_args dwa;
    /* A 3-D conv run channels-last (conv planned NDHWC, W as KTRSC in wperm): X transposed
     * into the engine's conv3d scratch, Y transposed back from it (see conv3d_layout); not
     * where X comes NDHWC from a channels-last conv before (cl3_in), or Y goes NDHWC to one
     * after (cl3_out: its sole reader; see conv3d_chains). */
    bool cl3, cl3_in, cl3_out;
    void *col;
    size_t col_bytes;
    struct mixrt_cuda_pool_args pool;
    /* A product whose output rows are not 16-byte multiples (GPT-2's LM head, N = 50257)
     * runs planned with N padded to a multiple of 64 (weight copy wpad with zero columns;
     * output ypad with rows of pad_ld): cuBLASLt's kernels for unaligned rows ran 7x slower
     * (notes/cuda.md call 14). The real columns go to the output by cast_rows, or, when
     * the sole consumer is a Cast (pad_fused), that Cast reads ypad itself (cast_src). */
    void *wpad, *ypad;
    size_t wpad_bytes, ypad_bytes;
    int64_t pad_ld;
    bool pad_fused;
    const void *cast_src;
    int64_t cast_ld;
    /* Row groups (rg > 1), the other way for such a product at many rows: rows r, r + rg,
     * r + 2 rg ... start at one 16-byte phase, so each group is a product written straight
     * into the output's rows (pitch rg N) from an aligned column c0 on, nc of them (a
     * multiple of 8), and the columns before c0 and after c0 + nc come from a small dense
     * product of every row with the union of those columns (egemm: W's first `left` and last
     * n - nc rows, copied to we; into escr) that edge_scatter copies into place. Group
     * j starts at c0 = j t, t the fewest columns that make N + t a whole number of 16-byte
     * vectors, so its A rows, W rows and Y start are a fixed stride from group j - 1's: the
     * groups are one strided batch, one launch. No padded copy of the output (412 MB at
     * GPT-2 b32) and no pass over it. W as [N, K] rows (wt: a transposed copy when the
     * model's is [K, N]). Where the sole consumer is a Cast to f32 right after it, the groups
     * write that Cast's output in f32 (cast_by_gemm). */
    int rg;
    void *wt, *we, *escr;
    size_t wt_bytes, we_bytes, escr_bytes;
    mixrt_cuda_gemm_t egemm;
    struct mixrt_cuda_edge_args edge;
    int rg_cast; /* the Cast node whose output the groups write, or -1 */
    bool cast_by_gemm;
};

struct xfer {
    int step, value;
    bool h2d;
};

struct mixrt_engine_cuda {
    mixrt_context_t ctx;
    void *lib;
    const struct mixrt_cuda_table *t;
    mixrt_cuda_device_t dev;
    int n_nodes, n_values;
    struct cu_step *steps; /* per node index */
    int *root;             /* per value: the value whose device bytes it shares (views) */
    size_t *boff;          /* per value: byte offset into its root's bytes (Split views) */
    /* per value: > 0 when the value is a window of `pitch` elements per row of its root's
     * last axis (a Split view, or a view of one), 0 contiguous; set by split_views */
    int64_t *pitch;
    int64_t *off;          /* per value (roots): arena offset, -1 none */
    void **wptr;           /* per value: uploaded constant, NULL none */
    size_t *wbytes;
    struct xfer *xfers;
    int n_xfers, xfer_cap;
    int *host_last; /* per value: last step a host copy is read (n_nodes: kept to the end) */
    size_t arena_bytes, weight_bytes, h2d_bytes, d2h_bytes;
    int segments, cuda_segments, h2d, d2h, cpu_layers;
    int prologue; /* leading steps that run on the CPU (see hoist_cpu_prologue) */
    int gelu_approx; /* layers whose erf GELU runs as the tanh-form epilogue */
    int mask_rows, mask_rows_att; /* mask_rows: Wheres rewritten, Attention layers reading them */
    int rowgroups;   /* products run in row groups (cu_step.rg) */
    uint8_t *arena;
    mixrt_cuda_graph_t graph; /* the whole run's kernels when there is no CPU step */
    void *att_scratch; /* shared by the batched-GEMM attention layers (they run one by one) */
    size_t att_scratch_bytes;
    void *cl3_scratch; /* shared by the channels-last 3-D convs: X then Y, transposed */
    size_t cl3_scratch_bytes;
    bool graph_tried;
    bool sync_each;
    /* Pinned staging of the final device-to-host copies (MIXRT_CUDA_PINNED=off: straight
     * into the output tensors): pageable D2H runs through the driver's small bounce buffers. */
    void **stage;   /* per graph output k: pinned buffer, NULL none */
    size_t *stage_bytes;
    /* MIXRT_CUDA_PROFILE=1: device time per layer (marks around every step), summed. */
    bool profile;
    int prof_runs;
    double *prof_ms; /* per execution step */
    float *prof_tmp;
    const struct mixrt_graph *g; /* the planned graph (the model outlives this side) */
};

/* ---- loading ------------------------------------------------------------------------- */

static pthread_mutex_t g_lib_lock = PTHREAD_MUTEX_INITIALIZER;
static void *g_lib;
static const struct mixrt_cuda_table *g_table;
static const char g_anchor; /* an address inside libmixrt (or the program linking it), for dladdr */

/* The library is loaded once per process and never unloaded: the CUDA runtime inside it
 * must outlive every engine, and unloading it at exit races the driver's own teardown. */
static mixrt_status load_table(mixrt_context_t ctx, void **lib, const struct mixrt_cuda_table **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    pthread_mutex_lock(&g_lib_lock);
    if (!g_table) {
        char path[4096], first_err[512] = "";
        void *h = NULL;
        const char *env = getenv("MIXRT_CUDA_LIBRARY");
        if (env && *env) {
            h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
            if (!h) snprintf(first_err, sizeof(first_err), "%s", dlerror());
        } else {
            Dl_info info;
            if (dladdr(&g_anchor, &info) && info.dli_fname) {
                const char *slash = strrchr(info.dli_fname, '/');
                int dir = slash ? (int)(slash - info.dli_fname) : 1;
                const char *base = slash ? info.dli_fname : ".";
                static const char *const names[] = {"libmixrt_cuda.so", "libmixrt_cuda.so.0"};
                for (int i = 0; i < 2 && !h; i++) {
                    snprintf(path, sizeof(path), "%.*s/%s", dir, base, names[i]);
                    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                    if (!h && !first_err[0]) snprintf(first_err, sizeof(first_err), "%s", dlerror());
                }
            }
            if (!h) h = dlopen("libmixrt_cuda.so", RTLD_NOW | RTLD_LOCAL);
            if (!h && !first_err[0]) snprintf(first_err, sizeof(first_err), "%s", dlerror());
        }
        if (!h) {
            status = mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "--backend cuda: cannot load libmixrt_cuda.so: %s%s",
                                 first_err, env && *env ? " (MIXRT_CUDA_LIBRARY)" : "");
            goto fail;
        }
        const struct mixrt_cuda_table *t = dlsym(h, MIXRT_CUDA_TABLE_SYMBOL);
        if (!t || t->version != MIXRT_CUDA_TABLE_VERSION || t->size < sizeof(struct mixrt_cuda_table)) {
            status = mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "--backend cuda: cannot load libmixrt_cuda.so: %s",
                                 !t ? "it has no " MIXRT_CUDA_TABLE_SYMBOL " (a library of another version?)"
                                    : "its backend table is of another version");
            dlclose(h);
            goto fail;
        }
        g_lib = h;
        g_table = t;
    }
    *lib = g_lib;
    *out = g_table;
fail:
    pthread_mutex_unlock(&g_lib_lock);
    return status;
}

mixrt_status mixrt_engine_cuda_open(struct mixrt_engine *e) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = mixrt_calloc(e->ctx, 1, sizeof(*c));
    if (!c) return MIXRT_STATUS_OUT_OF_MEMORY;
    c->ctx = e->ctx;
    e->cuda = c;
    MIXRT_TRY(load_table(e->ctx, &c->lib, &c->t));
    int count = 0;
    status = c->t->device_count(e->ctx, &count);
    if (status != MIXRT_STATUS_OK) {
        mixrt_error_prefix(e->ctx, "no CUDA device");
        goto fail;
    }
    if (count == 0) {
        status = mixrt_error(e->ctx, MIXRT_STATUS_UNSUPPORTED, "no CUDA device: the CUDA runtime sees no GPU (driver "
                             "missing, or CUDA_VISIBLE_DEVICES hides them)");
        goto fail;
    }
    status = c->t->device_create(e->ctx, 0, &c->dev);
    if (status != MIXRT_STATUS_OK) {
        mixrt_error_prefix(e->ctx, "no CUDA device");
        goto fail;
    }
    const struct mixrt_cuda_device_info *info = c->t->device_get_info(c->dev);
    snprintf(e->target, sizeof(e->target), "cuda sm_%d%d %.100s", info->cc_major, info->cc_minor, info->name);
fail:
    return status;
}

/* ---- shapes and checks ----------------------------------------------------------------- */

static bool cu_float(mixrt_dtype d) { return d == MIXRT_DTYPE_F32 || d == MIXRT_DTYPE_BF16 || d == MIXRT_DTYPE_F16; }

static bool value_static(const struct mixrt_graph *g, int vi) {
    if (vi < 0) return true;
    const struct mixrt_value *v = &g->values[vi];
    if (v->rank < 0 || (v->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL | MIXRT_VALUE_OUTER))) return false;
    if (!mixrt_dtype_is_supported(v->dtype) || v->dtype == MIXRT_DTYPE_STRING || !mixrt_dtype_size(v->dtype)) return false;
    for (int d = 0; d < v->rank; d++)
        if (v->dims[d].value < 0) return false;
    return true;
}

static size_t numel(const struct mixrt_graph *g, int vi) {
    size_t n = 1;
    for (int d = 0; d < g->values[vi].rank; d++) n *= (size_t)g->values[vi].dims[d].value;
    return n;
}

static size_t vbytes(const struct mixrt_graph *g, int vi) { return numel(g, vi) * mixrt_dtype_size(g->values[vi].dtype); }

static int64_t dim(const struct mixrt_graph *g, int vi, int d) { return g->values[vi].dims[d].value; }

static mixrt_dtype dt_of(const struct mixrt_graph *g, int vi) { return g->values[vi].dtype; }

static bool same_shape(const struct mixrt_graph *g, int a, int b) {
    if (g->values[a].rank != g->values[b].rank) return false;
    for (int d = 0; d < g->values[a].rank; d++)
        if (dim(g, a, d) != dim(g, b, d)) return false;
    return true;
}

static void strides_of(const struct mixrt_graph *g, int vi, int64_t *s) {
    int r = g->values[vi].rank;
    int64_t acc = 1;
    for (int d = r - 1; d >= 0; d--) {
        s[d] = acc;
        acc *= dim(g, vi, d);
    }
}

/* v's strides (elements) per axis of an output of rank ry it broadcasts to (numpy rules:
 * leading axes v lacks and axes of 1 read with stride 0). */
static void bcast_strides(const struct mixrt_graph *g, int v, int ry, int64_t *out) {
    int r = g->values[v].rank;
    int64_t vs[MIXRT_MAX_RANK];
    strides_of(g, v, vs);
    for (int d = 0; d < ry; d++) {
        int sd = d - (ry - r);
        out[d] = sd < 0 || g->values[v].dims[sd].value == 1 ? 0 : vs[sd];
    }
}

static int in_at(const struct mixrt_node *n, int i) { return i < n->n_inputs ? n->inputs[i] : -1; }
static int out_at(const struct mixrt_node *n, int i) { return i < n->n_outputs ? n->outputs[i] : -1; }
static bool is(const struct mixrt_node *n, const char *domain, const char *op) {
    return !strcmp(n->domain, domain) && !strcmp(n->op_type, op);
}

/* Readers of each value (subgraph reads are refused earlier). */
static int readers(const struct mixrt_graph *g, int vi) {
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++) k += g->nodes[i].inputs[j] == vi;
    return k;
}

static bool unused_output(const struct mixrt_graph *g, const struct mixrt_node *n, int i) {
    int v = out_at(n, i);
    return v < 0 || (!(g->values[v].flags & MIXRT_VALUE_GRAPH_OUTPUT) && readers(g, v) == 0);
}

/* The GEMM a MatMul / Gemm / com.mixrt FusedMatMul node is, or false. */
static bool gemm_geom(const struct mixrt_graph *g, const struct mixrt_node *n, struct gemm_geom *gg) {
    memset(gg, 0, sizeof(*gg));
    gg->bias = gg->z = -1;
    gg->post_act = -1;
    bool fused = is(n, MIXRT_DOMAIN, "FusedMatMul"), gemm = is(n, "", "Gemm");
    if (!fused && !gemm && !is(n, "", "MatMul")) return false;
    int a = in_at(n, 0), b = in_at(n, 1), y = out_at(n, 0);
    if (a < 0 || b < 0 || y < 0) return false;
    mixrt_dtype dt = dt_of(g, a);
    if (!cu_float(dt) || dt_of(g, b) != dt || dt_of(g, y) != dt) return false;
    int ra = g->values[a].rank, rb = g->values[b].rank;
    if (ra < 2 || rb < 2) return false;
    struct mixrt_cuda_gemm_desc *d = &gg->desc;
    d->ab_dtype = d->y_dtype = dt;
    d->batch = 1;
    d->name = n->name;
    bool tb = (fused || gemm) && mixrt_node_attr_int(n, "transB", 0) != 0;
    bool ta = gemm && mixrt_node_attr_int(n, "transA", 0) != 0;
    if (tb && rb != 2) return false;
    if (gemm && (ra != 2 || rb != 2)) return false;
    int64_t M = ta ? dim(g, a, 1) : dim(g, a, ra - 2), K = ta ? dim(g, a, 0) : dim(g, a, ra - 1);
    int64_t KB = tb ? dim(g, b, 1) : dim(g, b, rb - 2), N = tb ? dim(g, b, 0) : dim(g, b, rb - 1);
    if (KB != K || M <= 0 || N <= 0 || K <= 0) return false;
    if (rb == 2) {
        int64_t rows = 1;
        for (int i = 0; i < ra - 1; i++) rows *= dim(g, a, i);
        d->m = ta ? M : rows;
    } else {
        d->m = M;
        int64_t batch = 1;
        for (int i = 0; i < rb - 2; i++) batch *= dim(g, b, i);
        if (ra == 2) {
            d->stride_a = 0;
        } else {
            if (ra != rb) return false;
            for (int i = 0; i < ra - 2; i++)
                if (dim(g, a, i) != dim(g, b, i)) return false;
            d->stride_a = M * K;
        }
        d->batch = batch;
        d->stride_b = K * N;
        d->stride_y = M * N;
    }
    d->n = N, d->k = K, d->trans_a = ta, d->trans_b = tb;
    if ((size_t)(d->batch * d->m * N) != numel(g, y)) return false;
    gg->a = a, gg->b = b;
    bool relu = false, gelu_tanh = false;
    if (gemm) {
        d->alpha = mixrt_node_attr_float(n, "alpha", 1.0f);
        float beta = mixrt_node_attr_float(n, "beta", 1.0f);
        int cv = in_at(n, 2);
        if (cv >= 0 && beta != 0.0f) {
            if (beta != 1.0f || dt_of(g, cv) != dt) return false;
            if (numel(g, cv) == (size_t)N && (g->values[cv].rank == 1 || (g->values[cv].rank == 2 && dim(g, cv, 0) == 1)))
                gg->bias = cv;
            else if (same_shape(g, cv, y))
                gg->z = cv;
            else
                return false;
        }
    } else if (fused) {
        int bias = in_at(n, 2), z = in_at(n, 3);
        if (bias >= 0) {
            if (dt_of(g, bias) != dt || g->values[bias].rank != 1 || dim(g, bias, 0) != N) return false;
            gg->bias = bias;
        }
        if (z >= 0) {
            if (dt_of(g, z) != dt || !same_shape(g, z, y)) return false;
            gg->z = z;
        }
        const char *act = mixrt_node_attr_string(n, "activation", "none");
        if (!strcmp(act, "relu")) relu = true;
        else if (!strcmp(act, "gelu_tanh")) gelu_tanh = true;
        else if (!strcmp(act, "gelu")) {
            /* cuBLASLt's GELU epilogue is the tanh form; the erf form is a pass of its own over
             * the product's output (~17 us per BERT layer at batch 32, H200). Where the output
             * is 16-bit (a precision the user enabled) the epilogue takes it: the two forms
             * differ by at most 4.7e-4 absolute (x = -2.7, y = -0.009), less than bf16's
             * rounding of any value of magnitude >= 0.125; mixrt check measures the model's
             * cost. Announced (inspect, verbose build); MIXRT_CUDA_GELU=exact keeps erf. */
            const char *ge = getenv("MIXRT_CUDA_GELU");
            if (dt != MIXRT_DTYPE_F32 && gg->z < 0 && !(ge && !strcmp(ge, "exact")))
                gelu_tanh = gg->gelu_approx = true;
            else
                gg->post_act = MIXRT_CUDA_UNARY_GELU_ERF;
        }
        else if (!strcmp(act, "sigmoid")) gg->post_act = MIXRT_CUDA_UNARY_SIGMOID;
        else if (!strcmp(act, "tanh")) gg->post_act = MIXRT_CUDA_UNARY_TANH;
        else if (strcmp(act, "none")) return false;
        /* The residual is added before the activation, so with one the epilogue stays plain. */
        if (gg->z >= 0) {
            if (relu) gg->post_act = MIXRT_CUDA_UNARY_RELU;
            if (gelu_tanh) gg->post_act = MIXRT_CUDA_UNARY_GELU_TANH;
            relu = gelu_tanh = false;
        }
    }
    bool bias = gg->bias >= 0;
    d->epilogue = relu ? (bias ? MIXRT_CUDA_EPILOGUE_BIAS_RELU : MIXRT_CUDA_EPILOGUE_RELU)
                  : gelu_tanh ? (bias ? MIXRT_CUDA_EPILOGUE_BIAS_GELU_TANH : MIXRT_CUDA_EPILOGUE_GELU_TANH)
                              : (bias ? MIXRT_CUDA_EPILOGUE_BIAS : MIXRT_CUDA_EPILOGUE_NONE);
    return true;
}

static bool read_perm(const struct mixrt_node *n, const char *name, int rank, int64_t *p) {
    size_t cnt = 0;
    const int64_t *v = mixrt_node_attr_ints(n, name, &cnt);
    if (!v) {
        for (int i = 0; i < rank; i++) p[i] = i;
        return true;
    }
    if ((int)cnt != rank) return false;
    bool seen[MIXRT_MAX_RANK] = {false};
    for (int i = 0; i < rank; i++) {
        if (v[i] < 0 || v[i] >= rank || seen[v[i]]) return false;
        seen[v[i]] = true;
        p[i] = v[i];
    }
    return true;
}

/* com.mixrt Attention geometry (the rules of mixrt_attention_geometry, from static dims). */
/* pitch: per value, > 0 where Q/K/V is a window of its root's rows (split_views), else NULL. */
static bool attention_geom(const struct mixrt_graph *g, const struct mixrt_node *n, struct mixrt_cuda_attention_args *a,
                           const int64_t *pitch) {
    static const char *const perms[3] = {"q_perm", "k_perm", "v_perm"};
    int64_t dims[3][4], str[3][4];
    memset(a, 0, sizeof(*a));
    int y = out_at(n, 0);
    mixrt_dtype dt = dt_of(g, in_at(n, 0));
    if (!cu_float(dt) || y < 0 || dt_of(g, y) != dt) return false;
    for (int i = 0; i < 3; i++) {
        int v = in_at(n, i);
        if (v < 0 || g->values[v].rank != 4 || dt_of(g, v) != dt) return false;
        int64_t p[4], s[4];
        if (!read_perm(n, perms[i], 4, p)) return false;
        strides_of(g, v, s);
        if (pitch && pitch[v] > 0) /* [A0, A1, A2, A3]: rows A0 x A1 of `pitch`, A2 x A3 within one */
            s[3] = 1, s[2] = dim(g, v, 3), s[1] = pitch[v], s[0] = dim(g, v, 1) * pitch[v];
        for (int k = 0; k < 4; k++) dims[i][k] = dim(g, v, (int)p[k]), str[i][k] = s[p[k]];
    }
    int64_t op[4];
    if (!read_perm(n, "out_perm", 4, op)) return false;
    if (in_at(n, 4) >= 0) return false; /* a second mask: the CPU kernels' (MIXRT_PASS_ATTN_MASK2) */
    int m = in_at(n, 3);
    int64_t md[4] = {1, 1, 1, 1}, ms[4] = {0, 0, 0, 0};
    if (m >= 0) {
        int r = g->values[m].rank;
        /* The planner keeps the mask f32 under 16-bit Q/K/V (a bf16 mask turns f32's lowest
         * value into -inf, and a fully masked row into NaN). */
        if (r > 4 || (dt_of(g, m) != dt && dt_of(g, m) != MIXRT_DTYPE_F32)) return false;
        a->mask_f32 = dt_of(g, m) == MIXRT_DTYPE_F32 && dt != MIXRT_DTYPE_F32;
        for (int i = 0; i < r; i++) md[4 - r + i] = dim(g, m, i);
    }
    a->sq = dims[0][2], a->d = dims[0][3], a->sk = dims[1][2], a->dv = dims[2][3];
    if (dims[1][3] != a->d || dims[2][2] != a->sk) return false;
    if ((md[2] != 1 && md[2] != a->sq) || (md[3] != 1 && md[3] != a->sk)) return false;
    a->b = 1, a->h = 1;
    for (int i = 0; i < 4; i++) {
        const int64_t *d = i < 3 ? dims[i] : md;
        for (int k = 0; k < 2; k++) {
            long long *t = k ? &a->h : &a->b;
            if (d[k] == *t || d[k] == 1) continue;
            if (*t != 1) return false;
            *t = d[k];
        }
    }
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++)
            if (dims[i][k] == 1) str[i][k] = 0;
    int64_t acc = 1;
    for (int d = 3; d >= 0; d--) {
        ms[d] = md[d] == 1 ? 0 : acc;
        acc *= md[d];
    }
    for (int k = 0; k < 4; k++)
        a->q_strides[k] = str[0][k], a->k_strides[k] = str[1][k], a->v_strides[k] = str[2][k], a->mask_strides[k] = ms[k];
    int64_t od[4] = {a->b, a->h, a->sq, a->dv}, yd[4], ys[4];
    for (int i = 0; i < 4; i++) yd[i] = od[op[i]];
    ys[3] = 1;
    for (int d = 2; d >= 0; d--) ys[d] = ys[d + 1] * yd[d + 1];
    for (int i = 0; i < 4; i++) a->y_strides[op[i]] = ys[i];
    for (int i = 0; i < 4; i++)
        if (g->values[y].rank != 4 || dim(g, y, i) != yd[i]) return false;
    a->scale = mixrt_node_attr_float(n, "scale", 1.0f);
    int64_t causal = mixrt_node_attr_int(n, "causal", 0);
    if (causal != 0 && causal != 1) return false;
    a->causal = (int)causal;
    a->fill = mixrt_node_attr_float(n, "causal_fill", -INFINITY);
    int64_t nan_zero = mixrt_node_attr_int(n, "nan_zero", 0);
    if (nan_zero != 0 && nan_zero != 1) return false;
    a->nan_zero = (int)nan_zero;
    return a->sk >= 1 && a->d >= 1 && a->sk + a->d <= 12000 && a->b <= 65535 && a->h <= 65535;
}

/* Whether logical [b, h, s, d] strides are those of a contiguous heads-first tensor. */
static bool att_dense(const long long *st, long long b, long long h, long long s, long long d) {
    return st[3] == 1 && st[2] == d && (h == 1 || st[1] == s * d) && (b == 1 || st[0] == h * s * d);
}

/* v broadcasts numpy-style to y, whose rank the strided kernels take: rank(v) <= rank(y) <=
 * MIXRT_CUDA_MAX_PERM_RANK, each of v's dims 1 or y's (right-aligned). */
static bool bcasts_to(const struct mixrt_graph *g, int v, int y) {
    int r = g->values[v].rank, ry = g->values[y].rank;
    if (ry > MIXRT_CUDA_MAX_PERM_RANK || r > ry) return false;
    for (int d = 0; d < r; d++) {
        int64_t dv = dim(g, v, d), dy = dim(g, y, ry - r + d);
        if (dv != dy && dv != 1) return false;
    }
    return true;
}

/* Last-axis broadcast of b against y (b's dims, leading 1s dropped, equal y's trailing). */
static bool trailing_bcast(const struct mixrt_graph *g, int b, int y) {
    int rb = g->values[b].rank, ry = g->values[y].rank, s = 0;
    while (s < rb && dim(g, b, s) == 1) s++;
    if (rb - s > ry) return false;
    for (int i = s; i < rb; i++)
        if (dim(g, b, i) != dim(g, y, ry - (rb - i))) return false;
    return true;
}

static bool copyable(mixrt_dtype d) {
    size_t s = mixrt_dtype_size(d);
    return d != MIXRT_DTYPE_STRING && (s == 1 || s == 2 || s == 4 || s == 8);
}

/* A 3-D conv's layout: a conv of one group runs on cuDNN's NDHWC kernels (channels innermost,
 * as its tensor-core kernels read them) between two transposes, a grouped one (MViT's
 * depthwise pooling convs) NCDHW. Measured on the H200 (notes/cuda.md, session 34), bf16:
 * NDHWC everywhere r3d-18 0.90 ms, S3D 2.32, against NCDHW 1.12 and 4.90; MViT's depthwise
 * convs 9.81 NDHWC against 8.37. cuDNN's own search ranked the two badly (its first runs of
 * a kernel count in), so its times only go into the verbose note. MIXRT_CUDA_CONV3D=ncdhw or
 * =ndhwc forces one. A refused NDHWC plan keeps the NCDHW one. */
static void conv3d_layout(struct mixrt_engine *e, struct cu_step *st, const struct mixrt_node *n) {
    struct mixrt_engine_cuda *c = e->cuda;
    const char *env = getenv("MIXRT_CUDA_CONV3D");
    if (env && !strcmp(env, "ncdhw")) return;
    if (!(env && !strcmp(env, "ndhwc")) && st->cd.groups != 1) return;
    struct mixrt_cuda_conv_desc d = st->cd;
    d.nhwc = true;
    mixrt_cuda_conv_t cl = NULL;
    if (c->t->conv_create(c->dev, &d, &cl) != MIXRT_STATUS_OK) {
        mixrt_context_clear_error(e->ctx);
        return;
    }
    if (e->opts.verbose)
        mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): 3-D conv NDHWC (cuDNN's search: NCDHW %.3f ms, NDHWC %.3f "
                  "ms)", n->name, n->op_type, c->t->conv_time_ms(st->conv), c->t->conv_time_ms(cl));
    c->t->conv_destroy(st->conv);
    st->conv = cl;
    st->cl3 = true;
}

/* Channels-last chains: a channels-last 3-D conv without a residual whose output only a
 * channels-last conv reads, as its X (R(2+1)D's and S3D's (1, k, k) then (k, 1, 1) pairs,
 * r3d's conv1 -> conv2), hands it over NDHWC: the transposes back and forth go. Nothing else
 * sees that value (not a graph output, one reader). */
static void conv3d_chains(struct mixrt_engine *e) {
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    for (int i = 0; i < g->n_nodes; i++) {
        struct cu_step *a = &c->steps[i];
        int v = out_at(&g->nodes[i], 0);
        if (a->op != CU_CONV || !a->cl3 || a->conv_z >= 0 || v < 0 ||
            (g->values[v].flags & MIXRT_VALUE_GRAPH_OUTPUT) || readers(g, v) != 1)
            continue;
        for (int j = 0; j < g->n_nodes; j++)
            if (in_at(&g->nodes[j], 0) == v && c->steps[j].op == CU_CONV && c->steps[j].cl3)
                a->cl3_out = c->steps[j].cl3_in = true;
    }
}

/* Conv / com.mixrt FusedConv as one cuDNN convolution (or, for a patch conv, one GEMM) plus
 * one epilogue kernel for bias, residual and activation: 1-D, 2-D or 3-D (NCDHW), constant W, symmetric
 * explicit pads, activations the unary kernels have. On by default (verified on the H200,
 * notes/cuda.md); MIXRT_CUDA_CONV=0 keeps convolutions on the CPU. */
static bool conv_geom(const struct mixrt_graph *g, const struct mixrt_node *n, struct cu_step *st) {
    const char *env = getenv("MIXRT_CUDA_CONV");
    if (env && !strcmp(env, "0")) return false;
    bool fused = is(n, MIXRT_DOMAIN, "FusedConv");
    if (!fused && !is(n, "", "Conv")) return false;
    int x = in_at(n, 0), w = in_at(n, 1), b = in_at(n, 2), z = fused ? in_at(n, 3) : -1, y = out_at(n, 0);
    if (x < 0 || w < 0 || y < 0 || !mixrt_graph_is_fixed_const(g, w)) return false;
    mixrt_dtype dt = dt_of(g, x);
    if (!cu_float(dt) || dt_of(g, w) != dt || dt_of(g, y) != dt) return false;
    /* 1-D convs (Whisper's and wav2vec2's audio stems) run as 2-D ones of height 1: [N, C, L]
     * is [N, C, 1, L] in memory. */
    int rk = g->values[x].rank;
    if (rk < 3 || rk > 5 || g->values[w].rank != rk || g->values[y].rank != rk) return false;
    bool nhwc = fused && mixrt_node_attr_int(n, "channels_last", 0) == 1;
    if (rk != 4 && nhwc) return false;
    st->conv_act = -1;
    if (fused) {
        enum mixrt_fconv_act act;
        float p0, p1;
        if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) return false;
        switch (act) {
        case MIXRT_FCONV_NONE: break;
        case MIXRT_FCONV_RELU: st->conv_act = MIXRT_CUDA_UNARY_RELU; break;
        case MIXRT_FCONV_SIGMOID: st->conv_act = MIXRT_CUDA_UNARY_SIGMOID; break;
        case MIXRT_FCONV_TANH: st->conv_act = MIXRT_CUDA_UNARY_TANH; break;
        case MIXRT_FCONV_SILU: st->conv_act = MIXRT_CUDA_UNARY_SILU; break;
        case MIXRT_FCONV_HARD_SWISH: st->conv_act = MIXRT_CUDA_UNARY_HARDSWISH; break;
        case MIXRT_FCONV_CLIP: /* ReLU6 (MobileNetV2); other bounds stay on the CPU */
            if (p0 != 0.0f || p1 != 6.0f) return false;
            st->conv_act = MIXRT_CUDA_UNARY_RELU6;
            break;
        default: return false;
        }
    }
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    size_t np = 0, ns = 0, nd = 0;
    const int64_t *pads = mixrt_node_attr_ints(n, "pads", &np), *strides = mixrt_node_attr_ints(n, "strides", &ns);
    const int64_t *dil = mixrt_node_attr_ints(n, "dilations", &nd);
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && !same) return false;
    const int sp = rk - 2; /* spatial axes */
    if ((pads && np != (size_t)(2 * sp)) || (strides && ns != (size_t)sp) || (dil && nd != (size_t)sp)) return false;
    /* Spatial axis i of 3 (depth, height, width) is the graph's axis i - (3 - sp); a 2-D
     * conv has no depth, a 1-D one height 1 as well. */
    int64_t pd3[3] = {0, 0, 0};
    if (pads && strcmp(ap, "VALID"))
        for (int i = 0; i < sp; i++) {
            if (pads[i] != pads[sp + i]) return false; /* cuDNN pads symmetrically */
            pd3[3 - sp + i] = pads[i];
        }
    int64_t group = mixrt_node_attr_int(n, "group", 1);
    struct mixrt_cuda_conv_desc *d = &st->cd;
    memset(d, 0, sizeof(*d));
    d->dtype = dt, d->nhwc = nhwc, d->name = n->name;
    d->n = dim(g, x, 0);
    d->c = nhwc ? dim(g, x, 3) : dim(g, x, 1);
    d->h = nhwc ? dim(g, x, 1) : sp == 1 ? 1 : dim(g, x, 2);
    d->w = nhwc ? dim(g, x, 2) : dim(g, x, rk - 1);
    d->k = nhwc ? dim(g, y, 3) : dim(g, y, 1);
    d->oh = nhwc ? dim(g, y, 1) : sp == 1 ? 1 : dim(g, y, 2);
    d->ow = nhwc ? dim(g, y, 2) : dim(g, y, rk - 1);
    d->r = sp == 1 ? 1 : dim(g, w, rk - 2), d->s = dim(g, w, rk - 1);
    if (sp == 3) { /* NCDHW: the H, W fields hold axes 3 and 4, depth its own */
        d->d = dim(g, x, 2), d->h = dim(g, x, 3), d->od = dim(g, y, 2), d->oh = dim(g, y, 3), d->t = dim(g, w, 2);
        if (d->d < 1 || d->od < 1 || d->t < 1) return false;
    }
    int64_t st3[3] = {1, 1, 1}, dl3[3] = {1, 1, 1};
    for (int i = 0; i < sp; i++) {
        if (strides) st3[3 - sp + i] = strides[i];
        if (dil) dl3[3 - sp + i] = dil[i];
    }
    for (int i = 0; i < 3; i++)
        if (st3[i] < 1 || st3[i] > 65535 || dl3[i] < 1 || dl3[i] > 65535) return false;
    if (same) { /* SAME_*: the pads the output size needs, when they come out even (HF EfficientNet) */
        int64_t in[3] = {d->d, d->h, d->w}, out[3] = {d->od, d->oh, d->ow}, kk[3] = {d->t, d->r, d->s};
        if (d->h < 1 || d->w < 1 || d->oh < 1 || d->ow < 1 || d->r < 1 || d->s < 1) return false;
        for (int i = 3 - sp; i < 3; i++) {
            int64_t total = (out[i] - 1) * st3[i] + (kk[i] - 1) * dl3[i] + 1 - in[i];
            if (total < 0) total = 0;
            if (total % 2) return false; /* uneven: cuDNN pads symmetrically */
            pd3[i] = total / 2;
        }
    }
    if (group < 1 || group > INT32_MAX || pd3[0] > 65535 || pd3[1] > 65535 || pd3[2] > 65535 ||
        dim(g, w, 0) != d->k || dim(g, w, 1) * group != d->c || dim(g, y, 0) != d->n)
        return false;
    d->pad_h = (int)pd3[1], d->pad_w = (int)pd3[2], d->groups = (int)group;
    d->stride_h = (int)st3[1], d->stride_w = (int)st3[2], d->dil_h = (int)dl3[1], d->dil_w = (int)dl3[2];
    if (sp == 3) d->pad_d = (int)pd3[0], d->stride_d = (int)st3[0], d->dil_d = (int)dl3[0];
    st->conv_b = st->conv_z = -1;
    if (b >= 0) {
        if (dt_of(g, b) != dt || numel(g, b) != (size_t)d->k) return false;
        st->conv_b = b;
    }
    if (z >= 0) {
        if (dt_of(g, z) != dt || !same_shape(g, z, y)) return false;
        st->conv_z = z;
    }
    /* cuDNN's graph plan may take the bias, and the activation when no residual comes between
     * (conv_run_ex says per run what it applied; bias_act does the rest). */
    d->epi_bias = st->conv_b >= 0;
    d->epi_act = st->conv_z < 0 && st->conv_act >= 0 ? st->conv_act + 1 : 0;
    /* Kernel == stride, no pads, no dilation, one group (ViT's patch embedding, and 1x1
     * convs): every input element is read once, so a space-to-depth copy and a GEMM do it
     * (no cuDNN; MIXRT_CUDA_PATCH=off: cuDNN). */
    st->patch = sp < 3 && group == 1 && d->pad_h == 0 && d->pad_w == 0 && d->dil_h == 1 && d->dil_w == 1 &&
                d->stride_h == d->r && d->stride_w == d->s && d->oh == d->h / d->r && d->ow == d->w / d->s &&
                !(getenv("MIXRT_CUDA_PATCH") && !strcmp(getenv("MIXRT_CUDA_PATCH"), "off"));
    /* Few input channels, channels-last: im2col + one product (MIXRT_CUDA_IM2COL=off: cuDNN). */
    int64_t rsc = d->c * d->r * d->s;
    st->im2col = !st->patch && nhwc && group == 1 && d->c <= 4 && rsc <= 4096 - 8 && d->n <= 65535 && d->oh <= 65535 &&
                 d->n * d->h * d->w * d->c < ((int64_t)1 << 31) &&
                 !(getenv("MIXRT_CUDA_IM2COL") && !strcmp(getenv("MIXRT_CUDA_IM2COL"), "off"));
    st->dw = !st->patch && !st->im2col && nhwc && group == d->c && d->k == d->c && st->conv_z < 0 &&
             !(getenv("MIXRT_CUDA_DWCONV") && !strcmp(getenv("MIXRT_CUDA_DWCONV"), "off"));
    if (st->dw) {
        struct mixrt_cuda_dwconv_args *da = &st->dwa;
        da->n = d->n, da->h = d->h, da->w = d->w, da->c = d->c, da->oh = d->oh, da->ow = d->ow;
        da->r = (int)d->r, da->s = (int)d->s, da->sh = d->stride_h, da->sw = d->stride_w;
        da->ph = d->pad_h, da->pw = d->pad_w, da->dh = d->dil_h, da->dw = d->dil_w, da->act = st->conv_act;
        st->conv_bias_done = st->conv_b >= 0, st->conv_act_done = true;
    }
    if (st->im2col) {
        struct mixrt_cuda_im2col_args *ia = &st->im2;
        ia->n = d->n, ia->h = d->h, ia->w = d->w, ia->c = d->c, ia->oh = d->oh, ia->ow = d->ow;
        ia->r = (int)d->r, ia->s = (int)d->s, ia->sh = d->stride_h, ia->sw = d->stride_w;
        ia->ph = d->pad_h, ia->pw = d->pad_w, ia->dh = d->dil_h, ia->dw = d->dil_w;
        ia->ldc = (int)((rsc + 7) / 8 * 8);
    }
    return true;
}

/* 2-D MaxPool / AveragePool / GlobalAveragePool (ONNX: NCHW; com.mixrt from the layout
 * pass: channels-last NHWC, same attributes) with the CPU reference's window rules; the
 * output dims the graph holds must be the ones those rules give (ceil_mode included). */
static bool pool_geom(const struct mixrt_graph *g, const struct mixrt_node *n, struct mixrt_cuda_pool_args *a) {
    bool onnx = !n->domain[0], mx = !strcmp(n->domain, MIXRT_DOMAIN);
    if (!onnx && !mx) return false;
    if (mixrt_node_mean_hw(g, n)) {
        /* Over H and W of an NCHW tensor (the passes make a keepdims one a
         * GlobalAveragePool): the global average pool; keepdims 0 ([N, C]) has the same bytes
         * as [N, C, 1, 1]. */
        int x = in_at(n, 0), y = out_at(n, 0);
        if (!cu_float(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x)) return false;
        memset(a, 0, sizeof(*a));
        a->n = dim(g, x, 0), a->c = dim(g, x, 1), a->h = dim(g, x, 2), a->w = dim(g, x, 3), a->oh = a->ow = 1;
        if (a->n < 1 || a->c < 1 || a->h < 1 || a->w < 1 || a->h > INT32_MAX || a->w > INT32_MAX ||
            numel(g, y) != (size_t)(a->n * a->c))
            return false;
        a->avg = 1;
        a->sh = a->sw = a->dh = a->dw = 1;
        a->kh = (int)a->h, a->kw = (int)a->w;
        return true;
    }
    bool maxp = !strcmp(n->op_type, "MaxPool"), avg = !strcmp(n->op_type, "AveragePool");
    bool glob = !strcmp(n->op_type, "GlobalAveragePool");
    if (!maxp && !avg && !glob) return false;
    int x = in_at(n, 0), y = out_at(n, 0);
    if (glob && onnx && n->n_inputs == 1 && g->values[x].rank == 5 && g->values[y].rank == 5) {
        /* 3-D global average (video nets' head): NCDHW averaged over D, H, W is the 2-D one
         * over [N, C, D*H, W], the same bytes. */
        if (!cu_float(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x)) return false;
        memset(a, 0, sizeof(*a));
        a->n = dim(g, x, 0), a->c = dim(g, x, 1), a->h = dim(g, x, 2) * dim(g, x, 3), a->w = dim(g, x, 4);
        a->oh = a->ow = 1;
        if (a->n < 1 || a->c < 1 || dim(g, x, 2) < 1 || dim(g, x, 3) < 1 || a->w < 1 || a->h > INT32_MAX ||
            a->w > INT32_MAX || numel(g, y) != (size_t)(a->n * a->c))
            return false;
        a->avg = 1;
        a->sh = a->sw = a->dh = a->dw = 1;
        a->kh = (int)a->h, a->kw = (int)a->w;
        return true;
    }
    if (n->n_inputs != 1 || g->values[x].rank != 4 || g->values[y].rank != 4) return false;
    mixrt_dtype dt = dt_of(g, x);
    if (!cu_float(dt) || dt_of(g, y) != dt) return false;
    if (maxp && !unused_output(g, n, 1)) return false; /* Indices */
    memset(a, 0, sizeof(*a));
    a->nhwc = mx;
    a->n = dim(g, x, 0);
    a->c = mx ? dim(g, x, 3) : dim(g, x, 1);
    a->h = mx ? dim(g, x, 1) : dim(g, x, 2);
    a->w = mx ? dim(g, x, 2) : dim(g, x, 3);
    a->oh = mx ? dim(g, y, 1) : dim(g, y, 2);
    a->ow = mx ? dim(g, y, 2) : dim(g, y, 3);
    int64_t yn = dim(g, y, 0), yc = mx ? dim(g, y, 3) : dim(g, y, 1);
    if (yn != a->n || yc != a->c || a->h < 1 || a->w < 1 || a->h > INT32_MAX || a->w > INT32_MAX) return false;
    a->avg = avg || glob;
    a->sh = a->sw = a->dh = a->dw = 1;
    if (glob) {
        a->kh = (int)a->h, a->kw = (int)a->w;
        return a->oh == 1 && a->ow == 1;
    }
    size_t nk = 0, ns = 0, nd = 0, np = 0;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk), *st = mixrt_node_attr_ints(n, "strides", &ns);
    const int64_t *dl = mixrt_node_attr_ints(n, "dilations", &nd), *pd = mixrt_node_attr_ints(n, "pads", &np);
    if (!ks || nk != 2 || (st && ns != 2) || (dl && nd != 2) || (pd && np != 4)) return false;
    int64_t k[2] = {ks[0], ks[1]}, s[2] = {st ? st[0] : 1, st ? st[1] : 1}, d[2] = {dl ? dl[0] : 1, dl ? dl[1] : 1};
    int64_t in[2] = {a->h, a->w}, out[2] = {a->oh, a->ow}, pb[2] = {0, 0}, pe[2] = {0, 0};
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (strcmp(ap, "NOTSET") && ap[0] && strcmp(ap, "VALID") && !same) return false;
    bool ceil_mode = mixrt_node_attr_int(n, "ceil_mode", 0) != 0;
    for (int i = 0; i < 2; i++) {
        if (k[i] < 1 || s[i] < 1 || d[i] < 1 || k[i] > 65535 || s[i] > 65535 || d[i] > 65535) return false;
        int64_t dk = (k[i] - 1) * d[i] + 1, o;
        if (same) {
            o = (in[i] + s[i] - 1) / s[i];
            int64_t total = (o - 1) * s[i] + dk - in[i];
            if (total < 0) total = 0;
            pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            pe[i] = total - pb[i];
        } else {
            if (pd && (!strcmp(ap, "NOTSET") || !ap[0])) pb[i] = pd[i], pe[i] = pd[2 + i];
            if (pb[i] < 0 || pe[i] < 0 || pb[i] > 65535 || pe[i] > 65535) return false;
            if (in[i] + pb[i] + pe[i] < dk) return false;
            o = mixrt_window_out(in[i], dk, s[i], pb[i], pe[i], ceil_mode);
        }
        if (o != out[i]) return false;
    }
    a->kh = (int)k[0], a->kw = (int)k[1], a->sh = (int)s[0], a->sw = (int)s[1], a->dh = (int)d[0], a->dw = (int)d[1];
    a->pt = (int)pb[0], a->pl = (int)pb[1], a->pb = (int)pe[0], a->pr = (int)pe[1];
    a->include_pad = avg && mixrt_node_attr_int(n, "count_include_pad", 0) != 0;
    return true;
}

/* The CUDA op for node n, CU_NONE when it stays on the CPU. dev_side[v]: v lives on the
 * device when n runs (for views, which follow their input). */
/* Resize of a float [N, C, H, W] over H and W only, with constant scales or sizes that the CPU's
 * dm_resize takes (mode, coordinate transformation, nearest mode): the same taps, made at
 * build (mixrt_resize_axis_taps), run by one kernel. */
static bool resize_geom(const struct mixrt_graph *g, const struct mixrt_node *n, struct cu_step *st) {
    struct mixrt_cuda_resize_args *a = &st->rz;
    int x = in_at(n, 0), y = out_at(n, 0), sc = in_at(n, 2), sz = in_at(n, 3);
    if (n->opset < 11 || g->values[x].rank != 4 || g->values[y].rank != 4 || !cu_float(dt_of(g, x)) ||
        dt_of(g, y) != dt_of(g, x))
        return false;
    for (int j = 2; j < 4; j++)
        if (in_at(n, j) >= 0 && !mixrt_graph_is_fixed_const(g, in_at(n, j))) return false;
    int64_t xd[4], od[4];
    double s[4];
    for (int d = 0; d < 4; d++) xd[d] = dim(g, x, d);
    if (!mixrt_resize_geometry(n, xd, sc >= 0 ? g->values[sc].init : NULL, sz >= 0 ? g->values[sz].init : NULL, od, s))
        return false;
    for (int d = 0; d < 4; d++)
        if (od[d] != dim(g, y, d) || (d < 2 && od[d] != xd[d])) return false;
    if (xd[2] > INT32_MAX || xd[3] > INT32_MAX) return false;
    /* N and C untouched: every coordinate reads itself, weight 1 */
    for (int d = 0; d < 2; d++)
        for (int64_t i = 0; i < xd[d]; i++) {
            int64_t idx[2];
            double w[2];
            int cnt;
            mixrt_resize_axis_taps(n, xd[d], od[d], s[d], i, idx, w, &cnt);
            if (cnt != 1 || idx[0] != i || w[0] != 1.0) return false;
        }
    memset(a, 0, sizeof(*a));
    a->n = xd[0], a->c = xd[1], a->h = xd[2], a->w = xd[3], a->oh = od[2], a->ow = od[3];
    st->rz_s[0] = s[2], st->rz_s[1] = s[3];
    return true;
}

/* The device tap tables of Resize node n (a->oh + a->ow entries, from resize_geom's geometry)
 * into st. */
static mixrt_status resize_taps(struct mixrt_engine_cuda *c, const struct mixrt_node *n, struct cu_step *st) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_cuda_table *t = c->t;
    struct mixrt_cuda_resize_args *a = &st->rz;
    size_t cnt = (size_t)(a->oh + a->ow);
    struct mixrt_cuda_resize_tap *h = malloc((cnt ? cnt : 1) * sizeof(*h));
    if (!h) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (size_t i = 0; i < cnt; i++) {
        bool hd = (int64_t)i < a->oh;
        int64_t at = hd ? (int64_t)i : (int64_t)i - a->oh, idx[2];
        double w[2];
        int k;
        mixrt_resize_axis_taps(n, hd ? a->h : a->w, hd ? a->oh : a->ow, st->rz_s[hd ? 0 : 1], at, idx, w, &k);
        h[i].i0 = (int)idx[0], h[i].w0 = (float)w[0];
        h[i].i1 = k > 1 ? (int)idx[1] : (int)idx[0], h[i].w1 = k > 1 ? (float)w[1] : 0.0f;
    }
    st->table_bytes = cnt * sizeof(*h);
    MIXRT_TRY(t->alloc(c->dev, st->table_bytes ? st->table_bytes : 1, n->name, &st->table));
    if (st->table_bytes) MIXRT_TRY(t->copy_h2d(c->dev, st->table, h, st->table_bytes));
    MIXRT_TRY(t->device_sync(c->dev)); /* h goes next */
    a->taps_h = st->table;
    a->taps_w = (const struct mixrt_cuda_resize_tap *)st->table + a->oh;
fail:
    free(h);
    return status;
}

/* GatherND with constant indices (torch's advanced indexing of the attention mask: the
 * padding row per image): data viewed as [table rows, cols], cols the slice after the batch
 * and indexed axes, each index tuple one flat row, so the run is gather_rows. rows NULL:
 * the check only. Indices out of range stay on the CPU, whose kernel reports them. */
static bool gathernd_rows(const struct mixrt_graph *g, const struct mixrt_node *n, int64_t *rows, size_t *n_rows,
                          size_t *table_rows, size_t *cols) {
    int x = in_at(n, 0), ind = in_at(n, 1), y = out_at(n, 0);
    if (n->opset < 11 || ind < 0 || !mixrt_graph_is_fixed_const(g, ind) || !copyable(dt_of(g, x)) ||
        dt_of(g, y) != dt_of(g, x))
        return false;
    const struct mixrt_tensor *t = g->values[ind].init;
    int rx = g->values[x].rank, ri = t->rank;
    int64_t b = n->opset >= 12 ? mixrt_node_attr_int(n, "batch_dims", 0) : 0;
    if ((t->dtype != MIXRT_DTYPE_I64 && t->dtype != MIXRT_DTYPE_I32) || ri < 1 || b < 0 || b >= ri || b >= rx) return false;
    int64_t m = t->dims[ri - 1];
    if (m < 1 || m > rx - b) return false;
    for (int d = 0; d < b; d++)
        if (t->dims[d] != dim(g, x, d)) return false;
    int64_t nb = 1, per = 1, span = 1, slice = 1; /* span: table rows per batch entry */
    for (int d = 0; d < b; d++) nb *= dim(g, x, d);
    for (int d = (int)b; d < ri - 1; d++) per *= t->dims[d];
    for (int d = (int)b; d < b + m; d++) span *= dim(g, x, d);
    for (int d = (int)(b + m); d < rx; d++) slice *= dim(g, x, d);
    if (nb < 1 || span < 1 || numel(g, y) != (size_t)(nb * per * slice)) return false;
    for (int64_t bi = 0, k = 0; bi < nb; bi++)
        for (int64_t j = 0; j < per; j++, k++) {
            int64_t row = 0;
            for (int q = 0; q < m; q++) {
                int64_t dd = dim(g, x, (int)(b + q)), v = mixrt_load_i64(t->data, t->dtype, (size_t)(k * m + q));
                if (v < -dd || v >= dd) return false;
                row = row * dd + (v < 0 ? v + dd : v);
            }
            if (rows) rows[k] = bi * span + row;
        }
    *n_rows = (size_t)(nb * per), *table_rows = (size_t)(nb * span), *cols = (size_t)slice;
    return true;
}

/* GatherND's device row table into st (nd_n i64 rows). */
static mixrt_status gathernd_table(struct mixrt_engine_cuda *c, const struct mixrt_graph *g,
                                   const struct mixrt_node *n, struct cu_step *st) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_cuda_table *t = c->t;
    int64_t *h = malloc((st->nd_n ? st->nd_n : 1) * sizeof(*h));
    size_t cnt, rows, cols;
    if (!h) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (!gathernd_rows(g, n, h, &cnt, &rows, &cols) || cnt != st->nd_n) MIXRT_TRY(MIXRT_STATUS_INTERNAL);
    st->table_bytes = cnt * sizeof(*h);
    MIXRT_TRY(t->alloc(c->dev, st->table_bytes ? st->table_bytes : 1, n->name, &st->table));
    if (st->table_bytes) MIXRT_TRY(t->copy_h2d(c->dev, st->table, h, st->table_bytes));
    MIXRT_TRY(t->device_sync(c->dev)); /* h goes next */
fail:
    free(h);
    return status;
}

/* Pad (opset 11+) in constant mode with a zero (or absent) value, constant non-negative pads
 * and no axes input: the begin pads per axis into pb. */
static bool pad_geom(const struct mixrt_graph *g, const struct mixrt_node *n, int64_t *pb) {
    int x = in_at(n, 0), y = out_at(n, 0), pads = in_at(n, 1), cv = in_at(n, 2), r = g->values[x].rank;
    if (n->opset < 11 || pads < 0 || in_at(n, 3) >= 0 || !copyable(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x) ||
        r < 1 || r > MIXRT_CUDA_MAX_PERM_RANK || strcmp(mixrt_node_attr_string(n, "mode", "constant"), "constant"))
        return false;
    if (!mixrt_graph_is_fixed_const(g, pads) || numel(g, pads) != (size_t)(2 * r)) return false;
    if (cv >= 0) {
        if (!mixrt_graph_is_fixed_const(g, cv) || numel(g, cv) != 1) return false;
        const struct mixrt_tensor *t = g->values[cv].init;
        size_t es = mixrt_dtype_size(t->dtype);
        for (size_t i = 0; i < es; i++)
            if (((const uint8_t *)t->data)[i]) return false; /* nonzero bytes: not +0 */
    }
    const struct mixrt_tensor *p = g->values[pads].init;
    for (int d = 0; d < r; d++) {
        int64_t b = mixrt_load_i64(p->data, p->dtype, (size_t)d), e = mixrt_load_i64(p->data, p->dtype, (size_t)(d + r));
        if (b < 0 || e < 0 || dim(g, x, d) + b + e != dim(g, y, d)) return false;
        pb[d] = b;
    }
    return true;
}

static enum cu_op classify(const struct mixrt_graph *g, const struct mixrt_node *n, const bool *dev_side,
                           struct cu_step *st) {
    for (int i = 0; i < n->n_inputs; i++)
        if (!value_static(g, n->inputs[i])) return CU_NONE;
    for (int i = 0; i < n->n_outputs; i++)
        if (!value_static(g, n->outputs[i])) return CU_NONE;
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].g || n->attrs[i].graphs) return CU_NONE;
    int x = in_at(n, 0), y = out_at(n, 0);
    if (x < 0 || y < 0) return CU_NONE;
    if (gemm_geom(g, n, &st->gg)) return CU_GEMM;
    if (!n->domain[0] && (is(n, "", "Add") || is(n, "", "Sub") || is(n, "", "Mul") || is(n, "", "Div"))) {
        int b = in_at(n, 1);
        if (b < 0 || !cu_float(dt_of(g, y)) || dt_of(g, x) != dt_of(g, y) || dt_of(g, b) != dt_of(g, y)) return CU_NONE;
        if (same_shape(g, x, y) && trailing_bcast(g, b, y)) return CU_BINARY;
        bool comm = is(n, "", "Add") || is(n, "", "Mul");
        if (comm && same_shape(g, b, y) && trailing_bcast(g, x, y)) return CU_BINARY;
        if (!bcasts_to(g, x, y) || !bcasts_to(g, b, y)) return CU_NONE;
        st->general = true;
        return CU_BINARY;
    }
    /* Bool logic and Where (torch's attention masks: And of a causal constant with the padding
     * row, Where(mask, 0, lowest)) broadcast like the binary ops; Where moves any element. */
    bool logic = is(n, "", "And") || is(n, "", "Or") || is(n, "", "Xor");
    if (logic || is(n, "", "Where")) {
        int b = in_at(n, 1), w = in_at(n, 2);
        if (b < 0 || (!logic && w < 0)) return CU_NONE;
        if (dt_of(g, x) != MIXRT_DTYPE_BOOL) return CU_NONE;
        if (logic ? dt_of(g, b) != MIXRT_DTYPE_BOOL || dt_of(g, y) != MIXRT_DTYPE_BOOL
                  : dt_of(g, b) != dt_of(g, y) || dt_of(g, w) != dt_of(g, y) || !copyable(dt_of(g, y)))
            return CU_NONE;
        for (int k = 0; k < (logic ? 2 : 3); k++)
            if (!bcasts_to(g, in_at(n, k), y)) return CU_NONE;
        return CU_SELECT;
    }
    if (is(n, "", "Relu") || is(n, "", "Sigmoid") || is(n, "", "Tanh") || is(n, "", "Gelu") || is(n, MIXRT_DOMAIN, "Gelu") ||
        is(n, "", "HardSwish") || is(n, "", "HardSigmoid")) {
        if (!cu_float(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x)) return CU_NONE;
        /* HardSigmoid: torch's alpha 1/6 and beta 1/2 (what hardsigmoid / hardswish export) */
        if (is(n, "", "HardSigmoid") && (fabsf(mixrt_node_attr_float(n, "alpha", 0.2f) - 1.0f / 6.0f) > 1e-7f ||
                                         mixrt_node_attr_float(n, "beta", 0.5f) != 0.5f))
            return CU_NONE;
        if (!strcmp(n->op_type, "Gelu")) {
            const char *ap = mixrt_node_attr_string(n, "approximate", "none");
            if (strcmp(ap, "none") && strcmp(ap, "tanh")) return CU_NONE;
        }
        return CU_UNARY;
    }
    if (is(n, "", "Neg") || is(n, "", "Sqrt") || is(n, "", "Reciprocal") || is(n, "", "Exp")) {
        if (!cu_float(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x)) return CU_NONE;
        return CU_UNARY;
    }
    if (is(n, "", "Pow")) { /* a constant exponent of 2 (RMSNorm's x^2) or 0.5 */
        int e = in_at(n, 1);
        if (e < 0 || !mixrt_graph_is_fixed_const(g, e) || numel(g, e) != 1 || !cu_float(dt_of(g, x)) ||
            dt_of(g, y) != dt_of(g, x) || !same_shape(g, x, y))
            return CU_NONE;
        double p = mixrt_load_f64(g->values[e].init->data, dt_of(g, e), 0);
        return p == 2.0 || p == 0.5 ? CU_UNARY : CU_NONE;
    }
    if (is(n, "", "ReduceMean") || is(n, "", "ReduceSum")) {
        /* over the trailing axes (any keepdims): rows of the input */
        int r = g->values[x].rank;
        bool mean = is(n, "", "ReduceMean");
        bool axes_in = mean ? n->opset >= 18 : n->opset >= 13;
        int64_t ax[MIXRT_MAX_RANK];
        size_t na = 0;
        if (!cu_float(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x) || r < 1) return CU_NONE;
        if (axes_in) {
            int a = in_at(n, 1);
            if (a >= 0) {
                if (!mixrt_graph_is_fixed_const(g, a) || numel(g, a) > (size_t)r) return CU_NONE;
                na = numel(g, a);
                for (size_t i = 0; i < na; i++) ax[i] = mixrt_load_i64(g->values[a].init->data, dt_of(g, a), i);
            }
        } else {
            const int64_t *at = mixrt_node_attr_ints(n, "axes", &na);
            if (na > (size_t)r) return CU_NONE;
            for (size_t i = 0; i < na; i++) ax[i] = at[i];
        }
        if (na == 0) {
            if (axes_in && mixrt_node_attr_int(n, "noop_with_empty_axes", 0)) return CU_NONE;
            for (int d = 0; d < r; d++) ax[na++] = d;
        }
        bool red[MIXRT_MAX_RANK] = {false};
        for (size_t i = 0; i < na; i++) {
            int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
            if (a < 0 || a >= r || red[a]) return CU_NONE;
            red[a] = true;
        }
        for (int d = r - (int)na; d < r; d++)
            if (!red[d]) return CU_NONE; /* not the trailing axes */
        size_t cols = 1;
        for (int d = r - (int)na; d < r; d++) cols *= (size_t)dim(g, x, d);
        if (cols == 0 || numel(g, y) * cols != numel(g, x)) return CU_NONE;
        return CU_REDUCE;
    }
    if (is(n, "", "Expand")) { /* GQA's K / V heads repeated (Mistral, Qwen2) */
        if (!copyable(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x) || !bcasts_to(g, x, y)) return CU_NONE;
        return CU_EXPAND;
    }
    if (is(n, "", "Pad")) { /* Swin's windows: constant mode, value 0, pads >= 0 */
        int64_t pb[MIXRT_MAX_RANK];
        return pad_geom(g, n, pb) ? CU_PAD : CU_NONE;
    }
    if (is(n, "", "InstanceNormalization")) {
        int sc = in_at(n, 1), bi = in_at(n, 2), r = g->values[x].rank;
        if (r < 3 || sc < 0 || bi < 0 || !cu_float(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x) ||
            dt_of(g, sc) != dt_of(g, x) || dt_of(g, bi) != dt_of(g, x) || !same_shape(g, x, y))
            return CU_NONE;
        if (numel(g, sc) != (size_t)dim(g, x, 1) || numel(g, bi) != (size_t)dim(g, x, 1) || numel(g, x) == 0)
            return CU_NONE;
        return CU_INSTNORM;
    }
    if (is(n, "", "Cast")) {
        if (dt_of(g, x) == dt_of(g, y) && copyable(dt_of(g, x))) return CU_CAST;
        mixrt_dtype sd = dt_of(g, x);
        if ((cu_float(dt_of(g, y)) || dt_of(g, y) == MIXRT_DTYPE_BOOL) &&
            (sd == MIXRT_DTYPE_I64 || sd == MIXRT_DTYPE_I32 || sd == MIXRT_DTYPE_U8 || sd == MIXRT_DTYPE_BOOL))
            return CU_CAST;
        return cu_float(dt_of(g, x)) && cu_float(dt_of(g, y)) ? CU_CAST : CU_NONE;
    }
    if (is(n, "", "LayerNormalization") || is(n, MIXRT_DOMAIN, "LayerNormalization")) {
        int r = g->values[x].rank, sc = in_at(n, 1), bi = in_at(n, 2);
        int64_t axis = mixrt_node_attr_int(n, "axis", -1);
        if (r < 1 || (axis != -1 && axis != r - 1)) return CU_NONE;
        if (!cu_float(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x) || sc < 0 || dt_of(g, sc) != dt_of(g, x)) return CU_NONE;
        if (numel(g, sc) != (size_t)dim(g, x, r - 1)) return CU_NONE;
        if (bi >= 0 && (dt_of(g, bi) != dt_of(g, x) || numel(g, bi) != (size_t)dim(g, x, r - 1))) return CU_NONE;
        if (!unused_output(g, n, 1) || !unused_output(g, n, 2)) return CU_NONE;
        return CU_LAYERNORM;
    }
    if (is(n, "", "Softmax")) {
        int r = g->values[x].rank;
        int64_t axis = mixrt_node_attr_int(n, "axis", n->opset >= 13 ? -1 : 1);
        if (axis < 0) axis += r;
        if (r < 1 || axis != r - 1 || !cu_float(dt_of(g, x)) || dt_of(g, y) != dt_of(g, x)) return CU_NONE;
        return CU_SOFTMAX;
    }
    if (is(n, "", "Gather")) {
        int idx = in_at(n, 1);
        int64_t axis = mixrt_node_attr_int(n, "axis", 0);
        int r = g->values[x].rank;
        if (idx < 0 || r < 1 || axis < -r || axis >= r) return CU_NONE;
        if (axis < 0) axis += r;
        if (dt_of(g, idx) != MIXRT_DTYPE_I32 && dt_of(g, idx) != MIXRT_DTYPE_I64) return CU_NONE;
        if (!copyable(dt_of(g, x)) || dim(g, x, (int)axis) <= 0) return CU_NONE;
        if (axis == 0) return CU_GATHER;
        /* Another axis: one constant index (BERT's pooler takes token 0) is a strided copy. */
        if (!mixrt_graph_is_fixed_const(g, idx) || numel(g, idx) != 1 || r > MIXRT_CUDA_MAX_PERM_RANK) return CU_NONE;
        int64_t k = mixrt_load_i64(g->values[idx].init->data, dt_of(g, idx), 0), dd = dim(g, x, (int)axis);
        if (k < -dd || k >= dd) return CU_NONE;
        st->general = true;
        return CU_GATHER;
    }
    if (is(n, "", "GatherND")) {
        st->nd = gathernd_rows(g, n, NULL, &st->nd_n, &st->nd_table, &st->nd_cols);
        return st->nd ? CU_GATHER : CU_NONE;
    }
    if (is(n, "", "Reshape") || is(n, "", "Flatten") || is(n, "", "Squeeze") || is(n, "", "Unsqueeze") ||
        is(n, "", "Identity") || is(n, "", "Dropout")) {
        if (dt_of(g, x) != dt_of(g, y) || numel(g, x) != numel(g, y) || !copyable(dt_of(g, x))) return CU_NONE;
        if (is(n, "", "Dropout") && !unused_output(g, n, 1)) return CU_NONE;
        /* Dropout is the identity only in inference: a training_mode input that is not a
         * constant false (the conformance suite's training_dropout cases) runs on the CPU. */
        if (is(n, "", "Dropout") && n->n_inputs > 2 && n->inputs[2] >= 0) {
            int tm = n->inputs[2];
            if (!mixrt_graph_is_fixed_const(g, tm) || numel(g, tm) != 1 ||
                mixrt_load_f64(g->values[tm].init->data, dt_of(g, tm), 0) != 0.0)
                return CU_NONE;
        }
        /* A view follows its input: on the CPU side it stays there (no copy for nothing). */
        return dev_side[x] ? CU_VIEW : CU_NONE;
    }
    if (is(n, "", "Transpose")) {
        int r = g->values[x].rank;
        int64_t p[MIXRT_MAX_RANK];
        if (r > MIXRT_CUDA_MAX_PERM_RANK || !copyable(dt_of(g, x))) return CU_NONE;
        size_t cnt = 0;
        if (mixrt_node_attr_ints(n, "perm", &cnt)) {
            if (!read_perm(n, "perm", r, p)) return CU_NONE;
        }
        return CU_TRANSPOSE;
    }
    if (is(n, "", "Split")) {
        int r = g->values[x].rank;
        int64_t axis = mixrt_node_attr_int(n, "axis", 0);
        if (axis < 0) axis += r;
        if (axis < 0 || axis >= r || r > MIXRT_CUDA_MAX_PERM_RANK || !copyable(dt_of(g, x))) return CU_NONE;
        int64_t sum = 0;
        for (int i = 0; i < n->n_outputs; i++) {
            int o = n->outputs[i];
            if (o < 0 || g->values[o].rank != r) return CU_NONE;
            sum += dim(g, o, (int)axis);
        }
        return sum == dim(g, x, (int)axis) ? CU_SPLIT : CU_NONE;
    }
    if (is(n, "", "Concat")) {
        int r = g->values[y].rank;
        int64_t axis = mixrt_node_attr_int(n, "axis", 0);
        if (axis < 0) axis += r;
        if (axis < 0 || axis >= r || r > MIXRT_CUDA_MAX_PERM_RANK || !copyable(dt_of(g, y))) return CU_NONE;
        for (int i = 0; i < n->n_inputs; i++)
            if (n->inputs[i] < 0 || dt_of(g, n->inputs[i]) != dt_of(g, y) || g->values[n->inputs[i]].rank != r)
                return CU_NONE;
        return CU_CONCAT;
    }
    if (is(n, "", "Slice") && n->opset >= 10) {
        int r = g->values[x].rank;
        if (r > MIXRT_CUDA_MAX_PERM_RANK || !copyable(dt_of(g, x))) return CU_NONE;
        for (int i = 1; i < n->n_inputs && i <= 4; i++)
            if (n->inputs[i] >= 0 && !mixrt_graph_is_fixed_const(g, n->inputs[i])) return CU_NONE;
        int steps = in_at(n, 4);
        if (steps >= 0) {
            const struct mixrt_tensor *t = g->values[steps].init;
            for (size_t i = 0; i < mixrt_tensor_numel(t); i++)
                if (mixrt_load_i64(t->data, t->dtype, i) <= 0) return CU_NONE;
        }
        return CU_SLICE;
    }
    if (is(n, "", "Resize")) return resize_geom(g, n, st) ? CU_RESIZE : CU_NONE;
    if (is(n, MIXRT_DOMAIN, "Attention")) return attention_geom(g, n, &st->att, NULL) ? CU_ATTENTION : CU_NONE;
    if (conv_geom(g, n, st)) return CU_CONV;
    if (pool_geom(g, n, &st->pool)) return CU_POOL;
    return CU_NONE;
}

/* The one reader of value v (-1 none or several; a graph output counts as a second). */
static int sole_reader(const struct mixrt_graph *g, int v, int *slot) {
    int who = -1;
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v) return -1;
    for (int j = 0; j < g->n_nodes; j++)
        for (int q = 0; q < g->nodes[j].n_inputs; q++)
            if (g->nodes[j].inputs[q] == v) {
                if (who >= 0) return -1;
                who = j, *slot = q;
            }
    return who;
}

/* A Split along the last axis whose every output is read once, by a view that only splits
 * that axis into [heads, d] (rank 4, leading axes the rows), read once as Q, K or V of a
 * CUDA Attention (GPT-2's fused QKV): the outputs become windows of the Split's input (a
 * byte offset, rows of the input's pitch), the Attention reads them at those strides and
 * the Split launches nothing (12 launches of 7.5 us at GPT-2 batch 1, 0.18 ms at batch 32
 * in notes/cuda.md calls 15-17). MIXRT_CUDA_SPLIT_VIEW=off keeps the copies. */
static mixrt_status split_views(struct mixrt_engine *e) {
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    const char *env = getenv("MIXRT_CUDA_SPLIT_VIEW");
    if (env && !strcmp(env, "off")) return MIXRT_STATUS_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *n = &g->nodes[i];
        if (c->steps[i].op != CU_SPLIT) continue;
        int x = in_at(n, 0), r = g->values[x].rank;
        int64_t axis = mixrt_node_attr_int(n, "axis", 0);
        if (axis < 0) axis += r;
        if (r < 1 || axis != r - 1 || g->values[x].init || n->n_outputs < 1) continue;
        int64_t P = dim(g, x, r - 1), rows = P > 0 ? (int64_t)(numel(g, x) / (size_t)P) : 0;
        bool ok = rows > 0;
        int views[16], atts[16];
        for (int k = 0; k < n->n_outputs && ok; k++) {
            int o = n->outputs[k], slot = -1, slot2 = -1;
            ok = k < 16 && o >= 0;
            int vw = ok ? sole_reader(g, o, &slot) : -1;
            ok = ok && vw >= 0 && c->steps[vw].op == CU_VIEW && slot == 0;
            int u = ok ? out_at(&g->nodes[vw], 0) : -1;
            ok = ok && u >= 0 && g->values[u].rank == 4 && g->nodes[vw].n_outputs == 1;
            if (!ok) break;
            int64_t w = dim(g, o, r - 1);
            ok = dim(g, u, 0) * dim(g, u, 1) == rows && dim(g, u, 2) * dim(g, u, 3) == w;
            int at = ok ? sole_reader(g, u, &slot2) : -1;
            ok = ok && at >= 0 && c->steps[at].op == CU_ATTENTION && slot2 <= 2;
            if (ok) views[k] = vw, atts[k] = at;
        }
        if (!ok) continue;
        if (!c->pitch) {
            c->pitch = mixrt_calloc(e->ctx, (size_t)(g->n_values > 0 ? g->n_values : 1), sizeof(int64_t));
            if (!c->pitch) return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        for (int k = 0; k < n->n_outputs; k++) c->pitch[out_at(&g->nodes[views[k]], 0)] = P;
        /* Each reader's geometry again, at the window strides (it held before as dense). */
        bool fits = true;
        for (int k = 0; k < n->n_outputs && fits; k++)
            fits = attention_geom(g, &g->nodes[atts[k]], &c->steps[atts[k]].att, c->pitch);
        if (!fits) { /* not expected: the strides are all the geometry reads; keep the copy */
            for (int k = 0; k < n->n_outputs; k++) c->pitch[out_at(&g->nodes[views[k]], 0)] = 0;
            for (int k = 0; k < n->n_outputs; k++) attention_geom(g, &g->nodes[atts[k]], &c->steps[atts[k]].att, c->pitch);
            continue;
        }
        c->steps[i].op = CU_SPLIT_VIEW;
        if (e->opts.verbose)
            mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (Split): no copy, the Attention reads its %d outputs as "
                      "windows of rows of %lld", n->name, n->n_outputs, (long long)P);
    }
    return MIXRT_STATUS_OK;
}

/* CPU layers that read only graph inputs, constants and each other (an attention mask
 * built from the input ids and the padding mask: Cast, GatherND, And, Where) move to the
 * front of the execution order, keeping every other relative order (still topological: a
 * moved layer's producers moved too). When every CPU layer moves, the CUDA layers form one
 * segment after them: the run does the CPU prologue, uploads its results and replays one
 * CUDA graph, instead of stopping at each CPU layer in between. Sets c->prologue. */
static mixrt_status hoist_cpu_prologue(struct mixrt_engine *e) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    int ns = g->n_nodes, nv = g->n_values, np = 0;
    bool *host_ready = mixrt_calloc(e->ctx, (size_t)(nv > 0 ? nv : 1), sizeof(bool));
    bool *moved = mixrt_calloc(e->ctx, (size_t)(ns > 0 ? ns : 1), sizeof(bool));
    int *order = mixrt_calloc(e->ctx, (size_t)(ns > 0 ? ns : 1), sizeof(int));
    if (!host_ready || !moved || !order) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (int v = 0; v < nv; v++) host_ready[v] = g->values[v].init || (g->values[v].flags & MIXRT_VALUE_GRAPH_INPUT);
    /* Views and integer casts of a graph input (and of each other) read only by CPU layers
     * (the Reshape and Cast of a padding mask before a CPU Not) stay on the CPU with them:
     * on the device their readers would copy the result back down. Decided in reverse order
     * so a chain follows its last link; moved[] marks the chain's links first. */
    for (int s = 0; s < ns; s++) {
        int i = g->order[s], x = in_at(&g->nodes[i], 0), y = out_at(&g->nodes[i], 0);
        bool cheap = c->steps[i].op == CU_VIEW || (c->steps[i].op == CU_CAST && x >= 0 && !cu_float(dt_of(g, x)));
        int px = x >= 0 ? g->values[x].producer : -1;
        moved[i] = cheap && y >= 0 && !(g->values[y].flags & MIXRT_VALUE_GRAPH_OUTPUT) &&
                   ((g->values[x].flags & MIXRT_VALUE_GRAPH_INPUT) || (px >= 0 && moved[px]));
    }
    for (int s = ns - 1; s >= 0; s--) {
        int i = g->order[s], y = out_at(&g->nodes[i], 0);
        if (!moved[i]) continue;
        moved[i] = false;
        bool cpu_only = true;
        for (int u = 0; u < ns && cpu_only; u++)
            for (int j = 0; j < g->nodes[u].n_inputs; j++)
                if (g->nodes[u].inputs[j] == y && c->steps[u].op != CU_NONE) cpu_only = false;
        if (cpu_only) c->steps[i].op = CU_NONE, c->cpu_layers++;
    }
    for (int s = 0; s < ns; s++) {
        int i = g->order[s];
        const struct mixrt_node *n = &g->nodes[i];
        if (c->steps[i].op != CU_NONE) continue;
        bool ok = true;
        for (int j = 0; j < n->n_inputs && ok; j++) ok = n->inputs[j] < 0 || host_ready[n->inputs[j]];
        for (int a = 0; a < n->n_attrs && ok; a++) ok = !n->attrs[a].g && !n->attrs[a].graphs; /* outer reads */
        if (!ok) continue;
        moved[i] = true;
        order[np++] = i;
        for (int j = 0; j < n->n_outputs; j++)
            if (n->outputs[j] >= 0) host_ready[n->outputs[j]] = true;
    }
    c->prologue = np;
    for (int s = 0; s < ns; s++)
        if (!moved[g->order[s]]) order[np++] = g->order[s];
    memcpy(g->order, order, (size_t)ns * sizeof(int));
fail:
    mixrt_free(e->ctx, host_ready, (size_t)(nv > 0 ? nv : 1) * sizeof(bool));
    mixrt_free(e->ctx, moved, (size_t)(ns > 0 ? ns : 1) * sizeof(bool));
    mixrt_free(e->ctx, order, (size_t)(ns > 0 ? ns : 1) * sizeof(int));
    return status;
}

/* v is a fixed scalar constant (any float dtype): its value into *f. */
static bool const_scalar(const struct mixrt_graph *g, int v, double *f) {
    if (v < 0 || !mixrt_graph_is_fixed_const(g, v) || numel(g, v) != 1 || !mixrt_dtype_is_float(dt_of(g, v)))
        return false;
    *f = mixrt_load_f64(g->values[v].init->data, dt_of(g, v), 0);
    return true;
}

/* c is a fixed bool constant [1, .., 1, sq, sk] with c[i][j] = (j <= i + sk - sq). (An
 * all-true constant never gets here: the graph passes drop that And already.) */
static bool causal_const(const struct mixrt_graph *g, int c, int64_t sq, int64_t sk) {
    if (c < 0 || !mixrt_graph_is_fixed_const(g, c) || dt_of(g, c) != MIXRT_DTYPE_BOOL) return false;
    int r = g->values[c].rank;
    if (r < 2 || dim(g, c, r - 2) != sq || dim(g, c, r - 1) != sk) return false;
    for (int d = 0; d < r - 2; d++)
        if (dim(g, c, d) != 1) return false;
    const uint8_t *v = g->values[c].init->data;
    for (int64_t i = 0; i < sq; i++)
        for (int64_t j = 0; j < sk; j++)
            if ((v[i * sk + j] != 0) != (j <= i + sk - sq)) return false;
    return true;
}

/* torch's causal padding masks: Where(And(C, P), 0, fill) added to the scores, C the causal
 * constant [1, 1, sq, sk], P the padding row [B or 1, H or 1, 1, sk]: the Where runs as
 * Where(P, 0, fill) into the first elements of its output, and each Attention reading it
 * takes that row (row-invariant: one mask row per key tile in the flash kernel, not 128;
 * 2 MB at GPT-2 batch 32 no longer read per score) with causal_add: keys past the diagonal
 * score s + fill, the others s + row - the same f32 sums as s + Where(C And P, 0, fill).
 * The And then has no reader that uses it (it still runs). MIXRT_CUDA_MASK_ROWS=off keeps
 * the full mask. */
static void mask_rows(struct mixrt_engine *e) {
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    const char *env = getenv("MIXRT_CUDA_MASK_ROWS");
    if (env && !strcmp(env, "off")) return;
    for (int w = 0; w < g->n_nodes; w++) {
        const struct mixrt_node *wn = &g->nodes[w];
        int m = out_at(wn, 0), cond = in_at(wn, 0);
        double z, fill;
        if (c->steps[w].op != CU_SELECT || !is(wn, "", "Where") || m < 0 || cond < 0 ||
            !const_scalar(g, in_at(wn, 1), &z) || z != 0.0 || !const_scalar(g, in_at(wn, 2), &fill) ||
            !cu_float(dt_of(g, m)) || (g->values[m].flags & MIXRT_VALUE_GRAPH_OUTPUT))
            continue;
        int an = g->values[cond].producer, slot = -1;
        if (an < 0 || c->steps[an].op != CU_SELECT || !is(&g->nodes[an], "", "And") || sole_reader(g, cond, &slot) != w)
            continue;
        /* every reader of m: a CUDA Attention taking it as its mask, one geometry */
        int n_att = 0, row = -1;
        long long b = 0, h = 0, sq = 0, sk = 0;
        bool ok = true;
        for (int i = 0; i < g->n_nodes && ok; i++)
            for (int q = 0; q < g->nodes[i].n_inputs && ok; q++) {
                if (g->nodes[i].inputs[q] != m) continue;
                const struct mixrt_cuda_attention_args *a = &c->steps[i].att;
                ok = c->steps[i].op == CU_ATTENTION && q == 3 && !a->causal &&
                     (n_att == 0 || (a->b == b && a->h == h && a->sq == sq && a->sk == sk));
                b = a->b, h = a->h, sq = a->sq, sk = a->sk, n_att++;
            }
        if (!ok || n_att == 0) continue;
        for (int k = 0; k < 2 && row < 0; k++) {
            int cv = in_at(&g->nodes[an], k), pv = in_at(&g->nodes[an], 1 - k);
            int r = pv >= 0 ? g->values[pv].rank : -1;
            int pp = pv >= 0 ? g->values[pv].producer : -1; /* made on the device: no upload to add */
            if (!causal_const(g, cv, sq, sk) || r < 1 || r > 4 || dim(g, pv, r - 1) != sk || (r >= 2 && dim(g, pv, r - 2) != 1) || pp < 0 ||
                c->steps[pp].op == CU_NONE)
                continue;
            int64_t pd[4] = {1, 1, 1, sk};
            for (int d = 0; d < r; d++) pd[4 - r + d] = dim(g, pv, d);
            if ((pd[0] != 1 && pd[0] != b) || (pd[1] != 1 && pd[1] != h)) continue;
            row = pv;
            memcpy(c->steps[w].row_dims, pd, sizeof(pd));
        }
        if (row < 0) continue;
        c->steps[w].row_in = row;
        c->mask_rows++, c->mask_rows_att += n_att;
        const int64_t *pd = c->steps[w].row_dims;
        for (int i = 0; i < g->n_nodes; i++)
            for (int q = 0; q < g->nodes[i].n_inputs; q++) {
                if (g->nodes[i].inputs[q] != m) continue;
                struct mixrt_cuda_attention_args *a = &c->steps[i].att;
                a->mask_strides[0] = pd[0] == 1 ? 0 : pd[1] * sk;
                a->mask_strides[1] = pd[1] == 1 ? 0 : sk;
                a->mask_strides[2] = 0, a->mask_strides[3] = 1;
                a->causal = 1, a->causal_add = 1, a->fill = (float)fill;
            }
        if (e->opts.verbose)
            mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (Where): the mask of %d Attention layer%s as its padding row "
                      "[%lld, %lld, 1, %lld] and the causal limit", wn->name, n_att, n_att > 1 ? "s" : "",
                      (long long)pd[0], (long long)pd[1], (long long)pd[3]);
    }
}

mixrt_status mixrt_engine_cuda_assign(struct mixrt_engine *e) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    bool *dev_side = NULL;
    c->n_nodes = g->n_nodes, c->n_values = g->n_values;
    size_t nn = (size_t)(g->n_nodes > 0 ? g->n_nodes : 1), nv = (size_t)(g->n_values > 0 ? g->n_values : 1);
    c->steps = mixrt_calloc(e->ctx, nn, sizeof(*c->steps));
    dev_side = mixrt_calloc(e->ctx, nv, sizeof(bool));
    if (!c->steps || !dev_side) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (int i = 0; i < g->n_nodes; i++) c->steps[i].row_in = -1;
    for (int v = 0; v < g->n_values; v++)
        dev_side[v] = g->values[v].init != NULL || (g->values[v].flags & MIXRT_VALUE_GRAPH_INPUT);
    char cpu_ops[512] = "";
    size_t used = 0;
    for (int s = 0; s < g->n_nodes; s++) {
        int i = g->order[s];
        const struct mixrt_node *n = &g->nodes[i];
        c->steps[i].op = classify(g, n, dev_side, &c->steps[i]);
        /* cuDNN decides whether it takes the conv (and whether it loads at all): a refusal
         * leaves the layer on the CPU. */
        if (c->steps[i].op == CU_CONV && !c->steps[i].patch && !c->steps[i].im2col && !c->steps[i].dw && c->t->conv_create(c->dev, &c->steps[i].cd, &c->steps[i].conv) != MIXRT_STATUS_OK) {
            if (e->opts.verbose)
                mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): runs on the CPU: %s", n->name, n->op_type,
                          mixrt_context_last_error(e->ctx));
            mixrt_context_clear_error(e->ctx);
            c->steps[i].op = CU_NONE;
        }
        if (c->steps[i].op == CU_CONV && c->steps[i].conv && e->opts.verbose)
            mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): cuDNN %s plan (%.3f ms in its timing)", n->name,
                      n->op_type, c->t->conv_kind(c->steps[i].conv), c->t->conv_time_ms(c->steps[i].conv));
        if (c->steps[i].op == CU_CONV && c->steps[i].cd.d > 0 && c->steps[i].conv) conv3d_layout(e, &c->steps[i], n);
        for (int j = 0; j < n->n_outputs; j++)
            if (n->outputs[j] >= 0) dev_side[n->outputs[j]] = c->steps[i].op != CU_NONE;
        if (c->steps[i].op == CU_GEMM && c->steps[i].gg.gelu_approx) {
            c->gelu_approx++;
            if (e->opts.verbose)
                mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): erf GELU as cuBLASLt's tanh-form epilogue (16-bit "
                          "output; MIXRT_CUDA_GELU=exact keeps erf)", n->name, n->op_type);
        }
        if (c->steps[i].op == CU_NONE) {
            c->cpu_layers++;
            char item[96];
            snprintf(item, sizeof(item), "%s%s", n->domain[0] ? "com.mixrt " : "", n->op_type);
            if (!strstr(cpu_ops, item) && used + strlen(item) + 3 < sizeof(cpu_ops))
                used += (size_t)snprintf(cpu_ops + used, sizeof(cpu_ops) - used, "%s%s", used ? ", " : "", item);
            if (e->opts.verbose)
                mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): runs on the CPU (no CUDA kernel for its op, dtypes "
                          "or shapes)", n->name, n->op_type);
        }
    }
    conv3d_chains(e);
    MIXRT_TRY(split_views(e));
    mask_rows(e);
    MIXRT_TRY(hoist_cpu_prologue(e));
    if (c->cpu_layers && e->opts.require_full)
        MIXRT_TRY(mixrt_error(e->ctx, MIXRT_STATUS_UNSUPPORTED, "--require-full: %d layer%s would run on the CPU instead "
                              "of CUDA (ops: %s); drop --require-full to allow the CPU fallback", c->cpu_layers,
                              c->cpu_layers > 1 ? "s" : "", cpu_ops));
    /* Segments: maximal runs of one backend in execution order. */
    int prev = -1;
    for (int s = 0; s < g->n_nodes; s++) {
        int on = c->steps[g->order[s]].op != CU_NONE;
        if (on != prev) {
            c->segments++;
            c->cuda_segments += on;
        }
        prev = on;
    }
fail:
    mixrt_free(e->ctx, dev_side, nv * sizeof(bool));
    return status;
}

bool mixrt_engine_cuda_claims(const struct mixrt_engine *e, int node) {
    return e && e->cuda && e->cuda->steps && node >= 0 && node < e->cuda->n_nodes && e->cuda->steps[node].op != CU_NONE;
}

/* ---- memory plan and transfers ------------------------------------------------------- */

static void *dptr(const struct mixrt_engine_cuda *c, int v) {
    size_t bo = c->boff ? c->boff[v] : 0;
    v = c->root[v];
    if (c->wptr[v]) return (uint8_t *)c->wptr[v] + bo;
    return c->off[v] >= 0 ? c->arena + c->off[v] + bo : NULL;
}

static mixrt_status add_xfer(struct mixrt_engine *e, int *cap, int step, int value, bool h2d) {
    struct mixrt_engine_cuda *c = e->cuda;
    if (c->n_xfers == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        struct xfer *x = mixrt_calloc(e->ctx, (size_t)nc, sizeof(*x));
        if (!x) return MIXRT_STATUS_OUT_OF_MEMORY;
        if (c->n_xfers) memcpy(x, c->xfers, (size_t)c->n_xfers * sizeof(*x));
        mixrt_free(e->ctx, c->xfers, (size_t)*cap * sizeof(*x));
        c->xfers = x;
        *cap = nc;
    }
    c->xfers[c->n_xfers++] = (struct xfer){step, value, h2d};
    return MIXRT_STATUS_OK;
}

struct slot {
    int v;
    size_t bytes;
    int first, last;
};

static int by_size_desc(const void *a, const void *b) {
    const struct slot *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : x->v - y->v;
}

/* Offsets for device values: best fit by size, conflicts only between overlapping
 * lifetimes [first, last] (steps; inputs and outputs of one step overlap). */
static mixrt_status place(struct mixrt_engine *e, struct slot *sl, int n) {
    struct mixrt_engine_cuda *c = e->cuda;
    qsort(sl, (size_t)n, sizeof(*sl), by_size_desc);
    size_t top = 0;
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < i; j++) {
                if (sl[j].last < sl[i].first || sl[i].last < sl[j].first) continue;
                size_t o = (size_t)c->off[sl[j].v];
                if (off < o + sl[j].bytes && o < off + sl[i].bytes) {
                    off = (o + sl[j].bytes + CU_ALIGN - 1) & ~(size_t)(CU_ALIGN - 1);
                    moved = true;
                }
            }
        }
        c->off[sl[i].v] = (int64_t)off;
        if (off + sl[i].bytes > top) top = off + sl[i].bytes;
    }
    c->arena_bytes = top;
    return MIXRT_STATUS_OK;
}


/* Calls fn(g, v, arg) for each value v of main graph g that a subgraph of node n (at any
 * depth) reads by name as an outer-scope value (a Loop body reading the graph's inputs). */
static mixrt_status each_outer_read(const struct mixrt_graph *g, const struct mixrt_node *n,
                                    mixrt_status (*fn)(const struct mixrt_graph *, int, void *), void *arg) {
    mixrt_status status = MIXRT_STATUS_OK;
    for (int a = 0; a < n->n_attrs && status == MIXRT_STATUS_OK; a++) {
        const struct mixrt_attr *at = &n->attrs[a];
        size_t ng = at->g ? 1 : at->graphs ? at->n : 0;
        for (size_t q = 0; q < ng && status == MIXRT_STATUS_OK; q++) {
            const struct mixrt_graph *sub = at->g ? at->g : at->graphs[q];
            for (int w = 0; w < sub->n_values && status == MIXRT_STATUS_OK; w++) {
                int v = (sub->values[w].flags & MIXRT_VALUE_OUTER) ? mixrt_graph_find_value(g, sub->values[w].name) : -1;
                if (v >= 0) status = fn(g, v, arg);
            }
            for (int m = 0; m < sub->n_nodes && status == MIXRT_STATUS_OK; m++)
                status = each_outer_read(g, &sub->nodes[m], fn, arg);
        }
    }
    return status;
}

/* The walk's state for a CPU layer's outer-scope reads (see the walk in prepare). */
struct outer_walk {
    struct mixrt_engine *e;
    int step;
    int *where, *last;
};
static mixrt_status outer_to_host(const struct mixrt_graph *g, int v, void *arg) {
    struct outer_walk *w = arg;
    struct mixrt_engine_cuda *c = w->e->cuda;
    mixrt_status status = MIXRT_STATUS_OK;
    if (w->where[v] == 1) {
        status = add_xfer(w->e, &c->xfer_cap, w->step, v, false);
        w->where[v] = 2;
        c->d2h_bytes += vbytes(g, v);
        int r = c->root[v];
        if (w->last[r] < w->step) w->last[r] = w->step;
    }
    if (c->host_last[v] < w->step) c->host_last[v] = w->step;
    return status;
}

/* A single product of a constant weight with nothing after it (no bias, residual, activation
 * or epilogue; A not transposed; Y in A/B's dtype): what the padded and row-group plans take. */
static bool plain_const_product(const struct mixrt_engine_cuda *c, const struct gemm_geom *gg) {
    const struct mixrt_cuda_gemm_desc *d = &gg->desc;
    return d->batch == 1 && gg->bias < 0 && gg->z < 0 && gg->post_act < 0 && !d->trans_a &&
           d->y_dtype == d->ab_dtype && d->epilogue == MIXRT_CUDA_EPILOGUE_NONE && gg->b >= 0 && c->wptr[gg->b];
}

/* The CUDA Cast that is value y's only reader (y not a graph output), or -1. */
static int sole_cast_reader(const struct mixrt_engine_cuda *c, const struct mixrt_graph *g, int y) {
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == y) return -1;
    int users = 0, user = -1;
    for (int j = 0; j < g->n_nodes; j++)
        for (int q = 0; q < g->nodes[j].n_inputs; q++)
            if (g->nodes[j].inputs[q] == y) users++, user = j;
    return users == 1 && c->steps[user].op == CU_CAST && in_at(&g->nodes[user], 0) == y ? user : -1;
}

/* Pads a product's N to a multiple of 64 when its output rows are not 16-byte multiples
 * (see cu_step.wpad): a constant weight, one product (batch 1, no bias, residual or
 * activation after it, A not transposed) of at least 64K outputs. MIXRT_CUDA_GEMM_PAD=off
 * keeps the plain plan. */
static mixrt_status gemm_pad_plan(struct mixrt_engine *e, int i) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_cuda_table *t = c->t;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    struct cu_step *st = &c->steps[i];
    struct gemm_geom *gg = &st->gg;
    struct mixrt_cuda_gemm_desc *d = &gg->desc;
    const char *env = getenv("MIXRT_CUDA_GEMM_PAD");
    size_t es = mixrt_dtype_size(d->y_dtype), ea = mixrt_dtype_size(d->ab_dtype);
    int y = g->nodes[i].outputs[0];
    if ((env && !strcmp(env, "off")) || !plain_const_product(c, gg) || ((size_t)d->n * es) % 16 == 0 ||
        d->m * d->n < (1 << 16))
        return MIXRT_STATUS_OK;
    int64_t n = d->n, np = (n + 63) / 64 * 64, k = d->k;
    st->wpad_bytes = (size_t)(k * np) * ea;
    MIXRT_TRY(t->alloc(c->dev, st->wpad_bytes, g->values[gg->b].name, &st->wpad));
    MIXRT_TRY(t->memset(c->dev, st->wpad, 0, st->wpad_bytes));
    if (d->trans_b) { /* W [N, K]: zero rows after the real ones */
        MIXRT_TRY(t->copy_d2d(c->dev, st->wpad, c->wptr[gg->b], (size_t)(n * k) * ea));
    } else { /* W [K, N]: rows of np */
        const int64_t od[2] = {k, n}, is_[2] = {n, 1}, os[2] = {np, 1};
        MIXRT_TRY(t->strided_copy(c->dev, ea, c->wptr[gg->b], st->wpad, 2, od, is_, os));
    }
    st->ypad_bytes = (size_t)(d->m * np) * es;
    MIXRT_TRY(t->alloc(c->dev, st->ypad_bytes, g->nodes[i].name, &st->ypad));
    st->pad_ld = np;
    d->n = np;
    /* The sole consumer a CUDA Cast of this very value (not a graph output): it reads ypad. */
    int user = sole_cast_reader(c, g, y);
    if (user >= 0 && cu_float(dt_of(g, out_at(&g->nodes[user], 0)))) {
        st->pad_fused = true;
        c->steps[user].cast_src = st->ypad;
        c->steps[user].cast_ld = np;
    }
    if (e->opts.verbose)
        mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): product planned with N %lld padded to %lld%s",
                  g->nodes[i].name, g->nodes[i].op_type, (long long)n, (long long)np,
                  st->pad_fused ? "; the Cast after it reads the padded rows" : "");
fail:
    return status;
}
/* A row-grouped product's W as [N, K] rows and the output it writes (its own, or the Cast's). */
static const void *rowgroup_w(struct mixrt_engine_cuda *c, const struct cu_step *st) {
    return st->wt ? st->wt : dptr(c, st->gg.b);
}
static void *rowgroup_y(struct mixrt_engine_cuda *c, const struct mixrt_graph *g, const struct cu_step *st, int i) {
    return dptr(c, st->rg_cast >= 0 ? out_at(&g->nodes[st->rg_cast], 0) : g->nodes[i].outputs[0]);
}

/* Row groups (see cu_step.rg) for a product gemm_pad_plan would pad, when each group has at
 * least 256 rows (W is read once per group: at GPT-2 b1's 16 rows per group the padded
 * product wins) or MIXRT_CUDA_GEMM_ROWGROUPS=on; =off never. The groups' N is a multiple of
 * 8: on the H200 cuBLASLt ran 512 x 50250 x 768 at 242 TFLOP/s and 512 x 50256 x 768 (Y
 * 16-byte aligned) at 642 (notes/cuda.md, session 16). s: the step's place in the order. */
static mixrt_status gemm_rowgroup_plan(struct mixrt_engine *e, int i, int s) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_cuda_table *t = c->t;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    struct cu_step *st = &c->steps[i];
    struct gemm_geom *gg = &st->gg;
    struct mixrt_cuda_gemm_desc *d = &gg->desc;
    const char *env = getenv("MIXRT_CUDA_GEMM_ROWGROUPS");
    bool force = env && !strcmp(env, "on");
    st->rg_cast = -1;
    if ((env && !strcmp(env, "off")) || !plain_const_product(c, gg)) return MIXRT_STATUS_OK;
    int y = g->nodes[i].outputs[0];
    mixrt_dtype td = d->y_dtype;
    /* The sole reader a Cast to f32 right after this step, y not a graph output: f32 rows. */
    int user = sole_cast_reader(c, g, y);
    if (user >= 0 && s + 1 < g->n_nodes && g->order[s + 1] == user &&
        dt_of(g, out_at(&g->nodes[user], 0)) == MIXRT_DTYPE_F32)
        td = MIXRT_DTYPE_F32;
    size_t ea = mixrt_dtype_size(d->ab_dtype), ey = mixrt_dtype_size(td);
    int64_t m = d->m, n = d->n, k = d->k, v = 16 / (int64_t)ey, tc = (v - n % v) % v;
    if (((size_t)n * ey) % 16 == 0 || ((size_t)k * ea) % 16 || n < 128) return MIXRT_STATUS_OK;
    int groups = 1;
    while (((size_t)(groups * n) * ey) % 16) groups *= 2;
    if (m % groups || (!force && (m / groups < 256 || m * n < (1 << 16)))) return MIXRT_STATUS_OK;
    if (!d->trans_b) { /* W [K, N] -> wt [N, K] */
        st->wt_bytes = (size_t)(n * k) * ea;
        MIXRT_TRY(t->alloc(c->dev, st->wt_bytes, g->values[gg->b].name, &st->wt));
        const int64_t od[2] = {n, k}, is_[2] = {1, n}, os[2] = {k, 1};
        MIXRT_TRY(t->strided_copy(c->dev, ea, c->wptr[gg->b], st->wt, 2, od, is_, os));
    }
    st->rg = groups;
    c->rowgroups++;
    memset(&st->edge, 0, sizeof st->edge);
    int64_t nc = (n - (groups - 1) * tc) / 8 * 8, left = (groups - 1) * tc, ld_e = (left + n - nc + 7) / 8 * 8;
    st->edge.rows = m, st->edge.n = n, st->edge.nc = nc, st->edge.left = left, st->edge.ld_e = ld_e;
    st->edge.groups = groups;
    for (int j = 0; j < groups; j++) st->edge.c0[j] = (int)(j * tc); /* (j n + j tc) ey: 16-byte multiples */
    /* The edge product: every row with W's rows [0, left) and [nc, n) (zero rows to ld_e). */
    st->we_bytes = (size_t)(ld_e * k) * ea, st->escr_bytes = (size_t)(m * ld_e) * ey;
    MIXRT_TRY(t->alloc(c->dev, st->we_bytes, g->values[gg->b].name, &st->we));
    MIXRT_TRY(t->alloc(c->dev, st->escr_bytes, g->nodes[i].name, &st->escr));
    MIXRT_TRY(t->memset(c->dev, st->we, 0, st->we_bytes));
    const char *wrows = rowgroup_w(c, st);
    if (left) MIXRT_TRY(t->copy_d2d(c->dev, st->we, wrows, (size_t)(left * k) * ea));
    MIXRT_TRY(t->copy_d2d(c->dev, (char *)st->we + (size_t)(left * k) * ea, wrows + (size_t)(nc * k) * ea,
                          (size_t)((n - nc) * k) * ea));
    struct mixrt_cuda_gemm_desc ed = {.ab_dtype = d->ab_dtype, .y_dtype = td, .m = m, .n = ld_e, .k = k,
                                      .trans_b = true, .batch = 1, .alpha = d->alpha, .allow_tf32 = d->allow_tf32,
                                      .name = g->nodes[i].name};
    MIXRT_TRY(t->gemm_create(c->dev, &ed, &st->egemm));
    MIXRT_TRY(t->gemm_tune(st->egemm, dptr(c, gg->a), st->we, NULL, st->escr, 10));
    uint32_t al = 256;
    while (al > 16 && ((size_t)k * ea) % al) al >>= 1;
    d->m = m / groups, d->n = st->edge.nc, d->trans_b = true, d->lda = groups * k, d->ldy = groups * n;
    d->batch = groups, d->stride_a = k, d->stride_b = tc * k, d->stride_y = n + tc;
    d->y_dtype = td, d->align_a = al, d->align_b = al, d->align_y = 16;
    if (td != dt_of(g, y)) {
        st->rg_cast = user;
        c->steps[user].cast_by_gemm = true;
    }
    if (e->opts.verbose)
        mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): product of %lld rows in %d row groups written in place "
                  "(one strided batch; %lld of %lld columns each, the rest by a %lld-column product)%s", g->nodes[i].name,
                  g->nodes[i].op_type, (long long)m, groups, (long long)st->edge.nc, (long long)n, (long long)ld_e,
                  st->rg_cast >= 0 ? "; f32 rows for the Cast after it" : "");
fail:
    return status;
}

static mixrt_status run_cuda_step(struct mixrt_engine *e, int node);

mixrt_status mixrt_engine_cuda_prepare(struct mixrt_engine *e) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_cuda_table *t = c->t;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    int nv = g->n_values, ns = g->n_nodes;
    size_t nvz = (size_t)(nv > 0 ? nv : 1);
    int *first = NULL, *last = NULL, *where = NULL;
    struct slot *sl = NULL;
    c->root = mixrt_calloc(e->ctx, nvz, sizeof(int));
    c->boff = mixrt_calloc(e->ctx, nvz, sizeof(size_t));
    c->off = mixrt_calloc(e->ctx, nvz, sizeof(int64_t));
    c->wptr = mixrt_calloc(e->ctx, nvz, sizeof(void *));
    c->wbytes = mixrt_calloc(e->ctx, nvz, sizeof(size_t));
    c->host_last = mixrt_calloc(e->ctx, nvz, sizeof(int));
    first = mixrt_calloc(e->ctx, nvz, sizeof(int));
    last = mixrt_calloc(e->ctx, nvz, sizeof(int));
    where = mixrt_calloc(e->ctx, nvz, sizeof(int)); /* 0 host only, 1 device only, 2 both */
    sl = mixrt_calloc(e->ctx, nvz, sizeof(*sl));
    if (!c->root || !c->boff || !c->off || !c->wptr || !c->wbytes || !c->host_last || !first || !last || !where || !sl)
        MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (int v = 0; v < nv; v++) {
        c->root[v] = v, c->off[v] = -1, first[v] = -1, last[v] = -1, c->host_last[v] = -1;
        where[v] = 0;
    }
    /* Weights: constants a CUDA layer reads, uploaded once in their planned dtype. */
    for (int s = 0; s < ns; s++) {
        const struct mixrt_node *n = &g->nodes[g->order[s]];
        if (c->steps[g->order[s]].op == CU_NONE) continue;
        for (int j = 0; j < n->n_inputs; j++) {
            int v = n->inputs[j];
            if (v < 0 || !mixrt_graph_is_fixed_const(g, v) || c->wptr[v]) continue;
            const struct mixrt_tensor *w = g->values[v].init;
            size_t nb = w->nbytes ? w->nbytes : 1;
            MIXRT_TRY(t->alloc(c->dev, nb, g->values[v].name, &c->wptr[v]));
            c->wbytes[v] = nb;
            if (w->nbytes) MIXRT_TRY(t->copy_h2d(c->dev, c->wptr[v], w->data, w->nbytes));
            c->weight_bytes += nb;
            where[v] = 2;
        }
    }
    /* Channels-last convs read W as KRSC: a reordered device copy of the OIHW weight. */
    for (int s = 0; s < ns; s++) {
        struct cu_step *st = &c->steps[g->order[s]];
        if (st->op == CU_CONV && st->cl3) { /* KCTRS -> KTRSC; X and Y through the shared scratch */
            int w = g->nodes[g->order[s]].inputs[1];
            const struct mixrt_cuda_conv_desc *cd = &st->cd;
            int64_t cg = cd->c / cd->groups, trs = cd->t * cd->r * cd->s;
            int64_t od5[5] = {cd->k, cd->t, cd->r, cd->s, cg}, is5[5] = {cg * trs, cd->r * cd->s, cd->s, 1, trs};
            size_t es = mixrt_dtype_size(dt_of(g, w));
            st->wperm_bytes = vbytes(g, w);
            MIXRT_TRY(t->alloc(c->dev, st->wperm_bytes, g->values[w].name, &st->wperm));
            MIXRT_TRY(t->strided_copy(c->dev, es, c->wptr[w], st->wperm, 5, od5, is5, NULL));
            size_t need = (size_t)(cd->n * cd->c * cd->d * cd->h * cd->w + cd->n * cd->k * cd->od * cd->oh * cd->ow) * es;
            if (need > c->cl3_scratch_bytes) {
                if (c->cl3_scratch) t->free(c->dev, c->cl3_scratch, c->cl3_scratch_bytes);
                c->cl3_scratch = NULL, c->cl3_scratch_bytes = 0;
                MIXRT_TRY(t->alloc(c->dev, need, "3-D conv scratch", &c->cl3_scratch));
                c->cl3_scratch_bytes = need;
            }
            continue;
        }
        if (st->op != CU_CONV || !st->cd.nhwc) continue;
        int w = g->nodes[g->order[s]].inputs[1];
        int64_t k = st->cd.k, cg = st->cd.c / st->cd.groups, r = st->cd.r, sw = st->cd.s;
        int64_t od[4] = {k, r, sw, cg}, is_[4] = {cg * r * sw, sw, 1, r * sw};
        size_t es = mixrt_dtype_size(dt_of(g, w));
        if (st->dw) { /* [R, S, C]: a pixel's taps read 16 bytes of channels at a time */
            const int64_t od3[3] = {r, sw, k}, is3[3] = {sw, 1, r * sw};
            st->wperm_bytes = vbytes(g, w);
            MIXRT_TRY(t->alloc(c->dev, st->wperm_bytes, g->values[w].name, &st->wperm));
            MIXRT_TRY(t->strided_copy(c->dev, es, c->wptr[w], st->wperm, 3, od3, is3, NULL));
            continue;
        }
        /* im2col convs: rows of ldc, zero columns after the r s c real ones. */
        int64_t os[4] = {st->im2.ldc, sw * cg, cg, 1};
        st->wperm_bytes = st->im2col ? (size_t)(k * st->im2.ldc) * es : vbytes(g, w);
        MIXRT_TRY(t->alloc(c->dev, st->wperm_bytes, g->values[w].name, &st->wperm));
        if (st->im2col) MIXRT_TRY(t->memset(c->dev, st->wperm, 0, st->wperm_bytes));
        MIXRT_TRY(t->strided_copy(c->dev, es, c->wptr[w], st->wperm, 4, od, is_, st->im2col ? os : NULL));
    }
    for (int s = 0; s < ns; s++)
        if (c->steps[g->order[s]].op == CU_RESIZE)
            MIXRT_TRY(resize_taps(c, &g->nodes[g->order[s]], &c->steps[g->order[s]]));
        else if (c->steps[g->order[s]].op == CU_GATHER && c->steps[g->order[s]].nd)
            MIXRT_TRY(gathernd_table(c, g, &g->nodes[g->order[s]], &c->steps[g->order[s]]));
    MIXRT_TRY(t->device_sync(c->dev)); /* the host copies of the weights may go now */
    /* Walk the order: where each value is, the copies needed, device lifetimes per root. */
    for (int v = 0; v < nv; v++)
        if (g->values[v].init && !c->wptr[v]) where[v] = 0;
    for (int s = 0; s < ns; s++) {
        int i = g->order[s];
        const struct mixrt_node *n = &g->nodes[i];
        bool on = c->steps[i].op != CU_NONE;
        for (int j = 0; j < n->n_inputs; j++) {
            int v = n->inputs[j];
            if (v < 0) continue;
            if (on) {
                if (where[v] == 0) {
                    /* A host value goes up before this step; graph inputs at the run's start
                     * and the CPU prologue's results right after it, so a run whose CPU
                     * layers are all in the prologue can copy them all before replaying
                     * its graph. */
                    int p = g->values[v].producer;
                    bool pro = p >= 0 && c->cpu_layers == c->prologue && s >= c->prologue;
                    int at = (g->values[v].flags & MIXRT_VALUE_GRAPH_INPUT) ? 0 : pro ? c->prologue : s;
                    MIXRT_TRY(add_xfer(e, &c->xfer_cap, at, v, true));
                    where[v] = 2;
                    c->h2d_bytes += vbytes(g, v);
                    if (first[v] < 0) first[v] = at;
                    if (c->host_last[v] < s) c->host_last[v] = s;
                }
                int r = c->root[v];
                if (last[r] < s) last[r] = s;
            } else {
                if (where[v] == 1) {
                    MIXRT_TRY(add_xfer(e, &c->xfer_cap, s, v, false));
                    where[v] = 2;
                    c->d2h_bytes += vbytes(g, v);
                    int r = c->root[v];
                    if (last[r] < s) last[r] = s;
                }
                if (c->host_last[v] < s) c->host_last[v] = s;
            }
        }
        if (on && c->steps[i].row_in >= 0) { /* mask_rows: the Where reads the padding row */
            int r = c->root[c->steps[i].row_in];
            if (last[r] < s) last[r] = s;
        }
        if (!on) { /* what its subgraphs read by name comes down to the host too */
            struct outer_walk ow = {e, s, where, last};
            MIXRT_TRY(each_outer_read(g, n, outer_to_host, &ow));
        }
        for (int j = 0; j < n->n_outputs; j++) {
            int v = n->outputs[j];
            if (v < 0) continue;
            where[v] = on ? 1 : 0;
            if (!on) continue;
            if (c->steps[i].op == CU_VIEW && j == 0) {
                c->root[v] = c->root[n->inputs[0]];
                c->boff[v] = c->boff[n->inputs[0]];
            } else if (c->steps[i].op == CU_SPLIT_VIEW) { /* output j: columns from the widths before it */
                int x = n->inputs[0];
                int64_t col = 0;
                for (int q = 0; q < j; q++) col += dim(g, n->outputs[q], g->values[x].rank - 1);
                c->root[v] = c->root[x];
                c->boff[v] = c->boff[x] + (size_t)col * mixrt_dtype_size(dt_of(g, x));
            } else {
                first[v] = s;
                if (last[v] < s) last[v] = s;
            }
        }
    }
    /* A Cast right after a product may have its output written by the product (row groups,
     * decided once the arena is placed): it lives from the product's step on, so nothing the
     * product reads shares its bytes. */
    for (int s = 0; s + 1 < ns; s++) {
        int i = g->order[s], u = g->order[s + 1], y = out_at(&g->nodes[i], 0), v = out_at(&g->nodes[u], 0);
        if (c->steps[i].op == CU_GEMM && c->steps[u].op == CU_CAST && y >= 0 && v >= 0 && in_at(&g->nodes[u], 0) == y &&
            c->root[v] == v && first[v] == s + 1)
            first[v] = s;
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int v = g->outputs[k];
        c->host_last[v] = ns;
        if (where[v] == 1) {
            MIXRT_TRY(add_xfer(e, &c->xfer_cap, ns, v, false));
            c->d2h_bytes += vbytes(g, v);
            int r = c->root[v];
            last[r] = ns;
        }
    }
    /* By step (stable: insertion order within a step), as the run consumes them. */
    for (int x = 1; x < c->n_xfers; x++) {
        struct xfer cur = c->xfers[x];
        int y = x - 1;
        for (; y >= 0 && c->xfers[y].step > cur.step; y--) c->xfers[y + 1] = c->xfers[y];
        c->xfers[y + 1] = cur;
    }
    for (int x = 0; x < c->n_xfers; x++) {
        if (c->xfers[x].h2d) c->h2d++;
        else c->d2h++;
    }
    int n_sl = 0;
    for (int v = 0; v < nv; v++) {
        if (c->root[v] != v || first[v] < 0 || c->wptr[v]) continue;
        sl[n_sl++] = (struct slot){v, (vbytes(g, v) + CU_ALIGN - 1) & ~(size_t)(CU_ALIGN - 1), first[v],
                                   last[v] < first[v] ? first[v] : last[v]};
        if (sl[n_sl - 1].bytes == 0) sl[n_sl - 1].bytes = CU_ALIGN;
    }
    MIXRT_TRY(place(e, sl, n_sl));
    if (c->arena_bytes) {
        MIXRT_TRY(t->arena_reserve(c->dev, c->arena_bytes));
        void *base = NULL;
        MIXRT_TRY(t->arena_at(c->dev, 0, c->arena_bytes, &base));
        c->arena = base;
        MIXRT_TRY(t->memset(c->dev, base, 0, c->arena_bytes));
    }
    /* GEMM plans, tuned on the planned buffers. */
    for (int s = 0; s < ns; s++) {
        int i = g->order[s];
        struct cu_step *st = &c->steps[i];
        if (st->op != CU_GEMM) continue;
        struct gemm_geom *gg = &st->gg;
        /* A residual enters the product as cuBLASLt's C (beta = 1) unless an activation
         * must follow the add (the epilogue order is then act(AB + bias) + C: wrong). */
        const char *genv = getenv("MIXRT_CUDA_GEMM_C");
        gg->desc.accumulate = gg->z >= 0 && gg->post_act < 0 && !(genv && !strcmp(genv, "off"));
        MIXRT_TRY(gemm_rowgroup_plan(e, i, s));
        if (!st->rg) MIXRT_TRY(gemm_pad_plan(e, i));
        MIXRT_TRY(t->gemm_create(c->dev, &gg->desc, &st->gemm));
        if (gg->desc.accumulate) MIXRT_TRY(t->gemm_set_c(st->gemm, dptr(c, gg->z)));
        if (st->rg) {
            MIXRT_TRY(t->gemm_tune(st->gemm, dptr(c, gg->a), rowgroup_w(c, st), NULL, rowgroup_y(c, g, st, i), 10));
        } else {
            MIXRT_TRY(t->gemm_tune(st->gemm, dptr(c, gg->a), st->wpad ? st->wpad : dptr(c, gg->b),
                                   gg->bias >= 0 ? dptr(c, gg->bias) : NULL,
                                   st->ypad ? st->ypad : dptr(c, g->nodes[i].outputs[0]), 10));
        }
        if (e->opts.verbose) {
            int nc, ch;
            float ms;
            t->gemm_get_choice(st->gemm, &nc, &ch, &ms);
            mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): cuBLASLt %lldx%lldx%lld batch %lld %s, algorithm %d of "
                      "%d, %.4f ms", g->nodes[i].name, g->nodes[i].op_type, (long long)gg->desc.m,
                      (long long)gg->desc.n, (long long)gg->desc.k, (long long)gg->desc.batch,
                      mixrt_dtype_name(gg->desc.ab_dtype), ch, nc, ms);
        }
    }
    /* Patch convs: the space-to-depth scratch and the product over it, tuned there. NCHW:
     * Y[n] = W [K, CRS] @ col[n] [CRS, OH*OW] (batch N, W repeated; the bias is per row, so
     * the epilogue kernel adds it); NHWC: Y [N*OH*OW, K] = col [N*OH*OW, RSC] @ W_KRSC^T
     * with the bias in cuBLASLt's epilogue. */
    for (int s = 0; s < ns; s++) {
        int i = g->order[s];
        struct cu_step *st = &c->steps[i];
        if (st->op != CU_CONV || !(st->patch || st->im2col)) continue;
        const struct mixrt_cuda_conv_desc *cd = &st->cd;
        int64_t crs = st->im2col ? st->im2.ldc : cd->c * cd->r * cd->s, sp = cd->oh * cd->ow;
        mixrt_dtype dt = cd->dtype;
        bool one = st->patch && cd->r == 1 && cd->s == 1;
        void *col = one ? dptr(c, g->nodes[i].inputs[0]) : NULL;
        if (!one) {
            st->col_bytes = (size_t)(cd->n * sp * crs) * mixrt_dtype_size(dt);
            MIXRT_TRY(t->alloc(c->dev, st->col_bytes ? st->col_bytes : 1, g->nodes[i].name, &st->col));
            MIXRT_TRY(t->memset(c->dev, st->col, 0, st->col_bytes));
            col = st->col;
        }
        struct gemm_geom *gg = &st->gg;
        memset(gg, 0, sizeof(*gg));
        gg->bias = gg->z = -1, gg->post_act = -1;
        struct mixrt_cuda_gemm_desc *d = &gg->desc;
        d->ab_dtype = d->y_dtype = dt;
        d->name = g->nodes[i].name;
        d->alpha = 1.0f;
        const void *w = st->wperm ? st->wperm : dptr(c, g->nodes[i].inputs[1]);
        const void *ga, *gb;
        if (cd->nhwc) {
            /* Bias, a residual (cuBLASLt's C) and ReLU go into the product's epilogue:
             * relu(AB + C + bias) (test_cuda_kernels' "+C bias+relu" GEMM case checks that
             * order on the device). */
            d->m = cd->n * sp, d->n = cd->k, d->k = crs, d->trans_b = true, d->batch = 1;
            st->conv_bias_done = st->conv_b >= 0;
            st->conv_z_done = st->conv_z >= 0;
            st->conv_act_done = st->conv_act == MIXRT_CUDA_UNARY_RELU;
            d->accumulate = st->conv_z_done;
            d->epilogue = st->conv_act_done ? (st->conv_bias_done ? MIXRT_CUDA_EPILOGUE_BIAS_RELU : MIXRT_CUDA_EPILOGUE_RELU)
                          : st->conv_bias_done ? MIXRT_CUDA_EPILOGUE_BIAS
                                               : MIXRT_CUDA_EPILOGUE_NONE;
            ga = col, gb = w;
        } else {
            d->m = cd->k, d->n = sp, d->k = crs, d->batch = cd->n;
            d->stride_a = 0, d->stride_b = crs * sp, d->stride_y = cd->k * sp;
            ga = w, gb = col;
        }
        MIXRT_TRY(t->gemm_create(c->dev, d, &st->gemm));
        if (st->conv_z_done) MIXRT_TRY(t->gemm_set_c(st->gemm, dptr(c, st->conv_z)));
        MIXRT_TRY(t->gemm_tune(st->gemm, ga, gb, st->conv_bias_done ? dptr(c, st->conv_b) : NULL,
                               dptr(c, g->nodes[i].outputs[0]), 10));
        if (e->opts.verbose)
            mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (%s): %s conv as %s + cuBLASLt %lldx%lldx%lld "
                      "batch %lld %s", g->nodes[i].name, g->nodes[i].op_type, st->im2col ? "small-channel" : "patch",
                      st->im2col ? "im2col" : "space-to-depth", (long long)d->m, (long long)d->n, (long long)d->k,
                      (long long)d->batch, mixrt_dtype_name(dt));
    }
    /* Attention as batched GEMMs where the tensor-core kernel measured slower (notes/cuda.md
     * call 11): 16-bit, b*h >= 64 heads, sq >= 64 queries and sk > 160 keys (ViT-B/16 at
     * batch 32: 445 -> 339 us per layer; BERT at batch 32, sk 128: 4.69 ms with it against
     * 3.73 without, so it keeps the kernel), or everywhere 16-bit with
     * MIXRT_CUDA_ATTENTION=gemm (tests);
     * =tc / =rows keep the single kernels. */
    {
        const char *aenv = getenv("MIXRT_CUDA_ATTENTION");
        bool force = aenv && !strcmp(aenv, "gemm"), off = aenv && (!strcmp(aenv, "tc") || !strcmp(aenv, "rows"));
        size_t need = 0;
        for (int s = 0; s < ns; s++) {
            struct cu_step *st = &c->steps[g->order[s]];
            if (st->op != CU_ATTENTION) continue;
            const struct mixrt_cuda_attention_args *a = &st->att;
            mixrt_dtype dt = dt_of(g, g->nodes[g->order[s]].inputs[0]);
            /* The flash kernel takes these shapes (d == dv of 32 / 64 / 128) unless
             * MIXRT_CUDA_FLASH=off. */
            const char *fenv = getenv("MIXRT_CUDA_FLASH");
            bool flash = a->d == a->dv && (a->d == 32 || a->d == 64 || a->d == 128) && !(fenv && !strcmp(fenv, "off"));
            st->att_gemm = !off && (dt == MIXRT_DTYPE_BF16 || dt == MIXRT_DTYPE_F16) && a->scale != 0.0f &&
                           (force || (!flash && a->b * a->h >= 64 && a->sq >= 64 && a->sk > 160));
            if (!st->att_gemm) continue;
            size_t es = mixrt_dtype_size(dt), bh = (size_t)(a->b * a->h), at = 0;
            size_t bytes[6] = {bh * (size_t)(a->sq * a->d) * es, bh * (size_t)(a->sk * a->d) * es,
                               bh * (size_t)(a->sk * a->dv) * es, bh * (size_t)(a->sq * a->dv) * es,
                               bh * (size_t)(a->sq * a->sk) * 4, bh * (size_t)(a->sq * a->sk) * es};
            for (int k = 0; k < 6; k++) {
                st->att_off[k] = at;
                at += (bytes[k] + CU_ALIGN - 1) & ~(size_t)(CU_ALIGN - 1);
            }
            if (at > need) need = at;
        }
        if (need) {
            MIXRT_TRY(t->alloc(c->dev, need, "attention scratch", &c->att_scratch));
            c->att_scratch_bytes = need;
            MIXRT_TRY(t->memset(c->dev, c->att_scratch, 0, need));
        }
        for (int s = 0; s < ns && need; s++) {
            int i = g->order[s];
            struct cu_step *st = &c->steps[i];
            if (st->op != CU_ATTENTION || !st->att_gemm) continue;
            const struct mixrt_cuda_attention_args *a = &st->att;
            mixrt_dtype dt = dt_of(g, g->nodes[i].inputs[0]);
            uint8_t *base = c->att_scratch;
            struct mixrt_cuda_gemm_desc qk = {.ab_dtype = dt, .y_dtype = MIXRT_DTYPE_F32, .m = a->sq, .n = a->sk,
                                              .k = a->d, .trans_b = true, .batch = a->b * a->h,
                                              .stride_a = a->sq * a->d, .stride_b = a->sk * a->d,
                                              .stride_y = a->sq * a->sk, .alpha = a->scale, .name = g->nodes[i].name};
            struct mixrt_cuda_gemm_desc pv = {.ab_dtype = dt, .y_dtype = dt, .m = a->sq, .n = a->dv, .k = a->sk,
                                              .batch = a->b * a->h, .stride_a = a->sq * a->sk,
                                              .stride_b = a->sk * a->dv, .stride_y = a->sq * a->dv,
                                              .name = g->nodes[i].name};
            MIXRT_TRY(t->gemm_create(c->dev, &qk, &st->att_qk));
            MIXRT_TRY(t->gemm_create(c->dev, &pv, &st->att_pv));
            MIXRT_TRY(t->gemm_tune(st->att_qk, base + st->att_off[0], base + st->att_off[1], NULL, base + st->att_off[4], 10));
            MIXRT_TRY(t->gemm_tune(st->att_pv, base + st->att_off[5], base + st->att_off[2], NULL, base + st->att_off[3], 10));
            if (e->opts.verbose)
                mixrt_log(e->ctx, MIXRT_LOG_NOTE, "layer '%s' (Attention): batched GEMMs, %lld heads x %lld queries x "
                          "%lld keys", g->nodes[i].name, (long long)(a->b * a->h), (long long)a->sq, (long long)a->sk);
        }
    }
    c->g = g;
    const char *penv = getenv("MIXRT_CUDA_PROFILE");
    if (penv && !strcmp(penv, "1")) {
        c->prof_ms = mixrt_calloc(e->ctx, (size_t)ns + 1, sizeof(double));
        c->prof_tmp = mixrt_calloc(e->ctx, (size_t)ns + 1, sizeof(float));
        if (!c->prof_ms || !c->prof_tmp) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        MIXRT_TRY(t->prof_reserve(c->dev, ns + 1));
        c->profile = true;
    }
    /* Pinned staging for outputs the device hands back at the end of a run. */
    const char *pin = getenv("MIXRT_CUDA_PINNED");
    c->stage = mixrt_calloc(e->ctx, (size_t)(g->n_outputs > 0 ? g->n_outputs : 1), sizeof(void *));
    c->stage_bytes = mixrt_calloc(e->ctx, (size_t)(g->n_outputs > 0 ? g->n_outputs : 1), sizeof(size_t));
    if (!c->stage || !c->stage_bytes) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (int k = 0; k < g->n_outputs && !(pin && !strcmp(pin, "off")); k++) {
        int v = g->outputs[k];
        if (where[v] != 1 || !vbytes(g, v)) continue;
        bool dup = false; /* an output listed twice is staged once, at its first index */
        for (int q = 0; q < k; q++) dup |= g->outputs[q] == v;
        if (dup) continue;
        MIXRT_TRY(t->host_alloc(c->dev, vbytes(g, v), &c->stage[k]));
        c->stage_bytes[k] = vbytes(g, v);
    }
    MIXRT_TRY(t->device_sync(c->dev));
    if (e->opts.verbose)
        mixrt_log(e->ctx, MIXRT_LOG_NOTE, "cuda: %d segment%s (%d on CUDA), %d layer%s on the CPU, %d H2D and %d D2H "
                  "copies per run, device arena %zu bytes, weights %zu bytes", c->segments, c->segments == 1 ? "" : "s",
                  c->cuda_segments, c->cpu_layers, c->cpu_layers == 1 ? "" : "s", c->h2d, c->d2h, c->arena_bytes,
                  c->weight_bytes);
fail:
    mixrt_free(e->ctx, first, nvz * sizeof(int));
    mixrt_free(e->ctx, last, nvz * sizeof(int));
    mixrt_free(e->ctx, where, nvz * sizeof(int));
    mixrt_free(e->ctx, sl, nvz * sizeof(*sl));
    return status;
}

/* ---- running ---------------------------------------------------------------------------- */

static mixrt_status run_cuda_step(struct mixrt_engine *e, int i) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_cuda_table *t = c->t;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    const struct mixrt_node *n = &g->nodes[i];
    struct cu_step *st = &c->steps[i];
    int x = in_at(n, 0), y = out_at(n, 0);
    void *yp = dptr(c, y);
    const void *xp = dptr(c, x);
    mixrt_dtype dt = dt_of(g, y);
    size_t ny = numel(g, y);
    switch (st->op) {
    case CU_GEMM: {
        struct gemm_geom *gg = &st->gg;
        if (st->rg) { /* row groups: the groups' products in place (one batch), then the edge columns */
            MIXRT_TRY(t->gemm_run(st->gemm, dptr(c, gg->a), rowgroup_w(c, st), NULL, rowgroup_y(c, g, st, i)));
            MIXRT_TRY(t->gemm_run(st->egemm, dptr(c, gg->a), st->we, NULL, st->escr));
            MIXRT_TRY(t->edge_scatter(c->dev, gg->desc.y_dtype, st->escr, rowgroup_y(c, g, st, i), &st->edge));
            break;
        }
        if (st->ypad) { /* N padded: the real columns out of ypad unless the next Cast reads it */
            MIXRT_TRY(t->gemm_run(st->gemm, dptr(c, gg->a), st->wpad, NULL, st->ypad));
            if (!st->pad_fused)
                MIXRT_TRY(t->cast_rows(c->dev, dt, st->ypad, (size_t)st->pad_ld, dt, yp, (size_t)gg->desc.m,
                                       ny / (size_t)gg->desc.m));
            break;
        }
        MIXRT_TRY(t->gemm_run(st->gemm, dptr(c, gg->a), dptr(c, gg->b), gg->bias >= 0 ? dptr(c, gg->bias) : NULL, yp));
        if (gg->z >= 0 && !gg->desc.accumulate)
            MIXRT_TRY(t->binary(c->dev, MIXRT_CUDA_BINARY_ADD, dt, yp, dptr(c, gg->z), ny, yp, ny));
        if (gg->post_act >= 0) MIXRT_TRY(t->unary(c->dev, (enum mixrt_cuda_unary_op)gg->post_act, dt, yp, yp, ny));
        break;
    }
    case CU_BINARY: {
        int b = in_at(n, 1);
        enum mixrt_cuda_binary_op op = is(n, "", "Add")   ? MIXRT_CUDA_BINARY_ADD
                                       : is(n, "", "Sub") ? MIXRT_CUDA_BINARY_SUB
                                       : is(n, "", "Mul") ? MIXRT_CUDA_BINARY_MUL
                                                          : MIXRT_CUDA_BINARY_DIV;
        if (st->general) {
            int ry = g->values[y].rank;
            int64_t yd[MIXRT_MAX_RANK], as[MIXRT_MAX_RANK], bs[MIXRT_MAX_RANK];
            bcast_strides(g, x, ry, as);
            bcast_strides(g, b, ry, bs);
            for (int d = 0; d < ry; d++) yd[d] = dim(g, y, d);
            MIXRT_TRY(t->binary_bcast(c->dev, op, dt, dptr(c, x), as, dptr(c, b), bs, yp, ry, yd));
            break;
        }
        if (!(same_shape(g, x, y) && trailing_bcast(g, b, y))) {
            int tmp = x;
            x = b, b = tmp;
        }
        MIXRT_TRY(t->binary(c->dev, op, dt, dptr(c, x), dptr(c, b), numel(g, b), yp, ny));
        break;
    }
    case CU_SELECT: {
        int ry = g->values[y].rank;
        int64_t yd[MIXRT_MAX_RANK], s0[MIXRT_MAX_RANK], s1[MIXRT_MAX_RANK], s2[MIXRT_MAX_RANK];
        for (int d = 0; d < ry; d++) yd[d] = dim(g, y, d);
        bcast_strides(g, x, ry, s0);
        bcast_strides(g, in_at(n, 1), ry, s1);
        if (is(n, "", "Where") && st->row_in >= 0) { /* mask_rows: Where(row, 0, fill) into y's start */
            int64_t rs[4] = {st->row_dims[1] * st->row_dims[3], st->row_dims[3], 0, 1}, zs[4] = {0, 0, 0, 0};
            for (int d = 0; d < 2; d++)
                if (st->row_dims[d] == 1) rs[d] = 0;
            MIXRT_TRY(t->select_bcast(c->dev, MIXRT_CUDA_SELECT_WHERE, mixrt_dtype_size(dt), dptr(c, st->row_in), rs,
                                      dptr(c, in_at(n, 1)), zs, dptr(c, in_at(n, 2)), zs, yp, 4, st->row_dims));
        } else if (is(n, "", "Where")) {
            bcast_strides(g, in_at(n, 2), ry, s2);
            MIXRT_TRY(t->select_bcast(c->dev, MIXRT_CUDA_SELECT_WHERE, mixrt_dtype_size(dt), xp, s0,
                                      dptr(c, in_at(n, 1)), s1, dptr(c, in_at(n, 2)), s2, yp, ry, yd));
        } else {
            enum mixrt_cuda_select_op op = is(n, "", "And")  ? MIXRT_CUDA_SELECT_AND
                                           : is(n, "", "Or") ? MIXRT_CUDA_SELECT_OR
                                                             : MIXRT_CUDA_SELECT_XOR;
            MIXRT_TRY(t->select_bcast(c->dev, op, 1, NULL, NULL, xp, s0, dptr(c, in_at(n, 1)), s1, yp, ry, yd));
        }
        break;
    }
    case CU_RESIZE: MIXRT_TRY(t->resize(c->dev, dt, xp, yp, &st->rz)); break;
    case CU_UNARY: {
        enum mixrt_cuda_unary_op op = MIXRT_CUDA_UNARY_RELU;
        if (!strcmp(n->op_type, "Sigmoid")) op = MIXRT_CUDA_UNARY_SIGMOID;
        else if (!strcmp(n->op_type, "Tanh")) op = MIXRT_CUDA_UNARY_TANH;
        else if (!strcmp(n->op_type, "HardSwish")) op = MIXRT_CUDA_UNARY_HARDSWISH;
        else if (!strcmp(n->op_type, "HardSigmoid")) op = MIXRT_CUDA_UNARY_HARDSIGMOID6;
        else if (!strcmp(n->op_type, "Neg")) op = MIXRT_CUDA_UNARY_NEG;
        else if (!strcmp(n->op_type, "Sqrt")) op = MIXRT_CUDA_UNARY_SQRT;
        else if (!strcmp(n->op_type, "Reciprocal")) op = MIXRT_CUDA_UNARY_RECIPROCAL;
        else if (!strcmp(n->op_type, "Exp")) op = MIXRT_CUDA_UNARY_EXP;
        else if (!strcmp(n->op_type, "Pow"))
            op = mixrt_load_f64(g->values[in_at(n, 1)].init->data, dt_of(g, in_at(n, 1)), 0) == 2.0
                     ? MIXRT_CUDA_UNARY_SQUARE
                     : MIXRT_CUDA_UNARY_SQRT;
        else if (!strcmp(n->op_type, "Gelu"))
            op = strcmp(mixrt_node_attr_string(n, "approximate", "none"), "tanh") ? MIXRT_CUDA_UNARY_GELU_ERF
                                                                                 : MIXRT_CUDA_UNARY_GELU_TANH;
        MIXRT_TRY(t->unary(c->dev, op, dt, xp, yp, ny));
        break;
    }
    case CU_REDUCE: {
        size_t rows = numel(g, y);
        MIXRT_TRY(t->reduce_rows(c->dev, dt, xp, yp, rows, rows ? numel(g, x) / rows : 0,
                                 !strcmp(n->op_type, "ReduceMean")));
        break;
    }
    case CU_EXPAND: {
        int ry = g->values[y].rank, rx = g->values[x].rank;
        int64_t xs[MIXRT_MAX_RANK], od[MIXRT_MAX_RANK], is_[MIXRT_MAX_RANK];
        strides_of(g, x, xs);
        for (int d = 0; d < ry; d++) {
            int q = d - (ry - rx);
            od[d] = dim(g, y, d);
            is_[d] = q < 0 || dim(g, x, q) == 1 ? 0 : xs[q];
        }
        MIXRT_TRY(t->strided_copy(c->dev, mixrt_dtype_size(dt), xp, yp, ry, od, is_, NULL));
        break;
    }
    case CU_PAD: {
        int r = g->values[x].rank;
        int64_t pb[MIXRT_MAX_RANK], ys[MIXRT_MAX_RANK], xs[MIXRT_MAX_RANK], od[MIXRT_MAX_RANK];
        size_t es = mixrt_dtype_size(dt), off = 0;
        pad_geom(g, n, pb);
        strides_of(g, y, ys);
        strides_of(g, x, xs);
        for (int d = 0; d < r; d++) od[d] = dim(g, x, d), off += (size_t)(pb[d] * ys[d]);
        MIXRT_TRY(t->memset(c->dev, yp, 0, vbytes(g, y)));
        MIXRT_TRY(t->strided_copy(c->dev, es, xp, (uint8_t *)yp + off * es, r, od, xs, ys));
        break;
    }
    case CU_INSTNORM: {
        size_t ch = (size_t)dim(g, x, 1), rows = (size_t)dim(g, x, 0) * ch;
        MIXRT_TRY(t->instance_norm(c->dev, dt, xp, dptr(c, in_at(n, 1)), dptr(c, in_at(n, 2)), yp, rows,
                                   rows ? ny / rows : 0, ch, mixrt_node_attr_float(n, "epsilon", 1e-5f)));
        break;
    }
    case CU_CAST:
        if (st->cast_by_gemm) break; /* the row-grouped product before it wrote y */
        if (st->cast_src) { /* x is a padded product's output, read in its padded rows */
            size_t ld = (size_t)st->cast_ld, cols = (size_t)dim(g, x, g->values[x].rank - 1);
            MIXRT_TRY(t->cast_rows(c->dev, dt_of(g, x), st->cast_src, ld, dt, yp, cols ? ny / cols : 0, cols));
            break;
        }
        if (dt_of(g, x) == dt) MIXRT_TRY(t->copy_d2d(c->dev, yp, xp, vbytes(g, y)));
        else if (cu_float(dt_of(g, x))) MIXRT_TRY(t->cast(c->dev, dt_of(g, x), xp, dt, yp, ny));
        else MIXRT_TRY(t->cast_int(c->dev, dt_of(g, x), xp, dt, yp, ny));
        break;
    case CU_LAYERNORM: {
        int r = g->values[x].rank, bi = in_at(n, 2);
        size_t cols = (size_t)dim(g, x, r - 1);
        MIXRT_TRY(t->layer_norm(c->dev, dt, xp, dptr(c, in_at(n, 1)), bi >= 0 ? dptr(c, bi) : NULL, yp,
                                cols ? ny / cols : 0, cols, mixrt_node_attr_float(n, "epsilon", 1e-5f)));
        break;
    }
    case CU_SOFTMAX: {
        size_t cols = (size_t)dim(g, x, g->values[x].rank - 1);
        MIXRT_TRY(t->softmax(c->dev, dt, xp, yp, cols ? ny / cols : 0, cols));
        break;
    }
    case CU_GATHER: {
        int idx = in_at(n, 1);
        if (st->nd) {
            MIXRT_TRY(t->gather_rows(c->dev, dt_of(g, x), xp, st->nd_table, st->nd_cols, MIXRT_DTYPE_I64, st->table,
                                     st->nd_n, yp));
            break;
        }
        if (st->general) {
            int r = g->values[x].rank, q = 0;
            int64_t axis = mixrt_node_attr_int(n, "axis", 0), xs[MIXRT_MAX_RANK], od[MIXRT_MAX_RANK], is_[MIXRT_MAX_RANK];
            if (axis < 0) axis += r;
            int64_t k = mixrt_load_i64(g->values[idx].init->data, dt_of(g, idx), 0);
            if (k < 0) k += dim(g, x, (int)axis);
            strides_of(g, x, xs);
            for (int d = 0; d < r; d++)
                if (d != axis) od[q] = dim(g, x, d), is_[q++] = xs[d];
            size_t es = mixrt_dtype_size(dt);
            MIXRT_TRY(t->strided_copy(c->dev, es, (const uint8_t *)xp + (size_t)(k * xs[axis]) * es, yp, q, od, is_, NULL));
            break;
        }
        size_t rows = (size_t)dim(g, x, 0), cols = rows ? numel(g, x) / rows : 0;
        MIXRT_TRY(t->gather_rows(c->dev, dt_of(g, x), xp, rows, cols, dt_of(g, idx), dptr(c, idx), numel(g, idx), yp));
        break;
    }
    case CU_VIEW: break;
    case CU_SPLIT_VIEW: break; /* the Attention reads the windows (split_views) */
    case CU_TRANSPOSE: {
        int r = g->values[x].rank;
        int64_t p[MIXRT_MAX_RANK], xs[MIXRT_MAX_RANK], od[MIXRT_MAX_RANK], is_[MIXRT_MAX_RANK];
        size_t cnt = 0;
        if (mixrt_node_attr_ints(n, "perm", &cnt)) read_perm(n, "perm", r, p);
        else
            for (int d = 0; d < r; d++) p[d] = r - 1 - d;
        strides_of(g, x, xs);
        for (int d = 0; d < r; d++) od[d] = dim(g, x, (int)p[d]), is_[d] = xs[p[d]];
        MIXRT_TRY(t->strided_copy(c->dev, mixrt_dtype_size(dt), xp, yp, r, od, is_, NULL));
        break;
    }
    case CU_SPLIT: {
        int r = g->values[x].rank;
        int64_t axis = mixrt_node_attr_int(n, "axis", 0), xs[MIXRT_MAX_RANK], od[MIXRT_MAX_RANK], at = 0;
        if (axis < 0) axis += r;
        size_t es = mixrt_dtype_size(dt_of(g, x));
        strides_of(g, x, xs);
        for (int j = 0; j < n->n_outputs; j++) {
            int o = n->outputs[j];
            for (int d = 0; d < r; d++) od[d] = dim(g, o, d);
            MIXRT_TRY(t->strided_copy(c->dev, es, (const uint8_t *)xp + (size_t)(at * xs[axis]) * es, dptr(c, o), r, od,
                                      xs, NULL));
            at += od[axis];
        }
        break;
    }
    case CU_CONCAT: {
        int r = g->values[y].rank;
        int64_t axis = mixrt_node_attr_int(n, "axis", 0), ys[MIXRT_MAX_RANK], xs[MIXRT_MAX_RANK], od[MIXRT_MAX_RANK],
                at = 0;
        if (axis < 0) axis += r;
        size_t es = mixrt_dtype_size(dt);
        strides_of(g, y, ys);
        for (int j = 0; j < n->n_inputs; j++) {
            int v = n->inputs[j];
            for (int d = 0; d < r; d++) od[d] = dim(g, v, d);
            strides_of(g, v, xs);
            MIXRT_TRY(t->strided_copy(c->dev, es, dptr(c, v), (uint8_t *)yp + (size_t)(at * ys[axis]) * es, r, od, xs,
                                      ys));
            at += od[axis];
        }
        break;
    }
    case CU_SLICE: {
        int r = g->values[x].rank;
        int64_t xs[MIXRT_MAX_RANK], od[MIXRT_MAX_RANK], is_[MIXRT_MAX_RANK], start[MIXRT_MAX_RANK], step[MIXRT_MAX_RANK];
        for (int d = 0; d < r; d++) start[d] = 0, step[d] = 1, od[d] = dim(g, y, d);
        const struct mixrt_tensor *ts = g->values[in_at(n, 1)].init;
        const struct mixrt_tensor *ta = in_at(n, 3) >= 0 ? g->values[in_at(n, 3)].init : NULL;
        const struct mixrt_tensor *tp = in_at(n, 4) >= 0 ? g->values[in_at(n, 4)].init : NULL;
        size_t k = mixrt_tensor_numel(ts);
        for (size_t q = 0; q < k; q++) {
            int64_t ax = ta ? mixrt_load_i64(ta->data, ta->dtype, q) : (int64_t)q;
            if (ax < 0) ax += r;
            if (ax < 0 || ax >= r) continue;
            int64_t s0 = mixrt_load_i64(ts->data, ts->dtype, q), dd = dim(g, x, (int)ax);
            if (s0 < 0) s0 += dd;
            if (s0 < 0) s0 = 0;
            if (s0 > dd) s0 = dd;
            start[ax] = s0;
            if (tp) step[ax] = mixrt_load_i64(tp->data, tp->dtype, q);
        }
        strides_of(g, x, xs);
        size_t base = 0;
        for (int d = 0; d < r; d++) base += (size_t)(start[d] * xs[d]), is_[d] = xs[d] * step[d];
        size_t es = mixrt_dtype_size(dt);
        MIXRT_TRY(t->strided_copy(c->dev, es, (const uint8_t *)xp + base * es, yp, r, od, is_, NULL));
        break;
    }
    case CU_ATTENTION: {
        int m = in_at(n, 3);
        const void *kp = dptr(c, in_at(n, 1)), *vp = dptr(c, in_at(n, 2)), *mp = m >= 0 ? dptr(c, m) : NULL;
        const char *aenv = getenv("MIXRT_CUDA_ATTENTION");
        st->att_fast = false;
        if (st->att_gemm) {
            const struct mixrt_cuda_attention_args *a = &st->att;
            uint8_t *base = c->att_scratch;
            size_t es = mixrt_dtype_size(dt);
            const void *src[3] = {xp, kp, vp};
            const long long *sst[3] = {a->q_strides, a->k_strides, a->v_strides};
            const void *dense[3];
            int64_t rows[3] = {a->sq, a->sk, a->sk}, cols[3] = {a->d, a->d, a->dv};
            for (int k = 0; k < 3; k++) {
                if (att_dense(sst[k], a->b, a->h, rows[k], cols[k])) {
                    dense[k] = src[k];
                    continue;
                }
                int64_t dd[4] = {a->b, a->h, rows[k], cols[k]}, ss[4] = {sst[k][0], sst[k][1], sst[k][2], sst[k][3]};
                MIXRT_TRY(t->strided_copy(c->dev, es, src[k], base + st->att_off[k], 4, dd, ss, NULL));
                dense[k] = base + st->att_off[k];
            }
            float *sc = (float *)(base + st->att_off[4]);
            MIXRT_TRY(t->gemm_run(st->att_qk, dense[0], dense[1], NULL, sc));
            MIXRT_TRY(t->attention_softmax(c->dev, dt, sc, base + st->att_off[5], mp, a));
            if (att_dense(a->y_strides, a->b, a->h, a->sq, a->dv)) {
                MIXRT_TRY(t->gemm_run(st->att_pv, base + st->att_off[5], dense[2], NULL, yp));
            } else {
                MIXRT_TRY(t->gemm_run(st->att_pv, base + st->att_off[5], dense[2], NULL, base + st->att_off[3]));
                int64_t od[4] = {a->b, a->h, a->sq, a->dv}, is_[4] = {a->h * a->sq * a->dv, a->sq * a->dv, a->dv, 1};
                int64_t ys[4] = {a->y_strides[0], a->y_strides[1], a->y_strides[2], a->y_strides[3]};
                MIXRT_TRY(t->strided_copy(c->dev, es, base + st->att_off[3], yp, 4, od, is_, ys));
            }
            break;
        }
        if (!(aenv && !strcmp(aenv, "rows"))) MIXRT_TRY(t->attention_fast(c->dev, dt, xp, kp, vp, mp, yp, &st->att, &st->att_fast));
        if (!st->att_fast) MIXRT_TRY(t->attention(c->dev, dt, xp, kp, vp, mp, yp, &st->att));
        break;
    }
    case CU_CONV: {
        int z = st->conv_z, b = st->conv_b;
        unsigned did = 0; /* what cuDNN's graph plan applied of the epilogue */
        const struct mixrt_cuda_conv_desc *cd = &st->cd;
        const void *w = st->wperm ? st->wperm : dptr(c, in_at(n, 1));
        if (st->dw) {
            MIXRT_TRY(t->dwconv(c->dev, dt, xp, w, b >= 0 ? dptr(c, b) : NULL, yp, &st->dwa));
        } else if (st->im2col) {
            MIXRT_TRY(t->im2col(c->dev, dt, xp, st->col, &st->im2));
            MIXRT_TRY(t->gemm_run(st->gemm, st->col, w, st->conv_bias_done ? dptr(c, b) : NULL, yp));
        } else if (st->patch) {
            /* Space-to-depth: NCHW col[n][c,r,s][oh,ow] = X[n, c, oh*R + r, ow*S + s]; NHWC
             * col[n,oh,ow][r,s,c] = X[n, oh*R + r, ow*S + s, c]. */
            int64_t H = cd->h, W = cd->w, C = cd->c, R = cd->r, S = cd->s;
            int64_t od[6], is_[6];
            if (cd->nhwc) {
                int64_t d6[6] = {cd->n, cd->oh, cd->ow, R, S, C}, s6[6] = {H * W * C, R * W * C, S * C, W * C, C, 1};
                memcpy(od, d6, sizeof od), memcpy(is_, s6, sizeof is_);
            } else {
                int64_t d6[6] = {cd->n, C, R, S, cd->oh, cd->ow}, s6[6] = {C * H * W, H * W, W, 1, R * W, S};
                memcpy(od, d6, sizeof od), memcpy(is_, s6, sizeof is_);
            }
            const void *col = xp; /* 1x1: the input is the operand */
            if (st->col) {
                MIXRT_TRY(t->strided_copy(c->dev, mixrt_dtype_size(dt), xp, st->col, 6, od, is_, NULL));
                col = st->col;
            }
            if (cd->nhwc)
                MIXRT_TRY(t->gemm_run(st->gemm, col, w, st->conv_bias_done ? dptr(c, b) : NULL, yp));
            else
                MIXRT_TRY(t->gemm_run(st->gemm, w, col, NULL, yp));
        } else if (st->cl3) {
            /* NCDHW -> NDHWC, the conv, NDHWC -> NCDHW (the scratch: X's copy, then Y's). */
            int64_t C = cd->c, K = cd->k, xs = cd->d * cd->h * cd->w, ys = cd->od * cd->oh * cd->ow;
            int64_t xd4[3] = {cd->n, xs, C}, xi4[3] = {C * xs, 1, xs};
            int64_t yd4[3] = {cd->n, K, ys}, yi4[3] = {ys * K, 1, K};
            size_t es = mixrt_dtype_size(dt);
            uint8_t *xt = c->cl3_scratch, *yt = xt + (size_t)(cd->n * C * xs) * es;
            if (!st->cl3_in) MIXRT_TRY(t->strided_copy(c->dev, es, xp, xt, 3, xd4, xi4, NULL));
            MIXRT_TRY(t->conv_run(st->conv, st->cl3_in ? xp : xt, w, st->cl3_out ? yp : (void *)yt, false));
            if (!st->cl3_out) MIXRT_TRY(t->strided_copy(c->dev, es, yt, yp, 3, yd4, yi4, NULL));
        } else {
            MIXRT_TRY(t->conv_run_ex(st->conv, xp, w, b >= 0 ? dptr(c, b) : NULL, yp, &did));
        }
        /* What the product did not do of bias, residual and activation: one pass over Y (f32
         * sum, one rounding). */
        const void *bp = b >= 0 && !st->conv_bias_done && !(did & MIXRT_CUDA_CONV_DID_BIAS) ? dptr(c, b) : NULL;
        const void *zp = z >= 0 && !st->conv_z_done ? dptr(c, z) : NULL;
        int act = st->conv_act_done || (did & MIXRT_CUDA_CONV_DID_ACT) ? -1 : st->conv_act;
        if (bp || zp || act >= 0)
            MIXRT_TRY(t->bias_act(c->dev, dt, yp, bp, (size_t)cd->k,
                                  cd->nhwc || st->cl3_out ? 1 : (size_t)(cd->oh * cd->ow * (cd->od > 0 ? cd->od : 1)),
                                  zp, act,
                                  ny));
        break;
    }
    case CU_POOL:
        MIXRT_TRY(t->pool2d(c->dev, dt, xp, yp, &st->pool));
        break;
    default:
        MIXRT_TRY(mixrt_error(e->ctx, MIXRT_STATUS_INTERNAL, "CUDA step for %s node '%s' has no op", n->op_type, n->name));
    }
fail:
    if (status != MIXRT_STATUS_OK) mixrt_error_prefix(e->ctx, "CUDA layer '%s' (%s)", n->name, n->op_type);
    return status;
}

/* Runs one CPU layer with the kernel the CPU engine chose, on host tensors; sequence values
 * (which only CPU layers make or read) live in seqs[v] once seq_set[v]. */
static mixrt_status run_cpu_step(struct mixrt_engine *e, int i, struct mixrt_tensor *host, struct mixrt_seq *seqs,
                                 bool *seq_set, mixrt_engine_observer observe, void *user) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    const struct mixrt_node *n = &g->nodes[i];
    int ni = n->n_inputs > 0 ? n->n_inputs : 1, no = n->n_outputs > 0 ? n->n_outputs : 1;
    struct mixrt_kernel_ctx k;
    memset(&k, 0, sizeof(k));
    const struct mixrt_tensor **in = mixrt_calloc(e->ctx, (size_t)ni, sizeof(*in));
    const struct mixrt_seq **in_seq = mixrt_calloc(e->ctx, (size_t)ni, sizeof(*in_seq));
    struct mixrt_tensor *out = mixrt_calloc(e->ctx, (size_t)no, sizeof(*out));
    struct mixrt_seq *out_seq = mixrt_calloc(e->ctx, (size_t)no, sizeof(*out_seq));
    bool *is_seq = mixrt_calloc(e->ctx, (size_t)no, sizeof(bool)), *wanted = mixrt_calloc(e->ctx, (size_t)no, sizeof(bool));
    if (!in || !in_seq || !out || !out_seq || !is_seq || !wanted) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0) continue;
        if (seq_set[v]) {
            in_seq[j] = &seqs[v];
            continue;
        }
        in[j] = host[v].data || host[v].rank >= 0 ? &host[v] : g->values[v].init;
        if (!in[j] || (!in[j]->data && in[j]->nbytes))
            MIXRT_TRY(mixrt_error(e->ctx, MIXRT_STATUS_INTERNAL, "CPU layer '%s': input '%s' has no host data", n->name,
                                  g->values[v].name));
    }
    for (int j = 0; j < n->n_outputs; j++) wanted[j] = n->outputs[j] >= 0;
    k.ctx = e->ctx, k.graph = g, k.node = n, k.opset = n->opset;
    k.n_in = n->n_inputs, k.in = in, k.in_seq = in_seq;
    k.n_out = n->n_outputs, k.out = out, k.out_seq = out_seq, k.out_is_seq = is_seq, k.out_wanted = wanted;
    k.state = e->states[i];
    /* A node with subgraphs (Loop, If, Scan): its bodies resolve outer names in host[]. */
    for (int a = 0; a < n->n_attrs && !k.env; a++)
        if (n->attrs[a].g || n->attrs[a].graphs) MIXRT_TRY(mixrt_exec_env_bind(e->ctx, g, host, &k.env));
    MIXRT_TRY(e->fns[i](&k));
    for (int j = 0; j < n->n_outputs; j++) {
        int v = n->outputs[j];
        if (is_seq[j]) { /* kept on the host for the CPU layers that read it */
            if (v >= 0) {
                if (seq_set[v]) mixrt_seq_release(e->ctx, &seqs[v]);
                seqs[v] = out_seq[j];
                seq_set[v] = true;
                memset(&out_seq[j], 0, sizeof(out_seq[j]));
            }
            continue;
        }
        if (v < 0) {
            mixrt_tensor_release(e->ctx, &out[j]);
            continue;
        }
        mixrt_tensor_release(e->ctx, &host[v]);
        host[v] = out[j];
        memset(&out[j], 0, sizeof(out[j]));
        if (observe) observe(user, g, i, v, &host[v]);
    }
fail:
    mixrt_exec_env_free(k.env);
    if (out)
        for (int j = 0; j < n->n_outputs; j++) mixrt_tensor_release(e->ctx, &out[j]);
    if (out_seq)
        for (int j = 0; j < n->n_outputs; j++) mixrt_seq_release(e->ctx, &out_seq[j]);
    mixrt_free(e->ctx, in, (size_t)ni * sizeof(*in));
    mixrt_free(e->ctx, in_seq, (size_t)ni * sizeof(*in_seq));
    mixrt_free(e->ctx, out, (size_t)no * sizeof(*out));
    mixrt_free(e->ctx, out_seq, (size_t)no * sizeof(*out_seq));
    mixrt_free(e->ctx, is_seq, (size_t)no * sizeof(bool));
    mixrt_free(e->ctx, wanted, (size_t)no * sizeof(bool));
    return status;
}

static mixrt_status do_xfer(struct mixrt_engine *e, const struct xfer *x, struct mixrt_tensor *host, bool *pending) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    int v = x->value;
    size_t nb = vbytes(g, v);
    if (x->h2d) {
        const struct mixrt_tensor *src = host[v].data || host[v].rank >= 0 ? &host[v] : g->values[v].init;
        MIXRT_CHECK(e->ctx, src && (src->data || !nb) && src->nbytes == nb, MIXRT_STATUS_INTERNAL,
                    "copy of '%s' to the device: no host data of %zu bytes", g->values[v].name, nb);
        if (nb && (src->flags & MIXRT_TENSOR_DEVICE_CUDA)) MIXRT_TRY(c->t->copy_d2d(c->dev, dptr(c, v), src->data, nb));
        else if (nb) MIXRT_TRY(c->t->copy_h2d(c->dev, dptr(c, v), src->data, nb));
    } else if (x->step < c->n_nodes) {
        int64_t dims[MIXRT_MAX_RANK];
        for (int d = 0; d < g->values[v].rank; d++) dims[d] = dim(g, v, d);
        mixrt_tensor_release(e->ctx, &host[v]);
        MIXRT_TRY(mixrt_tensor_init(e->ctx, &host[v], dt_of(g, v), g->values[v].rank, dims));
        if (nb) MIXRT_TRY(c->t->copy_d2h(c->dev, host[v].data, dptr(c, v), nb));
        *pending = true;
    }
fail:
    return status;
}

/* Pinned stage -> output tensor. A large output (GPT-2's 25.7 MB logits) is usually a fresh
 * allocation the copy page-faults in; chunks on all threads overlap the faults. */
static void copy_out(void *dst, const void *src, size_t n) {
    const size_t chunk = (size_t)1 << 20;
    if (n < ((size_t)8 << 20)) {
        memcpy(dst, src, n);
        return;
    }
    long long nc = (long long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < nc; i++) {
        size_t off = (size_t)i * chunk, len = n - off < chunk ? n - off : chunk;
        memcpy((uint8_t *)dst + off, (const uint8_t *)src + off, len);
    }
}

/* One copy between any two of host and device memory, on the engine's stream. */
static mixrt_status copy_any(struct mixrt_engine_cuda *c, void *dst, bool dst_dev, const void *src, bool src_dev,
                             size_t n) {
    if (!n) return MIXRT_STATUS_OK;
    if (dst_dev) return src_dev ? c->t->copy_d2d(c->dev, dst, src, n) : c->t->copy_h2d(c->dev, dst, src, n);
    if (src_dev) return c->t->copy_d2h(c->dev, dst, src, n);
    memcpy(dst, src, n);
    return MIXRT_STATUS_OK;
}

static bool is_dev(const struct mixrt_tensor *t) { return t && (t->flags & MIXRT_TENSOR_DEVICE_CUDA); }

/* Graph output v is copied off the device at the end of a run (a CUDA layer made it). */
static bool out_on_dev(const struct mixrt_engine_cuda *c, int v) {
    for (int x = 0; x < c->n_xfers; x++)
        if (!c->xfers[x].h2d && c->xfers[x].step == c->n_nodes && c->xfers[x].value == v) return true;
    return false;
}

static mixrt_status is_value(const struct mixrt_graph *g, int v, void *arg) {
    (void)g;
    return v == *(const int *)arg ? MIXRT_STATUS_INTERNAL : MIXRT_STATUS_OK; /* "found": stops the walk */
}

/* A layer on the CPU reads value v (as an input, or by name in one of its subgraphs). */
static bool read_on_cpu(const struct mixrt_engine_cuda *c, const struct mixrt_graph *g, int v) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (c->steps[i].op != CU_NONE) continue;
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == v) return true;
        if (each_outer_read(g, &g->nodes[i], is_value, &v) != MIXRT_STATUS_OK) return true;
    }
    return false;
}

/* A device input a CPU layer reads: replaced by an owned host copy (its H2D xfer then
 * goes back up from it; mixed engines are not the fast path). */
static mixrt_status input_to_host(struct mixrt_engine *e, struct mixrt_tensor *t) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor h;
    memset(&h, 0, sizeof(h));
    MIXRT_TRY(mixrt_tensor_init(e->ctx, &h, t->dtype, t->rank, t->dims));
    if (h.nbytes) MIXRT_TRY(e->cuda->t->copy_d2h(e->cuda->dev, h.data, t->data, h.nbytes));
    MIXRT_TRY(e->cuda->t->device_sync(e->cuda->dev));
    *t = h;
    return MIXRT_STATUS_OK;
fail:
    mixrt_tensor_release(e->ctx, &h);
    return status;
}

static mixrt_status launch_all(struct mixrt_engine *e) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    for (int s = 0; s < g->n_nodes; s++) {
        if (c->profile) MIXRT_TRY(c->t->prof_mark(c->dev, s));
        if (c->steps[g->order[s]].op != CU_NONE) MIXRT_TRY(run_cuda_step(e, g->order[s])); /* else the prologue's */
    }
    if (c->profile) MIXRT_TRY(c->t->prof_mark(c->dev, g->n_nodes));
fail:
    return status;
}

/* Adds the last run's per-step device times (marks s and s + 1 around step s). */
static mixrt_status profile_collect(struct mixrt_engine *e) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    int ns = c->n_nodes;
    MIXRT_TRY(c->t->prof_read(c->dev, ns + 1, c->prof_tmp));
    for (int s = 0; s < ns; s++) c->prof_ms[s] += c->prof_tmp[s];
    c->prof_runs++;
fail:
    return status;
}

struct prof_row {
    int step;
    double ms;
};

static int prof_by_time(const void *a, const void *b) {
    const struct prof_row *x = a, *y = b;
    return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : x->step - y->step;
}

/* The profile, slowest layer first, then per op: written to stderr when the engine goes. */
static void profile_print(struct mixrt_engine_cuda *c) {
    const struct mixrt_graph *g = c->g;
    int ns = c->n_nodes;
    if (!c->prof_runs || ns <= 0 || !g) return;
    struct prof_row *rows = mixrt_calloc(c->ctx, (size_t)ns, sizeof(*rows));
    if (!rows) return;
    double total = 0;
    for (int s = 0; s < ns; s++) rows[s] = (struct prof_row){s, c->prof_ms[s] / c->prof_runs}, total += rows[s].ms;
    qsort(rows, (size_t)ns, sizeof(*rows), prof_by_time);
    fprintf(stderr, "cuda profile: %d runs, %d layers, %.4f ms per run (sum of layers; marks around every layer, "
            "replayed %s)\n", c->prof_runs, ns, total, c->graph ? "as one CUDA graph" : "layer by layer");
    fprintf(stderr, "  %9s %6s %6s  %-15s %-20s %-5s %s\n", "ms", "%", "cum%", "kernel", "op", "dtype", "layer");
    double cum = 0;
    for (int r = 0; r < ns; r++) {
        int i = g->order[rows[r].step];
        const struct mixrt_node *n = &g->nodes[i];
        const struct cu_step *st = &c->steps[i];
        cum += rows[r].ms;
        if (r >= 60 && rows[r].ms < 0.001 * total) continue;
        char extra[96] = "";
        if (st->op == CU_GEMM)
            snprintf(extra, sizeof(extra), " [%lldx%lldx%lld b%lld%s]", (long long)st->gg.desc.m,
                     (long long)st->gg.desc.n, (long long)st->gg.desc.k, (long long)st->gg.desc.batch,
                     st->gg.desc.accumulate ? " +C" : st->gg.z >= 0 ? " +add" : "");
        if (st->op == CU_ATTENTION)
            snprintf(extra, sizeof(extra), " [%s]", st->att_gemm ? "batched GEMMs" : st->att_fast ? "tensor cores" : "rows");
        int y = out_at(n, 0);
        fprintf(stderr, "  %9.4f %6.2f %6.2f  %-15s %-20s %-5s %s%s\n", rows[r].ms, total > 0 ? 100 * rows[r].ms / total : 0,
                total > 0 ? 100 * cum / total : 0, cu_kernel_names[st->op], n->op_type,
                y >= 0 ? mixrt_dtype_name(dt_of(g, y)) : "-", n->name, extra);
    }
    /* Per op type (kernel + op + dtype). */
    fprintf(stderr, "cuda profile by op:\n");
    bool *done = mixrt_calloc(c->ctx, (size_t)ns, sizeof(bool));
    for (int r = 0; done && r < ns; r++) {
        if (done[r]) continue;
        int i = g->order[rows[r].step];
        const struct mixrt_node *n = &g->nodes[i];
        int y = out_at(n, 0);
        mixrt_dtype dt = y >= 0 ? dt_of(g, y) : MIXRT_DTYPE_UNDEFINED;
        double sum = 0;
        int cnt = 0;
        for (int q = r; q < ns; q++) {
            int i2 = g->order[rows[q].step];
            const struct mixrt_node *n2 = &g->nodes[i2];
            int y2 = out_at(n2, 0);
            if (done[q] || c->steps[i2].op != c->steps[i].op || strcmp(n2->op_type, n->op_type) ||
                (y2 >= 0 ? dt_of(g, y2) : MIXRT_DTYPE_UNDEFINED) != dt)
                continue;
            done[q] = true;
            sum += rows[q].ms;
            cnt++;
        }
        fprintf(stderr, "  %9.4f %6.2f  %3d x %-15s %-20s %s\n", sum, total > 0 ? 100 * sum / total : 0, cnt,
                cu_kernel_names[c->steps[i].op], n->op_type, y >= 0 ? mixrt_dtype_name(dt) : "-");
    }
    if (done) mixrt_free(c->ctx, done, (size_t)ns * sizeof(bool));
    mixrt_free(c->ctx, rows, (size_t)ns * sizeof(*rows));
}

/* The run; exactly one of outputs (allocated host tensors), out_into (the caller's host or
 * device tensors) and views (device views of the arena) receives the outputs. */
static mixrt_status cuda_run(struct mixrt_engine *e, size_t n_inputs, const char *const *names,
                             const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs,
                             struct mixrt_tensor *const *out_into, struct mixrt_tensor *views,
                             mixrt_engine_observer observe, void *user) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine_cuda *c = e->cuda;
    const struct mixrt_cuda_table *t = c->t;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    int nv = g->n_values, ns = g->n_nodes;
    size_t nvz = (size_t)(nv > 0 ? nv : 1);
    bool pending = false;
    struct mixrt_tensor *host = mixrt_calloc(e->ctx, nvz, sizeof(*host));
    struct mixrt_seq *seqs = host ? mixrt_calloc(e->ctx, nvz, sizeof(*seqs)) : NULL;
    bool *seq_set = seqs ? mixrt_calloc(e->ctx, nvz, sizeof(bool)) : NULL;
    if (!seq_set) {
        mixrt_free(e->ctx, seqs, nvz * sizeof(*seqs));
        mixrt_free(e->ctx, host, nvz * sizeof(*host));
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    for (int v = 0; v < nv; v++) host[v].rank = -1;
    if (outputs)
        for (int k = 0; k < g->n_outputs; k++) outputs[k] = NULL;
    if (views) memset(views, 0, (size_t)g->n_outputs * sizeof(*views));
    MIXRT_CHECK(e->ctx, n_inputs == 0 || (names && inputs), MIXRT_STATUS_INVALID_ARGUMENT, "engine run: NULL inputs");
    /* Views exist only for outputs left in the arena: refused before anything runs. */
    for (int k = 0; views && k < g->n_outputs; k++)
        MIXRT_CHECK(e->ctx, out_on_dev(c, g->outputs[k]), MIXRT_STATUS_UNSUPPORTED, "mixrt_engine_run_device: output "
                    "'%s' is not left on the device (a layer on the CPU, a constant or an input makes it); use "
                    "mixrt_engine_run_into with a device tensor", g->values[g->outputs[k]].name);
    /* Inputs by name, checked against the static shapes the engine was built for. */
    for (size_t a = 0; a < n_inputs; a++) {
        int k;
        MIXRT_CHECK(e->ctx, names[a] && inputs[a], MIXRT_STATUS_INVALID_ARGUMENT, "engine run: input #%zu is NULL", a);
        for (k = 0; k < g->n_inputs; k++)
            if (!strcmp(g->values[g->inputs[k]].name, names[a])) break;
        MIXRT_CHECK(e->ctx, k < g->n_inputs, MIXRT_STATUS_INVALID_ARGUMENT, "engine run: the model has no input '%s'",
                    names[a]);
        int v = g->inputs[k];
        const struct mixrt_tensor *in = inputs[a];
        bool ok = in->dtype == dt_of(g, v) && in->rank == g->values[v].rank;
        for (int d = 0; ok && d < in->rank; d++) ok = dim(g, v, d) < 0 || in->dims[d] == dim(g, v, d);
        if (!ok) {
            char got[256], want[256];
            int64_t wd[MIXRT_MAX_RANK];
            for (int d = 0; d < g->values[v].rank && d < MIXRT_MAX_RANK; d++) wd[d] = dim(g, v, d);
            MIXRT_TRY(mixrt_error(e->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "engine run: input '%s' is %s; this CUDA "
                                  "engine was built for %s %s (shapes are fixed at build: --shape)", names[a],
                                  mixrt_tensor_desc(got, sizeof(got), in), mixrt_dtype_name(dt_of(g, v)),
                                  mixrt_dims_str(want, sizeof(want), g->values[v].rank > 0 ? g->values[v].rank : 0, wd)));
        }
        host[v] = *in;
        host[v].flags = in->flags & MIXRT_TENSOR_DEVICE_CUDA; /* borrowed */
        if (is_dev(in)) {
            size_t nb = mixrt_tensor_numel(in) * mixrt_dtype_size(in->dtype);
            MIXRT_CHECK(e->ctx, in->nbytes == nb && (in->data || !nb), MIXRT_STATUS_INVALID_ARGUMENT, "engine run: "
                        "device input '%s' has nbytes %zu and data %p; its dtype and shape need %zu bytes", names[a],
                        in->nbytes, in->data, nb);
            if (read_on_cpu(c, g, v)) MIXRT_TRY(input_to_host(e, &host[v]));
        }
    }
    for (int k = 0; k < g->n_inputs; k++) {
        int v = g->inputs[k];
        MIXRT_CHECK(e->ctx, host[v].rank >= 0 || g->values[v].init, MIXRT_STATUS_INVALID_ARGUMENT,
                    "engine run: input '%s' is missing", g->values[v].name);
    }
    const char *sync_env = getenv("MIXRT_CUDA_SYNC");
    c->sync_each = sync_env && !strcmp(sync_env, "1"); /* debugging: find the layer that faults */
    /* One CUDA segment after the CPU prologue (none, or the layers hoist_cpu_prologue moved). */
    bool whole = c->cpu_layers == c->prologue && !c->sync_each;
    for (int x = 0; x < c->n_xfers && whole; x++)
        if (!(c->xfers[x].h2d ? (g->values[c->xfers[x].value].flags & MIXRT_VALUE_GRAPH_INPUT) != 0 ||
                                    c->xfers[x].step == c->prologue
                              : c->xfers[x].step == ns))
            whole = false;
    if (whole) {
        /* The CPU prologue, then inputs and its results up, the captured kernels replayed,
         * outputs down. */
        for (int s = 0; s < c->prologue; s++) {
            int i = g->order[s];
            MIXRT_TRY(run_cpu_step(e, i, host, seqs, seq_set, observe, user));
            const struct mixrt_node *n = &g->nodes[i];
            for (int j = 0; j < n->n_inputs; j++) {
                int v = n->inputs[j];
                if (v >= 0 && c->host_last[v] == s && (host[v].flags & MIXRT_TENSOR_OWNS_DATA))
                    mixrt_tensor_release(e->ctx, &host[v]), host[v].rank = -1;
            }
        }
        for (int x = 0; x < c->n_xfers; x++)
            if (c->xfers[x].h2d) MIXRT_TRY(do_xfer(e, &c->xfers[x], host, &pending));
        const char *env = getenv("MIXRT_CUDA_GRAPHS");
        bool graphs = !(env && !strcmp(env, "off"));
        if (graphs && !c->graph && !c->graph_tried) {
            c->graph_tried = true;
            MIXRT_TRY(t->device_sync(c->dev));
            if (t->capture_begin(c->dev) == MIXRT_STATUS_OK) {
                mixrt_status s1 = launch_all(e);
                mixrt_cuda_graph_t gr = NULL;
                mixrt_status s2 = t->capture_end(c->dev, &gr);
                if (s1 == MIXRT_STATUS_OK && s2 == MIXRT_STATUS_OK) c->graph = gr;
                else {
                    if (gr) t->graph_destroy(gr);
                    mixrt_log(e->ctx, MIXRT_LOG_NOTE, "cuda: CUDA graph capture failed (%s); running the layers one by "
                              "one", mixrt_context_last_error(e->ctx));
                }
            }
        }
        if (graphs && c->graph) MIXRT_TRY(t->graph_launch(c->dev, c->graph));
        else MIXRT_TRY(launch_all(e));
    } else {
        int x = 0;
        for (int s = 0; s < ns; s++) {
            int i = g->order[s];
            bool on = c->steps[i].op != CU_NONE;
            for (; x < c->n_xfers && c->xfers[x].step == s; x++) MIXRT_TRY(do_xfer(e, &c->xfers[x], host, &pending));
            if (c->profile) MIXRT_TRY(t->prof_mark(c->dev, s)); /* a CPU layer's time is its wall time */
            if (on) {
                MIXRT_TRY(run_cuda_step(e, i));
                if (c->sync_each) {
                    status = t->device_sync(c->dev);
                    if (status != MIXRT_STATUS_OK) {
                        mixrt_error_prefix(e->ctx, "CUDA layer '%s' (%s), MIXRT_CUDA_SYNC=1", g->nodes[i].name,
                                           g->nodes[i].op_type);
                        goto fail;
                    }
                }
            } else {
                if (pending) {
                    MIXRT_TRY(t->device_sync(c->dev));
                    pending = false;
                }
                MIXRT_TRY(run_cpu_step(e, i, host, seqs, seq_set, observe, user));
            }
            if (c->profile && s == ns - 1) MIXRT_TRY(t->prof_mark(c->dev, ns));
            /* Host copies nobody reads any more (pageable H2D sources are staged by the
             * driver before the copy call returns, so freeing them here is safe). */
            const struct mixrt_node *n = &g->nodes[i];
            for (int j = 0; j < n->n_inputs; j++) {
                int v = n->inputs[j];
                if (v >= 0 && c->host_last[v] == s && (host[v].flags & MIXRT_TENSOR_OWNS_DATA))
                    mixrt_tensor_release(e->ctx, &host[v]), host[v].rank = -1;
            }
        }
    }
    /* Outputs: from the device (final copies) or the host. */
    for (int k = 0; k < g->n_outputs; k++) {
        int v = g->outputs[k];
        struct mixrt_tensor *o = out_into ? out_into[k] : NULL;
        MIXRT_CHECK(e->ctx, !out_into || o, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_run_into: output #%d '%s' is NULL",
                    k, g->values[v].name);
        int64_t dims[MIXRT_MAX_RANK];
        const struct mixrt_tensor *h = host[v].rank >= 0 ? &host[v] : g->values[v].init;
        bool on_dev = false;
        for (int x = 0; x < c->n_xfers; x++)
            if (!c->xfers[x].h2d && c->xfers[x].step == ns && c->xfers[x].value == v) on_dev = true;
        int rank = on_dev ? g->values[v].rank : h ? h->rank : -1;
        MIXRT_CHECK(e->ctx, !seq_set[v], MIXRT_STATUS_UNSUPPORTED, "engine run: output '%s' is a sequence; CUDA engines "
                    "return tensors (sequences stay inside, between CPU layers)", g->values[v].name);
        MIXRT_CHECK(e->ctx, rank >= 0, MIXRT_STATUS_INTERNAL, "engine run: output '%s' was not produced",
                    g->values[v].name);
        for (int d = 0; d < rank; d++) dims[d] = on_dev ? dim(g, v, d) : h->dims[d];
        mixrt_dtype odt = on_dev ? dt_of(g, v) : h->dtype;
        if (views) { /* checked above: on the device */
            struct mixrt_tensor *w = &views[k];
            w->dtype = odt, w->rank = rank;
            for (int d = 0; d < rank; d++) w->dims[d] = dims[d];
            w->data = dptr(c, v), w->nbytes = vbytes(g, v), w->flags = MIXRT_TENSOR_DEVICE_CUDA;
            continue;
        }
        if (o) {
            bool ok = o->dtype == odt && o->rank == rank;
            for (int d = 0; ok && d < rank; d++) ok = o->dims[d] == dims[d];
            MIXRT_CHECK(e->ctx, ok, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_run_into: the tensor given for output "
                        "'%s' does not have its dtype and shape", g->values[v].name);
            MIXRT_CHECK(e->ctx, !is_dev(o) || ((o->data || !o->nbytes) && o->nbytes == vbytes(g, v)),
                        MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_run_into: the device tensor given for output '%s' "
                        "has nbytes %zu and data %p; its dtype and shape need %zu bytes", g->values[v].name, o->nbytes,
                        o->data, vbytes(g, v));
        } else {
            MIXRT_TRY(mixrt_tensor_create(e->ctx, odt, rank, dims, &outputs[k]));
            o = outputs[k];
        }
        if (on_dev && is_dev(o)) {
            MIXRT_TRY(t->copy_d2d(c->dev, o->data, dptr(c, v), o->nbytes)); /* caller's device tensor */
        } else if (on_dev) {
            int sk = k; /* the first index of this value: its staging buffer */
            bool first_host = true; /* no earlier host output of this value filled the stage */
            for (int q = 0; q < k; q++)
                if (g->outputs[q] == v) {
                    if (sk == k) sk = q;
                    if (!is_dev(out_into ? out_into[q] : NULL)) first_host = false;
                }
            bool staged = c->stage[sk] && c->stage_bytes[sk] == o->nbytes;
            /* Into the pinned buffer (copied out after the sync), once per value. */
            if (o->nbytes && !(staged && !first_host))
                MIXRT_TRY(t->copy_d2h(c->dev, staged ? c->stage[sk] : o->data, dptr(c, v), o->nbytes));
        } else if (odt == MIXRT_DTYPE_STRING) {
            /* A CPU layer's string output: the elements own their bytes, so a deep copy (a
             * memcpy shared them with host[v], freed below: a double free, found by the
             * conformance suite's Cast to STRING through a CUDA engine). */
            MIXRT_CHECK(e->ctx, !out_into, MIXRT_STATUS_UNSUPPORTED, "mixrt_engine_run_into: output '%s' is a "
                        "string tensor, which a CUDA engine returns only through mixrt_engine_run", g->values[v].name);
            mixrt_tensor_release(e->ctx, o);
            MIXRT_TRY(mixrt_tensor_copy(e->ctx, o, h));
        } else if (o->nbytes) {
            MIXRT_TRY(copy_any(c, o->data, is_dev(o), h->data, is_dev(h), o->nbytes));
        }
    }
    MIXRT_TRY(t->device_sync(c->dev));
    for (int k = 0; k < g->n_outputs; k++) {
        struct mixrt_tensor *o = out_into ? out_into[k] : outputs ? outputs[k] : NULL;
        int v = g->outputs[k], sk = k;
        for (int q = 0; q < k && sk == k; q++)
            if (g->outputs[q] == v) sk = q;
        if (o && !is_dev(o) && c->stage[sk] && c->stage_bytes[sk] == o->nbytes && o->nbytes)
            copy_out(o->data, c->stage[sk], o->nbytes);
    }
    if (c->profile) MIXRT_TRY(profile_collect(e));
fail:
    if (status != MIXRT_STATUS_OK && outputs)
        for (int k = 0; k < g->n_outputs; k++) {
            mixrt_tensor_destroy(e->ctx, outputs[k]);
            outputs[k] = NULL;
        }
    if (status != MIXRT_STATUS_OK && views) memset(views, 0, (size_t)g->n_outputs * sizeof(*views));
    if (status != MIXRT_STATUS_OK && pending) t->device_sync(c->dev);
    for (int v = 0; v < nv; v++) {
        mixrt_tensor_release(e->ctx, &host[v]);
        if (seq_set[v]) mixrt_seq_release(e->ctx, &seqs[v]);
    }
    mixrt_free(e->ctx, seq_set, nvz * sizeof(bool));
    mixrt_free(e->ctx, seqs, nvz * sizeof(*seqs));
    mixrt_free(e->ctx, host, nvz * sizeof(*host));
    return status;
}

mixrt_status mixrt_engine_cuda_run(struct mixrt_engine *e, size_t n_inputs, const char *const *names,
                                   const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs,
                                   struct mixrt_tensor *const *out_into, mixrt_engine_observer observe, void *user) {
    return cuda_run(e, n_inputs, names, inputs, outputs, out_into, NULL, observe, user);
}

/* ---- device tensors (public calls; mixrt_engine.h) ------------------------------------- */

static mixrt_status need_cuda(mixrt_engine_t e, const char *call) {
    if (!e) return MIXRT_STATUS_INVALID_ARGUMENT;
    if (e->cuda && e->cuda->dev) return MIXRT_STATUS_OK;
    return mixrt_error(e->ctx, MIXRT_STATUS_UNSUPPORTED, "%s: this engine runs on the CPU; device tensors need an "
                       "engine built with --backend cuda", call);
}

mixrt_status mixrt_engine_device_check_host(struct mixrt_engine *e, size_t n_inputs, const char *const *names,
                                            const struct mixrt_tensor *const *inputs,
                                            struct mixrt_tensor *const *outputs) {
    if (!e || e->cuda) return MIXRT_STATUS_OK;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    for (size_t a = 0; inputs && a < n_inputs; a++)
        if (is_dev(inputs[a]))
            return mixrt_error(e->ctx, MIXRT_STATUS_UNSUPPORTED, "engine run: input '%s' is a CUDA device tensor; this "
                               "engine runs on the CPU (device tensors need --backend cuda)",
                               names && names[a] ? names[a] : "?");
    for (int k = 0; outputs && k < g->n_outputs; k++)
        if (is_dev(outputs[k]))
            return mixrt_error(e->ctx, MIXRT_STATUS_UNSUPPORTED, "mixrt_engine_run_into: output '%s' is a CUDA device "
                               "tensor; this engine runs on the CPU (device tensors need --backend cuda)",
                               g->values[g->outputs[k]].name);
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_engine_run_device(mixrt_engine_t e, size_t n_inputs, const char *const *names,
                                     const struct mixrt_tensor *const *inputs, struct mixrt_tensor *views) {
    mixrt_status status = need_cuda(e, "mixrt_engine_run_device");
    if (status != MIXRT_STATUS_OK) return status;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    MIXRT_CHECK(e->ctx, views || g->n_outputs == 0, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_run_device: views is "
                "NULL");
    status = cuda_run(e, n_inputs, names, inputs, NULL, NULL, views, NULL, NULL);
fail:
    return status;
}

mixrt_status mixrt_engine_device_alloc(mixrt_engine_t e, mixrt_dtype dtype, int rank, const int64_t *dims,
                                       struct mixrt_tensor **out) {
    mixrt_status status = need_cuda(e, "mixrt_engine_device_alloc");
    if (status != MIXRT_STATUS_OK) return status;
    struct mixrt_tensor *t = NULL;
    size_t es = mixrt_dtype_size(dtype), nb = es;
    MIXRT_CHECK(e->ctx, out && rank >= 0 && rank <= MIXRT_MAX_RANK && (rank == 0 || dims), MIXRT_STATUS_INVALID_ARGUMENT,
                "mixrt_engine_device_alloc: rank %d (0..%d) or NULL dims/out", rank, MIXRT_MAX_RANK);
    MIXRT_CHECK(e->ctx, es && dtype != MIXRT_DTYPE_STRING, MIXRT_STATUS_UNSUPPORTED_DTYPE, "mixrt_engine_device_alloc: "
                "dtype %s has no fixed byte size", mixrt_dtype_name(dtype));
    for (int d = 0; d < rank; d++)
        MIXRT_CHECK(e->ctx, dims[d] >= 0 && mixrt_mul_size(nb, (size_t)dims[d], &nb), MIXRT_STATUS_INVALID_ARGUMENT,
                    "mixrt_engine_device_alloc: dim %d is %lld (negative or too large)", d, (long long)dims[d]);
    t = mixrt_calloc(e->ctx, 1, sizeof(*t));
    if (!t) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    t->dtype = dtype, t->rank = rank, t->nbytes = nb, t->capacity = nb, t->flags = MIXRT_TENSOR_DEVICE_CUDA;
    for (int d = 0; d < rank; d++) t->dims[d] = dims[d];
    if (nb) MIXRT_TRY(e->cuda->t->alloc(e->cuda->dev, nb, "device tensor", &t->data));
    *out = t;
    return MIXRT_STATUS_OK;
fail:
    if (t) mixrt_free(e->ctx, t, sizeof(*t));
    return status;
}

void mixrt_engine_device_free(mixrt_engine_t e, struct mixrt_tensor *t) {
    if (!e || !t) return;
    if (e->cuda && e->cuda->dev && t->data) e->cuda->t->free(e->cuda->dev, t->data, t->capacity);
    mixrt_free(e->ctx, t, sizeof(*t));
}

mixrt_status mixrt_engine_device_copy(mixrt_engine_t e, struct mixrt_tensor *dst, const struct mixrt_tensor *src) {
    mixrt_status status = need_cuda(e, "mixrt_engine_device_copy");
    if (status != MIXRT_STATUS_OK) return status;
    MIXRT_CHECK(e->ctx, dst && src, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_device_copy: NULL tensor");
    bool ok = dst->dtype == src->dtype && dst->rank == src->rank && dst->nbytes == src->nbytes;
    for (int d = 0; ok && d < src->rank; d++) ok = dst->dims[d] == src->dims[d];
    MIXRT_CHECK(e->ctx, ok && (src->data || !src->nbytes) && (dst->data || !dst->nbytes), MIXRT_STATUS_INVALID_ARGUMENT,
                "mixrt_engine_device_copy: dst and src differ in dtype, dims or nbytes, or have no data");
    MIXRT_TRY(copy_any(e->cuda, dst->data, is_dev(dst), src->data, is_dev(src), src->nbytes));
    MIXRT_TRY(e->cuda->t->device_sync(e->cuda->dev));
fail:
    return status;
}

void mixrt_engine_cuda_destroy(struct mixrt_engine_cuda *c) {
    if (!c) return;
    const struct mixrt_cuda_table *t = c->t;
    mixrt_context_t ctx = c->ctx;
    if (c->profile) profile_print(c);
    if (t && c->dev) {
        t->device_sync(c->dev);
        for (int k = 0; c->stage && c->g && k < c->g->n_outputs; k++)
            if (c->stage[k]) t->host_free(c->dev, c->stage[k]);
        if (c->graph) t->graph_destroy(c->graph);
        for (int i = 0; c->steps && i < c->n_nodes; i++) {
            if (c->steps[i].gemm) t->gemm_destroy(c->steps[i].gemm);
            if (c->steps[i].egemm) t->gemm_destroy(c->steps[i].egemm);
        }
        for (int i = 0; c->steps && i < c->n_nodes; i++) {
            if (c->steps[i].att_qk) t->gemm_destroy(c->steps[i].att_qk);
            if (c->steps[i].att_pv) t->gemm_destroy(c->steps[i].att_pv);
        }
        if (c->att_scratch) t->free(c->dev, c->att_scratch, c->att_scratch_bytes);
        if (c->cl3_scratch) t->free(c->dev, c->cl3_scratch, c->cl3_scratch_bytes);
        for (int i = 0; c->steps && i < c->n_nodes; i++) {
            if (c->steps[i].conv) t->conv_destroy(c->steps[i].conv);
            if (c->steps[i].wperm) t->free(c->dev, c->steps[i].wperm, c->steps[i].wperm_bytes);
            if (c->steps[i].table) t->free(c->dev, c->steps[i].table, c->steps[i].table_bytes ? c->steps[i].table_bytes : 1);
            if (c->steps[i].col) t->free(c->dev, c->steps[i].col, c->steps[i].col_bytes ? c->steps[i].col_bytes : 1);
            if (c->steps[i].wpad) t->free(c->dev, c->steps[i].wpad, c->steps[i].wpad_bytes);
            if (c->steps[i].ypad) t->free(c->dev, c->steps[i].ypad, c->steps[i].ypad_bytes);
            if (c->steps[i].wt) t->free(c->dev, c->steps[i].wt, c->steps[i].wt_bytes);
            if (c->steps[i].we) t->free(c->dev, c->steps[i].we, c->steps[i].we_bytes);
            if (c->steps[i].escr) t->free(c->dev, c->steps[i].escr, c->steps[i].escr_bytes);
        }
        for (int v = 0; c->wptr && v < c->n_values; v++)
            if (c->wptr[v]) t->free(c->dev, c->wptr[v], c->wbytes[v]);
        t->device_destroy(c->dev);
    }
    size_t nn = (size_t)(c->n_nodes > 0 ? c->n_nodes : 1), nv = (size_t)(c->n_values > 0 ? c->n_values : 1);
    mixrt_free(ctx, c->steps, nn * sizeof(*c->steps));
    mixrt_free(ctx, c->root, nv * sizeof(int));
    if (c->boff) mixrt_free(ctx, c->boff, nv * sizeof(size_t));
    if (c->pitch) mixrt_free(ctx, c->pitch, nv * sizeof(int64_t));
    mixrt_free(ctx, c->off, nv * sizeof(int64_t));
    mixrt_free(ctx, c->wptr, nv * sizeof(void *));
    mixrt_free(ctx, c->wbytes, nv * sizeof(size_t));
    mixrt_free(ctx, c->host_last, nv * sizeof(int));
    mixrt_free(ctx, c->xfers, (size_t)c->xfer_cap * sizeof(struct xfer));
    size_t no = (size_t)(c->g && c->g->n_outputs > 0 ? c->g->n_outputs : 1);
    if (c->stage) mixrt_free(ctx, c->stage, no * sizeof(void *));
    if (c->stage_bytes) mixrt_free(ctx, c->stage_bytes, no * sizeof(size_t));
    if (c->prof_ms) mixrt_free(ctx, c->prof_ms, ((size_t)c->n_nodes + 1) * sizeof(double));
    if (c->prof_tmp) mixrt_free(ctx, c->prof_tmp, ((size_t)c->n_nodes + 1) * sizeof(float));
    mixrt_free(ctx, c, sizeof(*c));
}

/* ---- views -------------------------------------------------------------------------------- */

const char *mixrt_engine_cuda_node_kernel(const struct mixrt_engine *e, int node) {
    if (!mixrt_engine_cuda_claims(e, node)) return NULL;
    return cu_kernel_names[e->cuda->steps[node].op];
}

const char *mixrt_engine_node_backend(mixrt_engine_t e, int node) {
    return mixrt_engine_cuda_claims(e, node) ? "cuda" : "cpu";
}

void mixrt_engine_cuda_counts(mixrt_engine_t e, int *segments, int *cuda_segments, int *h2d, int *d2h) {
    const struct mixrt_engine_cuda *c = e ? e->cuda : NULL;
    *segments = c ? c->segments : 0, *cuda_segments = c ? c->cuda_segments : 0;
    *h2d = c ? c->h2d : 0, *d2h = c ? c->d2h : 0;
}

void mixrt_engine_cuda_describe(mixrt_engine_t e, FILE *f) {
    const struct mixrt_engine_cuda *c = e ? e->cuda : NULL;
    if (!c || !c->steps) return;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    const struct mixrt_cuda_device_info *info = c->dev ? c->t->device_get_info(c->dev) : NULL;
    fprintf(f, "cuda: device %s (cc %d.%d); %d layers on CUDA, %d on the CPU; device arena %zu bytes, weights %zu "
            "bytes; CUDA graph: %s\n", info ? info->name : "?", info ? info->cc_major : 0, info ? info->cc_minor : 0,
            g->n_nodes - c->cpu_layers, c->cpu_layers, c->arena_bytes, c->weight_bytes,
            c->graph ? "captured"
            : c->cpu_layers > c->prologue ? "no (CPU layers in between)"
            : c->prologue ? "at the first run, after the CPU layers"
                          : "at the first run");
    fprintf(f, "copies per run: %d host-to-device (%zu bytes), %d device-to-host (%zu bytes)\n", c->h2d, c->h2d_bytes,
            c->d2h, c->d2h_bytes);
    if (c->rowgroups)
        fprintf(f, "row groups: %d product%s with unaligned output rows written in place by row groups (the edge "
                "columns by a small product and edge_scatter; MIXRT_CUDA_GEMM_ROWGROUPS=off pads instead)\n", c->rowgroups,
                c->rowgroups > 1 ? "s" : "");
    if (c->mask_rows)
        fprintf(f, "attention masks: %d Where%s of the causal constant and a padding row read as that row by %d Attention layer%s "
                "(MIXRT_CUDA_MASK_ROWS=off keeps the full masks)\n", c->mask_rows, c->mask_rows > 1 ? "s" : "",
                c->mask_rows_att, c->mask_rows_att > 1 ? "s" : "");
    if (c->gelu_approx)
        fprintf(f, "approximation: erf GELU as cuBLASLt's tanh-form GELU epilogue in %d layer%s (16-bit outputs; at most "
                "4.7e-4 absolute from erf; MIXRT_CUDA_GELU=exact keeps the erf form)\n", c->gelu_approx,
                c->gelu_approx > 1 ? "s" : "");
    fprintf(f, "segments (%d, %d on CUDA):\n", c->segments, c->cuda_segments);
    int start = 0;
    for (int s = 1; s <= g->n_nodes; s++) {
        bool on_prev = c->steps[g->order[s - 1]].op != CU_NONE;
        if (s < g->n_nodes && (c->steps[g->order[s]].op != CU_NONE) == on_prev) continue;
        int h2d = 0, d2h = 0;
        for (int x = 0; x < c->n_xfers; x++)
            if (c->xfers[x].step >= start && c->xfers[x].step < s) {
                if (c->xfers[x].h2d) h2d++;
                else d2h++;
            }
        fprintf(f, "  %-4s layers %d-%d (%d)%s", on_prev ? "cuda" : "cpu", start, s - 1, s - start,
                on_prev ? "" : "  ");
        if (h2d || d2h) fprintf(f, "  copies in: %d H2D, %d D2H", h2d, d2h);
        if (!on_prev) fprintf(f, "  ops: %s%s", g->nodes[g->order[start]].op_type, s - start > 1 ? ", ..." : "");
        fprintf(f, "\n");
        start = s;
    }
}
