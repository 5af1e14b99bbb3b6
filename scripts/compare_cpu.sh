#!/usr/bin/env bash
# Tally against PyTorch on this CPU, back to back: REPS rounds of (tally bench, then bench_torch.py) for one config,
# each run's load average recorded, then the median tokens/s of each side and the ratio table (ratios of the medians, and
# the medians of each round's ratios to PyTorch and to Tally's AdamW + CE, which a slowly drifting co-tenant disturbs less). Each Tally configuration
# (optimizer x loss) runs in its own JVM: in one JVM a configuration runs after the others' code has been compiled, and
# the JIT's type profiles then slow some kernels (AdamW's moved from ~27 to 50-120 ms a step), so the order would be
# part of the result.
#
#   scripts/compare_cpu.sh MODEL BATCH SEQ [REPS=3] [STEPS=10] [WARMUP=3]
#   e.g. scripts/compare_cpu.sh scripts/configs/h256_v8192.json 8 256
#        scripts/compare_cpu.sh llama_20m 4 256
# Environment: OPTIMIZERS (default adamw,apollo_mini), LOSSES (default ce,cce,cce_fused), PYTHON (default /usr/bin/python3, a
# Python with torch), TORCH_THREADS (default: PyTorch's own choice), OUT (folder for the raw JSON, default a temp dir).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the PyTorch runs so OpenBLAS picks its kernel for this CPU itself.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:?usage: compare_cpu.sh MODEL BATCH SEQ [REPS] [STEPS] [WARMUP]}" batch="${2:?batch}" seq="${3:?seq}"
reps="${4:-3}" steps="${5:-10}" warmup="${6:-3}"
optimizers="${OPTIMIZERS:-adamw,apollo_mini}" losses="${LOSSES:-ce,cce,cce_fused}" py="${PYTHON:-/usr/bin/python3}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
threads=()
[[ -n "${TORCH_THREADS:-}" ]] && threads=(--threads "$TORCH_THREADS")
for r in $(seq 1 "$reps"); do
  for o in ${optimizers//,/ }; do
    for l in ${losses//,/ }; do
      echo "round $r: tally $o + $l ($(uptime | sed 's/.*load average: //'))" >&2
      "$root/tally" bench --device cpu --model "$model" --batch "$batch" --seq "$seq" --optimizers "$o" --loss "$l" \
        --steps "$steps" --warmup-steps "$warmup" --out "$out/tally-$r-$o-$l.json" > /dev/null
      echo "$(uptime | sed 's/.*load average: //')" > "$out/tally-$r-$o-$l.load"
    done
  done
  echo "round $r: torch ($(uptime | sed 's/.*load average: //'))" >&2
  (unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; "$py" "$root/scripts/bench_torch.py" --device cpu --model "$model" --batch "$batch" \
    --seq "$seq" --steps "$steps" --warmup-steps "$warmup" "${threads[@]}" > "$out/torch-$r.txt")
  echo "$(uptime | sed 's/.*load average: //')" > "$out/torch-$r.load"
done
"$py" - "$out" "$reps" "$model" "$batch" "$seq" <<'PY'
import glob, json, statistics, sys
out, reps, model, batch, seq = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
load = lambda p: open(p).read().strip()
tally, torch_runs = {}, []
for r in range(1, reps + 1):
    for path in sorted(glob.glob(f"{out}/tally-{r}-*.json")):
        for row in json.load(open(path))["training"]:
            tally.setdefault((row["optimizer"], row["loss"]), []).append((row["tokens_per_s"], load(path[:-len(".json")] + ".load")))
    t = json.loads(open(f"{out}/torch-{r}.txt").readline())["torch"]
    torch_runs.append((t["tokens_per_s"], load(f"{out}/torch-{r}.load")))
info = t
print(f"{model}, batch {batch} x seq {seq}, {reps} interleaved rounds; raw JSON in {out}")
print(f"PyTorch {info['torch_version']}: {info['torch_threads']} intra-op thread(s), OpenBLAS core {info.get('openblas_core')} "
      f"({info.get('openblas_threads')} threads), {', '.join(info.get('blas_libraries') or ['no BLAS found'])}")
med = statistics.median(v for v, _ in torch_runs)
print(f"  torch adamw + ce: median {med:8.0f} tokens/s   runs: " + "; ".join(f"{v:.0f} (load {l})" for v, l in torch_runs))
# Paired ratios: each run against the PyTorch run (and Tally's AdamW + CE run) of the same round, then their median.
# A co-tenant's load drifts slowly against one round, so these move less than a ratio of two medians does.
base = tally.get(("adamw", "ce"))
for (o, l), runs in tally.items():
    m = statistics.median(v for v, _ in runs)
    paired = statistics.median(v / tv for (v, _), (tv, _) in zip(runs, torch_runs))
    vs_base = "" if base is None or (o, l) == ("adamw", "ce") else \
        f", {statistics.median(v / bv for (v, _), (bv, _) in zip(runs, base)):.2f}x tally adamw + ce"
    print(f"  tally {o} + {l}: median {m:8.0f} tokens/s = {m / med:.2f}x torch (per round: {paired:.2f}x torch{vs_base})   runs: "
          + "; ".join(f"{v:.0f} (load {ld})" for v, ld in runs))
PY
