"""Helpers shared by the model-zoo generators: a small graph builder that names nodes and
values the way torch.onnx.export does ("/encoder/layer.0/MatMul", "..._output_0"), seeded
initializers, the f32 -> f16/bf16 model conversion (round to nearest even, bf16 stored as
BFLOAT16 raw_data) and its "f32 twin" (f32 model holding the rounded weights), and NumPy
conv/pool helpers the CNN generators use to calibrate BatchNorm statistics.

Invariant: a generator builds exactly one f32 ModelProto from its seed; every other file
of the zoo is derived from it by convert_model(), so the 16-bit models and their twins
hold bit-identical rounded weights."""
import contextlib
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
F16_MAX = 65504.0
BF16_MAX = float(np.frombuffer(np.uint32(0x7F7F0000).tobytes(), np.float32)[0])  # 3.3895314e38


# ---------------------------------------------------------------- rounding
def f32_to_bf16_bits(a):
    """float32 array -> uint16 bf16 bits, round to nearest even; NaN stays a quiet NaN."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = a.view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        r[nan] = ((b[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to(a, dtype):
    """Rounds a float32 array to 'f16' or 'bf16' values (RNE) and returns them as float32
    (exact: both types are subsets of f32). 'f32' returns the array unchanged."""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "f32":
        return a
    if dtype == "f16":
        with np.errstate(over="ignore"):
            return a.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return bf16_bits_to_f32(f32_to_bf16_bits(a)).reshape(a.shape)
    raise ValueError(dtype)


ONNX_TYPE = {"f32": TensorProto.FLOAT, "f16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}
MAX_FINITE = {"f16": F16_MAX, "bf16": BF16_MAX}


def float_tensor(name, values, dtype):
    """TensorProto of dtype ('f32'/'f16'/'bf16') holding values already rounded to it."""
    values = np.asarray(values, dtype=np.float32)
    if dtype == "f32":
        return numpy_helper.from_array(values, name)
    t = TensorProto()
    t.name = name
    t.dims.extend(values.shape)
    if dtype == "f16":
        t.data_type = TensorProto.FLOAT16
        t.raw_data = values.astype("<f2").tobytes()
    else:
        t.data_type = TensorProto.BFLOAT16
        t.raw_data = f32_to_bf16_bits(values).astype("<u2").tobytes()
    return t


# ---------------------------------------------------------------- conversion
def _convert_array(name, v, dtype, twin, saturate):
    """The TensorProto of float32 array v converted to dtype (or rounded, f32 twin)."""
    if name in saturate:
        # What an exporter tracing in the 16-bit dtype writes: finfo(dtype).min/max.
        m = MAX_FINITE[dtype]
        v = np.clip(v, -m, m)
    return float_tensor(name, round_to(v, dtype), "f32" if twin else dtype)


def _convert_tensor(t, dtype, twin, saturate):
    """Returns the converted copy of a FLOAT TensorProto (others unchanged)."""
    if t.data_type != TensorProto.FLOAT:
        return t
    return _convert_array(t.name, numpy_helper.to_array(t).astype(np.float32), dtype, twin, saturate)


def convert_model(model, dtype, twin=False, saturate=(), arrays=None):
    """The 16-bit version of an f32 model (twin=False): every FLOAT initializer, Constant
    value, graph input/output/value_info and Cast 'to' target becomes dtype; or its f32
    twin (twin=True): same graph, FLOAT kept, weights rounded to dtype. Names in
    'saturate' are clipped to dtype's finite range before rounding (mask constants).
    arrays: optional {name: float32 array} of initializers the model does not hold yet
    (the generators keep the big weights in NumPy: no proto round trip)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    new = [_convert_tensor(t, dtype, twin, saturate) for t in g.initializer]
    for name, v in (arrays or {}).items():
        new.append(_convert_array(name, v, dtype, twin, saturate))
    del g.initializer[:]
    g.initializer.extend(new)
    if twin:
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    a.t.CopyFrom(_convert_tensor(a.t, dtype, True, saturate))
        return m
    target = ONNX_TYPE[dtype]
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = target
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                a.t.CopyFrom(_convert_tensor(a.t, dtype, False, saturate))
            elif n.op_type in ("Cast", "EyeLike", "RandomNormal", "RandomUniform") and a.name in ("to", "dtype"):
                if a.i == TensorProto.FLOAT:
                    a.i = target
    return m


# ---------------------------------------------------------------- graph builder
class Graph:
    """Builds one ONNX graph with exporter-style names. Values are strings."""

    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.scopes = []
        self.used = {}
        self.saturate = set()  # initializer names clipped to the 16-bit range on conversion
        self.arrays = {}  # float32 initializers, kept as NumPy until a model is written

    @contextlib.contextmanager
    def scope(self, name):
        self.scopes.append(name)
        try:
            yield
        finally:
            self.scopes.pop()

    def _unique(self, base):
        k = self.used.get(base, 0)
        self.used[base] = k + 1
        return base if k == 0 else "%s_%d" % (base, k)

    def op(self, op_type, inputs, n_out=1, **attrs):
        """Adds a node; returns its output name (or a list when n_out > 1)."""
        prefix = "/" + "/".join(self.scopes) + "/" if self.scopes else "/"
        name = self._unique(prefix + op_type)
        outs = ["%s_output_%d" % (name, i) for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def init(self, name, arr):
        """Adds an initializer (float arrays stored as float32)."""
        arr = np.asarray(arr)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        name = self._unique(name)
        if arr.dtype == np.float32:
            self.arrays[name] = arr
        else:
            self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def const(self, values, dtype=np.int64):
        """A Constant node (exporters emit these for shapes and scalars)."""
        arr = np.asarray(values, dtype=dtype)
        prefix = "/" + "/".join(self.scopes) + "/" if self.scopes else "/"
        name = self._unique(prefix + "Constant")
        out = name + "_output_0"
        self.nodes.append(helper.make_node("Constant", [], [out], name=name,
                                           value=numpy_helper.from_array(arr, "")))
        return out

    def scalar(self, v):
        return self.const(np.float32(v), np.float32)

    def input(self, name, elem_type, shape):
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, value, name, elem_type, shape):
        """Renames the producer's output to 'name' and declares it a graph output."""
        for n in self.nodes:
            for i, o in enumerate(n.output):
                if o == value:
                    n.output[i] = name
            for i, x in enumerate(n.input):
                if x == value:
                    n.input[i] = name
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    # common weight inits (float32, seeded)
    def normal(self, shape, std):
        return (self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def uniform(self, shape, bound):
        return self.rng.uniform(-bound, bound, size=shape).astype(np.float32)

    def skeleton(self):
        """The f32 model without its float initializers (those stay in self.arrays), with
        value_info from shape inference. Inference and the checker run on a light copy
        that declares the float weights as typed inputs, so a 500 MB model costs no more
        to check than a 1 MB one."""
        g = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mixrt-zoo", producer_version="1")
        m.ir_version = IR_VERSION
        light = onnx.ModelProto()
        light.CopyFrom(m)
        for name, v in self.arrays.items():
            light.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, v.shape))
        onnx.checker.check_model(light)
        light = onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True)
        weights = set(self.arrays)
        m.graph.value_info.extend(vi for vi in light.graph.value_info if vi.name not in weights)
        return m

    def model(self, dtype="f32", twin=False):
        """The complete model as a ModelProto: f32, its 16-bit conversion, or the f32 twin
        (small models and tests; the zoo writes files with save())."""
        m = onnx.ModelProto()
        m.CopyFrom(self.skeleton_cache)
        if dtype == "f32":
            m.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in self.arrays.items())
            return m
        return convert_model(m, dtype, twin, self.saturate, self.arrays)

    def save(self, path, dtype="f32", twin=False):
        """Writes the model file directly: the small skeleton through protobuf, the float
        initializers streamed as raw_data fields. Same bytes a parser sees from
        model().SerializeToString() up to field order, without copying 500 MB of weights
        through protobuf three times."""
        skel = self.skeleton_cache if dtype == "f32" else convert_model(self.skeleton_cache, dtype, twin, self.saturate)
        graph = skel.graph.SerializeToString()
        head = onnx.ModelProto()
        head.CopyFrom(skel)
        head.ClearField("graph")
        store = "f32" if twin else dtype
        entries = []
        for name, v in self.arrays.items():
            if name in self.saturate and dtype != "f32":
                v = np.clip(v, -MAX_FINITE[dtype], MAX_FINITE[dtype])
            v = round_to(v, dtype)
            if store == "f32":
                data = np.ascontiguousarray(v, "<f4")
            elif store == "f16":
                data = v.astype("<f2")
            else:
                data = f32_to_bf16_bits(v).astype("<u2").reshape(v.shape)
            t = b"".join(_key(1, 0) + _varint(d) for d in v.shape)
            t += _key(2, 0) + _varint(ONNX_TYPE[store]) + _key(8, 2) + _varint(len(name.encode())) + name.encode()
            t += _key(9, 2) + _varint(data.nbytes)
            entries.append((_key(5, 2) + _varint(len(t) + data.nbytes) + t, data))
        glen = len(graph) + sum(len(h) + d.nbytes for h, d in entries)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(head.SerializeToString())
            f.write(_key(7, 2) + _varint(glen))
            f.write(graph)
            for h, d in entries:
                f.write(h)
                f.write(memoryview(d).cast("B"))
        os.replace(tmp, path)

    def finish(self):
        self.skeleton_cache = self.skeleton()


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wire_type):
    return _varint(field << 3 | wire_type)


# ---------------------------------------------------------------- NumPy helpers (calibration)
def np_conv2d(x, w, b=None, stride=1, pad=0, group=1):
    """x [C,H,W] (batch 1), w [M, C/group, kh, kw] -> [M, OH, OW], float32."""
    C, H, W = x.shape
    M, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    OH = (H + 2 * pad - kh) // stride + 1
    OW = (W + 2 * pad - kw) // stride + 1
    if group == C and cg == 1 and M == C:  # depthwise: sum of shifted planes
        y = np.zeros((C, OH, OW), np.float32)
        for i in range(kh):
            for j in range(kw):
                y += xp[:, i:i + stride * OH:stride, j:j + stride * OW:stride] * w[:, 0, i, j][:, None, None]
    else:
        assert group == 1
        cols = np.empty((C, kh, kw, OH, OW), np.float32)
        for i in range(kh):
            for j in range(kw):
                cols[:, i, j] = xp[:, i:i + stride * OH:stride, j:j + stride * OW:stride]
        y = (w.reshape(M, -1) @ cols.reshape(C * kh * kw, OH * OW)).reshape(M, OH, OW)
    if b is not None:
        y = y + b[:, None, None]
    return y.astype(np.float32)


def np_maxpool(x, k, stride, pad):
    C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    OH = (H + 2 * pad - k) // stride + 1
    OW = (W + 2 * pad - k) // stride + 1
    y = np.full((C, OH, OW), -np.inf, np.float32)
    for i in range(k):
        for j in range(k):
            y = np.maximum(y, xp[:, i:i + stride * OH:stride, j:j + stride * OW:stride])
    return y
