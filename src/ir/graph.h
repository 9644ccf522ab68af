/* graph.h - the IR: values (dtype + shape with symbolic dims, optional constant data),
 * nodes (op, domain, resolved opset, inputs/outputs by value index, attributes) and
 * graphs, all allocated from the graph's arena. Subgraphs (If/Loop/Scan bodies) are
 * graphs with a parent; names they use but do not define resolve in the parent. */
#ifndef MIXRT_IR_GRAPH_H
#define MIXRT_IR_GRAPH_H

#include "core/core.h"

/* A dimension: value >= 0 is known; value < 0 is unknown, symbolic when param != NULL. */
struct mixrt_dim {
    int64_t value;
    const char *param;
};

enum mixrt_value_flags {
    MIXRT_VALUE_GRAPH_INPUT = 1u << 0,
    MIXRT_VALUE_GRAPH_OUTPUT = 1u << 1,
    MIXRT_VALUE_INITIALIZER = 1u << 2, /* init holds the data; overridable if also an input */
    MIXRT_VALUE_CONSTANT = 1u << 3,    /* init came from a Constant node / folding */
    MIXRT_VALUE_OUTER = 1u << 4,       /* defined in an enclosing graph (resolved by name) */
    MIXRT_VALUE_SEQUENCE = 1u << 5,    /* a sequence of tensors, not a tensor */
    MIXRT_VALUE_OPTIONAL = 1u << 6,    /* optional-typed value */
};

struct mixrt_value {
    const char *name;
    mixrt_dtype dtype; /* UNDEFINED when not known (for sequences: element dtype) */
    int rank;          /* -1 when not known */
    struct mixrt_dim dims[MIXRT_MAX_RANK];
    struct mixrt_tensor *init; /* constant data (arena-held struct), or NULL */
    int producer;              /* index of the producing node, or -1 */
    unsigned flags;
    /* Where the constant's bytes were read from in the model file (the main graph's
     * src_path), taken as they lie there (src_len 0: nowhere). An engine that drops its copy
     * may read it back from there after checking the bytes (engine.c, try_release). */
    uint64_t src_off, src_len;
};

/* ONNX AttributeProto.AttributeType numbers. */
enum mixrt_attr_type {
    MIXRT_ATTR_UNDEFINED = 0,
    MIXRT_ATTR_FLOAT = 1,
    MIXRT_ATTR_INT = 2,
    MIXRT_ATTR_STRING = 3,
    MIXRT_ATTR_TENSOR = 4,
    MIXRT_ATTR_GRAPH = 5,
    MIXRT_ATTR_FLOATS = 6,
    MIXRT_ATTR_INTS = 7,
    MIXRT_ATTR_STRINGS = 8,
    MIXRT_ATTR_TENSORS = 9,
    MIXRT_ATTR_GRAPHS = 10,
    MIXRT_ATTR_SPARSE_TENSOR = 11,
    MIXRT_ATTR_SPARSE_TENSORS = 12,
    MIXRT_ATTR_TYPE_PROTO = 13,
    MIXRT_ATTR_TYPE_PROTOS = 14,
};

struct mixrt_graph;

struct mixrt_attr {
    const char *name;
    enum mixrt_attr_type type;
    float f;
    int64_t i;
    const char *s; /* NUL-terminated copy; s_len bytes (may hold NULs) */
    size_t s_len;
    struct mixrt_tensor *t;
    struct mixrt_graph *g;
    size_t n; /* element count of the list forms */
    float *floats;
    int64_t *ints;
    const char **strings;
    size_t *string_lens;
    struct mixrt_tensor **tensors;
    struct mixrt_graph **graphs;
};

struct mixrt_node {
    const char *name;    /* never NULL: unnamed nodes get "<op>_<index>" */
    const char *op_type;
    const char *domain;  /* "" for the default domain ("ai.onnx" is normalized to "") */
    int64_t opset;       /* the model's opset version for this node's domain */
    int n_inputs, n_outputs;
    int *inputs;         /* value indices; -1 for an absent optional input */
    int *outputs;        /* value indices; -1 for an unused optional output */
    int n_attrs;
    struct mixrt_attr *attrs;
};

struct mixrt_opset {
    const char *domain;
    int64_t version;
};

struct mixrt_graph {
    mixrt_context_t ctx;
    struct mixrt_arena *arena; /* shared by a graph and all its subgraphs */
    const char *name;
    struct mixrt_graph *parent; /* NULL for the main graph */
    struct mixrt_value *values;
    int n_values, cap_values;
    struct mixrt_node *nodes;
    int n_nodes, cap_nodes;
    int *inputs; /* value indices, in declaration order (initializer-backed ones included) */
    int n_inputs;
    int *outputs;
    int n_outputs;
    int *order; /* topological order of nodes (set by the importer) */
    const struct mixrt_opset *opsets; /* shared with the main graph */
    int n_opsets;
    int64_t ir_version;
    /* The model file the main graph's initializers were mapped from (an absolute path), or
     * NULL (a buffer, a small file read whole, a subgraph). */
    const char *src_path;
};

/* Creates an empty graph with its own arena (parent NULL) or in the parent's arena. */
mixrt_status mixrt_graph_create(mixrt_context_t ctx, struct mixrt_graph *parent,
                                struct mixrt_graph **out);
/* Destroys a main graph, its subgraphs and all data they own. NULL is fine. */
void mixrt_graph_destroy(struct mixrt_graph *g);

/* Index of the value named name in g itself (not parents), or -1. */
int mixrt_graph_find_value(const struct mixrt_graph *g, const char *name);
/* The value named name in g, adding an untyped one if missing. Returns index or -1 (OOM). */
int mixrt_graph_get_or_add_value(struct mixrt_graph *g, const char *name);
/* Appends a node (fields zeroed except name/op/domain); returns its index or -1. */
int mixrt_graph_add_node(struct mixrt_graph *g, const char *name, const char *op_type,
                         const char *domain);
/* The opset version g imports for domain ("" / "ai.onnx" default), or -1. */
int64_t mixrt_graph_opset(const struct mixrt_graph *g, const char *domain);
/* The domain of the ops mixrt's passes make (fused ops, layout ops), version 1. Plans
 * store them like any ONNX op; only mixrt runs them. */
#define MIXRT_DOMAIN "com.mixrt"
#define MIXRT_DOMAIN_VERSION 1
/* Makes main graph g import domain at version (added when missing; an existing import of
 * another version is an error). For passes that add nodes of a new domain. */
mixrt_status mixrt_graph_require_opset(struct mixrt_graph *g, const char *domain, int64_t version);
/* Stable topological order of g's nodes into order[n_nodes] (arena). Names that no
 * node, input, initializer or enclosing graph defines make it fail (INVALID_MODEL, the
 * node and input named); so does a cycle. */
mixrt_status mixrt_graph_toposort(struct mixrt_graph *g, int **order);

/* Marks in used[] (indexed by g's values) the values of g that the subgraphs of node n
 * (If/Loop/Scan bodies, at any depth) read by name. A name an intermediate graph
 * redefines is still marked: one value too many is harmless to every caller. */
void mixrt_node_mark_outer_reads(const struct mixrt_graph *g, const struct mixrt_node *n, bool *used);
/* A new value named "<base><suffix>" (with "_<k>" added when taken), unique in g; its
 * index, or -1 on out-of-memory. */
int mixrt_graph_add_unique_value(struct mixrt_graph *g, const char *base, const char *suffix);
/* Value vi holds a constant that cannot be overridden at run time (not a graph input,
 * not an outer-scope name). */
static inline bool mixrt_graph_is_fixed_const(const struct mixrt_graph *g, int vi) {
    return vi >= 0 && g->values[vi].init && !(g->values[vi].flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_OUTER));
}

/* Output positions of a conv / pool window along one spatial axis (explicit pads): input in,
 * dilated kernel extent dk >= 1, stride s >= 1, pads pb (begin) and pe (end). Floor, or with
 * ceil_mode the partial last window too, except one that would start in the end padding (ONNX
 * Runtime and PyTorch drop it: MaxPool k 2 s 3 on 5 with end pad 1 gives 2, not 3), and one
 * window where the kernel overhangs the padded input by less than a stride. 0: no window.
 * Shape inference, the reference kernels and every pooling kernel take their sizes from here. */
static inline int64_t mixrt_window_out(int64_t in, int64_t dk, int64_t s, int64_t pb, int64_t pe, bool ceil_mode) {
    const int64_t span = in + pb + pe - dk;
    if (span < 0) return ceil_mode && -span < s ? 1 : 0;
    int64_t out = (ceil_mode ? span / s + (span % s != 0) : span / s) + 1;
    /* (out - 1) s >= in + pb, by division (no overflow for any s) */
    if (ceil_mode && out > 1 && out - 1 > (in + pb - 1) / s) out--;
    return out;
}

/* Attribute lookup; NULL when absent. */
const struct mixrt_attr *mixrt_node_attr(const struct mixrt_node *n, const char *name);
int64_t mixrt_node_attr_int(const struct mixrt_node *n, const char *name, int64_t dflt);
float mixrt_node_attr_float(const struct mixrt_node *n, const char *name, float dflt);
/* The string attribute, or dflt. */
const char *mixrt_node_attr_string(const struct mixrt_node *n, const char *name,
                                   const char *dflt);
/* The ints attribute: *count set, pointer returned (NULL and *count 0 when absent). */
const int64_t *mixrt_node_attr_ints(const struct mixrt_node *n, const char *name,
                                    size_t *count);
/* The attribute is absent, or every value of it equals v and (count > 0) it has count values. */
bool mixrt_node_attr_ints_all(const struct mixrt_node *n, const char *name, int64_t v, size_t count);
const float *mixrt_node_attr_floats(const struct mixrt_node *n, const char *name,
                                    size_t *count);
/* n is a default-domain ReduceMean of a rank-4 float tensor over exactly axes 2 and 3 (H, W
 * of NCHW; the axes attribute before opset 18, a fixed constant input from 18): torch's
 * export of adaptive_avg_pool2d to 1x1. keepdims is the caller's to check. */
bool mixrt_node_mean_hw(const struct mixrt_graph *g, const struct mixrt_node *n);

/* Runs static shape and type inference over g, filling dtype/rank/dims of values where
 * they follow from the inputs and constants. Unknown stays unknown; where a declared
 * type contradicts what the inputs imply, the implied one wins and a warning says so.
 * Returns the number of such contradictions in *contradictions (may be NULL). */
mixrt_status mixrt_graph_infer(struct mixrt_graph *g, int *contradictions);

#endif /* MIXRT_IR_GRAPH_H */
