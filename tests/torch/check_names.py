"""Checks a `knot export torch` file with a reader other than knot's: Python's standard library and
NumPy only (Debian python3-numpy). The expected state_dict names and shapes are worked out here from
the run's config, the way the reference project builds its modules (kanformer's TransformerSeq2Seq,
efficient-kan's KAN), independently of knot's C++ renaming; every value must equal knot's checkpoint
bit for bit. (load_reference.py loads the file into PyTorch modules where PyTorch is installed.)

usage: check_names.py kanformer|efficient-kan|hf-electra EXPORTED.safetensors KNOT_MODEL.safetensors RUN_CONFIG.json [PART]
"""
import json
import math
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n :]
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return out, meta


def fail(msg):
    print(f"check_names: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- expected names and shapes -------------------------------------------------------------------

def kan_bspline(prefix, i, o, grid=5, order=3):
    return {f"{prefix}base_weight": (o, i), f"{prefix}spline_weight": (o, i, grid + order),
            f"{prefix}spline_scaler": (o, i), f"{prefix}grid": (i, grid + 2 * order + 1)}


def projection(prefix, kind, options, i, o, bias):
    if kind == "mlp":
        d = {f"{prefix}weight": (o, i)}
        if bias:
            d[f"{prefix}bias"] = (o,)
        return d
    if kind == "kan_bspline":  # kanformer's KANEfficient wraps EfficientKANLinear as .kan
        return kan_bspline(prefix + "kan.", i, o)
    if kind == "kan_chebyshev":  # KANChebyshev wraps ChebyKANLayer as .chebykan
        return {f"{prefix}chebykan.cheby_coeffs": (i, o, options.get("degree", 4) + 1)}
    if kind == "kan_rbf":  # KANFast wraps FastKANLayer as .fastkan
        p, g = prefix + "fastkan.", 8
        return {f"{p}layernorm.weight": (i,), f"{p}layernorm.bias": (i,), f"{p}rbf.grid": (g,),
                f"{p}spline_linear.weight": (o, i * g), f"{p}base_linear.weight": (o, i), f"{p}base_linear.bias": (o,)}
    fail(f"no kanformer layer for projection kind {kind}")


def kanformer_expected(m):
    d = m["embedding_dim"]
    qk = m.get("query_key_dim") or d
    vd = m.get("value_dim") or d
    h = m["ffn_hidden_dim"]
    kind = m.get("projection", {}).get("kind", "mlp")
    opts = m.get("projection", {}).get("options", {})
    pffn_bias = m.get("use_ffn_bias_1", True)
    final_bias = m.get("use_final_linear_bias", False)
    glu = m.get("ffn_activation", "relu") in ("glu", "reglu", "geglu", "swiglu")
    e = {"scale": (), "src_emb.weight": (m["vocab_src_size"], d), "tgt_emb.weight": (m["vocab_tgt_size"], d)}

    def mha(p):
        e.update(projection(p + "q_proj.", kind, opts, d, qk, False))
        e.update(projection(p + "k_proj.", kind, opts, d, qk, False))
        e.update(projection(p + "v_proj.", kind, opts, d, vd, False))
        e.update(projection(p + "ff_proj.", kind, opts, vd, d, final_bias))
        e[p + "attn.scale"] = (1,)

    def pffn(p):
        e.update(projection(p + "in_proj.", kind, opts, d, h, pffn_bias))
        e.update(projection(p + "out_proj.", kind, opts, h, d, pffn_bias))
        if glu:
            e.update(projection(p + "gates.", kind, opts, d, h, pffn_bias))

    def norm(p):
        e[p + "weight"] = (d,)
        e[p + "bias"] = (d,)

    for i in range(m["num_encoder_layers"]):
        b = f"encoder_blocks.{i}."
        mha(b + "mha.")
        norm(b + "norm1.")
        pffn(b + "pffn.")
        norm(b + "norm2.")
    for i in range(m["num_decoder_layers"]):
        b = f"decoder_blocks.{i}."
        mha(b + "mha1.")
        norm(b + "norm1.")
        mha(b + "mha2.")
        norm(b + "norm2.")
        pffn(b + "pffn.")
        norm(b + "norm3.")
    e.update(projection("linear.", kind, opts, d, m["vocab_tgt_size"], final_bias))
    return e


def kanformer_knot_name(ref):
    """knot's name for a kanformer name (None for kanformer's scale buffers and the tied duplicate)."""
    if ref == "scale" or ref.endswith("attn.scale"):
        return None
    for a, b in (("src_emb.", "encoder.embed_tokens."), ("tgt_emb.", "decoder.embed_tokens.")):
        if ref.startswith(a):
            return b + ref[len(a):]
    parts = ref.split(".")
    for wrapper in ("kan", "chebykan", "fastkan"):
        if wrapper in parts:
            parts.remove(wrapper)
    if parts[0] == "linear":
        return "lm_head." + ".".join(parts[1:])
    stack = {"encoder_blocks": "encoder.layers", "decoder_blocks": "decoder.layers"}[parts[0]]
    enc = parts[0] == "encoder_blocks"
    sub = {"mha": "self_attn", "mha1": "self_attn", "mha2": "encoder_attn", "pffn": "ffn", "norm1": "self_attn_layer_norm",
           "norm2": "final_layer_norm" if enc else "encoder_attn_layer_norm", "norm3": "final_layer_norm"}[parts[2]]
    rest = parts[3:]
    rest[0] = {"ff_proj": "out_proj", "gates": "gate_proj"}.get(rest[0], rest[0])
    return ".".join([stack, parts[1], sub] + rest)


def hf_electra_expected(m, part):
    size = m["discriminator"] if part == "discriminator" else m["generator"]
    E, H, I = m["embedding_size"], size["hidden_size"], size["intermediate_size"]
    e = {"electra.embeddings.word_embeddings.weight": (m["vocab_size"], E),
         "electra.embeddings.position_embeddings.weight": (m["max_position_embeddings"], E),
         "electra.embeddings.token_type_embeddings.weight": (m["type_vocab_size"], E),
         "electra.embeddings.LayerNorm.weight": (E,), "electra.embeddings.LayerNorm.bias": (E,)}

    def lin(name, i, o):
        e[name + ".weight"] = (o, i)
        e[name + ".bias"] = (o,)

    if E != H:
        lin("electra.embeddings_project", E, H)
    for i in range(size["num_layers"]):
        p = f"electra.encoder.layer.{i}."
        for n in ("query", "key", "value"):
            lin(p + "attention.self." + n, H, H)
        lin(p + "attention.output.dense", H, H)
        lin(p + "intermediate.dense", H, I)
        lin(p + "output.dense", I, H)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            e[p + n + ".weight"] = (H,)
            e[p + n + ".bias"] = (H,)
    if part == "discriminator":
        lin("discriminator_predictions.dense", H, H)
        lin("discriminator_predictions.dense_prediction", H, 1)
    else:
        lin("generator_predictions.dense", H, E)
        e["generator_predictions.LayerNorm.weight"] = (E,)
        e["generator_predictions.LayerNorm.bias"] = (E,)
        e["generator_lm_head.weight"] = (m["vocab_size"], E)
        e["generator_lm_head.bias"] = (m["vocab_size"],)
    return e


def hf_electra_knot_name(ref, part):
    """knot's name for a Hugging Face ELECTRA name; None for the zero biases knot does not have."""
    stack = part + "."
    fixed = {"generator_lm_head.weight": "embeddings.word_embeddings.weight",
             "generator_lm_head.bias": "generator.head.output_bias",
             "generator_predictions.LayerNorm.weight": "generator.head.LayerNorm.weight",
             "generator_predictions.LayerNorm.bias": "generator.head.LayerNorm.bias"}
    if ref in fixed:
        return fixed[ref]
    if ref.startswith("electra.embeddings."):
        return ref[len("electra."):]
    if ref.startswith("electra.embeddings_project."):
        return stack + ref[len("electra."):]
    if ref.startswith("discriminator_predictions."):
        return "discriminator.head." + ref[len("discriminator_predictions."):]
    if ref.startswith("generator_predictions.dense."):
        return "generator.head.dense." + ref.split(".")[-1]
    parts = ref.split(".")  # electra.encoder.layer.i.<...>
    i, rest = parts[3], ".".join(parts[4:])
    table = {"attention.self.query": "self_attn.q_proj", "attention.self.key": "self_attn.k_proj",
             "attention.self.value": "self_attn.v_proj", "attention.output.dense": "self_attn.out_proj",
             "attention.output.LayerNorm": "self_attn_layer_norm", "intermediate.dense": "ffn.in_proj",
             "output.dense": "ffn.out_proj", "output.LayerNorm": "final_layer_norm"}
    module, leaf = rest.rsplit(".", 1)
    return f"{stack}layers.{i}.{table[module]}.{leaf}"


def main():
    kind, exported, knot_model, config = sys.argv[1:5]
    got, meta = read_safetensors(exported)
    knot, _ = read_safetensors(knot_model)
    cfg = json.load(open(config))
    part = sys.argv[5] if len(sys.argv) > 5 else "discriminator"
    if kind == "kanformer":
        m = cfg["model"]
        expected = kanformer_expected(m)
    elif kind == "hf-electra":
        expected = hf_electra_expected(cfg["model"], part)
    else:
        w = cfg["model"]["widths"]
        o = cfg["model"].get("options", {})
        expected = {}
        for i in range(len(w) - 1):
            expected.update(kan_bspline(f"layers.{i}.", w[i], w[i + 1], o.get("grid_size", 5), o.get("spline_order", 3)))
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing or extra:
        fail(f"names differ from the reference layout: missing {missing[:8]}, unexpected {extra[:8]}")
    for n, shape in expected.items():
        if tuple(got[n].shape) != tuple(shape):
            fail(f"{n}: shape {tuple(got[n].shape)}, the reference module has {shape}")
    compared = 0
    for n, a in got.items():
        if kind == "kanformer":
            k = kanformer_knot_name(n)
            tied = n == "linear.weight" and "lm_head.weight" not in knot
            if n == "scale":
                want = math.sqrt(cfg["model"]["embedding_dim"])
                if abs(float(a) - want) > 1e-5 * want:
                    fail(f"scale is {float(a)}, expected sqrt(embedding_dim) = {want}")
                continue
            if k is None:
                qk = cfg["model"].get("query_key_dim") or cfg["model"]["embedding_dim"]
                if abs(float(a[0]) - math.sqrt(qk)) > 1e-5 * math.sqrt(qk):
                    fail(f"{n} is {float(a[0])}, expected sqrt(query_key_dim)")
                continue
            if tied:
                k = "decoder.embed_tokens.weight"
            if k == "lm_head.bias" and k not in knot:
                k = "final_logits_bias"
        elif kind == "hf-electra":
            k = hf_electra_knot_name(n, part)
            if k not in knot and n.endswith(".bias") and k.split(".")[-2] in ("q_proj", "k_proj", "v_proj"):
                if np.any(a != 0):
                    fail(f"{n}: knot has no such bias, so it must be zero")
                continue
        else:
            k = n
        if k not in knot:
            fail(f"{n}: knot's checkpoint has no '{k}'")
        if knot[k].dtype != a.dtype or knot[k].shape != a.shape or not np.array_equal(knot[k], a):
            fail(f"{n}: values differ from knot's '{k}'")
        compared += 1
    print(f"check_names: OK: {len(got)} tensors in the reference layout ({kind}), {compared} equal to knot's "
          f"bit for bit; metadata {sorted(meta)}")


if __name__ == "__main__":
    main()
