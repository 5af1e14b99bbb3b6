#!/usr/bin/env python3
"""Checks numerically that a folder written by `tally export` computes what Tally computes, with a LLaMA forward written
here by hand in PyTorch the way transformers' modeling_llama.py defines it (rotate-half RoPE, RMSNorm in fp32 then gain,
SwiGLU MLP, causal softmax attention, untied head). Needs only torch (no transformers, no safetensors package).

    python3 scripts/hf_llama_check.py EXPORTED_DIR PROMPT GREEDY_TEXT_FROM_TALLY HELD_OUT_LOSS_FROM_TALLY

Prints the greedy continuation and the loss on the byte sequence given, and exits non-zero when they disagree with
the figures Tally printed (`tally sample --temperature 0`, `tally eval`). Byte-level tokenizer only.
"""
import json
import math
import struct
import sys

import torch


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = bytearray(data[b:end])
        if e["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32)
        elif e["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).to(torch.int32).bitwise_left_shift(16).view(torch.float32)
        else:
            raise SystemExit(f"{name}: dtype {e['dtype']} not handled")
        out[name] = t.reshape(e["shape"]).to(torch.float64)
    return out, header.get("__metadata__", {})


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(w, cfg, ids):
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    dh, eps, T = d // h, cfg["rms_norm_eps"], len(ids)
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos(), emb.sin()

    def rms(x, g):
        return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        y = rms(x, w[p + "input_layernorm.weight"])
        q = (y @ w[p + "self_attn.q_proj.weight"].T).view(T, h, dh).transpose(0, 1)
        k = (y @ w[p + "self_attn.k_proj.weight"].T).view(T, h, dh).transpose(0, 1)
        v = (y @ w[p + "self_attn.v_proj.weight"].T).view(T, h, dh).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + mask, dim=-1) @ v
        x = x + a.transpose(0, 1).reshape(T, d) @ w[p + "self_attn.o_proj.weight"].T
        y = rms(x, w[p + "post_attention_layernorm.weight"])
        g, u = y @ w[p + "mlp.gate_proj.weight"].T, y @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
    return rms(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


def main():
    folder, prompt, tally_text = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = json.load(open(f"{folder}/config.json"))
    w, meta = load_safetensors(f"{folder}/model.safetensors")
    assert meta.get("format") == "pt", meta
    ids = list(prompt.encode("utf-8"))
    n_new = len(tally_text.encode("utf-8")) - len(ids)
    for _ in range(n_new):
        logits = forward(w, cfg, ids)[-1]
        top = torch.topk(logits, 2).values
        ids.append(int(torch.argmax(logits)))
        if (top[0] - top[1]).item() < 1e-4:
            print(f"note: near tie at position {len(ids) - 1} ({(top[0] - top[1]).item():.2e})")
    text = bytes(ids).decode("utf-8", errors="replace")
    print("torch greedy:", repr(text))
    print("tally greedy:", repr(tally_text))
    ok = text == tally_text
    if len(sys.argv) > 5:  # held-out check: a byte string and Tally's loss on it (next-token mean CE)
        seq = list(sys.argv[4].encode("utf-8"))
        logits = forward(w, cfg, seq[:-1])
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(seq[1:])).item()
        print(f"torch loss {loss:.6f}  tally loss {float(sys.argv[5]):.6f}")
        ok &= abs(loss - float(sys.argv[5])) < 1e-4
    print("MATCH" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
