#!/usr/bin/python3
"""knot's fused B-spline KAN layer vs the same layer written in PyTorch tensor ops, forward+backward.

The PyTorch layer is efficient-kan's math, written here from the formulas (not copied):
  grid    (in, G+2k+1): t_j = lo + j*h, h = (hi-lo)/G, j = -k ... G+k
  B(x)    Cox-de Boor on that grid, level by level on the dense (N, in, G+2k) ... (N, in, G+k) tensors
  y       = silu(x) @ base_weight.T + B(x).view(N, -1) @ (spline_weight * spline_scaler[..., None]).view(out, -1).T
Loss sum(y), backward to x and every weight (knot's benchmark does the same: x requires grad).

Time: median of --reps forward+backward steps after one warm-up, torch.set_num_threads(THREADS).
Memory: each config runs in a fresh subprocess; peak = growth of ru_maxrss (resident high-water
mark) over the first forward+backward step, measured after the layer and x exist, with
MALLOC_MMAP_THRESHOLD_=65536 in both processes (see MALLOC_ENV). tracemalloc does
not see torch's allocator, so both sides are measured the same way: knot_bench is also run once per
config in a fresh process and reports the same ru_maxrss growth (counter rss_delta) next to its
own allocator's high-water mark (peak_bytes, tensors plus kernel scratch).

Usage (Debian's torch lives in /usr/bin/python3, not a pyenv python):
  /usr/bin/python3 bench/compare_pytorch.py [--knot-bench build-bench/knot_bench] [--threads 2]
      [--configs 4096x256x5,256x256x5] [--reps 5] [--json out.json] [--knot-json results.json]
--knot-json reads knot's numbers from an existing knot_bench JSON file instead of running it.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

DEFAULT_CONFIGS = "4096x256x5,4096x256x10,4096x256x50,256x256x5,16384x64x5,4096x1024x5"
K = 3


def maxrss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def torch_worker(N, w, G, reps, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    lo, hi, k = -1.0, 1.0, K
    h = (hi - lo) / G
    grid = (torch.arange(-k, G + k + 1, dtype=torch.float32) * h + lo).expand(w, -1).contiguous()
    base_weight = (torch.rand(w, w) * 2 - 1).div_(w ** 0.5).requires_grad_()
    spline_weight = (torch.rand(w, w, G + k) - 0.5).mul_(0.1 / G).requires_grad_()
    spline_scaler = (torch.rand(w, w) * 2 - 1).div_(w ** 0.5).requires_grad_()
    x = (torch.rand(N, w) * 2 - 1).requires_grad_()
    params = [base_weight, spline_weight, spline_scaler]

    def b_splines(v):  # (N, in) -> (N, in, G+k)
        v = v.unsqueeze(-1)
        b = ((v >= grid[:, :-1]) & (v < grid[:, 1:])).to(v.dtype)
        for p in range(1, k + 1):
            left = (v - grid[:, : -(p + 1)]) / (grid[:, p:-1] - grid[:, : -(p + 1)])
            right = (grid[:, p + 1:] - v) / (grid[:, p + 1:] - grid[:, 1:-p])
            b = left * b[:, :, :-1] + right * b[:, :, 1:]
        return b

    def step():
        for t in params + [x]:
            t.grad = None
        base = F.linear(F.silu(x), base_weight)
        scaled = (spline_weight * spline_scaler.unsqueeze(-1)).view(w, -1)
        spline = F.linear(b_splines(x).view(N, -1), scaled)
        (base + spline).sum().backward()

    rss0 = maxrss_bytes()
    step()
    rss_delta = maxrss_bytes() - rss0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"time_s": times[len(times) // 2], "rss_delta": rss_delta}


# A fixed glibc mmap threshold in both processes: allocations above 64 KiB are mmapped and go back
# to the system when freed, so ru_maxrss growth follows the live big buffers of the step instead of
# heap pages left resident by whatever ran before (glibc otherwise raises the threshold after a
# large free, and the layer's initialisation would hide the step's peak).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def run_torch(N, w, G, reps, threads):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", f"{N}x{w}x{G}",
                          "--reps", str(reps), "--threads", str(threads)],
                         check=True, capture_output=True, text=True, env=dict(os.environ, **MALLOC_ENV))
    return json.loads(out.stdout.strip().splitlines()[-1])


def knot_name(N, w, G):
    return f"KAN/bspline/fwdbwd/N:{N}/w:{w}/G:{G}/"


def parse_knot(benchmarks, N, w, G):
    for b in benchmarks:
        if b["name"].startswith(knot_name(N, w, G)) and b.get("run_type", "iteration") == "iteration":
            scale = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}[b.get("time_unit", "ns")]
            return {"time_s": b["real_time"] * scale, "rss_delta": b.get("rss_delta", float("nan")),
                    "peak_bytes": b.get("peak_bytes", float("nan")), "x_linear": b.get("x_linear")}
    return None


def run_knot(binary, N, w, G, threads):
    env = dict(os.environ, KNOT_NUM_THREADS=str(threads), **MALLOC_ENV)
    out = subprocess.run([binary, "--benchmark_filter=^" + knot_name(N, w, G), "--benchmark_format=json",
                          "--benchmark_min_time=1"], check=True, capture_output=True, text=True, env=env)
    return parse_knot(json.loads(out.stdout)["benchmarks"], N, w, G)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="NxWIDTHxG,... (in = out = WIDTH, k = 3)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--knot-bench", default=None, help="knot_bench binary (default: build-bench/, then build/)")
    ap.add_argument("--knot-json", default=None, help="read knot's numbers from this knot_bench JSON instead")
    ap.add_argument("--json", default=None, help="write the table as JSON here")
    a = ap.parse_args()
    if a.worker:
        N, w, G = map(int, a.worker.split("x"))
        print(json.dumps(torch_worker(N, w, G, a.reps, a.threads)))
        return

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = a.knot_bench or next((p for p in (os.path.join(root, "build-bench/knot_bench"),
                                               os.path.join(root, "build/knot_bench")) if os.path.exists(p)), None)
    knot_file = json.load(open(a.knot_json))["benchmarks"] if a.knot_json else None
    rows = []
    hdr = (f"{'N':>6} {'w':>5} {'G':>3} | {'torch ms':>9} {'knot ms':>8} {'speed-up':>8} | "
           f"{'torch MiB':>9} {'knot MiB':>8} {'mem ratio':>9} | {'knot alloc MiB':>14}")
    print(f"forward+backward, k={K}, {a.threads} threads; memory = ru_maxrss growth over the first step")
    print(hdr)
    print("-" * len(hdr))
    for c in a.configs.split(","):
        N, w, G = map(int, c.split("x"))
        t = run_torch(N, w, G, a.reps, a.threads)
        k = parse_knot(knot_file, N, w, G) if knot_file else run_knot(binary, N, w, G, a.threads)
        if k is None:
            print(f"{N:>6} {w:>5} {G:>3} | knot result missing")
            continue
        mib = 1.0 / (1 << 20)
        row = {"N": N, "w": w, "G": G, "torch_s": t["time_s"], "knot_s": k["time_s"],
               "speedup": t["time_s"] / k["time_s"], "torch_rss_delta": t["rss_delta"],
               "knot_rss_delta": k["rss_delta"], "knot_peak_bytes": k["peak_bytes"],
               "mem_ratio": t["rss_delta"] / k["rss_delta"] if k["rss_delta"] else float("inf")}
        rows.append(row)
        print(f"{N:>6} {w:>5} {G:>3} | {t['time_s'] * 1e3:>9.1f} {k['time_s'] * 1e3:>8.1f} {row['speedup']:>7.1f}x | "
              f"{t['rss_delta'] * mib:>9.1f} {k['rss_delta'] * mib:>8.1f} {row['mem_ratio']:>8.1f}x | "
              f"{k['peak_bytes'] * mib:>14.1f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
