#!/usr/bin/python3
"""model_ref.py — an independent numpy forward pass of a rewire checkpoint.

Usage: model_ref.py CHECKPOINT INPUTS.json [ADAPTER]

Parses the safetensors file with the standard library and numpy only (no
torch, no safetensors package), rebuilds the model from the configuration in
its metadata, runs the sequences of INPUTS.json ({"ids": [[...], ...],
"outputs": [[...], ...]}, ids without padding) in float64 and compares the
head outputs with the ones rewire computed. Prints one JSON line
{"max_abs_diff": ..., "outputs": [...]} and exits 0 if every output agrees
within 1e-4, 1 otherwise.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + n :]
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", info
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = (end - begin) // 4
        arr = np.frombuffer(data, dtype="<f4", count=count, offset=begin)
        tensors[name] = arr.reshape(shape).astype(np.float64)
    return tensors, meta


def layernorm(x, w, b, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def lora_delta(lora, target, layer, x):
    """scale * x @ A^T @ B^T, or 0 if the adapter does not touch target."""
    if lora is None:
        return 0.0
    tensors, cfg = lora
    a = tensors.get("lora_%s_a" % target)
    if a is None:
        return 0.0
    b = tensors["lora_%s_b" % target]
    scale = cfg["alpha"] / cfg["rank"]
    return scale * (x @ a[layer].T) @ b[layer].T


def ffn(p, cfg, layer, x, lora, ids):
    """The feed-forward of one layer over x (T, C): dense or mixture of experts."""
    E = cfg["n_experts"]
    if E == 0:
        h = x @ p["fc_w"][layer, 0].T + p["fc_b"][layer, 0] + lora_delta(lora, "ff1", layer, x)
        g = gelu(h)
        return g @ p["fcproj_w"][layer, 0].T + p["fcproj_b"][layer, 0] + lora_delta(lora, "ff2", layer, g)
    if cfg.get("gate_input", "token") == "prompt":  # the prompt's token ids route the sequence
        n = ids.index(2) + 1 if 2 in ids else len(ids)  # through the first separator
        z = p["gate_w"][layer][:, ids[:n]].sum(axis=1)  # gate_w (E, V) @ the id counts
        probs = np.tile(softmax(z), (x.shape[0], 1))
    else:
        probs = softmax(x @ p["gate_w"][layer].T)  # (T, E)
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        order = sorted(range(E), key=lambda e: (-probs[t, e], e))[: cfg["top_k"]]
        weights = probs[t, order] / probs[t, order].sum()
        for e, w in zip(order, weights):
            h = gelu(x[t] @ p["fc_w"][layer, e].T + p["fc_b"][layer, e])
            out[t] += w * (h @ p["fcproj_w"][layer, e].T + p["fcproj_b"][layer, e])
    return out


def forward(p, cfg, ids, lora=None):
    """Head outputs for one unpadded sequence of token ids."""
    T, C, H = len(ids), cfg["d_model"], cfg["n_heads"]
    hs = C // H
    x = p["wte"][ids] + p["wpe"][:T]
    if lora is not None and "lora_emb_a" in lora[0]:
        # the token embedding's low-rank update: (alpha/r) * B_e @ A_e[id]
        tensors, lcfg = lora
        x = x + lcfg["alpha"] / lcfg["rank"] * tensors["lora_emb_a"][ids] @ tensors["lora_emb_b"].T
    for l in range(cfg["n_layers"]):
        h = layernorm(x, p["ln1_w"][l], p["ln1_b"][l])
        qkv = h @ p["qkv_w"][l].T + p["qkv_b"][l]
        q, k, v = qkv[:, :C], qkv[:, C : 2 * C], qkv[:, 2 * C :]
        q = q + lora_delta(lora, "q", l, h)
        k = k + lora_delta(lora, "k", l, h)
        v = v + lora_delta(lora, "v", l, h)
        y = np.zeros((T, C))
        for i in range(H):
            s = slice(i * hs, (i + 1) * hs)
            att = softmax(q[:, s] @ k[:, s].T / np.sqrt(hs))
            y[:, s] = att @ v[:, s]
        x = x + y @ p["attproj_w"][l].T + p["attproj_b"][l] + lora_delta(lora, "o", l, y)
        x = x + ffn(p, cfg, l, layernorm(x, p["ln2_w"][l], p["ln2_b"][l]), lora, list(ids))
    x = layernorm(x, p["lnf_w"], p["lnf_b"])
    pooled = x[-1] if cfg["pooling"] == "last" else x.mean(axis=0)
    head = lora[0] if lora is not None else p
    return pooled @ head["head_w"].T + head["head_b"]


def main():
    params, meta = read_safetensors(sys.argv[1])
    assert meta["rewire.kind"] == "model"
    cfg = json.loads(meta["rewire.config"])
    lora = None
    if len(sys.argv) > 3:
        tensors, lmeta = read_safetensors(sys.argv[3])
        assert lmeta["rewire.kind"] == "lora"
        lora = (tensors, json.loads(lmeta["rewire.lora"]))
    with open(sys.argv[2]) as f:
        inputs = json.load(f)
    outputs, worst = [], 0.0
    for ids, theirs in zip(inputs["ids"], inputs["outputs"]):
        ours = forward(params, cfg, np.array(ids, dtype=np.int64), lora)
        worst = max(worst, float(np.max(np.abs(ours - np.array(theirs)))))
        outputs.append([float(v) for v in ours])
    print(json.dumps({"max_abs_diff": worst, "outputs": outputs}))
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
