/* test_threads.c - where a CPU engine's run puts its threads (src/core/threads.c): with one
 * OpenMP thread per CPU the caller may use, worker t stays on the t-th of those CPUs and a
 * caller found elsewhere than on the first is bound there while the run lasts and gets its own
 * mask back after it;
 * with a smaller team, a caller restricted by the application, MIXRT_AFFINITY=off (the second
 * registration of this test) or the user's own OMP_PROC_BIND / OMP_PLACES / GOMP_CPU_AFFINITY,
 * nothing is bound. Each run's outputs are compared with the f64 reference engine's, so the
 * binding is checked on runs that did their work. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_SET */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/engine_impl.h"
#include "mixrt/mixrt.h"
#include "mixrt/mixrt_engine.h"
#include "testutil.h"

static mixrt_context_t ctx;

struct seen {
    cpu_set_t want, alt; /* the caller's mask every layer should see: one of these */
    int layers, wrong;
};

static void observe(void *user, const struct mixrt_graph *g, int node, int value, const struct mixrt_tensor *t) {
    (void)g, (void)node, (void)value, (void)t;
    struct seen *s = user;
    cpu_set_t now;
    s->layers++;
    if (sched_getaffinity(0, sizeof(now), &now) != 0 || !(CPU_EQUAL(&now, &s->want) || CPU_EQUAL(&now, &s->alt)))
        s->wrong++;
}

static int nth_cpu(const cpu_set_t *set, int t) {
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, set) && t-- == 0) return c;
    return -1;
}

static cpu_set_t only(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return s;
}

/* Largest difference of the run's first output from the reference's, relative to the
 * reference's largest magnitude. */
static double out_error(const struct mixrt_tensor *a, const struct mixrt_tensor *r) {
    if (!a || !r || a->dtype != r->dtype || !mixrt_dtype_is_float(a->dtype)) return INFINITY;
    size_t n = mixrt_tensor_numel(a), es = mixrt_dtype_size(a->dtype);
    if (n == 0 || n != mixrt_tensor_numel(r)) return INFINITY;
    double worst = 0, mag = 0;
    for (size_t i = 0; i < n; i++) {
        double x, y;
        mixrt_convert(&x, MIXRT_DTYPE_F64, (const char *)a->data + i * es, a->dtype, 1);
        mixrt_convert(&y, MIXRT_DTYPE_F64, (const char *)r->data + i * es, r->dtype, 1);
        if (!(fabs(x - y) <= worst)) worst = fabs(x - y);
        if (fabs(y) > mag) mag = fabs(y);
    }
    return mag > 0 ? worst / mag : INFINITY;
}

/* One observed run of e (and of the reference r), the caller's mask during it checked against
 * want or alt and after it against before. */
static void run_checked(mixrt_engine_t e, mixrt_engine_t r, const cpu_set_t *want, const cpu_set_t *alt,
                        const char *what) {
    int64_t dims[2] = {4, 64};
    struct mixrt_tensor *x = NULL, *y[8] = {0}, *yr[8] = {0};
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 2, dims, &x) == MIXRT_STATUS_OK, "%s: input", what);
    if (!x) return;
    for (int i = 0; i < 4 * 64; i++) ((float *)x->data)[i] = (float)tu_uniform(-1, 1);
    const char *names[1] = {"x"};
    const struct mixrt_tensor *in[1] = {x};
    cpu_set_t before, after;
    TU_CHECK(sched_getaffinity(0, sizeof(before), &before) == 0, "%s: sched_getaffinity", what);
    struct seen s = {*want, *alt, 0, 0};
    mixrt_status st = mixrt_engine_run_observed(e, 1, names, in, y, observe, &s);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: run failed: %s", what, mixrt_context_last_error(ctx));
    TU_CHECK(s.layers > 0 && s.wrong == 0, "%s: the caller's mask was not the expected one in %d of %d layers", what,
             s.wrong, s.layers);
    TU_CHECK(sched_getaffinity(0, sizeof(after), &after) == 0 && CPU_EQUAL(&before, &after),
             "%s: the caller's mask was not restored after the run", what);
    TU_CHECK(mixrt_engine_run(r, 1, names, in, yr) == MIXRT_STATUS_OK, "%s: reference run", what);
    double err = out_error(y[0], yr[0]);
    TU_CHECK(err < 1e-4, "%s: output differs from the f64 reference by %g", what, err);
    for (int i = 0; i < 8; i++) mixrt_tensor_destroy(ctx, y[i]), mixrt_tensor_destroy(ctx, yr[i]);
    mixrt_tensor_destroy(ctx, x);
}

#ifdef _OPENMP
/* Every worker (t > 0) of a team of n: bound to the t-th CPU of mask (bound) or not bound to a
 * single CPU where mask has more than one. */
static void check_workers(int n, const cpu_set_t *mask, bool bound, const char *what) {
    int wrong = 0, seen = 0;
#pragma omp parallel num_threads(n) reduction(+ : wrong, seen)
    {
        int t = omp_get_thread_num();
        cpu_set_t m;
        if (t > 0) {
            seen++;
            if (sched_getaffinity(0, sizeof(m), &m) != 0)
                wrong++;
            else if (bound) {
                cpu_set_t w = only(nth_cpu(mask, t));
                wrong += !CPU_EQUAL(&m, &w);
            } else {
                wrong += CPU_COUNT(mask) > 1 && CPU_COUNT(&m) == 1;
            }
        }
    }
    TU_CHECK(seen == n - 1 && wrong == 0, "%s: %d of %d workers %s", what, wrong, seen,
             bound ? "not on their own CPU" : "bound to one CPU");
}
#endif

int main(void) {
    const char *bin = getenv("MIXRT_BINARY_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/engine_models/mlp_f32.onnx", bin ? bin : "build");
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    tu_seed(48);
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    mixrt_engine_t e = NULL, r = NULL;
    TU_CHECK(mixrt_engine_build(ctx, path, &o, &e) == MIXRT_STATUS_OK, "build %s: %s", path,
             mixrt_context_last_error(ctx));
    TU_CHECK(mixrt_engine_build_reference(ctx, path, NULL, 0, &r) == MIXRT_STATUS_OK, "reference %s", path);
    if (!e || !r) return tu_finish("test_threads");

    cpu_set_t mask;
    TU_CHECK(sched_getaffinity(0, sizeof(mask), &mask) == 0, "sched_getaffinity");
    const char *off = getenv("MIXRT_AFFINITY");
    bool wanted = !(off && (!strcmp(off, "off") || !strcmp(off, "0"))) && !getenv("OMP_PROC_BIND") &&
                  !getenv("OMP_PLACES") && !getenv("GOMP_CPU_AFFINITY");
    int team = 1;
#ifdef _OPENMP
    team = omp_get_max_threads();
#else
    wanted = false;
#endif
    bool bind = wanted && team >= 2 && CPU_COUNT(&mask) == team;
    printf("test_threads: %d CPUs, team of %d, binding %s\n", CPU_COUNT(&mask), team,
           bind ? "expected" : "not expected");

    /* the default team, the caller wherever the scheduler has it: bound to the first CPU for
     * the run, or left alone because it is there (twice: the workers are bound once) */
    cpu_set_t first = only(nth_cpu(&mask, 0)), last = only(nth_cpu(&mask, CPU_COUNT(&mask) - 1));
    run_checked(e, r, bind ? &first : &mask, &mask, "default team");
    run_checked(e, r, bind ? &first : &mask, &mask, "default team, second run");
#ifdef _OPENMP
    check_workers(team, &mask, bind, "default team");
#endif

    /* the caller on the last CPU of its mask when the run starts (its mask widened back: a
     * running thread alone on its CPU stays there): bound to the first CPU for the run */
    if (CPU_COUNT(&mask) >= 2) {
        TU_CHECK(sched_setaffinity(0, sizeof(last), &last) == 0 && sched_setaffinity(0, sizeof(mask), &mask) == 0,
                 "sched_setaffinity");
        run_checked(e, r, bind ? &first : &mask, bind ? &first : &mask, "caller started on the last CPU");
        /* on the first CPU: already in place, its mask left as it is */
        TU_CHECK(sched_setaffinity(0, sizeof(first), &first) == 0 && sched_setaffinity(0, sizeof(mask), &mask) == 0,
                 "sched_setaffinity");
        run_checked(e, r, &mask, &mask, "caller started on the first CPU");
#ifdef _OPENMP
        check_workers(team, &mask, bind, "after the runs");
#endif
    }

    /* a caller the application restricted to one CPU other than the first: left as it is */
    if (CPU_COUNT(&mask) >= 2) {
        TU_CHECK(sched_setaffinity(0, sizeof(last), &last) == 0, "sched_setaffinity");
        run_checked(e, r, &last, &last, "caller restricted to one CPU");
        TU_CHECK(sched_setaffinity(0, sizeof(mask), &mask) == 0, "sched_setaffinity back");
    }

#ifdef _OPENMP
    /* a team smaller than the CPU set: nothing bound during the run */
    if (team >= 2) {
        omp_set_num_threads(team - 1);
        run_checked(e, r, &mask, &mask, "team smaller than the CPU set");
        omp_set_num_threads(team);
    }
    /* a run inside the application's own parallel region: nothing bound */
    int inside_ok = 1;
#pragma omp parallel num_threads(1) reduction(& : inside_ok)
    {
        cpu_set_t now;
        inside_ok = sched_getaffinity(0, sizeof(now), &now) == 0;
        if (inside_ok) run_checked(e, r, &now, &now, "run inside a parallel region");
    }
    TU_CHECK(inside_ok, "sched_getaffinity inside a parallel region");
#endif

    mixrt_engine_destroy(e);
    mixrt_engine_destroy(r);
    mixrt_context_destroy(ctx);
    return tu_finish("test_threads");
}
