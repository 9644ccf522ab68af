#!/usr/bin/python3
"""Writes NumPy's float32 -> float16 conversion of seeded random and edge-case values, for
tests/test_dtype.c (--numpy FILE): an independent f16 reference. Run with /usr/bin/python3
(Debian's, which has numpy).

File: b"MIXRTF16", uint64 count, then count records of (uint32 f32 bits, uint32 f16 bits),
all little-endian.

usage: f16_numpy_reference.py OUT [--random N] [--seed S]
"""
import argparse
import sys

import numpy as np


def edge_cases():
    """Every f16 value and every midpoint between neighbours (as f32), each with its f32
    neighbours and both signs; NaNs with each payload bit; the named boundaries."""
    h = np.arange(0, 0x7C00, dtype=np.uint32).astype(np.uint16).view(np.float16)
    lo = h.astype(np.float64)
    hi = np.append(lo[1:], 65536.0)  # above 65504 the next step is the overflow to Inf
    vals = np.concatenate([lo, (lo + hi) / 2]).astype(np.float32)  # midpoints are exact in f32
    bits = vals.view(np.uint32)
    nan = [0x7F800000 | (1 << k) for k in range(23)] + [0x7FC00000 | (1 << k) for k in range(23)]
    named = np.array([0.0, np.inf, 65504, 65519, 65520, 65535, 65536, 2.0**-14, 2.0**-24, 2.0**-25,
                      1.5 * 2.0**-25, 2.0**-26, 2.0**-126, 2.0**-149, 1.0, 0.1, 3.4028234663852886e38],
                     dtype=np.float32).view(np.uint32)
    base = np.concatenate([bits, np.array(nan + [0x7FFFFFFF], dtype=np.uint32), named])
    with np.errstate(over="ignore"):
        nb = np.concatenate([base, base + np.uint32(1), base - np.uint32(1)])  # wraps only at 0: fine
    return np.concatenate([nb, nb | np.uint32(0x80000000)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--random", type=int, default=3000000)
    ap.add_argument("--seed", type=int, default=20240611)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    uniform = rng.integers(0, 2**32, size=a.random, dtype=np.uint64).astype(np.uint32)
    # half of them again with exponents where f16 is subnormal, normal or just overflows
    exp = rng.integers(96, 146, size=a.random // 2, dtype=np.uint32)
    mant = rng.integers(0, 2**32, size=a.random // 2, dtype=np.uint64).astype(np.uint32) & np.uint32(0x807FFFFF)
    focused = mant | (exp << np.uint32(23))
    f32 = np.concatenate([edge_cases(), uniform, focused]).astype("<u4")
    with np.errstate(over="ignore", invalid="ignore"):
        f16 = f32.view(np.float32).astype(np.float16).view(np.uint16).astype("<u4")
    rec = np.empty((f32.size, 2), dtype="<u4")
    rec[:, 0] = f32
    rec[:, 1] = f16
    with open(a.out, "wb") as fp:
        fp.write(b"MIXRTF16")
        fp.write(np.array([f32.size], dtype="<u8").tobytes())
        fp.write(rec.tobytes())
    print(f"{a.out}: {f32.size} f32 -> f16 pairs (numpy {np.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
