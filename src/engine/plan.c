/* plan.c - engines to and from plan files (container: plan_file.h). Sections:
 *   GRAPH    the planned graph as an ONNX ModelProto, nodes in execution order, weights
 *            as external data at location "@weights" (offsets into WEIGHTS)
 *   WEIGHTS  every constant's bytes, already in its planned dtype, 64-byte aligned
 *   KERNELS  text: "mixrt-kernels 1 <n>\n" then one "<kernel> <time_ns>\n" per node,
 *            in the GRAPH's node order
 *   META     text key=value lines: the build options, for inspect
 *   PACKED   (optional) per node whose kernel packs its constant weights into a library
 *            layout (kernels.h, mixrt_cpu_kernel_packing): those bytes and their layout, so a
 *            load adopts them in place instead of reordering again (layout: below)
 * Loading checks the container, the mixrt version and the target, imports the graph with
 * the weights borrowed from the mapping, and checks every kernel name against this build
 * before preparing anything. A packed blob is offered to its node's prepare only when its
 * node, kernel, library, target and descriptor size match; the kernel then takes it only if
 * it is exactly the layout its primitive wants. Anything else is ignored with a note and the
 * kernel reorders from WEIGHTS, which therefore stays complete. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/engine_cuda.h"
#include "engine/plan_file.h"
#include "engine/tactics.h"
#include "onnx/export.h"
#include "onnx/model_impl.h"
#include "onnx/tensorproto.h"

#define WEIGHTS_LOCATION "@weights"

void mixrt_engine_plan_release(struct mixrt_engine *e) {
    if (!e->plan) return;
    mixrt_plan_close(e->ctx, e->plan);
    mixrt_free(e->ctx, e->plan, sizeof(struct mixrt_plan_file));
    e->plan = NULL;
}

/* ---- writing into a growable byte buffer (core.h, mixrt_buf) ------------------------------ */

static mixrt_status buf_printf(struct mixrt_buf *b, const char *fmt, ...) MIXRT_PRINTF(2, 3);
static mixrt_status buf_printf(struct mixrt_buf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return MIXRT_STATUS_INTERNAL;
    size_t len = (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1;
    mixrt_status status = mixrt_buf_reserve(b, len);
    if (status != MIXRT_STATUS_OK) return status;
    memcpy(b->p + b->n, tmp, len);
    b->n += len;
    return MIXRT_STATUS_OK;
}

static mixrt_status put_weight(void *user, const struct mixrt_tensor *t, uint64_t *offset) {
    struct mixrt_buf *b = user;
    size_t pad = (64 - b->n % 64) % 64;
    mixrt_status status = mixrt_buf_reserve(b, pad + t->nbytes);
    if (status != MIXRT_STATUS_OK) return mixrt_error(b->ctx, status, "out of memory writing plan weights");
    memset(b->p + b->n, 0, pad);
    b->n += pad;
    *offset = b->n;
    if (t->nbytes) memcpy(b->p + b->n, t->data, t->nbytes);
    b->n += t->nbytes;
    return MIXRT_STATUS_OK;
}

/* ---- PACKED section ---------------------------------------------------------------------
 * Little-endian; offsets from the section start (itself 64-aligned in the file):
 *     0  u32 entry count E
 *     4  u32 entry size, 104
 *     8  u64 reserved, 0
 *    16  E entries of 104 bytes:
 *          +0  u32 node index (in the GRAPH's node order, as KERNELS)
 *          +4  u32 reserved, 0
 *          +8  six (u64 offset, u64 length) ranges: node name, kernel name, library
 *              ("onednn 2.6.0 <hash> isa <n>"), target (mixrt_cpu_target() of the writer),
 *              layout descriptor (the bytes of a dnnl_memory_desc_t), packed bytes
 *  then the strings and descriptors, then each entry's packed bytes at a multiple of 64
 *  (entries whose nodes share one packed copy name the same range).
 * Strings are printable ASCII without a NUL. Every range lies inside the section. */
#define PACKED_HEAD 16u
#define PACKED_ENTRY 104u
#define PACKED_RANGES 6
#define PACKED_STR_MAX 4096u
enum { PR_NAME, PR_KERNEL, PR_LIB, PR_TARGET, PR_LAYOUT, PR_DATA };

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

struct packed_item {
    int index; /* in the GRAPH's node order */
    const char *name, *kernel;
    struct mixrt_cpu_packed p;
    uint64_t data_off; /* where its packed bytes went */
};

/* Appends n bytes (may be 0) to b at the next multiple of align; *at gets the offset. */
static mixrt_status buf_put(struct mixrt_buf *b, const void *data, size_t n, size_t align, uint64_t *at) {
    size_t pad = (align - b->n % align) % align;
    mixrt_status status = mixrt_buf_reserve(b, pad + n);
    if (status != MIXRT_STATUS_OK) return status;
    memset(b->p + b->n, 0, pad);
    b->n += pad;
    *at = b->n;
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    return MIXRT_STATUS_OK;
}

/* The PACKED section of e into out (left empty when no kernel holds packed weights). */
static mixrt_status make_packed(struct mixrt_engine *e, struct mixrt_buf *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    size_t cap = (size_t)(g->n_nodes > 0 ? g->n_nodes : 1), n = 0;
    struct packed_item *items = mixrt_calloc(e->ctx, cap, sizeof(*items));
    if (!items) return MIXRT_STATUS_OUT_OF_MEMORY;
    const char *target = mixrt_cpu_target();
    for (int s = 0; s < g->n_nodes; s++) {
        int ni = g->order[s];
        const struct mixrt_cpu_kernel *k = e->kernels[ni];
        const struct mixrt_cpu_kernel_packing *h = k ? mixrt_cpu_kernel_packing_find(k->name) : NULL;
        if (!h || !e->states[ni] || !h->get(e->states[ni], &items[n].p)) continue;
        if (strlen(g->nodes[ni].name) > PACKED_STR_MAX) continue; /* the loader would refuse it */
        items[n].index = s;
        items[n].name = g->nodes[ni].name;
        items[n].kernel = k->name;
        n++;
    }
    if (!n) goto fail;
    uint8_t head[PACKED_HEAD] = {0};
    put_le(head, n, 4);
    put_le(head + 4, PACKED_ENTRY, 4);
    uint64_t at;
    MIXRT_TRY(buf_put(out, head, sizeof head, 1, &at));
    size_t table = out->n;
    MIXRT_TRY(mixrt_buf_reserve(out, n * PACKED_ENTRY));
    memset(out->p + table, 0, n * PACKED_ENTRY);
    out->n += n * PACKED_ENTRY;
    for (size_t i = 0; i < n; i++) {
        struct packed_item *it = &items[i];
        const void *src[PACKED_RANGES] = {it->name, it->kernel, it->p.lib, target, it->p.layout, it->p.data};
        size_t len[PACKED_RANGES] = {strlen(it->name), strlen(it->kernel), strlen(it->p.lib), strlen(target),
                                     it->p.layout_size, it->p.size};
        uint64_t off[PACKED_RANGES];
        /* Nodes sharing one packed copy (weight-tied layers, fused_transformer.c) point at
         * the same bytes: written once, every entry's range names them (the loader maps the
         * file, so they stay shared there too). */
        size_t twin = i;
        for (size_t j = 0; j < i && twin == i; j++)
            if (items[j].p.data == it->p.data && items[j].p.size == it->p.size) twin = j;
        for (int r = 0; r < PACKED_RANGES; r++) {
            if (r == PR_DATA && twin != i) {
                off[r] = items[twin].data_off;
                continue;
            }
            MIXRT_TRY(buf_put(out, src[r], len[r], r == PR_DATA ? MIXRT_PLAN_ALIGN : 1, &off[r]));
        }
        it->data_off = off[PR_DATA];
        uint8_t *ent = out->p + table + i * PACKED_ENTRY; /* after the puts: they may move the buffer */
        put_le(ent, (uint64_t)it->index, 4);
        for (int r = 0; r < PACKED_RANGES; r++) {
            put_le(ent + 8 + 16 * r, off[r], 8);
            put_le(ent + 16 + 16 * r, len[r], 8);
        }
    }
fail:
    if (status != MIXRT_STATUS_OK) mixrt_error(e->ctx, status, "out of memory writing the plan's packed weights");
    mixrt_free(e->ctx, items, cap * sizeof(*items));
    return status;
}

static const char *prec_list(unsigned bits, char *out, size_t size) {
    snprintf(out, size, "fp32%s%s", bits & MIXRT_PRECISION_BF16 ? ",bf16" : "", bits & MIXRT_PRECISION_FP16 ? ",fp16" : "");
    return out;
}

static void fill_ident(struct mixrt_plan_ident *id, const struct mixrt_engine *e) {
    memset(id, 0, sizeof(*id));
    snprintf(id->build_id, sizeof(id->build_id), "%.32s", e->build_id);
    snprintf(id->target, sizeof(id->target), "%.128s", e->target);
    snprintf(id->mixrt_version, sizeof(id->mixrt_version), "%s", mixrt_version());
}

/* The plan sections of e: the GRAPH bytes in *gbuf, the others in the buffers (the caller
 * frees them all). */
static mixrt_status make_sections(struct mixrt_engine *e, struct mixrt_buf *weights, struct mixrt_buf *kernels, struct mixrt_buf *meta,
                                  uint8_t **gbuf, size_t *glen) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    struct mixrt_onnx_export_opts xo = {.put_weight = put_weight, .user = weights, .blob_location = WEIGHTS_LOCATION,
                                        .producer_name = "mixrt", .skip_unused_initializers = true};
    MIXRT_TRY(mixrt_onnx_export(e->ctx, g, &xo, gbuf, glen));
    MIXRT_TRY(buf_printf(kernels, "mixrt-kernels 1 %d\n", g->n_nodes));
    for (int s = 0; s < g->n_nodes; s++) {
        int ni = g->order[s];
        MIXRT_TRY(buf_printf(kernels, "%s %.0f\n", mixrt_engine_node_kernel(e, ni), e->time_ns[ni]));
    }
    char pl[32];
    const struct mixrt_build_options *o = &e->opts;
    MIXRT_TRY(buf_printf(meta, "backend=%s\nprecision=%s\ntyping=%s\nconstraints=%s\nunsupported_dtype=%s\n"
                         "build_seconds=%.3f\n", o->backend ? o->backend : "cpu", prec_list(o->precisions, pl, sizeof(pl)),
                         o->strongly_typed ? "strong" : "weak",
                         o->constraints == MIXRT_CONSTRAINTS_OBEY     ? "obey"
                         : o->constraints == MIXRT_CONSTRAINTS_PREFER ? "prefer"
                                                                      : "none",
                         o->unsupported_dtype == MIXRT_UNSUPPORTED_DTYPE_FALLBACK ? "fallback" : "error",
                         e->build_seconds));
    for (size_t i = 0; i < o->n_layer_precisions; i++) {
        const char *t = o->layer_precisions[i].dtype == MIXRT_DTYPE_BF16  ? "bf16"
                        : o->layer_precisions[i].dtype == MIXRT_DTYPE_F16 ? "fp16"
                                                                          : "fp32";
        /* Globs with control bytes are left out of the informational text. */
        bool clean = true;
        for (const char *p = o->layer_precisions[i].glob; *p; p++) clean &= (unsigned char)*p >= 0x20;
        if (clean) MIXRT_TRY(buf_printf(meta, "layer_precision=%.900s:%s\n", o->layer_precisions[i].glob, t));
    }
fail:
    return status;
}

mixrt_status mixrt_engine_save(mixrt_engine_t e, const char *path) {
    if (!e) return MIXRT_STATUS_INVALID_ARGUMENT;
    if (!path) return mixrt_error(e->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_save: NULL path");
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_buf weights = {e->ctx, NULL, 0, 0}, kernels = {e->ctx, NULL, 0, 0}, meta = {e->ctx, NULL, 0, 0};
    struct mixrt_buf packed = {e->ctx, NULL, 0, 0};
    uint8_t *gbuf = NULL;
    size_t glen = 0;
    MIXRT_TRY(mixrt_engine_weights_restore(e)); /* WEIGHTS stays complete (see the top) */
    MIXRT_TRY(make_sections(e, &weights, &kernels, &meta, &gbuf, &glen));
    MIXRT_TRY(make_packed(e, &packed));
    struct mixrt_plan_ident id;
    fill_ident(&id, e);
    /* PACKED last: its blobs are the bulk after WEIGHTS, and a plan without any has none. */
    struct mixrt_plan_section sec[5] = {
        {MIXRT_PLAN_META, meta.p, meta.n},
        {MIXRT_PLAN_GRAPH, gbuf, glen},
        {MIXRT_PLAN_KERNELS, kernels.p, kernels.n},
        {MIXRT_PLAN_WEIGHTS, weights.p, weights.n},
        {MIXRT_PLAN_PACKED, packed.p, packed.n},
    };
    MIXRT_TRY(mixrt_plan_write(e->ctx, path, &id, sec, packed.n ? 5 : 4));
fail:
    if (gbuf) mixrt_free(e->ctx, gbuf, glen);
    mixrt_buf_free(&packed);
    mixrt_buf_free(&weights);
    mixrt_buf_free(&kernels);
    mixrt_buf_free(&meta);
    return status;
}

/* ---- load -------------------------------------------------------------------------------- */

/* Every feature the plan's target names must be present here. */
static mixrt_status check_target(mixrt_context_t ctx, const char *what, const char *plan_target) {
    const char *here = mixrt_cpu_target();
    if (strncmp(plan_target, "cpu ", 4))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "'%s' was built for target '%s'; this machine's target is "
                           "'%s' (rebuild the plan with mixrt build)", what, plan_target, here);
    const char *p = plan_target + 4;
    while (*p) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, " ");
        if (!len) break;
        bool found = false;
        const char *h = here + 4;
        while (*h && !found) {
            while (*h == ' ') h++;
            size_t hl = strcspn(h, " ");
            found = hl == len && !strncmp(h, p, len);
            h += hl;
        }
        if (!found)
            return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "'%s' was built for target '%s'; this machine ('%s') "
                               "lacks %.*s (rebuild the plan with mixrt build)", what, plan_target, here, (int)len, p);
        p += len;
    }
    return MIXRT_STATUS_OK;
}

static void parse_meta(struct mixrt_engine *e, const char *text, size_t size) {
    char line[1024];
    size_t i = 0;
    while (i < size) {
        size_t j = i;
        while (j < size && text[j] != '\n') j++;
        size_t len = j - i < sizeof(line) - 1 ? j - i : sizeof(line) - 1;
        memcpy(line, text + i, len);
        line[len] = 0;
        i = j + 1;
        if (!strncmp(line, "precision=", 10)) {
            unsigned bits;
            if (mixrt_precisions_parse(NULL, line + 10, &bits) == MIXRT_STATUS_OK) e->opts.precisions = bits;
        } else if (!strcmp(line, "typing=strong")) {
            e->opts.strongly_typed = 1;
        } else if (!strcmp(line, "constraints=obey")) {
            e->opts.constraints = MIXRT_CONSTRAINTS_OBEY;
        } else if (!strcmp(line, "constraints=prefer")) {
            e->opts.constraints = MIXRT_CONSTRAINTS_PREFER;
        } else if (!strcmp(line, "unsupported_dtype=fallback")) {
            e->opts.unsupported_dtype = MIXRT_UNSUPPORTED_DTYPE_FALLBACK;
        } else if (!strcmp(line, "backend=cuda")) {
            e->opts.backend = "cuda"; /* static: the options' strings are never freed one by one */
        } else if (!strncmp(line, "build_seconds=", 14)) {
            e->build_seconds = strtod(line + 14, NULL);
        }
    }
}

/* One PACKED entry, its ranges checked against the section. */
struct packed_offer {
    bool present;
    const char *str[4]; /* name, kernel, lib, target: not NUL-terminated */
    size_t len[4];
    struct mixrt_cpu_packed p;
};

static bool printable_bytes(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e) return false;
    return true;
}

/* Parses the PACKED section into offers[0..n_nodes). INVALID_MODEL, naming the entry, for
 * any count, offset or length outside the section, a second entry for one node, or a
 * malformed string: the section is checksummed, so that is a crafted or broken writer. */
static mixrt_status parse_packed(mixrt_context_t ctx, const char *what, const struct mixrt_plan_section *sp,
                                 int n_nodes, struct packed_offer *offers) {
    mixrt_status status = MIXRT_STATUS_OK;
    const uint8_t *b = sp->data;
    uint64_t size = sp->size;
    MIXRT_CHECK(ctx, size >= PACKED_HEAD, MIXRT_STATUS_INVALID_MODEL,
                "'%s': PACKED section of %llu bytes is shorter than its %u-byte head (the file is corrupt)", what,
                (unsigned long long)size, PACKED_HEAD);
    uint64_t count = get_le(b, 4), esize = get_le(b + 4, 4), reserved = get_le(b + 8, 8);
    MIXRT_CHECK(ctx, esize == PACKED_ENTRY && reserved == 0, MIXRT_STATUS_INVALID_MODEL,
                "'%s': PACKED section has entry size %llu and reserved 0x%llx; expected %u and 0 (the file is "
                "corrupt)",
                what, (unsigned long long)esize, (unsigned long long)reserved, PACKED_ENTRY);
    MIXRT_CHECK(ctx, count <= (size - PACKED_HEAD) / PACKED_ENTRY, MIXRT_STATUS_INVALID_MODEL,
                "'%s': PACKED section lists %llu entries; its %llu bytes hold at most %llu (the file is corrupt)", what,
                (unsigned long long)count, (unsigned long long)size,
                (unsigned long long)((size - PACKED_HEAD) / PACKED_ENTRY));
    static const char *const range_names[PACKED_RANGES] = {"node name", "kernel name", "library", "target", "layout",
                                                           "packed bytes"};
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *ent = b + PACKED_HEAD + i * PACKED_ENTRY;
        uint64_t idx = get_le(ent, 4), r0 = get_le(ent + 4, 4);
        MIXRT_CHECK(ctx, r0 == 0, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': PACKED entry %llu has reserved 0x%llx, expected 0 (the file is corrupt)", what,
                    (unsigned long long)i, (unsigned long long)r0);
        MIXRT_CHECK(ctx, idx < (uint64_t)n_nodes, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': PACKED entry %llu is for layer %llu; the graph has %d (the file is corrupt)", what,
                    (unsigned long long)i, (unsigned long long)idx, n_nodes);
        struct packed_offer *o = &offers[idx];
        MIXRT_CHECK(ctx, !o->present, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': PACKED entry %llu is a second one for layer %llu (the file is corrupt)", what,
                    (unsigned long long)i, (unsigned long long)idx);
        const uint8_t *at[PACKED_RANGES];
        uint64_t len[PACKED_RANGES];
        for (int r = 0; r < PACKED_RANGES; r++) {
            uint64_t off = get_le(ent + 8 + 16 * r, 8);
            len[r] = get_le(ent + 16 + 16 * r, 8);
            MIXRT_CHECK(ctx, off <= size && len[r] <= size - off, MIXRT_STATUS_INVALID_MODEL,
                        "'%s': PACKED entry %llu: its %s (%llu bytes at %llu) ends past the section (%llu bytes; the "
                        "file is corrupt)",
                        what, (unsigned long long)i, range_names[r], (unsigned long long)len[r],
                        (unsigned long long)off, (unsigned long long)size);
            MIXRT_CHECK(ctx, r >= PR_LAYOUT || (len[r] <= PACKED_STR_MAX && printable_bytes(b + off, (size_t)len[r])),
                        MIXRT_STATUS_INVALID_MODEL,
                        "'%s': PACKED entry %llu: its %s is not printable text of at most %u bytes (the file is "
                        "corrupt)",
                        what, (unsigned long long)i, range_names[r], PACKED_STR_MAX);
            MIXRT_CHECK(ctx, r != PR_DATA || off % MIXRT_PLAN_ALIGN == 0, MIXRT_STATUS_INVALID_MODEL,
                        "'%s': PACKED entry %llu: its packed bytes start at %llu, not a multiple of %u (the file is "
                        "corrupt)",
                        what, (unsigned long long)i, (unsigned long long)off, MIXRT_PLAN_ALIGN);
            at[r] = b + off;
        }
        o->present = true;
        for (int r = 0; r < 4; r++) o->str[r] = (const char *)at[r], o->len[r] = (size_t)len[r];
        o->p.layout = at[PR_LAYOUT];
        o->p.layout_size = (size_t)len[PR_LAYOUT];
        o->p.data = at[PR_DATA];
        o->p.size = (size_t)len[PR_DATA];
    }
fail:
    return status;
}

static bool same_str(const char *s, size_t n, const char *z) { return strlen(z) == n && !memcmp(s, z, n); }

/* The blob o for layer nd run by kernel kname, when this build can use it; else NULL with
 * the reason in why. */
static const struct mixrt_cpu_packed *packed_usable(struct packed_offer *o, const struct mixrt_node *nd,
                                                    const char *kname, char *why, size_t why_size) {
    const struct mixrt_cpu_kernel_packing *h = mixrt_cpu_kernel_packing_find(kname);
    const char *target = mixrt_cpu_target();
    if (!same_str(o->str[0], o->len[0], nd->name) || !same_str(o->str[1], o->len[1], kname))
        snprintf(why, why_size, "they were packed for layer '%.*s' with kernel '%.*s'", (int)o->len[0], o->str[0],
                 (int)o->len[1], o->str[1]);
    else if (!h)
        snprintf(why, why_size, "kernel '%s' takes no packed weights in this build", kname);
    else if (!same_str(o->str[2], o->len[2], h->lib()))
        snprintf(why, why_size, "packed by '%.*s', this is '%s'", (int)o->len[2], o->str[2], h->lib());
    else if (!same_str(o->str[3], o->len[3], target))
        snprintf(why, why_size, "packed on target '%.*s', this is '%s'", (int)o->len[3], o->str[3], target);
    else if (o->p.layout_size != h->layout_size)
        snprintf(why, why_size, "a %zu-byte layout descriptor, this build's is %zu bytes", o->p.layout_size,
                 h->layout_size);
    else {
        o->p.lib = h->lib();
        return &o->p;
    }
    return NULL;
}

static mixrt_status load_from(struct mixrt_engine *e, const char *what) {
    mixrt_context_t ctx = e->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_plan_file *pf = e->plan;
    struct packed_offer *offers = NULL;
    size_t n_offers = 0;
    int n_blobs = 0, n_adopted = 0;
    char ver[40];
    snprintf(ver, sizeof(ver), "%s", mixrt_version());
    MIXRT_CHECK(ctx, !strcmp(pf->ident.mixrt_version, ver), MIXRT_STATUS_UNSUPPORTED,
                "'%s' was built by mixrt %s; this is mixrt %s (rebuild the plan with mixrt build)", what,
                pf->ident.mixrt_version, ver);
    /* A cuda plan names the GPU's compute capability; it is checked against the GPU once
     * the device is open (below). */
    bool cuda = !strncmp(pf->ident.target, "cuda ", 5);
    if (!cuda) MIXRT_TRY(check_target(ctx, what, pf->ident.target));
    snprintf(e->target, sizeof(e->target), "%s", pf->ident.target);
    snprintf(e->build_id, sizeof(e->build_id), "%s", pf->ident.build_id);
    const struct mixrt_plan_section *sg = mixrt_plan_find(pf, MIXRT_PLAN_GRAPH);
    const struct mixrt_plan_section *sw = mixrt_plan_find(pf, MIXRT_PLAN_WEIGHTS);
    const struct mixrt_plan_section *sk = mixrt_plan_find(pf, MIXRT_PLAN_KERNELS);
    const struct mixrt_plan_section *sm = mixrt_plan_find(pf, MIXRT_PLAN_META);
    MIXRT_CHECK(ctx, sg && sw && sk && sm, MIXRT_STATUS_INVALID_MODEL, "'%s' lacks a required section", what);
    MIXRT_CHECK(ctx, sg->size <= SIZE_MAX && sw->size <= SIZE_MAX, MIXRT_STATUS_INVALID_MODEL, "'%s' is too large",
                what);
    struct mixrt_external_policy ext;
    memset(&ext, 0, sizeof(ext));
    ext.blob = sw->data;
    ext.blob_size = sw->size;
    ext.blob_location = WEIGHTS_LOCATION;
    status = mixrt_model_load_buffer_ext(ctx, sg->data, (size_t)sg->size, what, &ext, false, &e->model);
    if (status != MIXRT_STATUS_OK) {
        mixrt_error_prefix(ctx, "'%s': GRAPH section", what);
        goto fail;
    }
    parse_meta(e, sm->data, (size_t)sm->size);
    MIXRT_TRY(mixrt_engine_alloc_nodes(e));
    const struct mixrt_graph *g = mixrt_model_graph(e->model);
    const struct mixrt_plan_section *sp = mixrt_plan_find(pf, MIXRT_PLAN_PACKED);
    if (sp) {
        MIXRT_CHECK(ctx, sp->size <= SIZE_MAX, MIXRT_STATUS_INVALID_MODEL, "'%s' is too large", what);
        n_offers = (size_t)(g->n_nodes > 0 ? g->n_nodes : 1);
        offers = mixrt_calloc(ctx, n_offers, sizeof(*offers));
        if (!offers) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        MIXRT_TRY(parse_packed(ctx, what, sp, g->n_nodes, offers));
    }
    /* Kernel table. */
    const char *k = sk->data, *end = k + sk->size;
    int n = -1, used = 0;
    MIXRT_CHECK(ctx, sk->size < 64 * 1024 * 1024 && sscanf(k, "mixrt-kernels 1 %d%n", &n, &used) == 1 &&
                         memchr(k, '\n', (size_t)sk->size),
                MIXRT_STATUS_INVALID_MODEL, "'%s': KERNELS section does not start with 'mixrt-kernels 1 <count>'", what);
    MIXRT_CHECK(ctx, n == g->n_nodes, MIXRT_STATUS_INVALID_MODEL, "'%s': KERNELS lists %d layers, the graph has %d",
                what, n, g->n_nodes);
    k = (const char *)memchr(k, '\n', (size_t)sk->size) + 1;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *nd = &g->nodes[i];
        const char *nl = memchr(k, '\n', (size_t)(end - k));
        MIXRT_CHECK(ctx, nl, MIXRT_STATUS_INVALID_MODEL, "'%s': KERNELS ends before layer %d ('%s')", what, i,
                    nd->name);
        char line[256];
        size_t len = (size_t)(nl - k);
        MIXRT_CHECK(ctx, len < sizeof(line), MIXRT_STATUS_INVALID_MODEL, "'%s': KERNELS line %d is too long", what,
                    i + 2);
        memcpy(line, k, len);
        line[len] = 0;
        k = nl + 1;
        char kname[128];
        double ns = -1;
        MIXRT_CHECK(ctx, sscanf(line, "%127s %lf", kname, &ns) == 2, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': KERNELS line %d is malformed", what, i + 2);
        const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find(kname, nd->domain, nd->op_type);
        /* A cuda plan names the CUDA kernel of a GPU layer; the layers are assigned again
         * below, and the CPU side keeps the reference kernel for them. */
        if (!kern && (!strcmp(kname, "ref") || (cuda && !strncmp(kname, "cuda_", 5))))
            kern = mixrt_cpu_kernel_find("ref", "", "");
        MIXRT_CHECK(ctx, kern, MIXRT_STATUS_UNSUPPORTED, "'%s': layer '%s' (%s) uses kernel '%s', which this build "
                    "of mixrt does not have (rebuild the plan with mixrt build)", what, nd->name, nd->op_type, kname);
        char why[256] = "";
        MIXRT_CHECK(ctx, kern->supports(g, nd, why, sizeof(why)), MIXRT_STATUS_INVALID_MODEL,
                    "'%s': layer '%s' (%s): kernel '%s' cannot run it: %s", what, nd->name, nd->op_type, kname, why);
        e->time_ns[i] = ns;
        /* The packed weights, when usable here, are offered to this prepare only. */
        const struct mixrt_cpu_packed *offer = NULL;
        char pwhy[384] = "";
        if (offers && offers[i].present) {
            n_blobs++;
            offer = packed_usable(&offers[i], nd, kern->name, pwhy, sizeof(pwhy));
        }
        mixrt_cpu_packed_offer(nd, offer);
        status = mixrt_engine_prepare_node(e, i, kern);
        int took = offer ? mixrt_cpu_packed_outcome(pwhy, sizeof(pwhy)) : 0;
        mixrt_cpu_packed_offer(NULL, NULL);
        MIXRT_TRY(status);
        if (offers && offers[i].present && took == 1) n_adopted++;
        else if (offers && offers[i].present)
            mixrt_log(ctx, MIXRT_LOG_NOTE, "'%s': layer '%s': packed weights ignored (%s); kernel %s packs them again",
                      what, nd->name, took < 0 ? "its kernel did not pack at load, the shapes are not static" : pwhy,
                      kern->name);
    }
    if (!cuda) MIXRT_TRY(mixrt_engine_bodies_prepare(e)); /* a CUDA engine runs bodies on the reference */
    if (n_blobs)
        mixrt_log(ctx, MIXRT_LOG_VERBOSE, "'%s': %d of %d layers' packed weights adopted", what, n_adopted, n_blobs);
    MIXRT_CHECK(ctx, k == end, MIXRT_STATUS_INVALID_MODEL, "'%s': KERNELS has data after the last layer", what);
    MIXRT_CHECK(ctx, cuda == (e->opts.backend && !strcmp(e->opts.backend, "cuda")), MIXRT_STATUS_INVALID_MODEL,
                "'%s': its target '%s' and its META backend disagree", what, pf->ident.target);
    if (cuda) {
        /* The CUDA layers are decided again from the planned graph (the same rules give the
         * same layers) and their GEMM algorithms re-tuned on this GPU. */
        char planned[sizeof(e->target)];
        snprintf(planned, sizeof(planned), "%s", e->target);
        MIXRT_TRY(mixrt_engine_cuda_open(e));
        size_t cc = strcspn(planned + 5, " ") + 5; /* "cuda sm_90" */
        MIXRT_CHECK(ctx, !strncmp(planned, e->target, cc) && (e->target[cc] == ' ' || !e->target[cc]),
                    MIXRT_STATUS_UNSUPPORTED, "'%s' was built for target '%s'; this GPU is '%s' (rebuild the plan "
                    "with mixrt build --backend cuda)", what, planned, e->target);
        MIXRT_TRY(mixrt_engine_cuda_assign(e));
        MIXRT_TRY(mixrt_engine_cuda_prepare(e));
    }
fail:
    mixrt_cpu_packed_offer(NULL, NULL);
    if (offers) mixrt_free(ctx, offers, n_offers * sizeof(*offers));
    return status;
}

static mixrt_status load_common(mixrt_context_t ctx, const char *path, const void *data, size_t size,
                                mixrt_engine_t *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_engine *e = NULL;
    MIXRT_TRY(mixrt_engine_alloc(ctx, &e));
    e->plan = mixrt_calloc(ctx, 1, sizeof(struct mixrt_plan_file));
    if (!e->plan) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    if (data) MIXRT_TRY(mixrt_plan_open_buffer(ctx, data, size, path, e->plan));
    else MIXRT_TRY(mixrt_plan_open(ctx, path, e->plan));
    MIXRT_TRY(load_from(e, path));
    *out = e;
    return MIXRT_STATUS_OK;
fail:
    mixrt_engine_destroy(e);
    return status;
}

mixrt_status mixrt_engine_load(mixrt_context_t ctx, const char *path, mixrt_engine_t *out) {
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    if (!path || !out) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_load: NULL argument");
    mixrt_context_cache_pause(ctx, true); /* the load's temporaries are not kept for reuse */
    mixrt_status status = load_common(ctx, path, NULL, 0, out);
    mixrt_context_cache_pause(ctx, false);
    return status;
}

mixrt_status mixrt_engine_load_buffer(mixrt_context_t ctx, const void *data, size_t size, const char *what,
                                      mixrt_engine_t *out) {
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    if ((!data && size) || !out)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_engine_load_buffer: NULL argument");
    mixrt_context_cache_pause(ctx, true);
    mixrt_status status = load_common(ctx, what ? what : "plan buffer", data ? data : "", size, out);
    mixrt_context_cache_pause(ctx, false);
    return status;
}
