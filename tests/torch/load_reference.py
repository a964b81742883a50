"""Loads a `knot export torch` file into PyTorch modules with the reference project's layout and
compares their outputs with knot's (the reference file of `knot export onnx --reference`, which holds
inputs and knot's outputs). The modules below are written for this test from the reference projects'
documented structure: Hugging Face's ElectraForPreTraining / ElectraForMaskedLM, kanformer's TransformerSeq2Seq (post-LN blocks named mha/mha1/mha2, norm1..3,
pffn, linear tied to tgt_emb when it is a Linear, the scale buffers) with nn.Linear, efficient-kan's
KANLinear (wrapped as `.kan`) or a ChebyKAN layer (wrapped as `.chebykan`), and efficient-kan's KAN.
`load_state_dict(..., strict=True)` must accept the file, and the outputs must agree with knot's to
1e-4 relative (max |torch - knot| / max |knot|).

usage: load_reference.py kanformer|efficient-kan|hf-electra EXPORTED.safetensors REFERENCE.json
Exits 0 after printing a skip line when PyTorch is not installed.
"""
import json
import math
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"load_reference: skipped: PyTorch is not installed ({e}); Debian's python3-torch provides it")
    sys.exit(0)

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from check_names import read_safetensors  # noqa: E402


def fail(msg):
    print(f"load_reference: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


class KANLinear(nn.Module):
    """efficient-kan's layer: silu(x)·base_weightᵀ + B(x)·(spline_weight·spline_scaler)ᵀ."""

    def __init__(self, i, o, grid_size=5, spline_order=3, grid_range=(-1.0, 1.0)):
        super().__init__()
        self.i, self.o, self.k = i, o, spline_order
        h = (grid_range[1] - grid_range[0]) / grid_size
        g = torch.arange(-spline_order, grid_size + spline_order + 1) * h + grid_range[0]
        self.register_buffer("grid", g.expand(i, -1).contiguous())
        self.base_weight = nn.Parameter(torch.zeros(o, i))
        self.spline_weight = nn.Parameter(torch.zeros(o, i, grid_size + spline_order))
        self.spline_scaler = nn.Parameter(torch.ones(o, i))

    def b_splines(self, x):  # (N, i) -> (N, i, G + k), Cox-de Boor
        t = self.grid
        x = x.unsqueeze(-1)
        b = ((x >= t[:, :-1]) & (x < t[:, 1:])).to(x.dtype)
        for p in range(1, self.k + 1):
            left = (x - t[:, : -(p + 1)]) / (t[:, p:-1] - t[:, : -(p + 1)]) * b[:, :, :-1]
            right = (t[:, p + 1 :] - x) / (t[:, p + 1 :] - t[:, 1:(-p)]) * b[:, :, 1:]
            b = left + right
        return b

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, self.i)
        base = F.linear(F.silu(x), self.base_weight)
        w = (self.spline_weight * self.spline_scaler.unsqueeze(-1)).view(self.o, -1)
        spline = F.linear(self.b_splines(x).view(x.size(0), -1), w)
        return (base + spline).reshape(*shape[:-1], self.o)


class ChebyKAN(nn.Module):
    """Σ_i Σ_d cheby_coeffs[i, o, d]·T_d(tanh x_i)."""

    def __init__(self, i, o, degree):
        super().__init__()
        self.i, self.o, self.degree = i, o, degree
        self.cheby_coeffs = nn.Parameter(torch.zeros(i, o, degree + 1))

    def forward(self, x):
        shape = x.shape
        u = torch.tanh(x.reshape(-1, self.i))
        ts = [torch.ones_like(u), u]
        for _ in range(2, self.degree + 1):
            ts.append(2 * u * ts[-1] - ts[-2])
        t = torch.stack(ts[: self.degree + 1], dim=-1)  # (N, i, D+1)
        return torch.einsum("nid,iod->no", t, self.cheby_coeffs).reshape(*shape[:-1], self.o)


class Wrap(nn.Module):  # kanformer's KANEfficient / KANChebyshev hold the layer under one name
    def __init__(self, name, layer):
        super().__init__()
        setattr(self, name, layer)
        self.name = name

    def forward(self, x):
        return getattr(self, self.name)(x)


def make_proj(kind, degree):
    def make(i, o, bias):
        if kind == "mlp":
            return nn.Linear(i, o, bias=bias)
        if kind == "kan_efficient":
            return Wrap("kan", KANLinear(i, o))
        if kind == "kan_chebyshev":
            return Wrap("chebykan", ChebyKAN(i, o, degree))
        fail(f"no module for model_type {kind}")
    return make


class Attention(nn.Module):
    def __init__(self, d, qk, vd, h, bias, proj):
        super().__init__()
        self.h, self.qk, self.vd = h, qk, vd
        self.q_proj, self.k_proj, self.v_proj = proj(d, qk, False), proj(d, qk, False), proj(d, vd, False)
        self.attn = nn.Module()
        self.attn.register_buffer("scale", torch.sqrt(torch.tensor([float(qk)])))
        self.ff_proj = proj(vd, d, bias)

    def forward(self, q, kv, mask):
        B, T, _ = q.shape
        qh = self.q_proj(q).view(B, -1, self.h, self.qk // self.h).transpose(1, 2)
        kh = self.k_proj(kv).view(B, -1, self.h, self.qk // self.h).transpose(1, 2)
        vh = self.v_proj(kv).view(B, -1, self.h, self.vd // self.h).transpose(1, 2)
        s = qh @ kh.transpose(2, 3) / self.attn.scale
        if mask is not None:
            s = s.masked_fill(~mask, -1e9)
        o = torch.softmax(s, dim=3) @ vh
        return self.ff_proj(o.transpose(1, 2).reshape(B, T, self.vd))


class FFN(nn.Module):
    def __init__(self, d, hidden, act, bias, proj):
        super().__init__()
        self.in_proj, self.out_proj = proj(d, hidden, bias), proj(hidden, d, bias)
        self.act = act

    def forward(self, x):
        return self.out_proj(self.act(self.in_proj(x)))


class Seq2Seq(nn.Module):
    """kanformer's TransformerSeq2Seq layout (post-LN, sinusoidal positions, tied Linear head)."""

    def __init__(self, m, untied):
        super().__init__()
        d, qk, vd, h = int(m["embedding_dim"]), int(m["query_key_dim"]), int(m["value_dim"]), int(m["num_heads"])
        kind = m["model_type"]
        proj = make_proj(kind, int(m.get("chebykan_degree", 4)))
        bias = m["use_final_linear_bias"] == "true"
        pffn_bias = m["use_pffn_bias"] == "true"
        act = {"relu": F.relu, "gelu": F.gelu}[m["ffn_activation"]]
        hidden = int(m["ffn_hidden_dim"])
        self.pad_src, self.pad_tgt = int(m["pad_src_idx"]), int(m["pad_tgt_idx"])
        self.src_emb = nn.Embedding(int(m["vocab_src_size"]), d)
        self.tgt_emb = nn.Embedding(int(m["vocab_tgt_size"]), d)
        self.register_buffer("scale", torch.sqrt(torch.tensor(float(d))))
        L = int(m["max_length"])
        two_i = torch.arange(0, d, 2, dtype=torch.float64)
        pos = torch.arange(0, L, dtype=torch.float64).unsqueeze(1)
        pe = torch.zeros(L, d, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(pos / 10000.0 ** (two_i / d))
        pe[:, 1::2] = torch.cos(pos / 10000.0 ** (two_i / d))
        self.pe = pe.float()  # a plain attribute, as in kanformer: not in the state_dict

        def enc_block():
            b = nn.Module()
            b.mha, b.norm1 = Attention(d, qk, vd, h, bias, proj), nn.LayerNorm(d)
            b.pffn, b.norm2 = FFN(d, hidden, act, pffn_bias, proj), nn.LayerNorm(d)
            return b

        def dec_block():
            b = nn.Module()
            b.mha1, b.norm1 = Attention(d, qk, vd, h, bias, proj), nn.LayerNorm(d)
            b.mha2, b.norm2 = Attention(d, qk, vd, h, bias, proj), nn.LayerNorm(d)
            b.pffn, b.norm3 = FFN(d, hidden, act, pffn_bias, proj), nn.LayerNorm(d)
            return b

        self.encoder_blocks = nn.ModuleList([enc_block() for _ in range(int(m["num_encoder_layers"]))])
        self.decoder_blocks = nn.ModuleList([dec_block() for _ in range(int(m["num_decoder_layers"]))])
        self.linear = proj(d, int(m["vocab_tgt_size"]), bias)
        if isinstance(self.linear, nn.Linear) and not untied:
            self.linear.weight = self.tgt_emb.weight

    def forward(self, src, tgt):
        src_mask = (src != self.pad_src).unsqueeze(1).unsqueeze(2)
        T = tgt.size(1)
        tgt_mask = (tgt != self.pad_tgt).unsqueeze(1).unsqueeze(2) & torch.tril(torch.ones(1, T, T)).bool()
        x = self.src_emb(src) * self.scale + self.pe[: src.size(1)]
        for b in self.encoder_blocks:
            x = b.norm1(x + b.mha(x, x, src_mask))
            x = b.norm2(x + b.pffn(x))
        y = self.tgt_emb(tgt) * self.scale + self.pe[:T]
        for b in self.decoder_blocks:
            y = b.norm1(y + b.mha1(y, y, tgt_mask))
            y = b.norm2(y + b.mha2(y, x, src_mask))
            y = b.norm3(y + b.pffn(y))
        return self.linear(y)


class HFElectra(nn.Module):
    """Hugging Face's ELECTRA layout (ElectraForPreTraining / ElectraForMaskedLM): post-LN BERT layers
    with biased query/key/value, GELU, 1/sqrt(head size) attention, additive padding mask."""

    def __init__(self, m, part):
        super().__init__()
        V, E, H = int(m["vocab_size"]), int(m["embedding_size"]), int(m["hidden_size"])
        I, L, P = int(m["intermediate_size"]), int(m["num_hidden_layers"]), int(m["max_position_embeddings"])
        self.heads, self.part, eps = int(m["num_attention_heads"]), part, float(m["layer_norm_eps"])
        self.electra = nn.Module()
        emb = self.electra.embeddings = nn.Module()
        emb.word_embeddings, emb.position_embeddings = nn.Embedding(V, E), nn.Embedding(P, E)
        emb.token_type_embeddings, emb.LayerNorm = nn.Embedding(int(m["type_vocab_size"]), E), nn.LayerNorm(E, eps=eps)
        if E != H:
            self.electra.embeddings_project = nn.Linear(E, H)
        self.electra.encoder = nn.Module()
        layers = []
        for _ in range(L):
            layer = nn.Module()
            layer.attention = nn.Module()
            layer.attention.self = nn.Module()
            for n in ("query", "key", "value"):
                setattr(layer.attention.self, n, nn.Linear(H, H))
            layer.attention.output = nn.Module()
            layer.attention.output.dense, layer.attention.output.LayerNorm = nn.Linear(H, H), nn.LayerNorm(H, eps=eps)
            layer.intermediate = nn.Module()
            layer.intermediate.dense = nn.Linear(H, I)
            layer.output = nn.Module()
            layer.output.dense, layer.output.LayerNorm = nn.Linear(I, H), nn.LayerNorm(H, eps=eps)
            layers.append(layer)
        self.electra.encoder.layer = nn.ModuleList(layers)
        if part == "discriminator":
            self.discriminator_predictions = nn.Module()
            self.discriminator_predictions.dense = nn.Linear(H, H)
            self.discriminator_predictions.dense_prediction = nn.Linear(H, 1)
        else:
            self.generator_predictions = nn.Module()
            self.generator_predictions.dense = nn.Linear(H, E)
            self.generator_predictions.LayerNorm = nn.LayerNorm(E, eps=eps)
            self.generator_lm_head = nn.Linear(E, V)
            self.generator_lm_head.weight = emb.word_embeddings.weight  # tied

    def forward(self, ids, mask, types):
        emb = self.electra.embeddings
        T = ids.size(1)
        x = emb.word_embeddings(ids) + emb.position_embeddings(torch.arange(T)) + emb.token_type_embeddings(types)
        x = emb.LayerNorm(x)
        if hasattr(self.electra, "embeddings_project"):
            x = self.electra.embeddings_project(x)
        B, H = x.size(0), x.size(2)
        d = H // self.heads
        add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.electra.encoder.layer:
            a = layer.attention.self
            q, k, v = (f(x).view(B, T, self.heads, d).transpose(1, 2) for f in (a.query, a.key, a.value))
            p = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(d) + add, dim=-1)
            o = (p @ v).transpose(1, 2).reshape(B, T, H)
            x = layer.attention.output.LayerNorm(layer.attention.output.dense(o) + x)
            x = layer.output.LayerNorm(layer.output.dense(F.gelu(layer.intermediate.dense(x))) + x)
        if self.part == "discriminator":
            h = F.gelu(self.discriminator_predictions.dense(x))
            return self.discriminator_predictions.dense_prediction(h).squeeze(-1)
        h = self.generator_predictions.LayerNorm(F.gelu(self.generator_predictions.dense(x)))
        return self.generator_lm_head(h)


def tensor(j):
    t = torch.tensor(j["data"], dtype=torch.int64 if j["dtype"] == "int64" else torch.float64)
    return t.reshape(j["dims"])


def main():
    kind, exported, reference = sys.argv[1:4]
    state_np, meta = read_safetensors(exported)
    state = {k: torch.from_numpy(v.copy()) for k, v in state_np.items()}
    ref = json.load(open(reference))
    if kind == "hf-electra":
        m = {k.split(".", 1)[1]: v for k, v in meta.items() if k.startswith("hf.")}
        part = "discriminator" if m["architectures"] == "ElectraForPreTraining" else "generator"
        model = HFElectra(m, part)
        run = lambda c: model(*(tensor(c["inputs"][n]) for n in ("input_ids", "attention_mask", "token_type_ids")))  # noqa: E731
        out_name = "logits"
    elif kind == "kanformer":
        m = {k.split(".", 1)[1]: v for k, v in meta.items() if k.startswith("kanformer.")}
        untied = m["model_type"] == "mlp" and not torch.equal(state["linear.weight"], state["tgt_emb.weight"])
        model = Seq2Seq(m, untied)
        run = lambda c: model(tensor(c["inputs"]["src_ids"]), tensor(c["inputs"]["tgt_ids"]))  # noqa: E731
        out_name = "logits"
    else:
        widths = json.loads(meta["efficient_kan.layers_hidden"])
        g, k = int(meta["efficient_kan.grid_size"]), int(meta["efficient_kan.spline_order"])
        model = nn.Module()
        model.layers = nn.ModuleList([KANLinear(widths[i], widths[i + 1], g, k) for i in range(len(widths) - 1)])

        def run(c):
            x = tensor(c["inputs"]["x"]).float()
            for layer in model.layers:
                x = layer(x)
            return x
        out_name = "y"
    missing, unexpected = model.load_state_dict(state, strict=True)  # raises on any mismatch
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for i, c in enumerate(ref["cases"]):
            got = run(c).double()
            want = tensor(c["outputs"][out_name])
            if tuple(got.shape) != tuple(want.shape):
                fail(f"case {i}: shape {tuple(got.shape)}, knot's {tuple(want.shape)}")
            rel = float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))
            worst = max(worst, rel)
            if not rel <= 1e-4:
                fail(f"case {i}: PyTorch differs from knot: relative {rel:.3e}")
    print(f"load_reference: OK: {kind} loads with strict=True into PyTorch modules of the reference layout; "
          f"{len(ref['cases'])} cases, worst relative difference {worst:.2e}")


if __name__ == "__main__":
    main()
