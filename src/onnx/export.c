/* export.c - IR graph -> ONNX ModelProto bytes, the inverse of import.c for everything
 * the IR keeps. The protobuf tree borrows the IR's strings and arrays and lives in a
 * private arena (plus the TensorProto arrays tensorproto.c allocates, released through a
 * list); nothing in g is modified, and nothing but *buf outlives the call. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "onnx/export.h"
#include "onnx/tensorproto.h"

/* Matches import.c: deeper nesting could not have been imported anyway. */
#define MAX_SUBGRAPH_DEPTH 64

/* A TensorProto whose dims/string_data came from mixrt_onnx_tensor_to_proto. */
struct tp_item {
    Onnx__TensorProto tp;
    struct tp_item *next;
};

struct exporter {
    mixrt_context_t ctx;
    struct mixrt_arena *arena;
    const struct mixrt_onnx_export_opts *opts;
    struct tp_item *tensors;
    int depth;
};

/* protobuf-c copies from a non-NULL pointer even for empty bytes. */
static uint8_t empty_bytes[1];
static char empty_string[1];

static void *ex_calloc(struct exporter *ex, size_t count, size_t size) {
    return mixrt_arena_calloc(ex->arena, count ? count : 1, size);
}

/* IR strings are borrowed: they outlive the packing. */
static char *ex_str(const char *s) { return s ? (char *)s : empty_string; }

static mixrt_status value_name(struct exporter *ex, const struct mixrt_graph *g, int vi, const char *what,
                               const char *owner, char **out) {
    if (vi < 0) {
        *out = empty_string;
        return MIXRT_STATUS_OK;
    }
    if (vi >= g->n_values)
        return mixrt_error(ex->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "cannot export graph '%s': %s of '%s' refers to "
                           "value #%d, but the graph has %d values", ex_str(g->name), what, owner, vi, g->n_values);
    *out = ex_str(g->values[vi].name);
    return MIXRT_STATUS_OK;
}

/* The TypeProto of v: tensor (dtype when known, shape when the rank is known), wrapped
 * in sequence and/or optional as v's flags say. A sequence keeps only the element
 * dtype (import.c ignores a sequence's shape too). */
static mixrt_status export_type(struct exporter *ex, const struct mixrt_value *v, Onnx__TypeProto **out) {
    Onnx__TypeProto *tp = ex_calloc(ex, 1, sizeof(*tp));
    Onnx__TypeProto__Tensor *tt = ex_calloc(ex, 1, sizeof(*tt));
    if (!tp || !tt) return MIXRT_STATUS_OUT_OF_MEMORY;
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (v->dtype != MIXRT_DTYPE_UNDEFINED) {
        tt->has_elem_type = 1;
        tt->elem_type = (int32_t)v->dtype;
    }
    if (v->rank >= 0 && !(v->flags & MIXRT_VALUE_SEQUENCE)) {
        if (v->rank > MIXRT_MAX_RANK)
            return mixrt_error(ex->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "cannot export value '%s': rank %d exceeds %d",
                               ex_str(v->name), v->rank, MIXRT_MAX_RANK);
        Onnx__TensorShapeProto *sp = ex_calloc(ex, 1, sizeof(*sp));
        Onnx__TensorShapeProto__Dimension **dims = ex_calloc(ex, (size_t)v->rank, sizeof(*dims));
        if (!sp || !dims) return MIXRT_STATUS_OUT_OF_MEMORY;
        onnx__tensor_shape_proto__init(sp);
        for (int i = 0; i < v->rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = ex_calloc(ex, 1, sizeof(*d));
            if (!d) return MIXRT_STATUS_OUT_OF_MEMORY;
            onnx__tensor_shape_proto__dimension__init(d);
            if (v->dims[i].value >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = v->dims[i].value;
            } else if (v->dims[i].param && v->dims[i].param[0]) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = (char *)v->dims[i].param;
            } /* else: an unknown dim is a Dimension with neither field */
            dims[i] = d;
        }
        sp->n_dim = (size_t)v->rank;
        sp->dim = dims;
        tt->shape = sp;
    }
    /* optional(sequence(tensor)) when both: the IR keeps flags, not the nesting, and
     * ONNX allows an optional sequence but not a sequence of optionals in ops. */
    if (v->flags & MIXRT_VALUE_SEQUENCE) {
        Onnx__TypeProto *outer = ex_calloc(ex, 1, sizeof(*outer));
        Onnx__TypeProto__Sequence *sq = ex_calloc(ex, 1, sizeof(*sq));
        if (!outer || !sq) return MIXRT_STATUS_OUT_OF_MEMORY;
        onnx__type_proto__init(outer);
        onnx__type_proto__sequence__init(sq);
        sq->elem_type = tp;
        outer->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
        outer->sequence_type = sq;
        tp = outer;
    }
    if (v->flags & MIXRT_VALUE_OPTIONAL) {
        Onnx__TypeProto *outer = ex_calloc(ex, 1, sizeof(*outer));
        Onnx__TypeProto__Optional *op = ex_calloc(ex, 1, sizeof(*op));
        if (!outer || !op) return MIXRT_STATUS_OUT_OF_MEMORY;
        onnx__type_proto__init(outer);
        onnx__type_proto__optional__init(op);
        op->elem_type = tp;
        outer->value_case = ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE;
        outer->optional_type = op;
        tp = outer;
    }
    *out = tp;
    return MIXRT_STATUS_OK;
}

static mixrt_status export_value_info(struct exporter *ex, const struct mixrt_value *v, Onnx__ValueInfoProto **out) {
    Onnx__ValueInfoProto *vp = ex_calloc(ex, 1, sizeof(*vp));
    if (!vp) return MIXRT_STATUS_OUT_OF_MEMORY;
    onnx__value_info_proto__init(vp);
    vp->name = ex_str(v->name);
    mixrt_status status = export_type(ex, v, &vp->type);
    if (status != MIXRT_STATUS_OK) return status;
    *out = vp;
    return MIXRT_STATUS_OK;
}

/* Decimal of v in the arena (external_data values are strings). */
static char *ex_u64(struct exporter *ex, uint64_t v) {
    char *s = ex_calloc(ex, 24, 1);
    if (s) snprintf(s, 24, "%" PRIu64, v);
    return s;
}

static mixrt_status add_entry(struct exporter *ex, Onnx__StringStringEntryProto **slot, const char *key, char *value) {
    Onnx__StringStringEntryProto *e = ex_calloc(ex, 1, sizeof(*e));
    if (!e || !value) return MIXRT_STATUS_OUT_OF_MEMORY;
    onnx__string_string_entry_proto__init(e);
    e->key = (char *)key;
    e->value = value;
    *slot = e;
    return MIXRT_STATUS_OK;
}

/* t as a TensorProto named name (NULL: unnamed). With weight set and a put_weight
 * callback, a non-string tensor's bytes go to the callback and the proto refers to
 * them as external data instead of holding raw_data. */
static mixrt_status export_tensor(struct exporter *ex, const struct mixrt_tensor *t, const char *name, bool weight,
                                  Onnx__TensorProto **out) {
    mixrt_context_t ctx = ex->ctx;
    mixrt_status status;
    struct tp_item *item = ex_calloc(ex, 1, sizeof(*item));
    if (!item) return MIXRT_STATUS_OUT_OF_MEMORY;
    if ((status = mixrt_onnx_tensor_to_proto(ctx, t, name, &item->tp)) != MIXRT_STATUS_OK) return status;
    item->next = ex->tensors; /* linked at once: released at the end whatever happens next */
    ex->tensors = item;
    Onnx__TensorProto *tp = &item->tp;
    const struct mixrt_onnx_export_opts *o = ex->opts;
    if (weight && o && o->put_weight && t->dtype != MIXRT_DTYPE_STRING) {
        uint64_t offset = 0, length = tp->raw_data.len;
        if ((status = o->put_weight(o->user, t, &offset)) != MIXRT_STATUS_OK) {
            mixrt_error_prefix(ctx, "cannot export initializer '%s'", ex_str(name));
            return status;
        }
        Onnx__StringStringEntryProto **ed = ex_calloc(ex, 3, sizeof(*ed));
        if (!ed) return MIXRT_STATUS_OUT_OF_MEMORY;
        if ((status = add_entry(ex, &ed[0], "location", (char *)o->blob_location)) != MIXRT_STATUS_OK ||
            (status = add_entry(ex, &ed[1], "offset", ex_u64(ex, offset))) != MIXRT_STATUS_OK ||
            (status = add_entry(ex, &ed[2], "length", ex_u64(ex, length))) != MIXRT_STATUS_OK)
            return status;
        tp->has_raw_data = 0;
        tp->raw_data.len = 0;
        tp->raw_data.data = NULL;
        tp->n_external_data = 3;
        tp->external_data = ed;
        tp->has_data_location = 1;
        tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    }
    *out = tp;
    return MIXRT_STATUS_OK;
}

static mixrt_status export_graph(struct exporter *ex, const struct mixrt_graph *g, Onnx__GraphProto **out);

static mixrt_status export_attr(struct exporter *ex, const struct mixrt_node *n, const struct mixrt_attr *a,
                                Onnx__AttributeProto **out) {
    mixrt_context_t ctx = ex->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    Onnx__AttributeProto *ap = ex_calloc(ex, 1, sizeof(*ap));
    if (!ap) return MIXRT_STATUS_OUT_OF_MEMORY;
    onnx__attribute_proto__init(ap);
    ap->name = ex_str(a->name);
    /* Type 0 came from an attribute with no recognizable field: leave it unset, so the
     * importer infers 0 again. */
    if (a->type != MIXRT_ATTR_UNDEFINED) {
        ap->has_type = 1;
        ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    }
    switch (a->type) {
    case MIXRT_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case MIXRT_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case MIXRT_ATTR_STRING:
        ap->has_s = 1;
        ap->s.len = a->s_len;
        ap->s.data = a->s && a->s_len ? (uint8_t *)a->s : empty_bytes;
        break;
    case MIXRT_ATTR_FLOATS:
        ap->n_floats = a->n;
        ap->floats = a->n ? a->floats : NULL;
        break;
    case MIXRT_ATTR_INTS:
        ap->n_ints = a->n;
        ap->ints = a->n ? a->ints : NULL;
        break;
    case MIXRT_ATTR_STRINGS:
        if (a->n) {
            ap->strings = ex_calloc(ex, a->n, sizeof(*ap->strings));
            if (!ap->strings) return MIXRT_STATUS_OUT_OF_MEMORY;
            for (size_t i = 0; i < a->n; i++) {
                size_t len = a->string_lens ? a->string_lens[i] : (a->strings[i] ? strlen(a->strings[i]) : 0);
                ap->strings[i].len = len;
                ap->strings[i].data = a->strings[i] && len ? (uint8_t *)a->strings[i] : empty_bytes;
            }
            ap->n_strings = a->n;
        }
        break;
    case MIXRT_ATTR_TENSOR:
        MIXRT_CHECK(ctx, a->t, MIXRT_STATUS_INVALID_ARGUMENT, "cannot export %s node '%s': tensor attribute '%s' has "
                    "no tensor", n->op_type, n->name, ex_str(a->name));
        MIXRT_TRY(export_tensor(ex, a->t, NULL, false, &ap->t));
        break;
    case MIXRT_ATTR_TENSORS:
        if (a->n) {
            ap->tensors = ex_calloc(ex, a->n, sizeof(*ap->tensors));
            if (!ap->tensors) return MIXRT_STATUS_OUT_OF_MEMORY;
            for (size_t i = 0; i < a->n; i++) {
                MIXRT_CHECK(ctx, a->tensors[i], MIXRT_STATUS_INVALID_ARGUMENT, "cannot export %s node '%s': "
                            "tensor #%zu of attribute '%s' is missing", n->op_type, n->name, i, ex_str(a->name));
                MIXRT_TRY(export_tensor(ex, a->tensors[i], NULL, false, &ap->tensors[i]));
            }
            ap->n_tensors = a->n;
        }
        break;
    case MIXRT_ATTR_GRAPH:
        MIXRT_CHECK(ctx, a->g, MIXRT_STATUS_INVALID_ARGUMENT, "cannot export %s node '%s': graph attribute '%s' has "
                    "no graph", n->op_type, n->name, ex_str(a->name));
        MIXRT_TRY(export_graph(ex, a->g, &ap->g));
        break;
    case MIXRT_ATTR_GRAPHS:
        if (a->n) {
            ap->graphs = ex_calloc(ex, a->n, sizeof(*ap->graphs));
            if (!ap->graphs) return MIXRT_STATUS_OUT_OF_MEMORY;
            for (size_t i = 0; i < a->n; i++) {
                MIXRT_CHECK(ctx, a->graphs[i], MIXRT_STATUS_INVALID_ARGUMENT, "cannot export %s node '%s': "
                            "graph #%zu of attribute '%s' is missing", n->op_type, n->name, i, ex_str(a->name));
                MIXRT_TRY(export_graph(ex, a->graphs[i], &ap->graphs[i]));
            }
            ap->n_graphs = a->n;
        }
        break;
    default:
        /* Sparse tensors and type protos: the importer keeps only name and type, so
         * that is all there is to write back. */
        break;
    }
    *out = ap;
    return MIXRT_STATUS_OK;
fail:
    return status;
}

static mixrt_status export_node(struct exporter *ex, const struct mixrt_graph *g, const struct mixrt_node *n,
                                Onnx__NodeProto **out) {
    mixrt_status status;
    Onnx__NodeProto *np = ex_calloc(ex, 1, sizeof(*np));
    if (!np) return MIXRT_STATUS_OUT_OF_MEMORY;
    onnx__node_proto__init(np);
    np->name = ex_str(n->name);
    np->op_type = ex_str(n->op_type);
    np->domain = ex_str(n->domain);
    if (n->n_inputs < 0 || n->n_outputs < 0 || n->n_attrs < 0)
        return mixrt_error(ex->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "cannot export %s node '%s': negative counts",
                           np->op_type, np->name);
    np->input = ex_calloc(ex, (size_t)n->n_inputs, sizeof(char *));
    np->output = ex_calloc(ex, (size_t)n->n_outputs, sizeof(char *));
    np->attribute = ex_calloc(ex, (size_t)n->n_attrs, sizeof(*np->attribute));
    if (!np->input || !np->output || !np->attribute) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < n->n_inputs; i++)
        if ((status = value_name(ex, g, n->inputs[i], "an input", np->name, &np->input[i])) != MIXRT_STATUS_OK)
            return status;
    np->n_input = (size_t)n->n_inputs;
    for (int i = 0; i < n->n_outputs; i++)
        if ((status = value_name(ex, g, n->outputs[i], "an output", np->name, &np->output[i])) != MIXRT_STATUS_OK)
            return status;
    np->n_output = (size_t)n->n_outputs;
    for (int i = 0; i < n->n_attrs; i++)
        if ((status = export_attr(ex, n, &n->attrs[i], &np->attribute[i])) != MIXRT_STATUS_OK) return status;
    np->n_attribute = (size_t)n->n_attrs;
    *out = np;
    return MIXRT_STATUS_OK;
}

/* Is v worth a value_info entry: produced by a node here (values whose producer a pass
 * removed are left behind in the IR, used by nothing) and carrying type information? */
static bool wants_value_info(const struct mixrt_value *v) {
    if (v->init || v->producer < 0 || (v->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT |
                                                   MIXRT_VALUE_OUTER)))
        return false;
    return v->dtype != MIXRT_DTYPE_UNDEFINED || v->rank >= 0 ||
           (v->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL));
}

/* used[v]: read by a node of g or, by name, from one of its subgraphs; or a graph
 * input or output. Arena memory. */
static bool *find_used(struct exporter *ex, const struct mixrt_graph *g) {
    bool *used = ex_calloc(ex, (size_t)g->n_values, sizeof(bool));
    if (!used) return NULL;
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT)) used[i] = true;
    for (int n = 0; n < g->n_nodes; n++) {
        const struct mixrt_node *nd = &g->nodes[n];
        for (int i = 0; i < nd->n_inputs; i++)
            if (nd->inputs[i] >= 0 && nd->inputs[i] < g->n_values) used[nd->inputs[i]] = true;
        mixrt_node_mark_outer_reads(g, nd, used);
    }
    return used;
}

static mixrt_status export_graph(struct exporter *ex, const struct mixrt_graph *g, Onnx__GraphProto **out) {
    mixrt_context_t ctx = ex->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    if (ex->depth >= MAX_SUBGRAPH_DEPTH)
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot export graph '%s': subgraphs nested deeper than %d "
                           "levels", ex_str(g->name), MAX_SUBGRAPH_DEPTH);
    Onnx__GraphProto *gp = ex_calloc(ex, 1, sizeof(*gp));
    if (!gp) return MIXRT_STATUS_OUT_OF_MEMORY;
    onnx__graph_proto__init(gp);
    gp->name = ex_str(g->name);

    /* Nodes in topological order (the importer re-sorts anyway; a sorted file is also
     * valid ONNX for other readers). Without an order, declaration order. */
    gp->node = ex_calloc(ex, (size_t)g->n_nodes, sizeof(*gp->node));
    if (!gp->node) return MIXRT_STATUS_OUT_OF_MEMORY;
    ex->depth++;
    for (int s = 0; s < g->n_nodes; s++) {
        int ni = g->order ? g->order[s] : s;
        MIXRT_CHECK(ctx, ni >= 0 && ni < g->n_nodes, MIXRT_STATUS_INVALID_ARGUMENT, "cannot export graph '%s': its "
                    "order names node #%d of %d", ex_str(g->name), ni, g->n_nodes);
        MIXRT_TRY(export_node(ex, g, &g->nodes[ni], &gp->node[s]));
        gp->n_node = (size_t)s + 1;
    }
    ex->depth--;

    bool *used = NULL;
    if (ex->opts && ex->opts->skip_unused_initializers && !(used = find_used(ex, g))) return MIXRT_STATUS_OUT_OF_MEMORY;
    /* One pass sizes the value lists, a second fills them. */
    size_t n_init = 0, n_info = 0;
    for (int i = 0; i < g->n_values; i++) {
        const struct mixrt_value *v = &g->values[i];
        if (v->init && !(v->flags & MIXRT_VALUE_OUTER) && (!used || used[i])) n_init++;
        else if (wants_value_info(v)) n_info++;
    }
    gp->initializer = ex_calloc(ex, n_init, sizeof(*gp->initializer));
    gp->value_info = ex_calloc(ex, n_info, sizeof(*gp->value_info));
    gp->input = ex_calloc(ex, (size_t)g->n_inputs, sizeof(*gp->input));
    gp->output = ex_calloc(ex, (size_t)g->n_outputs, sizeof(*gp->output));
    if (!gp->initializer || !gp->value_info || !gp->input || !gp->output) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_values; i++) {
        const struct mixrt_value *v = &g->values[i];
        if (v->init && !(v->flags & MIXRT_VALUE_OUTER) && (!used || used[i])) {
            MIXRT_TRY(export_tensor(ex, v->init, ex_str(v->name), true, &gp->initializer[gp->n_initializer]));
            gp->n_initializer++;
        } else if (wants_value_info(v)) {
            MIXRT_TRY(export_value_info(ex, v, &gp->value_info[gp->n_value_info]));
            gp->n_value_info++;
        }
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int vi = g->inputs[i];
        MIXRT_CHECK(ctx, vi >= 0 && vi < g->n_values, MIXRT_STATUS_INVALID_ARGUMENT, "cannot export graph '%s': input "
                    "#%d refers to value #%d of %d", ex_str(g->name), i, vi, g->n_values);
        MIXRT_TRY(export_value_info(ex, &g->values[vi], &gp->input[i]));
        gp->n_input = (size_t)i + 1;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int vi = g->outputs[i];
        MIXRT_CHECK(ctx, vi >= 0 && vi < g->n_values, MIXRT_STATUS_INVALID_ARGUMENT, "cannot export graph '%s': output "
                    "#%d refers to value #%d of %d", ex_str(g->name), i, vi, g->n_values);
        MIXRT_TRY(export_value_info(ex, &g->values[vi], &gp->output[i]));
        gp->n_output = (size_t)i + 1;
    }
    *out = gp;
    return MIXRT_STATUS_OK;
fail:
    return status;
}

mixrt_status mixrt_onnx_export(mixrt_context_t ctx, const struct mixrt_graph *g,
                               const struct mixrt_onnx_export_opts *opts, uint8_t **buf, size_t *len) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct exporter ex = {ctx, NULL, opts, NULL, 0};
    uint8_t *out = NULL;
    size_t size = 0;
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    MIXRT_CHECK(ctx, g && buf && len, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_onnx_export: NULL argument");
    MIXRT_CHECK(ctx, !g->parent, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_onnx_export: graph '%s' is a subgraph; "
                "export its main graph", ex_str(g->name));
    MIXRT_CHECK(ctx, !opts || !opts->put_weight || (opts->blob_location && opts->blob_location[0]),
                MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_onnx_export: put_weight needs a blob_location");
    MIXRT_TRY(mixrt_arena_create(ctx, &ex.arena));

    Onnx__ModelProto mp;
    onnx__model_proto__init(&mp);
    mp.has_ir_version = 1;
    /* Constant values become initializers that are not graph inputs: valid from IR 4. */
    mp.ir_version = g->ir_version >= 4 ? g->ir_version : 4;
    mp.producer_name = ex_str(opts && opts->producer_name ? opts->producer_name : "mixrt");
    MIXRT_CHECK(ctx, g->n_opsets >= 0 && (g->n_opsets == 0 || g->opsets), MIXRT_STATUS_INVALID_ARGUMENT,
                "mixrt_onnx_export: graph '%s' has no opset list", ex_str(g->name));
    mp.opset_import = ex_calloc(&ex, (size_t)g->n_opsets, sizeof(*mp.opset_import));
    if (!mp.opset_import) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int i = 0; i < g->n_opsets; i++) {
        Onnx__OperatorSetIdProto *o = ex_calloc(&ex, 1, sizeof(*o));
        if (!o) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        onnx__operator_set_id_proto__init(o);
        o->domain = ex_str(g->opsets[i].domain);
        o->has_version = 1;
        o->version = g->opsets[i].version;
        mp.opset_import[mp.n_opset_import++] = o;
    }
    MIXRT_TRY(export_graph(&ex, g, &mp.graph));

    size = onnx__model_proto__get_packed_size(&mp); /* > 0: ir_version is always there */
    out = mixrt_alloc(ctx, size);
    if (!out) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    size_t packed = onnx__model_proto__pack(&mp, out);
    MIXRT_CHECK(ctx, packed == size, MIXRT_STATUS_INTERNAL, "mixrt_onnx_export: packed %zu bytes, expected %zu",
                packed, size);
    *buf = out;
    *len = size;
    out = NULL;
fail:
    if (out) mixrt_free(ctx, out, size);
    for (struct tp_item *it = ex.tensors; it; it = it->next) mixrt_onnx_tensor_proto_release(ctx, &it->tp);
    mixrt_arena_destroy(ex.arena);
    return status;
}
