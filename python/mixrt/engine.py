"""engine.py - mixrt.Engine: builds, loads, saves and runs engines through libmixrt.so.
Invariant: each Engine owns one C context and one engine (destroyed together, engine
first); C tensors made here for inputs only borrow NumPy memory (flags 0) and live no
longer than the run call, and every output tensor the C library returns is destroyed
before run() returns, on every path."""
import collections
import ctypes
import os
import threading
import warnings

import numpy as np

from . import _lib
from ._lib import lib

__all__ = ["Engine", "MixrtError", "TensorInfo", "version"]


class MixrtError(Exception):
    """A failed mixrt call. status: the C status number; status_name: its enum name
    ("INVALID_ARGUMENT", ...); message: the context's message (mixrt_context_last_error)."""

    def __init__(self, status, message):
        self.status = int(status)
        self.status_name = _lib.status_name(self.status)
        self.message = message
        super().__init__(f"{self.status_name}: {message}")


TensorInfo = collections.namedtuple("TensorInfo", "name dtype shape")
TensorInfo.__doc__ = """An engine input or output: name, dtype (mixrt's name: "f32", "bf16",
"i64", ...) and shape (a tuple whose unknown dims are None, or the symbolic dim's name;
None when the rank is unknown)."""

_NP_OF_DTYPE = {
    _lib.DTYPE_F32: np.dtype(np.float32), _lib.DTYPE_F64: np.dtype(np.float64),
    _lib.DTYPE_F16: np.dtype(np.float16), _lib.DTYPE_U8: np.dtype(np.uint8),
    _lib.DTYPE_I8: np.dtype(np.int8), _lib.DTYPE_U16: np.dtype(np.uint16),
    _lib.DTYPE_I16: np.dtype(np.int16), _lib.DTYPE_I32: np.dtype(np.int32),
    _lib.DTYPE_I64: np.dtype(np.int64), _lib.DTYPE_U32: np.dtype(np.uint32),
    _lib.DTYPE_U64: np.dtype(np.uint64), _lib.DTYPE_BOOL: np.dtype(np.bool_),
}
_DTYPE_OF_NP = {v: k for k, v in _NP_OF_DTYPE.items()}

_PRECISION_ALIASES = {
    "fp32": "fp32", "f32": "fp32", "float32": "fp32", "float": "fp32",
    "fp16": "fp16", "f16": "fp16", "float16": "fp16", "half": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
}
_LAYER_DTYPES = {"fp32": _lib.DTYPE_F32, "fp16": _lib.DTYPE_F16, "bf16": _lib.DTYPE_BF16}
_CONSTRAINTS = {"none": 0, "prefer": 1, "obey": 2}
_UNSUPPORTED_DTYPE = {"error": 0, "fallback": 1}
_BF16_OUTPUT = ("float32", "bits")

# bf16 outputs widened to float32 warn once per process (see Engine.run).
_bf16_warned = False


def version():
    """The C library's version string."""
    return lib.mixrt_version().decode()


def _fs(path):
    return os.fsencode(os.fspath(path))


def _argerr(message):
    return MixrtError(_lib.STATUS_INVALID_ARGUMENT, message)


def _precision_list(precision):
    """("fp32", "bf16") / "fp32,bf16" / {"bfloat16"} -> "fp32,bf16" for the C parser."""
    if isinstance(precision, (str, bytes)):
        items = (precision.decode() if isinstance(precision, bytes) else precision).split(",")
    else:
        try:
            items = list(precision)
        except TypeError:
            raise _argerr(f"precision must be a string or an iterable of strings, "
                          f"got {type(precision).__name__}") from None
    out = []
    for it in items:
        if not isinstance(it, str):
            raise _argerr(f"precision item {it!r} is not a string (fp32, fp16 or bf16)")
        s = it.strip().lower()
        out.append(_PRECISION_ALIASES.get(s, it.strip()))  # unknown ones: the C parser names them
    return ",".join(sorted(set(out), key=out.index))


def _layer_precision_list(layer_precision):
    """dict {glob: type}, or an iterable of (glob, type) pairs or "GLOB:TYPE" strings."""
    if layer_precision is None:
        return []
    if isinstance(layer_precision, str):
        layer_precision = layer_precision.split(",")
    pairs = layer_precision.items() if isinstance(layer_precision, dict) else layer_precision
    out = []
    for p in pairs:
        if isinstance(p, str):
            glob, sep, ty = p.rpartition(":")
            if not sep or not glob:
                raise _argerr(f"layer_precision item {p!r} is not GLOB:TYPE")
        else:
            try:
                glob, ty = p
            except (TypeError, ValueError):
                raise _argerr(f"layer_precision item {p!r} is not a (glob, type) pair") from None
        key = _PRECISION_ALIASES.get(str(ty).strip().lower())
        if key is None:
            raise _argerr(f"layer_precision type {ty!r} for {glob!r} is not fp32, fp16 or bf16")
        out.append((str(glob), _LAYER_DTYPES[key]))
    return out


def _choice(value, table, what):
    try:
        return table[str(value).lower()]
    except KeyError:
        raise _argerr(f"{what} must be one of {', '.join(table)}, got {value!r}") from None


def _info(vi):
    name = vi.name.decode() if vi.name else ""
    if vi.rank < 0:
        shape = None
    else:
        dims = []
        for i in range(vi.rank):
            d = vi.dims[i]
            if d >= 0:
                dims.append(int(d))
            else:
                p = vi.dim_params[i]
                dims.append(p.decode() if p else None)
        shape = tuple(dims)
    return TensorInfo(name, _lib.dtype_name(vi.dtype), shape), vi.dtype, bool(vi.has_initializer)


def _is_torch_tensor(x):
    t = type(x)
    return t.__module__.startswith("torch") and hasattr(x, "is_cuda") and hasattr(x, "dtype")


def _torch_to_numpy(x):
    """A CPU view of a torch tensor; bf16 as its raw bits (uint16), never through a NumPy
    bf16 dtype (there is none)."""
    import torch  # only reached with a torch tensor in hand
    x = x.detach()
    if x.device.type != "cpu":
        x = x.cpu()
    if x.dtype == torch.bfloat16:
        return x.contiguous().view(torch.int16).numpy().view(np.uint16)
    return x.numpy()


class Engine:
    """A compiled model. Build with Engine.build(onnx_path, ...) or Engine.load(plan_path).
    Not thread-safe to run concurrently: runs are serialized by a lock (the C engine is
    not reentrant)."""

    def __init__(self, _ctx, _engine):
        # Private: use Engine.build / Engine.load.
        self._ctx = _ctx
        self._engine = _engine
        self._lock = threading.Lock()
        try:
            self._read_io()
        except BaseException:
            self.close()  # the engine and context are ours from the first line
            raise

    # ---- construction ------------------------------------------------------------------
    @staticmethod
    def _new_context():
        ctx = ctypes.c_void_p()
        st = lib.mixrt_context_create(None, ctypes.byref(ctx))
        if st != _lib.STATUS_OK:
            raise MixrtError(st, "cannot create a mixrt context")
        return ctx

    @staticmethod
    def _fail(ctx, st):
        msg = lib.mixrt_context_last_error(ctx)
        err = MixrtError(st, msg.decode(errors="replace") if msg else "")
        lib.mixrt_context_destroy(ctx)
        return err

    @classmethod
    def build(cls, onnx_path, precision=("fp32",), strongly_typed=False, backend="cpu",
              layer_precision=None, constraints="none", unsupported_dtype="error",
              shapes=None, timing_cache=None, require_full=False, verbose=False):
        """Builds an engine from an ONNX file.
        precision: enabled precisions ("fp32", "fp16", "bf16"; fp32 is always added), as an
          iterable or a comma string; strongly_typed: every tensor keeps its declared dtype;
          layer_precision: {glob: "bf16"} or ["GLOB:TYPE", ...]; constraints: "none" |
          "prefer" | "obey"; unsupported_dtype: "error" | "fallback"; shapes: {input: dims};
          timing_cache: a file read and rewritten (None: no cache)."""
        prec = _precision_list(precision)
        layers = _layer_precision_list(layer_precision)
        cons = _choice(constraints, _CONSTRAINTS, "constraints")
        unsup = _choice(unsupported_dtype, _UNSUPPORTED_DTYPE, "unsupported_dtype")
        shape_items = []
        for name, dims in (shapes or {}).items():
            dims = [int(d) for d in dims]
            if len(dims) > _lib.MAX_RANK:
                raise _argerr(f"shapes[{name!r}] has rank {len(dims)}, the most is {_lib.MAX_RANK}")
            shape_items.append((str(name), dims))

        ctx = cls._new_context()
        opts = _lib.BuildOptions()
        lib.mixrt_build_options_init(ctypes.byref(opts))
        bits = ctypes.c_uint(0)
        if prec:
            st = lib.mixrt_precisions_parse(ctx, prec.encode(), ctypes.byref(bits))
            if st != _lib.STATUS_OK:
                raise cls._fail(ctx, st)
            opts.precisions = bits.value
        opts.strongly_typed = 1 if strongly_typed else 0
        keep = []  # the encoded strings must outlive the build call
        if backend is not None:
            b = str(backend).encode()
            keep.append(b)
            opts.backend = b
        if layers:
            arr = (_lib.LayerPrecision * len(layers))()
            for i, (glob, dt) in enumerate(layers):
                g = glob.encode()
                keep.append(g)
                arr[i].glob = g
                arr[i].dtype = dt
            keep.append(arr)
            opts.layer_precisions = arr
            opts.n_layer_precisions = len(layers)
        opts.constraints = cons
        opts.unsupported_dtype = unsup
        if shape_items:
            arr = (_lib.InputShape * len(shape_items))()
            for i, (name, dims) in enumerate(shape_items):
                n = name.encode()
                keep.append(n)
                arr[i].name = n
                arr[i].rank = len(dims)
                for j, d in enumerate(dims):
                    arr[i].dims[j] = d
            keep.append(arr)
            opts.shapes = arr
            opts.n_shapes = len(shape_items)
        if timing_cache is not None:
            tc = _fs(timing_cache)
            keep.append(tc)
            opts.timing_cache = tc
        opts.require_full = 1 if require_full else 0
        opts.verbose = 1 if verbose else 0

        eng = ctypes.c_void_p()
        st = lib.mixrt_engine_build(ctx, _fs(onnx_path), ctypes.byref(opts), ctypes.byref(eng))
        if st != _lib.STATUS_OK:
            raise cls._fail(ctx, st)
        return cls(ctx, eng)

    @classmethod
    def load(cls, plan_path):
        """Loads a plan file written by save() or `mixrt build`."""
        ctx = cls._new_context()
        eng = ctypes.c_void_p()
        st = lib.mixrt_engine_load(ctx, _fs(plan_path), ctypes.byref(eng))
        if st != _lib.STATUS_OK:
            raise cls._fail(ctx, st)
        return cls(ctx, eng)

    def save(self, path):
        """Writes the engine as a plan file (atomically replaced)."""
        self._check_open()
        self._call(lib.mixrt_engine_save(self._engine, _fs(path)))

    def close(self):
        """Frees the engine and its context now (also done when the object dies)."""
        eng, ctx = getattr(self, "_engine", None), getattr(self, "_ctx", None)
        self._engine = self._ctx = None
        if eng:
            lib.mixrt_engine_destroy(eng)
        if ctx:
            lib.mixrt_context_destroy(ctx)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- description -------------------------------------------------------------------
    def _check_open(self):
        if not self._engine:
            raise _argerr("the engine is closed")

    def _call(self, st):
        if st != _lib.STATUS_OK:
            msg = lib.mixrt_context_last_error(self._ctx)
            raise MixrtError(st, msg.decode(errors="replace") if msg else "")

    def _read_io(self):
        vi = _lib.ValueInfo()
        ins, outs = [], []
        self._in_dtype = {}
        self._in_required = []
        for i in range(lib.mixrt_engine_input_count(self._engine)):
            self._call(lib.mixrt_engine_get_input(self._engine, i, ctypes.byref(vi)))
            info, dt, has_init = _info(vi)
            ins.append(info)
            self._in_dtype[info.name] = dt
            if not has_init:
                self._in_required.append(info.name)
        for i in range(lib.mixrt_engine_output_count(self._engine)):
            self._call(lib.mixrt_engine_get_output(self._engine, i, ctypes.byref(vi)))
            outs.append(_info(vi)[0])
        self._inputs, self._outputs = ins, outs
        self._in_names_b = {i.name: i.name.encode() for i in ins}
        self._out_names = [o.name for o in outs]
        self._n_out = len(outs)

    @property
    def inputs(self):
        """The model's declared inputs: a list of TensorInfo(name, dtype, shape)."""
        return list(self._inputs)

    @property
    def outputs(self):
        """The model's declared outputs: a list of TensorInfo(name, dtype, shape)."""
        return list(self._outputs)

    def inspect(self):
        """The planned layers: a list of dicts with name, op, kernel and precision (the
        dtype name its float data is computed in, or None)."""
        self._check_open()
        li = _lib.LayerInfo()
        out = []
        for i in range(lib.mixrt_engine_layer_count(self._engine)):
            self._call(lib.mixrt_engine_get_layer(self._engine, i, ctypes.byref(li)))
            out.append({
                "name": li.name.decode() if li.name else "",
                "op": li.op_type.decode() if li.op_type else "",
                "kernel": li.kernel.decode() if li.kernel else "",
                "precision": None if li.precision == 0 else _lib.dtype_name(li.precision),
            })
        return out

    def __repr__(self):
        if not self._engine:
            return "<mixrt.Engine (closed)>"
        return (f"<mixrt.Engine inputs={[tuple(i) for i in self._inputs]} "
                f"outputs={[tuple(o) for o in self._outputs]}>")

    # ---- running -----------------------------------------------------------------------
    def _input_array(self, name, x):
        """(array, mixrt dtype) for one input; the array stays referenced by the caller
        until the run is over. bf16 inputs take float32 (rounded here by the C library)
        or uint16 (raw bits)."""
        want = self._in_dtype.get(name)
        if isinstance(x, np.ndarray):
            arr = x
        elif _is_torch_tensor(x):
            arr = _torch_to_numpy(x)
        elif hasattr(x, "__dlpack__"):
            arr = np.from_dlpack(x)
        else:  # lists and scalars: take the declared dtype (bf16 via float32)
            npdt = np.float32 if want == _lib.DTYPE_BF16 else _NP_OF_DTYPE.get(want)
            arr = np.asarray(x, dtype=npdt)
        dt = arr.dtype
        if dt.byteorder not in "=|":
            dt = dt.newbyteorder("=")
        if not arr.flags.c_contiguous or dt != arr.dtype:
            arr = np.ascontiguousarray(arr, dtype=dt)
        if want == _lib.DTYPE_BF16:
            if dt == np.float32:
                bits = np.empty(arr.shape, np.uint16)
                if arr.size:
                    lib.mixrt_f32_to_bf16(arr.ctypes.data, bits.ctypes.data, arr.size)
                return bits, _lib.DTYPE_BF16
            if dt == np.uint16:
                return arr, _lib.DTYPE_BF16
        code = _DTYPE_OF_NP.get(dt)
        if code is None:
            raise MixrtError(_lib.STATUS_UNSUPPORTED_DTYPE,
                             f"input '{name}': NumPy dtype {dt} has no mixrt dtype")
        return arr, code

    def run(self, inputs, bf16_output="float32"):
        """Runs the engine. inputs: a dict name -> array, or a list/tuple in the order of
        engine.inputs (NumPy arrays, torch CPU tensors, objects with __dlpack__, or nested
        lists). Returns a dict name -> NumPy array in the order of engine.outputs.
        bf16 outputs: float32 (exact widening, warned once) or, with bf16_output="bits",
        the raw bf16 bits as uint16."""
        self._check_open()
        if bf16_output not in _BF16_OUTPUT:
            raise _argerr(f"bf16_output must be 'float32' or 'bits', got {bf16_output!r}")
        if isinstance(inputs, dict):
            items = list(inputs.items())
        else:
            if isinstance(inputs, np.ndarray) or _is_torch_tensor(inputs):
                inputs = [inputs]  # one bare array: never iterate over its first axis
            seq = list(inputs)
            if not len(self._in_required) <= len(seq) <= len(self._inputs):
                raise _argerr(f"{len(seq)} inputs given as a list, the engine takes "
                              f"{len(self._in_required)}" +
                              (f" to {len(self._inputs)}"
                               if len(self._inputs) != len(self._in_required) else "") +
                              " (" + ", ".join(i.name for i in self._inputs) + ")")
            items = [(self._inputs[i].name, x) for i, x in enumerate(seq)]
        n = len(items)
        names = (ctypes.c_char_p * max(n, 1))()
        ptrs = (ctypes.POINTER(_lib.Tensor) * max(n, 1))()
        keep = []
        for i, (name, x) in enumerate(items):
            name = str(name)
            arr, code = self._input_array(name, x)
            if arr.ndim > _lib.MAX_RANK:
                raise _argerr(f"input '{name}' has rank {arr.ndim}, the most is {_lib.MAX_RANK}")
            t = _lib.Tensor()
            t.dtype = code
            t.rank = arr.ndim
            for j, d in enumerate(arr.shape):
                t.dims[j] = d
            if arr.size:
                t.data = arr.ctypes.data
            t.nbytes = arr.nbytes
            t.flags = 0  # borrowed: the C side must neither free nor remap it
            keep.append((arr, t))
            nb = self._in_names_b.get(name)
            names[i] = nb if nb is not None else name.encode()
            ptrs[i] = ctypes.pointer(t)
        outs = (ctypes.POINTER(_lib.Tensor) * max(self._n_out, 1))()
        with self._lock:
            self._check_open()
            st = lib.mixrt_engine_run(self._engine, n, names, ptrs, outs)
            if st != _lib.STATUS_OK:
                self._call(st)
            try:
                return self._collect(outs, bf16_output)
            finally:
                for i in range(self._n_out):
                    if outs[i]:
                        lib.mixrt_tensor_destroy(self._ctx, outs[i])

    def _run_cuda(self, feed, outputs):
        """Runs a CUDA engine on device memory (mixrt_engine_run_into with
        MIXRT_TENSOR_DEVICE_CUDA tensors): feed is a list of (name, address, dtype code,
        shape, nbytes), outputs one (address, dtype code, shape, nbytes) per engine output in
        engine.outputs order, every address a CUDA allocation the caller keeps alive and has
        finished writing. Returns when the outputs are written; dtype and shape are checked
        by the C side (errors name the tensor)."""
        self._check_open()
        if len(outputs) != self._n_out:
            raise _argerr(f"{len(outputs)} output buffers for {self._n_out} outputs")

        def tensor(addr, code, shape, nbytes):
            if len(shape) > _lib.MAX_RANK:
                raise _argerr(f"rank {len(shape)} is more than {_lib.MAX_RANK}")
            t = _lib.Tensor()
            t.dtype, t.rank = code, len(shape)
            for j, d in enumerate(shape):
                t.dims[j] = d
            t.data, t.nbytes, t.flags = addr, nbytes, _lib.TENSOR_DEVICE_CUDA
            return t

        n = len(feed)
        names = (ctypes.c_char_p * max(n, 1))()
        ins = (ctypes.POINTER(_lib.Tensor) * max(n, 1))()
        outs = (ctypes.POINTER(_lib.Tensor) * max(self._n_out, 1))()
        keep = []
        for i, (name, addr, code, shape, nbytes) in enumerate(feed):
            t = tensor(addr, code, shape, nbytes)
            keep.append(t)
            nb = self._in_names_b.get(name)
            names[i] = nb if nb is not None else str(name).encode()
            ins[i] = ctypes.pointer(t)
        for i, (addr, code, shape, nbytes) in enumerate(outputs):
            t = tensor(addr, code, shape, nbytes)
            keep.append(t)
            outs[i] = ctypes.pointer(t)
        with self._lock:
            self._check_open()
            self._call(lib.mixrt_engine_run_into(self._engine, n, names, ins, outs))

    def _collect(self, outs, bf16_output):
        global _bf16_warned
        result = {}
        for i, name in enumerate(self._out_names):
            t = outs[i].contents
            shape = tuple(t.dims[:t.rank])
            if t.dtype == _lib.DTYPE_BF16:
                if bf16_output == "bits":
                    arr = np.empty(shape, np.uint16)
                    if t.nbytes:
                        ctypes.memmove(arr.ctypes.data, t.data, t.nbytes)
                else:
                    arr = np.empty(shape, np.float32)
                    if arr.size:
                        lib.mixrt_bf16_to_f32(t.data, arr.ctypes.data, arr.size)
                    if not _bf16_warned:
                        _bf16_warned = True
                        warnings.warn(
                            f"mixrt: output '{name}' is bf16, which NumPy has no dtype for; "
                            "bf16 outputs are returned as float32 (exact widening). Pass "
                            "bf16_output='bits' for the raw bf16 bits as uint16. "
                            "(This warning is shown once.)", UserWarning, stacklevel=3)
            else:
                npdt = _NP_OF_DTYPE.get(t.dtype)
                if npdt is None:
                    raise MixrtError(_lib.STATUS_UNSUPPORTED_DTYPE,
                                     f"output '{name}' is {_lib.dtype_name(t.dtype)}, which "
                                     "the Python package cannot return")
                arr = np.empty(shape, npdt)
                if t.nbytes:
                    ctypes.memmove(arr.ctypes.data, t.data, t.nbytes)
            result[name] = arr
        return result

    __call__ = run
