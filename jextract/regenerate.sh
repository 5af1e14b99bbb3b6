#!/usr/bin/env bash
# Regenerates the committed FFM bindings in src/main/java/dev/tally/jextract. CI never runs this.
#
# Header versions: CUDA 13.0 (CUDART_VERSION 13000) runtime headers from /usr/local/cuda/include; cuBLAS 13 and
# cuSOLVER 12 (CUDA 13.0) prototypes as documented (their headers were not installable where this was written).
#
# With real jextract on PATH and the full CUDA toolkit headers (cublas_api.h, cusolverDn.h) installed, this runs
# jextract restricted to the symbols in headers/*.h into a scratch folder, for diffing against the committed files
# (the engine calls the static methods, which have the same names and signatures in both). Without jextract it runs
# generate.py, which writes the same shape from the trimmed headers in headers/. Either way it first re-derives the
# runtime constants and struct layouts from the real headers and fails if they differ from headers/layout-cuda-runtime.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
inc="${CUDA_HOME:-/usr/local/cuda}/include"

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
gcc -I"$inc" "$here/headers/layout_check.c" -o "$tmp/layout_check"
"$tmp/layout_check" > "$tmp/layout.txt"
if ! diff -u "$here/headers/layout-cuda-runtime.txt" "$tmp/layout.txt"; then
  echo "regenerate.sh: the CUDA headers in $inc differ from the ones the bindings were written for (diff above);" >&2
  echo "update headers/cuda_runtime_api.h and headers/layout-cuda-runtime.txt first." >&2
  exit 1
fi

if command -v jextract >/dev/null 2>&1 && [[ -f "$inc/cublas_api.h" && -f "$inc/cusolverDn.h" ]]; then
  out="$tmp/jextract-out"
  for spec in "cuda_runtime_api.h:cudart:cuda_runtime_api.h" "cublas_api.h:cublas:cublas_v2.h" "cusolverDn.h:cusolver:cusolverDn.h"; do
    IFS=: read -r subset lib header <<<"$spec"
    args=()
    while read -r fn; do args+=(--include-function "$fn"); done < <(grep -oE '\b\w+\(' "$here/headers/$subset" | tr -d '(' | sort -u)
    while read -r c; do args+=(--include-constant "$c"); done < <(grep -oE '^#define \w+' "$here/headers/$subset" | cut -d' ' -f2 | grep -v '^sizeof_\|^offsetof_')
    jextract -I "$inc" -t dev.tally.jextract -l ":lib${lib}.so" --output "$out" "${args[@]}" "$inc/$header"
  done
  echo "jextract output in $out (kept below): compare with src/main/java/dev/tally/jextract" >&2
  cp -r "$out" "$here/target-jextract-out"
else
  echo "regenerate.sh: jextract or the cuBLAS/cuSOLVER headers not found; generating with generate.py" >&2
  python3 "$here/generate.py"
fi
