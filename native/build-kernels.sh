#!/usr/bin/env bash
# Compiles src/main/cuda/tally_kernels.cu into one fatbin (SASS for sm_80 and sm_90, PTX for compute_90 so newer GPUs
# JIT it) and writes it, with the list of its entry points, as resources of the tally-native jar.
# Fails when ptxas reports a stack frame or spills in any function (check-stack-frames.sh).
# Called by native/pom.xml in generate-resources: $1 = output resource folder. Without nvcc it prints that the kernels
# were skipped and succeeds (the CPU build does not need them; the CUDA backend then reports the missing resource).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1/dev/tally/nativekernels"
src="$here/src/main/cuda"
nvcc="${NVCC:-}"
[[ -z "$nvcc" ]] && nvcc="$(command -v nvcc || true)"
[[ -z "$nvcc" && -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]] && nvcc="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
if [[ "${TALLY_SKIP_KERNELS:-}" == "1" ]]; then
  echo "[tally-native] TALLY_SKIP_KERNELS=1: CUDA kernels skipped; the jar has no tally_kernels.fatbin"
  exit 0
fi
if [[ -z "$nvcc" ]]; then
  echo "[tally-native] nvcc not found (set NVCC or CUDA_HOME): CUDA kernels skipped; the jar has no tally_kernels.fatbin"
  exit 0
fi
mkdir -p "$out"
fatbin="$out/tally_kernels.fatbin"
if [[ -f "$fatbin" && -z "$(find "$src" -newer "$fatbin" -type f)" ]]; then
  echo "[tally-native] tally_kernels.fatbin is up to date"
  exit 0
fi
archs=(-gencode arch=compute_80,code=sm_80 -gencode "arch=compute_90,code=[sm_90,compute_90]")
echo "[tally-native] $("$nvcc" --version | tail -n 2 | head -n 1)"
echo "[tally-native] compiling tally_kernels.cu for sm_80, sm_90 (+PTX compute_90)"
ptxas_log="$1/../ptxas-v.log"
if ! "$nvcc" -fatbin -O3 -std=c++17 "${archs[@]}" -Xptxas -v -o "$fatbin.tmp" "$src/tally_kernels.cu" 2> "$ptxas_log"; then
  cat "$ptxas_log" >&2; exit 1
fi
# No kernel may have a stack frame or spill (kernel structs must be `const __grid_constant__`, see the script)
if ! "$here/check-stack-frames.sh" < "$ptxas_log"; then
  rm -f "$fatbin.tmp"; echo "[tally-native] full ptxas log: $ptxas_log" >&2; exit 1
fi
mv "$fatbin.tmp" "$fatbin"
# Every extern "C" __global__ entry point, one per line: the host checks it resolves each of them.
grep -ho 'extern "C" __global__ void [a-z_0-9]*' "$src"/*.cu | awk '{print $5}' | sort > "$out/tally_kernels.list"
{
  echo "nvcc=$("$nvcc" --version | grep -o 'release [0-9.]*' | cut -d' ' -f2)"
  echo "archs=sm_80,sm_90,compute_90"
  echo "kernels=$(wc -l < "$out/tally_kernels.list" | tr -d ' ')"
} > "$out/tally_kernels.properties"
echo "[tally-native] wrote $(wc -c < "$fatbin") B, $(wc -l < "$out/tally_kernels.list") kernels"
