#!/usr/bin/python3
"""make_io_fixtures.py OUTDIR - tensor files written by NumPy and onnx themselves, for
tests/test_tensor_io.c to read back with mixrt_npy_read / mixrt_pb_read.

Writes OUTDIR/manifest.txt, one line per fixture:
    <file> <mixrt dtype name> <dims, comma-separated, or '-' for a scalar> <expected file>
where the expected file holds the values as little-endian C-order bytes (for string
tensors: each element as a decimal length, a space, the bytes, and a newline).
Needs /usr/bin/python3 with numpy and onnx (Debian python3-numpy, python3-onnx)."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIXRT_NAMES = {
    np.dtype("float32"): "f32", np.dtype("float64"): "f64", np.dtype("float16"): "f16",
    np.dtype("bool"): "bool", np.dtype("int8"): "i8", np.dtype("uint8"): "u8",
    np.dtype("int16"): "i16", np.dtype("uint16"): "u16", np.dtype("int32"): "i32",
    np.dtype("uint32"): "u32", np.dtype("int64"): "i64", np.dtype("uint64"): "u64",
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
manifest = []
rng = np.random.default_rng(1234)


def expect(name, dtype_name, shape, data_le_c_bytes):
    exp = name + ".expected"
    with open(os.path.join(out, exp), "wb") as f:
        f.write(data_le_c_bytes)
    dims = ",".join(str(d) for d in shape) if len(shape) else "-"
    manifest.append(f"{name} {dtype_name} {dims} {exp}")


def values(dt, shape):
    dt = np.dtype(dt)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind == "f":
        return (rng.standard_normal(size=shape) * 100).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)


def le_c(a):
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()


def npy(name, a, version=None):
    with open(os.path.join(out, name), "wb") as f:
        if version is None:
            np.save(f, a, allow_pickle=False)
        else:
            np.lib.format.write_array(f, a, version=version, allow_pickle=False)


# ---- .npy: every numeric dtype, both byte orders, Fortran order, scalars, versions ----
for dt in MIXRT_NAMES:
    a = values(dt, (2, 3))
    npy(f"le_{dt.name}.npy", a)
    expect(f"le_{dt.name}.npy", MIXRT_NAMES[dt], a.shape, le_c(a))
    if dt.itemsize > 1:
        b = a.astype(dt.newbyteorder(">"))
        npy(f"be_{dt.name}.npy", b)
        expect(f"be_{dt.name}.npy", MIXRT_NAMES[dt], a.shape, le_c(a))
    f = np.asfortranarray(values(dt, (2, 3, 4)))
    npy(f"fortran_{dt.name}.npy", f)
    expect(f"fortran_{dt.name}.npy", MIXRT_NAMES[dt], f.shape, le_c(f))

s = np.array(3.25, dtype=np.float64)
npy("scalar_f64.npy", s)
expect("scalar_f64.npy", "f64", (), le_c(s))
v = values(np.int32, (7,))
npy("vector_i32.npy", v)
expect("vector_i32.npy", "i32", (7,), le_c(v))
e = np.zeros((0, 3), dtype=np.float32)
npy("empty_f32.npy", e)
expect("empty_f32.npy", "f32", (0, 3), b"")
big = values(np.float32, (3, 5))
npy("v2_f32.npy", big, version=(2, 0))
expect("v2_f32.npy", "f32", big.shape, le_c(big))
npy("v3_f32.npy", big, version=(3, 0))
expect("v3_f32.npy", "f32", big.shape, le_c(big))
raw = values(np.uint16, (4,))
npy("v2bytes.npy", raw.view("V2"))
expect("v2bytes.npy", "u16", (4,), le_c(raw))
fbe = np.asfortranarray(values(np.float32, (3, 2))).astype(">f4", order="F")
npy("fortran_be_f32.npy", fbe)
expect("fortran_be_f32.npy", "f32", fbe.shape, le_c(fbe))

# ---- .pb: raw_data from numpy_helper, typed fields from helper.make_tensor ----
def pb(name, t):
    with open(os.path.join(out, name), "wb") as f:
        f.write(t.SerializeToString())


for dt in MIXRT_NAMES:
    a = values(dt, (3, 2))
    pb(f"raw_{dt.name}.pb", numpy_helper.from_array(a, name=f"raw_{dt.name}"))
    expect(f"raw_{dt.name}.pb", MIXRT_NAMES[dt], a.shape, le_c(a))
    t = helper.make_tensor(f"typed_{dt.name}", helper.np_dtype_to_tensor_dtype(dt)
                           if hasattr(helper, "np_dtype_to_tensor_dtype")
                           else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[dt], a.shape, a.flatten().tolist())
    pb(f"typed_{dt.name}.pb", t)
    if dt == np.float16:
        # make_tensor stores float16 as its bit pattern in int32_data.
        exp = np.array(t.int32_data, dtype=np.int64).astype(np.uint16).tobytes()
        assert exp == le_c(a)
    expect(f"typed_{dt.name}.pb", MIXRT_NAMES[dt], a.shape, le_c(a))

# bf16 in int32_data (low 16 bits) as onnx writes it; the expected bits come from the proto.
bf = helper.make_tensor("typed_bf16", TensorProto.BFLOAT16, (2, 2), [1.0, -2.5, 3.140625, 1e10])
pb("typed_bf16.pb", bf)
expect("typed_bf16.pb", "bf16", (2, 2), np.array(bf.int32_data, dtype=np.int64).astype("<u2").tobytes())
# bf16 as raw_data.
bits = np.array([0x3F80, 0xC020, 0x7FC0, 0x0001], dtype="<u2")
rbf = helper.make_tensor("raw_bf16", TensorProto.BFLOAT16, (4,), bits.tobytes(), raw=True)
pb("raw_bf16.pb", rbf)
expect("raw_bf16.pb", "bf16", (4,), bits.tobytes())
# strings.
words = [b"hello", b"", b"mixrt \xc3\xa9", b"x" * 300]
st = helper.make_tensor("strings", TensorProto.STRING, (2, 2), words)
pb("strings.pb", st)
expect("strings.pb", "string", (2, 2), b"".join(b"%d %s\n" % (len(w), w) for w in words))
sc = numpy_helper.from_array(np.array(7, dtype=np.int64), name="scalar")
pb("scalar_i64.pb", sc)
expect("scalar_i64.pb", "i64", (), np.array(7, dtype="<i8").tobytes())

with open(os.path.join(out, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
print(f"{len(manifest)} fixtures in {out}")
