"""_lib.py - finds and loads libmixrt.so and declares the C API with ctypes.
Invariant: every struct here mirrors include/mixrt/*.h byte for byte (sizes are checked
at load time against the values the C headers give on LP64), and every function used has
argtypes/restype set, so no call goes through ctypes' int defaults."""
import ctypes
import ctypes.util
import os

MAX_RANK = 16

# mixrt_status (include/mixrt/mixrt.h), by number.
STATUS_NAMES = (
    "OK", "INVALID_ARGUMENT", "INVALID_MODEL", "UNSUPPORTED_OP", "UNSUPPORTED_DTYPE",
    "UNSUPPORTED", "OUT_OF_MEMORY", "IO_ERROR", "INTERNAL",
)
STATUS_OK = 0
STATUS_INVALID_ARGUMENT = 1
STATUS_UNSUPPORTED_DTYPE = 4
STATUS_IO_ERROR = 7

# mixrt_dtype values (= ONNX TensorProto.DataType).
DTYPE_F32, DTYPE_U8, DTYPE_I8, DTYPE_U16, DTYPE_I16, DTYPE_I32, DTYPE_I64 = 1, 2, 3, 4, 5, 6, 7
DTYPE_STRING, DTYPE_BOOL, DTYPE_F16, DTYPE_F64, DTYPE_U32, DTYPE_U64 = 8, 9, 10, 11, 12, 13
DTYPE_BF16 = 16

PRECISION_FP32, PRECISION_FP16, PRECISION_BF16 = 1, 2, 4

TENSOR_OWNS_DATA = 1
TENSOR_DEVICE_CUDA = 8  # data is a CUDA device address (mixrt_engine.h: device tensors)


class Tensor(ctypes.Structure):
    """struct mixrt_tensor. A tensor Python fills in for an input has flags 0 (borrowed
    data): the C side never frees or remaps it."""
    _fields_ = [
        ("dtype", ctypes.c_int),
        ("rank", ctypes.c_int),
        ("dims", ctypes.c_int64 * MAX_RANK),
        ("data", ctypes.c_void_p),
        ("nbytes", ctypes.c_size_t),
        ("capacity", ctypes.c_size_t),
        ("flags", ctypes.c_uint),
        ("map_base", ctypes.c_void_p),
        ("map_size", ctypes.c_size_t),
    ]


class ValueInfo(ctypes.Structure):
    """struct mixrt_value_info."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("rank", ctypes.c_int),
        ("dims", ctypes.c_int64 * MAX_RANK),
        ("dim_params", ctypes.c_char_p * MAX_RANK),
        ("has_initializer", ctypes.c_int),
    ]


class LayerPrecision(ctypes.Structure):
    """struct mixrt_layer_precision."""
    _fields_ = [("glob", ctypes.c_char_p), ("dtype", ctypes.c_int)]


class InputShape(ctypes.Structure):
    """struct mixrt_input_shape."""
    _fields_ = [("name", ctypes.c_char_p), ("rank", ctypes.c_int),
                ("dims", ctypes.c_int64 * MAX_RANK)]


class BuildOptions(ctypes.Structure):
    """struct mixrt_build_options."""
    _fields_ = [
        ("precisions", ctypes.c_uint),
        ("strongly_typed", ctypes.c_int),
        ("backend", ctypes.c_char_p),
        ("layer_precisions", ctypes.POINTER(LayerPrecision)),
        ("n_layer_precisions", ctypes.c_size_t),
        ("constraints", ctypes.c_int),
        ("unsupported_dtype", ctypes.c_int),
        ("shapes", ctypes.POINTER(InputShape)),
        ("n_shapes", ctypes.c_size_t),
        ("timing_cache", ctypes.c_char_p),
        ("require_full", ctypes.c_int),
        ("verbose", ctypes.c_int),
    ]


class LayerInfo(ctypes.Structure):
    """struct mixrt_layer_info."""
    _fields_ = [("name", ctypes.c_char_p), ("op_type", ctypes.c_char_p),
                ("kernel", ctypes.c_char_p), ("precision", ctypes.c_int)]


# sizeof/offsetof as printed by a C program compiled against the headers (x86-64 LP64).
# A mismatch means the headers changed and this file was not updated: refuse to load
# rather than corrupt memory.
_EXPECTED = {
    Tensor: (184, {"dims": 8, "data": 136, "nbytes": 144, "capacity": 152, "flags": 160,
                   "map_base": 168, "map_size": 176}),
    ValueInfo: (280, {"dtype": 8, "rank": 12, "dims": 16, "dim_params": 144,
                      "has_initializer": 272}),
    BuildOptions: (72, {"backend": 8, "layer_precisions": 16, "n_layer_precisions": 24,
                        "constraints": 32, "unsupported_dtype": 36, "shapes": 40,
                        "n_shapes": 48, "timing_cache": 56, "require_full": 64,
                        "verbose": 68}),
    LayerPrecision: (16, {"dtype": 8}),
    InputShape: (144, {"rank": 8, "dims": 16}),
    LayerInfo: (32, {"kernel": 16, "precision": 24}),
}


def _check_layout():
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return  # the table above is for 64-bit targets; ctypes' own layout rules apply
    for cls, (size, offs) in _EXPECTED.items():
        if ctypes.sizeof(cls) != size:
            raise ImportError(f"mixrt: ctypes mirror of {cls.__name__} is {ctypes.sizeof(cls)} "
                              f"bytes, the C struct is {size}")
        for field, off in offs.items():
            if getattr(cls, field).offset != off:
                raise ImportError(f"mixrt: {cls.__name__}.{field} at offset "
                                  f"{getattr(cls, field).offset}, the C struct has {off}")


def _candidates():
    """Where libmixrt.so may be, in order: $MIXRT_LIBRARY, the source tree's build/
    (this file is python/mixrt/_lib.py in the repository), then the system loader."""
    env = os.environ.get("MIXRT_LIBRARY")
    if env:
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    out = []
    if os.path.isfile(os.path.join(repo, "include", "mixrt", "mixrt.h")):
        out.append(os.path.join(repo, "build", "libmixrt.so"))
    found = ctypes.util.find_library("mixrt")
    out.append(found or "libmixrt.so")
    return out, False


def _load():
    # libgomp (oneDNN's thread runtime) reads its wait policy once, when it is loaded: the
    # mixrt CLI's default (tools/mixrt.c says why), unless the user chose one.
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ["GOMP_SPINCOUNT"] = "10000"
    paths, explicit = _candidates()
    errors = []
    for p in paths:
        if os.sep in p and not os.path.exists(p):
            errors.append(f"{p}: no such file")
            if explicit:
                break
            continue
        try:
            return ctypes.CDLL(p), p
        except OSError as e:
            errors.append(f"{p}: {e}")
            if explicit:
                break
    hint = "$MIXRT_LIBRARY was set" if explicit else \
        "set $MIXRT_LIBRARY to the path of libmixrt.so, or build the repository into build/"
    raise ImportError("mixrt: cannot load libmixrt.so (" + "; ".join(errors) + "); " + hint)


def _declare(lib):
    c = ctypes
    vp, sz, st = c.c_void_p, c.c_size_t, c.c_int
    T = c.POINTER(Tensor)
    sigs = {
        "mixrt_version": (c.c_char_p, []),
        "mixrt_status_string": (c.c_char_p, [st]),
        "mixrt_dtype_name": (c.c_char_p, [c.c_int]),
        "mixrt_dtype_size": (sz, [c.c_int]),
        "mixrt_f32_to_bf16": (None, [vp, vp, sz]),
        "mixrt_bf16_to_f32": (None, [vp, vp, sz]),
        "mixrt_context_create": (st, [vp, c.POINTER(vp)]),
        "mixrt_context_destroy": (None, [vp]),
        "mixrt_context_last_error": (c.c_char_p, [vp]),
        "mixrt_context_last_status": (st, [vp]),
        "mixrt_context_clear_error": (None, [vp]),
        "mixrt_context_set_log_level": (None, [vp, c.c_int]),
        "mixrt_tensor_destroy": (None, [vp, T]),
        "mixrt_build_options_init": (None, [c.POINTER(BuildOptions)]),
        "mixrt_precisions_parse": (st, [vp, c.c_char_p, c.POINTER(c.c_uint)]),
        "mixrt_engine_build": (st, [vp, c.c_char_p, c.POINTER(BuildOptions), c.POINTER(vp)]),
        "mixrt_engine_save": (st, [vp, c.c_char_p]),
        "mixrt_engine_load": (st, [vp, c.c_char_p, c.POINTER(vp)]),
        "mixrt_engine_destroy": (None, [vp]),
        "mixrt_engine_input_count": (sz, [vp]),
        "mixrt_engine_output_count": (sz, [vp]),
        "mixrt_engine_get_input": (st, [vp, sz, c.POINTER(ValueInfo)]),
        "mixrt_engine_get_output": (st, [vp, sz, c.POINTER(ValueInfo)]),
        "mixrt_engine_run": (st, [vp, sz, c.POINTER(c.c_char_p), c.POINTER(T), c.POINTER(T)]),
        "mixrt_engine_run_into": (st, [vp, sz, c.POINTER(c.c_char_p), c.POINTER(T), c.POINTER(T)]),
        "mixrt_engine_layer_count": (sz, [vp]),
        "mixrt_engine_get_layer": (st, [vp, sz, c.POINTER(LayerInfo)]),
    }
    for name, (res, args) in sigs.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            raise ImportError(f"mixrt: the loaded libmixrt.so lacks {name} (an older build?)")
        f.restype = res
        f.argtypes = args


_check_layout()
lib, path = _load()
_declare(lib)


def status_name(status):
    """"INVALID_ARGUMENT" etc. for a mixrt_status number."""
    if 0 <= status < len(STATUS_NAMES):
        return STATUS_NAMES[status]
    return f"STATUS_{status}"


def dtype_name(dtype):
    """mixrt's short dtype name ("f32", "bf16", ...)."""
    return lib.mixrt_dtype_name(dtype).decode()
