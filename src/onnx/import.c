/* import.c - lowers a parsed ONNX ModelProto into the IR: opsets per domain, graph
 * inputs/outputs/value_info with symbolic dims, initializers (overridable when also
 * inputs), nodes with every attribute kind (subgraphs lowered recursively, outer-scope
 * names resolved), Constant nodes folded into constant values. The protobuf objects are
 * not referenced after this returns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "onnx/import.h"
#include "onnx/slim.h"
#include "onnx/tensorproto.h"

#define MAX_SUBGRAPH_DEPTH 64

struct importer {
    mixrt_context_t ctx;
    const struct mixrt_external_policy *ext;
    int depth;
    ProtobufCAllocator *pba; /* the parse's allocator: frees raw_data once it is copied */
    /* The caller's bytes, where the main graph's initializers read their raw_data (slim.c):
     * never freed here; dropped from the resident set once copied when ext->data_mapped. */
    const uint8_t *borrow_lo, *borrow_hi;
};

static bool borrowed(const struct importer *im, const void *p) {
    return im->borrow_lo && (const uint8_t *)p >= im->borrow_lo && (const uint8_t *)p < im->borrow_hi;
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static const char *norm_domain(const char *d) {
    d = str_or_empty(d);
    return strcmp(d, "ai.onnx") ? d : "";
}

/* Fills dtype/shape of v from a TypeProto. Declared information only: a later
 * declaration of the same value must agree with an earlier one. */
static mixrt_status apply_type(struct importer *im, struct mixrt_graph *g, struct mixrt_value *v,
                               const Onnx__TypeProto *tp, const char *what) {
    mixrt_context_t ctx = im->ctx;
    if (!tp) return MIXRT_STATUS_OK;
    unsigned extra = 0;
    while (tp && tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        if (tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE) {
            extra |= MIXRT_VALUE_SEQUENCE;
            tp = tp->sequence_type ? tp->sequence_type->elem_type : NULL;
        } else if (tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE) {
            extra |= MIXRT_VALUE_OPTIONAL;
            tp = tp->optional_type ? tp->optional_type->elem_type : NULL;
        } else if (tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) {
            return MIXRT_STATUS_OK;
        } else {
            return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "unsupported type for %s '%s': only tensors, sequences "
                               "and optionals are supported (map and sparse types are not)", what, v->name);
        }
    }
    v->flags |= extra;
    if (!tp || !tp->tensor_type) return MIXRT_STATUS_OK;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        if (tt->elem_type < 0 || tt->elem_type >= MIXRT_DTYPE_COUNT)
            return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED_DTYPE, "%s '%s' has unknown dtype %d", what, v->name,
                               (int)tt->elem_type);
        v->dtype = (mixrt_dtype)tt->elem_type;
    }
    if (!tt->shape || (extra & MIXRT_VALUE_SEQUENCE)) return MIXRT_STATUS_OK;
    if (tt->shape->n_dim > MIXRT_MAX_RANK)
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "%s '%s' has rank %zu; mixrt supports at most %d", what,
                           v->name, tt->shape->n_dim, MIXRT_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < v->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->dims[i].value = -1;
        v->dims[i].param = NULL;
        if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: %s '%s' has negative dim %lld",
                                   what, v->name, (long long)d->dim_value);
            v->dims[i].value = d->dim_value;
        } else if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param &&
                   d->dim_param[0]) {
            v->dims[i].param = mixrt_arena_strdup(g->arena, d->dim_param);
            if (!v->dims[i].param) return MIXRT_STATUS_OUT_OF_MEMORY;
        }
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status tensor_into_arena(struct importer *im, struct mixrt_graph *g, const Onnx__TensorProto *tp,
                                      const char *what, const char *name, struct mixrt_tensor **out) {
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_onnx_tensor_from_proto(im->ctx, tp, im->ext, t);
    if (status != MIXRT_STATUS_OK) {
        /* tensorproto.c names the tensor by its own name; add ours only when it has none. */
        if (status != MIXRT_STATUS_OUT_OF_MEMORY && (!tp->name || !tp->name[0]))
            mixrt_error_prefix(im->ctx, "%s '%s'", what, name);
        return status;
    }
    *out = t;
    return MIXRT_STATUS_OK;
}

static void set_value_from_tensor(struct mixrt_value *v, struct mixrt_tensor *t) {
    v->init = t;
    v->dtype = t->dtype;
    v->rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
        v->dims[i].value = t->dims[i];
        v->dims[i].param = NULL;
    }
}

static mixrt_status lower_graph(struct importer *im, const Onnx__GraphProto *gp, struct mixrt_graph *g);

static mixrt_status lower_attr(struct importer *im, struct mixrt_graph *g, const struct mixrt_node *node,
                               const Onnx__AttributeProto *ap, struct mixrt_attr *a) {
    mixrt_context_t ctx = im->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_arena *ar = g->arena;
    a->name = mixrt_arena_strdup(ar, str_or_empty(ap->name));
    if (!a->name) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (ap->ref_attr_name && ap->ref_attr_name[0])
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "%s node '%s': attribute '%s' refers to a function "
                           "attribute, which is only valid inside functions", node->op_type, node->name, a->name);
    /* Old exporters omit `type`; infer it from the field that is set. */
    int type = ap->has_type ? (int)ap->type : 0;
    if (!type) {
        if (ap->g) type = MIXRT_ATTR_GRAPH;
        else if (ap->t) type = MIXRT_ATTR_TENSOR;
        else if (ap->n_graphs) type = MIXRT_ATTR_GRAPHS;
        else if (ap->n_tensors) type = MIXRT_ATTR_TENSORS;
        else if (ap->n_strings) type = MIXRT_ATTR_STRINGS;
        else if (ap->n_ints) type = MIXRT_ATTR_INTS;
        else if (ap->n_floats) type = MIXRT_ATTR_FLOATS;
        else if (ap->has_s) type = MIXRT_ATTR_STRING;
        else if (ap->has_i) type = MIXRT_ATTR_INT;
        else if (ap->has_f) type = MIXRT_ATTR_FLOAT;
    }
    a->type = (enum mixrt_attr_type)type;
    a->f = ap->f;
    a->i = ap->i;
    switch (type) {
    case MIXRT_ATTR_FLOAT:
    case MIXRT_ATTR_INT:
        break;
    case MIXRT_ATTR_STRING:
        a->s = mixrt_arena_strndup(ar, (const char *)ap->s.data, ap->s.len);
        a->s_len = ap->s.len;
        if (!a->s) return MIXRT_STATUS_OUT_OF_MEMORY;
        break;
    case MIXRT_ATTR_FLOATS:
        a->n = ap->n_floats;
        a->floats = mixrt_arena_calloc(ar, a->n ? a->n : 1, sizeof(float));
        if (!a->floats) return MIXRT_STATUS_OUT_OF_MEMORY;
        if (a->n) memcpy(a->floats, ap->floats, a->n * sizeof(float));
        break;
    case MIXRT_ATTR_INTS:
        a->n = ap->n_ints;
        a->ints = mixrt_arena_calloc(ar, a->n ? a->n : 1, sizeof(int64_t));
        if (!a->ints) return MIXRT_STATUS_OUT_OF_MEMORY;
        if (a->n) memcpy(a->ints, ap->ints, a->n * sizeof(int64_t));
        break;
    case MIXRT_ATTR_STRINGS:
        a->n = ap->n_strings;
        a->strings = mixrt_arena_calloc(ar, a->n ? a->n : 1, sizeof(char *));
        a->string_lens = mixrt_arena_calloc(ar, a->n ? a->n : 1, sizeof(size_t));
        if (!a->strings || !a->string_lens) return MIXRT_STATUS_OUT_OF_MEMORY;
        for (size_t i = 0; i < a->n; i++) {
            a->strings[i] = mixrt_arena_strndup(ar, (const char *)ap->strings[i].data, ap->strings[i].len);
            a->string_lens[i] = ap->strings[i].len;
            if (!a->strings[i]) return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        break;
    case MIXRT_ATTR_TENSOR:
        if (!ap->t)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: %s node '%s': tensor attribute '%s' "
                               "has no tensor", node->op_type, node->name, a->name);
        status = tensor_into_arena(im, g, ap->t, "tensor attribute", a->name, &a->t);
        if (status != MIXRT_STATUS_OK) mixrt_error_prefix(ctx, "%s node '%s'", node->op_type, node->name);
        return status;
    case MIXRT_ATTR_TENSORS:
        a->n = ap->n_tensors;
        a->tensors = mixrt_arena_calloc(ar, a->n ? a->n : 1, sizeof(*a->tensors));
        if (!a->tensors) return MIXRT_STATUS_OUT_OF_MEMORY;
        for (size_t i = 0; i < a->n; i++) {
            status = tensor_into_arena(im, g, ap->tensors[i], "tensor attribute", a->name, &a->tensors[i]);
            if (status != MIXRT_STATUS_OK) return status;
        }
        break;
    case MIXRT_ATTR_GRAPH:
    case MIXRT_ATTR_GRAPHS: {
        size_t n = type == MIXRT_ATTR_GRAPH ? 1 : ap->n_graphs;
        if (type == MIXRT_ATTR_GRAPH && !ap->g)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: %s node '%s': graph attribute '%s' "
                               "has no graph", node->op_type, node->name, a->name);
        if (im->depth >= MAX_SUBGRAPH_DEPTH)
            return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "%s node '%s': subgraphs nested deeper than %d levels",
                               node->op_type, node->name, MAX_SUBGRAPH_DEPTH);
        struct mixrt_graph **gs = mixrt_arena_calloc(ar, n ? n : 1, sizeof(*gs));
        if (!gs) return MIXRT_STATUS_OUT_OF_MEMORY;
        /* Attached before lowering, so a failure half way still lets the graph's
         * destroy walk (and release) whatever the subgraphs already own. */
        if (type == MIXRT_ATTR_GRAPH) a->g = NULL;
        a->graphs = gs;
        a->n = n;
        for (size_t i = 0; i < n; i++) {
            const Onnx__GraphProto *sub = type == MIXRT_ATTR_GRAPH ? ap->g : ap->graphs[i];
            if (!sub) return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: empty subgraph");
            status = mixrt_graph_create(ctx, g, &gs[i]);
            if (status != MIXRT_STATUS_OK) return status;
            im->depth++;
            status = lower_graph(im, sub, gs[i]);
            im->depth--;
            if (status != MIXRT_STATUS_OK) {
                /* Name the outermost subgraph only: nested prefixes would bury the reason. */
                if (strncmp(mixrt_context_last_error(ctx), "in subgraph ", 12))
                    mixrt_error_prefix(ctx, "in subgraph '%s' of %s node '%s'", a->name, node->op_type, node->name);
                return status;
            }
        }
        if (type == MIXRT_ATTR_GRAPH) {
            a->g = gs[0];
            a->graphs = NULL;
            a->n = 0;
        }
        break;
    }
    default:
        /* Sparse tensors and type protos: kept as named but empty; an op that needs them reports it. */
        break;
    }
    return MIXRT_STATUS_OK;
}

/* Folds a Constant node into constant data on its output value. */
static mixrt_status fold_constant(struct importer *im, struct mixrt_graph *g, const Onnx__NodeProto *np,
                                  const char *node_name) {
    mixrt_context_t ctx = im->ctx;
    mixrt_status status;
    if (np->n_output < 1 || !np->output[0] || !np->output[0][0])
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: Constant node '%s' has no output", node_name);
    if (np->n_attribute != 1 || !np->attribute[0])
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: Constant node '%s' must have exactly one "
                           "attribute, has %zu", node_name, np->n_attribute);
    const Onnx__AttributeProto *ap = np->attribute[0];
    const char *an = str_or_empty(ap->name);
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t) return MIXRT_STATUS_OUT_OF_MEMORY;
    int64_t n1 = 1;
    if (!strcmp(an, "value")) {
        if (!ap->t)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: Constant node '%s': 'value' has no tensor",
                               node_name);
        status = mixrt_onnx_tensor_from_proto(ctx, ap->t, im->ext, t);
        if (status != MIXRT_STATUS_OK) {
            mixrt_error_prefix(ctx, "Constant node '%s'", node_name);
            return status;
        }
    } else if (!strcmp(an, "value_float")) {
        if ((status = mixrt_tensor_init(ctx, t, MIXRT_DTYPE_F32, 0, NULL)) != MIXRT_STATUS_OK) return status;
        *(float *)t->data = ap->f;
    } else if (!strcmp(an, "value_int")) {
        if ((status = mixrt_tensor_init(ctx, t, MIXRT_DTYPE_I64, 0, NULL)) != MIXRT_STATUS_OK) return status;
        *(int64_t *)t->data = ap->i;
    } else if (!strcmp(an, "value_floats")) {
        n1 = (int64_t)ap->n_floats;
        if ((status = mixrt_tensor_init(ctx, t, MIXRT_DTYPE_F32, 1, &n1)) != MIXRT_STATUS_OK) return status;
        if (n1) memcpy(t->data, ap->floats, (size_t)n1 * sizeof(float));
    } else if (!strcmp(an, "value_ints")) {
        n1 = (int64_t)ap->n_ints;
        if ((status = mixrt_tensor_init(ctx, t, MIXRT_DTYPE_I64, 1, &n1)) != MIXRT_STATUS_OK) return status;
        if (n1) memcpy(t->data, ap->ints, (size_t)n1 * sizeof(int64_t));
    } else if (!strcmp(an, "value_string") || !strcmp(an, "value_strings")) {
        bool one = !strcmp(an, "value_string");
        n1 = one ? 1 : (int64_t)ap->n_strings;
        if ((status = mixrt_tensor_init(ctx, t, MIXRT_DTYPE_STRING, one ? 0 : 1, &n1)) != MIXRT_STATUS_OK)
            return status;
        struct mixrt_string *s = t->data;
        for (int64_t i = 0; i < n1; i++) {
            const ProtobufCBinaryData *b = one ? &ap->s : &ap->strings[i];
            s[i].ptr = mixrt_alloc(ctx, b->len + 1);
            if (!s[i].ptr) {
                mixrt_tensor_release(ctx, t);
                return MIXRT_STATUS_OUT_OF_MEMORY;
            }
            if (b->len) memcpy(s[i].ptr, b->data, b->len);
            s[i].ptr[b->len] = 0;
            s[i].len = b->len;
        }
    } else {
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "Constant node '%s': attribute '%s' is not supported", node_name,
                           an);
    }
    int vi = mixrt_graph_get_or_add_value(g, np->output[0]);
    if (vi < 0) {
        mixrt_tensor_release(ctx, t);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    struct mixrt_value *v = &g->values[vi];
    if (v->init || v->producer >= 0) {
        mixrt_tensor_release(ctx, t);
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: value '%s' is produced twice (Constant node "
                           "'%s')", v->name, node_name);
    }
    set_value_from_tensor(v, t);
    v->flags |= MIXRT_VALUE_CONSTANT;
    return MIXRT_STATUS_OK;
}

/* Does any graph enclosing g define name? */
static bool outer_defines(const struct mixrt_graph *g, const char *name) {
    for (const struct mixrt_graph *p = g->parent; p; p = p->parent) {
        int i = mixrt_graph_find_value(p, name);
        if (i >= 0) {
            const struct mixrt_value *v = &p->values[i];
            if (v->producer >= 0 || v->init || (v->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_OUTER))) return true;
        }
    }
    return false;
}

static mixrt_status lower_graph(struct importer *im, const Onnx__GraphProto *gp, struct mixrt_graph *g) {
    mixrt_context_t ctx = im->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    g->name = mixrt_arena_strdup(g->arena, str_or_empty(gp->name));
    if (!g->name) return MIXRT_STATUS_OUT_OF_MEMORY;

    if (gp->n_sparse_initializer)
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "graph '%s' has sparse initializers, which mixrt does not "
                           "support", g->name);

    /* Inputs first (declared types), then initializers (data decides dtype/shape). */
    g->inputs = mixrt_arena_calloc(g->arena, gp->n_input ? gp->n_input : 1, sizeof(int));
    if (!g->inputs) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vp = gp->input[i];
        if (!vp || !vp->name || !vp->name[0])
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: graph '%s' input #%zu has no name", g->name,
                               i);
        if (mixrt_graph_find_value(g, vp->name) >= 0)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: graph '%s' declares input '%s' twice",
                               g->name, vp->name);
        int vi = mixrt_graph_get_or_add_value(g, vp->name);
        if (vi < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        g->values[vi].flags |= MIXRT_VALUE_GRAPH_INPUT;
        if ((status = apply_type(im, g, &g->values[vi], vp->type, "input")) != MIXRT_STATUS_OK) return status;
        g->inputs[g->n_inputs++] = vi;
    }
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp || !tp->name || !tp->name[0])
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: graph '%s' initializer #%zu has no name",
                               g->name, i);
        int vi = mixrt_graph_get_or_add_value(g, tp->name);
        if (vi < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        struct mixrt_value *v = &g->values[vi];
        if (v->init)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: initializer '%s' is given twice", v->name);
        struct mixrt_tensor *t;
        if ((status = tensor_into_arena(im, g, tp, "initializer", tp->name, &t)) != MIXRT_STATUS_OK) return status;
        if (im->ext && im->ext->data_mapped && tp->has_raw_data && tp->raw_data.data &&
            borrowed(im, tp->raw_data.data)) {
            v->src_off = (uint64_t)(tp->raw_data.data - im->borrow_lo);
            v->src_len = tp->raw_data.len;
        }
        /* The bytes are copied into t: freeing them now keeps the peak memory of an import at
         * about two copies of the weights (file + tensors) instead of three. protobuf-c's
         * free_unpacked skips a NULL field. */
        if (im->pba && tp->has_raw_data && tp->raw_data.data && tp->raw_data.len) {
            Onnx__TensorProto *w = gp->initializer[i];
            if (!borrowed(im, w->raw_data.data)) im->pba->free(im->pba->allocator_data, w->raw_data.data);
            else if (im->ext && im->ext->data_mapped) mixrt_unmap_range(w->raw_data.data, w->raw_data.len);
            w->raw_data.data = NULL;
            w->raw_data.len = 0;
            w->has_raw_data = 0;
        }
        mixrt_dtype declared = v->dtype;
        int declared_rank = v->rank;
        set_value_from_tensor(v, t);
        v->flags |= MIXRT_VALUE_INITIALIZER;
        if ((v->flags & MIXRT_VALUE_GRAPH_INPUT) && declared != MIXRT_DTYPE_UNDEFINED && declared != t->dtype)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: input '%s' is declared %s but its "
                               "initializer is %s", v->name, mixrt_dtype_name(declared), mixrt_dtype_name(t->dtype));
        if ((v->flags & MIXRT_VALUE_GRAPH_INPUT) && declared_rank >= 0 && declared_rank != t->rank)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: input '%s' is declared with rank %d but "
                               "its initializer has rank %d", v->name, declared_rank, t->rank);
    }

    /* Nodes: pass 1 registers outputs (so inputs can tell local from outer names). */
    size_t nn = gp->n_node;
    int *node_index = mixrt_arena_calloc(g->arena, nn ? nn : 1, sizeof(int));
    if (!node_index) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (size_t i = 0; i < nn; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        node_index[i] = -1;
        if (!np) return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: graph '%s' node #%zu is empty", g->name, i);
        const char *op = str_or_empty(np->op_type);
        if (!op[0])
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: graph '%s' node #%zu has no op_type",
                               g->name, i);
        char autoname[256];
        const char *name = np->name && np->name[0] ? np->name : NULL;
        if (!name) {
            snprintf(autoname, sizeof(autoname), "%s_%zu", op, i);
            name = autoname;
        }
        const char *domain = norm_domain(np->domain);
        if (!strcmp(op, "Constant") && !domain[0]) {
            if ((status = fold_constant(im, g, np, name)) != MIXRT_STATUS_OK) return status;
            continue;
        }
        int ni = mixrt_graph_add_node(g, name, op, domain);
        if (ni < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        node_index[i] = ni;
        struct mixrt_node *node = &g->nodes[ni];
        node->opset = mixrt_graph_opset(g, domain);
        if (node->opset < 0)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: %s node '%s' uses domain '%s', which the "
                               "model does not import (no opset_import entry)", op, name, domain);
        node->n_outputs = (int)np->n_output;
        node->outputs = mixrt_arena_calloc(g->arena, np->n_output ? np->n_output : 1, sizeof(int));
        if (!node->outputs) return MIXRT_STATUS_OUT_OF_MEMORY;
        for (size_t j = 0; j < np->n_output; j++) {
            const char *on = str_or_empty(np->output[j]);
            if (!on[0]) {
                node->outputs[j] = -1;
                continue;
            }
            int vi = mixrt_graph_get_or_add_value(g, on);
            if (vi < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
            node = &g->nodes[ni];
            struct mixrt_value *v = &g->values[vi];
            if (v->producer >= 0 || (v->init && !(v->flags & MIXRT_VALUE_GRAPH_INPUT)) ||
                (v->flags & MIXRT_VALUE_GRAPH_INPUT))
                return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: %s node '%s' output #%zu '%s' is "
                                   "already defined (by another node, an input or an initializer)", op, name, j, on);
            v->producer = ni;
            node->outputs[j] = vi;
        }
    }
    /* Pass 2: inputs and attributes. */
    for (size_t i = 0; i < nn; i++) {
        if (node_index[i] < 0) continue;
        const Onnx__NodeProto *np = gp->node[i];
        int ni = node_index[i];
        int *ins = mixrt_arena_calloc(g->arena, np->n_input ? np->n_input : 1, sizeof(int));
        struct mixrt_attr *attrs = mixrt_arena_calloc(g->arena, np->n_attribute ? np->n_attribute : 1, sizeof(*attrs));
        if (!ins || !attrs) return MIXRT_STATUS_OUT_OF_MEMORY;
        for (size_t j = 0; j < np->n_input; j++) {
            const char *in = str_or_empty(np->input[j]);
            if (!in[0]) {
                ins[j] = -1;
                continue;
            }
            int vi = mixrt_graph_find_value(g, in);
            if (vi < 0) {
                vi = mixrt_graph_get_or_add_value(g, in);
                if (vi < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
                if (outer_defines(g, in)) g->values[vi].flags |= MIXRT_VALUE_OUTER;
            }
            ins[j] = vi;
        }
        struct mixrt_node *node = &g->nodes[ni];
        node->inputs = ins;
        node->n_inputs = (int)np->n_input;
        node->attrs = attrs;
        for (size_t j = 0; j < np->n_attribute; j++) {
            if (!np->attribute[j]) continue;
            /* Counted first: a half-lowered attribute's tensors and graphs are released
             * with the graph (attrs are zeroed, so absent parts are NULL). */
            struct mixrt_attr *a = &attrs[g->nodes[ni].n_attrs++];
            status = lower_attr(im, g, &g->nodes[ni], np->attribute[j], a);
            if (status != MIXRT_STATUS_OK) return status;
        }
    }

    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vp = gp->value_info[i];
        if (!vp || !vp->name || !vp->name[0]) continue;
        int vi = mixrt_graph_find_value(g, vp->name);
        if (vi < 0) continue; /* describes nothing in this graph: harmless */
        struct mixrt_value *v = &g->values[vi];
        if (v->init) continue;
        if ((status = apply_type(im, g, v, vp->type, "value")) != MIXRT_STATUS_OK) return status;
    }

    g->outputs = mixrt_arena_calloc(g->arena, gp->n_output ? gp->n_output : 1, sizeof(int));
    if (!g->outputs) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vp = gp->output[i];
        if (!vp || !vp->name || !vp->name[0])
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: graph '%s' output #%zu has no name",
                               g->name, i);
        int vi = mixrt_graph_find_value(g, vp->name);
        if (vi < 0 && outer_defines(g, vp->name)) {
            vi = mixrt_graph_get_or_add_value(g, vp->name);
            if (vi < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
            g->values[vi].flags |= MIXRT_VALUE_OUTER;
        }
        if (vi < 0)
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: graph '%s' output '%s' is not produced by "
                               "any node, input or initializer", g->name, vp->name);
        struct mixrt_value *v = &g->values[vi];
        v->flags |= MIXRT_VALUE_GRAPH_OUTPUT;
        if (!v->init && (status = apply_type(im, g, v, vp->type, "output")) != MIXRT_STATUS_OK) return status;
        g->outputs[g->n_outputs++] = vi;
    }
    int *order;
    if ((status = mixrt_graph_toposort(g, &order)) != MIXRT_STATUS_OK) return status;
    g->order = order;
    return MIXRT_STATUS_OK;
}

/* protobuf-c allocates through the context too, so fault injection and byte accounting
 * cover parsing; a header keeps the size that mixrt_free wants. */
struct pb_alloc_state {
    mixrt_context_t ctx;
    bool failed;
};
#define PB_HDR 64

static void *pb_alloc(void *ud, size_t size) {
    struct pb_alloc_state *s = ud;
    size_t total;
    char *p = mixrt_add_size(size, PB_HDR, &total) ? mixrt_alloc(s->ctx, total) : NULL;
    if (!p) {
        s->failed = true;
        return NULL;
    }
    memcpy(p, &total, sizeof(total));
    return p + PB_HDR;
}

static void pb_free(void *ud, void *ptr) {
    struct pb_alloc_state *s = ud;
    if (!ptr) return;
    char *p = (char *)ptr - PB_HDR;
    size_t total;
    memcpy(&total, p, sizeof(total));
    mixrt_free(s->ctx, p, total);
}

/* The raw_data pointers into the caller's bytes taken back before protobuf-c frees the parse. */
static void unborrow(const struct importer *im, Onnx__ModelProto *mp) {
    if (!im->borrow_lo || !mp->graph) return;
    for (size_t i = 0; i < mp->graph->n_initializer; i++) {
        Onnx__TensorProto *tp = mp->graph->initializer[i];
        if (tp && tp->raw_data.data && borrowed(im, tp->raw_data.data)) {
            tp->raw_data.data = NULL;
            tp->raw_data.len = 0;
            tp->has_raw_data = 0;
        }
    }
}

mixrt_status mixrt_onnx_import(mixrt_context_t ctx, const uint8_t *data, size_t size, const char *what,
                               const struct mixrt_external_policy *ext, struct mixrt_graph **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_graph *g = NULL;
    Onnx__ModelProto *mp = NULL;
    struct mixrt_opset *opsets = NULL;
    struct pb_alloc_state pbs = {ctx, false};
    ProtobufCAllocator pba = {pb_alloc, pb_free, &pbs};
    struct importer im = {ctx, ext, 0, &pba, NULL, NULL};

    struct mixrt_onnx_slim slim;
    bool slimmed = false;
    MIXRT_CHECK(ctx, size > 0, MIXRT_STATUS_INVALID_MODEL, "'%s' is empty, not an ONNX model", what);
    /* The main graph's weights stay in data (slim.c); the parse gets the rest. */
    const char *slim_env = getenv("MIXRT_ONNX_SLIM"); /* off: parse the whole bytes (to compare) */
    if (!(slim_env && !strcmp(slim_env, "off")) && mixrt_onnx_slim(ctx, data, size, &slim)) {
        mp = onnx__model_proto__unpack(&pba, slim.msg.n, slim.msg.p);
        slimmed = mp && mp->graph && mp->graph->n_initializer == slim.n_init;
        if (mp && !slimmed) onnx__model_proto__free_unpacked(mp, &pba), mp = NULL;
        if (!slimmed) mixrt_onnx_slim_free(&slim);
    }
    if (!slimmed) {
        pbs.failed = false; /* an allocation the slim parse could not make is not this parse's */
        mp = onnx__model_proto__unpack(&pba, size, data);
    }
    if (!mp && pbs.failed) {
        status = mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory parsing '%s'", what);
        goto fail;
    }
    MIXRT_CHECK(ctx, mp, MIXRT_STATUS_INVALID_MODEL, "'%s' is not an ONNX model (protobuf parsing failed: truncated "
                "or not a ModelProto)", what);
    MIXRT_CHECK(ctx, mp->graph && mp->has_ir_version, MIXRT_STATUS_INVALID_MODEL,
                "'%s' is not an ONNX model (no %s)", what, mp->graph ? "ir_version" : "graph");
    MIXRT_CHECK(ctx, mp->ir_version >= 1 && mp->ir_version <= MIXRT_ONNX_MAX_IR_VERSION, MIXRT_STATUS_UNSUPPORTED,
                "'%s' has ONNX IR version %lld; mixrt reads IR versions 1 to %d", what, (long long)mp->ir_version,
                MIXRT_ONNX_MAX_IR_VERSION);
    MIXRT_TRY(mixrt_graph_create(ctx, NULL, &g));
    g->ir_version = mp->ir_version;
    size_t nops = mp->n_opset_import;
    opsets = mixrt_arena_calloc(g->arena, nops + 1, sizeof(*opsets));
    if (!opsets) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    int n_opsets = 0;
    for (size_t i = 0; i < nops; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (!o) continue;
        const char *d = norm_domain(o->domain);
        MIXRT_CHECK(ctx, o->has_version && o->version >= 1, MIXRT_STATUS_INVALID_MODEL,
                    "invalid model: opset_import for domain '%s' has no valid version", d[0] ? d : "ai.onnx");
        for (int j = 0; j < n_opsets; j++)
            MIXRT_CHECK(ctx, strcmp(opsets[j].domain, d), MIXRT_STATUS_INVALID_MODEL,
                        "invalid model: domain '%s' is imported twice", d[0] ? d : "ai.onnx");
        opsets[n_opsets].domain = mixrt_arena_strdup(g->arena, d);
        opsets[n_opsets].version = o->version;
        if (!opsets[n_opsets].domain) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        n_opsets++;
    }
    if (n_opsets == 0 && mp->ir_version < 3) { /* before IR 3 the default domain was implied at opset 1 */
        opsets[0].domain = "";
        opsets[0].version = 1;
        n_opsets = 1;
    }
    g->opsets = opsets;
    g->n_opsets = n_opsets;
    if (slimmed) {
        for (size_t i = 0; i < slim.n_init; i++) {
            Onnx__TensorProto *tp = mp->graph->initializer[i];
            if (!tp || !slim.raw[i].has) continue;
            tp->raw_data.data = (uint8_t *)(uintptr_t)(data + slim.raw[i].off);
            tp->raw_data.len = slim.raw[i].len;
            tp->has_raw_data = 1;
        }
        im.borrow_lo = data, im.borrow_hi = data + size;
    }
    status = lower_graph(&im, mp->graph, g);
    if (status != MIXRT_STATUS_OK) goto fail;
    MIXRT_TRY(mixrt_graph_infer(g, NULL));
    *out = g;
    g = NULL;
fail: /* success and failure alike: the parse (its borrowed raw_data taken back first) goes */
    if (mp) {
        unborrow(&im, mp);
        onnx__model_proto__free_unpacked(mp, &pba);
    }
    if (slimmed) mixrt_onnx_slim_free(&slim);
    mixrt_graph_destroy(g);
    return status;
}
