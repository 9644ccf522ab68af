/* threads.c - where a CPU run's threads execute.
 *
 * The CPU kernels split their work statically between the OpenMP team, so one thread that
 * cannot run stalls every thread at the next barrier. After an idle gap (an application
 * serving requests, or bench's rounds with ONNX Runtime's between mixrt's), the workers wake
 * from sleep, and Linux sometimes wakes a worker onto the CPU the calling thread runs on; the
 * two then share one CPU until the load balancer moves one, a tick or more later. Measured on
 * this project's 2-vCPU machine (MnasNet, bf16, 1.9 ms run back to back): with 5 ms of sleep
 * between runs the median rose to 2.2 ms and the 95th percentile to 12.8 ms, the worst run
 * 23 ms; with the worker on its own CPU and the caller on the other, p95 2.3 ms.
 *
 * So, when the team covers exactly the CPUs the calling thread may use (the default: one
 * thread per CPU), team member t > 0 is bound to the t-th of those CPUs, once (the workers
 * live on in libgomp's pool; done again when the team or the CPU set changes), and the
 * calling thread belongs on the first: a run that finds it elsewhere binds it there until the
 * run ends and then gives it its own mask back, so nothing the application does between runs
 * (threads it creates, processes it starts) inherits a binding. Finding it in place costs no
 * system call (sched_getcpu); the bind and restore cost ~6 us here, the move ~16 us more.
 * Nothing is bound when the user placed the threads (OMP_PROC_BIND, OMP_PLACES,
 * GOMP_CPU_AFFINITY), when the team is smaller or larger than the CPU set, inside an
 * OpenMP parallel region, or with MIXRT_AFFINITY=off. */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include "core/threads.h"

#include <stdlib.h>
#include <string.h>

#if defined(__linux__) && defined(_OPENMP)
#include <omp.h>
#include <sched.h>

_Static_assert(sizeof(cpu_set_t) == sizeof(((struct mixrt_thread_binding *)0)->saved), "saved holds a cpu_set_t");

/* Per application thread: each one that runs engines has its own libgomp pool. */
static _Thread_local int pinned_team;     /* team size whose workers are bound; 0 none; -team: */
                                          /* binding that team failed (not tried again) */
static _Thread_local cpu_set_t pinned_on; /* the CPU set they were bound within (or tried) */
static _Thread_local int pinned_first;    /* its first CPU: the caller's */

static bool placement_wanted(void) {
    static int wanted = -1; /* read once: the environment of the process's start */
    int w = __atomic_load_n(&wanted, __ATOMIC_RELAXED);
    if (w < 0) {
        const char *off = getenv("MIXRT_AFFINITY");
        w = !(off && (!strcmp(off, "off") || !strcmp(off, "0"))) && !getenv("OMP_PROC_BIND") && !getenv("OMP_PLACES") &&
            !getenv("GOMP_CPU_AFFINITY");
        __atomic_store_n(&wanted, w, __ATOMIC_RELAXED);
    }
    return w != 0;
}

/* The t-th CPU of set (t counted from 0), or -1. */
static int nth_cpu(const cpu_set_t *set, int t) {
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, set) && t-- == 0) return c;
    return -1;
}

static void bind_workers(const cpu_set_t *mask, int team) {
    int ok = 1;
#pragma omp parallel num_threads(team) reduction(& : ok)
    {
        int t = omp_get_thread_num();
        if (t > 0 && omp_get_num_threads() == team) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(nth_cpu(mask, t), &one);
            ok = sched_setaffinity(0, sizeof(one), &one) == 0;
        } else if (omp_get_num_threads() != team) {
            ok = 0;
        }
    }
    pinned_team = ok ? team : -team;
    pinned_on = *mask;
    pinned_first = nth_cpu(mask, 0);
}

void mixrt_threads_bind_begin(struct mixrt_thread_binding *b) {
    b->bound = false;
    if (!placement_wanted() || omp_get_level() > 0) return; /* inside any parallel region, even a team of one */
    int team = omp_get_max_threads();
    if (team < 2) return;
    /* the common case, without a system call: the workers bound, the caller where it belongs */
    if (pinned_team == team && sched_getcpu() == pinned_first) return;
    cpu_set_t mask;
    if (sched_getaffinity(0, sizeof(mask), &mask) != 0 || CPU_COUNT(&mask) != team) return;
    if ((pinned_team != team && pinned_team != -team) || !CPU_EQUAL(&pinned_on, &mask)) bind_workers(&mask, team);
    int first = pinned_first;
    if (pinned_team != team || sched_getcpu() == first) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) return;
    memcpy(b->saved, &mask, sizeof(mask));
    b->bound = true;
}

void mixrt_threads_bind_end(struct mixrt_thread_binding *b) {
    if (!b->bound) return;
    cpu_set_t mask;
    memcpy(&mask, b->saved, sizeof(mask));
    (void)sched_setaffinity(0, sizeof(mask), &mask);
    b->bound = false;
}

#else

void mixrt_threads_bind_begin(struct mixrt_thread_binding *b) { b->bound = false; }
void mixrt_threads_bind_end(struct mixrt_thread_binding *b) { b->bound = false; }

#endif
