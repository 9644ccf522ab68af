/* threads.h - binding a CPU run's OpenMP team to the CPUs it may use (threads.c says when and
 * why). */
#ifndef MIXRT_CORE_THREADS_H
#define MIXRT_CORE_THREADS_H

#include <stdbool.h>

struct mixrt_thread_binding {
    bool bound;                                              /* the calling thread is bound until _end */
    unsigned long saved[1024 / (8 * sizeof(unsigned long))]; /* its mask before (a cpu_set_t) */
};

/* Before a run, on the thread that runs it; every _begin is followed by one _end. */
void mixrt_threads_bind_begin(struct mixrt_thread_binding *b);
void mixrt_threads_bind_end(struct mixrt_thread_binding *b);

#endif
