"""torch.py - mixrt.torch.compile: a PyTorch module exported to ONNX, built into a mixrt
engine (cached on disk by module state and settings) and wrapped in a callable taking and
returning torch tensors. Importable without PyTorch; compile() then raises ImportError.
Invariant: bf16 tensors cross to and from the C library as raw bits (torch.int16 views
<-> NumPy uint16), never through a NumPy bf16 dtype (there is none)."""
import hashlib
import inspect
import os
import tempfile

import numpy as np

from .engine import Engine, MixrtError, version as _mixrt_version

try:
    import torch as _torch
except ImportError as _e:  # the stub: everything below raises when called
    _torch = None
    _torch_import_error = _e
else:
    _torch_import_error = None

__all__ = ["compile", "CompiledModule", "available"]

# ONNX opset used for the export; the exporter of any recent torch supports it.
_OPSET = 17

# mixrt dtype name <-> torch dtype, for CUDA tensors handed over by address (the codes are
# mixrt_dtype's, ONNX TensorProto.DataType).
_TORCH_OF_MIXRT = {} if _torch is None else {
    "f32": _torch.float32, "f16": _torch.float16, "bf16": _torch.bfloat16, "f64": _torch.float64,
    "i64": _torch.int64, "i32": _torch.int32, "i16": _torch.int16, "i8": _torch.int8,
    "u8": _torch.uint8, "bool": _torch.bool}
_MIXRT_OF_TORCH = {} if _torch is None else {
    _torch.float32: 1, _torch.uint8: 2, _torch.int8: 3, _torch.int16: 5, _torch.int32: 6,
    _torch.int64: 7, _torch.bool: 9, _torch.float16: 10, _torch.float64: 11, _torch.bfloat16: 16}


def available():
    """True when PyTorch can be imported."""
    return _torch is not None


def _need_torch():
    if _torch is None:
        raise ImportError(
            "mixrt.torch needs PyTorch, which is not installed in this Python "
            f"({_torch_import_error}); install torch, or use mixrt.Engine with an ONNX "
            "file and NumPy arrays")
    return _torch


def _precisions(enabled_precisions):
    """{torch.float32, torch.bfloat16} (or strings) -> ["fp32", "bf16"]."""
    torch = _torch
    table = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    out = []
    for p in enabled_precisions:
        if isinstance(p, str):
            out.append(p)
        elif p in table:
            out.append(table[p])
        else:
            raise MixrtError(1, f"enabled_precisions: {p!r} is not torch.float32, "
                                "torch.float16 or torch.bfloat16")
    return sorted(set(out))


def _tensor_bytes(t):
    """The raw bytes of a tensor, bf16 included (as int16 bits)."""
    torch = _torch
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def _cache_key(module, example_inputs, settings):
    """A hash of everything the built engine depends on: the module's class and structure,
    every parameter and buffer (names, dtypes, shapes, bytes), the example inputs' dtypes
    and shapes, the settings, and the mixrt and torch versions."""
    torch = _torch
    h = hashlib.sha256()

    def put(s):
        h.update(s if isinstance(s, bytes) else str(s).encode())
        h.update(b"\0")

    put(type(module).__module__ + "." + type(module).__qualname__)
    put(repr(module))
    for name, t in module.state_dict(keep_vars=False).items():
        if isinstance(t, torch.Tensor):
            put(name); put(t.dtype); put(tuple(t.shape)); put(_tensor_bytes(t))
    for x in example_inputs:
        put(x.dtype); put(tuple(x.shape))
    put(sorted(settings.items()))
    put(_mixrt_version()); put(torch.__version__)
    return h.hexdigest()[:32]


def _default_cache_dir():
    base = os.environ.get("MIXRT_TORCH_CACHE")
    if base:
        return base
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "mixrt", "torch")


def _to_numpy(x):
    """torch tensor -> NumPy array for Engine.run (bf16 as uint16 bits)."""
    torch = _torch
    x = x.detach()
    if x.device.type != "cpu":
        x = x.cpu()
    x = x.contiguous()
    if x.dtype == torch.bfloat16:
        return x.view(torch.int16).numpy().view(np.uint16)
    return x.numpy()


def _from_numpy(a, dtype_name, device):
    """An output array back to a torch tensor; bf16 outputs arrive as uint16 bits."""
    torch = _torch
    if dtype_name == "bf16":
        t = torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
    else:
        t = torch.from_numpy(a)
    return t.to(device) if device is not None and device.type != "cpu" else t


def _export(torch, module, example_inputs, path, in_names, out_names, opset):
    """torch.onnx.export with the TorchScript exporter first (the form every torch since
    1.x has; torch >= 2.9 defaults to the dynamo one), then the dynamo exporter where the
    first fails and torch has it (e.g. bf16 models the TorchScript exporter cannot type)."""
    try:
        has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    except (TypeError, ValueError):
        has_dynamo = False
    args = tuple(example_inputs)
    common = dict(input_names=in_names, output_names=out_names, opset_version=opset)
    try:
        with torch.no_grad():
            torch.onnx.export(module, args, path, do_constant_folding=True,
                              **(dict(dynamo=False) if has_dynamo else {}), **common)
        return
    except Exception as first:
        if not has_dynamo:
            raise RuntimeError(f"mixrt.torch: torch.onnx.export failed: {first}") from first
        first_error = first
    try:
        with torch.no_grad():
            torch.onnx.export(module, args, path, dynamo=True, external_data=False, **common)
    except Exception as second:
        raise RuntimeError(
            "mixrt.torch: torch.onnx.export failed with the TorchScript exporter "
            f"({first_error}) and with the dynamo exporter ({second})") from second


class CompiledModule:
    """The callable compile() returns: calls the engine with torch tensors (positional, in
    the order of the example inputs) and returns a tensor, or a tuple when the module has
    several outputs. Outputs go to the first input's device."""

    def __init__(self, engine, n_inputs, plan_path, onnx_path, backend="cpu"):
        self.engine = engine
        self._cuda = str(backend) == "cuda"
        self.plan_path = plan_path
        self.onnx_path = onnx_path
        self._n_inputs = n_inputs
        self._in_names = [i.name for i in engine.inputs]
        self._outs = engine.outputs

    def __call__(self, *args):
        if len(args) != self._n_inputs:
            raise TypeError(f"the compiled module takes {self._n_inputs} tensor inputs, "
                            f"got {len(args)}")
        device = next((a.device for a in args if isinstance(a, _torch.Tensor)), None)
        if self._cuda and device is not None and device.type == "cuda" and all(
                isinstance(a, _torch.Tensor) and a.device == device for a in args):
            return self._call_cuda(args, device)
        # The exporter may drop inputs the graph does not use: feed by name.
        feed = {}
        for i, a in enumerate(args):
            name = f"input_{i}"
            if name in self._in_names:
                feed[name] = _to_numpy(a) if isinstance(a, _torch.Tensor) else np.asarray(a)
        res = self.engine.run(feed, bf16_output="bits")
        outs = tuple(_from_numpy(res[o.name], o.dtype, device) for o in self._outs)
        return outs[0] if len(outs) == 1 else outs

    forward = __call__

    def _call_cuda(self, args, device):
        """CUDA engine, CUDA tensors: the engine reads the inputs and writes the outputs in
        GPU memory (no host round trip). torch's work on the inputs is finished first: the
        engine's stream does not wait on torch's."""
        torch = _torch
        feed, keep = [], []
        for i, a in enumerate(args):
            name = f"input_{i}"
            if name not in self._in_names:
                continue
            x = a.detach().contiguous()
            keep.append(x)
            feed.append((name, x.data_ptr(), _MIXRT_OF_TORCH.get(x.dtype, 0), tuple(x.shape),
                         x.numel() * x.element_size()))
        outs = []
        for o in self._outs:
            tdt = _TORCH_OF_MIXRT.get(o.dtype)
            if tdt is None or any(d is None or not isinstance(d, int) for d in o.shape):
                raise RuntimeError(f"mixrt.torch: output '{o.name}' ({o.dtype}, {o.shape}) cannot be "
                                   "a CUDA tensor")
            outs.append(torch.empty(tuple(o.shape), dtype=tdt, device=device))
        torch.cuda.current_stream(device).synchronize()
        self.engine._run_cuda(feed, [(t.data_ptr(), _MIXRT_OF_TORCH[t.dtype], tuple(t.shape),
                                      t.numel() * t.element_size()) for t in outs])
        outs = tuple(outs)
        return outs[0] if len(outs) == 1 else outs

    def inspect(self):
        return self.engine.inspect()


def compile(module, example_inputs, enabled_precisions=None, backend="cpu",
            strongly_typed=False, cache_dir=None, opset=_OPSET, **build_options):
    """Compiles a torch.nn.Module with mixrt, like torch_tensorrt.compile.
    example_inputs: a tensor or a list/tuple of tensors (their dtypes and shapes fix the
    engine's); enabled_precisions: a set of torch.float32 / torch.float16 / torch.bfloat16
    (default {torch.float32}); backend: "cpu" (or "cuda" on a CUDA build);
    strongly_typed: every tensor keeps the dtype the module gives it. Further keyword
    arguments go to Engine.build (layer_precision, constraints, ...). The exported ONNX
    file and the plan are cached under cache_dir (default $MIXRT_TORCH_CACHE, else
    ~/.cache/mixrt/torch) by a hash of the module state and the settings."""
    torch = _need_torch()
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = [example_inputs]
    example_inputs = list(example_inputs)
    if not all(isinstance(x, torch.Tensor) for x in example_inputs):
        raise TypeError("example_inputs must be torch tensors")
    if enabled_precisions is None:
        enabled_precisions = {torch.float32}
    precision = _precisions(enabled_precisions)
    settings = {"precision": ",".join(precision), "backend": str(backend),
                "strongly_typed": bool(strongly_typed), "opset": int(opset),
                "build": repr(sorted(build_options.items()))}
    key = _cache_key(module, example_inputs, settings)
    folder = os.path.join(cache_dir or _default_cache_dir(), key)
    os.makedirs(folder, exist_ok=True)
    onnx_path = os.path.join(folder, "model.onnx")
    plan_path = os.path.join(folder, "model.plan")

    engine = None
    if os.path.exists(plan_path):
        try:
            engine = Engine.load(plan_path)
        except MixrtError:
            engine = None  # stale or from another target: rebuild below
    if engine is None:
        if not os.path.exists(onnx_path):
            in_names = [f"input_{i}" for i in range(len(example_inputs))]
            with torch.no_grad():
                sample = module(*example_inputs)
            n_out = len(sample) if isinstance(sample, (tuple, list)) else 1
            out_names = [f"output_{i}" for i in range(n_out)]
            fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=folder)
            os.close(fd)
            try:
                _export(torch, module, example_inputs, tmp, in_names, out_names, int(opset))
                os.replace(tmp, onnx_path)  # a half-written export never has the cached name
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        engine = Engine.build(onnx_path, precision=precision, strongly_typed=strongly_typed,
                              backend=backend, **build_options)
        engine.save(plan_path)
    return CompiledModule(engine, len(example_inputs), plan_path, onnx_path, backend)
