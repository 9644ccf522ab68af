/* ref_string.c - reference kernels on STRING tensors (StringNormalizer). Invariant: every
 * output string is a fresh NUL-terminated allocation of len+1 bytes owned by the output
 * tensor. Case mapping is ASCII only: the 'locale' attribute is accepted and ignored, so
 * bytes >= 0x80 (UTF-8 sequences) pass through unchanged. */
#include <string.h>

#include "backend/cpu/ref.h"

static char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }
static char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

static bool str_equal(const char *a, size_t alen, const char *b, size_t blen, bool case_sensitive) {
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++)
        if (case_sensitive ? a[i] != b[i] : ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

enum case_action { CASE_NONE, CASE_LOWER, CASE_UPPER };

static mixrt_status run_string_normalizer(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x;
    bool *keep = NULL;
    size_t n = 0;
    char d[256];
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    const char *name = k->graph->values[k->node->inputs[0]].name;
    if (x->dtype != MIXRT_DTYPE_STRING)
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #0 '%s' is %s, expected string", name,
                                  mixrt_tensor_desc(d, sizeof(d), x));
    /* The spec accepts [C] and [1, C] only. */
    if (!(x->rank == 1 || (x->rank == 2 && x->dims[0] == 1)))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT, "input #0 '%s' is %s, expected [C] or [1, C]", name,
                                  mixrt_tensor_desc(d, sizeof(d), x));
    const char *action_s = mixrt_node_attr_string(k->node, "case_change_action", "NONE");
    enum case_action action;
    if (!strcmp(action_s, "NONE")) action = CASE_NONE;
    else if (!strcmp(action_s, "LOWER")) action = CASE_LOWER;
    else if (!strcmp(action_s, "UPPER")) action = CASE_UPPER;
    else
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'case_change_action' is '%s', expected NONE, LOWER or UPPER", action_s);
    bool case_sensitive = mixrt_node_attr_int(k->node, "is_case_sensitive", 0) != 0;
    const struct mixrt_attr *stop = mixrt_node_attr(k->node, "stopwords");
    if (stop && stop->type != MIXRT_ATTR_STRINGS)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'stopwords' is not a list of strings");
    size_t nstop = stop ? stop->n : 0;

    n = mixrt_tensor_numel(x);
    keep = mixrt_calloc(k->ctx, n ? n : 1, sizeof(*keep));
    if (!keep) return MIXRT_STATUS_OUT_OF_MEMORY;
    const struct mixrt_string *src = x->data;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        keep[i] = true;
        for (size_t j = 0; j < nstop && keep[i]; j++) {
            size_t slen = stop->string_lens ? stop->string_lens[j] : strlen(stop->strings[j]);
            if (str_equal(src[i].ptr, src[i].len, stop->strings[j], slen, case_sensitive)) keep[i] = false;
        }
        kept += keep[i];
    }
    /* All dropped: the spec's "empty value" is one empty string, shape [1] or [1, 1]. */
    int64_t dims[2] = {1, 1};
    if (x->rank == 1) dims[0] = kept ? (int64_t)kept : 1;
    else dims[1] = kept ? (int64_t)kept : 1;
    struct mixrt_tensor *y;
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_STRING, x->rank, dims, &y));
    struct mixrt_string *dst = y->data;
    if (!kept) {
        dst[0].ptr = mixrt_alloc(k->ctx, 1);
        if (!dst[0].ptr) {
            status = MIXRT_STATUS_OUT_OF_MEMORY; /* recorded by mixrt_alloc */
            goto fail;
        }
        dst[0].ptr[0] = 0;
        dst[0].len = 0;
        goto fail;
    }
    for (size_t i = 0, o = 0; i < n; i++) {
        if (!keep[i]) continue;
        size_t len = src[i].len;
        dst[o].ptr = mixrt_alloc(k->ctx, len + 1);
        if (!dst[o].ptr) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        for (size_t c = 0; c < len; c++) {
            char ch = src[i].ptr[c];
            dst[o].ptr[c] = action == CASE_LOWER ? ascii_lower(ch) : action == CASE_UPPER ? ascii_upper(ch) : ch;
        }
        dst[o].ptr[len] = 0;
        dst[o].len = len;
        o++;
    }
fail:
    mixrt_free(k->ctx, keep, (n ? n : 1) * sizeof(*keep));
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_string[] = {
    {"", "StringNormalizer", 10, 23, run_string_normalizer},
    {NULL, NULL, 0, 0, NULL},
};
