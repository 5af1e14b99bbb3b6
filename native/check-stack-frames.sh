#!/usr/bin/env bash
# Reads nvcc's `-Xptxas -v` log on stdin and fails when any function compiled for any architecture has a stack frame
# or spills registers. A kernel argument passed `const&` instead of `const __grid_constant__` shows up here as a frame
# (every thread copies the struct to local memory), as does a math function with a slow path (sinf's argument
# reduction): both cost every launch, and this check keeps them out. Prints one line per offender.
# Usage: nvcc ... -Xptxas -v 2> ptxas.log; native/check-stack-frames.sh < ptxas.log
set -euo pipefail
awk '
  /Compiling entry function/ { match($0, /for .sm_[0-9a-z]+./); arch = substr($0, RSTART + 5, RLENGTH - 6) }
  /Function properties for/ { fn = $NF; next }
  /bytes stack frame/ {
    checked++
    frame = $1; spill = $5
    if (frame + 0 != 0 || spill + 0 != 0) { printf "  %s (%s): %s\n", fn, arch, $0; bad++ }
  }
  END {
    if (checked == 0) { print "check-stack-frames: no ptxas -v output on stdin (was -Xptxas -v passed?)"; exit 2 }
    if (bad > 0) { printf "check-stack-frames: %d function(s) with a stack frame or spills (of %d checked)\n", bad, checked; exit 1 }
    printf "check-stack-frames: %d functions, no stack frame, no spills\n", checked
  }'
