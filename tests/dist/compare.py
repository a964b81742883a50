#!/usr/bin/env python3
"""Compares two data-parallel (or one-process) runs for tests/tools/mpi_cli.sh. NumPy only.

  compare.py weights A.safetensors B.safetensors TOL   every tensor: ||a-b|| <= TOL * max(||b||, 1e-6) (L2 norms;
                                                     the largest element difference relative to max|b| is
                                                     printed too: Adam turns rounding noise in gradients that
                                                     are ~0, e.g. of attention keys, into whole steps)
  compare.py losses A/metrics.jsonl B/metrics.jsonl TOL [FIRST_STEP]
                                                     the per-step "loss" rows (from FIRST_STEP on) agree
                                                     within TOL relative, and both runs logged the same steps
Prints the largest difference found; exits 1 (naming the tensor or step) when a check fails.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).astype(np.float64)
    return out


def weights(pa, pb, tol):
    a, b = read_safetensors(pa), read_safetensors(pb)
    if sorted(a) != sorted(b):
        sys.exit(f"compare: {pa} and {pb} hold different tensors: {sorted(set(a) ^ set(b))}")
    worst, worst_name, worst_elem = 0.0, "", 0.0
    for name in a:
        if a[name].shape != b[name].shape:
            sys.exit(f"compare: tensor {name}: shapes {a[name].shape} and {b[name].shape}")
        if a[name].size == 0:
            continue
        d = a[name] - b[name]
        rel = float(np.linalg.norm(d)) / max(float(np.linalg.norm(b[name])), 1e-6)
        worst_elem = max(worst_elem, float(np.max(np.abs(d))) / max(float(np.max(np.abs(b[name]))), 1e-6))
        if rel > worst:
            worst, worst_name = rel, name
    print(f"weights: largest relative difference {worst:.3e} ({worst_name or 'none'}; largest element difference "
          f"{worst_elem:.3e} of its tensor's max), {len(a)} tensors")
    if worst > tol:
        sys.exit(f"compare: tensor {worst_name} differs by {worst:.3e} relative (tolerance {tol})")


def losses(pa, pb, tol, first=0):
    def rows(p):
        out = {}
        for line in open(p):
            j = json.loads(line)
            if "loss" in j and j["step"] >= first:
                out[j["step"]] = j["loss"]
        return out

    a, b = rows(pa), rows(pb)
    if sorted(a) != sorted(b):
        sys.exit(f"compare: {pa} and {pb} logged different steps: {sorted(a)} vs {sorted(b)}")
    if not a:
        sys.exit(f"compare: {pa} logged no loss from step {first} on")
    worst, worst_step = 0.0, None
    for s in a:
        rel = abs(a[s] - b[s]) / max(abs(b[s]), 1e-12)
        if rel > worst:
            worst, worst_step = rel, s
    print(f"losses: {len(a)} steps, largest relative difference {worst:.3e} (step {worst_step})")
    if worst > tol:
        sys.exit(f"compare: step {worst_step}: loss {a[worst_step]} vs {b[worst_step]} ({worst:.3e} relative, "
                 f"tolerance {tol})")


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] not in ("weights", "losses"):
        sys.exit(__doc__)
    if sys.argv[1] == "weights":
        weights(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        losses(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 0)
