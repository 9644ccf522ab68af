/* export.h - IR graph -> serialized ONNX ModelProto (the GRAPH section of a plan file),
 * the reverse of import.h. Initializer data goes inline or, through a callback, into a
 * separate weights blob referenced as external data. */
#ifndef MIXRT_ONNX_EXPORT_H
#define MIXRT_ONNX_EXPORT_H

#include "ir/graph.h"

struct mixrt_onnx_export_opts {
    /* When set, every initializer's bytes (non-string tensors) are handed to this
     * callback, which stores them (e.g. appends to the weights blob, 64-aligned) and
     * returns their offset; the TensorProto then gets data_location EXTERNAL with
     * external_data {location: blob_location, offset, length}. When NULL, data goes
     * inline (raw_data). A failing callback's status is returned (its message on ctx). */
    mixrt_status (*put_weight)(void *user, const struct mixrt_tensor *t, uint64_t *offset);
    void *user;
    const char *blob_location; /* e.g. "@weights"; required with put_weight */
    const char *producer_name; /* NULL: "mixrt" */
    /* When set, initializers no node (nor any subgraph, by name) reads and that are not
     * graph inputs or outputs are left out: after the graph passes fold Conv+BN or
     * constants, the replaced weights stay in the IR but need not be saved. */
    bool skip_unused_initializers;
};

/* Serializes main graph g (subgraphs of If/Loop/Scan included, recursively) as a
 * ModelProto: ir_version (g's, raised to 4 where lower, since constants become
 * initializers that are not inputs), opset_import from g->opsets, nodes in g->order
 * with every attribute kind the IR keeps, graph inputs (initializer-backed ones too),
 * outputs, value_info for every other value a node produces whose type is known
 * (dtype, rank, dims with dim_param; sequence/optional values as such), and an
 * initializer for every value holding data (initializers and folded constants; see
 * skip_unused_initializers), in subgraphs too. Tensor
 * attributes stay inline. opts may be NULL (inline data). On success *buf (from
 * mixrt_alloc on ctx; free with mixrt_free(ctx, *buf, *len)) and *len are written;
 * g is not changed. */
mixrt_status mixrt_onnx_export(mixrt_context_t ctx, const struct mixrt_graph *g,
                               const struct mixrt_onnx_export_opts *opts, uint8_t **buf, size_t *len);

#endif
