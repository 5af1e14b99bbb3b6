#!/usr/bin/env python3
"""PyTorch companion of dev.tally.engine.cuda.CudaBenchmark: the same GEMMs and bandwidth ops under the same names,
timed with CUDA events, one JSON object per line. Then, with --compare TALLY.jsonl, a markdown report of both.

Usage: gpu_bench_torch.py OUT.jsonl [--compare TALLY.jsonl --report REPORT.md]
"""
import json
import sys


def bench(torch, fn, warm, iters):
    for _ in range(warm):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def run(out_path):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False  # Tally's fp32 GEMM uses TF32 only when asked
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    dev = torch.device("cuda:0")
    rows = []

    def record(kind, name, dtype, shape, ms, unit, value):
        r = dict(impl="torch", kind=kind, name=name, dtype=dtype, shape=shape, ms=round(ms, 5), unit=unit, value=round(value, 3))
        rows.append(r)
        print(json.dumps(r), flush=True)

    gemms = [("square_4096", 4096, 4096, 4096), ("llama130m_qkvo", 2048, 768, 768), ("llama130m_mlp_up", 2048, 768, 2048),
             ("llama130m_mlp_down", 2048, 2048, 768), ("llama130m_lm_head", 2048, 768, 32000)]
    for dt, dname in ((torch.bfloat16, "bf16"), (torch.float32, "f32")):
        for name, m, k, n in gemms:
            a = torch.randn(m, k, device=dev, dtype=dt)
            b = torch.randn(k, n, device=dev, dtype=dt)
            c = torch.empty(m, n, device=dev, dtype=dt)
            iters = 20 if m * n * k > 1 << 33 else 50
            ms = bench(torch, lambda: torch.matmul(a, b, out=c), 5, iters)
            record("gemm", name, dname, f"{m}x{k}x{n}", ms, "TFLOP/s", 2.0 * m * n * k / (ms * 1e-3) / 1e12)
            del a, b, c
    for r, cdim in ((8192, 8192), (2048, 32000)):
        x = torch.randn(r, cdim, device=dev, dtype=torch.bfloat16)
        y = torch.randn(r, cdim, device=dev, dtype=torch.bfloat16)
        z = torch.empty_like(x)
        nbytes = x.numel() * 2
        shape = f"{r}x{cdim}"
        ms = bench(torch, lambda: z.copy_(x), 3, 20)
        record("bandwidth", "copy_d2d", "bf16", shape, ms, "GB/s", 2.0 * nbytes / (ms * 1e-3) / 1e9)
        ms = bench(torch, lambda: torch.add(x, y, out=z), 3, 20)
        record("bandwidth", "add", "bf16", shape, ms, "GB/s", 3.0 * nbytes / (ms * 1e-3) / 1e9)
        ms = bench(torch, lambda: torch.softmax(x, dim=-1), 3, 20)  # allocates its output (caching allocator: no cudaMalloc)
        record("bandwidth", "softmax", "bf16", shape, ms, "GB/s", 2.0 * nbytes / (ms * 1e-3) / 1e9)
    with open(out_path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return torch.cuda.get_device_name(0), torch.__version__


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


def compare(tally_path, torch_path, report_path, device="", torch_version=""):
    t = {(r["kind"], r["name"], r["dtype"], r["shape"]): r for r in load(tally_path)}
    p = {(r["kind"], r["name"], r["dtype"], r["shape"]): r for r in load(torch_path)}
    lines = [f"# Tally CUDA vs PyTorch {torch_version} on {device}", "",
             "| kind | name | dtype | shape | unit | tally | torch | tally/torch |", "|---|---|---|---|---|---|---|---|"]
    for key in sorted(set(t) | set(p)):
        a, b = t.get(key), p.get(key)
        unit = (a or b)["unit"]
        ratio = f"{a['value'] / b['value']:.2f}" if a and b and b["value"] else "n/a"
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {unit} | {a['value'] if a else 'missing'} | "
                     f"{b['value'] if b else 'missing'} | {ratio} |")
    lines += ["", "GEMM: 2·m·n·k / time. Bandwidth: bytes read + written / time (copy 2N, add 3N, softmax 2N bytes)."]
    with open(report_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    out = sys.argv[1]
    device, version = run(out)
    if "--compare" in sys.argv:
        tally = sys.argv[sys.argv.index("--compare") + 1]
        report = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv else "report.md"
        compare(tally, out, report, device, version)
