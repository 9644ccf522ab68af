#!/usr/bin/python3
"""Tests of the Python package (python/mixrt) over the built libmixrt.so: the example models
built and run from Python (fp32 and fp32,bf16) against `mixrt run` of the same plan
(bit-exact) and against the float64 NumPy expected outputs of scripts/make_examples.py;
bf16 in/out; save/load; errors; the seed's Linear(20,30) bf16 case; the mixrt.torch stub.

usage: test_python.py            the API tests (unittest; needs MIXRT_LIBRARY, MIXRT_CLI,
                                  MIXRT_EXAMPLES, PYTHONPATH=<repo>/python)
       test_python.py --pip-install
                                  `pip install ./python --target TMP --no-deps
                                  --no-build-isolation`, then imports the installed copy;
                                  exits 77 (ctest SKIP) when this Python has no pip.
       test_python.py --torch     mixrt.torch.compile against PyTorch (exits 77 without torch);
       test_python.py --torch --cuda   the same with --backend cuda engines and CUDA tensors."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = 77


def read_pb(path):
    """A TensorProto file as a NumPy array; bf16 as its raw bits (uint16), exactly."""
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    if t.data_type == TensorProto.BFLOAT16:
        if t.raw_data:
            bits = np.frombuffer(t.raw_data, dtype="<u2").astype(np.uint16)
        else:
            bits = np.array(t.int32_data, dtype=np.uint16)
        return bits.reshape(tuple(t.dims)), "bf16"
    return numpy_helper.to_array(t), None


def bf16_bits(a):
    """float32 -> bf16 bits, round to nearest even (independent of the C library)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def rel_norm(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def pip_install_test():
    r = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"SKIP: {sys.executable} has no pip ({r.stderr.strip()[:200]}); "
              "the pip install test did not run")
        return SKIP
    work = tempfile.mkdtemp(prefix="mixrt_pip_")
    target = os.path.join(work, "site")
    try:
        # Installed from a copy of python/: setuptools writes build/ and *.egg-info beside
        # the sources, which must not appear in the checkout (nor race other builds).
        src = os.path.join(work, "python")
        shutil.copytree(os.path.join(SRC, "python"), src,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        cmd = [sys.executable, "-m", "pip", "install", src, "--target", target, "--no-deps",
               "--no-build-isolation", "--no-index", "--quiet", "--disable-pip-version-check"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL: " + " ".join(cmd) + "\n" + r.stdout + r.stderr)
            return 1
        env = dict(os.environ)
        env["PYTHONPATH"] = target
        code = ("import mixrt, mixrt.torch, numpy as np, os, sys\n"
                "assert os.path.dirname(mixrt.__file__).startswith(sys.argv[1]), mixrt.__file__\n"
                "print('installed', mixrt.__file__, 'library', mixrt.library_path, mixrt.version())\n")
        tiny = os.environ.get("MIXRT_TINY_MODEL")
        if tiny:
            code += ("e = mixrt.Engine.build(sys.argv[2], precision='fp32')\n"
                     "o = e.run([np.ones(e.inputs[0].shape, np.float32)])\n"
                     "print('ran', {k: v.shape for k, v in o.items()})\n")
        r = subprocess.run([sys.executable, "-c", code, target] + ([tiny] if tiny else []),
                           env=env, capture_output=True, text=True, cwd=target)
        print(r.stdout + r.stderr)
        return 0 if r.returncode == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


class PythonPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import mixrt
        cls.mixrt = mixrt
        cls.cli = os.environ["MIXRT_CLI"]
        cls.examples = os.environ["MIXRT_EXAMPLES"]
        with open(os.path.join(cls.examples, "manifest.json")) as f:
            cls.manifest = {m["name"]: m for m in json.load(f)["models"]}
        cls.tmp = tempfile.mkdtemp(prefix="mixrt_pytest_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def build(self, name, precision):
        return self.mixrt.Engine.build(os.path.join(self.examples, name + ".onnx"),
                                       precision=precision)

    def example_input(self, name):
        m = self.manifest[name]
        arr, kind = read_pb(os.path.join(self.examples, m["inputs"][0]["file"]))
        return m["inputs"][0]["name"], arr, kind

    def cli_run(self, plan, in_name, in_file, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        cmd = [self.cli, "run", plan, "--input", f"{in_name}={in_file}", "--output-dir", out_dir,
               "--output-format", "pb"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, " ".join(cmd) + "\n" + r.stdout + r.stderr)
        return {f[:-3]: read_pb(os.path.join(out_dir, f)) for f in os.listdir(out_dir)
                if f.endswith(".pb")}

    # ---- the example models ------------------------------------------------------------
    def test_examples_match_cli_and_reference(self):
        # Tolerances against the f64 reference of the f32 weights: f16/bf16 models have
        # rounded weights and inputs; fp32,bf16 computes in bf16 where the planner picks it.
        tol = {("f32", "fp32"): 1e-4, ("f32", "fp32,bf16"): 3e-2,
               ("f16", "fp32"): 1e-2, ("f16", "fp32,bf16"): 3e-2,
               ("bf16", "fp32"): 3e-2, ("bf16", "fp32,bf16"): 3e-2}
        report = []
        for kind in ("cnn", "transformer"):
            for dt in ("f32", "f16", "bf16"):
                name = f"{kind}_{dt}"
                m = self.manifest[name]
                in_name, x, xkind = self.example_input(name)
                for prec in ("fp32", "fp32,bf16"):
                    with self.subTest(model=name, precision=prec):
                        eng = self.build(name, prec)
                        plan = os.path.join(self.tmp, f"{name}_{prec.replace(',', '_')}.plan")
                        eng.save(plan)
                        got = eng.run({in_name: x}, bf16_output="bits")
                        cli = self.cli_run(plan, in_name,
                                           os.path.join(self.examples, m["inputs"][0]["file"]),
                                           os.path.join(self.tmp, "out_" + os.path.basename(plan)))
                        for o in m["outputs"]:
                            a = got[o["name"]]
                            b, bkind = cli[o["name"]]
                            self.assertEqual(a.dtype, b.dtype, o["name"])
                            self.assertEqual(a.shape, b.shape)
                            # bit-exact: compare the bytes (NaN-safe)
                            self.assertEqual(a.tobytes(), b.tobytes(),
                                             f"{name} {prec}: Python and `mixrt run` differ")
                            ref, _ = read_pb(os.path.join(self.examples, o["expected_f32"]))
                            val = bits_to_f32(a) if bkind == "bf16" else a
                            err = rel_norm(val, ref)
                            report.append(f"{name:18s} {prec:10s} rel-norm vs f64 ref {err:.2e}")
                            self.assertLessEqual(err, tol[(dt, prec)], f"{name} {prec}")
        print("\n" + "\n".join(report), file=sys.stderr)

    # ---- bf16 I/O ----------------------------------------------------------------------
    def test_bf16_inputs_and_outputs(self):
        import mixrt.engine as me
        eng = self.build("cnn_bf16", "fp32")
        self.assertEqual(eng.inputs[0].dtype, "bf16")
        self.assertEqual(eng.outputs[0].dtype, "bf16")
        in_name = eng.inputs[0].name
        x32 = np.random.default_rng(7).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
        bits = bf16_bits(x32)
        me._bf16_warned = False
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out_f32 = eng.run({in_name: x32})           # float32 in: rounded (RNE) in C
            out_bits_in = eng.run({in_name: bits})      # uint16 in: raw bf16 bits
            eng.run([x32])
        mine = [x for x in w if "bf16" in str(x.message)]
        self.assertEqual(len(mine), 1, [str(x.message) for x in w])
        self.assertIn("float32", str(mine[0].message))
        o = eng.outputs[0].name
        self.assertEqual(out_f32[o].dtype, np.float32)
        self.assertEqual(out_f32[o].tobytes(), out_bits_in[o].tobytes())
        raw = eng.run({in_name: bits}, bf16_output="bits")[o]
        self.assertEqual(raw.dtype, np.uint16)
        # float32 output is the exact widening of the bits
        self.assertEqual(bits_to_f32(raw).tobytes(), out_f32[o].tobytes())
        # non-contiguous and big-endian float32 inputs give the same result (copied)
        xt = np.ascontiguousarray(x32.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
        self.assertFalse(xt.flags.c_contiguous)
        self.assertEqual(eng.run({in_name: xt})[o].tobytes(), out_f32[o].tobytes())
        self.assertEqual(eng.run({in_name: x32.astype(">f4")})[o].tobytes(),
                         out_f32[o].tobytes())

    # ---- save / load -------------------------------------------------------------------
    def test_save_load_roundtrip(self):
        eng = self.build("transformer_f32", ("fp32", "bf16"))
        plan = os.path.join(self.tmp, "rt.plan")
        eng.save(plan)
        eng2 = self.mixrt.Engine.load(plan)
        self.assertEqual(eng.inputs, eng2.inputs)
        self.assertEqual(eng.outputs, eng2.outputs)
        self.assertEqual(eng.inspect(), eng2.inspect())
        layers = eng.inspect()
        self.assertTrue(layers and set(layers[0]) == {"name", "op", "kernel", "precision"})
        in_name, x, _ = self.example_input("transformer_f32")
        a, b = eng.run({in_name: x}), eng2.run([x])
        for k in a:
            self.assertEqual(a[k].tobytes(), b[k].tobytes())
        # one bare array for a one-input engine is that input, not a list of its rows
        c = eng.run(x)
        for k in a:
            self.assertEqual(a[k].tobytes(), c[k].tobytes())
        eng2.close()
        with self.assertRaises(self.mixrt.MixrtError):
            eng2.run([x])
        with self.mixrt.Engine.load(plan) as e3:
            self.assertEqual(e3.run([x])[eng.outputs[0].name].tobytes(),
                             a[eng.outputs[0].name].tobytes())

    # ---- errors ------------------------------------------------------------------------
    def test_errors(self):
        E = self.mixrt.MixrtError
        with self.assertRaises(E) as c:
            self.mixrt.Engine.build(os.path.join(self.tmp, "missing.onnx"))
        self.assertEqual(c.exception.status_name, "IO_ERROR")
        self.assertIn("missing.onnx", c.exception.message)
        with self.assertRaises(E) as c:
            self.mixrt.Engine.load(os.path.join(self.examples, "cnn_f32.onnx"))  # not a plan
        self.assertNotEqual(c.exception.status, 0)
        self.assertTrue(c.exception.message)
        with self.assertRaises(E) as c:
            self.build("cnn_f32", "fp32,fp8")
        self.assertEqual(c.exception.status_name, "INVALID_ARGUMENT")
        self.assertIn("fp8", c.exception.message)
        with self.assertRaises(E) as c:
            self.mixrt.Engine.build(os.path.join(self.examples, "cnn_f32.onnx"),
                                    constraints="sometimes")
        self.assertEqual(c.exception.status_name, "INVALID_ARGUMENT")

        eng = self.build("cnn_f32", "fp32")
        in_name = eng.inputs[0].name
        good = np.zeros((1, 3, 32, 32), np.float32)
        eng.run({in_name: good})
        cases = [({in_name: good.astype(np.float64)}, "f64"),          # wrong dtype
                 ({in_name: np.zeros((1, 3, 16, 32), np.float32)}, "16"),  # wrong shape
                 ({"nope": good}, "nope"),                              # unknown name
                 ({}, in_name)]                                         # missing input
        for feed, needle in cases:
            with self.subTest(needle=needle):
                with self.assertRaises(E) as c:
                    eng.run(feed)
                self.assertEqual(c.exception.status_name, "INVALID_ARGUMENT",
                                 c.exception.message)
                self.assertIn(needle, c.exception.message)
                self.assertIn(c.exception.status_name, str(c.exception))
        with self.assertRaises(E) as c:
            eng.run([good, good])
        self.assertEqual(c.exception.status_name, "INVALID_ARGUMENT")
        with self.assertRaises(E) as c:
            eng.run({in_name: np.zeros((1, 3, 32, 32), np.complex64)})
        self.assertEqual(c.exception.status_name, "UNSUPPORTED_DTYPE")
        # the engine still works after the errors
        self.assertEqual(eng.run({in_name: good})[eng.outputs[0].name].shape, (1, 10))

    # ---- the seed's failing case -------------------------------------------------------
    def test_seed_linear_bf16(self):
        """nn.Linear(20, 30).bfloat16(), input (128, 20) bf16, enabled precisions {bf16}:
        here as an ONNX MatMul + Add with bf16 weights, compared with a float64 NumPy
        computation from the same bf16-rounded weights and input."""
        rng = np.random.default_rng(2024)
        bound = 1 / np.sqrt(20)
        w = rng.uniform(-bound, bound, (30, 20)).astype(np.float32)  # torch's (out, in)
        b = rng.uniform(-bound, bound, (30,)).astype(np.float32)
        x = rng.standard_normal((128, 20)).astype(np.float32)
        wt_bits, b_bits, x_bits = bf16_bits(w.T.copy()), bf16_bits(b), bf16_bits(x)

        def init(name, bits):
            t = TensorProto()
            t.name = name
            t.data_type = TensorProto.BFLOAT16
            t.dims.extend(bits.shape)
            t.raw_data = bits.astype("<u2").tobytes()
            return t

        graph = helper.make_graph(
            [helper.make_node("MatMul", ["input", "weight_t"], ["mm"], name="linear.matmul"),
             helper.make_node("Add", ["mm", "bias"], ["output"], name="linear.add")],
            "linear_bf16",
            [helper.make_tensor_value_info("input", TensorProto.BFLOAT16, [128, 20])],
            [helper.make_tensor_value_info("output", TensorProto.BFLOAT16, [128, 30])],
            [init("weight_t", wt_bits), init("bias", b_bits)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # opset 17's IR version (newer onnx writes newer ones)
        onnx.checker.check_model(model)
        path = os.path.join(self.tmp, "linear_bf16.onnx")
        onnx.save(model, path)

        ref = (bits_to_f32(x_bits).astype(np.float64) @ bits_to_f32(wt_bits).astype(np.float64)
               + bits_to_f32(b_bits).astype(np.float64))
        report = []
        for kw in ({"precision": {"bf16"}}, {"precision": ("fp32", "bf16")},
                   {"precision": "fp32"}, {"precision": {"bf16"}, "strongly_typed": True}):
            with self.subTest(**{k: str(v) for k, v in kw.items()}):
                eng = self.mixrt.Engine.build(path, **kw)
                out_bits = eng.run({"input": x_bits}, bf16_output="bits")["output"]
                self.assertEqual(out_bits.shape, (128, 30))
                out_f32in = eng.run({"input": x}, bf16_output="bits")["output"]
                self.assertEqual(out_bits.tobytes(), out_f32in.tobytes())
                err = rel_norm(bits_to_f32(out_bits), ref)
                report.append(f"seed Linear(20,30) bf16 {kw}: rel-norm {err:.2e}, layers "
                              + ", ".join(f"{l['op']}:{l['kernel']}:{l['precision']}"
                                          for l in eng.inspect()))
                self.assertLessEqual(err, 1e-2)
        print("\n" + "\n".join(report), file=sys.stderr)

    # ---- mixrt.torch -------------------------------------------------------------------
    # ---- a Loop that appends to its carried values (ref_control.c appended_carry) -------
    def loop_append_model(self, trips):
        """Loop over `trips` trips; row_i = i * v + w ([1, 3]); carried a: Concat(a, row) (the
        append form), b: Concat(b, row, -row) with axis -2 (three inputs), c: Concat(c, row)
        but c's size also makes the condition, which ends the loop after trip 20 (not the form),
        d: Concat(row, d) (the carried value second: not the form); a scan output 2 * row."""
        f = TensorProto.FLOAT
        body = helper.make_graph(
            [helper.make_node("Cast", ["i"], ["fi"], to=f),
             helper.make_node("Mul", ["fi", "v"], ["iv"]),
             helper.make_node("Add", ["iv", "w"], ["r1"]),
             helper.make_node("Unsqueeze", ["r1", "ax0"], ["row"]),
             helper.make_node("Neg", ["row"], ["nrow"]),
             helper.make_node("Concat", ["a", "row"], ["a_out"], axis=0),
             helper.make_node("Concat", ["b", "row", "nrow"], ["b_out"], axis=-2),
             helper.make_node("Concat", ["c", "row"], ["c_out"], axis=0),
             helper.make_node("Concat", ["row", "d"], ["d_out"], axis=0),
             helper.make_node("Size", ["c"], ["cs"]),
             helper.make_node("Less", ["cs", "lim"], ["cond_out"]),
             helper.make_node("Add", ["row", "row"], ["scan"])],
            "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []),
             helper.make_tensor_value_info("cond", TensorProto.BOOL, [])] +
            [helper.make_tensor_value_info(n, f, ["n", 3]) for n in "abcd"],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])] +
            [helper.make_tensor_value_info(n + "_out", f, ["m", 3]) for n in "abcd"] +
            [helper.make_tensor_value_info("scan", f, [1, 3])])
        inits = [numpy_helper.from_array(np.array(trips, np.int64), "trips"),
                 numpy_helper.from_array(np.array(True), "cond0"),
                 numpy_helper.from_array(np.array([0], np.int64), "ax0"),
                 numpy_helper.from_array(np.array(3 * (2 + 20), np.int64), "lim")]
        g = helper.make_graph(
            [helper.make_node("Loop", ["trips", "cond0", "x0", "x0", "x0", "x0"], ["ya", "yb", "yc", "yd", "ys"],
                              body=body)],
            "loop_append",
            [helper.make_tensor_value_info("x0", f, [2, 3]), helper.make_tensor_value_info("v", f, [3]),
             helper.make_tensor_value_info("w", f, [3])],
            [helper.make_tensor_value_info(n, f, ["r", 3]) for n in ("ya", "yb", "yc", "yd")] +
            [helper.make_tensor_value_info("ys", f, ["t", 1, 3])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(m)
        path = os.path.join(self.tmp, "loop_append_%d.onnx" % trips)
        onnx.save(m, path)
        return path

    def test_loop_append(self):
        rng = np.random.default_rng(11)
        x0, v, w = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3), (3,), (3,)))
        for trips in (0, 1, 5, 37):
            rows = [(np.float32(i) * v + w)[None] for i in range(min(trips, 21))]
            want = {"ya": np.concatenate([x0] + rows), "yb": np.concatenate([x0] + [r for q in rows for r in (q, -q)]),
                    "yc": np.concatenate([x0] + rows), "yd": np.concatenate(rows[::-1] + [x0])}
            for precision in ("fp32", "fp32,bf16"):
                eng = self.mixrt.Engine.build(self.loop_append_model(trips), precision=precision)
                got = eng.run({"x0": x0, "v": v, "w": w})
                for k, e in want.items():
                    self.assertEqual(got[k].shape, e.shape, "%s trips %d %s" % (k, trips, precision))
                    np.testing.assert_array_equal(got[k], e, "%s trips %d %s" % (k, trips, precision))
                if trips:
                    np.testing.assert_array_equal(got["ys"], 2 * np.stack(rows), "scan trips %d" % trips)
                else:
                    self.assertEqual(got["ys"].shape[0], 0)

    def loop_resize_model(self):
        """A keypoint head's decoding, the form torchvision exports: a Loop over the boxes whose
        body cuts box i's heatmaps [C, 8, 8] out of an outer value, resizes them (cubic,
        half_pixel, sizes computed in the body from an int64 box-size input) to the box, reads
        ArgMax and ReduceMax of each map and the interpolated value at a fixed pixel, as scan
        outputs; the outer heatmaps come from a Mul in the main graph."""
        f, i64 = TensorProto.FLOAT, TensorProto.INT64
        body = helper.make_graph(
            [helper.make_node("Gather", ["heat", "i"], ["hm"], axis=0),
             helper.make_node("Unsqueeze", ["hm", "ax0"], ["hm4"]),
             helper.make_node("Gather", ["sizes", "i"], ["hw"], axis=0),
             helper.make_node("Shape", ["hm4"], ["shp"]),
             helper.make_node("Slice", ["shp", "s0", "s2"], ["nc"]),
             helper.make_node("Concat", ["nc", "hw"], ["osz"], axis=0),
             helper.make_node("Resize", ["hm4", "", "", "osz"], ["big"], mode="cubic",
                              coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75),
             helper.make_node("Squeeze", ["big", "ax0"], ["maps"]),
             helper.make_node("Shape", ["maps"], ["mshp"]),
             helper.make_node("Slice", ["mshp", "s0", "s1"], ["c1"]),
             helper.make_node("Concat", ["c1", "m1"], ["flat_shape"], axis=0),
             helper.make_node("Reshape", ["maps", "flat_shape"], ["flat"]),
             helper.make_node("ArgMax", ["flat"], ["pos"], axis=1, keepdims=0),
             helper.make_node("ReduceMax", ["flat"], ["best"], axes=[1], keepdims=0),
             helper.make_node("Gather", ["flat", "px"], ["at"], axis=1),
             helper.make_node("Identity", ["cond"], ["cond_out"])],
            "body",
            [helper.make_tensor_value_info("i", i64, []), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("pos", i64, ["c"]), helper.make_tensor_value_info("best", f, ["c"]),
             helper.make_tensor_value_info("at", f, ["c"])])
        inits = [numpy_helper.from_array(np.array(True), "cond0"),
                 numpy_helper.from_array(np.array([0], np.int64), "ax0"),
                 numpy_helper.from_array(np.array([0], np.int64), "s0"),
                 numpy_helper.from_array(np.array([1], np.int64), "s1"),
                 numpy_helper.from_array(np.array([2], np.int64), "s2"),
                 numpy_helper.from_array(np.array([-1], np.int64), "m1"),
                 numpy_helper.from_array(np.array(7, np.int64), "px"),
                 numpy_helper.from_array(np.array(1.5, np.float32), "gain")]
        g = helper.make_graph(
            [helper.make_node("Mul", ["h0", "gain"], ["heat"]),
             helper.make_node("Shape", ["sizes"], ["ssh"]),
             helper.make_node("Gather", ["ssh", "s0"], ["trips"], axis=0),
             helper.make_node("Squeeze", ["trips", "ax0"], ["trip"]),
             helper.make_node("Loop", ["trip", "cond0"], ["pos_all", "best_all", "at_all"], body=body)],
            "loop_resize",
            [helper.make_tensor_value_info("h0", f, ["m", 5, 8, 8]), helper.make_tensor_value_info("sizes", i64, ["m", 2])],
            [helper.make_tensor_value_info("pos_all", i64, ["m", 5]), helper.make_tensor_value_info("best_all", f, ["m", 5]),
             helper.make_tensor_value_info("at_all", f, ["m", 5])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(m)
        path = os.path.join(self.tmp, "loop_resize.onnx")
        onnx.save(m, path)
        return path

    @staticmethod
    def cubic_resize_ref(x, oh, ow, a=-0.75):
        """ONNX Resize, cubic, half_pixel, exclude_outside 0, of x [C, H, W] to [C, oh, ow] in
        float64: per axis four taps at floor(x) - 1 .. floor(x) + 2 clamped into the axis."""
        def taps(n, on):
            o = (np.arange(on) + 0.5) * n / on - 0.5
            fl = np.floor(o)
            t = o - fl
            d = np.stack([t + 1, t, 1 - t, 2 - t], 1)
            ad = np.abs(d)
            w = np.where(ad <= 1, (a + 2) * ad ** 3 - (a + 3) * ad ** 2 + 1,
                         a * ad ** 3 - 5 * a * ad ** 2 + 8 * a * ad - 4 * a)
            idx = np.clip(fl[:, None].astype(np.int64) + np.arange(-1, 3)[None], 0, n - 1)
            m = np.zeros((on, n))
            for k in range(4):
                np.add.at(m, (np.arange(on), idx[:, k]), w[:, k])
            return m
        mh, mw = taps(x.shape[1], oh), taps(x.shape[2], ow)
        return np.einsum("ph,chw,qw->cpq", mh, x.astype(np.float64), mw)

    def test_loop_body_kernels(self):
        rng = np.random.default_rng(5)
        h0 = rng.standard_normal((6, 5, 8, 8)).astype(np.float32)
        sizes = np.array([[13, 9], [40, 33], [8, 8], [1, 17], [57, 20], [3, 64]], np.int64)
        path = self.loop_resize_model()
        pos, best, at = [], [], []
        for b in range(6):
            maps = self.cubic_resize_ref(1.5 * h0[b].astype(np.float64), *sizes[b]).reshape(5, -1)
            pos.append(maps.argmax(1))
            best.append(maps.max(1))
            at.append(maps[:, 7])
        want = {"pos_all": np.stack(pos), "best_all": np.stack(best), "at_all": np.stack(at)}
        got = {}
        for mode in ("on", "off"):
            os.environ["MIXRT_BODY_KERNELS"] = mode
            try:
                for precision in ("fp32", "fp32,bf16"):
                    eng = self.mixrt.Engine.build(path, precision=precision)
                    got[mode, precision] = eng.run({"h0": h0, "sizes": sizes})
            finally:
                del os.environ["MIXRT_BODY_KERNELS"]
        for key, out in got.items():
            np.testing.assert_array_equal(out["pos_all"], want["pos_all"], str(key))
            for name in ("best_all", "at_all"):
                self.assertLess(rel_norm(out[name], want[name]), 1e-6, "%s %s" % (name, key))
        # the body's Resize and ArgMax took the fast kernels (the reference's with "off")
        log = subprocess.run([self.cli, "inspect", path, "--precision", "fp32", "--verbose"], capture_output=True,
                             text=True).stderr
        self.assertRegex(log, r"layer '[^']*' \(Resize\): kernel rz_taps")
        self.assertRegex(log, r"layer '[^']*' \(ArgMax\): kernel sel_argmax")
        self.assertRegex(log, r"subgraph bodies: [1-9][0-9]* of 16 layers on fast kernels")

    def test_torch_stub(self):
        import mixrt.torch as mt
        if mt.available():
            self.skipTest("torch is installed: the stub path is not taken")
        with self.assertRaises(ImportError) as c:
            mt.compile(object(), [])
        self.assertIn("PyTorch", str(c.exception))


def torch_test(backend="cpu"):
    """mixrt.torch.compile against PyTorch itself (run where torch is installed, e.g. the
    GPU machine; exits 77 without torch): the seed's Linear(20, 30).bfloat16() case with
    the three precision settings, the engine cache, a small CNN in f32 and bf16, and when
    installed torchvision's ResNet-50 and a transformers BERT (random weights).
    backend "cuda": engines built with --backend cuda, modules and inputs on the GPU (exits
    77 without one)."""
    try:
        import torch
    except ImportError as e:
        print(f"SKIP: no torch in {sys.executable} ({e})")
        return SKIP
    if backend == "cuda" and not torch.cuda.is_available():
        print("SKIP: --backend cuda without a CUDA device")
        return SKIP
    dev = torch.device(backend)
    import mixrt
    import mixrt.torch as mt
    torch.manual_seed(0)
    cache = tempfile.mkdtemp(prefix="mixrt_torch_")
    settings = {"{fp32}": {torch.float32}, "{fp32,bf16}": {torch.float32, torch.bfloat16},
                "{bf16}": {torch.bfloat16}}
    failures = []

    def rel(a, b):
        a = a.detach().double().cpu()
        b = b.detach().double().cpu()
        return float((a - b).norm() / b.norm().clamp_min(1e-300))

    def check(label, module, inputs, tol, prec):
        label = f"[{backend}] {label}"
        module = module.to(dev)
        inputs = [x.to(dev) for x in inputs]
        t0 = time.perf_counter()
        try:
            comp = mt.compile(module, inputs, enabled_precisions=prec, cache_dir=cache, backend=backend)
            t1 = time.perf_counter()
            got = comp(*inputs)
        except (mixrt.MixrtError, RuntimeError) as e:  # this case fails; the others run
            print(f"FAIL {label}: {e}", flush=True)
            failures.append(label)
            return None
        with torch.no_grad():
            want = module(*inputs)
        if isinstance(want, (tuple, list)) or hasattr(want, "last_hidden_state"):
            want = want[0]
            got = got[0] if isinstance(got, tuple) else got
        ok = got.dtype == want.dtype and tuple(got.shape) == tuple(want.shape) and got.device == want.device
        err = rel(got, want) if ok else float("inf")
        ok = ok and err <= tol
        print(f"{'PASS' if ok else 'FAIL'} {label}: dtype {got.dtype} vs {want.dtype}, shape "
              f"{tuple(got.shape)}, |PyTorch| {want.double().norm():.3g}, rel-norm vs "
              f"PyTorch {err:.2e} (tol {tol:g}), compile "
              f"{t1 - t0:.1f} s", flush=True)
        if not ok:
            failures.append(label)
        return comp

    # The seed's failing case.
    lin = torch.nn.Linear(20, 30).bfloat16().eval()
    x = torch.randn(128, 20).bfloat16()
    for name, prec in settings.items():
        check(f"Linear(20,30).bfloat16() x(128,20) bf16 {name}", lin, [x], 1e-2, prec)
    # Its float64 truth from the same bf16 weights and input.
    lin, x = lin.to(dev), x.to(dev)
    comp = mt.compile(lin, [x], enabled_precisions={torch.bfloat16}, cache_dir=cache, backend=backend)
    truth = x.double() @ lin.weight.double().t() + lin.bias.double()
    e = rel(comp(x), truth)
    print(f"{'PASS' if e <= 1e-2 else 'FAIL'} seed vs float64 truth: rel-norm {e:.2e}")
    if e > 1e-2:
        failures.append("seed vs float64")
    # The cache: a second compile loads the plan built by the first.
    again = mt.compile(lin, [x], enabled_precisions={torch.bfloat16}, cache_dir=cache, backend=backend)
    if again.plan_path != comp.plan_path or not os.path.exists(again.plan_path):
        failures.append("cache")
    print(f"cache: {again.plan_path}")

    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10)).eval()
    xc = torch.randn(2, 3, 32, 32)
    for name, prec in settings.items():
        check(f"small CNN f32 {name}", cnn, [xc], 1e-4 if name == "{fp32}" else 3e-2, prec)
    cnn_bf = torch.nn.Sequential(*[m for m in cnn]).bfloat16().eval()
    for name, prec in settings.items():
        check(f"small CNN bf16 {name}", cnn_bf, [xc.bfloat16()], 3e-2, prec)

    try:
        import torchvision
    except ImportError:
        print("SKIP ResNet-50: no torchvision")
    else:
        rn = torchvision.models.resnet50(weights=None).eval()
        xr = torch.randn(1, 3, 224, 224)
        for name, prec in settings.items():
            check(f"ResNet-50 f32 {name}", rn, [xr], 1e-3 if name == "{fp32}" else 5e-2, prec)
        rnb = torchvision.models.resnet50(weights=None).eval()
        rnb.load_state_dict(rn.state_dict())
        rnb = rnb.bfloat16()
        for name, prec in settings.items():
            check(f"ResNet-50 bf16 {name}", rnb, [xr.bfloat16()], 5e-2, prec)
    try:
        import transformers
    except ImportError:
        print("SKIP BERT: no transformers")
    else:
        cfg = transformers.BertConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                      intermediate_size=1024)
        class Bert(torch.nn.Module):
            """last_hidden_state only (the tracer cannot take BertModel's kwargs)."""

            def __init__(self):
                super().__init__()
                self.bert = transformers.BertModel(cfg).eval()

            def forward(self, ids):
                return self.bert(input_ids=ids, return_dict=False)[0]

        bert = Bert().eval()
        ids = torch.randint(0, cfg.vocab_size, (2, 64))
        for name, prec in settings.items():
            check(f"BERT(4x256) f32 {name}", bert, [ids], 1e-3 if name == "{fp32}" else 5e-2,
                  prec)
        bert_bf = Bert().eval()
        bert_bf.load_state_dict(bert.state_dict())
        bert_bf = bert_bf.bfloat16()
        for name, prec in settings.items():
            check(f"BERT(4x256) bf16 {name}", bert_bf, [ids], 5e-2, prec)
    shutil.rmtree(cache, ignore_errors=True)
    print(f"torch tests: {len(failures)} failed" + (f": {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    if "--pip-install" in sys.argv[1:]:
        sys.exit(pip_install_test())
    if "--torch" in sys.argv[1:]:
        sys.exit(torch_test("cuda" if "--cuda" in sys.argv[1:] else "cpu"))
    unittest.main(verbosity=2)
