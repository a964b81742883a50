#!/usr/bin/env python3
"""Data-parallel scaling on paper (docs/distributed.md, "Scaling on paper"). Standard library only.

Weak scaling: every rank keeps the config's batch (the global batch grows with N; with the config's
batch split N ways instead, N cannot exceed the batch's rows). Per step, per rank:

  gradient bytes    G = 4 P                        (f32 gradients, P trainable parameters)
  all-reduce        t_ar = 2 (N-1)/N G / B + 2 log2(N) a     (ring bandwidth term, tree latency term;
                                                              B the link bandwidth per rank, a = 10 us)
  ZeRO-1            reduce-scatter (t_ar / 2, overlappable) + parameter all-gather (t_ar / 2, after the
                    update: not hidden by backward); optimizer moments 8 P / N bytes instead of 8 P
  efficiency        T / (T + exposed), with exposed = t_ar without overlap, and
                    max(0, t_ar - 2/3 T) with perfect overlap (backward is ~2/3 of a step)

T, the compute time of one step on one rank:
  cpu  the step time measured by bench/dp_scaling.sh on this 2-core machine (1 process x 2 threads),
       i.e. a cluster of such 2-core nodes;
  gpu  an ASSUMPTION until a GPU is measured (issue 15): max(6 P tokens / F, L), with F = 100 TFLOP/s
       effective (an H200's dense bf16 peak is ~990; small layers reach a fraction of it) and a floor
       L = 5 ms of kernel launches for these small models.

Usage: dp_model.py   (edit MODELS below with new measurements)
"""
import math

A = 10e-6  # per-hop latency (s)
LINKS = {"100 Gb/s": 100e9 / 8, "400 Gb/s": 400e9 / 8}
RANKS = [8, 64, 512]
F_GPU, L_GPU = 100e12, 5e-3

# name: (trainable parameters, tokens per step per rank, measured CPU step time in s on this machine)
MODELS = {
    # kanformer seed models: dp_scaling.sh 2026-12-03 19:25 (load 0.03): 1 process x 2 threads; tokens =
    # source + target tokens of a 32-pair batch (mean over the measured steps)
    "kanformer-mlp": (21_858_816, 816, 0.416),
    "kanformer-kan": (21_446_400, 816, 0.534),
    # ELECTRA-Small (MLP), the recipe's batch of 32 x 128 tokens: 4 x the 8 x 128 step of
    # docs/benchmarks.md ("One AdamW training step", 2.87 s)
    "ELECTRA-Small": (14_184_699, 32 * 128, 4 * 2.87),
}


def t_allreduce(n, g, b):
    return 2 * (n - 1) / n * g / b + 2 * math.log2(n) * A


def row(name, p, tokens, t_cpu):
    g = 4 * p
    out = []
    for kind, t in (("cpu", t_cpu), ("gpu", max(6 * p * tokens / F_GPU, L_GPU))):
        if t is None:
            continue
        for link, b in LINKS.items():
            cells = []
            for n in RANKS:
                ar = t_allreduce(n, g, b)
                none = t / (t + ar)
                full = t / (t + max(0.0, ar - 2 / 3 * t))
                z1 = t / (t + max(0.0, ar / 2 - 2 / 3 * t) + ar / 2)
                cells.append(f"{100 * none:.0f} / {100 * full:.0f} / {100 * z1:.0f}")
            out.append(f"| {name} | {kind} ({t * 1e3:.0f} ms) | {link} | " + " | ".join(cells) + " |")
    return out


if __name__ == "__main__":
    print("| model | step compute T | link | " + " | ".join(f"N = {n}" for n in RANKS) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in RANKS) + " |")
    for name, (p, tokens, t_cpu) in MODELS.items():
        if p is None:
            continue
        for line in row(name, p, tokens, t_cpu):
            print(line)
    print()
    print("Cells: efficiency in % without overlap / with perfect overlap / ZeRO-1 with perfect overlap of its")
    print("reduce-scatter. Gradient bytes per rank and step: " +
          ", ".join(f"{n} {4 * p / 1e6:.1f} MB" for n, (p, _, _) in MODELS.items() if p) +
          "; ZeRO-1 optimizer memory per rank at N = 8 / 64 / 512: " +
          ", ".join(f"{n} " + " / ".join(f"{8 * p / k / 1e6:.1f}" for k in RANKS) + " MB"
                    for n, (p, _, _) in MODELS.items() if p) + " (vs " +
          ", ".join(f"{8 * p / 1e6:.0f} MB" for n, (p, _, _) in MODELS.items() if p) + " unsharded).")
