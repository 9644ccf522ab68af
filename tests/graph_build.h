/* graph_build.h - the two helpers every pass test uses to build graphs by hand: a typed value
 * and a graph input. Header-only (static), for tests/test_*.c. */
#ifndef MIXRT_TESTS_GRAPH_BUILD_H
#define MIXRT_TESTS_GRAPH_BUILD_H

#include <string.h>

#include "core/core.h"
#include "ir/graph.h"

/* Value name (added when new) with dtype dt and static dims[rank]. */
static inline int add_value(struct mixrt_graph *g, const char *name, mixrt_dtype dt, int rank, const int64_t *dims) {
    int vi = mixrt_graph_get_or_add_value(g, name);
    struct mixrt_value *v = &g->values[vi];
    v->dtype = dt;
    v->rank = rank;
    for (int i = 0; i < rank; i++) {
        v->dims[i].value = dims[i];
        v->dims[i].param = NULL;
    }
    return vi;
}

/* add_value, declared as the graph's next input. */
static inline int add_input(struct mixrt_graph *g, const char *name, mixrt_dtype dt, int rank, const int64_t *dims) {
    int vi = add_value(g, name, dt, rank, dims);
    g->values[vi].flags |= MIXRT_VALUE_GRAPH_INPUT;
    int *ins = mixrt_arena_calloc(g->arena, (size_t)g->n_inputs + 1, sizeof(int));
    if (g->n_inputs) memcpy(ins, g->inputs, (size_t)g->n_inputs * sizeof(int));
    ins[g->n_inputs++] = vi;
    g->inputs = ins;
    return vi;
}

#endif /* MIXRT_TESTS_GRAPH_BUILD_H */
