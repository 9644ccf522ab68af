/* pb_io.c - standalone TensorProto files (.pb): read through tensorproto.c, external data
 * resolved inside the .pb's own folder; written as raw_data (string_data for STRING).
 * The protobuf objects never outlive the call. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mixrt/mixrt_io.h"
#include "onnx/tensorproto.h"

/* The folder part of path ("." when there is none), allocated from ctx. */
static char *dir_of(mixrt_context_t ctx, const char *path, size_t *size) {
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 1;
    if (slash && len == 0) len = 1; /* "/x.pb" lives in "/" */
    char *d = mixrt_alloc(ctx, len + 1);
    if (!d) return NULL;
    if (slash)
        memcpy(d, path, len);
    else
        d[0] = '.';
    d[len] = 0;
    *size = len + 1;
    return d;
}

mixrt_status mixrt_pb_read(mixrt_context_t ctx, const char *path, struct mixrt_tensor **out, char **name_out) {
    mixrt_status status = MIXRT_STATUS_OK;
    uint8_t *buf = NULL;
    size_t size = 0, dir_size = 0;
    Onnx__TensorProto *tp = NULL;
    char *dir = NULL, *name = NULL;
    struct mixrt_tensor *t = NULL;
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    MIXRT_CHECK(ctx, path && out, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_pb_read: path and out must not be NULL");
    MIXRT_TRY(mixrt_read_file(ctx, path, &buf, &size));
    tp = onnx__tensor_proto__unpack(NULL, size, buf);
    MIXRT_CHECK(ctx, tp, MIXRT_STATUS_INVALID_ARGUMENT, "'%s' is not a valid TensorProto file", path);
    dir = dir_of(ctx, path, &dir_size);
    if (!dir) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    t = mixrt_alloc(ctx, sizeof(*t));
    if (!t) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    struct mixrt_external_policy policy = {.base_dir = dir};
    status = mixrt_onnx_tensor_from_proto(ctx, tp, &policy, t);
    if (status != MIXRT_STATUS_OK) {
        mixrt_free(ctx, t, sizeof(*t));
        t = NULL;
        mixrt_error_prefix(ctx, "cannot read '%s'", path);
        goto fail;
    }
    if (name_out && tp->name && *tp->name) {
        size_t n = strlen(tp->name);
        name = mixrt_alloc(ctx, n + 1);
        if (!name) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        memcpy(name, tp->name, n + 1);
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    mixrt_free(ctx, dir, dir_size);
    mixrt_free(ctx, buf, size + 1);
    *out = t;
    if (name_out) *name_out = name;
    return MIXRT_STATUS_OK;
fail:
    mixrt_tensor_destroy(ctx, t);
    if (tp) onnx__tensor_proto__free_unpacked(tp, NULL);
    if (dir) mixrt_free(ctx, dir, dir_size);
    if (buf) mixrt_free(ctx, buf, size + 1);
    return status;
}

mixrt_status mixrt_pb_write(mixrt_context_t ctx, const char *path, const struct mixrt_tensor *t, const char *name) {
    mixrt_status status = MIXRT_STATUS_OK;
    Onnx__TensorProto tp;
    uint8_t *buf = NULL;
    size_t size = 0;
    FILE *f = NULL;
    onnx__tensor_proto__init(&tp);
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    MIXRT_CHECK(ctx, path && t, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_pb_write: path and tensor must not be NULL");
    MIXRT_TRY(mixrt_onnx_tensor_to_proto(ctx, t, name, &tp));
    size = onnx__tensor_proto__get_packed_size(&tp);
    buf = mixrt_alloc(ctx, size ? size : 1);
    if (!buf) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    MIXRT_CHECK(ctx, onnx__tensor_proto__pack(&tp, buf) == size, MIXRT_STATUS_INTERNAL,
                "cannot write '%s': protobuf packing gave an unexpected size", path);
    f = fopen(path, "wb");
    MIXRT_CHECK(ctx, f, MIXRT_STATUS_IO_ERROR, "cannot create '%s': %s", path, strerror(errno));
    MIXRT_CHECK(ctx, fwrite(buf, 1, size, f) == size, MIXRT_STATUS_IO_ERROR, "cannot write '%s': %s", path,
                strerror(errno));
    int rc = fclose(f);
    f = NULL;
    MIXRT_CHECK(ctx, rc == 0, MIXRT_STATUS_IO_ERROR, "cannot write '%s': %s", path, strerror(errno));
fail:
    if (f) fclose(f);
    if (buf) mixrt_free(ctx, buf, size ? size : 1);
    mixrt_onnx_tensor_proto_release(ctx, &tp);
    return status;
}
