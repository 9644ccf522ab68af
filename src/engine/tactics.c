/* tactics.c - tactic timing and the timing cache. Timing runs a kernel on seeded random
 * inputs of the node's static shapes (constant inputs use the real weights) until about
 * 20 ms or 40 runs have passed, and keeps the fastest run. The cache file is text:
 *   mixrt-timing-cache 1
 *   target <target string>
 *   build <the GNU build id of the binary holding this code>
 *   <min ns> <key>               (one line per entry; the key has no newline)
 * so it can be read, diffed and trimmed by hand. Timings are only as good as the kernels
 * that made them: a file from another build of mixrt (another target, or an older file
 * without a build line) is ignored and rewritten. */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include <errno.h>
#include <link.h>
#include <math.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/tactics.h"
#include "engine/memplan.h"
#include "backend/cpu/exec_ref.h"

struct tc_entry {
    char *key;
    size_t key_size;
    double ns;
};

struct mixrt_timing_cache {
    mixrt_context_t ctx;
    char target[160];
    struct tc_entry *e;
    size_t n, cap;
    int hits, misses;
};

const char *mixrt_cpu_target(void) {
    static char buf[160];
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    snprintf(buf, sizeof(buf), "cpu x86_64%s%s%s%s%s", f->avx2 ? " avx2" : "", f->avx512f ? " avx512f" : "",
             f->avx512_bf16 ? " avx512_bf16" : "", f->avx512_vnni ? " avx512_vnni" : "",
             f->avx512_fp16 ? " avx512_fp16" : "");
    return buf;
}

/* The build id note (NT_GNU_BUILD_ID) of the loaded object that holds this function, as
 * hex; the version and this file's compile time when the linker wrote none. */
struct build_id_search {
    uintptr_t addr;
    char *out;
    size_t size;
    bool found;
};

static int build_id_of_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct build_id_search *b = data;
    bool holds = false;
    for (int i = 0; i < info->dlpi_phnum && !holds; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        holds = ph->p_type == PT_LOAD && b->addr >= lo && b->addr < lo + ph->p_memsz;
    }
    if (!holds) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const unsigned char *name = p + sizeof(*nh), *desc = name + ((nh->n_namesz + 3) & ~3u);
            if (desc + nh->n_descsz > end) break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                size_t o = 0;
                for (unsigned j = 0; j < nh->n_descsz && o + 3 <= b->size; j++) o += (size_t)snprintf(b->out + o, 3, "%02x", desc[j]);
                b->found = o > 0;
                return 1;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    return 1;
}

static char build_id_buf[96];

static void build_id_init(void) {
    struct build_id_search b = {(uintptr_t)&build_id_of_object, build_id_buf, sizeof(build_id_buf), false};
    dl_iterate_phdr(build_id_of_object, &b);
    if (!b.found) snprintf(build_id_buf, sizeof(build_id_buf), "%s-%s-%s", mixrt_version(), __DATE__, __TIME__);
    for (char *c = build_id_buf; *c; c++)
        if (*c == ' ') *c = '_';
}

static const char *build_id(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_id_init);
    return build_id_buf;
}

mixrt_status mixrt_timing_cache_create(mixrt_context_t ctx, const char *target, struct mixrt_timing_cache **out) {
    struct mixrt_timing_cache *tc = mixrt_calloc(ctx, 1, sizeof(*tc));
    if (!tc) return MIXRT_STATUS_OUT_OF_MEMORY;
    tc->ctx = ctx;
    snprintf(tc->target, sizeof(tc->target), "%s", target);
    *out = tc;
    return MIXRT_STATUS_OK;
}

void mixrt_timing_cache_destroy(struct mixrt_timing_cache *tc) {
    if (!tc) return;
    for (size_t i = 0; i < tc->n; i++) mixrt_free(tc->ctx, tc->e[i].key, tc->e[i].key_size);
    mixrt_free(tc->ctx, tc->e, tc->cap * sizeof(*tc->e));
    mixrt_free(tc->ctx, tc, sizeof(*tc));
}

void mixrt_timing_cache_stats(const struct mixrt_timing_cache *tc, int *hits, int *misses) {
    *hits = tc ? tc->hits : 0;
    *misses = tc ? tc->misses : 0;
}

static struct tc_entry *tc_find(struct mixrt_timing_cache *tc, const char *key) {
    for (size_t i = 0; i < tc->n; i++)
        if (!strcmp(tc->e[i].key, key)) return &tc->e[i];
    return NULL;
}

static mixrt_status tc_put(struct mixrt_timing_cache *tc, const char *key, double ns) {
    struct tc_entry *e = tc_find(tc, key);
    if (e) {
        e->ns = ns;
        return MIXRT_STATUS_OK;
    }
    if (tc->n == tc->cap) {
        size_t cap = tc->cap ? tc->cap * 2 : 64;
        struct tc_entry *ne = mixrt_calloc(tc->ctx, cap, sizeof(*ne));
        if (!ne) return MIXRT_STATUS_OUT_OF_MEMORY;
        if (tc->n) memcpy(ne, tc->e, tc->n * sizeof(*ne));
        mixrt_free(tc->ctx, tc->e, tc->cap * sizeof(*tc->e));
        tc->e = ne;
        tc->cap = cap;
    }
    size_t len = strlen(key) + 1;
    char *k = mixrt_alloc(tc->ctx, len);
    if (!k) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(k, key, len);
    tc->e[tc->n++] = (struct tc_entry){k, len, ns};
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_timing_cache_load(struct mixrt_timing_cache *tc, const char *path) {
    mixrt_context_t ctx = tc->ctx;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return MIXRT_STATUS_OK; /* first build: the file is created after it */
        return mixrt_error(ctx, MIXRT_STATUS_IO_ERROR, "cannot read timing cache '%s': %s", path, strerror(errno));
    }
    mixrt_status status = MIXRT_STATUS_OK;
    char line[4096];
    int ln = 0;
    bool other_target = false;
    while (fgets(line, sizeof(line), f)) {
        ln++;
        size_t len = strlen(line);
        MIXRT_CHECK(ctx, len > 0 && line[len - 1] == '\n', MIXRT_STATUS_INVALID_ARGUMENT,
                    "timing cache '%s' line %d is too long or not terminated; delete the file to rebuild it", path, ln);
        line[--len] = 0;
        if (ln == 1) {
            MIXRT_CHECK(ctx, !strcmp(line, "mixrt-timing-cache 1"), MIXRT_STATUS_INVALID_ARGUMENT,
                        "'%s' is not a mixrt timing cache (version 1); delete it or name another file", path);
            continue;
        }
        if (ln == 2) {
            MIXRT_CHECK(ctx, !strncmp(line, "target ", 7), MIXRT_STATUS_INVALID_ARGUMENT,
                        "timing cache '%s' line 2: expected 'target ...'", path);
            if (strcmp(line + 7, tc->target)) {
                mixrt_log(ctx, MIXRT_LOG_WARNING, "timing cache '%s' was made for '%s', this machine is '%s': "
                          "ignoring it (it will be rewritten)", path, line + 7, tc->target);
                other_target = true;
                break;
            }
            continue;
        }
        if (ln == 3) {
            /* Kernels change between builds, and so do their timings. */
            if (strncmp(line, "build ", 6) || strcmp(line + 6, build_id())) {
                mixrt_log(ctx, MIXRT_LOG_NOTE, "timing cache '%s' was made by another build of mixrt: ignoring its "
                          "timings (it will be rewritten)", path);
                other_target = true;
                break;
            }
            continue;
        }
        char *end;
        errno = 0;
        double ns = strtod(line, &end);
        MIXRT_CHECK(ctx, end != line && *end == ' ' && end[1] && errno == 0 && ns >= 0 && ns < 1e15,
                    MIXRT_STATUS_INVALID_ARGUMENT, "timing cache '%s' line %d is malformed; delete the file to "
                    "rebuild it", path, ln);
        MIXRT_TRY(tc_put(tc, end + 1, ns));
    }
    (void)other_target;
fail:
    fclose(f);
    return status;
}

mixrt_status mixrt_timing_cache_save(struct mixrt_timing_cache *tc, const char *path) {
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return mixrt_error(tc->ctx, MIXRT_STATUS_IO_ERROR, "cannot write timing cache '%s': %s", tmp, strerror(errno));
    fprintf(f, "mixrt-timing-cache 1\ntarget %s\nbuild %s\n", tc->target, build_id());
    for (size_t i = 0; i < tc->n; i++) fprintf(f, "%.0f %s\n", tc->e[i].ns, tc->e[i].key);
    bool ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return mixrt_error(tc->ctx, MIXRT_STATUS_IO_ERROR, "cannot write timing cache '%s': %s", path, strerror(errno));
    }
    return MIXRT_STATUS_OK;
}

/* ---- the process-wide cache --------------------------------------------------------------- */

/* Every measurement is also kept for the life of the process, so engines built in one
 * process (bench --compare builds one per row) share timings and so make the same
 * choices for the same layers, with or without a cache file. */
static pthread_mutex_t process_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mixrt_timing_cache *process_cache;

static bool process_get(const char *key, double *ns) {
    bool found = false;
    pthread_mutex_lock(&process_lock);
    if (process_cache) {
        struct tc_entry *e = tc_find(process_cache, key);
        if (e) {
            *ns = e->ns;
            found = true;
        }
    }
    pthread_mutex_unlock(&process_lock);
    return found;
}

static void process_put(const char *key, double ns) {
    pthread_mutex_lock(&process_lock);
    if (!process_cache) {
        mixrt_context_t pctx = NULL;
        if (mixrt_context_create(NULL, &pctx) == MIXRT_STATUS_OK &&
            mixrt_timing_cache_create(pctx, "process", &process_cache) != MIXRT_STATUS_OK) {
            mixrt_context_destroy(pctx);
            process_cache = NULL;
        }
    }
    if (process_cache) (void)tc_put(process_cache, key, ns); /* best effort: a miss only costs a re-timing */
    pthread_mutex_unlock(&process_lock);
}

/* ---- timing ---------------------------------------------------------------------------- */

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static size_t kput(char *buf, size_t size, size_t off, const char *fmt, ...) MIXRT_PRINTF(4, 5);
static size_t kput(char *buf, size_t size, size_t off, const char *fmt, ...) {
    if (off >= size) return off;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + off, size - off, fmt, ap);
    va_end(ap);
    return n < 0 ? off : off + (size_t)n;
}

/* The cache key of (node as typed in g, kernel); false when it does not fit. */
static bool node_key(const struct mixrt_graph *g, const struct mixrt_node *n, const char *kernel, const char *target,
                     char *buf, size_t size) {
    size_t o = kput(buf, size, 0, "%s|%s|%s|%lld|", target, n->domain, n->op_type, (long long)n->opset);
    for (int a = 0; a < n->n_attrs; a++) {
        const struct mixrt_attr *at = &n->attrs[a];
        o = kput(buf, size, o, "%s=", at->name);
        switch (at->type) {
        case MIXRT_ATTR_INT: o = kput(buf, size, o, "%lld", (long long)at->i); break;
        case MIXRT_ATTR_FLOAT: o = kput(buf, size, o, "%.9g", (double)at->f); break;
        case MIXRT_ATTR_STRING: o = kput(buf, size, o, "%.*s", (int)(at->s_len < 64 ? at->s_len : 64), at->s); break;
        case MIXRT_ATTR_INTS:
            for (size_t j = 0; j < at->n; j++) o = kput(buf, size, o, "%s%lld", j ? "," : "", (long long)at->ints[j]);
            break;
        case MIXRT_ATTR_FLOATS:
            for (size_t j = 0; j < at->n; j++) o = kput(buf, size, o, "%s%.9g", j ? "," : "", (double)at->floats[j]);
            break;
        default: o = kput(buf, size, o, "?"); break;
        }
        o = kput(buf, size, o, ";");
    }
    for (int j = 0; j < n->n_inputs; j++) {
        if (n->inputs[j] < 0) {
            o = kput(buf, size, o, "|-");
            continue;
        }
        const struct mixrt_value *v = &g->values[n->inputs[j]];
        o = kput(buf, size, o, "|%s%s[", v->init ? "c:" : "", mixrt_dtype_name(v->dtype));
        for (int d = 0; d < v->rank; d++) o = kput(buf, size, o, "%s%lld", d ? "x" : "", (long long)v->dims[d].value);
        o = kput(buf, size, o, "]");
    }
    o = kput(buf, size, o, "|%s", kernel);
    for (size_t i = 0; i < o && i < size; i++)
        if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    return o < size;
}

bool mixrt_tactics_memo_get(const struct mixrt_graph *g, const struct mixrt_node *n, const char *kernel,
                            const char *tag, double *v) {
    char key[4096], target[96];
    snprintf(target, sizeof(target), "memo:%s", tag);
    return node_key(g, n, kernel, target, key, sizeof(key)) && process_get(key, v);
}

void mixrt_tactics_memo_put(const struct mixrt_graph *g, const struct mixrt_node *n, const char *kernel,
                            const char *tag, double v) {
    char key[4096], target[96];
    snprintf(target, sizeof(target), "memo:%s", tag);
    if (node_key(g, n, kernel, target, key, sizeof(key))) process_put(key, v);
}

static uint64_t mix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Candidates timed together on one node interleave their runs (one run of each a round), so
 * that a burst of load on a shared machine - seconds long here - slows them alike instead of
 * deciding for whichever ran outside it: timed one after the other, a burst during
 * dnnl_conv1x1_mm's runs cached 762 us for ResNet-50's layer1 conv3 (255-263 us in quiet runs),
 * and the engine ran dnnl_fused_conv there at 0.71-0.72 ms a run. Their states all live
 * until the last finishes, so a node whose constants hold more than INTERLEAVE_MAX_BYTES
 * times its candidates one by one (each packed copy would add its size). */
#define INTERLEAVE_MAX_BYTES ((size_t)16 << 20)
enum { MAX_RUNS = 40, MAX_OUT = 8, MAX_TIMED = MIXRT_CPU_MAX_CANDIDATES };

/* Weights-cold timing. An engine whose constants outgrow the caches reads each layer's weights
 * from memory every run (ResNet-50's 51 MB of bf16 weights), while a candidate timed run after
 * run finds them cached: oneDNN's bf16 7x7x512 3x3 conv timed 261 us so and ran 363-425 us in
 * the engine, Winograd's (16/9 the bytes) 235 and 390-457, ig_conv_nhwc (which prefetches its
 * next weights) 285 and 343-372. So for a node of at least COLD_NODE_BYTES of constants in a
 * graph of at least COLD_GRAPH_BYTES, every timed run follows a read sweep of COLD_SWEEP_BYTES
 * (the weights leave the caches) and a touch of the node's other inputs and outputs (which the
 * engine's previous layer leaves cached); COLD_RUNS runs a candidate, the fastest kept, cached
 * under its own key. Only nodes computing in bf16 or f16: on ResNet-50 the bf16 engine built so
 * ran 2-4 % faster than one built warm (plan runs alternated: 11.29-11.52 ms against
 * 11.84-12.76), while the f32 engine built so ran 1.5-3.5 % slower against ONNX Runtime (0.895-0.917
 * against 0.881-0.891, three alternated pairs: the cold order of its 1x1 and Winograd candidates
 * did not hold in the engine). `MIXRT_COLD_TIMING=off` times every node warm, as before. */
#define COLD_NODE_BYTES ((size_t)1 << 20)
#define COLD_GRAPH_BYTES ((size_t)48 << 20)
#define COLD_SWEEP_BYTES ((size_t)64 << 20)
enum { COLD_RUNS = 6 };

static bool cold_timing(const struct mixrt_graph *g, const struct mixrt_node *n, size_t node_const_bytes) {
    const char *env = getenv("MIXRT_COLD_TIMING");
    if ((env && !strcmp(env, "off")) || node_const_bytes < COLD_NODE_BYTES) return false;
    const int x = n->n_inputs > 0 ? n->inputs[0] : -1;
    if (x < 0 || (g->values[x].dtype != MIXRT_DTYPE_BF16 && g->values[x].dtype != MIXRT_DTYPE_F16)) return false;
    size_t total = 0;
    for (int v = 0; v < g->n_values && total < COLD_GRAPH_BYTES; v++)
        if (g->values[v].init && mixrt_graph_is_fixed_const(g, v)) total += g->values[v].init->nbytes;
    return total >= COLD_GRAPH_BYTES;
}

/* The sweep's bytes, written once (untouched pages would all read the one zero page), in huge
 * pages where the system has them: 64 MiB of 4 KiB pages took 183 ms to fault in here, of 2 MiB
 * pages 5-9 ms. Held only while one node is timed. */
static unsigned char *sweep_alloc(void) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    void *p = mmap(NULL, COLD_SWEEP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    (void)madvise(p, COLD_SWEEP_BYTES, MADV_HUGEPAGE);
#else
    void *p = malloc(COLD_SWEEP_BYTES);
    if (!p) return NULL;
#endif
    memset(p, 1, COLD_SWEEP_BYTES);
    return p;
}

static void sweep_free(unsigned char *p) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    munmap(p, COLD_SWEEP_BYTES);
#else
    free(p);
#endif
}

/* Reads n bytes at p a line at a time (volatile: the loads stay). */
static void touch(const void *p, size_t n) {
    const volatile unsigned char *b = p;
    unsigned char s = 0;
    for (size_t i = 0; i < n; i += 64) s ^= b[i];
    (void)s;
}

/* Whether n is a convolution (ONNX Conv or com.mixrt FusedConv). */
static bool is_conv(const struct mixrt_node *n) {
    return (!strcmp(n->domain, MIXRT_DOMAIN) && !strcmp(n->op_type, "FusedConv")) ||
           (!n->domain[0] && !strcmp(n->op_type, "Conv"));
}

/* Producer-split timing. In the engine a conv's input was just written by the layer before,
 * whose threads each wrote their share of its rows, so each thread's cache holds its share,
 * modified; a candidate timed run after run finds the whole input in both threads' caches. A
 * kernel that splits its work by channel groups reads half its input from the other core there
 * and not here: RegNet-X-400MF's first grouped conv (112x112x32 -> 56x56x32, bf16) had oneDNN's
 * kernel at 55 us timed and 124-145 us in the engine, gconv16_nhwc (rows split between the
 * threads) at 61 and 75. So before each timed run of a grouped conv (not depthwise: those
 * kernels split rows alike) the threads rewrite X in contiguous shares, as such a producer
 * would. `MIXRT_SPLIT_TIMING=off` times them as the others. */
static bool split_timing(const struct mixrt_graph *g, const struct mixrt_node *n) {
    const char *env = getenv("MIXRT_SPLIT_TIMING");
    if (env && !strcmp(env, "off")) return false;
    if (!is_conv(n) || n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || mixrt_node_attr_int(n, "group", 1) < 2)
        return false;
    const struct mixrt_value *w = &g->values[n->inputs[1]];
    return w->rank >= 3 && w->dims[1].value > 1;
}

/* Each thread rewrites its contiguous share of n bytes at p, a line at a time (volatile: the
 * stores stay; the values are unchanged). */
static void split_touch(void *p, size_t n) {
#ifdef _OPENMP
#pragma omp parallel
    {
        const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        const size_t a = n / nt * t, b = t + 1 == nt ? n : n / nt * (t + 1);
        volatile unsigned char *c = p;
        for (size_t i = a; i < b; i += 64) c[i] = c[i];
    }
#else
    (void)p, (void)n;
#endif
}

struct timed {
    const struct mixrt_cpu_kernel *kern;
    void *state;
    double t[MAX_RUNS], total;
    int runs;
    bool done;
};

/* One run of t's kernel into the node's output buffers; its time in *dt. */
static mixrt_status run_once(struct mixrt_graph *g, const struct mixrt_node *n, struct timed *tm,
                             const struct mixrt_tensor *const *in, void *const *obuf, const size_t *obytes,
                             struct mixrt_exec_scratch *scratch, double *dt) {
    mixrt_context_t ctx = g->ctx;
    struct mixrt_tensor out[MAX_OUT];
    bool wanted[MAX_OUT], is_seq[MAX_OUT];
    struct mixrt_seq oseq[MAX_OUT];
    const struct mixrt_seq *in_seq[16] = {0};
    unsigned oflags = MIXRT_TENSOR_PREBOUND | (mixrt_memplan_kernel_writes_all(tm->kern) ? MIXRT_TENSOR_UNINIT : 0);
    memset(out, 0, sizeof(out));
    memset(oseq, 0, sizeof(oseq));
    for (int j = 0; j < n->n_outputs; j++) {
        wanted[j] = n->outputs[j] >= 0;
        is_seq[j] = false;
        if (obuf[j]) {
            out[j].data = obuf[j];
            out[j].capacity = obytes[j];
            out[j].flags = oflags;
        }
    }
    struct mixrt_kernel_ctx k = {
        .ctx = ctx, .graph = g, .node = n, .opset = n->opset, .n_in = n->n_inputs, .in = in, .in_seq = in_seq,
        .n_out = n->n_outputs, .out = out, .out_seq = oseq, .out_is_seq = is_seq, .out_wanted = wanted,
        .env = NULL, .state = tm->state, .scratch = scratch,
    };
    double t0 = now_ns();
    mixrt_status status = tm->kern->run(&k);
    *dt = now_ns() - t0;
    for (int j = 0; j < n->n_outputs; j++) {
        /* A borrowed buffer (flags cleared by the kernel's output call) is only forgotten. */
        if (obuf[j] && out[j].data == obuf[j]) memset(&out[j], 0, sizeof(out[j]));
        mixrt_tensor_release(ctx, &out[j]);
        mixrt_seq_release(ctx, &oseq[j]);
    }
    if (status != MIXRT_STATUS_OK) mixrt_error_prefix(ctx, "timing kernel '%s'", tm->kern->name);
    return status;
}

/* Times the nt kernels of tm on node n of g with inputs in, interleaved; each one's fastest
 * run in tm[i].t[0]. cold: weights-cold timing (above). */
static mixrt_status time_kernels(struct mixrt_graph *g, const struct mixrt_node *n, struct timed *tm, int nt,
                                 const struct mixrt_tensor *const *in, bool cold, bool split) {
    mixrt_context_t ctx = g->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    /* Outputs of static shape get one buffer each, touched once and handed to every run
     * as the engine hands over its arena slices: a fresh allocation per run would time
     * the page faults of a first touch (~0.1 ms per MiB here), which the engine never
     * pays and which swamped the choice between memory-bound kernels. */
    void *obuf[MAX_OUT] = {0};
    size_t obytes[MAX_OUT] = {0};
    /* The kernels' scratch, kept across the runs as an engine keeps its own. */
    struct mixrt_exec_scratch scratch = {NULL, 0};
    unsigned char *sweep = NULL;
    for (int i = 0; i < nt; i++) tm[i].state = NULL, tm[i].runs = 0, tm[i].total = 0, tm[i].done = false;
    MIXRT_CHECK(ctx, n->n_outputs <= MAX_OUT && n->n_inputs <= 16, MIXRT_STATUS_UNSUPPORTED,
                "%s node '%s' has too many inputs/outputs to time", n->op_type, n->name);
    for (int j = 0; j < n->n_outputs; j++) {
        size_t b;
        if (n->outputs[j] < 0 || !mixrt_memplan_value_bytes(&g->values[n->outputs[j]], &b) || b == 0) continue;
        obuf[j] = mixrt_alloc(ctx, b);
        if (!obuf[j]) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        memset(obuf[j], 0, b);
        obytes[j] = b;
    }
    for (int i = 0; i < nt; i++)
        if (tm[i].kern->prepare) MIXRT_TRY(tm[i].kern->prepare(ctx, g, n, &tm[i].state));
    if (cold && !(sweep = sweep_alloc())) cold = false; /* no memory: timed warm */
    /* Round -1 warms caches and lazily made primitives; then each kernel runs until about
     * 20 ms (at least 4 runs) or MAX_RUNS have passed, or COLD_RUNS runs when cold. */
    for (int r = -1, left = nt; left > 0; r++)
        for (int i = 0; i < nt; i++) {
            if (tm[i].done) continue;
            double dt;
            if (cold && r >= 0) {
                touch(sweep, COLD_SWEEP_BYTES);
                for (int j = 0; j < n->n_inputs; j++)
                    if (in[j] && n->inputs[j] >= 0 && !g->values[n->inputs[j]].init) touch(in[j]->data, in[j]->nbytes);
                for (int j = 0; j < n->n_outputs && j < MAX_OUT; j++)
                    if (obuf[j]) touch(obuf[j], obytes[j]);
            }
            if (split && in[0]) split_touch(in[0]->data, in[0]->nbytes);
            MIXRT_TRY(run_once(g, n, &tm[i], in, obuf, obytes, &scratch, &dt));
            if (r < 0) continue;
            tm[i].t[tm[i].runs++] = dt;
            tm[i].total += dt;
            if (tm[i].runs == MAX_RUNS || (!cold && tm[i].runs >= 4 && tm[i].total >= 20e6) ||
                (cold && tm[i].runs >= COLD_RUNS))
                tm[i].done = true, left--;
        }
    /* The minimum: on a shared machine interference only ever adds time, so the fastest
     * run is the best estimate of the kernel's own cost (and the most reproducible). */
    for (int i = 0; i < nt; i++) qsort(tm[i].t, (size_t)tm[i].runs, sizeof(double), cmp_double);
fail:
    for (int i = 0; i < nt; i++)
        if (tm[i].kern->release && tm[i].state) tm[i].kern->release(ctx, tm[i].state), tm[i].state = NULL;
    for (int j = 0; j < n->n_outputs && j < MAX_OUT; j++)
        if (obuf[j]) mixrt_free(ctx, obuf[j], obytes[j]);
    mixrt_free(ctx, scratch.p, scratch.bytes);
    if (sweep) sweep_free(sweep);
    return status;
}

/* The size of dim d of non-constant input v of node n to time with: its own, or 1 for the
 * batch of a convolution that only the data decides (a detector's mask head runs on the
 * boxes found: Mask R-CNN's four 3x3 convolutions and the mask upsampler at [boxes, 256, 14,
 * 14] took the first candidate untimed, the direct convolution, at 190 ms each where Winograd
 * ran 105). A convolution's cost per image, and so the candidates' order, hardly depends on
 * the batch. -1: unknown, not timed. */
static int64_t timed_dim(const struct mixrt_node *n, const struct mixrt_value *v, int d) {
    int64_t x = v->dims[d].value;
    if (x >= 0 || d != 0 || !is_conv(n) || v->rank < 3) return x;
    for (int e = 1; e < v->rank; e++)
        if (v->dims[e].value < 0) return x;
    return 1;
}

mixrt_status mixrt_tactics_choose(struct mixrt_graph *g, int ni, struct mixrt_timing_cache *tc, bool time_ref,
                                  int verbose, bool remeasure, const struct mixrt_cpu_kernel **best, double *best_ns,
                                  bool *measured, struct mixrt_tactic_alt *alt) {
    mixrt_context_t ctx = g->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_node *n = &g->nodes[ni];
    size_t nc;
    const struct mixrt_cpu_kernel *const *cands = mixrt_cpu_kernels_for(n, &nc);
    const struct mixrt_cpu_kernel *list[MIXRT_CPU_MAX_CANDIDATES];
    size_t ns = 0;
    struct mixrt_tensor tin[16];
    const struct mixrt_tensor *in[16] = {0};
    bool made[16] = {0};
    char why[256], key[4096];
    for (size_t i = 0; i < nc && ns < MIXRT_CPU_MAX_CANDIDATES; i++) {
        why[0] = 0;
        if (cands[i]->supports(g, n, why, sizeof(why))) list[ns++] = cands[i];
        else if (verbose && strcmp(cands[i]->name, "ref"))
            mixrt_log(ctx, MIXRT_LOG_NOTE, "  %s '%s': kernel %s refused: %s", n->op_type, n->name, cands[i]->name, why);
    }
    *best = ns ? list[0] : NULL;
    *best_ns = -1;
    if (alt) alt->kern = NULL, alt->ns = -1;
    if (ns == 0) return MIXRT_STATUS_OK;
    bool only_ref = ns == 1 && !strcmp(list[0]->name, "ref");
    if (ns == 1 && !(only_ref && time_ref)) return MIXRT_STATUS_OK; /* nothing to choose between */
    /* Static shapes are needed to make inputs, and sizes worth timing: beyond 256 MiB of
     * inputs the first candidate is taken untimed (the run would cost more than a
     * choice could save, and absurd declared shapes must not fail the build here). */
    if (n->n_inputs > 16) return MIXRT_STATUS_OK;
    size_t total = 0;
    for (int j = 0; j < n->n_inputs; j++) {
        if (n->inputs[j] < 0) continue;
        const struct mixrt_value *v = &g->values[n->inputs[j]];
        if (v->init) continue;
        if (v->rank < 0 || v->dtype == MIXRT_DTYPE_UNDEFINED || !mixrt_dtype_is_supported(v->dtype) ||
            v->dtype == MIXRT_DTYPE_STRING)
            return MIXRT_STATUS_OK;
        size_t bytes = mixrt_dtype_size(v->dtype);
        for (int d = 0; d < v->rank; d++)
            if (timed_dim(n, v, d) < 0 || !mixrt_mul_size(bytes, (size_t)timed_dim(n, v, d), &bytes)) return MIXRT_STATUS_OK;
        if (!mixrt_add_size(total, bytes, &total) || total > ((size_t)256 << 20)) return MIXRT_STATUS_OK;
    }
    /* Weights-cold or warm (above): the cache keeps the two apart by target. */
    size_t node_bytes = 0;
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] >= 0 && g->values[n->inputs[j]].init) node_bytes += g->values[n->inputs[j]].init->nbytes;
    const bool cold = cold_timing(g, n, node_bytes), split = split_timing(g, n);
    char target[192]; /* the cache's target (160) and the suffixes */
    snprintf(target, sizeof(target), "%s%s%s", tc ? tc->target : "", cold ? " weights-cold" : "",
             split ? " split-warm" : "");
    /* Cached times first; the rest measured together (time_kernels), then reported in order. */
    double t[MIXRT_CPU_MAX_CANDIDATES];
    int src[MIXRT_CPU_MAX_CANDIDATES]; /* 0 measured, 1 timing cache, 2 measured earlier in this process, -1 skipped */
    struct timed tm[MAX_TIMED];
    int nt = 0, slot[MIXRT_CPU_MAX_CANDIDATES];
    for (size_t c = 0; c < ns; c++) {
        t[c] = -1, src[c] = -1, slot[c] = -1;
        if (!strcmp(list[c]->name, "ref") && !only_ref) continue; /* the reference is the slowest by design */
        bool keyed = node_key(g, n, list[c]->name, target, key, sizeof(key));
        struct tc_entry *hit = !remeasure && tc && keyed ? tc_find(tc, key) : NULL;
        if (hit) {
            t[c] = hit->ns, src[c] = 1;
            tc->hits++;
        } else if (!remeasure && keyed && process_get(key, &t[c])) {
            src[c] = 2;
            if (tc) MIXRT_TRY(tc_put(tc, key, t[c]));
        } else {
            if (tc) tc->misses++;
            src[c] = 0, slot[c] = nt;
            tm[nt++].kern = list[c];
        }
    }
    if (nt) {
        /* Inputs made once per node. */
        uint64_t seed = 0x6d69787274ull;
        size_t const_bytes = 0;
        for (int j = 0; j < n->n_inputs; j++) {
            if (n->inputs[j] < 0 || made[j]) continue;
            const struct mixrt_value *v = &g->values[n->inputs[j]];
            if (v->init) {
                in[j] = v->init;
                const_bytes += v->init->nbytes;
                continue;
            }
            int64_t dims[MIXRT_MAX_RANK];
            for (int d = 0; d < v->rank; d++) dims[d] = timed_dim(n, v, d);
            MIXRT_TRY(mixrt_tensor_init(ctx, &tin[j], v->dtype, v->rank, dims));
            made[j] = true;
            size_t cnt = mixrt_tensor_numel(&tin[j]);
            for (size_t e = 0; e < cnt; e++) {
                double r = (double)(mix64(&seed) >> 11) * (1.0 / 9007199254740992.0);
                if (v->dtype == MIXRT_DTYPE_BOOL) ((uint8_t *)tin[j].data)[e] = r < 0.5;
                else if (mixrt_dtype_is_float(v->dtype)) mixrt_store_f64(tin[j].data, v->dtype, e, 2 * r - 1);
                else if (v->dtype != MIXRT_DTYPE_STRING) mixrt_store_i64(tin[j].data, v->dtype, e, 0);
            }
            in[j] = &tin[j];
        }
        if (const_bytes <= INTERLEAVE_MAX_BYTES) {
            MIXRT_TRY(time_kernels(g, n, tm, nt, in, cold, split));
        } else {
            for (int i = 0; i < nt; i++) MIXRT_TRY(time_kernels(g, n, &tm[i], 1, in, cold, split));
        }
        if (measured) *measured = true;
#ifdef __GLIBC__
        /* The candidates' states are gone: their memory goes back to the system before the
         * next node's trials, instead of staying in the heap and adding to the build's peak
         * (FCN-ResNet50 fp32: 533 -> ... MiB). */
        malloc_trim(0);
#endif
    }
    double best_t = -1;
    for (size_t c = 0; c < ns; c++) {
        if (src[c] < 0) continue;
        if (src[c] == 0) {
            t[c] = tm[slot[c]].t[0];
            bool keyed = node_key(g, n, list[c]->name, target, key, sizeof(key));
            if (remeasure && keyed) {
                /* A second window: the fastest of both measurements stands. */
                struct tc_entry *old = tc ? tc_find(tc, key) : NULL;
                double prev;
                if (old && old->ns < t[c]) t[c] = old->ns;
                if (process_get(key, &prev) && prev < t[c]) t[c] = prev;
            }
            if (tc && keyed) MIXRT_TRY(tc_put(tc, key, t[c]));
            if (keyed) process_put(key, t[c]);
        }
        if (verbose)
            mixrt_log(ctx, MIXRT_LOG_NOTE, "  %s '%s': kernel %s %.1f us%s", n->op_type, n->name, list[c]->name,
                      t[c] / 1e3,
                      src[c] == 1 ? " (timing cache)" : src[c] == 2 ? " (measured earlier in this process)" : "");
        if (best_t < 0 || t[c] < best_t) {
            best_t = t[c];
            *best = list[c];
        }
        if (alt && mixrt_cpu_kernel_weight_growth(list[c]) == 1.0 && (alt->ns < 0 || t[c] < alt->ns))
            alt->kern = list[c], alt->ns = t[c];
    }
    *best_ns = best_t;
fail:
    for (int j = 0; j < 16; j++)
        if (made[j]) mixrt_tensor_release(ctx, &tin[j]);
    return status;
}

bool mixrt_tactics_data_batch(const struct mixrt_graph *g, const struct mixrt_node *nd, double *img_bytes) {
    if (nd->n_inputs < 2) return false;
    const struct mixrt_value *x = nd->inputs[0] >= 0 ? &g->values[nd->inputs[0]] : NULL;
    const struct mixrt_value *w = nd->inputs[1] >= 0 ? &g->values[nd->inputs[1]] : NULL;
    if (!x || !w || x->rank != 4 || w->rank != 4 || x->dims[0].value >= 0) return false;
    for (int d = 1; d < 4; d++)
        if (x->dims[d].value < 0) return false;
    bool last = mixrt_node_attr_int(nd, "channels_last", 0) != 0;
    double c = (double)x->dims[last ? 3 : 1].value, h = (double)x->dims[last ? 1 : 2].value,
           wd = (double)x->dims[last ? 2 : 3].value, m = (double)w->dims[0].value;
    *img_bytes = ceil(h / 4) * ceil(wd / 4) * 36.0 * (c + m) * 4.0;
    return true;
}

double mixrt_wino_budget_for(double consts, double *factor_out) {
    const char *s = getenv("MIXRT_WINO_BUDGET"), *fl = getenv("MIXRT_WINO_BUDGET_MIN_MB");
    double factor = 1.0;
    if (s && *s) {
        char *end;
        double f = strtod(s, &end);
        factor = !strcmp(s, "off") ? -1.0 : *end || f < 0 ? 1.0 : f;
    }
    if (factor_out) *factor_out = factor;
    if (factor < 0) return -1;
    const double floor_bytes = (fl && *fl ? atof(fl) : 64.0) * 1e6;
    return factor * (consts > floor_bytes ? consts : floor_bytes);
}

double mixrt_wino_budget_bytes(const struct mixrt_graph *g, double *factor_out, double *consts_out) {
    double consts = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].init) consts += (double)g->values[v].init->nbytes;
    if (consts_out) *consts_out = consts;
    return mixrt_wino_budget_for(consts, factor_out);
}

