#!/usr/bin/python3
"""convert_dtype.py - makes the bf16/f16 variants of ONNX test cases for mixrt_conformance.

Usage:
  convert_dtype.py --to bf16|f16 IN_CASE_DIR OUT_CASE_DIR
  convert_dtype.py --to bf16|f16 --suites DATA_ROOT OUT_ROOT [--suite node,simple,...]

A case folder holds model.onnx and test_data_set_*/{input,output}_N.pb. The output folder gets
  model.onnx                      every float32 tensor converted to the 16-bit type
  test_data_set_K/input_N.pb      the inputs, converted the same way
  ref/model.onnx                  the ORIGINAL f32 model whose converted tensors hold the
                                  rounded values (rounded to 16 bits, widened back to f32)
  ref/test_data_set_K/input_N.pb  the rounded inputs, in f32
  ref/test_data_set_K/output_N.pb the original expected outputs (they name the outputs the
                                  test checks; mixrt_conformance compares the two mixrt runs)
or, instead of all that, one marker file:
  NOT_APPLICABLE                  the case has no float32 tensor to convert (one line why)
  CONVERT_ERROR                   the converter could not handle the model (one line why)

What is converted: graph inputs/outputs/value_info types, initializers (dense and sparse),
tensor attributes (Constant value/sparse_value/value_float(s), ConstantOfShape value), Cast
`to`, the dtype attributes whose value or default is FLOAT (RandomNormal/RandomUniform(Like),
EyeLike, Bernoulli, SequenceEmpty, the window ops and MelWeightMatrix output_datatype), and all
of that inside If/Loop/Scan/SequenceMap bodies, recursively. Rounding is to nearest, ties to
even: bf16 by integer arithmetic on the f32 bits (NaN stays a quiet NaN with its sign, overflow
rounds to Inf as IEEE says), f16 by NumPy's astype (also RNE). The opset is kept: mixrt runs
16-bit tensors at every opset (a storage type is not a reason to refuse a model).

What stays float32 ("pinned"), because the operator's spec at the model's opset fixes that
tensor to tensor(float) and it is a parameter, not data:
  Resize roi and scales, Upsample scales, NonMaxSuppression iou_threshold/score_threshold;
  QuantizeLinear y_scale and DequantizeLinear x_scale before opset 19 (opset 19 made the
  scale follow x/y), QLinearConv/QLinearMatMul scales (always float): the quantization grid is
  defined by the exact f32 scale, so rounding it would change the integer results;
and, as outputs the spec fixes to float: LayerNormalization Mean/InvStdDev (U, stash_type
float), DynamicQuantizeLinear y_scale, DequantizeLinear y before opset 19, TfIdfVectorizer Y.
Data tensors whose old type constraints list only float (NonMaxSuppression boxes/scores,
QuantizeLinear/DynamicQuantizeLinear x, Celu X, ...) ARE converted: that is what a user's
converted model holds, and mixrt must accept it. A pinned value keeps f32 back through its
producers (Constant, Cast `to`, and any op computing it from float inputs, e.g. a Mul of
constants), and a float value computed only from kept-f32 values keeps f32 too, so declared
types stay consistent.
"""
import argparse
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper, shape_inference

FLOAT = TensorProto.FLOAT
TARGETS = {"bf16": TensorProto.BFLOAT16, "f16": TensorProto.FLOAT16}
TYPE_NAMES = {TensorProto.BFLOAT16: "BFLOAT16", TensorProto.FLOAT16: "FLOAT16"}


# --- rounding ---------------------------------------------------------------------------

def bf16_bits(a):
    """float32 array -> uint16 bf16 bits, round to nearest even; NaN stays NaN."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    quiet = ((u >> 16) | 0x0040).astype(np.uint16)
    return np.where(nan, quiet, rounded).astype(np.uint16)


def bf16_widen(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def round16(a, variant):
    """Returns (little-endian bytes of the 16-bit tensor, the rounded values widened to f32)."""
    a = np.asarray(a, dtype=np.float32)
    if variant == "bf16":
        bits = bf16_bits(a)
        return bits.astype("<u2").tobytes(), bf16_widen(bits)
    with np.errstate(over="ignore"):
        h = a.astype(np.float16)
    return h.astype("<f2").tobytes(), h.astype(np.float32)


# --- the conversion of one model --------------------------------------------------------

def default_opset(model):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 1


def pinned_inputs(node, opset):
    """Input indices the spec fixes to float32 (parameters, see the module doc)."""
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return ()
    if op == "Resize":
        return (1,) if opset < 11 else (1, 2)
    if op == "Upsample":
        return (1,)
    if op == "NonMaxSuppression":
        return (3, 4)
    if op in ("QuantizeLinear", "DequantizeLinear") and opset < 19:
        return (1,)
    if op in ("QLinearConv", "QLinearMatMul"):
        return (1, 4, 6)
    return ()


def fixed_output(node, index, opset):
    """True when the spec fixes output #index of node to float32."""
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return False
    if op == "LayerNormalization":
        return index in (1, 2) and attr_int(node, "stash_type", 1) == FLOAT
    if op == "DynamicQuantizeLinear":
        return index == 1
    if op == "DequantizeLinear":
        return opset < 19 and index == 0
    if op == "TfIdfVectorizer":
        return index == 0
    return False


# Ops whose output dtype comes from an attribute or a body, not from their float inputs.
SOURCE_OPS = {"Cast", "CastLike", "Constant", "ConstantOfShape", "RandomNormal", "RandomUniform",
              "RandomNormalLike", "RandomUniformLike", "EyeLike", "Bernoulli", "Multinomial",
              "HannWindow", "HammingWindow", "BlackmanWindow", "MelWeightMatrix", "SequenceEmpty",
              "If", "Loop", "Scan", "SequenceMap"}
# dtype-like attributes: (op, attribute, default when absent)
DTYPE_ATTRS = {"RandomNormal": ("dtype", FLOAT), "RandomUniform": ("dtype", FLOAT),
               "RandomNormalLike": ("dtype", None), "RandomUniformLike": ("dtype", None),
               "EyeLike": ("dtype", None), "Bernoulli": ("dtype", None),
               "SequenceEmpty": ("dtype", FLOAT), "HannWindow": ("output_datatype", FLOAT),
               "HammingWindow": ("output_datatype", FLOAT), "BlackmanWindow": ("output_datatype", FLOAT),
               "MelWeightMatrix": ("output_datatype", FLOAT)}


def attr_int(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default


def subgraphs(node):
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            yield a.g
        elif a.type == AttributeProto.GRAPHS:
            yield from a.graphs


def all_graphs(g):
    yield g
    for n in g.node:
        for sg in subgraphs(n):
            yield from all_graphs(sg)


def elem_type(tp):
    """The float-ness relevant elem_type of a TypeProto (tensor, or a sequence/optional of one)."""
    if tp.HasField("tensor_type"):
        return tp.tensor_type.elem_type
    if tp.HasField("sequence_type"):
        return elem_type(tp.sequence_type.elem_type)
    if tp.HasField("optional_type"):
        return elem_type(tp.optional_type.elem_type)
    return 0


class Analysis:
    """Which float32 values stay f32 (kept) in the converted model."""

    def __init__(self, model):
        self.opset = default_opset(model)
        self.types = {}
        try:
            inferred = shape_inference.infer_shapes(model)
        except Exception:  # an old or odd model: fall back to the declared types
            inferred = model
        for g in all_graphs(inferred.graph):
            for vi in list(g.input) + list(g.output) + list(g.value_info):
                t = elem_type(vi.type)
                if t:
                    self.types[vi.name] = t
            for t in g.initializer:
                self.types[t.name] = t.data_type
        self.graphs = list(all_graphs(model.graph))
        self.producer = {}
        for g in self.graphs:
            for n in g.node:
                for o in n.output:
                    if o:
                        self.producer[o] = n
        self.kept = set()
        self.cast_needed = set()
        # float values computed from float graph-input data (not from constants, not via a
        # dtype-setting op): a pinned parameter computed from them gets a Cast instead.
        float_data = set()
        for g in self.graphs:
            inits = {t.name for t in g.initializer}
            float_data.update(vi.name for vi in g.input if vi.name not in inits and self.is_float(vi.name))
        changed = True
        while changed:
            changed = False
            for g in self.graphs:
                for n in g.node:
                    if n.op_type in SOURCE_OPS and n.op_type != "Cast":
                        continue
                    if any(x in float_data for x in n.input if x):
                        for o in n.output:
                            if o and o not in float_data and self.is_float(o):
                                float_data.add(o)
                                changed = True
        pinned = []
        for g in self.graphs:
            for n in g.node:
                for i in pinned_inputs(n, self.opset):
                    if i < len(n.input) and n.input[i]:
                        pinned.append(n.input[i])
        # Backward: a pinned value keeps its producer's float inputs f32.
        while pinned:
            v = pinned.pop()
            if v in self.kept:
                continue
            p = self.producer.get(v)
            if p is not None and p.op_type not in SOURCE_OPS and v in float_data:
                # Data computed in 16 bits that a spec-fixed f32 input consumes: what a real
                # converted model does is cast it, so insert Cast(to=FLOAT) there.
                self.cast_needed.add(v)
                continue
            self.kept.add(v)
            if p is None or p.op_type in SOURCE_OPS:
                continue
            for x in p.input:
                if x and self.is_float(x) and x not in self.kept:
                    pinned.append(x)
        # Forward: fixed-float outputs, and float values computed only from kept values.
        changed = True
        while changed:
            changed = False
            for g in self.graphs:
                for n in g.node:
                    for i, o in enumerate(n.output):
                        if not o or o in self.kept or not self.is_float(o):
                            continue
                        keep = fixed_output(n, i, self.opset)
                        if not keep and n.op_type == "CastLike" and len(n.input) > 1:
                            keep = n.input[1] in self.kept
                        elif not keep and n.op_type not in SOURCE_OPS:
                            fl = [x for x in n.input if x and self.is_float(x)]
                            keep = bool(fl) and all(x in self.kept for x in fl)
                        if keep:
                            self.kept.add(o)
                            changed = True

    def is_float(self, name):
        """float32 or unknown (unknown counts as float: converting is the conservative side)."""
        return self.types.get(name, FLOAT) == FLOAT


class Converter:
    """Applies the conversion to a copy of the model: mode 'conv' writes 16-bit tensors and
    types, mode 'twin' keeps every type f32 but stores the rounded values."""

    def __init__(self, analysis, variant, mode):
        self.a = analysis
        self.variant = variant
        self.target = TARGETS[variant]
        self.mode = mode
        self.count = 0

    def tensor(self, t):
        """Converts a float32 TensorProto in place (the caller checked it is not pinned)."""
        if t.data_type != FLOAT:
            return
        if t.HasField("data_location") and t.data_location == TensorProto.EXTERNAL:
            raise ValueError("tensor '%s' has external data" % t.name)
        arr = numpy_helper.to_array(t).astype(np.float32)
        raw, wide = round16(arr.reshape(-1), self.variant)
        new = TensorProto()
        new.name = t.name
        new.dims.extend(t.dims)
        new.doc_string = t.doc_string
        if self.mode == "conv":
            new.data_type = self.target
            new.raw_data = raw
        else:
            new.data_type = FLOAT
            new.raw_data = wide.astype("<f4").tobytes()
        t.CopyFrom(new)
        self.count += 1

    def sparse(self, s):
        self.tensor(s.values)

    def type_proto(self, tp):
        if self.mode != "conv":
            if elem_type(tp) == FLOAT:
                self.count += 1
            return
        if tp.HasField("tensor_type"):
            if tp.tensor_type.elem_type == FLOAT:
                tp.tensor_type.elem_type = self.target
                self.count += 1
        elif tp.HasField("sequence_type"):
            self.type_proto(tp.sequence_type.elem_type)
        elif tp.HasField("optional_type"):
            self.type_proto(tp.optional_type.elem_type)

    def node(self, n):
        out0 = n.output[0] if n.output else ""
        kept = out0 in self.a.kept
        for a in n.attribute:
            if a.type == AttributeProto.GRAPH:
                self.graph(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for g in a.graphs:
                    self.graph(g)
        if n.domain not in ("", "ai.onnx") or kept:
            return
        op = n.op_type
        if op == "Cast":
            for a in n.attribute:
                if a.name != "to":
                    continue
                if a.type == AttributeProto.STRING and a.s.upper() == b"FLOAT":
                    if self.mode == "conv":
                        a.s = TYPE_NAMES[self.target].encode()
                    self.count += 1
                elif a.type == AttributeProto.INT and a.i == FLOAT:
                    if self.mode == "conv":
                        a.i = self.target
                    self.count += 1
        elif op in ("Constant", "ConstantOfShape"):
            has_value = False
            for a in list(n.attribute):
                if a.name == "value" and a.type == AttributeProto.TENSOR:
                    has_value = True
                    self.tensor(a.t)
                elif a.name == "sparse_value" and a.type == AttributeProto.SPARSE_TENSOR:
                    has_value = True
                    self.sparse(a.sparse_tensor)
                elif a.name in ("value_float", "value_floats"):
                    has_value = True
                    vals = np.array([a.f] if a.name == "value_float" else list(a.floats), dtype=np.float32)
                    raw, wide = round16(vals, self.variant)
                    if self.mode == "conv":
                        t = TensorProto(data_type=self.target, raw_data=raw)
                        if a.name == "value_floats":
                            t.dims.append(len(vals))
                        n.attribute.remove(a)
                        n.attribute.add(name="value", type=AttributeProto.TENSOR, t=t)
                    elif a.name == "value_float":
                        a.f = float(wide[0])
                    else:
                        del a.floats[:]
                        a.floats.extend(float(x) for x in wide)
                    self.count += 1
            if op == "ConstantOfShape" and not has_value:
                # The default value is a float32 zero: make it explicit in the new type.
                raw, _ = round16(np.zeros(1, np.float32), self.variant)
                if self.mode == "conv":
                    n.attribute.add(name="value", type=AttributeProto.TENSOR,
                                    t=TensorProto(data_type=self.target, dims=[1], raw_data=raw))
                self.count += 1
        elif op in DTYPE_ATTRS:
            name, default = DTYPE_ATTRS[op]
            found = False
            for a in n.attribute:
                if a.name == name:
                    found = True
                    if a.i == FLOAT:
                        if self.mode == "conv":
                            a.i = self.target
                        self.count += 1
            if not found and default == FLOAT:
                if self.mode == "conv":
                    n.attribute.add(name=name, type=AttributeProto.INT, i=self.target)
                self.count += 1

    def graph(self, g):
        for t in g.initializer:
            if t.name not in self.a.kept:
                self.tensor(t)
        for s in g.sparse_initializer:
            if s.values.name not in self.a.kept:
                self.sparse(s)
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            if vi.name not in self.a.kept:
                self.type_proto(vi.type)
        for n in g.node:
            self.node(n)
        if self.mode == "conv" and self.a.cast_needed:
            self.insert_casts(g)

    def insert_casts(self, g):
        """Feeds pinned inputs that are computed 16-bit data through a Cast(to=FLOAT)."""
        made = {}
        nodes = []
        for n in g.node:
            for i in pinned_inputs(n, self.a.opset):
                v = n.input[i] if i < len(n.input) else ""
                if v not in self.a.cast_needed:
                    continue
                if v not in made:
                    made[v] = v + "__f32"
                    c = onnx.NodeProto(op_type="Cast", name=v + "__f32_cast", input=[v], output=[made[v]])
                    c.attribute.add(name="to", type=AttributeProto.INT, i=FLOAT)
                    nodes.append(c)
                    self.count += 1
                n.input[i] = made[v]
            nodes.append(n)
        del g.node[:]
        g.node.extend(nodes)


def bound_inputs(graph):
    """Graph inputs a test feeds, by name, and the positional order of those without an
    initializer (how mixrt_conformance binds unnamed input_N.pb files)."""
    inits = {t.name for t in graph.initializer}
    return {vi.name: vi for vi in graph.input}, [vi for vi in graph.input if vi.name not in inits]


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def convert_case(in_dir, out_dir, variant):
    """Converts one case; returns 'converted', 'not-applicable' or 'error: ...'."""
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    try:
        model = onnx.load(os.path.join(in_dir, "model.onnx"))
        analysis = Analysis(model)
        conv, twin = onnx.ModelProto(), onnx.ModelProto()
        conv.CopyFrom(model)
        twin.CopyFrom(model)
        cc = Converter(analysis, variant, "conv")
        cc.graph(conv.graph)
        tc = Converter(analysis, variant, "twin")
        tc.graph(twin.graph)
        by_name, free = bound_inputs(model.graph)
        sets = sorted(d for d in os.listdir(in_dir) if d.startswith("test_data_set_"))
        data_converted = 0
        staged = []  # (relative path, bytes for conv, bytes for twin)
        for s in sets:
            files = sorted(os.listdir(os.path.join(in_dir, s)))
            inputs = [f for f in files if f.startswith("input_") and f.endswith(".pb")]
            inputs.sort(key=lambda f: int(f[6:-3]))
            for pos, f in enumerate(inputs):
                raw = open(os.path.join(in_dir, s, f), "rb").read()
                t = TensorProto()
                vi = None
                try:
                    t.ParseFromString(raw)
                    vi = by_name.get(t.name) if t.name else None
                except Exception:
                    t = None
                if vi is None and pos < len(free):
                    vi = free[pos]
                plain = (t is not None and vi is not None and vi.type.HasField("tensor_type")
                         and t.data_type == FLOAT)
                if plain and vi.name not in analysis.kept:
                    tcv, ttw = TensorProto(), TensorProto()
                    tcv.CopyFrom(t)
                    ttw.CopyFrom(t)
                    Converter(analysis, variant, "conv").tensor(tcv)
                    Converter(analysis, variant, "twin").tensor(ttw)
                    staged.append((os.path.join(s, f), tcv.SerializeToString(), ttw.SerializeToString()))
                    data_converted += 1
                else:  # not float32, pinned, or not a plain tensor: as shipped
                    staged.append((os.path.join(s, f), raw, raw))
            for f in files:
                if f.startswith("output_") and f.endswith(".pb"):
                    raw = open(os.path.join(in_dir, s, f), "rb").read()
                    staged.append((os.path.join(s, f), None, raw))
        if cc.count == 0 and data_converted == 0:
            write(os.path.join(out_dir, "NOT_APPLICABLE"), b"no float32 tensor, type or attribute to convert\n")
            return "not-applicable"
        write(os.path.join(out_dir, "model.onnx"), conv.SerializeToString())
        os.makedirs(os.path.join(out_dir, "ref"))
        write(os.path.join(out_dir, "ref", "model.onnx"), twin.SerializeToString())
        for s in sets:
            os.makedirs(os.path.join(out_dir, s))
            os.makedirs(os.path.join(out_dir, "ref", s))
        for rel, cbytes, tbytes in staged:
            if cbytes is not None:
                write(os.path.join(out_dir, rel), cbytes)
            write(os.path.join(out_dir, "ref", rel), tbytes)
        return "converted"
    except Exception as e:  # one odd model must not stop a suite conversion
        for f in os.listdir(out_dir):
            p = os.path.join(out_dir, f)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
        msg = "%s: %s" % (type(e).__name__, str(e).replace("\n", " ")[:300])
        write(os.path.join(out_dir, "CONVERT_ERROR"), (msg + "\n").encode())
        return "error: " + msg


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--to", required=True, choices=sorted(TARGETS))
    ap.add_argument("--suites", action="store_true",
                    help="IN and OUT are data roots holding suite folders")
    ap.add_argument("--suite", default="node,pytorch-converted,pytorch-operator,simple",
                    help="with --suites: comma list of suites")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("input")
    ap.add_argument("output")
    args = ap.parse_args(argv)
    if not args.suites:
        r = convert_case(args.input, args.output, args.to)
        print("%s: %s" % (args.input, r))
        return 1 if r.startswith("error") else 0
    total = {"converted": 0, "not-applicable": 0, "error": 0}
    for suite in args.suite.split(","):
        src = os.path.join(args.input, suite)
        if not os.path.isdir(src):
            print("convert_dtype: no suite folder %s" % src, file=sys.stderr)
            return 2
        for case in sorted(os.listdir(src)):
            if not os.path.isfile(os.path.join(src, case, "model.onnx")):
                continue
            r = convert_case(os.path.join(src, case), os.path.join(args.output, suite, case), args.to)
            key = "error" if r.startswith("error") else r
            total[key] += 1
            if key != "converted" and not args.quiet:
                print("%s/%s: %s" % (suite, case, r))
    print("convert_dtype --to %s: %d converted, %d not applicable, %d conversion errors" %
          (args.to, total["converted"], total["not-applicable"], total["error"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
