/* test_plan_packed.c - packed oneDNN weights stored in plan files (PACKED section, format
 * version 2): a saved plan loads without a single weight reorder (the process-wide counter
 * mixrt_cpu_weight_reorders) and runs bit-identically to the engine built in memory (CNN with
 * FusedConv, transformer with FusedMatMul; f32 and fp32+bf16 builds), also from an unaligned
 * buffer (the blobs are copied then, still not reordered). Blobs from another library, with
 * another layout or size are ignored with a note and the kernel reorders again (same
 * outputs); out-of-bounds entries are refused; version-1 plans (no PACKED) still load.
 * Plain Conv (dnnl_conv) through its hooks directly, against the reference kernel.
 * Models: scripts/make_examples.py, run into a temporary folder. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/cpu/kernels.h"
#include "core/core.h"
#include "engine/engine_impl.h"
#include "engine/plan_file.h"
#include "engine/tactics.h"
#include "kernel_harness.h"
#include "mixrt/mixrt_engine.h"
#include "testutil.h"
#ifdef MIXRT_HAVE_DNNL
#include "backend/cpu/dnnl_impl.h"
#endif

static mixrt_context_t ctx;
static char dir[64];

#ifdef MIXRT_HAVE_DNNL

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static void put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- stderr capture, for the notes ---- */
static int saved_fd = -1;
static char capture_path[128];
static void capture_begin(void) {
    fflush(stderr);
    snprintf(capture_path, sizeof capture_path, "%s/stderr.txt", dir);
    int fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    saved_fd = dup(2);
    dup2(fd, 2);
    close(fd);
}
static char *capture_end(void) {
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    size_t n = 0;
    char *s = (char *)read_file(capture_path, &n);
    if (s) s[n] = 0;
    unlink(capture_path);
    return s ? s : calloc(1, 1);
}

/* ---- engines ---- */

static int make_inputs(mixrt_engine_t e, struct mixrt_tensor **in, const char **names, uint64_t seed) {
    int n = 0;
    tu_seed(seed);
    for (size_t i = 0; i < mixrt_engine_input_count(e) && n < 16; i++) {
        struct mixrt_value_info vi;
        mixrt_engine_get_input(e, i, &vi);
        if (vi.has_initializer) continue;
        int64_t dims[MIXRT_MAX_RANK];
        for (int d = 0; d < vi.rank; d++) dims[d] = vi.dims[d] >= 0 ? vi.dims[d] : 3;
        if (mixrt_tensor_create(ctx, vi.dtype, vi.rank, dims, &in[n]) != MIXRT_STATUS_OK) return -1;
        size_t cnt = mixrt_tensor_numel(in[n]);
        for (size_t k = 0; k < cnt; k++) {
            double v = tu_uniform(-1, 1);
            if (mixrt_dtype_is_float(vi.dtype)) mixrt_store_f64(in[n]->data, vi.dtype, k, v);
            else if (vi.dtype == MIXRT_DTYPE_I64) ((int64_t *)in[n]->data)[k] = (int64_t)(fabs(v) * 7);
            else if (vi.dtype == MIXRT_DTYPE_I32) ((int32_t *)in[n]->data)[k] = (int32_t)(fabs(v) * 7);
        }
        names[n++] = vi.name;
    }
    return n;
}

/* a and b give bit-identical outputs on the same random inputs. */
static bool same_outputs(mixrt_engine_t a, mixrt_engine_t b, const char *what) {
    struct mixrt_tensor *in[16] = {0}, *oa[16] = {0}, *ob[16] = {0};
    const char *names[16];
    bool same = false;
    int n = make_inputs(a, in, names, 1234);
    mixrt_status sa = mixrt_engine_run(a, (size_t)n, names, (const struct mixrt_tensor *const *)in, oa);
    mixrt_status sb = mixrt_engine_run(b, (size_t)n, names, (const struct mixrt_tensor *const *)in, ob);
    TU_CHECK(sa == MIXRT_STATUS_OK && sb == MIXRT_STATUS_OK, "%s: runs failed: %s", what, mixrt_context_last_error(ctx));
    if (sa == MIXRT_STATUS_OK && sb == MIXRT_STATUS_OK) {
        same = mixrt_engine_output_count(a) > 0;
        for (size_t i = 0; i < mixrt_engine_output_count(a) && i < 16; i++) {
            same &= oa[i]->dtype == ob[i]->dtype && oa[i]->nbytes == ob[i]->nbytes &&
                    !memcmp(oa[i]->data, ob[i]->data, oa[i]->nbytes);
            /* Not all zeros: the comparison means something. */
            bool nonzero = false;
            for (size_t k = 0; k < oa[i]->nbytes && !nonzero; k++) nonzero = ((unsigned char *)oa[i]->data)[k] != 0;
            TU_CHECK(nonzero, "%s: output %zu is all zeros", what, i);
        }
    }
    for (int i = 0; i < 16; i++) {
        mixrt_tensor_destroy(ctx, in[i]);
        mixrt_tensor_destroy(ctx, oa[i]);
        mixrt_tensor_destroy(ctx, ob[i]);
    }
    return same;
}

/* Layers of e whose kernel has packing hooks, and their kernel names (comma list). */
static int packable_layers(mixrt_engine_t e, char *names, size_t cap) {
    int n = 0;
    names[0] = 0;
    for (size_t i = 0; i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        if (mixrt_engine_get_layer(e, i, &li) != MIXRT_STATUS_OK || !mixrt_cpu_kernel_packing_find(li.kernel)) continue;
        n++;
        if (!strstr(names, li.kernel) && strlen(names) + strlen(li.kernel) + 2 < cap) {
            if (names[0]) strcat(names, ",");
            strcat(names, li.kernel);
        }
    }
    return n;
}

/* The PACKED section's offset and size inside a plan image; false when it has none. */
static bool find_packed(const unsigned char *img, size_t size, size_t *off, size_t *len) {
    struct mixrt_plan_file f;
    if (mixrt_plan_open_buffer(ctx, img, size, "probe", &f) != MIXRT_STATUS_OK) return false;
    const struct mixrt_plan_section *s = mixrt_plan_find(&f, MIXRT_PLAN_PACKED);
    bool found = s != NULL;
    if (s) *off = (size_t)((const unsigned char *)s->data - img), *len = (size_t)s->size;
    mixrt_plan_close(ctx, &f);
    return found;
}

/* Entry 0's range r (0 name .. 4 layout, 5 data): offset (from the image start) and length. */
static void entry_range(const unsigned char *img, size_t sec, int entry, int r, size_t *off, size_t *len) {
    const unsigned char *ent = img + sec + 16 + 104 * (size_t)entry;
    *off = sec + (size_t)le(ent + 8 + 16 * r, 8);
    *len = (size_t)le(ent + 16 + 16 * r, 8);
}

/* Loads img (a patched copy of a plan), expecting success with a note containing note, at
 * least one weight reorder, and outputs bit-identical to ref. */
static void expect_ignored(const unsigned char *img, size_t size, mixrt_engine_t ref, const char *note,
                           const char *label) {
    mixrt_context_set_log_level(ctx, MIXRT_LOG_NOTE);
    capture_begin();
    unsigned long r0 = mixrt_cpu_weight_reorders();
    mixrt_engine_t l = NULL;
    mixrt_status st = mixrt_engine_load_buffer(ctx, img, size, label, &l);
    unsigned long r1 = mixrt_cpu_weight_reorders();
    char *err = capture_end();
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: load: %s", label, mixrt_context_last_error(ctx));
    TU_CHECK(strstr(err, "packed weights ignored") && strstr(err, note), "%s: no note naming '%s'; stderr: %s", label,
             note, err);
    TU_CHECK(r1 > r0, "%s: the ignored blob was not packed again (%lu reorders)", label, r1 - r0);
    if (l) TU_CHECK(same_outputs(ref, l, label), "%s: outputs differ from the built engine", label);
    mixrt_engine_destroy(l);
    free(err);
}

static void test_engine_plans(const char *examples) {
    static const char *models[] = {"cnn_f32", "cnn_bf16", "transformer_f32", "transformer_bf16"};
    static const unsigned precs[] = {MIXRT_PRECISION_FP32, MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16};
    char path[512], plan[512], kinds[256], label[640];
    snprintf(plan, sizeof plan, "%s/packed.plan", dir);
    bool mismatch_done = false;
    for (int m = 0; m < 4; m++)
        for (int p = 0; p < 2; p++) {
            snprintf(path, sizeof path, "%s/%s.onnx", examples, models[m]);
            snprintf(label, sizeof label, "%s %s", models[m], p ? "fp32,bf16" : "fp32");
            if (p && !mixrt_dnnl_bf16_native()) continue; /* bf16 layers would not use oneDNN */
            struct mixrt_build_options o;
            mixrt_build_options_init(&o);
            o.precisions = precs[p];
            mixrt_engine_t e = NULL, l = NULL;
            mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
            TU_CHECK(st == MIXRT_STATUS_OK, "%s: build: %s", label, mixrt_context_last_error(ctx));
            if (st != MIXRT_STATUS_OK) continue;
            int n_pack = packable_layers(e, kinds, sizeof kinds);
            TU_CHECK(n_pack > 0, "%s: no layer runs a packing kernel", label);
            st = mixrt_engine_save(e, plan);
            TU_CHECK(st == MIXRT_STATUS_OK, "%s: save: %s", label, mixrt_context_last_error(ctx));
            size_t size = 0, sec = 0, sec_len = 0;
            unsigned char *img = read_file(plan, &size);
            TU_CHECK(img && find_packed(img, size, &sec, &sec_len), "%s: the plan has no PACKED section", label);
            if (!img || !sec_len) {
                free(img);
                mixrt_engine_destroy(e);
                continue;
            }
            int n_blobs = (int)le(img + sec, 4);
            TU_CHECK(n_blobs == n_pack, "%s: %d packed blobs for %d packing layers", label, n_blobs, n_pack);

            /* From the file (mapped): no reorder at all, same outputs. */
            unsigned long r0 = mixrt_cpu_weight_reorders();
            st = mixrt_engine_load(ctx, plan, &l);
            unsigned long r1 = mixrt_cpu_weight_reorders();
            TU_CHECK(st == MIXRT_STATUS_OK, "%s: load: %s", label, mixrt_context_last_error(ctx));
            TU_CHECK(r1 == r0, "%s: loading the plan ran %lu weight reorders, expected none", label, r1 - r0);
            if (l) TU_CHECK(same_outputs(e, l, label), "%s: the loaded plan's outputs differ", label);
            /* Saved again from the loaded engine (its weights borrowed from the mapping): same blobs. */
            if (l) {
                char plan2[600];
                snprintf(plan2, sizeof plan2, "%s/again.plan", dir);
                size_t size2 = 0, sec2 = 0, len2 = 0;
                TU_CHECK(mixrt_engine_save(l, plan2) == MIXRT_STATUS_OK, "%s: save again: %s", label,
                         mixrt_context_last_error(ctx));
                unsigned char *img2 = read_file(plan2, &size2);
                TU_CHECK(img2 && find_packed(img2, size2, &sec2, &len2) && len2 == sec_len &&
                             !memcmp(img2 + sec2, img + sec, sec_len),
                         "%s: the plan saved from the loaded engine has other packed weights", label);
                free(img2);
                unlink(plan2);
            }
            mixrt_engine_destroy(l);
            l = NULL;

            /* From an unaligned buffer: the blobs are copied, still not reordered. */
            unsigned char *raw = malloc(size + 64);
            unsigned char *odd = raw + 8 + (((uintptr_t)raw + 8) % 64 == 0 ? 8 : 0);
            memcpy(odd, img, size);
            r0 = mixrt_cpu_weight_reorders();
            st = mixrt_engine_load_buffer(ctx, odd, size, "unaligned plan", &l);
            r1 = mixrt_cpu_weight_reorders();
            TU_CHECK(st == MIXRT_STATUS_OK, "%s unaligned: load: %s", label, mixrt_context_last_error(ctx));
            TU_CHECK(r1 == r0, "%s unaligned: %lu weight reorders at load, expected none", label, r1 - r0);
            if (l) TU_CHECK(same_outputs(e, l, "unaligned buffer"), "%s unaligned: outputs differ", label);
            mixrt_engine_destroy(l);
            l = NULL;
            free(raw);

            /* Version 1 (the same plan without PACKED): loads, every packing layer reorders. */
            struct mixrt_plan_file f;
            void *v1 = NULL;
            size_t v1_size = 0;
            if (mixrt_plan_open_buffer(ctx, img, size, "plan", &f) == MIXRT_STATUS_OK) {
                struct mixrt_plan_section four[4];
                size_t k = 0;
                for (size_t i = 0; i < f.n_sections; i++)
                    if (f.sections[i].kind != MIXRT_PLAN_PACKED) four[k++] = f.sections[i];
                struct mixrt_plan_ident id = f.ident;
                if (k == 4 && mixrt_plan_write_buffer(ctx, &id, four, 4, &v1, &v1_size) == MIXRT_STATUS_OK) {
                    put_le((unsigned char *)v1 + MIXRT_PLAN_OFF_VERSION, 1, 4);
                    mixrt_plan_fix_checksums(v1, v1_size);
                }
                mixrt_plan_close(ctx, &f);
            }
            TU_CHECK(v1 != NULL, "%s: cannot make the version-1 plan", label);
            if (v1) {
                r0 = mixrt_cpu_weight_reorders();
                st = mixrt_engine_load_buffer(ctx, v1, v1_size, "version-1 plan", &l);
                r1 = mixrt_cpu_weight_reorders();
                TU_CHECK(st == MIXRT_STATUS_OK, "%s v1: load: %s", label, mixrt_context_last_error(ctx));
                TU_CHECK(r1 - r0 >= (unsigned long)n_pack, "%s v1: %lu reorders for %d packing layers", label, r1 - r0,
                         n_pack);
                if (l) TU_CHECK(same_outputs(e, l, "version-1 plan"), "%s v1: outputs differ", label);
                mixrt_engine_destroy(l);
                l = NULL;
                mixrt_free(ctx, v1, v1_size);
            }

            /* Mismatches (once per model family is enough: the same code for every kernel). */
            if (p == 0) {
                unsigned char *c = malloc(size);
                size_t off, len;
                /* Another library. */
                memcpy(c, img, size);
                entry_range(c, sec, 0, 2, &off, &len);
                c[off + len - 1] = c[off + len - 1] == '9' ? '8' : '9';
                mixrt_plan_fix_checksums(c, size);
                expect_ignored(c, size, e, "packed by", "other library");
                /* Another target. */
                memcpy(c, img, size);
                entry_range(c, sec, 0, 3, &off, &len);
                c[off + len - 1] ^= 0x01;
                mixrt_plan_fix_checksums(c, size);
                expect_ignored(c, size, e, "packed on target", "other target");
                /* Another layout: the descriptor's first dim (after ndims and padding). */
                memcpy(c, img, size);
                entry_range(c, sec, 0, 4, &off, &len);
                put_le(c + off + 8, le(c + off + 8, 8) + 1, 8);
                mixrt_plan_fix_checksums(c, size);
                expect_ignored(c, size, e, "wants another weights layout", "other layout");
                /* Fewer bytes than the layout. */
                memcpy(c, img, size);
                const unsigned char *ent = c + sec + 16;
                put_le(c + sec + 16 + 16 + 16 * 5, le(ent + 16 + 16 * 5, 8) - 64, 8);
                mixrt_plan_fix_checksums(c, size);
                expect_ignored(c, size, e, "bytes, its layout", "short blob");
                /* Another node's name. */
                memcpy(c, img, size);
                entry_range(c, sec, 0, 0, &off, &len);
                c[off] = c[off] == 'Q' ? 'R' : 'Q';
                mixrt_plan_fix_checksums(c, size);
                expect_ignored(c, size, e, "were packed for layer", "other layer name");
                /* Out of bounds: refused, naming the entry. */
                /* Fields of entry 0 (at, from the section start) set to v, a second one too
                 * where at2 is not 0. */
                static const struct {
                    size_t at;
                    int width;
                    uint64_t v;
                    size_t at2;
                    uint64_t v2;
                    const char *needle;
                } bad[] = {
                    {0, 4, 1u << 30, 0, 0, "entries"},
                    {4, 4, 96, 0, 0, "entry size"},
                    {8, 8, 1, 0, 0, "reserved"},
                    {16 + 4, 4, 1, 0, 0, "reserved"},
                    {16 + 0, 4, 1u << 20, 0, 0, "is for layer"},
                    {16 + 8 + 16 * 5, 8, UINT64_MAX - 63, 0, 0, "ends past the section"},
                    {16 + 16 + 16 * 5, 8, UINT64_MAX, 0, 0, "ends past the section"},
                    {16 + 16 + 16 * 0, 8, 1u << 31, 0, 0, "ends past the section"},
                    {16 + 8 + 16 * 5, 8, 8, 0, 0, "not a multiple of 64"},
                    {16 + 8 + 16 * 1, 8, 0, 16 + 16 + 16 * 1, 16, "not printable"}, /* the binary head as a name */
                    {16 + 16 + 16 * 2, 8, 5000, 0, 0, "not printable"},              /* longer than 4096 */
                };
                for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
                    memcpy(c, img, size);
                    put_le(c + sec + bad[b].at, bad[b].v, bad[b].width);
                    if (bad[b].at2) put_le(c + sec + bad[b].at2, bad[b].v2, 8);
                    mixrt_plan_fix_checksums(c, size);
                    mixrt_engine_t x = NULL;
                    st = mixrt_engine_load_buffer(ctx, c, size, "hostile PACKED", &x);
                    const char *msg = mixrt_context_last_error(ctx);
                    TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL && strstr(msg, "PACKED") && strstr(msg, bad[b].needle),
                             "%s: hostile PACKED case %zu: %d %s", label, b, st, msg);
                    mixrt_engine_destroy(x);
                }
                /* A second entry for the same layer. */
                if (n_blobs >= 2) {
                    memcpy(c, img, size);
                    put_le(c + sec + 16 + 104, le(c + sec + 16, 4), 4);
                    mixrt_plan_fix_checksums(c, size);
                    mixrt_engine_t x = NULL;
                    st = mixrt_engine_load_buffer(ctx, c, size, "duplicate PACKED", &x);
                    TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL && strstr(mixrt_context_last_error(ctx), "second one"),
                             "%s: duplicate entry: %d %s", label, st, mixrt_context_last_error(ctx));
                    mixrt_engine_destroy(x);
                }
                free(c);
                mismatch_done = true;
            }
            printf("test_plan_packed: %s: %d packed layers (%s), plan %zu bytes, PACKED %zu bytes\n", label, n_pack,
                   kinds, size, sec_len);
            free(img);
            mixrt_engine_destroy(e);
        }
    TU_CHECK(mismatch_done, "no mismatch case ran");
    unlink(plan);
}

/* ---- plain Conv (dnnl_conv) through the hooks ---- */

/* A plan section's bytes inside a plan image (NULL when absent). */
static const unsigned char *section(const unsigned char *img, size_t size, uint32_t id, size_t *len) {
    struct mixrt_plan_file f;
    const unsigned char *p = NULL;
    *len = 0;
    if (mixrt_plan_open_buffer(ctx, img, size, "probe", &f) != MIXRT_STATUS_OK) return NULL;
    const struct mixrt_plan_section *s = mixrt_plan_find(&f, id);
    if (s) p = s->data, *len = (size_t)s->size;
    mixrt_plan_close(ctx, &f);
    return p;
}

/* Constants dropped after packing (engine.c, try_release): an engine built with them
 * dropped runs bit-identically to one built with MIXRT_RELEASE_WEIGHTS=off; saving brings
 * them back, so both plans carry the same WEIGHTS byte for byte, and a plan whose packed
 * blobs are all refused (library string patched) reorders from those WEIGHTS to the same
 * outputs. A reference fallback over a dropped input is a named error, not a read of it. */
static void test_release(const char *examples) {
    static const char *models[] = {"transformer_f32", "cnn_f32", "transformer_bf16"};
    static const unsigned precs[] = {MIXRT_PRECISION_FP32, MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16};
    char path[512], plan0[512], plan1[512], cache[512], label[640];
    snprintf(plan0, sizeof plan0, "%s/kept.plan", dir);
    snprintf(plan1, sizeof plan1, "%s/released.plan", dir);
    snprintf(cache, sizeof cache, "%s/release.cache", dir);
    for (int m = 0; m < 3; m++)
        for (int p = 0; p < 2; p++) {
            if (p && !mixrt_dnnl_bf16_native()) continue;
            snprintf(path, sizeof path, "%s/%s.onnx", examples, models[m]);
            snprintf(label, sizeof label, "release %s %s", models[m], p ? "fp32,bf16" : "fp32");
            struct mixrt_build_options o;
            mixrt_build_options_init(&o);
            o.precisions = precs[p];
            /* One timing cache for both builds: the second takes the first's kernels and
             * precisions, so only the dropping differs between them. */
            unlink(cache);
            o.timing_cache = cache;
            mixrt_engine_t e0 = NULL, e1 = NULL, l = NULL;
            setenv("MIXRT_RELEASE_WEIGHTS", "off", 1);
            mixrt_status s0 = mixrt_engine_build(ctx, path, &o, &e0);
            unsetenv("MIXRT_RELEASE_WEIGHTS");
            mixrt_status s1 = mixrt_engine_build(ctx, path, &o, &e1);
            TU_CHECK(s0 == MIXRT_STATUS_OK && s1 == MIXRT_STATUS_OK, "%s: build: %s", label,
                     mixrt_context_last_error(ctx));
            if (s0 != MIXRT_STATUS_OK || s1 != MIXRT_STATUS_OK) {
                mixrt_engine_destroy(e0), mixrt_engine_destroy(e1);
                continue;
            }
            size_t b0 = 0, b1 = 0;
            int n0 = mixrt_engine_released(e0, &b0), n1 = mixrt_engine_released(e1, &b1);
            printf("  %s: %d constants (%zu bytes) dropped; %d with MIXRT_RELEASE_WEIGHTS=off\n", label, n1, b1, n0);
            /* The transformers' products all run dnnl_fused_matmul (FusedMatMul's only fast
             * kernel): their weights of 16 KB or more are dropped. cnn_f32 has one such weight
             * (9 KB in bf16), read by a conv whose kernel is timed against ones without
             * packing hooks: dropped or kept, the checks below hold either way. */
            bool expect = m != 1;
            TU_CHECK(n0 == 0 && (!expect || (n1 > 0 && b1 >= ((size_t)16 << 10))),
                     "%s: %d dropped (%zu bytes), %d with =off", label, n1, b1, n0);
            TU_CHECK(same_outputs(e0, e1, label), "%s: outputs differ with the weights dropped", label);
            TU_CHECK(mixrt_engine_save(e0, plan0) == MIXRT_STATUS_OK && mixrt_engine_save(e1, plan1) == MIXRT_STATUS_OK,
                     "%s: save: %s", label, mixrt_context_last_error(ctx));
            TU_CHECK(mixrt_engine_released(e1, NULL) == 0, "%s: saving left %d constants dropped", label,
                     mixrt_engine_released(e1, NULL));
            TU_CHECK(same_outputs(e0, e1, label), "%s: outputs differ after the weights came back", label);
            size_t z0 = 0, z1 = 0, w0 = 0, w1 = 0, sec = 0, sec_len = 0;
            unsigned char *i0 = read_file(plan0, &z0), *i1 = read_file(plan1, &z1);
            const unsigned char *ws0 = i0 ? section(i0, z0, MIXRT_PLAN_WEIGHTS, &w0) : NULL;
            const unsigned char *ws1 = i1 ? section(i1, z1, MIXRT_PLAN_WEIGHTS, &w1) : NULL;
            TU_CHECK(ws0 && ws1 && w0 == w1 && w0 >= b1 && !memcmp(ws0, ws1, w0),
                     "%s: the plans' WEIGHTS differ (%zu and %zu bytes)", label, w0, w1);
            if (i1 && find_packed(i1, z1, &sec, &sec_len)) {
                int n_blobs = (int)le(i1 + sec, 4);
                for (int b = 0; b < n_blobs; b++) {
                    size_t off, len;
                    entry_range(i1, sec, b, 2, &off, &len);
                    if (len) i1[off] ^= 0x20; /* another library: every blob refused */
                }
                mixrt_plan_fix_checksums(i1, z1);
                unsigned char *al = aligned_alloc(64, (z1 + 63) / 64 * 64); /* WEIGHTS 64-byte aligned */
                if (al) memcpy(al, i1, z1);
                unsigned long r0 = mixrt_cpu_weight_reorders();
                mixrt_status sl = al ? mixrt_engine_load_buffer(ctx, al, z1, label, &l) : MIXRT_STATUS_OUT_OF_MEMORY;
                TU_CHECK(sl == MIXRT_STATUS_OK, "%s: load: %s", label, mixrt_context_last_error(ctx));
                TU_CHECK(mixrt_cpu_weight_reorders() - r0 >= (unsigned long)n_blobs,
                         "%s: %lu reorders for %d refused blobs", label, mixrt_cpu_weight_reorders() - r0, n_blobs);
                if (l) TU_CHECK(same_outputs(e0, l, label), "%s: the plan's own WEIGHTS give other outputs", label);
                mixrt_engine_destroy(l);
                l = NULL;
                free(al);
            } else {
                TU_CHECK(0, "%s: the plan has no PACKED section", label);
            }
            mixrt_engine_destroy(l);
            free(i0), free(i1);
            mixrt_engine_destroy(e0), mixrt_engine_destroy(e1);
        }
    unlink(plan0), unlink(plan1), unlink(cache);
}

/* Dropping in a graph with a subgraph and data-dependent shapes (tests/release_model.py): w4,
 * read only by a fixed-shape FusedMatMul, is dropped; w1, read by one too and by an If body, is
 * kept (the body reads it by name); w2 after NonZero is kept. The engine runs as one built with
 * MIXRT_RELEASE_WEIGHTS=off, bit for bit. */
static void test_release_subgraph(void) {
    char path[512], cmd[1200];
    const char *src = getenv("MIXRT_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/release_subgraph.onnx", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/release_model.py' '%s'", src ? src : "..", path);
    TU_CHECK(system(cmd) == 0, "cannot make the model: %s", cmd);
    struct mixrt_build_options o;
    mixrt_build_options_init(&o); /* no timing cache */
    mixrt_engine_t e0 = NULL, e1 = NULL;
    setenv("MIXRT_RELEASE_WEIGHTS", "off", 1);
    mixrt_status s0 = mixrt_engine_build(ctx, path, &o, &e0);
    unsetenv("MIXRT_RELEASE_WEIGHTS");
    mixrt_status s1 = mixrt_engine_build(ctx, path, &o, &e1);
    TU_CHECK(s0 == MIXRT_STATUS_OK && s1 == MIXRT_STATUS_OK, "release subgraph: build: %s", mixrt_context_last_error(ctx));
    if (s0 == MIXRT_STATUS_OK && s1 == MIXRT_STATUS_OK) {
        size_t bytes = 0;
        int n = mixrt_engine_released(e1, &bytes);
        TU_CHECK(n == 1 && bytes == 96 * 64 * 4, "release subgraph: %d constants (%zu bytes) dropped, expected w4 alone",
                 n, bytes);
        for (int r = 0; r < 2; r++)
            TU_CHECK(same_outputs(e0, e1, "release subgraph"), "release subgraph: outputs differ (run %d)", r);
    }
    mixrt_engine_destroy(e0), mixrt_engine_destroy(e1);
    unlink(path);
}

/* The reference fallback over an input whose data an engine dropped: a named error. */
static void test_released_guard(void) {
    kh_begin("Add", 14, 2, 1);
    struct mixrt_tensor a = kh_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){4}, (double[]){1, 2, 3, 4});
    struct mixrt_tensor gone = a;
    gone.data = NULL, gone.flags = 0, gone.capacity = 0;
    kh_in[0] = &a, kh_in[1] = &gone;
    struct mixrt_kernel_ctx k = {.ctx = kh_ctx, .graph = kh_G, .node = kh_N, .opset = 14, .n_in = 2, .in = kh_in,
                                 .in_seq = kh_in_seq, .n_out = 1, .out = kh_out, .out_seq = kh_out_seq,
                                 .out_is_seq = kh_out_is_seq, .out_wanted = kh_out_wanted};
    mixrt_status st = mixrt_cpu_run_reference(&k);
    TU_CHECK(st == MIXRT_STATUS_INTERNAL && strstr(mixrt_context_last_error(kh_ctx), "dropped after packing") &&
                 strstr(mixrt_context_last_error(kh_ctx), "x1"),
             "reference over a dropped input: %d '%s'", (int)st, mixrt_context_last_error(kh_ctx));
    mixrt_tensor_release(kh_ctx, &a);
    kh_end();
}

static void type_value(int vi, const struct mixrt_tensor *t) {
    struct mixrt_value *v = &kh_G->values[vi];
    v->dtype = t->dtype;
    v->rank = t->rank;
    for (int i = 0; i < t->rank; i++) v->dims[i].value = t->dims[i], v->dims[i].param = NULL;
}

/* The harness node's input 0 typed as x, input 1 as w and made its constant initializer, the
 * output typed dt; w's value (the caller clears its init before w goes). */
static struct mixrt_value *typed_xw(const struct mixrt_tensor *x, struct mixrt_tensor *w, mixrt_dtype dt) {
    type_value(kh_N->inputs[0], x);
    type_value(kh_N->inputs[1], w);
    kh_G->values[kh_N->outputs[0]].dtype = dt;
    struct mixrt_value *wv = &kh_G->values[kh_N->inputs[1]];
    wv->init = w;
    wv->flags |= MIXRT_VALUE_INITIALIZER;
    return wv;
}

/* The hook's blob copied as a plan would hold it (64-aligned), in *blob and *layout (the
 * caller frees both after the states reading them). */
static struct mixrt_cpu_packed plan_copy(const struct mixrt_cpu_packed *got, void **blob, void **layout) {
    *blob = NULL, *layout = malloc(got->layout_size);
    TU_CHECK(posix_memalign(blob, 64, got->size) == 0 && *layout, "alloc");
    memcpy(*blob, got->data, got->size);
    memcpy(*layout, got->layout, got->layout_size);
    return (struct mixrt_cpu_packed){got->lib, *layout, got->layout_size, *blob, got->size};
}

/* kern prepared on the harness node with offer: adopted with no reorder, and its run gives
 * first's bits. Returns the state (the caller releases it). */
static void *adopt_check(const struct mixrt_cpu_kernel *kern, const struct mixrt_cpu_packed *offer,
                         const struct mixrt_tensor *first, const char *label) {
    void *st = NULL;
    unsigned long r0 = mixrt_cpu_weight_reorders();
    mixrt_cpu_packed_offer(kh_N, offer);
    TU_CHECK(kern->prepare(kh_ctx, kh_G, kh_N, &st) == MIXRT_STATUS_OK, "%s: prepare with the blob: %s", label,
             mixrt_context_last_error(kh_ctx));
    char why[256];
    int took = mixrt_cpu_packed_outcome(why, sizeof why);
    mixrt_cpu_packed_offer(NULL, NULL);
    TU_CHECK(took == 1 && mixrt_cpu_weight_reorders() == r0, "%s: blob not adopted (%d, %s; %lu reorders)", label,
             took, why, mixrt_cpu_weight_reorders() - r0);
    TU_CHECK(kh_run_kernel(kern->run, st) == MIXRT_STATUS_OK, "%s: run adopted: %s", label,
             mixrt_context_last_error(kh_ctx));
    TU_CHECK(kh_out[0].nbytes == first->nbytes && first->nbytes > 0 &&
                 !memcmp(kh_out[0].data, first->data, first->nbytes),
             "%s: the adopted weights give other bits", label);
    mixrt_tensor_release(kh_ctx, &kh_out[0]);
    return st;
}

static void test_conv_hooks(mixrt_dtype dt) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("dnnl_conv", "", "Conv");
    const struct mixrt_cpu_kernel_packing *h = mixrt_cpu_kernel_packing_find("dnnl_conv");
    TU_CHECK(kern && h, "dnnl_conv or its packing hooks missing");
    if (!kern || !h) return;
    int64_t xd[4] = {2, 24, 13, 11}, wd[4] = {40, 24, 3, 3}, bd[1] = {40};
    struct mixrt_tensor x = kh_tensor(dt, 4, xd, NULL), w = kh_tensor(dt, 4, wd, NULL), b = kh_tensor(dt, 1, bd, NULL);
    struct mixrt_tensor *t[3] = {&x, &w, &b};
    for (int i = 0; i < 3; i++)
        for (size_t j = 0; j < mixrt_tensor_numel(t[i]); j++) {
            double v = tu_uniform(-1, 1);
            mixrt_store_f64(t[i]->data, dt, j, fabs(v) < 1e-3 ? 0.5 : v);
        }
    kh_begin("Conv", 11, 3, 1);
    kh_attr_ints("pads", (int64_t[]){1, 1, 1, 1}, 4);
    for (int i = 0; i < 3; i++) type_value(kh_N->inputs[i], t[i]);
    kh_G->values[kh_N->outputs[0]].dtype = dt;
    struct mixrt_value *wv = &kh_G->values[kh_N->inputs[1]];
    wv->init = &w;
    wv->flags |= MIXRT_VALUE_INITIALIZER;
    const char *label = dt == MIXRT_DTYPE_BF16 ? "dnnl_conv bf16" : "dnnl_conv f32";
    TU_CHECK(kern->supports(kh_G, kh_N, NULL, 0), "%s: not supported", label);
    for (int i = 0; i < 3; i++) kh_in[i] = t[i];

    /* The reference, in f64 math over the same inputs. */
    struct mixrt_tensor ref = {0}, first = {0};
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "%s: reference: %s", label, mixrt_context_last_error(kh_ctx));
    mixrt_tensor_copy(kh_ctx, &ref, &kh_out[0]);
    mixrt_tensor_release(kh_ctx, &kh_out[0]);

    /* Prepared as at build: one reorder; the hook hands out its blob. */
    void *a = NULL, *bst = NULL, *cst = NULL;
    unsigned long r0 = mixrt_cpu_weight_reorders();
    TU_CHECK(kern->prepare(kh_ctx, kh_G, kh_N, &a) == MIXRT_STATUS_OK, "%s: prepare: %s", label,
             mixrt_context_last_error(kh_ctx));
    TU_CHECK(mixrt_cpu_weight_reorders() - r0 == 1, "%s: prepare ran %lu reorders, expected 1", label,
             mixrt_cpu_weight_reorders() - r0);
    struct mixrt_cpu_packed got;
    bool has = a && h->get(a, &got);
    TU_CHECK(has && got.size > 0 && got.layout_size == h->layout_size && !strcmp(got.lib, h->lib()),
             "%s: no packed weights from the hook", label);
    if (has) {
        TU_CHECK(kh_run_kernel(kern->run, a) == MIXRT_STATUS_OK, "%s: run: %s", label, mixrt_context_last_error(kh_ctx));
        mixrt_tensor_copy(kh_ctx, &first, &kh_out[0]);
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
        double num = 0, den = 0;
        for (size_t j = 0; j < mixrt_tensor_numel(&ref); j++) {
            double d = mixrt_load_f64(first.data, dt, j) - mixrt_load_f64(ref.data, ref.dtype, j);
            num += d * d, den += mixrt_load_f64(ref.data, ref.dtype, j) * mixrt_load_f64(ref.data, ref.dtype, j);
        }
        double tol = dt == MIXRT_DTYPE_BF16 ? 1e-2 : 1e-5;
        TU_CHECK(den > 0 && sqrt(num / den) <= tol, "%s: rel-L2 %.3g against the reference", label, sqrt(num / den));

        /* A copy as a plan would hold it, offered: adopted, no reorder, same bits. */
        void *blob, *layout;
        struct mixrt_cpu_packed offer = plan_copy(&got, &blob, &layout);
        bst = adopt_check(kern, &offer, &first, label);
        struct mixrt_cpu_packed again;
        TU_CHECK(bst && h->get(bst, &again) && again.data == blob, "%s: the adopted weights are not read in place",
                 label);

        /* Another layout (the descriptor's first dim): refused; the state then takes the copy
         * state a packed of the same constant (shared, no reorder), same bits. */
        ((dnnl_memory_desc_t *)layout)->dims[0] += 1;
        r0 = mixrt_cpu_weight_reorders();
        mixrt_cpu_packed_offer(kh_N, &offer);
        TU_CHECK(kern->prepare(kh_ctx, kh_G, kh_N, &cst) == MIXRT_STATUS_OK, "%s: prepare, wrong layout: %s", label,
                 mixrt_context_last_error(kh_ctx));
        char why[256];
        int took = mixrt_cpu_packed_outcome(why, sizeof why);
        mixrt_cpu_packed_offer(NULL, NULL);
        TU_CHECK(took == 0 && strstr(why, "layout") && mixrt_cpu_weight_reorders() - r0 == 0,
                 "%s: a wrong layout was not refused, or a reorder ran beside a's copy (%d, %s; %lu reorders)", label,
                 took, why, mixrt_cpu_weight_reorders() - r0);
        struct mixrt_cpu_packed shared;
        TU_CHECK(cst && h->get(cst, &shared) && shared.data == got.data, "%s: the state does not share a's packed copy",
                 label);
        TU_CHECK(kh_run_kernel(kern->run, cst) == MIXRT_STATUS_OK, "%s: run: %s", label, mixrt_context_last_error(kh_ctx));
        TU_CHECK(kh_out[0].nbytes == first.nbytes && !memcmp(kh_out[0].data, first.data, first.nbytes),
                 "%s: the repacked weights give other bits", label);
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
        kern->release(kh_ctx, bst);
        kern->release(kh_ctx, cst);
        free(blob); /* after the state that read it */
        free(layout);
    }
    if (a) kern->release(kh_ctx, a);
    wv->init = NULL;
    kh_end();
    mixrt_tensor_release(kh_ctx, &ref);
    mixrt_tensor_release(kh_ctx, &first);
    for (int i = 0; i < 3; i++) mixrt_tensor_release(kh_ctx, t[i]);
}

/* The 1-D FusedConv matmul (dnnl_conv1d_mm) packs W [M, C, k] taps first: its unpack hook
 * must give the graph's bytes back (the engine drops a constant only when they match), and
 * a plan's copy must be taken as is. */
static void test_c1d_hooks(mixrt_dtype dt) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("dnnl_conv1d_mm", MIXRT_DOMAIN, "FusedConv");
    const struct mixrt_cpu_kernel_packing *h = mixrt_cpu_kernel_packing_find("dnnl_conv1d_mm");
    TU_CHECK(kern && h, "dnnl_conv1d_mm or its packing hooks missing");
    if (!kern || !h) return;
    int64_t xd[3] = {1, 37, 20}, wd[3] = {24, 20, 3};
    struct mixrt_tensor x = kh_tensor(dt, 3, xd, NULL), w = kh_tensor(dt, 3, wd, NULL);
    for (size_t j = 0; j < mixrt_tensor_numel(&w); j++) mixrt_store_f64(w.data, dt, j, tu_uniform(-1, 1));
    for (size_t j = 0; j < mixrt_tensor_numel(&x); j++) mixrt_store_f64(x.data, dt, j, tu_uniform(-1, 1));
    kh_begin("FusedConv", 1, 2, 1);
    kh_N->domain = MIXRT_DOMAIN;
    kh_attr_ints("strides", (int64_t[]){2}, 1);
    kh_attr_int("channels_last", 1);
    struct mixrt_value *wv = typed_xw(&x, &w, dt);
    const char *label = dt == MIXRT_DTYPE_BF16 ? "dnnl_conv1d_mm bf16" : "dnnl_conv1d_mm f32";
    TU_CHECK(kern->supports(kh_G, kh_N, NULL, 0), "%s: not supported", label);
    kh_in[0] = &x, kh_in[1] = &w;
    void *a = NULL, *b = NULL;
    TU_CHECK(kern->prepare(kh_ctx, kh_G, kh_N, &a) == MIXRT_STATUS_OK, "%s: prepare: %s", label,
             mixrt_context_last_error(kh_ctx));
    struct mixrt_cpu_packed got;
    bool has = a && h->get(a, &got);
    TU_CHECK(has && got.size > 0, "%s: no packed weights from the hook", label);
    if (has) {
        void *back = calloc(1, w.nbytes);
        TU_CHECK(h->unpack(kh_ctx, a, back, w.nbytes) && !memcmp(back, w.data, w.nbytes),
                 "%s: the packed weights do not unpack to the graph's [M, C, k] bytes", label);
        free(back);
        struct mixrt_tensor first = {0};
        TU_CHECK(kh_run_kernel(kern->run, a) == MIXRT_STATUS_OK, "%s: run: %s", label, mixrt_context_last_error(kh_ctx));
        mixrt_tensor_copy(kh_ctx, &first, &kh_out[0]);
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
        void *blob, *layout;
        struct mixrt_cpu_packed offer = plan_copy(&got, &blob, &layout);
        b = adopt_check(kern, &offer, &first, label);
        mixrt_tensor_release(kh_ctx, &first);
        if (b) kern->release(kh_ctx, b);
        free(blob);
        free(layout);
    }
    if (a) kern->release(kh_ctx, a);
    wv->init = NULL;
    kh_end();
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &w);
}

/* The slice-by-slice check (kernels.h's `same`, which engine.c's try_release calls before it
 * drops a constant) on weights of more than one 8 MiB slice: 1 for the graph's bytes, 0 once
 * one byte differs in the first slice, the middle or the last one; and the whole unpack agrees. */
static void check_same(const struct mixrt_cpu_kernel_packing *h, void *st, const struct mixrt_tensor *w,
                       const char *label) {
    unsigned char *back = calloc(1, w->nbytes), *bad = malloc(w->nbytes);
    TU_CHECK(back && bad && h->unpack(kh_ctx, st, back, w->nbytes) && !memcmp(back, w->data, w->nbytes),
             "%s: the whole unpack differs from the graph's bytes", label);
    int r = h->same ? h->same(kh_ctx, st, w->data, w->nbytes) : -2;
    TU_CHECK(r == 1, "%s: same() gives %d for the graph's own %zu bytes", label, r, w->nbytes);
    const size_t at[3] = {3, w->nbytes / 2 + 5, w->nbytes - 2};
    for (int i = 0; i < 3 && bad && h->same; i++) {
        memcpy(bad, w->data, w->nbytes);
        bad[at[i]] ^= 0x01;
        r = h->same(kh_ctx, st, bad, w->nbytes);
        TU_CHECK(r == 0, "%s: a byte changed at %zu of %zu: same() gives %d", label, at[i], w->nbytes, r);
    }
    free(back);
    free(bad);
}

/* dnnl_conv's, dnnl_fused_matmul's and fmm_sgemm's (f32 only, where the CPU has AVX2 and FMA)
 * packed weights (B as [K, N] and transposed) checked in slices, each weight about 9.5 MB. */
static void test_same_hooks(mixrt_dtype dt) {
    const bool bf = dt == MIXRT_DTYPE_BF16;
    for (int c = 0; c < 5; c++) {
        if (c >= 3 && (bf || !mixrt_cpu_features()->avx2 || !mixrt_cpu_features()->fma)) {
            printf("  fmm_sgemm's hooks: not on %s\n", bf ? "bf16" : "a CPU without AVX2 and FMA");
            continue;
        }
        if (c == 3) setenv("MIXRT_SGEMM", "on", 1); /* offered on AVX-512 CPUs too; unset after */
        const char *kname = c == 0 ? "dnnl_conv" : c < 3 ? "dnnl_fused_matmul" : "fmm_sgemm";
        const struct mixrt_cpu_kernel *kern = c == 0 ? mixrt_cpu_kernel_find(kname, "", "Conv")
                                                     : mixrt_cpu_kernel_find(kname, MIXRT_DOMAIN, "FusedMatMul");
        const struct mixrt_cpu_kernel_packing *h = mixrt_cpu_kernel_packing_find(kname);
        const bool tb = c == 2 || c == 4;
        char label[96];
        snprintf(label, sizeof label, "same %s%s %s", kname, tb ? " transB" : "", bf ? "bf16" : "f32");
        TU_CHECK(kern && h, "%s: kernel or hooks missing", label);
        if (!kern || !h) continue;
        int64_t xd[4] = {1, 512, 5, 5}, wd[4] = {bf ? 1040 : 520, 512, 3, 3};
        int rx = 4, rw = 4;
        if (c) { /* A [3, K], B [K, N] or [N, K] */
            int64_t K = 2100, N = bf ? 2200 : 1100;
            xd[0] = 3, xd[1] = K, rx = 2, rw = 2;
            wd[0] = tb ? N : K, wd[1] = tb ? K : N;
        }
        struct mixrt_tensor x = kh_tensor(dt, rx, xd, NULL), w = kh_tensor(dt, rw, wd, NULL);
        for (size_t j = 0; j < mixrt_tensor_numel(&w); j++) mixrt_store_f64(w.data, dt, j, tu_uniform(-1, 1));
        for (size_t j = 0; j < mixrt_tensor_numel(&x); j++) mixrt_store_f64(x.data, dt, j, tu_uniform(-1, 1));
        if (c == 0) {
            kh_begin("Conv", 11, 2, 1);
        } else {
            kh_begin("FusedMatMul", 1, 2, 1);
            kh_N->domain = MIXRT_DOMAIN;
            if (tb) kh_attr_int("transB", 1);
        }
        struct mixrt_value *wv = typed_xw(&x, &w, dt);
        kh_in[0] = &x, kh_in[1] = &w;
        void *st = NULL;
        TU_CHECK(kern->supports(kh_G, kh_N, NULL, 0), "%s: not supported", label);
        TU_CHECK(kern->prepare(kh_ctx, kh_G, kh_N, &st) == MIXRT_STATUS_OK && st, "%s: prepare: %s", label,
                 mixrt_context_last_error(kh_ctx));
        TU_CHECK(st && kh_run_kernel(kern->run, st) == MIXRT_STATUS_OK, "%s: run: %s", label,
                 mixrt_context_last_error(kh_ctx));
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
        struct mixrt_cpu_packed got;
        TU_CHECK(st && h->get(st, &got), "%s: no packed weights", label);
        if (st && h->get(st, &got)) check_same(h, st, &w, label);
        if (st) kern->release(kh_ctx, st);
        wv->init = NULL;
        kh_end();
        mixrt_tensor_release(kh_ctx, &x);
        mixrt_tensor_release(kh_ctx, &w);
    }
    unsetenv("MIXRT_SGEMM");
}

/* MIXRT_PLAN_WRITE_CORPUS=DIR: a fuzzing seed with a PACKED section, written by hand from the
 * format in plan.c onto the committed fuzz/corpus_plan/engine_fp32.plan: one entry for its
 * layer 0 with this build's library and target (a layout of zeros, which no primitive
 * wants), one for another layer naming nothing this build has. Small, so the fuzzer's
 * mutations reach every field. */
static void write_corpus(const char *out) {
    const char *src = getenv("MIXRT_SOURCE_DIR");
    char path[600];
    snprintf(path, sizeof path, "%s/fuzz/corpus_plan/engine_fp32.plan", src ? src : "..");
    size_t size = 0;
    unsigned char *img = read_file(path, &size);
    struct mixrt_plan_file f;
    mixrt_engine_t e = NULL;
    struct mixrt_layer_info li;
    if (!img || mixrt_plan_open_buffer(ctx, img, size, path, &f) != MIXRT_STATUS_OK ||
        mixrt_engine_load_buffer(ctx, img, size, path, &e) != MIXRT_STATUS_OK || mixrt_engine_layer_count(e) < 3 ||
        mixrt_engine_get_layer(e, 0, &li) != MIXRT_STATUS_OK) {
        TU_CHECK(0, "corpus: cannot read %s: %s", path, mixrt_context_last_error(ctx));
        free(img);
        mixrt_engine_destroy(e);
        return;
    }
    unsigned char sec[2048];
    memset(sec, 0, sizeof sec);
    size_t at = 16 + 2 * 104;
    static const unsigned char zero_layout[sizeof(dnnl_memory_desc_t)];
    const char *strs[2][4] = {{li.name, li.kernel, mixrt_dnnl_packed_lib(), mixrt_cpu_target()},
                              {"no such layer", "ref", "onednn 0.0.0 - isa 0", "cpu"}};
    put_le(sec, 2, 4);
    put_le(sec + 4, 104, 4);
    for (int i = 0; i < 2; i++) {
        unsigned char *ent = sec + 16 + 104 * i;
        put_le(ent, i ? 2 : 0, 4);
        for (int r = 0; r < 4; r++) {
            size_t n = strlen(strs[i][r]);
            if (n > 200) n = 200;
            memcpy(sec + at, strs[i][r], n);
            put_le(ent + 8 + 16 * r, at, 8);
            put_le(ent + 16 + 16 * r, n, 8);
            at += n;
        }
        size_t lay = i ? 8 : sizeof zero_layout;
        memcpy(sec + at, zero_layout, lay);
        put_le(ent + 8 + 16 * 4, at, 8);
        put_le(ent + 16 + 16 * 4, lay, 8);
        at += lay;
        at = (at + 63) / 64 * 64;
        put_le(ent + 8 + 16 * 5, at, 8);
        put_le(ent + 16 + 16 * 5, i ? 0 : 128, 8);
        for (size_t k = 0; !i && k < 128; k++) sec[at + k] = (unsigned char)(k * 29 + 1);
        at += i ? 0 : 128;
    }
    struct mixrt_plan_section five[5];
    size_t n = 0;
    for (size_t i = 0; i < f.n_sections && n < 4; i++) five[n++] = f.sections[i];
    five[n++] = (struct mixrt_plan_section){MIXRT_PLAN_PACKED, sec, at};
    struct mixrt_plan_ident id = f.ident;
    snprintf(path, sizeof path, "%s/engine_packed.plan", out);
    TU_CHECK(mixrt_plan_write(ctx, path, &id, five, n) == MIXRT_STATUS_OK, "corpus: %s", mixrt_context_last_error(ctx));
    /* It loads: both entries ignored with a note. */
    mixrt_engine_t l = NULL;
    TU_CHECK(mixrt_engine_load(ctx, path, &l) == MIXRT_STATUS_OK, "corpus seed does not load: %s",
             mixrt_context_last_error(ctx));
    mixrt_engine_destroy(l);
    mixrt_engine_destroy(e);
    mixrt_plan_close(ctx, &f);
    free(img);
    printf("test_plan_packed: seed plan written to %s\n", path);
}
#endif

#ifdef MIXRT_HAVE_DNNL
/* Weight-tied layers (ALBERT runs one layer's weights 12 times; RetinaNet's heads run on five
 * pyramid levels): three FusedMatMuls (conv: three 3x3 convolutions) reading one constant W
 * share one packed copy - two reorders fewer than the same model with W copied per node,
 * outputs bit-identical to that untied twin, and in the plan the three entries name one range
 * of packed bytes (the section smaller by two copies); loaded, no reorder. The outputs are
 * more than 4096 values: a smaller last layer may be kept f32 by the planner's small-head rule
 * (then bf16 and f32 copies of the one weight, rightly apart). */
static void test_tied_weights(bool conv) {
    char cmd[2048], tied[256], untied[256], plan[256];
    snprintf(tied, sizeof tied, "%s/tied.onnx", dir);
    snprintf(untied, sizeof untied, "%s/untied.onnx", dir);
    snprintf(plan, sizeof plan, "%s/tied.plan", dir);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - '%s' '%s' '%s' <<'PY'\n"
             "import sys, numpy as np, onnx\n"
             "from onnx import helper as h, numpy_helper as nh, TensorProto as T\n"
             "rng = np.random.default_rng(7)\n"
             "conv = sys.argv[3] == 'conv'\n"
             "W = (rng.standard_normal((32, 32, 3, 3) if conv else (96, 96)) * 0.1).astype(np.float32)\n"
             "B = (rng.standard_normal(32 if conv else 96) * 0.1).astype(np.float32)\n"
             "shape = [1, 32, 20, 20] if conv else [1, 64, 96]\n"
             "for path, tie in ((sys.argv[1], True), (sys.argv[2], False)):\n"
             "    w = ['w'] * 3 if tie else ['w0', 'w1', 'w2']\n"
             "    nodes = []\n"
             "    x = 'x'\n"
             "    for i in range(3):\n"
             "        if conv:\n"
             "            nodes += [h.make_node('Conv', [x, w[i], 'b'], ['a%%d' %% i], pads=[1, 1, 1, 1])]\n"
             "        else:\n"
             "            nodes += [h.make_node('MatMul', [x, w[i]], ['m%%d' %% i]), h.make_node('Add', ['m%%d' %% i, 'b'], ['a%%d' %% i])]\n"
             "        nodes += [h.make_node('Relu', ['a%%d' %% i], ['y' if i == 2 else 'r%%d' %% i])]\n"
             "        x = 'r%%d' %% i\n"
             "    inits = [nh.from_array(W, n) for n in sorted(set(w))] + [nh.from_array(B, 'b')]\n"
             "    g = h.make_graph(nodes, 'tied', [h.make_tensor_value_info('x', T.FLOAT, shape)],\n"
             "                     [h.make_tensor_value_info('y', T.FLOAT, shape)], inits)\n"
             "    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 17)]), path)\n"
             "PY",
             tied, untied, conv ? "conv" : "matmul");
    TU_CHECK(system(cmd) == 0, "cannot make the tied-weights models");
    static const unsigned precs[] = {MIXRT_PRECISION_FP32, MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16};
    /* The subject is the packed kernels' shared copy: the kernels without plan packing, the
     * bf16 Winograd one (wino_bf16_nhwc: each node transforms its own weights) and the implicit
     * GEMM (ig_conv_nhwc), may win the 3x3 convs' timing (ig_conv_nhwc won all three once, in a
     * loaded ctest run: 0 packing layers). */
    setenv("MIXRT_WINO_BF16", "off", 1);
    setenv("MIXRT_IGCONV", "off", 1);
    for (int p = 0; p < 2; p++) {
        if (p && !mixrt_dnnl_bf16_native()) continue;
        const char *label = conv ? (p ? "tied conv fp32,bf16" : "tied conv fp32") : p ? "tied fp32,bf16" : "tied fp32";
        struct mixrt_build_options o;
        mixrt_build_options_init(&o);
        o.precisions = precs[p];
        mixrt_engine_t et = NULL, eu = NULL, l = NULL;
        /* Built once first: the builder's kernel timings (one-node graphs, each packing its
         * own copy) are then in the process's timing cache, so the counts below are the
         * engines' own packing. */
        if (mixrt_engine_build(ctx, tied, &o, &et) == MIXRT_STATUS_OK) mixrt_engine_destroy(et);
        et = NULL;
        unsigned long r0 = mixrt_cpu_weight_reorders();
        mixrt_status st = mixrt_engine_build(ctx, tied, &o, &et);
        unsigned long r1 = mixrt_cpu_weight_reorders();
        TU_CHECK(st == MIXRT_STATUS_OK, "%s: build: %s", label, mixrt_context_last_error(ctx));
        st = mixrt_engine_build(ctx, untied, &o, &eu);
        unsigned long r2 = mixrt_cpu_weight_reorders();
        TU_CHECK(st == MIXRT_STATUS_OK, "%s: build untied: %s", label, mixrt_context_last_error(ctx));
        if (!et || !eu) {
            mixrt_engine_destroy(et), mixrt_engine_destroy(eu);
            continue;
        }
        char kinds[256];
        TU_CHECK(packable_layers(et, kinds, sizeof kinds) == 3, "%s: %d packing layers (%s), expected 3", label,
                 packable_layers(et, kinds, sizeof kinds), kinds);
        TU_CHECK(r1 - r0 == 1 && r2 - r1 == 3, "%s: the build ran %lu reorders, the untied twin's %lu (expected 1 "
                 "and 3)", label, r1 - r0, r2 - r1);
        TU_CHECK(same_outputs(eu, et, label), "%s: outputs differ from the untied twin", label);
        size_t size = 0, sec = 0, sec_len = 0, usec_len = 0;
        TU_CHECK(mixrt_engine_save(et, plan) == MIXRT_STATUS_OK, "%s: save: %s", label, mixrt_context_last_error(ctx));
        unsigned char *img = read_file(plan, &size);
        bool found = img && find_packed(img, size, &sec, &sec_len);
        TU_CHECK(found && le(img + sec, 4) == 3, "%s: the plan has no PACKED section of 3 entries", label);
        size_t w_off[3] = {0, 0, 0}, w_len[3] = {0, 0, 0};
        for (int i = 0; found && i < 3 && (size_t)i < le(img + sec, 4); i++) entry_range(img, sec, i, 5, &w_off[i], &w_len[i]);
        TU_CHECK(found && w_len[0] > 0 && w_off[1] == w_off[0] && w_off[2] == w_off[0] && w_len[1] == w_len[0] &&
                     w_len[2] == w_len[0],
                 "%s: the three entries' packed bytes are not one range (%zu+%zu, %zu+%zu, %zu+%zu)", label, w_off[0],
                 w_len[0], w_off[1], w_len[1], w_off[2], w_len[2]);
        TU_CHECK(mixrt_engine_save(eu, plan) == MIXRT_STATUS_OK, "%s: save untied: %s", label,
                 mixrt_context_last_error(ctx));
        size_t usize = 0, usec = 0;
        unsigned char *uimg = read_file(plan, &usize);
        TU_CHECK(uimg && find_packed(uimg, usize, &usec, &usec_len) && usec_len >= sec_len + 2 * w_len[0],
                 "%s: PACKED section %zu bytes, the untied twin's %zu (expected two copies of %zu more)", label,
                 sec_len, usec_len, w_len[0]);
        free(uimg);
        /* the tied plan again, loaded from the file: no reorder, same outputs */
        TU_CHECK(mixrt_engine_save(et, plan) == MIXRT_STATUS_OK, "%s: save: %s", label, mixrt_context_last_error(ctx));
        r0 = mixrt_cpu_weight_reorders();
        st = mixrt_engine_load(ctx, plan, &l);
        r1 = mixrt_cpu_weight_reorders();
        TU_CHECK(st == MIXRT_STATUS_OK && r1 == r0, "%s: load: %s (%lu reorders)", label,
                 st == MIXRT_STATUS_OK ? "ok" : mixrt_context_last_error(ctx), r1 - r0);
        if (l) TU_CHECK(same_outputs(et, l, label), "%s: the loaded plan's outputs differ", label);
        free(img);
        unlink(plan);
        mixrt_engine_destroy(l), mixrt_engine_destroy(et), mixrt_engine_destroy(eu);
    }
    unsetenv("MIXRT_WINO_BF16");
    unsetenv("MIXRT_IGCONV");
    unlink(tied), unlink(untied);
}

/* Relative-norm error of engine e's output 0 against the reference executor's on model m,
 * on the same random inputs; -1 when a run failed. */
static double ref_error(mixrt_engine_t e, mixrt_model_t m, const char *what) {
    struct mixrt_tensor *in[16] = {0}, *oe[16] = {0}, *orf[16] = {0};
    const char *names[16];
    double err = -1;
    int n = make_inputs(e, in, names, 99);
    mixrt_status se = mixrt_engine_run(e, (size_t)n, names, (const struct mixrt_tensor *const *)in, oe);
    mixrt_status sr = mixrt_model_run(m, (size_t)n, names, (const struct mixrt_tensor *const *)in, orf);
    TU_CHECK(se == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK, "%s: runs failed: %s", what, mixrt_context_last_error(ctx));
    if (se == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK && oe[0]->nbytes == orf[0]->nbytes) {
        double num = 0, den = 0;
        size_t cnt = mixrt_tensor_numel(orf[0]);
        for (size_t k = 0; k < cnt; k++) {
            double a = mixrt_load_f64(oe[0]->data, oe[0]->dtype, k), b = mixrt_load_f64(orf[0]->data, orf[0]->dtype, k);
            num += (a - b) * (a - b), den += b * b;
        }
        TU_CHECK(den > 0, "%s: the reference output is all zeros", what);
        err = den > 0 ? sqrt(num / den) : -1;
    }
    for (int i = 0; i < 16; i++) {
        mixrt_tensor_destroy(ctx, in[i]);
        mixrt_tensor_destroy(ctx, oe[i]);
        mixrt_tensor_destroy(ctx, orf[i]);
    }
    return err;
}

/* A Winograd kernel: oneDNN's (AVX-512 CPUs) or the own ones; each holds the weights larger
 * (4x, or 16 / 9 for F(2x2, 3x3)) and is weighed by the engine's Winograd budget. */
static bool is_wino(const char *kernel) {
    return !strcmp(kernel, "dnnl_wino_conv") || !strcmp(kernel, "conv_wino") || !strcmp(kernel, "conv_wino2");
}

/* Writes PATH: LAYERS 3x3 convolutions 64 -> 64 at 28x28 in f32, each with weights and a bias of
 * its own and a ReLU after it, at batch BATCH ("N": a batch only the data decides). */
static bool make_relu_convs(const char *path, int layers, const char *batch) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - '%s' %d %s <<'PY'\n"
             "import sys, numpy as np, onnx\n"
             "from onnx import helper as h, numpy_helper as nh, TensorProto as T\n"
             "rng = np.random.default_rng(11)\n"
             "L, n = int(sys.argv[2]), int(sys.argv[3]) if sys.argv[3].isdigit() else sys.argv[3]\n"
             "nodes, inits, x = [], [], 'x'\n"
             "for i in range(L):\n"
             "    inits += [nh.from_array((rng.standard_normal((64, 64, 3, 3)) * 0.06).astype(np.float32), 'w%%d' %% i),\n"
             "              nh.from_array((rng.standard_normal(64) * 0.1).astype(np.float32), 'b%%d' %% i)]\n"
             "    nodes += [h.make_node('Conv', [x, 'w%%d' %% i, 'b%%d' %% i], ['c%%d' %% i], pads=[1, 1, 1, 1]),\n"
             "              h.make_node('Relu', ['c%%d' %% i], ['y' if i == L - 1 else 'r%%d' %% i])]\n"
             "    x = 'r%%d' %% i\n"
             "g = h.make_graph(nodes, 'relu_convs', [h.make_tensor_value_info('x', T.FLOAT, [n, 64, 28, 28])],\n"
             "                 [h.make_tensor_value_info('y', T.FLOAT, [n, 64, 28, 28])], inits)\n"
             "onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 17)]), sys.argv[1])\n"
             "PY",
             path, layers, batch);
    return system(cmd) == 0;
}

/* The Winograd budget (engine.c): six 3x3 convolutions 64 -> 64 at 28x28 in f32, each with
 * weights of its own (147 KB; oneDNN's Winograd holds them 1.8-4x larger). MIXRT_WINO_BUDGET=off
 * keeps what the timing chose; 0 leaves no layer on a Winograd kernel; 0.5 and the default (1x the
 * model's constant bytes) keep the plan's packed bytes beyond the budget-0 engine's within that
 * share of the constants, with fewer Winograd layers than "off" where those held more. Every
 * engine's output against the reference executor. */
static void test_wino_budget(void) {
    char path[256], plan[256], cache[256];
    snprintf(path, sizeof path, "%s/wino6.onnx", dir);
    snprintf(plan, sizeof plan, "%s/wino6.plan", dir);
    snprintf(cache, sizeof cache, "%s/wino6.cache", dir);
    /* One timing cache for every build: each takes the first build's timings, so the layers
     * differ between budgets by the budget alone, not by a timing that came out otherwise under
     * load. */
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.timing_cache = cache;
    unlink(cache);
    TU_CHECK(make_relu_convs(path, 6, "1"), "cannot make the Winograd budget model");
    mixrt_model_t m = NULL;
    TU_CHECK(mixrt_model_load(ctx, path, &m) == MIXRT_STATUS_OK, "load: %s", mixrt_context_last_error(ctx));
    if (!m) return;
    const double consts = 6 * (64 * 64 * 9 + 64) * 4.0;
    setenv("MIXRT_WINO_BUDGET_MIN_MB", "0", 1); /* the budget a share of this small model's constants */
    static const char *const budgets[] = {"off", "0", "0.5", NULL};
    static const double share[] = {-1, 0, 0.5, 1.0};
    int wino[4] = {0, 0, 0, 0};
    size_t packed[4] = {0, 0, 0, 0};
    for (int b = 0; b < 4; b++) {
        const char *label = budgets[b] ? budgets[b] : "default";
        if (budgets[b]) setenv("MIXRT_WINO_BUDGET", budgets[b], 1);
        else unsetenv("MIXRT_WINO_BUDGET");
        mixrt_engine_t e = NULL;
        mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
        unsetenv("MIXRT_WINO_BUDGET");
        TU_CHECK(st == MIXRT_STATUS_OK, "budget %s: build: %s", label, mixrt_context_last_error(ctx));
        if (!e) continue;
        for (size_t i = 0; i < mixrt_engine_layer_count(e); i++) {
            struct mixrt_layer_info li;
            if (mixrt_engine_get_layer(e, i, &li) == MIXRT_STATUS_OK && is_wino(li.kernel)) wino[b]++;
        }
        double err = ref_error(e, m, label);
        TU_CHECK(err >= 0 && err <= 1e-4, "budget %s: relative-norm error %.3g against the reference", label, err);
        size_t size = 0, sec = 0;
        TU_CHECK(mixrt_engine_save(e, plan) == MIXRT_STATUS_OK, "budget %s: save: %s", label,
                 mixrt_context_last_error(ctx));
        unsigned char *img = read_file(plan, &size);
        TU_CHECK(img && find_packed(img, size, &sec, &packed[b]), "budget %s: the plan has no PACKED section", label);
        free(img);
        unlink(plan);
        printf("  Winograd budget %-7s: %d of 6 layers on a Winograd kernel, %zu packed bytes, error %.2g\n", label, wino[b],
               packed[b], err);
        mixrt_engine_destroy(e);
    }
    TU_CHECK(wino[1] == 0, "budget 0: %d layers still on a Winograd kernel", wino[1]);
    for (int b = 2; b < 4; b++) {
        const char *label = budgets[b] ? budgets[b] : "default";
        TU_CHECK((double)packed[b] <= (double)packed[1] + share[b] * consts + 4096,
                 "budget %s: %zu packed bytes, %zu without Winograd: more than %.2f x the %.0f bytes of constants "
                 "added", label, packed[b], packed[1], share[b], consts);
        if ((double)packed[0] > (double)packed[1] + share[b] * consts + 4096)
            TU_CHECK(wino[b] < wino[0], "budget %s: %d Winograd layers, as many as without a budget (%d)", label,
                     wino[b], wino[0]);
        else
            TU_CHECK(wino[b] == wino[0], "budget %s: %d Winograd layers, %d without a budget, though they fit", label,
                     wino[b], wino[0]);
    }
    if (wino[0] == 0) printf("  (the timing chose no Winograd layer here: the budget had nothing to trim)\n");
    /* The floor: 64 MB by default, so this model's Winograd layers all fit at budget 0.5. */
    unsetenv("MIXRT_WINO_BUDGET_MIN_MB");
    setenv("MIXRT_WINO_BUDGET", "0.5", 1);
    mixrt_engine_t e = NULL;
    TU_CHECK(mixrt_engine_build(ctx, path, &o, &e) == MIXRT_STATUS_OK, "budget 0.5, floor 64 MB: build: %s",
             mixrt_context_last_error(ctx));
    unsetenv("MIXRT_WINO_BUDGET");
    int fl = 0;
    for (size_t i = 0; e && i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        if (mixrt_engine_get_layer(e, i, &li) == MIXRT_STATUS_OK && is_wino(li.kernel)) fl++;
    }
    TU_CHECK(fl == wino[0], "budget 0.5 with the 64 MB floor: %d Winograd layers, %d without a budget", fl, wino[0]);
    mixrt_engine_destroy(e);
    mixrt_model_destroy(m);
    unlink(path);
    unlink(cache);
}

/* A convolution whose batch only the data decides (a detector's mask head) is timed at batch 1
 * and its choice stands for any batch; one with a symbolic spatial size stays untimed. Outputs
 * at batches 1, 3 and 7 against the reference executor. */
static void test_conv_data_batch(void) {
    char cmd[2048], path[256];
    snprintf(path, sizeof path, "%s/convdyn.onnx", dir);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - '%s' <<'PY'\n"
             "import sys, numpy as np, onnx\n"
             "from onnx import helper as h, numpy_helper as nh, TensorProto as T\n"
             "rng = np.random.default_rng(5)\n"
             "w = nh.from_array((rng.standard_normal((32, 32, 3, 3)) * 0.08).astype(np.float32), 'w')\n"
             "nodes = [h.make_node('Conv', ['x', 'w'], ['c'], pads=[1, 1, 1, 1], name='conv_batch'),\n"
             "         h.make_node('Relu', ['c'], ['y']),\n"
             "         h.make_node('Conv', ['x2', 'w'], ['y2'], pads=[1, 1, 1, 1], name='conv_hw')]\n"
             "g = h.make_graph(nodes, 'convdyn', [h.make_tensor_value_info('x', T.FLOAT, ['N', 32, 16, 16]),\n"
             "                 h.make_tensor_value_info('x2', T.FLOAT, [1, 32, 'H', 16])],\n"
             "                 [h.make_tensor_value_info('y', T.FLOAT, ['N', 32, 16, 16]),\n"
             "                  h.make_tensor_value_info('y2', T.FLOAT, [1, 32, 'H', 16])], [w])\n"
             "onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 17)]), sys.argv[1])\n"
             "PY",
             path);
    TU_CHECK(system(cmd) == 0, "cannot make the data-batch conv model");
    mixrt_engine_t e = NULL;
    mixrt_model_t m = NULL;
    TU_CHECK(mixrt_engine_build(ctx, path, NULL, &e) == MIXRT_STATUS_OK, "build: %s", mixrt_context_last_error(ctx));
    TU_CHECK(mixrt_model_load(ctx, path, &m) == MIXRT_STATUS_OK, "load: %s", mixrt_context_last_error(ctx));
    if (!e || !m) {
        mixrt_engine_destroy(e), mixrt_model_destroy(m);
        return;
    }
    const struct mixrt_graph *g = mixrt_engine_graph(e);
    int batch = -1, hw = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (strstr(g->nodes[i].name, "conv_batch")) batch = i;
        if (strstr(g->nodes[i].name, "conv_hw")) hw = i;
    }
    TU_CHECK(batch >= 0 && hw >= 0, "both convolutions are layers");
    if (batch >= 0 && hw >= 0) {
        TU_CHECK(mixrt_engine_node_time_ns(e, batch) > 0, "the data-batch conv was timed (%s, %.0f ns)",
                 mixrt_engine_node_kernel(e, batch), mixrt_engine_node_time_ns(e, batch));
        TU_CHECK(mixrt_engine_node_time_ns(e, hw) < 0, "the symbolic-height conv stayed untimed (%s, %.0f ns)",
                 mixrt_engine_node_kernel(e, hw), mixrt_engine_node_time_ns(e, hw));
    }
    static const int64_t batches[] = {1, 3, 7};
    for (int b = 0; b < 3; b++) {
        struct mixrt_tensor *in[2] = {NULL, NULL}, *oe[2] = {NULL, NULL}, *orf[2] = {NULL, NULL};
        const char *names[2] = {"x", "x2"};
        int64_t d0[4] = {batches[b], 32, 16, 16}, d1[4] = {1, 32, 5 + 2 * b, 16};
        TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 4, d0, &in[0]) == MIXRT_STATUS_OK &&
                     mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 4, d1, &in[1]) == MIXRT_STATUS_OK,
                 "inputs");
        for (int t = 0; t < 2 && in[t]; t++)
            for (size_t k = 0; k < mixrt_tensor_numel(in[t]); k++) ((float *)in[t]->data)[k] = (float)tu_uniform(-1, 1);
        mixrt_status se = mixrt_engine_run(e, 2, names, (const struct mixrt_tensor *const *)in, oe);
        mixrt_status sr = mixrt_model_run(m, 2, names, (const struct mixrt_tensor *const *)in, orf);
        TU_CHECK(se == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK, "batch %lld: runs: %s", (long long)batches[b],
                 mixrt_context_last_error(ctx));
        for (int o = 0; o < 2 && se == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK; o++) {
            double num = 0, den = 0;
            for (size_t k = 0; k < mixrt_tensor_numel(orf[o]); k++) {
                double a = ((const float *)oe[o]->data)[k], r = ((const float *)orf[o]->data)[k];
                num += (a - r) * (a - r), den += r * r;
            }
            TU_CHECK(den > 0 && sqrt(num / den) < 1e-5, "batch %lld output %d: relative-norm error %.3g",
                     (long long)batches[b], o, den > 0 ? sqrt(num / den) : -1.0);
        }
        for (int t = 0; t < 2; t++) {
            mixrt_tensor_destroy(ctx, in[t]);
            mixrt_tensor_destroy(ctx, oe[t]);
            mixrt_tensor_destroy(ctx, orf[t]);
        }
    }
    mixrt_engine_destroy(e);
    mixrt_model_destroy(m);
    unlink(path);
}

/* The layers of PATH's engine on a Winograd kernel at MIXRT_WINO_BUDGET=BUDGET (NULL: the default);
 * -1 when the build failed. */
static int wino_layers(const char *path, const char *budget) {
    if (budget) setenv("MIXRT_WINO_BUDGET", budget, 1);
    mixrt_engine_t e = NULL;
    mixrt_status st = mixrt_engine_build(ctx, path, NULL, &e);
    unsetenv("MIXRT_WINO_BUDGET");
    TU_CHECK(st == MIXRT_STATUS_OK, "%s, budget %s: build: %s", path, budget ? budget : "default",
             mixrt_context_last_error(ctx));
    int n = 0;
    for (size_t i = 0; e && i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        if (mixrt_engine_get_layer(e, i, &li) == MIXRT_STATUS_OK && is_wino(li.kernel)) n++;
    }
    mixrt_engine_destroy(e);
    return st == MIXRT_STATUS_OK ? n : -1;
}

/* The Winograd budget's data-batch group: two 64-channel 3x3 convolutions (bias, ReLU) at 28x28
 * whose batch only the data decides would hold ~90 MB of Winograd scratchpad at the 100 boxes
 * the builder assumes (36 tiles of 7x7 x (64 + 64) channels, f32, a box), over the 64 MB floor
 * of a budget for this 0.3 MB model: neither may stay on a Winograd kernel, whatever the timing
 * chose (MIXRT_WINO_BUDGET=off shows that choice). The same layers at a fixed batch of 1 need
 * 0.9 MB of scratchpad: they keep the timing's choice within the same budget. */
static void test_wino_data_batch(void) {
    char path[2][256];
    for (int s = 0; s < 2; s++) {
        snprintf(path[s], sizeof path[s], "%s/convdb%d.onnx", dir, s);
        TU_CHECK(make_relu_convs(path[s], 2, s ? "1" : "N"), "cannot make the data-batch head model");
    }
    /* Each model's second build reads the first one's timings (the process cache): same choices. */
    int off = wino_layers(path[0], "off"), data = wino_layers(path[0], NULL);
    int fixed_off = wino_layers(path[1], "off"), fixed = wino_layers(path[1], NULL);
    printf("  data-batch 64-channel head: %d of 2 layers on a Winograd kernel without a budget, %d with it; "
           "at a fixed batch of 1: %d and %d\n", off, data, fixed_off, fixed);
    TU_CHECK(data == 0, "the data-batch head kept %d Winograd layers within the default budget", data);
    TU_CHECK(fixed == fixed_off, "the batch-1 twin: %d Winograd layers within the budget, %d without one", fixed,
             fixed_off);
    if (off == 0) printf("  (the timing chose no Winograd for it here: the group eviction went untested)\n");
    unlink(path[0]);
    unlink(path[1]);
}

#endif

int main(void) {
    tu_seed(20261129);
    /* The subject is packed weights: igf_conv_nhwc (f32 convs of few pixels, no plan packing) won
     * every conv of cnn_f32 / cnn_bf16 at fp32 in a loaded ctest run (0 packing layers, no PACKED
     * section), as ig_conv_nhwc once did the tied convs' (test_tied_weights). */
    setenv("MIXRT_IGFCONV", "off", 1);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    snprintf(dir, sizeof dir, "plan_packed_XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "test_plan_packed: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
#ifdef MIXRT_HAVE_DNNL
    const char *corpus = getenv("MIXRT_PLAN_WRITE_CORPUS");
    if (corpus && *corpus) write_corpus(corpus);
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    test_conv_hooks(MIXRT_DTYPE_F32);
    if (mixrt_dnnl_bf16_native()) test_conv_hooks(MIXRT_DTYPE_BF16);
    test_c1d_hooks(MIXRT_DTYPE_F32);
    if (mixrt_dnnl_bf16_native()) test_c1d_hooks(MIXRT_DTYPE_BF16);
    test_released_guard();
    test_same_hooks(MIXRT_DTYPE_F32);
    if (mixrt_dnnl_bf16_native()) test_same_hooks(MIXRT_DTYPE_BF16);
    TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == 0, "kernel context: %zu bytes left", mixrt_context_bytes_in_use(kh_ctx));
    mixrt_context_destroy(kh_ctx);

    const char *src = getenv("MIXRT_SOURCE_DIR");
    char cmd[1024], examples[128];
    snprintf(examples, sizeof examples, "%s/examples", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/scripts/make_examples.py' '%s' > /dev/null", src ? src : "..",
             examples);
    TU_CHECK(system(cmd) == 0, "cannot make the example models: %s", cmd);
    test_engine_plans(examples);
    test_release(examples);
    test_release_subgraph();
    test_tied_weights(false);
    test_tied_weights(true);
    test_wino_budget();
    test_conv_data_batch();
    test_wino_data_batch();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", examples);
    if (system(cmd) != 0) fprintf(stderr, "test_plan_packed: cannot remove %s\n", examples);
#else
    printf("test_plan_packed: built without oneDNN: no kernel packs weights\n");
    TU_CHECK(mixrt_cpu_kernel_packing_find("dnnl_conv") == NULL, "packing hooks without oneDNN");
#endif
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "%zu bytes still allocated", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    if (rmdir(dir) != 0) TU_CHECK(0, "cannot remove %s: %s", dir, strerror(errno));
    return tu_finish("test_plan_packed");
}
