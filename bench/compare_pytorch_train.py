#!/usr/bin/python3
"""One training step of the kanformer encoder-decoder: knot vs the same model in PyTorch, side by side.

The PyTorch model is written here from models/encoder_decoder.cpp and nn/{attention,feedforward,
transformer,kan_linear}.* (not copied from kanformer or efficient-kan), built from the same config JSON:
  encoder   h = Dropout(PE(embed_src(src) * sqrt(d))) -> N x [self-attn (source padding mask), FFN]
  decoder   h = Dropout(PE(embed_tgt(tgt) * sqrt(d))) -> M x [causal self-attn (+ target padding),
            cross-attn over the memory (source padding), FFN] -> lm_head (d -> vocab_tgt)
  sub-layer post-LN x = LN(x + Dropout(f(x))) or pre-LN x = x + Dropout(f(LN(x))) (+ final LNs);
  attention q/k/v without bias, out_proj bias = use_final_linear_mha_bias, scores * 1/sqrt(query_key_dim)
  (attention_scale "query_key_dim", kanformer) or 1/sqrt(head dim), masked softmax, attention dropout;
  FFN out(Dropout(act(in(x)))) (or the gated forms), biases use_ffn_bias_1/2; untied lm_head without
  bias; sinusoidal PE (sin on even, cos on odd features), not a parameter.
  Every projection comes from the config's "projection": "mlp" -> nn.Linear, "kan_bspline" -> KANLinear
  below: efficient-kan's function, written from the formulas (no bias, as in knot):
    grid  (in, G+2k+1): t_j = lo + j*h, h = (hi-lo)/G, j = -k ... G+k
    B(x)  Cox-de Boor, level by level on dense (N, in, G+2k) ... (N, in, G+k) tensors
    y     = silu(x) @ base_weight.T + B(x).view(N, -1) @ (spline_weight * spline_scaler[..., None]).view(out, -1).T
  (Initial values differ from knot's -- spline_weight is small uniform noise, not a least-squares fit --
  which changes no timing: every op here is dense.)
The parameter count is checked against `knot params CONFIG` (21,858,816 mlp, 21,446,400 kan).

One step, both sides: zero_grad (gradients freed: set_to_none), forward with teacher forcing on random
tokens in [4, V) -- src (32, 32), tgt (32, 33): input tgt[:, :-1], labels tgt[:, 1:] --, cross-entropy with
label smoothing 0.1 ignoring the pad id (the logits are not held outside the loss's graph), backward, AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight
decay 1e-4 on parameters of dim >= 2, 0 on biases and norms; knot: optim::decay_groups). Dropout on, as
in training. knot's side is bench/bench_models.cpp's BM_TrainStep_Kanformer (same step, same sizes).
Tokens per step = 32 * (32 + 32) = 2048 (source + target), as knot's tokens/s counter.

Variants (--configs mlp_bf16,kan_lowmem,...; see VARIANTS): each side runs its own way of the same
technique. bf16 = knot's bf16 GEMMs (f32 activations, f32 master weights) vs PyTorch's CPU autocast
(bf16 GEMMs and bf16 activations between them); lowmem = knot's AdamW-inside-backward plus per-block
activation checkpointing vs PyTorch with the same checkpointing (torch.utils.checkpoint per block).

Time: every process runs 1 untimed warm-up step, then STEPS timed steps (knot: Iterations(4) in
bench_models.cpp; torch: --steps, default 4); per process the median step; over --rounds fresh processes
per side the median of those. The sides are interleaved (knot, torch, knot, torch, ...) so both see
the same machine load; the 1-minute load average is recorded before every process.
Threads: 2 (torch.set_num_threads, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS; knot: KNOT_NUM_THREADS).

Memory: peak resident-set growth over the process' steps, the same way on both sides: after the model
and the batch exist and before the optimizer is built, the kernel's RSS high-water mark is reset
(`echo 5 > /proc/self/clear_refs`, which ru_maxrss also reads) and VmRSS read; after the steps, peak =
VmHWM - that VmRSS. So it counts gradients, AdamW's two moment buffers (2 x 4 B x params on both
sides), activations saved for backward and temporaries -- not the parameters, the interpreter or the
libraries. (Plain ru_maxrss growth without the reset can read 0: the model's construction, e.g.
KANLinear's least-squares init, may leave a higher mark than the step.) Memory comes from one extra
process per side run with MALLOC_MMAP_THRESHOLD_=65536, so big freed buffers go back to the system
instead of staying resident in glibc's heap and the RSS peak follows the live buffers; the timed
rounds run without it, since that setting makes every big buffer a fresh mmap (page faults
and zeroing on each use: it slowed both sides' steps up to 2x, knot's more). knot also reports its
allocator's high-water mark (tensors and kernel scratch).
malloc in the timed rounds: knot sets its own (core/allocator.cpp: heap for blocks up to 1 GiB, never
trimmed, so a step reuses the previous step's pages instead of page-faulting them in again; it leaves
malloc alone when the MALLOC_* variables above are set, so the memory run measures the same thing on
both sides). PyTorch runs with glibc's defaults, or with the same settings under --torch-knot-malloc.
The per-round lines also print each timed process' RSS peak under its own settings.

FLOP per step (printed with the achieved GFLOP/s; identical for both sides, counted from the model):
  GEMMs only, training = 3 x forward (forward, grad-input, grad-weight GEMMs), N = 32 * 32 = 1024 rows
  through every projection (encoder on source tokens, decoder, cross-attention k/v on memory and lm_head
  on 1024 rows each):
  Linear(in, out)       2 * N * in * out
  KANLinear (G+k < 16)  2 * N * in * out * (G+k+1)   -- the GEMM of [silu(x) | B(x)], both sides
  attention             4 * B * T * S * query_key_dim (Q K^T and P V), per attention module
  Embeddings, LayerNorm, softmax, the B-spline recursion, the loss and AdamW are not counted.
So FLOP ~= 6 * (GEMM weight count, KAN layers at in*out*(G+k+1)) * 1024 + attention.

Usage (Debian's torch is in /usr/bin/python3):
  /usr/bin/python3 bench/compare_pytorch_train.py [--configs mlp,kan] [--rounds 3] [--steps 4]
      [--knot-bench build-bench/knot_bench] [--knot build-bench/knot] [--json out.json] [--torch-profile]
      [--omp-wait-policy passive] [--torch-knot-malloc]
--omp-wait-policy sets OMP_WAIT_POLICY in both processes: on a loaded machine libgomp's spinning idle
threads burn the few time slices a process gets (see docs/benchmarks.md).
"""
import argparse
import importlib.util
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"mlp": "configs/kanformer-mlp.json", "kan": "configs/kanformer-kan.json"}
# knot_bench's BM_TrainStep_Kanformer/<config>[_<variant>] and the matching PyTorch step:
#   ""      f32, AdamW after backward on both sides
#   bf16    knot: bf16 GEMMs (train.matmul_precision); torch: torch.autocast("cpu", bfloat16)
#   lowmem  knot: AdamW inside backward + activation checkpointing per block; torch: the same
#           checkpointing (torch.utils.checkpoint per block; 1.13 has no optimizer-in-backward hook)
VARIANTS = ("", "bf16", "lowmem")
EXPECTED_PARAMS = {"mlp": 21_858_816, "kan": 21_446_400}
BATCH, LENGTH = 32, 32
THREADS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "KNOT_NUM_THREADS")
# A fixed glibc mmap threshold in both processes: allocations above 64 KiB are mmapped and go back to
# the system when freed, so the RSS peak follows the live big buffers (see compare_pytorch.py).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
# knot's own malloc settings (core/allocator.cpp), for --torch-knot-malloc: PyTorch timed with them too.
KNOT_MALLOC_TUNABLES = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"}


# ---- resident-set window (same method as bench_models.cpp) ------------------------------------------

def proc_status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def rss_window_start():
    """Resets the RSS high-water mark; returns (VmRSS now, whether the reset worked)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    return proc_status_bytes("VmRSS"), reset


# ---- the model in PyTorch ----------------------------------------------------------------------------

def build_torch_model(cfg):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class KANLinear(nn.Module):
        """efficient-kan's B-spline layer (see the module docstring), no bias."""

        def __init__(self, fin, fout, grid_size=5, spline_order=3, grid_range=(-1.0, 1.0), scale_noise=0.1,
                     scale_base=1.0, scale_spline=1.0):
            super().__init__()
            G, k = grid_size, spline_order
            self.fin, self.fout, self.G, self.k = fin, fout, G, k
            lo, hi = grid_range
            h = (hi - lo) / G
            grid = (torch.arange(-k, G + k + 1, dtype=torch.float64) * h + lo).expand(fin, -1).contiguous()
            self.register_buffer("grid", grid.float())
            self.base_weight = nn.Parameter(torch.empty(fout, fin))
            self.spline_weight = nn.Parameter((torch.rand(fout, fin, G + k) - 0.5) * (scale_noise / G))
            self.spline_scaler = nn.Parameter(torch.empty(fout, fin))
            nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5) * scale_base)
            nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5) * scale_spline)

        def b_splines(self, x):  # (N, in) -> (N, in, G+k)
            g, x = self.grid, x.unsqueeze(-1)
            b = ((x >= g[:, :-1]) & (x < g[:, 1:])).to(x.dtype)
            for p in range(1, self.k + 1):
                left = (x - g[:, : -(p + 1)]) / (g[:, p:-1] - g[:, : -(p + 1)])
                right = (g[:, p + 1:] - x) / (g[:, p + 1:] - g[:, 1:-p])
                b = left * b[:, :, :-1] + right * b[:, :, 1:]
            return b

        def forward(self, x):
            lead = x.shape[:-1]
            x = x.reshape(-1, self.fin)
            base = F.linear(F.silu(x), self.base_weight)
            scaled = (self.spline_weight * self.spline_scaler.unsqueeze(-1)).view(self.fout, -1)
            spline = F.linear(self.b_splines(x).view(x.shape[0], -1), scaled)
            return (base + spline).view(*lead, self.fout)

    proj = cfg.get("projection", {"kind": "mlp"})
    kind, popts = proj.get("kind", "mlp"), dict(proj.get("options", {}))

    def make_proj(fin, fout, bias):
        if kind in ("mlp", "linear"):
            return nn.Linear(fin, fout, bias=bias)
        if kind == "kan_bspline":
            known = {"grid_size", "spline_order", "grid_range", "scale_noise", "scale_base", "scale_spline"}
            bad = set(popts) - known
            if bad:
                raise SystemExit(f"compare_pytorch_train: projection option(s) {sorted(bad)} not modelled here")
            return KANLinear(fin, fout, **popts)
        raise SystemExit(f"compare_pytorch_train: projection kind '{kind}' not modelled here (mlp, kan_bspline)")

    d, H = cfg["embedding_dim"], cfg["num_heads"]
    qk, vd = cfg.get("query_key_dim") or d, cfg.get("value_dim") or d
    p_drop, p_attn = cfg.get("dropout_rate", 0.1), cfg.get("attention_dropout_rate", 0.0)
    eps, pre_ln = cfg.get("layer_norm_eps", 1e-5), cfg.get("pre_layer_norm", False)
    scale = 1.0 / math.sqrt(qk if cfg.get("attention_scale", "query_key_dim") == "query_key_dim" else qk // H)
    act_name = cfg.get("ffn_activation", "relu")
    gated = {"glu": torch.sigmoid, "reglu": F.relu, "geglu": F.gelu, "swiglu": F.silu}
    plain = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "swish": F.silu, "tanh": torch.tanh,
             "sigmoid": torch.sigmoid}
    act = gated.get(act_name) or plain[act_name]

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query_key_dim = qk
            self.q_proj, self.k_proj = make_proj(d, qk, False), make_proj(d, qk, False)
            self.v_proj = make_proj(d, vd, False)
            self.out_proj = make_proj(vd, d, cfg.get("use_final_linear_mha_bias", False))

        def forward(self, query, kv, mask):  # mask: bool, broadcast to (B, H, T, S), True = masked
            B, T, S = query.shape[0], query.shape[1], kv.shape[1]
            q = self.q_proj(query).view(B, T, H, -1).transpose(1, 2)
            k = self.k_proj(kv).view(B, S, H, -1).transpose(1, 2)
            v = self.v_proj(kv).view(B, S, H, -1).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(-2, -1)) * scale
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            p = torch.softmax(scores, dim=-1)
            if p_attn > 0:
                p = F.dropout(p, p_attn, self.training)
            return self.out_proj(torch.matmul(p, v).transpose(1, 2).reshape(B, T, vd))

    class FeedForward(nn.Module):
        def __init__(self):
            super().__init__()
            hid = cfg["ffn_hidden_dim"]
            self.in_proj = make_proj(d, hid, cfg.get("use_ffn_bias_1", True))
            self.gate_proj = make_proj(d, hid, cfg.get("use_ffn_bias_1", True)) if act_name in gated else None
            self.out_proj = make_proj(hid, d, cfg.get("use_ffn_bias_2", True))

        def forward(self, x):
            h = act(self.gate_proj(x)) * self.in_proj(x) if self.gate_proj is not None else act(self.in_proj(x))
            return self.out_proj(F.dropout(h, p_drop, self.training))

    def residual(x, ln, f, training):
        if pre_ln:
            return x + F.dropout(f(ln(x)), p_drop, training)
        return ln(x + F.dropout(f(x), p_drop, training))

    class EncoderBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn, self.self_attn_layer_norm = Attention(), nn.LayerNorm(d, eps=eps)
            self.ffn, self.final_layer_norm = FeedForward(), nn.LayerNorm(d, eps=eps)

        def forward(self, x, mask):
            x = residual(x, self.self_attn_layer_norm, lambda y: self.self_attn(y, y, mask), self.training)
            return residual(x, self.final_layer_norm, self.ffn, self.training)

    class DecoderBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn, self.self_attn_layer_norm = Attention(), nn.LayerNorm(d, eps=eps)
            self.encoder_attn, self.encoder_attn_layer_norm = Attention(), nn.LayerNorm(d, eps=eps)
            self.ffn, self.final_layer_norm = FeedForward(), nn.LayerNorm(d, eps=eps)

        def forward(self, x, memory, self_mask, memory_mask):
            x = residual(x, self.self_attn_layer_norm, lambda y: self.self_attn(y, y, self_mask), self.training)
            x = residual(x, self.encoder_attn_layer_norm, lambda y: self.encoder_attn(y, memory, memory_mask),
                         self.training)
            return residual(x, self.final_layer_norm, self.ffn, self.training)

    def sinusoidal(length, dim):
        pe = torch.zeros(length, dim, dtype=torch.float64)
        pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
        inv_freq = 1.0 / torch.pow(10000.0, torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        pe[:, 0::2] = torch.sin(pos * inv_freq)
        pe[:, 1::2] = torch.cos(pos * inv_freq)[:, : dim // 2]
        return pe.float()

    class Stack(nn.Module):
        def __init__(self, vocab, n, block):
            super().__init__()
            self.embed_tokens = nn.Embedding(vocab, d)
            nn.init.normal_(self.embed_tokens.weight, 0.0, 1.0)
            self.layers = nn.ModuleList([block() for _ in range(n)])
            self.layer_norm = nn.LayerNorm(d, eps=eps) if pre_ln else None
            self.register_buffer("pe", sinusoidal(min(cfg.get("max_length", 2048), 4096), d), persistent=False)

        def embed(self, ids):
            h = self.embed_tokens(ids) * math.sqrt(d) + self.pe[: ids.shape[1]]
            return F.dropout(h, p_drop, self.training)

    class EncoderDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Stack(cfg["vocab_src_size"], cfg.get("num_encoder_layers", 3), EncoderBlock)
            self.decoder = Stack(cfg["vocab_tgt_size"], cfg.get("num_decoder_layers", 3), DecoderBlock)
            self.tied = cfg.get("tie_output_embedding", False)
            if self.tied:
                self.final_logits_bias = (nn.Parameter(torch.zeros(cfg["vocab_tgt_size"]))
                                          if cfg.get("use_final_linear_bias", False) else None)
            else:
                self.lm_head = make_proj(d, cfg["vocab_tgt_size"], cfg.get("use_final_linear_bias", False))
            self.pad_src, self.pad_tgt = cfg.get("pad_src_idx", -1), cfg.get("pad_tgt_idx", -1)
            self.checkpoint_blocks = False

        def forward(self, src, tgt):
            T = tgt.shape[1]
            src_mask = (src == self.pad_src)[:, None, None, :] if self.pad_src >= 0 else None
            self_mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            if self.pad_tgt >= 0:
                self_mask = self_mask | (tgt == self.pad_tgt)[:, None, None, :]
            # checkpoint_blocks: torch.utils.checkpoint around every block (the *_lowmem variant; knot's
            # model.activation_checkpointing), dropout replayed from the saved RNG state.
            run = ((lambda f, *a: torch.utils.checkpoint.checkpoint(f, *a, use_reentrant=False))
                   if self.checkpoint_blocks and self.training else (lambda f, *a: f(*a)))
            h = self.encoder.embed(src)
            for layer in self.encoder.layers:
                h = run(layer, h, src_mask)
            memory = self.encoder.layer_norm(h) if self.encoder.layer_norm is not None else h
            h = self.decoder.embed(tgt)
            for layer in self.decoder.layers:
                h = run(layer, h, memory, self_mask, src_mask)
            if self.decoder.layer_norm is not None:
                h = self.decoder.layer_norm(h)
            if self.tied:
                return F.linear(h, self.decoder.embed_tokens.weight, self.final_logits_bias)
            return self.lm_head(h)

    return EncoderDecoder(), KANLinear


def gemm_flops(model, kan_cls, B, T, S):
    """Training-step GEMM FLOP (3 x forward), see the module docstring. S = T here."""
    import torch.nn as nn
    N = B * T
    fwd = 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            fwd += 2 * N * m.in_features * m.out_features
        elif isinstance(m, kan_cls):
            fwd += 2 * N * m.fin * m.fout * (m.G + m.k + 1)
        elif hasattr(m, "query_key_dim"):  # an Attention module: Q K^T and P V
            fwd += 4 * B * T * S * m.query_key_dim
    return 3 * fwd


def split_variant(name):
    """'mlp' -> ('mlp', ''), 'kan_bf16' -> ('kan', 'bf16'); checks both parts."""
    base, _, variant = name.partition("_")
    if base not in CONFIGS or variant not in VARIANTS:
        raise SystemExit(f"compare_pytorch_train: unknown config '{name}' (configs: {', '.join(CONFIGS)}; "
                         f"variants: {', '.join(v for v in VARIANTS if v)}, as in mlp_bf16)")
    return base, variant


def torch_worker(name, steps, threads, profile):
    import contextlib
    import torch
    import torch.nn.functional as F
    import torch.utils.checkpoint  # noqa: F401 (the lowmem variant)

    base, variant = split_variant(name)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(ROOT, CONFIGS[base])))
    model, kan_cls = build_torch_model(cfg)
    model.train()
    model.checkpoint_blocks = variant == "lowmem"
    # bf16: CPU autocast, PyTorch's own mixed precision (bf16 GEMMs through oneDNN, bf16 activations
    # between them); the loss in f32.
    autocast = ((lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant == "bf16"
                else contextlib.nullcontext)
    params = sum(p.numel() for p in model.parameters())
    V = cfg["vocab_tgt_size"]
    src = torch.randint(4, cfg["vocab_src_size"], (BATCH, LENGTH))
    tgt = torch.randint(4, V, (BATCH, LENGTH + 1))
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    ignore = cfg.get("pad_tgt_idx", -1)

    rss0, reset = rss_window_start()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.999), eps=1e-8)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.float().reshape(-1, V), tgt_out.reshape(-1), ignore_index=ignore,
                               label_smoothing=0.1)
        del logits  # only the loss's graph keeps what backward needs (knot's step does the same)
        loss.backward()
        opt.step()

    step()  # warm-up: AdamW state, allocator, thread pools
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    rss_peak = proc_status_bytes("VmHWM") - rss0
    out = {"params": params, "times": times, "rss_peak": rss_peak, "hwm_reset": reset,
           "flop": gemm_flops(model, kan_cls, BATCH, LENGTH, LENGTH), "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    if profile:
        with torch.autograd.profiler.profile() as prof:
            step()
        sys.stderr.write(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25) + "\n")
    return out


# ---- the two sides -----------------------------------------------------------------------------------

def child_env(threads, wait_policy=None, memory_run=False, knot_malloc=False):
    env = dict(os.environ, **(MALLOC_ENV if memory_run else KNOT_MALLOC_TUNABLES if knot_malloc else {}))
    env.update({k: str(threads) for k in THREADS_ENV})
    if wait_policy:  # libgomp's idle threads: spin (active, the default for a while) or sleep (passive)
        env["OMP_WAIT_POLICY"] = wait_policy
    return env


def run_timed(cmd, env):
    """Runs cmd; returns (stdout, wall s, CPU s of the child, 1-min load average before)."""
    load = os.getloadavg()[0]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    if out.stderr.strip():
        sys.stderr.write(out.stderr)
    return out.stdout, wall, cpu, load


def run_torch(name, steps, threads, profile, wait_policy, memory_run=False, knot_malloc=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--steps", str(steps),
           "--threads", str(threads)] + (["--torch-profile"] if profile else [])
    stdout, wall, cpu, load = run_timed(cmd, child_env(threads, wait_policy, memory_run, knot_malloc))
    r = json.loads(stdout.strip().splitlines()[-1])
    r.update(step_s=statistics.median(r["times"]), wall=wall, cpu=cpu, load=load)
    return r


def run_knot(binary, name, threads, wait_policy, memory_run=False):
    cmd = [binary, f"--benchmark_filter=^BM_TrainStep_Kanformer/{name}/", "--benchmark_format=json"]
    stdout, wall, cpu, load = run_timed(cmd, child_env(threads, wait_policy, memory_run))
    rows = [b for b in json.loads(stdout)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    if not rows:
        raise SystemExit(f"compare_pytorch_train: knot_bench printed no BM_TrainStep_Kanformer/{name}")
    b = rows[0]
    return {"step_s": b["step_median_s"], "rss_peak": b["rss_peak_MiB"] * (1 << 20),
            "alloc_peak": (b["peak_MiB"] + b["opt_state_MiB"]) * (1 << 20), "hwm_reset": b["hwm_reset"] > 0,
            "flop": b["FLOP"], "steps": b["iterations"], "wall": wall, "cpu": cpu, "load": load}


def knot_params(binary, config):
    out = subprocess.run([binary, "params", config], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    m = re.search(r"^total\s+([\d,]+)\s*$", out, re.M)
    if not m:
        raise SystemExit(f"compare_pytorch_train: no 'total' line in `knot params {config}`:\n{out}")
    return int(m.group(1).replace(",", ""))


def find_binary(given, name):
    if given:
        return given
    for d in ("build-bench", "build"):
        p = os.path.join(ROOT, d, name)
        if os.path.exists(p):
            return p
    raise SystemExit(f"compare_pytorch_train: no {name} in build-bench/ or build/ (pass --{name.replace('_', '-')})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--configs", default="mlp,kan",
                    help="comma-separated: mlp, kan (configs/kanformer-<name>.json), each optionally with a "
                         "variant: mlp_bf16, kan_lowmem, ... (see VARIANTS)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per side and config, interleaved")
    ap.add_argument("--steps", type=int, default=4, help="timed torch steps per process (knot: 4, fixed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--knot-bench", default=None, help="knot_bench binary (default: build-bench/, then build/)")
    ap.add_argument("--knot", default=None, help="knot binary, for `knot params` (default: as knot_bench)")
    ap.add_argument("--json", default=None, help="write every measurement as JSON here")
    ap.add_argument("--torch-profile", action="store_true", help="print torch's op profile of one extra step")
    ap.add_argument("--torch-knot-malloc", action="store_true",
                    help="time PyTorch with knot's malloc settings too (GLIBC_TUNABLES: heap up to 1 GiB, "
                         "no trimming; knot sets them itself in core/allocator.cpp)")
    ap.add_argument("--omp-wait-policy", choices=["active", "passive"], default=None,
                    help="OMP_WAIT_POLICY for both sides (default: unset, libgomp spins before sleeping)")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(torch_worker(a.worker, a.steps, a.threads, a.torch_profile)))
        return

    if importlib.util.find_spec("torch") is None:
        raise SystemExit(f"compare_pytorch_train: {sys.executable} cannot import torch; install Debian's PyTorch "
                         "with OpenBLAS: sudo apt-get install python3-torch libopenblas0-pthread")
    bench, knot = find_binary(a.knot_bench, "knot_bench"), find_binary(a.knot, "knot")
    names = a.configs.split(",")
    tokens = BATCH * 2 * LENGTH
    mib = 1.0 / (1 << 20)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"batch {BATCH} x ({LENGTH} source + {LENGTH} target) = {tokens} tokens/step, {a.threads} threads, "
          f"{a.rounds} rounds of 1 warm-up + 4 (knot) / {a.steps} (torch) timed steps, sides interleaved, "
          f"OMP_WAIT_POLICY={a.omp_wait_policy or '(unset)'}, torch malloc: "
          f"{'knot settings' if a.torch_knot_malloc else 'glibc defaults'}")
    results = {}
    for name in names:
        base, _ = split_variant(name)
        kp = knot_params(knot, CONFIGS[base])
        ks, ts = [], []
        for r in range(a.rounds):
            ks.append(run_knot(bench, name, a.threads, a.omp_wait_policy))
            ts.append(run_torch(name, a.steps, a.threads, a.torch_profile and r == 0, a.omp_wait_policy,
                                knot_malloc=a.torch_knot_malloc))
            k, t = ks[-1], ts[-1]
            print(f"  {name} round {r + 1} (speed {t['step_s'] / k['step_s']:.2f}x): knot {k['step_s']:.3f} s/step (load {k['load']:.2f}, "
                  f"cpu/wall {k['cpu'] / k['wall']:.2f}, own-malloc-settings rss peak {k['rss_peak'] * mib:.1f} MiB) | torch "
                  f"{t['step_s']:.3f} s/step (load {t['load']:.2f}, cpu/wall {t['cpu'] / t['wall']:.2f}, "
                  f"rss peak {t['rss_peak'] * mib:.1f} MiB)", flush=True)
        km = run_knot(bench, name, a.threads, a.omp_wait_policy, memory_run=True)
        tm = run_torch(name, a.steps, a.threads, False, a.omp_wait_policy, memory_run=True)
        print(f"  {name} memory run (MALLOC_MMAP_THRESHOLD_=65536): knot rss peak {km['rss_peak'] * mib:.1f} MiB "
              f"({km['step_s']:.3f} s/step) | torch rss peak {tm['rss_peak'] * mib:.1f} MiB ({tm['step_s']:.3f} s/step)",
              flush=True)
        tp = ts[0]["params"]
        ok = "ok" if kp == tp == EXPECTED_PARAMS.get(base, kp) else "MISMATCH"
        print(f"  {name} parameters: knot {kp:,}, torch {tp:,} ({ok}); GEMM FLOP/step: knot counter "
              f"{ks[0]['flop']:.4g}, torch model {ts[0]['flop']:.4g}; torch {ts[0]['torch']} with "
              f"{ts[0]['threads']} threads; RSS high-water reset: knot {ks[0]['hwm_reset']}, torch "
              f"{ts[0]['hwm_reset']}")
        k_step = statistics.median(x["step_s"] for x in ks)
        t_step = statistics.median(x["step_s"] for x in ts)
        k_mem, t_mem = km["rss_peak"], tm["rss_peak"]
        flop = ts[0]["flop"]
        results[name] = {
            "params_knot": kp, "params_torch": tp, "flop": flop, "knot_step_s": k_step, "torch_step_s": t_step,
            "knot_tokens_s": tokens / k_step, "torch_tokens_s": tokens / t_step, "speed_ratio": t_step / k_step,
            "knot_rss_peak": k_mem, "torch_rss_peak": t_mem, "mem_ratio": k_mem / t_mem,
            "knot_alloc_peak": km["alloc_peak"], "knot_memory_run": km, "torch_memory_run": tm,
            "knot_flop": ks[0]["flop"], "knot_gflops": ks[0]["flop"] / k_step * 1e-9,
            "torch_gflops": flop / t_step * 1e-9,
            "load": statistics.mean([x["load"] for x in ks + ts]), "knot_runs": ks, "torch_runs": ts}

    print()
    hdr = (f"{'config':<11} | {'knot tok/s':>10} {'torch tok/s':>11} {'speed':>6} | {'knot MiB':>8} {'torch MiB':>9} "
           f"{'mem':>5} | {'GFLOP/step':>10} {'knot GF/s':>9} {'torch GF/s':>10} | {'knot alloc MiB':>14} {'load':>5}")
    print(hdr)
    print("-" * len(hdr))
    for name, r in results.items():
        print(f"{name:<11} | {r['knot_tokens_s']:>10.0f} {r['torch_tokens_s']:>11.0f} {r['speed_ratio']:>5.2f}x | "
              f"{r['knot_rss_peak'] * mib:>8.1f} {r['torch_rss_peak'] * mib:>9.1f} {r['mem_ratio']:>5.2f} | "
              f"{r['flop'] * 1e-9:>10.1f} {r['knot_gflops']:>9.1f} {r['torch_gflops']:>10.1f} | "
              f"{r['knot_alloc_peak'] * mib:>14.1f} {r['load']:>5.2f}")
    print("speed = knot tokens/s / torch tokens/s; mem = knot peak / torch peak (RSS growth over the steps); "
          "load = mean 1-min load average before the runs;\nGFLOP/step = GEMM FLOP of the formulation PyTorch "
          "runs; knot GF/s uses knot's own count, which is lower where its local B-spline path runs:")
    for name, r in results.items():
        print(f"  {name}: knot counts {r['knot_flop'] * 1e-9:.1f} GFLOP/step")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
