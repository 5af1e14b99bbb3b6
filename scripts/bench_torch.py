#!/usr/bin/env python3
"""PyTorch side of `tally bench`: the same LLaMA-style model and settings, timed in PyTorch, then the ratio table.

Usage (wherever PyTorch is installed, CPU or CUDA; Tally's JSON from `./tally bench --out tally-bench.json`):
    python3 scripts/bench_torch.py --tally tally-bench.json [--model tiny|<config.json>] [--batch 8] [--seq 64]
        [--steps 20] [--warmup-steps 10] [--device cpu|cuda] [--threads N]
--model takes the same names and HF-style JSON files as `tally bench --model`. On CPU the script prints which BLAS
library and OpenBLAS core PyTorch runs on and its thread counts (Debian's python3-torch falls back to the slow
reference libblas3 unless libopenblas0 is installed). scripts/compare_cpu.sh runs both sides back to back.

The model mirrors Tally's: RMSNorm (eps 1e-6), RoPE (rotate_half, base 10000), SwiGLU MLP, causal attention, no biases,
untied head, init N(0, 0.02^2). Optimizers compared: adamw (torch.optim.AdamW); Tally-only methods are listed without a
ratio. Loss: mean cross-entropy over the materialized logits (the 'ce' path). Peak memory is
torch.cuda.max_memory_allocated on CUDA (not available on CPU).
"""
import argparse
import ctypes
import json
import math
import time

import torch
import torch.nn.functional as F

CONFIGS = {  # name: (hidden, intermediate, heads, layers, vocab)
    "tiny": (64, 176, 4, 2, 256), "small": (128, 352, 4, 4, 256),
    "llama_9m": (128, 352, 4, 4, 32000), "llama_20m": (256, 688, 4, 4, 32000), "llama_35m": (384, 1024, 8, 6, 32000),
    "llama_60m": (512, 1376, 8, 8, 32000), "llama_130m": (768, 2048, 12, 12, 32000),
    "llama_350m": (1024, 2736, 16, 24, 32000), "llama_1b": (2048, 5461, 32, 24, 32000), "llama_7b": (4096, 11008, 32, 32, 32000),
}


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def rope(x, base=10000.0):  # x: [B, T, H, Dh]
    t, dh = x.shape[1], x.shape[-1]
    inv = base ** (-torch.arange(0, dh, 2, device=x.device, dtype=torch.float32) / dh)
    ang = torch.outer(torch.arange(t, device=x.device, dtype=torch.float32), inv)
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :].to(x.dtype)
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :].to(x.dtype)
    x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Block(torch.nn.Module):
    def __init__(self, h, i, heads):
        super().__init__()
        self.heads = heads
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(h), RMSNorm(h)
        self.q, self.k, self.v, self.o = (torch.nn.Linear(h, h, bias=False) for _ in range(4))
        self.gate, self.up = torch.nn.Linear(h, i, bias=False), torch.nn.Linear(h, i, bias=False)
        self.down = torch.nn.Linear(i, h, bias=False)

    def forward(self, x):
        b, t, h = x.shape
        y = self.input_layernorm(x)
        q = rope(self.q(y).view(b, t, self.heads, -1)).transpose(1, 2)
        k = rope(self.k(y).view(b, t, self.heads, -1)).transpose(1, 2)
        v = self.v(y).view(b, t, self.heads, -1).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        a = (scores.masked_fill(mask, float("-inf")).softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)
        x = x + self.o(a)
        y = self.post_attention_layernorm(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class Llama(torch.nn.Module):
    def __init__(self, h, i, heads, layers, vocab):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, h)
        self.layers = torch.nn.ModuleList(Block(h, i, heads) for _ in range(layers))
        self.norm = RMSNorm(h)
        self.head = torch.nn.Linear(h, vocab, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, ids, targets):
        x = self.embed(ids)
        for blk in self.layers:
            x = blk(x)
        logits = self.head(self.norm(x)).float()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def config(name):
    """(hidden, intermediate, heads, layers, vocab) of a known name or an HF-style JSON config file."""
    if name in CONFIGS:
        return CONFIGS[name]
    try:
        with open(name) as f:
            c = json.load(f)
    except OSError as e:
        raise SystemExit(f"--model {name!r}: not a known config ({', '.join(sorted(CONFIGS))}) nor a readable JSON file: {e}")
    keys = ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "vocab_size"]
    missing = [k for k in keys if not isinstance(c.get(k), int)]
    if missing:
        raise SystemExit(f"--model {name}: missing or non-integer {', '.join(missing)}")
    return tuple(c[k] for k in keys)


def blas_info():
    """The BLAS/LAPACK libraries mapped into this process and, for OpenBLAS, its core type and thread count."""
    torch.ones(64, 64) @ torch.ones(64, 64)  # make sure the BLAS is loaded
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.split()[-1].lower()})
    except OSError:
        libs = []
    info = {"blas_libraries": libs, "openblas_core": None, "openblas_threads": None}
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["openblas_core"] = lib.openblas_get_corename().decode()
            info["openblas_threads"] = lib.openblas_get_num_threads()
            break
        except (OSError, AttributeError):
            continue
    return info


def bench(model_name, batch, seq, steps, device, dtype, warmup=10):
    h, i, heads, layers, vocab = config(model_name)
    torch.manual_seed(0)
    model = Llama(h, i, heads, layers, vocab).to(device=device, dtype=dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    ids = torch.randint(0, vocab, (batch, seq), device=device)  # the whole vocabulary, as tally bench draws them
    tgt = torch.randint(0, vocab, (batch, seq), device=device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def step():
        loss = model(ids, tgt)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)

    for _ in range(warmup):  # warm-up, as tally bench does
        step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return {"model": model_name, "optimizer": "adamw", "loss": "ce", "device": device,
            "tokens_per_s": steps * batch * seq / secs, "step_ms": secs * 1e3 / steps,
            "peak_total_bytes": torch.cuda.max_memory_allocated() if cuda else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tally", help="JSON written by `tally bench --out`")
    ap.add_argument("--model", default="tiny", help="config name (" + ", ".join(sorted(CONFIGS)) + ") or HF-style JSON file")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--warmup-steps", type=int, default=10)
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's own choice)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch_row = bench(a.model, a.batch, a.seq, a.steps, a.device, getattr(torch, a.dtype), a.warmup_steps)
    torch_row["torch_version"] = torch.__version__
    torch_row["torch_threads"] = torch.get_num_threads()
    if not a.device.startswith("cuda"):
        torch_row.update(blas_info())
    print(json.dumps({"torch": torch_row}))
    if not a.device.startswith("cuda"):
        print(f"PyTorch {torch.__version__} on CPU: {torch.get_num_threads()} intra-op thread(s); BLAS "
              f"{', '.join(torch_row['blas_libraries']) or 'not found in /proc/self/maps'}; OpenBLAS core "
              f"{torch_row['openblas_core']} with {torch_row['openblas_threads']} thread(s)")
    if a.tally:
        rows = json.load(open(a.tally))["training"]
        print_ratios(rows, torch_row)


def print_ratios(rows, torch_row):
    """Every Tally row against PyTorch's AdamW + CE (the one configuration PyTorch runs), as in the README table."""
    print(f"\n{'optimizer':<18} {'loss':<5} {'tally tok/s':>12} {'torch adamw+ce':>15} {'ratio':>7} {'tally peak':>14} {'torch peak':>14}")
    for r in rows:
        same = r["optimizer"] == "adamw" and r["loss"] == "ce"
        tp = torch_row["peak_total_bytes"] if same else None
        print(f"{r['optimizer']:<18} {r['loss']:<5} {r['tokens_per_s']:>12.0f} {torch_row['tokens_per_s']:>15.0f} "
              f"{r['tokens_per_s'] / torch_row['tokens_per_s']:>7.2f} {r['peak_total_bytes']:>14} {str(tp):>14}")


if __name__ == "__main__":
    main()
